/*
 * Calling the Dropbox API through the host's HTTP helper, and what a
 * status means for the step.
 *
 * - 200: the result (RPC and upload: the JSON body; download: the
 *   Dropbox-API-Result header, the bytes in a blob).
 * - 409: the route's own error. The structured "error" is walked into its
 *   tags ("path/not_found", "to/conflict/file") for the message and the
 *   code: not_found is FERRY_ENOTFOUND, conflict FERRY_EEXISTS, and so on;
 *   only too_many_write_operations, internal_error, locked and
 *   content_hash_mismatch are retryable.
 * - 429: wait for Retry-After (or the body's retry_after) and send again,
 *   up to DBX_RATE_WAITS times and DBX_MAX_WAIT_MS per wait; then the step
 *   fails, retryable, naming the wait asked for.
 * - 5xx: retryable (the host's retry decides); repeated here only for
 *   requests marked retry_failures (upload session chunks).
 * - 400 (plain text: a malformed request), 401 (the token: with an oauth2
 *   connection the helper already refreshed once), 403: not retryable.
 */
#include "dropbox_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DBX_RATE_WAITS 3
#define DBX_MAX_WAIT_MS 60000
#define EXCERPT 200

void dbx_res_clear(dbx_res *res) {
    json_decref(res->result);
    json_decref(res->blob);
    res->result = res->blob = NULL;
}

void dbx_err_clear(dbx_err *e) {
    json_decref(e->error);
    memset(e, 0, sizeof(*e));
}

int dbx_fail(ferry_ctx *ctx, dbx_err *e) {
    int code = e->code ? e->code : FERRY_EREMOTE;
    if (!e->recorded)
        dbx_api->set_error(ctx, code, e->retryable, "%s", e->message);
    dbx_err_clear(e);
    return code;
}

int dbx_oom(ferry_ctx *ctx) {
    return dbx_api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
}

int dbx_err_has(const dbx_err *e, const char *t) {
    size_t n = strlen(t);
    for (const char *p = e->tags; (p = strstr(p, t)); p += n)
        if ((p == e->tags || p[-1] == '/') && (p[n] == 0 || p[n] == '/'))
            return 1;
    return 0;
}

int dbx_ready(ferry_ctx *ctx, const char *action) {
    if (!FERRY_API_HAS(dbx_api, http_request))
        return dbx_api->set_error(ctx, FERRY_EUNSUPPORTED, 0,
                                  "%s: this host has no HTTP helper (it needs "
                                  "ferry ABI 1.1 or newer)",
                                  action);
    if (!dbx_api->connection(ctx))
        return dbx_api->set_error(ctx, FERRY_ECONFIG, 0,
                                  "%s needs a connection (dropbox.oauth2 or "
                                  "dropbox.token)",
                                  action);
    return FERRY_OK;
}

/* The base URL for a style: the connection's api_url / content_url, or
 * the real hosts; without a trailing '/'. */
static void base_url(ferry_ctx *ctx, dbx_style style, char *out, size_t n) {
    const json_t *fields = json_object_get(dbx_api->connection(ctx), "fields");
    const char *v = json_string_value(
        json_object_get(fields, style == DBX_RPC ? "api_url" : "content_url"));
    if (!v || !*v)
        v = style == DBX_RPC ? DBX_API_URL : DBX_CONTENT_URL;
    snprintf(out, n, "%s", v);
    size_t len = strlen(out);
    while (len && out[len - 1] == '/')
        out[--len] = 0;
}

/* Waits ms in short naps, watching for cancellation. Returns 1 if the
 * execution was cancelled meanwhile. */
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
        if (dbx_api->cancelled(ctx))
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

/* ---- reading an error ---- */

/* The tags of a structured error, joined with '/'. A union member whose
 * value is a union nests it under its name ({".tag": "path", "path":
 * {".tag": "not_found"}}); a struct value sits beside the tag, and a
 * member of it may be a union again ("reason" of an upload's path
 * error, "reason" of a 429). */
