/*
 * The size of a value's JSON text (as FLOW_JSON_TEXT writes it) without
 * writing it. Recording a step keeps only a bounded prefix of its input
 * and output but notes their full size; formatting a megabyte of JSON to
 * learn its length costs tens of milliseconds, counting it a fraction of
 * that, and a value passed from step to step is counted once (see
 * flow_size_memo).
 */
#include "flow.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* As jansson's dump_string without JSON_ENSURE_ASCII / JSON_ESCAPE_SLASH:
 * '"' and '\\' and the control characters are escaped. */
static size_t string_size(const char *s, size_t n) {
    size_t size = 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' ||
            c == '\r' || c == '\t')
            size += 2;
        else if (c < 0x20)
            size += 6; /* \u00XX */
        else
            size += 1;
    }
    return size;
}

/* As jansson's jsonp_dtostr with JSON_REAL_PRECISION(15): "%.15g", ".0"
 * added when there is neither '.' nor 'e', and the exponent written
 * without '+' or leading zeros. */
static size_t real_size_printed(double d) {
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "%.15g", d);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return 0;
    size_t len = (size_t)n;
    char *start = strchr(buf, 'e');
    if (!strchr(buf, '.') && !start)
        return len + 2;
    if (start) {
        start++;
        char *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        len -= (size_t)(end - start);
    }
    return len;
}

/* Formatting a double is most of the cost of counting a value's text
 * (glibc's exact decimal conversion), and real data repeats its numbers:
 * readings in tenths, prices in cents. Sizes already worked out are kept
 * by the double's bits, per thread, in a small direct-mapped table; a
 * miss formats the number as before, so the size is always exact. */
#define REAL_MEMO 1024

static size_t real_size(double d) {
    static _Thread_local struct {
        uint64_t bits;
        uint32_t size; /* 0: empty slot */
    } memo[REAL_MEMO];
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    uint64_t h = (bits ^ (bits >> 29)) * 0x9E3779B97F4A7C15u;
    size_t slot = (size_t)(h >> 54) & (REAL_MEMO - 1);
    if (memo[slot].size && memo[slot].bits == bits)
        return memo[slot].size;
    size_t size = real_size_printed(d);
    memo[slot].bits = bits;
    memo[slot].size = (uint32_t)size;
    return size;
}

/* The digits of a json_int_t, with its sign, as "%lld" writes them. */
static size_t integer_size(json_int_t v) {
    size_t size = 1;
    unsigned long long u;
    if (v < 0) {
        size++;
        u = 0ull - (unsigned long long)v;
    } else {
        u = (unsigned long long)v;
    }
    while (u >= 10) {
        u /= 10;
        size++;
    }
    return size;
}

static size_t memo_find(const flow_size_memo *m, const json_t *v) {
    for (size_t i = 0; m && i < m->n; i++)
        if (m->items[i].v == v)
            return m->items[i].size;
    return 0;
}

size_t flow_text_size(const json_t *v, const flow_size_memo *memo) {
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_TRUE:
        return 4;
    case JSON_FALSE:
        return 5;
    case JSON_INTEGER:
        return integer_size(json_integer_value(v));
    case JSON_REAL:
        return real_size(json_real_value(v));
    case JSON_STRING:
        return string_size(json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        size_t known = memo_find(memo, v);
        if (known)
            return known;
        size_t n = json_array_size(v), size = 2 + (n ? n - 1 : 0);
        for (size_t i = 0; i < n; i++)
            size += flow_text_size(json_array_get(v, i), memo);
        return size;
    }
    case JSON_OBJECT: {
        size_t known = memo_find(memo, v);
        if (known)
            return known;
        size_t n = json_object_size(v), size = 2 + (n ? n - 1 : 0);
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            size += string_size(k, strlen(k)) + 1;
            size += flow_text_size(x, memo);
        }
        return size;
    }
    }
    return 0;
}

void flow_size_memo_put(flow_size_memo *m, json_t *v, size_t size) {
    if (!json_is_object(v) && !json_is_array(v))
        return;
    for (size_t i = 0; i < m->n; i++) {
        if (m->items[i].v == v) {
            m->items[i].uses++;
            return;
        }
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        void *p = realloc(m->items, cap * sizeof(*m->items));
        if (!p)
            return;
        m->items = p;
        m->cap = cap;
    }
    m->items[m->n].v = json_incref(v);
    m->items[m->n].size = size;
    m->items[m->n].uses = 1;
    m->n++;
}

size_t flow_size_memo_size(const flow_size_memo *m, const json_t *v) {
    return memo_find(m, v);
}

void flow_size_memo_drop(flow_size_memo *m, const json_t *v) {
    for (size_t i = 0; i < m->n; i++) {
        if (m->items[i].v == v) {
            if (--m->items[i].uses == 0) {
                json_decref(m->items[i].v);
                m->items[i] = m->items[--m->n];
            }
            return;
        }
    }
}

void flow_size_memo_clear(flow_size_memo *m) {
    for (size_t i = 0; i < m->n; i++)
        json_decref(m->items[i].v);
    free(m->items);
    memset(m, 0, sizeof(*m));
}
