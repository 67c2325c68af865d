/* The SQLite store against a real file in a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ferry/ferry.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

/* 2026-11-28T07:00:00Z */
#define T0 (1795849200LL * 1000000)

typedef struct fixture {
    char dir[PATH_MAX];
    char path[PATH_MAX + 16];
    store *s;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/ferry-store-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/ferry.db", f->dir);
    char *err = NULL;
    f->s = store_open_sqlite(f->path, &err);
    if (!f->s)
        fail_msg("open: %s", err ? err : "?");
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    store_close(f->s);
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[PATH_MAX + 16];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static sqlite3 *raw_open(const char *path) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int raw_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void raw_exec(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

static void begin(store *s, const char *id, const char *instance,
                  const char *flow, const char *status, int64_t created) {
    store_exec e = {.id = id,
                    .integration = "sensor-export",
                    .instance = instance,
                    .flow = flow,
                    .trigger_json = "{\"kind\":\"manual\"}",
                    .status = status,
                    .created_us = created,
                    .started_us = created};
    int rc = s->vt->exec_begin(s, &e);
    if (rc)
        fail_msg("exec_begin %s: %d %s", id, rc, s->errmsg);
}

static json_t *get(store *s, const char *id) {
    json_t *o = NULL;
    int rc = s->vt->exec_get(s, id, &o);
    if (rc)
        fail_msg("exec_get %s: %d %s", id, rc, s->errmsg);
    assert_non_null(o);
    return o;
}

static const char *str(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("%s is not a string", key);
    return json_string_value(v);
}

static void assert_null_field(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    if (!json_is_null(v))
        fail_msg("%s is not null", key);
}

static json_int_t num(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return json_integer_value(v);
}

static void assert_json_eq(const json_t *got, const char *want_text) {
    json_t *want = json_loads(want_text, JSON_DECODE_ANY, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("got %s, want %s", g ? g : "(null)", want_text);
    }
    json_decref(want);
}

/* ---- schema ---- */

static void test_fresh_db_is_migrated(void **state) {
    fixture *f = *state;
    assert_true(store_schema_version() >= 1);
    sqlite3 *db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"),
                     store_schema_version());
    assert_int_equal(
        raw_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                    " AND name IN ('executions', 'steps', 'logs',"
                    " 'instance_state')"),
        4);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_reopen_keeps_schema_and_data(void **state) {
    fixture *f = *state;
    begin(f->s, "ex_keep", "acme", "export", "running", T0);
    store_close(f->s);

    char *err = NULL;
    f->s = store_open_sqlite(f->path, &err);
    if (!f->s)
        fail_msg("reopen: %s", err);
    store_close(f->s);
    f->s = store_open_sqlite(f->path, &err);
    if (!f->s)
        fail_msg("third open: %s", err);

    sqlite3 *db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"),
                     store_schema_version());
    assert_int_equal(raw_int(db, "SELECT count(*) FROM executions"), 1);
    sqlite3_close(db);
    json_t *o = get(f->s, "ex_keep");
    assert_string_equal(str(o, "instance"), "acme");
    json_decref(o);
}

static void test_newer_schema_refused(void **state) {
    fixture *f = *state;
    store_close(f->s);
    f->s = NULL;
    sqlite3 *db = raw_open(f->path);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d",
             store_schema_version() + 1);
    raw_exec(db, sql);
    sqlite3_close(db);

    char *err = NULL;
    store *s = store_open_sqlite(f->path, &err);
    assert_null(s);
    assert_non_null(err);
    assert_non_null(strstr(err, "newer"));
    free(err);
}

static void test_foreign_db_refused(void **state) {
    fixture *f = *state;
    char other[PATH_MAX + 16];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    sqlite3 *db = raw_open(other);
    raw_exec(db, "PRAGMA application_id = 12345;"
                 " CREATE TABLE notes (body TEXT)");
    sqlite3_close(db);

    char *err = NULL;
    store *s = store_open_sqlite(other, &err);
    assert_null(s);
    assert_non_null(err);
    assert_non_null(strstr(err, "not a ferry database"));
    free(err);
    db = raw_open(other);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master"
                                 " WHERE name = 'executions'"),
                     0);
    sqlite3_close(db);
    unlink(other);
}

static void test_open_bad_path_fails(void **state) {
    fixture *f = *state;
    char bad[PATH_MAX + 32];
    snprintf(bad, sizeof bad, "%s/no/such/dir/ferry.db", f->dir);
    char *err = NULL;
    assert_null(store_open_sqlite(bad, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, bad));
    free(err);
}

/* ---- executions ---- */

static void test_exec_lifecycle(void **state) {
    fixture *f = *state;
    store *s = f->s;
    store_exec e = {.id = "ex_life",
                    .integration = "sensor-export",
                    .instance = "acme",
                    .flow = "export",
                    .trigger_json = "{\"kind\":\"schedule\",\"n\":3}",
                    .status = "running",
                    .created_us = T0 + 100000,
                    .started_us = T0 + 123456};
    assert_int_equal(s->vt->exec_begin(s, &e), 0);

    json_t *o = get(s, "ex_life");
    assert_string_equal(str(o, "id"), "ex_life");
    assert_string_equal(str(o, "integration"), "sensor-export");
    assert_string_equal(str(o, "instance"), "acme");
    assert_string_equal(str(o, "flow"), "export");
    assert_string_equal(str(o, "status"), "running");
    assert_string_equal(str(o, "created"), "2026-11-28T07:00:00.100Z");
    assert_string_equal(str(o, "started"), "2026-11-28T07:00:00.123Z");
    assert_null_field(o, "ended");
    assert_null_field(o, "duration_ms");
    assert_null_field(o, "error_code");
    assert_null_field(o, "output");
    assert_json_eq(json_object_get(o, "trigger"),
                   "{\"kind\":\"schedule\",\"n\":3}");
    assert_int_equal(json_array_size(json_object_get(o, "steps")), 0);
    assert_int_equal(json_array_size(json_object_get(o, "logs")), 0);
    json_decref(o);

    store_exec_end end = {.id = "ex_life",
                          .status = "succeeded",
                          .ended_us = T0 + 1623456 + 61 * 1000000LL,
                          .output_json = "{\"rows\":[1,2]}",
                          .output_size = 14};
    assert_int_equal(s->vt->exec_end(s, &end), 0);
    o = get(s, "ex_life");
    assert_string_equal(str(o, "status"), "succeeded");
    assert_string_equal(str(o, "ended"), "2026-11-28T07:01:02.623Z");
    assert_int_equal(num(o, "duration_ms"), 62500);
    assert_json_eq(json_object_get(o, "output"), "{\"rows\":[1,2]}");
    assert_int_equal(num(o, "output_size"), 14);
    assert_true(json_is_false(json_object_get(o, "output_truncated")));
    assert_null_field(o, "error_code");
    assert_null_field(o, "error_message");
    assert_null_field(o, "error_step");
    json_decref(o);
}

