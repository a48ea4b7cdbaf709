/**
 * Ethernet frames for fuzzing a stack: valid frames of many kinds aimed at a
 * target, then mutated (truncated, bit-flipped, bad lengths, bad checksums,
 * random options, random bytes). Everything is deterministic from a seed, so
 * a failing frame is reproduced by its seed and index.
 */

import { parseIp, parseMac, type IpAddress } from '../../src/wire/address.js';
import { buildArpPacket, ArpOperation } from '../../src/wire/arp.js';
import { internetChecksum, pseudoHeaderSum } from '../../src/wire/checksum.js';
import { BROADCAST_MAC, buildEthernetFrame, EtherType } from '../../src/wire/ethernet.js';
import { buildEchoRequest, buildIcmpMessage, Icmpv6Type } from '../../src/wire/icmp.js';
import { buildIPv4Packet, IpProtocol } from '../../src/wire/ipv4.js';
import { buildIPv6ExtensionHeader, buildIPv6FragmentHeader, buildIPv6Packet } from '../../src/wire/ipv6.js';
import { buildTcpSegment, TcpFlags, TcpOptionKind } from '../../src/wire/tcp.js';
import { buildUdpDatagram } from '../../src/wire/udp.js';

/** Bytes from hex text; whitespace is ignored, so captures can be laid out by header. */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(clean)) throw new RangeError('bad hex');
  return Uint8Array.from(clean.match(/../g) ?? [], (h) => parseInt(h, 16));
}

// ------------------------------------------------------------------ PRNG

/** mulberry32: a 32-bit state PRNG, small and good enough for fuzzing. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

export class Rng {
  private readonly next32: () => number;
  constructor(seed: number) {
    this.next32 = mulberry32(seed);
  }
  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    return this.next32();
  }
  /** A float in [0, 1). */
  float(): number {
    return this.next32() / 0x1_0000_0000;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  bool(p = 0.5): boolean {
    return this.float() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next32() & 0xff;
    return out;
  }
}

// ------------------------------------------------------------------ target

export interface FrameTarget {
  dstMac: Uint8Array;
  dstIpv4: IpAddress;
  dstIpv6: IpAddress;
  srcMac: Uint8Array;
  srcIpv4: IpAddress;
  srcIpv6: IpAddress;
}

/** A target as strings or bytes; `resolveTarget` turns it into a FrameTarget. */
export interface TargetInit {
  dstMac: string | Uint8Array;
  dstIpv4: string | IpAddress;
  dstIpv6: string | IpAddress;
  srcMac: string | Uint8Array;
  srcIpv4: string | IpAddress;
  srcIpv6: string | IpAddress;
}

function mac(v: string | Uint8Array): Uint8Array {
  const m = typeof v === 'string' ? parseMac(v) : v;
  if (!m || m.length !== 6) throw new RangeError(`bad MAC ${String(v)}`);
  return m;
}

function ip(v: string | IpAddress, family: 4 | 6): IpAddress {
  const a = typeof v === 'string' ? parseIp(v) : v;
  if (!a || a.family !== family) throw new RangeError(`bad IPv${family} address ${typeof v === 'string' ? v : ''}`);
  return a;
}

export function resolveTarget(t: TargetInit | FrameTarget): FrameTarget {
  return {
    dstMac: mac(t.dstMac),
    dstIpv4: ip(t.dstIpv4, 4),
    dstIpv6: ip(t.dstIpv6, 6),
    srcMac: mac(t.srcMac),
    srcIpv4: ip(t.srcIpv4, 4),
    srcIpv6: ip(t.srcIpv6, 6),
  };
}

// ------------------------------------------------------------------ valid frames

export const FRAME_KINDS = [
  'arp-request',
  'arp-reply',
  'ipv4-icmp-echo',
  'ipv4-udp',
  'ipv4-tcp-syn',
  'ipv4-tcp-odd-options',
  'ipv4-fragment',
  'ipv6-icmp-echo',
  'ipv6-neighbor-solicitation',
  'ipv6-udp',
  'ipv6-tcp-syn',
  'ipv6-extension-headers',
] as const;
export type FrameKind = (typeof FRAME_KINDS)[number];

