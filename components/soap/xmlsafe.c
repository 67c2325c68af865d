/*
 * Untrusted XML (WSDLs, schemas and responses all come from elsewhere)
 * parsed with libxml2 2.9 (Debian 12) and later.
 *
 * Never XML_PARSE_NOENT (with it 2.9 reads file:// external entities even
 * under XML_PARSE_NONET), DTDLOAD, DTDATTR, DTDVALID, XINCLUDE or HUGE
 * (which switches off the billion-laughs check and the depth limits). On
 * top of that a DOCTYPE is refused as soon as the parser reports it,
 * before any declaration in it is stored: neither WSDL nor SOAP needs one
 * (SOAP forbids it in envelopes), and without a DTD there is no entity to
 * expand or read.
 *
 * The same parse can build a tree (sc_parse_xml) or hand its events to a
 * reader (sc_parse_sax): one driver for both, so that the two refuse the
 * same documents with the same messages.
 */
#include "soap_core.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parse_state {
    int refused;
    int have_error;
    int line, col;
    char msg[256];
    /* sc_parse_sax */
    const sc_sax *sax;
    int stopped;   /* the events cannot stand in for a tree */
    unsigned open; /* elements open */
    size_t run;    /* text since the last tag */
    sc_sax_attr *attrs;
    size_t *offs; /* the values' offsets in values, while it grows */
    size_t cap_attrs;
    sc_buf values;
} parse_state;

static void on_error(void *ud, xmlErrorPtr err) {
    xmlParserCtxtPtr c = ud;
    parse_state *st = c ? c->_private : NULL;
    if (!st || !err || err->level < XML_ERR_ERROR || st->have_error ||
        err->code == XML_ERR_USER_STOP)
        return;
    st->have_error = 1;
    st->line = err->line;
    st->col = err->int2;
    snprintf(st->msg, sizeof(st->msg), "%s",
             err->message ? err->message : "not well-formed");
    size_t n = strlen(st->msg);
    while (n && (st->msg[n - 1] == '\n' || st->msg[n - 1] == ' '))
        st->msg[--n] = 0;
}

static void on_doctype(void *ud, const xmlChar *name, const xmlChar *ext,
                       const xmlChar *sys) {
    xmlParserCtxtPtr c = ud;
    parse_state *st = c->_private;
    (void)name;
    (void)ext;
    (void)sys;
    st->refused = 1;
    xmlStopParser(c);
}

/* ---- events (sc_parse_sax) ---- */

static void stop(xmlParserCtxtPtr c, parse_state *st) {
    st->stopped = 1;
    xmlStopParser(c);
}

/* A name as xmlSAX2StartElementNs and xmlSAX2AttributeNs store it: with
 * its prefix when the prefix is not declared (and then no namespace). */
static const char *tree_name(xmlParserCtxtPtr c, const xmlChar *local,
                             const xmlChar *prefix, const xmlChar *uri) {
    if (prefix && !uri) {
        const xmlChar *q = xmlDictQLookup(c->dict, prefix, local);
        if (q)
            return (const char *)q;
    }
    return (const char *)local;
}

/* Appends an attribute's value as the tree holds it, NUL-terminated.
 * Without XML_PARSE_NOENT the parser passes a '&' in a value as "&#38;"
 * for the tree builder to decode again (xmlStringLenGetNodeList); no
 * other reference can reach here without a DTD. Returns -1 on anything
 * else, for the tree to read. */
static int put_value(sc_buf *b, const char *v, const char *end) {
    const char *amp;
    while ((amp = memchr(v, '&', (size_t)(end - v)))) {
        if (end - amp < 5 || memcmp(amp, "&#38;", 5))
            return -1;
        sc_buf_add(b, v, (size_t)(amp - v) + 1);
        v = amp + 5;
    }
    sc_buf_add(b, v, (size_t)(end - v));
    sc_buf_add(b, "", 1);
    return b->oom ? -1 : 0;
}

