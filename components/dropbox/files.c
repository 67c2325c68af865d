/*
 * dropbox.list_folder, dropbox.get_latest_cursor, dropbox.get_metadata,
 * dropbox.move and dropbox.delete: RPC routes on the api host.
 *
 * Outputs are the API's own results (entries and metadata as Dropbox
 * writes them, ".tag" included), so that docs/dropbox.md can point at the
 * API's reference for their fields.
 *
 * cursor_key keeps a listing's cursor in the instance's state
 * (api->state_set, under "dropbox.cursor.<key>"): the next call with the
 * same key continues from it and so returns only what changed since. The
 * stored cursor is replaced when the step succeeds; a cursor Dropbox
 * declares reset starts a full listing again.
 */
#include "dropbox_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The path argument of a folder route: "" for the root, "/a" without a
 * trailing '/', ids and namespaces as they are. */
static const char *folder_arg(const char *path, char *buf, size_t n) {
    if (!path)
        return "";
    if (path[0] == '/' || !path[0])
        return dbx_folder(path, buf, n) ? NULL : buf;
    return path;
}

static int bad_path(ferry_ctx *ctx, const char *action, const char *name) {
    return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                              "%s: '%s' is too long to be a Dropbox path",
                              action, name);
}

/* A list_folder / get_latest_cursor argument from the inputs. */
static json_t *list_arg(const json_t *input, const char *path) {
    json_t *arg = json_pack(
        "{s:s, s:b, s:b}", "path", path, "recursive",
        json_is_true(json_object_get(input, "recursive")), "include_deleted",
        json_is_true(json_object_get(input, "include_deleted")));
    const json_t *limit = json_object_get(input, "limit");
    if (arg && json_is_integer(limit))
        json_object_set(arg, "limit", (json_t *)limit);
    return arg;
}

static void state_key(const json_t *input, char *out, size_t n) {
    const char *k = json_string_value(json_object_get(input, "cursor_key"));
    out[0] = 0;
    if (k && *k)
        snprintf(out, n, "dropbox.cursor.%s", k);
}

static int append_entry(void *ud, const json_t *entry) {
    return json_array_append((json_t *)ud, (json_t *)entry);
}

int dbx_action_list_folder(ferry_ctx *ctx, const json_t *input) {
    const char *action = "dropbox.list_folder";
    int rc = dbx_ready(ctx, action);
    if (rc)
        return rc;
    char buf[4096], key[512];
    const char *path = folder_arg(
        json_string_value(json_object_get(input, "path")), buf, sizeof(buf));
    if (!path)
        return bad_path(ctx, action, "path");
    const json_t *limit = json_object_get(input, "limit");
    if (json_is_integer(limit) &&
        (json_integer_value(limit) < 1 || json_integer_value(limit) > 2000))
        return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "%s: 'limit' must be 1 to 2000", action);
    const json_t *mx = json_object_get(input, "max_entries");
    if (json_is_integer(mx) && json_integer_value(mx) < 0)
        return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "%s: 'max_entries' must not be negative",
                                  action);
    size_t max_entries =
        json_is_integer(mx) ? (size_t)json_integer_value(mx) : 0;
    state_key(input, key, sizeof(key));

    /* Where to start: a given cursor, a stored one, or the folder. */
    json_t *stored = NULL;
    const char *cursor = json_string_value(json_object_get(input, "cursor"));
    if (cursor && !*cursor)
        cursor = NULL;
    if (!cursor && key[0]) {
        stored = dbx_api->state_get(ctx, key);
        cursor = json_string_value(stored);
    }
    json_t *arg = list_arg(input, path), *entries = json_array();
    if (!arg || !entries) {
        json_decref(arg);
        json_decref(entries);
        json_decref(stored);
        return dbx_oom(ctx);
    }
    json_t *next = NULL;
    int more = 0;
    dbx_err e;
    const char *what = path[0] ? path : "/";
    rc = dbx_list(ctx, arg, cursor, what, append_entry, entries, max_entries,
                  &next, &more, &e);
    if (rc && stored && cursor && dbx_err_has(&e, "reset")) {
        /* The stored cursor is no longer valid: list everything again. */
        dbx_api->log(ctx, FERRY_LOG_WARN, NULL,
                     "%s: the stored cursor was reset by Dropbox; listing "
                     "'%s' from the start",
                     action, path);
        dbx_err_clear(&e);
        json_array_clear(entries);
        rc = dbx_list(ctx, arg, NULL, what, append_entry, entries, max_entries,
                      &next, &more, &e);
    }
    json_decref(arg);
    json_decref(stored);
    if (rc) {
        json_decref(entries);
        return dbx_fail(ctx, &e);
    }
    if (key[0]) {
        rc = dbx_api->state_set(ctx, key, json_incref(next));
        if (rc) {
            json_decref(entries);
            json_decref(next);
            return dbx_api->set_error(ctx, rc, 1,
                                      "%s: cannot store the cursor: %s", action,
                                      ferry_strerror(rc));
        }
    }
    size_t count = json_array_size(entries);
    return dbx_api->set_output(
        ctx, json_pack("{s:o, s:o, s:b, s:I}", "entries", entries, "cursor",
                       next, "has_more", more, "count", (json_int_t)count));
}

