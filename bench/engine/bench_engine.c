/*
 * The engine benchmark. Runs flows in this process with flow_execute and
 * reports what the engine adds to the work of the steps themselves, per
 * step, and the peak heap an execution needs. See docs/bench.md for what
 * every number means.
 *
 * Workloads (bench/engine/engine.json and sensors.json):
 *   pass     bench.make (a ~1 MB array of records), then five bench.pass
 *            steps, each handing on the previous step's output
 *   pass6    six bench.pass steps handing on the trigger, a ~1 MB value
 *            made once: no step does any work, only the engine does
 *   copy     bench.make, then five bench.copy steps (deep copies)
 *   sensors  43,200 records; a jq step keeps the 2,880 quarter-hours; a
 *            for_each runs one action (bench.c_to_f) per item
 * Each runs without a store and with the SQLite store on a temporary file.
 *
 * The work of a step is measured two ways, both in the same run:
 *   - inside the execution: every bench action the flows use is swapped,
 *     in the loaded definitions, for a copy whose run function times the
 *     real one; the execution's time outside those calls is the engine's;
 *   - directly: the same action functions called in sequence without the
 *     engine (each output the next one's input), paired with a flow
 *     execution, the two in alternating order.
 *
 * usage: bench_engine [--runs N] [--slow-runs N] [--sensor-runs N]
 *                     [--components DIR] [--flows DIR] [--tmpdir DIR]
 *                     [WORKLOAD...]
 * --runs (1000): executions of pass and pass6 without a store;
 * --slow-runs (100): of copy, and of every flow with the store (each of
 *   those takes a large fraction of a second here);
 * --sensor-runs (10): of sensors, in each configuration.
 */
#include "flow/exec_internal.h"
#include "flow/flow.h"
#include "flow/jqv.h"
#include "heap.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_COMPONENT_DIR
#define BENCH_COMPONENT_DIR "bench/engine/components"
#endif
#ifndef BENCH_FLOW_DIR
#define BENCH_FLOW_DIR "bench/engine"
#endif
#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE ""
#endif

#define TARGET_OVERHEAD_US 20.0
#define TARGET_PEAK_RATIO 3.0
#define MAX_RECORDED 65536 /* the engine's default */
#define NSTEPS 6
#define SENSOR_RECORDS 43200
#define STORE_ROTATE 200 /* executions per database file */

/* ---- small things ---- */

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

_Noreturn static void die(const char *fmt, ...) FERRY_PRINTF(1, 2);
_Noreturn static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_engine: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    double median, mean, p25, p75, p90;
} stats;

static double pick(const double *sorted, size_t n, double q) {
    size_t i = (size_t)(q * (double)n);
    return sorted[i < n ? i : n - 1];
}

static stats stats_of(const double *v, size_t n) {
    stats s = {0};
    if (!n)
        return s;
    double *c = malloc(n * sizeof *c);
    if (!c)
        die("out of memory");
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_double);
    s.median = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    s.p25 = pick(c, n, 0.25);
    s.p75 = pick(c, n, 0.75);
    s.p90 = pick(c, n, 0.90);
    for (size_t i = 0; i < n; i++)
        s.mean += c[i];
    s.mean /= (double)n;
    free(c);
    return s;
}

/* a / b, or 0 when nothing was counted (no heap accounting). */
static double ratio(size_t a, size_t b) {
    return b ? (double)a / (double)b : 0;
}

static double *alloc_samples(size_t n) {
    double *v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        die("out of memory");
    return v;
}

/* ---- timing the actions from outside the component ---- */

#define NWRAP 4

typedef struct wrap {
    const ferry_action *orig;
    ferry_action copy; /* orig, with run replaced by a timing wrapper */
} wrap;

static wrap wraps[NWRAP];
static double inside_us; /* time spent in wrapped actions, accumulated */
/* When each of the first NSTEPS wrapped calls began and ended. */
static double marks[2 * NSTEPS];
static int nmarks;

static int wrapped_run(int k, ferry_ctx *ctx, const json_t *input) {
    double t0 = now_us();
    int rc = wraps[k].orig->run(ctx, input);
    double t1 = now_us();
    inside_us += t1 - t0;
    if (nmarks < 2 * NSTEPS) {
        marks[nmarks++] = t0;
        marks[nmarks++] = t1;
    }
    return rc;
}

static int wrap0(ferry_ctx *c, const json_t *i) {
    return wrapped_run(0, c, i);
}
static int wrap1(ferry_ctx *c, const json_t *i) {
    return wrapped_run(1, c, i);
}
static int wrap2(ferry_ctx *c, const json_t *i) {
    return wrapped_run(2, c, i);
}
static int wrap3(ferry_ctx *c, const json_t *i) {
    return wrapped_run(3, c, i);
}
static const ferry_action_cb wrap_fns[NWRAP] = {wrap0, wrap1, wrap2, wrap3};

static const ferry_action *wrap_action(const ferry_action *a) {
    for (int k = 0; k < NWRAP; k++) {
        if (wraps[k].orig == a)
            return &wraps[k].copy;
        if (!wraps[k].orig) {
            wraps[k].orig = a;
            wraps[k].copy = *a;
            wraps[k].copy.run = wrap_fns[k];
            return &wraps[k].copy;
        }
    }
    die("more than %d bench actions to time", NWRAP);
}

static const ferry_action *unwrapped(const ferry_action *a) {
    for (int k = 0; k < NWRAP; k++)
        if (a == &wraps[k].copy)
            return wraps[k].orig;
    return a;
}

static void wrap_list(flow_step_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        flow_step *st = &l->steps[i];
        if (st->kind == FLOW_STEP_ACTION && st->action_id &&
            !strncmp(st->action_id, "bench.", 6))
            st->action = wrap_action(st->action);
        wrap_list(&st->body);
        for (size_t c = 0; c < st->ncases; c++)
            wrap_list(&st->cases[c].steps);
        wrap_list(&st->otherwise);
    }
}

