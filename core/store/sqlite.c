/*
 * The SQLite backend: one file in WAL mode, one connection per handle, every
 * statement prepared once and kept in the handle. Each call is its own
 * transaction; batching commits is the caller's business (see docs/store.md).
 */
#include "jtext/jtext.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <ferry/ferry.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What the WAL file is cut back to when the log starts again (256 MiB). */
#define STORE_WAL_KEEP_BYTES "268435456"
/* "FRRY": marks the file as ferry's, so another program's database is
 * refused instead of having tables added to it. */
#define FERRY_APPLICATION_ID 0x46525259

/*
 * The schema, one entry per version. Entry i takes the database from
 * user_version i to i + 1. Append only: an entry that has shipped is never
 * edited, a change is a new entry.
 */
static const char *const migrations[] = {
    /* 1: executions, steps, logs, instance state. */
    "CREATE TABLE executions ("
    " id TEXT PRIMARY KEY,"
    " integration TEXT NOT NULL,"
    " instance TEXT NOT NULL,"
    " flow TEXT NOT NULL,"
    " trigger_json TEXT,"
    " status TEXT NOT NULL,"
    " created_us INTEGER NOT NULL,"
    " started_us INTEGER,"
    " ended_us INTEGER,"
    " output_json TEXT,"
    " output_size INTEGER NOT NULL DEFAULT 0,"
    " error_code INTEGER,"
    " error_message TEXT,"
    " error_step TEXT"
    ");"
    "CREATE INDEX executions_created ON executions(created_us, id);"
    "CREATE INDEX executions_instance"
    " ON executions(instance, flow, created_us, id);"
    "CREATE INDEX executions_flow ON executions(flow, created_us, id);"
    "CREATE INDEX executions_status ON executions(status, created_us, id);"
    "CREATE TABLE steps ("
    " execution_id TEXT NOT NULL"
    "  REFERENCES executions(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " path TEXT,"
    " name TEXT,"
    " kind TEXT,"
    " action TEXT,"
    " status TEXT,"
    " started_us INTEGER,"
    " duration_us INTEGER,"
    " input_json TEXT,"
    " input_size INTEGER NOT NULL DEFAULT 0,"
    " output_json TEXT,"
    " output_size INTEGER NOT NULL DEFAULT 0,"
    " error_code INTEGER,"
    " error_message TEXT,"
    " retryable INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (execution_id, seq)"
    ");"
    /* INTEGER PRIMARY KEY without AUTOINCREMENT: ids grow with inserts,
     * which is all the ordering needs, without the sqlite_sequence write on
     * every line. */
    "CREATE TABLE logs ("
    " id INTEGER PRIMARY KEY,"
    " execution_id TEXT NOT NULL"
    "  REFERENCES executions(id) ON DELETE CASCADE,"
    " step_seq INTEGER NOT NULL DEFAULT 0,"
    " step_path TEXT,"
    " ts_us INTEGER NOT NULL,"
    " level INTEGER NOT NULL,"
    " message TEXT NOT NULL,"
    " fields_json TEXT"
    ");"
    "CREATE INDEX logs_execution ON logs(execution_id, id);"
    "CREATE TABLE instance_state ("
    " instance TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " value_json TEXT NOT NULL,"
    " updated_us INTEGER NOT NULL,"
    " PRIMARY KEY (instance, key)"
    ");",
    /* 2: schedule ticks, one row per (instance, flow, fire time), written
     * before the tick's execution is queued, so no tick fires twice. */
    "CREATE TABLE schedule_ticks ("
    " instance TEXT NOT NULL,"
    " flow TEXT NOT NULL,"
    " fire_us INTEGER NOT NULL,"
    " execution_id TEXT,"
    " created_us INTEGER NOT NULL,"
    " PRIMARY KEY (instance, flow, fire_us)"
    ");",
    /* 3: webhook idempotency keys, one row per (instance, flow, key),
     * written in the same transaction as the execution they started. */
    "CREATE TABLE webhook_dedupe ("
    " instance TEXT NOT NULL,"
    " flow TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " execution_id TEXT NOT NULL,"
    " created_us INTEGER NOT NULL,"
    " PRIMARY KEY (instance, flow, key)"
    ");",
    /* 4: poll triggers. poll_items: one row per item a poll took (its
     * dedupe key), written in the same transaction as its execution, and
     * marked once the item was disposed of (moved, deleted, kept) after
     * the execution's outcome. poll_cursors: a component poll's cursor. */
    "CREATE TABLE poll_items ("
    " instance TEXT NOT NULL,"
    " flow TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " execution_id TEXT NOT NULL,"
    " created_us INTEGER NOT NULL,"
    " disposed_us INTEGER,"
    " disposition TEXT,"
    " PRIMARY KEY (instance, flow, key)"
    ");"
    "CREATE TABLE poll_cursors ("
    " instance TEXT NOT NULL,"
    " flow TEXT NOT NULL,"
    " cursor_json TEXT NOT NULL,"
    " updated_us INTEGER NOT NULL,"
    " PRIMARY KEY (instance, flow)"
    ");",
    /* 5: secrets. store_meta holds the master key's check value (a known
     * text encrypted under it, so a wrong key is refused before anything
     * is written). oauth_tokens: one row per (instance, connection), the
     * tokens encrypted. oauth_states: pending authorization-code flows,
     * each state used once. */
    "CREATE TABLE store_meta ("
    " key TEXT PRIMARY KEY,"
    " value TEXT NOT NULL"
    ");"
    "CREATE TABLE oauth_tokens ("
    " instance TEXT NOT NULL,"
    " connection TEXT NOT NULL,"
    " access_enc TEXT,"
    " refresh_enc TEXT,"
    " token_type TEXT,"
    " scope TEXT,"
    " expires_us INTEGER,"
    " obtained_us INTEGER,"
    " status TEXT NOT NULL,"
    " error TEXT,"
    " updated_us INTEGER NOT NULL,"
    " PRIMARY KEY (instance, connection)"
    ");"
    "CREATE TABLE oauth_states ("
    " state TEXT PRIMARY KEY,"
    " instance TEXT NOT NULL,"
    " connection TEXT NOT NULL,"
    " verifier_enc TEXT NOT NULL,"
    " redirect_uri TEXT NOT NULL,"
    " expires_us INTEGER NOT NULL"
    ");",
    /* 6: the item a poll took, as JSON, for disposing of it later (a file
     * a component listed: where it is). */
    "ALTER TABLE poll_items ADD COLUMN item_json TEXT;"
    "CREATE INDEX poll_items_open ON poll_items(instance, flow)"
    " WHERE disposed_us IS NULL;",
    /* 7: retries and dead letters. An execution waiting for a retry is
     * "waiting" until due_us, with where to go on from (resume_json). A
     * dead letter keeps what failed for good, to be replayed. */
    "ALTER TABLE executions ADD COLUMN resume_json TEXT;"
    "ALTER TABLE executions ADD COLUMN due_us INTEGER;"
    "CREATE TABLE dead_letters ("
    " id TEXT PRIMARY KEY,"
    " execution_id TEXT NOT NULL,"
    " integration TEXT NOT NULL,"
    " instance TEXT NOT NULL,"
    " flow TEXT NOT NULL,"
    " trigger_json TEXT,"
    " step TEXT,"
    " input_json TEXT,"
    " error_code INTEGER,"
    " error_message TEXT,"
    " attempts INTEGER NOT NULL,"
    " resume_json TEXT,"
    " created_us INTEGER NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'open',"
    " replayed_by TEXT,"
    " updated_us INTEGER"
    ");"
    "CREATE INDEX dead_letters_by ON dead_letters(instance, flow, created_us);",
    /* 8: alerts waiting to be delivered (and being retried). */
    "CREATE TABLE alert_outbox ("
    " id TEXT PRIMARY KEY,"
    " target_json TEXT NOT NULL,"
    " event_json TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_us INTEGER NOT NULL,"
    " last_error TEXT,"
    " created_us INTEGER NOT NULL"
    ");",
    /* 9: queued executions past what the host holds in memory, in the
     * order they are to run (spill_add, spill_take). */
    "CREATE TABLE queue_spill ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL"
    ");"
    "CREATE INDEX queue_spill_id ON queue_spill(id);",
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int store_schema_version(void) {
    return N_MIGRATIONS;
}

/* The columns exec_list returns; exec_get selects these first, then more. */
#define SUMMARY_COLUMNS                                                        \
    "id, integration, instance, flow, status, created_us, started_us,"         \
    " ended_us, error_code, error_message"

enum {
    ST_EXEC_BEGIN,
    ST_EXEC_END,
    ST_STEP,
    ST_LOG,
    ST_STATE_GET,
    ST_STATE_SET,
    ST_STATE_DEL,
    ST_EXEC_GET,
    ST_EXEC_STEPS,
    ST_EXEC_LOGS,
    ST_EXEC_STARTED,
    ST_TICK_INSERT,
    ST_TICK_LAST,
    ST_DEDUPE_GET,
    ST_DEDUPE_PUT,
    ST_POLL_LOOKUP,
    ST_POLL_CLAIM,
    ST_POLL_RELEASE,
    ST_POLL_DISPOSED,
    ST_POLL_PENDING,
    ST_CURSOR_GET,
    ST_CURSOR_SET,
    ST_META_GET,
    ST_META_SET,
    ST_TOKEN_GET,
    ST_TOKEN_PUT,
    ST_TOKEN_LIST,
    ST_STATE_PUT,
    ST_STATE_TAKE_GET,
    ST_STATE_TAKE_DEL,
    ST_DL_PUT,
    ST_DL_GET,
    ST_DL_MARK,
    ST_SPILL_ADD,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_EXEC_BEGIN] = "INSERT INTO executions (id, integration, instance, flow,"
                      " trigger_json, status, created_us, started_us)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_EXEC_END] = "UPDATE executions SET status = ?2, ended_us = ?3,"
                    " output_json = ?4, output_size = ?5, error_code = ?6,"
                    " error_message = ?7, error_step = ?8, resume_json = ?9,"
                    " due_us = ?10 WHERE id = ?1",
    [ST_STEP] =
        "INSERT INTO steps (execution_id, seq, path, name, kind, action,"
        " status, started_us, duration_us, input_json, input_size,"
        " output_json, output_size, error_code, error_message, retryable)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
        " ?14, ?15, ?16)",
    [ST_LOG] = "INSERT INTO logs (execution_id, step_seq, step_path, ts_us,"
               " level, message, fields_json)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_STATE_GET] = "SELECT value_json FROM instance_state"
                     " WHERE instance = ?1 AND key = ?2",
    [ST_STATE_SET] =
        "INSERT INTO instance_state (instance, key, value_json, updated_us)"
        " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (instance, key) DO UPDATE SET"
        " value_json = excluded.value_json, updated_us = excluded.updated_us",
    [ST_STATE_DEL] = "DELETE FROM instance_state"
                     " WHERE instance = ?1 AND key = ?2",
    [ST_EXEC_GET] = "SELECT " SUMMARY_COLUMNS ", trigger_json, output_json,"
                    " output_size, error_step, resume_json, due_us"
                    " FROM executions WHERE id = ?1",
    [ST_EXEC_STEPS] =
        "SELECT seq, path, name, kind, action, status, started_us,"
        " duration_us, input_json, input_size, output_json, output_size,"
        " error_code, error_message, retryable FROM steps"
        " WHERE execution_id = ?1 ORDER BY seq",
    [ST_EXEC_LOGS] = "SELECT ts_us, step_seq, step_path, level, message,"
                     " fields_json FROM logs WHERE execution_id = ?1"
                     " ORDER BY id",
    [ST_EXEC_STARTED] = "UPDATE executions SET status = 'running',"
                        " started_us = ?2 WHERE id = ?1",
    [ST_TICK_INSERT] = "INSERT INTO schedule_ticks (instance, flow, fire_us,"
                       " execution_id, created_us) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_TICK_LAST] = "SELECT max(fire_us) FROM schedule_ticks"
                     " WHERE instance = ?1 AND flow = ?2",
    [ST_DEDUPE_GET] = "SELECT execution_id, created_us FROM webhook_dedupe"
                      " WHERE instance = ?1 AND flow = ?2 AND key = ?3",
    [ST_DEDUPE_PUT] =
        "INSERT INTO webhook_dedupe (instance, flow, key, execution_id,"
        " created_us) VALUES (?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT (instance, flow, key) DO UPDATE SET"
        " execution_id = excluded.execution_id,"
        " created_us = excluded.created_us",
    [ST_POLL_LOOKUP] =
        "SELECT p.execution_id, e.status, p.disposed_us IS NOT NULL,"
        " e.status = 'failed' AND e.error_message LIKE 'interrupted:%'"
        " FROM poll_items p LEFT JOIN executions e ON e.id = p.execution_id"
        " WHERE p.instance = ?1 AND p.flow = ?2 AND p.key = ?3",
    [ST_POLL_CLAIM] = "INSERT INTO poll_items (instance, flow, key,"
                      " execution_id, created_us, item_json)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_POLL_PENDING] =
        "SELECT p.key, p.execution_id, coalesce(e.status, ''),"
        " e.status = 'failed' AND e.error_message LIKE 'interrupted:%',"
        " p.item_json FROM poll_items p"
        " LEFT JOIN executions e ON e.id = p.execution_id"
        " WHERE p.instance = ?1 AND p.flow = ?2 AND p.disposed_us IS NULL"
        " AND (e.status IS NULL OR e.status IN"
        " ('succeeded', 'failed', 'cancelled'))"
        " ORDER BY p.created_us LIMIT ?3",
    [ST_POLL_RELEASE] = "DELETE FROM poll_items"
                        " WHERE instance = ?1 AND flow = ?2 AND key = ?3",
    [ST_POLL_DISPOSED] = "UPDATE poll_items SET disposed_us = ?4,"
                         " disposition = ?5"
                         " WHERE instance = ?1 AND flow = ?2 AND key = ?3",
    [ST_SPILL_ADD] = "INSERT INTO queue_spill (id) VALUES (?1)",
    [ST_CURSOR_GET] = "SELECT cursor_json FROM poll_cursors"
                      " WHERE instance = ?1 AND flow = ?2",
    [ST_CURSOR_SET] =
        "INSERT INTO poll_cursors (instance, flow, cursor_json, updated_us)"
        " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (instance, flow) DO UPDATE SET"
        " cursor_json = excluded.cursor_json,"
        " updated_us = excluded.updated_us",
    [ST_META_GET] = "SELECT value FROM store_meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO store_meta (key, value) VALUES (?1, ?2)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [ST_TOKEN_GET] = "SELECT instance, connection, access_enc, refresh_enc,"
                     " token_type, scope, expires_us, obtained_us, status,"
                     " error, updated_us FROM oauth_tokens"
                     " WHERE instance = ?1 AND connection = ?2",
    [ST_TOKEN_PUT] =
        "INSERT INTO oauth_tokens (instance, connection, access_enc,"
        " refresh_enc, token_type, scope, expires_us, obtained_us, status,"
        " error, updated_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
        " ?10, ?11) ON CONFLICT (instance, connection) DO UPDATE SET"
        " access_enc = excluded.access_enc, refresh_enc = excluded.refresh_enc,"
        " token_type = excluded.token_type, scope = excluded.scope,"
        " expires_us = excluded.expires_us, obtained_us = excluded.obtained_us,"
        " status = excluded.status, error = excluded.error,"
        " updated_us = excluded.updated_us",
    [ST_TOKEN_LIST] = "SELECT instance, connection, access_enc, refresh_enc,"
                      " token_type, scope, expires_us, obtained_us, status,"
                      " error, updated_us FROM oauth_tokens"
                      " ORDER BY instance, connection",
    [ST_STATE_PUT] = "INSERT INTO oauth_states (state, instance, connection,"
                     " verifier_enc, redirect_uri, expires_us)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_STATE_TAKE_GET] = "SELECT instance, connection, verifier_enc,"
                          " redirect_uri, expires_us FROM oauth_states"
                          " WHERE state = ?1",
    [ST_STATE_TAKE_DEL] = "DELETE FROM oauth_states WHERE state = ?1"
                          " OR expires_us < ?2",
    [ST_DL_PUT] = "INSERT INTO dead_letters (id, execution_id, integration,"
                  " instance, flow, trigger_json, step, input_json,"
                  " error_code, error_message, attempts, resume_json,"
                  " created_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
                  " ?10, ?11, ?12, ?13)",
    [ST_DL_GET] = "SELECT id, execution_id, integration, instance, flow,"
                  " trigger_json, step, input_json, error_code,"
                  " error_message, attempts, resume_json, created_us, state,"
                  " replayed_by FROM dead_letters WHERE id = ?1",
    [ST_DL_MARK] = "UPDATE dead_letters SET state = ?2, replayed_by ="
                   " coalesce(?3, replayed_by), updated_us = ?4"
                   " WHERE id = ?1 AND state = 'open'",
    /* Prepared like the others: parsing "BEGIN IMMEDIATE" at every batch
     * was 2 % of the host's CPU in `ferry serve`. */
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

/* exec_list filters on any subset of four columns; one statement per
 * subset, prepared on first use and kept. */
enum {
    F_INTEGRATION = 1,
    F_INSTANCE = 2,
    F_FLOW = 4,
    F_STATUS = 8,
    F_OLDEST = 16,
    F_SINCE = 32,
    F_UNTIL = 64,
    F_COMBOS = 128
};

typedef struct sqlite_store {
    store base; /* first: a store * is a sqlite_store * */
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    sqlite3_stmt *list[F_COMBOS];
    store_text_filter filter; /* store_sqlite_set_filter, or NULL */
    void *filter_ud;
    int log_frames; /* the log's length after this handle's last commit */
} sqlite_store;

FERRY_PRINTF(3, 4)
static int set_err(sqlite_store *s, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->base.errmsg, sizeof s->base.errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* Maps the connection's last error to a FERRY_E* code and records it. */
static int db_err(sqlite_store *s, const char *op, const char *id) {
    int ext = sqlite3_extended_errcode(s->db);
    const char *msg = sqlite3_errmsg(s->db);
    int code = FERRY_EIO;
    if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE)
        code = FERRY_EEXISTS;
    else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
        code = FERRY_ENOTFOUND;
    else if ((ext & 0xff) == SQLITE_NOMEM)
        code = FERRY_ENOMEM;
    if (code == FERRY_ENOTFOUND && id)
        return set_err(s, code, "%s: no execution '%s' (%s)", op, id, msg);
    if (id)
        return set_err(s, code, "%s '%s': %s", op, id, msg);
    return set_err(s, code, "%s: %s", op, msg);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Recorded data: through the filter, when one is set. */
static void bind_data(sqlite_store *s, sqlite3_stmt *st, int i, const char *v) {
    char *f = v && s->filter ? s->filter(s->filter_ud, v) : NULL;
    if (f)
        sqlite3_bind_text(st, i, f, -1, free);
    else
        bind_text(st, i, v);
}

/* NULL for 0: "not set" reads back as null rather than as the epoch. */
static void bind_opt_int(sqlite3_stmt *st, int i, int64_t v) {
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void stmt_done(sqlite3_stmt *st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows. */
static int run(sqlite_store *s, sqlite3_stmt *st, const char *op,
               const char *id) {
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : db_err(s, op, id);
    stmt_done(st);
    return ret;
}

/* ---- writing ---- */

static int sq_exec_begin(store *base, const store_exec *e) {
    sqlite_store *s = (sqlite_store *)base;
    if (!e || !e->id || !e->integration || !e->instance || !e->flow ||
        !e->status)
        return set_err(s, FERRY_EINVAL,
                       "exec_begin: id, integration, instance, flow and "
                       "status are required");
    sqlite3_stmt *st = s->st[ST_EXEC_BEGIN];
    bind_text(st, 1, e->id);
    bind_text(st, 2, e->integration);
    bind_text(st, 3, e->instance);
    bind_text(st, 4, e->flow);
    bind_text(st, 5, e->trigger_json);
    bind_text(st, 6, e->status);
    sqlite3_bind_int64(st, 7, e->created_us);
    bind_opt_int(st, 8, e->started_us);
    return run(s, st, "exec_begin", e->id);
}

static int sq_exec_end(store *base, const store_exec_end *e) {
    sqlite_store *s = (sqlite_store *)base;
    if (!e || !e->id || !e->status)
        return set_err(s, FERRY_EINVAL, "exec_end: id and status are required");
    sqlite3_stmt *st = s->st[ST_EXEC_END];
    bind_text(st, 1, e->id);
    bind_text(st, 2, e->status);
    bind_opt_int(st, 3, e->ended_us);
    bind_data(s, st, 4, e->output_json);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)e->output_size);
    bind_opt_int(st, 6, e->error_code);
    bind_data(s, st, 7, e->error_message);
    bind_text(st, 8, e->error_step);
    bind_data(s, st, 9, e->resume_json);
    bind_opt_int(st, 10, e->due_us);
    int rc = run(s, st, "exec_end", e->id);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        return set_err(s, FERRY_ENOTFOUND, "exec_end: no execution '%s'",
                       e->id);
    return rc;
}

static int sq_step_record(store *base, const store_step *x) {
    sqlite_store *s = (sqlite_store *)base;
    if (!x || !x->execution_id || x->seq < 1)
        return set_err(s, FERRY_EINVAL,
                       "step_record: execution_id and seq >= 1 are required");
    sqlite3_stmt *st = s->st[ST_STEP];
    bind_text(st, 1, x->execution_id);
    sqlite3_bind_int(st, 2, x->seq);
    bind_text(st, 3, x->path ? x->path : x->name);
    bind_text(st, 4, x->name);
    bind_text(st, 5, x->kind);
    bind_text(st, 6, x->action);
    bind_text(st, 7, x->status);
    sqlite3_bind_int64(st, 8, x->started_us);
    sqlite3_bind_int64(st, 9, x->duration_us);
    bind_data(s, st, 10, x->input_json);
    sqlite3_bind_int64(st, 11, (sqlite3_int64)x->input_size);
    bind_data(s, st, 12, x->output_json);
    sqlite3_bind_int64(st, 13, (sqlite3_int64)x->output_size);
    bind_opt_int(st, 14, x->error_code);
    bind_data(s, st, 15, x->error_message);
    sqlite3_bind_int(st, 16, x->retryable ? 1 : 0);
    return run(s, st, "step_record", x->execution_id);
}

static const char *level_name(int level) {
    switch (level) {
    case FERRY_LOG_DEBUG:
        return "debug";
    case FERRY_LOG_INFO:
        return "info";
    case FERRY_LOG_WARN:
        return "warn";
    case FERRY_LOG_ERROR:
        return "error";
    default:
        return NULL;
    }
}

static int sq_log_append(store *base, const store_log *l) {
    sqlite_store *s = (sqlite_store *)base;
    if (!l || !l->execution_id)
        return set_err(s, FERRY_EINVAL, "log_append: execution_id is required");
    if (!level_name(l->level))
        return set_err(s, FERRY_EINVAL, "log_append: bad log level %d",
                       l->level);
    sqlite3_stmt *st = s->st[ST_LOG];
    bind_text(st, 1, l->execution_id);
    sqlite3_bind_int(st, 2, l->step_seq);
    bind_text(st, 3, l->step_path);
    sqlite3_bind_int64(st, 4, l->ts_us);
    sqlite3_bind_int(st, 5, l->level);
    bind_data(s, st, 6, l->message ? l->message : "");
    bind_data(s, st, 7, l->fields_json);
    return run(s, st, "log_append", l->execution_id);
}

static int sq_state_get(store *base, const char *instance, const char *key,
                        json_t **out) {
    sqlite_store *s = (sqlite_store *)base;
    if (!out)
        return set_err(s, FERRY_EINVAL, "state_get: out is required");
    *out = NULL;
    if (!instance || !key)
        return set_err(s, FERRY_EINVAL,
                       "state_get: instance and key are required");
    sqlite3_stmt *st = s->st[ST_STATE_GET];
    bind_text(st, 1, instance);
    bind_text(st, 2, key);
    int ret = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        json_error_t jerr;
        const char *text = (const char *)sqlite3_column_text(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        *out = jtext_load(text, n, JSON_DECODE_ANY, &jerr);
        if (!*out)
            ret = set_err(s, FERRY_EPARSE, "state_get %s/%s: stored value: %s",
                          instance, key, jerr.text);
    } else if (rc != SQLITE_DONE) {
        ret = db_err(s, "state_get", NULL);
    }
    stmt_done(st);
    return ret;
}

static int sq_state_set(store *base, const char *instance, const char *key,
                        const json_t *value) {
    sqlite_store *s = (sqlite_store *)base;
    if (!instance || !key)
        return set_err(s, FERRY_EINVAL,
                       "state_set: instance and key are required");
    if (!value) {
        sqlite3_stmt *st = s->st[ST_STATE_DEL];
        bind_text(st, 1, instance);
        bind_text(st, 2, key);
        return run(s, st, "state_set (delete)", NULL);
    }
    char *text = jtext_dump(value, NULL);
    if (!text)
        return set_err(s, FERRY_EINVAL,
                       "state_set %s/%s: value cannot be encoded", instance,
                       key);
    sqlite3_stmt *st = s->st[ST_STATE_SET];
    bind_text(st, 1, instance);
    bind_text(st, 2, key);
    bind_text(st, 3, text);
    sqlite3_bind_int64(st, 4, store_now_us());
    int rc = run(s, st, "state_set", NULL);
    free(text);
    return rc;
}

/* ---- reading ---- */

/* "2026-11-28T07:00:00.123Z" */
static json_t *col_time(sqlite3_stmt *st, int i) {
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    return store_time_json(sqlite3_column_int64(st, i));
}

/* A JSON string of text that may have been cut inside a UTF-8 sequence:
 * anything that is not valid UTF-8 becomes U+FFFD. */
static json_t *string_lossy(const char *text, size_t n) {
    json_t *j = json_stringn(text, n);
    if (j)
        return j;
    char *buf = malloc(n * 3 + 1);
    if (!buf)
        return NULL;
    const unsigned char *p = (const unsigned char *)text;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = jtext_utf8_len(p + i, n - i);
        if (len && p[i] != 0) {
            memcpy(buf + o, p + i, len);
            o += len;
            i += len;
        } else if (len) { /* a NUL: keep jansson's strings NUL-free */
            buf[o++] = ' ';
            i++;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    j = json_stringn(buf, o);
    free(buf);
    return j;
}

/* Stored JSON text: null when NULL, the parsed value when it is whole and
 * parses, else the text as a string (a cut-off "12345" must not come back
 * as the number 123). */
static json_t *col_json(sqlite3_stmt *st, int i, int truncated) {
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    const char *text = (const char *)sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (!truncated) {
        json_t *j = jtext_load(text, n, JSON_DECODE_ANY, NULL);
        if (j)
            return j;
    }
    return string_lossy(text, n);
}

static json_t *col_str(sqlite3_stmt *st, int i) {
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    const char *text = (const char *)sqlite3_column_text(st, i);
    return string_lossy(text, (size_t)sqlite3_column_bytes(st, i));
}

static json_t *col_err(sqlite3_stmt *st, int i) {
    int code = sqlite3_column_int(st, i);
    if (sqlite3_column_type(st, i) == SQLITE_NULL || code == 0)
        return json_null();
    return json_string(ferry_err_name(code));
}

/* Sets text_col/size_col's value, "<name>_size" and "<name>_truncated". */
static void put_payload(json_t *o, const char *name, sqlite3_stmt *st,
                        int text_col, int size_col) {
    int64_t size = sqlite3_column_int64(st, size_col);
    int64_t have = sqlite3_column_type(st, text_col) == SQLITE_NULL
                       ? 0
                       : sqlite3_column_bytes(st, text_col);
    int truncated = have < size;
    char key[64];
    json_object_set_new(o, name, col_json(st, text_col, truncated));
    snprintf(key, sizeof key, "%s_size", name);
    json_object_set_new(o, key, json_integer(size));
    snprintf(key, sizeof key, "%s_truncated", name);
    json_object_set_new(o, key, json_boolean(truncated));
}

/* The summary columns of the current row (see SUMMARY_COLUMNS). */
static json_t *summary_row(sqlite3_stmt *st) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", col_str(st, 0));
    json_object_set_new(o, "integration", col_str(st, 1));
    json_object_set_new(o, "instance", col_str(st, 2));
    json_object_set_new(o, "flow", col_str(st, 3));
    json_object_set_new(o, "status", col_str(st, 4));
    json_object_set_new(o, "created", col_time(st, 5));
    json_object_set_new(o, "started", col_time(st, 6));
    json_object_set_new(o, "ended", col_time(st, 7));
    if (sqlite3_column_type(st, 6) != SQLITE_NULL &&
        sqlite3_column_type(st, 7) != SQLITE_NULL) {
        int64_t d = sqlite3_column_int64(st, 7) - sqlite3_column_int64(st, 6);
        json_object_set_new(o, "duration_ms", json_integer(d / 1000));
        json_object_set_new(o, "duration_us", json_integer(d));
    } else {
        json_object_set_new(o, "duration_ms", json_null());
        json_object_set_new(o, "duration_us", json_null());
    }
    json_object_set_new(o, "error_code", col_err(st, 8));
    json_object_set_new(o, "error_message", col_str(st, 9));
    return o;
}

static sqlite3_stmt *list_stmt(sqlite_store *s, int mask) {
    if (s->list[mask])
        return s->list[mask];
    static const struct {
        int bit;
        const char *cond;
    } conds[] = {{F_INTEGRATION, "integration = ?1"},
                 {F_INSTANCE, "instance = ?2"},
                 {F_FLOW, "flow = ?3"},
                 {F_STATUS, "status = ?4"},
                 {F_SINCE, "created_us >= ?6"},
                 {F_UNTIL, "created_us < ?7"}};
    char sql[512];
    size_t n = (size_t)snprintf(sql, sizeof sql,
                                "SELECT " SUMMARY_COLUMNS " FROM executions");
    const char *sep = " WHERE ";
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++) {
        if (!(mask & conds[i].bit))
            continue;
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s%s", sep,
                              conds[i].cond);
        sep = " AND ";
    }
    snprintf(sql + n, sizeof sql - n,
             (mask & F_OLDEST) ? " ORDER BY created_us ASC, id ASC LIMIT ?5"
                               : " ORDER BY created_us DESC, id DESC LIMIT ?5");
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                           &s->list[mask], NULL) != SQLITE_OK)
        s->list[mask] = NULL;
    return s->list[mask];
}

