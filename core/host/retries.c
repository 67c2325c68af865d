/*
 * Retries and dead letters in the host.
 *
 * An execution whose step waits for its next attempt ends its worker with
 * status "waiting", the state to go on from and a due time, all in the
 * store. It holds no process meanwhile: the host keeps a list of waiting
 * executions and one timer for the earliest. At the due time the
 * execution is read back (its trigger and state) and queued like any
 * other, its worker going on from the step that failed with the outputs it
 * needs. At start, waiting executions found in the store are scheduled the
 * same way, so a restart loses no retry.
 *
 * Dead letters (what failed for good) are listed, shown, replayed and
 * discarded through the API; a replay is a new execution with the same
 * trigger payload (plus "replay": {"dead_letter", "execution"}), from the
 * start or from the failing step, with the current definition.
 * Loop thread only, except the *_run store jobs.
 */
#include "host_internal.h"

#include <ferry/ferry.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A timer never waits longer than this before looking at the clock. */
#define RETRY_MAX_WAIT_MS 60000

typedef struct wait_item {
    char id[40];
    char *instance, *flow;
    int64_t due_us;
} wait_item;

struct host_retries {
    host *h;
    uv_timer_t timer;
    uv_timer_t prune; /* retention */
    int pruning;      /* a prune job is in flight */
    int closing;      /* handles still to close */
    wait_item *items;
    size_t n, cap;
    int stopped;
};

static void on_timer(uv_timer_t *t);

static void arm(struct host_retries *r) {
    if (!r->n) {
        uv_timer_stop(&r->timer);
        return;
    }
    int64_t first = r->items[0].due_us;
    for (size_t i = 1; i < r->n; i++)
        if (r->items[i].due_us < first)
            first = r->items[i].due_us;
    int64_t wait = (first - store_now_us()) / 1000;
    if (wait < 0)
        wait = 0;
    if (wait > RETRY_MAX_WAIT_MS)
        wait = RETRY_MAX_WAIT_MS;
    uv_timer_start(&r->timer, on_timer, (uint64_t)wait, 0);
}

/* ---- retention: pruned in small batches, each its own store job ---- */

#define PRUNE_BATCH 500

typedef struct prune_job {
    struct host_retries *r;
    int deleted;
    int rc;
    char err[512];
} prune_job;

static void prune_run(store *st, void *arg) {
    prune_job *j = arg;
    const host_config *c = j->r->h->cfg;
    int64_t now = store_now_us();
    int64_t before =
        c->retention_ms ? now - (int64_t)c->retention_ms * 1000 : INT64_MIN;
    int64_t dl =
        c->dl_retention_ms ? now - (int64_t)c->dl_retention_ms * 1000 : 0;
    j->rc = st->vt->prune
                ? st->vt->prune(st, before, (int64_t)c->retention_count, dl,
                                PRUNE_BATCH, &j->deleted)
                : 0;
    if (j->rc)
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
}

static void prune_start(struct host_retries *r);

static void prune_done(void *arg, int commit_rc) {
    prune_job *j = arg;
    struct host_retries *r = j->r;
    r->pruning = 0;
    if (r->stopped && !r->closing) {
        free(j);
        free(r); /* closed while this job ran */
        return;
    }
    if (j->rc || commit_rc)
        host_log(r->h, "warn", NULL, "retention: %s",
                 j->rc ? j->err : "the store did not commit");
    else if (j->deleted)
        metrics_add(r->h->m, "ferry_pruned_total", j->deleted, NULL);
    /* A full batch: more to go, in the next job (others run in between). */
    int more = !j->rc && !commit_rc && j->deleted >= PRUNE_BATCH;
    free(j);
    if (more && !r->stopped)
        prune_start(r);
}

static void prune_start(struct host_retries *r) {
    if (r->pruning || r->stopped)
        return;
    const host_config *c = r->h->cfg;
    if (!c->retention_ms && !c->retention_count && !c->dl_retention_ms)
        return;
    prune_job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->r = r;
    r->pruning = 1;
    storeq_push(r->h->q, prune_run, prune_done, j);
}

static void on_prune(uv_timer_t *t) {
    prune_start(t->data);
}

