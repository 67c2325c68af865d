/*
 * Fuzzes what POST /api/v1/instances does with its body: any bytes as the
 * request's JSON ({"integration": {...}, "instance": {...}}), parsed as the
 * handler parses it, then deployment_build: validation of both documents,
 * schedules, polls, alert monitors, and the instance's names.
 */
#include "fuzz.h"
#include "host/deploy.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_error_t e;
    json_t *doc =
        json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &e);
    json_t *ig = json_object_get(doc, "integration");
    json_t *in = json_object_get(doc, "instance");
    if (json_is_object(ig) && json_is_object(in)) {
        flow_diags d = {0};
        deployment *dp = deployment_build(ig, in, "integration", "instance",
                                          fuzz_registry(), &d);
        fuzz_check_diags(&d, 0, dp != NULL);
        if (dp &&
            (!dp->instance || !dp->ig || !dp->in || strchr(dp->instance, '/')))
            __builtin_trap();
        deployment_unref(dp);
        flow_diags_free(&d);
    }
    json_decref(doc);
    return 0;
}

void fuzz_target_cleanup(void) {
    fuzz_common_cleanup();
}
