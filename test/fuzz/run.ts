/**
 * Fuzz campaigns: for one protocol on one harness, `count` mutants of the
 * captured seeds, paced a batch per event-loop turn, with health checks
 * along the way; then a probe of frames broken in one known way, whose
 * drop counter must rise by exactly their number. Frame i of a campaign
 * depends only on (seed, campaign, i), not on what earlier frames drew.
 */
import { type Protocol, PROTOCOLS, dissect } from './dissect.js';
import type { Harness, HarnessName } from './harness.js';
import { mutate, Rng, type Mutant, type Seed } from './mutate.js';
import { fixChecksums, setU16 } from './dissect.js';

/** Which protocols each harness is fuzzed with. */
export const CAMPAIGNS: Record<HarnessName, readonly Protocol[]> = {
  stack: ['arp', 'ndp', 'icmp', 'icmpv6', 'ipv4-frag', 'ipv6-frag', 'udp', 'tcp'],
  gateway: ['dhcp', 'dns', 'tcp', 'udp', 'icmp'],
};

export interface Failure {
  campaign: string;
  message: string;
  /** The frames sent since the last good health check (at most `keep`), in order. */
  frames: Uint8Array[];
  /** Index of the first of those frames in the campaign. */
  firstIndex: number;
}

export interface CampaignResult {
  campaign: string;
  frames: number;
  /** Mutants with a checksum left wrong on purpose. */
  badChecksums: number;
  /** Rise of the victim's drop counters (sum over all of them). */
  drops: number;
  probe: { counter: string; sent: number; counted: number } | null;
  seconds: number;
  /** Of which in health checks. */
  healthSeconds: number;
  failures: Failure[];
  skipped?: string;
}

export interface CampaignOptions {
  seed: number;
  count: number;
  /** Frames per event-loop turn (within a stack's per-turn budget of 256). */
  batch?: number;
  /** Frames between health checks. */
  healthEvery?: number;
  /** Frames kept for a failure's corpus entry. */
  keep?: number;
  /** Stop at the first failure (the test) or go on with a fresh harness (the soak). */
  stopOnFailure?: boolean;
  /** Called with a failure before the campaign goes on; returns a fresh harness to continue on. */
  onFailure?: (f: Failure) => Promise<Harness | null>;
  /** Kept current with the harness and the frames sent since the last good health check (for a soak's crash handler). */
  state?: { harness: Harness; recent: Uint8Array[] };
}

function mix(seed: number, campaign: number, index: number): number {
  let h = Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(campaign + 1, 0x85ebca6b) ^ index;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A protocol's seeds on a harness; fragment campaigns also cut whole packets of their family. */
export function campaignSeeds(h: Harness, protocol: Protocol): Seed[] {
  const own = h.seeds.get(protocol) ?? [];
  if (protocol !== 'ipv4-frag' && protocol !== 'ipv6-frag') return own;
  const family = protocol === 'ipv4-frag' ? 4 : 6;
  const whole: Seed[] = [];
  for (const [p, seeds] of h.seeds) {
    if (p === 'arp' || p === 'ipv4-frag' || p === 'ipv6-frag' || p === 'ndp') continue;
    for (const s of seeds) if (dissect(s.frame).ip?.family === family) whole.push({ protocol, frame: s.frame });
  }
  return [...own, ...whole];
}

function sum(d: Record<string, number>): number {
  let n = 0;
  for (const v of Object.values(d)) n += v;
  return n;
}

/** The victim's link-local address, from its MAC (RFC 4291 appendix A). */
function linkLocal(mac: Uint8Array): Uint8Array {
  return Uint8Array.from([0xfe, 0x80, 0, 0, 0, 0, 0, 0, mac[0]! ^ 2, mac[1]!, mac[2]!, 0xff, 0xfe, mac[3]!, mac[4]!, mac[5]!]);
}

/** Whether an IPv6 destination is the victim's: its addresses, all-nodes, or their solicited-node groups. */
function forVictim6(dst: Uint8Array, h: Harness): boolean {
  const own = [h.victimIpv6, linkLocal(h.victimMac)];
  const eq = (a: Uint8Array, b: ArrayLike<number>) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (own.some((a) => eq(dst, a))) return true;
  if (eq(dst, [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])) return true;
  const sn = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff];
  return sn.every((x, i) => dst[i] === x) && own.some((a) => a[13] === dst[13] && a[14] === dst[14] && a[15] === dst[15]);
}

/**
 * Frames broken in exactly one way that the victim must count: the counter
 * that has to rise by exactly `count`. Returns null where the harness has
 * no seed to break.
 */
