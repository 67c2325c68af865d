/*
 * The xml component (xml.so, loaded with dlopen) driven action by action
 * through a stand-in for the host's table, with blobs kept in memory or
 * generated as they are read: inputs as strings and blobs, outputs as
 * values and blobs, step errors, XXE and billion laughs refused, XSLT with
 * parameters and without file or network access, and a document of
 * hundreds of megabytes streamed through a select in bounded memory.
 */
#include <ferry/ferry.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifdef UNDER_ASAN
/* The freed-memory quarantine (256 MB by default) would count as
 * resident memory in the streaming test. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
    return "quarantine_size_mb=16";
}
#endif

/* ---- the stand-in host ---- */

typedef struct gen gen;

typedef struct blob {
    char id[32];
    char *data;
    size_t len;
    char content_type[64];
    gen *g; /* generated as read; no data */
} blob;

struct ferry_ctx {
    json_t *output; /* owned */
    int error_code;
    int retryable;
    char error[2048];
    json_t *logs; /* [{level, message, fields}] */
    int cancel;
    blob blobs[16];
    int nblobs;
};

struct ferry_blob_writer {
    ferry_ctx *ctx;
    char *data;
    size_t len, cap;
    char content_type[64];
};

struct ferry_blob_reader {
    blob *b;
    size_t off;
};

static void fake_logv(ferry_ctx *ctx, ferry_log_level level, json_t *fields,
                      const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
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
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
    return code;
}

static int fake_cancelled(ferry_ctx *ctx) {
    return ctx->cancel;
}

static json_t *add_blob(ferry_ctx *ctx, char *data, size_t len,
                        const char *content_type, gen *g) {
    blob *b;
    assert_true(ctx->nblobs < 16);
    b = &ctx->blobs[ctx->nblobs++];
    snprintf(b->id, sizeof b->id, "ex_test.%d", ctx->nblobs);
    b->data = data;
    b->len = len;
    b->g = g;
    snprintf(b->content_type, sizeof b->content_type, "%s",
             content_type ? content_type : "application/octet-stream");
    return json_pack("{s:s, s:I, s:s}", "$blob", b->id, "size", (json_int_t)len,
                     "content_type", b->content_type);
}

static ferry_blob_writer *fake_blob_create(ferry_ctx *ctx,
                                           const char *content_type) {
    ferry_blob_writer *w = calloc(1, sizeof(*w));
    w->ctx = ctx;
    snprintf(w->content_type, sizeof w->content_type, "%s",
             content_type ? content_type : "application/octet-stream");
    return w;
}

static int fake_blob_write(ferry_blob_writer *w, const void *data, size_t len) {
    if (w->len + len > w->cap) {
        w->cap = (w->len + len) * 2;
        w->data = realloc(w->data, w->cap);
    }
    memcpy(w->data + w->len, data, len);
    w->len += len;
    return FERRY_OK;
}

static json_t *fake_blob_finish(ferry_blob_writer *w) {
    json_t *ref = add_blob(w->ctx, w->data, w->len, w->content_type, NULL);
    free(w);
    return ref;
}

static void fake_blob_abort(ferry_blob_writer *w) {
    free(w->data);
    free(w);
}

static json_t *fake_blob_from(ferry_ctx *ctx, const void *data, size_t len,
                              const char *content_type) {
    char *copy = malloc(len ? len : 1);
    memcpy(copy, data, len);
    return add_blob(ctx, copy, len, content_type, NULL);
}

static blob *find_blob(ferry_ctx *ctx, const json_t *ref) {
    const char *id = json_string_value(json_object_get(ref, "$blob"));
    for (int i = 0; id && i < ctx->nblobs; i++)
        if (!strcmp(ctx->blobs[i].id, id))
            return &ctx->blobs[i];
    return NULL;
}

static long gen_read(gen *g, void *buf, size_t len);
static void gen_rewind(gen *g);

static ferry_blob_reader *fake_blob_open(ferry_ctx *ctx, const json_t *ref) {
    blob *b = find_blob(ctx, ref);
    ferry_blob_reader *r;
    if (!b)
        return NULL;
    r = calloc(1, sizeof(*r));
    r->b = b;
    if (b->g)
        gen_rewind(b->g);
    return r;
}

static long fake_blob_read(ferry_blob_reader *r, void *buf, size_t len) {
    size_t n;
    if (r->b->g)
        return gen_read(r->b->g, buf, len);
    n = r->b->len - r->off;
    if (n > len)
        n = len;
    memcpy(buf, r->b->data + r->off, n);
    r->off += n;
    return (long)n;
}

static void fake_blob_close(ferry_blob_reader *r) {
    free(r);
}

