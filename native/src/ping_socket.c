/* PingSocket: an unprivileged ICMP echo socket (Linux's "ping socket",
 * socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), or for family 6
 * socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6)), for a gateway that forwards
 * a sandbox's pings.
 *
 * The kernel allows either to processes whose group is in
 * net.ipv4.ping_group_range (EACCES otherwise; the one sysctl covers both
 * families). send() hands an ICMP echo request (type 8, or 128 for ICMPv6)
 * to sendto(); the kernel puts the socket's own identifier and the checksum
 * in (for ICMPv6 over its pseudo header), keeps the sequence number and
 * payload, and delivers only echo replies (type 0, or 129) carrying that
 * identifier. Receive: on each readable wakeup,
 * read replies (ICMP header and data, with the source address) into fixed
 * slots until EAGAIN or the slots are full, then call onMessages(count). */
#ifdef __linux__

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "addon.h"
#include "util.h"

#define RX_AREA_MAX ((size_t)64 << 20)

typedef struct ping_socket {
  nc_object base; /* held while open: replies may still arrive */
  napi_ref rx_buffer_ab, rx_lengths_ab, rx_addresses_ab;
  uv_poll_t poll;
  bool handle_open;
  int fd;
  int family; /* AF_INET or AF_INET6 */
  bool closed, failed;

  uint8_t *rx;
  uint32_t *rx_len;
  /* Source address per slot. AF_INET: one uint32_t, a.b.c.d as
   * (a << 24 | ... | d). AF_INET6: 16 bytes, network order. */
  void *rx_addr;
  uint32_t slots, slot_size;

  uint64_t rx_messages, rx_bytes, rx_truncated, rx_errors;
  uint64_t tx_messages, tx_bytes, tx_dropped, tx_errors;
} ping_socket;

/* ---- lifetime ---------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h) {
  ping_socket *s = h->data;
  s->handle_open = false;
  nc_teardown_done(&s->base);
  if (s->base.finalized) free(s);
}

/* Stops polling and closes the fd without calling JS; safe from a finalizer. */
static void shut(nc_object *o) {
  ping_socket *s = (ping_socket *)o;
  if (s->closed) return;
  s->closed = true;
  uv_close((uv_handle_t *)&s->poll, on_handle_closed); /* before the fd goes */
  close(s->fd);
  s->fd = -1;
  nc_hold(&s->base, false);
}

static void release(napi_env env, nc_object *o) {
  ping_socket *s = (ping_socket *)o;
  napi_delete_reference(env, s->rx_buffer_ab);
  napi_delete_reference(env, s->rx_lengths_ab);
  napi_delete_reference(env, s->rx_addresses_ab);
  if (!s->handle_open) free(s);
}

static void apply_ref(nc_object *o) {
  ping_socket *s = (ping_socket *)o;
  if (s->closed) return;
  if (o->unreffed) uv_unref((uv_handle_t *)&s->poll);
  else uv_ref((uv_handle_t *)&s->poll);
}

static void free_area(napi_env env, void *data, void *hint) {
  free(data);
}

/* ---- receive ----------------------------------------------------------- */

static bool rx_attached(ping_socket *s) {
  napi_ref refs[] = {s->rx_buffer_ab, s->rx_lengths_ab, s->rx_addresses_ab};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    napi_value ab;
    bool detached = true;
    if (napi_get_reference_value(s->base.env, refs[i], &ab) != napi_ok || !ab ||
        napi_is_detached_arraybuffer(s->base.env, ab, &detached) != napi_ok || detached)
      return false;
  }
  return true;
}

static void fail(ping_socket *s, napi_value error) {
  s->failed = true;
  uv_poll_stop(&s->poll);
  if (error) nc_emit(&s->base, NC_ON_ERROR, 1, &error, false);
  if (!s->closed) nc_hold(&s->base, false);
}

