/*
 * Confinement of remote paths to a connection's root (sftppath.c).
 *
 * Pure functions over strings: no I/O, no ferry API, no libssh2, so the
 * unit tests and the fuzz target (tests/sftp) compile this file on its
 * own. Every path the sftp component sends to a server goes through
 * sftp_path_resolve (a path from a step or the host) or sftp_path_child (a
 * name from a directory listing).
 *
 * The rules are lexical. A resolved path is absolute, has no empty, "." or
 * ".." segment and no trailing '/', and is the root or below it. A ".."
 * segment is refused wherever it appears, even one that would stay inside
 * the root, so that what a step names is what is touched. Symbolic links
 * on the server are the server's business: they are followed by the
 * server, and a hard boundary is the server's own (ChrootDirectory).
 */
#ifndef FERRY_SFTP_SFTPPATH_H
#define FERRY_SFTP_SFTPPATH_H

#include <stddef.h>

/* The longest path handled, terminating NUL included. */
#define SFTP_PATH_MAX 4096

typedef enum sftp_path_err {
    SFTP_PATH_OK = 0,
    SFTP_PATH_EMPTY = -1,    /* "" */
    SFTP_PATH_NUL = -2,      /* a NUL byte inside */
    SFTP_PATH_DOTDOT = -3,   /* a ".." segment */
    SFTP_PATH_OUTSIDE = -4,  /* absolute and not under the root */
    SFTP_PATH_TOOLONG = -5,  /* the result would not fit */
    SFTP_PATH_BADNAME = -6,  /* a listed name that is not one segment */
    SFTP_PATH_RELATIVE = -7, /* a base that is not absolute */
} sftp_path_err;

/* A static description of err ("a '..' segment is not allowed"). */
const char *sftp_path_strerror(int err);

/*
 * Normalises an absolute path: "//" and "." segments collapse, a trailing
 * '/' goes ("/" stays "/"). path: len bytes, not NUL terminated. out: n
 * bytes. Refuses a relative path, "..", a NUL byte, and a result of n bytes
 * or more. Returns SFTP_PATH_OK or an sftp_path_err.
 */
int sftp_path_normalize(const char *path, size_t len, char *out, size_t n);

/*
 * Resolves path (len bytes) against root (a normalised absolute path, as
 * sftp_path_normalize gives): a relative path is taken from the root, an
 * absolute one must be the root or below it. The result, normalised, goes
 * to out (n bytes). Returns SFTP_PATH_OK or an sftp_path_err; out is
 * meaningful only on success.
 */
int sftp_path_resolve(const char *root, const char *path, size_t len, char *out,
                      size_t n);

/*
 * Joins dir (a resolved path) and name (len bytes), a name from a
 * directory listing, into out (n bytes). The name must be one segment: not
 * empty, not "." or "..", without '/' or NUL. Returns SFTP_PATH_OK or an
 * sftp_path_err (SFTP_PATH_BADNAME for a name that is not one segment).
 */
int sftp_path_child(const char *dir, const char *name, size_t len, char *out,
                    size_t n);

/* Nonzero if path (normalised) is base (normalised) or below it. */
int sftp_path_inside(const char *base, const char *path);

/*
 * The part of path below base, both normalised: "a/b.csv" for base "/in"
 * and path "/in/a/b.csv", "" when they are equal. Returns a pointer into
 * path, or NULL when path is not inside base.
 */
const char *sftp_path_relative(const char *base, const char *path);

/* The last segment of a normalised path (a pointer into it; "" for "/"). */
const char *sftp_path_name(const char *path);

/*
 * The parent of a normalised path into out (n bytes): "/a" for "/a/b", "/"
 * for "/a" and for "/". Returns SFTP_PATH_OK or SFTP_PATH_TOOLONG.
 */
int sftp_path_parent(const char *path, char *out, size_t n);

/*
 * Whether name (a file's name) or relative (its path below the listed
 * directory) matches glob, with fnmatch(3) rules: a glob without '/' is
 * matched against the name, one with '/' against the relative path (where
 * '*' does not cross '/'). Returns nonzero on a match.
 */
int sftp_path_glob(const char *glob, const char *name, const char *relative);

#endif
