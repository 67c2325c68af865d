/*
 * Shared by the fuzz targets and the replay driver. A target defines
 * LLVMFuzzerTestOneInput and fuzz_target_cleanup; it is linked either with
 * libFuzzer (FERRY_FUZZ builds) or with replay.c, which feeds it files.
 */
#ifndef FERRY_TESTS_FUZZ_H
#define FERRY_TESTS_FUZZ_H

#include "flow/flow.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Frees what the target keeps between inputs (for leak checks). */
void fuzz_target_cleanup(void);

/* The registry the targets load against: core, plus "fz", a built-in
 * fixture with a connection type and an action taking every input type.
 * Made on first use, kept until fuzz_common_cleanup. */
const abi_registry *fuzz_registry(void);
/* Puts data in memory file slot (0 or 1) and returns a path that opens
 * it; nothing touches the disk. */
const char *fuzz_file(int slot, const uint8_t *data, size_t size);
/* Aborts if d is not a well-formed list of n_new diags after before. */
void fuzz_check_diags(const flow_diags *d, size_t before, int loaded);
void fuzz_common_cleanup(void);
/* Nonzero if FERRY_FUZZ_VERBOSE is set: the targets then print their
 * diags, to see what a corpus file exercises. */
int fuzz_verbose(void);

#endif
