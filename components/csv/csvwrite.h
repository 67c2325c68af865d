/*
 * csvwrite: how the csv component writes one field, and the growing buffer
 * it writes into.
 *
 * Owns: RFC 4180 quoting and the formula-injection guard. Must not touch:
 * the ferry API, jansson, I/O (plain C, tested on its own in tests/csv).
 */
#ifndef FERRY_CSV_CSVWRITE_H
#define FERRY_CSV_CSVWRITE_H

#include <stddef.h>

/* A growing byte buffer (malloc'd data, always NUL terminated once
 * anything was appended). */
typedef struct csv_buf {
    char *data;
    size_t len, cap;
} csv_buf;

/* Appends n bytes of s (borrowed). Returns 0, or -1 out of memory. */
int csv_buf_add(csv_buf *b, const void *s, size_t n);
void csv_buf_free(csv_buf *b);

typedef struct csv_write_options {
    unsigned char delimiter; /* ASCII, neither CR nor LF */
    unsigned char quote;     /* ASCII, neither CR nor LF nor the delimiter */
    int escape_formulas;
} csv_write_options;

/*
 * Nonzero if a spreadsheet would read text of n bytes at s as a formula:
 * it starts with '=', '+', '-', '@', a tab, a CR or a NUL.
 */
int csv_formula_like(const char *s, size_t n);

/*
 * Appends one field holding n bytes of s. text is nonzero for text taken
 * from a string (escape_formulas then prefixes formula-like text with a
 * single quote ') and zero for what the writer formats itself (numbers,
 * true, false), which is never prefixed. The field is quoted only if it
 * must be: it holds the delimiter, the quote, CR or LF, starts or ends
 * with a space or a tab (which a reader that trims would lose), or starts
 * with U+FEFF (which first in a file reads as a byte order mark); a quote
 * inside is doubled. Returns 0, or -1 out of memory.
 */
int csv_write_field(csv_buf *b, const char *s, size_t n, int text,
                    const csv_write_options *o);

#endif
