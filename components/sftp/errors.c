/*
 * The sftp component's errors: SFTP statuses and libssh2 failures turned
 * into the step's error (code, message naming the operation, the path and
 * the status, whether trying again may help), and paths refused by the
 * confinement to the connection's root.
 */
#include "sftp_internal.h"

#include <stdio.h>
#include <string.h>

const char *sftp_status_text(unsigned long status) {
    switch (status) {
    case LIBSSH2_FX_OK:
        return "ok (SSH_FX_OK)";
    case LIBSSH2_FX_EOF:
        return "end of file (SSH_FX_EOF)";
    case LIBSSH2_FX_NO_SUCH_FILE:
        return "no such file (SSH_FX_NO_SUCH_FILE)";
    case LIBSSH2_FX_PERMISSION_DENIED:
        return "permission denied (SSH_FX_PERMISSION_DENIED)";
    case LIBSSH2_FX_FAILURE:
        return "failure (SSH_FX_FAILURE)";
    case LIBSSH2_FX_BAD_MESSAGE:
        return "bad message (SSH_FX_BAD_MESSAGE)";
    case LIBSSH2_FX_NO_CONNECTION:
        return "no connection (SSH_FX_NO_CONNECTION)";
    case LIBSSH2_FX_CONNECTION_LOST:
        return "connection lost (SSH_FX_CONNECTION_LOST)";
    case LIBSSH2_FX_OP_UNSUPPORTED:
        return "operation not supported (SSH_FX_OP_UNSUPPORTED)";
    case LIBSSH2_FX_INVALID_HANDLE:
        return "invalid handle (SSH_FX_INVALID_HANDLE)";
    case LIBSSH2_FX_NO_SUCH_PATH:
        return "no such path (SSH_FX_NO_SUCH_PATH)";
    case LIBSSH2_FX_FILE_ALREADY_EXISTS:
        return "file already exists (SSH_FX_FILE_ALREADY_EXISTS)";
    case LIBSSH2_FX_WRITE_PROTECT:
        return "write protected (SSH_FX_WRITE_PROTECT)";
    case LIBSSH2_FX_NO_MEDIA:
        return "no media (SSH_FX_NO_MEDIA)";
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
        return "no space left (SSH_FX_NO_SPACE_ON_FILESYSTEM)";
    case LIBSSH2_FX_QUOTA_EXCEEDED:
        return "quota exceeded (SSH_FX_QUOTA_EXCEEDED)";
    case LIBSSH2_FX_UNKNOWN_PRINCIPAL:
        return "unknown principal (SSH_FX_UNKNOWN_PRINCIPAL)";
    case LIBSSH2_FX_LOCK_CONFLICT:
        return "lock conflict (SSH_FX_LOCK_CONFLICT)";
    case LIBSSH2_FX_DIR_NOT_EMPTY:
        return "directory not empty (SSH_FX_DIR_NOT_EMPTY)";
    case LIBSSH2_FX_NOT_A_DIRECTORY:
        return "not a directory (SSH_FX_NOT_A_DIRECTORY)";
    case LIBSSH2_FX_INVALID_FILENAME:
        return "invalid file name (SSH_FX_INVALID_FILENAME)";
    case LIBSSH2_FX_LINK_LOOP:
        return "too many symbolic links (SSH_FX_LINK_LOOP)";
    default:
        return "unknown SFTP status";
    }
}

/* The FERRY_E* code of an SFTP status, and whether it may pass. */
static int status_code(unsigned long st, int *retryable) {
    *retryable = 0;
    switch (st) {
    case LIBSSH2_FX_NO_SUCH_FILE:
    case LIBSSH2_FX_NO_SUCH_PATH:
        return FERRY_ENOTFOUND;
    case LIBSSH2_FX_PERMISSION_DENIED:
    case LIBSSH2_FX_WRITE_PROTECT:
        return FERRY_EPERM;
    case LIBSSH2_FX_FILE_ALREADY_EXISTS:
        return FERRY_EEXISTS;
    case LIBSSH2_FX_OP_UNSUPPORTED:
        return FERRY_EUNSUPPORTED;
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
    case LIBSSH2_FX_QUOTA_EXCEEDED:
        *retryable = 1;
        return FERRY_ETOOBIG;
    case LIBSSH2_FX_NO_CONNECTION:
    case LIBSSH2_FX_CONNECTION_LOST:
        *retryable = 1;
        return FERRY_EIO;
    case LIBSSH2_FX_LOCK_CONFLICT:
        *retryable = 1;
        return FERRY_EREMOTE;
    case LIBSSH2_FX_INVALID_FILENAME:
    case LIBSSH2_FX_NOT_A_DIRECTORY:
        return FERRY_EINVAL;
    default:
        return FERRY_EREMOTE;
    }
}

