/*
 * `ferry dlq`: the dead letters of a running host (through its API).
 */
#include "api_client.h"
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: ferry dlq list [--instance I] [--flow F] [--state S] [--json]\n"
    "       ferry dlq show ID\n"
    "       ferry dlq replay ID... | --all [--instance I] [--flow F]\n"
    "                        [--from-step NAME]\n"
    "       ferry dlq discard ID...\n"
    "\n"
    "The dead letters of a running host: executions that failed for good\n"
    "(their retries exhausted, or a step with on_error \"dead_letter\"),\n"
    "each with its trigger payload, failing step, input, error and\n"
    "attempts. replay starts each again as a new execution with the\n"
    "current definition, from the start or --from-step (the step that\n"
    "failed, with the outputs it had); discard drops them.\n"
    "\n"
    "  -H, --host URL       the host (default $FERRY_HOST, else\n"
    "                       http://127.0.0.1:8080)\n"
    "  -t, --api-token T    its API token (default $FERRY_API_TOKEN)\n"
    "  -i, --instance I     only this instance's\n"
    "  -f, --flow F         only this flow's\n"
    "      --state S        open (default), replayed, discarded or all\n"
    "      --all            replay every open letter (with the filters)\n"
    "      --from-step NAME go on from the failing step\n"
    "      --json           list as JSON\n";

static char *path_of(const char *fmt, const char *a, const char *b) {
    char *p = NULL;
    if (asprintf(&p, fmt, a ? a : "", b ? b : "") < 0)
        p = NULL;
    return p;
}

/* Appends &name=value (escaped) to a query being built. */
static void qadd(char *q, size_t n, const char *name, const char *value) {
    if (!value)
        return;
    size_t len = strlen(q);
    snprintf(q + len, n - len, "%c%s=", strchr(q, '?') ? '&' : '?', name);
    len = strlen(q);
    for (const char *p = value; *p && len + 4 < n; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || strchr("-_.~", c))
            q[len++] = (char)c;
        else
            len += (size_t)snprintf(q + len, n - len, "%%%02X", c);
    }
    q[len] = 0;
}

static int replay_one(const char *host, const char *token, const char *id,
                      const char *from_step) {
    json_t *body =
        from_step ? json_pack("{s:s}", "from_step", from_step) : json_object();
    char *path = path_of("/api/v1/dead-letters/%s/replay%s", id, NULL);
    api_reply r;
    int rc = api_request(host, token, path, body, &r);
    json_decref(body);
    free(path);
    if (rc || r.status != 202) {
        fprintf(stderr, "ferry dlq replay %s: %s\n", id,
                rc ? r.err : api_error_message(&r));
        api_reply_clear(&r);
        return -1;
    }
    printf("%s replayed as execution %s\n", id,
           json_string_value(json_object_get(r.body, "execution_id")));
    api_reply_clear(&r);
    return 0;
}

int cli_dlq(int argc, char **argv) {
    static const struct option opts[] = {
        {"host", 1, NULL, 'H'},      {"api-token", 1, NULL, 't'},
        {"instance", 1, NULL, 'i'},  {"flow", 1, NULL, 'f'},
        {"state", 1, NULL, 'S'},     {"all", 0, NULL, 'A'},
        {"from-step", 1, NULL, 'F'}, {"json", 0, NULL, 'J'},
        {"help", 0, NULL, 'h'},      {0}};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *sub = argv[1];
    const char *host = getenv("FERRY_HOST"), *tokflag = NULL;
    const char *inst = NULL, *flow = NULL, *state = NULL, *from = NULL;
    int all = 0, as_json = 0, c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "H:t:i:f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            host = optarg;
            break;
        case 't':
            tokflag = optarg;
            break;
        case 'i':
            inst = optarg;
            break;
        case 'f':
            flow = optarg;
            break;
        case 'S':
            state = optarg;
            break;
        case 'A':
            all = 1;
            break;
        case 'F':
            from = optarg;
            break;
        case 'J':
            as_json = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return CLI_OK;
        default:
            fputs(usage, stderr);
            return CLI_USAGE;
        }
    }
    if (!host || !*host)
        host = "http://127.0.0.1:8080";
    const char *token = api_token_or_env("ferry dlq", tokflag);
    if (!token)
        return CLI_USAGE;
    api_reply r;
    if (!strcmp(sub, "list") || (!strcmp(sub, "replay") && all)) {
        char q[2048] = "/api/v1/dead-letters";
        qadd(q, sizeof(q), "instance", inst);
        qadd(q, sizeof(q), "flow", flow);
        qadd(q, sizeof(q), "state", !strcmp(sub, "list") ? state : "open");
        qadd(q, sizeof(q), "limit", "100000");
        if (api_request(host, token, q, NULL, &r) || r.status != 200) {
            api_report_failure("ferry dlq", host, &r);
            api_reply_clear(&r);
            return CLI_FAILED;
        }
        int status = CLI_OK;
        size_t i;
        json_t *d;
        if (!strcmp(sub, "replay")) {
            json_array_foreach(r.body, i, d) {
                if (replay_one(host, token,
                               json_string_value(json_object_get(d, "id")),
                               from))
                    status = CLI_FAILED;
            }
            printf("%zu dead letter(s) replayed\n", json_array_size(r.body));
        } else if (as_json) {
            json_dumpf(r.body, stdout, JSON_INDENT(2));
            fputc('\n', stdout);
        } else {
            json_array_foreach(r.body, i, d) {
                printf("%-30s %-20s %-16s %-20s %-10s %d attempt(s): %s\n",
                       json_string_value(json_object_get(d, "id")),
                       json_string_value(json_object_get(d, "created")),
                       json_string_value(json_object_get(d, "instance")),
                       json_string_value(json_object_get(d, "flow")),
                       json_string_value(json_object_get(d, "state")),
                       (int)json_integer_value(json_object_get(d, "attempts")),
                       json_string_value(json_object_get(d, "error_message")));
            }
        }
        api_reply_clear(&r);
        return status;
    }
    if (optind >= argc) {
        fprintf(stderr, "ferry dlq %s: name at least one dead letter id\n",
                sub);
        return CLI_USAGE;
    }
    int status = CLI_OK;
    for (int k = optind; k < argc; k++) {
        const char *id = argv[k];
        if (!strcmp(sub, "replay")) {
            if (replay_one(host, token, id, from))
                status = CLI_FAILED;
            continue;
        }
        char *path = path_of("/api/v1/dead-letters/%s%s", id, NULL);
        int rc;
        if (!strcmp(sub, "show"))
            rc = api_request(host, token, path, NULL, &r);
        else if (!strcmp(sub, "discard"))
            rc = api_request_method(host, token, "DELETE", path, NULL, &r);
        else {
            free(path);
            fprintf(stderr, "ferry dlq: unknown command '%s'\n\n%s", sub,
                    usage);
            return CLI_USAGE;
        }
        free(path);
        if (rc || r.status != 200) {
            fprintf(stderr, "ferry dlq %s %s: %s\n", sub, id,
                    rc ? r.err : api_error_message(&r));
            status = CLI_FAILED;
        } else if (!strcmp(sub, "show")) {
            json_dumpf(r.body, stdout, JSON_INDENT(2));
            fputc('\n', stdout);
        } else {
            printf("%s discarded\n", id);
        }
        api_reply_clear(&r);
    }
    return status;
}
