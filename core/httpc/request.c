/*
 * Reading a request object (the shape ferry.h documents beside
 * http_request) and the step's connection into what a transfer needs.
 * Everything a caller can get wrong is refused here, before any I/O, with a
 * message naming the field.
 */
#include "httpc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_TIMEOUT_MS 60000
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_REDIRECTS 10
#define DEFAULT_MAX_INLINE (1024 * 1024)

int httpc_fail(const httpc_call *c, int code, int retryable, const char *fmt,
               ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return c->api->set_error(c->ctx, code, retryable, "%s", msg);
}

static int is_tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_token(const char *s) {
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

int httpc_has_header(const json_t *headers, const char *name) {
    const char *k;
    json_t *v;
    if (!headers)
        return 0;
    json_object_foreach((json_t *)headers, k, v) {
        if (!strcasecmp(k, name))
            return 1;
    }
    return 0;
}

/* ---- a growable string ---- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) {
    sb_add(b, s, strlen(s));
}

static void sb_enc(sbuf *b, const char *s, size_t n, int plus) {
    char *e = httpc_urlencode(s, n, plus);
    if (!e) {
        b->oom = 1;
        return;
    }
    sb_str(b, e);
    free(e);
}

/* The text of a scalar for a query, form or header: strings as they are,
 * numbers as JSON writes them, booleans as true/false. Returns malloc'd,
 * or NULL for a value that has none (null, arrays, objects). */
static char *scalar_text(const json_t *v) {
    if (json_is_string(v))
        return strndup(json_string_value(v), json_string_length(v));
    if (json_is_number(v) || json_is_boolean(v))
        return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
                                 JSON_REAL_PRECISION(15));
    return NULL;
}

/* Appends name=value pairs of obj to b ('&' between, and before the first
 * when b is not empty). Returns 0, or -1 with *bad the offending name. */
static int add_pairs(sbuf *b, const json_t *obj, int plus, const char **bad) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (json_is_null(v))
            continue;
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
            if (json_is_null(e))
                continue;
            char *t = scalar_text(e);
            if (!t) {
                *bad = k;
                return -1;
            }
            if (b->n)
                sb_add(b, "&", 1);
            sb_enc(b, k, strlen(k), plus);
            sb_add(b, "=", 1);
            sb_enc(b, t, strlen(t), plus);
            free(t);
        }
    }
    return 0;
}

/* ---- fields ---- */

static const char *const known[] = {"method",
                                    "url",
                                    "query",
                                    "headers",
                                    "json",
                                    "form",
                                    "multipart",
                                    "text",
                                    "xml",
                                    "blob",
                                    "timeout",
                                    "connect_timeout",
                                    "follow_redirects",
                                    "max_redirects",
                                    "verify_tls",
                                    "ca_file",
                                    "as",
                                    "max_inline",
                                    NULL};

/* v absent or null. */
static int absent(const json_t *v) {
    return !v || json_is_null(v);
}

static int duration(const httpc_call *c, const json_t *v, const char *name,
                    uint64_t def, uint64_t *out) {
    if (absent(v)) {
        *out = def;
        return 0;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && c->parse_duration_ms &&
        !c->parse_duration_ms(json_string_value(v), out))
        return 0;
    return httpc_fail(c, FERRY_EINVAL, 0,
                      "http request: '%s' must be a duration (\"30s\", "
                      "\"500ms\") or whole milliseconds",
                      name);
}

