/*
 * store: everything durable, behind one interface.
 *
 * Owns: the schema and its migrations, execution and step records, logs,
 * per-instance state. Callers see only the store struct and its vtable; the
 * SQLite backend is the embedded default and a PostgreSQL backend will
 * implement the same table. The store must not know about flows, components
 * or the engine: it stores what it is given.
 *
 * Threads: one store handle is used by one thread at a time.
 * Strings passed in are borrowed for the call. JSON returned is a new ref.
 * Times are microseconds since the Unix epoch (UTC).
 */
#ifndef FERRY_CORE_STORE_H
#define FERRY_CORE_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;

/* One execution. Text fields borrowed. */
typedef struct store_exec {
    const char *id;
    const char *integration;
    const char *instance;
    const char *flow;
    const char *trigger_json; /* the trigger payload as JSON text */
    const char *status;       /* "queued", "running", ... */
    int64_t created_us;
    int64_t started_us; /* 0 if not started */
} store_exec;

/* The end of an execution. Text fields borrowed, may be NULL. */
typedef struct store_exec_end {
    const char *id;
    const char *status; /* "succeeded", "failed", "cancelled" */
    int64_t ended_us;
    const char *output_json; /* final output, possibly truncated */
    size_t output_size;      /* full size of the output's JSON text */
    int error_code;          /* FERRY_E* or 0 */
    const char *error_message;
    const char *error_step; /* path of the failing step */
    /* status "waiting": parked for a retry until due_us, to go on from
     * resume_json (flow_result.resume). NULL / 0 otherwise. */
    const char *resume_json;
    int64_t due_us;
} store_exec_end;

/* A dead letter: what failed for good, kept to be replayed. Text fields
 * borrowed. */
typedef struct store_dead_letter {
    const char *id; /* "dl_..." */
    const char *execution_id;
    const char *integration, *instance, *flow;
    const char *trigger_json;
    const char *step;       /* the failing step's path */
    const char *input_json; /* its resolved input (recorded size bound) */
    int error_code;
    const char *error_message;
    int attempts;
    const char *resume_json; /* to replay from the failing step */
    int64_t created_us;
} store_dead_letter;

/* One finished step. Text fields borrowed, may be NULL. */
typedef struct store_step {
    const char *execution_id;
    int seq;          /* order within the execution, from 1 */
    const char *path; /* "each[3].convert" for nested steps, else name */
    const char *name;
    const char *kind;   /* "action", "jq", "for_each", "branch" */
    const char *action; /* action id, NULL for control steps */
    const char *status; /* "succeeded", "failed", "skipped" */
    int64_t started_us;
    int64_t duration_us;
    const char *input_json; /* resolved input, possibly truncated */
    size_t input_size;      /* full size of the input's JSON text */
    const char *output_json;
    size_t output_size;
    int error_code;
    const char *error_message;
    int retryable;
} store_step;

/* One log line. Text fields borrowed; fields_json may be NULL. */
typedef struct store_log {
    const char *execution_id;
    int step_seq; /* 0 for the execution itself */
    const char *step_path;
    int64_t ts_us;
    int level; /* ferry_log_level */
    const char *message;
    const char *fields_json;
} store_log;

/* Filters for listing; NULL/0 fields do not filter. */
typedef struct store_filter {
    const char *integration;
    const char *instance;
    const char *flow;
    const char *status;
    int limit;        /* 0 means 50 */
    int oldest_first; /* nonzero: oldest first (for dispatching) */
    int64_t since_us; /* created at or after; 0: no bound */
    int64_t until_us; /* created before; 0: no bound */
} store_filter;

/* What poll_lookup says of a key a poll took. */
typedef struct store_poll_item {
    char execution_id[40];
    char status[16]; /* the execution's status; "" if its row is gone */
    int disposed;    /* the item was dealt with after the execution */
    int interrupted; /* the execution failed because the host stopped */
} store_poll_item;

