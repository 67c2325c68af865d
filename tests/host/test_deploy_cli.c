/*
 * `ferry deploy` and `ferry instances list` as a user runs them: into a
 * deployments directory, and against a host's API, played here by a fake
 * HTTP server on a loopback port that records the request it gets and
 * answers what the test tells it to.
 */
#include "th.h"

#include "cli/cli.h"
#include "host/host.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define INTEGRATION                                                            \
    "{'name': 'sensors', 'version': '1.2.0',"                                  \
    " 'config': {'site': {'type': 'string', 'required': true}},"               \
    " 'flows': [{'name': 'convert', 'steps': [{'name': 'out',"                 \
    "   'action': 'core.set', 'input': {'value': '{{ config.site }}'}}]}]}"

typedef struct fx {
    char *tmp;
    char *components; /* the core component, and one .so that is refused */
    char *dir;        /* deployments */
    char *ig;         /* integration file */
    char *in;         /* instance file */
    char *out, *err;  /* what the last command printed */
} fx;

static int setup(void **state) {
    static const char *const vars[] = {"FERRY_HOST", "FERRY_DEPLOYMENTS",
                                       "FERRY_API_TOKEN",
                                       "FERRY_COMPONENTS_DIR", NULL};
    for (int i = 0; vars[i]; i++)
        unsetenv(vars[i]);
    fx *f = calloc(1, sizeof(*f));
    f->tmp = th_tmpdir();
    f->components = th_path(f->tmp, "components");
    free(th_write(f->components, "broken.so", "not a shared object"));
    f->dir = th_path(f->tmp, "deployments");
    f->ig = th_write_json(f->tmp, "sensors.json", INTEGRATION);
    f->in = th_write_json(f->tmp, "plant-a.json",
                          "{'integration': 'sensors', 'name': 'plant-a',"
                          " 'config': {'site': 'Aachen'}}");
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    free(f->components);
    free(f->dir);
    free(f->ig);
    free(f->in);
    free(f->out);
    free(f->err);
    th_rmrf(f->tmp);
    free(f);
    return 0;
}

/* Runs fn with the NULL-terminated arguments. */
static int run(fx *f, int (*fn)(int, char **), ...) {
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, fn);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 31)
        argv[argc++] = strdup(a);
    va_end(ap);
    argv[argc] = NULL;
    free(f->out);
    free(f->err);
    int rc = th_capture(fn, argc, argv, &f->out, &f->err);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return rc;
}

static void assert_has(const char *s, const char *sub) {
    if (!strstr(s, sub))
        fail_msg("'%s' not in:\n%s", sub, s);
}

/* ---- into a directory ---- */

static void test_deploy_and_list_dir(void **state) {
    fx *f = *state;
    int rc =
        run(f, cli_deploy, "deploy", f->ig, "--instance", f->in,
            "--deployments", f->dir, "--components-dir", f->components, NULL);
    if (rc)
        fail_msg("deploy: %d\n%s", rc, f->err);
    assert_has(f->out, "deployed instance plant-a (integration sensors 1.2.0)");
    /* A component the loader refuses is reported and changes nothing else. */
    assert_has(f->err, "broken.so");
    char *p = th_path(f->dir, "instances/plant-a.json");
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    free(p);

    assert_int_equal(run(f, cli_deploy, "deploy", f->ig, "--instance", f->in,
                         "--deployments", f->dir, "--components-dir",
                         f->components, NULL),
                     0);
    assert_has(f->out, "replaced instance plant-a");

    assert_int_equal(run(f, cli_instances, "instances", "list", "--deployments",
                         f->dir, "--components-dir", f->components, NULL),
                     0);
    assert_has(f->out, "INSTANCE");
    assert_has(f->out, "plant-a");
    assert_has(f->out, "1.2.0");
    assert_has(f->out, "convert (manual)");

    assert_int_equal(run(f, cli_instances, "instances", "list", "--deployments",
                         f->dir, "--components-dir", f->components, "--json",
                         NULL),
                     0);
    json_t *list = json_loads(f->out, 0, NULL);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(list, 0), "instance")),
        "plant-a");
    json_decref(list);

    /* The directory from the environment. */
    setenv("FERRY_DEPLOYMENTS", f->dir, 1);
    assert_int_equal(run(f, cli_instances, "instances", "list",
                         "--components-dir", f->components, NULL),
                     0);
    assert_has(f->out, "plant-a");
    unsetenv("FERRY_DEPLOYMENTS");
}

