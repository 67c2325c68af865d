/*
 * The HTTP API under /api/v1, the health probes and /metrics. Handlers run
 * on the loop thread; anything that reads or writes the store is a storeq
 * job and answers from its done callback.
 */
#include "host_internal.h"
#include "jtext/jtext.h"
#include "sched/sched.h"

#include <ferry/ferry.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

void host_metrics_declare(metrics *m) {
    static const double step_buckets[] = {0.0005, 0.001, 0.005, 0.01, 0.05,
                                          0.1,    0.5,   1,     5,    30};
    metrics_declare(m, "ferry_executions_started_total", "counter",
                    "Executions handed to a worker.", NULL, 0);
    metrics_declare(m, "ferry_executions_finished_total", "counter",
                    "Executions finished, by status.", NULL, 0);
    metrics_declare(m, "ferry_step_duration_seconds", "histogram",
                    "Duration of steps, by action.", step_buckets,
                    sizeof(step_buckets) / sizeof(step_buckets[0]));
    metrics_declare(m, "ferry_queue_depth", "gauge",
                    "Executions queued and not yet running.", NULL, 0);
    metrics_declare(m, "ferry_queue_spilled", "gauge",
                    "Queued executions waiting in the store's spill list "
                    "(past limits.queue_in_memory).",
                    NULL, 0);
    metrics_declare(m, "ferry_workers_running", "gauge",
                    "Worker processes running an execution.", NULL, 0);
    metrics_declare(m, "ferry_worker_crashes_total", "counter",
                    "Workers that died by a signal, by signal.", NULL, 0);
    metrics_declare(m, "ferry_components_loaded", "gauge",
                    "Components loaded by the zygote.", NULL, 0);
    metrics_declare(m, "ferry_instances_deployed", "gauge",
                    "Instances deployed on this host.", NULL, 0);
    metrics_declare(m, "ferry_webhook_rejected_total", "counter",
                    "Webhook requests refused by verification, by reason.",
                    NULL, 0);
    metrics_declare(m, "ferry_oauth_token_requests_total", "counter",
                    "Token requests to OAuth 2.0 token endpoints, by grant and "
                    "result (ok, error, reauth).",
                    NULL, 0);
    metrics_declare(m, "ferry_connections_needing_reauth", "gauge",
                    "OAuth 2.0 connections whose refresh was refused: they "
                    "need a person to authorise them again.",
                    NULL, 0);
    metrics_declare(m, "ferry_pruned_total", "counter",
                    "Executions and dead letters deleted by retention.", NULL,
                    0);
    metrics_declare(m, "ferry_alerts_sent_total", "counter",
                    "Alerts delivered to Slack or a webhook.", NULL, 0);
    metrics_declare(m, "ferry_store_commit_failures_total", "counter",
                    "Store transactions that did not commit (a full disk, "
                    "an I/O error): what waited for them was refused, the "
                    "workers' records in them were kept to write again.",
                    NULL, 0);
    metrics_declare(m, "ferry_poll_items_total", "counter",
                    "New items polls took (each claimed with its execution), "
                    "by source.",
                    NULL, 0);
}

/* ---- probes and metrics ---- */

static void h_healthz(void *ud, http_req *r) {
    (void)ud;
    http_respond_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_readyz(void *ud, http_req *r) {
    host *h = ud;
    int zready = h->zcur && h->zcur->ready;
    /* not while the store thread keeps records it could not write (it
     * tries them again every 2 s at most, so this ends by itself once
     * the store writes again) */
    int store_ok = h->store_ok && !h->store_kept;
    int ready = zready && store_ok && !h->stopping;
    http_respond_json(r, ready ? 200 : 503,
                      json_pack("{s:s, s:b, s:b, s:b}", "status",
                                ready ? "ready" : "not ready", "zygote", zready,
                                "store", store_ok, "stopping", h->stopping));
}

static void h_metrics(void *ud, http_req *r) {
    host *h = ud;
    size_t len = 0;
    metrics_set(h->m, "ferry_instances_deployed",
                (double)deploy_table_count(h->deps), NULL);
    char *text = metrics_render(h->m, &len);
    if (!text) {
        http_respond_error(r, 500, "out of memory");
        return;
    }
    http_respond_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", text,
                      len);
    free(text);
}

