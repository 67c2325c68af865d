/*
 * XML Schema components into the model: named and anonymous types,
 * elements (local and referenced), model groups, attributes. Built on
 * first use from the registered declarations, so that a large WSDL costs
 * only what its operations reach; a type is entered in its declaration
 * before its content is built, so recursive types end in a cycle of
 * pointers rather than in endless recursion.
 *
 * Content models are flattened: sequence, all and nested groups become one
 * list of elements in document order; a group that may be left out makes
 * its elements optional, a repeated group makes them repeated; the direct
 * elements of a choice share a choice number (at most one of them is
 * given). This is what a client needs to write and read instances; it is
 * not a validator.
 */
#include "wsdl_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUILD_DEPTH 256

static const struct builtin {
    const char *name;
    enum sc_kind kind;
    int64_t lo, hi;
} builtins[] = {
    {"boolean", SC_BOOLEAN, 0, 0},
    {"decimal", SC_NUMBER, 0, 0},
    {"float", SC_NUMBER, 0, 0},
    {"double", SC_NUMBER, 0, 0},
    {"integer", SC_INTEGER, INT64_MIN, INT64_MAX},
    {"long", SC_INTEGER, INT64_MIN, INT64_MAX},
    {"int", SC_INTEGER, INT32_MIN, INT32_MAX},
    {"short", SC_INTEGER, INT16_MIN, INT16_MAX},
    {"byte", SC_INTEGER, INT8_MIN, INT8_MAX},
    {"nonNegativeInteger", SC_INTEGER, 0, INT64_MAX},
    {"positiveInteger", SC_INTEGER, 1, INT64_MAX},
    {"nonPositiveInteger", SC_INTEGER, INT64_MIN, 0},
    {"negativeInteger", SC_INTEGER, INT64_MIN, -1},
    {"unsignedLong", SC_INTEGER, 0, INT64_MAX},
    {"unsignedInt", SC_INTEGER, 0, UINT32_MAX},
    {"unsignedShort", SC_INTEGER, 0, UINT16_MAX},
    {"unsignedByte", SC_INTEGER, 0, UINT8_MAX},
    {"anyType", SC_ANY, 0, 0},
    {"anySimpleType", SC_ANY, 0, 0},
    {"Array", SC_ANY, 0, 0}, /* soapenc:Array */
    {"Struct", SC_ANY, 0, 0},
};

static int is_xsd_ns(const char *ns) {
    return ns && (!strcmp(ns, SC_NS_XSD) ||
                  !strcmp(ns, "http://www.w3.org/1999/XMLSchema") ||
                  !strcmp(ns, "http://www.w3.org/2000/10/XMLSchema"));
}

sc_type *sc_builtin(sc_loader *L, const char *local) {
    sc_type *t = sc_map_get(&L->builtins, local);
    if (t)
        return t;
    t = sc_alloc(L->a, sizeof(*t));
    if (!t)
        goto oom;
    t->simple = 1;
    t->kind = SC_STRING;
    t->lo = INT64_MIN;
    t->hi = INT64_MAX;
    for (size_t i = 0; i < sizeof(builtins) / sizeof(*builtins); i++)
        if (!strcmp(builtins[i].name, local)) {
            t->kind = builtins[i].kind;
            if (t->kind == SC_INTEGER) {
                t->lo = builtins[i].lo;
                t->hi = builtins[i].hi;
            }
        }
    t->name = sc_strdup(L->a, local);
    t->ns = SC_NS_XSD;
    size_t n = strlen(local) + 5;
    char *label = sc_alloc(L->a, n);
    if (!t->name || !label)
        goto oom;
    snprintf(label, n, "xsd:%s", local);
    t->label = label;
    t->state = 2;
    if (sc_map_put(L->a, &L->builtins, t->name, t))
        goto oom;
    return t;
oom:
    sc_fail(L->e, FERRY_ENOMEM, "out of memory");
    return NULL;
}

/* ---- growing arrays in the arena ---- */

