/*
 * Deployments: building them from documents, the table of live ones, and
 * the deployments directory (reading it whole, writing one instance).
 */
#include "deploy.h"
#include "sched/sched.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int deploy_name_ok(const char *name) {
    if (!name || !*name || name[0] == '.')
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

/* ---- deployments ---- */

deployment *deployment_ref(deployment *dp) {
    if (dp)
        dp->refs++;
    return dp;
}

void deployment_unref(deployment *dp) {
    if (!dp || --dp->refs > 0)
        return;
    if (dp->webhooks_free)
        dp->webhooks_free(dp->webhooks);
    free(dp->spawn_docs);
    flow_instance_free(dp->in);
    flow_integration_free(dp->ig);
    json_decref(dp->integration_doc);
    json_decref(dp->instance_doc);
    free(dp->instance);
    free(dp->integration);
    free(dp->integration_file);
    free(dp->instance_file);
    free(dp);
}

/* As deployment_build; compiled, if not NULL, is integration_doc already
 * compiled against reg (a reference is taken); like, if not NULL, is a
 * deployment built from that same integration_doc and compiled (so the
 * integration is known to be valid and its key is known). */
static deployment *build(json_t *integration_doc, flow_integration *compiled,
                         const deployment *like, json_t *instance_doc,
                         const char *integration_label,
                         const char *instance_label, const abi_registry *reg,
                         flow_diags *d);

deployment *deployment_build(json_t *integration_doc, json_t *instance_doc,
                             const char *integration_label,
                             const char *instance_label,
                             const abi_registry *reg, flow_diags *d) {
    return build(integration_doc, NULL, NULL, instance_doc, integration_label,
                 instance_label, reg, d);
}

static deployment *build(json_t *integration_doc, flow_integration *compiled,
                         const deployment *like, json_t *instance_doc,
                         const char *integration_label,
                         const char *instance_label, const abi_registry *reg,
                         flow_diags *d) {
    const char *ilabel = integration_label ? integration_label : "integration";
    const char *nlabel = instance_label ? instance_label : "instance";
    size_t before = d->n;
    if (like) {
        compiled = like->ig;
        integration_doc = like->integration_doc; /* equal: one copy */
    }
    flow_integration *ig =
        compiled ? flow_integration_ref(compiled)
                 : flow_integration_from_json(integration_doc, ilabel, reg, d);
    flow_instance *in = NULL;
    if (!instance_doc)
        flow_diags_add(d, nlabel, "$",
                       "missing: an instance document (a deployment is one "
                       "instance of an integration)");
    else if (ig && (like || sched_validate_integration(ig, d) == 0))
        in = flow_instance_from_json(instance_doc, nlabel, ig, reg, d);
    if (in)
        sched_validate_instance(ig, in, d);
    /* The flow format allows names a file name cannot carry well. */
    if (ig && !deploy_name_ok(ig->name))
        flow_diags_add(d, ilabel, "name",
                       "a deployed integration's name may not start with "
                       "'.'");
    if (in && !deploy_name_ok(in->name))
        flow_diags_add(d, nlabel, "name",
                       "a deployed instance's name may not start with '.'");
    deployment *dp = NULL;
    if (d->n == before && ig && in)
        dp = calloc(1, sizeof(*dp));
    if (!dp) {
        flow_instance_free(in);
        flow_integration_free(ig);
        return NULL;
    }
    dp->refs = 1;
    dp->ig = ig;
    dp->in = in;
    dp->reg = reg;
    dp->integration_doc = json_incref(integration_doc);
    dp->instance_doc = json_incref(instance_doc);
    dp->instance = strdup(in->name);
    dp->integration = strdup(ig->name);
    dp->integration_file = strdup(ilabel);
    dp->instance_file = strdup(nlabel);
    dp->deployed_us = store_now_us();
    /* FNV-1a of the canonical text: the same document gives the same key
     * whichever instance deploys it. Computed once here rather than by the
     * zygote at every spawn (and once per integration file when a
     * directory is loaded). */
    if (like) {
        memcpy(dp->integration_key, like->integration_key,
               sizeof(dp->integration_key));
    } else {
        char *text = json_dumps(integration_doc, JSON_COMPACT | JSON_SORT_KEYS);
        uint64_t h = 1469598103934665603ull;
        for (const char *p = text; p && *p; p++) {
            h ^= (unsigned char)*p;
            h *= 1099511628211ull;
        }
        free(text);
        snprintf(dp->integration_key, sizeof(dp->integration_key), "%016llx",
                 (unsigned long long)h);
    }
    if (!dp->instance || !dp->integration || !dp->integration_file ||
        !dp->instance_file) {
        deployment_unref(dp);
        return NULL;
    }
    return dp;
}

