/* TCP over lwIP's raw API. Each PCB carries the host's connection id as its
 * callback argument; every event is forwarded to the host as it happens and
 * the host decides what to do with it. */
#include "glue.h"
#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"
#include <string.h>

#define ID(arg) ((uint32_t)(uintptr_t)(arg))

/* Not static: the gateway's carried connections (glue_gateway.c) wrap it. */
err_t tt_tcp_on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err) {
  LWIP_UNUSED_ARG(pcb);
  LWIP_UNUSED_ARG(err);
  if (p == NULL) {
    tt_host_tcp_fin(ID(arg));
    return ERR_OK;
  }
  /* The window is reopened by the host (tt_tcp_recved) only as its reader
   * consumes the data: that is the receive flow control. */
  for (struct pbuf *q = p; q != NULL; q = q->next) {
    if (q->len > 0) tt_host_tcp_recv(ID(arg), q->payload, q->len);
  }
  pbuf_free(p);
  return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len) {
  LWIP_UNUSED_ARG(pcb);
  tt_host_tcp_sent(ID(arg), len);
  return ERR_OK;
}

static void on_error(void *arg, err_t err) {
  /* The PCB is already freed by lwIP when this runs. */
  tt_host_tcp_error(ID(arg), err);
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err) {
  LWIP_UNUSED_ARG(pcb);
  LWIP_UNUSED_ARG(err);
  tt_host_tcp_connected(ID(arg));
  return ERR_OK;
}

static void attach(struct tcp_pcb *pcb, uint32_t id) {
  tcp_arg(pcb, (void *)(uintptr_t)id);
  tcp_recv(pcb, tt_tcp_on_recv);
  tcp_sent(pcb, on_sent);
  tcp_err(pcb, on_error);
}

/* Not static: the gateway's listeners (glue_gateway.c) wrap it. */
err_t tt_tcp_on_accept(void *arg, struct tcp_pcb *pcb, err_t err) {
  if (err != ERR_OK || pcb == NULL) return ERR_VAL;
  uint32_t id = tt_host_tcp_accept(ID(arg), pcb);
  if (id == 0) {
    tcp_abort(pcb);
    return ERR_ABRT;
  }
  attach(pcb, id);
  return ERR_OK;
}

/* NULL at the memory budget (the host reports ENOBUFS): lwIP's tcp_alloc
 * would otherwise make room by aborting an idle connection. */
TT_EXPORT(tt_tcp_new) struct tcp_pcb *tt_tcp_new(uint32_t family) {
  if (tt_mem_tight()) return NULL;
  tt_mem_mode = TT_MEM_OPTIONAL;
  struct tcp_pcb *pcb = tcp_new_ip_type(family == 6 ? IPADDR_TYPE_V6 : family == 4 ? IPADDR_TYPE_V4 : IPADDR_TYPE_ANY);
  tt_mem_mode = TT_MEM_ESSENTIAL;
  return pcb;
}

TT_EXPORT(tt_tcp_attach) void tt_tcp_attach(struct tcp_pcb *pcb, uint32_t id) { attach(pcb, id); }

/* Binds to tt_sockaddrs[0] (address and port). */
TT_EXPORT(tt_tcp_bind) int32_t tt_tcp_bind(struct tcp_pcb *pcb) {
  ip_addr_t ip;
  tt_sockaddr_to_ip(&tt_sockaddrs[0], &ip);
  return tcp_bind(pcb, &ip, tt_sockaddrs[0].port);
}

/* Turns a bound PCB into a listener; returns the listener's handle, or a
 * negative err_t (the original PCB is then still owned by the caller). */
TT_EXPORT(tt_tcp_listen) int32_t tt_tcp_listen(struct tcp_pcb *pcb, uint32_t id, uint32_t backlog) {
  err_t err = ERR_OK;
  struct tcp_pcb *lpcb = tcp_listen_with_backlog_and_err(pcb, (u8_t)(backlog > 255 ? 255 : backlog), &err);
  if (lpcb == NULL) return err != ERR_OK ? err : ERR_MEM;
  tcp_arg(lpcb, (void *)(uintptr_t)id);
  tcp_accept(lpcb, tt_tcp_on_accept);
  return (int32_t)(uintptr_t)lpcb;
}

