/*
 * slack.list_channels: conversations.list, page after page.
 *
 * Slack's cursor pagination: each answer's response_metadata.next_cursor,
 * when not empty, is passed as "cursor" to get the next page. A page may
 * hold fewer than "limit" channels even when more follow (Slack filters
 * after paging), so only an empty cursor ends the listing. Each page is
 * one Web API call, with its own Retry-After waits (conversations.list is
 * a Tier 2 method: about 20 calls a minute).
 */
#include "slack_internal.h"

#include <stdlib.h>
#include <string.h>

/* A cursor longer than this is not one Slack made. */
#define SLACK_MAX_CURSOR 4096

/* "types" as Slack takes it: a comma-separated string. An array of
 * strings is joined. Returns a new string ref, or NULL after recording an
 * error. */
static json_t *types_arg(ferry_ctx *ctx, const json_t *v) {
    if (json_is_string(v))
        return json_incref((json_t *)v);
    if (!json_is_array(v) || !json_array_size(v)) {
        slack_api->set_error(ctx, FERRY_EINVAL, 0,
                             "slack.list_channels: types must be a string "
                             "(\"public_channel,private_channel\") or a "
                             "non-empty array of strings");
        return NULL;
    }
    size_t len = 1, i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e)) {
            slack_api->set_error(ctx, FERRY_EINVAL, 0,
                                 "slack.list_channels: types[%zu] must be a "
                                 "string",
                                 i);
            return NULL;
        }
        len += strlen(json_string_value(e)) + 1;
    }
    char *s = calloc(1, len);
    if (!s) {
        slack_api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
        return NULL;
    }
    json_array_foreach(v, i, e) {
        if (i)
            strcat(s, ",");
        strcat(s, json_string_value(e));
    }
    json_t *out = json_string(s);
    free(s);
    return out;
}

int slack_list_channels(ferry_ctx *ctx, const json_t *input) {
    const ferry_api *api = slack_api;
    slack_opts o;
    int rc = slack_opts_read(ctx, input, &o);
    if (rc)
        return rc;
    const json_t *lj = json_object_get(input, "limit");
    json_int_t limit = json_is_integer(lj) ? json_integer_value(lj) : 200;
    if (limit < 1 || limit > 1000)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "slack.list_channels: limit must be from 1 to "
                              "1000 (channels per page), got %lld",
                              (long long)limit);
    const json_t *mj = json_object_get(input, "max_channels");
    json_int_t max = json_is_integer(mj) ? json_integer_value(mj) : 0;
    if (max < 0)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "slack.list_channels: max_channels must not be "
                              "negative (0: all)");
    const json_t *tj = json_object_get(input, "types");
    json_t *types = tj && !json_is_null(tj) ? types_arg(ctx, tj)
                                            : json_string("public_channel");
    if (!types)
        return FERRY_EINVAL;

    json_t *args = json_pack("{s:o, s:I}", "types", types, "limit", limit);
    slack_copy(args, input, "exclude_archived");
    slack_copy(args, input, "team_id");
    json_t *channels = json_array();
    json_t *cursor = json_object_get(input, "cursor");
    char *prev = NULL; /* the cursor of the page just asked for */
    if (json_is_string(cursor) && *json_string_value(cursor)) {
        json_object_set(args, "cursor", cursor);
        prev = strdup(json_string_value(cursor));
    }
    json_int_t pages = 0;
    const char *next = NULL;
    json_t *answer = NULL;
    for (;;) {
        if (api->cancelled(ctx)) {
            rc = api->set_error(ctx, FERRY_ECANCELLED, 0,
                                "slack.list_channels: cancelled after %lld "
                                "pages",
                                (long long)pages);
            break;
        }
        json_decref(answer);
        answer = NULL;
        rc = slack_call(ctx, "conversations.list", args, SLACK_QUERY, &o,
                        &answer);
        if (rc)
            break;
        pages++;
        json_t *page = json_object_get(answer, "channels");
        if (page && !json_is_array(page)) {
            rc = api->set_error(ctx, FERRY_EPROTO, 0,
                                "conversations.list: \"channels\" is not an "
                                "array (page %lld)",
                                (long long)pages);
            break;
        }
        if (page)
            json_array_extend(channels, page);
        next = json_string_value(json_object_get(
            json_object_get(answer, "response_metadata"), "next_cursor"));
        if (!next || !*next) {
            next = NULL;
            break;
        }
        if (strlen(next) > SLACK_MAX_CURSOR || (prev && !strcmp(prev, next))) {
            rc = api->set_error(ctx, FERRY_EPROTO, 0,
                                "conversations.list: page %lld gave %s "
                                "cursor; stopping rather than looping",
                                (long long)pages,
                                prev && !strcmp(prev, next) ? "the same"
                                                            : "an oversized");
            break;
        }
        if (max && (json_int_t)json_array_size(channels) >= max)
            break;
        free(prev);
        prev = strdup(next);
        json_object_set_new(args, "cursor", json_string(next));
    }
    free(prev);
    json_decref(args);
    if (rc) {
        json_decref(answer);
        json_decref(channels);
        return rc;
    }
    /* With max_channels, the listing stops after the page that reached it
     * (whole pages: next_cursor resumes right after the last channel
     * returned). */
    json_t *out = json_pack("{s:o, s:I, s:I, s:s?}", "channels", channels,
                            "count", (json_int_t)json_array_size(channels),
                            "pages", pages, "next_cursor", next);
    json_decref(answer);
    api->log(ctx, FERRY_LOG_INFO, NULL,
             "conversations.list: %lld channels in %lld pages",
             (long long)json_integer_value(json_object_get(out, "count")),
             (long long)pages);
    return api->set_output(ctx, out);
}
