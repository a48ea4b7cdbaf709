/* Interfaces: creation, addresses, frame input and output, counters. */
#include "glue.h"
#include "lwip/netif.h"
#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/ip.h"
#include "lwip/dhcp.h"
#include "lwip/nd6.h"
#include "lwip/mld6.h"
#include "lwip/igmp.h"
#include "lwip/ip4_frag.h"
#include "lwip/prot/tcp.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"
#include <stdlib.h>
#include <string.h>

enum { MEDIUM_ETHERNET = 0, MEDIUM_IP = 1 };

/* By netif index (u8): the real IPv4 MTU of interfaces with TSO, else 0
 * (see tt_netif_set_offloads). */
static u16_t tso_real_mtu[256];

static void emit_frame(const void *data, uint32_t len, void *arg) {
  tt_host_link_output((struct netif *)arg, data, len);
}

static err_t link_output(struct netif *netif, struct pbuf *p) {
  return tt_with_flat(p, emit_frame, netif) ? ERR_OK : ERR_MEM;
}

#if LWIP_IPV4
static err_t tun_output4(struct netif *netif, struct pbuf *p, const ip4_addr_t *dest) {
  LWIP_UNUSED_ARG(dest);
  return link_output(netif, p);
}
#endif

static err_t tun_output6(struct netif *netif, struct pbuf *p, const ip6_addr_t *dest) {
  LWIP_UNUSED_ARG(dest);
  return link_output(netif, p);
}

static err_t init_ethernet(struct netif *netif) {
  netif->output = etharp_output;
  netif->output_ip6 = ethip6_output;
  netif->linkoutput = link_output;
  netif->hwaddr_len = ETH_HWADDR_LEN;
  netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_IGMP | NETIF_FLAG_MLD6;
  netif->name[0] = 'e';
  netif->name[1] = 't';
  return ERR_OK;
}

static err_t init_ip(struct netif *netif) {
  netif->output = tun_output4;
  netif->output_ip6 = tun_output6;
  netif->linkoutput = link_output;
  netif->hwaddr_len = 0;
  netif->flags = 0;
  netif->name[0] = 't';
  netif->name[1] = 'n';
  return ERR_OK;
}

static void status_changed(struct netif *netif) { tt_host_netif_status(netif); }

/* Adds an interface, administratively down; returns its handle or 0. */
TT_EXPORT(tt_netif_add) struct netif *tt_netif_add(uint32_t medium, uint32_t mtu, const uint8_t *mac) {
  struct netif *netif = calloc(1, sizeof(struct netif));
  if (netif == NULL) return NULL;
  netif_init_fn init = medium == MEDIUM_IP ? init_ip : init_ethernet;
  netif_input_fn input = medium == MEDIUM_IP ? ip_input : ethernet_input;
  if (medium != MEDIUM_IP) memcpy(netif->hwaddr, mac, ETH_HWADDR_LEN);
  if (netif_add(netif, NULL, NULL, NULL, NULL, init, input) == NULL) {
    free(netif);
    return NULL;
  }
  netif->mtu = (u16_t)mtu;
  netif->mtu6 = (u16_t)mtu;
  netif_set_status_callback(netif, status_changed);
  netif_set_link_up(netif);
  if (medium != MEDIUM_IP) netif_create_ip6_linklocal_address(netif, 1);
  return netif;
}

TT_EXPORT(tt_netif_remove) void tt_netif_remove(struct netif *netif) {
  tso_real_mtu[netif_get_index(netif)] = 0;
  dhcp_stop(netif);
  dhcp_cleanup(netif);
  netif_remove(netif);
  free(netif);
}

TT_EXPORT(tt_netif_index) uint32_t tt_netif_index(struct netif *netif) { return netif_get_index(netif); }

TT_EXPORT(tt_netif_set_up) void tt_netif_set_up(struct netif *netif, uint32_t up) {
  if (up) netif_set_up(netif); else netif_set_down(netif);
}

