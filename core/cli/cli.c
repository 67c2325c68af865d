/* The `ferry` command: dispatch, `run` and `validate`. */
#include "cli.h"
#include "exec/exec.h"
#include "flow/flow.h"
#include "sched/sched.h"
#include "secret/secret.h"
#include "tokens/tokens.h"

#include <ferry/ferry.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage_text =
    "usage: ferry COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  run INTEGRATION.json       run one flow now and record it\n"
    "  validate FILE...           check integration and instance files\n"
    "  components list|describe   what the loader found (and refused)\n"
    "  executions list|show       execution history from the store\n"
    "  serve                      run the host: HTTP API, workers\n"
    "  deploy INTEGRATION.json    deploy an instance of an integration\n"
    "  instances list             the deployed instances\n"
    "  schedule next              the next fire times of a scheduled flow\n"
    "  secrets generate-key|rotate-key  the master key of stored secrets\n"
    "  dlq list|show|replay|discard     a host's dead letters\n"
    "  version                    print versions\n"
    "\n"
    "Every command takes --help. Common settings: --components-dir DIR\n"
    "(FERRY_COMPONENTS_DIR, default build/components), --db PATH (FERRY_DB,\n"
    "default ferry.db).\n";

const char *cli_components_dir(const char *flag) {
    const char *env = getenv("FERRY_COMPONENTS_DIR");
    return flag ? flag : env && *env ? env : "build/components";
}

const char *cli_db_path(const char *flag) {
    const char *env = getenv("FERRY_DB");
    return flag ? flag : env && *env ? env : "ferry.db";
}

int cli_load_registry(abi_registry *reg, const char *flag, FILE *refusals_to) {
    const char *env = getenv("FERRY_COMPONENTS_DIR");
    int named = flag || (env && *env);
    const char *dir = cli_components_dir(flag);
    struct stat sb;
    char *err = NULL;
    if (!named && stat(dir, &sb) != 0) {
        abi_registry_init(reg);
        if (abi_registry_add_builtin(reg, flow_core_component(), &err) == 0)
            return 0;
    } else if (flow_load_registry(reg, dir, &err) == 0) {
        if (refusals_to)
            abi_print_refusals(reg, refusals_to);
        return 0;
    }
    if (err)
        fprintf(stderr, "ferry: %s\n", err);
    else
        fprintf(stderr, "ferry: components directory %s cannot be read\n", dir);
    free(err);
    abi_registry_free(reg);
    abi_registry_init(reg);
    return -1;
}

/* ---- run ---- */

static volatile int run_cancel;

static void on_sigint(int sig) {
    (void)sig;
    run_cancel = 1;
}

static const char *level_name(int level) {
    if (level >= FERRY_LOG_ERROR)
        return "error";
    if (level >= FERRY_LOG_WARN)
        return "warn";
    if (level >= FERRY_LOG_INFO)
        return "info";
    return "debug";
}

typedef struct run_ui {
    int quiet;
    store *st; /* its writes are committed after each top-level step */
    const secret_key *key; /* NULL: tokens are kept in memory only */
    json_t *tokens;        /* connection -> token, without a key */
    json_t *handed;        /* connection -> the last access token given */
    /* Known secrets (the instance's, the access tokens handed out): kept
     * out of what is recorded and printed, as the host keeps them out of
     * what workers send. */
    secret_set secrets;
} run_ui;

static void add_secret(void *ud, const char *value) {
    secret_set_add(ud, value);
}

/* The store's filter, and for what is printed: a malloc'd copy with the
 * known secrets replaced, or NULL when there is nothing to replace. */
static char *redact(void *ud, const char *text) {
    int oom = 0;
    return secret_redact(&((run_ui *)ud)->secrets, text, &oom);
}

/* Prints text (if_null when NULL) with the known secrets replaced. */
static void put_redacted(run_ui *ui, FILE *f, const char *text,
                         const char *if_null) {
    char *clean = text ? redact(ui, text) : NULL;
    fputs(clean ? clean : text ? text : if_null, f);
    free(clean);
}

/* flow_exec_opts.token for `ferry run`: the same policy as the host's,
 * synchronously, with this process's store. */
