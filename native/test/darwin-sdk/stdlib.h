/* C11 <stdlib.h>: the part the addon uses. */
#ifndef TCPIP_DARWIN_STDLIB_H
#define TCPIP_DARWIN_STDLIB_H

#include <stddef.h>

void *malloc(size_t size);
void *calloc(size_t nmemb, size_t size);
void free(void *ptr);

#endif
