/* VmnetInterface: a vmnet.framework interface (macOS 10.15+) with the same
 * receive-slot scheme as FrameDevice.
 *
 * vmnet reports events and completions as blocks on a serial dispatch queue;
 * they only post messages to the JS thread through a threadsafe function.
 * vmnet_read and vmnet_write are called on the JS thread (they do not block),
 * so the slots are only ever touched there.
 *
 * Lifetime: the C struct has several owners (the JS wrapper, the threadsafe
 * function, the re-read timer, each block vmnet may still run) and is freed
 * by the last, on whatever thread that is. A mutex guards posting against
 * the threadsafe function going away at environment teardown. */
#ifdef __APPLE__

#include <dispatch/dispatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <uv.h>
#include <vmnet/vmnet.h>
#include <xpc/xpc.h>

#include "addon.h"
#include "util.h"

/* Apple documents at most 200 packets and 256 KiB per vmnet_read/vmnet_write. */
#define VMNET_BATCH 200
#define VMNET_BATCH_BYTES ((size_t)256 << 10)

typedef enum { V_IDLE, V_STARTING, V_RUNNING, V_STOPPING, V_STOPPED } vstate;

typedef enum { MSG_STARTED, MSG_STOPPED, MSG_PACKETS } msg_kind;

typedef struct vmsg {
  msg_kind kind;
  vmnet_return_t status;
  char mac[32];
  uint64_t mtu, max_packet_size;
} vmsg;

/* "Packets available" carries nothing, so one static message serves all. */
static vmsg packets_msg = {MSG_PACKETS, VMNET_SUCCESS, "", 0, 0};

typedef struct vif {
  nc_object base; /* held while starting, running or stopping */
  napi_threadsafe_function tsfn;
  bool tsfn_released;
  pthread_mutex_t lock; /* guards tsfn_alive */
  bool tsfn_alive;
  atomic_int owners;
  atomic_bool notify_pending;
  dispatch_queue_t queue;
  uv_timer_t again; /* the next batch after a full one, on the next loop turn */
  bool again_open;

  interface_ref iface;
  vstate state;
  bool events_registered;
  bool closed, error_reported;
  napi_deferred start_deferred, stop_deferred;
  uint64_t mode;
  bool has_bridged;
  char bridged[64];

  uint32_t slots, slot_size;
  uint8_t *rx;
  uint32_t *rx_len;
  napi_ref rx_buffer_ab, rx_lengths_ab;
  struct vmpktdesc rx_pkts[VMNET_BATCH];
  struct iovec rx_iov[VMNET_BATCH];
  struct vmpktdesc tx_pkts[VMNET_BATCH];
  struct iovec tx_iov[VMNET_BATCH];

  uint64_t rx_frames, rx_bytes, rx_truncated, rx_errors;
  uint64_t tx_frames, tx_bytes, tx_dropped, tx_errors;
} vif;

/* ---- ownership and messages (any thread) -------------------------------- */

static void own(vif *v) {
  atomic_fetch_add(&v->owners, 1);
}

static void unown(vif *v) {
  if (atomic_fetch_sub(&v->owners, 1) != 1) return;
  if (v->queue) dispatch_release(v->queue);
  pthread_mutex_destroy(&v->lock);
  free(v);
}

static void post(vif *v, vmsg *m) {
  pthread_mutex_lock(&v->lock);
  bool sent = v->tsfn_alive && napi_call_threadsafe_function(v->tsfn, m, napi_tsfn_nonblocking) == napi_ok;
  pthread_mutex_unlock(&v->lock);
  if (!sent && m != &packets_msg) free(m);
}

/* At most one "packets available" in flight: a burst of events is one read. */
static void notify(vif *v) {
  bool expected = false;
  if (atomic_compare_exchange_strong(&v->notify_pending, &expected, true)) post(v, &packets_msg);
}

