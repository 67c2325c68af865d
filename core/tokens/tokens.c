/*
 * OAuth tokens at rest (tokens.h).
 */
#include "tokens.h"

#include "oauth/oauth.h"

#include <ferry/ferry.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_KEY "master_key_check"
#define CHECK_TEXT "ferry master key check"
#define CHECK_LABEL "store_meta." CHECK_KEY

static int fail(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    if (err && n) {
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int tokens_check_key(store *st, const secret_key *k, char *err, size_t n) {
    if (!st->vt->meta_get)
        return k ? fail(err, n, "this store keeps no encrypted data") : 0;
    char *check = NULL;
    int rc = st->vt->meta_get(st, CHECK_KEY, &check);
    if (rc && rc != FERRY_ENOTFOUND)
        return fail(err, n, "%s", st->errmsg);
    if (rc == FERRY_ENOTFOUND) {
        if (!k)
            return 0;
        char *enc =
            secret_encrypt(k, CHECK_LABEL, CHECK_TEXT, strlen(CHECK_TEXT));
        rc = enc ? st->vt->meta_set(st, CHECK_KEY, enc) : FERRY_ENOMEM;
        free(enc);
        return rc ? fail(err, n, "cannot record the master key: %s", st->errmsg)
                  : 0;
    }
    char id[17] = "?";
    secret_key_id_of(check, id);
    if (!k) {
        free(check);
        return fail(err, n,
                    "the store holds data encrypted under master key %s; set "
                    "FERRY_MASTER_KEY (or master_key_file) to that key",
                    id);
    }
    char *plain = NULL, why[256];
    rc = secret_decrypt(k, CHECK_LABEL, check, &plain, NULL, why, sizeof(why));
    free(check);
    int ok = rc == 0 && !strcmp(plain, CHECK_TEXT);
    free(plain);
    if (!ok)
        return fail(err, n,
                    "the master key given (%s) is not the store's (%s): %s; "
                    "nothing was changed",
                    k->id, id, rc ? why : "wrong check value");
    return 0;
}

static void label(char *buf, size_t n, const char *what, const char *instance,
                  const char *connection) {
    snprintf(buf, n, "oauth_tokens.%s:%s/%s", what, instance, connection);
}

/* Decrypts o[key] (encrypted text or null) into t[out]. */
static int open_value(const secret_key *k, const json_t *o, const char *key,
                      const char *lab, json_t *t, const char *out, char *err,
                      size_t n) {
    const char *enc = json_string_value(json_object_get(o, key));
    if (!enc)
        return 0;
    if (!k)
        return fail(err, n,
                    "a stored token is encrypted and no master key is "
                    "set");
    char *plain = NULL, why[256];
    if (secret_decrypt(k, lab, enc, &plain, NULL, why, sizeof(why)))
        return fail(err, n, "a stored token cannot be decrypted: %s", why);
    json_object_set_new(t, out, json_string(plain));
    memset(plain, 0, strlen(plain));
    free(plain);
    return 0;
}

int tokens_load(store *st, const secret_key *k, const char *instance,
                const char *connection, json_t **token, char *err, size_t n) {
    *token = NULL;
    if (!st->vt->token_get)
        return 0;
    json_t *row = NULL;
    int rc = st->vt->token_get(st, instance, connection, &row);
    if (rc == FERRY_ENOTFOUND)
        return 0;
    if (rc)
        return fail(err, n, "%s", st->errmsg);
    json_t *t = json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "token_type",
                          json_object_get(row, "token_type"), "scope",
                          json_object_get(row, "scope"), "expires_us",
                          json_object_get(row, "expires_us"), "obtained_us",
                          json_object_get(row, "obtained_us"), "status",
                          json_object_get(row, "status"), "error",
                          json_object_get(row, "error"));
    char la[512], lr[512];
    label(la, sizeof(la), "access", instance, connection);
    label(lr, sizeof(lr), "refresh", instance, connection);
    rc = !t ? fail(err, n, "out of memory")
         : open_value(k, row, "access_enc", la, t, "access_token", err, n) ||
                 open_value(k, row, "refresh_enc", lr, t, "refresh_token", err,
                            n)
             ? -1
             : 0;
    json_decref(row);
    if (rc) {
        json_decref(t);
        return -1;
    }
    *token = t;
    return 0;
}

static json_t *seal(const secret_key *k, const json_t *t, const char *key,
                    const char *lab) {
    const char *v = json_string_value(json_object_get(t, key));
    if (!v)
        return json_null();
    char *enc = secret_encrypt(k, lab, v, strlen(v));
    json_t *out = enc ? json_string(enc) : NULL;
    free(enc);
    return out;
}

int tokens_save(store *st, const secret_key *k, const char *instance,
                const char *connection, const json_t *token, char *err,
                size_t n) {
    if (!k)
        return fail(err, n, "no master key: tokens are not stored");
    if (!st->vt->token_put)
        return fail(err, n, "this store keeps no tokens");
    char la[512], lr[512];
    label(la, sizeof(la), "access", instance, connection);
    label(lr, sizeof(lr), "refresh", instance, connection);
    json_t *a = seal(k, token, "access_token", la);
    json_t *r = seal(k, token, "refresh_token", lr);
    json_t *row =
        a && r ? json_pack("{s:s, s:s, s:O, s:O, s:O?, s:O?, s:O?, "
                           "s:O?, s:O?, s:O?}",
                           "instance", instance, "connection", connection,
                           "access_enc", a, "refresh_enc", r, "token_type",
                           json_object_get(token, "token_type"), "scope",
                           json_object_get(token, "scope"), "expires_us",
                           json_object_get(token, "expires_us"), "obtained_us",
                           json_object_get(token, "obtained_us"), "status",
                           json_object_get(token, "status"), "error",
                           json_object_get(token, "error"))
               : NULL;
    json_decref(a);
    json_decref(r);
    int rc = row ? st->vt->token_put(st, row) : FERRY_ENOMEM;
    json_decref(row);
    return rc ? fail(err, n, "cannot store the token: %s",
                     rc == FERRY_ENOMEM ? "out of memory" : st->errmsg)
              : 0;
}

int tokens_rotate(store *st, const secret_key *old, const secret_key *neu,
                  int *count, char *err, size_t n) {
    *count = 0;
    if (tokens_check_key(st, old, err, n))
        return -1;
    json_t *rows = NULL;
    if (st->vt->token_list && st->vt->token_list(st, &rows))
        return fail(err, n, "%s", st->errmsg);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *in = json_string_value(json_object_get(row, "instance"));
        const char *cn = json_string_value(json_object_get(row, "connection"));
        json_t *t = NULL;
        if (tokens_load(st, old, in, cn, &t, err, n) ||
            tokens_save(st, neu, in, cn, t, err, n)) {
            json_decref(t);
            json_decref(rows);
            return -1;
        }
        *count += json_is_string(json_object_get(t, "access_token")) +
                  json_is_string(json_object_get(t, "refresh_token"));
        json_decref(t);
    }
    json_decref(rows);
    char *enc =
        secret_encrypt(neu, CHECK_LABEL, CHECK_TEXT, strlen(CHECK_TEXT));
    int rc = enc ? st->vt->meta_set(st, CHECK_KEY, enc) : FERRY_ENOMEM;
    free(enc);
    if (rc)
        return fail(err, n, "cannot record the new key: %s", st->errmsg);
    (*count)++;
    return 0;
}

