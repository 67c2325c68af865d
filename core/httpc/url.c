/*
 * URLs: what may be shown of one (redaction), whether two share an origin
 * (credentials go to one origin only), and percent-encoding for queries
 * and forms. Parsing is libcurl's URL API, the same parser the transfer
 * uses, so that "same origin" here means what libcurl will connect to.
 */
#include "httpc.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Query parameters whose values are credentials often enough that they
 * are never shown, whatever connection the request uses. */
static const char *const secret_params[] = {"access_token",
                                            "refresh_token",
                                            "id_token",
                                            "token",
                                            "api_key",
                                            "apikey",
                                            "api-key",
                                            "key",
                                            "secret",
                                            "client_secret",
                                            "password",
                                            "passwd",
                                            "pwd",
                                            "signature",
                                            "sig",
                                            "auth",
                                            "authorization",
                                            "x-amz-signature",
                                            "x-amz-credential",
                                            "x-amz-security-token",
                                            "x-goog-signature",
                                            "x-goog-credential",
                                            NULL};

static int hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX and '+' of name[0..len) into out (at most outlen - 1 bytes;
 * longer names are cut, which only matters for names no list holds). */
static void decode_name(const char *name, size_t len, char *out,
                        size_t outlen) {
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < outlen; i++) {
        int hi, lo;
        if (name[i] == '%' && i + 2 < len && (hi = hexval(name[i + 1])) >= 0 &&
            (lo = hexval(name[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = name[i] == '+' ? ' ' : name[i];
        }
    }
    out[o] = 0;
}

static int is_secret(const char *name, size_t len, const char *param) {
    char dec[128];
    decode_name(name, len, dec, sizeof(dec));
    if (param && *param && !strcasecmp(dec, param))
        return 1;
    for (int i = 0; secret_params[i]; i++)
        if (!strcasecmp(dec, secret_params[i]))
            return 1;
    return 0;
}

/* The query q with secret values replaced. Returns malloc'd or NULL. */
static char *redact_query(const char *q, const char *param) {
    size_t n = strlen(q);
    /* Each pair grows by at most strlen("=REDACTED"). */
    size_t cap = n + 1, pairs = 1;
    for (const char *p = q; *p; p++)
        pairs += *p == '&';
    cap += pairs * 9;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    const char *p = q;
    for (;;) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t nlen = eq ? (size_t)(eq - p) : plen;
        if (eq && is_secret(p, nlen, param)) {
            memcpy(out + o, p, nlen);
            o += nlen;
            memcpy(out + o, "=REDACTED", 9);
            o += 9;
        } else {
            memcpy(out + o, p, plen);
            o += plen;
        }
        if (!amp)
            break;
        out[o++] = '&';
        p = amp + 1;
    }
    out[o] = 0;
    return out;
}

char *httpc_redact_url(const char *url, const char *param) {
    CURLU *u = curl_url();
    if (!u)
        return NULL;
    char *out = NULL, *q = NULL;
    if (!url || curl_url_set(u, CURLUPART_URL, url,
                             CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS)) {
        curl_url_cleanup(u);
        return strdup("(invalid URL)");
    }
    curl_url_set(u, CURLUPART_USER, NULL, 0);
    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
    curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    if (!curl_url_get(u, CURLUPART_QUERY, &q, 0) && q) {
        char *r = redact_query(q, param);
        curl_free(q);
        if (!r) {
            curl_url_cleanup(u);
            return NULL;
        }
        curl_url_set(u, CURLUPART_QUERY, r, 0);
        free(r);
    }
    char *s = NULL;
    if (!curl_url_get(u, CURLUPART_URL, &s, 0) && s) {
        out = strdup(s);
        curl_free(s);
    } else {
        out = strdup("(invalid URL)");
    }
    curl_url_cleanup(u);
    return out;
}

/* scheme://host:port of url into buf; -1 if it does not parse. */
static int origin_of(const char *url, char *buf, size_t n) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (u && url && !curl_url_set(u, CURLUPART_URL, url, 0) &&
        !curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) &&
        !curl_url_get(u, CURLUPART_HOST, &host, 0) &&
        !curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)) {
        for (char *p = scheme; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        for (char *p = host; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        int w = snprintf(buf, n, "%s://%s:%s", scheme, host, port);
        rc = w > 0 && (size_t)w < n ? 0 : -1;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

int httpc_same_origin(const char *a, const char *b) {
    char oa[1024], ob[1024];
    if (origin_of(a, oa, sizeof(oa)) || origin_of(b, ob, sizeof(ob)))
        return 0;
    return strcmp(oa, ob) == 0;
}

char *httpc_urlencode(const char *s, size_t len, int plus) {
    static const char hex[] = "0123456789ABCDEF";
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            out[o++] = (char)c;
        } else if (c == ' ' && plus) {
            out[o++] = '+';
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
    return out;
}
