/* <errno.h> as on macOS (errno is a per-thread lvalue behind __error()). */
#ifndef TCPIP_DARWIN_ERRNO_H
#define TCPIP_DARWIN_ERRNO_H

extern int *__error(void);
#define errno (*__error())

#endif
