/*
 * The request envelope, written from the operation's input and the JSON
 * arguments in one pass that also checks them: every key must be declared,
 * every required element given, every value of the type the schema says
 * (an int in range, an enumeration value, an object for a complex type, an
 * array only where maxOccurs allows more than one). The first problem
 * fails the build, naming the argument's path and the expected type, and
 * nothing is sent.
 *
 * Elements are written in schema order, qualified or not as the schema
 * says; namespaces get prefixes n1, n2, ... declared once on the Envelope
 * and no default namespace is ever declared, so an unqualified element is
 * in no namespace wherever it sits.
 */
#include "soap_core.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NS 64
#define PATH_MAX_LEN 512

typedef struct bctx {
    sc_buf *b;
    sc_err *e;
    const char *nsuris[MAX_NS];
    size_t nns;
    int xsi; /* xsi:nil used */
    char path[PATH_MAX_LEN];
    size_t plen;
    int depth;
} bctx;

static const char *prefix_of(bctx *c, const char *ns, char out[8]) {
    size_t i;
    for (i = 0; i < c->nns; i++)
        if (!strcmp(c->nsuris[i], ns))
            break;
    if (i == c->nns) {
        if (c->nns == MAX_NS) {
            sc_fail(c->e, FERRY_EINVAL,
                    "the arguments use more than %d namespaces", MAX_NS);
            return NULL;
        }
        c->nsuris[c->nns++] = ns;
    }
    snprintf(out, 8, "n%zu", i + 1);
    return out;
}

/* ---- paths in messages ---- */

static size_t path_push(bctx *c, const char *name, long index) {
    size_t was = c->plen;
    int n;
    if (index >= 0)
        n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "[%ld]",
                     index);
    else
        n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, ".%s",
                     name ? name : "?");
    if (n > 0)
        c->plen = c->plen + (size_t)n < sizeof(c->path) ? c->plen + (size_t)n
                                                        : sizeof(c->path) - 1;
    return was;
}

static void path_pop(bctx *c, size_t was) {
    c->plen = was;
    c->path[was] = 0;
}

/* What a type wants, in words: "xsd:int (an integer)". */
static void expected(const sc_type *t, char *out, size_t n) {
    const char *what;
    if (!t->simple && !t->text)
        what = "an object";
    else {
        enum sc_kind k = t->simple ? t->kind : t->text->kind;
        what = k == SC_INTEGER   ? "an integer"
               : k == SC_NUMBER  ? "a number"
               : k == SC_BOOLEAN ? "a boolean"
               : k == SC_ANY     ? "any value"
                                 : "a string";
    }
    snprintf(out, n, "%s (%s)", t->label ? t->label : "anonymous", what);
}

static void got(const json_t *v, char *out, size_t n) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        snprintf(out, n, "an object");
        break;
    case JSON_ARRAY:
        snprintf(out, n, "an array");
        break;
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t len = strlen(s);
        snprintf(out, n, "string \"%.40s%s\"", s, len > 40 ? "..." : "");
        break;
    }
    case JSON_INTEGER:
        snprintf(out, n, "integer %lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(out, n, "number %g", json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        snprintf(out, n, "boolean %s", json_is_true(v) ? "true" : "false");
        break;
    default:
        snprintf(out, n, "null");
        break;
    }
}

static int wrong_type(bctx *c, const sc_type *t, const json_t *v) {
    char want[160], have[80];
    expected(t, want, sizeof(want));
    got(v, have, sizeof(have));
    return sc_fail(c->e, FERRY_EINVAL, "%s: expected %s, got %s", c->path, want,
                   have);
}

/* ---- scalars ---- */

/* Shortest text that reads back as the same double. */
static void fmt_double(double x, char *out, size_t n) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, x);
        if (strtod(out, NULL) == x)
            return;
    }
}

static int parse_int(const char *s, long long *out) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    if (!*s)
        return -1;
    errno = 0;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (end == s || errno)
        return -1;
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
        end++;
    if (*end)
        return -1;
    *out = x;
    return 0;
}

