/*
 * Pure helpers of the dropbox component (dbxutil.h).
 */
#include "dbxutil.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Decodes one UTF-8 sequence at s (strict: no overlongs, no surrogates,
 * nothing above U+10FFFF). Returns its length and sets *cp, or 0. */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp) {
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t n;
    uint32_t c, min;
    if ((s[0] & 0xE0) == 0xC0) {
        n = 2;
        c = s[0] & 0x1F;
        min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 3;
        c = s[0] & 0x0F;
        min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 4;
        c = s[0] & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0; /* also stops at the NUL */
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

char *dbx_header_json(const char *json) {
    const unsigned char *s = (const unsigned char *)json;
    size_t len = strlen(json);
    /* At most 12 output bytes ("\uXXXX\uXXXX") per 4 input bytes, 6 per
     * single byte (0x7F). */
    if (len > (SIZE_MAX - 1) / 6)
        return NULL;
    char *out = malloc(len * 6 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        if (s[i] < 0x7F) {
            *o++ = (char)s[i++];
            continue;
        }
        uint32_t cp;
        size_t n = utf8_decode(s + i, &cp);
        if (!n) {
            free(out);
            return NULL;
        }
        i += n;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            o += sprintf(o, "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                         0xDC00 + (cp & 0x3FF));
        } else {
            o += sprintf(o, "\\u%04x", cp);
        }
    }
    *o = 0;
    return out;
}

int dbx_content_hash(const void *data, size_t len, char hex[65]) {
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *all = EVP_MD_CTX_new();
    int ok = all && EVP_DigestInit_ex(all, EVP_sha256(), NULL) == 1;
    for (size_t off = 0; ok && off < len; off += DBX_HASH_BLOCK) {
        size_t n = len - off < DBX_HASH_BLOCK ? len - off : DBX_HASH_BLOCK;
        ok = EVP_Digest(p + off, n, md, &mdlen, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(all, md, mdlen) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(all, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(all);
    if (!ok)
        return -1;
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = 0;
    return 0;
}

int dbx_parse_size(const json_t *v, uint64_t *out) {
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return -1;
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    static const struct {
        const char *unit;
        uint64_t f;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KiB", 1024},
                 {"MiB", 1024 * 1024},
                 {"GiB", 1024 * 1024 * 1024},
                 {"KB", 1000},
                 {"MB", 1000 * 1000},
                 {"GB", 1000 * 1000 * 1000}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit))
            continue;
        if (n > UINT64_MAX / units[i].f)
            return -1;
        *out = n * units[i].f;
        return 0;
    }
    return -1;
}

int dbx_parse_duration(const json_t *v, uint64_t *ms) {
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return -1;
        *ms = (uint64_t)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    uint64_t f = !*end                ? 1
                 : !strcmp(end, "ms") ? 1
                 : !strcmp(end, "s")  ? 1000
                 : !strcmp(end, "m")  ? 60000
                 : !strcmp(end, "h")  ? 3600000
                                      : 0;
    if (!f || n > UINT64_MAX / f)
        return -1;
    *ms = n * f;
    return 0;
}

int64_t dbx_parse_time(const char *s) {
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!s)
        return -1;
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end)
        return -1;
    return (int64_t)timegm(&tm);
}

int dbx_folder(const char *path, char *out, size_t n) {
    size_t len = strlen(path);
    while (len && path[len - 1] == '/')
        len--;
    if (len && path[0] != '/')
        return -1;
    if (len >= n)
        return -1;
    memcpy(out, path, len);
    out[len] = 0;
    return 0;
}

const char *dbx_relative(const char *folder, const char *path) {
    size_t parts = 0;
    for (const char *p = folder; *p; p++)
        parts += *p == '/';
    if (path[0] != '/')
        return NULL;
    const char *p = path;
    for (size_t i = 0; i < parts; i++) {
        p = strchr(p + 1, '/');
        if (!p)
            return NULL;
    }
    return p[1] ? p + 1 : NULL;
}

int dbx_hidden(const char *relative) {
    for (const char *p = relative; p; p = strchr(p, '/')) {
        if (*p == '/')
            p++;
        if (*p == '.')
            return 1;
    }
    return 0;
}
