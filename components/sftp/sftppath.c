/*
 * Confinement of remote paths to a connection's root: see sftppath.h.
 */
#include "sftppath.h"

#include <fnmatch.h>
#include <string.h>

const char *sftp_path_strerror(int err) {
    switch (err) {
    case SFTP_PATH_OK:
        return "ok";
    case SFTP_PATH_EMPTY:
        return "the path is empty";
    case SFTP_PATH_NUL:
        return "the path holds a NUL byte";
    case SFTP_PATH_DOTDOT:
        return "a '..' segment is not allowed";
    case SFTP_PATH_OUTSIDE:
        return "the path is outside the connection's root";
    case SFTP_PATH_TOOLONG:
        return "the path is too long";
    case SFTP_PATH_BADNAME:
        return "the name is not a single path segment";
    case SFTP_PATH_RELATIVE:
        return "the path is not absolute";
    default:
        return "invalid path";
    }
}

/*
 * Appends the segments of path (len bytes) to out, which holds *pos bytes
 * of a normalised path ("" counts as the root): empty and "." segments are
 * dropped, ".." is refused. out stays NUL terminated.
 */
static int append_segments(char *out, size_t *pos, size_t n, const char *path,
                           size_t len) {
    size_t i = 0;
    while (i < len) {
        while (i < len && path[i] == '/')
            i++;
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        size_t seg = i - start;
        if (seg == 0 || (seg == 1 && path[start] == '.'))
            continue;
        if (seg == 2 && path[start] == '.' && path[start + 1] == '.')
            return SFTP_PATH_DOTDOT;
        /* '/', the segment and the NUL must fit. */
        if (*pos + 1 + seg + 1 > n)
            return SFTP_PATH_TOOLONG;
        out[(*pos)++] = '/';
        memcpy(out + *pos, path + start, seg);
        *pos += seg;
        out[*pos] = '\0';
    }
    return SFTP_PATH_OK;
}

/* The checks every path from outside gets first, whatever its length: a
 * ".." is reported as such even in a path too long to resolve. */
static int check_bytes(const char *path, size_t len) {
    if (len == 0)
        return SFTP_PATH_EMPTY;
    if (memchr(path, '\0', len))
        return SFTP_PATH_NUL;
    for (size_t i = 0; i + 1 < len; i++)
        if (path[i] == '.' && path[i + 1] == '.' &&
            (i == 0 || path[i - 1] == '/') &&
            (i + 2 == len || path[i + 2] == '/'))
            return SFTP_PATH_DOTDOT;
    return SFTP_PATH_OK;
}

/* An empty result of append_segments is the root "/". */
static int finish_root(char *out, size_t pos, size_t n) {
    if (pos > 0)
        return SFTP_PATH_OK;
    if (n < 2)
        return SFTP_PATH_TOOLONG;
    out[0] = '/';
    out[1] = '\0';
    return SFTP_PATH_OK;
}

int sftp_path_normalize(const char *path, size_t len, char *out, size_t n) {
    size_t pos = 0;
    int rc = check_bytes(path, len);
    if (rc)
        return rc;
    if (path[0] != '/')
        return SFTP_PATH_RELATIVE;
    if (n == 0)
        return SFTP_PATH_TOOLONG;
    out[0] = '\0';
    if ((rc = append_segments(out, &pos, n, path, len)))
        return rc;
    return finish_root(out, pos, n);
}

int sftp_path_inside(const char *base, const char *path) {
    size_t bl = strlen(base);
    if (bl == 1 && base[0] == '/')
        return path[0] == '/';
    return strncmp(base, path, bl) == 0 &&
           (path[bl] == '\0' || path[bl] == '/');
}

int sftp_path_resolve(const char *root, const char *path, size_t len, char *out,
                      size_t n) {
    int rc = check_bytes(path, len);
    if (rc)
        return rc;
    if (root[0] != '/')
        return SFTP_PATH_RELATIVE;
    if (path[0] == '/') {
        if ((rc = sftp_path_normalize(path, len, out, n)))
            return rc;
        return sftp_path_inside(root, out) ? SFTP_PATH_OK : SFTP_PATH_OUTSIDE;
    }
    /* The root "/" starts from "", so that no "//" appears. */
    size_t pos = strcmp(root, "/") ? strlen(root) : 0;
    if (pos + 1 > n)
        return SFTP_PATH_TOOLONG;
    memcpy(out, root, pos);
    out[pos] = '\0';
    if ((rc = append_segments(out, &pos, n, path, len)))
        return rc;
    return finish_root(out, pos, n);
}

int sftp_path_child(const char *dir, const char *name, size_t len, char *out,
                    size_t n) {
    if (len == 0 || (len == 1 && name[0] == '.') ||
        (len == 2 && name[0] == '.' && name[1] == '.') ||
        memchr(name, '/', len))
        return SFTP_PATH_BADNAME;
    if (memchr(name, '\0', len))
        return SFTP_PATH_NUL;
    size_t dl = strcmp(dir, "/") ? strlen(dir) : 0;
    if (dl + 1 + len + 1 > n)
        return SFTP_PATH_TOOLONG;
    memcpy(out, dir, dl);
    out[dl] = '/';
    memcpy(out + dl + 1, name, len);
    out[dl + 1 + len] = '\0';
    return SFTP_PATH_OK;
}

const char *sftp_path_relative(const char *base, const char *path) {
    if (!sftp_path_inside(base, path))
        return NULL;
    size_t bl = strlen(base);
    if (bl == 1)
        return path + 1;
    return path[bl] ? path + bl + 1 : path + bl;
}

const char *sftp_path_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int sftp_path_parent(const char *path, char *out, size_t n) {
    const char *slash = strrchr(path, '/');
    size_t len = slash && slash != path ? (size_t)(slash - path) : 1;
    if (len + 1 > n)
        return SFTP_PATH_TOOLONG;
    if (len == 1 && (!slash || slash == path))
        out[0] = '/';
    else
        memcpy(out, path, len);
    out[len] = '\0';
    return SFTP_PATH_OK;
}

int sftp_path_glob(const char *glob, const char *name, const char *relative) {
    if (strchr(glob, '/'))
        return fnmatch(glob, relative, FNM_PATHNAME) == 0;
    return fnmatch(glob, name, 0) == 0;
}
