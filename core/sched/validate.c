/*
 * Schedule checks in the shape of definition diagnostics, for the callers
 * that validate integrations and instances (`ferry validate`, deploy): flow
 * cannot depend on sched, so they call these after flow's own loading.
 */
#include "flow/flow.h"
#include "poll.h"
#include "sched.h"

#include <stdio.h>
#include <string.h>

int sched_check_trigger_config(const json_t *trigger, const json_t *config_decl,
                               char *msg, size_t n) {
    const char *var =
        json_string_value(json_object_get(trigger, "timezone_config"));
    if (!var)
        return 0;
    const json_t *decl = json_object_get(config_decl, var);
    const char *type = json_string_value(json_object_get(decl, "type"));
    if (!decl) {
        snprintf(msg, n,
                 "timezone_config: '%s' is not a config variable of this "
                 "integration",
                 var);
        return -1;
    }
    if (!type || strcmp(type, "string")) {
        snprintf(msg, n,
                 "timezone_config: config variable '%s' must have type "
                 "string, not %s",
                 var, type ? type : "none");
        return -1;
    }
    return 0;
}

static int is_schedule(const json_t *trigger) {
    const char *t = json_string_value(json_object_get(trigger, "type"));
    return t && !strcmp(t, "schedule");
}

/* msg is "KEY: reason": the diag's path is prefix.KEY. */
static void add(flow_diags *d, const char *file, const char *prefix,
                const char *msg) {
    const char *sep = strstr(msg, ": ");
    char path[256];
    if (!sep) {
        flow_diags_add(d, file, prefix, "%s", msg);
        return;
    }
    snprintf(path, sizeof(path), "%s%s%.*s", prefix, *prefix ? "." : "",
             (int)(sep - msg), msg);
    flow_diags_add(d, file, path, "%s", sep + 2);
}

int sched_validate_integration(const struct flow_integration *ig,
                               struct flow_diags *d) {
    size_t before = d->n;
    char msg[512], prefix[64];
    for (size_t i = 0; i < ig->nflows; i++) {
        const json_t *t = ig->flows[i].trigger;
        if (!is_schedule(t))
            continue;
        snprintf(prefix, sizeof(prefix), "flows[%zu].trigger", i);
        if (sched_check_trigger(t, msg, sizeof(msg)) ||
            sched_check_trigger_config(t, ig->config_decl, msg, sizeof(msg)))
            add(d, ig->file, prefix, msg);
    }
    poll_validate_integration(ig, d);
    return (int)(d->n - before);
}

int sched_validate_instance(const struct flow_integration *ig,
                            const struct flow_instance *in,
                            struct flow_diags *d) {
    size_t before = d->n;
    char msg[512];
    for (size_t i = 0; i < ig->nflows; i++) {
        const json_t *t = ig->flows[i].trigger;
        sched_spec s;
        /* A bad trigger is the integration's error, reported there. */
        if (!is_schedule(t) || sched_check_trigger(t, msg, sizeof(msg)) ||
            sched_check_trigger_config(t, ig->config_decl, msg, sizeof(msg)))
            continue;
        if (sched_spec_from_trigger(&s, t, in->config, msg, sizeof(msg)))
            add(d, in->file ? in->file : ig->file, "", msg);
        else
            sched_spec_clear(&s);
    }
    poll_validate_instance(ig, in, d);
    return (int)(d->n - before);
}
