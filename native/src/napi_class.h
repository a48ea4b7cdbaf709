/* napi_class: the one way the addon defines a JavaScript class around a C
 * object (FrameDevice, PingSocket, VmnetInterface). It holds what every such
 * class needs and none of what a class does:
 * - the class from a method table, with close(), ref(), unref() and stats()
 *   added from the class's hooks;
 * - wrap, and unwrap with a type-tag check, so a wrong `this` is a TypeError;
 * - a weak reference to the wrapper, made strong while the object has work
 *   in flight (nc_hold), so an idle object can be collected and a busy one
 *   cannot;
 * - the two callbacks (onFrames, onError) as symbol-keyed properties of the
 *   wrapper, so a callback that closes over the object never roots it;
 * - an async context for those calls;
 * - an environment cleanup hook that shuts the object when its environment
 *   (the main thread or a worker) ends while it is still open.
 *
 * A class's struct starts with an nc_object. Its own code decides when
 * handles close and when the memory goes (cls->release), because that
 * differs: libuv handles on one thread, vmnet blocks on another. */
#ifndef TCPIP_NATIVE_NAPI_CLASS_H
#define TCPIP_NATIVE_NAPI_CLASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

typedef struct nc_object nc_object;

/* One counter of stats(). */
typedef struct nc_stat {
  const char *name;
  double value;
} nc_stat;

#define NC_MAX_STATS 24

typedef struct nc_class {
  const char *name;     /* the JS name, also in errors */
  napi_type_tag tag;    /* unique per class */
  napi_callback construct;
  const napi_property_descriptor *methods; /* the class's own; close/ref/unref/stats are added */
  size_t n_methods;
  /* Stops everything without calling JS; idempotent. close(), environment
   * teardown (o->teardown set) and the finalizer (o->finalized set) call it. */
  void (*shut)(nc_object *o);
  /* Applies o->unreffed to the object's handles (ref()/unref()). */
  void (*apply_ref)(nc_object *o);
  /* Fills at most NC_MAX_STATS counters; returns how many. */
  size_t (*stats)(nc_object *o, nc_stat *out);
  /* After finalization and shut(): drop the class's own references; free
   * the object now or when its last handle has closed. */
  void (*release)(napi_env env, nc_object *o);
} nc_class;

struct nc_object {
  const nc_class *cls;
  napi_env env;
  napi_ref self; /* weak unless held; NULL once finalized */
  bool held;
  napi_async_context async; /* NULL once finalized */
  napi_async_cleanup_hook_handle cleanup;
  bool unreffed;  /* unref() was called: do not keep the event loop alive */
  bool teardown;  /* the environment is going: no more N-API calls */
  bool finalized; /* the wrapper is gone: no more JS calls */
};

/* Per-environment state; addon.c calls it once per environment before
 * defining anything. */
bool nc_env_init(napi_env env);

/* Defines cls and sets it on exports under its name. */
napi_value nc_define(napi_env env, napi_value exports, const nc_class *cls);

/* For a constructor: the arguments and `this`; throws a TypeError (and
 * returns false) when called without `new`. */
bool nc_construct_info(napi_env env, napi_callback_info info, const nc_class *cls, size_t *argc, napi_value *argv,
                       napi_value *self);

/* Stores the two callbacks on the wrapper (hidden, symbol-keyed). */
bool nc_set_callbacks(napi_env env, napi_value self, napi_value on_frames, napi_value on_error);

/* Ties o to the wrapper `self`: weak reference, type tag, async context,
 * cleanup hook, then napi_wrap. On true the wrapper owns o (its finalizer
 * calls cls->shut then cls->release). On false an exception is pending,
 * nothing of o is registered, and o is still the caller's to free. */
bool nc_wrap(napi_env env, napi_value self, nc_object *o, const nc_class *cls);

/* For a method: the C object behind `this`, or NULL with a TypeError
 * (ERR_INVALID_THIS) thrown when `this` is not a cls. */
void *nc_this(napi_env env, napi_callback_info info, const nc_class *cls, size_t *argc, napi_value *argv);

/* Makes the wrapper's reference strong (the object has work in flight and
 * must outlive its last JS reference) or weak again. No-op at teardown or
 * after finalization. */
void nc_hold(nc_object *o, bool strong);

/* The class calls this when its last handle has closed: the environment no
 * longer needs to wait for it. */
void nc_teardown_done(nc_object *o);

typedef enum { NC_ON_FRAMES, NC_ON_ERROR } nc_event;

/* Calls the wrapper's onFrames or onError with argv. From a libuv callback
 * (in_scope false) it runs as an event of o's async context; from a
 * threadsafe function's call_js (in_scope true) directly. A JS exception
 * becomes an uncaught exception. Caller holds a handle scope. Returns false
 * when nothing was called or it threw. */
bool nc_emit(nc_object *o, nc_event which, size_t argc, napi_value *argv, bool in_scope);

napi_value nc_undefined(napi_env env);

#endif
