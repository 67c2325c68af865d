/* Tests for core/flow/jqv: jq programs over jansson values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow/jqv.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Every jansson allocation is counted, so each test can check that it (and
 * jqv) let go of every value it made. */
static long json_live, json_live_before;

static void *counting_malloc(size_t n) {
    void *p = malloc(n);
    if (p)
        json_live++;
    return p;
}

static void counting_free(void *p) {
    if (p)
        json_live--;
    free(p);
}

static int count_json(void **state) {
    (void)state;
    json_live_before = json_live;
    return 0;
}

static int no_json_left(void **state) {
    (void)state;
    assert_int_equal(json_live, json_live_before);
    return 0;
}

static json_t *parse(const char *text) {
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return v;
}

static json_t *run_ok(const char *program, const char *input, int collect) {
    char *err = NULL;
    jqv_program *p = jqv_compile(program, &err);
    if (!p)
        fail_msg("%s does not compile: %s", program, err);
    json_t *in = input ? parse(input) : NULL;
    json_t *out = NULL;
    if (jqv_run(p, in, collect, &out, &err) != 0)
        fail_msg("%s failed: %s", program, err);
    assert_non_null(out);
    json_decref(in);
    jqv_free(p);
    return out;
}

/* Returns the malloc'd error of running program over input. */
static char *run_err(const char *program, const char *input, int collect) {
    char *err = NULL;
    jqv_program *p = jqv_compile(program, &err);
    if (!p)
        fail_msg("%s does not compile: %s", program, err);
    json_t *in = parse(input);
    json_t *out = (json_t *)1;
    assert_int_equal(jqv_run(p, in, collect, &out, &err), -1);
    assert_null(out);
    assert_non_null(err);
    json_decref(in);
    jqv_free(p);
    return err;
}

static char *compile_err(const char *program) {
    char *err = NULL;
    jqv_program *p = jqv_compile(program, &err);
    assert_null(p);
    assert_non_null(err);
    return err;
}

static void assert_json_equal(json_t *got, const char *want_text) {
    json_t *want = parse(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_ENCODE_ANY);
        fail_msg("got %s, want %s", g, want_text);
    }
    json_decref(want);
}