static int grow(sc_arena *a, void **arr, size_t *cap, size_t n, size_t size) {
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *p = sc_alloc(a, ncap * size);
    if (!p)
        return -1;
    if (n)
        memcpy(p, *arr, n * size);
    *arr = p;
    *cap = ncap;
    return 0;
}

static int add_elem(sc_loader *L, sc_type *t, sc_elem *e) {
    void *arr = t->elems;
    if (grow(L->a, &arr, &t->cap_elems, t->nelems, sizeof(*t->elems)))
        return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
    t->elems = arr;
    t->elems[t->nelems++] = e;
    return 0;
}

static int add_attr(sc_loader *L, sc_type *t, const sc_attr *at) {
    for (size_t i = 0; i < t->nattrs; i++)
        if (!strcmp(t->attrs[i].name, at->name))
            return 0; /* a restriction or a group repeating one */
    void *arr = t->attrs;
    if (grow(L->a, &arr, &t->cap_attrs, t->nattrs, sizeof(*t->attrs)))
        return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
    t->attrs = arr;
    t->attrs[t->nattrs++] = *at;
    return 0;
}

static int new_choice(sc_loader *L, sc_type *t, long min) {
    void *arr = t->choices;
    if (grow(L->a, &arr, &t->cap_choices, t->nchoices, sizeof(*t->choices))) {
        sc_fail(L->e, FERRY_ENOMEM, "out of memory");
        return -1;
    }
    t->choices = arr;
    t->choices[t->nchoices].min = min;
    return (int)++t->nchoices;
}

/* ---- occurrences ---- */

static long occurs(const xmlNode *n, const char *attr, long dflt) {
    const char *v = sc_prop(n, attr);
    if (!v)
        return dflt;
    while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
        v++;
    if (!strncmp(v, "unbounded", 9))
        return -1;
    errno = 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || errno || x < 0)
        return dflt;
    return x;
}

static int is_true(const char *v) {
    return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

static sc_type *anon_type(sc_loader *L, xmlNodePtr n, const sc_schema *s);
static sc_type *type_of_attr(sc_loader *L, xmlNodePtr n, const char *value,
                             const sc_schema *s, int now);

/* A QName in a schema: an unprefixed name in a chameleon schema (one
 * included without a namespace) has the includer's namespace. */
static int qn(const xmlNode *n, const char *value, const sc_schema *s,
              const char **ns, const char **local) {
    if (sc_qname(n, value, ns, local))
        return -1;
    if (!*ns && s && s->chameleon)
        *ns = s->tns;
    return 0;
}

/* ---- simple types ---- */

static void add_enum(sc_loader *L, sc_type *t, const char *v, size_t *cap,
                     size_t *n) {
    const char **e = (const char **)t->enums;
    if (*n + 2 > *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        const char **p = sc_alloc(L->a, ncap * sizeof(*p));
        if (!p) {
            sc_fail(L->e, FERRY_ENOMEM, "out of memory");
            return;
        }
        if (*n)
            memcpy(p, e, *n * sizeof(*p));
        e = p;
        *cap = ncap;
    }
    e[(*n)++] = sc_strdup(L->a, v);
    e[*n] = NULL;
    t->enums = e;
}

static int64_t facet_int(const char *v, int64_t dflt) {
    if (!v)
        return dflt;
    errno = 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || errno)
        return dflt;
    return x;
}

