/*
 * Helpers shared by the host tests: a temporary directory per test, files
 * written from single-quoted JSON (every ' becomes "), a registry with the
 * core component only, and capturing what a command prints.
 */
#ifndef FERRY_TESTS_TH_H
#define FERRY_TESTS_TH_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "flow/flow.h"

/* A fresh temporary directory (malloc'd path). */
char *th_tmpdir(void);
/* Removes a directory tree and frees path. */
void th_rmrf(char *path);
/* Returns a malloc'd "dir/name". */
char *th_path(const char *dir, const char *name);
/* Writes text as is to dir/name (creating dir/ if needed); returns the
 * malloc'd path. */
char *th_write(const char *dir, const char *name, const char *text);
/* Parses single-quoted JSON; fails the test if invalid. New reference. */
json_t *th_json(const char *sq);
/* Writes single-quoted JSON to dir/name; returns the malloc'd path. */
char *th_write_json(const char *dir, const char *name, const char *sq);
/* The core component alone. */
void th_registry(abi_registry *reg);
/* Nonzero if some diag has this file, this exact path and sub in its
 * message. */
int th_has_diag(const flow_diags *d, const char *file, const char *path,
                const char *sub);
/* The directory's entry names, sorted, joined by ' '. Malloc'd. */
char *th_ls(const char *dir);

/* Runs fn(argc, argv) with stdout and stderr captured. Returns its result;
 * *out and *err (malloc'd, NUL terminated) hold what it printed. */
int th_capture(int (*fn)(int, char **), int argc, char **argv, char **out,
               char **err);

#endif
