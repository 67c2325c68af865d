/*
 * The csv component's reader and field writer (components/csv/csvparse.c,
 * csvwrite.c), compiled into the test: RFC 4180 cases, positions of
 * errors, every split of the input into two chunks and into single bytes,
 * type inference, quoting and the formula guard, and writing then reading.
 *
 * Results are compared as text: each record is [f1|f2|...] with '|', '\',
 * CR, LF and NUL in a field written as \|, \\, \r, \n, \0, a quoted field
 * marked with a leading ", and each reported error as E<line>:<column>.
 */
#include "csvparse.h"
#include "csvwrite.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct dump {
    csv_buf out;
    int stop_on_error;  /* on_error stops the parse */
    int stop_at_record; /* on_record stops at this record (1-based) */
    int unmarked;       /* leave out the quoted marks */
    int records;
    csv_error last; /* the last error */
    int nerrors;
} dump;

static void add(dump *d, const char *s) {
    assert_int_equal(csv_buf_add(&d->out, s, strlen(s)), 0);
}

/* Appends field text, escaped as the dump shows it. */
static void add_field(csv_buf *out, const char *s, size_t n) {
    char b[2] = {0, 0};
    for (size_t k = 0; k < n; k++) {
        const char *e = b;
        switch (s[k]) {
        case '|':
            e = "\\|";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\n':
            e = "\\n";
            break;
        case 0:
            e = "\\0";
            break;
        default:
            b[0] = s[k];
        }
        assert_int_equal(csv_buf_add(out, e, strlen(e)), 0);
    }
}

static int on_record(void *ud, const csv_record *r) {
    dump *d = ud;
    assert_true(r->nfields >= 1);
    add(d, "[");
    for (size_t i = 0; i < r->nfields; i++) {
        const csv_field *f = &r->fields[i];
        assert_int_equal(f->data[f->len], 0);
        if (i)
            add(d, "|");
        if (f->quoted && !d->unmarked)
            add(d, "\"");
        add_field(&d->out, f->data, f->len);
    }
    add(d, "]");
    return ++d->records == d->stop_at_record ? 7 : 0;
}

static int on_error(void *ud, const csv_error *e) {
    dump *d = ud;
    char b[64];
    snprintf(b, sizeof(b), "E%llu:%llu", (unsigned long long)e->line,
             (unsigned long long)e->column);
    add(d, b);
    d->last = *e;
    d->nerrors++;
    return d->stop_on_error ? 9 : 0;
}

static const csv_callbacks cbs = {on_record, on_error};

static csv_parse_options opts(void) {
    csv_parse_options o = {.delimiter = ',', .quote = '"'};
    o.skip_empty_lines = 1;
    o.strict = 1;
    return o;
}

/* Parses n bytes of s fed in pieces of `piece` bytes (0: at once, with a
 * split after byte `split` if split > 0); returns the dump (malloc'd) and
 * the status of the last call in *rc. */
static char *parse_with(const csv_parse_options *o, const char *s, size_t n,
                        size_t split, size_t piece, int stop_on_error, int *rc,
                        dump *keep) {
    dump d = {.stop_on_error = stop_on_error,
              .unmarked = keep && keep->unmarked};
    csv_parser *p = csv_parser_new(o, &cbs, &d);
    int r = 0;
    assert_non_null(p);
    if (piece) {
        for (size_t i = 0; i < n && !r; i += piece)
            r = csv_parser_feed(p, s + i, n - i < piece ? n - i : piece);
    } else if (split) {
        r = csv_parser_feed(p, s, split);
        if (!r)
            r = csv_parser_feed(p, s + split, n - split);
    } else {
        r = csv_parser_feed(p, s, n);
    }
    if (!r)
        r = csv_parser_finish(p);
    /* After a stop, the parser only repeats it. */
    if (r)
        assert_int_equal(csv_parser_feed(p, "x", 1), r);
    csv_parser_free(p);
    add(&d, ""); /* never NULL */
    if (rc)
        *rc = r;
    if (keep)
        *keep = d;
    return d.out.data;
}

/* The dump of s (NUL terminated) with o, checked to be the same for every
 * split into two chunks and for one byte at a time. */
