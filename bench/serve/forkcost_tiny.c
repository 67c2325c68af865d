/*
 * The baseline of the fork benchmark: a tiny process (libc only, a few
 * pages touched) that forks, lets the child _exit(0) and reaps it, timed
 * like serve_forkcost's own forks. serve_forkcost starts it once and asks
 * it for rounds in between its own, so that both see the same machine.
 *
 * Protocol, on stdin/stdout: serve_forkcost writes a round size N as a
 * uint32_t; this program answers with N int64_t nanosecond samples, then
 * the parent CPU time the round took (int64_t ns). A size of 0 ends it.
 * At start it writes its VmRSS (KiB) and mapping count (two int64_t).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
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

int main(void) {
    int64_t size[2];
    self_size(size);
    if (full_write(1, size, sizeof(size)))
        return 1;
    for (;;) {
        uint32_t n;
        if (full_read(0, &n, sizeof(n)) || n == 0)
            return 0;
        int64_t *t = malloc(n * sizeof(*t));
        if (!t)
            return 1;
        int64_t c0 = cpu_ns();
        for (uint32_t i = 0; i < n; i++) {
            int64_t t0 = now_ns();
            pid_t pid = fork();
            if (pid == 0)
                _exit(0);
            int st;
            if (pid > 0)
                waitpid(pid, &st, 0);
            t[i] = now_ns() - t0;
        }
        int64_t c = cpu_ns() - c0;
        if (full_write(1, t, n * sizeof(*t)) || full_write(1, &c, sizeof(c)))
            return 1;
        free(t);
    }
}