typedef struct store_vtable {
    void (*close)(store *s);
    int (*exec_begin)(store *s, const store_exec *e);
    int (*exec_end)(store *s, const store_exec_end *e);
    int (*step_record)(store *s, const store_step *st);
    int (*log_append)(store *s, const store_log *l);
    /* *out: new ref, or NULL when unset. */
    int (*state_get)(store *s, const char *instance, const char *key,
                     json_t **out);
    /* value: borrowed; NULL deletes. */
    int (*state_set)(store *s, const char *instance, const char *key,
                     const json_t *value);
    /* *out: new ref to an array of execution summaries, newest first. */
    int (*exec_list)(store *s, const store_filter *f, json_t **out);
    /* *out: new ref to the execution with "steps" and "logs" arrays;
     * FERRY_ENOTFOUND if there is no such id. */
    int (*exec_get)(store *s, const char *id, json_t **out);
    /* Optional (NULL: not offered). A step has started; lets a watcher
     * know which step was running if the process dies. */
    int (*step_begin)(store *s, const char *execution_id, int seq,
                      const char *path, int64_t started_us);
    /* A queued execution starts: status "running" and its start time. */
    int (*exec_started)(store *s, const char *id, int64_t started_us);
    /* Groups the writes that follow into one transaction (group commit). */
    int (*tx_begin)(store *s);
    int (*tx_commit)(store *s);
    int (*tx_rollback)(store *s);
    /* Copies what the write-ahead log holds into the database without
     * blocking writers (SQLite: a PASSIVE checkpoint). *frames, if not
     * NULL, is set to the frames (pages) the log held when it started, or
     * -1 if not known; what is committed meanwhile is left for the next
     * one. Once a checkpoint copied the log whole and nothing was committed
     * since, the next commit starts the log again from its beginning. */
    int (*checkpoint)(store *s, int *frames);
    /* Whether commits on this handle checkpoint by themselves (the default)
     * or leave it to checkpoint() from another handle. */
    int (*set_autocheckpoint)(store *s, int on);
    /* Optional. With the automatic checkpoint off: the log's length in
     * frames after this handle's last commit (0 before any). */
    int (*log_frames)(store *s);
    /* Optional; inside a write transaction (tx_begin), which keeps other
     * writers out of the log meanwhile. Makes the log's file long enough
     * for `frames` frames by writing zeros past its end, at most `step`
     * frames' worth in one call; returns the frames the file holds after
     * it, or -1 (FERRY_EIO, the file cut back to where it ended). Appends
     * up to there then overwrite blocks the filesystem has allocated
     * instead of allocating them: an append that allocates waits while a
     * checkpoint's sync writes the file back (20 to 30 ms measured on
     * ext4). Zeros past the log's last frame are never read as frames. */
    int (*log_reserve)(store *s, int frames, int step);
    /* Optional. Whether the transaction tx_begin opened is still open: a
     * statement that fails for want of space or on an I/O error can roll
     * the whole transaction back (SQLite does for some errors), and what
     * runs after it would then commit on its own. */
    int (*tx_open)(store *s);
    /* Records that a schedule fired: the key (instance, flow, fire_us) is
     * unique, FERRY_EEXISTS if that tick is already recorded (another host,
     * or an earlier life of this one, fired it). execution_id may be NULL
     * (a tick that started nothing). */
    int (*tick_insert)(store *s, const char *instance, const char *flow,
                       int64_t fire_us, const char *execution_id);
    /* *fire_us: the latest recorded tick of the flow of the instance;
     * FERRY_ENOTFOUND if there is none. */
    int (*tick_last)(store *s, const char *instance, const char *flow,
                     int64_t *fire_us);
    /* Claims a webhook idempotency key for execution_id: the key (instance,
     * flow, key) is unique. FERRY_EEXISTS, with the execution id that
     * claimed it copied into existing_id (n bytes), if it was claimed at or
     * after window_start_us; an older claim is replaced. Meant to run in
     * the same transaction as the execution's exec_begin. */
    int (*dedupe_claim)(store *s, const char *instance, const char *flow,
                        const char *key, int64_t window_start_us,
                        const char *execution_id, char *existing_id, size_t n);

    /* Poll triggers. An item a poll took is recorded under its dedupe key
     * (instance, flow, key: unique) in the same transaction as the
     * execution it started (poll_claim: FERRY_EEXISTS if the key was
     * taken before; item_json, may be NULL: the item, kept to dispose of
     * it later). poll_lookup fills *out, FERRY_ENOTFOUND if the key
     * was never taken. poll_release forgets a key (its execution was
     * interrupted: the item is taken again). poll_disposed records that
     * the item was dealt with after its execution ("moved", "deleted",
     * "kept", ...). */
    int (*poll_lookup)(store *s, const char *instance, const char *flow,
                       const char *key, store_poll_item *out);
    int (*poll_claim)(store *s, const char *instance, const char *flow,
                      const char *key, const char *execution_id,
                      const char *item_json);
    int (*poll_release)(store *s, const char *instance, const char *flow,
                        const char *key);
    int (*poll_disposed)(store *s, const char *instance, const char *flow,
                         const char *key, const char *disposition);
    /* Items not disposed of yet whose execution has ended (or whose row is
     * gone), oldest first, at most limit: *out a new array of {"key",
     * "execution_id", "status" ("" when gone), "interrupted", "item" (the
     * JSON given to poll_claim, or null)}. */
    int (*poll_pending)(store *s, const char *instance, const char *flow,
                        int limit, json_t **out);
    /* A component poll's cursor as JSON text: *cursor_json malloc'd;
     * FERRY_ENOTFOUND if none was stored yet. */
    int (*poll_cursor_get)(store *s, const char *instance, const char *flow,
                           char **cursor_json);
    int (*poll_cursor_set)(store *s, const char *instance, const char *flow,
                           const char *cursor_json);

    /* Small values of the store's own (the master key's check value):
     * *value malloc'd; FERRY_ENOTFOUND if unset. */
    int (*meta_get)(store *s, const char *key, char **value);
    int (*meta_set)(store *s, const char *key, const char *value);
    /* OAuth tokens, one per (instance, connection), as JSON objects:
     * {"instance", "connection", "access_enc", "refresh_enc" (encrypted
     * text or null), "token_type", "scope", "expires_us", "obtained_us",
     * "status" ("ok" or "reauth"), "error", "updated_us"}. token_get:
     * *out new ref, FERRY_ENOTFOUND if none; token_list: every row. */
    int (*token_get)(store *s, const char *instance, const char *connection,
                     json_t **out);
    int (*token_put)(store *s, const json_t *token);
    int (*token_list)(store *s, json_t **out);
    /* Pending authorization-code flows. take returns the row as
     * {"instance", "connection", "verifier_enc", "redirect_uri",
     * "expires_us"} and deletes it (and every expired one): a state is
     * used once. FERRY_ENOTFOUND for an unknown (or used) state. */
    int (*oauth_state_put)(store *s, const char *state, const char *instance,
                           const char *connection, const char *verifier_enc,
                           const char *redirect_uri, int64_t expires_us);
    int (*oauth_state_take)(store *s, const char *state, json_t **out);

    /* Dead letters. get: the whole letter as JSON ({"id",
     * "execution_id", "integration", "instance", "flow", "step",
     * "error_code", "error_message", "attempts", "created", "state"
     * ("open", "replayed", "discarded"), "replayed_by", "trigger", "input",
     * "resume"}); list: the same without the last three, oldest first,
     * NULL filters match all; mark: an open letter becomes state (with the
     * replaying execution), FERRY_ENOTFOUND if it is not open. */
    int (*dead_letter_put)(store *s, const store_dead_letter *d);
    int (*dead_letter_get)(store *s, const char *id, json_t **out);
    int (*dead_letter_list)(store *s, const char *instance, const char *flow,
                            const char *state, int limit, json_t **out);
    int (*dead_letter_mark)(store *s, const char *id, const char *state,
                            const char *replayed_by);

    /* The alert outbox: an alert to deliver (target and event as JSON
     * text) until it is delivered. list: every pending one as {"id",
     * "target", "event", "attempts", "next_us"}; update: done deletes it,
     * else records a failed attempt and the next try. */
    int (*outbox_put)(store *s, const char *id, const char *target_json,
                      const char *event_json, int64_t next_us);
    int (*outbox_list)(store *s, json_t **out);
    int (*outbox_update)(store *s, const char *id, int done, int attempts,
                         int64_t next_us, const char *error);

    /* Retention: deletes at most limit ended executions (with their steps
     * and logs) created before before_us or older than the newest
     * keep_count (0: no count), never one whose poll item is still to be
     * disposed of; then at most limit dead letters no longer open created
     * before dl_before_us (0: none). *deleted: rows deleted. */
    int (*prune)(store *s, int64_t before_us, int64_t keep_count,
                 int64_t dl_before_us, int limit, int *deleted);

    /* The queue past what the host holds in memory: ids of queued
     * executions, oldest first, to be taken up as the queue drains.
     * spill_add: appends id (in the transaction that writes its row).
     * spill_take: removes the oldest limit entries; *out: a new array of
     * those still queued, as {"id", "instance", "flow", "trigger_text",
     * "created_us"} (trigger_text: the trigger's JSON, or null), in order;
     * *taken: entries removed, queued or not. spill_all: replaces the list with
     * every queued execution, oldest first (at start-up); *count: how many.
     * spill_remove: removes id; *removed: 1 if it was listed. */
    int (*spill_add)(store *s, const char *id);
    int (*spill_take)(store *s, int limit, json_t **out, int *taken);
    int (*spill_all)(store *s, int64_t *count);
    int (*spill_remove)(store *s, const char *id, int *removed);
} store_vtable;