static void assert_contains(const char *s, const char *part) {
    if (!strstr(s, part))
        fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

/* An object with every JSON type, nested, non-ASCII text and a NUL inside a
 * string. */
static json_t *every_type(void) {
    return parse("{\"null\": null, \"t\": true, \"f\": false,"
                 " \"int\": -42, \"real\": 2.5, \"str\": \"plain\","
                 " \"unicode\": \"h\\u00e9llo \\u2713 \\ud83d\\ude00\","
                 " \"nul\": \"a\\u0000b\","
                 " \"empty\": {\"o\": {}, \"a\": [], \"s\": \"\"},"
                 " \"nested\": [1, [2, [3, {\"deep\": [null, "
                 "{\"x\": \"y\"}]}]], {\"k\": [true, false]}]}");
}

static void test_round_trip_every_type(void **state) {
    (void)state;
    json_t *v = every_type();

    json_t *direct = jqv_to_json(jqv_from_json(v));
    assert_true(json_equal(direct, v));
    json_t *s = json_object_get(direct, "nul");
    assert_int_equal(json_string_length(s), 3);
    assert_memory_equal(json_string_value(s), "a\0b", 3);
    assert_string_equal(json_string_value(json_object_get(direct, "unicode")),
                        "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80");
    json_decref(direct);

    char *err = NULL;
    jqv_program *p = jqv_compile(".", &err);
    assert_non_null(p);
    json_t *out = NULL;
    assert_int_equal(jqv_run(p, v, 0, &out, &err), 0);
    assert_true(json_equal(out, v));
    json_decref(out);
    jqv_free(p);

    /* jq sees the same strings: length counts code points, NUL included. */
    p = jqv_compile("[(.nul | length), (.unicode | length), (.nul | explode),"
                    " (.nested | flatten | length)]",
                    &err);
    assert_non_null(p);
    assert_int_equal(jqv_run(p, v, 0, &out, &err), 0);
    assert_json_equal(out, "[3, 9, [97, 0, 98], 5]");
    json_decref(out);
    jqv_free(p);

    json_decref(v);
}

/* (jansson's json_equal compares keys as C strings, so this one is checked
 * by hand.) */
static void test_nul_in_key(void **state) {
    (void)state;
    json_t *v = json_object();
    json_object_setn_new(v, "k\0ey", 4, json_string("nul key"));
    json_object_set_new(v, "k", json_string("just k"));

    json_t *out = jqv_to_json(jqv_from_json(v));
    assert_int_equal(json_object_size(out), 2);
    assert_string_equal(json_string_value(json_object_getn(out, "k\0ey", 4)),
                        "nul key");
    assert_string_equal(json_string_value(json_object_get(out, "k")), "just k");
    json_decref(out);

    char *err = NULL;
    jqv_program *p =
        jqv_compile("[.[\"k\\u0000ey\"], (keys | map(length))]", &err);
    assert_non_null(p);
    assert_int_equal(jqv_run(p, v, 0, &out, &err), 0);
    assert_json_equal(out, "[\"nul key\", [1, 4]]");
    json_decref(out);
    jqv_free(p);
    json_decref(v);
}

static void test_key_order_kept(void **state) {
    (void)state;
    json_t *out = run_ok(". + {\"a\": 0}", "{\"z\": 1, \"m\": 2}", 0);
    const char *keys[] = {"z", "m", "a"};
    int i = 0;
    const char *k;
    json_t *val;
    json_object_foreach(out, k, val) {
        assert_true(i < 3);
        assert_string_equal(k, keys[i++]);
    }
    assert_int_equal(i, 3);
    json_decref(out);
}

static void test_numbers(void **state) {
    (void)state;
    json_t *in = json_array();
    json_array_append_new(in, json_integer(9007199254740992LL));    /* 2^53 */
    json_array_append_new(in, json_integer(-9007199254740992LL));   /* -2^53 */
    json_array_append_new(in, json_integer(9223372036854775807LL)); /* 2^63-1 */
    json_array_append_new(in, json_integer(0));
    json_array_append_new(in, json_real(0.1));
    json_array_append_new(in, json_real(-1e300));
    json_array_append_new(in, json_real(3.0));
    json_array_append_new(in, json_integer(9007199254740993LL)); /* 2^53+1 */

    json_t *out = jqv_to_json(jqv_from_json(in));
    assert_int_equal(json_array_size(out), 8);
    json_t *e = json_array_get(out, 0);
    assert_true(json_is_integer(e));
    assert_true(json_integer_value(e) == 9007199254740992LL);
    e = json_array_get(out, 1);
    assert_true(json_is_integer(e));
    assert_true(json_integer_value(e) == -9007199254740992LL);
    /* Beyond 2^53 a double is not an exact integer any more. */
    e = json_array_get(out, 2);
    assert_true(json_is_real(e));
    assert_true(json_real_value(e) == 9223372036854775808.0);
    e = json_array_get(out, 3);
    assert_true(json_is_integer(e));
    assert_int_equal(json_integer_value(e), 0);
    e = json_array_get(out, 4);
    assert_true(json_is_real(e) && json_real_value(e) == 0.1);
    e = json_array_get(out, 5);
    assert_true(json_is_real(e) && json_real_value(e) == -1e300);
    /* An integral real comes back as an integer: jq has one number type. */
    e = json_array_get(out, 6);
    assert_true(json_is_integer(e) && json_integer_value(e) == 3);
    /* jq 1.6 rounds 2^53+1 to 2^53. */
    e = json_array_get(out, 7);
    assert_true(json_is_real(e) || json_is_integer(e));
    assert_true(json_number_value(e) == 9007199254740992.0);
    json_decref(out);
    json_decref(in);

    out = run_ok("[. * 2, . / 4, . + 0.5]", "21", 0);
    assert_json_equal(out, "[42, 5.25, 21.5]");
    assert_true(json_is_integer(json_array_get(out, 0)));
    json_decref(out);

    /* JSON has no NaN or infinity. */
    out = run_ok("[nan, infinite, -infinite, (1 / 3)]", "null", 0);
    assert_int_equal(json_array_size(out), 4);
    for (int i = 0; i < 3; i++)
        assert_true(json_is_null(json_array_get(out, i)));
    assert_true(json_real_value(json_array_get(out, 3)) == 1.0 / 3.0);
    json_decref(out);
}

static void test_invalid_converts_to_null_pointer(void **state) {
    (void)state;
    assert_null(jqv_to_json(jv_invalid()));
    assert_null(jqv_to_json(jv_invalid_with_msg(jv_string("x"))));
}

static void test_null_input_is_json_null(void **state) {
    (void)state;
    json_t *out = run_ok("[., type]", NULL, 0);
    assert_json_equal(out, "[null, \"null\"]");
    json_decref(out);
}

static void test_compile_errors(void **state) {
    (void)state;
    char *err = compile_err(".a |||");
    assert_contains(err, "jq: error: syntax error, unexpected '|'");
    assert_contains(err, "line 1: .a |||");
    assert_null(strchr(err, '\n'));
    assert_null(strstr(err, "shell"));
    size_t n = strlen(err);
    const char *tail = "; jq: 1 compile error";
    assert_true(n > strlen(tail));
    assert_string_equal(err + n - strlen(tail), tail);
    free(err);

    err = compile_err("foo(1) | bar(2)");
    assert_string_equal(err, "jq: error: foo/1 is not defined at "
                             "<top-level>, line 1: foo(1) | bar(2); "
                             "jq: error: bar/1 is not defined at "
                             "<top-level>, line 1: foo(1) | bar(2); "
                             "jq: 2 compile errors");
    free(err);

    /* The quoted line is the one with the error. */
    err = compile_err(".a\n| .b |||\n| .c");
    assert_contains(err, "line 2: | .b |||");
    free(err);

    /* Modules are refused before jq sees them (test_modules_refused), and
     * asking for one must not bring the process down. */
    err = compile_err("import \"x\" as x; .");
    assert_contains(err, "not available in flows");
    free(err);

    err = NULL;
    assert_null(jqv_compile(NULL, &err));
    assert_non_null(err);
    free(err);

    /* err is optional. */
    assert_null(jqv_compile(".a |||", NULL));
}

static void test_empty_program_is_identity(void **state) {
    (void)state;
    json_t *out = run_ok("", "{\"a\": [1]}", 0);
    assert_json_equal(out, "{\"a\": [1]}");
    json_decref(out);
}

static void test_runtime_errors(void **state) {
    (void)state;
    char *err = run_err("error(\"boom\")", "null", 0);
    assert_string_equal(err, "jq: error: boom");
    free(err);

    err = run_err(".a.b", "{\"a\": 5}", 0);
    assert_string_equal(err,
                        "jq: error: Cannot index number with string \"b\"");
    free(err);

    err = run_err("error({\"x\": [1]})", "null", 1);
    assert_string_equal(err, "jq: error (not a string): {\"x\":[1]}");
    free(err);

    /* Results before the error do not hide it. */
    err = run_err(".[] | if . == 3 then error(\"three\") else . end",
                  "[1, 2, 3, 4]", 1);
    assert_string_equal(err, "jq: error: three");
    free(err);

    err = run_err("\"stop\\n\" | halt_error", "null", 0);
    assert_string_equal(err, "jq: halt_error (exit code 5): stop");
    free(err);

    /* There is no input stream: `input` fails, `inputs` is empty. */
    err = run_err("input", "null", 0);
    assert_contains(err, "jq: error: ");
    free(err);
    json_t *out = run_ok("[inputs]", "null", 0);
    assert_json_equal(out, "[]");
    json_decref(out);

    /* A caught error is no error. */
    out = run_ok("try error(\"x\") catch (. + \"!\")", "null", 0);
    assert_json_equal(out, "\"x!\"");
    json_decref(out);

    /* halt ends the results without an error. */
    out = run_ok("1, halt, 2", "null", 1);
    assert_json_equal(out, "[1]");
    json_decref(out);
}

/* Halting, debug output and reading input, run again and again on one
 * program: libjq 1.6 gets its own state wrong around all three. */
static void test_halt_debug_input_reused(void **state) {
    (void)state;
    char *err = NULL;
    jqv_program *p =
        jqv_compile("if . == 0 then {\"why\": \"zero\"} | halt_error(2)"
                    " elif . == 1 then \"one\\n\" | halt_error"
                    " elif . == 2 then halt"
                    " elif . == 3 then [inputs]"
                    " else debug | [., (try input catch \"none\")] end",
                    &err);
    assert_non_null(p);
    for (int i = 0; i < 200; i++) {
        int n = i % 5;
        json_t *in = json_integer(n);
        json_t *out = NULL;
        err = NULL;
        int rc = jqv_run(p, in, n == 2, &out, &err);
        switch (n) {
        case 0:
            assert_int_equal(rc, -1);
            assert_string_equal(err, "jq: halt_error (exit code 2): "
                                     "{\"why\":\"zero\"}");
            break;
        case 1:
            assert_int_equal(rc, -1);
            assert_string_equal(err, "jq: halt_error (exit code 5): one");
            break;
        case 2:
            assert_int_equal(rc, 0);
            assert_json_equal(out, "[]");
            break;
        case 3:
            assert_int_equal(rc, 0);
            assert_json_equal(out, "[]");
            break;
        case 4:
            assert_int_equal(rc, 0);
            assert_json_equal(out, "[4, \"none\"]");
            break;
        }
        free(err);
        json_decref(out);
        json_decref(in);
    }
    jqv_free(p);
}

static void test_collect(void **state) {
    (void)state;
    json_t *out = run_ok(".[]", "[1, \"a\", null, [2, {}], {\"b\": false}]", 1);
    assert_json_equal(out, "[1, \"a\", null, [2, {}], {\"b\": false}]");
    json_decref(out);

    out = run_ok("empty", "null", 1);
    assert_json_equal(out, "[]");
    json_decref(out);

    /* collect gathers even a single value. */
    out = run_ok(".", "[1]", 1);
    assert_json_equal(out, "[[1]]");
    json_decref(out);
}

static void test_exactly_one_result(void **state) {
    (void)state;
    json_t *out = run_ok(".[]", "[7]", 0);
    assert_json_equal(out, "7");
    json_decref(out);

    char *err = run_err(".[]", "[1, 2]", 0);
    assert_string_equal(err, "jq program produced more than one result; set "
                             "collect to gather them into an array");
    free(err);

    err = run_err("empty", "null", 0);
    assert_string_equal(err, "jq program produced no result");
    free(err);

    err = run_err(".[]", "[]", 0);
    assert_string_equal(err, "jq program produced no result");
    free(err);

    /* An endless program is stopped at its second result. */
    err = run_err("repeat(1)", "null", 0);
    assert_contains(err, "more than one result");
    free(err);
}

static void test_nesting_limit(void **state) {
    (void)state;
    json_t *deep = json_array();
    json_t *inner = deep;
    for (int i = 0; i < 3000; i++) {
        json_t *a = json_array();
        json_array_append_new(inner, a);
        inner = a;
    }
    char *err = NULL;
    jqv_program *p = jqv_compile(".", &err);
    json_t *out = NULL;
    assert_int_equal(jqv_run(p, deep, 0, &out, &err), -1);
    assert_null(out);
    assert_contains(err, "nested deeper than");
    free(err);
    json_decref(deep);

    /* Within the limit values still round trip. */
    out = run_ok("reduce range(2000) as $i (0; [.]) | flatten", "null", 0);
    assert_json_equal(out, "[0]");
    json_decref(out);
    assert_int_equal(jqv_run(p, NULL, 0, &out, &err), 0);
    json_decref(out);
    jqv_program *q = jqv_compile("reduce range(2000) as $i (0; [.])", &err);
    assert_int_equal(jqv_run(q, NULL, 0, &out, &err), 0);
    json_t *e = out;
    for (int i = 0; i < 2000; i++)
        e = json_array_get(e, 0);
    assert_true(json_is_integer(e));
    json_decref(out);
    jqv_free(q);

    q = jqv_compile("reduce range(3000) as $i (0; [.])", &err);
    assert_int_equal(jqv_run(q, NULL, 0, &out, &err), -1);
    assert_contains(err, "cannot be converted");
    free(err);
    jqv_free(q);
    jqv_free(p);
}

static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* The engine runs one compiled program in every iteration of a loop. */
static void test_same_program_many_runs(void **state) {
    (void)state;
    char *err = NULL;
    jqv_program *p = jqv_compile(
        "if .n % 7 == 0 then error(\"seven\") "
        "elif .n % 5 == 0 then .items[] "
        "else {n: (.n * 2), s: (.items | map(tostring) | join(\",\"))} end",
        &err);
    assert_non_null(p);

    size_t before = 0;
    int ok = 0, errors = 0;
    for (int n = 1; n <= 1100; n++) {
        if (n == 101)
            before = heap_in_use();
        json_t *in = json_pack("{s:i, s:[i,s,i]}", "n", n, "items", n, "x", -n);
        json_t *out = NULL;
        err = NULL;
        int rc = jqv_run(p, in, 0, &out, &err);
        if (n % 7 == 0) {
            assert_int_equal(rc, -1);
            assert_string_equal(err, "jq: error: seven");
            free(err);
            errors++;
        } else if (n % 5 == 0) {
            assert_int_equal(rc, -1);
            assert_contains(err, "more than one result");
            free(err);
            errors++;
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(json_integer_value(json_object_get(out, "n")),
                             2 * n);
            char want[64];
            snprintf(want, sizeof want, "%d,x,%d", n, -n);
            assert_string_equal(json_string_value(json_object_get(out, "s")),
                                want);
            json_decref(out);
            ok++;
        }
        json_decref(in);
    }
    assert_int_equal(ok + errors, 1100);
    assert_int_equal(errors, 157 + 220 - 31);
#ifndef UNDER_ASAN
    /* 1000 runs must not leave anything behind. */
    size_t after = heap_in_use();
    if (after > before + 64 * 1024)
        fail_msg("heap grew from %zu to %zu bytes over 1000 runs", before,
                 after);
#endif
    (void)before;
    jqv_free(p);
}

/* One environmental reading every 2 seconds for 24 hours, every value a
 * string, as the sensor feed delivers it. */
#define READINGS (24 * 60 * 60 / 2)

static json_t *sensor_day(void) {
    json_t *a = json_array();
    for (int i = 0; i < READINGS; i++) {
        int t = 2 * i;
        char ts[32], temp[16], hum[16], pres[16], co2[16];
        snprintf(ts, sizeof ts, "2024-03-01T%02d:%02d:%02d", t / 3600,
                 t / 60 % 60, t % 60);
        snprintf(temp, sizeof temp, "%.2f",
                 18.0 + 6.0 * sin(i / 2000.0) + (i % 17) * 0.01);
        snprintf(hum, sizeof hum, "%.1f", 40.0 + (i % 300) / 10.0);
        snprintf(pres, sizeof pres, "%.2f", 1000.0 + (i % 2500) / 100.0);
        snprintf(co2, sizeof co2, "%d", 400 + i % 250);
        json_array_append_new(
            a, json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s}}",
                         "environmental", "sensor_id", "env-0042", "location",
                         "warehouse-north/bay-3", "timestamp", ts, "temp_c",
                         temp, "humidity_pct", hum, "pressure_hpa", pres,
                         "co2_ppm", co2));
    }
    return a;
}

