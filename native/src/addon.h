/* What each file of the addon registers. addon.c calls these; each file
 * includes this only for its own declaration, so none calls another. */
#ifndef TCPIP_NATIVE_ADDON_H
#define TCPIP_NATIVE_ADDON_H

#include "napi_class.h"

extern const nc_class frame_device_class;
napi_value unix_dgram_init(napi_env env, napi_value exports);
#ifdef __linux__
napi_value tap_init(napi_env env, napi_value exports);
napi_value confine_init(napi_env env, napi_value exports);
napi_value udp_gso_init(napi_env env, napi_value exports);
extern const nc_class ping_socket_class;
#endif
#ifdef __APPLE__
extern const nc_class vmnet_class;
#endif

#endif
