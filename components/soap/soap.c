/*
 * The soap component: soap.describe, soap.call and soap.request over the
 * host's HTTP helper (api->http_request), so the step's connection (basic,
 * bearer, api_key, oauth2) is applied to every request, WSDL fetches
 * included, and cancellation and blobs work as for any HTTP step. The
 * core (soap_core.h) does the XML; this file does inputs, the cache of
 * parsed WSDLs, the exchange, and what a fault or a status means for the
 * step. docs/soap.md is the reference.
 */
#include "soap_core.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const ferry_api *api;

#define EXCERPT 200
#define MAX_RESPONSE ((size_t)256 << 20)

/* ---- small things ---- */

static const char *str_in(const json_t *in, const char *key) {
    return json_string_value(json_object_get(in, key));
}

static int is_url(const char *s) {
    return !strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Removes "user:password@" from every URL in s, in place. */
static void scrub_userinfo(char *s) {
    char *p = s;
    while ((p = strstr(p, "://"))) {
        char *host = p + 3;
        size_t span = strcspn(host, "/?# \"'");
        char *at = memchr(host, '@', span);
        if (at)
            memmove(host, at + 1, strlen(at + 1) + 1);
        p = host;
    }
}

static int fail(ferry_ctx *ctx, int code, int retryable, const char *fmt, ...)
    FERRY_PRINTF(4, 5);
static int fail(ferry_ctx *ctx, int code, int retryable, const char *fmt, ...) {
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    scrub_userinfo(msg);
    return api->set_error(ctx, code, retryable, "%s", msg);
}

static int fail_err(ferry_ctx *ctx, const sc_err *e, const char *prefix) {
    if (e->recorded)
        return e->code; /* the HTTP helper said it already */
    return fail(ctx, e->code ? e->code : FERRY_EFAILED, e->retryable, "%s%s",
                prefix ? prefix : "", e->msg);
}

static const char *reason_phrase(long status) {
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status >= 500 ? "Server Error" : "Client Error";
    }
}

/* A status without a SOAP answer: the code and whether to try again. */
static int status_code(long status, int *retryable) {
    *retryable = 0;
    switch (status) {
    case 401:
        return FERRY_EAUTH;
    case 403:
        return FERRY_EPERM;
    case 404:
    case 410:
        return FERRY_ENOTFOUND;
    case 408:
    case 504:
        *retryable = 1;
        return FERRY_ETIMEOUT;
    case 413:
        return FERRY_ETOOBIG;
    case 415:
        return FERRY_EPROTO;
    case 429:
        *retryable = 1;
        return FERRY_ERATELIMIT;
    case 502:
    case 503:
        *retryable = 1;
        return FERRY_EUNAVAIL;
    default:
        *retryable = status >= 500;
        return FERRY_EREMOTE;
    }
}

/* Up to EXCERPT characters of a body, on one line. */
static void excerpt(const char *data, size_t len, char *out, size_t n) {
    size_t o = 0;
    int space = 0;
    for (size_t i = 0; i < len && o + 4 < n; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            space = o > 0;
            continue;
        }
        if (space && o + 5 < n)
            out[o++] = ' ';
        space = 0;
        out[o++] = c < 0x20 ? ' ' : (char)c;
        if (o >= EXCERPT) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
    }
    out[o] = 0;
}

/* The request fields soap steps pass to the helper as they are. */
static void copy_transport(json_t *req, const json_t *in) {
    static const char *const keys[] = {"timeout", "connect_timeout",
                                       "verify_tls", "ca_file", NULL};
    for (int i = 0; keys[i]; i++) {
        json_t *v = json_object_get(in, keys[i]);
        if (v && !json_is_null(v))
            json_object_set(req, keys[i], v);
    }
}

/* ---- fetching documents ---- */

typedef struct fetcher {
    ferry_ctx *ctx;
    const json_t *in;
} fetcher;

static int read_file(const char *path, char **data, size_t *len, sc_err *e) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sc_fail(e, errno == ENOENT ? FERRY_ENOTFOUND : FERRY_EIO,
                       "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return sc_fail(e, FERRY_EIO, "'%s' is not a regular file", path);
    }
    if ((uint64_t)sb.st_size > SC_MAX_WSDL_BYTES) {
        close(fd);
        return sc_fail(e, FERRY_ETOOBIG, "'%s' is larger than %u MiB", path,
                       SC_MAX_WSDL_BYTES >> 20);
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        close(fd);
        return sc_fail(e, FERRY_ENOMEM, "out of memory");
    }
    size_t n = 0;
    while (n < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)sb.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = n;
    return 0;
}

