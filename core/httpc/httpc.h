/*
 * httpc: the HTTP client behind api->http_request, built on libcurl.
 *
 * Owns: turning a request object into libcurl exchanges (the redirects it
 * follows and the one oauth2 retry after a 401), applying a connection's
 * credentials, streaming request bodies from blobs and response bodies to
 * blobs, and the response object. The request and response shapes are
 * documented in ferry.h, beside http_request.
 * Must not touch: the engine's state. It reaches blobs, logs, errors and
 * cancellation only through the ferry_api table it is given, as a
 * component would; what the public table lacks (a blob's true size, the
 * connection's auth kind, the token service) the caller passes in
 * httpc_call. No event loop, no store.
 *
 * Threads: httpc_request blocks the calling thread; it may run on several
 * threads at once (each call has its own libcurl handle).
 */
#ifndef FERRY_CORE_HTTPC_H
#define FERRY_CORE_HTTPC_H

#include <ferry/ferry.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The credentials to apply: the step's connection, resolved by the caller.
 * All borrowed for the call. */
typedef struct httpc_auth {
    const char *connection; /* its name, for messages; NULL: no connection */
    const char *kind;       /* its type's auth ("basic", "api_key", "bearer",
                               "oauth2", "custom"); NULL: apply nothing */
    const json_t *fields;   /* the connection's fields */
    /* oauth2 only: the host's token service; NULL if the host has none.
     * Returns 0 with *access_token malloc'd, or a negative FERRY_E* code
     * with *err malloc'd or NULL (see flow_exec_opts.token). */
    int (*token)(void *ud, int force_refresh, char **access_token, char **err);
    void *token_ud;
} httpc_auth;

/* One call: the table and ctx of the calling action, and what the public
 * table does not offer. */
typedef struct httpc_call {
    const ferry_api *api; /* borrowed */
    ferry_ctx *ctx;       /* borrowed */
    httpc_auth auth;
    /* The grammar of durations and sizes in definitions ("30s", "1MiB");
     * return 0 with *out set, or -1. */
    int (*parse_duration_ms)(const char *s, uint64_t *out);
    int (*parse_size)(const char *s, uint64_t *out);
    /* The true size of a blob of the execution (ref borrowed), or -1 if
     * unknown; NULL: use the reference's "size". */
    int64_t (*blob_size)(ferry_ctx *ctx, const json_t *ref);
} httpc_call;

/* Initialises libcurl (and through it OpenSSL) once per process. Safe to
 * call any number of times, from any thread. Call it before forking
 * workers, so that each starts with the library initialised rather than
 * initialising it itself; httpc_request calls it too. */
void httpc_global_init(void);

/* Makes the request req (borrowed JSON object). Returns FERRY_OK with
 * *response a new ref whenever an HTTP response arrived, whatever its
 * status; else a negative FERRY_E* code after c->api->set_error. */
int httpc_request(const httpc_call *c, const json_t *req, json_t **response);

/* The client as a module (ferry-http.so, built from these sources and
 * module/module.c), for ferry-zygote, which does not link libcurl: it
 * exports one httpc_module named HTTPC_MODULE_SYMBOL. call_size guards
 * against a module from another build. */
#define HTTPC_MODULE_SYMBOL "ferry_httpc_module"
typedef struct httpc_module {
    size_t call_size; /* sizeof(httpc_call) */
    void (*global_init)(void);
    int (*request)(const httpc_call *c, const json_t *req, json_t **response);
} httpc_module;

/* ---- pure parts, exposed for tests ---- */

/* Parses a Retry-After value: delay-seconds ("120") or an HTTP-date (the
 * IMF-fixdate, RFC 850 and asctime forms), relative to now. Returns 0 with
 * *ms the delay in milliseconds (0 for a date in the past; capped at one
 * year), or -1 if value is neither. */
int httpc_parse_retry_after(const char *value, time_t now, int64_t *ms);

/* Adds one response header line (line, len: as received, with or without
 * its CRLF) to headers, an object of lower-case name to value: a repeated
 * name's values are joined with ", ", except set-cookie, whose value is an
 * array of every line's value; a line starting with a space or tab
 * continues the previous header (obsolete folding). Returns 1 for a status
 * line ("HTTP/..."; headers is emptied, *status set if status non-NULL), 2
 * for the empty line ending the headers, 0 for a header, -1 for a line
 * that is none of these (ignored). last: the name of the previous header,
 * kept between calls for folding (a buffer of at least 256 bytes, "" to
 * start). */
int httpc_header_line(json_t *headers, const char *line, size_t len, char *last,
                      long *status);

/* A URL safe to show: userinfo removed, and the values of query parameters
 * that commonly carry secrets (access_token, api_key, password, signature,
 * ... see redact.c) and of param (may be NULL) replaced with "REDACTED".
 * The fragment is dropped. Returns malloc'd text, or NULL out of memory. A
 * string that does not parse as a URL gives "(invalid URL)". */
char *httpc_redact_url(const char *url, const char *param);

/* Nonzero if URLs a and b have the same scheme, host and port (default
 * ports filled in); 0 if not or if either does not parse. */
int httpc_same_origin(const char *a, const char *b);

/* Percent-encodes len bytes of s: unreserved characters (RFC 3986) stay,
 * everything else becomes %XX; with plus, a space becomes '+' (forms).
 * Returns malloc'd text, or NULL out of memory. */
char *httpc_urlencode(const char *s, size_t len, int plus);

/* How the auto mode reads a body of this Content-Type (NULL: none). */
enum httpc_kind { HTTPC_KIND_BLOB, HTTPC_KIND_JSON, HTTPC_KIND_TEXT };
enum httpc_kind httpc_body_kind(const char *content_type);

#endif
