#include "ft.h"

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_log(void *ud, const char *path, int level, const char *msg) {
    ft *t = ud;
    json_array_append_new(t->logs, json_pack("{s:s?, s:i, s:s}", "path", path,
                                             "level", level, "message", msg));
}

ft *ft_new(void) {
    ft *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/ferry-flow-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    t->dir = strdup(dir);
    char *err = NULL;
    if (flow_load_registry(&t->reg, FT_COMPONENTS_DIR, &err))
        fail_msg("registry: %s", err ? err : "?");
    for (size_t i = 0; i < t->reg.nrefused; i++)
        fail_msg("refused %s: %s", t->reg.refused[i].path,
                 t->reg.refused[i].reason);
    assert_non_null(abi_find_component(&t->reg, "tc"));
    t->logs = json_array();
    t->opts.tmpdir = t->dir;
    t->opts.on_log = on_log;
    t->opts.ud = t;
    return t;
}

static int rm_cb(const char *path, const struct stat *sb, int flag,
                 struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void ft_free(ft *t) {
    if (!t)
        return;
    flow_result_clear(&t->res);
    flow_instance_free(t->in);
    flow_integration_free(t->ig);
    flow_diags_free(&t->d);
    store_close(t->st);
    abi_registry_free(&t->reg);
    json_decref(t->logs);
    for (int i = 0; i < t->nfiles; i++)
        free(t->files[i]);
    nftw(t->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(t->dir);
    free(t);
}

store *ft_open_store(ft *t, const char *name) {
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", t->dir, name);
    char *err = NULL;
    store *s = store_open_sqlite(path, &err);
    if (!s)
        fail_msg("store %s: %s", path, err ? err : "?");
    if (!t->st)
        t->st = s;
    t->opts.st = s;
    return s;
}

char *ft_q(const char *s) {
    char *c = strdup(s);
    assert_non_null(c);
    for (char *p = c; *p; p++)
        if (*p == '\'')
            *p = '"';
    return c;
}

json_t *ft_json(const char *sq) {
    char *text = ft_q(sq);
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad test JSON (%s) at column %d: %s", e.text, e.column, text);
    free(text);
    return v;
}

const char *ft_write_raw(ft *t, const char *name, const char *text) {
    assert_true(t->nfiles < (int)(sizeof(t->files) / sizeof(t->files[0])));
    char *path = NULL;
    assert_true(asprintf(&path, "%s/%s", t->dir, name) > 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    t->files[t->nfiles++] = path;
    return path;
}

const char *ft_write(ft *t, const char *name, const char *sq) {
    char *text = ft_q(sq);
    const char *path = ft_write_raw(t, name, text);
    free(text);
    return path;
}

static void fail_diags(ft *t, const char *what) {
    for (size_t i = 0; i < t->d.n; i++)
        print_error("%s: %s: %s\n", t->d.items[i].file, t->d.items[i].path,
                    t->d.items[i].message);
    fail_msg("%s did not load", what);
}

void ft_load(ft *t, const char *integration_sq, const char *instance_sq) {
    flow_instance_free(t->in);
    flow_integration_free(t->ig);
    t->in = NULL;
    const char *ipath = ft_write(t, "integration.json", integration_sq);
    t->ig = flow_integration_load(ipath, &t->reg, &t->d);
    if (!t->ig || t->d.n)
        fail_diags(t, "the integration");
    const char *npath =
        instance_sq ? ft_write(t, "instance.json", instance_sq) : NULL;
    t->in = flow_instance_load(npath, t->ig, &t->reg, &t->d);
    if (!t->in || t->d.n)
        fail_diags(t, "the instance");
}

const char *ft_run(ft *t, const char *flow, const char *trigger_sq) {
    const flow_def *f = flow_find(t->ig, flow);
    if (!f)
        fail_msg("no flow '%s'", flow ? flow : "(the only one)");
    json_t *trigger = trigger_sq ? ft_json(trigger_sq) : NULL;
    flow_result_clear(&t->res);
    int rc = flow_execute(t->ig, t->in, f, trigger, &t->opts, &t->res);
    json_decref(trigger);
    if (rc)
        fail_msg("flow_execute: %d %s", rc,
                 t->res.error_message ? t->res.error_message : "");
    assert_non_null(t->res.status);
    return t->res.status;
}

void ft_assert_json_at(const json_t *got, const char *want_sq, const char *file,
                       int line) {
    json_t *want = ft_json(want_sq);
    if (!got || !json_equal(got, want)) {
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
        print_error("got  %s\nwant %s\n", g ? g : "(nothing)", w);
        free(g);
        free(w);
        json_decref(want);
        _fail(file, line);
    }
    json_decref(want);
}

void ft_assert_output_at(ft *t, const char *want_sq, const char *file,
                         int line) {
    if (strcmp(t->res.status, "succeeded")) {
        print_error("execution %s at %s: %s: %s\n", t->res.status,
                    t->res.error_step ? t->res.error_step : "?",
                    ferry_err_name(t->res.error_code),
                    t->res.error_message ? t->res.error_message : "");
        _fail(file, line);
    }
    ft_assert_json_at(t->res.output, want_sq, file, line);
}

void ft_assert_contains_at(const char *s, const char *sub, const char *file,
                           int line) {
    if (!s || !strstr(s, sub)) {
        print_error("'%s' does not contain '%s'\n", s ? s : "(null)", sub);
        _fail(file, line);
    }
}
