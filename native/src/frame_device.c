/* FrameDevice: moves frames between a non-blocking fd (TAP/TUN, datagram
 * socket) and JavaScript, one frame per read()/write().
 *
 * Receive: on each readable wakeup, read into fixed slots until EAGAIN or the
 * slots are full, then call onFrames(count) once. Polling is level-triggered,
 * so a full batch is simply followed by another on the next loop turn.
 * Transmit: write straight away; on EAGAIN copy the rest into a bounded FIFO
 * drained on writable wakeups, so frame order is kept. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include "addon.h"
#include "util.h"
#include "vnet.h"

#define TX_QUEUE_FRAMES 2048
#define TX_QUEUE_BYTES ((size_t)64 << 20)
#define RX_AREA_MAX ((size_t)1 << 30)

typedef struct tx_frame {
  uint8_t *data;
  uint32_t len;
} tx_frame;

typedef struct device {
  nc_object base; /* held while polling or an error is pending */
  napi_ref rx_buffer_ab, rx_lengths_ab; /* strong: keep rx/rx_len (owned by them) alive */
  uv_poll_t poll;
  uv_timer_t timer; /* delivers an error raised inside write() on a later turn */
  uv_timer_t probe; /* unix datagram: is a quiet peer still there? */
  uint64_t probe_rx;  /* rx_frames at the last probe */
  int handles_open;
  int fd;
  int events; /* what poll is started with */
  bool started, failed, closed, error_reported;
  /* An unconnected unix datagram socket (openUnixDgram without a peer):
   * the latest sender with an address is the peer, sent to with sendto()
   * (gvproxy does so for vfkit). The socket stays unconnected, so a VM
   * restarted at another (or the same) path reaches us at once; a peer that
   * is gone (ECONNREFUSED, ENOENT) is forgotten and the next sender learned. */
  bool learn_peer;
  bool have_peer;
  struct sockaddr_storage peer;
  socklen_t peer_len;
  /* A unix datagram socket connected to a peer path (openUnixDgram with a
   * peer): when the peer goes, each later send first connects to the path
   * again, so a peer restarted there is found. fixed_len 0: no path
   * (a socket pair), and a lost peer is fatal as before. */
  bool unix_dgram, peer_lost;
  struct sockaddr_storage fixed;
  socklen_t fixed_len;
  int lost_err; /* a lost peer waiting to be reported (on the timer) */
  /* startInPlace(): readable events call onFrames(0) and JS reads with readInto(). */
  bool in_place;
  int deferred_err;
  const char *deferred_syscall;

  uint8_t *rx;
  uint32_t *rx_len;
  uint32_t slots, slot_size;

  tx_frame *q;
  uint32_t q_head, q_count;
  size_t q_bytes;

  /* A TAP/TUN opened with offloads: a virtio-net header before every frame,
   * both ways (vnet.c). vnet_mtu is the link's real MTU (it sets the GSO
   * segment size), vnet_l2 its link header length. */
  bool vnet;
  uint32_t vnet_mtu, vnet_l2;

  uint64_t rx_frames, rx_bytes, rx_truncated, rx_errors;
  uint64_t tx_frames, tx_bytes, tx_dropped, tx_errors;
  uint64_t rx_gso, rx_bad_offload, tx_gso, tx_bad_offload;
  uint64_t rx_hello, peers_lost, peers_learned;
} device;

static void on_poll(uv_poll_t *h, int status, int events);

/* ---- lifetime ---------------------------------------------------------- */

static void set_active(device *d) {
  nc_hold(&d->base, !d->closed && (d->events != 0 || d->deferred_err != 0 || d->lost_err != 0));
}

static int update_poll(device *d) {
  int want = 0, rc = 0;
  if (!d->closed && !d->failed) {
    if (d->started) want |= UV_READABLE;
    if (d->q_count) want |= UV_WRITABLE;
  }
  if (want != d->events) {
    rc = want ? uv_poll_start(&d->poll, want, on_poll) : uv_poll_stop(&d->poll);
    d->events = rc == 0 ? want : 0;
    if (rc != 0) uv_poll_stop(&d->poll);
  }
  set_active(d);
  return rc;
}

