#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const ferry_api *api;

static int take(ferry_ctx *ctx, const json_t *input) {
    return api->set_output(ctx, json_deep_copy(input));
}

static const ferry_input take_inputs[] = {{"s", "string", 1, NULL, NULL},
                                          {"i", "integer", 0, "3", NULL},
                                          {"n", "number", 0, NULL, NULL},
                                          {"b", "boolean", 0, "false", NULL},
                                          {"o", "object", 0, NULL, NULL},
                                          {"a", "array", 0, "[]", NULL},
                                          {"x", "any", 0, NULL, NULL},
                                          {"f", "blob", 0, NULL, NULL},
                                          {0}};

static const ferry_action fz_actions[] = {
    {"fz.take", "Take", NULL, take_inputs, "its input", take, 0}, {0}};

static const ferry_input login_fields[] = {{"user", "string", 1, NULL, NULL},
                                           {"port", "integer", 0, "22", NULL},
                                           {"tls", "boolean", 0, NULL, NULL},
                                           {0}};

static const ferry_connection_type fz_connections[] = {
    {"fz.login", "Login", NULL, "basic", login_fields}, {0}};

static const ferry_component fz_desc = {
    FERRY_COMPONENT_HEADER,
    .name = "fz",
    .version = "1.0.0",
    .actions = fz_actions,
    .connections = fz_connections,
};

static abi_registry reg;
static int reg_ready;
static int fds[2] = {-1, -1};
static char paths[2][64];

const abi_registry *fuzz_registry(void) {
    if (reg_ready)
        return &reg;
    char *reason = NULL;
    abi_registry_init(&reg);
    api = flow_host_api();
    if (abi_registry_add_builtin(&reg, flow_core_component(), &reason) ||
        abi_registry_add_builtin(&reg, &fz_desc, &reason)) {
        fprintf(stderr, "fuzz: registry: %s\n", reason ? reason : "?");
        abort();
    }
    reg_ready = 1;
    return &reg;
}

const char *fuzz_file(int slot, const uint8_t *data, size_t size) {
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("ferry-fuzz", MFD_CLOEXEC);
        if (fds[slot] < 0) {
            perror("fuzz: memfd_create");
            abort();
        }
        snprintf(paths[slot], sizeof(paths[slot]), "/proc/self/fd/%d",
                 fds[slot]);
    }
    if (ftruncate(fds[slot], 0) ||
        (size && pwrite(fds[slot], data, size, 0) != (ssize_t)size)) {
        perror("fuzz: writing the memory file");
        abort();
    }
    return paths[slot];
}

void fuzz_check_diags(const flow_diags *d, size_t before, int loaded) {
    /* Loaded if and only if nothing was reported. */
    if (loaded != (d->n == before))
        abort();
    for (size_t i = before; i < d->n; i++) {
        const flow_diag *g = &d->items[i];
        if (!g->file || !g->path || !g->message || !*g->path || !*g->message)
            abort();
    }
    /* Printed, one line each, whatever the keys hold. */
    char *text = NULL;
    size_t len = 0, lines = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        abort();
    flow_diags_print(d, f);
    fclose(f);
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    free(text);
    if (lines != d->n)
        abort();
}

void fuzz_common_cleanup(void) {
    if (reg_ready)
        abi_registry_free(&reg);
    reg_ready = 0;
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

int fuzz_verbose(void) {
    static int v = -1;
    if (v < 0)
        v = getenv("FERRY_FUZZ_VERBOSE") != NULL;
    return v;
}
