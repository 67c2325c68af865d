/*
 * dropbox.download and dropbox.upload: the content host.
 *
 * Download: files/download with the path in Dropbox-API-Arg; the helper
 * streams the bytes into a blob (never into memory), the metadata comes
 * from Dropbox-API-Result. With verify (the default) the blob's size and
 * content_hash are checked against that metadata, so a truncated or
 * altered transfer fails the step (retryable) instead of passing on.
 *
 * Upload: up to session_threshold bytes in one files/upload request,
 * streamed from the blob; above it an upload session: start with the first
 * chunk, append_v2 chunk by chunk, finish with the last one and the commit.
 * Each chunk is copied from the mapped blob into a blob of its own (the
 * helper sends whole blobs), so a session needs the file's size again in
 * temporary space until the execution ends. A chunk whose answer was lost
 * is sent again (retry_failures); when Dropbox answers incorrect_offset the
 * upload resumes from the correct_offset it names, which it may do for
 * either direction. Both paths send the content_hash, so Dropbox refuses
 * bytes that differ from the blob's.
 */
#include "dropbox_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* incorrect_offset answers followed in one session at most. */
#define DBX_MAX_CORRECTIONS 16

static const char *text_type = "text/plain; charset=utf-8";

/* ---- download ---- */

int dbx_action_download(ferry_ctx *ctx, const json_t *input) {
    const char *action = "dropbox.download";
    int rc = dbx_ready(ctx, action);
    if (rc)
        return rc;
    const char *path = json_string_value(json_object_get(input, "path"));
    const char *as = json_string_value(json_object_get(input, "as"));
    const char *timeout = json_string_value(json_object_get(input, "timeout"));
    const json_t *mt = json_object_get(input, "max_text_bytes");
    int verify = !json_is_false(json_object_get(input, "verify"));
    if (!as)
        as = "blob";
    if (strcmp(as, "blob") && strcmp(as, "text"))
        return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "%s: 'as' must be \"blob\" or \"text\"",
                                  action);
    uint64_t ms;
    if (timeout && dbx_parse_duration(json_object_get(input, "timeout"), &ms))
        return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "%s: 'timeout' must be a duration (\"30s\", "
                                  "\"10m\") or milliseconds",
                                  action);
    json_t *arg = json_pack("{s:s}", "path", path ? path : "");
    if (!arg)
        return dbx_oom(ctx);
    dbx_req r = {.route = "files/download",
                 .style = DBX_DOWNLOAD,
                 .arg = arg,
                 .what = path,
                 .timeout = timeout ? timeout : "30m"};
    dbx_res res;
    dbx_err e;
    rc = dbx_call(ctx, &r, &res, &e);
    json_decref(arg);
    if (rc)
        return dbx_fail(ctx, &e);

    const void *data = NULL;
    size_t len = 0;
    json_int_t size = json_integer_value(json_object_get(res.result, "size"));
    const char *want =
        json_string_value(json_object_get(res.result, "content_hash"));
    if ((verify || !strcmp(as, "text")) &&
        dbx_api->blob_data(ctx, res.blob, &data, &len)) {
        dbx_res_clear(&res);
        return dbx_api->set_error(ctx, FERRY_EIO, 1,
                                  "%s '%s': cannot read the downloaded blob",
                                  action, path);
    }
    if (verify) {
        char got[65];
        if (json_is_integer(json_object_get(res.result, "size")) &&
            (json_int_t)len != size) {
            dbx_res_clear(&res);
            return dbx_api->set_error(
                ctx, FERRY_EIO, 1,
                "%s '%s': %zu bytes arrived, the metadata says %lld", action,
                path, len, (long long)size);
        }
        if (want && (dbx_content_hash(data, len, got) || strcmp(got, want))) {
            rc = dbx_api->set_error(
                ctx, FERRY_EIO, 1,
                "%s '%s': content_hash mismatch: the metadata says %s, the "
                "%zu bytes that arrived hash to %s",
                action, path, want, len, got);
            dbx_res_clear(&res); /* want pointed into it */
            return rc;
        }
    }
    json_t *out = json_deep_copy(res.result);
    if (!out) {
        dbx_res_clear(&res);
        return dbx_oom(ctx);
    }
    if (!strcmp(as, "text")) {
        json_int_t max = json_is_integer(mt) ? json_integer_value(mt) : 1048576;
        if ((json_int_t)len > max) {
            json_decref(out);
            dbx_res_clear(&res);
            return dbx_api->set_error(ctx, FERRY_ETOOBIG, 0,
                                      "%s '%s': %zu bytes is more than "
                                      "max_text_bytes (%lld); use as \"blob\"",
                                      action, path, len, (long long)max);
        }
        json_t *text = json_stringn(data ? data : "", len);
        if (!text) {
            json_decref(out);
            dbx_res_clear(&res);
            return dbx_api->set_error(ctx, FERRY_EPARSE, 0,
                                      "%s '%s': the file is not UTF-8 text; "
                                      "use as \"blob\"",
                                      action, path);
        }
        json_object_set_new(out, "text", text);
    } else {
        json_object_set(out, "blob", res.blob);
    }
    dbx_res_clear(&res);
    return dbx_api->set_output(ctx, out);
}

