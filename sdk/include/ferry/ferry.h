/*
 * ferry component SDK, ABI v1.
 *
 * This header is everything a component needs. A component is a shared
 * object that exports exactly one symbol, the entry function named by
 * FERRY_ENTRY_SYMBOL. The host calls it once after loading, with a table of
 * host functions (const ferry_api *); the component keeps that pointer and
 * returns a static description of itself: its actions, triggers and
 * connection types. The component links against nothing of the host: every
 * host service is reached through the table, so the same .so runs in any
 * host whose ABI major matches and whose minor is not older.
 *
 * The table grows only at its end. A component built against a newer minor
 * can test for a function with FERRY_API_HAS(api, field) before calling it.
 *
 * Ownership is stated on every declaration, in one line:
 *   borrowed  - valid for the duration of the call (or of the action, where
 *               said); do not free, do not keep.
 *   stolen    - the callee owns it from then on, even when the call fails
 *               (as jansson's json_object_set_new does).
 *   new ref   - the caller owns one reference and must json_decref it.
 *   api->alloc - memory the other side frees comes from api->alloc / free.
 *
 * Threads: an action runs on the worker's one thread; the ctx it is given is
 * valid until the action returns and must not be used from other threads.
 */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_ABI_MAJOR 1
#define FERRY_ABI_MINOR 1

/* The one symbol a component exports. */
#define FERRY_ENTRY_SYMBOL "ferry_component_entry"

#if defined(__GNUC__)
#define FERRY_EXPORT __attribute__((visibility("default")))
#define FERRY_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define FERRY_EXPORT
#define FERRY_PRINTF(fmt, args)
#endif

/*
 * Error codes. Negative ints, as in libuv. The numbers are part of the ABI:
 * append new codes at the end of the list, never renumber.
 * X(NAME, value, message)
 */
#define FERRY_ERRNO_MAP(X)                                                     \
    X(INVAL, -1, "invalid argument")                                           \
    X(NOMEM, -2, "out of memory")                                              \
    X(NOTFOUND, -3, "not found")                                               \
    X(IO, -4, "input/output error")                                            \
    X(TIMEOUT, -5, "timed out")                                                \
    X(CANCELLED, -6, "cancelled")                                              \
    X(PROTO, -7, "protocol error")                                             \
    X(AUTH, -8, "authentication failed")                                       \
    X(PERM, -9, "permission denied")                                           \
    X(UNAVAIL, -10, "service unavailable")                                     \
    X(RATELIMIT, -11, "rate limited")                                          \
    X(TOOBIG, -12, "too large")                                                \
    X(UNSUPPORTED, -13, "not supported")                                       \
    X(EXISTS, -14, "already exists")                                           \
    X(PARSE, -15, "parse error")                                               \
    X(CONFIG, -16, "configuration error")                                      \
    X(REMOTE, -17, "remote error")                                             \
    X(ABI, -18, "incompatible component")                                      \
    X(FAILED, -19, "failed")                                                   \
    X(INTERNAL, -20, "internal error")

typedef enum ferry_errno {
#define FERRY__ERR_ENUM(name, value, msg) FERRY_E##name = (value),
    FERRY_ERRNO_MAP(FERRY__ERR_ENUM)
#undef FERRY__ERR_ENUM
} ferry_errno;

#define FERRY_OK 0

/* Returns a static string describing err; never NULL. */
static inline const char *ferry_strerror(int err) {
    switch (err) {
    case FERRY_OK:
        return "success";
#define FERRY__ERR_MSG(name, value, msg)                                       \
    case value:                                                                \
        return msg;
        FERRY_ERRNO_MAP(FERRY__ERR_MSG)
#undef FERRY__ERR_MSG
    default:
        return "unknown error";
    }
}

/* Returns the static name of err ("FERRY_EINVAL"); never NULL. */
static inline const char *ferry_err_name(int err) {
    switch (err) {
    case FERRY_OK:
        return "FERRY_OK";
#define FERRY__ERR_NAME(name, value, msg)                                      \
    case value:                                                                \
        return "FERRY_E" #name;
        FERRY_ERRNO_MAP(FERRY__ERR_NAME)
#undef FERRY__ERR_NAME
    default:
        return "FERRY_EUNKNOWN";
    }
}

/* Log levels, in increasing severity. */
typedef enum ferry_log_level {
    FERRY_LOG_DEBUG = 10,
    FERRY_LOG_INFO = 20,
    FERRY_LOG_WARN = 30,
    FERRY_LOG_ERROR = 40
} ferry_log_level;

