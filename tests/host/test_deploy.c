/*
 * Deployments: deploy_write then deploy_table_load_dir round trips; a
 * redeploy replaces the table's entry while an execution's reference keeps
 * the old definition alive; invalid instances, missing integrations and
 * misnamed files are reported with their file and path and skipped; bad
 * names are refused before anything is written; writes leave no temporary
 * files, even when they fail; an unchanged integration's file is left as it
 * is and its instances share one compiled form.
 */
#include "th.h"

#include "host/deploy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An integration "sensors" whose flow sets its output to config.site. */
#define INTEGRATION(version, extra_config)                                     \
    "{'name': 'sensors', 'version': '" version "',"                            \
    " 'config': {'site': {'type': 'string', 'required': true}" extra_config    \
    "},"                                                                       \
    " 'flows': [{'name': 'convert', 'steps': [{'name': 'out',"                 \
    "   'action': 'core.set', 'input': {'value': '{{ config.site }}'}}]},"     \
    "  {'name': 'nightly', 'trigger': {'type': 'schedule', 'cron': '0 2 * * "  \
    "*'},"                                                                     \
    "   'steps': [{'name': 'x', 'action': 'core.set', 'input': {'value': "     \
    "1}}]}]}"
#define INSTANCE(name, site)                                                   \
    "{'integration': 'sensors', 'name': '" name "',"                           \
    " 'config': {'site': '" site "'}}"

typedef struct fx {
    char *dir; /* the deployments directory (inside tmp) */
    char *tmp;
    abi_registry reg;
    flow_diags d;
    deploy_table *t;
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof(*f));
    f->tmp = th_tmpdir();
    f->dir = th_path(f->tmp, "deployments");
    th_registry(&f->reg);
    f->t = deploy_table_new();
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    deploy_table_free(f->t);
    flow_diags_free(&f->d);
    abi_registry_free(&f->reg);
    free(f->dir);
    th_rmrf(f->tmp);
    free(f);
    return 0;
}

static void write_ok(fx *f, const char *ig_sq, const char *in_sq) {
    json_t *ig = th_json(ig_sq), *in = th_json(in_sq);
    char *err = NULL;
    if (deploy_write(f->dir, ig, in, &err))
        fail_msg("deploy_write: %s", err);
    json_decref(ig);
    json_decref(in);
}

static void assert_no_diags(fx *f) {
    if (f->d.n) {
        flow_diags_print(&f->d, stderr);
        fail_msg("%zu unexpected diags", f->d.n);
    }
}

static char *sub(fx *f, const char *rel) {
    return th_path(f->dir, rel);
}

static void test_round_trip(void **state) {
    fx *f = *state;
    write_ok(f, INTEGRATION("1.0.0", ""), INSTANCE("plant-b", "Bremen"));
    write_ok(f, INTEGRATION("1.0.0", ""), INSTANCE("plant-a", "Aachen"));

    char *ls = th_ls(f->dir);
    assert_string_equal(ls, "instances integrations");
    free(ls);
    char *p = sub(f, "instances");
    ls = th_ls(p);
    assert_string_equal(ls, "plant-a.json plant-b.json");
    free(ls);
    free(p);
    p = sub(f, "integrations");
    ls = th_ls(p);
    assert_string_equal(ls, "sensors.json");
    free(ls);
    free(p);
    /* Instance files hold credentials. */
    struct stat sb;
    p = sub(f, "instances/plant-a.json");
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* The document as given, readable. */
    json_t *back = json_load_file(p, 0, NULL);
    json_t *want = th_json(INSTANCE("plant-a", "Aachen"));
    assert_true(json_equal(back, want));
    json_decref(back);
    json_decref(want);
    free(p);

    assert_int_equal(deploy_table_load_dir(f->t, f->dir, &f->reg, &f->d), 2);
    assert_no_diags(f);
    assert_int_equal(deploy_table_count(f->t), 2);
    deployment *dp = deploy_table_get(f->t, "plant-a");
    assert_non_null(dp);
    assert_string_equal(dp->instance, "plant-a");
    assert_string_equal(dp->integration, "sensors");
    assert_string_equal(dp->ig->version, "1.0.0");
    assert_int_equal(dp->ig->nflows, 2);
    assert_string_equal(
        json_string_value(json_object_get(dp->in->config, "site")), "Aachen");
    p = sub(f, "instances/plant-a.json");
    assert_string_equal(dp->instance_file, p);
    free(p);
    p = sub(f, "integrations/sensors.json");
    assert_string_equal(dp->integration_file, p);
    free(p);
    assert_true(dp->deployed_us > 0);
    assert_null(deploy_table_get(f->t, "plant-c"));

    json_t *list = deploy_table_list(f->t);
    assert_int_equal(json_array_size(list), 2);
    json_t *first = json_array_get(list, 0);
    const char *deployed =
        json_string_value(json_object_get(first, "deployed"));
    assert_non_null(deployed);
    assert_int_equal(strlen(deployed), strlen("2026-11-28T07:00:00.123Z"));
    assert_int_equal(deployed[10], 'T');
    assert_int_equal(deployed[23], 'Z');
    json_object_del(first, "deployed");
    json_object_del(json_array_get(list, 1), "deployed");
    want =
        th_json("[{'instance': 'plant-a', 'integration': 'sensors', 'version': "
                "'1.0.0', 'flows': [{'name': 'convert', 'trigger': 'manual'},"
                " {'name': 'nightly', 'trigger': 'schedule'}]},"
                " {'instance': 'plant-b', 'integration': 'sensors', 'version': "
                "'1.0.0', 'flows': [{'name': 'convert', 'trigger': 'manual'},"
                " {'name': 'nightly', 'trigger': 'schedule'}]}]");
    if (!json_equal(list, want)) {
        char *s = json_dumps(list, 0);
        fail_msg("list: %s", s);
    }
    json_decref(want);
    json_decref(list);
}

