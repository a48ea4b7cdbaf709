/* TIME-WAIT reopened by a new SYN (RFC 6191, RFC 1122 section 4.2.2.13).
 *
 * The side that closes first holds the 4-tuple in TIME-WAIT for 2 MSL
 * (60 s here) so that old duplicates of the closed connection die out
 * before a new one can take them. A client that reuses its port (a fixed
 * source port, SO_REUSEADDR, or a sandbox whose kernel picks the same
 * ephemeral port again) would wait out those 60 s: lwIP answered its SYN
 * from TIME-WAIT with an ACK or RST, never a SYN-ACK. RFC 1122 lets a SYN
 * reopen the connection when its sequence number is above the old
 * connection's RCV.NXT (old duplicates of the peer then fall below the new
 * window) and the new ISN is above the old SND.NXT (tcp_in.c sees to that).
 *
 * RFC 6191 adds timestamps: a SYN whose TSval is newer than the old
 * connection's TS.Recent may reopen it whatever its sequence number. That
 * relies on the new connection discarding old duplicates by timestamp
 * (PAWS, RFC 7323 section 5), which lwIP does not do, so here a newer
 * TSval is not enough on its own; an older one does refuse a SYN (RFC 6191
 * section 2: it is an old duplicate SYN, Linux rejects it by PAWS as well).
 * Every other segment, and a SYN refused here, gets TIME-WAIT's answer as
 * before (RFC 793: RST to a SYN in the window, else ACK). */
#include "glue.h"
#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"

static uint32_t reopened;

/* The TSval of th's timestamp option, when tw and th both use timestamps. */
static int syn_tsval(const struct tcp_pcb *tw, const struct tcp_hdr *th, unsigned short len, u32_t *tsval) {
#if LWIP_TCP_TIMESTAMPS
  u16_t hlen = (u16_t)TCPH_HDRLEN_BYTES(th);
  return (tw->flags & TF_TIMESTAMP) && hlen > TCP_HLEN && hlen <= len &&
         tt_syn_tsval((const u8_t *)th + TCP_HLEN, hlen - TCP_HLEN, tsval);
#else
  return 0;
#endif
}

int tt_tcp_timewait_takes_syn(const struct tcp_pcb *tw, const struct tcp_hdr *th, unsigned short len) {
  if (tw->state != TIME_WAIT || len < TCP_HLEN) return 0;
  /* A bare SYN: with ACK it belongs to a connection, with RST or FIN it
   * is not a connection request (Linux asks the same). */
  if ((TCPH_FLAGS(th) & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) != TCP_SYN) return 0;
  if (!TCP_SEQ_GT(lwip_ntohl(th->seqno), tw->rcv_nxt)) return 0;
  u32_t tsval;
  /* Timestamps compare modulo 2^32 as sequence numbers do. */
  return !syn_tsval(tw, th, len, &tsval) || !TCP_SEQ_LT(tsval, tw->ts_recent);
}

int tt_tcp_timewait_newer_ts(const struct tcp_pcb *tw, const struct tcp_hdr *th, unsigned short len) {
  u32_t tsval;
  return tw->state == TIME_WAIT && len >= TCP_HLEN &&
         (TCPH_FLAGS(th) & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN && syn_tsval(tw, th, len, &tsval) &&
         TCP_SEQ_GT(tsval, tw->ts_recent);
}

unsigned int tt_tcp_timewait_reopen(struct tcp_pcb *tw) {
  u32_t snd_nxt = tw->snd_nxt;
  tcp_abort(tw); /* TIME-WAIT: off its list and the 4-tuple index, freed, no RST */
  reopened++;
  return snd_nxt;
}

/* TIME-WAIT connections a SYN reopened since the stack started. */
TT_EXPORT(tt_tcp_timewait_reopened) uint32_t tt_tcp_timewait_reopened(void) { return reopened; }
