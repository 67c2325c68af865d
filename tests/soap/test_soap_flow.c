/*
 * The soap component against a real SOAP implementation: flows run by the
 * engine (flow_execute) with soap.so as built, against the node-soap
 * service of tests/fixtures/soap (server.js) started once for the run on
 * a free loopback port. The service records every request it gets (GET
 * /_log), so the tests see what went over the wire: headers, envelopes,
 * and that a refused call never left.
 *
 * Needs node and the fixture's npm packages (scripts/npm-deps); without
 * them the program says why and exits 77, which ctest reports as skipped.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "flow/flow.h"

#ifndef SOAP_COMPONENT
#error "SOAP_COMPONENT must name soap.so"
#endif

/* ---- the service ---- */

static struct {
    pid_t pid;
    int stdin_fd; /* closing it stops the service */
    char dir[PATH_MAX];
    char base[64]; /* http://127.0.0.1:PORT */
} srv = {.pid = -1, .stdin_fd = -1};

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
    snprintf(srv.dir, sizeof(srv.dir), "%s/ferry-soap-srv-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(srv.dir))
        return -1;
    char portfile[PATH_MAX + 8];
    snprintf(portfile, sizeof(portfile), "%s/port", srv.dir);
    int in[2];
    if (pipe(in))
        return -1;
    srv.pid = fork();
    if (srv.pid < 0)
        return -1;
    if (srv.pid == 0) {
        dup2(in[0], 0);
        close(in[0]);
        close(in[1]);
        execlp("node", "node", SOAP_FIXTURE_DIR "/server.js", "--port-file",
               portfile, "--exit-with-stdin", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    srv.stdin_fd = in[1];
    for (int i = 0; i < 300; i++) {
        FILE *f = fopen(portfile, "r");
        int port = 0;
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port > 0) {
            snprintf(srv.base, sizeof(srv.base), "http://127.0.0.1:%d", port);
            return 0;
        }
        int st;
        if (waitpid(srv.pid, &st, WNOHANG) == srv.pid) {
            fprintf(stderr, "the SOAP service exited at start (status %d)\n",
                    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            srv.pid = -1;
            return -1;
        }
        usleep(100 * 1000);
    }
    fprintf(stderr, "the SOAP service did not start within 30 s\n");
    return -1;
}

static int server_stop(void **state) {
    (void)state;
    if (srv.stdin_fd >= 0)
        close(srv.stdin_fd);
    if (srv.pid > 0) {
        kill(srv.pid, SIGTERM);
        waitpid(srv.pid, NULL, 0);
    }
    rm_rf(srv.dir);
    return 0;
}

/* ---- a fixture per test ---- */

typedef struct st {
    char dir[PATH_MAX];
    abi_registry reg;
    store *store;
    flow_integration *ig;
    flow_instance *in;
    flow_diags d;
    flow_result res;
    flow_exec_opts opts;
    json_t *logs; /* every log line's message */
    json_t *rec;  /* the recorded execution */
    volatile int cancel;
    json_t *token_calls;
} st;

static int fake_token(void *ud, const char *instance, const char *connection,
                      const json_t *conn, int force_refresh,
                      char **access_token, char **err) {
    st *t = ud;
    (void)instance;
    (void)connection;
    (void)conn;
    (void)err;
    json_array_append_new(t->token_calls, json_boolean(force_refresh));
    *access_token = strdup("access-token-1");
    return 0;
}

static void on_log(void *ud, const char *path, int level, const char *msg) {
    (void)path;
    (void)level;
    st *t = ud;
    json_array_append_new(t->logs, json_string(msg));
}

static void load(abi_registry *r, const char *path) {
    if (abi_load_file(r, path, flow_host_api()))
        fail_msg("refused %s: %s", path,
                 r->nrefused ? r->refused[r->nrefused - 1].reason : "?");
}

static int setup(void **state) {
    st *t = calloc(1, sizeof(*t));
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof(t->dir), "%s/ferry-soap-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(t->dir));
    abi_registry_init(&t->reg);
    char *reason = NULL;
    assert_int_equal(
        abi_registry_add_builtin(&t->reg, flow_core_component(), &reason), 0);
    load(&t->reg, SOAP_COMPONENT);
    load(&t->reg, HTTP_COMPONENT);
    char db[PATH_MAX + 16];
    snprintf(db, sizeof(db), "%s/ferry.db", t->dir);
    char *err = NULL;
    t->store = store_open_sqlite(db, &err);
    if (!t->store)
        fail_msg("store: %s", err);
    t->logs = json_array();
    t->token_calls = json_array();
    t->opts.st = t->store;
    t->opts.tmpdir = t->dir;
    t->opts.on_log = on_log;
    t->opts.ud = t;
    t->opts.cancel = &t->cancel;
    t->opts.token = fake_token;
    *state = t;
    return 0;
}

static int teardown(void **state) {
    st *t = *state;
    flow_result_clear(&t->res);
    flow_instance_free(t->in);
    flow_integration_free(t->ig);
    flow_diags_free(&t->d);
    store_close(t->store);
    abi_registry_free(&t->reg);
    json_decref(t->logs);
    json_decref(t->rec);
    json_decref(t->token_calls);
    rm_rf(t->dir);
    free(t);
    return 0;
}

/* ---- building and running flows ---- */

/* printf, then every ' becomes ", then parsed as JSON (new ref). A JSON
 * string that needs a ' writes \u0027. */
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

static void fail_diags(st *t, const char *what) {
    for (size_t i = 0; i < t->d.n; i++)
        print_error("%s: %s: %s\n", t->d.items[i].file, t->d.items[i].path,
                    t->d.items[i].message);
    fail_msg("%s did not load", what);
}

/* Runs a flow of steps (stolen); with ctype, a connection "c" of that type
 * with fields (stolen) that steps may name. Returns the status. */
static const char *run(st *t, json_t *steps, const char *ctype,
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
    assert_int_equal(t->store->vt->exec_get(t->store, t->res.id, &t->rec), 0);
    return t->res.status;
}

static const char *stations(void) {
    static char url[128];
    snprintf(url, sizeof(url), "%s/stations.wsdl", srv.base);
    return url;
}

/* One soap.call step "r" with this input (stolen). */
static const char *call(st *t, json_t *input) {
    return run(t,
               json_pack("[{s:s, s:s, s:o}]", "name", "r", "action",
                         "soap.call", "input", input),
               NULL, NULL);
}

static void expect_ok(st *t) {
    if (strcmp(t->res.status, "succeeded"))
        fail_msg("execution %s: %s: %s", t->res.status,
                 ferry_err_name(t->res.error_code),
                 t->res.error_message ? t->res.error_message : "");
}

static json_t *rec_step(st *t, const char *name) {
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
 * given, and a message containing each of the NULL-terminated subs. */
static void expect_fail(st *t, int code, int retryable, ...) {
    if (!strcmp(t->res.status, "succeeded"))
        fail_msg("expected a failure (%s), the execution succeeded",
                 ferry_err_name(code));
    if (t->res.error_code != code)
        fail_msg("expected %s, got %s: %s", ferry_err_name(code),
                 ferry_err_name(t->res.error_code), t->res.error_message);
    json_t *s = rec_step(t, "r");
    if (json_is_true(json_object_get(s, "retryable")) != retryable)
        fail_msg("expected retryable %d: %s", retryable, t->res.error_message);
    va_list ap;
    va_start(ap, retryable);
    const char *sub;
    while ((sub = va_arg(ap, const char *)))
        if (!strstr(t->res.error_message, sub))
            fail_msg("'%s' does not contain '%s'", t->res.error_message, sub);
    va_end(ap);
}

static void expect_hidden(st *t, const char *secret) {
    if (t->res.error_message && strstr(t->res.error_message, secret))
        fail_msg("the error message shows a secret: %s", t->res.error_message);
    char *all = json_dumps(t->rec, 0);
    if (all && strstr(all, secret))
        fail_msg("the record shows a secret");
    free(all);
    size_t i;
    json_t *l;
    json_array_foreach(t->logs, i, l) {
        if (strstr(json_string_value(l), secret))
            fail_msg("a log line shows a secret: %s", json_string_value(l));
    }
}

static int logged(st *t, const char *sub) {
    size_t i;
    json_t *l;
    int n = 0;
    json_array_foreach(t->logs, i, l) {
        n += strstr(json_string_value(l), sub) != NULL;
    }
    return n;
}

/* Fails unless got equals the single-quoted JSON want. */
static void assert_json(const json_t *got, const char *want_sq) {
    json_t *want = jq("%s", want_sq);
    if (!json_equal((json_t *)got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        fail_msg("got  %s\nwant %s", g ? g : "NULL", w);
    }
    json_decref(want);
}

static json_t *result(st *t) {
    return json_object_get(t->res.output, "result");
}

/* ---- what the service saw ---- */

static void reset_log(st *t) {
    char url[128];
    snprintf(url, sizeof(url), "%s/_reset", srv.base);
    run(t,
        json_pack("[{s:s, s:s, s:{s:s, s:s}}]", "name", "r", "action",
                  "http.request", "input", "method", "POST", "url", url),
        NULL, NULL);
    expect_ok(t);
}

/* The requests the service got since the last reset (new ref). */
static json_t *server_log(st *t) {
    char url[128];
    snprintf(url, sizeof(url), "%s/_log", srv.base);
    run(t,
        json_pack("[{s:s, s:s, s:{s:s}}]", "name", "r", "action",
                  "http.request", "input", "url", url),
        NULL, NULL);
    expect_ok(t);
    return json_incref(json_object_get(t->res.output, "body"));
}

static size_t count_requests(const json_t *log, const char *method,
                             const char *path) {
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(log, i, e) {
        n += !strcmp(json_string_value(json_object_get(e, "method")), method) &&
             !strcmp(json_string_value(json_object_get(e, "path")), path);
    }
    return n;
}

/* The last request to path. */
static json_t *last_request(const json_t *log, const char *path) {
    json_t *found = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(log, i, e) {
        if (!strcmp(json_string_value(json_object_get(e, "path")), path))
            found = e;
    }
    if (!found)
        fail_msg("the service got no request for %s", path);
    return found;
}

static const char *header(const json_t *req, const char *name) {
    return json_string_value(
        json_object_get(json_object_get(req, "headers"), name));
}

static const char *req_body(const json_t *req) {
    return json_string_value(json_object_get(req, "body"));
}

/* ---- soap.describe ---- */

static json_t *find_named(const json_t *arr, const char *name) {
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        if (!strcmp(json_string_value(json_object_get(e, "name")), name))
            return e;
    }
    fail_msg("nothing named %s", name);
    return NULL;
}

static json_t *op_of(const json_t *desc, int port, const char *name) {
    json_t *svc = json_array_get(json_object_get(desc, "services"), 0);
    json_t *p = json_array_get(json_object_get(svc, "ports"), (size_t)port);
    return find_named(json_object_get(p, "operations"), name);
}

/* A field by a dotted path of names through "fields". */
static json_t *field_at(json_t *fields, const char *path) {
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *f = NULL;
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, ".")) {
        f = find_named(fields, tok);
        fields = json_object_get(f, "fields");
    }
    return f;
}

/* Only the keys of a field that say its shape, without "fields". */
static json_t *shape(const json_t *f) {
    json_t *s = json_deep_copy(f);
    json_object_del(s, "fields");
    return s;
}

static void assert_shape(const json_t *f, const char *want_sq) {
    json_t *s = shape(f);
    assert_json(s, want_sq);
    json_decref(s);
}

static void test_describe_served(void **state) {
    st *t = *state;
    run(t,
        jq("[{'name': 'r', 'action': 'soap.describe', 'input': "
           "{'wsdl': '%s'}}]",
           stations()),
        NULL, NULL);
    expect_ok(t);
    json_t *d = t->res.output;
    assert_string_equal(
        json_string_value(json_object_get(d, "target_namespace")),
        "urn:ferry:test:stations");
    json_t *svc = json_array_get(json_object_get(d, "services"), 0);
    assert_string_equal(json_string_value(json_object_get(svc, "name")),
                        "Stations");
    json_t *ports = json_object_get(svc, "ports");
    assert_int_equal(json_array_size(ports), 2);
    char a11[128], a12[128];
    snprintf(a11, sizeof(a11), "%s/soap11", srv.base);
    snprintf(a12, sizeof(a12), "%s/soap12", srv.base);
    json_t *p11 = json_array_get(ports, 0), *p12 = json_array_get(ports, 1);
    assert_string_equal(json_string_value(json_object_get(p11, "address")),
                        a11);
    assert_string_equal(json_string_value(json_object_get(p12, "address")),
                        a12);
    assert_string_equal(json_string_value(json_object_get(p11, "soap_version")),
                        "1.1");
    assert_string_equal(json_string_value(json_object_get(p12, "soap_version")),
                        "1.2");

    json_t *gs = op_of(d, 1, "GetStation");
    assert_string_equal(json_string_value(json_object_get(gs, "soap_action")),
                        "urn:ferry:test:stations/GetStation");
    assert_true(json_is_true(json_object_get(gs, "wrapped")));
    assert_string_equal(json_string_value(json_object_get(gs, "style")),
                        "document");
    json_t *in = json_object_get(json_object_get(gs, "input"), "fields");
    assert_shape(field_at(in, "id"),
                 "{'name': 'id', 'namespace': 'urn:ferry:test:stations', "
                 "'type': 'xsd:string', 'json': 'string', 'min_occurs': 1, "
                 "'max_occurs': 1, 'array': false}");
    assert_shape(field_at(in, "readings"),
                 "{'name': 'readings', 'namespace': 'urn:ferry:test:stations',"
                 " 'type': 'xsd:int', 'json': 'integer', 'min_occurs': 0, "
                 "'max_occurs': 1, 'array': false}");
    json_t *out = json_object_get(json_object_get(gs, "output"), "fields");
    assert_json(json_object_get(json_object_get(gs, "output"), "element"),
                "{'name': 'GetStationResponse', "
                "'namespace': 'urn:ferry:test:stations'}");
    assert_shape(field_at(out, "station.tag"),
                 "{'name': 'tag', 'namespace': 'urn:ferry:test:stations', "
                 "'type': 'xsd:string', 'json': 'string', 'min_occurs': 0, "
                 "'max_occurs': 'unbounded', 'array': true}");
    assert_shape(field_at(out, "station.unit"),
                 "{'name': 'unit', 'namespace': 'urn:ferry:test:stations', "
                 "'type': 'Unit', 'json': 'string', 'min_occurs': 1, "
                 "'max_occurs': 1, 'array': false, "
                 "'enum': ['celsius', 'fahrenheit']}");
    assert_shape(field_at(out, "station.location.elevation"),
                 "{'name': 'elevation', 'namespace': 'urn:ferry:test:stations',"
                 " 'type': 'xsd:int', 'json': 'integer', 'min_occurs': 0, "
                 "'max_occurs': 1, 'array': false}");
    json_t *reading = field_at(out, "station.reading");
    assert_true(json_is_true(json_object_get(reading, "array")));
    assert_string_equal(json_string_value(json_object_get(reading, "type")),
                        "Reading");
    const char *const rtypes[][2] = {{"time", "string"},
                                     {"celsius", "number"},
                                     {"humidity", "integer"},
                                     {"valid", "boolean"}};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(
            json_string_value(json_object_get(
                field_at(json_object_get(reading, "fields"), rtypes[i][0]),
                "json")),
            rtypes[i][1]);

    json_t *div = op_of(d, 0, "Divide");
    json_t *fault = json_array_get(json_object_get(div, "faults"), 0);
    assert_string_equal(json_string_value(json_object_get(fault, "name")),
                        "DivideByZero");
    json_t *detail = json_object_get(fault, "detail");
    assert_string_equal(json_string_value(json_object_get(detail, "name")),
                        "DivideByZeroFault");
    assert_string_equal(
        json_string_value(json_object_get(
            field_at(json_object_get(detail, "fields"), "dividend"), "json")),
        "number");
    assert_string_equal(json_string_value(json_object_get(
                            op_of(d, 0, "SecureEcho"), "documentation")),
                        "Needs a WS-Security UsernameToken.");

    /* one operation only */
    run(t,
        jq("[{'name': 'r', 'action': 'soap.describe', 'input': "
           "{'wsdl': '%s', 'operation': 'Divide'}}]",
           stations()),
        NULL, NULL);
    expect_ok(t);
    ports = json_object_get(
        json_array_get(json_object_get(t->res.output, "services"), 0), "ports");
    for (size_t i = 0; i < 2; i++) {
        json_t *ops = json_object_get(json_array_get(ports, i), "operations");
        assert_int_equal(json_array_size(ops), 1);
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(ops, 0), "name")),
            "Divide");
    }
}

