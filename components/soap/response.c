/*
 * Responses: the envelope's version from its namespace (not from the HTTP
 * status or content type, which servers get wrong), a Fault in either
 * shape, and the Body as JSON typed by the operation's output: integers
 * and numbers as JSON numbers, booleans as booleans, elements that may
 * repeat (maxOccurs > 1) always as arrays (empty when absent), xsi:nil as
 * null, attributes under "@name", simple content beside attributes under
 * "#text". What the schema does not declare is converted generically
 * (text as strings, repeated names as arrays). Children are matched by
 * local name: servers are often loose about the namespaces of what they
 * send, and a reader should not fail on that.
 *
 * Two readers give the same result. The common case, a Body to convert,
 * is read from the parser's events as they come (sc_read_response_sax):
 * a large response never becomes a tree, which costs more than the
 * conversion itself. The rest (a Fault, a second Body) is rare and small
 * and is read from a tree
 * (sc_read_response_tree), parsing the same bytes again. The tree reader
 * is also the reference the tests and the fuzz target hold the other
 * to.
 */
#include "soap_core.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sc_fault_clear(sc_fault_info *f) {
    free(f->code);
    free(f->subcode);
    free(f->reason);
    free(f->actor);
    json_decref(f->detail);
    memset(f, 0, sizeof(*f));
}

void sc_response_clear(sc_response *r) {
    json_decref(r->result);
    json_decref(r->header);
    sc_fault_clear(&r->fault);
    memset(r, 0, sizeof(*r));
}

/* ---- scalars ---- */

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The text trimmed of XML whitespace, into buf (or NULL if too long). */
static const char *trimmed(const char *s, char *buf, size_t n) {
    while (is_space(*s))
        s++;
    size_t len = strlen(s);
    while (len && is_space(s[len - 1]))
        len--;
    if (len >= n)
        return NULL;
    memcpy(buf, s, len);
    buf[len] = 0;
    return buf;
}

static json_t *scalar(const char *text, enum sc_kind k) {
    char buf[128];
    const char *t;
    switch (k) {
    case SC_INTEGER: {
        if (!(t = trimmed(text, buf, sizeof(buf))) || !*t)
            break;
        errno = 0;
        char *end;
        long long x = strtoll(t, &end, 10);
        if (!*end && !errno)
            return json_integer(x);
        break;
    }
    case SC_NUMBER: {
        if (!(t = trimmed(text, buf, sizeof(buf))) || !*t ||
            strpbrk(t, "xXnNiI"))
            break;
        errno = 0;
        char *end;
        if (!strpbrk(t, ".eE")) {
            long long x = strtoll(t, &end, 10);
            if (!*end && !errno)
                return json_integer(x);
        }
        errno = 0;
        double d = strtod(t, &end);
        if (!*end && isfinite(d))
            return json_real(d);
        break;
    }
    case SC_BOOLEAN:
        if (!(t = trimmed(text, buf, sizeof(buf))))
            break;
        if (!strcmp(t, "true") || !strcmp(t, "1"))
            return json_true();
        if (!strcmp(t, "false") || !strcmp(t, "0"))
            return json_false();
        break;
    default:
        break;
    }
    /* As sent (INF, NaN, or not what was declared). libxml2 hands out
     * UTF-8 only. */
    return json_string_nocheck(text);
}

/* ---- what both readers decide alike ---- */

static int is_xsi(const char *ns) {
    return ns && !strcmp(ns, SC_NS_XSI);
}

/* An xsi:nil attribute's value. */
static int nil_value(const char *v) {
    return !strcmp(v, "true") || !strcmp(v, "1");
}

static enum sc_kind text_kind(const sc_type *t) {
    return t->text->simple ? t->text->kind : SC_STRING;
}

/* sc_convert: an element read generically (no type, too deep, or
 * anyType). */
static int as_generic(const sc_type *t, int depth) {
    return !t || depth > SC_MAX_DEPTH || (t->simple && t->kind == SC_ANY);
}

/* complex: simple content alone, read as its text. */
static int as_text(const sc_type *t, int plain_attrs) {
    return t->text && !t->nattrs && !t->nelems && !plain_attrs;
}

