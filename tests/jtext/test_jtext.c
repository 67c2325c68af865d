/*
 * jtext (core/jtext) against jansson. Every case runs the same input
 * through both: jtext_load must give what json_loadb gives (the same
 * value, key order and integer/real types, or NULL with jansson's own
 * error), and jtext_dump what json_dumps(JSON_COMPACT | JSON_ENCODE_ANY)
 * gives, byte for byte (NULL where it gives NULL). Many cases also carry
 * the literal text expected, so that the two being wrong in the same way
 * would fail too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "jtext/jtext.h"
#include "jtext_same.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)

/* A string literal and its length (it may hold NUL bytes). */
#define T(s) s, sizeof(s) - 1

/* ---- comparing values ---- */

/* Dumps v with both; they must agree (text, or both NULL), and *len must
 * be the text's length. Returns jtext's text (the caller frees it) or
 * NULL. */
static char *dump_both(const char *name, const json_t *v) {
    char *dj = json_dumps(v, DUMP_FLAGS);
    size_t len = (size_t)-7;
    char *dt = jtext_dump(v, &len);
    char *dt2 = jtext_dump(v, NULL);
    if (!dj != !dt || !dt != !dt2)
        fail_msg("%s: dump: jansson %s, jtext %s, jtext without len %s", name,
                 dj ? dj : "NULL", dt ? dt : "NULL", dt2 ? dt2 : "NULL");
    if (dj && (strcmp(dj, dt) || strcmp(dt, dt2)))
        fail_msg("%s: dump: jansson \"%s\", jtext \"%s\"", name, dj, dt);
    if (dt && len != strlen(dt))
        fail_msg("%s: dump: len %zu, text of %zu bytes", name, len, strlen(dt));
    if (!dt && len != (size_t)-7)
        fail_msg("%s: dump: len set on a failure", name);
    free(dj);
    free(dt2);
    return dt;
}

/* ---- loading ---- */

enum { FAILS = 0, LOADS = 1, EITHER = 2 };

typedef struct lcase {
    const char *name;
    const char *text;
    size_t len;
    size_t flags;
    int want;         /* FAILS, LOADS, or EITHER (whatever jansson does) */
    const char *dump; /* the value's compact text, when it loads */
    const char *err;  /* the start of jansson's error text, when it fails */
} lcase;

static int loads_ok, loads_failed;

/* Loads buf with both and compares everything; checks the literal
 * expectations of the case. */
static void check_load(const char *name, const char *buf, size_t n,
                       size_t flags, int want, const char *dump,
                       const char *err) {
    json_error_t ej, et;
    memset(&ej, 0x5a, sizeof(ej));
    memset(&et, 0xa5, sizeof(et));
    json_t *vj = json_loadb(buf, n, flags, &ej);
    json_t *vt = jtext_load(buf, n, flags, &et);
    json_t *vn = jtext_load(buf, n, flags, NULL);
    if (!vj != !vt || !vt != !vn)
        fail_msg("%s: jansson %s (%s), jtext %s (%s), jtext without err %s",
                 name, vj ? "loads" : "fails", vj ? "" : ej.text,
                 vt ? "loads" : "fails", vt ? "" : et.text,
                 vn ? "loads" : "fails");
    if (want != EITHER && !!vj != want)
        fail_msg("%s: expected to %s, jansson: %s", name,
                 want ? "load" : "fail", vj ? "loads" : ej.text);
    if (vj) {
        loads_ok++;
        if (!same(vj, vt) || !same(vj, vn) || !json_equal(vj, vt))
            fail_msg("%s: values differ", name);
        /* As jansson leaves err after a success. */
        if (et.text[0] != '\0' || et.line != ej.line ||
            et.column != ej.column || et.position != ej.position ||
            strcmp(et.source, ej.source))
            fail_msg("%s: err after a success: \"%s\" %d:%d@%d %s", name,
                     et.text, et.line, et.column, et.position, et.source);
        char *dj = json_dumps(vj, DUMP_FLAGS);
        char *dt = dump_both(name, vt);
        char *dt2 = dump_both(name, vj);
        assert_non_null(dj);
        if (strcmp(dj, dt) || strcmp(dj, dt2))
            fail_msg("%s: jansson's value dumps as \"%s\", jtext's as \"%s\"",
                     name, dj, dt);
        if (dump && strcmp(dt, dump))
            fail_msg("%s: dumps as \"%s\", expected \"%s\"", name, dt, dump);
        free(dj);
        free(dt);
        free(dt2);
    } else {
        loads_failed++;
        if (strcmp(ej.text, et.text) || ej.line != et.line ||
            ej.column != et.column || ej.position != et.position ||
            strcmp(ej.source, et.source) ||
            json_error_code(&ej) != json_error_code(&et))
            fail_msg("%s: errors differ: jansson \"%s\" %d:%d@%d, jtext \"%s\" "
                     "%d:%d@%d",
                     name, ej.text, ej.line, ej.column, ej.position, et.text,
                     et.line, et.column, et.position);
        if (err && strncmp(ej.text, err, strlen(err)))
            fail_msg("%s: error \"%s\", expected \"%s...\"", name, ej.text,
                     err);
    }
    json_decref(vj);
    json_decref(vt);
    json_decref(vn);
}

static void run_loads(const lcase *c, size_t n) {
    for (size_t i = 0; i < n; i++)
        check_load(c[i].name, c[i].text, c[i].len, c[i].flags, c[i].want,
                   c[i].dump, c[i].err);
}

#define NCASES(a) (sizeof(a) / sizeof(*(a)))
#define ANY JSON_DECODE_ANY