static int sq_exec_list(store *base, const store_filter *f, json_t **out) {
    sqlite_store *s = (sqlite_store *)base;
    if (!out)
        return set_err(s, FERRY_EINVAL, "exec_list: out is required");
    *out = NULL;
    store_filter none = {0};
    if (!f)
        f = &none;
    if (f->limit < 0)
        return set_err(s, FERRY_EINVAL, "exec_list: negative limit %d",
                       f->limit);
    int mask = (f->integration ? F_INTEGRATION : 0) |
               (f->instance ? F_INSTANCE : 0) | (f->flow ? F_FLOW : 0) |
               (f->status ? F_STATUS : 0) | (f->oldest_first ? F_OLDEST : 0) |
               (f->since_us ? F_SINCE : 0) | (f->until_us ? F_UNTIL : 0);
    sqlite3_stmt *st = list_stmt(s, mask);
    if (!st)
        return db_err(s, "exec_list", NULL);
    bind_text(st, 1, f->integration);
    bind_text(st, 2, f->instance);
    bind_text(st, 3, f->flow);
    bind_text(st, 4, f->status);
    sqlite3_bind_int(st, 5, f->limit ? f->limit : 50);
    if (f->since_us)
        sqlite3_bind_int64(st, 6, f->since_us);
    if (f->until_us)
        sqlite3_bind_int64(st, 7, f->until_us);

    json_t *arr = json_array();
    int rc = SQLITE_DONE, ret = 0;
    while (arr && (rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, summary_row(st));
    if (!arr)
        ret = set_err(s, FERRY_ENOMEM, "exec_list: out of memory");
    else if (rc != SQLITE_DONE)
        ret = db_err(s, "exec_list", NULL);
    stmt_done(st);
    if (ret) {
        json_decref(arr);
        return ret;
    }
    *out = arr;
    return 0;
}

static json_t *step_row(sqlite3_stmt *st) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "seq", json_integer(sqlite3_column_int(st, 0)));
    json_object_set_new(o, "path", col_str(st, 1));
    json_object_set_new(o, "name", col_str(st, 2));
    json_object_set_new(o, "kind", col_str(st, 3));
    json_object_set_new(o, "action", col_str(st, 4));
    json_object_set_new(o, "status", col_str(st, 5));
    json_object_set_new(o, "started", col_time(st, 6));
    json_object_set_new(o, "duration_us",
                        json_integer(sqlite3_column_int64(st, 7)));
    put_payload(o, "input", st, 8, 9);
    put_payload(o, "output", st, 10, 11);
    json_object_set_new(o, "error_code", col_err(st, 12));
    json_object_set_new(o, "error_message", col_str(st, 13));
    json_object_set_new(o, "retryable",
                        json_boolean(sqlite3_column_int(st, 14)));
    return o;
}

