/*
 * Fuzzes the soap core with bytes from anywhere, read two ways:
 *
 * - as a WSDL (its imports answered with the same bytes): a refusal has a
 *   code and one line; a loaded model describes itself, and every
 *   operation's envelope is built from arguments made to fit its input
 *   shape (and from some that do not): whatever is built must parse back
 *   as XML, and a refusal must name the arguments' path;
 * - as a response, read against a fixed WSDL's operations and without
 *   one: a refusal has a code, a read has a result or a fault.
 *
 * Every response (the envelopes built above too, read back) is read by
 * both of sc_read_response's readers, from the parser's events and from a
 * tree: they must agree in everything (abort otherwise).
 */
#include "fuzz.h"
#include "soap_core.h"

#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char fixed_wsdl[] =
    "<definitions xmlns='http://schemas.xmlsoap.org/wsdl/' "
    "xmlns:soap='http://schemas.xmlsoap.org/wsdl/soap/' "
    "xmlns:xs='http://www.w3.org/2001/XMLSchema' xmlns:t='urn:f' "
    "targetNamespace='urn:f'><types><xs:schema targetNamespace='urn:f' "
    "elementFormDefault='qualified'>"
    "<xs:complexType name='Money'><xs:simpleContent><xs:extension "
    "base='xs:decimal'><xs:attribute name='cur' type='xs:string'/>"
    "</xs:extension></xs:simpleContent></xs:complexType>"
    "<xs:complexType name='Node'><xs:sequence><xs:element name='v' "
    "type='xs:int'/><xs:element name='ok' type='xs:boolean' minOccurs='0'/>"
    "<xs:element name='m' type='t:Money' minOccurs='0'/><xs:element "
    "name='child' type='t:Node' minOccurs='0' maxOccurs='unbounded'/>"
    "</xs:sequence><xs:attribute name='id' type='xs:long'/></xs:complexType>"
    "<xs:element name='Op'><xs:complexType><xs:sequence><xs:element "
    "name='n' type='t:Node'/></xs:sequence></xs:complexType></xs:element>"
    "<xs:element name='OpResponse'><xs:complexType><xs:sequence><xs:element "
    "name='n' type='t:Node' maxOccurs='unbounded'/><xs:any/></xs:sequence>"
    "</xs:complexType></xs:element><xs:element name='F'><xs:complexType>"
    "<xs:sequence><xs:element name='c' type='xs:int'/></xs:sequence>"
    "</xs:complexType></xs:element></xs:schema></types>"
    "<message name='I'><part name='p' element='t:Op'/></message>"
    "<message name='O'><part name='p' element='t:OpResponse'/></message>"
    "<message name='E'><part name='p' element='t:F'/></message>"
    "<message name='RI'><part name='a' type='xs:int'/><part name='b' "
    "type='t:Node'/></message><message name='RO'><part name='r' "
    "type='xs:double'/></message>"
    "<portType name='PT'><operation name='Op'><input message='t:I'/>"
    "<output message='t:O'/><fault name='E' message='t:E'/></operation>"
    "<operation name='R'><input message='t:RI'/><output message='t:RO'/>"
    "</operation></portType><binding name='B' type='t:PT'><soap:binding/>"
    "<operation name='Op'><input><soap:body use='literal'/></input><output>"
    "<soap:body use='literal'/></output></operation><operation name='R'>"
    "<soap:operation style='rpc'/><input><soap:body use='literal' "
    "namespace='urn:r'/></input><output><soap:body use='literal' "
    "namespace='urn:r'/></output></operation></binding><service name='S'>"
    "<port name='P' binding='t:B'><soap:address location='http://h/'/>"
    "</port></service></definitions>";

static sc_wsdl *fixed;

typedef struct input {
    const uint8_t *data;
    size_t size;
} input;

static int same_bytes(void *ud, const char *location, char **data, size_t *len,
                      sc_err *e) {
    input *in = ud;
    (void)location;
    (void)e;
    *data = malloc(in->size ? in->size : 1);
    if (!*data)
        abort();
    memcpy(*data, in->data, in->size);
    *len = in->size;
    return 0;
}

static void check_err(const sc_err *e) {
    if (!e->code || !e->msg[0] || strchr(e->msg, '\n'))
        abort();
}

static int differ(const char *what, const char *a, const char *b) {
    if (!a != !b || (a && strcmp(a, b))) {
        fprintf(stderr,
                "the readers disagree on the %s:\nevents %s\ntree   %s\n", what,
                a ? a : "(none)", b ? b : "(none)");
        return 1;
    }
    return 0;
}

