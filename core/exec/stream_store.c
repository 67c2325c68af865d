/*
 * The worker's store: every record becomes a frame to the host, which owns
 * the real store. Writes are fire-and-forget (the socket keeps their
 * order); state reads and writes wait for the host's answer so that a
 * component sees its own writes.
 */
#include "exec.h"
#include "jtext/jtext.h"

#include "secret/secret.h"

#include <ferry/ferry.h>

#include <stdlib.h>
#include <string.h>

typedef struct stream_store {
    store base;
    int sock;
    secret_set secrets; /* known secret values, kept out of every frame */
} stream_store;

/* Sends msg (stolen) with every known secret replaced by "[redacted]".
 * Redaction works on the frame's text: when no secret occurs in it, that
 * text is sent as it is; when one did, the redacted text is checked to
 * still be JSON (a secret could span its syntax) and sent. */
static int send_msg(store *s, json_t *msg) {
    stream_store *ss = (stream_store *)s;
    int rc;
    if (!msg) {
        rc = FERRY_ENOMEM;
    } else if (!ss->secrets.n) {
        rc = frame_send(ss->sock, msg, -1);
    } else {
        size_t n = 0;
        char *text = jtext_dump(msg, &n);
        int oom = 0;
        char *clean = text ? secret_redact(&ss->secrets, text, &oom) : NULL;
        if (!text || oom) {
            rc = FERRY_ENOMEM; /* nothing is sent rather than a secret */
        } else if (!clean) {
            rc = frame_send_text(ss->sock, text, n, -1);
        } else {
            size_t cn = strlen(clean);
            json_t *check = jtext_load(clean, cn, 0, NULL);
            rc = check ? frame_send_text(ss->sock, clean, cn, -1)
                       : FERRY_EINTERNAL;
            json_decref(check);
        }
        free(text);
        free(clean);
    }
    json_decref(msg);
    if (rc == FERRY_ENOMEM)
        snprintf(s->errmsg, sizeof(s->errmsg), "out of memory");
    else if (rc == FERRY_EINTERNAL)
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "a record was not JSON once its secrets were redacted");
    else if (rc)
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "cannot send the record to the host: %s", ferry_strerror(rc));
    return rc;
}

static json_t *text_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

static void ss_close(store *s) {
    secret_set_clear(&((stream_store *)s)->secrets);
    free(s);
}

static int ss_exec_begin(store *s, const store_exec *e) {
    return send_msg(s, json_pack("{s:s, s:I}", "ev", "begin", "started_us",
                                 (json_int_t)e->started_us));
}

static int ss_exec_end(store *s, const store_exec_end *e) {
    json_t *m =
        json_pack("{s:s, s:s, s:I, s:o, s:I, s:i, s:o, s:o}", "ev", "end",
                  "status", e->status, "ended_us", (json_int_t)e->ended_us,
                  "output_json", text_or_null(e->output_json), "output_size",
                  (json_int_t)e->output_size, "error_code", e->error_code,
                  "error_message", text_or_null(e->error_message), "error_step",
                  text_or_null(e->error_step));
    if (m && e->resume_json) {
        json_object_set_new(m, "resume_json", json_string(e->resume_json));
        json_object_set_new(m, "due_us", json_integer(e->due_us));
    }
    return send_msg(s, m);
}

static int ss_dead_letter_put(store *s, const store_dead_letter *d) {
    return send_msg(
        s,
        json_pack("{s:s, s:s, s:o, s:o, s:o, s:i, s:o, s:i, s:o}", "ev",
                  "dead_letter", "id", d->id, "trigger_json",
                  text_or_null(d->trigger_json), "step", text_or_null(d->step),
                  "input_json", text_or_null(d->input_json), "error_code",
                  d->error_code, "error_message",
                  text_or_null(d->error_message), "attempts", d->attempts,
                  "resume_json", text_or_null(d->resume_json)));
}

static int ss_step_begin(store *s, const char *execution_id, int seq,
                         const char *path, int64_t started_us) {
    (void)execution_id;
    return send_msg(s, json_pack("{s:s, s:i, s:s, s:I}", "ev", "step_start",
                                 "seq", seq, "path", path, "started_us",
                                 (json_int_t)started_us));
}

static int ss_step_record(store *s, const store_step *st) {
    json_t *m = json_pack(
        "{s:s, s:i, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:o, s:I, s:o, s:I, "
        "s:i, s:o, s:b}",
        "ev", "step", "seq", st->seq, "path", text_or_null(st->path), "name",
        text_or_null(st->name), "kind", text_or_null(st->kind), "action",
        text_or_null(st->action), "status", text_or_null(st->status),
        "started_us", (json_int_t)st->started_us, "duration_us",
        (json_int_t)st->duration_us, "input_json", text_or_null(st->input_json),
        "input_size", (json_int_t)st->input_size, "output_json",
        text_or_null(st->output_json), "output_size",
        (json_int_t)st->output_size, "error_code", st->error_code,
        "error_message", text_or_null(st->error_message), "retryable",
        st->retryable);
    return send_msg(s, m);
}

