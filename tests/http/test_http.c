/*
 * The HTTP server and the metrics registry. Each test starts a server on
 * 127.0.0.1 (a free port) whose loop runs on the loop thread; the test
 * talks to it with libcurl or a plain socket, as a client would, and stops
 * it through a uv_async_t, since the server is only touched on its loop
 * thread.
 *
 * The loop thread is one thread that lives as long as the process, as the
 * host's loop thread does: h2o keeps freed buffers in per-thread caches,
 * which a thread that exits would leave behind (LeakSanitizer reports them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http/http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- the server under test ---- */

typedef struct fixture {
    uv_loop_t loop;
    uv_async_t stop_async;
    int loop_done; /* under runner_mu */
    http_server *srv;
    int port;
    atomic_int done_called;
    atomic_int done_before_return; /* done had run when uv_run returned */
    atomic_int answered;           /* a delayed answer has been sent */
    atomic_int gone_at_answer;     /* http_req_gone() when it was sent */
    int free_in_done;
} fixture;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- handlers ---- */

static void h_hello(void *ud, http_req *r) {
    (void)ud;
    http_respond_json(r, 200, json_pack("{s:s}", "hello", "world"));
}

static json_t *str_or_null(const char *s) {
    return s != NULL ? json_string(s) : json_null();
}

static void h_part(void *ud, http_req *r) {
    (void)ud;
    http_respond_json(r, 200,
                      json_pack("{s:o,s:o,s:s,s:s,s:o}", "id",
                                str_or_null(http_req_param(r, "id")), "part",
                                str_or_null(http_req_param(r, "part")),
                                "method", http_req_method(r), "path",
                                http_req_path(r), "nope",
                                str_or_null(http_req_param(r, "nope"))));
}

static void h_item(void *ud, http_req *r) {
    (void)ud;
    http_respond_json(
        r, 200, json_pack("{s:o}", "id", str_or_null(http_req_param(r, "id"))));
}

static void h_item_delete(void *ud, http_req *r) {
    (void)ud;
    http_respond_text(r, 204, NULL, NULL, 0);
}

static void h_search(void *ud, http_req *r) {
    (void)ud;
    http_respond_json(r, 200,
                      json_pack("{s:o,s:o,s:o,s:o,s:o}", "q",
                                str_or_null(http_req_query(r, "q")), "tag",
                                str_or_null(http_req_query(r, "tag")), "empty",
                                str_or_null(http_req_query(r, "empty")), "flag",
                                str_or_null(http_req_query(r, "flag")),
                                "missing",
                                str_or_null(http_req_query(r, "missing"))));
}

static void h_headers(void *ud, http_req *r) {
    (void)ud;
    http_respond_json(
        r, 200,
        json_pack("{s:o,s:o,s:o}", "multi",
                  str_or_null(http_req_header(r, "x-multi")), "upper",
                  str_or_null(http_req_header(r, "X-Single")), "missing",
                  str_or_null(http_req_header(r, "x-missing"))));
}

static void h_echo(void *ud, http_req *r) {
    (void)ud;
    size_t len;
    const void *body = http_req_body(r, &len);
    http_respond_text(r, 200, "application/octet-stream", body, len);
}

static void h_secret(void *ud, http_req *r) {
    (void)ud;
    http_respond_json(r, 200, json_pack("{s:b}", "secret", 1));
}

typedef struct later {
    uv_timer_t timer;
    http_req *req;
    fixture *fx;
} later;

static void later_closed(uv_handle_t *h) {
    free(h);
}

static void later_fire(uv_timer_t *t) {
    later *l = t->data;
    atomic_store(&l->fx->gone_at_answer, http_req_gone(l->req));
    http_respond_json(l->req, 200, json_pack("{s:b}", "late", 1));
    atomic_store(&l->fx->answered, 1);
    uv_close((uv_handle_t *)t, later_closed);
}

static void answer_later(fixture *fx, http_req *r, uint64_t ms) {
    later *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    l->req = r;
    l->fx = fx;
    uv_timer_init(&fx->loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, later_fire, ms, 0);
}

static void h_slow(void *ud, http_req *r) {
    answer_later(ud, r, 50);
}

static void h_slower(void *ud, http_req *r) {
    answer_later(ud, r, 300);
}

