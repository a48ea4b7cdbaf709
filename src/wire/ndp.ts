/**
 * Router Solicitation and Router Advertisement messages of IPv6 Neighbor
 * Discovery (RFC 4861 sections 4.1, 4.2) with the options a router sends
 * for stateless autoconfiguration: source link-layer address (4.6.1),
 * prefix information (4.6.2), MTU (4.6.4) and recursive DNS servers
 * (RFC 8106 section 5.1). Messages are whole ICMPv6 messages, type and
 * checksum included; the checksum covers the IPv6 pseudo header, so
 * emitting one needs the addresses it will travel between.
 */

import type { IpAddress } from './address.js';
import { icmpChecksum, ICMP, Icmpv6Type } from './icmp.js';

/** Field offsets (RFC 4861 sections 4.1, 4.2, 4.6). */
export const NDP = {
  RS_HEADER_LEN: 8,
  RA_CUR_HOP_LIMIT: 4,
  RA_FLAGS: 5,
  RA_ROUTER_LIFETIME: 6,
  RA_REACHABLE_TIME: 8,
  RA_RETRANS_TIMER: 12,
  RA_HEADER_LEN: 16,
  /** Flag bits of RA_FLAGS: managed (M), other configuration (O). */
  RA_FLAG_MANAGED: 0x80,
  RA_FLAG_OTHER: 0x40,
  /** Option type and length (in 8-byte units) lead every option. */
  OPT_TYPE: 0,
  OPT_LENGTH: 1,
  PREFIX_LENGTH: 2,
  PREFIX_FLAGS: 3,
  PREFIX_VALID: 4,
  PREFIX_PREFERRED: 8,
  PREFIX_PREFIX: 16,
  PREFIX_OPT_LEN: 32,
  /** Prefix flag bits: on-link (L), autonomous address configuration (A). */
  PREFIX_FLAG_ONLINK: 0x80,
  PREFIX_FLAG_AUTONOMOUS: 0x40,
  MTU_MTU: 4,
  MTU_OPT_LEN: 8,
  RDNSS_LIFETIME: 4,
  RDNSS_ADDRESSES: 8,
} as const;

export const NdpOption = {
  SourceLinkLayerAddress: 1,
  TargetLinkLayerAddress: 2,
  PrefixInformation: 3,
  RedirectedHeader: 4,
  Mtu: 5,
  RecursiveDnsServer: 25,
} as const;

/** 0xffffffff: a lifetime that never ends (RFC 4861 section 4.6.2). */
export const INFINITE_LIFETIME = 0xffffffff;

export interface PrefixInformation {
  prefix: IpAddress;
  prefixLength: number;
  onLink: boolean;
  autonomous: boolean;
  /** Seconds. */
  validLifetime: number;
  preferredLifetime: number;
}

export interface RecursiveDnsServers {
  /** Seconds; 0 withdraws the servers. */
  lifetime: number;
  servers: IpAddress[];
}

export interface RouterAdvertisement {
  /** 0: unspecified (hosts keep theirs). */
  curHopLimit: number;
  managed: boolean;
  other: boolean;
  /** Seconds as a default router; 0: not a default router. */
  routerLifetime: number;
  /** Milliseconds; 0: unspecified. */
  reachableTime: number;
  retransTimer: number;
  sourceLinkLayerAddress?: Uint8Array;
  mtu?: number;
  prefixes: PrefixInformation[];
  dnsServers?: RecursiveDnsServers;
}

export interface RouterSolicitation {
  sourceLinkLayerAddress?: Uint8Array;
}

export interface NdpAddresses {
  src: IpAddress;
  dst: IpAddress;
}

/**
 * Walks the options after `offset`; null if one has length 0 or runs past
 * the end (RFC 4861 section 4.6: such a message is discarded).
 */
function options(bytes: Uint8Array, offset: number): Array<{ type: number; data: Uint8Array }> | null {
  const out: Array<{ type: number; data: Uint8Array }> = [];
  for (let at = offset; at < bytes.length;) {
    if (at + 2 > bytes.length) return null;
    const len = bytes[at + NDP.OPT_LENGTH]! * 8;
    if (len === 0 || at + len > bytes.length) return null;
    out.push({ type: bytes[at]!, data: bytes.subarray(at, at + len) });
    at += len;
  }
  return out;
}

/** The link-layer address of a source/target link-layer option (Ethernet: 6 bytes, RFC 2464 section 6). */
function linkLayerAddress(data: Uint8Array): Uint8Array | undefined {
  return data.length === 8 ? data.slice(2, 8) : undefined;
}

/** Whether an ICMPv6 message verifies against its pseudo header when the addresses are given. */
function checksumOk(bytes: Uint8Array, addrs?: NdpAddresses): boolean {
  return !addrs || icmpChecksum(bytes, 6, addrs.src, addrs.dst) === 0;
}

/**
 * Parses a Router Solicitation (type 133, code 0). With `addrs`, also
 * checks the checksum. Null for other messages, a bad checksum, or
 * malformed options. Unknown options are skipped (RFC 4861 section 4.6).
 */
