/*
 * WSDL 1.1 documents into the model: the main document and what it
 * imports (wsdl:import, xsd:import, xsd:include, xsd:redefine), bounded in
 * depth, count and bytes; then each SOAP port of each service with its
 * operations resolved through binding, portType, messages and parts to
 * schema elements and types.
 *
 * Where a document may pull others from: one fetched over http(s) only
 * from http(s); one read from a file from files or http(s); one given
 * inline from http(s), or relative to its base. Locations are resolved
 * against the importing document's own location.
 */
#include "wsdl_internal.h"

#include <libxml/uri.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- table ---- */

static size_t hash(const char *s) {
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int sc_map_put(sc_arena *a, sc_map *m, const char *key, void *val) {
    if (!key)
        return -1;
    if (m->n * 2 >= m->nslots) {
        size_t ns = m->nslots ? m->nslots * 2 : 64;
        sc_map_ent **slots = sc_alloc(a, ns * sizeof(*slots));
        if (!slots)
            return -1;
        for (size_t i = 0; i < m->nslots; i++) {
            sc_map_ent *e = m->slots[i];
            while (e) {
                sc_map_ent *next = e->next;
                size_t h = hash(e->key) % ns;
                e->next = slots[h];
                slots[h] = e;
                e = next;
            }
        }
        m->slots = slots;
        m->nslots = ns;
    }
    size_t h = hash(key) % m->nslots;
    for (sc_map_ent *e = m->slots[h]; e; e = e->next)
        if (!strcmp(e->key, key)) {
            e->val = val;
            return 0;
        }
    sc_map_ent *e = sc_alloc(a, sizeof(*e));
    if (!e)
        return -1;
    e->key = key;
    e->val = val;
    e->next = m->slots[h];
    m->slots[h] = e;
    m->n++;
    return 0;
}

void *sc_map_get(const sc_map *m, const char *key) {
    if (!key || !m->nslots)
        return NULL;
    for (sc_map_ent *e = m->slots[hash(key) % m->nslots]; e; e = e->next)
        if (!strcmp(e->key, key))
            return e->val;
    return NULL;
}

const char *sc_qkey(sc_arena *a, const char *ns, const char *local) {
    size_t n = (ns ? strlen(ns) : 0) + strlen(local) + 3;
    char *k = sc_alloc(a, n);
    if (k)
        snprintf(k, n, "{%s}%s", ns ? ns : "", local);
    return k;
}

int sc_qname(const xmlNode *node, const char *value, const char **ns,
             const char **local) {
    while (*value == ' ' || *value == '\t' || *value == '\n' || *value == '\r')
        value++;
    const char *colon = strchr(value, ':');
    char prefix[128];
    xmlNsPtr x;
    if (colon) {
        size_t n = (size_t)(colon - value);
        if (n >= sizeof(prefix))
            return -1;
        memcpy(prefix, value, n);
        prefix[n] = 0;
        x = xmlSearchNs(node->doc, (xmlNodePtr)node, (const xmlChar *)prefix);
        if (!x)
            return -1;
        *local = colon + 1;
    } else {
        x = xmlSearchNs(node->doc, (xmlNodePtr)node, NULL);
        *local = value;
    }
    *ns = x && x->href && *x->href ? (const char *)x->href : NULL;
    return 0;
}

void sc_warn(sc_loader *L, const char *fmt, ...) {
    if (!L->warnings || json_array_size(L->warnings) >= 50)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_array_append_new(L->warnings, json_string(msg));
}

/* ---- documents ---- */

static int is_url(const char *s) {
    return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8);
}

static int register_decl(sc_loader *L, sc_map *m, xmlNodePtr n,
                         const sc_schema *s, const char *tns) {
    const char *name = sc_prop(n, "name");
    if (!name)
        return 0;
    const char *key = sc_qkey(L->a, tns, name);
    if (sc_map_get(m, key))
        return 0; /* the first declaration wins (redefine, duplicates) */
    sc_decl *d = sc_alloc(L->a, sizeof(*d));
    if (!d || !key)
        return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
    d->node = n;
    d->schema = s;
    d->tns = tns;
    if (sc_map_put(L->a, m, key, d))
        return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
    return 0;
}