static void test_missing_dir_is_empty(void **state) {
    fx *f = *state;
    assert_int_equal(deploy_table_load_dir(f->t, f->dir, &f->reg, &f->d), 0);
    assert_no_diags(f);
    /* A directory without instances/ yet. */
    assert_int_equal(mkdir(f->dir, 0755), 0);
    assert_int_equal(deploy_table_load_dir(f->t, f->dir, &f->reg, &f->d), 0);
    assert_no_diags(f);
    json_t *list = deploy_table_list(f->t);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

static deployment *build(fx *f, const char *ig_sq, const char *in_sq) {
    json_t *ig = th_json(ig_sq), *in = th_json(in_sq);
    deployment *dp =
        deployment_build(ig, in, "integration", "instance", &f->reg, &f->d);
    json_decref(ig);
    json_decref(in);
    assert_no_diags(f);
    assert_non_null(dp);
    return dp;
}

static void test_redeploy_keeps_old_alive(void **state) {
    fx *f = *state;
    deployment *v1 = build(f, INTEGRATION("1", ""), INSTANCE("a", "one"));
    assert_int_equal(v1->refs, 1);
    assert_int_equal(deploy_table_put(f->t, v1), 0);
    assert_int_equal(deploy_table_put(f->t, build(f, INTEGRATION("1", ""),
                                                  INSTANCE("b", "x"))),
                     0);

    /* An execution starts on v1 and holds it. */
    deployment *running = deployment_ref(deploy_table_get(f->t, "a"));
    assert_ptr_equal(running, v1);
    assert_int_equal(v1->refs, 2);

    deployment *v2 = build(f, INTEGRATION("2", ""), INSTANCE("a", "two"));
    assert_int_equal(deploy_table_put(f->t, v2), 0);
    assert_ptr_equal(deploy_table_get(f->t, "a"), v2);
    assert_int_equal(deploy_table_count(f->t), 2);

    /* The running execution still reads its own definition (ASan would
     * catch a use after free here). */
    assert_int_equal(running->refs, 1);
    assert_string_equal(running->ig->version, "1");
    assert_string_equal(
        json_string_value(json_object_get(running->in->config, "site")), "one");
    assert_non_null(flow_find(running->ig, "convert"));
    deployment_unref(running);

    deployment *now = deploy_table_get(f->t, "a");
    assert_string_equal(now->ig->version, "2");
    assert_string_equal(
        json_string_value(json_object_get(now->in->config, "site")), "two");

    assert_int_equal(deploy_table_remove(f->t, "a"), 0);
    assert_int_equal(deploy_table_remove(f->t, "a"), -1);
    assert_null(deploy_table_get(f->t, "a"));
    assert_int_equal(deploy_table_count(f->t), 1);
}

/* Redeploying through the directory: the new files win at the next load;
 * an old table entry held by an execution is untouched. */
static void test_redeploy_through_dir(void **state) {
    fx *f = *state;
    write_ok(f, INTEGRATION("1", ""), INSTANCE("a", "one"));
    assert_int_equal(deploy_table_load_dir(f->t, f->dir, &f->reg, &f->d), 1);
    deployment *running = deployment_ref(deploy_table_get(f->t, "a"));

    write_ok(f, INTEGRATION("2", ""), INSTANCE("a", "two"));
    assert_int_equal(deploy_table_load_dir(f->t, f->dir, &f->reg, &f->d), 1);
    assert_no_diags(f);
    assert_int_equal(deploy_table_count(f->t), 1);
    assert_string_equal(deploy_table_get(f->t, "a")->ig->version, "2");
    assert_string_equal(running->ig->version, "1");
    deployment_unref(running);
}

static void test_invalid_skipped(void **state) {
    fx *f = *state;
    write_ok(f, INTEGRATION("1", ""), INSTANCE("good", "ok"));
    /* Written by hand: what deploy_write would never produce. */
    free(th_write_json(f->dir, "instances/wrong-type.json",
                       "{'integration': 'sensors', 'name': 'wrong-type',"
                       " 'config': {'site': 42}}"));
    free(th_write_json(f->dir, "instances/no-site.json",
                       "{'integration': 'sensors', 'name': 'no-site'}"));
    free(th_write_json(f->dir, "instances/orphan.json",
                       "{'integration': 'nope', 'name': 'orphan'}"));
    free(th_write_json(f->dir, "instances/misnamed.json",
                       INSTANCE("other", "x")));
    free(th_write(f->dir, "instances/broken.json", "{\"name\": "));
    free(th_write_json(f->dir, "instances/no-integration.json",
                       "{'name': 'no-integration'}"));
    /* Not deployment files: ignored. */
    free(th_write(f->dir, "instances/notes.txt", "hello"));
    free(th_write(f->dir, "instances/.hidden.json", "{"));
    free(th_write(f->dir, "instances/x.json.tmp-123", "{"));

    assert_int_equal(deploy_table_load_dir(f->t, f->dir, &f->reg, &f->d), 1);
    assert_non_null(deploy_table_get(f->t, "good"));
    assert_int_equal(deploy_table_count(f->t), 1);

    char *p = sub(f, "instances/wrong-type.json");
    assert_true(th_has_diag(&f->d, p, "config.site", "must be string"));
    free(p);
    p = sub(f, "instances/no-site.json");
    assert_true(
        th_has_diag(&f->d, p, "config", "missing required config variable"));
    free(p);
    p = sub(f, "instances/orphan.json");
    char *ig = sub(f, "integrations/nope.json");
    char *msg = NULL;
    assert_true(asprintf(&msg,
                         "integration 'nope' is not deployed: %s does "
                         "not exist",
                         ig) >= 0);
    assert_true(th_has_diag(&f->d, p, "integration", msg));
    free(msg);
    free(ig);
    free(p);
    p = sub(f, "instances/misnamed.json");
    assert_true(th_has_diag(&f->d, p, "name",
                            "the file is named for instance 'misnamed' but "
                            "the instance is 'other'"));
    free(p);
    p = sub(f, "instances/broken.json");
    assert_true(th_has_diag(&f->d, p, "line 1 column 9", "invalid JSON"));
    free(p);
    p = sub(f, "instances/no-integration.json");
    assert_true(th_has_diag(&f->d, p, "integration", "missing"));
    free(p);
    if (f->d.n != 6) {
        flow_diags_print(&f->d, stderr);
        fail_msg("%zu diags, want 6", f->d.n);
    }
}

/* A bad integration file is reported once, and every instance of it says
 * why it was skipped. */
static void test_invalid_integration(void **state) {
    fx *f = *state;
    free(th_write_json(f->dir, "integrations/sensors.json",
                       "{'name': 'sensors', 'flows': [{'name': 'f', 'steps':"
                       " [{'name': 's', 'action': 'no.such'}]}]}"));
    free(th_write_json(f->dir, "instances/a.json",
                       "{'integration': 'sensors', 'name': 'a'}"));
    free(th_write_json(f->dir, "instances/b.json",
                       "{'integration': 'sensors', 'name': 'b'}"));
    free(th_write_json(f->dir, "integrations/renamed.json",
                       INTEGRATION("1", "")));
    free(th_write_json(f->dir, "instances/c.json",
                       "{'integration': 'renamed', 'name': 'c'}"));
    assert_int_equal(deploy_table_load_dir(f->t, f->dir, &f->reg, &f->d), 0);
    char *ig = sub(f, "integrations/sensors.json");
    size_t in_ig = 0;
    for (size_t i = 0; i < f->d.n; i++)
        in_ig += !strcmp(f->d.items[i].file, ig);
    assert_int_equal(in_ig, 1);
    assert_true(th_has_diag(&f->d, ig, "flows[0].steps[0].action", "no.such"));
    for (const char *const *n = (const char *const[]){"a", "b", NULL}; *n;
         n++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "instances/%s.json", *n);
        char *p = sub(f, rel);
        assert_true(
            th_has_diag(&f->d, p, "integration", "integration 'sensors'"));
        assert_true(th_has_diag(&f->d, p, "integration",
                                "is not valid; instance skipped"));
        free(p);
    }
    free(ig);
    ig = sub(f, "integrations/renamed.json");
    assert_true(th_has_diag(&f->d, ig, "name",
                            "the file is named for integration 'renamed' but "
                            "the integration is 'sensors'"));
    free(ig);
}

