/*
 * sched: time zones from the system's tz database, cron parsing, next fire
 * times under the DST policy, intervals, times as text, and schedule
 * triggers.
 *
 * Expected values were computed outside this code when the tests were
 * written: real zones with Python's zoneinfo (same tz database), footer
 * rules of made-up zones with glibc (`TZ=RULE date -d TIME +%z`) and, for
 * the all-year DST rule glibc gets wrong at the year boundary, zoneinfo;
 * cron vectors with tests/sched/vectors.py (a brute-force scan of local
 * days with hand-written predicates; run it to regenerate the table).
 */
#include "flow/flow.h"
#include "sched/sched.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int64_t T(const char *iso) {
    int64_t t;
    if (sched_parse_time(iso, &t))
        fail_msg("bad time in test: %s", iso);
    return t;
}

static const char *Z(int64_t t, char *buf) {
    return sched_format_time(NULL, t, buf, 40);
}

static const sched_zone *zone(const char *name) {
    char *err = NULL;
    const sched_zone *z = sched_zone_load(name, &err);
    if (!z)
        fail_msg("%s: %s", name, err);
    return z;
}

/* ---- real zones ---- */

static const struct {
    const char *zone, *at;
    int offset, isdst;
    const char *abbr;
} offsets[] = {
    /* Python zoneinfo: datetime.fromisoformat(at).astimezone(ZoneInfo(zone))
     */
    {"America/New_York", "2027-01-15T12:00:00Z", -18000, 0, "EST"},
    {"America/New_York", "2027-03-14T06:59:59Z", -18000, 0, "EST"},
    {"America/New_York", "2027-03-14T07:00:00Z", -14400, 1, "EDT"},
    {"America/New_York", "2027-11-07T05:59:59Z", -14400, 1, "EDT"},
    {"America/New_York", "2027-11-07T06:00:00Z", -18000, 0, "EST"},
    /* Before 1901: only the 64-bit data of a v2+ file reaches this. */
    {"America/New_York", "1800-01-01T00:00:00Z", -17762, 0, "LMT"},
    /* After the file's last transition (2037): the footer's rule. */
    {"America/New_York", "2100-03-14T06:59:59Z", -18000, 0, "EST"},
    {"America/New_York", "2100-03-14T07:00:00Z", -14400, 1, "EDT"},
    {"America/New_York", "2100-11-07T05:59:59Z", -14400, 1, "EDT"},
    {"America/New_York", "2100-11-07T06:00:00Z", -18000, 0, "EST"},
    {"America/Chicago", "2027-03-14T07:59:59Z", -21600, 0, "CST"},
    {"America/Chicago", "2027-03-14T08:00:00Z", -18000, 1, "CDT"},
    {"America/Chicago", "2027-11-07T06:59:59Z", -18000, 1, "CDT"},
    {"America/Chicago", "2027-11-07T07:00:00Z", -21600, 0, "CST"},
    {"Europe/Berlin", "2027-03-28T00:59:59Z", 3600, 0, "CET"},
    {"Europe/Berlin", "2027-03-28T01:00:00Z", 7200, 1, "CEST"},
    {"Europe/Berlin", "2027-10-31T00:59:59Z", 7200, 1, "CEST"},
    {"Europe/Berlin", "2027-10-31T01:00:00Z", 3600, 0, "CET"},
    {"Europe/Berlin", "2100-03-28T00:59:59Z", 3600, 0, "CET"},
    {"Europe/Berlin", "2100-03-28T01:00:00Z", 7200, 1, "CEST"},
    {"Europe/London", "2027-03-28T00:59:59Z", 0, 0, "GMT"},
    {"Europe/London", "2027-03-28T01:00:00Z", 3600, 1, "BST"},
    {"Europe/London", "2027-10-31T00:59:59Z", 3600, 1, "BST"},
    {"Europe/London", "2027-10-31T01:00:00Z", 0, 0, "GMT"},
    {"Australia/Lord_Howe", "2027-04-03T14:59:59Z", 39600, 1, "+11"},
    {"Australia/Lord_Howe", "2027-04-03T15:00:00Z", 37800, 0, "+1030"},
    {"Australia/Lord_Howe", "2027-10-02T15:29:59Z", 37800, 0, "+1030"},
    {"Australia/Lord_Howe", "2027-10-02T15:30:00Z", 39600, 1, "+11"},
    {"Australia/Lord_Howe", "2100-04-03T14:59:59Z", 39600, 1, "+11"},
    {"Australia/Lord_Howe", "2100-04-03T15:00:00Z", 37800, 0, "+1030"},
    {"Australia/Lord_Howe", "2100-10-02T15:29:59Z", 37800, 0, "+1030"},
    {"Australia/Lord_Howe", "2100-10-02T15:30:00Z", 39600, 1, "+11"},
    {"Asia/Kathmandu", "1985-12-31T18:29:59Z", 19800, 0, "+0530"},
    {"Asia/Kathmandu", "1985-12-31T18:30:00Z", 20700, 0, "+0545"},
    {"Asia/Kathmandu", "2027-06-01T00:00:00Z", 20700, 0, "+0545"},
    {"Asia/Kathmandu", "2100-01-01T00:00:00Z", 20700, 0, "+0545"},
    /* A footer with negative transition times: <-02>2<-01>,M3.5.0/-1,... */
    {"America/Nuuk", "2027-03-28T00:59:59Z", -7200, 0, "-02"},
    {"America/Nuuk", "2027-03-28T01:00:00Z", -3600, 1, "-01"},
    {"America/Nuuk", "2027-10-31T00:59:59Z", -3600, 1, "-01"},
    {"America/Nuuk", "2027-10-31T01:00:00Z", -7200, 0, "-02"},
    {"UTC", "2027-06-01T00:00:00Z", 0, 0, "UTC"},
    {"UTC", "2100-06-01T00:00:00Z", 0, 0, "UTC"},
};

static void test_zone_offsets(void **state) {
    (void)state;
    for (size_t i = 0; i < N_OF(offsets); i++) {
        const sched_zone *z = zone(offsets[i].zone);
        int isdst = -1;
        const char *abbr = NULL;
        int off = sched_zone_lookup(z, T(offsets[i].at), &isdst, &abbr);
        if (off != offsets[i].offset || isdst != offsets[i].isdst ||
            strcmp(abbr, offsets[i].abbr))
            fail_msg("%s at %s: %d %d %s, expected %d %d %s", offsets[i].zone,
                     offsets[i].at, off, isdst, abbr, offsets[i].offset,
                     offsets[i].isdst, offsets[i].abbr);
        assert_int_equal(sched_zone_offset(z, T(offsets[i].at)), off);
    }
}

static const struct {
    const char *zone, *local;
    int n;
    const char *utc[2];
} to_utc[] = {
    /* Python zoneinfo, fold=0 and fold=1, kept when they round-trip; for a
     * gap, the first instant whose local time is past it. */
    {"America/New_York", "2027-07-01T12:00:00Z", 1, {"2027-07-01T16:00:00Z"}},
    {"America/New_York", "2027-03-14T01:59:59Z", 1, {"2027-03-14T06:59:59Z"}},
    {"America/New_York", "2027-03-14T02:00:00Z", 0, {"2027-03-14T07:00:00Z"}},
    {"America/New_York", "2027-03-14T02:30:00Z", 0, {"2027-03-14T07:00:00Z"}},
    {"America/New_York", "2027-03-14T03:00:00Z", 1, {"2027-03-14T07:00:00Z"}},
    {"America/New_York",
     "2027-11-07T01:30:00Z",
     2,
     {"2027-11-07T05:30:00Z", "2027-11-07T06:30:00Z"}},
    {"America/New_York", "2027-11-07T02:00:00Z", 1, {"2027-11-07T07:00:00Z"}},
    {"America/New_York", "2100-03-14T02:30:00Z", 0, {"2100-03-14T07:00:00Z"}},
    {"America/New_York",
     "2100-11-07T01:30:00Z",
     2,
     {"2100-11-07T05:30:00Z", "2100-11-07T06:30:00Z"}},
    {"Australia/Lord_Howe",
     "2027-10-03T02:15:00Z",
     0,
     {"2027-10-02T15:30:00Z"}},
    {"Australia/Lord_Howe",
     "2027-04-04T01:45:00Z",
     2,
     {"2027-04-03T14:45:00Z", "2027-04-03T15:15:00Z"}},
    /* Samoa skipped 2011-12-30 entirely (a 24-hour gap). */
    {"Pacific/Apia", "2011-12-30T12:00:00Z", 0, {"2011-12-30T10:00:00Z"}},
    {"Pacific/Apia", "2011-12-31T00:00:00Z", 1, {"2011-12-30T10:00:00Z"}},
    {"UTC", "2027-03-14T02:30:00Z", 1, {"2027-03-14T02:30:00Z"}},
};