static const http_route routes[] = {
    {"GET", "/hello", 0, h_hello},
    {"GET", "/items/{id}/parts/{part}", 0, h_part},
    {"GET", "/items/{id}", 0, h_item},
    {"DELETE", "/items/{id}", 0, h_item_delete},
    {"GET", "/search", 0, h_search},
    {"GET", "/headers", 0, h_headers},
    {"POST", "/echo", 0, h_echo},
    {"GET", "/secret", 1, h_secret},
    {"GET", "/slow", 0, h_slow},
    {"GET", "/slower", 0, h_slower},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* ---- running the loop ---- */

static void on_done(void *ud) {
    fixture *fx = ud;
    atomic_store(&fx->done_called, 1);
    /* Freeing from inside done is allowed. */
    if (fx->free_in_done) {
        http_server_free(fx->srv);
        fx->srv = NULL;
    }
}

static void on_stop_async(uv_async_t *a) {
    fixture *fx = a->data;
    http_server_stop(fx->srv, on_done, fx);
    uv_close((uv_handle_t *)a, NULL);
}

static pthread_mutex_t runner_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t runner_cv = PTHREAD_COND_INITIALIZER;
static fixture *runner_job;

/* The loop thread: runs one fixture's loop at a time until it runs dry. */
static void *runner_main(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&runner_mu);
        while (runner_job == NULL)
            pthread_cond_wait(&runner_cv, &runner_mu);
        fixture *fx = runner_job;
        runner_job = NULL;
        pthread_mutex_unlock(&runner_mu);

        uv_run(&fx->loop, UV_RUN_DEFAULT);
        atomic_store(&fx->done_before_return, atomic_load(&fx->done_called));

        pthread_mutex_lock(&runner_mu);
        fx->loop_done = 1;
        pthread_cond_broadcast(&runner_cv);
        pthread_mutex_unlock(&runner_mu);
    }
    return NULL;
}

static void run_loop_on_runner(fixture *fx) {
    static int started;
    static pthread_t runner;
    pthread_mutex_lock(&runner_mu);
    if (!started) {
        if (pthread_create(&runner, NULL, runner_main, NULL) != 0)
            abort();
        started = 1;
    }
    runner_job = fx;
    pthread_cond_broadcast(&runner_cv);
    pthread_mutex_unlock(&runner_mu);
}

static void wait_loop_done(fixture *fx) {
    pthread_mutex_lock(&runner_mu);
    while (!fx->loop_done)
        pthread_cond_wait(&runner_cv, &runner_mu);
    pthread_mutex_unlock(&runner_mu);
}

static fixture *fx_start(const http_config *cfg) {
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    char *err = NULL;
    fx->srv = http_server_start(&fx->loop, cfg, routes, NROUTES, fx, &err);
    if (fx->srv == NULL)
        fail_msg("http_server_start: %s", err ? err : "?");
    fx->port = http_server_port(fx->srv);
    assert_true(fx->port > 0);
    uv_async_init(&fx->loop, &fx->stop_async, on_stop_async);
    fx->stop_async.data = fx;
    run_loop_on_runner(fx);
    return fx;
}

static fixture *fx_start_plain(void) {
    http_config cfg = {.host = "127.0.0.1", .port = 0};
    return fx_start(&cfg);
}

/* Stops the server, waits for the loop to run dry and checks that nothing
 * was left behind. Returns how long the stop took, in ms. */
static double fx_stop(fixture *fx) {
    double t0 = now_ms();
    uv_async_send(&fx->stop_async);
    wait_loop_done(fx);
    double took = now_ms() - t0;
    assert_true(atomic_load(&fx->done_called));
    assert_true(atomic_load(&fx->done_before_return));
    http_server_free(fx->srv); /* NULL if done freed it */
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
    return took;
}

/* ---- a libcurl client ---- */

typedef struct resp {
    CURLcode rc;
    long status;
    long version;
    char *body;
    size_t len;
    char *hdrs;
    size_t hlen;
} resp;

typedef struct reqopt {
    const char *method;
    const char *path;
    const char *const *headers; /* NULL-terminated */
    const void *body;
    size_t blen;
    long timeout_ms;
    long http_version; /* CURL_HTTP_VERSION_*; 0: libcurl's default */
    int https;
    const char *cainfo;
} reqopt;

static void buf_append(char **p, size_t *len, const char *data, size_t n) {
    char *q = realloc(*p, *len + n + 1);
    assert_non_null(q);
    memcpy(q + *len, data, n);
    *len += n;
    q[*len] = '\0';
    *p = q;
}

