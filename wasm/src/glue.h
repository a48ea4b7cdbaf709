/* The wasm boundary of tcpip-ts: what the host imports from us and what we
 * import from the host. Handles are pointers into this instance's memory;
 * buffers are (pointer, length) pairs; addresses travel as struct
 * tt_sockaddr. Policy lives in TypeScript, not here.
 *
 * The TypeScript side of this contract is src/core/abi.ts; a test checks that
 * the module's exports and imports are exactly the ones declared there. */
#ifndef TCPIP_TS_GLUE_H
#define TCPIP_TS_GLUE_H

#include <stdint.h>
#include "lwip/ip_addr.h"
#include "lwip/netif.h"

struct tcp_pcb;

#define TT_EXPORT(name) __attribute__((export_name(#name)))
#define TT_IMPORT(name) __attribute__((import_module("tcpip"), import_name(#name)))

/* An IPv4 or IPv6 socket address as the host writes and reads it. */
struct tt_sockaddr {
  uint8_t family; /* 4 or 6; 0 is the dual-stack wildcard */
  uint8_t zone;   /* IPv6 zone (netif index), 0 for none */
  uint16_t port;  /* host byte order */
  uint8_t addr[16];
};

void tt_sockaddr_to_ip(const struct tt_sockaddr *sa, ip_addr_t *ip);
void tt_ip_to_sockaddr(const ip_addr_t *ip, uint16_t port, struct tt_sockaddr *sa);

/* Scratch addresses: the host writes call arguments into [0] and [1];
 * callbacks hand addresses out through [2]. */
extern struct tt_sockaddr tt_sockaddrs[3];

/* ---- imports: every one is wrapped on the host side so it never throws ---- */
TT_IMPORT(now) uint32_t tt_host_now(void);
/* The same clock in 4 microsecond ticks, for RFC 6528's ISN timer M. */
TT_IMPORT(now_4us) uint32_t tt_host_now_4us(void);
TT_IMPORT(assert_failed) void tt_host_assert(const char *message, int line, const char *file);
TT_IMPORT(link_output) void tt_host_link_output(struct netif *netif, const void *frame, uint32_t len);
TT_IMPORT(netif_status) void tt_host_netif_status(struct netif *netif);
TT_IMPORT(tcp_accept) uint32_t tt_host_tcp_accept(uint32_t listener_id, struct tcp_pcb *pcb);
TT_IMPORT(tcp_connected) void tt_host_tcp_connected(uint32_t id);
TT_IMPORT(tcp_recv) void tt_host_tcp_recv(uint32_t id, const void *data, uint32_t len);
TT_IMPORT(tcp_fin) void tt_host_tcp_fin(uint32_t id);
TT_IMPORT(tcp_sent) void tt_host_tcp_sent(uint32_t id, uint32_t len);
TT_IMPORT(tcp_error) void tt_host_tcp_error(uint32_t id, int err);
TT_IMPORT(udp_recv) void tt_host_udp_recv(uint32_t id, const void *data, uint32_t len, const struct tt_sockaddr *from);
TT_IMPORT(raw_recv) uint32_t tt_host_raw_recv(uint32_t id, const void *packet, uint32_t len, const struct tt_sockaddr *from);
TT_IMPORT(dns_found) void tt_host_dns_found(uint32_t id, const struct tt_sockaddr *addr);

/* Calls back the host with a pbuf's bytes, flattening chains through a
 * scratch buffer so the host always sees one contiguous (pointer, length). */
typedef void (*tt_flat_fn)(const void *data, uint32_t len, void *arg);
int tt_with_flat(struct pbuf *p, tt_flat_fn fn, void *arg);

/* Keys the ISN function and LWIP_RAND's generator (glue_random.c). */
void tt_random_seed(const uint8_t seed[32]);
/* Keyed hashes under subkeys of the ISN secret (glue_random.c). */
uint32_t tt_tuple_hash(const ip_addr_t *local_ip, uint16_t local_port, const ip_addr_t *remote_ip, uint16_t remote_port);
uint32_t tt_cookie_mac(const ip_addr_t *local_ip, uint16_t local_port, const ip_addr_t *remote_ip, uint16_t remote_port,
                       uint32_t peer_isn, uint32_t clock_and_bits);

/* Which tier of the memory budget allocations come from (src/malloc.c):
 * the glue sets it around host calls, and sets it back to essential. */
extern int tt_mem_mode;
#define TT_MEM_ESSENTIAL 0
#define TT_MEM_RX 1
#define TT_MEM_OPTIONAL 2
int tt_mem_tight(void);
/* Frees what lwIP holds that it can do without (out-of-order segments),
 * when memory for received frames runs out (glue_netif.c). */
void tt_mem_reclaim(void);

/* Milliseconds until the next lwIP timer with work to do (glue_timers.c). */
uint32_t tt_timeouts_sleeptime(void);

#endif