static void test_zone_to_utc(void **state) {
    (void)state;
    char a[40], b[40];
    for (size_t i = 0; i < N_OF(to_utc); i++) {
        int64_t out[2];
        /* Local times are written with a Z only to be read as numbers. */
        int n =
            sched_zone_to_utc(zone(to_utc[i].zone), T(to_utc[i].local), out);
        if (n != to_utc[i].n || strcmp(Z(out[0], a), to_utc[i].utc[0]) ||
            (n == 2 && strcmp(Z(out[1], b), to_utc[i].utc[1])))
            fail_msg("%s local %s: %d %s %s", to_utc[i].zone, to_utc[i].local,
                     n, Z(out[0], a), Z(out[1], b));
    }
}

static void test_zone_names(void **state) {
    (void)state;
    static const char *const bad[] = {
        "../etc/passwd", "/etc/passwd", "America/../UTC", "America//Chicago",
        "America/",      "Amer ica",    "zone.tab",       "",
        "a\nb",
    };
    for (size_t i = 0; i < N_OF(bad); i++) {
        char *err = NULL;
        assert_null(sched_zone_load(bad[i], &err));
        assert_non_null(strstr(err, "is not a time zone name"));
        free(err);
    }
    char *err = NULL;
    assert_null(sched_zone_load("Mars/Olympus_Mons", &err));
    assert_string_equal(err, "unknown time zone 'Mars/Olympus_Mons'");
    free(err);
    err = NULL;
    /* A directory of the database is not a zone. */
    assert_null(sched_zone_load("America", &err));
    assert_string_equal(err, "unknown time zone 'America'");
    free(err);
    /* Cached: the same name gives the same zone. */
    const sched_zone *a = zone("America/Chicago");
    assert_ptr_equal(a, zone("America/Chicago"));
    assert_string_equal(sched_zone_name(a), "America/Chicago");
    assert_int_equal(sched_zone_offset(zone("UTC"), 0), 0);
    if (access("/usr/share/zoneinfo/right/UTC", R_OK) == 0) {
        err = NULL;
        assert_null(sched_zone_load("right/UTC", &err));
        assert_non_null(strstr(err, "leap second"));
        free(err);
    }
}

/* ---- TZif files made here ---- */

typedef struct tzif_spec {
    char version; /* 0, '2', '3' */
    int ntimes;
    const int64_t *times;
    const uint8_t *idx;
    int ntypes;
    const int32_t *utoff;
    const uint8_t *isdst, *abbr;
    const char *chars; /* NUL-separated */
    int nchars;
    const char *footer; /* v2+: between the newlines */
} tzif_spec;

static void put32(uint8_t **p, int64_t v) {
    uint32_t u = (uint32_t)v;
    (*p)[0] = (uint8_t)(u >> 24);
    (*p)[1] = (uint8_t)(u >> 16);
    (*p)[2] = (uint8_t)(u >> 8);
    (*p)[3] = (uint8_t)u;
    *p += 4;
}

static void put_block(uint8_t **p, const tzif_spec *s, int tsize) {
    memcpy(*p, "TZif", 4);
    (*p)[4] = (uint8_t)s->version;
    memset(*p + 5, 0, 15);
    *p += 20;
    put32(p, 0);
    put32(p, 0);
    put32(p, 0);
    put32(p, s->ntimes);
    put32(p, s->ntypes);
    put32(p, s->nchars);
    for (int i = 0; i < s->ntimes; i++) {
        if (tsize == 8)
            put32(p, s->times[i] >> 32);
        put32(p, s->times[i]);
    }
    for (int i = 0; i < s->ntimes; i++)
        *(*p)++ = s->idx[i];
    for (int i = 0; i < s->ntypes; i++) {
        put32(p, s->utoff[i]);
        *(*p)++ = s->isdst[i];
        *(*p)++ = s->abbr[i];
    }
    memcpy(*p, s->chars, (size_t)s->nchars);
    *p += s->nchars;
}

static size_t build_tzif(uint8_t *buf, const tzif_spec *s) {
    uint8_t *p = buf;
    put_block(&p, s, 4);
    if (s->version) {
        put_block(&p, s, 8);
        p += sprintf((char *)p, "\n%s\n", s->footer ? s->footer : "");
    }
    return (size_t)(p - buf);
}

/* One type and no transitions: the footer rules all times (RFC 8536). */
static sched_zone *footer_zone(const char *footer) {
    static const int32_t utoff[] = {0};
    static const uint8_t zero[] = {0};
    tzif_spec s = {'3', 0, NULL, NULL, 1, utoff, zero, zero, "ZZZ", 4, footer};
    uint8_t buf[512];
    char *err = NULL;
    sched_zone *z =
        sched_zone_from_tzif(footer, buf, build_tzif(buf, &s), &err);
    if (!z)
        fail_msg("%s: %s", footer, err);
    return z;
}

