/* openTap: a TAP (Ethernet) or TUN (IP) device from /dev/net/tun, optionally
 * created inside another network namespace. */
#ifdef __linux__

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addon.h"
#include "util.h"

typedef struct tap_request {
  char name[IFNAMSIZ];
  bool tun;
  bool has_netns;
  char netns[PATH_MAX];
  bool has_mtu;
  uint32_t mtu;
  bool up;
  bool offload;
} tap_request;

/* The first failure: errno, the syscall, and what it was doing. */
typedef struct failure {
  int err;
  const char *syscall;
  char what[PATH_MAX + 128];
} failure;

__attribute__((format(printf, 3, 4)))
static void fail(failure *f, const char *syscall, const char *fmt, ...) {
  f->err = errno;
  f->syscall = syscall;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->what, sizeof f->what, fmt, ap);
  va_end(ap);
}

/* Everything done inside the target namespace. Returns the device fd or -1. */
static int open_device(const tap_request *r, char *name_out, failure *f) {
  const char *kind = r->tun ? "tun" : "tap";
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    fail(f, "open", "cannot open /dev/net/tun");
    return -1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = (short)((r->tun ? IFF_TUN : IFF_TAP) | IFF_NO_PI | (r->offload ? IFF_VNET_HDR : 0));
  memcpy(ifr.ifr_name, r->name, sizeof ifr.ifr_name);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    if (r->name[0]) fail(f, "ioctl", "cannot create or attach %s device %s", kind, r->name);
    else fail(f, "ioctl", "cannot create a %s device", kind);
    close(fd);
    return -1;
  }
  memcpy(name_out, ifr.ifr_name, IFNAMSIZ);
  name_out[IFNAMSIZ - 1] = '\0';

  if (r->offload) {
    /* Offloads as a virtio-net device negotiates them: every frame carries a
     * struct virtio_net_hdr (10 bytes: no num_buffers, as without
     * VIRTIO_NET_F_MRG_RXBUF); the kernel may leave TCP/UDP checksums partial
     * (TUN_F_CSUM) and hand over TCP segments of up to 64 KiB (TSO4/6), and
     * accepts the same from us. No TUN_F_TSO_ECN, UFO or USO: the kernel
     * segments those in software before they reach us. */
    int hdr_size = 10;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_size) < 0) {
      fail(f, "ioctl", "cannot set the virtio-net header size of %s", name_out);
      close(fd);
      return -1;
    }
    if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) < 0) {
      fail(f, "ioctl", "cannot turn on checksum and TSO offloads of %s", name_out);
      close(fd);
      return -1;
    }
  }

  if (r->has_mtu || r->up) {
    /* ioctls act on the namespace of the socket they go through. */
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) {
      fail(f, "socket", "cannot open a socket to configure %s", name_out);
      close(fd);
      return -1;
    }
    struct ifreq q;
    memset(&q, 0, sizeof q);
    memcpy(q.ifr_name, name_out, IFNAMSIZ);
    if (r->has_mtu) {
      q.ifr_mtu = (int)r->mtu;
      if (ioctl(sock, SIOCSIFMTU, &q) < 0) {
        fail(f, "ioctl", "cannot set the MTU of %s to %u", name_out, r->mtu);
        goto config_failed;
      }
    }
    if (r->up) {
      if (ioctl(sock, SIOCGIFFLAGS, &q) < 0) {
        fail(f, "ioctl", "cannot read the flags of %s", name_out);
        goto config_failed;
      }
      q.ifr_flags |= IFF_UP;
      if (ioctl(sock, SIOCSIFFLAGS, &q) < 0) {
        fail(f, "ioctl", "cannot bring %s up", name_out);
        goto config_failed;
      }
    }
    close(sock);
    return fd;
  config_failed:
    close(sock);
    close(fd);
    return -1;
  }
  return fd;
}

typedef struct netns_job {
  const tap_request *r;
  char *name_out;
  failure *f;
  int fd;
} netns_job;

