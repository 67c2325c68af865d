/*
 * sched: when a scheduled flow fires. Time zones read from the system's tz
 * database (TZif files, RFC 8536) without touching the process's TZ, cron
 * expressions, intervals, and the next fire time after an instant under the
 * DST policy of docs/schedules.md.
 *
 * Owns: parsing schedules and zones, and computing fire times (pure
 * functions of their inputs; no clock is read here, callers pass "now").
 * Must not touch: the store, the event loop, timers, the process's TZ.
 * Depends on flow for flow_parse_duration_ms and, in validate.c, for its
 * definitions and diagnostics; flow must not depend on sched.
 *
 * Times are whole seconds since the Unix epoch (UTC) as int64_t. A "local"
 * time is a civil date and time in a zone, counted the same way as if that
 * zone were UTC (local = utc + offset).
 */
#ifndef FERRY_CORE_SCHED_H
#define FERRY_CORE_SCHED_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* "No fire time": returned by the next-time functions. */
#define SCHED_NONE ((int64_t)-1)
/* The range the next-time functions work in: 1970-01-01T00:00:00Z to
 * 9999-12-31T23:59:59Z. An `after` outside it gives SCHED_NONE. */
#define SCHED_TIME_MAX ((int64_t)253402300799)

/* ---- time zones (tz.c) ---- */

typedef struct sched_zone sched_zone;

/* The zone named name (an IANA name such as "America/Chicago", or "UTC"),
 * read from $TZDIR, else /usr/share/zoneinfo. Names with "..", a leading
 * "/", or characters outside [A-Za-z0-9_+-/] are refused before any file
 * is opened. Zones are cached by name for the life of the process (until
 * sched_zone_cache_clear): the result is borrowed from the cache, and the
 * same name gives the same pointer. Thread-safe. Returns NULL with *err
 * malloc'd ("unknown time zone 'Mars/Base'") on failure. */
const sched_zone *sched_zone_load(const char *name, char **err);
/* Frees every cached zone. Only for leak checks at exit: pointers handed
 * out before are dangling afterwards. */
void sched_zone_cache_clear(void);

/* Parses a TZif file (versions 1 to 4) held in memory; name labels it.
 * Not cached: the caller frees the result with sched_zone_free. Returns
 * NULL with *err malloc'd if the data is not a well-formed TZif file. */
sched_zone *sched_zone_from_tzif(const char *name, const uint8_t *data,
                                 size_t size, char **err);
/* Frees a zone from sched_zone_from_tzif (never one from the cache). */
void sched_zone_free(sched_zone *z);

/* The name the zone was loaded as. Borrowed from z. */
const char *sched_zone_name(const sched_zone *z);

/* The zone's UTC offset at utc_s, in seconds east of UTC (-18000 for New
 * York in winter). */
int sched_zone_offset(const sched_zone *z, int64_t utc_s);
/* As sched_zone_offset, and whether DST is in effect and the abbreviation
 * ("EDT", "+0545"); either out pointer may be NULL. The abbreviation is
 * borrowed from z. */
int sched_zone_lookup(const sched_zone *z, int64_t utc_s, int *isdst,
                      const char **abbrev);

/* The UTC instants whose local time in z is local_s. Returns 1 with out[0]
 * for an ordinary time; 2 with out[0] < out[1] for a time that occurs twice
 * (when clocks go back); 0 for a time that does not exist (clocks went
 * forward over it), with out[0] the first instant after the gap. */
int sched_zone_to_utc(const sched_zone *z, int64_t local_s, int64_t out[2]);

/* "{{ config.NAME }}" (spaces optional), the whole string: NAME in buf
 * (buflen bytes). Returns 0 if s is one such reference, else -1. */
int sched_config_ref(const char *s, char *buf, size_t buflen);

/* ---- text times ---- */

/* Parses an ISO 8601 / RFC 3339 date and time with "Z" or a UTC offset:
 * "2027-03-14T03:00:00-05:00", "2027-03-14T08:00Z", "2027-03-14 08:00:00Z".
 * Fractions of a second are dropped. Returns 0 with *out, or -1. */
int sched_parse_time(const char *s, int64_t *out);
/* As sched_parse_time, in microseconds, keeping a fraction of a second
 * (digits past the sixth are ignored). */
int sched_parse_time_us(const char *s, int64_t *out);
/* Writes utc_s as local time in z with its offset,
 * "2027-03-14T03:00:00-05:00" (z NULL: UTC, "...Z"). buf needs 32 bytes;
 * returns buf. */
char *sched_format_time(const sched_zone *z, int64_t utc_s, char *buf,
                        size_t n);

/* ---- cron expressions (cron.c) ---- */

typedef struct sched_cron sched_cron;

