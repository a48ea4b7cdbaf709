/**
 * ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) messages, with helpers for echo
 * request/reply. ICMPv4 is checksummed over the message alone; ICMPv6 also
 * over the IPv6 pseudo header (RFC 4443 section 2.3).
 */

import type { Family, IpAddress } from './address.js';
import { internetChecksum, pseudoHeaderSum } from './checksum.js';
import { IpProtocol } from './ipv4.js';

/** Field offsets shared by every ICMP message, and the echo fields (RFC 792, RFC 4443 section 4.1). */
export const ICMP = {
  TYPE: 0,
  CODE: 1,
  CHECKSUM: 2,
  BODY: 4,
  ECHO_ID: 4,
  ECHO_SEQ: 6,
  ECHO_DATA: 8,
  HEADER_LEN: 8,
} as const;

export const Icmpv4Type = {
  EchoReply: 0,
  DestinationUnreachable: 3,
  Redirect: 5,
  EchoRequest: 8,
  TimeExceeded: 11,
  ParameterProblem: 12,
} as const;

export const Icmpv6Type = {
  DestinationUnreachable: 1,
  PacketTooBig: 2,
  TimeExceeded: 3,
  ParameterProblem: 4,
  EchoRequest: 128,
  EchoReply: 129,
  RouterSolicitation: 133,
  RouterAdvertisement: 134,
  NeighborSolicitation: 135,
  NeighborAdvertisement: 136,
  Redirect: 137,
} as const;

export interface IcmpMessage {
  type: number;
  code: number;
  checksum: number;
  /** A view of everything after type, code and checksum. */
  body: Uint8Array;
}

export interface IcmpInit {
  family: Family;
  type: number;
  code?: number;
  /** Everything after the checksum. */
  body: Uint8Array;
  /**
   * ICMPv6 only: with both, the checksum covers the pseudo header. Without,
   * it is left 0 for the stack to fill (lwIP computes it on output).
   */
  src?: IpAddress;
  dst?: IpAddress;
}

export interface EchoInit {
  family: Family;
  id: number;
  seq: number;
  payload?: Uint8Array;
  /** ICMPv6 only, as in `IcmpInit`: omit both to leave the checksum 0. */
  src?: IpAddress;
  dst?: IpAddress;
}

export interface EchoMessage {
  family: Family;
  kind: 'request' | 'reply';
  code: number;
  id: number;
  seq: number;
  checksum: number;
  /**
   * Whether the checksum verifies. Null for ICMPv6 without src and dst,
   * which its pseudo header needs.
   */
  checksumOk: boolean | null;
  /** A view of the echo data. */
  payload: Uint8Array;
}

/** Parses the 4 bytes every ICMP message starts with. Null when shorter. */
export function parseIcmpHeader(bytes: Uint8Array): IcmpMessage | null {
  if (bytes.length < ICMP.BODY) return null;
  return {
    type: bytes[ICMP.TYPE]!,
    code: bytes[ICMP.CODE]!,
    checksum: (bytes[ICMP.CHECKSUM]! << 8) | bytes[ICMP.CHECKSUM + 1]!,
    body: bytes.subarray(ICMP.BODY),
  };
}

/**
 * The checksum an ICMP message should carry: over the message for ICMPv4;
 * for ICMPv6, over pseudo header and message. Over a message with a correct
 * checksum in place, returns 0.
 */
export function icmpChecksum(message: Uint8Array, family: Family, src?: IpAddress, dst?: IpAddress): number {
  if (family === 4) return internetChecksum(message);
  if (!src || !dst) throw new RangeError('the ICMPv6 checksum needs src and dst');
  return internetChecksum(message, pseudoHeaderSum(src, dst, IpProtocol.ICMPv6, message.length));
}

