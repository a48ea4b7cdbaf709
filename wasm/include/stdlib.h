/* The <stdlib.h> subset used here: the allocator of src/malloc.c. */
#ifndef TCPIP_TS_STDLIB_H
#define TCPIP_TS_STDLIB_H
#include <stddef.h>
void *malloc(size_t n);
void *calloc(size_t count, size_t size);
void free(void *p);
int atoi(const char *s);
#endif
