/*
 * The units sample component, loaded with dlopen and driven through a
 * minimal stand-in for the host's table: its description, the rounding of
 * units.convert, the records of units.c_to_f and the errors both report.
 * The component is built from samples/components/units/units.c by this
 * directory's CMakeLists.txt; UNITS_SO is its path.
 */
#include <ferry/ferry.h>

#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct ferry_ctx {
    json_t *output; /* owned */
    int error_code;
    int retryable;
    char error[512];
    int nlogs;
    json_t *log_fields; /* owned, the last line's */
    char log_message[512];
};

static void fake_logv(ferry_ctx *ctx, ferry_log_level level, json_t *fields,
                      const char *fmt, va_list ap) {
    (void)level;
    ctx->nlogs++;
    json_decref(ctx->log_fields);
    ctx->log_fields = fields;
    vsnprintf(ctx->log_message, sizeof ctx->log_message, fmt, ap);
}

static void fake_log(ferry_ctx *ctx, ferry_log_level level, json_t *fields,
                     const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fake_logv(ctx, level, fields, fmt, ap);
    va_end(ap);
}

static int fake_set_output(ferry_ctx *ctx, json_t *output) {
    json_decref(ctx->output);
    ctx->output = output;
    return FERRY_OK;
}

static int fake_set_error(ferry_ctx *ctx, int code, int retryable,
                          const char *fmt, ...) {
    va_list ap;
    ctx->error_code = code;
    ctx->retryable = retryable;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
    return code;
}

static int fake_cancelled(ferry_ctx *ctx) {
    (void)ctx;
    return 0;
}

static const ferry_api host = {
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .size = sizeof(ferry_api),
    .alloc = malloc,
    .free = free,
    .log = fake_log,
    .logv = fake_logv,
    .set_output = fake_set_output,
    .set_error = fake_set_error,
    .cancelled = fake_cancelled,
};

static void *handle;
static const ferry_component *comp;

static int load(void **state) {
    ferry_entry_fn entry;
    (void)state;
    handle = dlopen(UNITS_SO, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return -1;
    }
    *(void **)&entry = dlsym(handle, FERRY_ENTRY_SYMBOL);
    if (!entry)
        return -1;
    comp = entry(&host);
    return comp ? 0 : -1;
}

static int unload(void **state) {
    (void)state;
    if (handle)
        dlclose(handle);
    return 0;
}

static const ferry_action *action(const char *id) {
    for (const ferry_action *a = comp->actions; a->id; a++) {
        if (strcmp(a->id, id) == 0)
            return a;
    }
    return NULL;
}

/* Runs an action on input (JSON text); returns its status, ctx holds the
 * rest. The caller frees ctx with ctx_done. */
static int run(ferry_ctx *ctx, const char *id, const char *input_json) {
    const ferry_action *a = action(id);
    json_error_t jerr;
    json_t *input = json_loads(input_json, 0, &jerr);
    int rc;
    assert_non_null(a);
    assert_non_null(input);
    memset(ctx, 0, sizeof *ctx);
    rc = a->run(ctx, input);
    json_decref(input);
    return rc;
}

static void ctx_done(ferry_ctx *ctx) {
    json_decref(ctx->output);
    json_decref(ctx->log_fields);
}

/* units.convert's output for value/from/to/decimals, which must succeed. */
static double convert(double value, const char *from, const char *to,
                      int decimals) {
    char input[256];
    ferry_ctx ctx;
    double out;
    snprintf(input, sizeof input,
             "{\"value\": %.17g, \"from\": \"%s\", \"to\": \"%s\", "
             "\"decimals\": %d}",
             value, from, to, decimals);
    assert_int_equal(run(&ctx, "units.convert", input), FERRY_OK);
    assert_true(json_is_real(ctx.output));
    out = json_real_value(ctx.output);
    ctx_done(&ctx);
    return out;
}

static void convert_fails(const char *input, const char *message) {
    ferry_ctx ctx;
    assert_int_equal(run(&ctx, "units.convert", input), FERRY_EINVAL);
    assert_int_equal(ctx.error_code, FERRY_EINVAL);
    assert_int_equal(ctx.retryable, 0);
    assert_null(ctx.output);
    if (!strstr(ctx.error, message))
        fail_msg("error '%s' does not contain '%s'", ctx.error, message);
    ctx_done(&ctx);
}