static void error_tags(const json_t *err, char *out, size_t n) {
    out[0] = 0;
    if (json_is_string(err)) {
        snprintf(out, n, "%s", json_string_value(err));
        return;
    }
    const json_t *node = err;
    for (int depth = 0; depth < 8 && json_is_object(node); depth++) {
        const char *tag = json_string_value(json_object_get(node, ".tag"));
        const json_t *next = NULL;
        if (tag) {
            size_t len = strlen(out);
            snprintf(out + len, n - len, "%s%s", len ? "/" : "", tag);
            next = json_object_get(node, tag);
        }
        if (!json_is_object(next)) {
            const char *k;
            json_t *v;
            next = NULL;
            json_object_foreach((json_t *)node, k, v) {
                if (json_is_object(v) && json_object_get(v, ".tag")) {
                    next = v;
                    break;
                }
            }
        }
        node = next;
    }
}

static const struct {
    const char *tag;
    int code;
    int retryable;
} tag_codes[] = {
    {"not_found", FERRY_ENOTFOUND, 0},
    {"conflict", FERRY_EEXISTS, 0},
    {"malformed_path", FERRY_EINVAL, 0},
    {"disallowed_name", FERRY_EINVAL, 0},
    {"not_file", FERRY_EINVAL, 0},
    {"not_folder", FERRY_EINVAL, 0},
    {"cant_move_folder_into_itself", FERRY_EINVAL, 0},
    {"cant_copy_shared_folder", FERRY_EINVAL, 0},
    {"duplicated_or_nested_paths", FERRY_EINVAL, 0},
    {"no_write_permission", FERRY_EPERM, 0},
    {"access_restricted", FERRY_EPERM, 0},
    {"restricted_content", FERRY_EPERM, 0},
    {"team_folder", FERRY_EPERM, 0},
    {"insufficient_space", FERRY_ETOOBIG, 0},
    {"insufficient_quota", FERRY_ETOOBIG, 0},
    {"payload_too_large", FERRY_ETOOBIG, 0},
    {"too_many_files", FERRY_ETOOBIG, 0},
    {"too_large", FERRY_ETOOBIG, 0},
    {"too_many_write_operations", FERRY_ERATELIMIT, 1},
    {"too_many_requests", FERRY_ERATELIMIT, 1},
    {"internal_error", FERRY_EREMOTE, 1},
    {"locked", FERRY_EREMOTE, 1},
    {"content_hash_mismatch", FERRY_EIO, 1},
    {"incorrect_offset", FERRY_EPROTO, 0},
    {"unsupported_file", FERRY_EUNSUPPORTED, 0},
    {"invalid_access_token", FERRY_EAUTH, 0},
    {"expired_access_token", FERRY_EAUTH, 0},
    {"missing_scope", FERRY_EPERM, 0},
    {"user_suspended", FERRY_EPERM, 0},
};

/* The code of a 409 from its tags: the deepest tag the table knows. */
static void code_of_tags(const char *tags, int *code, int *retryable) {
    *code = FERRY_EREMOTE;
    *retryable = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", tags);
    for (;;) {
        char *slash = strrchr(buf, '/');
        const char *leaf = slash ? slash + 1 : buf;
        for (size_t i = 0; i < sizeof(tag_codes) / sizeof(tag_codes[0]); i++)
            if (!strcmp(leaf, tag_codes[i].tag)) {
                *code = tag_codes[i].code;
                *retryable = tag_codes[i].retryable;
                return;
            }
        if (!slash)
            return;
        *slash = 0;
    }
}

