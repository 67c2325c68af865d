/*
 * An open-loop HTTP/1.1 load generator for the serve benchmark: sends one
 * POST every 1/RATE seconds for DURATION seconds, on a schedule fixed in
 * advance, whatever the server's answers take. A request whose time has come
 * goes out on an idle keep-alive connection, or on a new one (up to
 * --max-conns); when none can be had it waits, and its latency still counts
 * from its scheduled time, so a slow server cannot hide its queue by slowing
 * the client down (no coordinated omission).
 *
 * One thread, epoll. Prints one line of key=value pairs:
 *   sent, ok (2xx), non2xx, errors (no answer: connection lost, timeout),
 *   offered_rate, send_rate (what went out), lag_p99_ms (send time minus
 *   scheduled time), resp_p50_ms/resp_p99_ms/resp_max_ms (answer time minus
 *   scheduled time), first_us/last_us (wall clock, microseconds since the
 *   epoch, of the first and last scheduled send), conns (connections opened),
 *   cpu_ms (this process). The first 10 requests that got no answer are
 *   told on stderr, each with why (the server closed the connection, an
 *   error, no answer 30 s after the last request).
 *
 * usage: serve_load --port P --path PATH [--host 127.0.0.1] [--token T]
 *                   [--rate R] [--duration S] [--body TEXT]
 *                   [--header 'Name: value'] [--conns N] [--max-conns M]
 * --header adds one line to every request (the webhook benchmark's
 * signature).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt,
                                                                ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("serve_load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct conn {
    int fd;
    int busy;    /* a request is out on it */
    long req;    /* which one */
    size_t woff; /* bytes of the request written */
    char rbuf[8192];
    size_t rlen;
    int64_t idle_since; /* mono_ns() when its last answer came */
    int64_t idle_ns;    /* how long it was idle before its request went */
    long answers;       /* answers read on it */
} conn;

/* `ferry serve` closes a keep-alive connection idle for 5 s. A request
 * sent on one just as it does gets no answer, as with any HTTP/1.1 client;
 * the requests go out on the most recently used connection first, so a few
 * can stay idle that long in a run. Those are closed instead of reused, as
 * HTTP clients' idle-connection timeouts do. */
#define IDLE_REUSE_NS 2000000000LL

static struct sockaddr_in addr;
static int ep;
static conn **conns;
static size_t nconns, maxconns, opened;
static conn **idle;
static size_t nidle;

static const char *req_text;
static size_t req_len;

static int64_t *sched, *sent_at, *done_at;
static short *status;
static long total;

static conn *conn_open(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
        close(fd);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->req = -1;
    c->idle_since = mono_ns();
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    conns[nconns++] = c;
    opened++;
    return c;
}

static long lost_told;

/* Closes c; a request out on it gets no answer, and the first few such
 * are told on stderr with why (the server closed the connection, an
 * error), so that a lost request can be told from a slow one. */
static void conn_drop(conn *c, const char *why) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    for (size_t i = 0; i < nconns; i++)
        if (conns[i] == c) {
            conns[i] = conns[--nconns];
            break;
        }
    for (size_t i = 0; i < nidle; i++)
        if (idle[i] == c) {
            idle[i] = idle[--nidle];
            break;
        }
    if (c->busy && c->req >= 0 && !done_at[c->req]) {
        done_at[c->req] = mono_ns();
        status[c->req] = -1; /* lost */
        if (lost_told++ < 10)
            fprintf(stderr,
                    "serve_load: request %ld got no answer: %s, after %ld "
                    "answers on its connection, idle %.1f ms before it\n",
                    c->req, why, c->answers, (double)c->idle_ns / 1e6);
    }
    free(c);
}

/* Writes what is left of the request; 0 when it is all out. */
static int conn_flush(conn *c) {
    while (c->woff < req_len) {
        ssize_t k =
            send(c->fd, req_text + c->woff, req_len - c->woff, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EAGAIN) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
                                         .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                return 1;
            }
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->woff += (size_t)k;
    }
    return 0;
}

static int conn_send(conn *c, long i) {
    c->busy = 1;
    c->req = i;
    c->woff = 0;
    c->rlen = 0;
    sent_at[i] = mono_ns();
    c->idle_ns = sent_at[i] - c->idle_since;
    return conn_flush(c) < 0 ? -1 : 0;
}

static int ci_prefix(const char *s, const char *end, const char *p) {
    size_t n = strlen(p);
    if ((size_t)(end - s) < n)
        return 0;
    return strncasecmp(s, p, n) == 0;
}