int sftp_rc(sftp_call *call, int rc) {
    if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL && call->sftp)
        return SFTP_RC_STATUS(libssh2_sftp_last_error(call->sftp));
    return rc;
}

int sftp_last_rc(sftp_call *call) {
    int rc = libssh2_session_last_errno(call->ssh);
    return sftp_rc(call, rc ? rc : LIBSSH2_ERROR_SOCKET_NONE);
}

const char *sftp_ssh_message(LIBSSH2_SESSION *s) {
    char *msg = NULL;
    if (!s || libssh2_session_last_error(s, &msg, NULL, 0) == 0 || !msg)
        return "no details";
    return msg;
}

int sftp_fail(sftp_call *call, int rc, const char *op, const char *path,
              const char *path2) {
    char where[2 * SFTP_PATH_MAX + 8];
    if (rc == SFTP_RC_RECORDED)
        return call->recorded;
    if (path2)
        snprintf(where, sizeof(where), "%s to %s", path, path2);
    else
        snprintf(where, sizeof(where), "%s", path ? path : "");
    if (SFTP_RC_IS_STATUS(rc)) {
        int retryable;
        unsigned long st = SFTP_RC_TO_STATUS(rc);
        int code = status_code(st, &retryable);
        if (st == LIBSSH2_FX_NO_CONNECTION || st == LIBSSH2_FX_CONNECTION_LOST)
            sftp_conn_retire(call);
        return sftp_api->set_error(call->ctx, code, retryable, "%s: %s %s: %s",
                                   call->what, op, where, sftp_status_text(st));
    }
    /* A transport failure: the session cannot be trusted any more. */
    const char *msg = sftp_ssh_message(call->ssh);
    int code = rc == LIBSSH2_ERROR_TIMEOUT || rc == LIBSSH2_ERROR_SOCKET_TIMEOUT
                   ? FERRY_ETIMEOUT
                   : FERRY_EIO;
    char detail[512];
    snprintf(detail, sizeof(detail), "%s", msg);
    sftp_conn_retire(call);
    return sftp_api->set_error(
        call->ctx, code, 1, "%s: %s %s: %s: %s (libssh2 error %d)", call->what,
        op, where,
        code == FERRY_ETIMEOUT ? "timed out" : "the connection failed", detail,
        rc);
}

/* ---- paths ---- */

static int refuse_path(sftp_call *call, const char *name, const char *shown,
                       int pr) {
    if (pr == SFTP_PATH_OUTSIDE)
        return sftp_api->set_error(call->ctx, FERRY_EPERM, 0,
                                   "%s: %s '%s' is refused: it is outside the "
                                   "connection's root '%s'",
                                   call->what, name, shown, call->root);
    return sftp_api->set_error(
        call->ctx, pr == SFTP_PATH_DOTDOT ? FERRY_EPERM : FERRY_EINVAL, 0,
        "%s: %s '%s' is refused: %s", call->what, name, shown,
        sftp_path_strerror(pr));
}

int sftp_resolve(sftp_call *call, const json_t *v, const char *name,
                 char *out) {
    if (!json_is_string(v))
        return sftp_api->set_error(call->ctx, FERRY_EINVAL, 0,
                                   "%s: %s must be a string", call->what, name);
    const char *s = json_string_value(v);
    int pr = sftp_path_resolve(call->root, s, json_string_length(v), out,
                               SFTP_PATH_MAX);
    return pr ? refuse_path(call, name, s, pr) : FERRY_OK;
}