static const sc_elem *find_elem(const sc_type *t, const char *name) {
    for (size_t i = 0; i < t->nelems; i++)
        if (!strcmp(t->elems[i]->name, name))
            return t->elems[i];
    return NULL;
}

/* Adds v under key: in an array when always_array, or from the second
 * time a key comes. Converted values are never arrays themselves, so an
 * array under a key is always one made here. */
static void put(json_t *obj, const char *key, json_t *v, int always_array) {
    json_t *old = json_object_get(obj, key);
    if (!old) {
        if (always_array) {
            json_t *a = json_array();
            json_array_append_new(a, v);
            v = a;
        }
        json_object_set_new_nocheck(obj, key, v);
    } else if (json_is_array(old)) {
        json_array_append_new(old, v);
    } else {
        json_t *a = json_array();
        json_array_append(a, old);
        json_array_append_new(a, v);
        json_object_set_new_nocheck(obj, key, a);
    }
}

/* An attribute (not xsi's) as "@name", typed by t's declaration. */
static void put_attr(json_t *obj, const char *name, const char *value,
                     const sc_type *t) {
    char key[256];
    snprintf(key, sizeof(key), "@%s", name);
    enum sc_kind k = SC_STRING;
    for (size_t i = 0; t && i < t->nattrs; i++)
        if (!strcmp(t->attrs[i].name, name) && t->attrs[i].type &&
            t->attrs[i].type->simple)
            k = t->attrs[i].type->kind;
    json_object_set_new(obj, key, scalar(value, k));
}

/* ---- from a tree ---- */

static json_t *text_value(xmlNodePtr n, enum sc_kind k) {
    /* The common case, one text child, read in place. */
    if (!n->children)
        return scalar("", k);
    if (n->children->type == XML_TEXT_NODE && !n->children->next &&
        n->children->content)
        return scalar((const char *)n->children->content, k);
    xmlChar *c = xmlNodeGetContent(n);
    json_t *v = scalar(c ? (const char *)c : "", k);
    xmlFree(c);
    return v ? v : json_string("");
}

static int is_xsi_attr(const xmlAttr *a) {
    return a->ns && is_xsi((const char *)a->ns->href);
}

static int is_nil(const xmlNode *n) {
    for (xmlAttrPtr a = n->properties; a; a = a->next)
        if (is_xsi_attr(a) && !strcmp((const char *)a->name, "nil"))
            return nil_value(a->children ? (const char *)a->children->content
                                         : "");
    return 0;
}

static int has_elements(xmlNodePtr n) {
    return sc_first_elem(n) != NULL;
}

static int has_plain_attrs(xmlNodePtr n) {
    for (xmlAttrPtr a = n->properties; a; a = a->next)
        if (!is_xsi_attr(a))
            return 1;
    return 0;
}

static void put_attrs(json_t *obj, xmlNodePtr n, const sc_type *t) {
    for (xmlAttrPtr a = n->properties; a; a = a->next) {
        if (is_xsi_attr(a))
            continue;
        xmlChar *v = xmlNodeGetContent((xmlNodePtr)a);
        put_attr(obj, (const char *)a->name, v ? (const char *)v : "", t);
        xmlFree(v);
    }
}

static json_t *generic(xmlNodePtr n, int depth) {
    if (is_nil(n))
        return json_null();
    if (!has_elements(n) && !has_plain_attrs(n))
        return text_value(n, SC_STRING);
    if (depth > SC_MAX_DEPTH)
        return text_value(n, SC_STRING);
    json_t *o = json_object();
    put_attrs(o, n, NULL);
    int text = 0;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE) {
            put(o, (const char *)c->name, generic(c, depth + 1), 0);
        } else if (c->type == XML_TEXT_NODE && c->content) {
            for (const xmlChar *p = c->content; *p && !text; p++)
                text = !is_space((char)*p);
        }
    }
    if (text) {
        /* mixed content: the text pieces joined */
        sc_buf b = {0};
        for (xmlNodePtr c = n->children; c; c = c->next)
            if (c->type == XML_TEXT_NODE && c->content)
                sc_buf_puts(&b, (const char *)c->content);
        json_object_set_new(o, "#text", json_string(b.p ? b.p : ""));
        sc_buf_free(&b);
    }
    return o;
}

