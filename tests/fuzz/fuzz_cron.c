/* Fuzzes sched_cron_parse: any bytes as a cron expression. A refusal has
 * one message on one printable line; an accepted expression fires after
 * each of a few fixed times in a few zones, later than that time (never
 * "none": it was not refused as never firing, so some day in every 400
 * years matches), and the search is bounded (a slow input would show as a
 * libFuzzer timeout). */
#include "fuzz.h"
#include "sched/sched.h"

#include <stdlib.h>
#include <string.h>

static const char *const zones[] = {"UTC", "America/New_York",
                                    "Australia/Lord_Howe", "Asia/Kathmandu"};

/* 1970; 2027-03-14T06:59:00Z and 07:00:00Z (New York's spring gap);
 * 2027-11-07T05:30:00Z and 06:00:00Z (its repeated hour, first and second
 * pass); 2027-04-03T15:00:00Z and 2027-10-02T15:30:00Z (Lord Howe's
 * changes); 2100-03-14T07:00:00Z (the footer's rule); 9999-01-01. */
static const int64_t starts[] = {
    0,          1805007540, 1805007600, 1825565400,   1825567200,
    1806764400, 1822491000, 4108690800, 253370764800,
};

static void check_message(const char *err) {
    if (!err || !*err)
        abort();
    for (const char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 512)
        return 0;
    char *expr = malloc(size + 1);
    if (!expr)
        return 0;
    memcpy(expr, data, size);
    expr[size] = 0;
    char *err = NULL;
    sched_cron *c = sched_cron_parse(expr, &err);
    free(expr);
    if (!c) {
        check_message(err);
        free(err);
        return 0;
    }
    if (err)
        abort();
    for (size_t z = 0; z < sizeof(zones) / sizeof(*zones) + 1; z++) {
        const sched_zone *zone = NULL;
        if (z < sizeof(zones) / sizeof(*zones) &&
            !(zone = sched_zone_load(zones[z], NULL)))
            abort();
        for (size_t i = 0; i < sizeof(starts) / sizeof(*starts); i++) {
            int64_t t = starts[i];
            for (int k = 0; k < 3; k++) {
                int64_t r = sched_next(c, zone, t);
                /* Accepted means some day matches, so within 400 years
                 * something fires. */
                if (r == SCHED_NONE || r <= t)
                    abort();
                t = r;
                if (t > SCHED_TIME_MAX)
                    break;
            }
        }
    }
    sched_cron_free(c);
    return 0;
}

void fuzz_target_cleanup(void) {
    sched_zone_cache_clear();
}
