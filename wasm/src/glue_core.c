/* Instance lifecycle, time, memory and the pbuf/address helpers. */
#include "glue.h"
#include "lwip/init.h"
#include "lwip/timeouts.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include <stdlib.h>
#include <string.h>

struct tt_sockaddr tt_sockaddrs[3];
unsigned short tt_arp_max_age = 300;

static uint8_t *flat_buf;
static uint32_t flat_cap;

void tt_assert_failed(const char *message, int line, const char *file) {
  tt_host_assert(message, line, file);
  __builtin_trap();
}

u32_t sys_now(void) { return tt_host_now(); }

void tt_sockaddr_to_ip(const struct tt_sockaddr *sa, ip_addr_t *ip) {
  if (sa->family == 0) {
    /* any address of either family: a dual-stack wildcard */
    ip_addr_copy(*ip, *IP_ANY_TYPE);
  } else if (sa->family == 6) {
    uint32_t w[4];
    memcpy(w, sa->addr, 16);
    IP_ADDR6(ip, w[0], w[1], w[2], w[3]);
    ip6_addr_set_zone(ip_2_ip6(ip), sa->zone);
  } else {
    uint32_t w;
    memcpy(&w, sa->addr, 4);
    ip_addr_set_ip4_u32_val(*ip, w);
  }
}

void tt_ip_to_sockaddr(const ip_addr_t *ip, uint16_t port, struct tt_sockaddr *sa) {
  memset(sa, 0, sizeof(*sa));
  sa->port = port;
  if (IP_IS_V6(ip)) {
    sa->family = 6;
    sa->zone = ip6_addr_zone(ip_2_ip6(ip));
    memcpy(sa->addr, ip_2_ip6(ip)->addr, 16);
  } else {
    sa->family = 4;
    uint32_t w = ip4_addr_get_u32(ip_2_ip4(ip));
    memcpy(sa->addr, &w, 4);
  }
}

int tt_with_flat(struct pbuf *p, tt_flat_fn fn, void *arg) {
  if (p->next == NULL) {
    fn(p->payload, p->len, arg);
    return 1;
  }
  if (flat_cap < p->tot_len) {
    uint8_t *grown = malloc(p->tot_len);
    if (grown == NULL) return 0;
    free(flat_buf);
    flat_buf = grown;
    flat_cap = p->tot_len;
  }
  pbuf_copy_partial(p, flat_buf, p->tot_len, 0);
  fn(flat_buf, p->tot_len, arg);
  return 1;
}

/* seed: 32 bytes from the host's CSPRNG (see glue_random.c); the host wipes
 * them after the call. */
TT_EXPORT(tt_init) void tt_init(uint32_t arp_max_age_seconds, const uint8_t *seed) {
  tt_arp_max_age = (unsigned short)(arp_max_age_seconds > 65535 ? 65535 : arp_max_age_seconds);
  tt_random_seed(seed);
  lwip_init();
}

TT_EXPORT(tt_sockaddr_scratch) struct tt_sockaddr *tt_sockaddr_scratch(void) { return tt_sockaddrs; }

TT_EXPORT(tt_malloc) void *tt_malloc(uint32_t n) { return malloc(n); }
TT_EXPORT(tt_free) void tt_free(void *p) { free(p); }

/* Runs due lwIP timers; returns milliseconds until the next one
 * (0xFFFFFFFF when none is scheduled). */
TT_EXPORT(tt_check_timeouts) uint32_t tt_check_timeouts(void) {
  sys_check_timeouts();
  return tt_timeouts_sleeptime();
}

/* Test-only: prove that a trap ends only this instance. */
TT_EXPORT(tt_debug_trap) void tt_debug_trap(void) { __builtin_trap(); }
TT_EXPORT(tt_debug_assert) void tt_debug_assert(void) { LWIP_ASSERT("tt_debug_assert called", 0); }