static void test_deploy_invalid(void **state) {
    fx *f = *state;
    char *bad = th_write_json(f->tmp, "bad.json",
                              "{'integration': 'sensors', 'name': 'bad',"
                              " 'config': {'site': 7}}");
    assert_int_equal(run(f, cli_deploy, "deploy", f->ig, "--instance", bad,
                         "--deployments", f->dir, "--components-dir",
                         f->components, NULL),
                     2);
    char *want = NULL;
    assert_true(
        asprintf(&want, "%s: config.site: 'site' must be string", bad) >= 0);
    assert_has(f->err, want);
    free(want);
    struct stat sb;
    assert_int_equal(stat(f->dir, &sb), -1); /* nothing written */
    free(bad);

    char *broken = th_write(f->tmp, "broken.json", "{\"name\": ");
    assert_int_equal(run(f, cli_deploy, "deploy", broken, "--instance", f->in,
                         "--deployments", f->dir, "--components-dir",
                         f->components, NULL),
                     2);
    assert_true(asprintf(&want, "%s: line 1 column 9: invalid JSON", broken) >=
                0);
    assert_has(f->err, want);
    free(want);
    free(broken);
}

static void test_deploy_refuses_breaking_siblings(void **state) {
    fx *f = *state;
    assert_int_equal(run(f, cli_deploy, "deploy", f->ig, "--instance", f->in,
                         "--deployments", f->dir, "--components-dir",
                         f->components, NULL),
                     0);
    char *ig2 = th_write_json(
        f->tmp, "sensors2.json",
        "{'name': 'sensors', 'version': '2.0.0',"
        " 'config': {'site': {'type': 'string', 'required': true},"
        "            'unit': {'type': 'string', 'required': true}},"
        " 'flows': [{'name': 'convert', 'steps': [{'name': 'out',"
        "   'action': 'core.set', 'input': {'value': 1}}]}]}");
    char *b = th_write_json(f->tmp, "plant-b.json",
                            "{'integration': 'sensors', 'name': 'plant-b',"
                            " 'config': {'site': 'B', 'unit': 'C'}}");
    assert_int_equal(run(f, cli_deploy, "deploy", ig2, "--instance", b,
                         "--deployments", f->dir, "--components-dir",
                         f->components, NULL),
                     2);
    assert_has(f->err, "instances/plant-a.json: config: missing required "
                       "config variable 'unit'");
    assert_has(f->err, "--force");
    char *p = th_path(f->dir, "instances/plant-b.json");
    struct stat sb;
    assert_int_equal(stat(p, &sb), -1);
    assert_int_equal(run(f, cli_deploy, "deploy", ig2, "--instance", b,
                         "--deployments", f->dir, "--components-dir",
                         f->components, "--force", NULL),
                     0);
    assert_int_equal(stat(p, &sb), 0);
    /* plant-a is now skipped, and the listing says so. */
    assert_int_equal(run(f, cli_instances, "instances", "list", "--deployments",
                         f->dir, "--components-dir", f->components, "--json",
                         NULL),
                     0);
    assert_has(f->out, "plant-b");
    assert_null(strstr(f->out, "plant-a"));
    assert_has(f->err, "plant-a.json: config: missing required");
    free(p);
    free(ig2);
    free(b);
}

static void test_usage(void **state) {
    fx *f = *state;
    assert_int_equal(run(f, cli_deploy, "deploy", "--help", NULL), 0);
    assert_has(f->out, "usage: ferry deploy INTEGRATION.json --instance");
    assert_int_equal(run(f, cli_deploy, "deploy", f->ig, NULL), 2);
    assert_has(f->err, "--instance INSTANCE.json is required");
    assert_int_equal(run(f, cli_deploy, "deploy", NULL), 2);
    assert_int_equal(run(f, cli_deploy, "deploy", f->ig, "--instance", f->in,
                         "--bogus", NULL),
                     2);
    assert_int_equal(run(f, cli_deploy, "deploy", f->ig, "--instance", f->in,
                         "--deployments", f->dir, "--host",
                         "http://127.0.0.1:1", NULL),
                     2);
    assert_has(f->err, "not both");
    assert_int_equal(run(f, cli_deploy, "deploy", f->ig, "--instance", f->in,
                         "--host", "http://127.0.0.1:1", NULL),
                     2);
    assert_has(f->err, "--api-token");
    assert_int_equal(run(f, cli_instances, "instances", "--help", NULL), 0);
    assert_has(f->out, "usage: ferry instances list");
    assert_int_equal(run(f, cli_instances, "instances", "list", "--help", NULL),
                     0);
    assert_has(f->out, "--json");
    assert_int_equal(run(f, cli_instances, "instances", NULL), 2);
    assert_int_equal(run(f, cli_instances, "instances", "show", NULL), 2);
    assert_has(f->err, "unknown subcommand 'show'");
}

