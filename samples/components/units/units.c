/*
 * units: a sample ferry component that converts physical units.
 *
 * It is built out of the ferry tree, against the installed SDK only (see
 * README.md), and shows the shape every component has: a static
 * description, actions that read their validated input, set an output or an
 * error through the host's table, and one exported entry function.
 *
 * Actions:
 *   units.convert  one value from one unit to another, rounded
 *   units.c_to_f   adds a Fahrenheit field to every record of an array
 */
#include <ferry/ferry.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The host's table; set once by the entry function, borrowed. */
static const ferry_api *api;

#define UNITS_MAX_DECIMALS 12

/* ---- unit table ---- */

typedef enum unit_kind { KIND_TEMPERATURE, KIND_LENGTH, KIND_MASS } unit_kind;

static const char *const kind_names[] = {"temperature", "length", "mass"};

/*
 * Length and mass convert through a base unit (m, kg): base = v * factor.
 * Temperatures are affine; they convert through Celsius:
 *   c = (v - offset) * num / den,   v = c * den / num + offset.
 * The factors are exact definitions (1 ft = 0.3048 m, 1 lb = 0.45359237 kg).
 */
typedef struct unit {
    const char *name;
    unit_kind kind;
    double factor;
    double offset;
    double num, den;
} unit;

static const unit units[] = {
    {"C", KIND_TEMPERATURE, 0, 0, 1, 1},
    {"F", KIND_TEMPERATURE, 0, 32, 5, 9},
    {"K", KIND_TEMPERATURE, 0, 273.15, 1, 1},
    {"m", KIND_LENGTH, 1, 0, 0, 0},
    {"ft", KIND_LENGTH, 0.3048, 0, 0, 0},
    {"in", KIND_LENGTH, 0.0254, 0, 0, 0},
    {"km", KIND_LENGTH, 1000, 0, 0, 0},
    {"mi", KIND_LENGTH, 1609.344, 0, 0, 0},
    {"kg", KIND_MASS, 1, 0, 0, 0},
    {"lb", KIND_MASS, 0.45359237, 0, 0, 0},
};

#define NUNITS (sizeof(units) / sizeof(units[0]))
#define KNOWN_UNITS "C, F, K, m, ft, in, km, mi, kg, lb"

/* Unit names are matched without regard to case: no two differ only in
 * case, and "c" or "KG" in a flow is a typo worth forgiving. */
static const unit *unit_find(const char *name) {
    for (size_t i = 0; i < NUNITS; i++) {
        if (strcasecmp(units[i].name, name) == 0)
            return &units[i];
    }
    return NULL;
}

static double to_celsius(const unit *from, double v) {
    return (v - from->offset) * from->num / from->den;
}

static double unit_convert(const unit *from, const unit *to, double v) {
    if (from == to)
        return v;
    if (from->kind == KIND_TEMPERATURE)
        return to_celsius(from, v) * to->den / to->num + to->offset;
    return v * from->factor / to->factor;
}

/* ---- rounding ---- */

/*
 * Rounds x to `decimals` places, half away from zero, as a person reading
 * the number in decimal would. Scaling by 10^decimals and calling round()
 * gets this wrong because the double nearest 98.65 is 98.6499999...: it
 * would give 98.6. Instead the value is taken as its 15 significant decimal
 * digits (every double prints to 15 digits and back unchanged, and the
 * noise of a unit conversion sits beyond them), rounded as a digit string,
 * and parsed back, which yields the double nearest the rounded decimal.
 */