static int fake_blob_data(ferry_ctx *ctx, const json_t *ref, const void **data,
                          size_t *len) {
    blob *b = find_blob(ctx, ref);
    if (!b)
        return FERRY_ENOTFOUND;
    if (b->g)
        return FERRY_EUNSUPPORTED; /* never mapped whole */
    *data = b->data;
    *len = b->len;
    return FERRY_OK;
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

/* ---- loading the component, running actions ---- */

static void *module;
static const ferry_component *comp;

static int load(void **state) {
    (void)state;
    module = dlopen(XML_SO, RTLD_NOW | RTLD_LOCAL);
    if (!module)
        fail_msg("dlopen %s: %s", XML_SO, dlerror());
    ferry_entry_fn entry = (ferry_entry_fn)dlsym(module, FERRY_ENTRY_SYMBOL);
    assert_non_null(entry);
    comp = entry(&host);
    assert_non_null(comp);
    return 0;
}

static int unload(void **state) {
    (void)state;
    /* Not dlclose'd: libxml2 keeps global state for the process. */
    return 0;
}

static ferry_ctx *ctx_new(void) {
    ferry_ctx *ctx = calloc(1, sizeof(*ctx));
    ctx->logs = json_array();
    return ctx;
}

static void ctx_free(ferry_ctx *ctx) {
    json_decref(ctx->output);
    json_decref(ctx->logs);
    for (int i = 0; i < ctx->nblobs; i++)
        free(ctx->blobs[i].data);
    free(ctx);
}

static const ferry_action *action(const char *id) {
    for (const ferry_action *a = comp->actions; a->id; a++)
        if (!strcmp(a->id, id))
            return a;
    fail_msg("no action %s", id);
    return NULL;
}

/* The host applies declared defaults before calling; so does this. */
static json_t *with_defaults(const ferry_action *a, json_t *input) {
    for (const ferry_input *in = a->inputs; in && in->name; in++) {
        if (in->default_json && !json_object_get(input, in->name)) {
            json_t *d = json_loads(in->default_json, JSON_DECODE_ANY, NULL);
            assert_non_null(d);
            json_object_set_new(input, in->name, d);
        }
    }
    return input;
}

/* Runs id with input (stolen); returns its return code. */
static int run(ferry_ctx *ctx, const char *id, json_t *input) {
    const ferry_action *a = action(id);
    int rc;
    assert_non_null(input);
    with_defaults(a, input);
    json_decref(ctx->output);
    ctx->output = NULL;
    ctx->error_code = 0;
    ctx->error[0] = 0;
    rc = a->run(ctx, input);
    json_decref(input);
    if (rc)
        assert_int_equal(rc, ctx->error_code);
    return rc;
}

static void run_ok(ferry_ctx *ctx, const char *id, json_t *input) {
    int rc = run(ctx, id, input);
    if (rc)
        fail_msg("%s: %s: %s", id, ferry_err_name(rc), ctx->error);
}

static json_t *sq_json(const char *sq) {
    char *text = strdup(sq);
    json_error_t je;
    json_t *v;
    for (char *p = text; *p; p++)
        if (*p == '\'')
            *p = '"';
    v = json_loads(text, JSON_DECODE_ANY, &je);
    if (!v)
        fail_msg("bad test JSON (%s): %s", je.text, text);
    free(text);
    return v;
}

#define assert_json(got, want) assert_json_at((got), (want), __FILE__, __LINE__)
static void assert_json_at(const json_t *got, const char *want_sq,
                           const char *file, int line) {
    json_t *want = sq_json(want_sq);
    if (!got || !json_equal(got, want)) {
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

static void assert_error(ferry_ctx *ctx, int rc, int code, const char *sub) {
    if (rc != code)
        fail_msg("want %s, got %s: %s", ferry_err_name(code),
                 ferry_err_name(rc), ctx->error);
    if (!strstr(ctx->error, sub))
        fail_msg("'%s' does not say '%s'", ctx->error, sub);
}

/* The last log line's fields.mode. */
static const char *last_mode(ferry_ctx *ctx) {
    json_t *l = json_array_get(ctx->logs, json_array_size(ctx->logs) - 1);
    return json_string_value(
        json_object_get(json_object_get(l, "fields"), "mode"));
}

static const char *readings =
    "<?xml version='1.0'?>\n"
    "<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'>"
    "<soap:Body><GetReadingsResponse xmlns='urn:example:sensors'>\n"
    "<Reading><SensorId>s-01</SensorId><Time>2026-11-27T00:00:00Z</Time>"
    "<Celsius>21.5</Celsius></Reading>\n"
    "<Reading><SensorId>s-02</SensorId><Time>2026-11-27T00:07:00Z</Time>"
    "<Celsius>19</Celsius></Reading>\n"
    "<Reading><SensorId>s-01</SensorId><Time>2026-11-27T00:15:00Z</Time>"
    "<Celsius>-2.5</Celsius></Reading>\n"
    "</GetReadingsResponse></soap:Body></soap:Envelope>\n";

static json_t *readings_input(json_t *xml, const char *select,
                              const char *mode) {
    json_t *in = json_pack("{s:o, s:{s:s, s:s}, s:b}", "xml", xml, "namespaces",
                           "s", "urn:example:sensors", "soap",
                           "http://schemas.xmlsoap.org/soap/envelope/",
                           "coerce_numbers", 1);
    if (select)
        json_object_set_new(in, "select", json_string(select));
    if (mode)
        json_object_set_new(in, "mode", json_string(mode));
    return in;
}

/* ---- tests ---- */

static void test_description(void **state) {
    (void)state;
    static const char *const ids[] = {"xml.to_json", "xml.from_json",
                                      "xml.xpath", "xml.xslt"};
    int n = 0;
    assert_string_equal(comp->name, "xml");
    for (const ferry_action *a = comp->actions; a->id; a++, n++) {
        assert_string_equal(a->id, ids[n]);
        assert_true(a->flags & FERRY_ACTION_IDEMPOTENT);
    }
    assert_int_equal(n, 4);
}

static const char *quarter = "/soap:Envelope/soap:Body/s:GetReadingsResponse/"
                             "s:Reading[substring(s:Time, 15, 2) mod 15 = 0]";
static const char *quarter_json =
    "[{'SensorId': 's-01', 'Time': '2026-11-27T00:00:00Z', 'Celsius': 21.5},"
    " {'SensorId': 's-01', 'Time': '2026-11-27T00:15:00Z', 'Celsius': -2.5}]";

static void test_to_json(void **state) {
    (void)state;
    ferry_ctx *ctx = ctx_new();
    json_t *ref;

    run_ok(ctx, "xml.to_json", json_pack("{s:s}", "xml", "<r a='1'>x</r>"));
    assert_json(ctx->output, "{'r': {'@a': '1', '#text': 'x'}}");

    /* The same select from a string and a blob, streamed and from the
     * tree. */
    run_ok(ctx, "xml.to_json",
           readings_input(json_string(readings), quarter, NULL));
    assert_json(ctx->output, quarter_json);
    assert_string_equal(last_mode(ctx), "stream");
    ref = host.blob_from(ctx, readings, strlen(readings), "application/xml");
    run_ok(ctx, "xml.to_json", readings_input(json_incref(ref), quarter, NULL));
    assert_json(ctx->output, quarter_json);
    assert_string_equal(last_mode(ctx), "stream");
    run_ok(ctx, "xml.to_json",
           readings_input(json_incref(ref), quarter, "tree"));
    assert_json(ctx->output, quarter_json);
    assert_string_equal(last_mode(ctx), "tree");
    /* Outside the streaming subset: the tree, or an error if streaming
     * was asked for. */
    run_ok(ctx, "xml.to_json",
           readings_input(json_incref(ref), "//s:Reading[last()]", NULL));
    assert_json(ctx->output, "[{'SensorId': 's-01', 'Time': "
                             "'2026-11-27T00:15:00Z', 'Celsius': -2.5}]");
    assert_string_equal(last_mode(ctx), "tree");
    assert_error(
        ctx,
        run(ctx, "xml.to_json",
            readings_input(json_incref(ref), "//s:Reading[last()]", "stream")),
        FERRY_EINVAL, "streaming subset");
    /* A whole blob. */
    run_ok(ctx, "xml.to_json", json_pack("{s:O}", "xml", ref));
    assert_true(json_is_object(json_object_get(ctx->output, "Envelope")));

    /* counts: how many were selected and, streamed, how many the path
     * matched before its predicate (3 readings, 2 on the quarter hour). */
    json_t *in = readings_input(json_incref(ref), quarter, "stream");
    json_object_set_new(in, "counts", json_true());
    run_ok(ctx, "xml.to_json", in);
    char *want = NULL;
    assert_true(asprintf(&want, "{'nodes': %s, 'selected': 2, 'candidates': 3}",
                         quarter_json) > 0);
    assert_json(ctx->output, want);
    free(want);
    in = readings_input(json_incref(ref), quarter, "tree");
    json_object_set_new(in, "counts", json_true());
    run_ok(ctx, "xml.to_json", in);
    assert_int_equal(
        json_integer_value(json_object_get(ctx->output, "selected")), 2);
    assert_true(json_is_null(json_object_get(ctx->output, "candidates")));
    assert_int_equal(json_array_size(json_object_get(ctx->output, "nodes")), 2);
    json_decref(ref);
    ctx_free(ctx);
}

static void test_to_json_errors(void **state) {
    (void)state;
    ferry_ctx *ctx = ctx_new();
    assert_error(ctx,
                 run(ctx, "xml.to_json",
                     json_pack("{s:s, s:b}", "xml", "<r/>", "counts", 1)),
                 FERRY_EINVAL, "option counts needs select");
    assert_error(ctx,
                 run(ctx, "xml.to_json",
                     json_pack("{s:s, s:s, s:s}", "xml", "<r/>", "select", "/r",
                               "counts", "yes")),
                 FERRY_EINVAL, "option counts must be a boolean");
    assert_error(ctx, run(ctx, "xml.to_json", json_pack("{s:i}", "xml", 1)),
                 FERRY_EINVAL, "xml must be a string or a blob reference");
    assert_error(ctx,
                 run(ctx, "xml.to_json",
                     json_pack("{s:{s:s}, s:s}", "xml", "$blob", "nope",
                               "select", "/r")),
                 FERRY_ENOTFOUND, "no blob nope");
    assert_error(
        ctx,
        run(ctx, "xml.to_json", json_pack("{s:{s:s}}", "xml", "$blob", "nope")),
        FERRY_ENOTFOUND, "nope");
    assert_error(ctx,
                 run(ctx, "xml.to_json",
                     json_pack("{s:s, s:s}", "xml", "<r/>", "names", "full")),
                 FERRY_EINVAL, "option names");
    assert_error(ctx,
                 run(ctx, "xml.to_json",
                     json_pack("{s:s, s:s}", "xml", "<r/>", "mode", "fast")),
                 FERRY_EINVAL, "option mode");
    assert_error(ctx,
                 run(ctx, "xml.to_json",
                     json_pack("{s:s, s:s}", "xml", "<r/>", "mode", "stream")),
                 FERRY_EINVAL, "needs select");
    assert_error(
        ctx,
        run(ctx, "xml.to_json",
            json_pack("{s:s, s:{s:i}}", "xml", "<r/>", "namespaces", "a", 1)),
        FERRY_EINVAL, "option namespaces");
    assert_error(ctx,
                 run(ctx, "xml.to_json",
                     json_pack("{s:s, s:s}", "xml", "<r/>", "select", "/r[")),
                 FERRY_EINVAL, "select");
    assert_error(
        ctx,
        run(ctx, "xml.to_json",
            json_pack("{s:s, s:s}", "xml", "<r/>", "select", "count(/r)")),
        FERRY_EINVAL, "select must pick nodes; it gives a number");
    /* Malformed: line, column and libxml2's message, from the tree and
     * from the stream. */
    assert_error(
        ctx,
        run(ctx, "xml.to_json", json_pack("{s:s}", "xml", "<r>\n<a>\n</r>")),
        FERRY_EPARSE,
        "xml: line 3, column 5: Opening and ending tag "
        "mismatch: a line 2 and r");
    assert_false(ctx->retryable);
    assert_error(
        ctx,
        run(ctx, "xml.to_json",
            json_pack("{s:s, s:s}", "xml", "<r>\n<a>\n</r>", "select", "/r/a")),
        FERRY_EPARSE,
        "xml: line 3, column 5: Opening and ending tag "
        "mismatch: a line 2 and r");
    ctx_free(ctx);
}

static char marker_path[256];
static const char *marker = "MARKER-5b2d9e11-never-read";

static void write_marker(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(marker_path, sizeof(marker_path), "%s/ferry-xml-marker-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(marker_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, marker, strlen(marker)),
                     (ssize_t)strlen(marker));
    close(fd);
}

static void assert_no_marker(ferry_ctx *ctx) {
    char *out = ctx->output ? json_dumps(ctx->output, JSON_ENCODE_ANY) : NULL;
    assert_null(strstr(ctx->error, marker));
    if (out)
        assert_null(strstr(out, marker));
    free(out);
    for (size_t i = 0; i < json_array_size(ctx->logs); i++)
        assert_null(strstr(json_string_value(json_object_get(
                               json_array_get(ctx->logs, i), "message")),
                           marker));
}

static void test_xxe(void **state) {
    (void)state;
    ferry_ctx *ctx = ctx_new();
    char doc[1024];
    json_t *ref;
    write_marker();
    snprintf(doc, sizeof(doc),
             "<?xml version='1.0'?>\n<!DOCTYPE r [\n"
             "  <!ENTITY x SYSTEM 'file://%s'>\n]>\n<r>&x;</r>",
             marker_path);
    ref = host.blob_from(ctx, doc, strlen(doc), "application/xml");
    assert_error(ctx, run(ctx, "xml.to_json", json_pack("{s:s}", "xml", doc)),
                 FERRY_EUNSUPPORTED,
                 "xml: line 3: the document declares the external entity 'x' "
                 "(a SYSTEM identifier); documents that declare entities are "
                 "refused");
    assert_false(ctx->retryable);
    assert_no_marker(ctx);
    assert_error(ctx,
                 run(ctx, "xml.to_json",
                     json_pack("{s:O, s:s}", "xml", ref, "select", "/r")),
                 FERRY_EUNSUPPORTED, "external entity 'x'");
    assert_no_marker(ctx);
    assert_error(
        ctx,
        run(ctx, "xml.xpath",
            json_pack("{s:O, s:s}", "xml", ref, "expression", "string(/r)")),
        FERRY_EUNSUPPORTED, "external entity 'x'");
    assert_no_marker(ctx);
    assert_error(ctx,
                 run(ctx, "xml.xslt",
                     json_pack("{s:s, s:O}", "xml", "<r/>", "stylesheet", ref)),
                 FERRY_EUNSUPPORTED, "stylesheet: line 3");
    assert_no_marker(ctx);
    json_decref(ref);
    unlink(marker_path);
    ctx_free(ctx);
}

static void test_billion_laughs(void **state) {
    (void)state;
    ferry_ctx *ctx = ctx_new();
    char doc[4096];
    size_t n = 0;
    n += (size_t)snprintf(doc + n, sizeof(doc) - n,
                          "<!DOCTYPE lolz [<!ENTITY lol 'lol'>");
    for (int i = 1; i <= 9; i++) {
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "<!ENTITY lol%d '", i);
        for (int k = 0; k < 10; k++)
            n += (size_t)snprintf(doc + n, sizeof(doc) - n, "&lol%.0d;", i - 1);
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "'>");
    }
    snprintf(doc + n, sizeof(doc) - n, "]><lolz>&lol9;</lolz>");
    time_t t0 = time(NULL);
    assert_error(ctx, run(ctx, "xml.to_json", json_pack("{s:s}", "xml", doc)),
                 FERRY_EUNSUPPORTED, "declares the entity 'lol'");
    assert_error(ctx,
                 run(ctx, "xml.to_json",
                     json_pack("{s:s, s:s}", "xml", doc, "select", "//lolz")),
                 FERRY_EUNSUPPORTED, "declares the entity 'lol'");
    assert_true(time(NULL) - t0 <= 1);
    ctx_free(ctx);
}

static void test_xpath(void **state) {
    (void)state;
    ferry_ctx *ctx = ctx_new();
    json_t *ref = host.blob_from(ctx, readings, strlen(readings), NULL);
    static const struct {
        const char *expr, *as, *want;
    } cases[] = {
        {"count(//s:Reading)", "json", "3"},
        {"sum(//s:Celsius)", "json", "38"},
        {"sum(//s:Celsius) div 3", "json", "12.666666666666666"},
        {"//s:Reading[1]/s:Celsius > 20", "json", "true"},
        {"string(//s:Reading[2]/s:SensorId)", "json", "'s-02'"},
        {"//s:Reading[s:SensorId = 's-02']", "json",
         "[{'SensorId': 's-02', 'Time': '2026-11-27T00:07:00Z', "
         "'Celsius': 19}]"},
        {"//s:Reading[s:SensorId = 's-02']", "string",
         "['s-022026-11-27T00:07:00Z19']"},
        {"//s:SensorId/text()", "json", "['s-01', 's-02', 's-01']"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *in = readings_input(json_incref(ref), NULL, NULL);
        json_object_set_new(in, "expression", json_string(cases[i].expr));
        json_object_set_new(in, "as", json_string(cases[i].as));
        run_ok(ctx, "xml.xpath", in);
        assert_json(ctx->output, cases[i].want);
    }
    assert_error(
        ctx,
        run(ctx, "xml.xpath",
            json_pack("{s:s, s:s}", "xml", "<r/>", "expression", "//q:a")),
        FERRY_EINVAL, "expression: Undefined namespace prefix");
    assert_error(
        ctx,
        run(ctx, "xml.xpath",
            json_pack("{s:s, s:s}", "xml", "<r/>", "expression", "1 +")),
        FERRY_EINVAL, "expression");
    assert_error(ctx,
                 run(ctx, "xml.xpath",
                     json_pack("{s:s, s:s, s:s}", "xml", "<r/>", "expression",
                               "/r", "as", "xml")),
                 FERRY_EINVAL, "option as");
    json_decref(ref);
    ctx_free(ctx);
}

static const char *stylesheet =
    "<xsl:stylesheet version='1.0' "
    "xmlns:xsl='http://www.w3.org/1999/XSL/Transform' "
    "xmlns:s='urn:example:sensors'>\n"
    "<xsl:output method='text'/>\n"
    "<xsl:param name='sensor'/>\n"
    "<xsl:param name='offset' select='0'/>\n"
    "<xsl:param name='loud' select='false()'/>\n"
    "<xsl:template match='/'>\n"
    "<xsl:for-each select='//s:Reading[s:SensorId = $sensor]'>"
    "<xsl:value-of select='s:Celsius * 1.8 + 32 + $offset'/>"
    "<xsl:if test='$loud'>!</xsl:if><xsl:text>;</xsl:text>"
    "</xsl:for-each>\n"
    "</xsl:template>\n"
    "</xsl:stylesheet>\n";

static void test_xslt(void **state) {
    (void)state;
    ferry_ctx *ctx = ctx_new();
    json_t *sref = host.blob_from(ctx, stylesheet, strlen(stylesheet), NULL);
    json_t *ref;

    run_ok(ctx, "xml.xslt",
           json_pack("{s:s, s:s, s:{s:s}}", "xml", readings, "stylesheet",
                     stylesheet, "params", "sensor", "s-01"));
    assert_json(ctx->output, "'70.7;27.5;'");
    run_ok(ctx, "xml.xslt",
           json_pack("{s:s, s:O, s:{s:s, s:f, s:b}, s:s}", "xml", readings,
                     "stylesheet", sref, "params", "sensor", "s-02", "offset",
                     0.5, "loud", 1, "output", "blob"));
    ref = ctx->output;
    ctx->output = NULL;
    assert_string_equal(json_string_value(json_object_get(ref, "content_type")),
                        "text/plain");
    const void *data;
    size_t len;
    assert_int_equal(host.blob_data(ctx, ref, &data, &len), 0);
    assert_int_equal(len, strlen("66.7!;"));
    assert_memory_equal(data, "66.7!;", len);
    json_decref(ref);

    /* A string parameter is a literal, whatever it holds. */
    run_ok(ctx, "xml.xslt",
           json_pack("{s:s, s:s, s:{s:s}}", "xml", readings, "stylesheet",
                     stylesheet, "params", "sensor", "') or ('1"));
    assert_json(ctx->output, "''");

    assert_error(ctx,
                 run(ctx, "xml.xslt",
                     json_pack("{s:s, s:s, s:{s:[]}}", "xml", readings,
                               "stylesheet", stylesheet, "params", "sensor")),
                 FERRY_EINVAL, "params.sensor must be");
    assert_error(ctx,
                 run(ctx, "xml.xslt",
                     json_pack("{s:s, s:s}", "xml", readings, "stylesheet",
                               "<not-xslt/>")),
                 FERRY_EINVAL, "stylesheet");
    assert_error(ctx,
                 run(ctx, "xml.xslt",
                     json_pack("{s:s, s:s}", "xml", readings, "stylesheet",
                               "<xsl:stylesheet")),
                 FERRY_EPARSE, "stylesheet: line 1");
    assert_error(
        ctx,
        run(ctx, "xml.xslt",
            json_pack("{s:s, s:s}", "xml", "<r>", "stylesheet", stylesheet)),
        FERRY_EPARSE, "xml: line 1");
    /* xsl:message: logged; with terminate, the step fails with it. */
    run_ok(ctx, "xml.xslt",
           json_pack("{s:s, s:s}", "xml", "<r/>", "stylesheet",
                     "<xsl:stylesheet version='1.0' "
                     "xmlns:xsl='http://www.w3.org/1999/XSL/Transform'>"
                     "<xsl:template match='/'><xsl:message>look "
                     "here</xsl:message><out/></xsl:template>"
                     "</xsl:stylesheet>"));
    assert_json(ctx->output, "'<?xml version=\\u00221.0\\u0022?>\\n<out/>\\n'");
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(ctx->logs, json_array_size(ctx->logs) - 1),
            "message")),
        "look here");
    assert_error(ctx,
                 run(ctx, "xml.xslt",
                     json_pack("{s:s, s:s}", "xml", "<r/>", "stylesheet",
                               "<xsl:stylesheet version='1.0' "
                               "xmlns:xsl='http://www.w3.org/1999/XSL/"
                               "Transform'><xsl:template match='/'>"
                               "<xsl:message terminate='yes'>stop "
                               "now</xsl:message></xsl:template>"
                               "</xsl:stylesheet>")),
                 FERRY_EFAILED, "stop now");
    json_decref(sref);
    ctx_free(ctx);
}

