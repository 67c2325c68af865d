/*
 * The HTTP client's pure parts: Retry-After, response header lines, URL
 * redaction and origins, percent-encoding, and how a Content-Type is read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "httpc/httpc.h"

/* 2015-10-21T07:28:00Z */
#define T0 ((time_t)1445412480)

static void test_retry_after(void **state) {
    (void)state;
    int64_t ms = -1;
    assert_int_equal(httpc_parse_retry_after("120", T0, &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(httpc_parse_retry_after(" 0 ", T0, &ms), 0);
    assert_int_equal(ms, 0);
    /* The three HTTP-date forms, 90 s after T0. */
    const char *dates[] = {"Wed, 21 Oct 2015 07:29:30 GMT",
                           "Wednesday, 21-Oct-15 07:29:30 GMT",
                           "Wed Oct 21 07:29:30 2015"};
    for (int i = 0; i < 3; i++) {
        ms = -1;
        assert_int_equal(httpc_parse_retry_after(dates[i], T0, &ms), 0);
        assert_int_equal(ms, 90000);
    }
    /* A date in the past: no wait. */
    assert_int_equal(
        httpc_parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", T0, &ms), 0);
    assert_int_equal(ms, 0);
    /* Capped at a year, however large. */
    assert_int_equal(
        httpc_parse_retry_after("99999999999999999999999", T0, &ms), 0);
    assert_int_equal(ms, 365LL * 24 * 3600 * 1000);
    /* Not a delay. */
    ms = 7;
    assert_int_equal(httpc_parse_retry_after("", T0, &ms), -1);
    assert_int_equal(httpc_parse_retry_after("soon", T0, &ms), -1);
    assert_int_equal(httpc_parse_retry_after("-5", T0, &ms), -1);
    assert_int_equal(httpc_parse_retry_after("1.5", T0, &ms), -1);
    assert_int_equal(httpc_parse_retry_after(NULL, T0, &ms), -1);
    assert_int_equal(ms, 7);
}

static int line(json_t *h, const char *l, char *last, long *status) {
    return httpc_header_line(h, l, strlen(l), last, status);
}

static void test_header_lines(void **state) {
    (void)state;
    json_t *h = json_object();
    char last[256] = "";
    long status = 0;
    json_object_set_new(h, "stale", json_string("x"));
    assert_int_equal(line(h, "HTTP/1.1 301 Moved\r\n", last, &status), 1);
    assert_int_equal(status, 301);
    assert_int_equal(json_object_size(h), 0);
    assert_int_equal(line(h, "HTTP/2 200\r\n", last, &status), 1);
    assert_int_equal(status, 200);
    assert_int_equal(line(h, "Content-Type: text/plain\r\n", last, NULL), 0);
    assert_int_equal(line(h, "X-Multi: one\r\n", last, NULL), 0);
    assert_int_equal(line(h, "x-multi:two  \r\n", last, NULL), 0);
    assert_int_equal(line(h, "Set-Cookie: a=1; Path=/\r\n", last, NULL), 0);
    assert_int_equal(line(h, "SET-COOKIE: b=2\r\n", last, NULL), 0);
    assert_int_equal(line(h, "X-Folded: first\r\n", last, NULL), 0);
    assert_int_equal(line(h, "   second\r\n", last, NULL), 0);
    assert_int_equal(line(h, "X-Empty:\r\n", last, NULL), 0);
    assert_int_equal(line(h, "X-Latin: caf\xe9\r\n", last, NULL), 0);
    assert_int_equal(line(h, "no colon here\r\n", last, NULL), -1);
    assert_int_equal(line(h, "Bad Name: x\r\n", last, NULL), -1);
    assert_int_equal(line(h, "\r\n", last, NULL), 2);
    json_t *want = json_pack(
        "{s:s, s:s, s:[s, s], s:s, s:s, s:s}", "content-type", "text/plain",
        "x-multi", "one, two", "set-cookie", "a=1; Path=/", "b=2", "x-folded",
        "first second", "x-empty", "", "x-latin", "caf\xc3\xa9");
    if (!json_equal(h, want)) {
        char *g = json_dumps(h, JSON_COMPACT);
        fail_msg("headers: %s", g);
    }
    json_decref(want);
    /* Folding onto a set-cookie continues its last value. */
    assert_int_equal(line(h, "Set-Cookie: c=3\r\n", last, NULL), 0);
    assert_int_equal(line(h, "\tmore\r\n", last, NULL), 0);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(h, "set-cookie"), 2)),
        "c=3 more");
    /* Folding with nothing before it is ignored. */
    last[0] = 0;
    assert_int_equal(line(h, " orphan\r\n", last, NULL), -1);
    json_decref(h);
}

