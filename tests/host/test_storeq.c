/*
 * The store thread's queue (core/host/storeq.c) on a real SQLite store with
 * its checkpoint handle, as `ferry serve` runs it: jobs commit in batches
 * and are answered after their commit, and under a steady stream of commits
 * the write-ahead log still starts again from its beginning instead of
 * growing without end (it did: 322 MB after 5 s of webhooks); the log's
 * file is made longer ahead of a long log; a worker's records wait for
 * company to share a transaction, while a job someone waits for does not;
 * and a batch that does not commit keeps its records to write again.
 */
#include "th.h"

#include "host/storeq.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
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

/* A new SQLite store in a new directory (*dir and *db malloc'd). */
static store *open_store(char **dir, char **db) {
    char *err = NULL;
    *dir = th_tmpdir();
    *db = th_path(*dir, "f.db");
    store *st = store_open_sqlite(*db, &err);
    assert_non_null(st);
    return st;
}

/* A new store, its checkpoint handle and what ran on them. */
typedef struct rig {
    char *dir, *db;
    store *st, *ck;
    bench b;
} rig;

/* A store thread with its checkpoint handle (a checkpoint every ckpt_ms)
 * commits `commits` execution rows, 4 at a time, with nothing in between;
 * all of them must be answered and committed. */