/* ---- the table: deployments sorted by instance name ---- */

struct deploy_table {
    deployment **items;
    size_t n, cap;
    /* For each integration, the last of its deployments put (a reference),
     * which deployment_build_in shares. */
    deployment **latest;
    size_t nlatest;
};

/* Forgets dp as its integration's latest, if it is. */
static void latest_drop(deploy_table *t, const deployment *dp) {
    for (size_t i = 0; i < t->nlatest; i++) {
        if (t->latest[i] == dp) {
            deployment_unref(t->latest[i]);
            t->latest[i] = t->latest[--t->nlatest];
            return;
        }
    }
}

static void latest_set(deploy_table *t, deployment *dp) {
    for (size_t i = 0; i < t->nlatest; i++) {
        if (!strcmp(t->latest[i]->integration, dp->integration)) {
            deployment_unref(t->latest[i]);
            t->latest[i] = deployment_ref(dp);
            return;
        }
    }
    deployment **grown =
        realloc(t->latest, (t->nlatest + 1) * sizeof(*t->latest));
    if (!grown)
        return; /* only sharing is lost */
    t->latest = grown;
    t->latest[t->nlatest++] = deployment_ref(dp);
}

deployment *deployment_build_in(const deploy_table *t, json_t *integration_doc,
                                json_t *instance_doc,
                                const char *integration_label,
                                const char *instance_label,
                                const abi_registry *reg, flow_diags *d) {
    const char *name =
        json_string_value(json_object_get(integration_doc, "name"));
    const deployment *like = NULL;
    for (size_t i = 0; t && name && i < t->nlatest; i++) {
        const deployment *dp = t->latest[i];
        if (!strcmp(dp->integration, name)) {
            if (dp->reg == reg &&
                json_equal(dp->integration_doc, integration_doc))
                like = dp;
            break;
        }
    }
    return build(integration_doc, NULL, like, instance_doc, integration_label,
                 instance_label, reg, d);
}

deploy_table *deploy_table_new(void) {
    return calloc(1, sizeof(deploy_table));
}

void deploy_table_free(deploy_table *t) {
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        deployment_unref(t->items[i]);
    for (size_t i = 0; i < t->nlatest; i++)
        deployment_unref(t->latest[i]);
    free(t->items);
    free(t->latest);
    free(t);
}

/* The index of name, or of where it would go (*found says which). */
static size_t find(const deploy_table *t, const char *name, int *found) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->items[mid]->instance, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

deployment *deploy_table_get(const deploy_table *t, const char *instance) {
    int found;
    size_t i = find(t, instance, &found);
    return found ? t->items[i] : NULL;
}

int deploy_table_put(deploy_table *t, deployment *dp) {
    int found;
    size_t i = find(t, dp->instance, &found);
    if (found) {
        deployment *old = t->items[i];
        t->items[i] = dp;
        latest_drop(t, old);
        latest_set(t, dp);
        deployment_unref(old);
        return 0;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        deployment **items = realloc(t->items, cap * sizeof(*items));
        if (!items) {
            deployment_unref(dp);
            return -1;
        }
        t->items = items;
        t->cap = cap;
    }
    memmove(&t->items[i + 1], &t->items[i], (t->n - i) * sizeof(*t->items));
    t->items[i] = dp;
    t->n++;
    latest_set(t, dp);
    return 0;
}

