/* What the parts of httpc share: the parsed request, the credentials to
 * apply, and the response being received. */
#ifndef FERRY_CORE_HTTPC_INTERNAL_H
#define FERRY_CORE_HTTPC_INTERNAL_H

#include "httpc.h"

#include <curl/curl.h>
#include <stdarg.h>

enum httpc_body {
    BODY_NONE,
    BODY_JSON,
    BODY_FORM,
    BODY_MULTIPART,
    BODY_TEXT,
    BODY_XML,
    BODY_BLOB
};

enum httpc_as { AS_AUTO, AS_JSON, AS_TEXT, AS_BLOB };

/* A request object, checked and with its defaults. Pointers into the
 * request JSON are borrowed from it; the rest is owned. */
typedef struct httpc_req {
    char method[32];
    char *url;             /* with the query appended, no fragment; owned */
    const json_t *headers; /* an object, or NULL */
    enum httpc_body body;
    char *data; /* json, form, text, xml: the bytes sent; owned */
    size_t len;
    const json_t *parts; /* multipart: the array */
    const json_t *blob;  /* blob: the reference */
    int64_t blob_size;   /* blob: its size, -1 unknown (sent chunked) */
    const char *ctype;   /* the body's default Content-Type */
    uint64_t timeout_ms, connect_timeout_ms;
    int follow;
    long max_redirects;
    int verify;
    const char *ca_file;
    enum httpc_as as;
    uint64_t max_inline;
} httpc_req;

enum httpc_cred_how {
    CRED_NONE,
    CRED_BASIC,
    CRED_BEARER,
    CRED_HEADER,
    CRED_QUERY
};

/* The credentials of the step's connection, ready to apply. */
typedef struct httpc_cred {
    enum httpc_cred_how how;
    int oauth2;       /* the bearer token came from the token service */
    const char *user; /* basic; borrowed from the fields */
    const char *pass; /* basic */
    char *token;      /* bearer; owned */
    const char *name; /* header or query parameter name; borrowed */
    char *value;      /* its value (header: with the prefix); owned */
} httpc_cred;

/* Records an error through api->set_error and returns code. The message
 * must hold no credentials. */
int httpc_fail(const httpc_call *c, int code, int retryable, const char *fmt,
               ...) FERRY_PRINTF(4, 5);

/* Checks req and fills r (zeroed first). Returns FERRY_OK or the code of
 * the recorded error. */
int httpc_req_parse(const httpc_call *c, const json_t *req, httpc_req *r);
void httpc_req_clear(httpc_req *r);

/* Resolves the connection into cred (force_refresh: for oauth2, ask the
 * token service for a new token). Returns FERRY_OK or a recorded error. */
int httpc_cred_get(const httpc_call *c, int force_refresh, httpc_cred *cred);
void httpc_cred_clear(httpc_cred *cred);

/* Nonzero if the JSON object headers has name (case-insensitive). */
int httpc_has_header(const json_t *headers, const char *name);

/* The response being received: headers of the latest response, and its
 * body in memory until it passes max_inline, then in a blob. */
typedef struct httpc_sink {
    const httpc_call *c;
    const httpc_req *r;
    json_t *headers;
    char last[256]; /* previous header name, for folded lines */
    long status;
    size_t header_bytes;
    int started; /* the first body byte of this response arrived */
    int discard; /* a redirect that will be followed: drop its body */
    char *buf;   /* in memory; owned */
    size_t len, cap;
    ferry_blob_writer *w; /* or in a blob */
    uint64_t total;
    int error; /* a FERRY_E* code that stopped the transfer, or 0 */
} httpc_sink;

void httpc_sink_init(httpc_sink *s, const httpc_call *c, const httpc_req *r);
/* Forgets the body received so far (a new exchange starts). */
void httpc_sink_reset(httpc_sink *s);
void httpc_sink_clear(httpc_sink *s);
size_t httpc_sink_write(char *data, size_t size, size_t n, void *ud);
size_t httpc_sink_header(char *data, size_t size, size_t n, void *ud);

/* Turns what s received into the response body (*body a new ref), as
 * r->as says. head: the request was HEAD. Returns FERRY_OK or a recorded
 * error. */
int httpc_sink_body(httpc_sink *s, int head, json_t **body);

#endif
