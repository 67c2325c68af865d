/*
 * The poller: runs the poll triggers of the deployed instances.
 *
 * One entry per (instance, flow) with a poll trigger. For the built-in
 * file.poll an entry looks at its directory on the trigger's schedule, when
 * the directory reports a change (a uv fs event), when an execution it
 * started ends, and when a file that was not stable yet may have become so.
 * A look has three stages:
 *
 *   1. the thread pool lists the directory (poll_scan);
 *   2. the loop thread keeps what the read lock and min_age allow
 *      (poll_ready), in sort_by order;
 *   3. one store job looks up each file's dedupe key (path, size, mtime):
 *      - a new key is claimed and its execution written as "queued", both
 *        in the job's transaction, up to max_per_poll, batch_size items to
 *        an execution; only after the commit are the runs dispatched;
 *      - a key whose execution has ended is disposed of (moved to move_to
 *        or move_failed_to, deleted, or kept) and marked so;
 *      - a key whose execution was interrupted by a host stop (or whose
 *        execution row is gone) is released and taken again;
 *      - a key whose execution is queued or running is left alone.
 *
 * So a crash can neither skip a file (its key and its execution commit
 * together) nor run it twice (the key stays claimed), and a file whose
 * execution ended while the host was down is disposed of at the next look.
 * Loop thread only, except scan_work (thread pool) and job_run (store
 * thread), which only read the entry's spec.
 */
#include "host_internal.h"

#include "flow/flow_poll.h"
#include "sched/poll.h"

#include <ferry/ferry.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A burst of fs events is answered by one look this long after the first. */
#define POLL_EVENT_DELAY_MS 100
/* After an execution of the flow ends: soon, to dispose of its files. */
#define POLL_DONE_DELAY_MS 50
/* The longest a schedule timer waits before it looks at the clock again. */
#define POLL_MAX_WAIT_MS 60000
/* The same error is logged at most this often per entry. */
#define POLL_ERROR_EVERY_MS 60000

typedef struct poll_entry {
    struct host_poll *p;
    deployment *dep; /* a reference */
    const flow_def *fdef;
    poll_spec spec;
    int is_file;
    int is_listing;   /* a component's FERRY_TRIGGER_FILES poll */
    uv_timer_t timer; /* the schedule */
    uv_timer_t soon;  /* an earlier look: events, ends, rechecks */
    int64_t soon_at_ms;
    uv_fs_event_t watch;
    int watching;
    int64_t next_s;
    poll_look prev;  /* the last look */
    int busy;        /* a look (scan or store job) refers to the entry */
    char run_id[40]; /* a component poll's run in flight, or "" */
    int again;       /* another look was asked for meanwhile */
    int closing;
    int handles; /* open uv handles */
    int64_t last_error_ms;
    char last_error[256];
    struct poll_entry *next;
} poll_entry;

struct host_poll {
    host *h;
    poll_entry *entries;
    size_t open; /* entries not freed yet */
    int stopped;
};

static int64_t now_ms(void) {
    return store_now_us() / 1000;
}

static json_t *entry_fields(const poll_entry *e) {
    return json_pack("{s:s, s:s, s:s}", "instance", e->dep->instance, "flow",
                     e->fdef->name, "source", e->spec.source);
}

/* Logs an error, the same one at most every POLL_ERROR_EVERY_MS. */
static void entry_error(poll_entry *e, const char *msg) {
    int64_t now = now_ms();
    if (!strcmp(msg, e->last_error) &&
        now - e->last_error_ms < POLL_ERROR_EVERY_MS)
        return;
    snprintf(e->last_error, sizeof(e->last_error), "%s", msg);
    e->last_error_ms = now;
    host_log(e->p->h, "error", entry_fields(e), "poll: %s", msg);
}

static void entry_maybe_free(poll_entry *e) {
    if (!e->closing || e->busy || e->handles)
        return;
    struct host_poll *p = e->p;
    poll_spec_clear(&e->spec);
    poll_look_clear(&e->prev);
    deployment_unref(e->dep);
    free(e);
    if (--p->open == 0 && p->stopped)
        free(p);
}

static void look(poll_entry *e);

/* ---- stage 3: the store job ---- */

typedef struct cand {
    char *key;
    poll_file f; /* f.rel owned */
} cand;

typedef struct new_exec {
    char id[40];
    json_t *trigger;
    char *trigger_text;
    int ok;
} new_exec;

typedef struct poll_job {
    poll_entry *e;
    cand *c;
    size_t n;
    int64_t created_us;
    new_exec *ex;
    size_t nex;
    size_t taken, disposed, released, left;
    size_t more;    /* new files past max_per_poll */
    json_t *result; /* a component poll's {"items", "cursor"} */
    json_t *todo;   /* files to dispose of after the commit */
    size_t dups;    /* items whose key was taken before */
    char err[512];
} poll_job;

static void job_free(poll_job *j) {
    for (size_t i = 0; i < j->n; i++) {
        free(j->c[i].key);
        free(j->c[i].f.rel);
    }
    free(j->c);
    for (size_t i = 0; i < j->nex; i++) {
        json_decref(j->ex[i].trigger);
        free(j->ex[i].trigger_text);
    }
    free(j->ex);
    json_decref(j->result);
    json_decref(j->todo);
    free(j);
}

static void job_error(poll_job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void job_error(poll_job *j, const char *fmt, ...) {
    if (j->err[0])
        return; /* the first one says most */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err, sizeof(j->err), fmt, ap);
    va_end(ap);
}

