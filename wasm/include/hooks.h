/* Declarations of the lwIP hooks implemented in src/glue_tables.c. */
#ifndef TCPIP_TS_HOOKS_H
#define TCPIP_TS_HOOKS_H

struct netif;
struct pbuf;
struct ip4_addr;
struct ip6_addr;
struct ip_addr;

struct netif *tt_hook_ip4_route(const struct ip4_addr *src, const struct ip4_addr *dest);
const struct ip4_addr *tt_hook_ip4_gateway(struct netif *netif, const struct ip4_addr *dest);
int tt_hook_ip4_canforward(struct pbuf *p, unsigned int dest_hostorder);
struct netif *tt_hook_ip6_route(const struct ip6_addr *src, const struct ip6_addr *dest);
const struct ip6_addr *tt_hook_ip6_gateway(struct netif *netif, const struct ip6_addr *dest);
int tt_hook_ip6_input(struct pbuf *p, struct netif *inp);
/* RFC 6528 initial sequence numbers (src/glue_random.c). */
unsigned int tt_hook_tcp_isn(const struct ip_addr *local_ip, unsigned short local_port,
                             const struct ip_addr *remote_ip, unsigned short remote_port);
/* lwIP's tcp_new_port calls this (fetch-lwip.sh): RFC 6056 ports (src/glue_tcp.c). */
unsigned short tt_tcp_new_port(void);
/* Added to ip4_input_accept by wasm/fetch-lwip.sh: gateway-mode interfaces
 * accept unicast packets for any address (src/glue_gateway.c). */
int tt_hook_ip4_accept(struct netif *netif);
/* Added to ip6_input_accept the same way. */
int tt_hook_ip6_accept(struct netif *netif);

/* The 4-tuple index of the active and TIME-WAIT PCBs (src/tcp_lookup.c),
 * kept by lwIP's TCP_REG/TCP_RMV and tcp_free (wasm/patches/200-*). list is
 * the lwIP list the PCB joins or leaves; NULL in remove means any. */
struct tcp_pcb;
void tt_tcp_lookup_add(struct tcp_pcb **list, struct tcp_pcb *pcb);
void tt_tcp_lookup_remove(struct tcp_pcb **list, struct tcp_pcb *pcb);
struct tcp_pcb *tt_tcp_lookup(const struct ip_addr *local_ip, unsigned short local_port,
                              const struct ip_addr *remote_ip, unsigned short remote_port,
                              unsigned char netif_idx);
unsigned int tt_tcp_lookup_time_wait_count(void);
/* SYN cookies (src/syncookie.c): what a valid cookie says the SYN asked for. */
struct tt_syncookie {
  unsigned short mss;
  signed char wscale; /* -1: no window scaling */
  unsigned char sack, timestamps;
};
void tt_syncookie_send(struct netif *inp, const struct ip_addr *local_ip, const struct ip_addr *remote_ip,
                       unsigned short local_port, unsigned short remote_port, unsigned int peer_isn,
                       const unsigned char *options, unsigned int options_len);
int tt_syncookie_check(const struct ip_addr *local_ip, const struct ip_addr *remote_ip, unsigned short local_port,
                       unsigned short remote_port, unsigned int peer_isn, unsigned int our_isn,
                       struct tt_syncookie *out);
/* RFC 6191 TIME-WAIT reopening (src/tcp_timewait.c), asked by lwIP's
 * tcp_input (wasm/patches/210-*) and the gateway's SYN hook about a segment
 * with these flags, sequence number (host order) and TCP options. */
int tt_tcp_timewait_takes_syn(const struct tcp_pcb *tw, unsigned char flags, unsigned int seqno,
                              const unsigned char *options, unsigned short options_len);
/* Whether it is a bare SYN with a newer timestamp than tw's TS.Recent
 * (RFC 6191's own test, which the gateway also takes: src/glue_gateway.c). */
int tt_tcp_timewait_newer_ts(const struct tcp_pcb *tw, unsigned char flags, const unsigned char *options,
                             unsigned short options_len);
/* Frees tw, whose 4-tuple a new SYN reopens; returns its SND.NXT. */
unsigned int tt_tcp_timewait_reopen(struct tcp_pcb *tw);
int tt_syn_tsval(const unsigned char *options, unsigned int options_len, unsigned int *tsval);
/* Nonzero when the stack is at its memory budget (src/malloc.c): new
 * connections are refused until memory drains. */
int tt_mem_tight(void);

#endif