int tokens_obtain(store *st, const secret_key *k, const char *instance,
                  const char *connection, const json_t *fields, int force,
                  const char *refused, json_t **mem, char **access, int *reauth,
                  char *err, size_t n) {
    *access = NULL;
    *reauth = 0;
    if (oauth_check_fields(fields, err, n)) {
        char why[256];
        snprintf(why, sizeof(why), "%s", err);
        return fail(err, n, "%s", why);
    }
    json_t *tok = NULL;
    int stored = st && k;
    if (stored) {
        if (tokens_load(st, k, instance, connection, &tok, err, n))
            return -1;
    } else {
        tok = json_incref(*mem);
    }
    /* A 401 with a token other than the current one: someone refreshed
     * meanwhile; the current one is tried. */
    const char *cur = json_string_value(json_object_get(tok, "access_token"));
    if (force && refused && cur && strcmp(cur, refused))
        force = 0;
    const char *rt = NULL;
    enum oauth_action act = oauth_plan(fields, tok, store_now_us(), force, &rt);
    int rc = -1;
    if (act == OAUTH_USE) {
        *access = strdup(cur);
        rc = *access ? 0 : fail(err, n, "out of memory");
    } else if (act == OAUTH_REAUTH) {
        *reauth = 1;
        const char *e = json_string_value(json_object_get(tok, "error"));
        fail(err, n, "needs re-authorisation%s%s", e ? ": " : "", e ? e : "");
    } else if (act == OAUTH_AUTHORIZE) {
        *reauth = 1;
        fail(err, n,
             "not authorised yet: open /oauth/authorize/%s/%s on the "
             "host",
             instance, connection);
    } else {
        const char *pairs_refresh[] = {"grant_type", "refresh_token",
                                       "refresh_token", rt, NULL};
        const char *pairs_cc[] = {"grant_type", "client_credentials", NULL};
        oauth_result r;
        oauth_request(fields, act == OAUTH_REFRESH ? pairs_refresh : pairs_cc,
                      30000, &r);
        json_t *next = oauth_apply(tok, &r, store_now_us());
        if (!next) {
            fail(err, n, "%s",
                 r.message ? r.message : "the token request failed");
        } else {
            char why[256] = "";
            int saved = stored ? tokens_save(st, k, instance, connection, next,
                                             why, sizeof(why))
                               : 0;
            if (!stored) {
                json_decref(*mem);
                *mem = json_incref(next);
            }
            const char *status =
                json_string_value(json_object_get(next, "status"));
            if (saved) {
                fail(err, n, "%s", why);
            } else if (status && !strcmp(status, "reauth")) {
                *reauth = 1;
                fail(err, n, "needs re-authorisation: %s",
                     r.message ? r.message : "the refresh token was refused");
            } else {
                *access = strdup(
                    json_string_value(json_object_get(next, "access_token")));
                rc = *access ? 0 : fail(err, n, "out of memory");
            }
            json_decref(next);
        }
        oauth_result_clear(&r);
    }
    json_decref(tok);
    return rc;
}
