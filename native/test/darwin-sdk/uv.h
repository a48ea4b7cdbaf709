/* libuv (docs.libuv.org): the handles and calls the addon's macOS files use.
 * Handle structs are opaque here beyond their public `data` field. */
#ifndef TCPIP_DARWIN_UV_H
#define TCPIP_DARWIN_UV_H

#include <stddef.h>
#include <stdint.h>

typedef struct uv_loop_s uv_loop_t;
typedef struct uv_handle_s uv_handle_t;
typedef struct uv_timer_s uv_timer_t;

struct uv_handle_s {
  void *data;
  void *opaque_[15];
};
struct uv_timer_s {
  void *data;
  void *opaque_[23];
};

typedef void (*uv_close_cb)(uv_handle_t *handle);
typedef void (*uv_timer_cb)(uv_timer_t *handle);

int uv_timer_init(uv_loop_t *loop, uv_timer_t *handle);
int uv_timer_start(uv_timer_t *handle, uv_timer_cb cb, uint64_t timeout, uint64_t repeat);
int uv_timer_stop(uv_timer_t *handle);
void uv_close(uv_handle_t *handle, uv_close_cb close_cb);
void uv_ref(uv_handle_t *handle);
void uv_unref(uv_handle_t *handle);
char *uv_err_name_r(int err, char *buf, size_t buflen);

#endif