static int fetch_url(fetcher *f, const char *url, char **data, size_t *len,
                     sc_err *e) {
    json_t *req =
        json_pack("{s:s, s:s, s:s}", "method", "GET", "url", url, "as", "blob");
    copy_transport(req, f->in);
    json_t *resp = NULL;
    int rc = api->http_request(f->ctx, req, &resp);
    json_decref(req);
    if (rc) {
        e->code = rc;
        e->recorded = 1;
        return -1;
    }
    long status = (long)json_integer_value(json_object_get(resp, "status"));
    const json_t *body = json_object_get(resp, "body");
    const void *p = NULL;
    size_t n = 0;
    if (json_is_object(body) && api->blob_data(f->ctx, body, &p, &n))
        p = NULL;
    if (status < 200 || status > 299) {
        char ex[EXCERPT + 8] = "";
        if (p)
            excerpt(p, n, ex, sizeof(ex));
        int retry;
        int code = status_code(status, &retry);
        e->retryable = retry;
        sc_fail(e, code, "fetching %s: HTTP %ld %s%s%s", url, status,
                reason_phrase(status), *ex ? ": " : "", ex);
        json_decref(resp);
        return -1;
    }
    if (!p || !n) {
        json_decref(resp);
        return sc_fail(e, FERRY_EPROTO, "fetching %s: an empty answer", url);
    }
    if (n > SC_MAX_WSDL_BYTES) {
        json_decref(resp);
        return sc_fail(e, FERRY_ETOOBIG, "%s is larger than %u MiB", url,
                       SC_MAX_WSDL_BYTES >> 20);
    }
    *data = malloc(n);
    if (!*data) {
        json_decref(resp);
        return sc_fail(e, FERRY_ENOMEM, "out of memory");
    }
    memcpy(*data, p, n);
    *len = n;
    json_decref(resp);
    return 0;
}

static int fetch_cb(void *ud, const char *location, char **data, size_t *len,
                    sc_err *e) {
    fetcher *f = ud;
    if (api->cancelled(f->ctx))
        return sc_fail(e, FERRY_ECANCELLED, "cancelled");
    if (is_url(location))
        return fetch_url(f, location, data, len, e);
    return read_file(location, data, len, e);
}

/* ---- the cache of parsed WSDLs ----
 *
 * Per process: a worker runs one execution, so a describe and the calls
 * after it share one parse. Keys: "url:" and the URL (not fetched again
 * within the process), "file:" and the path with its identity (device,
 * inode, size, mtime: an edited file is parsed again), "text:" and the
 * SHA-256 of inline text or a blob's bytes. */

#define CACHE_SLOTS 16

static struct cache_entry {
    char *key;
    sc_wsdl *w;
    uint64_t used;
} cache[CACHE_SLOTS];
static uint64_t cache_clock;

static sc_wsdl *cache_get(const char *key) {
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (cache[i].key && !strcmp(cache[i].key, key)) {
            cache[i].used = ++cache_clock;
            return cache[i].w;
        }
    return NULL;
}

static void cache_put(const char *key, sc_wsdl *w) {
    int slot = 0;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (!cache[i].key) {
            slot = i;
            break;
        }
        if (cache[i].used < cache[slot].used)
            slot = i;
    }
    free(cache[slot].key);
    sc_wsdl_free(cache[slot].w);
    cache[slot].key = strdup(key);
    cache[slot].w = cache[slot].key ? w : NULL;
    cache[slot].used = ++cache_clock;
    if (!cache[slot].key)
        sc_wsdl_free(w);
}

/* The WSDL a step names: from the cache, or loaded (and cached). Sets *out
 * to a model the cache owns (valid until the action returns) and returns
 * 0, or returns the code of the error it recorded. */
