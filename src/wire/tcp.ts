/**
 * TCP segment headers (RFC 9293 section 3.1) and their options: MSS
 * (RFC 9293 section 3.2), window scale and timestamps (RFC 7323), SACK
 * (RFC 2018).
 */

import type { IpAddress } from './address.js';
import { internetChecksum, pseudoHeaderSum, type PseudoHeader } from './checksum.js';
import { IpProtocol } from './ipv4.js';

/** Field offsets (RFC 9293 section 3.1). */
export const TCP = {
  SRC_PORT: 0,
  DST_PORT: 2,
  SEQ: 4,
  ACK: 8,
  DATA_OFFSET: 12,
  FLAGS: 13,
  WINDOW: 14,
  CHECKSUM: 16,
  URGENT: 18,
  OPTIONS: 20,
  MIN_HEADER_LEN: 20,
  MAX_HEADER_LEN: 60,
} as const;

export const TcpFlags = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

export const TcpOptionKind = {
  EOL: 0,
  NOP: 1,
  MSS: 2,
  WindowScale: 3,
  SackPermitted: 4,
  Sack: 5,
  Timestamps: 8,
} as const;

export interface TcpTimestamps {
  value: number;
  echo: number;
}

/** Options as parsed. When an option appears twice, the last one wins. */
export interface TcpOptions {
  mss?: number;
  /** The shift count as sent; receivers clamp above 14 (RFC 7323 section 2.3). */
  windowScale?: number;
  sackPermitted: boolean;
  /** SACK blocks as [left edge, right edge) pairs (RFC 2018 section 3). */
  sackBlocks: Array<[number, number]>;
  timestamps?: TcpTimestamps;
  /** Options of other kinds: the bytes after kind and length (views). */
  unknown: Array<{ kind: number; data: Uint8Array }>;
}

export interface TcpOptionsInit {
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  sackBlocks?: Array<[number, number]>;
  timestamps?: TcpTimestamps;
  unknown?: Array<{ kind: number; data: Uint8Array }>;
}

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seqNumber: number;
  ackNumber: number;
  headerLength: number;
  /** The flag byte; test with `TcpFlags`. */
  flags: number;
  window: number;
  checksum: number;
  urgentPointer: number;
  /** Whether the checksum verifies; null when no pseudo header was given. */
  checksumOk: boolean | null;
  options: TcpOptions;
  /** The raw option bytes (a view). */
  rawOptions: Uint8Array;
  /** A view of the data after the header, to the end of the given bytes. */
  payload: Uint8Array;
}

export interface TcpInit {
  srcPort: number;
  dstPort: number;
  seqNumber: number;
  ackNumber?: number;
  flags: number;
  window?: number;
  urgentPointer?: number;
  options?: TcpOptionsInit;
  /** Option bytes used as given (zero-padded to 4), instead of `options`. */
  rawOptions?: Uint8Array;
  payload?: Uint8Array;
  /** With both, the checksum is computed; without, it is left 0 for the stack. */
  src?: IpAddress;
  dst?: IpAddress;
}

/** Option lengths fixed by their RFCs; a mismatch makes the option malformed. */
const FIXED_OPTION_LENGTH: Record<number, number> = {
  [TcpOptionKind.MSS]: 4,
  [TcpOptionKind.WindowScale]: 3,
  [TcpOptionKind.SackPermitted]: 2,
  [TcpOptionKind.Timestamps]: 10,
};

/**
 * Parses TCP option bytes. Returns null when an option's length byte is
 * missing, below 2, runs past the options, or does not match its kind.
 * Bytes after End of Option List are padding and ignored (RFC 9293 section 3.1).
 */