static json_t *log_row(sqlite3_stmt *st) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    const char *lv = level_name(sqlite3_column_int(st, 3));
    json_object_set_new(o, "ts", col_time(st, 0));
    json_object_set_new(o, "step_seq", json_integer(sqlite3_column_int(st, 1)));
    json_object_set_new(o, "step_path", col_str(st, 2));
    json_object_set_new(o, "level", lv ? json_string(lv) : json_null());
    json_object_set_new(o, "message", col_str(st, 4));
    json_object_set_new(o, "fields", col_json(st, 5, 0));
    return o;
}

/* Appends every row of st (bound to id) to a new array set as o[key]. */
static int get_rows(sqlite_store *s, sqlite3_stmt *st, const char *id,
                    json_t *(*row)(sqlite3_stmt *), json_t *o,
                    const char *key) {
    json_t *arr = json_array();
    if (!arr)
        return set_err(s, FERRY_ENOMEM, "exec_get: out of memory");
    bind_text(st, 1, id);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, row(st));
    if (rc != SQLITE_DONE)
        ret = db_err(s, "exec_get", id);
    stmt_done(st);
    json_object_set_new(o, key, arr);
    return ret;
}

static int sq_exec_get(store *base, const char *id, json_t **out) {
    sqlite_store *s = (sqlite_store *)base;
    if (!out)
        return set_err(s, FERRY_EINVAL, "exec_get: out is required");
    *out = NULL;
    if (!id)
        return set_err(s, FERRY_EINVAL, "exec_get: id is required");

    /* One read transaction, so the execution, its steps and its logs are
     * one snapshot even while a writer is adding to them. */
    if (sqlite3_exec(s->db, "SAVEPOINT exec_get", NULL, NULL, NULL) !=
        SQLITE_OK)
        return db_err(s, "exec_get", id);

    sqlite3_stmt *st = s->st[ST_EXEC_GET];
    bind_text(st, 1, id);
    json_t *o = NULL;
    int ret = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        o = summary_row(st);
        if (o) {
            json_object_set_new(o, "trigger", col_json(st, 10, 0));
            put_payload(o, "output", st, 11, 12);
            json_object_set_new(o, "error_step", col_str(st, 13));
            if (sqlite3_column_type(st, 14) != SQLITE_NULL) {
                json_object_set_new(o, "resume", col_json(st, 14, 0));
                json_object_set_new(o, "due", col_time(st, 15));
                json_object_set_new(o, "due_us",
                                    json_integer(sqlite3_column_int64(st, 15)));
            }
        } else {
            ret = set_err(s, FERRY_ENOMEM, "exec_get: out of memory");
        }
    } else if (rc == SQLITE_DONE) {
        ret = set_err(s, FERRY_ENOTFOUND, "exec_get: no execution '%s'", id);
    } else {
        ret = db_err(s, "exec_get", id);
    }
    stmt_done(st);

    if (ret == 0)
        ret = get_rows(s, s->st[ST_EXEC_STEPS], id, step_row, o, "steps");
    if (ret == 0)
        ret = get_rows(s, s->st[ST_EXEC_LOGS], id, log_row, o, "logs");
    sqlite3_exec(s->db, "RELEASE exec_get", NULL, NULL, NULL);
    if (ret) {
        json_decref(o);
        return ret;
    }
    *out = o;
    return 0;
}