/* ---- setup shared by the workloads ---- */

typedef struct bench {
    abi_registry reg;
    flow_integration *engine_ig, *sensors_ig;
    flow_instance *engine_in, *sensors_in;
    /* the timed copies, as the flows see them */
    const ferry_action *make, *pass, *copy, *c_to_f;
    char tmpdir[4096];
    int runs, slow_runs, sensor_runs;
    int missed; /* targets missed */
} bench;

static const ferry_action *find_action(const bench *b, const char *id) {
    const ferry_action *a = abi_find_action(&b->reg, id, NULL);
    if (!a)
        die("action %s not found: is the bench component built?", id);
    return wrap_action(a);
}

static flow_integration *load_ig(bench *b, const char *dir, const char *name,
                                 flow_instance **in) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    flow_diags d = {0};
    flow_integration *ig = flow_integration_load(path, &b->reg, &d);
    if (ig)
        *in = flow_instance_load(NULL, ig, &b->reg, &d);
    if (!ig || !*in) {
        flow_diags_print(&d, stderr);
        die("cannot load %s", path);
    }
    flow_diags_free(&d);
    for (size_t i = 0; i < ig->nflows; i++)
        wrap_list(&ig->flows[i].steps);
    return ig;
}

static const flow_def *find_flow(const flow_integration *ig, const char *n) {
    const flow_def *f = flow_find(ig, n);
    if (!f)
        die("no flow %s in %s", n, ig->file);
    return f;
}

/* Step idx of flow name as written in ig's file (borrowed), or NULL. */
static json_t *doc_step(const flow_integration *ig, const char *name,
                        size_t idx) {
    size_t i;
    json_t *fl;
    json_array_foreach(json_object_get(ig->doc, "flows"), i, fl) {
        const char *n = json_string_value(json_object_get(fl, "name"));
        if (n && !strcmp(n, name))
            return json_array_get(json_object_get(fl, "steps"), idx);
    }
    return NULL;
}

/* Calls an action the way the engine does, minus the engine: a bare ctx,
 * the real host table. Returns the output (new ref). */
static json_t *call(const ferry_action *a, json_t *input) {
    ferry_ctx ctx = {0};
    int rc = a->run(&ctx, input);
    if (rc != FERRY_OK)
        die("%s failed: %s", a->id,
            ctx.error_message ? ctx.error_message : ferry_strerror(rc));
    free(ctx.error_message);
    return ctx.output ? ctx.output : json_null();
}

/* Where the engine's time goes in an execution of NSTEPS actions. */
typedef struct gaps {
    double first;   /* from flow_execute's start to the first action */
    double between; /* between two actions, the mean of NSTEPS - 1 */
    double last;    /* from the last action to flow_execute's return */
} gaps;

/* Times one execution: *exec_us is flow_execute alone, the return value
 * flow_execute plus freeing its result (as the direct baseline frees its
 * last value); *in_actions_us the time spent inside the bench actions;
 * *g, for a flow of NSTEPS bench actions, the engine's time around them. */
static double run_flow(const flow_integration *ig, const flow_instance *in,
                       const flow_def *f, json_t *trigger,
                       const flow_exec_opts *o, double *exec_us,
                       double *in_actions_us, gaps *g) {
    flow_result res;
    inside_us = 0;
    nmarks = 0;
    double t0 = now_us();
    int rc = flow_execute(ig, in, f, trigger, o, &res);
    double t1 = now_us();
    double inside = inside_us;
    if (g && nmarks == 2 * NSTEPS) {
        g->first = marks[0] - t0;
        g->between = 0;
        for (int i = 1; i < 2 * NSTEPS - 1; i += 2)
            g->between += (marks[i + 1] - marks[i]) / (NSTEPS - 1);
        g->last = t1 - marks[2 * NSTEPS - 1];
    }
    if (rc || strcmp(res.status, "succeeded") != 0)
        die("flow %s %s: %s: %s", f->name, res.status ? res.status : "?",
            res.error_step ? res.error_step : "-",
            res.error_message ? res.error_message : "-");
    flow_result_clear(&res);
    double t2 = now_us();
    if (exec_us)
        *exec_us = t1 - t0;
    if (in_actions_us)
        *in_actions_us = inside;
    return t2 - t0;
}

/* A SQLite store on a fresh file in the temporary directory. */
typedef struct bench_store {
    store *st;
    char path[4200];
    int n; /* files opened so far */
} bench_store;

