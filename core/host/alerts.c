/*
 * Alerting: the monitors of the deployed integrations and instances
 * ("alerts", docs/alerts.md), evaluated by the host, never in a worker.
 *
 * Conditions are looked at when an execution ends (failed, dead_letter,
 * retrying, duration, schedule_late), every few seconds (silence), and
 * when something else happens (reauth from oauth.c, component_refused at
 * load). Each (monitor, instance, subject) is a group: the first time it
 * fires an alert goes out at once; while it keeps firing one summary goes
 * out per "repeat" period with the count; when it clears (an execution of
 * the flow succeeds, the silence ends, the connection is authorised
 * again) a "resolved" alert goes out.
 *
 * Delivery never blocks an execution: an alert to Slack or a webhook is
 * written to the store's outbox first, then sent from the thread pool and
 * retried with backoff until it is delivered (or has failed 10 times, which
 * is logged as an error); the outbox survives a restart. An alert to a
 * flow queues an execution of that flow with the alert as its trigger.
 * Loop thread only, except send_work (thread pool) and the *_run store
 * jobs.
 */
#include "host_internal.h"

#include "sched/sched.h"
#include "webhook/webhook.h"

#include <ferry/ferry.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALERT_TICK_MS 2000
#define ALERT_DEFAULT_REPEAT_MS (15 * 60 * 1000)
#define ALERT_MAX_ATTEMPTS 10
#define ALERT_SEND_TIMEOUT_MS 15000

typedef struct group {
    char *key; /* monitor|instance|subject */
    int active;
    int64_t first_us, last_sent_us;
    int pending; /* fired since the last alert that went out */
    struct group *next;
} group;

typedef struct last_seen {
    char *key; /* instance|flow */
    int64_t us;
    struct last_seen *next;
} last_seen;

struct host_alerts {
    host *h;
    uv_timer_t tick;
    group *groups;
    last_seen *seen;
    int64_t started_us;
    int sending;      /* an outbox item is in flight */
    int free_pending; /* closed while sending: send_after frees */
    json_t *outbox;   /* the pending items, as loaded or written */
    int stopped;
};

static int64_t now_us(void) {
    return store_now_us();
}

static struct host_alerts *state(host *h);

/* ---- monitors ---- */

/* Whether either document declares monitors (without building the list). */
static int has_monitors(const deployment *dep) {
    return json_array_size(json_object_get(dep->integration_doc, "alerts")) ||
           json_array_size(json_object_get(dep->instance_doc, "alerts"));
}

/* Every monitor of a deployment: the integration's, then the instance's. */
static json_t *monitors(const deployment *dep) {
    json_t *all = json_array();
    json_array_extend(all, json_object_get(dep->integration_doc, "alerts"));
    json_array_extend(all, json_object_get(dep->instance_doc, "alerts"));
    return all;
}

static int covers(const json_t *m, const char *flow) {
    const json_t *flows = json_object_get(m, "flows");
    if (!flows || !flow)
        return 1;
    size_t i;
    json_t *f;
    json_array_foreach(flows, i,
                       f) if (json_is_string(f) &&
                              !strcmp(json_string_value(f), flow)) return 1;
    return 0;
}

static int64_t dur_ms(const json_t *m, const char *key, int64_t dflt) {
    uint64_t ms;
    const char *v = json_string_value(json_object_get(m, key));
    return v && !flow_parse_duration_ms(v, &ms) ? (int64_t)ms : dflt;
}

static const char *when(const json_t *m) {
    return json_string_value(json_object_get(m, "when"));
}

/* A string that is one config reference, resolved in dep's config. */
static const char *resolve(const deployment *dep, const char *s) {
    char name[128];
    if (s && dep->in && !sched_config_ref(s, name, sizeof(name)))
        return json_string_value(json_object_get(dep->in->config, name));
    return s;
}

/* ---- delivery ---- */

static void outbox_kick(struct host_alerts *a);

typedef struct put_job {
    host *h;
    json_t *item; /* {id, target, event} */
    int rc;
} put_job;

static void put_run(store *st, void *arg) {
    put_job *j = arg;
    char *t = json_dumps(json_object_get(j->item, "target"), JSON_COMPACT);
    char *e = json_dumps(json_object_get(j->item, "event"), JSON_COMPACT);
    j->rc = st->vt->outbox_put && t && e
                ? st->vt->outbox_put(
                      st, json_string_value(json_object_get(j->item, "id")), t,
                      e, now_us())
                : FERRY_EUNSUPPORTED;
    free(t);
    free(e);
}

