/*
 * Schedule triggers as written in a flow: {"type": "schedule", "cron" |
 * "every", "timezone", "timezone_config", "anchor", "misfire"}, checked on
 * their own (sched_check_trigger) and made into a sched_spec for one
 * instance's config.
 */
#include "sched.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *msg, size_t n, const char *fmt, ...) {
    va_list ap;
    if (msg && n) {
        va_start(ap, fmt);
        vsnprintf(msg, n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int fail_err(char *msg, size_t n, const char *key, char *err) {
    fail(msg, n, "%s: %s", key, err ? err : "out of memory");
    free(err);
    return -1;
}

/* Everything but the instance's zone. */
static int build(sched_spec *s, const json_t *t, char *msg, size_t n) {
    memset(s, 0, sizeof(*s));
    if (!json_is_object(t))
        return fail(msg, n, "type: the trigger is not an object");
    const char *type = json_string_value(json_object_get(t, "type"));
    if (!type || strcmp(type, "schedule"))
        return fail(msg, n, "type: expected \"schedule\", not %s%s%s",
                    type ? "\"" : "", type ? type : "a missing type",
                    type ? "\"" : "");
    const json_t *cron = json_object_get(t, "cron");
    const json_t *every = json_object_get(t, "every");
    const json_t *tz = json_object_get(t, "timezone");
    const json_t *tzc = json_object_get(t, "timezone_config");
    const json_t *anchor = json_object_get(t, "anchor");
    const json_t *misfire = json_object_get(t, "misfire");
    char *err = NULL;
    if (cron && every)
        return fail(msg, n, "every: give either cron or every, not both");
    if (!cron && !every)
        return fail(msg, n,
                    "cron: a schedule needs \"cron\" (an expression such as "
                    "\"0 7 * * *\") or \"every\" (an interval such as "
                    "\"15m\")");
    if (cron) {
        if (!json_is_string(cron))
            return fail(msg, n,
                        "cron: expected a string such as "
                        "\"0 7 * * *\"");
        if (!(s->cron = sched_cron_parse(json_string_value(cron), &err)))
            return fail_err(msg, n, "cron", err);
    } else {
        if (!json_is_string(every))
            return fail(msg, n,
                        "every: expected a duration string such as "
                        "\"15m\"");
        if (sched_every_parse(json_string_value(every), &s->every_s, &err))
            return fail_err(msg, n, "every", err);
    }
    if (anchor) {
        if (!every)
            return fail(msg, n,
                        "anchor: only an \"every\" schedule takes an "
                        "anchor");
        if (!json_is_string(anchor) ||
            sched_parse_time(json_string_value(anchor), &s->anchor_s))
            return fail(msg, n,
                        "anchor: expected an ISO 8601 time with an offset, "
                        "such as \"2027-01-01T00:05:00Z\"");
    }
    if (tz && !json_is_string(tz))
        return fail(msg, n,
                    "timezone: expected a time zone name such as "
                    "\"America/Chicago\"");
    if (tzc && (!json_is_string(tzc) || !*json_string_value(tzc)))
        return fail(msg, n,
                    "timezone_config: expected the name of a config "
                    "variable");
    if (misfire) {
        const char *m = json_string_value(misfire);
        if (!m || (strcmp(m, "skip") && strcmp(m, "run_once")))
            return fail(msg, n, "misfire: expected \"skip\" or \"run_once\"");
        s->run_once = !strcmp(m, "run_once");
    }
    const char *name = tz ? json_string_value(tz) : "UTC";
    if (!(s->zone = sched_zone_load(name, &err)))
        return fail_err(msg, n, "timezone", err);
    return 0;
}

int sched_check_trigger(const json_t *trigger, char *msg, size_t n) {
    sched_spec s;
    int rc = build(&s, trigger, msg, n);
    sched_spec_clear(&s);
    return rc;
}

int sched_spec_from_trigger(sched_spec *s, const json_t *trigger,
                            const json_t *config, char *msg, size_t n) {
    if (build(s, trigger, msg, n)) {
        sched_spec_clear(s);
        return -1;
    }
    const char *var =
        json_string_value(json_object_get(trigger, "timezone_config"));
    const json_t *v = var ? json_object_get(config, var) : NULL;
    if (v && !json_is_null(v)) {
        char *err = NULL;
        const sched_zone *z = NULL;
        if (!json_is_string(v))
            fail(msg, n,
                 "config.%s: expected a time zone name such as "
                 "\"America/Chicago\"",
                 var);
        else if (!(z = sched_zone_load(json_string_value(v), &err)))
            fail(msg, n, "config.%s: %s", var, err ? err : "out of memory");
        free(err);
        if (!z) {
            sched_spec_clear(s);
            return -1;
        }
        s->zone = z;
    }
    return 0;
}

int64_t sched_spec_next(const sched_spec *s, int64_t after_utc_s) {
    if (s->cron)
        return sched_next(s->cron, s->zone, after_utc_s);
    return sched_every_next(s->every_s, s->anchor_s, after_utc_s);
}

void sched_spec_clear(sched_spec *s) {
    sched_cron_free(s->cron);
    memset(s, 0, sizeof(*s));
}