static size_t on_body(char *data, size_t sz, size_t n, void *ud) {
    resp *r = ud;
    buf_append(&r->body, &r->len, data, sz * n);
    return sz * n;
}

static size_t on_header(char *data, size_t sz, size_t n, void *ud) {
    resp *r = ud;
    buf_append(&r->hdrs, &r->hlen, data, sz * n);
    return sz * n;
}

static void do_req(const fixture *fx, const reqopt *o, resp *out) {
    memset(out, 0, sizeof(*out));
    buf_append(&out->body, &out->len, "", 0);
    buf_append(&out->hdrs, &out->hlen, "", 0);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512];
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d%s",
             o->https ? "https" : "http", fx->port, o->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                     o->timeout_ms ? o->timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (o->http_version)
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, o->http_version);
    if (o->cainfo != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->cainfo);
    const char *method = o->method ? o->method : "GET";
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (o->body != NULL || strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, o->body ? o->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->blen);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    struct curl_slist *hl = NULL;
    for (size_t i = 0; o->headers && o->headers[i]; i++)
        hl = curl_slist_append(hl, o->headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    out->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &out->version);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
}

static void resp_free(resp *r) {
    free(r->body);
    free(r->hdrs);
}

static resp get(const fixture *fx, const char *path) {
    reqopt o = {.path = path};
    resp r;
    do_req(fx, &o, &r);
    assert_int_equal(r.rc, CURLE_OK);
    return r;
}

/* The value of a header in the final response (after any 100 Continue),
 * copied into buf; NULL if absent. */
static const char *resp_header(const resp *r, const char *name, char *buf,
                               size_t cap) {
    const char *block = r->hdrs, *p = r->hdrs;
    while ((p = strstr(p, "HTTP/")) != NULL) {
        if (p == r->hdrs || p[-1] == '\n')
            block = p;
        p++;
    }
    size_t n = strlen(name);
    for (const char *line = block; *line;) {
        const char *eol = strchr(line, '\n');
        size_t llen = eol ? (size_t)(eol - line) : strlen(line);
        if (llen > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            size_t vlen = (size_t)(line + llen - v);
            while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
                vlen--;
            if (vlen >= cap)
                vlen = cap - 1;
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            return buf;
        }
        if (!eol)
            break;
        line = eol + 1;
    }
    return NULL;
}

static json_t *resp_json(const resp *r) {
    json_error_t e;
    json_t *j = json_loadb(r->body, r->len, 0, &e);
    if (j == NULL)
        fail_msg("not JSON (%s): %.*s", e.text, (int)r->len, r->body);
    return j;
}

static void assert_json_str(json_t *j, const char *key, const char *want) {
    json_t *v = json_object_get(j, key);
    if (want == NULL) {
        assert_true(json_is_null(v));
        return;
    }
    assert_true(json_is_string(v));
    assert_string_equal(json_string_value(v), want);
}

/* Checks the {"error": {"status": N, "message": ...}} shape and returns the
 * message (borrowed from j). */
static const char *assert_error(const resp *r, int status, json_t **j) {
    char buf[128];
    assert_int_equal(r->status, status);
    assert_non_null(resp_header(r, "content-type", buf, sizeof(buf)));
    assert_string_equal(buf, "application/json");
    *j = resp_json(r);
    json_t *e = json_object_get(*j, "error");
    assert_true(json_is_object(e));
    assert_int_equal(json_integer_value(json_object_get(e, "status")), status);
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(msg);
    return msg;
}

/* ---- tests ---- */

static void test_routing_and_params(void **state) {
    (void)state;
    fixture *fx = fx_start_plain();

    resp r = get(fx, "/hello");
    assert_int_equal(r.status, 200);
    json_t *j = resp_json(&r);
    assert_json_str(j, "hello", "world");
    json_decref(j);
    resp_free(&r);

    /* Captures are percent-decoded; '+' is literal in a path. */
    r = get(fx, "/items/a%20b%2Fc/parts/x+y%C3%A9");
    assert_int_equal(r.status, 200);
    j = resp_json(&r);
    assert_json_str(j, "id", "a b/c");
    assert_json_str(j, "part", "x+y\xc3\xa9");
    assert_json_str(j, "method", "GET");
    assert_json_str(j, "path", "/items/a%20b%2Fc/parts/x+y%C3%A9");
    assert_json_str(j, "nope", NULL);
    json_decref(j);
    resp_free(&r);

    /* A shorter pattern is a different route; order decides. */
    r = get(fx, "/items/42");
    assert_int_equal(r.status, 200);
    j = resp_json(&r);
    assert_json_str(j, "id", "42");
    json_decref(j);
    resp_free(&r);

    /* An encoded literal segment still matches. */
    r = get(fx, "/%68ello");
    assert_int_equal(r.status, 200);
    resp_free(&r);

    /* 204 has neither body nor Content-Length. */
    reqopt o = {.method = "DELETE", .path = "/items/42"};
    do_req(fx, &o, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.len, 0);
    char buf[64];
    assert_null(resp_header(&r, "content-length", buf, sizeof(buf)));
    resp_free(&r);

    fx_stop(fx);
}