/* ---- against a host ---- */

typedef struct fake {
    int lfd;
    int port;
    pthread_t th;
    int status;
    const char *body;
    char *request; /* everything received, headers and body */
} fake;

static void *fake_serve(void *ud) {
    fake *k = ud;
    int fd = accept(k->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = calloc(1, cap);
    long want = -1;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        if (want < 0) {
            char *cl = strcasestr(buf, "\r\ncontent-length:");
            want = (long)(end + 4 - buf) + (cl ? atol(cl + 17) : 0);
        }
        if ((long)n >= want)
            break;
    }
    k->request = buf;
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      k->status, strlen(k->body));
    if (write(fd, head, (size_t)hl) < 0 ||
        write(fd, k->body, strlen(k->body)) < 0)
        perror("fake host");
    close(fd);
    return NULL;
}

static void fake_start(fake *k, int status, const char *body) {
    memset(k, 0, sizeof(*k));
    k->status = status;
    k->body = body;
    k->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(k->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(k->lfd, 4), 0);
    socklen_t len = sizeof(sa);
    getsockname(k->lfd, (struct sockaddr *)&sa, &len);
    k->port = ntohs(sa.sin_port);
    pthread_create(&k->th, NULL, fake_serve, k);
}

/* Waits for the one exchange; k->request stays until fake_free. */
static void fake_stop(fake *k) {
    pthread_join(k->th, NULL);
    close(k->lfd);
    if (!k->request)
        k->request = strdup("");
}

static void fake_free(fake *k) {
    free(k->request);
    k->request = NULL;
}

static char *url_of(const fake *k) {
    char *u = NULL;
    assert_true(asprintf(&u, "http://127.0.0.1:%d/", k->port) >= 0);
    return u;
}

static void test_deploy_to_host(void **state) {
    fx *f = *state;
    fake k;
    fake_start(&k, 201, "{\"instance\": \"plant-a\", \"deployed\": true}");
    char *url = url_of(&k);
    int rc =
        run(f, cli_deploy, "deploy", f->ig, "--instance", f->in, "--host", url,
            "--api-token", "s3cret", "--components-dir", f->components, NULL);
    fake_stop(&k);
    if (rc)
        fail_msg("deploy: %d\n%s", rc, f->err);
    assert_has(f->out, "\"deployed\": true");
    assert_has(k.request, "POST /api/v1/instances HTTP/1.1\r\n");
    assert_has(k.request, "Authorization: Bearer s3cret\r\n");
    assert_has(k.request, "Content-Type: application/json\r\n");
    json_t *body = json_loads(strstr(k.request, "\r\n\r\n") + 4, 0, NULL);
    assert_non_null(body);
    json_t *ig = json_load_file(f->ig, 0, NULL);
    json_t *in = json_load_file(f->in, 0, NULL);
    assert_true(json_equal(json_object_get(body, "integration"), ig));
    assert_true(json_equal(json_object_get(body, "instance"), in));
    assert_int_equal(json_object_size(body), 2);
    json_decref(ig);
    json_decref(in);
    json_decref(body);
    free(url);
    fake_free(&k);
    struct stat sb;
    assert_int_equal(stat(f->dir, &sb), -1); /* nothing written locally */
}

