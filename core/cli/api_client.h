/* Talking to a running host's HTTP API from the command line. */
#ifndef FERRY_CORE_API_CLIENT_H
#define FERRY_CORE_API_CLIENT_H

#include <curl/curl.h>
#include <jansson.h>

typedef struct api_reply {
    long status;  /* 0: no answer */
    json_t *body; /* parsed JSON, or NULL */
    char *text;   /* the raw body, malloc'd or NULL */
    char err[CURL_ERROR_SIZE];
} api_reply;

/* One request to HOST + path ("/api/v1/instances") with the bearer token;
 * body (borrowed) makes it a POST, NULL a GET. Returns 0 when the host
 * answered (any status), or -1 with r->err set. */
int api_request(const char *host, const char *token, const char *path,
                const json_t *body, api_reply *r);
/* The same with a method of its own ("DELETE"; NULL: by the body). */
int api_request_method(const char *host, const char *token, const char *method,
                       const char *path, const json_t *body, api_reply *r);
void api_reply_clear(api_reply *r);
/* The message of {"error": {"message": ...}} or {"error": "..."}, else the
 * raw body. Borrowed. */
const char *api_error_message(const api_reply *r);
/* Prints why a request failed, naming the command and the host. */
void api_report_failure(const char *cmd, const char *host, const api_reply *r);
/* The host's token: flag, else $FERRY_API_TOKEN; NULL after a message. */
const char *api_token_or_env(const char *cmd, const char *flag);

#endif
