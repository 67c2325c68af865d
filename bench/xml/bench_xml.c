/*
 * The xml benchmark: the headline sample's transform on XML. A SOAP
 * response of 43,200 sensor readings (30 sensors, one a minute for 24
 * hours) goes through the flow in sensors-xml.json: xmlbench.file reads it
 * into a blob (a download's stand-in), xml.to_json streams it with a
 * select keeping the 2,880 readings on the quarter hour, and a jq step
 * converts them to Fahrenheit. The same at 10 times the size (ten days).
 *
 * Measured in the same run, each configuration --runs times, interleaved:
 *   baseline  `xmllint --stream --noout FILE`: libxml2 reading the file
 *             with the streaming reader and doing nothing else (whole
 *             process, wall clock);
 *   flow      flow_execute of the flow in a forked child (no store), wall
 *             clock of the execution; peak memory is the child's peak
 *             resident set (ru_maxrss) above its resident set when the
 *             execution starts;
 *   ferry run the `ferry` binary running the same flow as a user would
 *             (`ferry run`, with its SQLite store): the whole process.
 * Reported: medians, flow / baseline, peak memory / input size. Targets:
 * the flow within 3 times the baseline, peak memory under 4 times the
 * input; "TARGET MISSED" otherwise. See docs/bench.md.
 *
 * usage: bench_xml [--runs N] [--scales 1,10] [--tmpdir DIR] [--ferry PATH]
 * --runs (7): runs of each configuration at each scale; --scales (1,10):
 * the document's size in days of readings; --ferry: the binary for the
 * `ferry run` figures (default: this build's; skipped if it is missing).
 */
#include "flow/flow.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_XML_COMPONENT_DIR
#define BENCH_XML_COMPONENT_DIR "bench/xml/components"
#endif
#ifndef BENCH_XML_FLOW_DIR
#define BENCH_XML_FLOW_DIR "bench/xml"
#endif
#ifndef BENCH_XML_FERRY
#define BENCH_XML_FERRY "ferry"
#endif
#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE ""
#endif

#define TARGET_RATIO 3.0
#define TARGET_MEMORY 4.0
#define NSTEPS 3
#define MAX_RUNS 101

extern char **environ;

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_xml: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    double tmp[MAX_RUNS];
    memcpy(tmp, v, (size_t)n * sizeof(*v));
    qsort(tmp, (size_t)n, sizeof(*tmp), cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- the document ---- */

/* Writes days * 1,440 minutes * 30 sensors readings; returns the number
 * of bytes. Deterministic: a Park-Miller generator with a fixed seed. */
static long write_document(const char *path, int days, long *records) {
    FILE *f = fopen(path, "w");
    unsigned long seed = 20261127;
    long n = 0;
    if (!f)
        die("%s: %s", path, strerror(errno));
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<soap:Envelope "
               "xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\n"
               "  <soap:Body>\n"
               "    <GetReadingsResponse xmlns=\"urn:example:sensors\">\n");
    for (int day = 0; day < days; day++) {
        for (int m = 0; m < 1440; m++) {
            for (int s = 0; s < 30; s++) {
                seed = seed * 16807 % 2147483647;
                int tenths = 185 + (int)(seed % 60);
                int hum = 380 + (int)(seed / 60 % 120);
                fprintf(f,
                        "      <Reading>\n"
                        "        <SensorId>ahu-%02d</SensorId>\n"
                        "        <Time>2026-11-%02dT%02d:%02d:00Z</Time>\n"
                        "        <Celsius>%d.%d</Celsius>\n"
                        "        <Humidity>%d.%d</Humidity>\n"
                        "      </Reading>\n",
                        s + 1, 1 + day, m / 60, m % 60, tenths / 10,
                        tenths % 10, hum / 10, hum % 10);
                n++;
            }
        }
    }
    fprintf(f, "    </GetReadingsResponse>\n  </soap:Body>\n"
               "</soap:Envelope>\n");
    if (fclose(f))
        die("%s: %s", path, strerror(errno));
    struct stat sb;
    if (stat(path, &sb))
        die("%s: %s", path, strerror(errno));
    *records = n;
    return (long)sb.st_size;
}