static void free_queue(device *d) {
  for (uint32_t i = 0; i < d->q_count; i++) free(d->q[(d->q_head + i) % TX_QUEUE_FRAMES].data);
  free(d->q);
  d->q = NULL;
  d->q_head = d->q_count = 0;
  d->q_bytes = 0;
}

static void on_handle_closed(uv_handle_t *h) {
  device *d = h->data;
  if (--d->handles_open > 0) return;
  nc_teardown_done(&d->base);
  if (d->base.finalized) free(d); /* the last close callback frees */
}

/* Stops everything without calling JS; safe from a finalizer. */
static void shut(nc_object *o) {
  device *d = (device *)o;
  if (d->closed) return;
  d->closed = true;
  d->tx_dropped += d->q_count; /* queued, now never sent */
  free_queue(d);
  d->deferred_err = 0;
  d->lost_err = 0;
  d->events = 0;
  uv_close((uv_handle_t *)&d->poll, on_handle_closed); /* stops polling now, before the fd goes */
  uv_close((uv_handle_t *)&d->timer, on_handle_closed);
  uv_close((uv_handle_t *)&d->probe, on_handle_closed);
  close(d->fd);
  d->fd = -1;
  set_active(d);
}

static void release(napi_env env, nc_object *o) {
  device *d = (device *)o;
  napi_delete_reference(env, d->rx_buffer_ab);
  napi_delete_reference(env, d->rx_lengths_ab);
  if (d->handles_open == 0) free(d);
}

static void apply_ref(nc_object *o) {
  device *d = (device *)o;
  if (d->closed) return;
  if (o->unreffed) {
    uv_unref((uv_handle_t *)&d->poll);
    uv_unref((uv_handle_t *)&d->timer);
  } else {
    uv_ref((uv_handle_t *)&d->poll);
    uv_ref((uv_handle_t *)&d->timer);
  }
}

static void free_area(napi_env env, void *data, void *hint) {
  free(data);
}

/* ---- errors ------------------------------------------------------------ */

/* What kind of datagram socket fd is: sets learn_peer (unconnected) or the
 * peer path to reconnect to (connected unix socket with a named peer). */
static void classify_socket(device *d) {
  int type = 0;
  socklen_t len = sizeof type;
  struct sockaddr_storage local;
  socklen_t local_len = sizeof local;
  if (getsockopt(d->fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_DGRAM) return;
  if (getsockname(d->fd, (struct sockaddr *)&local, &local_len) < 0 || local.ss_family != AF_UNIX) {
    /* Not unix (a test's UDP socket): learn mode only if unconnected, as before. */
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    d->learn_peer = getpeername(d->fd, (struct sockaddr *)&peer, &peer_len) < 0 && errno == ENOTCONN;
    return;
  }
  d->unix_dgram = true;
  d->fixed_len = sizeof d->fixed;
  if (getpeername(d->fd, (struct sockaddr *)&d->fixed, &d->fixed_len) < 0) {
    d->fixed_len = 0;
    d->learn_peer = errno == ENOTCONN;
  } else if (d->fixed_len <= sizeof(sa_family_t)) {
    d->fixed_len = 0; /* unnamed (socketpair): nothing to reconnect to */
  }
}

/* The errors by which a unix datagram send says its peer is gone. */
static bool peer_gone_errno(int err) {
  return err == ECONNREFUSED || err == ENOTCONN || err == ENOENT || err == ECONNRESET || err == EDESTADDRREQ;
}

static bool fatal_errno(int err) {
  switch (err) {
  case EINTR:
  case EAGAIN:
#if EWOULDBLOCK != EAGAIN
  case EWOULDBLOCK:
#endif
  case ENOMEM:
  case ENOBUFS:
  case EINVAL:   /* one malformed frame (TAP) */
  case EMSGSIZE: /* one oversized datagram */
  case EIO:      /* TAP interface down: frames are refused until it is up */
    return false;
  default:
    return true;
  }
}

static void deliver_error(device *d, napi_value error) {
  if (error) nc_emit(&d->base, NC_ON_ERROR, 1, &error, false);
}

static void deliver_sys_error(device *d, int err, const char *syscall) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(d->base.env, &scope) != napi_ok) return;
  char what[96];
  snprintf(what, sizeof what, "FrameDevice: %s on fd %d failed", syscall, d->fd);
  deliver_error(d, make_sys_error(d->base.env, err, syscall, what));
  napi_close_handle_scope(d->base.env, scope);
}