static void put_done(void *arg, int commit_rc) {
    put_job *j = arg;
    struct host_alerts *a = j->h->alerts;
    if (j->rc || commit_rc) {
        host_log(j->h, "error", json_pack("{s:O}", "alert", j->item),
                 "alert: could not be written to the outbox; sent once "
                 "without retries");
    }
    if (a && !a->stopped) {
        json_object_set_new(j->item, "attempts", json_integer(0));
        json_object_set_new(j->item, "next_us", json_integer(now_us()));
        json_array_append(a->outbox, j->item);
        outbox_kick(a);
    }
    json_decref(j->item);
    free(j);
}

/* The target as the sender needs it (credentials resolved now). */
static json_t *target_of(host *h, const deployment *dep, const json_t *n) {
    const json_t *sl = json_object_get(n, "slack");
    const json_t *wh = json_object_get(n, "webhook");
    if (sl) {
        const char *conn = json_string_value(json_object_get(sl, "connection"));
        const json_t *c = json_object_get(dep->in->connections, conn);
        const json_t *f = json_object_get(c, "fields");
        const char *token = json_string_value(json_object_get(f, "token"));
        const char *api = json_string_value(json_object_get(sl, "api_url"));
        if (!api)
            api = json_string_value(json_object_get(f, "api_url"));
        const char *hook = json_string_value(json_object_get(f, "url"));
        (void)h;
        return json_pack(
            "{s:s, s:s?, s:s, s:s?, s:s?}", "kind", "slack", "channel",
            resolve(dep, json_string_value(json_object_get(sl, "channel"))),
            "api_url", api ? api : "https://slack.com/api", "token", token,
            "webhook_url", hook);
    }
    if (wh)
        return json_pack(
            "{s:s, s:s?, s:s?}", "kind", "webhook", "url",
            resolve(dep, json_string_value(json_object_get(wh, "url"))),
            "secret",
            resolve(dep, json_string_value(json_object_get(wh, "secret"))));
    return NULL;
}

static void emit(host *h, const deployment *dep, const json_t *m,
                 json_t *event) {
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(m, "notify"), i, n) {
        const char *flow = json_string_value(json_object_get(n, "flow"));
        if (flow) {
            deployment *d = deploy_table_get(h->deps, dep->instance);
            json_t *trig =
                json_pack("{s:s, s:O}", "type", "alert", "alert", event);
            if (d && trig)
                host_enqueue(h, d, flow, trig, NULL, NULL);
            json_decref(trig);
            continue;
        }
        json_t *target = target_of(h, dep, n);
        if (!target)
            continue;
        put_job *j = calloc(1, sizeof(*j));
        char id[40];
        store_new_id("al", id, sizeof(id));
        if (!j || !(j->item = json_pack("{s:s, s:o, s:O}", "id", id, "target",
                                        target, "event", event))) {
            free(j);
            continue;
        }
        j->h = h;
        storeq_push(h->q, put_run, put_done, j);
    }
    json_t *f =
        json_pack("{s:O, s:O, s:O}", "alert", json_object_get(event, "alert"),
                  "status", json_object_get(event, "status"), "instance",
                  json_object_get(event, "instance"));
    host_log(h, "warn", f, "alert: %s",
             json_string_value(json_object_get(event, "summary")));
}

/* ---- groups ---- */

static group *group_get(struct host_alerts *a, const char *key, int create) {
    for (group *g = a->groups; g; g = g->next)
        if (!strcmp(g->key, key))
            return g;
    if (!create)
        return NULL;
    group *g = calloc(1, sizeof(*g));
    if (!g || !(g->key = strdup(key))) {
        free(g);
        return NULL;
    }
    g->next = a->groups;
    a->groups = g;
    return g;
}

