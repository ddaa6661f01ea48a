/*
 * util.h - small server-side helpers: aborting allocators, clocks, bounded
 * string copy.  Server only: the terminal library returns errors instead.
 */
#ifndef SOKO_UTIL_H
#define SOKO_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)    ((a) < (b) ? (a) : (b))
#define MAX(a, b)    ((a) > (b) ? (a) : (b))

/* Allocate or abort: recovery paths nobody tests are worse than a crash,
 * and a crash never leaves a half-written ledger (STYLE.md §6). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);

/* Copies src into dst[cap], always NUL-terminated.  Returns strlen(src);
 * a result >= cap means src was truncated. */
size_t strlcpy_s(char *dst, const char *src, size_t cap);

/* Wall clock, UTC milliseconds since the epoch.  A function pointer so
 * tests can move time (STYLE.md §12). */
extern int64_t (*util_now_ms)(void);
/* Monotonic clock in microseconds, for timeouts and latencies. */
int64_t util_mono_us(void);

/* Constant-time comparison of a and b (both n bytes): 0 if equal. */
int util_ct_memcmp(const void *a, const void *b, size_t n);

/* Lower-case hex of n bytes into dst (2n+1 bytes). */
void util_hex(char *dst, const uint8_t *src, size_t n);

#endif
