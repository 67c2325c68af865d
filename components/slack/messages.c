/*
 * Posting messages: slack.post_message (chat.postMessage, Web API) and
 * slack.webhook_post (an incoming webhook).
 *
 * An incoming webhook answers in plain text, not JSON: "ok" with 200 on
 * success, and on failure a short code ("invalid_payload", "no_text",
 * "channel_not_found", ...) with a real HTTP status (400, 403, 404, 410,
 * 500). The code is the step's message. The webhook URL is the credential
 * (anyone who has it can post), so no message or log line of this file
 * names it.
 */
#include "slack_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* chat.postMessage arguments the action passes through as they are. */
static const char *const post_args[] = {
    "channel",     "text",         "blocks",
    "attachments", "thread_ts",    "reply_broadcast",
    "mrkdwn",      "unfurl_links", "unfurl_media",
    "username",    "icon_emoji",   "icon_url",
    "metadata",    "parse",        "link_names",
    NULL};

int slack_post_message(ferry_ctx *ctx, const json_t *input) {
    slack_opts o;
    int rc = slack_opts_read(ctx, input, &o);
    if (rc)
        return rc;
    json_t *args = json_object();
    for (int i = 0; post_args[i]; i++)
        slack_copy(args, input, post_args[i]);
    json_t *answer = NULL;
    rc = slack_call(ctx, "chat.postMessage", args, SLACK_JSON, &o, &answer);
    json_decref(args);
    if (rc)
        return rc;
    return slack_api->set_output(ctx, answer);
}

/* ---- incoming webhooks ---- */

/* Message fields an incoming webhook takes from the named inputs. */
static const char *const hook_args[] = {
    "text",   "blocks",       "attachments",  "thread_ts",
    "mrkdwn", "unfurl_links", "unfurl_media", NULL};

/* The answer as one short line (Slack's code), into buf. */
static void short_text(const json_t *body, char *buf, size_t n) {
    buf[0] = 0;
    if (json_is_object(body) && json_object_get(body, "$blob")) {
        snprintf(buf, n, "(a body of %lld bytes)",
                 (long long)json_integer_value(json_object_get(body, "size")));
        return;
    }
    char *dumped = json_is_string(body) || !body || json_is_null(body)
                       ? NULL
                       : json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    const char *t = dumped ? dumped : json_string_value(body);
    if (!t)
        return;
    size_t o = 0;
    for (; *t && o + 4 < n; t++) {
        unsigned char c = (unsigned char)*t;
        if (isspace(c)) {
            if (o && buf[o - 1] != ' ')
                buf[o++] = ' ';
            continue;
        }
        buf[o++] = (char)c;
    }
    while (o && buf[o - 1] == ' ')
        o--;
    if (*t)
        buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
    buf[o] = 0;
    free(dumped);
}

int slack_webhook_post(ferry_ctx *ctx, const json_t *input) {
    const ferry_api *api = slack_api;
    static const char what[] = "slack.webhook_post";
    slack_opts o;
    int rc = slack_opts_read(ctx, input, &o);
    if (rc)
        return rc;
    const json_t *conn = api->connection(ctx);
    const char *url = json_string_value(
        json_object_get(json_object_get(conn, "fields"), "url"));
    if (!url || !*url)
        return api->set_error(ctx, FERRY_ECONFIG, 0,
                              "%s: the step needs a connection of type "
                              "slack.webhook (field url, the incoming "
                              "webhook's URL)",
                              what);

    const json_t *given = json_object_get(input, "payload");
    json_t *payload =
        json_is_object(given) ? json_deep_copy(given) : json_object();
    for (int i = 0; payload && hook_args[i]; i++)
        slack_copy(payload, input, hook_args[i]);
    json_t *req =
        json_pack("{s:s, s:s, s:o*, s:s, s:i}", "method", "POST", "url", url,
                  "json", payload, "as", "auto", "max_inline", 65536);
    if (!req)
        return api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
    if (o.timeout)
        json_object_set(req, "timeout", o.timeout);
    json_t *resp = NULL;
    char note[160];
    rc = slack_send(ctx, what, req, &o, &resp, note, sizeof(note));
    json_decref(req);
    if (rc) {
        /* The helper's transport messages name the URL, which is the
         * webhook's secret: say what failed without it. */
        return api->set_error(ctx, rc,
                              rc != FERRY_ECANCELLED && rc != FERRY_EINVAL &&
                                  rc != FERRY_ECONFIG,
                              "%s: the request to the incoming webhook "
                              "failed (%s)",
                              what, ferry_strerror(rc));
    }
    long status = (long)json_integer_value(json_object_get(resp, "status"));
    char text[128];
    short_text(json_object_get(resp, "body"), text, sizeof(text));
    json_decref(resp);
    if (status == 200 && !strcmp(text, "ok"))
        return api->set_output(ctx, json_pack("{s:b}", "ok", 1));
    if (status == 200)
        return api->set_error(ctx, FERRY_EPROTO, 0,
                              "%s: HTTP 200 with '%s', not 'ok'", what, text);
    return slack_fail_status(ctx, what, status, text, note);
}