static void test_query(void **state) {
    (void)state;
    fixture *fx = fx_start_plain();
    resp r = get(fx, "/search?q=hello+world%21&tag=a%26b&empty=&flag&&q="
                     "second");
    assert_int_equal(r.status, 200);
    json_t *j = resp_json(&r);
    assert_json_str(j, "q", "hello world!"); /* the first one wins */
    assert_json_str(j, "tag", "a&b");
    assert_json_str(j, "empty", "");
    assert_json_str(j, "flag", "");
    assert_json_str(j, "missing", NULL);
    json_decref(j);
    resp_free(&r);

    r = get(fx, "/search");
    j = resp_json(&r);
    assert_json_str(j, "q", NULL);
    json_decref(j);
    resp_free(&r);

    r = get(fx, "/search?q=%zz");
    const char *msg = assert_error(&r, 400, &j);
    assert_non_null(strstr(msg, "escape"));
    json_decref(j);
    resp_free(&r);

    r = get(fx, "/search?q=a%00b");
    assert_int_equal(r.status, 400);
    resp_free(&r);
    fx_stop(fx);
}

static void test_headers(void **state) {
    (void)state;
    fixture *fx = fx_start_plain();
    const char *hdrs[] = {"X-Multi: one", "X-Multi: two", "X-Single: s", NULL};
    reqopt o = {.path = "/headers", .headers = hdrs};
    resp r;
    do_req(fx, &o, &r);
    assert_int_equal(r.status, 200);
    json_t *j = resp_json(&r);
    assert_json_str(j, "multi", "one, two");
    assert_json_str(j, "upper", "s");
    assert_json_str(j, "missing", NULL);
    json_decref(j);
    resp_free(&r);
    fx_stop(fx);
}