/* Opaque: one per action call, owned by the host. */
typedef struct ferry_ctx ferry_ctx;
/* Opaque: a blob being written, owned by the host until finished. */
typedef struct ferry_blob_writer ferry_blob_writer;
/* Opaque: a blob open for reading, owned by the host until closed. */
typedef struct ferry_blob_reader ferry_blob_reader;

/*
 * An action: input is the step's validated input with defaults applied
 * (borrowed, valid for the call). Returns FERRY_OK, or a negative FERRY_E*
 * code after calling api->set_error. Output is set with api->set_output;
 * an action that sets none outputs null.
 */
typedef int (*ferry_action_cb)(ferry_ctx *ctx, const json_t *input);

/*
 * Description structs. All strings and arrays are static data of the
 * component (borrowed by the host for as long as the .so is loaded).
 * Arrays end with an all-zero element.
 */

/* One input of an action, field of a connection type, or trigger option.
 * type: "string", "integer", "number", "boolean", "object", "array",
 *       "blob" (a blob reference), or "any".
 * default_json: the default as JSON text ("10", "\"utf-8\"", "true"), or
 *       NULL for none. */
typedef struct ferry_input {
    const char *name;
    const char *type;
    int required;
    const char *default_json;
    const char *description;
} ferry_input;

/* Action flags. */
#define FERRY_ACTION_IDEMPOTENT 0x1u /* safe to run again after a crash */

typedef struct ferry_action {
    const char *id; /* dotted lower case, "<component>.<verb>" */
    const char *label;
    const char *description;
    const ferry_input *inputs; /* may be NULL for no inputs */
    const char *output;        /* what the output looks like, in words */
    ferry_action_cb run;
    unsigned flags;
} ferry_action;

/* Trigger flags. FERRY_TRIGGER_FILES: the poll lists files ({"path",
 * "relative", "name", "size", "mtime"}); the host chooses which to take
 * (the file options of the flow's "files"), dedupes them by path, size and
 * mtime, and passes back in the next poll's input "dispose" what to do
 * with the files whose executions ended (docs/polling.md). */
#define FERRY_TRIGGER_FILES 0x2u

/* A trigger a component provides (a poll). poll sets as output
 * {"items": [...], "cursor": <any>}; the host keeps the cursor. */
typedef struct ferry_trigger {
    const char *id;
    const char *label;
    const char *description;
    const ferry_input *inputs;
    ferry_action_cb poll;
    unsigned flags;
} ferry_trigger;

/* A connection type: the credentials a component's actions take.
 * auth: "basic", "api_key", "bearer", "oauth2" or "custom". */
typedef struct ferry_connection_type {
    const char *id;
    const char *label;
    const char *description;
    const char *auth;
    const ferry_input *fields;
} ferry_connection_type;

/* What the entry function returns. The first three fields let the host
 * refuse a component built against an incompatible ABI or jansson; fill
 * them with FERRY_COMPONENT_HEADER. */
typedef struct ferry_component {
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t jansson_major;
    uint32_t flags;   /* FERRY_COMPONENT_* below; 0 when none */
    const char *name; /* lower case; the prefix of every action id */
    const char *version;
    const char *description;
    const ferry_action *actions;
    const ferry_trigger *triggers;
    const ferry_connection_type *connections;
} ferry_component;

/* Flags of a component (the field was "reserved", always 0, before they
 * existed; a host that predates a flag ignores it, which every flag here
 * allows: each says that a component needs less).
 *
 * FERRY_COMPONENT_NO_HTTP: no action or poll of the component calls
 * api->http_request. `ferry serve` then runs flows whose steps all come
 * from such components in workers forked from a zygote without the HTTP
 * client (libcurl and the thirty or so libraries it links), which fork and
 * exit faster. A component that sets it and calls api->http_request anyway
 * gets FERRY_EUNSUPPORTED, in `ferry serve` and `ferry run` alike. */
#define FERRY_COMPONENT_NO_HTTP (1u << 0)

#define FERRY_COMPONENT_HEADER                                                 \
    .abi_major = FERRY_ABI_MAJOR, .abi_minor = FERRY_ABI_MINOR,                \
    .jansson_major = JANSSON_MAJOR_VERSION

/*
 * The host's function table. Fields are only ever appended; test with
 * FERRY_API_HAS before using one added after FERRY_ABI_MINOR 0 (a host of
 * minor 0 has no http_request).
 */