static void test_exec_failure_recorded(void **state) {
    fixture *f = *state;
    store *s = f->s;
    begin(s, "ex_fail", "acme", "export", "running", T0);
    store_exec_end end = {.id = "ex_fail",
                          .status = "failed",
                          .ended_us = T0 + 5000,
                          .error_code = FERRY_ETIMEOUT,
                          .error_message = "sftp.get: no answer in 30s",
                          .error_step = "each[3].fetch"};
    assert_int_equal(s->vt->exec_end(s, &end), 0);
    json_t *o = get(s, "ex_fail");
    assert_string_equal(str(o, "status"), "failed");
    assert_string_equal(str(o, "error_code"), "FERRY_ETIMEOUT");
    assert_string_equal(str(o, "error_message"), "sftp.get: no answer in 30s");
    assert_string_equal(str(o, "error_step"), "each[3].fetch");
    assert_int_equal(num(o, "duration_ms"), 5);
    assert_null_field(o, "output");
    assert_true(json_is_false(json_object_get(o, "output_truncated")));
    json_decref(o);
}

static void test_trigger_that_is_not_json(void **state) {
    fixture *f = *state;
    store_exec e = {.id = "ex_raw",
                    .integration = "i",
                    .instance = "acme",
                    .flow = "export",
                    .trigger_json = "not json {",
                    .status = "queued",
                    .created_us = T0};
    assert_int_equal(f->s->vt->exec_begin(f->s, &e), 0);
    json_t *o = get(f->s, "ex_raw");
    assert_string_equal(str(o, "trigger"), "not json {");
    assert_null_field(o, "started");
    assert_null_field(o, "duration_ms");
    json_decref(o);
}

static void test_steps_and_logs_in_order(void **state) {
    fixture *f = *state;
    store *s = f->s;
    begin(s, "ex_steps", "acme", "export", "running", T0);

    /* Recorded out of order: listed by seq. */
    store_step s2 = {.execution_id = "ex_steps",
                     .seq = 2,
                     .path = "each[0].convert",
                     .name = "convert",
                     .kind = "action",
                     .action = "csv.parse",
                     .status = "failed",
                     .started_us = T0 + 2000,
                     .duration_us = 1500,
                     .input_json = "{\"text\":\"a,b\"}",
                     .input_size = 14,
                     .error_code = FERRY_EPARSE,
                     .error_message = "row 2: unterminated quote",
                     .retryable = 1};
    store_step s1 = {.execution_id = "ex_steps",
                     .seq = 1,
                     .name = "each",
                     .kind = "for_each",
                     .status = "succeeded",
                     .started_us = T0 + 1000,
                     .duration_us = 900,
                     .output_json = "[1]",
                     .output_size = 3};
    assert_int_equal(s->vt->step_record(s, &s2), 0);
    assert_int_equal(s->vt->step_record(s, &s1), 0);

    /* Same timestamp for all: insertion order decides. */
    store_log l1 = {.execution_id = "ex_steps",
                    .ts_us = T0 + 3000,
                    .level = FERRY_LOG_INFO,
                    .message = "started"};
    store_log l2 = {.execution_id = "ex_steps",
                    .step_seq = 2,
                    .step_path = "each[0].convert",
                    .ts_us = T0 + 3000,
                    .level = FERRY_LOG_ERROR,
                    .message = "bad row",
                    .fields_json = "{\"row\":2}"};
    store_log l3 = {.execution_id = "ex_steps",
                    .ts_us = T0 + 3000,
                    .level = FERRY_LOG_DEBUG,
                    .message = "done"};
    assert_int_equal(s->vt->log_append(s, &l1), 0);
    assert_int_equal(s->vt->log_append(s, &l2), 0);
    assert_int_equal(s->vt->log_append(s, &l3), 0);

    json_t *o = get(s, "ex_steps");
    json_t *steps = json_object_get(o, "steps");
    assert_int_equal(json_array_size(steps), 2);
    json_t *a = json_array_get(steps, 0), *b = json_array_get(steps, 1);
    assert_int_equal(num(a, "seq"), 1);
    assert_string_equal(str(a, "path"), "each"); /* defaults to the name */
    assert_string_equal(str(a, "kind"), "for_each");
    assert_null_field(a, "action");
    assert_null_field(a, "input");
    assert_json_eq(json_object_get(a, "output"), "[1]");
    assert_null_field(a, "error_code");
    assert_true(json_is_false(json_object_get(a, "retryable")));
    assert_string_equal(str(a, "started"), "2026-11-28T07:00:00.001Z");

    assert_int_equal(num(b, "seq"), 2);
    assert_string_equal(str(b, "path"), "each[0].convert");
    assert_string_equal(str(b, "name"), "convert");
    assert_string_equal(str(b, "action"), "csv.parse");
    assert_string_equal(str(b, "status"), "failed");
    assert_int_equal(num(b, "duration_us"), 1500);
    assert_json_eq(json_object_get(b, "input"), "{\"text\":\"a,b\"}");
    assert_int_equal(num(b, "input_size"), 14);
    assert_true(json_is_false(json_object_get(b, "input_truncated")));
    assert_string_equal(str(b, "error_code"), "FERRY_EPARSE");
    assert_string_equal(str(b, "error_message"), "row 2: unterminated quote");
    assert_true(json_is_true(json_object_get(b, "retryable")));

    json_t *logs = json_object_get(o, "logs");
    assert_int_equal(json_array_size(logs), 3);
    assert_string_equal(str(json_array_get(logs, 0), "message"), "started");
    assert_string_equal(str(json_array_get(logs, 0), "level"), "info");
    assert_int_equal(num(json_array_get(logs, 0), "step_seq"), 0);
    assert_null_field(json_array_get(logs, 0), "step_path");
    assert_null_field(json_array_get(logs, 0), "fields");
    assert_string_equal(str(json_array_get(logs, 1), "message"), "bad row");
    assert_string_equal(str(json_array_get(logs, 1), "level"), "error");
    assert_string_equal(str(json_array_get(logs, 1), "step_path"),
                        "each[0].convert");
    assert_int_equal(num(json_array_get(logs, 1), "step_seq"), 2);
    assert_json_eq(json_object_get(json_array_get(logs, 1), "fields"),
                   "{\"row\":2}");
    assert_string_equal(str(json_array_get(logs, 1), "ts"),
                        "2026-11-28T07:00:00.003Z");
    assert_string_equal(str(json_array_get(logs, 2), "message"), "done");
    assert_string_equal(str(json_array_get(logs, 2), "level"), "debug");
    json_decref(o);
}

