/*
 * Selecting nodes from a stream: xmlTextReader reads the document in
 * chunks, and only the elements a select expression picks are built as a
 * tree (xmlTextReaderExpand), converted and freed (xmlTextReaderNext).
 *
 * The streaming subset is an absolute location path of child (/) and
 * descendant (//) steps with name tests, and predicates on the last step
 * that look only inside the node. Which steps match an element depends
 * only on its ancestors, so it is kept as one bit mask per depth: bit i of
 * m[d] says steps 0..i match a chain ending at the element open at depth
 * d. Predicates run through libxml2's XPath on the expanded node with the
 * position (proximityPosition) the tree evaluation would give it: its
 * place among its preceding siblings that pass the name test and the
 * earlier predicates. Everything else falls back to a whole tree and
 * libxml2's XPath (xj_xpath_eval), which gives the same result.
 */
#include "xj.h"
#include "xj_pred.h"

#include <libxml/xmlreader.h>
#include <libxml/xpathInternals.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEPS 32
#define MAX_PREDS 8

typedef struct step {
    int desc;    /* reached with //: any depth below the previous step */
    char *local; /* NULL: any local name */
    int any_ns;  /* "*": any namespace (or none) */
    char *uri;   /* NULL: no namespace (unless any_ns) */
} step;

struct xj_path {
    char *expr; /* for messages */
    int n;
    step steps[MAX_STEPS];
    int npred;
    /* Each predicate runs natively, or else through libxml2. */
    xj_pred *native[MAX_PREDS];
    xmlXPathCompExprPtr pred[MAX_PREDS];
    uint32_t last_bit;  /* bit of the last step */
    uint32_t pre_mask;  /* bits of the steps before the last */
    uint32_t desc_next; /* bit i: step i + 1 is reached with // */
};

void xj_path_free(xj_path *p) {
    if (!p)
        return;
    free(p->expr);
    for (int i = 0; i < p->n; i++) {
        free(p->steps[i].local);
        free(p->steps[i].uri);
    }
    for (int i = 0; i < p->npred; i++) {
        xj_pred_free(p->native[i]);
        if (p->pred[i])
            xmlXPathFreeCompExpr(p->pred[i]);
    }
    free(p);
}

/* ---- the expression ---- */

static int name_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c >= 0x80;
}