static int get_wsdl(ferry_ctx *ctx, const json_t *in, const sc_wsdl **out) {
    const json_t *v = json_object_get(in, "wsdl");
    const char *base = str_in(in, "base_url");
    if (base && !is_url(base) && base[0] != '/') {
        return fail(ctx, FERRY_EINVAL, 0,
                    "base_url must be an http(s) URL or an absolute path");
    }
    fetcher f = {ctx, in};
    sc_source src = {.base = base, .fetch = fetch_cb, .ud = &f};
    char key[PATH_MAX + 300];
    char where[PATH_MAX + 16];
    char *owned = NULL;
    char real[PATH_MAX];
    sc_err e = {0};

    if (json_is_object(v) && json_is_string(json_object_get(v, "$blob"))) {
        const void *p;
        size_t n;
        if (api->blob_data(ctx, v, &p, &n)) {
            return fail(ctx, FERRY_EINVAL, 0, "wsdl: the blob is not readable");
        }
        src.data = p;
        src.len = n;
        char sha[65];
        sc_sha256_hex(p, n, sha);
        snprintf(key, sizeof(key), "text:%s|%s", sha, base ? base : "");
        snprintf(where, sizeof(where), "from a blob");
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        const char *t = s;
        while (*t == ' ' || *t == '\n' || *t == '\r' || *t == '\t')
            t++;
        if (*t == '<' || !strncmp(t, "\xef\xbb\xbf<", 4)) {
            src.data = s;
            src.len = json_string_length(v);
            char sha[65];
            sc_sha256_hex(src.data, src.len, sha);
            snprintf(key, sizeof(key), "text:%s|%s", sha, base ? base : "");
            snprintf(where, sizeof(where), "given as text");
        } else if (is_url(t)) {
            snprintf(key, sizeof(key), "url:%s", t);
            snprintf(where, sizeof(where), "%s", t);
            src.location = t;
        } else {
            const char *path = !strncmp(t, "file://", 7) ? t + 7 : t;
            struct stat sb;
            if (!*path || !realpath(path, real) || stat(real, &sb)) {
                int err = errno ? errno : EINVAL;
                return fail(ctx, err == ENOENT ? FERRY_ENOTFOUND : FERRY_EINVAL,
                            0,
                            "wsdl: '%s' is not a URL, the text of a WSDL, or "
                            "a file that can be read (%s)",
                            t, strerror(err));
            }
            snprintf(key, sizeof(key), "file:%s|%llu:%llu:%lld:%lld.%ld|%s",
                     real, (unsigned long long)sb.st_dev,
                     (unsigned long long)sb.st_ino, (long long)sb.st_size,
                     (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec,
                     base ? base : "");
            snprintf(where, sizeof(where), "%s", real);
            src.location = real;
        }
    } else {
        return fail(ctx, FERRY_EINVAL, 0,
                    "wsdl: expected a URL, a file path, the WSDL's text, or "
                    "a blob");
    }
    sc_wsdl *w = cache_get(key);
    if (w) {
        api->log(ctx, FERRY_LOG_DEBUG,
                 json_pack("{s:s, s:b}", "wsdl", w->sha256, "cached", 1),
                 "WSDL %s: parsed earlier in this process, not again", where);
        *out = w;
        return 0;
    }
    double t0 = now_ms();
    if (src.location && is_url(src.location)) {
        size_t n = 0;
        if (fetch_url(&f, src.location, &owned, &n, &e))
            goto fail;
        src.data = owned;
        src.len = n;
    } else if (src.location) {
        size_t n = 0;
        if (read_file(src.location, &owned, &n, &e))
            goto fail;
        src.data = owned;
        src.len = n;
    }
    w = sc_wsdl_load(&src, &e);
    free(owned);
    owned = NULL;
    if (!w)
        goto fail;
    api->log(ctx, FERRY_LOG_DEBUG,
             json_pack("{s:s, s:b, s:I, s:I}", "wsdl", w->sha256, "cached", 0,
                       "documents", (json_int_t)w->ndocuments, "bytes",
                       (json_int_t)w->bytes),
             "WSDL %s: parsed %zu document%s, %zu bytes, in %.1f ms", where,
             w->ndocuments, w->ndocuments == 1 ? "" : "s", w->bytes,
             now_ms() - t0);
    if (w->warnings)
        api->log(ctx, FERRY_LOG_WARN,
                 json_pack("{s:O}", "warnings", w->warnings),
                 "WSDL %s: %zu problem%s worked around (see warnings)", where,
                 json_array_size(w->warnings),
                 json_array_size(w->warnings) == 1 ? "" : "s");
    cache_put(key, w);
    *out = cache_get(key);
    if (!*out)
        return fail(ctx, FERRY_ENOMEM, 0, "out of memory");
    return 0;
fail:
    free(owned);
    if (e.code == FERRY_ECANCELLED && !e.recorded)
        return api->set_error(ctx, FERRY_ECANCELLED, 0, "cancelled");
    return fail_err(ctx, &e, "loading the WSDL: ");
}

/* ---- soap.describe ---- */

static int describe_run(ferry_ctx *ctx, const json_t *in) {
    const sc_wsdl *w;
    int rc = get_wsdl(ctx, in, &w);
    if (rc)
        return rc;
    const char *only = str_in(in, "operation");
    json_t *d = sc_wsdl_describe(w, only);
    /* Locations shown without credentials. */
    size_t i;
    json_t *loc;
    json_array_foreach(json_object_get(d, "documents"), i, loc) {
        char *s = strdup(json_string_value(loc));
        if (s) {
            scrub_userinfo(s);
            json_array_set_new(json_object_get(d, "documents"), i,
                               json_string(s));
            free(s);
        }
    }
    return api->set_output(ctx, d);
}

/* ---- WS-Security ---- */

static int wss_from(ferry_ctx *ctx, const json_t *o, const char *what, int code,
                    sc_wss *w) {
    memset(w, 0, sizeof(*w));
    w->username = str_in(o, "username");
    w->password = str_in(o, "password");
    if (!w->username || !w->password)
        return fail(ctx, code, 0,
                    "%s: needs a username and a password (strings)", what);
    const json_t *pt = json_object_get(o, "password_type");
    const char *t = json_is_null(pt) ? NULL : json_string_value(pt);
    if (pt && !json_is_null(pt) && !t)
        return fail(ctx, code, 0, "%s: password_type must be a string", what);
    if (!t || !strcasecmp(t, "digest") || !strcmp(t, "PasswordDigest"))
        w->digest = 1;
    else if (!strcasecmp(t, "text") || !strcmp(t, "PasswordText"))
        w->digest = 0;
    else
        return fail(ctx, code, 0,
                    "%s: password_type must be \"digest\" or \"text\", not "
                    "\"%s\"",
                    what, t);
    static const char *const flags[] = {"nonce", "created", "must_understand",
                                        NULL};
    int *dst[] = {&w->nonce, &w->created, &w->must_understand};
    for (int i = 0; flags[i]; i++) {
        const json_t *b = json_object_get(o, flags[i]);
        if (b && !json_is_null(b) && !json_is_boolean(b))
            return fail(ctx, code, 0, "%s: %s must be a boolean", what,
                        flags[i]);
        *dst[i] = !b || json_is_null(b) || json_is_true(b);
    }
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)o, k, x) {
        if (strcmp(k, "username") && strcmp(k, "password") &&
            strcmp(k, "password_type") && strcmp(k, "nonce") &&
            strcmp(k, "created") && strcmp(k, "must_understand"))
            return fail(ctx, code, 0,
                        "%s: unknown field '%s' (username, password, "
                        "password_type, nonce, created, must_understand)",
                        what, k);
    }
    return 0;
}