static int numeric_text(const char *s) {
    if (!strcmp(s, "INF") || !strcmp(s, "-INF") || !strcmp(s, "+INF") ||
        !strcmp(s, "NaN"))
        return 1;
    const char *p = s;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p || (*p != '-' && *p != '+' && *p != '.' && (*p < '0' || *p > '9')))
        return 0;
    char *end;
    errno = 0;
    strtod(p, &end);
    if (end == p)
        return 0;
    while (*end == ' ' || *end == '\t')
        end++;
    return !*end && !strpbrk(p, "xXnNiI"); /* no hex, nan, inf spellings */
}

/* Text XML 1.0 can carry: no NUL, no C0 control but tab, CR, LF. */
static int xml_text_ok(bctx *c, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r')
            return sc_fail(c->e, FERRY_EINVAL,
                           "%s: contains U+%04X, a character XML 1.0 cannot "
                           "carry",
                           c->path, ch);
        /* U+FFFE and U+FFFF: EF BF BE / EF BF BF */
        if (ch == 0xEF && i + 2 < n && (unsigned char)s[i + 1] == 0xBF &&
            ((unsigned char)s[i + 2] == 0xBE ||
             (unsigned char)s[i + 2] == 0xBF))
            return sc_fail(c->e, FERRY_EINVAL,
                           "%s: contains U+FFF%c, a character XML 1.0 cannot "
                           "carry",
                           c->path,
                           (unsigned char)s[i + 2] == 0xBE ? 'E' : 'F');
    }
    return 0;
}

static int check_enum(bctx *c, const sc_type *t, const char *text) {
    if (!t->enums)
        return 0;
    for (const char *const *v = t->enums; *v; v++)
        if (!strcmp(*v, text))
            return 0;
    char list[300] = "";
    size_t n = 0;
    for (const char *const *v = t->enums; *v && n < sizeof(list) - 60; v++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"",
                              n ? ", " : "", *v);
    return sc_fail(c->e, FERRY_EINVAL, "%s: \"%.60s\" is not one of %s (%s)",
                   c->path, text, list, t->label ? t->label : "enumeration");
}

/* Writes a simple value's text, escaped. */
static int write_scalar(bctx *c, const sc_type *t, const json_t *v, int attr) {
    char num[64];
    const char *text = NULL;
    size_t len = 0;
    enum sc_kind k = t->kind;
    switch (json_typeof(v)) {
    case JSON_STRING:
        text = json_string_value(v);
        len = json_string_length(v);
        if (k == SC_INTEGER) {
            long long x;
            if (parse_int(text, &x))
                return wrong_type(c, t, v);
            if (x < t->lo || x > t->hi)
                return sc_fail(c->e, FERRY_EINVAL,
                               "%s: %lld is out of range for %s (%lld to "
                               "%lld)",
                               c->path, x, t->label, (long long)t->lo,
                               (long long)t->hi);
        } else if (k == SC_NUMBER && !numeric_text(text)) {
            return wrong_type(c, t, v);
        } else if (k == SC_BOOLEAN && strcmp(text, "true") &&
                   strcmp(text, "false") && strcmp(text, "1") &&
                   strcmp(text, "0")) {
            return wrong_type(c, t, v);
        }
        break;
    case JSON_INTEGER: {
        long long x = json_integer_value(v);
        if (k == SC_BOOLEAN)
            return wrong_type(c, t, v);
        if (k == SC_INTEGER && (x < t->lo || x > t->hi))
            return sc_fail(c->e, FERRY_EINVAL,
                           "%s: %lld is out of range for %s (%lld to %lld)",
                           c->path, x, t->label, (long long)t->lo,
                           (long long)t->hi);
        snprintf(num, sizeof(num), "%lld", x);
        text = num;
        break;
    }
    case JSON_REAL: {
        double x = json_real_value(v);
        if (k == SC_BOOLEAN)
            return wrong_type(c, t, v);
        if (k == SC_INTEGER) {
            if (x != floor(x) || x < -9.2e18 || x > 9.2e18)
                return wrong_type(c, t, v);
            long long i = (long long)x;
            if (i < t->lo || i > t->hi)
                return sc_fail(c->e, FERRY_EINVAL,
                               "%s: %lld is out of range for %s (%lld to "
                               "%lld)",
                               c->path, i, t->label, (long long)t->lo,
                               (long long)t->hi);
            snprintf(num, sizeof(num), "%lld", i);
        } else {
            fmt_double(x, num, sizeof(num));
        }
        text = num;
        break;
    }
    case JSON_TRUE:
    case JSON_FALSE:
        if (k == SC_INTEGER || k == SC_NUMBER)
            return wrong_type(c, t, v);
        text = json_is_true(v) ? "true" : "false";
        break;
    default:
        return wrong_type(c, t, v);
    }
    if (!len)
        len = strlen(text);
    if (xml_text_ok(c, text, len) || check_enum(c, t, text))
        return -1;
    sc_buf_escape(c->b, text, len, attr);
    return 0;
}