/* A one-line excerpt of text into out. */
static void excerpt(const char *text, size_t len, char *out, size_t n) {
    size_t o = 0;
    int space = 1;
    for (size_t i = 0; i < len && o + 4 < n && o < EXCERPT; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c <= ' ' || c == 0x7f) {
            if (!space)
                out[o++] = ' ';
            space = 1;
            continue;
        }
        space = 0;
        out[o++] = (char)c;
    }
    while (o && out[o - 1] == ' ')
        o--;
    /* A character cut in two: drop its continuation and lead bytes. */
    size_t keep = o;
    while (keep && ((unsigned char)out[keep - 1] & 0xC0) == 0x80)
        keep--;
    if (keep && (unsigned char)out[keep - 1] >= 0xC0 && keep < o) {
        size_t need = ((unsigned char)out[keep - 1] & 0xE0) == 0xC0   ? 2
                      : ((unsigned char)out[keep - 1] & 0xF0) == 0xE0 ? 3
                                                                      : 4;
        if (o - (keep - 1) < need)
            o = keep - 1;
    }
    out[o] = 0;
}

/* The response body as JSON, when it is: parsed by the helper, or a small
 * blob (a download's error) read here. New ref or NULL; *text and *len point
 * at a text form for an excerpt (borrowed from body or the blob). */
static json_t *body_json(ferry_ctx *ctx, const json_t *body, const char **text,
                         size_t *len) {
    *text = NULL;
    *len = 0;
    if (json_is_string(body)) {
        *text = json_string_value(body);
        *len = json_string_length(body);
        return NULL;
    }
    if (json_is_object(body) && json_object_get(body, "$blob")) {
        const void *data;
        size_t n;
        if (dbx_api->blob_data(ctx, body, &data, &n) || n > 1024 * 1024)
            return NULL;
        *text = data;
        *len = n;
        return json_loadb(data, n, JSON_DECODE_ANY, NULL);
    }
    return body ? json_incref((json_t *)body) : NULL;
}

/* Fills e from an error response. */
static void read_error(ferry_ctx *ctx, const dbx_req *r, const json_t *resp,
                       const char *extra, dbx_err *e) {
    long status = (long)json_integer_value(json_object_get(resp, "status"));
    const json_t *headers = json_object_get(resp, "headers");
    const char *reqid =
        json_string_value(json_object_get(headers, "x-dropbox-request-id"));
    const char *text;
    size_t len;
    json_t *body = body_json(ctx, json_object_get(resp, "body"), &text, &len);
    const json_t *err = json_object_get(body, "error");
    const char *summary =
        json_string_value(json_object_get(body, "error_summary"));
    const char *user = json_string_value(
        json_object_get(json_object_get(body, "user_message"), "text"));
    e->status = status;
    if (err) {
        e->error = json_incref((json_t *)err);
        error_tags(err, e->tags, sizeof(e->tags));
    }
    if (!e->tags[0] && summary) {
        /* "path/not_found/.." without its decoration. */
        snprintf(e->tags, sizeof(e->tags), "%s", summary);
        size_t l = strlen(e->tags);
        while (l && (e->tags[l - 1] == '.' || e->tags[l - 1] == '/'))
            e->tags[--l] = 0;
    }

    if (status == 401) {
        e->code = FERRY_EAUTH;
    } else if (status == 403) {
        e->code = FERRY_EPERM;
    } else if (status == 429) {
        e->code = FERRY_ERATELIMIT;
        e->retryable = 1;
    } else if (status == 503) {
        e->code = FERRY_EUNAVAIL;
        e->retryable = 1;
    } else if (status == 504) {
        e->code = FERRY_ETIMEOUT;
        e->retryable = 1;
    } else if (status >= 500) {
        e->code = FERRY_EREMOTE;
        e->retryable = 1;
    } else if (status == 409 && e->tags[0]) {
        code_of_tags(e->tags, &e->code, &e->retryable);
    } else if (status == 400) {
        e->code = FERRY_EINVAL;
    } else {
        e->code = FERRY_EREMOTE;
    }

    char ex[EXCERPT + 8] = "";
    if (!e->tags[0] && text)
        excerpt(text, len, ex, sizeof(ex));
    char where[600] = "";
    if (r->what)
        snprintf(where, sizeof(where), " '%s'", r->what);
    char idpart[96] = "";
    if (reqid)
        snprintf(idpart, sizeof(idpart), ", request id %.64s", reqid);
    /* Truncated if long: the return value is looked at so that a
     * shortened message is not a warning. */
    if (snprintf(e->message, sizeof(e->message),
                 "dropbox %s%s: %s%s%s (HTTP %ld%s%s)%s%s", r->route, where,
                 e->tags[0]      ? e->tags
                 : status >= 500 ? "server error"
                 : status == 429 ? "too_many_requests"
                                 : "request refused",
                 user ? ": " : "", user ? user : "", status, idpart,
                 extra ? extra : "", ex[0] ? ": " : "", ex) < 0)
        e->message[0] = 0;
    json_decref(body);
}

