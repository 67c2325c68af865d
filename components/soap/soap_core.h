/*
 * The soap component's core, without the ferry API: WSDL 1.1 and XML
 * Schema loading into a model (wsdl.c, schema.c), the envelope builder
 * with its argument checks (envelope.c), response and fault reading with
 * the typed conversion (response.c), WS-Security UsernameToken (wss.c) and
 * safe parsing of untrusted XML (xmlsafe.c).
 *
 * The core never does I/O of its own: documents come through a fetch
 * callback, so that soap.c can route URLs through the host's HTTP helper
 * and the tests and the fuzz target can hand documents in directly.
 * Errors are reported in an sc_err with a FERRY_E* code and one line of
 * text that never contains a credential.
 */
#ifndef FERRY_SOAP_CORE_H
#define FERRY_SOAP_CORE_H

#include <ferry/ferry.h>
#include <jansson.h>
#include <libxml/tree.h>
#include <stddef.h>
#include <stdint.h>

#define SC_NS_SOAP11 "http://schemas.xmlsoap.org/soap/envelope/"
#define SC_NS_SOAP12 "http://www.w3.org/2003/05/soap-envelope"
#define SC_NS_WSDL "http://schemas.xmlsoap.org/wsdl/"
#define SC_NS_WSDL_SOAP11 "http://schemas.xmlsoap.org/wsdl/soap/"
#define SC_NS_WSDL_SOAP12 "http://schemas.xmlsoap.org/wsdl/soap12/"
#define SC_NS_XSD "http://www.w3.org/2001/XMLSchema"
#define SC_NS_XSI "http://www.w3.org/2001/XMLSchema-instance"
#define SC_NS_SOAPENC "http://schemas.xmlsoap.org/soap/encoding/"
#define SC_NS_WSSE                                                             \
    "http://docs.oasis-open.org/wss/2004/01/"                                  \
    "oasis-200401-wss-wssecurity-secext-1.0.xsd"
#define SC_NS_WSU                                                              \
    "http://docs.oasis-open.org/wss/2004/01/"                                  \
    "oasis-200401-wss-wssecurity-utility-1.0.xsd"

/* Bounds on what one WSDL may pull in. */
#define SC_MAX_IMPORT_DEPTH 8
#define SC_MAX_DOCUMENTS 64
#define SC_MAX_WSDL_BYTES (32u << 20)
/* Nesting of the JSON arguments and of converted responses. */
#define SC_MAX_DEPTH 64

typedef struct sc_err {
    int code; /* FERRY_E*, 0 while no error */
    int retryable;
    int recorded; /* the host already recorded this error (soap.c) */
    char msg[1024];
} sc_err;

