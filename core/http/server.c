/*
 * The HTTP server: libh2o 2.2 (libuv build) with one catch-all handler on
 * "/" that does the routing, the bearer-token check and the answering
 * itself. See docs/http-server.md for the behaviour a client sees.
 *
 * Lifetime of a request. h2o owns the h2o_req_t and disposes of it (clearing
 * its memory pool) when the response has been sent, or earlier when the
 * client goes away (HTTP/2: a reset stream or a closed connection). A
 * handler may answer later from another loop callback, so the http_req the
 * host holds is a separate malloc'd wrapper, never memory of the request.
 * A small link object is allocated on the request's pool with
 * h2o_mem_alloc_shared; its dispose callback runs when the pool is cleared
 * and, if the wrapper is still attached, marks it gone and forgets every
 * pointer into the request. Answering detaches the link first (so the
 * dispose that follows the response touches nothing), hands the response to
 * h2o and frees the wrapper; answering a gone request only frees the
 * wrapper. Strings handed out by the accessors live in the request's pool,
 * so they are valid until the request is answered or gone, whichever comes
 * first. Over HTTP/1.1 h2o stops reading while a request is being handled,
 * so a client that leaves is only noticed when the answer is written (the
 * write fails and h2o closes the connection); http_req_gone stays 0 there.
 */
#include "http/http.h"
#include "jtext/jtext.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <h2o.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_MAX_BODY (16u * 1024 * 1024)
/* The request headers' total size (names, values and separators). */
#define HTTP_MAX_HEADER_BYTES (32u * 1024)
#define DEFAULT_IDLE_MS 10000
#define LISTEN_BACKLOG 511
#define STOP_POLL_MS 20
#define MAX_PARAMS 16
#define TOKEN_DIGEST_LEN 32

typedef struct route_handler {
    h2o_handler_t super;
    http_server *srv;
} route_handler;

/* One accepted connection; counted so that stop knows when all are closed
 * (h2o 2.2 keeps no count of its own). */
typedef struct http_conn {
    uv_tcp_t tcp;
    http_server *srv;
} http_conn;

struct http_server {
    uv_loop_t *loop;
    const http_route *routes;
    size_t nroutes;
    void *ud;
    /* SHA-256 of each accepted token: comparing digests keeps the compare
     * constant-time without revealing the tokens' lengths. */
    unsigned char (*token_digests)[TOKEN_DIGEST_LEN];
    size_t ntokens;
    /* Fetched once: EVP_sha256() alone looks the algorithm up in the
     * provider tables on every digest, a third of a request's hashing. */
    EVP_MD *sha256;

    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    SSL_CTX *ssl_ctx;
    uv_tcp_t *listener; /* NULL once closed */
    int port;
    size_t nconns;

    int stopping, disposed, stopped;
    uv_timer_t stop_timer;
    void (*done)(void *ud);
    void *done_ud;
};

typedef struct kv {
    const char *k, *v;
} kv;

struct req_link {
    http_req *r; /* NULL once the request has been answered */
};

struct http_req {
    h2o_req_t *h2o;        /* NULL once gone */
    struct req_link *link; /* on h2o's pool; NULL once gone */
    http_server *srv;
    int gone;
    const char *method, *path; /* pool copies, NUL-terminated */
    kv *params;
    size_t nparams;
    kv *query;
    size_t nquery;
};

/* ---- small helpers ---- */