static void bstore_drop(bench_store *s) {
    if (!s->st)
        return;
    store_close(s->st);
    s->st = NULL;
    char p[4300];
    unlink(s->path);
    snprintf(p, sizeof p, "%s-wal", s->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", s->path);
    unlink(p);
}

static void bstore_open(bench_store *s, const char *dir) {
    bstore_drop(s);
    snprintf(s->path, sizeof s->path, "%s/store-%d.db", dir, s->n++);
    char *err = NULL;
    s->st = store_open_sqlite(s->path, &err);
    if (!s->st)
        die("store: %s", err ? err : "?");
}

/* Median nanoseconds of one call of a with input (over about n calls). */
static double call_ns(const ferry_action *a, json_t *input, int n) {
    double t[32];
    for (int r = 0; r < 32; r++) {
        double t0 = now_us();
        for (int i = 0; i < n / 32; i++)
            json_decref(call(a, input));
        t[r] = (now_us() - t0) * 1e3 / (double)(n / 32);
    }
    return stats_of(t, 32).median;
}

/* Median microseconds of flow_dump_bounded(v) with the default maximum;
 * *full gets the full size it reports. */
static double dump_us(const json_t *v, int n, size_t *full) {
    double *t = alloc_samples((size_t)n);
    for (int i = 0; i < n; i++) {
        char *text = NULL;
        double t0 = now_us();
        size_t sz = flow_dump_bounded(v, MAX_RECORDED, &text, NULL);
        t[i] = now_us() - t0;
        free(text);
        if (full)
            *full = sz;
    }
    double m = stats_of(t, (size_t)n).median;
    free(t);
    return m;
}

/* A dump that stops once it has max bytes: what recording a prefix costs
 * when the full size is not needed. */
typedef struct prefix_buf {
    char *buf;
    size_t len, max;
} prefix_buf;

static int prefix_cb(const char *s, size_t n, void *data) {
    prefix_buf *p = data;
    size_t take = n < p->max - p->len ? n : p->max - p->len;
    memcpy(p->buf + p->len, s, take);
    p->len += take;
    return p->len >= p->max ? -1 : 0;
}

/* Microseconds to write, on a fresh store: an execution row whose trigger
 * is trigger_text (*exec_us), then n step rows with text as both input and
 * output (their statistics are returned). */
static stats store_rows_us(const char *dir, const char *trigger_text,
                           const char *text, size_t size, int n,
                           double *exec_us) {
    bench_store bs = {0};
    bstore_open(&bs, dir);
    store_exec e = {.id = "ex_bench",
                    .integration = "bench",
                    .instance = "default",
                    .flow = "bench",
                    .trigger_json = trigger_text,
                    .status = "running",
                    .created_us = store_now_us()};
    double t0 = now_us();
    if (bs.st->vt->exec_begin(bs.st, &e))
        die("store: %s", bs.st->errmsg);
    if (exec_us)
        *exec_us = now_us() - t0;
    double *t = alloc_samples((size_t)n);
    for (int i = 0; i < n; i++) {
        store_step st = {.execution_id = "ex_bench",
                         .seq = i + 1,
                         .path = "step",
                         .name = "step",
                         .kind = "action",
                         .action = "bench.pass",
                         .status = "succeeded",
                         .started_us = store_now_us(),
                         .input_json = text,
                         .input_size = size,
                         .output_json = text,
                         .output_size = size};
        t0 = now_us();
        if (bs.st->vt->step_record(bs.st, &st))
            die("store: %s", bs.st->errmsg);
        t[i] = now_us() - t0;
    }
    bstore_drop(&bs);
    stats m = stats_of(t, (size_t)n);
    free(t);
    return m;
}

static void target_line(bench *b, const char *what, double v, double target,
                        const char *unit) {
    if (v < target) {
        printf("  target: %s %.2f%s, under %.0f%s: met\n", what, v, unit,
               target, unit);
    } else {
        printf("  TARGET MISSED: %s %.2f%s, target under %.0f%s\n", what, v,
               unit, target, unit);
        b->missed++;
    }
}

/* ---- workloads over a ~1 MB value ---- */

/* What the direct baseline runs for one execution of a flow. */
enum direct_kind { DIRECT_MAKE_PASS, DIRECT_PASS6, DIRECT_MAKE_COPY };

typedef struct direct {
    enum direct_kind kind;
    json_t *make_in;  /* {"records": N} */
    json_t *value_in; /* {"value": ...}, reused */
    json_t *trigger;  /* for pass6 */
} direct;

/* The six actions of one execution, called directly in sequence, each
 * output the next one's input, as in the flow; the last value freed. */
static void run_direct(const bench *b, direct *d) {
    json_t *v;
    const ferry_action *a = d->kind == DIRECT_MAKE_COPY ? b->copy : b->pass;
    int n = NSTEPS - 1;
    if (d->kind == DIRECT_PASS6) {
        v = json_incref(d->trigger);
        n = NSTEPS;
    } else {
        v = call(b->make, d->make_in);
    }
    for (int i = 0; i < n; i++) {
        json_object_set(d->value_in, "value", v);
        json_t *out = call(a, d->value_in);
        json_decref(v);
        v = out;
    }
    json_object_del(d->value_in, "value");
    json_decref(v);
}

typedef struct config_result {
    int runs;
    /* microseconds per execution */
    stats flow;    /* flow_execute and freeing the result */
    stats inside;  /* inside the six actions, during flow_execute */
    stats outside; /* flow_execute minus inside: the engine's time */
    stats first, between, last; /* the engine's time, by where (gaps) */
    stats direct;               /* the six actions called directly */
    stats diff;                 /* flow - direct, paired */
    size_t peak;                /* max over executions, above their start */
} config_result;

/* Runs flow f `runs` times, each paired with one direct execution, the two
 * in alternating order so that drift hits both alike. */
static config_result measure(bench *b, const flow_def *f, json_t *trigger,
                             direct *d, bench_store *bs, int runs) {
    flow_exec_opts o = {.max_recorded = MAX_RECORDED, .tmpdir = b->tmpdir};
    config_result r = {.runs = runs};
    size_t n = (size_t)runs;
    double *tf = alloc_samples(n), *ti = alloc_samples(n),
           *to = alloc_samples(n), *td = alloc_samples(n),
           *dd = alloc_samples(n), *g1 = alloc_samples(n),
           *g2 = alloc_samples(n), *g3 = alloc_samples(n);
    if (bs)
        bstore_open(bs, b->tmpdir);
    for (int i = 0; i < 5; i++) { /* warm up */
        o.st = bs ? bs->st : NULL;
        run_flow(b->engine_ig, b->engine_in, f, trigger, &o, NULL, NULL, NULL);
        run_direct(b, d);
    }
    for (int i = 0; i < runs; i++) {
        if (bs && i > 0 && i % STORE_ROTATE == 0)
            bstore_open(bs, b->tmpdir);
        o.st = bs ? bs->st : NULL;
        double t0 = 0, exec = 0, inside = 0;
        gaps g = {0};
        if (i % 2) {
            t0 = now_us();
            run_direct(b, d);
            td[i] = now_us() - t0;
        }
        size_t before = heap_in_use();
        heap_reset_peak();
        tf[i] = run_flow(b->engine_ig, b->engine_in, f, trigger, &o, &exec,
                         &inside, &g);
        if (heap_peak() - before > r.peak)
            r.peak = heap_peak() - before;
        if (i % 2 == 0) {
            t0 = now_us();
            run_direct(b, d);
            td[i] = now_us() - t0;
        }
        ti[i] = inside;
        to[i] = exec - inside;
        g1[i] = g.first;
        g2[i] = g.between;
        g3[i] = g.last;
        dd[i] = tf[i] - td[i];
    }
    if (bs)
        bstore_drop(bs);
    r.flow = stats_of(tf, n);
    r.inside = stats_of(ti, n);
    r.outside = stats_of(to, n);
    r.direct = stats_of(td, n);
    r.diff = stats_of(dd, n);
    r.first = stats_of(g1, n);
    r.between = stats_of(g2, n);
    r.last = stats_of(g3, n);
    free(g1);
    free(g2);
    free(g3);
    free(tf);
    free(ti);
    free(to);
    free(td);
    free(dd);
    return r;
}

static void workload_value(bench *b, const char *name) {
    const flow_def *f = find_flow(b->engine_ig, name);
    direct d = {.kind = DIRECT_MAKE_PASS};
    if (!strcmp(name, "pass6"))
        d.kind = DIRECT_PASS6;
    else if (!strcmp(name, "copy"))
        d.kind = DIRECT_MAKE_COPY;
    /* The records count of the make step in engine.json's "pass" flow. */
    json_int_t records = json_integer_value(json_object_get(
        json_object_get(doc_step(b->engine_ig, "pass", 0), "input"),
        "records"));
    if (records < 1)
        die("engine.json: the pass flow's make step has no records count");
    d.make_in = json_pack("{s:I}", "records", records);
    d.value_in = json_object();

    /* The value's heap footprint (in use after making it, minus before),
     * its size as JSON text, and what freeing it costs. */
    size_t before = heap_in_use();
    json_t *value = call(unwrapped(b->make), d.make_in);
    size_t vheap = heap_in_use() - before;
    size_t vtext = json_dumpb(value, NULL, 0, JSON_COMPACT);
    double t_free;
    {
        double t[5];
        for (int i = 0; i < 5; i++) {
            json_t *v = call(unwrapped(b->make), d.make_in);
            double t0 = now_us();
            json_decref(v);
            t[i] = now_us() - t0;
        }
        t_free = stats_of(t, 5).median;
    }
    d.trigger = d.kind == DIRECT_PASS6 ? value : NULL;

    printf("\n== %s: %s ==\n", name,
           d.kind == DIRECT_PASS6
               ? "six bench.pass steps handing on a ~1 MB trigger"
           : d.kind == DIRECT_MAKE_COPY
               ? "bench.make, then five bench.copy (deep copy) steps"
               : "bench.make, then five bench.pass steps (no copy)");
    printf("  value: %lld records, %zu bytes of compact JSON, %zu bytes of "
           "heap, %.0f us to free\n",
           (long long)records, vtext, vheap, t_free);
    json_t *pin = json_pack("{s:O}", "value", value);
    printf("  bench.pass called directly: %.0f ns a call\n",
           call_ns(unwrapped(b->pass), pin, 1 << 20));

    /* A copy execution costs as much as a stored one: fewer of those. */
    int runs_a = d.kind == DIRECT_MAKE_COPY ? b->slow_runs : b->runs;
    config_result a = measure(b, f, d.trigger, &d, NULL, runs_a);
    bench_store bs = {0};
    config_result s = measure(b, f, d.trigger, &d, &bs, b->slow_runs);

    /* The engine's overhead per step: the time outside the actions, except
     * for copy, whose flow frees the copies it drops as it goes (outside
     * the actions); the direct baseline frees them too, so for copy the
     * paired difference is the fair figure. */
    int paired = d.kind == DIRECT_MAKE_COPY;
    const char *method = paired ? "paired" : "in_execution";
    double out_a = a.outside.median / NSTEPS, out_s = s.outside.median / NSTEPS;
    double pair_a = a.diff.median / NSTEPS, pair_s = s.diff.median / NSTEPS;
    double ov_a = paired ? pair_a : out_a, ov_s = paired ? pair_s : out_s;
    double work = a.direct.median / NSTEPS;
    double rec = ov_s - ov_a;
    printf("  medians, in us per execution    %12s %12s\n", "no store",
           "store");
    printf("    executions                    %12d %12d\n", a.runs, s.runs);
    printf("    flow_execute + free result    %12.1f %12.1f\n", a.flow.median,
           s.flow.median);
    printf("      inside the six actions      %12.1f %12.1f\n", a.inside.median,
           s.inside.median);
    printf("      outside them (the engine)   %12.1f %12.1f\n",
           a.outside.median, s.outside.median);
    printf("        before the first action   %12.1f %12.1f\n", a.first.median,
           s.first.median);
    printf("        between two, each         %12.1f %12.1f\n",
           a.between.median, s.between.median);
    printf("        after the last            %12.1f %12.1f\n", a.last.median,
           s.last.median);
    printf("    direct: six actions alone     %12.1f %12.1f\n", a.direct.median,
           s.direct.median);
    printf("    flow - direct, paired         %12.1f %12.1f   (interquartile "
           "%.1f .. %.1f without the store)\n",
           a.diff.median, s.diff.median, a.diff.p25, a.diff.p75);
    if (!paired) {
        printf("  per step, no store: engine overhead %.2f us (paired "
               "estimate %.1f us) on %.2f us of work; flow/direct %.3fx\n",
               ov_a, pair_a, work, a.flow.median / a.direct.median);
    } else {
        printf("  per step, no store: paired estimate %.1f us (interquartile "
               "%.1f .. %.1f) on %.2f us of work; flow/direct %.3fx\n",
               pair_a, a.diff.p25 / NSTEPS, a.diff.p75 / NSTEPS, work,
               a.flow.median / a.direct.median);
        printf("    the %.1f us a step outside the actions include freeing "
               "the 5 copies the flow drops, about %.0f us a step\n",
               out_a, 5 * t_free / NSTEPS);
    }
    printf("  per step, store:    engine overhead %.2f us, of which recording "
           "%.2f us; flow/direct %.3fx\n",
           ov_s, rec, s.flow.median / s.direct.median);
    /* Peak heap of an execution: its highest use above its start, plus
     * the value when that was alive before it started (pass6's trigger). */
    size_t held = d.kind == DIRECT_PASS6 ? vheap : 0;
    size_t peak_a = heap_available() ? a.peak + held : 0;
    size_t peak_s = heap_available() ? s.peak + held : 0;
    double pr_a = ratio(peak_a, vheap);
    double pr_s = ratio(peak_s, vheap);
    if (heap_available())
        printf("  peak heap of an execution%s: no store %zu bytes (%.2fx the "
               "value), store %zu bytes (%.2fx)\n",
               held ? ", the trigger included" : "", peak_a, pr_a, peak_s,
               pr_s);
    else
        printf("  peak heap: not measured (sanitizer build)\n");

    /* What recording costs, piece by piece: the three dumps take turns,
     * so that the machine's state of the moment weighs on each alike. */
    size_t full = 0;
    prefix_buf p = {.buf = malloc(MAX_RECORDED + 1), .max = MAX_RECORDED};
    double t_out[20], t_in[20], t_pre[20];
    for (int i = 0; i < 20; i++) {
        t_out[i] = dump_us(value, 1, &full);
        t_in[i] = dump_us(pin, 1, NULL);
        p.len = 0;
        double t0 = now_us();
        json_dump_callback(value, prefix_cb, &p, JSON_COMPACT);
        t_pre[i] = now_us() - t0;
    }
    double dump_full = stats_of(t_out, 20).median;
    double dump_in = stats_of(t_in, 20).median;
    double dump_prefix = stats_of(t_pre, 20).median;
    p.buf[p.len] = 0;
    double insert =
        store_rows_us(b->tmpdir, "null", p.buf, full, 200, NULL).median;
    free(p.buf);
    printf("  recording one step (max_recorded %d bytes):\n", MAX_RECORDED);
    printf("    flow_dump_bounded(output)         %9.1f us  (serialises all "
           "%zu bytes to learn the size)\n",
           dump_full, vtext);
    printf("    flow_dump_bounded(input object)   %9.1f us\n", dump_in);
    printf("    SQLite step row, 2 x 64 KiB text  %9.1f us\n", insert);
    printf("    sum                               %9.1f us  (measured above: "
           "%.1f us)\n",
           dump_full + dump_in + insert, rec);
    printf("    a dump that stops at the maximum  %9.1f us  (the prefix "
           "alone, without the full size)\n",
           dump_prefix);

    if (d.kind != DIRECT_MAKE_COPY) {
        target_line(b, "engine overhead per step, no store", ov_a,
                    TARGET_OVERHEAD_US, " us");
        target_line(b, "engine overhead per step, with the store", ov_s,
                    TARGET_OVERHEAD_US, " us");
    }
    if (heap_available()) {
        target_line(b, "peak heap / value, no store", pr_a, TARGET_PEAK_RATIO,
                    "x");
        target_line(b, "peak heap / value, with the store", pr_s,
                    TARGET_PEAK_RATIO, "x");
    }

    printf("%s.nostore: engine_overhead_us_per_step=%.2f method=%s "
           "outside_actions_us_per_step=%.2f paired_overhead_us_per_step=%.2f "
           "baseline_us_per_call=%.2f ratio=%.4f flow_us_per_exec=%.1f "
           "direct_us_per_exec=%.1f peak_bytes=%zu value_bytes=%zu "
           "peak_ratio=%.2f runs=%d\n",
           name, ov_a, method, out_a, pair_a, work,
           a.flow.median / a.direct.median, a.flow.median, a.direct.median,
           peak_a, vheap, pr_a, a.runs);
    printf("%s.store: engine_overhead_us_per_step=%.2f method=%s "
           "recording_us_per_step=%.2f outside_actions_us_per_step=%.2f "
           "paired_overhead_us_per_step=%.2f baseline_us_per_call=%.2f "
           "ratio=%.4f flow_us_per_exec=%.1f peak_bytes=%zu peak_ratio=%.2f "
           "runs=%d\n",
           name, ov_s, method, rec, out_s, pair_s, s.direct.median / NSTEPS,
           s.flow.median / s.direct.median, s.flow.median, peak_s, pr_s,
           s.runs);
    printf("%s.record: dump_output_us=%.1f dump_input_us=%.1f "
           "sqlite_step_row_us=%.1f dump_prefix_only_us=%.1f "
           "value_text_bytes=%zu\n",
           name, dump_full, dump_in, insert, dump_prefix, vtext);

    json_decref(pin);
    json_decref(value);
    json_decref(d.make_in);
    json_decref(d.value_in);
}

/* ---- the sensor shape ---- */

typedef struct step_times {
    double quarter_us, convert_us;
    int inner; /* nested step events */
    store *st; /* committed after each top-level step, as `ferry run` does */
} step_times;

static void on_step(void *ud, const flow_step_event *ev) {
    step_times *t = ud;
    if (ev->depth > 0) {
        t->inner++;
        return;
    }
    if (t->st && t->st->vt->tx_commit(t->st) == 0)
        t->st->vt->tx_begin(t->st);
    if (!strcmp(ev->name, "quarter"))
        t->quarter_us = (double)ev->duration_us;
    else if (!strcmp(ev->name, "convert"))
        t->convert_us = (double)ev->duration_us;
}

/* 30 days of one reading a minute, in the shape of the sensor sample. */
static json_t *sensor_trigger(void) {
    json_t *a = json_array();
    unsigned seed = 20261127;
    int walk = 0;
    for (int m = 0; m < SENSOR_RECORDS; m++) {
        int day = m / 1440, mm = m % 1440;
        char ts[32];
        snprintf(ts, sizeof ts, "2026-11-%02dT%02d:%02d:00", 1 + day, mm / 60,
                 mm % 60);
        seed = seed * 1103515245u + 12345u;
        walk += (int)((seed >> 16) % 3) - 1;
        walk = walk > 4 ? 4 : walk < -4 ? -4 : walk;
        int base = mm < 330 ? 185 : mm < 900 ? 214 : mm < 1320 ? 220 : 185;
        int t = base + walk;
        json_array_append_new(a, json_pack("{s:s, s:s, s:f, s:f}", "sensor",
                                           "ahu-3", "timestamp", ts, "temp_c",
                                           t / 10.0, "humidity",
                                           (440 - (t - 185)) / 10.0));
    }
    return json_pack("{s:s, s:{s:o}}", "type", "manual", "body", "readings", a);
}

typedef struct sensor_result {
    stats total, quarter, convert, iter_overhead, jq_direct, jq_overhead;
    size_t peak;
    int iterations;
} sensor_result;

/* Each execution is paired with one direct run of the jq program on the
 * same readings, in alternating order. */
static sensor_result sensor_measure(bench *b, const flow_def *f,
                                    json_t *trigger, jqv_program *jp,
                                    bench_store *bs, int runs, size_t nq) {
    sensor_result r = {0};
    step_times st = {0};
    flow_exec_opts o = {.max_recorded = MAX_RECORDED,
                        .tmpdir = b->tmpdir,
                        .on_step = on_step,
                        .ud = &st};
    json_t *readings =
        json_object_get(json_object_get(trigger, "body"), "readings");
    size_t n = (size_t)runs;
    double *tt = alloc_samples(n), *tq = alloc_samples(n),
           *tc = alloc_samples(n), *ti = alloc_samples(n),
           *tj = alloc_samples(n), *dj = alloc_samples(n);
    if (bs)
        bstore_open(bs, b->tmpdir);
    o.st = bs ? bs->st : NULL;
    st.st = o.st;
    if (o.st)
        o.st->vt->tx_begin(o.st);
    run_flow(b->sensors_ig, b->sensors_in, f, trigger, &o, NULL, NULL, NULL);
    if (o.st)
        o.st->vt->tx_commit(o.st);
    for (int i = 0; i < runs; i++) {
        for (int k = 0; k < 2; k++) {
            if ((k == 0) == (i % 2 == 0)) {
                json_t *out = NULL;
                char *err = NULL;
                double t0 = now_us();
                if (jqv_run(jp, readings, 0, &out, &err))
                    die("jq: %s", err);
                tj[i] = now_us() - t0;
                json_decref(out);
                continue;
            }
            memset(&st, 0, sizeof st);
            st.st = o.st;
            size_t before = heap_in_use();
            heap_reset_peak();
            double inside = 0;
            if (o.st)
                o.st->vt->tx_begin(o.st);
            tt[i] = run_flow(b->sensors_ig, b->sensors_in, f, trigger, &o, NULL,
                             &inside, NULL);
            if (o.st)
                o.st->vt->tx_commit(o.st);
            if (heap_peak() - before > r.peak)
                r.peak = heap_peak() - before;
            tq[i] = st.quarter_us;
            tc[i] = st.convert_us;
            ti[i] = (st.convert_us - inside) / (double)nq;
            r.iterations = st.inner;
        }
        dj[i] = tq[i] - tj[i];
    }
    if (bs)
        bstore_drop(bs);
    r.total = stats_of(tt, n);
    r.quarter = stats_of(tq, n);
    r.convert = stats_of(tc, n);
    r.iter_overhead = stats_of(ti, n);
    r.jq_direct = stats_of(tj, n);
    r.jq_overhead = stats_of(dj, n);
    free(tt);
    free(tq);
    free(tc);
    free(ti);
    free(tj);
    free(dj);
    return r;
}

static void workload_sensors(bench *b) {
    const flow_def *f = find_flow(b->sensors_ig, "export");
    size_t before = heap_in_use();
    json_t *trigger = sensor_trigger();
    size_t theap = heap_in_use() - before;
    json_t *readings =
        json_object_get(json_object_get(trigger, "body"), "readings");
    size_t ttext = json_dumpb(readings, NULL, 0, JSON_COMPACT);
    printf("\n== sensors: %d records, jq keeps the quarter-hours, for_each "
           "runs bench.c_to_f on each ==\n",
           SENSOR_RECORDS);
    printf("  readings: %zu bytes of compact JSON, %zu bytes of heap\n", ttext,
           theap);

    /* The work of the steps themselves: the jq program run directly, the
     * action called directly. */
    char *err = NULL;
    const char *prog = json_string_value(
        json_object_get(doc_step(b->sensors_ig, "export", 0), "jq"));
    jqv_program *jp = jqv_compile(prog, &err);
    if (!jp)
        die("jq: %s", err ? err : "no program in sensors.json");
    json_t *qout = NULL;
    if (jqv_run(jp, readings, 0, &qout, &err))
        die("jq: %s", err);
    size_t nq = json_array_size(qout);
    json_t *cin = json_pack("{s:f}", "value", 21.4);
    double c_us = call_ns(unwrapped(b->c_to_f), cin, 1 << 20) / 1e3;

    sensor_result a =
        sensor_measure(b, f, trigger, jp, NULL, b->sensor_runs, nq);
    bench_store bs = {0};
    sensor_result s =
        sensor_measure(b, f, trigger, jp, &bs, b->sensor_runs, nq);
    jqv_free(jp);
    if (a.iterations != (int)nq || s.iterations != (int)nq)
        die("expected %zu nested steps, saw %d and %d", nq, a.iterations,
            s.iterations);

    double n = (double)nq;
    printf("  %d executions each, %zu iterations each; medians\n",
           b->sensor_runs, nq);
    printf("  %-10s %11s %11s %11s %13s %13s\n", "", "execution", "jq step",
           "for_each", "per iteration", "iter overhead");
    printf("  %-10s %8.1f ms %8.1f ms %8.1f ms %10.2f us %13s\n", "direct",
           (a.jq_direct.median + n * c_us) / 1e3, a.jq_direct.median / 1e3,
           n * c_us / 1e3, c_us, "-");
    printf("  %-10s %8.1f ms %8.1f ms %8.1f ms %10.2f us %10.2f us\n",
           "no store", a.total.median / 1e3, a.quarter.median / 1e3,
           a.convert.median / 1e3, a.convert.median / n,
           a.iter_overhead.median);
    printf("  %-10s %8.1f ms %8.1f ms %8.1f ms %10.2f us %10.2f us\n", "store",
           s.total.median / 1e3, s.quarter.median / 1e3, s.convert.median / 1e3,
           s.convert.median / n, s.iter_overhead.median);
    printf("  jq step minus the program run directly (paired): %.1f ms "
           "(interquartile %.1f .. %.1f)\n",
           a.jq_overhead.median / 1e3, a.jq_overhead.p25 / 1e3,
           a.jq_overhead.p75 / 1e3);
    /* The trigger is alive throughout: it counts in the peak. */
    size_t peak_a = heap_available() ? a.peak + theap : 0;
    size_t peak_s = heap_available() ? s.peak + theap : 0;
    if (heap_available())
        printf("  peak heap of an execution, the trigger included: no store "
               "%zu bytes (%.2fx the trigger), store %zu bytes (%.2fx)\n",
               peak_a, ratio(peak_a, theap), peak_s, ratio(peak_s, theap));

    /* What recording costs, piece by piece. */
    json_t *cout = json_array();
    for (size_t i = 0; i < nq; i++)
        json_array_append_new(cout, json_real(70.5));
    double t_trig = 0;
    char *trig_text = NULL;
    for (int i = 0; i < 3; i++) {
        free(trig_text);
        double t0 = now_us();
        trig_text = json_dumps(trigger, JSON_COMPACT | JSON_ENCODE_ANY);
        double t = now_us() - t0;
        t_trig = i == 0 || t < t_trig ? t : t_trig;
    }
    double t_readings = dump_us(readings, 3, NULL);
    double t_qout = dump_us(qout, 5, NULL);
    double t_cout = dump_us(cout, 5, NULL);
    double t_tiny = dump_us(cin, 1000, NULL);
    double t_exec_row = 0;
    stats rows = store_rows_us(b->tmpdir, trig_text, "{\"value\":21.4}", 14,
                               (int)nq, &t_exec_row);
    double fixed = t_trig + t_exec_row + t_readings + 2 * t_qout + 2 * t_cout;
    double more = s.total.median - a.total.median;
    double more_iter = s.iter_overhead.median - a.iter_overhead.median;
    printf("  recording, once per execution:\n");
    printf("    the trigger as JSON text (kept whole)     %8.1f ms\n",
           t_trig / 1e3);
    printf("    the execution row holding it              %8.1f ms\n",
           t_exec_row / 1e3);
    printf("    jq step input (the readings), dumped      %8.1f ms\n",
           t_readings / 1e3);
    printf("    jq output = for_each input, dumped twice  %8.1f ms\n",
           2 * t_qout / 1e3);
    printf("    for_each output = flow output, twice      %8.1f ms\n",
           2 * t_cout / 1e3);
    printf("    sum %.1f ms; measured: %.1f ms more per execution than "
           "without the store, %.1f ms of it outside the for_each\n",
           fixed / 1e3, more / 1e3, (more - more_iter * n) / 1e3);
    printf("  recording, per iteration: SQLite step row %.1f us (mean; median "
           "%.1f, p90 %.1f) + 2 small dumps %.1f us = %.1f us; measured %.1f "
           "us\n",
           rows.mean, rows.median, rows.p90, 2 * t_tiny, rows.mean + 2 * t_tiny,
           more_iter);

    target_line(b, "for_each overhead per iteration (one step), no store",
                a.iter_overhead.median, TARGET_OVERHEAD_US, " us");
    target_line(b, "for_each overhead per iteration, with the store",
                s.iter_overhead.median, TARGET_OVERHEAD_US, " us");
    if (heap_available()) {
        target_line(b, "peak heap / trigger, no store", ratio(peak_a, theap),
                    TARGET_PEAK_RATIO, "x");
        target_line(b, "peak heap / trigger, with the store",
                    ratio(peak_s, theap), TARGET_PEAK_RATIO, "x");
    }
    printf("sensors.nostore: exec_ms=%.1f jq_step_ms=%.1f jq_direct_ms=%.1f "
           "for_each_ms=%.1f iter_us=%.2f iter_overhead_us=%.2f "
           "action_us_per_call=%.3f peak_bytes=%zu trigger_bytes=%zu "
           "peak_ratio=%.2f runs=%d\n",
           a.total.median / 1e3, a.quarter.median / 1e3,
           a.jq_direct.median / 1e3, a.convert.median / 1e3,
           a.convert.median / n, a.iter_overhead.median, c_us, peak_a, theap,
           ratio(peak_a, theap), b->sensor_runs);
    printf("sensors.store: exec_ms=%.1f jq_step_ms=%.1f for_each_ms=%.1f "
           "iter_us=%.2f iter_overhead_us=%.2f recording_us_per_iter=%.2f "
           "peak_bytes=%zu peak_ratio=%.2f runs=%d\n",
           s.total.median / 1e3, s.quarter.median / 1e3, s.convert.median / 1e3,
           s.convert.median / n, s.iter_overhead.median, more_iter, peak_s,
           ratio(peak_s, theap), b->sensor_runs);
    printf("sensors.record: trigger_dump_ms=%.1f exec_row_ms=%.1f "
           "jq_input_dump_ms=%.1f jq_output_dump_ms=%.1f "
           "for_each_output_dump_ms=%.1f sqlite_small_step_row_us=%.1f "
           "small_dump_us=%.2f\n",
           t_trig / 1e3, t_exec_row / 1e3, t_readings / 1e3, t_qout / 1e3,
           t_cout / 1e3, rows.mean, t_tiny);
    free(trig_text);
    json_decref(cout);
    json_decref(cin);
    json_decref(qout);
    json_decref(trigger);
}

/* ---- main ---- */

/* The temporary directory, emptied and removed at exit (also after die). */
static char tmp_dir[4096];

static void remove_tmp_dir(void) {
    if (!tmp_dir[0])
        return;
    DIR *d = opendir(tmp_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[4400];
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmp_dir, e->d_name);
            unlink(p);
        }
    }
    if (d)
        closedir(d);
    if (rmdir(tmp_dir))
        fprintf(stderr, "bench_engine: cannot remove %s: %s\n", tmp_dir,
                strerror(errno));
}

