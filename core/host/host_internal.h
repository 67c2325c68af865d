/* The host's state, shared by serve.c (loop, zygote, dispatcher) and api.c
 * (HTTP handlers). Loop thread only. */
#ifndef FERRY_CORE_HOST_INTERNAL_H
#define FERRY_CORE_HOST_INTERNAL_H

#include "abi/abi.h"
#include "deploy.h"
#include "exec/exec.h"
#include "host.h"
#include "http/http.h"
#include "secret/secret.h"
#include "storeq.h"

#include <sys/types.h>
#include <uv.h>

enum run_state { RUN_QUEUED, RUN_SPAWNING, RUN_RUNNING, RUN_DONE };

typedef struct host host;

/* A zygote process and its control socket. */
typedef struct zygote {
    host *h;
    unsigned generation; /* newer zygotes have loaded newer components */
    uv_process_t proc;
    int proc_open;
    int fd, fd_open;
    uv_poll_t poll;
    int poll_open;
    frame_decoder dec;
    int ready, retired, was_current;
    pid_t pid;
    struct zygote *next;
} zygote;

typedef struct run {
    host *h;
    char id[40];
    deployment *dep; /* a reference: a redeploy does not change this run */
    char *flow;
    const flow_def *fdef; /* in dep->ig: lives as long as dep */
    json_t *trigger;
    char *trigger_text; /* its JSON text, once the store has it; or NULL */
    enum run_state state;
    int64_t queued_us;
    int64_t started_us;
    uint64_t timeout_ms; /* the flow's limits, or the host's defaults */
    uint64_t cpu_seconds;
    uint64_t memory_bytes;
    uint64_t output_bytes;
    /* the worker */
    uv_pipe_t pipe;
    int pipe_open, pipe_closed;
    frame_decoder dec;
    pid_t pid;
    int exited, exit_code, exit_signal;
    int64_t max_rss;
    int64_t cpu_us;
    int got_end;
    int timed_out, cancel_requested, oom;
    char *current_step;
    uv_timer_t timer;
    int timer_open;
    int handles;      /* open uv handles; freed when 0 and done */
    zygote *z;        /* the zygote that forked its worker */
    struct run *next; /* in the queue */
    /* A component poll's own run (flow "<flow>:poll", fdef the flow's):
     * the worker runs the trigger's poll, and poll_result is its whole
     * output ({"items", "cursor"}), kept for the poller. */
    int poll;
    json_t *poll_result;
    int end_ok; /* the end frame said "succeeded" */
    /* Retries: the state a parked execution goes on from (sent with the
     * spawn), and when the end frame parked it again ("waiting"). */
    json_t *resume;
    int64_t wait_due_us;
    int dead_lettered;    /* the worker recorded a dead letter */
    char last_status[16]; /* the end frame's status */
    char *last_error;     /* the end frame's error message */
    /* Called once when the run is over (finish(), or freed without
     * finishing: status "cancelled"), then cleared. status, output_json
     * (the end frame's, bounded by max_recorded; NULL when none) and error
     * are borrowed for the call. Set it after host_enqueue's callback. */
    void (*on_done)(void *ud, struct run *r, const char *status,
                    const char *output_json, const char *error);
    void *on_done_ud;
    char *end_status, *end_output, *end_error; /* kept only with on_done */
} run;

struct host {
    const host_config *cfg;
    uv_loop_t *loop;
    store *st;   /* owned by the store thread */
    store *ckpt; /* the checkpoint thread's handle */
    storeq *q;
    uint64_t store_failures;  /* batches not committed since the last one */
    uint64_t store_fail_told; /* uv_now when that was last logged */
    size_t store_kept; /* records kept by the store thread: dispatch waits */
    size_t store_lost; /* records the stop gave up: the host exits 1 */
    http_server *http;
    metrics *m;
    abi_registry *reg;         /* current components (the host's copies) */
    abi_registry **old_regs;   /* earlier ones, kept for old deployments */
    abi_registry *pending_reg; /* loaded, current once its zygote is ready */
    size_t nold_regs;
    uv_fs_event_t watch; /* the components directory */
    uv_timer_t reload_timer;
    deploy_table *deps;
    /* zygotes: the current one, and retiring ones whose workers run */
    struct zygote *zygotes;
    struct zygote *zcur;
    unsigned zgeneration;
    /* executions */
    run *qhead, *qtail;
    size_t nqueued;
    /* The queue past limits.queue_in_memory: runs whose rows wait in the
     * store's spill list (store.h, spill_add) to be taken up, oldest
     * first, as the queue drains. While any wait there, or are on their
     * way (spilling), host_enqueue sends new runs there too, so that none
     * overtakes an older one. mem_pending: host_enqueue jobs on their way
     * to the in-memory queue. */
    size_t nspilled, spilling, mem_pending;
    int refilling;
    run **active; /* spawning or running */
    size_t nactive, capactive;
    /* lifecycle */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t grace;
    int stopping;
    int q_stopping;
    struct host_sched *sched;     /* scheduler.c's state */
    struct host_poll *poll;       /* poller.c's state */
    struct host_oauth *oauth;     /* oauth.c's state */
    struct host_retries *retries; /* retries.c's state */
    struct host_alerts *alerts;   /* alerts.c's state */
    secret_key key;               /* the master key, when has_key */
    int has_key;
    int exit_status;
    int store_ok;
};