/* The seconds a 429 asks to wait: Retry-After as the helper read it, else
 * the body's retry_after. -1 when neither says. */
static int64_t retry_after_ms(ferry_ctx *ctx, const json_t *resp) {
    const json_t *ms = json_object_get(resp, "retry_after_ms");
    if (json_is_integer(ms))
        return (int64_t)json_integer_value(ms);
    const char *text;
    size_t len;
    json_t *body = body_json(ctx, json_object_get(resp, "body"), &text, &len);
    const json_t *s =
        json_object_get(json_object_get(body, "error"), "retry_after");
    int64_t out = json_is_integer(s) && json_integer_value(s) >= 0
                      ? (int64_t)json_integer_value(s) * 1000
                      : -1;
    json_decref(body);
    return out;
}

/* ---- the request ---- */

static json_t *build(ferry_ctx *ctx, const dbx_req *r) {
    char base[1024], url[1400];
    base_url(ctx, r->style, base, sizeof(base));
    snprintf(url, sizeof(url), "%s/2/%s", base, r->route);
    json_t *req = json_pack("{s:s, s:s, s:s}", "method", "POST", "url", url,
                            "timeout", r->timeout ? r->timeout : "60s");
    if (!req)
        return NULL;
    if (r->style == DBX_RPC) {
        json_object_set_new(
            req, "json", r->arg ? json_incref((json_t *)r->arg) : json_null());
        json_object_set_new(req, "max_inline", json_string("64MiB"));
        return req;
    }
    char *text = r->arg ? json_dumps(r->arg, JSON_COMPACT) : strdup("null");
    char *safe = text ? dbx_header_json(text) : NULL;
    free(text);
    if (!safe) {
        json_decref(req);
        return NULL;
    }
    json_t *headers = json_pack("{s:s}", "Dropbox-API-Arg", safe);
    free(safe);
    if (!headers) {
        json_decref(req);
        return NULL;
    }
    if (r->style == DBX_UPLOAD) {
        json_object_set_new(headers, "Content-Type",
                            json_string("application/octet-stream"));
        json_object_set_new(req, "blob", json_incref((json_t *)r->body));
        json_object_set_new(req, "max_inline", json_string("16MiB"));
    } else {
        json_object_set_new(req, "as", json_string("blob"));
    }
    json_object_set_new(req, "headers", headers);
    return req;
}