int deploy_table_remove(deploy_table *t, const char *instance) {
    int found;
    size_t i = find(t, instance, &found);
    if (!found)
        return -1;
    deployment *old = t->items[i];
    memmove(&t->items[i], &t->items[i + 1], (t->n - i - 1) * sizeof(*t->items));
    t->n--;
    latest_drop(t, old);
    deployment_unref(old);
    return 0;
}

size_t deploy_table_count(const deploy_table *t) {
    return t->n;
}

deployment *deploy_table_at(const deploy_table *t, size_t i) {
    return i < t->n ? t->items[i] : NULL;
}

json_t *deployment_summary(const deployment *dp) {
    json_t *flows = json_array();
    for (size_t i = 0; flows && i < dp->ig->nflows; i++) {
        const flow_def *f = &dp->ig->flows[i];
        json_array_append_new(
            flows, json_pack("{s:s, s:O?}", "name", f->name, "trigger",
                             json_object_get(f->trigger, "type")));
    }
    const char *v = dp->ig->version;
    return json_pack("{s:s, s:s, s:s?, s:o, s:o}", "instance", dp->instance,
                     "integration", dp->integration, "version",
                     v && *v ? v : NULL, "flows", flows ? flows : json_array(),
                     "deployed", store_time_json(dp->deployed_us));
}

json_t *deploy_table_list(const deploy_table *t) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < t->n; i++)
        json_array_append_new(arr, deployment_summary(t->items[i]));
    return arr;
}

/* ---- reading a deployments directory ---- */

static char *joinf(const char *a, const char *b, const char *suffix) {
    char *s = NULL;
    if (asprintf(&s, "%s/%s%s", a, b, suffix ? suffix : "") < 0)
        return NULL;
    return s;
}

static int64_t mtime_us(const char *path) {
    struct stat sb;
    if (stat(path, &sb))
        return 0;
    return (int64_t)sb.st_mtim.tv_sec * 1000000 + sb.st_mtim.tv_nsec / 1000;
}

/* What became of each integration file the instances name. */
typedef struct seen {
    char *name;
    char *path;
    json_t *doc; /* NULL: missing or unreadable */
    int bad;     /* reported: not valid */
    /* Compiled once for all its instances: compiling (jq programs above
     * all) is most of the cost of loading a deployment. */
    flow_integration *ig;
    /* The first of its instances that was built (a reference): the
     * others share its validation and key. */
    deployment *like;
    int64_t mtime_us;
} seen;

typedef struct seen_list {
    seen *items;
    size_t n;
} seen_list;