static void sax_start(void *ud, const xmlChar *local, const xmlChar *prefix,
                      const xmlChar *uri, int nb_namespaces,
                      const xmlChar **namespaces, int nb_attributes,
                      int nb_defaulted, const xmlChar **attributes) {
    xmlParserCtxtPtr c = ud;
    parse_state *st = c->_private;
    (void)nb_namespaces;
    (void)namespaces;
    (void)nb_defaulted; /* only from a DTD */
    /* libxml2 2.9's push parser leaves the depth limit to the tree
     * builder (nodePush), which fails the document past it: so does the
     * tree reader, with the same message. */
    if (st->open > xmlParserMaxDepth) {
        stop(c, st);
        return;
    }
    st->open++;
    st->run = 0;
    size_t n = nb_attributes > 0 ? (size_t)nb_attributes : 0;
    if (n > st->cap_attrs) {
        sc_sax_attr *a = realloc(st->attrs, n * sizeof(*a));
        if (a)
            st->attrs = a;
        size_t *o = realloc(st->offs, n * sizeof(*o));
        if (o)
            st->offs = o;
        if (!a || !o) {
            stop(c, st);
            return;
        }
        st->cap_attrs = n;
    }
    st->values.len = 0;
    for (size_t i = 0; i < n; i++) {
        const xmlChar **a = attributes + 5 * i;
        st->offs[i] = st->values.len;
        if (put_value(&st->values, (const char *)a[3], (const char *)a[4])) {
            stop(c, st);
            return;
        }
        st->attrs[i].name = tree_name(c, a[0], a[1], a[2]);
        st->attrs[i].ns = (const char *)a[2];
    }
    for (size_t i = 0; i < n; i++)
        st->attrs[i].value = st->values.p + st->offs[i];
    if (st->sax->start(st->sax->ud, tree_name(c, local, prefix, uri),
                       (const char *)uri, st->attrs, n))
        stop(c, st);
}

static void sax_end(void *ud, const xmlChar *local, const xmlChar *prefix,
                    const xmlChar *uri) {
    xmlParserCtxtPtr c = ud;
    parse_state *st = c->_private;
    (void)local;
    (void)prefix;
    (void)uri;
    st->open--;
    st->run = 0;
    if (st->sax->end(st->sax->ud))
        stop(c, st);
}

static void sax_text(void *ud, const xmlChar *s, int len) {
    xmlParserCtxtPtr c = ud;
    parse_state *st = c->_private;
    /* A tree holds no text node longer than XML_MAX_TEXT_LENGTH: libxml2
     * stops the parse there, keeping what it has (see xmlSAX2Text). Text
     * since the last tag is at least as long as any node of it. */
    st->run += (size_t)len;
    if (st->run > XML_MAX_TEXT_LENGTH ||
        st->sax->text(st->sax->ud, (const char *)s, (size_t)len))
        stop(c, st);
}

/* Comments and PIs are not kept; the handlers are there all the same,
 * as libxml2 words some errors differently without them. */
static void sax_comment(void *ud, const xmlChar *value) {
    (void)ud;
    (void)value;
}

static void sax_pi(void *ud, const xmlChar *target, const xmlChar *data) {
    (void)ud;
    (void)target;
    (void)data;
}

/* An entity or character reference the parser leaves to the tree builder:
 * never without a DTD. */
static void sax_reference(void *ud, const xmlChar *name) {
    xmlParserCtxtPtr c = ud;
    (void)name;
    stop(c, c->_private);
}

/* ---- the driver ---- */

int sc_xml_options(void);
int sc_xml_options(void) {
    int opts = XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA |
               XML_PARSE_BIG_LINES | XML_PARSE_COMPACT;
#if LIBXML_VERSION >= 21300
    opts |= XML_PARSE_NO_XXE;
#endif
    return opts;
}

#define CHUNK (1 << 20)

/* Some of libxml2 2.9's messages (input encoding errors) bypass the
 * context's structured handler and go to the thread's generic one, which
 * prints on stderr: silenced while a parse runs, then put back. */
