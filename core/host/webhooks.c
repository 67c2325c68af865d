/*
 * Webhooks: /webhooks/{instance}/{flow}. A flow whose trigger is
 * {"type": "webhook"} is reachable here with the trigger's methods
 * (default POST). The request is verified by the flow's "verify" object
 * (core/webhook), then becomes an execution whose trigger payload holds
 * the request. "response": "async" (default) answers 202 once the
 * execution's row is durable; "sync" holds the request until the execution
 * ends (or its "timeout", default 10 s, passes: 202 with the execution's
 * id, and the execution goes on).
 */
#include "flow/flow.h"
#include "host_internal.h"
#include "sched/sched.h"
#include "webhook/webhook.h"

#include <ferry/ferry.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNC_TIMEOUT_DEFAULT_MS 10000
#define DEDUPE_WINDOW_DEFAULT_MS (24ull * 60 * 60 * 1000)

static const char *req_header(void *ud, const char *lname) {
    return http_req_header(ud, lname);
}

/* A string that is one config reference becomes the config's value (a
 * string, or an array of strings for "secret"). New reference, or NULL
 * with err set. */
static json_t *resolve_value(json_t *v, const json_t *config, const char *key,
                             char *err, size_t errlen) {
    char name[128];
    if (json_is_string(v) &&
        !sched_config_ref(json_string_value(v), name, sizeof(name))) {
        json_t *c = json_object_get(config, name);
        if (!json_is_string(c) && !json_is_array(c)) {
            snprintf(err, errlen,
                     "verify.%s: config '%s' is not set to a string", key,
                     name);
            return NULL;
        }
        return json_incref(c);
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            json_t *x = resolve_value(e, config, key, err, errlen);
            if (!x) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, x);
        }
        return a;
    }
    return json_incref(v);
}

static webhook_verifier *make_verifier(const json_t *verify,
                                       const json_t *config, char *err,
                                       size_t errlen) {
    if (!json_is_object(verify)) {
        snprintf(err, errlen, "verify: expected an object");
        return NULL;
    }
    json_t *conf = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)verify, k, v) {
        json_t *x = resolve_value(v, config, k, err, errlen);
        if (!x) {
            json_decref(conf);
            return NULL;
        }
        json_object_set_new(conf, k, x);
    }
    webhook_verifier *wv = webhook_verifier_new(conf, err, errlen);
    json_decref(conf);
    return wv;
}

/* The verifiers of a deployment's webhook flows, made at each flow's first
 * request and kept with the deployment: a deployment never changes (a
 * redeploy makes a new one), and making one per request (the templates
 * resolved, OpenSSL's HMAC looked up by name, the key set up) was a tenth
 * of the loop's time in a burst of webhooks. */
typedef struct flow_verifier {
    char *flow;
    webhook_verifier *v;
    struct flow_verifier *next;
} flow_verifier;

static void verifiers_free(void *p) {
    for (flow_verifier *c = p, *next; c; c = next) {
        next = c->next;
        webhook_verifier_free(c->v);
        free(c->flow);
        free(c);
    }
}

/* The flow's verifier, owned by dp; NULL with err set if its verify
 * settings are wrong (then made again, and refused again, at the next
 * request, as the error is logged each time). */
