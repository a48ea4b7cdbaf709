/* Secrets of one stack: initial sequence numbers (RFC 6528) and LWIP_RAND.
 *
 * The host draws a 256-bit seed from its CSPRNG when it creates the stack
 * and hands it to tt_init (the only way in: no import asks for randomness
 * later). Its first half keys the ISN function, its second half keys the
 * generator behind LWIP_RAND, which lwIP uses for ephemeral ports (RFC 6056,
 * patched in by fetch-lwip.sh), IPv4 IDs and IPv6 fragment IDs (also
 * patched), DNS query IDs and source ports (LWIP_DNS_SECURE), DHCP xids and
 * MLD delays.
 *
 * Both use SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input
 * PRF", 2012), written here from the paper: a keyed PRF, so outputs reveal
 * nothing of the key or of other outputs, and at ~10 ns for a short input it
 * is cheap enough to run per packet. The generator is SipHash over a 64-bit
 * counter (a PRF in counter mode), each call yielding 32 of its 64 bits. */
#include "glue.h"
#include <string.h>

struct siphash_key {
  uint64_t k0, k1;
};

static struct siphash_key isn_key;
static struct siphash_key rand_key;
/* Derived from isn_key (below): the 4-tuple hash of src/tcp_lookup.c, keyed
 * so that a peer cannot choose tuples that all fall in one bucket, and the
 * SYN cookies of src/syncookie.c. */
static struct siphash_key lookup_key;
static struct siphash_key cookie_key;
static uint64_t rand_counter;
static uint64_t rand_block;
static int rand_left; /* 32-bit halves of rand_block not yet handed out */

static inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define SIPROUND                                                         \
  do {                                                                   \
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);            \
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                               \
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                               \
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);            \
  } while (0)

static uint64_t load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8); /* wasm is little-endian, as SipHash reads its words */
  return v;
}

