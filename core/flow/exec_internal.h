/* The state of one execution, shared by engine.c and ctx.c. */
#ifndef FERRY_CORE_EXEC_INTERNAL_H
#define FERRY_CORE_EXEC_INTERNAL_H

#include "flow.h"

typedef struct exec_blob {
    char id[64];
    int fd;
    size_t size;
    char *content_type;
    void *map; /* mmap of the whole blob, made on first blob_data */
} exec_blob;

typedef struct exec_reaper exec_reaper;

typedef struct exec {
    const flow_integration *ig;
    const flow_instance *in;
    const flow_def *f;
    const flow_exec_opts *o;
    char id[40];
    flow_scope scope;
    flow_loop_frame loops[64];
    int seq;
    exec_blob *blobs;
    size_t nblobs, capblobs;
    unsigned blob_counter;
    json_t *mem_state;    /* instance state when there is no store */
    int store_errors;     /* store writes that failed (reported once) */
    flow_size_memo sizes; /* text sizes of live step outputs */
    /* retries */
    json_t *attempts;           /* step path -> failed attempts so far */
    const flow_step *top;       /* the top-level step running */
    int parked;                 /* waiting for a retry: stop here */
    int64_t park_due_us;        /* when to go on */
    const flow_step *park_step; /* the top-level step to go on from */
    int dead_letter;            /* the failure goes to the dead letters */
    json_t *dl_input;           /* the failing step's input */
    int dl_attempts;
    exec_reaper *reaper; /* frees large dropped outputs (engine.c) */
    int reaper_failed;   /* it could not start: free in place */
} exec;

struct ferry_ctx {
    exec *x;
    const flow_step *step;
    const char *path;
    int seq;
    json_t *output;
    int error_code;
    int retryable;
    char *error_message;
};

/* Writes a log line for the ctx's step (store and on_log). msg borrowed,
 * fields stolen. */
void exec_log(exec *x, int seq, const char *path, int level, const char *msg,
              json_t *fields);
/* Closes and unmaps every blob of x. */
void exec_blobs_free(exec *x);

#endif