static void test_truncated_payloads_flagged(void **state) {
    fixture *f = *state;
    store *s = f->s;
    begin(s, "ex_trunc", "acme", "export", "running", T0);
    /* A prefix that happens to parse must still come back as text. */
    store_step st = {.execution_id = "ex_trunc",
                     .seq = 1,
                     .name = "count",
                     .status = "succeeded",
                     .input_json = "123",
                     .input_size = 7,
                     .output_json = "[1,2,",
                     .output_size = 4096};
    assert_int_equal(s->vt->step_record(s, &st), 0);
    /* Cut inside the two bytes of "é". */
    store_exec_end end = {.id = "ex_trunc",
                          .status = "succeeded",
                          .ended_us = T0 + 1,
                          .output_json = "\"caf\xc3",
                          .output_size = 1000000};
    assert_int_equal(s->vt->exec_end(s, &end), 0);

    json_t *o = get(s, "ex_trunc");
    assert_string_equal(str(o, "output"), "\"caf\xef\xbf\xbd");
    assert_int_equal(num(o, "output_size"), 1000000);
    assert_true(json_is_true(json_object_get(o, "output_truncated")));
    json_t *step = json_array_get(json_object_get(o, "steps"), 0);
    assert_string_equal(str(step, "input"), "123");
    assert_true(json_is_true(json_object_get(step, "input_truncated")));
    assert_int_equal(num(step, "input_size"), 7);
    assert_string_equal(str(step, "output"), "[1,2,");
    assert_true(json_is_true(json_object_get(step, "output_truncated")));
    assert_int_equal(num(step, "output_size"), 4096);
    json_decref(o);
}

static void test_list_filters_order_limit(void **state) {
    fixture *f = *state;
    store *s = f->s;
    begin(s, "ex_a", "acme", "export", "succeeded", T0 + 1);
    begin(s, "ex_b", "acme", "import", "failed", T0 + 2);
    begin(s, "ex_c", "globex", "export", "failed", T0 + 3);
    begin(s, "ex_d", "acme", "export", "failed", T0 + 4);
    /* Same created time as ex_d: the larger id is newer. */
    begin(s, "ex_e", "globex", "export", "running", T0 + 4);

    json_t *l = NULL;
    assert_int_equal(s->vt->exec_list(s, NULL, &l), 0);
    assert_int_equal(json_array_size(l), 5);
    static const char *const order[] = {"ex_e", "ex_d", "ex_c", "ex_b", "ex_a"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(str(json_array_get(l, i), "id"), order[i]);
    json_t *first = json_array_get(l, 0);
    static const char *const keys[] = {
        "id",          "integration", "instance",   "flow",
        "status",      "created",     "started",    "ended",
        "duration_ms", "duration_us", "error_code", "error_message"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!json_object_get(first, keys[i]))
            fail_msg("list entry has no %s", keys[i]);
    assert_int_equal(json_object_size(first), sizeof keys / sizeof keys[0]);
    json_decref(l);

    store_filter by_instance = {.instance = "acme"};
    assert_int_equal(s->vt->exec_list(s, &by_instance, &l), 0);
    assert_int_equal(json_array_size(l), 3);
    assert_string_equal(str(json_array_get(l, 0), "id"), "ex_d");
    assert_string_equal(str(json_array_get(l, 2), "id"), "ex_a");
    json_decref(l);

    store_filter by_flow_status = {.flow = "export", .status = "failed"};
    assert_int_equal(s->vt->exec_list(s, &by_flow_status, &l), 0);
    assert_int_equal(json_array_size(l), 2);
    assert_string_equal(str(json_array_get(l, 0), "id"), "ex_d");
    assert_string_equal(str(json_array_get(l, 1), "id"), "ex_c");
    json_decref(l);

    store_filter all4 = {.integration = "sensor-export",
                         .instance = "globex",
                         .flow = "export",
                         .status = "running"};
    assert_int_equal(s->vt->exec_list(s, &all4, &l), 0);
    assert_int_equal(json_array_size(l), 1);
    assert_string_equal(str(json_array_get(l, 0), "id"), "ex_e");
    json_decref(l);

    store_filter other_integration = {.integration = "nope"};
    assert_int_equal(s->vt->exec_list(s, &other_integration, &l), 0);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);

    store_filter two = {.limit = 2};
    assert_int_equal(s->vt->exec_list(s, &two, &l), 0);
    assert_int_equal(json_array_size(l), 2);
    assert_string_equal(str(json_array_get(l, 1), "id"), "ex_d");
    json_decref(l);

    store_filter negative = {.limit = -1};
    assert_int_equal(s->vt->exec_list(s, &negative, &l), FERRY_EINVAL);
    assert_null(l);
}

