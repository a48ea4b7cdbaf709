/* A small size-class allocator over the instance's linear memory.
 *
 * lwIP runs with MEM_LIBC_MALLOC/MEMP_MEM_MALLOC, so every pbuf, segment and
 * PCB comes from here. Requests round up to one of four classes per power of
 * two (at most 25% slack), each class keeps a LIFO free list, and fresh
 * blocks are carved from the top of memory, which grows in 64 KiB pages on
 * demand. Memory is never returned to the host (wasm memories cannot shrink),
 * but freed blocks are reused by the next request of their class.
 *
 * The memory budget (tt_mem_set_budget, the stack's memoryBudget option)
 * bounds the heap: no block is carved beyond it, so the instance's memory
 * stays within the budget plus its static data and stack. Below it, three
 * tiers keep the stack able to make progress when memory runs short:
 *   - what the host asks for that can wait or fail (data written to a TCP
 *     socket, UDP datagrams, new connections: tt_mem_mode MEM_OPTIONAL)
 *     stops at the budget less a reserve (MEM_RESERVE below);
 *   - received frames waiting for input (MEM_RX) stop OUTPUT_RESERVE short
 *     of the budget;
 *   - everything lwIP allocates while it processes input and timers (the
 *     ACKs it sends, retransmissions, the segments of a received frame)
 *     may use the budget to its end.
 * So at the budget a stack still takes in ACKs, which free its send
 * buffers, and answers them; writes wait until memory drains. */
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

/* Bytes in live blocks (their classes' sizes) and the budget; 0: none. */
static size_t in_use;
static size_t budget;
static size_t reserve;
/* Set when an optional allocation is refused, cleared once memory in use
 * has fallen to low_water: writers told to wait are woken only then, so a
 * woken writer that fails again waits again rather than spinning. */
static int refused;
static size_t low_water;
#define OUTPUT_RESERVE (64u * 1024u)

enum { MEM_ESSENTIAL = 0, MEM_RX = 1, MEM_OPTIONAL = 2 };
/* Set by the glue around host calls whose allocations are not essential. */
int tt_mem_mode;

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

static struct header *pop(unsigned c) {
  struct header *h = (struct header *)((unsigned char *)free_lists[c] - HEADER);
  if (h->magic != MAGIC_FREE) tt_assert_failed("malloc: free list corrupted", __LINE__, __FILE__);
  free_lists[c] = *(void **)free_lists[c];
  return h;
}

static size_t heap_used(void) { return heap_top ? heap_top - (uintptr_t)&__heap_base : 0; }

void *malloc(size_t n) {
  if (n == 0) n = 1;
  if (n > 0x40000000u) return NULL;
  unsigned c = class_of(n + HEADER);
  size_t bytes = class_bytes(c);
  if (budget) {
    size_t limit = tt_mem_mode == MEM_OPTIONAL ? budget - reserve : tt_mem_mode == MEM_RX ? budget - OUTPUT_RESERVE : budget;
    /* Once refused, optional allocations wait for low_water: a stack does
     * not flap between refusing and taking at the line. */
    if (in_use + bytes > limit || (tt_mem_mode == MEM_OPTIONAL && refused)) {
      if (tt_mem_mode == MEM_OPTIONAL) refused = 1;
      return NULL;
    }
  }
  struct header *h;
  if (free_lists[c]) {
    h = pop(c);
  } else {
    if (heap_top == 0) {
      heap_top = ((uintptr_t)&__heap_base + 7u) & ~(uintptr_t)7u;
      heap_end = __builtin_wasm_memory_size(0) * 65536;
    }
    h = NULL;
    if (budget && heap_used() + bytes > budget) {
      /* The heap is at the budget but its free blocks are of other sizes
       * (say, freed send buffers when a small segment is asked for): take
       * the smallest larger one rather than fail. The block keeps its class. */
      for (unsigned d = c + 1; d < NUM_CLASSES && h == NULL; d++) {
        if (free_lists[d]) h = pop(d);
      }
      if (h == NULL) {
        if (tt_mem_mode == MEM_OPTIONAL) refused = 1;
        return NULL;
      }
    } else {
      if (!grow_to(heap_top + bytes)) return NULL;
      h = (struct header *)heap_top;
      heap_top += bytes;
      h->size_class = c;
    }
  }
  h->magic = MAGIC_USED;
  in_use += class_bytes(h->size_class);
  return (unsigned char *)h + HEADER;
}

void free(void *p) {
  if (p == NULL) return;
  struct header *h = (struct header *)((unsigned char *)p - HEADER);
  if (h->magic != MAGIC_USED) tt_assert_failed("free: not an allocated block (double free?)", __LINE__, __FILE__);
  h->magic = MAGIC_FREE;
  in_use -= class_bytes(h->size_class);
  if (refused && in_use <= low_water) refused = 0;
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
__attribute__((export_name("tt_heap_used"))) size_t tt_heap_used(void) { return heap_used(); }

/* Bytes in blocks in use now. */
__attribute__((export_name("tt_mem_in_use"))) size_t tt_mem_in_use(void) { return in_use; }

/* Sets the budget (bytes; at least 1 MiB, checked by the host). The reserve
 * kept from optional allocations is an eighth of it, at least 256 KiB: room
 * for the ACKs, retransmissions and timers of every open connection. */
__attribute__((export_name("tt_mem_set_budget"))) void tt_mem_set_budget(uint32_t bytes) {
  budget = bytes;
  reserve = bytes / 8 < 256u * 1024u ? 256u * 1024u : bytes / 8;
  low_water = budget - reserve - reserve / 2;
}

/* Whether optional allocations are being refused: new connections are then
 * refused too (lwIP's tcp_alloc would otherwise free memory by killing an
 * idle connection of the same priority). A block's worth of headroom is
 * asked for, so a connection is not taken only to fail its first write. */
int tt_mem_tight(void) { return refused || (budget != 0 && in_use + 4096u > budget - reserve); }

__attribute__((export_name("tt_mem_tight"))) uint32_t tt_mem_tight_export(void) { return (uint32_t)tt_mem_tight(); }