static const webhook_verifier *verifier_of(deployment *dp, const char *flow,
                                           const json_t *verify, char *err,
                                           size_t errlen) {
    for (flow_verifier *c = dp->webhooks; c; c = c->next)
        if (!strcmp(c->flow, flow))
            return c->v;
    webhook_verifier *v = make_verifier(verify, dp->in->config, err, errlen);
    if (!v)
        return NULL;
    flow_verifier *c = calloc(1, sizeof(*c));
    char *name = strdup(flow);
    if (!c || !name) {
        free(c);
        free(name);
        webhook_verifier_free(v);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *c = (flow_verifier){name, v, dp->webhooks};
    dp->webhooks = c;
    dp->webhooks_free = verifiers_free;
    return v;
}

static int method_allowed(const json_t *trigger, const char *method) {
    json_t *m = json_object_get(trigger, "methods");
    if (!json_is_array(m))
        return !strcmp(method, "POST");
    size_t i;
    json_t *e;
    json_array_foreach(m, i, e) {
        const char *s = json_string_value(e);
        if (s && !strcasecmp(s, method))
            return 1;
    }
    return 0;
}

/* "10s", "500ms", "2m" or a number of seconds; 0 if invalid. */
static uint64_t parse_timeout_ms(const json_t *v) {
    if (json_is_integer(v))
        return json_integer_value(v) > 0
                   ? (uint64_t)json_integer_value(v) * 1000
                   : 0;
    const char *s = json_string_value(v);
    if (!s)
        return 0;
    char *end;
    double n = strtod(s, &end);
    if (n <= 0)
        return 0;
    if (!strcmp(end, "ms"))
        return (uint64_t)n;
    if (!strcmp(end, "s") || !*end)
        return (uint64_t)(n * 1000);
    if (!strcmp(end, "m"))
        return (uint64_t)(n * 60000);
    return 0;
}

static char *base64(const unsigned char *p, size_t n) {
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = tab[(v >> 18) & 63];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = 0;
    return out;
}

/* Appends name=value, percent-encoded, to a query string. */
static void query_add(char *q, size_t qlen, const char *name,
                      const char *value) {
    size_t n = strlen(q);
    const char *parts[2] = {name, value};
    if (n && n + 1 < qlen)
        q[n++] = '&';
    for (int p = 0; p < 2; p++) {
        for (const unsigned char *s = (const unsigned char *)parts[p]; *s;
             s++) {
            if (n + 4 >= qlen)
                break;
            if (isalnum(*s) || strchr("-._~", *s))
                q[n++] = (char)*s;
            else
                n += (size_t)snprintf(q + n, qlen - n, "%%%02X", *s);
        }
        if (p == 0 && n + 1 < qlen)
            q[n++] = '=';
    }
    q[n] = 0;
}

/* ---- limits ---- */

/* Whether the media type of a Content-Type value (parameters and case
 * ignored) is want. */
static int media_type_is(const char *ctype, const char *want) {
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    size_t n = strcspn(ctype, ";");
    while (n && (ctype[n - 1] == ' ' || ctype[n - 1] == '\t'))
        n--;
    return strlen(want) == n && !strncasecmp(ctype, want, n);
}

/* The trigger's "max_body" ("1MiB" or a number of bytes; 0: none) and
 * "content_types". Returns 0 when the request passes; otherwise answers
 * it (413, 415, or 500 for a trigger that is not valid) and returns -1. */
static int check_limits(host *h, http_req *r, const deployment *dp,
                        const char *flow, const json_t *trigger, size_t len) {
    char err[200] = "";
    json_t *mb = json_object_get(trigger, "max_body");
    uint64_t max = 0;
    if (json_is_integer(mb) && json_integer_value(mb) >= 0)
        max = (uint64_t)json_integer_value(mb);
    else if (mb && (!json_is_string(mb) ||
                    flow_parse_size(json_string_value(mb), &max)))
        snprintf(err, sizeof(err),
                 "max_body: expected a size such as \"1MiB\" or a number of "
                 "bytes");
    json_t *cts = json_object_get(trigger, "content_types");
    size_t i;
    json_t *e;
    if (!err[0] && cts) {
        if (!json_is_array(cts))
            snprintf(err, sizeof(err),
                     "content_types: expected an array of media types");
        json_array_foreach(cts, i, e) {
            if (!json_is_string(e))
                snprintf(err, sizeof(err),
                         "content_types[%zu]: expected a media type", i);
        }
    }
    if (err[0]) {
        host_log(
            h, "error",
            json_pack("{s:s, s:s}", "instance", dp->instance, "flow", flow),
            "webhook misconfigured: %s", err);
        http_respond_error(r, 500, "the webhook is misconfigured");
        return -1;
    }
    if (mb && len > max) {
        http_respond_json(
            r, 413,
            json_pack("{s:s, s:I}", "error",
                      "the body is larger than this webhook accepts",
                      "max_body", (json_int_t)max));
        return -1;
    }
    const char *ctype = http_req_header(r, "content-type");
    if (cts && (len || ctype)) {
        int ok = 0;
        json_array_foreach(cts, i, e) {
            ok |= ctype && media_type_is(ctype, json_string_value(e));
        }
        if (!ok) {
            http_respond_json(
                r, 415,
                json_pack("{s:s, s:O}", "error",
                          ctype ? "this webhook does not accept this "
                                  "content type"
                                : "a Content-Type is required",
                          "content_types", cts));
            return -1;
        }
    }
    return 0;
}

/* ---- idempotency ---- */

/* The request's dedupe key per the trigger's "dedupe" ({"header": NAME}
 * or {"body": "a.b.c"}, a path into the parsed body) into buf; returns 1
 * with a key, 0 when the request has none, -1 with err set when "dedupe"
 * or "dedupe_window" is not valid. *window_ms: the window. */
static int dedupe_key(http_req *r, const json_t *trigger, const json_t *parsed,
                      char *buf, size_t buflen, uint64_t *window_ms, char *err,
                      size_t errlen) {
    json_t *d = json_object_get(trigger, "dedupe");
    json_t *w = json_object_get(trigger, "dedupe_window");
    *window_ms = DEDUPE_WINDOW_DEFAULT_MS;
    if (w && (!json_is_string(w) ||
              flow_parse_duration_ms(json_string_value(w), window_ms) ||
              !*window_ms)) {
        snprintf(err, errlen,
                 "dedupe_window: expected a duration such as \"24h\"");
        return -1;
    }
    if (!d)
        return 0;
    const char *hn = json_string_value(json_object_get(d, "header"));
    const char *bp = json_string_value(json_object_get(d, "body"));
    if (!json_is_object(d) || json_object_size(d) != 1 || (!hn && !bp) ||
        (hn && !*hn) || (bp && !*bp)) {
        snprintf(err, errlen,
                 "dedupe: expected {\"header\": NAME} or {\"body\": PATH}");
        return -1;
    }
    if (hn) {
        char lname[128];
        size_t n = 0;
        for (; hn[n] && n + 1 < sizeof(lname); n++)
            lname[n] = (char)tolower((unsigned char)hn[n]);
        lname[n] = 0;
        const char *v = http_req_header(r, lname);
        if (!v || !*v)
            return 0;
        snprintf(buf, buflen, "%s", v);
        return 1;
    }
    const json_t *v = parsed;
    while (v && *bp) {
        size_t n = strcspn(bp, ".");
        char part[256];
        if (n >= sizeof(part))
            return 0;
        memcpy(part, bp, n);
        part[n] = 0;
        v = json_is_object(v) ? json_object_get(v, part) : NULL;
        bp += n;
        if (*bp == '.')
            bp++;
    }
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        if (!*json_string_value(v))
            return 0;
        snprintf(buf, buflen, "%s", json_string_value(v));
    } else {
        char *t =
            json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
        if (!t)
            return 0;
        snprintf(buf, buflen, "%s", t);
        free(t);
    }
    return 1;
}