static int run_token(void *ud, const char *instance, const char *connection,
                     const json_t *conn, int force, char **access, char **err) {
    run_ui *ui = ud;
    char why[768];
    int reauth = 0;
    json_t *mem = json_incref(json_object_get(ui->tokens, connection));
    const char *refused =
        json_string_value(json_object_get(ui->handed, connection));
    int rc = tokens_obtain(ui->st, ui->key, instance, connection,
                           json_object_get(conn, "fields"), force, refused,
                           &mem, access, &reauth, why, sizeof(why));
    if (mem)
        json_object_set_new(ui->tokens, connection, mem);
    if (rc) {
        *err = strdup(why);
        return reauth ? FERRY_EAUTH : FERRY_EUNAVAIL;
    }
    json_object_set_new(ui->handed, connection, json_string(*access));
    secret_set_add(&ui->secrets, *access);
    return 0;
}

static void run_on_step(void *ud, const flow_step_event *ev) {
    run_ui *ui = ud;
    if (ev->depth > 0)
        return;
    /* One transaction per top-level step: a loop of thousands of steps is
     * one commit, and what a step did is durable once it is printed. */
    if (ui->st->vt->tx_commit(ui->st) == 0)
        ui->st->vt->tx_begin(ui->st);
    if (ui->quiet)
        return;
    fprintf(stderr, "step %-24s %-10s %9.3f ms", ev->path, ev->status,
            (double)ev->duration_us / 1000.0);
    if (ev->error_code) {
        fprintf(stderr, "  %s: ", ferry_err_name(ev->error_code));
        put_redacted(ui, stderr, ev->error_message, "");
    }
    fputc('\n', stderr);
}

static void run_on_log(void *ud, const char *path, int level, const char *msg) {
    run_ui *ui = ud;
    if (ui->quiet && level < FERRY_LOG_WARN)
        return;
    fprintf(stderr, "  [%s] %s%s", level_name(level), path ? path : "",
            path ? ": " : "");
    put_redacted(ui, stderr, msg, "");
    fputc('\n', stderr);
}

static json_t *read_input(const char *arg) {
    json_error_t e;
    json_t *v;
    if (arg[0] == '@') {
        v = json_load_file(arg + 1, JSON_DECODE_ANY, &e);
        if (!v)
            fprintf(
                stderr,
                "ferry: --input %s: invalid JSON at line %d column %d: %s\n",
                arg + 1, e.line, e.column, e.text);
    } else {
        v = json_loads(arg, JSON_DECODE_ANY, &e);
        if (!v)
            fprintf(stderr, "ferry: --input: invalid JSON at column %d: %s\n",
                    e.column, e.text);
    }
    return v;
}

static void run_usage(FILE *f) {
    fprintf(
        f, "usage: ferry run INTEGRATION.json [--instance INSTANCE.json]\n"
           "                 [--flow NAME] [--input JSON|@FILE]\n"
           "                 [--components-dir DIR] [--db PATH]\n"
           "                 [--max-recorded-bytes N] [--quiet]\n"
           "\n"
           "Runs one flow now. Each top-level step is printed on stderr as it\n"
           "finishes; the final output is printed on stdout as JSON. The\n"
           "trigger payload is {\"type\": \"manual\", \"body\": INPUT, "
           "\"time\": NOW}.\n"
           "Exit status: 0 succeeded, 1 the execution failed, 2 usage or\n"
           "definition error.\n");
}