static void test_description(void **state) {
    const char *types = " string integer number boolean object array ";
    (void)state;
    assert_int_equal(comp->abi_major, FERRY_ABI_MAJOR);
    assert_int_equal(comp->abi_minor, FERRY_ABI_MINOR);
    assert_int_equal(comp->jansson_major, JANSSON_MAJOR_VERSION);
    assert_string_equal(comp->name, "units");
    assert_non_null(action("units.convert"));
    assert_non_null(action("units.c_to_f"));
    for (const ferry_action *a = comp->actions; a->id; a++) {
        assert_non_null(a->run);
        for (const ferry_input *in = a->inputs; in->name; in++) {
            char word[32];
            snprintf(word, sizeof word, " %s ", in->type);
            assert_non_null(strstr(types, word));
            if (in->default_json) {
                json_t *d = json_loads(in->default_json, JSON_DECODE_ANY, 0);
                assert_non_null(d);
                json_decref(d);
                assert_false(in->required);
            }
        }
    }
    /* Nothing but the entry function is visible. */
    assert_null(dlsym(handle, "convert_run"));
    assert_null(dlsym(handle, "round_decimal"));
}

/* Exact comparisons on purpose: the output must be the double nearest the
 * rounded decimal, which is what strtod gives for that decimal. */
static void test_convert_rounding(void **state) {
    (void)state;
    assert_true(convert(98.65, "F", "F", 1) == 98.7);
    assert_true(convert(-98.65, "F", "F", 1) == -98.7);
    assert_true(convert(1.005, "m", "m", 2) == 1.01);
    assert_true(convert(2.675, "kg", "kg", 2) == 2.68);
    assert_true(convert(0.05, "m", "m", 1) == 0.1);
    assert_true(convert(0.04, "m", "m", 1) == 0.0);
    assert_true(convert(-2.5, "m", "m", 0) == -3.0);
    assert_true(convert(1234567.891, "m", "m", 2) == 1234567.89);
    assert_true(convert(0.0001234, "m", "m", 12) == 0.0001234);
}

static void test_convert_units(void **state) {
    (void)state;
    assert_true(convert(100, "C", "F", 1) == 212.0);
    assert_true(convert(-40, "F", "C", 1) == -40.0);
    assert_true(convert(0, "C", "K", 2) == 273.15);
    assert_true(convert(21.4, "C", "F", 1) == 70.5);
    assert_true(convert(37, "C", "F", 1) == 98.6);
    assert_true(convert(37.025, "C", "F", 2) == 98.65);
    assert_true(convert(36.5, "C", "F", 0) == 98.0);
    assert_true(convert(300, "K", "F", 2) == 80.33);
    assert_true(convert(1, "mi", "km", 3) == 1.609);
    assert_true(convert(1, "ft", "in", 0) == 12.0);
    assert_true(convert(10, "km", "mi", 4) == 6.2137);
    assert_true(convert(1, "kg", "lb", 5) == 2.20462);
    assert_true(convert(100, "lb", "kg", 3) == 45.359);
    assert_true(convert(20, "c", "f", 0) == 68.0); /* any case */
}

static void test_convert_errors(void **state) {
    (void)state;
    convert_fails("{\"value\": 1, \"from\": \"X\", \"to\": \"m\"}",
                  "unknown unit 'X' (known: C, F, K, m, ft, in, km, mi, kg, "
                  "lb)");
    convert_fails("{\"value\": 1, \"from\": \"m\", \"to\": \"yd\"}",
                  "unknown unit 'yd'");
    convert_fails("{\"value\": 1, \"from\": \"C\", \"to\": \"m\"}",
                  "cannot convert temperature to length");
    convert_fails("{\"value\": 1, \"from\": \"kg\", \"to\": \"K\"}",
                  "cannot convert mass to temperature");
    convert_fails("{\"value\": -300, \"from\": \"C\", \"to\": \"K\"}",
                  "below absolute zero");
    convert_fails(
        "{\"value\": 1, \"from\": \"m\", \"to\": \"ft\", \"decimals\": -1}",
        "decimals must be between 0 and 12");
    convert_fails("{\"value\": \"1\", \"from\": \"m\", \"to\": \"ft\"}",
                  "value must be a number");
}