static void test_xslt_security(void **state) {
    (void)state;
    ferry_ctx *ctx = ctx_new();
    char xsl[2048], out_path[300];
    struct stat sb;
    write_marker();

    /* document() of a local file. */
    snprintf(xsl, sizeof(xsl),
             "<xsl:stylesheet version='1.0' "
             "xmlns:xsl='http://www.w3.org/1999/XSL/Transform'>"
             "<xsl:template match='/'><got><xsl:value-of "
             "select=\"document('file://%s')\"/></got></xsl:template>"
             "</xsl:stylesheet>",
             marker_path);
    int rc = run(ctx, "xml.xslt",
                 json_pack("{s:s, s:s}", "xml", "<r/>", "stylesheet", xsl));
    assert_no_marker(ctx);
    if (rc == 0)
        assert_json(ctx->output,
                    "'<?xml version=\\u00221.0\\u0022?>\\n<got/>\\n'");
    else
        assert_error(ctx, rc, FERRY_EFAILED, "refused");

    /* xsl:import and xsl:include. */
    snprintf(xsl, sizeof(xsl),
             "<xsl:stylesheet version='1.0' "
             "xmlns:xsl='http://www.w3.org/1999/XSL/Transform'>"
             "<xsl:import href='file://%s'/>"
             "<xsl:template match='/'><x/></xsl:template></xsl:stylesheet>",
             marker_path);
    assert_error(ctx,
                 run(ctx, "xml.xslt",
                     json_pack("{s:s, s:s}", "xml", "<r/>", "stylesheet", xsl)),
                 FERRY_EINVAL, "stylesheet");
    assert_no_marker(ctx);
    snprintf(xsl, sizeof(xsl),
             "<xsl:stylesheet version='1.0' "
             "xmlns:xsl='http://www.w3.org/1999/XSL/Transform'>"
             "<xsl:include href='file://%s'/></xsl:stylesheet>",
             marker_path);
    assert_error(ctx,
                 run(ctx, "xml.xslt",
                     json_pack("{s:s, s:s}", "xml", "<r/>", "stylesheet", xsl)),
                 FERRY_EINVAL, "stylesheet");
    assert_no_marker(ctx);

    /* Writing a file (xsl:document, XSLT 1.1). */
    snprintf(out_path, sizeof(out_path), "%s.written", marker_path);
    snprintf(xsl, sizeof(xsl),
             "<xsl:stylesheet version='1.1' "
             "xmlns:xsl='http://www.w3.org/1999/XSL/Transform'>"
             "<xsl:template match='/'><xsl:document href='%s'>"
             "<w/></xsl:document><done/></xsl:template></xsl:stylesheet>",
             out_path);
    run(ctx, "xml.xslt",
        json_pack("{s:s, s:s}", "xml", "<r/>", "stylesheet", xsl));
    assert_int_equal(stat(out_path, &sb), -1);
    unlink(out_path);
    unlink(marker_path);
    ctx_free(ctx);
}

