/*
 * Poll triggers: the trigger's own keys, the file options, a directory scan
 * and the choice of the files a poll may take (see poll.h).
 */
#include "poll.h"

#include "flow/flow.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Default poll intervals: a local directory is cheap to look at (and is
 * also watched for events); a remote source is not. */
#define POLL_FILE_EVERY_S 10
#define POLL_REMOTE_EVERY_S 60
#define POLL_MAX_BATCH 10000
#define POLL_MAX_DEPTH 32

static int fail(char *msg, size_t n, const char *fmt, ...) {
    va_list ap;
    if (msg && n) {
        va_start(ap, fmt);
        vsnprintf(msg, n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int poll_is_trigger(const json_t *trigger) {
    const char *t = json_string_value(json_object_get(trigger, "type"));
    return t && !strcmp(t, "poll");
}

int sched_config_ref(const char *s, char *buf, size_t buflen) {
    while (isspace((unsigned char)*s))
        s++;
    if (strncmp(s, "{{", 2))
        return -1;
    s += 2;
    while (isspace((unsigned char)*s))
        s++;
    if (strncmp(s, "config.", 7))
        return -1;
    s += 7;
    size_t n = 0;
    while (s[n] && (isalnum((unsigned char)s[n]) || s[n] == '_' ||
                    s[n] == '-' || s[n] == '.'))
        n++;
    if (!n || n >= buflen)
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    s += n;
    while (isspace((unsigned char)*s))
        s++;
    if (strncmp(s, "}}", 2))
        return -1;
    s += 2;
    while (isspace((unsigned char)*s))
        s++;
    return *s ? -1 : 0;
}

/* ---- the file options ---- */

static const char *const file_keys[] = {"directory",
                                        "include",
                                        "exclude",
                                        "recursive",
                                        "min_age",
                                        "read_lock",
                                        "read_lock_interval",
                                        "max_per_poll",
                                        "sort_by",
                                        "move_to",
                                        "move_failed_to",
                                        "delete",
                                        "keep",
                                        NULL};

static void free_list(char **l, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static void file_opts_clear(poll_file_opts *o) {
    free(o->directory);
    free_list(o->include, o->ninclude);
    free_list(o->exclude, o->nexclude);
    free(o->move_to);
    free(o->move_failed_to);
    memset(o, 0, sizeof(*o));
}

/* A glob or an array of globs. */
static int glob_list(const json_t *v, const char *key, char ***out, size_t *n,
                     char *msg, size_t mn) {
    *out = NULL;
    *n = 0;
    if (!v || json_is_null(v))
        return 0;
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_array(v) && !json_is_string(v))
        return fail(msg, mn,
                    "options.%s: expected a glob such as \"*.xml\" "
                    "or an array of globs",
                    key);
    char **l = calloc(count ? count : 1, sizeof(*l));
    if (!l)
        return fail(msg, mn, "options.%s: out of memory", key);
    for (size_t i = 0; i < count; i++) {
        const json_t *g = json_is_array(v) ? json_array_get(v, i) : v;
        const char *s = json_string_value(g);
        if (!s || !*s) {
            free_list(l, i);
            return fail(msg, mn, "options.%s[%zu]: expected a non-empty glob",
                        key, i);
        }
        if (!(l[i] = strdup(s))) {
            free_list(l, i);
            return fail(msg, mn, "options.%s: out of memory", key);
        }
    }
    *out = l;
    *n = count;
    return 0;
}

static int opt_bool(const json_t *o, const char *key, int dflt, int *out,
                    char *msg, size_t n) {
    const json_t *v = json_object_get(o, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return fail(msg, n, "options.%s: expected true or false", key);
    *out = json_is_true(v);
    return 0;
}

static int opt_duration(const json_t *o, const char *key, int64_t dflt,
                        int64_t *out, char *msg, size_t n) {
    const json_t *v = json_object_get(o, key);
    uint64_t ms;
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_string(v) || flow_parse_duration_ms(json_string_value(v), &ms))
        return fail(msg, n,
                    "options.%s: expected a duration such as \"500ms\", "
                    "\"30s\" or \"5m\"",
                    key);
    *out = (int64_t)ms;
    return 0;
}

/* A directory name for move_to / move_failed_to: relative, inside the
 * polled directory, no "..". null turns the move off. */
static int opt_subdir(const json_t *o, const char *key, const char *dflt,
                      char **out, char *msg, size_t n) {
    const json_t *v = json_object_get(o, key);
    const char *s = dflt;
    if (v && json_is_null(v))
        s = NULL;
    else if (v && !json_is_string(v))
        return fail(msg, n,
                    "options.%s: expected a directory name such as \"%s\", "
                    "or null",
                    key, dflt);
    else if (v)
        s = json_string_value(v);
    if (!s) {
        *out = NULL;
        return 0;
    }
    if (!*s || *s == '/' || !strcmp(s, ".") || strstr(s, "..") ||
        strchr(s, '\\'))
        return fail(msg, n,
                    "options.%s: '%s' must be a directory inside the polled "
                    "one, without '..'",
                    key, s);
    *out = strdup(s);
    if (!*out)
        return fail(msg, n, "options.%s: out of memory", key);
    size_t len = strlen(*out);
    while (len > 1 && (*out)[len - 1] == '/')
        (*out)[--len] = 0;
    return 0;
}

static int file_opts_parse(poll_file_opts *fo, const json_t *o,
                           int need_directory, char *msg, size_t n) {
    memset(fo, 0, sizeof(*fo));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        int known = 0;
        for (int i = 0; file_keys[i]; i++)
            known |= !strcmp(k, file_keys[i]);
        if (!known)
            return fail(msg, n,
                        "options.%s: unknown option (file.poll takes "
                        "directory, include, exclude, recursive, min_age, "
                        "read_lock, read_lock_interval, max_per_poll, "
                        "sort_by, move_to, move_failed_to, delete, keep)",
                        k);
    }
    const json_t *dir = json_object_get(o, "directory");
    if (dir && (!json_is_string(dir) || !*json_string_value(dir)))
        return fail(msg, n, "options.directory: expected a directory path");
    if (!dir && need_directory)
        return fail(msg, n,
                    "options.directory: file.poll needs the directory to "
                    "watch");
    if (dir && !(fo->directory = strdup(json_string_value(dir))))
        return fail(msg, n, "options.directory: out of memory");
    if (glob_list(json_object_get(o, "include"), "include", &fo->include,
                  &fo->ninclude, msg, n) ||
        glob_list(json_object_get(o, "exclude"), "exclude", &fo->exclude,
                  &fo->nexclude, msg, n) ||
        opt_bool(o, "recursive", 0, &fo->recursive, msg, n) ||
        opt_duration(o, "min_age", 0, &fo->min_age_ms, msg, n) ||
        opt_duration(o, "read_lock_interval", 1000, &fo->read_lock_interval_ms,
                     msg, n) ||
        opt_bool(o, "delete", 0, &fo->delete_after, msg, n) ||
        opt_bool(o, "keep", 0, &fo->keep, msg, n))
        return -1;
    const json_t *rl = json_object_get(o, "read_lock");
    fo->read_lock = 1;
    if (rl) {
        const char *s = json_string_value(rl);
        if (!s || (strcmp(s, "changed") && strcmp(s, "none")))
            return fail(msg, n,
                        "options.read_lock: expected \"changed\" (a file is "
                        "taken once its size and mtime stop changing) or "
                        "\"none\"");
        fo->read_lock = !strcmp(s, "changed");
    }
    const json_t *mp = json_object_get(o, "max_per_poll");
    if (mp) {
        if (!json_is_integer(mp) || json_integer_value(mp) < 0)
            return fail(msg, n,
                        "options.max_per_poll: expected a whole number, 0 "
                        "for no limit");
        fo->max_per_poll = (size_t)json_integer_value(mp);
    }
    const json_t *sb = json_object_get(o, "sort_by");
    if (sb) {
        const char *s = json_string_value(sb);
        const char *f = s && *s == '-' ? s + 1 : s;
        if (f && !strcmp(f, "name"))
            fo->sort_by = POLL_SORT_NAME;
        else if (f && !strcmp(f, "mtime"))
            fo->sort_by = POLL_SORT_MTIME;
        else if (f && !strcmp(f, "size"))
            fo->sort_by = POLL_SORT_SIZE;
        else
            return fail(msg, n,
                        "options.sort_by: expected \"name\", \"mtime\" or "
                        "\"size\", with a leading '-' for descending");
        fo->sort_desc = *s == '-';
    }
    if (fo->keep && fo->delete_after)
        return fail(msg, n,
                    "options.delete: delete and keep exclude each "
                    "other");
    if (fo->delete_after && json_object_get(o, "move_to") &&
        !json_is_null(json_object_get(o, "move_to")))
        return fail(msg, n,
                    "options.move_to: delete and move_to exclude "
                    "each other");
    if (fo->keep && ((json_object_get(o, "move_to") &&
                      !json_is_null(json_object_get(o, "move_to"))) ||
                     (json_object_get(o, "move_failed_to") &&
                      !json_is_null(json_object_get(o, "move_failed_to")))))
        return fail(msg, n,
                    "options.keep: keep leaves files where they are; "
                    "drop move_to and move_failed_to");
    int moves = !fo->keep && !fo->delete_after;
    if (opt_subdir(o, "move_to", moves ? ".done" : NULL, &fo->move_to, msg,
                   n) ||
        opt_subdir(o, "move_failed_to", fo->keep ? NULL : ".error",
                   &fo->move_failed_to, msg, n))
        return -1;
    if (fo->move_to && fo->move_failed_to &&
        !strcmp(fo->move_to, fo->move_failed_to))
        return fail(msg, n, "options.move_failed_to: must differ from move_to");
    return 0;
}

/* ---- the trigger ---- */

static const char *const trigger_keys[] = {
    "type",     "source",          "every",      "cron",
    "timezone", "timezone_config", "anchor",     "batch_size",
    "options",  "description",     "connection", "files",
    NULL};

/* The options with every whole-string config reference replaced (config
 * NULL: kept as written). New reference or NULL with msg. */
static json_t *resolve_options(const json_t *o, const json_t *config, char *msg,
                               size_t n) {
    json_t *out = json_deep_copy(o);
    if (!out || !config)
        return out ? out : (fail(msg, n, "options: out of memory"), NULL);
    const char *k;
    json_t *v;
    json_object_foreach(out, k, v) {
        char name[128];
        if (!json_is_string(v) ||
            sched_config_ref(json_string_value(v), name, sizeof(name)))
            continue;
        const json_t *c = json_object_get(config, name);
        if (!c || json_is_null(c)) {
            fail(msg, n, "options.%s: config '%s' is not set", k, name);
            json_decref(out);
            return NULL;
        }
        json_object_set(out, k, (json_t *)c);
    }
    return out;
}

/* A copy of the trigger that sched's parser reads as a schedule, with the
 * poll's default interval when it names neither cron nor every. */
static json_t *as_schedule(const json_t *t, const char *source) {
    json_t *s = json_object();
    const char *keys[] = {"every",           "cron",   "timezone",
                          "timezone_config", "anchor", NULL};
    if (!s)
        return NULL;
    json_object_set_new(s, "type", json_string("schedule"));
    for (int i = 0; keys[i]; i++) {
        json_t *v = json_object_get(t, keys[i]);
        if (v)
            json_object_set(s, keys[i], v);
    }
    if (!json_object_get(t, "every") && !json_object_get(t, "cron")) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%ds",
                 source && !strcmp(source, POLL_FILE_SOURCE)
                     ? POLL_FILE_EVERY_S
                     : POLL_REMOTE_EVERY_S);
        json_object_set_new(s, "every", json_string(buf));
    }
    return s;
}

