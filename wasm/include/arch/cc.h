/* lwIP port: compiler and platform definitions for wasm32 (clang, freestanding). */
#ifndef TCPIP_TS_ARCH_CC_H
#define TCPIP_TS_ARCH_CC_H

#define BYTE_ORDER LITTLE_ENDIAN

/* No libc on this target: lwIP must not reach for <inttypes.h>, <ctype.h>,
 * <unistd.h> or printf. Our own <string.h>/<stdlib.h> cover what remains. */
#define LWIP_NO_INTTYPES_H 1
#define LWIP_NO_CTYPE_H 1
#define LWIP_NO_UNISTD_H 1
#define X8_F  "02x"
#define U16_F "u"
#define S16_F "d"
#define X16_F "x"
#define U32_F "u"
#define S32_F "d"
#define X32_F "x"
#define SZT_F "zu"

/* The host sees an assert as an `error` event on the stack carrying this
 * message; the trap that follows ends only this instance. */
void tt_assert_failed(const char *message, int line, const char *file) __attribute__((noreturn));
#define LWIP_PLATFORM_ASSERT(x) tt_assert_failed((x), __LINE__, __FILE__)
/* Diagnostics are compiled out: a parser never logs (see STYLE.md). */
#define LWIP_PLATFORM_DIAG(x) do { } while (0)

/* lwIP's LWIP_RAND: a generator inside the instance keyed from the host's
 * CSPRNG at creation (src/glue_random.c): ephemeral ports, IPv4 and IPv6
 * fragment IDs, DNS query IDs and ports, DHCP xids. */
unsigned int tt_rand32(void);
#define LWIP_RAND() ((u32_t)tt_rand32())

/* Byte swaps as single instructions instead of lwIP's out-of-line helpers
 * (they showed up at ~2% of a bulk-transfer profile). */
#define lwip_htons(x) ((u16_t)__builtin_bswap16((u16_t)(x)))
#define lwip_htonl(x) ((u32_t)__builtin_bswap32((u32_t)(x)))

#endif