export function parseTcpOptions(bytes: Uint8Array): TcpOptions | null {
  const opts: TcpOptions = { sackPermitted: false, sackBlocks: [], unknown: [] };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = 0;
  while (i < bytes.length) {
    const kind = bytes[i]!;
    if (kind === TcpOptionKind.EOL) break;
    if (kind === TcpOptionKind.NOP) {
      i++;
      continue;
    }
    if (i + 1 >= bytes.length) return null;
    const len = bytes[i + 1]!;
    if (len < 2 || i + len > bytes.length) return null;
    const fixed = FIXED_OPTION_LENGTH[kind];
    if (fixed !== undefined && len !== fixed) return null;
    switch (kind) {
      case TcpOptionKind.MSS:
        opts.mss = view.getUint16(i + 2);
        break;
      case TcpOptionKind.WindowScale:
        opts.windowScale = bytes[i + 2]!;
        break;
      case TcpOptionKind.SackPermitted:
        opts.sackPermitted = true;
        break;
      case TcpOptionKind.Sack: {
        if ((len - 2) % 8 !== 0) return null;
        opts.sackBlocks = [];
        for (let b = i + 2; b < i + len; b += 8) opts.sackBlocks.push([view.getUint32(b), view.getUint32(b + 4)]);
        break;
      }
      case TcpOptionKind.Timestamps:
        opts.timestamps = { value: view.getUint32(i + 2), echo: view.getUint32(i + 6) };
        break;
      default:
        opts.unknown.push({ kind, data: bytes.subarray(i + 2, i + len) });
    }
    i += len;
  }
  return opts;
}

/**
 * Parses a TCP header. Returns null when shorter than 20 bytes, when the data
 * offset is below 5 or runs past the bytes, or when the options are malformed.
 * The segment is taken to end where `bytes` ends: pass the IP payload.
 */
export function parseTcpSegment(bytes: Uint8Array, pseudo?: PseudoHeader): TcpSegment | null {
  if (bytes.length < TCP.MIN_HEADER_LEN) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = (bytes[TCP.DATA_OFFSET]! >> 4) * 4;
  if (headerLength < TCP.MIN_HEADER_LEN || headerLength > bytes.length) return null;
  const rawOptions = bytes.subarray(TCP.OPTIONS, headerLength);
  const options = parseTcpOptions(rawOptions);
  if (!options) return null;
  let checksumOk: boolean | null = null;
  if (pseudo) {
    if (pseudo.src.family !== pseudo.dst.family) return null;
    const initial = pseudoHeaderSum(pseudo.src, pseudo.dst, IpProtocol.TCP, bytes.length);
    checksumOk = internetChecksum(bytes, initial) === 0;
  }
  return {
    srcPort: view.getUint16(TCP.SRC_PORT),
    dstPort: view.getUint16(TCP.DST_PORT),
    seqNumber: view.getUint32(TCP.SEQ),
    ackNumber: view.getUint32(TCP.ACK),
    headerLength,
    flags: bytes[TCP.FLAGS]!,
    window: view.getUint16(TCP.WINDOW),
    checksum: view.getUint16(TCP.CHECKSUM),
    urgentPointer: view.getUint16(TCP.URGENT),
    checksumOk,
    options,
    rawOptions,
    payload: bytes.subarray(headerLength),
  };
}

/**
 * Encodes options in the layout Linux uses for SYNs (MSS, SACK-permitted with
 * timestamps, NOP-aligned window scale), padded with EOL to a multiple of 4.
 * Throws when they exceed the 40 bytes a header can hold.
 */
