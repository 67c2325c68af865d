/*
 * `ferry executions list|show`: what ran, read back from the store.
 *
 * Both commands only read. A database that does not exist is reported, not
 * created: a mistyped --db must not leave an empty ferry.db behind.
 */
#include "cli/cli.h"
#include "store/store.h"

#include <errno.h>
#include <ferry/ferry.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage_main[] =
    "usage: ferry executions list [--db PATH] [--instance I] [--flow F]\n"
    "                             [--status S] [--limit N] [--json]\n"
    "       ferry executions show ID [--db PATH] [--json]\n"
    "\n"
    "  list  recent executions, newest first\n"
    "  show  one execution with its steps and logs\n"
    "\n"
    "Run `ferry executions list --help` or `ferry executions show --help`\n"
    "for their options.\n";

static const char usage_list[] =
    "usage: ferry executions list [--db PATH] [--instance I] [--flow F]\n"
    "                             [--status S] [--limit N] [--json]\n"
    "\n"
    "Lists executions, newest first: id, flow, instance, status, when it\n"
    "started (UTC) and how long it ran.\n"
    "\n"
    "      --db PATH          the database (default: $FERRY_DB, else "
    "ferry.db)\n"
    "      --integration I    only executions of integration I\n"
    "      --instance I       only executions of instance I\n"
    "      --flow F           only executions of flow F\n"
    "      --status S         only executions with status S (queued, "
    "running,\n"
    "                         succeeded, failed, cancelled)\n"
    "  -n, --limit N          at most N executions (default 50)\n"
    "  -j, --json             print a JSON array instead\n"
    "  -h, --help             show this help\n";

static const char usage_show[] =
    "usage: ferry executions show ID [--db PATH] [--json]\n"
    "\n"
    "Shows one execution: its outcome, each step with its status, duration\n"
    "and error, then its log lines. --json adds the trigger, the output and\n"
    "each step's input and output as recorded (possibly truncated).\n"
    "\n"
    "      --db PATH  the database (default: $FERRY_DB, else ferry.db)\n"
    "  -j, --json     print the execution as JSON\n"
    "  -h, --help     show this help\n";

enum { OPT_DB = 256, OPT_INTEGRATION, OPT_INSTANCE, OPT_FLOW, OPT_STATUS };

typedef struct opts {
    const char *db;
    int json;
    store_filter filter;
    const char *id; /* show's ID */
} opts;

FERRY_PRINTF(3, 4)
static int usage_error(const char *sub, const char *usage, const char *fmt,
                       ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ferry executions %s: ", sub);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fputs(usage, stderr);
    return CLI_USAGE;
}

/* Parses a subcommand's options; argv[0] is the subcommand. Returns -1 to
 * go on, or the exit status to return (after --help or a usage error). */
static int parse_opts(int argc, char **argv, const char *usage, int is_show,
                      opts *o) {
    static const struct option list_opts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"integration", required_argument, NULL, OPT_INTEGRATION},
        {"instance", required_argument, NULL, OPT_INSTANCE},
        {"flow", required_argument, NULL, OPT_FLOW},
        {"status", required_argument, NULL, OPT_STATUS},
        {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static const struct option show_opts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof(*o));
    optind = 0; /* GNU: start afresh, whatever parsed argv before */
    opterr = 0;
    const char *sub = argv[0];
    int c;
    /* The leading ':' tells a missing value (':') from an unknown option. */
    while ((c = getopt_long(argc, argv, is_show ? ":jh" : ":n:jh",
                            is_show ? show_opts : list_opts, NULL)) != -1) {
        switch (c) {
        case OPT_DB:
            o->db = optarg;
            break;
        case OPT_INTEGRATION:
            o->filter.integration = optarg;
            break;
        case OPT_INSTANCE:
            o->filter.instance = optarg;
            break;
        case OPT_FLOW:
            o->filter.flow = optarg;
            break;
        case OPT_STATUS:
            o->filter.status = optarg;
            break;
        case 'n': {
            char *end;
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || n < 1 || n > 1000000)
                return usage_error(sub, usage,
                                   "--limit takes a positive number, not '%s'",
                                   optarg);
            o->filter.limit = (int)n;
            break;
        }
        case 'j':
            o->json = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return CLI_OK;
        case ':':
            return usage_error(sub, usage, "option '%s' needs a value",
                               argv[optind - 1]);
        default:
            if (optopt != 0) {
                char opt[3] = {'-', (char)optopt, '\0'};
                return usage_error(sub, usage, "unknown option '%s'", opt);
            }
            return usage_error(sub, usage, "unknown option '%s'",
                               argv[optind - 1]);
        }
    }
    int npos = argc - optind;
    if (is_show && npos != 1)
        return usage_error(sub, usage, "%s",
                           npos == 0 ? "ID is required" : "takes one ID");
    if (!is_show && npos != 0)
        return usage_error(sub, usage, "unexpected argument '%s'",
                           argv[optind]);
    if (is_show)
        o->id = argv[optind];
    return -1;
}

