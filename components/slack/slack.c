/*
 * slack: a ferry component for Slack's Web API and incoming webhooks.
 *
 * Actions:
 *   slack.post_message   chat.postMessage
 *   slack.webhook_post   a message through an incoming webhook
 *   slack.upload_file    files.getUploadURLExternal, the bytes, then
 *                        files.completeUploadExternal
 *   slack.list_channels  conversations.list, every page
 *
 * Every request goes through the host's HTTP helper, which applies the
 * step's connection (a bot token, or an OAuth 2.0 token the host obtains
 * and refreshes). Slack's Events API needs no code here: it is a webhook
 * trigger of the host with the "slack" verification scheme (docs/slack.md).
 *
 * Files: webapi.c (a Web API call: answers, error codes, Retry-After),
 * messages.c, files.c, channels.c (the actions).
 */
#include "slack_internal.h"

const ferry_api *slack_api;

/* The inputs every action ends with. */
#define SLACK_TIMEOUT_INPUT(dflt)                                              \
    {                                                                          \
        "timeout", "any", 0, dflt,                                             \
            "limit for each HTTP request (\"30s\", \"2m\", or milliseconds)"   \
    }
#define SLACK_MAX_RETRY_AFTER_INPUT                                            \
    {                                                                          \
        "max_retry_after", "any", 0, "\"60s\"",                                \
            "on 429 (or 503) with Retry-After, wait up to this long and send " \
            "again"                                                            \
    }
#define SLACK_ATTEMPTS_INPUT                                                   \
    {                                                                          \
        "retry_after_attempts", "integer", 0, "3",                             \
            "how many times one request waits for Retry-After"                 \
    }

static const ferry_input post_message_inputs[] = {
    {"channel", "string", 1, NULL,
     "channel ID (C..., G..., D...), a channel name, or a user ID for a "
     "direct message"},
    {"text", "string", 0, NULL,
     "the message, or the notification fallback when blocks are given"},
    {"blocks", "array", 0, NULL, "Block Kit blocks"},
    {"attachments", "array", 0, NULL, "legacy secondary attachments"},
    {"thread_ts", "string", 0, NULL,
     "the parent message's ts, to reply in its thread"},
    {"reply_broadcast", "boolean", 0, NULL,
     "with thread_ts: also show the reply in the channel"},
    {"mrkdwn", "boolean", 0, NULL, "false: do not format text as mrkdwn"},
    {"unfurl_links", "boolean", 0, NULL, "unfurl text links"},
    {"unfurl_media", "boolean", 0, NULL, "unfurl media links"},
    {"username", "string", 0, NULL, "the bot's name for this message"},
    {"icon_emoji", "string", 0, NULL, "the bot's icon, an emoji"},
    {"icon_url", "string", 0, NULL, "the bot's icon, an image URL"},
    {"metadata", "object", 0, NULL,
     "message metadata {event_type, event_payload}"},
    {"parse", "string", 0, NULL, "full or none"},
    {"link_names", "boolean", 0, NULL, "link channel names and user names"},
    SLACK_TIMEOUT_INPUT("\"30s\""),
    SLACK_MAX_RETRY_AFTER_INPUT,
    SLACK_ATTEMPTS_INPUT,
    {0}};

static const ferry_input webhook_post_inputs[] = {
    {"text", "string", 0, NULL, "the message"},
    {"blocks", "array", 0, NULL, "Block Kit blocks"},
    {"attachments", "array", 0, NULL, "legacy secondary attachments"},
    {"thread_ts", "string", 0, NULL, "reply in this message's thread"},
    {"mrkdwn", "boolean", 0, NULL, "false: do not format text as mrkdwn"},
    {"unfurl_links", "boolean", 0, NULL, "unfurl text links"},
    {"unfurl_media", "boolean", 0, NULL, "unfurl media links"},
    {"payload", "object", 0, NULL,
     "any other fields of the message, sent as they are (the inputs above "
     "win)"},
    SLACK_TIMEOUT_INPUT("\"30s\""),
    SLACK_MAX_RETRY_AFTER_INPUT,
    SLACK_ATTEMPTS_INPUT,
    {0}};

static const ferry_input upload_file_inputs[] = {
    {"filename", "string", 1, NULL, "the file's name in Slack"},
    {"blob", "blob", 0, NULL, "the content, streamed from a blob"},
    {"text", "string", 0, NULL, "the content, as text (instead of blob)"},
    {"channel", "string", 0, NULL,
     "the channel ID to share the file in; without it the file stays "
     "private to the app"},
    {"title", "string", 0, NULL, "the file's title (default: filename)"},
    {"initial_comment", "string", 0, NULL, "a message posted with the file"},
    {"thread_ts", "string", 0, NULL,
     "share the file as a reply in this thread (needs channel)"},
    {"alt_text", "string", 0, NULL, "description of an image"},
    {"snippet_type", "string", 0, NULL,
     "syntax type of a snippet (\"python\", \"csv\", ...)"},
    SLACK_TIMEOUT_INPUT("\"120s\""),
    SLACK_MAX_RETRY_AFTER_INPUT,
    SLACK_ATTEMPTS_INPUT,
    {0}};