static void test_from_json(void **state) {
    (void)state;
    ferry_ctx *ctx = ctx_new();
    json_t *value = sq_json("{'soap:Envelope': {'soap:Body': {'s:R': "
                            "{'@id': 7, 's:Reading': [{'s:T': 1}, "
                            "{'s:T': 2}]}}}}");
    json_t *ns = json_pack("{s:s, s:s}", "s", "urn:example:sensors", "soap",
                           "http://schemas.xmlsoap.org/soap/envelope/");
    run_ok(ctx, "xml.from_json",
           json_pack("{s:O, s:O, s:b}", "value", value, "namespaces", ns,
                     "declaration", 0));
    assert_json(ctx->output,
                "'<soap:Envelope xmlns:s=\\u0022urn:example:sensors\\u0022 "
                "xmlns:soap=\\u0022http://schemas.xmlsoap.org/soap/envelope/"
                "\\u0022><soap:Body><s:R id=\\u00227\\u0022><s:Reading><s:T>1"
                "</s:T></s:Reading><s:Reading><s:T>2</s:T></s:Reading></s:R>"
                "</soap:Body></soap:Envelope>\\n'");
    /* To a blob, and back through to_json from that blob. */
    run_ok(ctx, "xml.from_json",
           json_pack("{s:O, s:O, s:s, s:b}", "value", value, "namespaces", ns,
                     "output", "blob", "pretty", 1));
    json_t *ref = ctx->output;
    ctx->output = NULL;
    assert_string_equal(json_string_value(json_object_get(ref, "content_type")),
                        "application/xml");
    run_ok(ctx, "xml.to_json",
           json_pack("{s:O, s:O, s:s, s:b}", "xml", ref, "namespaces", ns,
                     "names", "prefixed", "coerce_numbers", 1));
    assert_true(json_equal(ctx->output, value));
    run_ok(ctx, "xml.to_json",
           json_pack("{s:O, s:O, s:s, s:s}", "xml", ref, "namespaces", ns,
                     "select", "//s:Reading", "mode", "stream"));
    assert_json(ctx->output, "[{'T': '1'}, {'T': '2'}]");
    assert_error(ctx,
                 run(ctx, "xml.from_json",
                     json_pack("{s:{s:i, s:i}}", "value", "a", 1, "b", 2)),
                 FERRY_EINVAL, "one member");
    assert_error(ctx,
                 run(ctx, "xml.from_json",
                     json_pack("{s:i, s:s}", "value", 1, "output", "file")),
                 FERRY_EINVAL, "option output");
    json_decref(ref);
    json_decref(value);
    json_decref(ns);
    ctx_free(ctx);
}