static struct host_retries *state(host *h) {
    if (h->retries || h->stopping)
        return h->retries;
    struct host_retries *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->h = h;
    uv_timer_init(h->loop, &r->timer);
    r->timer.data = r;
    uv_unref((uv_handle_t *)&r->timer);
    uv_timer_init(h->loop, &r->prune);
    r->prune.data = r;
    uv_unref((uv_handle_t *)&r->prune);
    /* Often enough for short retentions, at most once a minute. */
    uint64_t every = h->cfg->retention_ms ? h->cfg->retention_ms / 10 : 60000;
    if (every > 60000)
        every = 60000;
    if (every < 1000)
        every = 1000;
    uv_timer_start(&r->prune, on_prune, every, every);
    h->retries = r;
    return r;
}

void host_retry_start(host *h) {
    struct host_retries *r = state(h);
    if (r)
        prune_start(r);
}

void host_retry_schedule(host *h, const char *id, const char *instance,
                         const char *flow, int64_t due_us) {
    struct host_retries *r = state(h);
    if (!r || !id || !instance || !flow)
        return;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        wait_item *items = realloc(r->items, cap * sizeof(*items));
        if (!items)
            return; /* stays "waiting" in the store: taken at next start */
        r->items = items;
        r->cap = cap;
    }
    wait_item *w = &r->items[r->n];
    snprintf(w->id, sizeof(w->id), "%s", id);
    w->instance = strdup(instance);
    w->flow = strdup(flow);
    w->due_us = due_us;
    if (!w->instance || !w->flow) {
        free(w->instance);
        free(w->flow);
        return;
    }
    r->n++;
    arm(r);
}

static void free_items(struct host_retries *r) {
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].instance);
        free(r->items[i].flow);
    }
    free(r->items);
}

static void on_closed(uv_handle_t *hd) {
    struct host_retries *r = hd->data;
    if (--r->closing)
        return;
    free_items(r);
    if (r->pruning)
        return; /* prune_done runs later: it must not find r freed */
    free(r);
}

void host_retry_stop(host *h) {
    struct host_retries *r = h->retries;
    if (!r)
        return;
    h->retries = NULL;
    r->stopped = 1;
    r->closing = 2;
    uv_close((uv_handle_t *)&r->timer, on_closed);
    uv_close((uv_handle_t *)&r->prune, on_closed);
}

/* ---- taking one up ---- */

typedef struct resume_job {
    host *h;
    char id[40];
    char *instance, *flow;
    json_t *x; /* the execution as stored */
    int rc;
} resume_job;

static void resume_run(store *st, void *arg) {
    resume_job *j = arg;
    j->rc = st->vt->exec_get(st, j->id, &j->x);
}

static void resume_done(void *arg, int commit_rc) {
    resume_job *j = arg;
    host *h = j->h;
    (void)commit_rc;
    const char *status = json_string_value(json_object_get(j->x, "status"));
    deployment *dep = deploy_table_get(h->deps, j->instance);
    if (j->rc || !status || strcmp(status, "waiting")) {
        /* Gone, or taken up already (cancelled meanwhile). */
    } else if (!dep || h->stopping) {
        if (!h->stopping)
            host_log(h, "warn",
                     json_pack("{s:s, s:s}", "execution", j->id, "instance",
                               j->instance),
                     "retry: the instance is no longer deployed; the "
                     "execution stays waiting");
    } else {
        json_t *trigger = json_object_get(j->x, "trigger");
        run *r =
            run_new(h, j->id, dep, j->flow, trigger ? trigger : json_null());
        if (r) {
            r->resume = json_incref(json_object_get(j->x, "resume"));
            queue_push(h, r);
            dispatch(h);
        }
    }
    json_decref(j->x);
    free(j->instance);
    free(j->flow);
    free(j);
}

static void on_timer(uv_timer_t *t) {
    struct host_retries *r = t->data;
    host *h = r->h;
    int64_t now = store_now_us();
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        wait_item *w = &r->items[i];
        if (w->due_us > now || r->stopped) {
            r->items[k++] = *w;
            continue;
        }
        resume_job *j = calloc(1, sizeof(*j));
        if (!j) {
            r->items[k++] = *w;
            continue;
        }
        j->h = h;
        snprintf(j->id, sizeof(j->id), "%s", w->id);
        j->instance = w->instance;
        j->flow = w->flow;
        storeq_push(h->q, resume_run, resume_done, j);
    }
    r->n = k;
    arm(r);
}

/* ---- dead letters over HTTP ---- */

typedef struct dl_job {
    host *h;
    http_req *req;
    char *id, *instance, *flow, *state, *from_step;
    int limit;
    json_t *out;
    int rc;
    char err[512];
    /* replay */
    char exec_id[40];
    json_t *trigger, *resume;
} dl_job;