static int sq_exec_started(store *base, const char *id, int64_t started_us) {
    sqlite_store *s = (sqlite_store *)base;
    if (!id)
        return set_err(s, FERRY_EINVAL, "exec_started: id is required");
    sqlite3_stmt *st = s->st[ST_EXEC_STARTED];
    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, started_us);
    int rc = run(s, st, "exec_started", id);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        return set_err(s, FERRY_ENOTFOUND, "exec_started: no execution '%s'",
                       id);
    return rc;
}

static int sq_tick_insert(store *base, const char *instance, const char *flow,
                          int64_t fire_us, const char *execution_id) {
    sqlite_store *s = (sqlite_store *)base;
    if (!instance || !flow)
        return set_err(s, FERRY_EINVAL,
                       "tick_insert: instance and flow are required");
    sqlite3_stmt *st = s->st[ST_TICK_INSERT];
    bind_text(st, 1, instance);
    bind_text(st, 2, flow);
    sqlite3_bind_int64(st, 3, fire_us);
    bind_text(st, 4, execution_id);
    sqlite3_bind_int64(st, 5, store_now_us());
    int rc = run(s, st, "tick_insert", NULL);
    if (rc == FERRY_EEXISTS)
        set_err(s, rc, "tick_insert: '%s' flow '%s' already fired at %lld",
                instance, flow, (long long)fire_us);
    return rc;
}