static const char *status_name(vmnet_return_t s) {
  switch ((int)s) {
  case VMNET_SUCCESS: return "VMNET_SUCCESS";
  case VMNET_FAILURE: return "VMNET_FAILURE";
  case VMNET_MEM_FAILURE: return "VMNET_MEM_FAILURE";
  case VMNET_INVALID_ARGUMENT: return "VMNET_INVALID_ARGUMENT";
  case VMNET_SETUP_INCOMPLETE: return "VMNET_SETUP_INCOMPLETE";
  case VMNET_INVALID_ACCESS: return "VMNET_INVALID_ACCESS";
  case VMNET_PACKET_TOO_BIG: return "VMNET_PACKET_TOO_BIG";
  case VMNET_BUFFER_EXHAUSTED: return "VMNET_BUFFER_EXHAUSTED";
  case VMNET_TOO_MANY_PACKETS: return "VMNET_TOO_MANY_PACKETS";
  /* Newer SDK values, by number so older SDKs still compile. */
  case 1009: return "VMNET_SHARING_SERVICE_BUSY";
  case 1010: return "VMNET_NOT_AUTHORIZED";
  default: return "VMNET_UNKNOWN";
  }
}

static napi_value vmnet_error(napi_env env, const char *call, vmnet_return_t s) {
  char msg[256];
  const char *name = status_name(s);
  bool access = (int)s == VMNET_INVALID_ACCESS || (int)s == 1010;
  snprintf(msg, sizeof msg, "%s failed: %s (%d)%s", call, name, (int)s,
           access ? "; vmnet needs root or the com.apple.vm.networking entitlement" : "");
  return make_coded_error(env, name, msg);
}

/* ---- JS-thread state ----------------------------------------------------- */

static void free_area(napi_env env, void *data, void *hint) {
  free(data);
}

static void on_again(uv_timer_t *t);

static void set_active(vif *v) {
  if (v->base.teardown) return;
  bool want = !v->base.finalized && (v->state == V_STARTING || v->state == V_RUNNING || v->state == V_STOPPING);
  if (v->tsfn_alive && !v->tsfn_released) {
    if (want && !v->base.unreffed) napi_ref_threadsafe_function(v->base.env, v->tsfn);
    else napi_unref_threadsafe_function(v->base.env, v->tsfn);
  }
  nc_hold(&v->base, want);
}

static void apply_ref(nc_object *o) {
  set_active((vif *)o);
}

static void release_tsfn(vif *v) {
  /* At teardown Node may have finalized it already. */
  if (v->tsfn_released || !v->tsfn_alive) return;
  v->tsfn_released = true;
  napi_release_threadsafe_function(v->tsfn, napi_tsfn_release);
}

static void on_again_closed(uv_handle_t *h) {
  vif *v = h->data;
  nc_teardown_done(&v->base);
  unown(v);
}

static void close_again(vif *v) {
  if (!v->again_open) return;
  v->again_open = false;
  uv_close((uv_handle_t *)&v->again, on_again_closed);
}

/* Resolves *d (ok) or rejects it with error, once. */
static void settle(napi_env env, napi_deferred *d, bool ok, napi_value error) {
  if (!*d) return;
  napi_value u = NULL;
  napi_get_undefined(env, &u);
  if (ok) napi_resolve_deferred(env, *d, u);
  else napi_reject_deferred(env, *d, error ? error : u);
  *d = NULL;
}

static void stopped(vif *v, vmnet_return_t status) {
  v->state = V_STOPPED;
  v->iface = NULL;
  settle(v->base.env, &v->stop_deferred, status == VMNET_SUCCESS,
         status == VMNET_SUCCESS ? NULL : vmnet_error(v->base.env, "vmnet_stop_interface", status));
  if (v->closed) release_tsfn(v);
  set_active(v);
}

/* Unregisters events, then stops; the completion comes back as MSG_STOPPED. */
static void begin_stop(vif *v) {
  v->state = V_STOPPING;
  if (v->events_registered) {
    v->events_registered = false;
    vmnet_interface_set_event_callback(v->iface, VMNET_INTERFACE_PACKETS_AVAILABLE, NULL, NULL);
    /* The queue is serial: this runs after any event block already queued,
     * which is when the registration's hold on v can go. */
    dispatch_async(v->queue, ^{
      unown(v);
    });
  }
  own(v);
  vmnet_return_t r = vmnet_stop_interface(v->iface, v->queue, ^(vmnet_return_t status) {
    vmsg *m = calloc(1, sizeof *m);
    if (m) {
      m->kind = MSG_STOPPED;
      m->status = status;
      post(v, m);
    }
    unown(v);
  });
  if (r != VMNET_SUCCESS) {
    unown(v); /* the completion will not run */
    stopped(v, r);
  }
}

