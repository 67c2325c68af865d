/*
 * The engine: runs one flow's steps in order in this process. Values pass
 * between steps as json_t pointers (a step's output is the next step's
 * input without a copy); only what is recorded is serialised, bounded by
 * max_recorded. An output is dropped as soon as no later step can read it
 * (the plan is made when the definition is loaded), so a long flow does
 * not keep every intermediate value alive.
 */
#include "exec_internal.h"
#include "jqv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_RECORDED 65536

/* ---- bounded serialisation ---- */

typedef struct bounded {
    char *buf;
    size_t len, cap, max;
    int failed;
} bounded;

/* Copies up to max bytes, then stops the dump (-1 ends it early). The
 * buffer grows as needed: most recorded values are small, and in a forked
 * worker a large allocation per step makes malloc touch (and so copy) the
 * heap it inherited. */
static int bounded_cb(const char *s, size_t n, void *data) {
    bounded *b = data;
    size_t take = n < b->max - b->len ? n : b->max - b->len;
    if (b->len + take + 1 > b->cap) {
        size_t cap = b->cap;
        while (cap < b->len + take + 1)
            cap *= 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        char *p = realloc(b->buf, cap);
        if (!p) {
            b->failed = 1;
            return -1;
        }
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, take);
    b->len += take;
    return b->len < b->max ? 0 : -1;
}

size_t flow_dump_bounded(const json_t *v, size_t max, char **text,
                         const flow_size_memo *memo) {
    json_t *null = NULL;
    if (!v)
        v = null = json_null();
    bounded b = {.max = max, .cap = max < 256 ? max + 1 : 256};
    b.buf = malloc(b.cap);
    if (!b.buf) {
        *text = NULL;
        json_decref(null);
        return 0;
    }
    if (max)
        json_dump_callback(v, bounded_cb, &b, FLOW_JSON_TEXT);
    b.buf[b.len] = 0;
    *text = b.buf;
    /* Text that fit is its own size; only a longer one is counted. */
    size_t size = b.len < max && !b.failed ? b.len : flow_text_size(v, memo);
    json_decref(null);
    return size;
}

/* ---- letting go of large values ---- */

/* Freeing a large output (hundreds of thousands of jansson values) takes a
 * tenth of a second, on the execution's path, right when the next step
 * wants to start. Outputs known to be at least REAP_BYTES of text are
 * handed to a thread of the execution that frees them while the steps go
 * on; it is started on the first such output and joined when the
 * execution ends, so nothing outlives flow_execute. jansson's reference
 * counts are atomic, so a value the freed one shares with a live one is
 * safe; nothing else is shared. When the thread cannot start, values are
 * freed in place as before. */
#define REAP_BYTES (1 << 20)
#define REAPER_STACK (2 << 20) /* json_delete recurses once per level */

struct exec_reaper {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    json_t **q;
    size_t n, cap;
    int done;
};

static void *reaper_main(void *arg) {
    exec_reaper *rp = arg;
    pthread_mutex_lock(&rp->mu);
    for (;;) {
        while (rp->n == 0 && !rp->done)
            pthread_cond_wait(&rp->cv, &rp->mu);
        if (rp->n == 0)
            break;
        json_t *v = rp->q[--rp->n];
        pthread_mutex_unlock(&rp->mu);
        json_decref(v);
        pthread_mutex_lock(&rp->mu);
    }
    pthread_mutex_unlock(&rp->mu);
    return NULL;
}

static exec_reaper *reaper_start(void) {
    exec_reaper *rp = calloc(1, sizeof *rp);
    if (!rp)
        return NULL;
    pthread_attr_t a;
    int ok = !pthread_attr_init(&a);
    ok = ok && !pthread_attr_setstacksize(&a, REAPER_STACK);
    pthread_mutex_init(&rp->mu, NULL);
    pthread_cond_init(&rp->cv, NULL);
    ok = ok && !pthread_create(&rp->thread, &a, reaper_main, rp);
    pthread_attr_destroy(&a);
    if (!ok) {
        pthread_mutex_destroy(&rp->mu);
        pthread_cond_destroy(&rp->cv);
        free(rp);
        return NULL;
    }
    return rp;
}

/* Waits for everything handed over to be freed, and ends the thread. */
static void reaper_stop(exec_reaper *rp) {
    if (!rp)
        return;
    pthread_mutex_lock(&rp->mu);
    rp->done = 1;
    pthread_cond_signal(&rp->cv);
    pthread_mutex_unlock(&rp->mu);
    pthread_join(rp->thread, NULL);
    pthread_mutex_destroy(&rp->mu);
    pthread_cond_destroy(&rp->cv);
    free(rp->q);
    free(rp);
}

