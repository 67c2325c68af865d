/*
 * Tests of core/abi: loading fixture components (tests/abi/fixtures/,
 * built to FERRY_ABI_FIXTURE_DIR) and checking what is loaded, what is
 * refused and with which message, lookups, input types and the JSON
 * description.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "abi/abi.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FERRY_ABI_FIXTURE_DIR
#error "FERRY_ABI_FIXTURE_DIR must name the directory of the fixture .so files"
#endif

/* ---- a minimal host table ------------------------------------------- */

static json_t *last_output;
static int last_error;

static int stub_set_output(ferry_ctx *ctx, json_t *output) {
    (void)ctx;
    json_decref(last_output);
    last_output = output;
    return FERRY_OK;
}

static int stub_set_error(ferry_ctx *ctx, int code, int retryable,
                          const char *fmt, ...) {
    (void)ctx;
    (void)retryable;
    (void)fmt;
    last_error = code;
    return code;
}

static const ferry_api host = {
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .size = sizeof(ferry_api),
    .alloc = malloc,
    .free = free,
    .set_output = stub_set_output,
    .set_error = stub_set_error,
};

static char *fixture(const char *name) {
    static char buf[4096];
    snprintf(buf, sizeof(buf), "%s/%s.so", FERRY_ABI_FIXTURE_DIR, name);
    return buf;
}

/* A fresh directory for a test to fill; the caller removes it. */
static void temp_dir(char *buf, size_t len) {
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, len, "%s/ferry-abi-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(buf));
}

/* Nonzero if the .so at path is still mapped in this process. */
static int still_loaded(const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (h != NULL)
        dlclose(h);
    return h != NULL;
}

static void assert_contains(const char *haystack, const char *needle) {
    if (haystack == NULL || strstr(haystack, needle) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", needle,
                 haystack ? haystack : "(null)");
}

/* ---- loading --------------------------------------------------------- */

static void test_load_good(void **state) {
    (void)state;
    abi_registry r;
    abi_registry_init(&r);
    assert_int_equal(abi_load_file(&r, fixture("good"), &host), FERRY_OK);
    assert_int_equal(r.ncomponents, 1);
    assert_int_equal(r.nrefused, 0);
    assert_string_equal(r.components[0].path, fixture("good"));
    assert_non_null(r.components[0].handle);
    assert_string_equal(r.components[0].desc->name, "good");
    assert_string_equal(r.components[0].desc->version, "1.2.0");

    /* The component got the host's table: its action calls back into it. */
    const abi_component *owner = NULL;
    const ferry_action *echo = abi_find_action(&r, "good.echo", &owner);
    assert_non_null(echo);
    assert_ptr_equal(owner, &r.components[0]);
    json_t *in = json_pack("{s:s}", "text", "hi");
    assert_int_equal(echo->run(NULL, in), FERRY_OK);
    assert_true(json_equal(last_output, in));
    json_decref(in);
    json_decref(last_output);
    last_output = NULL;

    const ferry_action *fetch = abi_find_action(&r, "good.fetch.file", NULL);
    assert_non_null(fetch);
    assert_int_equal(fetch->run(NULL, NULL), FERRY_EUNAVAIL);
    assert_int_equal(last_error, FERRY_EUNAVAIL);

    owner = &r.components[0];
    assert_null(abi_find_action(&r, "good.nope", &owner));
    assert_null(owner);
    assert_null(abi_find_action(&r, "good", NULL));
    assert_null(abi_find_action(&r, "goo.echo", NULL));
    assert_null(abi_find_action(&r, "goodx.echo", NULL));
    assert_null(abi_find_action(&r, "good.watch", NULL)); /* a trigger */
    assert_null(abi_find_action(&r, NULL, NULL));

    assert_ptr_equal(abi_find_component(&r, "good"), &r.components[0]);
    assert_null(abi_find_component(&r, "goo"));
    const ferry_connection_type *k = abi_find_connection_type(&r, "good.key");
    assert_non_null(k);
    assert_string_equal(k->auth, "api_key");
    assert_null(abi_find_connection_type(&r, "good.echo"));

    assert_true(still_loaded(fixture("good")));
    abi_registry_free(&r);
    assert_int_equal(r.ncomponents, 0);
    assert_null(r.components);
    assert_false(still_loaded(fixture("good")));
}