/* Reads a 200 into res. Returns 0, or -1 with e filled. */
static int read_result(ferry_ctx *ctx, const dbx_req *r, json_t *resp,
                       dbx_res *res, dbx_err *e) {
    json_t *body = json_object_get(resp, "body");
    if (r->style == DBX_DOWNLOAD) {
        const char *hdr = json_string_value(json_object_get(
            json_object_get(resp, "headers"), "dropbox-api-result"));
        res->result = hdr ? json_loads(hdr, 0, NULL) : NULL;
        if (!json_is_object(res->result) || !json_is_object(body)) {
            dbx_res_clear(res);
            e->code = FERRY_EPROTO;
            e->retryable = 1;
            e->status = 200;
            snprintf(e->message, sizeof(e->message),
                     "dropbox %s '%s': the answer has no valid "
                     "Dropbox-API-Result header",
                     r->route, r->what ? r->what : "");
            return -1;
        }
        res->blob = json_incref(body);
        return 0;
    }
    if (body && !json_is_object(body) && !json_is_null(body)) {
        const char *text;
        size_t len;
        json_t *v = body_json(ctx, body, &text, &len);
        char ex[EXCERPT + 8] = "";
        if (text)
            excerpt(text, len, ex, sizeof(ex));
        json_decref(v);
        e->code = FERRY_EPROTO;
        e->retryable = 1;
        e->status = 200;
        snprintf(e->message, sizeof(e->message),
                 "dropbox %s: the answer is not JSON%s%s", r->route,
                 ex[0] ? ": " : "", ex);
        return -1;
    }
    res->result = body ? json_incref(body) : json_null();
    return 0;
}

static int transient_rc(int rc) {
    return rc == FERRY_EIO || rc == FERRY_ETIMEOUT || rc == FERRY_EUNAVAIL;
}

int dbx_call(ferry_ctx *ctx, const dbx_req *r, dbx_res *res, dbx_err *e) {
    memset(res, 0, sizeof(*res));
    memset(e, 0, sizeof(*e));
    json_t *req = build(ctx, r);
    if (!req) {
        e->code = FERRY_ENOMEM;
        e->retryable = 1;
        snprintf(e->message, sizeof(e->message), "dropbox %s: out of memory",
                 r->route);
        return e->code;
    }
    int waits = 0, failures = 0;
    for (;;) {
        json_t *resp = NULL;
        int rc = dbx_api->http_request(ctx, req, &resp);
        if (rc) {
            if (r->retry_failures && transient_rc(rc) &&
                failures < DBX_FAILURE_RETRIES) {
                int64_t ms = 500ll << failures++;
                dbx_api->log(ctx, FERRY_LOG_WARN,
                             json_pack("{s:s, s:I}", "route", r->route,
                                       "wait_ms", (json_int_t)ms),
                             "dropbox %s: %s; trying again in %lld ms",
                             r->route, ferry_strerror(rc), (long long)ms);
                if (!wait_ms(ctx, ms))
                    continue;
                rc = FERRY_ECANCELLED;
                dbx_api->set_error(ctx, rc, 0, "cancelled");
            }
            json_decref(req);
            e->code = rc;
            e->recorded = 1;
            e->retryable = transient_rc(rc);
            snprintf(e->message, sizeof(e->message), "dropbox %s: %s", r->route,
                     ferry_strerror(rc));
            return rc;
        }
        long status = (long)json_integer_value(json_object_get(resp, "status"));
        if (status == 200) {
            int bad = read_result(ctx, r, resp, res, e);
            json_decref(resp);
            json_decref(req);
            return bad ? e->code : FERRY_OK;
        }
        if (status == 429) {
            int64_t ms = retry_after_ms(ctx, resp);
            char extra[128] = "";
            if (ms >= 0 && ms <= DBX_MAX_WAIT_MS && waits < DBX_RATE_WAITS) {
                waits++;
                dbx_api->log(ctx, FERRY_LOG_INFO,
                             json_pack("{s:s, s:i, s:I}", "route", r->route,
                                       "status", 429, "retry_after_ms",
                                       (json_int_t)ms),
                             "dropbox %s: rate limited, waiting %lld ms "
                             "(Retry-After) before attempt %d",
                             r->route, (long long)ms, waits + 1);
                json_decref(resp);
                if (wait_ms(ctx, ms)) {
                    json_decref(req);
                    e->code = dbx_api->set_error(ctx, FERRY_ECANCELLED, 0,
                                                 "cancelled while waiting "
                                                 "for Retry-After");
                    e->recorded = 1;
                    return e->code;
                }
                continue;
            }
            if (ms > DBX_MAX_WAIT_MS)
                snprintf(extra, sizeof(extra),
                         "; Retry-After %lld s is more than %d s",
                         (long long)(ms + 999) / 1000, DBX_MAX_WAIT_MS / 1000);
            else if (ms >= 0)
                snprintf(extra, sizeof(extra),
                         "; still after %d waits, it now asks for %lld s",
                         waits, (long long)(ms + 999) / 1000);
            read_error(ctx, r, resp, extra, e);
            json_decref(resp);
            json_decref(req);
            return e->code;
        }
        if (status >= 500 && r->retry_failures &&
            failures < DBX_FAILURE_RETRIES) {
            int64_t ms = 500ll << failures++;
            dbx_api->log(ctx, FERRY_LOG_WARN,
                         json_pack("{s:s, s:i, s:I}", "route", r->route,
                                   "status", (int)status, "wait_ms",
                                   (json_int_t)ms),
                         "dropbox %s: HTTP %ld; trying again in %lld ms",
                         r->route, status, (long long)ms);
            json_decref(resp);
            if (wait_ms(ctx, ms)) {
                json_decref(req);
                e->code =
                    dbx_api->set_error(ctx, FERRY_ECANCELLED, 0, "cancelled");
                e->recorded = 1;
                return e->code;
            }
            continue;
        }
        read_error(ctx, r, resp, NULL, e);
        json_decref(resp);
        json_decref(req);
        return e->code;
    }
}

