/*
 * SSH sessions for the sftp component: the connection's fields, the TCP
 * connection, the host key check, authentication, and the cache that lets
 * an execution's steps share one session.
 *
 * The cache is static state of the process. A worker runs one execution,
 * so "one session per execution at most" is "one per worker": the first
 * step connects, later steps with the same host, port, user, pinned key
 * and credentials reuse it after checking it is still alive, and the
 * process's exit ends it. A session found dead is replaced once.
 *
 * Also here: renaming, which needs the session's channel for OpenSSH's
 * posix-rename extension.
 */
#include "sftp_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Sessions kept at once (distinct connections used by one execution). */
#define CACHE_SLOTS 4
/* A session idle for longer than this is probed with a round trip before
 * it is reused. */
#define PROBE_AFTER_MS 2000
/* How long closing a session at exit may wait for the server. */
#define CLOSE_TIMEOUT_MS 2000

/* SFTP packet types used by the posix-rename request (draft-ietf-secsh-
 * filexfer-02; the extension is OpenSSH's PROTOCOL file). */
#define FXP_STATUS 101
#define FXP_EXTENDED 200
/* A reply larger than this while waiting for ours is a broken channel. */
#define RAW_REPLY_MAX (256 * 1024)

struct sftp_conn {
    int used;
    /* The cache key. */
    char host[256];
    long port;
    char user[256];
    char pin[64];
    int insecure;
    uint64_t cred_hash;
    /* The session. */
    int sock;
    LIBSSH2_SESSION *ssh;
    LIBSSH2_SFTP *sftp;
    pid_t pid;
    uint64_t last_ms;
    int dead;
    int no_posix_rename; /* the server answered OP_UNSUPPORTED once */
    uint32_t raw_id;
    char home[SFTP_PATH_MAX]; /* the login directory */
};

const ferry_api *sftp_api;

static sftp_conn cache[CACHE_SLOTS];
static int lib_ready;

static uint64_t fnv1a(uint64_t h, const char *s) {
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211u;
    }
    h ^= 0xff; /* separates the strings hashed one after the other */
    h *= 1099511628211u;
    return h;
}

static void base64_nopad(const unsigned char *in, size_t n, char *out) {
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = tbl[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = tbl[v & 63];
    }
    out[o] = '\0';
}

static const char *hostkey_type_name(int type) {
    switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA:
        return "ssh-rsa";
    case LIBSSH2_HOSTKEY_TYPE_DSS:
        return "ssh-dss";
#ifdef LIBSSH2_HOSTKEY_TYPE_ECDSA_256
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
        return "ecdsa-sha2-nistp256";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
        return "ecdsa-sha2-nistp384";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
        return "ecdsa-sha2-nistp521";
#endif
#ifdef LIBSSH2_HOSTKEY_TYPE_ED25519
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
        return "ssh-ed25519";
#endif
    default:
        return "unknown key type";
    }
}

/* ---- the connection's fields ---- */

typedef struct conn_cfg {
    const char *name;
    const char *host;
    long port;
    const char *user;
    const char *password;
    const char *key;
    const char *passphrase;
    char pin[64]; /* base64 without padding, "" when none */
    int insecure;
    const char *root;
    uint64_t timeout_ms;
} conn_cfg;

static const char *field_str(const json_t *fields, const char *k) {
    const char *s = json_string_value(json_object_get(fields, k));
    return s && *s ? s : NULL;
}

/* "500ms", "30s", "2m", "1h" or whole milliseconds. */
static int duration_ms(const json_t *v, uint64_t *out) {
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    uint64_t f = !*end                ? 1
                 : !strcmp(end, "ms") ? 1
                 : !strcmp(end, "s")  ? 1000
                 : !strcmp(end, "m")  ? 60000
                 : !strcmp(end, "h")  ? 3600000
                                      : 0;
    if (errno || !f || n > UINT64_MAX / f)
        return -1;
    *out = n * f;
    return 0;
}

