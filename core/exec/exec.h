/*
 * exec: running executions in isolated worker processes.
 *
 * Owns: the frame format spoken between the host, the zygote and workers;
 * the zygote (a single-threaded process, started with exec, that loads the
 * components once and forks one worker per execution); the worker (runs one
 * flow with the engine and streams its record to the host); and the store
 * backend that turns the engine's records into frames.
 * Must not touch: the event loop, sockets other than its own pipes, the
 * real store (workers never write it: the host does).
 *
 * Frames: a 4-byte big-endian length, then that many bytes of JSON text (an
 * object). A file descriptor may ride along a frame (SCM_RIGHTS on the
 * frame's first byte).
 *
 * Host -> zygote (control socket):
 *   {"op":"spawn", "exec":ID, "integration":DOC, "integration_key":HEX,
 *    "instance":DOC,
 *    "flow":NAME, "trigger":PAYLOAD, "limits":{...}} + the worker's socket
 * Zygote -> host:
 *   {"op":"ready", "pid":N, "components":[names], "refused":[{path,reason}]}
 *   {"op":"forked", "exec":ID, "pid":N}
 *   {"op":"spawn_failed", "exec":ID, "error":TEXT}
 *   {"op":"exited", "exec":ID, "pid":N, "code":C} or ..."signal":S...
 * Worker -> host (its own socket):
 *   {"ev":"begin", "started_us":T}
 *   {"ev":"step_start", "seq":N, "path":P}
 *   {"ev":"step", ...the store_step fields...}
 *   {"ev":"log", ...the store_log fields...}
 *   {"ev":"state_get", "key":K}   -> host answers {"value":V|null}
 *   {"ev":"state_set", "key":K, "value":V|null} -> host answers {"ok":true}
 *   {"ev":"token", "connection":NAME, "force":B, "refused_fp":FP?}
 *                  -> host answers {"access_token", "token_type"} or
 *                     {"denied", "reauth", "retryable"}
 *   {"ev":"poll_result", "output":{"items", "cursor"}} (a poll run)
 *   {"ev":"dead_letter", "id", "trigger_json", "step", "input_json",
 *    "error_code", "error_message", "attempts", "resume_json"}
 * The end frame of an execution parked for a retry has status "waiting",
 * "resume_json" and "due_us"; a spawn that goes on from one carries
 * "resume" (the state) and the worker runs with can_park.
 *   {"ev":"end", ...the store_exec_end fields...}
 */
#ifndef FERRY_CORE_EXEC_H
#define FERRY_CORE_EXEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "flow/flow.h"
#include "store/store.h"

#define EXEC_FRAME_MAX (64u * 1024u * 1024u)

/* Sends msg (borrowed) as one frame, blocking; pass_fd >= 0 rides along.
 * Returns 0 or a negative FERRY_E* code. */
int frame_send(int sock, const json_t *msg, int pass_fd);
/* Sends n bytes of JSON text (an object, not checked) as one frame,
 * blocking; for a sender that assembles frames from texts it already has.
 * Returns 0 or a negative FERRY_E* code. */
int frame_send_text(int sock, const char *text, size_t n, int pass_fd);
/* Receives one frame, blocking. *msg: new ref. *passed_fd (if non-NULL) is
 * the fd that rode along or -1. Returns 0, 1 at end of stream, or a
 * negative FERRY_E* code. */
int frame_recv(int sock, json_t **msg, int *passed_fd);

/* Incremental decoder for a non-blocking reader (the host's loop). */
typedef struct frame_decoder {
    char *buf;
    size_t len, cap;
} frame_decoder;
/* Feeds bytes; calls on_msg(ud, msg) for each complete frame (msg is a new
 * ref the callback owns). Returns 0, or a negative code on a malformed
 * frame (too large, not a JSON object), after which the stream is dead. */
int frame_decoder_feed(frame_decoder *d, const char *data, size_t n,
                       void (*on_msg)(void *ud, json_t *msg), void *ud);
void frame_decoder_free(frame_decoder *d);
/* Encodes msg as one frame into a malloc'd buffer (*len bytes). */
char *frame_encode(const json_t *msg, size_t *len);

/* Resource limits applied in a worker before it runs. 0: no limit. */
typedef struct exec_limits {
    uint64_t cpu_seconds;
    uint64_t memory_bytes; /* address space */
} exec_limits;

/* The zygote's main: reads spawn requests on ctl, forks workers, reports.
 * Returns the process exit status when ctl closes (the host went away). */
int exec_zygote_main(int ctl, const char *components_dir);

/* The zygote's command line: --components-dir DIR --fd N (argv[0] is the
 * program or command name). Used by the ferry-zygote executable and by
 * `ferry zygote`. Returns the exit status. */
int exec_zygote_cli(int argc, char **argv);

/* A store whose writes become frames on sock, and whose state reads ask the
 * host. For workers. Returns NULL on ENOMEM. */
store *exec_stream_store(int sock);
/* Sends req (stolen) on a stream store and waits for the host's answer
 * (*answer a new ref). An answer {"error": ...} is returned as FERRY_EIO
 * with the text in s->errmsg. */
int exec_stream_ask(store *s, json_t *req, json_t **answer);
/* Adds a known secret value (copied): from then on it is replaced by
 * "[redacted]" in everything the stream store sends. Values shorter than
 * 6 bytes are not redacted. Returns 0 or a FERRY_E* code. */
int exec_stream_add_secret(store *s, const char *value);

/* Every known secret value of an instance, each handed to add: the
 * connection fields that hold secrets (by their name: password,
 * passphrase, secret, token, key, credential, not a *_url nor a name
 * with host_key, public or fingerprint in it; or declared so
 * by their connection type, "(secret)" or "keep it secret" in the field's
 * description) and the config values the integration declares secret. */
void exec_instance_secrets(const abi_registry *reg, const flow_integration *ig,
                           const flow_instance *in,
                           void (*add)(void *ud, const char *value), void *ud);

#endif