/* ---- listing ---- */

int dbx_list(ferry_ctx *ctx, const json_t *arg, const char *cursor,
             const char *what, dbx_entry_cb fn, void *ud, size_t max_entries,
             json_t **cursor_out, int *has_more, dbx_err *e) {
    json_t *cur = cursor ? json_string(cursor) : NULL;
    size_t seen = 0;
    int more = 1;
    *cursor_out = NULL;
    *has_more = 0;
    for (int first = !cursor; more; first = 0) {
        if (dbx_api->cancelled(ctx)) {
            json_decref(cur);
            memset(e, 0, sizeof(*e));
            e->code = dbx_api->set_error(ctx, FERRY_ECANCELLED, 0, "cancelled");
            e->recorded = 1;
            return e->code;
        }
        json_t *carg = first ? NULL : json_pack("{s:O}", "cursor", cur);
        dbx_req r = {.route = first ? "files/list_folder"
                                    : "files/list_folder/continue",
                     .style = DBX_RPC,
                     .arg = first ? arg : carg,
                     .what = what};
        dbx_res res;
        int rc = dbx_call(ctx, &r, &res, e);
        json_decref(carg);
        if (rc) {
            json_decref(cur);
            return rc;
        }
        const json_t *entries = json_object_get(res.result, "entries");
        const json_t *next = json_object_get(res.result, "cursor");
        if (!json_is_array(entries) || !json_is_string(next)) {
            dbx_res_clear(&res);
            json_decref(cur);
            memset(e, 0, sizeof(*e));
            e->code = FERRY_EPROTO;
            e->retryable = 1;
            snprintf(e->message, sizeof(e->message),
                     "dropbox %s '%s': the answer has no entries or cursor",
                     r.route, what ? what : "");
            return e->code;
        }
        size_t i;
        json_t *entry;
        json_array_foreach(entries, i, entry) {
            if (fn(ud, entry)) {
                dbx_res_clear(&res);
                json_decref(cur);
                memset(e, 0, sizeof(*e));
                e->code = FERRY_ENOMEM;
                e->retryable = 1;
                snprintf(e->message, sizeof(e->message), "out of memory");
                return e->code;
            }
        }
        seen += json_array_size(entries);
        json_decref(cur);
        cur = json_incref((json_t *)next);
        more = json_is_true(json_object_get(res.result, "has_more"));
        dbx_res_clear(&res);
        if (more && max_entries && seen >= max_entries) {
            *has_more = 1;
            break;
        }
    }
    *cursor_out = cur;
    return FERRY_OK;
}
