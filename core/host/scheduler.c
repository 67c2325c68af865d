/*
 * The scheduler: fires the schedule triggers of the deployed instances.
 *
 * One entry per (instance, flow) with a schedule trigger, each with its own
 * timer armed for the flow's next fire time after now. The ticks fired in
 * one loop iteration are one store job: each tick's row (instance, flow,
 * fire time: a unique key) and its execution's "queued" row are written in
 * the same transaction, and only then is the run handed to the dispatcher.
 * A tick whose key is already recorded (another host, or an earlier life
 * of this one, fired it) starts nothing.
 *
 * Timers are armed on wall-clock times: a timer waits at most a minute, and
 * re-reads the clock when it fires, so a clock that jumps is followed.
 * Loop thread only, except the *_run store jobs.
 */
#include "host_internal.h"
#include "jtext/jtext.h"

#include "sched/sched.h"

#include <ferry/ferry.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest a timer waits before it looks at the clock again. */
#define SCHED_MAX_WAIT_MS 60000
/* Catch-up: at most this many missed times are listed in the payload, and
 * at most this many are counted before the search gives up. */
#define SCHED_MAX_MISSED_LISTED 100
#define SCHED_MAX_MISSED_SCANNED 1000000
/* A run_once tick that the store did not commit: its catch-up is looked
 * for again after this long, doubled at each failure up to the most. */
#define SCHED_RETRY_FIRST_MS 1000
#define SCHED_RETRY_MAX_MS 30000

typedef struct sched_entry {
    struct host_sched *s;
    uv_timer_t timer;
    deployment *dep; /* a reference */
    const flow_def *fdef;
    sched_spec spec;
    int64_t next_s; /* the fire time the timer is armed for */
    struct sched_entry *next;
} sched_entry;

struct host_sched {
    host *h;
    sched_entry *entries;
    /* Refreshes the loop's clock just before it computes how long to
     * sleep (see on_prepare). */
    uv_prepare_t fresh;
    /* The ticks fired since the last flush, in order: one store job for
     * all of them (see flush). */
    struct tick_job *pending, *pending_tail;
    /* run_once ticks the store did not commit, by schedule, and the timer
     * that fires their catch-ups (see retry_misfires). */
    struct failed_tick *failed;
    uv_timer_t retry;
    int retry_ms;
    int retry_armed;
    size_t open; /* entries whose timer is not closed yet, fresh, retry */
    int stopped;
};

static int64_t s_of(int64_t us) {
    return us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
}

static int64_t now_s(void) {
    return s_of(store_now_us());
}

static int is_schedule(const flow_def *f) {
    const char *type = json_string_value(json_object_get(f->trigger, "type"));
    return type && !strcmp(type, "schedule");
}

/* ---- a tick: the store job ----
 *
 * At a fire time the loop does as little as it can for each tick: when it
 * fired (created_us), whether it executes, and the job. The id, the
 * trigger payload and its text are made by tick_run on the store thread:
 * with ten thousand schedules due at the same second, building them on the
 * loop made the last tick fire over a hundred milliseconds after the
 * first. */

typedef struct tick_job {
    host *h;
    deployment *dep;        /* a reference */
    const char *flow;       /* borrowed from dep's integration */
    const sched_zone *zone; /* from the zone cache, never freed */
    char id[40];
    int64_t fire_us;
    int execute;    /* 0: record the tick only (a singleton flow was busy) */
    int run_once;   /* the schedule's misfire is run_once */
    json_t *missed; /* a run_once catch-up's list, or NULL */
    int64_t nmissed;
    json_t *trigger;
    char *trigger_text;
    int64_t created_us;
    int rc;                /* tick_insert */
    int exec_rc;           /* exec_begin */
    char *err;             /* malloc'd, when rc or exec_rc says so */
    struct tick_job *next; /* in the scheduler's pending list */
} tick_job;

static void tick_job_free(tick_job *j) {
    free(j->err);
    deployment_unref(j->dep);
    json_decref(j->missed);
    json_decref(j->trigger);
    free(j->trigger_text);
    free(j);
}