static int name_char(unsigned char c) {
    return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static const char *skip_space(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return s;
}

static const char *skip_name(const char *s) {
    if (!name_start((unsigned char)*s))
        return s;
    while (name_char((unsigned char)*s))
        s++;
    return s;
}

static int word_is(const char *s, size_t n, const char *w) {
    return strlen(w) == n && !memcmp(s, w, n);
}

/*
 * Whether a predicate looks only inside its node, so that evaluating it
 * on the expanded node alone gives what the tree gives. A lexical check in
 * the manner of XPath 1.0's own disambiguation rules (section 3.7):
 * refused are "..", axes that leave the node (parent, ancestor, sibling,
 * following, preceding, namespace), absolute paths, variables, id() and
 * lang(), and last() outside a nested predicate (the number of siblings is
 * not known until they have all been read). A refusal only means the tree
 * is used.
 */
static int pred_streamable(const char *s, const char *end) {
    int operand = 0; /* the previous token ends an operand */
    int depth = 0;   /* [ ] nesting inside the predicate */
    while (s < end) {
        unsigned char c = (unsigned char)*s;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            s++;
            continue;
        }
        if (c == '"' || c == '\'') {
            const char *q = memchr(s + 1, c, (size_t)(end - s - 1));
            if (!q)
                return 0;
            s = q + 1;
            operand = 1;
            continue;
        }
        if ((c >= '0' && c <= '9') ||
            (c == '.' && s + 1 < end && s[1] >= '0' && s[1] <= '9')) {
            while (s < end && ((*s >= '0' && *s <= '9') || *s == '.'))
                s++;
            operand = 1;
            continue;
        }
        if (c == '.') {
            if (s + 1 < end && s[1] == '.')
                return 0;
            s++;
            operand = 1;
            continue;
        }
        if (c == '/') {
            if (!operand)
                return 0;
            s += (s + 1 < end && s[1] == '/') ? 2 : 1;
            operand = 0;
            continue;
        }
        if (c == '*') {
            s++;
            operand = !operand; /* a name test, or the multiply operator */
            continue;
        }
        if (c == '[' || c == '(') {
            depth += c == '[';
            s++;
            operand = 0;
            continue;
        }
        if (c == ']' || c == ')') {
            depth -= c == ']';
            s++;
            operand = 1;
            continue;
        }
        if (c == '@' || c == ',' || c == '|' || c == '+' || c == '-' ||
            c == '=' || c == '<' || c == '>' || c == '!') {
            s++;
            operand = 0;
            continue;
        }
        if (name_start(c)) {
            const char *n0 = s, *n1 = skip_name(s), *after;
            int qualified = 0;
            s = n1;
            if (s < end && *s == ':' && s + 1 < end && s[1] != ':') {
                qualified = 1;
                s++;
                if (*s == '*')
                    s++;
                else
                    s = skip_name(s);
            }
            size_t len = (size_t)(n1 - n0);
            if (operand && !qualified &&
                (word_is(n0, len, "and") || word_is(n0, len, "or") ||
                 word_is(n0, len, "div") || word_is(n0, len, "mod"))) {
                operand = 0;
                continue;
            }
            after = skip_space(s);
            if (after < end && *after == '(') {
                if (!qualified &&
                    (word_is(n0, len, "id") || word_is(n0, len, "lang") ||
                     (depth == 0 && word_is(n0, len, "last"))))
                    return 0;
                operand = 0;
                continue;
            }
            if (after + 1 < end && after[0] == ':' && after[1] == ':') {
                if (qualified || !(word_is(n0, len, "child") ||
                                   word_is(n0, len, "attribute") ||
                                   word_is(n0, len, "self") ||
                                   word_is(n0, len, "descendant") ||
                                   word_is(n0, len, "descendant-or-self")))
                    return 0;
                s = after + 2;
                operand = 0;
                continue;
            }
            operand = 1;
            continue;
        }
        return 0; /* $variables, and anything unexpected */
    }
    return 1;
}

static void on_compile_error(void *ud, xmlErrorPtr err) {
    xj_err *e = ud;
    char msg[400];
    if (err && err->level >= XML_ERR_ERROR)
        xj_fail(e, XJ_EXPATH, "%s", xj_xpath_message(err, msg, sizeof(msg)));
}

/* Compiles an XPath expression, errors into e. */
static xmlXPathCompExprPtr compile(const char *expr, size_t len, xj_err *e) {
    xmlXPathContextPtr x = xmlXPathNewContext(NULL);
    xmlXPathCompExprPtr comp = NULL;
    xj_err ce = {0};
    char *copy = strndup(expr, len);
    if (!x || !copy) {
        xmlXPathFreeContext(x);
        free(copy);
        xj_fail(e, XJ_ENOMEM, "out of memory");
        return NULL;
    }
    x->error = on_compile_error;
    x->userData = &ce;
    comp = xmlXPathCtxtCompile(x, (const xmlChar *)copy);
    xmlXPathFreeContext(x);
    free(copy);
    if (!comp) {
        xj_fail(e, XJ_EXPATH, "select: %s: %s",
                ce.code ? ce.msg : "invalid XPath expression", expr);
    }
    return comp;
}

static const char *lookup_prefix(const xj_opts *o, const char *p, size_t n) {
    if (n == 3 && !memcmp(p, "xml", 3))
        return (const char *)XML_XML_NAMESPACE;
    for (size_t i = 0; i < o->nns; i++)
        if (*o->ns[i].prefix && strlen(o->ns[i].prefix) == n &&
            !memcmp(o->ns[i].prefix, p, n))
            return o->ns[i].uri;
    return NULL;
}

/* Reads a name test at *sp into st. Returns 1, 0 if it is not one, -1 on
 * an unbound prefix. */
