/* Differential fuzzing of jtext (core/jtext) against jansson, which it
 * must match exactly. For flags 0 and JSON_DECODE_ANY the input is loaded
 * with jtext_load and json_loadb: both fail with the same error, or both
 * give the same value (json_equal, the same compact text, so the same key
 * order and integer/real types, and the same bits of every real), and
 * jtext_dump writes it as json_dumps does. The raw bytes are also dumped as
 * a string (json_stringn_nocheck, so perhaps not UTF-8: both NULL, or the
 * same text), alone and as an object key. Any difference aborts, after
 * saying what differed. */
#include "../jtext/jtext_same.h"
#include "fuzz.h"
#include "jtext/jtext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)

static void differ(const char *what, const char *jansson, const char *jtext) {
    fprintf(stderr, "fuzz_jtext: %s differ:\n  jansson: %s\n  jtext:   %s\n",
            what, jansson ? jansson : "(NULL)", jtext ? jtext : "(NULL)");
    abort();
}

/* Dumps v with both: the same text, or both NULL; *len its length. */
static void check_dump(const json_t *v, const char *what) {
    char *dj = json_dumps(v, DUMP_FLAGS);
    size_t len = (size_t)-1;
    char *dt = jtext_dump(v, &len);
    if (!dj != !dt || (dj && strcmp(dj, dt)))
        differ(what, dj, dt);
    if (dt && len != strlen(dt))
        differ("jtext_dump's len and its text's length", "", dt);
    free(dj);
    free(dt);
}

static void check_load(const char *buf, size_t size, size_t flags) {
    json_error_t ej, et;
    json_t *vj = json_loadb(buf, size, flags, &ej);
    json_t *vt = jtext_load(buf, size, flags, &et);
    if (!vj != !vt)
        differ("outcomes of the load", vj ? "loads" : ej.text,
               vt ? "loads" : et.text);
    if (!vj) {
        if (strcmp(ej.text, et.text))
            differ("load errors", ej.text, et.text);
        if (ej.line != et.line || ej.column != et.column ||
            ej.position != et.position || strcmp(ej.source, et.source))
            differ("load error positions", ej.text, et.text);
        return;
    }
    if (et.text[0] != '\0' || et.position != ej.position)
        differ("err after a success", "", et.text);
    char *dj = json_dumps(vj, DUMP_FLAGS);
    char *dv = json_dumps(vt, DUMP_FLAGS);
    if (!dj || !dv || strcmp(dj, dv))
        differ("loaded values (as json_dumps writes them)", dj, dv);
    if (!json_equal(vj, vt))
        differ("loaded values (json_equal)", dj, dv);
    if (!same(vj, vt))
        differ("loaded values (types, order or bits)", dj, dv);
    free(dj);
    free(dv);
    check_dump(vj, "dumps of the loaded value");
    json_decref(vj);
    json_decref(vt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 16))
        return 0;
    const char *buf = (const char *)data;
    check_load(buf, size, 0);
    check_load(buf, size, JSON_DECODE_ANY);

    /* The bytes as a string, perhaps not UTF-8. */
    json_t *s = json_stringn_nocheck(buf, size);
    if (!s)
        return 0;
    check_dump(s, "dumps of the input as a string");
    json_t *o = json_object();
    if (o && json_object_setn_nocheck(o, buf, size, s) == 0) {
        check_dump(o, "dumps of the input as a key");
        json_t *a = json_pack("[O,O,i]", s, o, 1);
        if (a)
            check_dump(a, "dumps of the input in an array");
        json_decref(a);
    }
    json_decref(o);
    json_decref(s);
    return 0;
}

void fuzz_target_cleanup(void) {}