static json_t *complex(xmlNodePtr n, const sc_type *t, int depth);

json_t *sc_convert(xmlNodePtr n, const sc_type *t, int depth) {
    if (is_nil(n))
        return json_null();
    if (as_generic(t, depth))
        return generic(n, depth);
    if (t->simple)
        return text_value(n, t->kind);
    return complex(n, t, depth);
}

static json_t *complex(xmlNodePtr n, const sc_type *t, int depth) {
    if (as_text(t, has_plain_attrs(n)))
        return text_value(n, text_kind(t));
    json_t *o = json_object();
    put_attrs(o, n, t);
    if (t->text) {
        xmlChar *c = xmlNodeGetContent(n);
        json_object_set_new(o, "#text",
                            scalar(c ? (const char *)c : "", text_kind(t)));
        xmlFree(c);
    }
    for (xmlNodePtr c = sc_first_elem(n); c; c = sc_next_elem(c)) {
        const sc_elem *e = find_elem(t, (const char *)c->name);
        if (e)
            put(o, e->name, sc_convert(c, e->type, depth + 1), e->max != 1);
        else
            put(o, (const char *)c->name, generic(c, depth + 1), 0);
    }
    for (size_t i = 0; i < t->nelems; i++) {
        const sc_elem *e = t->elems[i];
        if (e->max != 1 && !json_object_get(o, e->name))
            json_object_set_new(o, e->name, json_array());
    }
    return o;
}

/* ---- faults ---- */

static xmlNodePtr child_local(xmlNodePtr n, const char *local) {
    for (xmlNodePtr c = sc_first_elem(n); c; c = sc_next_elem(c))
        if (!strcmp((const char *)c->name, local))
            return c;
    return NULL;
}

static char *content(xmlNodePtr n) {
    if (!n)
        return NULL;
    xmlChar *c = xmlNodeGetContent(n);
    char *s = strdup(c ? (const char *)c : "");
    xmlFree(c);
    if (!s)
        return NULL;
    /* trim */
    char *p = s;
    while (is_space(*p))
        p++;
    size_t len = strlen(p);
    while (len && is_space(p[len - 1]))
        len--;
    memmove(s, p, len);
    s[len] = 0;
    return s;
}

static int auth_code(const char *local) {
    static const char *const codes[] = {
        "FailedAuthentication",     "InvalidSecurity",
        "InvalidSecurityToken",     "FailedCheck",
        "SecurityTokenUnavailable", "AuthenticationFailure",
        "MessageExpired",           NULL};
    for (int i = 0; codes[i]; i++)
        if (!strcmp(local, codes[i]))
            return 1;
    return 0;
}

/* What a code's QName means: "client", "server", "auth" or "other". */
static const char *classify(xmlNodePtr at, const char *code) {
    const char *colon = strrchr(code, ':');
    const char *local = colon ? colon + 1 : code;
    const char *ns = NULL;
    if (colon) {
        char prefix[64];
        size_t n = (size_t)(colon - code);
        if (n < sizeof(prefix)) {
            memcpy(prefix, code, n);
            prefix[n] = 0;
            xmlNsPtr x = xmlSearchNs(at->doc, at, (const xmlChar *)prefix);
            ns = x ? (const char *)x->href : NULL;
        }
    }
    if ((ns && !strcmp(ns, SC_NS_WSSE)) || auth_code(local))
        return "auth";
    size_t dot = strcspn(local, ".");
    if ((dot == 6 && !strncmp(local, "Client", 6)) ||
        (dot == 6 && !strncmp(local, "Sender", 6)))
        return "client";
    if ((dot == 6 && !strncmp(local, "Server", 6)) ||
        (dot == 8 && !strncmp(local, "Receiver", 8)))
        return "server";
    return "other";
}

static json_t *detail_json(xmlNodePtr d, const sc_op *op) {
    if (!d)
        return NULL;
    if (!has_elements(d)) {
        char *t = content(d);
        json_t *v = t && *t ? json_string(t) : NULL;
        free(t);
        return v;
    }
    json_t *o = json_object();
    for (xmlNodePtr c = sc_first_elem(d); c; c = sc_next_elem(c)) {
        const sc_type *t = NULL;
        for (size_t i = 0; op && i < op->nfaults; i++) {
            const sc_elem *e = op->faults[i].elem;
            if (e && !strcmp(e->name, (const char *)c->name)) {
                t = e->type;
                break;
            }
        }
        put(o, (const char *)c->name, sc_convert(c, t, 1), 0);
    }
    return o;
}

