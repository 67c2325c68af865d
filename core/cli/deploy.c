/*
 * `ferry deploy` and `ferry instances list`: against a deployments
 * directory (what a host loads at start and on SIGHUP), or against a
 * running host's API with --host.
 */
#include "host/deploy.h"
#include "api_client.h"
#include "cli/cli.h"
#include "host/host.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* ---- ferry deploy ---- */

static void deploy_usage(FILE *f) {
    fprintf(
        f,
        "usage: ferry deploy INTEGRATION.json --instance INSTANCE.json\n"
        "                    [--deployments DIR | --host URL --api-token "
        "TOKEN]\n"
        "                    [--components-dir DIR] [--force]\n"
        "\n"
        "Validates the integration and the instance against the components,\n"
        "then makes the instance live, replacing an instance of the same\n"
        "name (executions already running finish on the old definition):\n"
        "\n"
        "  - by default, by writing both files into the deployments\n"
        "    directory (DIR/integrations/NAME.json, DIR/instances/NAME.json),\n"
        "    which a host loads at start and on SIGHUP;\n"
        "  - with --host, by sending both to a running host's API, which\n"
        "    validates them against its own components and switches at once.\n"
        "\n"
        "  -i, --instance FILE        the instance to deploy (required)\n"
        "  -D, --deployments DIR      the deployments directory (default:\n"
        "                             $FERRY_DEPLOYMENTS, else deployments)\n"
        "  -H, --host URL             a running host, like\n"
        "                             http://127.0.0.1:8080 (default: "
        "$FERRY_HOST)\n"
        "  -t, --api-token TOKEN      one of the host's api_tokens (default:\n"
        "                             $FERRY_API_TOKEN)\n"
        "  -c, --components-dir DIR   where the components are (default:\n"
        "                             $FERRY_COMPONENTS_DIR, else "
        "build/components)\n"
        "  -f, --force                write even if other instances of the\n"
        "                             integration would not be valid with it\n"
        "  -h, --help                 show this help\n"
        "\n"
        "Definition errors are printed as FILE: PATH: message. Exit status:\n"
        "0 deployed, 1 the directory could not be written or the host could\n"
        "not be reached or refused, 2 usage or definition error.\n");
}

/* Prints a 400's diagnostics, naming the local files where the host names
 * the documents ("integration", "instance"). Returns how many. */
static size_t print_remote_diags(const json_t *body, const char *ig_file,
                                 const char *in_file) {
    const json_t *arr =
        json_object_get(json_object_get(body, "error"), "diagnostics");
    size_t i;
    const json_t *g;
    json_array_foreach(arr, i, g) {
        const char *file = json_string_value(json_object_get(g, "file"));
        const char *path = json_string_value(json_object_get(g, "path"));
        const char *msg = json_string_value(json_object_get(g, "message"));
        if (file && !strcmp(file, "integration"))
            file = ig_file;
        else if (file && !strcmp(file, "instance"))
            file = in_file;
        fprintf(stderr, "%s: %s: %s\n", file ? file : "?", path ? path : "$",
                msg ? msg : "");
    }
    return json_array_size(arr);
}

static int deploy_remote(const char *host, const char *token, json_t *ig_doc,
                         json_t *in_doc, const char *ig_file,
                         const char *in_file) {
    json_t *body =
        json_pack("{s:O, s:O}", "integration", ig_doc, "instance", in_doc);
    api_reply r;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = api_request(host, token, "/api/v1/instances", body, &r);
    json_decref(body);
    int status = CLI_FAILED;
    if (rc) {
        fprintf(stderr, "ferry deploy: cannot reach %s: %s\n", host, r.err);
    } else if (r.status == 200 || r.status == 201) {
        if (r.body) {
            json_dumpf(r.body, stdout, JSON_INDENT(2));
            fputc('\n', stdout);
        } else if (r.text) {
            fputs(r.text, stdout);
        }
        status = CLI_OK;
    } else if (r.status == 400) {
        if (!print_remote_diags(r.body, ig_file, in_file))
            fprintf(stderr, "ferry deploy: %s refused the deployment: %s\n",
                    host, api_error_message(&r));
        status = CLI_USAGE;
    } else {
        api_report_failure("deploy", host, &r);
    }
    api_reply_clear(&r);
    curl_global_cleanup();
    return status;
}

