/*
 * The exchange itself: one libcurl easy handle per call, set up afresh for
 * each hop. Redirects are followed here rather than by libcurl, because
 * credentials must reach only the origin the request named: libcurl drops
 * its own Authorization on a redirect to another host, but not a header
 * that carries an API key, nor a key in the query. So every hop decides for
 * itself whether the connection's credentials (and the caller's own
 * Authorization and Cookie headers) go with it.
 */
#include "httpc_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef FERRY_VERSION
#define FERRY_VERSION "0"
#endif

/* ---- the process ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode init_rc = CURLE_FAILED_INIT;

static void global_init(void) {
    init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void httpc_global_init(void) {
    pthread_once(&init_once, global_init);
}

/* One idle handle is kept between calls, so that a flow calling the same
 * API in a loop reuses its connections (and TLS sessions). A handle is
 * only reused by the process that made it: after a fork its connections
 * are the parent's, and the child leaves it alone. */
static CURL *idle;
static pid_t idle_pid;

static CURL *handle_take(void) {
    CURL *h = __atomic_exchange_n(&idle, NULL, __ATOMIC_ACQ_REL);
    if (h && idle_pid == getpid()) {
        curl_easy_reset(h);
        return h;
    }
    return curl_easy_init();
}

static void handle_give(CURL *h) {
    if (!h)
        return;
    idle_pid = getpid();
    CURL *old = __atomic_exchange_n(&idle, h, __ATOMIC_ACQ_REL);
    if (old)
        curl_easy_cleanup(old);
}

__attribute__((destructor)) static void handle_fini(void) {
    CURL *h = __atomic_exchange_n(&idle, NULL, __ATOMIC_ACQ_REL);
    if (h && idle_pid == getpid())
        curl_easy_cleanup(h);
}

/* ---- blobs as request bodies ---- */

typedef struct src {
    const httpc_call *c;
    const json_t *ref;
    ferry_blob_reader *rd;
    int *error; /* where a read error is reported */
} src;

static src *src_open(const httpc_call *c, const json_t *ref, int *error) {
    src *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->c = c;
    s->ref = ref;
    s->error = error;
    s->rd = c->api->blob_open(c->ctx, ref);
    if (!s->rd) {
        free(s);
        return NULL;
    }
    return s;
}

static void src_free(void *ud) {
    src *s = ud;
    if (!s)
        return;
    if (s->rd)
        s->c->api->blob_close(s->rd);
    free(s);
}

static size_t src_read(char *buf, size_t size, size_t n, void *ud) {
    src *s = ud;
    long got = s->rd ? s->c->api->blob_read(s->rd, buf, size * n) : FERRY_EIO;
    if (got < 0) {
        *s->error = (int)got;
        return CURL_READFUNC_ABORT;
    }
    return (size_t)got;
}

/* libcurl rewinds a body to send it again (a connection that closed
 * before the answer); blob readers only go forward, so open a new one. */
static int src_seek(void *ud, curl_off_t off, int origin) {
    src *s = ud;
    if (origin != SEEK_SET || off != 0)
        return CURL_SEEKFUNC_CANTSEEK;
    if (s->rd)
        s->c->api->blob_close(s->rd);
    s->rd = s->c->api->blob_open(s->c->ctx, s->ref);
    return s->rd ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_FAIL;
}

/* ---- one hop ---- */

typedef struct hop {
    char *url; /* owned; without a query credential */
    char method[32];
    int with_body;
    int creds; /* the connection's credentials apply (same origin) */
} hop;

typedef struct xfer {
    const httpc_call *c;
    const httpc_req *r;
    const httpc_cred *cred;
    CURL *h;
    httpc_sink sink;
    char errbuf[CURL_ERROR_SIZE];
    int cancelled;
    int body_error; /* reading a request body blob failed */
    struct timespec start;
    /* per hop, freed after it */
    struct curl_slist *hdrs;
    curl_mime *mime;
    src *body;
    char *url_sent;
} xfer;

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                    curl_off_t un) {
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    xfer *x = ud;
    if (x->c->api->cancelled(x->c->ctx)) {
        x->cancelled = 1;
        return 1;
    }
    return 0;
}