/* A fatal error: stop polling, give up queued frames, tell JS once. Called
 * with now=false from inside write() (JS on the stack), so the report waits
 * for the timer rather than re-entering the caller. */
static void on_timer(uv_timer_t *t);

static void fail(device *d, int err, const char *syscall, bool now) {
  if (d->failed || d->closed) return;
  d->failed = true;
  d->tx_errors += d->q_count;
  free_queue(d);
  if (now) {
    /* Deliver while still strongly held, then stop polling (unless onError closed us). */
    d->error_reported = true;
    deliver_sys_error(d, err, syscall);
  } else {
    d->deferred_err = err;
    d->deferred_syscall = syscall;
    uv_timer_start(&d->timer, on_timer, 0, 0);
  }
  if (!d->closed) update_poll(d);
}

/* onError(err) with err.peerLost = true: not fatal, the device goes on. */
static void deliver_peer_lost(device *d, int err) {
  napi_env env = d->base.env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  char what[96];
  snprintf(what, sizeof what, "FrameDevice: the peer of fd %d is gone", d->fd);
  napi_value error = make_sys_error(env, err, "write", what), yes;
  if (error && napi_get_boolean(env, true, &yes) == napi_ok) napi_set_named_property(env, error, "peerLost", yes);
  deliver_error(d, error);
  napi_close_handle_scope(env, scope);
}

/* The peer went away (from inside write(): reported on the timer). */
static void peer_lost(device *d, int err) {
  if (d->peer_lost) return;
  d->peer_lost = true;
  d->peers_lost++;
  d->lost_err = err;
  uv_timer_start(&d->timer, on_timer, 0, 0);
  set_active(d);
}

/* A datagram socket hears nothing when its peer's socket closes: a VM that
 * was killed is noticed at our next send, which can be a TCP retransmit
 * timeout (a second or more) away. So when the peer has been quiet for a
 * probe interval, ask the kernel whether anything is still bound at its
 * address: connect() on a spare socket sends nothing, and fails at once
 * with ECONNREFUSED (file left, nobody bound) or ENOENT (file gone). A
 * peer connected to us (vfkit) refuses it with EPERM: alive. */
#define PROBE_MS 200

static void on_probe(uv_timer_t *t) {
  device *d = t->data;
  if (d->closed || d->failed || !d->started) return;
  bool quiet = d->rx_frames == d->probe_rx;
  d->probe_rx = d->rx_frames;
  if (!quiet || d->peer_lost) return;
  const struct sockaddr *to = NULL;
  socklen_t to_len = 0;
  if (d->learn_peer && d->have_peer) {
    to = (const struct sockaddr *)&d->peer;
    to_len = d->peer_len;
  } else if (!d->learn_peer && d->fixed_len) {
    to = (const struct sockaddr *)&d->fixed;
    to_len = d->fixed_len;
  }
  if (!to || to->sa_family != AF_UNIX) return;
#ifdef SOCK_CLOEXEC
  int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
#else
  int probe = socket(AF_UNIX, SOCK_DGRAM, 0);
#endif
  if (probe < 0) return;
  int rc = connect(probe, to, to_len), err = errno;
  close(probe);
  if (rc == 0 || !peer_gone_errno(err)) return;
  if (d->learn_peer) {
    d->have_peer = false;
  } else {
    /* Unconnect, so that a peer restarted at the path can send to us before
     * we send to it (a connected unix socket refuses other senders). */
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    connect(d->fd, &unspec, sizeof unspec);
  }
  d->peer_lost = true;
  d->peers_lost++;
  deliver_peer_lost(d, err);
}

static void on_timer(uv_timer_t *t) {
  device *d = t->data;
  if (d->closed) return;
  int lost = d->lost_err;
  d->lost_err = 0;
  if (lost) deliver_peer_lost(d, lost);
  int err = d->deferred_err;
  if (d->closed) return;
  if (err == 0) {
    set_active(d);
    return;
  }
  d->deferred_err = 0;
  d->error_reported = true;
  deliver_sys_error(d, err, d->deferred_syscall);
  if (!d->closed) set_active(d);
}

/* ---- receive ----------------------------------------------------------- */

