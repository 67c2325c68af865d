/*
 * The ferry_api table: what a component's action can ask of the host.
 * Every function here is called from inside an action, on the execution's
 * thread, with the ctx the engine made for that call.
 */
#include "exec_internal.h"

#include "http_bind.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct ferry_blob_writer {
    exec *x;
    int fd;
    size_t size;
    char *content_type;
    int failed;
};

struct ferry_blob_reader {
    const exec_blob *b;
    size_t off;
};

static void *api_alloc(size_t n) {
    return malloc(n ? n : 1);
}
static void api_free(void *p) {
    free(p);
}

static void api_logv(ferry_ctx *ctx, ferry_log_level level, json_t *fields,
                     const char *fmt, va_list ap) {
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    if (fields && !json_is_object(fields)) {
        json_decref(fields);
        fields = NULL;
    }
    exec_log(ctx->x, ctx->seq, ctx->path, (int)level, msg ? msg : "", fields);
    free(msg);
}

static void api_log(ferry_ctx *ctx, ferry_log_level level, json_t *fields,
                    const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    api_logv(ctx, level, fields, fmt, ap);
    va_end(ap);
}

static int api_set_output(ferry_ctx *ctx, json_t *output) {
    json_decref(ctx->output);
    ctx->output = output ? output : json_null();
    return ctx->output ? FERRY_OK : FERRY_ENOMEM;
}

static int api_set_error(ferry_ctx *ctx, int code, int retryable,
                         const char *fmt, ...) {
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    free(ctx->error_message);
    ctx->error_message = msg;
    ctx->error_code = code < 0 ? code : FERRY_EINTERNAL;
    ctx->retryable = retryable != 0;
    return ctx->error_code;
}

/* ---- blobs: each one an unlinked temporary file ---- */

