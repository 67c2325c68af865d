/*
 * csv.parse and csv.generate run by the real engine (flow_execute), loaded
 * from a components directory holding csv.so and csvt.so (the fixture in
 * fixtures/csvt.c that makes blobs): text and blob input, generate to a
 * blob and parse it back, a malformed record failing the step, skip mode's
 * log line.
 *
 * `test_csv_flow large` runs only the large test, in a process of its
 * own so that its peak memory is its own: csvt.big writes a 50 MB CSV
 * blob and csv.parse reads it; the process's peak resident size may grow
 * by the parsed rows plus a small part of the input, never by the input.
 */
#include "flow/flow.h"

#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct fx {
    char dir[PATH_MAX]; /* temporary; holds comps/ and the blobs */
    abi_registry reg;
    flow_integration *ig;
    flow_instance *in;
    flow_result res;
    json_t *logs; /* [{path, level, message}] */
} fx;

static void on_log(void *ud, const char *path, int level, const char *msg) {
    fx *f = ud;
    json_array_append_new(f->logs, json_pack("{s:s?, s:i, s:s}", "path", path,
                                             "level", level, "message", msg));
}

static void link_into(const char *dir, const char *target, const char *name) {
    char *path = NULL;
    assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
    if (symlink(target, path))
        fail_msg("symlink %s: %m", path);
    free(path);
}

static fx *fx_new(void) {
    fx *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    char comps[PATH_MAX * 2], *err = NULL;
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "%s/ferry-csv-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(comps, sizeof(comps), "%s/comps", f->dir);
    assert_int_equal(mkdir(comps, 0700), 0);
    link_into(comps, CSV_SO, "csv.so");
    link_into(comps, CSVT_SO, "csvt.so");
    if (flow_load_registry(&f->reg, comps, &err))
        fail_msg("registry: %s", err ? err : "?");
    for (size_t i = 0; i < f->reg.nrefused; i++)
        fail_msg("refused %s: %s", f->reg.refused[i].path,
                 f->reg.refused[i].reason);
    assert_non_null(abi_find_component(&f->reg, "csv"));
    f->logs = json_array();
    return f;
}