/* ---- the trigger payload ---- */

static json_t *payload(http_req *r, const webhook_verifier *v, const void *body,
                       size_t len) {
    const char *skip_header = v ? webhook_verifier_secret_header(v) : NULL;
    /* Every header but the credentials. */
    json_t *headers = http_req_headers(r);
    json_object_del(headers, "authorization");
    if (skip_header)
        json_object_del(headers, skip_header);

    const char *ctype = http_req_header(r, "content-type");
    json_t *parsed = NULL;
    char err[256] = "";
    if (body && len)
        parsed = webhook_parse_body(ctype, body, len, err, sizeof(err));
    json_t *query = http_req_query_json(r);
    const char *qkey = v ? webhook_verifier_secret_query(v) : NULL;
    if (qkey)
        json_object_del(query, qkey);
    json_t *p =
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "type", "webhook", "method",
                  http_req_method(r), "path", http_req_path(r), "query", query,
                  "headers", headers, "body", parsed ? parsed : json_null());
    if (!p)
        return NULL;
    if (!parsed && err[0])
        json_object_set_new(p, "body_error", json_string(err));
    json_t *raw = json_stringn(body ? body : "", body ? len : 0);
    if (!raw) {
        char *b = base64(body, len);
        raw = b ? json_string(b) : json_null();
        free(b);
        json_object_set_new(p, "raw_body_encoding", json_string("base64"));
    }
    json_object_set_new(p, "raw_body", raw);
    char now[40];
    store_format_time(store_now_us(), now, sizeof(now));
    json_object_set_new(p, "time", json_string(now));
    return p;
}