/* ---- components ---- */

static void h_components(void *ud, http_req *r) {
    host *h = ud;
    json_t *loaded = json_array(), *refused = json_array();
    for (size_t i = 0; i < h->reg->ncomponents; i++)
        json_array_append_new(loaded,
                              abi_describe_json(&h->reg->components[i]));
    for (size_t i = 0; i < h->reg->nrefused; i++)
        json_array_append_new(
            refused, json_pack("{s:s, s:s}", "path", h->reg->refused[i].path,
                               "reason", h->reg->refused[i].reason));
    http_respond_json(
        r, 200,
        json_pack("{s:o, s:o}", "components", loaded, "refused", refused));
}

/* ---- instances ---- */

static void h_instances_list(void *ud, http_req *r) {
    host *h = ud;
    http_respond_json(r, 200, deploy_table_list(h->deps));
}

static void h_instance_get(void *ud, http_req *r) {
    host *h = ud;
    const char *name = http_req_param(r, "instance");
    deployment *dp = name ? deploy_table_get(h->deps, name) : NULL;
    if (!dp) {
        http_respond_error(r, 404, "no instance '%s'", name ? name : "");
        return;
    }
    json_t *o = deployment_summary(dp);
    /* Config values declared secret are never shown. */
    json_t *cfg = json_deep_copy(dp->in->config);
    const char *ck;
    json_t *cv;
    json_object_foreach(dp->ig->config_decl, ck, cv) {
        if (json_is_true(json_object_get(cv, "secret")) &&
            json_object_get(cfg, ck))
            json_object_set_new(cfg, ck, json_string("[redacted]"));
    }
    json_object_set_new(o, "config", cfg);
    /* Connections: names and types, never the credentials. */
    json_t *conns = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(dp->in->connections, k, v) {
        json_object_set_new(
            conns, k, json_pack("{s:O}", "type", json_object_get(v, "type")));
    }
    json_object_set_new(o, "connections", conns);
    http_respond_json(r, 200, o);
}

static json_t *diags_json(const flow_diags *d) {
    json_t *a = json_array();
    for (size_t i = 0; i < d->n; i++)
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:s}", "file", d->items[i].file, "path",
                         d->items[i].path, "message", d->items[i].message));
    return a;
}

