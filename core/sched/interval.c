/* Interval schedules: {"every": "15m"} fires at anchor + k * interval. */
#include "civil.h"
#include "flow/flow.h"
#include "sched.h"

#include <stdio.h>
#include <stdlib.h>

static int fail(char **err, const char *text, const char *why) {
    if (err && asprintf(err, "'%s' %s", text, why) < 0)
        *err = NULL;
    return -1;
}

int sched_every_parse(const char *text, int64_t *seconds, char **err) {
    uint64_t ms;
    if (!text || flow_parse_duration_ms(text, &ms))
        return fail(err, text ? text : "",
                    "is not a duration (a whole number with a unit: 30s, "
                    "15m, 2h)");
    if (ms < 1000)
        return fail(err, text, "is shorter than the minimum of 1s");
    if (ms % 1000)
        return fail(err, text, "is not a whole number of seconds");
    if (ms / 1000 > (uint64_t)SCHED_TIME_MAX)
        return fail(err, text, "is too long");
    *seconds = (int64_t)(ms / 1000);
    return 0;
}

int64_t sched_every_next(int64_t seconds, int64_t anchor_utc_s,
                         int64_t after_utc_s) {
    if (seconds < 1 || seconds > SCHED_TIME_MAX || after_utc_s < 0 ||
        after_utc_s > SCHED_TIME_MAX || anchor_utc_s < -SCHED_TIME_MAX ||
        anchor_utc_s > SCHED_TIME_MAX)
        return SCHED_NONE;
    int64_t k = civil_floor_div(after_utc_s - anchor_utc_s, seconds) + 1;
    int64_t r = anchor_utc_s + k * seconds;
    return r > SCHED_TIME_MAX ? SCHED_NONE : r;
}
