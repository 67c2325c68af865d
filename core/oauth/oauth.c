/*
 * OAuth 2.0 token requests, the refresh policy, PKCE (oauth.h).
 */
#include "oauth.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *field(const json_t *fields, const char *name) {
    const char *v = json_string_value(json_object_get(fields, name));
    return v && *v ? v : NULL;
}

static void set_message(oauth_result *r, const char *fmt, ...) {
    va_list ap;
    free(r->message);
    va_start(ap, fmt);
    if (vasprintf(&r->message, fmt, ap) < 0)
        r->message = NULL;
    va_end(ap);
}

void oauth_result_clear(oauth_result *r) {
    free(r->access_token);
    free(r->refresh_token);
    free(r->token_type);
    free(r->scope);
    free(r->error);
    free(r->message);
    memset(r, 0, sizeof(*r));
}

/* The scopes as one space-separated string (malloc'd), or NULL. */
static char *scopes(const json_t *fields) {
    const json_t *v = json_object_get(fields, "scopes");
    if (json_is_string(v))
        return *json_string_value(v) ? strdup(json_string_value(v)) : NULL;
    if (!json_is_array(v) || !json_array_size(v))
        return NULL;
    size_t len = 0, i;
    json_t *e;
    json_array_foreach(v, i, e) len +=
        strlen(json_string_value(e) ? json_string_value(e) : "") + 1;
    char *s = calloc(len + 1, 1);
    json_array_foreach(v, i, e) {
        if (!s || !json_string_value(e))
            continue;
        if (*s)
            strcat(s, " ");
        strcat(s, json_string_value(e));
    }
    return s;
}

int oauth_check_fields(const json_t *fields, char *err, size_t n) {
    const char *grant = field(fields, "grant");
    if (!field(fields, "token_url")) {
        snprintf(err, n, "token_url is not set");
        return -1;
    }
    if (!field(fields, "client_id")) {
        snprintf(err, n, "client_id is not set");
        return -1;
    }
    if (grant && strcmp(grant, "client_credentials") &&
        strcmp(grant, "authorization_code") && strcmp(grant, "refresh_token")) {
        snprintf(err, n,
                 "grant '%s' is not one of client_credentials, "
                 "authorization_code, refresh_token",
                 grant);
        return -1;
    }
    if (grant && !strcmp(grant, "authorization_code") &&
        !field(fields, "authorize_url")) {
        snprintf(err, n, "authorization_code needs authorize_url");
        return -1;
    }
    if (grant && !strcmp(grant, "refresh_token") &&
        !field(fields, "refresh_token")) {
        snprintf(err, n, "the refresh_token grant needs a refresh_token");
        return -1;
    }
    const char *ca = field(fields, "client_auth");
    if (ca && strcmp(ca, "basic") && strcmp(ca, "body")) {
        snprintf(err, n, "client_auth '%s' is not basic or body", ca);
        return -1;
    }
    return 0;
}

/* ---- the request ---- */

typedef struct buf {
    char *p;
    size_t len;
} buf;

#define OAUTH_MAX_ANSWER (1u << 20)

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud) {
    buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > OAUTH_MAX_ANSWER)
        return 0;
    char *p = realloc(b->p, b->len + n + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, data, n);
    b->p = p;
    b->len += n;
    p[b->len] = 0;
    return n;
}