/* Lets go of a step's output: its size memo entry, then the value itself,
 * on the reaper when it is large and no one else holds it. */
static void drop_output(exec *x, json_t *v) {
    if (!v)
        return;
    size_t size = flow_size_memo_size(&x->sizes, v);
    flow_size_memo_drop(&x->sizes, v);
    if (size >= REAP_BYTES && !x->reaper_failed &&
        __atomic_load_n(&v->refcount, __ATOMIC_ACQUIRE) == 1) {
        if (!x->reaper && !(x->reaper = reaper_start()))
            x->reaper_failed = 1;
        exec_reaper *rp = x->reaper;
        if (rp) {
            pthread_mutex_lock(&rp->mu);
            if (rp->n == rp->cap) {
                size_t cap = rp->cap ? rp->cap * 2 : 8;
                json_t **q = realloc(rp->q, cap * sizeof *q);
                if (q) {
                    rp->q = q;
                    rp->cap = cap;
                }
            }
            int queued = rp->n < rp->cap;
            if (queued) {
                rp->q[rp->n++] = v;
                pthread_cond_signal(&rp->cv);
            }
            pthread_mutex_unlock(&rp->mu);
            if (queued)
                return;
        }
    }
    json_decref(v);
}

/* ---- recording ---- */

static void store_failed(exec *x, const char *what) {
    if (x->store_errors++ == 0 && x->o->on_log)
        x->o->on_log(x->o->ud, NULL, FERRY_LOG_ERROR, what);
}

void exec_log(exec *x, int seq, const char *path, int level, const char *msg,
              json_t *fields) {
    if (x->o->on_log)
        x->o->on_log(x->o->ud, path, level, msg);
    if (x->o->st) {
        char *ftext = fields ? json_dumps(fields, FLOW_JSON_TEXT) : NULL;
        store_log l = {
            .execution_id = x->id,
            .step_seq = seq,
            .step_path = path,
            .ts_us = store_now_us(),
            .level = level,
            .message = msg,
            .fields_json = ftext,
        };
        if (x->o->st->vt->log_append(x->o->st, &l))
            store_failed(x, x->o->st->errmsg);
        free(ftext);
    }
    json_decref(fields);
}

static size_t max_recorded(const exec *x) {
    return x->o->max_recorded ? x->o->max_recorded : DEFAULT_MAX_RECORDED;
}

static const char *kind_name(enum flow_step_kind k) {
    switch (k) {
    case FLOW_STEP_ACTION:
        return "action";
    case FLOW_STEP_JQ:
        return "jq";
    case FLOW_STEP_FOR_EACH:
        return "for_each";
    case FLOW_STEP_BRANCH:
        return "branch";
    }
    return "?";
}

typedef struct step_run {
    const flow_step *st;
    const char *path;
    int seq;
    int depth;
    int64_t started;
    json_t *input;  /* what is recorded as the step's input */
    json_t *output; /* owned until handed to outputs[] */
    int error_code;
    char *error_message;
    char *error_step; /* the innermost failing step's path */
    char *cause;      /* that step's own message; NULL if it is this one */
    int retryable;
} step_run;

static void record_step(exec *x, step_run *r) {
    int64_t dur = store_now_us() - r->started;
    const char *status = r->error_code ? "failed" : "succeeded";
    if (r->error_code == FERRY_ECANCELLED)
        status = "cancelled";
    if (x->o->st) {
        char *in = NULL, *out = NULL;
        size_t out_size = 0;
        /* The output first: an input that holds it (a step that wraps its
         * input) then finds its size remembered. */
        if (!r->error_code) {
            out_size =
                flow_dump_bounded(r->output, max_recorded(x), &out, &x->sizes);
            /* One use per output slot holding it: dropped when the slot
             * is released or overwritten (run_step, run_list). */
            if (out_size > max_recorded(x))
                flow_size_memo_put(&x->sizes, r->output, out_size);
        }
        size_t in_size =
            flow_dump_bounded(r->input, max_recorded(x), &in, &x->sizes);
        store_step s = {
            .execution_id = x->id,
            .seq = r->seq,
            .path = r->path,
            .name = r->st->name,
            .kind = kind_name(r->st->kind),
            .action = r->st->action_id,
            .status = status,
            .started_us = r->started,
            .duration_us = dur,
            .input_json = in,
            .input_size = in_size,
            .output_json = out,
            .output_size = out_size,
            .error_code = r->error_code,
            .error_message = r->error_message,
            .retryable = r->retryable,
        };
        if (x->o->st->vt->step_record(x->o->st, &s))
            store_failed(x, x->o->st->errmsg);
        free(in);
        free(out);
    }
    if (x->o->on_step) {
        flow_step_event ev = {
            .path = r->path,
            .name = r->st->name,
            .depth = r->depth,
            .status = status,
            .duration_us = dur,
            .error_code = r->error_code,
            .error_message = r->error_message,
        };
        x->o->on_step(x->o->ud, &ev);
    }
}

