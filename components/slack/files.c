/*
 * slack.upload_file: Slack's external upload flow, in three requests.
 *
 *   1. files.getUploadURLExternal (filename, length) gives an upload URL
 *      and a file id;
 *   2. the bytes are POSTed to that URL, raw, streamed from the blob. The
 *      URL is a short-lived capability that needs no token: the request
 *      removes the Authorization header the helper would add from the
 *      connection, and no message shows the URL;
 *   3. files.completeUploadExternal (files=[{id, title}], channel_id,
 *      initial_comment, thread_ts) shares the file. Without a channel the
 *      file stays private to the app.
 *
 * A failure at any point fails the step; a retry starts again at 1 (an
 * upload that was never completed is discarded by Slack).
 */
#include "slack_internal.h"

#include <stdio.h>
#include <string.h>

int slack_upload_file(ferry_ctx *ctx, const json_t *input) {
    const ferry_api *api = slack_api;
    slack_opts o;
    int rc = slack_opts_read(ctx, input, &o);
    if (rc)
        return rc;
    const json_t *blob = json_object_get(input, "blob");
    const json_t *text = json_object_get(input, "text");
    if (json_is_null(blob))
        blob = NULL;
    if (json_is_null(text))
        text = NULL;
    if (!blob == !text)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "slack.upload_file: give the content as blob "
                              "or as text (exactly one of them)");
    const char *filename =
        json_string_value(json_object_get(input, "filename"));
    if (!filename || !*filename)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "slack.upload_file: filename must not be empty");
    size_t length;
    if (blob) {
        /* The blob's real size (the reference's "size" is only what the
         * step was given); mapping it reads nothing yet. */
        const void *data;
        if (api->blob_data(ctx, blob, &data, &length))
            return api->set_error(ctx, FERRY_EINVAL, 0,
                                  "slack.upload_file: blob is not a blob of "
                                  "this execution");
    } else {
        length = strlen(json_string_value(text));
    }
    if (length == 0)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "slack.upload_file: the file is empty (Slack "
                              "refuses empty uploads)");

    /* 1. */
    json_t *args = json_pack("{s:s, s:I}", "filename", filename, "length",
                             (json_int_t)length);
    slack_copy(args, input, "alt_text");
    slack_copy(args, input, "snippet_type");
    json_t *got = NULL;
    rc = slack_call(ctx, "files.getUploadURLExternal", args, SLACK_FORM, &o,
                    &got);
    json_decref(args);
    if (rc)
        return rc;
    const char *upload_url =
        json_string_value(json_object_get(got, "upload_url"));
    const char *file_id = json_string_value(json_object_get(got, "file_id"));
    if (!upload_url || !file_id) {
        json_decref(got);
        return api->set_error(ctx, FERRY_EPROTO, 1,
                              "files.getUploadURLExternal: the answer has no "
                              "upload_url or file_id");
    }
    if (api->cancelled(ctx)) {
        json_decref(got);
        return api->set_error(ctx, FERRY_ECANCELLED, 0, "cancelled");
    }

    /* 2. */
    json_t *req =
        json_pack("{s:s, s:s, s:s, s:{s:n}}", "method", "POST", "url",
                  upload_url, "as", "auto", "headers", "Authorization");
    if (blob)
        json_object_set(req, "blob", (json_t *)blob);
    else
        json_object_set(req, "text", (json_t *)text);
    if (o.timeout)
        json_object_set(req, "timeout", o.timeout);
    char what[300];
    snprintf(what, sizeof(what),
             "slack.upload_file: sending '%s' (file %s) to Slack's upload URL",
             filename, file_id);
    json_t *resp = NULL;
    char note[160];
    rc = slack_send(ctx, what, req, &o, &resp, note, sizeof(note));
    json_decref(req);
    if (rc) {
        json_decref(got);
        /* The helper's message names the upload URL, a capability. */
        return api->set_error(ctx, rc,
                              rc != FERRY_ECANCELLED && rc != FERRY_EINVAL,
                              "%s: %s", what, ferry_strerror(rc));
    }
    long status = (long)json_integer_value(json_object_get(resp, "status"));
    json_decref(resp);
    if (status != 200) {
        rc = slack_fail_status(ctx, what, status, "", note);
        json_decref(got);
        return rc;
    }
    api->log(ctx, FERRY_LOG_DEBUG, NULL,
             "slack.upload_file: %zu bytes of '%s' sent (file %s)", length,
             filename, file_id);

    /* 3. */
    const json_t *title = json_object_get(input, "title");
    json_t *files = json_pack("[{s:s, s:s}]", "id", file_id, "title",
                              json_is_string(title) && *json_string_value(title)
                                  ? json_string_value(title)
                                  : filename);
    args = json_pack("{s:o}", "files", files);
    json_decref(got);
    const json_t *channel = json_object_get(input, "channel");
    if (json_is_string(channel) && *json_string_value(channel))
        json_object_set(args, "channel_id", (json_t *)channel);
    slack_copy(args, input, "initial_comment");
    slack_copy(args, input, "thread_ts");
    json_t *done = NULL;
    rc = slack_call(ctx, "files.completeUploadExternal", args, SLACK_FORM, &o,
                    &done);
    json_decref(args);
    if (rc)
        return rc;
    return api->set_output(ctx, done);
}
