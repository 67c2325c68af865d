/*
 * jqv: running jq programs (libjq) over jansson values.
 *
 * Owns: the jansson <-> jv conversion (no JSON text in between) and
 * compiling and running programs. It knows nothing of steps or scopes.
 */
#ifndef FERRY_CORE_JQV_H
#define FERRY_CORE_JQV_H

#include <jansson.h>

typedef struct jqv_program jqv_program;

/* Compiles program. Returns NULL with *err malloc'd (jq's message, one line
 * per error joined with "; ") if it does not compile. */
jqv_program *jqv_compile(const char *program, char **err);

/* Runs p over input (borrowed). If collect is zero, the program must emit
 * exactly one value, which becomes *out (new ref); if nonzero, every value
 * emitted is gathered into an array. Returns 0, or -1 with *err malloc'd
 * (a jq runtime error, or the wrong number of results). */
int jqv_run(jqv_program *p, const json_t *input, int collect, json_t **out,
            char **err);

void jqv_free(jqv_program *p);

/* Conversions, exposed for tests and benchmarks. */
/* v: borrowed. Returns a jv owning its data. */
#include <jv.h>
jv jqv_from_json(const json_t *v);
/* v: consumed (jv_free'd). Returns a new ref, or NULL on an invalid jv. */
json_t *jqv_to_json(jv v);

#endif
