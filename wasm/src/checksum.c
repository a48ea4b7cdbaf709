/* The Internet checksum (RFC 1071) with wasm SIMD: lwIP's LWIP_CHKSUM and
 * LWIP_CHKSUM_COPY (lwipopts.h).
 *
 * Why: with checksums on, a bulk TCP stream at MTU 65520 spends more than
 * half its time in lwIP's portable two-bytes-at-a-time loop (every byte is
 * summed once when sent and once when received), and the copy that
 * tcp_write makes is a second pass over the same bytes. Sixteen bytes per
 * step, with the copy fused into the same pass, make both cheap.
 *
 * The one's complement sum does not depend on byte order (RFC 1071, 2.B):
 * summing the bytes as little-endian 16-bit words from the first byte gives
 * the same 16-bit result as lwIP's lwip_standard_chksum (which reads aligned
 * words and swaps when the buffer starts at an odd address; wasm loads need
 * no alignment). */

#include <stdint.h>
#include <wasm_simd128.h>
#include "lwip/opt.h" /* the prototypes, in lwipopts.h */

/* Four u32 lanes each take at most 2 x 0xffff per 16 bytes; with four
 * accumulators a lane overflows only after 2^15 vectors per accumulator,
 * 2 MiB, far above lwIP's u16 lengths. */
static uint16_t fold(uint64_t sum) {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return (uint16_t)sum;
}

static uint64_t lanes(v128_t v) {
  return (uint64_t)wasm_u32x4_extract_lane(v, 0) + wasm_u32x4_extract_lane(v, 1) +
         wasm_u32x4_extract_lane(v, 2) + wasm_u32x4_extract_lane(v, 3);
}

/* The bytes after the last whole vector: little-endian words, then the odd byte. */
static uint64_t tail_sum(const uint8_t *p, int len) {
  uint64_t sum = 0;
  for (; len > 1; p += 2, len -= 2) sum += (uint32_t)p[0] | ((uint32_t)p[1] << 8);
  if (len) sum += p[0];
  return sum;
}

u16_t tt_chksum(const void *data, int len) {
  const uint8_t *p = (const uint8_t *)data;
  v128_t a = wasm_i32x4_splat(0), b = a, c = a, d = a;
  for (; len >= 64; p += 64, len -= 64) {
    a = wasm_i32x4_add(a, wasm_u32x4_extadd_pairwise_u16x8(wasm_v128_load(p)));
    b = wasm_i32x4_add(b, wasm_u32x4_extadd_pairwise_u16x8(wasm_v128_load(p + 16)));
    c = wasm_i32x4_add(c, wasm_u32x4_extadd_pairwise_u16x8(wasm_v128_load(p + 32)));
    d = wasm_i32x4_add(d, wasm_u32x4_extadd_pairwise_u16x8(wasm_v128_load(p + 48)));
  }
  for (; len >= 16; p += 16, len -= 16) a = wasm_i32x4_add(a, wasm_u32x4_extadd_pairwise_u16x8(wasm_v128_load(p)));
  return fold(lanes(a) + lanes(b) + lanes(c) + lanes(d) + tail_sum(p, len));
}

/* memcpy and tt_chksum in one pass; dst and src do not overlap (lwIP copies
 * user data into a new pbuf). */
u16_t tt_chksum_copy(void *dst, const void *src, u16_t length) {
  const uint8_t *s = (const uint8_t *)src;
  uint8_t *t = (uint8_t *)dst;
  int len = length;
  v128_t a = wasm_i32x4_splat(0), b = a;
  for (; len >= 32; s += 32, t += 32, len -= 32) {
    v128_t x = wasm_v128_load(s), y = wasm_v128_load(s + 16);
    wasm_v128_store(t, x);
    wasm_v128_store(t + 16, y);
    a = wasm_i32x4_add(a, wasm_u32x4_extadd_pairwise_u16x8(x));
    b = wasm_i32x4_add(b, wasm_u32x4_extadd_pairwise_u16x8(y));
  }
  for (int i = 0; i < len; i++) t[i] = s[i];
  return fold(lanes(a) + lanes(b) + tail_sum(s, len));
}
