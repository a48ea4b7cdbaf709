/**
 * Where the fields of an Ethernet frame are, as byte offsets, so mutators
 * can aim at one field and fix up what depends on it (lengths, checksums).
 * Tolerant: a frame that is already malformed dissects as far as its bytes
 * go, and what cannot be located is left out.
 */
import { internetChecksum, pseudoHeaderSum } from '../../src/wire/checksum.js';
import { EtherType } from '../../src/wire/ethernet.js';
import { IpProtocol } from '../../src/wire/ipv4.js';
import type { IpAddress } from '../../src/wire/address.js';

export const ETH_HEADER = 14;

/** The protocols the fuzzer sends, one campaign each. */
export const PROTOCOLS = ['arp', 'ndp', 'icmp', 'icmpv6', 'ipv4-frag', 'ipv6-frag', 'udp', 'tcp', 'dhcp', 'dns'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export interface IpLayer {
  family: 4 | 6;
  offset: number;
  /** IPv4: IHL × 4. IPv6: 40 plus the extension headers walked. */
  headerLength: number;
  /** Where the byte naming the upper protocol is (IPv4 protocol, last next-header). */
  protocolAt: number;
  protocol: number;
  /** The IP payload's end as the length field says, clipped to the frame. */
  end: number;
  /** IPv6: offsets of the extension headers walked, in order. */
  extensions: { type: number; offset: number; length: number }[];
  /** Set for a fragment (IPv4 MF or offset, any IPv6 fragment header). */
  fragment?: { offset: number; more: boolean; at: number };
}

export interface Dissection {
  etherType: number;
  arp?: { offset: number };
  ip?: IpLayer;
  /** The upper-layer header, for unfragmented packets or first fragments that hold it. */
  l4?: { protocol: number; offset: number; end: number };
  tcp?: { headerLength: number; seq: number; ack: number; flags: number; srcPort: number; dstPort: number; payloadLength: number };
  udp?: { srcPort: number; dstPort: number };
  icmp?: { type: number; code: number };
}

const u16 = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!;
const u32 = (b: Uint8Array, at: number) => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

export function setU16(b: Uint8Array, at: number, v: number): void {
  if (at < 0 || at + 1 >= b.length) return;
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

export function setU32(b: Uint8Array, at: number, v: number): void {
  if (at < 0 || at + 3 >= b.length) return;
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

export { u16 as getU16, u32 as getU32 };

const GENERIC_EXT = new Set<number>([IpProtocol.HopByHop, IpProtocol.IPv6Route, IpProtocol.IPv6DestOpts]);

export function dissect(frame: Uint8Array): Dissection {
  const d: Dissection = { etherType: frame.length >= ETH_HEADER ? u16(frame, 12) : -1 };
  if (frame.length < ETH_HEADER) return d;
  const at = ETH_HEADER;
  if (d.etherType === EtherType.ARP) {
    d.arp = { offset: at };
  } else if (d.etherType === EtherType.IPv4 && frame.length >= at + 20) {
    const ihl = (frame[at]! & 0x0f) * 4;
    const total = u16(frame, at + 2);
    const end = Math.min(frame.length, at + Math.max(total, ihl));
    const of = u16(frame, at + 6);
    const ip: IpLayer = { family: 4, offset: at, headerLength: ihl, protocolAt: at + 9, protocol: frame[at + 9]!, end, extensions: [] };
    const offset = (of & 0x1fff) * 8;
    const more = (of & 0x2000) !== 0;
    if (offset !== 0 || more) ip.fragment = { offset, more, at: at + 6 };
    d.ip = ip;
    if (ihl >= 20 && offset === 0 && at + ihl <= end) d.l4 = { protocol: ip.protocol, offset: at + ihl, end };
  } else if (d.etherType === EtherType.IPv6 && frame.length >= at + 40) {
    const end = Math.min(frame.length, at + 40 + u16(frame, at + 4));
    const ip: IpLayer = { family: 6, offset: at, headerLength: 40, protocolAt: at + 6, protocol: frame[at + 6]!, end, extensions: [] };
    let p = at + 40;
    let type = ip.protocol;
    for (let n = 0; n < 16; n++) {
      let len: number;
      if (GENERIC_EXT.has(type)) {
        if (p + 2 > end) break;
        len = (frame[p + 1]! + 1) * 8;
      } else if (type === IpProtocol.IPv6Fragment) {
        len = 8;
        if (p + 8 <= end) {
          const of = u16(frame, p + 2);
          ip.fragment = { offset: of & 0xfff8, more: (of & 1) !== 0, at: p + 2 };
        }
      } else break;
      if (p + len > end) break;
      ip.extensions.push({ type, offset: p, length: len });
      ip.protocolAt = p;
      type = frame[p]!;
      p += len;
      if (ip.fragment && ip.fragment.offset !== 0) break;
    }
    ip.protocol = type;
    ip.headerLength = p - at;
    d.ip = ip;
    if (!ip.fragment || ip.fragment.offset === 0) d.l4 = { protocol: type, offset: p, end };
  }
  const l4 = d.l4;
  if (!l4) return d;
  const b = l4.offset;
  if (l4.protocol === IpProtocol.TCP && b + 20 <= l4.end) {
    const hl = (frame[b + 12]! >> 4) * 4;
    d.tcp = {
      headerLength: hl, seq: u32(frame, b + 4), ack: u32(frame, b + 8), flags: frame[b + 13]!,
      srcPort: u16(frame, b), dstPort: u16(frame, b + 2), payloadLength: Math.max(0, l4.end - b - hl),
    };
  } else if (l4.protocol === IpProtocol.UDP && b + 8 <= l4.end) {
    d.udp = { srcPort: u16(frame, b), dstPort: u16(frame, b + 2) };
  } else if ((l4.protocol === IpProtocol.ICMP || l4.protocol === IpProtocol.ICMPv6) && b + 4 <= l4.end) {
    d.icmp = { type: frame[b]!, code: frame[b + 1]! };
  }
  return d;
}

/** The campaign a frame belongs to; null for what the fuzzer does not aim at. */
export function classify(d: Dissection): Protocol | null {
  if (d.arp) return 'arp';
  if (!d.ip) return null;
  if (d.ip.fragment) return d.ip.family === 4 ? 'ipv4-frag' : 'ipv6-frag';
  if (d.udp) {
    const ports = [d.udp.srcPort, d.udp.dstPort];
    if (ports.includes(67) || ports.includes(68)) return 'dhcp';
    if (ports.includes(53)) return 'dns';
    return 'udp';
  }
  if (d.tcp) return d.tcp.srcPort === 53 || d.tcp.dstPort === 53 ? 'dns' : 'tcp';
  if (d.icmp) {
    if (d.ip.family === 4) return 'icmp';
    // Router/neighbour discovery and redirects (RFC 4861), MLD (RFC 2710, 3810).
    return (d.icmp.type >= 133 && d.icmp.type <= 137) || d.icmp.type === 130 || d.icmp.type === 131 || d.icmp.type === 132 || d.icmp.type === 143 ? 'ndp' : 'icmpv6';
  }
  return null;
}

function addr(frame: Uint8Array, at: number, family: 4 | 6): IpAddress {
  return { family, bytes: frame.slice(at, at + (family === 4 ? 4 : 16)), zone: 0 };
}

/** Sets IPv4 total length / IPv6 payload length and UDP length to what the frame holds (Ethernet padding excluded when `end` is given). */
export function fixLengths(frame: Uint8Array, d: Dissection, end = frame.length): void {
  const ip = d.ip;
  if (!ip) return;
  if (ip.family === 4) setU16(frame, ip.offset + 2, end - ip.offset);
  else setU16(frame, ip.offset + 4, end - ip.offset - 40);
  if (d.udp && d.l4) setU16(frame, d.l4.offset + 4, end - d.l4.offset);
}

/**
 * Recomputes the IPv4 header checksum (over the IHL the header claims) and
 * the upper-layer checksum of an unfragmented packet, so that a mutation
 * gets past checksum checks to the code that parses what was mutated.
 */
export function fixChecksums(frame: Uint8Array, d: Dissection = dissect(frame)): void {
  const ip = d.ip;
  if (!ip) return;
  if (ip.family === 4 && ip.headerLength >= 20 && ip.offset + ip.headerLength <= frame.length) {
    setU16(frame, ip.offset + 10, 0);
    setU16(frame, ip.offset + 10, internetChecksum(frame.subarray(ip.offset, ip.offset + ip.headerLength)));
  }
  const l4 = d.l4;
  if (!l4 || ip.fragment) return;
  const at = l4.protocol === IpProtocol.TCP ? 16 : l4.protocol === IpProtocol.UDP ? 6 : l4.protocol === IpProtocol.ICMP || l4.protocol === IpProtocol.ICMPv6 ? 2 : -1;
  if (at < 0 || l4.offset + at + 2 > l4.end) return;
  const seg = frame.subarray(l4.offset, l4.end);
  setU16(seg, at, 0);
  const src = addr(frame, ip.family === 4 ? ip.offset + 12 : ip.offset + 8, ip.family);
  const dst = addr(frame, ip.family === 4 ? ip.offset + 16 : ip.offset + 24, ip.family);
  const initial = l4.protocol === IpProtocol.ICMP ? 0 : pseudoHeaderSum(src, dst, l4.protocol, seg.length);
  const sum = internetChecksum(seg, initial);
  setU16(seg, at, l4.protocol === IpProtocol.UDP && sum === 0 ? 0xffff : sum);
}