static int parse_name_test(const char **sp, step *st, const xj_opts *o,
                           xj_err *e) {
    const char *s = *sp, *n0, *n1;
    if (*s == '*') {
        st->any_ns = 1;
        *sp = s + 1;
        return 1;
    }
    n0 = s;
    n1 = skip_name(s);
    if (n1 == n0)
        return 0;
    if (*n1 == ':' && n1[1] != ':') {
        const char *uri = lookup_prefix(o, n0, (size_t)(n1 - n0));
        const char *l0 = n1 + 1, *l1;
        if (!uri)
            return xj_fail(e, XJ_EXPATH,
                           "select: the prefix '%.*s' is not bound: add it "
                           "to the namespaces option",
                           (int)(n1 - n0), n0);
        if (!(st->uri = strdup(uri)))
            return xj_fail(e, XJ_ENOMEM, "out of memory");
        if (*l0 == '*') {
            *sp = l0 + 1;
            return 1;
        }
        l1 = skip_name(l0);
        if (l1 == l0)
            return 0;
        if (!(st->local = strndup(l0, (size_t)(l1 - l0))))
            return xj_fail(e, XJ_ENOMEM, "out of memory");
        *sp = l1;
        return 1;
    }
    if (!(st->local = strndup(n0, (size_t)(n1 - n0))))
        return xj_fail(e, XJ_ENOMEM, "out of memory");
    *sp = n1;
    return 1;
}

/* The end of the predicate opened at s ('['), past its ']'; NULL if it
 * does not close. */
static const char *predicate_end(const char *s) {
    int depth = 0;
    for (; *s; s++) {
        if (*s == '"' || *s == '\'') {
            const char *q = strchr(s + 1, *s);
            if (!q)
                return NULL;
            s = q;
        } else if (*s == '[') {
            depth++;
        } else if (*s == ']' && --depth == 0) {
            return s + 1;
        }
    }
    return NULL;
}

int xj_path_compile(const char *expr, const xj_opts *o, xj_path **out,
                    xj_err *e) {
    xmlXPathCompExprPtr whole;
    xj_path *p;
    const char *s;
    int rc;

    *out = NULL;
    /* The whole expression must compile either way: its errors read the
     * same whichever path runs it. */
    whole = compile(expr, strlen(expr), e);
    if (!whole)
        return -1;
    xmlXPathFreeCompExpr(whole);

    p = calloc(1, sizeof(*p));
    if (!p || !(p->expr = strdup(expr))) {
        free(p);
        return xj_fail(e, XJ_ENOMEM, "out of memory");
    }
    s = skip_space(expr);
    if (*s != '/')
        goto outside;
    while (*s == '/') {
        step *st;
        if (p->n == MAX_STEPS || p->npred)
            goto outside;
        st = &p->steps[p->n++];
        st->desc = s[1] == '/';
        s = skip_space(s + 1 + st->desc);
        rc = parse_name_test(&s, st, o, e);
        if (rc < 0)
            goto fail;
        if (rc == 0)
            goto outside;
        s = skip_space(s);
        if (*s == '(' || *s == ':')
            goto outside; /* a node type test, a function, an axis */
        while (*s == '[') {
            const char *end = predicate_end(s);
            size_t len;
            int nomem;
            if (!end || p->npred == MAX_PREDS)
                goto outside;
            len = (size_t)(end - 1 - (s + 1));
            p->native[p->npred] = xj_pred_compile(s + 1, len, o, &nomem);
            if (nomem) {
                xj_fail(e, XJ_ENOMEM, "out of memory");
                goto fail;
            }
            if (!p->native[p->npred]) {
                if (!pred_streamable(s + 1, end - 1))
                    goto outside;
                p->pred[p->npred] = compile(s + 1, len, e);
                if (!p->pred[p->npred])
                    goto fail;
            }
            p->npred++;
            s = skip_space(end);
        }
    }
    if (*s || p->n == 0)
        goto outside;
    p->last_bit = 1u << (p->n - 1);
    p->pre_mask = p->last_bit - 1;
    for (int i = 0; i + 1 < p->n; i++)
        if (p->steps[i + 1].desc)
            p->desc_next |= 1u << i;
    *out = p;
    return 0;

outside:
    xj_path_free(p);
    return 0;
fail:
    xj_path_free(p);
    return -1;
}

/* ---- the stream ---- */