static seen *integration_for(seen_list *sl, const char *dir, const char *name,
                             flow_diags *d) {
    for (size_t i = 0; i < sl->n; i++)
        if (!strcmp(sl->items[i].name, name))
            return &sl->items[i];
    seen *grown = realloc(sl->items, (sl->n + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    sl->items = grown;
    seen *s = &sl->items[sl->n];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    if (asprintf(&s->path, "%s/integrations/%s.json", dir, name) < 0)
        s->path = NULL;
    if (!s->name || !s->path) {
        free(s->name);
        free(s->path);
        return NULL;
    }
    sl->n++;
    struct stat sb;
    if (stat(s->path, &sb) && errno == ENOENT)
        return s; /* reported by each instance that names it */
    s->mtime_us = mtime_us(s->path);
    s->doc = flow_load_json(s->path, d);
    if (!s->doc) {
        s->bad = 1;
        return s;
    }
    const char *in_doc = json_string_value(json_object_get(s->doc, "name"));
    if (in_doc && strcmp(in_doc, name)) {
        flow_diags_add(d, s->path, "name",
                       "the file is named for integration '%s' but the "
                       "integration is '%s': rename the file or fix the name",
                       name, in_doc);
        s->bad = 1;
    }
    return s;
}

static int json_file(const struct dirent *e) {
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 5 && !strcmp(e->d_name + n - 5, ".json");
}

/* Loads one instance file; returns 1 if it was put into t. */
static int load_instance(deploy_table *t, const char *dir, const char *idir,
                         const char *fname, seen_list *sl,
                         const abi_registry *reg, flow_diags *d) {
    char *path = joinf(idir, fname, NULL);
    char *stem = strndup(fname, strlen(fname) - 5);
    json_t *doc = NULL;
    int loaded = 0;
    if (!path || !stem)
        goto out;
    if (!(doc = flow_load_json(path, d)))
        goto out;
    const char *name = json_string_value(json_object_get(doc, "name"));
    if (name && strcmp(name, stem)) {
        flow_diags_add(d, path, "name",
                       "the file is named for instance '%s' but the instance "
                       "is '%s': rename the file or fix the name",
                       stem, name);
        goto out;
    }
    const char *iname = json_string_value(json_object_get(doc, "integration"));
    if (!json_is_object(doc) || !iname) {
        /* Let the instance's own validation say what is wrong. */
        flow_diags_add(d, path, json_is_object(doc) ? "integration" : "$",
                       json_is_object(doc)
                           ? "missing: the name of the integration this "
                             "instance deploys"
                           : "expected a JSON object");
        goto out;
    }
    if (!deploy_name_ok(iname)) {
        flow_diags_add(d, path, "integration",
                       "'%s' is not an integration name (letters, digits, "
                       "'.', '_' and '-')",
                       iname);
        goto out;
    }
    seen *s = integration_for(sl, dir, iname, d);
    if (!s)
        goto out;
    if (!s->doc && !s->bad) {
        flow_diags_add(d, path, "integration",
                       "integration '%s' is not deployed: %s does not exist",
                       iname, s->path);
        goto out;
    }
    if (s->bad) {
        flow_diags_add(d, path, "integration",
                       "integration '%s' (%s) is not valid; instance skipped",
                       iname, s->path);
        goto out;
    }
    size_t before = d->n;
    if (!s->ig)
        s->ig = flow_integration_from_json(s->doc, s->path, reg, d);
    deployment *dp =
        s->ig ? build(s->doc, s->ig, s->like, doc, s->path, path, reg, d)
              : NULL;
    if (!dp) {
        for (size_t i = before; i < d->n && !s->bad; i++)
            s->bad = !strcmp(d->items[i].file, s->path);
        if (s->bad)
            flow_diags_add(d, path, "integration",
                           "integration '%s' (%s) is not valid; instance "
                           "skipped",
                           iname, s->path);
        goto out;
    }
    if (!s->like)
        s->like = deployment_ref(dp);
    int64_t a = mtime_us(path), b = s->mtime_us;
    if (a || b)
        dp->deployed_us = a > b ? a : b;
    loaded = deploy_table_put(t, dp) == 0;
out:
    json_decref(doc);
    free(path);
    free(stem);
    return loaded;
}

int deploy_table_load_dir(deploy_table *t, const char *dir,
                          const abi_registry *reg, flow_diags *d) {
    struct stat sb;
    if (stat(dir, &sb) && errno == ENOENT)
        return 0;
    char *idir = joinf(dir, "instances", NULL);
    if (!idir)
        return -1;
    struct dirent **names = NULL;
    int n = scandir(idir, &names, json_file, alphasort);
    if (n < 0) {
        int e = errno;
        free(idir);
        if (e == ENOENT && !stat(dir, &sb) && S_ISDIR(sb.st_mode))
            return 0;
        flow_diags_add(d, dir, "$", "cannot read the deployments directory: %s",
                       strerror(e));
        return -1;
    }
    seen_list sl = {0};
    int loaded = 0;
    for (int i = 0; i < n; i++) {
        loaded += load_instance(t, dir, idir, names[i]->d_name, &sl, reg, d);
        free(names[i]);
    }
    free(names);
    for (size_t i = 0; i < sl.n; i++) {
        free(sl.items[i].name);
        free(sl.items[i].path);
        json_decref(sl.items[i].doc);
        flow_integration_free(sl.items[i].ig);
        deployment_unref(sl.items[i].like);
    }
    free(sl.items);
    free(idir);
    return loaded;
}

/* The text deploy_write puts in a file for doc (the final newline
 * included), malloc'd, or NULL. */
static char *file_text(const json_t *doc) {
    char *text = json_dumps(doc, JSON_INDENT(2));
    size_t n = text ? strlen(text) : 0;
    char *grown = text ? realloc(text, n + 2) : NULL;
    if (!grown) {
        free(text);
        return NULL;
    }
    grown[n] = '\n';
    grown[n + 1] = '\0';
    return grown;
}

/* Whether the file at path holds exactly text. */
static int file_holds(const char *path, const char *text) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t n = strlen(text);
    struct stat sb;
    int same =
        !fstat(fd, &sb) && S_ISREG(sb.st_mode) && (size_t)sb.st_size == n;
    char buf[8192];
    for (size_t off = 0; same && off < n;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (size_t)r > n - off || memcmp(buf, text + off, (size_t)r))
            same = 0;
        else
            off += (size_t)r;
    }
    close(fd);
    return same;
}

