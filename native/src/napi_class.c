#include "napi_class.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

/* Per-environment state (one per main thread or worker). */
typedef struct nc_env {
  napi_ref sym[2]; /* NC_ON_FRAMES, NC_ON_ERROR */
} nc_env;

static void free_env(napi_env env, void *data, void *hint) {
  nc_env *e = data;
  for (int i = 0; i < 2; i++)
    if (e->sym[i]) napi_delete_reference(env, e->sym[i]);
  free(e);
}

static nc_env *get_env(napi_env env) {
  void *data = NULL;
  napi_get_instance_data(env, &data);
  return data;
}

static bool make_symbol(napi_env env, const char *description, napi_ref *out) {
  napi_value desc, sym;
  return napi_create_string_utf8(env, description, NAPI_AUTO_LENGTH, &desc) == napi_ok &&
         napi_create_symbol(env, desc, &sym) == napi_ok && napi_create_reference(env, sym, 1, out) == napi_ok;
}

bool nc_env_init(napi_env env) {
  nc_env *e = calloc(1, sizeof *e);
  if (!e) {
    napi_throw_error(env, "ENOMEM", "tcpip_native: out of memory");
    return false;
  }
  if (!make_symbol(env, "tcpip.onFrames", &e->sym[NC_ON_FRAMES]) ||
      !make_symbol(env, "tcpip.onError", &e->sym[NC_ON_ERROR]) ||
      napi_set_instance_data(env, e, free_env, NULL) != napi_ok) {
    free_env(env, e, NULL);
    throw_napi_failure(env, "setting up the addon");
    return false;
  }
  return true;
}

napi_value nc_undefined(napi_env env) {
  napi_value u = NULL;
  napi_get_undefined(env, &u);
  return u;
}

/* ---- this ---------------------------------------------------------------- */

static void *unwrap(napi_env env, napi_callback_info info, const nc_class *cls, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL, *obj = NULL;
  bool ok = false;
  if (napi_get_cb_info(env, info, argc, argv, &self, &data) != napi_ok) {
    throw_napi_failure(env, "napi_get_cb_info");
    return NULL;
  }
  if (!cls) cls = data; /* the shared methods carry their class */
  if (napi_check_object_type_tag(env, self, &cls->tag, &ok) != napi_ok || !ok ||
      napi_unwrap(env, self, &obj) != napi_ok || !obj) {
    char msg[96];
    snprintf(msg, sizeof msg, "Value of \"this\" must be a %s", cls->name);
    napi_throw_type_error(env, "ERR_INVALID_THIS", msg);
    return NULL;
  }
  return obj;
}

void *nc_this(napi_env env, napi_callback_info info, const nc_class *cls, size_t *argc, napi_value *argv) {
  return unwrap(env, info, cls, argc, argv);
}

bool nc_construct_info(napi_env env, napi_callback_info info, const nc_class *cls, size_t *argc, napi_value *argv,
                       napi_value *self) {
  napi_value new_target = NULL;
  if (napi_get_cb_info(env, info, argc, argv, self, NULL) != napi_ok ||
      napi_get_new_target(env, info, &new_target) != napi_ok) {
    throw_napi_failure(env, "napi_get_cb_info");
    return false;
  }
  if (!new_target) {
    char msg[96];
    snprintf(msg, sizeof msg, "Class constructor %s cannot be invoked without 'new'", cls->name);
    napi_throw_type_error(env, "ERR_CONSTRUCT_CALL_REQUIRED", msg);
    return false;
  }
  return true;
}

/* ---- lifetime ------------------------------------------------------------ */

void nc_hold(nc_object *o, bool strong) {
  if (o->teardown || o->finalized || strong == o->held) return;
  uint32_t n;
  if (strong) napi_reference_ref(o->env, o->self, &n);
  else napi_reference_unref(o->env, o->self, &n);
  o->held = strong;
}

void nc_teardown_done(nc_object *o) {
  if (!o->cleanup) return;
  napi_remove_async_cleanup_hook(o->cleanup);
  o->cleanup = NULL;
}

/* The environment ends with the object still open. Node waits until the
 * class calls nc_teardown_done (its handles have closed). */
static void on_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  nc_object *o = arg;
  o->teardown = true;
  o->cls->shut(o);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  nc_object *o = data;
  o->finalized = true;
  o->cls->shut(o);
  napi_delete_reference(env, o->self);
  o->self = NULL; /* messages still queued for it check this */
  napi_async_destroy(env, o->async);
  o->async = NULL;
  o->cls->release(env, o);
}