/* The same value, keys in the same order. */
static int differ_json(const char *what, const json_t *a, const json_t *b) {
    char *ta = a ? json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *tb = b ? json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    int d =
        differ(what, ta, tb) || (a && !json_equal((json_t *)a, (json_t *)b));
    free(ta);
    free(tb);
    return d;
}

/*
 * Reads a response as sc_read_response does: from the events, or from a
 * tree when the events reader leaves it there; and always from a tree
 * too, which must give the same. Returns sc_read_response's answer in r
 * and e.
 */
static int read_both(const sc_op *op, const char *data, size_t size,
                     sc_response *r, sc_err *e) {
    sc_response t;
    sc_err te = {0};
    int rt = sc_read_response_tree(data, size, op, &t, &te);
    int rs = sc_read_response_sax(data, size, op, r, e);
    if (rs == 1) {
        if (e->code || r->result || r->header || r->version)
            abort();
        *r = t;
        *e = te;
        return rt;
    }
    char ca[16], cb[16];
    snprintf(ca, sizeof(ca), "%d %d", rs, e->code);
    snprintf(cb, sizeof(cb), "%d %d", rt, te.code);
    char va[32], vb[32];
    snprintf(va, sizeof(va), "%d %d %d", r->version, r->is_fault, r->mismatch);
    snprintf(vb, sizeof(vb), "%d %d %d", t.version, t.is_fault, t.mismatch);
    if (differ("return and code", ca, cb) || differ("error", e->msg, te.msg) ||
        differ("version, fault, mismatch", va, vb) ||
        differ("mismatch name", r->mismatch_name, t.mismatch_name) ||
        differ_json("result", r->result, t.result) ||
        differ_json("header", r->header, t.header))
        abort();
    if (rt != -1)
        sc_response_clear(&t);
    return rs;
}

/* Arguments shaped like the type: required fields filled by kind. */
static json_t *sample(const sc_type *t, int depth, unsigned seed);

static json_t *scalar(const sc_type *t, unsigned seed) {
    if (t->enums && t->enums[0])
        return json_string(t->enums[0]);
    switch (t->kind) {
    case SC_INTEGER: {
        json_int_t v = seed & 1 ? 1 : -1;
        if (v < t->lo)
            v = t->lo;
        if (v > t->hi)
            v = t->hi;
        return json_integer(v);
    }
    case SC_NUMBER:
        return seed & 2 ? json_real(27.3) : json_string("1e3");
    case SC_BOOLEAN:
        return seed & 4 ? json_true() : json_string("0");
    case SC_ANY:
        return seed & 8 ? json_pack("{s:[i,s]}", "x", 1, "<&>") : json_null();
    default:
        return json_string(seed & 16 ? "a<b>&\"c\"" : "");
    }
}

static json_t *sample(const sc_type *t, int depth, unsigned seed) {
    if (!t)
        return json_null();
    if (t->simple)
        return scalar(t, seed);
    json_t *o = json_object();
    if (depth > 6)
        return o;
    for (size_t i = 0; i < t->nattrs; i++) {
        char key[300];
        snprintf(key, sizeof(key), "@%s", t->attrs[i].name);
        if (t->attrs[i].required || seed & 32)
            json_object_set_new(o, key,
                                t->attrs[i].type && t->attrs[i].type->simple
                                    ? scalar(t->attrs[i].type, seed)
                                    : json_string("a"));
    }
    if (t->text)
        json_object_set_new(o, "#text", scalar(t->text, seed));
    int chosen[64] = {0};
    for (size_t i = 0; i < t->nelems; i++) {
        const sc_elem *e = t->elems[i];
        int c = e->choice > 0 && e->choice < 64 ? e->choice : 0;
        if (e->choice && (c == 0 || chosen[c]))
            continue;
        if (!e->min && !e->choice && !(seed & 64))
            continue;
        json_t *v = sample(e->type, depth + 1, seed * 31 + (unsigned)i);
        if (e->max != 1)
            v = json_pack("[o]", v);
        json_object_set_new(o, e->name, v);
        if (c)
            chosen[c] = 1;
    }
    return o;
}