static int deploy_local(const char *dir, const deployment *dp,
                        const abi_registry *reg, int force) {
    flow_diags d = {0};
    int broken = deploy_check_dependents(dir, dp->integration_doc, dp->instance,
                                         reg, &d);
    flow_diags_print(&d, stderr);
    flow_diags_free(&d);
    if (broken && !force) {
        fprintf(stderr,
                "ferry deploy: not deployed: %d other instance%s of '%s' "
                "in %s would not load with this integration (they share its "
                "file); fix them, or deploy anyway with --force\n",
                broken, broken == 1 ? "" : "s", dp->integration, dir);
        return CLI_USAGE;
    }
    char *path = NULL, *err = NULL;
    struct stat sb;
    int existed =
        asprintf(&path, "%s/instances/%s.json", dir, dp->instance) >= 0 &&
        !stat(path, &sb);
    if (deploy_write(dir, dp->integration_doc, dp->instance_doc, &err)) {
        fprintf(stderr, "ferry deploy: %s\n", err ? err : "out of memory");
        free(err);
        free(path);
        return CLI_FAILED;
    }
    const char *v = dp->ig->version;
    printf("%s instance %s (integration %s%s%s) in %s\n",
           existed ? "replaced" : "deployed", dp->instance, dp->integration,
           v && *v ? " " : "", v ? v : "", dir);
    if (broken)
        fprintf(stderr,
                "ferry deploy: %d other instance%s of '%s' will be skipped "
                "until redeployed\n",
                broken, broken == 1 ? "" : "s", dp->integration);
    fprintf(stderr, "a running host picks it up on SIGHUP (or use --host)\n");
    free(path);
    return CLI_OK;
}

int cli_deploy(int argc, char **argv) {
    static const struct option opts[] = {
        {"instance", required_argument, 0, 'i'},
        {"deployments", required_argument, 0, 'D'},
        {"host", required_argument, 0, 'H'},
        {"api-token", required_argument, 0, 't'},
        {"components-dir", required_argument, 0, 'c'},
        {"force", no_argument, 0, 'f'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *instance = NULL, *dir = NULL, *host = NULL, *token = NULL,
               *components = NULL;
    int force = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:D:H:t:c:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            instance = optarg;
            break;
        case 'D':
            dir = optarg;
            break;
        case 'H':
            host = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case 'c':
            components = optarg;
            break;
        case 'f':
            force = 1;
            break;
        case 'h':
            deploy_usage(stdout);
            return CLI_OK;
        default:
            deploy_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind + 1 != argc || !instance) {
        if (optind + 1 == argc)
            fprintf(stderr, "ferry deploy: --instance INSTANCE.json is "
                            "required\n");
        deploy_usage(stderr);
        return CLI_USAGE;
    }
    if (dir && host) {
        fprintf(stderr, "ferry deploy: give --deployments or --host, not "
                        "both\n");
        return CLI_USAGE;
    }
    if (!dir && !host)
        host = env("FERRY_HOST");
    if (!dir && !host)
        dir =
            env("FERRY_DEPLOYMENTS") ? env("FERRY_DEPLOYMENTS") : "deployments";
    if (host && !(token = api_token_or_env("deploy", token)))
        return CLI_USAGE;
    const char *file = argv[optind];

    abi_registry reg;
    if (cli_load_registry(&reg, components, stderr))
        return CLI_USAGE;
    flow_diags d = {0};
    json_t *ig_doc = flow_load_json(file, &d);
    json_t *in_doc = flow_load_json(instance, &d);
    deployment *dp = NULL;
    int status = CLI_USAGE;
    if (ig_doc && in_doc)
        dp = deployment_build(ig_doc, in_doc, file, instance, &reg, &d);
    if (!dp) {
        flow_diags_print(&d, stderr);
        goto out;
    }
    if (host)
        status = deploy_remote(host, token, ig_doc, in_doc, file, instance);
    else
        status = deploy_local(dir, dp, &reg, force);
out:
    deployment_unref(dp);
    json_decref(ig_doc);
    json_decref(in_doc);
    flow_diags_free(&d);
    abi_registry_free(&reg);
    return status;
}

/* ---- ferry instances ---- */

static const char instances_usage_main[] =
    "usage: ferry instances list [--deployments DIR | --host URL "
    "--api-token TOKEN]\n"
    "                            [--components-dir DIR] [--json]\n"
    "\n"
    "  list  the deployed instances: integration, version, flows\n"
    "\n"
    "Run `ferry instances list --help` for its options.\n";

static void instances_list_usage(FILE *f) {
    fprintf(
        f,
        "usage: ferry instances list [--deployments DIR | --host URL "
        "--api-token TOKEN]\n"
        "                            [--components-dir DIR] [--json]\n"
        "\n"
        "Lists the instances a host runs: each one's integration, version,\n"
        "when it was deployed and its flows with their triggers. Without\n"
        "--host it reads the deployments directory as a host would at start\n"
        "and reports on stderr each instance it would skip, and why.\n"
        "\n"
        "  -D, --deployments DIR      the deployments directory (default:\n"
        "                             $FERRY_DEPLOYMENTS, else deployments)\n"
        "  -H, --host URL             a running host (default: $FERRY_HOST)\n"
        "  -t, --api-token TOKEN      one of the host's api_tokens (default:\n"
        "                             $FERRY_API_TOKEN)\n"
        "  -c, --components-dir DIR   where the components are (default:\n"
        "                             $FERRY_COMPONENTS_DIR, else "
        "build/components)\n"
        "  -j, --json                 print a JSON array instead\n"
        "  -h, --help                 show this help\n");
}

static const char *str_or_dash(const json_t *o, const char *key) {
    const char *v = json_string_value(json_object_get(o, key));
    return v && *v ? v : "-";
}

static void print_instances(const json_t *arr) {
    int w[3] = {8, 11, 7};
    const char *keys[3] = {"instance", "integration", "version"};
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o) {
        for (int k = 0; k < 3; k++) {
            int n = (int)strlen(str_or_dash(o, keys[k]));
            if (n > w[k])
                w[k] = n;
        }
    }
    printf("%-*s  %-*s  %-*s  %-19s  %s\n", w[0], "INSTANCE", w[1],
           "INTEGRATION", w[2], "VERSION", "DEPLOYED", "FLOWS");
    json_array_foreach(arr, i, o) {
        char when[20];
        snprintf(when, sizeof(when), "%s", str_or_dash(o, "deployed"));
        if (strlen(when) > 10 && when[10] == 'T')
            when[10] = ' ';
        printf("%-*s  %-*s  %-*s  %-19s  ", w[0], str_or_dash(o, "instance"),
               w[1], str_or_dash(o, "integration"), w[2],
               str_or_dash(o, "version"), when);
        size_t k;
        const json_t *f;
        json_array_foreach(json_object_get(o, "flows"), k, f) {
            printf("%s%s (%s)", k ? ", " : "", str_or_dash(f, "name"),
                   str_or_dash(f, "trigger"));
        }
        putchar('\n');
    }
}