typedef struct ferry_api {
    uint32_t abi_major;
    uint32_t abi_minor;
    size_t size; /* sizeof(ferry_api) in the host */

    /* Memory the other side will free. Returns NULL on failure. */
    void *(*alloc)(size_t n);
    /* Frees memory from alloc or returned by the host as api->alloc'd. */
    void (*free)(void *p);

    /* Logs a line for the step. fields: stolen, a JSON object or NULL. */
    void (*log)(ferry_ctx *ctx, ferry_log_level level, json_t *fields,
                const char *fmt, ...) FERRY_PRINTF(4, 5);
    /* As log, with a va_list. fields: stolen, a JSON object or NULL. */
    void (*logv)(ferry_ctx *ctx, ferry_log_level level, json_t *fields,
                 const char *fmt, va_list ap);

    /* Sets the step's output, replacing any earlier one.
     * output: stolen (NULL means null). Returns FERRY_OK or FERRY_ENOMEM. */
    int (*set_output)(ferry_ctx *ctx, json_t *output);
    /* Records the error the action is about to return; returns code so an
     * action can write `return api->set_error(ctx, FERRY_EIO, 1, ...)`.
     * retryable: nonzero if trying again later may succeed. */
    int (*set_error)(ferry_ctx *ctx, int code, int retryable, const char *fmt,
                     ...) FERRY_PRINTF(4, 5);

    /* Starts a new blob. content_type: borrowed, may be NULL.
     * Returns a writer owned by the host until blob_finish or blob_abort. */
    ferry_blob_writer *(*blob_create)(ferry_ctx *ctx, const char *content_type);
    /* Appends len bytes. data: borrowed. Returns FERRY_OK or an error. */
    int (*blob_write)(ferry_blob_writer *w, const void *data, size_t len);
    /* Ends the writer; returns a new ref to the blob reference object
     * {"$blob": id, "size": n, "content_type": t}, or NULL on error. */
    json_t *(*blob_finish)(ferry_blob_writer *w);
    /* Discards a writer and what it wrote. */
    void (*blob_abort)(ferry_blob_writer *w);
    /* Creates a blob from one buffer. data: borrowed. Returns a new ref
     * to its reference object, or NULL on error. */
    json_t *(*blob_from)(ferry_ctx *ctx, const void *data, size_t len,
                         const char *content_type);
    /* Opens a blob for streaming reads. ref: borrowed reference object.
     * Returns a reader owned by the host until blob_close, or NULL if ref
     * names no blob of this execution. */
    ferry_blob_reader *(*blob_open)(ferry_ctx *ctx, const json_t *ref);
    /* Reads up to len bytes into buf. Returns bytes read, 0 at the end, or
     * a negative FERRY_E* code. */
    long (*blob_read)(ferry_blob_reader *r, void *buf, size_t len);
    /* Closes a reader. */
    void (*blob_close)(ferry_blob_reader *r);
    /* Maps a whole blob. ref: borrowed. *data and *len are borrowed and
     * valid until the action returns. Returns FERRY_OK or an error. */
    int (*blob_data)(ferry_ctx *ctx, const json_t *ref, const void **data,
                     size_t *len);

    /* Per-instance persistent state, kept across executions (for cursors).
     * key: borrowed. Returns a new ref, or NULL if the key is unset. */
    json_t *(*state_get)(ferry_ctx *ctx, const char *key);
    /* key: borrowed; value: stolen (NULL deletes). Returns FERRY_OK or an
     * error. The write is durable when the execution's step ends. */
    int (*state_set)(ferry_ctx *ctx, const char *key, json_t *value);

    /* The instance's value of a config variable. name: borrowed.
     * Returns a borrowed value valid until the action returns, or NULL. */
    const json_t *(*config_get)(ferry_ctx *ctx, const char *name);
    /* The step's connection {"name", "type", "fields": {...}}.
     * Returns a borrowed value valid until the action returns, or NULL if
     * the step has none. */
    const json_t *(*connection)(ferry_ctx *ctx);
    /* Nonzero once the execution has been asked to stop; a long action
     * checks it between units of work and returns FERRY_ECANCELLED. */
    int (*cancelled)(ferry_ctx *ctx);

    /* Identifiers of the running step, borrowed until the action returns:
     * "execution", "instance", "flow", "step". Returns NULL otherwise. */
    const char *(*info)(ferry_ctx *ctx, const char *what);

    /* ---- added in minor 1 ---- */

    /*
     * Makes one HTTP(S) request with libcurl in the host, applying the
     * step's connection by its type's auth. request: borrowed JSON object;
     * *response: new ref when FERRY_OK is returned, else left NULL.
     *
     * Returns FERRY_OK whenever an HTTP response arrived, whatever its
     * status (4xx and 5xx included: the caller decides what they mean).
     * Otherwise returns a negative FERRY_E* code after recording the error
     * as set_error does, so an action may `return` it as is (or recover and
     * return FERRY_OK): transport failures (refused, DNS, timeout, TLS)
     * are retryable, a bad request object or a missing blob is not,
     * cancellation is FERRY_ECANCELLED. Messages and logs name the URL
     * without credentials. Compressed responses are decoded.
     *
     * request (every field but url optional; unknown fields are refused):
     *   "method":  "GET" (default), "POST", "PUT", any token
     *   "url":     "http://" or "https://" URL
     *   "query":   {name: value}; values string, number, boolean, or an
     *              array of them (repeated name); null skips the name;
     *              appended to url's own query, percent-encoded
     *   "headers": {name: value}; value a string, number, boolean or array
     *              of them (one line each); null removes a default header
     *   body, at most one of:
     *     "json":      any JSON value, sent as application/json
     *     "form":      {name: value} as in query, sent urlencoded
     *     "multipart": [{"name", "value" | "blob", "filename",
     *                   "content_type"}], multipart/form-data; a non-string
     *                  value is sent as JSON text; blobs are streamed
     *     "text":      a string, text/plain; charset=utf-8
     *     "xml":       a string, application/xml; charset=utf-8
     *     "blob":      a blob reference, streamed, with its content type
     *   (a Content-Type header in "headers" overrides the default)
     *   "timeout":         whole exchange, "60s" by default; a duration
     *                      ("500ms", "30s", "2m") or integer ms; 0: none
     *   "connect_timeout": "10s" by default
     *   "follow_redirects": true (default); "max_redirects": 10 (default)
     *   "verify_tls":      true (default); "ca_file": PEM bundle path
     *   "as":         "auto" (default), "json", "text" or "blob"
     *   "max_inline": integer bytes or size ("1MiB", the default): a body
     *                 larger than this becomes a blob whatever "as" says
     *
     * response:
     *   "status":  integer
     *   "headers": {lower-case name: string}; a repeated header's values
     *              are joined with ", ", except "set-cookie", which is
     *              always an array of strings
     *   "body":    auto: JSON for application/json and any +json type,
     *              a string for text types (text/plain, text/html...),
     *              xml types and urlencoded forms (converted to UTF-8 from
     *              a declared charset), else a blob reference; null when
     *              empty or for HEAD ("text": "", "blob": an empty blob)
     *   "size":    body bytes (after content decoding)
     *   "url":     the final URL (after redirects), credentials removed
     *   "redirects":      redirects followed
     *   "retry_after_ms": present when a Retry-After header parses
     *   "timings": {"dns_ms", "connect_ms", "tls_ms", "first_byte_ms",
     *               "total_ms"} of the final exchange, from its start
     *
     * Connections: "basic" (fields username, password), "bearer" (token),
     * "api_key" (key; query names a query parameter, else header names the
     * header, "X-API-Key" by default; optional prefix before the key),
     * "oauth2" (an access token from the host's token service, refreshed
     * once and the request repeated when the resource answers 401),
     * "custom" (nothing applied). Credentials go only to the origin of
     * "url": a redirect elsewhere drops them.
     */
    int (*http_request)(ferry_ctx *ctx, const json_t *request,
                        json_t **response);
} ferry_api;

/* Nonzero if the host's table has the field (it is within api->size). */
#define FERRY_API_HAS(api, field)                                              \
    ((api)->size >=                                                            \
     offsetof(ferry_api, field) + sizeof(((const ferry_api *)0)->field))

/*
 * The entry function every component defines:
 *
 *   static const ferry_api *api;
 *   static const ferry_component desc = { FERRY_COMPONENT_HEADER, ... };
 *   FERRY_EXPORT const ferry_component *ferry_component_entry(
 *       const ferry_api *host) { api = host; return &desc; }
 *
 * host: borrowed, valid while the component is loaded. It must only fill in
 * data: no I/O, no threads, no global state that a fork would duplicate
 * badly. Returns the static description (borrowed by the host), or NULL to
 * decline loading.
 */
typedef const ferry_component *(*ferry_entry_fn)(const ferry_api *host);

FERRY_EXPORT const ferry_component *
ferry_component_entry(const ferry_api *host);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_FERRY_H */