static void dl_free(dl_job *j) {
    free(j->id);
    free(j->instance);
    free(j->flow);
    free(j->state);
    free(j->from_step);
    json_decref(j->out);
    json_decref(j->trigger);
    json_decref(j->resume);
    free(j);
}

static char *qdup(http_req *r, const char *name) {
    const char *v = http_req_query(r, name);
    return v && *v ? strdup(v) : NULL;
}

static void list_run(store *st, void *arg) {
    dl_job *j = arg;
    j->rc = st->vt->dead_letter_list
                ? st->vt->dead_letter_list(st, j->instance, j->flow, j->state,
                                           j->limit, &j->out)
                : FERRY_EUNSUPPORTED;
    if (j->rc)
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
}

static void get_run(store *st, void *arg) {
    dl_job *j = arg;
    j->rc = st->vt->dead_letter_get
                ? st->vt->dead_letter_get(st, j->id, &j->out)
                : FERRY_EUNSUPPORTED;
    if (j->rc)
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
}

static void answer_done(void *arg, int commit_rc) {
    dl_job *j = arg;
    if (!http_req_gone(j->req)) {
        if (commit_rc)
            http_respond_error(j->req, 503, "the store did not commit");
        else if (j->rc == FERRY_ENOTFOUND)
            http_respond_error(j->req, 404, "%s", j->err);
        else if (j->rc)
            http_respond_error(j->req, 503, "%s", j->err);
        else {
            http_respond_json(j->req, 200, j->out);
            j->out = NULL;
        }
    }
    dl_free(j);
}

void host_dead_letters_list(void *ud, http_req *r) {
    host *h = ud;
    dl_job *j = calloc(1, sizeof(*j));
    if (!j) {
        http_respond_error(r, 500, "out of memory");
        return;
    }
    j->h = h;
    j->req = r;
    j->instance = qdup(r, "instance");
    j->flow = qdup(r, "flow");
    j->state = qdup(r, "state");
    if (!j->state)
        j->state = strdup("open");
    if (!strcmp(j->state, "all")) {
        free(j->state);
        j->state = NULL;
    }
    const char *lim = http_req_query(r, "limit");
    j->limit = lim ? atoi(lim) : 1000;
    storeq_push(h->q, list_run, answer_done, j);
}

void host_dead_letter_get(void *ud, http_req *r) {
    host *h = ud;
    dl_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->id = strdup(http_req_param(r, "id")))) {
        free(j);
        http_respond_error(r, 500, "out of memory");
        return;
    }
    j->h = h;
    j->req = r;
    storeq_push(h->q, get_run, answer_done, j);
}

static void discard_run(store *st, void *arg) {
    dl_job *j = arg;
    j->rc = st->vt->dead_letter_mark
                ? st->vt->dead_letter_mark(st, j->id, "discarded", NULL)
                : FERRY_EUNSUPPORTED;
    if (j->rc)
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
    else
        j->out = json_pack("{s:s, s:s}", "id", j->id, "state", "discarded");
}

void host_dead_letter_discard(void *ud, http_req *r) {
    host *h = ud;
    dl_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->id = strdup(http_req_param(r, "id")))) {
        free(j);
        http_respond_error(r, 500, "out of memory");
        return;
    }
    j->h = h;
    j->req = r;
    storeq_push(h->q, discard_run, answer_done, j);
}

/* Replay: in one store job the letter is read and marked replayed and the
 * new execution written as queued; only then is it dispatched. */