/* ---- one run of each ---- */

typedef struct proc_result {
    double ms;
    long maxrss_kb;
    int ok;
} proc_result;

/* Runs argv to the end, stdout and stderr to /dev/null. */
static proc_result run_process(char *const argv[]) {
    proc_result r = {0};
    posix_spawn_file_actions_t fa;
    struct rusage ru;
    pid_t pid;
    int status;
    double t0;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    t0 = now_ms();
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ))
        die("cannot run %s: %s", argv[0], strerror(errno));
    if (wait4(pid, &status, 0, &ru) != pid)
        die("wait4: %s", strerror(errno));
    r.ms = now_ms() - t0;
    posix_spawn_file_actions_destroy(&fa);
    r.maxrss_kb = ru.ru_maxrss;
    r.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return r;
}

typedef struct flow_run {
    double ms;
    double step_ms[NSTEPS];
    long rss_before_kb;
    long maxrss_kb;
    long kept; /* length of the flow's output */
    int ok;
} flow_run;

typedef struct bench {
    abi_registry reg;
    flow_integration *ig;
    flow_instance *in;
    const flow_def *f;
    char tmpdir[4096];
    int runs;
    const char *ferry; /* NULL: no `ferry run` figures */
} bench;

static void on_step(void *ud, const flow_step_event *ev) {
    flow_run *r = ud;
    static const char *const names[NSTEPS] = {"download", "quarter",
                                              "fahrenheit"};
    for (int i = 0; i < NSTEPS; i++)
        if (ev->depth == 0 && !strcmp(ev->name, names[i]))
            r->step_ms[i] = ev->duration_us / 1e3;
}

/* flow_execute in a forked child, so that its peak resident set is its
 * own (ru_maxrss) and nothing it allocates stays for the next run. */
static flow_run run_flow(bench *b, const char *path) {
    flow_run r = {0};
    int fds[2];
    pid_t pid;
    struct rusage ru;
    int status;

    if (pipe(fds))
        die("pipe: %s", strerror(errno));
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        flow_exec_opts o = {.tmpdir = b->tmpdir, .on_step = on_step, .ud = &r};
        flow_result res = {0};
        json_t *trigger =
            json_pack("{s:s, s:{s:s}}", "type", "manual", "body", "path", path);
        close(fds[0]);
        r.rss_before_kb = rss_kb();
        double t0 = now_ms();
        int rc = flow_execute(b->ig, b->in, b->f, trigger, &o, &res);
        r.ms = now_ms() - t0;
        r.ok = rc == 0 && !strcmp(res.status, "succeeded");
        if (!r.ok)
            fprintf(stderr, "bench_xml: the flow failed: %s\n",
                    res.error_message ? res.error_message : "?");
        r.kept = (long)json_array_size(res.output);
        if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r)
            _exit(2);
        _exit(0);
    }
    close(fds[1]);
    if (read(fds[0], &r, sizeof r) != (ssize_t)sizeof r)
        r.ok = 0;
    close(fds[0]);
    if (wait4(pid, &status, 0, &ru) != pid)
        die("wait4: %s", strerror(errno));
    r.maxrss_kb = ru.ru_maxrss;
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        r.ok = 0;
    return r;
}

/* ---- the report ---- */

static int missed;

static void target(const char *what, double v, double limit, const char *unit) {
    if (v <= limit)
        printf("  target: %s %.2f%s, under %.0f%s: met\n", what, v, unit, limit,
               unit);
    else {
        printf("  TARGET MISSED: %s %.2f%s, target under %.0f%s\n", what, v,
               unit, limit, unit);
        missed++;
    }
}

