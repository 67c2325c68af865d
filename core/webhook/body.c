/*
 * webhook_parse_body: a request body as JSON for the trigger payload.
 * Every parser here takes bytes from anyone: lengths are checked before
 * every read, nothing assumes a NUL, and error messages quote no data from
 * the body.
 */
#include "jtext/jtext.h"
#include "webhook.h"
#include "webhook_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BOUNDARY 70 /* RFC 2046 section 5.1.1 */

static json_t *body_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *body_err(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

static int is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ---- header values: "type/subtype; a=b; c=\"d\"" ---- */

/* The parameter name of a header value s[0..len), unquoted into a new
 * string. Returns 1 with *out malloc'd (and *outlen), 0 if absent, -1 if
 * out of memory. The first parameter of that name wins. */
static int param(const char *s, size_t len, const char *name, char **out,
                 size_t *outlen) {
    size_t i = 0;
    /* skip the type: up to the first ';' */
    while (i < len && s[i] != ';')
        i++;
    while (i < len) {
        while (i < len && (is_ws(s[i]) || s[i] == ';'))
            i++;
        size_t k0 = i;
        while (i < len && s[i] != '=' && s[i] != ';' && !is_ws(s[i]))
            i++;
        size_t k1 = i;
        while (i < len && is_ws(s[i]))
            i++;
        if (i == len || s[i] != '=')
            continue; /* a parameter without a value */
        i++;
        while (i < len && is_ws(s[i]))
            i++;
        char *v = malloc(len - i + 1);
        if (!v)
            return -1;
        size_t n = 0;
        if (i < len && s[i] == '"') {
            for (i++; i < len && s[i] != '"'; i++) {
                if (s[i] == '\\' && i + 1 < len)
                    i++;
                v[n++] = s[i];
            }
            if (i < len)
                i++; /* closing quote */
        } else {
            while (i < len && s[i] != ';' && !is_ws(s[i]))
                v[n++] = s[i++];
        }
        v[n] = '\0';
        if (webhook_ieq(s + k0, k1 - k0, name)) {
            *out = v;
            *outlen = n;
            return 1;
        }
        free(v);
    }
    return 0;
}

/* The media type of a header value, as pointer and length (no
 * parameters, no surrounding blanks). */
static const char *media_type(const char *s, size_t len, size_t *tlen) {
    size_t i = 0;
    while (i < len && is_ws(s[i]))
        i++;
    size_t e = i;
    while (e < len && s[e] != ';')
        e++;
    while (e > i && is_ws(s[e - 1]))
        e--;
    *tlen = e - i;
    return s + i;
}

static int ends_with(const char *s, size_t len, const char *suffix) {
    size_t n = strlen(suffix);
    return len >= n && webhook_ieq(s + len - n, n, suffix);
}

static int is_json_type(const char *t, size_t n) {
    return webhook_ieq(t, n, "application/json") || ends_with(t, n, "+json");
}

static int is_xml_type(const char *t, size_t n) {
    return webhook_ieq(t, n, "text/xml") ||
           webhook_ieq(t, n, "application/xml") || ends_with(t, n, "+xml");
}

/* ---- application/json ---- */

static json_t *parse_json(const void *body, size_t len, char *err,
                          size_t errlen) {
    json_error_t je;
    json_t *j = jtext_load(body, len, JSON_DECODE_ANY, &je);
    if (!j)
        /* je.text may quote the body; say only where it went wrong. */
        return body_err(err, errlen,
                        "body is not valid JSON (line %d, column %d)", je.line,
                        je.column);
    return j;
}

/* ---- application/x-www-form-urlencoded ---- */

/* Adds value under key, turning a repeated key into an array. Steals
 * value. */
static int form_add(json_t *obj, const char *key, size_t klen, json_t *value) {
    json_t *cur = json_object_getn(obj, key, klen);
    if (!cur)
        return json_object_setn_new(obj, key, klen, value);
    if (json_is_array(cur))
        return json_array_append_new(cur, value);
    json_t *arr = json_array();
    if (!arr || json_array_append(arr, cur) ||
        json_array_append_new(arr, value)) {
        json_decref(arr);
        return -1;
    }
    return json_object_setn_new(obj, key, klen, arr);
}

static json_t *parse_form(const char *s, size_t len, char *err, size_t errlen) {
    json_t *obj = json_object();
    size_t fields = 0;
    if (!obj)
        return body_err(err, errlen, "out of memory");
    for (size_t i = 0; i < len;) {
        const char *amp = memchr(s + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - s) : len;
        if (end > i) {
            if (++fields > WEBHOOK_MAX_FORM_FIELDS) {
                json_decref(obj);
                return body_err(err, errlen,
                                "form body has more than %d "
                                "fields",
                                WEBHOOK_MAX_FORM_FIELDS);
            }
            const char *eq = memchr(s + i, '=', end - i);
            size_t kend = eq ? (size_t)(eq - s) : end;
            size_t vstart = eq ? kend + 1 : end;
            size_t kl, vl;
            char *k = webhook_pct_decode(s + i, kend - i, 1, &kl);
            char *v = webhook_pct_decode(s + vstart, end - vstart, 1, &vl);
            json_t *kj = k ? webhook_json_text(k, kl) : NULL;
            json_t *vj = v ? webhook_json_text(v, vl) : NULL;
            free(k);
            free(v);
            int rc = -1;
            if (kj && vj) {
                rc = form_add(obj, json_string_value(kj),
                              json_string_length(kj), vj);
                vj = NULL; /* stolen */
            }
            json_decref(kj);
            json_decref(vj);
            if (rc) {
                json_decref(obj);
                return body_err(err, errlen, "out of memory");
            }
        }
        i = end + 1;
    }
    return obj;
}

/* ---- multipart/form-data (RFC 7578, framing from RFC 2046) ---- */

typedef struct part_headers {
    const char *disp, *type; /* values, NULL if absent */
    size_t disp_len, type_len;
} part_headers;

/* Reads the header block s[0..len) (lines ending in CRLF). A line that
 * starts with a blank continues the previous header (obsolete folding);
 * lines without a ':' are skipped. */
static void read_headers(const char *s, size_t len, part_headers *h) {
    const char **cur = NULL;
    size_t *cur_len = NULL;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(s + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - s) : len, next = nl ? end + 1 : len;
        if (end > i && s[end - 1] == '\r')
            end--;
        if (end > i && (s[i] == ' ' || s[i] == '\t')) {
            if (cur)
                *cur_len = (size_t)(s + end - *cur);
        } else {
            const char *colon = memchr(s + i, ':', end - i);
            cur = NULL;
            if (colon) {
                size_t nlen = (size_t)(colon - (s + i));
                while (nlen &&
                       (s[i + nlen - 1] == ' ' || s[i + nlen - 1] == '\t'))
                    nlen--;
                if (webhook_ieq(s + i, nlen, "content-disposition"))
                    cur = &h->disp, cur_len = &h->disp_len;
                else if (webhook_ieq(s + i, nlen, "content-type"))
                    cur = &h->type, cur_len = &h->type_len;
                /* The first of a repeated header wins. */
                if (cur && *cur)
                    cur = NULL;
                if (cur) {
                    *cur = colon + 1;
                    *cur_len = (size_t)(s + end - *cur);
                }
            }
        }
        i = next;
    }
    /* trim the values */
    const char **vals[2] = {&h->disp, &h->type};
    size_t *lens[2] = {&h->disp_len, &h->type_len};
    for (int k = 0; k < 2; k++) {
        if (!*vals[k])
            continue;
        while (*lens[k] && is_ws(**vals[k]))
            (*vals[k])++, (*lens[k])--;
        while (*lens[k] && is_ws((*vals[k])[*lens[k] - 1]))
            (*lens[k])--;
    }
}

