/*
 * flow: definitions (integrations, instances), their validation, references
 * and templating, the engine that runs a flow's steps in one process, and
 * the ferry_api table that components call back into.
 *
 * Owns: parsing and validating integration and instance files, resolving
 * {{ ... }} references, running steps (actions, for_each, branch, jq),
 * blobs of an execution, recording through the store interface.
 * Must not touch: sockets, event loops, processes (the host's job).
 */
#ifndef FERRY_CORE_FLOW_H
#define FERRY_CORE_FLOW_H

#include "../abi/abi.h"
#include "../store/store.h"
#include <ferry/ferry.h>
#include <stdio.h>

/* The host's function table handed to every component. Static; borrowed. */
const ferry_api *flow_host_api(void);
/* The built-in "core" component (core.log, core.set, core.fail). */
const ferry_component *flow_core_component(void);

/* Initialises r with the core component and every .so in dir (refusals are
 * recorded in r). Returns 0, or -1 with *err malloc'd if dir is unreadable. */
int flow_load_registry(abi_registry *r, const char *dir, char **err);

/* How values become text where people read them (interpolation, recorded
 * inputs and outputs, `ferry run`): compact, and reals with 15 significant
 * digits, so a computed 65.3 reads "65.3", not "65.299999999999997". Trigger
 * payloads are recorded at full precision, since they are replayed. */
#define FLOW_JSON_TEXT                                                         \
    (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))

/* A duration: a whole number with a unit, "500ms", "30s", "15m", "2h", "7d", or
 * a bare whole number of milliseconds. Returns 0 with *out in ms, or -1
 * (malformed or too large) leaving *out alone. */
int flow_parse_duration_ms(const char *s, uint64_t *out);
/* A size: "512B", "64KiB", "512MiB", "1GiB", or a bare number of bytes.
 * Returns 0 with *out in bytes, or -1 leaving *out alone. */
int flow_parse_size(const char *s, uint64_t *out);

/* ---- diagnostics ---- */

/* One validation error: "FILE: PATH: message". All fields owned. */
typedef struct flow_diag {
    char *file;
    char *path;
    char *message;
} flow_diag;

typedef struct flow_diags {
    flow_diag *items; /* owned */
    size_t n, cap;
} flow_diags;

void flow_diags_add(flow_diags *d, const char *file, const char *path,
                    const char *fmt, ...) FERRY_PRINTF(4, 5);
/* s with control characters escaped as in JSON ("\\n", "\\u0001"), so
 * that a message naming a key that holds a newline stays on one line.
 * Returns malloc'd text, or NULL out of memory. */
char *flow_one_line(const char *s);
/* Prints each as "FILE: PATH: message\n", each part on one line. */
void flow_diags_print(const flow_diags *d, FILE *f);
void flow_diags_free(flow_diags *d);

/* ---- templates: values with {{ references }} ---- */

typedef struct tmpl tmpl; /* a compiled value; see tmpl.c */

/* A for_each frame visible while compiling and running. */
typedef struct flow_loop_frame {
    json_t *item; /* borrowed */
    json_t *index;
} flow_loop_frame;

/* What a reference can see at run time. Everything borrowed. */
typedef struct flow_scope {
    json_t *trigger;
    json_t *config;
    json_t *connections; /* name -> {name, type} */
    json_t **outputs;    /* by step id; NULL if not run (or released) */
    flow_loop_frame *loops;
    int nloops;
} flow_scope;

/* Evaluates t in scope. Returns a new ref; never NULL except on ENOMEM. */
json_t *tmpl_eval(const tmpl *t, const flow_scope *s);
/* Nonzero if t holds no reference (its value is fixed). */
int tmpl_is_const(const tmpl *t);
/* For a constant template: its value (borrowed). NULL otherwise. */
const json_t *tmpl_const_value(const tmpl *t);
void tmpl_free(tmpl *t);

/* ---- definitions ---- */

enum flow_step_kind {
    FLOW_STEP_ACTION,
    FLOW_STEP_JQ,
    FLOW_STEP_FOR_EACH,
    FLOW_STEP_BRANCH
};

typedef struct flow_step flow_step;

typedef struct flow_step_list {
    flow_step *steps; /* owned array */
    size_t n;
    /* release[i]: step ids whose outputs no later step reads once step i
     * of this list has run; -1 terminated, owned. */
    int **release;
} flow_step_list;

typedef struct flow_case {
    tmpl *when;
    flow_step_list steps;
} flow_case;

/* A named input of an action step whose value comes from a reference: it
 * is type-checked after resolution. */
typedef struct flow_input_check {
    const ferry_input *decl; /* borrowed from the component */
} flow_input_check;

