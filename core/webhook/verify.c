/*
 * The signature schemes: configuration from a flow's "verify" object and
 * the check of one request. Facts for each scheme (headers, what is MAC'd,
 * how keys are used) follow the vendors' documentation and reference
 * libraries; docs/webhooks.md lists them.
 *
 * Every comparison of secret-derived bytes is CRYPTO_memcmp over equal,
 * public lengths. Keys and passwords that are compared rather than used as
 * MAC keys (api_key, basic) are kept only as SHA-256 digests and compared
 * digest to digest, so their length does not show either.
 */
#include "webhook.h"
#include "webhook_internal.h"

#include <ferry/ferry.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SECRETS 8
#define MAX_MAC 64 /* SHA-512 */
#define DIGEST_LEN 32
#define DEFAULT_TOLERANCE_S 300
#define MAX_TOLERANCE_S 86400
/* Dropbox's challenge is a short random token; a longer one is not
 * Dropbox, and echoing it back would only serve someone else. */
#define MAX_CHALLENGE 1024

typedef enum scheme {
    S_HMAC,
    S_GITHUB,
    S_SLACK,
    S_SHOPIFY,
    S_STRIPE,
    S_STDWH,
    S_DROPBOX,
    S_APIKEY,
    S_BASIC,
} scheme;

/* Per scheme: its name and the fields its configuration may have. */
static const struct scheme_desc {
    const char *name;
    const char *fields[7];
} schemes[] = {
    [S_HMAC] = {"hmac",
                {"scheme", "secret", "header", "algorithm", "encoding",
                 "prefix", NULL}},
    [S_GITHUB] = {"github", {"scheme", "secret", NULL}},
    [S_SLACK] = {"slack", {"scheme", "secret", "tolerance", NULL}},
    [S_SHOPIFY] = {"shopify", {"scheme", "secret", NULL}},
    [S_STRIPE] = {"stripe", {"scheme", "secret", "tolerance", NULL}},
    [S_STDWH] = {"standard-webhooks", {"scheme", "secret", "tolerance", NULL}},
    [S_DROPBOX] = {"dropbox", {"scheme", "secret", NULL}},
    [S_APIKEY] = {"api_key",
                  {"scheme", "secret", "header", "query", "prefix", NULL}},
    [S_BASIC] = {"basic", {"scheme", "user", "password", NULL}},
};
#define NSCHEMES (sizeof(schemes) / sizeof(schemes[0]))

typedef enum encoding { ENC_HEX, ENC_BASE64 } encoding;

typedef struct secret {
    unsigned char *key; /* MAC key, or a SHA-256 digest (api_key, basic) */
    size_t len;
    EVP_MAC_CTX *keyed; /* HMAC with this key set up, copied per request;
                           NULL if it could not be made (then set up per
                           request) */
} secret;

struct webhook_verifier {
    scheme scheme;
    EVP_MAC *mac;       /* HMAC, fetched once */
    const char *digest; /* "SHA256", static */
    size_t mac_len;
    char *header; /* lower case: hmac, api_key */
    char *query;  /* api_key */
    char *prefix; /* hmac, api_key */
    encoding enc;
    int64_t tolerance_s;
    secret secrets[MAX_SECRETS]; /* basic: [0] user, [1] password */
    size_t nsecrets;
};

/* ---- configuration ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A field name from the configuration, fit to quote in a one-line
 * message: printable ASCII only, and short. */
static void printable(char *out, size_t cap, const char *s) {
    size_t o = 0;
    for (; *s && o + 4 < cap; s++)
        out[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    if (*s)
        out[o++] = '.', out[o++] = '.', out[o++] = '.';
    out[o] = '\0';
}

static int add_secret(webhook_verifier *v, const void *key, size_t len) {
    secret *s = &v->secrets[v->nsecrets];
    s->key = malloc(len ? len : 1);
    if (!s->key)
        return -1;
    memcpy(s->key, key, len);
    s->len = len;
    v->nsecrets++;
    return 0;
}

static int add_digest(webhook_verifier *v, const void *data, size_t len) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) ||
        mdlen != DIGEST_LEN)
        return -1;
    int rc = add_secret(v, md, DIGEST_LEN);
    OPENSSL_cleanse(md, sizeof(md));
    return rc;
}

/* Standard Webhooks keys are "whsec_" + base64 of the key bytes. */
static int add_stdwh_secret(webhook_verifier *v, const char *s, size_t len) {
    if (len >= 6 && memcmp(s, "whsec_", 6) == 0)
        s += 6, len -= 6;
    size_t cap = len / 4 * 3 + 3, n = 0;
    unsigned char *key = malloc(cap);
    if (!key)
        return -2;
    int rc = 0;
    if (webhook_b64_decode(s, len, key, cap, &n) || n == 0)
        rc = -1;
    else if (add_secret(v, key, n))
        rc = -2;
    OPENSSL_clear_free(key, cap);
    return rc;
}