static void test_deploy_host_refuses(void **state) {
    fx *f = *state;
    fake k;
    /* The host names the documents "integration" and "instance"; the
     * command names the user's files instead. */
    fake_start(&k, 400,
               "{\"error\": {\"code\": \"invalid\", \"message\": \"invalid "
               "definitions\", \"diagnostics\": [{\"file\": \"instance\", "
               "\"path\": \"config.site\", \"message\": \"'site' must be "
               "string, got integer\"}, {\"file\": \"integration\", \"path\": "
               "\"flows[0].steps[0].action\", \"message\": \"unknown action "
               "'x.y'\"}]}}");
    char *url = url_of(&k);
    setenv("FERRY_API_TOKEN", "from-env", 1);
    setenv("FERRY_HOST", url, 1);
    int rc = run(f, cli_deploy, "deploy", f->ig, "--instance", f->in,
                 "--components-dir", f->components, NULL);
    fake_stop(&k);
    unsetenv("FERRY_API_TOKEN");
    unsetenv("FERRY_HOST");
    assert_int_equal(rc, 2);
    assert_has(k.request, "Authorization: Bearer from-env\r\n");
    char *want = NULL;
    assert_true(asprintf(&want,
                         "%s: config.site: 'site' must be string, got "
                         "integer\n%s: flows[0].steps[0].action: unknown "
                         "action 'x.y'\n",
                         f->in, f->ig) >= 0);
    assert_has(f->err, want);
    free(want);
    fake_free(&k);
    free(url);

    fake_start(&k, 401, "{\"error\": {\"message\": \"unknown token\"}}");
    url = url_of(&k);
    rc = run(f, cli_deploy, "deploy", f->ig, "--instance", f->in, "--host", url,
             "--api-token", "wrong", "--components-dir", f->components, NULL);
    fake_stop(&k);
    assert_int_equal(rc, 1);
    assert_has(f->err, "refused the API token (401): unknown token");
    fake_free(&k);
    free(url);

    fake_start(&k, 500, "oops");
    url = url_of(&k);
    rc = run(f, cli_deploy, "deploy", f->ig, "--instance", f->in, "--host", url,
             "--api-token", "t", "--components-dir", f->components, NULL);
    fake_stop(&k);
    assert_int_equal(rc, 1);
    assert_has(f->err, "answered 500: oops");
    fake_free(&k);
    free(url);
}

static void test_host_unreachable(void **state) {
    fx *f = *state;
    /* A port that was just free: nothing listens there. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s, (struct sockaddr *)&sa, sizeof(sa));
    socklen_t len = sizeof(sa);
    getsockname(s, (struct sockaddr *)&sa, &len);
    close(s);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    assert_int_equal(run(f, cli_deploy, "deploy", f->ig, "--instance", f->in,
                         "--host", url, "--api-token", "t", "--components-dir",
                         f->components, NULL),
                     1);
    assert_has(f->err, "cannot reach");
    assert_int_equal(run(f, cli_instances, "instances", "list", "--host", url,
                         "--api-token", "t", NULL),
                     1);
    assert_has(f->err, "cannot reach");
}

static void test_list_from_host(void **state) {
    fx *f = *state;
    fake k;
    fake_start(&k, 200,
               "[{\"instance\": \"plant-a\", \"integration\": \"sensors\", "
               "\"version\": \"1.2.0\", \"deployed\": "
               "\"2026-11-28T07:00:00.123Z\", \"flows\": [{\"name\": "
               "\"convert\", \"trigger\": \"manual\"}, {\"name\": "
               "\"nightly\", \"trigger\": \"schedule\"}]}]");
    char *url = url_of(&k);
    int rc = run(f, cli_instances, "instances", "list", "--host", url,
                 "--api-token", "tok", NULL);
    fake_stop(&k);
    assert_int_equal(rc, 0);
    assert_has(k.request, "GET /api/v1/instances HTTP/1.1\r\n");
    assert_has(k.request, "Authorization: Bearer tok\r\n");
    assert_has(f->out, "plant-a");
    assert_has(f->out, "2026-11-28 07:00:00");
    assert_has(f->out, "convert (manual), nightly (schedule)");
    fake_free(&k);
    free(url);

    /* {"instances": [...]} is accepted too. */
    fake_start(&k, 200, "{\"instances\": [{\"instance\": \"x\"}]}");
    url = url_of(&k);
    rc = run(f, cli_instances, "instances", "list", "--host", url,
             "--api-token", "tok", "--json", NULL);
    fake_stop(&k);
    assert_int_equal(rc, 0);
    json_t *list = json_loads(f->out, 0, NULL);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    fake_free(&k);
    free(url);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_deploy_and_list_dir),
        T(test_deploy_invalid),
        T(test_deploy_refuses_breaking_siblings),
        T(test_usage),
        T(test_deploy_to_host),
        T(test_deploy_host_refuses),
        T(test_host_unreachable),
        T(test_list_from_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