/* A retry policy: a step's "retry", or a flow's (the whole flow again). */
typedef struct flow_retry {
    int max_attempts; /* 0: none (the first attempt counts) */
    int exponential;  /* else a fixed delay */
    uint64_t initial_ms, max_ms;
    int jitter;
    int on_retryable; /* "retryable" is in "on" (the default) */
    int codes[24];    /* FERRY_E* codes named in "on" */
    int ncodes;
} flow_retry;

enum flow_on_error {
    FLOW_ON_ERROR_FAIL,       /* the execution fails (the default) */
    FLOW_ON_ERROR_CONTINUE,   /* the error becomes the step's output */
    FLOW_ON_ERROR_DEAD_LETTER /* the execution fails into the dead letters */
};

/* The delay before attempt number attempt + 1 after attempt failures
 * (attempt >= 1), in ms; rnd in [0, 1) for the jitter. */
uint64_t flow_retry_delay_ms(const flow_retry *r, int attempt, double rnd);
/* Whether an error (code, retryable flag) is one r retries. */
int flow_retry_matches(const flow_retry *r, int code, int retryable);

struct flow_step {
    char *name;
    int id; /* index into the execution's outputs */
    enum flow_step_kind kind;
    /* action */
    char *action_id;
    const ferry_action *action;
    const abi_component *component;
    char *connection; /* connection name, or NULL */
    tmpl *input;      /* action and jq input */
    /* jq */
    struct jqv_program *jq;
    int collect;
    /* for_each */
    tmpl *over;
    char *as;
    flow_step_list body;
    /* branch */
    flow_case *cases;
    size_t ncases;
    flow_step_list otherwise;
    /* action steps: "retry" and "on_error" */
    flow_retry retry;
    enum flow_on_error on_error;
};

enum flow_concurrency {
    FLOW_PARALLEL,   /* any number at once (the default) */
    FLOW_THROTTLED,  /* at most max at once per instance */
    FLOW_SEQUENTIAL, /* one at a time per instance, in arrival order */
    FLOW_SINGLETON   /* a new run is refused while one is queued or running */
};

typedef struct flow_def {
    char *name;
    json_t *trigger; /* owned copy of the trigger object */
    /* "limits": 0 means the host's default */
    uint64_t timeout_ms;
    uint64_t cpu_seconds;
    uint64_t memory_bytes;
    uint64_t output_bytes;
    /* "concurrency" */
    enum flow_concurrency concurrency;
    int max_concurrent; /* for FLOW_THROTTLED */
    flow_step_list steps;
    int nsteps;       /* total, nested included: size of outputs */
    flow_retry retry; /* "retry": the whole flow again */
} flow_def;

typedef struct flow_integration {
    unsigned refs; /* flow_integration_ref / flow_integration_free */
    char *file;
    char *name;
    char *version;
    json_t *doc;         /* the parsed file, owned */
    json_t *config_decl; /* borrowed from doc: name -> {type, default...} */
    json_t *conn_decl;   /* borrowed from doc: name -> {type, ...} */
    flow_def *flows;
    size_t nflows;
} flow_integration;

typedef struct flow_instance {
    char *file; /* NULL for the implied default instance */
    char *name;
    json_t *config;      /* resolved values, defaults applied; owned */
    json_t *connections; /* name -> {name, type, fields}; owned */
} flow_instance;

/* Reads a definition file: a JSON object, duplicate keys refused. Returns
 * a new ref, or NULL with the reason in d ("line 3 column 5: invalid
 * JSON: ..." or "$: expected a JSON object"). */
json_t *flow_load_json(const char *file, flow_diags *d);

/* Loads and validates an integration file against the registry. Errors go
 * to d (all of them); returns NULL if there were any. */
flow_integration *flow_integration_load(const char *file,
                                        const abi_registry *reg, flow_diags *d);
/* Takes one more reference (an integration compiled once is shared by its
 * instances); returns ig. */
flow_integration *flow_integration_ref(flow_integration *ig);
/* Drops a reference; the last frees it. */
void flow_integration_free(flow_integration *ig);
/* As flow_integration_load, from a document in memory (borrowed); label
 * names it in errors (a file name, or NULL for "integration"). */
flow_integration *flow_integration_from_json(const json_t *doc,
                                             const char *label,
                                             const abi_registry *reg,
                                             flow_diags *d);

/* Loads an instance file for ig (file NULL: the default instance with
 * defaults only). Returns NULL with errors in d. */
flow_instance *flow_instance_load(const char *file, const flow_integration *ig,
                                  const abi_registry *reg, flow_diags *d);
/* As flow_instance_load, from a document in memory (borrowed; NULL: the
 * default instance). */
flow_instance *flow_instance_from_json(const json_t *doc, const char *label,
                                       const flow_integration *ig,
                                       const abi_registry *reg, flow_diags *d);
void flow_instance_free(flow_instance *in);