bool nc_wrap(napi_env env, napi_value self, nc_object *o, const nc_class *cls) {
  char name[64];
  napi_value resource, resource_name;
  o->cls = cls;
  o->env = env;
  snprintf(name, sizeof name, "tcpip.%s", cls->name);
  if (napi_create_reference(env, self, 0, &o->self) != napi_ok) goto failed;
  /* A separate resource object: async contexts hold theirs strongly. */
  if (napi_type_tag_object(env, self, &cls->tag) != napi_ok || napi_create_object(env, &resource) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, resource, resource_name, &o->async) != napi_ok)
    goto failed;
  if (napi_add_async_cleanup_hook(env, on_teardown, o, &o->cleanup) != napi_ok) goto failed;
  /* Last, because it hands o over. */
  if (napi_wrap(env, self, o, on_finalize, NULL, NULL) != napi_ok) goto failed;
  return true;
failed:
  throw_napi_failure(env, "wrapping a native object");
  nc_teardown_done(o);
  if (o->async) napi_async_destroy(env, o->async);
  if (o->self) napi_delete_reference(env, o->self);
  o->async = NULL;
  o->self = NULL;
  return false;
}

/* ---- callbacks ----------------------------------------------------------- */

bool nc_set_callbacks(napi_env env, napi_value self, napi_value on_frames, napi_value on_error) {
  nc_env *e = get_env(env);
  return e && set_hidden(env, self, e->sym[NC_ON_FRAMES], on_frames) && set_hidden(env, self, e->sym[NC_ON_ERROR], on_error);
}

bool nc_emit(nc_object *o, nc_event which, size_t argc, napi_value *argv, bool in_scope) {
  napi_value self, fn;
  nc_env *e = get_env(o->env);
  if (o->finalized || o->teardown || !o->self || !e) return false;
  if (napi_get_reference_value(o->env, o->self, &self) != napi_ok || !self || !get_hidden(o->env, self, e->sym[which], &fn))
    return false;
  return in_scope ? call_js_in_scope(o->env, self, fn, argc, argv) : call_js(o->env, o->async, self, fn, argc, argv);
}

/* ---- the shared methods -------------------------------------------------- */

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nc_object *o = unwrap(env, info, NULL, &argc, NULL);
  if (!o) return NULL;
  o->cls->shut(o);
  return nc_undefined(env);
}

static napi_value set_ref(napi_env env, napi_callback_info info, bool ref) {
  size_t argc = 0;
  nc_object *o = unwrap(env, info, NULL, &argc, NULL);
  if (!o) return NULL;
  o->unreffed = !ref;
  o->cls->apply_ref(o);
  return nc_undefined(env);
}

static napi_value js_ref(napi_env env, napi_callback_info info) {
  return set_ref(env, info, true);
}

static napi_value js_unref(napi_env env, napi_callback_info info) {
  return set_ref(env, info, false);
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nc_object *o = unwrap(env, info, NULL, &argc, NULL);
  if (!o) return NULL;
  nc_stat stats[NC_MAX_STATS];
  size_t n = o->cls->stats(o, stats);
  napi_value result;
  NAPI_CALL(env, napi_create_object(env, &result));
  for (size_t i = 0; i < n && i < NC_MAX_STATS; i++)
    if (!set_double(env, result, stats[i].name, stats[i].value)) {
      throw_napi_failure(env, "stats()");
      return NULL;
    }
  return result;
}

#define NC_SHARED_METHODS 4
#define NC_MAX_METHODS 16

napi_value nc_define(napi_env env, napi_value exports, const nc_class *cls) {
  napi_property_descriptor methods[NC_MAX_METHODS + NC_SHARED_METHODS];
  size_t n = 0;
  if (cls->n_methods > NC_MAX_METHODS) {
    napi_throw_error(env, "ERR_NAPI", "tcpip_native: too many methods for nc_define");
    return NULL;
  }
  for (size_t i = 0; i < cls->n_methods; i++) methods[n++] = cls->methods[i];
  napi_property_descriptor shared[NC_SHARED_METHODS] = {
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default_method, (void *)cls},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default_method, (void *)cls},
      {"ref", NULL, js_ref, NULL, NULL, NULL, napi_default_method, (void *)cls},
      {"unref", NULL, js_unref, NULL, NULL, NULL, napi_default_method, (void *)cls},
  };
  for (size_t i = 0; i < NC_SHARED_METHODS; i++) methods[n++] = shared[i];
  napi_value ctor;
  NAPI_CALL(env, napi_define_class(env, cls->name, NAPI_AUTO_LENGTH, cls->construct, (void *)cls, n, methods, &ctor));
  NAPI_CALL(env, napi_set_named_property(env, exports, cls->name, ctor));
  return exports;
}
