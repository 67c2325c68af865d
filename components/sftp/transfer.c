/*
 * sftp.get and sftp.put: files streamed between the server and blobs in
 * chunks of SFTP_CHUNK bytes, so memory stays bounded whatever the size.
 *
 * sftp.put never lets a reader see half a file: it writes a temporary file
 * in the target's directory (a name starting with '.', which listings and
 * the poll trigger skip) and renames it onto the target once it is
 * complete and closed.
 */
#include "sftp_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* sftp.get's "text" output: at most this many bytes unless told. */
#define TEXT_MAX_DEFAULT (1024 * 1024)
/* A temporary name needs this much more than the target's name. */
#define TMP_EXTRA 32
/* Names longer than this get a temporary name of their own instead. */
#define NAME_MAX_FOR_TMP 200

/* ---- sftp.get ---- */

static int read_fail(sftp_call *call, int rc, const char *path) {
    return sftp_fail(call, rc, "reading", path, NULL);
}

int sftp_action_get(ferry_ctx *ctx, const json_t *input) {
    sftp_call call;
    char path[SFTP_PATH_MAX], mtime[40];
    LIBSSH2_SFTP_ATTRIBUTES a;
    int rc;
    if ((rc = sftp_call_open(ctx, "sftp.get", &call)) ||
        (rc =
             sftp_resolve(&call, json_object_get(input, "path"), "path", path)))
        return rc;
    const char *as = json_string_value(json_object_get(input, "as"));
    int text = as && !strcmp(as, "text");
    if (as && !text && strcmp(as, "blob"))
        return sftp_api->set_error(ctx, FERRY_EINVAL, 0,
                                   "sftp.get: as must be \"blob\" or \"text\", "
                                   "not '%s'",
                                   as);
    json_int_t max_text = TEXT_MAX_DEFAULT;
    const json_t *mt = json_object_get(input, "max_text_bytes");
    if (json_is_integer(mt))
        max_text = json_integer_value(mt);
    if (max_text < 0)
        return sftp_api->set_error(ctx, FERRY_EINVAL, 0,
                                   "sftp.get: max_text_bytes must not be "
                                   "negative");
    const char *ctype =
        json_string_value(json_object_get(input, "content_type"));

    LIBSSH2_SFTP_HANDLE *h =
        libssh2_sftp_open_ex(call.sftp, path, (unsigned)strlen(path),
                             LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
    if (!h)
        return sftp_fail(&call, sftp_last_rc(&call), "opening", path, NULL);
    memset(&a, 0, sizeof(a));
    if ((rc = libssh2_sftp_fstat_ex(h, &a, 0))) {
        rc = sftp_rc(&call, rc);
        libssh2_sftp_close_handle(h);
        return read_fail(&call, rc, path);
    }
    if ((a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
        LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
        libssh2_sftp_close_handle(h);
        return sftp_api->set_error(ctx, FERRY_EINVAL, 0,
                                   "sftp.get: %s is a directory", path);
    }
    if (text && (a.flags & LIBSSH2_SFTP_ATTR_SIZE) &&
        a.filesize > (libssh2_uint64_t)max_text) {
        libssh2_sftp_close_handle(h);
        return sftp_api->set_error(ctx, FERRY_ETOOBIG, 0,
                                   "sftp.get: %s is %llu bytes, more than "
                                   "max_text_bytes (%lld); get it as a blob",
                                   path, (unsigned long long)a.filesize,
                                   (long long)max_text);
    }

    size_t cap = SFTP_CHUNK;
    if (text && (size_t)max_text + 1 < cap)
        cap = (size_t)max_text + 1;
    char *buf = malloc(cap);
    char *textbuf = NULL;
    size_t textlen = 0;
    ferry_blob_writer *w = NULL;
    uint64_t total = 0;
    if (!buf) {
        libssh2_sftp_close_handle(h);
        return sftp_api->set_error(ctx, FERRY_ENOMEM, 0,
                                   "sftp.get: out of memory");
    }
    if (!text && !(w = sftp_api->blob_create(
                       ctx, ctype ? ctype : "application/octet-stream"))) {
        free(buf);
        libssh2_sftp_close_handle(h);
        return sftp_api->set_error(ctx, FERRY_EIO, 1,
                                   "sftp.get: cannot create a blob");
    }
    int sized = (a.flags & LIBSSH2_SFTP_ATTR_SIZE) != 0;
    rc = FERRY_OK;
    for (;;) {
        if (sftp_api->cancelled(ctx)) {
            rc = sftp_api->set_error(ctx, FERRY_ECANCELLED, 0,
                                     "sftp.get: cancelled after %llu bytes of "
                                     "%s",
                                     (unsigned long long)total, path);
            break;
        }
        /* libssh2 asks for 4 times the length it is given ahead, in
         * requests of 30,000 bytes: a whole chunk on a 20 KB file is about
         * 140 requests, all but one answered "end of file". Near the end
         * that fstat gave, ask for what is left and one byte more (to see
         * the end); a file that grew since goes back to whole chunks. */
        size_t want = cap;
        if (sized && total <= a.filesize && a.filesize - total < want)
            want = (size_t)(a.filesize - total) + 1;
        ssize_t r = libssh2_sftp_read(h, buf, want);
        if (r == 0)
            break;
        if (r < 0) {
            rc = read_fail(&call, sftp_rc(&call, (int)r), path);
            break;
        }
        total += (uint64_t)r;
        if (w) {
            int wr = sftp_api->blob_write(w, buf, (size_t)r);
            if (wr) {
                rc = sftp_api->set_error(ctx, wr, wr != FERRY_ETOOBIG,
                                         "sftp.get: writing the blob of %s: %s",
                                         path, ferry_strerror(wr));
                break;
            }
            continue;
        }
        if (total > (uint64_t)max_text) {
            rc = sftp_api->set_error(ctx, FERRY_ETOOBIG, 0,
                                     "sftp.get: %s is more than "
                                     "max_text_bytes (%lld); get it as a blob",
                                     path, (long long)max_text);
            break;
        }
        char *t = realloc(textbuf, textlen + (size_t)r + 1);
        if (!t) {
            rc = sftp_api->set_error(ctx, FERRY_ENOMEM, 0,
                                     "sftp.get: out of memory");
            break;
        }
        textbuf = t;
        memcpy(textbuf + textlen, buf, (size_t)r);
        textlen += (size_t)r;
    }
    free(buf);
    libssh2_sftp_close_handle(h);
    if (rc) {
        if (w)
            sftp_api->blob_abort(w);
        free(textbuf);
        return rc;
    }

    json_t *out = json_object();
    json_object_set_new(out, "path", json_string(path));
    json_object_set_new(out, "name", json_string(sftp_path_name(path)));
    json_object_set_new(out, "size", json_integer((json_int_t)total));
    if (a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) {
        sftp_iso8601(a.mtime, mtime, sizeof(mtime));
        json_object_set_new(out, "mtime", json_string(mtime));
    } else {
        json_object_set_new(out, "mtime", json_null());
    }
    if (w) {
        json_t *ref = sftp_api->blob_finish(w);
        if (!ref) {
            json_decref(out);
            return sftp_api->set_error(ctx, FERRY_EIO, 1,
                                       "sftp.get: storing the blob of %s "
                                       "failed",
                                       path);
        }
        json_object_set_new(out, "blob", ref);
    } else {
        json_t *s = json_stringn(textbuf ? textbuf : "", textlen);
        free(textbuf);
        if (!s) {
            json_decref(out);
            return sftp_api->set_error(ctx, FERRY_EPARSE, 0,
                                       "sftp.get: %s is not valid UTF-8 text; "
                                       "get it as a blob",
                                       path);
        }
        json_object_set_new(out, "text", s);
    }
    return sftp_api->set_output(ctx, out);
}

/* ---- sftp.put ---- */

/* Writes all of data; returns 0 or a helper result. */
static int write_all(sftp_call *call, LIBSSH2_SFTP_HANDLE *h, const char *data,
                     size_t n) {
    while (n) {
        ssize_t w = libssh2_sftp_write(h, data, n);
        if (w < 0)
            return sftp_rc(call, (int)w);
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The bytes of a put: from a blob, streamed, or from a string. Returns
 * FERRY_OK or a recorded error; *rc_out gets a helper result when the
 * failure was the server's. */
static int send_content(sftp_call *call, LIBSSH2_SFTP_HANDLE *h,
                        const json_t *blob, const json_t *text,
                        const char *path, uint64_t *total, int *rc_out) {
    ferry_ctx *ctx = call->ctx;
    *rc_out = 0;
    *total = 0;
    if (text) {
        size_t n = json_string_length(text);
        *rc_out = write_all(call, h, json_string_value(text), n);
        *total = n;
        return FERRY_OK;
    }
    ferry_blob_reader *r = sftp_api->blob_open(ctx, blob);
    if (!r)
        return sftp_api->set_error(ctx, FERRY_EINVAL, 0,
                                   "sftp.put: blob names no blob of this "
                                   "execution");
    char *buf = malloc(SFTP_CHUNK);
    int rc = FERRY_OK;
    if (!buf)
        rc = sftp_api->set_error(ctx, FERRY_ENOMEM, 0,
                                 "sftp.put: out of memory");
    while (rc == FERRY_OK) {
        if (sftp_api->cancelled(ctx)) {
            rc = sftp_api->set_error(ctx, FERRY_ECANCELLED, 0,
                                     "sftp.put: cancelled after %llu bytes "
                                     "of %s",
                                     (unsigned long long)*total, path);
            break;
        }
        /* Fill the chunk: libssh2 pipelines the writes of one call. */
        size_t got = 0;
        long n = 1;
        while (got < SFTP_CHUNK &&
               (n = sftp_api->blob_read(r, buf + got, SFTP_CHUNK - got)) > 0)
            got += (size_t)n;
        if (n < 0) {
            rc = sftp_api->set_error(ctx, (int)n, 1,
                                     "sftp.put: reading the blob: %s",
                                     ferry_strerror((int)n));
            break;
        }
        if (got == 0)
            break;
        if ((*rc_out = write_all(call, h, buf, got)))
            break;
        *total += got;
        if (n == 0)
            break;
    }
    free(buf);
    sftp_api->blob_close(r);
    return rc;
}

int sftp_action_put(ferry_ctx *ctx, const json_t *input) {
    sftp_call call;
    char path[SFTP_PATH_MAX], dir[SFTP_PATH_MAX], tmp[SFTP_PATH_MAX];
    char tmpname[NAME_MAX_FOR_TMP + TMP_EXTRA + 8], hex[17];
    LIBSSH2_SFTP_ATTRIBUTES a;
    long mode;
    int rc;
    if ((rc = sftp_call_open(ctx, "sftp.put", &call)) ||
        (rc =
             sftp_resolve(&call, json_object_get(input, "path"), "path", path)))
        return rc;
    const json_t *blob = json_object_get(input, "blob");
    const json_t *text = json_object_get(input, "text");
    if (json_is_null(blob))
        blob = NULL;
    if (json_is_null(text))
        text = NULL;
    if (!blob == !text)
        return sftp_api->set_error(ctx, FERRY_EINVAL, 0,
                                   "sftp.put: give exactly one of blob and "
                                   "text");
    if (text && !json_is_string(text))
        return sftp_api->set_error(ctx, FERRY_EINVAL, 0,
                                   "sftp.put: text must be a string");
    if (sftp_input_mode(input, "permissions", 0644, &mode))
        return sftp_api->set_error(ctx, FERRY_EINVAL, 0,
                                   "sftp.put: permissions must be an octal "
                                   "string such as \"0644\"");
    if (!strcmp(path, call.root))
        return sftp_api->set_error(ctx, FERRY_EPERM, 0,
                                   "sftp.put: the connection's root '%s' "
                                   "cannot be replaced by a file",
                                   call.root);
    int overwrite = sftp_input_bool(input, "overwrite", 0);
    sftp_path_parent(path, dir, sizeof(dir));
    if (sftp_input_bool(input, "parents", 0) &&
        (rc = sftp_mkdirs(&call, dir, 0755, NULL)))
        return sftp_fail(&call, rc, "creating the directory", call.failed,
                         NULL);
    if (!overwrite) {
        rc = sftp_stat(&call, path, 1, &a);
        if (rc == 0)
            return sftp_api->set_error(ctx, FERRY_EEXISTS, 0,
                                       "sftp.put: %s already exists (set "
                                       "overwrite to replace it)",
                                       path);
        if (!SFTP_RC_IS_STATUS(rc) ||
            (SFTP_RC_TO_STATUS(rc) != LIBSSH2_FX_NO_SUCH_FILE &&
             SFTP_RC_TO_STATUS(rc) != LIBSSH2_FX_NO_SUCH_PATH))
            return sftp_fail(&call, rc, "reading the attributes of", path,
                             NULL);
    }

    const char *name = sftp_path_name(path);
    sftp_random_hex(hex, 8);
    if (strlen(name) > NAME_MAX_FOR_TMP)
        snprintf(tmpname, sizeof(tmpname), ".ferry-%s.tmp", hex);
    else
        snprintf(tmpname, sizeof(tmpname), ".%s.ferry-%s.tmp", name, hex);
    if (sftp_path_child(dir, tmpname, strlen(tmpname), tmp, sizeof(tmp)))
        return sftp_api->set_error(ctx, FERRY_EINVAL, 0,
                                   "sftp.put: %s: the path is too long", path);

    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(
        call.sftp, tmp, (unsigned)strlen(tmp),
        LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL, mode,
        LIBSSH2_SFTP_OPENFILE);
    if (!h)
        return sftp_fail(&call, sftp_last_rc(&call), "creating", tmp, NULL);
    uint64_t total = 0;
    int src = 0;
    rc = send_content(&call, h, blob, text, path, &total, &src);
    if (rc == FERRY_OK && src == 0) {
        /* fsync@openssh.com where the server has it: the data is on disk
         * before the name points at it. */
        int f = libssh2_sftp_fsync(h);
        if (f && !SFTP_RC_IS_STATUS(f = sftp_rc(&call, f)))
            src = f;
    }
    int cr = libssh2_sftp_close_handle(h);
    if (rc == FERRY_OK && src == 0 && cr)
        src = sftp_rc(&call, cr);
    if (rc == FERRY_OK && src == 0) {
        src = sftp_rename(&call, tmp, path, overwrite);
        if (src && !overwrite && SFTP_RC_IS_STATUS(src) &&
            sftp_stat(&call, path, 1, &a) == 0) {
            libssh2_sftp_unlink_ex(call.sftp, tmp, (unsigned)strlen(tmp));
            return sftp_api->set_error(ctx, FERRY_EEXISTS, 0,
                                       "sftp.put: %s already exists (it "
                                       "appeared during the upload; set "
                                       "overwrite to replace it)",
                                       path);
        }
        if (src) {
            libssh2_sftp_unlink_ex(call.sftp, tmp, (unsigned)strlen(tmp));
            return sftp_fail(&call, src, "renaming", tmp, path);
        }
        return sftp_api->set_output(ctx, json_pack("{s:s, s:s, s:I}", "path",
                                                   path, "name", name, "size",
                                                   (json_int_t)total));
    }
    /* Failed or cancelled: the temporary file goes, when the session can
     * still say so. */
    if (src)
        rc = sftp_fail(&call, src, "uploading", path, NULL);
    if (SFTP_RC_IS_STATUS(src) || src == 0)
        libssh2_sftp_unlink_ex(call.sftp, tmp, (unsigned)strlen(tmp));
    return rc;
}
