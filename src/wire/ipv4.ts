/**
 * IPv4 headers (RFC 791 section 3.1), with options carried as raw bytes.
 */

import type { IpAddress } from './address.js';
import { internetChecksum } from './checksum.js';

/** Field offsets (RFC 791 section 3.1). */
export const IPV4 = {
  VERSION_IHL: 0,
  DSCP_ECN: 1,
  TOTAL_LENGTH: 2,
  IDENTIFICATION: 4,
  FLAGS_FRAGMENT: 6,
  TTL: 8,
  PROTOCOL: 9,
  CHECKSUM: 10,
  SRC: 12,
  DST: 16,
  OPTIONS: 20,
  MIN_HEADER_LEN: 20,
  MAX_HEADER_LEN: 60,
  /** Flag bits in the 16-bit flags/fragment word. */
  FLAG_DF: 0x4000,
  FLAG_MF: 0x2000,
  FRAGMENT_MASK: 0x1fff,
} as const;

export const IpProtocol = {
  HopByHop: 0,
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  IPv6Route: 43,
  IPv6Fragment: 44,
  ESP: 50,
  AH: 51,
  ICMPv6: 58,
  IPv6NoNext: 59,
  IPv6DestOpts: 60,
} as const;

export interface IPv4Packet {
  headerLength: number;
  dscp: number;
  ecn: number;
  totalLength: number;
  identification: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** In bytes (the field counts 8-byte units). */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  checksum: number;
  /** Whether the header checksum verifies. Parsing does not reject on it. */
  checksumOk: boolean;
  src: IpAddress;
  dst: IpAddress;
  /** Raw option bytes (a view), empty when IHL is 5. */
  options: Uint8Array;
  /** A view of the data up to the total length; link-layer padding is excluded. */
  payload: Uint8Array;
}

export interface IPv4HeaderInit {
  src: IpAddress;
  dst: IpAddress;
  protocol: number;
  /** Length of the data after the header. */
  payloadLength: number;
  ttl?: number;
  identification?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** In bytes; must be a multiple of 8. */
  fragmentOffset?: number;
  dscp?: number;
  ecn?: number;
  /** Raw options; padded with zero (End of Option List) to a multiple of 4. */
  options?: Uint8Array;
}

/**
 * Parses an IPv4 header. Returns null when the version is not 4, IHL is below
 * 5, or the header or total length runs past the bytes (a truncated packet).
 * Addresses are copies; options and payload are views.
 */
export function parseIPv4Packet(bytes: Uint8Array): IPv4Packet | null {
  if (bytes.length < IPV4.MIN_HEADER_LEN) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const vihl = bytes[IPV4.VERSION_IHL]!;
  if (vihl >> 4 !== 4) return null;
  const headerLength = (vihl & 0x0f) * 4;
  if (headerLength < IPV4.MIN_HEADER_LEN || headerLength > bytes.length) return null;
  const totalLength = view.getUint16(IPV4.TOTAL_LENGTH);
  if (totalLength < headerLength || totalLength > bytes.length) return null;
  const flags = view.getUint16(IPV4.FLAGS_FRAGMENT);
  const tos = bytes[IPV4.DSCP_ECN]!;
  return {
    headerLength,
    dscp: tos >> 2,
    ecn: tos & 0x03,
    totalLength,
    identification: view.getUint16(IPV4.IDENTIFICATION),
    dontFragment: (flags & IPV4.FLAG_DF) !== 0,
    moreFragments: (flags & IPV4.FLAG_MF) !== 0,
    fragmentOffset: (flags & IPV4.FRAGMENT_MASK) * 8,
    ttl: bytes[IPV4.TTL]!,
    protocol: bytes[IPV4.PROTOCOL]!,
    checksum: view.getUint16(IPV4.CHECKSUM),
    checksumOk: internetChecksum(bytes.subarray(0, headerLength)) === 0,
    src: { family: 4, bytes: bytes.slice(IPV4.SRC, IPV4.SRC + 4), zone: 0 },
    dst: { family: 4, bytes: bytes.slice(IPV4.DST, IPV4.DST + 4), zone: 0 },
    options: bytes.subarray(IPV4.OPTIONS, headerLength),
    payload: bytes.subarray(headerLength, totalLength),
  };
}

export function ipv4HeaderLength(init: { options?: Uint8Array }): number {
  return IPV4.MIN_HEADER_LEN + (((init.options?.length ?? 0) + 3) & ~3);
}

/** Writes the header (with its checksum) at `offset`; returns the header length. */
export function emitIPv4Header(init: IPv4HeaderInit, buf: Uint8Array, offset = 0): number {
  if (init.src.family !== 4 || init.dst.family !== 4) throw new RangeError('IPv4 header needs IPv4 addresses');
  const hlen = ipv4HeaderLength(init);
  if (hlen > IPV4.MAX_HEADER_LEN) throw new RangeError('IPv4 options exceed 40 bytes');
  const totalLength = hlen + init.payloadLength;
  if (totalLength > 0xffff) throw new RangeError('IPv4 total length exceeds 65535');
  const fragmentOffset = init.fragmentOffset ?? 0;
  if (fragmentOffset % 8 !== 0 || fragmentOffset / 8 > IPV4.FRAGMENT_MASK) {
    throw new RangeError('IPv4 fragment offset must be a multiple of 8 below 65536');
  }
  if (offset < 0 || buf.length - offset < hlen) throw new RangeError('buffer too small for the IPv4 header');
  const header = buf.subarray(offset, offset + hlen);
  const view = new DataView(header.buffer, header.byteOffset, hlen);
  header.fill(0);
  header[IPV4.VERSION_IHL] = 0x40 | (hlen / 4);
  header[IPV4.DSCP_ECN] = (((init.dscp ?? 0) & 0x3f) << 2) | ((init.ecn ?? 0) & 0x03);
  view.setUint16(IPV4.TOTAL_LENGTH, totalLength);
  view.setUint16(IPV4.IDENTIFICATION, init.identification ?? 0);
  view.setUint16(
    IPV4.FLAGS_FRAGMENT,
    (init.dontFragment ? IPV4.FLAG_DF : 0) | (init.moreFragments ? IPV4.FLAG_MF : 0) | (fragmentOffset / 8),
  );
  header[IPV4.TTL] = init.ttl ?? 64;
  header[IPV4.PROTOCOL] = init.protocol;
  header.set(init.src.bytes, IPV4.SRC);
  header.set(init.dst.bytes, IPV4.DST);
  if (init.options) header.set(init.options, IPV4.OPTIONS);
  view.setUint16(IPV4.CHECKSUM, internetChecksum(header));
  return hlen;
}

/** A new packet: header (with checksum) then payload. */
export function buildIPv4Packet(init: Omit<IPv4HeaderInit, 'payloadLength'> & { payload: Uint8Array }): Uint8Array {
  const hlen = ipv4HeaderLength(init);
  const out = new Uint8Array(hlen + init.payload.length);
  emitIPv4Header({ ...init, payloadLength: init.payload.length }, out, 0);
  out.set(init.payload, hlen);
  return out;
}
