/*
 * The Slack Web API as the actions call it: one method per call, through
 * the host's HTTP helper so that the step's connection (a bot token, or an
 * OAuth 2.0 token from the host's token service) is applied by the host.
 *
 * What a call's outcome means:
 * - HTTP 200 with a JSON object: "ok": true is success; "ok": false is a
 *   failure named after the method and Slack's error code (Slack reports
 *   method-level failures this way, never with an HTTP error status).
 *   Whether it is retryable depends on the code (table below): rate limits
 *   and Slack's own transient errors are, everything about the request,
 *   the channel or the credentials is not.
 * - 429 (and 503) with Retry-After: wait and send again, within the
 *   action's max_retry_after and retry_after_attempts; beyond them the step
 *   fails, retryable, saying how long Slack asked to wait.
 * - 5xx: retryable. Other statuses: not, unless they are 408.
 * - Credentials never reach a message: messages carry the method, the
 *   status and Slack's error code, never the request.
 */
#include "slack_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Web API answers above this size would become blobs; a page of 1000
 * channels is well under it. */
#define SLACK_MAX_INLINE "64MiB"

/* ---- options ---- */

/* A duration as definitions write them ("500ms", "30s", "2m", "1h", or
 * whole milliseconds). Returns 0 or -1. */
static int duration_ms(const json_t *v, uint64_t *out) {
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    uint64_t f = !*end                ? 1
                 : !strcmp(end, "ms") ? 1
                 : !strcmp(end, "s")  ? 1000
                 : !strcmp(end, "m")  ? 60000
                 : !strcmp(end, "h")  ? 3600000
                                      : 0;
    if (!f || n > UINT64_MAX / f)
        return -1;
    *out = n * f;
    return 0;
}

int slack_opts_read(ferry_ctx *ctx, const json_t *input, slack_opts *o) {
    const ferry_api *api = slack_api;
    if (!FERRY_API_HAS(api, http_request))
        return api->set_error(ctx, FERRY_EUNSUPPORTED, 0,
                              "this host has no HTTP helper (the slack "
                              "component needs ferry ABI 1.1 or newer)");
    o->timeout = json_object_get(input, "timeout");
    if (json_is_null(o->timeout))
        o->timeout = NULL;
    o->max_wait_ms = 60000;
    const json_t *mw = json_object_get(input, "max_retry_after");
    if (mw && !json_is_null(mw) && duration_ms(mw, &o->max_wait_ms))
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "'max_retry_after' must be a duration "
                              "(\"60s\", \"2m\") or whole milliseconds");
    const json_t *ra = json_object_get(input, "retry_after_attempts");
    o->attempts = json_is_integer(ra) ? json_integer_value(ra) : 3;
    if (o->attempts < 0)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "'retry_after_attempts' must not be negative");
    return FERRY_OK;
}

void slack_copy(json_t *obj, const json_t *input, const char *name) {
    json_t *v = json_object_get(input, name);
    if (v && !json_is_null(v))
        json_object_set(obj, name, v);
}

/* ---- Retry-After ---- */

/* Waits ms in short naps so that a cancellation is noticed. Returns 0, or
 * 1 if the execution was cancelled meanwhile. */
static int wait_ms(ferry_ctx *ctx, int64_t ms) {
    struct timespec end, now;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += ms / 1000;
    end.tv_nsec += (ms % 1000) * 1000000;
    if (end.tv_nsec >= 1000000000) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000;
    }
    for (;;) {
        if (slack_api->cancelled(ctx))
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t left = (int64_t)(end.tv_sec - now.tv_sec) * 1000 +
                       (end.tv_nsec - now.tv_nsec) / 1000000;
        if (left <= 0)
            return 0;
        struct timespec nap = {0, (left < 50 ? left : 50) * 1000000};
        nanosleep(&nap, NULL);
    }
}

