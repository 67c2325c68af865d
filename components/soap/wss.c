/*
 * WS-Security UsernameToken (OASIS Username Token Profile 1.0):
 * PasswordText, or PasswordDigest = Base64(SHA-1(nonce || created ||
 * password)) where nonce is the raw bytes whose base64 goes in
 * wsse:Nonce and created the exact text of wsu:Created. Also the base64
 * and SHA-256 helpers the rest of the component uses.
 */
#include "soap_core.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t sc_base64_encode(const unsigned char *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

long sc_base64_decode(const char *in, unsigned char *out, size_t cap) {
    unsigned v = 0;
    int bits = 0;
    size_t o = 0;
    int pad = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
            continue;
        if (*p == '=') {
            pad++;
            continue;
        }
        const char *q = strchr(b64, *p);
        if (!q || pad)
            return -1;
        v = (v << 6) | (unsigned)(q - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(v >> bits);
        }
    }
    return pad > 2 ? -1 : (long)o;
}

static int digest(const EVP_MD *md, const void *const *parts,
                  const size_t *lens, size_t n, unsigned char *out,
                  unsigned *outlen) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestInit_ex(c, md, NULL);
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(c, parts[i], lens[i]);
    ok = ok && EVP_DigestFinal_ex(c, out, outlen);
    EVP_MD_CTX_free(c);
    return ok ? 0 : -1;
}

int sc_wss_digest(const unsigned char *nonce, size_t nonce_len,
                  const char *created, const char *password, char out[29]) {
    const void *parts[3] = {nonce, created, password};
    size_t lens[3] = {nonce_len, strlen(created), strlen(password)};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (digest(EVP_sha1(), parts, lens, 3, md, &n) || n != 20)
        return -1;
    sc_base64_encode(md, 20, out);
    return 0;
}

void sc_sha256_hex(const void *data, size_t len, char out[65]) {
    const void *parts[1] = {data};
    size_t lens[1] = {len};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    out[0] = 0;
    if (digest(EVP_sha256(), parts, lens, 1, md, &n) || n != 32)
        return;
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + i * 2, 3, "%02x", md[i]);
}

#define PW_TEXT                                                                \
    "http://docs.oasis-open.org/wss/2004/01/"                                  \
    "oasis-200401-wss-username-token-profile-1.0#PasswordText"
#define PW_DIGEST                                                              \
    "http://docs.oasis-open.org/wss/2004/01/"                                  \
    "oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
#define B64_BINARY                                                             \
    "http://docs.oasis-open.org/wss/2004/01/"                                  \
    "oasis-200401-wss-soap-message-security-1.0#Base64Binary"

static void esc(sc_buf *b, const char *s) {
    sc_buf_escape(b, s, strlen(s), 0);
}

static int text_ok(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r')
            return 0;
    return 1;
}

int sc_wss_header(const sc_wss *w, const char *env_prefix, sc_buf *out,
                  sc_err *e) {
    if (!w->username || !w->password)
        return sc_fail(e, FERRY_ECONFIG,
                       "WS-Security needs a username and a password");
    if (!text_ok(w->username) || !text_ok(w->password))
        return sc_fail(e, FERRY_ECONFIG,
                       "WS-Security: the username or password holds a control "
                       "character XML cannot carry");
    unsigned char nonce[16];
    const unsigned char *np = nonce;
    size_t nlen = sizeof(nonce);
    if (w->fixed_nonce) {
        np = w->fixed_nonce;
        nlen = w->fixed_nonce_len;
    } else if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce)) {
        return sc_fail(e, FERRY_EINTERNAL, "no random bytes for the nonce");
    }
    char created[40];
    if (w->fixed_created) {
        snprintf(created, sizeof(created), "%s", w->fixed_created);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        size_t n = strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(created + n, sizeof(created) - n, ".%03ldZ",
                 ts.tv_nsec / 1000000);
    }
    int send_nonce = w->digest || w->nonce;
    int send_created = w->digest || w->created;
    sc_buf_puts(out, "<wsse:Security xmlns:wsse=\"" SC_NS_WSSE
                     "\" xmlns:wsu=\"" SC_NS_WSU "\"");
    if (w->must_understand)
        sc_buf_printf(out, " %s:mustUnderstand=\"1\"", env_prefix);
    sc_buf_puts(out, "><wsse:UsernameToken wsu:Id=\"UsernameToken-1\">"
                     "<wsse:Username>");
    esc(out, w->username);
    sc_buf_printf(out, "</wsse:Username><wsse:Password Type=\"%s\">",
                  w->digest ? PW_DIGEST : PW_TEXT);
    if (w->digest) {
        char d[29];
        if (sc_wss_digest(np, nlen, created, w->password, d))
            return sc_fail(e, FERRY_EINTERNAL, "SHA-1 failed");
        sc_buf_puts(out, d);
    } else {
        esc(out, w->password);
    }
    sc_buf_puts(out, "</wsse:Password>");
    if (send_nonce) {
        char nb[64];
        sc_base64_encode(np, nlen < 40 ? nlen : 40, nb);
        sc_buf_printf(out, "<wsse:Nonce EncodingType=\"%s\">%s</wsse:Nonce>",
                      B64_BINARY, nb);
    }
    if (send_created) {
        sc_buf_puts(out, "<wsu:Created>");
        esc(out, created);
        sc_buf_puts(out, "</wsu:Created>");
    }
    sc_buf_puts(out, "</wsse:UsernameToken></wsse:Security>");
    return out->oom ? sc_fail(e, FERRY_ENOMEM, "out of memory") : 0;
}
