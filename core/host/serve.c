/*
 * `ferry serve`: the loop, the zygote, the dispatcher and the worker event
 * streams. Everything here runs on the loop thread; store work goes to the
 * store thread (storeq) and comes back in done callbacks.
 *
 * An execution's life: host_enqueue writes it as "queued" (the caller is
 * answered only once that row is durable) -> dispatch() picks it when a
 * worker slot is free -> a socketpair is made and one end sent to the
 * zygote with the spawn request -> the worker streams frames (begin, steps,
 * logs, state, end) -> the zygote reports the worker's exit -> finish()
 * writes the outcome if the worker could not (crash, timeout, limits).
 */
#include "host_internal.h"
#include "jtext/jtext.h"

#include "flow/flow_poll.h"
#include "tokens/tokens.h"

#include <ferry/ferry.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- logging ---- */

void host_log(host *h, const char *level, json_t *fields, const char *fmt,
              ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char ts[40];
    if (!store_format_time(store_now_us(), ts, sizeof(ts)))
        snprintf(ts, sizeof(ts), "-");
    /* The line is built whole and written with one call, so that it does
     * not interleave with what the zygote or a worker writes. */
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    if (!f) {
        json_decref(fields);
        return;
    }
    if (h->cfg->log_json) {
        json_t *o =
            json_pack("{s:s, s:s, s:s}", "ts", ts, "level", level, "msg", msg);
        if (fields)
            json_object_update(o, fields);
        size_t n = 0;
        char *t = jtext_dump(o, &n);
        if (t)
            fwrite(t, 1, n, f);
        free(t);
        json_decref(o);
    } else {
        fprintf(f, "%s %-5s %s", ts, level, msg);
        const char *k;
        json_t *v;
        json_object_foreach(fields, k, v) {
            if (json_is_string(v)) {
                fprintf(f, " %s=%s", k, json_string_value(v));
            } else {
                fprintf(f, " %s=", k);
                json_dumpf(v, f, JSON_COMPACT | JSON_ENCODE_ANY);
            }
        }
    }
    fputc('\n', f);
    fclose(f);
    for (size_t off = 0; line && off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w <= 0 && errno != EINTR)
            break;
        if (w > 0)
            off += (size_t)w;
    }
    free(line);
    json_decref(fields);
}

static json_t *run_fields(const run *r) {
    json_t *f = json_pack("{s:s, s:s, s:s}", "execution", r->id, "instance",
                          r->dep->instance, "flow", r->flow);
    if (r->current_step)
        json_object_set_new(f, "step", json_string(r->current_step));
    return f;
}

/* ---- runs ---- */

void dispatch(host *h);
static void finish(run *r);
static void shutdown_progress(host *h);

static void run_notify_done(run *r, const char *status, const char *output,
                            const char *error) {
    void (*cb)(void *, run *, const char *, const char *, const char *) =
        r->on_done;
    r->on_done = NULL;
    if (cb)
        cb(r->on_done_ud, r, status, output, error);
}

static void run_free(run *r) {
    run_notify_done(r, "cancelled", NULL, "the execution did not finish here");
    free(r->end_status);
    free(r->end_output);
    free(r->end_error);
    frame_decoder_free(&r->dec);
    deployment_unref(r->dep);
    json_decref(r->trigger);
    free(r->trigger_text);
    json_decref(r->poll_result);
    json_decref(r->resume);
    free(r->last_error);
    free(r->flow);
    free(r->current_step);
    free(r);
}

static void active_add(host *h, run *r) {
    if (h->nactive == h->capactive) {
        size_t cap = h->capactive ? h->capactive * 2 : 16;
        run **a = realloc(h->active, cap * sizeof(*a));
        if (!a)
            return;
        h->active = a;
        h->capactive = cap;
    }
    h->active[h->nactive++] = r;
}

static void active_remove(host *h, run *r) {
    for (size_t i = 0; i < h->nactive; i++) {
        if (h->active[i] == r) {
            h->active[i] = h->active[--h->nactive];
            return;
        }
    }
}

run *host_find_run(host *h, const char *id) {
    for (size_t i = 0; i < h->nactive; i++)
        if (!strcmp(h->active[i]->id, id))
            return h->active[i];
    for (run *r = h->qhead; r; r = r->next)
        if (!strcmp(r->id, id))
            return r;
    return NULL;
}

static void on_handle_closed(uv_handle_t *hd) {
    run *r = hd->data;
    if (--r->handles == 0 && r->state == RUN_DONE)
        run_free(r);
}

static void close_run_handles(run *r) {
    if (r->pipe_open) {
        r->pipe_open = 0;
        uv_close((uv_handle_t *)&r->pipe, on_handle_closed);
    }
    if (r->timer_open) {
        r->timer_open = 0;
        uv_close((uv_handle_t *)&r->timer, on_handle_closed);
    }
}

/* ---- store jobs ---- */

typedef struct end_job {
    store_exec_end e;
    char *id, *status, *output, *message, *step;
    int rc;
} end_job;

static void end_job_run(store *st, void *arg) {
    end_job *j = arg;
    j->rc = st->vt->exec_end(st, &j->e);
}

static void end_job_done(void *arg, int commit_rc) {
    end_job *j = arg;
    (void)commit_rc;
    free(j->id);
    free(j->status);
    free(j->output);
    free(j->message);
    free(j->step);
    free(j);
}

static void push_end(host *h, const char *id, const char *status,
                     int64_t ended_us, const char *output, size_t output_size,
                     int code, const char *message, const char *step) {
    end_job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->id = strdup(id);
    j->status = strdup(status);
    j->output = output ? strdup(output) : NULL;
    j->message = message ? strdup(message) : NULL;
    j->step = step ? strdup(step) : NULL;
    j->e = (store_exec_end){.id = j->id,
                            .status = j->status,
                            .ended_us = ended_us,
                            .output_json = j->output,
                            .output_size = output_size,
                            .error_code = code,
                            .error_message = j->message,
                            .error_step = j->step};
    /* nobody waits for it: kept if its batch does not commit */
    storeq_push_record(h->q, end_job_run, end_job_done, j);
}

/* A frame from a worker, kept whole and written on the store thread. */
typedef struct event_job {
    json_t *msg;
    char id[40];
    char instance[256];
    char integration[256];
    char flow[256];
    run *r; /* for answers; NULL when none is owed */
    json_t *answer;
} event_job;