static int open_tmp(const char *dir) {
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
    char path[4096];
    snprintf(path, sizeof(path), "%s/ferry-blob-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

static const char *tmp_dir(const exec *x) {
    if (x->o && x->o->tmpdir)
        return x->o->tmpdir;
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

static ferry_blob_writer *api_blob_create(ferry_ctx *ctx,
                                          const char *content_type) {
    ferry_blob_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->x = ctx->x;
    w->fd = open_tmp(tmp_dir(ctx->x));
    w->content_type =
        strdup(content_type ? content_type : "application/octet-stream");
    if (w->fd < 0 || !w->content_type) {
        if (w->fd >= 0)
            close(w->fd);
        free(w->content_type);
        free(w);
        return NULL;
    }
    return w;
}

static int api_blob_write(ferry_blob_writer *w, const void *data, size_t len) {
    const char *p = data;
    while (len) {
        ssize_t n = write(w->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            w->failed = 1;
            return errno == ENOSPC ? FERRY_ETOOBIG : FERRY_EIO;
        }
        p += n;
        len -= (size_t)n;
        w->size += (size_t)n;
    }
    return FERRY_OK;
}

static void api_blob_abort(ferry_blob_writer *w) {
    if (!w)
        return;
    close(w->fd);
    free(w->content_type);
    free(w);
}

static json_t *api_blob_finish(ferry_blob_writer *w) {
    exec *x = w->x;
    if (w->failed || x->nblobs == SIZE_MAX / sizeof(exec_blob))
        goto fail;
    if (x->nblobs == x->capblobs) {
        size_t cap = x->capblobs ? x->capblobs * 2 : 8;
        exec_blob *b = realloc(x->blobs, cap * sizeof(*b));
        if (!b)
            goto fail;
        x->blobs = b;
        x->capblobs = cap;
    }
    exec_blob *b = &x->blobs[x->nblobs];
    memset(b, 0, sizeof(*b));
    snprintf(b->id, sizeof(b->id), "%s.%u", x->id, ++x->blob_counter);
    b->fd = w->fd;
    b->size = w->size;
    b->content_type = w->content_type;
    json_t *ref =
        json_pack("{s:s, s:I, s:s}", "$blob", b->id, "size",
                  (json_int_t)b->size, "content_type", b->content_type);
    if (!ref)
        goto fail;
    x->nblobs++;
    free(w);
    return ref;
fail:
    api_blob_abort(w);
    return NULL;
}

static json_t *api_blob_from(ferry_ctx *ctx, const void *data, size_t len,
                             const char *content_type) {
    ferry_blob_writer *w = api_blob_create(ctx, content_type);
    if (!w)
        return NULL;
    if (api_blob_write(w, data, len)) {
        api_blob_abort(w);
        return NULL;
    }
    return api_blob_finish(w);
}

static exec_blob *find_blob(exec *x, const json_t *ref) {
    const char *id = json_string_value(json_object_get(ref, "$blob"));
    for (size_t i = 0; id && i < x->nblobs; i++)
        if (!strcmp(x->blobs[i].id, id))
            return &x->blobs[i];
    return NULL;
}

static ferry_blob_reader *api_blob_open(ferry_ctx *ctx, const json_t *ref) {
    exec_blob *b = find_blob(ctx->x, ref);
    if (!b)
        return NULL;
    ferry_blob_reader *r = calloc(1, sizeof(*r));
    if (r)
        r->b = b;
    return r;
}

static long api_blob_read(ferry_blob_reader *r, void *buf, size_t len) {
    if (r->off >= r->b->size)
        return 0;
    if (len > r->b->size - r->off)
        len = r->b->size - r->off;
    if (len > (size_t)LONG_MAX)
        len = (size_t)LONG_MAX;
    for (;;) {
        ssize_t n = pread(r->b->fd, buf, len, (off_t)r->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return FERRY_EIO;
        r->off += (size_t)n;
        return (long)n;
    }
}

static void api_blob_close(ferry_blob_reader *r) {
    free(r);
}

static int api_blob_data(ferry_ctx *ctx, const json_t *ref, const void **data,
                         size_t *len) {
    exec_blob *b = find_blob(ctx->x, ref);
    if (!b)
        return FERRY_ENOTFOUND;
    if (b->size == 0) {
        *data = "";
        *len = 0;
        return FERRY_OK;
    }
    if (!b->map) {
        void *m = mmap(NULL, b->size, PROT_READ, MAP_PRIVATE, b->fd, 0);
        if (m == MAP_FAILED)
            return FERRY_EIO;
        b->map = m;
    }
    *data = b->map;
    *len = b->size;
    return FERRY_OK;
}

void exec_blobs_free(exec *x) {
    for (size_t i = 0; i < x->nblobs; i++) {
        if (x->blobs[i].map)
            munmap(x->blobs[i].map, x->blobs[i].size);
        close(x->blobs[i].fd);
        free(x->blobs[i].content_type);
    }
    free(x->blobs);
    x->blobs = NULL;
    x->nblobs = x->capblobs = 0;
}

/* ---- state, config, connection ---- */

static json_t *api_state_get(ferry_ctx *ctx, const char *key) {
    exec *x = ctx->x;
    if (!key)
        return NULL;
    if (!x->o->st)
        return json_incref(json_object_get(x->mem_state, key));
    json_t *v = NULL;
    if (x->o->st->vt->state_get(x->o->st, x->in->name, key, &v))
        return NULL;
    return v;
}

static int api_state_set(ferry_ctx *ctx, const char *key, json_t *value) {
    exec *x = ctx->x;
    int rc;
    if (!key) {
        json_decref(value);
        return FERRY_EINVAL;
    }
    if (!x->o->st) {
        rc = value ? json_object_set_new(x->mem_state, key, value)
                   : json_object_del(x->mem_state, key);
        return rc && value ? FERRY_ENOMEM : FERRY_OK;
    }
    rc = x->o->st->vt->state_set(x->o->st, x->in->name, key, value);
    json_decref(value);
    return rc;
}

static const json_t *api_config_get(ferry_ctx *ctx, const char *name) {
    return name ? json_object_get(ctx->x->in->config, name) : NULL;
}

static const json_t *api_connection(ferry_ctx *ctx) {
    if (!ctx->step || !ctx->step->connection)
        return NULL;
    return json_object_get(ctx->x->in->connections, ctx->step->connection);
}

static int api_cancelled(ferry_ctx *ctx) {
    return ctx->x->o->cancel && *ctx->x->o->cancel;
}

static const char *api_info(ferry_ctx *ctx, const char *what) {
    exec *x = ctx->x;
    if (!what)
        return NULL;
    if (!strcmp(what, "execution"))
        return x->id;
    if (!strcmp(what, "instance"))
        return x->in->name;
    if (!strcmp(what, "integration"))
        return x->ig->name;
    if (!strcmp(what, "flow"))
        return x->f->name;
    if (!strcmp(what, "step"))
        return ctx->path;
    return NULL;
}

/* ---- the HTTP helper (core/httpc, through http_bind.h) ---- */

static const ferry_connection_type *type_in(const abi_component *c,
                                            const char *id) {
    if (!c || !c->desc->connections)
        return NULL;
    for (const ferry_connection_type *t = c->desc->connections; t->id; t++)
        if (!strcmp(t->id, id))
            return t;
    return NULL;
}

static const ferry_connection_type *type_in_steps(const flow_step_list *l,
                                                  const char *id) {
    for (size_t i = 0; i < l->n; i++) {
        const flow_step *s = &l->steps[i];
        const ferry_connection_type *t = type_in(s->component, id);
        if (!t)
            t = type_in_steps(&s->body, id);
        for (size_t k = 0; !t && k < s->ncases; k++)
            t = type_in_steps(&s->cases[k].steps, id);
        if (!t)
            t = type_in_steps(&s->otherwise, id);
        if (t)
            return t;
    }
    return NULL;
}

/* The connection type id: declared by the step's own component nearly
 * always, else by a component another step of the integration uses (the
 * engine holds no registry). */
static const ferry_connection_type *find_type(ferry_ctx *ctx, const char *id) {
    const flow_integration *ig = ctx->x->ig;
    if (!id)
        return NULL;
    const ferry_connection_type *t =
        type_in(ctx->step ? ctx->step->component : NULL, id);
    for (size_t i = 0; !t && ig && i < ig->nflows; i++)
        t = type_in_steps(&ig->flows[i].steps, id);
    return t;
}

typedef struct token_call {
    ferry_ctx *ctx;
    const json_t *conn;
} token_call;

static int call_token(void *ud, int force_refresh, char **access_token,
                      char **err) {
    token_call *t = ud;
    exec *x = t->ctx->x;
    return x->o->token(x->o->ud, x->in->name, t->ctx->step->connection, t->conn,
                       force_refresh, access_token, err);
}

static int64_t blob_size(ferry_ctx *ctx, const json_t *ref) {
    exec_blob *b = find_blob(ctx->x, ref);
    return b ? (int64_t)b->size : -1;
}

static int api_http_request(ferry_ctx *ctx, const json_t *request,
                            json_t **response) {
    if (!response)
        return api_set_error(ctx, FERRY_EINVAL, 0,
                             "http_request: response is required");
    *response = NULL;
    const abi_component *owner = ctx->step ? ctx->step->component : NULL;
    if (owner && (owner->desc->flags & FERRY_COMPONENT_NO_HTTP))
        return api_set_error(ctx, FERRY_EUNSUPPORTED, 0,
                             "http_request: component '%s' declares "
                             "FERRY_COMPONENT_NO_HTTP",
                             owner->desc->name);
    if (!flow_http_ready())
        return api_set_error(ctx, FERRY_EUNSUPPORTED, 0,
                             "http_request: this worker has no HTTP client");
    httpc_call c = {.api = flow_host_api(),
                    .ctx = ctx,
                    .parse_duration_ms = flow_parse_duration_ms,
                    .parse_size = flow_parse_size,
                    .blob_size = blob_size};
    token_call tc = {.ctx = ctx, .conn = api_connection(ctx)};
    if (tc.conn) {
        const char *type = json_string_value(json_object_get(tc.conn, "type"));
        const ferry_connection_type *t = find_type(ctx, type);
        if (!t)
            return api_set_error(ctx, FERRY_ECONFIG, 0,
                                 "connection '%s': no step of the integration "
                                 "uses the component that declares type "
                                 "'%s', so its credentials cannot be applied",
                                 ctx->step->connection, type ? type : "?");
        c.auth.connection = ctx->step->connection;
        c.auth.kind = t->auth;
        c.auth.fields = json_object_get(tc.conn, "fields");
        if (ctx->x->o->token) {
            c.auth.token = call_token;
            c.auth.token_ud = &tc;
        }
    }
    return flow_http_request(&c, request, response);
}

static const ferry_api host_api = {
    .abi_major = FERRY_ABI_MAJOR,
    .abi_minor = FERRY_ABI_MINOR,
    .size = sizeof(ferry_api),
    .alloc = api_alloc,
    .free = api_free,
    .log = api_log,
    .logv = api_logv,
    .set_output = api_set_output,
    .set_error = api_set_error,
    .blob_create = api_blob_create,
    .blob_write = api_blob_write,
    .blob_finish = api_blob_finish,
    .blob_abort = api_blob_abort,
    .blob_from = api_blob_from,
    .blob_open = api_blob_open,
    .blob_read = api_blob_read,
    .blob_close = api_blob_close,
    .blob_data = api_blob_data,
    .state_get = api_state_get,
    .state_set = api_state_set,
    .config_get = api_config_get,
    .connection = api_connection,
    .cancelled = api_cancelled,
    .info = api_info,
    .http_request = api_http_request,
};

const ferry_api *flow_host_api(void) {
    /* Every process that loads components asks for the table first, the
     * zygote before it forks any worker: libcurl and OpenSSL are then
     * initialised once there, single-threaded, and inherited (a zygote
     * without the HTTP client initialises it when it loads it). */
    flow_http_init();
    return &host_api;
}
