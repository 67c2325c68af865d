/*
 * A component's poll trigger, run as a one-step execution (flow_poll.h).
 */
#include "flow_poll.h"

#include "tmpl_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *flow_poll_input(const ferry_trigger *t, const json_t *options,
                        const json_t *cursor, char *err, size_t n) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)options, k, v) {
        const ferry_input *in = t->inputs;
        while (in && in->name && strcmp(in->name, k))
            in++;
        if (!in || !in->name || !strcmp(k, "cursor") || !strcmp(k, "dispose")) {
            snprintf(err, n, "options.%s: trigger '%s' has no option '%s'", k,
                     t->id, k);
            return NULL;
        }
        if (!abi_type_matches(in->type, v)) {
            snprintf(err, n, "options.%s: expected %s %s, got %s", k,
                     strchr("aeiou", in->type[0]) ? "an" : "a", in->type,
                     abi_json_type_name(v));
            return NULL;
        }
    }
    json_t *input = json_deep_copy(options);
    if (!input) {
        snprintf(err, n, "out of memory");
        return NULL;
    }
    for (const ferry_input *in = t->inputs; in && in->name; in++) {
        if (json_object_get(input, in->name))
            continue;
        if (in->default_json) {
            json_t *dv = json_loads(in->default_json, JSON_DECODE_ANY, NULL);
            if (dv)
                json_object_set_new(input, in->name, dv);
        } else if (in->required) {
            snprintf(err, n, "options.%s: trigger '%s' needs it (%s)", in->name,
                     t->id, in->type);
            json_decref(input);
            return NULL;
        }
    }
    json_object_set_new(input, "cursor",
                        cursor ? json_deep_copy(cursor) : json_null());
    return input;
}

/* Fails res without having run anything. */
static int fail(flow_result *res, int code, const char *fmt, const char *a,
                const char *b) {
    memset(res, 0, sizeof(*res));
    res->status = "failed";
    res->error_code = code;
    if (asprintf(&res->error_message, fmt, a, b) < 0)
        res->error_message = NULL;
    return 0;
}

int flow_poll(const flow_integration *ig, const flow_instance *in,
              const flow_def *f, const abi_registry *reg, const json_t *input,
              json_t *run_trigger, const flow_exec_opts *o, flow_result *res) {
    const char *src = json_string_value(json_object_get(f->trigger, "source"));
    const abi_component *owner = NULL;
    const ferry_trigger *t = src ? abi_find_trigger(reg, src, &owner) : NULL;
    if (!t || !t->poll)
        return fail(res, FERRY_ECONFIG, "no poll trigger '%s'%s",
                    src ? src : "?", t ? " (it has no poll function)" : "");
    const char *conn =
        json_string_value(json_object_get(f->trigger, "connection"));
    ferry_action act = {.id = t->id,
                        .label = t->label,
                        .description = t->description,
                        .inputs = NULL, /* checked by flow_poll_input */
                        .output = "{\"items\": [...], \"cursor\": any}",
                        .run = t->poll,
                        .flags = t->flags};
    char name[] = "poll";
    int *none = NULL;
    flow_step step = {.name = name,
                      .id = 0,
                      .kind = FLOW_STEP_ACTION,
                      .action_id = (char *)t->id,
                      .action = &act,
                      .component = owner,
                      .connection = (char *)conn,
                      .input = tmpl_from_value(input)};
    char *fname = NULL;
    if (!step.input ||
        asprintf(&fname, "%s%s", f->name, FLOW_POLL_SUFFIX) < 0) {
        tmpl_free(step.input);
        return fail(res, FERRY_ENOMEM, "out of memory%s%s", "", "");
    }
    flow_def pf = *f;
    pf.name = fname;
    pf.steps = (flow_step_list){.steps = &step, .n = 1, .release = &none};
    pf.nsteps = 1;
    int rc = flow_execute(ig, in, &pf, run_trigger, o, res);
    tmpl_free(step.input);
    free(fname);
    if (rc || strcmp(res->status, "succeeded"))
        return rc;
    const json_t *items = json_object_get(res->output, "items");
    if (!json_is_object(res->output) || !json_is_array(items)) {
        char *msg = NULL;
        if (asprintf(&msg,
                     "poll trigger '%s' set no {\"items\": [...], "
                     "\"cursor\": ...} output",
                     t->id) < 0)
            msg = NULL;
        json_decref(res->output);
        res->output = NULL;
        res->status = "failed";
        res->error_code = FERRY_EINTERNAL;
        free(res->error_message);
        res->error_message = msg;
    }
    return 0;
}