static int sq_tick_last(store *base, const char *instance, const char *flow,
                        int64_t *fire_us) {
    sqlite_store *s = (sqlite_store *)base;
    if (!instance || !flow || !fire_us)
        return set_err(s, FERRY_EINVAL,
                       "tick_last: instance, flow and fire_us are required");
    sqlite3_stmt *st = s->st[ST_TICK_LAST];
    bind_text(st, 1, instance);
    bind_text(st, 2, flow);
    int rc = sqlite3_step(st);
    int ret;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *fire_us = sqlite3_column_int64(st, 0);
        ret = 0;
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        ret = set_err(s, FERRY_ENOTFOUND,
                      "tick_last: no tick of '%s' flow '%s'", instance, flow);
    } else {
        ret = db_err(s, "tick_last", NULL);
    }
    stmt_done(st);
    return ret;
}

static int sq_dedupe_claim(store *base, const char *instance, const char *flow,
                           const char *key, int64_t window_start_us,
                           const char *execution_id, char *existing_id,
                           size_t n) {
    sqlite_store *s = (sqlite_store *)base;
    if (!instance || !flow || !key || !execution_id)
        return set_err(s, FERRY_EINVAL,
                       "dedupe_claim: instance, flow, key and execution_id "
                       "are required");
    sqlite3_stmt *st = s->st[ST_DEDUPE_GET];
    bind_text(st, 1, instance);
    bind_text(st, 2, flow);
    bind_text(st, 3, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_int64(st, 1) >= window_start_us) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if (existing_id && n)
            snprintf(existing_id, n, "%s", id ? id : "");
        stmt_done(st);
        return set_err(s, FERRY_EEXISTS,
                       "dedupe_claim: '%s' flow '%s' already took this key",
                       instance, flow);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        int ret = db_err(s, "dedupe_claim", NULL);
        stmt_done(st);
        return ret;
    }
    stmt_done(st);
    /* New, or seen before the window: (re)claimed for this execution. */
    st = s->st[ST_DEDUPE_PUT];
    bind_text(st, 1, instance);
    bind_text(st, 2, flow);
    bind_text(st, 3, key);
    bind_text(st, 4, execution_id);
    sqlite3_bind_int64(st, 5, store_now_us());
    return run(s, st, "dedupe_claim", NULL);
}

/* ---- poll triggers ---- */

static int poll_args(sqlite_store *s, const char *op, const char *instance,
                     const char *flow, const char *key) {
    if (instance && flow && key)
        return 0;
    return set_err(s, FERRY_EINVAL, "%s: instance, flow and key are required",
                   op);
}

static void bind_poll_key(sqlite3_stmt *st, const char *instance,
                          const char *flow, const char *key) {
    bind_text(st, 1, instance);
    bind_text(st, 2, flow);
    bind_text(st, 3, key);
}

static int sq_poll_lookup(store *base, const char *instance, const char *flow,
                          const char *key, store_poll_item *out) {
    sqlite_store *s = (sqlite_store *)base;
    int ret = poll_args(s, "poll_lookup", instance, flow, key);
    if (ret)
        return ret;
    sqlite3_stmt *st = s->st[ST_POLL_LOOKUP];
    bind_poll_key(st, instance, flow, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *status = (const char *)sqlite3_column_text(st, 1);
        memset(out, 0, sizeof(*out));
        snprintf(out->execution_id, sizeof(out->execution_id), "%s",
                 id ? id : "");
        snprintf(out->status, sizeof(out->status), "%s", status ? status : "");
        out->disposed = sqlite3_column_int(st, 2) != 0;
        out->interrupted = sqlite3_column_int(st, 3) != 0;
        ret = 0;
    } else if (rc == SQLITE_DONE) {
        ret = set_err(s, FERRY_ENOTFOUND,
                      "poll_lookup: '%s' flow '%s' never "
                      "took this key",
                      instance, flow);
    } else {
        ret = db_err(s, "poll_lookup", NULL);
    }
    stmt_done(st);
    return ret;
}

static int sq_poll_claim(store *base, const char *instance, const char *flow,
                         const char *key, const char *execution_id,
                         const char *item_json) {
    sqlite_store *s = (sqlite_store *)base;
    int ret = poll_args(s, "poll_claim", instance, flow, key);
    if (ret)
        return ret;
    if (!execution_id)
        return set_err(s, FERRY_EINVAL, "poll_claim: execution_id is required");
    sqlite3_stmt *st = s->st[ST_POLL_CLAIM];
    bind_poll_key(st, instance, flow, key);
    bind_text(st, 4, execution_id);
    sqlite3_bind_int64(st, 5, store_now_us());
    bind_text(st, 6, item_json);
    return run(s, st, "poll_claim", NULL);
}

static int sq_poll_pending(store *base, const char *instance, const char *flow,
                           int limit, json_t **out) {
    sqlite_store *s = (sqlite_store *)base;
    int ret = poll_args(s, "poll_pending", instance, flow, "");
    *out = NULL;
    if (ret)
        return ret;
    json_t *a = json_array();
    if (!a)
        return set_err(s, FERRY_ENOMEM, "out of memory");
    sqlite3_stmt *st = s->st[ST_POLL_PENDING];
    bind_text(st, 1, instance);
    bind_text(st, 2, flow);
    sqlite3_bind_int(st, 3, limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *item = (const char *)sqlite3_column_text(st, 4);
        json_t *o = json_pack(
            "{s:o, s:o, s:o, s:b, s:o}", "key", col_str(st, 0), "execution_id",
            col_str(st, 1), "status", col_str(st, 2), "interrupted",
            sqlite3_column_int(st, 3) != 0, "item",
            item ? json_loads(item, JSON_DECODE_ANY, NULL) : json_null());
        json_array_append_new(a, o);
    }
    ret = rc == SQLITE_DONE ? 0 : db_err(s, "poll_pending", NULL);
    stmt_done(st);
    if (ret)
        json_decref(a);
    else
        *out = a;
    return ret;
}

static int sq_poll_release(store *base, const char *instance, const char *flow,
                           const char *key) {
    sqlite_store *s = (sqlite_store *)base;
    int ret = poll_args(s, "poll_release", instance, flow, key);
    if (ret)
        return ret;
    sqlite3_stmt *st = s->st[ST_POLL_RELEASE];
    bind_poll_key(st, instance, flow, key);
    return run(s, st, "poll_release", NULL);
}

static int sq_poll_disposed(store *base, const char *instance, const char *flow,
                            const char *key, const char *disposition) {
    sqlite_store *s = (sqlite_store *)base;
    int ret = poll_args(s, "poll_disposed", instance, flow, key);
    if (ret)
        return ret;
    sqlite3_stmt *st = s->st[ST_POLL_DISPOSED];
    bind_poll_key(st, instance, flow, key);
    sqlite3_bind_int64(st, 4, store_now_us());
    bind_text(st, 5, disposition ? disposition : "");
    return run(s, st, "poll_disposed", NULL);
}

static int sq_poll_cursor_get(store *base, const char *instance,
                              const char *flow, char **cursor_json) {
    sqlite_store *s = (sqlite_store *)base;
    *cursor_json = NULL;
    int ret = poll_args(s, "poll_cursor_get", instance, flow, "");
    if (ret)
        return ret;
    sqlite3_stmt *st = s->st[ST_CURSOR_GET];
    bind_text(st, 1, instance);
    bind_text(st, 2, flow);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        *cursor_json = strdup(t ? t : "null");
        ret = *cursor_json ? 0 : set_err(s, FERRY_ENOMEM, "out of memory");
    } else if (rc == SQLITE_DONE) {
        ret = set_err(s, FERRY_ENOTFOUND,
                      "poll_cursor_get: '%s' flow '%s' has no cursor", instance,
                      flow);
    } else {
        ret = db_err(s, "poll_cursor_get", NULL);
    }
    stmt_done(st);
    return ret;
}

static int sq_poll_cursor_set(store *base, const char *instance,
                              const char *flow, const char *cursor_json) {
    sqlite_store *s = (sqlite_store *)base;
    int ret = poll_args(s, "poll_cursor_set", instance, flow, cursor_json);
    if (ret)
        return ret;
    sqlite3_stmt *st = s->st[ST_CURSOR_SET];
    bind_text(st, 1, instance);
    bind_text(st, 2, flow);
    bind_text(st, 3, cursor_json);
    sqlite3_bind_int64(st, 4, store_now_us());
    return run(s, st, "poll_cursor_set", NULL);
}

/* ---- secrets: meta values, OAuth tokens and states ---- */

static int sq_meta_get(store *base, const char *key, char **value) {
    sqlite_store *s = (sqlite_store *)base;
    *value = NULL;
    sqlite3_stmt *st = s->st[ST_META_GET];
    bind_text(st, 1, key);
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        *value = strdup(v ? v : "");
        ret = *value ? 0 : set_err(s, FERRY_ENOMEM, "out of memory");
    } else if (rc == SQLITE_DONE) {
        ret = set_err(s, FERRY_ENOTFOUND, "meta_get: no '%s'", key);
    } else {
        ret = db_err(s, "meta_get", NULL);
    }
    stmt_done(st);
    return ret;
}

