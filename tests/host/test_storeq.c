/*
 * The store thread's queue (core/host/storeq.c) on a real SQLite store with
 * its checkpoint handle, as `ferry serve` runs it: jobs commit in batches
 * and are answered after their commit, and under a steady stream of commits
 * the write-ahead log still starts again from its beginning instead of
 * growing without end (it did: 322 MB after 5 s of webhooks).
 */
#include "th.h"

#include "host/storeq.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#define COMMITS 40000
#define IN_FLIGHT 4

typedef struct bench {
    storeq *q;
    char *wal;
    char trigger[1024]; /* what a webhook's execution records, about */
    int seq;
    int todo;    /* commits still to start */
    int running; /* jobs pushed and not answered */
    int answered;
    int failed; /* a job that did not commit */
    long long max_wal;
    uv_timer_t timer;
    int stopped;
} bench;

static void sample_wal(bench *b) {
    struct stat sb;
    if (stat(b->wal, &sb) == 0 && sb.st_size > b->max_wal)
        b->max_wal = sb.st_size;
}

static void on_timer(uv_timer_t *t) {
    sample_wal(t->data);
}

/* One execution row, as a webhook makes one: the commits then write what
 * the host's do (7 pages each, the table and its indexes). */
static void write_run(store *st, void *arg) {
    bench *b = arg;
    char id[40];
    snprintf(id, sizeof id, "ex_%08d", b->seq++);
    store_exec e = {.id = id,
                    .integration = "bench-webhook",
                    .instance = "wh-1",
                    .flow = "hook",
                    .trigger_json = b->trigger,
                    .status = "queued",
                    .created_us = 1800000000000000LL + b->seq};
    if (st->vt->exec_begin(st, &e))
        b->failed++;
}

static void push_next(bench *b);

static void write_done(void *arg, int commit_rc) {
    bench *b = arg;
    b->running--;
    b->answered++;
    if (commit_rc)
        b->failed++;
    push_next(b);
}

static void closed(void *ud) {
    *(int *)ud = 1;
}

static void push_next(bench *b) {
    while (b->todo > 0 && b->running < IN_FLIGHT) {
        b->todo--;
        b->running++;
        storeq_push(b->q, write_run, write_done, b);
    }
    if (b->todo == 0 && b->running == 0 && !b->stopped) {
        b->stopped = 1;
        uv_timer_stop(&b->timer);
        uv_close((uv_handle_t *)&b->timer, NULL);
        uv_stop(b->timer.loop); /* the queue's own handle stays open */
    }
}

/* 40,000 commits of an execution row each, 4 at a time, with nothing in
 * between: about 520 MB through the log, with a checkpoint every 50 ms.
 * Without the log starting again the file reaches that size; it must stay
 * far below it. */
static void test_log_starts_again_under_steady_commits(void **state) {
    (void)state;
    char *dir = th_tmpdir();
    char *db = th_path(dir, "f.db");
    char *err = NULL;
    store *st = store_open_sqlite(db, &err);
    assert_non_null(st);
    store *ck = store_open_sqlite(db, &err);
    assert_non_null(ck);

    bench b = {.todo = COMMITS};
    b.wal = malloc(strlen(db) + 5);
    assert_non_null(b.wal);
    sprintf(b.wal, "%s-wal", db);
    memset(b.trigger, 'x', sizeof b.trigger - 1);
    memcpy(b.trigger, "{\"body\":\"", 9);
    memcpy(b.trigger + sizeof b.trigger - 3, "\"}", 3);

    uv_loop_t loop;
    uv_loop_init(&loop);
    b.q = storeq_start(&loop, st, ck, 50, &err);
    assert_non_null(b.q);
    uv_timer_init(&loop, &b.timer);
    b.timer.data = &b;
    uv_timer_start(&b.timer, on_timer, 10, 10);
    push_next(&b);
    uv_run(&loop, UV_RUN_DEFAULT);
    int done = 0;
    storeq_stop(b.q, closed, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 1);
    assert_int_equal(uv_loop_close(&loop), 0);

    assert_int_equal(b.answered, COMMITS);
    assert_int_equal(b.failed, 0);
    fprintf(stderr, "largest log: %.1f MB\n", b.max_wal / 1e6);
    assert_true(b.max_wal > 0);
    assert_true(b.max_wal < 250LL * 1000 * 1000);

    json_t *got = NULL;
    assert_int_equal(st->vt->exec_get(st, "ex_00039999", &got), 0);
    assert_string_equal(json_string_value(json_object_get(got, "status")),
                        "queued");
    json_decref(got);
    store_close(ck);
    store_close(st);
    free(b.wal);
    free(db);
    th_rmrf(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_starts_again_under_steady_commits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