static char *parse_o(const csv_parse_options *o, const char *s, size_t n) {
    int rc, rc2;
    char *want = parse_with(o, s, n, 0, 0, 0, &rc, NULL);
    for (size_t split = 1; split < n; split++) {
        char *got = parse_with(o, s, n, split, 0, 0, &rc2, NULL);
        if (strcmp(got, want) != 0 || rc != rc2)
            fail_msg("split at %zu: got %s, want %s", split, got, want);
        free(got);
    }
    char *got = parse_with(o, s, n, 0, 1, 0, &rc2, NULL);
    if (strcmp(got, want) != 0 || rc != rc2)
        fail_msg("byte by byte: got %s, want %s", got, want);
    free(got);
    assert_int_equal(rc, 0);
    return want;
}

#define check_o(o, input, want)                                                \
    do {                                                                       \
        char *got_ = parse_o((o), (input), sizeof(input) - 1);                 \
        if (strcmp(got_, (want)) != 0)                                         \
            fail_msg("input %s\n got  %s\n want %s", #input, got_, (want));    \
        free(got_);                                                            \
    } while (0)

#define check(input, want)                                                     \
    do {                                                                       \
        csv_parse_options o_ = opts();                                         \
        check_o(&o_, input, want);                                             \
    } while (0)

static void test_basic(void **state) {
    (void)state;
    check("a,b,c\r\n1,2,3\r\n", "[a|b|c][1|2|3]");
    check("a,b,c\r\n1,2,3", "[a|b|c][1|2|3]");
    check("a,b\n1,2\n", "[a|b][1|2]");
    check("a,b\r1,2\r", "[a|b][1|2]");
    check("a,b\r\n1,2\n3,4\r5,6", "[a|b][1|2][3|4][5|6]");
    check("", "");
    check("\r\n", "");
    check("x", "[x]");
    check("spaces are kept , here\n", "[spaces are kept | here]");
}

static void test_quoted(void **state) {
    (void)state;
    check("\"a,b\",c\n", "[\"a,b|c]");
    check("\"a\r\nb\",c\r\nd,e", "[\"a\\r\\nb|c][d|e]");
    check("\"a\nb\",c\nd,e\n", "[\"a\\nb|c][d|e]");
    check("\"a\rb\",c\n", "[\"a\\rb|c]");
    check("\"a\"\"b\",\"\"\"\"\n", "[\"a\"b|\"\"]");
    check("\"\",x\n", "[\"|x]");
    check("\"\"\n", "[\"]");
    check("\"x\"", "[\"x]");
    check("\"multi\n\nline\n\",end", "[\"multi\\n\\nline\\n|end]");
    check("\"a|b\\c\"", "[\"a\\|b\\\\c]");
}

static void test_empty_fields(void **state) {
    csv_parse_options o = opts();
    (void)state;
    check(",,\n,,\n", "[||][||]");
    check("a,,c\n", "[a||c]");
    check("a,b,\n", "[a|b|]");
    check("a,b,", "[a|b|]");
    check(",", "[|]");
    /* A field with nothing in it is not the same as an empty line. */
    check("a\n,\n", "[a]E2:2");
    o.strict = 0;
    check_o(&o, "a\n,\n", "[a][|]");
}

static void test_empty_lines(void **state) {
    csv_parse_options o = opts();
    (void)state;
    check("a\n\n\nb\n", "[a][b]");
    check("\n\na\r\n\r\n", "[a]");
    check("a\r\n\nb", "[a][b]");
    o.skip_empty_lines = 0;
    check_o(&o, "a\n\n\nb\n", "[a][][][b]");
    check_o(&o, "a\r\n\r\nb", "[a][][b]");
    /* The final line end ends a record; it does not start one. */
    check_o(&o, "a\n", "[a]");
    check_o(&o, "\n", "[]");
    /* Strict counts an empty line as a record of one field. */
    check_o(&o, "a,b\n\nc,d\n", "[a|b]E2:1[c|d]");
}

static void test_bom(void **state) {
    (void)state;
    check("\xEF\xBB\xBF"
          "a,b\n",
          "[a|b]");
    check("\xEF\xBB\xBF", "");
    check("\xEF\xBB\xBF\"q\"", "[\"q]");
    /* Only at the very start; elsewhere U+FEFF is text. */
    check("a\n\xEF\xBB\xBF"
          "b\n",
          "[a][\xEF\xBB\xBF"
          "b]");
    /* The start of one but not all of it: text, and not UTF-8. */
    check("\xEF\xBBx\n", "E1:1");
    check("\xEF\xBB", "E1:1");
    check("\xEF", "E1:1");
}

static void test_delimiters_and_quotes(void **state) {
    csv_parse_options o = opts();
    (void)state;
    o.delimiter = ';';
    check_o(&o, "a;\"b;c\";d,e\n", "[a|\"b;c|d,e]");
    o.delimiter = '\t';
    check_o(&o, "a\t\"b\tc\"\td e\n", "[a|\"b\tc|d e]");
    o.trim = 1; /* a tab delimiter is not trimmed away */
    check_o(&o, " a \t\t b\n", "[a||b]");
    o = opts();
    o.quote = '\'';
    check_o(&o, "'a,b','it''s',\"x\"\n", "[\"a,b|\"it's|\"x\"]");
    o.quote = CSV_NO_QUOTE;
    check_o(&o, "\"a,b\",c\n", "[\"a|b\"|c]");
    o.delimiter = '|';
    o.quote = '"';
    check_o(&o, "a|\"b|c\"\n", "[a|\"b\\|c]");
}

static void test_trim(void **state) {
    csv_parse_options o = opts();
    (void)state;
    o.trim = 1;
    check_o(&o, "  a , b  ,\" c \" \n", "[a|b|\" c ]");
    check_o(&o, " \"x\" , \"y\"\n", "[\"x|\"y]");
    check_o(&o, "a b ,\t c d\t\n", "[a b|c d]");
    check_o(&o, "a\n   \n\t\nb\n   ", "[a][b]");
    o.skip_empty_lines = 0;
    o.strict = 0;
    check_o(&o, "a\n   \nb\n  ", "[a][][b][]");
    /* Without trim, blanks are text and a quote after them is an error. */
    check(" a , b \n", "[ a | b ]");
    check(" \"x\"\n", "E1:2");
    check("\"x\" \n", "E1:4");
}

static void test_errors(void **state) {
    csv_parse_options o = opts();
    dump d = {0};
    char *out;
    int rc;
    (void)state;
    check("a,b\"c\n", "E1:4");
    check("\"ab\"x,c\n", "E1:5");
    check("a\n\"abc", "[a]E2:1");
    check("a\n\"ab\nc\nd", "[a]E2:1");
    /* Field count: an extra field is reported where it starts, a missing
     * one where the record ends. */
    check("a,b\n1,2,3\n", "[a|b]E2:5");
    check("a,b,c\n1,2\n", "[a|b|c]E2:4");
    check("a,b,c\n1,2", "[a|b|c]E2:4");
    check("a,b,c\n1,2,3,4,5\n6,7,8", "[a|b|c]E2:7[6|7|8]");
    o.expected_fields = 2;
    check_o(&o, "a,b,c\nd,e\n", "E1:5[d|e]");
    /* Positions inside a record that spans lines. */
    check("x,\"a\nb\"c\n", "E2:3");
    check("h\n\"1\n2\n3\"\n\"4\n5\"x", "[h][\"1\\n2\\n3]E6:3");
    /* Columns count characters, not bytes. */
    check("\xC3\xBC,\xC3\xBC,\"x\"y\n", "E1:8");
    check("\xE2\x82\xAC\xF0\x9F\x98\x80,a\"\n", "E1:5");

    /* The error says what is wrong, and where the record began. */
    out = parse_with(&o, "h1,h2\n\"a\n\"b,c\n", 14, 0, 0, 0, &rc, &d);
    assert_string_equal(out, "[h1|h2]E3:2");
    assert_int_equal(d.last.record_line, 2);
    free(out);
    o = opts();
    out = parse_with(&o, "a\n\"x\n\"y\n", 8, 0, 0, 0, &rc, &d);
    assert_string_equal(out, "[a]E3:2");
    assert_int_equal(d.last.code, CSV_EAFTERQUOTE);
    assert_int_equal(d.last.record_line, 2);
    assert_string_equal(d.last.message,
                        "'y' after a closing quote, expected the delimiter "
                        "or a line end");
    free(out);
    out = parse_with(&o, "a\"b", 3, 0, 0, 0, &rc, &d);
    assert_int_equal(d.last.code, CSV_EQUOTE);
    assert_string_equal(d.last.message,
                        "quote character in an unquoted field (a field with "
                        "a quote must be quoted, and the quote doubled)");
    free(out);
    out = parse_with(&o, "  \"b\"", 5, 0, 0, 0, &rc, &d);
    assert_string_equal(out, "E1:3");
    assert_non_null(strstr(d.last.message, "trim allows blanks"));
    free(out);
    out = parse_with(&o, "a,b\n1,\"2", 8, 0, 0, 0, &rc, &d);
    assert_string_equal(out, "[a|b]E2:3");
    assert_int_equal(d.last.code, CSV_EUNTERMINATED);
    assert_string_equal(d.last.message,
                        "quoted field not closed before the end of the input");
    free(out);
    out = parse_with(&o, "a,b\n1\n", 6, 0, 0, 0, &rc, &d);
    assert_int_equal(d.last.code, CSV_EFIELDS);
    assert_string_equal(d.last.message, "record has 1 field, expected 2");
    free(out);
}

static void test_utf8(void **state) {
    (void)state;
    check("caf\xC3\xA9,\xE2\x82\xAC,\xF0\x9F\x98\x80\n",
          "[caf\xC3\xA9|\xE2\x82\xAC|\xF0\x9F\x98\x80]");
    check("a,\xFF\n", "E1:3");
    check("\xC3\xA9,\xC3\n", "E1:3");
    check("\xC3\xA9,\xC3", "E1:3");
    check("ab\xE2\x82", "E1:3");
    check("\xC0\x80\n", "E1:1");         /* overlong */
    check("x\xED\xA0\x80\n", "E1:2");    /* a surrogate */
    check("\xF4\x90\x80\x80\n", "E1:1"); /* past U+10FFFF */
    check("\x80 stray\n", "E1:1");
    check("\"a\xC3\",b\n", "E1:3"); /* cut short by the quote */
    check("\xE2\x82\n\xE2\x82\xAC", "E1:1[\xE2\x82\xAC]");
    /* NUL is a character like any other. */
    check("a\0b,c\n", "[a\\0b|c]");
}

static void test_skip_and_stop(void **state) {
    csv_parse_options o = opts();
    const char *in = "a,b\n1,2\n3\"x,4\n5,6\n7\n8,9";
    dump d = {0};
    int rc;
    char *out;
    (void)state;
    /* Skipping goes on with the next record. */
    check("a,b\n1,2\n3\"x,4\n5,6\n7\n8,9", "[a|b][1|2]E3:2[5|6]E5:2[8|9]");
    /* Stopping: the callback's value comes back, nothing more is read. */
    out = parse_with(&o, in, strlen(in), 0, 0, 1, &rc, &d);
    assert_string_equal(out, "[a|b][1|2]E3:2");
    assert_int_equal(rc, 9);
    free(out);
    for (size_t split = 1; split < strlen(in); split++) {
        out = parse_with(&o, in, strlen(in), split, 0, 1, &rc, NULL);
        assert_string_equal(out, "[a|b][1|2]E3:2");
        assert_int_equal(rc, 9);
        free(out);
    }
    {
        dump d2 = {.stop_at_record = 2};
        csv_parser *p = csv_parser_new(&o, &cbs, &d2);
        assert_int_equal(csv_parser_feed(p, in, strlen(in)), 7);
        assert_int_equal(csv_parser_finish(p), 7);
        csv_parser_free(p);
        assert_int_equal(d2.records, 2);
        csv_buf_free(&d2.out);
    }
}

static void test_options_refused(void **state) {
    csv_parse_options o = opts();
    (void)state;
    o.quote = ',';
    assert_null(csv_parser_new(&o, &cbs, NULL));
    o = opts();
    o.delimiter = '\n';
    assert_null(csv_parser_new(&o, &cbs, NULL));
    o = opts();
    o.quote = '\r';
    assert_null(csv_parser_new(&o, &cbs, NULL));
    o = opts();
    o.delimiter = 0xA7;
    assert_null(csv_parser_new(&o, &cbs, NULL));
}

static void test_large_record(void **state) {
    csv_parse_options o = opts();
    size_t n = 300000;
    char *s = malloc(n + 16);
    dump d = {0};
    int rc;
    (void)state;
    /* One long quoted field and many short ones: the buffers grow. */
    s[0] = '"';
    memset(s + 1, 'x', n);
    memcpy(s + 1 + n, "\",", 2);
    char *out = parse_with(&o, s, n + 3, 0, 0, 0, &rc, &d);
    assert_int_equal(rc, 0);
    assert_int_equal(strlen(out), n + 4);
    free(out);
    for (size_t i = 0; i < n; i++)
        s[i] = i % 2 ? ',' : 'y';
    out = parse_with(&o, s, n, 0, 0, 0, &rc, &d);
    assert_int_equal(rc, 0);
    assert_int_equal(strlen(out), n + 2);
    free(out);
    free(s);
}

static void test_infer(void **state) {
    int64_t i = 0;
    double d = 0;
    (void)state;
#define KIND(s, q) csv_infer((s), strlen(s), (q), &i, &d)
    assert_int_equal(KIND("", 0), CSV_KIND_NULL);
    assert_int_equal(KIND("", 1), CSV_KIND_STRING);
    assert_int_equal(KIND("42", 1), CSV_KIND_STRING);
    assert_int_equal(KIND("true", 0), CSV_KIND_TRUE);
    assert_int_equal(KIND("TRUE", 0), CSV_KIND_TRUE);
    assert_int_equal(KIND("False", 0), CSV_KIND_FALSE);
    assert_int_equal(KIND("truex", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("tru", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("42", 0), CSV_KIND_INTEGER);
    assert_int_equal(i, 42);
    assert_int_equal(KIND("-0", 0), CSV_KIND_INTEGER);
    assert_int_equal(KIND("0", 0), CSV_KIND_INTEGER);
    assert_int_equal(KIND("-9223372036854775808", 0), CSV_KIND_INTEGER);
    assert_true(i == INT64_MIN);
    assert_int_equal(KIND("9223372036854775807", 0), CSV_KIND_INTEGER);
    assert_true(i == INT64_MAX);
    assert_int_equal(KIND("9223372036854775808", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("1.5", 0), CSV_KIND_REAL);
    assert_true(d == 1.5);
    assert_int_equal(KIND("-2.5e3", 0), CSV_KIND_REAL);
    assert_true(d == -2500);
    assert_int_equal(KIND("1E+2", 0), CSV_KIND_REAL);
    assert_true(d == 100);
    assert_int_equal(KIND("1e-400", 0), CSV_KIND_REAL);
    assert_int_equal(KIND("1e999", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("-1e999", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("007", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("+1", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("1.", 0), CSV_KIND_STRING);
    assert_int_equal(KIND(".5", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("-", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("1e", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("1e+", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("0x10", 0), CSV_KIND_STRING);
    assert_int_equal(KIND(" 1", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("NaN", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("inf", 0), CSV_KIND_STRING);
    assert_int_equal(KIND("1,5", 0), CSV_KIND_STRING);
    assert_int_equal(
        KIND("1.00000000000000000000000000000000000000000000000000000000000000"
             "0001",
             0),
        CSV_KIND_STRING); /* longer than a number is written */
    assert_int_equal(csv_infer("12", 1, 0, &i, &d), CSV_KIND_INTEGER);
    assert_int_equal(i, 1);
#undef KIND
}

/* ---- the writer ---- */

static char *write1(const char *s, size_t n, int text, int escape) {
    csv_buf b = {0};
    csv_write_options o = {',', '"', escape};
    assert_int_equal(csv_write_field(&b, s, n, text, &o), 0);
    assert_int_equal(csv_buf_add(&b, "", 0), 0);
    return b.data;
}

#define wcheck(s, text, escape, want)                                          \
    do {                                                                       \
        char *got_ = write1((s), sizeof(s) - 1, (text), (escape));             \
        assert_string_equal(got_, (want));                                     \
        free(got_);                                                            \
    } while (0)

static void test_write_quoting(void **state) {
    (void)state;
    wcheck("plain", 1, 1, "plain");
    wcheck("", 1, 1, "");
    wcheck("a,b", 1, 1, "\"a,b\"");
    wcheck("say \"hi\"", 1, 1, "\"say \"\"hi\"\"\"");
    wcheck("\"", 1, 1, "\"\"\"\"");
    wcheck("a\r\nb", 1, 1, "\"a\r\nb\"");
    wcheck("a\nb", 1, 1, "\"a\nb\"");
    wcheck(" lead", 1, 1, "\" lead\"");
    wcheck("trail\t", 1, 1, "\"trail\t\"");
    wcheck("in side", 1, 1, "in side");
    wcheck("caf\xC3\xA9;x", 1, 1, "caf\xC3\xA9;x");
    /* U+FEFF first would be taken for a byte order mark. */
    wcheck("\xEF\xBB\xBFx", 1, 1, "\"\xEF\xBB\xBFx\"");
    wcheck("x\xEF\xBB\xBF", 1, 1, "x\xEF\xBB\xBF");
    {
        csv_buf b = {0};
        csv_write_options o = {';', '\'', 0};
        assert_int_equal(csv_write_field(&b, "a;b's,c", 7, 1, &o), 0);
        assert_string_equal(b.data, "'a;b''s,c'");
        csv_buf_free(&b);
    }
}

static void test_write_formulas(void **state) {
    (void)state;
    wcheck("=1+2", 1, 1, "'=1+2");
    wcheck("+1", 1, 1, "'+1");
    wcheck("-5", 1, 1, "'-5");
    wcheck("@SUM(A1)", 1, 1, "'@SUM(A1)");
    wcheck("\tx", 1, 1, "'\tx");
    wcheck("\rx", 1, 1, "\"'\rx\"");
    wcheck("\0x", 1, 1, "'\0x");
    wcheck("=HYPERLINK(\"http://x\",\"y\")", 1, 1,
           "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
    wcheck("=a,b", 1, 1, "\"'=a,b\"");
    wcheck("a=b", 1, 1, "a=b");
    wcheck(" =x", 1, 1, "\" =x\"");
    /* Off, or not text (a number the writer formatted): as it is. */
    wcheck("=1+2", 1, 0, "=1+2");
    wcheck("\tx", 1, 0, "\"\tx\"");
    wcheck("-5", 0, 1, "-5");
    assert_true(csv_formula_like("=", 1));
    assert_false(csv_formula_like("", 0));
    assert_false(csv_formula_like("a", 1));
}

/* Writes records of fields, reads them back: the same fields. */
static void test_write_then_read(void **state) {
    static const char *const fields[] = {"plain",
                                         "",
                                         "a,b",
                                         "\"",
                                         "x\"y\"",
                                         "line\r\nbreak",
                                         "lf\nonly",
                                         "cr\ronly",
                                         " blank ",
                                         "\t",
                                         ";",
                                         "'",
                                         "caf\xC3\xA9",
                                         "|",
                                         "\\",
                                         "=not escaped here",
                                         "\"\"",
                                         "'q'",
                                         "\xEF\xBB\xBF"
                                         "bom"};
    const size_t nf = sizeof(fields) / sizeof(fields[0]);
    (void)state;
    for (int variant = 0; variant < 3; variant++) {
        csv_write_options w = {(unsigned char)",;\t"[variant],
                               variant == 1 ? '\'' : '"', 0};
        csv_parse_options o = opts();
        csv_buf b = {0}, want = {0};
        o.delimiter = w.delimiter;
        o.quote = w.quote;
        /* Records of 3 fields, every field in every position, CRLF and LF
         * line ends. */
        for (size_t i = 0; i < nf; i++) {
            assert_int_equal(csv_buf_add(&want, "[", 1), 0);
            for (size_t k = 0; k < 3; k++) {
                const char *f = fields[(i + k) % nf];
                if (k) {
                    assert_int_equal(csv_buf_add(&b, &w.delimiter, 1), 0);
                    assert_int_equal(csv_buf_add(&want, "|", 1), 0);
                }
                assert_int_equal(csv_write_field(&b, f, strlen(f), 1, &w), 0);
                add_field(&want, f, strlen(f));
            }
            assert_int_equal(csv_buf_add(&want, "]", 1), 0);
            assert_int_equal(
                csv_buf_add(&b, i % 2 ? "\n" : "\r\n", i % 2 ? 1 : 2), 0);
        }
        dump d = {.unmarked = 1};
        int rc;
        char *got = parse_with(&o, b.data, b.len, 0, 0, 0, &rc, &d);
        assert_int_equal(rc, 0);
        assert_int_equal(d.nerrors, 0);
        assert_string_equal(got, want.data);
        free(got);
        d.unmarked = 1;
        got = parse_with(&o, b.data, b.len, 0, 1, 0, &rc, &d);
        assert_string_equal(got, want.data);
        free(got);
        csv_buf_free(&b);
        csv_buf_free(&want);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_quoted),
        cmocka_unit_test(test_empty_fields),
        cmocka_unit_test(test_empty_lines),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_delimiters_and_quotes),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_skip_and_stop),
        cmocka_unit_test(test_options_refused),
        cmocka_unit_test(test_large_record),
        cmocka_unit_test(test_infer),
        cmocka_unit_test(test_write_quoting),
        cmocka_unit_test(test_write_formulas),
        cmocka_unit_test(test_write_then_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
