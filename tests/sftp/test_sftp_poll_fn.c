/*
 * sftp.new_files, the poll function, loaded from sftp.so with dlopen and
 * driven through a stand-in for the host's table against a real sshd
 * (started by sshd.py, which describes it in SFTP_TEST_* variables):
 * listing with and without recursion, names starting with '.' skipped,
 * only regular files; disposals: moves with their parent directories
 * created, a move onto an existing file keeping both, deletes, sources
 * already gone counted as done, paths outside the root refused; one
 * session for every poll of the process, and a new one when it was lost.
 *
 * The test makes the files itself, in the served directory, and gives
 * them to the served user.
 */
#include <ferry/ferry.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef FERRY_TRIGGER_FILES
#define FERRY_TRIGGER_FILES 0x2u
#endif

/* ---- the stand-in host ---- */

struct ferry_ctx {
    json_t *output;
    int error_code;
    int retryable;
    char error[2048];
};

static json_t *connection; /* {"name", "type", "fields"} */
static json_t *logs;       /* every log line of the process */

static void fake_logv(ferry_ctx *ctx, ferry_log_level level, json_t *fields,
                      const char *fmt, va_list ap) {
    char msg[2048];
    (void)ctx;
    (void)level;
    json_decref(fields);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    json_array_append_new(logs, json_string(msg));
}

static void fake_log(ferry_ctx *ctx, ferry_log_level level, json_t *fields,
                     const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fake_logv(ctx, level, fields, fmt, ap);
    va_end(ap);
}

static int fake_set_output(ferry_ctx *ctx, json_t *output) {
    json_decref(ctx->output);
    ctx->output = output;
    return FERRY_OK;
}

static int fake_set_error(ferry_ctx *ctx, int code, int retryable,
                          const char *fmt, ...) {
    va_list ap;
    ctx->error_code = code;
    ctx->retryable = retryable;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
    va_end(ap);
    return code;
}

static const json_t *fake_connection(ferry_ctx *ctx) {
    (void)ctx;
    return connection;
}

static int fake_cancelled(ferry_ctx *ctx) {
    (void)ctx;
    return 0;
}

static const ferry_api host = {
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .size = sizeof(ferry_api),
    .alloc = malloc,
    .free = free,
    .log = fake_log,
    .logv = fake_logv,
    .set_output = fake_set_output,
    .set_error = fake_set_error,
    .connection = fake_connection,
    .cancelled = fake_cancelled,
};

static void *handle;
static const ferry_trigger *trigger;
static char data[1024]; /* the served directory, the connection's root */
static uid_t uid;
static gid_t gid;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static int load(void **state) {
    (void)state;
    const char *env[] = {"SFTP_TEST_HOST",
                         "SFTP_TEST_PORT",
                         "SFTP_TEST_USER",
                         "SFTP_TEST_FP",
                         "SFTP_TEST_DATA",
                         "SFTP_TEST_KEY_"
                         "ED25519"};
    for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++) {
        if (!getenv(env[i])) {
            fprintf(stderr, "%s is not set: run this under sshd.py\n", env[i]);
            return -1;
        }
    }
    snprintf(data, sizeof(data), "%s", getenv("SFTP_TEST_DATA"));
    uid = (uid_t)atol(getenv("SFTP_TEST_UID") ? getenv("SFTP_TEST_UID") : "0");
    gid = (gid_t)atol(getenv("SFTP_TEST_GID") ? getenv("SFTP_TEST_GID") : "0");
    if (!getenv("SFTP_TEST_UID")) {
        uid = getuid();
        gid = getgid();
    }
    char *key = slurp(getenv("SFTP_TEST_KEY_ED25519"));
    if (!key)
        return -1;
    connection = json_pack(
        "{s:s, s:s, s:{s:s, s:i, s:s, s:s, s:s, s:s}}", "name", "partner",
        "type", "sftp.server", "fields", "host", getenv("SFTP_TEST_HOST"),
        "port", atoi(getenv("SFTP_TEST_PORT")), "username",
        getenv("SFTP_TEST_USER"), "host_key_sha256", getenv("SFTP_TEST_FP"),
        "private_key", key, "root", data);
    free(key);
    logs = json_array();

    handle = dlopen(SFTP_SO, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return -1;
    }
    ferry_entry_fn entry;
    *(void **)&entry = dlsym(handle, FERRY_ENTRY_SYMBOL);
    const ferry_component *comp = entry ? entry(&host) : NULL;
    for (const ferry_trigger *t = comp ? comp->triggers : NULL; t && t->id; t++)
        if (!strcmp(t->id, "sftp.new_files"))
            trigger = t;
    return trigger ? 0 : -1;
}

static int unload(void **state) {
    (void)state;
    /* dlclose ends the cached session (the component's exit handler). */
    if (handle)
        dlclose(handle);
    json_decref(connection);
    json_decref(logs);
    return 0;
}

