/*
 * Execution ids: prefix + "_" + 26 characters of Crockford base32 (lower
 * case, as TypeID writes them): 48 bits of milliseconds since the epoch, then
 * 80 random bits. Ids made in different milliseconds sort by time as plain
 * strings. Within one millisecond the order is random: a monotonic counter
 * (ULID's "monotonic mode") would be process state that every forked worker
 * inherits, and two workers would then count up from the same value.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define ID_CHARS 26

static const char crockford[] = "0123456789abcdefghjkmnpqrstvwxyz";

int64_t store_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int read_urandom(unsigned char *buf, size_t len) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    return got == len ? 0 : -1;
}

static void random_bytes(unsigned char *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == len || read_urandom(buf, len) == 0)
        return;
    /* No kernel randomness at all (a seccomp sandbox, say): ids must still
     * differ, so mix the clock, the pid and the stack address. */
    uint64_t x = (uint64_t)store_now_us() ^ ((uint64_t)getpid() << 32) ^
                 (uint64_t)(uintptr_t)&x;
    for (size_t i = 0; i < len; i++) {
        x += 0x9e3779b97f4a7c15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        buf[i] = (unsigned char)(z ^ (z >> 31));
    }
}

void store_new_id(const char *prefix, char *buf, size_t buflen) {
    if (!buf || buflen == 0)
        return;
    size_t plen = prefix ? strlen(prefix) : 0;
    size_t need = plen + (plen ? 1 : 0) + ID_CHARS + 1;
    if (buflen < need) {
        buf[0] = '\0';
        return;
    }

    /* 16 bytes, big-endian: 6 of time, 10 of randomness. */
    unsigned char raw[16];
    uint64_t ms = (uint64_t)(store_now_us() / 1000);
    for (int i = 0; i < 6; i++)
        raw[i] = (unsigned char)(ms >> (8 * (5 - i)));
    random_bytes(raw + 6, 10);

    char *p = buf;
    if (plen) {
        memcpy(p, prefix, plen);
        p += plen;
        *p++ = '_';
    }
    /* 128 bits in 26 five-bit groups: the first group carries only the top
     * 3 bits (130 - 128 = 2 leading zero bits). */
    for (int i = 0; i < ID_CHARS; i++) {
        int bit = 128 - 5 * (ID_CHARS - i); /* first bit of this group */
        unsigned v = 0;
        for (int b = bit; b < bit + 5; b++) {
            v <<= 1;
            if (b >= 0)
                v |= (raw[b / 8] >> (7 - b % 8)) & 1u;
        }
        *p++ = crockford[v];
    }
    *p = '\0';
}

char *store_format_time(int64_t us, char *buf, size_t buflen) {
    int64_t sec = us / 1000000, rem = us % 1000000;
    if (rem < 0) {
        sec -= 1;
        rem += 1000000;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return NULL;
    size_t n = strftime(buf, buflen, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0)
        return NULL;
    snprintf(buf + n, buflen - n, ".%03dZ", (int)(rem / 1000));
    return buf;
}

json_t *store_time_json(int64_t us) {
    char buf[64];
    return store_format_time(us, buf, sizeof(buf)) ? json_string(buf)
                                                   : json_null();
}