static int flag(const httpc_call *c, const json_t *v, const char *name, int def,
                int *out) {
    if (absent(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return httpc_fail(c, FERRY_EINVAL, 0,
                          "http request: '%s' must be true or false", name);
    *out = json_is_true(v);
    return 0;
}

static int check_headers(const httpc_call *c, const json_t *h) {
    const char *k;
    json_t *v;
    if (!json_is_object(h))
        return httpc_fail(c, FERRY_EINVAL, 0,
                          "http request: 'headers' must be an object of "
                          "header name to value");
    json_object_foreach((json_t *)h, k, v) {
        if (!is_token(k))
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: header name '%.64s' is not a "
                              "valid token",
                              k);
        if (json_is_null(v))
            continue;
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
            if (json_is_null(e))
                continue;
            char *t = scalar_text(e);
            int bad = !t || strpbrk(t, "\r\n") ||
                      (json_is_string(e) && strlen(t) != json_string_length(e));
            free(t);
            if (bad)
                return httpc_fail(
                    c, FERRY_EINVAL, 0,
                    "http request: header '%s' must be a string, number, "
                    "boolean or an array of them, without line breaks",
                    k);
        }
    }
    return 0;
}

static int check_parts(const httpc_call *c, const json_t *parts) {
    static const char *const keys[] = {"name",     "value",        "blob",
                                       "filename", "content_type", NULL};
    if (!json_is_array(parts))
        return httpc_fail(c, FERRY_EINVAL, 0,
                          "http request: 'multipart' must be an array of "
                          "parts {name, value | blob, filename, "
                          "content_type}");
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p) {
        const char *k;
        json_t *v;
        if (!json_is_object(p))
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: multipart[%zu] must be an "
                              "object",
                              i);
        json_object_foreach(p, k, v) {
            int ok = 0;
            for (int j = 0; keys[j]; j++)
                ok |= !strcmp(k, keys[j]);
            if (!ok)
                return httpc_fail(c, FERRY_EINVAL, 0,
                                  "http request: multipart[%zu]: unknown "
                                  "field '%.64s'",
                                  i, k);
        }
        const json_t *name = json_object_get(p, "name");
        const json_t *blob = json_object_get(p, "blob");
        const json_t *fn = json_object_get(p, "filename");
        const json_t *ct = json_object_get(p, "content_type");
        if (!json_is_string(name) || !json_string_length(name))
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: multipart[%zu] needs a "
                              "\"name\"",
                              i);
        if (!json_object_get(p, "value") == !blob)
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: multipart[%zu] needs exactly "
                              "one of \"value\" and \"blob\"",
                              i);
        if ((fn && !json_is_string(fn)) || (ct && !json_is_string(ct)))
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: multipart[%zu]: filename and "
                              "content_type must be strings",
                              i);
        if (blob) {
            ferry_blob_reader *rd = c->api->blob_open(c->ctx, blob);
            if (!rd)
                return httpc_fail(c, FERRY_EINVAL, 0,
                                  "http request: multipart[%zu].blob names "
                                  "no blob of this execution",
                                  i);
            c->api->blob_close(rd);
        }
    }
    return 0;
}

static int64_t blob_size(const httpc_call *c, const json_t *ref) {
    if (c->blob_size)
        return c->blob_size(c->ctx, ref);
    const json_t *s = json_object_get(ref, "size");
    return json_is_integer(s) && json_integer_value(s) >= 0
               ? (int64_t)json_integer_value(s)
               : -1;
}