static int build(poll_spec *s, const json_t *t, const json_t *config,
                 int with_config, char *msg, size_t n) {
    memset(s, 0, sizeof(*s));
    if (!json_is_object(t))
        return fail(msg, n, "type: the trigger is not an object");
    if (!poll_is_trigger(t))
        return fail(msg, n, "type: expected \"poll\"");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)t, k, v) {
        int known = 0;
        for (int i = 0; trigger_keys[i]; i++)
            known |= !strcmp(k, trigger_keys[i]);
        if (!known)
            return fail(msg, n,
                        "%s: unknown key of a poll trigger (it takes source, "
                        "every or cron, timezone, batch_size, options, "
                        "connection, files)",
                        k);
    }
    const char *src = json_string_value(json_object_get(t, "source"));
    if (!src || !*src)
        return fail(msg, n,
                    "source: a poll trigger names its source: \"file.poll\" "
                    "or a component's trigger such as \"sftp.new_files\"");
    if (!(s->source = strdup(src)))
        return fail(msg, n, "source: out of memory");
    const json_t *bs = json_object_get(t, "batch_size");
    s->batch_size = 1;
    if (bs) {
        if (!json_is_integer(bs) || json_integer_value(bs) < 1 ||
            json_integer_value(bs) > POLL_MAX_BATCH)
            return fail(msg, n,
                        "batch_size: expected a whole number from 1 to %d "
                        "(items per execution)",
                        POLL_MAX_BATCH);
        s->batch_size = (size_t)json_integer_value(bs);
    }
    const json_t *o = json_object_get(t, "options");
    if (o && !json_is_object(o))
        return fail(msg, n, "options: expected an object");
    json_t *empty = o ? NULL : json_object();
    s->options =
        resolve_options(o ? o : empty, with_config ? config : NULL, msg, n);
    json_decref(empty);
    if (!s->options)
        return -1;
    json_t *st = as_schedule(t, src);
    if (!st)
        return fail(msg, n, "every: out of memory");
    int rc = with_config
                 ? sched_spec_from_trigger(&s->sched, st, config, msg, n)
                 : sched_check_trigger(st, msg, n);
    json_decref(st);
    if (rc)
        return -1;
    const json_t *files = json_object_get(t, "files");
    if (!strcmp(src, POLL_FILE_SOURCE)) {
        if (files)
            return fail(msg, n,
                        "files: file.poll takes its file options in "
                        "\"options\"");
        /* Unresolved config references stand for a directory. */
        if (file_opts_parse(&s->file, s->options, 1, msg, n))
            return -1;
    } else {
        /* A component that lists files: the host's file options. */
        if (files && !json_is_object(files))
            return fail(msg, n, "files: expected an object of file options");
        if (json_object_get(files, "directory"))
            return fail(msg, n,
                        "files.directory: the source's own options say "
                        "where to look");
        json_t *empty = files ? NULL : json_object();
        int rc = file_opts_parse(&s->file, files ? files : empty, 0, msg, n);
        json_decref(empty);
        if (rc) {
            /* Its messages name "options.X": here they are "files.X". */
            if (!strncmp(msg, "options.", 8)) {
                char tmp[512];
                snprintf(tmp, sizeof(tmp), "files.%s", msg + 8);
                snprintf(msg, n, "%s", tmp);
            }
            return -1;
        }
    }
    return 0;
}