/* ---- upload ---- */

/* The commit (CommitInfo) from the inputs into *out. Returns FERRY_OK or
 * the code of the error it recorded. */
static int commit_info(ferry_ctx *ctx, const json_t *input, json_t **out) {
    const char *action = "dropbox.upload";
    const char *path = json_string_value(json_object_get(input, "path"));
    const char *mode = json_string_value(json_object_get(input, "mode"));
    const char *rev = json_string_value(json_object_get(input, "rev"));
    const char *cm =
        json_string_value(json_object_get(input, "client_modified"));
    json_t *m;
    if (!mode || !strcmp(mode, "add") || !strcmp(mode, "overwrite")) {
        m = json_string(mode ? mode : "add");
    } else if (!strcmp(mode, "update")) {
        if (!rev || !*rev) {
            return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                                      "%s: mode \"update\" needs the 'rev' "
                                      "it replaces",
                                      action);
        }
        m = json_pack("{s:s, s:s}", ".tag", "update", "update", rev);
    } else {
        return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "%s: 'mode' must be \"add\", \"overwrite\" "
                                  "or \"update\", not \"%s\"",
                                  action, mode);
    }
    if (cm && dbx_parse_time(cm) < 0) {
        json_decref(m);
        return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "%s: 'client_modified' must be a UTC time "
                                  "like \"2015-05-12T15:50:38Z\"",
                                  action);
    }
    json_t *c = json_pack(
        "{s:s, s:o, s:b, s:b, s:b}", "path", path ? path : "", "mode", m,
        "autorename", json_is_true(json_object_get(input, "autorename")),
        "mute", json_is_true(json_object_get(input, "mute")), "strict_conflict",
        json_is_true(json_object_get(input, "strict_conflict")));
    if (c && cm)
        json_object_set_new(c, "client_modified", json_string(cm));
    if (!c)
        return dbx_oom(ctx);
    *out = c;
    return FERRY_OK;
}

/* The correct_offset of an incorrect_offset error, wherever it sits in
 * the structure ({".tag": "incorrect_offset", "correct_offset": n} for
 * append_v2, nested under "lookup_failed" for finish); -1 if none. */
static json_int_t correct_offset(const json_t *err) {
    if (!json_is_object(err))
        return -1;
    const char *tag = json_string_value(json_object_get(err, ".tag"));
    if (tag && !strcmp(tag, "incorrect_offset")) {
        const json_t *v = json_object_get(err, "correct_offset");
        if (!v)
            v = json_object_get(json_object_get(err, "incorrect_offset"),
                                "correct_offset");
        return json_is_integer(v) ? json_integer_value(v) : -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)err, k, v) {
        json_int_t n = correct_offset(v);
        if (n >= 0)
            return n;
    }
    return -1;
}

typedef struct session {
    ferry_ctx *ctx;
    const unsigned char *data;
    size_t total, chunk;
    const char *path, *timeout;
    char id[512];
    int corrections;
} session;

