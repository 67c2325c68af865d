/* The HTTP client linked into the program (see http_bind.h). */
#include "flow/http_bind.h"

int flow_http_ready(void) {
    return 1;
}

int flow_http_load(char **err) {
    (void)err;
    return 0;
}

void flow_http_init(void) {
    httpc_global_init();
}

int flow_http_request(const httpc_call *c, const json_t *req,
                      json_t **response) {
    return httpc_request(c, req, response);
}