/* The link's state (its peer went away, came back): link-down takes the
 * interface out of routing and pauses DHCP; link-up restarts DHCP, ND and
 * MLD as after a cable is plugged in. */
TT_EXPORT(tt_netif_set_link_up) void tt_netif_set_link_up(struct netif *netif, uint32_t up) {
  if (up) netif_set_link_up(netif); else netif_set_link_down(netif);
}

/* Addresses are u32 words in network byte order, as read from the wire. */
TT_EXPORT(tt_netif_set_ip4) void tt_netif_set_ip4(struct netif *netif, uint32_t addr, uint32_t mask, uint32_t gw) {
  ip4_addr_t a, m, g;
  ip4_addr_set_u32(&a, addr);
  ip4_addr_set_u32(&m, mask);
  ip4_addr_set_u32(&g, gw);
  netif_set_addr(netif, &a, &m, &g);
}

/* Adds a static IPv6 address from tt_sockaddrs[0]; returns its slot or -err. */
TT_EXPORT(tt_netif_add_ip6) int32_t tt_netif_add_ip6(struct netif *netif) {
  ip_addr_t ip;
  s8_t slot = -1;
  tt_sockaddr_to_ip(&tt_sockaddrs[0], &ip);
  if (!IP_IS_V6(&ip)) return ERR_ARG;
  err_t err = netif_add_ip6_address(netif, ip_2_ip6(&ip), &slot);
  if (err != ERR_OK) return err;
  netif_ip6_addr_set_state(netif, slot, IP6_ADDR_PREFERRED);
  return slot;
}

TT_EXPORT(tt_netif_set_ip6_autoconfig) void tt_netif_set_ip6_autoconfig(struct netif *netif, uint32_t on) {
  netif_set_ip6_autoconfig_enabled(netif, on ? 1 : 0);
}

TT_EXPORT(tt_netif_dhcp_start) int32_t tt_netif_dhcp_start(struct netif *netif) { return dhcp_start(netif); }
TT_EXPORT(tt_netif_dhcp_stop) void tt_netif_dhcp_stop(struct netif *netif) { dhcp_release_and_stop(netif); }

/* Which checksums lwIP computes and checks on this interface (bits as in
 * NETIF_CHECKSUM_*); links that cannot corrupt data may turn them off. */
TT_EXPORT(tt_netif_set_checksums) void tt_netif_set_checksums(struct netif *netif, uint32_t flags) {
  NETIF_SET_CHECKSUM_CTRL(netif, (u16_t)flags);
}

/* ---- offloads: links that complete TCP checksums and segment TCP ----
 * A TAP opened with offloads (openTap's `offload`, native/src/vnet.c) behaves
 * like a virtio-net device with checksum offload and TSO:
 *  - CSUM: the kernel's frames are trusted (their TCP/UDP checksums may be
 *    partial, and GSO frames always are), so nothing is checked; the link
 *    completes TCP checksums on output, so lwIP leaves them. IP, UDP and ICMP
 *    checksums are still lwIP's: IPv6 needs UDP's, and fragments cannot be
 *    offloaded.
 *  - TSO: lwIP may send IPv4 TCP segments of up to 64 KiB; the link marks
 *    them GSO with the MSS of its real MTU, and the kernel cuts them (or, for
 *    local delivery, keeps them whole, as GRO would). lwIP sizes segments from
 *    its netif MTU and the peer's MSS option, so the netif's IPv4 MTU is
 *    raised to TSO_MTU, the peer's MSS is raised when it only reflects this
 *    link (offload_input), and every other IPv4 packet longer than the real
 *    MTU is fragmented to it here (offload_output4), as lwIP would have.
 *    IPv6 keeps the real MTU: lwIP's ip6_frag sizes fragments from the
 *    neighbour cache, which would remember the raised MTU, so IPv6 TCP keeps
 *    link-sized segments for now. */
