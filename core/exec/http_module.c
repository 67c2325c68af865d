/*
 * The HTTP client for ferry-zygote, as a module (see flow/http_bind.h).
 * Linked into ferry-zygote only: its definitions stand in for the linked
 * client of core/flow/http_linked, so the executable maps neither libcurl
 * nor what libcurl links. flow_http_load() loads ferry-http.so, from beside
 * the executable (a build tree) or from FERRY_HTTP_MODULE_DIR (installed).
 */
#include "flow/http_bind.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FERRY_HTTP_MODULE_DIR
#define FERRY_HTTP_MODULE_DIR "/usr/local/lib/ferry"
#endif

static const httpc_module *mod;

int flow_http_ready(void) {
    return mod != NULL;
}

static int try_load(const char *path, char **err) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        free(*err);
        if (asprintf(err, "%s", e ? e : path) < 0)
            *err = NULL;
        return -1;
    }
    const httpc_module *m = dlsym(h, HTTPC_MODULE_SYMBOL);
    if (!m || m->call_size != sizeof(httpc_call)) {
        free(*err);
        if (asprintf(err, "%s: not a ferry-http module of this build", path) <
            0)
            *err = NULL;
        dlclose(h);
        return -1;
    }
    mod = m; /* never closed: workers call into it until they exit */
    mod->global_init();
    return 0;
}

int flow_http_load(char **err) {
    *err = NULL;
    if (mod)
        return 0;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        char path[PATH_MAX + 32];
        snprintf(path, sizeof(path), "%.*s/ferry-http.so",
                 slash ? (int)(slash - exe) : 0, exe);
        if (access(path, R_OK) == 0)
            return try_load(path, err);
    }
    return try_load(FERRY_HTTP_MODULE_DIR "/ferry-http.so", err);
}

void flow_http_init(void) {
    if (mod)
        mod->global_init();
}

int flow_http_request(const httpc_call *c, const json_t *req,
                      json_t **response) {
    return mod->request(c, req, response);
}
