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
/* Queues a job. Loop thread only. fn may be NULL (a barrier). */
void storeq_push(storeq *q, storeq_fn fn, storeq_done done, void *arg);
/* Runs what is queued, joins the thread; closed(ud) once freed. */
void storeq_stop(storeq *q, void (*closed)(void *ud), void *ud);
/* Batches committed and jobs run so far. */
void storeq_stats(storeq *q, uint64_t *batches, uint64_t *jobs);

#endif