/* The id and the trigger payload (store thread). Returns 0, or -1 out of
 * memory. */
static int tick_make(tick_job *j) {
    store_new_id("ex", j->id, sizeof(j->id));
    int64_t fire_s = j->fire_us / 1000000;
    char scheduled[40], actual[40], local[40];
    sched_format_time(NULL, fire_s, scheduled, sizeof(scheduled));
    if (!store_format_time(j->created_us, actual, sizeof(actual)))
        snprintf(actual, sizeof(actual), "%s", scheduled);
    sched_format_time(j->zone, fire_s, local, sizeof(local));
    j->trigger = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "schedule",
                           "scheduled", scheduled, "actual", actual, "timezone",
                           sched_zone_name(j->zone), "local", local);
    if (j->trigger && j->missed) {
        json_object_set_new(j->trigger, "misfire", json_string("run_once"));
        json_object_set_new(j->trigger, "missed", j->missed);
        json_object_set_new(j->trigger, "missed_count",
                            json_integer((json_int_t)j->nmissed));
        j->missed = NULL;
    }
    j->trigger_text = j->trigger ? jtext_dump(j->trigger, NULL) : NULL;
    return j->trigger_text ? 0 : -1;
}

static void tick_run(store *st, tick_job *j) {
    if (tick_make(j)) {
        j->rc = FERRY_ENOMEM;
        j->err = strdup("out of memory");
        return;
    }
    if (!st->vt->tick_insert) {
        j->rc = FERRY_EIO;
        j->err = strdup("the store does not record ticks");
        return;
    }
    j->rc = st->vt->tick_insert(st, j->dep->instance, j->flow, j->fire_us,
                                j->execute ? j->id : NULL);
    if (j->rc) {
        j->err = strdup(st->errmsg);
        return;
    }
    if (!j->execute)
        return;
    store_exec e = {.id = j->id,
                    .integration = j->dep->integration,
                    .instance = j->dep->instance,
                    .flow = j->flow,
                    .trigger_json = j->trigger_text,
                    .status = "queued",
                    .created_us = j->created_us};
    j->exec_rc = st->vt->exec_begin(st, &e);
    if (j->exec_rc)
        j->err = strdup(st->errmsg);
}

static json_t *tick_fields(const tick_job *j) {
    char when[40];
    sched_format_time(NULL, j->fire_us / 1000000, when, sizeof(when));
    return json_pack("{s:s, s:s, s:s}", "instance", j->dep->instance, "flow",
                     j->flow, "scheduled", when);
}

/* The fire times of one run_once schedule whose ticks the store did not
 * commit: its catch-up, once the store commits again. */
typedef struct failed_tick {
    char *instance, *flow;
    int64_t latest_us; /* the latest of them: the catch-up's key */
    json_t *missed;    /* the latest SCHED_MAX_MISSED_LISTED, oldest first */
    int64_t count;
    struct failed_tick *next;
} failed_tick;

static void failed_free(failed_tick *f) {
    while (f) {
        failed_tick *next = f->next;
        free(f->instance);
        free(f->flow);
        json_decref(f->missed);
        free(f);
        f = next;
    }
}

/* Puts time v (RFC 3339 UTC text, which sorts as time does) into the
 * sorted list a: a catch-up that failed brings back times older than those
 * noted since it was fired. */
static void missed_insert(json_t *a, json_t *v) {
    const char *t = json_string_value(v);
    size_t i = json_array_size(a);
    while (t && i > 0 &&
           strcmp(json_string_value(json_array_get(a, i - 1)), t) > 0)
        i--;
    json_array_insert(a, i, v);
}