static int ss_log_append(store *s, const store_log *l) {
    return send_msg(s, json_pack("{s:s, s:i, s:o, s:I, s:i, s:o, s:o}", "ev",
                                 "log", "step_seq", l->step_seq, "step_path",
                                 text_or_null(l->step_path), "ts_us",
                                 (json_int_t)l->ts_us, "level", l->level,
                                 "message", text_or_null(l->message),
                                 "fields_json", text_or_null(l->fields_json)));
}

/* Sends a request and waits for the host's answer. */
static int ask(store *s, json_t *req, json_t **answer);

int exec_stream_ask(store *s, json_t *req, json_t **answer) {
    return ask(s, req, answer);
}

int exec_stream_add_secret(store *s, const char *value) {
    stream_store *ss = (stream_store *)s;
    if (!value)
        return 0;
    /* As it is, and as it reads inside JSON text once and twice (a step's
     * recorded input is JSON text inside the frame's JSON). */
    json_t *v = json_string(value);
    int rc = secret_set_add(&ss->secrets, value);
    for (int level = 0; v && level < 2 && rc == 0; level++) {
        char *t = json_dumps(v, JSON_ENCODE_ANY);
        if (!t)
            break;
        t[strlen(t) - 1] = 0; /* without the quotes */
        rc = secret_set_add(&ss->secrets, t + 1);
        json_decref(v);
        v = json_string(t + 1);
        free(t);
    }
    json_decref(v);
    return rc;
}

static int ask(store *s, json_t *req, json_t **answer) {
    stream_store *ss = (stream_store *)s;
    int rc = send_msg(s, req);
    if (rc)
        return rc;
    rc = frame_recv(ss->sock, answer, NULL);
    if (rc) {
        snprintf(s->errmsg, sizeof(s->errmsg), "no answer from the host: %s",
                 rc == 1 ? "it closed the connection" : ferry_strerror(rc));
        return rc == 1 ? FERRY_EUNAVAIL : rc;
    }
    const char *err = json_string_value(json_object_get(*answer, "error"));
    if (err) {
        snprintf(s->errmsg, sizeof(s->errmsg), "%s", err);
        json_decref(*answer);
        *answer = NULL;
        return FERRY_EIO;
    }
    return 0;
}

static int ss_state_get(store *s, const char *instance, const char *key,
                        json_t **out) {
    (void)instance; /* the host knows whose execution this is */
    json_t *a = NULL;
    *out = NULL;
    int rc = ask(s, json_pack("{s:s, s:s}", "ev", "state_get", "key", key), &a);
    if (rc)
        return rc;
    json_t *v = json_object_get(a, "value");
    if (v && !json_is_null(v))
        *out = json_incref(v);
    json_decref(a);
    return 0;
}

static int ss_state_set(store *s, const char *instance, const char *key,
                        const json_t *value) {
    (void)instance;
    json_t *a = NULL;
    int rc = ask(s,
                 json_pack("{s:s, s:s, s:O?}", "ev", "state_set", "key", key,
                           "value", (json_t *)value),
                 &a);
    json_decref(a);
    return rc;
}

static int ss_unsupported_list(store *s, const store_filter *f, json_t **out) {
    (void)f;
    *out = NULL;
    snprintf(s->errmsg, sizeof(s->errmsg), "not available in a worker");
    return FERRY_EUNSUPPORTED;
}

static int ss_unsupported_get(store *s, const char *id, json_t **out) {
    (void)id;
    *out = NULL;
    snprintf(s->errmsg, sizeof(s->errmsg), "not available in a worker");
    return FERRY_EUNSUPPORTED;
}

static const store_vtable stream_vtable = {
    .close = ss_close,
    .exec_begin = ss_exec_begin,
    .exec_end = ss_exec_end,
    .step_record = ss_step_record,
    .log_append = ss_log_append,
    .state_get = ss_state_get,
    .state_set = ss_state_set,
    .exec_list = ss_unsupported_list,
    .exec_get = ss_unsupported_get,
    .step_begin = ss_step_begin,
    .dead_letter_put = ss_dead_letter_put,
};

store *exec_stream_store(int sock) {
    stream_store *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return NULL;
    ss->base.vt = &stream_vtable;
    ss->sock = sock;
    return &ss->base;
}