/** Where things are in a built frame, so mutators can aim at fields. */
export interface FrameLayout {
  l3: 'arp' | 'ipv4' | 'ipv6';
  l3Offset: number;
  /** IPv4: IHL × 4. IPv6: 40 plus extension headers. */
  l3HeaderLength: number;
  /** Set when the frame holds a whole upper-layer header whose checksum we can recompute. */
  l4?: { protocol: number; offset: number; length: number; src: IpAddress; dst: IpAddress };
  /** Option bytes (TCP options, IPv6 option TLVs) that `random-options` may overwrite. */
  options?: { start: number; end: number };
}

export interface BuiltFrame {
  kind: FrameKind;
  frame: Uint8Array;
  layout: FrameLayout;
}

const ETH_LEN = 14;

/** Zero-padded to the 60-byte minimum (without FCS) as on a real wire, so parsers meet trailing bytes. */
function ethernet(t: FrameTarget, etherType: number, payload: Uint8Array, dst = t.dstMac): Uint8Array {
  const frame = buildEthernetFrame({ dst, src: t.srcMac, etherType }, payload);
  if (frame.length >= 60) return frame;
  const padded = new Uint8Array(60);
  padded.set(frame);
  return padded;
}

function ephemeralPort(rng: Rng): number {
  return rng.range(1024, 65535);
}

function tcpSyn(rng: Rng, src: IpAddress, dst: IpAddress): Uint8Array {
  return buildTcpSegment({
    srcPort: ephemeralPort(rng),
    dstPort: rng.pick([22, 80, 443, 8080, rng.range(1, 65535)]),
    seqNumber: rng.u32(),
    flags: TcpFlags.SYN | (rng.bool(0.1) ? TcpFlags.ECE | TcpFlags.CWR : 0),
    window: rng.range(1024, 65535),
    options: {
      mss: rng.pick([536, 1220, 1440, 1460, 8960, rng.range(0, 65535)]),
      windowScale: rng.range(0, 14),
      sackPermitted: rng.bool(0.8),
      ...(rng.bool(0.8) ? { timestamps: { value: rng.u32(), echo: 0 } } : {}),
    },
    src,
    dst,
  });
}

/** Well-formed but unusual TCP options: unknown kinds, NOP runs, repeats, bytes after EOL. */
function oddTcpOptions(rng: Rng): Uint8Array {
  const out: number[] = [];
  const room = () => 40 - out.length;
  while (room() > 0 && rng.bool(0.85)) {
    const choice = rng.int(8);
    if (choice === 0) out.push(TcpOptionKind.NOP);
    else if (choice === 1 && room() >= 4) out.push(TcpOptionKind.MSS, 4, rng.int(256), rng.int(256));
    else if (choice === 2 && room() >= 3) out.push(TcpOptionKind.WindowScale, 3, rng.int(256)); // > 14 too
    else if (choice === 3 && room() >= 10) out.push(TcpOptionKind.Sack, 10, ...rng.bytes(8));
    else if (choice === 4 && room() >= 10) out.push(TcpOptionKind.Timestamps, 10, ...rng.bytes(8));
    else if (choice === 5 && room() >= 2) {
      // Unknown or experimental kinds (RFC 6994: 253, 254), e.g. MPTCP (30), TFO (34), MD5 (19).
      const len = rng.range(2, Math.min(room(), 18));
      out.push(rng.pick([19, 30, 34, 253, 254, rng.range(9, 252)]), len, ...rng.bytes(len - 2));
    } else if (choice === 6) {
      out.push(TcpOptionKind.EOL, ...rng.bytes(rng.int(room()))); // garbage after EOL is padding
      break;
    } else if (room() >= 2) out.push(TcpOptionKind.SackPermitted, 2);
  }
  return Uint8Array.from(out);
}

function tcpOdd(rng: Rng, src: IpAddress, dst: IpAddress): Uint8Array {
  return buildTcpSegment({
    srcPort: ephemeralPort(rng),
    dstPort: rng.range(1, 65535),
    seqNumber: rng.u32(),
    ackNumber: rng.u32(),
    flags: rng.int(256),
    window: rng.int(65536),
    urgentPointer: rng.bool(0.2) ? rng.int(65536) : 0,
    rawOptions: oddTcpOptions(rng),
    payload: rng.bytes(rng.pick([0, 0, 1, rng.int(200)])),
    src,
    dst,
  });
}