int slack_send(ferry_ctx *ctx, const char *what, const json_t *request,
               const slack_opts *o, json_t **resp, char *note, size_t notelen) {
    const ferry_api *api = slack_api;
    *resp = NULL;
    note[0] = 0;
    for (json_int_t waited = 0;; waited++) {
        json_t *r = NULL;
        int rc = api->http_request(ctx, request, &r);
        if (rc)
            return rc;
        long status = (long)json_integer_value(json_object_get(r, "status"));
        const json_t *wj = json_object_get(r, "retry_after_ms");
        if ((status != 429 && status != 503) || !json_is_integer(wj)) {
            *resp = r;
            return FERRY_OK;
        }
        int64_t w = (int64_t)json_integer_value(wj);
        if ((uint64_t)w > o->max_wait_ms) {
            snprintf(note, notelen,
                     "Retry-After %lld s is more than max_retry_after, "
                     "%llu s",
                     (long long)(w + 999) / 1000,
                     (unsigned long long)(o->max_wait_ms + 999) / 1000);
        } else if (waited >= o->attempts) {
            snprintf(note, notelen,
                     "still after %lld waits for Retry-After, which now "
                     "asks for %lld s",
                     (long long)waited, (long long)(w + 999) / 1000);
        } else {
            api->log(ctx, FERRY_LOG_INFO,
                     json_pack("{s:i, s:I}", "status", (int)status,
                               "retry_after_ms", (json_int_t)w),
                     "%s: HTTP %ld, waiting %lld ms (Retry-After) before "
                     "attempt %lld of %lld",
                     what, status, (long long)w, (long long)waited + 2,
                     (long long)o->attempts + 1);
            json_decref(r);
            if (wait_ms(ctx, w))
                return api->set_error(ctx, FERRY_ECANCELLED, 0,
                                      "%s: cancelled while waiting for "
                                      "Retry-After",
                                      what);
            continue;
        }
        api->log(ctx, FERRY_LOG_WARN,
                 json_pack("{s:i, s:I}", "status", (int)status,
                           "retry_after_ms", (json_int_t)w),
                 "%s: HTTP %ld, not waiting: %s", what, status, note);
        *resp = r;
        return FERRY_OK;
    }
}

/* ---- statuses ---- */

static int status_code(long status) {
    switch (status) {
    case 400:
        return FERRY_EINVAL;
    case 401:
        return FERRY_EAUTH;
    case 403:
        return FERRY_EPERM;
    case 404:
    case 410:
        return FERRY_ENOTFOUND;
    case 408:
    case 504:
        return FERRY_ETIMEOUT;
    case 413:
        return FERRY_ETOOBIG;
    case 429:
        return FERRY_ERATELIMIT;
    case 502:
    case 503:
        return FERRY_EUNAVAIL;
    default:
        return FERRY_EREMOTE;
    }
}

static int status_retryable(long status) {
    return status >= 500 || status == 408 || status == 429;
}

int slack_fail_status(ferry_ctx *ctx, const char *what, long status,
                      const char *detail, const char *note) {
    int has_note = note && *note;
    return slack_api->set_error(
        ctx, status_code(status), status_retryable(status),
        "%s: HTTP %ld%s%s%s%s%s", what, status, detail && *detail ? " " : "",
        detail ? detail : "", has_note ? " (" : "", has_note ? note : "",
        has_note ? ")" : "");
}

/* ---- Slack's error codes ---- */

typedef struct error_kind {
    const char *error;
    int code;
    int retryable;
    const char *hint; /* said after the code, or NULL */
} error_kind;

/* Codes from the methods' documentation. Anything not listed is a
 * permanent remote error, except "invalid_*" codes, which are about the
 * request. */
static const error_kind error_kinds[] = {
    {"ratelimited", FERRY_ERATELIMIT, 1, "Slack's rate limit"},
    {"rate_limited", FERRY_ERATELIMIT, 1, "Slack's rate limit"},
    {"internal_error", FERRY_EUNAVAIL, 1, "a transient error at Slack"},
    {"fatal_error", FERRY_EUNAVAIL, 1, "a transient error at Slack"},
    {"service_unavailable", FERRY_EUNAVAIL, 1, NULL},
    {"request_timeout", FERRY_ETIMEOUT, 1, NULL},
    {"team_added_to_org", FERRY_EUNAVAIL, 1,
     "the workspace is migrating; the API is intermittently unavailable"},
    {"invalid_auth", FERRY_EAUTH, 0,
     "the connection's token is not valid for this workspace"},
    {"not_authed", FERRY_EAUTH, 0, "no token was sent"},
    {"account_inactive", FERRY_EAUTH, 0,
     "the token belongs to a deactivated user or app"},
    {"token_revoked", FERRY_EAUTH, 0,
     "the token was revoked: install the app again"},
    {"token_expired", FERRY_EAUTH, 0, "the token has expired"},
    {"no_permission", FERRY_EPERM, 0, NULL},
    {"missing_scope", FERRY_EPERM, 0, NULL},
    {"not_allowed_token_type", FERRY_EPERM, 0,
     "this method does not take this kind of token"},
    {"restricted_action", FERRY_EPERM, 0, "a workspace preference forbids it"},
    {"ekm_access_denied", FERRY_EPERM, 0, NULL},
    {"access_denied", FERRY_EPERM, 0, NULL},
    {"channel_not_found", FERRY_ENOTFOUND, 0,
     "no such channel, or a private one the app is not in"},
    {"not_in_channel", FERRY_EPERM, 0,
     "the app is not a member of the channel: invite it, or give it "
     "chat:write.public for public channels"},
    {"is_archived", FERRY_EREMOTE, 0, "the channel is archived"},
    {"msg_too_long", FERRY_ETOOBIG, 0, NULL},
    {"no_text", FERRY_EINVAL, 0, "give text, blocks or attachments"},
    {"too_many_attachments", FERRY_EINVAL, 0, NULL},
    {"file_not_found", FERRY_ENOTFOUND, 0, NULL},
    {"user_not_found", FERRY_ENOTFOUND, 0, NULL},
    {"method_deprecated", FERRY_EUNSUPPORTED, 0, NULL},
    {"deprecated_endpoint", FERRY_EUNSUPPORTED, 0, NULL},
    {"unknown_method", FERRY_EUNSUPPORTED, 0, NULL},
    {NULL, 0, 0, NULL}};