static void test_list_default_limit_is_50(void **state) {
    fixture *f = *state;
    char id[32];
    for (int i = 0; i < 60; i++) {
        snprintf(id, sizeof id, "ex_%02d", i);
        begin(f->s, id, "acme", "export", "succeeded", T0 + i);
    }
    json_t *l = NULL;
    store_filter none = {0};
    assert_int_equal(f->s->vt->exec_list(f->s, &none, &l), 0);
    assert_int_equal(json_array_size(l), 50);
    assert_string_equal(str(json_array_get(l, 0), "id"), "ex_59");
    assert_string_equal(str(json_array_get(l, 49), "id"), "ex_10");
    json_decref(l);
    store_filter hundred = {.limit = 100};
    assert_int_equal(f->s->vt->exec_list(f->s, &hundred, &l), 0);
    assert_int_equal(json_array_size(l), 60);
    json_decref(l);
}

/* ---- state ---- */

static void test_state_get_set_overwrite_delete(void **state) {
    fixture *f = *state;
    store *s = f->s;
    json_t *sentinel = json_integer(1), *v = sentinel;
    assert_int_equal(s->vt->state_get(s, "acme", "cursor", &v), 0);
    assert_null(v);
    json_decref(sentinel);

    json_t *cur =
        json_pack("{s:s, s:[i,i]}", "after", "2026-11-28", "seen", 1, 2);
    assert_int_equal(s->vt->state_set(s, "acme", "cursor", cur), 0);
    assert_int_equal(s->vt->state_get(s, "acme", "cursor", &v), 0);
    assert_true(json_equal(v, cur));
    json_decref(v);
    json_decref(cur);

    json_t *other = json_string("globex's");
    assert_int_equal(s->vt->state_set(s, "globex", "cursor", other), 0);
    json_decref(other);

    json_t *n = json_integer(42);
    assert_int_equal(s->vt->state_set(s, "acme", "cursor", n), 0);
    json_decref(n);
    assert_int_equal(s->vt->state_get(s, "acme", "cursor", &v), 0);
    assert_json_eq(v, "42");
    json_decref(v);
    sqlite3 *db = raw_open(f->path);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM instance_state"), 2);
    sqlite3_close(db);

    assert_int_equal(s->vt->state_set(s, "acme", "cursor", NULL), 0);
    assert_int_equal(s->vt->state_get(s, "acme", "cursor", &v), 0);
    assert_null(v);
    assert_int_equal(s->vt->state_set(s, "acme", "cursor", NULL), 0);

    assert_int_equal(s->vt->state_get(s, "globex", "cursor", &v), 0);
    assert_json_eq(v, "\"globex's\"");
    json_decref(v);
}

/* ---- errors ---- */

static void test_not_found_and_conflicts(void **state) {
    fixture *f = *state;
    store *s = f->s;
    json_t *sentinel = json_object(), *o = sentinel;
    assert_int_equal(s->vt->exec_get(s, "ex_missing", &o), FERRY_ENOTFOUND);
    assert_null(o);
    json_decref(sentinel);
    assert_non_null(strstr(s->errmsg, "exec_get"));
    assert_non_null(strstr(s->errmsg, "ex_missing"));

    store_exec_end end = {.id = "ex_missing", .status = "failed"};
    assert_int_equal(s->vt->exec_end(s, &end), FERRY_ENOTFOUND);
    assert_non_null(strstr(s->errmsg, "exec_end"));

    store_step st = {.execution_id = "ex_missing", .seq = 1, .name = "x"};
    assert_int_equal(s->vt->step_record(s, &st), FERRY_ENOTFOUND);
    assert_non_null(strstr(s->errmsg, "step_record"));

    store_log l = {
        .execution_id = "ex_missing", .level = FERRY_LOG_INFO, .message = "x"};
    assert_int_equal(s->vt->log_append(s, &l), FERRY_ENOTFOUND);
    assert_non_null(strstr(s->errmsg, "log_append"));

    begin(s, "ex_dup", "acme", "export", "running", T0);
    store_exec again = {.id = "ex_dup",
                        .integration = "i",
                        .instance = "acme",
                        .flow = "export",
                        .status = "running",
                        .created_us = T0};
    assert_int_equal(s->vt->exec_begin(s, &again), FERRY_EEXISTS);
    assert_non_null(strstr(s->errmsg, "exec_begin"));
    st.execution_id = "ex_dup";
    assert_int_equal(s->vt->step_record(s, &st), 0);
    assert_int_equal(s->vt->step_record(s, &st), FERRY_EEXISTS);

    /* Nothing of the failed calls was stored. */
    o = get(s, "ex_dup");
    assert_string_equal(str(o, "integration"), "sensor-export");
    assert_int_equal(json_array_size(json_object_get(o, "steps")), 1);
    json_decref(o);
}

/* ---- schedule ticks ---- */

