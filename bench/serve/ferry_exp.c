/*
 * The ferry binary for "what if" runs of the serve benchmark: `ferry` itself
 * (cli_main), except that in its zygote role it can be changed, from the
 * environment, in the ways docs/bench.md proposes, so that their effect is
 * measured on a real host without changing the host:
 *
 *   SERVE_BENCH_ZYGOTE=mxfast0       mallopt(M_MXFAST, 0) before the zygote
 *                                    starts: no fastbins in its heap
 *   SERVE_BENCH_ZYGOTE=lean          the zygote is serve_zygote_lean, an
 *                                    executable linked with the engine's
 *                                    libraries only (exec'd in its place)
 *   SERVE_BENCH_ZYGOTE=lean,mxfast0  both
 *
 * Unset or empty: exactly `ferry`.
 */
#include "cli/cli.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SERVE_ZYGOTE_LEAN
#define SERVE_ZYGOTE_LEAN "serve_zygote_lean"
#endif

static int has(const char *list, const char *word) {
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

int main(int argc, char **argv) {
    const char *z = getenv("SERVE_BENCH_ZYGOTE");
    if (argc > 1 && !strcmp(argv[1], "zygote") && z && *z) {
        if (has(z, "lean")) {
            execv(SERVE_ZYGOTE_LEAN, argv);
            perror(SERVE_ZYGOTE_LEAN);
            return 127;
        }
        if (has(z, "mxfast0"))
            mallopt(M_MXFAST, 0);
    }
    return cli_main(argc, argv);
}