static int name_test(const step *st, const xmlNode *node) {
    const xmlChar *uri;
    if (st->local && strcmp(st->local, (const char *)node->name))
        return 0;
    if (st->any_ns && !st->uri)
        return 1;
    uri = node->ns ? node->ns->href : NULL;
    if (!st->uri)
        return uri == NULL;
    return uri && !strcmp((const char *)uri, st->uri);
}

/* Whether an element strictly inside node passes the last step's name
 * test: only then can a selected node contain another. */
static int has_candidate(const xj_path *p, const xmlNode *node) {
    const step *last = &p->steps[p->n - 1];
    const xmlNode *k = node->children;
    while (k && k != node) {
        if (k->type == XML_ELEMENT_NODE) {
            if (name_test(last, k))
                return 1;
            if (k->children) {
                k = k->children;
                continue;
            }
        }
        while (k != node && !k->next)
            k = k->parent;
        if (k != node)
            k = k->next;
    }
    return 0;
}

typedef struct stream_state {
    xj_err *e;
    const char *what;
    int have_error;
    xmlError first;
    char msg[512];
} stream_state;

static void on_reader_error(void *ud, xmlErrorPtr err) {
    stream_state *st = ud;
    if (!err || err->level < XML_ERR_ERROR || st->have_error)
        return;
    st->have_error = 1;
    st->first = *err;
    snprintf(st->msg, sizeof(st->msg), "%s",
             err->message ? err->message : "not well-formed");
    st->first.message = st->msg;
}

static int source_read(void *ud, char *buf, int len) {
    return xj_source_read(ud, buf, len);
}

typedef struct mem_src {
    const char *p;
    size_t left;
} mem_src;

static int mem_read(void *ud, char *buf, int len) {
    mem_src *m = ud;
    size_t n = m->left < (size_t)len ? m->left : (size_t)len;
    memcpy(buf, m->p, n);
    m->p += n;
    m->left -= n;
    return (int)n;
}

/* Runs the predicates on a candidate; counters are its depth's. libxml2
 * reports its errors into xe (the context's, made on first use). Returns
 * 1 if it passes, 0 if not, -1 on an error. */
static int run_predicates(const xj_path *p, xmlXPathContextPtr *xp, xj_err *xe,
                          xmlNodePtr node, int *count, const xj_opts *o,
                          xj_err *e) {
    for (int k = 0; k < p->npred; k++) {
        xmlXPathObjectPtr res;
        int pass;
        count[k]++;
        if (p->native[k]) {
            pass = xj_pred_eval(p->native[k], node, count[k]);
            if (pass < 0)
                return xj_fail(e, XJ_ENOMEM, "out of memory");
            if (!pass)
                return 0;
            continue;
        }
        if (!*xp) {
            *xp = xj_xpath_context(node->doc, o, xe);
            if (!*xp)
                return xj_fail(e, XJ_ENOMEM, "out of memory");
        }
        (*xp)->doc = node->doc;
        (*xp)->node = node;
        (*xp)->proximityPosition = count[k];
        (*xp)->contextSize = -1;
        res = xmlXPathCompiledEval(p->pred[k], *xp);
        if (!res || xe->code) {
            xmlXPathFreeObject(res);
            if (xe->code == XJ_ENOMEM)
                return xj_fail(e, XJ_ENOMEM, "out of memory");
            return xj_fail(e, XJ_EXPATH, "select: %s: %s",
                           xe->code ? xe->msg : "a predicate failed", p->expr);
        }
        (*xp)->node = node;
        (*xp)->proximityPosition = count[k];
        pass = xmlXPathEvalPredicate(*xp, res);
        xmlXPathFreeObject(res);
        if (!pass)
            return 0;
    }
    return 1;
}