/* ---- a large document, generated as it is read ---- */

struct gen {
    size_t target; /* bytes of records to produce, about */
    size_t produced;
    long record;
    int state; /* 0 head, 1 records, 2 tail, 3 done */
    char buf[512];
    size_t len, off;
    /* Resident memory seen while reading. */
    long rss_max_kb;
    unsigned reads;
};

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void gen_rewind(gen *g) {
    g->produced = 0;
    g->record = 0;
    g->state = 0;
    g->len = g->off = 0;
}

/* 30 sensors, one reading a minute each, day after day. */
static void gen_fill(gen *g) {
    if (g->state == 0) {
        g->len = (size_t)snprintf(
            g->buf, sizeof g->buf,
            "<?xml version='1.0' encoding='UTF-8'?>\n<soap:Envelope "
            "xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'>"
            "<soap:Body><GetReadingsResponse xmlns='urn:example:sensors'>\n");
        g->state = 1;
    } else if (g->state == 1 && g->produced < g->target) {
        long r = g->record++;
        long sensor = r % 30, minute = (r / 30) % 1440, day = r / 43200;
        g->len = (size_t)snprintf(
            g->buf, sizeof g->buf,
            "  <Reading>\n    <SensorId>s-%02ld</SensorId>\n"
            "    <Time>2026-%02ld-%02ldT%02ld:%02ld:00Z</Time>\n"
            "    <Celsius>%ld.%ld</Celsius>\n  </Reading>\n",
            sensor, 1 + day / 28 % 12, 1 + day % 28, minute / 60, minute % 60,
            18 + r % 7, r % 10);
        g->produced += g->len;
    } else if (g->state <= 2) {
        g->len = (size_t)snprintf(
            g->buf, sizeof g->buf,
            "</GetReadingsResponse></soap:Body></soap:Envelope>\n");
        g->state = 3;
    } else {
        g->len = 0;
    }
    g->off = 0;
}

