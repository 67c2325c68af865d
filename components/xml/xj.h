/*
 * The xml component's core: parsing untrusted XML safely, converting
 * between libxml2 trees and jansson values, and selecting nodes from a
 * stream with xmlTextReader. It knows nothing of the ferry API (no ctx, no
 * blobs): the actions in xml.c and the other action files hand it memory or
 * a read callback and turn its errors into step errors, and the fuzz target
 * (tests/xml/fuzz_xml.c) calls it directly.
 *
 * Ownership: every json_t * returned is a new reference; every xmlDocPtr
 * returned belongs to the caller (xmlFreeDoc). Options and sources are
 * borrowed for the call.
 */
#ifndef FERRY_XML_XJ_H
#define FERRY_XML_XJ_H

#include <jansson.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <stddef.h>

/* What went wrong; the action maps it to a FERRY_E* code. */
enum {
    XJ_OK = 0,
    XJ_EPARSE,     /* not well-formed XML: message has line and column */
    XJ_EUNSAFE,    /* refused for safety: entity declarations, ... */
    XJ_EINVAL,     /* a bad option or value: message names it */
    XJ_EXPATH,     /* an XPath expression that does not compile or run */
    XJ_ENOMEM,     /* out of memory */
    XJ_EIO,        /* the read callback failed */
    XJ_ECANCELLED, /* the cancelled callback said so */
    XJ_ETOOBIG,    /* beyond a size the parser accepts */
};

#define XJ_ERR_MAX 768

typedef struct xj_err {
    int code;
    char msg[XJ_ERR_MAX];
} xj_err;

