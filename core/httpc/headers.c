/*
 * Reading responses: header lines into a JSON object, Retry-After, and what
 * a Content-Type says about how to read the body. No I/O here.
 */
#include "httpc.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define YEAR_S (365LL * 24 * 3600)

static int is_ows(char c) {
    return c == ' ' || c == '\t';
}

static int is_tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

int httpc_parse_retry_after(const char *value, time_t now, int64_t *ms) {
    if (!value)
        return -1;
    while (is_ows(*value))
        value++;
    size_t n = strlen(value);
    while (n && is_ows(value[n - 1]))
        n--;
    if (!n)
        return -1;
    int digits = 1;
    for (size_t i = 0; i < n; i++)
        if (value[i] < '0' || value[i] > '9')
            digits = 0;
    long long s = 0;
    if (digits) {
        for (size_t i = 0; i < n && s <= YEAR_S; i++)
            s = s * 10 + (value[i] - '0');
    } else {
        char buf[128];
        if (n >= sizeof(buf))
            return -1;
        memcpy(buf, value, n);
        buf[n] = 0;
        time_t t = curl_getdate(buf, NULL);
        if (t == (time_t)-1)
            return -1;
        s = t > now ? (long long)(t - now) : 0;
    }
    if (s > YEAR_S)
        s = YEAR_S;
    *ms = (int64_t)s * 1000;
    return 0;
}

/* A JSON string of header bytes: as they are when they are UTF-8, else
 * read as ISO-8859-1 (what RFC 9110 says obs-text historically was). */
static json_t *header_string(const char *v, size_t n) {
    json_t *s = json_stringn(v, n);
    if (s || n > 8192)
        return s;
    char buf[2 * 8192];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x80) {
            buf[o++] = (char)c;
        } else {
            buf[o++] = (char)(0xC0 | (c >> 6));
            buf[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    return json_stringn(buf, o);
}

/* Appends sep and v to the string s; returns the new string (new ref) or
 * NULL. */
static json_t *joined(const json_t *s, const char *sep, json_t *v) {
    const char *a = json_string_value(s), *b = json_string_value(v);
    size_t na = json_string_length(s), nb = json_string_length(v),
           ns = strlen(sep);
    char *t = malloc(na + ns + nb + 1);
    if (!t)
        return NULL;
    memcpy(t, a, na);
    memcpy(t + na, sep, ns);
    memcpy(t + na + ns, b, nb);
    json_t *r = json_stringn(t, na + ns + nb);
    free(t);
    return r;
}

int httpc_header_line(json_t *headers, const char *line, size_t len, char *last,
                      long *status) {
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
        json_object_clear(headers);
        last[0] = 0;
        const char *sp = memchr(line, ' ', len);
        long code = 0;
        if (sp)
            for (const char *p = sp + 1;
                 p < line + len && *p >= '0' && *p <= '9' && code < 1000; p++)
                code = code * 10 + (*p - '0');
        if (status)
            *status = code;
        return 1;
    }
    if (!len)
        return 2;
    if (is_ows(line[0])) {
        /* Obsolete line folding: more of the previous header's value. */
        json_t *prev = last[0] ? json_object_get(headers, last) : NULL;
        size_t b = 0;
        while (b < len && is_ows(line[b]))
            b++;
        if (!prev)
            return -1;
        json_t *more = header_string(line + b, len - b);
        if (!more)
            return -1;
        if (json_is_array(prev)) {
            size_t i = json_array_size(prev) - 1;
            json_array_set_new(prev, i,
                               joined(json_array_get(prev, i), " ", more));
        } else {
            json_object_set_new(headers, last, joined(prev, " ", more));
        }
        json_decref(more);
        return 0;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line || (size_t)(colon - line) > 255)
        return -1;
    char name[256];
    size_t nl = (size_t)(colon - line);
    for (size_t i = 0; i < nl; i++) {
        unsigned char c = (unsigned char)line[i];
        if (!is_tchar(c))
            return -1;
        name[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    name[nl] = 0;
    const char *v = colon + 1, *end = line + len;
    while (v < end && is_ows(*v))
        v++;
    while (end > v && is_ows(end[-1]))
        end--;
    json_t *val = header_string(v, (size_t)(end - v));
    if (!val)
        return -1;
    json_t *prev = json_object_get(headers, name);
    if (!strcmp(name, "set-cookie")) {
        if (!prev) {
            prev = json_array();
            json_object_set_new(headers, name, prev);
        }
        json_array_append_new(prev, val);
    } else if (prev) {
        json_object_set_new(headers, name, joined(prev, ", ", val));
        json_decref(val);
    } else {
        json_object_set_new(headers, name, val);
    }
    memcpy(last, name, nl + 1);
    return 0;
}

enum httpc_kind httpc_body_kind(const char *content_type) {
    if (!content_type)
        return HTTPC_KIND_BLOB;
    while (is_ows(*content_type))
        content_type++;
    size_t n = strcspn(content_type, ";");
    while (n && is_ows(content_type[n - 1]))
        n--;
    char t[256];
    if (n >= sizeof(t))
        return HTTPC_KIND_BLOB;
    for (size_t i = 0; i < n; i++)
        t[i] = (char)(content_type[i] >= 'A' && content_type[i] <= 'Z'
                          ? content_type[i] + 32
                          : content_type[i]);
    t[n] = 0;
    if (!strcmp(t, "application/json") ||
        (n > 5 && !strcmp(t + n - 5, "+json") && strchr(t, '/')))
        return HTTPC_KIND_JSON;
    if (!strncmp(t, "text/", 5) && n > 5)
        return HTTPC_KIND_TEXT;
    if (!strcmp(t, "application/xml") ||
        !strcmp(t, "application/x-www-form-urlencoded") ||
        (n > 4 && !strcmp(t + n - 4, "+xml") && strchr(t, '/')))
        return HTTPC_KIND_TEXT;
    return HTTPC_KIND_BLOB;
}