int poll_check_trigger(const json_t *trigger, char *msg, size_t n) {
    poll_spec s;
    int rc = build(&s, trigger, NULL, 0, msg, n);
    poll_spec_clear(&s);
    return rc;
}

int poll_spec_from_trigger(poll_spec *s, const json_t *trigger,
                           const json_t *config, char *msg, size_t n) {
    return build(s, trigger, config, 1, msg, n);
}

void poll_spec_clear(poll_spec *s) {
    free(s->source);
    sched_spec_clear(&s->sched);
    json_decref(s->options);
    file_opts_clear(&s->file);
    memset(s, 0, sizeof(*s));
}

/* ---- validation as diagnostics ---- */

static void add(flow_diags *d, const char *file, const char *prefix,
                const char *msg) {
    const char *sep = strstr(msg, ": ");
    char path[256];
    if (!sep) {
        flow_diags_add(d, file, prefix, "%s", msg);
        return;
    }
    snprintf(path, sizeof(path), "%s.%.*s", prefix, (int)(sep - msg), msg);
    flow_diags_add(d, file, path, "%s", sep + 2);
}

int poll_validate_integration(const struct flow_integration *ig,
                              struct flow_diags *d) {
    size_t before = d->n;
    char msg[512], prefix[64];
    for (size_t i = 0; i < ig->nflows; i++) {
        const json_t *t = ig->flows[i].trigger;
        if (!poll_is_trigger(t))
            continue;
        snprintf(prefix, sizeof(prefix), "flows[%zu].trigger", i);
        if (poll_check_trigger(t, msg, sizeof(msg)) ||
            sched_check_trigger_config(t, ig->config_decl, msg, sizeof(msg)))
            add(d, ig->file, prefix, msg);
    }
    return (int)(d->n - before);
}