static bool rx_attached(vif *v) {
  napi_value ab;
  bool detached = true;
  if (napi_get_reference_value(v->base.env, v->rx_buffer_ab, &ab) != napi_ok || !ab ||
      napi_is_detached_arraybuffer(v->base.env, ab, &detached) != napi_ok || detached)
    return false;
  if (napi_get_reference_value(v->base.env, v->rx_lengths_ab, &ab) != napi_ok || !ab ||
      napi_is_detached_arraybuffer(v->base.env, ab, &detached) != napi_ok || detached)
    return false;
  return true;
}

static void deliver_error(vif *v, napi_value error, bool in_scope) {
  if (v->error_reported || !error || !v->base.self) return;
  v->error_reported = true;
  nc_emit(&v->base, NC_ON_ERROR, 1, &error, in_scope);
}

/* One vmnet_read into the slots, then onFrames(count). Caller holds a handle scope. */
static void read_batch(vif *v, bool in_scope) {
  if (v->closed || v->state != V_RUNNING) return;
  if (!rx_attached(v)) {
    deliver_error(v, make_coded_error(v->base.env, "ERR_INVALID_STATE", "VmnetInterface: rxBuffer or rxLengths was detached; receiving stopped"), in_scope);
    if (!v->closed && v->state == V_RUNNING) begin_stop(v);
    return;
  }
  /* Within the per-call limits, counting each slot at its full size. */
  uint32_t fit = (uint32_t)(VMNET_BATCH_BYTES / v->slot_size);
  int asked = (int)(v->slots < fit ? v->slots : fit > 0 ? fit : 1);
  int count = asked;
  for (int i = 0; i < count; i++) {
    v->rx_iov[i].iov_base = v->rx + (size_t)i * v->slot_size;
    v->rx_iov[i].iov_len = v->slot_size;
    v->rx_pkts[i].vm_pkt_size = v->slot_size;
    v->rx_pkts[i].vm_pkt_iov = &v->rx_iov[i];
    v->rx_pkts[i].vm_pkt_iovcnt = 1;
    v->rx_pkts[i].vm_flags = 0;
  }
  vmnet_return_t r = vmnet_read(v->iface, v->rx_pkts, &count);
  if (r != VMNET_SUCCESS) {
    v->rx_errors++;
    deliver_error(v, vmnet_error(v->base.env, "vmnet_read", r), in_scope);
    return;
  }
  uint32_t n = 0;
  for (int i = 0; i < count; i++) {
    size_t len = v->rx_pkts[i].vm_pkt_size;
    if (len > v->slot_size) { /* cannot happen with slots of maxPacketSize; never pass it on */
      v->rx_truncated++;
      continue;
    }
    /* Compact in place: the slot index must match the lengths index. */
    if (n != (uint32_t)i) memmove(v->rx + (size_t)n * v->slot_size, v->rx + (size_t)i * v->slot_size, len);
    v->rx_len[n++] = (uint32_t)len;
    v->rx_frames++;
    v->rx_bytes += len;
  }
  napi_value c;
  if (n > 0 && napi_create_uint32(v->base.env, n, &c) == napi_ok) nc_emit(&v->base, NC_ON_FRAMES, 1, &c, in_scope);
  /* Full: more may be waiting, and vmnet will not say so again. */
  if (count == asked && !v->closed && v->state == V_RUNNING && v->again_open)
    uv_timer_start(&v->again, on_again, 0, 0);
}

static void on_again(uv_timer_t *t) {
  vif *v = t->data;
  napi_handle_scope scope;
  if (v->closed || napi_open_handle_scope(v->base.env, &scope) != napi_ok) return;
  read_batch(v, false);
  napi_close_handle_scope(v->base.env, scope);
}