static json_t *base_event(host *h, const deployment *dep, const json_t *m,
                          const char *status, const char *flow) {
    char t[48];
    store_format_time(now_us(), t, sizeof(t));
    const char *customer =
        dep->in
            ? json_string_value(json_object_get(dep->in->config, "customer"))
            : NULL;
    (void)h;
    return json_pack(
        "{s:s, s:s, s:s?, s:s, s:s, s:s, s:s?, s:s}", "type", "ferry.alert",
        "alert", json_string_value(json_object_get(m, "name")), "condition",
        when(m), "status", status, "instance", dep->instance, "customer",
        customer ? customer : dep->instance, "flow", flow, "time", t);
}

static void set_link(host *h, json_t *e, const char *exec_id) {
    if (!exec_id)
        return;
    char link[512];
    const char *base = h->cfg->public_url;
    if (base && *base)
        snprintf(link, sizeof(link), "%s/api/v1/executions/%s", base, exec_id);
    else
        snprintf(link, sizeof(link), "http://%s:%d/api/v1/executions/%s",
                 h->cfg->listen_host, http_server_port(h->http), exec_id);
    json_object_set_new(e, "execution_id", json_string(exec_id));
    json_object_set_new(e, "link", json_string(link));
}

/* The condition of monitor m holds for subject: alert now, or count it
 * for the next summary. details: stolen, merged into the event. */
static void fire(host *h, const deployment *dep, const json_t *m,
                 const char *subject, const char *flow, json_t *details,
                 const char *summary) {
    struct host_alerts *a = state(h);
    char key[768];
    snprintf(key, sizeof(key), "%s|%s|%s",
             json_string_value(json_object_get(m, "name")), dep->instance,
             subject ? subject : "");
    group *g = a ? group_get(a, key, 1) : NULL;
    if (!g) {
        json_decref(details);
        return;
    }
    int64_t now = now_us();
    int64_t repeat = dur_ms(m, "repeat", ALERT_DEFAULT_REPEAT_MS) * 1000;
    g->pending++;
    if (g->active && now - g->last_sent_us < repeat) {
        json_decref(details);
        return; /* grouped: counted for the next summary */
    }
    json_t *e = base_event(h, dep, m, "firing", flow);
    if (!g->active)
        g->first_us = now;
    json_object_update(e, details);
    json_decref(details);
    char first[48];
    store_format_time(g->first_us, first, sizeof(first));
    json_object_set_new(e, "first_at", json_string(first));
    json_object_set_new(e, "count", json_integer(g->pending));
    char text[1024];
    snprintf(text, sizeof(text), "%s%s", g->active ? "still: " : "", summary);
    if (g->active && g->pending > 1) {
        size_t len = strlen(text);
        snprintf(text + len, sizeof(text) - len, " (%d times since %s)",
                 g->pending, first);
    }
    json_object_set_new(e, "summary", json_string(text));
    set_link(h, e, json_string_value(json_object_get(e, "execution_id")));
    g->active = 1;
    g->last_sent_us = now;
    g->pending = 0;
    emit(h, dep, m, e);
    json_decref(e);
}

static void resolve_group(host *h, const deployment *dep, const json_t *m,
                          const char *subject, const char *flow) {
    struct host_alerts *a = state(h);
    char key[768];
    snprintf(key, sizeof(key), "%s|%s|%s",
             json_string_value(json_object_get(m, "name")), dep->instance,
             subject ? subject : "");
    group *g = a ? group_get(a, key, 0) : NULL;
    if (!g || !g->active)
        return;
    json_t *e = base_event(h, dep, m, "resolved", flow);
    char text[512];
    snprintf(text, sizeof(text), "resolved: %s %s on %s",
             json_string_value(json_object_get(m, "name")), when(m),
             dep->instance);
    json_object_set_new(e, "summary", json_string(text));
    json_object_set_new(e, "count", json_integer(g->pending));
    g->active = 0;
    g->pending = 0;
    emit(h, dep, m, e);
    json_decref(e);
}

/* ---- conditions ---- */

static void seen(struct host_alerts *a, const char *instance,
                 const char *flow) {
    char key[512];
    snprintf(key, sizeof(key), "%s|%s", instance, flow);
    for (last_seen *s = a->seen; s; s = s->next)
        if (!strcmp(s->key, key)) {
            s->us = now_us();
            return;
        }
    last_seen *s = calloc(1, sizeof(*s));
    if (!s || !(s->key = strdup(key))) {
        free(s);
        return;
    }
    s->us = now_us();
    s->next = a->seen;
    a->seen = s;
}