static error_kind kind_of(const char *error) {
    for (const error_kind *k = error_kinds; k->error; k++)
        if (!strcmp(k->error, error))
            return *k;
    error_kind k = {error, FERRY_EREMOTE, 0, NULL};
    if (!strncmp(error, "invalid_", 8))
        k.code = FERRY_EINVAL;
    return k;
}

/* Appends up to three of response_metadata.messages (Slack's details of
 * invalid_arguments and the like) to buf. */
static void add_messages(char *buf, size_t n, const json_t *answer) {
    const json_t *m = json_object_get(
        json_object_get(answer, "response_metadata"), "messages");
    size_t i;
    json_t *e;
    json_array_foreach(m, i, e) {
        size_t len = strlen(buf);
        if (i >= 3 || !json_is_string(e) || len + 8 >= n)
            break;
        snprintf(buf + len, n - len, "%s%s", i ? "; " : ": ",
                 json_string_value(e));
    }
}

/* Adds one detail to a list in parentheses: " (a", "; b", ... */
static void detail(char *buf, size_t n, const char *text) {
    size_t len = strlen(buf);
    if (text && *text && len + 4 < n)
        snprintf(buf + len, n - len, "%s%s", len ? "; " : " (", text);
}

/* Records the failure of an answer with "ok": false (or an HTTP error with
 * a Slack error code): "<method>: <error> (<details>)[: <Slack's
 * messages>]". The status is a detail when it is not 200. */
static int fail_answer(ferry_ctx *ctx, const char *method, const json_t *answer,
                       long status, const char *note) {
    const char *error = json_string_value(json_object_get(answer, "error"));
    error_kind k = kind_of(error ? error : "unknown_error");
    if (status >= 500 || status == 429) {
        k.retryable = 1;
        if (k.code == FERRY_EREMOTE || k.code == FERRY_EINVAL)
            k.code = status == 429 ? FERRY_ERATELIMIT : FERRY_EUNAVAIL;
    }
    char d[600] = "", text[200];
    if (status != 200) {
        snprintf(text, sizeof(text), "HTTP %ld", status);
        detail(d, sizeof(d), text);
    }
    if (!strcmp(k.error, "missing_scope")) {
        const char *needed =
            json_string_value(json_object_get(answer, "needed"));
        const char *provided =
            json_string_value(json_object_get(answer, "provided"));
        snprintf(text, sizeof(text), "the token lacks a scope%s%s%s%s",
                 needed ? ": needed " : "", needed ? needed : "",
                 provided ? ", provided " : "", provided ? provided : "");
        detail(d, sizeof(d), text);
    } else {
        detail(d, sizeof(d), k.hint);
    }
    detail(d, sizeof(d), note);
    if (d[0] && strlen(d) + 1 < sizeof(d))
        strcat(d, ")");
    add_messages(d, sizeof(d), answer);
    return slack_api->set_error(ctx, k.code, k.retryable, "%s: %s%s", method,
                                error ? error : "ok is false", d);
}

/* Logs Slack's warnings on a successful answer ("missing_charset",
 * deprecations, ...). */
static void log_warnings(ferry_ctx *ctx, const char *method,
                         const json_t *answer) {
    const char *w = json_string_value(json_object_get(answer, "warning"));
    if (!w)
        return;
    json_t *all = json_object_get(json_object_get(answer, "response_metadata"),
                                  "warnings");
    slack_api->log(ctx, FERRY_LOG_WARN,
                   all ? json_pack("{s:O}", "warnings", all) : NULL,
                   "%s: Slack warns: %s", method, w);
}

/* ---- the call ---- */

/* Form and query values: Slack takes arrays and objects (blocks, files)
 * as JSON text. Returns a new object, or NULL on out of memory. */