static const char *jstr(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static int64_t jint(const json_t *o, const char *k) {
    return (int64_t)json_integer_value(json_object_get(o, k));
}

static void event_job_run(store *st, void *arg) {
    event_job *j = arg;
    const char *ev = jstr(j->msg, "ev");
    int rc = 0;
    if (!strcmp(ev, "begin")) {
        rc = st->vt->exec_started(st, j->id, jint(j->msg, "started_us"));
    } else if (!strcmp(ev, "step")) {
        store_step s = {
            .execution_id = j->id,
            .seq = (int)jint(j->msg, "seq"),
            .path = jstr(j->msg, "path"),
            .name = jstr(j->msg, "name"),
            .kind = jstr(j->msg, "kind"),
            .action = jstr(j->msg, "action"),
            .status = jstr(j->msg, "status"),
            .started_us = jint(j->msg, "started_us"),
            .duration_us = jint(j->msg, "duration_us"),
            .input_json = jstr(j->msg, "input_json"),
            .input_size = (size_t)jint(j->msg, "input_size"),
            .output_json = jstr(j->msg, "output_json"),
            .output_size = (size_t)jint(j->msg, "output_size"),
            .error_code = (int)jint(j->msg, "error_code"),
            .error_message = jstr(j->msg, "error_message"),
            .retryable = json_is_true(json_object_get(j->msg, "retryable")),
        };
        rc = st->vt->step_record(st, &s);
    } else if (!strcmp(ev, "log")) {
        store_log l = {
            .execution_id = j->id,
            .step_seq = (int)jint(j->msg, "step_seq"),
            .step_path = jstr(j->msg, "step_path"),
            .ts_us = jint(j->msg, "ts_us"),
            .level = (int)jint(j->msg, "level"),
            .message = jstr(j->msg, "message"),
            .fields_json = jstr(j->msg, "fields_json"),
        };
        rc = st->vt->log_append(st, &l);
    } else if (!strcmp(ev, "end")) {
        store_exec_end e = {
            .id = j->id,
            .status = jstr(j->msg, "status"),
            .ended_us = jint(j->msg, "ended_us"),
            .output_json = jstr(j->msg, "output_json"),
            .output_size = (size_t)jint(j->msg, "output_size"),
            .error_code = (int)jint(j->msg, "error_code"),
            .error_message = jstr(j->msg, "error_message"),
            .error_step = jstr(j->msg, "error_step"),
            .resume_json = jstr(j->msg, "resume_json"),
            .due_us = jint(j->msg, "due_us"),
        };
        rc = st->vt->exec_end(st, &e);
    } else if (!strcmp(ev, "dead_letter")) {
        store_dead_letter d = {
            .id = jstr(j->msg, "id"),
            .execution_id = j->id,
            .integration = j->integration,
            .instance = j->instance,
            .flow = j->flow,
            .trigger_json = jstr(j->msg, "trigger_json"),
            .step = jstr(j->msg, "step"),
            .input_json = jstr(j->msg, "input_json"),
            .error_code = (int)jint(j->msg, "error_code"),
            .error_message = jstr(j->msg, "error_message"),
            .attempts = (int)jint(j->msg, "attempts"),
            .resume_json = jstr(j->msg, "resume_json"),
            .created_us = store_now_us(),
        };
        rc = st->vt->dead_letter_put ? st->vt->dead_letter_put(st, &d)
                                     : FERRY_EUNSUPPORTED;
    } else if (!strcmp(ev, "state_get")) {
        json_t *v = NULL;
        rc = st->vt->state_get(st, j->instance, jstr(j->msg, "key"), &v);
        j->answer = rc ? json_pack("{s:s}", "error", st->errmsg)
                       : json_pack("{s:o}", "value", v ? v : json_null());
        rc = 0;
    } else if (!strcmp(ev, "state_set")) {
        json_t *v = json_object_get(j->msg, "value");
        rc = st->vt->state_set(st, j->instance, jstr(j->msg, "key"),
                               json_is_null(v) ? NULL : v);
        j->answer = rc ? json_pack("{s:s}", "error", st->errmsg)
                       : json_pack("{s:b}", "ok", 1);
        rc = 0;
    }
    if (rc)
        fprintf(stderr, "ferry: store: %s (execution %s, event %s)\n",
                st->errmsg, j->id, ev);
}

typedef struct answer_req {
    uv_write_t w;
    char *buf;
} answer_req;

static void on_answer_written(uv_write_t *w, int status) {
    (void)status;
    answer_req *a = (answer_req *)w;
    free(a->buf);
    free(a);
}

void run_answer(run *r, const json_t *answer) {
    if (!answer || !r->pipe_open)
        return;
    answer_req *a = calloc(1, sizeof(*a));
    size_t len = 0;
    if (a && (a->buf = frame_encode(answer, &len))) {
        uv_buf_t b = uv_buf_init(a->buf, (unsigned)len);
        if (uv_write(&a->w, (uv_stream_t *)&r->pipe, &b, 1,
                     on_answer_written)) {
            free(a->buf);
            free(a);
        }
    } else {
        free(a);
    }
}

void run_release(run *r) {
    if (--r->handles == 0 && r->state == RUN_DONE)
        run_free(r);
}

static void event_job_done(void *arg, int commit_rc) {
    event_job *j = arg;
    if (j->r) {
        run *r = j->r;
        if (commit_rc && j->answer) {
            json_decref(j->answer);
            j->answer = json_pack("{s:s}", "error", "the store did not commit");
        }
        run_answer(r, j->answer);
        run_release(r);
    }
    json_decref(j->answer);
    json_decref(j->msg);
    free(j);
}

/* A worker's request for a connection's access token: answered once the
 * host has one (or knows why not). */
static void on_token(void *ud, const char *access, const char *token_type,
                     const char *err, int reauth, int retryable) {
    run *r = ud;
    json_t *a =
        access ? json_pack("{s:s, s:s}", "access_token", access, "token_type",
                           token_type ? token_type : "Bearer")
               : json_pack("{s:s, s:b, s:b}", "denied", err ? err : "no token",
                           "reauth", reauth, "retryable", retryable);
    run_answer(r, a);
    json_decref(a);
    run_release(r);
}

/* ---- worker events ---- */

static void on_worker_msg(void *ud, json_t *msg) {
    run *r = ud;
    host *h = r->h;
    const char *ev = jstr(msg, "ev");
    if (!ev) {
        json_decref(msg);
        return;
    }
    if (!strcmp(ev, "step_start")) {
        free(r->current_step);
        r->current_step = jstr(msg, "path") ? strdup(jstr(msg, "path")) : NULL;
        json_decref(msg);
        return;
    }
    if (!strcmp(ev, "oom")) {
        r->oom = 1;
        json_decref(msg);
        return;
    }
    if (!strcmp(ev, "dead_letter"))
        r->dead_lettered = 1;
    if (!strcmp(ev, "token")) {
        r->handles++; /* the run stays allocated until the answer */
        host_token_get(h, r->dep, jstr(msg, "connection"),
                       json_is_true(json_object_get(msg, "force")),
                       jstr(msg, "refused_fp"), on_token, r);
        json_decref(msg);
        return;
    }
    if (!strcmp(ev, "poll_result")) {
        if (r->poll) {
            json_decref(r->poll_result);
            r->poll_result = json_incref(json_object_get(msg, "output"));
        }
        json_decref(msg);
        return;
    }
    if (!strcmp(ev, "step")) {
        metrics_observe(h->m, "ferry_step_duration_seconds",
                        (double)jint(msg, "duration_us") / 1e6, "action",
                        jstr(msg, "action") ? jstr(msg, "action")
                                            : jstr(msg, "kind"),
                        NULL);
    } else if (!strcmp(ev, "begin")) {
        r->started_us = jint(msg, "started_us");
    } else if (!strcmp(ev, "log")) {
        const char *lv = jint(msg, "level") >= FERRY_LOG_ERROR  ? "error"
                         : jint(msg, "level") >= FERRY_LOG_WARN ? "warn"
                         : jint(msg, "level") >= FERRY_LOG_INFO ? "info"
                                                                : "debug";
        json_t *f = run_fields(r);
        if (jstr(msg, "step_path"))
            json_object_set_new(f, "step", json_string(jstr(msg, "step_path")));
        host_log(h, lv, f, "%s",
                 jstr(msg, "message") ? jstr(msg, "message") : "");
    } else if (!strcmp(ev, "end")) {
        r->got_end = 1;
        const char *status = jstr(msg, "status");
        r->end_ok = status && !strcmp(status, "succeeded");
        if (status && !strcmp(status, "waiting"))
            r->wait_due_us = jint(msg, "due_us");
        snprintf(r->last_status, sizeof(r->last_status), "%s",
                 status ? status : "");
        free(r->last_error);
        r->last_error = jstr(msg, "error_message")
                            ? strdup(jstr(msg, "error_message"))
                            : NULL;
        if (r->on_done) {
            const char *o = jstr(msg, "output_json");
            const char *e = jstr(msg, "error_message");
            r->end_status = status ? strdup(status) : NULL;
            r->end_output = o ? strdup(o) : NULL;
            r->end_error = e ? strdup(e) : NULL;
        }
        metrics_add(h->m, "ferry_executions_finished_total", 1, "status",
                    status ? status : "unknown", NULL);
        json_t *f = run_fields(r);
        json_object_set_new(f, "status", json_string(status ? status : "?"));
        host_log(h, "info", f, "execution %s", status ? status : "ended");
    }
    event_job *j = calloc(1, sizeof(*j));
    if (!j) {
        json_decref(msg);
        return;
    }
    j->msg = msg;
    snprintf(j->id, sizeof(j->id), "%s", r->id);
    snprintf(j->instance, sizeof(j->instance), "%s", r->dep->instance);
    snprintf(j->integration, sizeof(j->integration), "%s", r->dep->integration);
    snprintf(j->flow, sizeof(j->flow), "%s", r->flow);
    if (!strcmp(ev, "state_get") || !strcmp(ev, "state_set")) {
        j->r = r;
        r->handles++; /* the run stays allocated until the answer is sent */
        storeq_push(h->q, event_job_run, event_job_done, j);
    } else {
        storeq_push_record(h->q, event_job_run, event_job_done, j);
    }
}

/* Every worker's stream reads into one buffer of the loop: libuv calls
 * on_worker_read right after on_alloc, and the decoder copies what it
 * keeps, so the buffer is free again when the callback returns. (A 64 KiB
 * malloc and free per read cost more than the read.) */
static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
    static char readbuf[64 * 1024];
    (void)hd;
    (void)suggested;
    buf->base = readbuf;
    buf->len = sizeof(readbuf);
}

static void on_worker_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    run *r = s->data;
    if (n > 0) {
        if (frame_decoder_feed(&r->dec, buf->base, (size_t)n, on_worker_msg,
                               r)) {
            host_log(r->h, "error", run_fields(r),
                     "malformed frame from the worker; stopping it");
            if (r->pid > 0)
                kill(r->pid, SIGKILL);
            n = UV_EOF;
        }
    }
    if (n < 0) {
        uv_read_stop(s);
        r->pipe_closed = 1;
        finish(r);
    }
}

/* ---- finishing ---- */

static const char *signal_name(int sig) {
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGABRT:
        return "SIGABRT";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGKILL:
        return "SIGKILL";
    case SIGTERM:
        return "SIGTERM";
    case SIGXCPU:
        return "SIGXCPU";
    case SIGPIPE:
        return "SIGPIPE";
    default:
        return NULL;
    }
}

/* Called whenever something about a finishing run changes; acts once the
 * worker's stream is closed and its exit is known. */