static bool expose_params(vif *v, const vmsg *m) {
  napi_env env = v->base.env;
  napi_value self, rx_ab, len_ab, lengths, mac, mtu, max;
  size_t area = (size_t)v->slots * v->slot_size;
  if (!v->base.self || napi_get_reference_value(env, v->base.self, &self) != napi_ok || !self) return false;
  uint8_t *rx = malloc(area);
  uint32_t *rx_len = calloc(v->slots, sizeof(uint32_t));
  if (!rx || !rx_len) {
    free(rx);
    free(rx_len);
    return false;
  }
  if (napi_create_external_arraybuffer(env, rx, area, free_area, NULL, &rx_ab) != napi_ok) {
    free(rx);
    free(rx_len);
    return false;
  }
  if (napi_create_external_arraybuffer(env, rx_len, v->slots * sizeof(uint32_t), free_area, NULL, &len_ab) != napi_ok) {
    free(rx_len);
    return false;
  }
  if (napi_create_typedarray(env, napi_uint32_array, v->slots, len_ab, 0, &lengths) != napi_ok ||
      napi_create_string_utf8(env, m->mac, NAPI_AUTO_LENGTH, &mac) != napi_ok ||
      napi_create_double(env, (double)m->mtu, &mtu) != napi_ok ||
      napi_create_double(env, (double)m->max_packet_size, &max) != napi_ok ||
      napi_create_reference(env, rx_ab, 1, &v->rx_buffer_ab) != napi_ok ||
      napi_create_reference(env, len_ab, 1, &v->rx_lengths_ab) != napi_ok)
    return false;
  napi_property_descriptor props[] = {
      {"mac", NULL, NULL, NULL, NULL, mac, napi_enumerable, NULL},
      {"mtu", NULL, NULL, NULL, NULL, mtu, napi_enumerable, NULL},
      {"maxPacketSize", NULL, NULL, NULL, NULL, max, napi_enumerable, NULL},
      {"rxBuffer", NULL, NULL, NULL, NULL, rx_ab, napi_enumerable, NULL},
      {"rxLengths", NULL, NULL, NULL, NULL, lengths, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, self, 5, props) != napi_ok) return false;
  v->rx = rx;
  v->rx_len = rx_len;
  return true;
}

static void on_started(vif *v, const vmsg *m) {
  if (v->state != V_STARTING) return; /* start() already failed synchronously */
  napi_env env = v->base.env;
  if (m->status != VMNET_SUCCESS) {
    v->state = V_STOPPED;
    v->iface = NULL;
    settle(env, &v->start_deferred, false, vmnet_error(env, "vmnet_start_interface", m->status));
    if (v->closed) release_tsfn(v);
    set_active(v);
    return;
  }
  if (v->closed) {
    settle(env, &v->start_deferred, false, make_coded_error(env, "ERR_DEVICE_CLOSED", "VmnetInterface was closed while starting"));
    begin_stop(v);
    return;
  }
  v->slot_size = (uint32_t)m->max_packet_size;
  if (v->slot_size == 0 || !expose_params(v, m)) {
    settle(env, &v->start_deferred, false, make_coded_error(env, "ENOMEM", "VmnetInterface: cannot set up the receive area"));
    begin_stop(v);
    return;
  }
  own(v); /* for the event blocks, until begin_stop */
  vmnet_return_t r = vmnet_interface_set_event_callback(
      v->iface, VMNET_INTERFACE_PACKETS_AVAILABLE, v->queue, ^(interface_event_t mask, xpc_object_t event) {
        notify(v);
      });
  if (r != VMNET_SUCCESS) {
    unown(v);
    settle(env, &v->start_deferred, false, vmnet_error(env, "vmnet_interface_set_event_callback", r));
    begin_stop(v);
    return;
  }
  v->events_registered = true;
  v->state = V_RUNNING;
  settle(env, &v->start_deferred, true, NULL);
  set_active(v);
  notify(v); /* packets may have arrived before the callback was set */
}

static void call_js_msg(napi_env env, napi_value js_cb, void *context, void *data) {
  vif *v = context;
  vmsg *m = data;
  if (env == NULL) { /* teardown: drop what is queued */
    if (m != &packets_msg) free(m);
    return;
  }
  switch (m->kind) {
  case MSG_PACKETS:
    atomic_store(&v->notify_pending, false);
    read_batch(v, true);
    return;
  case MSG_STARTED:
    on_started(v, m);
    break;
  case MSG_STOPPED:
    if (v->state == V_STOPPING) stopped(v, m->status);
    break;
  }
  free(m);
}