static void test_ticks_unique_and_last(void **state) {
    fixture *f = *state;
    store *s = f->s;
    int64_t last = 42;
    assert_int_equal(s->vt->tick_last(s, "acme", "hourly", &last),
                     FERRY_ENOTFOUND);
    assert_int_equal(last, 42);
    assert_non_null(strstr(s->errmsg, "tick_last"));

    assert_int_equal(s->vt->tick_insert(s, "acme", "hourly", T0, "ex_1"), 0);
    assert_int_equal(
        s->vt->tick_insert(s, "acme", "hourly", T0 + 3600000000LL, NULL), 0);
    /* The same key again, with or without an execution: refused. */
    assert_int_equal(s->vt->tick_insert(s, "acme", "hourly", T0, "ex_2"),
                     FERRY_EEXISTS);
    assert_non_null(strstr(s->errmsg, "tick_insert"));
    assert_int_equal(s->vt->tick_insert(s, "acme", "hourly", T0, NULL),
                     FERRY_EEXISTS);
    /* Other instances and flows are other keys. */
    assert_int_equal(s->vt->tick_insert(s, "beta", "hourly", T0, NULL), 0);
    assert_int_equal(
        s->vt->tick_insert(s, "acme", "daily", T0 + 7200000000LL, NULL), 0);

    assert_int_equal(s->vt->tick_last(s, "acme", "hourly", &last), 0);
    assert_int_equal(last, T0 + 3600000000LL);
    assert_int_equal(s->vt->tick_last(s, "beta", "hourly", &last), 0);
    assert_int_equal(last, T0);
    assert_int_equal(s->vt->tick_last(s, "acme", "daily", &last), 0);
    assert_int_equal(last, T0 + 7200000000LL);
    assert_int_equal(s->vt->tick_last(s, "beta", "daily", &last),
                     FERRY_ENOTFOUND);

    /* A duplicate inside a transaction leaves the transaction usable. */
    assert_int_equal(s->vt->tx_begin(s), 0);
    assert_int_equal(s->vt->tick_insert(s, "acme", "hourly", T0, NULL),
                     FERRY_EEXISTS);
    assert_int_equal(
        s->vt->tick_insert(s, "acme", "hourly", T0 + 7200000000LL, NULL), 0);
    assert_int_equal(s->vt->tx_commit(s), 0);
    assert_int_equal(s->vt->tick_last(s, "acme", "hourly", &last), 0);
    assert_int_equal(last, T0 + 7200000000LL);

    assert_int_equal(s->vt->tick_insert(s, NULL, "hourly", T0, NULL),
                     FERRY_EINVAL);
    assert_int_equal(s->vt->tick_last(s, "acme", NULL, &last), FERRY_EINVAL);
}

static void test_ticks_survive_reopen(void **state) {
    fixture *f = *state;
    assert_int_equal(f->s->vt->tick_insert(f->s, "acme", "hourly", T0, NULL),
                     0);
    store_close(f->s);
    char *err = NULL;
    f->s = store_open_sqlite(f->path, &err);
    if (!f->s)
        fail_msg("reopen: %s", err ? err : "?");
    int64_t last = 0;
    assert_int_equal(f->s->vt->tick_last(f->s, "acme", "hourly", &last), 0);
    assert_int_equal(last, T0);
    assert_int_equal(f->s->vt->tick_insert(f->s, "acme", "hourly", T0, NULL),
                     FERRY_EEXISTS);
}

/* ---- webhook idempotency keys ---- */

static long long file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) ? -1 : (long long)sb.st_size;
}

/* A log that grew past 256 MiB (commits with no checkpoint in between, as
 * under a burst) is cut back to 256 MiB when it starts again, not kept at
 * its largest. */
static void test_wal_cut_back(void **state) {
    fixture *f = *state;
    store *s = f->s;
    char wal[PATH_MAX + 32];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(s->vt->set_autocheckpoint(s, 0), 0);
    /* 272 executions of 1 MiB of trigger text each */
    size_t big = 1 << 20;
    char *text = malloc(big + 16);
    assert_non_null(text);
    memset(text, 'x', big);
    memcpy(text, "{\"pad\":\"", 8);
    memcpy(text + big - 2, "\"}", 3);
    for (int i = 0; i < 272; i++) {
        char id[32];
        snprintf(id, sizeof id, "ex_wal_%03d", i);
        store_exec e = {.id = id,
                        .integration = "sensor-export",
                        .instance = "acme",
                        .flow = "export",
                        .trigger_json = text,
                        .status = "queued",
                        .created_us = T0 + i};
        assert_int_equal(s->vt->exec_begin(s, &e), 0);
    }
    free(text);
    long long grown = file_size(wal);
    assert_true(grown > 272LL << 20);
    /* what the commit hook saw: the log's length in frames */
    assert_true(s->vt->log_frames(s) > (272 << 20) / 4096);
    /* the log copied into the database; the next commit starts it again */
    int frames = -1;
    assert_int_equal(s->vt->checkpoint(s, &frames), 0);
    assert_true(frames > (272 << 20) / 4096); /* the 272 MB written */
    begin(s, "ex_wal_next", "acme", "export", "queued", T0 + 100);
    assert_true(s->vt->log_frames(s) > 0 && s->vt->log_frames(s) < 64);
    long long after = file_size(wal);
    assert_true(after >= 0 && after <= 256LL << 20);
    json_t *o = get(s, "ex_wal_142");
    assert_string_equal(str(o, "status"), "queued");
    json_decref(o);
}

/* The log's file made longer ahead of the log (log_reserve): zeros past
 * the last frame, at most `step` frames' worth a call, and nothing
 * committed before, with or after them is lost, also when the process dies
 * without a checkpoint and the next open recovers the log from the file. */
#define FRAME (24 + 4096)

static int reserve(store *s, int frames, int step) {
    assert_int_equal(s->vt->tx_begin(s), 0);
    int room = s->vt->log_reserve(s, frames, step);
    assert_int_equal(s->vt->tx_commit(s), 0);
    return room;
}

