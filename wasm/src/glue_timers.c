/* When the stack next needs the host's timer.
 *
 * lwIP runs its IGMP and MLD timers every 100 ms whether or not a group has
 * a report pending, so an idle stack woke ~12 times a second (10,000 idle
 * stacks took 64 % of a core). Those two timers do nothing unless a group's
 * report timer runs, so the deadline handed to the host skips them then;
 * when they are finally run (late, with the next other timer), lwIP
 * reschedules them from that moment. Any call that starts a report timer
 * (a join, a query) ends with a new deadline from here, which counts them
 * again.
 *
 * lwIP keeps its timeout list private to timeouts.c, so that file is
 * compiled as part of this translation unit (not built separately), as
 * glue_tables.c does for etharp.c and nd6.c. */
#include "core/timeouts.c"

#include "glue.h"
#include "lwip/igmp.h"
#include "lwip/mld6.h"

/* Whether an IGMP or MLD group has a report timer running. */
static int group_timers_running(void) {
  struct netif *n;
  NETIF_FOREACH(n) {
#if LWIP_IGMP
    for (struct igmp_group *g = netif_igmp_data(n); g != NULL; g = g->next) {
      if (g->timer > 0) return 1;
    }
#endif
#if LWIP_IPV6_MLD
    for (struct mld_group *g = netif_mld6_data(n); g != NULL; g = g->next) {
      if (g->timer > 0) return 1;
    }
#endif
  }
  return 0;
}

/* Whether t is the cyclic IGMP or MLD timer. */
static int is_group_timer(const struct sys_timeo *t) {
  if (t->h != lwip_cyclic_timer) return 0;
  const struct lwip_cyclic_timer *c = (const struct lwip_cyclic_timer *)t->arg;
#if LWIP_IGMP
  if (c->handler == igmp_tmr) return 1;
#endif
#if LWIP_IPV6_MLD
  if (c->handler == mld6_tmr) return 1;
#endif
  return 0;
}

/* Milliseconds until the next timer that has work to do, or
 * SYS_TIMEOUTS_SLEEPTIME_INFINITE. */
uint32_t tt_timeouts_sleeptime(void) {
  int groups = -1; /* not asked yet */
  u32_t now = sys_now();
  /* The list is sorted by due time: the first that counts decides. */
  for (struct sys_timeo *t = next_timeout; t != NULL; t = t->next) {
    if (is_group_timer(t)) {
      if (groups < 0) groups = group_timers_running();
      if (!groups) continue;
    }
    return TIME_LESS_THAN(t->time, now) ? 0 : (uint32_t)(t->time - now);
  }
  return SYS_TIMEOUTS_SLEEPTIME_INFINITE;
}