static json_t *describe_file(st *t, const char *path) {
    run(t,
        jq("[{'name': 'r', 'action': 'soap.describe', 'input': "
           "{'wsdl': '%s'}}]",
           path),
        NULL, NULL);
    expect_ok(t);
    return t->res.output;
}

/* A port's own keys (its operations left out). */
static void check_port(const json_t *port) {
    json_t *p = json_deep_copy(port);
    json_object_set_new(p, "operations", json_array());
    assert_json(p, "{'name': 'OrderPort', 'binding': 'OrderBinding', "
                   "'address': 'https://orders.example.com/soap', "
                   "'soap_version': '1.1', 'style': 'document', "
                   "'operations': []}");
    json_decref(p);
}

/* document/literal wrapped over four files: wsdl:import, xsd:import of
 * another namespace, and an xsd:include without a namespace. */
static void test_describe_orders(void **state) {
    st *t = *state;
    json_t *d = describe_file(t, SOAP_TEST_DIR "/wsdl/orders/orders.wsdl");
    json_t *docs = json_object_get(d, "documents");
    assert_int_equal(json_array_size(docs), 4);
    assert_non_null(strstr(json_string_value(json_array_get(docs, 1)),
                           "/wsdl/orders/orders-interface.wsdl"));
    assert_non_null(strstr(json_string_value(json_array_get(docs, 3)),
                           "/wsdl/orders/types/address.xsd"));
    check_port(json_array_get(
        json_object_get(json_array_get(json_object_get(d, "services"), 0),
                        "ports"),
        0));
    json_t *po = op_of(d, 0, "PlaceOrder");
    assert_true(json_is_true(json_object_get(po, "wrapped")));
    json_t *in = json_object_get(json_object_get(po, "input"), "fields");
    json_t *order = field_at(in, "order");
    assert_json(json_object_get(order, "attributes"),
                "[{'name': 'channel', 'type': 'Channel', 'json': 'string', "
                "'required': true}]");
    /* an element ref into the imported namespace; its type's locals are
     * unqualified there, and the extension's base fields come first */
    json_t *cust = field_at(in, "order.customer");
    assert_string_equal(json_string_value(json_object_get(cust, "namespace")),
                        "urn:example:common");
    json_t *cf = json_object_get(cust, "fields");
    assert_int_equal(json_array_size(cf), 3);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(cf, 0), "name")),
        "name");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(cf, 2), "name")),
        "vip");
    assert_true(
        json_is_null(json_object_get(json_array_get(cf, 2), "namespace")));
    assert_shape(field_at(in, "order.line"),
                 "{'name': 'line', 'namespace': 'urn:example:orders', "
                 "'type': 'Line', 'json': 'object', 'min_occurs': 1, "
                 "'max_occurs': 100, 'array': true}");
    assert_shape(field_at(in, "order.line.price"),
                 "{'name': 'price', 'namespace': 'urn:example:orders', "
                 "'type': 'Money', 'json': 'object', 'min_occurs': 1, "
                 "'max_occurs': 1, 'array': false, "
                 "'text': {'type': 'xsd:decimal', 'json': 'number'}, "
                 "'attributes': [{'name': 'currency', 'type': 'xsd:string', "
                 "'json': 'string', 'required': true}]}");
    assert_shape(field_at(in, "order.line.quantity"),
                 "{'name': 'quantity', 'namespace': 'urn:example:orders', "
                 "'type': 'xsd:positiveInteger', 'json': 'integer', "
                 "'min_occurs': 1, 'max_occurs': 1, 'array': false}");
    /* the choice */
    assert_int_equal(json_integer_value(json_object_get(
                         field_at(in, "order.shipTo"), "choice")),
                     1);
    assert_int_equal(json_integer_value(json_object_get(
                         field_at(in, "order.pickupPoint"), "choice")),
                     1);
    /* the chameleon include: its group and type in common's namespace */
    assert_shape(field_at(in, "order.shipTo.street"),
                 "{'name': 'street', 'namespace': null, 'type': 'xsd:string',"
                 " 'json': 'string', 'min_occurs': 1, 'max_occurs': 3, "
                 "'array': true}");
    assert_string_equal(json_string_value(json_object_get(
                            field_at(in, "order.shipTo.country"), "type")),
                        "CountryCode");
    assert_true(json_is_true(
        json_object_get(field_at(in, "order.comment"), "nillable")));
    json_t *out = json_object_get(json_object_get(po, "output"), "fields");
    assert_json(json_object_get(field_at(out, "status"), "enum"),
                "['accepted', 'backordered']");
    json_t *fault = json_array_get(json_object_get(po, "faults"), 0);
    assert_shape(
        field_at(json_object_get(json_object_get(fault, "detail"), "fields"),
                 "sku"),
        "{'name': 'sku', 'namespace': 'urn:example:orders', "
        "'type': 'xsd:string', 'json': 'string', 'min_occurs': 1, "
        "'max_occurs': 'unbounded', 'array': true}");
    /* a recursive type stops where it recurs */
    json_t *gc = op_of(d, 0, "GetCategory");
    assert_string_equal(json_string_value(json_object_get(gc, "soap_action")),
                        "");
    json_t *cat = json_object_get(json_object_get(gc, "output"), "fields");
    json_t *child = field_at(cat, "category.child");
    assert_true(json_is_true(json_object_get(child, "recursive")));
    assert_null(json_object_get(child, "fields"));
    assert_shape(field_at(cat, "category.discount"),
                 "{'name': 'discount', 'namespace': null, 'type': 'Percent', "
                 "'json': 'integer', 'min_occurs': 0, 'max_occurs': 1, "
                 "'array': false, 'minimum': 0, 'maximum': 100}");
}