void host_alert_execution(host *h, const run *r, const char *status,
                          const char *error) {
    if (!r->dep || r->poll || !r->fdef)
        return;
    struct host_alerts *a = state(h);
    if (!a)
        return;
    seen(a, r->dep->instance, r->flow);
    json_t *ms = monitors(r->dep);
    size_t i;
    json_t *m;
    int failed = status && !strcmp(status, "failed");
    int ok = status && !strcmp(status, "succeeded");
    int64_t took_ms = r->started_us ? (now_us() - r->started_us) / 1000 : 0;
    json_array_foreach(ms, i, m) {
        const char *w = when(m);
        if (!w || !covers(m, r->flow))
            continue;
        char summary[1024];
        json_t *d =
            json_pack("{s:s?, s:s?}", "step", r->current_step, "error", error);
        set_link(h, d, r->id);
        if (!strcmp(w, "failed") || !strcmp(w, "dead_letter") ||
            !strcmp(w, "retrying")) {
            int hit = !strcmp(w, "failed")        ? failed
                      : !strcmp(w, "dead_letter") ? failed && r->dead_lettered
                                                  : r->wait_due_us != 0;
            if (hit) {
                snprintf(summary, sizeof(summary), "%s %s: %s flow %s%s%s%s",
                         json_string_value(json_object_get(m, "name")), w,
                         r->dep->instance, r->flow,
                         r->current_step ? " at step " : "",
                         r->current_step ? r->current_step : "",
                         error ? " failed" : "");
                fire(h, r->dep, m, r->flow, r->flow, d, summary);
                d = NULL;
            } else if (ok) {
                resolve_group(h, r->dep, m, r->flow, r->flow);
            }
        } else if (!strcmp(w, "duration")) {
            if (took_ms > dur_ms(m, "over", 0)) {
                json_object_set_new(d, "duration_ms", json_integer(took_ms));
                snprintf(summary, sizeof(summary),
                         "%s: %s flow %s took %lld ms (over %lld)",
                         json_string_value(json_object_get(m, "name")),
                         r->dep->instance, r->flow, (long long)took_ms,
                         (long long)dur_ms(m, "over", 0));
                fire(h, r->dep, m, r->flow, r->flow, d, summary);
                d = NULL;
            } else if (ok) {
                resolve_group(h, r->dep, m, r->flow, r->flow);
            }
        } else if (!strcmp(w, "schedule_late")) {
            const char *sch =
                json_string_value(json_object_get(r->trigger, "scheduled"));
            int64_t fire_us;
            if (sch && !sched_parse_time_us(sch, &fire_us) && r->started_us &&
                (r->started_us - fire_us) / 1000 > dur_ms(m, "over", 0)) {
                snprintf(summary, sizeof(summary),
                         "%s: %s flow %s started %lld ms after its fire time "
                         "%s",
                         json_string_value(json_object_get(m, "name")),
                         r->dep->instance, r->flow,
                         (long long)((r->started_us - fire_us) / 1000), sch);
                fire(h, r->dep, m, r->flow, r->flow, d, summary);
                d = NULL;
            } else if (sch) {
                resolve_group(h, r->dep, m, r->flow, r->flow);
            }
        }
        json_decref(d);
    }
    json_decref(ms);
}

void host_alert_reauth(host *h, const char *instance, const char *connection,
                       int needs, const char *error) {
    deployment *dep = deploy_table_get(h->deps, instance);
    if (!dep)
        return;
    json_t *ms = monitors(dep);
    size_t i;
    json_t *m;
    json_array_foreach(ms, i, m) {
        const char *w = when(m);
        if (!w || strcmp(w, "reauth"))
            continue;
        if (needs) {
            char summary[1024];
            snprintf(summary, sizeof(summary),
                     "%s: connection %s of %s needs re-authorisation",
                     json_string_value(json_object_get(m, "name")), connection,
                     instance);
            fire(h, dep, m, connection, NULL,
                 json_pack("{s:s, s:s?}", "connection", connection, "error",
                           error),
                 summary);
        } else {
            resolve_group(h, dep, m, connection, NULL);
        }
    }
    json_decref(ms);
}

