/* Helpers shared by the addon's C files: errors, argument access, calls into JS. */
#ifndef TCPIP_NATIVE_UTIL_H
#define TCPIP_NATIVE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

/* Bail out of a napi_callback on a failed napi call. An exception may already
 * be pending (napi's own); if not, throw one naming the call. */
#define NAPI_CALL(env, call)                       \
  do {                                             \
    if ((call) != napi_ok) {                       \
      throw_napi_failure((env), #call);            \
      return NULL;                                 \
    }                                              \
  } while (0)

void throw_napi_failure(napi_env env, const char *what);

/* errno's symbolic name ("ENOENT"); never NULL. */
const char *errno_name(int err, char *buf, size_t len);

/* An Error shaped like Node's system errors: message
 * "<what>: <strerror> (<CODE>)", with code, errno (negative, as Node's) and
 * syscall. */
napi_value make_sys_error(napi_env env, int err, const char *syscall, const char *what);
void throw_sys_error(napi_env env, int err, const char *syscall, const char *what);

/* An Error with a code but no errno (vmnet statuses, invalid state). */
napi_value make_coded_error(napi_env env, const char *code, const char *message);
void throw_coded_error(napi_env env, const char *code, const char *message);

/* Typed argument access. These back up the TypeScript checks: they only keep
 * bad values from reaching system calls and throw a TypeError if they do. */
bool get_object_arg(napi_env env, napi_value v, const char *name);
bool get_prop(napi_env env, napi_value obj, const char *key, napi_value *out, bool *present);
bool get_string(napi_env env, napi_value v, const char *name, char *buf, size_t size);
bool get_bool(napi_env env, napi_value v, const char *name, bool *out);
bool get_uint32(napi_env env, napi_value v, const char *name, uint32_t *out);
bool get_function(napi_env env, napi_value v, const char *name);

/* Typed arrays: pointer, element count and backing ArrayBuffer. */
bool get_u8_array(napi_env env, napi_value v, const char *name, uint8_t **data, size_t *len);
bool get_u32_array(napi_env env, napi_value v, const char *name, uint32_t **data, size_t *len);

/* Sets a property, ignoring failure only where the caller has nothing better to do. */
bool set_named(napi_env env, napi_value obj, const char *key, napi_value value);
bool set_double(napi_env env, napi_value obj, const char *key, double value);

/* Invokes fn(argv) as an event of async context `ctx` on `recv` from a libuv
 * callback. A JS exception becomes an uncaught exception, as Node's own handles
 * do. Returns false if one was thrown. Caller holds a handle scope. */
bool call_js(napi_env env, napi_async_context ctx, napi_value recv, napi_value fn, size_t argc, napi_value *argv);

/* Same, for code already inside a callback scope (threadsafe-function call_js). */
bool call_js_in_scope(napi_env env, napi_value recv, napi_value fn, size_t argc, napi_value *argv);

/* Symbol-keyed hidden properties. */
bool set_hidden(napi_env env, napi_value obj, napi_ref sym, napi_value value);
bool get_hidden(napi_env env, napi_value obj, napi_ref sym, napi_value *out);

#endif
