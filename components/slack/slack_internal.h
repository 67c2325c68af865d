/*
 * Shared by the files of the slack component: the Web API call (webapi.c)
 * that every Web API action goes through, and the Retry-After policy that
 * the incoming-webhook and upload requests use as well.
 *
 * Everything here runs on the action's thread with the action's ctx; no
 * state outlives a call.
 */
#ifndef FERRY_COMPONENTS_SLACK_INTERNAL_H
#define FERRY_COMPONENTS_SLACK_INTERNAL_H

#include <ferry/ferry.h>

#include <stddef.h>
#include <stdint.h>

/* The host's table, set by the entry function (borrowed). */
extern const ferry_api *slack_api;

#define SLACK_DEFAULT_API_URL "https://slack.com/api"

/* How a Web API method's arguments are sent. */
typedef enum slack_enc {
    SLACK_JSON,  /* POST, application/json; charset=utf-8 */
    SLACK_FORM,  /* POST, application/x-www-form-urlencoded */
    SLACK_QUERY, /* GET, arguments in the query string */
} slack_enc;

/* The options every action takes (timeout, max_retry_after,
 * retry_after_attempts). timeout is borrowed from the input. */
typedef struct slack_opts {
    json_t *timeout;
    uint64_t max_wait_ms;
    json_int_t attempts;
} slack_opts;

/* Reads the common options from input (borrowed). Returns FERRY_OK, or an
 * error already recorded with set_error. */
int slack_opts_read(ferry_ctx *ctx, const json_t *input, slack_opts *o);

/*
 * Sends request (borrowed) with api->http_request, and on 429 or 503 with
 * a Retry-After the helper could read waits that long (checking for
 * cancellation) and sends it again, within o's bounds. what names the call
 * in log lines ("chat.postMessage", "the incoming webhook"); it must not
 * hold a secret.
 *
 * Returns FERRY_OK with *resp a new ref whenever a response arrived (a 429
 * that could not be waited for included: then note holds why, as
 * "Retry-After 90 s is more than max_retry_after, 60 s"), else the
 * helper's error, already recorded (or FERRY_ECANCELLED during a wait).
 */
int slack_send(ferry_ctx *ctx, const char *what, const json_t *request,
               const slack_opts *o, json_t **resp, char *note, size_t notelen);

/*
 * Calls the Web API method with args (borrowed object; null members are
 * left out) using the step's connection (slack.bot, slack.oauth2, or any
 * bearer or oauth2 connection; its api_url field, else
 * SLACK_DEFAULT_API_URL). Slack's answer must be a JSON object with
 * "ok": true; "ok": false is an error named after the method and Slack's
 * error code, retryable or not by that code.
 *
 * Returns FERRY_OK with *answer a new ref to Slack's answer, or a negative
 * FERRY_E* code with the error recorded.
 */
int slack_call(ferry_ctx *ctx, const char *method, const json_t *args,
               slack_enc enc, const slack_opts *o, json_t **answer);

/* Records a failed HTTP status of a request that is not a Web API method
 * (the incoming webhook, the upload URL): code and retryability by the
 * status, the message "<what>: HTTP <status> <detail> (<note>)". Returns
 * the code. */
int slack_fail_status(ferry_ctx *ctx, const char *what, long status,
                      const char *detail, const char *note);

/* Copies input[name] into obj under the same name when present and not
 * null. */
void slack_copy(json_t *obj, const json_t *input, const char *name);

/* The actions. */
int slack_post_message(ferry_ctx *ctx, const json_t *input);
int slack_webhook_post(ferry_ctx *ctx, const json_t *input);
int slack_upload_file(ferry_ctx *ctx, const json_t *input);
int slack_list_channels(ferry_ctx *ctx, const json_t *input);

#endif