void host_alert_refused(host *h, const char *path, const char *reason) {
    size_t n = deploy_table_count(h->deps);
    for (size_t i = 0; i < n; i++) {
        deployment *dep = deploy_table_at(h->deps, i);
        if (!dep || !has_monitors(dep))
            continue;
        json_t *ms = monitors(dep);
        size_t k;
        json_t *m;
        json_array_foreach(ms, k, m) {
            const char *w = when(m);
            if (!w || strcmp(w, "component_refused"))
                continue;
            char summary[1024];
            snprintf(summary, sizeof(summary),
                     "%s: a component was refused at load: %s: %s",
                     json_string_value(json_object_get(m, "name")), path,
                     reason);
            fire(h, dep, m, path, NULL,
                 json_pack("{s:s, s:s}", "component", path, "error", reason),
                 summary);
        }
        json_decref(ms);
    }
}

/* Silence: no execution of a flow for longer than "over". Every
 * ALERT_TICK_MS on the loop: a deployment without monitors costs two
 * lookups (walking ten thousand through JSON summaries held the loop for
 * tens of milliseconds, and timers due meanwhile fired that much late). */
static void check_silence(struct host_alerts *a) {
    host *h = a->h;
    size_t n = deploy_table_count(h->deps);
    int64_t now = now_us();
    for (size_t i = 0; i < n; i++) {
        deployment *dep = deploy_table_at(h->deps, i);
        if (!dep || !dep->ig || !has_monitors(dep))
            continue;
        json_t *ms = monitors(dep);
        size_t k;
        json_t *m;
        json_array_foreach(ms, k, m) {
            const char *w = when(m);
            if (!w || strcmp(w, "silence"))
                continue;
            int64_t over = dur_ms(m, "over", 0) * 1000;
            for (size_t f = 0; f < dep->ig->nflows; f++) {
                const char *flow = dep->ig->flows[f].name;
                if (!covers(m, flow))
                    continue;
                char key[512];
                snprintf(key, sizeof(key), "%s|%s", dep->instance, flow);
                int64_t last = a->started_us;
                for (last_seen *s = a->seen; s; s = s->next)
                    if (!strcmp(s->key, key) && s->us > last)
                        last = s->us;
                if (now - last > over) {
                    char summary[1024];
                    snprintf(summary, sizeof(summary),
                             "%s: no execution of %s flow %s for %lld s",
                             json_string_value(json_object_get(m, "name")),
                             dep->instance, flow,
                             (long long)((now - last) / 1000000));
                    fire(h, dep, m, flow, flow, json_object(), summary);
                } else {
                    resolve_group(h, dep, m, flow, flow);
                }
            }
        }
        json_decref(ms);
    }
}

/* ---- the outbox sender ---- */

typedef struct send_job {
    uv_work_t w;
    struct host_alerts *a;
    json_t *item;
    int ok;
    char err[512];
} send_job;

static size_t sink(char *p, size_t s, size_t n, void *ud) {
    (void)p;
    json_t *buf = ud;
    /* Keep a little of the answer (Slack's {"ok": false, "error"}). */
    const char *have = json_string_value(buf);
    size_t hl = have ? strlen(have) : 0;
    if (hl < 2048) {
        char *t = malloc(hl + s * n + 1);
        if (t) {
            memcpy(t, have ? have : "", hl);
            memcpy(t + hl, p, s * n);
            t[hl + s * n] = 0;
            json_string_set(buf, t);
            free(t);
        }
    }
    return s * n;
}

