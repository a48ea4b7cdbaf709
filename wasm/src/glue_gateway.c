/* Gateway mode: an interface that accepts packets for every address, so a
 * stack can stand in for the whole network behind a sandbox (slirp).
 *
 * lwIP only terminates traffic addressed to its own interfaces. On an
 * interface in gateway mode (tt_gw_set), the accept hook (added to
 * ip4_input_accept by wasm/fetch-lwip.sh) takes every unicast packet, and
 * raw PCBs see each packet after reassembly, before the transport layer:
 * - a TCP SYN to an address:port nobody listens on is held and reported to
 *   the host (gw_tcp_syn); the host connects its own socket first, then
 *   either accepts (a listener for that address:port is made and the SYN is
 *   fed back in, so lwIP answers SYN-ACK) or rejects (RST, or ICMP
 *   unreachable / prohibited);
 * - UDP to an address that is not ours goes to the host (gw_udp), and the
 *   host answers with tt_gw_udp_send, from that address;
 * - ICMP to an address that is not ours goes to the host (gw_icmp) as the
 *   whole IPv4 packet, and the host answers with tt_gw_ip_send (an echo
 *   reply, or an error) from whatever address it stands in for.
 * Everything else (the gateway's own DHCP, DNS, established flows) takes
 * lwIP's normal path. Policy lives in the host.
 *
 * IPv6 works the same way (a hook in ip6_input_accept, raw PCBs of type
 * V6), with two differences: the gateway's v6 addresses (link-local, the
 * gateway and DNS addresses) are real interface addresses, so lwIP answers
 * neighbour discovery and echo for them itself; and a gateway interface is
 * a router, so it joins ff02::2 and hands router solicitations to the host
 * (gw_icmp), which answers with router advertisements. */
#include "glue.h"
#include "lwip/raw.h"
#include "lwip/udp.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/icmp.h"
#include "lwip/icmp6.h"
#include "lwip/mld6.h"
#include "lwip/ip6.h"
#include "lwip/ip.h"
#include "lwip/inet_chksum.h"
#include "lwip/prot/ip4.h"
#include "lwip/prot/tcp.h"
#include "lwip/prot/udp.h"
#include "lwip/prot/icmp.h"
#include "lwip/prot/icmp6.h"
#include "lwip/prot/ip6.h"
#include "lwip/priv/tcp_priv.h"
#include <string.h>

TT_IMPORT(gw_tcp_syn) void tt_host_gw_tcp_syn(struct netif *netif, struct pbuf *syn, const struct tt_sockaddr *from, const struct tt_sockaddr *to);
TT_IMPORT(gw_udp) void tt_host_gw_udp(struct netif *netif, const void *data, uint32_t len, const struct tt_sockaddr *from, const struct tt_sockaddr *to);
TT_IMPORT(gw_icmp) void tt_host_gw_icmp(struct netif *netif, const void *packet, uint32_t len);

#define MAX_NETIFS 256
#define MAX_PROXIED 8
static uint8_t gateway_netif[MAX_NETIFS];
/* The input functions gateway_input wraps, for the few gateway-mode
 * interfaces (a small table rather than one slot per possible netif). */
#define MAX_GATEWAYS 8
static struct { uint8_t index; netif_input_fn input; } saved_input[MAX_GATEWAYS];

static netif_input_fn original_input(struct netif *netif) {
  for (int i = 0; i < MAX_GATEWAYS; i++) {
    if (saved_input[i].index == netif_get_index(netif)) return saved_input[i].input;
  }
  return netif->input; /* unreachable: only wrapped interfaces get here */
}
/* Extra addresses the gateway answers ARP for (its DNS address: it is on
 * the sandbox's subnet but on no interface). */
static uint32_t proxied[MAX_PROXIED];
static uint32_t proxied_count;

int tt_arp_answer_for(struct netif *netif, struct pbuf *p, uint32_t ip);

static err_t gateway_input(struct pbuf *p, struct netif *netif) {
  for (uint32_t i = 0; i < proxied_count; i++) {
    if (tt_arp_answer_for(netif, p, proxied[i])) {
      pbuf_free(p);
      return ERR_OK;
    }
  }
  return original_input(netif)(p, netif);
}

