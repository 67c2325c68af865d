/*
 * Receiving a response: its headers, and its body in memory until it grows
 * past max_inline, then in a blob. The switch happens inside the write
 * callback: what was buffered is written to the new blob and the buffer
 * freed, so the body is never held twice; when Content-Length already says
 * the body is too large, it goes to a blob from the first byte.
 */
#include "httpc_internal.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Headers of one response larger than this abort the transfer. */
#define MAX_HEADER_BYTES (1024 * 1024)

void httpc_sink_init(httpc_sink *s, const httpc_call *c, const httpc_req *r) {
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->r = r;
    s->headers = json_object();
}

void httpc_sink_reset(httpc_sink *s) {
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
    if (s->w)
        s->c->api->blob_abort(s->w);
    s->w = NULL;
    s->total = 0;
    s->started = s->discard = 0;
    s->error = 0;
    s->header_bytes = 0;
}

void httpc_sink_clear(httpc_sink *s) {
    httpc_sink_reset(s);
    json_decref(s->headers);
    s->headers = NULL;
}

static const char *content_type(const httpc_sink *s) {
    return json_string_value(json_object_get(s->headers, "content-type"));
}

static int is_redirect(long status) {
    return status == 301 || status == 302 || status == 303 || status == 307 ||
           status == 308;
}

/* Moves the body to a new blob. Returns 0 or a FERRY_E* code. */
static int to_blob(httpc_sink *s) {
    const char *t = content_type(s);
    s->w = s->c->api->blob_create(s->c->ctx,
                                  t && *t ? t : "application/octet-stream");
    if (!s->w)
        return FERRY_EIO;
    int rc = s->len ? s->c->api->blob_write(s->w, s->buf, s->len) : 0;
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
    return rc;
}

size_t httpc_sink_header(char *data, size_t size, size_t n, void *ud) {
    httpc_sink *s = ud;
    size_t len = size * n;
    s->header_bytes += len;
    if (s->header_bytes > MAX_HEADER_BYTES) {
        s->error = FERRY_EPROTO;
        return 0;
    }
    if (httpc_header_line(s->headers, data, len, s->last, &s->status) == 1) {
        s->header_bytes = len;
        s->started = s->discard = 0;
    }
    return len;
}

size_t httpc_sink_write(char *data, size_t size, size_t n, void *ud) {
    httpc_sink *s = ud;
    size_t len = size * n;
    if (!s->started) {
        s->started = 1;
        if (s->r->follow && is_redirect(s->status) &&
            json_object_get(s->headers, "location"))
            s->discard = 1;
        const char *cl =
            json_string_value(json_object_get(s->headers, "content-length"));
        const char *ce =
            json_string_value(json_object_get(s->headers, "content-encoding"));
        /* A declared length is of the encoded body; decoded it only
         * grows, so the decision stands. */
        int big = cl && !ce && strtoull(cl, NULL, 10) > s->r->max_inline;
        if (!s->discard && !s->w && (s->r->as == AS_BLOB || big) &&
            (s->error = to_blob(s)))
            return 0;
    }
    if (s->discard)
        return len;
    s->total += len;
    if (!s->w && s->len + len > s->r->max_inline && (s->error = to_blob(s)))
        return 0;
    if (s->w) {
        int rc = s->c->api->blob_write(s->w, data, len);
        if (rc) {
            s->error = rc;
            return 0;
        }
        return len;
    }
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 16384;
        while (cap < s->len + len)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b) {
            s->error = FERRY_ENOMEM;
            return 0;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    return len;
}

/* The charset parameter of a Content-Type into out ("" if none). */
static void charset_of(const char *ct, char *out, size_t n) {
    out[0] = 0;
    const char *p = ct ? strchr(ct, ';') : NULL;
    while (p) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!strncasecmp(p, "charset=", 8)) {
            p += 8;
            if (*p == '"')
                p++;
            size_t l = strcspn(p, "\"; \t");
            if (l < n) {
                memcpy(out, p, l);
                out[l] = 0;
            }
            return;
        }
        p = strchr(p, ';');
    }
}

static int is_utf8_name(const char *cs) {
    return !*cs || !strcasecmp(cs, "utf-8") || !strcasecmp(cs, "utf8") ||
           !strcasecmp(cs, "us-ascii") || !strcasecmp(cs, "ascii");
}

/* buf as a JSON string, converted from charset cs to UTF-8. Returns a new
 * ref, or NULL if it is not text in that charset. */
static json_t *text_value(const char *buf, size_t len, const char *cs) {
    if (is_utf8_name(cs))
        return json_stringn(buf ? buf : "", len);
    iconv_t cd = iconv_open("UTF-8", cs);
    if (cd == (iconv_t)-1)
        return NULL;
    size_t cap = len * 2 + 16, used = 0;
    char *out = malloc(cap);
    char *in = (char *)buf;
    size_t left = len;
    json_t *v = NULL;
    while (out) {
        char *o = out + used;
        size_t room = cap - used;
        size_t rc = iconv(cd, &in, &left, &o, &room);
        used = (size_t)(o - out);
        if (rc != (size_t)-1) {
            v = json_stringn(out, used);
            break;
        }
        if (errno != E2BIG)
            break;
        cap *= 2;
        char *n2 = realloc(out, cap);
        if (!n2)
            break;
        out = n2;
    }
    free(out);
    iconv_close(cd);
    return v;
}

int httpc_sink_body(httpc_sink *s, int head, json_t **body) {
    const httpc_call *c = s->c;
    const char *ct = content_type(s);
    *body = NULL;
    if (s->w) {
        *body = c->api->blob_finish(s->w);
        s->w = NULL;
        return *body ? 0
                     : httpc_fail(c, FERRY_EIO, 0,
                                  "could not store the response body in a "
                                  "blob");
    }
    if (head || (!s->len && s->r->as != AS_BLOB && s->r->as != AS_TEXT)) {
        *body = json_null();
        return 0;
    }
    enum httpc_kind k = s->r->as == AS_JSON   ? HTTPC_KIND_JSON
                        : s->r->as == AS_TEXT ? HTTPC_KIND_TEXT
                        : s->r->as == AS_BLOB ? HTTPC_KIND_BLOB
                                              : httpc_body_kind(ct);
    if (k == HTTPC_KIND_JSON) {
        json_error_t e;
        *body = json_loadb(s->buf, s->len, JSON_DECODE_ANY, &e);
        if (*body)
            return 0;
        if (s->r->as == AS_JSON)
            return httpc_fail(c, FERRY_EPARSE, 0,
                              "the response body is not JSON (line %d, "
                              "column %d: %s)",
                              e.line, e.column, e.text);
        c->api->log(c->ctx, FERRY_LOG_WARN, NULL,
                    "the response says %s but its body is not JSON (%s); "
                    "it is returned as text",
                    ct ? ct : "JSON", e.text);
        k = HTTPC_KIND_TEXT;
    }
    if (k == HTTPC_KIND_TEXT) {
        char cs[64];
        charset_of(ct, cs, sizeof(cs));
        *body = text_value(s->buf, s->len, cs);
        if (*body)
            return 0;
        if (s->r->as == AS_TEXT)
            return httpc_fail(c, FERRY_EPARSE, 0,
                              "the response body is not text in charset %s",
                              *cs ? cs : "UTF-8");
    }
    *body = c->api->blob_from(c->ctx, s->buf ? s->buf : "", s->len,
                              ct && *ct ? ct : "application/octet-stream");
    return *body ? 0
                 : httpc_fail(c, FERRY_EIO, 0,
                              "could not store the response body in a blob");
}