function udp(rng: Rng, src: IpAddress, dst: IpAddress, payloadLength = rng.int(600)): Uint8Array {
  return buildUdpDatagram({
    srcPort: ephemeralPort(rng),
    dstPort: rng.pick([53, 67, 123, 5353, rng.range(1, 65535)]),
    payload: rng.bytes(payloadLength),
    src,
    dst,
  });
}

function ipv4(t: FrameTarget, rng: Rng, protocol: number, payload: Uint8Array, extra: { options?: Uint8Array } = {}) {
  return buildIPv4Packet({
    src: t.srcIpv4,
    dst: t.dstIpv4,
    protocol,
    payload,
    ttl: rng.range(1, 255),
    identification: rng.int(65536),
    dontFragment: rng.bool(),
    ...extra,
  });
}

/** An IPv4 frame whose payload is a whole upper-layer message. */
function ipv4Frame(kind: FrameKind, t: FrameTarget, rng: Rng, protocol: number, l4: Uint8Array, options?: { start: number; end: number }): BuiltFrame {
  // Sometimes carry IPv4 options: NOPs then a well-formed unknown option, so IHL > 5.
  const ipOptions = rng.bool(0.15) ? Uint8Array.from([1, 1, 0x1e, 2]) : undefined;
  const packet = ipv4(t, rng, protocol, l4, ipOptions ? { options: ipOptions } : {});
  const hlen = 20 + (ipOptions?.length ?? 0);
  const layout: FrameLayout = {
    l3: 'ipv4',
    l3Offset: ETH_LEN,
    l3HeaderLength: hlen,
    l4: { protocol, offset: ETH_LEN + hlen, length: l4.length, src: t.srcIpv4, dst: t.dstIpv4 },
  };
  if (options) layout.options = { start: ETH_LEN + hlen + options.start, end: ETH_LEN + hlen + options.end };
  else if (ipOptions) layout.options = { start: ETH_LEN + 20, end: ETH_LEN + hlen };
  return { kind, frame: ethernet(t, EtherType.IPv4, packet), layout };
}

function ipv6Frame(kind: FrameKind, t: FrameTarget, rng: Rng, protocol: number, l4: Uint8Array, opts: {
  dst?: IpAddress;
  dstMac?: Uint8Array;
  src?: IpAddress;
  hopLimit?: number;
  options?: { start: number; end: number };
} = {}): BuiltFrame {
  const src = opts.src ?? t.srcIpv6;
  const dst = opts.dst ?? t.dstIpv6;
  const packet = buildIPv6Packet({
    src,
    dst,
    nextHeader: protocol,
    payload: l4,
    hopLimit: opts.hopLimit ?? rng.range(1, 255),
    trafficClass: rng.bool(0.2) ? rng.int(256) : 0,
    flowLabel: rng.bool(0.5) ? rng.int(1 << 20) : 0,
  });
  const layout: FrameLayout = {
    l3: 'ipv6',
    l3Offset: ETH_LEN,
    l3HeaderLength: 40,
    l4: { protocol, offset: ETH_LEN + 40, length: l4.length, src, dst },
  };
  if (opts.options) layout.options = { start: ETH_LEN + 40 + opts.options.start, end: ETH_LEN + 40 + opts.options.end };
  return { kind, frame: ethernet(t, EtherType.IPv6, packet, opts.dstMac), layout };
}

function tcpOptionRegion(segment: Uint8Array): { start: number; end: number } {
  return { start: 20, end: (segment[12]! >> 4) * 4 };
}

/** The solicited-node multicast address and its MAC (RFC 4291 section 2.7.1, RFC 2464 section 7). */
function solicitedNode(target: IpAddress): { ip: IpAddress; mac: Uint8Array } {
  const b = new Uint8Array(16);
  b.set([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff]);
  b.set(target.bytes.subarray(13), 13);
  return { ip: { family: 6, bytes: b, zone: 0 }, mac: Uint8Array.from([0x33, 0x33, 0xff, ...target.bytes.subarray(13)]) };
}