int cli_run(int argc, char **argv) {
    static const struct option opts[] = {
        {"instance", required_argument, 0, 'i'},
        {"flow", required_argument, 0, 'f'},
        {"input", required_argument, 0, 'I'},
        {"components-dir", required_argument, 0, 'c'},
        {"db", required_argument, 0, 'd'},
        {"max-recorded-bytes", required_argument, 0, 'm'},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *instance = NULL, *flow = NULL, *input = NULL, *dir = NULL,
               *db = NULL;
    long max_rec = 0;
    run_ui ui = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            instance = optarg;
            break;
        case 'f':
            flow = optarg;
            break;
        case 'I':
            input = optarg;
            break;
        case 'c':
            dir = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'q':
            ui.quiet = 1;
            break;
        case 'm': {
            char *end;
            max_rec = strtol(optarg, &end, 10);
            if (*end || max_rec < 16) {
                fprintf(stderr, "ferry run: --max-recorded-bytes must be a "
                                "number >= 16\n");
                return CLI_USAGE;
            }
            break;
        }
        case 'h':
            run_usage(stdout);
            return CLI_OK;
        default:
            run_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind + 1 != argc) {
        run_usage(stderr);
        return CLI_USAGE;
    }
    const char *file = argv[optind];

    int status = CLI_USAGE;
    abi_registry reg;
    flow_diags d = {0};
    flow_integration *ig = NULL;
    flow_instance *in = NULL;
    json_t *body = NULL, *trigger = NULL;
    store *st = NULL;
    flow_result res = {0};

    if (cli_load_registry(&reg, dir, stderr))
        return CLI_USAGE;
    ig = flow_integration_load(file, &reg, &d);
    if (ig && sched_validate_integration(ig, &d) == 0)
        in = flow_instance_load(instance, ig, &reg, &d);
    if (in)
        sched_validate_instance(ig, in, &d);
    if (d.n) {
        flow_diags_print(&d, stderr);
        goto out;
    }
    const flow_def *f = flow_find(ig, flow);
    if (!f) {
        if (flow)
            fprintf(stderr, "ferry run: integration '%s' has no flow '%s'\n",
                    ig->name, flow);
        else
            fprintf(stderr,
                    "ferry run: integration '%s' has %zu flows; choose "
                    "one with --flow\n",
                    ig->name, ig->nflows);
        goto out;
    }
    if (input && !(body = read_input(input)))
        goto out;
    char now[40];
    store_format_time(store_now_us(), now, sizeof(now));
    trigger = json_pack("{s:s, s:O?, s:s}", "type", "manual", "body", body,
                        "time", now);

    char *err = NULL;
    st = store_open_sqlite(cli_db_path(db), &err);
    if (!st) {
        fprintf(stderr, "ferry: cannot open the store %s: %s\n",
                cli_db_path(db), err ? err : "unknown error");
        free(err);
        status = CLI_FAILED;
        goto out;
    }

    secret_key key;
    char kerr[512];
    int kr = secret_key_load(getenv("FERRY_MASTER_KEY"),
                             getenv("FERRY_MASTER_KEY_FILE"), &key, kerr,
                             sizeof(kerr));
    if (kr < 0 ||
        tokens_check_key(st, kr == 1 ? &key : NULL, kerr, sizeof(kerr))) {
        fprintf(stderr, "ferry run: %s\n", kerr);
        status = CLI_FAILED;
        goto out;
    }
    ui.key = kr == 1 ? &key : NULL;
    ui.tokens = json_object();
    ui.handed = json_object();
    exec_instance_secrets(&reg, ig, in, add_secret, &ui.secrets);
    store_sqlite_set_filter(st, redact, &ui);
    flow_exec_opts o = {
        .st = st,
        .max_recorded = (size_t)max_rec,
        .cancel = &run_cancel,
        .on_step = run_on_step,
        .on_log = run_on_log,
        .ud = &ui,
        .token = run_token,
    };
    struct sigaction sa = {.sa_handler = on_sigint};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    ui.st = st;
    int in_tx = st->vt->tx_begin(st) == 0;
    int exec_rc = flow_execute(ig, in, f, trigger, &o, &res);
    if (in_tx)
        st->vt->tx_commit(st);
    if (exec_rc) {
        fputs("ferry: ", stderr);
        put_redacted(&ui, stderr, res.error_message, "");
        fputc('\n', stderr);
        status = CLI_FAILED;
        goto out;
    }
    if (!strcmp(res.status, "succeeded")) {
        char *text = json_dumps(res.output, JSON_INDENT(2) | JSON_ENCODE_ANY |
                                                JSON_REAL_PRECISION(15));
        put_redacted(&ui, stdout, text, "null");
        fputc('\n', stdout);
        free(text);
        if (!ui.quiet)
            fprintf(stderr, "execution %s succeeded\n", res.id);
        status = CLI_OK;
    } else {
        fprintf(stderr, "execution %s %s at step %s: %s: ", res.id, res.status,
                res.error_step ? res.error_step : "?",
                ferry_err_name(res.error_code));
        put_redacted(&ui, stderr, res.error_message, "");
        fputc('\n', stderr);
        status = CLI_FAILED;
    }
out:
    secret_set_clear(&ui.secrets);
    json_decref(ui.tokens);
    json_decref(ui.handed);
    flow_result_clear(&res);
    store_close(st);
    json_decref(trigger);
    json_decref(body);
    flow_instance_free(in);
    flow_integration_free(ig);
    flow_diags_free(&d);
    abi_registry_free(&reg);
    return status;
}

/* ---- validate ---- */

