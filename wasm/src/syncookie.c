/* SYN cookies: when a listener's SYN backlog is full, answer a SYN with a
 * SYN-ACK whose sequence number encodes the connection, and keep nothing.
 *
 * A SYN flood fills the backlog with half-open connections that never
 * complete; lwIP then dropped every further SYN, legitimate ones too (their
 * clients waited a full RTO). As Linux does (net.ipv4.tcp_syncookies=1,
 * D. J. Bernstein's design), the SYNs beyond the backlog get a cookie
 * instead: a flood costs no memory however fast it comes, and a real client
 * that echoes the cookie in its ACK (ackno - 1) gets its connection then
 * (tt_syncookie_accept in lwIP's tcp_in.c, wasm/patches/200-*).
 *
 * Our 32-bit ISN, high bits first (our own layout, in the spirit of
 * Linux's, whose window scale and SACK travel in the timestamp instead):
 *   2 bits  clock: the stack's time in 65.536 s units, mod 4; a cookie is
 *           good for the unit it was made in and the next (65-131 s)
 *   3 bits  the peer's MSS, as an index into mss_table (rounded down)
 *   1 bit   the peer offered SACK
 *   1 bit   the peer sent timestamps
 *   4 bits  the peer's window scale (0-14), 15 for none
 *  21 bits  MAC: SipHash (glue_random.c, a subkey of the stack's secret)
 *           of the 4-tuple, the peer's ISN, the full clock and the bits
 *           above, so a forged ACK succeeds with odds of 2^-21 per try
 *           and a cookie cannot be replayed from another tuple. */
#include "glue.h"
#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/sys.h"
#include <string.h>

#define MAC_BITS 21
#define MAC_MASK ((1u << MAC_BITS) - 1)
#define WS_NONE 15

/* MSS values a cookie can say, each the largest of a common path: the
 * minimum (RFC 1122), IPv6 tunnels, PPPoE/VPN, Ethernet with options,
 * Ethernet, jumbo frames, and the largest this stack's interfaces carry. */
static const u16_t mss_table[8] = {536, 1220, 1380, 1440, 1460, 8960, 16344, 65480};

static uint32_t clock_units(void) { return tt_host_now() >> 16; }

struct syn_options {
  u16_t mss;
  int wscale; /* -1: none */
  int sack;
  int timestamps;
  u32_t tsval;
};

static void parse(const u8_t *o, unsigned len, struct syn_options *out) {
  out->mss = 536; /* RFC 9293 3.7.1: without the option, assume 536 */
  out->wscale = -1;
  out->sack = 0;
  out->timestamps = 0;
  out->tsval = 0;
  for (unsigned i = 0; i < len;) {
    u8_t kind = o[i];
    if (kind == LWIP_TCP_OPT_EOL) break;
    if (kind == LWIP_TCP_OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= len || o[i + 1] < 2 || i + o[i + 1] > len) break; /* malformed: take what we have */
    u8_t olen = o[i + 1];
    if (kind == LWIP_TCP_OPT_MSS && olen == 4) {
      out->mss = (u16_t)((o[i + 2] << 8) | o[i + 3]);
    } else if (kind == LWIP_TCP_OPT_WS && olen == 3) {
      out->wscale = o[i + 2] > 14 ? 14 : o[i + 2]; /* RFC 7323 2.3 */
    } else if (kind == LWIP_TCP_OPT_SACK_PERM && olen == 2) {
      out->sack = 1;
    } else if (kind == LWIP_TCP_OPT_TS && olen == 10) {
      out->timestamps = 1;
      out->tsval = ((u32_t)o[i + 2] << 24) | ((u32_t)o[i + 3] << 16) | ((u32_t)o[i + 4] << 8) | o[i + 5];
    }
    i += olen;
  }
}

static u32_t mac(const ip_addr_t *local_ip, const ip_addr_t *remote_ip, u16_t local_port, u16_t remote_port,
                 u32_t peer_isn, u32_t clock, u32_t bits) {
  return tt_cookie_mac(local_ip, local_port, remote_ip, remote_port, peer_isn, (clock << 9) | bits) & MAC_MASK;
}

/* The TSval of a SYN's timestamp option (RFC 7323), for src/tcp_timewait.c. */
int tt_syn_tsval(const u8_t *options, unsigned options_len, u32_t *tsval) {
  struct syn_options so;
  parse(options, options_len, &so);
  *tsval = so.tsval;
  return so.timestamps;
}

int tt_gw_listens(u16_t local_port);

static uint32_t cookies_sent, cookies_accepted, cookies_rejected;

