/*
 * Parsing untrusted XML with libxml2 2.9 (Debian 12) and later.
 *
 * No XML_PARSE_NOENT (entities are never substituted: with it 2.9 reads
 * file:// external entities even under XML_PARSE_NONET), no DTDLOAD,
 * DTDATTR, DTDVALID or XINCLUDE, and never XML_PARSE_HUGE (it switches off
 * the billion-laughs check and the depth and size limits). On top of that,
 * a document that declares any entity is refused at the first <!ENTITY,
 * before that declaration is stored, so nothing is ever expanded or read:
 * a tree parse hooks the SAX entityDecl callback, and a streamed parse runs
 * the prolog through a push parser with the same hook before the reader
 * starts (xmlTextReader offers no hook of its own).
 */
#include "xj.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int xj_fail(xj_err *e, int code, const char *fmt, ...) {
    if (e && !e->code) {
        va_list ap;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
    }
    return -1;
}

int xj_parse_options(void) {
    int opts = XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES;
#if LIBXML_VERSION >= 21300
    opts |= XML_PARSE_NO_XXE;
#endif
    return opts;
}

/* libxml2 messages end with a newline, and may quote the document's own
 * bytes: keep one printable line. */
static void clean_message(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = 0;
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = ' ';
}

void xj_parse_error(xj_err *e, const char *what, const xmlError *err) {
    char msg[512];
    snprintf(msg, sizeof(msg), "%s",
             err && err->message ? err->message : "not well-formed");
    clean_message(msg);
    if (err && err->line > 0)
        xj_fail(e, XJ_EPARSE, "%s: line %d, column %d: %s", what, err->line,
                err->int2 > 0 ? err->int2 : 1, msg);
    else
        xj_fail(e, XJ_EPARSE, "%s: %s", what, msg);
}

/* What a parse found, in the context's _private. */
typedef struct parse_state {
    xj_err *e;
    const char *what;
    int refused;   /* an entity declaration was seen */
    int root_seen; /* the prolog check reached the root element */
    int have_error;
    xmlError first; /* the first error; message copied into msg */
    char msg[512];
} parse_state;

static void keep_error(parse_state *st, const xmlError *err) {
    if (!err || err->level < XML_ERR_ERROR || st->have_error)
        return;
    /* XML_ERR_USER_STOP is our own xmlStopParser, not the document's. */
    if (err->code == XML_ERR_USER_STOP)
        return;
    st->have_error = 1;
    st->first = *err;
    snprintf(st->msg, sizeof(st->msg), "%s",
             err->message ? err->message : "not well-formed");
    st->first.message = st->msg;
}

static void on_parser_error(void *ud, xmlErrorPtr err) {
    xmlParserCtxtPtr c = ud;
    if (c && c->_private)
        keep_error(c->_private, err);
}

static void on_entity_decl(void *ud, const xmlChar *name, int type,
                           const xmlChar *public_id, const xmlChar *system_id,
                           xmlChar *content) {
    xmlParserCtxtPtr c = ud;
    parse_state *st = c->_private;
    (void)public_id;
    (void)content;
    if (st && !st->refused) {
        int param = type == XML_INTERNAL_PARAMETER_ENTITY ||
                    type == XML_EXTERNAL_PARAMETER_ENTITY;
        st->refused = 1;
        xj_fail(st->e, XJ_EUNSAFE,
                "%s: line %d: the document declares %s entity '%s'%s; "
                "documents that declare entities are refused (external "
                "entities could read files, nested ones expand without "
                "bound), nothing was read or expanded",
                st->what, xmlSAX2GetLineNumber(c),
                param       ? "the parameter"
                : system_id ? "the external"
                            : "the",
                (const char *)name, system_id ? " (a SYSTEM identifier)" : "");
    }
    xmlStopParser(c);
}

static void finish_error(parse_state *st, xmlParserCtxtPtr c) {
    if (st->e->code)
        return;
    if (st->have_error) {
        xj_parse_error(st->e, st->what, &st->first);
        return;
    }
    const xmlError *last = c ? xmlCtxtGetLastError(c) : NULL;
    if (last && last->code != XML_ERR_OK && last->code != XML_ERR_USER_STOP)
        xj_parse_error(st->e, st->what, last);
    else
        xj_fail(st->e, XJ_EPARSE, "%s: not well-formed XML", st->what);
}

#define CHUNK 65536

