#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

void throw_napi_failure(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "tcpip_native: %s failed: %s", what,
           info && info->error_message ? info->error_message : "unknown N-API error");
  napi_throw_error(env, "ERR_NAPI", msg);
}

const char *errno_name(int err, char *buf, size_t len) {
#ifdef EBADFD
  /* libuv has no name for it; a TAP whose device was deleted returns it. */
  if (err == EBADFD) return "EBADFD";
#endif
  /* libuv's codes are negated errnos on every Unix. */
  uv_err_name_r(-err, buf, len);
  if (strncmp(buf, "Unknown", 7) == 0) snprintf(buf, len, "E%d", err);
  return buf;
}

napi_value make_sys_error(napi_env env, int err, const char *syscall, const char *what) {
  char buf[48];
  char msg[1024];
  const char *name = errno_name(err, buf, sizeof buf);
  snprintf(msg, sizeof msg, "%s: %s (%s)", what, strerror(err), name);
  napi_value code = NULL, text = NULL, error = NULL, v = NULL;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text) != napi_ok) return NULL;
  if (napi_create_error(env, code, text, &error) != napi_ok) return NULL;
  if (napi_create_int32(env, -err, &v) == napi_ok) napi_set_named_property(env, error, "errno", v);
  if (syscall && napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, error, "syscall", v);
  return error;
}

void throw_sys_error(napi_env env, int err, const char *syscall, const char *what) {
  napi_value error = make_sys_error(env, err, syscall, what);
  if (error) napi_throw(env, error);
  else throw_napi_failure(env, "creating an error");
}

napi_value make_coded_error(napi_env env, const char *code, const char *message) {
  napi_value c = NULL, m = NULL, error = NULL;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &m) != napi_ok) return NULL;
  if (napi_create_error(env, c, m, &error) != napi_ok) return NULL;
  return error;
}

void throw_coded_error(napi_env env, const char *code, const char *message) {
  napi_throw_error(env, code, message);
}

static void throw_type(napi_env env, const char *name, const char *expected) {
  char msg[256];
  snprintf(msg, sizeof msg, "The \"%s\" argument must be %s", name, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

bool get_object_arg(napi_env env, napi_value v, const char *name) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_object) {
    throw_type(env, name, "an object");
    return false;
  }
  return true;
}

bool get_prop(napi_env env, napi_value obj, const char *key, napi_value *out, bool *present) {
  napi_valuetype t;
  if (napi_get_named_property(env, obj, key, out) != napi_ok) return false;
  if (napi_typeof(env, *out, &t) != napi_ok) return false;
  *present = t != napi_undefined;
  return true;
}

bool get_string(napi_env env, napi_value v, const char *name, char *buf, size_t size) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    throw_type(env, name, "a string");
    return false;
  }
  if (len >= size) {
    char msg[160];
    snprintf(msg, sizeof msg, "The \"%s\" argument is too long (%zu bytes, at most %zu)", name, len, size - 1);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) return false;
  if (strlen(buf) != len) { /* an embedded NUL would silently shorten a path */
    throw_type(env, name, "a string without NUL characters");
    return false;
  }
  return true;
}

bool get_bool(napi_env env, napi_value v, const char *name, bool *out) {
  if (napi_get_value_bool(env, v, out) != napi_ok) {
    throw_type(env, name, "a boolean");
    return false;
  }
  return true;
}

bool get_uint32(napi_env env, napi_value v, const char *name, uint32_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0 && d <= 4294967295.0) || d != (double)(uint32_t)d) {
    throw_type(env, name, "an integer from 0 to 4294967295");
    return false;
  }
  *out = (uint32_t)d;
  return true;
}

bool get_function(napi_env env, napi_value v, const char *name) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_function) {
    throw_type(env, name, "a function");
    return false;
  }
  return true;
}

static bool get_typed(napi_env env, napi_value v, const char *name, napi_typedarray_type want,
                      const char *expected, void **data, size_t *len) {
  bool is = false;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, len, data, &ab, &offset) != napi_ok || type != want) {
    throw_type(env, name, expected);
    return false;
  }
  if (*len > 0 && *data == NULL) { /* detached */
    throw_type(env, name, "an attached typed array");
    return false;
  }
  return true;
}

bool get_u8_array(napi_env env, napi_value v, const char *name, uint8_t **data, size_t *len) {
  return get_typed(env, v, name, napi_uint8_array, "a Uint8Array", (void **)data, len);
}

bool get_u32_array(napi_env env, napi_value v, const char *name, uint32_t **data, size_t *len) {
  return get_typed(env, v, name, napi_uint32_array, "a Uint32Array", (void **)data, len);
}

bool set_named(napi_env env, napi_value obj, const char *key, napi_value value) {
  return napi_set_named_property(env, obj, key, value) == napi_ok;
}

bool set_double(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  return napi_create_double(env, value, &v) == napi_ok && set_named(env, obj, key, v);
}

static bool rethrow_uncaught(napi_env env) {
  napi_value exc;
  if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
  return false;
}

bool call_js(napi_env env, napi_async_context ctx, napi_value recv, napi_value fn, size_t argc, napi_value *argv) {
  napi_status st = napi_make_callback(env, ctx, recv, fn, argc, argv, NULL);
  if (st == napi_ok) return true;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  return pending ? rethrow_uncaught(env) : false;
}

bool call_js_in_scope(napi_env env, napi_value recv, napi_value fn, size_t argc, napi_value *argv) {
  napi_status st = napi_call_function(env, recv, fn, argc, argv, NULL);
  if (st == napi_ok) return true;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  return pending ? rethrow_uncaught(env) : false;
}

bool set_hidden(napi_env env, napi_value obj, napi_ref sym, napi_value value) {
  napi_value key;
  if (napi_get_reference_value(env, sym, &key) != napi_ok) return false;
  napi_property_descriptor d = {NULL, key, NULL, NULL, NULL, value, napi_default, NULL};
  return napi_define_properties(env, obj, 1, &d) == napi_ok;
}

bool get_hidden(napi_env env, napi_value obj, napi_ref sym, napi_value *out) {
  napi_value key;
  if (napi_get_reference_value(env, sym, &key) != napi_ok) return false;
  return napi_get_property(env, obj, key, out) == napi_ok;
}
