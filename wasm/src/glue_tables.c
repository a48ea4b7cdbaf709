/* The neighbour caches, the routing table and the protocol counters.
 *
 * lwIP keeps its ARP and ND tables private to etharp.c and nd6.c and offers
 * no way to list or delete dynamic entries, so those two lwIP files are
 * compiled as part of this translation unit (they are not built separately),
 * which lets the accessors below read the tables in place. */
#include "core/ipv4/etharp.c"
#include "core/ipv6/nd6.c"

#include "glue.h"
#include "lwip/stats.h"
#include <stdlib.h>
#include <string.h>

/* ---- ARP ---- */

/* Entry i into out: [0] ip4 (network order), [1] netif handle, [2] state
 * (0 empty, 1 pending, 2 stable, 3 static), [3] age in seconds, then 6 MAC
 * bytes at byte offset 16. Returns 0 past the end of the table. */
TT_EXPORT(tt_arp_entry) uint32_t tt_arp_entry(uint32_t i, uint32_t *out) {
  if (i >= ARP_TABLE_SIZE) return 0;
  const struct etharp_entry *e = &arp_table[i];
  out[0] = ip4_addr_get_u32(&e->ipaddr);
  out[1] = (uint32_t)(uintptr_t)e->netif;
  out[2] = e->state == ETHARP_STATE_EMPTY ? 0
         : e->state == ETHARP_STATE_PENDING ? 1
         : e->state == ETHARP_STATE_STATIC ? 3 : 2;
  out[3] = e->ctime;
  memcpy(out + 4, e->ethaddr.addr, ETH_HWADDR_LEN);
  return 1;
}

TT_EXPORT(tt_arp_add_static) int32_t tt_arp_add_static(uint32_t ip, const uint8_t *mac) {
  ip4_addr_t a;
  struct eth_addr hw;
  ip4_addr_set_u32(&a, ip);
  memcpy(hw.addr, mac, ETH_HWADDR_LEN);
  return etharp_add_static_entry(&a, &hw);
}

/* Removes the entry for ip, static or dynamic. */
TT_EXPORT(tt_arp_remove) int32_t tt_arp_remove(uint32_t ip) {
  for (int i = 0; i < ARP_TABLE_SIZE; i++) {
    if (arp_table[i].state != ETHARP_STATE_EMPTY && ip4_addr_get_u32(&arp_table[i].ipaddr) == ip) {
      etharp_free_entry(i);
      return ERR_OK;
    }
  }
  return ERR_ARG;
}

/* Removes every dynamic entry (of one netif, or of all when netif is 0). */
TT_EXPORT(tt_arp_flush) void tt_arp_flush(struct netif *netif) {
  for (int i = 0; i < ARP_TABLE_SIZE; i++) {
    u8_t state = arp_table[i].state;
    if (state != ETHARP_STATE_EMPTY && state != ETHARP_STATE_STATIC &&
        (netif == NULL || arp_table[i].netif == netif)) {
      etharp_free_entry(i);
    }
  }
}

/* Proxy ARP for a gateway's extra addresses (src/glue_gateway.c): answers
 * an ARP request for ip with netif's own MAC. etharp_raw is private to
 * etharp.c, compiled into this file. */
int tt_arp_answer_for(struct netif *netif, struct pbuf *p, uint32_t ip) {
  if (p->len < SIZEOF_ETH_HDR + SIZEOF_ETHARP_HDR) return 0;
  const struct eth_hdr *eth = (const struct eth_hdr *)p->payload;
  if (eth->type != PP_HTONS(ETHTYPE_ARP)) return 0;
  const struct etharp_hdr *hdr = (const struct etharp_hdr *)((const u8_t *)p->payload + SIZEOF_ETH_HDR);
  if (hdr->opcode != PP_HTONS(ARP_REQUEST) || hdr->hwtype != PP_HTONS(LWIP_IANA_HWTYPE_ETHERNET) ||
      hdr->hwlen != ETH_HWADDR_LEN || hdr->protolen != sizeof(ip4_addr_t) || hdr->proto != PP_HTONS(ETHTYPE_IP)) return 0;
  ip4_addr_t target, sender;
  IPADDR_WORDALIGNED_COPY_TO_IP4_ADDR_T(&target, &hdr->dipaddr);
  IPADDR_WORDALIGNED_COPY_TO_IP4_ADDR_T(&sender, &hdr->sipaddr);
  if (ip4_addr_get_u32(&target) != ip || ip4_addr_eq(&target, &sender)) return 0;
  etharp_raw(netif, (struct eth_addr *)netif->hwaddr, &hdr->shwaddr, (struct eth_addr *)netif->hwaddr, &target,
             &hdr->shwaddr, &sender, ARP_REPLY);
  return 1;
}

