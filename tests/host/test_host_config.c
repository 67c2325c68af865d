/*
 * host_config_load: the defaults, a complete file, paths relative to the
 * file, the FERRY_* variables over the file, every error a file or a
 * variable can cause (each with the exact "FILE: PATH: message" a user
 * sees), and the duration, size and listen parsers the flags share.
 */
#include "th.h"

#include "host/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const ferry_vars[] = {"FERRY_LISTEN",
                                         "FERRY_DB",
                                         "FERRY_COMPONENTS_DIR",
                                         "FERRY_DEPLOYMENTS",
                                         "FERRY_API_TOKEN",
                                         "FERRY_LOG_FORMAT",
                                         NULL};

static int clear_env(void **state) {
    (void)state;
    for (int i = 0; ferry_vars[i]; i++)
        unsetenv(ferry_vars[i]);
    return 0;
}

/* Writes text (single-quoted JSON) as DIR/ferry.json and loads it. */
typedef struct cfg_file {
    char *dir;
    char *file;
    host_config c;
    char *err;
    int rc;
} cfg_file;

static void load_text(cfg_file *f, const char *sq) {
    f->dir = th_tmpdir();
    f->file = th_write_json(f->dir, "ferry.json", sq);
    f->rc = host_config_load(&f->c, f->file, &f->err);
}

static void cfg_done(cfg_file *f) {
    host_config_free(&f->c);
    free(f->err);
    free(f->file);
    th_rmrf(f->dir);
}

static void test_defaults(void **state) {
    (void)state;
    host_config c;
    char *err = NULL;
    assert_int_equal(host_config_load(&c, NULL, &err), 0);
    assert_null(err);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.port, 8080);
    assert_null(c.tls_cert);
    assert_null(c.tls_key);
    assert_string_equal(c.components_dir, "build/components");
    assert_string_equal(c.db, "ferry.db");
    assert_string_equal(c.deployments_dir, "deployments");
    assert_int_equal(c.ntokens, 0);
    assert_int_equal(c.max_concurrency, 16);
    assert_int_equal(c.timeout_ms, 15 * 60 * 1000);
    assert_int_equal(c.cpu_seconds, 0);
    assert_int_equal(c.memory_bytes, 0);
    assert_int_equal(c.max_recorded, 65536);
    assert_int_equal(c.queue_in_memory, 10000);
    assert_int_equal(c.shutdown_grace_ms, 30000);
    assert_int_equal(c.log_json, 0);
    assert_null(c.port_file);
    host_config_free(&c);
    assert_null(c.listen_host);
}

static void test_full_file(void **state) {
    (void)state;
    cfg_file f = {0};
    load_text(&f,
              "{'listen': '[::1]:9443',"
              " 'tls': {'cert': 'tls/cert.pem', 'key': '/etc/key.pem'},"
              " 'components_dir': 'components',"
              " 'database': 'data/ferry.db',"
              " 'deployments': '/srv/deployments',"
              " 'api_tokens': ['one', 'two', 'one'],"
              " 'limits': {'concurrency': 4, 'timeout': '2h',"
              "            'cpu': '60s', 'memory': '512MiB',"
              "            'max_recorded': '64KiB', 'queue_in_memory': 500},"
              " 'shutdown_grace': 1500, 'log_format': 'json'}");
    if (f.rc)
        fail_msg("%s", f.err);
    host_config *c = &f.c;
    assert_string_equal(c->listen_host, "::1");
    assert_int_equal(c->port, 9443);
    /* Relative to the file's directory; absolute ones as given. */
    char *want = th_path(f.dir, "tls/cert.pem");
    assert_string_equal(c->tls_cert, want);
    free(want);
    assert_string_equal(c->tls_key, "/etc/key.pem");
    want = th_path(f.dir, "components");
    assert_string_equal(c->components_dir, want);
    free(want);
    want = th_path(f.dir, "data/ferry.db");
    assert_string_equal(c->db, want);
    free(want);
    assert_string_equal(c->deployments_dir, "/srv/deployments");
    assert_int_equal(c->ntokens, 2);
    assert_string_equal(c->api_tokens[0], "one");
    assert_string_equal(c->api_tokens[1], "two");
    assert_int_equal(c->max_concurrency, 4);
    assert_int_equal(c->timeout_ms, 2 * 3600 * 1000);
    assert_int_equal(c->cpu_seconds, 60);
    assert_int_equal(c->memory_bytes, 512u * 1024 * 1024);
    assert_int_equal(c->max_recorded, 65536);
    assert_int_equal(c->queue_in_memory, 500);
    assert_int_equal(c->shutdown_grace_ms, 1500);
    assert_int_equal(c->log_json, 1);
    cfg_done(&f);
}