static void step_fail(step_run *r, int code, int retryable, const char *fmt,
                      ...) FERRY_PRINTF(4, 5);

static void step_fail(step_run *r, int code, int retryable, const char *fmt,
                      ...) {
    va_list ap;
    va_start(ap, fmt);
    free(r->error_message);
    if (vasprintf(&r->error_message, fmt, ap) < 0)
        r->error_message = NULL;
    va_end(ap);
    r->error_code = code;
    r->retryable = retryable;
    free(r->error_step);
    r->error_step = strdup(r->path);
}

/* A container step's message names the innermost failing step and that
 * step's own message, however deep it is nested (not each level's). */
static const char *cause_of(const step_run *inner) {
    if (inner->cause)
        return inner->cause;
    return inner->error_message ? inner->error_message : "failed";
}

/* Takes over inner's failing step and cause after step_fail(r, ...). */
static void adopt_cause(step_run *r, step_run *inner) {
    free(r->error_step);
    r->error_step = inner->error_step;
    free(r->cause);
    if (inner->cause) {
        r->cause = inner->cause;
        free(inner->error_message);
    } else {
        r->cause = inner->error_message;
    }
}

/* ---- running ---- */

static int truthy(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return 0;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0.0;
    case JSON_STRING:
        return json_string_length(v) != 0;
    case JSON_ARRAY:
        return json_array_size(v) != 0;
    case JSON_OBJECT:
        return json_object_size(v) != 0;
    default:
        return 1;
    }
}

static int cancelled(const exec *x) {
    return x->o->cancel && *x->o->cancel;
}

static int run_list(exec *x, const flow_step_list *l, const char *prefix,
                    int depth, json_t **result, step_run *failed);

/* Checks inputs whose value came from a reference against their declared
 * type; a null optional input gets its default, or is dropped so that the
 * action sees it absent. Null is a value of type "any", as when the
 * definition was validated. */
static int check_inputs(step_run *r, json_t *input) {
    const ferry_action *a = r->st->action;
    for (const ferry_input *in = a->inputs; in && in->name; in++) {
        json_t *v = json_object_get(input, in->name);
        if (!v)
            continue;
        if (json_is_null(v) && !in->required) {
            json_t *dv = in->default_json ? json_loads(in->default_json,
                                                       JSON_DECODE_ANY, NULL)
                                          : NULL;
            if (dv)
                json_object_set_new(input, in->name, dv);
            else
                json_object_del(input, in->name);
            continue;
        }
        if (json_is_null(v) && strcmp(in->type, "any")) {
            step_fail(r, FERRY_EINVAL, 0,
                      "input '%s' of action '%s' is required but its "
                      "reference resolved to null",
                      in->name, a->id);
            return -1;
        }
        if (!abi_type_matches(in->type, v)) {
            step_fail(r, FERRY_EINVAL, 0,
                      "input '%s' of action '%s' must be %s %s, got %s",
                      in->name, a->id,
                      strchr("aeiou", in->type[0]) ? "an" : "a", in->type,
                      abi_json_type_name(v));
            return -1;
        }
    }
    return 0;
}

static void run_action(exec *x, step_run *r) {
    const flow_step *st = r->st;
    json_t *input = tmpl_eval(st->input, &x->scope);
    if (!input) {
        step_fail(r, FERRY_ENOMEM, 1, "out of memory building the input");
        return;
    }
    r->input = input;
    if (check_inputs(r, input))
        return;
    if (st->connection &&
        !json_object_get(x->in->connections, st->connection)) {
        step_fail(r, FERRY_ECONFIG, 0,
                  "connection '%s' has no credentials in instance '%s'",
                  st->connection, x->in->name);
        return;
    }
    ferry_ctx ctx = {.x = x, .step = st, .path = r->path, .seq = r->seq};
    int rc = st->action->run(&ctx, input);
    if (rc == FERRY_OK) {
        r->output = ctx.output ? ctx.output : json_null();
    } else {
        json_decref(ctx.output);
        if (rc > 0)
            step_fail(r, FERRY_EINTERNAL, 0,
                      "action '%s' returned %d, not a FERRY_E* code",
                      st->action_id, rc);
        else if (ctx.error_message)
            step_fail(r, rc, ctx.retryable, "%s", ctx.error_message);
        else
            step_fail(r, rc, ctx.retryable, "%s", ferry_strerror(rc));
    }
    free(ctx.error_message);
}

