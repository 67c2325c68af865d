/*
 * http.request: the host's helper does the exchange; this file decides what
 * a status means for the step.
 *
 * - 1xx-3xx: the response is the output.
 * - 4xx/5xx: the step fails with the status, its reason and a short excerpt
 *   of the body, unless fail_on_status is false (then it is the output).
 *   408, 429 and 5xx failures are retryable, other 4xx are not.
 * - 429 and 503 with a Retry-After the helper could read: wait that long
 *   and send again, when the wait is at most max_retry_after, up to
 *   retry_after_attempts times, watching for cancellation while waiting.
 *   Otherwise the step fails (retryable) and the message says how long the
 *   server asked to wait, so the host's retry can take it into account.
 * - Credentials never reach a message: the excerpt is scrubbed of the
 *   connection's secret fields and of anything after "Bearer " or
 *   "Basic ".
 */
#include "http_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define EXCERPT 200

/* Inputs that are this action's own, not the helper's. */
static const char *const own_inputs[] = {"fail_on_status", "max_retry_after",
                                         "retry_after_attempts", NULL};

/* Connection fields whose values are secrets. */
static const char *const secret_fields[] = {
    "password", "token", "key", "client_secret", "refresh_token", NULL};

/* A duration as definitions write them ("500ms", "30s", "15m", "2h", or
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

static const char *reason(long status) {
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status >= 500 ? "Server Error" : "Client Error";
    }
}

static int status_code(long status) {
    switch (status) {
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

static int retryable(long status) {
    return status >= 500 || status == 408 || status == 429;
}

/* ---- scrubbing secrets out of text ---- */

static void base64(const char *in, size_t n, char *out) {
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = 0;
}

/* Replaces every occurrence of secret in text (in place) with "***". */
static void scrub_one(char *text, const char *secret) {
    size_t n = secret ? strlen(secret) : 0;
    if (n < 3)
        return; /* too short to tell from ordinary text */
    char *p;
    while ((p = strstr(text, secret))) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + n, strlen(p + n) + 1);
    }
}

/* Masks the credential after each "Bearer " or "Basic " (any case). */
static void scrub_schemes(char *text) {
    static const char *const schemes[] = {"bearer ", "basic ", NULL};
    for (int i = 0; schemes[i]; i++) {
        size_t sl = strlen(schemes[i]);
        for (char *p = text; (p = strcasestr(p, schemes[i]));) {
            char *v = p + sl, *e = v;
            while (*e && !strchr(" \t\"',;}]\\", *e))
                e++;
            if (e > v) {
                memcpy(v, "***", 3 < e - v ? 3 : (size_t)(e - v));
                if (e - v > 3)
                    memmove(v + 3, e, strlen(e) + 1);
            }
            p = v;
        }
    }
}

static void scrub(ferry_ctx *ctx, char *text) {
    const json_t *conn = http_api->connection(ctx);
    const json_t *fields = json_object_get(conn, "fields");
    for (int i = 0; fields && secret_fields[i]; i++)
        scrub_one(text,
                  json_string_value(json_object_get(fields, secret_fields[i])));
    const char *u = json_string_value(json_object_get(fields, "username"));
    const char *p = json_string_value(json_object_get(fields, "password"));
    if (u && p) {
        char pair[512], b64[700];
        int n = snprintf(pair, sizeof(pair), "%s:%s", u, p);
        if (n > 0 && (size_t)n < sizeof(pair)) {
            base64(pair, (size_t)n, b64);
            scrub_one(text, b64);
        }
    }
    scrub_schemes(text);
}

/* A one-line excerpt of the body for a message (buf of EXCERPT + 64). */
static void excerpt(ferry_ctx *ctx, const json_t *body, char *buf, size_t n) {
    buf[0] = 0;
    if (!body || json_is_null(body))
        return;
    if (json_is_object(body) && json_object_get(body, "$blob")) {
        snprintf(buf, n, ": (%lld bytes of %s in a blob)",
                 (long long)json_integer_value(json_object_get(body, "size")),
                 json_string_value(json_object_get(body, "content_type"))
                     ? json_string_value(json_object_get(body, "content_type"))
                     : "data");
        return;
    }
    char *text = json_is_string(body)
                     ? strdup(json_string_value(body))
                     : json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return;
    scrub(ctx, text);
    /* One line, spaces collapsed, cut at a character boundary. */
    size_t o = 0, i = 0, len = strlen(text);
    int space = 1;
    buf[o++] = ':';
    buf[o++] = ' ';
    for (; i < len && o < EXCERPT; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c <= ' ' || c == 0x7f) {
            if (!space)
                buf[o++] = ' ';
            space = 1;
            continue;
        }
        space = 0;
        buf[o++] = (char)c;
    }
    int cut = i < len;
    if (cut) {
        /* Drop a character cut in two: its continuation bytes, then its
         * lead byte. */
        while (o > 2 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80)
            o--;
        if (o > 2 && (unsigned char)buf[o - 1] >= 0xC0)
            o--;
    }
    while (o > 2 && buf[o - 1] == ' ')
        o--;
    buf[o] = 0;
    if (o == 2)
        buf[0] = 0;
    else if (cut && o + 4 < n)
        strcat(buf, "...");
    free(text);
}