static int instances_list(int argc, char **argv) {
    static const struct option opts[] = {
        {"deployments", required_argument, 0, 'D'},
        {"host", required_argument, 0, 'H'},
        {"api-token", required_argument, 0, 't'},
        {"components-dir", required_argument, 0, 'c'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *dir = NULL, *host = NULL, *token = NULL, *components = NULL;
    int as_json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "D:H:t:c:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'D':
            dir = optarg;
            break;
        case 'H':
            host = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case 'c':
            components = optarg;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'h':
            instances_list_usage(stdout);
            return CLI_OK;
        default:
            instances_list_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc) {
        instances_list_usage(stderr);
        return CLI_USAGE;
    }
    if (dir && host) {
        fprintf(stderr, "ferry instances list: give --deployments or --host, "
                        "not both\n");
        return CLI_USAGE;
    }
    if (!dir && !host)
        host = env("FERRY_HOST");
    if (!dir && !host)
        dir =
            env("FERRY_DEPLOYMENTS") ? env("FERRY_DEPLOYMENTS") : "deployments";
    if (host && !(token = api_token_or_env("instances list", token)))
        return CLI_USAGE;

    json_t *list = NULL;
    int status = CLI_FAILED;
    if (host) {
        api_reply r;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (api_request(host, token, "/api/v1/instances", NULL, &r)) {
            fprintf(stderr, "ferry instances list: cannot reach %s: %s\n", host,
                    r.err);
        } else if (r.status != 200) {
            api_report_failure("instances list", host, &r);
        } else {
            json_t *b = r.body;
            list = json_is_array(b) ? b : json_object_get(b, "instances");
            if (json_is_array(list))
                json_incref(list);
            else {
                list = NULL;
                fprintf(stderr,
                        "ferry instances list: %s answered something other "
                        "than a list of instances\n",
                        host);
            }
        }
        api_reply_clear(&r);
        curl_global_cleanup();
    } else {
        abi_registry reg;
        if (cli_load_registry(&reg, components, stderr))
            return CLI_USAGE;
        deploy_table *t = deploy_table_new();
        flow_diags d = {0};
        if (t && deploy_table_load_dir(t, dir, &reg, &d) >= 0)
            list = deploy_table_list(t);
        flow_diags_print(&d, stderr);
        if (d.n && list)
            fprintf(stderr,
                    "ferry instances list: the files above are skipped by a "
                    "host loading %s\n",
                    dir);
        flow_diags_free(&d);
        deploy_table_free(t);
        abi_registry_free(&reg);
    }
    if (list) {
        if (as_json) {
            json_dumpf(list, stdout, JSON_INDENT(2));
            fputc('\n', stdout);
        } else if (json_array_size(list)) {
            print_instances(list);
        } else {
            fprintf(stderr, "no instances deployed%s%s\n", dir ? " in " : "",
                    dir ? dir : "");
        }
        status = CLI_OK;
    }
    json_decref(list);
    return status;
}

int cli_instances(int argc, char **argv) {
    if (argc < 2) {
        fputs(instances_usage_main, stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(instances_usage_main, stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "list"))
        return instances_list(argc - 1, argv + 1);
    fprintf(stderr, "ferry instances: unknown subcommand '%s'\n\n%s", argv[1],
            instances_usage_main);
    return CLI_USAGE;
}
