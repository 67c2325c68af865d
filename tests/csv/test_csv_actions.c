/*
 * csv.parse and csv.generate, loaded from csv.so with dlopen and driven
 * through a stand-in for the host's table: options and their errors, the
 * output shapes, header and column handling, skip mode, formula escaping,
 * blobs in and out, and generate then parse giving the rows back.
 *
 * The stand-in keeps blobs in memory. Its blob_read hands out at most
 * `read_piece` bytes per call, so chunk boundaries fall everywhere, and its
 * blob_data fails the test: csv.parse must stream.
 */
#include <ferry/ferry.h>

#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- the stand-in host ---- */

struct ferry_ctx {
    json_t *output; /* owned */
    int error_code;
    int retryable;
    char error[1024];
    json_t *logs;     /* [{level, message, fields}] */
    int cancel_after; /* cancelled() answers 1 from this call on (0: never) */
    int cancel_calls;
};

typedef struct blob {
    char id[16];
    char *data;
    size_t len;
    char content_type[64];
} blob;

static blob blobs[16];
static int nblobs;
static size_t read_piece = 7; /* bytes per blob_read at most */
static size_t max_read_asked; /* the largest len asked of blob_read */

struct ferry_blob_writer {
    ferry_ctx *ctx;
    char *data;
    size_t len;
    char content_type[64];
};

struct ferry_blob_reader {
    const blob *b;
    size_t off;
};

static void fake_logv(ferry_ctx *ctx, ferry_log_level level, json_t *fields,
                      const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (!ctx->logs)
        ctx->logs = json_array();
    json_array_append_new(ctx->logs,
                          json_pack("{s:i, s:s, s:o?}", "level", (int)level,
                                    "message", msg, "fields", fields));
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
    vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
    va_end(ap);
    return code;
}

static int fake_cancelled(ferry_ctx *ctx) {
    return ctx->cancel_after && ++ctx->cancel_calls >= ctx->cancel_after;
}

static json_t *add_blob(const void *data, size_t len, const char *ct) {
    blob *b = &blobs[nblobs];
    assert_true(nblobs < (int)(sizeof(blobs) / sizeof(blobs[0])));
    snprintf(b->id, sizeof(b->id), "b%d", ++nblobs);
    b->data = malloc(len + 1);
    memcpy(b->data, data, len);
    b->len = len;
    snprintf(b->content_type, sizeof(b->content_type), "%s", ct ? ct : "");
    return json_pack("{s:s, s:I, s:s}", "$blob", b->id, "size", (json_int_t)len,
                     "content_type", b->content_type);
}

static ferry_blob_writer *fake_blob_create(ferry_ctx *ctx, const char *ct) {
    ferry_blob_writer *w = calloc(1, sizeof(*w));
    w->ctx = ctx;
    snprintf(w->content_type, sizeof(w->content_type), "%s", ct ? ct : "");
    return w;
}

static int fake_blob_write(ferry_blob_writer *w, const void *data, size_t len) {
    w->data = realloc(w->data, w->len + len + 1);
    memcpy(w->data + w->len, data, len);
    w->len += len;
    return FERRY_OK;
}

static json_t *fake_blob_finish(ferry_blob_writer *w) {
    json_t *ref = add_blob(w->data ? w->data : "", w->len, w->content_type);
    free(w->data);
    free(w);
    return ref;
}

static void fake_blob_abort(ferry_blob_writer *w) {
    free(w->data);
    free(w);
}

static json_t *fake_blob_from(ferry_ctx *ctx, const void *data, size_t len,
                              const char *ct) {
    (void)ctx;
    return add_blob(data, len, ct);
}

static blob *find_blob(const json_t *ref) {
    const char *id = json_string_value(json_object_get(ref, "$blob"));
    for (int i = 0; id && i < nblobs; i++) {
        if (strcmp(blobs[i].id, id) == 0)
            return &blobs[i];
    }
    return NULL;
}

static ferry_blob_reader *fake_blob_open(ferry_ctx *ctx, const json_t *ref) {
    blob *b = find_blob(ref);
    ferry_blob_reader *r;
    (void)ctx;
    if (!b)
        return NULL;
    r = calloc(1, sizeof(*r));
    r->b = b;
    return r;
}

static long fake_blob_read(ferry_blob_reader *r, void *buf, size_t len) {
    size_t n = r->b->len - r->off;
    if (len > max_read_asked)
        max_read_asked = len;
    if (n > len)
        n = len;
    if (n > read_piece)
        n = read_piece;
    memcpy(buf, r->b->data + r->off, n);
    r->off += n;
    return (long)n;
}

static void fake_blob_close(ferry_blob_reader *r) {
    free(r);
}