static void receive(ping_socket *s) {
  uint32_t n = 0;
  while (n < s->slots) {
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    /* MSG_TRUNC: the real length, to tell a reply that filled the slot from one cut short. */
    ssize_t r = recvfrom(s->fd, s->rx + (size_t)n * s->slot_size, s->slot_size, MSG_TRUNC, (struct sockaddr *)&from, &from_len);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) s->rx_errors++; /* a pending ICMP error, ENOMEM: not the socket's end */
      break;
    }
    if ((size_t)r > s->slot_size) {
      s->rx_truncated++;
      continue;
    }
    s->rx_len[n] = (uint32_t)r;
    if (s->family == AF_INET6) {
      const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&from;
      uint8_t *addr = (uint8_t *)s->rx_addr + (size_t)n * 16;
      if (from_len >= sizeof *in6 && in6->sin6_family == AF_INET6) memcpy(addr, &in6->sin6_addr, 16);
      else memset(addr, 0, 16);
    } else {
      const struct sockaddr_in *in4 = (const struct sockaddr_in *)&from;
      ((uint32_t *)s->rx_addr)[n] = from_len >= sizeof *in4 && in4->sin_family == AF_INET ? ntohl(in4->sin_addr.s_addr) : 0;
    }
    s->rx_messages++;
    s->rx_bytes += (uint64_t)r;
    n++;
  }
  if (n == 0) return;
  napi_value count;
  if (napi_create_uint32(s->base.env, n, &count) == napi_ok) nc_emit(&s->base, NC_ON_FRAMES, 1, &count, false);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  ping_socket *s = h->data;
  if (s->closed || s->failed) return;
  napi_env env = s->base.env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (status < 0) { /* POLLERR; libuv has stopped the handle */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0) err = -status;
    fail(s, make_sys_error(env, err, "poll", "PingSocket: the socket failed"));
  } else if (!rx_attached(s)) {
    fail(s, make_coded_error(env, "ERR_INVALID_STATE", "PingSocket: a receive area was detached; receiving stopped"));
  } else if (events & UV_READABLE) {
    receive(s);
  }
  napi_close_handle_scope(env, scope);
}

/* ---- JS methods -------------------------------------------------------- */

static ping_socket *unwrap_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  return nc_this(env, info, &ping_socket_class, argc, argv);
}

/* send(message: Uint8Array, address) -> true when sent, false when the
 * socket's buffer is full (the message is dropped and counted). address: a
 * u32 for family 4, a 16-byte Uint8Array for family 6. Other failures
 * (ENETUNREACH, EINVAL for a message that is not an echo request) throw. */
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  ping_socket *s = unwrap_this(env, info, &argc, argv);
  if (!s) return NULL;
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "send(message, address) takes two arguments");
    return NULL;
  }
  uint8_t *data, *address6 = NULL;
  size_t len, address6_len = 0;
  uint32_t address = 0;
  if (!get_u8_array(env, argv[0], "message", &data, &len)) return NULL;
  if (s->family == AF_INET6 ? !get_u8_array(env, argv[1], "address", &address6, &address6_len)
                            : !get_uint32(env, argv[1], "address", &address))
    return NULL;
  if (s->family == AF_INET6 && address6_len != 16) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "PingSocket: an IPv6 address is 16 bytes");
    return NULL;
  }
  if (s->closed || s->failed) {
    throw_coded_error(env, "ERR_SOCKET_CLOSED", "PingSocket is closed");
    return NULL;
  }
  struct sockaddr_storage to;
  socklen_t to_len;
  memset(&to, 0, sizeof to);
  if (s->family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&to;
    in6->sin6_family = AF_INET6;
    memcpy(&in6->sin6_addr, address6, 16);
    to_len = sizeof *in6;
  } else {
    struct sockaddr_in *in4 = (struct sockaddr_in *)&to;
    in4->sin_family = AF_INET;
    in4->sin_addr.s_addr = htonl(address);
    to_len = sizeof *in4;
  }
  bool sent = false;
  for (;;) {
    ssize_t r = sendto(s->fd, data, len, 0, (struct sockaddr *)&to, to_len);
    if (r >= 0) {
      s->tx_messages++;
      s->tx_bytes += len;
      sent = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      s->tx_dropped++;
      break;
    }
    int e = errno;
    s->tx_errors++;
    char what[96], text[INET6_ADDRSTRLEN];
    if (s->family == AF_INET6) inet_ntop(AF_INET6, address6, text, sizeof text);
    else snprintf(text, sizeof text, "%u.%u.%u.%u", address >> 24, (address >> 16) & 0xff, (address >> 8) & 0xff, address & 0xff);
    snprintf(what, sizeof what, "PingSocket: sendto %s failed", text);
    throw_sys_error(env, e, "sendto", what);
    return NULL;
  }
  NAPI_CALL(env, napi_get_boolean(env, sent, &result));
  return result;
}