static void read_fault(xmlNodePtr f, const sc_op *op, sc_fault_info *fi) {
    /* Either shape, whatever the envelope says: servers mix them. */
    xmlNodePtr code = child_local(f, "faultcode");
    xmlNodePtr subs = NULL;
    if (!code) {
        xmlNodePtr c = child_local(f, "Code");
        code = c ? child_local(c, "Value") : NULL;
        subs = c ? child_local(c, "Subcode") : NULL;
    }
    fi->code = code ? content(code) : strdup("");
    fi->kind = classify(code ? code : f, fi->code ? fi->code : "");
    sc_buf sb = {0};
    for (int i = 0; subs && i < 8; i++) {
        xmlNodePtr v = child_local(subs, "Value");
        char *s = content(v);
        if (s && *s) {
            if (sb.len)
                sc_buf_puts(&sb, "/");
            sc_buf_puts(&sb, s);
            if (!strcmp(classify(v, s), "auth"))
                fi->kind = "auth";
        }
        free(s);
        subs = child_local(subs, "Subcode");
    }
    fi->subcode = sb.len ? strdup(sb.p) : NULL;
    sc_buf_free(&sb);
    xmlNodePtr reason = child_local(f, "faultstring");
    if (!reason) {
        xmlNodePtr r = child_local(f, "Reason");
        xmlNodePtr pick = NULL;
        for (xmlNodePtr t = r ? sc_first_elem(r) : NULL; t;
             t = sc_next_elem(t)) {
            if (strcmp((const char *)t->name, "Text"))
                continue;
            xmlChar *lang = xmlNodeGetLang(t);
            int en = lang && !strncmp((const char *)lang, "en", 2);
            xmlFree(lang);
            if (!pick || en)
                pick = t;
            if (en)
                break;
        }
        reason = pick ? pick : r;
    }
    fi->reason = reason ? content(reason) : strdup("");
    xmlNodePtr actor = child_local(f, "faultactor");
    if (!actor)
        actor = child_local(f, "Node");
    fi->actor = actor ? content(actor) : NULL;
    xmlNodePtr d = child_local(f, "detail");
    if (!d)
        d = child_local(f, "Detail");
    fi->detail = detail_json(d, op);
}

/* ---- the envelope ---- */

/* The version from the root element (its name and namespace as a tree
 * holds them), or 0 with e set. */
static int envelope_version(const char *name, const char *ns, sc_err *e) {
    int envelope = !strcmp(name, "Envelope");
    if (envelope && ns && !strcmp(ns, SC_NS_SOAP11))
        return 11;
    if (envelope && ns && !strcmp(ns, SC_NS_SOAP12))
        return 12;
    if (envelope)
        sc_fail(e, FERRY_EPROTO,
                "the response's Envelope is in namespace '%s', neither "
                "SOAP 1.1's nor 1.2's",
                ns ? ns : "(none)");
    else
        sc_fail(e, FERRY_EPROTO,
                "the response is not a SOAP envelope (its root element "
                "is <%s>)",
                name);
    return 0;
}

/* The Body's first element is a Fault, in either version's namespace:
 * servers mix them. */
static int is_fault(const char *name, const char *ns) {
    return !strcmp(name, "Fault") && ns &&
           (!strcmp(ns, SC_NS_SOAP11) || !strcmp(ns, SC_NS_SOAP12));
}

static void mismatch(sc_response *r, const char *name) {
    r->mismatch = 1;
    snprintf(r->mismatch_name, sizeof(r->mismatch_name), "%s", name);
}

static const char *ns_of(const xmlNode *n) {
    return n->ns ? (const char *)n->ns->href : NULL;
}

