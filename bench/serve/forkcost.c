/*
 * The cost of the fork behind every `ferry serve` execution: fork, the
 * child's exit, and the parent's waitpid, timed in the parent, from a
 * process in the state of a zygote, next to the same from a tiny process
 * (serve_forkcost_tiny, a baseline measured in rounds interleaved with
 * these so that both see the same machine).
 *
 * Three states of this process, in this order (each one adds to the last):
 *   loaded  flow_load_registry on the components directory; the program is
 *           linked like the ferry binary (ferry_cli), so it maps the same
 *           libraries as a zygote: libjq, jansson, SQLite, libuv, h2o,
 *           OpenSSL, libcurl and what they pull in;
 *   zygote  the benchmark integration compiled, as the zygote's cache holds
 *           it after the first spawn (a zygote never runs a flow itself);
 *   worker  the child runs the real worker (exec_worker_main) on a spawn
 *           request like the host's, streaming its frames to a socketpair,
 *           before it exits: the whole cost of one isolated execution
 *           except the host's side. (This zygote has served no spawn
 *           requests: its heap is not fragmented as a real one's, see
 *           docs/bench.md.)
 *
 * Built twice: serve_forkcost, linked like the ferry binary, and
 * serve_forkcost_lean (FORKCOST_LEAN), linked as ferry-zygote is (the
 * engine and the worker, without the HTTP client): what the real zygote
 * maps.
 *
 * usage: serve_forkcost[_lean] [--n N] [--round R] [--components-dir DIR]
 *                       [--defs DIR] [--tiny PATH]
 * --n (2000): forks per state; --round (100): forks per round, alternating
 * with a round of the baseline.
 */
#include "exec/exec.h"
#include "flow/flow.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FORKCOST_COMPONENTS_DIR
#define FORKCOST_COMPONENTS_DIR "build-bench/components"
#endif
#ifndef FORKCOST_DEFS_DIR
#define FORKCOST_DEFS_DIR "bench/serve"
#endif
#ifndef FORKCOST_TINY
#define FORKCOST_TINY "build-bench/bench/serve_forkcost_tiny"
#endif
#ifndef FORKCOST_BUILD_TYPE
#define FORKCOST_BUILD_TYPE ""
#endif

#ifdef FORKCOST_LEAN
#define VARIANT "lean"
#define VARIANT_TEXT "linked as ferry-zygote is (the engine, no HTTP client)"
#else
#define VARIANT "ferry"
#define VARIANT_TEXT                                                           \
    "linked like the ferry binary (the zygote before it had an executable of " \
    "its own)"
#endif

#define TARGET_WORKER_US 1000.0

/* In ferry_exec (core/exec/worker.c); the zygote declares it the same way. */
int exec_worker_main(const abi_registry *reg, const flow_integration *ig,
                     json_t *spawn, int sock);

extern char **environ;

_Noreturn static void die(const char *fmt, ...) FERRY_PRINTF(1, 2);
_Noreturn static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("serve_forkcost: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t tv_ns(struct timeval u, struct timeval s) {
    return ((int64_t)u.tv_sec + s.tv_sec) * 1000000000 +
           ((int64_t)u.tv_usec + s.tv_usec) * 1000;
}

static int64_t cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return tv_ns(ru.ru_utime, ru.ru_stime);
}

