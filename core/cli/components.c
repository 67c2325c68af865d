/*
 * `ferry components list|describe`: what the host would load from the
 * components directory, and what each component offers.
 *
 * `list` reports refused files as part of its result (stdout); `describe`
 * only mentions them on stderr, as the other loading commands do.
 */
#include "abi/abi.h"
#include "api_client.h"
#include "cli/cli.h"
#include "flow/flow.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage_main[] =
    "usage: ferry components list [--components-dir DIR] [--json]\n"
    "       ferry components describe NAME [--components-dir DIR] [--json]\n"
    "\n"
    "  list      the loaded components and the files that were refused\n"
    "  describe  one component's actions, triggers and connection types\n"
    "\n"
    "Run `ferry components list --help` or `ferry components describe "
    "--help`\n"
    "for their options.\n";

static const char usage_list[] =
    "usage: ferry components list [--components-dir DIR | --host URL\n"
    "                              [--api-token TOKEN]] [--json]\n"
    "\n"
    "Lists the components the host loads: name, version, number of actions\n"
    "and the file they came from (\"built-in\" for those compiled in), then\n"
    "every file in the directory that was refused, with the reason.\n"
    "\n"
    "  -d, --components-dir DIR  where to look for .so files (default:\n"
    "                            $FERRY_COMPONENTS_DIR, else "
    "build/components)\n"
    "  -H, --host URL            ask a running host what it has loaded now\n"
    "                            (http://127.0.0.1:8080)\n"
    "  -t, --api-token TOKEN     the host's API token (or $FERRY_API_TOKEN)\n"
    "  -j, --json                print one JSON object instead\n"
    "  -h, --help                show this help\n";

static const char usage_describe[] =
    "usage: ferry components describe NAME [--components-dir DIR] [--json]\n"
    "\n"
    "Shows a component's actions with their inputs (type, whether required,\n"
    "default, description), its triggers and its connection types.\n"
    "\n"
    "  -d, --components-dir DIR  where to look for .so files (default:\n"
    "                            $FERRY_COMPONENTS_DIR, else "
    "build/components)\n"
    "  -j, --json                print the description as JSON\n"
    "  -h, --help                show this help\n";

static void hint(const char *sub) {
    fprintf(stderr, "Try 'ferry components %s --help'.\n", sub);
}

typedef struct opts {
    const char *dir;
    const char *host;  /* list: ask a running host instead */
    const char *token; /* its API token */
    int json;
    const char *name; /* describe's NAME */
} opts;

/* Parses a subcommand's options; argv[0] is the subcommand. Returns -1 to
 * go on, or the exit status to return (after --help or a usage error). */
