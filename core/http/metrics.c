/*
 * The metrics registry and its Prometheus text rendering (exposition format
 * 0.0.4).
 *
 * Not thread-safe: every call, rendering included, belongs on the loop
 * thread. The store is deliberately simple: the metrics in declaration order,
 * and under each metric its series kept sorted by label set, found by binary
 * search. The host has a few dozen metrics with a handful of series each
 * (route x status), so nothing cleverer pays for itself.
 *
 * Misuse is a programming error the registry cannot report through its void
 * functions, so it is ignored rather than half-applied: an add, set or
 * observe on an undeclared name or on a metric of another type, a negative
 * add to a counter, an invalid label name, and a declaration with an invalid
 * name, an unknown type or unsorted buckets all change nothing. Declaring a
 * name again is a no-op.
 */
#include "http/http.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 16

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } mtype;

typedef struct series {
    size_t nlabels;
    char **keys; /* sorted by key; keys and values owned */
    char **values;
    double value;      /* counter, gauge */
    uint64_t *buckets; /* histogram: per-bucket (not cumulative) counts */
    uint64_t count;
    double sum;
} series;

typedef struct metric {
    const char *name; /* borrowed, static */
    const char *help;
    mtype type;
    double *bounds; /* histogram upper bounds, ascending, without +Inf */
    size_t nbounds;
    series *series; /* sorted by label set */
    size_t nseries, capseries;
} metric;

struct metrics {
    metric *v;
    size_t n, cap;
};

metrics *metrics_new(void) {
    return calloc(1, sizeof(metrics));
}

static void series_clear(series *s) {
    for (size_t i = 0; i < s->nlabels; i++) {
        free(s->keys[i]);
        free(s->values[i]);
    }
    free(s->keys);
    free(s->values);
    free(s->buckets);
}

void metrics_free(metrics *m) {
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        for (size_t j = 0; j < m->v[i].nseries; j++)
            series_clear(&m->v[i].series[j]);
        free(m->v[i].series);
        free(m->v[i].bounds);
    }
    free(m->v);
    free(m);
}

static int valid_name(const char *s, int colon_ok) {
    if (s == NULL || *s == '\0')
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon_ok && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static metric *find_metric(const metrics *m, const char *name) {
    if (m == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].name, name) == 0)
            return &m->v[i];
    return NULL;
}

void metrics_declare(metrics *m, const char *name, const char *type,
                     const char *help, const double *buckets, size_t nbuckets) {
    mtype t;
    if (m == NULL || !valid_name(name, 1) || type == NULL ||
        find_metric(m, name) != NULL)
        return;
    if (strcmp(type, "counter") == 0)
        t = M_COUNTER;
    else if (strcmp(type, "gauge") == 0)
        t = M_GAUGE;
    else if (strcmp(type, "histogram") == 0)
        t = M_HISTOGRAM;
    else
        return;

    double *bounds = NULL;
    size_t nbounds = 0;
    if (t == M_HISTOGRAM) {
        /* A trailing +Inf is implicit in the format; accept it and drop
         * it. */
        if (nbuckets > 0 && buckets[nbuckets - 1] == INFINITY)
            nbuckets--;
        for (size_t i = 0; i < nbuckets; i++)
            if (isnan(buckets[i]) || isinf(buckets[i]) ||
                (i > 0 && !(buckets[i] > buckets[i - 1])))
                return;
        if (nbuckets > 0) {
            bounds = malloc(nbuckets * sizeof(*bounds));
            if (bounds == NULL)
                return;
            memcpy(bounds, buckets, nbuckets * sizeof(*bounds));
        }
        nbounds = nbuckets;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        metric *v = realloc(m->v, cap * sizeof(*v));
        if (v == NULL) {
            free(bounds);
            return;
        }
        m->v = v;
        m->cap = cap;
    }
    metric *x = &m->v[m->n++];
    memset(x, 0, sizeof(*x));
    x->name = name;
    x->help = help != NULL ? help : "";
    x->type = t;
    x->bounds = bounds;
    x->nbounds = nbounds;
}

/* A label set being looked up: pointers into the caller's arguments. */
typedef struct {
    size_t n;
    const char *k[MAX_LABELS];
    const char *v[MAX_LABELS];
} labelset;

/* Reads "k", "v", ..., NULL into a set sorted by key; a repeated key keeps
 * its last value. Returns -1 on an invalid or reserved label name, too many
 * labels or a missing value. */