/* Logs one line (text or JSON per config). fields: stolen, may be NULL. */
void host_log(host *h, const char *level, json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Queues an execution of flow of dep with trigger (borrowed): the row is
 * written as "queued" first; done(ud, id, err) is called on the loop thread
 * once it is durable (err NULL) or was refused (id NULL, with the HTTP
 * status that says why: 409 for a singleton flow already running, 503 when
 * the store could not take it). */
typedef void (*host_enqueued_cb)(void *ud, const char *id, int http_status,
                                 const char *err);
void host_enqueue(host *h, deployment *dep, const char *flow,
                  const json_t *trigger, host_enqueued_cb done, void *ud);
/* The same with an idempotency key (borrowed; NULL: none), claimed in the
 * same store transaction as the execution's row: if the flow of the
 * instance claimed it at or after window_start_us, nothing is queued and
 * done gets the first execution's id with http_status 200. */
void host_enqueue_dedupe(host *h, deployment *dep, const char *flow,
                         const json_t *trigger, const char *dedupe_key,
                         int64_t window_start_us, host_enqueued_cb done,
                         void *ud);
/* Asks an execution to stop. Returns 0 if it was queued or running here,
 * FERRY_ENOTFOUND if it is not active. */
int host_cancel(host *h, const char *id);
/* A queued execution was taken off the store's spill list and cancelled
 * there (api.c). */
void host_spill_cancelled(host *h);
/* Finds an active or queued execution. */
run *host_find_run(host *h, const char *id);
/* For callers that write the execution row themselves (scheduler.c):
 * run_new makes a run of flow of dep (trigger borrowed; NULL out of
 * memory), queue_push appends it to the queue once its row is durable,
 * and dispatch starts what may start. */
run *run_new(host *h, const char *id, deployment *dep, const char *flow,
             json_t *trigger);
void queue_push(host *h, run *r);
void dispatch(host *h);

/* Schedules (scheduler.c): arms a timer for every schedule trigger of the
 * deployed instances; each tick is recorded with a unique key (instance,
 * flow, fire time) before its execution is queued. */
void host_sched_start(host *h);  /* after start-up recovery */
void host_sched_reload(host *h); /* the deployments changed */
/* One instance was deployed or redeployed: only its entries change. */
void host_sched_reload_instance(host *h, const char *instance);
void host_sched_stop(host *h); /* shutdown: close the timers */

/* Polls (poller.c): looks for new items of every poll trigger of the
 * deployed instances; each item's dedupe key is claimed in the same store
 * transaction as its execution, and the item is disposed of once the
 * execution has ended. */
void host_poll_start(host *h);  /* after start-up recovery */
void host_poll_reload(host *h); /* the deployments changed */
void host_poll_reload_instance(host *h, const char *instance);
void host_poll_stop(host *h); /* shutdown */
/* A run ended (its end is queued to the store): its poll, if it came from
 * one, looks again soon to dispose of its items. */
void host_poll_run_done(host *h, const run *r);

/* Retries (retries.c): executions parked "waiting" for a step's next
 * attempt are taken up again at their due time, with the state they park
 * with; also those found at start. */
void host_retry_schedule(host *h, const char *id, const char *instance,
                         const char *flow, int64_t due_us);
void host_retry_stop(host *h);
/* Starts the retention pruning too (after start-up recovery). */
void host_retry_start(host *h);
/* Dead letters over HTTP (retries.c). */
void host_dead_letters_list(void *ud, http_req *r);
void host_dead_letter_get(void *ud, http_req *r);
void host_dead_letter_replay(void *ud, http_req *r);
void host_dead_letter_discard(void *ud, http_req *r);

/* Alerting (alerts.c): the monitors of the deployments. */
void host_alerts_start(host *h);
void host_alerts_stop(host *h);
/* A run ended with status (and error, may be NULL). */
void host_alert_execution(host *h, const run *r, const char *status,
                          const char *error);
/* A connection needs re-authorisation (needs), or no longer does. */
void host_alert_reauth(host *h, const char *instance, const char *connection,
                       int needs, const char *error);
/* A component was refused at load. */
void host_alert_refused(host *h, const char *path, const char *reason);

/* Sends answer (borrowed) to a run's worker, for a request it made. */
void run_answer(run *r, const json_t *answer);
/* Drops a hold on r taken with r->handles++ (frees it when done). */
void run_release(run *r);

/* OAuth 2.0 (oauth.c): the host owns tokens. host_token_get calls cb once
 * with an access token for the connection of dep's instance, fetching or
 * refreshing it first when needed (one request at a time per connection;
 * the others wait for it); force with refused: the resource answered 401
 * to the token with that fingerprint (secret_fingerprint). On failure access is
 * NULL and err says why; reauth: only a person can fix it; retryable: trying
 * later may work. */
typedef void (*host_token_cb)(void *ud, const char *access,
                              const char *token_type, const char *err,
                              int reauth, int retryable);
void host_token_get(host *h, deployment *dep, const char *connection, int force,
                    const char *refused, host_token_cb cb, void *ud);
/* GET /oauth/authorize/{instance}/{connection}, GET /oauth/callback and
 * GET /api/v1/instances/{instance}/connections. */
void host_oauth_authorize(void *ud, http_req *r);
void host_oauth_callback(void *ud, http_req *r);
void host_connections_get(void *ud, http_req *r);
/* Frees the token cache (shutdown). */
void host_oauth_free(host *h);

/* Webhooks (webhooks.c): the handler of /webhooks/{instance}/{flow}. */
void host_webhook_handler(void *ud, http_req *r);

/* Routes for the HTTP server (api.c). */
extern const http_route host_routes[];
extern const size_t host_nroutes;
/* Declares the host's metrics (api.c). */
void host_metrics_declare(metrics *m);

#endif
