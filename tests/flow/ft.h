/*
 * Helpers shared by the flow tests: a temporary directory per test, JSON
 * written in C strings with single quotes (ft_q turns every ' into "), a
 * registry with the "tc" fixture component, and loading and running a
 * definition with the failures reported as cmocka failures.
 */
#ifndef FERRY_TESTS_FT_H
#define FERRY_TESTS_FT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "flow/flow.h"

#ifndef FT_COMPONENTS_DIR
#error "FT_COMPONENTS_DIR must name the directory holding tc.so"
#endif

typedef struct ft {
    char *dir; /* temporary, removed by ft_free */
    abi_registry reg;
    store *st; /* NULL unless ft_open_store */
    flow_integration *ig;
    flow_instance *in;
    flow_diags d;
    flow_result res;
    flow_exec_opts opts;
    json_t *logs; /* [{path, level, message}] from on_log */
    char *files[64];
    int nfiles;
    const void *data; /* the test's own (a table row, say) */
} ft;

/* A fresh fixture: temp dir, registry with core and tc. */
ft *ft_new(void);
void ft_free(ft *t);
/* Opens a SQLite store in the fixture's directory (db name given). */
store *ft_open_store(ft *t, const char *name);

/* Returns a malloc'd copy of s with every ' turned into ". */
char *ft_q(const char *s);
/* Parses single-quoted JSON (see ft_q); fails the test if invalid. */
json_t *ft_json(const char *sq);
/* Writes text (as is) to a file in the fixture's dir; returns its path,
 * owned by t. */
const char *ft_write_raw(ft *t, const char *name, const char *text);
/* Writes single-quoted JSON (see ft_q). */
const char *ft_write(ft *t, const char *name, const char *sq);

/* Loads integration text (and instance text, or NULL for the default
 * instance) into t->ig / t->in; fails the test printing every diag if
 * either does not load. */
void ft_load(ft *t, const char *integration_sq, const char *instance_sq);
/* Runs flow (NULL: the only one) with trigger (single-quoted JSON, or NULL
 * for null) and returns t->res.status. */
const char *ft_run(ft *t, const char *flow, const char *trigger_sq);

/* Fails unless got equals the single-quoted JSON want. */
#define ft_assert_json(got, want)                                              \
    ft_assert_json_at((got), (want), __FILE__, __LINE__)
void ft_assert_json_at(const json_t *got, const char *want_sq, const char *file,
                       int line);
/* Fails unless t->res succeeded with an output equal to want. */
#define ft_assert_output(t, want)                                              \
    ft_assert_output_at((t), (want), __FILE__, __LINE__)
void ft_assert_output_at(ft *t, const char *want_sq, const char *file,
                         int line);
/* Fails unless s contains sub. */
#define ft_assert_contains(s, sub)                                             \
    ft_assert_contains_at((s), (sub), __FILE__, __LINE__)
void ft_assert_contains_at(const char *s, const char *sub, const char *file,
                           int line);

#endif