static int fake_blob_data(ferry_ctx *ctx, const json_t *ref, const void **data,
                          size_t *len) {
    (void)ctx;
    (void)ref;
    (void)data;
    (void)len;
    fail_msg("csv must read blobs with blob_read, not map them whole");
    return FERRY_EINTERNAL;
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
    .blob_create = fake_blob_create,
    .blob_write = fake_blob_write,
    .blob_finish = fake_blob_finish,
    .blob_abort = fake_blob_abort,
    .blob_from = fake_blob_from,
    .blob_open = fake_blob_open,
    .blob_read = fake_blob_read,
    .blob_close = fake_blob_close,
    .blob_data = fake_blob_data,
    .cancelled = fake_cancelled,
};

static void *handle;
static const ferry_component *comp;

static int load(void **state) {
    ferry_entry_fn entry;
    (void)state;
    handle = dlopen(CSV_SO, RTLD_NOW | RTLD_LOCAL);
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
    for (int i = 0; i < nblobs; i++)
        free(blobs[i].data);
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

/* Returns a malloc'd copy of s with every ' turned into ". */
static char *q(const char *s) {
    char *c = strdup(s);
    for (char *p = c; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    return c;
}

static json_t *js(const char *sq) {
    char *text = q(sq);
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        fail_msg("bad test JSON (%s): %s", e.text, text);
    free(text);
    return v;
}

/* Runs action id on input (borrowed), as the host does: declared defaults
 * first. Returns its status; ctx holds the rest (free with ctx_done). */
static int run_json(ferry_ctx *ctx, const char *id, json_t *input) {
    const ferry_action *a = action(id);
    json_t *full;
    int rc;
    assert_non_null(a);
    full = json_deep_copy(input);
    for (const ferry_input *in = a->inputs; in->name; in++) {
        if (in->default_json && !json_object_get(full, in->name))
            json_object_set_new(
                full, in->name,
                json_loads(in->default_json, JSON_DECODE_ANY, NULL));
    }
    memset(ctx, 0, sizeof(*ctx));
    rc = a->run(ctx, full);
    json_decref(full);
    if (rc == FERRY_OK)
        assert_int_equal(ctx->error_code, 0);
    else
        assert_int_equal(ctx->error_code, rc);
    return rc;
}

/* As run_json with single-quoted JSON text. */
static int run(ferry_ctx *ctx, const char *id, const char *input_sq) {
    json_t *input = js(input_sq);
    int rc = run_json(ctx, id, input);
    json_decref(input);
    return rc;
}

static void ctx_done(ferry_ctx *ctx) {
    json_decref(ctx->output);
    json_decref(ctx->logs);
    memset(ctx, 0, sizeof(*ctx));
}

#define assert_json(got, want_sq)                                              \
    assert_json_at((got), (want_sq), __FILE__, __LINE__)
static void assert_json_at(const json_t *got, const char *want_sq,
                           const char *file, int line) {
    json_t *want = js(want_sq);
    if (!got || !json_equal((json_t *)got, want)) {
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
        print_error("got  %s\nwant %s\n", g ? g : "(nothing)", w);
        free(g);
        free(w);
        json_decref(want);
        _fail(file, line);
    }
    json_decref(want);
}

/* csv.parse of text (raw, not JSON) with the options given as single-quoted
 * JSON members ("" for none); its output's rows must equal want. */
#define parse_rows(text, opts, want)                                           \
    parse_rows_at((text), (opts), (want), __FILE__, __LINE__)
static void parse_rows_at(const char *text, const char *opts_sq,
                          const char *want_sq, const char *file, int line) {
    json_t *input = js(*opts_sq ? opts_sq : "{}");
    ferry_ctx ctx;
    json_object_set_new(input, "text", json_string(text));
    if (run_json(&ctx, "csv.parse", input) != FERRY_OK) {
        print_error("csv.parse failed: %s\n", ctx.error);
        _fail(file, line);
    }
    json_decref(input);
    assert_json_at(json_object_get(ctx.output, "rows"), want_sq, file, line);
    ctx_done(&ctx);
}

/* csv.parse of text must fail with code and a message containing msg. */
#define parse_fails(text, opts, code, msg)                                     \
    parse_fails_at((text), (opts), (code), (msg), __FILE__, __LINE__)
static void parse_fails_at(const char *text, const char *opts_sq, int code,
                           const char *msg, const char *file, int line) {
    json_t *input = js(*opts_sq ? opts_sq : "{}");
    ferry_ctx ctx;
    if (text)
        json_object_set_new(input, "text", json_string(text));
    int rc = run_json(&ctx, "csv.parse", input);
    json_decref(input);
    if (rc != code || !strstr(ctx.error, msg)) {
        print_error("got %s '%s', want %s containing '%s'\n",
                    ferry_err_name(rc), ctx.error, ferry_err_name(code), msg);
        _fail(file, line);
    }
    assert_null(ctx.output);
    assert_int_equal(ctx.retryable, 0);
    ctx_done(&ctx);
}

/* csv.generate's text for input; the step must succeed. Returns malloc'd
 * text. */
static char *gen_text(const char *input_sq) {
    ferry_ctx ctx;
    if (run(&ctx, "csv.generate", input_sq) != FERRY_OK)
        fail_msg("csv.generate failed: %s", ctx.error);
    const char *t = json_string_value(json_object_get(ctx.output, "text"));
    assert_non_null(t);
    assert_true(json_is_null(json_object_get(ctx.output, "blob")));
    char *copy = strdup(t);
    ctx_done(&ctx);
    return copy;
}

#define gen_is(input, want)                                                    \
    do {                                                                       \
        char *got_ = gen_text(input);                                          \
        assert_string_equal(got_, (want));                                     \
        free(got_);                                                            \
    } while (0)

static void gen_fails(const char *input_sq, int code, const char *msg) {
    ferry_ctx ctx;
    int rc = run(&ctx, "csv.generate", input_sq);
    if (rc != code || !strstr(ctx.error, msg))
        fail_msg("got %s '%s', want %s containing '%s'", ferry_err_name(rc),
                 ctx.error, ferry_err_name(code), msg);
    assert_null(ctx.output);
    ctx_done(&ctx);
}

/* ---- tests ---- */

static void test_description(void **state) {
    const char *types = " string integer number boolean object array blob ";
    (void)state;
    assert_int_equal(comp->abi_major, FERRY_ABI_MAJOR);
    assert_int_equal(comp->jansson_major, JANSSON_MAJOR_VERSION);
    assert_string_equal(comp->name, "csv");
    assert_non_null(action("csv.parse"));
    assert_non_null(action("csv.generate"));
    for (const ferry_action *a = comp->actions; a->id; a++) {
        assert_non_null(a->run);
        assert_true(a->flags & FERRY_ACTION_IDEMPOTENT);
        for (const ferry_input *in = a->inputs; in->name; in++) {
            char word[32];
            snprintf(word, sizeof(word), " %s ", in->type);
            assert_non_null(strstr(types, word));
            if (in->default_json) {
                json_t *d = json_loads(in->default_json, JSON_DECODE_ANY, 0);
                assert_non_null(d);
                json_decref(d);
                assert_false(in->required);
            }
        }
    }
    assert_null(dlsym(handle, "csv_parser_new"));
    assert_null(dlsym(handle, "parse_action"));
}

static void test_parse_output(void **state) {
    ferry_ctx ctx;
    (void)state;
    assert_int_equal(run(&ctx, "csv.parse",
                         "{'text': 'name,qty\\r\\nbolt,10\\r\\nnut,\\r\\n'}"),
                     FERRY_OK);
    assert_json(ctx.output,
                "{'rows': [{'name': 'bolt', 'qty': '10'}, {'name': 'nut', "
                "'qty': ''}], 'columns': ['name', 'qty'], 'count': 2, "
                "'skipped': 0, 'errors': []}");
    /* One INFO line with the counts. */
    assert_int_equal(json_array_size(ctx.logs), 1);
    assert_json(json_object_get(json_array_get(ctx.logs, 0), "fields"),
                "{'rows': 2, 'bytes': 25}");
    ctx_done(&ctx);

    /* Key order follows the columns. */
    assert_int_equal(run(&ctx, "csv.parse", "{'text': 'z,a,m\\n1,2,3'}"),
                     FERRY_OK);
    char *s = json_dumps(json_object_get(ctx.output, "rows"), JSON_COMPACT);
    assert_string_equal(s, "[{\"z\":\"1\",\"a\":\"2\",\"m\":\"3\"}]");
    free(s);
    ctx_done(&ctx);

    /* Without a header: arrays, and columns is null. */
    assert_int_equal(
        run(&ctx, "csv.parse", "{'text': 'a,b\\n1,2\\n', 'header': false}"),
        FERRY_OK);
    assert_json(ctx.output, "{'rows': [['a', 'b'], ['1', '2']], 'columns': "
                            "null, 'count': 2, 'skipped': 0, 'errors': []}");
    ctx_done(&ctx);

    /* Nothing at all. */
    assert_int_equal(run(&ctx, "csv.parse", "{'text': ''}"), FERRY_OK);
    assert_json(ctx.output, "{'rows': [], 'columns': [], 'count': 0, "
                            "'skipped': 0, 'errors': []}");
    ctx_done(&ctx);
}

static void test_parse_rfc4180(void **state) {
    (void)state;
    parse_rows("a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\r\n", "",
               "[{'a': 'x, y', 'b': 'say \\'hi\\''}]");
    parse_rows("a,b\n\"multi\r\nline\",\"lf\nonly\"\n", "",
               "[{'a': 'multi\\r\\nline', 'b': 'lf\\nonly'}]");
    parse_rows("a,b\n,\n\"\",x", "",
               "[{'a': '', 'b': ''}, {'a': '', 'b': 'x'}]");
    parse_rows("\xEF\xBB\xBFid\n1\n\n2\n", "", "[{'id': '1'}, {'id': '2'}]");
    parse_rows("id\n1\n\n2\n", "{'skip_empty_lines': false}",
               "[{'id': '1'}, {'id': ''}, {'id': '2'}]");
    parse_rows("a;b\n1;\"2;3\"\n", "{'delimiter': ';'}",
               "[{'a': '1', 'b': '2;3'}]");
    parse_rows("a\tb\n1\t2 3\n", "{'delimiter': '\\t'}",
               "[{'a': '1', 'b': '2 3'}]");
    parse_rows("a,b\n'x,y','it''s'\n", "{'quote': '\\u0027'}",
               "[{'a': 'x,y', 'b': 'it\\u0027s'}]");
    parse_rows("a,b\n\"x\",y\"\n", "{'quote': ''}",
               "[{'a': '\\'x\\'', 'b': 'y\\''}]");
    parse_rows("a , b \n \"x\" ,  y  \n", "{'trim': true}",
               "[{'a': 'x', 'b': 'y'}]");
    parse_rows("h\ncaf\xC3\xA9 \xE2\x82\xAC\n", "",
               "[{'h': 'caf\\u00e9 \\u20ac'}]");
}

static void test_parse_columns(void **state) {
    ferry_ctx ctx;
    (void)state;
    /* Given columns: the first line is data unless header says not. */
    parse_rows("1,2\n3,4\n", "{'columns': ['x', 'y']}",
               "[{'x': '1', 'y': '2'}, {'x': '3', 'y': '4'}]");
    parse_rows("a,b\n3,4\n", "{'columns': ['x', 'y'], 'header': true}",
               "[{'x': '3', 'y': '4'}]");
    parse_fails("a,b,c\n3,4\n", "{'columns': ['x', 'y'], 'header': true}",
                FERRY_EPARSE,
                "line 1, column 5: record has 3 fields, expected 2 (in the "
                "header line)");
    /* Empty and repeated names in a header. */
    assert_int_equal(
        run(&ctx, "csv.parse", "{'text': 'a,,a,a_2,a\\n1,2,3,4,5\\n'}"),
        FERRY_OK);
    assert_json(json_object_get(ctx.output, "columns"),
                "['a', 'column_2', 'a_2', 'a_2_2', 'a_3']");
    assert_json(json_object_get(ctx.output, "rows"),
                "[{'a': '1', 'column_2': '2', 'a_2': '3', 'a_2_2': '4', "
                "'a_3': '5'}]");
    ctx_done(&ctx);
    /* Not strict: short rows get null, long rows name their extra fields
     * by position. */
    parse_rows("a,b\n1\n1,2,3\n", "{'strict': false}",
               "[{'a': '1', 'b': null}, {'a': '1', 'b': '2', 'column_3': "
               "'3'}]");
    parse_rows("a,column_3\n1,2,3\n", "{'strict': false}",
               "[{'a': '1', 'column_3': '2', 'column_3_2': '3'}]");
    parse_rows("1\n1,2\n", "{'strict': false, 'header': false}",
               "[['1'], ['1', '2']]");
    parse_fails("1\n1,2\n", "{'header': false}", FERRY_EPARSE,
                "line 2, column 3: record has 2 fields, expected 1");
}

static void test_parse_infer(void **state) {
    (void)state;
    parse_rows("a,b,c,d,e,f,g\n1,-2.5,true,FALSE,,\"7\",007\n",
               "{'infer_types': true}",
               "[{'a': 1, 'b': -2.5, 'c': true, 'd': false, 'e': null, 'f': "
               "'7', 'g': '007'}]");
    parse_rows("a,b\n1,\n", "", "[{'a': '1', 'b': ''}]");
    parse_rows("1e3,x\n", "{'infer_types': true, 'header': false}",
               "[[1000.0, 'x']]");
}

static void test_parse_errors(void **state) {
    (void)state;
    parse_fails("a,b\n1,2\n3,4\"x\n", "", FERRY_EPARSE,
                "line 3, column 4: quote character in an unquoted field");
    parse_fails("a,b\n\"1\"x,2\n", "", FERRY_EPARSE,
                "line 2, column 4: 'x' after a closing quote, expected the "
                "delimiter or a line end");
    parse_fails("a,b\n1,2\n3,\"4\n5\n", "", FERRY_EPARSE,
                "line 3, column 3: quoted field not closed before the end of "
                "the input");
    parse_fails("a,b\n1,2,3\n", "", FERRY_EPARSE,
                "line 2, column 5: record has 3 fields, expected 2");
    parse_fails("a,b\n1\n", "", FERRY_EPARSE,
                "line 2, column 2: record has 1 field, expected 2");
    parse_fails("a,b\n\"x\ny\"z,1\n", "", FERRY_EPARSE, "line 3, column 3: ");
    parse_fails("a\"b\n", "", FERRY_EPARSE,
                "line 1, column 2: quote character in an unquoted field (a "
                "field with a quote must be quoted, and the quote doubled) "
                "(in the header line)");
    /* Header errors fail even when skipping. */
    parse_fails("a,\"b\nc\n", "{'on_error': 'skip'}", FERRY_EPARSE,
                "line 1, column 3: quoted field not closed");
}

static void test_parse_skip(void **state) {
    ferry_ctx ctx;
    (void)state;
    assert_int_equal(run(&ctx, "csv.parse",
                         "{'text': 'a,b\\n1,2\\n3\\'x,4\\n5,6\\n7\\n8,9', "
                         "'on_error': 'skip'}"),
                     FERRY_OK);
    assert_json(
        ctx.output,
        "{'rows': [{'a': '1', 'b': '2'}, {'a': '5', 'b': '6'}, {'a': '8', "
        "'b': '9'}], 'columns': ['a', 'b'], 'count': 3, 'skipped': 2, "
        "'errors': [{'line': 3, 'column': 2, 'record_line': 3, 'message': "
        "'quote character in an unquoted field (a field with a quote must "
        "be quoted, and the quote doubled)'}, {'line': 5, 'column': 2, "
        "'record_line': 5, 'message': 'record has 1 field, expected 2'}]}");
    /* A WARN line says how many, and where the first one was. */
    const json_t *warn = json_array_get(ctx.logs, 0);
    assert_int_equal(json_integer_value(json_object_get(warn, "level")),
                     FERRY_LOG_WARN);
    assert_string_equal(
        json_string_value(json_object_get(warn, "message")),
        "skipped 2 malformed records; the first at line 3, column 2: quote "
        "character in an unquoted field (a field with a quote must be "
        "quoted, and the quote doubled)");
    ctx_done(&ctx);

    /* The list holds the first 100; skipped counts them all. */
    {
        char *text = malloc(300 * 16 + 16);
        size_t n = (size_t)sprintf(text, "a,b\n");
        for (int i = 0; i < 300; i++)
            n += (size_t)sprintf(text + n, "%d\n%d,%d\n", i, i, i);
        json_t *in = json_pack("{s:s, s:s}", "text", text, "on_error", "skip");
        assert_int_equal(run_json(&ctx, "csv.parse", in), FERRY_OK);
        assert_int_equal(
            json_integer_value(json_object_get(ctx.output, "skipped")), 300);
        assert_int_equal(
            json_integer_value(json_object_get(ctx.output, "count")), 300);
        assert_int_equal(json_array_size(json_object_get(ctx.output, "errors")),
                         100);
        assert_int_equal(
            json_integer_value(json_object_get(
                json_array_get(json_object_get(ctx.output, "errors"), 99),
                "line")),
            200);
        json_decref(in);
        free(text);
        ctx_done(&ctx);
    }
}

static void test_parse_options_refused(void **state) {
    (void)state;
    parse_fails("a", "{'delimiter': '||'}", FERRY_EINVAL,
                "delimiter must be one single-byte (ASCII) character, got "
                "\"||\"");
    parse_fails("a", "{'delimiter': '\\u00a7'}", FERRY_EINVAL,
                "delimiter must be one single-byte (ASCII) character");
    parse_fails("a", "{'delimiter': ''}", FERRY_EINVAL,
                "delimiter must be one character, got \"\"");
    parse_fails("a", "{'delimiter': '\\n'}", FERRY_EINVAL,
                "delimiter cannot be a line break, got \"\\n\"");
    parse_fails("a", "{'quote': '\\r'}", FERRY_EINVAL,
                "quote cannot be a line break");
    parse_fails("a", "{'quote': 'ab'}", FERRY_EINVAL,
                "quote must be one single-byte (ASCII) character, got "
                "\"ab\"");
    parse_fails("a", "{'delimiter': '\\'', 'quote': '\\''}", FERRY_EINVAL,
                "delimiter and quote are both '\"'; they must differ");
    parse_fails("a", "{'delimiter': ' ', 'trim': true}", FERRY_EINVAL,
                "delimiter cannot be a space when trim is on");
    parse_fails("a", "{'quote': '\\t', 'trim': true}", FERRY_EINVAL,
                "quote cannot be a space or a tab when trim is on");
    parse_fails("a", "{'on_error': 'ignore'}", FERRY_EINVAL,
                "on_error must be \"fail\" or \"skip\", got \"ignore\"");
    parse_fails("a", "{'columns': []}", FERRY_EINVAL,
                "columns must name at least one column");
    parse_fails("a", "{'columns': ['x', 3]}", FERRY_EINVAL,
                "columns[1] must be a string");
    parse_fails("a", "{'columns': ['x', 'y', 'x']}", FERRY_EINVAL,
                "columns[2]: duplicate name \"x\"");
    parse_fails(NULL, "{}", FERRY_EINVAL, "give the CSV as text or as blob");
    parse_fails("a", "{'blob': {'$blob': 'b1'}}", FERRY_EINVAL,
                "give text or blob, not both");
    parse_fails(NULL, "{'blob': {'$blob': 'nope'}}", FERRY_ENOTFOUND,
                "blob: no such blob in this execution");
}

static void test_parse_blob(void **state) {
    ferry_ctx ctx;
    json_t *ref, *in;
    const char *text =
        "\xEF\xBB\xBFid,note\r\n1,\"a,\r\nb\"\r\n2,\"\"\"q\"\"\"";
    (void)state;
    ref = add_blob(text, strlen(text), "text/csv");
    in = json_pack("{s:O}", "blob", ref);
    max_read_asked = 0;
    for (size_t piece = 1; piece <= strlen(text) + 1; piece++) {
        read_piece = piece;
        assert_int_equal(run_json(&ctx, "csv.parse", in), FERRY_OK);
        assert_json(json_object_get(ctx.output, "rows"),
                    "[{'id': '1', 'note': 'a,\\r\\nb'}, {'id': '2', 'note': "
                    "'\\'q\\''}]");
        ctx_done(&ctx);
    }
    /* It asks for 64 KiB at a time, not the whole blob. */
    assert_int_equal(max_read_asked, 64 * 1024);
    read_piece = 7;
    json_decref(in);
    json_decref(ref);

    /* An error in a blob names the line and column like one in text. */
    ref = add_blob("a,b\n1,2\n3\n", 10, "text/csv");
    in = json_pack("{s:O}", "blob", ref);
    assert_int_equal(run_json(&ctx, "csv.parse", in), FERRY_EPARSE);
    assert_string_equal(ctx.error,
                        "line 3, column 2: record has 1 field, expected 2");
    ctx_done(&ctx);
    json_decref(in);
    json_decref(ref);

    /* A blob, unlike a JSON string, can hold bytes that are not UTF-8. */
    ref = add_blob("a,b\n\xC3\xA9,\xFF\n", 9, "text/csv");
    in = json_pack("{s:O}", "blob", ref);
    assert_int_equal(run_json(&ctx, "csv.parse", in), FERRY_EPARSE);
    assert_string_equal(ctx.error, "line 2, column 3: invalid UTF-8: byte "
                                   "0xFF cannot start a character");
    ctx_done(&ctx);
    json_object_set_new(in, "on_error", json_string("skip"));
    assert_int_equal(run_json(&ctx, "csv.parse", in), FERRY_OK);
    assert_json(ctx.output, "{'rows': [], 'columns': ['a', 'b'], 'count': 0, "
                            "'skipped': 1, 'errors': [{'line': 2, 'column': "
                            "3, 'record_line': 2, 'message': 'invalid UTF-8: "
                            "byte 0xFF cannot start a character'}]}");
    ctx_done(&ctx);
    json_decref(in);
    json_decref(ref);
}

static void test_parse_cancel(void **state) {
    ferry_ctx ctx;
    json_t *ref, *in;
    (void)state;
    ref = add_blob("a\n1\n2\n3\n", 8, "text/csv");
    in = json_pack("{s:O}", "blob", ref);
    memset(&ctx, 0, sizeof(ctx));
    ctx.cancel_after = 1;
    assert_int_equal(action("csv.parse")->run(&ctx, in), FERRY_ECANCELLED);
    assert_int_equal(ctx.error_code, FERRY_ECANCELLED);
    assert_null(ctx.output);
    ctx_done(&ctx);
    json_decref(in);
    json_decref(ref);
}

static void test_generate_objects(void **state) {
    ferry_ctx ctx;
    (void)state;
    /* Columns: the first row's keys, then new keys in order seen. */
    assert_int_equal(run(&ctx, "csv.generate",
                         "{'rows': [{'b': 1, 'a': 'x'}, {'c': true, 'a': "
                         "'y'}, {'d': null}]}"),
                     FERRY_OK);
    assert_json(ctx.output, "{'text': 'b,a,c,d\\r\\n1,x,,\\r\\n,y,true,\\r\\n"
                            ",,,\\r\\n', 'blob': null, 'columns': ['b', 'a', "
                            "'c', 'd'], 'rows': 3, 'bytes': 31}");
    ctx_done(&ctx);
    /* columns orders and chooses; header false leaves the names out. */
    gen_is("{'rows': [{'a': 1, 'b': 2, 'c': 3}], 'columns': ['c', 'a']}",
           "c,a\r\n3,1\r\n");
    gen_is("{'rows': [{'a': 1, 'b': 2}], 'header': false}", "1,2\r\n");
    gen_is("{'rows': [{'a': 1}], 'newline': 'lf'}", "a\n1\n");
    gen_is("{'rows': [{'a': 1}], 'newline': '\\n'}", "a\n1\n");
    gen_is("{'rows': [{'a': 1}], 'newline': '\\r\\n'}", "a\r\n1\r\n");
    gen_is("{'rows': []}", "");
    gen_is("{'rows': [], 'columns': ['x', 'y']}", "x,y\r\n");
    gen_is("{'rows': [{}, {}]}", "");
}

static void test_generate_values(void **state) {
    (void)state;
    gen_is("{'rows': [{'s': 'a,b', 'q': 'say \\'hi\\'', 'n': 'two\\nlines', "
           "'sp': ' x', 'plain': 'caf\\u00e9'}]}",
           "s,q,n,sp,plain\r\n\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\" "
           "x\",caf\xC3\xA9\r\n");
    gen_is("{'rows': [[1, -2, 0.1, 1e20, 2.5e-8, true, false, null, "
           "9223372036854775807]]}",
           "1,-2,0.1,1e+20,2.5e-08,true,false,,9223372036854775807\r\n");
    gen_is("{'rows': [[0.30000000000000004, 3.0]]}",
           "0.30000000000000004,3\r\n");
    gen_is("{'rows': [[{'k': [1, 'x']}, [0.1, null]]]}",
           "\"{\"\"k\"\":[1,\"\"x\"\"]}\",\"[0.1,null]\"\r\n");
    gen_is("{'rows': [['a', 'b'], ['c']]}", "a,b\r\nc,\r\n");
    gen_is("{'rows': [['a'], ['c', 'd']], 'columns': ['x', 'y', 'z']}",
           "x,y,z\r\na,,\r\nc,d,\r\n");
    gen_is("{'rows': [['a'], ['c']], 'header': false, 'columns': ['x']}",
           "a\r\nc\r\n");
    /* A record of one empty cell is written "" so it is not an empty line
     * (which a reader drops). */
    gen_is("{'rows': [[''], [null], ['x']]}", "\"\"\r\n\"\"\r\nx\r\n");
    gen_is("{'rows': [[''], ['x']]}", "\"\"\r\nx\r\n");
    gen_is("{'rows': [['a;b', 'c,d', 'e\\'f']], 'delimiter': ';', 'quote': "
           "'\\u0027'}",
           "'a;b';c,d;e\"f\r\n");
    gen_is("{'rows': [['a\\tb', 'c']], 'delimiter': '\\t'}", "\"a\tb\"\tc\r\n");
}

static void test_generate_formulas(void **state) {
    (void)state;
    gen_is("{'rows': [['=1+2', '+1', '-1', '@x', '\\tx', '\\rx', 'a=b', "
           "-5, '=a,b']]}",
           "'=1+2,'+1,'-1,'@x,'\tx,\"'\rx\",a=b,-5,\"'=a,b\"\r\n");
    gen_is("{'rows': [{'=cmd': '=HYPERLINK(\\'http://x\\')'}]}",
           "'=cmd\r\n\"'=HYPERLINK(\"\"http://x\"\")\"\r\n");
    gen_is("{'rows': [['=1+2', '-1', '\\tx']], 'escape_formulas': false}",
           "=1+2,-1,\"\tx\"\r\n");
}

static void test_generate_blob(void **state) {
    ferry_ctx ctx;
    json_t *rows, *in;
    blob *b;
    (void)state;
    assert_int_equal(
        run(&ctx, "csv.generate", "{'rows': [['a', 1]], 'output': 'blob'}"),
        FERRY_OK);
    assert_true(json_is_null(json_object_get(ctx.output, "text")));
    b = find_blob(json_object_get(ctx.output, "blob"));
    assert_non_null(b);
    assert_int_equal(b->len, 5);
    assert_memory_equal(b->data, "a,1\r\n", 5);
    assert_string_equal(b->content_type, "text/csv; charset=utf-8");
    ctx_done(&ctx);

    /* auto: a string up to 1 MiB, a blob past it; string: always. */
    char cell[257];
    memset(cell, 'x', 256);
    cell[256] = 0;
    rows = json_array();
    for (int i = 0; i < 2000; i++)
        json_array_append_new(rows, json_pack("[s]", cell));
    in = json_pack("{s:O}", "rows", rows);
    assert_int_equal(run_json(&ctx, "csv.generate", in), FERRY_OK);
    assert_true(json_is_string(json_object_get(ctx.output, "text")));
    ctx_done(&ctx);
    for (int i = 2000; i < 16000; i++)
        json_array_append_new(rows, json_pack("[s]", cell));
    /* 16000 rows of 258 bytes: about 4 MiB */
    assert_int_equal(run_json(&ctx, "csv.generate", in), FERRY_OK);
    assert_true(json_is_null(json_object_get(ctx.output, "text")));
    b = find_blob(json_object_get(ctx.output, "blob"));
    assert_non_null(b);
    assert_int_equal(b->len, 16000 * 258);
    assert_int_equal(json_integer_value(json_object_get(ctx.output, "bytes")),
                     16000 * 258);
    assert_memory_equal(b->data + 258, b->data, 258);
    ctx_done(&ctx);
    json_object_set_new(in, "output", json_string("string"));
    assert_int_equal(run_json(&ctx, "csv.generate", in), FERRY_OK);
    assert_int_equal(json_string_length(json_object_get(ctx.output, "text")),
                     16000 * 258);
    ctx_done(&ctx);
    json_decref(in);
    json_decref(rows);
}

static void test_generate_refused(void **state) {
    (void)state;
    gen_fails("{'rows': [1]}", FERRY_EINVAL,
              "rows[0] is a number; each row must be an object or an array");
    gen_fails("{'rows': [{'a': 1}, ['x']]}", FERRY_EINVAL,
              "rows[1] is an array but rows[0] is an object; rows must be "
              "all objects or all arrays");
    gen_fails("{'rows': [['a', 'b', 'c']], 'columns': ['x', 'y']}",
              FERRY_EINVAL, "rows[0] has 3 values but columns names 2");
    gen_fails("{'rows': [], 'quote': ''}", FERRY_EINVAL,
              "quote must be one character, got \"\"");
    gen_fails("{'rows': [], 'delimiter': '\\t\\t'}", FERRY_EINVAL,
              "delimiter must be one single-byte (ASCII) character, got "
              "\"\\t\\t\"");
    gen_fails("{'rows': [], 'delimiter': '\\''}", FERRY_EINVAL,
              "delimiter and quote are both '\"'");
    gen_fails("{'rows': [], 'newline': 'cr'}", FERRY_EINVAL,
              "newline must be \"crlf\" or \"lf\", got \"cr\"");
    gen_fails("{'rows': [], 'output': 'file'}", FERRY_EINVAL,
              "output must be \"auto\", \"string\" or \"blob\", got "
              "\"file\"");
    gen_fails("{'rows': [], 'columns': ['a', 'a']}", FERRY_EINVAL,
              "columns[1]: duplicate name \"a\"");
    gen_fails("{'rows': {}}", FERRY_EINVAL, "rows must be an array");
}

/* Rows written and read back are the same rows. */
static void test_round_trip(void **state) {
    const char *rows_sq =
        "[{'id': '1', 'text': 'plain', 'empty': ''}, {'id': '2', 'text': "
        "'a, b', 'empty': ''}, {'id': '3', 'text': 'say \\'hi\\'', 'empty': "
        "''}, {'id': '4', 'text': 'line\\r\\nbreak\\nand lf', 'empty': ''}, "
        "{'id': '5', 'text': ' padded ', 'empty': ''}, {'id': '6', 'text': "
        "'=1+2', 'empty': ''}, {'id': '7', 'text': 'caf\\u00e9 \\u20ac "
        "\\ud83d\\ude00', 'empty': ''}, {'id': '8', 'text': '\\u0000nul', "
        "'empty': ''}]";
    json_t *rows = js(rows_sq);
    (void)state;
    for (int v = 0; v < 4; v++) {
        static const char *const variants[] = {
            "{}", "{'delimiter': ';', 'newline': 'lf'}",
            "{'delimiter': '\\t', 'quote': '\\u0027'}",
            "{'delimiter': '|', 'output': 'blob'}"};
        json_t *gen_in = js(variants[v]), *parse_in;
        ferry_ctx ctx;
        json_object_set(gen_in, "rows", rows);
        json_object_set_new(gen_in, "escape_formulas", json_false());
        assert_int_equal(run_json(&ctx, "csv.generate", gen_in), FERRY_OK);
        parse_in = json_deep_copy(gen_in);
        json_object_del(parse_in, "rows");
        json_object_del(parse_in, "escape_formulas");
        json_object_del(parse_in, "newline");
        json_object_del(parse_in, "output");
        if (json_is_string(json_object_get(ctx.output, "text")))
            json_object_set(parse_in, "text",
                            json_object_get(ctx.output, "text"));
        else
            json_object_set(parse_in, "blob",
                            json_object_get(ctx.output, "blob"));
        ctx_done(&ctx);
        assert_int_equal(run_json(&ctx, "csv.parse", parse_in), FERRY_OK);
        if (!json_equal(json_object_get(ctx.output, "rows"), rows))
            fail_msg("variant %d: %s", v, json_dumps(ctx.output, JSON_COMPACT));
        ctx_done(&ctx);
        json_decref(gen_in);
        json_decref(parse_in);
    }
    json_decref(rows);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_description),
        cmocka_unit_test(test_parse_output),
        cmocka_unit_test(test_parse_rfc4180),
        cmocka_unit_test(test_parse_columns),
        cmocka_unit_test(test_parse_infer),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_skip),
        cmocka_unit_test(test_parse_options_refused),
        cmocka_unit_test(test_parse_blob),
        cmocka_unit_test(test_parse_cancel),
        cmocka_unit_test(test_generate_objects),
        cmocka_unit_test(test_generate_values),
        cmocka_unit_test(test_generate_formulas),
        cmocka_unit_test(test_generate_blob),
        cmocka_unit_test(test_generate_refused),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