/* ---- IPv6 neighbours ---- */

/* Entry i into out: 16 address bytes, [4] netif, [5] state (lwIP's
 * ND6_* numbering: 0 none, 1 incomplete, 2 reachable, 3 stale, 4 delay,
 * 5 probe), then 6 link-layer bytes at byte offset 24. */
TT_EXPORT(tt_nd6_entry) uint32_t tt_nd6_entry(uint32_t i, uint32_t *out) {
  if (i >= LWIP_ND6_NUM_NEIGHBORS) return 0;
  const struct nd6_neighbor_cache_entry *e = &neighbor_cache[i];
  memcpy(out, e->next_hop_address.addr, 16);
  out[4] = (uint32_t)(uintptr_t)e->netif;
  out[5] = e->state;
  memcpy(out + 6, e->lladdr, 6);
  return 1;
}

TT_EXPORT(tt_nd6_remove) int32_t tt_nd6_remove(void) {
  ip_addr_t ip;
  tt_sockaddr_to_ip(&tt_sockaddrs[0], &ip);
  for (s8_t i = 0; i < LWIP_ND6_NUM_NEIGHBORS; i++) {
    if (neighbor_cache[i].state != ND6_NO_ENTRY &&
        ip6_addr_zoneless_eq(&neighbor_cache[i].next_hop_address, ip_2_ip6(&ip))) {
      nd6_free_neighbor_cache_entry(i);
      return ERR_OK;
    }
  }
  return ERR_ARG;
}

TT_EXPORT(tt_nd6_flush) void tt_nd6_flush(struct netif *netif) {
  for (s8_t i = 0; i < LWIP_ND6_NUM_NEIGHBORS; i++) {
    if (neighbor_cache[i].state != ND6_NO_ENTRY && (netif == NULL || neighbor_cache[i].netif == netif)) {
      nd6_free_neighbor_cache_entry(i);
    }
  }
}

/* ---- routing: longest prefix match, then lowest metric ---- */

struct route {
  ip_addr_t prefix;
  ip_addr_t gateway; /* any: the destination is on-link */
  struct netif *netif;
  uint32_t metric;
  uint8_t prefix_len;
};

static struct route *routes;
static uint32_t route_count, route_cap;
static int forwarding;

static int prefix_matches(const ip_addr_t *prefix, uint32_t len, const uint8_t *addr, int v6) {
  const uint8_t *p = v6 ? (const uint8_t *)ip_2_ip6(prefix)->addr : (const uint8_t *)&ip_2_ip4(prefix)->addr;
  uint32_t full = len / 8, rest = len % 8;
  if (memcmp(p, addr, full) != 0) return 0;
  if (rest == 0) return 1;
  uint8_t mask = (uint8_t)(0xFF << (8 - rest));
  return (p[full] & mask) == (addr[full] & mask);
}

static const struct route *lookup(const uint8_t *addr, int v6, const struct netif *only) {
  const struct route *best = NULL;
  for (uint32_t i = 0; i < route_count; i++) {
    const struct route *r = &routes[i];
    if (IP_IS_V6(&r->prefix) != v6) continue;
    if (only != NULL && r->netif != only) continue;
    if (!netif_is_up(r->netif) || !netif_is_link_up(r->netif)) continue;
    if (!prefix_matches(&r->prefix, r->prefix_len, addr, v6)) continue;
    if (best == NULL || r->prefix_len > best->prefix_len ||
        (r->prefix_len == best->prefix_len && r->metric < best->metric)) {
      best = r;
    }
  }
  return best;
}

