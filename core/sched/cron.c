/*
 * Cron expressions: parsing into bit sets, and the first matching local
 * time after a given one. The day fields are folded at parse time into one
 * table of matching days per (month, weekday of the 1st, leap year), so the
 * search jumps month to month and day to day with a few bit operations,
 * and an expression that matches no day at all is refused up front.
 */
#include "civil.h"
#include "sched.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sched_cron {
    uint64_t sec, min;   /* bits 0-59 */
    uint32_t hour;       /* bits 0-23 */
    uint32_t month;      /* bits 1-12 */
    uint32_t dom;        /* bits 1-31 */
    uint32_t dom_last;   /* bit k: L-k */
    uint32_t dom_w;      /* bit d: dW */
    int dom_lw;          /* LW */
    uint32_t dow;        /* bits 0-6 */
    uint32_t dow_last;   /* bit d: dL */
    uint32_t dow_nth[6]; /* [k] bit d: d#k, k 1-5 */
    int dom_star, dow_star;
    /* Matching days (bits 1-31) of month m+1 when its 1st is weekday w,
     * in a leap year or not. */
    uint32_t days[12][7][2];
};

enum field_id { F_SEC, F_MIN, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

typedef struct field_def {
    const char *name;
    int min, max;
} field_def;

static const field_def fields[F_COUNT] = {
    {"seconds", 0, 59},      {"minute", 0, 59}, {"hour", 0, 23},
    {"day-of-month", 1, 31}, {"month", 1, 12},  {"day-of-week", 0, 7},
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr",
                                          "may", "jun", "jul", "aug",
                                          "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed",
                                        "thu", "fri", "sat"};

typedef struct parser {
    sched_cron *c;
    char *err;
} parser;

/* tok (len bytes) quoted for a message: at most 40 bytes, control and
 * non-ASCII bytes as \xNN, so a message stays one printable line. */
static void quote(char *out, size_t n, const char *tok, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len && o + 8 < n; i++) {
        unsigned char ch = (unsigned char)tok[i];
        if (i == 40) {
            o += (size_t)snprintf(out + o, n - o, "...");
            break;
        }
        if (ch < 0x20 || ch >= 0x7f)
            o += (size_t)snprintf(out + o, n - o, "\\x%02x", ch);
        else
            out[o++] = (char)ch;
    }
    out[o] = 0;
}

static int fail(parser *p, int f, const char *tok, size_t len, const char *fmt,
                ...) {
    char q[200], rest[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rest, sizeof(rest), fmt, ap);
    va_end(ap);
    quote(q, sizeof(q), tok, len);
    free(p->err);
    if (f >= 0) {
        if (asprintf(&p->err, "%s: '%s' %s", fields[f].name, q, rest) < 0)
            p->err = NULL;
    } else if (asprintf(&p->err, "'%s' %s", q, rest) < 0) {
        p->err = NULL;
    }
    return -1;
}

static int is_digit(char ch) {
    return ch >= '0' && ch <= '9';
}