/* Whether DIR/integrations/NAME.json already holds what deploy_write would
 * write for integration_doc: then deploying it changes nothing for the
 * other instances of the integration. */
static int integration_unchanged(const char *dir,
                                 const json_t *integration_doc) {
    const char *name =
        json_string_value(json_object_get(integration_doc, "name"));
    if (!deploy_name_ok(name))
        return 0;
    char *path = NULL;
    if (asprintf(&path, "%s/integrations/%s.json", dir, name) < 0)
        return 0;
    char *text = file_text(integration_doc);
    int same = text && file_holds(path, text);
    free(text);
    free(path);
    return same;
}

int deploy_check_dependents(const char *dir, const json_t *integration_doc,
                            const char *except_instance,
                            const abi_registry *reg, flow_diags *d) {
    /* The usual deploy, one more instance of an integration already there:
     * the shared file does not change, so no other instance's validity can
     * (reading every instance file made a deploy cost grow with the number
     * of instances deployed). */
    if (integration_unchanged(dir, integration_doc))
        return 0;
    flow_diags scratch = {0};
    flow_integration *ig =
        flow_integration_from_json(integration_doc, NULL, reg, &scratch);
    flow_diags_free(&scratch);
    if (!ig)
        return 0;
    char *idir = joinf(dir, "instances", NULL);
    struct dirent **names = NULL;
    int n = idir ? scandir(idir, &names, json_file, alphasort) : -1;
    int broken = 0;
    for (int i = 0; i < n; i++) {
        const char *fname = names[i]->d_name;
        size_t len = strlen(fname) - 5;
        char *path = joinf(idir, fname, NULL);
        json_t *doc = NULL;
        if (except_instance && strlen(except_instance) == len &&
            !strncmp(fname, except_instance, len))
            goto next;
        if (!path || !(doc = json_load_file(path, 0, NULL)))
            goto next; /* unreadable: not this deploy's doing */
        const char *iname =
            json_string_value(json_object_get(doc, "integration"));
        if (!iname || strcmp(iname, ig->name))
            goto next;
        size_t before = d->n;
        flow_instance *in = flow_instance_from_json(doc, path, ig, reg, d);
        if (!in || d->n > before) {
            broken++;
            flow_diags_add(d, path, "integration",
                           "this instance of '%s' would not be valid with "
                           "the integration being deployed",
                           ig->name);
        }
        flow_instance_free(in);
    next:
        json_decref(doc);
        free(path);
        free(names[i]);
    }
    free(names);
    free(idir);
    flow_integration_free(ig);
    return broken;
}

/* ---- writing ---- */

static int seterr(char **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int seterr(char **err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && vasprintf(err, fmt, ap) < 0)
        *err = NULL;
    va_end(ap);
    return -1;
}

