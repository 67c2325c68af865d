/*
 * What the sftp component's files share: the session (session.c),
 * errors (errors.c), shared operations (ops.c), the actions (actions.c,
 * transfer.c) and the poll trigger (poll.c). Nothing
 * here is exported from sftp.so; only the entry function in sftp.c is.
 *
 * Threads: everything runs on the worker's one thread. The session cache
 * is static state of the worker process, which runs one execution, so a
 * session lives for one execution at most.
 *
 * Results: the helpers below return 0, a libssh2 error (negative, a
 * transport failure: the connection dropped, a timeout), or an SFTP status
 * encoded with SFTP_RC_STATUS. sftp_fail turns any of them into the
 * step's error.
 */
#ifndef FERRY_SFTP_INTERNAL_H
#define FERRY_SFTP_INTERNAL_H

#include "sftppath.h"

#include <ferry/ferry.h>

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef FERRY_TRIGGER_FILES
/* A file-listing poll trigger: the host applies the file options
 * (include, exclude, min_age, read lock, max_per_poll, sort_by, disposal)
 * and hands the disposals back to the poll in "dispose". */
#define FERRY_TRIGGER_FILES 0x2u
#endif

/* An SFTP status (LIBSSH2_FX_*) as a helper's result, and back. */
#define SFTP_RC_BASE (-10000)
#define SFTP_RC_STATUS(st) (SFTP_RC_BASE - (int)((st) > 9999 ? 9999 : (st)))
#define SFTP_RC_IS_STATUS(rc) ((rc) <= SFTP_RC_BASE && (rc) > SFTP_RC_RECORDED)
#define SFTP_RC_TO_STATUS(rc) ((unsigned long)(SFTP_RC_BASE - (rc)))

/* A helper result meaning "an error is recorded already; its code is in
 * call->recorded". */
#define SFTP_RC_RECORDED (-20000)

/* Bytes read or written per libssh2 call in a transfer. */
#define SFTP_CHUNK (1024 * 1024)

/* The host's table; set once by the entry function, borrowed. */
extern const ferry_api *sftp_api;

/* One SSH session with its SFTP channel, cached per worker process. */
typedef struct sftp_conn sftp_conn;

/* What one action or poll works with. */
typedef struct sftp_call {
    ferry_ctx *ctx;
    const char *what; /* "sftp.get": the start of every error message */
    sftp_conn *conn;  /* borrowed from the cache */
    LIBSSH2_SESSION *ssh;
    LIBSSH2_SFTP *sftp;
    char root[SFTP_PATH_MAX];   /* the connection's root, normalised */
    char failed[SFTP_PATH_MAX]; /* the directory that failed (sftp_mkdirs,
                                   sftp_walk) */
    int recorded;               /* see SFTP_RC_RECORDED */
} sftp_call;

/*
 * Opens (or reuses) the session for the step's connection and fills in
 * call. what: static, the action id. Returns FERRY_OK, or an error already
 * recorded with set_error (configuration errors, host key refusals and
 * authentication failures are not retryable; network ones are).
 */
int sftp_call_open(ferry_ctx *ctx, const char *what, sftp_call *call);

/*
 * Resolves a path input (a JSON string; name is the input's name for the
 * message) into out (SFTP_PATH_MAX bytes) inside the root. A path that is
 * not a string, holds ".." or is outside the root is refused with
 * FERRY_EPERM (or FERRY_EINVAL), not retryable.
 */
int sftp_resolve(sftp_call *call, const json_t *v, const char *name, char *out);

/*
 * Records the failure of op ("opening", "renaming") on path (and path2,
 * NULL if none) after a helper returned rc: an SFTP status becomes its
 * FERRY_E* code with the status named; a transport error is retryable and
 * retires the session. Returns the FERRY_E* code.
 */
int sftp_fail(sftp_call *call, int rc, const char *op, const char *path,
              const char *path2);

/* A libssh2 result (rc of the last call) as a helper's result: an SFTP
 * status is read from the channel. */
int sftp_rc(sftp_call *call, int rc);

/* The result of the last libssh2 call that returned a NULL handle. */
int sftp_last_rc(sftp_call *call);

/* libssh2's message for the session's last error (borrowed from the
 * session; never NULL). */
