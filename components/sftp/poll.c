/*
 * sftp.new_files: the file-listing poll trigger (FERRY_TRIGGER_FILES).
 *
 * The host owns selection and dedupe: it applies include, exclude,
 * min_age, the read lock, max_per_poll, sort_by and the disposal options
 * to what this lists, and remembers what it took. A poll here does two
 * things, in this order:
 *
 *   1. carries out the disposals the host hands over in "dispose" (files
 *      whose executions have ended): a move creates the target's parent
 *      directories and never replaces a file (a taken name gets "." and
 *      the time in ms appended); a source that is gone counts as done, so
 *      a disposal repeated after a crash is harmless;
 *   2. lists "path" (recursively if asked) and returns its regular files.
 *      Names starting with '.' are skipped and such directories never
 *      entered, so .done/, .error/ and put's temporary files stay out.
 *
 * Output: {"items": [{"path", "relative", "name", "size", "mtime"}],
 * "cursor": null, "disposed": [path...], "dispose_errors": [{"path",
 * "error"}]}. The cursor is not used: every poll lists the directory.
 */
#include "sftp_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Items a poll returns at most (the host takes fewer per poll anyway). */
#define POLL_MAX_ITEMS 100000
/* Attempts at a free name when a move's target is taken. */
#define MOVE_ATTEMPTS 5
/* Directories known to exist, remembered during one poll. */
#define KNOWN_DIRS 16

typedef struct poll_state {
    sftp_call *call;
    json_t *items;
    int truncated;
    char *known[KNOWN_DIRS]; /* ring of directories made or seen */
    size_t nknown;
} poll_state;

static int is_missing(int rc) {
    return SFTP_RC_IS_STATUS(rc) &&
           (SFTP_RC_TO_STATUS(rc) == LIBSSH2_FX_NO_SUCH_FILE ||
            SFTP_RC_TO_STATUS(rc) == LIBSSH2_FX_NO_SUCH_PATH);
}

/* The message of a failed disposal, for dispose_errors. */
static json_t *rc_message(int rc, const char *op, const char *path) {
    char msg[SFTP_PATH_MAX + 128];
    if (SFTP_RC_IS_STATUS(rc))
        snprintf(msg, sizeof(msg), "%s %s: %s", op, path,
                 sftp_status_text(SFTP_RC_TO_STATUS(rc)));
    else
        snprintf(msg, sizeof(msg),
                 "%s %s: the connection failed (libssh2 "
                 "error %d)",
                 op, path, rc);
    return json_string(msg);
}

static int known_dir(poll_state *s, const char *dir) {
    for (size_t i = 0; i < KNOWN_DIRS && i < s->nknown; i++)
        if (s->known[i] && !strcmp(s->known[i], dir))
            return 1;
    return 0;
}

static void remember_dir(poll_state *s, const char *dir) {
    size_t i = s->nknown++ % KNOWN_DIRS;
    free(s->known[i]);
    s->known[i] = strdup(dir);
}