int poll_validate_instance(const struct flow_integration *ig,
                           const struct flow_instance *in,
                           struct flow_diags *d) {
    size_t before = d->n;
    char msg[512], prefix[64];
    for (size_t i = 0; i < ig->nflows; i++) {
        const json_t *t = ig->flows[i].trigger;
        poll_spec s;
        if (!poll_is_trigger(t) || poll_check_trigger(t, msg, sizeof(msg)))
            continue;
        snprintf(prefix, sizeof(prefix), "flows[%zu].trigger", i);
        if (poll_spec_from_trigger(&s, t, in->config, msg, sizeof(msg)))
            add(d, in->file ? in->file : ig->file, prefix, msg);
        poll_spec_clear(&s);
    }
    return (int)(d->n - before);
}

/* ---- file.poll: scanning ---- */

void poll_look_clear(poll_look *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->files[i].rel);
    free(l->files);
    l->files = NULL;
    l->n = 0;
}

int poll_glob_match(const char *glob, const char *rel) {
    if (strchr(glob, '/'))
        return fnmatch(glob, rel, FNM_PATHNAME) == 0;
    const char *base = strrchr(rel, '/');
    return fnmatch(glob, base ? base + 1 : rel, 0) == 0;
}

static int selected(const poll_file_opts *o, const char *rel) {
    int in = o->ninclude == 0;
    for (size_t i = 0; !in && i < o->ninclude; i++)
        in = poll_glob_match(o->include[i], rel);
    for (size_t i = 0; in && i < o->nexclude; i++)
        in = !poll_glob_match(o->exclude[i], rel);
    return in;
}