static void run_jq(exec *x, step_run *r) {
    json_t *input = tmpl_eval(r->st->input, &x->scope);
    char *err = NULL;
    r->input = input;
    if (jqv_run(r->st->jq, input, r->st->collect, &r->output, &err))
        step_fail(r, FERRY_EINVAL, 0, "%s", err ? err : "jq failed");
    free(err);
}

static void run_for_each(exec *x, step_run *r) {
    const flow_step *st = r->st;
    json_t *over = tmpl_eval(st->over, &x->scope);
    r->input = over;
    if (!json_is_array(over)) {
        step_fail(r, FERRY_EINVAL, 0, "for_each needs an array, got %s",
                  abi_json_type_name(over));
        return;
    }
    if (x->scope.nloops >= 64) {
        step_fail(r, FERRY_EINVAL, 0, "for_each nested too deeply");
        return;
    }
    size_t n = json_array_size(over);
    json_t *out = json_array();
    int depth = x->scope.nloops++;
    char prefix[1024];
    for (size_t i = 0; i < n; i++) {
        if (cancelled(x)) {
            step_fail(r, FERRY_ECANCELLED, 0, "cancelled at iteration %zu", i);
            break;
        }
        x->loops[depth].item = json_array_get(over, i);
        x->loops[depth].index = json_integer((json_int_t)i);
        snprintf(prefix, sizeof(prefix), "%s[%zu]", r->path, i);
        json_t *res = NULL;
        step_run inner = {0};
        int rc = run_list(x, &st->body, prefix, r->depth + 1, &res, &inner);
        json_decref(x->loops[depth].index);
        x->loops[depth].index = NULL;
        if (rc) {
            step_fail(r, inner.error_code, inner.retryable,
                      "iteration %zu: %s: %s", i, inner.error_step,
                      cause_of(&inner));
            adopt_cause(r, &inner);
            break;
        }
        json_array_append_new(out, res ? res : json_null());
    }
    x->scope.nloops--;
    if (r->error_code)
        json_decref(out);
    else
        r->output = out;
}

static void run_branch(exec *x, step_run *r) {
    const flow_step *st = r->st;
    const flow_step_list *take = NULL;
    int taken = -1;
    for (size_t i = 0; i < st->ncases && !take; i++) {
        json_t *w = tmpl_eval(st->cases[i].when, &x->scope);
        if (truthy(w)) {
            take = &st->cases[i].steps;
            taken = (int)i;
        }
        json_decref(w);
    }
    if (!take && st->otherwise.n)
        take = &st->otherwise;
    r->input = taken >= 0 ? json_pack("{s:i}", "case", taken)
                          : json_pack("{s:s}", "case", take ? "else" : "none");
    if (!take) {
        r->output = json_null();
        return;
    }
    json_t *res = NULL;
    step_run inner = {0};
    if (run_list(x, take, r->path, r->depth + 1, &res, &inner)) {
        step_fail(r, inner.error_code, inner.retryable, "%s: %s",
                  inner.error_step, cause_of(&inner));
        adopt_cause(r, &inner);
        return;
    }
    r->output = res ? res : json_null();
}