/** A chain of extension headers ending in UDP or an ICMPv6 echo. */
function extensionChain(t: FrameTarget, rng: Rng): BuiltFrame {
  const upper = rng.bool() ? IpProtocol.UDP : IpProtocol.ICMPv6;
  const chain: number[] = [];
  if (rng.bool(0.6)) chain.push(IpProtocol.HopByHop); // only ever first (RFC 8200 section 4.1)
  const n = rng.range(chain.length === 0 ? 1 : 0, 3);
  for (let i = 0; i < n; i++) chain.push(rng.pick([IpProtocol.IPv6DestOpts, IpProtocol.IPv6Route, IpProtocol.IPv6Fragment]));
  const parts: Uint8Array[] = [];
  let options: { start: number; end: number } | undefined;
  let at = 0;
  for (let i = 0; i < chain.length; i++) {
    const next = i + 1 < chain.length ? chain[i + 1]! : upper;
    let header: Uint8Array;
    const type = chain[i]!;
    if (type === IpProtocol.IPv6Fragment) {
      header = buildIPv6FragmentHeader(next, 0, false, rng.u32()); // atomic fragment (RFC 6946)
    } else if (type === IpProtocol.IPv6Route) {
      // Experimental routing types (RFC 4727) with Segments Left 0 are ignored (RFC 8200 section 4.4).
      header = buildIPv6ExtensionHeader(next, Uint8Array.from([rng.pick([253, 254]), 0, 0, 0, 0, 0]));
    } else {
      // Option types with high bits 00 are skipped when unknown (RFC 8200 section 4.2).
      const body: number[] = [];
      for (let k = rng.int(3); k > 0; k--) {
        const len = rng.int(8);
        body.push(rng.pick([0x1e, 0x3e]), len, ...rng.bytes(len)); // RFC 4727 experimental types
      }
      header = buildIPv6ExtensionHeader(next, Uint8Array.from(body));
      options ??= { start: at + 2, end: at + header.length };
    }
    parts.push(header);
    at += header.length;
  }
  const l4 =
    upper === IpProtocol.UDP
      ? udp(rng, t.srcIpv6, t.dstIpv6, rng.int(200))
      : buildEchoRequest({ family: 6, id: rng.int(65536), seq: rng.int(65536), payload: rng.bytes(rng.int(100)), src: t.srcIpv6, dst: t.dstIpv6 });
  const payload = new Uint8Array(at + l4.length);
  let o = 0;
  for (const p of parts) {
    payload.set(p, o);
    o += p.length;
  }
  payload.set(l4, at);
  const built = ipv6Frame('ipv6-extension-headers', t, rng, chain[0]!, payload, options ? { options } : {});
  built.layout.l3HeaderLength = 40 + at;
  built.layout.l4 = { protocol: upper, offset: ETH_LEN + 40 + at, length: l4.length, src: t.srcIpv6, dst: t.dstIpv6 };
  return built;
}