static void test_build_reports_labels(void **state) {
    fx *f = *state;
    json_t *ig = th_json(INTEGRATION("1", ""));
    json_t *in = th_json("{'integration': 'sensors', 'name': 'a', 'config':"
                         " {'site': 1, 'extra': 2}}");
    deployment *dp =
        deployment_build(ig, in, "ig.json", "in.json", &f->reg, &f->d);
    assert_null(dp);
    assert_true(th_has_diag(&f->d, "in.json", "config.site", "must be string"));
    assert_true(th_has_diag(&f->d, "in.json", "config.extra",
                            "declares no config variable 'extra'"));
    flow_diags_free(&f->d);
    /* No instance at all. */
    assert_null(deployment_build(ig, NULL, NULL, NULL, &f->reg, &f->d));
    assert_true(th_has_diag(&f->d, "instance", "$", "missing"));
    flow_diags_free(&f->d);
    json_decref(in);
    /* A name the flow format accepts but a file cannot carry. */
    in = th_json(INSTANCE(".a", "x"));
    assert_null(deployment_build(ig, in, NULL, NULL, &f->reg, &f->d));
    assert_true(th_has_diag(&f->d, "instance", "name", "may not start with"));
    json_decref(in);
    json_decref(ig);
}

static void test_bad_names_refused(void **state) {
    fx *f = *state;
    static const struct {
        const char *ig, *in, *err;
    } cases[] = {
        {"{'name': 'a/b', 'flows': []}", INSTANCE("x", "y"),
         "integration name 'a/b' refused"},
        {"{'name': '../up', 'flows': []}", INSTANCE("x", "y"),
         "integration name '../up' refused"},
        {"{'flows': []}", INSTANCE("x", "y"),
         "the integration has no \"name\""},
        {"{'name': 'sensors'}", INSTANCE("a b", "y"),
         "instance name 'a b' refused"},
        {"{'name': 'sensors'}", INSTANCE("..", "y"),
         "instance name '..' refused"},
        {"{'name': 'sensors'}", INSTANCE("", "y"), "instance name '' refused"},
        {"{'name': 'sensors'}", INSTANCE("x/../../etc", "y"),
         "instance name 'x/../../etc' refused"},
        {"{'name': 'sensors'}", "{'integration': 'sensors'}",
         "the instance has no \"name\""},
        {"{'name': 'other'}", INSTANCE("x", "y"),
         "instance 'x' is for integration 'sensors', not 'other'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        json_t *ig = th_json(cases[i].ig), *in = th_json(cases[i].in);
        char *err = NULL;
        assert_int_equal(deploy_write(f->dir, ig, in, &err), -1);
        assert_non_null(err);
        if (!strstr(err, cases[i].err))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].err);
        free(err);
        json_decref(ig);
        json_decref(in);
    }
    struct stat sb;
    assert_int_equal(stat(f->dir, &sb), -1); /* nothing was created */
    char *up = th_path(f->tmp, "up.json");
    assert_int_equal(stat(up, &sb), -1);
    free(up);
    assert_false(deploy_name_ok("."));
    assert_false(deploy_name_ok(NULL));
    assert_true(deploy_name_ok("plant-7.v2_x"));
}

