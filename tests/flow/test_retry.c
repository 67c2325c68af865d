/*
 * Retry policies: the delay before each attempt (exponential, capped,
 * fixed, with and without jitter) and which errors a policy retries.
 */
#include "flow/flow.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void test_delays(void **state) {
    (void)state;
    flow_retry r = {.max_attempts = 6,
                    .exponential = 1,
                    .initial_ms = 100,
                    .max_ms = 1000,
                    .on_retryable = 1};
    assert_int_equal(flow_retry_delay_ms(&r, 1, 0.0), 100);
    assert_int_equal(flow_retry_delay_ms(&r, 2, 0.0), 200);
    assert_int_equal(flow_retry_delay_ms(&r, 3, 0.0), 400);
    assert_int_equal(flow_retry_delay_ms(&r, 4, 0.0), 800);
    assert_int_equal(flow_retry_delay_ms(&r, 5, 0.0), 1000); /* capped */
    assert_int_equal(flow_retry_delay_ms(&r, 60, 0.0), 1000);
    r.jitter = 1; /* half fixed, half random */
    assert_int_equal(flow_retry_delay_ms(&r, 3, 0.0), 200);
    assert_int_equal(flow_retry_delay_ms(&r, 3, 0.5), 300);
    assert_true(flow_retry_delay_ms(&r, 3, 0.9999) <= 400);
    r.jitter = 0;
    r.exponential = 0;
    assert_int_equal(flow_retry_delay_ms(&r, 4, 0.7), 100);
}

static void test_matches(void **state) {
    (void)state;
    flow_retry r = {.max_attempts = 3, .on_retryable = 1};
    assert_true(flow_retry_matches(&r, FERRY_EUNAVAIL, 1));
    assert_false(flow_retry_matches(&r, FERRY_EINVAL, 0));
    assert_false(flow_retry_matches(&r, FERRY_ECANCELLED, 1));
    r.on_retryable = 0;
    r.codes[r.ncodes++] = FERRY_EREMOTE;
    assert_false(flow_retry_matches(&r, FERRY_EUNAVAIL, 1));
    assert_true(flow_retry_matches(&r, FERRY_EREMOTE, 0));
    r.max_attempts = 1; /* one attempt: nothing to retry */
    assert_false(flow_retry_matches(&r, FERRY_EREMOTE, 0));
    flow_retry none = {0};
    assert_false(flow_retry_matches(&none, FERRY_EUNAVAIL, 1));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delays),
        cmocka_unit_test(test_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
