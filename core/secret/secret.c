/*
 * The master key and AES-256-GCM values (secret.h).
 */
#include "secret.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NONCE_LEN 12
#define TAG_LEN 16

static int fail(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    if (err && n) {
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void fingerprint(secret_key *k) {
    static const char label[] = "ferry master key";
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
        EVP_DigestUpdate(c, label, sizeof(label) - 1) &&
        EVP_DigestUpdate(c, k->key, SECRET_KEY_LEN) &&
        EVP_DigestFinal_ex(c, md, &mdlen)) {
        for (int i = 0; i < 8; i++)
            snprintf(k->id + 2 * i, 3, "%02x", md[i]);
    } else {
        snprintf(k->id, sizeof(k->id), "0000000000000000");
    }
    EVP_MD_CTX_free(c);
}

static int hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Base64 (standard or URL alphabet, padding optional) into out; returns the
 * length or -1. */
static long b64_decode(const char *s, size_t len, unsigned char *out,
                       size_t cap) {
    char *t = malloc(len + 4);
    if (!t)
        return -1;
    size_t m = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        if (c == '=')
            break;
        if (!isalnum((unsigned char)c) && c != '+' && c != '/') {
            free(t);
            return -1;
        }
        t[m++] = c;
    }
    size_t pad = (4 - m % 4) % 4;
    if (pad == 3) {
        free(t);
        return -1;
    }
    for (size_t i = 0; i < pad; i++)
        t[m++] = '=';
    if (m / 4 * 3 > cap) {
        free(t);
        return -1;
    }
    int n = EVP_DecodeBlock(out, (unsigned char *)t, (int)m);
    free(t);
    return n < 0 ? -1 : (long)(n - (int)pad);
}

/* Base64url without padding; malloc'd. */
static char *b64url(const unsigned char *in, size_t len) {
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = 0;
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

int secret_key_parse(const char *text, secret_key *k, char *err, size_t n) {
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len && isspace((unsigned char)text[len - 1]))
        len--;
    memset(k, 0, sizeof(*k));
    int hex = len == 2 * SECRET_KEY_LEN;
    for (size_t i = 0; hex && i < len; i++)
        hex = hexval((unsigned char)text[i]) >= 0;
    if (hex) {
        for (size_t i = 0; i < SECRET_KEY_LEN; i++)
            k->key[i] =
                (unsigned char)(hexval((unsigned char)text[2 * i]) * 16 +
                                hexval((unsigned char)text[2 * i + 1]));
    } else {
        unsigned char buf[SECRET_KEY_LEN + 3];
        long got = b64_decode(text, len, buf, sizeof(buf));
        if (got != SECRET_KEY_LEN)
            return fail(err, n,
                        "expected 32 bytes written as 64 hex digits or in "
                        "base64 (generate one with `ferry secrets "
                        "generate-key`)");
        memcpy(k->key, buf, SECRET_KEY_LEN);
    }
    fingerprint(k);
    return 0;
}

int secret_key_load(const char *env_value, const char *file, secret_key *k,
                    char *err, size_t n) {
    char why[256];
    if (env_value && *env_value) {
        if (secret_key_parse(env_value, k, why, sizeof(why)))
            return fail(err, n, "FERRY_MASTER_KEY: %s", why);
        return 1;
    }
    if (!file || !*file)
        return 0;
    struct stat sb;
    FILE *f = fopen(file, "r");
    if (!f)
        return fail(err, n, "master key file %s: %s", file, strerror(errno));
    if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077)) {
        fclose(f);
        return fail(err, n,
                    "master key file %s: readable by others (mode %03o); "
                    "chmod 600 it",
                    file, (unsigned)(sb.st_mode & 0777));
    }
    char buf[512];
    size_t got = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[got] = 0;
    int rc = secret_key_parse(buf, k, why, sizeof(why));
    memset(buf, 0, sizeof(buf));
    if (rc)
        return fail(err, n, "master key file %s: %s", file, why);
    return 1;
}