/*
 * The pinned fingerprint as ssh-keygen -lf prints it: "SHA256:" and
 * base64 without padding. A whole ssh-keygen line is accepted too (the
 * "SHA256:..." word is taken), and so is the bare base64, with or without
 * '=' padding. Returns 0, or -1 when it is not a SHA-256 fingerprint.
 */
static int parse_pin(const char *s, char *out, size_t n) {
    const char *p = strstr(s, "SHA256:");
    if (p)
        s = p + 7;
    else
        while (*s == ' ' || *s == '\t')
            s++;
    size_t len = 0;
    while (s[len] && s[len] != ' ' && s[len] != '\t' && s[len] != '\n' &&
           s[len] != '\r')
        len++;
    while (len && s[len - 1] == '=')
        len--;
    /* 32 bytes are 43 base64 characters. */
    if (len != 43 || len + 1 > n)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return -1;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

static int read_cfg(ferry_ctx *ctx, const char *what, conn_cfg *cfg) {
    const json_t *conn = sftp_api->connection(ctx);
    memset(cfg, 0, sizeof(*cfg));
    if (!conn)
        return sftp_api->set_error(ctx, FERRY_ECONFIG, 0,
                                   "%s: the step has no connection (an "
                                   "sftp.server connection is needed)",
                                   what);
    const char *type = json_string_value(json_object_get(conn, "type"));
    cfg->name = json_string_value(json_object_get(conn, "name"));
    if (!cfg->name)
        cfg->name = "?";
    if (type && strcmp(type, "sftp.server"))
        return sftp_api->set_error(ctx, FERRY_ECONFIG, 0,
                                   "%s: connection '%s' is of type '%s', not "
                                   "sftp.server",
                                   what, cfg->name, type);
    const json_t *f = json_object_get(conn, "fields");
    cfg->host = field_str(f, "host");
    cfg->user = field_str(f, "username");
    cfg->password = field_str(f, "password");
    cfg->key = field_str(f, "private_key");
    cfg->passphrase = field_str(f, "passphrase");
    cfg->root = field_str(f, "root");
    cfg->insecure = json_is_true(json_object_get(f, "insecure_skip_host_key_"
                                                    "check"));
    const json_t *port = json_object_get(f, "port");
    cfg->port = port ? (long)json_integer_value(port) : 22;
    if (!cfg->host)
        return sftp_api->set_error(ctx, FERRY_ECONFIG, 0,
                                   "%s: connection '%s' has no host", what,
                                   cfg->name);
    if (!cfg->user)
        return sftp_api->set_error(ctx, FERRY_ECONFIG, 0,
                                   "%s: connection '%s' has no username", what,
                                   cfg->name);
    if (strlen(cfg->host) >= sizeof(((sftp_conn *)0)->host) ||
        strlen(cfg->user) >= sizeof(((sftp_conn *)0)->user))
        return sftp_api->set_error(ctx, FERRY_ECONFIG, 0,
                                   "%s: connection '%s': host or username too "
                                   "long",
                                   what, cfg->name);
    if ((port && !json_is_integer(port)) || cfg->port < 1 || cfg->port > 65535)
        return sftp_api->set_error(ctx, FERRY_ECONFIG, 0,
                                   "%s: connection '%s': port must be 1 to "
                                   "65535",
                                   what, cfg->name);
    if (!cfg->password && !cfg->key)
        return sftp_api->set_error(ctx, FERRY_ECONFIG, 0,
                                   "%s: connection '%s' has neither a password "
                                   "nor a private_key",
                                   what, cfg->name);
    const char *pin = field_str(f, "host_key_sha256");
    if (pin && parse_pin(pin, cfg->pin, sizeof(cfg->pin)))
        return sftp_api->set_error(
            ctx, FERRY_ECONFIG, 0,
            "%s: connection '%s': host_key_sha256 is not a SHA-256 "
            "fingerprint as ssh-keygen -lf prints it (SHA256: and 43 base64 "
            "characters)",
            what, cfg->name);
    const json_t *t = json_object_get(f, "timeout");
    cfg->timeout_ms = 30000;
    if (t && !json_is_null(t) && duration_ms(t, &cfg->timeout_ms))
        return sftp_api->set_error(ctx, FERRY_ECONFIG, 0,
                                   "%s: connection '%s': timeout must be a "
                                   "duration (\"30s\", \"500ms\", \"2m\") or "
                                   "milliseconds",
                                   what, cfg->name);
    if (cfg->timeout_ms > 24u * 3600u * 1000u)
        cfg->timeout_ms = 24u * 3600u * 1000u;
    return FERRY_OK;
}

/* ---- connecting ---- */

/* A TCP connection to host:port within timeout_ms (0: no limit). Returns
 * the socket, or -1 with a message in err. */
static int tcp_connect(const conn_cfg *cfg, char *err, size_t n) {
    struct addrinfo hints = {0}, *res = NULL;
    char port[16];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%ld", cfg->port);
    int g = getaddrinfo(cfg->host, port, &hints, &res);
    if (g) {
        snprintf(err, n, "cannot resolve %s: %s", cfg->host, gai_strerror(g));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int timeout = cfg->timeout_ms ? (int)cfg->timeout_ms : -1;
            int pr;
            do {
                pr = poll(&p, 1, timeout);
            } while (pr < 0 && errno == EINTR);
            if (pr == 0) {
                errno = ETIMEDOUT;
            } else {
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                errno = soerr;
                r = soerr ? -1 : 0;
            }
        }
        if (r == 0) {
            fcntl(fd, F_SETFL, fl);
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            break;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, n, "cannot connect to %s:%ld: %s", cfg->host, cfg->port,
                 strerror(saved ? saved : ECONNREFUSED));
    return fd;
}

/* Ends a session. graceful: say goodbye to the server (bounded by
 * CLOSE_TIMEOUT_MS); otherwise the socket is shut first so that nothing
 * waits on a dead peer. */
static void conn_close(sftp_conn *c, int graceful) {
    if (!c->used)
        return;
    if (c->pid == getpid()) {
        if (!graceful && c->sock >= 0)
            shutdown(c->sock, SHUT_RDWR);
        if (c->ssh)
            libssh2_session_set_timeout(c->ssh, CLOSE_TIMEOUT_MS);
        if (c->sftp)
            libssh2_sftp_shutdown(c->sftp);
        if (c->ssh) {
            if (graceful)
                libssh2_session_disconnect(c->ssh, "closed");
            libssh2_session_free(c->ssh);
        }
        if (c->sock >= 0)
            close(c->sock);
    }
    /* A session inherited through fork belongs to the parent: forgotten,
     * never used or closed here. */
    memset(c, 0, sizeof(*c));
    c->sock = -1;
}

static void close_all(void) {
    for (int i = 0; i < CACHE_SLOTS; i++)
        conn_close(&cache[i], !cache[i].dead);
    if (lib_ready) {
        libssh2_exit();
        lib_ready = 0;
    }
}

void sftp_conn_retire(sftp_call *call) {
    sftp_conn *c = call->conn;
    if (c && !c->dead) {
        c->dead = 1;
        /* Whatever libssh2 still sends or waits for now fails at once
         * instead of waiting for the timeout. */
        if (c->sock >= 0 && c->pid == getpid())
            shutdown(c->sock, SHUT_RDWR);
    }
}

/* Whether a cached session can be used again: its socket is open and, when
 * it has been idle or the server sent something, a round trip answers. */
static int conn_alive(sftp_conn *c) {
    if (c->dead || c->pid != getpid())
        return 0;
    struct pollfd p = {.fd = c->sock, .events = POLLIN};
    int probe = sftp_now_ms() - c->last_ms > PROBE_AFTER_MS;
    if (poll(&p, 1, 0) > 0) {
        char b;
        if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
            return 0;
        if (recv(c->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
            return 0;
        probe = 1;
    }
    if (probe) {
        char buf[SFTP_PATH_MAX];
        if (libssh2_sftp_realpath(c->sftp, ".", buf, sizeof(buf)) < 0)
            return 0;
    }
    return 1;
}

/* Whether an RSA key was given (for the hint on refusal): a PEM RSA key,
 * or an OpenSSH key whose public part says ssh-rsa. */
static int key_is_rsa(const char *key) {
    if (strstr(key, "BEGIN RSA PRIVATE KEY"))
        return 1;
    const char *b = strstr(key, "BEGIN OPENSSH PRIVATE KEY-----");
    if (!b)
        return 0;
    b += strlen("BEGIN OPENSSH PRIVATE KEY-----");
    /* The key type is in the first hundred bytes: decode that much. */
    unsigned char raw[120];
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *b && *b != '-' && n < sizeof(raw); b++) {
        const char *tbl =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *q = strchr(tbl, *b);
        if (!q || !*b)
            continue;
        acc = (acc << 6) | (uint32_t)(q - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[n++] = (unsigned char)(acc >> bits);
        }
    }
    for (size_t i = 0; i + 7 <= n; i++)
        if (!memcmp(raw + i, "ssh-rsa", 7))
            return 1;
    return 0;
}

/* Whether a libssh2 error during authentication is the network's (the
 * rest are the key's or the protocol's). */
static int is_network_error(int rc) {
    switch (rc) {
    case LIBSSH2_ERROR_SOCKET_NONE:
    case LIBSSH2_ERROR_SOCKET_SEND:
    case LIBSSH2_ERROR_SOCKET_RECV:
    case LIBSSH2_ERROR_SOCKET_DISCONNECT:
    case LIBSSH2_ERROR_SOCKET_TIMEOUT:
    case LIBSSH2_ERROR_TIMEOUT:
    case LIBSSH2_ERROR_BAD_SOCKET:
        return 1;
    default:
        return 0;
    }
}

/* Authenticates on c->ssh. Returns FERRY_OK or a recorded error. */
static int authenticate(ferry_ctx *ctx, const char *what, const conn_cfg *cfg,
                        sftp_conn *c) {
    LIBSSH2_SESSION *s = c->ssh;
    unsigned ulen = (unsigned)strlen(cfg->user);
    char *list = libssh2_userauth_list(s, cfg->user, ulen);
    if (!list && libssh2_userauth_authenticated(s))
        return FERRY_OK;
    char methods[256];
    snprintf(methods, sizeof(methods), "%s", list ? list : "none");
    if (!list) {
        int rc = libssh2_session_last_errno(s);
        if (rc != LIBSSH2_ERROR_EAGAIN && rc != 0)
            return sftp_api->set_error(ctx, FERRY_EIO, 1,
                                       "%s: %s:%ld: asking for the "
                                       "authentication methods failed: %s",
                                       what, cfg->host, cfg->port,
                                       sftp_ssh_message(s));
    }
    char tried[512] = "";
    if (cfg->key) {
        int rc = libssh2_userauth_publickey_frommemory(
            s, cfg->user, ulen, NULL, 0, cfg->key, strlen(cfg->key),
            cfg->passphrase);
        if (rc == 0)
            return FERRY_OK;
        if (!is_network_error(rc) &&
            rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED &&
            rc != LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED)
            return sftp_api->set_error(
                ctx, FERRY_ECONFIG, 0,
                "%s: connection '%s': the private key cannot be read (%s): a "
                "wrong or missing passphrase, or not a PEM or OpenSSH private "
                "key",
                what, cfg->name, sftp_ssh_message(s));
        if (is_network_error(rc))
            return sftp_api->set_error(
                ctx, FERRY_EIO, 1,
                "%s: %s:%ld: public key authentication broke off: %s (libssh2 "
                "error %d)",
                what, cfg->host, cfg->port, sftp_ssh_message(s), rc);
        snprintf(tried, sizeof(tried), "the public key was refused%s",
                 key_is_rsa(cfg->key)
                     ? " (an rsa key needs rsa-sha2 signatures, which this "
                       "build's libssh2 lacks before 1.11: use an ed25519 or "
                       "ecdsa key)"
                     : "");
    }
    if (cfg->password) {
        int rc =
            libssh2_userauth_password_ex(s, cfg->user, ulen, cfg->password,
                                         (unsigned)strlen(cfg->password), NULL);
        if (rc == 0)
            return FERRY_OK;
        if (rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED &&
            rc != LIBSSH2_ERROR_PASSWORD_EXPIRED)
            return sftp_api->set_error(
                ctx, FERRY_EIO, 1,
                "%s: %s:%ld: password authentication broke off: %s (libssh2 "
                "error %d)",
                what, cfg->host, cfg->port, sftp_ssh_message(s), rc);
        size_t l = strlen(tried);
        snprintf(tried + l, sizeof(tried) - l, "%s%s", l ? "; " : "",
                 rc == LIBSSH2_ERROR_PASSWORD_EXPIRED
                     ? "the password has expired"
                     : "the password was refused");
    }
    return sftp_api->set_error(ctx, FERRY_EAUTH, 0,
                               "%s: authentication failed for user '%s' at "
                               "%s:%ld: %s (the server offers: %s)",
                               what, cfg->user, cfg->host, cfg->port, tried,
                               methods);
}

/* Checks the server's host key against the pin. Returns FERRY_OK or a
 * recorded error. */
static int check_host_key(ferry_ctx *ctx, const char *what, const conn_cfg *cfg,
                          LIBSSH2_SESSION *s) {
    size_t klen = 0;
    int ktype = 0;
    const char *key = libssh2_session_hostkey(s, &klen, &ktype);
    const char *hash = libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
    if (!key || !hash)
        return sftp_api->set_error(ctx, FERRY_EPROTO, 0,
                                   "%s: %s:%ld: the server's host key cannot "
                                   "be read",
                                   what, cfg->host, cfg->port);
    char got[64];
    base64_nopad((const unsigned char *)hash, 32, got);
    if (cfg->pin[0]) {
        if (strcmp(cfg->pin, got) == 0)
            return FERRY_OK;
        return sftp_api->set_error(
            ctx, FERRY_EAUTH, 0,
            "%s: host key mismatch for %s:%ld: expected SHA256:%s, the "
            "server presented SHA256:%s (%s); if the server's key changed "
            "on purpose, pin the new fingerprint in host_key_sha256",
            what, cfg->host, cfg->port, cfg->pin, got,
            hostkey_type_name(ktype));
    }
    if (cfg->insecure) {
        sftp_api->log(ctx, FERRY_LOG_WARN, NULL,
                      "%s:%ld: host key not checked "
                      "(insecure_skip_host_key_check); the server presented "
                      "SHA256:%s (%s)",
                      cfg->host, cfg->port, got, hostkey_type_name(ktype));
        return FERRY_OK;
    }
    return sftp_api->set_error(
        ctx, FERRY_ECONFIG, 0,
        "%s: connection '%s' pins no host key for %s:%ld: set "
        "host_key_sha256 to the server's fingerprint (it presented "
        "SHA256:%s (%s): check it against ssh-keygen -lf of the server's "
        "host key), or set insecure_skip_host_key_check to true",
        what, cfg->name, cfg->host, cfg->port, got, hostkey_type_name(ktype));
}

/* Connects, checks the host key, authenticates and starts SFTP into c.
 * Returns FERRY_OK or a recorded error (c is then left closed). */
static int conn_open(ferry_ctx *ctx, const char *what, const conn_cfg *cfg,
                     sftp_conn *c) {
    char err[512];
    uint64_t t0 = sftp_now_ms();
    int rc;
    if (!lib_ready) {
        if (libssh2_init(0))
            return sftp_api->set_error(ctx, FERRY_EINTERNAL, 0,
                                       "%s: libssh2 failed to initialise",
                                       what);
        /* After libssh2_init, so that this runs before the crypto
         * library's own exit handler; dlclose runs it too. */
        static int registered;
        if (!registered && atexit(close_all) == 0)
            registered = 1;
        lib_ready = 1;
    }
    memset(c, 0, sizeof(*c));
    c->sock = -1;
    c->pid = getpid();
    c->used = 1;
    c->sock = tcp_connect(cfg, err, sizeof(err));
    if (c->sock < 0) {
        conn_close(c, 0);
        return sftp_api->set_error(ctx, FERRY_EUNAVAIL, 1, "%s: %s", what, err);
    }
    c->ssh = libssh2_session_init();
    if (!c->ssh) {
        conn_close(c, 0);
        return sftp_api->set_error(ctx, FERRY_ENOMEM, 1,
                                   "%s: cannot start an SSH session", what);
    }
    libssh2_session_set_blocking(c->ssh, 1);
    libssh2_session_set_timeout(c->ssh, (long)cfg->timeout_ms);
    rc = libssh2_session_handshake(c->ssh, c->sock);
    if (rc) {
        int kex = rc == LIBSSH2_ERROR_KEX_FAILURE ||
                  rc == LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE ||
                  rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED;
        snprintf(err, sizeof(err), "%s", sftp_ssh_message(c->ssh));
        conn_close(c, 0);
        return sftp_api->set_error(
            ctx,
            rc == LIBSSH2_ERROR_TIMEOUT ? FERRY_ETIMEOUT
            : kex                       ? FERRY_EPROTO
                                        : FERRY_EIO,
            !kex,
            "%s: SSH handshake with %s:%ld failed: %s (libssh2 error %d)%s",
            what, cfg->host, cfg->port, err, rc,
            kex ? "; no algorithms in common (a server with only an rsa "
                  "host key needs rsa-sha2, which libssh2 has from 1.11)"
                : "");
    }
    if ((rc = check_host_key(ctx, what, cfg, c->ssh)) ||
        (rc = authenticate(ctx, what, cfg, c))) {
        conn_close(c, 0);
        return rc;
    }
    c->sftp = libssh2_sftp_init(c->ssh);
    if (!c->sftp) {
        int e = libssh2_session_last_errno(c->ssh);
        snprintf(err, sizeof(err), "%s", sftp_ssh_message(c->ssh));
        conn_close(c, 0);
        return sftp_api->set_error(ctx, FERRY_EUNAVAIL, 1,
                                   "%s: %s:%ld: the SFTP subsystem did not "
                                   "start: %s (libssh2 error %d)",
                                   what, cfg->host, cfg->port, err, e);
    }
    rc = libssh2_sftp_realpath(c->sftp, ".", c->home, sizeof(c->home) - 1);
    if (rc < 0) {
        unsigned long st = libssh2_sftp_last_error(c->sftp);
        conn_close(c, 0);
        return sftp_api->set_error(ctx, FERRY_EREMOTE, 1,
                                   "%s: %s:%ld: the login directory cannot "
                                   "be found: %s",
                                   what, cfg->host, cfg->port,
                                   sftp_status_text(st));
    }
    c->home[rc] = '\0';
    c->last_ms = sftp_now_ms();
    sftp_api->log(ctx, FERRY_LOG_INFO, NULL,
                  "connected to %s:%ld as %s in %llu ms", cfg->host, cfg->port,
                  cfg->user, (unsigned long long)(c->last_ms - t0));
    return FERRY_OK;
}

static int same_key(const sftp_conn *c, const conn_cfg *cfg, uint64_t h) {
    return c->used && c->port == cfg->port && c->insecure == cfg->insecure &&
           c->cred_hash == h && !strcmp(c->host, cfg->host) &&
           !strcmp(c->user, cfg->user) && !strcmp(c->pin, cfg->pin);
}

int sftp_call_open(ferry_ctx *ctx, const char *what, sftp_call *call) {
    conn_cfg cfg;
    int rc;
    memset(call, 0, sizeof(*call));
    call->ctx = ctx;
    call->what = what;
    if ((rc = read_cfg(ctx, what, &cfg)))
        return rc;
    uint64_t h = 14695981039346656037u;
    h = fnv1a(h, cfg.password);
    h = fnv1a(h, cfg.key);
    h = fnv1a(h, cfg.passphrase);

    sftp_conn *c = NULL;
    for (int i = 0; i < CACHE_SLOTS && !c; i++)
        if (same_key(&cache[i], &cfg, h))
            c = &cache[i];
    if (c && !conn_alive(c)) {
        sftp_api->log(ctx, FERRY_LOG_INFO, NULL,
                      "the session to %s:%ld was lost; connecting again",
                      cfg.host, cfg.port);
        conn_close(c, 0);
    }
    if (!c || !c->used) {
        if (!c) {
            /* A free slot, else the least recently used one. */
            for (int i = 0; i < CACHE_SLOTS && !c; i++)
                if (!cache[i].used)
                    c = &cache[i];
            for (int i = 0; i < CACHE_SLOTS && !c; i++)
                if (!c || cache[i].last_ms < c->last_ms)
                    c = &cache[i];
            if (!c)
                c = &cache[0];
            conn_close(c, !c->dead);
        }
        if ((rc = conn_open(ctx, what, &cfg, c)))
            return rc;
        snprintf(c->host, sizeof(c->host), "%s", cfg.host);
        snprintf(c->user, sizeof(c->user), "%s", cfg.user);
        snprintf(c->pin, sizeof(c->pin), "%s", cfg.pin);
        c->port = cfg.port;
        c->insecure = cfg.insecure;
        c->cred_hash = h;
    }
    libssh2_session_set_timeout(c->ssh, (long)cfg.timeout_ms);
    c->last_ms = sftp_now_ms();
    call->conn = c;
    call->ssh = c->ssh;
    call->sftp = c->sftp;

    /* The root: the connection's, taken from the login directory when
     * relative; the login directory when not given. */
    char root[SFTP_PATH_MAX];
    int pr;
    if (!cfg.root)
        pr = sftp_path_normalize(c->home, strlen(c->home), root, sizeof(root));
    else if (cfg.root[0] == '/')
        pr =
            sftp_path_normalize(cfg.root, strlen(cfg.root), root, sizeof(root));
    else {
        char home[SFTP_PATH_MAX];
        pr = sftp_path_normalize(c->home, strlen(c->home), home, sizeof(home));
        if (!pr)
            pr = sftp_path_resolve(home, cfg.root, strlen(cfg.root), root,
                                   sizeof(root));
    }
    if (pr)
        return sftp_api->set_error(
            ctx, FERRY_ECONFIG, 0, "%s: connection '%s': root '%s': %s", what,
            cfg.name, cfg.root ? cfg.root : c->home, sftp_path_strerror(pr));
    memcpy(call->root, root, sizeof(root));
    return FERRY_OK;
}

/* ---- renaming ---- */

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int chan_write_all(LIBSSH2_CHANNEL *ch, const unsigned char *p,
                          size_t n) {
    while (n) {
        ssize_t w = libssh2_channel_write(ch, (const char *)p, n);
        if (w < 0)
            return (int)w;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int chan_read_all(LIBSSH2_CHANNEL *ch, unsigned char *p, size_t n) {
    while (n) {
        ssize_t r = libssh2_channel_read(ch, (char *)p, n);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return LIBSSH2_ERROR_CHANNEL_CLOSED;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/*
 * posix-rename@openssh.com (OpenSSH's PROTOCOL, section 4.3): rename(2),
 * which replaces the target atomically. libssh2 before 1.11 has no call
 * for it, so the request is written to the SFTP channel directly. That is
 * safe between libssh2's own SFTP calls, which are done (blocking mode)
 * and leave the channel at a packet boundary: the reply is read here, and
 * late replies to requests libssh2 gave up on (read-ahead past the end of
 * a file) are skipped by their ids, which libssh2 would drop anyway. Any
 * failure on the way retires the session. Returns a helper result.
 */
static int posix_rename(sftp_call *call, const char *from, const char *to) {
    static const char ext[] = "posix-rename@openssh.com";
    sftp_conn *c = call->conn;
    LIBSSH2_CHANNEL *ch = libssh2_sftp_get_channel(call->sftp);
    size_t el = sizeof(ext) - 1, fl = strlen(from), tl = strlen(to);
    size_t body = 1 + 4 + 4 + el + 4 + fl + 4 + tl;
    unsigned char *pkt = malloc(4 + body);
    unsigned char hdr[4], *reply = NULL;
    int rc;
    if (!ch || !pkt) {
        free(pkt);
        return LIBSSH2_ERROR_ALLOC;
    }
    /* Ids libssh2 counts up from 0 never reach the high half. */
    uint32_t id = 0x80000000u | c->raw_id++;
    unsigned char *p = pkt;
    put32(p, (uint32_t)body);
    p[4] = FXP_EXTENDED;
    put32(p + 5, id);
    p += 9;
    put32(p, (uint32_t)el);
    memcpy(p + 4, ext, el);
    p += 4 + el;
    put32(p, (uint32_t)fl);
    memcpy(p + 4, from, fl);
    p += 4 + fl;
    put32(p, (uint32_t)tl);
    memcpy(p + 4, to, tl);
    rc = chan_write_all(ch, pkt, 4 + body);
    free(pkt);
    while (rc == 0) {
        if ((rc = chan_read_all(ch, hdr, 4)))
            break;
        uint32_t len = get32(hdr);
        if (len < 5 || len > RAW_REPLY_MAX) {
            rc = LIBSSH2_ERROR_SFTP_PROTOCOL;
            break;
        }
        reply = malloc(len);
        if (!reply) {
            rc = LIBSSH2_ERROR_ALLOC;
            break;
        }
        if ((rc = chan_read_all(ch, reply, len)))
            break;
        if (reply[0] == FXP_STATUS && len >= 9 && get32(reply + 1) == id) {
            uint32_t st = get32(reply + 5);
            free(reply);
            return st == LIBSSH2_FX_OK ? 0 : SFTP_RC_STATUS(st);
        }
        free(reply);
        reply = NULL;
    }
    free(reply);
    /* The channel is in an unknown state now. */
    sftp_conn_retire(call);
    return rc == LIBSSH2_ERROR_SFTP_PROTOCOL ? LIBSSH2_ERROR_PROTO : rc;
}

static int plain_rename(sftp_call *call, const char *from, const char *to) {
    int rc = libssh2_sftp_rename_ex(
        call->sftp, from, (unsigned)strlen(from), to, (unsigned)strlen(to),
        LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE);
    return rc ? sftp_rc(call, rc) : 0;
}

int sftp_rename(sftp_call *call, const char *from, const char *to,
                int replace) {
    if (!replace)
        return plain_rename(call, from, to);
    if (!call->conn->no_posix_rename) {
        int rc = posix_rename(call, from, to);
        if (!SFTP_RC_IS_STATUS(rc) ||
            SFTP_RC_TO_STATUS(rc) != LIBSSH2_FX_OP_UNSUPPORTED)
            return rc;
        call->conn->no_posix_rename = 1;
    }
    /* Without posix-rename: the old target is moved aside, the new one put
     * in its place, the old one removed. A reader may find no file for a
     * moment, never a partial one. */
    int rc = plain_rename(call, from, to);
    if (rc == 0 || !SFTP_RC_IS_STATUS(rc))
        return rc;
    LIBSSH2_SFTP_ATTRIBUTES a;
    if (sftp_stat(call, to, 1, &a))
        return rc; /* the target does not exist: the first error stands */
    char aside[SFTP_PATH_MAX], parent[SFTP_PATH_MAX], hex[17];
    sftp_random_hex(hex, 8);
    char name[SFTP_PATH_MAX];
    snprintf(name, sizeof(name), ".%s.ferry-old-%s", sftp_path_name(to), hex);
    if (sftp_path_parent(to, parent, sizeof(parent)) ||
        sftp_path_child(parent, name, strlen(name), aside, sizeof(aside)))
        return rc;
    if ((rc = plain_rename(call, to, aside)))
        return rc;
    if ((rc = plain_rename(call, from, to))) {
        plain_rename(call, aside, to); /* put the old one back */
        return rc;
    }
    libssh2_sftp_unlink_ex(call->sftp, aside, (unsigned)strlen(aside));
    return 0;
}

/* Whether path is a directory. When it is not, *rc_out is the stat's
 * failure, or SSH_FX_NOT_A_DIRECTORY for something else by that name. */