static int read_labels(labelset *ls, mtype type, va_list ap) {
    ls->n = 0;
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL)
            return 0;
        const char *v = va_arg(ap, const char *);
        if (v == NULL || !valid_name(k, 0) || strncmp(k, "__", 2) == 0 ||
            (type == M_HISTOGRAM && strcmp(k, "le") == 0))
            return -1;
        size_t i = 0;
        while (i < ls->n && strcmp(ls->k[i], k) < 0)
            i++;
        if (i < ls->n && strcmp(ls->k[i], k) == 0) {
            ls->v[i] = v;
            continue;
        }
        if (ls->n == MAX_LABELS)
            return -1;
        memmove(&ls->k[i + 1], &ls->k[i], (ls->n - i) * sizeof(ls->k[0]));
        memmove(&ls->v[i + 1], &ls->v[i], (ls->n - i) * sizeof(ls->v[0]));
        ls->k[i] = k;
        ls->v[i] = v;
        ls->n++;
    }
}

/* Orders label sets pair by pair (key, then value); a prefix comes first. */
static int cmp_labels(const labelset *a, const series *b) {
    size_t n = a->n < b->nlabels ? a->n : b->nlabels;
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(a->k[i], b->keys[i]);
        if (c == 0)
            c = strcmp(a->v[i], b->values[i]);
        if (c != 0)
            return c;
    }
    return (a->n > b->nlabels) - (a->n < b->nlabels);
}

static series *get_series(metric *x, const labelset *ls) {
    size_t lo = 0, hi = x->nseries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_labels(ls, &x->series[mid]);
        if (c == 0)
            return &x->series[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }

    series s;
    memset(&s, 0, sizeof(s));
    if (ls->n > 0) {
        s.keys = calloc(ls->n, sizeof(char *));
        s.values = calloc(ls->n, sizeof(char *));
        if (s.keys == NULL || s.values == NULL)
            goto fail;
        for (size_t i = 0; i < ls->n; i++) {
            s.keys[i] = strdup(ls->k[i]);
            s.values[i] = strdup(ls->v[i]);
            s.nlabels = i + 1;
            if (s.keys[i] == NULL || s.values[i] == NULL)
                goto fail;
        }
    }
    if (x->type == M_HISTOGRAM && x->nbounds > 0) {
        s.buckets = calloc(x->nbounds, sizeof(uint64_t));
        if (s.buckets == NULL)
            goto fail;
    }
    if (x->nseries == x->capseries) {
        size_t cap = x->capseries ? x->capseries * 2 : 4;
        series *v = realloc(x->series, cap * sizeof(*v));
        if (v == NULL)
            goto fail;
        x->series = v;
        x->capseries = cap;
    }
    memmove(&x->series[lo + 1], &x->series[lo],
            (x->nseries - lo) * sizeof(series));
    x->series[lo] = s;
    x->nseries++;
    return &x->series[lo];
fail:
    series_clear(&s);
    return NULL;
}

enum { OP_ADD, OP_SET, OP_OBSERVE };

static void apply(metrics *m, const char *name, int op, double value,
                  va_list ap) {
    metric *x = find_metric(m, name);
    if (x == NULL)
        return;
    switch (op) {
    case OP_ADD:
        if (x->type == M_HISTOGRAM || (x->type == M_COUNTER && !(value >= 0)))
            return;
        break;
    case OP_SET:
        if (x->type == M_HISTOGRAM)
            return;
        break;
    case OP_OBSERVE:
        if (x->type != M_HISTOGRAM)
            return;
        break;
    }
    labelset ls;
    if (read_labels(&ls, x->type, ap) != 0)
        return;
    series *s = get_series(x, &ls);
    if (s == NULL)
        return;
    switch (op) {
    case OP_ADD:
        s->value += value;
        break;
    case OP_SET:
        s->value = value;
        break;
    case OP_OBSERVE:
        /* Buckets are stored per range and summed when rendered; a value
         * above every bound (or NaN) only counts towards +Inf. */
        for (size_t i = 0; i < x->nbounds; i++) {
            if (value <= x->bounds[i]) {
                s->buckets[i]++;
                break;
            }
        }
        s->count++;
        s->sum += value;
        break;
    }
}

void metrics_add(metrics *m, const char *name, double delta, ...) {
    va_list ap;
    va_start(ap, delta);
    apply(m, name, OP_ADD, delta, ap);
    va_end(ap);
}