export function parseRouterSolicitation(bytes: Uint8Array, addrs?: NdpAddresses): RouterSolicitation | null {
  if (bytes.length < NDP.RS_HEADER_LEN || bytes[ICMP.TYPE] !== Icmpv6Type.RouterSolicitation || bytes[ICMP.CODE] !== 0) return null;
  if (!checksumOk(bytes, addrs)) return null;
  const opts = options(bytes, NDP.RS_HEADER_LEN);
  if (!opts) return null;
  const rs: RouterSolicitation = {};
  for (const o of opts) {
    if (o.type === NdpOption.SourceLinkLayerAddress) rs.sourceLinkLayerAddress = linkLayerAddress(o.data);
  }
  return rs;
}

/**
 * Parses a Router Advertisement (type 134, code 0). With `addrs`, also
 * checks the checksum. Null as for `parseRouterSolicitation`, and for
 * prefix or RDNSS options of the wrong size.
 */
export function parseRouterAdvertisement(bytes: Uint8Array, addrs?: NdpAddresses): RouterAdvertisement | null {
  if (bytes.length < NDP.RA_HEADER_LEN || bytes[ICMP.TYPE] !== Icmpv6Type.RouterAdvertisement || bytes[ICMP.CODE] !== 0) return null;
  if (!checksumOk(bytes, addrs)) return null;
  const opts = options(bytes, NDP.RA_HEADER_LEN);
  if (!opts) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flags = bytes[NDP.RA_FLAGS]!;
  const ra: RouterAdvertisement = {
    curHopLimit: bytes[NDP.RA_CUR_HOP_LIMIT]!,
    managed: (flags & NDP.RA_FLAG_MANAGED) !== 0,
    other: (flags & NDP.RA_FLAG_OTHER) !== 0,
    routerLifetime: view.getUint16(NDP.RA_ROUTER_LIFETIME),
    reachableTime: view.getUint32(NDP.RA_REACHABLE_TIME),
    retransTimer: view.getUint32(NDP.RA_RETRANS_TIMER),
    prefixes: [],
  };
  for (const { type, data } of opts) {
    const ov = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (type === NdpOption.SourceLinkLayerAddress) {
      ra.sourceLinkLayerAddress = linkLayerAddress(data);
    } else if (type === NdpOption.PrefixInformation) {
      if (data.length !== NDP.PREFIX_OPT_LEN) return null;
      const pflags = data[NDP.PREFIX_FLAGS]!;
      ra.prefixes.push({
        prefix: { family: 6, bytes: data.slice(NDP.PREFIX_PREFIX, NDP.PREFIX_PREFIX + 16), zone: 0 },
        prefixLength: data[NDP.PREFIX_LENGTH]!,
        onLink: (pflags & NDP.PREFIX_FLAG_ONLINK) !== 0,
        autonomous: (pflags & NDP.PREFIX_FLAG_AUTONOMOUS) !== 0,
        validLifetime: ov.getUint32(NDP.PREFIX_VALID),
        preferredLifetime: ov.getUint32(NDP.PREFIX_PREFERRED),
      });
    } else if (type === NdpOption.Mtu) {
      if (data.length !== NDP.MTU_OPT_LEN) return null;
      ra.mtu = ov.getUint32(NDP.MTU_MTU);
    } else if (type === NdpOption.RecursiveDnsServer) {
      // RFC 8106 section 5.1: length 3 + 2n with n >= 1, i.e. odd and at least 3.
      if (data.length < 24 || (data.length / 8) % 2 !== 1) return null;
      const servers: IpAddress[] = [];
      for (let at = NDP.RDNSS_ADDRESSES; at < data.length; at += 16) servers.push({ family: 6, bytes: data.slice(at, at + 16), zone: 0 });
      ra.dnsServers = { lifetime: ov.getUint32(NDP.RDNSS_LIFETIME), servers };
    }
  }
  return ra;
}

