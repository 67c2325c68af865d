/*
 * Loading components into a registry: dlopen, the entry symbol, the version
 * checks, and the bookkeeping of what was loaded and what was refused.
 *
 * A component that cannot be used is refused, never fatal: the refusal is
 * recorded with its path and a one-line reason, the handle is closed and
 * loading goes on with the next file. The caller decides how to report the
 * refusals (abi_print_refusals is the usual way).
 */
#include "abi.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void abi_registry_init(abi_registry *r) {
    memset(r, 0, sizeof(*r));
}

void abi_registry_free(abi_registry *r) {
    /* Close in reverse load order, as a component loaded later may have
     * been handed pointers into an earlier one by the host. */
    for (size_t i = r->ncomponents; i-- > 0;) {
        if (r->components[i].handle != NULL)
            dlclose(r->components[i].handle);
        free(r->components[i].path);
    }
    free(r->components);
    for (size_t i = 0; i < r->nrefused; i++) {
        free(r->refused[i].path);
        free(r->refused[i].reason);
    }
    free(r->refused);
    memset(r, 0, sizeof(*r));
}

/* Reasons quote strings taken from the component and from dlerror; keep
 * them to one printable line whatever those contain. */
static void one_line(char *s) {
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

static char *vformat(const char *fmt, va_list ap) {
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    one_line(s);
    return s;
}

static int refuse(abi_registry *r, const char *path, int code, const char *fmt,
                  ...) FERRY_PRINTF(4, 5);
static int refuse(abi_registry *r, const char *path, int code, const char *fmt,
                  ...) {
    abi_refusal *grown =
        realloc(r->refused, (r->nrefused + 1) * sizeof(*r->refused));
    if (grown == NULL)
        return FERRY_ENOMEM;
    r->refused = grown;
    va_list ap;
    va_start(ap, fmt);
    char *reason = vformat(fmt, ap);
    va_end(ap);
    char *p = strdup(path);
    if (reason == NULL || p == NULL) {
        free(reason);
        free(p);
        return FERRY_ENOMEM;
    }
    r->refused[r->nrefused].path = p;
    r->refused[r->nrefused].reason = reason;
    r->nrefused++;
    return code;
}

/* Appends a checked component. path: borrowed, copied; NULL for built-ins.
 * handle: owned by r from here on when this returns FERRY_OK. */
static int append(abi_registry *r, const char *path, void *handle,
                  const ferry_component *desc) {
    abi_component *grown =
        realloc(r->components, (r->ncomponents + 1) * sizeof(*r->components));
    if (grown == NULL)
        return FERRY_ENOMEM;
    r->components = grown;
    char *p = NULL;
    if (path != NULL && (p = strdup(path)) == NULL)
        return FERRY_ENOMEM;
    r->components[r->ncomponents].path = p;
    r->components[r->ncomponents].handle = handle;
    r->components[r->ncomponents].desc = desc;
    r->ncomponents++;
    return FERRY_OK;
}

static const char *where(const abi_component *c) {
    return c->path != NULL ? c->path : "built-in";
}

int abi_registry_add_builtin(abi_registry *r, const ferry_component *desc,
                             char **reason) {
    char buf[512];
    *reason = NULL;
    if (abi_validate_description(desc, buf, sizeof(buf)) != FERRY_OK) {
        *reason = strdup(buf);
        return FERRY_EINVAL;
    }
    const abi_component *prev = abi_find_component(r, desc->name);
    if (prev != NULL) {
        if (asprintf(reason, "component '%s' already loaded from %s",
                     desc->name, where(prev)) < 0)
            *reason = NULL;
        return FERRY_EINVAL;
    }
    int rc = append(r, NULL, NULL, desc);
    if (rc != FERRY_OK)
        *reason = strdup(ferry_strerror(rc));
    return rc;
}

/* Everything after dlopen: returns FERRY_OK with the component appended, or
 * a refusal code with the refusal recorded. The caller closes the handle
 * on failure. */
static int check_and_add(abi_registry *r, const char *path, void *handle,
                         const ferry_api *api) {
    /* dlsym returns void *; POSIX guarantees the conversion works. */
    ferry_entry_fn entry = (ferry_entry_fn)dlsym(handle, FERRY_ENTRY_SYMBOL);
    if (entry == NULL)
        return refuse(r, path, FERRY_EABI, "no entry symbol '%s'",
                      FERRY_ENTRY_SYMBOL);

    const ferry_component *d = entry(api);
    if (d == NULL)
        return refuse(r, path, FERRY_EABI,
                      "entry function returned NULL (the component declined "
                      "to load)");

    if (d->abi_major != api->abi_major)
        return refuse(r, path, FERRY_EABI,
                      "built for ABI %u.%u, host has ABI %u.%u (major "
                      "versions differ)",
                      (unsigned)d->abi_major, (unsigned)d->abi_minor,
                      (unsigned)api->abi_major, (unsigned)api->abi_minor);
    if (d->abi_minor > api->abi_minor)
        return refuse(r, path, FERRY_EABI,
                      "built for ABI %u.%u, host has ABI %u.%u (the "
                      "component needs a newer host)",
                      (unsigned)d->abi_major, (unsigned)d->abi_minor,
                      (unsigned)api->abi_major, (unsigned)api->abi_minor);
    if (d->jansson_major != JANSSON_MAJOR_VERSION)
        return refuse(r, path, FERRY_EABI,
                      "built against jansson %u, host has jansson %d",
                      (unsigned)d->jansson_major, JANSSON_MAJOR_VERSION);

    char buf[512];
    if (abi_validate_description(d, buf, sizeof(buf)) != FERRY_OK)
        return refuse(r, path, FERRY_EINVAL, "invalid description: %s", buf);

    const abi_component *prev = abi_find_component(r, d->name);
    if (prev != NULL)
        return refuse(r, path, FERRY_EEXISTS,
                      "component '%s' already loaded from %s", d->name,
                      where(prev));

    int rc = append(r, path, handle, d);
    if (rc != FERRY_OK)
        return refuse(r, path, rc, "%s", ferry_strerror(rc));
    return FERRY_OK;
}

int abi_load_file(abi_registry *r, const char *path, const ferry_api *api) {
    if (api == NULL)
        return refuse(r, path, FERRY_EINVAL, "no host function table");

    /* A name without a slash would make dlopen search the library path
     * instead of opening the file the caller named. */
    char *rel = NULL;
    const char *open_path = path;
    if (strchr(path, '/') == NULL) {
        if (asprintf(&rel, "./%s", path) < 0)
            return refuse(r, path, FERRY_ENOMEM, "out of memory");
        open_path = rel;
    }
    dlerror();
    void *handle = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
    free(rel);
    if (handle == NULL) {
        const char *e = dlerror();
        return refuse(r, path, FERRY_EIO, "%s",
                      e != NULL ? e : "dlopen failed");
    }
    int rc = check_and_add(r, path, handle, api);
    if (rc != FERRY_OK)
        dlclose(handle);
    return rc;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with_so(const char *name) {
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".so") == 0;
}

int abi_load_dir(abi_registry *r, const char *dir, const ferry_api *api,
                 char **err) {
    *err = NULL;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (asprintf(err, "cannot read components directory '%s': %s", dir,
                     strerror(errno)) < 0)
            *err = NULL;
        return FERRY_EIO;
    }
    char **paths = NULL;
    size_t n = 0, cap = 0;
    int rc = FERRY_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        /* Dot files are editor and tool leftovers, not components. */
        if (e->d_name[0] == '.' || !ends_with_so(e->d_name))
            continue;
        char *p;
        if (asprintf(&p, "%s/%s", dir, e->d_name) < 0) {
            rc = FERRY_ENOMEM;
            break;
        }
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(p);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **grown = realloc(paths, ncap * sizeof(*paths));
            if (grown == NULL) {
                free(p);
                rc = FERRY_ENOMEM;
                break;
            }
            paths = grown;
            cap = ncap;
        }
        paths[n++] = p;
    }
    closedir(d);

    int loaded = 0;
    if (rc == FERRY_OK) {
        if (n)
            qsort(paths, n, sizeof(*paths), by_name);
        for (size_t i = 0; i < n; i++)
            if (abi_load_file(r, paths[i], api) == FERRY_OK)
                loaded++;
    } else {
        *err = strdup("out of memory reading the components directory");
    }
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    return rc == FERRY_OK ? loaded : rc;
}

void abi_print_refusals(const abi_registry *r, FILE *f) {
    for (size_t i = 0; i < r->nrefused; i++)
        fprintf(f, "ferry: refused %s: %s\n", r->refused[i].path,
                r->refused[i].reason);
}