static char *xstrdup_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static char *xstrdup_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static char *pool_strndup(h2o_req_t *req, const char *s, size_t n) {
    char *p = h2o_mem_alloc_pool(&req->pool, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX (and '+' as a space when plus is set) into a NUL-terminated
 * pool string. NULL on a malformed escape or an encoded NUL, which could
 * not survive in a C string. */
static char *url_decode(h2o_req_t *req, const char *s, size_t n, int plus) {
    char *out = h2o_mem_alloc_pool(&req->pool, n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return NULL;
            if ((hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
                return NULL;
            char c = (char)(hi << 4 | lo);
            if (c == '\0')
                return NULL;
            *o++ = c;
            i += 2;
        } else if (plus && s[i] == '+') {
            *o++ = ' ';
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {507, "Insufficient Storage"},
    {508, "Loop Detected"},
    {511, "Network Authentication Required"},
};

static const char *reason_phrase(int status) {
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    switch (status / 100) {
    case 2:
        return "Success";
    case 3:
        return "Redirection";
    case 4:
        return "Client Error";
    default:
        return "Server Error";
    }
}

/* ---- answering ---- */

/* Called by h2o when the request's pool is cleared. */
static void on_link_dispose(void *p) {
    struct req_link *link = p;
    http_req *r = link->r;
    if (r == NULL)
        return;
    r->h2o = NULL;
    r->link = NULL;
    r->gone = 1;
    r->method = r->path = NULL;
    r->params = r->query = NULL;
    r->nparams = r->nquery = 0;
}

/* The one place a response leaves: frees the wrapper in every case.
 * ctype: borrowed (copied); NULL for no Content-Type. */
static void send_response(http_req *r, int status, const char *ctype,
                          const char *body, size_t len) {
    h2o_req_t *req = r->h2o;
    if (req == NULL) {
        free(r);
        return;
    }
    r->link->r = NULL;
    if (status < 200 || status > 599)
        status = 500;
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    if (status == 204 || status == 304) {
        /* No body and no Content-Length for these. */
        req->res.content_length = SIZE_MAX;
        len = 0;
        ctype = NULL;
    } else {
        req->res.content_length = len;
    }
    if (ctype != NULL) {
        h2o_iovec_t v = h2o_strdup(&req->pool, ctype, SIZE_MAX);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
                       NULL, v.base, v.len);
    }
    /* h2o decides keep-alive when a request arrives; a request that was
     * already in flight when stop began would otherwise leave its
     * connection idling until the idle timeout. */
    if (r->srv->stopping)
        req->http1_is_persistent = 0;
    free(r);
    h2o_send_inline(req, body, len); /* copies body */
}

int http_add_header(http_req *r, const char *name, const char *value) {
    static const char *const managed[] = {
        "content-type", "content-length", "transfer-encoding",
        "connection",   "keep-alive",     "upgrade",
        "server",       "date",           NULL};
    h2o_req_t *req = r ? r->h2o : NULL;
    if (req == NULL || name == NULL || value == NULL || !*name)
        return -1;
    size_t n = strlen(name);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        /* RFC 9110 token characters only. */
        if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~", c)))
            return -1;
    }
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return -1; /* no CR or LF: no header injection */
    char *lname = pool_strndup(req, name, n);
    h2o_strtolower(lname, n);
    for (int i = 0; managed[i]; i++)
        if (!strcmp(lname, managed[i]))
            return -1;
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, lname, n, 1, NULL,
                          v.base, v.len);
    return 0;
}

void http_respond_text(http_req *r, int status, const char *content_type,
                       const char *text, size_t len) {
    if (r == NULL)
        return;
    send_response(r, status,
                  content_type != NULL ? content_type
                                       : "text/plain; charset=utf-8",
                  text != NULL ? text : "", text != NULL ? len : 0);
}

void http_respond_json(http_req *r, int status, json_t *body) {
    if (r == NULL) {
        json_decref(body);
        return;
    }
    if (r->h2o == NULL) {
        json_decref(body);
        free(r);
        return;
    }
    char *text = NULL;
    if (body != NULL)
        text = jtext_dump(body, NULL);
    json_decref(body);
    if (text == NULL) {
        http_respond_error(r, 500, "the response could not be encoded");
        return;
    }
    send_response(r, status, "application/json", text, strlen(text));
    free(text);
}

/* A JSON string needs valid UTF-8; a message built from request data may
 * not be. Replace what does not encode rather than lose the message. */
static json_t *message_string(const char *msg) {
    json_t *s = json_string(msg);
    if (s != NULL)
        return s;
    char *copy = strdup(msg);
    if (copy == NULL)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    s = json_string(copy);
    free(copy);
    return s;
}

void http_respond_error(http_req *r, int status, const char *fmt, ...) {
    if (r == NULL)
        return;
    if (r->h2o == NULL) {
        free(r);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (status < 200 || status > 599)
        status = 500;

    json_t *m = message_string(msg != NULL ? msg : reason_phrase(status));
    free(msg);
    json_t *body = m == NULL ? NULL
                             : json_pack("{s:{s:i,s:o}}", "error", "status",
                                         status, "message", m);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        static const char fallback[] =
            "{\"error\":{\"status\":500,\"message\":\"out of memory\"}}";
        send_response(r, 500, "application/json", fallback,
                      sizeof(fallback) - 1);
        return;
    }
    send_response(r, status, "application/json", text, strlen(text));
    free(text);
}

/* ---- the request ---- */

const char *http_req_method(http_req *r) {
    return r->method != NULL ? r->method : "";
}

const char *http_req_path(http_req *r) {
    return r->path != NULL ? r->path : "";
}

const char *http_req_param(http_req *r, const char *name) {
    for (size_t i = 0; i < r->nparams; i++)
        if (strcmp(r->params[i].k, name) == 0)
            return r->params[i].v;
    return NULL;
}

const char *http_req_query(http_req *r, const char *name) {
    for (size_t i = 0; i < r->nquery; i++)
        if (strcmp(r->query[i].k, name) == 0)
            return r->query[i].v;
    return NULL;
}

json_t *http_req_headers(http_req *r) {
    json_t *o = json_object();
    h2o_req_t *req = r->h2o;
    for (size_t i = 0; o && req && i < req->headers.size; i++) {
        const h2o_iovec_t *name = req->headers.entries[i].name;
        char *key = pool_strndup(req, name->base, name->len);
        if (json_object_get(o, key))
            continue; /* joined below, once, by http_req_header */
        const char *v = http_req_header(r, key);
        if (v)
            json_object_set_new(o, key, json_string(v));
    }
    return o;
}

json_t *http_req_query_json(http_req *r) {
    json_t *o = json_object();
    for (size_t i = 0; o && i < r->nquery; i++) {
        json_t *v = json_string(r->query[i].v);
        json_t *have = json_object_get(o, r->query[i].k);
        if (!v)
            continue;
        if (!have) {
            json_object_set_new(o, r->query[i].k, v);
        } else if (json_is_array(have)) {
            json_array_append_new(have, v);
        } else {
            json_object_set_new(o, r->query[i].k, json_pack("[O, o]", have, v));
        }
    }
    return o;
}

const char *http_req_header(http_req *r, const char *lname) {
    h2o_req_t *req = r->h2o;
    if (req == NULL || lname == NULL)
        return NULL;
    size_t n = strlen(lname);
    char *name = pool_strndup(req, lname, n);
    h2o_strtolower(name, n);

    /* Repeated fields are joined as RFC 9110 allows; HTTP/2 clients split
     * cookies into separate fields, which join with "; ". */
    const char *sep = strcmp(name, "cookie") == 0 ? "; " : ", ";
    size_t total = 0, count = 0;
    ssize_t i = -1;
    while ((i = h2o_find_header_by_str(&req->headers, name, n, i)) != -1) {
        total += req->headers.entries[i].value.len;
        count++;
    }
    if (count == 0)
        return NULL;
    char *out = h2o_mem_alloc_pool(&req->pool, total + 2 * count + 1), *o = out;
    i = -1;
    while ((i = h2o_find_header_by_str(&req->headers, name, n, i)) != -1) {
        if (o != out) {
            memcpy(o, sep, 2);
            o += 2;
        }
        h2o_iovec_t v = req->headers.entries[i].value;
        memcpy(o, v.base, v.len);
        o += v.len;
    }
    *o = '\0';
    return out;
}

const void *http_req_body(http_req *r, size_t *len) {
    h2o_req_t *req = r->h2o;
    if (req == NULL || req->entity.base == NULL || req->entity.len == 0) {
        if (len != NULL)
            *len = 0;
        return NULL;
    }
    if (len != NULL)
        *len = req->entity.len;
    return req->entity.base;
}

int http_req_gone(http_req *r) {
    return r->gone;
}

/* ---- routing ---- */

typedef struct seg {
    const char *p;
    size_t n;
} seg;

/* Splits "/a/b" into "a", "b" ("/" is one empty segment). */
static size_t next_seg(const char *s, size_t n, size_t off, seg *out) {
    size_t end = off;
    while (end < n && s[end] != '/')
        end++;
    out->p = s + off;
    out->n = end - off;
    return end;
}

/* Compares a raw path segment, percent-decoded, with a literal. */
static int seg_equals(seg raw, const char *lit, size_t litlen) {
    size_t j = 0;
    for (size_t i = 0; i < raw.n; i++, j++) {
        char c = raw.p[i];
        if (c == '%' && i + 2 < raw.n) {
            int hi = hexval(raw.p[i + 1]), lo = hexval(raw.p[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = (char)(hi << 4 | lo);
                i += 2;
            }
        }
        if (j >= litlen || lit[j] != c)
            return 0;
    }
    return j == litlen;
}

/* Matches a raw path (no query) against a pattern; fills the captured raw
 * segments and their names (pointing into the pattern). */
static int match_route(const char *pat, const char *path, size_t plen,
                       seg *names, seg *vals, size_t *ncap) {
    size_t patlen = strlen(pat), po = 0, qo = 0, n = 0;
    if (patlen == 0 || pat[0] != '/' || plen == 0 || path[0] != '/')
        return 0;
    po = qo = 1;
    for (;;) {
        seg ps, qs;
        po = next_seg(pat, patlen, po, &ps);
        qo = next_seg(path, plen, qo, &qs);
        if (ps.n >= 2 && ps.p[0] == '{' && ps.p[ps.n - 1] == '}') {
            if (qs.n == 0 || n == MAX_PARAMS)
                return 0;
            names[n] = (seg){ps.p + 1, ps.n - 2};
            vals[n] = qs;
            n++;
        } else if (!seg_equals(qs, ps.p, ps.n)) {
            return 0;
        }
        int pend = po >= patlen, qend = qo >= plen;
        if (pend || qend) {
            if (pend != qend)
                return 0;
            break;
        }
        po++;
        qo++;
    }
    *ncap = n;
    return 1;
}

/* A "." or ".." segment, plain or encoded, has no business in an API path;
 * refusing it keeps it out of every parameter. */
static int has_dot_segment(const char *path, size_t plen) {
    size_t off = 1;
    while (off <= plen) {
        seg s;
        off = next_seg(path, plen, off, &s) + 1;
        if (seg_equals(s, ".", 1) || seg_equals(s, "..", 2))
            return 1;
    }
    return 0;
}

static int parse_query(http_req *r, h2o_req_t *req, const char *q, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (q[i] == '&')
            count++;
    r->query = h2o_mem_alloc_pool(&req->pool, (count + 1) * sizeof(kv));
    size_t off = 0;
    while (off < n) {
        size_t end = off;
        while (end < n && q[end] != '&')
            end++;
        if (end > off) {
            const char *eq = memchr(q + off, '=', end - off);
            size_t klen = eq != NULL ? (size_t)(eq - (q + off)) : end - off;
            const char *k = url_decode(req, q + off, klen, 1);
            const char *v =
                eq != NULL ? url_decode(req, eq + 1, q + end - eq - 1, 1) : "";
            if (k == NULL || v == NULL)
                return -1;
            r->query[r->nquery++] = (kv){k, v};
        }
        off = end + 1;
    }
    return 0;
}

static void add_header_str(h2o_req_t *req, const h2o_token_t *token,
                           const char *value) {
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, v.base, v.len);
}

static void respond_405(http_req *r, h2o_req_t *req, const http_server *s,
                        const char *path, size_t plen) {
    char allow[256] = "";
    size_t used = 0;
    int have_head = 0;
    const char *seen[64];
    size_t nseen = 0;
    seg names[MAX_PARAMS], vals[MAX_PARAMS];
    size_t ncap;
    for (size_t i = 0; i < s->nroutes; i++) {
        const http_route *rt = &s->routes[i];
        if (!match_route(rt->pattern, path, plen, names, vals, &ncap))
            continue;
        int dup = 0;
        for (size_t j = 0; j < nseen; j++)
            dup |= strcmp(seen[j], rt->method) == 0;
        if (dup || nseen == 64)
            continue;
        seen[nseen++] = rt->method;
        have_head |= strcmp(rt->method, "HEAD") == 0;
    }
    for (size_t j = 0; j < nseen; j++) {
        used += (size_t)snprintf(allow + used, sizeof(allow) - used, "%s%s",
                                 used ? ", " : "", seen[j]);
        if (used >= sizeof(allow))
            break;
        if (strcmp(seen[j], "GET") == 0 && !have_head)
            used +=
                (size_t)snprintf(allow + used, sizeof(allow) - used, ", HEAD");
        if (used >= sizeof(allow))
            break;
    }
    add_header_str(req, H2O_TOKEN_ALLOW, allow);
    http_respond_error(r, 405, "method %s is not allowed on %s (allowed: %s)",
                       r->method, r->path, allow);
}

enum { AUTH_OK, AUTH_NONE_CONFIGURED, AUTH_MISSING, AUTH_INVALID };

static int check_auth(const http_server *s, h2o_req_t *req) {
    if (s->ntokens == 0)
        return AUTH_NONE_CONFIGURED;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i == -1)
        return AUTH_MISSING;
    const char *v = req->headers.entries[i].value.base;
    size_t n = req->headers.entries[i].value.len;
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    /* The scheme name is case-insensitive (RFC 9110 11.1). */
    if (n < 7 || !h2o_lcstris(v, 6, H2O_STRLIT("bearer")) ||
        (v[6] != ' ' && v[6] != '\t'))
        return AUTH_MISSING;
    v += 7, n -= 7;
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0)
        return AUTH_MISSING;

    unsigned char d[TOKEN_DIGEST_LEN];
    unsigned int dlen = 0;
    if (EVP_Digest(v, n, d, &dlen, s->sha256, NULL) != 1 ||
        dlen != TOKEN_DIGEST_LEN)
        return AUTH_INVALID;
    int ok = 0;
    for (size_t t = 0; t < s->ntokens; t++)
        ok |= CRYPTO_memcmp(d, s->token_digests[t], TOKEN_DIGEST_LEN) == 0;
    return ok ? AUTH_OK : AUTH_INVALID;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req) {
    http_server *s = ((route_handler *)self)->srv;
    http_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        h2o_send_error_503(req, "Service Unavailable", "out of memory", 0);
        return 0;
    }
    r->h2o = req;
    r->srv = s;
    r->link =
        h2o_mem_alloc_shared(&req->pool, sizeof(*r->link), on_link_dispose);
    r->link->r = r;

    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    const char *path = req->path.base;
    r->method = pool_strndup(req, req->method.base, req->method.len);
    r->path = pool_strndup(req, path, plen);

    if (plen == 0 || path[0] != '/') {
        http_respond_error(r, 404, "no such resource");
        return 0;
    }
    /* Request headers past a bound are refused (431) before any handler
     * sees them: the parser accepts more than anyone needs. */
    size_t hbytes = 0;
    for (size_t i = 0; i < req->headers.size; i++)
        hbytes += req->headers.entries[i].name->len +
                  req->headers.entries[i].value.len + 4;
    if (hbytes > HTTP_MAX_HEADER_BYTES) {
        http_respond_error(r, 431,
                           "the request headers are %zu bytes, over the "
                           "limit of %u",
                           hbytes, (unsigned)HTTP_MAX_HEADER_BYTES);
        return 0;
    }
    if (has_dot_segment(path, plen)) {
        http_respond_error(r, 400,
                           "the path must not contain . or .. segments");
        return 0;
    }
    if (req->query_at != SIZE_MAX &&
        parse_query(r, req, path + plen + 1, req->path.len - plen - 1) != 0) {
        http_respond_error(r, 400,
                           "the query string has a malformed %%-escape");
        return 0;
    }

    /* The first route whose pattern and method match wins; HEAD is served
     * by a GET route unless a HEAD route exists. */
    const http_route *hit = NULL, *head_fallback = NULL;
    int path_seen = 0;
    seg names[MAX_PARAMS], vals[MAX_PARAMS];
    size_t ncap = 0;
    for (size_t i = 0; i < s->nroutes && hit == NULL; i++) {
        const http_route *rt = &s->routes[i];
        seg nn[MAX_PARAMS], vv[MAX_PARAMS];
        size_t nc;
        if (!match_route(rt->pattern, path, plen, nn, vv, &nc))
            continue;
        path_seen = 1;
        int same = h2o_memis(req->method.base, req->method.len, rt->method,
                             strlen(rt->method));
        int head_get =
            head_fallback == NULL &&
            h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")) &&
            strcmp(rt->method, "GET") == 0;
        if (!same && !head_get)
            continue;
        if (head_get && !same) {
            head_fallback = rt;
            memcpy(names, nn, nc * sizeof(seg));
            memcpy(vals, vv, nc * sizeof(seg));
            ncap = nc;
            continue;
        }
        hit = rt;
        memcpy(names, nn, nc * sizeof(seg));
        memcpy(vals, vv, nc * sizeof(seg));
        ncap = nc;
    }
    if (hit == NULL)
        hit = head_fallback;
    if (hit == NULL) {
        if (path_seen)
            respond_405(r, req, s, path, plen);
        else
            http_respond_error(r, 404, "no such resource: %s", r->path);
        return 0;
    }

    if (ncap > 0) {
        r->params = h2o_mem_alloc_pool(&req->pool, ncap * sizeof(kv));
        for (size_t i = 0; i < ncap; i++) {
            const char *k = pool_strndup(req, names[i].p, names[i].n);
            const char *v = url_decode(req, vals[i].p, vals[i].n, 0);
            if (v == NULL) {
                http_respond_error(r, 400,
                                   "the path has a malformed %%-escape");
                return 0;
            }
            r->params[r->nparams++] = (kv){k, v};
        }
    }

    if (hit->auth) {
        switch (check_auth(s, req)) {
        case AUTH_OK:
            break;
        case AUTH_NONE_CONFIGURED:
            add_header_str(req, H2O_TOKEN_WWW_AUTHENTICATE, "Bearer");
            http_respond_error(r, 401,
                               "no API token is configured on this server, "
                               "so this endpoint is closed; configure one "
                               "and send it as Authorization: Bearer TOKEN");
            return 0;
        case AUTH_MISSING:
            add_header_str(req, H2O_TOKEN_WWW_AUTHENTICATE, "Bearer");
            http_respond_error(r, 401,
                               "this endpoint needs an API token: send "
                               "Authorization: Bearer TOKEN");
            return 0;
        default:
            add_header_str(req, H2O_TOKEN_WWW_AUTHENTICATE,
                           "Bearer error=\"invalid_token\"");
            http_respond_error(r, 401, "the API token is not valid");
            return 0;
        }
    }

    hit->handler(s->ud, r);
    return 0;
}