/* mkdir -p of the directory part of path. */
static int mkdirs_for(char *path) {
    char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    *slash = 0;
    int rc = 0;
    if (mkdir(path, 0777) && errno != EEXIST) {
        if (errno == ENOENT && mkdirs_for(path) == 0)
            rc = mkdir(path, 0777) && errno != EEXIST ? -1 : 0;
        else
            rc = -1;
    }
    *slash = '/';
    return rc;
}

/* Moves rel into sub (both under dir) without replacing a file already
 * there: one that is gets the execution id appended to the new name. */
static int move_into(poll_job *j, const char *dir, const char *sub,
                     const char *rel, const char *exec_id, char *dest,
                     size_t destn) {
    char from[PATH_MAX];
    if ((size_t)snprintf(from, sizeof(from), "%s/%s", dir, rel) >=
            sizeof(from) ||
        (size_t)snprintf(dest, destn, "%s/%s/%s", dir, sub, rel) >= destn) {
        job_error(j, "%s/%s: path too long", dir, rel);
        return -1;
    }
    if (mkdirs_for(dest)) {
        job_error(j, "cannot create the directory for %s: %s", dest,
                  strerror(errno));
        return -1;
    }
    if (renameat2(AT_FDCWD, from, AT_FDCWD, dest, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EEXIST) {
        size_t len = strlen(dest);
        if ((size_t)snprintf(dest + len, destn - len, ".%s", exec_id) <
                destn - len &&
            renameat2(AT_FDCWD, from, AT_FDCWD, dest, RENAME_NOREPLACE) == 0)
            return 0;
    }
    job_error(j, "cannot move %s to %s: %s", from, dest, strerror(errno));
    return -1;
}

/* Deals with a file whose execution ended. Returns the disposition, or
 * NULL if it failed (and will be tried at the next look). */
static const char *dispose(poll_job *j, const char *rel, const char *status,
                           const char *exec_id) {
    const poll_file_opts *o = &j->e->spec.file;
    int ok = !strcmp(status, "succeeded");
    char dest[PATH_MAX];
    if (o->keep)
        return "kept";
    if (ok && o->delete_after) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", o->directory, rel);
        if (unlink(path) && errno != ENOENT) {
            job_error(j, "cannot delete %s: %s", path, strerror(errno));
            return NULL;
        }
        return "deleted";
    }
    const char *sub = ok ? o->move_to : o->move_failed_to;
    if (!sub)
        return "kept";
    if (move_into(j, o->directory, sub, rel, exec_id, dest, sizeof(dest)))
        return NULL;
    return ok ? "moved" : "moved_failed";
}

static json_t *item_json(const poll_entry *e, const cand *c) {
    char path[PATH_MAX], mtime[48];
    snprintf(path, sizeof(path), "%s/%s", e->spec.file.directory, c->f.rel);
    const char *slash = strrchr(c->f.rel, '/');
    int64_t us = c->f.mtime_ns / 1000;
    if (!store_format_time(us, mtime, sizeof(mtime)))
        snprintf(mtime, sizeof(mtime), "%lld", (long long)us);
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "path", path, "relative",
                     c->f.rel, "name", slash ? slash + 1 : c->f.rel, "size",
                     (json_int_t)c->f.size, "mtime", mtime, "key", c->key);
}

/* Starts one execution for items (stolen: an array) whose keys are
 * keys[0..n): the keys are claimed and the execution written as "queued",
 * in the caller's transaction. */
static void begin_exec(store *st, poll_job *j, json_t *items,
                       const char *const *keys, size_t n) {
    poll_entry *e = j->e;
    new_exec *x = &j->ex[j->nex++];
    if (!x->id[0])
        store_new_id("ex", x->id, sizeof(x->id));
    char now[48];
    if (!store_format_time(j->created_us, now, sizeof(now)))
        now[0] = 0;
    x->trigger = json_pack("{s:s, s:s, s:s, s:o}", "type", "poll", "source",
                           e->spec.source, "time", now, "items", items);
    if (x->trigger && e->is_file)
        json_object_set_new(x->trigger, "directory",
                            json_string(e->spec.file.directory));
    if (x->trigger && e->spec.batch_size == 1)
        json_object_set(x->trigger, "item", json_array_get(items, 0));
    x->trigger_text = x->trigger ? json_dumps(x->trigger, JSON_COMPACT) : NULL;
    if (!x->trigger_text) {
        job_error(j, "out of memory");
        return;
    }
    for (size_t i = 0; keys && i < n; i++) {
        if (st->vt->poll_claim(st, e->dep->instance, e->fdef->name, keys[i],
                               x->id, NULL)) {
            job_error(j, "%s", st->errmsg);
            return;
        }
    }
    store_exec ex = {.id = x->id,
                     .integration = e->dep->integration,
                     .instance = e->dep->instance,
                     .flow = e->fdef->name,
                     .trigger_json = x->trigger_text,
                     .status = "queued",
                     .created_us = j->created_us};
    if (st->vt->exec_begin(st, &ex)) {
        job_error(j, "%s", st->errmsg);
        return;
    }
    x->ok = 1;
    j->taken += json_array_size(items);
}

/* Starts one execution for the files at items[0..n) (indices into j->c). */
static void take_batch(store *st, poll_job *j, const size_t *items, size_t n) {
    json_t *arr = json_array();
    const char **keys = malloc((n ? n : 1) * sizeof(*keys));
    for (size_t i = 0; arr && keys && i < n; i++) {
        json_array_append_new(arr, item_json(j->e, &j->c[items[i]]));
        keys[i] = j->c[items[i]].key;
    }
    if (!arr || !keys) {
        json_decref(arr);
        free(keys);
        job_error(j, "out of memory");
        return;
    }
    begin_exec(st, j, arr, keys, n);
    free(keys);
}

