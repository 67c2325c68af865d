/*
 * The zygote: started by the host with exec, it loads every component once,
 * stays single-threaded, and forks one worker per execution. A fork from a
 * single-threaded process cannot inherit a lock held by another thread, and
 * the worker starts with everything loaded: a clean runtime for the cost of
 * a fork. The zygote never relays a worker's data: each worker writes to
 * its own socket, passed in by the host with the spawn request.
 */
#include "exec.h"
#include "flow/flow.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int exec_worker_main(const abi_registry *reg, const flow_integration *ig,
                     json_t *spawn, int sock);

/* Compiled integrations, by the key the host gives each integration
 * version (a hash of its text, computed once when it is deployed).
 * Compiling is the slow part of starting an execution (jq 1.6 builds its
 * whole builtin library for every program), so the zygote compiles each
 * version once and every worker it forks inherits the result. */
#define IG_CACHE_SIZE 64

typedef struct ig_entry {
    uint64_t key;
    flow_integration *ig;
    uint64_t used;
} ig_entry;

static ig_entry ig_cache[IG_CACHE_SIZE];
static uint64_t ig_clock;

/* The compiled integration of a spawn request, from the cache or compiled
 * now; NULL if it does not compile or the request has no key (the worker
 * then compiles it and reports why it does not). */
static const flow_integration *cached_integration(const abi_registry *reg,
                                                  const json_t *spawn) {
    const json_t *doc = json_object_get(spawn, "integration");
    const char *key_text =
        json_string_value(json_object_get(spawn, "integration_key"));
    char *end = NULL;
    uint64_t h = key_text ? strtoull(key_text, &end, 16) : 0;
    if (!key_text || !*key_text || *end)
        return NULL;
    ig_entry *slot = &ig_cache[0];
    for (int i = 0; i < IG_CACHE_SIZE; i++) {
        if (ig_cache[i].ig && ig_cache[i].key == h) {
            ig_cache[i].used = ++ig_clock;
            return ig_cache[i].ig;
        }
        if (!ig_cache[i].ig || ig_cache[i].used < slot->used)
            slot = &ig_cache[i];
        if (!slot->ig)
            break;
    }
    flow_diags d = {0};
    flow_integration *ig = flow_integration_from_json(
        doc, json_string_value(json_object_get(spawn, "integration_file")), reg,
        &d);
    flow_diags_free(&d);
    if (!ig)
        return NULL;
    flow_integration_free(slot->ig);
    *slot = (ig_entry){h, ig, ++ig_clock};
    return ig;
}

typedef struct child {
    pid_t pid;
    char exec[48];
} child;

static int sigchld_pipe[2] = {-1, -1};

static void on_sigchld(int sig) {
    (void)sig;
    int saved = errno;
    ssize_t ignored = write(sigchld_pipe[1], "c", 1);
    (void)ignored;
    errno = saved;
}