static int add_line(xfer *x, const char *name, const char *sep,
                    const char *value) {
    char *line = NULL;
    if (asprintf(&line, "%s%s%s", name, sep, value ? value : "") < 0)
        return -1;
    struct curl_slist *l = curl_slist_append(x->hdrs, line);
    free(line);
    if (!l)
        return -1;
    x->hdrs = l;
    return 0;
}

static int dropped(const char *name, const hop *hp) {
    if (!hp->creds &&
        (!strcasecmp(name, "authorization") || !strcasecmp(name, "cookie") ||
         !strcasecmp(name, "proxy-authorization")))
        return 1;
    if (!hp->with_body && (!strcasecmp(name, "content-type") ||
                           !strcasecmp(name, "content-length") ||
                           !strcasecmp(name, "transfer-encoding")))
        return 1;
    return 0;
}

/* The header lines of a hop: the caller's, then the defaults they did not
 * override. */
static int build_headers(xfer *x, const hop *hp) {
    const httpc_req *r = x->r;
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach((json_t *)r->headers, k, v) {
        if (dropped(k, hp))
            continue;
        if (json_is_null(v)) {
            rc |= add_line(x, k, ":", NULL); /* removes libcurl's own */
            continue;
        }
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
            if (json_is_null(e))
                continue;
            char *t = json_is_string(e)
                          ? strdup(json_string_value(e))
                          : json_dumps(e, JSON_ENCODE_ANY | JSON_COMPACT |
                                              JSON_REAL_PRECISION(15));
            if (!t)
                return -1;
            /* "Name;" is libcurl's way to send a header with no value. */
            rc |= add_line(x, k, *t ? ": " : ";", t);
            free(t);
        }
    }
    const json_t *h = r->headers;
    int has_body = hp->with_body && r->body != BODY_NONE;
    if (has_body && r->body != BODY_MULTIPART &&
        !httpc_has_header(h, "content-type"))
        rc |= add_line(x, "Content-Type", ": ", r->ctype);
    if (!has_body && !httpc_has_header(h, "content-type"))
        rc |= add_line(x, "Content-Type", ":", NULL);
    if (has_body && r->body == BODY_BLOB && r->blob_size < 0 &&
        !httpc_has_header(h, "transfer-encoding"))
        rc |= add_line(x, "Transfer-Encoding", ": ", "chunked");
    /* No "Expect: 100-continue" wait before large bodies. */
    if (!httpc_has_header(h, "expect"))
        rc |= add_line(x, "Expect", ":", NULL);
    if (hp->creds && x->cred->how == CRED_HEADER &&
        !httpc_has_header(h, x->cred->name))
        rc |= add_line(x, x->cred->name, ": ", x->cred->value);
    return rc;
}

static int build_mime(xfer *x) {
    const httpc_call *c = x->c;
    x->mime = curl_mime_init(x->h);
    if (!x->mime)
        return -1;
    size_t i;
    json_t *p;
    json_array_foreach(x->r->parts, i, p) {
        curl_mimepart *part = curl_mime_addpart(x->mime);
        if (!part)
            return -1;
        const char *type =
            json_string_value(json_object_get(p, "content_type"));
        const char *fn = json_string_value(json_object_get(p, "filename"));
        const json_t *blob = json_object_get(p, "blob");
        const json_t *value = json_object_get(p, "value");
        curl_mime_name(part, json_string_value(json_object_get(p, "name")));
        if (blob) {
            src *s = src_open(c, blob, &x->body_error);
            if (!s)
                return -1;
            int64_t size = -1;
            if (c->blob_size)
                size = c->blob_size(c->ctx, blob);
            if (curl_mime_data_cb(part, size, src_read, src_seek, src_free,
                                  s)) {
                src_free(s);
                return -1;
            }
            if (!type)
                type = json_string_value(json_object_get(blob, "content_type"));
        } else if (json_is_string(value)) {
            curl_mime_data(part, json_string_value(value),
                           json_string_length(value));
        } else {
            char *t = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!t)
                return -1;
            curl_mime_data(part, t, CURL_ZERO_TERMINATED);
            free(t);
            if (!type)
                type = "application/json";
        }
        if (fn)
            curl_mime_filename(part, fn);
        if (type)
            curl_mime_type(part, type);
    }
    return 0;
}