int sc_read_response_tree(const char *data, size_t len, const sc_op *op,
                          sc_response *r, sc_err *e) {
    memset(r, 0, sizeof(*r));
    xmlDocPtr doc = sc_parse_xml(data, len, "the response", e);
    if (!doc)
        return -1;
    int rc = -1;
    xmlNodePtr env = xmlDocGetRootElement(doc);
    r->version = envelope_version(env ? (const char *)env->name : "?",
                                  env ? ns_of(env) : NULL, e);
    if (!r->version)
        goto out;
    const char *ens = r->version == 12 ? SC_NS_SOAP12 : SC_NS_SOAP11;
    xmlNodePtr header = NULL, body = NULL;
    for (xmlNodePtr c = sc_first_elem(env); c; c = sc_next_elem(c)) {
        if (sc_is(c, ens, "Header"))
            header = c;
        else if (sc_is(c, ens, "Body"))
            body = c;
    }
    if (!body) {
        sc_fail(e, FERRY_EPROTO, "the response's envelope has no Body");
        goto out;
    }
    if (header && has_elements(header))
        r->header = generic(header, 0);
    xmlNodePtr first = sc_first_elem(body);
    if (first && is_fault((const char *)first->name, ns_of(first))) {
        r->is_fault = 1;
        r->fault.version = r->version;
        read_fault(first, op, &r->fault);
        rc = 0;
        goto out;
    }
    const sc_body *out = op ? &op->out : NULL;
    if (!out) {
        r->result = has_elements(body) ? generic(body, 0) : json_null();
    } else if (!out->present) {
        r->result = json_null(); /* one-way */
    } else if (out->wrapper) {
        if (!first) {
            mismatch(r, "(empty)");
            r->result = json_null();
        } else {
            if (strcmp((const char *)first->name, out->wrapper->name))
                mismatch(r, (const char *)first->name);
            r->result = sc_convert(first, out->content, 0);
        }
    } else {
        r->result = complex(body, out->content, 0);
    }
    rc = r->result ? 0 : sc_fail(e, FERRY_ENOMEM, "out of memory");
out:
    xmlFreeDoc(doc);
    return rc;
}

/* ---- from the parser's events ---- */

/*
 * The tree reader's decisions, taken as the parser goes: one frame per
 * open element of the Body (or Header) being converted, deciding at its
 * start tag
 * what sc_convert, generic and complex decide there (from the type, the
 * depth, xsi:nil and the attributes) and giving its value to its parent
 * at its end tag. What the start tag cannot tell waits: a generic element
 * without attributes becomes an object at its first child element, else
 * its text. Inside an element read as text (or not read: nil, skipped)
 * further elements only count, without frames.
 *
 * Text goes into one buffer, each frame remembering where its element's
 * starts; when an element ends its text is cut off again, unless an
 * enclosing element needs all the text inside it (simple content's
 * "#text" is xmlNodeGetContent). An element's text is so the end of the
 * buffer: all of it for text_value and "#text", its own pieces for
 * generic's mixed content (kept apart in own when everything stays).
 * Whitespace between the elements of a complex type is never kept.
 */

enum fkind {
    F_SKIP,    /* not converted */
    F_NULL,    /* xsi:nil */
    F_TEXT,    /* text_value of all its text */
    F_GENERIC, /* generic */
    F_COMPLEX, /* complex */
    F_WRAPPER  /* the Body of a wrapped or rpc output: its first child */
};

typedef struct frame {
    enum fkind kind;
    const sc_type *t; /* F_COMPLEX */
    enum sc_kind k;   /* F_TEXT */
    int depth;        /* sc_convert's depth */
    const char *key;  /* the value's key in the parent's object */
    int array;        /* ... always an array */
    json_t *o;        /* the object made; F_WRAPPER: the result */
    int text;         /* the text inside is kept */
    int all;          /* ... and stays when a child ends */
    size_t mark;      /* where the element's text starts in the buffer */
    sc_buf own;       /* F_GENERIC with all: its own text pieces */
} frame;

enum { IN_OTHER, IN_HEADER, IN_BODY };

typedef struct reader {
    const sc_op *op;
    sc_response *r;
    sc_err fail; /* what is wrong with the envelope, if it parses */
    const char *ens;
    int level;     /* the current element's: 1 the Envelope */
    int in;        /* which child of the Envelope it is in */
    int bodies;    /* Bodies seen */
    int children;  /* the Body's child elements */
    int hchildren; /* the current Header's */
    int nested;    /* elements open inside the top frame, when a leaf */
    int head;      /* sc_read_response_head: stop at the Body's content */
    int head_done; /* ... and it stopped there */
    frame *stack;
    size_t n, cap;
    sc_buf text;
} reader;

