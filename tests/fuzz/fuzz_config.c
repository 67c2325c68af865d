/* Fuzzes host_config_load: any bytes as the `ferry serve` config file.
 * A load either succeeds with a usable config or fails with one message
 * that names the file; nothing leaks either way. */
#include "fuzz.h"
#include "host/host.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *file = fuzz_file(0, data, size);
    host_config c;
    char *err = NULL;
    if (host_config_load(&c, file, &err)) {
        if (!err || !strstr(err, file) || strchr(err, '\n'))
            abort();
        free(err);
        return 0;
    }
    if (err || !c.listen_host || c.port < 0 || c.port > 65535 ||
        c.max_concurrency < 1 || c.timeout_ms == 0)
        abort();
    host_config_free(&c);
    return 0;
}

void fuzz_target_cleanup(void) {}