static void test_404_405_400(void **state) {
    (void)state;
    fixture *fx = fx_start_plain();
    json_t *j;
    char buf[128];

    resp r = get(fx, "/nope");
    const char *msg = assert_error(&r, 404, &j);
    assert_non_null(strstr(msg, "/nope"));
    json_decref(j);
    resp_free(&r);

    /* No trailing-slash leniency, no empty captures. */
    r = get(fx, "/hello/");
    assert_int_equal(r.status, 404);
    resp_free(&r);
    r = get(fx, "/items//parts/x");
    assert_int_equal(r.status, 404);
    resp_free(&r);

    reqopt o = {.method = "POST", .path = "/hello"};
    do_req(fx, &o, &r);
    assert_error(&r, 405, &j);
    json_decref(j);
    assert_non_null(resp_header(&r, "allow", buf, sizeof(buf)));
    assert_string_equal(buf, "GET, HEAD");
    resp_free(&r);

    o = (reqopt){.method = "PUT", .path = "/items/7"};
    do_req(fx, &o, &r);
    assert_int_equal(r.status, 405);
    assert_non_null(resp_header(&r, "allow", buf, sizeof(buf)));
    assert_string_equal(buf, "GET, HEAD, DELETE");
    resp_free(&r);

    /* HEAD is answered by the GET route, with the length but no body. */
    o = (reqopt){.method = "HEAD", .path = "/hello"};
    do_req(fx, &o, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    assert_non_null(resp_header(&r, "content-length", buf, sizeof(buf)));
    assert_string_equal(buf, "17");
    resp_free(&r);

    r = get(fx, "/items/%2e%2E/parts/x");
    msg = assert_error(&r, 400, &j);
    assert_non_null(strstr(msg, ".."));
    json_decref(j);
    resp_free(&r);
    r = get(fx, "/items/../hello");
    assert_int_equal(r.status, 400);
    resp_free(&r);
    r = get(fx, "/items/a%zz");
    assert_int_equal(r.status, 400);
    resp_free(&r);
    fx_stop(fx);
}

static void test_auth(void **state) {
    (void)state;
    const char *tokens[] = {"tok-one", "tok-two-longer"};
    http_config cfg = {.host = "127.0.0.1", .api_tokens = tokens, .ntokens = 2};
    fixture *fx = fx_start(&cfg);
    json_t *j;
    char buf[128];
    resp r;

    r = get(fx, "/secret");
    assert_error(&r, 401, &j);
    json_decref(j);
    assert_non_null(resp_header(&r, "www-authenticate", buf, sizeof(buf)));
    assert_string_equal(buf, "Bearer");
    resp_free(&r);

    const char *wrong[] = {"Authorization: Bearer tok-onf", NULL};
    reqopt o = {.path = "/secret", .headers = wrong};
    do_req(fx, &o, &r);
    assert_error(&r, 401, &j);
    json_decref(j);
    assert_non_null(resp_header(&r, "www-authenticate", buf, sizeof(buf)));
    assert_true(strncmp(buf, "Bearer", 6) == 0);
    resp_free(&r);

    const char *prefix[] = {"Authorization: Bearer tok-on", NULL};
    o.headers = prefix;
    do_req(fx, &o, &r);
    assert_int_equal(r.status, 401);
    resp_free(&r);

    const char *basic[] = {"Authorization: Basic dG9rLW9uZTo=", NULL};
    o.headers = basic;
    do_req(fx, &o, &r);
    assert_int_equal(r.status, 401);
    resp_free(&r);

    const char *right[] = {"Authorization: Bearer tok-one", NULL};
    o.headers = right;
    do_req(fx, &o, &r);
    assert_int_equal(r.status, 200);
    j = resp_json(&r);
    assert_true(json_is_true(json_object_get(j, "secret")));
    json_decref(j);
    resp_free(&r);

    const char *second[] = {"Authorization: bearer   tok-two-longer ", NULL};
    o.headers = second;
    do_req(fx, &o, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    /* Routes without auth need no token. */
    r = get(fx, "/hello");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    fx_stop(fx);
}

static void test_auth_without_tokens(void **state) {
    (void)state;
    fixture *fx = fx_start_plain();
    const char *hdr[] = {"Authorization: Bearer anything", NULL};
    reqopt o = {.path = "/secret", .headers = hdr};
    resp r;
    json_t *j;
    do_req(fx, &o, &r);
    const char *msg = assert_error(&r, 401, &j);
    assert_non_null(strstr(msg, "no API token is configured"));
    json_decref(j);
    char buf[64];
    assert_non_null(resp_header(&r, "www-authenticate", buf, sizeof(buf)));
    resp_free(&r);

    r = get(fx, "/hello");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    fx_stop(fx);
}

static void test_json_content_length(void **state) {
    (void)state;
    fixture *fx = fx_start_plain();
    reqopt o = {.path = "/hello", .http_version = CURL_HTTP_VERSION_1_1};
    resp r;
    do_req(fx, &o, &r);
    assert_int_equal(r.status, 200);
    char buf[128];
    assert_string_equal(r.body, "{\"hello\":\"world\"}");
    assert_non_null(resp_header(&r, "content-length", buf, sizeof(buf)));
    assert_int_equal(strtol(buf, NULL, 10), r.len);
    assert_null(resp_header(&r, "transfer-encoding", buf, sizeof(buf)));
    assert_non_null(resp_header(&r, "content-type", buf, sizeof(buf)));
    assert_string_equal(buf, "application/json");
    assert_non_null(strstr(r.hdrs, "HTTP/1.1 200 OK\r\n"));
    resp_free(&r);
    fx_stop(fx);
}

static void test_post_1mb(void **state) {
    (void)state;
    fixture *fx = fx_start_plain();
    size_t n = 1024 * 1024;
    unsigned char *data = malloc(n);
    assert_non_null(data);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (unsigned char)(x >> 16);
    }
    reqopt o = {.method = "POST", .path = "/echo", .body = data, .blen = n};
    resp r;
    do_req(fx, &o, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, n);
    assert_memory_equal(r.body, data, n);
    resp_free(&r);

    /* An empty POST has no body. */
    o = (reqopt){.method = "POST", .path = "/echo"};
    do_req(fx, &o, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    resp_free(&r);
    free(data);
    fx_stop(fx);
}

static void test_413(void **state) {
    (void)state;
    http_config cfg = {.host = "127.0.0.1", .max_body = 64 * 1024};
    fixture *fx = fx_start(&cfg);
    size_t n = 100 * 1024;
    char *data = calloc(1, n);
    assert_non_null(data);
    const char *expect[] = {"Expect: 100-continue", NULL};
    reqopt o = {.method = "POST",
                .path = "/echo",
                .body = data,
                .blen = n,
                .headers = expect};
    resp r;
    do_req(fx, &o, &r);
    assert_int_equal(r.status, 413);
    resp_free(&r);

    /* Right at the limit is fine. */
    o.blen = 64 * 1024;
    do_req(fx, &o, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 64 * 1024);
    resp_free(&r);
    free(data);
    fx_stop(fx);
}

static void test_async_answer(void **state) {
    (void)state;
    fixture *fx = fx_start_plain();
    double t0 = now_ms();
    resp r = get(fx, "/slow");
    double took = now_ms() - t0;
    assert_int_equal(r.status, 200);
    assert_true(took >= 45);
    json_t *j = resp_json(&r);
    assert_true(json_is_true(json_object_get(j, "late")));
    json_decref(j);
    resp_free(&r);
    assert_int_equal(atomic_load(&fx->gone_at_answer), 0);
    fx_stop(fx);
}

static void wait_answered(fixture *fx) {
    for (int i = 0; i < 300 && !atomic_load(&fx->answered); i++)
        sleep_ms(10);
    assert_true(atomic_load(&fx->answered));
}

/* HTTP/1.1: h2o does not read while the request is handled, so the answer
 * is written to a closed socket; that must cost nothing. */
static void test_client_gone_http1(void **state) {
    (void)state;
    fixture *fx = fx_start_plain();
    reqopt o = {.path = "/slower",
                .timeout_ms = 100,
                .http_version = CURL_HTTP_VERSION_1_1};
    resp r;
    do_req(fx, &o, &r);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    resp_free(&r);
    wait_answered(fx);

    r = get(fx, "/hello");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    fx_stop(fx);
}

/* HTTP/2: the closed connection disposes of the request at once; the late
 * answer sees it gone and only releases it. */
static void test_client_gone_http2(void **state) {
    (void)state;
    if (!(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2))
        skip();
    fixture *fx = fx_start_plain();
    reqopt o = {.path = "/slower",
                .timeout_ms = 100,
                .http_version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE};
    resp r;
    do_req(fx, &o, &r);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    resp_free(&r);
    wait_answered(fx);
    assert_int_equal(atomic_load(&fx->gone_at_answer), 1);

    o = (reqopt){.path = "/hello",
                 .http_version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE};
    do_req(fx, &o, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.version, CURL_HTTP_VERSION_2_0);
    resp_free(&r);
    fx_stop(fx);
}

static int connect_loopback(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Reads one response with a Content-Length body; returns its status. */
static int read_response(int fd) {
    char buf[4096];
    size_t len = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        assert_true(n > 0);
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        char *cl = strcasestr(buf, "content-length:");
        assert_non_null(cl);
        size_t want = (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10);
        if (len >= want)
            break;
    }
    return atoi(buf + 9);
}

static void test_stop_with_idle_keepalive(void **state) {
    (void)state;
    http_config cfg = {.host = "127.0.0.1", .idle_timeout_ms = 300};
    fixture *fx = fx_start(&cfg);
    int fd = connect_loopback(fx->port);
    const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof(req) - 1, 0), sizeof(req) - 1);
    assert_int_equal(read_response(fd), 200);

    /* The connection is idle and kept alive; stop closes it within the
     * idle timeout, calls done, and the loop runs dry. */
    fx->free_in_done = 1;
    double took = fx_stop(fx);
    assert_true(took < 2000);
    char c;
    assert_int_equal(recv(fd, &c, 1, 0), 0);
    close(fd);
}