static int terminal(const char *status) {
    return !strcmp(status, "succeeded") || !strcmp(status, "failed") ||
           !strcmp(status, "cancelled");
}

static void job_run(store *st, void *arg) {
    poll_job *j = arg;
    poll_entry *e = j->e;
    const char *inst = e->dep->instance, *flow = e->fdef->name;
    if (!st->vt->poll_lookup || !st->vt->poll_claim) {
        job_error(j, "the store does not record poll items");
        return;
    }
    size_t max = e->spec.file.max_per_poll;
    size_t *take = malloc((j->n ? j->n : 1) * sizeof(*take));
    size_t ntake = 0;
    if (!take) {
        job_error(j, "out of memory");
        return;
    }
    for (size_t i = 0; i < j->n; i++) {
        store_poll_item it;
        int rc = st->vt->poll_lookup(st, inst, flow, j->c[i].key, &it);
        if (rc == FERRY_ENOTFOUND) {
            if (max && ntake >= max)
                j->more++;
            else
                take[ntake++] = i;
            continue;
        }
        if (rc) {
            job_error(j, "%s", st->errmsg);
            break;
        }
        if (it.disposed)
            continue; /* kept, or a disposal that could not remove it */
        if (!it.status[0] || it.interrupted) {
            /* Interrupted by a host stop, or lost: take it again. */
            if (st->vt->poll_release(st, inst, flow, j->c[i].key)) {
                job_error(j, "%s", st->errmsg);
                break;
            }
            j->released++;
            if (max && ntake >= max)
                j->more++;
            else
                take[ntake++] = i;
            continue;
        }
        if (!terminal(it.status)) {
            j->left++;
            continue;
        }
        /* Moved or deleted only once this transaction (which may hold
         * the execution's end) has committed: see job_done. */
        if (!j->todo)
            j->todo = json_array();
        json_array_append_new(
            j->todo, json_pack("{s:s, s:s, s:s, s:s}", "key", j->c[i].key,
                               "rel", j->c[i].f.rel, "status", it.status,
                               "execution_id", it.execution_id));
    }
    size_t bs = e->spec.batch_size ? e->spec.batch_size : 1;
    j->ex = calloc(ntake / bs + 1, sizeof(*j->ex));
    for (size_t k = 0; j->ex && k < ntake; k += bs)
        take_batch(st, j, take + k, ntake - k < bs ? ntake - k : bs);
    free(take);
}

typedef struct mark_job {
    char *instance, *flow;
    json_t *marks; /* [{key, what}] */
} mark_job;

static void mark_run(store *st, void *arg) {
    mark_job *m = arg;
    size_t i;
    json_t *x;
    json_array_foreach(m->marks, i, x) {
        st->vt->poll_disposed(st, m->instance, m->flow,
                              json_string_value(json_object_get(x, "key")),
                              json_string_value(json_object_get(x, "what")));
    }
}

static void mark_done(void *arg, int commit_rc) {
    mark_job *m = arg;
    (void)commit_rc; /* not marked: looked at again, a file already gone */
    free(m->instance);
    free(m->flow);
    json_decref(m->marks);
    free(m);
}

/* The files whose executions' ends are now durable: moved, deleted or
 * kept, then marked so. A host that dies in between finds the files gone
 * (nothing to do) or still there (done at the next look). */
static void dispose_todo(poll_job *j) {
    poll_entry *e = j->e;
    json_t *marks = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(j->todo, i, t) {
        const char *what =
            dispose(j, json_string_value(json_object_get(t, "rel")),
                    json_string_value(json_object_get(t, "status")),
                    json_string_value(json_object_get(t, "execution_id")));
        if (what) {
            json_array_append_new(marks, json_pack("{s:O, s:s}", "key",
                                                   json_object_get(t, "key"),
                                                   "what", what));
            j->disposed++;
        }
    }
    mark_job *m = calloc(1, sizeof(*m));
    if (!m || !json_array_size(marks)) {
        free(m);
        json_decref(marks);
        return;
    }
    m->instance = strdup(e->dep->instance);
    m->flow = strdup(e->fdef->name);
    m->marks = marks;
    storeq_push(e->p->h->q, mark_run, mark_done, m);
}

static void job_done(void *arg, int commit_rc) {
    poll_job *j = arg;
    poll_entry *e = j->e;
    host *h = e->p->h;
    e->busy = 0;
    if (!commit_rc && j->todo)
        dispose_todo(j);
    if (commit_rc) {
        entry_error(e, "the look was not recorded; nothing started");
    } else {
        if (j->err[0])
            entry_error(e, j->err);
        size_t started = 0;
        for (size_t i = 0; i < j->nex; i++) {
            if (!j->ex[i].ok)
                continue;
            run *r = run_new(h, j->ex[i].id, e->dep, e->fdef->name,
                             j->ex[i].trigger);
            if (!r) {
                host_log(h, "error", entry_fields(e),
                         "poll: out of memory; execution %s stays queued "
                         "until the next start",
                         j->ex[i].id);
                continue;
            }
            r->queued_us = j->created_us;
            queue_push(h, r);
            started++;
        }
        if (started)
            dispatch(h);
        if (j->taken || j->disposed || j->released) {
            json_t *f = entry_fields(e);
            json_object_set_new(f, "taken", json_integer((json_int_t)j->taken));
            json_object_set_new(f, "executions",
                                json_integer((json_int_t)started));
            json_object_set_new(f, "disposed",
                                json_integer((json_int_t)j->disposed));
            json_object_set_new(f, "retaken",
                                json_integer((json_int_t)j->released));
            json_object_set_new(f, "deferred",
                                json_integer((json_int_t)j->more));
            host_log(h, "info", f, "poll: %zu new item(s), %zu disposed of",
                     j->taken, j->disposed);
        }
        if (j->taken)
            metrics_add(h->m, "ferry_poll_items_total", (double)j->taken,
                        "source", e->spec.source, NULL);
    }
    job_free(j);
    if (e->closing) {
        entry_maybe_free(e);
        return;
    }
    if (e->again) {
        e->again = 0;
        look(e);
    }
}

