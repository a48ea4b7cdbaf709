/**
 * UDP datagrams (RFC 768), checksummed over the IPv4 or IPv6 pseudo header.
 */

import type { IpAddress } from './address.js';
import { internetChecksum, pseudoHeaderSum, type PseudoHeader } from './checksum.js';
import { IpProtocol } from './ipv4.js';

/** Field offsets (RFC 768). */
export const UDP = {
  SRC_PORT: 0,
  DST_PORT: 2,
  LENGTH: 4,
  CHECKSUM: 6,
  HEADER_LEN: 8,
} as const;

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  /** The length field: header plus data. */
  length: number;
  checksum: number;
  /**
   * Whether the checksum verifies; null when no pseudo header was given.
   * Over IPv4 a zero checksum means "none sent" and counts as ok (RFC 768);
   * over IPv6 it is invalid (RFC 8200 section 8.1).
   */
  checksumOk: boolean | null;
  /** A view of the data up to the length field; bytes past it are ignored. */
  payload: Uint8Array;
}

export interface UdpInit {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
  /**
   * With both, the checksum is computed. Without, it is left 0: "no checksum"
   * over IPv4, or for the stack to fill over IPv6.
   */
  src?: IpAddress;
  dst?: IpAddress;
}

/**
 * Parses a UDP header. Returns null when shorter than 8 bytes, or when the
 * length field is below 8 or runs past the bytes.
 */
export function parseUdpDatagram(bytes: Uint8Array, pseudo?: PseudoHeader): UdpDatagram | null {
  if (bytes.length < UDP.HEADER_LEN) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint16(UDP.LENGTH);
  if (length < UDP.HEADER_LEN || length > bytes.length) return null;
  const checksum = view.getUint16(UDP.CHECKSUM);
  let checksumOk: boolean | null = null;
  if (pseudo) {
    if (pseudo.src.family !== pseudo.dst.family) return null;
    if (checksum === 0) {
      checksumOk = pseudo.src.family === 4;
    } else {
      const initial = pseudoHeaderSum(pseudo.src, pseudo.dst, IpProtocol.UDP, length);
      checksumOk = internetChecksum(bytes.subarray(0, length), initial) === 0;
    }
  }
  return {
    srcPort: view.getUint16(UDP.SRC_PORT),
    dstPort: view.getUint16(UDP.DST_PORT),
    length,
    checksum,
    checksumOk,
    payload: bytes.subarray(UDP.HEADER_LEN, length),
  };
}

/** Writes header and payload at `offset`; returns the datagram length. */
export function emitUdpDatagram(init: UdpInit, buf: Uint8Array, offset = 0): number {
  const length = UDP.HEADER_LEN + init.payload.length;
  if (length > 0xffff) throw new RangeError('UDP datagram exceeds 65535 bytes');
  if (offset < 0 || buf.length - offset < length) throw new RangeError('buffer too small for the UDP datagram');
  const out = buf.subarray(offset, offset + length);
  out.set(init.payload, UDP.HEADER_LEN); // first: the payload may be a view into `buf`
  const view = new DataView(out.buffer, out.byteOffset, UDP.HEADER_LEN);
  view.setUint16(UDP.SRC_PORT, init.srcPort);
  view.setUint16(UDP.DST_PORT, init.dstPort);
  view.setUint16(UDP.LENGTH, length);
  view.setUint16(UDP.CHECKSUM, 0);
  if (init.src && init.dst) {
    const sum = internetChecksum(out, pseudoHeaderSum(init.src, init.dst, IpProtocol.UDP, length));
    // A computed zero is sent as all ones, since zero means "no checksum" (RFC 768).
    view.setUint16(UDP.CHECKSUM, sum === 0 ? 0xffff : sum);
  }
  return length;
}

export function buildUdpDatagram(init: UdpInit): Uint8Array {
  const out = new Uint8Array(UDP.HEADER_LEN + init.payload.length);
  emitUdpDatagram(init, out, 0);
  return out;
}
