/* tcpip_native: device access for tcpip-ts. Opens devices, then moves frames
 * between a file descriptor (or vmnet) and slots shared with JavaScript.
 * Policy (option checks, defaults, link behaviour) lives in TypeScript. */
#include "addon.h"

NAPI_MODULE_INIT() {
  if (!nc_env_init(env) || !nc_define(env, exports, &frame_device_class) || !unix_dgram_init(env, exports)) return NULL;
#ifdef __linux__
  if (!tap_init(env, exports) || !nc_define(env, exports, &ping_socket_class) || !confine_init(env, exports) ||
      !udp_gso_init(env, exports)) return NULL;
#endif
#ifdef __APPLE__
  if (!nc_define(env, exports, &vmnet_class)) return NULL;
#endif
  return exports;
}
