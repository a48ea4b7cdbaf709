/* lwIP options for tcpip-ts: a server-class stack, not a microcontroller.
 *
 * Every stack is its own wasm instance driven from one JS thread, so there is
 * no OS and no locking (NO_SYS). Memory comes from our malloc (src/malloc.c),
 * which grows the instance's memory on demand: an idle stack stays small and a
 * busy one is bounded by its windows, not by pools sized at compile time. */
#ifndef TCPIP_TS_LWIPOPTS_H
#define TCPIP_TS_LWIPOPTS_H

#include "hooks.h"

#define NO_SYS                          1
#define SYS_LIGHTWEIGHT_PROT            0
#define LWIP_TIMERS                     1
#define LWIP_SOCKET                     0
#define LWIP_NETCONN                    0
#define LWIP_NETIF_API                  0

/* ---- memory ---- */
#define MEM_LIBC_MALLOC                 1
#define MEMP_MEM_MALLOC                 1
#define MEM_ALIGNMENT                   8
#define MEM_SIZE                        (1024 * 1024) /* unused with MEM_LIBC_MALLOC; keeps opt.h checks quiet */
/* Incoming frames are allocated as PBUF_RAM of the frame's exact size (see
 * glue.c), so the pool below only serves lwIP's own rare PBUF_POOL users. */
#define PBUF_POOL_SIZE                  64
#define PBUF_POOL_BUFSIZE               1600
/* With MEMP_MEM_MALLOC these are not preallocated; they only bound counts
 * where lwIP uses them as limits. */
#define MEMP_NUM_PBUF                   4096
#define MEMP_NUM_RAW_PCB                64
#define MEMP_NUM_UDP_PCB                4096
#define MEMP_NUM_TCP_PCB                65535
#define MEMP_NUM_TCP_PCB_LISTEN         4096
#define MEMP_NUM_TCP_SEG                65535
#define MEMP_NUM_REASSDATA              64
#define MEMP_NUM_FRAG_PBUF              256
#define MEMP_NUM_ARP_QUEUE              4096
#define MEMP_NUM_SYS_TIMEOUT            (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)

/* ---- links ---- */
#define LWIP_ARP                        1
#define ARP_TABLE_SIZE                  256
#define ARP_QUEUEING                    1
/* Packets held per unresolved neighbour: a burst of connects to a new
 * peer all wait on one ARP reply (Linux holds 101). */
#define ARP_QUEUE_LEN                   1024
#define ETHARP_SUPPORT_STATIC_ENTRIES   1
#define ETHARP_TABLE_MATCH_NETIF        1
/* Dynamic ARP entries age in ARP_TMR_INTERVAL (1 s) ticks; the limit is a
 * per-instance variable so each stack sets its own age (Stack options). */
extern unsigned short tt_arp_max_age;
#define ARP_MAXAGE                      tt_arp_max_age
#define LWIP_ETHERNET                   1
#define ETH_PAD_SIZE                    0
#define LWIP_NETIF_STATUS_CALLBACK      1
#define LWIP_NETIF_LINK_CALLBACK        0
#define LWIP_NETIF_HOSTNAME             1
#define LWIP_NETIF_LOOPBACK             0
#define LWIP_HAVE_LOOPIF                0
#define LWIP_SINGLE_NETIF               0
#define LWIP_NUM_NETIF_CLIENT_DATA      0
#define LWIP_CHECKSUM_CTRL_PER_NETIF    1

/* ---- IPv4 ---- */
#define LWIP_IPV4                       1
#define IP_FORWARD                      1 /* gated at run time by the CANFORWARD hook */
#define IP_REASSEMBLY                   1
#define IP_FRAG                         1
#define IP_REASS_MAXAGE                 15
/* A 64 KiB datagram at MTU 576 is ~120 fragments. */
#define IP_REASS_MAX_PBUFS              256
#define IP_DEFAULT_TTL                  64
#define IP_SOF_BROADCAST                0
#define LWIP_ICMP                       1
#define ICMP_TTL                        64
#define LWIP_BROADCAST_PING             0
#define LWIP_RAW                        1
#define LWIP_DHCP                       1
#define LWIP_DHCP_DOES_ACD_CHECK        0
#define LWIP_DHCP_GET_NTP_SRV           0
#define LWIP_AUTOIP                     0
#define LWIP_IGMP                       1
#define LWIP_ACD                        0