static json_t *flat_args(const json_t *args) {
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)args, k, v) {
        if (!out)
            break;
        if (json_is_null(v))
            continue;
        if (json_is_object(v) || json_is_array(v)) {
            char *text = json_dumps(v, JSON_COMPACT);
            if (!text) {
                json_decref(out);
                return NULL;
            }
            json_object_set_new(out, k, json_string(text));
            free(text);
        } else {
            json_object_set(out, k, v);
        }
    }
    return out;
}

/* The base URL of the Web API for the step's connection into buf. Returns
 * FERRY_OK or an error recorded. */
static int base_url(ferry_ctx *ctx, const char *method, char *buf, size_t n) {
    const ferry_api *api = slack_api;
    const json_t *conn = api->connection(ctx);
    if (!conn)
        return api->set_error(ctx, FERRY_ECONFIG, 0,
                              "%s: the step needs a connection of type "
                              "slack.bot or slack.oauth2",
                              method);
    const char *name = json_string_value(json_object_get(conn, "name"));
    const char *type = json_string_value(json_object_get(conn, "type"));
    if (type && !strcmp(type, "slack.webhook"))
        return api->set_error(ctx, FERRY_ECONFIG, 0,
                              "%s: connection '%s' is an incoming webhook "
                              "(slack.webhook), which only posts messages "
                              "(slack.webhook_post); Web API methods need "
                              "slack.bot or slack.oauth2",
                              method, name ? name : "?");
    const char *u = json_string_value(
        json_object_get(json_object_get(conn, "fields"), "api_url"));
    if (!u || !*u)
        u = SLACK_DEFAULT_API_URL;
    size_t len = strlen(u);
    while (len && u[len - 1] == '/')
        len--;
    if (len + strlen(method) + 2 > n)
        return api->set_error(ctx, FERRY_ECONFIG, 0,
                              "%s: connection '%s': api_url is too long",
                              method, name ? name : "?");
    memcpy(buf, u, len);
    buf[len] = '/';
    memcpy(buf + len + 1, method, strlen(method) + 1);
    return FERRY_OK;
}

int slack_call(ferry_ctx *ctx, const char *method, const json_t *args,
               slack_enc enc, const slack_opts *o, json_t **answer) {
    const ferry_api *api = slack_api;
    *answer = NULL;
    char url[2048];
    int rc = base_url(ctx, method, url, sizeof(url));
    if (rc)
        return rc;
    json_t *req = json_pack("{s:s, s:s, s:s, s:s}", "method",
                            enc == SLACK_QUERY ? "GET" : "POST", "url", url,
                            "as", "auto", "max_inline", SLACK_MAX_INLINE);
    if (!req)
        return api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
    if (o->timeout)
        json_object_set(req, "timeout", o->timeout);
    if (enc == SLACK_JSON) {
        json_t *body = json_object();
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)args, k, v) {
            if (body && !json_is_null(v))
                json_object_set(body, k, v);
        }
        json_object_set_new(req, "json", body);
        /* Slack asks for the charset on JSON bodies, and warns without
         * it. */
        json_object_set_new(req, "headers",
                            json_pack("{s:s}", "Content-Type",
                                      "application/json; charset=utf-8"));
    } else {
        json_t *flat = flat_args(args);
        if (!flat) {
            json_decref(req);
            return api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
        }
        json_object_set_new(req, enc == SLACK_FORM ? "form" : "query", flat);
    }

    json_t *resp = NULL;
    char note[160];
    rc = slack_send(ctx, method, req, o, &resp, note, sizeof(note));
    json_decref(req);
    if (rc)
        return rc;
    long status = (long)json_integer_value(json_object_get(resp, "status"));
    json_t *body = json_object_get(resp, "body");
    int is_answer = json_is_object(body) && !json_object_get(body, "$blob") &&
                    json_is_boolean(json_object_get(body, "ok"));
    if (status == 200 && is_answer) {
        if (json_is_true(json_object_get(body, "ok"))) {
            log_warnings(ctx, method, body);
            *answer = json_incref(body);
            json_decref(resp);
            return FERRY_OK;
        }
        rc = fail_answer(ctx, method, body, status, note);
    } else if (is_answer && json_object_get(body, "error")) {
        rc = fail_answer(ctx, method, body, status, note);
    } else if (status == 200) {
        const char *ct = json_string_value(
            json_object_get(json_object_get(resp, "headers"), "content-type"));
        rc = api->set_error(ctx, FERRY_EPROTO, 1,
                            "%s: HTTP 200 without a Slack answer (a %s "
                            "body, not a JSON object with \"ok\")",
                            method, ct ? ct : "untyped");
    } else {
        rc = slack_fail_status(ctx, method, status, "", note);
    }
    json_decref(resp);
    return rc;
}