static xmlDocPtr refuse_local(sc_loader *L, const char *base,
                              const char *location) {
    sc_fail(L->e, FERRY_EPERM,
            "'%s' imports '%s': a document from the network or given inline "
            "may only import http:// or https:// documents",
            base ? base : "the WSDL", location);
    return NULL;
}

xmlDocPtr sc_load_import(sc_loader *L, const char *location, const char *base,
                         int remote, int depth, const char **out_loc,
                         int *out_remote, int *already) {
    *already = 0;
    if (depth > SC_MAX_IMPORT_DEPTH) {
        sc_fail(L->e, FERRY_ETOOBIG,
                "'%s' is imported more than %d levels deep", location,
                SC_MAX_IMPORT_DEPTH);
        return NULL;
    }
    if (remote && (location[0] == '/' || !strncasecmp(location, "file:", 5)))
        return refuse_local(L, base, location);
    char *abs = NULL;
    if (is_url(location)) {
        abs = strdup(location);
    } else if (!base) {
        sc_fail(L->e, FERRY_EINVAL,
                "the WSDL imports '%s', a relative location, but was given "
                "inline: give base_url to resolve it against",
                location);
        return NULL;
    } else {
        abs = (char *)xmlBuildURI((const xmlChar *)location,
                                  (const xmlChar *)base);
        if (!abs) {
            sc_fail(L->e, FERRY_EINVAL, "cannot resolve '%s' against '%s'",
                    location, base);
            return NULL;
        }
    }
    if (!abs) {
        sc_fail(L->e, FERRY_ENOMEM, "out of memory");
        return NULL;
    }
    int url = is_url(abs);
    if (!url && remote) {
        xmlFree(abs);
        return refuse_local(L, base, location);
    }
    if (!url && !strncmp(abs, "file://", 7)) {
        /* file:///path -> /path (xmlBuildURI keeps the scheme). */
        memmove(abs, abs + 7, strlen(abs + 7) + 1);
    }
    if (!url && abs[0] != '/') {
        sc_fail(L->e, FERRY_EINVAL,
                "'%s' is neither an http(s) URL nor an absolute path", abs);
        xmlFree(abs);
        return NULL;
    }
    xmlDocPtr seen = sc_map_get(&L->seen, abs);
    if (seen) {
        for (size_t i = 0; i < L->w->ndocuments; i++)
            if (!strcmp(L->w->documents[i], abs))
                *out_loc = L->w->documents[i];
        *out_remote = is_url(abs);
        xmlFree(abs);
        *already = 1;
        return seen;
    }
    if (L->ndocs >= SC_MAX_DOCUMENTS) {
        sc_fail(L->e, FERRY_ETOOBIG, "the WSDL pulls in more than %d documents",
                SC_MAX_DOCUMENTS);
        xmlFree(abs);
        return NULL;
    }
    if (!L->src->fetch) {
        sc_fail(L->e, FERRY_EINVAL,
                "cannot load '%s': imports are not followed", abs);
        xmlFree(abs);
        return NULL;
    }
    char *data = NULL;
    size_t len = 0;
    if (L->src->fetch(L->src->ud, abs, &data, &len, L->e)) {
        if (!L->e->code)
            sc_fail(L->e, FERRY_EIO, "cannot load '%s'", abs);
        xmlFree(abs);
        return NULL;
    }
    L->w->bytes += len;
    if (L->w->bytes > SC_MAX_WSDL_BYTES) {
        free(data);
        sc_fail(L->e, FERRY_ETOOBIG,
                "the WSDL and its imports are larger than %u MiB (at '%s')",
                SC_MAX_WSDL_BYTES >> 20, abs);
        xmlFree(abs);
        return NULL;
    }
    xmlDocPtr doc = sc_parse_xml(data, len, abs, L->e);
    free(data);
    if (!doc) {
        xmlFree(abs);
        return NULL;
    }
    L->docs[L->ndocs++] = doc;
    const char **docs = sc_alloc(L->a, (L->w->ndocuments + 1) * sizeof(char *));
    const char *loc = sc_strdup(L->a, abs);
    xmlFree(abs);
    if (!docs || !loc || sc_map_put(L->a, &L->seen, loc, doc)) {
        sc_fail(L->e, FERRY_ENOMEM, "out of memory");
        return NULL;
    }
    if (L->w->ndocuments)
        memcpy(docs, L->w->documents, L->w->ndocuments * sizeof(char *));
    docs[L->w->ndocuments++] = loc;
    L->w->documents = docs;
    *out_loc = loc;
    *out_remote = is_url(loc);
    return doc;
}