static int full_read(int fd, void *p, size_t n) {
    char *c = p;
    while (n) {
        ssize_t k = read(fd, c, n);
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int full_write(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* VmRSS in KiB and the number of mappings of this process. */
static void self_size(int64_t out[2]) {
    out[0] = out[1] = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6))
            out[0] = strtoll(line + 6, NULL, 10);
    if (f)
        fclose(f);
    f = fopen("/proc/self/maps", "r");
    int c;
    while (f && (c = fgetc(f)) != EOF)
        out[1] += c == '\n';
    if (f)
        fclose(f);
}

/* ---- samples ---- */

typedef struct samples {
    int64_t *v;
    size_t n, cap;
} samples;

static void add(samples *s, int64_t x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        if (!s->v)
            die("out of memory");
    }
    s->v[s->n++] = x;
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct stats {
    double median, p99, mean, max; /* us */
} stats;

static stats stats_of(samples *s) {
    stats r = {0};
    if (!s->n)
        return r;
    qsort(s->v, s->n, sizeof(*s->v), cmp64);
    double sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += (double)s->v[i];
    size_t n = s->n;
    r.median = (n % 2 ? (double)s->v[n / 2]
                      : ((double)s->v[n / 2 - 1] + (double)s->v[n / 2]) / 2) /
               1e3;
    size_t k = (size_t)(0.99 * (double)(n - 1) + 0.5);
    r.p99 = (double)s->v[k] / 1e3;
    r.mean = sum / (double)n / 1e3;
    r.max = (double)s->v[n - 1] / 1e3;
    return r;
}

/* ---- the baseline process ---- */

typedef struct tiny {
    pid_t pid;
    int to, from;
    int64_t size[2];
} tiny;

static void tiny_start(tiny *t, const char *path) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
        die("pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    char *argv[] = {(char *)path, NULL};
    int rc = posix_spawn(&t->pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        die("cannot start %s: %s", path, strerror(rc));
    close(in[0]);
    close(out[1]);
    t->to = in[1];
    t->from = out[0];
    if (full_read(t->from, t->size, sizeof(t->size)))
        die("%s did not start", path);
}

static void tiny_round(tiny *t, uint32_t n, samples *s, int64_t *cpu) {
    int64_t *v = malloc(n * sizeof(*v)), c;
    if (!v || full_write(t->to, &n, sizeof(n)) ||
        full_read(t->from, v, n * sizeof(*v)) ||
        full_read(t->from, &c, sizeof(c)))
        die("the baseline process stopped");
    for (uint32_t i = 0; i < n; i++)
        add(s, v[i]);
    *cpu += c;
    free(v);
}

static void tiny_stop(tiny *t) {
    uint32_t z = 0;
    if (full_write(t->to, &z, sizeof(z)) == 0) {
        int st;
        waitpid(t->pid, &st, 0);
    }
    close(t->to);
    close(t->from);
}

/* ---- the states ---- */

enum mode { M_EXIT, M_WORKER };

typedef struct ctx {
    const abi_registry *reg;
    const flow_integration *ig;
    json_t *spawn;
    int sock[2];
} ctx;

typedef struct result {
    const char *name;
    samples own, base;
    int64_t own_cpu, base_cpu;       /* parent CPU over all rounds, ns */
    int64_t child_cpu, child_minflt; /* sums over the children */
    int64_t size[2];
    size_t failed;
} result;

/* Throws away what a worker wrote (the host would read it). */
static void drain(int fd) {
    char buf[65536];
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

static void own_round(const ctx *c, enum mode m, uint32_t n, result *r) {
    int64_t c0 = cpu_ns();
    for (uint32_t i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        pid_t pid = fork();
        if (pid == 0) {
            if (m == M_EXIT)
                _exit(0);
            /* As the zygote's child does before it runs the worker. */
            signal(SIGPIPE, SIG_IGN);
            _exit(exec_worker_main(c->reg, c->ig, c->spawn, c->sock[1]));
        }
        if (pid < 0)
            die("fork: %s", strerror(errno));
        int st;
        struct rusage ru;
        wait4(pid, &st, 0, &ru);
        int64_t t = now_ns() - t0;
        add(&r->own, t);
        r->child_cpu += tv_ns(ru.ru_utime, ru.ru_stime);
        r->child_minflt += ru.ru_minflt;
        if (!WIFEXITED(st) || WEXITSTATUS(st))
            r->failed++;
        if (m == M_WORKER)
            drain(c->sock[0]);
    }
    /* Not timed: the parent's own CPU includes the drain, which is small. */
    r->own_cpu += cpu_ns() - c0;
}

static void measure(const ctx *c, enum mode m, tiny *t, size_t n,
                    uint32_t round, result *r) {
    self_size(r->size);
    /* One unrecorded round each, to warm up. */
    result warm = {0};
    own_round(c, m, round < 20 ? round : 20, &warm);
    int64_t wc = 0;
    samples ws = {0};
    tiny_round(t, 20, &ws, &wc);
    free(warm.own.v);
    free(ws.v);
    for (size_t done = 0; done < n;) {
        uint32_t k = (uint32_t)(n - done < round ? n - done : round);
        tiny_round(t, k, &r->base, &r->base_cpu);
        own_round(c, m, k, r);
        done += k;
    }
}

/* Runs one more worker and reads what it streamed: the status of its
 * "end" frame (NULL if there was none) and the frames' count and bytes. */
static int wframes;
static size_t wbytes;
static const char *check_worker(const ctx *c) {
    static char st[32];
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_IGN);
        _exit(exec_worker_main(c->reg, c->ig, c->spawn, c->sock[1]));
    }
    int ws;
    waitpid(pid, &ws, 0);
    const char *status = NULL;
    json_t *m;
    struct pollfd p = {.fd = c->sock[0], .events = POLLIN};
    while (poll(&p, 1, 0) == 1 && frame_recv(c->sock[0], &m, NULL) == 0) {
        char *text = json_dumps(m, JSON_COMPACT);
        wframes++;
        wbytes += 4 + (text ? strlen(text) : 0);
        free(text);
        const char *ev = json_string_value(json_object_get(m, "ev"));
        if (ev && !strcmp(ev, "end")) {
            snprintf(st, sizeof(st), "%s",
                     json_string_value(json_object_get(m, "status")));
            status = st;
        }
        json_decref(m);
    }
    return status;
}

/* ---- definitions ---- */

static json_t *load_json(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    json_error_t e;
    json_t *v = json_load_file(path, 0, &e);
    if (!v)
        die("%s: %s (line %d)", path, e.text, e.line);
    return v;
}

int main(int argc, char **argv) {
    size_t n = 2000;
    uint32_t round = 100;
    const char *components = FORKCOST_COMPONENTS_DIR;
    const char *defs = FORKCOST_DEFS_DIR;
    const char *tiny_path = FORKCOST_TINY;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--n") && v)
            n = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--round") && v)
            round = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--components-dir") && v)
            components = v;
        else if (!strcmp(a, "--defs") && v)
            defs = v;
        else if (!strcmp(a, "--tiny") && v)
            tiny_path = v;
        else
            die("usage: serve_forkcost [--n N] [--round R] "
                "[--components-dir DIR] [--defs DIR] [--tiny PATH]");
        i++;
    }
    if (n == 0 || round == 0)
        die("--n and --round must be more than 0");

    tiny t;
    tiny_start(&t, tiny_path);

    abi_registry reg;
    char *err = NULL;
    if (flow_load_registry(&reg, components, &err))
        die("components %s: %s", components, err ? err : "?");

    ctx c = {.reg = &reg};
    enum { NSTATES = 3 };
    result res[NSTATES] = {
        {.name = "loaded"}, {.name = "zygote"}, {.name = "worker"}};
    measure(&c, M_EXIT, &t, n, round, &res[0]);

    /* The zygote's state: the integration compiled, as its cache holds it.
     * The flow is not run here: a zygote never runs one, so whatever the
     * engine initialises lazily (symbol bindings among others) is done again
     * in every worker, here too. */
    json_t *ig_doc = load_json(defs, "bench-serve.integration.json");
    json_t *in_doc = load_json(defs, "bench-serve.instance.json");
    flow_diags d = {0};
    flow_integration *ig = flow_integration_from_json(ig_doc, NULL, &reg, &d);
    flow_instance *in =
        ig ? flow_instance_from_json(in_doc, NULL, ig, &reg, &d) : NULL;
    const flow_def *f = ig ? flow_find(ig, "cheap") : NULL;
    if (d.n || !f) {
        flow_diags_print(&d, stderr);
        die("the benchmark integration does not load");
    }
    json_t *trigger = json_pack("{s:s, s:{s:i}, s:s}", "type", "manual", "body",
                                "n", 21, "time", "2026-01-01T00:00:00.000Z");
    c.ig = ig;
    measure(&c, M_EXIT, &t, n, round, &res[1]);

    /* A spawn request as the host makes it (core/host/serve.c, spawn()). */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c.sock))
        die("socketpair: %s", strerror(errno));
    int big = 4 << 20;
    setsockopt(c.sock[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    c.spawn = json_pack(
        "{s:s, s:s, s:O, s:O, s:s, s:s, s:s, s:O, s:{s:I, s:I, s:I}, s:I}",
        "op", "spawn", "exec", "ex_forkcost", "integration", ig_doc, "instance",
        in_doc, "integration_file", "integration", "instance_file", "instance",
        "flow", "cheap", "trigger", trigger, "limits", "cpu_seconds",
        (json_int_t)0, "memory_bytes", (json_int_t)0, "output_bytes",
        (json_int_t)(64 << 20), "max_recorded", (json_int_t)65536);
    measure(&c, M_WORKER, &t, n, round, &res[2]);
    const char *wstatus = check_worker(&c);
    tiny_stop(&t);
    if (!wstatus || strcmp(wstatus, "succeeded"))
        printf("serve_forkcost: the worker did not succeed (%s): the worker "
               "figures are not those of the benchmark flow\n",
               wstatus ? wstatus : "no end frame");

    /* ---- report ---- */
    samples all = {0};
    int64_t all_cpu = 0;
    for (int i = 0; i < NSTATES; i++) {
        for (size_t k = 0; k < res[i].base.n; k++)
            add(&all, res[i].base.v[k]);
        all_cpu += res[i].base_cpu;
    }
    stats tb = stats_of(&all);
    printf("fork + child exit + waitpid, timed in the parent; %zu per state, "
           "in rounds of %u alternating with the baseline;\n  this process "
           "%s\n",
           n, round, VARIANT_TEXT);
    if (strcmp(FORKCOST_BUILD_TYPE, "Release"))
        printf("  (not a Release build: %s)\n",
               *FORKCOST_BUILD_TYPE ? FORKCOST_BUILD_TYPE : "no build type");
    printf("  %-8s %8s %8s %8s %8s %9s %8s %11s %10s %10s %8s\n", "state",
           "median", "p99", "mean", "max", "base_med", "ratio", "parent_cpu",
           "child_cpu", "child_flt", "rss_kib");
    printf("  %-8s %8.1f %8.1f %8.1f %8.1f %9s %8s %11.1f %10s %10s %8lld"
           "   (%lld mappings)\n",
           "tiny", tb.median, tb.p99, tb.mean, tb.max, "-", "1.00",
           (double)all_cpu / 1e3 / (double)all.n, "-", "-",
           (long long)t.size[0], (long long)t.size[1]);
    stats sv[NSTATES], bv[NSTATES];
    for (int i = 0; i < NSTATES; i++) {
        result *r = &res[i];
        sv[i] = stats_of(&r->own);
        bv[i] = stats_of(&r->base);
        printf(
            "  %-8s %8.1f %8.1f %8.1f %8.1f %9.1f %8.2f %11.1f %10.1f %10.1f "
            "%8lld   (%lld mappings)\n",
            r->name, sv[i].median, sv[i].p99, sv[i].mean, sv[i].max,
            bv[i].median, sv[i].median / bv[i].median,
            (double)r->own_cpu / 1e3 / (double)r->own.n,
            (double)r->child_cpu / 1e3 / (double)r->own.n,
            (double)r->child_minflt / (double)r->own.n, (long long)r->size[0],
            (long long)r->size[1]);
        if (r->failed)
            printf("  %zu children of state %s did not exit with 0\n",
                   r->failed, r->name);
    }
    printf("  us; base_med: the baseline's median in the rounds of that state; "
           "ratio: median / base_med;\n"
           "  parent_cpu, child_cpu: CPU per fork (user + system), "
           "child_flt: minor page faults per child\n");
    printf(
        "  worker: one execution streams %d frames, %zu bytes; it ended %s\n",
        wframes, wbytes, wstatus ? wstatus : "WITHOUT an end frame");
    printf("  target: a fresh isolated worker (fork + exit + reap from a "
           "zygote) under %.0f us\n",
           TARGET_WORKER_US);
    if (sv[1].median >= TARGET_WORKER_US)
        printf("  TARGET MISSED: zygote fork median %.1f us, target under "
               "%.0f us\n",
               sv[1].median, TARGET_WORKER_US);
    else
        printf(
            "  met at the median: zygote fork median %.1f us; p99 %.1f us%s\n",
            sv[1].median, sv[1].p99,
            sv[1].p99 >= TARGET_WORKER_US ? " (over at the p99)" : "");
    printf("  CPU of one zygote fork, parent + child: %.0f us; of one whole "
           "worker: %.0f us\n",
           (double)(res[1].own_cpu + res[1].child_cpu) / 1e3 /
               (double)res[1].own.n,
           (double)(res[2].own_cpu + res[2].child_cpu) / 1e3 /
               (double)res[2].own.n);

    printf(
        "\nfork.%s.tiny: median_us=%.1f p99_us=%.1f mean_us=%.1f rss_kib=%lld "
        "maps=%lld\n",
        VARIANT, tb.median, tb.p99, tb.mean, (long long)t.size[0],
        (long long)t.size[1]);
    for (int i = 0; i < NSTATES; i++)
        printf("fork.%s.%s: median_us=%.1f p99_us=%.1f mean_us=%.1f "
               "baseline_median_us=%.1f ratio=%.2f parent_cpu_us=%.1f "
               "child_cpu_us=%.1f child_minflt=%.1f rss_kib=%lld maps=%lld\n",
               VARIANT, res[i].name, sv[i].median, sv[i].p99, sv[i].mean,
               bv[i].median, sv[i].median / bv[i].median,
               (double)res[i].own_cpu / 1e3 / (double)res[i].own.n,
               (double)res[i].child_cpu / 1e3 / (double)res[i].own.n,
               (double)res[i].child_minflt / (double)res[i].own.n,
               (long long)res[i].size[0], (long long)res[i].size[1]);

    json_decref(c.spawn);
    json_decref(trigger);
    close(c.sock[0]);
    close(c.sock[1]);
    flow_instance_free(in);
    flow_integration_free(ig);
    json_decref(ig_doc);
    json_decref(in_doc);
    abi_registry_free(&reg);
    for (int i = 0; i < NSTATES; i++) {
        free(res[i].own.v);
        free(res[i].base.v);
    }
    free(all.v);
    return 0;
}
