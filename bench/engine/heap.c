/*
 * See heap.h. glibc allows replacing malloc: it then routes its own
 * internal allocations (strdup, fopen, ...) through the replacement too.
 * The __libc_* entry points reach the real allocator underneath.
 */
#include "heap.h"

#if defined(__SANITIZE_ADDRESS__)
#define BENCH_HEAP_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BENCH_HEAP_OFF 1
#endif
#endif

#ifdef BENCH_HEAP_OFF

int heap_available(void) {
    return 0;
}
size_t heap_in_use(void) {
    return 0;
}
size_t heap_peak(void) {
    return 0;
}
void heap_reset_peak(void) {}

#else

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t n);
extern void *__libc_valloc(size_t n);
extern void *__libc_pvalloc(size_t n);

static size_t in_use, peak;

static void *took(void *p) {
    if (p) {
        in_use += malloc_usable_size(p);
        if (in_use > peak)
            peak = in_use;
    }
    return p;
}

int heap_available(void) {
    return 1;
}
size_t heap_in_use(void) {
    return in_use;
}
size_t heap_peak(void) {
    return peak;
}
void heap_reset_peak(void) {
    peak = in_use;
}

void *malloc(size_t n) {
    return took(__libc_malloc(n));
}

void *calloc(size_t n, size_t m) {
    return took(__libc_calloc(n, m));
}

void free(void *p) {
    if (p) {
        in_use -= malloc_usable_size(p);
        __libc_free(p);
    }
}

void *realloc(void *p, size_t n) {
    size_t old = p ? malloc_usable_size(p) : 0;
    void *r = __libc_realloc(p, n);
    if (r) {
        in_use -= old;
        return took(r);
    }
    if (p && n == 0) /* freed */
        in_use -= old;
    return r;
}

void *memalign(size_t align, size_t n) {
    return took(__libc_memalign(align, n));
}

void *aligned_alloc(size_t align, size_t n) {
    return took(__libc_memalign(align, n));
}

int posix_memalign(void **out, size_t align, size_t n) {
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    void *p = took(__libc_memalign(align, n));
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *valloc(size_t n) {
    return took(__libc_valloc(n));
}

void *pvalloc(size_t n) {
    return took(__libc_pvalloc(n));
}

#endif