static void send_work(uv_work_t *w) {
    send_job *j = w->data;
    const json_t *t = json_object_get(j->item, "target");
    const json_t *ev = json_object_get(j->item, "event");
    const char *kind = json_string_value(json_object_get(t, "kind"));
    CURL *c = curl_easy_init();
    struct curl_slist *hd = NULL;
    char *body = NULL, *url = NULL;
    json_t *answer = json_string("");
    if (!c || !kind) {
        snprintf(j->err, sizeof(j->err), "cannot send");
        goto out;
    }
    hd = curl_slist_append(hd, "Content-Type: application/json");
    if (!strcmp(kind, "webhook")) {
        body = json_dumps(ev, JSON_COMPACT);
        const char *u = json_string_value(json_object_get(t, "url"));
        url = strdup(u ? u : "");
        const char *secret = json_string_value(json_object_get(t, "secret"));
        const char *id = json_string_value(json_object_get(j->item, "id"));
        long long ts = (long long)(now_us() / 1000000);
        char h1[128], h2[64], sig[160], h3[200];
        snprintf(h1, sizeof(h1), "webhook-id: %s", id);
        snprintf(h2, sizeof(h2), "webhook-timestamp: %lld", ts);
        hd = curl_slist_append(hd, h1);
        hd = curl_slist_append(hd, h2);
        if (secret && body &&
            !webhook_stdwh_sign(secret, id, ts, body, strlen(body), sig,
                                sizeof(sig))) {
            snprintf(h3, sizeof(h3), "webhook-signature: %s", sig);
            hd = curl_slist_append(hd, h3);
        }
    } else {
        const char *text = json_string_value(json_object_get(ev, "summary"));
        const char *link = json_string_value(json_object_get(ev, "link"));
        char msg[2048];
        const char *st = json_string_value(json_object_get(ev, "status"));
        snprintf(msg, sizeof(msg), "%s %s%s%s",
                 st && !strcmp(st, "resolved") ? ":white_check_mark:"
                                               : ":rotating_light:",
                 text ? text : "", link ? " " : "", link ? link : "");
        const char *hook = json_string_value(json_object_get(t, "webhook_url"));
        const char *token = json_string_value(json_object_get(t, "token"));
        json_t *b = json_pack("{s:s?, s:s}", "channel",
                              json_string_value(json_object_get(t, "channel")),
                              "text", msg);
        body = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        if (hook) {
            url = strdup(hook);
        } else if (asprintf(
                       &url, "%s/chat.postMessage",
                       json_string_value(json_object_get(t, "api_url"))
                           ? json_string_value(json_object_get(t, "api_url"))
                           : "https://slack.com/api") < 0) {
            url = NULL;
        }
        if (token) {
            char auth[1024];
            snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
            hd = curl_slist_append(hd, auth);
        }
    }
    if (!url || !body) {
        snprintf(j->err, sizeof(j->err), "out of memory");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ALERT_SEND_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        snprintf(j->err, sizeof(j->err), "%s", curl_easy_strerror(rc));
    } else if (status < 200 || status >= 300) {
        snprintf(j->err, sizeof(j->err), "HTTP %ld", status);
    } else if (!strcmp(kind, "slack") &&
               !json_string_value(json_object_get(t, "webhook_url"))) {
        json_t *a = json_loads(json_string_value(answer), 0, NULL);
        if (json_is_true(json_object_get(a, "ok")))
            j->ok = 1;
        else
            snprintf(j->err, sizeof(j->err), "slack: %s",
                     json_string_value(json_object_get(a, "error"))
                         ? json_string_value(json_object_get(a, "error"))
                         : "no ok in the answer");
        json_decref(a);
    } else {
        j->ok = 1;
    }
out:
    json_decref(answer);
    curl_slist_free_all(hd);
    if (c)
        curl_easy_cleanup(c);
    free(body);
    free(url);
}

typedef struct update_job {
    struct host_alerts *a;
    char id[40];
    int done, attempts;
    int64_t next_us;
    char err[512];
} update_job;

static void update_run(store *st, void *arg) {
    update_job *u = arg;
    if (st->vt->outbox_update)
        st->vt->outbox_update(st, u->id, u->done, u->attempts, u->next_us,
                              u->err);
}

static void update_done(void *arg, int commit_rc) {
    (void)commit_rc;
    free(arg);
}

static void free_state(struct host_alerts *a);