/* Parses complete responses in c->rbuf. Returns 0, or -1 if the
 * connection must go (closed by the server, garbage). */
static int conn_parse(conn *c) {
    for (;;) {
        char *hend = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
        if (!hend)
            return c->rlen == sizeof(c->rbuf) ? -1 : 0;
        size_t hlen = (size_t)(hend - c->rbuf) + 4;
        if (c->rlen < 12 || memcmp(c->rbuf, "HTTP/1.", 7))
            return -1;
        int code = atoi(c->rbuf + 9);
        long clen = 0;
        int close_after = 0;
        for (char *p = c->rbuf; p < hend;) {
            char *nl = memchr(p, '\n', (size_t)(hend - p));
            if (!nl)
                break;
            p = nl + 1;
            if (ci_prefix(p, hend, "content-length:"))
                clen = atol(p + 15);
            else if (ci_prefix(p, hend, "connection:") &&
                     memmem(p, (size_t)(hend - p), "close", 5))
                close_after = 1;
        }
        if (c->rlen < hlen + (size_t)clen)
            return 0;
        if (c->busy && c->req >= 0) {
            done_at[c->req] = mono_ns();
            status[c->req] = (short)code;
            c->busy = 0;
            c->req = -1;
            c->idle_since = mono_ns();
            c->answers++;
            idle[nidle++] = c;
        }
        memmove(c->rbuf, c->rbuf + hlen + clen, c->rlen - hlen - (size_t)clen);
        c->rlen -= hlen + (size_t)clen;
        if (close_after)
            return -1;
        if (!c->rlen)
            return 0;
    }
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(int64_t *v, long n, double p) {
    if (n <= 0)
        return 0;
    long k = (long)(p * (double)(n - 1) + 0.5);
    return (double)v[k] / 1e6;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *path = NULL, *token = NULL;
    const char *header = NULL;
    const char *body = "{}";
    int port = 0;
    double rate = 1000, duration = 5;
    size_t initial = 16;
    maxconns = 256;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            die("%s needs a value", a);
        if (!strcmp(a, "--host"))
            host = v;
        else if (!strcmp(a, "--port"))
            port = atoi(v);
        else if (!strcmp(a, "--path"))
            path = v;
        else if (!strcmp(a, "--token"))
            token = v;
        else if (!strcmp(a, "--rate"))
            rate = atof(v);
        else if (!strcmp(a, "--duration"))
            duration = atof(v);
        else if (!strcmp(a, "--body"))
            body = v;
        else if (!strcmp(a, "--header")) {
            if (strpbrk(v, "\r\n") || !strchr(v, ':'))
                die("--header takes one line, 'Name: value'");
            header = v;
        } else if (!strcmp(a, "--conns"))
            initial = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--max-conns"))
            maxconns = strtoul(v, NULL, 10);
        else
            die("unknown option %s", a);
        i++;
    }
    if (!port || !path || rate <= 0 || duration <= 0 || maxconns == 0)
        die("usage: serve_load --port P --path PATH [--host H] [--token T] "
            "[--rate R] [--duration S] [--body TEXT] [--header 'N: V'] "
            "[--conns N] [--max-conns M]");
    if (initial > maxconns)
        initial = maxconns;

    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        die("--host must be an IPv4 address");

    char *rq = NULL;
    int rn =
        asprintf(&rq,
                 "POST %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s%s%s%s"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 path, host, port, token ? "Authorization: Bearer " : "",
                 token ? token : "", token ? "\r\n" : "", header ? header : "",
                 header ? "\r\n" : "", strlen(body), body);
    if (rn < 0)
        die("out of memory");
    req_text = rq;
    req_len = (size_t)rn;

    total = (long)(rate * duration + 0.5);
    sched = calloc((size_t)total, sizeof(*sched));
    sent_at = calloc((size_t)total, sizeof(*sent_at));
    done_at = calloc((size_t)total, sizeof(*done_at));
    status = calloc((size_t)total, sizeof(*status));
    conns = calloc(maxconns, sizeof(*conns));
    idle = calloc(maxconns, sizeof(*idle));
    if (!sched || !sent_at || !done_at || !status || !conns || !idle)
        die("out of memory");
    ep = epoll_create1(EPOLL_CLOEXEC);
    for (size_t i = 0; i < initial; i++) {
        conn *c = conn_open();
        if (!c)
            die("cannot connect to %s:%d: %s", host, port, strerror(errno));
        idle[nidle++] = c;
    }

    int64_t start = mono_ns() + 20000000; /* 20 ms from now */
    int64_t start_real = real_ns() + (start - mono_ns());
    double gap = 1e9 / rate;
    for (long i = 0; i < total; i++)
        sched[i] = start + (int64_t)((double)i * gap);
    int64_t give_up = sched[total - 1] + 30000000000LL;

    long next = 0, answered = 0;
    struct epoll_event evs[256];
    for (;;) {
        int64_t now = mono_ns();
        while (next < total && sched[next] <= now) {
            conn *c = NULL;
            while (!c && nidle) {
                c = idle[--nidle];
                if (now - c->idle_since > IDLE_REUSE_NS) {
                    conn_drop(c, "idle too long");
                    c = NULL;
                }
            }
            if (!c && nconns < maxconns)
                c = conn_open();
            if (!c)
                break; /* waits for a connection; its latency keeps counting */
            if (conn_send(c, next))
                conn_drop(c, strerror(errno));
            next++;
        }
        answered = 0;
        if (next == total) {
            for (long i = 0; i < total; i++)
                answered += done_at[i] != 0;
            if (answered == total || now > give_up)
                break;
        }
        int64_t wait_ns = next < total ? sched[next] - mono_ns() : 50000000;
        if (next < total && !nidle && nconns >= maxconns)
            wait_ns = 50000000; /* until an answer frees a connection */
        if (wait_ns < 0)
            wait_ns = 0;
        struct timespec ts = {wait_ns / 1000000000, wait_ns % 1000000000};
        int k = epoll_pwait2(ep, evs, 256, &ts, NULL);
        for (int e = 0; e < k; e++) {
            conn *c = evs[e].data.ptr;
            if (evs[e].events & EPOLLOUT) {
                int r = conn_flush(c);
                if (r < 0) {
                    conn_drop(c, strerror(errno));
                    continue;
                }
                if (r == 0) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                const char *gone = NULL;
                for (;;) {
                    ssize_t n = recv(c->fd, c->rbuf + c->rlen,
                                     sizeof(c->rbuf) - c->rlen, 0);
                    if (n > 0) {
                        c->rlen += (size_t)n;
                        if (conn_parse(c)) {
                            gone = "closed after an answer, or not HTTP";
                            break;
                        }
                        continue;
                    }
                    if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                    gone = n ? strerror(errno) : "closed by the server";
                    break;
                }
                if (gone)
                    conn_drop(c, gone);
            }
        }
    }

    long ok = 0, non2xx = 0, errors = 0;
    int64_t *resp = malloc((size_t)total * sizeof(*resp));
    int64_t *lag = malloc((size_t)total * sizeof(*lag));
    long nresp = 0, nlag = 0;
    for (long i = 0; i < total; i++) {
        if (sent_at[i])
            lag[nlag++] = sent_at[i] - sched[i];
        if (!done_at[i] || status[i] < 0) {
            errors++;
            continue;
        }
        if (status[i] >= 200 && status[i] < 300)
            ok++;
        else
            non2xx++;
        resp[nresp++] = done_at[i] - sched[i];
    }
    qsort(resp, (size_t)nresp, sizeof(*resp), cmp64);
    qsort(lag, (size_t)nlag, sizeof(*lag), cmp64);
    int64_t last_sent = 0;
    for (long i = 0; i < total; i++)
        if (sent_at[i] > last_sent)
            last_sent = sent_at[i];
    double send_span = (double)(last_sent - sent_at[0]) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_ms =
        ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) * 1e3 +
        ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e3;
    printf(
        "sent=%ld ok=%ld non2xx=%ld errors=%ld offered_rate=%.0f "
        "send_rate=%.0f lag_p99_ms=%.2f resp_p50_ms=%.2f resp_p99_ms=%.2f "
        "resp_max_ms=%.2f first_us=%lld last_us=%lld conns=%zu cpu_ms=%.0f\n",
        next, ok, non2xx, errors, rate,
        send_span > 0 ? (double)(next - 1) / send_span : 0,
        pct(lag, nlag, 0.99), pct(resp, nresp, 0.50), pct(resp, nresp, 0.99),
        nresp ? (double)resp[nresp - 1] / 1e6 : 0,
        (long long)(start_real / 1000),
        (long long)((start_real + (sched[total - 1] - start)) / 1000), opened,
        cpu_ms);
    for (size_t i = nconns; i-- > 0;)
        conn_drop(conns[i], "no answer 30 s after the last request");
    free(resp);
    free(lag);
    free(rq);
    return 0;
}