static int is_leaf(const frame *f) {
    return f->kind == F_SKIP || f->kind == F_NULL || f->kind == F_TEXT;
}

static int named(const char *name, const char *ns, const char *want_ns,
                 const char *local) {
    return !strcmp(name, local) && ns && !strcmp(ns, want_ns);
}

static int attrs_nil(const sc_sax_attr *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (is_xsi(a[i].ns) && !strcmp(a[i].name, "nil"))
            return nil_value(a[i].value);
    return 0;
}

static int attrs_plain(const sc_sax_attr *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_xsi(a[i].ns))
            return 1;
    return 0;
}

static void put_sax_attrs(json_t *o, const sc_sax_attr *a, size_t n,
                          const sc_type *t) {
    for (size_t i = 0; i < n; i++)
        if (!is_xsi(a[i].ns))
            put_attr(o, a[i].name, a[i].value, t);
}

/* A new frame on top, its text flags from its parent's. NULL when out of
 * memory. */
static frame *push(reader *R, enum fkind kind, const char *key, int array) {
    if (R->n == R->cap) {
        size_t cap = R->cap ? R->cap * 2 : 32;
        frame *s = realloc(R->stack, cap * sizeof(*s));
        if (!s)
            return NULL;
        R->stack = s;
        R->cap = cap;
    }
    int inherited = R->n ? R->stack[R->n - 1].all : 0;
    frame *f = &R->stack[R->n++];
    memset(f, 0, sizeof(*f));
    f->kind = kind;
    f->key = key;
    f->array = array;
    f->mark = R->text.len;
    f->all = inherited || kind == F_TEXT;
    f->text = f->all || kind == F_GENERIC;
    return f;
}

static frame *start_generic(reader *R, const char *key, int array, int depth,
                            const sc_sax_attr *a, size_t n) {
    if (attrs_nil(a, n))
        return push(R, F_NULL, key, array);
    if (depth > SC_MAX_DEPTH) {
        frame *f = push(R, F_TEXT, key, array);
        if (f)
            f->k = SC_STRING;
        return f;
    }
    frame *f = push(R, F_GENERIC, key, array);
    if (!f)
        return NULL;
    f->depth = depth;
    if (attrs_plain(a, n)) {
        f->o = json_object();
        put_sax_attrs(f->o, a, n, NULL);
    }
    return f;
}

static frame *start_complex(reader *R, const char *key, int array,
                            const sc_type *t, int depth, const sc_sax_attr *a,
                            size_t n) {
    if (as_text(t, attrs_plain(a, n))) {
        frame *f = push(R, F_TEXT, key, array);
        if (f)
            f->k = text_kind(t);
        return f;
    }
    frame *f = push(R, F_COMPLEX, key, array);
    if (!f)
        return NULL;
    f->t = t;
    f->depth = depth;
    f->o = json_object();
    put_sax_attrs(f->o, a, n, t);
    if (t->text) {
        /* Its place among the keys now, its value at the end tag. */
        json_object_set_new(f->o, "#text", json_null());
        f->all = f->text = 1;
    }
    return f;
}

static frame *start_convert(reader *R, const char *key, int array,
                            const sc_type *t, int depth, const sc_sax_attr *a,
                            size_t n) {
    if (attrs_nil(a, n))
        return push(R, F_NULL, key, array);
    if (as_generic(t, depth))
        return start_generic(R, key, array, depth, a, n);
    if (t->simple) {
        frame *f = push(R, F_TEXT, key, array);
        if (f)
            f->k = t->kind;
        return f;
    }
    return start_complex(R, key, array, t, depth, a, n);
}

static frame *start_body(reader *R, const sc_sax_attr *a, size_t n) {
    const sc_body *out = R->op ? &R->op->out : NULL;
    if (!out)
        return start_generic(R, NULL, 0, 0, a, n);
    if (!out->present)
        return push(R, F_SKIP, NULL, 0);
    if (out->wrapper)
        return push(R, F_WRAPPER, NULL, 0);
    return start_complex(R, NULL, 0, out->content, 0, a, n);
}

