/*
 * The model as JSON, for soap.describe: services, ports, operations, and
 * the shape of every input, output and fault detail. A field's shape says
 * what a flow writes in "arguments" (or reads in "result") for it: its
 * JSON type, whether it comes as an array, and for objects the fields
 * inside. A type already being expanded higher up is shown by name with
 * "recursive": true instead of again. A type's fields are built once and
 * shared, and the whole description is bounded, so that a large WSDL whose
 * types nest widely cannot make it explode.
 */
#include "soap_core.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fields written in all (a shared subtree counts each time it is used),
 * and nesting. */
#define MAX_FIELDS 50000
#define MAX_NEST 32

typedef struct dctx {
    const sc_type *stack[MAX_NEST];
    int depth;
    size_t fields;
    int truncated;
    /* fields already described, by type (no recursion marker inside): an
     * open-addressed table of MEMO_SLOTS */
    struct memo {
        const sc_type *t;
        json_t *fields;
        size_t count; /* fields inside */
    } * memo;
    size_t nmemo;
    int recursion_seen;
} dctx;

#define MEMO_SLOTS 8192

static struct memo *memo_slot(dctx *d, const sc_type *t) {
    if (!d->memo) {
        d->memo = calloc(MEMO_SLOTS, sizeof(*d->memo));
        if (!d->memo)
            return NULL;
    }
    size_t h = ((uintptr_t)t >> 4) * 2654435761u;
    for (size_t i = 0; i < MEMO_SLOTS; i++) {
        struct memo *m = &d->memo[(h + i) % MEMO_SLOTS];
        if (!m->t || m->t == t)
            return m;
    }
    return NULL;
}

static void memo_free(dctx *d) {
    for (size_t i = 0; d->memo && i < MEMO_SLOTS; i++)
        json_decref(d->memo[i].fields);
    free(d->memo);
}

static const char *json_kind(const sc_type *t) {
    if (!t)
        return "any";
    if (!t->simple && !t->text)
        return t->open && !t->nelems ? "any" : "object";
    if (!t->simple && t->text)
        return t->nattrs ? "object" : json_kind(t->text);
    switch (t->kind) {
    case SC_INTEGER:
        return "integer";
    case SC_NUMBER:
        return "number";
    case SC_BOOLEAN:
        return "boolean";
    case SC_ANY:
        return "any";
    default:
        return "string";
    }
}

static json_t *fields_of(dctx *d, const sc_type *t);

static json_t *attrs_of(const sc_type *t) {
    json_t *a = json_array();
    for (size_t i = 0; i < t->nattrs; i++) {
        const sc_attr *at = &t->attrs[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:b}", "name", at->name, "type",
                              at->type ? at->type->label : "xsd:string", "json",
                              json_kind(at->type), "required", at->required);
        if (at->ns)
            json_object_set_new(o, "namespace", json_string(at->ns));
        json_array_append_new(a, o);
    }
    return a;
}

static void simple_facets(json_t *o, const sc_type *t) {
    if (t->enums) {
        json_t *en = json_array();
        for (const char *const *v = t->enums; *v; v++)
            json_array_append_new(en, json_string(*v));
        json_object_set_new(o, "enum", en);
    }
    if (t->simple && t->kind == SC_INTEGER && t->name && t->name[0] && t->ns &&
        strcmp(t->ns, SC_NS_XSD)) {
        /* a user type restricting an integer: show its range */
        json_object_set_new(o, "minimum", json_integer(t->lo));
        json_object_set_new(o, "maximum", json_integer(t->hi));
    }
}

static json_t *field(dctx *d, const sc_elem *e) {
    const sc_type *t = e->type;
    if (++d->fields > MAX_FIELDS) {
        d->truncated = 1;
        return NULL;
    }
    json_t *o = json_pack("{s:s, s:s?}", "name", e->name, "namespace", e->ns);
    /* An anonymous simple type is labelled by its base; an anonymous
     * complex one has no name to show. */
    json_object_set_new(o, "type",
                        t && t->label && strcmp(t->label, "anonymous")
                            ? json_string(t->label)
                            : json_null());
    json_object_set_new(o, "json", json_string(json_kind(t)));
    json_object_set_new(o, "min_occurs", json_integer(e->min));
    json_object_set_new(o, "max_occurs",
                        e->max < 0 ? json_string("unbounded")
                                   : json_integer(e->max));
    json_object_set_new(o, "array", json_boolean(e->max != 1));
    if (e->nillable)
        json_object_set_new(o, "nillable", json_true());
    if (e->choice)
        json_object_set_new(o, "choice", json_integer(e->choice));
    if (!t)
        return o;
    if (t->simple) {
        simple_facets(o, t);
        return o;
    }
    if (t->text) {
        json_t *tx = json_pack("{s:s, s:s}", "type", t->text->label, "json",
                               json_kind(t->text));
        simple_facets(tx, t->text);
        json_object_set_new(o, "text", tx);
    }
    if (t->nattrs)
        json_object_set_new(o, "attributes", attrs_of(t));
    if (t->open)
        json_object_set_new(o, "open", json_true());
    if (t->text && !t->nelems)
        return o;
    for (int i = 0; i < d->depth; i++)
        if (d->stack[i] == t) {
            json_object_set_new(o, "recursive", json_true());
            d->recursion_seen = 1;
            return o;
        }
    if (d->depth >= MAX_NEST) {
        json_object_set_new(o, "truncated", json_true());
        d->truncated = 1;
        d->recursion_seen = 1; /* depends on the path: not shared */
        return o;
    }
    json_object_set_new(o, "fields", fields_of(d, t));
    return o;
}

