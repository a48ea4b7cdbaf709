/* C11 <string.h>: the part the addon uses. */
#ifndef TCPIP_DARWIN_STRING_H
#define TCPIP_DARWIN_STRING_H

#include <stddef.h>

void *memcpy(void *restrict s1, const void *restrict s2, size_t n);
void *memmove(void *s1, const void *s2, size_t n);
void *memset(void *s, int c, size_t n);
int strcmp(const char *s1, const char *s2);
int strncmp(const char *s1, const char *s2, size_t n);
size_t strlen(const char *s);
char *strerror(int errnum);

#endif