static void h_instance_deploy(void *ud, http_req *r) {
    host *h = ud;
    size_t len;
    const void *body = http_req_body(r, &len);
    json_error_t e;
    json_t *doc =
        body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &e) : NULL;
    json_t *ig = json_object_get(doc, "integration");
    json_t *in = json_object_get(doc, "instance");
    if (body && !doc) {
        http_respond_error(r, 400, "invalid JSON at line %d column %d: %s",
                           e.line, e.column, e.text);
        return;
    }
    if (!json_is_object(ig) || !json_is_object(in)) {
        http_respond_error(r, 400,
                           "expected a JSON object {\"integration\": {...}, "
                           "\"instance\": {...}}");
        json_decref(doc);
        return;
    }
    flow_diags d = {0};
    /* Another instance of an unchanged integration shares its compiled
     * form rather than compiling its own. */
    deployment *dp = deployment_build_in(h->deps, ig, in, "integration",
                                         "instance", h->reg, &d);
    if (!dp) {
        json_t *err = json_pack("{s:{s:i, s:s, s:o}}", "error", "status", 400,
                                "message", "the definition is not valid",
                                "diagnostics", diags_json(&d));
        http_respond_json(r, 400, err);
        flow_diags_free(&d);
        json_decref(doc);
        return;
    }
    /* Every instance of an integration shares its file: refuse a change
     * that would leave another instance invalid at the next load. */
    if (deploy_check_dependents(h->cfg->deployments_dir, ig, dp->instance,
                                h->reg, &d) > 0) {
        json_t *e = json_pack(
            "{s:{s:i, s:s, s:o}}", "error", "status", 409, "message",
            "this integration would no longer be valid for other deployed "
            "instances; change them first",
            "diagnostics", diags_json(&d));
        http_respond_json(r, 409, e);
        flow_diags_free(&d);
        deployment_unref(dp);
        json_decref(doc);
        return;
    }
    flow_diags_free(&d);
    char *err = NULL;
    if (deploy_write(h->cfg->deployments_dir, ig, in, &err)) {
        http_respond_error(r, 500, "cannot write the deployment: %s",
                           err ? err : "unknown error");
        free(err);
        deployment_unref(dp);
        json_decref(doc);
        return;
    }
    int existed = deploy_table_get(h->deps, dp->instance) != NULL;
    json_t *summary = deployment_summary(dp);
    host_log(h, "info",
             json_pack("{s:s, s:s}", "instance", dp->instance, "integration",
                       dp->integration),
             existed ? "instance redeployed" : "instance deployed");
    deploy_table_put(h->deps, dp);
    host_sched_reload_instance(h, dp->instance);
    host_poll_reload_instance(h, dp->instance);
    http_respond_json(r, existed ? 200 : 201, summary);
    json_decref(doc);
}

/* ---- starting an execution ---- */

static void on_enqueued(void *ud, const char *id, int status, const char *err) {
    http_req *r = ud;
    if (!id)
        http_respond_error(r, status, "%s", err ? err : "unknown error");
    else
        http_respond_json(
            r, 202, json_pack("{s:s, s:s}", "id", id, "status", "queued"));
}

static void h_execution_start(void *ud, http_req *r) {
    host *h = ud;
    const char *name = http_req_param(r, "instance");
    const char *flow = http_req_param(r, "flow");
    deployment *dp = name ? deploy_table_get(h->deps, name) : NULL;
    if (!dp) {
        http_respond_error(r, 404, "no instance '%s'", name ? name : "");
        return;
    }
    if (!flow || !flow_find(dp->ig, flow)) {
        http_respond_error(r, 404, "instance '%s' has no flow '%s'", name,
                           flow ? flow : "");
        return;
    }
    if (h->stopping) {
        http_respond_error(r, 503, "the host is shutting down");
        return;
    }
    size_t len;
    const void *body = http_req_body(r, &len);
    json_t *input = NULL;
    if (body && len) {
        json_error_t e;
        input = jtext_load(body, len, JSON_DECODE_ANY, &e);
        if (!input) {
            http_respond_error(r, 400, "the body is not JSON: %s (at %d)",
                               e.text, e.position);
            return;
        }
    }
    char now[40];
    store_format_time(store_now_us(), now, sizeof(now));
    json_t *trigger = json_pack("{s:s, s:o, s:s}", "type", "manual", "body",
                                input ? input : json_null(), "time", now);
    host_enqueue(h, dp, flow, trigger, on_enqueued, r);
    json_decref(trigger);
}

/* ---- reading executions ---- */

typedef struct read_job {
    http_req *r;
    store_filter f;
    char *instance, *flow, *status, *id;
    json_t *out;
    int rc;
    char err[512];
    int cancel;  /* DELETE: what to answer for an execution not active */
    int spilled; /* DELETE: it was taken off the store's spill list */
    host *h;
} read_job;

static void read_job_free(read_job *j) {
    free(j->instance);
    free(j->flow);
    free(j->status);
    free(j->id);
    json_decref(j->out);
    free(j);
}

/* A job answering r; NULL after answering 500 itself. */
static read_job *read_job_new(http_req *r, const char *id) {
    read_job *j = calloc(1, sizeof(*j));
    if (j && id && !(j->id = strdup(id))) {
        free(j);
        j = NULL;
    }
    if (!j) {
        http_respond_error(r, 500, "out of memory");
        return NULL;
    }
    j->r = r;
    return j;
}