enum { OFFLOAD_CSUM = 1, OFFLOAD_TSO = 2 };
/* The largest IPv4 packet whose Ethernet frame still fits one pbuf (u16). */
#define TSO_MTU 65520

static err_t inner_output4(struct netif *netif, struct pbuf *p, const ip4_addr_t *dest) {
  return (netif->flags & NETIF_FLAG_ETHARP) ? etharp_output(netif, p, dest) : tun_output4(netif, p, dest);
}

static err_t offload_output4(struct netif *netif, struct pbuf *p, const ip4_addr_t *dest) {
  u16_t real = tso_real_mtu[netif_get_index(netif)];
  if (real != 0 && p->tot_len > real && p->len >= IP_HLEN) {
    const struct ip_hdr *iph = (const struct ip_hdr *)p->payload;
    int segmentable = IPH_PROTO(iph) == IP_PROTO_TCP && (IPH_OFFSET(iph) & PP_HTONS(IP_OFFMASK | IP_MF)) == 0;
    if (!segmentable) {
      netif->mtu = real;
      err_t err = ip4_frag(p, netif, dest);
      netif->mtu = TSO_MTU;
      return err;
    }
  }
  return inner_output4(netif, p, dest);
}

/* A SYN's MSS option that only reflects this link's MTU (the peer's own
 * interface is this link) is raised, so lwIP sends TSO-sized segments; the
 * link cuts them to the real MSS. A smaller MSS (a clamp, a narrower path
 * behind the peer) is left alone. lwIP does not check TCP checksums here. */
static void offload_input(struct pbuf *p, struct netif *netif) {
  u16_t real = tso_real_mtu[netif_get_index(netif)];
  u32_t l3 = (netif->flags & NETIF_FLAG_ETHARP) ? SIZEOF_ETH_HDR : 0;
  u8_t *b = (u8_t *)p->payload;
  if (real == 0 || p->len < l3 + IP_HLEN + TCP_HLEN) return;
  if (l3 && (b[12] != 0x08 || b[13] != 0x00)) return; /* IPv4 only */
  const struct ip_hdr *iph = (const struct ip_hdr *)(b + l3);
  u32_t ihl = IPH_HL_BYTES(iph);
  if (IPH_V(iph) != 4 || IPH_PROTO(iph) != IP_PROTO_TCP || ihl < IP_HLEN || p->len < l3 + ihl + TCP_HLEN) return;
  u8_t *th = b + l3 + ihl;
  u32_t thl = (u32_t)(th[12] >> 4) * 4;
  if (!(th[13] & TCP_SYN) || thl <= TCP_HLEN || p->len < l3 + ihl + thl) return;
  for (u32_t i = TCP_HLEN; i + 1 < thl;) {
    u8_t kind = th[i];
    if (kind == 0) return;
    if (kind == 1) { i++; continue; }
    u8_t len = th[i + 1];
    if (len < 2 || i + len > thl) return;
    if (kind == 2 && len == 4) {
      u32_t mss = (u32_t)th[i + 2] << 8 | th[i + 3];
      if (mss >= (u32_t)real - IP_HLEN - TCP_HLEN) {
        th[i + 2] = (u8_t)(TCP_MSS >> 8);
        th[i + 3] = (u8_t)TCP_MSS;
      }
      return;
    }
    i += len;
  }
}

/* flags: OFFLOAD_* bits. Called once, before the interface is up. */
TT_EXPORT(tt_netif_set_offloads) void tt_netif_set_offloads(struct netif *netif, uint32_t flags) {
  if (flags & (OFFLOAD_CSUM | OFFLOAD_TSO)) {
    NETIF_SET_CHECKSUM_CTRL(netif, NETIF_CHECKSUM_GEN_IP | NETIF_CHECKSUM_GEN_UDP | NETIF_CHECKSUM_GEN_ICMP | NETIF_CHECKSUM_GEN_ICMP6);
  }
  if ((flags & OFFLOAD_TSO) && tso_real_mtu[netif_get_index(netif)] == 0) {
    tso_real_mtu[netif_get_index(netif)] = netif->mtu;
    netif->mtu = TSO_MTU;
    netif->output = offload_output4;
  }
}