/* The step's WS-Security settings: the wss input, else a soap.wss
 * connection. Returns 1 with *w set, 0 for none, or a negative code. */
static int get_wss(ferry_ctx *ctx, const json_t *in, sc_wss *w) {
    const json_t *o = json_object_get(in, "wss");
    if (o && !json_is_null(o)) {
        if (!json_is_object(o))
            return fail(ctx, FERRY_EINVAL, 0, "wss: expected an object");
        int rc = wss_from(ctx, o, "wss", FERRY_EINVAL, w);
        return rc ? rc : 1;
    }
    const json_t *conn = api->connection(ctx);
    const char *type = str_in(conn, "type");
    if (!type || strcmp(type, "soap.wss"))
        return 0;
    char what[200];
    snprintf(what, sizeof(what), "connection '%s' (soap.wss)",
             str_in(conn, "name") ? str_in(conn, "name") : "?");
    int rc =
        wss_from(ctx, json_object_get(conn, "fields"), what, FERRY_ECONFIG, w);
    return rc ? rc : 1;
}

/* ---- the exchange ---- */

static int has_header(const json_t *own, const char *name) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)own, k, v) {
        if (!strcasecmp(k, name))
            return 1;
    }
    return 0;
}

/* The headers for version and action, then the step's own (a name given
 * there, in any case, replaces ours). */
static json_t *request_headers(int version, const char *action,
                               const json_t *own) {
    json_t *h = json_object();
    char buf[2048];
    char act[1024] = "";
    if (action) {
        /* a quoted-string: no quote or control character inside */
        size_t o = 0;
        for (const char *p = action; *p && o + 4 < sizeof(act); p++) {
            if (*p == '"') {
                memcpy(act + o, "%22", 3);
                o += 3;
            } else if ((unsigned char)*p >= 0x20 && *p != 0x7f) {
                act[o++] = *p;
            }
        }
        act[o] = 0;
    }
    if (version == 12) {
        if (action && *action)
            snprintf(buf, sizeof(buf),
                     "application/soap+xml; charset=utf-8; action=\"%s\"", act);
        else
            snprintf(buf, sizeof(buf), "application/soap+xml; charset=utf-8");
        if (!has_header(own, "Content-Type"))
            json_object_set_new(h, "Content-Type", json_string(buf));
    } else {
        if (!has_header(own, "Content-Type"))
            json_object_set_new(h, "Content-Type",
                                json_string("text/xml; charset=utf-8"));
        snprintf(buf, sizeof(buf), "\"%s\"", act);
        if (!has_header(own, "SOAPAction"))
            json_object_set_new(h, "SOAPAction", json_string(buf));
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)own, k, v) {
        json_object_set(h, k, v);
    }
    return h;
}

typedef struct exchange {
    long status;
    json_t *resp; /* the helper's response */
    json_t *raw;  /* borrowed from resp: the body's blob reference */
    const char *data;
    size_t len;
} exchange;

static int send_envelope(ferry_ctx *ctx, const json_t *in, const char *url,
                         int version, const char *action, const char *env,
                         size_t env_len, exchange *x) {
    memset(x, 0, sizeof(*x));
    const json_t *own = json_object_get(in, "headers");
    json_t *h =
        request_headers(version, action, json_is_object(own) ? own : NULL);
    json_t *req =
        json_pack("{s:s, s:s, s:o, s:s%, s:s}", "method", "POST", "url", url,
                  "headers", h, "xml", env, env_len, "as", "blob");
    if (!req)
        return fail(ctx, FERRY_ENOMEM, 0, "out of memory");
    copy_transport(req, in);
    int rc = api->http_request(ctx, req, &x->resp);
    json_decref(req);
    if (rc)
        return rc;
    x->status = (long)json_integer_value(json_object_get(x->resp, "status"));
    x->raw = json_object_get(x->resp, "body");
    const void *p = NULL;
    size_t n = 0;
    if (json_is_object(x->raw) && api->blob_data(ctx, x->raw, &p, &n) == 0) {
        x->data = p;
        x->len = n;
    }
    if (x->len > MAX_RESPONSE)
        return fail(ctx, FERRY_ETOOBIG, 0,
                    "the response is larger than %zu MiB", MAX_RESPONSE >> 20);
    return 0;
}

static void exchange_clear(exchange *x) {
    json_decref(x->resp);
    memset(x, 0, sizeof(*x));
}

