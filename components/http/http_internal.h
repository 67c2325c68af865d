/* Shared by the files of the http component. */
#ifndef FERRY_COMPONENTS_HTTP_INTERNAL_H
#define FERRY_COMPONENTS_HTTP_INTERNAL_H

#include <ferry/ferry.h>

/* The host's table, set by the entry function. */
extern const ferry_api *http_api;

/* http.request */
int http_request_run(ferry_ctx *ctx, const json_t *input);

#endif
