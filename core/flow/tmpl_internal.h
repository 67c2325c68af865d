/* Compiling templates: used by def.c when loading a definition. */
#ifndef FERRY_CORE_TMPL_INTERNAL_H
#define FERRY_CORE_TMPL_INTERNAL_H

#include "flow.h"

enum ref_root {
    REF_TRIGGER,
    REF_CONFIG,
    REF_CONNECTIONS,
    REF_STEP,
    REF_LOOP_ITEM,
    REF_LOOP_INDEX
};

/* What a template being compiled can see. Everything borrowed. */
typedef struct tmpl_env {
    const char *file;
    flow_diags *d;
    const json_t *config_decl; /* to check config.NAME; NULL skips */
    const json_t *conn_decl;   /* to check connections.NAME; NULL skips */
    /* Returns the id of a step visible here, or -1 with why filled in. */
    int (*lookup_step)(void *ud, const char *name, char *why, size_t n);
    /* Called for each reference to a step (for output lifetimes). */
    void (*on_step_ref)(void *ud, int id);
    void *ud;
    const char **aliases; /* per loop depth, the `as` name or NULL */
    int nloops;
} tmpl_env;

/* Compiles v (borrowed). Errors go to env->d naming path. Returns NULL on
 * any error. */
tmpl *tmpl_compile(const json_t *v, tmpl_env *env, const char *path);
/* A constant template holding v (borrowed; a ref is taken). */
tmpl *tmpl_from_value(const json_t *v);
/* An empty object template. */
tmpl *tmpl_object_new(void);
/* Adds key -> child (stolen) to a template made by tmpl_object_new.
 * Returns 0 or -1. */
int tmpl_object_set(tmpl *t, const char *key, tmpl *child);
/* Nonzero if t is a single whole-value reference. */
int tmpl_is_whole_ref(const tmpl *t);

#endif