/* ---- elements ---- */

static int write_value(bctx *c, const sc_elem *e, const json_t *v);

static int valid_name(const char *s) {
    if (!*s || (*s >= '0' && *s <= '9') || *s == '-' || *s == '.')
        return 0;
    if (!strncasecmp(s, "xml", 3))
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!(*p >= 0x80 || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return 0;
    return 1;
}

/* anyType content: objects as child elements (unqualified), arrays as
 * repeated elements, scalars as text. */
static int write_any(bctx *c, const char *name, const json_t *v) {
    if (++c->depth > SC_MAX_DEPTH)
        return sc_fail(c->e, FERRY_EINVAL, "%s: nested more than %d deep",
                       c->path, SC_MAX_DEPTH);
    int rc = 0;
    if (json_is_array(v)) {
        size_t i;
        const json_t *x;
        json_array_foreach(v, i, x) {
            size_t was = path_push(c, NULL, (long)i);
            rc = write_any(c, name, x);
            path_pop(c, was);
            if (rc)
                break;
        }
        c->depth--;
        return rc;
    }
    sc_buf_printf(c->b, "<%s", name);
    if (json_is_null(v)) {
        c->xsi = 1;
        sc_buf_puts(c->b, " xsi:nil=\"true\"/>");
    } else if (json_is_object(v)) {
        sc_buf_puts(c->b, ">");
        const char *k;
        const json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            size_t was = path_push(c, k, -1);
            if (!valid_name(k))
                rc = sc_fail(c->e, FERRY_EINVAL,
                             "%s: '%s' cannot be an XML element name", c->path,
                             k);
            else
                rc = write_any(c, k, x);
            path_pop(c, was);
            if (rc)
                break;
        }
        sc_buf_printf(c->b, "</%s>", name);
    } else {
        sc_buf_puts(c->b, ">");
        static sc_type any = {.simple = 1, .kind = SC_ANY, .label = "xsd:any"};
        rc = write_scalar(c, &any, v, 0);
        sc_buf_printf(c->b, "</%s>", name);
    }
    c->depth--;
    return rc;
}

static const sc_attr *find_attr(const sc_type *t, const char *name) {
    for (size_t i = 0; i < t->nattrs; i++)
        if (!strcmp(t->attrs[i].name, name))
            return &t->attrs[i];
    return NULL;
}

static const sc_elem *find_elem(const sc_type *t, const char *name) {
    for (size_t i = 0; i < t->nelems; i++)
        if (!strcmp(t->elems[i]->name, name))
            return t->elems[i];
    return NULL;
}

static int undeclared(bctx *c, const sc_type *t, const char *key) {
    char list[400] = "";
    size_t n = 0;
    for (size_t i = 0; i < t->nelems && n < sizeof(list) - 80; i++) {
        /* each name once (a name may repeat in a flattened model) */
        if (find_elem(t, t->elems[i]->name) != t->elems[i])
            continue;
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "",
                              t->elems[i]->name);
    }
    for (size_t i = 0; i < t->nattrs && n < sizeof(list) - 80; i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s@%s",
                              n ? ", " : "", t->attrs[i].name);
    size_t was = path_push(c, key, -1);
    sc_fail(c->e, FERRY_EINVAL, "%s: not declared by the schema (%s has %s)",
            c->path, c->depth ? "this element" : "the operation's input",
            n ? list : "no fields");
    path_pop(c, was);
    return -1;
}

