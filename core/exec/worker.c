/*
 * A worker: one forked process, one execution. It rebuilds the definition
 * from the spawn request (the host validated it when it was deployed, so
 * errors here are unexpected but still reported), runs the flow with the
 * engine, and streams the record to the host. It writes nothing durable
 * itself and exits when the flow ends.
 */
#include "exec.h"
#include "flow/flow.h"
#include "flow/flow_poll.h"
#include "secret/secret.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int exec_worker_main(const abi_registry *reg, const flow_integration *ig,
                     json_t *spawn, int sock);

static volatile int worker_cancel;
static int oom_sock = -1;

static void on_sigterm(int sig) {
    (void)sig;
    worker_cancel = 1;
}

/* When jansson cannot allocate, tell the host before anything else goes
 * wrong: the frame is built in advance so that sending it allocates
 * nothing. */
#define OOM_JSON "{\"ev\":\"oom\"}"
static const char oom_frame[] = "\0\0\0\x0c" OOM_JSON;
_Static_assert(sizeof(OOM_JSON) - 1 == 0x0c,
               "the length prefix must match the JSON");
static int oom_sent;

static void *worker_malloc(size_t n) {
    void *p = malloc(n);
    if (!p && !oom_sent && oom_sock >= 0) {
        oom_sent = 1;
        ssize_t ignored = write(oom_sock, oom_frame, sizeof(oom_frame) - 1);
        (void)ignored;
    }
    return p;
}

static void send_failure(int sock, const char *message) {
    json_t *m =
        json_pack("{s:s, s:s, s:I, s:i, s:s}", "ev", "end", "status", "failed",
                  "ended_us", (json_int_t)store_now_us(), "error_code",
                  FERRY_ECONFIG, "error_message", message);
    frame_send(sock, m, -1);
    json_decref(m);
}

/* ---- secrets and tokens ---- */

/* Whether a connection field holds a secret, by its name: password,
 * passphrase, secret, token, key, credential (not a *_url, nor a name
 * with host_key, public or fingerprint in it). */
static int secret_field(const char *name) {
    static const char *const words[] = {
        "password", "passphrase", "secret", "token", "key", "credential", NULL};
    /* what names a public value: a server's host key fingerprint
     * (host_key_sha256), a public key */
    static const char *const open[] = {"host_key", "public", "fingerprint",
                                       NULL};
    size_t len = strlen(name);
    if (len > 4 && !strcmp(name + len - 4, "_url"))
        return 0;
    for (int i = 0; open[i]; i++)
        if (strstr(name, open[i]))
            return 0;
    for (int i = 0; words[i]; i++)
        if (strstr(name, words[i]))
            return 1;
    return 0;
}

/* Whether the connection type declares the field as secret: its
 * description says "(secret)" or "keep it secret". */
static int declared_secret(const abi_registry *reg, const char *type,
                           const char *field) {
    const ferry_connection_type *ct =
        type ? abi_find_connection_type(reg, type) : NULL;
    for (const ferry_input *f = ct ? ct->fields : NULL; f && f->name; f++)
        if (!strcmp(f->name, field))
            return f->description &&
                   (strcasestr(f->description, "(secret)") ||
                    strcasestr(f->description, "keep it secret"));
    return 0;
}

void exec_instance_secrets(const abi_registry *reg, const flow_integration *ig,
                           const flow_instance *in,
                           void (*add)(void *ud, const char *value), void *ud) {
    const char *k, *fk;
    json_t *v, *fv;
    json_object_foreach(in->connections, k, v) {
        const char *type = json_string_value(json_object_get(v, "type"));
        json_object_foreach(json_object_get(v, "fields"), fk, fv) {
            if (json_is_string(fv) &&
                (secret_field(fk) || declared_secret(reg, type, fk)))
                add(ud, json_string_value(fv));
        }
    }
    json_object_foreach(ig->config_decl, k, v) {
        const json_t *val = json_object_get(in->config, k);
        if (json_is_true(json_object_get(v, "secret")) && json_is_string(val))
            add(ud, json_string_value(val));
    }
}

static void add_to_stream(void *ud, const char *value) {
    exec_stream_add_secret(ud, value);
}

/* The fingerprint of the last token handed out, per connection: a 401
 * names it, so that the host refreshes only if it is still current. */
static json_t *last_tokens;

/* flow_exec_opts.token: asks the host, which owns tokens. */
static int worker_token(void *ud, const char *instance, const char *connection,
                        const json_t *conn, int force, char **access,
                        char **err) {
    store *st = ud;
    (void)instance;
    (void)conn;
    *access = NULL;
    *err = NULL;
    json_t *req = json_pack("{s:s, s:s, s:b}", "ev", "token", "connection",
                            connection, "force", force);
    const char *fp =
        json_string_value(json_object_get(last_tokens, connection));
    if (req && force && fp)
        json_object_set_new(req, "refused_fp", json_string(fp));
    json_t *a = NULL;
    int rc = exec_stream_ask(st, req, &a);
    if (rc) {
        *err = strdup(st->errmsg);
        return rc;
    }
    const char *tok = json_string_value(json_object_get(a, "access_token"));
    if (!tok) {
        const char *why = json_string_value(json_object_get(a, "denied"));
        *err = strdup(why ? why : "the host gave no token");
        rc = json_is_true(json_object_get(a, "reauth"))      ? FERRY_EAUTH
             : json_is_true(json_object_get(a, "retryable")) ? FERRY_EUNAVAIL
                                                             : FERRY_ECONFIG;
        json_decref(a);
        return rc;
    }
    exec_stream_add_secret(st, tok);
    char buf[17];
    secret_fingerprint(tok, buf);
    if (!last_tokens)
        last_tokens = json_object();
    json_object_set_new(last_tokens, connection, json_string(buf));
    *access = strdup(tok);
    json_decref(a);
    return *access ? 0 : FERRY_ENOMEM;
}

