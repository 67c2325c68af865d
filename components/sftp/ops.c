/*
 * What the sftp component's actions and poll share besides the session:
 * stat, mkdir with parents, and small helpers for inputs, time and
 * temporary names.
 */
#include "sftp_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t sftp_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sftp_random_hex(char *out, size_t bytes) {
    unsigned char buf[32];
    static const char hex[] = "0123456789abcdef";
    if (bytes > sizeof(buf))
        bytes = sizeof(buf);
    if (getrandom(buf, bytes, 0) != (ssize_t)bytes) {
        /* Only uniqueness matters here, not secrecy. */
        uint64_t x = sftp_now_ms() ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < bytes; i++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            buf[i] = (unsigned char)(x >> 56);
        }
    }
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = hex[buf[i] >> 4];
        out[2 * i + 1] = hex[buf[i] & 15];
    }
    out[2 * bytes] = '\0';
}

int sftp_input_bool(const json_t *input, const char *key, int dflt) {
    const json_t *v = json_object_get(input, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

int sftp_input_mode(const json_t *input, const char *key, long dflt,
                    long *out) {
    const json_t *v = json_object_get(input, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > 07777)
            return -1;
        *out = (long)i;
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > 5)
        return -1;
    long m = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '7')
            return -1;
        m = m * 8 + (*s - '0');
    }
    if (m > 07777)
        return -1;
    *out = m;
    return 0;
}

int sftp_stat(sftp_call *call, const char *path, int nofollow,
              LIBSSH2_SFTP_ATTRIBUTES *attrs) {
    memset(attrs, 0, sizeof(*attrs));
    int rc = libssh2_sftp_stat_ex(
        call->sftp, path, (unsigned)strlen(path),
        nofollow ? LIBSSH2_SFTP_LSTAT : LIBSSH2_SFTP_STAT, attrs);
    return rc ? sftp_rc(call, rc) : 0;
}

static int is_dir(sftp_call *call, const char *path, int *rc_out) {
    LIBSSH2_SFTP_ATTRIBUTES a;
    int rc = sftp_stat(call, path, 0, &a);
    if (rc == 0 && (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
        LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
        *rc_out = 0;
        return 1;
    }
    *rc_out = rc ? rc : SFTP_RC_STATUS(LIBSSH2_FX_NOT_A_DIRECTORY);
    return 0;
}

/* The result of a failed mkdir (rc) given what a stat then said (src):
 * the stat's transport failure, the stat's finding that something else
 * has the name, or else the mkdir's own status. */
static int mkdir_result(int rc, int src) {
    if (!SFTP_RC_IS_STATUS(src))
        return src;
    if (SFTP_RC_TO_STATUS(src) == LIBSSH2_FX_NOT_A_DIRECTORY)
        return src;
    return rc;
}

static int mkdir_one(sftp_call *call, const char *path, long mode) {
    int rc =
        libssh2_sftp_mkdir_ex(call->sftp, path, (unsigned)strlen(path), mode);
    return rc ? sftp_rc(call, rc) : 0;
}

int sftp_mkdirs(sftp_call *call, const char *path, long mode, int *created) {
    int rc, src;
    if (created)
        *created = 0;
    snprintf(call->failed, sizeof(call->failed), "%s", path);
    rc = mkdir_one(call, path, mode);
    if (rc == 0) {
        if (created)
            *created = 1;
        return 0;
    }
    if (!SFTP_RC_IS_STATUS(rc))
        return rc;
    if (SFTP_RC_TO_STATUS(rc) != LIBSSH2_FX_NO_SUCH_FILE &&
        SFTP_RC_TO_STATUS(rc) != LIBSSH2_FX_NO_SUCH_PATH) {
        /* It exists (OpenSSH answers SSH_FX_FAILURE), or cannot be made. */
        if (is_dir(call, path, &src))
            return 0;
        return mkdir_result(rc, src);
    }
    /* A parent is missing: each level from the root down (never above
     * it). */
    char buf[SFTP_PATH_MAX];
    size_t rl = strcmp(call->root, "/") ? strlen(call->root) : 0;
    size_t len = strlen(path);
    if (len <= rl + 1 || !sftp_path_inside(call->root, path))
        return rc;
    snprintf(buf, sizeof(buf), "%s", path);
    for (size_t i = rl + 1; i < len; i++) {
        if (buf[i] != '/')
            continue;
        buf[i] = '\0';
        rc = mkdir_one(call, buf, mode);
        if (rc && !is_dir(call, buf, &src)) {
            snprintf(call->failed, sizeof(call->failed), "%s", buf);
            return mkdir_result(rc, src);
        }
        buf[i] = '/';
    }
    rc = mkdir_one(call, path, mode);
    if (rc == 0) {
        if (created)
            *created = 1;
        return 0;
    }
    if (is_dir(call, path, &src))
        return 0;
    return mkdir_result(rc, src);
}
