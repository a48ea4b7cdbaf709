/**
 * The Internet checksum (RFC 1071) and the pseudo headers that UDP, TCP and
 * ICMPv6 fold into it (RFC 768, RFC 9293 section 3.1, RFC 8200 section 8.1).
 *
 * Two kinds of number appear here:
 * - a *sum*: the one's-complement sum folded to 16 bits, not inverted; sums
 *   chain (`onesComplementSum(b, onesComplementSum(a))` sums a then b, as long
 *   as `a` has even length);
 * - a *checksum*: the inverted sum, the value stored in a header.
 * Verifying a header means summing it with its checksum in place: the result of
 * `internetChecksum` is then 0.
 */

import type { IpAddress } from './address.js';

/** The addresses of the enclosing IP header, for an upper-layer checksum. */
export interface PseudoHeader {
  src: IpAddress;
  dst: IpAddress;
}

/** Folds a non-negative integer below 2^53 to a 16-bit one's-complement sum. */
export function foldSum(sum: number): number {
  // Division instead of >>> because sums may exceed 32 bits before folding.
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/** 2^16 ≡ 1 (mod 0xffff), so 32-bit words can be summed whole and folded once. */
const WORDS_PER_FOLD = 1 << 16; // keeps the running sum below 2^49

/**
 * One's-complement sum of `data` as big-endian 16-bit words (an odd last byte
 * is padded with zero on the right, RFC 1071 section 4.1), plus `initial`.
 * Returns a folded 16-bit sum, not inverted.
 */
export function onesComplementSum(data: Uint8Array, initial = 0): number {
  const len = data.length;
  // DataView reads are V8 intrinsics and need no alignment, so one path serves
  // any byteOffset. Unrolled, measured ~4 GB/s vs ~2.3 GB/s for an aligned
  // Uint32Array loop and ~1 GB/s byte-wise (Node 20, 64 KiB buffers).
  const view = new DataView(data.buffer, data.byteOffset, len);
  let sum = foldSum(initial);
  let i = 0;
  const words = len >>> 2;
  let w = 0;
  while (w < words) {
    const stop = Math.min(words, w + WORDS_PER_FOLD);
    let block = 0;
    // Unrolled by four: fewer bounds and loop checks per byte.
    for (; w + 4 <= stop; w += 4, i += 16) {
      block += view.getUint32(i) + view.getUint32(i + 4) + view.getUint32(i + 8) + view.getUint32(i + 12);
    }
    for (; w < stop; w++, i += 4) block += view.getUint32(i);
    sum = foldSum(sum + block);
  }
  if (len - i >= 2) {
    sum += view.getUint16(i);
    i += 2;
  }
  if (i < len) sum += data[i]! << 8;
  return foldSum(sum);
}

/**
 * The RFC 1071 checksum of `data`: the inverted one's-complement sum, ready to
 * store big-endian. `initial` is a sum to include first (e.g. from
 * `pseudoHeaderSum`). Over data that contains a correct checksum, returns 0.
 */
export function internetChecksum(data: Uint8Array, initial = 0): number {
  return ~onesComplementSum(data, initial) & 0xffff;
}

/**
 * The one's-complement sum of the pseudo header for an upper-layer checksum:
 * IPv4 (RFC 768, RFC 9293 section 3.1): src, dst, zero, protocol, 16-bit length;
 * IPv6 (RFC 8200 section 8.1): src, dst, 32-bit length, three zero bytes, next header.
 * `length` is the upper-layer length (header plus data). Returns a folded sum,
 * to pass as `initial` to `internetChecksum`.
 */
export function pseudoHeaderSum(src: IpAddress, dst: IpAddress, protocol: number, length: number): number {
  if (src.family !== dst.family) throw new RangeError('pseudoHeaderSum: src and dst families differ');
  const size = src.family === 4 ? 4 : 16;
  if (src.bytes.length !== size || dst.bytes.length !== size) throw new RangeError('pseudoHeaderSum: bad address length');
  let sum = 0;
  for (let i = 0; i < size; i += 2) {
    sum += ((src.bytes[i]! << 8) | src.bytes[i + 1]!) + ((dst.bytes[i]! << 8) | dst.bytes[i + 1]!);
  }
  // Same sum for both layouts: the length's high word (IPv6 only) plus its low word.
  sum += (length >>> 16) + (length & 0xffff) + (protocol & 0xff);
  return foldSum(sum);
}