/* url with name=value appended to its query. Returns malloc'd or NULL. */
static char *with_param(const char *url, const char *name, const char *value) {
    char *n = httpc_urlencode(name, strlen(name), 0);
    char *v = httpc_urlencode(value, strlen(value), 0);
    char *out = NULL;
    size_t base = strcspn(url, "#");
    const char *q = memchr(url, '?', base);
    const char *sep = !q ? "?" : (url[base - 1] == '?' ? "" : "&");
    if (n && v && asprintf(&out, "%.*s%s%s=%s", (int)base, url, sep, n, v) < 0)
        out = NULL;
    free(n);
    free(v);
    return out;
}

static void hop_free(xfer *x) {
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    curl_mime_free(x->mime);
    x->mime = NULL;
    src_free(x->body);
    x->body = NULL;
    free(x->url_sent);
    x->url_sent = NULL;
}

#define SET(opt, val)                                                          \
    do {                                                                       \
        if (curl_easy_setopt(x->h, opt, val) != CURLE_OK)                      \
            goto fail;                                                         \
    } while (0)

/* Sets up the handle for hop hp. Returns 0, or -1 (out of memory or an
 * option libcurl refuses). */
static int setup(xfer *x, const hop *hp, long timeout_ms) {
    const httpc_req *r = x->r;
    const httpc_cred *cr = x->cred;
    curl_easy_reset(x->h);
    x->errbuf[0] = 0;
    x->url_sent = hp->creds && cr->how == CRED_QUERY
                      ? with_param(hp->url, cr->name, cr->value)
                      : strdup(hp->url);
    if (!x->url_sent || build_headers(x, hp))
        return -1;
    SET(CURLOPT_URL, x->url_sent);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    /* No proxy from the environment: workers run with a scrubbed one, so
     * honouring it would make `ferry run` and `ferry serve` differ. */
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)r->connect_timeout_ms);
    SET(CURLOPT_SSL_VERIFYPEER, r->verify ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, r->verify ? 2L : 0L);
    if (r->ca_file)
        SET(CURLOPT_CAINFO, r->ca_file);
    if (!httpc_has_header(r->headers, "user-agent"))
        SET(CURLOPT_USERAGENT, "ferry/" FERRY_VERSION);
    /* Decode what the server compressed, unless the caller negotiates the
     * encoding itself (then the body is returned as sent). */
    if (!httpc_has_header(r->headers, "accept-encoding"))
        SET(CURLOPT_ACCEPT_ENCODING, "");
    SET(CURLOPT_HTTPHEADER, x->hdrs);
    SET(CURLOPT_HEADERFUNCTION, httpc_sink_header);
    SET(CURLOPT_HEADERDATA, &x->sink);
    SET(CURLOPT_WRITEFUNCTION, httpc_sink_write);
    SET(CURLOPT_WRITEDATA, &x->sink);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFOFUNCTION, progress);
    SET(CURLOPT_XFERINFODATA, x);

    if (hp->creds && cr->how == CRED_BASIC) {
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SET(CURLOPT_USERNAME, cr->user);
        SET(CURLOPT_PASSWORD, cr->pass);
    } else if (hp->creds && cr->how == CRED_BEARER &&
               !httpc_has_header(r->headers, "authorization")) {
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        SET(CURLOPT_XOAUTH2_BEARER, cr->token);
    }

    const char *m = hp->method;
    int body = hp->with_body && r->body != BODY_NONE;
    if (body) {
        if (r->body == BODY_MULTIPART) {
            if (build_mime(x))
                return -1;
            SET(CURLOPT_MIMEPOST, x->mime);
        } else if (r->body == BODY_BLOB) {
            if (!(x->body = src_open(x->c, r->blob, &x->body_error)))
                return -1;
            SET(CURLOPT_POST, 1L);
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->blob_size);
            SET(CURLOPT_READFUNCTION, src_read);
            SET(CURLOPT_READDATA, x->body);
            SET(CURLOPT_SEEKFUNCTION, src_seek);
            SET(CURLOPT_SEEKDATA, x->body);
        } else {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
            SET(CURLOPT_POSTFIELDS, r->data);
        }
        if (strcmp(m, "POST"))
            SET(CURLOPT_CUSTOMREQUEST, m);
    } else if (!strcmp(m, "GET")) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (!strcmp(m, "HEAD")) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (!strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH")) {
        /* Methods that carry a body send an empty one: Content-Length 0. */
        SET(CURLOPT_POSTFIELDSIZE, 0L);
        SET(CURLOPT_POSTFIELDS, "");
        if (strcmp(m, "POST"))
            SET(CURLOPT_CUSTOMREQUEST, m);
    } else {
        SET(CURLOPT_CUSTOMREQUEST, m);
    }
    return 0;