static char *dup_or_null(const json_t *v) {
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

int oauth_request(const json_t *fields, const char *const *pairs,
                  long timeout_ms, oauth_result *r) {
    memset(r, 0, sizeof(*r));
    r->expires_in_s = -1;
    const char *url = field(fields, "token_url");
    const char *id = field(fields, "client_id");
    const char *secret = field(fields, "client_secret");
    const char *auth = field(fields, "client_auth");
    int in_body = auth && !strcmp(auth, "body");
    if (!url) {
        set_message(r, "token_url is not set");
        return -1;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        set_message(r, "cannot start an HTTP request");
        r->retryable = 1;
        return -1;
    }
    /* The form: the pairs, then the client when it goes in the body, then
     * the scope and audience when not given. */
    char *form = NULL;
    size_t flen = 0;
    FILE *fs = open_memstream(&form, &flen);
    int first = 1, has_scope = 0;
    for (size_t i = 0; fs && pairs[i] && pairs[i + 1]; i += 2) {
        char *v = curl_easy_escape(c, pairs[i + 1], 0);
        fprintf(fs, "%s%s=%s", first ? "" : "&", pairs[i], v ? v : "");
        curl_free(v);
        first = 0;
        has_scope |= !strcmp(pairs[i], "scope");
    }
    char *sc = scopes(fields);
    const char *extra[] = {"scope",         has_scope ? NULL : sc,
                           "audience",      field(fields, "audience"),
                           "client_id",     in_body ? id : NULL,
                           "client_secret", in_body ? secret : NULL};
    for (size_t i = 0; fs && i < sizeof(extra) / sizeof(extra[0]); i += 2) {
        if (!extra[i + 1])
            continue;
        char *v = curl_easy_escape(c, extra[i + 1], 0);
        fprintf(fs, "%s%s=%s", first ? "" : "&", extra[i], v ? v : "");
        curl_free(v);
        first = 0;
    }
    free(sc);
    if (fs)
        fclose(fs);
    char *userpwd = NULL;
    if (!in_body && id) {
        /* RFC 6749 2.3.1: each form-urlencoded, then Basic. */
        char *eid = curl_easy_escape(c, id, 0);
        char *esec = curl_easy_escape(c, secret ? secret : "", 0);
        if (eid && esec && asprintf(&userpwd, "%s:%s", eid, esec) < 0)
            userpwd = NULL;
        curl_free(eid);
        curl_free(esec);
    }
    buf b = {0};
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Accept: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, form ? form : "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                     timeout_ms > 0 ? timeout_ms : 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (userpwd) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
    }
    if (field(fields, "ca_file"))
        curl_easy_setopt(c, CURLOPT_CAINFO, field(fields, "ca_file"));
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->http_status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (userpwd) {
        memset(userpwd, 0, strlen(userpwd));
        free(userpwd);
    }
    if (form) {
        memset(form, 0, flen);
        free(form);
    }
    if (rc != CURLE_OK) {
        r->http_status = 0;
        r->retryable = 1;
        set_message(r, "token request to %s: %s", url, curl_easy_strerror(rc));
        free(b.p);
        return -1;
    }
    json_t *ans = b.p ? json_loads(b.p, 0, NULL) : NULL;
    free(b.p);
    if (r->http_status == 200 &&
        json_is_string(json_object_get(ans, "access_token"))) {
        r->access_token = dup_or_null(json_object_get(ans, "access_token"));
        r->refresh_token = dup_or_null(json_object_get(ans, "refresh_token"));
        r->token_type = dup_or_null(json_object_get(ans, "token_type"));
        r->scope = dup_or_null(json_object_get(ans, "scope"));
        const json_t *ei = json_object_get(ans, "expires_in");
        if (json_is_integer(ei))
            r->expires_in_s = json_integer_value(ei);
        else if (json_is_real(ei))
            r->expires_in_s = (int64_t)json_real_value(ei);
        else if (json_is_string(ei))
            r->expires_in_s = strtoll(json_string_value(ei), NULL, 10);
        json_decref(ans);
        return r->access_token ? 0 : -1;
    }
    r->error = dup_or_null(json_object_get(ans, "error"));
    const char *desc =
        json_string_value(json_object_get(ans, "error_description"));
    r->retryable = r->http_status >= 500 || r->http_status == 429;
    if (r->error)
        set_message(r, "token endpoint %s answered %ld %s%s%s", url,
                    r->http_status, r->error, desc ? ": " : "",
                    desc ? desc : "");
    else
        set_message(r, "token endpoint %s answered %ld without a token", url,
                    r->http_status);
    json_decref(ans);
    return -1;
}

/* ---- the policy ---- */

