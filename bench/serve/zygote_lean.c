/*
 * A zygote executable of its own, for the serve benchmark's "what if" runs
 * (see ferry_exp.c): `ferry zygote` without the rest of ferry, linked as
 * ferry-zygote is (ferry_exec, ferry_flow, ferry_zygote_http), so that it
 * maps libjq, jansson and SQLite but not libcurl, h2o, libuv and what they
 * pull in.
 *
 * usage (as the host starts a zygote): serve_zygote_lean zygote
 *        --components-dir DIR --fd N
 * SERVE_BENCH_ZYGOTE containing "mxfast0": mallopt(M_MXFAST, 0) first.
 */
#include "exec/exec.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *dir = NULL;
    int fd = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--components-dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--fd") && i + 1 < argc)
            fd = atoi(argv[++i]);
    }
    if (!dir || fd < 0) {
        fprintf(stderr, "serve_zygote_lean is started by the host\n");
        return 2;
    }
    const char *z = getenv("SERVE_BENCH_ZYGOTE");
    if (z && strstr(z, "mxfast0"))
        mallopt(M_MXFAST, 0);
    return exec_zygote_main(fd, dir);
}