static int conf_secrets(webhook_verifier *v, const json_t *conf, char *err,
                        size_t errlen) {
    const json_t *sec = json_object_get(conf, "secret");
    const json_t *one[1] = {sec};
    const json_t *const *list = one;
    size_t n = 1;
    if (!sec) {
        set_err(err, errlen, "secret: missing");
        return -1;
    }
    if (json_is_array(sec)) {
        n = json_array_size(sec);
        list = NULL;
    }
    if (n == 0 || n > MAX_SECRETS) {
        set_err(err, errlen,
                "secret: expected a non-empty string or an array of 1 to %d "
                "of them",
                MAX_SECRETS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *s = list ? list[i] : json_array_get(sec, i);
        if (!json_is_string(s) || json_string_length(s) == 0) {
            set_err(err, errlen,
                    "secret: expected a non-empty string or an array of 1 to "
                    "%d of them",
                    MAX_SECRETS);
            return -1;
        }
        const char *str = json_string_value(s);
        size_t len = json_string_length(s);
        int rc;
        if (v->scheme == S_STDWH)
            rc = add_stdwh_secret(v, str, len);
        else if (v->scheme == S_APIKEY)
            rc = add_digest(v, str, len) ? -2 : 0;
        else
            rc = add_secret(v, str, len) ? -2 : 0;
        if (rc == -1) {
            set_err(err, errlen,
                    "secret: expected \"whsec_\" followed by base64 (the "
                    "signing secret as the sender shows it)");
            return -1;
        }
        if (rc) {
            set_err(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* "5m", "300s", "1h", or a whole number of seconds. */
static int parse_tolerance(const json_t *t, int64_t *out) {
    if (json_is_integer(t)) {
        json_int_t n = json_integer_value(t);
        if (n < 1 || n > MAX_TOLERANCE_S)
            return -1;
        *out = n;
        return 0;
    }
    if (!json_is_string(t))
        return -1;
    const char *s = json_string_value(t);
    int64_t n = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        n = n * 10 + (s[i] - '0');
        if (n > MAX_TOLERANCE_S)
            return -1;
    }
    if (i == 0)
        return -1;
    if (strcmp(s + i, "s") == 0)
        ;
    else if (strcmp(s + i, "m") == 0)
        n *= 60;
    else if (strcmp(s + i, "h") == 0)
        n *= 3600;
    else
        return -1;
    if (n < 1 || n > MAX_TOLERANCE_S)
        return -1;
    *out = n;
    return 0;
}

static int is_tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A header name, lower-cased into a new string; NULL if not a token. */
static char *header_name(const json_t *h) {
    if (!json_is_string(h) || json_string_length(h) == 0 ||
        json_string_length(h) > 256 ||
        strlen(json_string_value(h)) != json_string_length(h))
        return NULL;
    char *s = strdup(json_string_value(h));
    if (!s)
        return NULL;
    for (char *p = s; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
        if (!is_tchar((unsigned char)*p)) {
            free(s);
            return NULL;
        }
    }
    return s;
}

static int conf_mac(webhook_verifier *v, const char *digest, size_t mac_len,
                    char *err, size_t errlen) {
    v->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!v->mac) {
        set_err(err, errlen, "HMAC is not available from OpenSSL");
        return -1;
    }
    v->digest = digest;
    v->mac_len = mac_len;
    return 0;
}

static int conf_hmac(webhook_verifier *v, const json_t *conf, char *err,
                     size_t errlen) {
    const json_t *h = json_object_get(conf, "header");
    if (!(v->header = header_name(h))) {
        set_err(err, errlen, "header: %s",
                h ? "expected a header name like \"x-signature\""
                  : "missing (the header that carries the signature)");
        return -1;
    }
    const json_t *a = json_object_get(conf, "algorithm");
    const char *alg = a ? json_string_value(a) : "sha256";
    const char *digest;
    size_t len;
    if (alg && strcmp(alg, "sha1") == 0)
        digest = "SHA1", len = 20;
    else if (alg && strcmp(alg, "sha256") == 0)
        digest = "SHA256", len = 32;
    else if (alg && strcmp(alg, "sha512") == 0)
        digest = "SHA512", len = 64;
    else {
        set_err(err, errlen,
                "algorithm: expected \"sha1\", \"sha256\" or \"sha512\"");
        return -1;
    }
    const json_t *e = json_object_get(conf, "encoding");
    const char *enc = e ? json_string_value(e) : "hex";
    if (enc && strcmp(enc, "hex") == 0)
        v->enc = ENC_HEX;
    else if (enc && strcmp(enc, "base64") == 0)
        v->enc = ENC_BASE64;
    else {
        set_err(err, errlen, "encoding: expected \"hex\" or \"base64\"");
        return -1;
    }
    return conf_mac(v, digest, len, err, errlen);
}

static int conf_prefix(webhook_verifier *v, const json_t *conf, char *err,
                       size_t errlen) {
    const json_t *p = json_object_get(conf, "prefix");
    if (!p)
        return 0;
    if (!json_is_string(p) || json_string_length(p) == 0 ||
        strlen(json_string_value(p)) != json_string_length(p)) {
        set_err(err, errlen,
                "prefix: expected a non-empty string like \"sha256=\"");
        return -1;
    }
    if (!(v->prefix = strdup(json_string_value(p)))) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int conf_api_key(webhook_verifier *v, const json_t *conf, char *err,
                        size_t errlen) {
    const json_t *h = json_object_get(conf, "header");
    const json_t *q = json_object_get(conf, "query");
    if (!h == !q) {
        set_err(err, errlen,
                "header, query: expected exactly one (where the key is "
                "sent)");
        return -1;
    }
    if (h && !(v->header = header_name(h))) {
        set_err(err, errlen,
                "header: expected a header name like "
                "\"x-api-key\"");
        return -1;
    }
    if (q) {
        if (!json_is_string(q) || json_string_length(q) == 0 ||
            strlen(json_string_value(q)) != json_string_length(q)) {
            set_err(err, errlen,
                    "query: expected a parameter name like \"api_key\"");
            return -1;
        }
        if (json_object_get(conf, "prefix")) {
            set_err(err, errlen, "prefix: only used with \"header\"");
            return -1;
        }
        if (!(v->query = strdup(json_string_value(q)))) {
            set_err(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

static int conf_basic(webhook_verifier *v, const json_t *conf, char *err,
                      size_t errlen) {
    const json_t *u = json_object_get(conf, "user");
    const json_t *p = json_object_get(conf, "password");
    if (!json_is_string(u) || json_string_length(u) == 0 ||
        memchr(json_string_value(u), ':', json_string_length(u))) {
        set_err(err, errlen, "user: %s",
                u ? "expected a non-empty string without ':'" : "missing");
        return -1;
    }
    if (!json_is_string(p) || json_string_length(p) == 0) {
        set_err(err, errlen, "password: %s",
                p ? "expected a non-empty string" : "missing");
        return -1;
    }
    if (add_digest(v, json_string_value(u), json_string_length(u)) ||
        add_digest(v, json_string_value(p), json_string_length(p))) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static EVP_MAC_CTX *keyed_ctx(const webhook_verifier *v, const secret *k);

webhook_verifier *webhook_verifier_new(const json_t *conf, char *err,
                                       size_t errlen) {
    set_err(err, errlen, "%s", "");
    if (!json_is_object(conf)) {
        set_err(err, errlen,
                "expected an object like {\"scheme\": \"github\", "
                "\"secret\": \"...\"}");
        return NULL;
    }
    const json_t *sj = json_object_get(conf, "scheme");
    size_t si = NSCHEMES;
    if (json_is_string(sj))
        for (si = 0; si < NSCHEMES; si++)
            if (strcmp(json_string_value(sj), schemes[si].name) == 0)
                break;
    if (si == NSCHEMES) {
        set_err(err, errlen,
                "scheme: %s (one of hmac, github, slack, shopify, stripe, "
                "standard-webhooks, dropbox, api_key, basic)",
                sj ? "unknown scheme" : "missing");
        return NULL;
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)conf, key, val) {
        const char *const *f = schemes[si].fields;
        while (*f && strcmp(*f, key) != 0)
            f++;
        if (!*f) {
            char name[48];
            printable(name, sizeof(name), key);
            set_err(err, errlen, "%s: not a field of the \"%s\" scheme", name,
                    schemes[si].name);
            return NULL;
        }
    }

    webhook_verifier *v = calloc(1, sizeof(*v));
    if (!v) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    v->scheme = (scheme)si;
    v->tolerance_s = DEFAULT_TOLERANCE_S;
    int rc = 0;
    switch (v->scheme) {
    case S_HMAC:
        rc = conf_hmac(v, conf, err, errlen) ||
             conf_prefix(v, conf, err, errlen);
        break;
    case S_GITHUB:
    case S_SLACK:
    case S_SHOPIFY:
    case S_STRIPE:
    case S_STDWH:
    case S_DROPBOX:
        rc = conf_mac(v, "SHA256", 32, err, errlen);
        break;
    case S_APIKEY:
        rc = conf_api_key(v, conf, err, errlen) ||
             conf_prefix(v, conf, err, errlen);
        break;
    case S_BASIC:
        rc = conf_basic(v, conf, err, errlen);
        break;
    }
    if (!rc && v->scheme != S_BASIC)
        rc = conf_secrets(v, conf, err, errlen);
    for (size_t i = 0; !rc && v->mac && i < v->nsecrets; i++)
        v->secrets[i].keyed = keyed_ctx(v, &v->secrets[i]);
    const json_t *t = json_object_get(conf, "tolerance");
    if (!rc && t && parse_tolerance(t, &v->tolerance_s)) {
        set_err(err, errlen,
                "tolerance: expected a duration like \"5m\" or \"300s\" "
                "(units s, m, h; 1s to 24h)");
        rc = -1;
    }
    if (rc) {
        webhook_verifier_free(v);
        return NULL;
    }
    return v;
}

void webhook_verifier_free(webhook_verifier *v) {
    if (!v)
        return;
    for (size_t i = 0; i < v->nsecrets; i++) {
        OPENSSL_clear_free(v->secrets[i].key, v->secrets[i].len);
        EVP_MAC_CTX_free(v->secrets[i].keyed);
    }
    EVP_MAC_free(v->mac);
    free(v->header);
    free(v->query);
    free(v->prefix);
    free(v);
}

const char *webhook_verifier_scheme(const webhook_verifier *v) {
    return v ? schemes[v->scheme].name : NULL;
}

const char *webhook_verifier_secret_header(const webhook_verifier *v) {
    if (!v)
        return NULL;
    if (v->scheme == S_BASIC)
        return "authorization";
    return v->scheme == S_APIKEY ? v->header : NULL;
}

const char *webhook_verifier_secret_query(const webhook_verifier *v) {
    return v && v->scheme == S_APIKEY ? v->query : NULL;
}

/* ---- verification ---- */

typedef struct piece {
    const void *p;
    size_t n;
} piece;

static int fail(webhook_result *res, webhook_failure f, const char *reason) {
    res->failure = f;
    res->reason = reason;
    return FERRY_EAUTH;
}

/* A header's value without surrounding blanks; NULL if absent or empty. */
static const char *header(const webhook_request *r, const char *lname,
                          size_t *len) {
    const char *s = r->header ? r->header(r->ud, lname) : NULL;
    if (!s)
        return NULL;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *len = n;
    return n ? s : NULL;
}

/* Unix seconds: 1 to 18 digits, nothing else. */
static int parse_ts(const char *s, size_t len, int64_t *out) {
    if (len == 0 || len > 18)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        n = n * 10 + (s[i] - '0');
    }
    *out = n;
    return 0;
}

static int check_window(const webhook_verifier *v, const webhook_request *r,
                        int64_t ts, webhook_result *res) {
    /* ts is at most 18 digits, so neither difference overflows for any
     * plausible clock; clamp now_s so no input makes it overflow. */
    int64_t now = r->now_s;
    if (now > INT64_C(999999999999999999))
        now = INT64_C(999999999999999999);
    if (now < -INT64_C(999999999999999999))
        now = -INT64_C(999999999999999999);
    if (ts < now - v->tolerance_s)
        return fail(res, WEBHOOK_REPLAY,
                    "timestamp too old (outside the replay window)");
    if (ts > now + v->tolerance_s)
        return fail(res, WEBHOOK_REPLAY,
                    "timestamp in the future (outside the replay window)");
    return 0;
}

/* A MAC context for v's digest with key k set up. */
static EVP_MAC_CTX *keyed_ctx(const webhook_verifier *v, const secret *k) {
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(v->mac);
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         (char *)v->digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (ctx && !EVP_MAC_init(ctx, k->key, k->len, params)) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

static int mac(const webhook_verifier *v, const secret *k, const piece *parts,
               size_t nparts, unsigned char *out) {
    /* A copy of the keyed context: setting one up looks the digest up by
     * name and hashes the key, a third of a verification's cost. */
    EVP_MAC_CTX *ctx = k->keyed ? EVP_MAC_CTX_dup(k->keyed) : keyed_ctx(v, k);
    size_t outl = 0;
    int ok = ctx != NULL;
    for (size_t i = 0; ok && i < nparts; i++)
        if (parts[i].n)
            ok = EVP_MAC_update(ctx, parts[i].p, parts[i].n);
    ok = ok && EVP_MAC_final(ctx, out, &outl, MAX_MAC) && outl == v->mac_len;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* The candidate signatures a request carries, already decoded; a scheme
 * with several (Stripe, Standard Webhooks) re-reads its header through
 * next(). */
typedef struct sigs {
    int (*next)(struct sigs *s, unsigned char *out); /* 1, or 0 at end */
    const char *p, *end;
    const webhook_verifier *v;
    unsigned char one[MAX_MAC];
    int given;
} sigs;

static int next_one(sigs *s, unsigned char *out) {
    if (s->given)
        return 0;
    s->given = 1;
    memcpy(out, s->one, s->v->mac_len);
    return 1;
}

/* Computes the MAC with each secret in turn and compares it with every
 * candidate. Returns the matching secret's index, or -1. */
static int match(const webhook_verifier *v, const piece *parts, size_t n,
                 sigs *s, const char *p0) {
    unsigned char want[MAX_MAC], got[MAX_MAC];
    int found = -1;
    for (size_t k = 0; k < v->nsecrets && found < 0; k++) {
        if (mac(v, &v->secrets[k], parts, n, want))
            break;
        s->p = p0;
        s->given = 0;
        while (found < 0 && s->next(s, got))
            if (CRYPTO_memcmp(want, got, v->mac_len) == 0)
                found = (int)k;
    }
    OPENSSL_cleanse(want, sizeof(want));
    return found;
}

/* One signature in the given encoding, exactly mac_len bytes. */
static int decode_sig(const webhook_verifier *v, encoding enc, const char *s,
                      size_t len, unsigned char *out) {
    size_t n;
    if (enc == ENC_HEX ? webhook_hex_decode(s, len, out, MAX_MAC, &n)
                       : webhook_b64_decode(s, len, out, MAX_MAC, &n))
        return -1;
    return n == v->mac_len ? 0 : -1;
}

/* A single signature in one header, after a literal prefix, over the body
 * alone (hmac, github, shopify, dropbox). */
static int verify_body_sig(const webhook_verifier *v, const webhook_request *r,
                           webhook_result *res, const char *hname,
                           const char *prefix, encoding enc,
                           const char *missing, const char *malformed) {
    size_t len;
    const char *h = header(r, hname, &len);
    if (!h)
        return fail(res, WEBHOOK_MISSING, missing);
    size_t plen = prefix ? strlen(prefix) : 0;
    if (len < plen || memcmp(h, prefix ? prefix : "", plen) != 0)
        return fail(res, WEBHOOK_MALFORMED, malformed);
    sigs s = {.next = next_one, .v = v};
    if (decode_sig(v, enc, h + plen, len - plen, s.one))
        return fail(res, WEBHOOK_MALFORMED, malformed);
    piece body = {r->body, r->body_len};
    if ((res->secret_index = match(v, &body, 1, &s, NULL)) < 0)
        return fail(res, WEBHOOK_MISMATCH, "signature mismatch");
    return 0;
}

static int respond_text(webhook_result *res, const char *content_type,
                        const char *body, size_t len) {
    res->respond.body = malloc(len + 1);
    if (!res->respond.body) {
        res->reason = "out of memory";
        return FERRY_ENOMEM;
    }
    memcpy(res->respond.body, body, len);
    res->respond.body[len] = '\0';
    res->respond.body_len = len;
    res->respond.status = 200;
    res->respond.content_type = content_type;
    return 0;
}

static int verify_dropbox(const webhook_verifier *v, const webhook_request *r,
                          webhook_result *res) {
    if (!r->method || strcmp(r->method, "GET") != 0)
        return verify_body_sig(v, r, res, "x-dropbox-signature", NULL, ENC_HEX,
                               "missing X-Dropbox-Signature header",
                               "X-Dropbox-Signature is not 64 hex digits");
    char *c = NULL;
    size_t clen = 0;
    int rc = webhook_query_get(r->query, "challenge", &c, &clen);
    if (rc < 0) {
        res->reason = "out of memory";
        return FERRY_ENOMEM;
    }
    if (rc == 0 || clen == 0) {
        free(c);
        return fail(res, WEBHOOK_MISSING, "GET without a challenge parameter");
    }
    if (clen > MAX_CHALLENGE) {
        free(c);
        return fail(res, WEBHOOK_MALFORMED, "challenge parameter too long");
    }
    res->respond.status = 200;
    res->respond.content_type = "text/plain";
    res->respond.headers[0].name = "X-Content-Type-Options";
    res->respond.headers[0].value = "nosniff";
    res->respond.nheaders = 1;
    res->respond.body = c;
    res->respond.body_len = clen;
    res->reason = "dropbox challenge";
    return 0;
}

/* Slack sends {"type": "url_verification", "challenge": ...} when a
 * Request URL is saved; it expects the challenge back. */
static int slack_handshake(const webhook_request *r, webhook_result *res) {
    const char *b = r->body;
    size_t i = 0;
    while (i < r->body_len && strchr(" \t\r\n", b[i]) && b[i])
        i++;
    if (i == r->body_len || b[i] != '{')
        return 0;
    json_t *j = json_loadb(b, r->body_len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    json_t *ch = json_object_get(j, "challenge");
    int rc = 0;
    if (type && strcmp(type, "url_verification") == 0 && json_is_string(ch)) {
        json_t *out = json_object();
        char *text = NULL;
        if (out && !json_object_set(out, "challenge", ch))
            text = json_dumps(out, JSON_COMPACT);
        if (text) {
            rc = respond_text(res, "application/json", text, strlen(text));
            if (!rc)
                res->reason = "slack url_verification";
        } else {
            res->reason = "out of memory";
            rc = FERRY_ENOMEM;
        }
        free(text);
        json_decref(out);
    }
    json_decref(j);
    return rc;
}

static int verify_slack(const webhook_verifier *v, const webhook_request *r,
                        webhook_result *res) {
    size_t slen = 0, tlen = 0;
    const char *sig = header(r, "x-slack-signature", &slen);
    const char *ts = header(r, "x-slack-request-timestamp", &tlen);
    int64_t t;
    if (!sig)
        return fail(res, WEBHOOK_MISSING, "missing X-Slack-Signature header");
    if (!ts)
        return fail(res, WEBHOOK_MISSING,
                    "missing X-Slack-Request-Timestamp header");
    if (parse_ts(ts, tlen, &t))
        return fail(res, WEBHOOK_MALFORMED,
                    "X-Slack-Request-Timestamp is not a Unix time");
    sigs s = {.next = next_one, .v = v};
    if (slen < 3 || memcmp(sig, "v0=", 3) != 0 ||
        decode_sig(v, ENC_HEX, sig + 3, slen - 3, s.one))
        return fail(res, WEBHOOK_MALFORMED,
                    "X-Slack-Signature is not v0= and 64 hex digits");
    piece parts[] = {{"v0:", 3}, {ts, tlen}, {":", 1}, {r->body, r->body_len}};
    if ((res->secret_index = match(v, parts, 4, &s, NULL)) < 0)
        return fail(res, WEBHOOK_MISMATCH, "signature mismatch");
    int rc = check_window(v, r, t, res);
    return rc ? rc : slack_handshake(r, res);
}

/* Stripe-Signature: "t=...,v1=...,v1=...,v0=..."; yields each v1. */
static int next_stripe(sigs *s, unsigned char *out) {
    while (s->p < s->end) {
        const char *c = memchr(s->p, ',', (size_t)(s->end - s->p));
        const char *item = s->p, *iend = c ? c : s->end;
        s->p = c ? c + 1 : s->end;
        while (item < iend && (*item == ' ' || *item == '\t'))
            item++;
        while (iend > item && (iend[-1] == ' ' || iend[-1] == '\t'))
            iend--;
        if (iend - item > 3 && memcmp(item, "v1=", 3) == 0 &&
            decode_sig(s->v, ENC_HEX, item + 3, (size_t)(iend - item - 3),
                       out) == 0)
            return 1;
    }
    return 0;
}

static int verify_stripe(const webhook_verifier *v, const webhook_request *r,
                         webhook_result *res) {
    size_t len;
    const char *h = header(r, "stripe-signature", &len);
    if (!h)
        return fail(res, WEBHOOK_MISSING, "missing Stripe-Signature header");
    const char *end = h + len, *ts = NULL;
    size_t tlen = 0, nv1 = 0;
    for (const char *p = h; p < end;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *iend = c ? c : end;
        while (p < iend && (*p == ' ' || *p == '\t'))
            p++;
        const char *e = iend;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (e > p && !eq)
            return fail(res, WEBHOOK_MALFORMED,
                        "Stripe-Signature is not a list of key=value");
        if (eq && eq - p == 1 && *p == 't') {
            if (ts)
                return fail(res, WEBHOOK_MALFORMED,
                            "Stripe-Signature has more than one timestamp");
            ts = eq + 1;
            tlen = (size_t)(e - ts);
        } else if (eq && eq - p == 2 && memcmp(p, "v1", 2) == 0) {
            nv1++;
        }
        p = c ? c + 1 : end;
    }
    int64_t t;
    if (!ts || parse_ts(ts, tlen, &t))
        return fail(res, WEBHOOK_MALFORMED,
                    "Stripe-Signature has no valid timestamp (t=)");
    if (!nv1)
        return fail(res, WEBHOOK_MALFORMED,
                    "Stripe-Signature has no v1 signature");
    sigs s = {.next = next_stripe, .end = end, .v = v};
    piece parts[] = {{ts, tlen}, {".", 1}, {r->body, r->body_len}};
    if ((res->secret_index = match(v, parts, 3, &s, h)) < 0)
        return fail(res, WEBHOOK_MISMATCH, "signature mismatch");
    return check_window(v, r, t, res);
}

/* webhook-signature: space-separated "v1,<base64>" tokens; other versions
 * (v1a is ed25519) are skipped. */
static int next_stdwh(sigs *s, unsigned char *out) {
    while (s->p < s->end) {
        const char *sp = memchr(s->p, ' ', (size_t)(s->end - s->p));
        const char *tok = s->p, *tend = sp ? sp : s->end;
        s->p = sp ? sp + 1 : s->end;
        if (tend - tok > 3 && memcmp(tok, "v1,", 3) == 0 &&
            decode_sig(s->v, ENC_BASE64, tok + 3, (size_t)(tend - tok - 3),
                       out) == 0)
            return 1;
    }
    return 0;
}

static int verify_stdwh(const webhook_verifier *v, const webhook_request *r,
                        webhook_result *res) {
    size_t ilen = 0, tlen = 0, slen = 0;
    const char *id = header(r, "webhook-id", &ilen);
    const char *ts = header(r, "webhook-timestamp", &tlen);
    const char *sig = header(r, "webhook-signature", &slen);
    int64_t t;
    if (!id)
        return fail(res, WEBHOOK_MISSING, "missing webhook-id header");
    if (!ts)
        return fail(res, WEBHOOK_MISSING, "missing webhook-timestamp header");
    if (!sig)
        return fail(res, WEBHOOK_MISSING, "missing webhook-signature header");
    /* The signed content is id.ts.body: a '.' in the id would make it
     * ambiguous, and the spec forbids one. */
    if (memchr(id, '.', ilen))
        return fail(res, WEBHOOK_MALFORMED, "webhook-id contains '.'");
    if (parse_ts(ts, tlen, &t))
        return fail(res, WEBHOOK_MALFORMED,
                    "webhook-timestamp is not a Unix time");
    int any = 0;
    for (const char *p = sig; p + 3 <= sig + slen && !any; p++)
        any = (p == sig || p[-1] == ' ') && memcmp(p, "v1,", 3) == 0;
    if (!any)
        return fail(res, WEBHOOK_MALFORMED,
                    "webhook-signature has no v1 signature");
    sigs s = {.next = next_stdwh, .end = sig + slen, .v = v};
    piece parts[] = {
        {id, ilen}, {".", 1}, {ts, tlen}, {".", 1}, {r->body, r->body_len}};
    if ((res->secret_index = match(v, parts, 5, &s, sig)) < 0)
        return fail(res, WEBHOOK_MISMATCH, "signature mismatch");
    return check_window(v, r, t, res);
}

/* Compares a presented credential with the stored digests; index of the
 * match or -1. Every digest is compared, so timing shows nothing. */
static int match_digest(const webhook_verifier *v, size_t from, size_t to,
                        const void *data, size_t len) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) ||
        mdlen != DIGEST_LEN)
        return -1;
    int found = -1;
    for (size_t i = from; i < to; i++)
        if (CRYPTO_memcmp(md, v->secrets[i].key, DIGEST_LEN) == 0 && found < 0)
            found = (int)(i - from);
    OPENSSL_cleanse(md, sizeof(md));
    return found;
}

static int verify_api_key(const webhook_verifier *v, const webhook_request *r,
                          webhook_result *res) {
    if (v->query) {
        char *k = NULL;
        size_t klen = 0;
        int rc = webhook_query_get(r->query, v->query, &k, &klen);
        if (rc < 0) {
            res->reason = "out of memory";
            return FERRY_ENOMEM;
        }
        if (rc == 0 || klen == 0) {
            free(k);
            return fail(res, WEBHOOK_MISSING, "missing API key parameter");
        }
        res->secret_index = match_digest(v, 0, v->nsecrets, k, klen);
        OPENSSL_clear_free(k, klen);
    } else {
        size_t len;
        const char *h = header(r, v->header, &len);
        if (!h)
            return fail(res, WEBHOOK_MISSING, "missing API key header");
        size_t plen = v->prefix ? strlen(v->prefix) : 0;
        /* Authorization schemes ("Bearer ") are case-insensitive. */
        if (plen && (len < plen || strncasecmp(h, v->prefix, plen) != 0))
            return fail(res, WEBHOOK_MALFORMED,
                        "API key header lacks the configured prefix");
        res->secret_index =
            match_digest(v, 0, v->nsecrets, h + plen, len - plen);
    }
    if (res->secret_index < 0)
        return fail(res, WEBHOOK_MISMATCH, "API key mismatch");
    return 0;
}

static int verify_basic(const webhook_verifier *v, const webhook_request *r,
                        webhook_result *res) {
    size_t len;
    const char *h = header(r, "authorization", &len);
    if (!h)
        return fail(res, WEBHOOK_MISSING, "missing Authorization header");
    if (len < 6 || strncasecmp(h, "basic ", 6) != 0)
        return fail(res, WEBHOOK_MALFORMED,
                    "Authorization is not Basic credentials");
    const char *b = h + 6;
    size_t blen = len - 6;
    while (blen && *b == ' ')
        b++, blen--;
    size_t cap = blen / 4 * 3 + 3, n;
    unsigned char *cred = malloc(cap);
    if (!cred) {
        res->reason = "out of memory";
        return FERRY_ENOMEM;
    }
    const unsigned char *colon = NULL;
    if (webhook_b64_decode(b, blen, cred, cap, &n) == 0)
        colon = memchr(cred, ':', n);
    int rc;
    if (!colon) {
        rc = fail(res, WEBHOOK_MALFORMED,
                  "Authorization is not base64 of user:password");
    } else {
        size_t ulen = (size_t)(colon - cred);
        int u = match_digest(v, 0, 1, cred, ulen);
        int p = match_digest(v, 1, 2, colon + 1, n - ulen - 1);
        res->secret_index = ((u == 0) & (p == 0)) ? 0 : -1;
        rc = res->secret_index < 0
                 ? fail(res, WEBHOOK_MISMATCH, "user or password mismatch")
                 : 0;
    }
    OPENSSL_clear_free(cred, cap);
    return rc;
}

int webhook_verify(const webhook_verifier *v, const webhook_request *r,
                   webhook_result *res) {
    if (!res)
        return FERRY_EINVAL;
    memset(res, 0, sizeof(*res));
    res->secret_index = -1;
    if (!v || !r || (!r->body && r->body_len)) {
        res->reason = "invalid arguments";
        return FERRY_EINVAL;
    }
    res->reason = "accepted";
    int rc = FERRY_EINVAL;
    switch (v->scheme) {
    case S_HMAC:
        rc = verify_body_sig(
            v, r, res, v->header, v->prefix, v->enc, "missing signature header",
            v->enc == ENC_HEX ? "signature is not the configured prefix "
                                "and hex digits of the right length"
                              : "signature is not the configured prefix "
                                "and base64 of the right length");
        break;
    case S_GITHUB:
        rc = verify_body_sig(v, r, res, "x-hub-signature-256",
                             "sha256=", ENC_HEX,
                             "missing X-Hub-Signature-256 header",
                             "X-Hub-Signature-256 is not sha256= and 64 hex "
                             "digits");
        break;
    case S_SHOPIFY:
        rc = verify_body_sig(v, r, res, "x-shopify-hmac-sha256", NULL,
                             ENC_BASE64, "missing X-Shopify-Hmac-Sha256 header",
                             "X-Shopify-Hmac-Sha256 is not base64 of 32 "
                             "bytes");
        break;
    case S_DROPBOX:
        rc = verify_dropbox(v, r, res);
        break;
    case S_SLACK:
        rc = verify_slack(v, r, res);
        break;
    case S_STRIPE:
        rc = verify_stripe(v, r, res);
        break;
    case S_STDWH:
        rc = verify_stdwh(v, r, res);
        break;
    case S_APIKEY:
        rc = verify_api_key(v, r, res);
        break;
    case S_BASIC:
        rc = verify_basic(v, r, res);
        break;
    }
    if (rc) {
        if (rc != FERRY_EAUTH)
            res->failure = WEBHOOK_ACCEPTED;
        free(res->respond.body);
        memset(&res->respond, 0, sizeof(res->respond));
        if (rc == FERRY_EAUTH)
            res->secret_index = -1;
    }
    return rc;
}

void webhook_result_clear(webhook_result *res) {
    if (!res)
        return;
    free(res->respond.body);
    memset(res, 0, sizeof(*res));
    res->secret_index = -1;
}

const char *webhook_failure_name(webhook_failure f) {
    switch (f) {
    case WEBHOOK_ACCEPTED:
        return "accepted";
    case WEBHOOK_MISSING:
        return "missing";
    case WEBHOOK_MALFORMED:
        return "malformed";
    case WEBHOOK_MISMATCH:
        return "mismatch";
    case WEBHOOK_REPLAY:
        return "replay";
    }
    return "unknown";
}
