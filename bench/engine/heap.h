/*
 * Heap accounting for the benchmark binary: malloc, calloc, realloc, free
 * and the aligned allocators are replaced (in this executable only) by
 * wrappers around glibc's own that keep the bytes in use (by
 * malloc_usable_size) and the highest value reached. Every library in the
 * process (jansson, libjq, SQLite, the engine) allocates through them.
 *
 * Not thread-safe: the benchmark runs on one thread. Under AddressSanitizer
 * nothing is replaced and heap_available() is 0.
 */
#ifndef FERRY_BENCH_HEAP_H
#define FERRY_BENCH_HEAP_H

#include <stddef.h>

/* Nonzero if the counters below are live. */
int heap_available(void);
/* Bytes currently allocated (usable sizes). */
size_t heap_in_use(void);
/* The highest heap_in_use() since the last heap_reset_peak(). */
size_t heap_peak(void);
/* Starts a new peak at the current use. */
void heap_reset_peak(void);

#endif
