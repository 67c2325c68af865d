/*
 * host: `ferry serve`. One libuv loop thread owns the HTTP server, the
 * zygote's control socket, every worker's event socket and the timers. The
 * store is written by one store thread (group commit); the loop never calls
 * SQLite itself. Executions are accepted into the store as "queued" before
 * anything answers, dispatched up to the concurrency limits, and run in
 * workers forked by the zygote.
 *
 * Owns: configuration, deployments (integrations and instances in memory,
 * replaced atomically), the dispatcher, containment (deadlines, limits,
 * crash reasons), the API handlers, shutdown.
 */
#ifndef FERRY_CORE_HOST_H
#define FERRY_CORE_HOST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct host_config {
    char *listen_host; /* "127.0.0.1" */
    int port;          /* 8080; 0 picks a free one */
    char *tls_cert, *tls_key;
    char *components_dir;
    char *db;
    char *deployments_dir;
    char **api_tokens;
    size_t ntokens;
    int max_concurrency;        /* workers at once, all flows */
    size_t queue_in_memory;     /* queued runs held in memory; past it,
                                   they wait in the store only */
    uint64_t timeout_ms;        /* default wall-clock deadline per run */
    uint64_t cpu_seconds;       /* default CPU limit per run, 0 none */
    uint64_t memory_bytes;      /* default memory limit per run, 0 none */
    size_t max_recorded;        /* bytes of each recorded input/output */
    uint64_t max_output;        /* default limit on a run's output, 0 none */
    uint64_t shutdown_grace_ms; /* SIGTERM: how long running runs get */
    int log_json;               /* log lines as JSON, else text */
    char *port_file;            /* write the bound port here (tests) */
    char *public_url;           /* how users reach the host (OAuth redirects) */
    char *master_key_file;      /* the master key, unless FERRY_MASTER_KEY */
    /* "retention": ended executions older than retention_ms (0: kept) or
     * beyond the newest retention_count (0: no count); dead letters no
     * longer open older than dl_retention_ms (0: kept) */
    uint64_t retention_ms, retention_count, dl_retention_ms;
} host_config;

/* Defaults, then the file (if non-NULL), then FERRY_* environment
 * variables. Flags are applied by the caller afterwards. Returns 0, or -1
 * with *err malloc'd naming the file, the field and what was expected. */
int host_config_load(host_config *c, const char *file, char **err);
void host_config_free(host_config *c);

/* Runs the host until SIGTERM/SIGINT. Returns the exit status. */
int host_serve(const host_config *c);

#endif