static json_t *fields_of(dctx *d, const sc_type *t) {
    struct memo *m = memo_slot(d, t);
    if (m && m->t == t) {
        if (d->fields + m->count > MAX_FIELDS) {
            d->truncated = 1;
            d->fields = MAX_FIELDS + 1;
            return json_array();
        }
        d->fields += m->count;
        return json_incref(m->fields);
    }
    size_t before = d->fields;
    int saw = d->recursion_seen;
    d->recursion_seen = 0;
    d->stack[d->depth++] = t;
    json_t *a = json_array();
    for (size_t i = 0; i < t->nelems && d->fields <= MAX_FIELDS; i++) {
        json_t *f = field(d, t->elems[i]);
        if (f)
            json_array_append_new(a, f);
    }
    d->depth--;
    /* Shared only when nothing inside depended on the path here. */
    if (!d->recursion_seen && d->fields <= MAX_FIELDS &&
        d->nmemo < MEMO_SLOTS / 2) {
        m = memo_slot(d, t);
        if (m && !m->t) {
            *m = (struct memo){t, json_incref(a), d->fields - before};
            d->nmemo++;
        }
    }
    d->recursion_seen |= saw;
    return a;
}

json_t *sc_describe_fields(const sc_type *t) {
    dctx d = {0};
    json_t *a = t ? fields_of(&d, t) : json_array();
    memo_free(&d);
    return a;
}

static json_t *body_json(dctx *d, const sc_body *b) {
    if (!b->present)
        return json_null();
    json_t *o = json_object();
    if (b->wrapper)
        json_object_set_new(o, "element",
                            json_pack("{s:s, s:s?}", "name", b->wrapper->name,
                                      "namespace", b->wrapper->ns));
    else
        json_object_set_new(o, "element", json_null());
    json_object_set_new(o, "fields",
                        b->content ? fields_of(d, b->content) : json_array());
    if (b->content && b->content->nattrs)
        json_object_set_new(o, "attributes", attrs_of(b->content));
    return o;
}

static json_t *op_json(dctx *d, const sc_op *op) {
    json_t *o = json_pack("{s:s, s:s, s:s}", "name", op->name, "style",
                          op->rpc ? "rpc" : "document", "use",
                          op->encoded ? "encoded" : "literal");
    if (!op->rpc)
        json_object_set_new(o, "wrapped", json_boolean(op->in.wrapped));
    json_object_set_new(o, "soap_action",
                        op->action ? json_string(op->action) : json_null());
    if (op->doc)
        json_object_set_new(o, "documentation", json_string(op->doc));
    json_object_set_new(o, "input", body_json(d, &op->in));
    json_object_set_new(o, "output", body_json(d, &op->out));
    json_t *faults = json_array();
    for (size_t i = 0; i < op->nfaults; i++) {
        const sc_fault *f = &op->faults[i];
        json_t *fo = json_pack("{s:s?}", "name", f->name);
        json_object_set_new(fo, "detail",
                            f->elem ? field(d, f->elem) : json_null());
        json_array_append_new(faults, fo);
    }
    json_object_set_new(o, "faults", faults);
    return o;
}

json_t *sc_wsdl_describe(const sc_wsdl *w, const char *only) {
    dctx d = {0};
    json_t *services = json_array();
    for (size_t i = 0; i < w->nservices; i++) {
        const sc_service *s = &w->services[i];
        json_t *ports = json_array();
        for (size_t j = 0; j < s->nports; j++) {
            const sc_port *p = &s->ports[j];
            json_t *ops = json_array();
            for (size_t k = 0; k < p->nops; k++)
                if (!only || !strcmp(p->ops[k].name, only))
                    json_array_append_new(ops, op_json(&d, &p->ops[k]));
            json_array_append_new(
                ports,
                json_pack("{s:s?, s:s?, s:s?, s:s, s:s, s:o}", "name", p->name,
                          "binding", p->binding, "address", p->address,
                          "soap_version", p->version == 12 ? "1.2" : "1.1",
                          "style", p->rpc ? "rpc" : "document", "operations",
                          ops));
        }
        json_array_append_new(services, json_pack("{s:s?, s:o}", "name",
                                                  s->name, "ports", ports));
    }
    json_t *docs = json_array();
    for (size_t i = 0; i < w->ndocuments; i++)
        json_array_append_new(docs, json_string(w->documents[i]));
    json_t *out =
        json_pack("{s:s?, s:s?, s:s, s:o, s:I, s:o}", "name", w->name,
                  "target_namespace", w->tns, "sha256", w->sha256, "documents",
                  docs, "bytes", (json_int_t)w->bytes, "services", services);
    if (w->warnings)
        json_object_set(out, "warnings", w->warnings);
    if (d.truncated)
        json_object_set_new(out, "truncated", json_true());
    memo_free(&d);
    return out;
}