static const lcase structure[] = {
    {"empty object", T("{}"), 0, LOADS, "{}", NULL},
    {"empty array", T("[]"), 0, LOADS, "[]", NULL},
    {"plain object", T("{\"a\":1,\"b\":\"x\",\"c\":true}"), 0, LOADS,
     "{\"a\":1,\"b\":\"x\",\"c\":true}", NULL},
    {"plain array", T("[1,\"two\",3.5,null,false]"), 0, LOADS,
     "[1,\"two\",3.5,null,false]", NULL},
    {"nesting", T("{\"a\":[1,{\"b\":[[],{}],\"c\":{\"d\":[null]}}],\"e\":{}}"),
     0, LOADS, "{\"a\":[1,{\"b\":[[],{}],\"c\":{\"d\":[null]}}],\"e\":{}}",
     NULL},
    {"key order kept", T("{\"z\":1,\"a\":2,\"m\":3,\"b\":4}"), 0, LOADS,
     "{\"z\":1,\"a\":2,\"m\":3,\"b\":4}", NULL},
    {"duplicate keys: last value, first place", T("{\"a\":1,\"b\":2,\"a\":3}"),
     0, LOADS, "{\"a\":3,\"b\":2}", NULL},
    {"duplicate keys, nested values", T("{\"k\":[1],\"x\":0,\"k\":{\"y\":2}}"),
     0, LOADS, "{\"k\":{\"y\":2},\"x\":0}", NULL},
    {"duplicate keys with JSON_REJECT_DUPLICATES", T("{\"a\":1,\"a\":2}"),
     JSON_REJECT_DUPLICATES, FAILS, NULL, "duplicate object key"},
    {"escaped key then escaped value", T("{\"k\\n\":\"v\\t\",\"k2\":\"w\"}"), 0,
     LOADS, "{\"k\\n\":\"v\\t\",\"k2\":\"w\"}", NULL},
    {"long escaped keys (over 64 bytes)",
     T("{\"\\u00e9aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aa"
       "aaaaaaaa\":\"\\tvalue\\n that reuses the scratch buffer\","
       "\"b\\\"\":[\"\\\\\"]}"),
     0, LOADS,
     "{\"\xc3\xa9"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "\":\"\\tvalue\\n that reuses the scratch buffer\",\"b\\\"\":[\"\\\\\"]}",
     NULL},
    {"empty key", T("{\"\":\"\"}"), 0, LOADS, "{\"\":\"\"}", NULL},
    {"whitespace everywhere",
     T(" \t\r\n{ \"a\" \t:\r\n[ 1 ,\n2 , { } , [ ] ] , \"b\" : \"x\" } \n\t"),
     0, LOADS, "{\"a\":[1,2,{},[]],\"b\":\"x\"}", NULL},
    {"form feed is not whitespace", T("\f{}"), 0, FAILS, NULL,
     "'[' or '{' expected"},
    {"vertical tab is not whitespace", T("[1,\v2]"), 0, FAILS, NULL, NULL},
    {"empty input", T(""), 0, FAILS, NULL, "'[' or '{' expected"},
    {"empty input, any", T(""), ANY, FAILS, NULL, NULL},
    {"only whitespace", T(" \n\t "), ANY, FAILS, NULL, NULL},
    {"trailing garbage", T("{} x"), 0, FAILS, NULL, "end of file expected"},
    {"trailing bracket", T("[1]]"), 0, FAILS, NULL, "end of file expected"},
    {"two values", T("{}{}"), 0, FAILS, NULL, "end of file expected"},
    {"two scalars", T("1 2"), ANY, FAILS, NULL, "end of file expected"},
    {"trailing garbage without the EOF check", T("{\"a\":1} x"),
     JSON_DISABLE_EOF_CHECK, LOADS, "{\"a\":1}", NULL},
    {"trailing comma in array", T("[1,]"), 0, FAILS, NULL, "unexpected token"},
    {"trailing comma in object", T("{\"a\":1,}"), 0, FAILS, NULL,
     "string or '}' expected"},
    {"lone comma", T("[,]"), 0, FAILS, NULL, NULL},
    {"leading comma", T("[,1]"), 0, FAILS, NULL, NULL},
    {"double comma", T("[1,,2]"), 0, FAILS, NULL, NULL},
    {"missing colon", T("{\"a\" 1}"), 0, FAILS, NULL, "':' expected"},
    {"missing value", T("{\"a\":}"), 0, FAILS, NULL, NULL},
    {"key not a string", T("{1:2}"), 0, FAILS, NULL, NULL},
    {"unclosed array", T("[1,2"), 0, FAILS, NULL, NULL},
    {"unclosed object", T("{\"a\":1"), 0, FAILS, NULL, NULL},
    {"unclosed string", T("[\"abc"), 0, FAILS, NULL, "premature end of input"},
    {"mismatched brackets", T("[1}"), 0, FAILS, NULL, NULL},
    {"single quotes", T("{'a':1}"), 0, FAILS, NULL, NULL},
    {"comment", T("[1/*x*/]"), 0, FAILS, NULL, NULL},
    {"NUL after the value", T("{}\0"), 0, FAILS, NULL, "end of file expected"},
    /* jansson's reader drops a NUL byte it puts back after a token: these
     * load in jansson, so they must in jtext. */
    {"NUL after a number", T("[1\0]"), 0, EITHER, NULL, NULL},
    {"NUL after a literal", T("[true\0]"), 0, EITHER, NULL, NULL},
    {"NUL after a scalar", T("1\0"), ANY, EITHER, NULL, NULL},
    {"UTF-8 BOM", T("\xef\xbb\xbf{}"), 0, FAILS, NULL, NULL},
};