static void finish(run *r) {
    host *h = r->h;
    if (r->state == RUN_DONE || !r->pipe_closed || !r->exited)
        return;
    if (!r->got_end) {
        /* The worker could not write its own end: say why. */
        char msg[512];
        const char *status = "failed";
        int code = FERRY_EFAILED;
        const char *step =
            r->current_step ? r->current_step : "(before the first step)";
        uint64_t mem = r->memory_bytes;
        if (r->cancel_requested) {
            status = "cancelled";
            code = FERRY_ECANCELLED;
            snprintf(msg, sizeof(msg), "cancelled: stopped at step %s", step);
        } else if (r->timed_out) {
            code = FERRY_ETIMEOUT;
            snprintf(msg, sizeof(msg),
                     "timeout: the execution ran past its deadline of %llu ms "
                     "and was killed at step %s",
                     (unsigned long long)r->timeout_ms, step);
        } else if (r->exit_signal == SIGXCPU ||
                   (r->exit_signal == SIGKILL && r->cpu_seconds &&
                    r->cpu_us >= (int64_t)r->cpu_seconds * 1000000)) {
            code = FERRY_ETIMEOUT;
            snprintf(msg, sizeof(msg),
                     "cpu_limit: the execution used its %llu CPU seconds at "
                     "step %s",
                     (unsigned long long)r->cpu_seconds, step);
        } else if (mem && (r->oom || (uint64_t)r->max_rss >= mem / 10 * 9)) {
            code = FERRY_ETOOBIG;
            snprintf(msg, sizeof(msg),
                     "memory_limit: the execution reached its memory limit of "
                     "%llu bytes at step %s",
                     (unsigned long long)mem, step);
        } else if (r->exit_signal) {
            const char *name = signal_name(r->exit_signal);
            code = FERRY_EFAILED;
            if (name)
                snprintf(msg, sizeof(msg),
                         "crashed: the worker was killed by %s (%s) at step "
                         "%s",
                         name, strsignal(r->exit_signal), step);
            else
                snprintf(msg, sizeof(msg),
                         "crashed: the worker was killed by signal %d (%s) at "
                         "step %s",
                         r->exit_signal, strsignal(r->exit_signal), step);
            metrics_add(h->m, "ferry_worker_crashes_total", 1, "signal",
                        name ? name : "other", NULL);
        } else {
            snprintf(msg, sizeof(msg),
                     "crashed: the worker exited with status %d at step %s "
                     "without recording an outcome",
                     r->exit_code, step);
        }
        push_end(h, r->id, status, store_now_us(), NULL, 0, code, msg,
                 r->current_step);
        metrics_add(h->m, "ferry_executions_finished_total", 1, "status",
                    status, NULL);
        json_t *f = run_fields(r);
        json_object_set_new(f, "status", json_string(status));
        host_log(h, "warn", f, "%s", msg);
        run_notify_done(r, status, NULL, msg);
        host_alert_execution(h, r, status, msg);
    } else {
        host_alert_execution(h, r, r->last_status,
                             r->last_error ? r->last_error : NULL);
        run_notify_done(r, r->end_status ? r->end_status : "unknown",
                        r->end_output, r->end_error);
    }
    host_poll_run_done(h, r);
    if (r->got_end && r->wait_due_us)
        host_retry_schedule(h, r->id, r->dep->instance, r->flow,
                            r->wait_due_us);
    r->state = RUN_DONE;
    active_remove(h, r);
    metrics_set(h->m, "ferry_workers_running", (double)h->nactive, NULL);
    close_run_handles(r);
    if (r->handles == 0)
        run_free(r);
    dispatch(h);
    shutdown_progress(h);
}

static void on_deadline(uv_timer_t *t) {
    run *r = t->data;
    if (r->cancel_requested && !r->timed_out) {
        /* A cancelled run that did not stop by itself in time. */
        if (r->pid > 0)
            kill(r->pid, SIGKILL);
        return;
    }
    r->timed_out = 1;
    if (r->pid > 0)
        kill(r->pid, SIGKILL);
}

/* ---- zygotes ----
 *
 * One zygote takes new executions (h->zcur). When the components change, a
 * new one is started; once it is ready it takes over and the old one is
 * retired: it forks nothing more and exits when its last worker is done,
 * so running executions finish on the code they started with. */

static void zygote_start(host *h);
static void set_registry(host *h, abi_registry *reg);

static void zygote_free(zygote *z) {
    frame_decoder_free(&z->dec);
    free(z);
}

static void zygote_maybe_free(zygote *z) {
    if (!z->proc_open && !z->poll_open && !z->fd_open)
        zygote_free(z);
}

static void zygote_unlink(host *h, zygote *z) {
    for (zygote **p = &h->zygotes; *p; p = &(*p)->next) {
        if (*p == z) {
            *p = z->next;
            break;
        }
    }
    if (h->zcur == z)
        h->zcur = NULL;
}

static void zygote_retire(zygote *z) {
    if (z->retired)
        return;
    z->retired = 1;
    json_t *m = json_pack("{s:s}", "op", "retire");
    if (z->fd_open)
        frame_send(z->fd, m, -1);
    json_decref(m);
}

static void zygote_msg(void *ud, json_t *msg) {
    zygote *z = ud;
    host *h = z->h;
    const char *op = jstr(msg, "op");
    const char *id = jstr(msg, "exec");
    run *r = id ? host_find_run(h, id) : NULL;
    if (r && r->z != z)
        r = NULL; /* not one of this zygote's workers */
    if (!op) {
    } else if (!strcmp(op, "ready")) {
        z->ready = 1;
        z->pid = (pid_t)jint(msg, "pid");
        json_t *names = json_object_get(msg, "components");
        metrics_set(h->m, "ferry_components_loaded",
                    (double)json_array_size(names), NULL);
        host_log(
            h, "info",
            json_pack("{s:i, s:O}", "pid", (int)z->pid, "components", names),
            "zygote ready");
        size_t i;
        json_t *rf;
        json_array_foreach(json_object_get(msg, "refused"), i, rf) {
            host_log(h, "warn", NULL, "component refused: %s: %s",
                     jstr(rf, "path"), jstr(rf, "reason"));
        }
        /* The newest ready zygote takes new executions. */
        if (h->zcur && h->zcur != z && z->generation > h->zcur->generation) {
            zygote_retire(h->zcur);
            h->zcur = z;
        } else if (!h->zcur) {
            h->zcur = z;
        }
        if (h->zcur == z && h->pending_reg) {
            set_registry(h, h->pending_reg);
            h->pending_reg = NULL;
        }
        for (zygote *o = h->zygotes; o; o = o->next)
            if (o != h->zcur && o->generation < h->zcur->generation)
                zygote_retire(o);
        dispatch(h);
    } else if (!strcmp(op, "failed")) {
        host_log(h, "error", NULL, "zygote failed: %s", jstr(msg, "error"));
    } else if (!strcmp(op, "forked") && r) {
        r->pid = (pid_t)jint(msg, "pid");
        r->state = RUN_RUNNING;
        if (r->timed_out || r->cancel_requested)
            kill(r->pid, r->timed_out ? SIGKILL : SIGTERM);
    } else if (!strcmp(op, "spawn_failed") && r) {
        r->exited = 1;
        r->exit_code = 127;
        host_log(h, "error", run_fields(r), "cannot fork a worker: %s",
                 jstr(msg, "error"));
        finish(r);
    } else if (!strcmp(op, "exited") && r) {
        r->exited = 1;
        r->exit_code = (int)jint(msg, "code");
        r->exit_signal = (int)jint(msg, "signal");
        r->max_rss = jint(msg, "max_rss_bytes");
        r->cpu_us = jint(msg, "cpu_us");
        finish(r);
    }
    json_decref(msg);
}

static void on_zpoll_closed(uv_handle_t *hd) {
    zygote *z = hd->data;
    z->poll_open = 0;
    close(z->fd);
    z->fd_open = 0;
    zygote_maybe_free(z);
}

static void zygote_close_socket(zygote *z) {
    if (z->poll_open && !uv_is_closing((uv_handle_t *)&z->poll)) {
        uv_poll_stop(&z->poll);
        uv_close((uv_handle_t *)&z->poll, on_zpoll_closed);
    }
}