static void run_scale(bench *b, int scale) {
    char path[4200], db[4200], input[4400];
    long records, bytes;
    double base_ms[MAX_RUNS], flow_ms[MAX_RUNS], run_ms[MAX_RUNS];
    double steps[NSTEPS][MAX_RUNS], growth[MAX_RUNS], peak[MAX_RUNS];
    double base_rss[MAX_RUNS], run_rss[MAX_RUNS];
    long kept = -1;
    double t0 = now_ms();

    snprintf(path, sizeof path, "%s/readings-%dx.xml", b->tmpdir, scale);
    snprintf(db, sizeof db, "%s/ferry-%dx.db", b->tmpdir, scale);
    snprintf(input, sizeof input, "{\"path\": \"%s\"}", path);
    bytes = write_document(path, scale, &records);
    printf("\n== %dx: %ld readings, %.1f MB of XML (written in %.0f ms)\n",
           scale, records, bytes / 1e6, now_ms() - t0);

    char *xmllint[] = {"xmllint", "--stream", "--noout", path, NULL};
    char *ferry[] = {(char *)b->ferry,
                     "run",
                     BENCH_XML_FLOW_DIR "/sensors-xml.json",
                     "--input",
                     input,
                     "--components-dir",
                     BENCH_XML_COMPONENT_DIR,
                     "--db",
                     db,
                     "--quiet",
                     NULL};

    for (int i = 0; i < b->runs; i++) {
        proc_result x = run_process(xmllint);
        if (!x.ok)
            die("xmllint --stream failed on %s", path);
        base_ms[i] = x.ms;
        base_rss[i] = (double)x.maxrss_kb;

        flow_run fr = run_flow(b, path);
        if (!fr.ok)
            die("the flow failed");
        if (kept >= 0 && fr.kept != kept)
            die("the flow kept %ld readings, then %ld", kept, fr.kept);
        kept = fr.kept;
        flow_ms[i] = fr.ms;
        for (int s = 0; s < NSTEPS; s++)
            steps[s][i] = fr.step_ms[s];
        peak[i] = (double)fr.maxrss_kb;
        growth[i] = (double)(fr.maxrss_kb - fr.rss_before_kb);

        if (b->ferry) {
            unlink(db);
            proc_result fe = run_process(ferry);
            if (!fe.ok)
                die("ferry run failed (%s)", b->ferry);
            run_ms[i] = fe.ms;
            run_rss[i] = (double)fe.maxrss_kb;
        } else {
            run_ms[i] = run_rss[i] = 0;
        }
    }
    unlink(db);
    if (kept != records / 15)
        die("the flow kept %ld readings, expected %ld", kept, records / 15);

    double bm = median(base_ms, b->runs), fm = median(flow_ms, b->runs);
    double rm = median(run_ms, b->runs), gm = median(growth, b->runs);
    double pm = median(peak, b->runs), mb = bytes / 1024.0;
    printf("%-34s %10s %12s\n", "", "median ms", "peak RSS MB");
    printf("%-34s %10.1f %12.1f\n", "baseline: xmllint --stream", bm,
           median(base_rss, b->runs) / 1024);
    printf("%-34s %10.1f %12.1f  (%.1f above its start)\n",
           "flow (engine, no store)", fm, pm / 1024, gm / 1024);
    printf("%-34s %10.1f\n", "  download (file to blob)",
           median(steps[0], b->runs));
    printf("%-34s %10.1f\n", "  quarter (xml.to_json, select)",
           median(steps[1], b->runs));
    printf("%-34s %10.1f\n", "  fahrenheit (jq)", median(steps[2], b->runs));
    if (b->ferry)
        printf("%-34s %10.1f %12.1f\n", "ferry run (whole process, store)", rm,
               median(run_rss, b->runs) / 1024);
    printf("kept %ld readings of %ld\n", kept, records);
    target("flow / baseline", fm / bm, TARGET_RATIO, "x");
    target("flow peak memory / input", gm / mb, TARGET_MEMORY, "x");
    printf("xml.%dx: input_bytes=%ld records=%ld kept=%ld baseline_ms=%.1f "
           "flow_ms=%.1f ratio=%.2f download_ms=%.1f to_json_ms=%.1f "
           "jq_ms=%.1f flow_peak_rss_kb=%.0f flow_growth_kb=%.0f "
           "memory_ratio=%.2f ferry_run_ms=%.1f ferry_run_ratio=%.2f "
           "ferry_run_rss_kb=%.0f ferry_run_memory_ratio=%.2f\n",
           scale, bytes, records, kept, bm, fm, fm / bm,
           median(steps[0], b->runs), median(steps[1], b->runs),
           median(steps[2], b->runs), pm, gm, gm / mb, rm, rm / bm,
           median(run_rss, b->runs), median(run_rss, b->runs) / mb);
    unlink(path);
}

