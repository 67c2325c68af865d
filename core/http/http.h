/*
 * http: the host's HTTP server (libh2o built with libuv), with routing,
 * bearer-token auth, JSON responses, and the Prometheus metrics registry.
 *
 * Owns: listening sockets, TLS, parsing requests, matching routes, writing
 * responses, graceful shutdown of connections, counting metrics and
 * rendering them. Must not touch the store, workers or definitions: route
 * handlers (given by the host) do that and answer with http_respond_*.
 *
 * Threads: everything here runs on the loop thread, including handlers and
 * every http_respond_* call.
 */
#ifndef FERRY_CORE_HTTP_H
#define FERRY_CORE_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct http_server http_server;
/* One request. Owned by the server; valid until it is answered with one
 * http_respond_* call (which may come after the handler returned, from a
 * later loop callback) or until the client goes away (see http_req_gone). */
typedef struct http_req http_req;

typedef void (*http_handler_cb)(void *ud, http_req *req);

typedef struct http_route {
    const char *method;  /* "GET", "POST", "DELETE", ... */
    const char *pattern; /* "/api/v1/executions/{id}": {name} is a segment */
    int auth;            /* nonzero: needs "Authorization: Bearer TOKEN" */
    http_handler_cb handler;
} http_route;

typedef struct http_config {
    const char *host;     /* listen address, e.g. "127.0.0.1" */
    int port;             /* 0 picks a free port (see http_server_port) */
    const char *tls_cert; /* PEM files; both NULL for plain HTTP */
    const char *tls_key;
    const char *const *api_tokens; /* accepted bearer tokens */
    size_t ntokens;
    size_t max_body;          /* bytes; 0 means 16 MiB */
    uint64_t idle_timeout_ms; /* keep-alive idle close; 0 means 10 s */
} http_config;

/* Starts listening. routes: borrowed, must outlive the server. ud is
 * passed to every handler. Returns NULL with *err malloc'd. */
http_server *http_server_start(uv_loop_t *loop, const http_config *cfg,
                               const http_route *routes, size_t nroutes,
                               void *ud, char **err);
/* The bound port (useful after port 0). */
int http_server_port(const http_server *s);
/* Stops accepting, lets open requests finish, closes connections; calls
 * done(ud) on the loop thread when everything is closed and the server can
 * be freed. */
void http_server_stop(http_server *s, void (*done)(void *ud), void *ud);
void http_server_free(http_server *s);

/* ---- the request (all returned strings borrowed, valid until answered) */
const char *http_req_method(http_req *r);
const char *http_req_path(http_req *r); /* without the query string */
/* A {name} captured from the route pattern, URL-decoded; NULL if none. */
const char *http_req_param(http_req *r, const char *name);
/* A query parameter, URL-decoded; NULL if absent. */
const char *http_req_query(http_req *r, const char *name);
/* A header by lower-case name; NULL if absent. */
const char *http_req_header(http_req *r, const char *lname);
/* Every header, by lower-case name, repeated ones joined as
 * http_req_header does. Returns a new ref (an empty object once gone). */
json_t *http_req_headers(http_req *r);
/* The query parameters, URL-decoded: name -> string, or an array of the
 * values of a repeated name. Returns a new ref. */
json_t *http_req_query_json(http_req *r);
/* The body (not NUL-terminated); *len 0 and NULL when there is none. */
const void *http_req_body(http_req *r, size_t *len);
/* Nonzero once the client has gone: answering is still allowed (it is a
 * no-op) and releases the request. */
int http_req_gone(http_req *r);

/* Adds a response header; call before answering. name: an HTTP token;
 * value: no control characters (no CR/LF). Headers the server manages
 * (Content-Type, Content-Length, Transfer-Encoding, Connection, Server,
 * Date, ...) are refused. Returns 0, or -1 when refused. */
int http_add_header(http_req *r, const char *name, const char *value);

/* ---- answering: exactly one call per request ---- */
/* body: stolen. Content-Type application/json. */
void http_respond_json(http_req *r, int status, json_t *body);
/* text: borrowed, copied. */
void http_respond_text(http_req *r, int status, const char *content_type,
                       const char *text, size_t len);
/* {"error": {"status": N, "message": "..."}} */
void http_respond_error(http_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- metrics (Prometheus text format 0.0.4) ---- */
typedef struct metrics metrics;
metrics *metrics_new(void);
void metrics_free(metrics *m);
/* Declares a metric once: type "counter", "gauge" or "histogram"; buckets
 * (ascending, seconds) for histograms. help/name borrowed static strings. */
void metrics_declare(metrics *m, const char *name, const char *type,
                     const char *help, const double *buckets, size_t nbuckets);
/* labels: "k1", "v1", "k2", "v2", ..., NULL. Values copied. */
void metrics_add(metrics *m, const char *name, double delta, ...);
void metrics_set(metrics *m, const char *name, double value, ...);
void metrics_observe(metrics *m, const char *name, double value, ...);
/* Renders everything; returns malloc'd text. */
char *metrics_render(const metrics *m, size_t *len);

#endif