int sc_schema_register(sc_loader *L, xmlNodePtr schema, const char *chameleon,
                       const char *base, int remote, int depth) {
    const char *tns = sc_prop(schema, "targetNamespace");
    if (schema->parent && schema->parent->type == XML_DOCUMENT_NODE && base) {
        /* A schema document: once per namespace it is registered under
         * (an include without a namespace may bring it in under several). */
        const char *key = sc_qkey(L->a, tns && *tns ? tns : chameleon, base);
        if (!key)
            return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
        if (sc_map_get(&L->schemas, key))
            return 0;
        if (sc_map_put(L->a, &L->schemas, key, (void *)key))
            return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
    }
    sc_schema *s = sc_alloc(L->a, sizeof(*s));
    if (!s)
        return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
    s->tns = sc_strdup(L->a, tns && *tns ? tns : chameleon);
    s->chameleon = !(tns && *tns) && chameleon;
    const char *ef = sc_prop(schema, "elementFormDefault");
    const char *af = sc_prop(schema, "attributeFormDefault");
    s->elem_qualified = ef && !strcmp(ef, "qualified");
    s->attr_qualified = af && !strcmp(af, "qualified");
    for (xmlNodePtr c = sc_first_elem(schema); c && !L->e->code;
         c = sc_next_elem(c)) {
        int imp = sc_is(c, SC_NS_XSD, "import");
        if (imp || sc_is(c, SC_NS_XSD, "include") ||
            sc_is(c, SC_NS_XSD, "redefine")) {
            const char *loc = sc_prop(c, "schemaLocation");
            if (!loc || !*loc)
                continue; /* a namespace the WSDL's other schemas define */
            const char *abs = NULL;
            int r, already;
            /* An included schema without a namespace takes ours. */
            const char *cham = imp ? NULL : s->tns;
            xmlDocPtr d = sc_load_import(L, loc, base, remote, depth + 1, &abs,
                                         &r, &already);
            if (!d)
                return -1;
            xmlNodePtr root = xmlDocGetRootElement(d);
            if (!sc_is(root, SC_NS_XSD, "schema"))
                return sc_fail(L->e, FERRY_EPARSE,
                               "'%s' (imported by a schema) is not an XML "
                               "Schema",
                               abs);
            /* xsd:redefine is read as an include: the redefinitions in it
             * are left out. */
            if (sc_schema_register(L, root, cham, abs, r, depth + 1))
                return -1;
            continue;
        }
        sc_map *m = sc_is(c, SC_NS_XSD, "element")          ? &L->elements
                    : sc_is(c, SC_NS_XSD, "complexType")    ? &L->types
                    : sc_is(c, SC_NS_XSD, "simpleType")     ? &L->types
                    : sc_is(c, SC_NS_XSD, "group")          ? &L->groups
                    : sc_is(c, SC_NS_XSD, "attributeGroup") ? &L->attr_groups
                    : sc_is(c, SC_NS_XSD, "attribute")      ? &L->attributes
                                                            : NULL;
        if (m && register_decl(L, m, c, s, s->tns))
            return -1;
    }
    return L->e->code ? -1 : 0;
}

static int register_wsdl(sc_loader *L, xmlNodePtr defs, const char *base,
                         int remote, int depth);

static int wsdl_import(sc_loader *L, xmlNodePtr imp, const char *base,
                       int remote, int depth) {
    const char *loc = sc_prop(imp, "location");
    if (!loc || !*loc)
        return 0;
    const char *abs = NULL;
    int r, already;
    xmlDocPtr d =
        sc_load_import(L, loc, base, remote, depth + 1, &abs, &r, &already);
    if (!d)
        return -1;
    if (already)
        return 0; /* a WSDL document registers once */
    xmlNodePtr root = xmlDocGetRootElement(d);
    if (sc_is(root, SC_NS_WSDL, "definitions"))
        return register_wsdl(L, root, abs, r, depth + 1);
    if (sc_is(root, SC_NS_XSD, "schema")) /* common, if not by the book */
        return sc_schema_register(L, root, NULL, abs, r, depth + 1);
    return sc_fail(L->e, FERRY_EPARSE,
                   "'%s' (a wsdl:import) is neither a WSDL 1.1 document nor "
                   "an XML Schema",
                   abs);
}

