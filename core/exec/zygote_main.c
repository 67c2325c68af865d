/* ferry-zygote: the zygote as an executable of its own, linked with only
 * what runs flows. Forking a process with fewer libraries mapped is
 * cheaper, for the zygote (copying its page tables) and for each worker
 * (tearing them down). `ferry serve` starts it; it is not run by hand. */
#include "exec/exec.h"

int main(int argc, char **argv) {
    return exec_zygote_cli(argc, argv);
}