/* Parses a cron expression: five fields (minute hour day-of-month month
 * day-of-week), six with seconds first, or a macro (@yearly @annually
 * @monthly @weekly @daily @midnight @hourly); syntax in docs/schedules.md.
 * An expression that matches no day at all ("0 0 30 2 *") is refused as
 * never firing. Returns a new schedule (free with sched_cron_free), or NULL
 * with *err malloc'd, naming the field and the token ("day-of-week: '8' is
 * out of range 0-7"). */
sched_cron *sched_cron_parse(const char *expr, char **err);
void sched_cron_free(sched_cron *c);

/* The first fire time strictly after after_utc_s of c in zone z (NULL:
 * UTC). Each matching local time fires once: at its instant; when clocks
 * went forward over it, at the first instant after the gap; when it occurs
 * twice, at its first occurrence only. Returns SCHED_NONE outside
 * [0, SCHED_TIME_MAX] or when nothing matches within 400 years (cannot
 * happen for an expression sched_cron_parse accepted). */
int64_t sched_next(const sched_cron *c, const sched_zone *z,
                   int64_t after_utc_s);

/* ---- intervals ---- */

/* Parses an interval, "15m", "90s", "2h" (flow_parse_duration_ms): a whole
 * number of seconds, at least 1. Returns 0 with *seconds, or -1 with *err
 * malloc'd. */
int sched_every_parse(const char *text, int64_t *seconds, char **err);
/* The first instant strictly after after_utc_s of the form
 * anchor_utc_s + k * seconds (k any integer; anchor 0: multiples of the
 * interval since the Unix epoch). SCHED_NONE outside [0, SCHED_TIME_MAX]
 * or if seconds < 1. */
int64_t sched_every_next(int64_t seconds, int64_t anchor_utc_s,
                         int64_t after_utc_s);

/* ---- schedule triggers (trigger.c) ---- */

/* A flow's schedule: {"type": "schedule", "cron": EXPR | "every": DURATION,
 * "timezone": NAME, "timezone_config": CONFIG_NAME, "anchor": TIME,
 * "misfire": "skip" | "run_once"}. */
typedef struct sched_spec {
    sched_cron *cron;       /* owned; NULL for an interval */
    int64_t every_s;        /* > 0 for an interval */
    int64_t anchor_s;       /* intervals fire at anchor_s + k * every_s */
    const sched_zone *zone; /* borrowed from the zone cache; never NULL */
    int run_once;           /* "misfire": "run_once" */
} sched_spec;

/* Checks a trigger that is, or claims to be, a schedule, without an
 * instance: the type, exactly one of cron and every, the expression, the
 * zone, the anchor, misfire, and that timezone_config is a non-empty string
 * (whether the integration declares that config variable is the caller's
 * to check). Returns 0, or -1 with msg set to "KEY: reason", KEY the trigger
 * member at fault ("cron: day-of-week: '8' is out of range 0-7"), so a
 * caller can prefix "flows[2].trigger.". */
int sched_check_trigger(const json_t *trigger, char *msg, size_t n);

/* Builds the schedule of trigger for an instance whose resolved config is
 * config (may be NULL). The zone is config[trigger.timezone_config] when
 * that names a config value that is set (not null), else
 * trigger.timezone, else UTC. Returns 0, or -1 with msg as for
 * sched_check_trigger, except that a bad config value gives a path in the
 * instance: "config.building_tz: unknown time zone 'Mars/Base'". Both
 * inputs borrowed. */
int sched_spec_from_trigger(sched_spec *s, const json_t *trigger,
                            const json_t *config, char *msg, size_t n);
/* The first fire time of s strictly after after_utc_s, or SCHED_NONE. */
int64_t sched_spec_next(const sched_spec *s, int64_t after_utc_s);
void sched_spec_clear(sched_spec *s);

/* ---- validation (validate.c) ---- */

struct flow_integration;
struct flow_instance;
struct flow_diags;

/* Checks that trigger's timezone_config, if any, names a variable of
 * config_decl (the integration's "config" object; may be NULL) declared
 * with type string. Returns 0, or -1 with msg "timezone_config: ...". */
int sched_check_trigger_config(const json_t *trigger, const json_t *config_decl,
                               char *msg, size_t n);
/* Adds a diag (FILE: flows[i].trigger.KEY: reason) for each schedule
 * trigger of ig that sched_check_trigger or sched_check_trigger_config
 * refuses. Returns the number added. */
int sched_validate_integration(const struct flow_integration *ig,
                               struct flow_diags *d);
/* Adds a diag (INSTANCE_FILE: config.NAME: reason) for each schedule of ig
 * whose zone the instance's config sets to something that is not a zone.
 * Triggers sched_validate_integration refuses are skipped (they are the
 * integration's errors). Returns the number added. */
int sched_validate_instance(const struct flow_integration *ig,
                            const struct flow_instance *in,
                            struct flow_diags *d);

#endif