static void on_zygote_readable(uv_poll_t *p, int status, int events) {
    zygote *z = p->data;
    (void)events;
    char buf[65536];
    for (;;) {
        ssize_t n =
            status < 0 ? -1 : recv(z->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            if (frame_decoder_feed(&z->dec, buf, (size_t)n, zygote_msg, z) == 0)
                continue;
            host_log(z->h, "error", NULL, "malformed frame from the zygote");
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        /* EOF or error: the zygote is gone (its exit callback follows). */
        uv_poll_stop(p);
        return;
    }
}

static void on_zproc_closed(uv_handle_t *hd) {
    zygote *z = hd->data;
    host *h = z->h;
    int was_current = z->was_current;
    z->proc_open = 0;
    zygote_maybe_free(z);
    if (h->stopping)
        shutdown_progress(h);
    else if (was_current && !h->zcur)
        zygote_start(h);
}

static void on_zygote_exit(uv_process_t *p, int64_t status, int sig) {
    zygote *z = p->data;
    host *h = z->h;
    z->was_current = h->zcur == z || (!h->zcur && !z->retired);
    host_log(h, h->stopping || z->retired ? "info" : "error",
             json_pack("{s:i, s:I, s:i}", "pid", (int)z->pid, "status",
                       (json_int_t)status, "signal", sig),
             z->retired ? "retired zygote exited" : "zygote exited");
    zygote_unlink(h, z);
    /* Its workers cannot be reported on any more: they are killed and
     * their executions recorded when their sockets close. */
    for (size_t i = 0; i < h->nactive; i++) {
        run *r = h->active[i];
        if (r->z == z && !r->exited) {
            r->exited = 1;
            r->exit_code = -1;
            r->z = NULL;
            if (r->pid > 0)
                kill(r->pid, SIGKILL);
        }
    }
    zygote_close_socket(z);
    uv_close((uv_handle_t *)p, on_zproc_closed);
    for (size_t i = h->nactive; i-- > 0;)
        finish(h->active[i]);
}

static void on_zproc_failed(uv_handle_t *hd) {
    zygote_free(hd->data);
}

static void zygote_start(host *h) {
    int sv[2];
    char exe[4096];
    size_t exelen = sizeof(exe);
    if (uv_exepath(exe, &exelen) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
        host_log(h, "error", NULL, "cannot start a zygote: %s",
                 strerror(errno));
        return;
    }
    zygote *z = calloc(1, sizeof(*z));
    if (!z) {
        close(sv[0]);
        close(sv[1]);
        return;
    }
    z->h = h;
    z->generation = ++h->zgeneration;
    int big = 4 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    /* ferry-zygote beside this binary, else this binary's `zygote`. */
    char zexe[4200];
    char *slash = strrchr(exe, '/');
    snprintf(zexe, sizeof(zexe), "%.*s/ferry-zygote",
             slash ? (int)(slash - exe) : 1, slash ? exe : ".");
    int own = access(zexe, X_OK) == 0;
    char *own_args[] = {"ferry-zygote",
                        "--components-dir",
                        h->cfg->components_dir,
                        "--fd",
                        "3",
                        NULL};
    char *sub_args[] = {
        "ferry", "zygote", "--components-dir", h->cfg->components_dir, "--fd",
        "3",     NULL};
    char **args = own ? own_args : sub_args;
    uv_stdio_container_t stdio[4] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
        {.flags = UV_INHERIT_FD, .data.fd = sv[1]},
    };
    uv_process_options_t o = {
        .exit_cb = on_zygote_exit,
        .file = own ? zexe : exe,
        .args = args,
        .stdio_count = 4,
        .stdio = stdio,
    };
    z->proc.data = z;
    int rc = uv_spawn(h->loop, &z->proc, &o);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        host_log(h, "error", NULL, "cannot start a zygote: %s",
                 uv_strerror(rc));
        uv_close((uv_handle_t *)&z->proc, on_zproc_failed);
        return;
    }
    z->proc_open = 1;
    z->fd = sv[0];
    z->fd_open = 1;
    uv_poll_init(h->loop, &z->poll, z->fd);
    z->poll.data = z;
    z->poll_open = 1;
    uv_poll_start(&z->poll, UV_READABLE, on_zygote_readable);
    z->next = h->zygotes;
    h->zygotes = z;
}

/* ---- dispatching ---- */

/* dep's documents as spawn request members (see deployment.spawn_docs):
 * NULL when memory ran out. */
static const char *spawn_docs(deployment *dep) {
    if (!dep->spawn_docs) {
        char *ig = jtext_dump(dep->integration_doc, NULL);
        char *in = dep->instance_doc ? jtext_dump(dep->instance_doc, NULL)
                                     : strdup("null");
        if (ig && in &&
            asprintf(&dep->spawn_docs, "\"integration\":%s,\"instance\":%s", ig,
                     in) < 0)
            dep->spawn_docs = NULL;
        free(ig);
        free(in);
    }
    return dep->spawn_docs;
}

/* The spawn request's text. The documents and the trigger are texts made
 * once (per deployment, and when the execution was stored), put in as
 * they are: dumping them again for every spawn was most of the request's
 * cost. Returns a malloc'd text (*n bytes), or NULL. */
static char *spawn_text(host *h, run *r, size_t *n) {
    const char *docs = spawn_docs(r->dep);
    char *dumped = r->trigger_text ? NULL : jtext_dump(r->trigger, NULL);
    const char *trigger = r->trigger_text ? r->trigger_text : dumped;
    json_t *limits =
        json_pack("{s:I, s:I, s:I}", "cpu_seconds", (json_int_t)r->cpu_seconds,
                  "memory_bytes", (json_int_t)r->memory_bytes, "output_bytes",
                  (json_int_t)r->output_bytes);
    json_t *msg = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I}", "op", "spawn", "exec",
        r->id, "integration_key", r->dep->integration_key, "integration_file",
        r->dep->integration_file, "instance_file", r->dep->instance_file,
        "flow", r->poll ? r->fdef->name : r->flow, "limits", limits,
        "max_recorded", (json_int_t)h->cfg->max_recorded);
    if (msg && r->poll)
        json_object_set_new(msg, "mode", json_string("poll"));
    if (msg && r->resume)
        json_object_set(msg, "resume", r->resume);
    char *small = msg ? jtext_dump(msg, NULL) : NULL;
    json_decref(msg);
    char *text = NULL;
    int len = -1;
    /* small ends with its closing brace: the rest goes before it. */
    if (docs && trigger && small)
        len = asprintf(&text, "%.*s,%s,\"trigger\":%s}",
                       (int)(strlen(small) - 1), small, docs, trigger);
    free(small);
    free(dumped);
    if (len < 0)
        return NULL;
    *n = (size_t)len;
    return text;
}

static int spawn(host *h, run *r) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return -1;
    size_t n = 0;
    char *text = spawn_text(h, r, &n);
    int rc = text ? frame_send_text(h->zcur->fd, text, n, sv[1]) : FERRY_ENOMEM;
    free(text);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        return -1;
    }
    uv_pipe_init(h->loop, &r->pipe, 0);
    r->pipe.data = r;
    uv_pipe_open(&r->pipe, sv[0]);
    r->pipe_open = 1;
    r->handles++;
    uv_read_start((uv_stream_t *)&r->pipe, on_alloc, on_worker_read);
    uv_timer_init(h->loop, &r->timer);
    r->timer.data = r;
    r->timer_open = 1;
    r->handles++;
    uv_timer_start(&r->timer, on_deadline, r->timeout_ms, 0);
    r->state = RUN_SPAWNING;
    r->z = h->zcur;
    return 0;
}

static int same_flow(const run *a, const run *b) {
    return !strcmp(a->dep->instance, b->dep->instance) &&
           !strcmp(a->flow, b->flow);
}

/* Whether r may start now under its flow's concurrency mode. Runs are
 * considered in arrival order, so a sequential flow's next run cannot
 * overtake an earlier one. */
static int may_start(host *h, const run *r) {
    enum flow_concurrency mode = r->fdef ? r->fdef->concurrency : FLOW_PARALLEL;
    if (mode == FLOW_PARALLEL)
        return 1;
    int running = 0;
    for (size_t i = 0; i < h->nactive; i++)
        running += same_flow(h->active[i], r);
    if (mode == FLOW_THROTTLED)
        return running < r->fdef->max_concurrent;
    return running == 0;
}

/* Queued runs: in memory and waiting in the store's spill list. */
static void queue_metrics(host *h) {
    metrics_set(h->m, "ferry_queue_depth", (double)(h->nqueued + h->nspilled),
                NULL);
    metrics_set(h->m, "ferry_queue_spilled", (double)h->nspilled, NULL);
}

static void maybe_refill(host *h);

void dispatch(host *h) {
    run *prev = NULL, *r = h->qhead;
    while (!h->stopping && !h->store_kept && h->zcur && h->zcur->ready && r &&
           h->nactive < (size_t)h->cfg->max_concurrency) {
        run *next = r->next;
        if (!may_start(h, r)) {
            prev = r;
            r = next;
            continue;
        }
        if (prev)
            prev->next = next;
        else
            h->qhead = next;
        if (h->qtail == r)
            h->qtail = prev;
        h->nqueued--;
        r->next = NULL;
        active_add(h, r);
        if (spawn(h, r)) {
            host_log(h, "error", run_fields(r),
                     "cannot hand the execution to the zygote");
            /* Back where it was; the zygote is restarting. */
            active_remove(h, r);
            r->next = next;
            if (prev)
                prev->next = r;
            else
                h->qhead = r;
            if (!next)
                h->qtail = r;
            h->nqueued++;
            break;
        }
        metrics_add(h->m, "ferry_executions_started_total", 1, NULL);
        r = next;
    }
    maybe_refill(h);
    queue_metrics(h);
    metrics_set(h->m, "ferry_workers_running", (double)h->nactive, NULL);
}

void queue_push(host *h, run *r) {
    r->state = RUN_QUEUED;
    if (h->qtail)
        h->qtail->next = r;
    else
        h->qhead = r;
    h->qtail = r;
    h->nqueued++;
}

/* The flow a run of flow name runs: the flow itself, or for a poll's own
 * run ("<flow>:poll") the flow whose poll it is. *poll says which. */
static const flow_def *flow_of(const deployment *dep, const char *name,
                               int *poll) {
    const flow_def *f = flow_find(dep->ig, name);
    size_t fl = strlen(name), sl = strlen(FLOW_POLL_SUFFIX);
    *poll = 0;
    if (!f && fl > sl && fl - sl < 256 &&
        !strcmp(name + fl - sl, FLOW_POLL_SUFFIX)) {
        char base[256];
        snprintf(base, sizeof(base), "%.*s", (int)(fl - sl), name);
        f = flow_find(dep->ig, base);
        *poll = f != NULL;
    }
    return f;
}

