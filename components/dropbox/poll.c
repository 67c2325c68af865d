/*
 * dropbox.new_files: the file-listing poll trigger (FERRY_TRIGGER_FILES).
 *
 * The host owns selection and dedupe (docs/polling.md, "File-listing
 * triggers"): it applies include, exclude, min_age, the read lock,
 * max_per_poll, sort_by and the disposal options to what this lists, keys
 * each file by relative path, size and mtime, and remembers what it took.
 * A poll does two things, in this order:
 *
 *   1. carries out the disposals the host hands over in "dispose": a move
 *      is files/move_v2 with autorename off (Dropbox creates the target's
 *      folders); when the target is taken, the name gets "." and the time
 *      in ms appended, as sftp.new_files does, and the move is tried again;
 *      a source that is gone counts as done, so a disposal repeated after a
 *      crash is harmless. A delete is files/delete_v2, a missing file done.
 *      A disposal Dropbox refuses goes to dispose_errors (the host logs it
 *      and asks again at the next poll); a transport failure fails the
 *      poll, which stores nothing.
 *   2. lists "path" (recursively if asked, following has_more) and returns
 *      its files (".tag" "file"); a folder that does not exist (yet) has
 *      none, with a warning in the poll's log. Entries whose relative path has
 * a component starting with '.' are skipped: hidden files, and .done/ and
 * .error/ with everything in them.
 *
 * Output: {"items": [{"path", "relative", "name", "size", "mtime", "rev",
 * "content_hash", "id", "server_modified"}], "cursor": null, "disposed":
 * [path...], "dispose_errors": [{"path", "error"}]}. path is the entry's
 * path_display; mtime its server_modified in Unix seconds. The cursor is
 * not used: the read lock compares whole listings, so every poll lists the
 * folder.
 */
#include "dropbox_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Items a poll returns at most (the host takes fewer per poll anyway). */
#define POLL_MAX_ITEMS 100000
/* Attempts at a free name when a move's target is taken. */
#define MOVE_ATTEMPTS 5

typedef struct listing {
    const char *folder;
    json_t *items;
    size_t skipped;
} listing;

static int on_entry(void *ud, const json_t *entry) {
    listing *l = ud;
    const char *tag = json_string_value(json_object_get(entry, ".tag"));
    if (!tag || strcmp(tag, "file"))
        return 0;
    const char *path =
        json_string_value(json_object_get(entry, "path_display"));
    if (!path)
        path = json_string_value(json_object_get(entry, "path_lower"));
    const char *rel = path ? dbx_relative(l->folder, path) : NULL;
    const json_t *size = json_object_get(entry, "size");
    const char *mod =
        json_string_value(json_object_get(entry, "server_modified"));
    int64_t mtime = dbx_parse_time(mod);
    if (!rel || !json_is_integer(size) || mtime < 0) {
        l->skipped++;
        return 0;
    }
    if (dbx_hidden(rel) || json_array_size(l->items) >= POLL_MAX_ITEMS)
        return 0;
    const char *name = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
    json_t *item =
        json_pack("{s:s, s:s, s:s, s:O, s:I, s:O?, s:O?, s:O?, s:s}", "path",
                  path, "relative", rel, "name", name, "size", size, "mtime",
                  (json_int_t)mtime, "rev", json_object_get(entry, "rev"),
                  "content_hash", json_object_get(entry, "content_hash"), "id",
                  json_object_get(entry, "id"), "server_modified", mod);
    return item ? json_array_append_new(l->items, item) : -1;
}

/* "to.<ms>", and a counter after the first retry, into out. */
static void free_name(const char *to, int attempt, char *out, size_t n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (attempt <= 1)
        snprintf(out, n, "%s.%lld", to, now);
    else
        snprintf(out, n, "%s.%lld-%d", to, now, attempt);
}

/* Carries out one disposal. Returns 0 (done, or refused and reported in
 * errors), or a code when the poll must fail. */