/* Opens an existing database. Returns NULL after printing why. */
static store *open_db(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) {
        fprintf(stderr, "ferry: no database at %s\n", path);
        return NULL;
    }
    char *err = NULL;
    store *s = store_open_sqlite(path, &err);
    if (!s) {
        fprintf(stderr, "ferry: %s\n", err ? err : "cannot open the database");
        free(err);
    }
    return s;
}

static void print_json(const json_t *j) {
    json_dumpf(j, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
}

static const char *field(const json_t *o, const char *key) {
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "-";
}

/* "2026-11-28T07:00:00.123Z" -> "2026-11-28 07:00:00"; "-" if null. */
static const char *short_time(const json_t *o, const char *key, char *buf,
                              size_t len) {
    const char *t = json_string_value(json_object_get(o, key));
    if (!t)
        return "-";
    snprintf(buf, len, "%.19s", t);
    if (strlen(buf) > 10 && buf[10] == 'T')
        buf[10] = ' ';
    return buf;
}

static const char *fmt_duration(int64_t us, char *buf, size_t len) {
    if (us < 1000)
        snprintf(buf, len, "%" PRId64 "us", us);
    else if (us < 10000)
        snprintf(buf, len, "%.1fms", (double)us / 1000);
    else if (us < 1000000)
        snprintf(buf, len, "%" PRId64 "ms", us / 1000);
    else if (us < 60000000)
        snprintf(buf, len, "%.2fs", (double)us / 1000000);
    else if (us < (int64_t)3600000000)
        snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", us / 60000000,
                 us / 1000000 % 60);
    else
        snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m",
                 us / (int64_t)3600000000, us / 60000000 % 60);
    return buf;
}

static const char *exec_duration(const json_t *o, char *buf, size_t len) {
    const json_t *d = json_object_get(o, "duration_us");
    if (!json_is_integer(d))
        return "-";
    return fmt_duration((int64_t)json_integer_value(d), buf, len);
}

static int width(const json_t *arr, const char *key, int min) {
    size_t i;
    const json_t *o;
    int w = min;
    json_array_foreach(arr, i, o) {
        int n = (int)strlen(field(o, key));
        if (n > w)
            w = n;
    }
    return w;
}

static void list_text(const json_t *arr) {
    if (json_array_size(arr) == 0) {
        fputs("no executions\n", stderr);
        return;
    }
    int wid = width(arr, "id", 2), wflow = width(arr, "flow", 4);
    int winst = width(arr, "instance", 8), wstat = width(arr, "status", 6);
    printf("%-*s  %-*s  %-*s  %-*s  %-19s  %s\n", wid, "ID", wflow, "FLOW",
           winst, "INSTANCE", wstat, "STATUS", "STARTED (UTC)", "DURATION");
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o) {
        char t[32], d[32];
        printf("%-*s  %-*s  %-*s  %-*s  %-19s  %s\n", wid, field(o, "id"),
               wflow, field(o, "flow"), winst, field(o, "instance"), wstat,
               field(o, "status"), short_time(o, "started", t, sizeof t),
               exec_duration(o, d, sizeof d));
    }
}

static int cmd_list(int argc, char **argv) {
    opts o;
    int rc = parse_opts(argc, argv, usage_list, 0, &o);
    if (rc >= 0)
        return rc;
    const char *path = cli_db_path(o.db);
    store *s = open_db(path);
    if (!s)
        return CLI_FAILED;
    json_t *arr = NULL;
    if (s->vt->exec_list(s, &o.filter, &arr) != 0) {
        fprintf(stderr, "ferry: %s\n", s->errmsg);
        rc = CLI_FAILED;
    } else {
        if (o.json)
            print_json(arr);
        else
            list_text(arr);
        rc = CLI_OK;
    }
    json_decref(arr);
    store_close(s);
    return rc;
}

