/* The 4-tuple index of lwIP's active and TIME-WAIT PCBs.
 *
 * lwIP finds the PCB of each incoming segment by walking tcp_active_pcbs,
 * then tcp_tw_pcbs: the cost of every segment grows with the number of
 * connections, and a SYN flood, which adds a half-open PCB per SYN, slowed
 * the stack from ~10k to ~1k SYNs a second as they piled up. Here each PCB
 * on those lists is also in a chained hash table keyed by its 4-tuple
 * (SipHash under a subkey of the stack's secret, so a peer cannot aim its
 * tuples at one bucket), which doubles as it fills: a lookup costs the same
 * with 10 or 100,000 connections. The lists stay as they are for lwIP's
 * timers and everything else that walks them.
 *
 * lwIP's TCP_REG/TCP_RMV and tcp_free call in (wasm/patches/200-*); the PCB
 * carries its chain link (tt_hnext). A PCB's 4-tuple does not change while
 * it is on those lists (it is set before TCP_REG, and a changed local
 * address aborts the connection). */
#include "glue.h"
#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"
#include <stdlib.h>

#define INITIAL_BUCKETS 64u

static struct tcp_pcb **buckets;
static uint32_t bucket_count; /* a power of two, or 0 before the first PCB */
static uint32_t indexed;
static uint32_t time_wait_indexed; /* of indexed, those on tcp_tw_pcbs */

static uint32_t bucket_of(const struct tcp_pcb *pcb) {
  return tt_tuple_hash(&pcb->local_ip, pcb->local_port, &pcb->remote_ip, pcb->remote_port) & (bucket_count - 1);
}

static int in_table(const struct tcp_pcb *pcb) {
  for (const struct tcp_pcb *p = buckets[bucket_of(pcb)]; p != NULL; p = p->tt_hnext) {
    if (p == pcb) return 1;
  }
  return 0;
}

static int is_indexed_list(struct tcp_pcb **list) { return list == &tcp_active_pcbs || list == &tcp_tw_pcbs; }

/* Makes a table of count buckets holding every PCB on the two lists (the
 * one TCP_REG is adding is already there). Rebuilding from the lists rather
 * than rehashing the old table also heals the one case the table misses
 * PCBs: when there was no memory for it. Each doubling walks the lists
 * once, which amortizes to a constant per PCB added. */
static int rebuild(uint32_t count) {
  struct tcp_pcb **fresh = calloc(count, sizeof(*fresh));
  if (fresh == NULL) return 0;
  free(buckets);
  buckets = fresh;
  bucket_count = count;
  indexed = 0;
  time_wait_indexed = 0;
  for (int l = 0; l < 2; l++) {
    for (struct tcp_pcb *pcb = l == 0 ? tcp_active_pcbs : tcp_tw_pcbs; pcb != NULL; pcb = pcb->next) {
      uint32_t b = bucket_of(pcb);
      pcb->tt_hnext = buckets[b];
      buckets[b] = pcb;
      indexed++;
      time_wait_indexed += (uint32_t)l;
    }
  }
  return 1;
}

void tt_tcp_lookup_add(struct tcp_pcb **list, struct tcp_pcb *pcb) {
  if (!is_indexed_list(list)) return;
  /* Load factor at most 1. Without memory for a bigger table the chains
   * just grow longer; without any table lookups walk the lists. */
  if (indexed >= bucket_count && rebuild(bucket_count ? bucket_count * 2 : INITIAL_BUCKETS)) return;
  if (bucket_count == 0 || in_table(pcb)) return;
  uint32_t b = bucket_of(pcb);
  pcb->tt_hnext = buckets[b];
  buckets[b] = pcb;
  indexed++;
  time_wait_indexed += list == &tcp_tw_pcbs;
}

void tt_tcp_lookup_remove(struct tcp_pcb **list, struct tcp_pcb *pcb) {
  if (list != NULL && !is_indexed_list(list)) return;
  if (bucket_count == 0) return;
  for (struct tcp_pcb **at = &buckets[bucket_of(pcb)]; *at != NULL; at = &(*at)->tt_hnext) {
    if (*at == pcb) {
      *at = pcb->tt_hnext;
      pcb->tt_hnext = NULL;
      indexed--;
      /* Without a list (tcp_free after tcp_slowtmr unlinked it by hand) the
       * state tells: PCBs leave the active list before entering TIME_WAIT. */
      time_wait_indexed -= list == &tcp_tw_pcbs || (list == NULL && pcb->state == TIME_WAIT);
      return;
    }
  }
}

static int matches(const struct tcp_pcb *pcb, const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip,
                   u16_t remote_port, u8_t netif_idx) {
  return pcb->remote_port == remote_port && pcb->local_port == local_port &&
         (pcb->netif_idx == NETIF_NO_INDEX || pcb->netif_idx == netif_idx) && ip_addr_eq(&pcb->remote_ip, remote_ip) &&
         ip_addr_eq(&pcb->local_ip, local_ip);
}

/* The PCB of a segment: an active one first, as lwIP's walk of the active
 * list before the TIME-WAIT list found it. */
struct tcp_pcb *tt_tcp_lookup(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip,
                              u16_t remote_port, u8_t netif_idx) {
  struct tcp_pcb *time_wait = NULL;
  if (bucket_count == 0) {
    /* Only while there was no memory for a first table. */
    for (int l = 0; l < 2; l++) {
      for (struct tcp_pcb *pcb = l == 0 ? tcp_active_pcbs : tcp_tw_pcbs; pcb != NULL; pcb = pcb->next) {
        if (matches(pcb, local_ip, local_port, remote_ip, remote_port, netif_idx)) return pcb;
      }
    }
    return NULL;
  }
  uint32_t b = tt_tuple_hash(local_ip, local_port, remote_ip, remote_port) & (bucket_count - 1);
  for (struct tcp_pcb *pcb = buckets[b]; pcb != NULL; pcb = pcb->tt_hnext) {
    if (!matches(pcb, local_ip, local_port, remote_ip, remote_port, netif_idx)) continue;
    if (pcb->state != TIME_WAIT) return pcb;
    time_wait = pcb;
  }
  return time_wait;
}

/* How many TIME-WAIT PCBs the table holds: all of tcp_tw_pcbs but while
 * there was no memory for a table. */
uint32_t tt_tcp_lookup_time_wait_count(void) { return time_wait_indexed; }