static bool rx_attached(device *d) {
  napi_value ab;
  bool detached = true;
  napi_env env = d->base.env;
  if (napi_get_reference_value(env, d->rx_buffer_ab, &ab) != napi_ok || !ab ||
      napi_is_detached_arraybuffer(env, ab, &detached) != napi_ok || detached)
    return false;
  if (napi_get_reference_value(env, d->rx_lengths_ab, &ab) != napi_ok || !ab ||
      napi_is_detached_arraybuffer(env, ab, &detached) != napi_ok || detached)
    return false;
  return true;
}

/* Reads up to max frames until the fd would block: frame i goes to
 * base + (offsets ? offsets[i] : i * slot_size), its length to lengths[i].
 * Returns how many; *err is set on an error that ends the device. */
static uint32_t read_frames(device *d, uint8_t *base, const uint32_t *offsets, uint32_t slot_size, uint32_t *lengths,
                            uint32_t max, int *err) {
  uint32_t n = 0;
  uint8_t spill;
  while (n < max) {
    /* One spare byte tells a frame that filled the slot from one cut short. */
    uint8_t *slot = base + (offsets ? offsets[n] : (size_t)n * slot_size);
    /* With offloads the header is read apart, so the frame alone lands in
     * the slot (no copy to strip it). */
    vnet_hdr hdr;
    struct iovec with_hdr[3] = {{&hdr, VNET_HDR_LEN}, {slot, slot_size}, {&spill, 1}};
    struct iovec *iov = d->vnet ? with_hdr : with_hdr + 1;
    int iovcnt = d->vnet ? 3 : 2;
    ssize_t r;
    if (d->learn_peer) {
      struct sockaddr_storage from;
      struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
      r = recvmsg(d->fd, &msg, 0);
      /* The latest named sender is the peer (an unnamed one cannot be answered). */
      if (r >= 0 && msg.msg_namelen > sizeof(sa_family_t) &&
          (!d->have_peer || msg.msg_namelen != d->peer_len || memcmp(&from, &d->peer, msg.msg_namelen) != 0)) {
        memcpy(&d->peer, &from, msg.msg_namelen);
        d->peer_len = msg.msg_namelen;
        d->have_peer = true;
        d->peer_lost = false;
        d->peers_learned++;
      }
    } else {
      r = readv(d->fd, iov, iovcnt);
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      d->rx_errors++;
      if (d->unix_dgram && (d->learn_peer || d->fixed_len) && peer_gone_errno(errno)) continue;
      if (fatal_errno(errno)) *err = errno;
      break;
    }
    /* vfkit before 0.6 sends the 4 bytes "VFKT" first, so that its peer
     * learns its address; no frame is that short. */
    if (d->unix_dgram && r == 4 && memcmp(slot, "VFKT", 4) == 0) {
      d->rx_hello++;
      continue;
    }
    if (d->vnet && r >= 0) {
      if (r < VNET_HDR_LEN || !vnet_rx_ok(&hdr, (uint32_t)(r - VNET_HDR_LEN))) {
        d->rx_bad_offload++;
        continue;
      }
      r -= VNET_HDR_LEN;
      if (hdr.gso_type != 0) d->rx_gso++;
    }
    if ((size_t)r > slot_size) {
      d->rx_truncated++;
      continue;
    }
    lengths[n++] = (uint32_t)r;
    d->rx_frames++;
    d->rx_bytes += (uint64_t)r;
  }
  return n;
}

static void receive(device *d) {
  napi_env env = d->base.env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (!rx_attached(d)) {
    /* Someone transferred the receive area away: writing into it is no longer ours to do. */
    d->failed = true;
    d->tx_errors += d->q_count;
    free_queue(d);
    d->error_reported = true;
    deliver_error(d, make_coded_error(env, "ERR_INVALID_STATE", "FrameDevice: rxBuffer or rxLengths was detached; receiving stopped"));
    napi_close_handle_scope(env, scope);
    if (!d->closed) update_poll(d);
    return;
  }
  int err = 0;
  /* In place: the JS side reads with readInto(); only say frames wait. */
  uint32_t n = d->in_place ? 0 : read_frames(d, d->rx, NULL, d->slot_size, d->rx_len, d->slots, &err);
  if (n > 0 || d->in_place) {
    napi_value count;
    if (napi_create_uint32(env, n, &count) == napi_ok) nc_emit(&d->base, NC_ON_FRAMES, 1, &count, false);
  }
  napi_close_handle_scope(env, scope);
  if (err) fail(d, err, "read", true);
}

