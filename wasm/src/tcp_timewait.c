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

/* The TSval of a SYN's timestamp option, when tw and the SYN both use timestamps. */
static int syn_tsval(const struct tcp_pcb *tw, const u8_t *options, u16_t options_len, u32_t *tsval) {
#if LWIP_TCP_TIMESTAMPS
  return (tw->flags & TF_TIMESTAMP) && tt_syn_tsval(options, options_len, tsval);
#else
  return 0;
#endif
}

/* A bare SYN: with ACK it belongs to a connection, with RST or FIN it is
 * not a connection request (Linux asks the same). */
static int bare_syn(const struct tcp_pcb *tw, u8_t flags) {
  return tw->state == TIME_WAIT && (flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN;
}

int tt_tcp_timewait_takes_syn(const struct tcp_pcb *tw, u8_t flags, u32_t seqno, const u8_t *options,
                              u16_t options_len) {
  if (!bare_syn(tw, flags) || !TCP_SEQ_GT(seqno, tw->rcv_nxt)) return 0;
  u32_t tsval;
  /* Timestamps compare modulo 2^32 as sequence numbers do. */
  return !syn_tsval(tw, options, options_len, &tsval) || !TCP_SEQ_LT(tsval, tw->ts_recent);
}

int tt_tcp_timewait_newer_ts(const struct tcp_pcb *tw, u8_t flags, const u8_t *options, u16_t options_len) {
  u32_t tsval;
  return bare_syn(tw, flags) && syn_tsval(tw, options, options_len, &tsval) && TCP_SEQ_GT(tsval, tw->ts_recent);
}

unsigned int tt_tcp_timewait_reopen(struct tcp_pcb *tw) {
  u32_t snd_nxt = tw->snd_nxt;
  tcp_abort(tw); /* TIME-WAIT: off its list and the 4-tuple index, freed, no RST */
  reopened++;
  return snd_nxt;
}

/* TIME-WAIT connections a SYN reopened since the stack started. */
TT_EXPORT(tt_tcp_timewait_reopened) uint32_t tt_tcp_timewait_reopened(void) { return reopened; }
