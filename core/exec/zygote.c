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
#include "flow/http_bind.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
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
    malloc_trim(0);
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

/* ---- which flows need the HTTP client ---- */

static int component_needs_http(const abi_component *c) {
    return !c || !(c->desc->flags & FERRY_COMPONENT_NO_HTTP);
}

static int steps_need_http(const flow_step_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        const flow_step *s = &l->steps[i];
        if (s->kind == FLOW_STEP_ACTION && component_needs_http(s->component))
            return 1;
        if (steps_need_http(&s->body) || steps_need_http(&s->otherwise))
            return 1;
        for (size_t k = 0; k < s->ncases; k++)
            if (steps_need_http(&s->cases[k].steps))
                return 1;
    }
    return 0;
}

/* Whether a spawn request's worker may call api->http_request: unless
 * every component its flow (or its poll trigger) runs declares
 * FERRY_COMPONENT_NO_HTTP. An integration that did not compile here counts
 * as needing it (its worker only reports why). */
static int spawn_needs_http(const abi_registry *reg, const flow_integration *ig,
                            const json_t *spawn) {
    const char *name = json_string_value(json_object_get(spawn, "flow"));
    const flow_def *f = ig && name ? flow_find(ig, name) : NULL;
    if (!f)
        return 1;
    const char *mode = json_string_value(json_object_get(spawn, "mode"));
    if (mode && !strcmp(mode, "poll")) {
        const char *src =
            json_string_value(json_object_get(f->trigger, "source"));
        const abi_component *owner = NULL;
        if (!src || !abi_find_trigger(reg, src, &owner) ||
            component_needs_http(owner))
            return 1;
    }
    return steps_need_http(&f->steps);
}

/* ---- the fork loop ---- */

/* A zygote's state. ferry-zygote has no HTTP client of its own (see
 * flow/http_bind.h): it forks the workers of flows that need one from a
 * second zygote, its child, started at the first such request, which loads
 * the client first. The second zygote reports to this one ("forked",
 * "exited", ...), which passes the reports on to the host. */
typedef struct zygote {
    const abi_registry *reg;
    int ctl; /* to the host, or to the first zygote */
    child *children;
    size_t nchildren, cap;
    int closing;
    int http;   /* this process has the HTTP client */
    int sub_fd; /* the second zygote's socket, -1 when none */
    pid_t sub_pid;
    /* The second zygote's workers, from its reports: pid 0 while the
     * request is on its way. Should it die, they become this process's
     * children (it is their subreaper) and are reported from here. */
    child *subkids;
    size_t nsubkids, capsub;
} zygote;

static child *find_child(child *list, size_t n, pid_t pid, const char *exec) {
    for (size_t i = 0; i < n; i++)
        if (exec ? !strcmp(list[i].exec, exec) : list[i].pid == pid)
            return &list[i];
    return NULL;
}

static void reap(zygote *z) {
    for (;;) {
        int status;
        struct rusage ru;
        pid_t pid = wait4(-1, &status, WNOHANG, &ru);
        if (pid <= 0)
            return;
        child *c = find_child(z->children, z->nchildren, pid, NULL);
        if (c) {
            send_exited(z->ctl, c, status, &ru);
            *c = z->children[--z->nchildren];
        } else if ((c = find_child(z->subkids, z->nsubkids, pid, NULL))) {
            send_exited(z->ctl, c, status, &ru);
            *c = z->subkids[--z->nsubkids];
        }
    }
}

static void spawn_failed(zygote *z, const char *id, const char *error) {
    json_t *m = json_pack("{s:s, s:s, s:s}", "op", "spawn_failed", "exec", id,
                          "error", error);
    frame_send(z->ctl, m, -1);
    json_decref(m);
}

/* Appends {pid, exec} to *list; returns 0, or -1 when out of memory. */
static int add_child(child **list, size_t *n, size_t *cap, pid_t pid,
                     const char *exec) {
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        child *c = realloc(*list, ncap * sizeof(*c));
        if (!c)
            return -1;
        *list = c;
        *cap = ncap;
    }
    child *c = &(*list)[(*n)++];
    c->pid = pid;
    snprintf(c->exec, sizeof(c->exec), "%s", exec);
    return 0;
}