static int is_text_type(const char *t, size_t n) {
    return (n >= 5 && webhook_ieq(t, 5, "text/")) || is_json_type(t, n) ||
           is_xml_type(t, n) ||
           webhook_ieq(t, n, "application/x-www-form-urlencoded");
}

/* A string for an optional parameter value: null when absent. */
static json_t *opt_text(const char *s, size_t len) {
    return s ? webhook_json_text(s, len) : json_null();
}

/* "UTF-8''caf%C3%A9" (RFC 5987) to its decoded value; NULL if not in that
 * form or out of memory. */
static char *ext_value(const char *s, size_t len, size_t *outlen) {
    if (len < 7 || !webhook_ieq(s, 7, "utf-8''"))
        return NULL;
    return webhook_pct_decode(s + 7, len - 7, 0, outlen);
}

static json_t *make_part(const part_headers *h, const char *body, size_t len) {
    char *name = NULL, *filename = NULL, *filename_ext = NULL, *ext = NULL;
    size_t name_len = 0, filename_len = 0, ext_len = 0, xl = 0;
    json_t *part = NULL;
    if (h->disp &&
        (param(h->disp, h->disp_len, "name", &name, &name_len) < 0 ||
         param(h->disp, h->disp_len, "filename", &filename, &filename_len) <
             0 ||
         param(h->disp, h->disp_len, "filename*", &ext, &ext_len) < 0))
        goto out;
    if (ext && (filename_ext = ext_value(ext, ext_len, &xl))) {
        free(filename);
        filename = filename_ext;
        filename_len = xl;
    }
    size_t tlen = 0;
    const char *t = h->type ? media_type(h->type, h->type_len, &tlen) : NULL;
    int text = t ? is_text_type(t, tlen) : !filename;
    if (text)
        text = !memchr(body, '\0', len) &&
               webhook_utf8_valid((const unsigned char *)body, len);
    json_t *b;
    if (text) {
        b = json_stringn(body, len);
    } else {
        char *enc = webhook_b64_encode(body, len);
        b = enc ? json_string(enc) : NULL;
        free(enc);
    }
    part = json_object();
    if (!part || !b) {
        json_decref(b);
        json_decref(part);
        part = NULL;
        goto out;
    }
    /* json_object_set_new takes its value even when it fails. */
    if (json_object_set_new(part, "name", opt_text(name, name_len)) ||
        json_object_set_new(part, "filename",
                            opt_text(filename, filename_len)) ||
        json_object_set_new(part, "content_type",
                            opt_text(h->type, h->type_len)) ||
        json_object_set_new(part, "body", b) ||
        (!text &&
         json_object_set_new(part, "encoding", json_string("base64")))) {
        json_decref(part);
        part = NULL;
    }
out:
    free(name);
    free(filename);
    free(ext);
    return part;
}

