/* AF_UNIX datagram sockets carrying one frame per datagram (the convention
 * of vfkit's unixSocketPath and qemu's -netdev dgram). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "addon.h"
#include "util.h"

/* Deep socket buffers absorb bursts (a TCP window's worth of frames) while
 * the other side is busy. Best effort: a smaller buffer is not an error. */
#define SOCKET_BUFFER (4 << 20)

static void size_buffers(int fd) {
  int size = SOCKET_BUFFER;
#ifdef SO_SNDBUFFORCE
  /* As root, go past net.core.{w,r}mem_max. */
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
#endif
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
#ifdef SO_RCVBUFFORCE
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
#endif
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

#ifndef SOCK_NONBLOCK
static int make_nonblocking_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return -1;
  return 0;
}
#endif

static int dgram_socket(void) {
#ifdef SOCK_NONBLOCK
  return socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd >= 0 && make_nonblocking_cloexec(fd) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
#endif
}

static void unix_address(struct sockaddr_un *a, const char *path) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  memcpy(a->sun_path, path, strlen(path) + 1); /* length checked by the caller */
}

/* openUnixDgram({ path?, peer? }) -> { fd } */
static napi_value open_unix_dgram(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], v;
  bool has_path, has_peer;
  struct sockaddr_un local, remote;
  char path[sizeof local.sun_path] = {0}, peer[sizeof remote.sun_path] = {0};
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !get_object_arg(env, argv[0], "options")) {
    if (argc < 1) napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"options\" argument must be an object");
    return NULL;
  }
  if (!get_prop(env, argv[0], "path", &v, &has_path)) return NULL;
  if (has_path && !get_string(env, v, "options.path", path, sizeof path)) return NULL;
  if (!get_prop(env, argv[0], "peer", &v, &has_peer)) return NULL;
  if (has_peer && !get_string(env, v, "options.peer", peer, sizeof peer)) return NULL;
  has_path = has_path && path[0] != '\0';
  has_peer = has_peer && peer[0] != '\0';

  int fd = dgram_socket();
  if (fd < 0) {
    throw_sys_error(env, errno, "socket", "cannot open a unix datagram socket");
    return NULL;
  }
  size_buffers(fd);
  char what[sizeof path + 64];
  if (has_path) {
    unix_address(&local, path);
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
      int e = errno;
      close(fd);
      snprintf(what, sizeof what, "cannot bind unix socket %s", path);
      throw_sys_error(env, e, "bind", what);
      return NULL;
    }
  }
  /* Without a peer the socket stays unconnected and the FrameDevice takes
   * the first sender as its peer. */
  unix_address(&remote, peer);
  if (has_peer && connect(fd, (struct sockaddr *)&remote, sizeof remote) < 0) {
    int e = errno;
    close(fd);
    if (has_path) unlink(path); /* ours: a retry would otherwise hit EADDRINUSE */
    snprintf(what, sizeof what, "cannot connect unix socket to %s", peer);
    throw_sys_error(env, e, "connect", what);
    return NULL;
  }
  napi_value result;
  if (napi_create_object(env, &result) != napi_ok || napi_create_int32(env, fd, &v) != napi_ok ||
      !set_named(env, result, "fd", v)) {
    close(fd);
    throw_napi_failure(env, "openUnixDgram result");
    return NULL;
  }
  return result;
}

/* openUnixDgramPair() -> { fds: [a, b] }: two connected sockets, for tests and
 * for handing one end to a child process. */
static napi_value open_unix_dgram_pair(napi_env env, napi_callback_info info) {
  int sv[2];
#ifdef SOCK_NONBLOCK
  int rc = socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
#else
  int rc = socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
  if (rc == 0 && (make_nonblocking_cloexec(sv[0]) < 0 || make_nonblocking_cloexec(sv[1]) < 0)) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    errno = e;
    rc = -1;
  }
#endif
  if (rc < 0) {
    throw_sys_error(env, errno, "socketpair", "cannot open a unix datagram socket pair");
    return NULL;
  }
  size_buffers(sv[0]);
  size_buffers(sv[1]);
  napi_value result, fds, a, b;
  if (napi_create_object(env, &result) != napi_ok || napi_create_array_with_length(env, 2, &fds) != napi_ok ||
      napi_create_int32(env, sv[0], &a) != napi_ok || napi_create_int32(env, sv[1], &b) != napi_ok ||
      napi_set_element(env, fds, 0, a) != napi_ok || napi_set_element(env, fds, 1, b) != napi_ok ||
      !set_named(env, result, "fds", fds)) {
    close(sv[0]);
    close(sv[1]);
    throw_napi_failure(env, "openUnixDgramPair result");
    return NULL;
  }
  return result;
}

napi_value unix_dgram_init(napi_env env, napi_value exports) {
  napi_value fn;
  NAPI_CALL(env, napi_create_function(env, "openUnixDgram", NAPI_AUTO_LENGTH, open_unix_dgram, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "openUnixDgram", fn));
  NAPI_CALL(env, napi_create_function(env, "openUnixDgramPair", NAPI_AUTO_LENGTH, open_unix_dgram_pair, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "openUnixDgramPair", fn));
  return exports;
}
