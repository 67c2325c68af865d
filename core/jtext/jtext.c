/* JSON text as jansson writes and reads it, faster (see jtext.h). */
#include "jtext.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ---- */

typedef struct out {
    char *p;
    size_t len, cap;
    int fail; /* out of memory, or something jansson should judge */
} out;

static int reserve(out *o, size_t n) {
    if (o->fail)
        return -1;
    if (o->cap - o->len >= n)
        return 0;
    size_t cap = o->cap ? o->cap : 256;
    while (cap - o->len < n) {
        if (cap > SIZE_MAX / 2) {
            o->fail = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(o->p, cap);
    if (!p) {
        o->fail = 1;
        return -1;
    }
    o->p = p;
    o->cap = cap;
    return 0;
}

static void put(out *o, const char *s, size_t n) {
    if (reserve(o, n) == 0) {
        memcpy(o->p + o->len, s, n);
        o->len += n;
    }
}

static void putc1(out *o, char c) {
    if (reserve(o, 1) == 0)
        o->p[o->len++] = c;
}

/* Per byte of a string: 0 copied as it is, 1 escaped, 2 the first byte of
 * a multi-byte UTF-8 sequence (checked), 3 never valid in UTF-8. */
static const unsigned char kind[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x70 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0x80 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0x90 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0xa0 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0xb0 */
    3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xc0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xd0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xe0 */
    2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0xf0 */
};

size_t jtext_utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (kind[c] != 2)
        return 0; /* a continuation byte, an overlong start, past F4 */
    size_t len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if (len == 3) {
        if (c == 0xe0 && s[1] < 0xa0)
            return 0; /* overlong */
        if (c == 0xed && s[1] >= 0xa0)
            return 0; /* a surrogate */
    } else if (len == 4) {
        if (c == 0xf0 && s[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xf4 && s[1] >= 0x90)
            return 0; /* past U+10FFFF */
    }
    return len;
}

static void put_string(out *o, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str, *end = s + n;
    if (reserve(o, n + 2))
        return;
    o->p[o->len++] = '"';
    while (s < end) {
        const unsigned char *run = s;
        while (s < end && kind[*s] == 0)
            s++;
        if (s > run)
            put(o, (const char *)run, (size_t)(s - run));
        if (s == end)
            break;
        switch (kind[*s]) {
        case 1: {
            char esc[8];
            const char *e = esc;
            size_t el = 2;
            switch (*s) {
            case '"':
                e = "\\\"";
                break;
            case '\\':
                e = "\\\\";
                break;
            case '\b':
                e = "\\b";
                break;
            case '\f':
                e = "\\f";
                break;
            case '\n':
                e = "\\n";
                break;
            case '\r':
                e = "\\r";
                break;
            case '\t':
                e = "\\t";
                break;
            default:
                snprintf(esc, sizeof(esc), "\\u%04X", *s);
                el = 6;
            }
            put(o, e, el);
            s++;
            break;
        }
        case 2: {
            size_t l = jtext_utf8_len(s, (size_t)(end - s));
            if (!l) {
                o->fail = 1; /* jansson refuses it: let it say so */
                return;
            }
            put(o, (const char *)s, l);
            s += l;
            break;
        }
        default:
            o->fail = 1;
            return;
        }
    }
    putc1(o, '"');
}

/* jansson's real format: "%.17g", with ".0" added when it would read back
 * as an integer, and the exponent without '+' or leading zeros. Anything
 * else (a locale's decimal comma) is left to jansson. */
static void put_real(out *o, double d) {
    char b[64];
    int n = snprintf(b, sizeof(b), "%.17g", d);
    if (n <= 0 || (size_t)n >= sizeof(b) - 3 || !isfinite(d)) {
        o->fail = 1;
        return;
    }
    size_t len = (size_t)n;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789.e+-", b[i])) {
            o->fail = 1;
            return;
        }
    char *e = strchr(b, 'e');
    if (!strchr(b, '.') && !e) {
        memcpy(b + len, ".0", 3);
        len += 2;
    }
    if (e) {
        char *start = e + 1, *stop = start + 1;
        if (*start == '-')
            start++;
        while (*stop == '0')
            stop++;
        if (stop != start) {
            memmove(start, stop, len - (size_t)(stop - b) + 1);
            len -= (size_t)(stop - start);
        }
    }
    put(o, b, len);
}

static void put_int(out *o, json_int_t v) {
    char b[24], *p = b + sizeof(b);
    unsigned long long u =
        v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put(o, p, (size_t)(b + sizeof(b) - p));
}

static void put_value(out *o, const json_t *v, int depth) {
    if (o->fail)
        return;
    if (depth > JTEXT_MAX_DEPTH) {
        o->fail = 1; /* deep, or a cycle: jansson tells them apart */
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        putc1(o, '{');
        int first = 1;
        for (void *it = json_object_iter((json_t *)v); it && !o->fail;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first)
                putc1(o, ',');
            first = 0;
            put_string(o, json_object_iter_key(it),
                       json_object_iter_key_len(it));
            putc1(o, ':');
            put_value(o, json_object_iter_value(it), depth + 1);
        }
        putc1(o, '}');
        break;
    }
    case JSON_ARRAY: {
        putc1(o, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n && !o->fail; i++) {
            if (i)
                putc1(o, ',');
            put_value(o, json_array_get(v, i), depth + 1);
        }
        putc1(o, ']');
        break;
    }
    case JSON_STRING:
        put_string(o, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        put_int(o, json_integer_value(v));
        break;
    case JSON_REAL:
        put_real(o, json_real_value(v));
        break;
    case JSON_TRUE:
        put(o, "true", 4);
        break;
    case JSON_FALSE:
        put(o, "false", 5);
        break;
    case JSON_NULL:
        put(o, "null", 4);
        break;
    }
}