fail:
    return -1;
}

/* ---- errors ---- */

static void classify(CURLcode rc, int *code, int *retry) {
    *retry = 1;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        *code = FERRY_ETIMEOUT;
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        *code = FERRY_EUNAVAIL;
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        *code = FERRY_EPROTO;
        break;
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
        *code = FERRY_ECONFIG;
        *retry = 0;
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        *code = FERRY_EINVAL;
        *retry = 0;
        break;
    case CURLE_BAD_CONTENT_ENCODING:
        *code = FERRY_EPROTO;
        *retry = 0;
        break;
    case CURLE_OUT_OF_MEMORY:
        *code = FERRY_ENOMEM;
        break;
    default:
        *code = FERRY_EIO;
        break;
    }
}

static int transfer_error(xfer *x, const hop *hp, CURLcode rc) {
    const httpc_call *c = x->c;
    char *shown = httpc_redact_url(hp->url, NULL);
    const char *u = shown ? shown : "(URL)";
    int code, retry, ret;
    if (x->cancelled) {
        ret = httpc_fail(c, FERRY_ECANCELLED, 0, "%s %s: cancelled", hp->method,
                         u);
    } else if (x->sink.error == FERRY_EPROTO) {
        ret = httpc_fail(c, FERRY_EPROTO, 1,
                         "%s %s: the response headers are too large",
                         hp->method, u);
    } else if (x->sink.error) {
        ret = httpc_fail(c, x->sink.error, 0,
                         "%s %s: storing the response body: %s", hp->method, u,
                         ferry_strerror(x->sink.error));
    } else if (x->body_error) {
        ret = httpc_fail(c, x->body_error, 0,
                         "%s %s: reading the request body blob: %s", hp->method,
                         u, ferry_strerror(x->body_error));
    } else {
        classify(rc, &code, &retry);
        const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
        size_t dl = strlen(detail);
        while (dl && (detail[dl - 1] == '\n' || detail[dl - 1] == '\r'))
            dl--;
        const char *hint = "";
        if (rc == CURLE_PEER_FAILED_VERIFICATION)
            hint = " (the server's certificate is not trusted: give ca_file "
                   "with the CA that issued it, or set verify_tls to false)";
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            hint = " (timeout or connect_timeout)";
        ret = httpc_fail(c, code, retry, "%s %s: %.*s%s", hp->method, u,
                         (int)dl, detail, hint);
    }
    free(shown);
    return ret;
}

/* ---- the response object ---- */

static json_t *ms(curl_off_t us) {
    return json_real((double)us / 1000.0);
}

static json_t *timings(CURL *h) {
    curl_off_t dns = 0, conn = 0, tls = 0, first = 0, total = 0;
    curl_easy_getinfo(h, CURLINFO_NAMELOOKUP_TIME_T, &dns);
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &conn);
    curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &tls);
    curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME_T, &first);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &total);
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "dns_ms", ms(dns),
                     "connect_ms", ms(conn), "tls_ms", ms(tls), "first_byte_ms",
                     ms(first), "total_ms", ms(total));
}