int dbx_action_get_latest_cursor(ferry_ctx *ctx, const json_t *input) {
    const char *action = "dropbox.get_latest_cursor";
    int rc = dbx_ready(ctx, action);
    if (rc)
        return rc;
    char buf[4096], key[512];
    const char *path = folder_arg(
        json_string_value(json_object_get(input, "path")), buf, sizeof(buf));
    if (!path)
        return bad_path(ctx, action, "path");
    state_key(input, key, sizeof(key));
    json_t *arg = list_arg(input, path);
    if (!arg)
        return dbx_oom(ctx);
    dbx_req r = {.route = "files/list_folder/get_latest_cursor",
                 .style = DBX_RPC,
                 .arg = arg,
                 .what = path[0] ? path : "/"};
    dbx_res res;
    dbx_err e;
    rc = dbx_call(ctx, &r, &res, &e);
    json_decref(arg);
    if (rc)
        return dbx_fail(ctx, &e);
    json_t *cursor = json_object_get(res.result, "cursor");
    if (!json_is_string(cursor)) {
        dbx_res_clear(&res);
        return dbx_api->set_error(ctx, FERRY_EPROTO, 1,
                                  "dropbox %s: the answer has no cursor",
                                  r.route);
    }
    if (key[0] && (rc = dbx_api->state_set(ctx, key, json_incref(cursor)))) {
        dbx_res_clear(&res);
        return dbx_api->set_error(ctx, rc, 1, "%s: cannot store the cursor: %s",
                                  action, ferry_strerror(rc));
    }
    json_t *out = json_pack("{s:O}", "cursor", cursor);
    dbx_res_clear(&res);
    return dbx_api->set_output(ctx, out);
}

int dbx_action_get_metadata(ferry_ctx *ctx, const json_t *input) {
    int rc = dbx_ready(ctx, "dropbox.get_metadata");
    if (rc)
        return rc;
    const char *path = json_string_value(json_object_get(input, "path"));
    json_t *arg =
        json_pack("{s:s, s:b}", "path", path ? path : "", "include_deleted",
                  json_is_true(json_object_get(input, "include_deleted")));
    if (!arg)
        return dbx_oom(ctx);
    dbx_req r = {.route = "files/get_metadata",
                 .style = DBX_RPC,
                 .arg = arg,
                 .what = path};
    dbx_res res;
    dbx_err e;
    rc = dbx_call(ctx, &r, &res, &e);
    json_decref(arg);
    if (rc) {
        if (json_is_true(json_object_get(input, "missing_ok")) &&
            e.status == 409 && dbx_err_has(&e, "not_found")) {
            dbx_err_clear(&e);
            return dbx_api->set_output(ctx, json_null());
        }
        return dbx_fail(ctx, &e);
    }
    json_t *out = res.result;
    res.result = NULL;
    dbx_res_clear(&res);
    return dbx_api->set_output(ctx, out);
}

int dbx_action_move(ferry_ctx *ctx, const json_t *input) {
    int rc = dbx_ready(ctx, "dropbox.move");
    if (rc)
        return rc;
    const char *from = json_string_value(json_object_get(input, "from_path"));
    const char *to = json_string_value(json_object_get(input, "to_path"));
    json_t *arg = json_pack(
        "{s:s, s:s, s:b, s:b}", "from_path", from ? from : "", "to_path",
        to ? to : "", "autorename",
        json_is_true(json_object_get(input, "autorename")),
        "allow_ownership_transfer",
        json_is_true(json_object_get(input, "allow_ownership_transfer")));
    if (!arg)
        return dbx_oom(ctx);
    char what[8300];
    snprintf(what, sizeof(what), "%s' -> '%s", from ? from : "", to ? to : "");
    dbx_req r = {
        .route = "files/move_v2", .style = DBX_RPC, .arg = arg, .what = what};
    dbx_res res;
    dbx_err e;
    rc = dbx_call(ctx, &r, &res, &e);
    json_decref(arg);
    if (rc)
        return dbx_fail(ctx, &e);
    json_t *out = res.result;
    res.result = NULL;
    dbx_res_clear(&res);
    return dbx_api->set_output(ctx, out);
}

int dbx_action_delete(ferry_ctx *ctx, const json_t *input) {
    int rc = dbx_ready(ctx, "dropbox.delete");
    if (rc)
        return rc;
    const char *path = json_string_value(json_object_get(input, "path"));
    const char *parent_rev =
        json_string_value(json_object_get(input, "parent_rev"));
    json_t *arg = json_pack("{s:s}", "path", path ? path : "");
    if (arg && parent_rev && *parent_rev)
        json_object_set_new(arg, "parent_rev", json_string(parent_rev));
    if (!arg)
        return dbx_oom(ctx);
    dbx_req r = {
        .route = "files/delete_v2", .style = DBX_RPC, .arg = arg, .what = path};
    dbx_res res;
    dbx_err e;
    rc = dbx_call(ctx, &r, &res, &e);
    json_decref(arg);
    if (rc) {
        if (json_is_true(json_object_get(input, "missing_ok")) &&
            e.status == 409 && dbx_err_has(&e, "not_found")) {
            dbx_err_clear(&e);
            return dbx_api->set_output(
                ctx, json_pack("{s:n, s:b}", "metadata", "deleted", 0));
        }
        return dbx_fail(ctx, &e);
    }
    json_t *out =
        json_pack("{s:O?, s:b}", "metadata",
                  json_object_get(res.result, "metadata"), "deleted", 1);
    dbx_res_clear(&res);
    return dbx_api->set_output(ctx, out);
}