/* ---- answering ---- */

static void on_async_enqueued(void *ud, const char *id, int status,
                              const char *err) {
    http_req *r = ud;
    if (!id)
        http_respond_error(r, status, "%s", err ? err : "unknown error");
    else if (status == 200) /* a duplicate: answered as the first was */
        http_respond_json(r, 202,
                          json_pack("{s:s, s:s, s:s, s:b}", "execution_id", id,
                                    "id", id, "status", "queued", "duplicate",
                                    1));
    else
        http_respond_json(r, 202,
                          json_pack("{s:s, s:s, s:s}", "execution_id", id, "id",
                                    id, "status", "queued"));
}

typedef struct sync_wait {
    host *h;
    http_req *req;
    run *r; /* while waiting for it */
    uv_timer_t timer;
    int timer_started;
    uint64_t timeout_ms;
    char id[40];
} sync_wait;

static void on_wait_closed(uv_handle_t *hd) {
    free(hd->data);
}

static void wait_end(sync_wait *w) {
    if (w->timer_started) {
        uv_timer_stop(&w->timer);
        uv_close((uv_handle_t *)&w->timer, on_wait_closed);
    } else {
        free(w);
    }
}

/* Answers with a core.respond output: {"status", "body", "content_type",
 * "headers"}.
 * A string body is sent as it is, anything else as JSON. */
static void respond_with(http_req *req, const json_t *rsp) {
    json_t *st = json_object_get(rsp, "status");
    int status = json_is_integer(st) ? (int)json_integer_value(st) : 200;
    if (status < 200 || status > 599)
        status = 200;
    const char *ct = json_string_value(json_object_get(rsp, "content_type"));
    if (!ct || !*ct)
        ct = "application/json";
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(rsp, "headers"), k, v) {
        /* core.respond checked them; one the server manages is dropped. */
        if (json_is_string(v))
            http_add_header(req, k, json_string_value(v));
    }
    json_t *body = json_object_get(rsp, "body");
    if (json_is_string(body)) {
        http_respond_text(req, status, ct, json_string_value(body),
                          json_string_length(body));
    } else if (!body) {
        http_respond_text(req, status, ct, "", 0);
    } else {
        char *t = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        http_respond_text(req, status, ct, t ? t : "null", t ? strlen(t) : 4);
        free(t);
    }
}

