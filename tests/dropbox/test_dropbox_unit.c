/*
 * Unit tests of the dropbox component's pure helpers (dbxutil.c, compiled
 * in): content_hash against the vector of the protocol reference (the
 * empty file) and against vectors computed with Python's hashlib (one
 * block, exactly one block, the three-block layout of the vendor's
 * example), the Dropbox-API-Arg escaping, and the path, size and time
 * helpers the poll trigger and the inputs rely on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dbxutil.h"

static unsigned char *pattern(size_t n) {
    unsigned char *p = malloc(n ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i % 251);
    return p;
}

static void hash_is(const void *data, size_t len, const char *want) {
    char got[65];
    assert_int_equal(dbx_content_hash(data, len, got), 0);
    assert_string_equal(got, want);
}

static void test_hash_empty(void **state) {
    (void)state;
    /* protocols.md 2.8: zero blocks, SHA-256 of the empty string. */
    hash_is("", 0,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_hash_small(void **state) {
    (void)state;
    /* One short block: SHA-256 of SHA-256("abc"), not SHA-256("abc")
     * (ba7816bf...). */
    hash_is("abc", 3,
            "4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358");
}

static void test_hash_blocks(void **state) {
    (void)state;
    /* Exactly one 4 MiB block. */
    unsigned char *p = pattern(DBX_HASH_BLOCK);
    hash_is(p, DBX_HASH_BLOCK,
            "b9654428408015906b44a00935b70af33830aa344b780b0eabd535a133150d04");
    free(p);
    /* Two full blocks and a short one. */
    size_t n = 2 * (size_t)DBX_HASH_BLOCK + 1000;
    p = pattern(n);
    hash_is(p, n,
            "9cc7196d04bf8c6dbd7684e42e33bc1a6e21fd79423c52f22577a9bc3f7ce698");
    free(p);
    /* The vendor example's layout: 9,711,423 bytes as 4194304, 4194304
     * and 1322815 (other bytes than the vendor's image). */
    n = 9711423;
    p = pattern(n);
    hash_is(p, n,
            "c2548ae69e493dad26831aa86c34eaba870021782fadfe084c1116b3e421f79d");
    free(p);
}

static void escaped_is(const char *in, const char *want) {
    char *got = dbx_header_json(in);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_escape(void **state) {
    (void)state;
    escaped_is("{\"path\":\"/a b/c.txt\"}", "{\"path\":\"/a b/c.txt\"}");
    /* Two-, three- and four-byte characters; the last as a surrogate
     * pair, as JSON writes code points above U+FFFF. */
    escaped_is("{\"path\":\"/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
               "{\"path\":\"/\\u00e9\\u20ac\\ud83d\\ude00\"}");
    /* DEL too; the escapes JSON already has are left alone. */
    escaped_is("\"a\x7f\\n\\\"\"", "\"a\\u007f\\n\\\"\"");
    escaped_is("\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"", "\"\\uffff\\udbff\\udfff\"");
    /* Not UTF-8: a lone continuation byte, an overlong form, a surrogate
     * encoded directly, a cut sequence. */
    assert_null(dbx_header_json("\"\x80\""));
    assert_null(dbx_header_json("\"\xc0\xaf\""));
    assert_null(dbx_header_json("\"\xed\xa0\x80\""));
    assert_null(dbx_header_json("\"\xe2\x82"));
    /* Every byte of the result is printable ASCII. */
    char *s = dbx_header_json("[\"\xc3\xbc\xc3\xb1\xc3\xae\"]");
    assert_non_null(s);
    for (const char *p = s; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
    free(s);
}

static void test_paths(void **state) {
    (void)state;
    char out[64];
    assert_int_equal(dbx_folder("", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(dbx_folder("/", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(dbx_folder("/In/Box//", out, sizeof(out)), 0);
    assert_string_equal(out, "/In/Box");
    assert_int_equal(dbx_folder("id:abc", out, sizeof(out)), -1);
    assert_int_equal(dbx_folder("relative", out, sizeof(out)), -1);

    assert_string_equal(dbx_relative("", "/a.txt"), "a.txt");
    assert_string_equal(dbx_relative("/in", "/IN/a.txt"), "a.txt");
    assert_string_equal(dbx_relative("/in/box", "/In/Box/sub/a.txt"),
                        "sub/a.txt");
    assert_null(dbx_relative("/in", "/in"));
    assert_null(dbx_relative("/in/box", "/in"));
    assert_null(dbx_relative("/in", "a.txt"));

    assert_false(dbx_hidden("a.txt"));
    assert_false(dbx_hidden("sub/a.b.txt"));
    assert_true(dbx_hidden(".a.txt"));
    assert_true(dbx_hidden(".done/a.txt"));
    assert_true(dbx_hidden("x/.error/a.txt"));
    assert_true(dbx_hidden("x/y/.tmp"));
}

static void test_inputs(void **state) {
    (void)state;
    uint64_t v;
    json_t *j = json_string("8MiB");
    assert_int_equal(dbx_parse_size(j, &v), 0);
    assert_int_equal(v, 8u * 1024 * 1024);
    json_decref(j);
    j = json_string("150MiB");
    assert_int_equal(dbx_parse_size(j, &v), 0);
    assert_int_equal(v, 150u * 1024 * 1024);
    json_decref(j);
    j = json_integer(4096);
    assert_int_equal(dbx_parse_size(j, &v), 0);
    assert_int_equal(v, 4096);
    json_decref(j);
    j = json_string("8 MiB");
    assert_int_equal(dbx_parse_size(j, &v), -1);
    json_decref(j);
    j = json_string("30m");
    assert_int_equal(dbx_parse_duration(j, &v), 0);
    assert_int_equal(v, 1800000);
    json_decref(j);
    j = json_string("5 s");
    assert_int_equal(dbx_parse_duration(j, &v), -1);
    json_decref(j);

    assert_int_equal(dbx_parse_time("2015-05-12T15:50:38Z"), 1431445838);
    assert_int_equal(dbx_parse_time("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(dbx_parse_time("2015-05-12T15:50:38"), -1);
    assert_int_equal(dbx_parse_time("2015-05-12 15:50:38Z"), -1);
    assert_int_equal(dbx_parse_time("2015-05-12T15:50:38Z "), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_empty),  cmocka_unit_test(test_hash_small),
        cmocka_unit_test(test_hash_blocks), cmocka_unit_test(test_escape),
        cmocka_unit_test(test_paths),       cmocka_unit_test(test_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
