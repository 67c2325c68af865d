/*
 * sftp.list, sftp.stat, sftp.move, sftp.delete and sftp.mkdir, and the
 * directory walk that sftp.list, sftp.delete and the poll share. The
 * transfers (sftp.get, sftp.put) are in transfer.c.
 */
#include "sftp_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* sftp.list gives at most this many entries unless told otherwise. */
#define LIST_LIMIT_DEFAULT 100000

void sftp_iso8601(uint64_t t, char *out, size_t n) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, n, "1970-01-01T00:00:00Z");
}

static const char *type_name(const LIBSSH2_SFTP_ATTRIBUTES *a) {
    if (!(a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS))
        return "unknown";
    if (LIBSSH2_SFTP_S_ISREG(a->permissions))
        return "file";
    if (LIBSSH2_SFTP_S_ISDIR(a->permissions))
        return "dir";
    if (LIBSSH2_SFTP_S_ISLNK(a->permissions))
        return "link";
    return "other";
}

json_t *sftp_entry_json(const char *path, const char *relative,
                        const LIBSSH2_SFTP_ATTRIBUTES *a) {
    json_t *e = json_object();
    char buf[40];
    json_object_set_new(e, "path", json_string(path));
    if (relative)
        json_object_set_new(e, "relative", json_string(relative));
    json_object_set_new(e, "name", json_string(sftp_path_name(path)));
    json_object_set_new(e, "type", json_string(type_name(a)));
    json_object_set_new(e, "size",
                        a->flags & LIBSSH2_SFTP_ATTR_SIZE
                            ? json_integer((json_int_t)a->filesize)
                            : json_null());
    if (a->flags & LIBSSH2_SFTP_ATTR_ACMODTIME) {
        sftp_iso8601(a->mtime, buf, sizeof(buf));
        json_object_set_new(e, "mtime", json_string(buf));
    } else {
        json_object_set_new(e, "mtime", json_null());
    }
    if (a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) {
        snprintf(buf, sizeof(buf), "%04lo", a->permissions & 07777ul);
        json_object_set_new(e, "permissions", json_string(buf));
    } else {
        json_object_set_new(e, "permissions", json_null());
    }
    return e;
}

/* ---- the walk ---- */

typedef struct walk_dir {
    char *path;
    int depth;
} walk_dir;