static uint64_t siphash24(const struct siphash_key *key, const uint8_t *data, uint32_t len) {
  uint64_t v0 = key->k0 ^ 0x736f6d6570736575ULL;
  uint64_t v1 = key->k1 ^ 0x646f72616e646f6dULL;
  uint64_t v2 = key->k0 ^ 0x6c7967656e657261ULL;
  uint64_t v3 = key->k1 ^ 0x7465646279746573ULL;
  uint32_t whole = len & ~7u;
  for (uint32_t i = 0; i < whole; i += 8) {
    uint64_t m = load64(data + i);
    v3 ^= m;
    SIPROUND;
    SIPROUND;
    v0 ^= m;
  }
  /* The last word: the remaining bytes, and the length's low byte on top. */
  uint64_t b = (uint64_t)(len & 0xff) << 56;
  for (uint32_t i = 0; i < (len & 7u); i++) b |= (uint64_t)data[whole + i] << (8 * i);
  v3 ^= b;
  SIPROUND;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

static void key_from(struct siphash_key *key, const uint8_t *bytes) {
  key->k0 = load64(bytes);
  key->k1 = load64(bytes + 8);
}

/* Called by tt_init before lwip_init, which already draws from LWIP_RAND. */
void tt_random_seed(const uint8_t seed[32]) {
  key_from(&isn_key, seed);
  key_from(&rand_key, seed + 16);
  rand_counter = 0;
  rand_left = 0;
  /* Subkeys as SipHash of a label under the ISN key: a PRF's outputs for
   * distinct inputs are independent, so neither use reveals the other. */
  static const uint8_t labels[4][8] = {"lookup-0", "lookup-1", "cookie-0", "cookie-1"};
  lookup_key.k0 = siphash24(&isn_key, labels[0], 8);
  lookup_key.k1 = siphash24(&isn_key, labels[1], 8);
  cookie_key.k0 = siphash24(&isn_key, labels[2], 8);
  cookie_key.k1 = siphash24(&isn_key, labels[3], 8);
}

/* LWIP_RAND (arch/cc.h). */
uint32_t tt_rand32(void) {
  if (rand_left == 0) {
    uint8_t block[8];
    memcpy(block, &rand_counter, 8);
    rand_counter++;
    rand_block = siphash24(&rand_key, block, 8);
    rand_left = 2;
  }
  rand_left--;
  return (uint32_t)(rand_block >> (32 * rand_left));
}

/* Appends an address as the ISN function reads it: a family byte, then the
 * 4 or 16 address bytes (so an IPv4 tuple never collides with an IPv6 one). */
static uint32_t put_ip(uint8_t *out, const ip_addr_t *ip) {
  if (IP_IS_V6(ip)) {
    out[0] = 6;
    memcpy(out + 1, ip_2_ip6(ip)->addr, 16);
    return 17;
  }
  out[0] = 4;
  uint32_t w = ip4_addr_get_u32(ip_2_ip4(ip));
  memcpy(out + 1, &w, 4);
  return 5;
}

/* LWIP_HOOK_TCP_ISN: RFC 6528 section 3, ISN = M + F(localip, localport,
 * remoteip, remoteport, secretkey), M a 4 microsecond timer (the host's
 * now_4us, from the stack's injected clock) and F SipHash keyed with the
 * stack's ISN secret. A new incarnation of a 4-tuple still starts above the
 * old one's sequence space (M keeps advancing at RFC 793's rate), while
 * ISNs of other tuples, other stacks or other runs tell an off-path
 * attacker nothing. */
uint32_t tt_hook_tcp_isn(const ip_addr_t *local_ip, uint16_t local_port, const ip_addr_t *remote_ip,
                         uint16_t remote_port) {
  uint8_t msg[2 * 17 + 4];
  uint32_t n = put_ip(msg, local_ip);
  n += put_ip(msg + n, remote_ip);
  msg[n++] = (uint8_t)(local_port >> 8);
  msg[n++] = (uint8_t)local_port;
  msg[n++] = (uint8_t)(remote_port >> 8);
  msg[n++] = (uint8_t)remote_port;
  return tt_host_now_4us() + (uint32_t)siphash24(&isn_key, msg, n);
}

/* The 4-tuple as put_ip and the ISN function lay it out; returns its length. */
static uint32_t put_tuple(uint8_t *msg, const ip_addr_t *local_ip, uint16_t local_port, const ip_addr_t *remote_ip,
                          uint16_t remote_port) {
  uint32_t n = put_ip(msg, local_ip);
  n += put_ip(msg + n, remote_ip);
  msg[n++] = (uint8_t)(local_port >> 8);
  msg[n++] = (uint8_t)local_port;
  msg[n++] = (uint8_t)(remote_port >> 8);
  msg[n++] = (uint8_t)remote_port;
  return n;
}

/* Bucket hash of src/tcp_lookup.c. */
uint32_t tt_tuple_hash(const ip_addr_t *local_ip, uint16_t local_port, const ip_addr_t *remote_ip, uint16_t remote_port) {
  uint8_t msg[2 * 17 + 4];
  uint32_t n = put_tuple(msg, local_ip, local_port, remote_ip, remote_port);
  return (uint32_t)siphash24(&lookup_key, msg, n);
}

/* The MAC of a SYN cookie (src/syncookie.c): the 4-tuple, the peer's ISN
 * and the cookie's own clock and option bits, under the cookie key. */
uint32_t tt_cookie_mac(const ip_addr_t *local_ip, uint16_t local_port, const ip_addr_t *remote_ip, uint16_t remote_port,
                       uint32_t peer_isn, uint32_t clock_and_bits) {
  uint8_t msg[2 * 17 + 4 + 8];
  uint32_t n = put_tuple(msg, local_ip, local_port, remote_ip, remote_port);
  memcpy(msg + n, &peer_isn, 4);
  memcpy(msg + n + 4, &clock_and_bits, 4);
  return (uint32_t)siphash24(&cookie_key, msg, n + 8);
}

/* Test-only: SipHash-2-4 of (data, len) under the 16-byte key, written to
 * out as 8 little-endian bytes, to check it against the paper's vectors. */
TT_EXPORT(tt_debug_siphash) void tt_debug_siphash(const uint8_t *key, const uint8_t *data, uint32_t len, uint8_t *out) {
  struct siphash_key k;
  key_from(&k, key);
  uint64_t h = siphash24(&k, data, len);
  memcpy(out, &h, 8);
}
