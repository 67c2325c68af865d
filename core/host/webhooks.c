/*
 * Webhooks: /webhooks/{instance}/{flow}. (Being built: until then the
 * route answers 404.)
 */
#include "host_internal.h"

void host_webhook_handler(void *ud, http_req *r) {
    (void)ud;
    http_respond_error(r, 404, "no webhook flow here");
}