/* ---- files ---- */

static void path_of(char *out, size_t n, const char *rel) {
    snprintf(out, n, "%s/%s", data, rel);
}

static void mkdirs(const char *rel) {
    char p[2048];
    path_of(p, sizeof(p), rel);
    for (char *s = p + strlen(data) + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) == 0)
            assert_int_equal(lchown(p, uid, gid), 0);
        *s = '/';
    }
    if (mkdir(p, 0755) == 0)
        assert_int_equal(lchown(p, uid, gid), 0);
}

/* Writes rel (parents made) with text and modification time mtime. */
static void put(const char *rel, const char *text, time_t mtime) {
    char p[2048], dir[2048];
    snprintf(dir, sizeof(dir), "%s", rel);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        mkdirs(dir);
    }
    path_of(p, sizeof(p), rel);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(lchown(p, uid, gid), 0);
    struct timeval tv[2] = {{mtime, 0}, {mtime, 0}};
    assert_int_equal(utimes(p, tv), 0);
}

static char *content(const char *rel) {
    char p[2048];
    path_of(p, sizeof(p), rel);
    return slurp(p);
}

static int exists(const char *rel) {
    char p[2048];
    struct stat sb;
    path_of(p, sizeof(p), rel);
    return lstat(p, &sb) == 0;
}

/* Names in directory rel that start with prefix. */
static int count_prefix(const char *rel, const char *prefix) {
    char p[2048];
    path_of(p, sizeof(p), rel);
    DIR *d = opendir(p);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* ---- running the poll ---- */

/* Runs the poll with input (stolen); returns its output (owned by ctx,
 * valid until the next run). */
static ferry_ctx ctx;

static json_t *poll_ok(json_t *input) {
    json_decref(ctx.output);
    memset(&ctx, 0, sizeof(ctx));
    int rc = trigger->poll(&ctx, input);
    if (rc)
        fail_msg("poll failed: %s: %s", ferry_err_name(rc), ctx.error);
    json_decref(input);
    assert_non_null(ctx.output);
    assert_true(json_is_null(json_object_get(ctx.output, "cursor")));
    return ctx.output;
}

static json_t *poll_input(const char *path, int recursive, json_t *dispose) {
    char p[2048];
    path_of(p, sizeof(p), path);
    return json_pack("{s:s, s:b, s:n, s:o}", "path", p, "recursive", recursive,
                     "cursor", "dispose", dispose ? dispose : json_array());
}

/* The items' relative paths, sorted, joined with ','. */
static char *relatives(const json_t *out) {
    const json_t *items = json_object_get(out, "items");
    size_t n = json_array_size(items);
    const char **v = calloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_string_value(
            json_object_get(json_array_get(items, i), "relative"));
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(v[i], v[j]) > 0) {
                const char *t = v[i];
                v[i] = v[j];
                v[j] = t;
            }
    static char buf[4096];
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(buf, ",");
        strcat(buf, v[i]);
    }
    free(v);
    return buf;
}

static const json_t *item(const json_t *out, const char *relative) {
    size_t i;
    const json_t *it;
    json_array_foreach(json_object_get(out, "items"), i, it) {
        if (!strcmp(json_string_value(json_object_get(it, "relative")),
                    relative))
            return it;
    }
    return NULL;
}

static int count_logs(const char *needle) {
    size_t i;
    const json_t *l;
    int n = 0;
    json_array_foreach(logs, i, l) n +=
        strstr(json_string_value(l), needle) != NULL;
    return n;
}

/* ---- cases ---- */

static void declared(void **state) {
    (void)state;
    assert_true(trigger->flags & FERRY_TRIGGER_FILES);
    /* Only its own options: the host owns the file options. */
    int n = 0;
    for (const ferry_input *i = trigger->inputs; i->name; i++, n++)
        assert_true(!strcmp(i->name, "path") || !strcmp(i->name, "recursive"));
    assert_int_equal(n, 2);
}