void metrics_set(metrics *m, const char *name, double value, ...) {
    va_list ap;
    va_start(ap, value);
    apply(m, name, OP_SET, value, ap);
    va_end(ap);
}

void metrics_observe(metrics *m, const char *name, double value, ...) {
    va_list ap;
    va_start(ap, value);
    apply(m, name, OP_OBSERVE, value, ap);
    va_end(ap);
}

/* ---- rendering ---- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) {
    sb_put(b, s, strlen(s));
}

/* Go's strconv.FormatFloat(v, 'g', -1, 64) is what Prometheus clients
 * print: the shortest text that reads back as the same double. */
static void sb_num(sbuf *b, double v) {
    char buf[32];
    if (isnan(v)) {
        sb_str(b, "NaN");
        return;
    }
    if (isinf(v)) {
        sb_str(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    sb_str(b, buf);
}

static void sb_u64(sbuf *b, uint64_t v) {
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    sb_str(b, buf);
}

/* HELP text escapes backslash and newline; label values also escape the
 * double quote. */
static void sb_escaped(sbuf *b, const char *s, int quote) {
    for (; *s; s++) {
        if (*s == '\\')
            sb_str(b, "\\\\");
        else if (*s == '\n')
            sb_str(b, "\\n");
        else if (quote && *s == '"')
            sb_str(b, "\\\"");
        else
            sb_put(b, s, 1);
    }
}

/* name{k="v",...,le="..."} with an optional le label last. */
static void sb_sample_head(sbuf *b, const char *name, const char *suffix,
                           const series *s, const double *le) {
    sb_str(b, name);
    sb_str(b, suffix);
    if (s->nlabels == 0 && le == NULL)
        return;
    sb_str(b, "{");
    for (size_t i = 0; i < s->nlabels; i++) {
        if (i > 0)
            sb_str(b, ",");
        sb_str(b, s->keys[i]);
        sb_str(b, "=\"");
        sb_escaped(b, s->values[i], 1);
        sb_str(b, "\"");
    }
    if (le != NULL) {
        if (s->nlabels > 0)
            sb_str(b, ",");
        sb_str(b, "le=\"");
        sb_num(b, *le);
        sb_str(b, "\"");
    }
    sb_str(b, "}");
}

char *metrics_render(const metrics *m, size_t *len) {
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    sbuf b = {0};
    sb_put(&b, "", 0); /* an empty registry renders as "" */
    for (size_t i = 0; m != NULL && i < m->n; i++) {
        const metric *x = &m->v[i];
        sb_str(&b, "# HELP ");
        sb_str(&b, x->name);
        sb_str(&b, " ");
        sb_escaped(&b, x->help, 0);
        sb_str(&b, "\n# TYPE ");
        sb_str(&b, x->name);
        sb_str(&b, " ");
        sb_str(&b, type_names[x->type]);
        sb_str(&b, "\n");
        for (size_t j = 0; j < x->nseries; j++) {
            const series *s = &x->series[j];
            if (x->type != M_HISTOGRAM) {
                sb_sample_head(&b, x->name, "", s, NULL);
                sb_str(&b, " ");
                sb_num(&b, s->value);
                sb_str(&b, "\n");
                continue;
            }
            uint64_t cum = 0;
            for (size_t k = 0; k < x->nbounds; k++) {
                cum += s->buckets[k];
                sb_sample_head(&b, x->name, "_bucket", s, &x->bounds[k]);
                sb_str(&b, " ");
                sb_u64(&b, cum);
                sb_str(&b, "\n");
            }
            const double inf = INFINITY;
            sb_sample_head(&b, x->name, "_bucket", s, &inf);
            sb_str(&b, " ");
            sb_u64(&b, s->count);
            sb_str(&b, "\n");
            sb_sample_head(&b, x->name, "_sum", s, NULL);
            sb_str(&b, " ");
            sb_num(&b, s->sum);
            sb_str(&b, "\n");
            sb_sample_head(&b, x->name, "_count", s, NULL);
            sb_str(&b, " ");
            sb_u64(&b, s->count);
            sb_str(&b, "\n");
        }
    }
    if (b.oom) {
        free(b.p);
        if (len != NULL)
            *len = 0;
        return NULL;
    }
    if (len != NULL)
        *len = b.len;
    return b.p;
}
