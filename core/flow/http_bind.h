/*
 * http_bind: how the engine reaches the HTTP client (core/httpc) behind
 * api->http_request. Every program that links the engine gets it linked in
 * (core/flow/http_linked/linked.c, library ferry_flow_http), except
 * ferry-zygote: libcurl and the libraries it links make every fork and every
 * worker's exit slower, so that zygote defines these functions itself
 * (core/exec/http_module.c) and loads the client as a module, in a second
 * zygote of its own, only for the flows that need it.
 */
#ifndef FERRY_CORE_FLOW_HTTP_BIND_H
#define FERRY_CORE_FLOW_HTTP_BIND_H

#include "httpc/httpc.h"

/* 1 when this process has the HTTP client: linked in, or its module
 * loaded. */
int flow_http_ready(void);
/* Makes the client ready: nothing when it is linked in, else loads its
 * module (and initialises it). Returns 0, or -1 with *err malloc'd. */
int flow_http_load(char **err);
/* httpc_global_init, when the client is ready; else nothing. */
void flow_http_init(void);
/* httpc_request; only called once flow_http_ready() said 1. */
int flow_http_request(const httpc_call *c, const json_t *req,
                      json_t **response);

#endif