/* Notes the times of tick j (its own, or those a catch-up carried). */
static void failed_note(struct host_sched *s, const tick_job *j) {
    failed_tick *f = s->failed;
    while (f &&
           (strcmp(f->instance, j->dep->instance) || strcmp(f->flow, j->flow)))
        f = f->next;
    if (!f) {
        f = calloc(1, sizeof(*f));
        if (!f)
            return;
        f->instance = strdup(j->dep->instance);
        f->flow = strdup(j->flow);
        f->missed = json_array();
        if (!f->instance || !f->flow || !f->missed) {
            failed_free(f);
            return;
        }
        f->next = s->failed;
        s->failed = f;
    }
    /* (in its trigger once made, or still its own if its batch ended
     * before it ran) */
    const json_t *carried =
        j->trigger ? json_object_get(j->trigger, "missed") : j->missed;
    if (json_is_array(carried)) {
        size_t i;
        json_t *v;
        json_array_foreach(carried, i, v) missed_insert(f->missed, v);
        f->count += j->nmissed;
    } else {
        char when[40];
        sched_format_time(NULL, j->fire_us / 1000000, when, sizeof(when));
        json_t *v = json_string(when);
        missed_insert(f->missed, v);
        json_decref(v);
        f->count++;
    }
    while (json_array_size(f->missed) > SCHED_MAX_MISSED_LISTED)
        json_array_remove(f->missed, 0);
    if (j->fire_us > f->latest_us)
        f->latest_us = j->fire_us;
}

static void retry_misfires(struct host_sched *s);

static void tick_done(tick_job *j, int commit_rc) {
    host *h = j->h;
    /* Not recorded: the batch did not commit, or the tick's own row was
     * refused by the store (its statement alone rolled back). */
    if (commit_rc || j->rc == FERRY_EIO) {
        const char *why =
            commit_rc ? storeq_error(h->q, commit_rc) : (j->err ? j->err : "?");
        if (j->run_once) {
            host_log(h, "error", tick_fields(j),
                     "schedule: the tick was not recorded: %s; it runs once "
                     "the store commits again (misfire run_once)",
                     why);
            if (h->sched && !h->sched->stopped) {
                failed_note(h->sched, j);
                retry_misfires(h->sched);
            }
        } else {
            host_log(h, "error", tick_fields(j),
                     "schedule: the tick was not recorded: %s; not run "
                     "(misfire skip)",
                     why);
        }
    } else if (j->rc == FERRY_EEXISTS) {
        host_log(h, "info", tick_fields(j),
                 "schedule: this tick was already fired; nothing started");
    } else if (j->rc || j->exec_rc) {
        host_log(h, "error", tick_fields(j), "schedule: %s",
                 j->err ? j->err : "out of memory");
    } else if (!j->execute) {
        host_log(h, "warn", tick_fields(j),
                 "schedule: singleton flow still running; tick recorded, "
                 "no execution started");
    } else {
        if (j->run_once && h->sched)
            h->sched->retry_ms = 0; /* the store commits ticks again */
        run *r = run_new(h, j->id, j->dep, j->flow, j->trigger);
        if (r) {
            r->queued_us = j->created_us;
            queue_push(h, r);
            dispatch(h);
        } else {
            host_log(h, "error", tick_fields(j),
                     "schedule: out of memory; the execution stays queued "
                     "until the next start");
        }
    }
    tick_job_free(j);
}

static void batch_run(store *st, void *arg) {
    for (tick_job *j = arg; j; j = j->next)
        tick_run(st, j);
}

static void batch_done(void *arg, int commit_rc) {
    tick_job *j = arg;
    while (j) {
        tick_job *next = j->next;
        tick_done(j, commit_rc);
        j = next;
    }
}

/* Hands the pending ticks to the store thread as one job: ten thousand
 * ticks due at the same second are ten thousand timer callbacks in one
 * loop iteration, and one push (its lock and wake-up) instead of one
 * each. */
static void flush(struct host_sched *s) {
    tick_job *list = s->pending;
    s->pending = s->pending_tail = NULL;
    if (list)
        storeq_push(s->h->q, batch_run, batch_done, list);
}

/* Whether a run of this flow of this instance is running or queued. */
static int singleton_busy(host *h, const deployment *dep, const flow_def *f) {
    if (!f || f->concurrency != FLOW_SINGLETON)
        return 0;
    for (size_t i = 0; i < h->nactive; i++)
        if (!strcmp(h->active[i]->dep->instance, dep->instance) &&
            !strcmp(h->active[i]->flow, f->name))
            return 1;
    for (run *q = h->qhead; q; q = q->next)
        if (!strcmp(q->dep->instance, dep->instance) &&
            !strcmp(q->flow, f->name))
            return 1;
    return 0;
}

