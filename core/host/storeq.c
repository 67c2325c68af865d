/*
 * The store thread. The loop never calls SQLite: it queues jobs here. The
 * thread takes everything queued since its last commit and runs it in one
 * transaction (group commit: one fsync for many writes), then hands the
 * jobs back to the loop, whose done callbacks run only after the commit,
 * so an answer that says "accepted" is only sent once the row is durable.
 */
#include "storeq.h"

#include <ferry/ferry.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct job {
    storeq_fn fn;
    storeq_done done;
    void *arg;
    struct job *next;
    int record; /* nobody waits for it: kept when its batch does not commit */
} job;

struct storeq {
    store *st;
    store *ckpt; /* a second handle for checkpoints, or NULL */
    int ckpt_ms; /* every so often */
    pthread_t ckpt_thread;
    uv_loop_t *loop;
    uv_async_t async;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t ckpt_cv;
    job *todo, *todo_tail;
    size_t ntodo;
    int urgent;          /* a queued job has someone waiting for it */
    int pacing;          /* the store thread waits for a fuller batch */
    int64_t last_commit; /* when the last batch started, monotonic us */
    job *finished, *finished_tail;
    int finished_rc;  /* the commit result of the batches in finished */
    int tail;         /* the log is long and a few frames are left: copy them */
    int ckpt_running; /* the checkpoint thread is in a round of passes */
    int log_want;     /* frames the log's file should hold (log_reserve) */
    int log_room;     /* frames it holds, as far as this thread made it */
    int log_fixed;    /* log_reserve failed: the file grows as it must */
    int stopping;
    uint64_t batches, jobs, paced;
    void (*closed)(void *);
    void *closed_ud;
    /* Batches that did not commit (see keep_records). */
    int64_t retry_at;   /* kept records wait until then, monotonic us */
    int retry_ms;       /* the wait after the next failure */
    int fail_rc;        /* the last batch did not commit: its error, or 0 */
    char fail_msg[512]; /* and the store's message */
    size_t kept;        /* records kept from it */
    size_t lost;        /* records given up at the stop (STOP_RETRY_MS) */
    int64_t stop_by;    /* when the stop gives kept records up, monotonic us */
    int fail_news;      /* failures, or a recovery, not yet told */
    char done_msg[512]; /* the loop's copy of fail_msg (on_finished) */
    storeq_fail_fn on_fail;
    void *fail_ud;
};

/* The first wait before records of a batch that did not commit are run
 * again, doubled at each failure up to RETRY_MAX_MS. */
#define RETRY_FIRST_MS 50
#define RETRY_MAX_MS 2000
/* Once the queue stops, records it could not write are tried again as
 * above for up to this long, then given up (and counted: `lost`). A stop
 * must end: the host's grace period is over by then. */
#define STOP_RETRY_MS 3000

/* Group commit, paced. Most jobs are a worker's records (steps, logs, its
 * start and end), which nobody waits for: while only such jobs are queued,
 * a transaction starts at most every STOREQ_COMMIT_EVERY_US (or once
 * STOREQ_BATCH_FULL are queued). A job that someone waits for (an
 * execution to accept before answering, a state read, an API request)
 * makes the next transaction start at once, with whatever is queued before
 * it. Without the pacing the thread committed whatever had arrived during
 * the previous commit: at 1,000 executions a second, 2.2 transactions per
 * execution of 2.8 jobs each, every one writing the same hot b-tree pages
 * to the log again. (PostgreSQL's commit_delay does the same for the same
 * reason.) */
#define STOREQ_COMMIT_EVERY_US 1000
#define STOREQ_BATCH_FULL 256

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* With q->mu held and jobs queued: waits until the next transaction may
 * start (see STOREQ_COMMIT_EVERY_US), or, after a batch that did not
 * commit, until its records' retry (see keep_records), however many are
 * queued: only a job someone waits for is not held. */