static int respond(xfer *x, const hop *hp, long redirects, json_t **out) {
    const httpc_call *c = x->c;
    json_t *body = NULL;
    int rc = httpc_sink_body(&x->sink, !strcmp(hp->method, "HEAD"), &body);
    if (rc)
        return rc;
    long status = 0;
    char *eff = NULL;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->h, CURLINFO_EFFECTIVE_URL, &eff);
    char *shown = httpc_redact_url(
        eff ? eff : hp->url, x->cred->how == CRED_QUERY ? x->cred->name : NULL);
    json_t *t = timings(x->h);
    json_t *res = json_pack(
        "{s:i, s:O, s:o, s:I, s:s, s:i, s:o}", "status", (int)status, "headers",
        x->sink.headers, "body", body, "size", (json_int_t)x->sink.total, "url",
        shown ? shown : "", "redirects", (int)redirects, "timings", t);
    int64_t wait;
    const char *ra =
        json_string_value(json_object_get(x->sink.headers, "retry-after"));
    if (res && ra && !httpc_parse_retry_after(ra, time(NULL), &wait))
        json_object_set_new(res, "retry_after_ms", json_integer(wait));
    double total = 0;
    curl_easy_getinfo(x->h, CURLINFO_TOTAL_TIME, &total);
    c->api->log(c->ctx, FERRY_LOG_DEBUG, NULL,
                "%s %s -> %ld (%llu bytes, %.0f ms)", hp->method,
                shown ? shown : "", status, (unsigned long long)x->sink.total,
                total * 1000);
    free(shown);
    if (!res)
        return httpc_fail(c, FERRY_ENOMEM, 1, "out of memory");
    *out = res;
    return 0;
}

/* ---- the whole request ---- */

/* What the next hop of a redirect from hp with status is: 303 turns any
 * method but HEAD into a GET, 301 and 302 turn a POST into a GET (as
 * browsers and libcurl do), 307 and 308 repeat the request as it was. */
static void next_hop(const hop *hp, long status, hop *next) {
    memcpy(next->method, hp->method, sizeof(next->method));
    next->with_body = hp->with_body;
    if ((status == 303 && strcmp(hp->method, "HEAD")) ||
        ((status == 301 || status == 302) && !strcmp(hp->method, "POST"))) {
        strcpy(next->method, "GET");
        next->with_body = 0;
    }
}

/* Runs the request through its redirects. Returns 0 with *final the last
 * hop (owned by the caller), or a recorded error. */
