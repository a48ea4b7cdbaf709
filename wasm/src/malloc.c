/* A small size-class allocator over the instance's linear memory.
 *
 * lwIP runs with MEM_LIBC_MALLOC/MEMP_MEM_MALLOC, so every pbuf, segment and
 * PCB comes from here. Requests round up to one of four classes per power of
 * two (at most 25% slack), each class keeps a LIFO free list, and fresh
 * blocks are carved from the top of memory, which grows in 64 KiB pages on
 * demand. Memory is never returned to the host (wasm memories cannot shrink),
 * but freed blocks are reused by the next request of their class. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

extern unsigned char __heap_base;

#define HEADER 8u
#define MAGIC_USED 0xA110C8EDu
#define MAGIC_FREE 0xF4EEB10Cu
#define NUM_CLASSES 112

struct header { uint32_t size_class; uint32_t magic; };

static void *free_lists[NUM_CLASSES];
static uintptr_t heap_top;
static uintptr_t heap_end;

void tt_assert_failed(const char *message, int line, const char *file) __attribute__((noreturn));

/* Classes 0-3 are 16..64 bytes in steps of 16; above 64 each power-of-two
 * range (2^k, 2^(k+1)] is split into four steps of 2^(k-2). */
static unsigned class_of(size_t n) {
  if (n <= 64) return (unsigned)((n + 15) / 16) - 1;
  unsigned k = 31u - (unsigned)__builtin_clz((unsigned)(n - 1));
  unsigned sub = (unsigned)((n - 1) >> (k - 2)) & 3u;
  return 4u + (k - 6u) * 4u + sub;
}

static size_t class_bytes(unsigned c) {
  if (c < 4) return (size_t)(c + 1) * 16;
  unsigned k = (c - 4) / 4 + 6, sub = (c - 4) % 4;
  return ((size_t)1 << k) + ((size_t)(sub + 1) << (k - 2));
}

static int grow_to(uintptr_t end) {
  if (end <= heap_end) return 1;
  size_t have = __builtin_wasm_memory_size(0);
  size_t need = (end + 65535) / 65536;
  if (need > have && __builtin_wasm_memory_grow(0, need - have) == (size_t)-1) return 0;
  heap_end = need * 65536;
  return 1;
}

void *malloc(size_t n) {
  if (n == 0) n = 1;
  if (n > 0x40000000u) return NULL;
  unsigned c = class_of(n + HEADER);
  struct header *h;
  if (free_lists[c]) {
    h = (struct header *)((unsigned char *)free_lists[c] - HEADER);
    if (h->magic != MAGIC_FREE) tt_assert_failed("malloc: free list corrupted", __LINE__, __FILE__);
    free_lists[c] = *(void **)free_lists[c];
  } else {
    if (heap_top == 0) {
      heap_top = ((uintptr_t)&__heap_base + 7u) & ~(uintptr_t)7u;
      heap_end = __builtin_wasm_memory_size(0) * 65536;
    }
    size_t bytes = class_bytes(c);
    if (!grow_to(heap_top + bytes)) return NULL;
    h = (struct header *)heap_top;
    heap_top += bytes;
    h->size_class = c;
  }
  h->magic = MAGIC_USED;
  return (unsigned char *)h + HEADER;
}

void free(void *p) {
  if (p == NULL) return;
  struct header *h = (struct header *)((unsigned char *)p - HEADER);
  if (h->magic != MAGIC_USED) tt_assert_failed("free: not an allocated block (double free?)", __LINE__, __FILE__);
  h->magic = MAGIC_FREE;
  *(void **)p = free_lists[h->size_class];
  free_lists[h->size_class] = p;
}

void *calloc(size_t count, size_t size) {
  if (size != 0 && count > ((size_t)-1) / size) return NULL;
  void *p = malloc(count * size);
  if (p) memset(p, 0, count * size);
  return p;
}

/* Bytes of linear memory handed out so far (for memory statistics). */
__attribute__((export_name("tt_heap_used"))) size_t tt_heap_used(void) {
  return heap_top ? heap_top - (uintptr_t)&__heap_base : 0;
}