static const lcase strings[] = {
    {"every short escape", T("[\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"]"), 0,
     LOADS, "[\"\\\" \\\\ / \\b \\f \\n \\r \\t\"]", NULL},
    {"escapes back to back", T("[\"\\n\\n\\\\\\\"\\/\"]"), 0, LOADS,
     "[\"\\n\\n\\\\\\\"/\"]", NULL},
    {"control characters as \\u", T("[\"\\u0001\\u001f\\u001F\\u000b\"]"), 0,
     LOADS, "[\"\\u0001\\u001F\\u001F\\u000B\"]", NULL},
    {"\\u of short escapes", T("[\"\\u0008\\u000c\\u000A\\u000d\\u0009\"]"), 0,
     LOADS, "[\"\\b\\f\\n\\r\\t\"]", NULL},
    {"\\u of ASCII", T("[\"\\u0041\\u0022\\u005c\\u002F\\u007f\"]"), 0, LOADS,
     "[\"A\\\"\\\\/\x7f\"]", NULL},
    {"\\u to 2 and 3 bytes", T("[\"\\u00e9\\u00E9\\u20ac\\uFFFF\\u0800\"]"), 0,
     LOADS, "[\"\xc3\xa9\xc3\xa9\xe2\x82\xac\xef\xbf\xbf\xe0\xa0\x80\"]", NULL},
    {"surrogate pair", T("[\"\\ud83d\\ude00\"]"), 0, LOADS,
     "[\"\xf0\x9f\x98\x80\"]", NULL},
    {"surrogate pairs, first and last", T("[\"\\uD800\\uDC00\\uDBFF\\uDFFF\"]"),
     0, LOADS, "[\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"]", NULL},
    {"lone high surrogate", T("[\"\\ud83d\"]"), 0, FAILS, NULL,
     "invalid Unicode '\\uD83D'"},
    {"lone high surrogate, then text", T("[\"\\ud83dxx\"]"), 0, FAILS, NULL,
     "invalid Unicode '\\uD83D'"},
    {"lone low surrogate", T("[\"\\ude00\"]"), 0, FAILS, NULL,
     "invalid Unicode '\\uDE00'"},
    {"high surrogate then not a low one", T("[\"\\ud83d\\u0041\"]"), 0, FAILS,
     NULL, "invalid Unicode '\\uD83D\\u0041'"},
    {"two high surrogates", T("[\"\\ud83d\\ud83d\"]"), 0, FAILS, NULL, NULL},
    {"high surrogate then a short escape", T("[\"\\ud83d\\n\"]"), 0, FAILS,
     NULL, NULL},
    {"high surrogate then a bad escape", T("[\"\\ud83d\\uZZZZ\"]"), 0, FAILS,
     NULL, NULL},
    {"\\u0000", T("[\"a\\u0000b\"]"), 0, FAILS, NULL,
     "\\u0000 is not allowed without JSON_ALLOW_NUL"},
    {"\\u0000 as a scalar", T("\"\\u0000\""), ANY, FAILS, NULL, NULL},
    {"\\u0000 in a key", T("{\"\\u0000\":1}"), 0, FAILS, NULL,
     "NUL byte in object key not supported"},
    {"\\u0000 with JSON_ALLOW_NUL", T("[\"a\\u0000b\"]"), JSON_ALLOW_NUL, LOADS,
     "[\"a\\u0000b\"]", NULL},
    {"bad escape", T("[\"\\x\"]"), 0, FAILS, NULL, "invalid escape"},
    {"escaped single quote", T("[\"\\'\"]"), 0, FAILS, NULL, "invalid escape"},
    {"bad hex", T("[\"\\u12G4\"]"), 0, FAILS, NULL, "invalid escape"},
    {"short \\u", T("[\"\\u12\"]"), 0, FAILS, NULL, NULL},
    {"\\u at the end", T("[\"\\u"), 0, FAILS, NULL, NULL},
    {"backslash at the end", T("[\"\\"), 0, FAILS, NULL, NULL},
    {"UTF-8 of 2, 3 and 4 bytes",
     T("[\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"]"), 0, LOADS,
     "[\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"]", NULL},
    {"UTF-8 limits",
     T("[\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
       "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"]"),
     0, LOADS,
     "[\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
     "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"]",
     NULL},
    {"UTF-8 in keys and with escapes",
     T("{\"cl\xc3\xa9\":\"\xe2\x82\xac\\n\"}"), 0, LOADS,
     "{\"cl\xc3\xa9\":\"\xe2\x82\xac\\n\"}", NULL},
    {"DEL raw", T("[\"\x7f\"]"), 0, LOADS, "[\"\x7f\"]", NULL},
    {"bad UTF-8: 0xff", T("[\"\xff\"]"), 0, FAILS, NULL,
     "unable to decode byte 0xff"},
    {"bad UTF-8: continuation byte", T("[\"a\x80\"]"), 0, FAILS, NULL, NULL},
    {"bad UTF-8: truncated", T("[\"\xc3\"]"), 0, FAILS, NULL, NULL},
    {"bad UTF-8: truncated at the end", T("[\"\xe2\x82"), 0, FAILS, NULL, NULL},
    {"bad UTF-8: overlong 2", T("[\"\xc0\xaf\"]"), 0, FAILS, NULL, NULL},
    {"bad UTF-8: overlong 3", T("[\"\xe0\x80\xaf\"]"), 0, FAILS, NULL, NULL},
    {"bad UTF-8: overlong 4", T("[\"\xf0\x80\x80\xaf\"]"), 0, FAILS, NULL,
     NULL},
    {"bad UTF-8: surrogate", T("[\"\xed\xa0\x80\"]"), 0, FAILS, NULL, NULL},
    {"bad UTF-8: past U+10FFFF", T("[\"\xf4\x90\x80\x80\"]"), 0, FAILS, NULL,
     NULL},
    {"bad UTF-8: 0xf5", T("[\"\xf5\x80\x80\x80\"]"), 0, FAILS, NULL, NULL},
    {"bad UTF-8 after an escape", T("[\"\\n\xff\"]"), 0, FAILS, NULL, NULL},
    {"bad UTF-8 in a key", T("{\"\xc3\x28\":1}"), 0, FAILS, NULL, NULL},
    {"bad UTF-8 outside strings", T("[1]\xff"), 0, FAILS, NULL, NULL},
    {"raw newline", T("[\"a\nb\"]"), 0, FAILS, NULL, "unexpected newline"},
    {"raw control character", T("[\"a\x01\"]"), 0, FAILS, NULL,
     "control character 0x1"},
    {"raw tab", T("[\"a\tb\"]"), 0, FAILS, NULL, "control character 0x9"},
    {"raw 0x1f after an escape", T("[\"\\t\x1f\"]"), 0, FAILS, NULL,
     "control character 0x1f"},
    {"raw NUL", T("[\"a\0\"]"), 0, FAILS, NULL, "control character 0x0"},
    {"string scalar", T("\"x\\ty\""), ANY, LOADS, "\"x\\ty\"", NULL},
};

