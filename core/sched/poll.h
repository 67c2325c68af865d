/*
 * Poll triggers as written in a flow:
 *
 *   {"type": "poll", "source": "file.poll", "every": "10s" | "cron": ...,
 *    "timezone": ..., "batch_size": 1, "options": {...}}
 *   {"type": "poll", "source": "sftp.new_files", "connection": NAME,
 *    "options": {...the component's...}, "files": {...file options...}}
 *
 * checked on their own (poll_check_trigger), made into a poll_spec for one
 * instance's config (poll_spec_from_trigger), and the pure parts of the
 * built-in file.poll: the file options, a directory scan, and which of the
 * files found may be taken now (the read lock, min_age, sort_by).
 */
#ifndef FERRY_CORE_SCHED_POLL_H
#define FERRY_CORE_SCHED_POLL_H

#include "sched.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct flow_integration;
struct flow_instance;
struct flow_diags;

/* The built-in source: a local directory. */
#define POLL_FILE_SOURCE "file.poll"

enum poll_sort { POLL_SORT_NAME, POLL_SORT_MTIME, POLL_SORT_SIZE };

/* The file options (named as Apache Camel's file consumer names them where
 * they overlap), for file.poll and for file-like component sources. */
typedef struct poll_file_opts {
    char *directory; /* file.poll: required */
    char **include;  /* globs; none: every file */
    size_t ninclude;
    char **exclude;
    size_t nexclude;
    int recursive;
    int64_t min_age_ms;
    int read_lock;                 /* 1: "changed" (default), 0: "none" */
    int64_t read_lock_interval_ms; /* unchanged this long to be stable */
    size_t max_per_poll;           /* 0: no limit */
    enum poll_sort sort_by;
    int sort_desc;
    char *move_to;        /* after success; NULL: not moved */
    char *move_failed_to; /* after failure; NULL: left in place */
    int delete_after;     /* delete after success */
    int keep;             /* leave every file where it is */
} poll_file_opts;

typedef struct poll_spec {
    char *source;     /* "file.poll" or "<component>.<trigger>" */
    sched_spec sched; /* when to poll (file.poll also on file events) */
    size_t batch_size;
    json_t *options;     /* resolved: config references replaced; owned */
    poll_file_opts file; /* file.poll's options; a component's "files" */
} poll_spec;

/* Whether a flow's trigger is a poll. */
int poll_is_trigger(const json_t *trigger);

/* Checks a poll trigger without an instance (config references are taken
 * as they are). Returns 0, or -1 with "KEY: reason" in msg. */
int poll_check_trigger(const json_t *trigger, char *msg, size_t n);

/* Builds the spec for an instance's config (borrowed). Returns 0, or -1
 * with "KEY: reason" in msg; poll_spec_clear frees it either way. */
int poll_spec_from_trigger(poll_spec *s, const json_t *trigger,
                           const json_t *config, char *msg, size_t n);
void poll_spec_clear(poll_spec *s);

/* Validation in the shape of definition diagnostics (next to
 * sched_validate_integration). */
int poll_validate_integration(const struct flow_integration *ig,
                              struct flow_diags *d);
int poll_validate_instance(const struct flow_integration *ig,
                           const struct flow_instance *in,
                           struct flow_diags *d);

/* ---- file.poll ---- */

/* One file a scan found. */
typedef struct poll_file {
    char *rel; /* path relative to the directory */
    uint64_t size;
    int64_t mtime_ns;
    int64_t stable_since_ms; /* when this size and mtime were first seen */
} poll_file;

typedef struct poll_look {
    poll_file *files; /* sorted by rel */
    size_t n;
} poll_look;

void poll_look_clear(poll_look *l);

/* Lists the regular files under o->directory that the include and exclude
 * globs select (recursively if o->recursive). Entries whose name starts
 * with '.' are skipped, so are the move_to and move_failed_to directories.
 * Returns 0, or -1 with the reason in err. */
int poll_scan(const poll_file_opts *o, poll_look *out, char *err, size_t n);

/* Carries stable_since_ms over from prev (the last look) into cur for the
 * files whose size and mtime did not change; the others start at now_ms. */
void poll_look_carry(poll_look *cur, const poll_look *prev, int64_t now_ms);

/* The indices (into look->files) of the files that may be taken at now_ms,
 * in sort_by order, in *idx (malloc'd; *n of them). *recheck_ms: the
 * earliest time a file not yet stable or old enough may become so, or -1.
 * Returns 0 or -1 (out of memory). */
int poll_ready(const poll_file_opts *o, const poll_look *look, int64_t now_ms,
               size_t **idx, size_t *n, int64_t *recheck_ms);

/* The dedupe key of a file: its relative path, size and mtime. */
char *poll_file_key(const poll_file *f);

/* Whether a glob selects rel: a glob with a '/' is matched against the
 * whole relative path, one without against the file's name. */
int poll_glob_match(const char *glob, const char *rel);

#endif