/* The attributes of a complex value, in the start tag. */
static int write_attrs(bctx *c, const sc_type *t, const json_t *obj) {
    for (size_t i = 0; i < t->nattrs; i++) {
        const sc_attr *a = &t->attrs[i];
        char key[256];
        snprintf(key, sizeof(key), "@%s", a->name);
        const json_t *v = obj ? json_object_get(obj, key) : NULL;
        size_t was = path_push(c, key, -1);
        int rc = 0;
        if (!v || json_is_null(v)) {
            if (a->required)
                rc = sc_fail(c->e, FERRY_EINVAL,
                             "%s: required attribute, expected %s", c->path,
                             a->type ? a->type->label : "xsd:string");
        } else {
            char pfx[8];
            const char *p = a->ns ? prefix_of(c, a->ns, pfx) : NULL;
            if (a->ns && !p)
                rc = -1;
            else {
                sc_buf_printf(c->b, " %s%s%s=\"", p ? p : "", p ? ":" : "",
                              a->name);
                static sc_type str = {
                    .simple = 1, .kind = SC_STRING, .label = "xsd:string"};
                rc = write_scalar(
                    c, a->type && a->type->simple ? a->type : &str, v, 1);
                sc_buf_puts(c->b, "\"");
            }
        }
        path_pop(c, was);
        if (rc)
            return -1;
    }
    return 0;
}

/* Every key of obj declared by t (or t open). */
static int check_keys(bctx *c, const sc_type *t, const json_t *obj) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (k[0] == '@') {
            if (!find_attr(t, k + 1) && !t->open)
                return undeclared(c, t, k);
        } else if (!strcmp(k, "#text") && t->text) {
            continue;
        } else if (!find_elem(t, k) && !t->open) {
            return undeclared(c, t, k);
        }
    }
    return 0;
}

/* The children of a complex value, in schema order (its keys checked). */
static int write_children(bctx *c, const sc_type *t, const json_t *obj) {
    const char *k;
    json_t *v;
    /* Choices: at most one member, one when required. */
    for (size_t g = 1; g <= t->nchoices; g++) {
        const char *first = NULL;
        char names[300] = "";
        size_t n = 0;
        for (size_t i = 0; i < t->nelems; i++) {
            const sc_elem *e = t->elems[i];
            if (e->choice != (int)g)
                continue;
            if (n < sizeof(names) - 80)
                n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s",
                                      n ? ", " : "", e->name);
            const json_t *x = json_object_get(obj, e->name);
            if (!x || json_is_null(x))
                continue;
            if (first && strcmp(first, e->name))
                return sc_fail(c->e, FERRY_EINVAL,
                               "%s: '%s' and '%s' are alternatives (a "
                               "choice of %s): give one",
                               c->path, first, e->name, names);
            first = e->name;
        }
        if (!first && t->choices[g - 1].min > 0)
            return sc_fail(c->e, FERRY_EINVAL,
                           "%s: one of %s is required (a choice)", c->path,
                           names);
    }
    for (size_t i = 0; i < t->nelems; i++) {
        const sc_elem *e = t->elems[i];
        if (find_elem(t, e->name) != e)
            continue; /* a repeated name: its first declaration takes it */
        const json_t *x = json_object_get(obj, e->name);
        size_t was = path_push(c, e->name, -1);
        int rc = 0;
        if (!x || (json_is_null(x) && !e->nillable)) {
            if (e->min > 0 && !e->choice) {
                char want[160];
                expected(e->type, want, sizeof(want));
                if (e->max != 1)
                    rc = sc_fail(c->e, FERRY_EINVAL,
                                 "%s: required, an array of at least %ld of "
                                 "%s",
                                 c->path, e->min, want);
                else
                    rc = sc_fail(c->e, FERRY_EINVAL,
                                 "%s: required, expected %s%s", c->path, want,
                                 x ? "; null is not allowed, it is not "
                                     "nillable"
                                   : "");
            }
        } else if (json_is_array(x) && !(e->type->kind == SC_ANY &&
                                         e->type->simple && e->max == 1)) {
            size_t n = json_array_size(x);
            if (e->max == 1) {
                char want[160];
                expected(e->type, want, sizeof(want));
                rc = sc_fail(c->e, FERRY_EINVAL,
                             "%s: expected %s, got an array (maxOccurs is 1)",
                             c->path, want);
            } else if ((long)n < e->min) {
                rc = sc_fail(c->e, FERRY_EINVAL,
                             "%s: %zu items, at least %ld required", c->path, n,
                             e->min);
            } else if (e->max > 0 && (long)n > e->max) {
                rc = sc_fail(c->e, FERRY_EINVAL,
                             "%s: %zu items, at most %ld allowed", c->path, n,
                             e->max);
            }
            for (size_t j = 0; j < n && !rc; j++) {
                size_t w = path_push(c, NULL, (long)j);
                rc = write_value(c, e, json_array_get(x, j));
                path_pop(c, w);
            }
        } else {
            rc = write_value(c, e, x);
        }
        path_pop(c, was);
        if (rc)
            return -1;
    }
    /* Undeclared keys of an open type (xsd:any), unqualified. */
    if (t->open) {
        json_object_foreach((json_t *)obj, k, v) {
            if (k[0] == '@' || !strcmp(k, "#text") || find_elem(t, k))
                continue;
            size_t was = path_push(c, k, -1);
            int rc = valid_name(k) ? write_any(c, k, v)
                                   : sc_fail(c->e, FERRY_EINVAL,
                                             "%s: '%s' cannot be an XML "
                                             "element name",
                                             c->path, k);
            path_pop(c, was);
            if (rc)
                return -1;
        }
    }
    return 0;
}

