/* Fuzzes flow_instance_load: any bytes as an instance file for a fixed
 * integration with config variables of every type and a connection. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static const char integration[] =
    "{\"name\": \"fz-int\", \"config\": {"
    "\"s\": {\"type\": \"string\", \"required\": true},"
    "\"i\": {\"type\": \"integer\", \"default\": 1},"
    "\"n\": {\"type\": \"number\"}, \"b\": {\"type\": \"boolean\"},"
    "\"o\": {\"type\": \"object\", \"default\": {}},"
    "\"a\": {\"type\": \"array\"}, \"x\": {\"type\": \"any\"}},"
    "\"connections\": {\"login\": {\"type\": \"fz.login\"},"
    "\"other\": {\"type\": \"fz.login\"}},"
    "\"flows\": [{\"name\": \"f\", \"steps\": [{\"name\": \"a\","
    "\"action\": \"core.set\", \"input\": {\"value\": \"{{ config }}\"}}]}]}";

static flow_integration *ig;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    flow_diags d = {0};
    if (!ig) {
        const char *f =
            fuzz_file(0, (const uint8_t *)integration, strlen(integration));
        ig = flow_integration_load(f, fuzz_registry(), &d);
        if (!ig) {
            flow_diags_print(&d, stderr);
            abort();
        }
    }
    const char *file = fuzz_file(1, data, size);
    flow_instance *in = flow_instance_load(file, ig, fuzz_registry(), &d);
    if (fuzz_verbose())
        flow_diags_print(&d, stderr);
    fuzz_check_diags(&d, 0, in != NULL);
    if (in) {
        /* Every declared variable has a value (maybe null), and only
         * those; every connection has the three fields. */
        if (json_object_size(in->config) != json_object_size(ig->config_decl))
            __builtin_trap();
        const char *k;
        json_t *v;
        json_object_foreach(in->connections, k, v) {
            if (!json_is_object(json_object_get(v, "fields")) ||
                !json_is_string(json_object_get(v, "type")))
                __builtin_trap();
        }
    }
    flow_instance_free(in);
    flow_diags_free(&d);
    return 0;
}

void fuzz_target_cleanup(void) {
    flow_integration_free(ig);
    ig = NULL;
    fuzz_common_cleanup();
}
