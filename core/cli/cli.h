/*
 * cli: the `ferry` command line. One function per command; each parses its
 * own options with getopt_long, prints --help, and returns the process exit
 * status: 0 success, 1 the execution failed, 2 a usage or definition error.
 * Commands print results on stdout and diagnostics on stderr.
 */
#ifndef FERRY_CORE_CLI_H
#define FERRY_CORE_CLI_H

#define CLI_OK 0
#define CLI_FAILED 1
#define CLI_USAGE 2

/* Dispatches argv[1] to a command. */
int cli_main(int argc, char **argv);

int cli_run(int argc, char **argv);        /* ferry run */
int cli_validate(int argc, char **argv);   /* ferry validate */
int cli_components(int argc, char **argv); /* ferry components list|describe */
int cli_executions(int argc, char **argv); /* ferry executions list|show */
int cli_serve(int argc, char **argv);      /* ferry serve */
int cli_zygote(int argc, char **argv);     /* ferry zygote (internal) */
int cli_deploy(int argc, char **argv);     /* ferry deploy */
int cli_instances(int argc, char **argv);  /* ferry instances list */
int cli_schedule(int argc, char **argv);   /* ferry schedule next */
int cli_secrets(int argc, char **argv);    /* ferry secrets ... */
int cli_dlq(int argc, char **argv);        /* ferry dlq ... */

/* The components directory: flag if non-NULL, else $FERRY_COMPONENTS_DIR,
 * else "build/components". Returns a borrowed string. */
const char *cli_components_dir(const char *flag);
/* Loads the core component and the .so files of the components directory
 * (see cli_components_dir) into r; refusals are printed on refusals_to
 * unless it is NULL. A default directory that does not exist only means
 * "no .so files"; one the user named must be readable. Returns 0, or prints
 * why not on stderr and returns -1 (r is then empty). */
#include "abi/abi.h"
#include <stdio.h>
int cli_load_registry(abi_registry *r, const char *flag, FILE *refusals_to);

/* The database path: flag if non-NULL, else $FERRY_DB, else "ferry.db". */
const char *cli_db_path(const char *flag);

#endif