static int fault_error(ferry_ctx *ctx, const char *opname, long status,
                       const sc_fault_info *f) {
    char *detail = f->detail
                       ? json_dumps(f->detail, JSON_COMPACT | JSON_ENCODE_ANY)
                       : NULL;
    if (detail && strlen(detail) > 2000)
        strcpy(detail + 1990, "...");
    json_t *fields =
        json_pack("{s:{s:s, s:s?, s:s, s:s?, s:O?, s:s, s:i, s:I}}", "fault",
                  "code", f->code ? f->code : "", "subcode", f->subcode,
                  "reason", f->reason ? f->reason : "", "actor", f->actor,
                  "detail", f->detail, "kind", f->kind, "soap_version",
                  f->version, "http_status", (json_int_t)status);
    api->log(ctx, FERRY_LOG_WARN, fields, "SOAP fault %s from %s (HTTP %ld)",
             f->code ? f->code : "", opname, status);
    int code = FERRY_EREMOTE, retry = 0;
    if (!strcmp(f->kind, "auth") || status == 401)
        code = FERRY_EAUTH;
    else if (!strcmp(f->kind, "server"))
        retry = 1;
    int rc = fail(ctx, code, retry,
                  "SOAP fault from %s (HTTP %ld, SOAP %s): code %s%s%s%s: "
                  "%s%s%s",
                  opname, status, f->version == 12 ? "1.2" : "1.1",
                  f->code && *f->code ? f->code : "(none)",
                  f->subcode ? " (subcode " : "", f->subcode ? f->subcode : "",
                  f->subcode ? ")" : "",
                  f->reason && *f->reason ? f->reason : "(no reason given)",
                  detail ? "; detail: " : "", detail ? detail : "");
    free(detail);
    return rc;
}

static int no_envelope(ferry_ctx *ctx, const char *what, const exchange *x,
                       const sc_err *e) {
    char ex[EXCERPT + 8] = "";
    if (x->data)
        excerpt(x->data, x->len, ex, sizeof(ex));
    if (x->status < 200 || x->status > 299) {
        int retry;
        int code = status_code(x->status, &retry);
        return fail(ctx, code, retry, "%s: HTTP %ld %s%s%s%s", what, x->status,
                    reason_phrase(x->status),
                    x->status == 415 ? " (is the port's SOAP version right?)"
                                     : "",
                    *ex ? ": " : "", ex);
    }
    return fail(ctx, e->code ? e->code : FERRY_EPROTO, 0, "%s: %s", what,
                e->msg);
}

/* ---- soap.call ---- */

/* The "convert" input: 1 (the default), 0, or -1 with the step failed. */
static int convert_in(ferry_ctx *ctx, const json_t *in) {
    const json_t *c = json_object_get(in, "convert");
    if (!c || json_is_null(c))
        return 1;
    if (!json_is_boolean(c)) {
        fail(ctx, FERRY_EINVAL, 0, "convert must be a boolean");
        return -1;
    }
    return json_is_true(c);
}

/* Reads a response whole (convert) or only up to its Body's content. */
static int read_response(const exchange *x, const sc_op *op, int convert,
                         sc_response *r, sc_err *e) {
    return convert ? sc_read_response(x->data, x->len, op, r, e)
                   : sc_read_response_head(x->data, x->len, op, r, e);
}

