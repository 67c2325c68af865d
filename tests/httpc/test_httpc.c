/*
 * The HTTP client through the real engine: flows whose steps call
 * http.request (or hx.call, which hands a request object straight to
 * api->http_request) against server.py, a loopback server started once for
 * the whole run. Each test loads the core component, http.so as built, and
 * the hx and old fixtures, runs a flow with a SQLite store in a temporary
 * directory, and looks at what a user would: the output, the recorded step
 * (error code, message, retryable) and the log lines.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include <cmocka.h>

#include "flow/flow.h"

#ifndef HTTPC_COMPONENT
#error "HTTPC_COMPONENT must name http.so"
#endif

/* ---- the server ---- */

static struct {
    pid_t pid;
    char dir[PATH_MAX];
    char http[64];  /* http://127.0.0.1:PORT */
    char http2[64]; /* another origin */
    char https[64];
    char ca[PATH_MAX];
} srv;

static int rm_cb(const char *path, const struct stat *sb, int flag,
                 struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir) {
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int server_start(void **state) {
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(srv.dir, sizeof(srv.dir), "%s/ferry-httpc-srv-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(srv.dir))
        return -1;
    int p[2];
    if (pipe(p))
        return -1;
    srv.pid = fork();
    if (srv.pid < 0)
        return -1;
    if (srv.pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execlp("python3", "python3", HTTPC_SERVER, srv.dir, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[4096];
    size_t n = 0;
    while (n < sizeof(line) - 1 && !memchr(line, '\n', n)) {
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        if (poll(&pf, 1, 30000) <= 0)
            break;
        ssize_t r = read(p[0], line + n, sizeof(line) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(p[0]);
    line[n] = 0;
    json_t *v = json_loads(line, 0, NULL);
    if (!v) {
        fprintf(stderr, "the test server did not start: '%s'\n", line);
        return -1;
    }
    snprintf(srv.http, sizeof(srv.http), "http://127.0.0.1:%d",
             (int)json_integer_value(json_object_get(v, "http")));
    snprintf(srv.http2, sizeof(srv.http2), "http://127.0.0.1:%d",
             (int)json_integer_value(json_object_get(v, "http2")));
    snprintf(srv.https, sizeof(srv.https), "https://127.0.0.1:%d",
             (int)json_integer_value(json_object_get(v, "https")));
    snprintf(srv.ca, sizeof(srv.ca), "%s",
             json_string_value(json_object_get(v, "ca")));
    json_decref(v);
    return 0;
}

static int server_stop(void **state) {
    (void)state;
    if (srv.pid > 0) {
        kill(srv.pid, SIGTERM);
        waitpid(srv.pid, NULL, 0);
    }
    rm_rf(srv.dir);
    return 0;
}

/* ---- a fixture per test ---- */

typedef struct ht {
    char dir[PATH_MAX];
    abi_registry reg;
    store *st;
    flow_integration *ig;
    flow_instance *in;
    flow_diags d;
    flow_result res;
    flow_exec_opts opts;
    json_t *logs; /* every log line's message */
    json_t *rec;  /* the recorded execution */
    volatile int cancel;
    /* the fake token service */
    const char *token[2]; /* [0] usually, [1] on force_refresh */
    int token_rc;
    json_t *token_calls;
} ht;

static void on_log(void *ud, const char *path, int level, const char *msg) {
    (void)path;
    (void)level;
    ht *t = ud;
    json_array_append_new(t->logs, json_string(msg));
}

static int fake_token(void *ud, const char *instance, const char *connection,
                      const json_t *conn, int force_refresh,
                      char **access_token, char **err) {
    ht *t = ud;
    json_array_append_new(
        t->token_calls,
        json_pack("{s:s, s:s, s:s?, s:b}", "instance", instance, "connection",
                  connection, "type",
                  json_string_value(json_object_get(conn, "type")), "force",
                  force_refresh));
    if (t->token_rc) {
        *err = strdup("the token endpoint said invalid_grant");
        return t->token_rc;
    }
    *access_token = strdup(t->token[force_refresh ? 1 : 0]);
    return 0;
}

static void load(abi_registry *r, const char *path) {
    if (abi_load_file(r, path, flow_host_api()))
        fail_msg("refused %s: %s", path,
                 r->nrefused ? r->refused[r->nrefused - 1].reason : "?");
}

/* A built-in component that declares FERRY_COMPONENT_NO_HTTP and calls
 * api->http_request anyway: nohttp.call hands its input's request over. */
static int nohttp_call(ferry_ctx *ctx, const json_t *input) {
    const ferry_api *api = flow_host_api();
    json_t *resp = NULL;
    int rc = api->http_request(ctx, json_object_get(input, "request"), &resp);
    if (rc)
        return rc;
    return api->set_output(ctx, resp);
}

static const ferry_input nohttp_inputs[] = {
    {"request", "object", 1, NULL, "for api->http_request"}, {0}};

static const ferry_action nohttp_actions[] = {{.id = "nohttp.call",
                                               .inputs = nohttp_inputs,
                                               .output = "the response",
                                               .run = nohttp_call},
                                              {0}};

static const ferry_component nohttp_desc = {
    FERRY_COMPONENT_HEADER, .flags = FERRY_COMPONENT_NO_HTTP, .name = "nohttp",
    .version = "0.1.0",     .actions = nohttp_actions,
};

static int setup(void **state) {
    ht *t = calloc(1, sizeof(*t));
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof(t->dir), "%s/ferry-httpc-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(t->dir));
    abi_registry_init(&t->reg);
    char *reason = NULL;
    assert_int_equal(
        abi_registry_add_builtin(&t->reg, flow_core_component(), &reason), 0);
    assert_int_equal(abi_registry_add_builtin(&t->reg, &nohttp_desc, &reason),
                     0);
    load(&t->reg, HTTPC_COMPONENT);
    load(&t->reg, HTTPC_FIXTURE_DIR "/hx.so");
    load(&t->reg, HTTPC_FIXTURE_DIR "/old.so");
    char db[PATH_MAX + 16];
    snprintf(db, sizeof(db), "%s/ferry.db", t->dir);
    char *err = NULL;
    t->st = store_open_sqlite(db, &err);
    if (!t->st)
        fail_msg("store: %s", err);
    t->logs = json_array();
    t->token_calls = json_array();
    t->opts.st = t->st;
    t->opts.tmpdir = t->dir;
    t->opts.on_log = on_log;
    t->opts.ud = t;
    t->opts.cancel = &t->cancel;
    *state = t;
    return 0;
}

static int teardown(void **state) {
    ht *t = *state;
    flow_result_clear(&t->res);
    flow_instance_free(t->in);
    flow_integration_free(t->ig);
    flow_diags_free(&t->d);
    store_close(t->st);
    abi_registry_free(&t->reg);
    json_decref(t->logs);
    json_decref(t->rec);
    json_decref(t->token_calls);
    rm_rf(t->dir);
    free(t);
    return 0;
}

/* ---- building and running flows ---- */

/* printf, then every ' becomes ", then parsed as JSON (new ref). */
static json_t *jq(const char *fmt, ...) FERRY_PRINTF(1, 2);
static json_t *jq(const char *fmt, ...) {
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    assert_true(vasprintf(&text, fmt, ap) >= 0);
    va_end(ap);
    for (char *p = text; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad test JSON (%s): %s", e.text, text);
    free(text);
    return v;
}

static json_t *step(const char *name, const char *action, const char *conn,
                    json_t *input) {
    json_t *s = json_pack("{s:s, s:s, s:o}", "name", name, "action", action,
                          "input", input);
    if (conn)
        json_object_set_new(s, "connection", json_string(conn));
    return s;
}

static void fail_diags(ht *t, const char *what) {
    for (size_t i = 0; i < t->d.n; i++)
        print_error("%s: %s: %s\n", t->d.items[i].file, t->d.items[i].path,
                    t->d.items[i].message);
    fail_msg("%s did not load", what);
}

/* Runs a flow of steps (stolen); with ctype, a connection "c" of that type
 * with fields (stolen). Returns the execution's status. */
static const char *run(ht *t, json_t *steps, const char *ctype,
                       json_t *fields) {
    flow_result_clear(&t->res);
    flow_instance_free(t->in);
    flow_integration_free(t->ig);
    json_decref(t->rec);
    t->rec = NULL;
    t->in = NULL;
    json_array_clear(t->logs);
    json_t *doc =
        json_pack("{s:s, s:[{s:s, s:{s:s}, s:o}]}", "name", "t", "flows",
                  "name", "f", "trigger", "type", "manual", "steps", steps);
    if (ctype)
        json_object_set_new(doc, "connections",
                            json_pack("{s:{s:s}}", "c", "type", ctype));
    t->ig = flow_integration_from_json(doc, "integration", &t->reg, &t->d);
    json_decref(doc);
    if (!t->ig || t->d.n)
        fail_diags(t, "the integration");
    json_t *inst = NULL;
    if (ctype)
        inst = json_pack("{s:s, s:s, s:{s:{s:o}}}", "integration", "t", "name",
                         "i", "connections", "c", "fields",
                         fields ? fields : json_object());
    t->in = flow_instance_from_json(inst, "instance", t->ig, &t->reg, &t->d);
    json_decref(inst);
    if (!t->in || t->d.n)
        fail_diags(t, "the instance");
    int rc = flow_execute(t->ig, t->in, flow_find(t->ig, NULL), NULL, &t->opts,
                          &t->res);
    assert_int_equal(rc, 0);
    assert_int_equal(t->st->vt->exec_get(t->st, t->res.id, &t->rec), 0);
    return t->res.status;
}

/* One http.request step with this input (stolen). */
static const char *request(ht *t, json_t *input) {
    return run(t, json_pack("[o]", step("r", "http.request", NULL, input)),
               NULL, NULL);
}

/* One http.request step using connection "c" of type ctype. */
static const char *request_with(ht *t, json_t *input, const char *ctype,
                                json_t *fields) {
    return run(t, json_pack("[o]", step("r", "http.request", "c", input)),
               ctype, fields);
}

static void expect_ok(ht *t) {
    if (strcmp(t->res.status, "succeeded"))
        fail_msg("execution %s: %s: %s", t->res.status,
                 ferry_err_name(t->res.error_code),
                 t->res.error_message ? t->res.error_message : "");
}

/* The recorded step named name. */
static json_t *rec_step(ht *t, const char *name) {
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(t->rec, "steps"), i, s) {
        if (!strcmp(json_string_value(json_object_get(s, "name")), name))
            return s;
    }
    fail_msg("no recorded step %s", name);
    return NULL;
}

/* Fails unless the execution failed at step "r" with code, retryable as
 * given, and a message containing sub. */
static void expect_fail(ht *t, int code, int retryable, const char *sub) {
    if (!strcmp(t->res.status, "succeeded"))
        fail_msg("expected a failure (%s), the execution succeeded",
                 ferry_err_name(code));
    if (t->res.error_code != code)
        fail_msg("expected %s, got %s: %s", ferry_err_name(code),
                 ferry_err_name(t->res.error_code), t->res.error_message);
    json_t *s = rec_step(t, "r");
    if (json_is_true(json_object_get(s, "retryable")) != retryable)
        fail_msg("expected retryable %d: %s", retryable, t->res.error_message);
    if (sub && !strstr(t->res.error_message, sub))
        fail_msg("'%s' does not contain '%s'", t->res.error_message, sub);
}

/* Fails if any message or log line contains secret. */
static void expect_hidden(ht *t, const char *secret) {
    if (t->res.error_message && strstr(t->res.error_message, secret))
        fail_msg("the error message shows a secret: %s", t->res.error_message);
    size_t i;
    json_t *l;
    json_array_foreach(t->logs, i, l) {
        if (strstr(json_string_value(l), secret))
            fail_msg("a log line shows a secret: %s", json_string_value(l));
    }
    char *all = json_dumps(json_object_get(t->rec, "logs"), 0);
    if (all && strstr(all, secret))
        fail_msg("the recorded logs show a secret: %s", all);
    free(all);
}

static int logged(ht *t, const char *sub) {
    size_t i;
    json_t *l;
    json_array_foreach(t->logs, i, l) {
        if (strstr(json_string_value(l), sub))
            return 1;
    }
    return 0;
}

static json_t *out(ht *t) {
    return t->res.output;
}

static json_t *body(ht *t) {
    return json_object_get(t->res.output, "body");
}

/* In an /echo body: the first value of request header name, or NULL. */
static const char *sent_header(ht *t, const char *name) {
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(body(t), "headers"), i, h) {
        if (!strcasecmp(json_string_value(json_array_get(h, 0)), name))
            return json_string_value(json_array_get(h, 1));
    }
    return NULL;
}

static int sent_header_count(ht *t, const char *name) {
    size_t i;
    json_t *h;
    int n = 0;
    json_array_foreach(json_object_get(body(t), "headers"), i, h) {
        n += !strcasecmp(json_string_value(json_array_get(h, 0)), name);
    }
    return n;
}

static const char *sent_body(ht *t) {
    return json_string_value(json_object_get(body(t), "body"));
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int count_of(ht *t, const char *key) {
    char url[256];
    snprintf(url, sizeof(url), "%s/count/%s", srv.http, key);
    assert_string_equal(request(t, json_pack("{s:s}", "url", url)),
                        "succeeded");
    return (int)json_integer_value(json_object_get(body(t), "count"));
}

/* ---- requests ---- */

static void test_query_and_headers(void **state) {
    ht *t = *state;
    request(t, jq("{'url': '%s/echo/x?z=1#frag', "
                  "'query': {'a': 'x y', 'b': [1, 2], 'c': true, 'd': null, "
                  "'\\u00fc': '&=/', 'r': 1.5}, "
                  "'headers': {'X-One': 'one', 'X-Many': ['a', 'b'], "
                  "'X-Num': 7, 'Accept': null, 'X-Empty': ''}}",
                  srv.http));
    expect_ok(t);
    assert_int_equal(json_integer_value(json_object_get(out(t), "status")),
                     200);
    assert_string_equal(json_string_value(json_object_get(body(t), "query")),
                        "z=1&a=x%20y&b=1&b=2&c=true&%C3%BC=%26%3D%2F&r=1.5");
    assert_string_equal(json_string_value(json_object_get(body(t), "method")),
                        "GET");
    assert_string_equal(sent_header(t, "X-One"), "one");
    assert_int_equal(sent_header_count(t, "X-Many"), 2);
    assert_string_equal(sent_header(t, "X-Num"), "7");
    assert_string_equal(sent_header(t, "X-Empty"), "");
    assert_null(sent_header(t, "Accept"));
    assert_null(sent_header(t, "Expect"));
    assert_true(!strncmp(sent_header(t, "User-Agent"), "ferry/", 6));
    /* The response: lower-case names, the final URL without the
     * fragment, timings. */
    json_t *h = json_object_get(out(t), "headers");
    assert_string_equal(json_string_value(json_object_get(h, "content-type")),
                        "application/json");
    assert_non_null(strstr(json_string_value(json_object_get(out(t), "url")),
                           "/echo/x?z=1&a=x%20y"));
    assert_null(strchr(json_string_value(json_object_get(out(t), "url")), '#'));
    assert_true(json_is_number(
        json_object_get(json_object_get(out(t), "timings"), "total_ms")));
    assert_int_equal(json_integer_value(json_object_get(out(t), "redirects")),
                     0);
}

static void test_bad_requests(void **state) {
    ht *t = *state;
    request(t, jq("{'url': 'ftp://127.0.0.1/x'}"));
    expect_fail(t, FERRY_EINVAL, 0, "'url' must be an http:// or https://");
    request(t, jq("{'url': '%s/echo', 'json': 1, 'form': {'a': 1}}", srv.http));
    expect_fail(t, FERRY_EINVAL, 0, "not both 'json' and 'form'");
    request(t, jq("{'url': '%s/echo', 'headers': {'X-A': 'a\\r\\nX-B: b'}}",
                  srv.http));
    expect_fail(t, FERRY_EINVAL, 0, "without line breaks");
    request(t,
            jq("{'url': '%s/echo', 'headers': {'Bad Name': 'a'}}", srv.http));
    expect_fail(t, FERRY_EINVAL, 0, "not a valid token");
    request(t, jq("{'url': '%s/echo', 'timeout': 'soon'}", srv.http));
    expect_fail(t, FERRY_EINVAL, 0, "'timeout' must be a duration");
    request(t, jq("{'url': '%s/echo', 'query': {'a': {'b': 1}}}", srv.http));
    expect_fail(t, FERRY_EINVAL, 0, "query parameter 'a'");
    request(t, jq("{'url': '%s/echo', 'as': 'xml'}", srv.http));
    expect_fail(t, FERRY_EINVAL, 0, "'as' must be");
    /* The helper refuses fields it does not know (a caller's typo). */
    run(t,
        jq("[{'name': 'r', 'action': 'hx.call', 'input': {'request': "
           "{'url': '%s/echo', 'methd': 'POST'}}}]",
           srv.http),
        NULL, NULL);
    expect_fail(t, FERRY_EINVAL, 0, "unknown field 'methd'");
}

static void test_json_body(void **state) {
    ht *t = *state;
    request(t, jq("{'method': 'post', 'url': '%s/echo', "
                  "'json': {'a': [1, 2], 's': 'x'}}",
                  srv.http));
    expect_ok(t);
    assert_string_equal(json_string_value(json_object_get(body(t), "method")),
                        "POST");
    assert_string_equal(sent_body(t), "{\"a\":[1,2],\"s\":\"x\"}");
    assert_string_equal(sent_header(t, "Content-Type"), "application/json");
    /* A Content-Type of the caller's wins; PATCH carries the body too. */
    request(t,
            jq("{'method': 'PATCH', 'url': '%s/echo', 'json': [1], "
               "'headers': {'content-type': 'application/merge-patch+json'}}",
               srv.http));
    expect_ok(t);
    assert_string_equal(json_string_value(json_object_get(body(t), "method")),
                        "PATCH");
    assert_string_equal(sent_body(t), "[1]");
    assert_string_equal(sent_header(t, "Content-Type"),
                        "application/merge-patch+json");
    assert_int_equal(sent_header_count(t, "Content-Type"), 1);
    /* A POST without a body sends Content-Length: 0 and no type. */
    request(t, jq("{'method': 'POST', 'url': '%s/echo'}", srv.http));
    expect_ok(t);
    assert_string_equal(sent_header(t, "Content-Length"), "0");
    assert_null(sent_header(t, "Content-Type"));
}

static void test_form_body(void **state) {
    ht *t = *state;
    request(t, jq("{'method': 'POST', 'url': '%s/echo', "
                  "'form': {'a b': 'c&d=e', 'n': 5, 'l': ['x', 'y'], "
                  "'skip': null, 'u': '\\u00e9'}}",
                  srv.http));
    expect_ok(t);
    assert_string_equal(sent_body(t), "a+b=c%26d%3De&n=5&l=x&l=y&u=%C3%A9");
    assert_string_equal(sent_header(t, "Content-Type"),
                        "application/x-www-form-urlencoded");
}

static void test_text_and_xml_bodies(void **state) {
    ht *t = *state;
    request(t, jq("{'method': 'PUT', 'url': '%s/echo', "
                  "'xml': '<a n=\\'1\\'>\\u00e9</a>'}",
                  srv.http));
    expect_ok(t);
    assert_string_equal(json_string_value(json_object_get(body(t), "method")),
                        "PUT");
    assert_string_equal(sent_body(t), "<a n=\"1\">\xc3\xa9</a>");
    assert_string_equal(sent_header(t, "Content-Type"),
                        "application/xml; charset=utf-8");
    request(t, jq("{'method': 'POST', 'url': '%s/echo', 'text': 'line 1\\n'}",
                  srv.http));
    expect_ok(t);
    assert_string_equal(sent_body(t), "line 1\n");
    assert_string_equal(sent_header(t, "Content-Type"),
                        "text/plain; charset=utf-8");
}

static void test_multipart_body(void **state) {
    ht *t = *state;
    run(t,
        jq("[{'name': 'b', 'action': 'hx.blob', 'input': {'text': "
           "'id,name\\n1,a\\n', 'content_type': 'text/csv'}},"
           " {'name': 'r', 'action': 'http.request', 'input': {"
           "'method': 'POST', 'url': '%s/echo', 'multipart': ["
           "{'name': 'field', 'value': 'v1'},"
           "{'name': 'obj', 'value': {'k': 1}},"
           "{'name': 'file', 'blob': '{{ steps.b.output }}', "
           "'filename': 'a.csv'},"
           "{'name': 'typed', 'value': 'x', 'content_type': 'text/x-t', "
           "'filename': 'x.txt'}]}}]",
           srv.http),
        NULL, NULL);
    expect_ok(t);
    const char *ct = sent_header(t, "Content-Type");
    assert_true(!strncmp(ct, "multipart/form-data; boundary=", 30));
    const char *b = sent_body(t);
    assert_non_null(strstr(
        b, "Content-Disposition: form-data; name=\"field\"\r\n\r\nv1\r\n"));
    assert_non_null(strstr(b, "name=\"obj\"\r\nContent-Type: "
                              "application/json\r\n\r\n{\"k\":1}\r\n"));
    assert_non_null(strstr(b, "name=\"file\"; filename=\"a.csv\"\r\n"
                              "Content-Type: text/csv\r\n\r\nid,name\n1,a\n"
                              "\r\n"));
    assert_non_null(strstr(b, "name=\"typed\"; filename=\"x.txt\"\r\n"
                              "Content-Type: text/x-t\r\n\r\nx\r\n"));
    /* A part needs a value or a blob, not both. */
    request(t, jq("{'method': 'POST', 'url': '%s/echo', 'multipart': "
                  "[{'name': 'x'}]}",
                  srv.http));
    expect_fail(t, FERRY_EINVAL, 0, "exactly one of \"value\" and \"blob\"");
}

static void test_blob_body(void **state) {
    ht *t = *state;
    /* 3 MB, streamed from the blob with its size as Content-Length. */
    run(t,
        jq("[{'name': 'b', 'action': 'hx.blob', 'input': {'text': "
           "'0123456789abcdef', 'repeat': 196608, 'content_type': "
           "'application/x-thing'}},"
           " {'name': 'd', 'action': 'hx.digest', 'input': {'blob': "
           "'{{ steps.b.output }}'}},"
           " {'name': 'r', 'action': 'http.request', 'input': {"
           "'method': 'PUT', 'url': '%s/echo', 'blob': "
           "'{{ steps.b.output }}'}},"
           " {'name': 'both', 'action': 'core.set', 'input': {'value': "
           "{'digest': '{{ steps.d.output }}', 'echo': "
           "'{{ steps.r.output.body }}'}}}]",
           srv.http),
        NULL, NULL);
    expect_ok(t);
    json_t *v = out(t);
    json_t *echo = json_object_get(v, "echo");
    json_t *dg = json_object_get(v, "digest");
    assert_int_equal(json_integer_value(json_object_get(echo, "body_size")),
                     3145728);
    assert_string_equal(json_string_value(json_object_get(echo, "method")),
                        "PUT");
    assert_string_equal(json_string_value(json_object_get(echo, "body_fnv")),
                        json_string_value(json_object_get(dg, "fnv")));
    size_t i;
    json_t *h;
    int found = 0;
    json_array_foreach(json_object_get(echo, "headers"), i, h) {
        const char *k = json_string_value(json_array_get(h, 0));
        const char *val = json_string_value(json_array_get(h, 1));
        if (!strcasecmp(k, "Content-Length"))
            found += !strcmp(val, "3145728");
        if (!strcasecmp(k, "Content-Type"))
            found += !strcmp(val, "application/x-thing");
    }
    assert_int_equal(found, 2);
    /* A reference to no blob of the execution is refused. */
    request(t, jq("{'method': 'PUT', 'url': '%s/echo', 'blob': "
                  "{'$blob': 'nope', 'size': 1}}",
                  srv.http));
    expect_fail(t, FERRY_EINVAL, 0, "names no blob");
}

/* ---- responses ---- */

static void test_response_bodies(void **state) {
    ht *t = *state;
    request(t, jq("{'url': '%s/content?type=application/problem%%2Bjson&"
                  "body=%%7B%%22x%%22%%3A1%%7D'}",
                  srv.http));
    expect_ok(t);
    assert_int_equal(json_integer_value(json_object_get(body(t), "x")), 1);

    request(t, jq("{'url': '%s/content?type=text/html&body=%%3Cb%%3Ehi'}",
                  srv.http));
    expect_ok(t);
    assert_string_equal(json_string_value(body(t)), "<b>hi");

    request(t, jq("{'url': '%s/content?type=application/soap%%2Bxml&"
                  "body=%%3Cx/%%3E'}",
                  srv.http));
    expect_ok(t);
    assert_string_equal(json_string_value(body(t)), "<x/>");

    /* Latin-1 declared: converted to UTF-8. */
    request(t, jq("{'url': '%s/content?type=text/plain;%%20charset=iso-8859-1&"
                  "b64=Y2Fm6Q=='}",
                  srv.http));
    expect_ok(t);
    assert_string_equal(json_string_value(body(t)), "caf\xc3\xa9");

    /* Binary: a blob with the response's type. */
    request(t, jq("{'url': '%s/content?type=image/png&b64=iVBORw0KGgo='}",
                  srv.http));
    expect_ok(t);
    assert_non_null(json_object_get(body(t), "$blob"));
    assert_int_equal(json_integer_value(json_object_get(body(t), "size")), 8);
    assert_string_equal(
        json_string_value(json_object_get(body(t), "content_type")),
        "image/png");
    assert_int_equal(json_integer_value(json_object_get(out(t), "size")), 8);

    /* Declared JSON that is not: text, with a warning. */
    request(t, jq("{'url': '%s/content?type=application/json&body=oops'}",
                  srv.http));
    expect_ok(t);
    assert_string_equal(json_string_value(body(t)), "oops");
    assert_true(logged(t, "is not JSON"));

    /* as: json insists. */
    request(t, jq("{'url': '%s/content?type=text/plain&body=oops', "
                  "'as': 'json'}",
                  srv.http));
    expect_fail(t, FERRY_EPARSE, 0, "not JSON");
    request(t, jq("{'url': '%s/content?type=text/plain&body=%%5B1%%5D', "
                  "'as': 'json'}",
                  srv.http));
    expect_ok(t);
    assert_true(json_is_array(body(t)));
    /* as: text and as: blob whatever the type. */
    request(t, jq("{'url': '%s/content?type=application/json&body=%%5B1%%5D', "
                  "'as': 'text'}",
                  srv.http));
    expect_ok(t);
    assert_string_equal(json_string_value(body(t)), "[1]");
    request(t, jq("{'url': '%s/content?type=application/json&body=%%5B1%%5D', "
                  "'as': 'blob'}",
                  srv.http));
    expect_ok(t);
    assert_int_equal(json_integer_value(json_object_get(body(t), "size")), 3);
    /* Empty, HEAD: null. */
    request(t, jq("{'url': '%s/content?type=application/json'}", srv.http));
    expect_ok(t);
    assert_true(json_is_null(body(t)));
    request(t, jq("{'method': 'HEAD', 'url': '%s/echo'}", srv.http));
    expect_ok(t);
    assert_true(json_is_null(body(t)));
    assert_int_equal(json_integer_value(json_object_get(out(t), "status")),
                     200);
    /* Compressed: decoded. */
    request(t, jq("{'url': '%s/gzip'}", srv.http));
    expect_ok(t);
    assert_true(json_is_true(json_object_get(body(t), "zipped")));
    /* A small max_inline sends even JSON to a blob. */
    request(t, jq("{'url': '%s/echo', 'max_inline': 16}", srv.http));
    expect_ok(t);
    assert_non_null(json_object_get(body(t), "$blob"));
    request(t, jq("{'url': '%s/echo', 'max_inline': '1KiB'}", srv.http));
    expect_ok(t);
    assert_non_null(json_object_get(body(t), "method"));
}

static void test_response_headers(void **state) {
    ht *t = *state;
    request(t, jq("{'url': '%s/headers'}", srv.http));
    expect_ok(t);
    json_t *h = json_object_get(out(t), "headers");
    json_t *want = jq("['a=1; Path=/', 'b=2']");
    assert_true(json_equal(json_object_get(h, "set-cookie"), want));
    json_decref(want);
    assert_string_equal(json_string_value(json_object_get(h, "x-multi")),
                        "one, two");
    assert_string_equal(json_string_value(json_object_get(h, "x-mixed-case")),
                        "Value");
    assert_null(json_object_get(h, "X-Mixed-Case"));
}

/* ---- redirects ---- */

static void test_redirects(void **state) {
    ht *t = *state;
    request(t, jq("{'url': '%s/chain/3'}", srv.http));
    expect_ok(t);
    assert_int_equal(json_integer_value(json_object_get(out(t), "redirects")),
                     3);
    assert_string_equal(json_string_value(json_object_get(body(t), "path")),
                        "/chain/0");
    char want[128];
    snprintf(want, sizeof(want), "%s/chain/0", srv.http);
    assert_string_equal(json_string_value(json_object_get(out(t), "url")),
                        want);

    request(t, jq("{'url': '%s/chain/3', 'max_redirects': 2}", srv.http));
    expect_fail(t, FERRY_EPROTO, 0, "stopped after 2 redirects");

    /* Not followed: the 3xx is the output. */
    request(t,
            jq("{'url': '%s/chain/3', 'follow_redirects': false}", srv.http));
    expect_ok(t);
    assert_int_equal(json_integer_value(json_object_get(out(t), "status")),
                     302);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(out(t), "headers"), "location")),
                        "/chain/2");

    /* 303 after a POST: a GET without the body. */
    request(t, jq("{'method': 'POST', 'url': '%s/redirect/303?to=/echo', "
                  "'json': {'a': 1}}",
                  srv.http));
    expect_ok(t);
    assert_string_equal(json_string_value(json_object_get(body(t), "method")),
                        "GET");
    assert_int_equal(json_integer_value(json_object_get(body(t), "body_size")),
                     0);
    assert_null(sent_header(t, "Content-Type"));
    /* 307 and 308: the same method and body again. */
    request(t, jq("{'method': 'POST', 'url': '%s/redirect/307?to=/echo', "
                  "'json': {'a': 1}}",
                  srv.http));
    expect_ok(t);
    assert_string_equal(json_string_value(json_object_get(body(t), "method")),
                        "POST");
    assert_string_equal(sent_body(t), "{\"a\":1}");
    /* A blob body is streamed again from its start. */
    run(t,
        jq("[{'name': 'b', 'action': 'hx.blob', 'input': {'text': 'abc', "
           "'repeat': 1000}},"
           " {'name': 'r', 'action': 'http.request', 'input': {"
           "'method': 'PUT', 'url': '%s/redirect/308?to=/echo', 'blob': "
           "'{{ steps.b.output }}'}}]",
           srv.http),
        NULL, NULL);
    expect_ok(t);
    assert_string_equal(json_string_value(json_object_get(body(t), "method")),
                        "PUT");
    assert_int_equal(json_integer_value(json_object_get(body(t), "body_size")),
                     3000);
}

static void test_redirect_drops_credentials(void **state) {
    ht *t = *state;
    /* Same origin: the credentials follow. */
    request_with(t,
                 jq("{'url': '%s/redirect/302?to=/echo', 'headers': "
                    "{'Cookie': 'c=1'}}",
                    srv.http),
                 "http.basic", jq("{'username': 'u', 'password': 'p'}"));
    expect_ok(t);
    assert_string_equal(sent_header(t, "Authorization"), "Basic dTpw");
    assert_string_equal(sent_header(t, "Cookie"), "c=1");
    /* Another origin: none of them. */
    request_with(t,
                 jq("{'url': '%s/redirect/302?to=%s/echo', 'headers': "
                    "{'Cookie': 'c=1', 'X-Other': 'kept'}}",
                    srv.http, srv.http2),
                 "http.basic", jq("{'username': 'u', 'password': 'p'}"));
    expect_ok(t);
    assert_null(sent_header(t, "Authorization"));
    assert_null(sent_header(t, "Cookie"));
    assert_string_equal(sent_header(t, "X-Other"), "kept");
    request_with(
        t, jq("{'url': '%s/redirect/307?to=%s/echo'}", srv.http, srv.http2),
        "http.api_key", jq("{'key': 'k-123', 'header': 'X-Key'}"));
    expect_ok(t);
    assert_null(sent_header(t, "X-Key"));
    request_with(
        t, jq("{'url': '%s/redirect/307?to=%s/echo'}", srv.http, srv.http2),
        "http.api_key", jq("{'key': 'k-123', 'query': 'api_key'}"));
    expect_ok(t);
    assert_string_equal(json_string_value(json_object_get(body(t), "query")),
                        "");
    request_with(t, jq("{'url': '%s/redirect/307?to=/echo'}", srv.http),
                 "http.api_key", jq("{'key': 'k-123', 'query': 'api_key'}"));
    expect_ok(t);
    assert_string_equal(json_string_value(json_object_get(body(t), "query")),
                        "api_key=k-123");
}

/* ---- credentials ---- */

static void test_auth_basic(void **state) {
    ht *t = *state;
    request_with(
        t, jq("{'url': '%s/auth/basic?user=ann&pass=s3cr%%C3%%A9t'}", srv.http),
        "http.basic", jq("{'username': 'ann', 'password': 's3cr\\u00e9t'}"));
    expect_ok(t);
    /* Wrong password: 401, not retryable, and neither the password nor its
     * Basic form in the message (the server echoes the header back). */
    request_with(
        t, jq("{'url': '%s/auth/basic?user=ann&pass=other'}", srv.http),
        "http.basic", jq("{'username': 'ann', 'password': 'hunter2-secret'}"));
    expect_fail(t, FERRY_EAUTH, 0, "HTTP 401 Unauthorized from GET");
    assert_non_null(strstr(t->res.error_message, "denied; you sent"));
    expect_hidden(t, "hunter2-secret");
    expect_hidden(t, "YW5uOmh1bnRlcjItc2VjcmV0"); /* base64 ann:hunter2... */
}

static void test_auth_bearer(void **state) {
    ht *t = *state;
    request_with(t, jq("{'url': '%s/auth/bearer?token=tok-1'}", srv.http),
                 "http.bearer", jq("{'token': 'tok-1'}"));
    expect_ok(t);
    request_with(t, jq("{'url': '%s/auth/bearer?token=tok-1'}", srv.http),
                 "http.bearer", jq("{'token': 'wrong-token-zz'}"));
    expect_fail(t, FERRY_EAUTH, 0, "HTTP 401");
    expect_hidden(t, "wrong-token-zz");
    /* An Authorization header of the step's own wins. */
    request_with(t,
                 jq("{'url': '%s/echo', 'headers': {'Authorization': "
                    "'Custom x'}}",
                    srv.http),
                 "http.bearer", jq("{'token': 'tok-1'}"));
    expect_ok(t);
    assert_string_equal(sent_header(t, "Authorization"), "Custom x");
    assert_int_equal(sent_header_count(t, "Authorization"), 1);
}

static void test_auth_api_key(void **state) {
    ht *t = *state;
    request_with(
        t, jq("{'url': '%s/auth/header?name=X-API-Key&key=k1'}", srv.http),
        "http.api_key", jq("{'key': 'k1'}"));
    expect_ok(t);
    request_with(t,
                 jq("{'url': '%s/auth/header?name=Authorization&"
                    "key=Token%%20k2'}",
                    srv.http),
                 "http.api_key",
                 jq("{'key': 'k2', 'header': 'Authorization', 'prefix': "
                    "'Token '}"));
    expect_ok(t);
    request_with(t,
                 jq("{'url': '%s/auth/query?name=apikey&key=k%%2F3', "
                    "'query': {'x': 1}}",
                    srv.http),
                 "http.api_key", jq("{'key': 'k/3', 'query': 'apikey'}"));
    expect_ok(t);
    /* The key is in the query the server saw, never in the URL shown. */
    const char *url = json_string_value(json_object_get(out(t), "url"));
    assert_non_null(strstr(url, "apikey=REDACTED"));
    assert_null(strstr(url, "k%2F3"));
    request_with(
        t, jq("{'url': '%s/auth/query?name=apikey&key=other'}", srv.http),
        "http.api_key", jq("{'key': 'qk-secret-1', 'query': 'apikey'}"));
    expect_fail(t, FERRY_EAUTH, 0, "apikey=REDACTED");
    expect_hidden(t, "qk-secret-1");
    /* A connection type of another component (hx.key, auth api_key)
     * applied by the helper for http.request. */
    run(t,
        jq("[{'name': 'b', 'action': 'hx.blob', 'input': {'text': 'x'}},"
           " {'name': 'r', 'action': 'http.request', 'connection': 'c', "
           "'input': {'url': '%s/auth/header?name=X-API-Key&key=hk'}}]",
           srv.http),
        "hx.key", jq("{'key': 'hk'}"));
    expect_ok(t);
    /* ... but only when some step uses that component. */
    request_with(t, jq("{'url': '%s/echo'}", srv.http), "hx.key",
                 jq("{'key': 'hk'}"));
    expect_fail(t, FERRY_ECONFIG, 0, "type 'hx.key'");
}

static void test_auth_oauth2(void **state) {
    ht *t = *state;
    json_t *fields = jq("{'token_url': '%s/token', 'client_id': 'id', "
                        "'client_secret': 'cs'}",
                        srv.http);
    /* No token service in this host. */
    request_with(t, jq("{'url': '%s/oauth/o1?good=new'}", srv.http),
                 "http.oauth2", json_deep_copy(fields));
    expect_fail(t, FERRY_ECONFIG, 0,
                "connection 'c' (oauth2) needs the host's token service");

    /* A stale token: 401, one forced refresh, the request again. */
    t->opts.token = fake_token;
    t->token[0] = "old";
    t->token[1] = "new";
    request_with(t, jq("{'url': '%s/oauth/o2?good=new'}", srv.http),
                 "http.oauth2", json_deep_copy(fields));
    expect_ok(t);
    json_t *want = jq("[{'instance': 'i', 'connection': 'c', 'type': "
                      "'http.oauth2', 'force': false}, {'instance': 'i', "
                      "'connection': 'c', 'type': 'http.oauth2', "
                      "'force': true}]");
    assert_true(json_equal(t->token_calls, want));
    json_decref(want);
    assert_true(logged(t, "refreshing it and repeating the request once"));
    assert_int_equal(count_of(t, "o2"), 2);

    /* Still 401 after the refresh: the step fails, no third try. */
    json_array_clear(t->token_calls);
    t->token[1] = "newer";
    request_with(t, jq("{'url': '%s/oauth/o3?good=never'}", srv.http),
                 "http.oauth2", json_deep_copy(fields));
    expect_fail(t, FERRY_EAUTH, 0, "HTTP 401");
    assert_int_equal(json_array_size(t->token_calls), 2);
    assert_int_equal(count_of(t, "o3"), 2);

    /* A valid token: one call, no refresh. */
    json_array_clear(t->token_calls);
    t->token[0] = "good";
    request_with(t, jq("{'url': '%s/oauth/o4?good=good'}", srv.http),
                 "http.oauth2", json_deep_copy(fields));
    expect_ok(t);
    assert_int_equal(json_array_size(t->token_calls), 1);

    /* The token service fails: its message, and its code decides. */
    t->token_rc = FERRY_EAUTH;
    request_with(t, jq("{'url': '%s/oauth/o5?good=x'}", srv.http),
                 "http.oauth2", json_deep_copy(fields));
    expect_fail(t, FERRY_EAUTH, 0,
                "connection 'c' (oauth2): the token endpoint said "
                "invalid_grant");
    t->token_rc = FERRY_EUNAVAIL;
    request_with(t, jq("{'url': '%s/oauth/o5?good=x'}", srv.http),
                 "http.oauth2", json_deep_copy(fields));
    expect_fail(t, FERRY_EUNAVAIL, 1, "invalid_grant");
    assert_int_equal(count_of(t, "o5"), 0);
    json_decref(fields);
}

/* ---- status policy ---- */

static void test_status_policy(void **state) {
    ht *t = *state;
    struct {
        int status;
        int code;
        int retryable;
        const char *text;
    } cases[] = {
        {400, FERRY_EREMOTE, 0, "HTTP 400 Bad Request from GET"},
        {403, FERRY_EPERM, 0, "HTTP 403 Forbidden"},
        {404, FERRY_ENOTFOUND, 0, "HTTP 404 Not Found"},
        {408, FERRY_ETIMEOUT, 1, "HTTP 408 Request Timeout"},
        {422, FERRY_EREMOTE, 0, "HTTP 422"},
        {429, FERRY_ERATELIMIT, 1, "HTTP 429 Too Many Requests"},
        {500, FERRY_EREMOTE, 1, "HTTP 500 Internal Server Error"},
        {502, FERRY_EUNAVAIL, 1, "HTTP 502"},
        {503, FERRY_EUNAVAIL, 1, "HTTP 503 Service Unavailable"},
        {504, FERRY_ETIMEOUT, 1, "HTTP 504"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        request(t, jq("{'url': '%s/status/%d?body=why%%20not'}", srv.http,
                      cases[i].status));
        expect_fail(t, cases[i].code, cases[i].retryable, cases[i].text);
        assert_non_null(strstr(t->res.error_message, "/status/"));
        assert_non_null(strstr(t->res.error_message, ": why not"));
    }
    /* A long body is cut. */
    request(t, jq("{'url': '%s/status/500?body=0123456789%%0A&repeat=100'}",
                  srv.http));
    expect_fail(t, FERRY_EREMOTE, 1, ": 0123456789 0123456789 ");
    const char *ex = strstr(t->res.error_message, ": 0123456789");
    assert_true(strlen(ex) <= 203);
    assert_string_equal(ex + strlen(ex) - 3, "...");
    assert_null(strchr(t->res.error_message, '\n'));
    /* fail_on_status: false returns every status. */
    request(t, jq("{'url': '%s/status/500?body=x', 'fail_on_status': false}",
                  srv.http));
    expect_ok(t);
    assert_int_equal(json_integer_value(json_object_get(out(t), "status")),
                     500);
    assert_string_equal(json_string_value(body(t)), "x");
    /* The helper itself returns a 500 as a response. */
    run(t,
        jq("[{'name': 'r', 'action': 'hx.call', 'input': {'request': "
           "{'url': '%s/status/500'}}}]",
           srv.http),
        NULL, NULL);
    expect_ok(t);
    assert_int_equal(json_integer_value(json_object_get(out(t), "status")),
                     500);
}

static void test_retry_after(void **state) {
    ht *t = *state;
    /* Twice 429 with Retry-After: 0, then 200. */
    request(t, jq("{'url': '%s/retry/ra1?n=2&after=0'}", srv.http));
    expect_ok(t);
    assert_int_equal(json_integer_value(json_object_get(body(t), "attempts")),
                     3);
    assert_true(logged(t, "(Retry-After) before attempt 2 of 4"));
    assert_true(logged(t, "before attempt 3 of 4"));
    /* 503 too, and a real wait of one second. */
    int64_t t0 = now_ms();
    request(t, jq("{'url': '%s/retry/ra2?n=1&after=1&code=503'}", srv.http));
    expect_ok(t);
    assert_true(now_ms() - t0 >= 950);
    /* An HTTP-date. */
    request(t, jq("{'url': '%s/retry/ra3?n=1&after=date%%2B1'}", srv.http));
    expect_ok(t);
    /* Longer than max_retry_after: no wait, a retryable failure that says
     * how long the server asked for. */
    t0 = now_ms();
    request(t, jq("{'url': '%s/retry/ra4?n=1&after=120'}", srv.http));
    expect_fail(t, FERRY_ERATELIMIT, 1,
                "Retry-After 120 s is more than max_retry_after, 60 s");
    assert_true(now_ms() - t0 < 5000);
    request(t, jq("{'url': '%s/retry/ra5?n=1&after=2', "
                  "'max_retry_after': '1s'}",
                  srv.http));
    expect_fail(t, FERRY_ERATELIMIT, 1, "Retry-After 2 s");
    assert_int_equal(count_of(t, "ra5"), 1);
    /* Out of attempts. */
    request(t, jq("{'url': '%s/retry/ra6?n=5&after=0', "
                  "'retry_after_attempts': 2}",
                  srv.http));
    expect_fail(t, FERRY_ERATELIMIT, 1, "still after 2 waits");
    assert_int_equal(count_of(t, "ra6"), 3);
    /* A 503 without Retry-After: no wait. */
    request(t, jq("{'url': '%s/status/503'}", srv.http));
    expect_fail(t, FERRY_EUNAVAIL, 1, "HTTP 503");
    /* fail_on_status: false and out of patience: the 429 is the output. */
    request(t, jq("{'url': '%s/retry/ra7?n=1&after=500', "
                  "'fail_on_status': false}",
                  srv.http));
    expect_ok(t);
    assert_int_equal(json_integer_value(json_object_get(out(t), "status")),
                     429);
    assert_int_equal(
        json_integer_value(json_object_get(out(t), "retry_after_ms")), 500000);
}

/* ---- transport failures ---- */

static int closed_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof(a);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &n), 0);
    close(s); /* bound, never listened: nothing answers there now */
    return ntohs(a.sin_port);
}

static void test_transport_errors(void **state) {
    ht *t = *state;
    int port = closed_port();
    request(t, jq("{'url': 'http://user:pw-secret-9@127.0.0.1:%d/x?"
                  "token=tk-secret-8&page=2'}",
                  port));
    expect_fail(t, FERRY_EUNAVAIL, 1, "GET http://127.0.0.1:");
    assert_non_null(strstr(t->res.error_message, "token=REDACTED&page=2"));
    expect_hidden(t, "pw-secret-9");
    expect_hidden(t, "tk-secret-8");
    expect_hidden(t, "user:");

    request(t, jq("{'url': 'http://nohost.invalid/x', "
                  "'connect_timeout': '5s'}"));
    if (t->res.error_code != FERRY_ETIMEOUT)
        expect_fail(t, FERRY_EUNAVAIL, 1, "nohost.invalid");
}

static void test_timeout(void **state) {
    ht *t = *state;
    int64_t t0 = now_ms();
    request(t, jq("{'url': '%s/delay?ms=3000', 'timeout': '300ms'}", srv.http));
    expect_fail(t, FERRY_ETIMEOUT, 1, "/delay?ms=3000");
    assert_true(now_ms() - t0 < 2500);
    request(t, jq("{'url': '%s/delay?ms=10', 'timeout': 2000}", srv.http));
    expect_ok(t);
}

static void *cancel_soon(void *ud) {
    ht *t = ud;
    struct timespec d = {0, 300 * 1000000};
    nanosleep(&d, NULL);
    t->cancel = 1;
    return NULL;
}

static void test_cancel(void **state) {
    ht *t = *state;
    pthread_t th;
    int64_t t0 = now_ms();
    assert_int_equal(pthread_create(&th, NULL, cancel_soon, t), 0);
    request(t, jq("{'url': '%s/delay?ms=5000'}", srv.http));
    pthread_join(th, NULL);
    assert_string_equal(t->res.status, "cancelled");
    assert_int_equal(t->res.error_code, FERRY_ECANCELLED);
    assert_true(now_ms() - t0 < 3000);
    /* Cancelled while waiting for a Retry-After. */
    t->cancel = 0;
    t0 = now_ms();
    assert_int_equal(pthread_create(&th, NULL, cancel_soon, t), 0);
    request(t, jq("{'url': '%s/retry/rc1?n=1&after=30'}", srv.http));
    pthread_join(th, NULL);
    assert_string_equal(t->res.status, "cancelled");
    assert_true(now_ms() - t0 < 3000);
}

/* ---- TLS ---- */

static void test_tls(void **state) {
    ht *t = *state;
    request(t, jq("{'url': '%s/echo', 'ca_file': '%s'}", srv.https, srv.ca));
    expect_ok(t);
    assert_true(json_object_get(json_object_get(out(t), "timings"), "tls_ms") !=
                NULL);
    request(t, jq("{'url': '%s/echo'}", srv.https));
    expect_fail(t, FERRY_EPROTO, 1, "certificate");
    assert_non_null(strstr(t->res.error_message, "give ca_file"));
    request(t, jq("{'url': '%s/echo', 'verify_tls': false}", srv.https));
    expect_ok(t);
    request(t, jq("{'url': '%s/echo', 'ca_file': '%s/missing.pem'}", srv.https,
                  srv.dir));
    expect_fail(t, FERRY_ECONFIG, 0, NULL);
}

/* ---- large responses ---- */

static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n))
            v = strtol(line + n, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static void test_large_to_blob(void **state) {
    ht *t = *state;
    const long size = 50L * 1024 * 1024;
    /* Reset the peak resident size, so that VmHWM says what this
     * download took. */
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int reset = f && fputs("5", f) >= 0;
    if (f)
        reset &= fclose(f) == 0;
    long before = status_kb("VmRSS:");
    run(t,
        jq("[{'name': 'r', 'action': 'http.request', 'input': {'url': "
           "'%s/large?size=%ld'}},"
           " {'name': 'd', 'action': 'hx.digest', 'input': {'blob': "
           "'{{ steps.r.output.body }}'}},"
           " {'name': 'both', 'action': 'core.set', 'input': {'value': "
           "{'r': '{{ steps.r.output }}', 'd': '{{ steps.d.output }}'}}}]",
           srv.http, size),
        NULL, NULL);
    expect_ok(t);
    long peak = status_kb("VmHWM:");
    json_t *r = json_object_get(out(t), "r");
    json_t *b = json_object_get(r, "body");
    assert_non_null(json_object_get(b, "$blob"));
    assert_int_equal(json_integer_value(json_object_get(b, "size")), size);
    assert_string_equal(json_string_value(json_object_get(b, "content_type")),
                        "application/octet-stream");
    assert_int_equal(json_integer_value(json_object_get(r, "size")), size);
    /* The digest of i % 251 for i < size. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (long i = 0; i < size; i++) {
        h ^= (unsigned char)(i % 251);
        h *= 0x100000001b3ULL;
    }
    char hex[17];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)h);
    json_t *d = json_object_get(out(t), "d");
    assert_int_equal(json_integer_value(json_object_get(d, "size")), size);
    assert_string_equal(json_string_value(json_object_get(d, "fnv")), hex);
    if (reset && before > 0 && peak > 0) {
        /* The body never sat in memory: far less than 50 MB more. */
        if (peak - before > 16 * 1024)
            fail_msg("the resident size grew by %ld KiB downloading 50 MiB",
                     peak - before);
    } else {
        print_message("peak resident size not measurable here\n");
    }
}