/* ---- transmit ---------------------------------------------------------- */

static bool enqueue(device *d, const uint8_t *p, uint32_t len) {
  if (d->q_count >= TX_QUEUE_FRAMES || d->q_bytes + len > TX_QUEUE_BYTES) return false;
  if (!d->q && !(d->q = malloc(sizeof(tx_frame) * TX_QUEUE_FRAMES))) return false;
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) return false;
  memcpy(copy, p, len);
  tx_frame *f = &d->q[(d->q_head + d->q_count) % TX_QUEUE_FRAMES];
  f->data = copy;
  f->len = len;
  d->q_count++;
  d->q_bytes += len;
  return true;
}

static void dequeue(device *d) {
  tx_frame *f = &d->q[d->q_head];
  d->q_bytes -= f->len;
  free(f->data);
  d->q_head = (d->q_head + 1) % TX_QUEUE_FRAMES;
  d->q_count--;
}

/* Outcome of writing one frame: sent (1), retry later (0), failed (-1). */
static int send_one(device *d, uint8_t *p, uint32_t len, int *fatal) {
  vnet_hdr hdr;
  struct iovec iov[2] = {{&hdr, VNET_HDR_LEN}, {p, len}};
  if (d->vnet) {
    if (!vnet_tx_header(&hdr, p, len, d->vnet_mtu, d->vnet_l2)) {
      d->tx_bad_offload++; /* longer than the MTU and not a TCP segment the kernel can cut */
      return -1;
    }
  }
  if (d->learn_peer && !d->have_peer) {
    d->tx_dropped++; /* nobody has spoken to us (since the last peer went): no one to send to */
    return -1;
  }
  if (d->peer_lost && d->fixed_len) {
    /* Looking for a peer restarted at its path; until then, frames go nowhere. */
    if (connect(d->fd, (struct sockaddr *)&d->fixed, d->fixed_len) < 0) {
      d->tx_dropped++;
      return -1;
    }
    d->peer_lost = false;
    d->peers_learned++;
  }
  for (;;) {
    ssize_t r = d->vnet ? writev(d->fd, iov, 2)
                : d->learn_peer ? sendto(d->fd, p, len, 0, (struct sockaddr *)&d->peer, d->peer_len)
                : write(d->fd, p, len);
    if (r >= 0) {
      if (d->vnet) r -= VNET_HDR_LEN;
      if (d->vnet && r >= 0 && hdr.gso_type != 0) d->tx_gso++;
      if ((size_t)r != len) { /* a TAP or a datagram socket never splits a frame */
        d->tx_errors++;
        return -1;
      }
      d->tx_frames++;
      d->tx_bytes += len;
      return 1;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    if (d->unix_dgram && (d->learn_peer || d->fixed_len) && peer_gone_errno(errno)) {
      /* The VM went away: forget it (learn mode) or look for it at its path
       * again (fixed peer); the device goes on. */
      d->tx_dropped++;
      if (d->learn_peer) d->have_peer = false;
      peer_lost(d, errno);
      return -1;
    }
    d->tx_errors++;
    if (fatal_errno(errno)) *fatal = errno;
    return -1;
  }
}

static void drain(device *d) {
  int fatal = 0;
  while (d->q_count) {
    tx_frame *f = &d->q[d->q_head];
    if (send_one(d, f->data, f->len, &fatal) == 0) break;
    dequeue(d);
    if (fatal) {
      fail(d, fatal, "write", true);
      return;
    }
  }
  update_poll(d);
}

/* libuv turns POLLERR into a bare EBADF; ask the fd what happened. Neither
 * probe consumes a frame. */
static int probe_error(int fd, const char **syscall) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0) {
    *syscall = "getsockopt";
    return err;
  }
  uint8_t none;
  if (errno == ENOTSOCK && read(fd, &none, 0) < 0) { /* a TUN/TAP whose device is gone: EBADFD */
    *syscall = "read";
    return errno;
  }
  return 0;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  device *d = h->data;
  if (d->closed || d->failed) return;
  if (status < 0) { /* POLLERR; libuv has already stopped the handle */
    const char *syscall = "poll";
    int err = probe_error(d->fd, &syscall);
    fail(d, err ? err : -status, syscall, true);
    return;
  }
  if (events & UV_WRITABLE) {
    drain(d);
    if (d->closed || d->failed) return;
  }
  if ((events & UV_READABLE) && d->started) receive(d);
}