/* Connects to tt_sockaddrs[0]; completion arrives as tcp_connected or tcp_error. */
TT_EXPORT(tt_tcp_connect) int32_t tt_tcp_connect(struct tcp_pcb *pcb) {
  ip_addr_t ip;
  tt_sockaddr_to_ip(&tt_sockaddrs[0], &ip);
  return tcp_connect(pcb, &ip, tt_sockaddrs[0].port, on_connected);
}

/* Queues up to len bytes (copied); returns how many were taken (0 when the
 * send buffer or segment queue is full: the host waits for tcp_sent). */
TT_EXPORT(tt_tcp_write) int32_t tt_tcp_write(struct tcp_pcb *pcb, const void *data, uint32_t len, uint32_t more) {
  uint32_t room = tcp_sndbuf(pcb);
  if (len > room) len = room;
  if (len > 0xFFFF) len = 0xFFFF; /* tcp_write takes a u16 length */
  if (len == 0) return 0;
  if (tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN - 1) return 0;
  u8_t flags = TCP_WRITE_FLAG_COPY | (more ? TCP_WRITE_FLAG_MORE : 0);
  /* Data waiting to be sent is what gives way at the memory budget: the
   * host's write waits (tt_mem_tight tells it when to try again). */
  tt_mem_mode = TT_MEM_OPTIONAL;
  err_t err = tcp_write(pcb, data, (u16_t)len, flags);
  tt_mem_mode = TT_MEM_ESSENTIAL;
  if (err == ERR_MEM) return 0;
  if (err != ERR_OK) return err;
  return (int32_t)len;
}

TT_EXPORT(tt_tcp_output) int32_t tt_tcp_output(struct tcp_pcb *pcb) { return tcp_output(pcb); }
TT_EXPORT(tt_tcp_sndbuf) uint32_t tt_tcp_sndbuf(struct tcp_pcb *pcb) { return tcp_sndbuf(pcb); }

/* Reopens the receive window by len bytes the host's reader has consumed. */
TT_EXPORT(tt_tcp_recved) void tt_tcp_recved(struct tcp_pcb *pcb, uint32_t len) {
  while (len > 0) {
    u16_t step = len > 0xFFFF ? 0xFFFF : (u16_t)len;
    tcp_recved(pcb, step);
    len -= step;
  }
}

TT_EXPORT(tt_tcp_shutdown_write) int32_t tt_tcp_shutdown_write(struct tcp_pcb *pcb) {
  return tcp_shutdown(pcb, 0, 1);
}

/* Detaches the host and closes; falls back to abort (RST) when lwIP cannot
 * queue the FIN, so the handle is always released. */
TT_EXPORT(tt_tcp_close) int32_t tt_tcp_close(struct tcp_pcb *pcb) {
  tcp_arg(pcb, NULL);
  if (pcb->state != LISTEN) {
    tcp_recv(pcb, NULL);
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
  } else {
    tcp_accept(pcb, NULL);
  }
  err_t err = tcp_close(pcb);
  if (err != ERR_OK) {
    tcp_abort(pcb);
    return ERR_ABRT;
  }
  return ERR_OK;
}

/* Sends RST and frees the PCB without calling back the host. */
TT_EXPORT(tt_tcp_abort) void tt_tcp_abort(struct tcp_pcb *pcb) {
  tcp_arg(pcb, NULL);
  tcp_err(pcb, NULL);
  tcp_abort(pcb);
}

/* Local address into tt_sockaddrs[0], remote into tt_sockaddrs[1]. */
TT_EXPORT(tt_tcp_addresses) void tt_tcp_addresses(struct tcp_pcb *pcb) {
  tt_ip_to_sockaddr(&pcb->local_ip, pcb->local_port, &tt_sockaddrs[0]);
  tt_ip_to_sockaddr(&pcb->remote_ip, pcb->remote_port, &tt_sockaddrs[1]);
}