static void on_sync_done(void *ud, run *r, const char *status,
                         const char *output_json, const char *error) {
    (void)r;
    sync_wait *w = ud;
    w->r = NULL;
    if (!strcmp(status, "succeeded")) {
        json_error_t e;
        json_t *out =
            output_json ? json_loads(output_json, JSON_DECODE_ANY, &e) : NULL;
        json_t *rsp = json_object_get(out, "$respond");
        if (json_is_object(rsp) && json_object_size(out) == 1) {
            respond_with(w->req, rsp);
            json_decref(out);
        } else if (out || !output_json)
            http_respond_json(w->req, 200, out ? out : json_null());
        else /* cut at max_recorded: not JSON any more */
            http_respond_json(
                w->req, 500,
                json_pack("{s:s, s:s, s:s}", "error",
                          "the output is larger than the host's max_recorded "
                          "and was not kept whole",
                          "id", w->id, "status", status));
    } else {
        http_respond_json(w->req, 500,
                          json_pack("{s:s, s:s, s:s}", "error",
                                    error ? error : "the execution failed",
                                    "id", w->id, "status", status));
    }
    wait_end(w);
}

static void on_sync_timeout(uv_timer_t *t) {
    sync_wait *w = t->data;
    if (w->r) {
        w->r->on_done = NULL; /* the execution goes on */
        w->r = NULL;
    }
    /* Past the deadline the request is answered as an async one would
     * be: accepted, with the id to follow the execution by. */
    http_respond_json(w->req, 202,
                      json_pack("{s:s, s:s, s:s}", "execution_id", w->id, "id",
                                w->id, "status", "running"));
    wait_end(w);
}

static void on_sync_enqueued(void *ud, const char *id, int status,
                             const char *err) {
    sync_wait *w = ud;
    if (!id) {
        http_respond_error(w->req, status, "%s", err ? err : "unknown error");
        free(w);
        return;
    }
    snprintf(w->id, sizeof(w->id), "%s", id);
    if (status == 200) { /* a duplicate: nothing new runs */
        on_async_enqueued(w->req, id, status, err);
        free(w);
        return;
    }
    run *r = host_find_run(w->h, id);
    if (!r || http_req_gone(w->req)) {
        http_respond_json(w->req, 202,
                          json_pack("{s:s, s:s, s:s}", "execution_id", id, "id",
                                    id, "status", "queued"));
        free(w);
        return;
    }
    w->r = r;
    r->on_done = on_sync_done;
    r->on_done_ud = w;
    uv_timer_init(w->h->loop, &w->timer);
    w->timer.data = w;
    w->timer_started = 1;
    uv_timer_start(&w->timer, on_sync_timeout, w->timeout_ms, 0);
}

static void refuse(host *h, http_req *r, const deployment *dp, const char *flow,
                   const char *scheme, const webhook_result *res) {
    const char *fail = webhook_failure_name(res->failure);
    metrics_add(h->m, "ferry_webhook_rejected_total", 1, "reason", fail, NULL);
    host_log(h, "warn",
             json_pack("{s:s, s:s, s:s, s:s, s:s}", "instance", dp->instance,
                       "flow", flow, "scheme", scheme, "failure", fail,
                       "reason", res->reason ? res->reason : "refused"),
             "webhook refused");
    http_respond_json(
        r, 401,
        json_pack("{s:s}", "error", res->reason ? res->reason : "refused"));
}

