/* POSIX <sys/uio.h>: the part the addon uses. */
#ifndef TCPIP_DARWIN_SYS_UIO_H
#define TCPIP_DARWIN_SYS_UIO_H

#include <stddef.h>

struct iovec {
  void *iov_base;
  size_t iov_len;
};

#endif