/* Every backend's handle starts with this. */
struct store {
    const store_vtable *vt;
    char errmsg[512]; /* the last error, for messages */
};

/* Opens (creating if needed) a SQLite store in WAL mode and applies
 * migrations. Returns NULL with *err malloc'd on failure. */
store *store_open_sqlite(const char *path, char **err);
/*
 * A filter for what an execution records of its steps' data: inputs,
 * outputs and error messages of steps and of the execution, its resume
 * state, log lines and their fields, and dead letters' inputs and errors.
 * It returns a malloc'd replacement, or NULL to keep the text as it is.
 * NULL clears it. For a SQLite store only (others ignore it): `ferry run`,
 * which records without a worker in between, redacts known secrets with
 * it as the host does with what workers send.
 */
typedef char *(*store_text_filter)(void *ud, const char *text);
void store_sqlite_set_filter(store *s, store_text_filter f, void *ud);

/* Schema version after migrations (for tests and `ferry version`). */
int store_schema_version(void);

/* A new, time-sortable execution id ("ex_" + 26 chars), written into buf
 * (at least 32 bytes). */
void store_new_id(const char *prefix, char *buf, size_t buflen);

/* Current time in microseconds since the epoch. */
int64_t store_now_us(void);

/* us as RFC 3339 UTC with milliseconds ("2026-11-28T07:00:00.123Z") into
 * buf (at least 32 bytes). Returns buf, or NULL if the time cannot be
 * represented. */
char *store_format_time(int64_t us, char *buf, size_t buflen);
/* The same as a JSON string (new ref), or null. */
json_t *store_time_json(int64_t us);

static inline void store_close(store *s) {
    if (s)
        s->vt->close(s);
}

#endif