/* Sets e (once: a first error is kept) and returns -1. */
int xj_fail(xj_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The deepest element nesting accepted either way: libxml2's own limit
 * without XML_PARSE_HUGE, so that whatever from_json writes parses back. */
#define XJ_MAX_DEPTH 256

/* One namespace binding of the `namespaces` option. prefix "" is allowed
 * for naming (it names the default namespace in from_json and writes
 * unprefixed names in "prefixed" mode) but not in XPath. */
typedef struct xj_ns {
    const char *prefix;
    const char *uri;
} xj_ns;

/* The mapping's options. Strings are borrowed. */
typedef struct xj_opts {
    const char *attr_prefix; /* "@" */
    const char *text_key;    /* "#text" */
    int coerce_numbers;
    int coerce_booleans;
    int prefixed_names; /* 0: local names; 1: prefix:local from bindings */
    const xj_ns *ns;    /* namespace bindings */
    size_t nns;
    const char *const *arrays; /* names always written as arrays */
    size_t narrays;
} xj_opts;

/* Fills o with the defaults: "@", "#text", no coercion, local names, no
 * bindings, no forced arrays. */
void xj_opts_init(xj_opts *o);

/*
 * Reads the options shared by the actions from a JSON object (the step's
 * input): attr_prefix, text_key, coerce_numbers, coerce_booleans, names,
 * namespaces, arrays. Absent members keep their defaults. The strings
 * point into input, and *ns / *arrays are malloc'd arrays the caller frees
 * (also on failure). Returns 0, or -1 with e naming the option.
 */
int xj_opts_from_json(const json_t *input, xj_opts *o, xj_ns **ns,
                      const char ***arrays, xj_err *e);

/* ---- parsing ---- */

/* The parser options every parse uses (see xj_parse.c): no entity
 * substitution, no DTD loading or validation, no network, no XInclude,
 * and the default limits (never XML_PARSE_HUGE). */
int xj_parse_options(void);

/* A document to read: either in memory (data, len) or from read (data
 * NULL). read fills buf with up to len bytes and returns how many, 0 at the
 * end, -1 on error; reopen starts the stream again from its first byte
 * (needed once, after the safety check of the prolog) and returns 0 or -1.
 * cancelled, if set, is asked between nodes while streaming. */
typedef struct xj_source {
    const char *data;
    size_t len;
    int (*read)(void *ud, char *buf, int len);
    int (*reopen)(void *ud);
    int (*cancelled)(void *ud);
    void *ud;
    const char *what; /* names the document in messages ("xml") */
} xj_source;

/* Reads from a streamed source until buf holds len bytes or the source
 * ends: returns the bytes read, or -1. Sources may return less than
 * asked (a blob reader, a socket); libxml2's push parser, which the
 * reader runs on, is given whole blocks, as it is from memory. */
int xj_source_read(const xj_source *src, char *buf, int len);

/* Parses a whole document from memory into a tree, with the push parser
 * xmlTextReader also runs on (so that both agree on every document).
 * Refuses entity declarations before anything is declared or expanded.
 * Returns the tree, or NULL with e set (XJ_EPARSE with "what: line L,
 * column C: message"). */
xmlDocPtr xj_parse_memory(const char *data, size_t len, const char *what,
                          xj_err *e);

/* Checks a streamed document's prolog (everything before the root
 * element) for entity declarations and well-formedness with a push parser,
 * reading src until the root element starts. Returns 0 or -1 with e set.
 * Leaves src read partly: reopen it before reading again. */
int xj_check_prolog(const xj_source *src, xj_err *e);

/* Formats the first error of a parse into e: "what: line L, column C:
 * message". Used for the reader's errors too. */
void xj_parse_error(xj_err *e, const char *what, const xmlError *err);

/* ---- XML to JSON ---- */

/* Converts one node: an element to its value under the mapping (a string,
 * or an object when it has attributes or child elements), an attribute to
 * its value, a text, CDATA or comment node to its text, a document to
 * {"root name": value}. Returns a new ref or NULL with e set. */
json_t *xj_node_to_json(xmlNodePtr node, const xj_opts *o, xj_err *e);

/* Converts an XPath result: a node set to an array of converted nodes (or
 * of their string values with as_string), a number, boolean or string to
 * that JSON value (NaN and infinities to null, integral numbers within
 * 2^53 to integers). Returns a new ref or NULL with e set. */
json_t *xj_xpath_to_json(xmlXPathObjectPtr res, const xj_opts *o, int as_string,
                         xj_err *e);

/* The message of an XPath error: with a structured handler installed,
 * libxml2 2.9 leaves err->message empty and gives only the code. Written
 * into buf as "message (at character N)". */
const char *xj_xpath_message(const xmlError *err, char *buf, size_t size);

/* A new XPath context on doc with o's bindings registered (the "" prefix
 * is skipped: XPath 1.0 has no default namespace) and errors collected
 * into e. Returns NULL on failure with e set. */
xmlXPathContextPtr xj_xpath_context(xmlDocPtr doc, const xj_opts *o, xj_err *e);

/* Evaluates expr on doc. Returns the result (xmlXPathFreeObject it) or
 * NULL with e set (XJ_EXPATH). what names the option in messages. */
xmlXPathObjectPtr xj_xpath_eval(xmlDocPtr doc, const char *expr,
                                const xj_opts *o, const char *what, xj_err *e);

/* ---- selecting from a stream ---- */

/* A select expression compiled to the streaming subset: an absolute path
 * of child (/) and descendant (//) steps with name tests (name, prefix:name,
 * *, prefix:*), with predicates on the last step that look only inside the
 * node (see docs/xml.md). */
typedef struct xj_path xj_path;

/* Compiles expr. Returns 0 with *out set, 0 with *out NULL when expr is
 * outside the streaming subset (the caller then uses a tree and libxml2's
 * XPath), or -1 with e set (an unbound prefix). */
int xj_path_compile(const char *expr, const xj_opts *o, xj_path **out,
                    xj_err *e);
void xj_path_free(xj_path *p);

/* Called for each selected node in document order with its converted
 * value (stolen). Returns 0 to go on, -1 to stop with e set. */
typedef int (*xj_emit_fn)(void *ud, json_t *value, xj_err *e);

typedef struct xj_stream_stats {
    size_t candidates; /* elements the path matched, before predicates */
    size_t matched;    /* nodes emitted */
} xj_stream_stats;

/* Streams src through xmlTextReader, expands each element the path
 * selects, converts it, hands it to emit and frees it. The prolog is
 * checked first (xj_check_prolog), then src is reopened (or, in memory,
 * read again). Returns 0 or -1 with e set; stats may be NULL. */
int xj_stream_select(const xj_source *src, const xj_path *p, const xj_opts *o,
                     xj_emit_fn emit, void *ud, xj_stream_stats *stats,
                     xj_err *e);

/* ---- JSON to XML ---- */

/*
 * Builds a document from value. With root, value is the root element's
 * content; without, value must be an object with one member, the root's
 * name and content. Names may be "prefix:local" (prefix bound by o->ns),
 * "{uri}local", or plain (in the default namespace when o->ns binds ""). The
 * bindings are declared on the root. Returns the tree or NULL with e set.
 */
xmlDocPtr xj_json_to_doc(const json_t *value, const char *root,
                         const xj_opts *o, xj_err *e);

/* Serialises doc as UTF-8. Returns a malloc'd buffer (*len bytes, NUL
 * terminated) or NULL with e set. */
char *xj_doc_to_text(xmlDocPtr doc, int pretty, int declaration, size_t *len,
                     xj_err *e);

#endif
