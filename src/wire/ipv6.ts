/**
 * IPv6 headers (RFC 8200 section 3) and the extension header chain
 * (RFC 8200 section 4).
 */

import type { IpAddress } from './address.js';
import { IpProtocol } from './ipv4.js';

/** Field offsets of the fixed header (RFC 8200 section 3). */
export const IPV6 = {
  VERSION_TC_FLOW: 0,
  PAYLOAD_LENGTH: 4,
  NEXT_HEADER: 6,
  HOP_LIMIT: 7,
  SRC: 8,
  DST: 24,
  HEADER_LEN: 40,
  /** Fragment header (RFC 8200 section 4.5): next header, reserved, offset/flags, id. */
  FRAG_OFFSET_FLAGS: 2,
  FRAG_IDENTIFICATION: 4,
  FRAG_HEADER_LEN: 8,
  FRAG_M: 0x0001,
  FRAG_OFFSET_MASK: 0xfff8,
} as const;

export interface IPv6ExtensionHeader {
  /** The protocol number of this header (0, 43, 44, 51, 60). */
  type: number;
  /** The whole header (a view), including its next-header byte. */
  data: Uint8Array;
}

export interface IPv6Fragment {
  /** In bytes. */
  offset: number;
  moreFragments: boolean;
  identification: number;
}

export interface IPv6Packet {
  trafficClass: number;
  flowLabel: number;
  payloadLength: number;
  /** The fixed header's Next Header. */
  nextHeader: number;
  hopLimit: number;
  src: IpAddress;
  dst: IpAddress;
  /** A view of everything after the fixed header, up to the payload length. */
  payload: Uint8Array;
  extensionHeaders: IPv6ExtensionHeader[];
  /**
   * The protocol after the extension headers: 59 (No Next Header), or 50 (ESP)
   * when the chain continues encrypted.
   */
  upperProtocol: number;
  /** A view after the extension headers (fragment data when `fragment` is set). */
  upperPayload: Uint8Array;
  fragment?: IPv6Fragment;
}

export interface IPv6HeaderInit {
  src: IpAddress;
  dst: IpAddress;
  nextHeader: number;
  /** Length of everything after the fixed header. */
  payloadLength: number;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
}

/** Headers whose length is (Hdr Ext Len + 1) × 8 (RFC 8200 section 4.3-4.6). */
function isGenericExtension(type: number): boolean {
  return type === IpProtocol.HopByHop || type === IpProtocol.IPv6Route || type === IpProtocol.IPv6DestOpts;
}

/**
 * Parses the fixed header and walks the extension header chain. Returns null
 * when the version is not 6, the payload length runs past the bytes, an
 * extension header runs past the payload, or Hop-by-Hop is not first
 * (RFC 8200 section 4.1). Jumbograms (RFC 2675) are not supported.
 */
export function parseIPv6Packet(bytes: Uint8Array): IPv6Packet | null {
  if (bytes.length < IPV6.HEADER_LEN) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const word0 = view.getUint32(IPV6.VERSION_TC_FLOW);
  if (word0 >>> 28 !== 6) return null;
  const payloadLength = view.getUint16(IPV6.PAYLOAD_LENGTH);
  if (IPV6.HEADER_LEN + payloadLength > bytes.length) return null;
  const payload = bytes.subarray(IPV6.HEADER_LEN, IPV6.HEADER_LEN + payloadLength);
  const nextHeader = bytes[IPV6.NEXT_HEADER]!;

  const extensionHeaders: IPv6ExtensionHeader[] = [];
  let fragment: IPv6Fragment | undefined;
  let type = nextHeader;
  let at = 0;
  // Each header consumes at least 8 bytes, so the walk ends within the payload.
  for (;;) {
    let len: number;
    if (isGenericExtension(type)) {
      if (at + 2 > payload.length) return null;
      if (type === IpProtocol.HopByHop && extensionHeaders.length > 0) return null;
      len = (payload[at + 1]! + 1) * 8;
    } else if (type === IpProtocol.IPv6Fragment) {
      len = IPV6.FRAG_HEADER_LEN;
      if (at + len > payload.length) return null;
      const pv = new DataView(payload.buffer, payload.byteOffset + at, len);
      const of = pv.getUint16(IPV6.FRAG_OFFSET_FLAGS);
      fragment = {
        offset: of & IPV6.FRAG_OFFSET_MASK,
        moreFragments: (of & IPV6.FRAG_M) !== 0,
        identification: pv.getUint32(IPV6.FRAG_IDENTIFICATION),
      };
    } else if (type === IpProtocol.AH) {
      // RFC 4302 section 2.2: length in 4-byte units, minus 2.
      if (at + 2 > payload.length) return null;
      len = (payload[at + 1]! + 2) * 4;
    } else {
      break;
    }
    if (at + len > payload.length) return null;
    extensionHeaders.push({ type, data: payload.subarray(at, at + len) });
    type = payload[at]!;
    at += len;
    // Past a non-first fragment's header the bytes are fragment data, not headers.
    if (fragment && fragment.offset !== 0) break;
  }

  const packet: IPv6Packet = {
    trafficClass: (word0 >>> 20) & 0xff,
    flowLabel: word0 & 0xfffff,
    payloadLength,
    nextHeader,
    hopLimit: bytes[IPV6.HOP_LIMIT]!,
    src: { family: 6, bytes: bytes.slice(IPV6.SRC, IPV6.SRC + 16), zone: 0 },
    dst: { family: 6, bytes: bytes.slice(IPV6.DST, IPV6.DST + 16), zone: 0 },
    payload,
    extensionHeaders,
    upperProtocol: type,
    upperPayload: payload.subarray(at),
  };
  if (fragment) packet.fragment = fragment;
  return packet;
}