void host_webhook_handler(void *ud, http_req *r) {
    host *h = ud;
    const char *name = http_req_param(r, "instance");
    const char *flow = http_req_param(r, "flow");
    deployment *dp = name ? deploy_table_get(h->deps, name) : NULL;
    const flow_def *f = dp && flow ? flow_find(dp->ig, flow) : NULL;
    const char *tt =
        f ? json_string_value(json_object_get(f->trigger, "type")) : NULL;
    if (!f || !tt || strcmp(tt, "webhook")) {
        http_respond_error(r, 404, "no webhook flow here");
        return;
    }
    const char *method = http_req_method(r);
    if (!method_allowed(f->trigger, method)) {
        http_respond_error(r, 405, "method %s is not allowed for this webhook",
                           method);
        return;
    }
    if (h->stopping) {
        http_respond_error(r, 503, "the host is shutting down");
        return;
    }
    size_t len = 0;
    const void *body = http_req_body(r, &len);
    if (check_limits(h, r, dp, flow, f->trigger, len))
        return;

    const webhook_verifier *v = NULL;
    json_t *verify = json_object_get(f->trigger, "verify");
    if (verify) {
        char err[256];
        v = verifier_of(dp, flow, verify, err, sizeof(err));
        if (!v) {
            host_log(
                h, "error",
                json_pack("{s:s, s:s}", "instance", dp->instance, "flow", flow),
                "webhook misconfigured: %s", err);
            http_respond_error(r, 500, "the webhook is misconfigured");
            return;
        }
        /* The HTTP layer gives query parameters by name: the verifier gets
         * the ones the schemes read. */
        char query[4096] = "";
        const char *c = http_req_query(r, "challenge");
        if (c)
            query_add(query, sizeof(query), "challenge", c);
        const char *qn = webhook_verifier_secret_query(v);
        const char *qv = qn ? http_req_query(r, qn) : NULL;
        if (qv)
            query_add(query, sizeof(query), qn, qv);
        webhook_request wr = {.method = method,
                              .path = http_req_path(r),
                              .query = query,
                              .body = body,
                              .body_len = len,
                              .header = req_header,
                              .ud = r,
                              .now_s = store_now_us() / 1000000};
        webhook_result res = {0};
        int rc = webhook_verify(v, &wr, &res);
        if (rc == FERRY_EAUTH) {
            refuse(h, r, dp, flow, webhook_verifier_scheme(v), &res);
            webhook_result_clear(&res);
            return;
        }
        if (rc) {
            http_respond_error(r, 500, "verification failed: %s",
                               ferry_strerror(rc));
            webhook_result_clear(&res);
            return;
        }
        if (res.respond.status) {
            /* A handshake: answered here, no execution. */
            for (size_t i = 0; i < res.respond.nheaders; i++)
                http_add_header(r, res.respond.headers[i].name,
                                res.respond.headers[i].value);
            http_respond_text(
                r, res.respond.status,
                res.respond.content_type ? res.respond.content_type
                                         : "text/plain",
                res.respond.body ? res.respond.body : "", res.respond.body_len);
            webhook_result_clear(&res);
            return;
        }
        webhook_result_clear(&res);
    }

    json_t *trigger = payload(r, v, body, len);
    if (!trigger) {
        http_respond_error(r, 500, "out of memory");
        return;
    }
    char key[1024], derr[200];
    uint64_t window_ms = 0;
    int has_key = dedupe_key(r, f->trigger, json_object_get(trigger, "body"),
                             key, sizeof(key), &window_ms, derr, sizeof(derr));
    if (has_key < 0) {
        json_decref(trigger);
        host_log(
            h, "error",
            json_pack("{s:s, s:s}", "instance", dp->instance, "flow", flow),
            "webhook misconfigured: %s", derr);
        http_respond_error(r, 500, "the webhook is misconfigured");
        return;
    }
    const char *dkey = has_key > 0 ? key : NULL;
    int64_t window_start = store_now_us() - (int64_t)window_ms * 1000;
    const char *mode =
        json_string_value(json_object_get(f->trigger, "response"));
    if (mode && !strcmp(mode, "sync")) {
        sync_wait *w = calloc(1, sizeof(*w));
        if (!w) {
            json_decref(trigger);
            http_respond_error(r, 500, "out of memory");
            return;
        }
        w->h = h;
        w->req = r;
        json_t *to = json_object_get(f->trigger, "timeout");
        w->timeout_ms = to ? parse_timeout_ms(to) : SYNC_TIMEOUT_DEFAULT_MS;
        if (!w->timeout_ms)
            w->timeout_ms = SYNC_TIMEOUT_DEFAULT_MS;
        host_enqueue_dedupe(h, dp, flow, trigger, dkey, window_start,
                            on_sync_enqueued, w);
    } else {
        host_enqueue_dedupe(h, dp, flow, trigger, dkey, window_start,
                            on_async_enqueued, r);
    }
    json_decref(trigger);
}