/* Waits ms, in short naps so that a cancellation is noticed. Returns 0, or
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
        if (http_api->cancelled(ctx))
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

static int fail_status(ferry_ctx *ctx, const char *method, json_t *resp,
                       const char *extra) {
    long status = (long)json_integer_value(json_object_get(resp, "status"));
    const char *url = json_string_value(json_object_get(resp, "url"));
    char ex[EXCERPT + 64];
    excerpt(ctx, json_object_get(resp, "body"), ex, sizeof(ex));
    int rc = http_api->set_error(ctx, status_code(status), retryable(status),
                                 "HTTP %ld %s from %s %s%s%s", status,
                                 reason(status), method, url ? url : "",
                                 extra ? extra : "", ex);
    json_decref(resp);
    return rc;
}

int http_request_run(ferry_ctx *ctx, const json_t *input) {
    const ferry_api *api = http_api;
    if (!FERRY_API_HAS(api, http_request))
        return api->set_error(ctx, FERRY_EUNSUPPORTED, 0,
                              "this host has no HTTP helper (it needs ferry "
                              "ABI 1.1 or newer)");
    const json_t *f = json_object_get(input, "fail_on_status");
    int fail_on_status = !json_is_false(f);
    uint64_t max_wait = 60000;
    const json_t *mw = json_object_get(input, "max_retry_after");
    if (mw && !json_is_null(mw) && duration_ms(mw, &max_wait))
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "'max_retry_after' must be a duration "
                              "(\"60s\", \"2m\") or whole milliseconds");
    const json_t *ra = json_object_get(input, "retry_after_attempts");
    json_int_t attempts = json_is_integer(ra) ? json_integer_value(ra) : 3;
    if (attempts < 0)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "'retry_after_attempts' must not be negative");
    const json_t *m = json_object_get(input, "method");
    char method[32] = "GET";
    if (json_is_string(m))
        for (size_t i = 0; i + 1 < sizeof(method); i++) {
            char c = json_string_value(m)[i];
            method[i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
            if (!c)
                break;
        }

    json_t *req = json_copy((json_t *)input);
    if (!req)
        return api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
    for (int i = 0; own_inputs[i]; i++)
        json_object_del(req, own_inputs[i]);

    for (json_int_t waited = 0;; waited++) {
        json_t *resp = NULL;
        int rc = api->http_request(ctx, req, &resp);
        if (rc) {
            json_decref(req);
            return rc; /* the helper recorded the error */
        }
        long status = (long)json_integer_value(json_object_get(resp, "status"));
        const json_t *wj = json_object_get(resp, "retry_after_ms");
        if ((status == 429 || status == 503) && json_is_integer(wj)) {
            int64_t w = (int64_t)json_integer_value(wj);
            const char *url = json_string_value(json_object_get(resp, "url"));
            char extra[160];
            if ((uint64_t)w <= max_wait && waited < attempts) {
                api->log(ctx, FERRY_LOG_INFO,
                         json_pack("{s:i, s:I}", "status", (int)status,
                                   "retry_after_ms", (json_int_t)w),
                         "HTTP %ld from %s %s: waiting %lld ms (Retry-After) "
                         "before attempt %lld of %lld",
                         status, method, url ? url : "", (long long)w,
                         (long long)waited + 2, (long long)attempts + 1);
                json_decref(resp);
                if (wait_ms(ctx, w)) {
                    json_decref(req);
                    return api->set_error(ctx, FERRY_ECANCELLED, 0,
                                          "cancelled while waiting for "
                                          "Retry-After");
                }
                continue;
            }
            if ((uint64_t)w > max_wait)
                snprintf(extra, sizeof(extra),
                         " (Retry-After %lld s is more than max_retry_after, "
                         "%llu s)",
                         (long long)(w + 999) / 1000,
                         (unsigned long long)(max_wait + 999) / 1000);
            else
                snprintf(extra, sizeof(extra),
                         " (still after %lld waits for Retry-After; it now "
                         "asks for %lld s)",
                         (long long)waited, (long long)(w + 999) / 1000);
            if (fail_on_status) {
                api->log(ctx, FERRY_LOG_WARN,
                         json_pack("{s:i, s:I}", "status", (int)status,
                                   "retry_after_ms", (json_int_t)w),
                         "HTTP %ld from %s %s: not waiting%s", status, method,
                         url ? url : "", extra);
                json_decref(req);
                return fail_status(ctx, method, resp, extra);
            }
        }
        json_decref(req);
        if (status >= 400 && fail_on_status)
            return fail_status(ctx, method, resp, NULL);
        return api->set_output(ctx, resp);
    }
}