static int parse_opts(int argc, char **argv, const char *usage, int want_name,
                      opts *o) {
    static const struct option longopts[] = {
        {"components-dir", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"host", required_argument, NULL, 'H'},
        {"api-token", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof(*o));
    optind = 0; /* GNU: start afresh, whatever parsed argv before */
    opterr = 0;
    int c;
    /* The leading ':' tells a missing value (':') from an unknown option. */
    while ((c = getopt_long(argc, argv, ":d:jhH:t:", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->dir = optarg;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'H':
            o->host = optarg;
            break;
        case 't':
            o->token = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return CLI_OK;
        case ':':
            fprintf(stderr, "ferry components %s: option '%s' needs a value\n",
                    argv[0], argv[optind - 1]);
            hint(argv[0]);
            return CLI_USAGE;
        default:
            if (optopt != 0)
                fprintf(stderr, "ferry components %s: unknown option '-%c'\n",
                        argv[0], optopt);
            else
                fprintf(stderr, "ferry components %s: unknown option '%s'\n",
                        argv[0], argv[optind - 1]);
            hint(argv[0]);
            return CLI_USAGE;
        }
    }
    int npos = argc - optind;
    if (want_name && npos != 1) {
        fprintf(stderr, "ferry components %s: %s\n", argv[0],
                npos == 0 ? "NAME is required" : "takes one NAME");
        hint(argv[0]);
        return CLI_USAGE;
    }
    if (!want_name && npos != 0) {
        fprintf(stderr, "ferry components %s: unexpected argument '%s'\n",
                argv[0], argv[optind]);
        hint(argv[0]);
        return CLI_USAGE;
    }
    if (want_name)
        o->name = argv[optind];
    return -1;
}

static size_t count_actions(const ferry_component *d) {
    size_t n = 0;
    for (const ferry_action *a = d->actions; a != NULL && a->id != NULL; a++)
        n++;
    return n;
}

static const char *or_empty(const char *s) {
    return s != NULL ? s : "";
}

static const char *where(const abi_component *c) {
    return c->path != NULL ? c->path : "built-in";
}

static void print_json(json_t *j) {
    json_dumpf(j, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
}

/* What `list` shows, as JSON: {"components": [{name, version,
 * description, actions, path}], "refused": [{path, reason}]}. A running
 * host answers GET /api/v1/components in the same shape, with each
 * component's full description ("actions" then is an array). */
static json_t *list_doc(const abi_registry *r) {
    json_t *comps = json_array();
    for (size_t i = 0; i < r->ncomponents; i++) {
        const abi_component *c = &r->components[i];
        json_t *o = json_pack(
            "{s:s, s:s?, s:s?, s:I, s:s?}", "name", c->desc->name, "version",
            c->desc->version, "description", c->desc->description, "actions",
            (json_int_t)count_actions(c->desc), "path", c->path);
        json_array_append_new(comps, o);
    }
    json_t *refused = json_array();
    for (size_t i = 0; i < r->nrefused; i++)
        json_array_append_new(refused, json_pack("{s:s, s:s}", "path",
                                                 r->refused[i].path, "reason",
                                                 r->refused[i].reason));
    return json_pack("{s:o, s:o}", "components", comps, "refused", refused);
}

static const char *jstr_or(const json_t *o, const char *k, const char *dflt) {
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : dflt;
}

static int list_text(const json_t *doc) {
    const json_t *comps = json_object_get(doc, "components");
    const json_t *refused = json_object_get(doc, "refused");
    int wname = 4, wver = 7;
    size_t i;
    const json_t *c;
    json_array_foreach(comps, i, c) {
        int n = (int)strlen(jstr_or(c, "name", ""));
        int v = (int)strlen(jstr_or(c, "version", ""));
        if (n > wname)
            wname = n;
        if (v > wver)
            wver = v;
    }
    printf("%-*s  %-*s  %7s  %s\n", wname, "NAME", wver, "VERSION", "ACTIONS",
           "PATH");
    json_array_foreach(comps, i, c) {
        const json_t *a = json_object_get(c, "actions");
        size_t nact = json_is_array(a) ? json_array_size(a)
                                       : (size_t)json_integer_value(a);
        printf("%-*s  %-*s  %7zu  %s\n", wname, jstr_or(c, "name", ""), wver,
               jstr_or(c, "version", ""), nact, jstr_or(c, "path", "built-in"));
    }
    if (json_array_size(refused) > 0)
        putchar('\n');
    json_array_foreach(refused, i, c) {
        printf("refused: %s: %s\n", jstr_or(c, "path", "?"),
               jstr_or(c, "reason", "?"));
    }
    return CLI_OK;
}

static int cmd_list(int argc, char **argv) {
    opts o;
    int rc = parse_opts(argc, argv, usage_list, 0, &o);
    if (rc >= 0)
        return rc;
    json_t *doc = NULL;
    if (o.host) {
        const char *token = api_token_or_env("components list", o.token);
        if (!token)
            return CLI_USAGE;
        api_reply reply;
        if (api_request(o.host, token, "/api/v1/components", NULL, &reply)) {
            fprintf(stderr, "ferry components list: %s: %s\n", o.host,
                    reply.err);
            return CLI_FAILED;
        }
        if (reply.status != 200 || !json_is_object(reply.body)) {
            api_report_failure("components list", o.host, &reply);
            api_reply_clear(&reply);
            return CLI_FAILED;
        }
        doc = json_incref(reply.body);
        api_reply_clear(&reply);
    } else {
        abi_registry r;
        if (cli_load_registry(&r, o.dir, NULL))
            return CLI_USAGE;
        doc = list_doc(&r);
        abi_registry_free(&r);
    }
    if (o.json)
        print_json(doc);
    else
        list_text(doc);
    json_decref(doc);
    return CLI_OK;
}

/* Prints inputs (or fields) as aligned rows under a heading. */
static void print_inputs(const char *heading, const ferry_input *in) {
    if (in == NULL || in->name == NULL) {
        printf("    %s: none\n", heading);
        return;
    }
    int wname = 0, wtype = 0, wdef = 0;
    for (const ferry_input *p = in; p->name != NULL; p++) {
        int n = (int)strlen(p->name), t = (int)strlen(p->type);
        int d = p->default_json != NULL
                    ? (int)strlen(p->default_json) + (int)strlen("default ")
                    : 0;
        if (n > wname)
            wname = n;
        if (t > wtype)
            wtype = t;
        if (d > wdef)
            wdef = d;
    }
    printf("    %s:\n", heading);
    for (const ferry_input *p = in; p->name != NULL; p++) {
        char def[256] = "";
        if (p->default_json != NULL)
            snprintf(def, sizeof(def), "default %s", p->default_json);
        const char *desc = p->description;
        if (desc != NULL && desc[0] == '\0')
            desc = NULL;
        /* Pad only columns something follows: no trailing blanks. */
        printf("      %-*s  %-*s  %s", wname, p->name, wtype, p->type,
               p->required ? "required" : "optional");
        if (wdef > 0 && desc != NULL)
            printf("  %-*s", wdef, def);
        else if (def[0] != '\0')
            printf("  %s", def);
        if (desc != NULL)
            printf("  %s", desc);
        putchar('\n');
    }
}

static void print_title(const char *id, const char *label) {
    if (label != NULL && label[0] != '\0')
        printf("  %s - %s\n", id, label);
    else
        printf("  %s\n", id);
}

static void describe_text(const abi_component *c) {
    const ferry_component *d = c->desc;
    printf("%s %s\n", d->name, or_empty(d->version));
    if (d->description != NULL)
        printf("  %s\n", d->description);
    printf("  from: %s\n", where(c));

    printf("\nActions\n");
    if (d->actions == NULL || d->actions->id == NULL)
        printf("  none\n");
    for (const ferry_action *a = d->actions; a != NULL && a->id != NULL; a++) {
        print_title(a->id, a->label);
        if (a->description != NULL)
            printf("    %s\n", a->description);
        if (a->flags & FERRY_ACTION_IDEMPOTENT)
            printf("    idempotent: safe to run again after a crash\n");
        print_inputs("inputs", a->inputs);
        if (a->output != NULL)
            printf("    output: %s\n", a->output);
        if (a[1].id != NULL)
            putchar('\n');
    }

    if (d->triggers != NULL && d->triggers->id != NULL) {
        printf("\nTriggers\n");
        for (const ferry_trigger *t = d->triggers; t->id != NULL; t++) {
            print_title(t->id, t->label);
            if (t->description != NULL)
                printf("    %s\n", t->description);
            print_inputs("inputs", t->inputs);
            if (t[1].id != NULL)
                putchar('\n');
        }
    }

    if (d->connections != NULL && d->connections->id != NULL) {
        printf("\nConnection types\n");
        for (const ferry_connection_type *k = d->connections; k->id != NULL;
             k++) {
            print_title(k->id, k->label);
            if (k->description != NULL)
                printf("    %s\n", k->description);
            printf("    auth: %s\n", k->auth);
            print_inputs("fields", k->fields);
            if (k[1].id != NULL)
                putchar('\n');
        }
    }
}

static void print_unknown(const abi_registry *r, const char *name) {
    fprintf(stderr, "ferry: no component '%s' (loaded: ", name);
    if (r->ncomponents == 0)
        fputs("none", stderr);
    for (size_t i = 0; i < r->ncomponents; i++)
        fprintf(stderr, "%s%s", i ? ", " : "", r->components[i].desc->name);
    fputs(")\n", stderr);
}

static int cmd_describe(int argc, char **argv) {
    opts o;
    int rc = parse_opts(argc, argv, usage_describe, 1, &o);
    if (rc >= 0)
        return rc;
    if (o.host) {
        fprintf(stderr, "ferry components describe: --host is for list; "
                        "describe reads the components directory\n");
        return CLI_USAGE;
    }
    abi_registry r;
    if (cli_load_registry(&r, o.dir, stderr))
        return CLI_USAGE;
    const abi_component *c = abi_find_component(&r, o.name);
    if (c == NULL) {
        print_unknown(&r, o.name);
        rc = CLI_USAGE;
    } else if (o.json) {
        json_t *j = abi_describe_json(c);
        print_json(j);
        json_decref(j);
        rc = CLI_OK;
    } else {
        describe_text(c);
        rc = CLI_OK;
    }
    abi_registry_free(&r);
    return rc;
}

int cli_components(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage_main, stderr);
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "list") == 0)
        return cmd_list(argc - 1, argv + 1);
    if (strcmp(sub, "describe") == 0)
        return cmd_describe(argc - 1, argv + 1);
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
        strcmp(sub, "help") == 0) {
        fputs(usage_main, stdout);
        return CLI_OK;
    }
    fprintf(stderr, "ferry components: unknown command '%s'\n", sub);
    fputs(usage_main, stderr);
    return CLI_USAGE;
}