static void test_log_reserve(void **state) {
    fixture *f = *state;
    store *s = f->s;
    char wal[PATH_MAX + 32];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(s->vt->set_autocheckpoint(s, 0), 0);
    begin(s, "ex_r1", "acme", "export", "queued", T0);
    begin(s, "ex_r2", "acme", "export", "queued", T0 + 1);
    long long w0 = file_size(wal);
    assert_true(w0 > 32 && (w0 - 32) % FRAME == 0);

    /* one step of 512 frames, then the rest in steps, then nothing more */
    assert_int_equal(reserve(s, 2048, 512), (int)((w0 - 32) / FRAME) + 512);
    assert_int_equal(file_size(wal), w0 + 512LL * FRAME);
    begin(s, "ex_r3", "acme", "export", "queued", T0 + 2);
    int calls = 1, room = 0;
    while ((room = reserve(s, 2048, 512)) < 2048)
        assert_true(++calls < 8);
    assert_int_equal(room, 2048);
    assert_int_equal(file_size(wal), 32 + 2048LL * FRAME);
    assert_int_equal(reserve(s, 1024, 512), 2048);
    assert_int_equal(file_size(wal), 32 + 2048LL * FRAME);
    begin(s, "ex_r4", "acme", "export", "queued", T0 + 3);
    assert_int_equal(file_size(wal), 32 + 2048LL * FRAME);

    /* another handle reads every row */
    char *err = NULL;
    store *r = store_open_sqlite(f->path, &err);
    if (!r)
        fail_msg("second open: %s", err);
    json_t *l = NULL;
    assert_int_equal(r->vt->exec_list(r, NULL, &l), 0);
    assert_int_equal(json_array_size(l), 4);
    json_decref(l);
    store_close(r);

    /* A process that reserved, committed and died without a checkpoint:
     * the next open recovers its log from the file, zeros and all. */
    char crash[PATH_MAX + 16];
    snprintf(crash, sizeof crash, "%s/crash.db", f->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store *c = store_open_sqlite(crash, &err);
        if (!c || c->vt->set_autocheckpoint(c, 0))
            _exit(2);
        store_exec e = {.id = "ex_c1",
                        .integration = "sensor-export",
                        .instance = "acme",
                        .flow = "export",
                        .trigger_json = "{}",
                        .status = "queued",
                        .created_us = T0};
        if (c->vt->exec_begin(c, &e) || c->vt->tx_begin(c) ||
            c->vt->log_reserve(c, 4096, 4096) != 4096 || c->vt->tx_commit(c))
            _exit(3);
        e.id = "ex_c2";
        e.status = "running";
        if (c->vt->exec_begin(c, &e))
            _exit(4);
        _exit(0); /* no close: the log stays as it is */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    snprintf(wal, sizeof wal, "%s-wal", crash);
    assert_true(file_size(wal) >= 32 + 4096LL * FRAME);
    store *c = store_open_sqlite(crash, &err);
    if (!c)
        fail_msg("open after the crash: %s", err);
    json_t *o = get(c, "ex_c1");
    assert_string_equal(str(o, "status"), "queued");
    json_decref(o);
    o = get(c, "ex_c2");
    assert_string_equal(str(o, "status"), "running");
    json_decref(o);
    begin(c, "ex_c3", "acme", "export", "queued", T0 + 5);
    store_close(c);
    c = store_open_sqlite(crash, &err);
    if (!c)
        fail_msg("open again: %s", err);
    assert_int_equal(c->vt->exec_list(c, NULL, &l), 0);
    assert_int_equal(json_array_size(l), 3);
    json_decref(l);
    store_close(c);
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[PATH_MAX + 48];
        snprintf(p, sizeof p, "%s%s", crash, suffixes[i]);
        unlink(p);
    }
}

static void test_dedupe_claim(void **state) {
    fixture *f = *state;
    store *s = f->s;
    char first[40] = "";
    int64_t now = store_now_us();
    int64_t day = 86400000000LL;
    assert_int_equal(s->vt->dedupe_claim(s, "acme", "hook", "msg_1", now - day,
                                         "ex_1", first, sizeof(first)),
                     0);
    assert_string_equal(first, "");
    /* Seen within the window: refused with the first execution's id. */
    assert_int_equal(s->vt->dedupe_claim(s, "acme", "hook", "msg_1", now - day,
                                         "ex_2", first, sizeof(first)),
                     FERRY_EEXISTS);
    assert_string_equal(first, "ex_1");
    assert_non_null(strstr(s->errmsg, "dedupe_claim"));
    /* Other instances, flows and keys are other keys. */
    assert_int_equal(s->vt->dedupe_claim(s, "beta", "hook", "msg_1", now - day,
                                         "ex_3", first, sizeof(first)),
                     0);
    assert_int_equal(s->vt->dedupe_claim(s, "acme", "other", "msg_1", now - day,
                                         "ex_4", first, sizeof(first)),
                     0);
    assert_int_equal(s->vt->dedupe_claim(s, "acme", "hook", "msg_2", now - day,
                                         "ex_5", first, sizeof(first)),
                     0);
    /* Older than the window: replaced, and the new claim holds. */
    assert_int_equal(s->vt->dedupe_claim(s, "acme", "hook", "msg_1",
                                         store_now_us() + 1, "ex_6", first,
                                         sizeof(first)),
                     0);
    assert_int_equal(s->vt->dedupe_claim(s, "acme", "hook", "msg_1", now - day,
                                         "ex_7", first, sizeof(first)),
                     FERRY_EEXISTS);
    assert_string_equal(first, "ex_6");

    /* Inside a transaction, with the execution: a rollback forgets both. */
    assert_int_equal(s->vt->tx_begin(s), 0);
    assert_int_equal(s->vt->dedupe_claim(s, "acme", "hook", "msg_3", now - day,
                                         "ex_8", first, sizeof(first)),
                     0);
    assert_int_equal(s->vt->dedupe_claim(s, "acme", "hook", "msg_3", now - day,
                                         "ex_9", first, sizeof(first)),
                     FERRY_EEXISTS);
    assert_string_equal(first, "ex_8");
    assert_int_equal(s->vt->tx_rollback(s), 0);
    assert_int_equal(s->vt->dedupe_claim(s, "acme", "hook", "msg_3", now - day,
                                         "ex_10", first, sizeof(first)),
                     0);

    assert_int_equal(s->vt->dedupe_claim(s, "acme", "hook", NULL, now, "ex_11",
                                         first, sizeof(first)),
                     FERRY_EINVAL);
    assert_int_equal(s->vt->dedupe_claim(s, "acme", "hook", "k", now, NULL,
                                         first, sizeof(first)),
                     FERRY_EINVAL);
}

