/*
 * Fuzzes what comes after loading: any bytes as an integration file, and
 * when it loads, every flow run with the default instance and no store.
 * Runs are bounded: the execution is cancelled after MAX_STEPS steps, and
 * flows with a jq step are not run (a jq program may loop forever).
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEPS 16

static int has_jq(const flow_step_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        const flow_step *st = &l->steps[i];
        if (st->kind == FLOW_STEP_JQ || has_jq(&st->body) ||
            has_jq(&st->otherwise))
            return 1;
        for (size_t k = 0; k < st->ncases; k++)
            if (has_jq(&st->cases[k].steps))
                return 1;
    }
    return 0;
}

typedef struct bound {
    volatile int cancel;
    int steps;
} bound;

static void on_step(void *ud, const flow_step_event *ev) {
    bound *b = ud;
    if (!ev->path || !ev->status)
        __builtin_trap();
    if (++b->steps >= MAX_STEPS)
        b->cancel = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    flow_diags d = {0};
    const abi_registry *reg = fuzz_registry();
    const char *file = fuzz_file(0, data, size);
    flow_integration *ig = flow_integration_load(file, reg, &d);
    flow_instance *in = ig ? flow_instance_load(NULL, ig, reg, &d) : NULL;
    json_t *trigger = json_pack("{s:[i,s,{s:n}], s:s, s:i}", "a", 1, "x", "b",
                                "s", "str", "n", 2);
    for (size_t i = 0; in && i < ig->nflows; i++) {
        const flow_def *f = &ig->flows[i];
        if (has_jq(&f->steps))
            continue;
        bound b = {0};
        flow_exec_opts o = {.cancel = &b.cancel, .on_step = on_step, .ud = &b};
        flow_result res;
        if (flow_execute(ig, in, f, trigger, &o, &res))
            __builtin_trap(); /* only a store can fail to start */
        if (!res.status)
            __builtin_trap();
        if (fuzz_verbose())
            fprintf(stderr, "flow %s: %s%s%s\n", f->name, res.status,
                    res.error_step ? " at " : "",
                    res.error_step ? res.error_step : "");
        if (!strcmp(res.status, "succeeded")) {
            if (!res.output || res.error_step)
                __builtin_trap();
        } else if (!res.error_step || !res.error_code || res.output) {
            __builtin_trap();
        }
        flow_result_clear(&res);
    }
    json_decref(trigger);
    flow_instance_free(in);
    flow_integration_free(ig);
    flow_diags_free(&d);
    return 0;
}

void fuzz_target_cleanup(void) {
    fuzz_common_cleanup();
}