/* ---- IPv6 ---- */
#define LWIP_IPV6                       1
#define LWIP_IPV6_NUM_ADDRESSES         4
#define LWIP_IPV6_FORWARD               1 /* gated at run time by the IP6 input hook */
#define LWIP_IPV6_FRAG                  1
#define LWIP_IPV6_REASS                 1
#define LWIP_IPV6_AUTOCONFIG            1
#define LWIP_IPV6_ADDRESS_LIFETIMES     1
#define LWIP_IPV6_MLD                   1
#define LWIP_IPV6_SEND_ROUTER_SOLICIT   1
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS   0 /* addresses are usable at once; DAD delays start-up by seconds */
#define LWIP_ICMP6                      1
#define LWIP_ND6_NUM_NEIGHBORS          127 /* lwIP indexes neighbours with s8_t */
#define LWIP_ND6_NUM_DESTINATIONS       127 /* nd6_tmr walks it with an s8_t */
#define LWIP_ND6_NUM_PREFIXES           16
#define LWIP_ND6_NUM_ROUTERS            8
#define LWIP_ND6_QUEUEING               1
#define MEMP_NUM_ND6_QUEUE              255 /* packets held during neighbour discovery, all neighbours (lwIP counts them in a u8_t) */
#define LWIP_ND6_ALLOW_RA_UPDATES       1
#define LWIP_IPV6_DHCP6                 0
#define LWIP_IPV6_SCOPES                1

/* ---- UDP ---- */
#define LWIP_UDP                        1
#define LWIP_UDPLITE                    0
#define UDP_TTL                         64

/* ---- TCP: sized for throughput ---- */
#define LWIP_TCP                        1
/* The largest MSS any interface can carry (MTU 65520 - 40 bytes of IPv4+TCP
 * headers). Each connection's effective MSS is derived from its interface's
 * MTU (TCP_CALCULATE_EFF_SEND_MSS), so MTU 576 connections use 536. */
#define TCP_MSS                         65480
#define TCP_CALCULATE_EFF_SEND_MSS      1
#define LWIP_WND_SCALE                  1
#define TCP_RCV_SCALE                   5
/* Windows of 1 MiB: enough for 20 Gbit/s at 400 us RTT between in-process
 * stacks; memory is only used while data is in flight. */
#define TCP_WND                         (1024 * 1024)
#define TCP_SND_BUF                     (1024 * 1024)
/* Segments queued per connection: the send buffer in the smallest MSS. */
#define TCP_SND_QUEUELEN                (4 * TCP_SND_BUF / 536)
#define TCP_SNDLOWAT                    (TCP_SND_BUF / 2)
/* lwIP's TCP sanity checks cap TCP_MSS at 16382 and TCP_SNDLOWAT below
 * 64 KiB for the u16 arithmetic of its sockets/netconn layers (select()
 * writability), which this build does not compile. The core's window and
 * segment arithmetic is 32-bit with LWIP_WND_SCALE. The remaining checks
 * (SND_BUF >= 2*MSS, SND_QUEUELEN >= 2*SND_BUF/MSS, SNDQUEUELOWAT <
 * SND_QUEUELEN, WND <= 0xFFFF << RCV_SCALE) hold for the values here. */
#define LWIP_DISABLE_TCP_SANITY_CHECKS  1
#define TCP_SNDQUEUELOWAT               (TCP_SND_QUEUELEN / 2)
#define TCP_OVERSIZE                    TCP_MSS
#define TCP_QUEUE_OOSEQ                 1
#define TCP_OOSEQ_MAX_BYTES             (2 * 1024 * 1024)
#define TCP_OOSEQ_MAX_PBUFS             2048
#define LWIP_TCP_SACK_OUT               1
#define LWIP_TCP_MAX_SACK_NUM           4
#define LWIP_TCP_TIMESTAMPS             1
/* SOF_REUSEADDR works only with SO_REUSE: the gateway binds a listener to a
 * destination address:port that its accepted flows to that destination
 * already use (without it, a second connection to one host:port failed). */
#define SO_REUSE                        1
#define TCP_LISTEN_BACKLOG              1 /* half-open connections per listener; beyond it SYN cookies (src/syncookie.c) */
#define TCP_DEFAULT_LISTEN_BACKLOG      255
#define LWIP_TCP_KEEPALIVE              1
#define TCP_MAXRTX                      12
#define TCP_SYNMAXRTX                   6
#define LWIP_TCP_PCB_NUM_EXT_ARGS       0
#define LWIP_ALTCP                      0
#define TCP_TTL                         64
#define LWIP_TCP_RTO_TIME               1000
/* TIME_WAIT lasts 2 x MSL: 60 s as on Linux (lwIP's default is 120 s), and
 * ephemeral ports span 32768-65535 (lwIP's default is 49152-65535), so one
 * stack can open ~550 short connections a second indefinitely rather than
 * running out of ports after 16,384. */