TT_EXPORT(tt_tcp_set_nodelay) void tt_tcp_set_nodelay(struct tcp_pcb *pcb, uint32_t on) {
  if (on) tcp_nagle_disable(pcb); else tcp_nagle_enable(pcb);
}

TT_EXPORT(tt_tcp_set_keepalive) void tt_tcp_set_keepalive(struct tcp_pcb *pcb, uint32_t on, uint32_t idle_ms, uint32_t interval_ms, uint32_t count) {
  if (on) {
    ip_set_option(pcb, SOF_KEEPALIVE);
    pcb->keep_idle = idle_ms;
    pcb->keep_intvl = interval_ms;
    pcb->keep_cnt = count;
  } else {
    ip_reset_option(pcb, SOF_KEEPALIVE);
  }
}

TT_EXPORT(tt_tcp_state) uint32_t tt_tcp_state(struct tcp_pcb *pcb) { return pcb->state; }

/* Out-of-order segments are kept only while memory allows (RFC 9293
 * 3.10.7.4 lets a receiver drop them; the sender retransmits). */
void tt_mem_reclaim(void) {
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next) {
    if (pcb->ooseq != NULL) tcp_free_ooseq(pcb);
  }
}

/* Ephemeral ports, RFC 6056 section 3.3.1 (Algorithm 1): a random start in
 * the range (LWIP_RAND, glue_random.c), then the next port not in use.
 * fetch-lwip.sh makes lwIP's tcp_new_port call this. lwIP's own walk scans
 * every PCB list once per port it tries: fine when ports are handed out in
 * order, but from random starts the tries grow as 1/(1 - share of the range
 * in use): a stack opening connections whose TIME_WAIT fills its ports fell
 * to ~470 connections a second by 32,000 of them. Marking the ports in use
 * in one pass and searching the bitmap costs one pass however full the
 * range (11,000-13,500 a second in the same test, as with lwIP's counter). */
static uint32_t ports_in_use[(TCP_LOCAL_PORT_RANGE_END - TCP_LOCAL_PORT_RANGE_START + 1 + 31) / 32];

u16_t tt_tcp_new_port(void) {
  const uint32_t span = TCP_LOCAL_PORT_RANGE_END - TCP_LOCAL_PORT_RANGE_START + 1;
  memset(ports_in_use, 0, sizeof(ports_in_use));
  for (int i = 0; i < NUM_TCP_PCB_LISTS; i++) {
    for (struct tcp_pcb *pcb = *tcp_pcb_lists[i]; pcb != NULL; pcb = pcb->next) {
      uint32_t k = (uint32_t)pcb->local_port - TCP_LOCAL_PORT_RANGE_START;
      if (pcb->local_port >= TCP_LOCAL_PORT_RANGE_START && k < span) ports_in_use[k / 32] |= 1u << (k % 32);
    }
  }
  uint32_t k = LWIP_RAND() % span;
  for (uint32_t tried = 0; tried < span; tried++, k = (k + 1 == span) ? 0 : k + 1) {
    if (!(ports_in_use[k / 32] & (1u << (k % 32)))) return (u16_t)(TCP_LOCAL_PORT_RANGE_START + k);
  }
  return 0; /* every port in use: tcp_connect reports ENOBUFS */
}

/* The congestion controller of connections made from now on (0 NewReno,
 * 1 CUBIC: lwIP's tcp_loss.c, from our patch set). */
TT_EXPORT(tt_tcp_set_cc) void tt_tcp_set_cc(uint32_t cc) {
  tcp_loss_default_cc = cc == TT_CC_NEWRENO ? TT_CC_NEWRENO : TT_CC_CUBIC;
}

/* Loss recovery counters: timeouts, recoveries, retransmits, probes, sacked, reneged. */
TT_EXPORT(tt_tcp_loss_stats) void tt_tcp_loss_stats(uint32_t *out) {
  out[0] = tcp_loss_stats.timeouts;
  out[1] = tcp_loss_stats.recoveries;
  out[2] = tcp_loss_stats.retransmits;
  out[3] = tcp_loss_stats.probes;
  out[4] = tcp_loss_stats.sacked;
  out[5] = tcp_loss_stats.reneged;
}