int sftp_walk(sftp_call *call, const char *dir, const sftp_walk_opts *o,
              sftp_walk_cb cb, void *ud) {
    walk_dir *stack = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, stop = 0;
    char name[1024], path[SFTP_PATH_MAX];
    LIBSSH2_SFTP_ATTRIBUTES a;

    stack = malloc(sizeof(*stack) * 8);
    if (!stack || !(stack[0].path = strdup(dir))) {
        free(stack);
        return LIBSSH2_ERROR_ALLOC;
    }
    stack[0].depth = 0;
    n = 1;
    cap = 8;
    while (n && rc == 0) {
        walk_dir d = stack[--n];
        LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_opendir(call->sftp, d.path);
        if (!h) {
            rc = sftp_last_rc(call);
            if (d.depth > 0 && o->skip_unreadable && SFTP_RC_IS_STATUS(rc)) {
                sftp_api->log(call->ctx, FERRY_LOG_WARN, NULL,
                              "%s: skipping directory %s: %s", call->what,
                              d.path, sftp_status_text(SFTP_RC_TO_STATUS(rc)));
                rc = 0;
            } else {
                snprintf(call->failed, sizeof(call->failed), "%s", d.path);
            }
            free(d.path);
            continue;
        }
        for (;;) {
            memset(&a, 0, sizeof(a));
            int r = libssh2_sftp_readdir_ex(h, name, sizeof(name), NULL, 0, &a);
            if (r == 0)
                break;
            if (r < 0) {
                rc = sftp_rc(call, r);
                snprintf(call->failed, sizeof(call->failed), "%s", d.path);
                break;
            }
            size_t len = (size_t)r;
            if ((len == 1 && name[0] == '.') ||
                (len == 2 && name[0] == '.' && name[1] == '.'))
                continue;
            if (o->skip_hidden && name[0] == '.')
                continue;
            int pr = sftp_path_child(d.path, name, len, path, sizeof(path));
            if (pr) {
                sftp_api->log(call->ctx, FERRY_LOG_WARN, NULL,
                              "%s: skipping an entry of %s: %s", call->what,
                              d.path, sftp_path_strerror(pr));
                continue;
            }
            const char *rel = sftp_path_relative(dir, path);
            int c = cb(ud, path, rel ? rel : path, sftp_path_name(path), &a);
            if (c == 1) {
                stop = 1;
                break;
            }
            if (c < 0) {
                call->recorded = c;
                rc = SFTP_RC_RECORDED;
                break;
            }
            if (o->recursive && d.depth + 1 < SFTP_WALK_DEPTH &&
                (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
                LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
                if (n == cap) {
                    walk_dir *s = realloc(stack, sizeof(*s) * cap * 2);
                    if (!s) {
                        rc = LIBSSH2_ERROR_ALLOC;
                        break;
                    }
                    stack = s;
                    cap *= 2;
                }
                if (!(stack[n].path = strdup(path))) {
                    rc = LIBSSH2_ERROR_ALLOC;
                    break;
                }
                stack[n++].depth = d.depth + 1;
            }
        }
        int cr = libssh2_sftp_closedir(h);
        if (cr && rc == 0 && !SFTP_RC_IS_STATUS(sftp_rc(call, cr)))
            rc = cr;
        free(d.path);
        if (stop)
            break;
    }
    while (n)
        free(stack[--n].path);
    free(stack);
    return rc;
}

/* ---- sftp.list ---- */

typedef struct list_ud {
    json_t *entries;
    const char *glob;
    const char *type;
    size_t limit;
    int truncated;
} list_ud;

static int list_cb(void *ud, const char *path, const char *relative,
                   const char *name, const LIBSSH2_SFTP_ATTRIBUTES *a) {
    list_ud *u = ud;
    if (u->glob && !sftp_path_glob(u->glob, name, relative))
        return 0;
    if (u->type && strcmp(u->type, "any") && strcmp(u->type, type_name(a)))
        return 0;
    if (json_array_size(u->entries) >= u->limit) {
        u->truncated = 1;
        return 1;
    }
    json_array_append_new(u->entries, sftp_entry_json(path, relative, a));
    return 0;
}

static int by_path(const void *x, const void *y) {
    const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    return strcmp(json_string_value(json_object_get(a, "path")),
                  json_string_value(json_object_get(b, "path")));
}

/* The array sorted by "path" (a new array; the elements are shared). */
static json_t *sorted(json_t *arr) {
    size_t n = json_array_size(arr);
    json_t **v = malloc(sizeof(*v) * (n ? n : 1));
    json_t *out = json_array();
    if (!v || !out) {
        free(v);
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(arr, i);
    qsort(v, n, sizeof(*v), by_path);
    for (size_t i = 0; i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    return out;
}

int sftp_action_list(ferry_ctx *ctx, const json_t *input) {
    sftp_call call;
    char dir[SFTP_PATH_MAX];
    int rc;
    if ((rc = sftp_call_open(ctx, "sftp.list", &call)) ||
        (rc = sftp_resolve(&call, json_object_get(input, "path"), "path", dir)))
        return rc;
    list_ud u = {0};
    u.glob = json_string_value(json_object_get(input, "glob"));
    if (u.glob && !*u.glob)
        u.glob = NULL;
    u.type = json_string_value(json_object_get(input, "type"));
    if (u.type && strcmp(u.type, "any") && strcmp(u.type, "file") &&
        strcmp(u.type, "dir") && strcmp(u.type, "link") &&
        strcmp(u.type, "other"))
        return sftp_api->set_error(ctx, FERRY_EINVAL, 0,
                                   "sftp.list: type must be \"any\", \"file\", "
                                   "\"dir\", \"link\" or \"other\", not '%s'",
                                   u.type);
    const json_t *lim = json_object_get(input, "limit");
    u.limit = LIST_LIMIT_DEFAULT;
    if (json_is_integer(lim)) {
        if (json_integer_value(lim) < 1)
            return sftp_api->set_error(ctx, FERRY_EINVAL, 0,
                                       "sftp.list: limit must be at least 1");
        u.limit = (size_t)json_integer_value(lim);
    }
    sftp_walk_opts o = {
        .recursive = sftp_input_bool(input, "recursive", 0),
        .skip_hidden = !sftp_input_bool(input, "include_hidden", 1),
    };
    u.entries = json_array();
    rc = sftp_walk(&call, dir, &o, list_cb, &u);
    if (rc) {
        json_decref(u.entries);
        return sftp_fail(&call, rc, "listing", call.failed, NULL);
    }
    json_t *entries = sorted(u.entries);
    json_decref(u.entries);
    if (!entries)
        return sftp_api->set_error(ctx, FERRY_ENOMEM, 0,
                                   "sftp.list: out of memory");
    return sftp_api->set_output(
        ctx, json_pack("{s:s, s:I, s:b, s:o}", "path", dir, "count",
                       (json_int_t)json_array_size(entries), "truncated",
                       u.truncated, "entries", entries));
}

/* ---- sftp.stat ---- */

int sftp_action_stat(ferry_ctx *ctx, const json_t *input) {
    sftp_call call;
    char path[SFTP_PATH_MAX];
    LIBSSH2_SFTP_ATTRIBUTES a;
    int rc;
    if ((rc = sftp_call_open(ctx, "sftp.stat", &call)) ||
        (rc =
             sftp_resolve(&call, json_object_get(input, "path"), "path", path)))
        return rc;
    rc = sftp_stat(&call, path, !sftp_input_bool(input, "follow_links", 1), &a);
    if (rc && SFTP_RC_IS_STATUS(rc) &&
        (SFTP_RC_TO_STATUS(rc) == LIBSSH2_FX_NO_SUCH_FILE ||
         SFTP_RC_TO_STATUS(rc) == LIBSSH2_FX_NO_SUCH_PATH) &&
        sftp_input_bool(input, "missing_ok", 0))
        return sftp_api->set_output(
            ctx, json_pack("{s:s, s:s, s:b}", "path", path, "name",
                           sftp_path_name(path), "exists", 0));
    if (rc)
        return sftp_fail(&call, rc, "reading the attributes of", path, NULL);
    json_t *e = sftp_entry_json(path, NULL, &a);
    json_object_set_new(e, "exists", json_true());
    return sftp_api->set_output(ctx, e);
}

/* ---- sftp.move ---- */

static int is_missing(int rc) {
    return SFTP_RC_IS_STATUS(rc) &&
           (SFTP_RC_TO_STATUS(rc) == LIBSSH2_FX_NO_SUCH_FILE ||
            SFTP_RC_TO_STATUS(rc) == LIBSSH2_FX_NO_SUCH_PATH);
}

int sftp_action_move(ferry_ctx *ctx, const json_t *input) {
    sftp_call call;
    char from[SFTP_PATH_MAX], to[SFTP_PATH_MAX], parent[SFTP_PATH_MAX];
    LIBSSH2_SFTP_ATTRIBUTES a;
    int rc;
    if ((rc = sftp_call_open(ctx, "sftp.move", &call)) ||
        (rc = sftp_resolve(&call, json_object_get(input, "from"), "from",
                           from)) ||
        (rc = sftp_resolve(&call, json_object_get(input, "to"), "to", to)))
        return rc;
    if (!strcmp(from, call.root) || !strcmp(to, call.root))
        return sftp_api->set_error(ctx, FERRY_EPERM, 0,
                                   "sftp.move: the connection's root '%s' "
                                   "cannot be moved or replaced",
                                   call.root);
    int overwrite = sftp_input_bool(input, "overwrite", 0);
    if (sftp_input_bool(input, "parents", 0)) {
        sftp_path_parent(to, parent, sizeof(parent));
        if ((rc = sftp_mkdirs(&call, parent, 0755, NULL)))
            return sftp_fail(&call, rc, "creating the directory", call.failed,
                             NULL);
    }
    if (!overwrite) {
        rc = sftp_stat(&call, to, 1, &a);
        if (rc == 0)
            return sftp_api->set_error(ctx, FERRY_EEXISTS, 0,
                                       "sftp.move: %s already exists (set "
                                       "overwrite to replace it)",
                                       to);
        if (!is_missing(rc))
            return sftp_fail(&call, rc, "reading the attributes of", to, NULL);
    }
    rc = sftp_rename(&call, from, to, overwrite);
    if (rc && SFTP_RC_IS_STATUS(rc)) {
        /* Say which side is the problem when the server only says
         * "failure". */
        int src = sftp_stat(&call, from, 1, &a);
        if (is_missing(src))
            return sftp_api->set_error(
                ctx, FERRY_ENOTFOUND, 0, "sftp.move: renaming %s to %s: %s",
                from, to, sftp_status_text(LIBSSH2_FX_NO_SUCH_FILE));
        if (!overwrite && sftp_stat(&call, to, 1, &a) == 0)
            return sftp_api->set_error(ctx, FERRY_EEXISTS, 0,
                                       "sftp.move: %s already exists (set "
                                       "overwrite to replace it)",
                                       to);
    }
    if (rc)
        return sftp_fail(&call, rc, "renaming", from, to);
    return sftp_api->set_output(
        ctx, json_pack("{s:s, s:s}", "from", from, "to", to));
}

/* ---- sftp.delete ---- */

typedef struct del_ud {
    sftp_call *call;
    char **dirs; /* directories found, in the order found */
    size_t ndirs, cap;
    size_t files;
} del_ud;

static int del_cb(void *ud, const char *path, const char *relative,
                  const char *name, const LIBSSH2_SFTP_ATTRIBUTES *a) {
    del_ud *u = ud;
    (void)relative;
    (void)name;
    if ((a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
        LIBSSH2_SFTP_S_ISDIR(a->permissions)) {
        if (u->ndirs == u->cap) {
            size_t cap = u->cap ? u->cap * 2 : 16;
            char **d = realloc(u->dirs, sizeof(*d) * cap);
            if (!d)
                return sftp_api->set_error(u->call->ctx, FERRY_ENOMEM, 0,
                                           "sftp.delete: out of memory");
            u->dirs = d;
            u->cap = cap;
        }
        if (!(u->dirs[u->ndirs] = strdup(path)))
            return sftp_api->set_error(u->call->ctx, FERRY_ENOMEM, 0,
                                       "sftp.delete: out of memory");
        u->ndirs++;
        return 0;
    }
    int rc =
        libssh2_sftp_unlink_ex(u->call->sftp, path, (unsigned)strlen(path));
    if (rc && !is_missing(rc = sftp_rc(u->call, rc)))
        return sftp_fail(u->call, rc, "deleting", path, NULL);
    u->files++;
    return 0;
}

static int rmdir_one(sftp_call *call, const char *path) {
    int rc = libssh2_sftp_rmdir_ex(call->sftp, path, (unsigned)strlen(path));
    return rc ? sftp_rc(call, rc) : 0;
}

int sftp_action_delete(ferry_ctx *ctx, const json_t *input) {
    sftp_call call;
    char path[SFTP_PATH_MAX];
    LIBSSH2_SFTP_ATTRIBUTES a;
    int rc;
    if ((rc = sftp_call_open(ctx, "sftp.delete", &call)) ||
        (rc =
             sftp_resolve(&call, json_object_get(input, "path"), "path", path)))
        return rc;
    if (!strcmp(path, call.root))
        return sftp_api->set_error(ctx, FERRY_EPERM, 0,
                                   "sftp.delete: the connection's root '%s' "
                                   "cannot be deleted",
                                   call.root);
    rc = sftp_stat(&call, path, 1, &a);
    if (is_missing(rc)) {
        if (sftp_input_bool(input, "missing_ok", 0))
            return sftp_api->set_output(ctx, json_pack("{s:s, s:b, s:i}",
                                                       "path", path, "deleted",
                                                       0, "count", 0));
        return sftp_fail(&call, rc, "deleting", path, NULL);
    }
    if (rc)
        return sftp_fail(&call, rc, "reading the attributes of", path, NULL);
    size_t count = 1;
    if ((a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
        LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
        if (sftp_input_bool(input, "recursive", 0)) {
            del_ud u = {.call = &call};
            sftp_walk_opts o = {.recursive = 1};
            rc = sftp_walk(&call, path, &o, del_cb, &u);
            /* Deepest first: a directory is found after its parent. */
            for (size_t i = u.ndirs; rc == 0 && i > 0; i--) {
                if ((rc = rmdir_one(&call, u.dirs[i - 1])) && !is_missing(rc)) {
                    snprintf(call.failed, sizeof(call.failed), "%s",
                             u.dirs[i - 1]);
                    break;
                }
                rc = 0;
            }
            for (size_t i = 0; i < u.ndirs; i++)
                free(u.dirs[i]);
            free(u.dirs);
            if (rc)
                return sftp_fail(&call, rc, "deleting", call.failed, NULL);
            count += u.files + u.ndirs;
        }
        rc = rmdir_one(&call, path);
        if (rc && SFTP_RC_IS_STATUS(rc) &&
            SFTP_RC_TO_STATUS(rc) == LIBSSH2_FX_FAILURE)
            return sftp_api->set_error(ctx, FERRY_EREMOTE, 0,
                                       "sftp.delete: removing the directory "
                                       "%s: %s; is it empty? (set recursive "
                                       "to delete what it holds)",
                                       path,
                                       sftp_status_text(LIBSSH2_FX_FAILURE));
    } else {
        rc = libssh2_sftp_unlink_ex(call.sftp, path, (unsigned)strlen(path));
        rc = rc ? sftp_rc(&call, rc) : 0;
    }
    if (rc)
        return sftp_fail(&call, rc, "deleting", path, NULL);
    return sftp_api->set_output(ctx, json_pack("{s:s, s:b, s:I}", "path", path,
                                               "deleted", 1, "count",
                                               (json_int_t)count));
}

/* ---- sftp.mkdir ---- */

int sftp_action_mkdir(ferry_ctx *ctx, const json_t *input) {
    sftp_call call;
    char path[SFTP_PATH_MAX];
    long mode;
    int rc, created = 0;
    if ((rc = sftp_call_open(ctx, "sftp.mkdir", &call)) ||
        (rc =
             sftp_resolve(&call, json_object_get(input, "path"), "path", path)))
        return rc;
    if (sftp_input_mode(input, "permissions", 0755, &mode))
        return sftp_api->set_error(ctx, FERRY_EINVAL, 0,
                                   "sftp.mkdir: permissions must be an octal "
                                   "string such as \"0755\"");
    int exist_ok = sftp_input_bool(input, "exist_ok", 1);
    if (sftp_input_bool(input, "parents", 1)) {
        rc = sftp_mkdirs(&call, path, mode, &created);
        if (rc)
            return sftp_fail(&call, rc, "creating the directory", call.failed,
                             NULL);
    } else {
        rc = libssh2_sftp_mkdir_ex(call.sftp, path, (unsigned)strlen(path),
                                   mode);
        rc = rc ? sftp_rc(&call, rc) : 0;
        created = rc == 0;
        if (rc && SFTP_RC_IS_STATUS(rc)) {
            LIBSSH2_SFTP_ATTRIBUTES a;
            if (sftp_stat(&call, path, 0, &a) == 0 &&
                (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
                LIBSSH2_SFTP_S_ISDIR(a.permissions))
                rc = 0;
        }
        if (rc)
            return sftp_fail(&call, rc, "creating the directory", path, NULL);
    }
    if (!created && !exist_ok)
        return sftp_api->set_error(ctx, FERRY_EEXISTS, 0,
                                   "sftp.mkdir: %s already exists", path);
    return sftp_api->set_output(
        ctx, json_pack("{s:s, s:b}", "path", path, "created", created));
}