static int call_run(ferry_ctx *ctx, const json_t *in) {
    if (!FERRY_API_HAS(api, http_request))
        return fail(ctx, FERRY_EUNSUPPORTED, 0,
                    "this host has no HTTP helper (ABI 1.1 needed)");
    const char *opname = str_in(in, "operation");
    const char *ver = str_in(in, "soap_version");
    int version = 0;
    if (ver && !strcmp(ver, "1.1"))
        version = 11;
    else if (ver && !strcmp(ver, "1.2"))
        version = 12;
    else if (ver)
        return fail(ctx, FERRY_EINVAL, 0,
                    "soap_version must be \"1.1\" or \"1.2\", not \"%s\"", ver);
    const json_t *args = json_object_get(in, "arguments");
    if (args && !json_is_object(args) && !json_is_null(args))
        return fail(ctx, FERRY_EINVAL, 0, "arguments: expected an object");
    const char *soap_header = str_in(in, "soap_header");
    int convert = convert_in(ctx, in);
    if (convert < 0)
        return FERRY_EINVAL;

    const sc_wsdl *w;
    int rc = get_wsdl(ctx, in, &w);
    if (rc)
        return rc;
    sc_err e = {0};
    sc_target tg;
    if (sc_find_op(w, opname, str_in(in, "service"), str_in(in, "port"),
                   version, &tg, &e))
        return fail_err(ctx, &e, "");
    const sc_op *op = tg.op;
    const char *url = str_in(in, "endpoint");
    if (!url)
        url = tg.port->address;
    if (!url || !is_url(url))
        return fail(ctx, FERRY_EINVAL, 0,
                    "port '%s' has %s address; give endpoint (an http(s) URL)",
                    tg.port->name ? tg.port->name : "?",
                    url ? "no http(s)" : "no");
    sc_wss wss;
    int has_wss = get_wss(ctx, in, &wss);
    if (has_wss < 0)
        return has_wss;
    sc_envelope_opts o = {.version = tg.port->version,
                          .wss = has_wss ? &wss : NULL,
                          .soap_header = soap_header};
    sc_buf env = {0};
    if (sc_build_envelope(op, args, &o, &env, &e)) {
        sc_buf_free(&env);
        return fail(ctx, e.code, 0, "%s: %s", opname, e.msg);
    }
    api->log(ctx, FERRY_LOG_DEBUG,
             json_pack("{s:s?, s:s?, s:s, s:I}", "service", tg.service->name,
                       "port", tg.port->name, "soap_version",
                       tg.port->version == 12 ? "1.2" : "1.1", "bytes",
                       (json_int_t)env.len),
             "calling %s at %s", opname, url);
    exchange x;
    rc = send_envelope(ctx, in, url, tg.port->version, op->action, env.p,
                       env.len, &x);
    sc_buf_free(&env);
    if (rc) {
        exchange_clear(&x);
        return rc;
    }
    char what[300];
    snprintf(what, sizeof(what), "SOAP call %s", opname);
    if (!x.data || !x.len) {
        if (x.status >= 200 && x.status <= 299 && !op->out.present) {
            json_t *outv = json_pack("{s:n, s:O?, s:I}", "result", "raw", x.raw,
                                     "status", (json_int_t)x.status);
            exchange_clear(&x);
            return api->set_output(ctx, outv);
        }
        sc_err none = {.code = FERRY_EPROTO};
        snprintf(none.msg, sizeof(none.msg), "an empty response (HTTP %ld)",
                 x.status);
        rc = no_envelope(ctx, what, &x, &none);
        exchange_clear(&x);
        return rc;
    }
    sc_response r;
    if (read_response(&x, op, convert, &r, &e)) {
        rc = no_envelope(ctx, what, &x, &e);
        exchange_clear(&x);
        return rc;
    }
    if (r.is_fault) {
        rc = fault_error(ctx, opname, x.status, &r.fault);
        sc_response_clear(&r);
        exchange_clear(&x);
        return rc;
    }
    if (x.status < 200 || x.status > 299) {
        sc_err none = {.code = FERRY_EPROTO};
        rc = no_envelope(ctx, what, &x, &none);
        sc_response_clear(&r);
        exchange_clear(&x);
        return rc;
    }
    if (r.mismatch && convert)
        api->log(ctx, FERRY_LOG_WARN, NULL,
                 "%s: the response's Body holds <%s>, the WSDL declares <%s>; "
                 "read by the declared type anyway",
                 opname, r.mismatch_name,
                 op->out.wrapper ? op->out.wrapper->name : "?");
    if (r.version != tg.port->version)
        api->log(ctx, FERRY_LOG_WARN, NULL,
                 "%s: a SOAP %s port answered with a SOAP %s envelope", opname,
                 tg.port->version == 12 ? "1.2" : "1.1",
                 r.version == 12 ? "1.2" : "1.1");
    json_t *outv = json_pack("{s:O, s:O, s:I, s:s}", "result", r.result, "raw",
                             x.raw, "status", (json_int_t)x.status,
                             "soap_version", r.version == 12 ? "1.2" : "1.1");
    if (outv && r.header)
        json_object_set(outv, "header", r.header);
    sc_response_clear(&r);
    exchange_clear(&x);
    if (!outv)
        return fail(ctx, FERRY_ENOMEM, 0, "out of memory");
    return api->set_output(ctx, outv);
}

/* ---- soap.request ---- */

static int request_run(ferry_ctx *ctx, const json_t *in) {
    if (!FERRY_API_HAS(api, http_request))
        return fail(ctx, FERRY_EUNSUPPORTED, 0,
                    "this host has no HTTP helper (ABI 1.1 needed)");
    const char *url = str_in(in, "url");
    if (!is_url(url))
        return fail(ctx, FERRY_EINVAL, 0, "url must be an http(s) URL");
    const char *ver = str_in(in, "soap_version");
    int version;
    if (!ver || !strcmp(ver, "1.1"))
        version = 11;
    else if (!strcmp(ver, "1.2"))
        version = 12;
    else
        return fail(ctx, FERRY_EINVAL, 0,
                    "soap_version must be \"1.1\" or \"1.2\", not \"%s\"", ver);
    const json_t *ev = json_object_get(in, "envelope");
    const char *env;
    size_t env_len;
    if (json_is_string(ev)) {
        env = json_string_value(ev);
        env_len = json_string_length(ev);
    } else if (json_is_object(ev) && json_object_get(ev, "$blob")) {
        const void *p;
        if (api->blob_data(ctx, ev, &p, &env_len))
            return fail(ctx, FERRY_EINVAL, 0,
                        "envelope: the blob is not readable");
        env = p;
    } else {
        return fail(ctx, FERRY_EINVAL, 0,
                    "envelope: expected the envelope's text or a blob");
    }
    int convert = convert_in(ctx, in);
    if (convert < 0)
        return FERRY_EINVAL;
    /* What is sent must at least be XML. */
    sc_err e = {0};
    xmlDocPtr d = sc_parse_xml(env, env_len, "envelope", &e);
    if (!d)
        return fail(ctx, FERRY_EINVAL, 0, "%s", e.msg);
    xmlFreeDoc(d);
    exchange x;
    int rc = send_envelope(ctx, in, url, version, str_in(in, "action"), env,
                           env_len, &x);
    if (rc) {
        exchange_clear(&x);
        return rc;
    }
    if (!x.data || !x.len) {
        json_t *outv = x.status >= 200 && x.status <= 299
                           ? json_pack("{s:n, s:O?, s:I}", "body", "raw", x.raw,
                                       "status", (json_int_t)x.status)
                           : NULL;
        if (!outv) {
            sc_err none = {.code = FERRY_EPROTO};
            snprintf(none.msg, sizeof(none.msg), "an empty response");
            rc = no_envelope(ctx, "SOAP request", &x, &none);
            exchange_clear(&x);
            return rc;
        }
        exchange_clear(&x);
        return api->set_output(ctx, outv);
    }
    sc_response r;
    if (read_response(&x, NULL, convert, &r, &e)) {
        rc = no_envelope(ctx, "SOAP request", &x, &e);
        exchange_clear(&x);
        return rc;
    }
    if (r.is_fault) {
        rc = fault_error(ctx, url, x.status, &r.fault);
        sc_response_clear(&r);
        exchange_clear(&x);
        return rc;
    }
    if (x.status < 200 || x.status > 299) {
        sc_err none = {.code = FERRY_EPROTO};
        rc = no_envelope(ctx, "SOAP request", &x, &none);
        sc_response_clear(&r);
        exchange_clear(&x);
        return rc;
    }
    json_t *outv = json_pack("{s:O, s:O, s:I, s:s}", "body", r.result, "raw",
                             x.raw, "status", (json_int_t)x.status,
                             "soap_version", r.version == 12 ? "1.2" : "1.1");
    if (outv && r.header)
        json_object_set(outv, "header", r.header);
    sc_response_clear(&r);
    exchange_clear(&x);
    if (!outv)
        return fail(ctx, FERRY_ENOMEM, 0, "out of memory");
    return api->set_output(ctx, outv);
}