static json_t *parse_multipart(const char *ctype, size_t ctlen, const char *s,
                               size_t len, char *err, size_t errlen) {
    char *boundary = NULL;
    size_t blen = 0;
    int rc = param(ctype, ctlen, "boundary", &boundary, &blen);
    if (rc < 0)
        return body_err(err, errlen, "out of memory");
    if (rc == 0)
        return body_err(err, errlen,
                        "multipart/form-data without a boundary parameter");
    int ok = blen >= 1 && blen <= MAX_BOUNDARY && boundary[blen - 1] != ' ';
    for (size_t i = 0; ok && i < blen; i++)
        ok = boundary[i] >= 0x20 && boundary[i] < 0x7f;
    if (!ok) {
        free(boundary);
        return body_err(err, errlen,
                        "multipart boundary is not 1 to 70 printable "
                        "characters");
    }
    /* "\r\n--" + boundary: the delimiter inside the body. */
    char delim[MAX_BOUNDARY + 4];
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, blen);
    size_t dlen = blen + 4;
    free(boundary);

    size_t p;
    if (len >= dlen - 2 && memcmp(s, delim + 2, dlen - 2) == 0) {
        p = dlen - 2;
    } else {
        const char *d = memmem(s, len, delim, dlen);
        if (!d)
            return body_err(err, errlen,
                            "multipart body has no opening "
                            "boundary");
        p = (size_t)(d - s) + dlen;
    }
    json_t *parts = json_array();
    if (!parts)
        return body_err(err, errlen, "out of memory");
    for (;;) {
        /* p is just past a delimiter: "--" closes, else padding, CRLF. */
        if (len - p >= 2 && s[p] == '-' && s[p + 1] == '-')
            return parts; /* the epilogue is ignored */
        while (p < len && (s[p] == ' ' || s[p] == '\t'))
            p++;
        if (len - p < 2 || s[p] != '\r' || s[p + 1] != '\n') {
            json_decref(parts);
            return body_err(err, errlen,
                            len - p < 2 ? "multipart body is cut short "
                                          "(no closing boundary)"
                                        : "multipart boundary line is "
                                          "malformed");
        }
        p += 2;
        if (json_array_size(parts) >= WEBHOOK_MAX_PARTS) {
            json_decref(parts);
            return body_err(err, errlen,
                            "multipart body has more than %d "
                            "parts",
                            WEBHOOK_MAX_PARTS);
        }
        /* headers: up to an empty line */
        part_headers h = {0};
        size_t content;
        if (len - p >= 2 && s[p] == '\r' && s[p + 1] == '\n') {
            content = p + 2;
        } else {
            size_t span = len - p;
            if (span > WEBHOOK_MAX_PART_HEADERS)
                span = WEBHOOK_MAX_PART_HEADERS;
            const char *e = memmem(s + p, span, "\r\n\r\n", 4);
            if (!e) {
                json_decref(parts);
                if (span == WEBHOOK_MAX_PART_HEADERS)
                    return body_err(err, errlen,
                                    "multipart part headers are longer than "
                                    "%d bytes",
                                    WEBHOOK_MAX_PART_HEADERS);
                return body_err(err, errlen,
                                "multipart part headers are cut short");
            }
            read_headers(s + p, (size_t)(e - (s + p)) + 2, &h);
            content = (size_t)(e - s) + 4;
        }
        const char *d = memmem(s + content, len - content, delim, dlen);
        if (!d) {
            json_decref(parts);
            return body_err(err, errlen,
                            "multipart body is cut short (no "
                            "closing boundary)");
        }
        json_t *part = make_part(&h, s + content, (size_t)(d - (s + content)));
        if (!part || json_array_append_new(parts, part)) {
            json_decref(parts);
            return body_err(err, errlen, "out of memory");
        }
        p = (size_t)(d - s) + dlen;
    }
}

json_t *webhook_parse_body(const char *content_type, const void *body,
                           size_t len, char *err, size_t errlen) {
    if (err && errlen)
        err[0] = '\0';
    if (!content_type || (!body && len))
        return NULL;
    if (!body)
        body = "";
    size_t ctlen = strlen(content_type), tlen;
    const char *t = media_type(content_type, ctlen, &tlen);
    if (is_json_type(t, tlen))
        return parse_json(body, len, err, errlen);
    if (webhook_ieq(t, tlen, "application/x-www-form-urlencoded"))
        return parse_form(body, len, err, errlen);
    if (webhook_ieq(t, tlen, "multipart/form-data"))
        return parse_multipart(content_type, ctlen, body, len, err, errlen);
    /* XML (is_xml_type) is the xml component's to parse; other types have
     * no parsed form. */
    return NULL;
}