/* Keeps track of the second zygote's workers from a report it sends. */
static void note_sub_report(zygote *z, const json_t *m) {
    const char *op = json_string_value(json_object_get(m, "op"));
    const char *exec = json_string_value(json_object_get(m, "exec"));
    pid_t pid = (pid_t)json_integer_value(json_object_get(m, "pid"));
    child *c = NULL;
    if (!op)
        return;
    if (!strcmp(op, "forked") && exec &&
        (c = find_child(z->subkids, z->nsubkids, 0, exec)))
        c->pid = pid;
    else if (!strcmp(op, "spawn_failed") && exec &&
             (c = find_child(z->subkids, z->nsubkids, 0, exec)))
        *c = z->subkids[--z->nsubkids];
    else if (!strcmp(op, "exited") &&
             (c = find_child(z->subkids, z->nsubkids, pid, NULL)))
        *c = z->subkids[--z->nsubkids];
}

/* The second zygote is gone. Its workers go on (this process reaps and
 * reports them); the requests it had not forked yet failed. The next flow
 * that needs the HTTP client starts another. */
static void sub_died(zygote *z) {
    fprintf(stderr,
            "ferry-zygote: the zygote with the HTTP client (pid %d) is gone; "
            "the next flow that needs it starts another\n",
            (int)z->sub_pid);
    for (size_t i = 0; i < z->nsubkids;) {
        child *c = &z->subkids[i];
        if (!c->pid) {
            spawn_failed(z, c->exec, "the zygote with the HTTP client died");
        } else if (kill(c->pid, 0) && errno == ESRCH) {
            /* Reaped there, its report lost with it: ended, how unknown. */
            json_t *m =
                json_pack("{s:s, s:s, s:i, s:i}", "op", "exited", "exec",
                          c->exec, "pid", (int)c->pid, "code", -1);
            frame_send(z->ctl, m, -1);
            json_decref(m);
        } else {
            i++; /* alive or a zombie: it becomes this process's child */
            continue;
        }
        *c = z->subkids[--z->nsubkids];
    }
}

static void sub_closed(zygote *z) {
    if (z->sub_fd >= 0)
        close(z->sub_fd);
    z->sub_fd = -1;
}

/* Starts the second zygote. Returns 0, or -1 with errno set. */
static int sub_start(zygote *z) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        errno = e;
        return -1;
    }
    if (pid > 0) {
        close(sv[1]);
        z->sub_fd = sv[0];
        z->sub_pid = pid;
        return 0;
    }
    /* The second zygote: its own children, signal pipe and reports. */
    close(sv[0]);
    close(z->ctl);
    close(sigchld_pipe[0]);
    close(sigchld_pipe[1]);
    if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK))
        _exit(1);
    z->nchildren = 0; /* the first zygote's workers stay its own */
    z->nsubkids = 0;
    z->ctl = sv[1];
    z->sub_fd = -1;
    char *err = NULL;
    if (flow_http_load(&err)) {
        /* Its workers then fail their HTTP requests with a message. */
        fprintf(stderr, "ferry-zygote: cannot load the HTTP client: %s\n",
                err ? err : "out of memory");
        free(err);
    }
    z->http = 1;
    return 0;
}

static void fork_worker(zygote *z, json_t *msg, const char *id, int wfd,
                        const flow_integration *ig) {
    /* Listed first: a worker that could not be listed could not be
     * reported on. */
    if (add_child(&z->children, &z->nchildren, &z->cap, 0, id)) {
        spawn_failed(z, id, strerror(ENOMEM));
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(z->ctl);
        if (z->sub_fd >= 0)
            close(z->sub_fd);
        close(sigchld_pipe[0]);
        close(sigchld_pipe[1]);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_IGN);
        apply_limits(json_object_get(msg, "limits"));
        _exit(exec_worker_main(z->reg, ig, msg, wfd));
    }
    if (pid < 0) {
        int e = errno;
        z->nchildren--;
        spawn_failed(z, id, strerror(e));
        return;
    }
    z->children[z->nchildren - 1].pid = pid;
    json_t *m = json_pack("{s:s, s:s, s:i}", "op", "forked", "exec", id, "pid",
                          (int)pid);
    frame_send(z->ctl, m, -1);
    json_decref(m);
}