static void expect_redacted(const char *url, const char *param,
                            const char *want) {
    char *got = httpc_redact_url(url, param);
    assert_non_null(got);
    if (strcmp(got, want))
        fail_msg("redact(%s): got %s, want %s", url, got, want);
    free(got);
}

static void test_redact(void **state) {
    (void)state;
    expect_redacted("https://user:pass@example.com/a?b=1#frag", NULL,
                    "https://example.com/a?b=1");
    expect_redacted("http://example.com:8080/p?access_token=abc&page=2&"
                    "API_KEY=k&sig=s&x=",
                    NULL,
                    "http://example.com:8080/p?access_token=REDACTED&page=2&"
                    "API_KEY=REDACTED&sig=REDACTED&x=");
    expect_redacted("http://h/p?mykey=1&other=2&my%6Bey=3", "mykey",
                    "http://h/p?mykey=REDACTED&other=2&my%6bey=REDACTED");
    expect_redacted("http://h/p?token", NULL, "http://h/p?token");
    expect_redacted("http://h", NULL, "http://h/");
    expect_redacted("not a url", NULL, "(invalid URL)");
    expect_redacted(NULL, NULL, "(invalid URL)");
}

static void test_origin(void **state) {
    (void)state;
    assert_true(
        httpc_same_origin("http://a.example/x", "http://A.EXAMPLE:80/y"));
    assert_true(
        httpc_same_origin("https://a.example/x", "https://a.example:443/"));
    assert_false(httpc_same_origin("http://a.example/", "https://a.example/"));
    assert_false(
        httpc_same_origin("http://a.example/", "http://a.example:8080/"));
    assert_false(httpc_same_origin("http://a.example/", "http://b.example/"));
    assert_false(
        httpc_same_origin("http://a.example/", "http://a.example.evil/"));
    assert_false(httpc_same_origin("http://a.example/", "nonsense"));
}

static void test_urlencode(void **state) {
    (void)state;
    const char s[] = "a b&c=d/é~_.-\x01";
    char *e = httpc_urlencode(s, strlen(s), 0);
    assert_string_equal(e, "a%20b%26c%3Dd%2F%C3%A9~_.-%01");
    free(e);
    e = httpc_urlencode(s, 3, 1);
    assert_string_equal(e, "a+b");
    free(e);
    e = httpc_urlencode("a\0b", 3, 0);
    assert_string_equal(e, "a%00b");
    free(e);
}

static void test_body_kind(void **state) {
    (void)state;
    assert_int_equal(httpc_body_kind("application/json"), HTTPC_KIND_JSON);
    assert_int_equal(httpc_body_kind(" Application/JSON; charset=utf-8"),
                     HTTPC_KIND_JSON);
    assert_int_equal(httpc_body_kind("application/problem+json"),
                     HTTPC_KIND_JSON);
    assert_int_equal(httpc_body_kind("application/vnd.api+json ;x=1"),
                     HTTPC_KIND_JSON);
    assert_int_equal(httpc_body_kind("text/plain"), HTTPC_KIND_TEXT);
    assert_int_equal(httpc_body_kind("text/csv; charset=latin1"),
                     HTTPC_KIND_TEXT);
    assert_int_equal(httpc_body_kind("application/xml"), HTTPC_KIND_TEXT);
    assert_int_equal(httpc_body_kind("application/soap+xml"), HTTPC_KIND_TEXT);
    assert_int_equal(httpc_body_kind("application/x-www-form-urlencoded"),
                     HTTPC_KIND_TEXT);
    assert_int_equal(httpc_body_kind("application/octet-stream"),
                     HTTPC_KIND_BLOB);
    assert_int_equal(httpc_body_kind("image/png"), HTTPC_KIND_BLOB);
    assert_int_equal(httpc_body_kind("+json"), HTTPC_KIND_BLOB);
    assert_int_equal(httpc_body_kind("text/"), HTTPC_KIND_BLOB);
    assert_int_equal(httpc_body_kind(""), HTTPC_KIND_BLOB);
    assert_int_equal(httpc_body_kind(NULL), HTTPC_KIND_BLOB);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after), cmocka_unit_test(test_header_lines),
        cmocka_unit_test(test_redact),      cmocka_unit_test(test_origin),
        cmocka_unit_test(test_urlencode),   cmocka_unit_test(test_body_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