static int register_wsdl(sc_loader *L, xmlNodePtr defs, const char *base,
                         int remote, int depth) {
    const char *t = sc_prop(defs, "targetNamespace");
    const char *tns = sc_strdup(L->a, t && *t ? t : NULL);
    if (!L->w->tns && tns) {
        L->w->tns = tns;
        L->w->name = sc_strdup(L->a, sc_prop(defs, "name"));
    }
    for (xmlNodePtr c = sc_first_elem(defs); c && !L->e->code;
         c = sc_next_elem(c)) {
        if (sc_is(c, SC_NS_WSDL, "import")) {
            if (wsdl_import(L, c, base, remote, depth))
                return -1;
        } else if (sc_is(c, SC_NS_WSDL, "types")) {
            for (xmlNodePtr s = sc_first_elem(c); s; s = sc_next_elem(s))
                if (sc_is(s, SC_NS_XSD, "schema") &&
                    sc_schema_register(L, s, NULL, base, remote, depth))
                    return -1;
        } else if (sc_is(c, SC_NS_WSDL, "message")) {
            if (register_decl(L, &L->messages, c, NULL, tns))
                return -1;
        } else if (sc_is(c, SC_NS_WSDL, "portType")) {
            if (register_decl(L, &L->port_types, c, NULL, tns))
                return -1;
        } else if (sc_is(c, SC_NS_WSDL, "binding")) {
            if (register_decl(L, &L->bindings, c, NULL, tns))
                return -1;
        } else if (sc_is(c, SC_NS_WSDL, "service")) {
            if (L->nservices == L->cap_services) {
                size_t cap = L->cap_services ? L->cap_services * 2 : 4;
                sc_decl *s = sc_alloc(L->a, cap * sizeof(*s));
                if (!s)
                    return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
                if (L->nservices)
                    memcpy(s, L->services, L->nservices * sizeof(*s));
                L->services = s;
                L->cap_services = cap;
            }
            L->services[L->nservices++] = (sc_decl){.node = c, .tns = tns};
        }
    }
    return L->e->code ? -1 : 0;
}

/* ---- operations ---- */

static sc_decl *lookup_q(sc_loader *L, sc_map *m, xmlNodePtr n,
                         const char *attr, const char *what) {
    const char *v = sc_prop(n, attr);
    const char *ns, *local;
    if (!v)
        return NULL;
    if (sc_qname(n, v, &ns, &local)) {
        sc_warn(L, "%s '%s': undeclared prefix", what, v);
        return NULL;
    }
    sc_decl *d = sc_map_get(m, sc_qkey(L->a, ns, local));
    if (!d)
        sc_warn(L, "%s '%s' is not defined", what, v);
    return d;
}

static xmlNodePtr child(xmlNodePtr n, const char *ns, const char *local) {
    for (xmlNodePtr c = sc_first_elem(n); c; c = sc_next_elem(c))
        if (sc_is(c, ns, local))
            return c;
    return NULL;
}

static xmlNodePtr soap_child(xmlNodePtr n, const char *local) {
    xmlNodePtr c = child(n, SC_NS_WSDL_SOAP11, local);
    return c ? c : child(n, SC_NS_WSDL_SOAP12, local);
}

static int in_list(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        const char *q = p;
        while (*q && *q != ' ' && *q != '\t' && *q != '\n')
            q++;
        if ((size_t)(q - p) == n && !strncmp(p, name, n))
            return 1;
        p = q;
    }
    return 0;
}

static char *text_of(sc_loader *L, xmlNodePtr n) {
    xmlChar *t = xmlNodeGetContent(n);
    char *s = sc_strdup(L->a, (const char *)t);
    xmlFree(t);
    return s;
}

/* The message's parts as elements of a made-up type (in the Body, or in
 * an rpc wrapper). */