/* ---- component polls ----
 *
 * A component's poll runs in a worker like an execution, recorded under
 * the flow name "<flow>:poll" with the trigger payload {"type":
 * "poll_run", "source", "time", "options", "cursor"}: its queued row is
 * written with the stored cursor in one store job. When it ends, one more
 * store job takes what it found: each item's key (its "key", else its
 * JSON text) is claimed for a new execution unless it was taken before,
 * and the new cursor is stored, all in one transaction. A failed poll
 * stores nothing: the next one starts from the same cursor. */

typedef struct cpoll_job {
    poll_entry *e;
    char id[40];
    char flow[300];
    json_t *trigger;
    int64_t created_us;
    int ok;
    char err[512];
} cpoll_job;

/* What a listing trigger's next poll is to do with the files whose
 * executions ended: [{"key", "path", "action": "move", "to"} or
 * {"key", "path", "action": "delete"}]. Kept files are marked at once; a
 * file whose execution was interrupted by a host stop is released, to be
 * taken again when listed. NULL on a store error (err set). */
#define LISTING_DISPOSE_MAX 500
static json_t *listing_dispose(store *st, poll_entry *e, char *err, size_t n) {
    const char *inst = e->dep->instance, *flow = e->fdef->name;
    const poll_file_opts *o = &e->spec.file;
    json_t *pend = NULL, *out = json_array();
    if (!out || !st->vt->poll_pending ||
        st->vt->poll_pending(st, inst, flow, LISTING_DISPOSE_MAX, &pend)) {
        snprintf(err, n, "%s", out ? st->errmsg : "out of memory");
        json_decref(out);
        return NULL;
    }
    size_t i;
    json_t *p;
    json_array_foreach(pend, i, p) {
        const char *key = json_string_value(json_object_get(p, "key"));
        const char *status = json_string_value(json_object_get(p, "status"));
        const json_t *item = json_object_get(p, "item");
        const char *path = json_string_value(json_object_get(item, "path"));
        const char *rel = json_string_value(json_object_get(item, "relative"));
        int rc = 0;
        if (!status || !*status ||
            json_is_true(json_object_get(p, "interrupted"))) {
            rc = st->vt->poll_release(st, inst, flow, key);
        } else if (!path || !rel) {
            rc = st->vt->poll_disposed(st, inst, flow, key, "unknown");
        } else {
            int ok = !strcmp(status, "succeeded");
            const char *sub = ok ? o->move_to : o->move_failed_to;
            if (o->keep || (!sub && !(ok && o->delete_after))) {
                rc = st->vt->poll_disposed(st, inst, flow, key, "kept");
            } else if (ok && o->delete_after) {
                json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "key",
                                                     key, "path", path,
                                                     "action", "delete"));
            } else {
                /* The listed directory: path without its relative part. */
                size_t pl = strlen(path), rl = strlen(rel);
                size_t bl = pl >= rl && !strcmp(path + pl - rl, rel)
                                ? pl - rl
                                : (size_t)(strrchr(path, '/')
                                               ? strrchr(path, '/') - path + 1
                                               : 0);
                char *to = NULL;
                if (asprintf(&to, "%.*s%s%s/%s", (int)bl, path,
                             bl && path[bl - 1] != '/' ? "/" : "", sub,
                             rel) > 0)
                    json_array_append_new(
                        out, json_pack("{s:s, s:s, s:s, s:s, s:s}", "key", key,
                                       "path", path, "action", "move", "to", to,
                                       "disposition",
                                       ok ? "moved" : "moved_failed"));
                free(to);
            }
        }
        if (rc) {
            snprintf(err, n, "%s", st->errmsg);
            json_decref(pend);
            json_decref(out);
            return NULL;
        }
    }
    json_decref(pend);
    return out;
}

static void cpoll_start_run(store *st, void *arg) {
    cpoll_job *j = arg;
    poll_entry *e = j->e;
    char *text = NULL;
    json_t *cursor = NULL;
    int rc = st->vt->poll_cursor_get
                 ? st->vt->poll_cursor_get(st, e->dep->instance, e->fdef->name,
                                           &text)
                 : FERRY_ENOTFOUND;
    if (rc == 0)
        cursor = json_loads(text, JSON_DECODE_ANY, NULL);
    free(text);
    if (rc && rc != FERRY_ENOTFOUND) {
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
        return;
    }
    char now[48];
    if (!store_format_time(j->created_us, now, sizeof(now)))
        now[0] = 0;
    j->trigger = json_pack("{s:s, s:s, s:s, s:o, s:o}", "type", "poll_run",
                           "source", e->spec.source, "time", now, "options",
                           json_deep_copy(e->spec.options), "cursor",
                           cursor ? cursor : json_null());
    if (j->trigger && e->is_listing) {
        json_t *dispose = listing_dispose(st, e, j->err, sizeof(j->err));
        if (!dispose)
            return;
        json_object_set_new(j->trigger, "dispose", dispose);
    }
    char *trig = j->trigger ? json_dumps(j->trigger, JSON_COMPACT) : NULL;
    if (!trig) {
        snprintf(j->err, sizeof(j->err), "out of memory");
        return;
    }
    store_exec ex = {.id = j->id,
                     .integration = e->dep->integration,
                     .instance = e->dep->instance,
                     .flow = j->flow,
                     .trigger_json = trig,
                     .status = "queued",
                     .created_us = j->created_us};
    if (st->vt->exec_begin(st, &ex))
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
    else
        j->ok = 1;
    free(trig);
}

