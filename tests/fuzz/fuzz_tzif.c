/* Fuzzes sched_zone_from_tzif: any bytes as a TZif file. A refusal has one
 * message; an accepted zone answers offsets within a day of UTC at any
 * instant, maps local times back consistently, and gives next fire times
 * later than the time asked about (or none), without looping. */
#include "fuzz.h"
#include "sched/sched.h"

#include <stdlib.h>
#include <string.h>

/* The extremes, 1811, around 1970, New York's 2027 changes, 2100 and the
 * end of the range. Indexes 3 to 6 are where next fire times start. */
static const int64_t instants[] = {
    INT64_MIN,  -5000000000LL, -1,           0,         1805007600,
    1825567200, 4108690800,    253402300799, INT64_MAX,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *err = NULL;
    sched_zone *z = sched_zone_from_tzif("fuzz", data, size, &err);
    if (!z) {
        if (!err || !strstr(err, "time zone 'fuzz': ") || strchr(err, '\n'))
            abort();
        free(err);
        return 0;
    }
    if (err)
        abort();
    for (size_t i = 0; i < sizeof(instants) / sizeof(*instants); i++) {
        int isdst = -1;
        const char *abbr = NULL;
        int off = sched_zone_lookup(z, instants[i], &isdst, &abbr);
        if (off < -25 * 3600 || off > 26 * 3600 || (isdst != 0 && isdst != 1) ||
            !abbr)
            abort();
        (void)strlen(abbr);
        int64_t out[2];
        int n = sched_zone_to_utc(z, instants[i], out);
        if (n < 0 || n > 2 || (n == 2 && out[0] >= out[1]))
            abort();
    }
    static const char *const exprs[] = {"30 2 * * *", "* * * * *",
                                        "0 0 L * 5#2"};
    for (size_t e = 0; e < sizeof(exprs) / sizeof(*exprs); e++) {
        sched_cron *c = sched_cron_parse(exprs[e], NULL);
        if (!c)
            abort();
        for (size_t i = 3; i < 7; i++) {
            int64_t t = instants[i];
            for (int k = 0; k < 3; k++) {
                int64_t r = sched_next(c, z, t);
                if (r == SCHED_NONE)
                    break;
                if (r <= t)
                    abort();
                t = r;
            }
        }
        sched_cron_free(c);
    }
    sched_zone_free(z);
    return 0;
}

void fuzz_target_cleanup(void) {}