static double round_decimal(double x, int decimals) {
    char buf[40];
    char digits[16];
    int nd = 0;
    int exp10;
    const char *p;
    long long mant = 0;
    int keep;

    if (x == 0)
        return 0.0; /* not -0.0 */
    if (!isfinite(x))
        return x;
    /* "d.ddddddddddddddde[+-]X": 15 significant digits. */
    snprintf(buf, sizeof buf, "%.14e", fabs(x));
    for (p = buf; *p && *p != 'e'; p++) {
        if (*p >= '0' && *p <= '9' && nd < (int)sizeof digits)
            digits[nd++] = *p;
    }
    if (*p != 'e')
        return x;
    exp10 = atoi(p + 1);
    /* digits[k] has place value 10^(exp10 - k); keep those with place value
     * of at least 10^-decimals. */
    keep = exp10 + decimals + 1;
    if (keep >= nd)
        return x; /* already no finer than asked */
    if (keep < 0)
        return 0.0;
    for (int k = 0; k < keep; k++)
        mant = mant * 10 + (digits[k] - '0');
    if (digits[keep] >= '5')
        mant++;
    if (mant == 0)
        return 0.0; /* not -0.0 */
    snprintf(buf, sizeof buf, "%s%llde%d", x < 0 ? "-" : "", mant, -decimals);
    return strtod(buf, NULL);
}

/* ---- input helpers ---- */

/* The host fills in defaults before calling; the fallbacks only matter for a
 * host that does not (or a test calling the action directly). */
static const char *input_string(const json_t *input, const char *key,
                                const char *dflt) {
    const char *s = json_string_value(json_object_get(input, key));
    return s ? s : dflt;
}

static json_int_t input_integer(const json_t *input, const char *key,
                                json_int_t dflt) {
    const json_t *v = json_object_get(input, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static int input_boolean(const json_t *input, const char *key, int dflt) {
    const json_t *v = json_object_get(input, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static int check_decimals(ferry_ctx *ctx, json_int_t decimals) {
    if (decimals < 0 || decimals > UNITS_MAX_DECIMALS)
        return api->set_error(
            ctx, FERRY_EINVAL, 0,
            "decimals must be between 0 and %d, got %" JSON_INTEGER_FORMAT,
            UNITS_MAX_DECIMALS, decimals);
    return FERRY_OK;
}

static int set_number_output(ferry_ctx *ctx, double v) {
    json_t *out = json_real(v);
    if (!out)
        return api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
    return api->set_output(ctx, out);
}

/* ---- units.convert ---- */

static int convert_run(ferry_ctx *ctx, const json_t *input) {
    const json_t *value = json_object_get(input, "value");
    const char *from_name = input_string(input, "from", NULL);
    const char *to_name = input_string(input, "to", NULL);
    json_int_t decimals = input_integer(input, "decimals", 1);
    const unit *from, *to;
    double v, r;
    int rc;

    if (!json_is_number(value))
        return api->set_error(ctx, FERRY_EINVAL, 0, "value must be a number");
    if (!from_name || !to_name)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "from and to must be unit names (known: %s)",
                              KNOWN_UNITS);
    if ((rc = check_decimals(ctx, decimals)) != FERRY_OK)
        return rc;
    from = unit_find(from_name);
    if (!from)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "unknown unit '%s' (known: %s)", from_name,
                              KNOWN_UNITS);
    to = unit_find(to_name);
    if (!to)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "unknown unit '%s' (known: %s)", to_name,
                              KNOWN_UNITS);
    if (from->kind != to->kind)
        return api->set_error(
            ctx, FERRY_EINVAL, 0, "cannot convert %s to %s (%s to %s)",
            kind_names[from->kind], kind_names[to->kind], from->name, to->name);

    v = json_number_value(value);
    if (from->kind == KIND_TEMPERATURE && to_celsius(from, v) < -273.15 - 1e-9)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "%g %s is below absolute zero", v, from->name);
    r = unit_convert(from, to, v);
    if (!isfinite(r))
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "%g %s in %s is out of range", v, from->name,
                              to->name);
    return set_number_output(ctx, round_decimal(r, (int)decimals));
}

/* ---- units.c_to_f ---- */