static void build_all(const sc_wsdl *w, unsigned seed) {
    for (size_t i = 0; i < w->nservices; i++)
        for (size_t j = 0; j < w->services[i].nports; j++) {
            const sc_port *p = &w->services[i].ports[j];
            for (size_t k = 0; k < p->nops; k++) {
                const sc_op *op = &p->ops[k];
                json_t *args = op->in.content ? sample(op->in.content, 0, seed)
                                              : json_object();
                if (seed & 128)
                    json_object_set_new(args, "undeclared", json_true());
                sc_buf b = {0};
                sc_err e = {0};
                sc_envelope_opts o = {.version = p->version};
                if (sc_build_envelope(op, args, &o, &b, &e) == 0) {
                    sc_err pe = {0};
                    xmlDocPtr d = sc_parse_xml(b.p, b.len, "built", &pe);
                    if (!d) {
                        fprintf(stderr,
                                "built an envelope that does not "
                                "parse: %s\n%s\n",
                                pe.msg, b.p);
                        abort();
                    }
                    xmlFreeDoc(d);
                    /* what was sent, read as a response */
                    sc_response r;
                    sc_err re = {0};
                    if (read_both(op, b.p, b.len, &r, &re) == 0)
                        sc_response_clear(&r);
                } else {
                    check_err(&e);
                    if (e.code == FERRY_EINVAL && !strstr(e.msg, "arguments") &&
                        !strstr(e.msg, "namespaces"))
                        abort();
                    if (b.len)
                        abort();
                }
                sc_buf_free(&b);
                json_decref(args);
            }
        }
}

/*
 * The head reader (convert: false) against the whole read: where the whole
 * read succeeds, the head read does too, with the same version, Header and
 * fault (and a null result); where the whole read refuses what comes before
 * the Body's content, so does it. It may accept what is broken after the
 * Body's first start tag: that is left to the reader of raw.
 */
static void head_agrees(const sc_op *op, const char *data, size_t size,
                        int whole_rc, const sc_response *whole) {
    sc_response h;
    sc_err he = {0};
    int rc = sc_read_response_head(data, size, op, &h, &he);
    if (rc) {
        check_err(&he);
        if (!whole_rc)
            abort();
        return;
    }
    if (!whole_rc &&
        (h.version != whole->version || h.is_fault != whole->is_fault ||
         (!h.is_fault && !json_is_null(h.result)) ||
         !h.header != !whole->header ||
         (h.header && !json_equal(h.header, whole->header))))
        abort();
    sc_response_clear(&h);
}

static void as_response(const sc_op *op, const uint8_t *data, size_t size) {
    sc_response r;
    sc_err e = {0};
    if (read_both(op, (const char *)data, size, &r, &e)) {
        check_err(&e);
        head_agrees(op, (const char *)data, size, -1, NULL);
        return;
    }
    if (r.is_fault) {
        if (!r.fault.code || !r.fault.reason || !r.fault.kind)
            abort();
    } else if (!r.result) {
        abort();
    }
    head_agrees(op, (const char *)data, size, 0, &r);
    sc_response_clear(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fixed) {
        sc_err e = {0};
        sc_source src = {.data = fixed_wsdl, .len = sizeof(fixed_wsdl) - 1};
        fixed = sc_wsdl_load(&src, &e);
        if (!fixed)
            abort();
    }
    /* Its own allocation, so ASan sees reads past it. */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);

    input in = {(const uint8_t *)copy, size};
    sc_source src = {.data = copy,
                     .len = size,
                     .location = "http://fuzz/a.wsdl",
                     .fetch = same_bytes,
                     .ud = &in};
    sc_err e = {0};
    sc_wsdl *w = sc_wsdl_load(&src, &e);
    if (!w) {
        check_err(&e);
    } else {
        json_t *d = sc_wsdl_describe(w, NULL);
        if (!d)
            abort();
        char *text = json_dumps(d, JSON_COMPACT);
        if (!text)
            abort();
        free(text);
        json_decref(d);
        unsigned seed = size ? data[size - 1] : 0;
        build_all(w, seed);
        build_all(w, ~seed);
        sc_wsdl_free(w);
    }

    for (size_t i = 0; i < fixed->services[0].ports[0].nops; i++)
        as_response(&fixed->services[0].ports[0].ops[i], (const uint8_t *)copy,
                    size);
    as_response(NULL, (const uint8_t *)copy, size);
    free(copy);
    return 0;
}

void fuzz_target_cleanup(void) {
    sc_wsdl_free(fixed);
    fixed = NULL;
    xmlCleanupParser();
}
