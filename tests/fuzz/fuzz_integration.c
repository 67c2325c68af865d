/* Fuzzes flow_integration_load: any bytes as an integration file. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    flow_diags d = {0};
    const char *file = fuzz_file(0, data, size);
    flow_integration *ig = flow_integration_load(file, fuzz_registry(), &d);
    if (fuzz_verbose())
        flow_diags_print(&d, stderr);
    fuzz_check_diags(&d, 0, ig != NULL);
    if (ig) {
        /* What a loaded definition promises its users. */
        if (!ig->name || !ig->nflows || !flow_find(ig, ig->flows[0].name))
            __builtin_trap();
    }
    flow_integration_free(ig);
    flow_diags_free(&d);
    return 0;
}

void fuzz_target_cleanup(void) {
    fuzz_common_cleanup();
}