static int c_to_f_run(ferry_ctx *ctx, const json_t *input) {
    const json_t *records = json_object_get(input, "records");
    const char *field = input_string(input, "field", "temp_c");
    const char *target = input_string(input, "target", "temp_f");
    json_int_t decimals = input_integer(input, "decimals", 1);
    int keep_source = input_boolean(input, "keep_source", 1);
    const unit *c = unit_find("C"), *f = unit_find("F");
    json_t *out;
    size_t n;
    int rc;

    if (!json_is_array(records))
        return api->set_error(ctx, FERRY_EINVAL, 0, "records must be an array");
    if ((rc = check_decimals(ctx, decimals)) != FERRY_OK)
        return rc;
    n = json_array_size(records);
    out = json_array();
    if (!out)
        return api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");

    for (size_t i = 0; i < n; i++) {
        const json_t *rec = json_array_get(records, i);
        const json_t *temp;
        json_t *copy;
        double tf;

        if ((i & 4095) == 4095 && api->cancelled(ctx)) {
            json_decref(out);
            return api->set_error(ctx, FERRY_ECANCELLED, 0, "cancelled");
        }
        if (!json_is_object(rec)) {
            json_decref(out);
            return api->set_error(ctx, FERRY_EINVAL, 0,
                                  "records[%zu] is not an object", i);
        }
        temp = json_object_get(rec, field);
        if (!temp) {
            json_decref(out);
            return api->set_error(ctx, FERRY_EINVAL, 0,
                                  "records[%zu] has no field '%s'", i, field);
        }
        if (!json_is_number(temp)) {
            json_decref(out);
            return api->set_error(ctx, FERRY_EINVAL, 0,
                                  "records[%zu].%s is not a number", i, field);
        }
        tf = round_decimal(unit_convert(c, f, json_number_value(temp)),
                           (int)decimals);

        /* The input is borrowed and may be shared with earlier steps'
         * outputs: build new records instead of touching it. */
        copy = json_deep_copy(rec);
        if (!copy || json_object_set_new(copy, target, json_real(tf)) != 0 ||
            (!keep_source && strcmp(field, target) != 0 &&
             json_object_del(copy, field) != 0) ||
            json_array_append_new(out, copy) != 0) {
            json_decref(out);
            return api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
        }
    }

    api->log(ctx, FERRY_LOG_INFO, json_pack("{s:I}", "count", (json_int_t)n),
             "converted %zu records from %s to %s", n, field, target);
    return api->set_output(ctx, out);
}

/* ---- description ---- */

static const ferry_input convert_inputs[] = {
    {"value", "number", 1, NULL, "the value to convert"},
    {"from", "string", 1, NULL,
     "unit of value: C, F, K, m, ft, in, km, mi, kg or lb (any case)"},
    {"to", "string", 1, NULL, "unit to convert to, of the same kind"},
    {"decimals", "integer", 0, "1",
     "decimal places to round to (0-12), half away from zero"},
    {0},
};

static const ferry_input c_to_f_inputs[] = {
    {"records", "array", 1, NULL, "objects that each carry a Celsius value"},
    {"field", "string", 0, "\"temp_c\"", "field holding degrees Celsius"},
    {"target", "string", 0, "\"temp_f\"",
     "field to write degrees Fahrenheit to"},
    {"decimals", "integer", 0, "1",
     "decimal places to round to (0-12), half away from zero"},
    {"keep_source", "boolean", 0, "true",
     "keep the Celsius field in the output records"},
    {0},
};

static const ferry_action actions[] = {
    {
        .id = "units.convert",
        .label = "Convert a value",
        .description = "Converts a temperature (C, F, K), length (m, ft, in, "
                       "km, mi) or mass (kg, lb) to another unit of the same "
                       "kind and rounds it.",
        .inputs = convert_inputs,
        .output = "the converted number, rounded to `decimals` places",
        .run = convert_run,
        .flags = FERRY_ACTION_IDEMPOTENT,
    },
    {
        .id = "units.c_to_f",
        .label = "Add Fahrenheit to records",
        .description = "Copies an array of records, adding to each the "
                       "Fahrenheit value of its Celsius field. A record "
                       "without a numeric Celsius field fails the step.",
        .inputs = c_to_f_inputs,
        .output = "a new array of the records, each with `target` set",
        .run = c_to_f_run,
        .flags = FERRY_ACTION_IDEMPOTENT,
    },
    {0},
};

static const ferry_component desc = {
    FERRY_COMPONENT_HEADER,
    .name = "units",
    .version = "1.0.0",
    .description = "Unit conversions for temperature, length and mass",
    .actions = actions,
};

FERRY_EXPORT const ferry_component *
ferry_component_entry(const ferry_api *host) {
    api = host;
    return &desc;
}