/* rpc/literal: a wrapper in the soap:body namespace, unqualified parts
 * with type=. */
static void test_describe_rpc(void **state) {
    st *t = *state;
    json_t *d = describe_file(t, SOAP_FIXTURE_DIR "/library.wsdl");
    json_t *port = json_array_get(
        json_object_get(json_array_get(json_object_get(d, "services"), 0),
                        "ports"),
        0);
    assert_string_equal(json_string_value(json_object_get(port, "style")),
                        "rpc");
    json_t *lk = op_of(d, 0, "Lookup");
    assert_string_equal(json_string_value(json_object_get(lk, "style")), "rpc");
    assert_null(json_object_get(lk, "wrapped"));
    assert_string_equal(json_string_value(json_object_get(lk, "soap_action")),
                        "urn:ferry:test:library#Lookup");
    json_t *in = json_object_get(lk, "input");
    assert_json(json_object_get(in, "element"),
                "{'name': 'Lookup', 'namespace': 'urn:ferry:test:library'}");
    assert_json(json_object_get(in, "fields"),
                "[{'name': 'isbn', 'namespace': null, 'type': 'xsd:string', "
                "'json': 'string', 'min_occurs': 1, 'max_occurs': 1, "
                "'array': false},"
                " {'name': 'copies', 'namespace': null, 'type': 'xsd:int', "
                "'json': 'integer', 'min_occurs': 1, 'max_occurs': 1, "
                "'array': false}]");
    json_t *out = json_object_get(lk, "output");
    assert_json(json_object_get(out, "element"),
                "{'name': 'LookupResponse', "
                "'namespace': 'urn:ferry:test:library'}");
    json_t *of = json_object_get(out, "fields");
    assert_shape(field_at(of, "book"),
                 "{'name': 'book', 'namespace': null, 'type': 'Book', "
                 "'json': 'object', 'min_occurs': 1, 'max_occurs': 1, "
                 "'array': false, 'attributes': [{'name': 'format', "
                 "'type': 'xsd:string', 'json': 'string', "
                 "'required': false}]}");
    assert_shape(field_at(of, "book.subject"),
                 "{'name': 'subject', 'namespace': null, 'type': 'xsd:string',"
                 " 'json': 'string', 'min_occurs': 0, 'max_occurs': "
                 "'unbounded', 'array': true}");
    assert_string_equal(
        json_string_value(json_object_get(
            field_at(
                json_object_get(json_object_get(op_of(d, 0, "Count"), "output"),
                                "fields"),
                "count"),
            "type")),
        "xsd:long");
}