static int lower(char ch) {
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

/* A number or a name: the whole of tok[0..len). */
static int parse_value(parser *p, int f, const char *tok, size_t len,
                       int *out) {
    if (len == 0)
        return fail(p, f, tok, len, "is empty");
    if (is_digit(tok[0])) {
        long v = 0;
        for (size_t i = 0; i < len; i++) {
            if (!is_digit(tok[i]))
                return fail(p, f, tok, len, "is not a number");
            if (v < 1000000)
                v = v * 10 + (tok[i] - '0');
        }
        if (v < fields[f].min || v > fields[f].max)
            return fail(p, f, tok, len, "is out of range %d-%d", fields[f].min,
                        fields[f].max);
        *out = (int)v;
        return 0;
    }
    const char *const *names = f == F_MONTH ? month_names
                               : f == F_DOW ? day_names
                                            : NULL;
    int nnames = f == F_MONTH ? 12 : 7;
    if (names && len == 3) {
        for (int i = 0; i < nnames; i++)
            if (lower(tok[0]) == names[i][0] && lower(tok[1]) == names[i][1] &&
                lower(tok[2]) == names[i][2]) {
                *out = f == F_MONTH ? i + 1 : i;
                return 0;
            }
    }
    if (f == F_MONTH)
        return fail(p, f, tok, len,
                    "is not a month number (1-12) or name (jan-dec)");
    if (f == F_DOW)
        return fail(p, f, tok, len,
                    "is not a weekday number (0-7) or name (sun-sat)");
    if (f == F_DOM)
        return fail(p, f, tok, len, "is not a day (1-31, L, L-n, LW or nW)");
    if (len == 1 && (lower(tok[0]) == 'l' || lower(tok[0]) == 'w' ||
                     tok[0] == '?' || tok[0] == '#'))
        return fail(p, f, tok, len,
                    "is only allowed in day-of-month and day-of-week");
    return fail(p, f, tok, len, "is not a number");
}

static void set_bit(sched_cron *c, int f, int v) {
    switch (f) {
    case F_SEC:
        c->sec |= 1ull << v;
        break;
    case F_MIN:
        c->min |= 1ull << v;
        break;
    case F_HOUR:
        c->hour |= 1u << v;
        break;
    case F_DOM:
        c->dom |= 1u << v;
        break;
    case F_MONTH:
        c->month |= 1u << v;
        break;
    default:
        c->dow |= 1u << (v % 7);
        break;
    }
}

/* A small number: the whole of tok[0..len), in [lo, hi]. */
static int parse_small(const char *tok, size_t len, int lo, int hi, int *out) {
    int v = 0;
    if (len == 0 || len > 3)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(tok[i]))
            return -1;
        v = v * 10 + (tok[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* The day-of-month forms L, L-n, LW and nW. Returns 1 if el is one of them
 * (0 if not, -1 on error). */
static int parse_dom_special(parser *p, const char *el, size_t len) {
    sched_cron *c = p->c;
    int last = len >= 1 && lower(el[0]) == 'l';
    int w = len >= 2 && lower(el[len - 1]) == 'w';
    if (!last && !w)
        return 0;
    if (last && len == 1) {
        c->dom_last |= 1u;
        return 1;
    }
    if (last && len == 2 && w) {
        c->dom_lw = 1;
        return 1;
    }
    if (last && len >= 2 && el[1] == '-') {
        int k;
        if (parse_small(el + 2, len - 2, 0, 30, &k))
            return fail(p, F_DOM, el, len,
                        "is malformed: L-n takes n from 0 to 30");
        c->dom_last |= 1u << k;
        return 1;
    }
    if (!last && w) {
        int d;
        for (size_t i = 0; i + 1 < len; i++)
            if (!is_digit(el[i]))
                return fail(p, F_DOM, el, len,
                            "is malformed: W follows one day (15W) or L "
                            "(LW)");
        if (parse_value(p, F_DOM, el, len - 1, &d))
            return -1;
        c->dom_w |= 1u << d;
        return 1;
    }
    return fail(p, F_DOM, el, len, "is malformed (expected L, L-n, LW or nW)");
}

/* The day-of-week forms nL and n#k. Returns 1 if el is one of them. */
static int parse_dow_special(parser *p, const char *el, size_t len) {
    sched_cron *c = p->c;
    const char *hash = memchr(el, '#', len);
    int d;
    if (hash) {
        int k;
        size_t vlen = (size_t)(hash - el);
        if (parse_value(p, F_DOW, el, vlen, &d))
            return -1;
        if (parse_small(hash + 1, len - vlen - 1, 1, 5, &k))
            return fail(p, F_DOW, el, len,
                        "is malformed: n#k takes k from 1 to 5 (5#3 is the "
                        "third Friday)");
        c->dow_nth[k] |= 1u << (d % 7);
        return 1;
    }
    if (len >= 1 && lower(el[len - 1]) == 'l') {
        if (len == 1)
            return fail(p, F_DOW, el, len,
                        "needs a weekday before it (5L is the last Friday)");
        if (parse_value(p, F_DOW, el, len - 1, &d))
            return -1;
        c->dow_last |= 1u << (d % 7);
        return 1;
    }
    return 0;
}

static int parse_element(parser *p, int f, const char *el, size_t len) {
    const field_def *fd = &fields[f];
    if (f == F_DOM || f == F_DOW) {
        int r = f == F_DOM ? parse_dom_special(p, el, len)
                           : parse_dow_special(p, el, len);
        if (r)
            return r < 0 ? -1 : 0;
    }
    const char *slash = memchr(el, '/', len);
    size_t rlen = slash ? (size_t)(slash - el) : len;
    int lo, hi, step = 1;
    if (slash) {
        const char *st = slash + 1;
        size_t slen = len - rlen - 1;
        long v = 0;
        if (slen == 0)
            return fail(p, f, el, len, "is missing a step after '/'");
        for (size_t i = 0; i < slen; i++) {
            if (!is_digit(st[i]))
                return fail(p, f, el, len, "has a step that is not a number");
            if (v < 1000000)
                v = v * 10 + (st[i] - '0');
        }
        int span = (f == F_DOW ? 6 : fd->max) - fd->min + 1;
        if (v < 1 || v > span)
            return fail(p, f, el, len, "has a step out of range 1-%d", span);
        step = (int)v;
    }
    if (rlen == 1 && (el[0] == '*' || el[0] == '?')) {
        if (el[0] == '?' && f != F_DOM && f != F_DOW)
            return fail(p, f, el, len,
                        "is only allowed in day-of-month and day-of-week");
        lo = fd->min;
        hi = f == F_DOW ? 6 : fd->max;
    } else {
        const char *dash = memchr(el, '-', rlen);
        if (dash) {
            size_t alen = (size_t)(dash - el);
            if (parse_value(p, f, el, alen, &lo) ||
                parse_value(p, f, dash + 1, rlen - alen - 1, &hi))
                return -1;
            if (lo > hi)
                return fail(p, f, el, len,
                            "is a range that runs backwards (%d is after %d)",
                            lo, hi);
        } else {
            if (parse_value(p, f, el, rlen, &lo))
                return -1;
            /* "a/n": from a to the end of the field. */
            hi = slash ? (f == F_DOW ? 6 : fd->max) : lo;
            if (hi < lo)
                hi = lo;
        }
    }
    for (int v = lo; v <= hi; v += step)
        set_bit(p->c, f, v);
    return 0;
}

static int parse_field(parser *p, int f, const char *s, size_t len) {
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == ',') {
            if (i == start)
                return fail(p, f, s, len, "has an empty list element");
            if (parse_element(p, f, s + start, i - start))
                return -1;
            start = i + 1;
        }
    }
    if (f == F_DOM)
        p->c->dom_star = s[0] == '*' || s[0] == '?';
    if (f == F_DOW)
        p->c->dow_star = s[0] == '*' || s[0] == '?';
    return 0;
}

/* The matching days of a month of n days whose 1st is weekday w0. */
static uint32_t month_mask(const sched_cron *c, int n, int w0) {
    uint32_t all = (uint32_t)(((1ull << n) - 1) << 1);
    uint32_t dom = c->dom & all, dow = 0;
    int wn = (w0 + n - 1) % 7; /* weekday of the last day */
    for (int k = 0; c->dom_last && k <= 30; k++)
        if ((c->dom_last >> k & 1) && n - k >= 1)
            dom |= 1u << (n - k);
    for (int d = 1; c->dom_w && d <= n; d++) {
        if (!(c->dom_w >> d & 1))
            continue;
        /* The weekday nearest to d without leaving the month. */
        int wd = (w0 + d - 1) % 7, t = d;
        if (wd == 6)
            t = d > 1 ? d - 1 : d + 2;
        else if (wd == 0)
            t = d < n ? d + 1 : d - 2;
        dom |= 1u << t;
    }
    if (c->dom_lw)
        dom |= 1u << (wn == 6 ? n - 1 : wn == 0 ? n - 2 : n);
    for (int d = 1, wd = w0; d <= n; d++, wd = wd == 6 ? 0 : wd + 1)
        if (c->dow >> wd & 1)
            dow |= 1u << d;
    uint32_t nth = 0;
    for (int k = 1; k <= 5; k++)
        nth |= c->dow_nth[k];
    for (int wd = 0; (c->dow_last || nth) && wd < 7; wd++) {
        if (c->dow_last >> wd & 1)
            dow |= 1u << (n - (wn - wd + 7) % 7);
        for (int k = 1; k <= 5; k++) {
            int d = 1 + (wd - w0 + 7) % 7 + 7 * (k - 1);
            if ((c->dow_nth[k] >> wd & 1) && d <= n)
                dow |= 1u << d;
        }
    }
    /* Both restricted: either matches. Otherwise both must, and a field
     * starting with '*' or '?' counts as unrestricted, even with a step
     * after it, as in cronie and robfig/cron. */
    if (c->dom_star || c->dow_star)
        return dom & dow;
    return dom | dow;
}

static const struct {
    const char *name, *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static int is_space(char ch) {
    return ch == ' ' || ch == '\t';
}

sched_cron *sched_cron_parse(const char *expr, char **err) {
    parser p = {0};
    const char *s = expr ? expr : "";
    while (is_space(*s))
        s++;
    size_t len = strlen(s);
    while (len && is_space(s[len - 1]))
        len--;
    if (len == 0) {
        if (err)
            *err = strdup("empty cron expression");
        return NULL;
    }
    if (s[0] == '@') {
        for (size_t i = 0; i < sizeof(macros) / sizeof(*macros); i++) {
            size_t n = strlen(macros[i].name);
            int same = n == len;
            for (size_t k = 0; same && k < n; k++)
                same = lower(s[k]) == macros[i].name[k];
            if (same)
                return sched_cron_parse(macros[i].expr, err);
        }
        fail(&p, -1, s, len,
             "is not a known macro (@yearly @annually @monthly @weekly "
             "@daily @midnight @hourly; for an interval use \"every\")");
        if (err)
            *err = p.err;
        else
            free(p.err);
        return NULL;
    }
    const char *tok[7];
    size_t tlen[7];
    int nf = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && is_space(s[i]))
            i++;
        size_t start = i;
        while (i < len && !is_space(s[i]))
            i++;
        if (nf < 7) {
            tok[nf] = s + start;
            tlen[nf] = i - start;
        }
        nf++;
    }
    if (nf != 5 && nf != 6) {
        if (err && asprintf(err,
                            "expected 5 fields (minute hour day-of-month "
                            "month day-of-week) or 6 (seconds first), got %d",
                            nf) < 0)
            *err = NULL;
        return NULL;
    }
    p.c = calloc(1, sizeof(*p.c));
    if (!p.c) {
        if (err)
            *err = strdup("out of memory");
        return NULL;
    }
    int first = nf == 6 ? F_SEC : F_MIN;
    if (nf == 5)
        p.c->sec = 1;
    for (int f = first, i = 0; f < F_COUNT; f++, i++) {
        if (parse_field(&p, f, tok[i], tlen[i]))
            goto bad;
    }
    int any = 0;
    /* A month's days depend only on its length (28 to 31) and the weekday
     * of its 1st: 28 masks at most, each computed once (hosts parse an
     * expression for every instance they load). */
    uint32_t by_len[4][7];
    uint8_t have[4][7] = {{0}};
    for (int m = 1; m <= 12; m++) {
        if (!(p.c->month >> m & 1))
            continue;
        for (int w = 0; w < 7; w++) {
            for (int leap = 0; leap < 2; leap++) {
                int n = civil_month_days(leap ? 2000 : 2001, m);
                if (!have[n - 28][w]) {
                    by_len[n - 28][w] = month_mask(p.c, n, w);
                    have[n - 28][w] = 1;
                }
                p.c->days[m - 1][w][leap] = by_len[n - 28][w];
                any |= by_len[n - 28][w] != 0;
            }
        }
    }
    if (!any) {
        char dq[64], mq[64];
        quote(dq, sizeof(dq), tok[nf - 3], tlen[nf - 3]);
        quote(mq, sizeof(mq), tok[nf - 2], tlen[nf - 2]);
        free(p.err);
        if (asprintf(&p.err,
                     "never fires: day-of-month '%s' does not occur in "
                     "month '%s'",
                     dq, mq) < 0)
            p.err = NULL;
        goto bad;
    }
    return p.c;
bad:
    if (err)
        *err = p.err ? p.err : strdup("out of memory");
    else
        free(p.err);
    free(p.c);
    return NULL;
}