/** One valid frame of `kind` aimed at `target`. */
export function buildFrame(kind: FrameKind, target: FrameTarget, rng: Rng): BuiltFrame {
  const t = target;
  switch (kind) {
    case 'arp-request':
    case 'arp-reply': {
      const request = kind === 'arp-request';
      const arp = buildArpPacket({
        operation: request ? ArpOperation.Request : ArpOperation.Reply,
        senderMac: t.srcMac,
        senderIp: t.srcIpv4,
        targetMac: request ? new Uint8Array(6) : t.dstMac,
        targetIp: t.dstIpv4,
      });
      return {
        kind,
        frame: ethernet(t, EtherType.ARP, arp, request && rng.bool(0.8) ? BROADCAST_MAC : t.dstMac),
        layout: { l3: 'arp', l3Offset: ETH_LEN, l3HeaderLength: 28 },
      };
    }
    case 'ipv4-icmp-echo': {
      const echo = buildEchoRequest({ family: 4, id: rng.int(65536), seq: rng.int(65536), payload: rng.bytes(rng.pick([0, 8, 56, rng.int(1400)])) });
      return ipv4Frame(kind, t, rng, IpProtocol.ICMP, echo);
    }
    case 'ipv4-udp':
      return ipv4Frame(kind, t, rng, IpProtocol.UDP, udp(rng, t.srcIpv4, t.dstIpv4));
    case 'ipv4-tcp-syn': {
      const seg = tcpSyn(rng, t.srcIpv4, t.dstIpv4);
      return ipv4Frame(kind, t, rng, IpProtocol.TCP, seg, tcpOptionRegion(seg));
    }
    case 'ipv4-tcp-odd-options': {
      const seg = tcpOdd(rng, t.srcIpv4, t.dstIpv4);
      return ipv4Frame(kind, t, rng, IpProtocol.TCP, seg, tcpOptionRegion(seg));
    }
    case 'ipv4-fragment': {
      // Fragment a UDP datagram (RFC 791 section 3.2) and send one piece.
      const datagram = udp(rng, t.srcIpv4, t.dstIpv4, rng.range(100, 3000));
      const size = rng.range(1, 64) * 8;
      const count = Math.ceil(datagram.length / size);
      const index = rng.int(count);
      const piece = datagram.subarray(index * size, Math.min(datagram.length, (index + 1) * size));
      const packet = buildIPv4Packet({
        src: t.srcIpv4,
        dst: t.dstIpv4,
        protocol: IpProtocol.UDP,
        payload: piece,
        identification: rng.int(65536),
        moreFragments: index < count - 1,
        fragmentOffset: index * size,
      });
      // No l4: the UDP checksum spans all fragments.
      return { kind, frame: ethernet(t, EtherType.IPv4, packet), layout: { l3: 'ipv4', l3Offset: ETH_LEN, l3HeaderLength: 20 } };
    }
    case 'ipv6-icmp-echo': {
      const echo = buildEchoRequest({ family: 6, id: rng.int(65536), seq: rng.int(65536), payload: rng.bytes(rng.pick([0, 8, 56, rng.int(1400)])), src: t.srcIpv6, dst: t.dstIpv6 });
      return ipv6Frame(kind, t, rng, IpProtocol.ICMPv6, echo);
    }
    case 'ipv6-neighbor-solicitation': {
      // RFC 4861 section 4.3; from :: (duplicate address detection) there is no source link-layer option.
      const dad = rng.bool(0.2);
      const src: IpAddress = dad ? { family: 6, bytes: new Uint8Array(16), zone: 0 } : t.srcIpv6;
      const sn = solicitedNode(t.dstIpv6);
      const body = new Uint8Array(dad ? 20 : 28);
      body.set(t.dstIpv6.bytes, 4);
      if (!dad) body.set([1, 1, ...t.srcMac], 20);
      const unicast = !dad && rng.bool(0.3); // reachability confirmation goes unicast
      const dst = unicast ? t.dstIpv6 : sn.ip;
      const ns = buildIcmpMessage({ family: 6, type: Icmpv6Type.NeighborSolicitation, body, src, dst });
      // Hop limit 255 proves the sender is on-link (RFC 4861 section 7.1.1).
      return ipv6Frame(kind, t, rng, IpProtocol.ICMPv6, ns, { src, dst, dstMac: unicast ? t.dstMac : sn.mac, hopLimit: 255 });
    }
    case 'ipv6-udp':
      return ipv6Frame(kind, t, rng, IpProtocol.UDP, udp(rng, t.srcIpv6, t.dstIpv6));
    case 'ipv6-tcp-syn': {
      const seg = tcpSyn(rng, t.srcIpv6, t.dstIpv6);
      return ipv6Frame(kind, t, rng, IpProtocol.TCP, seg, { options: tcpOptionRegion(seg) });
    }
    case 'ipv6-extension-headers':
      return extensionChain(t, rng);
  }
}

// ------------------------------------------------------------------ mutations

export const MUTATIONS = [
  'none',
  'truncate',
  'bitflip',
  'bitflip-fixed-checksums',
  'bad-length',
  'bad-checksum',
  'random-options',
  'random-bytes',
  'random-after-ethernet',
] as const;
export type Mutation = (typeof MUTATIONS)[number];