static void validate_usage(FILE *f) {
    fprintf(
        f,
        "usage: ferry validate FILE... [--components-dir DIR]\n"
        "\n"
        "Checks integration files (those with \"flows\") and instance files\n"
        "(those with \"integration\"); an instance is checked against the\n"
        "integration of that name among the FILEs. Every error is printed\n"
        "as FILE: PATH: message. Exit status 0 if all are valid, else 2.\n");
}

int cli_validate(int argc, char **argv) {
    static const struct option opts[] = {
        {"components-dir", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *dir = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            dir = optarg;
            break;
        case 'h':
            validate_usage(stdout);
            return CLI_OK;
        default:
            validate_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind >= argc) {
        validate_usage(stderr);
        return CLI_USAGE;
    }
    abi_registry reg;
    if (cli_load_registry(&reg, dir, stderr))
        return CLI_USAGE;
    int nfiles = argc - optind;
    flow_integration **igs = calloc((size_t)nfiles, sizeof(*igs));
    char *is_instance = calloc((size_t)nfiles, 1);
    flow_diags d = {0};
    int bad = 0;

    /* Integrations first, so that instances can be checked against them. */
    for (int i = 0; i < nfiles; i++) {
        const char *file = argv[optind + i];
        json_t *doc = json_load_file(file, 0, NULL);
        if (json_is_object(doc) && !json_object_get(doc, "flows") &&
            json_object_get(doc, "integration")) {
            is_instance[i] = 1;
        } else {
            size_t before = d.n;
            igs[i] = flow_integration_load(file, &reg, &d);
            if (igs[i])
                sched_validate_integration(igs[i], &d);
            bad |= d.n > before;
        }
        json_decref(doc);
    }
    for (int i = 0; i < nfiles; i++) {
        if (!is_instance[i])
            continue;
        const char *file = argv[optind + i];
        json_t *doc = json_load_file(file, 0, NULL);
        const char *want =
            json_string_value(json_object_get(doc, "integration"));
        const flow_integration *ig = NULL;
        for (int k = 0; k < nfiles && want; k++)
            if (igs[k] && !strcmp(igs[k]->name, want))
                ig = igs[k];
        if (!ig) {
            flow_diags_add(&d, file, "integration",
                           "integration '%s' is not among the files given "
                           "(validate an instance together with its "
                           "integration file)",
                           want ? want : "?");
            bad = 1;
        } else {
            size_t before = d.n;
            flow_instance *in = flow_instance_load(file, ig, &reg, &d);
            if (in)
                sched_validate_instance(ig, in, &d);
            flow_instance_free(in);
            bad |= d.n > before;
        }
        json_decref(doc);
    }
    flow_diags_print(&d, stderr);
    if (!bad)
        for (int i = 0; i < nfiles; i++)
            printf("%s: valid\n", argv[optind + i]);
    for (int i = 0; i < nfiles; i++)
        flow_integration_free(igs[i]);
    free(igs);
    free(is_instance);
    flow_diags_free(&d);
    abi_registry_free(&reg);
    return bad ? CLI_USAGE : CLI_OK;
}

/* ---- dispatch ---- */

int cli_main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run"))
        return cli_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "validate"))
        return cli_validate(argc - 1, argv + 1);
    if (!strcmp(cmd, "components"))
        return cli_components(argc - 1, argv + 1);
    if (!strcmp(cmd, "executions"))
        return cli_executions(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve"))
        return cli_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "zygote"))
        return cli_zygote(argc - 1, argv + 1);
    if (!strcmp(cmd, "deploy"))
        return cli_deploy(argc - 1, argv + 1);
    if (!strcmp(cmd, "instances"))
        return cli_instances(argc - 1, argv + 1);
    if (!strcmp(cmd, "schedule"))
        return cli_schedule(argc - 1, argv + 1);
    if (!strcmp(cmd, "secrets"))
        return cli_secrets(argc - 1, argv + 1);
    if (!strcmp(cmd, "dlq"))
        return cli_dlq(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("ferry %s (ABI %d.%d, store schema %d, jansson %s)\n",
               FERRY_VERSION, FERRY_ABI_MAJOR, FERRY_ABI_MINOR,
               store_schema_version(), JANSSON_VERSION);
        return CLI_OK;
    }
    fprintf(stderr, "ferry: unknown command '%s'\n\n%s", cmd, usage_text);
    return CLI_USAGE;
}