/* Sends one session request with bytes [off, off + n) as its body. */
static int send_chunk(session *s, const char *route, json_t *arg, size_t off,
                      size_t n, dbx_res *res, dbx_err *e) {
    json_t *blob = dbx_api->blob_from(s->ctx, s->data + off, n,
                                      "application/octet-stream");
    if (!blob) {
        json_decref(arg);
        memset(e, 0, sizeof(*e));
        memset(res, 0, sizeof(*res));
        e->code = FERRY_EIO;
        e->retryable = 1;
        snprintf(e->message, sizeof(e->message),
                 "dropbox.upload '%s': cannot make a blob for the chunk at "
                 "offset %zu",
                 s->path, off);
        return e->code;
    }
    dbx_req r = {.route = route,
                 .style = DBX_UPLOAD,
                 .arg = arg,
                 .body = blob,
                 .what = s->path,
                 .timeout = s->timeout,
                 .retry_failures = 1};
    int rc = dbx_call(s->ctx, &r, res, e);
    json_decref(blob);
    json_decref(arg);
    return rc;
}

/* After an incorrect_offset: the offset to go on from, or -1 with e
 * rewritten when there is none to follow. */
static long long follow_offset(session *s, size_t off, dbx_err *e) {
    json_int_t to = correct_offset(e->error);
    if (to < 0 || (uint64_t)to > s->total ||
        ++s->corrections > DBX_MAX_CORRECTIONS) {
        char was[sizeof(e->message)];
        snprintf(was, sizeof(was), "%s", e->message);
        snprintf(e->message, sizeof(e->message),
                 "%.900s (at offset %zu of %zu; %s)", was, off, s->total,
                 to < 0 ? "no usable correct_offset"
                 : (uint64_t)to > s->total
                     ? "the correct_offset is beyond the end"
                     : "too many corrections");
        e->code = FERRY_EPROTO;
        e->retryable = 1;
        return -1;
    }
    dbx_api->log(s->ctx, FERRY_LOG_WARN,
                 json_pack("{s:I, s:I}", "offset", (json_int_t)off,
                           "correct_offset", to),
                 "dropbox.upload '%s': Dropbox has %lld bytes of the session, "
                 "not %zu; going on from there",
                 s->path, (long long)to, off);
    dbx_err_clear(e);
    return (long long)to;
}

static int upload_session(session *s, const json_t *commit, const char *hash,
                          dbx_res *res, dbx_err *e) {
    size_t first = s->total < s->chunk ? s->total : s->chunk;
    int rc = send_chunk(s, "files/upload_session/start",
                        json_pack("{s:b}", "close", 0), 0, first, res, e);
    if (rc)
        return rc;
    const char *id =
        json_string_value(json_object_get(res->result, "session_id"));
    if (!id || strlen(id) >= sizeof(s->id)) {
        dbx_res_clear(res);
        memset(e, 0, sizeof(*e));
        e->code = FERRY_EPROTO;
        e->retryable = 1;
        snprintf(e->message, sizeof(e->message),
                 "dropbox files/upload_session/start '%s': the answer has no "
                 "session_id",
                 s->path);
        return e->code;
    }
    snprintf(s->id, sizeof(s->id), "%s", id);
    dbx_res_clear(res);
    size_t off = first;
    for (;;) {
        if (dbx_api->cancelled(s->ctx)) {
            memset(e, 0, sizeof(*e));
            e->code =
                dbx_api->set_error(s->ctx, FERRY_ECANCELLED, 0, "cancelled");
            e->recorded = 1;
            return e->code;
        }
        size_t left = s->total - off;
        json_t *cursor = json_pack("{s:s, s:I}", "session_id", s->id, "offset",
                                   (json_int_t)off);
        const char *route;
        json_t *arg;
        size_t n;
        if (left > s->chunk) {
            route = "files/upload_session/append_v2";
            arg = json_pack("{s:o, s:b}", "cursor", cursor, "close", 0);
            n = s->chunk;
        } else {
            route = "files/upload_session/finish";
            arg = json_pack("{s:o, s:O, s:s}", "cursor", cursor, "commit",
                            commit, "content_hash", hash);
            n = left;
        }
        rc = send_chunk(s, route, arg, off, n, res, e);
        if (!rc) {
            if (n == left)
                return FERRY_OK; /* finished: res holds the metadata */
            dbx_res_clear(res);
            off += n;
            continue;
        }
        if (e->status != 409 || !dbx_err_has(e, "incorrect_offset"))
            return rc;
        long long to = follow_offset(s, off, e);
        if (to < 0)
            return e->code;
        off = (size_t)to;
    }
}

