/* flow_text_size must give exactly the length of the text that
 * flow_dump_bounded writes when nothing is cut, for every kind of value,
 * and the truncated text must be the prefix of the whole. */
#include "flow/flow.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void assert_size_matches(json_t *v) {
    char *full = json_dumps(v, FLOW_JSON_TEXT);
    assert_non_null(full);
    size_t want = strlen(full);
    size_t got = flow_text_size(v, NULL);
    if (got != want)
        fail_msg("size %zu, text %zu: %s", got, want, full);
    char *text = NULL;
    size_t sz = flow_dump_bounded(v, 16, &text, NULL);
    assert_int_equal(sz, want);
    assert_int_equal(strlen(text), want < 16 ? want : 16);
    assert_memory_equal(text, full, strlen(text));
    free(text);
    free(full);
    json_decref(v);
}

static void test_scalars(void **state) {
    (void)state;
    assert_size_matches(json_null());
    assert_size_matches(json_true());
    assert_size_matches(json_false());
    assert_size_matches(json_integer(0));
    assert_size_matches(json_integer(-9223372036854775807LL - 1));
    assert_size_matches(json_integer(1234567890123LL));
    double reals[] = {0.0,     -0.0,  1.0,    65.3,      0.1 + 0.2,
                      1e20,    1e-5,  1e+300, -2.5e-300, 123456789012345678.0,
                      1.0 / 3, 98.65, 5e-324, 1e15,      1e16,
                      -1e21};
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++)
        assert_size_matches(json_real(reals[i]));
    /* Every digit count, and its edges, both signs. */
    long long p = 1;
    for (int i = 0; i < 18; i++, p *= 10) {
        assert_size_matches(json_integer(p - 1));
        assert_size_matches(json_integer(p));
        assert_size_matches(json_integer(-p));
        assert_size_matches(json_integer(-p + 1));
    }
    assert_size_matches(json_integer(9223372036854775807LL));
}

/* Sizes of reals are remembered by their bits: many distinct values, each
 * sized twice (the second time from the table, or after its slot was
 * taken by another value), must always come out exact. */
static void test_reals_remembered(void **state) {
    (void)state;
    unsigned long long x = 88172645463325252ull;
    for (int round = 0; round < 2; round++) {
        x = 88172645463325252ull;
        for (int i = 0; i < 5000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            double d = (double)(x % 2000001) / 10.0 - 100000.0;
            if (i % 3 == 0)
                d = (double)x / 3.0e7;
            if (i % 7 == 0)
                d = -d * 1e-9;
            assert_size_matches(json_real(d));
        }
    }
}

static void test_strings(void **state) {
    (void)state;
    assert_size_matches(json_string(""));
    assert_size_matches(json_string("plain"));
    assert_size_matches(json_string("quote \" and backslash \\ and /slash"));
    assert_size_matches(json_string("\b\f\n\r\t and \x01\x1f and \x7f"));
    assert_size_matches(
        json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\xa2"));
    assert_size_matches(json_stringn("nul\0inside", 10));
}

static void test_containers(void **state) {
    (void)state;
    assert_size_matches(json_array());
    assert_size_matches(json_object());
    assert_size_matches(json_pack("[i, s, [], {}, [n, b]]", 1, "x", 1));
    assert_size_matches(json_pack("{s:i, s:{s:[f, s]}, s:n}", "a\"b", 1,
                                  "nested", "list", 2.5, "\n", "z"));
    json_t *big = json_array();
    for (int i = 0; i < 2000; i++)
        json_array_append_new(big, json_pack("{s:s, s:f, s:i}", "timestamp",
                                             "2026-11-27T00:15:00", "temp_c",
                                             21.4 + i / 7.0, "n", i));
    assert_size_matches(big);
}

/* A memoized container is not walked again: the size given for it is
 * trusted (that is the point), and sizes of what contains it add up. */
static void test_memo(void **state) {
    (void)state;
    json_t *inner = json_pack("[i, i, i]", 1, 2, 3); /* "[1,2,3]": 7 */
    json_t *outer = json_pack("{s:O}", "v", inner);  /* {"v":[1,2,3]} */
    flow_size_memo m = {0};
    assert_int_equal(flow_text_size(outer, &m), 13);
    flow_size_memo_put(&m, inner, 1000);
    assert_int_equal(flow_text_size(outer, &m), 1006);
    /* Two uses (the same value output by two steps): one drop keeps it. */
    flow_size_memo_put(&m, inner, 1000);
    flow_size_memo_drop(&m, inner);
    assert_int_equal(flow_text_size(outer, &m), 1006);
    flow_size_memo_drop(&m, inner);
    assert_int_equal(flow_text_size(outer, &m), 13);
    json_t *five = json_integer(5);
    flow_size_memo_put(&m, five, 99); /* scalars are not kept */
    assert_int_equal(m.n, 0);
    json_decref(five);
    flow_size_memo_clear(&m);
    json_decref(outer);
    json_decref(inner);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars), cmocka_unit_test(test_reals_remembered),
        cmocka_unit_test(test_strings), cmocka_unit_test(test_containers),
        cmocka_unit_test(test_memo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