static void build_simple(sc_loader *L, sc_type *t, xmlNodePtr node,
                         const sc_schema *s) {
    t->simple = 1;
    t->kind = SC_STRING;
    t->lo = INT64_MIN;
    t->hi = INT64_MAX;
    for (xmlNodePtr c = sc_first_elem(node); c; c = sc_next_elem(c)) {
        if (sc_is(c, SC_NS_XSD, "restriction")) {
            sc_type *base = NULL;
            const char *b = sc_prop(c, "base");
            if (b)
                base = type_of_attr(L, c, b, s, 1);
            else
                for (xmlNodePtr d = sc_first_elem(c); d; d = sc_next_elem(d))
                    if (sc_is(d, SC_NS_XSD, "simpleType"))
                        base = anon_type(L, d, s);
            if (base && base->simple) {
                t->kind = base->kind;
                t->lo = base->lo;
                t->hi = base->hi;
                t->enums = base->enums;
                if (!t->name)
                    t->label = base->label;
            }
            size_t cap = 0, n = 0;
            for (xmlNodePtr f = sc_first_elem(c); f; f = sc_next_elem(f)) {
                const char *v = sc_prop(f, "value");
                if (sc_is(f, SC_NS_XSD, "enumeration") && v) {
                    if (!n)
                        t->enums = NULL;
                    add_enum(L, t, v, &cap, &n);
                } else if (t->kind == SC_INTEGER) {
                    if (sc_is(f, SC_NS_XSD, "minInclusive"))
                        t->lo = facet_int(v, t->lo);
                    else if (sc_is(f, SC_NS_XSD, "maxInclusive"))
                        t->hi = facet_int(v, t->hi);
                    else if (sc_is(f, SC_NS_XSD, "minExclusive") &&
                             facet_int(v, INT64_MAX) < INT64_MAX)
                        t->lo = facet_int(v, t->lo) + 1;
                    else if (sc_is(f, SC_NS_XSD, "maxExclusive") &&
                             facet_int(v, INT64_MIN) > INT64_MIN)
                        t->hi = facet_int(v, t->hi) - 1;
                }
            }
        } else if (sc_is(c, SC_NS_XSD, "list") ||
                   sc_is(c, SC_NS_XSD, "union")) {
            t->kind = SC_STRING; /* space-separated items, or members */
        }
    }
    if (!t->label)
        t->label = "xsd:string";
}

/* ---- complex types ---- */

static int particles(sc_loader *L, sc_type *t, xmlNodePtr n, const sc_schema *s,
                     int choice, int opt, int rep);
static int attributes(sc_loader *L, sc_type *t, xmlNodePtr n,
                      const sc_schema *s);

static sc_elem *make_elem(sc_loader *L, xmlNodePtr n, const sc_schema *s) {
    sc_elem *e = sc_alloc(L->a, sizeof(*e));
    if (!e) {
        sc_fail(L->e, FERRY_ENOMEM, "out of memory");
        return NULL;
    }
    e->min = occurs(n, "minOccurs", 1);
    e->max = occurs(n, "maxOccurs", 1);
    const char *ref = sc_prop(n, "ref");
    if (ref) {
        const char *ns, *local;
        if (qn(n, ref, s, &ns, &local)) {
            sc_warn(L, "element ref '%s': undeclared prefix", ref);
            return NULL;
        }
        sc_elem *g = sc_get_element(L, ns, local);
        if (!g)
            return NULL;
        e->name = g->name;
        e->ns = g->ns;
        e->ref = g;
        return sc_fixup_later(L, e) ? NULL : e;
    }
    const char *name = sc_prop(n, "name");
    if (!name || !sc_ncname(name)) {
        sc_warn(L, "an element without a name or ref, or with a name that "
                   "is not an XML name, was left out");
        return NULL;
    }
    e->name = sc_strdup(L->a, name);
    const char *form = sc_prop(n, "form");
    int q = form ? !strcmp(form, "qualified") : s->elem_qualified;
    e->ns = q ? s->tns : NULL;
    e->nillable = is_true(sc_prop(n, "nillable"));
    const char *type = sc_prop(n, "type");
    if (type) {
        e->type_ref = sc_strdup(L->a, type);
        e->type = type_of_attr(L, n, type, s, 0);
    } else {
        for (xmlNodePtr c = sc_first_elem(n); c; c = sc_next_elem(c))
            if (sc_is(c, SC_NS_XSD, "complexType") ||
                sc_is(c, SC_NS_XSD, "simpleType"))
                e->type = anon_type(L, c, s);
        if (!e->type && !L->e->code)
            e->type = sc_builtin(L, "anyType");
    }
    return e->type ? e : NULL;
}

