/*
 * Fuzz target for the sftp component's path confinement
 * (components/sftp/sftppath.c).
 *
 * The input is "ROOT\nPATH": ROOT is normalised (an input whose ROOT is
 * refused uses "/srv/r" instead), PATH is resolved against it and also
 * joined to it as a listed name; with no '\n' the whole input is PATH.
 *
 * It checks that:
 *   - a resolved path is absolute, normalised (no empty, "." or ".."
 *     segment, no trailing '/'), inside the root, resolves to itself
 *     again, and the root joined with its relative part gives it back;
 *   - a path with a ".." segment or a NUL byte is always refused, and an
 *     absolute path is refused as outside exactly when its normalised
 *     form is not under the root;
 *   - a listed name is joined only when it is one segment, and then gives
 *     dir + "/" + name, inside dir, whose parent is dir and whose name is
 *     the name;
 *   - a result that does not fit is refused, never truncated (resolving
 *     into a buffer one byte short of the result fails).
 */
#include "fuzz.h"
#include "sftppath.h"

#include <stdlib.h>
#include <string.h>

static void check(int cond) {
    if (!cond)
        abort();
}

/* Whether path (len bytes) has a ".." segment, by a second reading. */
static int has_dotdot(const char *p, size_t len) {
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || p[i] == '/') {
            if (i - start == 2 && p[start] == '.' && p[start + 1] == '.')
                return 1;
            start = i + 1;
        }
    }
    return 0;
}

static void check_normalised(const char *s) {
    size_t n = strlen(s);
    check(n > 0 && s[0] == '/' && n < SFTP_PATH_MAX);
    check(n == 1 || s[n - 1] != '/');
    check(!strstr(s, "//") && !strstr(s, "/./") && !strstr(s, "/../"));
    check(!(n >= 2 && !strcmp(s + n - 2, "/.")));
    check(!(n >= 3 && !strcmp(s + n - 3, "/..")));
}

static void check_resolve(const char *root, const char *path, size_t len) {
    static char out[SFTP_PATH_MAX], again[SFTP_PATH_MAX], norm[SFTP_PATH_MAX];
    int rc = sftp_path_resolve(root, path, len, out, sizeof(out));
    int nul = memchr(path, '\0', len) != NULL;
    if (len == 0)
        check(rc == SFTP_PATH_EMPTY);
    if (nul)
        check(rc == SFTP_PATH_NUL);
    if (!nul && has_dotdot(path, len))
        check(rc == SFTP_PATH_DOTDOT);
    if (len && !nul && path[0] == '/' && rc != SFTP_PATH_DOTDOT) {
        int nr = sftp_path_normalize(path, len, norm, sizeof(norm));
        if (nr == SFTP_PATH_OK)
            check(rc == (sftp_path_inside(root, norm) ? SFTP_PATH_OK
                                                      : SFTP_PATH_OUTSIDE));
        else
            check(rc == nr);
    }
    if (rc != SFTP_PATH_OK)
        return;

    check_normalised(out);
    check(sftp_path_inside(root, out));
    size_t n = strlen(out);
    check(sftp_path_resolve(root, out, n, again, sizeof(again)) == 0);
    check(!strcmp(again, out));
    /* Refused, not truncated, one byte short. */
    check(sftp_path_resolve(root, path, len, again, n) == SFTP_PATH_TOOLONG);

    const char *rel = sftp_path_relative(root, out);
    check(rel != NULL);
    if (*rel) {
        check(sftp_path_resolve(root, rel, strlen(rel), again, sizeof(again)) ==
              0);
        check(!strcmp(again, out));
    } else {
        check(!strcmp(out, root));
    }
    char parent[SFTP_PATH_MAX];
    check(sftp_path_parent(out, parent, sizeof(parent)) == 0);
    check_normalised(parent);
    check(sftp_path_inside(parent, out));
}

static void check_child(const char *dir, const char *name, size_t len) {
    static char out[SFTP_PATH_MAX];
    int rc = sftp_path_child(dir, name, len, out, sizeof(out));
    int one_segment = len > 0 && !memchr(name, '/', len) &&
                      !(len == 1 && name[0] == '.') &&
                      !(len == 2 && name[0] == '.' && name[1] == '.');
    if (!one_segment) {
        check(rc == SFTP_PATH_BADNAME);
        return;
    }
    if (memchr(name, '\0', len)) {
        check(rc == SFTP_PATH_NUL);
        return;
    }
    size_t dl = strcmp(dir, "/") ? strlen(dir) : 0;
    if (dl + 1 + len + 1 > sizeof(out)) {
        check(rc == SFTP_PATH_TOOLONG);
        return;
    }
    check(rc == SFTP_PATH_OK);
    check_normalised(out);
    check(!memcmp(out, dir, dl) && out[dl] == '/' &&
          !memcmp(out + dl + 1, name, len) && out[dl + 1 + len] == '\0');
    check(sftp_path_inside(dir, out));
    check(!strcmp(sftp_path_name(out), out + dl + 1));
    char parent[SFTP_PATH_MAX];
    check(sftp_path_parent(out, parent, sizeof(parent)) == 0);
    check(!strcmp(parent, dir));
    const char *rel = sftp_path_relative(dir, out);
    check(rel && strlen(rel) == len && !memcmp(rel, name, len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char root[SFTP_PATH_MAX];
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    const char *path = in;
    size_t len = size;
    strcpy(root, "/srv/r");
    if (nl) {
        size_t rl = (size_t)(nl - in);
        if (sftp_path_normalize(in, rl, root, sizeof(root)) != SFTP_PATH_OK)
            strcpy(root, "/srv/r");
        else
            check_normalised(root);
        path = nl + 1;
        len = size - rl - 1;
    }
    check_resolve(root, path, len);
    check_child(root, path, len);
    /* Matching never touches anything but its strings. */
    if (len < 256 && !memchr(path, '\0', len)) {
        char g[256];
        memcpy(g, path, len);
        g[len] = '\0';
        (void)sftp_path_glob(g, "a.csv", "sub/a.csv");
    }
    return 0;
}

void fuzz_target_cleanup(void) {}
