/* Fuzzes frame_decoder_feed: the host reads frames from workers, and a
 * worker runs a customer's component code, so its bytes are outside input.
 * The input is fed twice: whole, and split at arbitrary points (its first
 * byte picks the chunk size) to exercise frames that arrive in pieces.
 * Every message handed over must be a JSON object, both feeds must hand
 * over the same messages in the same order up to the first error, and
 * after an error the decoder is not fed again (the host closes the
 * stream). */
#include "exec/exec.h"
#include "fuzz.h"

#include <stdlib.h>

typedef struct seen {
    json_t *msgs; /* the messages of the whole feed */
    size_t next;  /* the split feed's next message to compare */
} seen;

static void on_whole(void *ud, json_t *msg) {
    if (!json_is_object(msg))
        abort();
    json_array_append_new(((seen *)ud)->msgs, msg);
}

static void on_piece(void *ud, json_t *msg) {
    seen *s = ud;
    if (!json_is_object(msg) ||
        !json_equal(msg, json_array_get(s->msgs, s->next)))
        abort();
    s->next++;
    json_decref(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t chunk = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    seen s = {.msgs = json_array()};
    if (!s.msgs)
        return 0;
    frame_decoder d = {0};
    int whole_rc =
        frame_decoder_feed(&d, (const char *)data, size, on_whole, &s);
    frame_decoder_free(&d);
    int rc = 0;
    for (size_t off = 0; off < size && !rc; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        rc = frame_decoder_feed(&d, (const char *)data + off, n, on_piece, &s);
    }
    frame_decoder_free(&d);
    /* Both stop at the same frame: the same messages, the same outcome. */
    if (s.next != json_array_size(s.msgs) || !rc != !whole_rc)
        abort();
    json_decref(s.msgs);
    return 0;
}

void fuzz_target_cleanup(void) {}
