/*
 * What the dropbox component's files share: calling the API (call.c), the
 * actions (files.c, transfer.c) and the poll trigger (poll.c). Nothing here
 * is exported from dropbox.so; only the entry function in dropbox.c is.
 *
 * Every request goes through the host's HTTP helper (api->http_request),
 * which applies the step's connection (a bearer token, or an access token
 * from the host's token service for dropbox.oauth2, refreshed and the
 * request repeated once on a 401), streams blob bodies both ways and
 * honours cancellation.
 *
 * Threads: everything runs on the worker's one thread, for one action.
 */
#ifndef FERRY_DROPBOX_INTERNAL_H
#define FERRY_DROPBOX_INTERNAL_H

#include "dbxutil.h"

#include <ferry/ferry.h>

#include <stdint.h>

/* The host's table; set once by the entry function, borrowed. */
extern const ferry_api *dbx_api;

/* The API's hosts, unless the connection's api_url / content_url say
 * otherwise. */
#define DBX_API_URL "https://api.dropboxapi.com"
#define DBX_CONTENT_URL "https://content.dropboxapi.com"

/* The largest body of one upload request (files/upload, or one chunk of an
 * upload session). */
#define DBX_MAX_REQUEST_BODY (150ull * 1024 * 1024)

/* How a route is called (protocols: transport conventions). */
typedef enum dbx_style {
    DBX_RPC,      /* api host, JSON argument and result in the bodies */
    DBX_UPLOAD,   /* content host, argument in Dropbox-API-Arg, bytes in the
                     request body, JSON result in the response body */
    DBX_DOWNLOAD, /* content host, argument in Dropbox-API-Arg, bytes in the
                     response body, result in Dropbox-API-Result */
} dbx_style;

/* One request. */
typedef struct dbx_req {
    const char *route; /* "files/list_folder" */
    dbx_style style;
    const json_t *arg;   /* borrowed; NULL sends null */
    const json_t *body;  /* DBX_UPLOAD: a blob reference, borrowed */
    const char *what;    /* for messages: the path concerned, or NULL */
    const char *timeout; /* the exchange's limit; NULL: "60s" */
    int retry_failures;  /* also retry transport failures and 5xx (up to
                            DBX_FAILURE_RETRIES times, with a back-off):
                            for requests the host cannot repeat by itself,
                            such as the chunks of an upload session */
} dbx_req;

#define DBX_FAILURE_RETRIES 3

/* A failed call, to report (dbx_fail) or to act on (tags). */
typedef struct dbx_err {
    int code; /* FERRY_E* */
    int retryable;
    int recorded;   /* the helper recorded it already (transport failure,
                       cancellation): dbx_fail only returns code */
    long status;    /* the HTTP status, 0 when none arrived */
    char tags[256]; /* the error's tags joined with '/': "path/not_found";
                       "" when the body had no structured error */
    json_t *error;  /* the structured "error" member (new ref) or NULL */
    char message[1024];
} dbx_err;

/* The result of a successful call. */
typedef struct dbx_res {
    json_t *result; /* RPC and upload: the JSON result; download: the
                       metadata from Dropbox-API-Result (new refs) */
    json_t *blob;   /* download: the content's blob reference (new ref) */
} dbx_res;

/*
 * Makes one API call. On 429 it waits for Retry-After (or the body's
 * retry_after) and sends again, up to 3 times and 60 s per wait; with
 * r->retry_failures it also repeats after transport failures and 5xx.
 * Returns FERRY_OK with *res filled (free with dbx_res_clear), or a
 * negative FERRY_E* code with *e filled (free with dbx_err_clear).
 */
int dbx_call(ferry_ctx *ctx, const dbx_req *r, dbx_res *res, dbx_err *e);

void dbx_res_clear(dbx_res *res);
void dbx_err_clear(dbx_err *e);

/* Records e as the step's error (unless the helper did) and returns its
 * code; clears e. */
int dbx_fail(ferry_ctx *ctx, dbx_err *e);

/* Nonzero if the error's tags contain the tag t as a whole component. */
int dbx_err_has(const dbx_err *e, const char *t);

/* Checks for the HTTP helper and a connection; records the error and
 * returns it when the step cannot call Dropbox. */
int dbx_ready(ferry_ctx *ctx, const char *action);

/* Records an out-of-memory error (retryable) and returns its code. */
int dbx_oom(ferry_ctx *ctx);

/*
 * Lists a folder: files/list_folder with arg (borrowed), or
 * files/list_folder/continue from cursor when it is given, then /continue
 * while has_more, calling fn for each entry (borrowed); fn returns nonzero
 * when it runs out of memory. With max_entries (0: none), stops after the
 * page that reaches it and sets *has_more. *cursor_out: the last cursor
 * (new ref). Returns FERRY_OK, or a code with *e filled.
 */
typedef int (*dbx_entry_cb)(void *ud, const json_t *entry);
int dbx_list(ferry_ctx *ctx, const json_t *arg, const char *cursor,
             const char *what, dbx_entry_cb fn, void *ud, size_t max_entries,
             json_t **cursor_out, int *has_more, dbx_err *e);

/* Actions (files.c, transfer.c) and the poll trigger (poll.c). */
int dbx_action_list_folder(ferry_ctx *ctx, const json_t *input);
int dbx_action_get_latest_cursor(ferry_ctx *ctx, const json_t *input);
int dbx_action_get_metadata(ferry_ctx *ctx, const json_t *input);
int dbx_action_move(ferry_ctx *ctx, const json_t *input);
int dbx_action_delete(ferry_ctx *ctx, const json_t *input);
int dbx_action_download(ferry_ctx *ctx, const json_t *input);
int dbx_action_upload(ferry_ctx *ctx, const json_t *input);
int dbx_poll_new_files(ferry_ctx *ctx, const json_t *input);

#endif /* FERRY_DROPBOX_INTERNAL_H */