/* Fires the tick at fire_s of entry e. missed (stolen, may be NULL): the
 * catch-up list, for a run_once misfire. */
static void fire(host *h, sched_entry *e, int64_t fire_s, json_t *missed,
                 int64_t nmissed) {
    tick_job *j = calloc(1, sizeof(*j));
    if (!j) {
        json_decref(missed);
        return;
    }
    j->created_us = store_now_us();
    j->h = h;
    j->dep = deployment_ref(e->dep);
    j->flow = e->fdef->name;
    j->zone = e->spec.zone;
    j->fire_us = fire_s * 1000000;
    j->execute = !singleton_busy(h, e->dep, e->fdef);
    j->run_once = e->spec.run_once != 0;
    j->missed = missed;
    j->nmissed = nmissed;
    struct host_sched *s = e->s;
    if (s->pending_tail)
        s->pending_tail->next = j;
    else
        s->pending = j;
    s->pending_tail = j;
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *t);

/* Arms e's timer for its next fire time after now. */
static void arm(sched_entry *e) {
    int64_t now_us = store_now_us();
    int64_t now = s_of(now_us);
    if (e->next_s == SCHED_NONE || e->next_s < now - 1)
        e->next_s = sched_spec_next(&e->spec, now);
    if (e->next_s == SCHED_NONE)
        return; /* never again */
    uv_update_time(e->timer.loop);
    int64_t wait_ms = e->next_s * 1000 - now_us / 1000;
    if (wait_ms < 0)
        wait_ms = 0;
    if (wait_ms > SCHED_MAX_WAIT_MS)
        wait_ms = SCHED_MAX_WAIT_MS;
    uv_timer_start(&e->timer, on_timer, (uint64_t)wait_ms, 0);
}

static void on_timer(uv_timer_t *t) {
    sched_entry *e = t->data;
    struct host_sched *s = e->s;
    if (s->stopped)
        return;
    int64_t now_us = store_now_us();
    if (now_us < e->next_s * 1000000) {
        arm(e); /* early (a capped wait, or the clock moved back) */
        return;
    }
    int64_t fire_s = e->next_s;
    /* Past the fire time by more than a whole period (the clock jumped or
     * the loop stalled): fire the latest due time only. */
    int64_t latest = fire_s, next = sched_spec_next(&e->spec, latest), n = 0;
    while (next != SCHED_NONE && next * 1000000 <= now_us &&
           n++ < SCHED_MAX_MISSED_SCANNED) {
        latest = next;
        next = sched_spec_next(&e->spec, latest);
    }
    e->next_s = next; /* the first after now: computed once */
    fire(s->h, e, latest, NULL, 0);
    arm(e);
}

static void entry_closed(uv_handle_t *hd) {
    sched_entry *e = hd->data;
    struct host_sched *s = e->s;
    sched_spec_clear(&e->spec);
    deployment_unref(e->dep);
    free(e);
    if (--s->open == 0 && s->stopped)
        free(s);
}

static void close_entries(sched_entry **list) {
    sched_entry *e = *list;
    *list = NULL;
    while (e) {
        sched_entry *next = e->next;
        uv_timer_stop(&e->timer);
        uv_close((uv_handle_t *)&e->timer, entry_closed);
        e = next;
    }
}

/* A list's entries sorted by instance and flow: looking each of ten
 * thousand entries up in another list of as many, one by one, took
 * seconds. */
typedef struct entry_index {
    sched_entry **v;
    size_t n;
    const sched_entry *list; /* what to search if v could not be made */
} entry_index;

static int key_cmp(const char *instance, const char *flow,
                   const sched_entry *e) {
    int c = strcmp(instance, e->dep->instance);
    return c ? c : strcmp(flow, e->fdef->name);
}