static int sq_meta_set(store *base, const char *key, const char *value) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = s->st[ST_META_SET];
    bind_text(st, 1, key);
    bind_text(st, 2, value);
    return run(s, st, "meta_set", NULL);
}

static json_t *col_int_or_null(sqlite3_stmt *st, int i) {
    return sqlite3_column_type(st, i) == SQLITE_NULL
               ? json_null()
               : json_integer(sqlite3_column_int64(st, i));
}

static json_t *token_row(sqlite3_stmt *st) {
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "instance", col_str(st, 0), "connection", col_str(st, 1),
                     "access_enc", col_str(st, 2), "refresh_enc",
                     col_str(st, 3), "token_type", col_str(st, 4), "scope",
                     col_str(st, 5), "expires_us", col_int_or_null(st, 6),
                     "obtained_us", col_int_or_null(st, 7), "status",
                     col_str(st, 8), "error", col_str(st, 9), "updated_us",
                     col_int_or_null(st, 10));
}

static int sq_token_get(store *base, const char *instance,
                        const char *connection, json_t **out) {
    sqlite_store *s = (sqlite_store *)base;
    *out = NULL;
    sqlite3_stmt *st = s->st[ST_TOKEN_GET];
    bind_text(st, 1, instance);
    bind_text(st, 2, connection);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW)
        *out = token_row(st);
    else if (rc == SQLITE_DONE)
        ret = set_err(s, FERRY_ENOTFOUND,
                      "token_get: no token for '%s' "
                      "connection '%s'",
                      instance, connection);
    else
        ret = db_err(s, "token_get", NULL);
    stmt_done(st);
    if (!ret && !*out)
        ret = set_err(s, FERRY_ENOMEM, "out of memory");
    return ret;
}

static const char *jtext(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static void bind_opt_json_int(sqlite3_stmt *st, int i, const json_t *v) {
    if (json_is_integer(v))
        sqlite3_bind_int64(st, i, json_integer_value(v));
    else
        sqlite3_bind_null(st, i);
}

static int sq_token_put(store *base, const json_t *t) {
    sqlite_store *s = (sqlite_store *)base;
    if (!jtext(t, "instance") || !jtext(t, "connection") || !jtext(t, "status"))
        return set_err(s, FERRY_EINVAL,
                       "token_put: instance, connection and "
                       "status are required");
    sqlite3_stmt *st = s->st[ST_TOKEN_PUT];
    bind_text(st, 1, jtext(t, "instance"));
    bind_text(st, 2, jtext(t, "connection"));
    bind_text(st, 3, jtext(t, "access_enc"));
    bind_text(st, 4, jtext(t, "refresh_enc"));
    bind_text(st, 5, jtext(t, "token_type"));
    bind_text(st, 6, jtext(t, "scope"));
    bind_opt_json_int(st, 7, json_object_get(t, "expires_us"));
    bind_opt_json_int(st, 8, json_object_get(t, "obtained_us"));
    bind_text(st, 9, jtext(t, "status"));
    bind_text(st, 10, jtext(t, "error"));
    sqlite3_bind_int64(st, 11, store_now_us());
    return run(s, st, "token_put", NULL);
}

static int sq_token_list(store *base, json_t **out) {
    sqlite_store *s = (sqlite_store *)base;
    *out = json_array();
    if (!*out)
        return set_err(s, FERRY_ENOMEM, "out of memory");
    sqlite3_stmt *st = s->st[ST_TOKEN_LIST];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(*out, token_row(st));
    int ret = rc == SQLITE_DONE ? 0 : db_err(s, "token_list", NULL);
    stmt_done(st);
    if (ret) {
        json_decref(*out);
        *out = NULL;
    }
    return ret;
}

static int sq_oauth_state_put(store *base, const char *state,
                              const char *instance, const char *connection,
                              const char *verifier_enc,
                              const char *redirect_uri, int64_t expires_us) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = s->st[ST_STATE_PUT];
    bind_text(st, 1, state);
    bind_text(st, 2, instance);
    bind_text(st, 3, connection);
    bind_text(st, 4, verifier_enc);
    bind_text(st, 5, redirect_uri);
    sqlite3_bind_int64(st, 6, expires_us);
    return run(s, st, "oauth_state_put", NULL);
}

static int sq_oauth_state_take(store *base, const char *state, json_t **out) {
    sqlite_store *s = (sqlite_store *)base;
    *out = NULL;
    sqlite3_stmt *st = s->st[ST_STATE_TAKE_GET];
    bind_text(st, 1, state);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW)
        *out =
            json_pack("{s:o, s:o, s:o, s:o, s:I}", "instance", col_str(st, 0),
                      "connection", col_str(st, 1), "verifier_enc",
                      col_str(st, 2), "redirect_uri", col_str(st, 3),
                      "expires_us", (json_int_t)sqlite3_column_int64(st, 4));
    else if (rc == SQLITE_DONE)
        ret = set_err(s, FERRY_ENOTFOUND, "oauth_state_take: unknown state");
    else
        ret = db_err(s, "oauth_state_take", NULL);
    stmt_done(st);
    /* Single use: gone whatever happens next; expired ones go too. */
    st = s->st[ST_STATE_TAKE_DEL];
    bind_text(st, 1, state);
    sqlite3_bind_int64(st, 2, store_now_us());
    int drc = run(s, st, "oauth_state_take", NULL);
    if (!ret && drc)
        ret = drc;
    if (ret) {
        json_decref(*out);
        *out = NULL;
    }
    return ret;
}

/* ---- dead letters ---- */

static int sq_dead_letter_put(store *base, const store_dead_letter *d) {
    sqlite_store *s = (sqlite_store *)base;
    if (!d || !d->id || !d->execution_id || !d->instance || !d->flow ||
        !d->integration)
        return set_err(s, FERRY_EINVAL,
                       "dead_letter_put: id, execution_id, "
                       "integration, instance and flow are "
                       "required");
    sqlite3_stmt *st = s->st[ST_DL_PUT];
    bind_text(st, 1, d->id);
    bind_text(st, 2, d->execution_id);
    bind_text(st, 3, d->integration);
    bind_text(st, 4, d->instance);
    bind_text(st, 5, d->flow);
    bind_text(st, 6, d->trigger_json);
    bind_text(st, 7, d->step);
    bind_data(s, st, 8, d->input_json);
    bind_opt_int(st, 9, d->error_code);
    bind_data(s, st, 10, d->error_message);
    sqlite3_bind_int(st, 11, d->attempts);
    bind_data(s, st, 12, d->resume_json);
    sqlite3_bind_int64(st, 13, d->created_us ? d->created_us : store_now_us());
    return run(s, st, "dead_letter_put", NULL);
}

static json_t *dl_row(sqlite3_stmt *st, int full) {
    json_t *o = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:o}", "id",
        col_str(st, 0), "execution_id", col_str(st, 1), "integration",
        col_str(st, 2), "instance", col_str(st, 3), "flow", col_str(st, 4),
        "step", col_str(st, 6), "error_code", col_err(st, 8), "error_message",
        col_str(st, 9), "attempts", sqlite3_column_int(st, 10), "created",
        col_time(st, 12), "state", col_str(st, 13), "replayed_by",
        col_str(st, 14));
    if (o && full) {
        json_object_set_new(o, "trigger", col_json(st, 5, 0));
        json_object_set_new(o, "input", col_json(st, 7, 0));
        json_object_set_new(o, "resume", col_json(st, 11, 0));
    }
    return o;
}

static int sq_dead_letter_get(store *base, const char *id, json_t **out) {
    sqlite_store *s = (sqlite_store *)base;
    *out = NULL;
    sqlite3_stmt *st = s->st[ST_DL_GET];
    bind_text(st, 1, id);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW)
        *out = dl_row(st, 1);
    else if (rc == SQLITE_DONE)
        ret = set_err(s, FERRY_ENOTFOUND, "no dead letter '%s'", id);
    else
        ret = db_err(s, "dead_letter_get", NULL);
    stmt_done(st);
    if (!ret && !*out)
        ret = set_err(s, FERRY_ENOMEM, "out of memory");
    return ret;
}

static int sq_dead_letter_list(store *base, const char *instance,
                               const char *flow, const char *state, int limit,
                               json_t **out) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st;
    *out = NULL;
    /* Rare and small: prepared per call. */
    if (sqlite3_prepare_v2(
            s->db,
            "SELECT id, execution_id, integration, instance, flow,"
            " trigger_json, step, input_json, error_code, error_message,"
            " attempts, resume_json, created_us, state, replayed_by"
            " FROM dead_letters WHERE (?1 IS NULL OR instance = ?1)"
            " AND (?2 IS NULL OR flow = ?2) AND (?3 IS NULL OR state = ?3)"
            " ORDER BY created_us, id LIMIT ?4",
            -1, &st, NULL) != SQLITE_OK)
        return db_err(s, "dead_letter_list", NULL);
    bind_text(st, 1, instance);
    bind_text(st, 2, flow);
    bind_text(st, 3, state);
    sqlite3_bind_int(st, 4, limit > 0 ? limit : 1000);
    json_t *a = json_array();
    int rc;
    while (a && (rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(a, dl_row(st, 0));
    int ret = !a                  ? set_err(s, FERRY_ENOMEM, "out of memory")
              : rc == SQLITE_DONE ? 0
                                  : db_err(s, "dead_letter_list", NULL);
    sqlite3_finalize(st);
    if (ret)
        json_decref(a);
    else
        *out = a;
    return ret;
}

static int sq_dead_letter_mark(store *base, const char *id, const char *state,
                               const char *replayed_by) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = s->st[ST_DL_MARK];
    bind_text(st, 1, id);
    bind_text(st, 2, state);
    bind_text(st, 3, replayed_by);
    sqlite3_bind_int64(st, 4, store_now_us());
    int rc = run(s, st, "dead_letter_mark", NULL);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        return set_err(s, FERRY_ENOTFOUND,
                       "no open dead letter '%s' (unknown, or already "
                       "replayed or discarded)",
                       id);
    return rc;
}