/* Writes the interface's addresses to out:
 *   [0] ip4 addr, [1] netmask, [2] gateway (u32 network order),
 *   [3] number of IPv6 slots, then per slot 16 address bytes + u32 state. */
TT_EXPORT(tt_netif_addresses) void tt_netif_addresses(struct netif *netif, uint32_t *out) {
  out[0] = ip4_addr_get_u32(netif_ip4_addr(netif));
  out[1] = ip4_addr_get_u32(netif_ip4_netmask(netif));
  out[2] = ip4_addr_get_u32(netif_ip4_gw(netif));
  out[3] = LWIP_IPV6_NUM_ADDRESSES;
  uint32_t *slot = out + 4;
  for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++, slot += 5) {
    memcpy(slot, netif_ip6_addr(netif, i)->addr, 16);
    slot[4] = netif_ip6_addr_state(netif, i);
  }
}

/* MIB-II interface counters, in struct order (11 x u32). */
TT_EXPORT(tt_netif_counters) void tt_netif_counters(struct netif *netif, uint32_t *out) {
  memcpy(out, &netif->mib2_counters, sizeof(netif->mib2_counters));
}

/* ---- frame input: allocate in place, then flush the batch ----
 * The host copies each received frame straight into a pbuf allocated here
 * (one copy per frame), queues it, and hands the whole batch to lwIP with one
 * tt_rx_flush call. */
/* Frames waiting for tt_rx_flush, one queue per interface. The host flushes
 * a bounded number per event-loop turn (fair sharing between stacks), so
 * under a flood arrivals can outpace input: beyond RX_QUEUE_MAX frames on an
 * interface its new ones are dropped, as a full NIC ring drops them, and the
 * queue's memory stays bounded. Queues are served in turn, a frame each, so
 * a flooded interface delays another's frames by at most one frame per
 * frame of its own, and never makes them drop: a client on another link
 * of a SYN-flooded stack kept a p50 of 40 ms and a p99 of 1 s with one
 * shared queue, as its frames waited behind 4096 SYNs or found the queue
 * full. */
#define RX_QUEUE_MAX 4096u
struct rx_queue {
  struct pbuf *head, *tail;
  uint32_t count;
};
static struct rx_queue rx_q[256]; /* by netif index */
static uint8_t rx_active[256];    /* indices of the non-empty queues */
static uint32_t rx_nactive, rx_cursor;
static uint32_t rx_queued; /* in all queues */

static void rx_enqueue(struct pbuf *p, u8_t idx) {
  struct rx_queue *q = &rx_q[idx];
  /* queued through p->next; unlinked again before lwIP sees the pbuf */
  if (q->tail) q->tail->next = p; else q->head = p;
  q->tail = p;
  if (q->count++ == 0) rx_active[rx_nactive++] = idx;
  rx_queued++;
}

/* The next frame, taking the non-empty queues in turn. */
static struct pbuf *rx_dequeue(void) {
  if (rx_nactive == 0) return NULL;
  if (rx_cursor >= rx_nactive) rx_cursor = 0;
  struct rx_queue *q = &rx_q[rx_active[rx_cursor]];
  struct pbuf *p = q->head;
  q->head = p->next;
  if (q->head == NULL) q->tail = NULL;
  if (--q->count == 0) rx_active[rx_cursor] = rx_active[--rx_nactive]; /* the moved one is next */
  else rx_cursor++;
  rx_queued--;
  p->next = NULL;
  return p;
}

/* Frames queued on netif. */
TT_EXPORT(tt_rx_queued) uint32_t tt_rx_queued(struct netif *netif) { return rx_q[netif_get_index(netif)].count; }