/** Writes the fixed header at `offset`; returns 40. */
export function emitIPv6Header(init: IPv6HeaderInit, buf: Uint8Array, offset = 0): number {
  if (init.src.family !== 6 || init.dst.family !== 6) throw new RangeError('IPv6 header needs IPv6 addresses');
  if (init.payloadLength > 0xffff) throw new RangeError('IPv6 payload length exceeds 65535');
  if (offset < 0 || buf.length - offset < IPV6.HEADER_LEN) throw new RangeError('buffer too small for the IPv6 header');
  const view = new DataView(buf.buffer, buf.byteOffset + offset, IPV6.HEADER_LEN);
  view.setUint32(
    IPV6.VERSION_TC_FLOW,
    ((6 << 28) | (((init.trafficClass ?? 0) & 0xff) << 20) | ((init.flowLabel ?? 0) & 0xfffff)) >>> 0,
  );
  view.setUint16(IPV6.PAYLOAD_LENGTH, init.payloadLength);
  view.setUint8(IPV6.NEXT_HEADER, init.nextHeader);
  view.setUint8(IPV6.HOP_LIMIT, init.hopLimit ?? 64);
  buf.set(init.src.bytes, offset + IPV6.SRC);
  buf.set(init.dst.bytes, offset + IPV6.DST);
  return IPV6.HEADER_LEN;
}

/** A new packet: fixed header then payload (which may start with extension headers). */
export function buildIPv6Packet(init: Omit<IPv6HeaderInit, 'payloadLength'> & { payload: Uint8Array }): Uint8Array {
  const out = new Uint8Array(IPV6.HEADER_LEN + init.payload.length);
  emitIPv6Header({ ...init, payloadLength: init.payload.length }, out, 0);
  out.set(init.payload, IPV6.HEADER_LEN);
  return out;
}

/**
 * A Hop-by-Hop, Routing or Destination Options header: next header, length,
 * then `body`, padded to a multiple of 8 with Pad1/PadN (RFC 8200 section 4.2).
 * For a Routing header, `body` starts with routing type and segments left.
 */
export function buildIPv6ExtensionHeader(nextHeader: number, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const len = (2 + body.length + 7) & ~7;
  if (len / 8 - 1 > 0xff) throw new RangeError('extension header too long');
  const out = new Uint8Array(len);
  out[0] = nextHeader;
  out[1] = len / 8 - 1;
  out.set(body, 2);
  const pad = len - 2 - body.length;
  if (pad === 1) {
    out[2 + body.length] = 0; // Pad1
  } else if (pad > 1) {
    out[2 + body.length] = 1; // PadN: type, length, zeros
    out[3 + body.length] = pad - 2;
  }
  return out;
}

/** A Fragment header (RFC 8200 section 4.5); `offset` in bytes, a multiple of 8. */
export function buildIPv6FragmentHeader(
  nextHeader: number,
  offset: number,
  moreFragments: boolean,
  identification: number,
): Uint8Array {
  if (offset % 8 !== 0 || offset > IPV6.FRAG_OFFSET_MASK) throw new RangeError('bad IPv6 fragment offset');
  const out = new Uint8Array(IPV6.FRAG_HEADER_LEN);
  const view = new DataView(out.buffer);
  out[0] = nextHeader;
  view.setUint16(IPV6.FRAG_OFFSET_FLAGS, offset | (moreFragments ? IPV6.FRAG_M : 0));
  view.setUint32(IPV6.FRAG_IDENTIFICATION, identification >>> 0);
  return out;
}

export { IpProtocol };
