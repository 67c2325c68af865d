/* `ferry serve` and the internal `ferry zygote`. */
#include "cli/cli.h"
#include "exec/exec.h"
#include "host/config.h"
#include "host/host.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void serve_usage(FILE *f) {
    fprintf(
        f,
        "usage: ferry serve [--config FILE] [--listen ADDR:PORT] [--db PATH]\n"
        "                   [--components-dir DIR] [--deployments DIR]\n"
        "                   [--api-token TOKEN]... [--log-format text|json]\n"
        "                   [--port-file FILE]\n"
        "\n"
        "Runs the host: the HTTP API, the deployed instances, and every\n"
        "execution in its own worker process. Settings come from the\n"
        "defaults, then the config file, then FERRY_* variables, then the\n"
        "flags. With no settings at all it listens on 127.0.0.1:8080 with\n"
        "ferry.db, build/components and deployments/ in the working\n"
        "directory. --port-file writes the bound port (useful with port 0).\n"
        "SIGTERM stops it gracefully; SIGHUP reloads the deployments.\n");
}

static int set_str(char **slot, const char *v) {
    char *c = strdup(v);
    if (!c)
        return -1;
    free(*slot);
    *slot = c;
    return 0;
}

int cli_serve(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, 0, 'C'},
        {"listen", required_argument, 0, 'l'},
        {"db", required_argument, 0, 'd'},
        {"components-dir", required_argument, 0, 'c'},
        {"deployments", required_argument, 0, 'D'},
        {"api-token", required_argument, 0, 't'},
        {"log-format", required_argument, 0, 'L'},
        {"port-file", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *config = NULL;
    int c;
    optind = 1;
    /* The config file first, so that flags override it whatever their
     * order on the command line. */
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            serve_usage(stdout);
            return CLI_OK;
        }
        if (c == '?') {
            serve_usage(stderr);
            return CLI_USAGE;
        }
        if (c == 'C')
            config = optarg;
    }
    if (optind != argc) {
        serve_usage(stderr);
        return CLI_USAGE;
    }
    host_config cfg;
    char *err = NULL;
    if (host_config_load(&cfg, config, &err)) {
        fprintf(stderr, "ferry serve: %s\n", err);
        free(err);
        return CLI_USAGE;
    }
    int status = CLI_USAGE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': {
            char *host = NULL;
            int port = 0;
            if (host_parse_listen(optarg, &host, &port)) {
                fprintf(stderr, "ferry serve: --listen %s: %s\n", optarg,
                        HOST_LISTEN_EXPECTED);
                goto out;
            }
            free(cfg.listen_host);
            cfg.listen_host = host;
            cfg.port = port;
            break;
        }
        case 'd':
            set_str(&cfg.db, optarg);
            break;
        case 'c':
            set_str(&cfg.components_dir, optarg);
            break;
        case 'D':
            set_str(&cfg.deployments_dir, optarg);
            break;
        case 'p':
            set_str(&cfg.port_file, optarg);
            break;
        case 't': {
            char **t = realloc(cfg.api_tokens,
                               (cfg.ntokens + 1) * sizeof(*cfg.api_tokens));
            if (!t)
                goto out;
            cfg.api_tokens = t;
            cfg.api_tokens[cfg.ntokens++] = strdup(optarg);
            break;
        }
        case 'L':
            if (strcmp(optarg, "text") && strcmp(optarg, "json")) {
                fprintf(stderr, "ferry serve: --log-format must be text or "
                                "json\n");
                goto out;
            }
            cfg.log_json = !strcmp(optarg, "json");
            break;
        default:
            break;
        }
    }
    status = host_serve(&cfg) ? CLI_FAILED : CLI_OK;
out:
    host_config_free(&cfg);
    return status;
}

int cli_zygote(int argc, char **argv) {
    return exec_zygote_cli(argc, argv);
}