function setU16(b: Uint8Array, at: number, v: number): void {
  if (at + 1 >= b.length) return;
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

function getU16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

const L4_CHECKSUM_OFFSET: Record<number, number> = {
  [IpProtocol.TCP]: 16,
  [IpProtocol.UDP]: 6,
  [IpProtocol.ICMP]: 2,
  [IpProtocol.ICMPv6]: 2,
};

/** Recomputes the IPv4 header checksum over the IHL the header now claims. */
function fixIPv4HeaderChecksum(frame: Uint8Array, layout: FrameLayout): void {
  if (layout.l3 !== 'ipv4' || frame.length < layout.l3Offset + 20) return;
  const ihl = (frame[layout.l3Offset]! & 0x0f) * 4;
  if (ihl < 20 || layout.l3Offset + ihl > frame.length) return;
  setU16(frame, layout.l3Offset + 10, 0);
  setU16(frame, layout.l3Offset + 10, internetChecksum(frame.subarray(layout.l3Offset, layout.l3Offset + ihl)));
}

/**
 * Recomputes the IPv4 header checksum (over the IHL the header now claims)
 * and the upper-layer checksum, so a mutation gets past checksum checks and
 * reaches the code that parses what was mutated.
 */
export function fixChecksums(frame: Uint8Array, layout: FrameLayout): void {
  fixIPv4HeaderChecksum(frame, layout);
  const l4 = layout.l4;
  if (!l4 || l4.offset + l4.length > frame.length) return;
  const at = L4_CHECKSUM_OFFSET[l4.protocol];
  if (at === undefined) return;
  const seg = frame.subarray(l4.offset, l4.offset + l4.length);
  setU16(seg, at, 0);
  const initial = l4.protocol === IpProtocol.ICMP ? 0 : pseudoHeaderSum(l4.src, l4.dst, l4.protocol, l4.length);
  const sum = internetChecksum(seg, initial);
  setU16(seg, at, l4.protocol === IpProtocol.UDP && sum === 0 ? 0xffff : sum);
}

function truncate(b: BuiltFrame, rng: Rng): Uint8Array {
  const { frame, layout } = b;
  // Half the cuts land inside the headers, where parsers are most fragile.
  const headerEnd = Math.min(frame.length, (layout.l4?.offset ?? layout.l3Offset + layout.l3HeaderLength) + 24);
  const cut = rng.bool() ? rng.int(headerEnd) : rng.int(frame.length);
  return frame.slice(0, cut);
}

function bitflip(frame: Uint8Array, rng: Rng): Uint8Array {
  const out = frame.slice();
  for (let n = rng.range(1, 8); n > 0 && out.length > 0; n--) out[rng.int(out.length)]! ^= 1 << rng.int(8);
  return out;
}

function badLengthValue(rng: Rng, actual: number): number {
  return rng.pick([0, 1, 7, 8, 19, 20, 39, 40, 0xffff, rng.int(0x10000), Math.max(0, actual - rng.range(1, 8)), Math.min(0xffff, actual + rng.range(1, 8))]);
}

function badLength(b: BuiltFrame, rng: Rng): Uint8Array {
  const out = b.frame.slice();
  const { layout } = b;
  const l3 = layout.l3Offset;
  const fields: Array<() => void> = [];
  if (layout.l3 === 'ipv4') {
    fields.push(() => setU16(out, l3 + 2, badLengthValue(rng, getU16(out, l3 + 2)))); // total length
    fields.push(() => (out[l3] = 0x40 | rng.int(16))); // IHL 0..15
  } else if (layout.l3 === 'ipv6') {
    fields.push(() => setU16(out, l3 + 4, badLengthValue(rng, getU16(out, l3 + 4)))); // payload length
  } else {
    fields.push(() => (out[l3 + 4] = rng.int(256))); // ARP hardware length
    fields.push(() => (out[l3 + 5] = rng.int(256))); // ARP protocol length
  }
  const l4 = layout.l4;
  if (l4?.protocol === IpProtocol.UDP) fields.push(() => setU16(out, l4.offset + 4, badLengthValue(rng, l4.length)));
  if (l4?.protocol === IpProtocol.TCP) fields.push(() => (out[l4.offset + 12] = (rng.int(16) << 4) | (out[l4.offset + 12]! & 0x0f)));
  rng.pick(fields)();
  // The IPv4 header checksum is fixed so that the length, not the checksum, is what gets checked.
  fixIPv4HeaderChecksum(out, layout);
  return out;
}

function badChecksum(b: BuiltFrame, rng: Rng): Uint8Array {
  const out = b.frame.slice();
  const { layout } = b;
  const targets: number[] = [];
  if (layout.l3 === 'ipv4') targets.push(layout.l3Offset + 10);
  const l4 = layout.l4;
  if (l4) targets.push(l4.offset + (L4_CHECKSUM_OFFSET[l4.protocol] ?? 2));
  if (targets.length === 0) return bitflip(out, rng);
  const at = rng.pick(targets);
  if (l4?.protocol === IpProtocol.UDP && at === l4.offset + 6 && rng.bool(0.3)) {
    setU16(out, at, 0); // "no checksum": legal over IPv4, invalid over IPv6 (RFC 8200 section 8.1)
  } else {
    setU16(out, at, getU16(out, at) ^ rng.range(1, 0xffff));
  }
  return out;
}

function randomOptions(b: BuiltFrame, rng: Rng): Uint8Array {
  const region = b.layout.options;
  if (!region || region.end <= region.start) return bitflip(b.frame, rng);
  const out = b.frame.slice();
  out.set(rng.bytes(region.end - region.start), region.start);
  fixChecksums(out, b.layout);
  return out;
}

function randomAfterEthernet(t: FrameTarget, rng: Rng): Uint8Array {
  const etherType = rng.pick([EtherType.IPv4, EtherType.IPv6, EtherType.ARP, EtherType.VLAN, rng.int(0x10000)]);
  const body = rng.bytes(rng.int(1500));
  // Start like a real header half the time so parsers get past the version check.
  if (body.length > 0 && rng.bool()) {
    if (etherType === EtherType.IPv4) body[0] = 0x45;
    if (etherType === EtherType.IPv6) body[0] = 0x60 | (body[0]! & 0x0f);
  }
  return ethernet(t, etherType, body, rng.bool(0.8) ? t.dstMac : BROADCAST_MAC);
}

/** Applies one mutation to a built frame; never modifies `built.frame`. */
export function mutateFrame(built: BuiltFrame, mutation: Mutation, target: FrameTarget, rng: Rng): Uint8Array {
  switch (mutation) {
    case 'none':
      return built.frame.slice();
    case 'truncate':
      return truncate(built, rng);
    case 'bitflip':
      return bitflip(built.frame, rng);
    case 'bitflip-fixed-checksums': {
      const out = bitflip(built.frame, rng);
      fixChecksums(out, built.layout);
      return out;
    }
    case 'bad-length':
      return badLength(built, rng);
    case 'bad-checksum':
      return badChecksum(built, rng);
    case 'random-options':
      return randomOptions(built, rng);
    case 'random-bytes':
      return rng.bytes(rng.int(2001));
    case 'random-after-ethernet':
      return randomAfterEthernet(target, rng);
  }
}

// ------------------------------------------------------------------ the generator

export interface FuzzFrame {
  /** Position in the sequence: with the seed, enough to reproduce the frame. */
  index: number;
  kind: FrameKind;
  mutation: Mutation;
  frame: Uint8Array;
}

/**
 * `count` frames for `target`, deterministic from `seed`. About one in six is
 * left valid; the rest carry one mutation each.
 */
export function* fuzzFrames(target: TargetInit | FrameTarget, count: number, seed: number): Generator<FuzzFrame> {
  const t = resolveTarget(target);
  for (let index = 0; index < count; index++) {
    // A PRNG per frame: frame i does not depend on how much randomness frames < i used.
    const rng = new Rng((Math.imul(seed >>> 0, 0x9e3779b1) ^ index) >>> 0);
    const kind = rng.pick(FRAME_KINDS);
    const mutation: Mutation = rng.bool(1 / 6) ? 'none' : rng.pick(MUTATIONS.slice(1));
    const built = buildFrame(kind, t, rng);
    yield { index, kind, mutation, frame: mutateFrame(built, mutation, t, rng) };
  }
}