/* ---- description ---- */

#define WSDL_INPUT                                                             \
    {                                                                          \
        "wsdl", "any", 1, NULL,                                                \
            "the WSDL: an http(s) URL (fetched with the step's connection), "  \
            "a "                                                               \
            "file path, the WSDL's text, or a blob"                            \
    }
#define BASE_INPUT                                                             \
    {                                                                          \
        "base_url", "string", 0, NULL,                                         \
            "where relative imports of a WSDL given as text or a blob resolve" \
    }
#define TRANSPORT_INPUTS                                                       \
    {"headers", "object", 0, NULL,                                             \
     "extra HTTP headers; a name given here replaces the SOAP ones"},          \
        {"timeout", "any", 0, "\"60s\"",                                       \
         "limit for the whole exchange (\"30s\", \"2m\", or milliseconds)"},   \
        {"connect_timeout", "any", 0, "\"10s\"", "limit for connecting"},      \
        {"verify_tls", "boolean", 0, "true",                                   \
         "check the server's certificate and name"},                           \
    {                                                                          \
        "ca_file", "string", 0, NULL,                                          \
            "PEM file of the CAs to trust instead of the system's"             \
    }

static const ferry_input describe_inputs[] = {
    WSDL_INPUT,
    {"operation", "string", 0, NULL,
     "describe only the operations of this name (the whole WSDL otherwise)"},
    BASE_INPUT,
    {"timeout", "any", 0, "\"60s\"", "limit for fetching each document"},
    {"connect_timeout", "any", 0, "\"10s\"", "limit for connecting"},
    {"verify_tls", "boolean", 0, "true",
     "check the server's certificate and name"},
    {"ca_file", "string", 0, NULL,
     "PEM file of the CAs to trust instead of the system's"},
    {0}};

static const ferry_input call_inputs[] = {
    WSDL_INPUT,
    {"operation", "string", 1, NULL, "the operation's name"},
    {"arguments", "object", 0, "{}",
     "the input as JSON, shaped as soap.describe shows the operation's "
     "input fields"},
    {"service", "string", 0, NULL,
     "the service, when several offer the operation"},
    {"port", "string", 0, NULL,
     "the port (binding) to use; by default the service's first that has "
     "the operation"},
    {"soap_version", "string", 0, NULL,
     "\"1.1\" or \"1.2\": use a port of that version"},
    {"endpoint", "string", 0, NULL,
     "the URL to send to instead of the port's address"},
    {"wss", "object", 0, NULL,
     "WS-Security UsernameToken: {username, password, password_type "
     "(\"digest\" or \"text\"), nonce, created, must_understand}; else a "
     "soap.wss connection"},
    {"soap_header", "string", 0, NULL,
     "XML added to the envelope's Header (declaring its namespaces)"},
    {"convert", "boolean", 0, "true",
     "false: the response's Body is not converted (the output's result is "
     "null; raw holds the response, for a step that streams it); a Fault "
     "still fails the step"},
    BASE_INPUT,
    TRANSPORT_INPUTS,
    {0}};

static const ferry_input request_inputs[] = {
    {"url", "string", 1, NULL, "the endpoint (http or https)"},
    {"envelope", "any", 1, NULL, "the whole envelope: its text or a blob"},
    {"soap_version", "string", 0, "\"1.1\"",
     "\"1.1\" (text/xml and SOAPAction) or \"1.2\" (application/soap+xml "
     "with action)"},
    {"action", "string", 0, NULL, "the SOAP action"},
    {"convert", "boolean", 0, "true",
     "false: the response's Body is not converted (the output's body is "
     "null; raw holds the response, for a step that streams it); a Fault "
     "still fails the step"},
    TRANSPORT_INPUTS,
    {0}};