char *jtext_dump(const json_t *v, size_t *len) {
    if (!v)
        return NULL;
    out o = {0};
    put_value(&o, v, 0);
    putc1(&o, '\0');
    if (o.fail) {
        free(o.p);
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (t && len)
            *len = strlen(t);
        return t;
    }
    if (len)
        *len = o.len - 1;
    return o.p;
}

/* ---- reading ---- */

typedef struct in {
    const unsigned char *p, *end;
    char *scratch; /* unescaped strings */
    size_t scratch_cap;
    int bail; /* jansson decides: an error, or a form not handled here */
} in;

static void skip_ws(in *s) {
    while (s->p < s->end &&
           (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static int hex4(const unsigned char *p, unsigned *v) {
    unsigned r = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        r = r << 4 | d;
    }
    *v = r;
    return 0;
}

static size_t put_utf8(char *d, unsigned cp) {
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xc0 | cp >> 6);
        d[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xe0 | cp >> 12);
        d[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        d[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (char)(0xf0 | cp >> 18);
    d[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    d[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    d[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The string at s->p (just past its opening quote): its bytes in *text
 * (pointing into the input when it has no escapes, else into the scratch
 * buffer) and length; -1 with s->bail set for anything jansson would
 * refuse or that is not plain: \u0000 and lone surrogates. */
static int get_string(in *s, const char **text, size_t *len) {
    const unsigned char *start = s->p, *p = s->p;
    for (;;) {
        while (p < s->end && kind[*p] == 0)
            p++;
        if (p == s->end)
            goto bail;
        if (*p == '"') {
            *text = (const char *)start;
            *len = (size_t)(p - start);
            s->p = p + 1;
            return 0;
        }
        if (*p == '\\')
            break;
        if (kind[*p] != 2)
            goto bail; /* a control character, or not UTF-8 */
        size_t l = jtext_utf8_len(p, (size_t)(s->end - p));
        if (!l)
            goto bail;
        p += l;
    }
    /* Escapes: unescape into the scratch buffer; never longer than the
     * text it comes from. */
    size_t room = (size_t)(s->end - start);
    if (s->scratch_cap < room) {
        char *b = realloc(s->scratch, room);
        if (!b)
            goto bail;
        s->scratch = b;
        s->scratch_cap = room;
    }
    char *d = s->scratch;
    memcpy(d, start, (size_t)(p - start));
    d += p - start;
    for (;;) {
        const unsigned char *run = p;
        while (p < s->end && kind[*p] == 0)
            p++;
        memcpy(d, run, (size_t)(p - run));
        d += p - run;
        if (p == s->end)
            goto bail;
        if (*p == '"') {
            *text = s->scratch;
            *len = (size_t)(d - s->scratch);
            s->p = p + 1;
            return 0;
        }
        if (*p == '\\') {
            if (s->end - p < 2)
                goto bail;
            unsigned char c = p[1];
            p += 2;
            switch (c) {
            case '"':
            case '\\':
            case '/':
                *d++ = (char)c;
                break;
            case 'b':
                *d++ = '\b';
                break;
            case 'f':
                *d++ = '\f';
                break;
            case 'n':
                *d++ = '\n';
                break;
            case 'r':
                *d++ = '\r';
                break;
            case 't':
                *d++ = '\t';
                break;
            case 'u': {
                unsigned cp, lo;
                if (s->end - p < 4 || hex4(p, &cp))
                    goto bail;
                p += 4;
                if (cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff))
                    goto bail;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (s->end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
                        hex4(p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
                        goto bail;
                    p += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                d += put_utf8(d, cp);
                break;
            }
            default:
                goto bail;
            }
            continue;
        }
        if (kind[*p] != 2)
            goto bail;
        size_t l = jtext_utf8_len(p, (size_t)(s->end - p));
        if (!l)
            goto bail;
        memcpy(d, p, l);
        d += l;
        p += l;
    }
bail:
    s->bail = 1;
    return -1;
}

static json_t *get_number(in *s) {
    const unsigned char *p = s->p, *start = p;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p == s->end || *p < '0' || *p > '9')
        goto bail;
    const unsigned char *digits = p;
    if (*p == '0')
        p++;
    else
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    int real = 0;
    if (p < s->end && *p == '.') {
        real = 1;
        p++;
        if (p == s->end || *p < '0' || *p > '9')
            goto bail;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        real = 1;
        p++;
        if (p < s->end && (*p == '+' || *p == '-'))
            p++;
        if (p == s->end || *p < '0' || *p > '9')
            goto bail;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (!real) {
        if (p - digits > 18)
            goto bail; /* jansson checks the range */
        long long v = 0;
        for (const unsigned char *q = digits; q < p; q++)
            v = v * 10 + (*q - '0');
        s->p = p;
        return json_integer(neg ? -v : v);
    }
    char b[64];
    size_t n = (size_t)(p - start);
    if (n >= sizeof(b))
        goto bail;
    memcpy(b, start, n);
    b[n] = '\0';
    char *e;
    errno = 0;
    double d = strtod(b, &e);
    if (e != b + n || (errno == ERANGE && isinf(d)))
        goto bail; /* a decimal comma locale, or jansson's overflow */
    s->p = p;
    return json_real(d);
bail:
    s->bail = 1;
    return NULL;
}

static int literal(in *s, const char *word, size_t n) {
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n))
        return -1;
    s->p += n;
    return 0;
}

/* After a member or element: 1 at the closing bracket (consumed), 0 after a
 * comma (consumed, with the blanks after it), -1 for anything else. */
static int next_item(in *s, unsigned char close) {
    skip_ws(s);
    if (s->p == s->end)
        return -1;
    if (*s->p == close) {
        s->p++;
        return 1;
    }
    if (*s->p != ',')
        return -1;
    s->p++;
    skip_ws(s);
    return 0;
}

static json_t *get_value(in *s, int depth);

static json_t *get_object(in *s, int depth) {
    json_t *o = json_object();
    if (!o)
        goto bail;
    s->p++; /* '{' */
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return o;
    }
    for (;;) {
        if (s->p == s->end || *s->p != '"')
            goto bail;
        s->p++;
        const char *k;
        size_t kl;
        if (get_string(s, &k, &kl))
            goto bail;
        /* The key may sit in the scratch buffer, which the value may
         * reuse: keep a copy when it does. */
        char small[64], *kc = NULL;
        if (k == s->scratch) {
            kc = kl < sizeof(small) ? small : malloc(kl + 1);
            if (!kc)
                goto bail;
            memcpy(kc, k, kl);
            k = kc;
        }
        skip_ws(s);
        json_t *v = NULL;
        if (s->p < s->end && *s->p == ':') {
            s->p++;
            skip_ws(s);
            v = get_value(s, depth + 1);
        }
        int rc = v ? json_object_setn_new_nocheck(o, k, kl, v) : -1;
        if (kc && kc != small)
            free(kc);
        if (rc)
            goto bail;
        int end = next_item(s, '}');
        if (end < 0)
            goto bail;
        if (end)
            return o;
    }
bail:
    s->bail = 1;
    json_decref(o);
    return NULL;
}

static json_t *get_array(in *s, int depth) {
    json_t *a = json_array();
    if (!a)
        goto bail;
    s->p++; /* '[' */
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return a;
    }
    for (;;) {
        json_t *v = get_value(s, depth + 1);
        if (!v || json_array_append_new(a, v))
            goto bail;
        int end = next_item(s, ']');
        if (end < 0)
            goto bail;
        if (end)
            return a;
    }
bail:
    s->bail = 1;
    json_decref(a);
    return NULL;
}

static json_t *get_value(in *s, int depth) {
    if (s->p == s->end || depth > JTEXT_MAX_DEPTH) {
        s->bail = 1;
        return NULL;
    }
    switch (*s->p) {
    case '{':
        return get_object(s, depth);
    case '[':
        return get_array(s, depth);
    case '"': {
        const char *t;
        size_t n;
        s->p++;
        if (get_string(s, &t, &n))
            return NULL;
        json_t *v = json_stringn_nocheck(t, n);
        if (!v)
            s->bail = 1;
        return v;
    }
    case 't':
        if (!literal(s, "true", 4))
            return json_true();
        break;
    case 'f':
        if (!literal(s, "false", 5))
            return json_false();
        break;
    case 'n':
        if (!literal(s, "null", 4))
            return json_null();
        break;
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return get_number(s);
    }
    s->bail = 1;
    return NULL;
}

json_t *jtext_load(const char *buf, size_t n, size_t flags, json_error_t *err) {
    if (buf == NULL || (flags & ~(size_t)JSON_DECODE_ANY))
        return json_loadb(buf, n, flags, err);
    in s = {.p = (const unsigned char *)buf,
            .end = (const unsigned char *)buf + n};
    skip_ws(&s);
    json_t *v = NULL;
    if (s.p < s.end &&
        ((flags & JSON_DECODE_ANY) || *s.p == '{' || *s.p == '['))
        v = get_value(&s, 1);
    skip_ws(&s);
    free(s.scratch);
    if (v && s.p == s.end && !s.bail) {
        if (err) { /* as jansson leaves it after a success */
            memset(err, 0, sizeof(*err));
            err->line = err->column = -1;
            err->position = (int)n; /* every byte read, up to the end */
            snprintf(err->source, sizeof(err->source), "<buffer>");
        }
        return v;
    }
    json_decref(v);
    return json_loadb(buf, n, flags, err);
}