static void cpoll_start_done(void *arg, int commit_rc) {
    cpoll_job *j = arg;
    poll_entry *e = j->e;
    host *h = e->p->h;
    e->busy = 0;
    if (commit_rc || !j->ok) {
        entry_error(e, commit_rc ? "the poll run was not recorded" : j->err);
    } else {
        run *r = run_new(h, j->id, e->dep, j->flow, j->trigger);
        if (r) {
            r->queued_us = j->created_us;
            queue_push(h, r);
            dispatch(h);
            if (!e->closing)
                snprintf(e->run_id, sizeof(e->run_id), "%s", j->id);
        } else {
            entry_error(e, "out of memory; the poll run stays queued until "
                           "the next start");
        }
    }
    json_decref(j->trigger);
    free(j);
    entry_maybe_free(e);
}

static void cpoll_start(poll_entry *e) {
    cpoll_job *j = calloc(1, sizeof(*j));
    if (!j) {
        entry_error(e, "out of memory");
        return;
    }
    j->e = e;
    j->created_us = store_now_us();
    store_new_id("ex", j->id, sizeof(j->id));
    snprintf(j->flow, sizeof(j->flow), "%s%s", e->fdef->name, FLOW_POLL_SUFFIX);
    e->busy = 1;
    storeq_push(e->p->h->q, cpoll_start_run, cpoll_start_done, j);
}

/* The key of a component's item: its "key" string, else its JSON text
 * (keys sorted). malloc'd. */