typedef struct scan_ctx {
    const poll_file_opts *o;
    poll_look *out;
    size_t cap;
    char *err;
    size_t errn;
} scan_ctx;

static int add_file(scan_ctx *c, const char *rel, const struct stat *sb) {
    if (c->out->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        poll_file *f = realloc(c->out->files, cap * sizeof(*f));
        if (!f)
            return fail(c->err, c->errn, "out of memory");
        c->out->files = f;
        c->cap = cap;
    }
    poll_file *f = &c->out->files[c->out->n];
    if (!(f->rel = strdup(rel)))
        return fail(c->err, c->errn, "out of memory");
    f->size = (uint64_t)sb->st_size;
    f->mtime_ns =
        (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
    f->stable_since_ms = 0;
    c->out->n++;
    return 0;
}

static int is_disposal_dir(const poll_file_opts *o, const char *rel) {
    return (o->move_to && !strcmp(rel, o->move_to)) ||
           (o->move_failed_to && !strcmp(rel, o->move_failed_to));
}

static int scan_dir(scan_ctx *c, const char *rel, int depth) {
    char path[4096];
    int len = rel ? snprintf(path, sizeof(path), "%s/%s", c->o->directory, rel)
                  : snprintf(path, sizeof(path), "%s", c->o->directory);
    if (len < 0 || (size_t)len >= sizeof(path))
        return fail(c->err, c->errn, "%s: path too long", c->o->directory);
    DIR *dir = opendir(path);
    if (!dir) {
        if (rel && (errno == ENOENT || errno == ENOTDIR))
            return 0; /* gone since it was listed */
        return fail(c->err, c->errn, "%s: %s", path, strerror(errno));
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue; /* hidden, ".", "..", and the default .done/.error */
        char sub[4096], full[4096];
        int n1 = rel ? snprintf(sub, sizeof(sub), "%s/%s", rel, e->d_name)
                     : snprintf(sub, sizeof(sub), "%s", e->d_name);
        int n2 = snprintf(full, sizeof(full), "%s/%s", path, e->d_name);
        if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof(sub) ||
            (size_t)n2 >= sizeof(full))
            continue;
        struct stat sb;
        if (lstat(full, &sb))
            continue; /* gone since readdir */
        if (S_ISDIR(sb.st_mode)) {
            if (c->o->recursive && depth < POLL_MAX_DEPTH &&
                !is_disposal_dir(c->o, sub))
                rc = scan_dir(c, sub, depth + 1);
        } else if (S_ISREG(sb.st_mode) && selected(c->o, sub)) {
            rc = add_file(c, sub, &sb);
        }
    }
    closedir(dir);
    return rc;
}