/* Records the first error only; returns -1. */
int sc_fail(sc_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- memory: everything a model holds lives in one arena ---- */

typedef struct sc_arena {
    struct sc_chunk *head;
    size_t used, cap;
} sc_arena;

void *sc_alloc(sc_arena *a, size_t n); /* zeroed; NULL when out of memory */
char *sc_strdup(sc_arena *a, const char *s); /* NULL stays NULL */
void sc_arena_free(sc_arena *a);

/* ---- safe XML parsing (xmlsafe.c) ---- */

/*
 * Parses untrusted bytes: no network, no DTD loading, no entity
 * substitution, no XInclude, never XML_PARSE_HUGE, and a document with a
 * DOCTYPE is refused before its declarations are read. what names the
 * document in messages. Returns a document to xmlFreeDoc, or NULL with e
 * set (FERRY_EPARSE, or FERRY_EUNSUPPORTED for a DOCTYPE).
 */
xmlDocPtr sc_parse_xml(const char *data, size_t len, const char *what,
                       sc_err *e);

/* An attribute as a tree would hold it. */
typedef struct sc_sax_attr {
    const char *name;  /* local name; "p:name" when prefix p is undeclared */
    const char *ns;    /* namespace, or NULL */
    const char *value; /* NUL-terminated, references decoded */
} sc_sax_attr;

/*
 * What sc_parse_sax hands a reader, each with ud; a callback returning
 * nonzero stops the parse. Elements come with their name and namespace as
 * a tree of the same bytes would have them (an undeclared prefix stays in
 * the name, with no namespace), so that a reader of the events and a
 * reader of the tree see the same document. A name lasts until the parse
 * ends; namespaces and attributes only during the call.
 */
typedef struct sc_sax {
    int (*start)(void *ud, const char *name, const char *ns,
                 const sc_sax_attr *attrs, size_t nattrs);
    int (*end)(void *ud);
    int (*text)(void *ud, const char *s, size_t len);
    void *ud;
} sc_sax;

/*
 * Parses untrusted bytes exactly as sc_parse_xml does (the same settings,
 * refusals and messages) but hands elements and text to sax instead of
 * building a tree. Returns 0 for a well-formed document read to its end,
 * -1 with e set as sc_parse_xml would set it, or 1 when the events cannot
 * stand in for a tree: a callback stopped the parse, or the tree would
 * differ (libxml2's tree builder refuses a document nested deeper than
 * xmlParserMaxDepth, which its push parser leaves to it, and cuts a tree
 * at a text node longer than XML_MAX_TEXT_LENGTH, keeping the rest of the
 * document out with no error). Reading the tree (sc_parse_xml) is then the
 * way to the same result.
 */
int sc_parse_sax(const char *data, size_t len, const char *what,
                 const sc_sax *sax, sc_err *e);

/* Nonzero if s can be an element's or attribute's local name (an
 * NCName; non-ASCII characters are let through). */
int sc_ncname(const char *s);

/* Small helpers over libxml2 trees. */
int sc_is(const xmlNode *n, const char *ns, const char *local);
xmlNodePtr sc_first_elem(xmlNodePtr n);
xmlNodePtr sc_next_elem(xmlNodePtr n);
/* The attribute's value without a namespace, borrowed from the tree, or
 * NULL. */
const char *sc_prop(const xmlNode *n, const char *name);

/* ---- the model ---- */

enum sc_kind {
    SC_STRING,  /* any text */
    SC_INTEGER, /* xsd:integer and derived, within [lo, hi] */
    SC_NUMBER,  /* xsd:decimal, float, double */
    SC_BOOLEAN,
    SC_ANY /* xsd:anyType, anySimpleType, or an unknown type */
};

typedef struct sc_type sc_type;

typedef struct sc_elem {
    const char *name;
    const char *ns; /* the element's namespace; NULL when unqualified */
    long min, max;  /* max < 0: unbounded */
    int nillable;
    int choice;                /* > 0: member of choice group number choice */
    sc_type *type;             /* never NULL once loaded */
    const char *type_ref;      /* the type as written ("xsd:int"), or NULL */
    const struct sc_elem *ref; /* loading: the global element referred to */
} sc_elem;

typedef struct sc_attr {
    const char *name;
    const char *ns; /* NULL when unqualified */
    int required;
    sc_type *type;
} sc_attr;

typedef struct sc_choice {
    long min; /* 0: the whole choice is optional */
} sc_choice;

struct sc_type {
    const char *name; /* NULL for an anonymous type */
    const char *ns;
    const char *label; /* what describe and messages show: "xsd:int",
                          "Station", "anonymous" */
    int simple;        /* a simple type: kind, facets */
    enum sc_kind kind;
    int64_t lo, hi;           /* integer range (SC_INTEGER) */
    const char *const *enums; /* NULL-terminated, or NULL */
    /* complex types */
    sc_elem **elems;
    size_t nelems;
    sc_attr *attrs;
    size_t nattrs;
    sc_choice *choices; /* choices[i - 1] for choice group i */
    size_t nchoices;
    sc_type *text; /* simpleContent: the text's type; else NULL */
    int open;      /* xsd:any: undeclared children are accepted */
    int state;     /* loading: 0 new, 1 building, 2 built */
    size_t cap_elems, cap_attrs, cap_choices; /* loading */
    const void *pending; /* loading: its declaration, until built */
};

/* The input or output of a bound operation. */
typedef struct sc_body {
    /* The Body's one child for document/literal wrapped and rpc; NULL for
     * document/literal with the parts' elements directly in the Body. */
    sc_elem *wrapper;
    /* The arguments (or the result): the wrapper's content, or the parts'
     * elements as the fields of a made-up type. */
    sc_type *content;
    int wrapped; /* document/literal wrapped */
    int present; /* the operation has this message */
} sc_body;

typedef struct sc_fault {
    const char *name;
    sc_elem *elem; /* the detail's element, or NULL */
} sc_fault;

typedef struct sc_op {
    const char *name;
    const char *doc;    /* wsdl:documentation text, or NULL */
    int rpc;            /* style rpc, else document */
    int encoded;        /* use="encoded" on the input or output */
    const char *action; /* soapAction, or NULL */
    int action_required;
    sc_body in, out;
    sc_fault *faults;
    size_t nfaults;
} sc_op;

typedef struct sc_port {
    const char *name;
    const char *binding;
    const char *address; /* soap:address location, or NULL */
    int version;         /* 11 or 12 */
    int rpc;             /* the binding's default style */
    sc_op *ops;
    size_t nops;
} sc_port;

typedef struct sc_service {
    const char *name;
    sc_port *ports;
    size_t nports;
} sc_service;

typedef struct sc_wsdl {
    sc_arena arena;
    const char *tns;
    const char *name;
    sc_service *services;
    size_t nservices;
    const char **documents; /* locations loaded, the WSDL's first */
    size_t ndocuments;
    size_t bytes;
    char sha256[65];  /* of the first document, hex */
    json_t *warnings; /* what was left out or guessed, or NULL */
} sc_wsdl;

/*
 * Fetches one document. location is absolute: an http(s) URL, a file
 * path, or the main document's own name. On success sets *data (malloc'd,
 * the caller frees) and *len and returns 0; else returns -1 with e set.
 */
typedef int (*sc_fetch_cb)(void *ud, const char *location, char **data,
                           size_t *len, sc_err *e);

typedef struct sc_source {
    const char *data; /* the WSDL itself */
    size_t len;
    /* Where the WSDL came from: an http(s) URL, an absolute file path, or
     * NULL for text given inline. Relative imports resolve against it (or
     * against base when given). */
    const char *location;
    const char *base;
    sc_fetch_cb fetch; /* NULL: imports are refused */
    void *ud;
} sc_source;

/* Loads a WSDL 1.1 and what it imports. Returns a model to sc_wsdl_free,
 * or NULL with e set. */
sc_wsdl *sc_wsdl_load(const sc_source *src, sc_err *e);
void sc_wsdl_free(sc_wsdl *w);

/* The description soap.describe returns (new ref); with only, the
 * operations of that name alone. Bounded: past 50,000 fields written or
 * 32 levels of nesting, what is left is cut and "truncated" is true. */
json_t *sc_wsdl_describe(const sc_wsdl *w, const char *only);
/* The shape of a type's fields, as in the description (new ref). */
json_t *sc_describe_fields(const sc_type *t);

typedef struct sc_target {
    const sc_service *service;
    const sc_port *port;
    const sc_op *op;
} sc_target;

/*
 * Finds an operation by name, with service and port (each NULL for any)
 * and version (0 for any, 11 or 12). Several ports of one service: the
 * first in document order. Returns 0, or -1 with e set (unknown or
 * ambiguous, naming the choices).
 */
int sc_find_op(const sc_wsdl *w, const char *op, const char *service,
               const char *port, int version, sc_target *out, sc_err *e);

/* ---- envelopes (envelope.c) ---- */

typedef struct sc_buf {
    char *p;
    size_t len, cap;
    int oom;
} sc_buf;

void sc_buf_add(sc_buf *b, const char *s, size_t n);
void sc_buf_puts(sc_buf *b, const char *s);
void sc_buf_printf(sc_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s escaped for text (attr nonzero: for a double-quoted
 * attribute value). */
void sc_buf_escape(sc_buf *b, const char *s, size_t n, int attr);
void sc_buf_free(sc_buf *b);

typedef struct sc_wss {
    const char *username;
    const char *password;
    int digest;  /* PasswordDigest, else PasswordText */
    int nonce;   /* send a Nonce (always with digest) */
    int created; /* send wsu:Created (always with digest) */
    int must_understand;
    /* For tests: fixed values instead of random bytes and the clock. */
    const unsigned char *fixed_nonce;
    size_t fixed_nonce_len;
    const char *fixed_created;
} sc_wss;

typedef struct sc_envelope_opts {
    int version;             /* 11 or 12 */
    const sc_wss *wss;       /* NULL: no Security header */
    const char *soap_header; /* raw XML for the Header, or NULL */
} sc_envelope_opts;

/*
 * Checks args (borrowed) against op's input and writes the whole envelope
 * to out. Returns 0, or -1 with e set: FERRY_EINVAL naming the argument's
 * path ("arguments.location.lat") and the type expected; nothing is
 * written to out then.
 */
int sc_build_envelope(const sc_op *op, const json_t *args,
                      const sc_envelope_opts *o, sc_buf *out, sc_err *e);

/* ---- WS-Security (wss.c) ---- */

/* Base64 of SHA-1(nonce || created || password) into out (29 bytes with
 * the NUL). Returns 0 or -1. */
int sc_wss_digest(const unsigned char *nonce, size_t nonce_len,
                  const char *created, const char *password, char out[29]);
/* Appends the wsse:Security header block. Returns 0 or -1 with e set. */
int sc_wss_header(const sc_wss *w, const char *env_prefix, sc_buf *out,
                  sc_err *e);
size_t sc_base64_encode(const unsigned char *in, size_t n, char *out);
/* Returns the decoded length, or -1 when in is not base64. */
long sc_base64_decode(const char *in, unsigned char *out, size_t cap);
void sc_sha256_hex(const void *data, size_t len, char out[65]);

/* ---- responses (response.c) ---- */

typedef struct sc_fault_info {
    int version;      /* of the envelope: 11 or 12 */
    char *code;       /* the code as sent ("soap:Client"), malloc'd */
    char *subcode;    /* 1.2: the Subcode values joined with '/', or NULL */
    char *reason;     /* malloc'd, may be "" */
    char *actor;      /* faultactor / Node, or NULL */
    json_t *detail;   /* new ref: the detail as JSON, or NULL */
    const char *kind; /* "client", "server", "auth" or "other" (static) */
} sc_fault_info;

void sc_fault_clear(sc_fault_info *f);

typedef struct sc_response {
    int version;    /* of the envelope */
    json_t *result; /* the body as JSON (typed when op is given) */
    json_t *header; /* the Header's children as JSON, or NULL */
    int is_fault;
    sc_fault_info fault;
    int mismatch; /* the Body's element is not the one the WSDL declares */
    char mismatch_name[128];
} sc_response;

void sc_response_clear(sc_response *r);

/*
 * Reads a response envelope. op (may be NULL) types the result and a
 * fault's detail by the schema; without it the result is converted
 * generically. Returns 0 (a fault is a successful read, with is_fault),
 * or -1 with e set when data is not a SOAP envelope (FERRY_EPARSE or
 * FERRY_EPROTO).
 */
int sc_read_response(const char *data, size_t len, const sc_op *op,
                     sc_response *r, sc_err *e);
/*
 * The two ways sc_read_response reads, the same in what they return
 * (the tests and the fuzz target hold them to it): from the parser's
 * events, without a tree, which returns 1 (r cleared) for what it leaves
 * to the tree (a Fault, a second Body, and what sc_parse_sax leaves to
 * it); and from a tree, which reads everything.
 */
int sc_read_response_sax(const char *data, size_t len, const sc_op *op,
                         sc_response *r, sc_err *e);
/*
 * As sc_read_response, but the Body's content is not converted (result is
 * JSON null) and, unless it is a Fault, not read at all: what is checked
 * is the envelope up to the Body's first element (the version, a Header
 * converted as always, a Body, a Fault read whole). For a caller that
 * leaves the content to another reader of the same bytes.
 */
int sc_read_response_head(const char *data, size_t len, const sc_op *op,
                          sc_response *r, sc_err *e);
int sc_read_response_tree(const char *data, size_t len, const sc_op *op,
                          sc_response *r, sc_err *e);

/* Converts an element's content by type t (NULL: generically). */
json_t *sc_convert(xmlNodePtr n, const sc_type *t, int depth);

#endif
