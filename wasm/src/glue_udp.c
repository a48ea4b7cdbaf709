/* UDP and raw (ICMP) PCBs. Datagrams reach the host flattened, with the
 * sender in tt_sockaddrs[2]. */
#include "glue.h"
#include "lwip/udp.h"
#include "lwip/raw.h"
#include "lwip/ip.h"
#include <string.h>

#define ID(arg) ((uint32_t)(uintptr_t)(arg))

struct delivery { uint32_t id; uint32_t eaten; };

static void deliver_udp(const void *data, uint32_t len, void *arg) {
  tt_host_udp_recv(((struct delivery *)arg)->id, data, len, &tt_sockaddrs[2]);
}

static void on_udp_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port) {
  LWIP_UNUSED_ARG(pcb);
  struct delivery d = { ID(arg), 0 };
  tt_ip_to_sockaddr(addr, port, &tt_sockaddrs[2]);
  tt_with_flat(p, deliver_udp, &d);
  pbuf_free(p);
}

TT_EXPORT(tt_udp_new) struct udp_pcb *tt_udp_new(uint32_t family, uint32_t id) {
  struct udp_pcb *pcb = udp_new_ip_type(family == 6 ? IPADDR_TYPE_V6 : family == 4 ? IPADDR_TYPE_V4 : IPADDR_TYPE_ANY);
  if (pcb != NULL) udp_recv(pcb, on_udp_recv, (void *)(uintptr_t)id);
  return pcb;
}

TT_EXPORT(tt_udp_bind) int32_t tt_udp_bind(struct udp_pcb *pcb) {
  ip_addr_t ip;
  tt_sockaddr_to_ip(&tt_sockaddrs[0], &ip);
  return udp_bind(pcb, &ip, tt_sockaddrs[0].port);
}

TT_EXPORT(tt_udp_local) void tt_udp_local(struct udp_pcb *pcb) {
  tt_ip_to_sockaddr(&pcb->local_ip, pcb->local_port, &tt_sockaddrs[0]);
}

static struct pbuf *copy_to_pbuf(pbuf_layer layer, const void *data, uint32_t len) {
  if (len > 0xFFFF) return NULL;
  struct pbuf *p = pbuf_alloc(layer, (u16_t)len, PBUF_RAM);
  if (p != NULL) memcpy(p->payload, data, len);
  return p;
}

/* Sends len bytes to tt_sockaddrs[1]. */
TT_EXPORT(tt_udp_sendto) int32_t tt_udp_sendto(struct udp_pcb *pcb, const void *data, uint32_t len) {
  ip_addr_t ip;
  tt_sockaddr_to_ip(&tt_sockaddrs[1], &ip);
  /* A datagram is the first thing to give way at the memory budget: it
   * fails with ERR_BUF (ENOBUFS), as a kernel's full socket buffer does. */
  tt_mem_mode = TT_MEM_OPTIONAL;
  struct pbuf *p = copy_to_pbuf(PBUF_TRANSPORT, data, len);
  err_t err = p == NULL ? (len > 0xFFFF ? ERR_VAL : ERR_BUF) : udp_sendto(pcb, p, &ip, tt_sockaddrs[1].port);
  tt_mem_mode = TT_MEM_ESSENTIAL;
  if (p != NULL) pbuf_free(p);
  return err == ERR_MEM ? ERR_BUF : err;
}

TT_EXPORT(tt_udp_remove) void tt_udp_remove(struct udp_pcb *pcb) { udp_remove(pcb); }

/* Ties the socket to one interface (0 unties it): it then sends everything,
 * the limited broadcast included, out of that interface without a route
 * lookup, and hears only what arrives there (a DHCP server on one link). */
TT_EXPORT(tt_udp_bind_netif) void tt_udp_bind_netif(struct udp_pcb *pcb, struct netif *netif) { udp_bind_netif(pcb, netif); }

/* ---- raw IP, used for ICMP echo ---- */

static void deliver_raw(const void *data, uint32_t len, void *arg) {
  struct delivery *d = arg;
  d->eaten = tt_host_raw_recv(d->id, data, len, &tt_sockaddrs[2]);
}

/* lwIP hands raw PCBs the whole IP packet; the host parses it and says
 * whether it was its own (eaten, freed here) or lwIP's to keep handling. */
static u8_t on_raw_recv(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *addr) {
  LWIP_UNUSED_ARG(pcb);
  struct delivery d = { ID(arg), 0 };
  tt_ip_to_sockaddr(addr, 0, &tt_sockaddrs[2]);
  tt_with_flat(p, deliver_raw, &d);
  if (d.eaten) {
    pbuf_free(p);
    return 1;
  }
  return 0;
}

TT_EXPORT(tt_raw_new) struct raw_pcb *tt_raw_new(uint32_t family, uint32_t proto, uint32_t id) {
  struct raw_pcb *pcb = raw_new_ip_type(family == 6 ? IPADDR_TYPE_V6 : IPADDR_TYPE_V4, (u8_t)proto);
  if (pcb == NULL) return NULL;
  /* ICMPv6's checksum covers a pseudo-header only lwIP knows (RFC 4443 2.3). */
  if (family == 6) {
    pcb->chksum_reqd = 1;
    pcb->chksum_offset = 2;
  }
  raw_recv(pcb, on_raw_recv, (void *)(uintptr_t)id);
  return pcb;
}

/* Sends an IP payload (e.g. an ICMP message) to tt_sockaddrs[1]. */
TT_EXPORT(tt_raw_sendto) int32_t tt_raw_sendto(struct raw_pcb *pcb, const void *data, uint32_t len) {
  ip_addr_t ip;
  tt_sockaddr_to_ip(&tt_sockaddrs[1], &ip);
  struct pbuf *p = copy_to_pbuf(PBUF_IP, data, len);
  if (p == NULL) return ERR_MEM;
  err_t err = raw_sendto(pcb, p, &ip);
  pbuf_free(p);
  return err;
}

TT_EXPORT(tt_raw_remove) void tt_raw_remove(struct raw_pcb *pcb) { raw_remove(pcb); }