static int by_rel(const void *a, const void *b) {
    return strcmp(((const poll_file *)a)->rel, ((const poll_file *)b)->rel);
}

int poll_scan(const poll_file_opts *o, poll_look *out, char *err, size_t n) {
    memset(out, 0, sizeof(*out));
    if (!o->directory)
        return fail(err, n, "no directory to scan");
    scan_ctx c = {.o = o, .out = out, .err = err, .errn = n};
    if (scan_dir(&c, NULL, 0)) {
        poll_look_clear(out);
        return -1;
    }
    if (out->n)
        qsort(out->files, out->n, sizeof(*out->files), by_rel);
    return 0;
}

void poll_look_carry(poll_look *cur, const poll_look *prev, int64_t now_ms) {
    size_t j = 0;
    for (size_t i = 0; i < cur->n; i++) {
        poll_file *f = &cur->files[i];
        f->stable_since_ms = now_ms;
        while (prev && j < prev->n && strcmp(prev->files[j].rel, f->rel) < 0)
            j++;
        if (prev && j < prev->n && !strcmp(prev->files[j].rel, f->rel) &&
            prev->files[j].size == f->size &&
            prev->files[j].mtime_ns == f->mtime_ns)
            f->stable_since_ms = prev->files[j].stable_since_ms;
    }
}

typedef struct sort_item {
    const poll_file *f;
    size_t i;
    int key; /* enum poll_sort */
    int desc;
} sort_item;

static int cmp_items(const void *pa, const void *pb) {
    const sort_item *a = pa, *b = pb;
    int c = 0;
    if (a->key == POLL_SORT_MTIME)
        c = (a->f->mtime_ns > b->f->mtime_ns) -
            (a->f->mtime_ns < b->f->mtime_ns);
    else if (a->key == POLL_SORT_SIZE)
        c = (a->f->size > b->f->size) - (a->f->size < b->f->size);
    if (!c)
        c = strcmp(a->f->rel, b->f->rel);
    return a->desc ? -c : c;
}

int poll_ready(const poll_file_opts *o, const poll_look *look, int64_t now_ms,
               size_t **idx, size_t *n, int64_t *recheck_ms) {
    *idx = NULL;
    *n = 0;
    *recheck_ms = -1;
    sort_item *items = calloc(look->n ? look->n : 1, sizeof(*items));
    if (!items)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < look->n; i++) {
        const poll_file *f = &look->files[i];
        int64_t due = 0;
        if (o->read_lock)
            due = f->stable_since_ms + o->read_lock_interval_ms;
        if (o->min_age_ms) {
            int64_t old_at = f->mtime_ns / 1000000 + o->min_age_ms;
            if (old_at > due)
                due = old_at;
        }
        if (due > now_ms) {
            if (*recheck_ms < 0 || due < *recheck_ms)
                *recheck_ms = due;
            continue;
        }
        items[k++] = (sort_item){
            .f = f, .i = i, .key = o->sort_by, .desc = o->sort_desc};
    }
    if (k)
        qsort(items, k, sizeof(*items), cmp_items);
    size_t *out = malloc((k ? k : 1) * sizeof(*out));
    if (!out) {
        free(items);
        return -1;
    }
    for (size_t i = 0; i < k; i++)
        out[i] = items[i].i;
    free(items);
    *idx = out;
    *n = k;
    return 0;
}

char *poll_file_key(const poll_file *f) {
    char *key = NULL;
    if (asprintf(&key, "%s|%llu|%lld", f->rel, (unsigned long long)f->size,
                 (long long)f->mtime_ns) < 0)
        return NULL;
    return key;
}
