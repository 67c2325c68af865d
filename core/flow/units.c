/*
 * Durations and sizes as people write them in definitions and settings:
 * "30s", "15m", "64KiB". Shared by flow definitions (limits) and the host's
 * configuration, so that both accept exactly the same forms.
 */
#include "flow.h"

#include <stdint.h>
#include <string.h>

/* Parses the leading digits of s into *v. Returns the first non-digit, or
 * NULL if there is no digit or the number does not fit. */
static const char *parse_digits(const char *s, uint64_t *v) {
    uint64_t n = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            return NULL;
        n = n * 10 + d;
    }
    if (p == s)
        return NULL;
    *v = n;
    return p;
}

typedef struct unit {
    const char *name;
    uint64_t factor;
} unit;

static int parse_with_units(const char *s, const unit *units, uint64_t *out) {
    uint64_t n;
    const char *rest;
    if (!s || !(rest = parse_digits(s, &n)))
        return -1;
    uint64_t factor = 0;
    if (!*rest)
        factor = 1;
    for (const unit *u = units; !factor && u->name; u++)
        if (!strcmp(rest, u->name))
            factor = u->factor;
    if (!factor || (n && n > UINT64_MAX / factor))
        return -1;
    *out = n * factor;
    return 0;
}

int flow_parse_duration_ms(const char *s, uint64_t *out) {
    static const unit units[] = {{"ms", 1},
                                 {"s", 1000},
                                 {"m", 60 * 1000},
                                 {"h", 60 * 60 * 1000},
                                 {"d", 24 * 60 * 60 * 1000},
                                 {NULL, 0}};
    return parse_with_units(s, units, out);
}

int flow_parse_size(const char *s, uint64_t *out) {
    static const unit units[] = {{"B", 1},
                                 {"KiB", 1024},
                                 {"MiB", 1024 * 1024},
                                 {"GiB", 1024 * 1024 * 1024},
                                 {NULL, 0}};
    return parse_with_units(s, units, out);
}

uint64_t flow_retry_delay_ms(const flow_retry *r, int attempt, double rnd) {
    uint64_t d = r->initial_ms;
    for (int i = 1; r->exponential && i < attempt && d < r->max_ms; i++)
        d *= 2;
    if (d > r->max_ms)
        d = r->max_ms;
    /* Equal jitter: half fixed, half random, so a crowd spreads out but no
     * delay comes out near zero. */
    if (r->jitter)
        d = d / 2 + (uint64_t)((double)(d - d / 2) * rnd);
    return d;
}

int flow_retry_matches(const flow_retry *r, int code, int retryable) {
    if (r->max_attempts < 2 || code == FERRY_ECANCELLED)
        return 0;
    if (retryable && r->on_retryable)
        return 1;
    for (int i = 0; i < r->ncodes; i++)
        if (r->codes[i] == code)
            return 1;
    return 0;
}