static const char *text_at(reader *R, size_t mark) {
    return R->text.p ? R->text.p + mark : "";
}

/* A child element of the top frame, which is not a leaf. */
static frame *start_child(reader *R, const char *name, const sc_sax_attr *a,
                          size_t n) {
    frame *p = &R->stack[R->n - 1];
    const sc_body *out = R->op ? &R->op->out : NULL;
    switch (p->kind) {
    case F_WRAPPER:
        if (R->children > 1)
            return push(R, F_SKIP, NULL, 0);
        if (strcmp(name, out->wrapper->name))
            mismatch(R->r, name);
        return start_convert(R, NULL, 0, out->content, 0, a, n);
    case F_GENERIC:
        if (!p->o) {
            p->o = json_object();
            /* Its text so far is its own. */
            if (p->all)
                sc_buf_puts(&p->own, text_at(R, p->mark));
        }
        return start_generic(R, name, 0, p->depth + 1, a, n);
    default: {
        const sc_elem *e = find_elem(p->t, name);
        if (e)
            return start_convert(R, e->name, e->max != 1, e->type, p->depth + 1,
                                 a, n);
        return start_generic(R, name, 0, p->depth + 1, a, n);
    }
    }
}

static int has_text(const char *s) {
    for (; *s; s++)
        if (!is_space(*s))
            return 1;
    return 0;
}

/* The top frame's value, at its end tag. */
static json_t *value_of(reader *R, frame *f) {
    switch (f->kind) {
    case F_SKIP:
        return NULL;
    case F_NULL:
        return json_null();
    case F_TEXT:
        return scalar(text_at(R, f->mark), f->k);
    case F_GENERIC: {
        if (!f->o)
            return scalar(text_at(R, f->mark), SC_STRING);
        /* mixed content: its own text pieces joined */
        const char *own =
            f->all ? (f->own.p ? f->own.p : "") : text_at(R, f->mark);
        if (has_text(own))
            json_object_set_new(f->o, "#text", json_string(own));
        return f->o;
    }
    case F_COMPLEX:
        if (f->t->text)
            json_object_set_new(f->o, "#text",
                                scalar(text_at(R, f->mark), text_kind(f->t)));
        for (size_t i = 0; i < f->t->nelems; i++) {
            const sc_elem *e = f->t->elems[i];
            if (e->max != 1 && !json_object_get(f->o, e->name))
                json_object_set_new(f->o, e->name, json_array());
        }
        return f->o;
    case F_WRAPPER:
        if (!R->children)
            mismatch(R->r, "(empty)");
        return f->o ? f->o : json_null();
    }
    return NULL;
}

static void pop(reader *R) {
    frame *f = &R->stack[R->n - 1];
    json_t *v = value_of(R, f);
    f->o = NULL;
    sc_buf_free(&f->own);
    R->n--;
    frame *p = R->n ? &R->stack[R->n - 1] : NULL;
    if (!p || !p->all) {
        R->text.len = f->mark;
        if (R->text.p)
            R->text.p[f->mark] = 0;
    }
    if (!p && R->in == IN_HEADER) {
        /* the last Header counts, when it has elements */
        json_decref(R->r->header);
        R->r->header = R->hchildren ? v : NULL;
        if (!R->hchildren)
            json_decref(v);
    } else if (!p) {
        /* the Body: generic(body) only when it has elements; nothing for
         * a one-way operation */
        if ((!R->op && !R->children) || f->kind == F_SKIP) {
            json_decref(v);
            v = json_null();
        }
        R->r->result = v;
    } else if (!v) {
        /* skipped */
    } else if (p->kind == F_WRAPPER) {
        p->o = v;
    } else {
        put(p->o, f->key, v, f->array);
    }
}