static sc_type *parts_type(sc_loader *L, xmlNodePtr msg, const char *only,
                           int *nparts, sc_elem **single) {
    sc_type *t = sc_alloc(L->a, sizeof(*t));
    if (!t) {
        sc_fail(L->e, FERRY_ENOMEM, "out of memory");
        return NULL;
    }
    t->label = "parts";
    t->state = 2;
    *nparts = 0;
    *single = NULL;
    for (xmlNodePtr p = sc_first_elem(msg); p && !L->e->code;
         p = sc_next_elem(p)) {
        if (!sc_is(p, SC_NS_WSDL, "part"))
            continue;
        const char *name = sc_prop(p, "name");
        if (!name || (only && !in_list(only, name)))
            continue;
        const char *el = sc_prop(p, "element"), *ty = sc_prop(p, "type");
        const char *ns, *local;
        sc_elem *e = NULL;
        if (el) {
            if (sc_qname(p, el, &ns, &local)) {
                sc_warn(L, "part '%s': undeclared prefix in '%s'", name, el);
                continue;
            }
            sc_elem *g = sc_get_element(L, ns, local);
            if (!g) {
                if (L->e->code)
                    return NULL;
                continue; /* warned */
            }
            *single = *nparts == 0 ? g : NULL;
            /* rpc with an element part (not WS-I, but seen): the element
             * as it is, inside the wrapper. */
            e = g;
        } else {
            if (!sc_ncname(name)) {
                sc_warn(L, "part '%s' is not an XML name; left out", name);
                continue;
            }
            e = sc_alloc(L->a, sizeof(*e));
            if (!e) {
                sc_fail(L->e, FERRY_ENOMEM, "out of memory");
                return NULL;
            }
            e->name = sc_strdup(L->a, name);
            e->min = e->max = 1;
            if (ty) {
                e->type_ref = sc_strdup(L->a, ty);
                if (sc_qname(p, ty, &ns, &local)) {
                    sc_warn(L, "part '%s': undeclared prefix in '%s'", name,
                            ty);
                    e->type = sc_builtin(L, "anyType");
                } else {
                    e->type = sc_get_type(L, ns, local, ty, 0);
                }
            } else {
                e->type = sc_builtin(L, "anyType");
            }
            if (!e->type)
                return NULL;
            *single = NULL;
        }
        void *arr = t->elems;
        if (t->nelems == t->cap_elems) {
            size_t cap = t->cap_elems ? t->cap_elems * 2 : 4;
            sc_elem **a = sc_alloc(L->a, cap * sizeof(*a));
            if (!a) {
                sc_fail(L->e, FERRY_ENOMEM, "out of memory");
                return NULL;
            }
            if (t->nelems)
                memcpy(a, arr, t->nelems * sizeof(*a));
            t->elems = a;
            t->cap_elems = cap;
        }
        t->elems[t->nelems++] = e;
        (*nparts)++;
    }
    return L->e->code ? NULL : t;
}

static int build_body(sc_loader *L, sc_op *op, sc_body *b, xmlNodePtr pt_msg,
                      xmlNodePtr b_msg, int out, int in_wrapped) {
    if (!pt_msg)
        return 0;
    sc_decl *md = lookup_q(L, &L->messages, pt_msg, "message", "message");
    b->present = 1;
    xmlNodePtr body = b_msg ? soap_child(b_msg, "body") : NULL;
    const char *use = body ? sc_prop(body, "use") : NULL;
    if (use && !strcmp(use, "encoded"))
        op->encoded = 1;
    const char *only = body ? sc_prop(body, "parts") : NULL;
    int nparts = 0;
    sc_elem *single = NULL;
    sc_type *t = NULL;
    if (md) {
        t = parts_type(L, md->node, only, &nparts, &single);
        if (!t)
            return -1;
    } else {
        t = sc_alloc(L->a, sizeof(*t));
        if (!t)
            return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
        t->label = "parts";
        t->state = 2;
    }
    if (op->rpc) {
        sc_elem *w = sc_alloc(L->a, sizeof(*w));
        if (!w)
            return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
        size_t n = strlen(op->name) + 9;
        char *name = sc_alloc(L->a, n);
        if (!name)
            return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
        snprintf(name, n, "%s%s", op->name, out ? "Response" : "");
        w->name = name;
        const char *ns = body ? sc_prop(body, "namespace") : NULL;
        w->ns = ns && *ns ? sc_strdup(L->a, ns) : (md ? md->tns : L->w->tns);
        w->min = w->max = 1;
        w->type = t;
        b->wrapper = w;
        b->content = t;
        return 0;
    }
    /* document: wrapped when the one part is an element named after the
     * operation (the response: when the request was) with a complex
     * type. */
    if (single && sc_ensure(L, single->type))
        return -1;
    if (nparts == 1 && single && single->type && !single->type->simple &&
        !single->type->text &&
        (out ? in_wrapped : !strcmp(single->name, op->name))) {
        b->wrapped = 1;
        b->wrapper = single;
        b->content = single->type;
        return 0;
    }
    b->content = t;
    return 0;
}