static int run(xfer *x, hop *final, long *redirects) {
    const httpc_req *r = x->r;
    hop hp = {.url = strdup(r->url), .with_body = 1, .creds = 1};
    memcpy(hp.method, r->method, sizeof(hp.method));
    *redirects = 0;
    if (!hp.url)
        return httpc_fail(x->c, FERRY_ENOMEM, 1, "out of memory");
    for (;;) {
        long left = (long)r->timeout_ms;
        if (r->timeout_ms) {
            int64_t spent = now_ms() - (x->start.tv_sec * 1000 +
                                        x->start.tv_nsec / 1000000);
            left = (long)((int64_t)r->timeout_ms - spent);
            if (left <= 0) {
                char *u = httpc_redact_url(hp.url, NULL);
                int rc = httpc_fail(x->c, FERRY_ETIMEOUT, 1,
                                    "%s %s: timed out after %llu ms "
                                    "(timeout)",
                                    hp.method, u ? u : "",
                                    (unsigned long long)r->timeout_ms);
                free(u);
                free(hp.url);
                return rc;
            }
        }
        httpc_sink_reset(&x->sink);
        json_object_clear(x->sink.headers);
        x->sink.status = 0;
        x->body_error = 0;
        if (setup(x, &hp, left)) {
            hop_free(x);
            free(hp.url);
            return httpc_fail(x->c, FERRY_ENOMEM, 1,
                              "setting up the HTTP request failed");
        }
        CURLcode rc = curl_easy_perform(x->h);
        if (rc != CURLE_OK || x->sink.error) {
            int ret = transfer_error(x, &hp, rc);
            hop_free(x);
            free(hp.url);
            return ret;
        }
        long status = 0;
        char *loc = NULL;
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(x->h, CURLINFO_REDIRECT_URL, &loc);
        int follow = r->follow && loc &&
                     (status == 301 || status == 302 || status == 303 ||
                      status == 307 || status == 308);
        if (!follow) {
            hop_free(x);
            *final = hp;
            return 0;
        }
        if (*redirects >= r->max_redirects) {
            char *u = httpc_redact_url(hp.url, NULL);
            int ret = httpc_fail(x->c, FERRY_EPROTO, 0,
                                 "%s %s: stopped after %ld redirects "
                                 "(max_redirects)",
                                 hp.method, u ? u : "", *redirects);
            free(u);
            hop_free(x);
            free(hp.url);
            return ret;
        }
        hop next = {.url = strdup(loc)};
        next_hop(&hp, status, &next);
        /* The query credential is added again only where it applies. */
        next.creds =
            hp.creds && next.url && httpc_same_origin(r->url, next.url);
        char *u = httpc_redact_url(next.url, NULL);
        x->c->api->log(x->c->ctx, FERRY_LOG_DEBUG, NULL,
                       "%ld: following to %s %s%s", status, next.method,
                       u ? u : "",
                       next.creds ? "" : " (another origin: no credentials)");
        free(u);
        hop_free(x);
        free(hp.url);
        if (!next.url)
            return httpc_fail(x->c, FERRY_ENOMEM, 1, "out of memory");
        hp = next;
        (*redirects)++;
    }
}

int httpc_request(const httpc_call *c, const json_t *req, json_t **response) {
    *response = NULL;
    httpc_global_init();
    if (init_rc != CURLE_OK)
        return httpc_fail(c, FERRY_EINTERNAL, 0,
                          "the HTTP client library did not initialise: %s",
                          curl_easy_strerror(init_rc));
    httpc_req r;
    int rc = httpc_req_parse(c, req, &r);
    if (rc) {
        httpc_req_clear(&r);
        return rc;
    }
    if (c->api->cancelled(c->ctx)) {
        httpc_req_clear(&r);
        return httpc_fail(c, FERRY_ECANCELLED, 0, "cancelled");
    }
    httpc_cred cred;
    if ((rc = httpc_cred_get(c, 0, &cred))) {
        httpc_req_clear(&r);
        return rc;
    }
    xfer x = {.c = c, .r = &r, .cred = &cred};
    clock_gettime(CLOCK_MONOTONIC, &x.start);
    httpc_sink_init(&x.sink, c, &r);
    x.h = handle_take();
    if (!x.h || !x.sink.headers) {
        rc = httpc_fail(c, FERRY_ENOMEM, 1, "cannot start an HTTP request");
        goto done;
    }
    hop final = {0};
    long redirects = 0;
    if ((rc = run(&x, &final, &redirects)))
        goto done;
    long status = 0;
    curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &status);
    if (status == 401 && cred.oauth2 && final.creds) {
        /* The token may have been revoked or expired early: one new one,
         * one more try. */
        c->api->log(c->ctx, FERRY_LOG_INFO, NULL,
                    "connection '%s': 401 with the current token; "
                    "refreshing it and repeating the request once",
                    c->auth.connection);
        free(final.url);
        final.url = NULL;
        httpc_cred_clear(&cred);
        if ((rc = httpc_cred_get(c, 1, &cred)) ||
            (rc = run(&x, &final, &redirects)))
            goto done;
    }
    rc = respond(&x, &final, redirects, response);
    free(final.url);
done:
    httpc_sink_clear(&x.sink);
    if (rc) {
        /* A handle whose transfer failed may hold a half-used connection;
         * start the next call afresh. */
        curl_easy_cleanup(x.h);
    } else {
        handle_give(x.h);
    }
    httpc_cred_clear(&cred);
    httpc_req_clear(&r);
    return rc;
}