void sched_cron_free(sched_cron *c) {
    free(c);
}

/* ---- the next matching local time ---- */

static int lowest(uint64_t v) {
    return __builtin_ctzll(v);
}

/* The first local time after x that c matches (local times counted as if
 * UTC), or SCHED_NONE when none does within 400 years, the length of the
 * Gregorian cycle: a pattern of days that does not occur in one never
 * does. */
static int64_t next_local(const sched_cron *c, int64_t x) {
    int64_t t = x + 1;
    int64_t days = civil_floor_div(t, 86400), sod = t - days * 86400;
    int64_t y;
    int m, d, h = (int)(sod / 3600), mi = (int)(sod / 60 % 60),
              s = (int)(sod % 60);
    civil_from_days(days, &y, &m, &d);
    int64_t stop = y + 401;
    while (y <= stop) {
        if (!(c->month >> m & 1) || d > 31) {
            if (d > 31 || (c->month >> m & 1))
                m++;
            uint32_t later = m <= 12 ? c->month & (~0u << m) : 0;
            if (later) {
                m = lowest(later);
            } else {
                y++;
                m = lowest(c->month);
            }
            d = 1;
            h = mi = s = 0;
            continue;
        }
        int64_t first = civil_days(y, m, 1);
        uint32_t mask =
            c->days[m - 1][civil_weekday(first)][m == 2 && civil_is_leap(y)] &
            (~0u << d);
        if (!mask) {
            d = 32; /* next month */
            continue;
        }
        if (lowest(mask) != d) {
            d = lowest(mask);
            h = mi = s = 0;
        }
        uint32_t hours = c->hour & (~0u << h);
        if (!hours) {
            d++;
            h = mi = s = 0;
            continue;
        }
        if (lowest(hours) != h) {
            h = lowest(hours);
            mi = s = 0;
        }
        uint64_t mins = c->min & (~0ull << mi);
        if (!mins) {
            h++;
            mi = s = 0;
            continue;
        }
        if (lowest(mins) != mi) {
            mi = lowest(mins);
            s = 0;
        }
        uint64_t secs = c->sec & (~0ull << s);
        if (!secs) {
            mi++;
            s = 0;
            continue;
        }
        s = lowest(secs);
        return civil_days(y, m, d) * 86400 + h * 3600 + mi * 60 + s;
    }
    return SCHED_NONE;
}