/* The model group a group reference stands for. */
static xmlNodePtr group_content(sc_loader *L, xmlNodePtr ref_node,
                                const char *ref, const sc_schema *s,
                                sc_decl **out) {
    const char *ns, *local;
    if (qn(ref_node, ref, s, &ns, &local)) {
        sc_warn(L, "group ref '%s': undeclared prefix", ref);
        return NULL;
    }
    sc_decl *d = sc_map_get(&L->groups, sc_qkey(L->a, ns, local));
    if (!d) {
        sc_warn(L, "group '%s' is not defined; left out", ref);
        return NULL;
    }
    *out = d;
    for (xmlNodePtr c = sc_first_elem(d->node); c; c = sc_next_elem(c))
        if (sc_is(c, SC_NS_XSD, "sequence") || sc_is(c, SC_NS_XSD, "choice") ||
            sc_is(c, SC_NS_XSD, "all"))
            return c;
    return NULL;
}

static int particles(sc_loader *L, sc_type *t, xmlNodePtr n, const sc_schema *s,
                     int choice, int opt, int rep) {
    if (L->e->code)
        return -1;
    if (++L->depth > MAX_BUILD_DEPTH) {
        L->depth--;
        return sc_fail(L->e, FERRY_EPARSE,
                       "the schema nests model groups more than %d deep",
                       MAX_BUILD_DEPTH);
    }
    int rc = 0;
    long min = occurs(n, "minOccurs", 1), max = occurs(n, "maxOccurs", 1);
    if (max == 0)
        goto out;
    if (sc_is(n, SC_NS_XSD, "element")) {
        sc_elem *e = make_elem(L, n, s);
        if (!e) {
            rc = L->e->code ? -1 : 0;
            goto out;
        }
        if (opt)
            e->min = 0;
        if (rep)
            e->max = -1;
        e->choice = choice;
        rc = add_elem(L, t, e);
    } else if (sc_is(n, SC_NS_XSD, "sequence") || sc_is(n, SC_NS_XSD, "all")) {
        int o = opt || min == 0 || choice, r = rep || max != 1;
        for (xmlNodePtr c = sc_first_elem(n); c && !rc; c = sc_next_elem(c))
            rc = particles(L, t, c, s, 0, o, r);
    } else if (sc_is(n, SC_NS_XSD, "choice")) {
        int o = opt || min == 0, r = rep || max != 1;
        int g = choice ? 0 : new_choice(L, t, o ? 0 : 1);
        if (g < 0) {
            rc = -1;
            goto out;
        }
        for (xmlNodePtr c = sc_first_elem(n); c && !rc; c = sc_next_elem(c)) {
            if (g && sc_is(c, SC_NS_XSD, "element"))
                rc = particles(L, t, c, s, g, 0, r);
            else
                rc = particles(L, t, c, s, 0, 1, r);
        }
    } else if (sc_is(n, SC_NS_XSD, "group")) {
        const char *ref = sc_prop(n, "ref");
        sc_decl *d = NULL;
        xmlNodePtr g = ref ? group_content(L, n, ref, s, &d) : NULL;
        if (g && !d->building) {
            d->building = 1;
            rc = particles(L, t, g, d->schema, choice, opt || min == 0,
                           rep || max != 1);
            d->building = 0;
        }
    } else if (sc_is(n, SC_NS_XSD, "any")) {
        t->open = 1;
    }
out:
    L->depth--;
    return rc;
}

static sc_type *attr_type(sc_loader *L, xmlNodePtr n, const sc_schema *s) {
    const char *type = sc_prop(n, "type");
    if (type)
        return type_of_attr(L, n, type, s, 1);
    for (xmlNodePtr c = sc_first_elem(n); c; c = sc_next_elem(c))
        if (sc_is(c, SC_NS_XSD, "simpleType"))
            return anon_type(L, c, s);
    return sc_builtin(L, "string");
}

