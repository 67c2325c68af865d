/*
 * core/oauth and core/tokens without a network: PKCE (the RFC 7636
 * appendix B vector), the refresh policy, tokens made from answers, the
 * authorization URL, and tokens in a real SQLite store: the master key's
 * check, encrypted rows, a wrong key, rotation.
 */
#include "oauth/oauth.h"
#include "tokens/tokens.h"

#include <ferry/ferry.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void test_pkce(void **state) {
    (void)state;
    char c[44], v[44], v2[44];
    assert_int_equal(
        oauth_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", c),
        0);
    assert_string_equal(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_int_equal(oauth_pkce_verifier(v), 0);
    assert_int_equal(oauth_pkce_verifier(v2), 0);
    assert_int_equal(strlen(v), 43);
    assert_string_not_equal(v, v2);
    assert_null(strpbrk(v, "+/="));
}

static json_t *js(const char *t) {
    json_t *v = json_loads(t, 0, NULL);
    assert_non_null(v);
    return v;
}

static void test_plan(void **state) {
    (void)state;
    const char *rt;
    json_t *cc = js("{\"grant\":\"client_credentials\"}");
    json_t *ac = js("{\"grant\":\"authorization_code\"}");
    json_t *seeded =
        js("{\"grant\":\"refresh_token\",\"refresh_token\":\"r0\"}");
    /* 100 s token obtained at 0: used until 80% of (100 - 1) s. */
    json_t *tok = js("{\"access_token\":\"a\",\"refresh_token\":\"r1\","
                     "\"obtained_us\":0,\"expires_us\":100000000,"
                     "\"status\":\"ok\"}");
    assert_int_equal(oauth_plan(cc, NULL, 0, 0, &rt), OAUTH_FETCH);
    assert_int_equal(oauth_plan(cc, tok, 79000000, 0, &rt), OAUTH_USE);
    assert_int_equal(oauth_plan(cc, tok, 79300000, 0, &rt), OAUTH_FETCH);
    assert_int_equal(oauth_plan(cc, tok, 1000, 1, &rt), OAUTH_FETCH);
    assert_int_equal(oauth_plan(ac, NULL, 0, 0, &rt), OAUTH_AUTHORIZE);
    assert_int_equal(oauth_plan(ac, tok, 90000000, 0, &rt), OAUTH_REFRESH);
    assert_string_equal(rt, "r1");
    assert_int_equal(oauth_plan(seeded, NULL, 0, 0, &rt), OAUTH_REFRESH);
    assert_string_equal(rt, "r0");
    json_t *re = js("{\"status\":\"reauth\",\"error\":\"invalid_grant\"}");
    assert_int_equal(oauth_plan(seeded, re, 0, 0, &rt), OAUTH_REAUTH);
    json_decref(cc);
    json_decref(ac);
    json_decref(seeded);
    json_decref(tok);
    json_decref(re);
}

static void test_apply(void **state) {
    (void)state;
    json_t *prev = js("{\"access_token\":\"a\",\"refresh_token\":\"r1\"}");
    oauth_result r = {
        .http_status = 200, .access_token = "a2", .expires_in_s = 30};
    json_t *t = oauth_apply(prev, &r, 5000000);
    assert_string_equal(json_string_value(json_object_get(t, "access_token")),
                        "a2");
    /* Not rotated: the old refresh token is kept. */
    assert_string_equal(json_string_value(json_object_get(t, "refresh_token")),
                        "r1");
    assert_int_equal(json_integer_value(json_object_get(t, "expires_us")),
                     35000000);
    assert_string_equal(json_string_value(json_object_get(t, "token_type")),
                        "Bearer");
    json_decref(t);
    r.refresh_token = "r2"; /* rotated */
    r.expires_in_s = -1;    /* none given: an hour */
    t = oauth_apply(prev, &r, 0);
    assert_string_equal(json_string_value(json_object_get(t, "refresh_token")),
                        "r2");
    assert_int_equal(json_integer_value(json_object_get(t, "expires_us")),
                     (json_int_t)OAUTH_DEFAULT_LIFETIME_S * 1000000);
    json_decref(t);
    oauth_result bad = {
        .http_status = 400, .error = "invalid_grant", .message = "refused"};
    t = oauth_apply(prev, &bad, 0);
    assert_string_equal(json_string_value(json_object_get(t, "status")),
                        "reauth");
    assert_true(json_is_null(json_object_get(t, "refresh_token")));
    json_decref(t);
    /* Slack's, on HTTP 200 */
    oauth_result used = {.http_status = 200,
                         .error = "invalid_refresh_token",
                         .message = "used up"};
    t = oauth_apply(prev, &used, 0);
    assert_string_equal(json_string_value(json_object_get(t, "status")),
                        "reauth");
    json_decref(t);
    oauth_result other = {.http_status = 400, .error = "invalid_client"};
    assert_null(oauth_apply(prev, &other, 0));
    oauth_result down = {.retryable = 1, .message = "refused connection"};
    assert_null(oauth_apply(prev, &down, 0));
    json_decref(prev);
}

