/* vmnet.framework, as documented by Apple (developer.apple.com/documentation/vmnet).
 * Only what tcpip-ts calls. */
#ifndef TCPIP_DARWIN_VMNET_H
#define TCPIP_DARWIN_VMNET_H

#include <dispatch/dispatch.h>
#include <stdint.h>
#include <sys/uio.h>
#include <xpc/xpc.h>

typedef struct vmnet_interface *interface_ref;

typedef enum {
  VMNET_SUCCESS = 1000,
  VMNET_FAILURE = 1001,
  VMNET_MEM_FAILURE = 1002,
  VMNET_INVALID_ARGUMENT = 1003,
  VMNET_SETUP_INCOMPLETE = 1004,
  VMNET_INVALID_ACCESS = 1005,
  VMNET_PACKET_TOO_BIG = 1006,
  VMNET_BUFFER_EXHAUSTED = 1007,
  VMNET_TOO_MANY_PACKETS = 1008,
} vmnet_return_t;

typedef enum {
  VMNET_HOST_MODE = 1000,
  VMNET_SHARED_MODE = 1001,
  VMNET_BRIDGED_MODE = 1002,
} operating_modes_t;

typedef enum {
  VMNET_INTERFACE_PACKETS_AVAILABLE = 1 << 0,
} interface_event_t;

struct vmpktdesc {
  size_t vm_pkt_size;
  struct iovec *vm_pkt_iov;
  uint32_t vm_pkt_iovcnt;
  uint32_t vm_flags;
};

/* Keys of the interface description and of the parameters returned on start. */
extern const char *const vmnet_operation_mode_key;
extern const char *const vmnet_shared_interface_name_key;
extern const char *const vmnet_mac_address_key;
extern const char *const vmnet_mtu_key;
extern const char *const vmnet_max_packet_size_key;
extern const char *const vmnet_interface_id_key;

interface_ref vmnet_start_interface(xpc_object_t interface_desc, dispatch_queue_t queue,
                                    void (^handler)(vmnet_return_t status, xpc_object_t interface_param));
vmnet_return_t vmnet_stop_interface(interface_ref interface, dispatch_queue_t queue, void (^handler)(vmnet_return_t status));
vmnet_return_t vmnet_interface_set_event_callback(interface_ref interface, interface_event_t event_mask, dispatch_queue_t queue,
                                                  void (^callback)(interface_event_t event_mask, xpc_object_t event));
vmnet_return_t vmnet_read(interface_ref interface, struct vmpktdesc *packets, int *pktcnt);
vmnet_return_t vmnet_write(interface_ref interface, struct vmpktdesc *packets, int *pktcnt);

#endif