enum oauth_action oauth_plan(const json_t *fields, const json_t *token,
                             int64_t now_us, int force,
                             const char **refresh_token) {
    const char *grant = field(fields, "grant");
    const char *status = json_string_value(json_object_get(token, "status"));
    *refresh_token = NULL;
    if (status && !strcmp(status, "reauth"))
        return OAUTH_REAUTH;
    const char *access =
        json_string_value(json_object_get(token, "access_token"));
    json_int_t exp = json_integer_value(json_object_get(token, "expires_us"));
    json_int_t got = json_integer_value(json_object_get(token, "obtained_us"));
    int64_t life = (int64_t)(exp - got) - OAUTH_SKEW_US;
    if (access && !force && life > 0 &&
        now_us < got + (int64_t)((double)life * OAUTH_REFRESH_AT))
        return OAUTH_USE;
    const char *rt = json_string_value(json_object_get(token, "refresh_token"));
    if (!rt)
        rt = field(fields, "refresh_token");
    if (grant && !strcmp(grant, "client_credentials"))
        return OAUTH_FETCH;
    if (rt) {
        *refresh_token = rt;
        return OAUTH_REFRESH;
    }
    if (grant && !strcmp(grant, "authorization_code"))
        return OAUTH_AUTHORIZE;
    return OAUTH_FETCH; /* no grant named, no refresh token */
}

json_t *oauth_apply(const json_t *prev, const oauth_result *r, int64_t now_us) {
    if (r->access_token) {
        int64_t life =
            r->expires_in_s >= 0 ? r->expires_in_s : OAUTH_DEFAULT_LIFETIME_S;
        const char *rt =
            r->refresh_token
                ? r->refresh_token
                : json_string_value(json_object_get(prev, "refresh_token"));
        return json_pack("{s:s, s:s?, s:s, s:s?, s:I, s:I, s:s, s:n}",
                         "access_token", r->access_token, "refresh_token", rt,
                         "token_type", r->token_type ? r->token_type : "Bearer",
                         "scope", r->scope, "expires_us",
                         (json_int_t)(now_us + life * 1000000), "obtained_us",
                         (json_int_t)now_us, "status", "ok", "error");
    }
    /* invalid_grant: RFC 6749's answer for a refresh token that is not
     * valid (any more); invalid_refresh_token: Slack's, in-band (HTTP 200
     * with "ok": false), for one its rotation has used up. */
    if (r->error && (!strcmp(r->error, "invalid_grant") ||
                     !strcmp(r->error, "invalid_refresh_token")))
        return json_pack("{s:n, s:n, s:s, s:s}", "access_token",
                         "refresh_token", "status", "reauth", "error",
                         r->message ? r->message : "invalid_grant");
    return NULL;
}

/* ---- PKCE and authorization ---- */

static void b64url(const unsigned char *in, size_t len, char *out) {
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = 0;
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
}

int oauth_pkce_verifier(char out[44]) {
    unsigned char raw[32];
    char tmp[48];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    b64url(raw, sizeof(raw), tmp);
    memcpy(out, tmp, 44);
    return 0;
}

int oauth_pkce_challenge(const char *verifier, char out[44]) {
    unsigned char md[32];
    unsigned int len = 0;
    char tmp[48];
    if (!EVP_Digest(verifier, strlen(verifier), md, &len, EVP_sha256(), NULL))
        return -1;
    b64url(md, len, tmp);
    memcpy(out, tmp, 44);
    return 0;
}

int oauth_random_state(char out[33]) {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

char *oauth_authorize_url(const json_t *fields, const char *redirect_uri,
                          const char *state, const char *challenge) {
    const char *base = field(fields, "authorize_url");
    CURL *c = curl_easy_init();
    if (!base || !c) {
        if (c)
            curl_easy_cleanup(c);
        return NULL;
    }
    char *sc = scopes(fields);
    const char *pairs[] = {"response_type",
                           "code",
                           "client_id",
                           field(fields, "client_id"),
                           "redirect_uri",
                           redirect_uri,
                           "scope",
                           sc,
                           "state",
                           state,
                           "code_challenge",
                           challenge,
                           "code_challenge_method",
                           "S256",
                           "audience",
                           field(fields, "audience")};
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f) {
        fputs(base, f);
        int sep = strchr(base, '?') ? '&' : '?';
        for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i += 2) {
            if (!pairs[i + 1])
                continue;
            char *v = curl_easy_escape(c, pairs[i + 1], 0);
            fprintf(f, "%c%s=%s", sep, pairs[i], v ? v : "");
            curl_free(v);
            sep = '&';
        }
        fclose(f);
    }
    free(sc);
    curl_easy_cleanup(c);
    return out;
}