static void pace(storeq *q) {
    int64_t due = q->last_commit + STOREQ_COMMIT_EVERY_US;
    int retry = q->retry_at > due;
    if (retry)
        due =
            q->stopping && q->retry_at > q->stop_by ? q->stop_by : q->retry_at;
    int waited = 0;
    q->pacing = 1;
    while ((retry || !q->stopping) && !q->urgent &&
           (retry || q->ntodo < STOREQ_BATCH_FULL)) {
        int64_t now = mono_us();
        if (now >= due)
            break;
        if (!waited++)
            q->paced++;
        struct timespec ts = {.tv_sec = due / 1000000,
                              .tv_nsec = (due % 1000000) * 1000};
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    }
    q->pacing = 0;
}

/* See checkpoint_thread. */
#define CKPT_TAIL_FRAMES 256 /* about 1 MB of log */
#define CKPT_LONG_LOG 2048   /* 8 MB of log */
#define CKPT_PASSES 8
#define CKPT_MAX_LOG 32768 /* 128 MB of log: commits wait for a checkpoint */

/* The log's file made ready ahead of the log (store log_reserve): once the
 * log passes LOG_RESERVE_FROM frames, the file is made to hold twice the
 * longest log seen, up to LOG_RESERVE_MAX (the log stays under about twice
 * CKPT_LONG_LOG), LOG_RESERVE_STEP more at the start of each transaction,
 * as the transaction keeps other writers out. A host whose log stays short
 * never writes more than its log. The webhook benchmark, whose log grows
 * from nothing in each run: p99 20.7 to 21.8 ms against 23.9 to 31.1 ms
 * before (docs/bench.md). */
#define LOG_RESERVE_FROM 512  /* 2 MB of log */
#define LOG_RESERVE_STEP 512  /* 2 MB */
#define LOG_RESERVE_MAX 16384 /* 64 MB */

/* With a transaction begun: one step toward the file q->log_want asks. */
static void reserve_log(storeq *q) {
    if (q->log_fixed || q->log_want <= q->log_room || !q->st->vt->log_reserve)
        return;
    int room = q->st->vt->log_reserve(q->st, q->log_want, LOG_RESERVE_STEP);
    if (room < 0)
        q->log_fixed = 1;
    else
        q->log_room = room;
}

/* After a commit that left the log `log` frames long. */
static void want_log(storeq *q, int log) {
    if (log < LOG_RESERVE_FROM)
        return;
    int want =
        (2 * log + LOG_RESERVE_STEP - 1) / LOG_RESERVE_STEP * LOG_RESERVE_STEP;
    if (want > LOG_RESERVE_MAX)
        want = LOG_RESERVE_MAX;
    if (want > q->log_want)
        q->log_want = want;
}

/* With q->mu held, after a batch that did not commit (rolled back whole):
 * its records, which nobody waits for (a worker's steps, logs, start and
 * end), go back to the head of the queue in their order, to run again
 * after a wait that doubles at each failure, so that a store that cannot
 * write for a while (a full disk, a file-size limit) loses none of them.
 * Returns the other jobs, whose callers are told the error (a webhook gets
 * 503 and is sent again). */
static job *keep_records(storeq *q, job *batch) {
    job *keep = NULL, *keep_tail = NULL, *other = NULL, **ot = &other;
    size_t kept = 0;
    for (job *j = batch, *next; j; j = next) {
        next = j->next;
        j->next = NULL;
        if (j->record) {
            if (keep_tail)
                keep_tail->next = j;
            else
                keep = j;
            keep_tail = j;
            kept++;
        } else {
            *ot = j;
            ot = &j->next;
        }
    }
    if (keep) {
        keep_tail->next = q->todo;
        if (!q->todo)
            q->todo_tail = keep_tail;
        q->todo = keep;
        q->ntodo += kept;
    }
    q->kept = kept;
    q->retry_at = mono_us() + (int64_t)q->retry_ms * 1000;
    q->retry_ms =
        q->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : q->retry_ms * 2;
    return other;
}