static void list_run(store *st, void *arg) {
    read_job *j = arg;
    j->rc = st->vt->exec_list(st, &j->f, &j->out);
    if (j->rc)
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
}

static void get_run(store *st, void *arg) {
    read_job *j = arg;
    j->rc = st->vt->exec_get(st, j->id, &j->out);
    if (j->rc)
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
}

static void read_done(void *arg, int commit_rc) {
    read_job *j = arg;
    (void)commit_rc;
    if (j->rc == FERRY_ENOTFOUND) {
        http_respond_error(j->r, 404, "no execution '%s'", j->id ? j->id : "");
    } else if (j->rc) {
        http_respond_error(j->r, 500, "store: %s", j->err);
    } else if (j->cancel) {
        http_respond_error(
            j->r, 409, "execution '%s' is already %s", j->id,
            json_string_value(json_object_get(j->out, "status")));
    } else {
        http_respond_json(j->r, 200, json_incref(j->out));
    }
    read_job_free(j);
}

/* Cancelling an execution that is not active here: one waiting for a
 * retry ends "cancelled" (the retry timer then finds it no longer
 * waiting), and so does a queued one waiting in the store's spill list
 * (taken off it in the same transaction); another is unknown (404) or
 * already ended (409). */
static void cancel_run(store *st, void *arg) {
    read_job *j = arg;
    get_run(st, arg);
    const char *status = json_string_value(json_object_get(j->out, "status"));
    if (j->rc || !status)
        return;
    if (!strcmp(status, "queued")) {
        int rc = st->vt->spill_remove
                     ? st->vt->spill_remove(st, j->id, &j->spilled)
                     : 0;
        if (rc) {
            j->rc = rc;
            snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
            return;
        }
        /* Not listed: the host took it up since (cancel_done). */
        if (!j->spilled)
            return;
    } else if (strcmp(status, "waiting")) {
        return;
    }
    store_exec_end e = {.id = j->id,
                        .status = "cancelled",
                        .ended_us = store_now_us(),
                        .error_code = FERRY_ECANCELLED,
                        .error_message =
                            j->spilled ? "cancelled before it started"
                                       : "cancelled while waiting for a retry"};
    j->rc = st->vt->exec_end(st, &e);
    if (j->rc)
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
    else
        j->cancel = 2;
}

static void cancel_done(void *arg, int commit_rc) {
    read_job *j = arg;
    if (j->spilled && !j->rc && !commit_rc)
        host_spill_cancelled(j->h);
    const char *status = json_string_value(json_object_get(j->out, "status"));
    if (j->cancel != 2 && !j->rc && status && !strcmp(status, "queued") &&
        host_cancel(j->h, j->id) == 0) {
        /* Taken up from the spill list between the two looks. */
        http_respond_json(
            j->r, 202,
            json_pack("{s:s, s:s}", "id", j->id, "status", "cancelling"));
        read_job_free(j);
        return;
    }
    if (j->cancel == 2 && !j->rc && !commit_rc) {
        http_respond_json(
            j->r, 200,
            json_pack("{s:s, s:s}", "id", j->id, "status", "cancelled"));
        read_job_free(j);
        return;
    }
    read_done(arg, commit_rc);
}

/* An RFC 3339 time (sched_parse_time_us) or an integer of milliseconds
 * since the epoch. */
static int parse_time_us(const char *s, int64_t *out) {
    char *end;
    long long ms = strtoll(s, &end, 10);
    if (*s && !*end) {
        *out = (int64_t)ms * 1000;
        return 0;
    }
    return sched_parse_time_us(s, out);
}