static int index_cmp(const void *a, const void *b) {
    const sched_entry *x = *(sched_entry *const *)a;
    const sched_entry *y = *(sched_entry *const *)b;
    return key_cmp(x->dep->instance, x->fdef->name, y);
}

static void index_build(entry_index *ix, sched_entry *list) {
    size_t n = 0;
    for (const sched_entry *e = list; e; e = e->next)
        n++;
    ix->list = list;
    ix->n = 0;
    ix->v = n ? malloc(n * sizeof(*ix->v)) : NULL;
    if (!ix->v)
        return;
    for (sched_entry *e = list; e; e = e->next)
        ix->v[ix->n++] = e;
    qsort(ix->v, ix->n, sizeof(*ix->v), index_cmp);
}

static void index_free(entry_index *ix) {
    free(ix->v);
    ix->v = NULL;
}

/* The entry of (instance, flow), or NULL. */
static sched_entry *index_find(const entry_index *ix, const char *instance,
                               const char *flow) {
    if (!ix->v) {
        for (const sched_entry *e = ix->list; e; e = e->next)
            if (!key_cmp(instance, flow, e))
                return (sched_entry *)e;
        return NULL;
    }
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(instance, flow, ix->v[mid]);
        if (c == 0)
            return ix->v[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Builds the entries of every schedule of the deployed instances. For a
 * schedule that was already armed before a reload (old: the previous
 * entries) the search starts a second back, so a tick due at the instant
 * the old timer was closed is not lost (if it did fire, its key is
 * recorded and the second try starts nothing). A new schedule starts at
 * its first fire time after now. */
static void build_entries(struct host_sched *s, sched_entry *old,
                          const char *only) {
    host *h = s->h;
    entry_index was;
    index_build(&was, old);
    size_t n = only ? 1 : deploy_table_count(h->deps);
    for (size_t i = 0; i < n; i++) {
        deployment *dep = only ? deploy_table_get(h->deps, only)
                               : deploy_table_at(h->deps, i);
        if (!dep || !dep->ig)
            continue;
        for (size_t k = 0; k < dep->ig->nflows; k++) {
            const flow_def *f = &dep->ig->flows[k];
            if (!is_schedule(f))
                continue;
            sched_entry *e = calloc(1, sizeof(*e));
            if (!e)
                break;
            char msg[512];
            if (sched_spec_from_trigger(&e->spec, f->trigger,
                                        dep->in ? dep->in->config : NULL, msg,
                                        sizeof(msg))) {
                host_log(h, "error",
                         json_pack("{s:s, s:s}", "instance", dep->instance,
                                   "flow", f->name),
                         "schedule: %s", msg);
                free(e);
                continue;
            }
            e->s = s;
            e->dep = deployment_ref(dep);
            e->fdef = f;
            e->next_s = index_find(&was, dep->instance, f->name)
                            ? sched_spec_next(&e->spec, now_s() - 1)
                            : SCHED_NONE;
            uv_timer_init(h->loop, &e->timer);
            e->timer.data = e;
            uv_unref((uv_handle_t *)&e->timer);
            s->open++;
            e->next = s->entries;
            s->entries = e;
            arm(e);
        }
    }
    index_free(&was);
}

/* ---- misfires at start ---- */

typedef struct last_item {
    char *instance, *flow;
    int64_t last_us;
    int found;
} last_item;

typedef struct misfire_job {
    host *h;
    struct host_sched *s;
    last_item *items;
    size_t n;
    int64_t now_us;
} misfire_job;

static void misfire_run(store *st, void *arg) {
    misfire_job *j = arg;
    for (size_t i = 0; i < j->n; i++) {
        last_item *it = &j->items[i];
        it->found =
            st->vt->tick_last &&
            st->vt->tick_last(st, it->instance, it->flow, &it->last_us) == 0;
    }
}

static void misfire_done(void *arg, int commit_rc) {
    misfire_job *j = arg;
    host *h = j->h;
    (void)commit_rc;
    /* Only if the scheduler that asked is still the live one. */
    int live = h->sched == j->s && !j->s->stopped;
    entry_index ix = {0};
    if (live)
        index_build(&ix, j->s->entries);
    for (size_t i = 0; live && i < j->n; i++) {
        last_item *it = &j->items[i];
        if (!it->found)
            continue; /* a new schedule does not catch up */
        sched_entry *e = index_find(&ix, it->instance, it->flow);
        if (!e || !e->spec.run_once)
            continue;
        int64_t now = j->now_us / 1000000;
        /* Fire times strictly after the last tick, up to now: the list
         * keeps the latest SCHED_MAX_MISSED_LISTED of them. */
        int64_t ring[SCHED_MAX_MISSED_LISTED];
        int64_t count = 0;
        int64_t t = sched_spec_next(&e->spec, it->last_us / 1000000);
        while (t != SCHED_NONE && t <= now &&
               count < SCHED_MAX_MISSED_SCANNED) {
            ring[count % SCHED_MAX_MISSED_LISTED] = t;
            count++;
            t = sched_spec_next(&e->spec, t);
        }
        if (!count)
            continue;
        int64_t listed =
            count < SCHED_MAX_MISSED_LISTED ? count : SCHED_MAX_MISSED_LISTED;
        json_t *missed = json_array();
        for (int64_t k = count - listed; k < count; k++) {
            char buf[40];
            sched_format_time(NULL, ring[k % SCHED_MAX_MISSED_LISTED], buf,
                              sizeof(buf));
            json_array_append_new(missed, json_string(buf));
        }
        int64_t latest = ring[(count - 1) % SCHED_MAX_MISSED_LISTED];
        host_log(h, "info",
                 json_pack("{s:s, s:s, s:I}", "instance", it->instance, "flow",
                           it->flow, "missed", (json_int_t)count),
                 "schedule: fire times were missed while the host was down; "
                 "one catch-up run (misfire run_once)");
        fire(h, e, latest, missed, count);
    }
    index_free(&ix);
    for (size_t i = 0; i < j->n; i++) {
        free(j->items[i].instance);
        free(j->items[i].flow);
    }
    free(j->items);
    free(j);
}

static void check_misfires(struct host_sched *s) {
    size_t n = 0;
    for (sched_entry *e = s->entries; e; e = e->next)
        n += e->spec.run_once != 0;
    if (!n)
        return; /* "skip": nothing to look up */
    misfire_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->items = calloc(n, sizeof(*j->items)))) {
        free(j);
        return;
    }
    j->h = s->h;
    j->s = s;
    j->now_us = store_now_us();
    for (sched_entry *e = s->entries; e; e = e->next) {
        if (!e->spec.run_once)
            continue;
        j->items[j->n].instance = strdup(e->dep->instance);
        j->items[j->n].flow = strdup(e->fdef->name);
        if (!j->items[j->n].instance || !j->items[j->n].flow) {
            free(j->items[j->n].instance);
            free(j->items[j->n].flow);
            continue;
        }
        j->n++;
    }
    storeq_push(s->h->q, misfire_run, misfire_done, j);
}