int xj_source_read(const xj_source *src, char *buf, int len) {
    int n = 0;
    while (n < len) {
        int k = src->read(src->ud, buf + n, len - n);
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        n += k;
    }
    return n;
}

/*
 * Both the tree parse and the prolog check use the push parser, fed in
 * chunks: it is what xmlTextReader runs on, so the tree and the stream
 * agree on every document (the memory parser of 2.9 takes a NUL byte
 * after the root element for the end of the input, where the push parser
 * reports the extra content), and no copy of a large document is made at
 * once.
 */
xmlDocPtr xj_parse_memory(const char *data, size_t len, const char *what,
                          xj_err *e) {
    parse_state st = {.e = e, .what = what};
    xmlParserCtxtPtr c = xmlCreatePushParserCtxt(NULL, NULL, NULL, 0, NULL);
    xmlDocPtr doc;
    size_t off = 0;

    if (!c) {
        xj_fail(e, XJ_ENOMEM, "%s: out of memory", what);
        return NULL;
    }
    xmlCtxtUseOptions(c, xj_parse_options());
    c->_private = &st;
    c->sax->entityDecl = on_entity_decl;
    c->sax->serror = on_parser_error;
#if LIBXML_VERSION >= 21200
    xmlCtxtSetMaxAmplification(c, 5);
#endif
    do {
        size_t n = len - off < CHUNK ? len - off : CHUNK;
        xmlParseChunk(c, data + off, (int)n, off + n == len);
        off += n;
    } while (off < len && !st.refused && c->instate != XML_PARSER_EOF);
    doc = c->myDoc;
    c->myDoc = NULL;
    if (st.refused || !doc || !c->wellFormed) {
        finish_error(&st, c);
        xmlFreeDoc(doc);
        doc = NULL;
    }
    xmlFreeParserCtxt(c);
    return doc;
}

/* The prolog check's SAX: the root element's start ends it. */
static void on_root_start(void *ud, const xmlChar *localname,
                          const xmlChar *prefix, const xmlChar *uri,
                          int nb_namespaces, const xmlChar **namespaces,
                          int nb_attributes, int nb_defaulted,
                          const xmlChar **attributes) {
    xmlParserCtxtPtr c = ud;
    parse_state *st = c->_private;
    (void)localname;
    (void)prefix;
    (void)uri;
    (void)nb_namespaces;
    (void)namespaces;
    (void)nb_attributes;
    (void)nb_defaulted;
    (void)attributes;
    st->root_seen = 1;
    xmlStopParser(c);
}

int xj_check_prolog(const xj_source *src, xj_err *e) {
    parse_state st = {.e = e, .what = src->what};
    xmlSAXHandler sax;
    char buf[16384];
    size_t off = 0;
    int n, rc = 0;

    memset(&sax, 0, sizeof(sax));
    xmlSAXVersion(&sax, 2);
    sax.entityDecl = on_entity_decl;
    sax.startElementNs = on_root_start;
    sax.serror = on_parser_error;

    xmlParserCtxtPtr c = xmlCreatePushParserCtxt(&sax, NULL, NULL, 0, NULL);
    if (!c)
        return xj_fail(e, XJ_ENOMEM, "%s: out of memory", src->what);
    xmlCtxtUseOptions(c, xj_parse_options());
    c->_private = &st;
    for (;;) {
        if (src->data) {
            size_t left = src->len - off;
            n = (int)(left < sizeof(buf) ? left : sizeof(buf));
            memcpy(buf, src->data + off, (size_t)n);
            off += (size_t)n;
        } else {
            n = xj_source_read(src, buf, (int)sizeof(buf));
            if (n < 0) {
                rc = xj_fail(e, XJ_EIO, "%s: read failed", src->what);
                break;
            }
        }
        xmlParseChunk(c, buf, n, n == 0);
        if (st.refused || st.root_seen || n == 0 ||
            c->instate == XML_PARSER_EOF)
            break;
    }
    if (!rc && !st.root_seen) {
        /* Stopped before the root: refused, not well-formed, or empty.
         * The reader reports an empty document itself. */
        if (st.refused || st.have_error || !c->wellFormed) {
            finish_error(&st, c);
            rc = -1;
        }
    }
    xmlFreeDoc(c->myDoc);
    c->myDoc = NULL;
    xmlFreeParserCtxt(c);
    return rc;
}