static int write_value(bctx *c, const sc_elem *e, const json_t *v) {
    const sc_type *t = e->type;
    char pfx[8];
    const char *p = NULL;
    if (e->ns && !(p = prefix_of(c, e->ns, pfx)))
        return -1;
    if (++c->depth > SC_MAX_DEPTH)
        return sc_fail(c->e, FERRY_EINVAL, "%s: nested more than %d deep",
                       c->path, SC_MAX_DEPTH);
    const char *colon = p ? ":" : "";
    p = p ? p : "";
    int rc = 0;
    if (json_is_null(v) && !e->nillable) {
        rc = sc_fail(c->e, FERRY_EINVAL,
                     "%s: null is not allowed (the element is not nillable)",
                     c->path);
    } else if (json_is_null(v)) {
        c->xsi = 1;
        sc_buf_printf(c->b, "<%s%s%s xsi:nil=\"true\"/>", p, colon, e->name);
    } else if (t->simple && t->kind == SC_ANY) {
        if (json_is_object(v) || json_is_array(v)) {
            /* anyType: the value's structure, under this element */
            sc_buf_printf(c->b, "<%s%s%s>", p, colon, e->name);
            const char *k;
            const json_t *x;
            if (json_is_object(v)) {
                json_object_foreach((json_t *)v, k, x) {
                    size_t was = path_push(c, k, -1);
                    rc = valid_name(k)
                             ? write_any(c, k, x)
                             : sc_fail(c->e, FERRY_EINVAL,
                                       "%s: '%s' cannot be an XML element "
                                       "name",
                                       c->path, k);
                    path_pop(c, was);
                    if (rc)
                        break;
                }
            } else {
                rc = sc_fail(c->e, FERRY_EINVAL,
                             "%s: an array for a single element of any type",
                             c->path);
            }
            sc_buf_printf(c->b, "</%s%s%s>", p, colon, e->name);
        } else {
            sc_buf_printf(c->b, "<%s%s%s>", p, colon, e->name);
            rc = write_scalar(c, t, v, 0);
            sc_buf_printf(c->b, "</%s%s%s>", p, colon, e->name);
        }
    } else if (t->simple) {
        if (json_is_object(v) || json_is_array(v))
            rc = wrong_type(c, t, v);
        else {
            sc_buf_printf(c->b, "<%s%s%s>", p, colon, e->name);
            rc = write_scalar(c, t, v, 0);
            sc_buf_printf(c->b, "</%s%s%s>", p, colon, e->name);
        }
    } else if (t->text && !json_is_object(v)) {
        /* simple content given as its value alone */
        if (json_is_array(v))
            rc = wrong_type(c, t->text, v);
        else {
            sc_buf_printf(c->b, "<%s%s%s", p, colon, e->name);
            rc = write_attrs(c, t, NULL);
            if (!rc) {
                sc_buf_puts(c->b, ">");
                rc = write_scalar(c, t->text, v, 0);
                sc_buf_printf(c->b, "</%s%s%s>", p, colon, e->name);
            }
        }
    } else if (!json_is_object(v)) {
        rc = wrong_type(c, t, v);
    } else {
        sc_buf_printf(c->b, "<%s%s%s", p, colon, e->name);
        rc = check_keys(c, t, v);
        if (!rc)
            rc = write_attrs(c, t, v);
        if (!rc) {
            sc_buf_puts(c->b, ">");
            if (t->text) {
                const json_t *tx = json_object_get(v, "#text");
                size_t was = path_push(c, "#text", -1);
                if (tx && !json_is_null(tx))
                    rc = write_scalar(c, t->text, tx, 0);
                path_pop(c, was);
            }
            if (!rc)
                rc = write_children(c, t, v);
            sc_buf_printf(c->b, "</%s%s%s>", p, colon, e->name);
        }
    }
    c->depth--;
    return rc;
}