/** A new ICMP message with its checksum (see `IcmpInit` for ICMPv6). */
export function buildIcmpMessage(init: IcmpInit): Uint8Array {
  const out = new Uint8Array(ICMP.BODY + init.body.length);
  out[ICMP.TYPE] = init.type;
  out[ICMP.CODE] = init.code ?? 0;
  out.set(init.body, ICMP.BODY);
  if (init.family === 4 || (init.src && init.dst)) {
    const sum = icmpChecksum(out, init.family, init.src, init.dst);
    out[ICMP.CHECKSUM] = sum >>> 8;
    out[ICMP.CHECKSUM + 1] = sum & 0xff;
  }
  return out;
}

function buildEcho(init: EchoInit, kind: 'request' | 'reply'): Uint8Array {
  const payload = init.payload ?? new Uint8Array(0);
  const body = new Uint8Array(4 + payload.length);
  const view = new DataView(body.buffer);
  view.setUint16(ICMP.ECHO_ID - ICMP.BODY, init.id & 0xffff);
  view.setUint16(ICMP.ECHO_SEQ - ICMP.BODY, init.seq & 0xffff);
  body.set(payload, ICMP.ECHO_DATA - ICMP.BODY);
  const type =
    init.family === 4
      ? kind === 'request' ? Icmpv4Type.EchoRequest : Icmpv4Type.EchoReply
      : kind === 'request' ? Icmpv6Type.EchoRequest : Icmpv6Type.EchoReply;
  const msg: IcmpInit = { family: init.family, type, body };
  if (init.src) msg.src = init.src;
  if (init.dst) msg.dst = init.dst;
  return buildIcmpMessage(msg);
}

/**
 * An echo request (ICMPv4 type 8, ICMPv6 type 128). For ICMPv6, pass src and
 * dst to get the checksum, or omit them to leave it 0 for the stack.
 */
export function buildEchoRequest(init: EchoInit): Uint8Array {
  return buildEcho(init, 'request');
}

/** An echo reply (ICMPv4 type 0, ICMPv6 type 129); checksum as in `buildEchoRequest`. */
export function buildEchoReply(init: EchoInit): Uint8Array {
  return buildEcho(init, 'reply');
}

/**
 * Parses an echo request or reply. The family comes from `context` when given
 * (src/dst imply it), otherwise from the type: 0 and 8 are ICMPv4, 128 and
 * 129 ICMPv6. Returns null for other types or fewer than 8 bytes.
 */
export function parseEcho(
  bytes: Uint8Array,
  context?: { family?: Family; src?: IpAddress; dst?: IpAddress },
): EchoMessage | null {
  if (bytes.length < ICMP.HEADER_LEN) return null;
  const type = bytes[ICMP.TYPE]!;
  let family: Family;
  let kind: 'request' | 'reply';
  if (type === Icmpv4Type.EchoRequest || type === Icmpv4Type.EchoReply) {
    family = 4;
    kind = type === Icmpv4Type.EchoRequest ? 'request' : 'reply';
  } else if (type === Icmpv6Type.EchoRequest || type === Icmpv6Type.EchoReply) {
    family = 6;
    kind = type === Icmpv6Type.EchoRequest ? 'request' : 'reply';
  } else {
    return null;
  }
  const expected = context?.family ?? context?.src?.family ?? context?.dst?.family;
  if (expected !== undefined && expected !== family) return null;
  let checksumOk: boolean | null = null;
  if (family === 4) {
    checksumOk = internetChecksum(bytes) === 0;
  } else if (context?.src && context.dst) {
    if (context.src.family !== 6 || context.dst.family !== 6) return null;
    checksumOk = icmpChecksum(bytes, 6, context.src, context.dst) === 0;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    family,
    kind,
    code: bytes[ICMP.CODE]!,
    id: view.getUint16(ICMP.ECHO_ID),
    seq: view.getUint16(ICMP.ECHO_SEQ),
    checksum: view.getUint16(ICMP.CHECKSUM),
    checksumOk,
    payload: bytes.subarray(ICMP.ECHO_DATA),
  };
}