run *run_new(host *h, const char *id, deployment *dep, const char *flow,
             json_t *trigger) {
    run *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->h = h;
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->dep = deployment_ref(dep);
    r->flow = strdup(flow);
    r->trigger = json_incref(trigger);
    r->fdef = flow_of(dep, flow, &r->poll); /* a poll: the flow's limits */
    r->timeout_ms = r->fdef && r->fdef->timeout_ms ? r->fdef->timeout_ms
                                                   : h->cfg->timeout_ms;
    r->cpu_seconds = r->fdef && r->fdef->cpu_seconds ? r->fdef->cpu_seconds
                                                     : h->cfg->cpu_seconds;
    r->memory_bytes = r->fdef && r->fdef->memory_bytes ? r->fdef->memory_bytes
                                                       : h->cfg->memory_bytes;
    r->output_bytes = r->fdef && r->fdef->output_bytes ? r->fdef->output_bytes
                                                       : h->cfg->max_output;
    r->queued_us = store_now_us();
    return r;
}

/* ---- the queue past limits.queue_in_memory ---- */

typedef struct refill_job {
    host *h;
    int limit;
    json_t *rows; /* spill_take's */
    int taken;
    int rc;
    char err[512];
} refill_job;

static void refill_run(store *st, void *arg) {
    refill_job *j = arg;
    j->rc = st->vt->spill_take
                ? st->vt->spill_take(st, j->limit, &j->rows, &j->taken)
                : FERRY_EUNSUPPORTED;
    if (j->rc)
        snprintf(j->err, sizeof(j->err), "%s",
                 st->vt->spill_take ? st->errmsg
                                    : "the store keeps no spill list");
}

static void refill_done(void *arg, int commit_rc) {
    refill_job *j = arg;
    host *h = j->h;
    h->refilling = 0;
    if (j->rc || commit_rc) {
        /* Nothing was taken: the next dispatch asks again. */
        host_log(h, "error", NULL,
                 "cannot take up queued executions from the store: %s",
                 j->rc ? j->err : storeq_error(h->q, commit_rc));
        json_decref(j->rows);
        free(j);
        return;
    }
    /* Every entry written before this job was counted before this runs
     * (done callbacks run in job order), so fewer than asked means the list
     * is empty. */
    size_t taken = (size_t)j->taken;
    if (j->taken < j->limit || taken >= h->nspilled)
        h->nspilled = 0;
    else
        h->nspilled -= taken;
    size_t i;
    json_t *e;
    json_array_foreach(j->rows, i, e) {
        const char *id = jstr(e, "id");
        deployment *dep = deploy_table_get(h->deps, jstr(e, "instance"));
        int poll;
        if (!dep || !flow_of(dep, jstr(e, "flow"), &poll)) {
            push_end(h, id, "failed", store_now_us(), NULL, 0, FERRY_ECONFIG,
                     dep ? "the flow is no longer deployed"
                         : "the instance is no longer deployed",
                     NULL);
            continue;
        }
        const char *text = jstr(e, "trigger_text");
        run *r = run_new(h, id, dep, jstr(e, "flow"), NULL);
        if (r && text && !(r->trigger_text = strdup(text))) {
            run_free(r);
            r = NULL;
        }
        if (!r) {
            host_log(h, "error", json_pack("{s:s}", "execution", id),
                     "out of memory; the execution stays queued until the "
                     "next start");
            continue;
        }
        /* The tree too for what reads it later: a schedule's "scheduled"
         * (alerts.c), a file poll's "dispose" (poller.c). Webhook and
         * manual runs, the ones that come in floods, keep the text only. */
        const char *type = jstr(r->fdef ? r->fdef->trigger : NULL, "type");
        if (!text)
            r->trigger = json_null();
        else if (r->poll || !type ||
                 (strcmp(type, "webhook") && strcmp(type, "manual")))
            r->trigger = jtext_load(text, strlen(text), JSON_DECODE_ANY, NULL);
        r->queued_us = jint(e, "created_us");
        queue_push(h, r);
    }
    json_decref(j->rows);
    free(j);
    dispatch(h); /* and the queue's gauges */
}

void host_spill_cancelled(host *h) {
    if (h->nspilled)
        h->nspilled--;
    queue_metrics(h);
    metrics_add(h->m, "ferry_executions_finished_total", 1, "status",
                "cancelled", NULL);
}

/* Takes runs from the spill list once the in-memory queue is half empty. */
static void maybe_refill(host *h) {
    size_t cap = h->cfg->queue_in_memory;
    size_t held = h->nqueued + h->mem_pending;
    if (!h->nspilled || h->refilling || h->stopping || held > cap / 2)
        return;
    refill_job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->h = h;
    j->limit = (int)(cap - held < 100000 ? cap - held : 100000);
    h->refilling = 1;
    storeq_push(h->q, refill_run, refill_done, j);
}

typedef struct enqueue_job {
    host *h;
    run *r;
    store_exec e;
    char *trigger_text;
    int rc;
    char err[512];
    host_enqueued_cb done;
    void *ud;
    char *dedupe_key; /* NULL: none */
    int64_t dedupe_window_start_us;
    char first_id[40]; /* the execution that claimed the key first */
    int spill;         /* to the store's spill list, not the memory queue */
} enqueue_job;

static void enqueue_run(store *st, void *arg) {
    enqueue_job *j = arg;
    if (j->dedupe_key) {
        /* In the same transaction as the execution's row. */
        j->rc = st->vt->dedupe_claim
                    ? st->vt->dedupe_claim(st, j->e.instance, j->e.flow,
                                           j->dedupe_key,
                                           j->dedupe_window_start_us, j->e.id,
                                           j->first_id, sizeof(j->first_id))
                    : FERRY_EUNSUPPORTED;
        if (j->rc == FERRY_EEXISTS)
            return;
        if (j->rc) {
            snprintf(j->err, sizeof(j->err), "%s",
                     st->vt->dedupe_claim ? st->errmsg
                                          : "the store keeps no dedupe keys");
            return;
        }
    }
    j->rc = st->vt->exec_begin(st, &j->e);
    if (!j->rc && j->spill && !st->vt->spill_add) {
        j->rc = FERRY_EUNSUPPORTED;
        snprintf(j->err, sizeof(j->err), "the store keeps no spill list");
        return;
    }
    if (!j->rc && j->spill)
        j->rc = st->vt->spill_add(st, j->e.id);
    if (j->rc)
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
}

static void enqueue_done(void *arg, int commit_rc) {
    enqueue_job *j = arg;
    host *h = j->h;
    if (j->spill)
        h->spilling--;
    else
        h->mem_pending--;
    if (!j->rc && commit_rc) {
        j->rc = commit_rc;
        snprintf(j->err, sizeof(j->err), "the store did not commit: %s",
                 storeq_error(h->q, commit_rc));
    }
    if (j->rc == FERRY_EEXISTS && j->dedupe_key) {
        /* A duplicate: nothing queued, the first execution's id (once
         * what read it is committed: it may be in this batch). */
        if (commit_rc)
            snprintf(j->err, sizeof(j->err), "the store did not commit: %s",
                     storeq_error(h->q, commit_rc));
        if (j->done)
            j->done(j->ud, commit_rc ? NULL : j->first_id,
                    commit_rc ? 503 : 200, commit_rc ? j->err : NULL);
        run_free(j->r);
    } else if (j->rc) {
        if (j->done)
            j->done(j->ud, NULL, 503, j->err);
        run_free(j->r);
    } else if (j->spill) {
        /* Durable, and listed to be taken up in its turn: nothing of it is
         * held here meanwhile. A sync webhook finds no run to wait for and
         * is answered 202 at once: it would wait behind a full queue. */
        h->nspilled++;
        if (j->done)
            j->done(j->ud, j->r->id, 202, NULL);
        run_free(j->r);
        queue_metrics(h);
        maybe_refill(h);
    } else {
        /* Queued first, so that the callback finds it (host_find_run). */
        j->r->trigger_text = j->trigger_text; /* for the spawn request */
        j->trigger_text = NULL;
        /* With its text made, the trigger's tree is not needed: the runs
         * queued here are webhooks', the API's and alert flows', and what
         * reads a run's tree later (a schedule's "scheduled" in alerts.c, a
         * file poll's "dispose" in poller.c) reads the runs that
         * scheduler.c and poller.c make. The tree was most of what a
         * queued webhook held (6.8 KiB each: 262 MB for 38,000 queued in a
         * burst). */
        if (j->r->trigger_text) {
            json_decref(j->r->trigger);
            j->r->trigger = NULL;
        }
        queue_push(h, j->r);
        if (j->done)
            j->done(j->ud, j->r->id, 202, NULL);
        dispatch(h);
    }
    free(j->trigger_text);
    free(j->dedupe_key);
    free(j);
}

void host_enqueue(host *h, deployment *dep, const char *flow,
                  const json_t *trigger, host_enqueued_cb done, void *ud) {
    host_enqueue_dedupe(h, dep, flow, trigger, NULL, 0, done, ud);
}