static const lcase numbers[] = {
    {"zero", T("[0]"), 0, LOADS, "[0]", NULL},
    {"minus zero is the integer 0", T("[-0]"), 0, LOADS, "[0]", NULL},
    {"small integers", T("[1,-1,42,-987654]"), 0, LOADS, "[1,-1,42,-987654]",
     NULL},
    {"18 digits", T("[123456789012345678,-999999999999999999]"), 0, LOADS,
     "[123456789012345678,-999999999999999999]", NULL},
    {"19 digits", T("[1234567890123456789,-1000000000000000000]"), 0, LOADS,
     "[1234567890123456789,-1000000000000000000]", NULL},
    {"INT64 max and min", T("[9223372036854775807,-9223372036854775808]"), 0,
     LOADS, "[9223372036854775807,-9223372036854775808]", NULL},
    {"INT64 max + 1", T("[9223372036854775808]"), 0, FAILS, NULL,
     "too big integer"},
    {"INT64 min - 1", T("[-9223372036854775809]"), 0, FAILS, NULL,
     "too big negative integer"},
    {"20 digits", T("[12345678901234567890]"), 0, FAILS, NULL,
     "too big integer"},
    {"integers as reals", T("[1,-0,123456789012345678]"),
     JSON_DECODE_INT_AS_REAL, LOADS, "[1.0,-0.0,1.2345678901234568e17]", NULL},
    {"0.1", T("[0.1]"), 0, LOADS, "[0.10000000000000001]", NULL},
    {"1e300", T("[1e300]"), 0, LOADS, "[1.0000000000000001e300]", NULL},
    {"1e-300", T("[1e-300]"), 0, LOADS, "[1e-300]", NULL},
    {"-0.0", T("[-0.0]"), 0, LOADS, "[-0.0]", NULL},
    {"0.0 and 0e0", T("[0.0,0e0,-0e-0]"), 0, LOADS, "[0.0,0.0,-0.0]", NULL},
    {"1.5e+10", T("[1.5e+10]"), 0, LOADS, "[15000000000.0]", NULL},
    {"100.0", T("[100.0]"), 0, LOADS, "[100.0]", NULL},
    {"exponents", T("[1E5,1e+5,2.5E-3,1e16,1e17,1e-5,123.456e-2]"), 0, LOADS,
     "[100000.0,100000.0,0.0025000000000000001,10000000000000000.0,1e17,"
     "1.0000000000000001e-5,1.2345600000000001]",
     NULL},
    {"many digits", T("[3.14159265358979323846264338327950288419716939937510]"),
     0, LOADS, "[3.1415926535897931]", NULL},
    {"long mantissa",
     T("[0.00000000000000000000000000000000000000000000000000"
       "000000000000000000000000001]"),
     0, LOADS, NULL, NULL},
    {"1e400 overflows", T("[1e400]"), 0, FAILS, NULL, "real number overflow"},
    {"-1e400 overflows", T("[-1e400]"), 0, FAILS, NULL, "real number overflow"},
    {"1e-400 underflows to 0.0", T("[1e-400]"), 0, LOADS, "[0.0]", NULL},
    {"denormal", T("[5e-324]"), 0, LOADS, "[4.9406564584124654e-324]", NULL},
    {"largest double", T("[1.7976931348623157e308]"), 0, LOADS,
     "[1.7976931348623157e308]", NULL},
    {"leading zero", T("[01]"), 0, FAILS, NULL, "invalid token"},
    {"leading zero, negative", T("[-01]"), 0, FAILS, NULL, NULL},
    {"leading zeros, scalar", T("00"), ANY, FAILS, NULL, NULL},
    {"no digits after the point", T("[1.]"), 0, FAILS, NULL, NULL},
    {"no digits before the point", T("[.5]"), 0, FAILS, NULL, NULL},
    {"no exponent digits", T("[1e]"), 0, FAILS, NULL, NULL},
    {"no exponent digits after the sign", T("[1e+]"), 0, FAILS, NULL, NULL},
    {"plus sign", T("[+1]"), 0, FAILS, NULL, NULL},
    {"lone minus", T("[-]"), 0, FAILS, NULL, NULL},
    {"minus then space", T("[- 1]"), 0, FAILS, NULL, NULL},
    {"hex", T("[0x10]"), 0, FAILS, NULL, NULL},
    {"infinity", T("[Infinity]"), 0, FAILS, NULL, NULL},
    {"NaN", T("[NaN]"), 0, FAILS, NULL, NULL},
    {"number then letters", T("[1true]"), 0, FAILS, NULL, NULL},
    {"integer scalar", T("-12"), ANY, LOADS, "-12", NULL},
    {"real scalar", T(" 2.50 "), ANY, LOADS, "2.5", NULL},
    {"number scalar without JSON_DECODE_ANY", T("12"), 0, FAILS, NULL,
     "'[' or '{' expected"},
    {"number at the end of the input", T("1e5"), ANY, LOADS, "100000.0", NULL},
};