/* Adds a route: prefix in tt_sockaddrs[0], gateway in tt_sockaddrs[1]
 * (family 0 for on-link). */
TT_EXPORT(tt_route_add) int32_t tt_route_add(uint32_t prefix_len, struct netif *netif, uint32_t metric) {
  if (route_count == route_cap) {
    uint32_t cap = route_cap ? route_cap * 2 : 8;
    struct route *grown = malloc(cap * sizeof(struct route));
    if (grown == NULL) return ERR_MEM;
    if (routes) memcpy(grown, routes, route_count * sizeof(struct route));
    free(routes);
    routes = grown;
    route_cap = cap;
  }
  struct route *r = &routes[route_count];
  memset(r, 0, sizeof(*r));
  tt_sockaddr_to_ip(&tt_sockaddrs[0], &r->prefix);
  if (tt_sockaddrs[1].family != 0) tt_sockaddr_to_ip(&tt_sockaddrs[1], &r->gateway);
  else ip_addr_set_zero_ip4(&r->gateway);
  r->netif = netif;
  r->metric = metric;
  r->prefix_len = (uint8_t)prefix_len;
  route_count++;
  return ERR_OK;
}

static int same_route(const struct route *r, uint32_t prefix_len, struct netif *netif) {
  ip_addr_t prefix;
  tt_sockaddr_to_ip(&tt_sockaddrs[0], &prefix);
  if (r->prefix_len != prefix_len || !ip_addr_eq(&r->prefix, &prefix)) return 0;
  return netif == NULL || r->netif == netif;
}

/* Removes the routes to the prefix in tt_sockaddrs[0] (of one netif, or any
 * when netif is 0). Returns how many were removed. */
TT_EXPORT(tt_route_remove) uint32_t tt_route_remove(uint32_t prefix_len, struct netif *netif) {
  uint32_t kept = 0, removed = 0;
  for (uint32_t i = 0; i < route_count; i++) {
    if (same_route(&routes[i], prefix_len, netif)) removed++;
    else routes[kept++] = routes[i];
  }
  route_count = kept;
  return removed;
}

/* Drops every route through netif (when the interface goes away). */
TT_EXPORT(tt_route_remove_netif) void tt_route_remove_netif(struct netif *netif) {
  uint32_t kept = 0;
  for (uint32_t i = 0; i < route_count; i++) {
    if (routes[i].netif != netif) routes[kept++] = routes[i];
  }
  route_count = kept;
}

/* Route i: prefix into tt_sockaddrs[0], gateway into [1] (family 0 when
 * on-link), out: [0] prefix length, [1] netif, [2] metric. */
TT_EXPORT(tt_route_entry) uint32_t tt_route_entry(uint32_t i, uint32_t *out) {
  if (i >= route_count) return 0;
  const struct route *r = &routes[i];
  tt_ip_to_sockaddr(&r->prefix, 0, &tt_sockaddrs[0]);
  if (ip_addr_isany(&r->gateway)) memset(&tt_sockaddrs[1], 0, sizeof(tt_sockaddrs[1]));
  else tt_ip_to_sockaddr(&r->gateway, 0, &tt_sockaddrs[1]);
  out[0] = r->prefix_len;
  out[1] = (uint32_t)(uintptr_t)r->netif;
  out[2] = r->metric;
  return 1;
}

TT_EXPORT(tt_set_forwarding) void tt_set_forwarding(uint32_t on) { forwarding = on != 0; }

struct netif *tt_hook_ip4_route(const ip4_addr_t *src, const ip4_addr_t *dest) {
  LWIP_UNUSED_ARG(src);
  const struct route *r = lookup((const uint8_t *)&dest->addr, 0, NULL);
  return r ? r->netif : NULL;
}