/* ---- local time to the instant it fires at ---- */

static int zone_offset(const sched_zone *z, int64_t t) {
    return z ? sched_zone_offset(z, t) : 0;
}

/* When local time L fires: its only or first instant, or the first instant
 * after the gap it falls in. */
static int64_t fire_instant(const sched_zone *z, int64_t L) {
    int64_t out[2];
    if (!z)
        return L;
    sched_zone_to_utc(z, L, out);
    return out[0];
}

int64_t sched_next(const sched_cron *c, const sched_zone *z,
                   int64_t after_utc_s) {
    int64_t after = after_utc_s;
    if (!c || after < 0 || after > SCHED_TIME_MAX)
        return SCHED_NONE;
    int64_t from = after + zone_offset(z, after);
    if (z) {
        int64_t pre[2];
        if (sched_zone_to_utc(z, from, pre) == 2 && pre[0] < after) {
            /* after is in the second pass of a repeated hour: the local
             * times up to the end of the repeat had their first occurrence
             * already. The repeat ends at the change of offset (T) plus the
             * offset from before it. */
            int a = sched_zone_offset(z, pre[0]);
            int64_t lo = pre[0], hi = after;
            while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                if (sched_zone_offset(z, mid) != a)
                    hi = mid;
                else
                    lo = mid;
            }
            from = hi + a - 1;
        }
    }
    /* Every step moves to a later local time; a sane zone needs one. */
    for (int i = 0; i < 1000; i++) {
        int64_t L = next_local(c, from);
        if (L == SCHED_NONE)
            return SCHED_NONE;
        int64_t r = fire_instant(z, L);
        if (r > after)
            return r;
        from = L;
    }
    return SCHED_NONE;
}
