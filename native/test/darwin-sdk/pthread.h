/* POSIX <pthread.h>: the mutex calls the addon uses, over opaque types
 * sized as on macOS (64-bit: a long signature and 56 bytes). */
#ifndef TCPIP_DARWIN_PTHREAD_H
#define TCPIP_DARWIN_PTHREAD_H

typedef struct {
  long __sig;
  char __opaque[56];
} pthread_mutex_t;
typedef struct {
  long __sig;
  char __opaque[8];
} pthread_mutexattr_t;

int pthread_mutex_init(pthread_mutex_t *restrict mutex, const pthread_mutexattr_t *restrict attr);
int pthread_mutex_destroy(pthread_mutex_t *mutex);
int pthread_mutex_lock(pthread_mutex_t *mutex);
int pthread_mutex_unlock(pthread_mutex_t *mutex);

#endif