static void listing(void **state) {
    (void)state;
    put("w1/a.csv", "alpha", 1700000000);
    put("w1/b.txt", "bravo!", 1700000100);
    put("w1/.hidden", "h", 1700000000);
    put("w1/.done/old.csv", "old", 1700000000);
    put("w1/.sub/x.csv", "x", 1700000000);
    put("w1/sub/c.csv", "charlie", 1700000200);
    put("w1/sub/deeper/d.csv", "delta", 1700000300);
    mkdirs("w1/emptydir");
    char target[2048], link[2048];
    path_of(target, sizeof(target), "w1/a.csv");
    path_of(link, sizeof(link), "w1/link.csv");
    assert_int_equal(symlink(target, link), 0);

    json_t *out = poll_ok(poll_input("w1", 0, NULL));
    assert_string_equal(relatives(out), "a.csv,b.txt");
    const json_t *a = item(out, "a.csv");
    char full[2048];
    path_of(full, sizeof(full), "w1/a.csv");
    assert_string_equal(json_string_value(json_object_get(a, "path")), full);
    assert_string_equal(json_string_value(json_object_get(a, "name")), "a.csv");
    assert_int_equal(json_integer_value(json_object_get(a, "size")), 5);
    assert_true(json_is_integer(json_object_get(a, "mtime")));
    assert_int_equal(json_integer_value(json_object_get(a, "mtime")),
                     1700000000);
    assert_int_equal(json_array_size(json_object_get(out, "disposed")), 0);
    assert_int_equal(json_array_size(json_object_get(out, "dispose_errors")),
                     0);

    out = poll_ok(poll_input("w1", 1, NULL));
    assert_string_equal(relatives(out),
                        "a.csv,b.txt,sub/c.csv,sub/deeper/d.csv");
    const json_t *d = item(out, "sub/deeper/d.csv");
    assert_string_equal(json_string_value(json_object_get(d, "name")), "d.csv");
    assert_int_equal(json_integer_value(json_object_get(d, "mtime")),
                     1700000300);
    path_of(full, sizeof(full), "w1/sub/deeper/d.csv");
    assert_string_equal(json_string_value(json_object_get(d, "path")), full);
}

static json_t *move(const char *from, const char *to) {
    char f[2048], t[2048];
    path_of(f, sizeof(f), from);
    path_of(t, sizeof(t), to);
    return json_pack("{s:s, s:s, s:s}", "path", f, "action", "move", "to", t);
}

static json_t *del(const char *path) {
    char p[2048];
    path_of(p, sizeof(p), path);
    return json_pack("{s:s, s:s}", "path", p, "action", "delete");
}

static int in_list(const json_t *arr, const char *rel) {
    char p[2048];
    size_t i;
    const json_t *v;
    path_of(p, sizeof(p), rel);
    json_array_foreach(arr, i, v) {
        if (!strcmp(json_string_value(v), p))
            return 1;
    }
    return 0;
}

static void dispose_moves(void **state) {
    (void)state;
    put("w2/a.csv", "new a", 1700000000);
    put("w2/sub/c.csv", "charlie", 1700000000);
    put("w2/keep.csv", "keep", 1700000000);
    /* .done/a.csv exists already: the new one must not replace it. */
    put("w2/.done/a.csv", "first a", 1690000000);
    json_t *dispose =
        json_pack("[o, o]", move("w2/a.csv", "w2/.done/a.csv"),
                  move("w2/sub/c.csv", "w2/.done/deep/er/sub/c.csv"));
    json_t *out = poll_ok(poll_input("w2", 1, dispose));
    /* Disposed first, so the moved files are not listed. */
    assert_string_equal(relatives(out), "keep.csv");
    const json_t *done = json_object_get(out, "disposed");
    assert_int_equal(json_array_size(done), 2);
    assert_true(in_list(done, "w2/a.csv"));
    assert_true(in_list(done, "w2/sub/c.csv"));
    assert_int_equal(json_array_size(json_object_get(out, "dispose_errors")),
                     0);

    char *s = content("w2/.done/a.csv");
    assert_string_equal(s, "first a");
    free(s);
    /* a.csv.<ms> beside it, with the new content. */
    assert_int_equal(count_prefix("w2/.done", "a.csv."), 1);
    assert_false(exists("w2/a.csv"));
    s = content("w2/.done/deep/er/sub/c.csv");
    assert_string_equal(s, "charlie");
    free(s);
    assert_false(exists("w2/sub/c.csv"));

    /* Once more onto the same name: three files, none replaced. */
    put("w2/a.csv", "third a", 1700000000);
    out = poll_ok(poll_input(
        "w2", 0, json_pack("[o]", move("w2/a.csv", "w2/.done/a.csv"))));
    assert_int_equal(json_array_size(json_object_get(out, "disposed")), 1);
    assert_int_equal(count_prefix("w2/.done", "a.csv"), 3);
}

static void dispose_delete_and_missing(void **state) {
    (void)state;
    put("w3/b.txt", "bravo", 1700000000);
    put("w3/c.txt", "c", 1700000000);
    json_t *dispose =
        json_pack("[o, o, o]", del("w3/b.txt"), del("w3/gone.txt"),
                  move("w3/gone-too.txt", "w3/.done/gone-too.txt"));
    json_t *out = poll_ok(poll_input("w3", 0, dispose));
    assert_string_equal(relatives(out), "c.txt");
    const json_t *done = json_object_get(out, "disposed");
    assert_int_equal(json_array_size(done), 3);
    assert_true(in_list(done, "w3/b.txt"));
    assert_true(in_list(done, "w3/gone.txt"));
    assert_true(in_list(done, "w3/gone-too.txt"));
    assert_int_equal(json_array_size(json_object_get(out, "dispose_errors")),
                     0);
    assert_false(exists("w3/b.txt"));
    assert_true(exists("w3/c.txt"));
}

