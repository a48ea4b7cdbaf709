import { describe, expect, it } from 'vitest';
import { formatIp, formatMac, type IpAddress } from '../../src/wire/address.js';
import { parseArpPacket } from '../../src/wire/arp.js';
import { decodeDnsMessage } from '../../src/wire/dns.js';
import { EtherType, parseEthernetFrame } from '../../src/wire/ethernet.js';
import { icmpChecksum, parseEcho, parseIcmpHeader } from '../../src/wire/icmp.js';
import { IpProtocol, parseIPv4Packet } from '../../src/wire/ipv4.js';
import { parseIPv6Packet } from '../../src/wire/ipv6.js';
import { parseTcpSegment } from '../../src/wire/tcp.js';
import { parseUdpDatagram } from '../../src/wire/udp.js';
import {
  buildFrame,
  FRAME_KINDS,
  fuzzFrames,
  mulberry32,
  mutateFrame,
  MUTATIONS,
  resolveTarget,
  Rng,
  type TargetInit,
} from '../support/frames.js';

const TARGET: TargetInit = {
  dstMac: '02:00:00:00:00:02',
  dstIpv4: '192.0.2.2',
  dstIpv6: 'fd00::2',
  srcMac: '02:00:00:00:00:01',
  srcIpv4: '192.0.2.1',
  srcIpv6: 'fd00::1',
};

interface Dissection {
  layers: string[];
  /** Every checksum that could be checked, and whether it held. */
  checksums: boolean[];
  dst?: string;
}

/** Runs a frame through every parser, as a receiving stack would. */
function dissect(frame: Uint8Array): Dissection {
  const d: Dissection = { layers: [], checksums: [] };
  const eth = parseEthernetFrame(frame);
  if (!eth) return d;
  d.layers.push('ethernet');
  if (eth.etherType === EtherType.ARP) {
    const arp = parseArpPacket(eth.payload);
    if (arp) {
      d.layers.push(arp.operation === 1 ? 'arp-request' : 'arp-reply');
      d.dst = formatIp(arp.targetIp);
    }
    return d;
  }
  let protocol: number;
  let l4: Uint8Array;
  let pseudo: { src: IpAddress; dst: IpAddress };
  if (eth.etherType === EtherType.IPv4) {
    const p = parseIPv4Packet(eth.payload);
    if (!p) return d;
    d.layers.push(p.fragmentOffset > 0 || p.moreFragments ? 'ipv4-fragment' : 'ipv4');
    d.checksums.push(p.checksumOk);
    d.dst = formatIp(p.dst);
    if (p.fragmentOffset > 0 || p.moreFragments) return d;
    protocol = p.protocol;
    l4 = p.payload;
    pseudo = { src: p.src, dst: p.dst };
  } else if (eth.etherType === EtherType.IPv6) {
    const p = parseIPv6Packet(eth.payload);
    if (!p) return d;
    d.layers.push('ipv6', ...p.extensionHeaders.map((h) => `ext${h.type}`));
    d.dst = formatIp(p.dst);
    if (p.fragment && (p.fragment.offset > 0 || p.fragment.moreFragments)) return d;
    protocol = p.upperProtocol;
    l4 = p.upperPayload;
    pseudo = { src: p.src, dst: p.dst };
  } else {
    return d;
  }
  if (protocol === IpProtocol.UDP) {
    const u = parseUdpDatagram(l4, pseudo);
    if (!u) return d;
    d.layers.push('udp');
    d.checksums.push(u.checksumOk!);
    if (u.srcPort === 53 || u.dstPort === 53) decodeDnsMessage(u.payload);
  } else if (protocol === IpProtocol.TCP) {
    const t = parseTcpSegment(l4, pseudo);
    if (!t) return d;
    d.layers.push('tcp');
    d.checksums.push(t.checksumOk!);
  } else if (protocol === IpProtocol.ICMP || protocol === IpProtocol.ICMPv6) {
    const h = parseIcmpHeader(l4);
    if (!h) return d;
    const echo = parseEcho(l4, pseudo);
    if (echo) {
      d.layers.push(`icmp${echo.family === 6 ? 'v6' : ''}-echo`);
      d.checksums.push(echo.checksumOk!);
    } else {
      d.layers.push(`icmp-${h.type}`);
      d.checksums.push(icmpChecksum(l4, protocol === IpProtocol.ICMP ? 4 : 6, pseudo.src, pseudo.dst) === 0);
    }
  }
  return d;
}

