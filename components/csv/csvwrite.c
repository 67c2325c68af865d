/* Field quoting and the formula guard; see csvwrite.h. */
#include "csvwrite.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int csv_buf_add(csv_buf *b, const void *s, size_t n) {
    if (b->cap - b->len <= n) {
        if (n >= SIZE_MAX / 2 - b->len)
            return -1;
        size_t cap = b->cap ? b->cap : 1024;
        while (cap - b->len <= n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

void csv_buf_free(csv_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int csv_formula_like(const char *s, size_t n) {
    if (n == 0)
        return 0;
    switch (s[0]) {
    case '=':
    case '+':
    case '-':
    case '@':
    case '\t':
    case '\r':
    case '\0':
        return 1;
    default:
        return 0;
    }
}

static int blank(char c) {
    return c == ' ' || c == '\t';
}

int csv_write_field(csv_buf *b, const char *s, size_t n, int text,
                    const csv_write_options *o) {
    int guard = text && o->escape_formulas && csv_formula_like(s, n);
    int quote = n > 0 && ((!guard && blank(s[0])) || blank(s[n - 1]));
    /* U+FEFF first in the output would be read as a byte order mark. */
    quote = quote || (!guard && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0);
    for (size_t i = 0; i < n && !quote; i++) {
        unsigned char c = (unsigned char)s[i];
        quote = c == o->delimiter || c == o->quote || c == '\r' || c == '\n';
    }
    if (!quote) {
        if (guard && csv_buf_add(b, "'", 1))
            return -1;
        return csv_buf_add(b, s, n);
    }
    if (csv_buf_add(b, &o->quote, 1) || (guard && csv_buf_add(b, "'", 1)))
        return -1;
    /* Copy runs up to each quote, writing the quote twice. */
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] != o->quote)
            continue;
        if (csv_buf_add(b, s + from, i + 1 - from))
            return -1;
        from = i;
    }
    if (csv_buf_add(b, s + from, n - from))
        return -1;
    return csv_buf_add(b, &o->quote, 1);
}