static int attribute(sc_loader *L, sc_type *t, xmlNodePtr n,
                     const sc_schema *s) {
    sc_attr at = {0};
    const char *use = sc_prop(n, "use");
    if (use && !strcmp(use, "prohibited"))
        return 0;
    at.required = use && !strcmp(use, "required");
    const char *ref = sc_prop(n, "ref");
    if (ref) {
        const char *ns, *local;
        if (qn(n, ref, s, &ns, &local))
            return 0;
        if (ns && !strcmp(ns, "http://www.w3.org/XML/1998/namespace"))
            return 0; /* xml:lang and friends */
        sc_decl *d = sc_map_get(&L->attributes, sc_qkey(L->a, ns, local));
        if (!d) {
            sc_warn(L, "attribute '%s' is not defined; left out", ref);
            return 0;
        }
        if (!sc_ncname(local))
            return 0;
        at.name = sc_strdup(L->a, local);
        at.ns = d->schema->tns;
        at.type = attr_type(L, d->node, d->schema);
    } else {
        const char *name = sc_prop(n, "name");
        if (!name || !sc_ncname(name))
            return 0;
        at.name = sc_strdup(L->a, name);
        const char *form = sc_prop(n, "form");
        int q = form ? !strcmp(form, "qualified") : s->attr_qualified;
        at.ns = q ? s->tns : NULL;
        at.type = attr_type(L, n, s);
    }
    if (!at.type || !at.name)
        return L->e->code ? -1 : 0;
    return add_attr(L, t, &at);
}

static int attributes(sc_loader *L, sc_type *t, xmlNodePtr n,
                      const sc_schema *s) {
    if (sc_is(n, SC_NS_XSD, "attribute"))
        return attribute(L, t, n, s);
    if (!sc_is(n, SC_NS_XSD, "attributeGroup"))
        return 0;
    const char *ref = sc_prop(n, "ref");
    const char *ns, *local;
    if (!ref || qn(n, ref, s, &ns, &local))
        return 0;
    sc_decl *d = sc_map_get(&L->attr_groups, sc_qkey(L->a, ns, local));
    if (!d) {
        sc_warn(L, "attribute group '%s' is not defined; left out", ref);
        return 0;
    }
    if (d->building)
        return 0;
    d->building = 1;
    int rc = 0;
    for (xmlNodePtr c = sc_first_elem(d->node); c && !rc; c = sc_next_elem(c))
        rc = attributes(L, t, c, d->schema);
    d->building = 0;
    return rc;
}

static int copy_base(sc_loader *L, sc_type *t, const sc_type *base) {
    if (base->state == 1) {
        sc_warn(L, "type '%s' derives from itself; its base was left out",
                t->label);
        return 0;
    }
    size_t off = t->nchoices;
    for (size_t i = 0; i < base->nchoices; i++)
        if (new_choice(L, t, base->choices[i].min) < 0)
            return -1;
    for (size_t i = 0; i < base->nelems; i++) {
        sc_elem *e = base->elems[i];
        if (e->choice) {
            sc_elem *c = sc_alloc(L->a, sizeof(*c));
            if (!c)
                return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
            *c = *e;
            c->choice = (int)(e->choice + off);
            if (c->ref && sc_fixup_later(L, c))
                return -1;
            e = c;
        }
        if (add_elem(L, t, e))
            return -1;
    }
    for (size_t i = 0; i < base->nattrs; i++)
        if (add_attr(L, t, &base->attrs[i]))
            return -1;
    t->open |= base->open;
    return 0;
}