/* Fires the catch-up of each run_once schedule whose ticks the store did
 * not commit: one execution, keyed by the latest of those fire times, with
 * all of them listed in its payload as for a catch-up at start. If the
 * store still cannot write, that tick fails in turn and its times are
 * noted again (failed_note), for the next try. */
static void on_retry(uv_timer_t *t) {
    struct host_sched *s = t->data;
    s->retry_armed = 0;
    failed_tick *list = s->failed;
    s->failed = NULL;
    if (s->stopped) {
        failed_free(list);
        return;
    }
    entry_index ix = {0};
    index_build(&ix, s->entries);
    for (failed_tick *f = list; f; f = f->next) {
        sched_entry *e = index_find(&ix, f->instance, f->flow);
        if (!e || !e->spec.run_once)
            continue; /* undeployed or changed since */
        host_log(s->h, "info",
                 json_pack("{s:s, s:s, s:I}", "instance", f->instance, "flow",
                           f->flow, "missed", (json_int_t)f->count),
                 "schedule: fire times were missed while the store could not "
                 "write; one catch-up run (misfire run_once)");
        fire(s->h, e, f->latest_us / 1000000, json_incref(f->missed), f->count);
    }
    index_free(&ix);
    failed_free(list);
}

/* Arms the timer of the catch-ups (on_retry): 1 s after a run_once tick
 * was not committed, then twice as long after each failed try, up to
 * 30 s. */
