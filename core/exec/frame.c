/* Length-prefixed JSON frames, with an optional fd riding along. */
#include "exec.h"
#include "jtext/jtext.h"

#include <ferry/ferry.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The frame of n bytes of text: a malloc'd buffer of n + 4 bytes, or NULL
 * when n is over EXEC_FRAME_MAX or memory ran out. */
static char *frame_of(const char *text, size_t n) {
    char *buf = n <= EXEC_FRAME_MAX ? malloc(n + 4) : NULL;
    if (buf) {
        buf[0] = (char)(n >> 24);
        buf[1] = (char)(n >> 16);
        buf[2] = (char)(n >> 8);
        buf[3] = (char)n;
        memcpy(buf + 4, text, n);
    }
    return buf;
}

char *frame_encode(const json_t *msg, size_t *len) {
    size_t n;
    char *text = jtext_dump(msg, &n);
    if (!text)
        return NULL;
    char *buf = frame_of(text, n);
    if (buf)
        *len = n + 4;
    free(text);
    return buf;
}

static int write_all(int sock, const char *p, size_t n, int pass_fd) {
    while (n) {
        struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } cm;
        if (pass_fd >= 0) {
            memset(&cm, 0, sizeof(cm));
            mh.msg_control = cm.buf;
            mh.msg_controllen = sizeof(cm.buf);
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        ssize_t w = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EPIPE || errno == ECONNRESET ? FERRY_EUNAVAIL
                                                         : FERRY_EIO;
        pass_fd = -1; /* sent with the first byte */
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int frame_send_text(int sock, const char *text, size_t n, int pass_fd) {
    char *buf = frame_of(text, n);
    if (!buf)
        return n > EXEC_FRAME_MAX ? FERRY_ETOOBIG : FERRY_ENOMEM;
    int rc = write_all(sock, buf, n + 4, pass_fd);
    free(buf);
    return rc;
}

int frame_send(int sock, const json_t *msg, int pass_fd) {
    size_t len;
    char *buf = frame_encode(msg, &len);
    if (!buf)
        return FERRY_ETOOBIG;
    int rc = write_all(sock, buf, len, pass_fd);
    free(buf);
    return rc;
}

/* Reads exactly n bytes; collects an fd if one rides along. Returns 0, 1 on
 * EOF before any byte, or a negative code. */
static int read_all(int sock, char *p, size_t n, int *fd) {
    size_t got = 0;
    while (got < n) {
        struct iovec iov = {.iov_base = p + got, .iov_len = n - got};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } cm;
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cm.buf,
                            .msg_controllen = sizeof(cm.buf)};
        ssize_t r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return FERRY_EIO;
        if (r == 0)
            return got == 0 ? 1 : FERRY_EPROTO;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
             c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                int f;
                memcpy(&f, CMSG_DATA(c), sizeof(int));
                if (fd && *fd < 0)
                    *fd = f;
                else
                    close(f);
            }
        }
        got += (size_t)r;
    }
    return 0;
}

int frame_recv(int sock, json_t **msg, int *passed_fd) {
    unsigned char hdr[4];
    int fd = -1;
    *msg = NULL;
    if (passed_fd)
        *passed_fd = -1;
    int rc = read_all(sock, (char *)hdr, 4, &fd);
    if (rc)
        return rc;
    size_t n = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 |
               (size_t)hdr[2] << 8 | hdr[3];
    if (n > EXEC_FRAME_MAX) {
        rc = FERRY_EPROTO;
        goto fail;
    }
    char *buf = malloc(n ? n : 1);
    if (!buf) {
        rc = FERRY_ENOMEM;
        goto fail;
    }
    rc = read_all(sock, buf, n, &fd);
    if (rc) {
        free(buf);
        rc = rc == 1 ? FERRY_EPROTO : rc;
        goto fail;
    }
    *msg = jtext_load(buf, n, 0, NULL);
    free(buf);
    if (!json_is_object(*msg)) {
        json_decref(*msg);
        *msg = NULL;
        rc = FERRY_EPROTO;
        goto fail;
    }
    if (passed_fd)
        *passed_fd = fd;
    else if (fd >= 0)
        close(fd);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Hands on every whole frame at the start of p[0..n); the bytes used in
 * *used. */
static int decode_frames(const char *p, size_t n, size_t *used,
                         void (*on_msg)(void *ud, json_t *msg), void *ud) {
    size_t off = 0;
    *used = 0;
    while (n - off >= 4) {
        const unsigned char *h = (const unsigned char *)p + off;
        size_t flen =
            (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
        if (flen > EXEC_FRAME_MAX)
            return FERRY_EPROTO;
        if (n - off - 4 < flen)
            break;
        json_t *msg = jtext_load(p + off + 4, flen, 0, NULL);
        if (!json_is_object(msg)) {
            json_decref(msg);
            return FERRY_EPROTO;
        }
        off += 4 + flen;
        *used = off;
        on_msg(ud, msg);
    }
    return 0;
}

int frame_decoder_feed(frame_decoder *d, const char *data, size_t n,
                       void (*on_msg)(void *ud, json_t *msg), void *ud) {
    size_t used;
    if (d->len == 0) {
        /* Nothing held back: whole frames are read where they are, and
         * only a partial one at the end is kept. */
        int rc = decode_frames(data, n, &used, on_msg, ud);
        if (rc)
            return rc;
        data += used;
        n -= used;
        if (n == 0)
            return 0;
    }
    if (d->len + n > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap < d->len + n)
            cap *= 2;
        char *b = realloc(d->buf, cap);
        if (!b)
            return FERRY_ENOMEM;
        d->buf = b;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, data, n);
    d->len += n;
    int rc = decode_frames(d->buf, d->len, &used, on_msg, ud);
    if (rc)
        return rc;
    if (used) {
        memmove(d->buf, d->buf + used, d->len - used);
        d->len -= used;
    }
    return 0;
}

void frame_decoder_free(frame_decoder *d) {
    free(d->buf);
    memset(d, 0, sizeof(*d));
}
