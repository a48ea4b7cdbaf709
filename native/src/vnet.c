/* virtio-net headers for TAP/TUN offloads. The rules the kernel applies to
 * the headers we write are virtio_net_hdr_to_skb()'s (include/linux/
 * virtio_net.h); the ones it writes come from virtio_net_hdr_from_skb(). */
#include "vnet.h"

#include <string.h>

enum {
  F_NEEDS_CSUM = 1, /* the checksum at csum_start + csum_offset is still to be completed */
  F_DATA_VALID = 2, /* the kernel checked the checksums */
  GSO_NONE = 0,
  GSO_TCPV4 = 1,
  GSO_TCPV6 = 4,
  GSO_ECN = 0x80,
};

bool vnet_rx_ok(const vnet_hdr *h, uint32_t len) {
  if (h->flags & ~(F_NEEDS_CSUM | F_DATA_VALID)) return false;
  if ((h->flags & F_NEEDS_CSUM) && (uint32_t)h->csum_start + h->csum_offset + 2 > len) return false;
  switch (h->gso_type & ~GSO_ECN) {
  case GSO_NONE:
    return true;
  case GSO_TCPV4:
  case GSO_TCPV6:
    /* A TCP superframe: one segment's headers, then up to 64 KiB of payload
     * that lwIP takes as one segment (it accepts segments beyond its MTU).
     * Its checksum is always partial; the stack does not check it. */
    return h->gso_size != 0 && (h->flags & F_NEEDS_CSUM);
  default:
    return false; /* UDP/UFO/USO: never negotiated */
  }
}

static uint16_t be16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t sum_words(const uint8_t *p, uint32_t n, uint32_t sum) {
  for (uint32_t i = 0; i < n; i += 2) sum += be16(p + i);
  return sum;
}

bool vnet_tx_header(vnet_hdr *h, uint8_t *frame, uint32_t len, uint32_t mtu, uint32_t l2) {
  memset(h, 0, sizeof *h);
  bool oversize = len > l2 + mtu;
  /* Only TCP is offloaded; everything else already carries its checksums
   * (the stack keeps generating them) and goes with flags 0. */
  uint32_t l3 = l2, l4, l4_len, sum;
  bool v6;
  if (len < l2 + 20) return !oversize;
  uint16_t type = l2 ? be16(frame + 12) : (uint16_t)(frame[0] >> 4 == 6 ? 0x86DD : 0x0800);
  if (type == 0x0800 && frame[l3] >> 4 == 4) {
    uint32_t ihl = (uint32_t)(frame[l3] & 15) * 4, total = be16(frame + l3 + 2);
    /* Not TCP, or a fragment (MF or an offset): not ours to segment. */
    if (frame[l3 + 9] != 6 || (be16(frame + l3 + 6) & 0x3FFF) || ihl < 20 || total < ihl || l3 + total > len) return !oversize;
    v6 = false;
    l4 = l3 + ihl;
    l4_len = total - ihl;
    sum = sum_words(frame + l3 + 12, 8, 6 + l4_len);
  } else if (type == 0x86DD && len >= l3 + 40 && frame[l3] >> 4 == 6) {
    /* TCP right after the fixed header: lwIP adds no extension headers to TCP. */
    l4_len = be16(frame + l3 + 4);
    if (frame[l3 + 6] != 6 || l3 + 40 + l4_len > len) return !oversize;
    v6 = true;
    l4 = l3 + 40;
    sum = sum_words(frame + l3 + 8, 32, 6 + l4_len);
  } else {
    return !oversize;
  }
  if (l4_len < 20) return !oversize;
  uint32_t th_len = (uint32_t)(frame[l4 + 12] >> 4) * 4;
  if (th_len < 20 || th_len > l4_len) return !oversize;

  /* The kernel completes the checksum from csum_start to the end, starting
   * from what the field holds: the pseudo-header sum over the whole segment's
   * length, folded and not complemented, as Linux's own TSO senders leave it
   * (its segmentation then adjusts it per segment). */
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  frame[l4 + 16] = (uint8_t)(sum >> 8);
  frame[l4 + 17] = (uint8_t)sum;
  h->flags = F_NEEDS_CSUM;
  h->csum_start = (uint16_t)l4;
  h->csum_offset = 16; /* offsetof(struct tcphdr, check): the only one accepted for TCP GSO */
  h->hdr_len = (uint16_t)(l4 + th_len);
  /* Each segment the kernel cuts repeats these headers, so the payload per
   * segment is what the MTU leaves after them. */
  uint32_t mss = mtu - (l4 - l3) - th_len;
  if (l4_len - th_len > mss) {
    h->gso_type = v6 ? GSO_TCPV6 : GSO_TCPV4;
    h->gso_size = (uint16_t)mss;
  }
  return true;
}