static void test_authorize_url(void **state) {
    (void)state;
    json_t *f = js("{\"authorize_url\":\"https://id.example.com/auth?x=1\","
                   "\"client_id\":\"my app\",\"scopes\":[\"read\",\"write\"]}");
    char *u = oauth_authorize_url(f, "https://h/oauth/callback", "st8", "ch");
    assert_string_equal(u, "https://id.example.com/auth?x=1&response_type=code"
                           "&client_id=my%20app&redirect_uri=https%3A%2F%2Fh"
                           "%2Foauth%2Fcallback&scope=read%20write&state=st8"
                           "&code_challenge=ch&code_challenge_method=S256");
    free(u);
    char err[128];
    assert_int_equal(oauth_check_fields(f, err, sizeof(err)), -1);
    assert_string_equal(err, "token_url is not set");
    json_decref(f);
}

static void assert_same_token(const json_t *got, const json_t *want) {
    static const char *const keys[] = {
        "access_token", "refresh_token", "token_type", "expires_us",
        "obtained_us",  "status",        NULL};
    for (int i = 0; keys[i]; i++)
        if (!json_equal(json_object_get(got, keys[i]),
                        json_object_get(want, keys[i])))
            fail_msg("%s differs", keys[i]);
}

static void test_store(void **state) {
    (void)state;
    char dir[] = "/tmp/ferry-tokens-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/t.db", dir);
    char *oerr = NULL;
    store *st = store_open_sqlite(path, &oerr);
    assert_non_null(st);
    secret_key a, b;
    char err[512], hex[65];
    assert_int_equal(secret_key_generate(hex), 0);
    assert_int_equal(secret_key_parse(hex, &a, err, sizeof(err)), 0);
    assert_int_equal(secret_key_generate(hex), 0);
    assert_int_equal(secret_key_parse(hex, &b, err, sizeof(err)), 0);

    /* No key, nothing encrypted: fine. A key: recorded. */
    assert_int_equal(tokens_check_key(st, NULL, err, sizeof(err)), 0);
    assert_int_equal(tokens_check_key(st, &a, err, sizeof(err)), 0);
    assert_int_equal(tokens_check_key(st, &a, err, sizeof(err)), 0);
    assert_int_equal(tokens_check_key(st, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, a.id));
    assert_int_equal(tokens_check_key(st, &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is not the store's"));

    json_t *t = js("{\"access_token\":\"acc-SECRET-1\",\"refresh_token\":"
                   "\"ref-SECRET-2\",\"token_type\":\"Bearer\","
                   "\"expires_us\":10,\"obtained_us\":5,\"status\":\"ok\"}");
    assert_int_equal(tokens_save(st, &a, "i", "c", t, err, sizeof(err)), 0);
    json_t *row = NULL;
    assert_int_equal(st->vt->token_get(st, "i", "c", &row), 0);
    char *text = json_dumps(row, 0);
    assert_null(strstr(text, "SECRET"));
    free(text);
    json_decref(row);
    json_t *back = NULL;
    assert_int_equal(tokens_load(st, &a, "i", "c", &back, err, sizeof(err)), 0);
    assert_same_token(back, t);
    json_decref(back);
    assert_int_equal(tokens_load(st, &a, "i", "other", &back, err, sizeof(err)),
                     0);
    assert_null(back);
    /* A row's value moved to another row does not decrypt there. */
    assert_int_equal(st->vt->token_get(st, "i", "c", &row), 0);
    json_object_set_new(row, "connection", json_string("d"));
    assert_int_equal(st->vt->token_put(st, row), 0);
    json_decref(row);
    assert_int_equal(tokens_load(st, &a, "i", "d", &back, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "altered"));

    /* Rotation: in one transaction, then only the new key opens it. */
    int count = 0;
    assert_int_equal(st->vt->tx_begin(st), 0);
    assert_int_equal(tokens_rotate(st, &a, &b, &count, err, sizeof(err)), -1);
    assert_int_equal(st->vt->tx_rollback(st), 0); /* the moved row fails */
    assert_int_equal(tokens_load(st, &a, "i", "c", &back, err, sizeof(err)), 0);
    json_decref(back);
    json_t *gone = js("{\"status\":\"reauth\",\"error\":\"x\"}");
    assert_int_equal(tokens_save(st, &a, "i", "d", gone, err, sizeof(err)), 0);
    json_decref(gone);
    assert_int_equal(st->vt->tx_begin(st), 0);
    assert_int_equal(tokens_rotate(st, &a, &b, &count, err, sizeof(err)), 0);
    assert_int_equal(st->vt->tx_commit(st), 0);
    assert_int_equal(count, 3); /* two values and the check */
    assert_int_equal(tokens_check_key(st, &a, err, sizeof(err)), -1);
    assert_int_equal(tokens_check_key(st, &b, err, sizeof(err)), 0);
    assert_int_equal(tokens_load(st, &b, "i", "c", &back, err, sizeof(err)), 0);
    assert_same_token(back, t);
    json_decref(back);
    json_decref(t);
    store_close(st);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkce),  cmocka_unit_test(test_plan),
        cmocka_unit_test(test_apply), cmocka_unit_test(test_authorize_url),
        cmocka_unit_test(test_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
