#include "th.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *th_tmpdir(void) {
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/ferry-host-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    return strdup(dir);
}

static int rm_cb(const char *path, const struct stat *sb, int flag,
                 struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void th_rmrf(char *path) {
    if (!path)
        return;
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

char *th_path(const char *dir, const char *name) {
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) >= 0);
    return p;
}

char *th_write(const char *dir, const char *name, const char *text) {
    char *p = th_path(dir, name);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    }
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static char *unquote(const char *sq) {
    char *c = strdup(sq);
    assert_non_null(c);
    for (char *p = c; *p; p++)
        if (*p == '\'')
            *p = '"';
    return c;
}

json_t *th_json(const char *sq) {
    char *text = unquote(sq);
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad test JSON (%s): %s", e.text, text);
    free(text);
    return v;
}

char *th_write_json(const char *dir, const char *name, const char *sq) {
    char *text = unquote(sq);
    char *p = th_write(dir, name, text);
    free(text);
    return p;
}

void th_registry(abi_registry *reg) {
    char *err = NULL;
    abi_registry_init(reg);
    if (abi_registry_add_builtin(reg, flow_core_component(), &err))
        fail_msg("core component: %s", err);
}

int th_has_diag(const flow_diags *d, const char *file, const char *path,
                const char *sub) {
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->items[i].file, file) &&
            !strcmp(d->items[i].path, path) && strstr(d->items[i].message, sub))
            return 1;
    return 0;
}

char *th_ls(const char *dir) {
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    char *s = strdup("");
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (strcmp(nm, ".") && strcmp(nm, "..")) {
            char *t = NULL;
            assert_true(asprintf(&t, "%s%s%s", s, *s ? " " : "", nm) >= 0);
            free(s);
            s = t;
        }
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    return s;
}

static char *slurp_fd(int fd) {
    lseek(fd, 0, SEEK_SET);
    size_t n = 0, cap = 4096;
    char *s = malloc(cap);
    ssize_t r;
    while ((r = read(fd, s + n, cap - n - 1)) > 0) {
        n += (size_t)r;
        if (cap - n < 2)
            s = realloc(s, cap *= 2);
    }
    s[n] = '\0';
    return s;
}

int th_capture(int (*fn)(int, char **), int argc, char **argv, char **out,
               char **err) {
    const char *tmp = getenv("TMPDIR");
    char tout[PATH_MAX], terr[PATH_MAX];
    snprintf(tout, sizeof(tout), "%s/ferry-host-out-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    snprintf(terr, sizeof(terr), "%s/ferry-host-err-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    int fo = mkstemp(tout), fe = mkstemp(terr);
    assert_true(fo >= 0 && fe >= 0);
    unlink(tout);
    unlink(terr);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    *out = slurp_fd(fo);
    *err = slurp_fd(fe);
    close(fo);
    close(fe);
    return rc;
}