static void test_dedupe_survives_reopen(void **state) {
    fixture *f = *state;
    char first[40] = "";
    assert_int_equal(f->s->vt->dedupe_claim(f->s, "acme", "hook", "msg_1", 0,
                                            "ex_1", first, sizeof(first)),
                     0);
    store_close(f->s);
    char *err = NULL;
    f->s = store_open_sqlite(f->path, &err);
    if (!f->s)
        fail_msg("reopen: %s", err ? err : "?");
    assert_int_equal(f->s->vt->dedupe_claim(f->s, "acme", "hook", "msg_1", 0,
                                            "ex_2", first, sizeof(first)),
                     FERRY_EEXISTS);
    assert_string_equal(first, "ex_1");
}

static void test_bad_arguments(void **state) {
    fixture *f = *state;
    store *s = f->s;
    store_exec e = {.id = "ex_x", .instance = "acme", .status = "running"};
    assert_int_equal(s->vt->exec_begin(s, &e), FERRY_EINVAL);
    assert_int_equal(s->vt->exec_begin(s, NULL), FERRY_EINVAL);
    store_exec_end end = {.id = "ex_x"};
    assert_int_equal(s->vt->exec_end(s, &end), FERRY_EINVAL);
    begin(s, "ex_x", "acme", "export", "running", T0);
    store_step st = {.execution_id = "ex_x", .seq = 0};
    assert_int_equal(s->vt->step_record(s, &st), FERRY_EINVAL);
    store_log l = {.execution_id = "ex_x", .level = 99, .message = "m"};
    assert_int_equal(s->vt->log_append(s, &l), FERRY_EINVAL);
    assert_non_null(strstr(s->errmsg, "99"));
    json_t *v = NULL;
    assert_int_equal(s->vt->state_get(s, NULL, "k", &v), FERRY_EINVAL);
    assert_int_equal(s->vt->state_set(s, "acme", NULL, NULL), FERRY_EINVAL);
    assert_int_equal(s->vt->exec_get(s, NULL, &v), FERRY_EINVAL);
}

/* ---- ids ---- */

static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";