/* ---- the envelope ---- */

static int check_fragment(const char *xml, sc_err *e) {
    /* Parsed inside a root of its own; prefixes it uses must be declared
     * in it (a namespace error is an error here). */
    sc_buf b = {0};
    sc_buf_puts(&b, "<x>");
    sc_buf_puts(&b, xml);
    sc_buf_puts(&b, "</x>");
    if (b.oom) {
        sc_buf_free(&b);
        return sc_fail(e, FERRY_ENOMEM, "out of memory");
    }
    sc_err pe = {0};
    xmlDocPtr d = sc_parse_xml(b.p, b.len, "soap_header", &pe);
    sc_buf_free(&b);
    if (!d)
        return sc_fail(e, FERRY_EINVAL, "%s", pe.msg);
    xmlFreeDoc(d);
    return 0;
}

int sc_build_envelope(const sc_op *op, const json_t *args,
                      const sc_envelope_opts *o, sc_buf *out, sc_err *e) {
    if (op->encoded)
        return sc_fail(
            e, FERRY_EUNSUPPORTED,
            "operation '%s' uses the SOAP encoding (use=\"encoded\"), "
            "which is not supported; send the envelope with "
            "soap.request",
            op->name);
    if (args && !json_is_object(args) && !json_is_null(args))
        return sc_fail(e, FERRY_EINVAL, "arguments: expected an object");
    if (o->soap_header && check_fragment(o->soap_header, e))
        return -1;
    sc_buf body = {0};
    bctx c = {.b = &body, .e = e};
    snprintf(c.path, sizeof(c.path), "arguments");
    c.plen = strlen(c.path);
    json_t *empty = json_object();
    const json_t *a = args && json_is_object(args) ? args : empty;
    int rc = 0;
    const sc_body *in = &op->in;
    if (!in->present || !in->content) {
        if (json_object_size(a))
            rc = sc_fail(e, FERRY_EINVAL,
                         "arguments: operation '%s' takes no input", op->name);
    } else if (in->wrapper) {
        /* The wrapper is the top element: its content from the arguments. */
        sc_elem w = *in->wrapper;
        w.type = in->content;
        c.depth = -1; /* the wrapper is depth 0 for messages */
        rc = write_value(&c, &w, a);
    } else {
        rc = check_keys(&c, in->content, a);
        if (!rc)
            rc = write_children(&c, in->content, a);
    }
    json_decref(empty);
    if (!rc && body.oom)
        rc = sc_fail(e, FERRY_ENOMEM, "out of memory");
    if (rc) {
        sc_buf_free(&body);
        return -1;
    }
    const char *env = o->version == 12 ? SC_NS_SOAP12 : SC_NS_SOAP11;
    sc_buf_puts(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    sc_buf_printf(out, "<soap:Envelope xmlns:soap=\"%s\"", env);
    for (size_t i = 0; i < c.nns; i++) {
        sc_buf_printf(out, " xmlns:n%zu=\"", i + 1);
        sc_buf_escape(out, c.nsuris[i], strlen(c.nsuris[i]), 1);
        sc_buf_puts(out, "\"");
    }
    if (c.xsi)
        sc_buf_puts(out, " xmlns:xsi=\"" SC_NS_XSI "\"");
    sc_buf_puts(out, ">");
    if (o->wss || o->soap_header) {
        sc_buf_puts(out, "<soap:Header>");
        if (o->wss && sc_wss_header(o->wss, "soap", out, e)) {
            sc_buf_free(&body);
            return -1;
        }
        if (o->soap_header)
            sc_buf_puts(out, o->soap_header);
        sc_buf_puts(out, "</soap:Header>");
    }
    sc_buf_puts(out, "<soap:Body>");
    if (body.len)
        sc_buf_add(out, body.p, body.len);
    sc_buf_puts(out, "</soap:Body></soap:Envelope>\n");
    sc_buf_free(&body);
    if (out->oom)
        return sc_fail(e, FERRY_ENOMEM, "out of memory");
    return 0;
}
