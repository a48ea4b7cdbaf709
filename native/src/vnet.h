/* The virtio-net header that a TAP/TUN opened with offloads (openTap's
 * `offload`) puts before every frame, both ways. */
#ifndef TCPIP_NATIVE_VNET_H
#define TCPIP_NATIVE_VNET_H

#include <stdbool.h>
#include <stdint.h>

/* struct virtio_net_hdr (virtio spec 5.1.6), in the host's byte order: a TAP
 * uses native order unless TUNSETVNETLE/BE says otherwise. */
typedef struct vnet_hdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
} vnet_hdr;

#define VNET_HDR_LEN 10

/* Whether a received header describes something we negotiated and can pass
 * on as one frame of len bytes. */
bool vnet_rx_ok(const vnet_hdr *h, uint32_t len);

/* Fills h for one frame to send on a link of the given MTU (l2 is 14 for
 * Ethernet, 0 for IP). TCP frames get the checksum left to the kernel (the
 * pseudo-header sum is written into the frame) and, when longer than one
 * MTU, GSO with the MSS that fits it. Returns false for a frame longer than
 * the MTU that cannot be segmented that way (to be dropped). */
bool vnet_tx_header(vnet_hdr *h, uint8_t *frame, uint32_t len, uint32_t mtu, uint32_t l2);

#endif
