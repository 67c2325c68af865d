/* ISO 8601 / RFC 3339 times as text: what `ferry schedule next` reads in
 * --from and prints, and what a trigger's "anchor" holds. */
#include "civil.h"
#include "sched.h"

#include <stdio.h>
#include <stdlib.h>

static int digits(const char **sp, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*sp)[i];
        if (ch < '0' || ch > '9')
            return -1;
        v = v * 10 + (ch - '0');
    }
    *sp += n;
    *out = v;
    return 0;
}

int sched_parse_time(const char *s, int64_t *out) {
    int64_t us;
    if (sched_parse_time_us(s, &us))
        return -1;
    /* The fraction is always added, so dropping it rounds down. */
    *out = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    return 0;
}

int sched_parse_time_us(const char *s, int64_t *out) {
    int y, mo, d, h, mi, sec = 0, oh = 0, om = 0, sign = 0;
    int64_t frac_us = 0;
    if (!s || digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) ||
        *s++ != '-' || digits(&s, 2, &d))
        return -1;
    if (*s != 'T' && *s != 't' && *s != ' ')
        return -1;
    s++;
    if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi))
        return -1;
    if (*s == ':') {
        s++;
        if (digits(&s, 2, &sec))
            return -1;
        if (*s == '.' || *s == ',') {
            s++;
            if (*s < '0' || *s > '9')
                return -1;
            int n = 0;
            for (; *s >= '0' && *s <= '9'; s++, n++)
                if (n < 6)
                    frac_us = frac_us * 10 + (*s - '0');
            for (; n < 6; n++)
                frac_us *= 10;
        }
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s++ == '-' ? -1 : 1;
        if (digits(&s, 2, &oh))
            return -1;
        if (*s == ':')
            s++;
        if (digits(&s, 2, &om))
            return -1;
    } else {
        return -1;
    }
    if (*s || mo < 1 || mo > 12 || d < 1 || d > civil_month_days(y, mo) ||
        h > 23 || mi > 59 || sec > 59 || oh > 23 || om > 59)
        return -1;
    *out = (civil_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
            sign * (oh * 3600 + om * 60)) *
               1000000 +
           frac_us;
    return 0;
}

char *sched_format_time(const sched_zone *z, int64_t utc_s, char *buf,
                        size_t n) {
    int off = z ? sched_zone_offset(z, utc_s) : 0;
    int64_t local = utc_s + off, y;
    int64_t days = civil_floor_div(local, 86400), sod = local - days * 86400;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int len =
        snprintf(buf, n, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)y, m, d,
                 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
    if (len < 0 || (size_t)len >= n)
        return buf;
    if (!z) {
        snprintf(buf + len, n - (size_t)len, "Z");
        return buf;
    }
    int a = off < 0 ? -off : off;
    len += snprintf(buf + len, n - (size_t)len, "%c%02d:%02d",
                    off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
    if (a % 60 && (size_t)len < n)
        snprintf(buf + len, n - (size_t)len, ":%02d", a % 60);
    return buf;
}