static void tsfn_finalized(napi_env env, void *data, void *hint) {
  vif *v = data;
  pthread_mutex_lock(&v->lock);
  v->tsfn_alive = false;
  pthread_mutex_unlock(&v->lock);
  unown(v);
}

/* Stops without calling JS: close(), environment teardown, the finalizer. */
static void shut(nc_object *o) {
  vif *v = (vif *)o;
  if (v->closed) return;
  v->closed = true;
  close_again(v);
  switch (v->state) {
  case V_RUNNING:
    begin_stop(v);
    break;
  case V_IDLE:
  case V_STOPPED:
    release_tsfn(v);
    break;
  case V_STARTING: /* on_started stops it */
  case V_STOPPING: /* stopped() releases */
    break;
  }
  set_active(v);
}

static void release(napi_env env, nc_object *o) {
  vif *v = (vif *)o;
  if (v->rx_buffer_ab) napi_delete_reference(env, v->rx_buffer_ab);
  if (v->rx_lengths_ab) napi_delete_reference(env, v->rx_lengths_ab);
  v->rx_buffer_ab = v->rx_lengths_ab = NULL; /* queued messages may still run */
  unown(v);
}

/* ---- JS methods ---------------------------------------------------------- */

static vif *unwrap_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  return nc_this(env, info, &vmnet_class, argc, argv);
}

static napi_value rejected(napi_env env, const char *code, const char *message) {
  napi_deferred d;
  napi_value p;
  NAPI_CALL(env, napi_create_promise(env, &d, &p));
  napi_reject_deferred(env, d, make_coded_error(env, code, message));
  return p;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  vif *v = unwrap_this(env, info, &argc, NULL);
  if (!v) return NULL;
  if (v->closed) return rejected(env, "ERR_DEVICE_CLOSED", "VmnetInterface is closed");
  if (v->state != V_IDLE) return rejected(env, "ERR_INVALID_STATE", "VmnetInterface: start() can be called once");

  xpc_object_t desc = xpc_dictionary_create(NULL, NULL, 0);
  if (!desc) return rejected(env, "ENOMEM", "VmnetInterface: cannot create the interface description");
  xpc_dictionary_set_uint64(desc, vmnet_operation_mode_key, v->mode);
  if (v->has_bridged) xpc_dictionary_set_string(desc, vmnet_shared_interface_name_key, v->bridged);

  napi_value promise;
  if (napi_create_promise(env, &v->start_deferred, &promise) != napi_ok) {
    xpc_release(desc);
    throw_napi_failure(env, "napi_create_promise");
    return NULL;
  }
  v->state = V_STARTING;
  set_active(v);
  own(v); /* for the completion block */
  v->iface = vmnet_start_interface(desc, v->queue, ^(vmnet_return_t status, xpc_object_t param) {
    vmsg *m = calloc(1, sizeof *m);
    if (m) {
      m->kind = MSG_STARTED;
      m->status = status;
      if (status == VMNET_SUCCESS && param) {
        const char *mac = xpc_dictionary_get_string(param, vmnet_mac_address_key);
        if (mac) snprintf(m->mac, sizeof m->mac, "%s", mac);
        m->mtu = xpc_dictionary_get_uint64(param, vmnet_mtu_key);
        m->max_packet_size = xpc_dictionary_get_uint64(param, vmnet_max_packet_size_key);
      }
      post(v, m);
    }
    unown(v);
  });
  xpc_release(desc);
  if (!v->iface) {
    /* Refused outright. Whether the completion still runs is not documented;
     * if it does, on_started ignores it (the state is no longer STARTING). */
    v->state = V_STOPPED;
    settle(env, &v->start_deferred, false, vmnet_error(env, "vmnet_start_interface", VMNET_FAILURE));
    set_active(v);
  }
  return promise;
}

