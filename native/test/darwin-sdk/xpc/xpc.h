/* XPC objects, as documented by Apple (developer.apple.com/documentation/xpc).
 * Only what tcpip-ts calls; in C an xpc_object_t is an untyped pointer. */
#ifndef TCPIP_DARWIN_XPC_H
#define TCPIP_DARWIN_XPC_H

#include <stddef.h>
#include <stdint.h>

typedef void *xpc_object_t;

xpc_object_t xpc_dictionary_create(const char *const *keys, const xpc_object_t *values, size_t count);
void xpc_dictionary_set_uint64(xpc_object_t xdict, const char *key, uint64_t value);
void xpc_dictionary_set_string(xpc_object_t xdict, const char *key, const char *string);
uint64_t xpc_dictionary_get_uint64(xpc_object_t xdict, const char *key);
const char *xpc_dictionary_get_string(xpc_object_t xdict, const char *key);
xpc_object_t xpc_retain(xpc_object_t object);
void xpc_release(xpc_object_t object);

#endif