/* With q->mu held, after a batch's commit: notes a failure, or the first
 * commit after failures, for the loop to tell (storeq_on_failure). A
 * batch of reads alone commits also when nothing can be written: only one
 * with records (which always write) tells that the store writes again. */
static void note_outcome(storeq *q, int rc, int records) {
    if (rc) {
        q->fail_rc = rc;
        snprintf(q->fail_msg, sizeof(q->fail_msg), "%s",
                 q->st->errmsg[0] ? q->st->errmsg : ferry_strerror(rc));
        q->fail_news = 1;
    } else if (q->fail_rc && records) {
        q->fail_rc = 0;
        q->kept = 0;
        q->retry_at = 0;
        q->retry_ms = RETRY_FIRST_MS;
        q->fail_news = 1;
    }
}

static void *store_thread(void *ud) {
    storeq *q = ud;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->todo && !q->stopping)
            pthread_cond_wait(&q->cv, &q->mu);
        if (!q->todo && q->stopping)
            break;
        pace(q);
        job *batch = q->todo;
        q->todo = q->todo_tail = NULL;
        q->ntodo = 0;
        q->urgent = 0;
        q->last_commit = mono_us();
        pthread_mutex_unlock(&q->mu);

        /* If BEGIN fails the jobs still run, each in its own implicit
         * transaction: slower, not lost. */
        int began = q->st->vt->tx_begin && q->st->vt->tx_begin(q->st) == 0;
        if (began)
            reserve_log(q);
        int rc = 0;
        int ended = 0;   /* a statement rolled the transaction back */
        int records = 0; /* the batch has a record (which always writes) */
        size_t n = 0;
        job *last = NULL;
        for (job *j = batch; j; j = j->next) {
            if (j->fn && !ended)
                j->fn(q->st, j->arg);
            if (began && !ended && q->st->vt->tx_open &&
                !q->st->vt->tx_open(q->st))
                ended = 1; /* the rest would commit one by one: not run */
            records |= j->record;
            last = j;
            n++;
        }
        if (began) {
            rc = ended ? FERRY_EIO : q->st->vt->tx_commit(q->st);
            /* (a commit that failed may have rolled back already: the
             * store's message then stays the commit's) */
            if (rc && !ended && q->st->vt->tx_rollback &&
                (!q->st->vt->tx_open || q->st->vt->tx_open(q->st)))
                q->st->vt->tx_rollback(q->st);
        }

        pthread_mutex_lock(&q->mu);
        q->batches++;
        if (began)
            note_outcome(q, rc, records);
        if (rc && began && q->stopping && mono_us() >= q->stop_by) {
            for (job *j = batch; j; j = j->next)
                q->lost += j->record != 0;
        } else if (rc && began) {
            /* rare: count what is left of the batch */
            batch = keep_records(q, batch);
            n = 0;
            last = NULL;
            for (job *j = batch; j; j = j->next) {
                last = j;
                n++;
            }
        }
        q->jobs += n;
        if (batch) {
            if (q->finished_tail)
                q->finished_tail->next = batch;
            else
                q->finished = batch;
            q->finished_tail = last;
            if (rc)
                q->finished_rc = rc;
        }
        int log =
            q->ckpt && q->st->vt->log_frames ? q->st->vt->log_frames(q->st) : 0;
        want_log(q, log);
        /* A log past CKPT_MAX_LOG: the checkpoint thread's passes do not
         * keep up (its syncs are slow when the disk is busy: 420 to 650 MB
         * of log in test_storeq beside a writer that syncs). The commits
         * stop until its pass is over, and this thread copies the rest. */
        if (log >= CKPT_MAX_LOG) {
            while (q->ckpt_running && !q->stopping)
                pthread_cond_wait(&q->cv, &q->mu);
            q->tail = 1;
        }
        int tail = q->tail;
        q->tail = 0;
        /* A long log wakes the checkpoint thread now rather than at its
         * next half second: in a burst the log grows by up to 80 MB in
         * that time. */
        if (!tail && !q->ckpt_running && log >= CKPT_LONG_LOG)
            pthread_cond_signal(&q->ckpt_cv);
        pthread_mutex_unlock(&q->mu);
        uv_async_send(&q->async);
        /* The checkpoint thread copied all but what was committed while
         * it ran, and the log is long: copy that rest here, where nothing
         * commits meanwhile, so that the log is copied whole and the next
         * commit starts it again from its beginning (see checkpoint_thread). */
        if (tail)
            q->st->vt->checkpoint(q->st, NULL);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* Checkpoints run here, on their own handle, every ckpt_ms: the store
 * thread's commits then never stop to copy the log into the database and
 * sync it (which took tens of milliseconds, during which nothing was
 * accepted or dispatched).
 *
 * A pass copies what the log held when it started; the log starts again
 * from its beginning only after a pass copied it whole with nothing
 * committed since. Under a steady stream of commits that never happens:
 * the log grew without end (150 MB a second in a burst of webhooks), and
 * every append extended the file, which costs the kernel a new page each
 * time. So while the last pass had more than CKPT_TAIL_FRAMES to copy (what
 * was committed during the one before), another one runs (up to
 * CKPT_PASSES); and once the log is longer than CKPT_LONG_LOG, the store
 * thread copies what is left itself, between two commits (store_thread). That
 * stops its commits for the two syncs it takes (5 to 35 ms measured in a burst,
 * as the log's sync waits for the writeback already under way), so it is done
 * only when the log is long, not at every checkpoint. Long means 8 MB, not
 * more: at 1,000 executions a second, with 32 MB the syncs of both threads
 * took twice as long each (this thread's 3.2 to 5.2 ms on average, up to
 * 13.6 ms, against 1.7 to 2.3 ms, up to 7.9 ms), and the webhooks' p99 was
 * 7.8 to 9.9 ms against 5.9 to 6.4 ms (docs/bench.md). */

static void *checkpoint_thread(void *ud) {
    storeq *q = ud;
    pthread_mutex_lock(&q->mu);
    while (!q->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += q->ckpt_ms / 1000;
        until.tv_nsec += (q->ckpt_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&q->ckpt_cv, &q->mu, &until);
        if (q->stopping)
            break;
        q->ckpt_running = 1;
        pthread_mutex_unlock(&q->mu);
        int frames = -1;
        for (int pass = 0, seen = 0; pass < CKPT_PASSES; pass++) {
            if (q->ckpt->vt->checkpoint(q->ckpt, &frames) || frames < 0)
                break;
            /* frames counts from the log's beginning: the new ones are
             * those past what the last pass saw, unless the log started
             * again meanwhile */
            int copied = frames >= seen ? frames - seen : frames;
            seen = frames;
            if (copied <= CKPT_TAIL_FRAMES)
                break;
        }
        pthread_mutex_lock(&q->mu);
        /* also when the passes did not get down to a few frames (commits
         * coming faster than a pass copies): a longer stop, but the log
         * does not grow without end */
        q->tail = frames >= CKPT_LONG_LOG;
        q->ckpt_running = 0;
        pthread_cond_broadcast(&q->cv); /* a store thread may wait for this */
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void on_finished(uv_async_t *a) {
    storeq *q = a->data;
    pthread_mutex_lock(&q->mu);
    job *list = q->finished;
    int rc = q->finished_rc;
    q->finished = q->finished_tail = NULL;
    q->finished_rc = 0;
    int news = q->fail_news && q->on_fail;
    int fail_rc = q->fail_rc;
    /* the loop's copy, for on_fail and for storeq_error */
    if (rc || (news && fail_rc))
        memcpy(q->done_msg, q->fail_msg, sizeof(q->done_msg));
    size_t kept = q->kept, lost = q->lost;
    q->fail_news = 0;
    q->lost = 0;
    pthread_mutex_unlock(&q->mu);
    if (news)
        q->on_fail(q->fail_ud, fail_rc, fail_rc ? q->done_msg : NULL, kept,
                   lost);
    while (list) {
        job *next = list->next;
        if (list->done)
            list->done(list->arg, rc);
        free(list);
        list = next;
    }
}

storeq *storeq_start(uv_loop_t *loop, store *st, store *ckpt, int ckpt_ms,
                     char **err) {
    storeq *q = calloc(1, sizeof(*q));
    if (!q) {
        *err = strdup("out of memory");
        return NULL;
    }
    q->st = st;
    q->loop = loop;
    q->ckpt_ms = ckpt_ms > 0 ? ckpt_ms : STOREQ_CHECKPOINT_MS;
    q->retry_ms = RETRY_FIRST_MS;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&q->ckpt_cv, NULL);
    uv_async_init(loop, &q->async, on_finished);
    q->async.data = q;
    if (pthread_create(&q->thread, NULL, store_thread, q)) {
        *err = strdup("cannot start the store thread");
        uv_close((uv_handle_t *)&q->async, NULL);
        return NULL; /* q is freed by the caller's loop teardown */
    }
    if (ckpt && ckpt->vt->checkpoint && st->vt->set_autocheckpoint) {
        q->ckpt = ckpt;
        if (pthread_create(&q->ckpt_thread, NULL, checkpoint_thread, q))
            q->ckpt = NULL;
        else
            st->vt->set_autocheckpoint(st, 0);
    }
    return q;
}

static void push(storeq *q, storeq_fn fn, storeq_done done, void *arg,
                 int urgent) {
    job *j = calloc(1, sizeof(*j));
    if (!j) {
        if (done)
            done(arg, FERRY_ENOMEM);
        return;
    }
    j->fn = fn;
    j->done = done;
    j->arg = arg;
    j->record = !urgent;
    pthread_mutex_lock(&q->mu);
    if (q->todo_tail)
        q->todo_tail->next = j;
    else
        q->todo = j;
    q->todo_tail = j;
    q->urgent |= urgent;
    /* A pacing thread is woken by an urgent job or a full batch (or its
     * timer), not by every record. */
    if (++q->ntodo >= STOREQ_BATCH_FULL || !q->pacing || urgent)
        pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

void storeq_push(storeq *q, storeq_fn fn, storeq_done done, void *arg) {
    push(q, fn, done, arg, 1);
}

void storeq_push_record(storeq *q, storeq_fn fn, storeq_done done, void *arg) {
    push(q, fn, done, arg, 0);
}

void storeq_on_failure(storeq *q, storeq_fail_fn fn, void *ud) {
    q->on_fail = fn;
    q->fail_ud = ud;
}

void storeq_stats(storeq *q, uint64_t *batches, uint64_t *jobs,
                  uint64_t *paced) {
    pthread_mutex_lock(&q->mu);
    *batches = q->batches;
    *jobs = q->jobs;
    *paced = q->paced;
    pthread_mutex_unlock(&q->mu);
}

static void on_async_closed(uv_handle_t *h) {
    storeq *q = h->data;
    void (*closed)(void *) = q->closed;
    void *ud = q->closed_ud;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    pthread_cond_destroy(&q->ckpt_cv);
    free(q);
    if (closed)
        closed(ud);
}

const char *storeq_error(storeq *q, int rc) {
    if (rc && q->done_msg[0])
        return q->done_msg;
    return ferry_strerror(rc);
}

void storeq_stop(storeq *q, void (*closed)(void *ud), void *ud) {
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    q->stop_by = mono_us() + (int64_t)STOP_RETRY_MS * 1000;
    pthread_cond_signal(&q->cv);
    pthread_cond_signal(&q->ckpt_cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    if (q->ckpt) {
        pthread_join(q->ckpt_thread, NULL);
        q->ckpt->vt->checkpoint(q->ckpt, NULL);
    }
    on_finished(&q->async); /* what the last batch finished */
    q->closed = closed;
    q->closed_ud = ud;
    uv_close((uv_handle_t *)&q->async, on_async_closed);
}
