/* Fuzzes frame_decoder_feed: the host reads frames from workers, and a
 * worker runs a customer's component code, so its bytes are outside input.
 * The input is split at arbitrary points (its first byte picks the chunk
 * size) to exercise frames that arrive in pieces. Every message handed
 * over must be a JSON object, and after an error the decoder is not fed
 * again (the host closes the stream). */
#include "exec/exec.h"
#include "fuzz.h"

#include <stdlib.h>

static size_t messages;

static void on_msg(void *ud, json_t *msg) {
    (void)ud;
    if (!json_is_object(msg))
        abort();
    messages++;
    json_decref(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t chunk = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    frame_decoder d = {0};
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (frame_decoder_feed(&d, (const char *)data + off, n, on_msg, NULL))
            break;
    }
    frame_decoder_free(&d);
    return 0;
}

void fuzz_target_cleanup(void) {}
