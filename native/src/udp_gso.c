/* UDP generic segmentation offload (Linux 4.18+, UDP_SEGMENT): many equal
 * datagrams handed to the kernel in one sendmsg(), cut apart as late as the
 * path allows (on a veth, at the receiving socket). VXLAN sends a TCP bulk
 * transfer as runs of equal-sized packets; one call per run instead of one
 * per packet saves the system call and one trip through UDP, IP and the
 * device for every packet but the first. The fd is a UDP socket someone
 * else owns (Node's dgram); this only writes to it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>

#include "addon.h"
#include "util.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

/* udpSendSegments(fd, buffer, length, segmentSize, address, port) -> 0 or an
 * errno (a number: EAGAIN, EIO without checksum offload on the route,
 * EAFNOSUPPORT for an address that is not a bare literal, ...);
 * the caller decides what a failure means. Throws only for bad arguments. */
static napi_value udp_send_segments(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "udpSendSegments(fd, buffer, length, segmentSize, address, port)");
    return NULL;
  }
  uint32_t fd, length, segment, port;
  uint8_t *data;
  size_t size;
  char address[INET6_ADDRSTRLEN];
  if (!get_uint32(env, argv[0], "fd", &fd) || !get_u8_array(env, argv[1], "buffer", &data, &size) ||
      !get_uint32(env, argv[2], "length", &length) || !get_uint32(env, argv[3], "segmentSize", &segment) ||
      !get_string(env, argv[4], "address", address, sizeof address) || !get_uint32(env, argv[5], "port", &port)) {
    return NULL;
  }
  if (length > size || length == 0 || segment == 0 || segment > 0xffff || port == 0 || port > 0xffff) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "udpSendSegments: length, segmentSize or port out of range");
    return NULL;
  }
  struct sockaddr_storage to;
  socklen_t to_len;
  memset(&to, 0, sizeof to);
  struct sockaddr_in *v4 = (struct sockaddr_in *)&to;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&to;
  if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    to_len = sizeof *v4;
  } else if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    to_len = sizeof *v6;
  } else {
    /* Not a bare literal (a scoped fe80::1%eth0): for the caller's own path. */
    napi_value result;
    NAPI_CALL(env, napi_create_int32(env, EAFNOSUPPORT, &result));
    return result;
  }
  struct iovec iov = {.iov_base = data, .iov_len = length};
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = {.msg_name = &to, .msg_namelen = to_len, .msg_iov = &iov, .msg_iovlen = 1};
  if (length > segment) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t gso = (uint16_t)segment;
    memcpy(CMSG_DATA(c), &gso, sizeof gso);
  }
  ssize_t n;
  do n = sendmsg((int)fd, &msg, 0);
  while (n < 0 && errno == EINTR);
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, n < 0 ? errno : 0, &result));
  return result;
}

napi_value udp_gso_init(napi_env env, napi_value exports) {
  napi_value fn;
  NAPI_CALL(env, napi_create_function(env, "udpSendSegments", NAPI_AUTO_LENGTH, udp_send_segments, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "udpSendSegments", fn));
  return exports;
}