const ip4_addr_t *tt_hook_ip4_gateway(struct netif *netif, const ip4_addr_t *dest) {
  const struct route *r = lookup((const uint8_t *)&dest->addr, 0, netif);
  if (r == NULL) return NULL;
  /* An on-link route: the destination itself is the next hop. */
  return ip_addr_isany(&r->gateway) ? dest : ip_2_ip4(&r->gateway);
}

int tt_hook_ip4_canforward(struct pbuf *p, u32_t dest_hostorder) {
  LWIP_UNUSED_ARG(p);
  LWIP_UNUSED_ARG(dest_hostorder);
  if (forwarding) return -1; /* lwIP's own checks decide */
  /* Not ours and we do not route: lwIP would drop it uncounted. */
  IP_STATS_INC(ip.rterr);
  IP_STATS_INC(ip.drop);
  return 0;
}

struct netif *tt_hook_ip6_route(const ip6_addr_t *src, const ip6_addr_t *dest) {
  LWIP_UNUSED_ARG(src);
  const struct route *r = lookup((const uint8_t *)dest->addr, 1, NULL);
  return r ? r->netif : NULL;
}

const ip6_addr_t *tt_hook_ip6_gateway(struct netif *netif, const ip6_addr_t *dest) {
  const struct route *r = lookup((const uint8_t *)dest->addr, 1, netif);
  if (r == NULL || ip_addr_isany(&r->gateway)) return NULL;
  return ip_2_ip6(&r->gateway);
}

/* IPv6 has no forwarding hook: with forwarding off, drop unicast packets
 * that are not addressed to one of our interfaces before lwIP forwards them
 * (a gateway-mode interface takes them all: src/glue_gateway.c). */
int tt_gw_is_gateway(struct netif *netif);

int tt_hook_ip6_input(struct pbuf *p, struct netif *inp) {
  if (forwarding || p->len < IP6_HLEN || tt_gw_is_gateway(inp)) return 0;
  ip6_addr_t dest;
  memcpy(dest.addr, (const uint8_t *)p->payload + 24, 16);
  if (ip6_addr_ismulticast(&dest)) return 0;
  struct netif *n;
  NETIF_FOREACH(n) {
    for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++) {
      if (ip6_addr_isvalid(netif_ip6_addr_state(n, i)) &&
          memcmp(netif_ip6_addr(n, i)->addr, dest.addr, 16) == 0) {
        return 0;
      }
    }
  }
  IP6_STATS_INC(ip6.drop);
  pbuf_free(p);
  return 1;
}

/* ---- counters ---- */

#define PROTO_FIELDS 12
static void put_proto(uint32_t **out, const struct stats_proto *s) {
  const STAT_COUNTER v[PROTO_FIELDS] = { s->xmit, s->recv, s->fw, s->drop, s->chkerr, s->lenerr,
                                         s->memerr, s->rterr, s->proterr, s->opterr, s->err, s->cachehit };
  for (int i = 0; i < PROTO_FIELDS; i++) (*out)[i] = v[i];
  *out += PROTO_FIELDS;
}

/* Per-protocol counters, 12 per protocol (xmit, recv, fw, drop, chkerr,
 * lenerr, memerr, rterr, proterr, opterr, err, cachehit) in the order
 * link, etharp, ip_frag, ip, icmp, udp, tcp, ip6, icmp6, ip6_frag, nd6. */
TT_EXPORT(tt_stats) void tt_stats(uint32_t *out) {
  put_proto(&out, &lwip_stats.link);
  put_proto(&out, &lwip_stats.etharp);
  put_proto(&out, &lwip_stats.ip_frag);
  put_proto(&out, &lwip_stats.ip);
  put_proto(&out, &lwip_stats.icmp);
  put_proto(&out, &lwip_stats.udp);
  put_proto(&out, &lwip_stats.tcp);
  put_proto(&out, &lwip_stats.ip6);
  put_proto(&out, &lwip_stats.icmp6);
  put_proto(&out, &lwip_stats.ip6_frag);
  put_proto(&out, &lwip_stats.nd6);
}