static const ferry_input list_channels_inputs[] = {
    {"types", "any", 0, "\"public_channel\"",
     "public_channel, private_channel, mpim, im: comma-separated or an "
     "array"},
    {"exclude_archived", "boolean", 0, "false", "leave archived channels out"},
    {"limit", "integer", 0, "200", "channels per page (1 to 1000)"},
    {"team_id", "string", 0, NULL, "the workspace, for an org-level token"},
    {"max_channels", "integer", 0, "0",
     "stop after the page that reaches this many channels (0: all); "
     "next_cursor then continues"},
    {"cursor", "string", 0, NULL, "start from this cursor (a next_cursor)"},
    SLACK_TIMEOUT_INPUT("\"30s\""),
    SLACK_MAX_RETRY_AFTER_INPUT,
    SLACK_ATTEMPTS_INPUT,
    {0}};

static const ferry_action actions[] = {
    {.id = "slack.post_message",
     .label = "Post a message",
     .description =
         "Posts a message with chat.postMessage. An answer with ok:false "
         "fails the step with Slack's error code; ratelimited, 429 after "
         "its Retry-After waits, and 5xx are retryable, channel_not_found, "
         "not_in_channel, is_archived, invalid_auth and the like are not.",
     .inputs = post_message_inputs,
     .output = "Slack's answer: {ok, channel, ts, message}",
     .run = slack_post_message,
     .flags = 0},
    {.id = "slack.webhook_post",
     .label = "Post through an incoming webhook",
     .description =
         "Posts a message to the incoming webhook of the step's "
         "slack.webhook connection. Slack's plain-text errors "
         "(invalid_payload, no_text, channel_not_found, ...) fail the step "
         "with their HTTP status.",
     .inputs = webhook_post_inputs,
     .output = "{ok: true}",
     .run = slack_webhook_post,
     .flags = 0},
    {.id = "slack.upload_file",
     .label = "Upload a file",
     .description =
         "Uploads a blob or a text with files.getUploadURLExternal, a POST "
         "of the bytes to the upload URL, and files.completeUploadExternal, "
         "shared in channel when given.",
     .inputs = upload_file_inputs,
     .output = "Slack's answer to files.completeUploadExternal: {ok, "
               "files: [{id, title}]}",
     .run = slack_upload_file,
     .flags = 0},
    {.id = "slack.list_channels",
     .label = "List channels",
     .description = "Lists conversations with conversations.list, following "
                    "response_metadata.next_cursor over every page.",
     .inputs = list_channels_inputs,
     .output = "{channels: [...], count, pages, next_cursor?}",
     .run = slack_list_channels,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {0}};

static const ferry_input bot_fields[] = {
    {"token", "string", 1, NULL, "the bot token, xoxb-... (secret)"},
    {"api_url", "string", 0, "\"" SLACK_DEFAULT_API_URL "\"",
     "the Web API's base URL"},
    {0}};

static const ferry_input oauth2_fields[] = {
    {"client_id", "string", 1, NULL, "the Slack app's client ID"},
    {"client_secret", "string", 0, NULL,
     "the Slack app's client secret (secret)"},
    {"token_url", "string", 0, "\"https://slack.com/api/oauth.v2.access\"",
     "the token endpoint"},
    {"authorize_url", "string", 0, "\"https://slack.com/oauth/v2/authorize\"",
     "the authorization endpoint"},
    {"client_auth", "string", 0, "\"basic\"",
     "how the client authenticates at the token endpoint: basic or body"},
    {"scopes", "any", 0, NULL,
     "bot scopes to ask for, as Slack writes them: "
     "\"chat:write,channels:read,files:write\""},
    {"grant", "string", 0, "\"authorization_code\"",
     "authorization_code (install through the host), or refresh_token "
     "with a refresh_token from token rotation"},
    {"refresh_token", "string", 0, NULL,
     "a refresh token (xoxe-...), with token rotation (secret)"},
    {"audience", "string", 0, NULL, "not used by Slack"},
    {"api_url", "string", 0, "\"" SLACK_DEFAULT_API_URL "\"",
     "the Web API's base URL"},
    {0}};

static const ferry_input webhook_fields[] = {
    {"url", "string", 1, NULL,
     "the incoming webhook's URL, https://hooks.slack.com/services/... "
     "(anyone who has it can post: keep it secret)"},
    {0}};

static const ferry_connection_type connections[] = {
    {.id = "slack.bot",
     .label = "Slack bot token",
     .description = "A bot token (xoxb-...), sent as Authorization: Bearer.",
     .auth = "bearer",
     .fields = bot_fields},
    {.id = "slack.oauth2",
     .label = "Slack OAuth 2.0",
     .description = "A token from Slack's OAuth 2.0 (oauth.v2.access), "
                    "obtained and refreshed by the host's token service.",
     .auth = "oauth2",
     .fields = oauth2_fields},
    {.id = "slack.webhook",
     .label = "Slack incoming webhook",
     .description = "An incoming webhook URL, for slack.webhook_post.",
     .auth = "custom",
     .fields = webhook_fields},
    {0}};

static const ferry_component desc = {
    FERRY_COMPONENT_HEADER,
    .name = "slack",
    .version = "1.0.0",
    .description = "Slack: post messages (Web API or incoming webhook), "
                   "upload files, list channels.",
    .actions = actions,
    .connections = connections,
};

FERRY_EXPORT const ferry_component *
ferry_component_entry(const ferry_api *host) {
    slack_api = host;
    return &desc;
}