/* The body fields: at most one. */
static int parse_body(const httpc_call *c, const json_t *j, httpc_req *r) {
    static const char *const bodies[] = {"json", "form", "multipart",
                                         "text", "xml",  "blob"};
    const char *first = NULL;
    for (int i = 0; i < 6; i++) {
        const json_t *v = json_object_get(j, bodies[i]);
        /* "json": null is a body (the JSON text null). */
        if (!v || (i > 0 && json_is_null(v)))
            continue;
        if (first)
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: give one body, not both '%s' "
                              "and '%s'",
                              first, bodies[i]);
        first = bodies[i];
        r->body = (enum httpc_body)(BODY_JSON + i);
    }
    const json_t *v = first ? json_object_get(j, first) : NULL;
    const char *bad = NULL;
    sbuf b = {0};
    switch (r->body) {
    case BODY_NONE:
        return 0;
    case BODY_JSON:
        r->data = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!r->data)
            return httpc_fail(c, FERRY_ENOMEM, 1,
                              "http request: out of memory");
        r->len = strlen(r->data);
        r->ctype = "application/json";
        return 0;
    case BODY_FORM:
        if (!json_is_object(v))
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: 'form' must be an object of "
                              "name to value");
        if (add_pairs(&b, v, 1, &bad)) {
            free(b.p);
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: form field '%.64s' must be a "
                              "string, number, boolean or an array of them",
                              bad);
        }
        if (b.oom) {
            free(b.p);
            return httpc_fail(c, FERRY_ENOMEM, 1,
                              "http request: out of memory");
        }
        r->data = b.p ? b.p : strdup("");
        r->len = b.n;
        r->ctype = "application/x-www-form-urlencoded";
        return r->data ? 0
                       : httpc_fail(c, FERRY_ENOMEM, 1,
                                    "http request: out of memory");
    case BODY_MULTIPART:
        r->parts = v;
        return check_parts(c, v);
    case BODY_TEXT:
    case BODY_XML:
        if (!json_is_string(v))
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: '%s' must be a string", first);
        r->len = json_string_length(v);
        r->data = malloc(r->len + 1);
        if (!r->data)
            return httpc_fail(c, FERRY_ENOMEM, 1,
                              "http request: out of memory");
        memcpy(r->data, json_string_value(v), r->len + 1);
        r->ctype = r->body == BODY_TEXT ? "text/plain; charset=utf-8"
                                        : "application/xml; charset=utf-8";
        return 0;
    case BODY_BLOB: {
        ferry_blob_reader *rd =
            json_is_object(v) ? c->api->blob_open(c->ctx, v) : NULL;
        if (!rd)
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: 'blob' names no blob of this "
                              "execution");
        c->api->blob_close(rd);
        r->blob = v;
        r->blob_size = blob_size(c, v);
        const char *t = json_string_value(json_object_get(v, "content_type"));
        r->ctype = t && *t ? t : "application/octet-stream";
        return 0;
    }
    }
    return 0;
}

static int parse_url(const httpc_call *c, const json_t *j, httpc_req *r) {
    const json_t *u = json_object_get(j, "url");
    const char *url = json_string_value(u);
    if (!url)
        return httpc_fail(c, FERRY_EINVAL, 0,
                          "http request: 'url' is required (a string)");
    int bad = strncasecmp(url, "http://", 7) && strncasecmp(url, "https://", 8);
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        bad |= *p <= ' ' || *p == 0x7f;
    bad |= strlen(url) != json_string_length(u);
    if (bad)
        return httpc_fail(c, FERRY_EINVAL, 0,
                          "http request: 'url' must be an http:// or "
                          "https:// URL without spaces");
    size_t n = strcspn(url, "#"); /* a fragment is never sent */
    sbuf b = {0};
    sb_add(&b, url, n);
    const json_t *q = json_object_get(j, "query");
    if (!absent(q)) {
        if (!json_is_object(q)) {
            free(b.p);
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: 'query' must be an object of "
                              "name to value");
        }
        sbuf qs = {0};
        const char *badname = NULL;
        if (add_pairs(&qs, q, 0, &badname)) {
            free(b.p);
            free(qs.p);
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: query parameter '%.64s' must "
                              "be a string, number, boolean or an array of "
                              "them",
                              badname);
        }
        if (qs.n) {
            const char *qm = memchr(b.p, '?', b.n);
            if (!qm)
                sb_add(&b, "?", 1);
            else if (b.p[b.n - 1] != '?' && b.p[b.n - 1] != '&')
                sb_add(&b, "&", 1);
            sb_add(&b, qs.p, qs.n);
        }
        b.oom |= qs.oom;
        free(qs.p);
    }
    if (b.oom) {
        free(b.p);
        return httpc_fail(c, FERRY_ENOMEM, 1, "http request: out of memory");
    }
    r->url = b.p;
    return 0;
}

