/* A SYN flooder for test/synflood.test.ts and bench/scenarios/flood.js:
 * sends TCP SYNs as fast as one AF_PACKET socket can, from a spoofed source
 * address and ever-changing source ports and sequence numbers, with the
 * options Linux puts in its SYNs (MSS, SACK permitted, timestamps, window
 * scale), for a bounded time and count. Run inside a namespace the test
 * created, on the kernel side of the stack's TAP.
 *
 *   synflood IFNAME DST_MAC SRC_IP DST_IP DST_PORT SECONDS MAX_COUNT
 *
 * Prints {"sent":N,"failed":M,"seconds":S} on stdout when done. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint16_t checksum(const uint8_t *p, size_t n, uint32_t sum) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += (uint32_t)(p[n - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int parse_mac(const char *s, uint8_t *mac) {
  return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) == 6;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: synflood IFNAME DST_MAC SRC_IP DST_IP DST_PORT SECONDS MAX_COUNT\n");
    return 2;
  }
  uint8_t dst_mac[6];
  struct in_addr src, dst;
  if (!parse_mac(argv[2], dst_mac) || !inet_aton(argv[3], &src) || !inet_aton(argv[4], &dst)) {
    fprintf(stderr, "synflood: bad MAC or address\n");
    return 2;
  }
  int dport = atoi(argv[5]);
  double seconds = atof(argv[6]);
  long long max = atoll(argv[7]);

  int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
  if (fd < 0) {
    perror("synflood: socket");
    return 1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", argv[1]);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) {
    perror("synflood: SIOCGIFINDEX");
    return 1;
  }
  int ifindex = ifr.ifr_ifindex;
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
    perror("synflood: SIOCGIFHWADDR");
    return 1;
  }
  struct sockaddr_ll to = {0};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  memcpy(to.sll_addr, dst_mac, 6);

  /* Ethernet (14) + IPv4 (20) + TCP (20 + 20 of options) */
  uint8_t f[74];
  memset(f, 0, sizeof(f));
  memcpy(f, dst_mac, 6);
  memcpy(f + 6, ifr.ifr_hwaddr.sa_data, 6);
  f[12] = 0x08;
  uint8_t *ip = f + 14, *tcp = f + 34;
  ip[0] = 0x45;
  ip[3] = 60; /* total length */
  ip[6] = 0x40; /* DF */
  ip[8] = 64;
  ip[9] = 6;
  memcpy(ip + 12, &src, 4);
  memcpy(ip + 16, &dst, 4);
  tcp[2] = (uint8_t)(dport >> 8);
  tcp[3] = (uint8_t)dport;
  tcp[12] = 10 << 4; /* 40-byte header */
  tcp[13] = 0x02;   /* SYN */
  tcp[14] = 0xfa;   /* window 64240, as Linux */
  tcp[15] = 0xf0;
  static const uint8_t opts[20] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7};
  memcpy(tcp + 20, opts, sizeof(opts));
  uint32_t pseudo = 0;
  for (int i = 0; i < 8; i += 2) pseudo += (uint32_t)(ip[12 + i] << 8 | ip[13 + i]);
  pseudo += 6 + 40;

  uint32_t x = (uint32_t)getpid() * 2654435761u ^ (uint32_t)time(NULL);
  long long sent = 0, failed = 0;
  double start = now(), end = start + seconds;
  uint16_t id = 0, sport = 1024;
  for (;;) {
    if ((sent + failed) % 256 == 0 && (now() >= end || sent + failed >= max)) break;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    id++;
    sport = sport == 65535 ? 1024 : sport + 1;
    ip[4] = (uint8_t)(id >> 8);
    ip[5] = (uint8_t)id;
    ip[10] = ip[11] = 0;
    uint16_t c = checksum(ip, 20, 0);
    ip[10] = (uint8_t)(c >> 8);
    ip[11] = (uint8_t)c;
    tcp[0] = (uint8_t)(sport >> 8);
    tcp[1] = (uint8_t)sport;
    memcpy(tcp + 4, &x, 4);
    uint32_t ts = (uint32_t)sent;
    memcpy(tcp + 28, &ts, 4);
    tcp[16] = tcp[17] = 0;
    c = checksum(tcp, 40, pseudo);
    tcp[16] = (uint8_t)(c >> 8);
    tcp[17] = (uint8_t)c;
    if (sendto(fd, f, sizeof(f), 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)sizeof(f)) {
      sent++;
    } else {
      failed++;
      if (errno != ENOBUFS && errno != EAGAIN) {
        perror("synflood: sendto");
        return 1;
      }
    }
  }
  printf("{\"sent\":%lld,\"failed\":%lld,\"seconds\":%.3f}\n", sent, failed, now() - start);
  return 0;
}