static const struct {
    const char *rule, *at;
    int offset;
    const char *abbr;
} rules[] = {
    /* glibc: TZ=RULE date -d AT +%z%Z */
    {"AAA3BBB,J60/2,J300/2", "2027-03-01T04:59:59Z", -10800, "AAA"},
    {"AAA3BBB,J60/2,J300/2", "2027-03-01T05:00:00Z", -7200, "BBB"},
    {"AAA3BBB,J60/2,J300/2", "2028-02-29T12:00:00Z", -10800, "AAA"},
    {"AAA3BBB,J60/2,J300/2", "2028-03-01T05:00:00Z", -7200, "BBB"},
    {"AAA3BBB,J60/2,J300/2", "2028-10-27T03:59:59Z", -7200, "BBB"},
    {"AAA3BBB,J60/2,J300/2", "2028-10-27T04:00:00Z", -10800, "AAA"},
    /* Zero-based days count February 29 (Python's zoneinfo is a day off
     * here; glibc follows POSIX). */
    {"AAA3BBB,59/2,299/2", "2027-03-01T04:59:59Z", -10800, "AAA"},
    {"AAA3BBB,59/2,299/2", "2027-03-01T05:00:00Z", -7200, "BBB"},
    {"AAA3BBB,59/2,299/2", "2028-02-29T04:59:59Z", -10800, "AAA"},
    {"AAA3BBB,59/2,299/2", "2028-02-29T05:00:00Z", -7200, "BBB"},
    {"AAA3BBB,59/2,299/2", "2028-10-26T03:59:59Z", -7200, "BBB"},
    {"AAA3BBB,59/2,299/2", "2028-10-26T04:00:00Z", -10800, "AAA"},
    {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2027-03-28T00:59:59Z", -7200, "-02"},
    {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2027-03-28T01:00:00Z", -3600, "-01"},
    {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2027-10-31T00:59:59Z", -3600, "-01"},
    {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2027-10-31T01:00:00Z", -7200, "-02"},
    {"AAA3BBB,M3.2.0/30,M11.1.0/-3", "2027-03-15T08:59:59Z", -10800, "AAA"},
    {"AAA3BBB,M3.2.0/30,M11.1.0/-3", "2027-03-15T09:00:00Z", -7200, "BBB"},
    {"AAA3BBB,M3.2.0/30,M11.1.0/-3", "2027-11-06T22:59:59Z", -7200, "BBB"},
    {"AAA3BBB,M3.2.0/30,M11.1.0/-3", "2027-11-06T23:00:00Z", -10800, "AAA"},
    {"AAA3BBB,M3.5.0/167,M10.5.0/-167", "2027-04-04T01:59:59Z", -10800, "AAA"},
    {"AAA3BBB,M3.5.0/167,M10.5.0/-167", "2027-04-04T02:00:00Z", -7200, "BBB"},
    {"AAA3BBB,M3.5.0/167,M10.5.0/-167", "2027-10-24T02:59:59Z", -7200, "BBB"},
    {"AAA3BBB,M3.5.0/167,M10.5.0/-167", "2027-10-24T03:00:00Z", -10800, "AAA"},
    {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2027-04-03T14:59:59Z", 39600,
     "+11"},
    {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2027-04-03T15:00:00Z", 37800,
     "+1030"},
    {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2027-10-02T15:29:59Z", 37800,
     "+1030"},
    {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2027-10-02T15:30:00Z", 39600,
     "+11"},
    {"<+0545>-5:45", "2027-01-01T00:00:00Z", 20700, "+0545"},
    /* DST without rules: the US rule, as glibc does. */
    {"EST5EDT", "2027-03-14T06:59:59Z", -18000, "EST"},
    {"EST5EDT", "2027-03-14T07:00:00Z", -14400, "EDT"},
    {"EST5EDT", "2027-11-07T05:59:59Z", -14400, "EDT"},
    {"EST5EDT", "2027-11-07T06:00:00Z", -18000, "EST"},
    /* DST all year (RFC 8536 3.3.1); Python's zoneinfo, since glibc
     * reports standard time for the first hours of each year. */
    {"EST5EDT,0/0,J365/25", "2027-01-01T00:00:00Z", -14400, "EDT"},
    {"EST5EDT,0/0,J365/25", "2027-06-01T00:00:00Z", -14400, "EDT"},
    {"EST5EDT,0/0,J365/25", "2027-12-31T23:59:59Z", -14400, "EDT"},
    {"EST5EDT,0/0,J365/25", "2028-12-31T12:00:00Z", -14400, "EDT"},
};

static void test_footer_rules(void **state) {
    (void)state;
    for (size_t i = 0; i < N_OF(rules); i++) {
        sched_zone *z = footer_zone(rules[i].rule);
        const char *abbr;
        int off = sched_zone_lookup(z, T(rules[i].at), NULL, &abbr);
        if (off != rules[i].offset || strcmp(abbr, rules[i].abbr))
            fail_msg("%s at %s: %d %s", rules[i].rule, rules[i].at, off, abbr);
        sched_zone_free(z);
    }
}

static void test_tzif_v1_and_transitions(void **state) {
    (void)state;
    /* Two types, three transitions; a version 1 file (no footer): the last
     * transition's type holds forever, type 0 before the first. */
    static const int64_t times[] = {1000000, 2000000, 3000000};
    static const uint8_t idx[] = {1, 0, 1};
    static const int32_t utoff[] = {3600, 7200};
    static const uint8_t isdst[] = {0, 1}, abbr[] = {0, 4};
    tzif_spec s = {0,     3,    times,      idx, 2,   utoff,
                   isdst, abbr, "STD\0DST", 8,   NULL};
    uint8_t buf[512];
    char *err = NULL;
    sched_zone *z = sched_zone_from_tzif("v1", buf, build_tzif(buf, &s), &err);
    assert_non_null(z);
    const char *ab;
    assert_int_equal(sched_zone_lookup(z, 999999, NULL, &ab), 3600);
    assert_string_equal(ab, "STD");
    assert_int_equal(sched_zone_offset(z, 1000000), 7200);
    assert_int_equal(sched_zone_offset(z, 1999999), 7200);
    assert_int_equal(sched_zone_offset(z, 2000000), 3600);
    assert_int_equal(sched_zone_lookup(z, 4000000000LL, NULL, &ab), 7200);
    assert_string_equal(ab, "DST");
    sched_zone_free(z);

    /* The same as version 2 with 64-bit times before 1901 and a footer. */
    static const int64_t times2[] = {-5000000000LL, 2000000};
    tzif_spec s2 = {'2',   2,    times2,     idx, 2,        utoff,
                    isdst, abbr, "STD\0DST", 8,   "<+01>-1"};
    z = sched_zone_from_tzif("v2", buf, build_tzif(buf, &s2), &err);
    assert_non_null(z);
    assert_int_equal(sched_zone_offset(z, -5000000001LL), 3600);
    assert_int_equal(sched_zone_offset(z, -5000000000LL), 7200);
    assert_int_equal(sched_zone_offset(z, 2000000), 3600);
    assert_int_equal(sched_zone_lookup(z, 9000000, NULL, &ab), 3600);
    assert_string_equal(ab, "+01");
    sched_zone_free(z);
}

static void expect_tzif_error(const uint8_t *data, size_t n, const char *want) {
    char *err = NULL;
    sched_zone *z = sched_zone_from_tzif("bad", data, n, &err);
    if (z || !err || !strstr(err, want))
        fail_msg("expected '%s', got %s", want, z ? "a zone" : err);
    free(err);
}

static void test_tzif_malformed(void **state) {
    (void)state;
    static const int64_t times[] = {100, 50};
    static const uint8_t idx[] = {0, 0}, bad_idx[] = {0, 3};
    static const int32_t utoff[] = {0}, huge[] = {100000};
    static const uint8_t zero[] = {0}, two[] = {2}, far[] = {9};
    uint8_t buf[512];
    size_t n;
    tzif_spec ok = {'2', 0, NULL, NULL, 1, utoff, zero, zero, "UTC", 4, ""};

    n = build_tzif(buf, &ok);
    sched_zone_free(sched_zone_from_tzif("ok", buf, n, NULL));
    expect_tzif_error(buf, 10, "not a TZif file");
    expect_tzif_error((const uint8_t *)"TZjf", 4, "not a TZif file");
    buf[4] = 'x';
    expect_tzif_error(buf, n, "not a TZif file");
    n = build_tzif(buf, &ok);
    expect_tzif_error(buf, n - 2, "missing footer");
    expect_tzif_error(buf, n - 1, "missing footer");
    expect_tzif_error(buf, 50, "truncated");

    tzif_spec t = ok;
    t.ntypes = 0;
    n = build_tzif(buf, &t);
    expect_tzif_error(buf, n, "malformed header");
    t = ok;
    t.ntimes = 2;
    t.times = times;
    t.idx = idx;
    n = build_tzif(buf, &t);
    expect_tzif_error(buf, n, "ascending");
    static const int64_t up[] = {50, 100};
    t.times = up;
    t.idx = bad_idx;
    n = build_tzif(buf, &t);
    expect_tzif_error(buf, n, "missing type");
    t = ok;
    t.utoff = huge;
    n = build_tzif(buf, &t);
    expect_tzif_error(buf, n, "UTC offset");
    t = ok;
    t.isdst = two;
    n = build_tzif(buf, &t);
    expect_tzif_error(buf, n, "DST flag");
    t = ok;
    t.abbr = far;
    n = build_tzif(buf, &t);
    expect_tzif_error(buf, n, "abbreviation");
    t = ok;
    t.chars = "UTCX";
    n = build_tzif(buf, &t);
    expect_tzif_error(buf, n, "abbreviation");
    static const char *const bad_footers[] = {
        "EST",
        "EST5EDT,M3.2.0",
        "EST5EDT,M13.1.0,M11.1.0",
        "EST5EDT,M3.6.0,M11.1.0",
        "EST5EDT,M3.2.7,M11.1.0",
        "EST5EDT,J0,J100",
        "EST5EDT,366,1",
        "E5",
        "<E5",
        "EST25",
        "EST5EDT,M3.2.0/168,M11.1.0",
        "EST5 EDT",
        "EST5EDT,M3.2.0,M11.1.0x",
    };
    for (size_t i = 0; i < N_OF(bad_footers); i++) {
        t = ok;
        t.footer = bad_footers[i];
        n = build_tzif(buf, &t);
        expect_tzif_error(buf, n, "footer's TZ string is malformed");
    }
    /* Leap second records (the right/ zones), counted in the second
     * header: 44 bytes of the first, 10 of its data, then 28 in. */
    t = ok;
    n = build_tzif(buf, &t);
    buf[44 + 10 + 31] = 1;
    expect_tzif_error(buf, n, "leap second");
}

static void test_zone_tzdir(void **state) {
    (void)state;
    char dir[] = "/tmp/sched-tzdir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/Test", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/Test/Plus_Five", dir);
    static const int32_t utoff[] = {18000};
    static const uint8_t zero[] = {0};
    tzif_spec s = {'2',  0,    NULL,  NULL, 1,        utoff,
                   zero, zero, "+05", 4,    "<+05>-5"};
    uint8_t buf[512];
    size_t n = build_tzif(buf, &s);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
    const char *old = getenv("TZDIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TZDIR", dir, 1);
    const sched_zone *z = zone("Test/Plus_Five");
    assert_int_equal(sched_zone_offset(z, 0), 18000);
    char *err = NULL;
    assert_null(sched_zone_load("Test/Minus_Five", &err));
    assert_string_equal(err, "unknown time zone 'Test/Minus_Five'");
    free(err);
    if (saved)
        setenv("TZDIR", saved, 1);
    else
        unsetenv("TZDIR");
    free(saved);
    unlink(path);
    snprintf(path, sizeof(path), "%s/Test", dir);
    rmdir(path);
    rmdir(dir);
}

/* ---- cron ---- */

static const struct {
    const char *expr, *zone, *after;
    const char *want[8];
} vectors[] = {
    /* python3 tests/sched/vectors.py */
    {"0 7 * * *",
     "America/Chicago",
     "2027-03-12T00:00:00Z",
     {"2027-03-12T13:00:00Z", "2027-03-13T13:00:00Z", "2027-03-14T12:00:00Z",
      "2027-03-15T12:00:00Z"}},
    {"30 2 * * *",
     "America/New_York",
     "2027-03-13T00:00:00Z",
     {"2027-03-13T07:30:00Z", "2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"}},
    {"30 1 * * *",
     "America/New_York",
     "2027-11-06T12:00:00Z",
     {"2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z", "2027-11-09T06:30:00Z"}},
    {"30 1 * * *",
     "America/New_York",
     "2027-11-07T06:00:00Z",
     {"2027-11-08T06:30:00Z", "2027-11-09T06:30:00Z"}},
    {"0 * * * *",
     "America/New_York",
     "2027-03-14T04:30:00Z",
     {"2027-03-14T05:00:00Z", "2027-03-14T06:00:00Z", "2027-03-14T07:00:00Z",
      "2027-03-14T08:00:00Z", "2027-03-14T09:00:00Z"}},
    {"0 * * * *",
     "America/New_York",
     "2027-11-07T03:30:00Z",
     {"2027-11-07T04:00:00Z", "2027-11-07T05:00:00Z", "2027-11-07T07:00:00Z",
      "2027-11-07T08:00:00Z", "2027-11-07T09:00:00Z"}},
    {"0 * * * *",
     "America/New_York",
     "2027-11-07T06:00:00Z",
     {"2027-11-07T07:00:00Z", "2027-11-07T08:00:00Z"}},
    {"* * * * *",
     "America/New_York",
     "2027-03-14T06:58:00Z",
     {"2027-03-14T06:59:00Z", "2027-03-14T07:00:00Z", "2027-03-14T07:01:00Z"}},
    {"* * * * *",
     "America/New_York",
     "2027-11-07T05:58:00Z",
     {"2027-11-07T05:59:00Z", "2027-11-07T07:00:00Z", "2027-11-07T07:01:00Z"}},
    {"* * * * * *",
     "America/New_York",
     "2027-11-07T06:00:00Z",
     {"2027-11-07T07:00:00Z", "2027-11-07T07:00:01Z"}},
    {"30 2 * * *",
     "America/Chicago",
     "2027-03-13T00:00:00Z",
     {"2027-03-13T08:30:00Z", "2027-03-14T08:00:00Z", "2027-03-15T07:30:00Z"}},
    {"30 1 * * *",
     "America/Chicago",
     "2027-11-06T12:00:00Z",
     {"2027-11-07T06:30:00Z", "2027-11-08T07:30:00Z", "2027-11-09T07:30:00Z"}},
    {"30 1 * * *",
     "Europe/London",
     "2027-03-27T12:00:00Z",
     {"2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z", "2027-03-30T00:30:00Z"}},
    {"30 1 * * *",
     "Europe/London",
     "2027-10-30T12:00:00Z",
     {"2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z", "2027-11-02T01:30:00Z"}},
    {"30 2 * * *",
     "Europe/Berlin",
     "2027-03-27T12:00:00Z",
     {"2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z", "2027-03-30T00:30:00Z"}},
    {"15 2 * * *",
     "Australia/Lord_Howe",
     "2027-10-01T12:00:00Z",
     {"2027-10-01T15:45:00Z", "2027-10-02T15:30:00Z", "2027-10-03T15:15:00Z"}},
    {"45 1 * * *",
     "Australia/Lord_Howe",
     "2027-04-02T12:00:00Z",
     {"2027-04-02T14:45:00Z", "2027-04-03T14:45:00Z", "2027-04-04T15:15:00Z"}},
    {"*/15 * * * *",
     "Australia/Lord_Howe",
     "2027-10-02T15:00:00Z",
     {"2027-10-02T15:15:00Z", "2027-10-02T15:30:00Z", "2027-10-02T15:45:00Z",
      "2027-10-02T16:00:00Z"}},
    {"*/15 * * * *",
     "Australia/Lord_Howe",
     "2027-04-03T14:00:00Z",
     {"2027-04-03T14:15:00Z", "2027-04-03T14:30:00Z", "2027-04-03T14:45:00Z",
      "2027-04-03T15:30:00Z", "2027-04-03T15:45:00Z", "2027-04-03T16:00:00Z"}},
    {"0 6 * * *",
     "Asia/Kathmandu",
     "2027-06-01T00:00:00Z",
     {"2027-06-01T00:15:00Z", "2027-06-02T00:15:00Z"}},
    {"0 0 * * *",
     "America/Sao_Paulo",
     "2018-11-03T12:00:00Z",
     {"2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z"}},
    {"30 4 1,15 * 5",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-01T04:30:00Z", "2027-01-08T04:30:00Z", "2027-01-15T04:30:00Z",
      "2027-01-22T04:30:00Z", "2027-01-29T04:30:00Z", "2027-02-01T04:30:00Z",
      "2027-02-05T04:30:00Z", "2027-02-12T04:30:00Z"}},
    {"0 0 */2 * 5",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-15T00:00:00Z", "2027-01-29T00:00:00Z", "2027-02-05T00:00:00Z",
      "2027-02-19T00:00:00Z", "2027-03-05T00:00:00Z", "2027-03-19T00:00:00Z"}},
    {"0 0 1-31/2 * 5",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-03T00:00:00Z", "2027-01-05T00:00:00Z", "2027-01-07T00:00:00Z",
      "2027-01-08T00:00:00Z", "2027-01-09T00:00:00Z", "2027-01-11T00:00:00Z"}},
    {"0 0 * * */2",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-02T00:00:00Z", "2027-01-03T00:00:00Z", "2027-01-05T00:00:00Z",
      "2027-01-07T00:00:00Z", "2027-01-09T00:00:00Z"}},
    {"0 0 L * *",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-31T00:00:00Z", "2027-02-28T00:00:00Z", "2027-03-31T00:00:00Z",
      "2027-04-30T00:00:00Z"}},
    {"0 0 L * *", "UTC", "2028-02-01T00:00:00Z", {"2028-02-29T00:00:00Z"}},
    {"0 0 L-2 * *",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-29T00:00:00Z", "2027-02-26T00:00:00Z", "2027-03-29T00:00:00Z"}},
    {"0 0 LW * *",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-29T00:00:00Z", "2027-02-26T00:00:00Z", "2027-03-31T00:00:00Z",
      "2027-04-30T00:00:00Z"}},
    {"0 0 15W * *",
     "UTC",
     "2027-05-01T00:00:00Z",
     {"2027-05-14T00:00:00Z", "2027-06-15T00:00:00Z", "2027-07-15T00:00:00Z",
      "2027-08-16T00:00:00Z"}},
    {"0 0 1W * *",
     "UTC",
     "2027-05-01T00:00:00Z",
     {"2027-05-03T00:00:00Z", "2027-06-01T00:00:00Z", "2027-07-01T00:00:00Z",
      "2027-08-02T00:00:00Z"}},
    {"0 0 31W * *",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-29T00:00:00Z", "2027-03-31T00:00:00Z", "2027-05-31T00:00:00Z",
      "2027-07-30T00:00:00Z"}},
    {"0 0 1W * *", "UTC", "2027-12-15T00:00:00Z", {"2028-01-03T00:00:00Z"}},
    {"0 12 * * 5L",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-29T12:00:00Z", "2027-02-26T12:00:00Z", "2027-03-26T12:00:00Z"}},
    {"0 12 * * 5#3",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-15T12:00:00Z", "2027-02-19T12:00:00Z", "2027-03-19T12:00:00Z"}},
    {"0 12 * * fri#5",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-29T12:00:00Z", "2027-04-30T12:00:00Z", "2027-07-30T12:00:00Z"}},
    {"0 0 * 2 5#5",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2036-02-29T00:00:00Z", "2064-02-29T00:00:00Z"}},
    {"0 0 29 2 *",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
    {"0 0 29 2 *", "UTC", "2097-01-01T00:00:00Z", {"2104-02-29T00:00:00Z"}},
    {"0 9 * JAN,jul Mon-Fri",
     "UTC",
     "2027-06-30T00:00:00Z",
     {"2027-07-01T09:00:00Z", "2027-07-02T09:00:00Z", "2027-07-05T09:00:00Z"}},
    {"0 0 * * 7",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-03T00:00:00Z", "2027-01-10T00:00:00Z"}},
    {"0 0 1 * sun",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-03T00:00:00Z", "2027-01-10T00:00:00Z", "2027-01-17T00:00:00Z",
      "2027-01-24T00:00:00Z", "2027-01-31T00:00:00Z", "2027-02-01T00:00:00Z"}},
    {"0 0 ? * 1",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-04T00:00:00Z", "2027-01-11T00:00:00Z"}},
    {"5/20 * * * *",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-01T00:05:00Z", "2027-01-01T00:25:00Z", "2027-01-01T00:45:00Z",
      "2027-01-01T01:05:00Z"}},
    {"10-30/10 8-9 * * *",
     "UTC",
     "2027-01-01T00:00:00Z",
     {"2027-01-01T08:10:00Z", "2027-01-01T08:20:00Z", "2027-01-01T08:30:00Z",
      "2027-01-01T09:10:00Z", "2027-01-01T09:20:00Z", "2027-01-01T09:30:00Z",
      "2027-01-02T08:10:00Z"}},
    {"0 */23 * * *",
     "UTC",
     "2027-01-01T00:30:00Z",
     {"2027-01-01T23:00:00Z", "2027-01-02T00:00:00Z", "2027-01-02T23:00:00Z"}},
    {"*/20 * * * * *",
     "UTC",
     "2027-01-01T12:00:00Z",
     {"2027-01-01T12:00:20Z", "2027-01-01T12:00:40Z", "2027-01-01T12:01:00Z",
      "2027-01-01T12:01:20Z"}},
    {"30 0 7 * * *",
     "America/Chicago",
     "2027-03-13T00:00:00Z",
     {"2027-03-13T13:00:30Z", "2027-03-14T12:00:30Z"}},
    {"@yearly",
     "UTC",
     "2027-03-01T00:00:00Z",
     {"2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"}},
    {"@monthly",
     "Europe/Berlin",
     "2027-03-01T00:00:00Z",
     {"2027-03-31T22:00:00Z", "2027-04-30T22:00:00Z"}},
    {"@weekly",
     "UTC",
     "2027-03-01T00:00:00Z",
     {"2027-03-07T00:00:00Z", "2027-03-14T00:00:00Z"}},
    {"@daily",
     "UTC",
     "2027-03-01T00:00:00Z",
     {"2027-03-02T00:00:00Z", "2027-03-03T00:00:00Z"}},
    {"@hourly",
     "UTC",
     "2027-03-01T00:00:00Z",
     {"2027-03-01T01:00:00Z", "2027-03-01T02:00:00Z"}},
    {"30 2 * * *",
     "America/New_York",
     "2100-03-13T00:00:00Z",
     {"2100-03-13T07:30:00Z", "2100-03-14T07:00:00Z", "2100-03-15T06:30:00Z"}},
    {"30 1 * * *",
     "America/New_York",
     "2100-11-06T12:00:00Z",
     {"2100-11-07T05:30:00Z", "2100-11-08T06:30:00Z", "2100-11-09T06:30:00Z"}},
};

static void test_cron_vectors(void **state) {
    (void)state;
    char buf[40];
    for (size_t i = 0; i < N_OF(vectors); i++) {
        char *err = NULL;
        sched_cron *c = sched_cron_parse(vectors[i].expr, &err);
        if (!c)
            fail_msg("%s: %s", vectors[i].expr, err);
        const sched_zone *z = zone(vectors[i].zone);
        int64_t t = T(vectors[i].after);
        for (int k = 0; k < 8 && vectors[i].want[k]; k++) {
            t = sched_next(c, z, t);
            if (t == SCHED_NONE || strcmp(Z(t, buf), vectors[i].want[k]))
                fail_msg("'%s' in %s after %s: fire %d is %s, expected %s",
                         vectors[i].expr, vectors[i].zone, vectors[i].after, k,
                         t == SCHED_NONE ? "none" : buf, vectors[i].want[k]);
        }
        sched_cron_free(c);
    }
}

static const struct {
    const char *expr, *err;
} errors[] = {
    {"", "empty cron expression"},
    {"   ", "empty cron expression"},
    {"* * * *", "expected 5 fields (minute hour day-of-month month "
                "day-of-week) or 6 (seconds first), got 4"},
    {"* * * * * * *", "expected 5 fields (minute hour day-of-month month "
                      "day-of-week) or 6 (seconds first), got 7"},
    {"60 * * * *", "minute: '60' is out of range 0-59"},
    {"* 24 * * *", "hour: '24' is out of range 0-23"},
    {"* * 0 * *", "day-of-month: '0' is out of range 1-31"},
    {"* * 32 * *", "day-of-month: '32' is out of range 1-31"},
    {"* * * 0 *", "month: '0' is out of range 1-12"},
    {"* * * 13 *", "month: '13' is out of range 1-12"},
    {"* * * * 8", "day-of-week: '8' is out of range 0-7"},
    {"60 * * * * *", "seconds: '60' is out of range 0-59"},
    {"* 99999999999 * * *", "hour: '99999999999' is out of range 0-23"},
    {"x * * * *", "minute: 'x' is not a number"},
    {"1x * * * *", "minute: '1x' is not a number"},
    {"* * * foo *",
     "month: 'foo' is not a month number (1-12) or name (jan-dec)"},
    {"* * * january *",
     "month: 'january' is not a month number (1-12) or name (jan-dec)"},
    {"* * * * funday",
     "day-of-week: 'funday' is not a weekday number (0-7) or name "
     "(sun-sat)"},
    {"* * x * *", "day-of-month: 'x' is not a day (1-31, L, L-n, LW or nW)"},
    {"*/0 * * * *", "minute: '*/0' has a step out of range 1-60"},
    {"*/61 * * * *", "minute: '*/61' has a step out of range 1-60"},
    {"* */25 * * *", "hour: '*/25' has a step out of range 1-24"},
    {"*/ * * * *", "minute: '*/' is missing a step after '/'"},
    {"*/x * * * *", "minute: '*/x' has a step that is not a number"},
    {"5-2 * * * *", "minute: '5-2' is a range that runs backwards (5 is "
                    "after 2)"},
    {"* * * * fri-mon", "day-of-week: 'fri-mon' is a range that runs "
                        "backwards (5 is after 1)"},
    {"1-60 * * * *", "minute: '60' is out of range 0-59"},
    {"-5 * * * *", "minute: '' is empty"},
    {"1,,2 * * * *", "minute: '1,,2' has an empty list element"},
    {"1, * * * *", "minute: '1,' has an empty list element"},
    {"L * * * *", "minute: 'L' is only allowed in day-of-month and "
                  "day-of-week"},
    {"* W * * *", "hour: 'W' is only allowed in day-of-month and "
                  "day-of-week"},
    {"? * * * *", "minute: '?' is only allowed in day-of-month and "
                  "day-of-week"},
    {"* * * ? *", "month: '?' is only allowed in day-of-month and "
                  "day-of-week"},
    {"* * 32W * *", "day-of-month: '32' is out of range 1-31"},
    {"* * 1-5W * *", "day-of-month: '1-5W' is malformed: W follows one day "
                     "(15W) or L (LW)"},
    {"* * L-31 * *", "day-of-month: 'L-31' is malformed: L-n takes n from 0 "
                     "to 30"},
    {"* * L-x * *", "day-of-month: 'L-x' is malformed: L-n takes n from 0 "
                    "to 30"},
    {"* * LX * *", "day-of-month: 'LX' is malformed (expected L, L-n, LW or "
                   "nW)"},
    {"* * * * L", "day-of-week: 'L' needs a weekday before it (5L is the "
                  "last Friday)"},
    {"* * * * 8L", "day-of-week: '8' is out of range 0-7"},
    {"* * * * 5#6", "day-of-week: '5#6' is malformed: n#k takes k from 1 to "
                    "5 (5#3 is the third Friday)"},
    {"* * * * 5#0", "day-of-week: '5#0' is malformed: n#k takes k from 1 to "
                    "5 (5#3 is the third Friday)"},
    {"* * * * #3", "day-of-week: '' is empty"},
    {"* * * * xyz#3", "day-of-week: 'xyz' is not a weekday number (0-7) or "
                      "name (sun-sat)"},
    {"@reboot", "'@reboot' is not a known macro (@yearly @annually @monthly "
                "@weekly @daily @midnight @hourly; for an interval use "
                "\"every\")"},
    {"@every 5m", "'@every 5m' is not a known macro (@yearly @annually "
                  "@monthly @weekly @daily @midnight @hourly; for an "
                  "interval use \"every\")"},
    {"0 0 30 2 *", "never fires: day-of-month '30' does not occur in month "
                   "'2'"},
    {"0 0 31 4,6,9,11 *", "never fires: day-of-month '31' does not occur in "
                          "month '4,6,9,11'"},
    {"0 0 30,31 feb *", "never fires: day-of-month '30,31' does not occur "
                        "in month 'feb'"},
    {"0 0 31W 2 *", "never fires: day-of-month '31W' does not occur in "
                    "month '2'"},
    {"0 0 *\x01 * *", "day-of-month: '*\\x01' is not a day (1-31, L, L-n, "
                      "LW or nW)"},
    {"0 0\n* * *", "expected 5 fields (minute hour day-of-month month "
                   "day-of-week) or 6 (seconds first), got 4"},
};

static void test_cron_errors(void **state) {
    (void)state;
    for (size_t i = 0; i < N_OF(errors); i++) {
        char *err = NULL;
        sched_cron *c = sched_cron_parse(errors[i].expr, &err);
        if (c || !err || strcmp(err, errors[i].err))
            fail_msg("'%s': got %s, expected %s", errors[i].expr,
                     c ? "a schedule" : err, errors[i].err);
        free(err);
    }
    /* err may be NULL. */
    assert_null(sched_cron_parse("61 * * * *", NULL));
    assert_null(sched_cron_parse(NULL, NULL));
}

/* Expressions that must mean the same: their fire times agree from a few
 * starting points for a while. */
static void same_schedule(const char *a, const char *b) {
    sched_cron *x = sched_cron_parse(a, NULL), *y = sched_cron_parse(b, NULL);
    if (!x || !y)
        fail_msg("'%s' or '%s' does not parse", a, b);
    const sched_zone *z = zone("Europe/Berlin");
    static const char *const starts[] = {
        "2027-01-01T00:00:00Z", "2027-03-27T23:59:59Z", "2028-02-28T12:00:00Z"};
    for (size_t i = 0; i < N_OF(starts); i++) {
        int64_t s = T(starts[i]), t = s;
        for (int k = 0; k < 50; k++) {
            int64_t u = sched_next(x, z, t), v = sched_next(y, z, t);
            if (u != v)
                fail_msg("'%s' and '%s' differ after %lld", a, b, (long long)t);
            t = u;
        }
    }
    sched_cron_free(x);
    sched_cron_free(y);
}

static void test_cron_equivalent_forms(void **state) {
    (void)state;
    same_schedule("0 0 * * 0", "0 0 * * 7");
    same_schedule("0 0 * * 0", "0 0 * * SUN");
    same_schedule("0 0 * * 1-5", "0 0 * * mon-FRI");
    same_schedule("0 0 * * 5-7", "0 0 * * 0,5,6");
    same_schedule("0 0 1 1 *", "@yearly");
    same_schedule("0 0 1 1 *", "@ANNUALLY");
    same_schedule("0 0 1 * *", "@monthly");
    same_schedule("0 0 * * 0", "@weekly");
    same_schedule("0 0 * * *", "@daily");
    same_schedule("0 0 * * *", "@midnight");
    same_schedule("0 * * * *", "@hourly");
    same_schedule("0 0 * jan-mar *", "0 0 * 1,2,3 *");
    same_schedule("0 0 ? * 1", "0 0 * * 1");
    same_schedule("0 0 1 * ?", "0 0 1 * *");
    same_schedule("*/15 * * * *", "0,15,30,45 * * * *");
    same_schedule("*/15 * * * *", "0/15 * * * *");
    same_schedule("0 0 L-0 * *", "0 0 L * *");
    same_schedule("0 0 * * fri#3", "0 0 * * 5#3");
    same_schedule("0 0 * * FRIL", "0 0 * * 5l");
    same_schedule("0 0 * * 7#1", "0 0 * * 0#1");
    same_schedule("0 7 * * *", "0 0 7 * * *");
    same_schedule("\t 0 7 * * *  ", "0 7 * * *");
}

static void test_next_bounds(void **state) {
    (void)state;
    sched_cron *c = sched_cron_parse("* * * * *", NULL);
    assert_int_equal(sched_next(c, NULL, -1), SCHED_NONE);
    assert_int_equal(sched_next(c, NULL, SCHED_TIME_MAX + 1), SCHED_NONE);
    assert_int_equal(sched_next(c, NULL, 0), 60);
    assert_int_equal(sched_next(c, zone("UTC"), 59), 60);
    assert_int_equal(sched_next(NULL, NULL, 0), SCHED_NONE);
    sched_cron_free(c);
    /* 5th Friday of February: 28 years apart and more; the search must
     * cross them quickly (a minute-by-minute scan would not). */
    c = sched_cron_parse("0 0 * 2 5#5", NULL);
    int64_t t = T("2027-01-01T00:00:00Z");
    for (int i = 0; i < 10; i++) {
        int64_t u = sched_next(c, zone("America/New_York"), t);
        assert_true(u > t);
        t = u;
    }
    char buf[40];
    /* Python: the tenth February of 29 days that starts on a Friday
     * after 2027 (2036, 2064, 2092, 2104, ... 2284). */
    assert_string_equal(Z(t, buf), "2284-02-29T05:00:00Z");
    sched_cron_free(c);
}

/* Each distinct local wall-clock time fires once: an hourly job over a
 * year of New York has one fire fewer than the year's 8760 hours (02:00
 * on the spring day does not exist and fires as 03:00), and the repeated
 * 01:00 of the autumn day fires once. */
static void test_hourly_year(void **state) {
    (void)state;
    sched_cron *c = sched_cron_parse("0 * * * *", NULL);
    const sched_zone *z = zone("America/New_York");
    int64_t t = T("2027-01-01T04:59:59Z"), end = T("2028-01-01T05:00:00Z");
    int n = 0;
    for (;;) {
        int64_t u = sched_next(c, z, t);
        assert_true(u > t);
        if (u >= end)
            break;
        n++;
        t = u;
    }
    assert_int_equal(n, 8759);
    sched_cron_free(c);

    /* Every minute for a year in Lord Howe: 525,600 local minutes; the 30
     * that do not exist fire together with 02:30 (30 fewer instants), and
     * the 30 that occur twice fire once each (none more). */
    c = sched_cron_parse("* * * * *", NULL);
    z = zone("Australia/Lord_Howe");
    t = T("2026-12-31T12:59:59Z"); /* 2027-01-01T00:00 +11, minus 1s */
    end = T("2027-12-31T13:00:00Z");
    n = 0;
    for (;;) {
        int64_t u = sched_next(c, z, t);
        assert_true(u > t);
        if (u >= end)
            break;
        n++;
        t = u;
    }
    assert_int_equal(n, 525600 - 30);
    sched_cron_free(c);
}

/* ---- intervals ---- */

static void test_every(void **state) {
    (void)state;
    int64_t s = 0;
    char *err = NULL;
    assert_int_equal(sched_every_parse("15m", &s, &err), 0);
    assert_int_equal(s, 900);
    assert_int_equal(sched_every_parse("1s", &s, &err), 0);
    assert_int_equal(s, 1);
    assert_int_equal(sched_every_parse("2000ms", &s, &err), 0);
    assert_int_equal(s, 2);
    assert_int_equal(sched_every_parse("2h", &s, &err), 0);
    assert_int_equal(s, 7200);
    static const struct {
        const char *in, *err;
    } bad[] = {
        {"", "'' is not a duration (a whole number with a unit: 30s, 15m, "
             "2h)"},
        {"soon", "'soon' is not a duration (a whole number with a unit: 30s, "
                 "15m, 2h)"},
        {"500ms", "'500ms' is shorter than the minimum of 1s"},
        {"0s", "'0s' is shorter than the minimum of 1s"},
        {"1500ms", "'1500ms' is not a whole number of seconds"},
    };
    for (size_t i = 0; i < N_OF(bad); i++) {
        err = NULL;
        assert_int_equal(sched_every_parse(bad[i].in, &s, &err), -1);
        assert_string_equal(err, bad[i].err);
        free(err);
    }
    /* Multiples of the interval since the epoch... */
    assert_int_equal(sched_every_next(900, 0, T("2027-03-14T07:07:00Z")),
                     T("2027-03-14T07:15:00Z"));
    assert_int_equal(sched_every_next(900, 0, T("2027-03-14T07:15:00Z")),
                     T("2027-03-14T07:30:00Z"));
    assert_int_equal(sched_every_next(7, 0, 0), 7);
    /* ...or of an anchor, before or after the time asked about. */
    int64_t anchor = T("2027-01-01T00:05:00Z");
    assert_int_equal(sched_every_next(900, anchor, T("2027-03-14T07:07:00Z")),
                     T("2027-03-14T07:20:00Z"));
    assert_int_equal(sched_every_next(3600, anchor, T("2026-12-31T20:00:00Z")),
                     T("2026-12-31T20:05:00Z"));
    assert_int_equal(sched_every_next(0, 0, 0), SCHED_NONE);
    assert_int_equal(sched_every_next(60, 0, -1), SCHED_NONE);
    assert_int_equal(sched_every_next(60, 0, SCHED_TIME_MAX), SCHED_NONE);
}

/* ---- text ---- */

static void test_time_text(void **state) {
    (void)state;
    int64_t t;
    assert_int_equal(sched_parse_time("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(sched_parse_time("2027-03-14T03:00:00-05:00", &t), 0);
    assert_int_equal(t, T("2027-03-14T08:00:00Z"));
    assert_int_equal(sched_parse_time("2027-03-14 08:00z", &t), 0);
    assert_int_equal(t, T("2027-03-14T08:00:00Z"));
    assert_int_equal(sched_parse_time("2027-03-14T13:45:59.999+0545", &t), 0);
    assert_int_equal(t, T("2027-03-14T08:00:59Z"));
    assert_int_equal(sched_parse_time("2028-02-29T00:00:00Z", &t), 0);
    assert_int_equal(t, 1835395200);
    /* Microseconds keep the fraction (past six digits it is cut), and
     * seconds drop it, also before 1970. */
    assert_int_equal(sched_parse_time_us("1970-01-01T00:00:01.25Z", &t), 0);
    assert_int_equal(t, 1250000);
    assert_int_equal(
        sched_parse_time_us("2026-11-28T07:00:00.1234567+01:00", &t), 0);
    assert_int_equal(t, (T("2026-11-28T06:00:00Z")) * 1000000 + 123456);
    assert_int_equal(sched_parse_time("1969-12-31T23:59:59.5Z", &t), 0);
    assert_int_equal(t, -1);
    static const char *const bad[] = {
        "2027-03-14T03:00:00",
        "2027-03-14",
        "2027-02-29T00:00Z",
        "2027-13-01T00:00Z",
        "2027-03-14T24:00Z",
        "2027-03-14T03:60Z",
        "2027-03-14T03:00:60Z",
        "2027-03-14T03:00+5",
        "2027-03-14T03:00Zx",
        "27-03-14T03:00Z",
        "2027-03-14T03:00:00.Z",
        "now",
        "",
    };
    for (size_t i = 0; i < N_OF(bad); i++)
        if (sched_parse_time(bad[i], &t) == 0)
            fail_msg("'%s' parsed", bad[i]);
    char buf[40];
    assert_string_equal(sched_format_time(zone("America/Chicago"),
                                          T("2027-03-14T08:00:00Z"), buf,
                                          sizeof(buf)),
                        "2027-03-14T03:00:00-05:00");
    assert_string_equal(sched_format_time(zone("Asia/Kathmandu"),
                                          T("2027-03-14T08:00:00Z"), buf,
                                          sizeof(buf)),
                        "2027-03-14T13:45:00+05:45");
    assert_string_equal(sched_format_time(zone("America/New_York"),
                                          T("1800-01-01T00:00:00Z"), buf,
                                          sizeof(buf)),
                        "1799-12-31T19:03:58-04:56:02");
    assert_string_equal(sched_format_time(zone("UTC"), 0, buf, sizeof(buf)),
                        "1970-01-01T00:00:00+00:00");
    assert_string_equal(Z(SCHED_TIME_MAX, buf), "9999-12-31T23:59:59Z");
}

/* ---- triggers ---- */

static json_t *J(const char *text) {
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        fail_msg("bad JSON in test: %s", text);
    return v;
}

static void test_check_trigger(void **state) {
    (void)state;
    static const struct {
        const char *trigger, *msg;
    } cases[] = {
        {"{\"type\": \"schedule\", \"cron\": \"0 7 * * *\"}", NULL},
        {"{\"type\": \"schedule\", \"cron\": \"0 7 * * *\", \"timezone\": "
         "\"America/Chicago\", \"timezone_config\": \"building_tz\", "
         "\"misfire\": \"run_once\"}",
         NULL},
        {"{\"type\": \"schedule\", \"every\": \"15m\", \"anchor\": "
         "\"2027-01-01T00:05:00Z\"}",
         NULL},
        {"[]", "type: the trigger is not an object"},
        {"{\"type\": \"webhook\"}",
         "type: expected \"schedule\", not \"webhook\""},
        {"{}", "type: expected \"schedule\", not a missing type"},
        {"{\"type\": \"schedule\"}",
         "cron: a schedule needs \"cron\" (an expression such as \"0 7 * * "
         "*\") or \"every\" (an interval such as \"15m\")"},
        {"{\"type\": \"schedule\", \"cron\": \"* * * * *\", \"every\": "
         "\"1m\"}",
         "every: give either cron or every, not both"},
        {"{\"type\": \"schedule\", \"cron\": 5}",
         "cron: expected a string such as \"0 7 * * *\""},
        {"{\"type\": \"schedule\", \"cron\": \"0 7 * * 8\"}",
         "cron: day-of-week: '8' is out of range 0-7"},
        {"{\"type\": \"schedule\", \"every\": 60}",
         "every: expected a duration string such as \"15m\""},
        {"{\"type\": \"schedule\", \"every\": \"100ms\"}",
         "every: '100ms' is shorter than the minimum of 1s"},
        {"{\"type\": \"schedule\", \"cron\": \"0 7 * * *\", \"anchor\": "
         "\"2027-01-01T00:00:00Z\"}",
         "anchor: only an \"every\" schedule takes an anchor"},
        {"{\"type\": \"schedule\", \"every\": \"1h\", \"anchor\": "
         "\"yesterday\"}",
         "anchor: expected an ISO 8601 time with an offset, such as "
         "\"2027-01-01T00:05:00Z\""},
        {"{\"type\": \"schedule\", \"cron\": \"0 7 * * *\", \"timezone\": 1}",
         "timezone: expected a time zone name such as \"America/Chicago\""},
        {"{\"type\": \"schedule\", \"cron\": \"0 7 * * *\", \"timezone\": "
         "\"Mars/Base\"}",
         "timezone: unknown time zone 'Mars/Base'"},
        {"{\"type\": \"schedule\", \"cron\": \"0 7 * * *\", \"timezone\": "
         "\"../../etc/passwd\"}",
         "timezone: '../../etc/passwd' is not a time zone name (IANA names "
         "look like America/Chicago)"},
        {"{\"type\": \"schedule\", \"cron\": \"0 7 * * *\", "
         "\"timezone_config\": \"\"}",
         "timezone_config: expected the name of a config variable"},
        {"{\"type\": \"schedule\", \"cron\": \"0 7 * * *\", \"misfire\": "
         "\"twice\"}",
         "misfire: expected \"skip\" or \"run_once\""},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        json_t *t = J(cases[i].trigger);
        char msg[512] = "";
        int rc = sched_check_trigger(t, msg, sizeof(msg));
        if (cases[i].msg ? rc != -1 || strcmp(msg, cases[i].msg) : rc != 0)
            fail_msg("%s: rc %d, '%s'", cases[i].trigger, rc, msg);
        json_decref(t);
    }
}

static void test_spec_zone_override(void **state) {
    (void)state;
    json_t *trig = J("{\"type\": \"schedule\", \"cron\": \"0 7 * * *\", "
                     "\"timezone\": \"America/Chicago\", "
                     "\"timezone_config\": \"building_tz\"}");
    char msg[512], buf[40];
    sched_spec s;
    /* No config, or the value unset (null): the trigger's zone. */
    assert_int_equal(sched_spec_from_trigger(&s, trig, NULL, msg, sizeof(msg)),
                     0);
    assert_string_equal(sched_zone_name(s.zone), "America/Chicago");
    assert_string_equal(Z(sched_spec_next(&s, T("2027-03-14T00:00:00Z")), buf),
                        "2027-03-14T12:00:00Z");
    sched_spec_clear(&s);
    json_t *cfg = J("{\"building_tz\": null}");
    assert_int_equal(sched_spec_from_trigger(&s, trig, cfg, msg, sizeof(msg)),
                     0);
    assert_string_equal(sched_zone_name(s.zone), "America/Chicago");
    sched_spec_clear(&s);
    json_decref(cfg);
    /* The building's own zone: 7 AM in Berlin. */
    cfg = J("{\"building_tz\": \"Europe/Berlin\"}");
    assert_int_equal(sched_spec_from_trigger(&s, trig, cfg, msg, sizeof(msg)),
                     0);
    assert_string_equal(sched_zone_name(s.zone), "Europe/Berlin");
    assert_string_equal(Z(sched_spec_next(&s, T("2027-03-14T00:00:00Z")), buf),
                        "2027-03-14T06:00:00Z");
    sched_spec_clear(&s);
    json_decref(cfg);
    cfg = J("{\"building_tz\": 5}");
    assert_int_equal(sched_spec_from_trigger(&s, trig, cfg, msg, sizeof(msg)),
                     -1);
    assert_string_equal(msg, "config.building_tz: expected a time zone name "
                             "such as \"America/Chicago\"");
    json_decref(cfg);
    cfg = J("{\"building_tz\": \"Mars/Base\"}");
    assert_int_equal(sched_spec_from_trigger(&s, trig, cfg, msg, sizeof(msg)),
                     -1);
    assert_string_equal(msg,
                        "config.building_tz: unknown time zone 'Mars/Base'");
    json_decref(cfg);
    json_decref(trig);
    /* No timezone at all: UTC. An interval with an anchor. */
    trig = J("{\"type\": \"schedule\", \"every\": \"1h\", \"anchor\": "
             "\"2027-01-01T00:05:00+01:00\"}");
    assert_int_equal(sched_spec_from_trigger(&s, trig, NULL, msg, sizeof(msg)),
                     0);
    assert_string_equal(sched_zone_name(s.zone), "UTC");
    assert_null(s.cron);
    assert_int_equal(s.every_s, 3600);
    assert_string_equal(Z(sched_spec_next(&s, T("2027-03-14T00:00:00Z")), buf),
                        "2027-03-14T00:05:00Z");
    sched_spec_clear(&s);
    json_decref(trig);
}

/* The diagnostics for `ferry validate` and deploy: an integration with
 * every kind of schedule error, and an instance with a bad zone. */
static void test_validate(void **state) {
    (void)state;
    abi_registry reg;
    char *err = NULL;
    abi_registry_init(&reg);
    assert_int_equal(
        abi_registry_add_builtin(&reg, flow_core_component(), &err), 0);
    json_t *doc = J(
        "{\"name\": \"v\", \"version\": \"1.0.0\", \"config\": {"
        "  \"tz\": {\"type\": \"string\"}, \"n\": {\"type\": \"integer\"}},"
        " \"flows\": ["
        "  {\"name\": \"a\", \"trigger\": {\"type\": \"schedule\", "
        "   \"cron\": \"0 7 * * *\", \"timezone_config\": \"tz\"}, \"steps\": "
        "   [{\"name\": \"s\", \"action\": \"core.log\", \"input\": "
        "   {\"message\": \"x\"}}]},"
        "  {\"name\": \"b\", \"trigger\": {\"type\": \"schedule\", "
        "   \"cron\": \"0 0 30 2 *\"}, \"steps\": "
        "   [{\"name\": \"s\", \"action\": \"core.log\", \"input\": "
        "   {\"message\": \"x\"}}]},"
        "  {\"name\": \"c\", \"trigger\": {\"type\": \"schedule\", "
        "   \"every\": \"1h\", \"timezone_config\": \"nope\"}, \"steps\": "
        "   [{\"name\": \"s\", \"action\": \"core.log\", \"input\": "
        "   {\"message\": \"x\"}}]},"
        "  {\"name\": \"d\", \"trigger\": {\"type\": \"schedule\", "
        "   \"every\": \"1h\", \"timezone_config\": \"n\"}, \"steps\": "
        "   [{\"name\": \"s\", \"action\": \"core.log\", \"input\": "
        "   {\"message\": \"x\"}}]},"
        "  {\"name\": \"e\", \"trigger\": {\"type\": \"manual\"}, \"steps\": "
        "   [{\"name\": \"s\", \"action\": \"core.log\", \"input\": "
        "   {\"message\": \"x\"}}]}]}");
    flow_diags d = {0};
    flow_integration *ig = flow_integration_from_json(doc, "v.json", &reg, &d);
    assert_non_null(ig);
    assert_int_equal(d.n, 0);
    assert_int_equal(sched_validate_integration(ig, &d), 3);
    assert_string_equal(d.items[0].file, "v.json");
    assert_string_equal(d.items[0].path, "flows[1].trigger.cron");
    assert_string_equal(d.items[0].message,
                        "never fires: day-of-month '30' does not occur in "
                        "month '2'");
    assert_string_equal(d.items[1].path, "flows[2].trigger.timezone_config");
    assert_string_equal(d.items[1].message,
                        "'nope' is not a config variable of this integration");
    assert_string_equal(d.items[2].path, "flows[3].trigger.timezone_config");
    assert_string_equal(d.items[2].message,
                        "config variable 'n' must have type string, not "
                        "integer");
    flow_diags_free(&d);

    json_t *idoc = J("{\"integration\": \"v\", \"name\": \"i\", "
                     "\"config\": {\"tz\": \"Mars/Base\", \"n\": 1}}");
    flow_instance *in = flow_instance_from_json(idoc, "i.json", ig, &reg, &d);
    assert_non_null(in);
    assert_int_equal(sched_validate_instance(ig, in, &d), 1);
    assert_string_equal(d.items[0].file, "i.json");
    assert_string_equal(d.items[0].path, "config.tz");
    assert_string_equal(d.items[0].message, "unknown time zone 'Mars/Base'");
    flow_diags_free(&d);
    flow_instance_free(in);
    json_decref(idoc);
    idoc = J("{\"integration\": \"v\", \"name\": \"i\", "
             "\"config\": {\"tz\": \"Asia/Kathmandu\"}}");
    in = flow_instance_from_json(idoc, "i.json", ig, &reg, &d);
    assert_non_null(in);
    assert_int_equal(sched_validate_instance(ig, in, &d), 0);
    flow_instance_free(in);
    json_decref(idoc);
    flow_integration_free(ig);
    json_decref(doc);
    abi_registry_free(&reg);
}

static int teardown(void **state) {
    (void)state;
    sched_zone_cache_clear();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zone_offsets),
        cmocka_unit_test(test_zone_to_utc),
        cmocka_unit_test(test_zone_names),
        cmocka_unit_test(test_footer_rules),
        cmocka_unit_test(test_tzif_v1_and_transitions),
        cmocka_unit_test(test_tzif_malformed),
        cmocka_unit_test(test_zone_tzdir),
        cmocka_unit_test(test_cron_vectors),
        cmocka_unit_test(test_cron_errors),
        cmocka_unit_test(test_cron_equivalent_forms),
        cmocka_unit_test(test_next_bounds),
        cmocka_unit_test(test_hourly_year),
        cmocka_unit_test(test_every),
        cmocka_unit_test(test_time_text),
        cmocka_unit_test(test_check_trigger),
        cmocka_unit_test(test_spec_zone_override),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