int httpc_req_parse(const httpc_call *c, const json_t *j, httpc_req *r) {
    memset(r, 0, sizeof(*r));
    r->blob_size = -1;
    if (!json_is_object(j))
        return httpc_fail(c, FERRY_EINVAL, 0,
                          "http request: expected a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= !strcmp(k, known[i]);
        if (!ok)
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: unknown field '%.64s'", k);
    }
    const json_t *m = json_object_get(j, "method");
    const char *method = absent(m) ? "GET" : json_string_value(m);
    if (!is_token(method) || strlen(method) >= sizeof(r->method))
        return httpc_fail(c, FERRY_EINVAL, 0,
                          "http request: 'method' must be an HTTP method "
                          "such as \"GET\" or \"POST\"");
    /* Methods are case-sensitive, but "post" can only mean POST. */
    for (size_t i = 0; method[i]; i++)
        r->method[i] =
            (char)(method[i] >= 'a' && method[i] <= 'z' ? method[i] - 32
                                                        : method[i]);
    int rc;
    if ((rc = parse_url(c, j, r)))
        return rc;
    const json_t *h = json_object_get(j, "headers");
    if (!absent(h)) {
        if ((rc = check_headers(c, h)))
            return rc;
        r->headers = h;
    }
    if ((rc = parse_body(c, j, r)))
        return rc;
    if ((rc = duration(c, json_object_get(j, "timeout"), "timeout",
                       DEFAULT_TIMEOUT_MS, &r->timeout_ms)) ||
        (rc = duration(c, json_object_get(j, "connect_timeout"),
                       "connect_timeout", DEFAULT_CONNECT_TIMEOUT_MS,
                       &r->connect_timeout_ms)) ||
        (rc = flag(c, json_object_get(j, "follow_redirects"),
                   "follow_redirects", 1, &r->follow)) ||
        (rc = flag(c, json_object_get(j, "verify_tls"), "verify_tls", 1,
                   &r->verify)))
        return rc;
    const json_t *mr = json_object_get(j, "max_redirects");
    r->max_redirects = DEFAULT_MAX_REDIRECTS;
    if (!absent(mr)) {
        if (!json_is_integer(mr) || json_integer_value(mr) < 0 ||
            json_integer_value(mr) > 100)
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: 'max_redirects' must be a "
                              "whole number from 0 to 100");
        r->max_redirects = (long)json_integer_value(mr);
    }
    const json_t *ca = json_object_get(j, "ca_file");
    if (!absent(ca)) {
        if (!json_is_string(ca) || !json_string_length(ca))
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: 'ca_file' must be the path of "
                              "a PEM file");
        r->ca_file = json_string_value(ca);
    }
    const json_t *as = json_object_get(j, "as");
    const char *ass = absent(as) ? "auto" : json_string_value(as);
    if (ass && !strcmp(ass, "auto"))
        r->as = AS_AUTO;
    else if (ass && !strcmp(ass, "json"))
        r->as = AS_JSON;
    else if (ass && !strcmp(ass, "text"))
        r->as = AS_TEXT;
    else if (ass && !strcmp(ass, "blob"))
        r->as = AS_BLOB;
    else
        return httpc_fail(c, FERRY_EINVAL, 0,
                          "http request: 'as' must be \"auto\", \"json\", "
                          "\"text\" or \"blob\"");
    const json_t *mi = json_object_get(j, "max_inline");
    r->max_inline = DEFAULT_MAX_INLINE;
    if (!absent(mi)) {
        if (json_is_integer(mi) && json_integer_value(mi) >= 0)
            r->max_inline = (uint64_t)json_integer_value(mi);
        else if (!json_is_string(mi) || !c->parse_size ||
                 c->parse_size(json_string_value(mi), &r->max_inline))
            return httpc_fail(c, FERRY_EINVAL, 0,
                              "http request: 'max_inline' must be a size "
                              "(\"1MiB\", \"64KiB\") or whole bytes");
    }
    return 0;
}