void host_enqueue_dedupe(host *h, deployment *dep, const char *flow,
                         const json_t *trigger, const char *dedupe_key,
                         int64_t window_start_us, host_enqueued_cb done,
                         void *ud) {
    char id[40];
    store_new_id("ex", id, sizeof(id));
    const flow_def *f = flow_find(dep->ig, flow);
    if (f && f->concurrency == FLOW_SINGLETON) {
        run probe = {.dep = dep, .flow = (char *)flow};
        const run *busy = NULL;
        for (size_t i = 0; i < h->nactive && !busy; i++)
            if (same_flow(h->active[i], &probe))
                busy = h->active[i];
        for (run *q = h->qhead; q && !busy; q = q->next)
            if (same_flow(q, &probe))
                busy = q;
        if (busy) {
            char msg[256];
            snprintf(msg, sizeof(msg),
                     "flow '%s' of instance '%s' is singleton and execution "
                     "%s has not finished",
                     flow, dep->instance, busy->id);
            done(ud, NULL, 409, msg);
            return;
        }
    }
    enqueue_job *j = calloc(1, sizeof(*j));
    run *r = j ? run_new(h, id, dep, flow, (json_t *)trigger) : NULL;
    if (!r) {
        free(j);
        done(ud, NULL, 503, "out of memory");
        return;
    }
    j->h = h;
    j->r = r;
    j->done = done;
    j->ud = ud;
    /* Past the in-memory bound, or behind runs that are: the store only.
     * Not a singleton flow's run: the check above must see it, and such a
     * flow has at most one queued. */
    j->spill = !(f && f->concurrency == FLOW_SINGLETON) &&
               (h->nspilled || h->spilling ||
                h->nqueued + h->mem_pending >= h->cfg->queue_in_memory);
    j->trigger_text = jtext_dump(trigger, NULL);
    j->e = (store_exec){.id = r->id,
                        .integration = dep->integration,
                        .instance = dep->instance,
                        .flow = r->flow,
                        .trigger_json = j->trigger_text,
                        .status = "queued",
                        .created_us = r->queued_us};
    if (dedupe_key) {
        j->dedupe_key = strdup(dedupe_key);
        j->dedupe_window_start_us = window_start_us;
        if (!j->dedupe_key) {
            free(j->trigger_text);
            free(j);
            run_free(r);
            done(ud, NULL, 503, "out of memory");
            return;
        }
    }
    if (j->spill)
        h->spilling++;
    else
        h->mem_pending++;
    storeq_push(h->q, enqueue_run, enqueue_done, j);
}

int host_cancel(host *h, const char *id) {
    run *prev = NULL;
    for (run *r = h->qhead; r; prev = r, r = r->next) {
        if (strcmp(r->id, id))
            continue;
        if (prev)
            prev->next = r->next;
        else
            h->qhead = r->next;
        if (h->qtail == r)
            h->qtail = prev;
        h->nqueued--;
        push_end(h, r->id, "cancelled", store_now_us(), NULL, 0,
                 FERRY_ECANCELLED, "cancelled before it started", NULL);
        metrics_add(h->m, "ferry_executions_finished_total", 1, "status",
                    "cancelled", NULL);
        run_free(r);
        queue_metrics(h);
        return 0;
    }
    for (size_t i = 0; i < h->nactive; i++) {
        run *r = h->active[i];
        if (strcmp(r->id, id))
            continue;
        if (r->got_end)
            break; /* its outcome is written: nothing left to cancel */
        if (!r->cancel_requested) {
            r->cancel_requested = 1;
            if (r->pid > 0)
                kill(r->pid, SIGTERM);
            /* The engine stops between steps; a step that does not return
             * is killed after a grace period. */
            if (r->timer_open)
                uv_timer_start(&r->timer, on_deadline, 5000, 0);
        }
        return 0;
    }
    return FERRY_ENOTFOUND;
}

/* ---- start-up: what the last run of the host left ---- */

typedef struct recover_job {
    host *h;
    json_t *running; /* executions left running, with their steps */
    json_t *ops;     /* what to do with each: [{id, op, resume?, ...}] */
    int resumed;
    int64_t queued;
    json_t *waiting; /* [{id, instance, flow, due_us}] */
    int interrupted;
    char err[512];
    int rc;
} recover_job;

static void recover_run(store *st, void *arg) {
    recover_job *j = arg;
    json_t *running = NULL;
    store_filter f = {.status = "running", .limit = 100000};
    j->rc = st->vt->exec_list(st, &f, &running);
    size_t i;
    json_t *e;
    /* Decided on the loop thread (recover_done), which knows the flows. */
    json_array_foreach(running, i, e) {
        json_t *x = NULL;
        if (st->vt->exec_get(st, jstr(e, "id"), &x) == 0)
            json_array_append_new(j->running, x);
    }
    json_decref(running);
    /* Executions parked for a retry: taken up at their due time. */
    json_t *waiting = NULL;
    store_filter w = {.status = "waiting", .limit = 1000000};
    if (st->vt->exec_list(st, &w, &waiting) == 0) {
        json_array_foreach(waiting, i, e) {
            json_t *x = NULL;
            if (st->vt->exec_get(st, jstr(e, "id"), &x) == 0)
                json_array_append_new(j->waiting,
                                      json_pack("{s:s, s:s, s:s, s:I}", "id",
                                                jstr(e, "id"), "instance",
                                                jstr(e, "instance"), "flow",
                                                jstr(e, "flow"), "due_us",
                                                (json_int_t)jint(x, "due_us")));
            json_decref(x);
        }
    }
    json_decref(waiting);
    /* Queued executions are taken up from the spill list, oldest first,
     * as many at a time as the in-memory queue holds. */
    if (!j->rc)
        j->rc = st->vt->spill_all ? st->vt->spill_all(st, &j->queued)
                                  : FERRY_EUNSUPPORTED;
    if (j->rc)
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
}

/* An execution the last host left running: resumed from the step that
 * was running when that step's action is idempotent and the outputs
 * before it were recorded whole; else retried from the start when the
 * flow has a retry policy; else failed as interrupted. */
static json_t *recover_decide(host *h, const json_t *x) {
    const char *id = jstr(x, "id");
    deployment *dep = deploy_table_get(h->deps, jstr(x, "instance"));
    const flow_def *f = dep ? flow_find(dep->ig, jstr(x, "flow")) : NULL;
    json_t *op =
        json_pack("{s:s, s:s, s:s, s:s}", "id", id, "op", "interrupt",
                  "instance", jstr(x, "instance"), "flow", jstr(x, "flow"));
    if (!f || !op)
        return op;
    const json_t *steps = json_object_get(x, "steps");
    json_t *outputs = json_object();
    int64_t maxseq = 0;
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s) {
        if (jint(s, "seq") > maxseq)
            maxseq = jint(s, "seq");
    }
    size_t k = 0;
    int whole = 1;
    for (; k < f->steps.n; k++) {
        const char *name = f->steps.steps[k].name;
        const json_t *done = NULL;
        json_array_foreach(steps, i, s) {
            if (!strcmp(jstr(s, "path") ? jstr(s, "path") : "", name) &&
                jstr(s, "status") && !strcmp(jstr(s, "status"), "succeeded"))
                done = s;
        }
        if (!done)
            break;
        if (json_is_true(json_object_get(done, "output_truncated")))
            whole = 0;
        json_object_set(outputs, name, json_object_get(done, "output"));
    }
    const flow_step *at = k < f->steps.n ? &f->steps.steps[k] : NULL;
    if (at && at->kind == FLOW_STEP_ACTION && at->action &&
        (at->action->flags & FERRY_ACTION_IDEMPOTENT) && whole) {
        json_object_set_new(op, "op", json_string("resume"));
        json_object_set_new(op, "resume",
                            json_pack("{s:s, s:I, s:O, s:{}, s:i}", "step",
                                      at->name, "seq", (json_int_t)maxseq,
                                      "outputs", outputs, "attempts",
                                      "flow_attempt", 1));
        json_object_set_new(op, "step", json_string(at->name));
    } else if (f->retry.max_attempts >= 2 && f->steps.n) {
        json_object_set_new(op, "op", json_string("retry_flow"));
        json_object_set_new(op, "resume",
                            json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "step",
                                      f->steps.steps[0].name, "seq",
                                      (int)maxseq, "outputs", "attempts",
                                      "flow_attempt", 2));
    }
    json_decref(outputs);
    return op;
}

static void recover_apply_run(store *st, void *arg) {
    recover_job *j = arg;
    size_t i;
    json_t *op;
    int64_t now = store_now_us();
    json_array_foreach(j->ops, i, op) {
        const char *what = jstr(op, "op");
        char *rs = json_object_get(op, "resume")
                       ? json_dumps(json_object_get(op, "resume"), JSON_COMPACT)
                       : NULL;
        int waits = rs && strcmp(what, "interrupt");
        store_exec_end end = {
            .id = jstr(op, "id"),
            .status = waits ? "waiting" : "failed",
            .ended_us = now,
            .error_code = waits ? 0 : FERRY_EFAILED,
            .error_message = waits ? NULL
                                   : "interrupted: the host stopped while this "
                                     "execution was running",
            .resume_json = waits ? rs : NULL,
            .due_us = waits ? now : 0,
        };
        if (st->vt->exec_end(st, &end) == 0) {
            if (waits) {
                j->resumed++;
                json_array_append_new(
                    j->waiting,
                    json_pack("{s:s, s:s, s:s, s:I}", "id", jstr(op, "id"),
                              "instance", jstr(op, "instance"), "flow",
                              jstr(op, "flow"), "due_us", (json_int_t)now));
            } else {
                j->interrupted++;
            }
        }
        free(rs);
    }
}

static void recover_finish(void *arg, int commit_rc);