/* ---- the alert outbox (rare: statements prepared per call) ---- */

static int one_shot(sqlite_store *s, const char *op, const char *sql,
                    sqlite3_stmt **st) {
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_err(s, op, NULL);
    return 0;
}

static int sq_outbox_put(store *base, const char *id, const char *target_json,
                         const char *event_json, int64_t next_us) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st;
    int rc = one_shot(s, "outbox_put",
                      "INSERT INTO alert_outbox (id, target_json, event_json,"
                      " next_us, created_us) VALUES (?1, ?2, ?3, ?4, ?5)",
                      &st);
    if (rc)
        return rc;
    bind_text(st, 1, id);
    bind_text(st, 2, target_json);
    bind_text(st, 3, event_json);
    sqlite3_bind_int64(st, 4, next_us);
    sqlite3_bind_int64(st, 5, store_now_us());
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(s, "outbox_put", NULL);
    sqlite3_finalize(st);
    return rc;
}

static int sq_outbox_list(store *base, json_t **out) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st;
    *out = NULL;
    int rc = one_shot(s, "outbox_list",
                      "SELECT id, target_json, event_json, attempts, next_us"
                      " FROM alert_outbox ORDER BY created_us",
                      &st);
    if (rc)
        return rc;
    json_t *a = json_array();
    while (a && (rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(
            a,
            json_pack("{s:o, s:o, s:o, s:i, s:I}", "id", col_str(st, 0),
                      "target", col_json(st, 1, 0), "event", col_json(st, 2, 0),
                      "attempts", sqlite3_column_int(st, 3), "next_us",
                      (json_int_t)sqlite3_column_int64(st, 4)));
    int ret = a && rc == SQLITE_DONE ? 0 : db_err(s, "outbox_list", NULL);
    sqlite3_finalize(st);
    if (ret)
        json_decref(a);
    else
        *out = a;
    return ret;
}

static int sq_outbox_update(store *base, const char *id, int done, int attempts,
                            int64_t next_us, const char *error) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st;
    int rc = one_shot(s, "outbox_update",
                      done ? "DELETE FROM alert_outbox WHERE id = ?1"
                           : "UPDATE alert_outbox SET attempts = ?2,"
                             " next_us = ?3, last_error = ?4 WHERE id = ?1",
                      &st);
    if (rc)
        return rc;
    bind_text(st, 1, id);
    if (!done) {
        sqlite3_bind_int(st, 2, attempts);
        sqlite3_bind_int64(st, 3, next_us);
        bind_text(st, 4, error);
    }
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(s, "outbox_update", NULL);
    sqlite3_finalize(st);
    return rc;
}

/* ---- the queue past the host's memory ---- */

static int sq_spill_add(store *base, const char *id) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = s->st[ST_SPILL_ADD];
    bind_text(st, 1, id);
    return run(s, st, "spill_add", id);
}

static int sq_spill_take(store *base, int limit, json_t **out, int *taken) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st;
    *out = NULL;
    *taken = 0;
    if (limit <= 0)
        return set_err(s, FERRY_EINVAL, "spill_take: limit must be positive");
    int rc = one_shot(s, "spill_take",
                      "SELECT q.seq, q.id, e.instance, e.flow, e.trigger_json,"
                      " e.status = 'queued', e.created_us FROM queue_spill q"
                      " LEFT JOIN executions e ON e.id = q.id"
                      " ORDER BY q.seq LIMIT ?1",
                      &st);
    if (rc)
        return rc;
    sqlite3_bind_int(st, 1, limit);
    json_t *a = json_array();
    sqlite3_int64 last = 0;
    int n = 0;
    while (a && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        last = sqlite3_column_int64(st, 0);
        n++;
        if (sqlite3_column_int(st, 5) != 1)
            continue; /* cancelled meanwhile, or gone */
        if (json_array_append_new(
                a, json_pack("{s:o, s:o, s:o, s:o, s:I}", "id", col_str(st, 1),
                             "instance", col_str(st, 2), "flow", col_str(st, 3),
                             "trigger_text", col_str(st, 4), "created_us",
                             (json_int_t)sqlite3_column_int64(st, 6))))
            rc = SQLITE_NOMEM;
    }
    int ret = a && rc == SQLITE_DONE ? 0 : db_err(s, "spill_take", NULL);
    sqlite3_finalize(st);
    if (!ret && n) {
        ret = one_shot(s, "spill_take",
                       "DELETE FROM queue_spill WHERE seq <= ?1", &st);
        if (!ret) {
            sqlite3_bind_int64(st, 1, last);
            if (sqlite3_step(st) != SQLITE_DONE)
                ret = db_err(s, "spill_take", NULL);
            sqlite3_finalize(st);
        }
    }
    if (ret) {
        json_decref(a);
        return ret;
    }
    *out = a;
    *taken = n;
    return 0;
}

static int sq_spill_all(store *base, int64_t *count) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st;
    *count = 0;
    if (sqlite3_exec(s->db, "DELETE FROM queue_spill", NULL, NULL, NULL) !=
        SQLITE_OK)
        return db_err(s, "spill_all", NULL);
    int rc = one_shot(s, "spill_all",
                      "INSERT INTO queue_spill (id) SELECT id FROM executions"
                      " WHERE status = 'queued' ORDER BY created_us, id",
                      &st);
    if (rc)
        return rc;
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(s, "spill_all", NULL);
    sqlite3_finalize(st);
    if (!rc)
        *count = sqlite3_changes64(s->db);
    return rc;
}

static int sq_spill_remove(store *base, const char *id, int *removed) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st;
    *removed = 0;
    int rc = one_shot(s, "spill_remove",
                      "DELETE FROM queue_spill WHERE id = ?1", &st);
    if (rc)
        return rc;
    bind_text(st, 1, id);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(s, "spill_remove", id);
    sqlite3_finalize(st);
    if (!rc)
        *removed = sqlite3_changes(s->db) > 0;
    return rc;
}

/* ---- retention ---- */

static int sq_prune(store *base, int64_t before_us, int64_t keep_count,
                    int64_t dl_before_us, int limit, int *deleted) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st;
    *deleted = 0;
    /* Ended executions only, never one whose poll item is still to be
     * disposed of (its outcome decides what happens to the item). Steps
     * and logs go with them (ON DELETE CASCADE). */
    int rc =
        one_shot(s, "prune",
                 "DELETE FROM executions WHERE id IN (SELECT id FROM executions"
                 " WHERE status IN ('succeeded', 'failed', 'cancelled')"
                 " AND (created_us < ?1 OR (?2 > 0 AND created_us < (SELECT"
                 " created_us FROM executions ORDER BY created_us DESC LIMIT 1"
                 " OFFSET ?2)))"
                 " AND id NOT IN (SELECT execution_id FROM poll_items"
                 " WHERE disposed_us IS NULL)"
                 " ORDER BY created_us LIMIT ?3)",
                 &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, before_us);
    sqlite3_bind_int64(st, 2, keep_count);
    sqlite3_bind_int(st, 3, limit);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(s, "prune", NULL);
    sqlite3_finalize(st);
    if (rc)
        return rc;
    *deleted += sqlite3_changes(s->db);
    if (dl_before_us <= 0)
        return 0;
    /* Dead letters that were replayed or discarded; open ones stay. */
    rc = one_shot(s, "prune",
                  "DELETE FROM dead_letters WHERE id IN (SELECT id FROM"
                  " dead_letters WHERE state != 'open' AND created_us < ?1"
                  " ORDER BY created_us LIMIT ?2)",
                  &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, dl_before_us);
    sqlite3_bind_int(st, 2, limit);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(s, "prune", NULL);
    sqlite3_finalize(st);
    if (!rc)
        *deleted += sqlite3_changes(s->db);
    return rc;
}

static int sq_tx_begin(store *base) {
    sqlite_store *s = (sqlite_store *)base;
    return run(s, s->st[ST_BEGIN], "begin", NULL);
}

static int sq_tx_commit(store *base) {
    sqlite_store *s = (sqlite_store *)base;
    return run(s, s->st[ST_COMMIT], "commit", NULL);
}

static int sq_tx_rollback(store *base) {
    sqlite_store *s = (sqlite_store *)base;
    return run(s, s->st[ST_ROLLBACK], "rollback", NULL);
}

static int sq_tx_open(store *base) {
    sqlite_store *s = (sqlite_store *)base;
    return !sqlite3_get_autocommit(s->db);
}

static int sq_checkpoint(store *base, int *frames) {
    sqlite_store *s = (sqlite_store *)base;
    int log = -1, done = -1;
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                       &log, &done);
    if (frames)
        *frames = rc == SQLITE_OK ? log : -1;
    /* BUSY: another handle is checkpointing; it is not an error here. */
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return db_err(s, "checkpoint", NULL);
    return 0;
}