/* ---- soap.call: typed results, headers, envelopes ---- */

static void test_call_typed(void **state) {
    st *t = *state;
    reset_log(t);
    call(t, jq("{'wsdl': '%s', 'operation': 'Add', "
               "'arguments': {'a': 7, 'b': 5}}",
               stations()));
    expect_ok(t);
    assert_json(result(t), "{'result': 12}");
    json_t *raw = json_object_get(t->res.output, "raw");
    assert_non_null(json_object_get(raw, "$blob"));
    assert_true(json_integer_value(json_object_get(raw, "size")) > 100);
    assert_int_equal(
        json_integer_value(json_object_get(t->res.output, "status")), 200);
    assert_string_equal(
        json_string_value(json_object_get(t->res.output, "soap_version")),
        "1.1");

    /* nested objects, booleans, numbers; a repeated element with one
     * occurrence is still an array */
    call(t, jq("{'wsdl': '%s', 'operation': 'GetStation', "
               "'arguments': {'id': 'S1', 'readings': 3}}",
               stations()));
    expect_ok(t);
    assert_json(result(t),
                "{'station': {'id': 'S1', 'name': 'Harbour & Pier', "
                "'active': true, "
                "'location': {'lat': 59.91, 'lon': 10.75, 'elevation': 12}, "
                "'unit': 'celsius', 'tag': ['coast'], 'reading': ["
                "{'time': '2026-01-01T00:00:00Z', 'celsius': 21.5, "
                "'humidity': 40, 'valid': true},"
                "{'time': '2026-01-01T00:01:00Z', 'celsius': 21.75, "
                "'humidity': 41, 'valid': false},"
                "{'time': '2026-01-01T00:02:00Z', 'celsius': 22.0, "
                "'humidity': 42, 'valid': true}]}}");

    /* the SOAP 1.2 port; an absent optional element is absent, an absent
     * repeated one an empty array */
    call(t, jq("{'wsdl': '%s', 'operation': 'GetStation', "
               "'soap_version': '1.2', "
               "'arguments': {'id': 'S2', 'readings': 0}}",
               stations()));
    expect_ok(t);
    assert_json(result(t), "{'station': {'id': 'S2', 'name': 'Hill', "
                           "'active': false, "
                           "'location': {'lat': -33.5, 'lon': 151}, "
                           "'unit': 'celsius', 'tag': ['inland', 'windy'], "
                           "'reading': []}}");
    assert_string_equal(
        json_string_value(json_object_get(t->res.output, "soap_version")),
        "1.2");
    assert_true(json_is_integer(json_object_get(
        json_object_get(json_object_get(result(t), "station"), "location"),
        "lon")));
}