const char *sftp_ssh_message(LIBSSH2_SESSION *s);

/* The short description of an SFTP status ("no such file"). */
const char *sftp_status_text(unsigned long status);

/* Marks the call's session unusable (it is dropped at the next call). */
void sftp_conn_retire(sftp_call *call);

/*
 * Renames from to to. replace: 0 never replaces an existing target (SFTP
 * rename, which OpenSSH does with link(2) and unlink(2)); 1 replaces it
 * atomically with posix-rename@openssh.com, or where the server lacks it,
 * by moving the old target aside first. Returns a helper result.
 */
int sftp_rename(sftp_call *call, const char *from, const char *to, int replace);

/*
 * Creates path (inside the root) and its missing parents, from the root
 * down, each with mode. *created (may be NULL) says whether path itself
 * was created. Returns 0, or a helper result with call->failed naming the
 * directory that could not be created.
 */
int sftp_mkdirs(sftp_call *call, const char *path, long mode, int *created);

/* Attributes of path: lstat when nofollow. Returns a helper result. */
int sftp_stat(sftp_call *call, const char *path, int nofollow,
              LIBSSH2_SFTP_ATTRIBUTES *attrs);

/* Milliseconds of the monotonic clock. */
uint64_t sftp_now_ms(void);

/* A random hexadecimal string of 2*bytes characters into out (2*bytes+1
 * bytes). */
void sftp_random_hex(char *out, size_t bytes);

/*
 * Walks directory dir (resolved): cb is called for each entry, with its
 * path, its path relative to dir, its name and its attributes (lstat: a
 * symbolic link is reported as one and never followed). Directories are
 * descended when recursive, up to SFTP_WALK_DEPTH levels; with skip_hidden
 * names starting with '.' are neither reported nor descended. A name that
 * is not one path segment is skipped with a warning. cb returns 0 to go
 * on, 1 to stop the walk (which then returns 0), or a FERRY_E* code it
 * recorded with set_error: the walk then returns SFTP_RC_RECORDED with the
 * code in call->recorded (sftp_fail passes it on). A directory that cannot be
 * read fails the walk (a helper result, call->failed naming it), except below
 * dir with skip_unreadable, where it is logged and skipped.
 */
#define SFTP_WALK_DEPTH 32
typedef struct sftp_walk_opts {
    int recursive;
    int skip_hidden;
    int skip_unreadable;
} sftp_walk_opts;
typedef int (*sftp_walk_cb)(void *ud, const char *path, const char *relative,
                            const char *name,
                            const LIBSSH2_SFTP_ATTRIBUTES *attrs);
int sftp_walk(sftp_call *call, const char *dir, const sftp_walk_opts *o,
              sftp_walk_cb cb, void *ud);

/* The actions and the trigger (actions.c, transfer.c, poll.c). */
int sftp_action_list(ferry_ctx *ctx, const json_t *input);
int sftp_action_stat(ferry_ctx *ctx, const json_t *input);
int sftp_action_get(ferry_ctx *ctx, const json_t *input);
int sftp_action_put(ferry_ctx *ctx, const json_t *input);
int sftp_action_move(ferry_ctx *ctx, const json_t *input);
int sftp_action_delete(ferry_ctx *ctx, const json_t *input);
int sftp_action_mkdir(ferry_ctx *ctx, const json_t *input);
int sftp_poll_new_files(ferry_ctx *ctx, const json_t *input);

/* "2027-03-14T06:59:58Z" for t seconds since the epoch into out. */
void sftp_iso8601(uint64_t t, char *out, size_t n);

/* An entry's JSON as sftp.list and sftp.stat give it. relative may be
 * NULL (left out). Returns a new ref. */
json_t *sftp_entry_json(const char *path, const char *relative,
                        const LIBSSH2_SFTP_ATTRIBUTES *a);

/* The input's boolean, or dflt. */
int sftp_input_bool(const json_t *input, const char *key, int dflt);

/* A mode from an input: an octal string ("0644", "755") or an integer;
 * dflt when absent. Returns 0, or -1 (not recorded) when invalid. */
int sftp_input_mode(const json_t *input, const char *key, long dflt, long *out);

#endif