static size_t stats(nc_object *o, nc_stat *out) {
  ping_socket *s = (ping_socket *)o;
  nc_stat st[] = {
      {"rxMessages", (double)s->rx_messages}, {"rxBytes", (double)s->rx_bytes},
      {"rxTruncated", (double)s->rx_truncated}, {"rxErrors", (double)s->rx_errors},
      {"txMessages", (double)s->tx_messages}, {"txBytes", (double)s->tx_bytes},
      {"txDropped", (double)s->tx_dropped}, {"txErrors", (double)s->tx_errors},
  };
  memcpy(out, st, sizeof st);
  return sizeof st / sizeof st[0];
}

/* A receive area owned by an ArrayBuffer (freed with it, so a JS reference
 * that outlives the socket never dangles). On failure the memory is freed. */
static bool make_area(napi_env env, void *data, size_t len, napi_value *ab, napi_ref *ref) {
  if (napi_create_external_arraybuffer(env, data, len, free_area, NULL, ab) != napi_ok) {
    free(data);
    return false;
  }
  return napi_create_reference(env, *ab, 1, ref) == napi_ok;
}

/* new PingSocket(family, rxSlots, slotSize, onMessages, onError): opens the
 * socket (family 4 or 6) and polls it until close(). */
static napi_value js_new(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], self;
  if (!nc_construct_info(env, info, &ping_socket_class, &argc, argv, &self)) return NULL;
  if (argc < 5) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "new PingSocket(family, rxSlots, slotSize, onMessages, onError) takes five arguments");
    return NULL;
  }
  uint32_t family, slots, slot_size;
  if (!get_uint32(env, argv[0], "family", &family) || !get_uint32(env, argv[1], "rxSlots", &slots) ||
      !get_uint32(env, argv[2], "slotSize", &slot_size) || !get_function(env, argv[3], "onMessages") ||
      !get_function(env, argv[4], "onError"))
    return NULL;
  if (family != 4 && family != 6) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "PingSocket: family must be 4 or 6");
    return NULL;
  }
  size_t addr_size = family == 6 ? 16 : sizeof(uint32_t);
  if (slots == 0 || slot_size < 8 || (uint64_t)slots * slot_size > RX_AREA_MAX) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "PingSocket: rxSlots or slotSize is out of range");
    return NULL;
  }
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));

  ping_socket *s = calloc(1, sizeof *s);
  if (!s) {
    napi_throw_error(env, "ENOMEM", "PingSocket: out of memory");
    return NULL;
  }
  s->slots = slots;
  s->slot_size = slot_size;
  s->fd = -1;
  s->family = family == 6 ? AF_INET6 : AF_INET;
  /* Areas first: each belongs to its ArrayBuffer from here on. */
  napi_value rx_ab = NULL, len_ab = NULL, addr_ab = NULL, lengths, addresses;
  s->rx = malloc((size_t)slots * slot_size);
  s->rx_len = calloc(slots, sizeof(uint32_t));
  s->rx_addr = calloc(slots, addr_size);
  bool areas = s->rx && s->rx_len && s->rx_addr;
  if (!areas) {
    free(s->rx);
    free(s->rx_len);
    free(s->rx_addr);
  } else {
    areas = make_area(env, s->rx, (size_t)slots * slot_size, &rx_ab, &s->rx_buffer_ab);
    areas = make_area(env, s->rx_len, (size_t)slots * sizeof(uint32_t), &len_ab, &s->rx_lengths_ab) && areas;
    areas = make_area(env, s->rx_addr, (size_t)slots * addr_size, &addr_ab, &s->rx_addresses_ab) && areas;
  }
  napi_property_descriptor props[] = {
      {"rxBuffer", NULL, NULL, NULL, NULL, rx_ab, napi_enumerable, NULL},
      {"rxLengths", NULL, NULL, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rxAddresses", NULL, NULL, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (!areas || napi_create_typedarray(env, napi_uint32_array, slots, len_ab, 0, &lengths) != napi_ok ||
      (family == 6 ? napi_create_typedarray(env, napi_uint8_array, (size_t)slots * 16, addr_ab, 0, &addresses)
                   : napi_create_typedarray(env, napi_uint32_array, slots, addr_ab, 0, &addresses)) != napi_ok ||
      (props[1].value = lengths, props[2].value = addresses, napi_define_properties(env, self, 3, props)) != napi_ok ||
      !nc_set_callbacks(env, self, argv[3], argv[4])) {
    if (s->rx_buffer_ab) napi_delete_reference(env, s->rx_buffer_ab);
    if (s->rx_lengths_ab) napi_delete_reference(env, s->rx_lengths_ab);
    if (s->rx_addresses_ab) napi_delete_reference(env, s->rx_addresses_ab);
    free(s);
    throw_napi_failure(env, "setting up PingSocket");
    return NULL;
  }

  s->fd = socket(s->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, family == 6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
  const char *syscall = s->fd < 0 ? "socket" : "uv_poll_init";
  int rc = s->fd < 0 ? -errno : uv_poll_init(loop, &s->poll, s->fd);
  if (rc != 0) {
    if (s->fd >= 0) close(s->fd);
    napi_delete_reference(env, s->rx_buffer_ab);
    napi_delete_reference(env, s->rx_lengths_ab);
    napi_delete_reference(env, s->rx_addresses_ab);
    free(s);
    /* EACCES: this process's group is outside net.ipv4.ping_group_range. */
    throw_sys_error(env, -rc, syscall,
                    rc == -EACCES ? "PingSocket: ping sockets are not allowed for this group (net.ipv4.ping_group_range)"
                                  : family == 6 ? "PingSocket: cannot open an ICMPv6 datagram socket"
                                                : "PingSocket: cannot open an ICMP datagram socket");
    return NULL;
  }
  s->poll.data = s;
  s->handle_open = true;
  if (!nc_wrap(env, self, &s->base, &ping_socket_class)) {
    napi_delete_reference(env, s->rx_buffer_ab);
    napi_delete_reference(env, s->rx_lengths_ab);
    napi_delete_reference(env, s->rx_addresses_ab);
    s->base.finalized = true;
    shut(&s->base); /* frees s once the handle has closed */
    return NULL;
  }
  /* From here on the wrapper owns s and the fd. */
  rc = uv_poll_start(&s->poll, UV_READABLE, on_poll);
  if (rc != 0) {
    shut(&s->base);
    throw_sys_error(env, -rc, "uv_poll_start", "PingSocket: cannot poll its socket");
    return NULL;
  }
  nc_hold(&s->base, true);
  return self;
}

static const napi_property_descriptor methods[] = {
    {"send", NULL, js_send, NULL, NULL, NULL, napi_default_method, NULL},
};

const nc_class ping_socket_class = {
    .name = "PingSocket",
    .tag = {0x7463706970747302ULL, 0x50696e67536f636bULL},
    .construct = js_new,
    .methods = methods,
    .n_methods = sizeof methods / sizeof methods[0],
    .shut = shut,
    .apply_ref = apply_ref,
    .stats = stats,
    .release = release,
};

#endif /* __linux__ */