/* convert: false: the response kept as raw only, still checked for a
 * Fault. */
static void test_call_unconverted(void **state) {
    st *t = *state;
    call(t, jq("{'wsdl': '%s', 'operation': 'GetStation', 'convert': false, "
               "'arguments': {'id': 'S1', 'readings': 3}}",
               stations()));
    expect_ok(t);
    assert_true(json_is_null(result(t)));
    json_t *raw = json_object_get(t->res.output, "raw");
    assert_non_null(json_object_get(raw, "$blob"));
    /* the same bytes a converted call keeps */
    json_int_t size = json_integer_value(json_object_get(raw, "size"));
    call(t, jq("{'wsdl': '%s', 'operation': 'GetStation', "
               "'arguments': {'id': 'S1', 'readings': 3}}",
               stations()));
    expect_ok(t);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(t->res.output, "raw"), "size")),
                     size);
    assert_true(size > 300);

    /* faults fail the step as always, on HTTP 500 and on 200 */
    call(t, jq("{'wsdl': '%s', 'operation': 'Divide', 'convert': false, "
               "'arguments': {'a': 7, 'b': 0}}",
               stations()));
    expect_fail(t, FERRY_EREMOTE, 0, "SOAP fault from Divide",
                "code soap:Client", "Division by zero", NULL);
    call(t, jq("{'wsdl': '%s', 'operation': 'Divide', 'soap_version': '1.2',"
               " 'convert': false, 'arguments': {'a': 999, 'b': 2}}",
               stations()));
    expect_fail(t, FERRY_EREMOTE, 0, "HTTP 200, SOAP 1.2",
                "soap:Sender (subcode Rejected)", NULL);
}

static void test_call_headers(void **state) {
    st *t = *state;
    reset_log(t);
    call(t, jq("{'wsdl': '%s', 'operation': 'Add', "
               "'arguments': {'a': 1, 'b': 2}}",
               stations()));
    expect_ok(t);
    json_t *log = server_log(t);
    json_t *r = last_request(log, "/soap11");
    assert_string_equal(header(r, "content-type"), "text/xml; charset=utf-8");
    assert_string_equal(header(r, "soapaction"),
                        "\"urn:ferry:test:stations/Add\"");
    /* the wrapper and its children qualified, as the schema says */
    assert_non_null(strstr(req_body(r), "<n1:Add><n1:a>1</n1:a><n1:b>2</n1:b>"
                                        "</n1:Add>"));
    assert_non_null(
        strstr(req_body(r), "xmlns:n1=\"urn:ferry:test:stations\""));
    assert_non_null(
        strstr(req_body(r),
               "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/"
               "envelope/\""));
    json_decref(log);

    reset_log(t);
    call(t, jq("{'wsdl': '%s', 'operation': 'Add', 'port': 'StationsSoap12', "
               "'arguments': {'a': 1, 'b': 2}}",
               stations()));
    expect_ok(t);
    assert_json(result(t), "{'result': 3}");
    log = server_log(t);
    r = last_request(log, "/soap12");
    assert_string_equal(header(r, "content-type"),
                        "application/soap+xml; charset=utf-8; "
                        "action=\"urn:ferry:test:stations/Add\"");
    assert_null(header(r, "soapaction"));
    assert_non_null(strstr(req_body(r), "http://www.w3.org/2003/05/"
                                        "soap-envelope"));
    json_decref(log);

    /* the step's own headers go along, and may replace ours */
    reset_log(t);
    call(t,
         jq("{'wsdl': '%s', 'operation': 'Add', "
            "'headers': {'X-Trace': 'abc', 'soapaction': '\\u0022Add\\u0022'},"
            " 'arguments': {'a': 1, 'b': 2}}",
            stations()));
    expect_ok(t);
    log = server_log(t);
    r = last_request(log, "/soap11");
    assert_string_equal(header(r, "x-trace"), "abc");
    assert_string_equal(header(r, "soapaction"), "\"Add\"");
    json_decref(log);
}

static void test_call_arrays_and_nil(void **state) {
    st *t = *state;
    reset_log(t);
    call(t, jq("{'wsdl': '%s', 'operation': 'SubmitReadings', 'arguments': {"
               "'stationId': 'S1', 'unit': 'celsius', 'reading': ["
               "{'time': '2026-01-01T00:00:00Z', 'celsius': 20.5, "
               "'humidity': 40, 'valid': true},"
               "{'time': '2026-01-01T00:15:00Z', 'celsius': '21.25', "
               "'humidity': '41', 'valid': 'false'},"
               "{'time': '2026-01-01T00:30:00Z', 'celsius': 1e1, "
               "'humidity': 42.0, 'valid': true}], 'note': null}}",
               stations()));
    expect_ok(t);
    assert_json(result(t), "{'accepted': 3, 'sumCelsius': 51.75, "
                           "'validCount': 2, "
                           "'received': 'station=S1 unit=celsius note=-'}");
    json_t *log = server_log(t);
    const char *b = req_body(last_request(log, "/soap11"));
    /* schema order, numbers as written, nil for the nillable note */
    assert_non_null(strstr(b, "<n1:stationId>S1</n1:stationId><n1:unit>"
                              "celsius</n1:unit><n1:reading><n1:time>"));
    assert_non_null(strstr(b, "<n1:celsius>20.5</n1:celsius><n1:humidity>40"
                              "</n1:humidity><n1:valid>true</n1:valid>"));
    assert_non_null(strstr(b, "<n1:celsius>10</n1:celsius><n1:humidity>42"
                              "</n1:humidity>"));
    assert_non_null(strstr(b, "<n1:note xsi:nil=\"true\"/>"));
    json_decref(log);

    /* one item may be given without the array */
    call(t, jq("{'wsdl': '%s', 'operation': 'SubmitReadings', 'arguments': {"
               "'stationId': 'S<1>&', 'reading': "
               "{'time': 't', 'celsius': 1, 'humidity': 1, 'valid': true}}}",
               stations()));
    expect_ok(t);
    assert_json(result(t), "{'accepted': 1, 'sumCelsius': 1, 'validCount': 1,"
                           " 'received': 'station=S<1>& unit=- note=-'}");
}

/* ---- faults ---- */