static const lcase literals[] = {
    {"literals", T("[true,false,null]"), 0, LOADS, "[true,false,null]", NULL},
    {"literals as values", T("{\"t\":true,\"f\":false,\"n\":null}"), 0, LOADS,
     "{\"t\":true,\"f\":false,\"n\":null}", NULL},
    {"tru", T("[tru]"), 0, FAILS, NULL, "invalid token near 'tru'"},
    {"nulls", T("[nulls]"), 0, FAILS, NULL, "invalid token near 'nulls'"},
    {"nulls, scalar", T("nulls"), ANY, FAILS, NULL, "invalid token"},
    {"True", T("[True]"), 0, FAILS, NULL, NULL},
    {"truth at the end", T("[true"), 0, FAILS, NULL, NULL},
    {"fals", T("{\"a\":fals}"), 0, FAILS, NULL, NULL},
    {"nul at the end", T("nul"), ANY, FAILS, NULL, NULL},
    {"true then a digit", T("[true1]"), 0, FAILS, NULL, NULL},
    {"true scalar", T("true"), ANY, LOADS, "true", NULL},
    {"false scalar", T("\tfalse\n"), ANY, LOADS, "false", NULL},
    {"null scalar", T("null"), ANY, LOADS, "null", NULL},
    {"true without JSON_DECODE_ANY", T("true"), 0, FAILS, NULL,
     "'[' or '{' expected near 'true'"},
    {"string without JSON_DECODE_ANY", T("\"x\""), 0, FAILS, NULL,
     "'[' or '{' expected"},
    {"containers with JSON_DECODE_ANY", T("[{}]"), ANY, LOADS, "[{}]", NULL},
    {"bare word", T("hello"), ANY, FAILS, NULL, "invalid token"},
};

static void test_load_structure(void **state) {
    (void)state;
    run_loads(structure, NCASES(structure));
}

static void test_load_strings(void **state) {
    (void)state;
    run_loads(strings, NCASES(strings));
}

static void test_load_numbers(void **state) {
    (void)state;
    run_loads(numbers, NCASES(numbers));
}

static void test_load_literals(void **state) {
    (void)state;
    run_loads(literals, NCASES(literals));
}

/* Every case above also with the other of the two flag values jtext
 * handles itself (the literal expectations do not carry over). */
static void test_load_other_flags(void **state) {
    (void)state;
    const lcase *tables[] = {structure, strings, numbers, literals};
    size_t sizes[] = {NCASES(structure), NCASES(strings), NCASES(numbers),
                      NCASES(literals)};
    for (size_t t = 0; t < 4; t++)
        for (size_t i = 0; i < sizes[t]; i++) {
            const lcase *c = &tables[t][i];
            if (c->flags != 0 && c->flags != ANY)
                continue;
            check_load(c->name, c->text, c->len, c->flags ^ ANY, EITHER, NULL,
                       NULL);
        }
}

/* Every prefix of some texts: cut anywhere, in a string, an escape, a
 * UTF-8 sequence or a number. */
static void test_load_prefixes(void **state) {
    (void)state;
    static const char *const texts[] = {
        "{\"a\\u00e9\\ud83d\\ude00\":[1.5e-3,-12,true,\"\xe2\x82\xac\\n\"],"
        "\"b\":{\"c\":null}}",
        "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",123456789012345678901,false]",
    };
    for (size_t t = 0; t < NCASES(texts); t++) {
        size_t n = strlen(texts[t]);
        for (size_t k = 0; k <= n; k++) {
            char name[64];
            snprintf(name, sizeof(name), "text %zu cut at %zu", t, k);
            check_load(name, texts[t], k, 0, k == n ? EITHER : FAILS, NULL,
                       NULL);
            check_load(name, texts[t], k, ANY, EITHER, NULL, NULL);
        }
    }
}

static void test_load_args(void **state) {
    (void)state;
    json_error_t ej, et;
    json_t *vj = json_loadb(NULL, 0, 0, &ej);
    json_t *vt = jtext_load(NULL, 0, 0, &et);
    assert_null(vj);
    assert_null(vt);
    assert_string_equal(et.text, ej.text);
    assert_string_equal(et.text, "wrong arguments");
    /* A text of n bytes with more after it: only the n are read. */
    check_load("length bounds the text", "[1,2]xyz", 5, 0, LOADS, "[1,2]",
               NULL);
    check_load("length cuts a string", "[\"abc\"]", 4, 0, FAILS, NULL, NULL);
}

/* Nesting: JTEXT_MAX_DEPTH and 300 levels (past it, so jansson's), and
 * past jansson's own limit. */
static char *nested(size_t depth, int objects) {
    size_t open = objects ? 5 : 1, n = depth * (open + 1) + 1;
    char *s = malloc(n + 1), *p = s;
    assert_non_null(s);
    for (size_t i = 0; i < depth; i++) {
        memcpy(p, objects ? "{\"a\":" : "[", open);
        p += open;
    }
    *p++ = '0';
    for (size_t i = 0; i < depth; i++)
        *p++ = objects ? '}' : ']';
    *p = '\0';
    return s;
}