static int cmp_str(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

static void test_id_format(void **state) {
    (void)state;
    char id[32];
    int64_t before = store_now_us() / 1000;
    store_new_id("ex", id, sizeof id);
    int64_t after = store_now_us() / 1000;
    assert_int_equal(strlen(id), 3 + 26);
    assert_memory_equal(id, "ex_", 3);
    for (int i = 3; i < 29; i++)
        if (!strchr(alphabet, id[i]) || id[i] == '\0')
            fail_msg("bad character '%c' in %s", id[i], id);
    /* The first ten characters are the millisecond time. */
    int64_t ms = 0;
    for (int i = 3; i < 13; i++)
        ms = ms * 32 + (strchr(alphabet, id[i]) - alphabet);
    assert_true(ms >= before && ms <= after);

    char small[10] = "xxxxxxxxx";
    store_new_id("ex", small, sizeof small);
    assert_string_equal(small, "");
}

static void test_ids_unique_and_sortable(void **state) {
    (void)state;
    enum { N = 1000 };
    char(*ids)[32] = calloc(N, 32);
    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        store_new_id("ex", ids[i], 32);
    qsort(ids, N, 32, cmp_str);
    for (int i = 1; i < N; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("duplicate id %s", ids[i]);
    free(ids);

    /* Across milliseconds, later ids sort after earlier ones. */
    char prev[32], next[32];
    store_new_id("ex", prev, sizeof prev);
    for (int i = 0; i < 20; i++) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
        store_new_id("ex", next, sizeof next);
        if (strcmp(prev, next) >= 0)
            fail_msg("%s does not sort before %s", prev, next);
        memcpy(prev, next, sizeof prev);
    }
}

static void test_now_us(void **state) {
    (void)state;
    int64_t now = store_now_us();
    int64_t t = (int64_t)time(NULL) * 1000000;
    assert_true(now > t - 2000000 && now < t + 2000000);
}

/* ---- two handles ---- */

static void test_second_handle_reads(void **state) {
    fixture *f = *state;
    begin(f->s, "ex_one", "acme", "export", "running", T0);

    char *err = NULL;
    store *r = store_open_sqlite(f->path, &err);
    if (!r)
        fail_msg("second open: %s", err);
    json_t *o = get(r, "ex_one");
    assert_string_equal(str(o, "status"), "running");
    json_decref(o);

    /* A writer holding an open transaction does not block the reader, and
     * the reader does not see its uncommitted row. */
    sqlite3 *w = raw_open(f->path);
    raw_exec(w, "BEGIN IMMEDIATE;"
                " INSERT INTO executions (id, integration, instance, flow,"
                " status, created_us) VALUES ('ex_two', 'i', 'acme', 'export',"
                " 'queued', 1)");
    int64_t t = store_now_us();
    json_t *l = NULL;
    assert_int_equal(r->vt->exec_list(r, NULL, &l), 0);
    assert_true(store_now_us() - t < 1000000);
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    raw_exec(w, "COMMIT");
    sqlite3_close(w);

    assert_int_equal(r->vt->exec_list(r, NULL, &l), 0);
    assert_int_equal(json_array_size(l), 2);
    json_decref(l);

    /* Writes through the first handle show up in the second. */
    store_exec_end end = {
        .id = "ex_one", .status = "succeeded", .ended_us = T0 + 1};
    assert_int_equal(f->s->vt->exec_end(f->s, &end), 0);
    o = get(r, "ex_one");
    assert_string_equal(str(o, "status"), "succeeded");
    json_decref(o);
    store_close(r);
}

/* ---- the spill list (the queue past the host's memory) ---- */

static void queue_exec(store *s, const char *id, int64_t created_us,
                       const char *trigger) {
    store_exec e = {.id = id,
                    .integration = "hooks",
                    .instance = "acme",
                    .flow = "hook",
                    .trigger_json = trigger,
                    .status = "queued",
                    .created_us = created_us};
    assert_int_equal(s->vt->exec_begin(s, &e), 0);
}

static void test_spill_list(void **state) {
    fixture *f = *state;
    store *s = f->s;
    /* Listed in the order added, which is not the ids' order. */
    queue_exec(s, "ex_c", T0 + 3, "{\"n\":3}");
    queue_exec(s, "ex_a", T0 + 1, "{\"n\":1}");
    queue_exec(s, "ex_b", T0 + 2, NULL);
    queue_exec(s, "ex_d", T0 + 4, "{\"n\":4}");
    assert_int_equal(s->vt->spill_add(s, "ex_c"), 0);
    assert_int_equal(s->vt->spill_add(s, "ex_a"), 0);
    assert_int_equal(s->vt->spill_add(s, "ex_b"), 0);
    assert_int_equal(s->vt->spill_add(s, "ex_d"), 0);

    /* Cancelled while listed: taken off the list, not returned. */
    int removed = -1;
    assert_int_equal(s->vt->spill_remove(s, "ex_b", &removed), 0);
    assert_int_equal(removed, 1);
    assert_int_equal(s->vt->spill_remove(s, "ex_b", &removed), 0);
    assert_int_equal(removed, 0);
    assert_int_equal(s->vt->spill_add(s, "ex_b"), 0); /* listed again... */
    store_exec_end end = {.id = "ex_b",
                          .status = "cancelled",
                          .ended_us = T0 + 10,
                          .error_code = FERRY_ECANCELLED,
                          .error_message = "cancelled before it started"};
    assert_int_equal(s->vt->exec_end(s, &end), 0); /* ...but not queued */

    json_t *out = NULL;
    int taken = -1;
    assert_int_equal(s->vt->spill_take(s, 1, &out, &taken), 0);
    assert_int_equal(taken, 1);
    assert_json_eq(out, "[{\"id\":\"ex_c\",\"instance\":\"acme\","
                        "\"flow\":\"hook\",\"trigger_text\":\"{\\\"n\\\":3}\","
                        "\"created_us\":"
                        "1795849200000003}]");
    json_decref(out);
    /* ex_a, ex_d, then ex_b (not queued: counted, not returned). */
    assert_int_equal(s->vt->spill_take(s, 10, &out, &taken), 0);
    assert_int_equal(taken, 3);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(str(json_array_get(out, 0), "id"), "ex_a");
    assert_string_equal(str(json_array_get(out, 1), "id"), "ex_d");
    json_decref(out);
    /* Empty now. */
    assert_int_equal(s->vt->spill_take(s, 10, &out, &taken), 0);
    assert_int_equal(taken, 0);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    assert_int_equal(s->vt->spill_take(s, 0, &out, &taken), FERRY_EINVAL);
    assert_null(out);

    /* At start-up: every queued execution, oldest first, whatever the
     * list held. */
    assert_int_equal(s->vt->spill_add(s, "ex_d"), 0);
    queue_exec(s, "ex_e", T0 + 5, "{\"n\":5}");
    int64_t count = -1;
    assert_int_equal(s->vt->spill_all(s, &count), 0);
    assert_int_equal(count, 4); /* ex_a, ex_c, ex_d, ex_e */
    assert_int_equal(s->vt->spill_take(s, 10, &out, &taken), 0);
    assert_int_equal(taken, 4);
    const char *want[] = {"ex_a", "ex_c", "ex_d", "ex_e"};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(str(json_array_get(out, i), "id"), want[i]);
    assert_string_equal(str(json_array_get(out, 0), "trigger_text"),
                        "{\"n\":1}");
    json_decref(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_fresh_db_is_migrated),
        T(test_reopen_keeps_schema_and_data),
        T(test_newer_schema_refused),
        T(test_foreign_db_refused),
        T(test_open_bad_path_fails),
        T(test_exec_lifecycle),
        T(test_exec_failure_recorded),
        T(test_trigger_that_is_not_json),
        T(test_steps_and_logs_in_order),
        T(test_truncated_payloads_flagged),
        T(test_list_filters_order_limit),
        T(test_list_default_limit_is_50),
        T(test_state_get_set_overwrite_delete),
        T(test_not_found_and_conflicts),
        T(test_bad_arguments),
        T(test_ticks_unique_and_last),
        T(test_ticks_survive_reopen),
        T(test_wal_cut_back),
        T(test_log_reserve),
        T(test_dedupe_claim),
        T(test_dedupe_survives_reopen),
        T(test_second_handle_reads),
        T(test_spill_list),
        cmocka_unit_test(test_id_format),
        cmocka_unit_test(test_ids_unique_and_sortable),
        cmocka_unit_test(test_now_us),
#undef T
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