static void retry_misfires(struct host_sched *s) {
    if (s->retry_armed || s->stopped)
        return;
    s->retry_ms = s->retry_ms ? s->retry_ms * 2 : SCHED_RETRY_FIRST_MS;
    if (s->retry_ms > SCHED_RETRY_MAX_MS)
        s->retry_ms = SCHED_RETRY_MAX_MS;
    s->retry_armed = 1;
    uv_timer_start(&s->retry, on_retry, (uint64_t)s->retry_ms, 0);
}

/* ---- the interface ---- */

/* Runs once per loop iteration, after the timers, just before the loop
 * computes how long to sleep. libuv computes that from its cached "now",
 * taken before the iteration's timers ran: a callback that held the loop
 * for 60 ms (of anything) made every timer due in the next sleep fire
 * 60 ms late. Updating the time here costs one clock read. Then the ticks
 * the timers fired go to the store thread. */
static void on_prepare(uv_prepare_t *p) {
    uv_update_time(p->loop);
    flush(p->data);
}

static void fresh_closed(uv_handle_t *hd) {
    struct host_sched *s = hd->data;
    if (--s->open == 0 && s->stopped)
        free(s);
}

void host_sched_start(host *h) {
    if (h->sched || h->stopping)
        return;
    struct host_sched *s = calloc(1, sizeof(*s));
    if (!s) {
        host_log(h, "error", NULL, "schedule: out of memory; no schedules");
        return;
    }
    s->h = h;
    h->sched = s;
    uv_prepare_init(h->loop, &s->fresh);
    s->fresh.data = s;
    uv_prepare_start(&s->fresh, on_prepare);
    uv_unref((uv_handle_t *)&s->fresh);
    s->open++;
    uv_timer_init(h->loop, &s->retry);
    s->retry.data = s;
    s->open++;
    build_entries(s, NULL, NULL);
    check_misfires(s);
}

void host_sched_reload(host *h) {
    struct host_sched *s = h->sched;
    if (!s || s->stopped)
        return; /* not started yet: start builds from the table then */
    sched_entry *old = s->entries;
    s->entries = NULL;
    build_entries(s, old, NULL);
    close_entries(&old);
}

void host_sched_reload_instance(host *h, const char *instance) {
    struct host_sched *s = h->sched;
    if (!s || s->stopped)
        return;
    /* Only that instance's entries are rebuilt: a deploy costs the same
     * with ten instances as with ten thousand. */
    sched_entry *old = NULL, **p = &s->entries;
    while (*p) {
        sched_entry *e = *p;
        if (!strcmp(e->dep->instance, instance)) {
            *p = e->next;
            e->next = old;
            old = e;
        } else {
            p = &e->next;
        }
    }
    build_entries(s, old, instance);
    close_entries(&old);
}

void host_sched_stop(host *h) {
    struct host_sched *s = h->sched;
    if (!s)
        return;
    h->sched = NULL;
    s->stopped = 1;
    flush(s);
    size_t nfailed = 0;
    for (failed_tick *f = s->failed; f; f = f->next)
        nfailed++;
    if (nfailed)
        host_log(h, "warn",
                 json_pack("{s:I}", "schedules", (json_int_t)nfailed),
                 "schedule: the host stops before the store committed the "
                 "catch-ups of ticks it could not record; the next start "
                 "catches up from the last recorded tick");
    failed_free(s->failed);
    s->failed = NULL;
    close_entries(&s->entries);
    uv_prepare_stop(&s->fresh);
    uv_close((uv_handle_t *)&s->fresh, fresh_closed);
    uv_close((uv_handle_t *)&s->retry, fresh_closed);
}
