/* The webhook benchmark's baseline: the least a libh2o responder on libuv
 * (set up like core/http/server.c) does for a signed webhook. It reads the
 * body, checks its HMAC-SHA256 (header X-Signature, "sha256=" and hex) in
 * constant time, and answers 202 with a JSON body shaped like ferry's, or
 * 401. No store, no execution: the gap to ferry is what the durable
 * commit, routing and the rest of the host cost.
 *
 * usage: webhook_h2o_baseline PORT SECRET   (PORT 0: any; the port is
 *        printed on stdout as "port N") */

#include <h2o.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;
static const char *secret;
static unsigned long long seq;

static int signature_ok(h2o_req_t *req) {
    ssize_t i =
        h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-signature"), -1);
    if (i == -1)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len != 7 + 64 || memcmp(v.base, "sha256=", 7) != 0)
        return 0;
    unsigned char mac[32];
    unsigned int maclen = sizeof(mac);
    HMAC(EVP_sha256(), secret, (int)strlen(secret),
         (const unsigned char *)req->entity.base, req->entity.len, mac,
         &maclen);
    char hex[65];
    static const char digits[] = "0123456789abcdef";
    for (unsigned k = 0; k < 32; k++) {
        hex[2 * k] = digits[mac[k] >> 4];
        hex[2 * k + 1] = digits[mac[k] & 15];
    }
    return CRYPTO_memcmp(hex, v.base + 7, 64) == 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req) {
    (void)self;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST")))
        return -1;
    int ok = signature_ok(req);
    req->res.status = ok ? 202 : 401;
    req->res.reason = ok ? "Accepted" : "Unauthorized";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    char *buf = h2o_mem_alloc_pool(&req->pool, 128);
    int n =
        ok ? snprintf(buf, 128,
                      "{\"execution_id\":\"ex_%016llx\",\"id\":\"ex_%016llx\","
                      "\"status\":\"queued\"}",
                      seq, seq)
           : snprintf(buf, 128, "{\"error\":\"signature mismatch\"}");
    seq++;
    /* Without a Content-Length, h2o closes the connection after the
     * answer; ferry's server sets it too (keep-alive). */
    req->res.content_length = (size_t)n;
    h2o_send_inline(req, buf, (size_t)n);
    return 0;
}

static void on_accept(uv_stream_t *listener, int status) {
    if (status != 0)
        return;
    uv_tcp_t *conn = malloc(sizeof(*conn));
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    h2o_accept(&accept_ctx,
               h2o_uv_socket_create((uv_stream_t *)conn, (uv_close_cb)free));
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT SECRET\n", argv[0]);
        return 2;
    }
    secret = argv[2];
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    static uv_tcp_t listener;
    struct sockaddr_in addr;
    uv_tcp_init(loop, &listener);
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
    if (uv_tcp_bind(&listener, (struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&listener, 1024, on_accept) != 0) {
        perror("listen");
        return 1;
    }
    struct sockaddr_storage got;
    int len = sizeof(got);
    uv_tcp_getsockname(&listener, (struct sockaddr *)&got, &len);
    printf("port %d\n", ntohs(((struct sockaddr_in *)&got)->sin_port));
    fflush(stdout);

    h2o_config_init(&config);
    config.server_name = h2o_iovec_init(H2O_STRLIT("baseline"));
    h2o_hostconf_t *host = h2o_config_register_host(
        &config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    h2o_create_handler(pc, sizeof(h2o_handler_t))->on_req = on_req;
    h2o_context_init(&ctx, loop, &config);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = config.hosts;
    return uv_run(loop, UV_RUN_DEFAULT);
}