describe('the frame generator', () => {
  it('is deterministic from its seed', () => {
    const a = [...fuzzFrames(TARGET, 300, 42)];
    const b = [...fuzzFrames(TARGET, 300, 42)];
    const c = [...fuzzFrames(TARGET, 300, 43)];
    expect(a).toEqual(b);
    expect(a.map((f) => f.frame)).not.toEqual(c.map((f) => f.frame));
  });

  it('has a PRNG that does not repeat early and spreads its values', () => {
    const next = mulberry32(1);
    const seen = new Set<number>();
    for (let i = 0; i < 10000; i++) seen.add(next());
    expect(seen.size).toBe(10000);
    const rng = new Rng(5);
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 10000; i++) buckets[rng.int(10)]!++;
    for (const b of buckets) expect(b).toBeGreaterThan(850);
  });

  it('covers every frame kind and mutation', () => {
    const kinds = new Set<string>();
    const mutations = new Set<string>();
    for (const f of fuzzFrames(TARGET, 2000, 1)) {
      kinds.add(f.kind);
      mutations.add(f.mutation);
    }
    expect([...kinds].sort()).toEqual([...FRAME_KINDS].sort());
    expect([...mutations].sort()).toEqual([...MUTATIONS].sort());
  });

  it('produces valid frames that parse to the end with every checksum correct', () => {
    const target = resolveTarget(TARGET);
    const expectedTop: Record<string, RegExp> = {
      'arp-request': /^arp-request$/,
      'arp-reply': /^arp-reply$/,
      'ipv4-icmp-echo': /^icmp-echo$/,
      'ipv4-udp': /^udp$/,
      'ipv4-tcp-syn': /^tcp$/,
      'ipv4-tcp-odd-options': /^tcp$/,
      'ipv4-fragment': /^ipv4-fragment$|^udp$/, // a datagram that fits one fragment is whole
      'ipv6-icmp-echo': /^icmpv6-echo$/,
      'ipv6-neighbor-solicitation': /^icmp-135$/,
      'ipv6-udp': /^udp$/,
      'ipv6-tcp-syn': /^tcp$/,
      'ipv6-extension-headers': /^(udp|icmpv6-echo)$/,
    };
    let count = 0;
    for (const f of fuzzFrames(TARGET, 3000, 7)) {
      if (f.mutation !== 'none') continue;
      count++;
      const d = dissect(f.frame);
      expect(d.layers.at(-1), `${f.kind} #${f.index}: ${d.layers.join('/')}`).toMatch(expectedTop[f.kind]!);
      expect(d.checksums.every((ok) => ok), `${f.kind} #${f.index}`).toBe(true);
      const eth = parseEthernetFrame(f.frame)!;
      expect(formatMac(eth.src)).toBe('02:00:00:00:00:01');
      if (f.kind.startsWith('ipv6-neighbor')) {
        expect(d.dst === 'fd00::2' || d.dst === 'ff02::1:ff00:2').toBe(true);
      } else {
        expect(d.dst).toBe(f.kind.startsWith('ipv6') ? formatIp(target.dstIpv6) : formatIp(target.dstIpv4));
      }
      if (f.kind === 'ipv6-extension-headers') expect(d.layers.some((l) => l.startsWith('ext'))).toBe(true);
    }
    expect(count).toBeGreaterThan(300);
  });

  it('keeps random frames within 0..2000 bytes and truncations shorter than valid frames', () => {
    const lengths: number[] = [];
    for (const f of fuzzFrames(TARGET, 3000, 9)) {
      if (f.mutation === 'random-bytes') lengths.push(f.frame.length);
      if (f.mutation === 'truncate') expect(f.frame.length).toBeLessThan(1600);
    }
    expect(Math.min(...lengths)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(2000);
    expect(Math.max(...lengths)).toBeGreaterThan(1500);
  });

  it('makes bad checksums and bad lengths that the parsers notice', () => {
    const target = resolveTarget(TARGET);
    const rng = new Rng(11);
    for (const mutation of ['bad-checksum', 'bad-length'] as const) {
      let noticed = 0;
      const total = 1000;
      for (let i = 0; i < total; i++) {
        // ARP has no checksum to break.
        const kinds = mutation === 'bad-checksum' ? FRAME_KINDS.filter((k) => !k.startsWith('arp')) : FRAME_KINDS;
        const built = buildFrame(rng.pick(kinds), target, rng);
        const valid = dissect(built.frame);
        const bad = dissect(mutateFrame(built, mutation, target, rng));
        if (bad.layers.length < valid.layers.length || bad.checksums.some((ok) => !ok)) noticed++;
      }
      // Exceptions: a zero UDP checksum is legal over IPv4; a random length or
      // IHL can land on the true value (IHL 5 is 1 in 16).
      expect(noticed / total, mutation).toBeGreaterThan(0.9);
    }
  });
});

describe('parsers under fuzzing', () => {
  it('never throw on 20000 generated frames', () => {
    const layerCounts = new Map<string, number>();
    for (const f of fuzzFrames(TARGET, 20000, 20240601)) {
      let d: Dissection;
      try {
        d = dissect(f.frame);
      } catch (err) {
        throw new Error(`seed 20240601 frame #${f.index} (${f.kind}, ${f.mutation}) threw: ${String(err)}`);
      }
      const top = d.layers.at(-1) ?? 'none';
      layerCounts.set(top, (layerCounts.get(top) ?? 0) + 1);
    }
    // Mutated frames still reach every upper layer, not just fail at Ethernet.
    for (const layer of ['udp', 'tcp', 'icmp-echo', 'icmpv6-echo', 'arp-request', 'ipv4-fragment']) {
      expect(layerCounts.get(layer) ?? 0, layer).toBeGreaterThan(100);
    }
  });
});
