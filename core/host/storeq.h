/* The store thread's queue (see storeq.c). */
#ifndef FERRY_CORE_STOREQ_H
#define FERRY_CORE_STOREQ_H

#include "store/store.h"

#include <stdint.h>
#include <uv.h>

typedef struct storeq storeq;

/* Runs on the store thread, inside the batch's transaction. */
typedef void (*storeq_fn)(store *st, void *arg);
/* Runs on the loop thread after the batch committed; commit_rc is 0, or
 * the error that rolled the batch back. */
typedef void (*storeq_done)(void *arg, int commit_rc);

/* How often the checkpoint thread copies the log into the database. */
#define STOREQ_CHECKPOINT_MS 500

/* Starts the thread; st is owned by the thread from then on (the caller
 * closes it after storeq_stop). ckpt, if not NULL, is a second handle on
 * the same store, used by a thread of its own for checkpoints every
 * ckpt_ms (st then does not checkpoint in its commits); the caller closes
 * it too. Returns NULL with *err malloc'd. */
storeq *storeq_start(uv_loop_t *loop, store *st, store *ckpt, int ckpt_ms,
                     char **err);
/* Queues a job. Loop thread only. fn may be NULL (a barrier). The next
 * transaction starts as soon as the thread is free. */
void storeq_push(storeq *q, storeq_fn fn, storeq_done done, void *arg);
/* Queues a job nobody waits for (a worker's record): it may wait up to a
 * millisecond for more jobs to share its transaction (see storeq.c). Jobs
 * still run in the order they were pushed, whichever function pushed them.
 * If its batch does not commit, fn runs again in a later one (its earlier
 * run was rolled back): fn must keep nothing of a run outside the store. */
void storeq_push_record(storeq *q, storeq_fn fn, storeq_done done, void *arg);
/* A batch that did not commit is rolled back whole: the jobs someone
 * waits for are told the error (commit_rc), and the records (jobs pushed
 * with storeq_push_record) are kept and run again, after 50 ms, then
 * twice as long at each failure up to 2 s, until they commit. Once the
 * queue stops, they are tried so for up to 3 s more, then given up.
 * fn is called on the loop thread after a batch that did not commit (rc,
 * the store's message, the records kept, and those given up at the stop:
 * `lost`), and once after the first batch with records that commits
 * again (rc 0, msg NULL). */
typedef void (*storeq_fail_fn)(void *ud, int rc, const char *msg, size_t kept,
                               size_t lost);
void storeq_on_failure(storeq *q, storeq_fail_fn fn, void *ud);
/* For a done function told commit_rc != 0: what the store said of the
 * batch that did not commit ("database or disk is full"), or
 * ferry_strerror(rc). Loop thread only. */
const char *storeq_error(storeq *q, int rc);
/* Runs what is queued, joins the thread; closed(ud) once freed. */
void storeq_stop(storeq *q, void (*closed)(void *ud), void *ud);
/* Batches committed, jobs run, and batches that waited for more jobs (see
 * storeq_push_record) so far. */
void storeq_stats(storeq *q, uint64_t *batches, uint64_t *jobs,
                  uint64_t *paced);

#endif