int xj_stream_select(const xj_source *src, const xj_path *p, const xj_opts *o,
                     xj_emit_fn emit, void *ud, xj_stream_stats *stats,
                     xj_err *e) {
    stream_state st = {.e = e, .what = src->what};
    mem_src mem = {src->data, src->len};
    xj_err xe = {0}; /* libxml2's XPath errors, for run_predicates */
    xmlTextReaderPtr r;
    xmlXPathContextPtr xp = NULL;
    uint32_t *m, *anc;
    int(*count)[MAX_PREDS];
    size_t seen = 0;
    int ret, rc = -1;

    if (xj_check_prolog(src, e))
        return -1;
    if (!src->data && src->reopen(src->ud))
        return xj_fail(e, XJ_EIO, "%s: cannot read it again", src->what);

    m = calloc(XJ_MAX_DEPTH + 2, sizeof(*m));
    anc = calloc(XJ_MAX_DEPTH + 2, sizeof(*anc));
    count = calloc(XJ_MAX_DEPTH + 2, sizeof(*count));
    if (!m || !anc || !count) {
        free(m);
        free(anc);
        free(count);
        return xj_fail(e, XJ_ENOMEM, "out of memory");
    }
    if (src->data && src->len <= INT_MAX)
        r = xmlReaderForMemory(src->data, (int)src->len, NULL, NULL,
                               xj_parse_options());
    else if (src->data)
        r = xmlReaderForIO(mem_read, NULL, &mem, NULL, NULL,
                           xj_parse_options());
    else
        r = xmlReaderForIO(source_read, NULL, (void *)src, NULL, NULL,
                           xj_parse_options());
    if (!r) {
        if (src->data && !src->len)
            xj_fail(e, XJ_EPARSE, "%s: the document is empty", src->what);
        else
            xj_fail(e, XJ_ENOMEM, "%s: cannot start the reader", src->what);
        goto done;
    }
    xmlTextReaderSetStructuredErrorHandler(r, on_reader_error, &st);

    ret = xmlTextReaderRead(r);
    while (ret == 1) {
        if (xmlTextReaderNodeType(r) != XML_READER_TYPE_ELEMENT) {
            ret = xmlTextReaderRead(r);
            continue;
        }
        if ((++seen & 1023) == 0 && src->cancelled && src->cancelled(src->ud)) {
            xj_fail(e, XJ_ECANCELLED, "cancelled");
            goto done;
        }
        int d = xmlTextReaderDepth(r);
        xmlNodePtr node = xmlTextReaderCurrentNode(r);
        if (d < 0 || d > XJ_MAX_DEPTH || !node) {
            xj_fail(e, XJ_ETOOBIG, "%s: elements nested deeper than %d",
                    src->what, XJ_MAX_DEPTH);
            goto done;
        }
        uint32_t above = d ? anc[d - 1] | m[d - 1] : 0, mm = 0;
        for (int i = 0; i < p->n; i++) {
            const step *s = &p->steps[i];
            int ok;
            if (!name_test(s, node))
                continue;
            if (i == 0)
                ok = s->desc || d == 0;
            else if (s->desc)
                ok = (above >> (i - 1)) & 1;
            else
                ok = d > 0 && ((m[d - 1] >> (i - 1)) & 1);
            if (ok)
                mm |= 1u << i;
        }
        anc[d] = above;
        m[d] = mm;
        memset(count[d + 1], 0, sizeof(count[d + 1]));
        /* Can an element below this one be selected? */
        int inside =
            p->steps[0].desc || (mm & p->pre_mask) || (above & p->desc_next);

        if (mm & p->last_bit) {
            xmlNodePtr full = xmlTextReaderExpand(r);
            int pass;
            if (!full)
                break; /* a parse error inside it: reported below */
            if (stats)
                stats->candidates++;
            pass = run_predicates(p, &xp, &xe, full, count[d], o, e);
            if (pass < 0)
                goto done;
            if (pass) {
                json_t *v = xj_node_to_json(full, o, e);
                if (!v)
                    goto done;
                if (stats)
                    stats->matched++;
                if (emit(ud, v, e))
                    goto done;
            }
            if (inside && has_candidate(p, full))
                ret = xmlTextReaderRead(r);
            else
                ret = xmlTextReaderNext(r);
            continue;
        }
        ret = inside ? xmlTextReaderRead(r) : xmlTextReaderNext(r);
    }
    if (ret != 0) {
        if (st.have_error)
            xj_parse_error(e, src->what, &st.first);
        else
            xj_fail(e, XJ_EPARSE, "%s: not well-formed XML", src->what);
        goto done;
    }
    rc = 0;

done:
    if (xp)
        xmlXPathFreeContext(xp);
    if (r)
        xmlFreeTextReader(r);
    free(m);
    free(anc);
    free(count);
    return rc;
}