/* Answers ARP for ip (u32, network order) on gateway-mode interfaces. */
TT_EXPORT(tt_gw_proxy_arp) int32_t tt_gw_proxy_arp(uint32_t ip) {
  for (uint32_t i = 0; i < proxied_count; i++) if (proxied[i] == ip) return ERR_OK;
  if (proxied_count == MAX_PROXIED) return ERR_MEM;
  proxied[proxied_count++] = ip;
  return ERR_OK;
}
static struct raw_pcb *raw_tcp, *raw_udp, *raw_icmp, *raw_tcp6, *raw_udp6, *raw_icmp6;
static struct udp_pcb *reply_pcb;

int tt_hook_ip4_accept(struct netif *netif) {
  return gateway_netif[netif_get_index(netif)];
}

/* Only for the interface the packet came in on: a gateway interface does
 * not take packets that arrived on another one. */
int tt_hook_ip6_accept(struct netif *netif) {
  return gateway_netif[netif_get_index(netif)] && netif == ip_current_input_netif();
}

int tt_gw_is_gateway(struct netif *netif) {
  return gateway_netif[netif_get_index(netif)];
}

/* Whether the current packet's destination is an address of ours. */
static int is_local(void) {
  struct netif *n;
  if (ip_current_is_v6()) {
    NETIF_FOREACH(n) {
      for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++) {
        if (ip6_addr_isvalid(netif_ip6_addr_state(n, i)) && ip6_addr_eq(ip6_current_dest_addr(), netif_ip6_addr(n, i))) return 1;
      }
    }
    return 0;
  }
  NETIF_FOREACH(n) {
    if (ip4_addr_eq(ip4_current_dest_addr(), netif_ip4_addr(n))) return 1;
  }
  return 0;
}

/* Multicast, or (IPv4) a broadcast on the input interface: never the host's. */
static int is_group(struct netif *inp) {
  if (ip_current_is_v6()) return ip6_addr_ismulticast(ip6_current_dest_addr());
  return ip4_addr_isbroadcast(ip4_current_dest_addr(), inp) || ip4_addr_ismulticast(ip4_current_dest_addr());
}

static void addresses(uint16_t sport, uint16_t dport) {
  tt_ip_to_sockaddr(ip_current_src_addr(), sport, &tt_sockaddrs[0]);
  tt_ip_to_sockaddr(ip_current_dest_addr(), dport, &tt_sockaddrs[1]);
}

/* The source and destination of a held packet (IPv4 or IPv6 header at
 * p->payload), with zones for link-local IPv6 addresses. */
static void packet_addresses(struct pbuf *p, struct netif *inp, ip_addr_t *src, ip_addr_t *dest) {
  if (IP_HDR_GET_VERSION(p->payload) == 6) {
    const struct ip6_hdr *h = (const struct ip6_hdr *)p->payload;
    ip_addr_copy_from_ip6_packed(*src, h->src);
    ip_addr_copy_from_ip6_packed(*dest, h->dest);
    ip6_addr_assign_zone(ip_2_ip6(src), IP6_UNICAST, inp);
    ip6_addr_assign_zone(ip_2_ip6(dest), IP6_UNICAST, inp);
  } else {
    const struct ip_hdr *h = (const struct ip_hdr *)p->payload;
    ip_addr_copy_from_ip4(*src, h->src);
    ip_addr_copy_from_ip4(*dest, h->dest);
  }
}

/* Length of a held packet's IP header(s): the raw PCBs of type V6 only see
 * packets whose fixed header names the protocol, so 40 for IPv6. */
static uint16_t header_length(struct pbuf *p) {
  return IP_HDR_GET_VERSION(p->payload) == 6 ? IP6_HLEN : IPH_HL_BYTES((const struct ip_hdr *)p->payload);
}

/* The input netif of a packet in a raw callback. */
static struct netif *input_netif(void) { return ip_current_input_netif(); }

/* TIME_WAIT connections a gateway keeps at most (see trim_time_wait). */
#define GW_MAX_TIME_WAIT 4096

/* Set while tt_gw_tcp_accept feeds an accepted SYN back into lwIP. */
static int feeding;

extern err_t tt_tcp_on_accept(void *arg, struct tcp_pcb *pcb, err_t err);
extern err_t tt_tcp_on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err);

