/* ferry-http.so: the HTTP client as a module, loaded by ferry-zygote's
 * second zygote (core/exec/http_module.c). */
#include "httpc/httpc.h"

__attribute__((visibility("default")))
const httpc_module ferry_httpc_module = {.call_size = sizeof(httpc_call),
                                         .global_init = httpc_global_init,
                                         .request = httpc_request};