static int is_true_attr(const xmlNode *n, const char *name) {
    const char *v = sc_prop(n, name);
    return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

static int build_op(sc_loader *L, sc_port *port, sc_op *op, xmlNodePtr bop,
                    xmlNodePtr pt) {
    memset(op, 0, sizeof(*op)); /* the slot of an operation left out */
    op->name = sc_strdup(L->a, sc_prop(bop, "name"));
    if (!op->name)
        return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
    op->rpc = port->rpc;
    xmlNodePtr so = soap_child(bop, "operation");
    if (so) {
        const char *style = sc_prop(so, "style");
        if (style)
            op->rpc = !strcmp(style, "rpc");
        const char *action = sc_prop(so, "soapAction");
        op->action = action ? sc_strdup(L->a, action) : NULL;
        op->action_required = is_true_attr(so, "soapActionRequired");
    }
    xmlNodePtr pop = NULL;
    for (xmlNodePtr c = pt ? sc_first_elem(pt) : NULL; c; c = sc_next_elem(c))
        if (sc_is(c, SC_NS_WSDL, "operation") && sc_prop(c, "name") &&
            !strcmp(sc_prop(c, "name"), op->name)) {
            pop = c;
            break;
        }
    if (!pop) {
        sc_warn(L, "operation '%s' of binding '%s' is not in its portType",
                op->name, port->binding);
        return 0;
    }
    if (op->rpc && !sc_ncname(op->name)) {
        sc_warn(L, "rpc operation '%s' is not an XML name; left out", op->name);
        return 0;
    }
    xmlNodePtr doc = child(pop, SC_NS_WSDL, "documentation");
    if (doc)
        op->doc = text_of(L, doc);
    if (build_body(L, op, &op->in, child(pop, SC_NS_WSDL, "input"),
                   child(bop, SC_NS_WSDL, "input"), 0, 0) ||
        build_body(L, op, &op->out, child(pop, SC_NS_WSDL, "output"),
                   child(bop, SC_NS_WSDL, "output"), 1, op->in.wrapped))
        return -1;
    size_t nf = 0;
    for (xmlNodePtr c = sc_first_elem(pop); c; c = sc_next_elem(c))
        nf += sc_is(c, SC_NS_WSDL, "fault");
    if (nf) {
        op->faults = sc_alloc(L->a, nf * sizeof(*op->faults));
        if (!op->faults)
            return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
    }
    for (xmlNodePtr c = sc_first_elem(pop); c; c = sc_next_elem(c)) {
        if (!sc_is(c, SC_NS_WSDL, "fault"))
            continue;
        sc_fault *f = &op->faults[op->nfaults++];
        f->name = sc_strdup(L->a, sc_prop(c, "name"));
        sc_decl *md = lookup_q(L, &L->messages, c, "message", "message");
        xmlNodePtr part = md ? child(md->node, SC_NS_WSDL, "part") : NULL;
        const char *el = part ? sc_prop(part, "element") : NULL;
        const char *ns, *local;
        if (el && !sc_qname(part, el, &ns, &local)) {
            f->elem = sc_get_element(L, ns, local);
            if (!f->elem && L->e->code)
                return -1;
        }
    }
    return L->e->code ? -1 : 0;
}

static int build_port(sc_loader *L, sc_port *port, xmlNodePtr pn) {
    port->name = sc_strdup(L->a, sc_prop(pn, "name"));
    sc_decl *bd = lookup_q(L, &L->bindings, pn, "binding", "binding");
    if (!bd)
        return 1;
    xmlNodePtr sb = child(bd->node, SC_NS_WSDL_SOAP11, "binding");
    port->version = 11;
    if (!sb) {
        sb = child(bd->node, SC_NS_WSDL_SOAP12, "binding");
        port->version = 12;
    }
    if (!sb)
        return 1; /* not a SOAP binding (HTTP GET/POST, ...) */
    const char *style = sc_prop(sb, "style");
    port->rpc = style && !strcmp(style, "rpc");
    port->binding = sc_strdup(L->a, sc_prop(bd->node, "name"));
    xmlNodePtr addr = soap_child(pn, "address");
    if (addr)
        port->address = sc_strdup(L->a, sc_prop(addr, "location"));
    sc_decl *ptd = lookup_q(L, &L->port_types, bd->node, "type", "portType");
    size_t n = 0;
    for (xmlNodePtr c = sc_first_elem(bd->node); c; c = sc_next_elem(c))
        n += sc_is(c, SC_NS_WSDL, "operation") && sc_prop(c, "name");
    port->ops = n ? sc_alloc(L->a, n * sizeof(*port->ops)) : NULL;
    if (n && !port->ops)
        return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
    for (xmlNodePtr c = sc_first_elem(bd->node); c && !L->e->code;
         c = sc_next_elem(c)) {
        if (!sc_is(c, SC_NS_WSDL, "operation") || !sc_prop(c, "name"))
            continue;
        sc_op *op = &port->ops[port->nops];
        if (build_op(L, port, op, c, ptd ? ptd->node : NULL))
            return -1;
        if (op->in.present || op->out.present)
            port->nops++;
    }
    return L->e->code ? -1 : 0;
}

static int build_services(sc_loader *L) {
    sc_wsdl *w = L->w;
    w->services = L->nservices
                      ? sc_alloc(L->a, L->nservices * sizeof(*w->services))
                      : NULL;
    if (L->nservices && !w->services)
        return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
    for (size_t i = 0; i < L->nservices; i++) {
        xmlNodePtr sn = L->services[i].node;
        sc_service *s = &w->services[w->nservices];
        s->name = sc_strdup(L->a, sc_prop(sn, "name"));
        size_t n = 0;
        for (xmlNodePtr c = sc_first_elem(sn); c; c = sc_next_elem(c))
            n += sc_is(c, SC_NS_WSDL, "port");
        s->ports = n ? sc_alloc(L->a, n * sizeof(*s->ports)) : NULL;
        if (n && !s->ports)
            return sc_fail(L->e, FERRY_ENOMEM, "out of memory");
        for (xmlNodePtr c = sc_first_elem(sn); c; c = sc_next_elem(c)) {
            if (!sc_is(c, SC_NS_WSDL, "port"))
                continue;
            sc_port *p = &s->ports[s->nports];
            int rc = build_port(L, p, c);
            if (rc < 0)
                return -1;
            if (rc == 0)
                s->nports++;
            else
                memset(p, 0, sizeof(*p));
        }
        if (s->nports)
            w->nservices++;
    }
    return 0;
}

static void free_loader(sc_loader *L) {
    for (size_t i = 0; i < L->ndocs; i++)
        xmlFreeDoc(L->docs[i]);
    json_decref(L->warnings);
}

sc_wsdl *sc_wsdl_load(const sc_source *src, sc_err *e) {
    sc_wsdl *w = calloc(1, sizeof(*w));
    if (!w) {
        sc_fail(e, FERRY_ENOMEM, "out of memory");
        return NULL;
    }
    sc_loader L = {.w = w, .a = &w->arena, .e = e, .src = src};
    L.warnings = json_array();
    const char *base = src->base ? src->base : src->location;
    int remote = base ? is_url(base) : 1;
    const char *what = src->location ? src->location : "the WSDL";
    sc_sha256_hex(src->data, src->len, w->sha256);
    w->bytes = src->len;
    if (src->len > SC_MAX_WSDL_BYTES) {
        sc_fail(e, FERRY_ETOOBIG, "%s is larger than %u MiB", what,
                SC_MAX_WSDL_BYTES >> 20);
        goto fail;
    }
    xmlDocPtr doc = sc_parse_xml(src->data, src->len, what, e);
    if (!doc)
        goto fail;
    L.docs[L.ndocs++] = doc;
    w->documents = sc_alloc(L.a, sizeof(char *));
    if (!w->documents)
        goto oom;
    w->documents[0] = sc_strdup(L.a, src->location ? src->location : "inline");
    w->ndocuments = 1;
    if (src->location && sc_map_put(L.a, &L.seen, w->documents[0], doc))
        goto oom;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (root && !strcmp((const char *)root->name, "description") && root->ns &&
        !strcmp((const char *)root->ns->href, "http://www.w3.org/ns/wsdl")) {
        sc_fail(e, FERRY_EUNSUPPORTED,
                "%s is a WSDL 2.0 document; only WSDL 1.1 is supported", what);
        goto fail;
    }
    if (!sc_is(root, SC_NS_WSDL, "definitions")) {
        sc_fail(e, FERRY_EPARSE,
                "%s is not a WSDL 1.1 document (its root element is <%s>, "
                "expected wsdl:definitions)",
                what, root ? (const char *)root->name : "?");
        goto fail;
    }
    if (register_wsdl(&L, root, base, remote, 0))
        goto fail;
    if (build_services(&L) || sc_drain(&L))
        goto fail;
    for (size_t i = 0; i < L.nfixups; i++) {
        sc_elem *x = L.fixups[i];
        const sc_elem *g = x->ref;
        while (g->ref && !g->type)
            g = g->ref;
        x->type = g->type ? g->type : sc_builtin(&L, "anyType");
        x->type_ref = g->type_ref;
        x->nillable = g->nillable;
    }
    if (e->code)
        goto fail;
    if (!w->nservices) {
        sc_fail(e, FERRY_EINVAL,
                "%s has no service with a SOAP 1.1 or 1.2 port", what);
        goto fail;
    }
    if (json_array_size(L.warnings)) {
        w->warnings = L.warnings;
        L.warnings = NULL;
    }
    free_loader(&L);
    return w;
oom:
    sc_fail(e, FERRY_ENOMEM, "out of memory");
fail:
    free_loader(&L);
    sc_wsdl_free(w);
    return NULL;
}

void sc_wsdl_free(sc_wsdl *w) {
    if (!w)
        return;
    json_decref(w->warnings);
    sc_arena_free(&w->arena);
    free(w);
}

/* ---- finding an operation ---- */

int sc_find_op(const sc_wsdl *w, const char *op, const char *service,
               const char *port, int version, sc_target *out, sc_err *e) {
    sc_target first = {0};
    size_t matches = 0;
    const sc_service *other = NULL;
    for (size_t i = 0; i < w->nservices; i++) {
        const sc_service *s = &w->services[i];
        if (service && strcmp(s->name ? s->name : "", service))
            continue;
        for (size_t j = 0; j < s->nports; j++) {
            const sc_port *p = &s->ports[j];
            if (port && strcmp(p->name ? p->name : "", port))
                continue;
            if (version && p->version != version)
                continue;
            for (size_t k = 0; k < p->nops; k++) {
                if (strcmp(p->ops[k].name, op))
                    continue;
                if (!matches++)
                    first = (sc_target){s, p, &p->ops[k]};
                else if (s != first.service)
                    other = s;
                break;
            }
        }
    }
    if (matches && !other) {
        *out = first;
        return 0;
    }
    if (other)
        return sc_fail(e, FERRY_EINVAL,
                       "operation '%s' is offered by several services ('%s', "
                       "'%s'): give service (and port)",
                       op, first.service->name ? first.service->name : "",
                       other->name ? other->name : "");
    /* Say what there is. */
    char list[600] = "";
    size_t n = 0;
    for (size_t i = 0; i < w->nservices; i++) {
        const sc_service *s = &w->services[i];
        if (service && strcmp(s->name ? s->name : "", service))
            continue;
        for (size_t j = 0; j < s->nports; j++) {
            const sc_port *p = &s->ports[j];
            if (port && strcmp(p->name ? p->name : "", port))
                continue;
            if (version && p->version != version)
                continue;
            for (size_t k = 0; k < p->nops && n < sizeof(list) - 100; k++) {
                /* each name once */
                char probe[300];
                snprintf(probe, sizeof(probe), ", %s,", p->ops[k].name);
                char with[sizeof(list) + 4];
                snprintf(with, sizeof(with), ", %s,", list);
                if (strstr(with, probe))
                    continue;
                n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
                                      n ? ", " : "", p->ops[k].name);
            }
        }
    }
    char where[400] = "";
    if (service || port || version)
        snprintf(where, sizeof(where), " (looked in%s%s%s%s%s%s%s)",
                 service ? " service '" : "", service ? service : "",
                 service ? "'" : "", port ? " port '" : "", port ? port : "",
                 port ? "'" : "",
                 version == 12   ? " SOAP 1.2 ports"
                 : version == 11 ? " SOAP 1.1 ports"
                                 : "");
    return sc_fail(e, FERRY_ENOTFOUND,
                   "no operation '%s' in the WSDL%s; operations: %s", op, where,
                   n ? list : "none");
}