static void test_load_deep(void **state) {
    (void)state;
    const size_t depths[] = {JTEXT_MAX_DEPTH - 1,
                             JTEXT_MAX_DEPTH,
                             JTEXT_MAX_DEPTH + 1,
                             300,
                             2047,
                             2048,
                             5000};
    for (size_t i = 0; i < NCASES(depths); i++)
        for (int objects = 0; objects < 2; objects++) {
            char *s = nested(depths[i], objects), name[64];
            snprintf(name, sizeof(name), "%zu nested %s", depths[i],
                     objects ? "objects" : "arrays");
            /* jansson's limit is 2048 values deep, the 0 inside
             * included. */
            int want = depths[i] < 2048 ? LOADS : FAILS;
            check_load(name, s, strlen(s), 0, want, s,
                       want ? NULL : "maximum parsing depth reached");
            free(s);
        }
}

/* A string of 1 MB with escapes and multi-byte characters sprinkled. */
static void test_load_large_string(void **state) {
    (void)state;
    static const char *const esc[] = {"\\n",  "\\\"",         "\\u00e9",
                                      "\\t",  "\xe2\x82\xac", "\\ud83d\\ude00",
                                      "\\\\", "\\/",          "\\u001f"};
    size_t cap = (1u << 20) + 4096, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    s[n++] = '[';
    s[n++] = '"';
    for (size_t i = 0; n < (1u << 20); i++) {
        if (i % 997 == 0) {
            const char *e = esc[(i / 997) % NCASES(esc)];
            memcpy(s + n, e, strlen(e));
            n += strlen(e);
        } else {
            s[n++] = (char)('a' + i % 26);
        }
    }
    memcpy(s + n, "\",\"tail\"]", 9);
    n += 9;
    check_load("1 MB string", s, n, 0, LOADS, NULL, NULL);
    /* And the same text as the value of a key, and as an escaped key. */
    json_t *v = jtext_load(s, n, 0, NULL);
    assert_non_null(v);
    json_t *o = json_object();
    json_object_set(o, json_string_value(json_array_get(v, 0)), v);
    char *text = dump_both("1 MB key", o);
    assert_non_null(text);
    check_load("1 MB key", text, strlen(text), 0, LOADS, text, NULL);
    free(text);
    json_decref(o);
    json_decref(v);
    free(s);
}

/* ---- dumping ---- */

typedef struct dcase {
    const char *name;
    json_t *(*make)(void);
    const char *want; /* the text, NULL when the dump must fail, or
                         JANSSONS: whatever jansson writes */
} dcase;

static const char JANSSONS[] = "(jansson's)";