/* ---- connections ---- */

static void on_conn_close(uv_handle_t *h) {
    http_conn *c = (http_conn *)h;
    c->srv->nconns--;
    free(c);
}

static void free_handle(uv_handle_t *h) {
    free(h);
}

static void on_accept(uv_stream_t *listener, int status) {
    http_server *s = listener->data;
    if (status != 0)
        return;
    http_conn *c = malloc(sizeof(*c));
    if (c == NULL)
        return;
    c->srv = s;
    if (uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, free_handle);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    h2o_socket_t *sock =
        h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_close);
    s->nconns++;
    h2o_accept(&s->accept_ctx, sock);
}

/* ---- start ---- */

static char *ssl_error(const char *what, const char *file) {
    char buf[256] = "unknown error";
    unsigned long e = ERR_peek_last_error();
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return file != NULL ? xstrdup_printf("%s %s: %s", what, file, buf)
                        : xstrdup_printf("%s: %s", what, buf);
}

static SSL_CTX *make_ssl_ctx(const char *cert, const char *key, char **err) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        *err = ssl_error("cannot create the TLS context", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        *err = ssl_error("cannot load the TLS certificate", cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        *err = ssl_error("cannot load the TLS key", key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        *err = ssl_error("the TLS key does not match the certificate", key);
        goto fail;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Binds and listens on a plain socket first, so that every failure is
 * reported before a libuv handle exists (a handle can only be closed
 * asynchronously). */
static int bind_listen(const char *host, int port, int *port_out, char **err) {
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0) {
        sl = sizeof(struct sockaddr_in);
    } else if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
        sl = sizeof(struct sockaddr_in6);
    } else {
        *err = xstrdup_printf("listen address \"%s\" is not an IPv4 or IPv6 "
                              "address",
                              host);
        return -1;
    }
    int fd =
        socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = xstrdup_printf("cannot create a socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        *err = xstrdup_printf(
            "cannot listen on %s%s%s:%d: %s",
            sl == sizeof(struct sockaddr_in6) ? "[" : "", host,
            sl == sizeof(struct sockaddr_in6) ? "]" : "", port, strerror(e));
        close(fd);
        return -1;
    }
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        *err = xstrdup_printf("getsockname: %s", strerror(errno));
        close(fd);
        return -1;
    }
    *port_out = ss.ss_family == AF_INET
                    ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                    : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