/* ---- JS methods -------------------------------------------------------- */

static device *unwrap_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  return nc_this(env, info, &frame_device_class, argc, argv);
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  device *d = unwrap_this(env, info, &argc, NULL);
  if (!d) return NULL;
  if (d->closed) {
    throw_coded_error(env, "ERR_DEVICE_CLOSED", "FrameDevice is closed");
    return NULL;
  }
  d->started = true;
  int rc = update_poll(d);
  if (rc != 0) {
    d->started = false;
    throw_sys_error(env, -rc, "uv_poll_start", "FrameDevice: cannot poll its fd");
    return NULL;
  }
  return nc_undefined(env);
}

static napi_value js_stop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  device *d = unwrap_this(env, info, &argc, NULL);
  if (!d) return NULL;
  d->started = false;
  if (!d->closed) update_poll(d);
  return nc_undefined(env);
}

/* write(buffer, lengths, count) -> frames sent or queued */
static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  device *d = unwrap_this(env, info, &argc, argv);
  if (!d) return NULL;
  uint8_t *buf;
  uint32_t *lengths, count;
  size_t buf_len, n_lengths;
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "write(buffer, lengths, count) takes three arguments");
    return NULL;
  }
  if (!get_u8_array(env, argv[0], "buffer", &buf, &buf_len) ||
      !get_u32_array(env, argv[1], "lengths", &lengths, &n_lengths) ||
      !get_uint32(env, argv[2], "count", &count))
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

  uint32_t done = 0, i = 0;
  size_t off = 0;
  napi_value result;
  if (d->closed) goto out;
  if (d->failed) {
    d->tx_errors += count;
    goto out;
  }
  if (d->q_count == 0) {
    int fatal = 0;
    for (; i < count; off += lengths[i], i++) {
      int r = send_one(d, buf + off, lengths[i], &fatal);
      if (r == 0) break;
      if (r == 1) done++;
      if (fatal) {
        d->tx_errors += count - i - 1;
        fail(d, fatal, "write", false);
        goto out;
      }
    }
  }
  if (i < count) {
    for (; i < count; off += lengths[i], i++) {
      if (enqueue(d, buf + off, lengths[i])) done++;
      else d->tx_dropped++;
    }
    update_poll(d);
  }
out:
  NAPI_CALL(env, napi_create_uint32(env, done, &result));
  return result;
}

static size_t stats(nc_object *o, nc_stat *out) {
  device *d = (device *)o;
  nc_stat s[] = {
      {"rxFrames", (double)d->rx_frames},   {"rxBytes", (double)d->rx_bytes},
      {"rxTruncated", (double)d->rx_truncated}, {"rxErrors", (double)d->rx_errors},
      {"txFrames", (double)d->tx_frames},   {"txBytes", (double)d->tx_bytes},
      {"txQueued", (double)d->q_count},     {"txDropped", (double)d->tx_dropped},
      {"txErrors", (double)d->tx_errors},   {"rxGso", (double)d->rx_gso},
      {"rxBadOffload", (double)d->rx_bad_offload}, {"txGso", (double)d->tx_gso},
      {"txBadOffload", (double)d->tx_bad_offload}, {"rxHello", (double)d->rx_hello},
      {"peersLost", (double)d->peers_lost}, {"peersLearned", (double)d->peers_learned},
  };
  memcpy(out, s, sizeof s);
  return sizeof s / sizeof s[0];
}

/* new FrameDevice(fd, rxSlots, slotSize, onFrames, onError, offload?) where
 * offload is { mtu, linkHeader } for an fd opened with openTap's offload. The
 * fd is the device's once the constructor returns; if it throws, it stays the
 * caller's. */