int secret_key_generate(char hex[65]) {
    unsigned char key[SECRET_KEY_LEN];
    if (RAND_bytes(key, sizeof(key)) != 1)
        return -1;
    for (int i = 0; i < SECRET_KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    memset(key, 0, sizeof(key));
    return 0;
}

char *secret_encrypt(const secret_key *k, const char *aad, const void *pt,
                     size_t len) {
    unsigned char *buf = malloc(NONCE_LEN + len + TAG_LEN);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    char *out = NULL, *enc = NULL;
    int outl = 0, fin = 0;
    if (!buf || !c || RAND_bytes(buf, NONCE_LEN) != 1 ||
        !EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, k->key, buf) ||
        (aad && *aad &&
         !EVP_EncryptUpdate(c, NULL, &outl, (const unsigned char *)aad,
                            (int)strlen(aad))) ||
        !EVP_EncryptUpdate(c, buf + NONCE_LEN, &outl, pt, (int)len) ||
        !EVP_EncryptFinal_ex(c, buf + NONCE_LEN + outl, &fin) ||
        !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
                             buf + NONCE_LEN + outl + fin))
        goto done;
    enc = b64url(buf, NONCE_LEN + (size_t)outl + (size_t)fin + TAG_LEN);
    if (enc && asprintf(&out, SECRET_PREFIX "%s:%s", k->id, enc) < 0)
        out = NULL;
done:
    EVP_CIPHER_CTX_free(c);
    free(buf);
    free(enc);
    return out;
}

int secret_is_encrypted(const char *text) {
    char id[17];
    return text && secret_key_id_of(text, id) == 0;
}

int secret_key_id_of(const char *text, char id[17]) {
    size_t pl = strlen(SECRET_PREFIX);
    if (!text || strncmp(text, SECRET_PREFIX, pl))
        return -1;
    const char *p = text + pl;
    for (int i = 0; i < 16; i++)
        if (hexval((unsigned char)p[i]) < 0)
            return -1;
    if (p[16] != ':')
        return -1;
    memcpy(id, p, 16);
    id[16] = 0;
    return 0;
}

int secret_decrypt(const secret_key *k, const char *aad, const char *text,
                   char **out, size_t *len, char *err, size_t n) {
    char id[17];
    *out = NULL;
    if (secret_key_id_of(text, id))
        return fail(err, n, "not an encrypted value");
    if (strcmp(id, k->id))
        return fail(err, n,
                    "encrypted under master key %s, not under the key given "
                    "(%s)",
                    id, k->id);
    const char *b = text + strlen(SECRET_PREFIX) + 17;
    size_t blen = strlen(b);
    unsigned char *raw = malloc(blen + 4);
    long rl = raw ? b64_decode(b, blen, raw, blen + 4) : -1;
    if (rl < NONCE_LEN + TAG_LEN) {
        free(raw);
        return fail(err, n, "malformed encrypted value");
    }
    size_t ctl = (size_t)rl - NONCE_LEN - TAG_LEN;
    char *pt = malloc(ctl + 1);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0, fin = 0, ok = 0;
    if (pt && c &&
        EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, k->key, raw) &&
        (!aad || !*aad ||
         EVP_DecryptUpdate(c, NULL, &outl, (const unsigned char *)aad,
                           (int)strlen(aad))) &&
        EVP_DecryptUpdate(c, (unsigned char *)pt, &outl, raw + NONCE_LEN,
                          (int)ctl) &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
                            raw + NONCE_LEN + ctl) &&
        EVP_DecryptFinal_ex(c, (unsigned char *)pt + outl, &fin) > 0)
        ok = 1;
    EVP_CIPHER_CTX_free(c);
    free(raw);
    if (!ok) {
        free(pt);
        return fail(err, n,
                    "the encrypted value was altered (or belongs "
                    "elsewhere)");
    }
    pt[outl + fin] = 0;
    *out = pt;
    if (len)
        *len = (size_t)(outl + fin);
    return 0;
}

void secret_fingerprint(const char *value, char out[17]) {
    unsigned char md[32];
    unsigned int len = 0;
    if (!EVP_Digest(value, strlen(value), md, &len, EVP_sha256(), NULL)) {
        snprintf(out, 17, "0000000000000000");
        return;
    }
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}