static void test_c_to_f(void **state) {
    ferry_ctx ctx;
    json_t *r0, *r1;
    (void)state;
    assert_int_equal(run(&ctx, "units.c_to_f",
                         "{\"records\": [{\"sensor\": \"a\", \"temp_c\": 21.4},"
                         " {\"sensor\": \"b\", \"temp_c\": -40}, "
                         "{\"temp_c\": 37.025}],"
                         " \"field\": \"temp_c\", \"target\": \"temp_f\", "
                         "\"decimals\": 1, \"keep_source\": true}"),
                     FERRY_OK);
    assert_int_equal(json_array_size(ctx.output), 3);
    r0 = json_array_get(ctx.output, 0);
    r1 = json_array_get(ctx.output, 1);
    assert_true(json_real_value(json_object_get(r0, "temp_f")) == 70.5);
    assert_true(json_number_value(json_object_get(r0, "temp_c")) == 21.4);
    assert_string_equal(json_string_value(json_object_get(r0, "sensor")), "a");
    assert_true(json_real_value(json_object_get(r1, "temp_f")) == -40.0);
    /* 37.025 C is 98.645 F: one decimal looks at the 4 only */
    assert_true(json_real_value(json_object_get(json_array_get(ctx.output, 2),
                                                "temp_f")) == 98.6);
    assert_int_equal(ctx.nlogs, 1);
    assert_int_equal(
        json_integer_value(json_object_get(ctx.log_fields, "count")), 3);
    ctx_done(&ctx);

    /* Defaults, another field, and dropping the source. */
    assert_int_equal(run(&ctx, "units.c_to_f",
                         "{\"records\": [{\"t\": 0}], \"field\": \"t\", "
                         "\"target\": \"f\", \"decimals\": 0, "
                         "\"keep_source\": false}"),
                     FERRY_OK);
    r0 = json_array_get(ctx.output, 0);
    assert_int_equal(json_object_size(r0), 1);
    assert_true(json_real_value(json_object_get(r0, "f")) == 32.0);
    ctx_done(&ctx);

    assert_int_equal(run(&ctx, "units.c_to_f", "{\"records\": []}"), FERRY_OK);
    assert_true(json_is_array(ctx.output));
    assert_int_equal(json_array_size(ctx.output), 0);
    ctx_done(&ctx);
}

static void test_c_to_f_input_untouched(void **state) {
    const ferry_action *a = action("units.c_to_f");
    json_t *input = json_pack("{s:[{s:f}]}", "records", "temp_c", 10.0);
    json_t *before = json_deep_copy(input);
    ferry_ctx ctx;
    (void)state;
    memset(&ctx, 0, sizeof ctx);
    assert_int_equal(a->run(&ctx, input), FERRY_OK);
    assert_true(json_equal(input, before));
    ctx_done(&ctx);
    json_decref(input);
    json_decref(before);
}

static void c_to_f_fails(const char *input, const char *message) {
    ferry_ctx ctx;
    assert_int_equal(run(&ctx, "units.c_to_f", input), FERRY_EINVAL);
    assert_int_equal(ctx.retryable, 0);
    assert_null(ctx.output);
    if (!strstr(ctx.error, message))
        fail_msg("error '%s' does not contain '%s'", ctx.error, message);
    ctx_done(&ctx);
}

static void test_c_to_f_errors(void **state) {
    (void)state;
    c_to_f_fails("{\"records\": [{\"temp_c\": 1}, {\"temp\": 2}]}",
                 "records[1] has no field 'temp_c'");
    c_to_f_fails("{\"records\": [{\"temp_c\": 1}, {\"temp_c\": 2}, "
                 "{\"temp_c\": \"3\"}]}",
                 "records[2].temp_c is not a number");
    c_to_f_fails("{\"records\": [5]}", "records[0] is not an object");
    c_to_f_fails("{\"records\": {}}", "records must be an array");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_description),
        cmocka_unit_test(test_convert_rounding),
        cmocka_unit_test(test_convert_units),
        cmocka_unit_test(test_convert_errors),
        cmocka_unit_test(test_c_to_f),
        cmocka_unit_test(test_c_to_f_input_untouched),
        cmocka_unit_test(test_c_to_f_errors),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
