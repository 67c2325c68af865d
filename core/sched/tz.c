/*
 * Time zones from TZif files (RFC 8536), looked up without touching the
 * process's TZ: the 64-bit data of version 2+ files (the 32-bit data of
 * version 1 files), and the footer's POSIX TZ string for instants after the
 * last transition, with the RFC's extensions (transition times from -167 to
 * 167 hours, DST all year).
 */
#include "civil.h"
#include "sched.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_ABBR_MAX 16
/* A zone file is a few kilobytes; anything this large is not one. */
#define TZ_FILE_MAX (1 << 20)
/* Instants further out are clamped before calendar arithmetic (about
 * 300,000 years), which keeps every sum below inside int64_t. */
#define TZ_CLAMP ((int64_t)10000000000000)

typedef struct tz_date {
    char kind; /* 'J': Jn, 'D': n, 'M': Mm.w.d */
    int m, w, d, n;
    int32_t time; /* seconds after local midnight, -167h..167h */
} tz_date;

/* A POSIX TZ string: "EST5EDT,M3.2.0,M11.1.0". Offsets east of UTC. */
typedef struct tz_rule {
    int32_t std_off, dst_off;
    int has_dst;
    tz_date start, end;
    char std_abbr[TZ_ABBR_MAX], dst_abbr[TZ_ABBR_MAX];
} tz_rule;

typedef struct tz_type {
    int32_t utoff;
    uint8_t isdst;
    uint8_t abbr; /* index into chars */
} tz_type;

struct sched_zone {
    char *name;
    int64_t *at;  /* transition instants, ascending */
    uint8_t *idx; /* type in effect from at[i] */
    size_t n;
    tz_type *types;
    size_t ntypes;
    char *chars;
    int has_rule; /* a non-empty footer */
    tz_rule rule;
};

static char *fmt_err(const char *fmt, ...) {
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static void set_err(char **err, char *msg) {
    if (err)
        *err = msg;
    else
        free(msg);
}

static int64_t clamp(int64_t t) {
    return t < -TZ_CLAMP ? -TZ_CLAMP : t > TZ_CLAMP ? TZ_CLAMP : t;
}

/* ---- POSIX TZ strings ---- */

static int parse_abbr(const char **sp, char *out) {
    const char *s = *sp;
    size_t len = 0;
    if (*s == '<') {
        s++;
        while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
               (*s >= '0' && *s <= '9') || *s == '+' || *s == '-') {
            if (len + 1 >= TZ_ABBR_MAX)
                return -1;
            out[len++] = *s++;
        }
        if (*s != '>')
            return -1;
        s++;
    } else {
        while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) {
            if (len + 1 >= TZ_ABBR_MAX)
                return -1;
            out[len++] = *s++;
        }
    }
    if (len < 3)
        return -1;
    out[len] = 0;
    *sp = s;
    return 0;
}

static int parse_num(const char **sp, int min_digits, int max_digits, int max,
                     int *out) {
    const char *s = *sp;
    int v = 0, k = 0;
    while (*s >= '0' && *s <= '9' && k < max_digits) {
        v = v * 10 + (*s++ - '0');
        k++;
    }
    if (k < min_digits || v > max)
        return -1;
    *out = v;
    *sp = s;
    return 0;
}

/* [+|-]hh[:mm[:ss]] with hh up to max_h; the value as written (POSIX
 * offsets are west of UTC, rule times are after midnight). */
static int parse_hms(const char **sp, int max_h, int32_t *out) {
    const char *s = *sp;
    int sign = 1, h, m = 0, sec = 0;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (parse_num(&s, 1, 3, max_h, &h))
        return -1;
    if (*s == ':') {
        s++;
        if (parse_num(&s, 2, 2, 59, &m))
            return -1;
        if (*s == ':') {
            s++;
            if (parse_num(&s, 2, 2, 59, &sec))
                return -1;
        }
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    *sp = s;
    return 0;
}

static int parse_date(const char **sp, tz_date *d) {
    const char *s = *sp;
    memset(d, 0, sizeof(*d));
    if (*s == 'J') {
        s++;
        d->kind = 'J';
        if (parse_num(&s, 1, 3, 365, &d->n) || d->n < 1)
            return -1;
    } else if (*s == 'M') {
        s++;
        d->kind = 'M';
        if (parse_num(&s, 1, 2, 12, &d->m) || d->m < 1 || *s++ != '.' ||
            parse_num(&s, 1, 1, 5, &d->w) || d->w < 1 || *s++ != '.' ||
            parse_num(&s, 1, 1, 6, &d->d))
            return -1;
    } else {
        d->kind = 'D';
        if (parse_num(&s, 1, 3, 365, &d->n))
            return -1;
    }
    d->time = 2 * 3600;
    if (*s == '/') {
        s++;
        if (parse_hms(&s, 167, &d->time))
            return -1;
    }
    *sp = s;
    return 0;
}

static int parse_rule(const char *s, tz_rule *r) {
    int32_t off;
    memset(r, 0, sizeof(*r));
    if (parse_abbr(&s, r->std_abbr) || parse_hms(&s, 24, &off))
        return -1;
    r->std_off = -off;
    r->dst_off = r->std_off;
    if (!*s)
        return 0;
    if (parse_abbr(&s, r->dst_abbr))
        return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*s && *s != ',') {
        if (parse_hms(&s, 24, &off))
            return -1;
        r->dst_off = -off;
    }
    if (!*s) {
        /* No rule: POSIX leaves it to the implementation; glibc and most
         * others take the US rule. TZif footers always carry one. */
        r->start = (tz_date){'M', 3, 2, 0, 0, 2 * 3600};
        r->end = (tz_date){'M', 11, 1, 0, 0, 2 * 3600};
        return 0;
    }
    if (*s++ != ',' || parse_date(&s, &r->start) || *s++ != ',' ||
        parse_date(&s, &r->end) || *s)
        return -1;
    return 0;
}