static int derivation(sc_loader *L, sc_type *t, xmlNodePtr content,
                      const sc_schema *s, int simple) {
    for (xmlNodePtr d = sc_first_elem(content); d; d = sc_next_elem(d)) {
        int ext = sc_is(d, SC_NS_XSD, "extension");
        if (!ext && !sc_is(d, SC_NS_XSD, "restriction"))
            continue;
        const char *b = sc_prop(d, "base");
        sc_type *base = b ? type_of_attr(L, d, b, s, 1) : NULL;
        if (L->e->code)
            return -1;
        if (base && simple) {
            t->text = base->simple ? base : base->text;
            if (!t->text)
                t->text = sc_builtin(L, "string");
            for (size_t i = 0; i < base->nattrs; i++)
                if (add_attr(L, t, &base->attrs[i]))
                    return -1;
        } else if (base && base->kind == SC_ANY && base->simple) {
            /* soapenc:Array and friends: content left open */
            t->open = 1;
        } else if (base && ext && copy_base(L, t, base)) {
            return -1;
        } else if (base && !ext) {
            /* A restriction restates the content; attributes carry over. */
            for (size_t i = 0; i < base->nattrs; i++)
                if (add_attr(L, t, &base->attrs[i]))
                    return -1;
        }
        for (xmlNodePtr c = sc_first_elem(d); c; c = sc_next_elem(c)) {
            int rc = 0;
            if (!simple &&
                (sc_is(c, SC_NS_XSD, "sequence") ||
                 sc_is(c, SC_NS_XSD, "choice") || sc_is(c, SC_NS_XSD, "all") ||
                 sc_is(c, SC_NS_XSD, "group")))
                rc = particles(L, t, c, s, 0, 0, 0);
            else
                rc = attributes(L, t, c, s);
            if (rc)
                return -1;
        }
    }
    return 0;
}

static void build_complex(sc_loader *L, sc_type *t, xmlNodePtr node,
                          const sc_schema *s) {
    t->simple = 0;
    t->kind = SC_STRING;
    for (xmlNodePtr c = sc_first_elem(node); c && !L->e->code;
         c = sc_next_elem(c)) {
        if (sc_is(c, SC_NS_XSD, "sequence") || sc_is(c, SC_NS_XSD, "choice") ||
            sc_is(c, SC_NS_XSD, "all") || sc_is(c, SC_NS_XSD, "group"))
            particles(L, t, c, s, 0, 0, 0);
        else if (sc_is(c, SC_NS_XSD, "complexContent"))
            derivation(L, t, c, s, 0);
        else if (sc_is(c, SC_NS_XSD, "simpleContent"))
            derivation(L, t, c, s, 1);
        else
            attributes(L, t, c, s);
    }
    if (!t->label)
        t->label = "anonymous";
}

static sc_type *build(sc_loader *L, sc_type *t, xmlNodePtr n,
                      const sc_schema *s) {
    if (++L->depth > MAX_BUILD_DEPTH) {
        L->depth--;
        sc_fail(L->e, FERRY_EPARSE, "the schema nests types more than %d deep",
                MAX_BUILD_DEPTH);
        return NULL;
    }
    t->state = 1;
    if (sc_is(n, SC_NS_XSD, "complexType"))
        build_complex(L, t, n, s);
    else
        build_simple(L, t, n, s);
    t->state = 2;
    L->depth--;
    return L->e->code ? NULL : t;
}

static sc_type *anon_type(sc_loader *L, xmlNodePtr n, const sc_schema *s) {
    sc_type *t = sc_alloc(L->a, sizeof(*t));
    if (!t) {
        sc_fail(L->e, FERRY_ENOMEM, "out of memory");
        return NULL;
    }
    return build(L, t, n, s);
}

int sc_fixup_later(sc_loader *L, sc_elem *e) {
    void *arr = L->fixups;
    if (grow(L->a, &arr, &L->cap_fixups, L->nfixups, sizeof(*L->fixups)))
        return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
    L->fixups = arr;
    L->fixups[L->nfixups++] = e;
    return 0;
}

static sc_type *any_named(sc_loader *L, const char *written) {
    sc_type *t = sc_alloc(L->a, sizeof(*t));
    if (!t) {
        sc_fail(L->e, FERRY_ENOMEM, "out of memory");
        return NULL;
    }
    t->simple = 1;
    t->kind = SC_ANY;
    t->label = sc_strdup(L->a, written);
    t->state = 2;
    return t;
}