/* "FERRY_ETIMEOUT: no answer in 30s" from an object's error fields. */
static void print_error(const json_t *o) {
    const char *code = json_string_value(json_object_get(o, "error_code"));
    const char *msg = json_string_value(json_object_get(o, "error_message"));
    if (code && msg)
        printf("%s: %s", code, msg);
    else if (code || msg)
        fputs(code ? code : msg, stdout);
    else
        putchar('-');
}

static void show_text(const json_t *x) {
    char d[32];
    printf("id           %s\n", field(x, "id"));
    printf("integration  %s\n", field(x, "integration"));
    printf("instance     %s\n", field(x, "instance"));
    printf("flow         %s\n", field(x, "flow"));
    printf("status       %s\n", field(x, "status"));
    printf("started      %s\n", field(x, "started"));
    printf("ended        %s\n", field(x, "ended"));
    printf("duration     %s\n", exec_duration(x, d, sizeof d));
    printf("error        ");
    print_error(x);
    if (json_is_string(json_object_get(x, "error_step")))
        printf(" (step %s)", field(x, "error_step"));
    putchar('\n');

    const json_t *steps = json_object_get(x, "steps");
    size_t i;
    const json_t *o;
    if (json_array_size(steps) > 0) {
        int wpath = width(steps, "path", 4), wstat = width(steps, "status", 6);
        printf("\nsteps\n");
        json_array_foreach(steps, i, o) {
            json_int_t us =
                json_integer_value(json_object_get(o, "duration_us"));
            printf("  %3" JSON_INTEGER_FORMAT "  %-*s  %-*s  %8s",
                   json_integer_value(json_object_get(o, "seq")), wpath,
                   field(o, "path"), wstat, field(o, "status"),
                   fmt_duration((int64_t)us, d, sizeof d));
            if (json_is_string(json_object_get(o, "error_code")) ||
                json_is_string(json_object_get(o, "error_message"))) {
                fputs("  ", stdout);
                print_error(o);
                if (json_is_true(json_object_get(o, "retryable")))
                    fputs(" (retryable)", stdout);
            }
            putchar('\n');
        }
    }

    const json_t *logs = json_object_get(x, "logs");
    if (json_array_size(logs) > 0) {
        printf("\nlogs\n");
        json_array_foreach(logs, i, o) {
            printf("  %s %-5s ", field(o, "ts"), field(o, "level"));
            if (json_is_string(json_object_get(o, "step_path")))
                printf("[%s] ", field(o, "step_path"));
            fputs(field(o, "message"), stdout);
            const json_t *fields = json_object_get(o, "fields");
            if (fields && !json_is_null(fields)) {
                char *text = json_dumps(fields, JSON_COMPACT | JSON_ENCODE_ANY);
                if (text)
                    printf(" %s", text);
                free(text);
            }
            putchar('\n');
        }
    }
}

static int cmd_show(int argc, char **argv) {
    opts o;
    int rc = parse_opts(argc, argv, usage_show, 1, &o);
    if (rc >= 0)
        return rc;
    const char *path = cli_db_path(o.db);
    store *s = open_db(path);
    if (!s)
        return CLI_FAILED;
    json_t *x = NULL;
    int err = s->vt->exec_get(s, o.id, &x);
    if (err == FERRY_ENOTFOUND) {
        fprintf(stderr, "ferry: no execution '%s' in %s\n", o.id, path);
        rc = CLI_FAILED;
    } else if (err != 0) {
        fprintf(stderr, "ferry: %s\n", s->errmsg);
        rc = CLI_FAILED;
    } else {
        if (o.json)
            print_json(x);
        else
            show_text(x);
        rc = CLI_OK;
    }
    json_decref(x);
    store_close(s);
    return rc;
}

int cli_executions(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage_main, stderr);
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "list") == 0)
        return cmd_list(argc - 1, argv + 1);
    if (strcmp(sub, "show") == 0)
        return cmd_show(argc - 1, argv + 1);
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
        strcmp(sub, "help") == 0) {
        fputs(usage_main, stdout);
        return CLI_OK;
    }
    fprintf(stderr, "ferry executions: unknown command '%s'\n", sub);
    fputs(usage_main, stderr);
    return CLI_USAGE;
}