static void recover_done(void *arg, int commit_rc) {
    recover_job *j = arg;
    host *h = j->h;
    h->store_ok = j->rc == 0 && commit_rc == 0;
    size_t i;
    json_t *x;
    json_array_foreach(j->running, i, x) {
        json_t *op = recover_decide(h, x);
        if (op)
            json_array_append_new(j->ops, op);
    }
    storeq_push(h->q, recover_apply_run, recover_finish, j);
}

static void recover_finish(void *arg, int commit_rc) {
    recover_job *j = arg;
    host *h = j->h;
    (void)commit_rc;
    if (j->rc)
        host_log(h, "error", NULL, "store: %s", j->err);
    if (j->resumed)
        host_log(h, "info", json_pack("{s:i}", "count", j->resumed),
                 "executions left running by the last host go on from the "
                 "step that was running (idempotent) or from the start "
                 "(the flow's retry)");
    if (j->interrupted)
        host_log(h, "warn", json_pack("{s:i}", "count", j->interrupted),
                 "executions left running by the last host were marked "
                 "failed (interrupted)");
    size_t i;
    json_t *e;
    if (j->queued > 0) {
        h->nspilled += (size_t)j->queued;
        host_log(h, "info", json_pack("{s:I}", "count", (json_int_t)j->queued),
                 "queued executions taken up again");
        queue_metrics(h);
        maybe_refill(h);
    }
    json_array_foreach(j->waiting, i, e) {
        host_retry_schedule(h, jstr(e, "id"), jstr(e, "instance"),
                            jstr(e, "flow"), jint(e, "due_us"));
    }
    if (json_array_size(j->waiting))
        host_log(h, "info",
                 json_pack("{s:i}", "count", (int)json_array_size(j->waiting)),
                 "executions waiting for a retry taken up");
    json_decref(j->waiting);
    json_decref(j->running);
    json_decref(j->ops);
    free(j);
    host_sched_start(h);
    host_poll_start(h);
    host_alerts_start(h);
    host_retry_start(h);
    for (size_t k = 0; h->reg && k < h->reg->nrefused; k++)
        host_alert_refused(h, h->reg->refused[k].path,
                           h->reg->refused[k].reason);
}

/* ---- components: the host's own view, and reloading ----
 *
 * The host loads the components too, to validate deployments and describe
 * them; it never runs an action. It loads private copies: the dynamic
 * linker returns an already-loaded object for a path it has seen, so a
 * replaced .so would otherwise never be seen again, and a copy also keeps
 * the host safe from a file rewritten in place. Older registries stay
 * loaded while deployments compiled against them may be in use. */

static char *replace_prefix(const char *s, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to);
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, from)); p += fl)
        n++;
    char *out = malloc(strlen(s) + n * (tl > fl ? tl - fl : 0) + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const char *p = s;;) {
        const char *q = strstr(p, from);
        if (!q) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, tl);
        o += tl;
        p = q + fl;
    }
    return out;
}

static void fix_path(char **slot, const char *from, const char *to) {
    if (!*slot)
        return;
    char *n = replace_prefix(*slot, from, to);
    if (n) {
        free(*slot);
        *slot = n;
    }
}

static int copy_file(const char *from, const char *to) {
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n) {
            rc = -1;
            break;
        }
    if (n < 0)
        rc = -1;
    close(in);
    close(out);
    return rc;
}

/* Loads the components of dir through private copies. Returns a new
 * registry (the core component at least), never NULL but on ENOMEM. */
static abi_registry *load_components(host *h, const char *dir) {
    abi_registry *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return NULL;
    char tmp[4096];
    const char *t = getenv("TMPDIR");
    snprintf(tmp, sizeof(tmp), "%s/ferry-components-XXXXXX",
             t && *t ? t : "/tmp");
    char *err = NULL;
    DIR *d = opendir(dir);
    if (!d || !mkdtemp(tmp)) {
        if (d)
            closedir(d);
        else if (errno != ENOENT)
            host_log(h, "error", NULL, "components directory %s: %s", dir,
                     strerror(errno));
        abi_registry_init(reg);
        if (abi_registry_add_builtin(reg, flow_core_component(), &err))
            free(err);
        return reg;
    }
    struct dirent *e;
    char from[8192], to[8192];
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".so") || e->d_name[0] == '.')
            continue;
        snprintf(from, sizeof(from), "%s/%s", dir, e->d_name);
        snprintf(to, sizeof(to), "%s/%s", tmp, e->d_name);
        copy_file(from, to);
    }
    closedir(d);
    if (flow_load_registry(reg, tmp, &err)) {
        free(err);
        abi_registry_init(reg);
        if (abi_registry_add_builtin(reg, flow_core_component(), &err))
            free(err);
    }
    for (size_t i = 0; i < reg->ncomponents; i++)
        fix_path(&reg->components[i].path, tmp, dir);
    for (size_t i = 0; i < reg->nrefused; i++) {
        fix_path(&reg->refused[i].path, tmp, dir);
        fix_path(&reg->refused[i].reason, tmp, dir);
    }
    /* Loaded objects stay mapped after their files are gone. */
    d = opendir(tmp);
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(to, sizeof(to), "%s/%s", tmp, e->d_name);
        unlink(to);
    }
    if (d)
        closedir(d);
    rmdir(tmp);
    return reg;
}

static void set_registry(host *h, abi_registry *reg) {
    if (h->reg) {
        abi_registry **old =
            realloc(h->old_regs, (h->nold_regs + 1) * sizeof(*old));
        if (old) {
            h->old_regs = old;
            h->old_regs[h->nold_regs++] = h->reg;
        }
    }
    h->reg = reg;
}

static void on_components_settled(uv_timer_t *t) {
    host *h = t->data;
    if (h->stopping)
        return;
    abi_registry *reg = load_components(h, h->cfg->components_dir);
    if (!reg)
        return;
    host_log(h, "info",
             json_pack("{s:i, s:i}", "loaded", (int)reg->ncomponents, "refused",
                       (int)reg->nrefused),
             "components changed: reloading (running executions keep their "
             "code)");
    for (size_t i = 0; i < reg->nrefused; i++)
        host_log(h, "warn", NULL, "component refused: %s: %s",
                 reg->refused[i].path, reg->refused[i].reason);
    /* The new registry is the host's view once the new zygote, which runs
     * the same files, is ready: until then executions still go to the old
     * code, and deployments are checked against what will run them. */
    if (h->pending_reg) {
        abi_registry_free(h->pending_reg);
        free(h->pending_reg);
    }
    h->pending_reg = reg;
    zygote_start(h); /* takes over from the current one once ready */
}

static void on_components_changed(uv_fs_event_t *ev, const char *name,
                                  int events, int status) {
    host *h = ev->data;
    (void)events;
    if (status < 0 || h->stopping)
        return;
    if (name) {
        size_t n = strlen(name);
        if (n < 4 || strcmp(name + n - 3, ".so"))
            return;
    }
    /* A copy arrives in several writes: wait until it settles. */
    uv_timer_start(&h->reload_timer, on_components_settled, 300, 0);
}

/* ---- shutdown ---- */

static void on_http_stopped(void *ud) {
    host *h = ud;
    http_server_free(h->http);
    h->http = NULL;
    shutdown_progress(h);
}

static void on_storeq_closed(void *ud) {
    host *h = ud;
    h->q = NULL;
    store_close(h->st);
    h->st = NULL;
    store_close(h->ckpt);
    h->ckpt = NULL;
}

static void on_grace(uv_timer_t *t) {
    host *h = t->data;
    if (h->nactive) {
        /* Past the grace period: what still runs is cancelled. */
        host_log(h, "warn", json_pack("{s:i}", "running", (int)h->nactive),
                 "grace period over: cancelling what still runs");
        for (size_t i = 0; i < h->nactive; i++) {
            run *r = h->active[i];
            r->cancel_requested = 1;
            if (r->pid > 0)
                kill(r->pid, SIGKILL);
        }
    }
}

/* Moves shutdown on as far as it can go; called from every event that may
 * unblock it: the last run finishing, the HTTP server closed, the zygote
 * gone. The order: runs end, then the zygote is told to exit (its control
 * socket closes), then the store thread drains and stops. */
static void shutdown_progress(host *h) {
    if (!h->stopping || h->nactive)
        return;
    if (h->grace.data) {
        uv_close((uv_handle_t *)&h->grace, NULL);
        h->grace.data = NULL;
    }
    /* Closing a zygote's control socket tells it to exit. */
    for (zygote *z = h->zygotes; z; z = z->next)
        zygote_close_socket(z);
    if (h->zygotes || h->http || !h->q || h->q_stopping)
        return;
    h->q_stopping = 1;
    storeq_stop(h->q, on_storeq_closed, h);
}

static void begin_shutdown(host *h, const char *why) {
    if (h->stopping)
        return;
    h->stopping = 1;
    host_log(h, "info",
             json_pack("{s:i, s:i}", "running", (int)h->nactive, "queued",
                       (int)(h->nqueued + h->nspilled)),
             "%s: stopping (queued executions stay queued)", why);
    uv_close((uv_handle_t *)&h->sig_term, NULL);
    uv_close((uv_handle_t *)&h->sig_int, NULL);
    uv_close((uv_handle_t *)&h->sig_hup, NULL);
    uv_close((uv_handle_t *)&h->watch, NULL);
    host_sched_stop(h);
    host_poll_stop(h);
    host_retry_stop(h);
    host_alerts_stop(h);
    uv_close((uv_handle_t *)&h->reload_timer, NULL);
    if (h->http)
        http_server_stop(h->http, on_http_stopped, h);
    uv_timer_init(h->loop, &h->grace);
    h->grace.data = h;
    uv_timer_start(&h->grace, on_grace, h->cfg->shutdown_grace_ms, 0);
    shutdown_progress(h);
}