static int run_step_once(exec *x, const flow_step *st, const char *prefix,
                         int depth, step_run *failed, json_t **input) {
    char path[1024];
    if (prefix)
        snprintf(path, sizeof(path), "%s.%s", prefix, st->name);
    else
        snprintf(path, sizeof(path), "%s", st->name);
    step_run r = {.st = st, .path = path, .seq = ++x->seq, .depth = depth};
    r.started = store_now_us();
    if (x->o->st && x->o->st->vt->step_begin &&
        x->o->st->vt->step_begin(x->o->st, x->id, r.seq, path, r.started))
        store_failed(x, x->o->st->errmsg);
    if (cancelled(x)) {
        step_fail(&r, FERRY_ECANCELLED, 0, "cancelled before it started");
    } else {
        switch (st->kind) {
        case FLOW_STEP_ACTION:
            run_action(x, &r);
            break;
        case FLOW_STEP_JQ:
            run_jq(x, &r);
            break;
        case FLOW_STEP_FOR_EACH:
            run_for_each(x, &r);
            break;
        case FLOW_STEP_BRANCH:
            run_branch(x, &r);
            break;
        }
    }
    if (!r.error_code && !r.output)
        r.output = json_null();
    record_step(x, &r);
    if (input && r.error_code)
        *input = json_incref(r.input);
    json_decref(r.input);
    if (r.error_code) {
        json_decref(r.output);
        failed->error_code = r.error_code;
        failed->retryable = r.retryable;
        failed->error_message = r.error_message;
        failed->error_step = r.error_step;
        failed->cause = r.cause;
        return -1;
    }
    free(r.error_step);
    drop_output(x, x->scope.outputs[st->id]);
    x->scope.outputs[st->id] = r.output;
    return 0;
}

static void free_failed(step_run *f) {
    free(f->error_message);
    free(f->error_step);
    free(f->cause);
    f->error_message = f->error_step = f->cause = NULL;
}

/* Whether a live output holds a blob: blobs end with the worker, so such
 * an execution retries in its process rather than parking. */
static int holds_blob(const json_t *v) {
    if (json_is_object(v)) {
        if (json_object_get(v, "$blob"))
            return 1;
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e) if (holds_blob(e)) return 1;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (holds_blob(e)) return 1;
    }
    return 0;
}

static int can_park(const exec *x) {
    if (!x->o->can_park)
        return 0;
    for (int i = 0; i < x->f->nsteps; i++)
        if (holds_blob(x->scope.outputs[i]))
            return 0;
    return 1;
}

/* A number in [0, 1) for the retry jitter: seeded per process, lazily
 * (workers are forked: each seeds itself on its first use). */
static double rnd(void) {
    static unsigned seed;
    static pid_t seeded_by;
    if (seeded_by != getpid()) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (unsigned)ts.tv_nsec ^ (unsigned)getpid() ^ (unsigned)ts.tv_sec;
        seeded_by = getpid();
    }
    return (double)(rand_r(&seed) % 10000) / 10000.0;
}