static void h_executions_list(void *ud, http_req *r) {
    host *h = ud;
    read_job *j = read_job_new(r, NULL);
    if (!j)
        return;
    const char *v;
    if ((v = http_req_query(r, "instance")))
        j->f.instance = j->instance = strdup(v);
    if ((v = http_req_query(r, "flow")))
        j->f.flow = j->flow = strdup(v);
    if ((v = http_req_query(r, "status")))
        j->f.status = j->status = strdup(v);
    if ((v = http_req_query(r, "limit"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || n < 1 || n > 10000) {
            http_respond_error(r, 400,
                               "limit must be a number from 1 to 10000");
            read_job_free(j);
            return;
        }
        j->f.limit = (int)n;
    }
    if ((v = http_req_query(r, "since")) && parse_time_us(v, &j->f.since_us)) {
        http_respond_error(r, 400,
                           "since must be a time like 2026-11-28T07:00:00Z");
        read_job_free(j);
        return;
    }
    if ((v = http_req_query(r, "until")) && parse_time_us(v, &j->f.until_us)) {
        http_respond_error(r, 400,
                           "until must be a time like 2026-11-28T07:00:00Z");
        read_job_free(j);
        return;
    }
    storeq_push(h->q, list_run, read_done, j);
}

static void h_execution_get(void *ud, http_req *r) {
    host *h = ud;
    read_job *j = read_job_new(r, http_req_param(r, "id"));
    if (j)
        storeq_push(h->q, get_run, read_done, j);
}

static void h_execution_cancel(void *ud, http_req *r) {
    host *h = ud;
    const char *id = http_req_param(r, "id");
    if (host_cancel(h, id) == 0) {
        http_respond_json(
            r, 202, json_pack("{s:s, s:s}", "id", id, "status", "cancelling"));
        return;
    }
    /* Not active here: 404 if unknown, 409 if it already ended. */
    read_job *j = read_job_new(r, id);
    if (!j)
        return;
    j->cancel = 1;
    j->h = h;
    storeq_push(h->q, cancel_run, cancel_done, j);
}

const http_route host_routes[] = {
    {"GET", "/healthz", 0, h_healthz},
    {"GET", "/readyz", 0, h_readyz},
    {"GET", "/metrics", 1, h_metrics},
    {"GET", "/api/v1/components", 1, h_components},
    {"GET", "/api/v1/instances", 1, h_instances_list},
    {"POST", "/api/v1/instances", 1, h_instance_deploy},
    {"GET", "/api/v1/instances/{instance}", 1, h_instance_get},
    {"GET", "/api/v1/instances/{instance}/connections", 1,
     host_connections_get},
    {"GET", "/oauth/authorize/{instance}/{connection}", 1,
     host_oauth_authorize},
    {"GET", "/oauth/callback", 0, host_oauth_callback},
    {"GET", "/api/v1/dead-letters", 1, host_dead_letters_list},
    {"GET", "/api/v1/dead-letters/{id}", 1, host_dead_letter_get},
    {"POST", "/api/v1/dead-letters/{id}/replay", 1, host_dead_letter_replay},
    {"DELETE", "/api/v1/dead-letters/{id}", 1, host_dead_letter_discard},
    {"POST", "/api/v1/instances/{instance}/flows/{flow}/executions", 1,
     h_execution_start},
    {"GET", "/api/v1/executions", 1, h_executions_list},
    {"GET", "/api/v1/executions/{id}", 1, h_execution_get},
    {"DELETE", "/api/v1/executions/{id}", 1, h_execution_cancel},
    {"GET", "/webhooks/{instance}/{flow}", 0, host_webhook_handler},
    {"POST", "/webhooks/{instance}/{flow}", 0, host_webhook_handler},
    {"PUT", "/webhooks/{instance}/{flow}", 0, host_webhook_handler},
    {"PATCH", "/webhooks/{instance}/{flow}", 0, host_webhook_handler},
    {"DELETE", "/webhooks/{instance}/{flow}", 0, host_webhook_handler},
};

const size_t host_nroutes = sizeof(host_routes) / sizeof(host_routes[0]);
