/* libdispatch, as documented by Apple (developer.apple.com/documentation/dispatch).
 * Only what tcpip-ts calls. In C, dispatch objects are pointers to opaque
 * structs, and dispatch_object_t is a transparent union of them. */
#ifndef TCPIP_DARWIN_DISPATCH_H
#define TCPIP_DARWIN_DISPATCH_H

#include <stddef.h>

typedef struct dispatch_queue_s *dispatch_queue_t;
typedef struct dispatch_queue_attr_s *dispatch_queue_attr_t;
typedef union {
  struct dispatch_object_s *_do;
  struct dispatch_queue_s *_dq;
  struct dispatch_queue_attr_s *_dqa;
} dispatch_object_t __attribute__((__transparent_union__));

typedef void (^dispatch_block_t)(void);

#define DISPATCH_QUEUE_SERIAL NULL

dispatch_queue_t dispatch_queue_create(const char *label, dispatch_queue_attr_t attr);
void dispatch_async(dispatch_queue_t queue, dispatch_block_t block);
void dispatch_retain(dispatch_object_t object);
void dispatch_release(dispatch_object_t object);

#endif