/* Sleeps ms in short slices; returns nonzero if cancelled meanwhile. */
static int nap(exec *x, uint64_t ms) {
    while (ms > 0) {
        uint64_t slice = ms < 50 ? ms : 50;
        struct timespec ts = {0, (long)slice * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
        if (cancelled(x))
            return 1;
    }
    return 0;
}

/* A step with its retry policy and on_error. Returns 0, -1 (failed), or
 * -2 (parked: the execution waits for the step's next attempt). */
static int run_step(exec *x, const flow_step *st, const char *prefix, int depth,
                    step_run *failed) {
    char path[1024];
    if (prefix)
        snprintf(path, sizeof(path), "%s.%s", prefix, st->name);
    else
        snprintf(path, sizeof(path), "%s", st->name);
    for (;;) {
        json_t *input = NULL;
        if (run_step_once(x, st, prefix, depth, failed, &input) == 0)
            return 0;
        int before =
            (int)json_integer_value(json_object_get(x->attempts, path));
        int attempt = before + 1; /* attempts failed so far, this one too */
        if (x->attempts)
            json_object_set_new(x->attempts, path, json_integer(attempt));
        if (st->kind == FLOW_STEP_ACTION &&
            flow_retry_matches(&st->retry, failed->error_code,
                               failed->retryable) &&
            attempt < st->retry.max_attempts && !cancelled(x)) {
            uint64_t ms = flow_retry_delay_ms(&st->retry, attempt, rnd());
            char msg[1400];
            snprintf(msg, sizeof(msg),
                     "attempt %d of %d failed (%s); next in %llu ms%s", attempt,
                     st->retry.max_attempts,
                     failed->error_message ? failed->error_message : "?",
                     (unsigned long long)ms,
                     depth == 0 && !prefix && can_park(x)
                         ? " (the execution waits, parked)"
                         : "");
            exec_log(x, x->seq, path, FERRY_LOG_WARN, msg,
                     json_pack("{s:i, s:i, s:I}", "attempt", attempt,
                               "max_attempts", st->retry.max_attempts,
                               "delay_ms", (json_int_t)ms));
            json_decref(input);
            if (depth == 0 && !prefix && can_park(x)) {
                x->parked = 1;
                x->park_step = st;
                x->park_due_us = store_now_us() + (int64_t)ms * 1000;
                free_failed(failed);
                return -2;
            }
            free_failed(failed);
            if (nap(x, ms)) {
                failed->error_code = FERRY_ECANCELLED;
                failed->retryable = 0;
                failed->error_message =
                    strdup("cancelled while waiting to retry");
                failed->error_step = strdup(path);
                return -1;
            }
            continue;
        }
        if (st->kind == FLOW_STEP_ACTION &&
            st->on_error == FLOW_ON_ERROR_CONTINUE &&
            failed->error_code != FERRY_ECANCELLED) {
            /* The error becomes the step's output. */
            json_t *out =
                json_pack("{s:{s:s, s:s, s:b, s:i}}", "error", "code",
                          ferry_err_name(failed->error_code), "message",
                          failed->error_message ? failed->error_message : "",
                          "retryable", failed->retryable, "attempts", attempt);
            drop_output(x, x->scope.outputs[st->id]);
            x->scope.outputs[st->id] = out;
            json_decref(input);
            free_failed(failed);
            return 0;
        }
        if (st->kind == FLOW_STEP_ACTION && !x->dead_letter &&
            failed->error_code != FERRY_ECANCELLED &&
            (st->on_error == FLOW_ON_ERROR_DEAD_LETTER ||
             st->retry.max_attempts >= 2)) {
            x->dead_letter = 1;
            x->dl_input = input;
            x->dl_attempts = attempt;
            input = NULL;
        }
        json_decref(input);
        return -1;
    }
}

static int run_list_from(exec *x, const flow_step_list *l, size_t start,
                         const char *prefix, int depth, json_t **result,
                         step_run *failed) {
    for (size_t i = start; i < l->n; i++) {
        const flow_step *st = &l->steps[i];
        if (depth == 0 && !prefix)
            x->top = st;
        int rc = run_step(x, st, prefix, depth, failed);
        if (rc)
            return rc;
        if (i + 1 == l->n && result)
            *result = json_incref(x->scope.outputs[st->id]);
        for (int *rel = l->release[i]; rel && *rel >= 0; rel++) {
            drop_output(x, x->scope.outputs[*rel]);
            x->scope.outputs[*rel] = NULL;
        }
    }
    return 0;
}

static int run_list(exec *x, const flow_step_list *l, const char *prefix,
                    int depth, json_t **result, step_run *failed) {
    return run_list_from(x, l, 0, prefix, depth, result, failed);
}

void flow_result_clear(flow_result *res) {
    json_decref(res->output);
    json_decref(res->resume);
    free(res->error_message);
    free(res->error_step);
    memset(res, 0, sizeof(*res));
}

/* ---- parking and going on ---- */

static const flow_step *find_step(const flow_step_list *l, const char *name) {
    for (size_t i = 0; i < l->n; i++) {
        const flow_step *st = &l->steps[i];
        if (!strcmp(st->name, name))
            return st;
        const flow_step *in = find_step(&st->body, name);
        for (size_t c = 0; !in && c < st->ncases; c++)
            in = find_step(&st->cases[c].steps, name);
        if (!in)
            in = find_step(&st->otherwise, name);
        if (in)
            return in;
    }
    return NULL;
}

static void collect_outputs(const exec *x, const flow_step_list *l,
                            json_t *out) {
    for (size_t i = 0; i < l->n; i++) {
        const flow_step *st = &l->steps[i];
        if (x->scope.outputs[st->id])
            json_object_set(out, st->name, x->scope.outputs[st->id]);
        collect_outputs(x, &st->body, out);
        for (size_t c = 0; c < st->ncases; c++)
            collect_outputs(x, &st->cases[c].steps, out);
        collect_outputs(x, &st->otherwise, out);
    }
}

/* Where to go on from: the top-level step at, with the outputs still
 * live (by step name, so a later definition can take them). */
static json_t *resume_state(const exec *x, const flow_step *at,
                            int with_outputs, int flow_attempt) {
    json_t *outs = json_object();
    if (with_outputs)
        collect_outputs(x, &x->f->steps, outs);
    return json_pack("{s:s, s:i, s:o, s:O, s:i}", "step", at->name, "seq",
                     x->seq, "outputs", outs, "attempts",
                     with_outputs && x->attempts ? x->attempts : json_object(),
                     "flow_attempt", flow_attempt);
}

/* Restores a parked execution's state. Returns the top-level index to go
 * on from, or -1 with *why set. */
static long restore(exec *x, const json_t *r, const char **why) {
    const char *name = json_string_value(json_object_get(r, "step"));
    long start = -1;
    for (size_t i = 0; name && i < x->f->steps.n; i++)
        if (!strcmp(x->f->steps.steps[i].name, name))
            start = (long)i;
    if (start < 0) {
        *why = "the step to go on from is no longer a top-level step of the "
               "flow";
        return -1;
    }
    x->seq = (int)json_integer_value(json_object_get(r, "seq"));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(r, "outputs"), k, v) {
        const flow_step *st = find_step(&x->f->steps, k);
        if (!st) {
            *why = "an earlier step's output names a step the flow no "
                   "longer has";
            return -1;
        }
        json_decref(x->scope.outputs[st->id]);
        x->scope.outputs[st->id] = json_incref(v);
    }
    json_object_update(x->attempts, json_object_get(r, "attempts"));
    return start;
}