static int enqueue(sc_loader *L, sc_type *t) {
    void *arr = L->queue;
    if (grow(L->a, &arr, &L->cap_queue, L->nqueue, sizeof(*L->queue)))
        return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
    L->queue = arr;
    L->queue[L->nqueue++] = t;
    return 0;
}

int sc_ensure(sc_loader *L, sc_type *t) {
    if (!t || t->state || !t->pending)
        return L->e->code ? -1 : 0;
    const sc_decl *d = t->pending;
    t->pending = NULL;
    return build(L, t, d->node, d->schema) ? 0 : -1;
}

int sc_drain(sc_loader *L) {
    for (size_t i = 0; i < L->nqueue && !L->e->code; i++)
        if (sc_ensure(L, L->queue[i]))
            return -1;
    return L->e->code ? -1 : 0;
}

sc_type *sc_get_type(sc_loader *L, const char *ns, const char *local,
                     const char *written, int now) {
    if (is_xsd_ns(ns) || (ns && !strcmp(ns, SC_NS_SOAPENC)))
        return sc_builtin(L, local);
    sc_decl *d = sc_map_get(&L->types, sc_qkey(L->a, ns, local));
    if (!d) {
        sc_warn(L, "type '%s' is not defined; taken as xsd:anyType", written);
        return any_named(L, written);
    }
    sc_type *t = d->built;
    if (!t) {
        t = sc_alloc(L->a, sizeof(*t));
        if (!t) {
            sc_fail(L->e, FERRY_ENOMEM, "out of memory");
            return NULL;
        }
        t->name = sc_strdup(L->a, local);
        t->ns = d->schema->tns;
        t->label = t->name;
        t->pending = d;
        d->built = t;
        if (!now && enqueue(L, t))
            return NULL;
    }
    if (now && sc_ensure(L, t))
        return NULL;
    return t;
}

static sc_type *type_of_attr(sc_loader *L, xmlNodePtr n, const char *value,
                             const sc_schema *s, int now) {
    const char *ns, *local;
    if (qn(n, value, s, &ns, &local)) {
        sc_warn(L, "type '%s': undeclared prefix; taken as xsd:anyType", value);
        return any_named(L, value);
    }
    return sc_get_type(L, ns, local, value, now);
}

sc_elem *sc_get_element(sc_loader *L, const char *ns, const char *local) {
    if (!sc_ncname(local)) {
        sc_warn(L, "element '%s' is not an XML name; left out", local);
        return NULL;
    }
    const char *key = sc_qkey(L->a, ns, local);
    sc_decl *d = key ? sc_map_get(&L->elements, key) : NULL;
    if (d && d->built)
        return d->built;
    sc_elem *e = sc_alloc(L->a, sizeof(*e));
    if (!e) {
        sc_fail(L->e, FERRY_ENOMEM, "out of memory");
        return NULL;
    }
    e->min = e->max = 1;
    e->name = sc_strdup(L->a, local);
    if (!d) {
        sc_warn(L, "element '{%s}%s' is not defined; taken as xsd:anyType",
                ns ? ns : "", local);
        e->ns = sc_strdup(L->a, ns);
        e->type = sc_builtin(L, "anyType");
        return e->type ? e : NULL;
    }
    d->built = e;
    e->ns = d->schema->tns;
    e->nillable = is_true(sc_prop(d->node, "nillable"));
    const char *type = sc_prop(d->node, "type");
    if (type) {
        e->type_ref = sc_strdup(L->a, type);
        e->type = type_of_attr(L, d->node, type, d->schema, 0);
    } else {
        for (xmlNodePtr c = sc_first_elem(d->node); c; c = sc_next_elem(c))
            if (sc_is(c, SC_NS_XSD, "complexType") ||
                sc_is(c, SC_NS_XSD, "simpleType"))
                e->type = anon_type(L, c, d->schema);
        if (!e->type && !L->e->code)
            e->type = sc_builtin(L, "anyType");
    }
    return e->type ? e : NULL;
}