static int dispose_one(ferry_ctx *ctx, const json_t *d, json_t *disposed,
                       json_t *errors) {
    const char *path = json_string_value(json_object_get(d, "path"));
    const char *action = json_string_value(json_object_get(d, "action"));
    const char *to = json_string_value(json_object_get(d, "to"));
    if (!path || !action ||
        (strcmp(action, "delete") && (strcmp(action, "move") || !to))) {
        json_array_append_new(errors,
                              json_pack("{s:s?, s:s}", "path", path, "error",
                                        "not a disposal this trigger knows"));
        return 0;
    }
    dbx_res res;
    dbx_err e;
    int rc;
    if (!strcmp(action, "delete")) {
        json_t *arg = json_pack("{s:s}", "path", path);
        dbx_req r = {.route = "files/delete_v2",
                     .style = DBX_RPC,
                     .arg = arg,
                     .what = path};
        rc = arg ? dbx_call(ctx, &r, &res, &e) : dbx_oom(ctx);
        json_decref(arg);
        if (!arg)
            return rc;
    } else {
        char target[8192];
        snprintf(target, sizeof(target), "%s", to);
        for (int attempt = 0;; attempt++) {
            json_t *arg = json_pack("{s:s, s:s, s:b}", "from_path", path,
                                    "to_path", target, "autorename", 0);
            dbx_req r = {.route = "files/move_v2",
                         .style = DBX_RPC,
                         .arg = arg,
                         .what = path};
            rc = arg ? dbx_call(ctx, &r, &res, &e) : dbx_oom(ctx);
            json_decref(arg);
            if (!arg)
                return rc;
            if (rc && e.status == 409 && dbx_err_has(&e, "to") &&
                dbx_err_has(&e, "conflict") && attempt + 1 < MOVE_ATTEMPTS) {
                dbx_err_clear(&e);
                free_name(to, attempt + 1, target, sizeof(target));
                continue;
            }
            break;
        }
        if (!rc && strcmp(target, to))
            dbx_api->log(ctx, FERRY_LOG_INFO,
                         json_pack("{s:s, s:s}", "path", path, "to", target),
                         "dropbox.new_files: '%s' was taken; moved '%s' to "
                         "'%s'",
                         to, path, target);
    }
    if (!rc) {
        dbx_res_clear(&res);
        json_array_append_new(disposed, json_string(path));
        return 0;
    }
    if (e.status == 409 && dbx_err_has(&e, "not_found") &&
        (dbx_err_has(&e, "from_lookup") || dbx_err_has(&e, "path_lookup"))) {
        /* Gone already: disposed of by an earlier poll, or by someone. */
        dbx_err_clear(&e);
        json_array_append_new(disposed, json_string(path));
        return 0;
    }
    if (!e.status) /* no answer: the next poll tries again */
        return dbx_fail(ctx, &e);
    json_array_append_new(
        errors, json_pack("{s:s, s:s}", "path", path, "error", e.message));
    dbx_err_clear(&e);
    return 0;
}

int dbx_poll_new_files(ferry_ctx *ctx, const json_t *input) {
    const char *trigger = "dropbox.new_files";
    int rc = dbx_ready(ctx, trigger);
    if (rc)
        return rc;
    const char *path = json_string_value(json_object_get(input, "path"));
    char folder[4096];
    if (!path || dbx_folder(path, folder, sizeof(folder)))
        return dbx_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "%s: 'path' must be a folder path: \"\" or "
                                  "\"/\" for the root, or starting with '/'",
                                  trigger);
    json_t *disposed = json_array(), *errors = json_array();
    listing l = {.folder = folder, .items = json_array()};
    if (!disposed || !errors || !l.items) {
        json_decref(disposed);
        json_decref(errors);
        json_decref(l.items);
        return dbx_oom(ctx);
    }
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(input, "dispose"), i, d) {
        if ((rc = dispose_one(ctx, d, disposed, errors)))
            goto fail;
    }
    json_t *arg = json_pack("{s:s, s:b, s:b}", "path", folder, "recursive",
                            json_is_true(json_object_get(input, "recursive")),
                            "include_deleted", 0);
    if (!arg) {
        rc = dbx_oom(ctx);
        goto fail;
    }
    json_t *cursor = NULL;
    int more = 0;
    dbx_err e;
    rc = dbx_list(ctx, arg, NULL, folder[0] ? folder : "/", on_entry, &l, 0,
                  &cursor, &more, &e);
    json_decref(arg);
    json_decref(cursor);
    if (rc && e.status == 409 && dbx_err_has(&e, "path") &&
        dbx_err_has(&e, "not_found")) {
        /* Nothing there yet: no files (the first upload creates it). */
        dbx_api->log(ctx, FERRY_LOG_WARN, NULL,
                     "%s: the folder '%s' does not exist (yet); no files",
                     trigger, folder[0] ? folder : "/");
        dbx_err_clear(&e);
        rc = FERRY_OK;
    }
    if (rc) {
        rc = dbx_fail(ctx, &e);
        goto fail;
    }
    if (l.skipped)
        dbx_api->log(ctx, FERRY_LOG_WARN, NULL,
                     "%s: %zu file entries without a usable path, size or "
                     "server_modified were skipped",
                     trigger, l.skipped);
    return dbx_api->set_output(
        ctx, json_pack("{s:o, s:n, s:o, s:o}", "items", l.items, "cursor",
                       "disposed", disposed, "dispose_errors", errors));
fail:
    json_decref(disposed);
    json_decref(errors);
    json_decref(l.items);
    return rc;
}