export function encodeTcpOptions(opts: TcpOptionsInit): Uint8Array {
  const out: number[] = [];
  const u16 = (v: number) => out.push((v >>> 8) & 0xff, v & 0xff);
  const u32 = (v: number) => out.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  if (opts.mss !== undefined) {
    out.push(TcpOptionKind.MSS, 4);
    u16(opts.mss);
  }
  if (opts.sackPermitted && opts.timestamps) {
    out.push(TcpOptionKind.SackPermitted, 2);
  } else if (opts.sackPermitted) {
    out.push(TcpOptionKind.NOP, TcpOptionKind.NOP, TcpOptionKind.SackPermitted, 2);
  } else if (opts.timestamps) {
    out.push(TcpOptionKind.NOP, TcpOptionKind.NOP);
  }
  if (opts.timestamps) {
    out.push(TcpOptionKind.Timestamps, 10);
    u32(opts.timestamps.value);
    u32(opts.timestamps.echo);
  }
  if (opts.windowScale !== undefined) out.push(TcpOptionKind.NOP, TcpOptionKind.WindowScale, 3, opts.windowScale);
  if (opts.sackBlocks && opts.sackBlocks.length > 0) {
    out.push(TcpOptionKind.NOP, TcpOptionKind.NOP, TcpOptionKind.Sack, 2 + 8 * opts.sackBlocks.length);
    for (const [left, right] of opts.sackBlocks) {
      u32(left);
      u32(right);
    }
  }
  for (const u of opts.unknown ?? []) {
    if (u.data.length > 253) throw new RangeError('TCP option too long');
    out.push(u.kind, 2 + u.data.length, ...u.data);
  }
  while (out.length % 4 !== 0) out.push(TcpOptionKind.EOL);
  if (out.length > TCP.MAX_HEADER_LEN - TCP.MIN_HEADER_LEN) throw new RangeError('TCP options exceed 40 bytes');
  return Uint8Array.from(out);
}

function optionBytes(init: TcpInit): Uint8Array {
  if (init.rawOptions) {
    const padded = new Uint8Array((init.rawOptions.length + 3) & ~3);
    padded.set(init.rawOptions);
    if (padded.length > TCP.MAX_HEADER_LEN - TCP.MIN_HEADER_LEN) throw new RangeError('TCP options exceed 40 bytes');
    return padded;
  }
  return init.options ? encodeTcpOptions(init.options) : new Uint8Array(0);
}

/** Writes header, options and payload at `offset`; returns the segment length. */
export function emitTcpSegment(init: TcpInit, buf: Uint8Array, offset = 0): number {
  return emitWithOptions(init, optionBytes(init), buf, offset);
}

export function buildTcpSegment(init: TcpInit): Uint8Array {
  const options = optionBytes(init);
  const out = new Uint8Array(TCP.MIN_HEADER_LEN + options.length + (init.payload?.length ?? 0));
  emitWithOptions(init, options, out, 0);
  return out;
}

function emitWithOptions(init: TcpInit, options: Uint8Array, buf: Uint8Array, offset: number): number {
  const payload = init.payload ?? new Uint8Array(0);
  const hlen = TCP.MIN_HEADER_LEN + options.length;
  const length = hlen + payload.length;
  if (offset < 0 || buf.length - offset < length) throw new RangeError('buffer too small for the TCP segment');
  const out = buf.subarray(offset, offset + length);
  out.set(payload, hlen); // first: the payload may be a view into `buf`
  out.set(options, TCP.OPTIONS);
  const view = new DataView(out.buffer, out.byteOffset, hlen);
  view.setUint16(TCP.SRC_PORT, init.srcPort);
  view.setUint16(TCP.DST_PORT, init.dstPort);
  view.setUint32(TCP.SEQ, init.seqNumber >>> 0);
  view.setUint32(TCP.ACK, (init.ackNumber ?? 0) >>> 0);
  view.setUint8(TCP.DATA_OFFSET, (hlen / 4) << 4);
  view.setUint8(TCP.FLAGS, init.flags & 0xff);
  view.setUint16(TCP.WINDOW, init.window ?? 0xffff);
  view.setUint16(TCP.CHECKSUM, 0);
  view.setUint16(TCP.URGENT, init.urgentPointer ?? 0);
  if (init.src && init.dst) {
    view.setUint16(TCP.CHECKSUM, internetChecksum(out, pseudoHeaderSum(init.src, init.dst, IpProtocol.TCP, length)));
  }
  return length;
}
