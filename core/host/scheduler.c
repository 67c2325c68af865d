/*
 * The scheduler: fires the schedule triggers of the deployed instances.
 *
 * One entry per (instance, flow) with a schedule trigger, each with its own
 * timer armed for the flow's next fire time after now. A tick is one store
 * job: the tick's row (instance, flow, fire time: a unique key) and the
 * execution's "queued" row are written in the same transaction, and only
 * then is the run handed to the dispatcher. A tick whose key is already
 * recorded (another host, or an earlier life of this one, fired it) starts
 * nothing.
 *
 * Timers are armed on wall-clock times: a timer waits at most a minute, and
 * re-reads the clock when it fires, so a clock that jumps is followed.
 * Loop thread only, except the *_run store jobs.
 */
#include "host_internal.h"

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
    size_t open; /* entries whose timer is not closed yet */
    int stopped;
};

static int64_t now_s(void) {
    int64_t us = store_now_us();
    return us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
}

static int is_schedule(const flow_def *f) {
    const char *type = json_string_value(json_object_get(f->trigger, "type"));
    return type && !strcmp(type, "schedule");
}

/* ---- a tick: the store job ---- */

typedef struct tick_job {
    host *h;
    deployment *dep; /* a reference */
    char *flow;
    char id[40];
    int64_t fire_us;
    int execute; /* 0: record the tick only (a singleton flow was busy) */
    json_t *trigger;
    char *trigger_text;
    int64_t created_us;
    int rc;      /* tick_insert */
    int exec_rc; /* exec_begin */
    char err[512];
} tick_job;

static void tick_job_free(tick_job *j) {
    deployment_unref(j->dep);
    free(j->flow);
    json_decref(j->trigger);
    free(j->trigger_text);
    free(j);
}

static void tick_run(store *st, void *arg) {
    tick_job *j = arg;
    if (!st->vt->tick_insert) {
        j->rc = FERRY_EIO;
        snprintf(j->err, sizeof(j->err), "the store does not record ticks");
        return;
    }
    j->rc = st->vt->tick_insert(st, j->dep->instance, j->flow, j->fire_us,
                                j->execute ? j->id : NULL);
    if (j->rc) {
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
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
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
}

static json_t *tick_fields(const tick_job *j) {
    char when[40];
    sched_format_time(NULL, j->fire_us / 1000000, when, sizeof(when));
    return json_pack("{s:s, s:s, s:s}", "instance", j->dep->instance, "flow",
                     j->flow, "scheduled", when);
}

static void tick_done(void *arg, int commit_rc) {
    tick_job *j = arg;
    host *h = j->h;
    if (commit_rc) {
        host_log(h, "error", tick_fields(j),
                 "schedule: the tick was not recorded: %s",
                 ferry_strerror(commit_rc));
    } else if (j->rc == FERRY_EEXISTS) {
        host_log(h, "info", tick_fields(j),
                 "schedule: this tick was already fired; nothing started");
    } else if (j->rc || j->exec_rc) {
        host_log(h, "error", tick_fields(j), "schedule: %s", j->err);
    } else if (!j->execute) {
        host_log(h, "warn", tick_fields(j),
                 "schedule: singleton flow still running; tick recorded, "
                 "no execution started");
    } else {
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
    j->h = h;
    j->dep = deployment_ref(e->dep);
    j->flow = strdup(e->fdef->name);
    j->fire_us = fire_s * 1000000;
    j->created_us = store_now_us();
    j->execute = !singleton_busy(h, e->dep, e->fdef);
    store_new_id("ex", j->id, sizeof(j->id));
    char scheduled[40], actual[40], local[40];
    sched_format_time(NULL, fire_s, scheduled, sizeof(scheduled));
    if (!store_format_time(j->created_us, actual, sizeof(actual)))
        snprintf(actual, sizeof(actual), "%s", scheduled);
    sched_format_time(e->spec.zone, fire_s, local, sizeof(local));
    j->trigger = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "schedule",
                           "scheduled", scheduled, "actual", actual, "timezone",
                           sched_zone_name(e->spec.zone), "local", local);
    if (j->trigger && missed) {
        json_object_set_new(j->trigger, "misfire", json_string("run_once"));
        json_object_set_new(j->trigger, "missed", missed);
        json_object_set_new(j->trigger, "missed_count",
                            json_integer((json_int_t)nmissed));
        missed = NULL;
    }
    json_decref(missed);
    j->trigger_text = j->trigger ? json_dumps(j->trigger, JSON_COMPACT) : NULL;
    if (!j->flow || !j->trigger || !j->trigger_text) {
        tick_job_free(j);
        return;
    }
    storeq_push(h->q, tick_run, tick_done, j);
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *t);

/* Arms e's timer for its next fire time after now. */
static void arm(sched_entry *e) {
    int64_t now = now_s();
    if (e->next_s == SCHED_NONE || e->next_s < now - 1)
        e->next_s = sched_spec_next(&e->spec, now);
    if (e->next_s == SCHED_NONE)
        return; /* never again */
    uv_update_time(e->timer.loop);
    int64_t wait_ms = e->next_s * 1000 - store_now_us() / 1000;
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
    int64_t latest = fire_s, n;
    for (n = 0; n < SCHED_MAX_MISSED_SCANNED; n++) {
        int64_t t2 = sched_spec_next(&e->spec, latest);
        if (t2 == SCHED_NONE || t2 * 1000000 > now_us)
            break;
        latest = t2;
    }
    e->next_s = sched_spec_next(&e->spec, latest);
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

static int in_list(const sched_entry *list, const char *instance,
                   const char *flow) {
    for (; list; list = list->next)
        if (!strcmp(list->dep->instance, instance) &&
            !strcmp(list->fdef->name, flow))
            return 1;
    return 0;
}

/* Builds the entries of every schedule of the deployed instances. For a
 * schedule that was already armed before a reload (old: the previous
 * entries) the search starts a second back, so a tick due at the instant
 * the old timer was closed is not lost (if it did fire, its key is
 * recorded and the second try starts nothing). A new schedule starts at
 * its first fire time after now. */
static void build_entries(struct host_sched *s, const sched_entry *old,
                          const char *only) {
    host *h = s->h;
    json_t *list = only ? json_pack("[{s:s}]", "instance", only)
                        : deploy_table_list(h->deps);
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        const char *name = json_string_value(json_object_get(item, "instance"));
        deployment *dep = name ? deploy_table_get(h->deps, name) : NULL;
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
            e->next_s = in_list(old, dep->instance, f->name)
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
    json_decref(list);
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
    for (size_t i = 0; h->sched == j->s && !j->s->stopped && i < j->n; i++) {
        last_item *it = &j->items[i];
        if (!it->found)
            continue; /* a new schedule does not catch up */
        sched_entry *e = j->s->entries;
        while (e && (strcmp(e->dep->instance, it->instance) ||
                     strcmp(e->fdef->name, it->flow)))
            e = e->next;
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

/* ---- the interface ---- */

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
    close_entries(&s->entries);
    if (s->open == 0)
        free(s);
}