/* A file that sets nothing keeps the defaults (paths not rebased). */
static void test_empty_file_keeps_defaults(void **state) {
    (void)state;
    cfg_file f = {0};
    load_text(&f, "{}");
    assert_int_equal(f.rc, 0);
    assert_string_equal(f.c.db, "ferry.db");
    assert_string_equal(f.c.deployments_dir, "deployments");
    assert_int_equal(f.c.port, 8080);
    cfg_done(&f);
}

/* A file named without a directory: its paths stay as written. */
static void test_file_in_working_directory(void **state) {
    (void)state;
    char *dir = th_tmpdir();
    free(th_write_json(dir, "ferry.json", "{'database': 'x.db'}"));
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    host_config c;
    char *err = NULL;
    int rc = host_config_load(&c, "ferry.json", &err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    assert_string_equal(c.db, "x.db");
    host_config_free(&c);
    th_rmrf(dir);
}

static void test_env_over_file(void **state) {
    (void)state;
    setenv("FERRY_LISTEN", "0.0.0.0:0", 1);
    setenv("FERRY_DB", "env.db", 1);
    setenv("FERRY_COMPONENTS_DIR", "env-components", 1);
    setenv("FERRY_DEPLOYMENTS", "env-deployments", 1);
    setenv("FERRY_API_TOKEN", "from-env", 1);
    setenv("FERRY_LOG_FORMAT", "json", 1);
    cfg_file f = {0};
    load_text(&f, "{'listen': '127.0.0.1:1234', 'database': 'file.db',"
                  " 'components_dir': 'c', 'deployments': 'd',"
                  " 'api_tokens': ['from-file'], 'log_format': 'text'}");
    if (f.rc)
        fail_msg("%s", f.err);
    assert_string_equal(f.c.listen_host, "0.0.0.0");
    assert_int_equal(f.c.port, 0);
    /* Variables are relative to the working directory, not the file. */
    assert_string_equal(f.c.db, "env.db");
    assert_string_equal(f.c.components_dir, "env-components");
    assert_string_equal(f.c.deployments_dir, "env-deployments");
    assert_int_equal(f.c.ntokens, 2);
    assert_string_equal(f.c.api_tokens[0], "from-file");
    assert_string_equal(f.c.api_tokens[1], "from-env");
    assert_int_equal(f.c.log_json, 1);
    cfg_done(&f);
    clear_env(NULL);
}

static void test_empty_env_ignored(void **state) {
    (void)state;
    setenv("FERRY_DB", "", 1);
    setenv("FERRY_LISTEN", "", 1);
    host_config c;
    char *err = NULL;
    assert_int_equal(host_config_load(&c, NULL, &err), 0);
    assert_string_equal(c.db, "ferry.db");
    assert_int_equal(c.port, 8080);
    host_config_free(&c);
    clear_env(NULL);
}

typedef struct env_case {
    const char *var, *value, *err;
} env_case;

static void test_env_errors(void **state) {
    (void)state;
    static const env_case cases[] = {
        {"FERRY_LISTEN", "localhost:8080",
         "FERRY_LISTEN: " HOST_LISTEN_EXPECTED},
        {"FERRY_LISTEN", "127.0.0.1:65536",
         "FERRY_LISTEN: the port in \"127.0.0.1:65536\" is outside 0..65535"},
        {"FERRY_LOG_FORMAT", "xml",
         "FERRY_LOG_FORMAT: expected \"text\" or \"json\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        setenv(cases[i].var, cases[i].value, 1);
        host_config c;
        char *err = NULL;
        assert_int_equal(host_config_load(&c, NULL, &err), -1);
        assert_non_null(err);
        assert_string_equal(err, cases[i].err);
        assert_null(c.listen_host); /* nothing left to free */
        free(err);
        unsetenv(cases[i].var);
    }
}

typedef struct err_case {
    const char *text; /* single-quoted JSON, or raw text if raw */
    const char *err;  /* what follows "FILE: " exactly */
    int raw;
} err_case;

#define DUR HOST_DURATION_EXPECTED
#define SIZE HOST_SIZE_EXPECTED
#define LISTEN HOST_LISTEN_EXPECTED
#define KNOWN                                                                  \
    "unknown field (known: listen, tls, components_dir, database, "            \
    "deployments, api_tokens, limits, shutdown_grace, log_format, "            \
    "public_url, "                                                             \
    "master_key_file, retention)"
#define NOPATH "expected a non-empty path string"

static const err_case error_cases[] = {
    /* the document */
    {"{'listen': }", "line 1 column 12: invalid JSON: unexpected token", 0},
    {"{\"a\": 1, \"a\": 2}",
     "line 1 column 12: invalid JSON: duplicate "
     "object key",
     1},
    {"[]", "$: expected a JSON object", 0},
    {"{'bogus': 1}", "bogus: " KNOWN, 0},
    /* listen */
    {"{'listen': 8080}", "listen: " LISTEN, 0},
    {"{'listen': 'localhost:8080'}", "listen: " LISTEN, 0},
    {"{'listen': '127.0.0.1'}", "listen: " LISTEN, 0},
    {"{'listen': '127.0.0.1:'}", "listen: " LISTEN, 0},
    {"{'listen': '::1:8080'}", "listen: " LISTEN, 0},
    {"{'listen': '[::1]8080'}", "listen: " LISTEN, 0},
    {"{'listen': '300.0.0.1:80'}", "listen: " LISTEN, 0},
    {"{'listen': '127.0.0.1:http'}", "listen: " LISTEN, 0},
    {"{'listen': '127.0.0.1:65536'}",
     "listen: the port in \"127.0.0.1:65536\" is outside 0..65535", 0},
    {"{'listen': '[::]:100000'}",
     "listen: the port in \"[::]:100000\" is outside 0..65535", 0},
    /* public_url, master_key_file */
    {"{'public_url': 'ferry.example.com'}",
     "public_url: expected the URL the host is reached at, such as "
     "\"https://ferry.example.com\"",
     0},
    {"{'master_key_file': 7}", "master_key_file: " NOPATH, 0},
    {"{'retention': 5}",
     "retention: expected an object {\"executions\": \"30d\", "
     "\"max_executions\": N, \"dead_letters\": \"90d\"}",
     0},
    {"{'retention': {'executions': 'forever'}}", "retention.executions: " DUR,
     0},
    {"{'retention': {'max_executions': -1}}",
     "retention.max_executions: expected a whole number, 0 for no limit", 0},
    /* tls */
    {"{'tls': 'cert.pem'}",
     "tls: expected an object {\"cert\": PATH, \"key\": PATH}", 0},
    {"{'tls': {'cert': 'c.pem'}}",
     "tls.key: missing: TLS needs both cert and "
     "key",
     0},
    {"{'tls': {'key': 'k.pem'}}",
     "tls.cert: missing: TLS needs both cert and "
     "key",
     0},
    {"{'tls': {'cert': 'c', 'key': 'k', 'ca': 'a'}}",
     "tls.ca: unknown field (known: cert, key)", 0},
    {"{'tls': {'cert': 1, 'key': 'k'}}", "tls.cert: " NOPATH, 0},
    /* paths */
    {"{'components_dir': ''}", "components_dir: " NOPATH, 0},
    {"{'database': ['a']}", "database: " NOPATH, 0},
    {"{'deployments': null}", "deployments: " NOPATH, 0},
    /* tokens */
    {"{'api_tokens': 'secret'}",
     "api_tokens: expected an array of token "
     "strings",
     0},
    {"{'api_tokens': ['a', 2]}",
     "api_tokens[1]: expected a non-empty token "
     "string",
     0},
    {"{'api_tokens': ['']}",
     "api_tokens[0]: expected a non-empty token "
     "string",
     0},
    /* limits */
    {"{'limits': 4}",
     "limits: expected an object with concurrency, timeout, "
     "cpu, memory, output, max_recorded, queue_in_memory",
     0},
    {"{'limits': {'workers': 4}}",
     "limits.workers: unknown field (known: "
     "concurrency, timeout, cpu, memory, "
     "output, max_recorded, queue_in_memory)",
     0},
    {"{'limits': {'queue_in_memory': 1}}",
     "limits.queue_in_memory: expected a whole number from 2 to 10000000", 0},
    {"{'limits': {'queue_in_memory': '500'}}",
     "limits.queue_in_memory: expected a whole number from 2 to 10000000", 0},
    {"{'limits': {'concurrency': 0}}",
     "limits.concurrency: expected a whole "
     "number from 1 to 100000",
     0},
    {"{'limits': {'concurrency': '16'}}",
     "limits.concurrency: expected a "
     "whole number from 1 to 100000",
     0},
    {"{'limits': {'concurrency': 2.5}}",
     "limits.concurrency: expected a "
     "whole number from 1 to 100000",
     0},
    {"{'limits': {'timeout': '15 minutes'}}", "limits.timeout: " DUR, 0},
    {"{'limits': {'timeout': -5}}", "limits.timeout: " DUR, 0},
    {"{'limits': {'timeout': 1.5}}", "limits.timeout: " DUR, 0},
    {"{'limits': {'timeout': '0s'}}",
     "limits.timeout: must be greater than "
     "zero: every execution has a deadline",
     0},
    {"{'limits': {'cpu': 'lots'}}", "limits.cpu: " DUR, 0},
    {"{'limits': {'cpu': '1500ms'}}",
     "limits.cpu: CPU time is limited in whole seconds: expected a duration "
     "like \"60s\" or \"2m\" (0 for no limit)",
     0},
    {"{'limits': {'memory': '512MB'}}", "limits.memory: " SIZE, 0},
    {"{'limits': {'memory': true}}", "limits.memory: " SIZE, 0},
    {"{'limits': {'max_recorded': '8B'}}",
     "limits.max_recorded: must be at "
     "least 16 bytes",
     0},
    {"{'limits': {'max_recorded': '1.5KiB'}}", "limits.max_recorded: " SIZE, 0},
    /* the rest */
    {"{'shutdown_grace': 'soon'}", "shutdown_grace: " DUR, 0},
    {"{'log_format': 'xml'}", "log_format: expected \"text\" or \"json\"", 0},
    {"{'log_format': 1}", "log_format: expected \"text\" or \"json\"", 0},
};

static void test_file_errors(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(*error_cases); i++) {
        const err_case *k = &error_cases[i];
        cfg_file f = {0};
        if (k->raw) {
            f.dir = th_tmpdir();
            f.file = th_write(f.dir, "ferry.json", k->text);
            f.rc = host_config_load(&f.c, f.file, &f.err);
        } else {
            load_text(&f, k->text);
        }
        char *want = NULL;
        assert_true(asprintf(&want, "%s: %s", f.file, k->err) >= 0);
        if (f.rc != -1 || !f.err || strncmp(f.err, want, strlen(want)))
            fail_msg("case %zu %s:\n  got  %s\n  want %s", i, k->text,
                     f.err ? f.err : "(no error)", want);
        /* JSON syntax errors carry jansson's text after ours. */
        if (strstr(k->err, "invalid JSON") == NULL)
            assert_string_equal(f.err, want);
        assert_null(f.c.listen_host);
        free(want);
        cfg_done(&f);
    }
}

static void test_missing_file(void **state) {
    (void)state;
    char *dir = th_tmpdir();
    char *file = th_path(dir, "nope.json");
    host_config c;
    char *err = NULL;
    assert_int_equal(host_config_load(&c, file, &err), -1);
    char *want = NULL;
    assert_true(asprintf(&want, "%s: cannot read: No such file or directory",
                         file) >= 0);
    assert_string_equal(err, want);
    free(want);
    free(err);
    free(file);
    th_rmrf(dir);
}

/* ---- the parsers ---- */

typedef struct num_case {
    const char *s;
    int rc;
    uint64_t v;
} num_case;

static void test_parse_duration(void **state) {
    (void)state;
    static const num_case cases[] = {
        {"0", 0, 0},
        {"1500", 0, 1500},
        {"500ms", 0, 500},
        {"30s", 0, 30000},
        {"15m", 0, 900000},
        {"2h", 0, 7200000},
        {"0s", 0, 0},
        {"18446744073709551615", 0, UINT64_MAX},
        {"", -1, 0},
        {"s", -1, 0},
        {"ms", -1, 0},
        {"1.5s", -1, 0},
        {"-1s", -1, 0},
        {" 1s", -1, 0},
        {"1s ", -1, 0},
        {"10 s", -1, 0},
        {"1d", 0, 86400000},
        {"1w", -1, 0},
        {"1S", -1, 0},
        {"1sec", -1, 0},
        {"1h30m", -1, 0},
        {"18446744073709551616", -1, 0},
        {"18446744073709551615h", -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        uint64_t v = 12345;
        int rc = flow_parse_duration_ms(cases[i].s, &v);
        if (rc != cases[i].rc)
            fail_msg("'%s': rc %d, want %d", cases[i].s, rc, cases[i].rc);
        assert_int_equal(v, cases[i].rc ? 12345 : cases[i].v);
    }
    uint64_t v;
    assert_int_equal(flow_parse_duration_ms(NULL, &v), -1);
}

static void test_parse_size(void **state) {
    (void)state;
    static const num_case cases[] = {
        {"0", 0, 0},
        {"65536", 0, 65536},
        {"100B", 0, 100},
        {"64KiB", 0, 65536},
        {"512MiB", 0, 536870912},
        {"1GiB", 0, 1073741824},
        {"16GiB", 0, 17179869184u},
        {"", -1, 0},
        {"KiB", -1, 0},
        {"64KB", -1, 0},
        {"64kib", -1, 0},
        {"64K", -1, 0},
        {"1.5MiB", -1, 0},
        {"-1", -1, 0},
        {"1 GiB", -1, 0},
        {"1TiB", -1, 0},
        {"18446744073709551615KiB", -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        uint64_t v = 12345;
        int rc = flow_parse_size(cases[i].s, &v);
        if (rc != cases[i].rc)
            fail_msg("'%s': rc %d, want %d", cases[i].s, rc, cases[i].rc);
        assert_int_equal(v, cases[i].rc ? 12345 : cases[i].v);
    }
}

typedef struct listen_case {
    const char *s;
    int rc;
    const char *host;
    int port;
} listen_case;

static void test_parse_listen(void **state) {
    (void)state;
    static const listen_case cases[] = {
        {"127.0.0.1:8080", 0, "127.0.0.1", 8080},
        {"0.0.0.0:0", 0, "0.0.0.0", 0},
        {"10.1.2.3:65535", 0, "10.1.2.3", 65535},
        {"[::1]:9000", 0, "::1", 9000},
        {"[::]:80", 0, "::", 80},
        {"[2001:db8::1]:443", 0, "2001:db8::1", 443},
        {"127.0.0.1:65536", -2, NULL, 0},
        {"[::1]:70000", -2, NULL, 0},
        {"127.0.0.1:99999999999999999999999", -2, NULL, 0},
        {"", -1, NULL, 0},
        {"8080", -1, NULL, 0},
        {":8080", -1, NULL, 0},
        {"localhost:80", -1, NULL, 0},
        {"127.0.0.1", -1, NULL, 0},
        {"127.0.0.1:", -1, NULL, 0},
        {"127.0.0.1:80x", -1, NULL, 0},
        {"127.0.0.1:-1", -1, NULL, 0},
        {"127.0.0.1: 80", -1, NULL, 0},
        {"256.0.0.1:80", -1, NULL, 0},
        {"::1:8080", -1, NULL, 0},
        {"[::1]8080", -1, NULL, 0},
        {"[::1]:", -1, NULL, 0},
        {"[::1:80", -1, NULL, 0},
        {"[127.0.0.1]:80", -1, NULL, 0},
        {"[fe80::1%eth0]:80", -1, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char *host = NULL;
        int port = -7;
        int rc = host_parse_listen(cases[i].s, &host, &port);
        if (rc != cases[i].rc)
            fail_msg("'%s': rc %d, want %d", cases[i].s, rc, cases[i].rc);
        if (rc) {
            assert_null(host);
            assert_int_equal(port, -7);
            continue;
        }
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, cases[i].port);
        free(host);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_full_file, clear_env),
        cmocka_unit_test_setup(test_empty_file_keeps_defaults, clear_env),
        cmocka_unit_test_setup(test_file_in_working_directory, clear_env),
        cmocka_unit_test_setup(test_env_over_file, clear_env),
        cmocka_unit_test_setup(test_empty_env_ignored, clear_env),
        cmocka_unit_test_setup(test_env_errors, clear_env),
        cmocka_unit_test_setup(test_file_errors, clear_env),
        cmocka_unit_test_setup(test_missing_file, clear_env),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