static void dispose_refused(void **state) {
    (void)state;
    put("w4/a.txt", "a", 1700000000);
    char a[2048];
    path_of(a, sizeof(a), "w4/a.txt");
    json_t *dispose =
        json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}, "
                  "{s:s, s:s}]",
                  "path", "/etc/passwd", "action", "delete", "path",
                  "../../etc/passwd", "action", "delete", "path", a, "action",
                  "move", "to", "/tmp/x.txt", "path", a, "action", "move", "to",
                  "w4/../../x.txt", "path", a, "action", "copy");
    json_t *out = poll_ok(poll_input("w4", 0, dispose));
    const json_t *errs = json_object_get(out, "dispose_errors");
    assert_int_equal(json_array_size(errs), 5);
    assert_int_equal(json_array_size(json_object_get(out, "disposed")), 0);
    const char *e0 =
        json_string_value(json_object_get(json_array_get(errs, 0), "error"));
    assert_non_null(strstr(e0, "outside the connection's root"));
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(errs, 0), "path")),
        "/etc/passwd");
    assert_non_null(strstr(
        json_string_value(json_object_get(json_array_get(errs, 1), "error")),
        "'..'"));
    assert_non_null(strstr(
        json_string_value(json_object_get(json_array_get(errs, 4), "error")),
        "unknown action"));
    /* Nothing moved. */
    assert_true(exists("w4/a.txt"));
    assert_string_equal(relatives(out), "a.txt");
}

static void watch_path_refused(void **state) {
    (void)state;
    json_t *in =
        json_pack("{s:s, s:b, s:n}", "path", "/etc", "recursive", 0, "cursor");
    json_decref(ctx.output);
    memset(&ctx, 0, sizeof(ctx));
    assert_int_equal(trigger->poll(&ctx, in), FERRY_EPERM);
    assert_false(ctx.retryable);
    assert_non_null(strstr(ctx.error, "outside the connection's root"));
    json_decref(in);
    in = json_pack("{s:s, s:b, s:n}", "path", "w-missing", "recursive", 0,
                   "cursor");
    assert_int_equal(trigger->poll(&ctx, in), FERRY_ENOTFOUND);
    assert_non_null(strstr(ctx.error, "no such file"));
    json_decref(in);
}

/* Every process with its parent, from /proc. */
static int proc_table(pid_t *pid, pid_t *ppid, int max) {
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        char p[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(p, sizeof(p), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        int pp = 0;
        if (rp && sscanf(rp + 2, "%*c %d", &pp) == 1) {
            pid[n] = (pid_t)atol(e->d_name);
            ppid[n++] = (pid_t)pp;
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* The per-connection sshd processes (children of the listener), and all
 * their descendants into all (*nall of them). Returns the number of
 * connections. */
static int sessions(pid_t *all, int *nall, int max) {
    static pid_t pid[65536], ppid[65536];
    const char *s = getenv("SFTP_TEST_SSHD_PID");
    pid_t listener = s ? (pid_t)atol(s) : 0;
    int n = proc_table(pid, ppid, 65536), conns = 0;
    *nall = 0;
    for (int i = 0; i < n; i++)
        if (ppid[i] == listener && *nall < max) {
            all[(*nall)++] = pid[i];
            conns++;
        }
    for (int k = 0; k < *nall; k++)
        for (int i = 0; i < n && *nall < max; i++)
            if (ppid[i] == all[k])
                all[(*nall)++] = pid[i];
    return conns;
}

static void one_session_then_reconnect(void **state) {
    (void)state;
    /* Every poll above used the session of the first one. */
    assert_int_equal(count_logs("connected to"), 1);
    pid_t pids[64];
    int n;
    assert_int_equal(sessions(pids, &n, 64), 1);
    /* The server side of the session goes away. */
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    usleep(200 * 1000);
    put("w5/z.txt", "z", 1700000000);
    json_t *out = poll_ok(poll_input("w5", 0, NULL));
    assert_string_equal(relatives(out), "z.txt");
    assert_int_equal(count_logs("was lost; connecting again"), 1);
    assert_int_equal(count_logs("connected to"), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(declared),
        cmocka_unit_test(listing),
        cmocka_unit_test(dispose_moves),
        cmocka_unit_test(dispose_delete_and_missing),
        cmocka_unit_test(dispose_refused),
        cmocka_unit_test(watch_path_refused),
        cmocka_unit_test(one_session_then_reconnect),
    };
    int rc = cmocka_run_group_tests(tests, load, unload);
    json_decref(ctx.output);
    return rc;
}
