/* DNS client: servers and lookups; the answer comes back as dns_found. */
#include "glue.h"
#include "lwip/dns.h"

static void on_found(const char *name, const ip_addr_t *addr, void *arg) {
  LWIP_UNUSED_ARG(name);
  if (addr == NULL) {
    tt_host_dns_found((uint32_t)(uintptr_t)arg, NULL);
    return;
  }
  tt_ip_to_sockaddr(addr, 0, &tt_sockaddrs[2]);
  tt_host_dns_found((uint32_t)(uintptr_t)arg, &tt_sockaddrs[2]);
}

/* Sets server slot i to tt_sockaddrs[0] (family 0 clears it). */
TT_EXPORT(tt_dns_set_server) void tt_dns_set_server(uint32_t i) {
  ip_addr_t ip;
  if (tt_sockaddrs[0].family == 0) {
    dns_setserver((u8_t)i, NULL);
    return;
  }
  tt_sockaddr_to_ip(&tt_sockaddrs[0], &ip);
  dns_setserver((u8_t)i, &ip);
}

/* Server slot i into tt_sockaddrs[0] (family 0 when unset). */
TT_EXPORT(tt_dns_get_server) void tt_dns_get_server(uint32_t i) {
  const ip_addr_t *ip = dns_getserver((u8_t)i);
  if (ip_addr_isany(ip)) {
    tt_sockaddrs[0].family = 0;
    return;
  }
  tt_ip_to_sockaddr(ip, 53, &tt_sockaddrs[0]);
}

/* family: 4, 6, 46 (IPv4 first) or 64 (IPv6 first). Returns ERR_OK with the
 * answer already in tt_sockaddrs[2], ERR_INPROGRESS when dns_found will
 * follow, or another err_t. */
TT_EXPORT(tt_dns_lookup) int32_t tt_dns_lookup(const char *name, uint32_t id, uint32_t family) {
  u8_t type = family == 4 ? LWIP_DNS_ADDRTYPE_IPV4 : family == 6 ? LWIP_DNS_ADDRTYPE_IPV6
            : family == 64 ? LWIP_DNS_ADDRTYPE_IPV6_IPV4 : LWIP_DNS_ADDRTYPE_IPV4_IPV6;
  ip_addr_t ip;
  err_t err = dns_gethostbyname_addrtype(name, &ip, on_found, (void *)(uintptr_t)id, type);
  if (err == ERR_OK) tt_ip_to_sockaddr(&ip, 0, &tt_sockaddrs[2]);
  return err;
}