static void assert_only_json(fx *f, const char *subdir, const char *want) {
    char *p = sub(f, subdir);
    char *ls = th_ls(p);
    if (strcmp(ls, want))
        fail_msg("%s holds '%s', want '%s'", subdir, ls, want);
    free(ls);
    free(p);
}

static void test_atomic_no_temp_files(void **state) {
    fx *f = *state;
    for (int i = 0; i < 3; i++) {
        write_ok(f, INTEGRATION("1", ""), INSTANCE("a", "one"));
        write_ok(f, INTEGRATION("2", ""), INSTANCE("b", "two"));
    }
    assert_only_json(f, "instances", "a.json b.json");
    assert_only_json(f, "integrations", "sensors.json");

    /* A write that fails at the rename leaves the old file and no temp. */
    char *blocker = sub(f, "instances/c.json");
    assert_int_equal(mkdir(blocker, 0755), 0);
    json_t *ig = th_json(INTEGRATION("3", "")),
           *in = th_json(INSTANCE("c", "x"));
    char *err = NULL;
    assert_int_equal(deploy_write(f->dir, ig, in, &err), -1);
    assert_non_null(strstr(err, "cannot rename"));
    free(err);
    assert_only_json(f, "instances", "a.json b.json c.json");
    rmdir(blocker);
    free(blocker);
    json_decref(ig);
    json_decref(in);

    /* The file on disk is always a whole document. */
    char *p = sub(f, "instances/b.json");
    json_t *doc = json_load_file(p, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(doc);
    json_decref(doc);
    free(p);
}

static void test_dependents(void **state) {
    fx *f = *state;
    write_ok(f, INTEGRATION("1", ""), INSTANCE("a", "one"));
    write_ok(f, INTEGRATION("1", ""), INSTANCE("b", "two"));
    /* Version 2 requires a new variable that b does not set. */
    json_t *v2 = th_json(
        INTEGRATION("2", ", 'unit': {'type': 'string', 'required': true}"));
    assert_int_equal(deploy_check_dependents(f->dir, v2, "a", &f->reg, &f->d),
                     1);
    char *p = sub(f, "instances/b.json");
    assert_true(th_has_diag(&f->d, p, "config",
                            "missing required config variable 'unit'"));
    assert_true(th_has_diag(&f->d, p, "integration", "would not be valid"));
    free(p);
    flow_diags_free(&f->d);
    /* Compatible: an optional variable. */
    json_t *v3 = th_json(INTEGRATION("3", ", 'unit': {'type': 'string'}"));
    assert_int_equal(deploy_check_dependents(f->dir, v3, "a", &f->reg, &f->d),
                     0);
    assert_no_diags(f);
    json_decref(v2);
    json_decref(v3);
}

/* Another instance of the same integration leaves the integration's file
 * as it is (no rewrite, no sync); a changed integration replaces it. */
static void test_unchanged_integration_kept(void **state) {
    fx *f = *state;
    write_ok(f, INTEGRATION("1", ""), INSTANCE("a", "one"));
    char *p = sub(f, "integrations/sensors.json");
    struct stat before, after;
    assert_int_equal(stat(p, &before), 0);
    write_ok(f, INTEGRATION("1", ""), INSTANCE("b", "two"));
    assert_int_equal(stat(p, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino); /* not renamed over */
    write_ok(f, INTEGRATION("2", ""), INSTANCE("c", "three"));
    assert_int_equal(stat(p, &after), 0);
    assert_int_not_equal(before.st_ino, after.st_ino);
    json_t *back = json_load_file(p, 0, NULL),
           *want = th_json(INTEGRATION("2", ""));
    assert_true(json_equal(back, want));
    json_decref(back);
    json_decref(want);
    free(p);
    assert_only_json(f, "integrations", "sensors.json");
    assert_int_equal(deploy_table_load_dir(f->t, f->dir, &f->reg, &f->d), 3);
    assert_no_diags(f);
}

/* An integration whose file already holds the same text changes nothing
 * for the other instances: they are not read (one placed by hand that
 * does not load is not this deploy's doing). A changed one reads them. */
static void test_dependents_unchanged(void **state) {
    fx *f = *state;
    write_ok(f, INTEGRATION("1", ""), INSTANCE("a", "one"));
    free(th_write_json(f->dir, "instances/no-site.json",
                       "{'integration': 'sensors', 'name': 'no-site'}"));
    json_t *v1 = th_json(INTEGRATION("1", ""));
    assert_int_equal(deploy_check_dependents(f->dir, v1, "a", &f->reg, &f->d),
                     0);
    assert_no_diags(f);
    json_t *v1b = th_json(INTEGRATION("1b", ""));
    assert_int_equal(deploy_check_dependents(f->dir, v1b, "a", &f->reg, &f->d),
                     1);
    char *p = sub(f, "instances/no-site.json");
    assert_true(th_has_diag(&f->d, p, "integration", "would not be valid"));
    free(p);
    flow_diags_free(&f->d);
    json_decref(v1);
    json_decref(v1b);
}

/* Instances of one unchanged integration share its compiled form and
 * document, through the API (deployment_build_in) as from a directory. */
static void test_shared_integration(void **state) {
    fx *f = *state;
    json_t *ig = th_json(INTEGRATION("1", "")),
           *ig2 = th_json(INTEGRATION("1", ""));
    json_t *in_a = th_json(INSTANCE("a", "one")),
           *in_b = th_json(INSTANCE("b", "two"));
    deployment *a = deployment_build_in(f->t, ig, in_a, "integration",
                                        "instance", &f->reg, &f->d);
    assert_non_null(a);
    assert_ptr_equal(a->integration_doc, ig);
    assert_int_equal(deploy_table_put(f->t, a), 0);
    deployment *b = deployment_build_in(f->t, ig2, in_b, "integration",
                                        "instance", &f->reg, &f->d);
    assert_no_diags(f);
    assert_non_null(b);
    assert_ptr_equal(b->ig, a->ig);
    assert_ptr_equal(b->integration_doc, a->integration_doc);
    assert_string_equal(b->integration_key, a->integration_key);
    assert_string_equal(
        json_string_value(json_object_get(b->in->config, "site")), "two");
    assert_int_equal(deploy_table_put(f->t, b), 0);

    /* A changed integration compiles its own; an unchanged one built
     * against another registry too. */
    json_t *v2 = th_json(INTEGRATION("2", "")),
           *in_c = th_json(INSTANCE("c", "x"));
    deployment *c = deployment_build_in(f->t, v2, in_c, "integration",
                                        "instance", &f->reg, &f->d);
    assert_non_null(c);
    assert_ptr_not_equal(c->ig, a->ig);
    assert_string_not_equal(c->integration_key, a->integration_key);
    abi_registry other;
    th_registry(&other);
    deployment *d = deployment_build_in(f->t, ig2, in_c, "integration",
                                        "instance", &other, &f->d);
    assert_non_null(d);
    assert_ptr_not_equal(d->ig, a->ig);
    assert_string_equal(d->integration_key, a->integration_key);
    deployment_unref(d);
    deployment_unref(c);

    /* Replacing or removing every holder leaves nothing to share: the next
     * one compiles its own (and nothing is leaked, as ASan checks). */
    assert_int_equal(deploy_table_remove(f->t, "a"), 0);
    assert_int_equal(deploy_table_remove(f->t, "b"), 0);
    deployment *e = deployment_build_in(f->t, ig, in_a, "integration",
                                        "instance", &f->reg, &f->d);
    assert_non_null(e);
    assert_ptr_equal(e->integration_doc, ig);
    deployment_unref(e);
    assert_no_diags(f);
    abi_registry_free(&other);
    json_decref(ig);
    json_decref(ig2);
    json_decref(v2);
    json_decref(in_a);
    json_decref(in_b);
    json_decref(in_c);

    /* Loaded from a directory: one compiled copy for the integration;
     * deploy_table_at walks in name order. */
    write_ok(f, INTEGRATION("1", ""), INSTANCE("y", "one"));
    write_ok(f, INTEGRATION("1", ""), INSTANCE("x", "two"));
    deploy_table *t = deploy_table_new();
    assert_int_equal(deploy_table_load_dir(t, f->dir, &f->reg, &f->d), 2);
    assert_no_diags(f);
    deployment *x = deploy_table_at(t, 0), *y = deploy_table_at(t, 1);
    assert_string_equal(x->instance, "x");
    assert_string_equal(y->instance, "y");
    assert_null(deploy_table_at(t, 2));
    assert_ptr_equal(x->ig, y->ig);
    assert_string_equal(x->integration_key, y->integration_key);
    deploy_table_free(t);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_round_trip),
        T(test_missing_dir_is_empty),
        T(test_redeploy_keeps_old_alive),
        T(test_redeploy_through_dir),
        T(test_invalid_skipped),
        T(test_invalid_integration),
        T(test_build_reports_labels),
        T(test_bad_names_refused),
        T(test_atomic_no_temp_files),
        T(test_dependents),
        T(test_unchanged_integration_kept),
        T(test_dependents_unchanged),
        T(test_shared_integration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