void tt_syncookie_send(struct netif *inp, const ip_addr_t *local_ip, const ip_addr_t *remote_ip, u16_t local_port,
                       u16_t remote_port, u32_t peer_isn, const u8_t *options, unsigned options_len) {
  /* A gateway listener's SYNs were each accepted by a host first, so a
   * full backlog there is a burst of real flows, not a flood, and a cookie
   * connection misses the gateway's held-SYN state (500 concurrent flows
   * to one host port got RSTs). Drop the SYN as lwIP does without cookies:
   * the sandbox retransmits it once the backlog has room. */
  if (tt_gw_listens(local_port)) return;
  struct syn_options so;
  parse(options, options_len, &so);
  unsigned m = 7;
  while (m > 0 && mss_table[m] > so.mss) m--;
  u32_t bits = (m << 6) | ((u32_t)(LWIP_TCP_SACK_OUT && so.sack) << 5) |
               ((u32_t)(LWIP_TCP_TIMESTAMPS && so.timestamps) << 4) |
               (u32_t)(LWIP_WND_SCALE && so.wscale >= 0 ? so.wscale : WS_NONE);
  u32_t clock = clock_units();
  u32_t cookie = ((clock & 3u) << 30) | (bits << MAC_BITS) |
                 mac(local_ip, remote_ip, local_port, remote_port, peer_isn, clock, bits);

  u16_t optlen = 4 + ((bits >> 4) & 1 ? 12 : 0) + ((bits & 15) != WS_NONE ? 4 : 0) + ((bits >> 5) & 1 ? 4 : 0);
  struct pbuf *p = pbuf_alloc(PBUF_IP, (u16_t)(TCP_HLEN + optlen), PBUF_RAM);
  if (p == NULL) return; /* the peer retransmits its SYN */
  struct tcp_hdr *h = (struct tcp_hdr *)p->payload;
  h->src = lwip_htons(local_port);
  h->dest = lwip_htons(remote_port);
  h->seqno = lwip_htonl(cookie);
  h->ackno = lwip_htonl(peer_isn + 1);
  TCPH_HDRLEN_FLAGS_SET(h, (TCP_HLEN + optlen) / 4, TCP_SYN | TCP_ACK);
  h->wnd = lwip_htons(TCPWND_MIN16(TCP_WND)); /* a SYN's window is never scaled */
  h->chksum = 0;
  h->urgp = 0;
  u8_t *o = (u8_t *)(h + 1);
  u16_t our_mss = tcp_eff_send_mss_netif(TCP_MSS, inp, remote_ip);
  *o++ = LWIP_TCP_OPT_MSS;
  *o++ = 4;
  *o++ = (u8_t)(our_mss >> 8);
  *o++ = (u8_t)our_mss;
  if ((bits >> 4) & 1) {
    u32_t tsval = lwip_htonl(sys_now()), tsecr = lwip_htonl(so.tsval);
    *o++ = LWIP_TCP_OPT_NOP;
    *o++ = LWIP_TCP_OPT_NOP;
    *o++ = LWIP_TCP_OPT_TS;
    *o++ = 10;
    memcpy(o, &tsval, 4);
    memcpy(o + 4, &tsecr, 4);
    o += 8;
  }
  if ((bits & 15) != WS_NONE) {
    *o++ = LWIP_TCP_OPT_NOP;
    *o++ = LWIP_TCP_OPT_WS;
    *o++ = 3;
    *o++ = TCP_RCV_SCALE;
  }
  if ((bits >> 5) & 1) {
    *o++ = LWIP_TCP_OPT_NOP;
    *o++ = LWIP_TCP_OPT_NOP;
    *o++ = LWIP_TCP_OPT_SACK_PERM;
    *o++ = 2;
  }
#if CHECKSUM_GEN_TCP
  IF__NETIF_CHECKSUM_ENABLED(inp, NETIF_CHECKSUM_GEN_TCP) {
    h->chksum = ip_chksum_pseudo(p, IP_PROTO_TCP, p->tot_len, local_ip, remote_ip);
  }
#endif
  TCP_STATS_INC(tcp.xmit);
  ip_output_if(p, local_ip, remote_ip, TCP_TTL, 0, IP_PROTO_TCP, inp);
  pbuf_free(p);
  cookies_sent++;
}

int tt_syncookie_check(const ip_addr_t *local_ip, const ip_addr_t *remote_ip, u16_t local_port, u16_t remote_port,
                       u32_t peer_isn, u32_t our_isn, struct tt_syncookie *out) {
  u32_t bits = (our_isn >> MAC_BITS) & 0x1ff;
  u32_t now = clock_units();
  for (u32_t age = 0; age < 2; age++) {
    u32_t clock = now - age;
    if ((clock & 3u) != our_isn >> 30) continue;
    if (mac(local_ip, remote_ip, local_port, remote_port, peer_isn, clock, bits) != (our_isn & MAC_MASK)) break;
    out->mss = mss_table[bits >> 6];
    out->sack = (bits >> 5) & 1;
    out->timestamps = (bits >> 4) & 1;
    out->wscale = (bits & 15) == WS_NONE ? -1 : (signed char)(bits & 15);
    cookies_accepted++;
    return 1;
  }
  cookies_rejected++;
  return 0;
}

/* Cookies sent, ACKs that completed a connection with one, and ACKs to a
 * listener that carried none (forged, stale, or of a reset connection). */
TT_EXPORT(tt_syncookie_counter) uint32_t tt_syncookie_counter(uint32_t which) {
  return which == 0 ? cookies_sent : which == 1 ? cookies_accepted : cookies_rejected;
}