/* Current address-space size of this process, from /proc. */
static uint64_t vm_size(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void apply_limits(const json_t *limits) {
    json_int_t cpu = json_integer_value(json_object_get(limits, "cpu_seconds"));
    json_int_t mem =
        json_integer_value(json_object_get(limits, "memory_bytes"));
    if (cpu > 0) {
        /* SIGXCPU at the soft limit, SIGKILL a second later. */
        struct rlimit rl = {(rlim_t)cpu, (rlim_t)cpu + 1};
        setrlimit(RLIMIT_CPU, &rl);
    }
    if (mem > 0) {
        /* The limit is on what the execution adds: the zygote's own mapped
         * libraries are not the execution's doing. */
        rlim_t as = (rlim_t)(vm_size() + (uint64_t)mem);
        struct rlimit rl = {as, as};
        setrlimit(RLIMIT_AS, &rl);
    }
}

static void send_exited(int ctl, child *c, int status,
                        const struct rusage *ru) {
    json_t *m = json_pack("{s:s, s:s, s:i, s:I}", "op", "exited", "exec",
                          c->exec, "pid", (int)c->pid, "max_rss_bytes",
                          (json_int_t)ru->ru_maxrss * 1024);
    if (WIFEXITED(status))
        json_object_set_new(m, "code", json_integer(WEXITSTATUS(status)));
    else if (WIFSIGNALED(status))
        json_object_set_new(m, "signal", json_integer(WTERMSIG(status)));
    json_object_set_new(
        m, "cpu_us",
        json_integer((json_int_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) *
                         1000000 +
                     ru->ru_utime.tv_usec + ru->ru_stime.tv_usec));
    frame_send(ctl, m, -1);
    json_decref(m);
}

static void reap(int ctl, child *children, size_t *nchildren) {
    for (;;) {
        int status;
        struct rusage ru;
        pid_t pid = wait4(-1, &status, WNOHANG, &ru);
        if (pid <= 0)
            return;
        for (size_t i = 0; i < *nchildren; i++) {
            if (children[i].pid != pid)
                continue;
            send_exited(ctl, &children[i], status, &ru);
            children[i] = children[--*nchildren];
            break;
        }
    }
}

static json_t *describe_registry(const abi_registry *reg, pid_t pid) {
    json_t *names = json_array(), *refused = json_array();
    for (size_t i = 0; i < reg->ncomponents; i++)
        json_array_append_new(names,
                              json_string(reg->components[i].desc->name));
    for (size_t i = 0; i < reg->nrefused; i++)
        json_array_append_new(refused, json_pack("{s:s, s:s}", "path",
                                                 reg->refused[i].path, "reason",
                                                 reg->refused[i].reason));
    return json_pack("{s:s, s:i, s:o, s:o}", "op", "ready", "pid", (int)pid,
                     "components", names, "refused", refused);
}

/* Workers run customers' flows: they must not see the host's environment
 * (API tokens, database passwords). jq programs read it as $ENV, bound when
 * they are compiled, which happens here. Kept: what locale, time and
 * temporary files need, and the sanitizer settings of a test build. */
static void scrub_environment(void) {
    static const char *const keep[] = {
        "PATH",          "TZ",           "LANG", "TMPDIR", "ASAN_OPTIONS",
        "UBSAN_OPTIONS", "LSAN_OPTIONS", NULL};
    const char *vals[sizeof(keep) / sizeof(keep[0])];
    char *copies[sizeof(keep) / sizeof(keep[0])];
    for (int i = 0; keep[i]; i++) {
        vals[i] = getenv(keep[i]);
        copies[i] = vals[i] ? strdup(vals[i]) : NULL;
    }
    clearenv();
    for (int i = 0; keep[i]; i++) {
        if (copies[i])
            setenv(keep[i], copies[i], 1);
        free(copies[i]);
    }
}

int exec_zygote_main(int ctl, const char *components_dir) {
    abi_registry reg;
    char *err = NULL;
    scrub_environment();
    /* No fastbins: a worker's first larger allocation would otherwise
     * consolidate the free chunks it inherited, writing to (and so copying)
     * pages of the zygote's heap that it never uses. Measured: half of a
     * worker's CPU went to such page faults. */
    mallopt(M_MXFAST, 0);
    if (flow_load_registry(&reg, components_dir, &err)) {
        json_t *m = json_pack("{s:s, s:s}", "op", "failed", "error",
                              err ? err : "cannot load components");
        frame_send(ctl, m, -1);
        json_decref(m);
        free(err);
        abi_registry_free(&reg);
        return 1;
    }
    if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK)) {
        abi_registry_free(&reg);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_sigchld,
                           .sa_flags = SA_RESTART | SA_NOCLDSTOP};
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN); /* the host decides when we stop */

    json_t *ready = describe_registry(&reg, getpid());
    frame_send(ctl, ready, -1);
    json_decref(ready);

    size_t cap = 64, nchildren = 0;
    child *children = malloc(cap * sizeof(*children));
    int closing = 0;
    while (children) {
        struct pollfd p[2] = {{.fd = closing ? -1 : ctl, .events = POLLIN},
                              {.fd = sigchld_pipe[0], .events = POLLIN}};
        if (closing && nchildren == 0)
            break;
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents) {
            char buf[64];
            while (read(sigchld_pipe[0], buf, sizeof(buf)) > 0)
                ;
            reap(ctl, children, &nchildren);
        }
        if (!p[0].revents)
            continue;
        json_t *msg = NULL;
        int wfd = -1;
        int rc = frame_recv(ctl, &msg, &wfd);
        if (rc) {
            /* The host is gone: its workers cannot report to anyone. */
            for (size_t i = 0; i < nchildren; i++)
                kill(children[i].pid, SIGKILL);
            closing = 1;
            continue;
        }
        const char *op = json_string_value(json_object_get(msg, "op"));
        const char *id = json_string_value(json_object_get(msg, "exec"));
        if (op && !strcmp(op, "retire")) {
            /* No more spawns: exit once the running workers are done. */
            closing = 1;
        } else if (op && !strcmp(op, "spawn") && id && wfd >= 0) {
            if (nchildren == cap) {
                child *c = realloc(children, cap * 2 * sizeof(*c));
                if (c) {
                    children = c;
                    cap *= 2;
                }
            }
            const flow_integration *ig = cached_integration(&reg, msg);
            pid_t pid = nchildren < cap ? fork() : -1;
            if (pid == 0) {
                close(ctl);
                close(sigchld_pipe[0]);
                close(sigchld_pipe[1]);
                signal(SIGCHLD, SIG_DFL);
                signal(SIGINT, SIG_DFL);
                signal(SIGPIPE, SIG_IGN);
                apply_limits(json_object_get(msg, "limits"));
                _exit(exec_worker_main(&reg, ig, msg, wfd));
            }
            json_t *m;
            if (pid < 0) {
                m = json_pack("{s:s, s:s, s:s}", "op", "spawn_failed", "exec",
                              id, "error", strerror(errno));
            } else {
                children[nchildren].pid = pid;
                snprintf(children[nchildren].exec,
                         sizeof(children[nchildren].exec), "%s", id);
                nchildren++;
                m = json_pack("{s:s, s:s, s:i}", "op", "forked", "exec", id,
                              "pid", (int)pid);
            }
            frame_send(ctl, m, -1);
            json_decref(m);
        }
        if (wfd >= 0)
            close(wfd);
        json_decref(msg);
    }
    free(children);
    for (int i = 0; i < IG_CACHE_SIZE; i++)
        flow_integration_free(ig_cache[i].ig);
    close(sigchld_pipe[0]);
    close(sigchld_pipe[1]);
    abi_registry_free(&reg);
    return 0;
}

int exec_zygote_cli(int argc, char **argv) {
    static const struct option opts[] = {
        {"components-dir", required_argument, 0, 'c'},
        {"fd", required_argument, 0, 'f'},
        {0, 0, 0, 0}};
    const char *dir = NULL;
    int fd = -1, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'c')
            dir = optarg;
        else if (c == 'f')
            fd = atoi(optarg);
        else
            return 2;
    }
    if (!dir || fd < 0) {
        fprintf(stderr, "the zygote is started by `ferry serve`\n");
        return 2;
    }
    return exec_zygote_main(fd, dir);
}