static long gen_read(gen *g, void *buf, size_t len) {
    size_t n = 0;
    if ((g->reads++ & 15) == 0) {
        long kb = rss_kb();
        if (kb > g->rss_max_kb)
            g->rss_max_kb = kb;
    }
    while (n < len) {
        if (g->off == g->len) {
            gen_fill(g);
            if (!g->len)
                break;
        }
        size_t k = g->len - g->off;
        if (k > len - n)
            k = len - n;
        memcpy((char *)buf + n, g->buf + g->off, k);
        g->off += k;
        n += k;
    }
    return (long)n;
}

static void test_large_stream(void **state) {
    (void)state;
    ferry_ctx *ctx = ctx_new();
    /* 200 MB; 100 under AddressSanitizer, where every allocation libxml2
     * makes costs several times more (FERRY_XML_LARGE_MB overrides). */
    const char *env = getenv("FERRY_XML_LARGE_MB");
#ifdef UNDER_ASAN
    size_t mb = 100;
#else
    size_t mb = 200;
#endif
    if (env && *env)
        mb = (size_t)atol(env);
    gen g = {.target = mb << 20};
    json_t *ref = add_blob(ctx, NULL, 0, "application/xml", &g);
    time_t t0 = time(NULL);
    long before = rss_kb();
    g.rss_max_kb = before;
    /* Sensor 7 at noon: one reading a day. */
    run_ok(ctx, "xml.to_json",
           readings_input(json_incref(ref),
                          "/soap:Envelope/soap:Body/s:GetReadingsResponse/"
                          "s:Reading[s:SensorId = 's-07' and "
                          "substring(s:Time, 12, 5) = '12:00']",
                          "stream"));
    long after = rss_kb();
    long days = (g.record + 43199) / 43200;
    long noon_days = g.record / 43200 + (g.record % 43200 > 720 * 30 + 7);
    print_message("streamed %zu MB (%ld readings, %ld days) in %lds; "
                  "resident memory %ld KB before, %ld KB at most, %ld KB "
                  "after\n",
                  g.produced >> 20, g.record, days, (long)(time(NULL) - t0),
                  before, g.rss_max_kb, after);
    assert_int_equal(json_array_size(ctx->output), noon_days);
    assert_json(json_array_get(ctx->output, 0),
                "{'SensorId': 's-07', 'Time': '2026-01-01T12:00:00Z', "
                "'Celsius': 23.7}");
    assert_true(g.produced >= mb << 20);
    /* The selected nodes are a few KB: everything above is the reader's. */
    assert_true(g.rss_max_kb - before < 64 * 1024);
    assert_true(after - before < 64 * 1024);
    json_decref(ref);
    ctx_free(ctx);
}

static void test_cancel(void **state) {
    (void)state;
    ferry_ctx *ctx = ctx_new();
    gen g = {.target = 8 << 20};
    json_t *ref = add_blob(ctx, NULL, 0, "application/xml", &g);
    ctx->cancel = 1;
    assert_error(
        ctx,
        run(ctx, "xml.to_json",
            readings_input(json_incref(ref), "//s:Reading[false()]", NULL)),
        FERRY_ECANCELLED, "cancelled");
    assert_true(g.produced < (4 << 20));
    json_decref(ref);
    ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_description),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_to_json_errors),
        cmocka_unit_test(test_xxe),
        cmocka_unit_test(test_billion_laughs),
        cmocka_unit_test(test_xpath),
        cmocka_unit_test(test_xslt),
        cmocka_unit_test(test_xslt_security),
        cmocka_unit_test(test_from_json),
        cmocka_unit_test(test_large_stream),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