static void test_faults(void **state) {
    st *t = *state;
    /* SOAP 1.1: HTTP 500, faultcode/faultstring/detail, a Client fault */
    call(t, jq("{'wsdl': '%s', 'operation': 'Divide', "
               "'arguments': {'a': 7, 'b': 0}}",
               stations()));
    expect_fail(t, FERRY_EREMOTE, 0, "SOAP fault from Divide",
                "HTTP 500, SOAP 1.1", "code soap:Client", "Division by zero",
                "detail: {\"DivideByZeroFault\":{\"dividend\":7,"
                "\"message\":\"b must not be 0\"}}",
                NULL);
    assert_true(logged(t, "SOAP fault soap:Client from Divide") == 1);

    /* SOAP 1.2: HTTP 400, Code/Subcode/Reason/Detail, a Sender fault */
    call(t, jq("{'wsdl': '%s', 'operation': 'Divide', 'soap_version': '1.2',"
               " 'arguments': {'a': 7.5, 'b': 0}}",
               stations()));
    expect_fail(t, FERRY_EREMOTE, 0, "HTTP 400, SOAP 1.2",
                "code soap:Sender (subcode DivideByZero)", "Division by zero",
                "detail: {\"DivideByZeroFault\":{\"dividend\":7.5,"
                "\"message\":\"b must not be 0\"}}",
                NULL);

    /* Server and Receiver faults may pass: retryable */
    call(t, jq("{'wsdl': '%s', 'operation': 'Divide', "
               "'arguments': {'a': -1, 'b': 2}}",
               stations()));
    expect_fail(t, FERRY_EREMOTE, 1, "code soap:Server",
                "temporarily unavailable", NULL);
    call(t, jq("{'wsdl': '%s', 'operation': 'Divide', 'soap_version': '1.2',"
               " 'arguments': {'a': -1, 'b': 2}}",
               stations()));
    expect_fail(t, FERRY_EREMOTE, 1, "code soap:Receiver", NULL);

    /* a fault is a fault on HTTP 200 too */
    call(t, jq("{'wsdl': '%s', 'operation': 'Divide', "
               "'arguments': {'a': 999, 'b': 2}}",
               stations()));
    expect_fail(t, FERRY_EREMOTE, 0, "HTTP 200, SOAP 1.1", "soap:Client",
                "Dividend 999 is rejected", NULL);
    call(t, jq("{'wsdl': '%s', 'operation': 'Divide', 'soap_version': '1.2',"
               " 'arguments': {'a': 999, 'b': 2}}",
               stations()));
    expect_fail(t, FERRY_EREMOTE, 0, "HTTP 200, SOAP 1.2",
                "soap:Sender (subcode Rejected)", NULL);

    /* and a result still a result */
    call(t, jq("{'wsdl': '%s', 'operation': 'Divide', 'soap_version': '1.2',"
               " 'arguments': {'a': 7, 'b': 2}}",
               stations()));
    expect_ok(t);
    assert_json(result(t), "{'result': 3.5}");
}

/* ---- bad input never reaches the service ---- */

static void test_bad_arguments(void **state) {
    st *t = *state;
    reset_log(t);
    call(t, jq("{'wsdl': '%s', 'operation': 'Add', 'arguments': {'a': 7}}",
               stations()));
    expect_fail(t, FERRY_EINVAL, 0,
                "Add: arguments.b: required, expected xsd:int (an integer)",
                NULL);
    call(t, jq("{'wsdl': '%s', 'operation': 'Add', "
               "'arguments': {'a': 7, 'b': 'seven'}}",
               stations()));
    expect_fail(t, FERRY_EINVAL, 0,
                "arguments.b: expected xsd:int (an integer), got string "
                "\"seven\"",
                NULL);
    call(t, jq("{'wsdl': '%s', 'operation': 'Add', "
               "'arguments': {'a': 7, 'b': 3000000000}}",
               stations()));
    expect_fail(t, FERRY_EINVAL, 0,
                "arguments.b: 3000000000 is out of range "
                "for xsd:int",
                NULL);
    call(t, jq("{'wsdl': '%s', 'operation': 'Add', "
               "'arguments': {'a': 7, 'b': 1, 'c': 2}}",
               stations()));
    expect_fail(t, FERRY_EINVAL, 0,
                "arguments.c: not declared by the schema (the operation's "
                "input has a, b)",
                NULL);
    call(t, jq("{'wsdl': '%s', 'operation': 'SubmitReadings', 'arguments': {"
               "'stationId': 'S1', 'reading': [{'time': 't', 'celsius': 1, "
               "'humidity': 1, 'valid': true}, {'time': 't', 'celsius': 1, "
               "'humidity': 1, 'valid': 'yes'}]}}",
               stations()));
    expect_fail(t, FERRY_EINVAL, 0,
                "arguments.reading[1].valid: expected xsd:boolean (a "
                "boolean), got string \"yes\"",
                NULL);
    call(t, jq("{'wsdl': '%s', 'operation': 'SubmitReadings', 'arguments': {"
               "'stationId': 'S1', 'reading': []}}",
               stations()));
    expect_fail(t, FERRY_EINVAL, 0, "arguments.reading: 0 items, at least 1",
                NULL);
    call(t, jq("{'wsdl': '%s', 'operation': 'SubmitReadings', 'arguments': {"
               "'stationId': ['S1'], 'reading': []}}",
               stations()));
    expect_fail(t, FERRY_EINVAL, 0,
                "arguments.stationId: expected xsd:string (a string), got an "
                "array",
                NULL);
    call(t, jq("{'wsdl': '%s', 'operation': 'SubmitReadings', 'arguments': {"
               "'stationId': 'S1', 'unit': 'kelvin', 'reading': [{'time': "
               "'t', 'celsius': 1, 'humidity': 1, 'valid': true}]}}",
               stations()));
    expect_fail(t, FERRY_EINVAL, 0,
                "arguments.unit: \"kelvin\" is not one of \"celsius\", "
                "\"fahrenheit\" (Unit)",
                NULL);
    call(t, jq("{'wsdl': '%s', 'operation': 'Multiply', "
               "'arguments': {'a': 7, 'b': 1}}",
               stations()));
    expect_fail(t, FERRY_ENOTFOUND, 0,
                "no operation 'Multiply' in the WSDL; operations: Add, Divide, "
                "GetStation, SubmitReadings, SecureEcho",
                NULL);
    json_t *log = server_log(t);
    assert_int_equal(count_requests(log, "POST", "/soap11"), 0);
    assert_int_equal(count_requests(log, "POST", "/soap12"), 0);
    json_decref(log);
}

/* ---- WS-Security ---- */