static int parse_int(const char *s, const char *what) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 1 || v > MAX_RUNS)
        die("%s: expected 1 to %d, got '%s'", what, MAX_RUNS, s);
    return (int)v;
}

int main(int argc, char **argv) {
    bench b = {.runs = 7, .ferry = BENCH_XML_FERRY};
    const char *tmp = getenv("TMPDIR");
    int scales[8] = {1, 10}, nscales = 2;
    char *err = NULL;
    flow_diags d = {0};

    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--runs")) {
            b.runs = parse_int(argv[++i], "--runs");
        } else if (i + 1 < argc && !strcmp(argv[i], "--scales")) {
            char *list = argv[++i], *tok, *save = NULL;
            nscales = 0;
            for (tok = strtok_r(list, ",", &save); tok && nscales < 8;
                 tok = strtok_r(NULL, ",", &save))
                scales[nscales++] = parse_int(tok, "--scales");
        } else if (i + 1 < argc && !strcmp(argv[i], "--tmpdir")) {
            tmp = argv[++i];
        } else if (i + 1 < argc && !strcmp(argv[i], "--ferry")) {
            b.ferry = argv[++i];
        } else {
            die("usage: bench_xml [--runs N] [--scales 1,10] [--tmpdir DIR] "
                "[--ferry PATH]");
        }
    }
    snprintf(b.tmpdir, sizeof b.tmpdir, "%s/ferry-bench-xml-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(b.tmpdir))
        die("mkdtemp %s: %s", b.tmpdir, strerror(errno));

    if (flow_load_registry(&b.reg, BENCH_XML_COMPONENT_DIR, &err))
        die("%s: %s", BENCH_XML_COMPONENT_DIR, err ? err : "cannot load");
    abi_print_refusals(&b.reg, stderr);
    b.ig = flow_integration_load(BENCH_XML_FLOW_DIR "/sensors-xml.json", &b.reg,
                                 &d);
    if (b.ig)
        b.in = flow_instance_load(NULL, b.ig, &b.reg, &d);
    if (!b.ig || !b.in) {
        flow_diags_print(&d, stderr);
        die("cannot load the flow");
    }
    flow_diags_free(&d);
    b.f = flow_find(b.ig, "export");
    if (access(b.ferry, X_OK)) {
        printf("note: %s is missing: no `ferry run` figures\n", b.ferry);
        b.ferry = NULL;
    }

    printf("ferry xml benchmark: %d runs of each, interleaved; xmllint %s\n",
           b.runs, "--stream --noout as the baseline");
    if (strcmp(BENCH_BUILD_TYPE, "Release") != 0)
        printf("note: a %s build, not Release: bench/run builds one\n",
               *BENCH_BUILD_TYPE ? BENCH_BUILD_TYPE : "default");
    for (int i = 0; i < nscales; i++)
        run_scale(&b, scales[i]);
    printf("\n%s\n",
           missed ? "TARGET MISSED: see the lines above" : "all targets met");

    flow_instance_free(b.in);
    flow_integration_free(b.ig);
    abi_registry_free(&b.reg);
    rmdir(b.tmpdir);
    return 0;
}