#define TCP_MSL                         30000UL
#define TCP_LOCAL_PORT_RANGE_START      0x8000
#define TCP_LOCAL_PORT_RANGE_END        0xffff
#define TCP_ENSURE_LOCAL_PORT_RANGE(port) ((u16_t)(((port) & (u16_t)~TCP_LOCAL_PORT_RANGE_START) + TCP_LOCAL_PORT_RANGE_START))

/* ---- DNS ---- */
#define LWIP_DNS                        1
#define DNS_MAX_SERVERS                 4
#define DNS_TABLE_SIZE                  32
#define DNS_MAX_NAME_LENGTH             256
#define DNS_MAX_REQUESTS                32
/* Random query IDs, a random source port per request (DNS_MAX_SOURCE_PORTS
 * defaults to DNS_MAX_REQUESTS), one query per name outstanding: RFC 5452
 * against off-path cache poisoning. lwIP's default, stated because it
 * matters; the randomness is LWIP_RAND (arch/cc.h). */
#define LWIP_DNS_SECURE                 (LWIP_DNS_SECURE_RAND_XID | LWIP_DNS_SECURE_NO_MULTIPLE_OUTSTANDING | LWIP_DNS_SECURE_RAND_SRC_PORT)
#define LWIP_DNS_SUPPORT_MDNS_QUERIES   0
#define DNS_LOCAL_HOSTLIST              0

/* ---- checksums: generated and checked in software; per-netif switchable ---- */
#define CHECKSUM_GEN_IP                 1
#define CHECKSUM_GEN_UDP                1
#define CHECKSUM_GEN_TCP                1
#define CHECKSUM_GEN_ICMP               1
#define CHECKSUM_GEN_ICMP6              1
#define CHECKSUM_CHECK_IP               1
#define CHECKSUM_CHECK_UDP              1
#define CHECKSUM_CHECK_TCP              1
#define CHECKSUM_CHECK_ICMP             1
#define CHECKSUM_CHECK_ICMP6            1
#define LWIP_CHECKSUM_ON_COPY           1
/* Our own routines (src/checksum.c): wasm SIMD, and the copy tcp_write makes
 * fused with its checksum; lwIP's portable loop cost more than half of a
 * bulk stream's time at MTU 65520. */
unsigned short tt_chksum(const void *data, int len);
unsigned short tt_chksum_copy(void *dst, const void *src, unsigned short len);
#define LWIP_CHKSUM                     tt_chksum
#define LWIP_CHKSUM_COPY(dst, src, len) tt_chksum_copy(dst, src, len)

/* ---- statistics: per protocol (lwip_stats) and per interface (MIB-II) ---- */
#define LWIP_STATS                      1
#define LWIP_STATS_DISPLAY              0
/* 32-bit counters: lwIP's default u16 ones wrap after 65,535 (a flood's
 * drops in well under a second), and stats() would then report fewer. */
#define LWIP_STATS_LARGE                1
#define LINK_STATS                      1
#define ETHARP_STATS                    1
#define IP_STATS                        1
#define IPFRAG_STATS                    1
#define ICMP_STATS                      1
#define UDP_STATS                       1
#define TCP_STATS                       1
#define MEM_STATS                       0
#define MEMP_STATS                      0
#define SYS_STATS                       0
#define IP6_STATS                       1
#define ICMP6_STATS                     1
#define IP6_FRAG_STATS                  1
#define ND6_STATS                       1
#define MLD6_STATS                      1
#define IGMP_STATS                      1
#define MIB2_STATS                      1

/* ---- hooks: routing by longest prefix, forwarding switch (hooks.c) ---- */
#define LWIP_HOOK_IP4_ROUTE_SRC(src, dest)      tt_hook_ip4_route((src), (dest))
#define LWIP_HOOK_ETHARP_GET_GW(netif, dest)    tt_hook_ip4_gateway((netif), (dest))
#define LWIP_HOOK_IP4_CANFORWARD(p, dest)       tt_hook_ip4_canforward((p), (dest))
#define LWIP_HOOK_IP6_ROUTE(src, dest)          tt_hook_ip6_route((src), (dest))
#define LWIP_HOOK_ND6_GET_GW(netif, dest)       tt_hook_ip6_gateway((netif), (dest))
#define LWIP_HOOK_IP6_INPUT(p, inp)             tt_hook_ip6_input((p), (inp))
/* RFC 6528: a keyed hash of the 4-tuple plus a 4 us clock (glue_random.c);
 * lwIP's own ISN is a counter shared by every stack. */
#define LWIP_HOOK_TCP_ISN(local_ip, local_port, remote_ip, remote_port) \
  tt_hook_tcp_isn((local_ip), (local_port), (remote_ip), (remote_port))

#define LWIP_PROVIDE_ERRNO              0
#define LWIP_ERRNO_STDINCLUDE           0

#endif