/* SQLite calls it after each commit that wrote to the log. */
static int on_log_written(void *ud, sqlite3 *db, const char *name, int n) {
    (void)db;
    (void)name;
    ((sqlite_store *)ud)->log_frames = n;
    return SQLITE_OK;
}

static int sq_set_autocheckpoint(store *base, int on) {
    sqlite_store *s = (sqlite_store *)base;
    /* Both replace the commit hook: the automatic checkpoint is one. */
    if (on)
        sqlite3_wal_autocheckpoint(s->db, 1000);
    else
        sqlite3_wal_hook(s->db, on_log_written, s);
    return 0;
}

static int sq_log_frames(store *base) {
    return ((sqlite_store *)base)->log_frames;
}

static int pragma_int(sqlite_store *s, const char *sql);

static int sq_log_reserve(store *base, int frames, int step) {
    static const char zeros[1 << 16];
    sqlite_store *s = (sqlite_store *)base;
    const char *wal = sqlite3_filename_wal(sqlite3_db_filename(s->db, "main"));
    int page = pragma_int(s, "PRAGMA page_size");
    if (page <= 0 || !wal || !*wal) {
        set_err(s, FERRY_EIO, "log_reserve: no log file");
        return -1;
    }
    /* the log's 32-byte header, then per frame a 24-byte header and a page */
    int64_t frame = 24 + (int64_t)page;
    int fd = open(wal, O_WRONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) {
        set_err(s, FERRY_EIO, "log_reserve: %s: %s", wal, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int64_t end = sb.st_size;
    int64_t want = 32 + (int64_t)frames * frame;
    if (want > end + (int64_t)step * frame)
        want = end + (int64_t)step * frame;
    for (int64_t at = end; at < want;) {
        size_t n = want - at < (int64_t)sizeof zeros ? (size_t)(want - at)
                                                     : sizeof zeros;
        ssize_t w = pwrite(fd, zeros, n, (off_t)at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            /* a full disk: give the room back to the log itself */
            set_err(s, FERRY_EIO, "log_reserve: %s: %s", wal,
                    w < 0 ? strerror(errno) : "nothing written");
            if (ftruncate(fd, (off_t)end)) {
                /* the zeros stay: harmless past the log's last frame */
            }
            close(fd);
            return -1;
        }
        at += w;
    }
    close(fd);
    return (int)(((want > end ? want : end) - 32) / frame);
}

/* ---- opening and closing ---- */

static void sq_close(store *base) {
    sqlite_store *s = (sqlite_store *)base;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    for (int i = 0; i < F_COMBOS; i++)
        sqlite3_finalize(s->list[i]);
    sqlite3_close(s->db);
    free(s);
}

static const store_vtable sqlite_vtable = {
    .close = sq_close,
    .exec_begin = sq_exec_begin,
    .exec_end = sq_exec_end,
    .step_record = sq_step_record,
    .log_append = sq_log_append,
    .state_get = sq_state_get,
    .state_set = sq_state_set,
    .exec_list = sq_exec_list,
    .exec_get = sq_exec_get,
    .exec_started = sq_exec_started,
    .tx_begin = sq_tx_begin,
    .tx_commit = sq_tx_commit,
    .tx_rollback = sq_tx_rollback,
    .checkpoint = sq_checkpoint,
    .set_autocheckpoint = sq_set_autocheckpoint,
    .log_frames = sq_log_frames,
    .log_reserve = sq_log_reserve,
    .tx_open = sq_tx_open,
    .tick_insert = sq_tick_insert,
    .tick_last = sq_tick_last,
    .dedupe_claim = sq_dedupe_claim,
    .poll_lookup = sq_poll_lookup,
    .poll_claim = sq_poll_claim,
    .poll_release = sq_poll_release,
    .poll_disposed = sq_poll_disposed,
    .poll_pending = sq_poll_pending,
    .poll_cursor_get = sq_poll_cursor_get,
    .poll_cursor_set = sq_poll_cursor_set,
    .meta_get = sq_meta_get,
    .meta_set = sq_meta_set,
    .token_get = sq_token_get,
    .token_put = sq_token_put,
    .token_list = sq_token_list,
    .oauth_state_put = sq_oauth_state_put,
    .oauth_state_take = sq_oauth_state_take,
    .dead_letter_put = sq_dead_letter_put,
    .dead_letter_get = sq_dead_letter_get,
    .dead_letter_list = sq_dead_letter_list,
    .dead_letter_mark = sq_dead_letter_mark,
    .outbox_put = sq_outbox_put,
    .outbox_list = sq_outbox_list,
    .outbox_update = sq_outbox_update,
    .prune = sq_prune,
    .spill_add = sq_spill_add,
    .spill_take = sq_spill_take,
    .spill_all = sq_spill_all,
    .spill_remove = sq_spill_remove,
};

void store_sqlite_set_filter(store *base, store_text_filter f, void *ud) {
    if (!base || base->vt != &sqlite_vtable)
        return; /* not a SQLite store */
    sqlite_store *s = (sqlite_store *)base;
    s->filter = f;
    s->filter_ud = ud;
}

/* The single integer a PRAGMA returns, or -1 with errmsg set. */
static int pragma_int(sqlite_store *s, const char *sql) {
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_err(s, sql, NULL);
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    else
        db_err(s, sql, NULL);
    sqlite3_finalize(st);
    return v;
}

static int exec_sql(sqlite_store *s, const char *op, const char *sql) {
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_err(s, op, NULL);
    return 0;
}

static int set_journal_wal(sqlite_store *s, const char *path) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) !=
        SQLITE_OK)
        return db_err(s, "journal_mode=WAL", NULL);
    int ret = 0;
    if (sqlite3_step(st) != SQLITE_ROW) {
        ret = db_err(s, "journal_mode=WAL", NULL);
    } else {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        const char *file = sqlite3_db_filename(s->db, "main");
        /* An in-memory database has no WAL; any file must. */
        if (file && *file && (!mode || strcmp(mode, "wal") != 0))
            ret = set_err(s, FERRY_EIO,
                          "%s: cannot use WAL journal mode (got '%s'); is it "
                          "on a network file system?",
                          path, mode ? mode : "?");
    }
    sqlite3_finalize(st);
    return ret;
}

/* Brings the schema up to date in one transaction: all pending migrations
 * or none. BEGIN IMMEDIATE takes the write lock before reading the version,
 * so two processes opening a new file at once migrate it once. */
static int migrate(sqlite_store *s, const char *path) {
    int app = pragma_int(s, "PRAGMA application_id");
    int v = pragma_int(s, "PRAGMA user_version");
    if (app < 0 || v < 0)
        return FERRY_EIO;
    if (app != 0 && app != FERRY_APPLICATION_ID)
        return set_err(s, FERRY_EINVAL, "%s: not a ferry database", path);
    if (v > N_MIGRATIONS)
        return set_err(s, FERRY_EUNSUPPORTED,
                       "%s: schema version %d is newer than this ferry's (%d)",
                       path, v, N_MIGRATIONS);
    if (v == N_MIGRATIONS)
        return 0;

    int ret = exec_sql(s, "migrate: begin", "BEGIN IMMEDIATE");
    if (ret)
        return ret;
    v = pragma_int(s, "PRAGMA user_version");
    if (v < 0)
        ret = FERRY_EIO;
    for (; ret == 0 && v < N_MIGRATIONS; v++) {
        char op[64], sql[96];
        snprintf(op, sizeof op, "migration %d", v + 1);
        ret = exec_sql(s, op, migrations[v]);
        snprintf(sql, sizeof sql,
                 "PRAGMA user_version = %d; PRAGMA application_id = %d", v + 1,
                 FERRY_APPLICATION_ID);
        if (ret == 0)
            ret = exec_sql(s, op, sql);
    }
    if (ret == 0)
        ret = exec_sql(s, "migrate: commit", "COMMIT");
    if (ret)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

static int prepare_all(sqlite_store *s) {
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
                               SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK)
            return db_err(s, "prepare", NULL);
    }
    return 0;
}

store *store_open_sqlite(const char *path, char **err) {
    if (err)
        *err = NULL;
    sqlite_store *s = calloc(1, sizeof *s);
    if (!s) {
        if (err)
            *err = strdup("store: out of memory");
        return NULL;
    }
    s->base.vt = &sqlite_vtable;
    if (!path) {
        set_err(s, FERRY_EINVAL, "store: no database path");
        goto fail;
    }
    /* NOMUTEX: a handle is used by one thread at a time (store.h). */
    int rc = sqlite3_open_v2(
        path, &s->db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_err(s, FERRY_EIO, "%s: %s", path,
                s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    if (set_journal_wal(s, path) ||
        exec_sql(s, "open", "PRAGMA synchronous=NORMAL") ||
        /* The log grows while commits keep coming faster than a
         * checkpoint can catch up; when it next starts again from its
         * beginning, it is cut back to this size rather than kept at its
         * largest. Not less: ferry serve starts the log again once it is
         * past 8 MB (core/host/storeq.c), but when the disk is busy it is
         * past 100 MB by then; cutting the file at every start costs the
         * writer a stall of 100 ms or more (the freed blocks are
         * discarded). */
        exec_sql(s, "open",
                 "PRAGMA journal_size_limit=" STORE_WAL_KEEP_BYTES) ||
        exec_sql(s, "open", "PRAGMA foreign_keys=ON") || migrate(s, path) ||
        prepare_all(s))
        goto fail;
    return &s->base;

fail:
    if (err)
        *err = strdup(s->base.errmsg);
    sq_close(&s->base);
    return NULL;
}
