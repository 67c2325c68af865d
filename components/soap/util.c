/*
 * What the core's files share: errors, the model's arena, a growing text
 * buffer, and small helpers over libxml2 trees.
 */
#include "soap_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sc_fail(sc_err *e, int code, const char *fmt, ...) {
    if (e && !e->code) {
        va_list ap;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
        /* One line: a quoted document or server text may hold breaks. */
        for (char *p = e->msg; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
    }
    return -1;
}

/* ---- arena ---- */

struct sc_chunk {
    struct sc_chunk *next;
    size_t cap, used;
    max_align_t data[];
};

#define CHUNK_MIN (64u << 10)

void *sc_alloc(sc_arena *a, size_t n) {
    size_t align = sizeof(max_align_t);
    n = (n + align - 1) / align * align;
    if (!n)
        n = align;
    struct sc_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
        a->cap += cap;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

char *sc_strdup(sc_arena *a, const char *s) {
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = sc_alloc(a, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

void sc_arena_free(sc_arena *a) {
    struct sc_chunk *c = a->head;
    while (c) {
        struct sc_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = a->cap = 0;
}

/* ---- text buffer ---- */

static int buf_grow(sc_buf *b, size_t more) {
    if (b->oom)
        return -1;
    if (b->cap - b->len > more)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap - b->len <= more) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void sc_buf_add(sc_buf *b, const char *s, size_t n) {
    if (buf_grow(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void sc_buf_puts(sc_buf *b, const char *s) {
    sc_buf_add(b, s, strlen(s));
}

void sc_buf_printf(sc_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sc_buf_escape(sc_buf *b, const char *s, size_t n, int attr) {
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = attr ? "&quot;" : NULL;
            break;
        case '\r':
            /* A literal CR would be normalised away by the receiver. */
            rep = "&#13;";
            break;
        case '\n':
            rep = attr ? "&#10;" : NULL;
            break;
        case '\t':
            rep = attr ? "&#9;" : NULL;
            break;
        default:
            break;
        }
        if (rep) {
            sc_buf_add(b, s + start, i - start);
            sc_buf_puts(b, rep);
            start = i + 1;
        }
    }
    sc_buf_add(b, s + start, n - start);
}

void sc_buf_free(sc_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

/* ---- trees ---- */

int sc_is(const xmlNode *n, const char *ns, const char *local) {
    if (!n || n->type != XML_ELEMENT_NODE)
        return 0;
    if (local && strcmp((const char *)n->name, local))
        return 0;
    if (!ns)
        return 1;
    return n->ns && n->ns->href && !strcmp((const char *)n->ns->href, ns);
}

xmlNodePtr sc_first_elem(xmlNodePtr n) {
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return c;
    return NULL;
}

xmlNodePtr sc_next_elem(xmlNodePtr n) {
    for (xmlNodePtr c = n ? n->next : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return c;
    return NULL;
}

const char *sc_prop(const xmlNode *n, const char *name) {
    for (xmlAttrPtr a = n ? n->properties : NULL; a; a = a->next) {
        if (a->ns || strcmp((const char *)a->name, name))
            continue;
        if (a->children && a->children->type == XML_TEXT_NODE &&
            !a->children->next)
            return (const char *)a->children->content;
        return a->children ? (const char *)a->children->content : "";
    }
    return NULL;
}

int sc_ncname(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    if (!p || !*p || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.')
        return 0;
    for (; *p; p++)
        if (!(*p >= 0x80 || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return 0;
    return 1;
}
