/*
 * `ferry schedule next`: the next fire times of a scheduled flow, for one
 * instance, as the host would compute them.
 */
#include "cli/cli.h"
#include "flow/flow.h"
#include "sched/sched.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage_main[] =
    "usage: ferry schedule next INTEGRATION.json [--flow NAME]\n"
    "                           [--instance INSTANCE.json] [--count N]\n"
    "                           [--from TIME] [--components-dir DIR]\n"
    "\n"
    "  next  the next fire times of a scheduled flow\n"
    "\n"
    "Run `ferry schedule next --help` for its options.\n";

static const char usage_next[] =
    "usage: ferry schedule next INTEGRATION.json [--flow NAME]\n"
    "                           [--instance INSTANCE.json] [--count N]\n"
    "                           [--from TIME] [--components-dir DIR]\n"
    "\n"
    "Prints the next N fire times of a flow with a schedule trigger after\n"
    "TIME, one per line: the local time in the schedule's zone with its\n"
    "offset, then UTC (2027-03-14T03:00:00-05:00 2027-03-14T08:00:00Z).\n"
    "The zone is the instance's config value named by the trigger's\n"
    "\"timezone_config\" when set, else the trigger's \"timezone\", else UTC.\n"
    "\n"
    "  -f, --flow NAME           the flow (may be left out if there is one)\n"
    "  -i, --instance FILE       the instance whose config applies (default:\n"
    "                            the integration's defaults)\n"
    "  -n, --count N             how many fire times (default 5)\n"
    "  -F, --from TIME           ISO 8601 with an offset or Z (default now)\n"
    "  -d, --components-dir DIR  where to look for .so files\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0, or 2 for a usage or definition error.\n";

static int schedule_next(int argc, char **argv) {
    static const struct option opts[] = {
        {"flow", required_argument, 0, 'f'},
        {"instance", required_argument, 0, 'i'},
        {"count", required_argument, 0, 'n'},
        {"from", required_argument, 0, 'F'},
        {"components-dir", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *flow = NULL, *instance = NULL, *dir = NULL, *from = NULL;
    long count = 5;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:i:n:F:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            flow = optarg;
            break;
        case 'i':
            instance = optarg;
            break;
        case 'n': {
            char *end;
            count = strtol(optarg, &end, 10);
            if (*end || end == optarg || count < 1 || count > 100000) {
                fprintf(stderr, "ferry schedule next: --count must be a "
                                "number from 1 to 100000\n");
                return CLI_USAGE;
            }
            break;
        }
        case 'F':
            from = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'h':
            fputs(usage_next, stdout);
            return CLI_OK;
        default:
            fputs(usage_next, stderr);
            return CLI_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fputs(usage_next, stderr);
        return CLI_USAGE;
    }
    const char *file = argv[optind];
    int64_t t;
    if (from) {
        if (sched_parse_time(from, &t)) {
            fprintf(stderr,
                    "ferry schedule next: --from '%s' is not an ISO 8601 "
                    "time with an offset (2027-03-14T00:00:00-05:00 or "
                    "2027-03-14T05:00:00Z)\n",
                    from);
            return CLI_USAGE;
        }
    } else {
        t = (int64_t)time(NULL);
    }

    int status = CLI_USAGE;
    abi_registry reg;
    flow_diags d = {0};
    flow_integration *ig = NULL;
    flow_instance *in = NULL;
    sched_spec spec = {0};
    char msg[512];

    if (cli_load_registry(&reg, dir, stderr))
        return CLI_USAGE;
    ig = flow_integration_load(file, &reg, &d);
    if (ig)
        in = flow_instance_load(instance, ig, &reg, &d);
    if (d.n) {
        flow_diags_print(&d, stderr);
        goto out;
    }
    const flow_def *f = flow_find(ig, flow);
    if (!f) {
        if (flow)
            fprintf(stderr,
                    "ferry schedule next: integration '%s' has no flow "
                    "'%s'\n",
                    ig->name, flow);
        else
            fprintf(stderr,
                    "ferry schedule next: integration '%s' has %zu flows; "
                    "choose one with --flow\n",
                    ig->name, ig->nflows);
        goto out;
    }
    size_t fi = (size_t)(f - ig->flows);
    const char *type = json_string_value(json_object_get(f->trigger, "type"));
    if (!type || strcmp(type, "schedule")) {
        fprintf(stderr,
                "ferry schedule next: flow '%s' is not scheduled: its "
                "trigger type is \"%s\", not \"schedule\"\n",
                f->name, type ? type : "?");
        goto out;
    }
    if (sched_check_trigger(f->trigger, msg, sizeof(msg)) ||
        sched_check_trigger_config(f->trigger, ig->config_decl, msg,
                                   sizeof(msg))) {
        fprintf(stderr, "%s: flows[%zu].trigger.%s\n", file, fi, msg);
        goto out;
    }
    if (sched_spec_from_trigger(&spec, f->trigger, in->config, msg,
                                sizeof(msg))) {
        /* The trigger itself is fine: the instance's value is not (or
         * the integration's default for it, with no instance file). */
        fprintf(stderr, "%s: %s\n", in->file ? in->file : file, msg);
        goto out;
    }
    for (long i = 0; i < count; i++) {
        char local[40], utc[40];
        t = sched_spec_next(&spec, t);
        if (t == SCHED_NONE) {
            fprintf(stderr, "ferry schedule next: no fire time after this "
                            "one before the year 10000\n");
            break;
        }
        printf("%s %s\n", sched_format_time(spec.zone, t, local, sizeof(local)),
               sched_format_time(NULL, t, utc, sizeof(utc)));
    }
    status = CLI_OK;
out:
    sched_spec_clear(&spec);
    flow_instance_free(in);
    flow_integration_free(ig);
    flow_diags_free(&d);
    abi_registry_free(&reg);
    return status;
}

int cli_schedule(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "next"))
        return schedule_next(argc - 1, argv + 1);
    fprintf(stderr, "ferry schedule: unknown subcommand '%s'\n\n%s", argv[1],
            usage_main);
    return CLI_USAGE;
}