/* ---- the ABI ---- */

static void test_minor0_component(void **state) {
    ht *t = *state;
    run(t, jq("[{'name': 'r', 'action': 'old.has', 'input': {}}]"), NULL, NULL);
    expect_ok(t);
    assert_true(json_is_true(json_object_get(out(t), "http_request")));
    assert_int_equal(json_integer_value(json_object_get(out(t), "minor")),
                     FERRY_ABI_MINOR);
    /* What a component sees in a minor-0 host: a shorter table. */
    ferry_api old = *flow_host_api();
    old.size = offsetof(ferry_api, http_request);
    assert_false(FERRY_API_HAS(&old, http_request));
    assert_true(FERRY_API_HAS(&old, info));
    assert_true(FERRY_API_HAS(flow_host_api(), http_request));
}

/* A component that declares FERRY_COMPONENT_NO_HTTP is refused the
 * helper, as it would be in a `ferry serve` worker without libcurl. */
static void test_no_http_flag(void **state) {
    ht *t = *state;
    run(t,
        jq("[{'name': 'r', 'action': 'nohttp.call', 'input': {'request': "
           "{'url': '%s/echo'}}}]",
           srv.http),
        NULL, NULL);
    expect_fail(t, FERRY_EUNSUPPORTED, 0, "FERRY_COMPONENT_NO_HTTP");
    expect_fail(t, FERRY_EUNSUPPORTED, 0, "'nohttp'");
    /* The same request from a component without the flag goes out. */
    run(t,
        jq("[{'name': 'r', 'action': 'hx.call', 'input': {'request': "
           "{'url': '%s/echo'}}}]",
           srv.http),
        NULL, NULL);
    expect_ok(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_large_to_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_http_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_and_headers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_form_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_and_xml_bodies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_multipart_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_drops_credentials, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_auth_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_bearer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_api_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_oauth2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_minor0_component, setup, teardown),
    };
    return cmocka_run_group_tests(tests, server_start, server_stop);
}