static int parse_int(const char *s, const char *what) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > 10000000)
        die("%s: not a positive count: %s", what, s);
    return (int)v;
}

int main(int argc, char **argv) {
    bench b = {.runs = 1000, .slow_runs = 100, .sensor_runs = 10};
    const char *components = BENCH_COMPONENT_DIR, *flows = BENCH_FLOW_DIR;
    const char *tmp = getenv("TMPDIR");
    const char *which[8];
    int nwhich = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 < argc && !strcmp(a, "--runs"))
            b.runs = parse_int(argv[++i], a);
        else if (i + 1 < argc && !strcmp(a, "--slow-runs"))
            b.slow_runs = parse_int(argv[++i], a);
        else if (i + 1 < argc && !strcmp(a, "--sensor-runs"))
            b.sensor_runs = parse_int(argv[++i], a);
        else if (i + 1 < argc && !strcmp(a, "--components"))
            components = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "--flows"))
            flows = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "--tmpdir"))
            tmp = argv[++i];
        else if (a[0] != '-' && nwhich < 8 &&
                 (!strcmp(a, "pass") || !strcmp(a, "pass6") ||
                  !strcmp(a, "copy") || !strcmp(a, "sensors")))
            which[nwhich++] = a;
        else
            die("usage: bench_engine [--runs N] [--slow-runs N] "
                "[--sensor-runs N] [--components DIR] [--flows DIR] "
                "[--tmpdir DIR] [pass|pass6|copy|sensors]...");
    }
    if (!nwhich) {
        which[nwhich++] = "pass";
        which[nwhich++] = "pass6";
        which[nwhich++] = "copy";
        which[nwhich++] = "sensors";
    }
    snprintf(b.tmpdir, sizeof b.tmpdir, "%s/ferry-bench-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(b.tmpdir))
        die("mkdtemp %s: %s", b.tmpdir, strerror(errno));
    snprintf(tmp_dir, sizeof tmp_dir, "%s", b.tmpdir);
    atexit(remove_tmp_dir);

    char *err = NULL;
    if (flow_load_registry(&b.reg, components, &err))
        die("%s: %s", components, err ? err : "cannot load components");
    abi_print_refusals(&b.reg, stderr);
    b.make = find_action(&b, "bench.make");
    b.pass = find_action(&b, "bench.pass");
    b.copy = find_action(&b, "bench.copy");
    b.c_to_f = find_action(&b, "bench.c_to_f");
    b.engine_ig = load_ig(&b, flows, "engine.json", &b.engine_in);
    b.sensors_ig = load_ig(&b, flows, "sensors.json", &b.sensors_in);

    printf("ferry engine benchmark: %d executions of pass and pass6 without a "
           "store, %d of copy and of every flow with the store, %d of "
           "sensors; heap accounting %s\n",
           b.runs, b.slow_runs, b.sensor_runs, heap_available() ? "on" : "off");
    if (strcmp(BENCH_BUILD_TYPE, "Release") != 0)
        printf("note: a %s build, not Release: bench/run builds one\n",
               *BENCH_BUILD_TYPE ? BENCH_BUILD_TYPE : "default");
    for (int i = 0; i < nwhich; i++) {
        if (!strcmp(which[i], "sensors"))
            workload_sensors(&b);
        else
            workload_value(&b, which[i]);
        fflush(stdout);
    }
    printf("\n%s\n",
           b.missed ? "TARGET MISSED: see the lines above" : "all targets met");

    flow_instance_free(b.engine_in);
    flow_instance_free(b.sensors_in);
    flow_integration_free(b.engine_ig);
    flow_integration_free(b.sensors_ig);
    abi_registry_free(&b.reg);
    return 0;
}