/* Finds a flow by name; name NULL picks the only flow (NULL if several). */
const flow_def *flow_find(const flow_integration *ig, const char *name);

/* ---- the engine ---- */

typedef struct flow_step_event {
    const char *path; /* "convert[3].to_f" */
    const char *name;
    int depth; /* 0 for top-level steps */
    const char *status;
    int64_t duration_us;
    int error_code;
    const char *error_message;
} flow_step_event;

typedef struct flow_exec_opts {
    store *st;                /* NULL: record nothing */
    const char *execution_id; /* NULL: a new id; else this one (a host's
                                 queued execution) */
    size_t max_recorded;      /* bytes of input/output text kept per step */
    size_t max_output;        /* the final output's JSON size; 0: none */
    const char *tmpdir;       /* for blobs; NULL: $TMPDIR or /tmp */
    volatile int *cancel;     /* nonzero asks the execution to stop */
    void (*on_step)(void *ud, const flow_step_event *ev);
    void (*on_log)(void *ud, const char *path, int level, const char *msg);
    void *ud;
    /* The host's token service, for the HTTP helper's oauth2 connections:
     * sets *access_token (malloc'd) to a valid access token of connection
     * conn {name, type, fields} (borrowed) of instance, and returns 0; with
     * force_refresh nonzero the resource just refused the last token (401),
     * so a cached one must not be returned. On failure returns a negative
     * FERRY_E* code with *err malloc'd (or NULL): one line, no secrets,
     * the reason only (the helper writes "connection 'NAME' (oauth2): "
     * before it). FERRY_EAUTH, FERRY_ECONFIG, FERRY_EINVAL and FERRY_EPERM
     * fail the step for good, other codes as retryable. Called on the
     * execution's thread with ud. NULL: a step using an oauth2 connection
     * with the helper fails ("needs the host's token service"). */
    int (*token)(void *ud, const char *instance, const char *connection,
                 const json_t *conn, int force_refresh, char **access_token,
                 char **err);
    /* Retries: nonzero lets a top-level step (or the flow) that waits for
     * its next attempt park the execution ("waiting", see flow_result)
     * instead of sleeping in the process. */
    int can_park;
    /* A parked execution going on: the state flow_result.resume was, as
     * {"step": NAME (top level), "seq", "outputs": {NAME: value},
     * "attempts": {PATH: n}, "flow_attempt": n}; borrowed. */
    const json_t *resume;
} flow_exec_opts;

typedef struct flow_result {
    char id[40];
    /* static: "succeeded", "failed", "cancelled", or "waiting": parked
     * until due_us for a retry (opts can_park), to go on from resume */
    const char *status;
    json_t *output; /* new ref or NULL */
    int error_code;
    char *error_message; /* malloc'd or NULL */
    char *error_step;    /* malloc'd path or NULL */
    json_t *resume;      /* "waiting": where to go on from; new ref */
    int64_t due_us;      /* "waiting": when */
    int dead_letter;     /* failed into the dead letters */
} flow_result;

/* Runs flow f of ig for instance in with trigger (borrowed). Returns 0 when
 * the execution ran (res says how it ended), or a negative code if it could
 * not start (store failure), with res->error_message set. */
int flow_execute(const flow_integration *ig, const flow_instance *in,
                 const flow_def *f, json_t *trigger, const flow_exec_opts *o,
                 flow_result *res);
void flow_result_clear(flow_result *res);

/* Sizes of JSON text already counted, by value (the values are held with a
 * reference and must not change: step outputs never do). */
typedef struct flow_size_memo {
    struct {
        json_t *v;
        size_t size;
        unsigned uses; /* puts not yet dropped: one value may be the output
                          of several live steps (passed on unchanged) */
    } * items;
    size_t n, cap;
} flow_size_memo;

/* The length of v's FLOW_JSON_TEXT text, counted without writing it;
 * containers found in memo (may be NULL) are not walked again. */
size_t flow_text_size(const json_t *v, const flow_size_memo *memo);
/* Remembers v's size (takes a reference), or counts one more use of it;
 * scalars are not kept. */
void flow_size_memo_put(flow_size_memo *m, json_t *v, size_t size);
/* v's remembered size, 0 if it is not remembered. */
size_t flow_size_memo_size(const flow_size_memo *m, const json_t *v);
/* Drops one use of v; the last one forgets it (drops the reference). */
void flow_size_memo_drop(flow_size_memo *m, const json_t *v);
void flow_size_memo_clear(flow_size_memo *m);

/* Writes at most max bytes of v's FLOW_JSON_TEXT text into *text
 * (malloc'd, NUL terminated), stopping there, and returns the full size
 * of the text (counted with memo, which may be NULL). */
size_t flow_dump_bounded(const json_t *v, size_t max, char **text,
                         const flow_size_memo *memo);

#endif
