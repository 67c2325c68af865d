/*
 * Webhook verification and body parsing. Signatures are the vectors of
 * the protocol reference (section 8) and values computed independently
 * with Python's hmac module, never with the code under test. Every request
 * carries its own clock (now_s), so nothing here reads the wall clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "webhook/webhook.h"

#include <ferry/ferry.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a request under construction ---- */

#define MAX_HDRS 8

typedef struct req {
    const char *names[MAX_HDRS];
    const char *values[MAX_HDRS];
    size_t n;
    webhook_request r;
} req;

static const char *lookup(void *ud, const char *lname) {
    req *q = ud;
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->names[i], lname) == 0)
            return q->values[i];
    return NULL;
}

/* method, body, now, then lower-case name/value pairs ending with NULL. */
static void mkreq(req *q, const char *method, const char *body, int64_t now,
                  ...) {
    memset(q, 0, sizeof(*q));
    q->r.method = method;
    q->r.path = "/webhooks/i/f";
    q->r.body = body;
    q->r.body_len = body ? strlen(body) : 0;
    q->r.header = lookup;
    q->r.ud = q;
    q->r.now_s = now;
    va_list ap;
    va_start(ap, now);
    const char *name;
    while ((name = va_arg(ap, const char *)) && q->n < MAX_HDRS) {
        q->names[q->n] = name;
        q->values[q->n++] = va_arg(ap, const char *);
    }
    va_end(ap);
}

static webhook_verifier *verifier(const char *conf_json) {
    json_error_t je;
    json_t *conf = json_loads(conf_json, 0, &je);
    if (!conf)
        fail_msg("bad test config %s: %s", conf_json, je.text);
    char err[256];
    webhook_verifier *v = webhook_verifier_new(conf, err, sizeof(err));
    json_decref(conf);
    if (!v)
        fail_msg("config %s refused: %s", conf_json, err);
    return v;
}

/* Verifies q with v; checks the outcome and that the reason is set. Returns
 * the secret index. */
static int expect(const webhook_verifier *v, req *q, int want_rc,
                  webhook_failure want_failure) {
    webhook_result res;
    int rc = webhook_verify(v, &q->r, &res);
    if (rc != want_rc || res.failure != want_failure)
        fail_msg("%s: rc %d (%s), failure %s, reason \"%s\"",
                 webhook_verifier_scheme(v), rc, ferry_err_name(rc),
                 webhook_failure_name(res.failure), res.reason);
    assert_non_null(res.reason);
    assert_int_equal(res.respond.status, 0);
    int idx = res.secret_index;
    webhook_result_clear(&res);
    return idx;
}

#define ACCEPT(v, q) expect((v), (q), 0, WEBHOOK_ACCEPTED)
#define REFUSE(v, q, f) expect((v), (q), FERRY_EAUTH, (f))

/* ---- GitHub ---- */

#define GH_SECRET "It's a Secret to Everybody"
#define GH_SIG                                                                 \
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