static int on_start(void *ud, const char *name, const char *ns,
                    const sc_sax_attr *a, size_t n) {
    reader *R = ud;
    R->level++;
    if (R->level == 1) {
        R->r->version = envelope_version(name, ns, &R->fail);
        R->ens = R->r->version == 12 ? SC_NS_SOAP12 : SC_NS_SOAP11;
        return 0;
    }
    if (!R->r->version)
        return 0; /* not an envelope: an error if it parses */
    if (R->level == 2) {
        R->in = IN_OTHER;
        if (named(name, ns, R->ens, "Header")) {
            R->in = IN_HEADER;
            R->hchildren = 0;
            return start_generic(R, NULL, 0, 0, a, n) ? 0 : 1;
        } else if (named(name, ns, R->ens, "Body")) {
            /* A second Body: the last counts. Left to the tree. */
            if (R->bodies++)
                return 1;
            R->in = IN_BODY;
            return start_body(R, a, n) ? 0 : 1;
        }
        return 0;
    }
    if (R->in == IN_OTHER)
        return 0;
    if (R->level == 3 && R->in == IN_HEADER)
        R->hchildren++;
    else if (R->level == 3 && R->children++ == 0 && is_fault(name, ns))
        return 1; /* for the tree */
    else if (R->level == 3 && R->head) {
        R->head_done = 1; /* not a Fault: what follows is not read */
        return 1;
    }
    if (is_leaf(&R->stack[R->n - 1])) {
        R->nested++;
        return 0;
    }
    return start_child(R, name, a, n) ? 0 : 1;
}

static int on_end(void *ud) {
    reader *R = ud;
    if (R->nested)
        R->nested--;
    else if (R->n)
        pop(R);
    if (R->level-- == 2)
        R->in = IN_OTHER;
    return 0;
}

static int on_text(void *ud, const char *s, size_t len) {
    reader *R = ud;
    frame *f = R->n ? &R->stack[R->n - 1] : NULL;
    if (!f || !f->text)
        return 0;
    sc_buf_add(&R->text, s, len);
    if (f->kind == F_GENERIC && f->all && f->o)
        sc_buf_add(&f->own, s, len);
    return 0;
}

static int read_sax(const char *data, size_t len, const sc_op *op, int head,
                    sc_response *r, sc_err *e) {
    memset(r, 0, sizeof(*r));
    reader R = {.op = op, .r = r, .head = head};
    sc_sax sax = {on_start, on_end, on_text, &R};
    int rc = sc_parse_sax(data, len, "the response", &sax, e);
    for (size_t i = 0; i < R.n; i++) {
        json_decref(R.stack[i].o);
        sc_buf_free(&R.stack[i].own);
    }
    free(R.stack);
    int oom = R.text.oom;
    sc_buf_free(&R.text);
    if (rc == 1 && R.head_done && !R.fail.code && !oom) {
        /* The Body's first element is not a Fault: all a head read
         * wants to know. */
        json_decref(r->result);
        r->result = json_null();
        return 0;
    }
    if (rc) {
        /* stopped for the tree, or not well-formed */
        sc_response_clear(r);
        return rc;
    }
    if (R.fail.code)
        return sc_fail(e, R.fail.code, "%s", R.fail.msg);
    if (!R.bodies) {
        json_decref(r->header);
        r->header = NULL;
        return sc_fail(e, FERRY_EPROTO, "the response's envelope has no Body");
    }
    if (!r->result || oom) {
        json_decref(r->result);
        r->result = NULL;
        return sc_fail(e, FERRY_ENOMEM, "out of memory");
    }
    if (head) {
        json_decref(r->result);
        r->result = json_null();
    }
    return 0;
}

int sc_read_response_sax(const char *data, size_t len, const sc_op *op,
                         sc_response *r, sc_err *e) {
    return read_sax(data, len, op, 0, r, e);
}

int sc_read_response(const char *data, size_t len, const sc_op *op,
                     sc_response *r, sc_err *e) {
    int rc = sc_read_response_sax(data, len, op, r, e);
    return rc == 1 ? sc_read_response_tree(data, len, op, r, e) : rc;
}

int sc_read_response_head(const char *data, size_t len, const sc_op *op,
                          sc_response *r, sc_err *e) {
    int rc = read_sax(data, len, op, 1, r, e);
    if (rc != 1)
        return rc;
    /* A Fault (or what the events leave to a tree): read whole, as
     * sc_read_response would; a Body's content is not kept. */
    rc = sc_read_response_tree(data, len, op, r, e);
    if (!rc && !r->is_fault) {
        json_decref(r->result);
        r->result = json_null();
    }
    return rc;
}