static json_t *d_controls(void) {
    char s[0x20 + 5];
    for (int i = 0; i < 0x20; i++)
        s[i] = (char)i;
    memcpy(s + 0x20, "\"\\/\x7f", 4);
    return json_stringn(s, 0x24);
}
static json_t *d_utf8(void) {
    return json_string(
        "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
}
static json_t *d_bad_ff(void) {
    return json_stringn_nocheck("a\xff", 2);
}
static json_t *d_bad_cont(void) {
    return json_stringn_nocheck("\x80", 1);
}
static json_t *d_bad_trunc(void) {
    return json_stringn_nocheck("ab\xe2\x82", 4);
}
static json_t *d_bad_overlong(void) {
    return json_stringn_nocheck("\xc0\xaf", 2);
}
static json_t *d_bad_overlong3(void) {
    return json_stringn_nocheck("\xe0\x80\xaf", 3);
}
static json_t *d_bad_surrogate(void) {
    return json_stringn_nocheck("\xed\xb0\x80", 3);
}
static json_t *d_bad_big(void) {
    return json_stringn_nocheck("\xf4\x90\x80\x80", 4);
}
static json_t *d_bad_in_array(void) {
    return json_pack("[s,o]", "ok", json_stringn_nocheck("x\xfe", 2));
}
static json_t *d_bad_after_escape(void) {
    return json_stringn_nocheck("\n\"\xc3", 3);
}
/* jansson ignores a failure to write a key: whatever it gives, jtext
 * gives. */
static json_t *d_bad_key(void) {
    json_t *o = json_object();
    json_object_set_new_nocheck(o,
                                "a\xff"
                                "b",
                                json_integer(1));
    json_object_set_new(o, "c", json_integer(2));
    return o;
}
static json_t *d_nul(void) {
    return json_stringn("a\0b", 3);
}
static json_t *d_nul_key(void) {
    json_t *o = json_object();
    json_object_setn_new(o, "k\0y", 3, json_true());
    return o;
}
static json_t *d_key_order(void) {
    json_t *o = json_object();
    json_object_set_new(o, "z", json_integer(1));
    json_object_set_new(o, "a", json_integer(2));
    json_object_set_new(o, "m", json_integer(3));
    json_object_set_new(o, "a", json_integer(4)); /* keeps its place */
    json_object_del(o, "z");
    json_object_set_new(o, "z", json_integer(5)); /* goes last */
    return o;
}
static json_t *d_ints(void) {
    return json_pack("[I,I,I,I,I,I]", (json_int_t)0, (json_int_t)-1,
                     (json_int_t)INT64_MAX, (json_int_t)INT64_MIN,
                     (json_int_t)1000000000000000000, (json_int_t)-7);
}
static json_t *d_reals(void) {
    return json_pack("[f,f,f,f,f,f,f,f,f,f,f,f]", 0.1, 1e300, 1e-300, -0.0, 0.0,
                     1.5e10, 100.0, 1e16, 1e17, 5e-324, 1.7976931348623157e308,
                     -2.5e-7);
}
static json_t *d_real_scalar(void) {
    return json_real(100.0);
}
static json_t *d_int_scalar(void) {
    return json_integer(-42);
}
static json_t *d_true(void) {
    return json_true();
}
static json_t *d_false(void) {
    return json_false();
}
static json_t *d_null(void) {
    return json_null();
}
static json_t *d_empty_string(void) {
    return json_string("");
}
static json_t *d_nested(void) {
    return json_pack("{s:[i,{s:[]},{}],s:{s:s}}", "a", 1, "b", "c", "d",
                     "f\"g");
}
static json_t *d_shared(void) {
    json_t *x = json_pack("{s:i}", "x", 1);
    json_t *a = json_pack("[O,O,[O]]", x, x, x);
    json_decref(x);
    return a;
}
static json_t *d_deep(size_t depth, int objects) {
    json_t *v = json_integer(0);
    for (size_t i = 0; i < depth; i++)
        v = objects ? json_pack("{s:o}", "a", v) : json_pack("[o]", v);
    return v;
}
static json_t *d_deep_256(void) {
    return d_deep(JTEXT_MAX_DEPTH, 0);
}
static json_t *d_deep_257(void) {
    return d_deep(JTEXT_MAX_DEPTH + 1, 0);
}
static json_t *d_deep_300(void) {
    return d_deep(300, 0);
}
static json_t *d_deep_300_objects(void) {
    return d_deep(300, 1);
}
static json_t *d_deep_3000(void) {
    return d_deep(3000, 1);
}
/* Deep and holding a string jtext would hand over anyway. */
static json_t *d_deep_bad(void) {
    json_t *v = json_stringn_nocheck("\xff", 1);
    for (size_t i = 0; i < 300; i++)
        v = json_pack("[o]", v);
    return v;
}

static const dcase dumps[] = {
    {"every control character, quote, backslash, slash, DEL", d_controls,
     "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n"
     "\\u000B\\f\\r\\u000E\\u000F\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015"
     "\\u0016\\u0017\\u0018\\u0019\\u001A\\u001B\\u001C\\u001D\\u001E\\u001F"
     "\\\"\\\\/\x7f\""},
    {"UTF-8 of 2, 3 and 4 bytes", d_utf8,
     "\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\""},
    {"not UTF-8: 0xff", d_bad_ff, NULL},
    {"not UTF-8: continuation byte", d_bad_cont, NULL},
    {"not UTF-8: truncated", d_bad_trunc, NULL},
    {"not UTF-8: overlong", d_bad_overlong, NULL},
    {"not UTF-8: overlong 3", d_bad_overlong3, NULL},
    {"not UTF-8: surrogate", d_bad_surrogate, NULL},
    {"not UTF-8: past U+10FFFF", d_bad_big, NULL},
    {"not UTF-8 in an array", d_bad_in_array, NULL},
    {"not UTF-8 after escapes", d_bad_after_escape, NULL},
    {"key not UTF-8", d_bad_key, JANSSONS},
    {"NUL in a string", d_nul, "\"a\\u0000b\""},
    {"NUL in a key", d_nul_key, "{\"k\\u0000y\":true}"},
    {"key order", d_key_order, "{\"a\":4,\"m\":3,\"z\":5}"},
    {"integers", d_ints,
     "[0,-1,9223372036854775807,-9223372036854775808,1000000000000000000,"
     "-7]"},
    {"reals", d_reals,
     "[0.10000000000000001,1.0000000000000001e300,1e-300,-0.0,0.0,"
     "15000000000.0,100.0,10000000000000000.0,1e17,4.9406564584124654e-324,"
     "1.7976931348623157e308,-2.4999999999999999e-7]"},
    {"real scalar", d_real_scalar, "100.0"},
    {"integer scalar", d_int_scalar, "-42"},
    {"true", d_true, "true"},
    {"false", d_false, "false"},
    {"null", d_null, "null"},
    {"empty string", d_empty_string, "\"\""},
    {"nested", d_nested, "{\"a\":[1,{\"b\":[]},{}],\"c\":{\"d\":\"f\\\"g\"}}"},
    {"shared, not a cycle", d_shared, "[{\"x\":1},{\"x\":1},[{\"x\":1}]]"},
    {"JTEXT_MAX_DEPTH levels", d_deep_256, NULL},
    {"JTEXT_MAX_DEPTH + 1 levels", d_deep_257, NULL},
    {"300 levels", d_deep_300, NULL},
    {"300 levels of objects", d_deep_300_objects, NULL},
    {"3000 levels of objects", d_deep_3000, NULL},
    {"deep with a bad string", d_deep_bad, NULL},
};

/* The deep cases' texts: what nested() writes. */
static const char *deep_text(const char *name, char **buf) {
    size_t d = 0;
    int objects = strstr(name, "objects") != NULL;
    if (strcmp(name, "JTEXT_MAX_DEPTH levels") == 0)
        d = JTEXT_MAX_DEPTH;
    else if (strcmp(name, "JTEXT_MAX_DEPTH + 1 levels") == 0)
        d = JTEXT_MAX_DEPTH + 1;
    else if (strncmp(name, "300 ", 4) == 0)
        d = 300;
    else if (strncmp(name, "3000 ", 5) == 0)
        d = 3000;
    if (!d)
        return NULL;
    return *buf = nested(d, objects);
}

static void test_dump(void **state) {
    (void)state;
    for (size_t i = 0; i < NCASES(dumps); i++) {
        const dcase *c = &dumps[i];
        json_t *v = c->make();
        assert_non_null(v);
        char *deep = NULL;
        const char *want = c->want ? c->want : deep_text(c->name, &deep);
        char *t = dump_both(c->name, v);
        if (want == JANSSONS) {
            free(t);
            json_decref(v);
            continue;
        }
        if (want && (!t || strcmp(t, want)))
            fail_msg("%s: dumps as \"%s\", expected \"%s\"", c->name,
                     t ? t : "NULL", want);
        if (!want && t)
            fail_msg("%s: dumps as \"%s\", expected NULL", c->name, t);
        /* What dumps loads back as the same value (jansson refuses a
         * key with a NUL, and 3000 levels). */
        if (t && c->make != d_nul_key && c->make != d_deep_3000) {
            json_t *back = jtext_load(t, strlen(t), ANY, NULL);
            if (!back)
                back = jtext_load(t, strlen(t), ANY | JSON_ALLOW_NUL, NULL);
            if (!back || !same(back, v))
                fail_msg("%s: \"%s\" does not load back", c->name, t);
            json_decref(back);
        }
        free(t);
        free(deep);
        json_decref(v);
    }
    size_t len = 99;
    assert_null(jtext_dump(NULL, &len));
    assert_int_equal(len, 99);
}

/* A cycle: jansson refuses it, and so must jtext. */
static void test_dump_cycle(void **state) {
    (void)state;
    /* An array holding itself (through another: jansson refuses to put an
     * array straight into itself). */
    json_t *a = json_array(), *b = json_array();
    assert_int_equal(json_array_append_new(a, json_integer(1)), 0);
    assert_int_equal(json_array_append(a, b), 0);
    assert_int_equal(json_array_append(b, a), 0);
    assert_null(dump_both("array cycle", a));
    assert_null(dump_both("array cycle, other end", b));
    json_t *outer = json_pack("{s:O}", "x", a);
    assert_null(dump_both("cycle below an object", outer));
    json_decref(outer);

    /* An object holding itself. */
    json_t *o = json_object(), *p = json_object();
    json_object_set(o, "p", p);
    json_object_set(p, "o", o);
    assert_null(dump_both("object cycle", o));

    /* Broken, both dump again. */
    json_array_clear(b);
    char *t = dump_both("array cycle broken", a);
    assert_string_equal(t, "[1,[]]");
    free(t);
    json_object_clear(p);
    t = dump_both("object cycle broken", o);
    assert_string_equal(t, "{\"p\":{}}");
    free(t);
    json_decref(a);
    json_decref(b);
    json_decref(o);
    json_decref(p);
}

/* The loaders' values, dumped; and reals whose text %.17g writes in every
 * form (exponents of one to three digits, both signs). */
static void test_dump_reals(void **state) {
    (void)state;
    static const double d[] = {
        1e-5, 1e-10,  1e-100,  1e5,    1e15,
        1e21, 1e22,   1e100,   -1e-7,  123.456,
        0.5,  2e-308, 1.0 / 3, -1e300, 9007199254740993.0};
    for (size_t i = 0; i < NCASES(d); i++) {
        char name[64];
        snprintf(name, sizeof(name), "real %.17g", d[i]);
        json_t *v = json_real(d[i]);
        free(dump_both(name, v));
        json_decref(v);
    }
    json_t *v = json_real(1e21);
    char *t = dump_both("1e21", v);
    assert_string_equal(t, "1e21");
    free(t);
    json_decref(v);
    v = json_real(1e-10);
    t = dump_both("1e-10", v);
    assert_string_equal(t, "1e-10");
    free(t);
    json_decref(v);
}

/* A large string with escapes, dumped. */
static void test_dump_large(void **state) {
    (void)state;
    size_t n = 1u << 20;
    char *s = malloc(n);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + i % 26);
    for (size_t i = 0; i + 4 < n; i += 1013) {
        switch ((i / 1013) % 5) {
        case 0:
            s[i] = '"';
            break;
        case 1:
            s[i] = '\n';
            break;
        case 2:
            s[i] = '\x01';
            break;
        case 3:
            memcpy(s + i, "\xe2\x82\xac", 3);
            break;
        default:
            memcpy(s + i, "\xf0\x9f\x98\x80", 4);
        }
    }
    json_t *v = json_stringn(s, n);
    assert_non_null(v);
    char *t = dump_both("1 MB string dump", v);
    assert_non_null(t);
    json_t *back = jtext_load(t, strlen(t), ANY, NULL);
    assert_true(back && same(back, v));
    json_decref(back);
    free(t);
    json_decref(v);
    /* The same with one byte not UTF-8 near the end: NULL. */
    s[n - 2] = (char)0xff;
    v = json_stringn_nocheck(s, n);
    assert_null(dump_both("1 MB string, not UTF-8", v));
    json_decref(v);
    free(s);
}

static int report(void **state) {
    (void)state;
    print_message("[ INFO     ] %d loads compared that succeed, %d that fail\n",
                  loads_ok, loads_failed);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_structure),
        cmocka_unit_test(test_load_strings),
        cmocka_unit_test(test_load_numbers),
        cmocka_unit_test(test_load_literals),
        cmocka_unit_test(test_load_other_flags),
        cmocka_unit_test(test_load_prefixes),
        cmocka_unit_test(test_load_args),
        cmocka_unit_test(test_load_deep),
        cmocka_unit_test(test_load_large_string),
        cmocka_unit_test(test_dump),
        cmocka_unit_test(test_dump_cycle),
        cmocka_unit_test(test_dump_reals),
        cmocka_unit_test(test_dump_large),
    };
    return cmocka_run_group_tests(tests, NULL, report);
}