/* A poll run: the trigger payload is {"type": "poll_run", "source",
 * "options", "cursor"}. After the execution, a successful poll's whole
 * output goes to the host in a frame of its own, {"ev": "poll_result",
 * "output": {"items", "cursor"}} (the end frame's output is only the
 * recorded, possibly truncated, text). */
static int run_poll(const abi_registry *reg, const flow_integration *ig,
                    const flow_instance *in, const flow_def *f, json_t *trigger,
                    const flow_exec_opts *o, flow_result *res, int sock) {
    const char *src = json_string_value(json_object_get(f->trigger, "source"));
    const ferry_trigger *t = src ? abi_find_trigger(reg, src, NULL) : NULL;
    char err[512] = "";
    json_t *input = NULL;
    if (!t)
        snprintf(err, sizeof(err),
                 "no loaded component has the poll trigger "
                 "'%s'",
                 src ? src : "?");
    else
        input = flow_poll_input(t, json_object_get(trigger, "options"),
                                json_object_get(trigger, "cursor"), err,
                                sizeof(err));
    if (!input) {
        memset(res, 0, sizeof(*res));
        send_failure(sock, err);
        return 2;
    }
    /* A file-listing trigger: what to do with files whose runs ended. */
    json_t *dispose = json_object_get(trigger, "dispose");
    if (json_is_array(dispose))
        json_object_set(input, "dispose", dispose);
    int rc = flow_poll(ig, in, f, reg, input, trigger, o, res);
    json_decref(input);
    if (rc)
        return 3;
    if (!strcmp(res->status, "succeeded") && res->output) {
        json_t *m =
            json_pack("{s:s, s:O}", "ev", "poll_result", "output", res->output);
        if (!m || frame_send(sock, m, -1))
            rc = 3;
        json_decref(m);
    }
    return rc;
}

/* ig: compiled by the zygote (NULL: compile here, to report why it does
 * not compile). */
int exec_worker_main(const abi_registry *reg, const flow_integration *ig,
                     json_t *spawn, int sock) {
    oom_sock = sock;
    json_set_alloc_funcs(worker_malloc, free);
    struct sigaction sa = {.sa_handler = on_sigterm};
    sigaction(SIGTERM, &sa, NULL);

    const char *id = json_string_value(json_object_get(spawn, "exec"));
    const char *flow = json_string_value(json_object_get(spawn, "flow"));
    json_t *trigger = json_object_get(spawn, "trigger");
    flow_diags d = {0};
    flow_integration *own = NULL;
    if (!ig)
        ig = own = flow_integration_from_json(
            json_object_get(spawn, "integration"),
            json_string_value(json_object_get(spawn, "integration_file")), reg,
            &d);
    flow_instance *in = NULL;
    if (ig)
        in = flow_instance_from_json(
            json_object_get(spawn, "instance"),
            json_string_value(json_object_get(spawn, "instance_file")), ig, reg,
            &d);
    const flow_def *f = ig && flow ? flow_find(ig, flow) : NULL;
    int status = 0;
    if (d.n || !f) {
        char msg[1024];
        if (d.n)
            snprintf(msg, sizeof(msg),
                     "definition rejected in the worker: %s: %s",
                     d.items[0].path, d.items[0].message);
        else
            snprintf(msg, sizeof(msg), "no flow '%s'", flow ? flow : "?");
        send_failure(sock, msg);
        status = 2;
    } else {
        store *st = exec_stream_store(sock);
        if (st)
            exec_instance_secrets(reg, ig, in, add_to_stream, st);
        flow_exec_opts o = {
            .st = st,
            .token = worker_token,
            .ud = st,
            .can_park = 1,
            .resume = json_object_get(spawn, "resume"),
            .execution_id = id,
            .max_recorded = (size_t)json_integer_value(
                json_object_get(spawn, "max_recorded")),
            .max_output = (size_t)json_integer_value(json_object_get(
                json_object_get(spawn, "limits"), "output_bytes")),
            .cancel = &worker_cancel,
        };
        flow_result res;
        const char *mode = json_string_value(json_object_get(spawn, "mode"));
        if (mode && !strcmp(mode, "poll")) {
            status = run_poll(reg, ig, in, f, trigger, &o, &res, sock);
        } else if (flow_execute(ig, in, f, trigger, &o, &res)) {
            status = 3;
        }
        flow_result_clear(&res);
        store_close(st);
    }
    flow_instance_free(in);
    flow_integration_free(own);
    flow_diags_free(&d);
    close(sock);
    return status;
}