static void on_signal(uv_signal_t *s, int sig) {
    host *h = s->data;
    if (sig == SIGHUP) {
        /* A fresh table mirrors the directory: an instance whose file was
         * removed is undeployed (its running executions keep theirs). */
        flow_diags d = {0};
        deploy_table *t = deploy_table_new();
        int n =
            t ? deploy_table_load_dir(t, h->cfg->deployments_dir, h->reg, &d)
              : -1;
        if (n >= 0) {
            deploy_table_free(h->deps);
            h->deps = t;
            host_sched_reload(h);
            host_poll_reload(h);
        } else {
            deploy_table_free(t);
        }
        for (size_t i = 0; i < d.n; i++)
            host_log(h, "warn", NULL, "%s: %s: %s", d.items[i].file,
                     d.items[i].path, d.items[i].message);
        flow_diags_free(&d);
        host_log(h, "info", json_pack("{s:i}", "loaded", n),
                 "SIGHUP: deployments reloaded");
        return;
    }
    begin_shutdown(h, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* The store thread's batches that did not commit (storeq_on_failure):
 * logged at the first and then at most every 10 s while they go on, and
 * once when a batch commits again. While the store thread keeps records
 * it could not write, no queued execution starts: it would add its own,
 * in memory, for as long as the store cannot write. */
static void on_store_failure(void *ud, int rc, const char *msg, size_t kept,
                             size_t lost) {
    host *h = ud;
    uint64_t now = uv_now(h->loop);
    if (rc) {
        h->store_kept = kept;
        metrics_add(h->m, "ferry_store_commit_failures_total", 1, NULL);
        if (lost) {
            /* The stop gave them up (storeq_stop): never rate-limited. */
            h->store_lost += lost;
            host_log(h, "error",
                     json_pack("{s:s, s:I}", "error", msg ? msg : "?",
                               "records_lost", (json_int_t)lost),
                     "store: the host stops with records it could not "
                     "write; they are lost, and the executions they belong "
                     "to are recorded as interrupted at the next start");
            return;
        }
        if (h->store_failures++ && now < h->store_fail_told + 10000)
            return;
        h->store_fail_told = now;
        host_log(h, "error",
                 json_pack("{s:s, s:I, s:I}", "error", msg ? msg : "?",
                           "records_kept", (json_int_t)kept, "failures",
                           (json_int_t)h->store_failures),
                 "store: a transaction did not commit; requests that wait "
                 "for the store are refused, workers' records are kept and "
                 "written again");
        return;
    }
    if (!h->store_failures)
        return;
    host_log(h, "info",
             json_pack("{s:I}", "failures", (json_int_t)h->store_failures),
             "store: commits again; the records kept were written");
    h->store_failures = 0;
    h->store_kept = 0;
    dispatch(h);
}

/* ---- serve ---- */

int host_serve(const host_config *cfg) {
    host hs = {.cfg = cfg};
    host *h = &hs;
    uv_loop_t loop;
    char *err = NULL;
    int status = 1;

    signal(SIGPIPE, SIG_IGN);
    /* A write past the file-size limit (ulimit -f, systemd's LimitFSIZE)
     * then fails with EFBIG instead of killing the host: the store's
     * commit fails, and whoever waits for it is told so (a webhook gets
     * 503 and is sent again), as when the disk is full. */
    signal(SIGXFSZ, SIG_IGN);
    uv_loop_init(&loop);
    h->loop = &loop;
    h->m = metrics_new();
    host_metrics_declare(h->m);

    set_registry(h, load_components(h, cfg->components_dir));
    if (!h->reg)
        goto out;
    for (size_t i = 0; i < h->reg->nrefused; i++)
        host_log(h, "warn", NULL, "component refused: %s: %s",
                 h->reg->refused[i].path, h->reg->refused[i].reason);
    h->deps = deploy_table_new();
    flow_diags d = {0};
    int ndeps =
        deploy_table_load_dir(h->deps, cfg->deployments_dir, h->reg, &d);
    for (size_t i = 0; i < d.n; i++)
        host_log(h, "warn", NULL, "%s: %s: %s", d.items[i].file,
                 d.items[i].path, d.items[i].message);
    flow_diags_free(&d);

    h->st = store_open_sqlite(cfg->db, &err);
    if (!h->st) {
        fprintf(stderr, "ferry serve: cannot open the store %s: %s\n", cfg->db,
                err ? err : "unknown error");
        free(err);
        goto out;
    }
    h->ckpt = store_open_sqlite(cfg->db, &err);
    if (!h->ckpt) {
        host_log(h, "warn", NULL,
                 "no checkpoint handle (%s): commits will "
                 "checkpoint by themselves",
                 err ? err : "?");
        free(err);
        err = NULL;
    }
    {
        /* The master key: refused before anything is written with it. */
        char kerr[512];
        int kr =
            secret_key_load(getenv("FERRY_MASTER_KEY"), cfg->master_key_file,
                            &h->key, kerr, sizeof(kerr));
        h->has_key = kr == 1;
        if (kr < 0 || tokens_check_key(h->st, h->has_key ? &h->key : NULL, kerr,
                                       sizeof(kerr))) {
            fprintf(stderr, "ferry serve: %s\n", kerr);
            store_close(h->st);
            store_close(h->ckpt);
            goto out;
        }
        if (h->has_key)
            host_log(h, "info", json_pack("{s:s}", "key", h->key.id),
                     "master key loaded; tokens are stored encrypted");
    }
    h->q = storeq_start(&loop, h->st, h->ckpt, STOREQ_CHECKPOINT_MS, &err);
    if (!h->q) {
        fprintf(stderr, "ferry serve: %s\n", err);
        free(err);
        store_close(h->st);
        store_close(h->ckpt);
        goto out;
    }
    storeq_on_failure(h->q, on_store_failure, h);

    http_config hc = {
        .host = cfg->listen_host,
        .port = cfg->port,
        .tls_cert = cfg->tls_cert,
        .tls_key = cfg->tls_key,
        .api_tokens = (const char *const *)cfg->api_tokens,
        .ntokens = cfg->ntokens,
        /* Idle keep-alive connections hold a graceful stop up to this. */
        .idle_timeout_ms = 5000,
    };
    h->http = http_server_start(&loop, &hc, host_routes, host_nroutes, h, &err);
    if (!h->http) {
        fprintf(stderr, "ferry serve: %s\n", err ? err : "cannot listen");
        free(err);
        h->stopping = 1;
        storeq_stop(h->q, on_storeq_closed, h);
        uv_run(&loop, UV_RUN_DEFAULT);
        goto out;
    }
    int port = http_server_port(h->http);
    if (cfg->port_file) {
        FILE *pf = fopen(cfg->port_file, "w");
        if (pf) {
            fprintf(pf, "%d\n", port);
            fclose(pf);
        }
    }
    host_log(h, "info",
             json_pack("{s:s, s:i, s:i, s:s}", "address", cfg->listen_host,
                       "port", port, "instances", ndeps, "db", cfg->db),
             "listening");

    uv_signal_init(&loop, &h->sig_term);
    uv_signal_init(&loop, &h->sig_int);
    uv_signal_init(&loop, &h->sig_hup);
    h->sig_term.data = h->sig_int.data = h->sig_hup.data = h;
    uv_signal_start(&h->sig_term, on_signal, SIGTERM);
    uv_signal_start(&h->sig_int, on_signal, SIGINT);
    uv_signal_start(&h->sig_hup, on_signal, SIGHUP);

    recover_job *rj = calloc(1, sizeof(*rj));
    rj->h = h;
    rj->waiting = json_array();
    rj->running = json_array();
    rj->ops = json_array();
    storeq_push(h->q, recover_run, recover_done, rj);
    zygote_start(h);
    uv_timer_init(&loop, &h->reload_timer);
    h->reload_timer.data = h;
    uv_fs_event_init(&loop, &h->watch);
    h->watch.data = h;
    if (uv_fs_event_start(&h->watch, on_components_changed, cfg->components_dir,
                          0))
        host_log(h, "warn", NULL,
                 "not watching %s for new components (it may not exist)",
                 cfg->components_dir);

    uv_run(&loop, UV_RUN_DEFAULT);
    status = h->store_lost ? 1 : 0; /* a stop that lost records: not clean */
out:
    host_oauth_free(h);
    memset(&h->key, 0, sizeof(h->key));
    while (h->qhead) {
        run *r = h->qhead;
        h->qhead = r->next;
        run_free(r);
    }
    free(h->active);
    deploy_table_free(h->deps);
    metrics_free(h->m);
    for (size_t i = 0; i < h->nold_regs; i++) {
        abi_registry_free(h->old_regs[i]);
        free(h->old_regs[i]);
    }
    free(h->old_regs);
    if (h->reg)
        abi_registry_free(h->reg);
    free(h->reg);
    if (h->pending_reg)
        abi_registry_free(h->pending_reg);
    free(h->pending_reg);
    uv_run(&loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&loop) == UV_EBUSY)
        host_log(h, "warn", NULL, "loop closed with handles still open");
    return status;
}