static void run_commits(rig *r, int commits, int ckpt_ms) {
    char *err = NULL;
    bench *b = &r->b;
    r->st = open_store(&r->dir, &r->db);
    r->ck = store_open_sqlite(r->db, &err);
    assert_non_null(r->ck);
    *b = (bench){.todo = commits};
    b->wal = malloc(strlen(r->db) + 5);
    assert_non_null(b->wal);
    sprintf(b->wal, "%s-wal", r->db);
    memset(b->trigger, 'x', sizeof b->trigger - 1);
    memcpy(b->trigger, "{\"body\":\"", 9);
    memcpy(b->trigger + sizeof b->trigger - 3, "\"}", 3);

    uv_loop_t loop;
    uv_loop_init(&loop);
    b->q = storeq_start(&loop, r->st, r->ck, ckpt_ms, &err);
    assert_non_null(b->q);
    uv_timer_init(&loop, &b->timer);
    b->timer.data = b;
    uv_timer_start(&b->timer, on_timer, 10, 10);
    push_next(b);
    uv_run(&loop, UV_RUN_DEFAULT);
    int done = 0;
    storeq_stop(b->q, closed, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(b->answered, commits);
    assert_int_equal(b->failed, 0);
}

static void rig_close(rig *r) {
    store_close(r->ck);
    store_close(r->st);
    free(r->b.wal);
    free(r->db);
    th_rmrf(r->dir);
}

/* 40,000 commits of an execution row each, 4 at a time, with nothing in
 * between: about 520 MB through the log, with a checkpoint every 50 ms.
 * Without the log starting again the file reaches that size; it must stay
 * far below it. */
static void test_log_starts_again_under_steady_commits(void **state) {
    (void)state;
    rig r;
    run_commits(&r, COMMITS, 50);
    fprintf(stderr, "largest log: %.1f MB\n", r.b.max_wal / 1e6);
    assert_true(r.b.max_wal > 0);
    assert_true(r.b.max_wal < 250LL * 1000 * 1000);

    json_t *got = NULL;
    assert_int_equal(r.st->vt->exec_get(r.st, "ex_00039999", &got), 0);
    assert_string_equal(json_string_value(json_object_get(got, "status")),
                        "queued");
    json_decref(got);
    rig_close(&r);
}

/* Once the log passes 2 MB, the store thread makes the log's file hold
 * about twice the log, ahead of it (store log_reserve), so that appends
 * overwrite blocks already allocated. 350 commits and no checkpoint (its
 * period is longer than the test, and the log stays under the 8 MB that
 * would wake it): a log of 3.5 to 6 MB, and a file far longer than that,
 * where growing with the log alone makes it as long as the log exactly. */
static void test_log_file_made_ready_ahead(void **state) {
    (void)state;
    rig r;
    run_commits(&r, 350, 600000);
    long long frame = 24 + 4096;
    long long log = r.st->vt->log_frames(r.st);
    struct stat sb;
    assert_int_equal(stat(r.b.wal, &sb), 0);
    fprintf(stderr, "log: %lld frames (%.1f MB), file %.1f MB\n", log,
            log * frame / 1e6, sb.st_size / 1e6);
    assert_true(log > 512 && log < 2048);
    assert_true(sb.st_size >= 32 + log * frame * 3 / 2);
    assert_true(sb.st_size <= 32 + 16384 * frame);
    rig_close(&r);
}

/* ---- pacing ---- */

typedef struct paced {
    int pending;
    int failed;
} paced;

static void count_run(store *st, void *arg) {
    (void)st;
    (void)arg;
}

static void count_done(void *arg, int commit_rc) {
    paced *p = arg;
    p->pending--;
    if (commit_rc)
        p->failed++;
}

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Runs the loop until every job pushed so far is answered. */
static void drain(uv_loop_t *loop, paced *p) {
    while (p->pending > 0)
        uv_run(loop, UV_RUN_ONCE);
}

/* A worker's records (storeq_push_record) pushed one every 50 us share
 * transactions: while only records wait, a transaction starts at most
 * every millisecond, so there are no more transactions than milliseconds
 * the pushing took (an empty transaction takes far less than 50 us here:
 * committed as they came, there were about one per record). A job someone
 * waits for (storeq_push) never waits for company. */
static void test_records_share_transactions(void **state) {
    (void)state;
    char *dir, *db, *err = NULL;
    store *st = open_store(&dir, &db);
    uv_loop_t loop;
    uv_loop_init(&loop);
    storeq *q = storeq_start(&loop, st, NULL, 0, &err);
    assert_non_null(q);
    paced p = {0};
    uint64_t b0, j0, w0, b1, j1, w1;

    storeq_stats(q, &b0, &j0, &w0);
    int64_t t0 = now_us();
    for (int i = 0; i < 1000; i++) {
        p.pending++;
        storeq_push_record(q, count_run, count_done, &p);
        usleep(50);
    }
    drain(&loop, &p);
    int64_t took_ms = (now_us() - t0) / 1000;
    storeq_stats(q, &b1, &j1, &w1);
    fprintf(stderr, "1,000 records in %lld ms: %llu transactions, %llu paced\n",
            (long long)took_ms, (unsigned long long)(b1 - b0),
            (unsigned long long)(w1 - w0));
    assert_int_equal(j1 - j0, 1000);
    assert_true(b1 - b0 <= (uint64_t)took_ms + 2);
    assert_true(w1 > w0);

    /* Jobs with a waiter, one after the other's answer: none is paced,
     * also right after a transaction of records. */
    p.pending++;
    storeq_push_record(q, count_run, count_done, &p);
    drain(&loop, &p);
    storeq_stats(q, &b0, &j0, &w0);
    for (int i = 0; i < 100; i++) {
        p.pending++;
        storeq_push(q, count_run, count_done, &p);
        drain(&loop, &p);
    }
    storeq_stats(q, &b1, &j1, &w1);
    assert_int_equal(b1 - b0, 100);
    assert_int_equal(w1, w0);
    assert_int_equal(p.failed, 0);

    int done = 0;
    storeq_stop(q, closed, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    store_close(st);
    free(db);
    th_rmrf(dir);
}

/* ---- batches that do not commit ---- */

/* The store's own vtable, with a commit that fails while commit_fails > 0
 * (as a full disk or a file-size limit makes SQLite's commit fail). */
static const store_vtable *real_vt;
static store_vtable failing_vt;
static int commit_fails;

static int failing_commit(store *s) {
    if (commit_fails > 0) {
        commit_fails--;
        snprintf(s->errmsg, sizeof(s->errmsg), "commit: disk I/O error");
        return FERRY_EIO;
    }
    return real_vt->tx_commit(s);
}

typedef struct told {
    int failures, recoveries;
    size_t kept, lost;
    char msg[128];
} told;

static void on_fail(void *ud, int rc, const char *msg, size_t kept,
                    size_t lost) {
    told *t = ud;
    if (rc) {
        t->failures++;
        t->kept = kept;
        t->lost += lost;
        snprintf(t->msg, sizeof(t->msg), "%s", msg ? msg : "");
    } else {
        t->recoveries++;
    }
}

/* A record appends one log line to execution ex-1; `waiter` is a job
 * someone waits for, which also appends one, and `breaker` one whose
 * statement rolled the whole transaction back (as SQLite does for some
 * I/O errors). */
typedef struct line_job {
    paced *p;
    int n;
    int rc; /* the commit result its waiter was told */
    int breaks;
} line_job;

static void line_run(store *st, void *arg) {
    line_job *j = arg;
    char msg[32];
    snprintf(msg, sizeof(msg), "line %d", j->n);
    store_log l = {.execution_id = "ex-1",
                   .ts_us = 1800000000000000LL + j->n,
                   .level = FERRY_LOG_INFO,
                   .message = msg};
    assert_int_equal(st->vt->log_append(st, &l), 0);
    if (j->breaks)
        assert_int_equal(st->vt->tx_rollback(st), 0);
}

static void line_done(void *arg, int commit_rc) {
    line_job *j = arg;
    j->rc = commit_rc;
    j->p->pending--;
}

/* The log lines of ex-1, in order, as "line 0,line 1,..." (malloc'd). */
static char *lines_of(store *st) {
    json_t *got = NULL;
    assert_int_equal(st->vt->exec_get(st, "ex-1", &got), 0);
    json_t *logs = json_object_get(got, "logs");
    char *out = calloc(1, 16384);
    assert_non_null(out);
    size_t i;
    json_t *l;
    json_array_foreach(logs, i, l) {
        if (i)
            strcat(out, ",");
        strcat(out, json_string_value(json_object_get(l, "message")));
    }
    json_decref(got);
    return out;
}

/* A store thread on a new store whose commits fail while
 * commit_fails > 0, with execution ex-1 committed, and what it told. */
typedef struct frig {
    uv_loop_t loop;
    store *st;
    char *dir, *db;
    storeq *q;
    told t;
    paced p;
} frig;

static void frig_open(frig *r) {
    char *err = NULL;
    *r = (frig){0};
    r->st = open_store(&r->dir, &r->db);
    store_exec e = {.id = "ex-1",
                    .integration = "i",
                    .instance = "in-1",
                    .flow = "f",
                    .status = "running",
                    .created_us = 1800000000000000LL};
    assert_int_equal(r->st->vt->exec_begin(r->st, &e), 0);
    real_vt = r->st->vt;
    failing_vt = *real_vt;
    failing_vt.tx_commit = failing_commit;
    r->st->vt = &failing_vt;
    uv_loop_init(&r->loop);
    r->q = storeq_start(&r->loop, r->st, NULL, 0, &err);
    assert_non_null(r->q);
    storeq_on_failure(r->q, on_fail, &r->t);
}

static void frig_stop(frig *r) {
    int done = 0;
    storeq_stop(r->q, closed, &done);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 1);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

static void frig_free(frig *r) {
    r->st->vt = real_vt;
    store_close(r->st);
    free(r->db);
    th_rmrf(r->dir);
}

static void frig_close(frig *r) {
    frig_stop(r);
    frig_free(r);
}

/* Pushes n records, lines 0 to n - 1. */
static void push_records(frig *r, line_job *j, int n) {
    for (int i = 0; i < n; i++) {
        j[i] = (line_job){.p = &r->p, .n = i, .rc = -1};
        r->p.pending++;
        storeq_push_record(r->q, line_run, line_done, &j[i]);
    }
}

/* Two batches in a row do not commit. The job someone waits for is told
 * (and its line is not in the store); the records are kept and written
 * once a batch commits, each once and in the order they were pushed, and
 * the failures and the recovery are told. */
static void test_records_kept_when_commit_fails(void **state) {
    (void)state;
    frig r;
    frig_open(&r);
    line_job j[5];
    commit_fails = 2;
    for (int i = 0; i < 5; i++) {
        j[i] = (line_job){.p = &r.p, .n = i, .rc = -1};
        r.p.pending++;
        if (i == 2)
            storeq_push(r.q, line_run, line_done, &j[i]);
        else
            storeq_push_record(r.q, line_run, line_done, &j[i]);
    }
    drain(&r.loop, &r.p);
    assert_int_equal(commit_fails, 0);
    assert_int_equal(j[2].rc, FERRY_EIO);
    for (int i = 0; i < 5; i++)
        if (i != 2)
            assert_int_equal(j[i].rc, 0);
    char *lines = lines_of(r.st);
    assert_string_equal(lines, "line 0,line 1,line 3,line 4");
    free(lines);
    uv_run(&r.loop, UV_RUN_NOWAIT); /* the recovery's news */
    assert_true(r.t.failures >= 1);
    assert_true(r.t.kept >= 2);
    assert_string_equal(r.t.msg, "commit: disk I/O error");
    assert_int_equal(r.t.recoveries, 1);
    frig_close(&r);
}

/* 300 records, more than a full batch, and three commits that fail: the
 * records wait for their retry each time (50, 100, then 200 ms) instead of
 * being tried again at once, since a full batch does not cut that wait. */
static void test_kept_records_wait_for_their_retry(void **state) {
    (void)state;
    frig r;
    frig_open(&r);
    enum { N = 300 };
    line_job *j = calloc(N, sizeof(*j));
    assert_non_null(j);
    uint64_t b0, b1, jobs, paced;
    storeq_stats(r.q, &b0, &jobs, &paced);
    commit_fails = 3;
    int64_t t0 = now_us();
    push_records(&r, j, N);
    drain(&r.loop, &r.p);
    int64_t took_ms = (now_us() - t0) / 1000;
    storeq_stats(r.q, &b1, &jobs, &paced);
    fprintf(stderr, "%d records, 3 failed commits: %llu batches in %lld ms\n",
            N, (unsigned long long)(b1 - b0), (long long)took_ms);
    assert_int_equal(commit_fails, 0);
    assert_true(b1 - b0 <= 8);
    assert_true(took_ms >= 350);
    char *lines = lines_of(r.st);
    assert_int_equal(strlen(lines) > 0, 1);
    int n = 0;
    for (char *p = lines; p; p = strchr(p, ',')) {
        if (*p == ',')
            p++;
        assert_int_equal(atoi(p + 5), n);
        n++;
    }
    assert_int_equal(n, N);
    free(lines);
    free(j);
    frig_close(&r);
}

/* A statement rolls the whole transaction back in the middle of a batch:
 * the jobs after it must not run (each would commit on its own, and run
 * again with the kept records: twice). */
static void test_batch_ended_by_a_statement(void **state) {
    (void)state;
    frig r;
    frig_open(&r);
    line_job j[3] = {{.p = &r.p, .n = 0, .rc = -1},
                     {.p = &r.p, .n = 1, .rc = -1, .breaks = 1},
                     {.p = &r.p, .n = 2, .rc = -1}};
    commit_fails = 0;
    r.p.pending = 3;
    storeq_push_record(r.q, line_run, line_done, &j[0]);
    storeq_push(r.q, line_run, line_done, &j[1]);
    storeq_push_record(r.q, line_run, line_done, &j[2]);
    drain(&r.loop, &r.p);
    assert_int_equal(j[0].rc, 0);
    assert_int_equal(j[1].rc, FERRY_EIO);
    assert_int_equal(j[2].rc, 0);
    char *lines = lines_of(r.st);
    assert_string_equal(lines, "line 0,line 2");
    free(lines);
    frig_close(&r);
}

/* The queue stops while its records cannot be written: they are tried
 * again during the stop, and written once the store commits again (here
 * after three more failures, 350 ms), with nothing told lost. */
static void test_stop_writes_kept_records(void **state) {
    (void)state;
    frig r;
    frig_open(&r);
    line_job j[5];
    commit_fails = 4;
    push_records(&r, j, 5);
    frig_stop(&r);
    assert_int_equal(commit_fails, 0);
    assert_int_equal(r.p.pending, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(j[i].rc, 0);
    assert_int_equal(r.t.lost, 0);
    char *lines = lines_of(r.st);
    assert_string_equal(lines, "line 0,line 1,line 2,line 3,line 4");
    free(lines);
    frig_free(&r);
}

/* A store that never commits again: the stop gives the records up after
 * its 3 s of tries, and tells how many were lost. */
static void test_stop_gives_records_up(void **state) {
    (void)state;
    frig r;
    frig_open(&r);
    line_job j[5];
    commit_fails = 1000000;
    push_records(&r, j, 5);
    int64_t t0 = now_us();
    frig_stop(&r);
    int64_t took_ms = (now_us() - t0) / 1000;
    fprintf(stderr, "stop with records that cannot be written: %lld ms\n",
            (long long)took_ms);
    assert_true(took_ms >= 2900 && took_ms < 6000);
    commit_fails = 0;
    assert_int_equal(r.p.pending, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(j[i].rc, FERRY_EIO);
    assert_int_equal(r.t.lost, 5);
    assert_string_equal(r.t.msg, "commit: disk I/O error");
    char *lines = lines_of(r.st);
    assert_string_equal(lines, "");
    free(lines);
    frig_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_starts_again_under_steady_commits),
        cmocka_unit_test(test_records_share_transactions),
        cmocka_unit_test(test_log_file_made_ready_ahead),
        cmocka_unit_test(test_records_kept_when_commit_fails),
        cmocka_unit_test(test_kept_records_wait_for_their_retry),
        cmocka_unit_test(test_batch_ended_by_a_statement),
        cmocka_unit_test(test_stop_writes_kept_records),
        cmocka_unit_test(test_stop_gives_records_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