struct refusal_case {
    const char *fixture;
    int code;
    const char *reason; /* the whole reason */
};

static void test_refusals(void **state) {
    (void)state;
    char v[64], newer[64], jans[64];
    snprintf(v, sizeof(v), "built for ABI 2.0, host has ABI %d.%d",
             FERRY_ABI_MAJOR, FERRY_ABI_MINOR);
    snprintf(newer, sizeof(newer), "built for ABI %d.%d, host has ABI %d.%d",
             FERRY_ABI_MAJOR, FERRY_ABI_MINOR + 1, FERRY_ABI_MAJOR,
             FERRY_ABI_MINOR);
    snprintf(jans, sizeof(jans), "built against jansson 3, host has jansson %d",
             JANSSON_MAJOR_VERSION);
    const struct refusal_case cases[] = {
        {"wrong_major", FERRY_EABI, v},
        {"newer_minor", FERRY_EABI, newer},
        {"jansson_major", FERRY_EABI, jans},
        {"no_entry", FERRY_EABI, "no entry symbol 'ferry_component_entry'"},
        {"null_entry", FERRY_EABI, "entry function returned NULL"},
        {"dup_action", FERRY_EINVAL,
         "invalid description: duplicate action id 'dup_action.run'"},
        {"bad_type", FERRY_EINVAL,
         "invalid description: action 'bad_type.run': unknown input type "
         "'strng' for input 'name'"},
        {"no_name", FERRY_EINVAL, "invalid description: component has no name"},
        {"bad_default", FERRY_EINVAL,
         "invalid description: action 'bad_default.run': default of input "
         "'count' is string \"ten\", expected integer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        abi_registry r;
        abi_registry_init(&r);
        int rc = abi_load_file(&r, fixture(cases[i].fixture), &host);
        if (rc != cases[i].code)
            fail_msg("%s: got %s, expected %s", cases[i].fixture,
                     ferry_err_name(rc), ferry_err_name(cases[i].code));
        assert_int_equal(r.ncomponents, 0);
        assert_int_equal(r.nrefused, 1);
        assert_string_equal(r.refused[0].path, fixture(cases[i].fixture));
        assert_contains(r.refused[0].reason, cases[i].reason);
        assert_null(strchr(r.refused[0].reason, '\n'));
        /* A refused file is closed again. */
        if (still_loaded(fixture(cases[i].fixture)))
            fail_msg("%s: still loaded after its refusal", cases[i].fixture);
        abi_registry_free(&r);
    }
}

static void test_refuse_duplicate_name(void **state) {
    (void)state;
    abi_registry r;
    abi_registry_init(&r);
    assert_int_equal(abi_load_file(&r, fixture("good"), &host), FERRY_OK);
    char want[4200];
    snprintf(want, sizeof(want), "component 'good' already loaded from %s",
             fixture("good"));
    assert_int_equal(abi_load_file(&r, fixture("good_dup_name"), &host),
                     FERRY_EEXISTS);
    assert_int_equal(r.ncomponents, 1);
    assert_int_equal(r.nrefused, 1);
    assert_string_equal(r.refused[0].path, fixture("good_dup_name"));
    assert_string_equal(r.refused[0].reason, want);
    /* The first one is still the one found. */
    const abi_component *owner;
    assert_non_null(abi_find_action(&r, "good.echo", &owner));
    assert_string_equal(owner->path, fixture("good"));

    /* The same file again is the same name again. */
    assert_int_equal(abi_load_file(&r, fixture("good"), &host), FERRY_EEXISTS);
    assert_int_equal(r.ncomponents, 1);
    assert_int_equal(r.nrefused, 2);
    /* ...and refusing it did not unload the first copy. */
    assert_non_null(abi_find_action(&r, "good.echo", NULL)->run);
    json_t *in = json_pack("{s:s}", "text", "still here");
    assert_int_equal(abi_find_action(&r, "good.echo", NULL)->run(NULL, in),
                     FERRY_OK);
    json_decref(in);
    json_decref(last_output);
    last_output = NULL;
    abi_registry_free(&r);
}

static void test_load_missing_and_not_elf(void **state) {
    (void)state;
    abi_registry r;
    abi_registry_init(&r);
    assert_int_equal(abi_load_file(&r, fixture("does_not_exist"), &host),
                     FERRY_EIO);
    assert_int_equal(r.nrefused, 1);
    assert_contains(r.refused[0].reason, "No such file");

    char dir[256];
    temp_dir(dir, sizeof(dir));
    char path[300];
    snprintf(path, sizeof(path), "%s/garbage.so", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a shared object\n", f);
    fclose(f);
    assert_int_equal(abi_load_file(&r, path, &host), FERRY_EIO);
    assert_int_equal(r.nrefused, 2);
    assert_string_equal(r.refused[1].path, path);
    assert_true(strlen(r.refused[1].reason) > 0);
    assert_null(strchr(r.refused[1].reason, '\n'));
    assert_int_equal(r.ncomponents, 0);
    unlink(path);
    rmdir(dir);
    abi_registry_free(&r);
}

/* A path without a slash is a file in the current directory, not a name
 * for dlopen to look up in the library path. */
static void test_load_relative_name(void **state) {
    (void)state;
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(FERRY_ABI_FIXTURE_DIR), 0);
    abi_registry r;
    abi_registry_init(&r);
    int rc = abi_load_file(&r, "good.so", &host);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, FERRY_OK);
    assert_string_equal(r.components[0].path, "good.so");
    abi_registry_free(&r);
}