static void replay_run(store *st, void *arg) {
    dl_job *j = arg;
    json_t *dl = NULL;
    if (!st->vt->dead_letter_get || !st->vt->dead_letter_mark) {
        j->rc = FERRY_EUNSUPPORTED;
        snprintf(j->err, sizeof(j->err), "the store keeps no dead letters");
        return;
    }
    j->rc = st->vt->dead_letter_get(st, j->id, &dl);
    if (j->rc) {
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
        return;
    }
    const char *state = json_string_value(json_object_get(dl, "state"));
    if (!state || strcmp(state, "open")) {
        j->rc = FERRY_EEXISTS;
        snprintf(j->err, sizeof(j->err), "dead letter '%s' is %s, not open",
                 j->id, state ? state : "?");
        json_decref(dl);
        return;
    }
    const char *inst = json_string_value(json_object_get(dl, "instance"));
    const char *flow = json_string_value(json_object_get(dl, "flow"));
    j->instance = strdup(inst ? inst : "");
    j->flow = strdup(flow ? flow : "");
    json_t *trig = json_object_get(dl, "trigger");
    j->trigger = json_is_object(trig) ? json_deep_copy(trig) : json_object();
    json_object_set_new(j->trigger, "replay",
                        json_pack("{s:s, s:O}", "dead_letter", j->id,
                                  "execution",
                                  json_object_get(dl, "execution_id")));
    if (j->from_step) {
        const json_t *rs = json_object_get(dl, "resume");
        const char *at = json_string_value(json_object_get(rs, "step"));
        const char *failed = json_string_value(json_object_get(dl, "step"));
        /* The letter keeps the state at the top-level step that failed
         * (failed names it, or a step inside it). */
        size_t al = at ? strlen(at) : 0;
        if (!at || !failed ||
            (strcmp(j->from_step, at) ||
             (strncmp(failed, at, al) ||
              (failed[al] && failed[al] != '.' && failed[al] != '['))))
            j->rc = FERRY_EINVAL;
        if (j->rc) {
            snprintf(j->err, sizeof(j->err),
                     "from_step: a replay goes on only from the step that "
                     "failed ('%s'), with the outputs it had",
                     at ? at : "?");
            json_decref(dl);
            return;
        }
        j->resume = json_deep_copy(rs);
        json_object_set_new(j->resume, "attempts", json_object());
    }
    store_new_id("ex", j->exec_id, sizeof(j->exec_id));
    char *trig_text = json_dumps(j->trigger, JSON_COMPACT);
    char *resume_text = j->resume ? json_dumps(j->resume, JSON_COMPACT) : NULL;
    store_exec e = {.id = j->exec_id,
                    .integration =
                        json_string_value(json_object_get(dl, "integration")),
                    .instance = j->instance,
                    .flow = j->flow,
                    .trigger_json = trig_text,
                    .status = "queued",
                    .created_us = store_now_us()};
    j->rc = st->vt->exec_begin(st, &e);
    if (!j->rc)
        j->rc = st->vt->dead_letter_mark(st, j->id, "replayed", j->exec_id);
    if (j->rc)
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
    free(trig_text);
    free(resume_text);
    json_decref(dl);
}

static void replay_done(void *arg, int commit_rc) {
    dl_job *j = arg;
    host *h = j->h;
    if (!commit_rc && !j->rc) {
        deployment *dep = deploy_table_get(h->deps, j->instance);
        run *r = dep ? run_new(h, j->exec_id, dep, j->flow, j->trigger) : NULL;
        if (r) {
            r->resume = json_incref(j->resume);
            queue_push(h, r);
            dispatch(h);
        }
        j->out = json_pack("{s:s, s:s, s:s}", "id", j->id, "execution_id",
                           j->exec_id, "status", "queued");
        if (!dep) {
            j->rc = FERRY_ENOTFOUND;
            snprintf(j->err, sizeof(j->err),
                     "instance '%s' is not deployed; execution %s stays "
                     "queued",
                     j->instance, j->exec_id);
        }
    }
    if (!http_req_gone(j->req)) {
        if (commit_rc)
            http_respond_error(j->req, 503, "the store did not commit");
        else if (j->rc == FERRY_ENOTFOUND)
            http_respond_error(j->req, 404, "%s", j->err);
        else if (j->rc == FERRY_EINVAL)
            http_respond_error(j->req, 400, "%s", j->err);
        else if (j->rc == FERRY_EEXISTS)
            http_respond_error(j->req, 409, "%s", j->err);
        else if (j->rc)
            http_respond_error(j->req, 503, "%s", j->err);
        else {
            http_respond_json(j->req, 202, j->out);
            j->out = NULL;
        }
    }
    dl_free(j);
}

void host_dead_letter_replay(void *ud, http_req *r) {
    host *h = ud;
    size_t len = 0;
    const void *body = http_req_body(r, &len);
    json_t *in = len ? json_loadb(body, len, 0, NULL) : json_object();
    if (!json_is_object(in)) {
        json_decref(in);
        http_respond_error(r, 400, "expected a JSON object {\"from_step\"?}");
        return;
    }
    const json_t *fs = json_object_get(in, "from_step");
    if (fs && !json_is_string(fs)) {
        json_decref(in);
        http_respond_error(r, 400, "from_step: expected a step name");
        return;
    }
    dl_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->id = strdup(http_req_param(r, "id")))) {
        free(j);
        json_decref(in);
        http_respond_error(r, 500, "out of memory");
        return;
    }
    j->h = h;
    j->req = r;
    j->from_step = fs ? strdup(json_string_value(fs)) : NULL;
    json_decref(in);
    storeq_push(h->q, replay_run, replay_done, j);
}