void httpc_req_clear(httpc_req *r) {
    free(r->url);
    free(r->data);
    memset(r, 0, sizeof(*r));
}

/* ---- credentials ---- */

static const char *field(const httpc_call *c, const char *name) {
    return json_string_value(json_object_get(c->auth.fields, name));
}

static int missing(const httpc_call *c, const char *what) {
    return httpc_fail(c, FERRY_ECONFIG, 0,
                      "connection '%s' (%s) has no field '%s'",
                      c->auth.connection, c->auth.kind, what);
}

int httpc_cred_get(const httpc_call *c, int force_refresh, httpc_cred *cred) {
    memset(cred, 0, sizeof(*cred));
    const char *kind = c->auth.kind;
    if (!c->auth.connection || !kind)
        return 0;
    if (!strcmp(kind, "basic")) {
        cred->how = CRED_BASIC;
        cred->user = field(c, "username");
        cred->pass = field(c, "password");
        if (!cred->user)
            return missing(c, "username");
        if (!cred->pass)
            cred->pass = "";
        return 0;
    }
    if (!strcmp(kind, "bearer")) {
        const char *t = field(c, "token");
        if (!t || !*t)
            return missing(c, "token");
        cred->how = CRED_BEARER;
        cred->token = strdup(t);
        return cred->token ? 0
                           : httpc_fail(c, FERRY_ENOMEM, 1, "out of memory");
    }
    if (!strcmp(kind, "api_key")) {
        const char *key = field(c, "key");
        const char *q = field(c, "query");
        const char *h = field(c, "header");
        const char *prefix = field(c, "prefix");
        if (!key || !*key)
            return missing(c, "key");
        if (q && *q) {
            cred->how = CRED_QUERY;
            cred->name = q;
            cred->value = strdup(key);
        } else {
            cred->how = CRED_HEADER;
            cred->name = h && *h ? h : "X-API-Key";
            if (!is_token(cred->name))
                return httpc_fail(c, FERRY_ECONFIG, 0,
                                  "connection '%s' (api_key): header '%.64s' "
                                  "is not a valid header name",
                                  c->auth.connection, cred->name);
            if (asprintf(&cred->value, "%s%s", prefix ? prefix : "", key) < 0)
                cred->value = NULL;
            if (cred->value && strpbrk(cred->value, "\r\n"))
                return httpc_fail(c, FERRY_ECONFIG, 0,
                                  "connection '%s' (api_key): the key holds "
                                  "a line break",
                                  c->auth.connection);
        }
        return cred->value ? 0
                           : httpc_fail(c, FERRY_ENOMEM, 1, "out of memory");
    }
    if (!strcmp(kind, "oauth2")) {
        if (!c->auth.token)
            return httpc_fail(c, FERRY_ECONFIG, 0,
                              "connection '%s' (oauth2) needs the host's "
                              "token service",
                              c->auth.connection);
        char *tok = NULL, *err = NULL;
        int rc = c->auth.token(c->auth.token_ud, force_refresh, &tok, &err);
        if (rc || !tok || !*tok) {
            int code = rc < 0 ? rc : FERRY_EAUTH;
            int retry = code != FERRY_EAUTH && code != FERRY_ECONFIG &&
                        code != FERRY_EINVAL && code != FERRY_EPERM;
            httpc_fail(c, code, retry, "connection '%s' (oauth2): %s%s",
                       c->auth.connection,
                       force_refresh ? "refreshing the token: " : "",
                       err ? err
                           : (rc ? ferry_strerror(rc)
                                 : "the token service gave no token"));
            free(tok);
            free(err);
            return code;
        }
        free(err);
        cred->how = CRED_BEARER;
        cred->oauth2 = 1;
        cred->token = tok;
        return 0;
    }
    return 0; /* "custom": the component applies what it needs */
}

void httpc_cred_clear(httpc_cred *cred) {
    free(cred->token);
    free(cred->value);
    memset(cred, 0, sizeof(*cred));
}