static void test_load_dir(void **state) {
    (void)state;
    abi_registry r;
    abi_registry_init(&r);
    char *err = NULL;
    int n = abi_load_dir(&r, FERRY_ABI_FIXTURE_DIR, &host, &err);
    assert_null(err);
    /* Files load in name order, and each refusal leaves the rest going:
     * good.so comes after bad_default.so, bad_type.so and dup_action.so,
     * and everything after it is still tried. */
    assert_int_equal(n, 1);
    assert_int_equal(r.ncomponents, 1);
    assert_string_equal(r.components[0].desc->name, "good");
    assert_string_equal(r.components[0].path, fixture("good"));
    const char *refused[] = {"bad_default",   "bad_type",      "dup_action",
                             "good_dup_name", "jansson_major", "newer_minor",
                             "no_entry",      "no_name",       "null_entry",
                             "wrong_major"};
    size_t nref = sizeof(refused) / sizeof(refused[0]);
    assert_int_equal(r.nrefused, nref);
    for (size_t i = 0; i < nref; i++)
        assert_string_equal(r.refused[i].path, fixture(refused[i]));
    assert_non_null(abi_find_action(&r, "good.echo", NULL));
    abi_registry_free(&r);
}

static void touch(const char *dir, const char *name, const char *content) {
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void test_load_dir_filters(void **state) {
    (void)state;
    char dir[256];
    temp_dir(dir, sizeof(dir));
    char sub[512], link[512];
    snprintf(sub, sizeof(sub), "%s/sub.so", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    touch(dir, "README.txt", "not a component\n");
    touch(dir, ".hidden.so", "editor leftovers\n");
    touch(dir, "broken.so", "garbage\n");
    touch(dir, "so", "no suffix\n");
    snprintf(link, sizeof(link), "%s/linked.so", dir);
    assert_int_equal(symlink(fixture("good"), link), 0);

    abi_registry r;
    abi_registry_init(&r);
    char *err = NULL;
    assert_int_equal(abi_load_dir(&r, dir, &host, &err), 1);
    assert_null(err);
    assert_int_equal(r.ncomponents, 1);
    assert_string_equal(r.components[0].path, link);
    assert_int_equal(r.nrefused, 1);
    assert_contains(r.refused[0].path, "/broken.so");
    abi_registry_free(&r);

    const char *names[] = {"README.txt", ".hidden.so", "broken.so", "so",
                           "linked.so"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(sub);
    assert_int_equal(rmdir(dir), 0);

    /* The directory itself gone: an error, not a refusal. */
    abi_registry_init(&r);
    int rc = abi_load_dir(&r, dir, &host, &err);
    assert_true(rc < 0);
    assert_non_null(err);
    assert_contains(err, dir);
    assert_contains(err, "No such file");
    assert_int_equal(r.nrefused, 0);
    free(err);
    abi_registry_free(&r);
}

/* ---- the fixture exports nothing but its entry function -------------- */

static void test_exports_only_entry(void **state) {
    (void)state;
    void *h = dlopen(fixture("good"), RTLD_NOW | RTLD_LOCAL);
    assert_non_null(h);
    assert_non_null(dlsym(h, FERRY_ENTRY_SYMBOL));
    /* A non-static function of the fixture, hidden by the build. */
    assert_null(dlsym(h, "good_hidden_helper"));
    dlclose(h);

    const char *check[] = {"good", "no_entry"};
    const char *want[] = {FERRY_ENTRY_SYMBOL, "ferry_component_entry_v0"};
    for (size_t i = 0; i < 2; i++) {
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s'",
                 fixture(check[i]));
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        char line[512];
        int found = 0, others = 0;
        while (fgets(line, sizeof(line), p) != NULL) {
            /* "<address> <type> <name>" */
            char addr[64], type[8], name[400];
            if (sscanf(line, "%63s %7s %399s", addr, type, name) != 3)
                continue;
            if (strcmp(name, want[i]) == 0)
                found++;
            else {
                fprintf(stderr, "%s.so also exports %s\n", check[i], name);
                others++;
            }
        }
        assert_int_equal(pclose(p), 0);
        assert_int_equal(found, 1);
        assert_int_equal(others, 0);
    }
}

/* ---- description checks ---------------------------------------------- */

static int run_ok(ferry_ctx *ctx, const json_t *input) {
    (void)ctx;
    (void)input;
    return FERRY_OK;
}

static const ferry_input in_ok[] = {{"a", "string", 1, NULL, NULL}, {0}};
static const ferry_input in_noname[] = {
    {"a", "string", 0, NULL, NULL}, {NULL, "string", 0, NULL, "x"}, {0}};
static const ferry_input in_notype[] = {{"a", NULL, 0, NULL, NULL}, {0}};
static const ferry_input in_dup[] = {{"a", "string", 0, NULL, NULL},
                                     {"b", "string", 0, NULL, NULL},
                                     {"a", "integer", 0, NULL, NULL},
                                     {0}};
static const ferry_input in_badjson[] = {{"n", "integer", 0, "1,", NULL}, {0}};
static const ferry_input in_num_int[] = {{"n", "number", 0, "3", NULL}, {0}};
static const ferry_input in_blob_bad[] = {{"f", "blob", 0, "{}", NULL}, {0}};

#define ACTIONS(...) ((const ferry_action[]){__VA_ARGS__, {0}})

struct desc_case {
    ferry_component desc;
    const char *reason; /* NULL: valid */
};

static void test_validate(void **state) {
    (void)state;
    static const ferry_trigger trig_nopoll[] = {{.id = "c.t"}, {0}};
    static const ferry_trigger trig_badid[] = {{.id = "d.t", .poll = run_ok},
                                               {0}};
    static const ferry_trigger trig_ok[] = {
        {.id = "c.t", .poll = run_ok, .inputs = in_ok}, {0}};
    static const ferry_trigger trig_dup[] = {
        {.id = "c.t", .poll = run_ok}, {.id = "c.t", .poll = run_ok}, {0}};
    static const ferry_connection_type conn_badauth[] = {
        {.id = "c.k", .auth = "magic"}, {0}};
    static const ferry_connection_type conn_noauth[] = {{.id = "c.k"}, {0}};
    static const ferry_connection_type conn_badid[] = {
        {.id = "k", .auth = "basic"}, {0}};
    static const ferry_connection_type conn_badfield[] = {
        {.id = "c.k", .auth = "oauth2", .fields = in_notype}, {0}};
    static const ferry_connection_type conn_ok[] = {
        {.id = "c.k", .auth = "custom", .fields = in_ok}, {0}};
#define H FERRY_COMPONENT_HEADER
    const struct desc_case cases[] = {
        {{H, .name = "c", .version = "1"}, NULL},
        {{H, .name = "c", .version = "1",
          .actions = ACTIONS({.id = "c.do_it.now", .run = run_ok}),
          .triggers = trig_ok, .connections = conn_ok},
         NULL},
        {{H, .name = "c_2", .version = "1",
          .actions = ACTIONS({.id = "c_2.x9", .run = run_ok})},
         NULL},
        {{H, .name = "c", .version = "1",
          .actions =
              ACTIONS({.id = "c.n", .run = run_ok, .inputs = in_num_int})},
         NULL},
        {{H, .version = "1"}, "component has no name"},
        {{H, .name = "", .version = "1"}, "component has no name"},
        {{H, .name = "Csv", .version = "1"},
         "component name 'Csv' is not lower case [a-z0-9_]"},
        {{H, .name = "my-csv", .version = "1"},
         "component name 'my-csv' is not lower case"},
        {{H, .name = "9x", .version = "1"}, "component name '9x'"},
        {{H, .name = "c"}, "component 'c' has no version"},
        {{H, .name = "c", .version = ""}, "component 'c' has no version"},
        {{H, .name = "c", .version = "1",
          .actions = ACTIONS({.label = "x", .run = run_ok})},
         "action #1 has no id"},
        {{H, .name = "c", .version = "1",
          .actions = ACTIONS({.id = "d.run", .run = run_ok})},
         "action id 'd.run' is not 'c.<verb>' in dotted lower case"},
        {{H, .name = "c", .version = "1",
          .actions = ACTIONS({.id = "c.Run", .run = run_ok})},
         "action id 'c.Run' is not 'c.<verb>'"},
        {{H, .name = "c", .version = "1",
          .actions = ACTIONS({.id = "c..run", .run = run_ok})},
         "action id 'c..run'"},
        {{H, .name = "c", .version = "1",
          .actions = ACTIONS({.id = "c.run.", .run = run_ok})},
         "action id 'c.run.'"},
        {{H, .name = "c", .version = "1",
          .actions = ACTIONS({.id = "c", .run = run_ok})},
         "action id 'c' is not"},
        {{H, .name = "c", .version = "1",
          .actions = ACTIONS({.id = "cc.run", .run = run_ok})},
         "action id 'cc.run' is not"},
        {{H, .name = "c", .version = "1",
          .actions = ACTIONS({.id = "c.a", .run = run_ok},
                             {.id = "c.b", .run = run_ok},
                             {.id = "c.a", .run = run_ok})},
         "duplicate action id 'c.a'"},
        {{H, .name = "c", .version = "1",
          .actions = ACTIONS({.id = "c.a", .label = "A"})},
         "action 'c.a' has no run function"},
        {{H, .name = "c", .version = "1",
          .actions =
              ACTIONS({.id = "c.a", .run = run_ok, .inputs = in_noname})},
         "action 'c.a': input #2 has no name"},
        {{H, .name = "c", .version = "1",
          .actions =
              ACTIONS({.id = "c.a", .run = run_ok, .inputs = in_notype})},
         "action 'c.a': input 'a' has no type"},
        {{H, .name = "c", .version = "1",
          .actions = ACTIONS({.id = "c.a", .run = run_ok, .inputs = in_dup})},
         "action 'c.a': duplicate input 'a'"},
        {{H, .name = "c", .version = "1",
          .actions =
              ACTIONS({.id = "c.a", .run = run_ok, .inputs = in_badjson})},
         "action 'c.a': default of input 'n' is not valid JSON (1,)"},
        {{H, .name = "c", .version = "1",
          .actions =
              ACTIONS({.id = "c.a", .run = run_ok, .inputs = in_blob_bad})},
         "action 'c.a': default of input 'f' is object {}, expected blob"},
        {{H, .name = "c", .version = "1", .triggers = trig_nopoll},
         "trigger 'c.t' has no poll function"},
        {{H, .name = "c", .version = "1", .triggers = trig_badid},
         "trigger id 'd.t' is not 'c.<name>'"},
        {{H, .name = "c", .version = "1", .triggers = trig_dup},
         "duplicate trigger id 'c.t'"},
        {{H, .name = "c", .version = "1", .connections = conn_badauth},
         "connection type 'c.k': unknown auth 'magic'"},
        {{H, .name = "c", .version = "1", .connections = conn_noauth},
         "connection type 'c.k' has no auth"},
        {{H, .name = "c", .version = "1", .connections = conn_badid},
         "connection type id 'k' is not 'c.<name>'"},
        {{H, .name = "c", .version = "1", .connections = conn_badfield},
         "connection type 'c.k': field 'a' has no type"},
    };
#undef H
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[512];
        int rc = abi_validate_description(&cases[i].desc, buf, sizeof(buf));
        if (cases[i].reason == NULL) {
            if (rc != FERRY_OK)
                fail_msg("case %zu: unexpectedly invalid: %s", i, buf);
            assert_string_equal(buf, "");
        } else {
            if (rc != FERRY_EINVAL)
                fail_msg("case %zu: accepted, expected \"%s\"", i,
                         cases[i].reason);
            assert_contains(buf, cases[i].reason);
        }
    }
    /* A short buffer truncates; it is never overrun. */
    char small[8];
    ferry_component d = {FERRY_COMPONENT_HEADER, .name = "Bad"};
    assert_int_equal(abi_validate_description(&d, small, sizeof(small)),
                     FERRY_EINVAL);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(abi_validate_description(NULL, NULL, 0), FERRY_EINVAL);
}

/* ---- types ------------------------------------------------------------ */

static void test_types(void **state) {
    (void)state;
    const char *known[] = {"string", "integer", "number", "boolean",
                           "object", "array",   "blob",   "any"};
    for (size_t i = 0; i < 8; i++)
        assert_true(abi_type_known(known[i]));
    assert_false(abi_type_known("strng"));
    assert_false(abi_type_known("String"));
    assert_false(abi_type_known(""));
    assert_false(abi_type_known(NULL));

    struct {
        const char *json;
        const char *name; /* abi_json_type_name */
        const char *ok;   /* types it matches, space separated */
    } values[] = {
        {"\"x\"", "string", "string any"},
        {"3", "integer", "integer number any"},
        {"3.5", "number", "number any"},
        {"true", "boolean", "boolean any"},
        {"false", "boolean", "boolean any"},
        {"null", "null", "any"},
        {"[1]", "array", "array any"},
        {"{}", "object", "object any"},
        {"{\"$blob\": \"b1\", \"size\": 3}", "object", "object blob any"},
        {"{\"$blob\": 1}", "object", "object any"},
        {"{\"blob\": \"b1\"}", "object", "object any"},
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        json_t *v = json_loads(values[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        assert_string_equal(abi_json_type_name(v), values[i].name);
        for (size_t t = 0; t < 8; t++) {
            char padded[64];
            snprintf(padded, sizeof(padded), " %s ", values[i].ok);
            char word[32];
            snprintf(word, sizeof(word), " %s ", known[t]);
            int want = strstr(padded, word) != NULL;
            if (abi_type_matches(known[t], v) != want)
                fail_msg("%s as %s: expected %s", values[i].json, known[t],
                         want ? "match" : "no match");
        }
        assert_false(abi_type_matches("strng", v));
        assert_false(abi_type_matches(NULL, v));
        json_decref(v);
    }
    assert_false(abi_type_matches("any", NULL));
}

/* ---- describe --------------------------------------------------------- */

static json_t *find_by(json_t *arr, const char *key, const char *value) {
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        if (json_is_string(json_object_get(e, key)) &&
            strcmp(json_string_value(json_object_get(e, key)), value) == 0)
            return e;
    }
    return NULL;
}

static void test_describe_json(void **state) {
    (void)state;
    abi_registry r;
    abi_registry_init(&r);
    assert_int_equal(abi_load_file(&r, fixture("good"), &host), FERRY_OK);
    json_t *j = abi_describe_json(&r.components[0]);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "good");
    assert_string_equal(json_string_value(json_object_get(j, "version")),
                        "1.2.0");
    assert_string_equal(json_string_value(json_object_get(j, "description")),
                        "A valid fixture component.");
    assert_string_equal(json_string_value(json_object_get(j, "path")),
                        fixture("good"));

    json_t *actions = json_object_get(j, "actions");
    assert_int_equal(json_array_size(actions), 2);
    json_t *echo = find_by(actions, "id", "good.echo");
    assert_non_null(echo);
    assert_string_equal(json_string_value(json_object_get(echo, "label")),
                        "Echo");
    assert_string_equal(json_string_value(json_object_get(echo, "output")),
                        "the input object");
    assert_true(json_is_true(json_object_get(echo, "idempotent")));
    json_t *inputs = json_object_get(echo, "inputs");
    assert_int_equal(json_array_size(inputs), 3);
    json_t *text = json_array_get(inputs, 0);
    assert_string_equal(json_string_value(json_object_get(text, "name")),
                        "text");
    assert_string_equal(json_string_value(json_object_get(text, "type")),
                        "string");
    assert_true(json_is_true(json_object_get(text, "required")));
    assert_null(json_object_get(text, "default"));
    assert_string_equal(json_string_value(json_object_get(text, "description")),
                        "what to echo");
    json_t *count = find_by(inputs, "name", "count");
    assert_true(json_is_false(json_object_get(count, "required")));
    assert_true(json_is_integer(json_object_get(count, "default")));
    assert_int_equal(json_integer_value(json_object_get(count, "default")), 1);

    json_t *fetch = find_by(actions, "id", "good.fetch.file");
    assert_true(json_is_false(json_object_get(fetch, "idempotent")));
    assert_true(json_is_null(json_object_get(fetch, "description")));
    json_t *fin = json_object_get(fetch, "inputs");
    json_t *opts = find_by(fin, "name", "options");
    json_t *want = json_pack("{s:b}", "deep", 1);
    assert_true(json_equal(json_object_get(opts, "default"), want));
    json_decref(want);
    /* A default of null is there, and is null. */
    json_t *extra = find_by(fin, "name", "extra");
    assert_non_null(json_object_get(extra, "default"));
    assert_true(json_is_null(json_object_get(extra, "default")));
    json_t *enc = find_by(fin, "name", "encoding");
    assert_string_equal(json_string_value(json_object_get(enc, "default")),
                        "utf-8");

    json_t *triggers = json_object_get(j, "triggers");
    assert_int_equal(json_array_size(triggers), 1);
    json_t *watch = json_array_get(triggers, 0);
    assert_string_equal(json_string_value(json_object_get(watch, "id")),
                        "good.watch");
    assert_int_equal(json_array_size(json_object_get(watch, "inputs")), 2);

    json_t *conns = json_object_get(j, "connections");
    assert_int_equal(json_array_size(conns), 1);
    json_t *key = json_array_get(conns, 0);
    assert_string_equal(json_string_value(json_object_get(key, "id")),
                        "good.key");
    assert_string_equal(json_string_value(json_object_get(key, "auth")),
                        "api_key");
    json_t *region = find_by(json_object_get(key, "fields"), "name", "region");
    assert_string_equal(json_string_value(json_object_get(region, "default")),
                        "eu");
    json_decref(j);
    abi_registry_free(&r);
}

/* ---- built-ins and printing ------------------------------------------ */

static const ferry_component builtin = {
    FERRY_COMPONENT_HEADER,
    .name = "core",
    .version = "0.1.0",
    .actions = ACTIONS({.id = "core.log", .run = run_ok, .inputs = in_ok}),
};

static void test_builtin(void **state) {
    (void)state;
    abi_registry r;
    abi_registry_init(&r);
    char *reason = NULL;
    assert_int_equal(abi_registry_add_builtin(&r, &builtin, &reason), FERRY_OK);
    assert_null(reason);
    assert_int_equal(r.ncomponents, 1);
    assert_null(r.components[0].path);
    assert_null(r.components[0].handle);
    const abi_component *owner;
    assert_non_null(abi_find_action(&r, "core.log", &owner));
    assert_null(owner->path);

    json_t *j = abi_describe_json(owner);
    assert_true(json_is_null(json_object_get(j, "path")));
    assert_int_equal(json_array_size(json_object_get(j, "triggers")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "connections")), 0);
    json_decref(j);

    assert_int_equal(abi_registry_add_builtin(&r, &builtin, &reason),
                     FERRY_EINVAL);
    assert_string_equal(reason,
                        "component 'core' already loaded from built-in");
    free(reason);

    ferry_component bad = {FERRY_COMPONENT_HEADER, .name = "core2"};
    assert_int_equal(abi_registry_add_builtin(&r, &bad, &reason), FERRY_EINVAL);
    assert_string_equal(reason, "component 'core2' has no version");
    free(reason);
    assert_int_equal(r.ncomponents, 1);
    assert_int_equal(r.nrefused, 0);

    /* A .so with a built-in's name is refused, naming the built-in. */
    static const ferry_component good_builtin = {
        FERRY_COMPONENT_HEADER, .name = "good", .version = "0"};
    assert_int_equal(abi_registry_add_builtin(&r, &good_builtin, &reason),
                     FERRY_OK);
    assert_int_equal(abi_load_file(&r, fixture("good"), &host), FERRY_EEXISTS);
    assert_string_equal(r.refused[0].reason,
                        "component 'good' already loaded from built-in");
    abi_registry_free(&r);
}

static void test_print_refusals(void **state) {
    (void)state;
    abi_registry r;
    abi_registry_init(&r);
    abi_load_file(&r, fixture("no_entry"), &host);
    abi_load_file(&r, fixture("null_entry"), &host);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    abi_print_refusals(&r, f);
    fclose(f);
    char want[9000];
    snprintf(want, sizeof(want),
             "ferry: refused %s: no entry symbol 'ferry_component_entry'\n",
             fixture("no_entry"));
    size_t first = strlen(want);
    snprintf(want + first, sizeof(want) - first, "ferry: refused %s: %s\n",
             fixture("null_entry"), r.refused[1].reason);
    assert_string_equal(out, want);
    free(out);
    abi_registry_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_good),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_refuse_duplicate_name),
        cmocka_unit_test(test_load_missing_and_not_elf),
        cmocka_unit_test(test_load_relative_name),
        cmocka_unit_test(test_load_dir),
        cmocka_unit_test(test_load_dir_filters),
        cmocka_unit_test(test_exports_only_entry),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_describe_json),
        cmocka_unit_test(test_builtin),
        cmocka_unit_test(test_print_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