function probeFrames(h: Harness, protocol: Protocol, rng: Rng, count: number): { counter: string; frames: Uint8Array[] } | null {
  const seeds = campaignSeeds(h, protocol).filter((s) => {
    const d = dissect(s.frame);
    if (protocol === 'dns') return !!d.udp; // TCP DNS needs a connection
    if (protocol === 'ipv4-frag' || protocol === 'ipv6-frag') return !!d.ip;
    // ICMPv6 to a group the victim is not in (MLD reports, the peer's own DAD) never reaches its checksum check.
    if (d.ip?.family === 6) return forVictim6(s.frame.subarray(d.ip.offset + 24, d.ip.offset + 40), h);
    return true;
  });
  if (seeds.length === 0) return null;
  const frames: Uint8Array[] = [];
  let counter = '';
  for (let i = 0; i < count; i++) {
    const f = rng.pick(seeds).frame.slice();
    const d = dissect(f);
    if (protocol === 'arp') {
      f[d.arp!.offset + 4] = 7; // hardware address length (RFC 826): must be 6 for Ethernet
      counter = 'etharp.proterr';
    } else if (protocol === 'dhcp') {
      f[d.l4!.offset + 8] = 2; // BOOTREPLY sent to the server
      fixChecksums(f, d);
      counter = 'dhcp.ignored';
    } else if (protocol === 'dns') {
      f[d.l4!.offset + 8 + 2]! |= 0x80; // QR: a response sent to the server
      fixChecksums(f, d);
      counter = 'dns.malformed';
    } else if (protocol === 'ipv4-frag' || (h.name === 'gateway' && protocol === 'icmp')) {
      // The IPv4 header checksum (RFC 791): fragments carry no whole transport header to break,
      // and the gateway answers some echoes itself, outside lwIP's counters.
      setU16(f, d.ip!.offset + 10, ((f[d.ip!.offset + 10]! << 8) | f[d.ip!.offset + 11]!) ^ 0x5a5a);
      counter = 'ip.chkerr';
    } else if (protocol === 'ipv6-frag') {
      // Payload length past the frame's end (RFC 8200 section 3).
      setU16(f, d.ip!.offset + 4, f.length - d.ip!.offset - 40 + 8);
      counter = 'ip6.lenerr';
    } else {
      const at = d.l4!.offset + (d.tcp ? 16 : d.udp ? 6 : 2);
      setU16(f, at, ((f[at]! << 8) | f[at + 1]!) ^ 0x5a5a);
      counter = d.tcp ? 'tcp.chkerr' : d.udp ? 'udp.chkerr' : d.ip!.family === 4 ? 'icmp.chkerr' : 'icmp6.chkerr';
    }
    frames.push(f);
  }
  return { counter, frames };
}

export async function runCampaign(start: Harness, protocol: Protocol, options: CampaignOptions): Promise<CampaignResult> {
  let h = start;
  const name = `${h.name}:${protocol}`;
  const t0 = performance.now();
  const result: CampaignResult = { campaign: name, frames: 0, badChecksums: 0, drops: 0, probe: null, seconds: 0, healthSeconds: 0, failures: [] };
  const seeds = campaignSeeds(h, protocol);
  if (seeds.length === 0) {
    result.skipped = `no ${protocol} frames in the capture of the ${h.name} exchange`;
    return result;
  }
  const batch = options.batch ?? 200;
  const healthEvery = options.healthEvery ?? options.count;
  const keep = options.keep ?? 2000;
  const campaignIndex = PROTOCOLS.indexOf(protocol) + (h.name === 'gateway' ? 100 : 0);
  let recent: Uint8Array[] = [];
  let recentFirst = 0;
  // A victim that trapped has closed, and its counters with it (stats()
  // throws ERR_STACK_CLOSED): it dropped nothing more. Reading them
  // unguarded once ended a soak before it wrote the failing input down.
  const drops = (): number => {
    try {
      return sum(h.drops());
    } catch {
      return dropsBefore;
    }
  };
  let dropsBefore = sum(h.drops());
  const pending: Mutant[] = [];

  const fail = async (message: string): Promise<boolean> => {
    const f: Failure = { campaign: name, message, frames: recent, firstIndex: recentFirst };
    result.failures.push(f);
    if (options.stopOnFailure || !options.onFailure) return false;
    result.drops += drops() - dropsBefore;
    const next = await options.onFailure(f);
    if (!next) return false;
    h = next;
    dropsBefore = sum(h.drops());
    return true;
  };

  const ctxFor = (rng: Rng) => ({
    rng,
    live: (family: 4 | 6) => h.live(family),
    victim: { mac: h.victimMac, ipv4: h.victimIpv4, ipv6: h.victimIpv6 },
  });

  for (let i = 0; i < options.count;) {
    if (pending.length === 0) {
      const rng = new Rng(mix(options.seed, campaignIndex, i));
      pending.push(...mutate(rng.pick(seeds), ctxFor(rng)));
    }
    if (options.state) {
      options.state.harness = h;
      options.state.recent = recent;
    }
    const m = pending.shift()!;
    if (m.badChecksum) result.badChecksums++;
    h.inject(m.frame);
    if (recent.length < keep) recent.push(m.frame);
    i++;
    result.frames++;
    if (i % batch === 0 || i === options.count) {
      await h.pump();
      if (h.errors.length > 0) {
        const msg = `${h.errors.length} error(s): ${h.errors.map((e) => e.message).join('; ')}`;
        h.errors.length = 0;
        if (!(await fail(msg))) break;
        recent = [];
        recentFirst = i;
        continue;
      }
    }
    if (i % healthEvery === 0 || i === options.count) {
      for (let k = 0; k < 5; k++) await h.pump();
      const th = performance.now();
      try {
        await h.health();
      } catch (err) {
        if (!(await fail((err as Error).message))) break;
      }
      result.healthSeconds += (performance.now() - th) / 1000;
      recent = [];
      recentFirst = i;
    }
  }
  result.drops += drops() - dropsBefore;

  if (result.failures.length === 0 || !options.stopOnFailure) {
    // Drop accounting, exactly: frames broken in one known way.
    const probe = probeFrames(h, protocol, new Rng(mix(options.seed, campaignIndex, -1)), 64);
    if (probe) {
      for (let k = 0; k < 5; k++) await h.pump();
      const before = h.drops()[probe.counter] ?? 0;
      for (const f of probe.frames) h.inject(f);
      for (let k = 0; k < 5; k++) await h.pump();
      result.probe = { counter: probe.counter, sent: probe.frames.length, counted: (h.drops()[probe.counter] ?? 0) - before };
    }
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}