static void send_after(uv_work_t *w, int status) {
    send_job *j = w->data;
    struct host_alerts *a = j->a;
    host *h = a->h;
    a->sending = 0;
    if (a->free_pending) {
        json_decref(j->item);
        free(j);
        free_state(a);
        return;
    }
    update_job *u = calloc(1, sizeof(*u));
    int attempts =
        (int)json_integer_value(json_object_get(j->item, "attempts")) + 1;
    const char *id = json_string_value(json_object_get(j->item, "id"));
    if (status)
        snprintf(j->err, sizeof(j->err), "%s", uv_strerror(status));
    int done = j->ok || attempts >= ALERT_MAX_ATTEMPTS;
    if (!j->ok)
        host_log(h, done ? "error" : "warn",
                 json_pack("{s:s, s:i}", "alert_id", id, "attempt", attempts),
                 "alert: delivery failed: %s%s", j->err,
                 done ? "; giving up after 10 attempts" : "; retried");
    /* 1 s, 2 s, 4 s, ... up to 5 minutes. */
    int64_t back = (int64_t)1000000 << (attempts < 9 ? attempts - 1 : 8);
    if (back > 300LL * 1000000)
        back = 300LL * 1000000;
    if (u) {
        u->a = a;
        snprintf(u->id, sizeof(u->id), "%s", id);
        u->done = done;
        u->attempts = attempts;
        u->next_us = now_us() + back;
        snprintf(u->err, sizeof(u->err), "%s", j->err);
        storeq_push(h->q, update_run, update_done, u);
    }
    if (done) {
        size_t i;
        json_t *it;
        json_array_foreach(a->outbox, i, it) {
            if (!strcmp(json_string_value(json_object_get(it, "id")), id)) {
                json_array_remove(a->outbox, i);
                break;
            }
        }
    } else {
        json_object_set_new(j->item, "attempts", json_integer(attempts));
        json_object_set_new(j->item, "next_us", json_integer(now_us() + back));
    }
    if (j->ok)
        metrics_add(h->m, "ferry_alerts_sent_total", 1, NULL);
    json_decref(j->item);
    free(j);
    if (!a->stopped)
        outbox_kick(a);
}

static void outbox_kick(struct host_alerts *a) {
    if (a->sending || a->stopped)
        return;
    int64_t now = now_us();
    size_t i;
    json_t *it;
    json_array_foreach(a->outbox, i, it) {
        if (json_integer_value(json_object_get(it, "next_us")) > now)
            continue;
        send_job *j = calloc(1, sizeof(*j));
        if (!j)
            return;
        j->a = a;
        j->item = json_incref(it);
        j->w.data = j;
        a->sending = 1;
        if (uv_queue_work(a->h->loop, &j->w, send_work, send_after)) {
            a->sending = 0;
            json_decref(j->item);
            free(j);
        }
        return;
    }
}

typedef struct load_job {
    host *h;
    json_t *items;
} load_job;

static void load_run(store *st, void *arg) {
    load_job *j = arg;
    if (st->vt->outbox_list)
        st->vt->outbox_list(st, &j->items);
}

static void load_done(void *arg, int commit_rc) {
    load_job *j = arg;
    (void)commit_rc;
    struct host_alerts *a = j->h->alerts;
    if (a && j->items) {
        json_array_extend(a->outbox, j->items);
        if (json_array_size(j->items))
            host_log(
                j->h, "info",
                json_pack("{s:i}", "count", (int)json_array_size(j->items)),
                "alert: undelivered alerts from the last host taken up");
        outbox_kick(a);
    }
    json_decref(j->items);
    free(j);
}

static void on_tick(uv_timer_t *t) {
    struct host_alerts *a = t->data;
    check_silence(a);
    outbox_kick(a);
}

static struct host_alerts *state(host *h) {
    if (h->alerts || h->stopping)
        return h->alerts;
    struct host_alerts *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->h = h;
    a->outbox = json_array();
    a->started_us = now_us();
    uv_timer_init(h->loop, &a->tick);
    a->tick.data = a;
    uv_unref((uv_handle_t *)&a->tick);
    uv_timer_start(&a->tick, on_tick, ALERT_TICK_MS, ALERT_TICK_MS);
    h->alerts = a;
    load_job *j = calloc(1, sizeof(*j));
    if (j) {
        j->h = h;
        storeq_push(h->q, load_run, load_done, j);
    }
    return a;
}

void host_alerts_start(host *h) {
    state(h);
}

static void closed(uv_handle_t *hd) {
    struct host_alerts *a = hd->data;
    if (a->sending) {
        a->free_pending = 1;
        return;
    }
    free_state(a);
}

static void free_state(struct host_alerts *a) {
    for (group *g = a->groups; g;) {
        group *n = g->next;
        free(g->key);
        free(g);
        g = n;
    }
    for (last_seen *s = a->seen; s;) {
        last_seen *n = s->next;
        free(s->key);
        free(s);
        s = n;
    }
    json_decref(a->outbox);
    free(a);
}

void host_alerts_stop(host *h) {
    struct host_alerts *a = h->alerts;
    if (!a)
        return;
    h->alerts = NULL;
    a->stopped = 1;
    uv_close((uv_handle_t *)&a->tick, closed);
}