/* mkdir -p, the last component with mode. */
static int make_dir(const char *path, mode_t mode, char **err) {
    struct stat sb;
    if (!stat(path, &sb) && S_ISDIR(sb.st_mode))
        return 0; /* every deploy but the first */
    char *p = strdup(path);
    if (!p)
        return seterr(err, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) && errno != EEXIST) {
            int e = errno;
            seterr(err, "cannot create %s: %s", p, strerror(e));
            free(p);
            return -1;
        }
        *s = '/';
    }
    free(p);
    if (mkdir(path, mode) && errno != EEXIST)
        return seterr(err, "cannot create %s: %s", path, strerror(errno));
    return 0;
}

static int write_all(int fd, const char *buf, size_t n) {
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes doc to SUBDIR/NAME.json through a temporary file in SUBDIR.
 * unless_same: if the file already holds exactly that text, it is left as
 * it is (nothing to replace, nothing to sync). */
static int write_atomic(const char *subdir, const char *name, const json_t *doc,
                        mode_t mode, int unless_same, char **err) {
    char *final = NULL, *tmp = NULL, *text = NULL;
    int fd = -1, rc = -1;
    if (asprintf(&final, "%s/%s.json", subdir, name) < 0) {
        final = NULL;
        seterr(err, "out of memory");
        goto out;
    }
    if (asprintf(&tmp, "%s.tmp-%ld", final, (long)getpid()) < 0) {
        tmp = NULL;
        seterr(err, "out of memory");
        goto out;
    }
    text = file_text(doc);
    if (!text) {
        seterr(err, "cannot serialise %s", final);
        goto out;
    }
    if (unless_same && file_holds(final, text)) {
        rc = 0;
        goto out;
    }
    unlink(tmp); /* left by a crash of a process that had our pid */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        seterr(err, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (write_all(fd, text, strlen(text)) || fsync(fd)) {
        seterr(err, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd)) {
        fd = -1;
        seterr(err, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, final)) {
        seterr(err, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
        goto out;
    }
    if (fsync_dir(subdir)) {
        seterr(err, "cannot sync %s: %s", subdir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc && tmp)
        unlink(tmp);
    free(text);
    free(tmp);
    free(final);
    return rc;
}

int deploy_write(const char *dir, const json_t *integration_doc,
                 const json_t *instance_doc, char **err) {
    static const char names_rule[] =
        "names hold letters, digits, '.', '_' and '-', and do not start "
        "with '.'";
    if (err)
        *err = NULL;
    const char *ig =
        json_string_value(json_object_get(integration_doc, "name"));
    const char *in = json_string_value(json_object_get(instance_doc, "name"));
    const char *want =
        json_string_value(json_object_get(instance_doc, "integration"));
    if (!ig)
        return seterr(err, "the integration has no \"name\"");
    if (!deploy_name_ok(ig))
        return seterr(err, "integration name '%s' refused: %s", ig, names_rule);
    if (!in)
        return seterr(err, "the instance has no \"name\"");
    if (!deploy_name_ok(in))
        return seterr(err, "instance name '%s' refused: %s", in, names_rule);
    if (!want || strcmp(want, ig))
        return seterr(err, "instance '%s' is for integration '%s', not '%s'",
                      in, want ? want : "(none)", ig);

    char *igdir = joinf(dir, "integrations", NULL);
    char *indir = joinf(dir, "instances", NULL);
    int rc = -1;
    if (!igdir || !indir)
        seterr(err, "out of memory");
    else if (!make_dir(dir, 0755, err) && !make_dir(igdir, 0755, err) &&
             !make_dir(indir, 0700, err) &&
             /* An integration file is shared by the integration's
              * instances: deploying one more of them leaves it as it is. */
             !write_atomic(igdir, ig, integration_doc, 0644, 1, err) &&
             !write_atomic(indir, in, instance_doc, 0600, 0, err))
        rc = 0;
    free(igdir);
    free(indir);
    return rc;
}
