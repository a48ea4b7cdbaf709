/* tcpip_native: device access for tcpip-ts. Opens devices, then moves frames
 * between a file descriptor (or vmnet) and slots shared with JavaScript.
 * Policy (option checks, defaults, link behaviour) lives in TypeScript. */
#include <stdlib.h>

#include "util.h"

static void free_state(napi_env env, void *data, void *hint) {
  addon_state *s = data;
  napi_delete_reference(env, s->sym_on_frames);
  napi_delete_reference(env, s->sym_on_error);
  free(s);
}

addon_state *addon_get_state(napi_env env) {
  void *data = NULL;
  napi_get_instance_data(env, &data);
  return data;
}

static napi_value make_symbol(napi_env env, const char *description, napi_ref *out) {
  napi_value desc, sym;
  NAPI_CALL(env, napi_create_string_utf8(env, description, NAPI_AUTO_LENGTH, &desc));
  NAPI_CALL(env, napi_create_symbol(env, desc, &sym));
  NAPI_CALL(env, napi_create_reference(env, sym, 1, out));
  return sym;
}

NAPI_MODULE_INIT() {
  addon_state *s = calloc(1, sizeof *s);
  if (!s) {
    napi_throw_error(env, "ENOMEM", "tcpip_native: out of memory");
    return NULL;
  }
  if (!make_symbol(env, "tcpip.onFrames", &s->sym_on_frames) ||
      !make_symbol(env, "tcpip.onError", &s->sym_on_error) ||
      napi_set_instance_data(env, s, free_state, NULL) != napi_ok) {
    free(s);
    return NULL;
  }
  if (!frame_device_init(env, exports) || !unix_dgram_init(env, exports)) return NULL;
#ifdef __linux__
  if (!tap_init(env, exports) || !ping_socket_init(env, exports)) return NULL;
#endif
#ifdef __APPLE__
  if (!vmnet_init(env, exports)) return NULL;
#endif
  return exports;
}