/* The ACK of a sandbox's FIN on a carried connection waits at most this
 * long for the gateway's own FIN to ride on (Linux's shortest delayed ACK;
 * a sandbox retransmits its FIN only after its RTO, 200 ms or more). */
#define GW_FIN_ACK_DELAY_MS 40

/* Whether gw_fin_acks is scheduled. */
static int fin_ack_timer;

static err_t gw_on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err);

/* Sends the FIN ACKs still held (the host side has not closed in time). */
static void gw_fin_acks(void *arg) {
  LWIP_UNUSED_ARG(arg);
  fin_ack_timer = 0;
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next) {
    if (pcb->state == CLOSE_WAIT && pcb->recv == gw_on_recv && (pcb->flags & TF_ACK_DELAY)) {
      tcp_ack_now(pcb);
      tcp_output(pcb);
    }
  }
}

/* A carried connection's receive callback. The sandbox closing first (FIN
 * in ESTABLISHED: lwIP acks it at once) is answered by the host's close a
 * host round trip later, so the ACK is held for that FIN to carry it, as
 * Linux's delayed ACK after a FIN does: one frame per connection less on
 * the link (3 written instead of 4 for a short request), at most
 * GW_FIN_ACK_DELAY_MS later when the host side stays open. */
static err_t gw_on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err) {
  if (p == NULL && pcb->state == CLOSE_WAIT && (pcb->flags & TF_ACK_NOW)) {
    tcp_clear_flags(pcb, TF_ACK_NOW);
    tcp_set_flags(pcb, TF_ACK_DELAY);
    if (!fin_ack_timer) {
      fin_ack_timer = 1;
      sys_timeout(GW_FIN_ACK_DELAY_MS, gw_fin_acks, NULL);
    }
  }
  return tt_tcp_on_recv(arg, pcb, p, err);
}

/* The accept callback of the gateway's listeners, so on_tcp can tell them
 * from the gateway's own services. */
static err_t gw_on_accept(void *arg, struct tcp_pcb *pcb, err_t err) {
  err_t result = tt_tcp_on_accept(arg, pcb, err);
  if (result == ERR_OK) tcp_recv(pcb, gw_on_recv);
  return result;
}

/* Whether a gateway listener (one standing in for a host address:port)
 * listens on local_port: syncookie.c leaves those alone (below). */
int tt_gw_listens(u16_t local_port) {
  for (struct tcp_pcb_listen *l = tcp_listen_pcbs.listen_pcbs; l != NULL; l = l->next) {
    if (l->accept == gw_on_accept && l->local_port == local_port) return 1;
  }
  return 0;
}

/* Bounds the TIME_WAIT list at GW_MAX_TIME_WAIT, as Linux's
 * tcp_max_tw_buckets does: a gateway whose host side closes first adds one
 * per flow for 60 s (~240,000 at 4,000 flows/s). Past the bound it keeps
 * the newest 3/4 (the list is newest first), so the walk comes once per
 * GW_MAX_TIME_WAIT / 4 new ones, not once per SYN. */
static void trim_time_wait(void) {
  if (tt_tcp_lookup_time_wait_count() <= GW_MAX_TIME_WAIT) return;
  uint32_t kept = 0;
  for (struct tcp_pcb *t = tcp_tw_pcbs; t != NULL; t = t->next) {
    if (++kept == GW_MAX_TIME_WAIT / 4 * 3) {
      while (t->next != NULL) tcp_abort(t->next); /* TIME_WAIT: unlinked and freed, no RST */
      break;
    }
  }
}