static int rm_cb(const char *path, const struct stat *sb, int flag,
                 struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void fx_free(fx *f) {
    flow_result_clear(&f->res);
    flow_instance_free(f->in);
    flow_integration_free(f->ig);
    abi_registry_free(&f->reg);
    json_decref(f->logs);
    nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
}

static json_t *js(const char *sq) {
    char *text = strdup(sq);
    json_error_t e;
    for (char *p = text; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad test JSON (%s): %s", e.text, text);
    free(text);
    return v;
}

/* Loads an integration of one flow with these steps (single-quoted JSON). */
static void fx_load(fx *f, const char *steps_sq) {
    flow_diags d = {0};
    json_t *doc = js("{'name': 'csv-test', 'version': '1.0.0', 'flows': "
                     "[{'name': 'main', 'trigger': {'type': 'manual'}}]}");
    json_object_set_new(json_array_get(json_object_get(doc, "flows"), 0),
                        "steps", js(steps_sq));
    f->ig = flow_integration_from_json(doc, NULL, &f->reg, &d);
    if (f->ig)
        f->in = flow_instance_from_json(NULL, NULL, f->ig, &f->reg, &d);
    for (size_t i = 0; i < d.n; i++)
        print_error("%s: %s\n", d.items[i].path, d.items[i].message);
    assert_int_equal(d.n, 0);
    assert_non_null(f->in);
    flow_diags_free(&d);
    json_decref(doc);
}

/* Runs the flow with trigger (borrowed, may be NULL); returns the status. */
static const char *fx_run(fx *f, json_t *trigger) {
    flow_exec_opts o = {.tmpdir = f->dir, .on_log = on_log, .ud = f};
    flow_result_clear(&f->res);
    if (flow_execute(f->ig, f->in, flow_find(f->ig, NULL), trigger, &o,
                     &f->res))
        fail_msg("flow_execute: %s", f->res.error_message);
    return f->res.status;
}

static void assert_succeeded(const fx *f) {
    if (strcmp(f->res.status, "succeeded") != 0)
        fail_msg("execution %s at %s: %s: %s", f->res.status,
                 f->res.error_step ? f->res.error_step : "?",
                 ferry_err_name(f->res.error_code),
                 f->res.error_message ? f->res.error_message : "");
}

#define assert_json(got, want_sq)                                              \
    do {                                                                       \
        json_t *want_ = js(want_sq);                                           \
        const json_t *got_ = (got);                                            \
        if (!got_ || !json_equal((json_t *)got_, want_)) {                     \
            char *g_ = got_ ? json_dumps(got_, JSON_COMPACT | JSON_ENCODE_ANY) \
                            : NULL;                                            \
            fail_msg("got %s\nwant %s", g_ ? g_ : "(nothing)", want_sq);       \
        }                                                                      \
        json_decref(want_);                                                    \
    } while (0)

static void test_parse_text(void **state) {
    fx *f = fx_new();
    json_t *trigger;
    (void)state;
    fx_load(f, "[{'name': 'p', 'action': 'csv.parse', 'input': {'text': '{{ "
               "trigger.body.csv }}', 'infer_types': true}}]");
    trigger = json_pack("{s:{s:s}}", "body", "csv",
                        "sku,qty,note\r\nA-1,3,\"fragile, \"\"glass\"\"\"\r\n"
                        "B-2,,\r\n");
    fx_run(f, trigger);
    assert_succeeded(f);
    assert_json(f->res.output,
                "{'rows': [{'sku': 'A-1', 'qty': 3, 'note': 'fragile, "
                "\\'glass\\''}, {'sku': 'B-2', 'qty': null, 'note': null}], "
                "'columns': ['sku', 'qty', 'note'], 'count': 2, 'skipped': 0, "
                "'errors': []}");
    json_decref(trigger);
    fx_free(f);
}

static void test_generate_then_parse_blob(void **state) {
    fx *f = fx_new();
    (void)state;
    fx_load(f, "[{'name': 'gen', 'action': 'csv.generate', 'input': {'rows': "
               "[{'id': 1, 'name': 'Ada', 'formula': '=1+2'}, {'id': 2, "
               "'name': 'line\\nbreak', 'extra': 'x'}], 'output': 'blob'}},"
               " {'name': 'check', 'jq': '{size: .blob.size, ct: "
               ".blob.content_type, text: .text, columns: .columns}', "
               "'input': '{{ steps.gen.output }}'},"
               " {'name': 'parse', 'action': 'csv.parse', 'input': {'blob': "
               "'{{ steps.gen.output.blob }}', 'infer_types': true}},"
               " {'name': 'both', 'jq': '.', 'input': {'gen': '{{ "
               "steps.check.output }}', 'parsed': '{{ steps.parse.output.rows "
               "}}'}}]");
    fx_run(f, NULL);
    assert_succeeded(f);
    assert_json(f->res.output,
                "{'gen': {'size': 56, 'ct': 'text/csv; charset=utf-8', "
                "'text': null, 'columns': ['id', 'name', 'formula', "
                "'extra']}, 'parsed': [{'id': 1, 'name': 'Ada', 'formula': "
                "'\\u0027=1+2', 'extra': null}, {'id': 2, 'name': "
                "'line\\nbreak', 'formula': null, 'extra': 'x'}]}");
    fx_free(f);
}

static void test_generate_text(void **state) {
    fx *f = fx_new();
    (void)state;
    fx_load(f, "[{'name': 'gen', 'action': 'csv.generate', 'input': {'rows': "
               "[['a', 'b,c'], ['-1', 2]], 'columns': ['x', 'y'], 'newline': "
               "'lf'}}]");
    fx_run(f, NULL);
    assert_succeeded(f);
    assert_json(f->res.output, "{'text': 'x,y\\na,\\'b,c\\'\\n\\u0027-1,2\\n', "
                               "'blob': null, 'columns': ['x', 'y'], 'rows': "
                               "2, 'bytes': 18}");
    fx_free(f);
}

static void test_parse_blob_in_pieces(void **state) {
    fx *f = fx_new();
    (void)state;
    fx_load(f, "[{'name': 'b', 'action': 'csvt.blob', 'input': {'text': "
               "'\\ufeffk;v\\r\\n1;\\'x;\\r\\ny\\'\\r\\n2;z', 'parts': 5}},"
               " {'name': 'p', 'action': 'csv.parse', 'input': {'blob': '{{ "
               "steps.b.output }}', 'delimiter': ';', 'header': false}}]");
    fx_run(f, NULL);
    assert_succeeded(f);
    assert_json(json_object_get(f->res.output, "rows"),
                "[['k', 'v'], ['1', 'x;\\r\\ny'], ['2', 'z']]");
    fx_free(f);
}

static void test_malformed_fails_step(void **state) {
    fx *f = fx_new();
    json_t *trigger = json_pack("{s:s}", "body", "a,b\n1,2\n3,4\"\n");
    (void)state;
    fx_load(f, "[{'name': 'p', 'action': 'csv.parse', 'input': {'text': '{{ "
               "trigger.body }}'}}]");
    assert_string_equal(fx_run(f, trigger), "failed");
    assert_string_equal(f->res.error_step, "p");
    assert_int_equal(f->res.error_code, FERRY_EPARSE);
    assert_string_equal(f->res.error_message,
                        "line 3, column 4: quote character in an unquoted "
                        "field (a field with a quote must be quoted, and the "
                        "quote doubled)");
    json_decref(trigger);
    fx_free(f);

    /* Options are checked when the step runs, and named. */
    f = fx_new();
    fx_load(f, "[{'name': 'p', 'action': 'csv.parse', 'input': {'text': "
               "'a', 'delimiter': '::'}}]");
    assert_string_equal(fx_run(f, NULL), "failed");
    assert_int_equal(f->res.error_code, FERRY_EINVAL);
    assert_string_equal(f->res.error_message,
                        "delimiter must be one single-byte (ASCII) "
                        "character, got \"::\"");
    fx_free(f);
}

static void test_skip_logs(void **state) {
    fx *f = fx_new();
    json_t *trigger = json_pack("{s:s}", "body", "a,b\n1\n2,3\n");
    (void)state;
    fx_load(f, "[{'name': 'p', 'action': 'csv.parse', 'input': {'text': '{{ "
               "trigger.body }}', 'on_error': 'skip'}}]");
    fx_run(f, trigger);
    assert_succeeded(f);
    assert_json(f->res.output,
                "{'rows': [{'a': '2', 'b': '3'}], 'columns': ['a', 'b'], "
                "'count': 1, 'skipped': 1, 'errors': [{'line': 2, 'column': "
                "2, 'record_line': 2, 'message': 'record has 1 field, "
                "expected 2'}]}");
    assert_json(f->logs,
                "[{'path': 'p', 'level': 30, 'message': 'skipped 1 malformed "
                "record; the first at line 2, column 2: record has 1 field, "
                "expected 2'}, {'path': 'p', 'level': 20, 'message': 'parsed "
                "1 row from 10 bytes'}]");
    json_decref(trigger);
    fx_free(f);
}

/* ---- large input ---- */

/* Fails unless a log line starts with prefix and goes on with n. */
static void assert_logged(const fx *f, const char *prefix, size_t n) {
    size_t i;
    const json_t *l;
    char want[128];
    snprintf(want, sizeof(want), "%s %zu ", prefix, n);
    json_array_foreach(f->logs, i, l) {
        const char *m = json_string_value(json_object_get(l, "message"));
        if (strncmp(m, want, strlen(want)) == 0)
            return;
    }
    fail_msg("no log line starting '%s'", want);
}

/* The process's peak resident size in bytes (VmHWM). */
static size_t peak_rss(void) {
    FILE *s = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    assert_non_null(s);
    while (fgets(line, sizeof(line), s)) {
        if (sscanf(line, "VmHWM: %zu kB", &kb) == 1)
            break;
    }
    fclose(s);
    assert_true(kb > 0);
    return kb * 1024;
}

#define BIG_ROWS 5000
#define BIG_CELL 10000

static void test_large_streamed(void **state) {
    fx *f = fx_new();
    size_t before, grown, out_bytes = 0, in_bytes;
    struct timespec t0, t1;
    (void)state;
    fx_load(f, "[{'name': 'big', 'action': 'csvt.big', 'input': {'rows': 5000, "
               "'cell': 10000}},"
               " {'name': 'p', 'action': 'csv.parse', 'input': {'blob': '{{ "
               "steps.big.output }}'}}]");
    before = peak_rss();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fx_run(f, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_succeeded(f);
    grown = peak_rss() - before;

    const json_t *rows = json_object_get(f->res.output, "rows");
    /* The header, then per row: id, ',"', the cell, '",end\r\n'. */
    in_bytes = strlen("id,payload,note\r\n");
    for (size_t i = 0; i < BIG_ROWS; i++) {
        char id[24];
        in_bytes +=
            (size_t)snprintf(id, sizeof(id), "%zu", i) + 2 + BIG_CELL + 7;
    }
    assert_true(in_bytes > 50 * 1000 * 1000);
    assert_logged(f, "parsed 5000 rows from", in_bytes);
    assert_int_equal(json_array_size(rows), BIG_ROWS);
    for (size_t i = 0; i < BIG_ROWS; i++) {
        const json_t *row = json_array_get(rows, i);
        const json_t *payload = json_object_get(row, "payload");
        char id[24];
        snprintf(id, sizeof(id), "%zu", i);
        assert_string_equal(json_string_value(json_object_get(row, "id")), id);
        assert_string_equal(json_string_value(json_object_get(row, "note")),
                            "end");
        assert_int_equal(json_string_length(payload), (BIG_CELL - 6) / 2 + 6);
        assert_memory_equal(json_string_value(payload), "\"\"ab,\r\nc\"", 9);
        out_bytes += json_string_length(payload);
    }
    /* What was read, held whole, would add in_bytes on top of the rows. */
    fprintf(stderr,
            "large: %zu bytes in %.2f s; rows hold %zu bytes; peak resident "
            "size grew by %zu bytes\n",
            in_bytes,
            (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
            out_bytes, grown);
    if (grown > out_bytes + in_bytes / 2)
        fail_msg("peak resident size grew by %zu bytes for %zu bytes of rows "
                 "from %zu bytes of CSV: the input was held in memory",
                 grown, out_bytes, in_bytes);
    fx_free(f);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_text),
        cmocka_unit_test(test_generate_then_parse_blob),
        cmocka_unit_test(test_generate_text),
        cmocka_unit_test(test_parse_blob_in_pieces),
        cmocka_unit_test(test_malformed_fails_step),
        cmocka_unit_test(test_skip_logs),
    };
    const struct CMUnitTest large[] = {
        cmocka_unit_test(test_large_streamed),
    };
    if (argc > 1 && strcmp(argv[1], "large") == 0)
        return cmocka_run_group_tests(large, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