static void *open_in_netns_thread(void *arg) {
  netns_job *job = arg;
  const tap_request *r = job->r;
  job->fd = -1;
  int target = open(r->netns, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    fail(job->f, "open", "cannot open network namespace %s", r->netns);
    return NULL;
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    fail(job->f, "setns", "cannot enter network namespace %s", r->netns);
    close(target);
    return NULL;
  }
  close(target);
  /* The device belongs to the namespace it was opened in; its fd serves
   * every thread of the process once this one has gone. */
  job->fd = open_device(r, job->name_out, job->f);
  return NULL;
}

/* setns() moves only the calling thread, so a thread of its own enters the
 * namespace, opens the device there and ends. The JS thread never leaves
 * its namespace, so nothing has to bring it back: going back is often not
 * allowed at all, e.g. for a helper that rootless podman starts inside its
 * user namespace, which may enter the container's namespace (owned by that
 * user namespace) but not return to the host's (owned by the initial one).
 * slirp4netns answers the same problem with a child process and an fd
 * passed over a socket; a thread needs neither. */
static int open_in_netns(const tap_request *r, char *name_out, failure *f) {
  netns_job job = {.r = r, .name_out = name_out, .f = f, .fd = -1};
  pthread_t thread;
  int err = pthread_create(&thread, NULL, open_in_netns_thread, &job);
  if (err != 0) {
    errno = err;
    fail(f, "pthread_create", "cannot start a thread to enter network namespace %s", r->netns);
    return -1;
  }
  pthread_join(thread, NULL);
  return job.fd;
}

static bool parse_request(napi_env env, napi_value opts, tap_request *r) {
  napi_value v;
  bool present;
  memset(r, 0, sizeof *r);
  if (!get_object_arg(env, opts, "options")) return false;
  if (!get_prop(env, opts, "name", &v, &present)) return false;
  if (present && !get_string(env, v, "options.name", r->name, sizeof r->name)) return false;
  if (!get_prop(env, opts, "tun", &v, &present) || !get_bool(env, v, "options.tun", &r->tun)) return false;
  if (!get_prop(env, opts, "netns", &v, &present)) return false;
  if (present) {
    if (!get_string(env, v, "options.netns", r->netns, sizeof r->netns)) return false;
    r->has_netns = true;
  }
  if (!get_prop(env, opts, "mtu", &v, &present)) return false;
  if (present) {
    if (!get_uint32(env, v, "options.mtu", &r->mtu)) return false;
    r->has_mtu = true;
  }
  if (!get_prop(env, opts, "up", &v, &present)) return false;
  if (present && !get_bool(env, v, "options.up", &r->up)) return false;
  if (!get_prop(env, opts, "offload", &v, &present)) return false;
  if (present && !get_bool(env, v, "options.offload", &r->offload)) return false;
  return true;
}

/* openTap({ name?, tun, netns?, mtu?, up?, offload? }) -> { fd, name } */
static napi_value open_tap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tap_request r;
  if (argc < 1 || !parse_request(env, argv[0], &r)) {
    if (argc < 1) napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"options\" argument must be an object");
    return NULL;
  }
  char name[IFNAMSIZ] = {0};
  failure f = {0};
  int fd = r.has_netns ? open_in_netns(&r, name, &f) : open_device(&r, name, &f);
  if (fd < 0) {
    throw_sys_error(env, f.err, f.syscall, f.what);
    return NULL;
  }
  napi_value result, v;
  if (napi_create_object(env, &result) != napi_ok || napi_create_int32(env, fd, &v) != napi_ok ||
      !set_named(env, result, "fd", v) || napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v) != napi_ok ||
      !set_named(env, result, "name", v)) {
    close(fd);
    throw_napi_failure(env, "openTap result");
    return NULL;
  }
  return result;
}

napi_value tap_init(napi_env env, napi_value exports) {
  napi_value fn;
  NAPI_CALL(env, napi_create_function(env, "openTap", NAPI_AUTO_LENGTH, open_tap, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "openTap", fn));
  return exports;
}

#endif /* __linux__ */
