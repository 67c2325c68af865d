/*
 * xmlbench: the benchmark's stand-in for a connector that downloads a
 * file (sftp.get, an HTTP GET): xmlbench.file streams a local file into a
 * blob, 64 KiB at a time, so that the flow after it reads a blob as it
 * would in production. Built like bench/engine's component: against the
 * SDK header only, never installed, in a directory of its own.
 */
#include <ferry/ferry.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const ferry_api *api;

static int file_run(ferry_ctx *ctx, const json_t *input) {
    const char *path = json_string_value(json_object_get(input, "path"));
    char buf[65536];
    size_t n;
    FILE *f = path ? fopen(path, "rb") : NULL;
    ferry_blob_writer *w;
    if (!f)
        return api->set_error(ctx, FERRY_ENOTFOUND, 0, "%s: %s",
                              path ? path : "(no path)", strerror(errno));
    w = api->blob_create(ctx, "application/xml");
    if (!w) {
        fclose(f);
        return api->set_error(ctx, FERRY_EIO, 1, "cannot create a blob");
    }
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (api->blob_write(w, buf, n)) {
            api->blob_abort(w);
            fclose(f);
            return api->set_error(ctx, FERRY_EIO, 1, "cannot write the blob");
        }
    }
    fclose(f);
    return api->set_output(ctx, api->blob_finish(w));
}

static const ferry_input file_inputs[] = {
    {"path", "string", 1, NULL, "the file to read"},
    {0},
};

static const ferry_action actions[] = {
    {.id = "xmlbench.file",
     .label = "File to blob",
     .description = "Streams a local file into a blob.",
     .inputs = file_inputs,
     .output = "a blob reference",
     .run = file_run},
    {0},
};

static const ferry_component desc = {
    FERRY_COMPONENT_HEADER, .name = "xmlbench",
    .version = "1.0.0",     .description = "The xml benchmark's file source",
    .actions = actions,
};

FERRY_EXPORT const ferry_component *
ferry_component_entry(const ferry_api *host) {
    api = host;
    return &desc;
}