static void test_sensor_day(void **state) {
    (void)state;
    json_t *day = sensor_day();
    assert_int_equal(json_array_size(day), 43200);

    /* What the program should keep, worked out from the data itself. */
    size_t want = 0;
    for (size_t i = 0; i < json_array_size(day); i++) {
        json_t *env = json_object_get(json_array_get(day, i), "environmental");
        int h, m, s;
        assert_int_equal(
            sscanf(json_string_value(json_object_get(env, "timestamp")),
                   "2024-03-01T%d:%d:%d", &h, &m, &s),
            3);
        if (m % 15 == 0)
            want++;
    }
    /* 4 quarter-hour minutes an hour, 30 readings a minute, 24 hours. */
    assert_int_equal(want, 2880);

    char *err = NULL;
    jqv_program *p = jqv_compile(
        "map(.environmental"
        " | select(.timestamp | test(\"T[0-9]{2}:(00|15|30|45):[0-9]{2}$\"))"
        " | .temp_f = ((.temp_c | tonumber) * 9 / 5 + 32))",
        &err);
    if (!p)
        fail_msg("%s", err);
    json_t *out = NULL;
    if (jqv_run(p, day, 0, &out, &err) != 0)
        fail_msg("%s", err);
    assert_int_equal(json_array_size(out), want);

    for (size_t i = 0; i < json_array_size(out); i++) {
        json_t *env = json_array_get(out, i);
        int h, m, s;
        sscanf(json_string_value(json_object_get(env, "timestamp")),
               "2024-03-01T%d:%d:%d", &h, &m, &s);
        assert_int_equal(m % 15, 0);
        double c =
            strtod(json_string_value(json_object_get(env, "temp_c")), NULL);
        json_t *f = json_object_get(env, "temp_f");
        assert_true(json_is_number(f));
        assert_true(fabs(json_number_value(f) - (c * 9 / 5 + 32)) < 1e-9);
        assert_int_equal(json_object_size(env), 8);
    }
    json_decref(out);
    jqv_free(p);
    json_decref(day);
}

