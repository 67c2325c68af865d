/* Hex, base64, percent-encoding and UTF-8 checks for the webhook area. */
#include "jtext/jtext.h"
#include "webhook.h"
#include "webhook_internal.h"

#include <openssl/evp.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int webhook_hex_decode(const char *s, size_t len, unsigned char *out,
                       size_t cap, size_t *n) {
    if (len % 2 || len / 2 > cap)
        return -1;
    for (size_t i = 0; i < len; i += 2) {
        int hi = hexval((unsigned char)s[i]),
            lo = hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    *n = len / 2;
    return 0;
}

static int b64val(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int webhook_b64_decode(const char *s, size_t len, unsigned char *out,
                       size_t cap, size_t *n) {
    size_t pad = 0;
    if (len % 4 == 0 && len >= 2 && s[len - 1] == '=')
        pad = s[len - 2] == '=' ? 2 : 1;
    size_t data = len - pad; /* characters carrying bits */
    if (data % 4 == 1)
        return -1;
    size_t total = data / 4 * 3 + (data % 4 ? data % 4 - 1 : 0);
    if (total > cap)
        return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < data; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero, or two encodings would decode alike. */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    *n = o;
    return 0;
}

char *webhook_b64_encode(const void *data, size_t len) {
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[v >> 12 & 63];
        *o++ = tab[v >> 6 & 63];
        *o++ = tab[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        *o++ = tab[v >> 18];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < len ? tab[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

char *webhook_pct_decode(const char *s, size_t len, int plus_is_space,
                         size_t *outlen) {
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len &&
            (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)s[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '+' && plus_is_space) {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

int webhook_query_get(const char *query, const char *name, char **out,
                      size_t *outlen) {
    if (!query)
        return 0;
    size_t nlen = strlen(name);
    const char *p = query;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        size_t dk;
        char *key = webhook_pct_decode(p, klen, 1, &dk);
        if (!key)
            return -1;
        int match = dk == nlen && memcmp(key, name, nlen) == 0;
        free(key);
        if (match) {
            const char *v = eq ? eq + 1 : p + plen;
            *out = webhook_pct_decode(v, (size_t)(p + plen - v), 1, outlen);
            return *out ? 1 : -1;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

int webhook_utf8_valid(const unsigned char *s, size_t len) {
    for (size_t i = 0; i < len;) {
        size_t n = jtext_utf8_len(s + i, len - i);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}

json_t *webhook_json_text(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    if (webhook_utf8_valid(u, len))
        return json_stringn(s, len);
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    /* Each bad byte becomes the 3 bytes of U+FFFD. */
    char *fixed = malloc(len * 3 + 1);
    if (!fixed)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = jtext_utf8_len(u + i, len - i);
        if (n) {
            memcpy(fixed + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(fixed + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    json_t *j = json_stringn(fixed, o);
    free(fixed);
    return j;
}

int webhook_ieq(const char *s, size_t len, const char *lit) {
    size_t n = strlen(lit);
    if (n != len)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)lit[i];
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (unsigned char)(b - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

int webhook_stdwh_sign(const char *secret, const char *id, long long ts,
                       const void *body, size_t len, char *out, size_t n) {
    if (!secret || strncmp(secret, "whsec_", 6) || !id || strchr(id, '.'))
        return -1;
    unsigned char key[128];
    size_t klen = 0;
    if (webhook_b64_decode(secret + 6, strlen(secret + 6), key, sizeof(key),
                           &klen))
        return -1;
    char head[256];
    int hl = snprintf(head, sizeof(head), "%s.%lld.", id, ts);
    if (hl < 0 || (size_t)hl >= sizeof(head))
        return -1;
    unsigned char md[32];
    size_t mdlen = 0;
    unsigned char *msg = malloc((size_t)hl + len + 1);
    if (!msg)
        return -1;
    memcpy(msg, head, (size_t)hl);
    memcpy(msg + hl, body, len);
    unsigned char *r = EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen,
                                 msg, (size_t)hl + len, md, sizeof(md), &mdlen);
    free(msg);
    memset(key, 0, sizeof(key));
    if (!r)
        return -1;
    char *b64 = webhook_b64_encode(md, mdlen);
    if (!b64)
        return -1;
    int w = snprintf(out, n, "v1,%s", b64);
    free(b64);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}