static void on_spawn(zygote *z, json_t *msg, const char *id, int wfd) {
    const flow_integration *ig = cached_integration(z->reg, msg);
    if (z->http || !spawn_needs_http(z->reg, ig, msg)) {
        fork_worker(z, msg, id, wfd, ig);
        return;
    }
    /* Twice: a second zygote that died since its last report is found
     * out by the send, and another is started. */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (z->sub_fd < 0 && sub_start(z)) {
            spawn_failed(z, id, strerror(errno));
            return;
        }
        if (z->http)
            return; /* the second zygote, just started: the first sends it
                       this request with the others */
        if (!frame_send(z->sub_fd, msg, wfd)) {
            add_child(&z->subkids, &z->nsubkids, &z->capsub, 0, id);
            return;
        }
        sub_closed(z);
        sub_died(z);
    }
    spawn_failed(z, id, "the zygote with the HTTP client is gone");
}

static int zygote_loop(zygote *z) {
    for (;;) {
        if (z->closing && z->nchildren == 0 && z->sub_fd < 0 &&
            z->nsubkids == 0)
            break;
        struct pollfd p[3] = {
            {.fd = z->closing ? -1 : z->ctl, .events = POLLIN},
            {.fd = sigchld_pipe[0], .events = POLLIN},
            {.fd = z->sub_fd, .events = POLLIN}};
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (p[1].revents) {
            char buf[64];
            while (read(sigchld_pipe[0], buf, sizeof(buf)) > 0)
                ;
            reap(z);
        }
        if (p[2].revents) {
            /* A report of the second zygote, passed on as it is. */
            json_t *m = NULL;
            if (frame_recv(z->sub_fd, &m, NULL)) {
                sub_closed(z);
                if (!z->closing)
                    sub_died(z);
            } else {
                note_sub_report(z, m);
                frame_send(z->ctl, m, -1);
                json_decref(m);
            }
        }
        if (!p[0].revents)
            continue;
        json_t *msg = NULL;
        int wfd = -1;
        if (frame_recv(z->ctl, &msg, &wfd)) {
            /* The host is gone: its workers cannot report to anyone. */
            for (size_t i = 0; i < z->nchildren; i++)
                kill(z->children[i].pid, SIGKILL);
            for (size_t i = 0; i < z->nsubkids; i++)
                if (z->subkids[i].pid)
                    kill(z->subkids[i].pid, SIGKILL);
            z->nsubkids = 0; /* no one to report them to */
            sub_closed(z);   /* the second zygote does the same */
            z->closing = 1;
            continue;
        }
        const char *op = json_string_value(json_object_get(msg, "op"));
        const char *id = json_string_value(json_object_get(msg, "exec"));
        if (op && !strcmp(op, "retire")) {
            /* No more spawns: exit once the running workers are done. */
            z->closing = 1;
            if (z->sub_fd >= 0 && frame_send(z->sub_fd, msg, -1))
                sub_closed(z);
        } else if (op && !strcmp(op, "spawn") && id && wfd >= 0) {
            on_spawn(z, msg, id, wfd);
        }
        if (wfd >= 0)
            close(wfd);
        json_decref(msg);
    }
    return 0;
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
    malloc_trim(0);

    zygote z = {.reg = &reg,
                .ctl = ctl,
                .cap = 64,
                .http = flow_http_ready(),
                .sub_fd = -1};
    z.children = malloc(z.cap * sizeof(*z.children));
    /* The second zygote's workers become ours should it die. */
    if (!z.http)
        prctl(PR_SET_CHILD_SUBREAPER, 1);
    int rc = z.children ? zygote_loop(&z) : 1;
    if (rc)
        for (size_t i = 0; i < z.nchildren; i++)
            kill(z.children[i].pid, SIGKILL);
    sub_closed(&z);
    free(z.children);
    free(z.subkids);
    for (int i = 0; i < IG_CACHE_SIZE; i++)
        flow_integration_free(ig_cache[i].ig);
    close(sigchld_pipe[0]);
    close(sigchld_pipe[1]);
    abi_registry_free(&reg);
    return rc;
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