static const ferry_action actions[] = {
    {.id = "soap.describe",
     .label = "Describe a WSDL",
     .description =
         "Loads a WSDL 1.1 (and what it imports) and returns its services, "
         "ports, operations, their SOAP version, style and soapAction, and "
         "the shapes of their inputs, outputs and fault details.",
     .inputs = describe_inputs,
     .output = "{name, target_namespace, sha256, documents, bytes, services: "
               "[{name, ports: [{name, binding, address, soap_version, "
               "style, operations: [{name, style, use, wrapped, soap_action, "
               "input: {element, fields}, output, faults}]}]}], warnings?}",
     .run = describe_run,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {.id = "soap.call",
     .label = "Call a SOAP operation",
     .description =
         "Calls an operation of a WSDL by name with JSON arguments: checks "
         "them against the schema, builds the envelope, sends it with the "
         "step's connection (and WS-Security when asked), and returns the "
         "response typed by the schema. A SOAP fault fails the step with "
         "its code, reason and detail; Server/Receiver faults are "
         "retryable.",
     .inputs = call_inputs,
     .output = "{result: the response body as JSON, raw: blob of the "
               "response XML, status, soap_version, header?}",
     .run = call_run,
     .flags = 0},
    {.id = "soap.request",
     .label = "Send a SOAP envelope",
     .description = "Sends an envelope written by hand and returns the "
                    "response's Body as JSON; faults fail the step as for "
                    "soap.call.",
     .inputs = request_inputs,
     .output = "{body: the Body's content as JSON, raw: blob of the response "
               "XML, status, soap_version, header?}",
     .run = request_run,
     .flags = 0},
    {0}};

static const ferry_input wss_fields[] = {
    {"username", "string", 1, NULL, "the UsernameToken's user name"},
    {"password", "string", 1, NULL, "the password (secret)"},
    {"password_type", "string", 0, "\"digest\"",
     "digest (PasswordDigest with nonce and created) or text "
     "(PasswordText: use only over https)"},
    {"nonce", "boolean", 0, "true", "send a nonce with PasswordText"},
    {"created", "boolean", 0, "true", "send wsu:Created with PasswordText"},
    {"must_understand", "boolean", 0, "true",
     "mark the Security header mustUnderstand"},
    {0}};

/* The HTTP-level types, as the http component declares them: the host's
 * helper applies a connection by its type's auth, and a step may only use
 * a type of a component the integration uses. */
static const ferry_input basic_fields[] = {
    {"username", "string", 1, NULL, "user name"},
    {"password", "string", 1, NULL, "password (secret)"},
    {0}};

static const ferry_input bearer_fields[] = {
    {"token", "string", 1, NULL, "the bearer token (secret)"}, {0}};

static const ferry_input api_key_fields[] = {
    {"key", "string", 1, NULL, "the API key (secret)"},
    {"header", "string", 0, "\"X-API-Key\"",
     "header that carries the key (when query is not set)"},
    {"query", "string", 0, NULL,
     "query parameter that carries the key instead of a header"},
    {"prefix", "string", 0, NULL,
     "text before the key in the header (\"Token \")"},
    {0}};

static const ferry_input oauth2_fields[] = {
    {"token_url", "string", 1, NULL, "the token endpoint"},
    {"client_id", "string", 1, NULL, "the client's id"},
    {"client_secret", "string", 0, NULL, "the client's secret (secret)"},
    {"client_auth", "string", 0, "\"basic\"",
     "basic (HTTP Basic at the token endpoint) or body"},
    {"scopes", "any", 0, NULL,
     "scopes to ask for: a space-separated string or an array of strings"},
    {"grant", "string", 0, "\"client_credentials\"",
     "client_credentials, authorization_code or refresh_token"},
    {"authorize_url", "string", 0, NULL,
     "the authorization endpoint (authorization_code)"},
    {"refresh_token", "string", 0, NULL, "a refresh token (secret)"},
    {"audience", "string", 0, NULL,
     "the audience parameter some providers require"},
    {0}};

static const ferry_connection_type connections[] = {
    {.id = "soap.basic",
     .label = "HTTP Basic",
     .description = "User name and password sent as Authorization: Basic "
                    "with every request (the WSDL's fetch included).",
     .auth = "basic",
     .fields = basic_fields},
    {.id = "soap.bearer",
     .label = "Bearer token",
     .description = "A fixed token sent as Authorization: Bearer.",
     .auth = "bearer",
     .fields = bearer_fields},
    {.id = "soap.api_key",
     .label = "API key",
     .description = "A key sent in a header (X-API-Key unless header says "
                    "otherwise) or, with query, as a query parameter.",
     .auth = "api_key",
     .fields = api_key_fields},
    {.id = "soap.oauth2",
     .label = "OAuth 2.0",
     .description = "An access token from the host's token service, sent "
                    "as Authorization: Bearer and refreshed once on a 401.",
     .auth = "oauth2",
     .fields = oauth2_fields},
    {.id = "soap.wss",
     .label = "WS-Security UsernameToken",
     .description = "A user name and password sent in the SOAP header as a "
                    "WS-Security UsernameToken (nothing at the HTTP level).",
     .auth = "custom",
     .fields = wss_fields},
    {0}};

static const ferry_component desc = {
    FERRY_COMPONENT_HEADER,
    .name = "soap",
    .version = "1.0.0",
    .description = "SOAP 1.1 and 1.2 services described by WSDL 1.1.",
    .actions = actions,
    .connections = connections,
};

FERRY_EXPORT const ferry_component *
ferry_component_entry(const ferry_api *host) {
    api = host;
    return &desc;
}