static u8_t on_tcp(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *addr) {
  LWIP_UNUSED_ARG(arg);
  LWIP_UNUSED_ARG(pcb);
  LWIP_UNUSED_ARG(addr);
  struct netif *inp = input_netif();
  if (!gateway_netif[netif_get_index(inp)]) return 0;
  uint16_t hlen = ip_current_header_tot_len();
  if (p->len < hlen + TCP_HLEN) return 0; /* lwIP's own checks handle it */
  const struct tcp_hdr *th = (const struct tcp_hdr *)((const uint8_t *)p->payload + hlen);
  if ((TCPH_FLAGS(th) & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN) return 0;
  uint16_t dport = lwip_ntohs(th->dest);
  /* A listener of the gateway's own services (DNS over TCP) takes it. Even
   * SYNs to our own address go to the host otherwise: it may map them to the
   * host's loopback. Listeners made by tt_gw_tcp_accept do not count: they
   * take only the SYNs the host has accepted (fed back with `feeding` set),
   * while other sandbox flows to the same address:port are held as any. */
  if (feeding) return 0;
#if CHECKSUM_CHECK_TCP
  /* lwIP checks the checksum only in tcp_input, after this hook: a SYN with
   * a corrupt header (a flipped port, say) would otherwise become a host
   * connection to wherever the corruption points. Found by fuzz/. */
  IF__NETIF_CHECKSUM_ENABLED(inp, NETIF_CHECKSUM_CHECK_TCP) {
    if (pbuf_remove_header(p, hlen) != 0) return 0;
    u16_t sum = ip_chksum_pseudo(p, IP_PROTO_TCP, p->tot_len, ip_current_src_addr(), ip_current_dest_addr());
    pbuf_add_header_force(p, hlen);
    if (sum != 0) {
      TCP_STATS_INC(tcp.chkerr);
      TCP_STATS_INC(tcp.drop);
      pbuf_free(p);
      return 1;
    }
  }
#endif
  for (struct tcp_pcb_listen *l = tcp_listen_pcbs.listen_pcbs; l != NULL; l = l->next) {
    if (l->accept == gw_on_accept || l->local_port != dport) continue;
    if (IP_IS_ANY_TYPE_VAL(l->local_ip)) return 0;
    if (IP_GET_TYPE(&l->local_ip) == IP_GET_TYPE(ip_current_dest_addr()) &&
        (ip_addr_isany(&l->local_ip) || ip_addr_eq(&l->local_ip, ip_current_dest_addr()))) return 0;
  }
  trim_time_wait();
  /* A retransmitted SYN of an accepted flow belongs to lwIP (found by the
   * 4-tuple index, src/tcp_lookup.c: a walk of every flow per SYN before).
   * So does a SYN for a TIME_WAIT connection (the gateway closed first)
   * that may not reopen it (src/tcp_timewait.c): TIME_WAIT answers it. One
   * that may is a new flow, and when the host accepts it lwIP's tcp_input
   * ends the TIME_WAIT as the listener takes the fed SYN (patch 210). */
  struct tcp_pcb *a = tt_tcp_lookup(ip_current_dest_addr(), lwip_ntohs(th->dest), ip_current_src_addr(),
                                    lwip_ntohs(th->src), netif_get_index(inp));
  const u8_t *options = (const u8_t *)th + TCP_HLEN;
  uint16_t options_len = (uint16_t)LWIP_MIN(TCPH_HDRLEN_BYTES(th), p->len - hlen);
  options_len = options_len > TCP_HLEN ? (uint16_t)(options_len - TCP_HLEN) : 0;
  u8_t flags = (u8_t)TCPH_FLAGS(th);
  if (a != NULL && a->state == TIME_WAIT && !tt_tcp_timewait_takes_syn(a, flags, lwip_ntohl(th->seqno), options, options_len)) {
    /* RFC 6191 also reopens for a newer timestamp whatever the sequence
     * number, which lwIP alone does not (it lacks PAWS to keep the old
     * connection's duplicates out). The gateway does: on the sandbox's own
     * link nothing of the closed connection is still in flight when the
     * sandbox, which owns its ports, sends a new SYN (one that ran a
     * transfer faster than its ISN clock ends below RCV.NXT). */
    if (!tt_tcp_timewait_newer_ts(a, flags, options, options_len)) return 0;
    tcp_abort(a); /* TIME_WAIT: removed and freed, no RST */
    a = NULL;
  }
  if (a != NULL && a->state != TIME_WAIT) return 0;
  addresses(lwip_ntohs(th->src), dport);
  tt_host_gw_tcp_syn(inp, p, &tt_sockaddrs[0], &tt_sockaddrs[1]);
  return 1; /* held: the host calls tt_gw_tcp_accept or tt_gw_tcp_reject */
}

static u8_t on_udp(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *addr) {
  LWIP_UNUSED_ARG(arg);
  LWIP_UNUSED_ARG(pcb);
  LWIP_UNUSED_ARG(addr);
  struct netif *inp = input_netif();
  if (!gateway_netif[netif_get_index(inp)] || is_group(inp)) return 0;
  uint16_t hlen = ip_current_header_tot_len();
  if (p->tot_len < hlen + UDP_HLEN) return 0;
  if (is_local()) {
    /* Ours when one of our UDP sockets has the port (DHCP, DNS); else the host's. */
    u16_t dport_n;
    pbuf_copy_partial(p, &dport_n, 2, hlen + 2);
    for (struct udp_pcb *u = udp_pcbs; u != NULL; u = u->next) {
      if (u->local_port == lwip_ntohs(dport_n)) return 0;
    }
  }
  if (pbuf_remove_header(p, hlen) != 0) return 0;
  struct udp_hdr uh;
  pbuf_copy_partial(p, &uh, UDP_HLEN, 0);
  uint16_t ulen = lwip_ntohs(uh.len);
  int bad = ulen < UDP_HLEN || ulen > p->tot_len;
#if CHECKSUM_CHECK_UDP
  IF__NETIF_CHECKSUM_ENABLED(inp, NETIF_CHECKSUM_CHECK_UDP) {
    /* IPv6 has no "no checksum" (RFC 8200 section 8.1). */
    if (!bad && uh.chksum == 0 && ip_current_is_v6()) bad = 1;
    if (!bad && uh.chksum != 0 &&
        ip_chksum_pseudo(p, IP_PROTO_UDP, p->tot_len, ip_current_src_addr(), ip_current_dest_addr()) != 0) bad = 1;
  }
#endif
  if (bad) {
    UDP_STATS_INC(udp.chkerr);
    UDP_STATS_INC(udp.drop);
    pbuf_free(p);
    return 1;
  }
  UDP_STATS_INC(udp.recv);
  addresses(lwip_ntohs(uh.src), lwip_ntohs(uh.dest));
  pbuf_remove_header(p, UDP_HLEN);
  pbuf_realloc(p, (u16_t)(ulen - UDP_HLEN)); /* drop any bytes past the UDP length */
  if (p->next == NULL) {
    tt_host_gw_udp(inp, p->payload, p->len, &tt_sockaddrs[0], &tt_sockaddrs[1]);
  } else {
    void *flat = mem_malloc(p->tot_len);
    if (flat) {
      pbuf_copy_partial(p, flat, p->tot_len, 0);
      tt_host_gw_udp(inp, flat, p->tot_len, &tt_sockaddrs[0], &tt_sockaddrs[1]);
      mem_free(flat);
    }
  }
  pbuf_free(p);
  return 1;
}

static void deliver_icmp(const void *packet, uint32_t len, void *netif) {
  tt_host_gw_icmp(netif, packet, len);
}

static u8_t on_icmp(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *addr) {
  LWIP_UNUSED_ARG(arg);
  LWIP_UNUSED_ARG(pcb);
  LWIP_UNUSED_ARG(addr);
  struct netif *inp = input_netif();
  if (!gateway_netif[netif_get_index(inp)]) return 0;
  if (ip_current_is_v6()) {
    /* Router solicitations are the host's to answer (lwIP is no router). */
    uint8_t type;
    if (pbuf_copy_partial(p, &type, 1, ip_current_header_tot_len()) == 1 && type == ICMP6_TYPE_RS) {
      tt_with_flat(p, deliver_icmp, inp);
      pbuf_free(p);
      return 1;
    }
    if (is_local() || ip6_addr_ismulticast(ip6_current_dest_addr())) return 0; /* ND, MLD, echo: lwIP's */
  } else if (is_local() || ip4_addr_isbroadcast(ip4_current_dest_addr(), inp)) {
    return 0;
  }
  /* Not ours to answer: lwIP would reply to pings for any address. A
   * reassembled packet is a chain: flattened. lwIP 2.2.1's ip6_reass()
   * leaves a reassembled packet's payload length 8 bytes (the fragment
   * header it took out) short, which its own layers never read (they go by
   * tot_len); the host parses the header, so it gets the length p really
   * has (ip6_input trims every other packet to its payload length). */
  if (ip_current_is_v6()) IP6H_PLEN_SET((struct ip6_hdr *)p->payload, (u16_t)(p->tot_len - IP6_HLEN));
  tt_with_flat(p, deliver_icmp, inp);
  pbuf_free(p);
  return 1;
}

/* Puts netif in (or out of) gateway mode. */
TT_EXPORT(tt_gw_set) int32_t tt_gw_set(struct netif *netif, uint32_t on) {
  uint8_t idx = netif_get_index(netif);
  gateway_netif[idx] = on ? 1 : 0;
  if (on && (netif->flags & NETIF_FLAG_ETHARP) && netif->input != gateway_input) {
    int slot = -1;
    for (int i = 0; i < MAX_GATEWAYS && slot < 0; i++) if (saved_input[i].index == 0) slot = i;
    if (slot < 0) return ERR_MEM;
    saved_input[slot].index = idx;
    saved_input[slot].input = netif->input;
    netif->input = gateway_input;
  } else if (!on && netif->input == gateway_input) {
    netif->input = original_input(netif);
    for (int i = 0; i < MAX_GATEWAYS; i++) if (saved_input[i].index == idx) saved_input[i].index = 0;
  }
  /* A router listens to all-routers (RFC 4291 section 2.7.1) for
   * solicitations, and does not solicit routers itself. */
  ip6_addr_t all_routers;
  ip6_addr_set_allrouters_linklocal(&all_routers);
  ip6_addr_assign_zone(&all_routers, IP6_MULTICAST, netif);
  if (on) {
    mld6_joingroup_netif(netif, &all_routers);
    netif->rs_count = 0;
  } else {
    mld6_leavegroup_netif(netif, &all_routers);
  }
  if (raw_tcp == NULL) {
    raw_tcp = raw_new(IP_PROTO_TCP);
    raw_udp = raw_new(IP_PROTO_UDP);
    raw_icmp = raw_new(IP_PROTO_ICMP);
    raw_tcp6 = raw_new_ip_type(IPADDR_TYPE_V6, IP6_NEXTH_TCP);
    raw_udp6 = raw_new_ip_type(IPADDR_TYPE_V6, IP6_NEXTH_UDP);
    raw_icmp6 = raw_new_ip_type(IPADDR_TYPE_V6, IP6_NEXTH_ICMP6);
    reply_pcb = udp_new_ip_type(IPADDR_TYPE_ANY);
    if (!raw_tcp || !raw_udp || !raw_icmp || !raw_tcp6 || !raw_udp6 || !raw_icmp6 || !reply_pcb) return ERR_MEM;
    raw_recv(raw_tcp, on_tcp, NULL);
    raw_recv(raw_udp, on_udp, NULL);
    raw_recv(raw_icmp, on_icmp, NULL);
    raw_recv(raw_tcp6, on_tcp, NULL);
    raw_recv(raw_udp6, on_udp, NULL);
    raw_recv(raw_icmp6, on_icmp, NULL);
  }
  return ERR_OK;
}

/* Feeds an accepted SYN to lwIP, past on_tcp. */
static void feed(struct pbuf *syn, struct netif *inp) {
  feeding = 1;
  ip_input(syn, inp);
  feeding = 0;
}

void tt_gw_tcp_reject(struct pbuf *syn, uint32_t how);

/* Accepts a held SYN: feeds it back in to a listener on its destination
 * address:port. When no listener can be made the SYN is answered RST (the
 * host has its connection already: it must close it). With listener_id 0 the host already has that listener (one
 * serves every flow to the same address:port; the host matches connections
 * to SYNs by the remote address) and 0 is returned; else one is made with
 * that id and its handle returned (the host closes it once no accepted SYN
 * waits on it), or -err. */
TT_EXPORT(tt_gw_tcp_accept) int32_t tt_gw_tcp_accept(struct pbuf *syn, uint32_t listener_id) {
  extern int32_t tt_tcp_listen(struct tcp_pcb *pcb, uint32_t id, uint32_t backlog);
  const struct tcp_hdr *th = (const struct tcp_hdr *)((const uint8_t *)syn->payload + header_length(syn));
  struct netif *inp = netif_get_by_index(syn->if_idx);
  if (listener_id == 0) {
    if (inp == NULL) {
      pbuf_free(syn); /* no interface to answer on */
      return ERR_IF;
    }
    feed(syn, inp);
    return 0;
  }
  ip_addr_t src, dest;
  packet_addresses(syn, inp, &src, &dest);
  struct tcp_pcb *pcb = tcp_new_ip_type(IP_GET_TYPE(&dest));
  if (pcb == NULL || inp == NULL) {
    if (pcb) tcp_abort(pcb);
    tt_gw_tcp_reject(syn, 0);
    return ERR_MEM;
  }
  ip_set_option(pcb, SOF_REUSEADDR);
  err_t err = tcp_bind(pcb, &dest, lwip_ntohs(th->dest));
  if (err != ERR_OK) {
    tcp_abort(pcb);
    tt_gw_tcp_reject(syn, 0);
    return err;
  }
  /* The largest backlog: every SYN fed here was accepted by the host, so
   * none should wait for a SYN cookie (which keeps less of its options). */
  int32_t listener = tt_tcp_listen(pcb, listener_id, TCP_DEFAULT_LISTEN_BACKLOG);
  if (listener <= 0) {
    tcp_abort(pcb);
    tt_gw_tcp_reject(syn, 0);
    return listener;
  }
  tcp_accept((struct tcp_pcb *)(uintptr_t)listener, gw_on_accept);
  feed(syn, inp);
  return listener;
}

/* Binds pcb to tt_sockaddrs[0], an address that is not ours (a forwarded
 * connection's client, so the sandbox sees who really connects), for a
 * connect to tt_sockaddrs[1]. Another connection may hold the same local
 * address:port (the client's port is its own choice), so SO_REUSEADDR; a
 * TIME_WAIT connection with the same 4-tuple is forgotten first: the client
 * has reused its port, so that connection is over on its side, and lwIP's
 * tcp_connect would refuse the tuple (ERR_USE). */
TT_EXPORT(tt_gw_tcp_bind_foreign) int32_t tt_gw_tcp_bind_foreign(struct tcp_pcb *pcb) {
  ip_addr_t local, remote;
  tt_sockaddr_to_ip(&tt_sockaddrs[0], &local);
  tt_sockaddr_to_ip(&tt_sockaddrs[1], &remote);
  u16_t lport = tt_sockaddrs[0].port, rport = tt_sockaddrs[1].port;
  for (struct tcp_pcb *t = tcp_tw_pcbs; t != NULL; t = t->next) {
    if (t->local_port == lport && t->remote_port == rport && ip_addr_eq(&t->local_ip, &local) && ip_addr_eq(&t->remote_ip, &remote)) {
      tcp_abort(t);
      break;
    }
  }
  ip_set_option(pcb, SOF_REUSEADDR);
  return tcp_bind(pcb, &local, lport);
}

/* ICMPv6 destination unreachable about packet p (IPv6 header at
 * p->payload) from its destination: lwIP's icmp6_dest_unreach() answers
 * only while the packet is being input (it reads ip_current_*), and a held
 * SYN is answered later. Quotes as much as fits the minimum MTU (RFC 4443
 * section 3.1). */
static void icmp6_unreachable(struct pbuf *p, struct netif *inp, u8_t code) {
  ip_addr_t src, dest;
  packet_addresses(p, inp, &src, &dest);
  u16_t quoted = LWIP_MIN(p->tot_len, IP6_MIN_MTU_LENGTH - IP6_HLEN - ICMP6_HLEN);
  struct pbuf *q = pbuf_alloc(PBUF_IP, ICMP6_HLEN + quoted, PBUF_RAM);
  if (q == NULL) return;
  struct icmp6_hdr *h = (struct icmp6_hdr *)q->payload;
  h->type = ICMP6_TYPE_DUR;
  h->code = code;
  h->data = 0;
  h->chksum = 0;
  pbuf_copy_partial_pbuf(q, p, quoted, ICMP6_HLEN);
  h->chksum = ip6_chksum_pseudo(q, IP6_NEXTH_ICMP6, q->tot_len, ip_2_ip6(&dest), ip_2_ip6(&src));
  ICMP6_STATS_INC(icmp6.xmit);
  ip6_output_if(q, ip_2_ip6(&dest), ip_2_ip6(&src), LWIP_ICMP6_HL, 0, IP6_NEXTH_ICMP6, inp);
  pbuf_free(q);
}

/* Rejects a held SYN: how 0 = RST, 255 = drop silently (a retransmitted
 * SYN of a flow the host is still connecting), else ICMP destination
 * unreachable with that ICMPv4 code (1 host, 3 port, 13 administratively
 * prohibited), for IPv6 the matching ICMPv6 code (3 address unreachable,
 * 4 port unreachable, 1 administratively prohibited; RFC 4443 section 3.1). */
TT_EXPORT(tt_gw_tcp_reject) void tt_gw_tcp_reject(struct pbuf *syn, uint32_t how) {
  const struct tcp_hdr *th = (const struct tcp_hdr *)((const uint8_t *)syn->payload + header_length(syn));
  struct netif *inp = netif_get_by_index(syn->if_idx);
  int v6 = IP_HDR_GET_VERSION(syn->payload) == 6;
  if (inp != NULL && how != 255) {
    if (how == 0) {
      ip_addr_t local, remote;
      packet_addresses(syn, inp, &remote, &local);
      u32_t seq = lwip_ntohl(th->seqno);
      tcp_rst_netif(inp, 0, seq + 1, &local, &remote, lwip_ntohs(th->dest), lwip_ntohs(th->src));
    } else if (v6) {
      u8_t code = how == ICMP_DUR_PORT ? ICMP6_DUR_PORT : how == ICMP_DUR_HOST ? ICMP6_DUR_ADDRESS : ICMP6_DUR_PROHIBITED;
      icmp6_unreachable(syn, inp, code);
    } else {
      icmp_dest_unreach(syn, (enum icmp_dur_type)how);
    }
  }
  pbuf_free(syn);
}

/* Sends a UDP datagram to the sandbox from an outside address:
 * source in tt_sockaddrs[0], destination in tt_sockaddrs[1]. */
TT_EXPORT(tt_gw_udp_send) int32_t tt_gw_udp_send(struct netif *netif, const void *data, uint32_t len) {
  ip_addr_t src, dst;
  tt_sockaddr_to_ip(&tt_sockaddrs[0], &src);
  tt_sockaddr_to_ip(&tt_sockaddrs[1], &dst);
  if (reply_pcb == NULL) return ERR_CONN; /* no interface was ever in gateway mode */
  if (len > 0xFFFF - 8) return ERR_VAL;
  struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
  if (p == NULL) return ERR_MEM;
  memcpy(p->payload, data, len);
  ip_addr_copy(reply_pcb->local_ip, src);
  reply_pcb->local_port = tt_sockaddrs[0].port;
  err_t err = udp_sendto_if_src(reply_pcb, p, &dst, tt_sockaddrs[1].port, netif, &src);
  pbuf_free(p);
  return err;
}

/* Sends an IP payload (its checksum already in place: lwIP adds the IP
 * header only) of protocol proto out of netif to the sandbox, from an
 * outside address: source in tt_sockaddrs[0], destination in
 * tt_sockaddrs[1], both IPv4 or both IPv6 (zones for link-local and
 * multicast). hop_limit 0 is the default (64); router advertisements need
 * 255 (RFC 4861 section 6.1.2). Fragmented to the interface's MTU as
 * needed. */
TT_EXPORT(tt_gw_ip_send) int32_t tt_gw_ip_send(struct netif *netif, const void *data, uint32_t len, uint32_t proto, uint32_t hop_limit) {
  ip_addr_t src, dst;
  tt_sockaddr_to_ip(&tt_sockaddrs[0], &src);
  tt_sockaddr_to_ip(&tt_sockaddrs[1], &dst);
  if (IP_GET_TYPE(&src) != IP_GET_TYPE(&dst) || IP_IS_ANY_TYPE_VAL(src) || proto > 255 || hop_limit > 255) return ERR_VAL;
  u8_t hl = hop_limit ? (u8_t)hop_limit : IP_DEFAULT_TTL;
  if (len > 0xFFFF - (IP_IS_V6_VAL(src) ? 0 : IP_HLEN)) return ERR_VAL;
  struct pbuf *p = pbuf_alloc(PBUF_IP, (u16_t)len, PBUF_RAM);
  if (p == NULL) return ERR_MEM;
  memcpy(p->payload, data, len);
  err_t err = IP_IS_V6_VAL(src)
    ? ip6_output_if_src(p, ip_2_ip6(&src), ip_2_ip6(&dst), hl, 0, (u8_t)proto, netif)
    : ip4_output_if_src(p, ip_2_ip4(&src), ip_2_ip4(&dst), hl, 0, (u8_t)proto, netif);
  pbuf_free(p);
  return err;
}