/* The local time (as if UTC) at which d happens in year y. */
static int64_t rule_local(const tz_date *d, int64_t y) {
    int64_t day;
    if (d->kind == 'J') {
        day = civil_days(y, 1, 1) + d->n - 1 +
              (civil_is_leap(y) && d->n >= 60 ? 1 : 0);
    } else if (d->kind == 'D') {
        day = civil_days(y, 1, 1) + d->n;
    } else {
        int64_t first = civil_days(y, d->m, 1);
        int k = (d->d - civil_weekday(first) + 7) % 7 + 7 * (d->w - 1);
        int len = civil_month_days(y, d->m);
        while (k >= len)
            k -= 7;
        day = first + k;
    }
    return day * 86400 + d->time;
}

static int rule_lookup(const tz_rule *r, int64_t t, int *isdst,
                       const char **abbr) {
    int dst = 0;
    if (r->has_dst) {
        int64_t y, best = INT64_MIN;
        int m, d;
        civil_from_days(civil_floor_div(t, 86400), &y, &m, &d);
        /* The latest change at or before t. Two years back covers start
         * and end times up to 167 hours past their day; at a tie the start
         * wins, which makes "0/0,J365/25" DST all year (RFC 8536 3.3.1). */
        for (int64_t yy = y - 2; yy <= y + 1; yy++) {
            int64_t s = rule_local(&r->start, yy) - r->std_off;
            int64_t e = rule_local(&r->end, yy) - r->dst_off;
            if (e <= t && e > best) {
                best = e;
                dst = 0;
            }
            if (s <= t && s >= best) {
                best = s;
                dst = 1;
            }
        }
    }
    if (isdst)
        *isdst = dst;
    if (abbr)
        *abbr = dst ? r->dst_abbr : r->std_abbr;
    return dst ? r->dst_off : r->std_off;
}

/* ---- lookups ---- */

const char *sched_zone_name(const sched_zone *z) {
    return z->name;
}

int sched_zone_lookup(const sched_zone *z, int64_t t, int *isdst,
                      const char **abbrev) {
    const tz_type *ty;
    t = clamp(t);
    if (z->has_rule && (z->n == 0 || t > z->at[z->n - 1]))
        return rule_lookup(&z->rule, t, isdst, abbrev);
    if (z->n == 0 || t < z->at[0]) {
        ty = &z->types[0];
    } else {
        size_t lo = 0, hi = z->n; /* last i with at[i] <= t */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (z->at[mid] <= t)
                lo = mid;
            else
                hi = mid;
        }
        ty = &z->types[z->idx[lo]];
    }
    if (isdst)
        *isdst = ty->isdst;
    if (abbrev)
        *abbrev = z->chars + ty->abbr;
    return ty->utoff;
}

int sched_zone_offset(const sched_zone *z, int64_t utc_s) {
    return sched_zone_lookup(z, utc_s, NULL, NULL);
}