static void test_wss(void **state) {
    st *t = *state;
    call(t, jq("{'wsdl': '%s', 'operation': 'SecureEcho', "
               "'arguments': {'message': 'hi'}}",
               stations()));
    expect_fail(t, FERRY_EAUTH, 0, "wsse:InvalidSecurity",
                "A UsernameToken is required", NULL);

    /* PasswordDigest (the default) */
    reset_log(t);
    call(t, jq("{'wsdl': '%s', 'operation': 'SecureEcho', "
               "'wss': {'username': 'alice', 'password': 'wonderland'}, "
               "'arguments': {'message': 'hi'}}",
               stations()));
    expect_ok(t);
    assert_json(result(t), "{'user': 'alice', 'passwordType': "
                           "'PasswordDigest', 'message': 'hi'}");
    json_t *log = server_log(t);
    const char *b = req_body(last_request(log, "/soap11"));
    assert_null(strstr(b, "wonderland"));
    assert_non_null(strstr(b, "#PasswordDigest\">"));
    assert_non_null(strstr(b, "<wsse:Nonce EncodingType="));
    assert_non_null(strstr(b, "<wsu:Created>"));
    assert_non_null(strstr(b, "soap:mustUnderstand=\"1\""));
    json_decref(log);

    /* PasswordText on the SOAP 1.2 port */
    call(t, jq("{'wsdl': '%s', 'operation': 'SecureEcho', "
               "'soap_version': '1.2', 'wss': {'username': 'alice', "
               "'password': 'wonderland', 'password_type': 'text'}, "
               "'arguments': {'message': 'hi'}}",
               stations()));
    expect_ok(t);
    assert_json(result(t), "{'user': 'alice', 'passwordType': "
                           "'PasswordText', 'message': 'hi'}");

    /* refused: not retryable, and the password shows nowhere */
    call(t, jq("{'wsdl': '%s', 'operation': 'SecureEcho', "
               "'soap_version': '1.2', 'wss': {'username': 'alice', "
               "'password': 'not-wonderland'}, "
               "'arguments': {'message': 'hi'}}",
               stations()));
    expect_fail(t, FERRY_EAUTH, 0, "HTTP 400",
                "subcode wsse:FailedAuthentication", "Wrong password digest",
                NULL);
    call(t, jq("{'wsdl': '%s', 'operation': 'SecureEcho', "
               "'wss': {'username': 'alice', 'password': 'not-wonderland', "
               "'password_type': 'text'}, 'arguments': {'message': 'hi'}}",
               stations()));
    expect_fail(t, FERRY_EAUTH, 0, "wsse:FailedAuthentication",
                "Wrong password", NULL);
    call(t, jq("{'wsdl': '%s', 'operation': 'SecureEcho', "
               "'wss': {'username': 'alice', 'password': 'x', "
               "'password_type': 'plain'}, 'arguments': {'message': 'hi'}}",
               stations()));
    expect_fail(t, FERRY_EINVAL, 0,
                "wss: password_type must be \"digest\" or \"text\"", NULL);

    /* the soap.wss connection type */
    run(t,
        jq("[{'name': 'r', 'action': 'soap.call', 'connection': 'c', "
           "'input': {'wsdl': '%s', 'operation': 'SecureEcho', "
           "'arguments': {'message': 'from a connection'}}}]",
           stations()),
        "soap.wss",
        jq("{'username': 'alice', 'password': 'wonderland-conn-secret'}"));
    expect_fail(t, FERRY_EAUTH, 0, "Wrong password digest", NULL);
    expect_hidden(t, "wonderland-conn-secret");
    run(t,
        jq("[{'name': 'r', 'action': 'soap.call', 'connection': 'c', "
           "'input': {'wsdl': '%s', 'operation': 'SecureEcho', "
           "'arguments': {'message': 'from a connection'}}}]",
           stations()),
        "soap.wss", jq("{'username': 'alice', 'password': 'wonderland'}"));
    expect_ok(t);
    assert_json(result(t), "{'user': 'alice', 'passwordType': "
                           "'PasswordDigest', 'message': "
                           "'from a connection'}");
}

/* ---- HTTP connections go through the helper ---- */

static void test_http_connections(void **state) {
    st *t = *state;
    char wsdl[160];
    /* a URL of its own: the WSDL is fetched here, not taken from the
     * process's cache */
    snprintf(wsdl, sizeof(wsdl), "%s/stations.wsdl?basic", srv.base);
    reset_log(t);
    run(t,
        jq("[{'name': 'r', 'action': 'soap.call', 'connection': 'c', "
           "'input': {'wsdl': '%s', 'operation': 'Add', "
           "'arguments': {'a': 2, 'b': 2}}}]",
           wsdl),
        "soap.basic", jq("{'username': 'ann', 'password': 'hunter2-secret'}"));
    expect_ok(t);
    expect_hidden(t, "hunter2-secret");
    json_t *log = server_log(t);
    /* the WSDL fetch and the call both carry the credentials */
    assert_string_equal(header(last_request(log, "/soap11"), "authorization"),
                        "Basic YW5uOmh1bnRlcjItc2VjcmV0");
    assert_string_equal(
        header(last_request(log, "/stations.wsdl?basic"), "authorization"),
        "Basic YW5uOmh1bnRlcjItc2VjcmV0");
    json_decref(log);

    reset_log(t);
    json_array_clear(t->token_calls);
    run(t,
        jq("[{'name': 'r', 'action': 'soap.call', 'connection': 'c', "
           "'input': {'wsdl': '%s', 'operation': 'Add', "
           "'soap_version': '1.2', 'arguments': {'a': 2, 'b': 3}}}]",
           stations()),
        "soap.oauth2",
        jq("{'token_url': '%s/token', 'client_id': 'id', "
           "'client_secret': 's'}",
           srv.base));
    expect_ok(t);
    assert_json(result(t), "{'result': 5}");
    assert_true(json_array_size(t->token_calls) >= 1);
    log = server_log(t);
    assert_string_equal(header(last_request(log, "/soap12"), "authorization"),
                        "Bearer access-token-1");
    json_decref(log);
}

/* ---- one parse per process ---- */

static void test_cache(void **state) {
    st *t = *state;
    char other[160];
    /* a URL of its own, so that no earlier test parsed it */
    snprintf(other, sizeof(other), "%s/stations.wsdl?cache-test", srv.base);
    reset_log(t);
    run(t,
        jq("[{'name': 'd', 'action': 'soap.describe', 'input': {'wsdl': '%s'}},"
           " {'name': 'a', 'action': 'soap.call', 'input': {'wsdl': '%s', "
           "'operation': 'Add', 'arguments': {'a': 1, 'b': 1}}},"
           " {'name': 'b', 'action': 'soap.call', 'input': {'wsdl': '%s', "
           "'operation': 'GetStation', 'arguments': {'id': 'S1'}}},"
           " {'name': 'c', 'action': 'soap.call', 'input': {'wsdl': '%s', "
           "'operation': 'Add', 'soap_version': '1.2', "
           "'arguments': {'a': 2, 'b': 2}}}]",
           other, other, other, other),
        NULL, NULL);
    expect_ok(t);
    assert_int_equal(logged(t, "parsed 1 document"), 1);
    assert_int_equal(logged(t, "parsed earlier in this process"), 3);
    json_t *log = server_log(t);
    assert_int_equal(count_requests(log, "GET", "/stations.wsdl?cache-test"),
                     1);
    assert_int_equal(count_requests(log, "POST", "/soap11"), 2);
    assert_int_equal(count_requests(log, "POST", "/soap12"), 1);
    json_decref(log);
}

/* ---- rpc/literal ---- */