function u32(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be a 32-bit unsigned integer`);
  return v;
}

function setChecksum(out: Uint8Array, addrs: NdpAddresses): Uint8Array {
  if (addrs.src.family !== 6 || addrs.dst.family !== 6) throw new RangeError('NDP messages travel between IPv6 addresses');
  const sum = icmpChecksum(out, 6, addrs.src, addrs.dst);
  out[ICMP.CHECKSUM] = sum >>> 8;
  out[ICMP.CHECKSUM + 1] = sum & 0xff;
  return out;
}

function emitLinkLayerOption(out: Uint8Array, at: number, mac: Uint8Array): number {
  if (mac.length !== 6) throw new RangeError('the link-layer address must be 6 bytes (Ethernet)');
  out[at + NDP.OPT_TYPE] = NdpOption.SourceLinkLayerAddress;
  out[at + NDP.OPT_LENGTH] = 1;
  out.set(mac, at + 2);
  return 8;
}

/** A Router Solicitation from `addrs.src` to `addrs.dst` (usually ff02::2), checksummed. */
export function buildRouterSolicitation(rs: RouterSolicitation, addrs: NdpAddresses): Uint8Array {
  const out = new Uint8Array(NDP.RS_HEADER_LEN + (rs.sourceLinkLayerAddress ? 8 : 0));
  out[ICMP.TYPE] = Icmpv6Type.RouterSolicitation;
  if (rs.sourceLinkLayerAddress) emitLinkLayerOption(out, NDP.RS_HEADER_LEN, rs.sourceLinkLayerAddress);
  return setChecksum(out, addrs);
}

/**
 * A Router Advertisement from `addrs.src` (the router's link-local address,
 * RFC 4861 section 6.1.2) to `addrs.dst`, checksummed. Options go in the
 * order source link-layer address, MTU, prefixes, RDNSS.
 */
export function buildRouterAdvertisement(ra: RouterAdvertisement, addrs: NdpAddresses): Uint8Array {
  if (!Number.isInteger(ra.curHopLimit) || ra.curHopLimit < 0 || ra.curHopLimit > 255) throw new RangeError('curHopLimit must be 0-255');
  if (!Number.isInteger(ra.routerLifetime) || ra.routerLifetime < 0 || ra.routerLifetime > 0xffff) throw new RangeError('routerLifetime must be 0-65535 seconds');
  const servers = ra.dnsServers?.servers ?? [];
  if (ra.dnsServers && servers.length === 0) throw new RangeError('an RDNSS option needs at least one server');
  const len = NDP.RA_HEADER_LEN + (ra.sourceLinkLayerAddress ? 8 : 0) + (ra.mtu !== undefined ? NDP.MTU_OPT_LEN : 0) +
    ra.prefixes.length * NDP.PREFIX_OPT_LEN + (ra.dnsServers ? NDP.RDNSS_ADDRESSES + 16 * servers.length : 0);
  const out = new Uint8Array(len);
  const view = new DataView(out.buffer);
  out[ICMP.TYPE] = Icmpv6Type.RouterAdvertisement;
  out[NDP.RA_CUR_HOP_LIMIT] = ra.curHopLimit;
  out[NDP.RA_FLAGS] = (ra.managed ? NDP.RA_FLAG_MANAGED : 0) | (ra.other ? NDP.RA_FLAG_OTHER : 0);
  view.setUint16(NDP.RA_ROUTER_LIFETIME, ra.routerLifetime);
  view.setUint32(NDP.RA_REACHABLE_TIME, u32('reachableTime', ra.reachableTime));
  view.setUint32(NDP.RA_RETRANS_TIMER, u32('retransTimer', ra.retransTimer));
  let at = NDP.RA_HEADER_LEN;
  if (ra.sourceLinkLayerAddress) at += emitLinkLayerOption(out, at, ra.sourceLinkLayerAddress);
  if (ra.mtu !== undefined) {
    out[at + NDP.OPT_TYPE] = NdpOption.Mtu;
    out[at + NDP.OPT_LENGTH] = 1;
    view.setUint32(at + NDP.MTU_MTU, u32('mtu', ra.mtu));
    at += NDP.MTU_OPT_LEN;
  }
  for (const p of ra.prefixes) {
    if (p.prefix.family !== 6) throw new RangeError('a prefix must be IPv6');
    if (!Number.isInteger(p.prefixLength) || p.prefixLength < 0 || p.prefixLength > 128) throw new RangeError('prefixLength must be 0-128');
    out[at + NDP.OPT_TYPE] = NdpOption.PrefixInformation;
    out[at + NDP.OPT_LENGTH] = NDP.PREFIX_OPT_LEN / 8;
    out[at + NDP.PREFIX_LENGTH] = p.prefixLength;
    out[at + NDP.PREFIX_FLAGS] = (p.onLink ? NDP.PREFIX_FLAG_ONLINK : 0) | (p.autonomous ? NDP.PREFIX_FLAG_AUTONOMOUS : 0);
    view.setUint32(at + NDP.PREFIX_VALID, u32('validLifetime', p.validLifetime));
    view.setUint32(at + NDP.PREFIX_PREFERRED, u32('preferredLifetime', p.preferredLifetime));
    out.set(p.prefix.bytes, at + NDP.PREFIX_PREFIX);
    at += NDP.PREFIX_OPT_LEN;
  }
  if (ra.dnsServers) {
    out[at + NDP.OPT_TYPE] = NdpOption.RecursiveDnsServer;
    out[at + NDP.OPT_LENGTH] = 1 + 2 * servers.length;
    view.setUint32(at + NDP.RDNSS_LIFETIME, u32('dnsServers.lifetime', ra.dnsServers.lifetime));
    servers.forEach((s, i) => {
      if (s.family !== 6) throw new RangeError('DNS servers in an RA must be IPv6');
      out.set(s.bytes, at + NDP.RDNSS_ADDRESSES + 16 * i);
    });
  }
  return setChecksum(out, addrs);
}