int sched_zone_to_utc(const sched_zone *z, int64_t local_s, int64_t out[2]) {
    int64_t L = clamp(local_s);
    /* Every offset in effect within two days either side is a candidate:
     * an instant t = L - off is a preimage when off is in effect at t. */
    static const int64_t probe[] = {-2 * 86400, -86400, 0, 86400, 2 * 86400};
    int32_t offs[5];
    int64_t found[5];
    int nf = 0, no = 0;
    int32_t lo_off = INT32_MAX, hi_off = INT32_MIN;
    for (size_t i = 0; i < sizeof(probe) / sizeof(*probe); i++) {
        int32_t o = sched_zone_offset(z, L + probe[i]);
        int dup = 0;
        for (int k = 0; k < no; k++)
            dup |= offs[k] == o;
        if (dup)
            continue;
        offs[no++] = o;
        lo_off = o < lo_off ? o : lo_off;
        hi_off = o > hi_off ? o : hi_off;
        if (sched_zone_offset(z, L - o) == o)
            found[nf++] = L - o;
    }
    if (nf > 0) {
        int64_t a = found[0], b = found[0];
        for (int k = 1; k < nf; k++) {
            a = found[k] < a ? found[k] : a;
            b = found[k] > b ? found[k] : b;
        }
        out[0] = a;
        out[1] = b;
        return a == b ? 1 : 2;
    }
    /* A gap: local time jumps over L. The first instant after it is the
     * first t whose local time is past L, between L - hi_off (local time
     * not past L) and L - lo_off (past it). */
    int64_t lo = L - hi_off, hi = L - lo_off;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (mid + sched_zone_offset(z, mid) > L)
            hi = mid;
        else
            lo = mid;
    }
    out[0] = hi;
    out[1] = hi;
    return 0;
}

/* ---- TZif ---- */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int64_t be64(const uint8_t *p) {
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
} tzif_counts;

static int read_header(const uint8_t *p, size_t size, char *version,
                       tzif_counts *c) {
    if (size < 44 || memcmp(p, "TZif", 4))
        return -1;
    *version = (char)p[4];
    if (*version != 0 && *version != '2' && *version != '3' && *version != '4')
        return -1;
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    return 0;
}

static uint64_t block_size(const tzif_counts *c, int tsize) {
    return (uint64_t)c->time * (uint64_t)(tsize + 1) + (uint64_t)c->type * 6 +
           c->chars + (uint64_t)c->leap * (uint64_t)(tsize + 4) + c->isstd +
           c->isut;
}

sched_zone *sched_zone_from_tzif(const char *name, const uint8_t *data,
                                 size_t size, char **err) {
    tzif_counts c;
    char version;
    const char *why = "not a TZif file";
    sched_zone *z = NULL;
    if (read_header(data, size, &version, &c))
        goto bad;
    int tsize = 4;
    size_t off = 44;
    if (version != 0) {
        uint64_t skip = block_size(&c, 4);
        char v2;
        if (skip > size - off ||
            read_header(data + off + skip, size - off - (size_t)skip, &v2,
                        &c)) {
            why = "truncated";
            goto bad;
        }
        off += (size_t)skip + 44;
        tsize = 8;
    }
    why = "malformed header";
    if (c.type == 0 || c.type > 256 || c.chars == 0 ||
        (c.isstd && c.isstd != c.type) || (c.isut && c.isut != c.type))
        goto bad;
    if (c.leap) {
        why = "leap second records are not supported (use a zone outside "
              "right/)";
        goto bad;
    }
    if (block_size(&c, tsize) > size - off) {
        why = "truncated";
        goto bad;
    }
    z = calloc(1, sizeof(*z));
    if (!z)
        goto oom;
    z->n = c.time;
    z->ntypes = c.type;
    z->name = strdup(name ? name : "");
    z->at = malloc((c.time ? c.time : 1) * sizeof(*z->at));
    z->idx = malloc(c.time ? c.time : 1);
    z->types = malloc(c.type * sizeof(*z->types));
    z->chars = malloc((size_t)c.chars + 1);
    if (!z->name || !z->at || !z->idx || !z->types || !z->chars)
        goto oom;
    const uint8_t *p = data + off;
    why = "transition times are not in ascending order";
    for (size_t i = 0; i < z->n; i++, p += tsize) {
        z->at[i] = tsize == 8 ? be64(p) : (int64_t)(int32_t)be32(p);
        if (i && z->at[i] <= z->at[i - 1])
            goto bad;
    }
    why = "transition names a missing type";
    for (size_t i = 0; i < z->n; i++, p++) {
        if (*p >= c.type)
            goto bad;
        z->idx[i] = *p;
    }
    const uint8_t *types = p;
    p += (size_t)c.type * 6;
    memcpy(z->chars, p, c.chars);
    z->chars[c.chars] = 0;
    p += c.chars;
    for (size_t i = 0; i < z->ntypes; i++) {
        const uint8_t *t = types + i * 6;
        int32_t utoff = (int32_t)be32(t);
        why = "a UTC offset is out of range";
        if (utoff < -89999 || utoff > 93599)
            goto bad;
        why = "a type's DST flag or abbreviation is malformed";
        if (t[4] > 1 || t[5] >= c.chars)
            goto bad;
        /* The abbreviation must end inside the characters given. */
        if (!memchr(z->chars + t[5], 0, c.chars - t[5]))
            goto bad;
        z->types[i] = (tz_type){utoff, t[4], t[5]};
    }
    p += c.isstd + c.isut;
    if (version != 0) {
        const uint8_t *end = data + size;
        why = "missing footer";
        if (p >= end || *p != '\n')
            goto bad;
        const uint8_t *nl = memchr(p + 1, '\n', (size_t)(end - p - 1));
        if (!nl)
            goto bad;
        size_t len = (size_t)(nl - p - 1);
        if (len > 0) {
            char buf[128];
            why = "the footer's TZ string is malformed";
            if (len >= sizeof(buf))
                goto bad;
            memcpy(buf, p + 1, len);
            buf[len] = 0;
            if (memchr(buf, 0, len) || parse_rule(buf, &z->rule))
                goto bad;
            z->has_rule = 1;
        }
    }
    return z;
oom:
    why = "out of memory";
bad:
    set_err(err, fmt_err("time zone '%s': %s", name ? name : "", why));
    sched_zone_free(z);
    return NULL;
}