static char *item_key(const json_t *item) {
    const char *k = json_string_value(json_object_get(item, "key"));
    if (k && *k)
        return strdup(k);
    return json_dumps(item, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static void cpoll_commit_run(store *st, void *arg) {
    poll_job *j = arg;
    poll_entry *e = j->e;
    const char *inst = e->dep->instance, *flow = e->fdef->name;
    const json_t *items = json_object_get(j->result, "items");
    size_t n = json_array_size(items);
    size_t bs = e->spec.batch_size ? e->spec.batch_size : 1;
    json_t **batch = calloc(n / bs + 1, sizeof(*batch));
    j->ex = calloc(n / bs + 1, sizeof(*j->ex));
    if (!batch || !j->ex) {
        free(batch);
        job_error(j, "out of memory");
        return;
    }
    /* Files a listing trigger disposed of, as the run reported. */
    size_t di;
    json_t *d;
    json_array_foreach(json_object_get(j->result, "disposed_keys"), di, d) {
        if (st->vt->poll_disposed(
                st, inst, flow, json_string_value(json_object_get(d, "key")),
                json_string_value(json_object_get(d, "disposition"))))
            job_error(j, "%s", st->errmsg);
        else
            j->disposed++;
    }
    size_t max = e->is_listing ? e->spec.file.max_per_poll : 0;
    size_t ntake = 0, nb = 0;
    for (size_t i = 0; i < n && !j->err[0]; i++) {
        const json_t *item = json_array_get(items, i);
        if (max && ntake >= max) {
            j->more++;
            continue;
        }
        char *key = item_key(item);
        store_poll_item it;
        int rc =
            key ? st->vt->poll_lookup(st, inst, flow, key, &it) : FERRY_ENOMEM;
        if (rc == 0) {
            j->dups++;
        } else if (rc != FERRY_ENOTFOUND) {
            job_error(j, "%s", key ? st->errmsg : "out of memory");
        } else {
            /* Claimed at once, for the batch's execution id: a key that
             * comes twice in one result is a duplicate too. */
            size_t b = ntake / bs;
            if (!batch[b]) {
                batch[b] = json_array();
                store_new_id("ex", j->ex[b].id, sizeof(j->ex[b].id));
                nb = b + 1;
            }
            json_t *copy = json_deep_copy(item);
            if (json_is_object(copy))
                json_object_set_new(copy, "key", json_string(key));
            char *text =
                copy ? json_dumps(copy, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            if (!text ||
                st->vt->poll_claim(st, inst, flow, key, j->ex[b].id, text)) {
                job_error(j, "%s", text ? st->errmsg : "out of memory");
                json_decref(copy);
            } else {
                json_array_append_new(batch[b], copy);
                ntake++;
            }
            free(text);
        }
        free(key);
    }
    for (size_t b = 0; b < nb && !j->err[0]; b++) {
        begin_exec(st, j, batch[b], NULL, json_array_size(batch[b]));
        batch[b] = NULL;
    }
    for (size_t b = 0; b < nb; b++)
        json_decref(batch[b]);
    free(batch);
    if (j->err[0])
        return;
    char *cursor = json_dumps(json_object_get(j->result, "cursor")
                                  ? json_object_get(j->result, "cursor")
                                  : json_null(),
                              JSON_COMPACT | JSON_ENCODE_ANY);
    if (!cursor || st->vt->poll_cursor_set(st, inst, flow, cursor))
        job_error(j, "%s", cursor ? st->errmsg : "out of memory");
    free(cursor);
}

/* ---- stages 1 and 2 ---- */

typedef struct scan_req {
    uv_work_t w;
    poll_entry *e;
    poll_look look;
    int rc;
    char err[512];
} scan_req;

static void scan_work(uv_work_t *w) {
    scan_req *s = w->data;
    poll_entry *e = s->e;
    /* A missing directory is made (and reported only if that fails). */
    if (access(e->spec.file.directory, F_OK) && errno == ENOENT) {
        char buf[PATH_MAX + 2];
        snprintf(buf, sizeof(buf), "%s/x", e->spec.file.directory);
        mkdirs_for(buf);
    }
    s->rc = poll_scan(&e->spec.file, &s->look, s->err, sizeof(s->err));
}

static void arm_soon(poll_entry *e, int64_t at_ms);

static void scan_after(uv_work_t *w, int status) {
    scan_req *s = w->data;
    poll_entry *e = s->e;
    if (status || s->rc || e->closing) {
        if (!e->closing && (status || s->rc))
            entry_error(e, status ? uv_strerror(status) : s->err);
        poll_look_clear(&s->look);
        free(s);
        e->busy = 0;
        if (e->closing)
            entry_maybe_free(e);
        return;
    }
    int64_t now = now_ms();
    poll_look_carry(&s->look, &e->prev, now);
    poll_look_clear(&e->prev);
    e->prev = s->look;
    free(s);
    size_t *idx = NULL, n = 0;
    int64_t recheck = -1;
    poll_job *j = calloc(1, sizeof(*j));
    if (!j || poll_ready(&e->spec.file, &e->prev, now, &idx, &n, &recheck) ||
        !(j->c = calloc(n ? n : 1, sizeof(*j->c)))) {
        free(j);
        free(idx);
        e->busy = 0;
        entry_error(e, "out of memory");
        return;
    }
    j->e = e;
    j->created_us = store_now_us();
    for (size_t i = 0; i < n; i++) {
        const poll_file *f = &e->prev.files[idx[i]];
        cand *c = &j->c[j->n];
        c->f = *f;
        c->f.rel = strdup(f->rel);
        c->key = poll_file_key(f);
        if (!c->f.rel || !c->key) {
            free(c->f.rel);
            free(c->key);
            continue;
        }
        j->n++;
    }
    free(idx);
    if (recheck >= 0)
        arm_soon(e, recheck);
    storeq_push(e->p->h->q, job_run, job_done, j);
}

static void look(poll_entry *e) {
    if (e->closing || e->p->stopped)
        return;
    if (!e->is_file) {
        /* One poll run at a time: a look due while one is queued or
         * running is taken once it has ended (job_done), so that what
         * ended meanwhile is disposed of without waiting a whole
         * interval. */
        if (e->busy || e->run_id[0])
            e->again = 1;
        else
            cpoll_start(e);
        return;
    }
    if (e->busy) {
        e->again = 1;
        return;
    }
    scan_req *s = calloc(1, sizeof(*s));
    if (!s) {
        entry_error(e, "out of memory");
        return;
    }
    s->e = e;
    s->w.data = s;
    e->busy = 1;
    int rc = uv_queue_work(e->p->h->loop, &s->w, scan_work, scan_after);
    if (rc) {
        e->busy = 0;
        free(s);
        entry_error(e, uv_strerror(rc));
    }
}

/* ---- timers and events ---- */

static void on_soon(uv_timer_t *t) {
    poll_entry *e = t->data;
    e->soon_at_ms = 0;
    look(e);
}

/* A look at at_ms (wall clock) at the latest, unless one is due earlier. */
static void arm_soon(poll_entry *e, int64_t at_ms) {
    if (e->closing)
        return;
    if (e->soon_at_ms && e->soon_at_ms <= at_ms)
        return;
    int64_t wait = at_ms - now_ms();
    if (wait < 0)
        wait = 0;
    e->soon_at_ms = at_ms;
    uv_timer_start(&e->soon, on_soon, (uint64_t)wait, 0);
}

static void on_timer(uv_timer_t *t);

static void arm(poll_entry *e) {
    int64_t now = store_now_us() / 1000000;
    if (e->next_s == SCHED_NONE || e->next_s < now)
        e->next_s = sched_spec_next(&e->spec.sched, now);
    if (e->next_s == SCHED_NONE)
        return;
    int64_t wait = e->next_s * 1000 - now_ms();
    if (wait < 0)
        wait = 0;
    if (wait > POLL_MAX_WAIT_MS)
        wait = POLL_MAX_WAIT_MS;
    uv_timer_start(&e->timer, on_timer, (uint64_t)wait, 0);
}

static void on_timer(uv_timer_t *t) {
    poll_entry *e = t->data;
    if (store_now_us() >= e->next_s * 1000000) {
        e->next_s = SCHED_NONE;
        look(e);
    }
    arm(e);
}

static void on_fs_event(uv_fs_event_t *w, const char *name, int events,
                        int status) {
    poll_entry *e = w->data;
    (void)name;
    (void)events;
    if (status == 0)
        arm_soon(e, now_ms() + POLL_EVENT_DELAY_MS);
}

static void on_closed(uv_handle_t *hd) {
    poll_entry *e = hd->data;
    e->handles--;
    entry_maybe_free(e);
}

static void entry_close(poll_entry *e) {
    e->closing = 1;
    uv_close((uv_handle_t *)&e->timer, on_closed);
    uv_close((uv_handle_t *)&e->soon, on_closed);
    if (e->watching)
        uv_close((uv_handle_t *)&e->watch, on_closed);
}

/* ---- building the entries ---- */

static void start_entry(struct host_poll *p, deployment *dep,
                        const flow_def *f) {
    host *h = p->h;
    char msg[512];
    poll_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return;
    if (poll_spec_from_trigger(&e->spec, f->trigger,
                               dep->in ? dep->in->config : NULL, msg,
                               sizeof(msg))) {
        host_log(
            h, "error",
            json_pack("{s:s, s:s}", "instance", dep->instance, "flow", f->name),
            "poll: %s", msg);
        poll_spec_clear(&e->spec);
        free(e);
        return;
    }
    e->is_file = !strcmp(e->spec.source, POLL_FILE_SOURCE);
    const ferry_trigger *trig =
        e->is_file ? NULL : abi_find_trigger(h->reg, e->spec.source, NULL);
    e->is_listing = trig && (trig->flags & FERRY_TRIGGER_FILES);
    /* A relative directory is the host's working directory's. */
    if (e->is_file && e->spec.file.directory[0] != '/') {
        char cwd[PATH_MAX], *abs = NULL;
        if (getcwd(cwd, sizeof(cwd)) &&
            asprintf(&abs, "%s/%s", cwd, e->spec.file.directory) > 0) {
            free(e->spec.file.directory);
            e->spec.file.directory = abs;
        }
    }
    e->p = p;
    e->dep = deployment_ref(dep);
    e->fdef = f;
    e->next_s = SCHED_NONE;
    uv_timer_init(h->loop, &e->timer);
    uv_timer_init(h->loop, &e->soon);
    e->timer.data = e->soon.data = e;
    uv_unref((uv_handle_t *)&e->timer);
    uv_unref((uv_handle_t *)&e->soon);
    e->handles = 2;
    char buf[PATH_MAX + 2];
    if (e->is_file) {
        snprintf(buf, sizeof(buf), "%s/x", e->spec.file.directory);
        mkdirs_for(buf);
    }
    if (e->is_file && uv_fs_event_init(h->loop, &e->watch) == 0) {
        e->watch.data = e;
        e->handles++;
        e->watching = 1;
        int rc = uv_fs_event_start(&e->watch, on_fs_event,
                                   e->spec.file.directory, 0);
        if (rc)
            host_log(h, "warn", entry_fields(e),
                     "poll: cannot watch %s (%s); it is looked at on the "
                     "schedule only",
                     e->spec.file.directory, uv_strerror(rc));
        uv_unref((uv_handle_t *)&e->watch);
    }
    p->open++;
    e->next = p->entries;
    p->entries = e;
    arm(e);
    look(e); /* a first look now: files that waited while the host was down */
}

static void build_entries(struct host_poll *p, const char *only) {
    host *h = p->h;
    size_t n = only ? 1 : deploy_table_count(h->deps);
    for (size_t i = 0; i < n; i++) {
        deployment *dep = only ? deploy_table_get(h->deps, only)
                               : deploy_table_at(h->deps, i);
        if (!dep || !dep->ig)
            continue;
        for (size_t k = 0; k < dep->ig->nflows; k++)
            if (poll_is_trigger(dep->ig->flows[k].trigger))
                start_entry(p, dep, &dep->ig->flows[k]);
    }
}

static void close_entries(poll_entry **list) {
    poll_entry *e = *list;
    *list = NULL;
    while (e) {
        poll_entry *next = e->next;
        entry_close(e);
        e = next;
    }
}

/* ---- the interface ---- */

void host_poll_start(host *h) {
    if (h->poll || h->stopping)
        return;
    struct host_poll *p = calloc(1, sizeof(*p));
    if (!p) {
        host_log(h, "error", NULL, "poll: out of memory; no polls");
        return;
    }
    p->h = h;
    h->poll = p;
    build_entries(p, NULL);
}

void host_poll_reload(host *h) {
    struct host_poll *p = h->poll;
    if (!p || p->stopped)
        return;
    /* The new entries look again at once; a look still in flight for an
     * old entry finishes first, and keys keep either from taking a file
     * twice. The stability of files seen so far starts over. */
    poll_entry *old = p->entries;
    p->entries = NULL;
    close_entries(&old);
    build_entries(p, NULL);
}

void host_poll_reload_instance(host *h, const char *instance) {
    struct host_poll *p = h->poll;
    if (!p || p->stopped)
        return;
    poll_entry *old = NULL, **q = &p->entries;
    while (*q) {
        poll_entry *e = *q;
        if (!strcmp(e->dep->instance, instance)) {
            *q = e->next;
            e->next = old;
            old = e;
        } else {
            q = &e->next;
        }
    }
    close_entries(&old);
    build_entries(p, instance);
}

void host_poll_stop(host *h) {
    struct host_poll *p = h->poll;
    if (!p)
        return;
    h->poll = NULL;
    p->stopped = 1;
    close_entries(&p->entries);
    if (p->open == 0)
        free(p);
}

static int by_rel_cmp(const void *a, const void *b) {
    return strcmp(((const poll_file *)a)->rel, ((const poll_file *)b)->rel);
}

/* A listing trigger's poll run ended well: what it disposed of is marked,
 * and of what it listed, the files the read lock, min_age and the globs
 * allow are taken (in sort_by order, max_per_poll at most) by the commit
 * job, keyed by path, size and mtime. */
static void listing_done(poll_entry *e, const run *r) {
    host *h = e->p->h;
    const json_t *res = r->poll_result;
    json_t *done = json_array();
    size_t i;
    json_t *d, *x;
    /* The paths it says it disposed of, back to the keys they were
     * given with. */
    json_array_foreach(json_object_get(r->trigger, "dispose"), i, d) {
        const char *path = json_string_value(json_object_get(d, "path"));
        size_t k;
        json_array_foreach(json_object_get(res, "disposed"), k, x) {
            if (path && json_is_string(x) &&
                !strcmp(path, json_string_value(x))) {
                const char *how =
                    json_string_value(json_object_get(d, "disposition"));
                json_array_append_new(done, json_pack("{s:O, s:s}", "key",
                                                      json_object_get(d, "key"),
                                                      "disposition",
                                                      how ? how : "deleted"));
                break;
            }
        }
    }
    json_array_foreach(json_object_get(res, "dispose_errors"), i, d) {
        char msg[512];
        snprintf(msg, sizeof(msg), "cannot dispose of %s: %s",
                 json_string_value(json_object_get(d, "path")),
                 json_string_value(json_object_get(d, "error")));
        entry_error(e, msg);
    }
    /* This look, in the shape file.poll's selection takes. */
    const json_t *items = json_object_get(res, "items");
    poll_look look = {
        .files = calloc(json_array_size(items) + 1, sizeof(poll_file))};
    json_t *by_rel = json_object();
    json_array_foreach(items, i, x) {
        const char *rel = json_string_value(json_object_get(x, "relative"));
        const json_t *size = json_object_get(x, "size");
        const json_t *mtime = json_object_get(x, "mtime");
        if (!look.files || !rel || !json_is_integer(size) ||
            !json_is_integer(mtime) || json_object_get(by_rel, rel))
            continue;
        int in = e->spec.file.ninclude == 0;
        for (size_t g = 0; !in && g < e->spec.file.ninclude; g++)
            in = poll_glob_match(e->spec.file.include[g], rel);
        for (size_t g = 0; in && g < e->spec.file.nexclude; g++)
            in = !poll_glob_match(e->spec.file.exclude[g], rel);
        if (!in)
            continue;
        poll_file *f = &look.files[look.n];
        if (!(f->rel = strdup(rel)))
            continue;
        f->size = (uint64_t)json_integer_value(size);
        f->mtime_ns = (int64_t)json_integer_value(mtime) * 1000000000;
        look.n++;
        json_object_set(by_rel, rel, x);
    }
    poll_look sorted = look;
    if (sorted.n)
        qsort(sorted.files, sorted.n, sizeof(*sorted.files), by_rel_cmp);
    int64_t now = now_ms();
    poll_look_carry(&sorted, &e->prev, now);
    poll_look_clear(&e->prev);
    e->prev = sorted;
    size_t *idx = NULL, n = 0;
    int64_t recheck = -1;
    json_t *take = json_array();
    if (poll_ready(&e->spec.file, &e->prev, now, &idx, &n, &recheck) == 0) {
        for (size_t k = 0; k < n; k++) {
            const poll_file *f = &e->prev.files[idx[k]];
            json_t *item = json_deep_copy(json_object_get(by_rel, f->rel));
            /* A version the source gives (Dropbox's rev) names a file's
             * content better than its size and mtime in seconds. */
            const char *ver =
                json_string_value(json_object_get(item, "version"));
            if (!ver)
                ver = json_string_value(json_object_get(item, "rev"));
            char *key = NULL;
            if (ver && asprintf(&key, "%s|%s", f->rel, ver) < 0)
                key = NULL;
            if (!ver)
                key = poll_file_key(f);
            if (item && key) {
                json_object_set_new(item, "key", json_string(key));
                json_array_append_new(take, item);
            } else {
                json_decref(item);
            }
            free(key);
        }
    }
    free(idx);
    json_decref(by_rel);
    if (recheck >= 0)
        arm_soon(e, recheck);
    poll_job *j = calloc(1, sizeof(*j));
    if (!j) {
        json_decref(take);
        json_decref(done);
        entry_error(e, "out of memory");
        return;
    }
    j->e = e;
    j->result =
        json_pack("{s:o, s:O?, s:o}", "items", take, "cursor",
                  json_object_get(res, "cursor"), "disposed_keys", done);
    j->created_us = store_now_us();
    e->busy = 1;
    storeq_push(h->q, cpoll_commit_run, job_done, j);
}

void host_poll_run_done(host *h, const run *r) {
    struct host_poll *p = h->poll;
    if (!p || p->stopped || !r->fdef || !poll_is_trigger(r->fdef->trigger))
        return;
    poll_entry *e = NULL;
    for (poll_entry *x = p->entries; x && !e; x = x->next)
        if (!strcmp(x->dep->instance, r->dep->instance) &&
            !strcmp(x->fdef->name, r->fdef->name))
            e = x;
    if (!e)
        return;
    if (!r->poll) {
        if (e->is_file || e->is_listing)
            arm_soon(e, now_ms() + POLL_DONE_DELAY_MS);
        return;
    }
    if (!strcmp(e->run_id, r->id))
        e->run_id[0] = 0;
    const json_t *items = json_object_get(r->poll_result, "items");
    if (r->end_ok && json_is_array(items) && e->is_listing) {
        listing_done(e, r);
        return;
    }
    if (!r->end_ok || !json_is_array(items)) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 r->end_ok ? "poll run %s set no {\"items\": [...]} output"
                           : "poll run %s failed; its execution says why",
                 r->id);
        entry_error(e, msg);
        if (e->again) {
            e->again = 0;
            look(e);
        }
        return;
    }
    poll_job *j = calloc(1, sizeof(*j));
    if (!j) {
        entry_error(e, "out of memory");
        return;
    }
    j->e = e;
    j->result = json_incref(r->poll_result);
    j->created_us = store_now_us();
    e->busy = 1;
    storeq_push(h->q, cpoll_commit_run, job_done, j);
}