static napi_value js_stop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  vif *v = unwrap_this(env, info, &argc, NULL);
  if (!v) return NULL;
  napi_value promise, u;
  if (v->state == V_STARTING) return rejected(env, "ERR_INVALID_STATE", "VmnetInterface: stop() while start() is pending");
  if (v->stop_deferred) return rejected(env, "ERR_INVALID_STATE", "VmnetInterface: stop() is already pending");
  if (v->state != V_RUNNING && v->state != V_STOPPING) {
    napi_deferred d;
    NAPI_CALL(env, napi_create_promise(env, &d, &promise));
    NAPI_CALL(env, napi_get_undefined(env, &u));
    napi_resolve_deferred(env, d, u);
    return promise;
  }
  NAPI_CALL(env, napi_create_promise(env, &v->stop_deferred, &promise));
  if (v->state == V_RUNNING) begin_stop(v);
  return promise;
}

/* write(buffer, lengths, count) -> frames vmnet accepted */
static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  vif *v = unwrap_this(env, info, &argc, argv);
  if (!v) return NULL;
  uint8_t *buf;
  uint32_t *lengths, count;
  size_t buf_len, n_lengths;
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "write(buffer, lengths, count) takes three arguments");
    return NULL;
  }
  if (!get_u8_array(env, argv[0], "buffer", &buf, &buf_len) ||
      !get_u32_array(env, argv[1], "lengths", &lengths, &n_lengths) || !get_uint32(env, argv[2], "count", &count))
    return NULL;
  if (count > n_lengths) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "write: count is larger than lengths.length");
    return NULL;
  }
  size_t total = 0;
  for (uint32_t i = 0; i < count; i++) total += lengths[i];
  if (total > buf_len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "write: the lengths add up to more than buffer.length");
    return NULL;
  }
  uint32_t sent = 0;
  if (v->closed) goto out;
  if (v->state != V_RUNNING) {
    v->tx_dropped += count;
    goto out;
  }
  size_t off = 0;
  for (uint32_t i = 0; i < count;) {
    int n = 0;
    size_t bytes = 0;
    while (i + n < count && n < VMNET_BATCH && (n == 0 || bytes + lengths[i + n] <= VMNET_BATCH_BYTES)) {
      uint32_t len = lengths[i + n];
      v->tx_iov[n].iov_base = buf + off;
      v->tx_iov[n].iov_len = len;
      v->tx_pkts[n].vm_pkt_size = len;
      v->tx_pkts[n].vm_pkt_iov = &v->tx_iov[n];
      v->tx_pkts[n].vm_pkt_iovcnt = 1;
      v->tx_pkts[n].vm_flags = 0;
      bytes += len;
      off += len;
      n++;
    }
    int done = n;
    vmnet_return_t r = vmnet_write(v->iface, v->tx_pkts, &done);
    if (r == VMNET_SUCCESS) {
      if (done < 0 || done > n) done = 0;
      for (int k = 0; k < done; k++) v->tx_bytes += v->tx_pkts[k].vm_pkt_size;
      v->tx_frames += (uint64_t)done;
      v->tx_dropped += (uint64_t)(n - done); /* vmnet has no "writable" signal to wait for */
      sent += (uint32_t)done;
    } else if (r == VMNET_BUFFER_EXHAUSTED) {
      v->tx_dropped += (uint64_t)n;
    } else {
      v->tx_errors += (uint64_t)n;
    }
    i += (uint32_t)n;
  }
out:
  NAPI_CALL(env, napi_create_uint32(env, sent, &result));
  return result;
}

static size_t stats(nc_object *o, nc_stat *out) {
  vif *v = (vif *)o;
  nc_stat st[] = {
      {"rxFrames", (double)v->rx_frames}, {"rxBytes", (double)v->rx_bytes},
      {"rxTruncated", (double)v->rx_truncated}, {"rxErrors", (double)v->rx_errors},
      {"txFrames", (double)v->tx_frames}, {"txBytes", (double)v->tx_bytes},
      {"txQueued", 0}, {"txDropped", (double)v->tx_dropped},
      {"txErrors", (double)v->tx_errors},
  };
  memcpy(out, st, sizeof st);
  return sizeof st / sizeof st[0];
}