void sched_zone_free(sched_zone *z) {
    if (!z)
        return;
    free(z->name);
    free(z->at);
    free(z->idx);
    free(z->types);
    free(z->chars);
    free(z);
}

/* ---- loading and the cache ---- */

static int valid_name(const char *s) {
    size_t len = strlen(s);
    if (len == 0 || len > 255 || s[0] == '/' || s[len - 1] == '/' ||
        strstr(s, "..") || strstr(s, "//"))
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || *p == '_' || *p == '+' || *p == '-' ||
              *p == '/'))
            return 0;
    return 1;
}

static sched_zone *make_utc(void) {
    sched_zone *z = calloc(1, sizeof(*z));
    if (!z)
        return NULL;
    z->name = strdup("UTC");
    z->types = calloc(1, sizeof(*z->types));
    z->chars = strdup("UTC");
    z->ntypes = 1;
    if (!z->name || !z->types || !z->chars) {
        sched_zone_free(z);
        return NULL;
    }
    return z;
}

static sched_zone *read_zone(const char *name, char **err) {
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    char *path = fmt_err("%s/%s", dir, name);
    if (!path) {
        set_err(err, fmt_err("out of memory"));
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        int e = fd < 0 ? errno : 0;
        if (fd >= 0)
            close(fd);
        if (e && e != ENOENT && e != ENOTDIR)
            set_err(err, fmt_err("time zone '%s' cannot be read from %s: %s",
                                 name, dir, strerror(e)));
        else
            set_err(err, fmt_err("unknown time zone '%s'", name));
        return NULL;
    }
    if (sb.st_size > TZ_FILE_MAX) {
        close(fd);
        set_err(err, fmt_err("time zone '%s': not a TZif file", name));
        return NULL;
    }
    size_t size = (size_t)sb.st_size, got = 0;
    uint8_t *buf = malloc(size ? size : 1);
    while (buf && got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf) {
        set_err(err, fmt_err("out of memory"));
        return NULL;
    }
    sched_zone *z = sched_zone_from_tzif(name, buf, got, err);
    free(buf);
    return z;
}

typedef struct zone_cache {
    sched_zone **items;
    size_t n, cap;
} zone_cache;

static zone_cache cache;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

const sched_zone *sched_zone_load(const char *name, char **err) {
    if (!name || !valid_name(name)) {
        set_err(err, fmt_err("'%s' is not a time zone name (IANA names look "
                             "like America/Chicago)",
                             name ? name : "(null)"));
        return NULL;
    }
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < cache.n; i++) {
        if (!strcmp(cache.items[i]->name, name)) {
            sched_zone *z = cache.items[i];
            pthread_mutex_unlock(&cache_lock);
            return z;
        }
    }
    /* Read under the lock: a few kilobytes, once per name. */
    sched_zone *z = NULL;
    if (strcmp(name, "UTC"))
        z = read_zone(name, err);
    else if (!(z = make_utc()))
        set_err(err, fmt_err("out of memory"));
    if (z && cache.n == cache.cap) {
        size_t cap = cache.cap ? cache.cap * 2 : 16;
        sched_zone **items = realloc(cache.items, cap * sizeof(*items));
        if (!items) {
            sched_zone_free(z);
            z = NULL;
            set_err(err, fmt_err("out of memory"));
        } else {
            cache.items = items;
            cache.cap = cap;
        }
    }
    if (z)
        cache.items[cache.n++] = z;
    pthread_mutex_unlock(&cache_lock);
    return z;
}

void sched_zone_cache_clear(void) {
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < cache.n; i++)
        sched_zone_free(cache.items[i]);
    free(cache.items);
    cache = (zone_cache){0};
    pthread_mutex_unlock(&cache_lock);
}