static void quiet(void *ctx, const char *msg, ...) {
    (void)ctx;
    (void)msg;
}

/* Parses into a tree (sax NULL; *out the document) or into sax's
 * callbacks. Returns 0, 1 when stopped for the tree (sax only), or -1
 * with e set. */
static int parse(const char *data, size_t len, const char *what,
                 const sc_sax *sax, xmlDocPtr *out, sc_err *e) {
    parse_state st = {.sax = sax};
    *out = NULL;
    if (len == 0) {
        sc_fail(e, FERRY_EPARSE, "%s: empty document", what);
        return -1;
    }
    xmlGenericErrorFunc old_fn = xmlGenericError;
    void *old_ctx = xmlGenericErrorContext;
    xmlSetGenericErrorFunc(NULL, quiet);
    xmlParserCtxtPtr c = xmlCreatePushParserCtxt(NULL, NULL, NULL, 0, NULL);
    if (!c) {
        xmlSetGenericErrorFunc(old_ctx, old_fn);
        sc_fail(e, FERRY_ENOMEM, "%s: out of memory", what);
        return -1;
    }
    xmlCtxtUseOptions(c, sc_xml_options());
    c->_private = &st;
    c->sax->internalSubset = on_doctype;
    c->sax->serror = on_error;
    if (sax) {
        /* What builds the tree is replaced, handler for handler: the
         * parser's behaviour depends on which are set. The rest (the
         * document, entity lookups) stays as it is. One callback for all
         * text, as in the tree's, so that none is told apart as
         * ignorable (areBlanks). */
        c->sax->startElementNs = sax_start;
        c->sax->endElementNs = sax_end;
        c->sax->characters = sax_text;
        c->sax->ignorableWhitespace = sax_text;
        c->sax->comment = sax_comment;
        c->sax->processingInstruction = sax_pi;
        c->sax->reference = sax_reference;
    }
#if LIBXML_VERSION >= 21200
    xmlCtxtSetMaxAmplification(c, 5);
#endif
    size_t off = 0;
    do {
        size_t n = len - off < CHUNK ? len - off : CHUNK;
        xmlParseChunk(c, data + off, (int)n, off + n == len);
        off += n;
    } while (off < len && !st.refused && !st.stopped &&
             c->instate != XML_PARSER_EOF);
    xmlDocPtr doc = c->myDoc;
    c->myDoc = NULL;
    int rc = 0;
    if (st.stopped && !st.refused) {
        /* Stopped before any error: SAX is off after the first one. */
        rc = 1;
    } else if (!doc || !c->wellFormed || st.refused) {
        if (st.refused)
            sc_fail(e, FERRY_EUNSUPPORTED,
                    "%s: the document has a DOCTYPE; documents with a DTD "
                    "are refused (nothing in it was read)",
                    what);
        else if (st.have_error)
            sc_fail(e, FERRY_EPARSE, "%s: line %d, column %d: %s", what,
                    st.line, st.col > 0 ? st.col : 1, st.msg);
        else
            sc_fail(e, FERRY_EPARSE, "%s: not well-formed XML", what);
        rc = -1;
    }
    if (rc || sax)
        xmlFreeDoc(doc);
    else
        *out = doc;
    xmlFreeParserCtxt(c);
    xmlSetGenericErrorFunc(old_ctx, old_fn);
    free(st.attrs);
    free(st.offs);
    sc_buf_free(&st.values);
    return rc;
}

xmlDocPtr sc_parse_xml(const char *data, size_t len, const char *what,
                       sc_err *e) {
    xmlDocPtr doc;
    parse(data, len, what, NULL, &doc, e);
    return doc;
}

int sc_parse_sax(const char *data, size_t len, const char *what,
                 const sc_sax *sax, sc_err *e) {
    xmlDocPtr doc;
    return parse(data, len, what, sax, &doc, e);
}