int dbx_action_upload(ferry_ctx *ctx, const json_t *input) {
    const char *action = "dropbox.upload";
    int rc = dbx_ready(ctx, action);
    if (rc)
        return rc;
    const char *path = json_string_value(json_object_get(input, "path"));
    const json_t *blob = json_object_get(input, "blob");
    const json_t *text = json_object_get(input, "text");
    if (json_is_null(blob))
        blob = NULL;
    if (json_is_null(text))
        text = NULL;
    if (!blob == !text)
        return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "%s: give exactly one of 'blob' and 'text'",
                                  action);
    uint64_t chunk, threshold, ms;
    if (dbx_parse_size(json_object_get(input, "chunk_size"), &chunk) ||
        chunk < 1 || chunk > DBX_MAX_REQUEST_BODY)
        return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "%s: 'chunk_size' must be a size from 1 byte "
                                  "to 150MiB (\"8MiB\", or bytes)",
                                  action);
    if (dbx_parse_size(json_object_get(input, "session_threshold"),
                       &threshold) ||
        threshold > DBX_MAX_REQUEST_BODY)
        return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "%s: 'session_threshold' must be a size up "
                                  "to 150MiB (\"150MiB\", or bytes)",
                                  action);
    const char *timeout = json_string_value(json_object_get(input, "timeout"));
    if (timeout && dbx_parse_duration(json_object_get(input, "timeout"), &ms))
        return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "%s: 'timeout' must be a duration (\"30s\", "
                                  "\"10m\") or milliseconds",
                                  action);
    json_t *commit = NULL;
    if ((rc = commit_info(ctx, input, &commit)))
        return rc;

    /* The bytes: the blob as given, or the text put into one. */
    json_t *own = NULL;
    if (text) {
        own = dbx_api->blob_from(ctx, json_string_value(text),
                                 json_string_length(text), text_type);
        if (!own) {
            json_decref(commit);
            return dbx_api->set_error(ctx, FERRY_EIO, 1,
                                      "%s: cannot make a blob of the text",
                                      action);
        }
        blob = own;
    }
    const void *data;
    size_t len;
    if (dbx_api->blob_data(ctx, blob, &data, &len)) {
        json_decref(own);
        json_decref(commit);
        return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "%s: 'blob' is not a blob of this execution",
                                  action);
    }
    char hash[65];
    if (dbx_content_hash(data, len, hash)) {
        json_decref(own);
        json_decref(commit);
        return dbx_api->set_error(ctx, FERRY_EINTERNAL, 1,
                                  "%s: cannot compute the content hash",
                                  action);
    }
    dbx_res res;
    dbx_err e;
    if (len <= threshold) {
        json_t *arg = json_deep_copy(commit);
        if (arg)
            json_object_set_new(arg, "content_hash", json_string(hash));
        dbx_req r = {.route = "files/upload",
                     .style = DBX_UPLOAD,
                     .arg = arg,
                     .body = blob,
                     .what = path,
                     .timeout = timeout ? timeout : "30m"};
        rc = arg ? dbx_call(ctx, &r, &res, &e) : dbx_oom(ctx);
        json_decref(arg);
        if (!arg) {
            json_decref(own);
            json_decref(commit);
            return rc;
        }
    } else {
        session s = {.ctx = ctx,
                     .data = data,
                     .total = len,
                     .chunk = (size_t)chunk,
                     .path = path ? path : "",
                     .timeout = timeout ? timeout : "30m"};
        rc = upload_session(&s, commit, hash, &res, &e);
        if (!rc)
            dbx_api->log(ctx, FERRY_LOG_INFO,
                         json_pack("{s:I, s:I, s:i}", "size", (json_int_t)len,
                                   "chunk_size", (json_int_t)chunk,
                                   "corrections", s.corrections),
                         "%s '%s': %zu bytes sent in an upload session", action,
                         s.path, len);
    }
    json_decref(own);
    json_decref(commit);
    if (rc)
        return dbx_fail(ctx, &e);
    json_t *out = res.result;
    res.result = NULL;
    dbx_res_clear(&res);
    return dbx_api->set_output(ctx, out);
}
