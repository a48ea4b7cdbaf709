/* C11 <stdio.h>: the part the addon uses. */
#ifndef TCPIP_DARWIN_STDIO_H
#define TCPIP_DARWIN_STDIO_H

#include <stdarg.h>
#include <stddef.h>

int snprintf(char *restrict s, size_t n, const char *restrict format, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *restrict s, size_t n, const char *restrict format, va_list ap) __attribute__((format(printf, 3, 0)));

#endif