static void test_github(void **state) {
    (void)state;
    webhook_verifier *v =
        verifier("{\"scheme\": \"github\", \"secret\": \"" GH_SECRET "\"}");
    req q;
    assert_string_equal(webhook_verifier_scheme(v), "github");
    mkreq(&q, "POST", "Hello, World!", 0, "x-hub-signature-256", GH_SIG, NULL);
    assert_int_equal(ACCEPT(v, &q), 0);
    /* tampered body */
    mkreq(&q, "POST", "Hello, World?", 0, "x-hub-signature-256", GH_SIG, NULL);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    /* a signature wrong only in its last byte */
    mkreq(&q, "POST", "Hello, World!", 0, "x-hub-signature-256",
          "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b04"
          "3e18",
          NULL);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    /* missing header; the legacy sha1 header is not enough */
    mkreq(&q, "POST", "Hello, World!", 0, "x-hub-signature",
          "sha1=0000000000000000000000000000000000000000", NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    /* no prefix, short, not hex */
    mkreq(&q, "POST", "Hello, World!", 0, "x-hub-signature-256",
          &GH_SIG[strlen("sha256=")], NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    mkreq(&q, "POST", "Hello, World!", 0, "x-hub-signature-256", "sha256=7571",
          NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    mkreq(&q, "POST", "Hello, World!", 0, "x-hub-signature-256",
          "sha256=z57107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043"
          "e17",
          NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    webhook_verifier_free(v);

    /* wrong secret */
    v = verifier("{\"scheme\": \"github\", \"secret\": \"not it\"}");
    mkreq(&q, "POST", "Hello, World!", 0, "x-hub-signature-256", GH_SIG, NULL);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    webhook_verifier_free(v);

    /* rotation: the second secret matches */
    v = verifier("{\"scheme\": \"github\", \"secret\": [\"new one\", "
                 "\"" GH_SECRET "\"]}");
    mkreq(&q, "POST", "Hello, World!", 0, "x-hub-signature-256", GH_SIG, NULL);
    assert_int_equal(ACCEPT(v, &q), 1);
    webhook_verifier_free(v);
}

/* ---- Slack ---- */

#define SLACK_SECRET "8f742231b10e8888abcd99yyyzzz85a5"
#define SLACK_TS 1531420618
#define SLACK_BODY                                                             \
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain="            \
    "testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&"  \
    "user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url="      \
    "https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%"     \
    "2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."          \
    "803a0bc887a14d10d2c447fce8b6703c"
#define SLACK_SIG                                                              \
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

static void slack_req(req *q, const char *body, int64_t now, const char *sig) {
    mkreq(q, "POST", body, now, "x-slack-signature", sig,
          "x-slack-request-timestamp", "1531420618", NULL);
}

static void test_slack(void **state) {
    (void)state;
    webhook_verifier *v =
        verifier("{\"scheme\": \"slack\", \"secret\": \"" SLACK_SECRET "\"}");
    req q;
    slack_req(&q, SLACK_BODY, SLACK_TS, SLACK_SIG);
    assert_int_equal(ACCEPT(v, &q), 0);
    /* the default window is 300 s either way, inclusive */
    slack_req(&q, SLACK_BODY, SLACK_TS + 300, SLACK_SIG);
    ACCEPT(v, &q);
    slack_req(&q, SLACK_BODY, SLACK_TS - 300, SLACK_SIG);
    ACCEPT(v, &q);
    slack_req(&q, SLACK_BODY, SLACK_TS + 301, SLACK_SIG);
    REFUSE(v, &q, WEBHOOK_REPLAY);
    slack_req(&q, SLACK_BODY, SLACK_TS - 301, SLACK_SIG);
    REFUSE(v, &q, WEBHOOK_REPLAY);
    /* stale and future are told apart in the reason */
    webhook_result res;
    slack_req(&q, SLACK_BODY, SLACK_TS + 3600, SLACK_SIG);
    assert_int_equal(webhook_verify(v, &q.r, &res), FERRY_EAUTH);
    assert_non_null(strstr(res.reason, "old"));
    webhook_result_clear(&res);
    slack_req(&q, SLACK_BODY, SLACK_TS - 3600, SLACK_SIG);
    assert_int_equal(webhook_verify(v, &q.r, &res), FERRY_EAUTH);
    assert_non_null(strstr(res.reason, "future"));
    webhook_result_clear(&res);
    /* a forged signature on a stale request is a mismatch, not a replay */
    slack_req(&q, SLACK_BODY "x", SLACK_TS + 3600, SLACK_SIG);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    /* tampered body */
    slack_req(&q, SLACK_BODY "&x=1", SLACK_TS, SLACK_SIG);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    /* missing either header; a timestamp that is not a number */
    mkreq(&q, "POST", SLACK_BODY, SLACK_TS, "x-slack-signature", SLACK_SIG,
          NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    mkreq(&q, "POST", SLACK_BODY, SLACK_TS, "x-slack-request-timestamp",
          "1531420618", NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    mkreq(&q, "POST", SLACK_BODY, SLACK_TS, "x-slack-signature", SLACK_SIG,
          "x-slack-request-timestamp", "1531420618.5", NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    mkreq(&q, "POST", SLACK_BODY, SLACK_TS, "x-slack-signature", SLACK_SIG,
          "x-slack-request-timestamp", "-1531420618", NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    /* v1= is not Slack's version */
    slack_req(&q, SLACK_BODY, SLACK_TS,
              "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c6"
              "9b503");
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    webhook_verifier_free(v);

    /* wrong secret */
    v = verifier("{\"scheme\": \"slack\", \"secret\": \"other\"}");
    slack_req(&q, SLACK_BODY, SLACK_TS, SLACK_SIG);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    webhook_verifier_free(v);

    /* a configured tolerance */
    v = verifier("{\"scheme\": \"slack\", \"secret\": \"" SLACK_SECRET
                 "\", \"tolerance\": \"1m\"}");
    slack_req(&q, SLACK_BODY, SLACK_TS + 60, SLACK_SIG);
    ACCEPT(v, &q);
    slack_req(&q, SLACK_BODY, SLACK_TS + 61, SLACK_SIG);
    REFUSE(v, &q, WEBHOOK_REPLAY);
    webhook_verifier_free(v);
}

#define URLVERIF_BODY                                                          \
    "{\"token\":\"Jhj5dZrVaK7ZwHHjRyZWjbDl\",\"challenge\":"                   \
    "\"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P\",\"type\":"       \
    "\"url_verification\"}"
#define URLVERIF_SIG                                                           \
    "v0=f9bd80929259f3f6d5fe3a3186c453c89cd1ad4862815a15837584f31c993652"

static void test_slack_url_verification(void **state) {
    (void)state;
    webhook_verifier *v =
        verifier("{\"scheme\": \"slack\", \"secret\": \"" SLACK_SECRET "\"}");
    req q;
    webhook_result res;
    slack_req(&q, URLVERIF_BODY, SLACK_TS, URLVERIF_SIG);
    assert_int_equal(webhook_verify(v, &q.r, &res), 0);
    assert_int_equal(res.respond.status, 200);
    assert_string_equal(res.respond.content_type, "application/json");
    json_t *j = json_loadb(res.respond.body, res.respond.body_len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(j, "challenge")),
                        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
    json_decref(j);
    webhook_result_clear(&res);
    assert_null(res.respond.body);

    /* Unsigned (here: signed with another secret), it is not answered. */
    slack_req(&q, URLVERIF_BODY, SLACK_TS,
              "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c6"
              "9b503");
    assert_int_equal(webhook_verify(v, &q.r, &res), FERRY_EAUTH);
    assert_int_equal(res.respond.status, 0);
    assert_null(res.respond.body);
    webhook_result_clear(&res);
    /* Nor when it is stale. */
    slack_req(&q, URLVERIF_BODY, SLACK_TS + 1000, URLVERIF_SIG);
    assert_int_equal(webhook_verify(v, &q.r, &res), FERRY_EAUTH);
    assert_int_equal(res.failure, WEBHOOK_REPLAY);
    assert_int_equal(res.respond.status, 0);
    webhook_result_clear(&res);
    webhook_verifier_free(v);
}

/* ---- Stripe ---- */

#define STRIPE_V1                                                              \
    "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"
#define OTHER_HEX                                                              \
    "0000000000000000000000000000000000000000000000000000000000000000"

static void stripe_req(req *q, const char *body, int64_t now,
                       const char *header) {
    mkreq(q, "POST", body, now, "stripe-signature", header, NULL);
}

static void test_stripe(void **state) {
    (void)state;
    webhook_verifier *v =
        verifier("{\"scheme\": \"stripe\", \"secret\": \"whsec_test_secret\"}");
    req q;
    const char *body = "{\"id\":\"evt_1\"}";
    stripe_req(&q, body, 1700000000, "t=1700000000,v1=" STRIPE_V1);
    assert_int_equal(ACCEPT(v, &q), 0);
    /* two v1 signatures (the sender signs with old and new secret): either
     * may be the right one; v0 and unknown keys are ignored */
    stripe_req(&q, body, 1700000000,
               "t=1700000000,v1=" OTHER_HEX ",v1=" STRIPE_V1 ",v0=" OTHER_HEX);
    ACCEPT(v, &q);
    stripe_req(&q, body, 1700000000,
               "t=1700000000, v1=" STRIPE_V1 " , v1=" OTHER_HEX);
    ACCEPT(v, &q);
    /* the signature in v0 only does not count */
    stripe_req(&q, body, 1700000000,
               "t=1700000000,v0=" STRIPE_V1 ",v1=" OTHER_HEX);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    /* tampered body, stale, future */
    stripe_req(&q, "{\"id\":\"evt_2\"}", 1700000000,
               "t=1700000000,v1=" STRIPE_V1);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    stripe_req(&q, body, 1700000301, "t=1700000000,v1=" STRIPE_V1);
    REFUSE(v, &q, WEBHOOK_REPLAY);
    stripe_req(&q, body, 1699999699, "t=1700000000,v1=" STRIPE_V1);
    REFUSE(v, &q, WEBHOOK_REPLAY);
    /* a changed timestamp breaks the signature */
    stripe_req(&q, body, 1700000000, "t=1700000001,v1=" STRIPE_V1);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    /* malformed headers */
    stripe_req(&q, body, 1700000000, "v1=" STRIPE_V1);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    stripe_req(&q, body, 1700000000, "t=1700000000");
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    stripe_req(&q, body, 1700000000, "t=abc,v1=" STRIPE_V1);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    stripe_req(&q, body, 1700000000, "t=1700000000,t=1700000000,v1=" STRIPE_V1);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    stripe_req(&q, body, 1700000000, "t=1700000000,garbage,v1=" STRIPE_V1);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    mkreq(&q, "POST", body, 1700000000, NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    webhook_verifier_free(v);

    /* secret rotation: several secrets, the second matches */
    v = verifier("{\"scheme\": \"stripe\", \"secret\": [\"whsec_new\", "
                 "\"whsec_test_secret\"], \"tolerance\": \"10m\"}");
    stripe_req(&q, body, 1700000000 + 600, "t=1700000000,v1=" STRIPE_V1);
    assert_int_equal(ACCEPT(v, &q), 1);
    stripe_req(&q, body, 1700000000 + 601, "t=1700000000,v1=" STRIPE_V1);
    REFUSE(v, &q, WEBHOOK_REPLAY);
    webhook_verifier_free(v);

    /* the whsec_ prefix is part of Stripe's key */
    v = verifier("{\"scheme\": \"stripe\", \"secret\": \"test_secret\"}");
    stripe_req(&q, body, 1700000000, "t=1700000000,v1=" STRIPE_V1);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    webhook_verifier_free(v);
}

/* ---- Standard Webhooks ---- */

#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS 1614265330
#define SW_BODY "{\"test\": 2432232314}"
#define SW_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define SW_OTHER "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

static void sw_req(req *q, const char *body, int64_t now, const char *id,
                   const char *sig) {
    mkreq(q, "POST", body, now, "webhook-id", id, "webhook-timestamp",
          "1614265330", "webhook-signature", sig, NULL);
}

static void test_standard_webhooks(void **state) {
    (void)state;
    webhook_verifier *v = verifier(
        "{\"scheme\": \"standard-webhooks\", \"secret\": \"" SW_SECRET "\"}");
    req q;
    sw_req(&q, SW_BODY, SW_TS, SW_ID, SW_SIG);
    assert_int_equal(ACCEPT(v, &q), 0);
    /* several signatures, space-separated; v1a (ed25519) is skipped */
    sw_req(&q, SW_BODY, SW_TS, SW_ID,
           "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= " SW_OTHER
           " " SW_SIG);
    ACCEPT(v, &q);
    /* a right MAC under the v1a label is not a v1 signature */
    sw_req(&q, SW_BODY, SW_TS, SW_ID,
           "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    sw_req(&q, SW_BODY, SW_TS, SW_ID,
           "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= " SW_OTHER);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    /* wrong only in the last byte */
    sw_req(&q, SW_BODY, SW_TS, SW_ID,
           "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OI=");
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    /* tampered body, another id, stale, future */
    sw_req(&q, "{\"test\": 2432232315}", SW_TS, SW_ID, SW_SIG);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    sw_req(&q, SW_BODY, SW_TS, "msg_other", SW_SIG);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    sw_req(&q, SW_BODY, SW_TS + 301, SW_ID, SW_SIG);
    REFUSE(v, &q, WEBHOOK_REPLAY);
    sw_req(&q, SW_BODY, SW_TS - 301, SW_ID, SW_SIG);
    REFUSE(v, &q, WEBHOOK_REPLAY);
    /* an id with a '.' would make id.ts.body ambiguous */
    sw_req(&q, SW_BODY, SW_TS, "msg.1", SW_SIG);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    /* missing headers */
    mkreq(&q, "POST", SW_BODY, SW_TS, "webhook-timestamp", "1614265330",
          "webhook-signature", SW_SIG, NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    mkreq(&q, "POST", SW_BODY, SW_TS, "webhook-id", SW_ID, "webhook-signature",
          SW_SIG, NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    mkreq(&q, "POST", SW_BODY, SW_TS, "webhook-id", SW_ID, "webhook-timestamp",
          "1614265330", NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    /* bad base64 in the only v1 token */
    sw_req(&q, SW_BODY, SW_TS, SW_ID, "v1,****");
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    webhook_verifier_free(v);

    /* wrong secret; then rotation with the right one second */
    v = verifier("{\"scheme\": \"standard-webhooks\", \"secret\": "
                 "\"whsec_YW5vdGhlci1zZWNyZXQtb2YtMjRieXRl\"}");
    sw_req(&q, SW_BODY, SW_TS, SW_ID, SW_SIG);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    webhook_verifier_free(v);
    v = verifier("{\"scheme\": \"standard-webhooks\", \"secret\": "
                 "[\"whsec_YW5vdGhlci1zZWNyZXQtb2YtMjRieXRl\", "
                 "\"" SW_SECRET "\"]}");
    sw_req(&q, SW_BODY, SW_TS, SW_ID, SW_SIG);
    assert_int_equal(ACCEPT(v, &q), 1);
    webhook_verifier_free(v);
    /* without the prefix the secret is still base64 */
    v = verifier("{\"scheme\": \"standard-webhooks\", \"secret\": "
                 "\"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"}");
    sw_req(&q, SW_BODY, SW_TS, SW_ID, SW_SIG);
    ACCEPT(v, &q);
    webhook_verifier_free(v);
}

/* ---- Dropbox ---- */

#define DBX_BODY                                                               \
    "{\"list_folder\": {\"accounts\": "                                        \
    "[\"dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc\"]}}"
#define DBX_SIG                                                                \
    "fefd2407288a112d5a540c1663bb570ee986d14dcc81d3a3e91c03b96a9a7110"

static void test_dropbox(void **state) {
    (void)state;
    webhook_verifier *v = verifier(
        "{\"scheme\": \"dropbox\", \"secret\": \"app_secret_example\"}");
    req q;
    mkreq(&q, "POST", DBX_BODY, 0, "x-dropbox-signature", DBX_SIG, NULL);
    assert_int_equal(ACCEPT(v, &q), 0);
    mkreq(&q, "POST", DBX_BODY " ", 0, "x-dropbox-signature", DBX_SIG, NULL);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    mkreq(&q, "POST", DBX_BODY, 0, NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    mkreq(&q, "POST", DBX_BODY, 0, "x-dropbox-signature", "sha256=" DBX_SIG,
          NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    webhook_verifier_free(v);

    v = verifier("{\"scheme\": \"dropbox\", \"secret\": \"wrong\"}");
    mkreq(&q, "POST", DBX_BODY, 0, "x-dropbox-signature", DBX_SIG, NULL);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    webhook_verifier_free(v);
}

static void test_dropbox_challenge(void **state) {
    (void)state;
    webhook_verifier *v = verifier(
        "{\"scheme\": \"dropbox\", \"secret\": \"app_secret_example\"}");
    req q;
    webhook_result res;
    mkreq(&q, "GET", NULL, 0, NULL);
    q.r.query = "x=1&challenge=ab%2Bc+d&challenge=second";
    assert_int_equal(webhook_verify(v, &q.r, &res), 0);
    assert_int_equal(res.respond.status, 200);
    assert_string_equal(res.respond.content_type, "text/plain");
    assert_int_equal(res.respond.nheaders, 1);
    assert_string_equal(res.respond.headers[0].name, "X-Content-Type-Options");
    assert_string_equal(res.respond.headers[0].value, "nosniff");
    assert_int_equal(res.respond.body_len, 6);
    assert_memory_equal(res.respond.body, "ab+c d", 6);
    assert_int_equal(res.secret_index, -1);
    webhook_result_clear(&res);

    /* a GET without a challenge starts nothing */
    q.r.query = "x=1";
    assert_int_equal(webhook_verify(v, &q.r, &res), FERRY_EAUTH);
    assert_int_equal(res.failure, WEBHOOK_MISSING);
    assert_int_equal(res.respond.status, 0);
    webhook_result_clear(&res);
    q.r.query = NULL;
    REFUSE(v, &q, WEBHOOK_MISSING);
    q.r.query = "challenge=";
    REFUSE(v, &q, WEBHOOK_MISSING);
    /* an over-long challenge is not echoed */
    char *longq = malloc(2100);
    strcpy(longq, "challenge=");
    memset(longq + 10, 'a', 2000);
    longq[2010] = '\0';
    q.r.query = longq;
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    free(longq);
    webhook_verifier_free(v);
}

/* ---- Shopify ---- */

static void test_shopify(void **state) {
    (void)state;
    webhook_verifier *v =
        verifier("{\"scheme\": \"shopify\", \"secret\": \"shpss_example\"}");
    req q;
    mkreq(&q, "POST", "{\"id\":1}", 0, "x-shopify-hmac-sha256",
          "QvBzlTPo5RYh0lGvEXvN6nLJRmU2XrsL6x7vnfUCHCs=", NULL);
    assert_int_equal(ACCEPT(v, &q), 0);
    /* padding left out */
    mkreq(&q, "POST", "{\"id\":1}", 0, "x-shopify-hmac-sha256",
          "QvBzlTPo5RYh0lGvEXvN6nLJRmU2XrsL6x7vnfUCHCs", NULL);
    ACCEPT(v, &q);
    mkreq(&q, "POST", "{\"id\":2}", 0, "x-shopify-hmac-sha256",
          "QvBzlTPo5RYh0lGvEXvN6nLJRmU2XrsL6x7vnfUCHCs=", NULL);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    /* hex is not Shopify's encoding */
    mkreq(&q, "POST", "{\"id\":1}", 0, "x-shopify-hmac-sha256", OTHER_HEX,
          NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    mkreq(&q, "POST", "{\"id\":1}", 0, "x-shopify-hmac-sha256",
          "QvBz===", NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    mkreq(&q, "POST", "{\"id\":1}", 0, NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    webhook_verifier_free(v);
}

/* ---- generic HMAC ---- */

static void test_hmac(void **state) {
    (void)state;
    req q;
    webhook_verifier *v = verifier(
        "{\"scheme\": \"hmac\", \"header\": \"X-Signature\", \"algorithm\": "
        "\"sha1\", \"prefix\": \"sha1=\", \"secret\": \"k\"}");
    mkreq(&q, "POST", "b", 0, "x-signature",
          "sha1=21f3ecf8ae69313b04b7f28478e174d764970e8f", NULL);
    ACCEPT(v, &q);
    /* upper-case hex is the same signature */
    mkreq(&q, "POST", "b", 0, "x-signature",
          "sha1=21F3ECF8AE69313B04B7F28478E174D764970E8F", NULL);
    ACCEPT(v, &q);
    mkreq(&q, "POST", "b", 0, "x-signature",
          "21f3ecf8ae69313b04b7f28478e174d764970e8f", NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    mkreq(&q, "POST", "c", 0, "x-signature",
          "sha1=21f3ecf8ae69313b04b7f28478e174d764970e8f", NULL);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    mkreq(&q, "POST", "b", 0, "x-other",
          "sha1=21f3ecf8ae69313b04b7f28478e174d764970e8f", NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    webhook_verifier_free(v);

    v = verifier("{\"scheme\": \"hmac\", \"header\": \"x-sig\", "
                 "\"algorithm\": \"sha512\", \"encoding\": \"base64\", "
                 "\"secret\": \"k\"}");
    mkreq(&q, "POST", "b", 0, "x-sig",
          "Z7kYk2Mu93aZsuyz6JkRYGcHcsrHu/4FyiISkrNx3PNq1aGOuyryCpgEZBbtlCLg6c"
          "sfFRUETtp8kpiQdKzwuw==",
          NULL);
    ACCEPT(v, &q);
    /* a SHA-256-sized signature is malformed for sha512 */
    mkreq(&q, "POST", "b", 0, "x-sig",
          "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    webhook_verifier_free(v);

    /* defaults: sha256, hex, no prefix */
    v = verifier("{\"scheme\": \"hmac\", \"header\": \"x-sig\", \"secret\": "
                 "[\"x\", \"k\"]}");
    mkreq(&q, "POST", "b", 0, "x-sig",
          "2fb39898cf6b5cadbde2377d14dbc7331caaf0825d59106d090deeb785aaa389",
          NULL);
    assert_int_equal(ACCEPT(v, &q), 1);
    webhook_verifier_free(v);
}

/* ---- api_key and basic ---- */

static void test_api_key(void **state) {
    (void)state;
    req q;
    webhook_verifier *v = verifier("{\"scheme\": \"api_key\", \"header\": "
                                   "\"X-Api-Key\", \"secret\": \"s3cr3t\"}");
    assert_string_equal(webhook_verifier_secret_header(v), "x-api-key");
    assert_null(webhook_verifier_secret_query(v));
    mkreq(&q, "POST", "", 0, "x-api-key", "s3cr3t", NULL);
    ACCEPT(v, &q);
    mkreq(&q, "POST", "", 0, "x-api-key", "s3cr3", NULL);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    mkreq(&q, "POST", "", 0, "x-api-key", "s3cr3t!", NULL);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    mkreq(&q, "POST", "", 0, NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    mkreq(&q, "POST", "", 0, "x-api-key", "", NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    /* the key in the query is not the key in the header */
    q.r.query = "x-api-key=s3cr3t";
    REFUSE(v, &q, WEBHOOK_MISSING);
    webhook_verifier_free(v);

    /* a prefix such as "Bearer ", matched case-insensitively */
    v = verifier("{\"scheme\": \"api_key\", \"header\": \"authorization\", "
                 "\"prefix\": \"Bearer \", \"secret\": [\"old\", \"new\"]}");
    mkreq(&q, "POST", "", 0, "authorization", "bearer new", NULL);
    assert_int_equal(ACCEPT(v, &q), 1);
    mkreq(&q, "POST", "", 0, "authorization", "new", NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    webhook_verifier_free(v);

    v = verifier("{\"scheme\": \"api_key\", \"query\": \"key\", \"secret\": "
                 "\"a+b c\"}");
    assert_string_equal(webhook_verifier_secret_query(v), "key");
    assert_null(webhook_verifier_secret_header(v));
    mkreq(&q, "POST", "", 0, NULL);
    q.r.query = "other=1&key=a%2Bb+c";
    ACCEPT(v, &q);
    q.r.query = "key=a+b+c";
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    q.r.query = "keys=a%2Bb+c";
    REFUSE(v, &q, WEBHOOK_MISSING);
    q.r.query = NULL;
    REFUSE(v, &q, WEBHOOK_MISSING);
    mkreq(&q, "POST", "", 0, "key", "a+b c", NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    webhook_verifier_free(v);
}

static void test_basic(void **state) {
    (void)state;
    req q;
    webhook_verifier *v = verifier(
        "{\"scheme\": \"basic\", \"user\": \"user\", \"password\": \"pass\"}");
    assert_string_equal(webhook_verifier_secret_header(v), "authorization");
    mkreq(&q, "POST", "", 0, "authorization", "Basic dXNlcjpwYXNz", NULL);
    assert_int_equal(ACCEPT(v, &q), 0);
    mkreq(&q, "POST", "", 0, "authorization", "basic  dXNlcjpwYXNz", NULL);
    ACCEPT(v, &q);
    /* user:wrong */
    mkreq(&q, "POST", "", 0, "authorization", "Basic dXNlcjp3cm9uZw==", NULL);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    /* "userpass": no colon */
    mkreq(&q, "POST", "", 0, "authorization", "Basic dXNlcnBhc3M=", NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    mkreq(&q, "POST", "", 0, "authorization", "Basic !!!", NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    mkreq(&q, "POST", "", 0, "authorization", "Bearer dXNlcjpwYXNz", NULL);
    REFUSE(v, &q, WEBHOOK_MALFORMED);
    mkreq(&q, "POST", "", 0, NULL);
    REFUSE(v, &q, WEBHOOK_MISSING);
    webhook_verifier_free(v);

    /* the user is checked too: pass:user */
    v = verifier(
        "{\"scheme\": \"basic\", \"user\": \"pass\", \"password\": \"pass\"}");
    mkreq(&q, "POST", "", 0, "authorization", "Basic dXNlcjpwYXNz", NULL);
    REFUSE(v, &q, WEBHOOK_MISMATCH);
    webhook_verifier_free(v);
}

/* ---- results and arguments ---- */

static void test_reasons_hold_no_secrets(void **state) {
    (void)state;
    /* Every refusal's reason is static text: it quotes neither the secret
     * nor what the request sent. */
    webhook_verifier *v = verifier("{\"scheme\": \"api_key\", \"header\": "
                                   "\"x-k\", \"secret\": \"hunter2\"}");
    req q;
    webhook_result res;
    mkreq(&q, "POST", "", 0, "x-k", "hunter", NULL);
    assert_int_equal(webhook_verify(v, &q.r, &res), FERRY_EAUTH);
    assert_null(strstr(res.reason, "hunter"));
    webhook_result_clear(&res);
    webhook_verifier_free(v);

    v = verifier("{\"scheme\": \"github\", \"secret\": \"" GH_SECRET "\"}");
    mkreq(&q, "POST", "Hello", 0, "x-hub-signature-256", GH_SIG, NULL);
    assert_int_equal(webhook_verify(v, &q.r, &res), FERRY_EAUTH);
    assert_null(strstr(res.reason, "757107"));
    assert_null(strstr(res.reason, "Secret"));
    webhook_result_clear(&res);

    assert_int_equal(webhook_verify(v, NULL, &res), FERRY_EINVAL);
    webhook_result_clear(&res);
    assert_int_equal(webhook_verify(NULL, &q.r, &res), FERRY_EINVAL);
    webhook_result_clear(&res);
    assert_int_equal(webhook_verify(v, &q.r, NULL), FERRY_EINVAL);
    /* no header callback: every header is absent */
    q.r.header = NULL;
    REFUSE(v, &q, WEBHOOK_MISSING);
    webhook_verifier_free(v);
    webhook_verifier_free(NULL);
    webhook_result_clear(NULL);
    assert_string_equal(webhook_failure_name(WEBHOOK_REPLAY), "replay");
}

/* ---- configuration errors ---- */

static void config_error(const char *conf_json, const char *want_prefix) {
    json_t *conf = json_loads(conf_json, JSON_DECODE_ANY, NULL);
    assert_non_null(conf);
    char err[256] = "";
    webhook_verifier *v = webhook_verifier_new(conf, err, sizeof(err));
    json_decref(conf);
    if (v) {
        webhook_verifier_free(v);
        fail_msg("accepted: %s", conf_json);
    }
    if (strncmp(err, want_prefix, strlen(want_prefix)) != 0)
        fail_msg("%s: got \"%s\", want \"%s...\"", conf_json, err, want_prefix);
    assert_null(strchr(err, '\n'));
    /* the secret values used below never show */
    assert_null(strstr(err, "TOPSECRET"));
}

static void test_config_errors(void **state) {
    (void)state;
    config_error("[1]", "expected an object");
    config_error("\"github\"", "expected an object");
    config_error("{\"secret\": \"TOPSECRET\"}", "scheme: missing");
    config_error("{\"scheme\": \"gitlab\", \"secret\": \"TOPSECRET\"}",
                 "scheme: unknown");
    config_error("{\"scheme\": 1, \"secret\": \"TOPSECRET\"}",
                 "scheme: unknown");
    config_error("{\"scheme\": \"github\"}", "secret: missing");
    config_error("{\"scheme\": \"github\", \"secret\": \"\"}", "secret:");
    config_error("{\"scheme\": \"github\", \"secret\": 5}", "secret:");
    config_error("{\"scheme\": \"github\", \"secret\": []}", "secret:");
    config_error("{\"scheme\": \"github\", \"secret\": [\"TOPSECRET\", 1]}",
                 "secret:");
    config_error("{\"scheme\": \"github\", \"secret\": [\"1\", \"2\", \"3\", "
                 "\"4\", \"5\", \"6\", \"7\", \"8\", \"9\"]}",
                 "secret:");
    config_error("{\"scheme\": \"github\", \"secret\": \"TOPSECRET\", "
                 "\"tolerance\": \"5m\"}",
                 "tolerance: not a field");
    config_error("{\"scheme\": \"stripe\", \"secret\": \"TOPSECRET\", "
                 "\"tolerence\": \"5m\"}",
                 "tolerence: not a field");
    config_error("{\"scheme\": \"stripe\", \"secret\": \"TOPSECRET\", "
                 "\"tolerance\": \"5 minutes\"}",
                 "tolerance: expected");
    config_error("{\"scheme\": \"slack\", \"secret\": \"TOPSECRET\", "
                 "\"tolerance\": \"0s\"}",
                 "tolerance: expected");
    config_error("{\"scheme\": \"slack\", \"secret\": \"TOPSECRET\", "
                 "\"tolerance\": \"25h\"}",
                 "tolerance: expected");
    config_error("{\"scheme\": \"slack\", \"secret\": \"TOPSECRET\", "
                 "\"tolerance\": -5}",
                 "tolerance: expected");
    config_error("{\"scheme\": \"slack\", \"secret\": \"TOPSECRET\", "
                 "\"tolerance\": \"99999999999999999999999m\"}",
                 "tolerance: expected");
    config_error("{\"scheme\": \"standard-webhooks\", \"secret\": "
                 "\"whsec_TOPSECRET!\"}",
                 "secret: expected \"whsec_\"");
    config_error("{\"scheme\": \"standard-webhooks\", \"secret\": \"whsec_\"}",
                 "secret: expected \"whsec_\"");
    config_error("{\"scheme\": \"hmac\", \"secret\": \"TOPSECRET\"}",
                 "header: missing");
    config_error("{\"scheme\": \"hmac\", \"header\": \"x sig\", \"secret\": "
                 "\"TOPSECRET\"}",
                 "header: expected");
    config_error("{\"scheme\": \"hmac\", \"header\": \"x-sig\", "
                 "\"algorithm\": \"md5\", \"secret\": \"TOPSECRET\"}",
                 "algorithm: expected");
    config_error("{\"scheme\": \"hmac\", \"header\": \"x-sig\", "
                 "\"encoding\": \"base32\", \"secret\": \"TOPSECRET\"}",
                 "encoding: expected");
    config_error("{\"scheme\": \"hmac\", \"header\": \"x-sig\", "
                 "\"prefix\": 1, \"secret\": \"TOPSECRET\"}",
                 "prefix: expected");
    config_error("{\"scheme\": \"api_key\", \"secret\": \"TOPSECRET\"}",
                 "header, query: expected exactly one");
    config_error("{\"scheme\": \"api_key\", \"header\": \"x-k\", \"query\": "
                 "\"k\", \"secret\": \"TOPSECRET\"}",
                 "header, query: expected exactly one");
    config_error("{\"scheme\": \"api_key\", \"query\": \"k\", \"prefix\": "
                 "\"Bearer \", \"secret\": \"TOPSECRET\"}",
                 "prefix: only");
    config_error("{\"scheme\": \"api_key\", \"header\": \"x-k\"}",
                 "secret: missing");
    config_error("{\"scheme\": \"basic\", \"password\": \"TOPSECRET\"}",
                 "user: missing");
    config_error("{\"scheme\": \"basic\", \"user\": \"a:b\", \"password\": "
                 "\"TOPSECRET\"}",
                 "user: expected");
    config_error("{\"scheme\": \"basic\", \"user\": \"u\"}",
                 "password: missing");
    config_error("{\"scheme\": \"basic\", \"user\": \"u\", \"password\": "
                 "\"TOPSECRET\", \"secret\": \"x\"}",
                 "secret: not a field of the \"basic\" scheme");
    /* a field name that could not be printed on one line */
    config_error("{\"scheme\": \"github\", \"secret\": \"x\", \"a\\nb\": 1}",
                 "a?b: not a field");
    /* NULL conf, NULL err */
    assert_null(webhook_verifier_new(NULL, NULL, 0));

    /* and the accepted forms of tolerance */
    const char *ok[] = {"\"300s\"", "\"5m\"", "\"1h\"", "\"24h\"", "60"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char buf[200];
        snprintf(buf, sizeof(buf),
                 "{\"scheme\": \"stripe\", \"secret\": \"s\", "
                 "\"tolerance\": %s}",
                 ok[i]);
        webhook_verifier_free(verifier(buf));
    }
}

/* ---- body parsing ---- */

static json_t *parse(const char *ctype, const char *body, size_t len, char *err,
                     size_t errlen) {
    return webhook_parse_body(ctype, body, len, err, errlen);
}

static void assert_json(const json_t *got, const char *want_json) {
    json_t *want = json_loads(want_json, JSON_DECODE_ANY, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
        fail_msg("got %s, want %s", g ? g : "NULL", want_json);
    }
    json_decref(want);
}

static void test_body_json(void **state) {
    (void)state;
    char err[200];
    const char *b = "{\"a\": [1, 2], \"b\": \"x\"}";
    json_t *j = parse("application/json; charset=utf-8", b, strlen(b), err,
                      sizeof(err));
    assert_json(j, b);
    json_decref(j);
    j = parse("Application/Vnd.Api+JSON", "[true]", 6, err, sizeof(err));
    assert_json(j, "[true]");
    json_decref(j);
    j = parse("application/json", "42", 2, err, sizeof(err));
    assert_json(j, "42");
    json_decref(j);
    /* malformed: the reason says where, and quotes nothing */
    assert_null(parse("application/json", "{\"password\": hunter2}", 21, err,
                      sizeof(err)));
    assert_non_null(strstr(err, "not valid JSON"));
    assert_null(strstr(err, "hunter2"));
    assert_null(parse("application/json", "", 0, err, sizeof(err)));
    assert_true(err[0] != '\0');
    assert_null(parse("application/json", "{}\0{}", 5, err, sizeof(err)));
    assert_true(err[0] != '\0');
}

static void test_body_form(void **state) {
    (void)state;
    char err[200];
    const char *b = "a=1&b=x+y&a=2&c&d=%zz&e=%C3%A9&&f=%FF&a=3&=v&g=%41%";
    json_t *j = parse("application/x-www-form-urlencoded", b, strlen(b), err,
                      sizeof(err));
    assert_json(j, "{\"a\": [\"1\", \"2\", \"3\"], \"b\": \"x y\", \"c\": \"\","
                   " \"d\": \"%zz\", \"e\": \"\\u00e9\", \"f\": \"\\ufffd\","
                   " \"\": \"v\", \"g\": \"A%\"}");
    json_decref(j);
    j = parse("application/x-www-form-urlencoded", "", 0, err, sizeof(err));
    assert_json(j, "{}");
    json_decref(j);
    /* a NUL byte in a key is kept */
    j = parse("application/x-www-form-urlencoded", "k%00x=1", 7, err,
              sizeof(err));
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 1);
    assert_non_null(json_object_getn(j, "k\0x", 3));
    json_decref(j);
    /* the Slack vector's body, a slash command */
    j = parse("application/x-www-form-urlencoded", SLACK_BODY,
              strlen(SLACK_BODY), err, sizeof(err));
    assert_string_equal(json_string_value(json_object_get(j, "command")),
                        "/webhook-collect");
    assert_string_equal(json_string_value(json_object_get(j, "text")), "");
    json_decref(j);
}

#define MP_CT "multipart/form-data; boundary=----XyZ"

static void test_body_multipart(void **state) {
    (void)state;
    char err[200];
    static const char b[] =
        "preamble\r\n"
        "------XyZ\r\n"
        "Content-Disposition: form-data; name=\"title\"\r\n"
        "\r\n"
        "Caf\xc3\xa9 menu\r\n"
        "------XyZ\r\n"
        "content-disposition: form-data; name=\"file\"; "
        "filename=\"a \\\"b\\\".bin\"\r\n"
        "Content-Type: application/octet-stream\r\n"
        "\r\n"
        "\x00\x01\xff\r\n"
        "------XyZ  \r\n"
        "Content-Disposition: form-data; name=\"notes\"; filename=\"n.txt\";"
        "\r\n filename*=UTF-8''n%C3%B6tes.txt\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "line 1\r\nline 2\r\n"
        "------XyZ\r\n"
        "Content-Disposition: form-data; name=\"empty\"\r\n"
        "\r\n"
        "\r\n"
        "------XyZ\r\n"
        "Content-Disposition: form-data; name=\"bad-text\"\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "\xff\xfe\r\n"
        "------XyZ--\r\n"
        "epilogue";
    json_t *j = parse(MP_CT, b, sizeof(b) - 1, err, sizeof(err));
    if (!j)
        fail_msg("%s", err);
    assert_json(j, "["
                   "{\"name\": \"title\", \"filename\": null, "
                   "\"content_type\": null, \"body\": \"Caf\\u00e9 menu\"},"
                   "{\"name\": \"file\", \"filename\": \"a \\\"b\\\".bin\", "
                   "\"content_type\": \"application/octet-stream\", "
                   "\"body\": \"AAH/\", \"encoding\": \"base64\"},"
                   "{\"name\": \"notes\", \"filename\": \"n\\u00f6tes.txt\", "
                   "\"content_type\": \"text/plain; charset=utf-8\", "
                   "\"body\": \"line 1\\r\\nline 2\"},"
                   "{\"name\": \"empty\", \"filename\": null, "
                   "\"content_type\": null, \"body\": \"\"},"
                   "{\"name\": \"bad-text\", \"filename\": null, "
                   "\"content_type\": \"text/plain\", \"body\": \"//4=\", "
                   "\"encoding\": \"base64\"}"
                   "]");
    json_decref(j);

    /* a quoted boundary, no preamble, a part with no headers */
    static const char b2[] = "--a b\r\n"
                             "\r\n"
                             "x\r\n"
                             "--a b--";
    j = parse("multipart/form-data; charset=utf-8; boundary=\"a b\"", b2,
              sizeof(b2) - 1, err, sizeof(err));
    assert_json(j, "[{\"name\": null, \"filename\": null, \"content_type\": "
                   "null, \"body\": \"x\"}]");
    json_decref(j);
    /* no parts at all */
    j = parse(MP_CT, "------XyZ--", 11, err, sizeof(err));
    assert_json(j, "[]");
    json_decref(j);
}

static void multipart_error(const char *ctype, const char *body,
                            const char *want) {
    char err[200] = "x";
    json_t *j = parse(ctype, body, strlen(body), err, sizeof(err));
    if (j) {
        json_decref(j);
        fail_msg("accepted: %s", body);
    }
    if (!strstr(err, want))
        fail_msg("got \"%s\", want \"%s\"", err, want);
}

static void test_body_multipart_malformed(void **state) {
    (void)state;
    multipart_error("multipart/form-data", "--x\r\n\r\nx\r\n--x--",
                    "without a boundary");
    multipart_error("multipart/form-data; boundary=", "--\r\n\r\n\r\n----",
                    "boundary is not");
    multipart_error("multipart/form-data; boundary=\"x \"",
                    "--x \r\n\r\nx\r\n--x --", "boundary is not");
    multipart_error(
        "multipart/form-data; boundary="
        "12345678901234567890123456789012345678901234567890123456789012345678"
        "901",
        "", "boundary is not");
    multipart_error(MP_CT, "no boundary here", "no opening boundary");
    multipart_error(MP_CT, "", "no opening boundary");
    multipart_error(MP_CT, "------XyZ", "cut short");
    multipart_error(MP_CT, "------XyZ\r\n\r\nbody never closed",
                    "no closing boundary");
    multipart_error(MP_CT,
                    "------XyZ\r\nContent-Disposition: form-data; name=a",
                    "headers are cut short");
    multipart_error(MP_CT, "------XyZjunk\r\n\r\nx\r\n------XyZ--",
                    "boundary line is malformed");
    multipart_error(MP_CT, "------XyZ\r\n\r\nx\r\n------XyZ", "cut short");

    /* headers past the limit */
    size_t n = WEBHOOK_MAX_PART_HEADERS + 200;
    char *big = malloc(n + 100);
    strcpy(big, "------XyZ\r\nX-Pad: ");
    size_t o = strlen(big);
    memset(big + o, 'p', n);
    strcpy(big + o + n, "\r\n\r\nx\r\n------XyZ--");
    multipart_error(MP_CT, big, "longer than");
    free(big);

    /* too many parts */
    size_t per = strlen("------XyZ\r\n\r\nx\r\n");
    char *many = malloc(per * (WEBHOOK_MAX_PARTS + 1) + 20);
    char *p = many;
    for (int i = 0; i <= WEBHOOK_MAX_PARTS; i++)
        p += sprintf(p, "------XyZ\r\n\r\nx\r\n");
    strcpy(p, "------XyZ--");
    multipart_error(MP_CT, many, "more than");
    /* exactly at the limit is fine */
    char err[200];
    json_t *j = parse(MP_CT, many + per, strlen(many + per), err, sizeof(err));
    assert_non_null(j);
    assert_int_equal(json_array_size(j), WEBHOOK_MAX_PARTS);
    json_decref(j);
    free(many);
}

static void test_body_other_types(void **state) {
    (void)state;
    char err[200] = "x";
    /* XML is the xml component's: no parsed form here, and no error */
    assert_null(parse("application/xml", "<a/>", 4, err, sizeof(err)));
    assert_string_equal(err, "");
    strcpy(err, "x");
    assert_null(parse("text/xml; charset=utf-8", "<a/>", 4, err, sizeof(err)));
    assert_string_equal(err, "");
    strcpy(err, "x");
    assert_null(parse("application/soap+xml", "<a/>", 4, err, sizeof(err)));
    assert_string_equal(err, "");
    strcpy(err, "x");
    assert_null(parse("text/plain", "hi", 2, err, sizeof(err)));
    assert_string_equal(err, "");
    strcpy(err, "x");
    assert_null(parse(NULL, "hi", 2, err, sizeof(err)));
    assert_string_equal(err, "");
    assert_null(parse("application/jsonx", "{}", 2, err, sizeof(err)));
    assert_string_equal(err, "");
    /* no err buffer */
    assert_null(webhook_parse_body("application/json", "{", 1, NULL, 0));
}

/* Signing as a sender: the Standard Webhooks vector of protocols.md 1.6. */
static void test_stdwh_sign(void **state) {
    (void)state;
    char sig[128];
    const char *body = "{\"test\": 2432232314}";
    assert_int_equal(
        webhook_stdwh_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                           "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                           strlen(body), sig, sizeof(sig)),
        0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    assert_int_equal(
        webhook_stdwh_sign("MfKQ9r8G", "m", 1, "", 0, sig, sizeof(sig)), -1);
    assert_int_equal(
        webhook_stdwh_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "a.b", 1,
                           "", 0, sig, sizeof(sig)),
        -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_github),
        cmocka_unit_test(test_slack),
        cmocka_unit_test(test_slack_url_verification),
        cmocka_unit_test(test_stripe),
        cmocka_unit_test(test_standard_webhooks),
        cmocka_unit_test(test_dropbox),
        cmocka_unit_test(test_dropbox_challenge),
        cmocka_unit_test(test_shopify),
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_api_key),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_reasons_hold_no_secrets),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_body_json),
        cmocka_unit_test(test_body_form),
        cmocka_unit_test(test_body_multipart),
        cmocka_unit_test(test_body_multipart_malformed),
        cmocka_unit_test(test_body_other_types),
        cmocka_unit_test(test_stdwh_sign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