/* An idle HTTP/2 connection gets GOAWAY and closes at the idle timeout;
 * the re-send timer h2o links for GOAWAY must not trip the dispose. */
static void test_stop_with_idle_http2(void **state) {
    (void)state;
    if (!(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2))
        skip();
    http_config cfg = {.host = "127.0.0.1", .idle_timeout_ms = 300};
    fixture *fx = fx_start(&cfg);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hello", fx->port);
    resp r = {0};
    buf_append(&r.body, &r.len, "", 0);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION,
                     (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    assert_int_equal(r.status, 200);

    /* The easy handle keeps its connection open while the server stops. */
    double took = fx_stop(fx);
    assert_true(took < 3000);
    curl_easy_cleanup(c);
    resp_free(&r);
}

typedef struct client_arg {
    fixture *fx;
    long status;
    CURLcode rc;
} client_arg;

static void *client_slow(void *p) {
    client_arg *a = p;
    reqopt o = {.path = "/slower"};
    resp r;
    do_req(a->fx, &o, &r);
    a->rc = r.rc;
    a->status = r.status;
    resp_free(&r);
    return NULL;
}

static void test_stop_waits_for_inflight(void **state) {
    (void)state;
    fixture *fx = fx_start_plain();
    client_arg a = {.fx = fx};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_slow, &a), 0);
    sleep_ms(100);
    double took = fx_stop(fx); /* frees fx once the loop has run dry */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.rc, CURLE_OK);
    assert_int_equal(a.status, 200);
    /* Answered at 300 ms; the connection closes with the answer instead
     * of idling until the (10 s) idle timeout. */
    assert_true(took > 100 && took < 3000);
}