static void test_call_rpc(void **state) {
    st *t = *state;
    char wsdl[128];
    snprintf(wsdl, sizeof(wsdl), "%s/library.wsdl", srv.base);
    reset_log(t);
    call(t, jq("{'wsdl': '%s', 'operation': 'Lookup', "
               "'arguments': {'isbn': '978-0', 'copies': 2}}",
               wsdl));
    expect_ok(t);
    assert_json(result(t), "{'title': 'Tides <and> Currents', "
                           "'available': true, 'book': {'@format': 'paper', "
                           "'author': 'N. Bowditch', 'year': 1802, "
                           "'subject': ['navigation', 'sea']}}");
    json_t *log = server_log(t);
    json_t *r = last_request(log, "/rpc");
    assert_string_equal(header(r, "soapaction"),
                        "\"urn:ferry:test:library#Lookup\"");
    /* the wrapper in the body namespace, the parts unqualified */
    assert_non_null(strstr(req_body(r), "<n1:Lookup><isbn>978-0</isbn>"
                                        "<copies>2</copies></n1:Lookup>"));
    assert_non_null(strstr(req_body(r), "xmlns:n1=\"urn:ferry:test:library\""));
    json_decref(log);
    /* xsd:long beyond 32 bits */
    call(t, jq("{'wsdl': '%s', 'operation': 'Count', "
               "'arguments': {'shelf': 'abcde'}}",
               wsdl));
    expect_ok(t);
    assert_json(result(t), "{'count': 5000000000}");
    /* an rpc fault */
    call(t, jq("{'wsdl': '%s', 'operation': 'Lookup', "
               "'arguments': {'isbn': '1', 'copies': 2}}",
               wsdl));
    expect_fail(t, FERRY_EREMOTE, 0, "Unknown ISBN 1", NULL);
}

/* ---- WSDL sources ---- */

static void test_wsdl_sources(void **state) {
    st *t = *state;
    char ep[128];
    snprintf(ep, sizeof(ep), "%s/soap11", srv.base);
    /* a file whose address is a placeholder: endpoint says where */
    call(t, jq("{'wsdl': '%s/stations.wsdl', 'operation': 'Add', "
               "'arguments': {'a': 1, 'b': 1}}",
               SOAP_FIXTURE_DIR));
    expect_fail(t, FERRY_EINVAL, 0,
                "port 'StationsSoap11' has no http(s) "
                "address; give endpoint",
                NULL);
    call(t, jq("{'wsdl': '%s/stations.wsdl', 'operation': 'Add', "
               "'endpoint': '%s', 'arguments': {'a': 1, 'b': 1}}",
               SOAP_FIXTURE_DIR, ep));
    expect_ok(t);
    assert_json(result(t), "{'result': 2}");

    /* the text itself, from a step before */
    run(t,
        jq("[{'name': 'w', 'action': 'http.request', 'input': {'url': '%s', "
           "'as': 'text'}},"
           " {'name': 'r', 'action': 'soap.call', 'input': {"
           "'wsdl': '{{ steps.w.output.body }}', 'operation': 'Add', "
           "'arguments': {'a': 20, 'b': 22}}}]",
           stations()),
        NULL, NULL);
    expect_ok(t);
    assert_json(result(t), "{'result': 42}");

    /* a blob */
    run(t,
        jq("[{'name': 'w', 'action': 'http.request', 'input': {'url': '%s', "
           "'as': 'blob'}},"
           " {'name': 'r', 'action': 'soap.call', 'input': {"
           "'wsdl': '{{ steps.w.output.body }}', 'operation': 'Add', "
           "'arguments': {'a': 1, 'b': 22}}}]",
           stations()),
        NULL, NULL);
    expect_ok(t);
    assert_json(result(t), "{'result': 23}");

    /* failures */
    call(t, jq("{'wsdl': '%s/missing.wsdl', 'operation': 'Add'}", srv.base));
    expect_fail(t, FERRY_ENOTFOUND, 0, "HTTP 404", NULL);
    call(t, jq("{'wsdl': '%s/_log', 'operation': 'Add'}", srv.base));
    expect_fail(t, FERRY_EPARSE, 0, "loading the WSDL", NULL);
    call(t, jq("{'wsdl': '<!DOCTYPE d [<!ENTITY x SYSTEM "
               "\\u0022file:///etc/passwd\\u0022>]><d>&x;</d>', "
               "'operation': 'Add'}"));
    expect_fail(t, FERRY_EUNSUPPORTED, 0, "DOCTYPE", NULL);
    call(t, jq("{'wsdl': 'relative/none.wsdl', 'operation': 'Add'}"));
    expect_fail(t, FERRY_ENOTFOUND, 0, "relative/none.wsdl", NULL);
}

/* ---- soap.request ---- */

static void test_raw_request(void **state) {
    st *t = *state;
    run(t,
        jq("[{'name': 'r', 'action': 'soap.request', 'input': {"
           "'url': '%s/soap11', 'action': 'urn:ferry:test:stations/Add', "
           "'envelope': '<e:Envelope xmlns:e=\\u0022http://schemas.xmlsoap."
           "org/soap/envelope/\\u0022 xmlns:s=\\u0022urn:ferry:test:"
           "stations\\u0022><e:Body><s:Add><s:a>40</s:a><s:b>2</s:b></s:Add>"
           "</e:Body></e:Envelope>'}}]",
           srv.base),
        NULL, NULL);
    expect_ok(t);
    assert_json(json_object_get(t->res.output, "body"),
                "{'AddResponse': {'result': '42'}}");
    assert_non_null(
        json_object_get(json_object_get(t->res.output, "raw"), "$blob"));
    run(t,
        jq("[{'name': 'r', 'action': 'soap.request', 'input': {"
           "'url': '%s/soap12', 'soap_version': '1.2', "
           "'envelope': '<e:Envelope xmlns:e=\\u0022http://www.w3.org/2003/05/"
           "soap-envelope\\u0022 xmlns:s=\\u0022urn:ferry:test:"
           "stations\\u0022><e:Body><s:Divide><s:a>1</s:a><s:b>0</s:b>"
           "</s:Divide></e:Body></e:Envelope>'}}]",
           srv.base),
        NULL, NULL);
    expect_fail(t, FERRY_EREMOTE, 0, "soap:Sender (subcode DivideByZero)",
                "\"dividend\":\"1\"", NULL);
    run(t,
        jq("[{'name': 'r', 'action': 'soap.request', 'input': {"
           "'url': '%s/soap11', 'envelope': '<not closed'}}]",
           srv.base),
        NULL, NULL);
    expect_fail(t, FERRY_EINVAL, 0, "envelope: line 1", NULL);
}

int main(void) {
    struct stat sb;
    if (stat(SOAP_FIXTURE_DIR "/node_modules/soap/package.json", &sb)) {
        printf("skipped: the npm packages of tests/fixtures/soap are not "
               "installed (scripts/npm-deps; needs node 20.19+)\n");
        return 77;
    }
    if (system("node --version >/dev/null 2>&1")) {
        printf("skipped: node is not installed\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_describe_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_describe_orders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_describe_rpc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_typed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_unconverted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_arrays_and_nil, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_rpc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wsdl_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_request, setup, teardown),
    };
    return cmocka_run_group_tests(tests, server_start, server_stop);
}