static void put_dead_letter(exec *x, const flow_result *res,
                            const json_t *resume, int attempts) {
    const store *st = x->o->st;
    if (!st || !st->vt->dead_letter_put)
        return;
    char id[40];
    store_new_id("dl", id, sizeof(id));
    char *trig = json_dumps(x->scope.trigger, JSON_COMPACT | JSON_ENCODE_ANY);
    char *in = NULL;
    if (x->dl_input)
        flow_dump_bounded(x->dl_input, max_recorded(x), &in, &x->sizes);
    char *rs = resume ? json_dumps(resume, JSON_COMPACT) : NULL;
    store_dead_letter d = {.id = id,
                           .execution_id = x->id,
                           .integration = x->ig->name,
                           .instance = x->in->name,
                           .flow = x->f->name,
                           .trigger_json = trig,
                           .step = res->error_step,
                           .input_json = in,
                           .error_code = res->error_code,
                           .error_message = res->error_message,
                           .attempts = attempts,
                           .resume_json = rs,
                           .created_us = store_now_us()};
    if (x->o->st->vt->dead_letter_put(x->o->st, &d))
        store_failed(x, x->o->st->errmsg);
    free(trig);
    free(in);
    free(rs);
}

int flow_execute(const flow_integration *ig, const flow_instance *in,
                 const flow_def *f, json_t *trigger, const flow_exec_opts *o,
                 flow_result *res) {
    exec x = {.ig = ig, .in = in, .f = f, .o = o};
    memset(res, 0, sizeof(*res));
    if (o->execution_id)
        snprintf(x.id, sizeof(x.id), "%s", o->execution_id);
    else
        store_new_id("ex", x.id, sizeof(x.id));
    snprintf(res->id, sizeof(res->id), "%s", x.id);

    json_t *conns = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(in->connections, k, v) {
        json_object_set_new(conns, k,
                            json_pack("{s:s, s:O}", "name", k, "type",
                                      json_object_get(v, "type")));
    }
    x.scope.trigger = trigger ? trigger : json_null();
    x.scope.config = in->config;
    x.scope.connections = conns;
    x.scope.outputs =
        calloc((size_t)(f->nsteps ? f->nsteps : 1), sizeof(json_t *));
    x.scope.loops = x.loops;
    x.mem_state = json_object();

    int64_t started = store_now_us();
    if (o->st) {
        char *trig =
            json_dumps(x.scope.trigger, JSON_COMPACT | JSON_ENCODE_ANY);
        store_exec e = {
            .id = x.id,
            .integration = ig->name,
            .instance = in->name,
            .flow = f->name,
            .trigger_json = trig,
            .status = "running",
            .created_us = started,
            .started_us = started,
        };
        int rc = o->st->vt->exec_begin(o->st, &e);
        free(trig);
        if (rc) {
            res->status = "failed";
            res->error_code = rc;
            if (asprintf(&res->error_message, "cannot record the execution: %s",
                         o->st->errmsg) < 0)
                res->error_message = NULL;
            json_decref(conns);
            free(x.scope.outputs);
            json_decref(x.mem_state);
            return rc;
        }
    }

    json_t *output = NULL;
    step_run failed = {0};
    x.attempts = json_object();
    long start = 0;
    int flow_attempt = 1;
    int rc;
    const char *why = NULL;
    if (o->resume) {
        start = restore(&x, o->resume, &why);
        flow_attempt =
            (int)json_integer_value(json_object_get(o->resume, "flow_attempt"));
        if (flow_attempt < 1)
            flow_attempt = 1;
    }
    for (;;) {
        if (start < 0) {
            failed.error_code = FERRY_ECONFIG;
            failed.error_message = strdup(why);
            rc = -1;
            break;
        }
        rc = run_list_from(&x, &f->steps, (size_t)start, NULL, 0, &output,
                           &failed);
        /* The flow's own retry: all of it again, same trigger payload. */
        if (rc == -1 &&
            flow_retry_matches(&f->retry, failed.error_code,
                               failed.retryable) &&
            flow_attempt < f->retry.max_attempts && !cancelled(&x)) {
            uint64_t ms = flow_retry_delay_ms(&f->retry, flow_attempt, rnd());
            char msg[1400];
            snprintf(msg, sizeof(msg),
                     "flow attempt %d of %d failed at %s (%s); again in %llu "
                     "ms",
                     flow_attempt, f->retry.max_attempts,
                     failed.error_step ? failed.error_step : "?",
                     failed.error_message ? failed.error_message : "?",
                     (unsigned long long)ms);
            exec_log(&x, x.seq, NULL, FERRY_LOG_WARN, msg, NULL);
            free_failed(&failed);
            json_decref(x.dl_input);
            x.dl_input = NULL;
            x.dead_letter = 0;
            for (int i = 0; i < f->nsteps; i++) {
                json_decref(x.scope.outputs[i]);
                x.scope.outputs[i] = NULL;
            }
            flow_size_memo_clear(&x.sizes);
            json_object_clear(x.attempts);
            flow_attempt++;
            if (o->can_park && f->steps.n) {
                x.parked = 1;
                x.park_step = &f->steps.steps[0];
                x.park_due_us = store_now_us() + (int64_t)ms * 1000;
                rc = -3; /* parked for the whole flow */
                break;
            }
            if (nap(&x, ms))
                break;
            start = 0;
            continue;
        }
        break;
    }
    if (rc == -2 || rc == -3) {
        res->status = "waiting";
        res->resume = resume_state(&x, x.park_step, rc == -2, flow_attempt);
        res->due_us = x.park_due_us;
    } else if (rc) {
        res->status =
            failed.error_code == FERRY_ECANCELLED ? "cancelled" : "failed";
        res->error_code = failed.error_code;
        res->error_message = failed.error_message;
        res->error_step = failed.error_step;
        free(failed.cause);
        if (failed.error_code != FERRY_ECANCELLED &&
            (x.dead_letter || f->retry.max_attempts >= 2)) {
            res->dead_letter = 1;
            json_t *rs =
                x.top ? resume_state(&x, x.top, 1, flow_attempt) : NULL;
            put_dead_letter(&x, res, rs,
                            x.dead_letter ? x.dl_attempts : flow_attempt);
            json_decref(rs);
        }
    } else {
        res->status = "succeeded";
        res->output = output;
    }

    /* Large outputs let go of during the run are freed before the end is
     * recorded: the execution's time includes them. */
    reaper_stop(x.reaper);
    x.reaper = NULL;

    char *out = NULL;
    size_t out_size = 0;
    if (output && (o->st || o->max_output))
        out_size = flow_dump_bounded(output, max_recorded(&x), &out, &x.sizes);
    if (!rc && o->max_output && out_size > o->max_output) {
        res->status = "failed";
        res->error_code = FERRY_ETOOBIG;
        if (asprintf(&res->error_message,
                     "output_limit: the output is %zu bytes of JSON, over "
                     "the flow's limit of %zu",
                     out_size, o->max_output) < 0)
            res->error_message = NULL;
    }

    if (o->st) {
        store_exec_end e = {
            .id = x.id,
            .status = res->status,
            .ended_us = store_now_us(),
            .output_json = out,
            .output_size = out_size,
            .error_code = res->error_code,
            .error_message = res->error_message,
            .error_step = res->error_step,
        };
        char *rs = res->resume ? json_dumps(res->resume, JSON_COMPACT) : NULL;
        e.resume_json = rs;
        e.due_us = res->due_us;
        if (o->st->vt->exec_end(o->st, &e))
            store_failed(&x, o->st->errmsg);
        free(rs);
    }
    free(out);

    flow_size_memo_clear(&x.sizes);
    for (int i = 0; i < f->nsteps; i++)
        json_decref(x.scope.outputs[i]);
    free(x.scope.outputs);
    json_decref(conns);
    json_decref(x.mem_state);
    json_decref(x.attempts);
    json_decref(x.dl_input);
    exec_blobs_free(&x);
    return 0;
}