/* Module directives would read files of the host: refused, wherever the
 * program's blanks and comments put them; a name that merely starts like
 * one is an ordinary program. */
static void test_modules_refused(void **state) {
    (void)state;
    static const char *const refused[] = {
        "import \"x\" as $x {search: \"/etc\"}; .", "include \"x\"; .",
        "module {}; .", "  # a comment\n\timport \"x\" as x; ."};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char *err = NULL;
        jqv_program *p = jqv_compile(refused[i], &err);
        assert_null(p);
        assert_non_null(err);
        assert_non_null(strstr(err, "modules"));
        free(err);
    }
    char *err = NULL;
    jqv_program *p = jqv_compile("{importance: 1} | .importance", &err);
    assert_non_null(p);
    json_t *out = NULL;
    assert_int_equal(jqv_run(p, NULL, 0, &out, &err), 0);
    assert_int_equal(json_integer_value(out), 1);
    json_decref(out);
    jqv_free(p);
}

int main(void) {
    json_set_alloc_funcs(counting_malloc, counting_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_every_type, count_json,
                                        no_json_left),
        cmocka_unit_test_setup_teardown(test_nul_in_key, count_json,
                                        no_json_left),
        cmocka_unit_test_setup_teardown(test_modules_refused, count_json,
                                        no_json_left),
        cmocka_unit_test_setup_teardown(test_key_order_kept, count_json,
                                        no_json_left),
        cmocka_unit_test_setup_teardown(test_numbers, count_json, no_json_left),
        cmocka_unit_test_setup_teardown(test_invalid_converts_to_null_pointer,
                                        count_json, no_json_left),
        cmocka_unit_test_setup_teardown(test_null_input_is_json_null,
                                        count_json, no_json_left),
        cmocka_unit_test_setup_teardown(test_compile_errors, count_json,
                                        no_json_left),
        cmocka_unit_test_setup_teardown(test_empty_program_is_identity,
                                        count_json, no_json_left),
        cmocka_unit_test_setup_teardown(test_runtime_errors, count_json,
                                        no_json_left),
        cmocka_unit_test_setup_teardown(test_halt_debug_input_reused,
                                        count_json, no_json_left),
        cmocka_unit_test_setup_teardown(test_collect, count_json, no_json_left),
        cmocka_unit_test_setup_teardown(test_exactly_one_result, count_json,
                                        no_json_left),
        cmocka_unit_test_setup_teardown(test_nesting_limit, count_json,
                                        no_json_left),
        cmocka_unit_test_setup_teardown(test_same_program_many_runs, count_json,
                                        no_json_left),
        cmocka_unit_test_setup_teardown(test_sensor_day, count_json,
                                        no_json_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