/* new VmnetInterface({ mode, bridgedInterface?, rxSlots?, onFrames, onError }) */
static napi_value js_new(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self, v_mode, v_bridged, v_slots, v_frames, v_error;
  bool present;
  char mode[16];
  if (!nc_construct_info(env, info, &vmnet_class, &argc, argv, &self)) return NULL;
  if (argc < 1 || !get_object_arg(env, argv[0], "options")) {
    if (argc < 1) napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"options\" argument must be an object");
    return NULL;
  }
  vif *v = calloc(1, sizeof *v);
  if (!v) {
    napi_throw_error(env, "ENOMEM", "VmnetInterface: out of memory");
    return NULL;
  }
  if (!get_prop(env, argv[0], "mode", &v_mode, &present) || !get_string(env, v_mode, "options.mode", mode, sizeof mode))
    goto bad;
  if (strcmp(mode, "shared") == 0) v->mode = VMNET_SHARED_MODE;
  else if (strcmp(mode, "host") == 0) v->mode = VMNET_HOST_MODE;
  else if (strcmp(mode, "bridged") == 0) v->mode = VMNET_BRIDGED_MODE;
  else {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "options.mode must be 'shared', 'host' or 'bridged'");
    goto bad;
  }
  if (!get_prop(env, argv[0], "bridgedInterface", &v_bridged, &v->has_bridged)) goto bad;
  if (v->has_bridged && !get_string(env, v_bridged, "options.bridgedInterface", v->bridged, sizeof v->bridged)) goto bad;
  v->slots = 64;
  if (!get_prop(env, argv[0], "rxSlots", &v_slots, &present)) goto bad;
  if (present && !get_uint32(env, v_slots, "options.rxSlots", &v->slots)) goto bad;
  if (v->slots == 0 || v->slots > VMNET_BATCH) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "options.rxSlots must be from 1 to 200");
    goto bad;
  }
  if (!get_prop(env, argv[0], "onFrames", &v_frames, &present) || !get_function(env, v_frames, "options.onFrames") ||
      !get_prop(env, argv[0], "onError", &v_error, &present) || !get_function(env, v_error, "options.onError"))
    goto bad;

  if (!nc_set_callbacks(env, self, v_frames, v_error)) {
    throw_napi_failure(env, "setting up VmnetInterface");
    goto bad;
  }
  uv_loop_t *loop;
  napi_value name;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok ||
      napi_create_string_utf8(env, "tcpip.VmnetInterface", NAPI_AUTO_LENGTH, &name) != napi_ok) {
    throw_napi_failure(env, "setting up VmnetInterface");
    goto bad;
  }
  v->queue = dispatch_queue_create("tcpip-ts.vmnet", DISPATCH_QUEUE_SERIAL);
  pthread_mutex_init(&v->lock, NULL);
  atomic_init(&v->owners, 1); /* the wrapper */
  atomic_init(&v->notify_pending, false);
  if (napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, v, tsfn_finalized, v, call_js_msg, &v->tsfn) != napi_ok) {
    dispatch_release(v->queue);
    pthread_mutex_destroy(&v->lock);
    free(v);
    throw_napi_failure(env, "napi_create_threadsafe_function");
    return NULL;
  }
  v->tsfn_alive = true;
  own(v); /* the threadsafe function */
  napi_unref_threadsafe_function(env, v->tsfn);
  uv_timer_init(loop, &v->again);
  uv_unref((uv_handle_t *)&v->again);
  v->again.data = v;
  v->again_open = true;
  own(v); /* the timer, until closed */

  if (!nc_wrap(env, self, &v->base, &vmnet_class)) {
    v->closed = true;
    close_again(v);
    release_tsfn(v);
    unown(v);
    return NULL;
  }
  return self;
bad:
  free(v);
  return NULL;
}

static const napi_property_descriptor methods[] = {
    {"start", NULL, js_start, NULL, NULL, NULL, napi_default_method, NULL},
    {"stop", NULL, js_stop, NULL, NULL, NULL, napi_default_method, NULL},
    {"write", NULL, js_write, NULL, NULL, NULL, napi_default_method, NULL},
};

const nc_class vmnet_class = {
    .name = "VmnetInterface",
    .tag = {0x7463706970747303ULL, 0x566d6e6574496600ULL},
    .construct = js_new,
    .methods = methods,
    .n_methods = sizeof methods / sizeof methods[0],
    .shut = shut,
    .apply_ref = apply_ref,
    .stats = stats,
    .release = release,
};

#endif /* __APPLE__ */