static napi_value js_new(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], self;
  if (!nc_construct_info(env, info, &frame_device_class, &argc, argv, &self)) return NULL;
  uint32_t fd, slots, slot_size;
  if (argc < 5) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "new FrameDevice(fd, rxSlots, slotSize, onFrames, onError) takes five arguments");
    return NULL;
  }
  if (!get_uint32(env, argv[0], "fd", &fd) || !get_uint32(env, argv[1], "rxSlots", &slots) ||
      !get_uint32(env, argv[2], "slotSize", &slot_size) || !get_function(env, argv[3], "onFrames") ||
      !get_function(env, argv[4], "onError"))
    return NULL;
  if (fd > INT_MAX || slots == 0 || slot_size == 0 || (uint64_t)slots * slot_size > RX_AREA_MAX) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "FrameDevice: fd, rxSlots or slotSize is out of range");
    return NULL;
  }
  bool vnet = false;
  uint32_t vnet_mtu = 0, vnet_l2 = 0;
  napi_valuetype offload_type = napi_undefined;
  if (argc >= 6) NAPI_CALL(env, napi_typeof(env, argv[5], &offload_type));
  if (offload_type != napi_undefined) {
    napi_value v;
    bool present;
    if (!get_object_arg(env, argv[5], "offload") || !get_prop(env, argv[5], "mtu", &v, &present) ||
        !get_uint32(env, v, "offload.mtu", &vnet_mtu) || !get_prop(env, argv[5], "linkHeader", &v, &present) ||
        !get_uint32(env, v, "offload.linkHeader", &vnet_l2))
      return NULL;
    if (vnet_mtu < 576 || vnet_mtu > 65535 || (vnet_l2 != 0 && vnet_l2 != 14)) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "FrameDevice: offload.mtu or offload.linkHeader is out of range");
      return NULL;
    }
    vnet = true;
  }

  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  device *d = calloc(1, sizeof *d);
  uint8_t *rx = malloc((size_t)slots * slot_size);
  uint32_t *rx_len = calloc(slots, sizeof(uint32_t));
  if (!d || !rx || !rx_len) {
    free(d);
    free(rx);
    free(rx_len);
    napi_throw_error(env, "ENOMEM", "FrameDevice: cannot allocate the receive area");
    return NULL;
  }
  d->fd = (int)fd;
  classify_socket(d);
  d->slots = slots;
  d->slot_size = slot_size;
  d->vnet = vnet;
  d->vnet_mtu = vnet_mtu;
  d->vnet_l2 = vnet_l2;
  d->rx = rx;
  d->rx_len = rx_len;

  /* The receive area belongs to its ArrayBuffers (freed with them), so a JS
   * reference that outlives the device never dangles. */
  napi_value rx_ab, len_ab, lengths;
  if (napi_create_external_arraybuffer(env, rx, (size_t)slots * slot_size, free_area, NULL, &rx_ab) != napi_ok) {
    free(rx);
    free(rx_len);
    free(d);
    throw_napi_failure(env, "creating rxBuffer");
    return NULL;
  }
  if (napi_create_external_arraybuffer(env, rx_len, (size_t)slots * sizeof(uint32_t), free_area, NULL, &len_ab) != napi_ok) {
    free(rx_len);
    free(d);
    throw_napi_failure(env, "creating rxLengths");
    return NULL;
  }
  napi_property_descriptor props[] = {
      {"rxBuffer", NULL, NULL, NULL, NULL, rx_ab, napi_enumerable, NULL},
      {"rxLengths", NULL, NULL, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_create_typedarray(env, napi_uint32_array, slots, len_ab, 0, &lengths) != napi_ok ||
      (props[1].value = lengths, napi_define_properties(env, self, 2, props)) != napi_ok ||
      !nc_set_callbacks(env, self, argv[3], argv[4]) ||
      napi_create_reference(env, rx_ab, 1, &d->rx_buffer_ab) != napi_ok ||
      napi_create_reference(env, len_ab, 1, &d->rx_lengths_ab) != napi_ok) {
    if (d->rx_buffer_ab) napi_delete_reference(env, d->rx_buffer_ab);
    free(d);
    throw_napi_failure(env, "setting up FrameDevice");
    return NULL;
  }

  int rc = uv_poll_init(loop, &d->poll, d->fd);
  if (rc != 0) {
    napi_delete_reference(env, d->rx_buffer_ab);
    napi_delete_reference(env, d->rx_lengths_ab);
    free(d);
    char what[64];
    snprintf(what, sizeof what, "FrameDevice: cannot poll fd %u", fd);
    throw_sys_error(env, -rc, "uv_poll_init", what);
    return NULL;
  }
  uv_timer_init(loop, &d->timer);
  uv_timer_init(loop, &d->probe);
  uv_unref((uv_handle_t *)&d->probe); /* never keeps the process alive by itself */
  d->poll.data = d->timer.data = d->probe.data = d;
  d->handles_open = 3;
  if (d->unix_dgram && (d->learn_peer || d->fixed_len)) uv_timer_start(&d->probe, on_probe, PROBE_MS, PROBE_MS);

  if (!nc_wrap(env, self, &d->base, &frame_device_class)) {
    napi_delete_reference(env, d->rx_buffer_ab);
    napi_delete_reference(env, d->rx_lengths_ab);
    d->base.finalized = true; /* on_handle_closed frees d */
    d->closed = true;         /* the fd stays the caller's */
    uv_close((uv_handle_t *)&d->poll, on_handle_closed);
    uv_close((uv_handle_t *)&d->timer, on_handle_closed);
    uv_close((uv_handle_t *)&d->probe, on_handle_closed);
    return NULL;
  }
  /* From here on the wrapper owns d and the fd. */
  return self;
}

