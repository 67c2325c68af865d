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
 */
#include "soap_core.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

typedef struct parse_state {
    int refused;
    int have_error;
    int line, col;
    char msg[256];
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

xmlDocPtr sc_parse_xml(const char *data, size_t len, const char *what,
                       sc_err *e) {
    parse_state st = {0};
    if (len == 0) {
        sc_fail(e, FERRY_EPARSE, "%s: empty document", what);
        return NULL;
    }
    xmlGenericErrorFunc old_fn = xmlGenericError;
    void *old_ctx = xmlGenericErrorContext;
    xmlSetGenericErrorFunc(NULL, quiet);
    xmlParserCtxtPtr c = xmlCreatePushParserCtxt(NULL, NULL, NULL, 0, NULL);
    if (!c) {
        xmlSetGenericErrorFunc(old_ctx, old_fn);
        sc_fail(e, FERRY_ENOMEM, "%s: out of memory", what);
        return NULL;
    }
    xmlCtxtUseOptions(c, sc_xml_options());
    c->_private = &st;
    c->sax->internalSubset = on_doctype;
    c->sax->serror = on_error;
#if LIBXML_VERSION >= 21200
    xmlCtxtSetMaxAmplification(c, 5);
#endif
    size_t off = 0;
    do {
        size_t n = len - off < CHUNK ? len - off : CHUNK;
        xmlParseChunk(c, data + off, (int)n, off + n == len);
        off += n;
    } while (off < len && !st.refused && c->instate != XML_PARSER_EOF);
    xmlDocPtr doc = c->myDoc;
    c->myDoc = NULL;
    int ok = doc && c->wellFormed && !st.refused;
    if (!ok) {
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
        xmlFreeDoc(doc);
        doc = NULL;
    }
    xmlFreeParserCtxt(c);
    xmlSetGenericErrorFunc(old_ctx, old_fn);
    return doc;
}
