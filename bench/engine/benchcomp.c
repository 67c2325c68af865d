/*
 * The benchmark component: actions that do a known amount of work, so that
 * what the engine adds around them can be measured. Built like a real
 * component (MODULE, hidden visibility, only the SDK header) but never
 * installed and kept out of the build's components directory.
 *
 *   bench.make   builds an array of `records` sensor-like records (about
 *                97 bytes of compact JSON each: 10,800 make ~1 MB)
 *   bench.pass   outputs its `value` as it is (a new reference, no copy)
 *   bench.copy   outputs a deep copy of its `value` (a step doing real work)
 *   bench.c_to_f converts `value` from Celsius to Fahrenheit, one decimal
 */
#include <ferry/ferry.h>
#include <math.h>
#include <stdio.h>

static const ferry_api *api;

/* One record. Deterministic: record i of every execution is the same. */
static json_t *make_record(json_int_t i) {
    char ts[32];
    long m = (long)(i % 43200);
    snprintf(ts, sizeof ts, "2026-11-%02ldT%02ld:%02ld:00", 1 + m / 1440,
             (m / 60) % 24, m % 60);
    double temp = 18.5 + (double)(i % 41) / 10.0;
    double hum = 44.0 - (double)(i % 23) / 10.0;
    return json_pack("{s:I, s:s, s:s, s:f, s:f, s:b}", "id", i, "sensor",
                     "ahu-3", "timestamp", ts, "temp_c", temp, "humidity", hum,
                     "ok", (int)(i % 7 != 0));
}

static int make(ferry_ctx *ctx, const json_t *input) {
    json_int_t n = json_integer_value(json_object_get(input, "records"));
    if (n < 0)
        return api->set_error(ctx, FERRY_EINVAL, 0, "records must be >= 0");
    json_t *a = json_array();
    for (json_int_t i = 0; a && i < n; i++) {
        json_t *r = make_record(i);
        if (!r || json_array_append_new(a, r)) {
            json_decref(a);
            a = NULL;
        }
    }
    if (!a)
        return api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
    return api->set_output(ctx, a);
}

static int pass(ferry_ctx *ctx, const json_t *input) {
    json_t *v = json_object_get(input, "value");
    return api->set_output(ctx, json_incref(v));
}

static int copy(ferry_ctx *ctx, const json_t *input) {
    json_t *v = json_deep_copy(json_object_get(input, "value"));
    if (!v)
        return api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
    return api->set_output(ctx, v);
}

static int c_to_f(ferry_ctx *ctx, const json_t *input) {
    double c = json_number_value(json_object_get(input, "value"));
    return api->set_output(
        ctx, json_real(round((c * 9.0 / 5.0 + 32.0) * 10.0) / 10.0));
}

static const ferry_input make_inputs[] = {
    {"records", "integer", 0, "10800", "how many records to make"}, {0}};
static const ferry_input value_inputs[] = {
    {"value", "any", 1, NULL, "the value"}, {0}};
static const ferry_input number_inputs[] = {
    {"value", "number", 1, NULL, "degrees Celsius"}, {0}};

static const ferry_action actions[] = {
    {.id = "bench.make",
     .label = "Make records",
     .description = "Builds an array of sensor-like records.",
     .inputs = make_inputs,
     .output = "an array of records",
     .run = make,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {.id = "bench.pass",
     .label = "Pass",
     .description = "Outputs its value without copying it.",
     .inputs = value_inputs,
     .output = "the value",
     .run = pass,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {.id = "bench.copy",
     .label = "Copy",
     .description = "Outputs a deep copy of its value.",
     .inputs = value_inputs,
     .output = "a copy of the value",
     .run = copy,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {.id = "bench.c_to_f",
     .label = "Celsius to Fahrenheit",
     .description = "Converts a temperature, rounded to one decimal.",
     .inputs = number_inputs,
     .output = "a number",
     .run = c_to_f,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {0}};

static const ferry_component desc = {
    FERRY_COMPONENT_HEADER,
    .name = "bench",
    .version = "1.0.0",
    .description = "Actions of known cost for the engine benchmark.",
    .actions = actions,
};

FERRY_EXPORT const ferry_component *
ferry_component_entry(const ferry_api *host) {
    api = host;
    return &desc;
}