/* startInPlace(): as start(), but a readable fd calls onFrames(0) and the JS
 * side reads the frames itself with readInto(), straight into its own memory
 * (a stack's wasm memory): one copy from the kernel, none after. */
static napi_value js_start_in_place(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  device *d = unwrap_this(env, info, &argc, NULL);
  if (!d) return NULL;
  d->in_place = true;
  return js_start(env, info);
}

/* readInto(memory: Uint8Array, targets: Uint32Array, slotSize, lengths: Uint32Array) -> count:
 * reads waiting frames (at most targets.length) into memory at targets[i],
 * up to slotSize bytes each, their lengths into lengths[i]. */
static napi_value js_read_into(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  device *d = unwrap_this(env, info, &argc, argv);
  if (!d) return NULL;
  if (argc < 4) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "readInto(memory, targets, slotSize, lengths) takes four arguments");
    return NULL;
  }
  uint8_t *mem;
  uint32_t *targets, *lengths, slot_size;
  size_t mem_len, n_targets, n_lengths;
  if (!get_u8_array(env, argv[0], "memory", &mem, &mem_len) || !get_u32_array(env, argv[1], "targets", &targets, &n_targets) ||
      !get_uint32(env, argv[2], "slotSize", &slot_size) || !get_u32_array(env, argv[3], "lengths", &lengths, &n_lengths))
    return NULL;
  size_t max = n_targets < n_lengths ? n_targets : n_lengths;
  for (size_t i = 0; i < max; i++) {
    if ((size_t)targets[i] + slot_size > mem_len) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "readInto: a target slot lies outside memory");
      return NULL;
    }
  }
  uint32_t n = 0;
  int err = 0;
  if (!d->closed && !d->failed) n = read_frames(d, mem, targets, slot_size, lengths, (uint32_t)max, &err);
  if (err) fail(d, err, "read", false);
  NAPI_CALL(env, napi_create_uint32(env, n, &result));
  return result;
}

static const napi_property_descriptor methods[] = {
    {"start", NULL, js_start, NULL, NULL, NULL, napi_default_method, NULL},
    {"startInPlace", NULL, js_start_in_place, NULL, NULL, NULL, napi_default_method, NULL},
    {"readInto", NULL, js_read_into, NULL, NULL, NULL, napi_default_method, NULL},
    {"stop", NULL, js_stop, NULL, NULL, NULL, napi_default_method, NULL},
    {"write", NULL, js_write, NULL, NULL, NULL, napi_default_method, NULL},
};

const nc_class frame_device_class = {
    .name = "FrameDevice",
    .tag = {0x7463706970747301ULL, 0x4672616d65446576ULL},
    .construct = js_new,
    .methods = methods,
    .n_methods = sizeof methods / sizeof methods[0],
    .shut = shut,
    .apply_ref = apply_ref,
    .stats = stats,
    .release = release,
};