/* "path.<ms>" (and a counter after the first attempt) into out. */
static int free_name(const char *to, int attempt, char *out, size_t n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long ms = (unsigned long long)ts.tv_sec * 1000ull +
                            (unsigned long long)ts.tv_nsec / 1000000ull;
    int w = attempt ? snprintf(out, n, "%s.%llu-%d", to, ms, attempt)
                    : snprintf(out, n, "%s.%llu", to, ms);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* One move. Returns 0 (done, or the source was gone already) or a helper
 * result with *msg set (a new ref). */
static int dispose_move(poll_state *s, const char *from, const char *to,
                        json_t **msg) {
    sftp_call *call = s->call;
    char parent[SFTP_PATH_MAX], target[SFTP_PATH_MAX];
    LIBSSH2_SFTP_ATTRIBUTES a;
    int rc;
    sftp_path_parent(to, parent, sizeof(parent));
    if (!known_dir(s, parent)) {
        if ((rc = sftp_mkdirs(call, parent, 0755, NULL))) {
            *msg = rc_message(rc, "creating the directory", call->failed);
            return rc;
        }
        remember_dir(s, parent);
    }
    snprintf(target, sizeof(target), "%s", to);
    for (int attempt = 0;; attempt++) {
        /* Never onto an existing file, whatever the server's rename would
         * do (OpenSSH's refuses to replace one; others may not). */
        rc = sftp_stat(call, target, 1, &a);
        if (rc == 0) {
            if (attempt >= MOVE_ATTEMPTS) {
                rc = SFTP_RC_STATUS(LIBSSH2_FX_FILE_ALREADY_EXISTS);
                break;
            }
            if (free_name(to, attempt, target, sizeof(target))) {
                *msg = json_string("the target's path is too long for a "
                                   "unique suffix");
                return SFTP_RC_STATUS(LIBSSH2_FX_FAILURE);
            }
            continue;
        }
        if (!is_missing(rc))
            break;
        rc = sftp_rename(call, from, target, 0);
        if (rc == 0 || !SFTP_RC_IS_STATUS(rc))
            break;
        int src = sftp_stat(call, from, 1, &a);
        if (is_missing(src))
            return 0; /* moved already */
        if (src) {
            rc = src;
            break;
        }
        if (sftp_stat(call, target, 1, &a) != 0 || attempt >= MOVE_ATTEMPTS)
            break; /* the target is free: the rename failed for another
                      reason */
        if (free_name(to, attempt, target, sizeof(target))) {
            *msg = json_string("the target's path is too long for a "
                               "unique suffix");
            return rc;
        }
        /* The name was taken between the look and the rename. */
    }
    if (rc)
        *msg = rc_message(rc, "moving", from);
    else if (strcmp(target, to))
        sftp_api->log(call->ctx, FERRY_LOG_INFO, NULL,
                      "%s existed; %s moved to %s", to, from, target);
    return rc;
}

static int dispose_delete(poll_state *s, const char *path, json_t **msg) {
    sftp_call *call = s->call;
    int rc = libssh2_sftp_unlink_ex(call->sftp, path, (unsigned)strlen(path));
    rc = rc ? sftp_rc(call, rc) : 0;
    if (rc == 0 || is_missing(rc))
        return 0;
    *msg = rc_message(rc, "deleting", path);
    return rc;
}

/* Carries out the disposals. Returns 0, or a transport failure (recorded)
 * that ends the poll. */
static int dispose_all(poll_state *s, const json_t *list, json_t *done,
                       json_t *errors) {
    sftp_call *call = s->call;
    size_t i;
    const json_t *d;
    json_array_foreach(list, i, d) {
        const json_t *pv = json_object_get(d, "path");
        const char *action = json_string_value(json_object_get(d, "action"));
        const char *shown = json_is_string(pv) ? json_string_value(pv) : "?";
        char from[SFTP_PATH_MAX], to[SFTP_PATH_MAX];
        json_t *msg = NULL;
        int rc = 0, pr;
        if (!json_is_string(pv) || !action) {
            msg = json_string("a disposal needs a path and an action");
        } else if ((pr = sftp_path_resolve(call->root, json_string_value(pv),
                                           json_string_length(pv), from,
                                           sizeof(from)))) {
            msg =
                json_pack("s++", "path refused: ", sftp_path_strerror(pr), "");
        } else if (!strcmp(from, call->root)) {
            msg = json_string("path refused: the connection's root");
        } else if (!strcmp(action, "delete")) {
            rc = dispose_delete(s, from, &msg);
        } else if (!strcmp(action, "move")) {
            const json_t *tv = json_object_get(d, "to");
            if (!json_is_string(tv))
                msg = json_string("a move needs \"to\"");
            else if ((pr = sftp_path_resolve(call->root, json_string_value(tv),
                                             json_string_length(tv), to,
                                             sizeof(to))))
                msg = json_pack("s++",
                                "target refused: ", sftp_path_strerror(pr), "");
            else if (!strcmp(to, call->root) || sftp_path_inside(from, to))
                msg = json_string("target refused: the root, or inside the "
                                  "file itself");
            else
                rc = dispose_move(s, from, to, &msg);
        } else {
            msg = json_pack("s++", "unknown action '", action, "'");
        }
        if (!msg) {
            json_array_append_new(done, json_string(from));
            continue;
        }
        json_array_append_new(
            errors, json_pack("{s:s, s:o}", "path", shown, "error", msg));
        sftp_api->log(call->ctx, FERRY_LOG_WARN, NULL, "%s: %s: %s", call->what,
                      shown, json_string_value(msg));
        if (rc && !SFTP_RC_IS_STATUS(rc))
            return sftp_fail(call, rc, "disposing of", shown, NULL);
    }
    return 0;
}

static int item_cb(void *ud, const char *path, const char *relative,
                   const char *name, const LIBSSH2_SFTP_ATTRIBUTES *a) {
    poll_state *s = ud;
    if (!(a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) ||
        !LIBSSH2_SFTP_S_ISREG(a->permissions))
        return 0;
    if (json_array_size(s->items) >= POLL_MAX_ITEMS) {
        s->truncated = 1;
        return 1;
    }
    json_array_append_new(
        s->items,
        json_pack(
            "{s:s, s:s, s:s, s:I, s:I}", "path", path, "relative", relative,
            "name", name, "size",
            (json_int_t)(a->flags & LIBSSH2_SFTP_ATTR_SIZE ? a->filesize : 0),
            "mtime",
            (json_int_t)(a->flags & LIBSSH2_SFTP_ATTR_ACMODTIME ? a->mtime
                                                                : 0)));
    return 0;
}

int sftp_poll_new_files(ferry_ctx *ctx, const json_t *input) {
    sftp_call call;
    char dir[SFTP_PATH_MAX];
    int rc;
    if ((rc = sftp_call_open(ctx, "sftp.new_files", &call)) ||
        (rc = sftp_resolve(&call, json_object_get(input, "path"), "path", dir)))
        return rc;
    poll_state s = {.call = &call};
    json_t *done = json_array(), *errors = json_array();
    const json_t *dispose = json_object_get(input, "dispose");
    rc = 0;
    if (json_is_array(dispose))
        rc = dispose_all(&s, dispose, done, errors);
    for (size_t i = 0; i < KNOWN_DIRS; i++)
        free(s.known[i]);
    if (rc) {
        json_decref(done);
        json_decref(errors);
        return rc;
    }
    s.items = json_array();
    sftp_walk_opts o = {
        .recursive = sftp_input_bool(input, "recursive", 0),
        .skip_hidden = 1,
        .skip_unreadable = 1,
    };
    rc = sftp_walk(&call, dir, &o, item_cb, &s);
    if (rc) {
        json_decref(s.items);
        json_decref(done);
        json_decref(errors);
        return sftp_fail(&call, rc, "listing", call.failed, NULL);
    }
    if (s.truncated)
        sftp_api->log(ctx, FERRY_LOG_WARN, NULL,
                      "sftp.new_files: more than %d files under %s; the rest "
                      "are listed once earlier ones are moved away",
                      POLL_MAX_ITEMS, dir);
    return sftp_api->set_output(ctx, json_pack("{s:o, s:n, s:o, s:o}", "items",
                                               s.items, "cursor", "disposed",
                                               done, "dispose_errors", errors));
}