http_server *http_server_start(uv_loop_t *loop, const http_config *cfg,
                               const http_route *routes, size_t nroutes,
                               void *ud, char **err) {
    char *dummy = NULL;
    if (err == NULL)
        err = &dummy;
    *err = NULL;

    /* A client that goes away mid-write must cost an EPIPE, not the
     * process. */
    signal(SIGPIPE, SIG_IGN);

    if (cfg->port < 0 || cfg->port > 65535) {
        *err = xstrdup_printf("port %d is out of range", cfg->port);
        return NULL;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        *err = xstrdup_printf("TLS needs both a certificate and a key");
        return NULL;
    }
    for (size_t i = 0; i < nroutes; i++) {
        if (routes[i].method == NULL || routes[i].pattern == NULL ||
            routes[i].pattern[0] != '/' || routes[i].handler == NULL) {
            *err = xstrdup_printf("route %zu is incomplete (method, a "
                                  "pattern starting with / and a handler)",
                                  i);
            return NULL;
        }
    }

    http_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        *err = xstrdup_printf("out of memory");
        return NULL;
    }
    s->loop = loop;
    s->routes = routes;
    s->nroutes = nroutes;
    s->ud = ud;

    if (cfg->ntokens > 0) {
        s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (s->sha256 == NULL) {
            *err = ssl_error("cannot hash the API tokens", NULL);
            goto fail;
        }
        s->token_digests = calloc(cfg->ntokens, TOKEN_DIGEST_LEN);
        if (s->token_digests == NULL) {
            *err = xstrdup_printf("out of memory");
            goto fail;
        }
        for (size_t i = 0; i < cfg->ntokens; i++) {
            const char *t = cfg->api_tokens[i];
            unsigned int dlen = 0;
            if (t == NULL || *t == '\0') {
                *err = xstrdup_printf("API token %zu is empty", i);
                goto fail;
            }
            if (EVP_Digest(t, strlen(t), s->token_digests[s->ntokens], &dlen,
                           s->sha256, NULL) != 1) {
                *err = ssl_error("cannot hash the API tokens", NULL);
                goto fail;
            }
            s->ntokens++;
        }
    }

    if (cfg->tls_cert != NULL) {
        s->ssl_ctx = make_ssl_ctx(cfg->tls_cert, cfg->tls_key, err);
        if (s->ssl_ctx == NULL)
            goto fail;
    }

    int fd = bind_listen(cfg->host != NULL ? cfg->host : "127.0.0.1", cfg->port,
                         &s->port, err);
    if (fd < 0)
        goto fail;
    s->listener = malloc(sizeof(*s->listener));
    if (s->listener == NULL) {
        close(fd);
        *err = xstrdup_printf("out of memory");
        goto fail;
    }
    uv_tcp_init(loop, s->listener);
    s->listener->data = s;
    int rc = uv_tcp_open(s->listener, fd);
    if (rc != 0)
        close(fd);
    else
        rc = uv_listen((uv_stream_t *)s->listener, LISTEN_BACKLOG, on_accept);
    if (rc != 0) {
        /* Nearly impossible once listen(2) succeeded. The handle finishes
         * closing (and is freed) on the loop's next turn. */
        *err = xstrdup_printf("cannot listen: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)s->listener, free_handle);
        s->listener = NULL;
        goto fail;
    }

    uint64_t idle =
        cfg->idle_timeout_ms ? cfg->idle_timeout_ms : DEFAULT_IDLE_MS;
    h2o_config_init(&s->config);
    s->config.server_name = h2o_iovec_init(H2O_STRLIT("ferry"));
    s->config.max_request_entity_size =
        cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
    s->config.http1.req_timeout = idle;
    s->config.http2.idle_timeout = idle;
    s->config.handshake_timeout = idle;
    h2o_hostconf_t *host = h2o_config_register_host(
        &s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    route_handler *h = (route_handler *)h2o_create_handler(pc, sizeof(*h));
    h->super.on_req = on_req;
    h->srv = s;

    h2o_context_init(&s->ctx, loop, &s->config);
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;
    s->accept_ctx.ssl_ctx = s->ssl_ctx;
    return s;

fail:
    if (s->ssl_ctx != NULL)
        SSL_CTX_free(s->ssl_ctx);
    EVP_MD_free(s->sha256);
    free(s->token_digests);
    free(s);
    return NULL;
}

int http_server_port(const http_server *s) {
    return s->port;
}

/* ---- stop ---- */

static void on_listener_close(uv_handle_t *h) {
    http_server *s = h->data;
    s->listener = NULL;
    free(h);
}

/* h2o_context_dispose ends with uv_run(ctx->loop, UV_RUN_NOWAIT) so that
 * the timer handles it closes are finished before it returns. We are in a
 * callback of the host's loop, and uv_run must not be re-entered. Those
 * handles close on their own loop whatever ctx->loop says, so the call gets
 * an empty private loop to spin; the closes then finish in this iteration
 * of the host's loop, while the server (which holds them) is still alive:
 * done is only called on a later tick. */
static void dispose_context(http_server *s) {
    uv_loop_t scratch;
    if (uv_loop_init(&scratch) != 0) {
        /* No file descriptors left for a private loop: fall back to the
         * re-entrant spin h2o would do anyway. */
        h2o_context_dispose(&s->ctx);
        return;
    }
    s->ctx.loop = &scratch;
    h2o_context_dispose(&s->ctx);
    s->ctx.loop = s->loop;
    uv_loop_close(&scratch);
}

static void on_stop_timer_close(uv_handle_t *h) {
    http_server *s = h->data;
    s->stopped = 1;
    if (s->done != NULL)
        s->done(s->done_ud);
}

static void on_stop_tick(uv_timer_t *t) {
    http_server *s = t->data;
    if (s->disposed) {
        uv_close((uv_handle_t *)t, on_stop_timer_close);
        return;
    }
    if (s->listener != NULL || s->nconns > 0)
        return;
    /* The HTTP/2 GOAWAY re-send entry stays linked after the last
     * connection closed; dispose asserts that no timeout is pending. */
    if (h2o_timeout_is_linked(&s->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&s->ctx.http2._graceful_shutdown_timeout);
    dispose_context(s);
    h2o_config_dispose(&s->config);
    s->disposed = 1;
}

void http_server_stop(http_server *s, void (*done)(void *ud), void *ud) {
    if (s->stopping) /* a second stop changes nothing */
        return;
    s->stopping = 1;
    s->done = done;
    s->done_ud = ud;
    uv_close((uv_handle_t *)s->listener, on_listener_close);
    /* HTTP/2 connections get GOAWAY; HTTP/1.1 ones stop being kept alive
     * after their next answer, and idle ones close at the idle timeout. */
    h2o_context_request_shutdown(&s->ctx);
    uv_timer_init(s->loop, &s->stop_timer);
    s->stop_timer.data = s;
    uv_timer_start(&s->stop_timer, on_stop_tick, STOP_POLL_MS, STOP_POLL_MS);
}

void http_server_free(http_server *s) {
    if (s == NULL)
        return;
    if (!s->stopped) {
        /* Its handles are still registered with the loop; freeing now
         * would leave them pointing at freed memory. */
        fprintf(stderr, "http_server_free: the server was not stopped "
                        "(call http_server_stop and wait for done)\n");
        abort();
    }
    if (s->ssl_ctx != NULL)
        SSL_CTX_free(s->ssl_ctx);
    EVP_MD_free(s->sha256);
    free(s->token_digests);
    free(s);
}