static void test_start_errors(void **state) {
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    fixture *fx = fx_start_plain();
    char *err = NULL;

    http_config busy = {.host = "127.0.0.1", .port = fx->port};
    assert_null(http_server_start(&loop, &busy, routes, NROUTES, NULL, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "cannot listen"));
    free(err);

    http_config bad_host = {.host = "not-an-address"};
    assert_null(
        http_server_start(&loop, &bad_host, routes, NROUTES, NULL, &err));
    assert_non_null(strstr(err, "not-an-address"));
    free(err);

    http_config no_key = {.host = "127.0.0.1", .tls_cert = "/nonexistent"};
    assert_null(http_server_start(&loop, &no_key, routes, NROUTES, NULL, &err));
    free(err);

    http_config bad_cert = {.host = "127.0.0.1",
                            .tls_cert = "/nonexistent/cert.pem",
                            .tls_key = "/nonexistent/key.pem"};
    assert_null(
        http_server_start(&loop, &bad_cert, routes, NROUTES, NULL, &err));
    assert_non_null(strstr(err, "/nonexistent/cert.pem"));
    free(err);

    fx_stop(fx);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_tls(void **state) {
    (void)state;
    const char *tmp = getenv("TMPDIR");
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/ferry-http-tls-XXXXXX",
             tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    char cmd[1024], cert[300], key[300];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
             "-nodes -days 1 -subj /CN=localhost "
             "-addext subjectAltName=IP:127.0.0.1,DNS:localhost "
             "-keyout %s -out %s 2>/dev/null",
             key, cert);
    assert_int_equal(system(cmd), 0);

    http_config cfg = {.host = "127.0.0.1", .tls_cert = cert, .tls_key = key};
    fixture *fx = fx_start(&cfg);

    /* Verified against the generated certificate, ALPN picks h2. */
    reqopt o = {.path = "/hello", .https = 1, .cainfo = cert};
    resp r;
    do_req(fx, &o, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"hello\":\"world\"}");
    if (curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2)
        assert_int_equal(r.version, CURL_HTTP_VERSION_2_0);
    resp_free(&r);

    o.http_version = CURL_HTTP_VERSION_1_1;
    do_req(fx, &o, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.version, CURL_HTTP_VERSION_1_1);
    resp_free(&r);

    /* Plain HTTP on the TLS port gets no answer. */
    o = (reqopt){.path = "/hello", .timeout_ms = 2000};
    do_req(fx, &o, &r);
    assert_int_not_equal(r.rc, CURLE_OK);
    resp_free(&r);

    fx_stop(fx);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

static void test_metrics_render(void **state) {
    (void)state;
    metrics *m = metrics_new();
    static const double buckets[] = {0.1, 0.5, 1};
    metrics_declare(m, "ferry_http_requests_total", "counter",
                    "HTTP requests answered.", NULL, 0);
    metrics_declare(m, "ferry_queue_depth", "gauge",
                    "Executions waiting.\nMultiline \\ help.", NULL, 0);
    metrics_declare(m, "ferry_step_seconds", "histogram", "Step duration.",
                    buckets, 3);
    /* Ignored: a second declaration, a bad name, a bad type. */
    metrics_declare(m, "ferry_queue_depth", "counter", "x", NULL, 0);
    metrics_declare(m, "bad-name", "counter", "x", NULL, 0);
    metrics_declare(m, "ferry_x", "summary", "x", NULL, 0);

    metrics_add(m, "ferry_http_requests_total", 1, "status", "200", "route",
                "/hello", NULL);
    metrics_add(m, "ferry_http_requests_total", 2, "route", "/hello", "status",
                "200", NULL);
    metrics_add(m, "ferry_http_requests_total", 1, "route", "/a\"b\\c\nd",
                "status", "404", NULL);
    metrics_add(m, "ferry_http_requests_total", 1, "route", "/a", "status",
                "500", NULL);
    metrics_add(m, "ferry_http_requests_total", -1, "route", "/a", "status",
                "500", NULL); /* counters only go up */
    metrics_add(m, "ferry_undeclared", 1, NULL);
    metrics_observe(m, "ferry_http_requests_total", 1, NULL);

    metrics_set(m, "ferry_queue_depth", 7, NULL);
    metrics_add(m, "ferry_queue_depth", -2.5, NULL);

    /* Binary fractions, so that the sum is exact. */
    metrics_observe(m, "ferry_step_seconds", 0.0625, "component", "sftp", NULL);
    metrics_observe(m, "ferry_step_seconds", 0.125, "component", "sftp", NULL);
    metrics_observe(m, "ferry_step_seconds", 0.75, "component", "sftp", NULL);
    metrics_observe(m, "ferry_step_seconds", 3, "component", "sftp", NULL);
    metrics_observe(m, "ferry_step_seconds", 0.25, NULL);
    metrics_observe(m, "ferry_step_seconds", 1, "le", "x", NULL); /* bad */

    size_t len = 0;
    char *text = metrics_render(m, &len);
    const char *want =
        "# HELP ferry_http_requests_total HTTP requests answered.\n"
        "# TYPE ferry_http_requests_total counter\n"
        "ferry_http_requests_total{route=\"/a\",status=\"500\"} 1\n"
        "ferry_http_requests_total{route=\"/a\\\"b\\\\c\\nd\",status=\"404\"}"
        " 1\n"
        "ferry_http_requests_total{route=\"/hello\",status=\"200\"} 3\n"
        "# HELP ferry_queue_depth Executions waiting.\\nMultiline \\\\ "
        "help.\n"
        "# TYPE ferry_queue_depth gauge\n"
        "ferry_queue_depth 4.5\n"
        "# HELP ferry_step_seconds Step duration.\n"
        "# TYPE ferry_step_seconds histogram\n"
        "ferry_step_seconds_bucket{le=\"0.1\"} 0\n"
        "ferry_step_seconds_bucket{le=\"0.5\"} 1\n"
        "ferry_step_seconds_bucket{le=\"1\"} 1\n"
        "ferry_step_seconds_bucket{le=\"+Inf\"} 1\n"
        "ferry_step_seconds_sum 0.25\n"
        "ferry_step_seconds_count 1\n"
        "ferry_step_seconds_bucket{component=\"sftp\",le=\"0.1\"} 1\n"
        "ferry_step_seconds_bucket{component=\"sftp\",le=\"0.5\"} 2\n"
        "ferry_step_seconds_bucket{component=\"sftp\",le=\"1\"} 3\n"
        "ferry_step_seconds_bucket{component=\"sftp\",le=\"+Inf\"} 4\n"
        "ferry_step_seconds_sum{component=\"sftp\"} 3.9375\n"
        "ferry_step_seconds_count{component=\"sftp\"} 4\n";
    assert_non_null(text);
    assert_string_equal(text, want);
    assert_int_equal(len, strlen(want));
    free(text);
    metrics_free(m);

    m = metrics_new();
    text = metrics_render(m, &len);
    assert_string_equal(text, "");
    assert_int_equal(len, 0);
    free(text);
    metrics_free(m);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing_and_params),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_404_405_400),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_auth_without_tokens),
        cmocka_unit_test(test_json_content_length),
        cmocka_unit_test(test_post_1mb),
        cmocka_unit_test(test_413),
        cmocka_unit_test(test_async_answer),
        cmocka_unit_test(test_client_gone_http1),
        cmocka_unit_test(test_client_gone_http2),
        cmocka_unit_test(test_stop_with_idle_keepalive),
        cmocka_unit_test(test_stop_with_idle_http2),
        cmocka_unit_test(test_stop_waits_for_inflight),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_metrics_render),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