/* A pbuf for a received frame, from the budget's receive tier (malloc.c);
 * when that is full, lwIP's out-of-order segments go first. */
static struct pbuf *rx_pbuf(uint32_t len) {
  tt_mem_mode = TT_MEM_RX;
  struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
  if (p == NULL) {
    tt_mem_reclaim();
    p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
  }
  tt_mem_mode = TT_MEM_ESSENTIAL;
  return p;
}

TT_EXPORT(tt_rx_alloc) void *tt_rx_alloc(struct netif *netif, uint32_t len) {
  if (len == 0 || len > 0xFFFF) return NULL;
  u8_t idx = netif_get_index(netif);
  if (rx_q[idx].count >= RX_QUEUE_MAX) return NULL;
  struct pbuf *p = rx_pbuf(len);
  if (p == NULL) return NULL;
  p->if_idx = idx;
  rx_enqueue(p, idx);
  return p->payload;
}

/* ---- frame input in place: a device reads straight into pbufs ----
 * The host reserves pbufs of a full frame's size, hands their payload
 * addresses to the device, which reads frames into them, then commits the
 * ones filled: no copy between the kernel's and lwIP's. */

/* Reserves up to n pbufs of size bytes; writes (pbuf, payload) pairs to out
 * and returns how many were reserved. */
TT_EXPORT(tt_rx_reserve) uint32_t tt_rx_reserve(uint32_t n, uint32_t size, uint32_t *out) {
  if (size == 0 || size > 0xFFFF) return 0;
  uint32_t i = 0;
  for (; i < n; i++) {
    struct pbuf *p = rx_pbuf(size);
    if (p == NULL) break;
    out[2 * i] = (uint32_t)(uintptr_t)p;
    out[2 * i + 1] = (uint32_t)(uintptr_t)p->payload;
  }
  return i;
}

/* Queues the first count reserved pbufs (listed in pbufs) for input on
 * netif, each trimmed to its length; tt_rx_flush hands them to lwIP.
 * Returns how many were dropped because the input queue was full. */
TT_EXPORT(tt_rx_commit) uint32_t tt_rx_commit(struct netif *netif, const uint32_t *pbufs, const uint32_t *lengths, uint32_t count) {
  uint32_t dropped = 0;
  for (uint32_t i = 0; i < count; i++) {
    struct pbuf *p = (struct pbuf *)(uintptr_t)pbufs[i];
    uint32_t len = lengths[i];
    if (len == 0 || len > p->len) {
      pbuf_free(p);
      continue;
    }
    u8_t idx = netif_get_index(netif);
    if (rx_q[idx].count >= RX_QUEUE_MAX) {
      pbuf_free(p);
      dropped++;
      continue;
    }
    pbuf_realloc(p, (u16_t)len);
    p->if_idx = idx;
    rx_enqueue(p, idx);
  }
  return dropped;
}

/* Frees reserved pbufs that will not be filled (the link is going away). */
TT_EXPORT(tt_rx_release) void tt_rx_release(const uint32_t *pbufs, uint32_t count) {
  for (uint32_t i = 0; i < count; i++) pbuf_free((struct pbuf *)(uintptr_t)pbufs[i]);
}

/* Feeds at most budget queued frames to lwIP in arrival order, then runs
 * due timers. Returns how many frames are still queued (the host flushes
 * them on a later turn). */
TT_EXPORT(tt_rx_flush) uint32_t tt_rx_flush(uint32_t budget) {
  struct pbuf *p;
  while (budget > 0 && (p = rx_dequeue()) != NULL) {
    budget--;
    struct netif *netif = netif_get_by_index(p->if_idx);
    if (netif != NULL && tso_real_mtu[p->if_idx] != 0) offload_input(p, netif);
    if (netif == NULL || netif->input(p, netif) != ERR_OK) {
      pbuf_free(p);
    }
  }
  sys_check_timeouts();
  return rx_queued;
}
