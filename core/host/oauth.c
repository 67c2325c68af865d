/*
 * OAuth 2.0 in the host: the token cache, refreshes, the authorization-code
 * flow and the connections' status.
 *
 * One entry per (instance, connection) that asked for a token. A request
 * takes the entry's cached token when the refresh policy (oauth_plan)
 * allows; otherwise one token request runs on the thread pool while every
 * other request for that connection waits on the entry (single flight).
 * The new token is stored, encrypted, before anyone gets it: a rotated
 * refresh token replaces the old one in one write, so a crash can lose a
 * token request but never the only valid refresh token. Without a master
 * key nothing is stored: tokens live in the host's memory only.
 *
 * A refresh refused with invalid_grant marks the connection "reauth": every
 * execution that needs it fails with that reason until someone authorises
 * it again (GET /oauth/authorize/{instance}/{connection}).
 * Loop thread only, except the *_work (thread pool) and *_run (store
 * thread) functions, which touch only their job.
 */
#include "host_internal.h"

#include "oauth/oauth.h"
#include "tokens/tokens.h"

#include <ferry/ferry.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_REQUEST_TIMEOUT_MS 30000

typedef struct waiter {
    host_token_cb cb;
    void *ud;
    int force;
    char *refused;
    struct waiter *next;
} waiter;

typedef struct tok_entry {
    host *h;
    char *instance, *connection;
    json_t *token;  /* the cached token (decrypted), or NULL */
    json_t *fields; /* the instance's fields, as last asked with */
    int loaded;     /* the store was read */
    int busy;       /* a load or a token request is in flight */
    waiter *waiters;
    struct tok_entry *next;
} tok_entry;

struct host_oauth {
    tok_entry *entries;
};

static struct host_oauth *state(host *h) {
    if (!h->oauth)
        h->oauth = calloc(1, sizeof(*h->oauth));
    return h->oauth;
}

static void update_reauth_gauge(host *h) {
    double n = 0;
    for (tok_entry *e = h->oauth ? h->oauth->entries : NULL; e; e = e->next) {
        const char *st = json_string_value(json_object_get(e->token, "status"));
        n += st && !strcmp(st, "reauth");
    }
    metrics_set(h->m, "ferry_connections_needing_reauth", n, NULL);
}

static tok_entry *entry_get(host *h, const char *instance,
                            const char *connection, int create) {
    struct host_oauth *o = state(h);
    if (!o)
        return NULL;
    for (tok_entry *e = o->entries; e; e = e->next)
        if (!strcmp(e->instance, instance) &&
            !strcmp(e->connection, connection))
            return e;
    if (!create)
        return NULL;
    tok_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->h = h;
    e->instance = strdup(instance);
    e->connection = strdup(connection);
    if (!e->instance || !e->connection) {
        free(e->instance);
        free(e->connection);
        free(e);
        return NULL;
    }
    e->next = o->entries;
    o->entries = e;
    return e;
}

void host_oauth_free(host *h) {
    struct host_oauth *o = h->oauth;
    if (!o)
        return;
    tok_entry *e = o->entries;
    while (e) {
        tok_entry *next = e->next;
        for (waiter *w = e->waiters; w;) {
            waiter *wn = w->next;
            w->cb(w->ud, NULL, NULL, "the host is stopping", 0, 1);
            free(w->refused);
            free(w);
            w = wn;
        }
        json_decref(e->token);
        json_decref(e->fields);
        free(e->instance);
        free(e->connection);
        free(e);
        e = next;
    }
    free(o);
    h->oauth = NULL;
}

/* The connection's fields in dep, if its type's auth is oauth2. */
static const json_t *oauth_fields(host *h, const deployment *dep,
                                  const char *connection, char *err, size_t n) {
    const json_t *c = json_object_get(dep->in->connections, connection);
    if (!c) {
        snprintf(err, n, "instance '%s' has no connection '%s'", dep->instance,
                 connection);
        return NULL;
    }
    const char *type = json_string_value(json_object_get(c, "type"));
    const ferry_connection_type *ct =
        type ? abi_find_connection_type(h->reg, type) : NULL;
    if (ct && ct->auth && strcmp(ct->auth, "oauth2")) {
        snprintf(err, n, "connection '%s' (%s) is not an OAuth 2.0 connection",
                 connection, type);
        return NULL;
    }
    return json_object_get(c, "fields");
}

static void answer_all(tok_entry *e, const char *err, int reauth,
                       int retryable) {
    waiter *w = e->waiters;
    e->waiters = NULL;
    const char *access =
        err ? NULL
            : json_string_value(json_object_get(e->token, "access_token"));
    const char *type =
        json_string_value(json_object_get(e->token, "token_type"));
    while (w) {
        waiter *next = w->next;
        w->cb(w->ud, access, type,
              access ? NULL
              : err  ? err
                     : "no token",
              reauth, retryable);
        free(w->refused);
        free(w);
        w = next;
    }
}

static void step(tok_entry *e);

/* ---- loading the stored token ---- */

typedef struct load_job {
    tok_entry *e;
    json_t *token;
    int rc;
    char err[512];
} load_job;

static void load_run(store *st, void *arg) {
    load_job *j = arg;
    host *h = j->e->h;
    j->rc = tokens_load(st, &h->key, j->e->instance, j->e->connection,
                        &j->token, j->err, sizeof(j->err));
}

static void load_done(void *arg, int commit_rc) {
    load_job *j = arg;
    tok_entry *e = j->e;
    (void)commit_rc;
    e->busy = 0;
    if (j->rc) {
        host_log(e->h, "error",
                 json_pack("{s:s, s:s}", "instance", e->instance, "connection",
                           e->connection),
                 "oauth: %s", j->err);
        answer_all(e, j->err, 0, 0);
    } else {
        e->loaded = 1;
        json_decref(e->token);
        e->token = j->token;
        j->token = NULL;
        update_reauth_gauge(e->h);
        step(e);
    }
    json_decref(j->token);
    free(j);
}

/* ---- a token request ---- */

typedef struct req_job {
    uv_work_t w;
    tok_entry *e;
    json_t *fields;
    enum oauth_action act;
    char *refresh_token;
    /* authorization_code */
    char *code, *verifier, *redirect_uri;
    oauth_result r;
    json_t *next; /* the new token, or NULL */
    int save_rc;
    char save_err[512];
    http_req *http; /* the callback's request, for the code exchange */
} req_job;

static void req_free(req_job *j) {
    json_decref(j->fields);
    free(j->refresh_token);
    free(j->code);
    if (j->verifier)
        memset(j->verifier, 0, strlen(j->verifier));
    free(j->verifier);
    free(j->redirect_uri);
    oauth_result_clear(&j->r);
    json_decref(j->next);
    free(j);
}

static void req_work(uv_work_t *w) {
    req_job *j = w->data;
    const char *refresh[] = {"grant_type", "refresh_token", "refresh_token",
                             j->refresh_token, NULL};
    const char *cc[] = {"grant_type", "client_credentials", NULL};
    const char *code[] = {
        "grant_type",    "authorization_code", "code",
        j->code,         "redirect_uri",       j->redirect_uri,
        "code_verifier", j->verifier,          NULL};
    const char *const *pairs = j->act == OAUTH_REFRESH ? refresh
                               : j->code               ? code
                                                       : cc;
    oauth_request(j->fields, pairs, TOKEN_REQUEST_TIMEOUT_MS, &j->r);
    j->next = oauth_apply(j->e->token && !j->code ? j->e->token : NULL, &j->r,
                          store_now_us());
}

static void save_run(store *st, void *arg) {
    req_job *j = arg;
    host *h = j->e->h;
    j->save_rc = tokens_save(st, &h->key, j->e->instance, j->e->connection,
                             j->next, j->save_err, sizeof(j->save_err));
}

static const char *grant_name(const req_job *j) {
    return j->code                   ? "authorization_code"
           : j->act == OAUTH_REFRESH ? "refresh_token"
                                     : "client_credentials";
}

static void finish_request(req_job *j, int commit_rc) {
    tok_entry *e = j->e;
    host *h = e->h;
    json_t *f = json_pack("{s:s, s:s, s:s}", "instance", e->instance,
                          "connection", e->connection, "grant", grant_name(j));
    const char *status = json_string_value(json_object_get(j->next, "status"));
    char err[768];
    int reauth = 0, retryable = 0;
    err[0] = 0;
    if (!j->next) {
        retryable = j->r.retryable;
        snprintf(err, sizeof(err), "%s",
                 j->r.message ? j->r.message : "the token request failed");
    } else if (j->save_rc || commit_rc) {
        retryable = 1;
        snprintf(err, sizeof(err), "%s",
                 j->save_rc ? j->save_err : "the store did not commit");
    } else {
        json_decref(e->token);
        e->token = json_incref(j->next);
        e->loaded = 1;
        if (status && !strcmp(status, "reauth")) {
            reauth = 1;
            snprintf(err, sizeof(err), "needs re-authorisation: %s",
                     j->r.message ? j->r.message
                                  : "the refresh token was refused");
        }
    }
    const char *result = err[0] ? (reauth ? "reauth" : "error") : "ok";
    if (reauth || !err[0])
        host_alert_reauth(h, e->instance, e->connection, reauth,
                          reauth ? err : NULL);
    metrics_add(h->m, "ferry_oauth_token_requests_total", 1, "grant",
                grant_name(j), "result", result, NULL);
    if (err[0])
        host_log(h, reauth ? "error" : "warn", f, "oauth: %s", err);
    else
        host_log(h, "info", f, "oauth: new access token, valid %lld s",
                 (long long)(j->r.expires_in_s >= 0
                                 ? j->r.expires_in_s
                                 : OAUTH_DEFAULT_LIFETIME_S));
    update_reauth_gauge(h);
    if (j->http) {
        if (err[0])
            http_respond_error(j->http, reauth ? 400 : 502,
                               "connection '%s': %s", e->connection, err);
        else {
            char msg[512];
            int len = snprintf(msg, sizeof(msg),
                               "Connection '%s' of instance '%s' is "
                               "authorised.\n",
                               e->connection, e->instance);
            http_respond_text(j->http, 200, "text/plain; charset=utf-8", msg,
                              (size_t)len);
        }
    }
    e->busy = 0;
    if (err[0])
        answer_all(e, err, reauth, retryable);
    else
        step(e); /* answers the waiters with the new token */
    req_free(j);
}

static void save_done(void *arg, int commit_rc) {
    finish_request(arg, commit_rc);
}

static void req_after(uv_work_t *w, int status) {
    req_job *j = w->data;
    host *h = j->e->h;
    if (status) {
        j->r.retryable = 1;
        free(j->r.message);
        j->r.message = strdup(uv_strerror(status));
        json_decref(j->next);
        j->next = NULL;
    }
    if (j->next && h->has_key) {
        storeq_push(h->q, save_run, save_done, j);
        return;
    }
    finish_request(j, 0);
}

static void start_request(tok_entry *e, req_job *j) {
    host *h = e->h;
    e->busy = 1;
    j->e = e;
    j->w.data = j;
    int rc = uv_queue_work(h->loop, &j->w, req_work, req_after);
    if (rc) {
        e->busy = 0;
        char err[256];
        snprintf(err, sizeof(err), "%s", uv_strerror(rc));
        if (j->http)
            http_respond_error(j->http, 503, "%s", err);
        req_free(j);
        answer_all(e, err, 0, 1);
    }
}

/* ---- the policy, per entry ---- */

static void step(tok_entry *e) {
    host *h = e->h;
    if (e->busy || !e->waiters)
        return;
    if (!e->loaded && h->has_key) {
        load_job *j = calloc(1, sizeof(*j));
        if (!j) {
            answer_all(e, "out of memory", 0, 1);
            return;
        }
        j->e = e;
        e->busy = 1;
        storeq_push(h->q, load_run, load_done, j);
        return;
    }
    /* A 401 counts only against the current token: if it was refreshed
     * since, the waiters get the new one. */
    const char *cur =
        json_string_value(json_object_get(e->token, "access_token"));
    char cur_fp[17] = "";
    if (cur)
        secret_fingerprint(cur, cur_fp);
    int force = 0;
    for (waiter *w = e->waiters; w; w = w->next)
        force |=
            w->force && (!cur || !w->refused || !strcmp(cur_fp, w->refused));
    const char *rt = NULL;
    enum oauth_action act =
        oauth_plan(e->fields, e->token, store_now_us(), force, &rt);
    char err[512];
    switch (act) {
    case OAUTH_USE:
        answer_all(e, NULL, 0, 0);
        return;
    case OAUTH_REAUTH: {
        const char *why = json_string_value(json_object_get(e->token, "error"));
        snprintf(err, sizeof(err), "needs re-authorisation%s%s",
                 why ? ": " : "", why ? why : "");
        answer_all(e, err, 1, 0);
        return;
    }
    case OAUTH_AUTHORIZE:
        snprintf(err, sizeof(err),
                 "not authorised yet: open /oauth/authorize/%s/%s on "
                 "the host",
                 e->instance, e->connection);
        answer_all(e, err, 1, 0);
        return;
    case OAUTH_REFRESH:
    case OAUTH_FETCH:
        break;
    }
    req_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->fields = json_deep_copy(e->fields)) ||
        (rt && !(j->refresh_token = strdup(rt)))) {
        if (j)
            req_free(j);
        answer_all(e, "out of memory", 0, 1);
        return;
    }
    j->act = act;
    start_request(e, j);
}

void host_token_get(host *h, deployment *dep, const char *connection, int force,
                    const char *refused, host_token_cb cb, void *ud) {
    char err[512];
    const json_t *fields =
        connection ? oauth_fields(h, dep, connection, err, sizeof(err)) : NULL;
    if (!connection)
        snprintf(err, sizeof(err), "a token request names no connection");
    char why[256];
    if (fields && oauth_check_fields(fields, why, sizeof(why))) {
        snprintf(err, sizeof(err), "%s", why);
        fields = NULL;
    }
    tok_entry *e = fields ? entry_get(h, dep->instance, connection, 1) : NULL;
    waiter *w = e ? calloc(1, sizeof(*w)) : NULL;
    if (!w) {
        cb(ud, NULL, NULL, fields ? "out of memory" : err, 0, !!fields);
        return;
    }
    w->cb = cb;
    w->ud = ud;
    w->force = force;
    w->refused = refused ? strdup(refused) : NULL;
    /* Newest fields win (a redeploy may have changed the secret). */
    json_decref(e->fields);
    e->fields = json_deep_copy(fields);
    waiter **tail = &e->waiters;
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
    step(e);
}

/* ---- the authorization-code flow ---- */

static void redirect_uri(host *h, char *buf, size_t n) {
    const char *base = h->cfg->public_url;
    if (base && *base) {
        size_t len = strlen(base);
        snprintf(buf, n, "%.*s/oauth/callback",
                 (int)(base[len - 1] == '/' ? len - 1 : len), base);
    } else {
        snprintf(buf, n, "http://%s:%d/oauth/callback", h->cfg->listen_host,
                 http_server_port(h->http));
    }
}

typedef struct auth_job {
    host *h;
    http_req *req;
    char state[33];
    char *instance, *connection, *url, *verifier_enc, *redirect;
    int rc;
    char err[512];
    json_t *row; /* callback: the state's row */
} auth_job;

static void auth_job_free(auth_job *j) {
    free(j->instance);
    free(j->connection);
    free(j->url);
    free(j->verifier_enc);
    free(j->redirect);
    json_decref(j->row);
    free(j);
}

static void state_put_run(store *st, void *arg) {
    auth_job *j = arg;
    j->rc =
        st->vt->oauth_state_put
            ? st->vt->oauth_state_put(
                  st, j->state, j->instance, j->connection, j->verifier_enc,
                  j->redirect, store_now_us() + OAUTH_STATE_TTL_S * 1000000LL)
            : FERRY_EIO;
    if (j->rc)
        snprintf(j->err, sizeof(j->err), "%s", st->errmsg);
}

static void state_put_done(void *arg, int commit_rc) {
    auth_job *j = arg;
    if (http_req_gone(j->req)) {
        /* nothing to answer */
    } else if (j->rc || commit_rc) {
        http_respond_error(j->req, 503, "cannot record the authorization: %s",
                           j->rc ? j->err : "the store did not commit");
    } else {
        http_add_header(j->req, "Location", j->url);
        http_add_header(j->req, "Cache-Control", "no-store");
        http_respond_text(j->req, 302, "text/plain; charset=utf-8", j->url,
                          strlen(j->url));
    }
    auth_job_free(j);
}

/* The verifier as stored: encrypted under the master key when there is
 * one. */
static char *seal_verifier(host *h, const char *state, const char *v) {
    char label[64];
    snprintf(label, sizeof(label), "oauth_states.verifier:%s", state);
    return h->has_key ? secret_encrypt(&h->key, label, v, strlen(v))
                      : strdup(v);
}

static char *open_verifier(host *h, const char *state, const char *stored,
                           char *err, size_t n) {
    char label[64], *out = NULL;
    snprintf(label, sizeof(label), "oauth_states.verifier:%s", state);
    if (!secret_is_encrypted(stored))
        return strdup(stored);
    if (!h->has_key) {
        snprintf(err, n,
                 "the authorization was stored encrypted and no master "
                 "key is set");
        return NULL;
    }
    if (secret_decrypt(&h->key, label, stored, &out, NULL, err, n))
        return NULL;
    return out;
}

void host_oauth_authorize(void *ud, http_req *r) {
    host *h = ud;
    const char *inst = http_req_param(r, "instance");
    const char *conn = http_req_param(r, "connection");
    deployment *dep = inst ? deploy_table_get(h->deps, inst) : NULL;
    char err[512];
    if (!dep) {
        http_respond_error(r, 404, "no instance '%s'", inst ? inst : "");
        return;
    }
    const json_t *fields = oauth_fields(h, dep, conn, err, sizeof(err));
    const char *grant = json_string_value(json_object_get(fields, "grant"));
    if (!fields) {
        http_respond_error(r, 404, "%s", err);
        return;
    }
    if (!grant || strcmp(grant, "authorization_code") ||
        oauth_check_fields(fields, err, sizeof(err))) {
        http_respond_error(r, 400, "connection '%s': %s", conn,
                           grant && !strcmp(grant, "authorization_code")
                               ? err
                               : "its grant is not authorization_code");
        return;
    }
    auth_job *j = calloc(1, sizeof(*j));
    char verifier[44], challenge[44], redirect[512];
    if (!j || oauth_random_state(j->state) || oauth_pkce_verifier(verifier) ||
        oauth_pkce_challenge(verifier, challenge)) {
        free(j);
        http_respond_error(r, 500, "cannot make a random state");
        return;
    }
    redirect_uri(h, redirect, sizeof(redirect));
    j->h = h;
    j->req = r;
    j->instance = strdup(inst);
    j->connection = strdup(conn);
    j->redirect = strdup(redirect);
    j->verifier_enc = seal_verifier(h, j->state, verifier);
    j->url = oauth_authorize_url(fields, redirect, j->state, challenge);
    memset(verifier, 0, sizeof(verifier));
    if (!j->instance || !j->connection || !j->redirect || !j->verifier_enc ||
        !j->url) {
        auth_job_free(j);
        http_respond_error(r, 500, "out of memory");
        return;
    }
    storeq_push(h->q, state_put_run, state_put_done, j);
}

static void state_take_run(store *st, void *arg) {
    auth_job *j = arg;
    j->rc = st->vt->oauth_state_take
                ? st->vt->oauth_state_take(st, j->state, &j->row)
                : FERRY_ENOTFOUND;
}

static void state_take_done(void *arg, int commit_rc) {
    auth_job *j = arg;
    host *h = j->h;
    http_req *r = j->req;
    char err[512];
    (void)commit_rc;
    if (http_req_gone(r)) {
        auth_job_free(j);
        return;
    }
    json_int_t exp = json_integer_value(json_object_get(j->row, "expires_us"));
    if (j->rc || exp < store_now_us()) {
        http_respond_error(r, 400,
                           "unknown, used or expired state: start again at "
                           "/oauth/authorize/{instance}/{connection}");
        auth_job_free(j);
        return;
    }
    const char *inst = json_string_value(json_object_get(j->row, "instance"));
    const char *conn = json_string_value(json_object_get(j->row, "connection"));
    deployment *dep = inst ? deploy_table_get(h->deps, inst) : NULL;
    const json_t *fields =
        dep ? oauth_fields(h, dep, conn, err, sizeof(err)) : NULL;
    char *verifier =
        fields ? open_verifier(
                     h, j->state,
                     json_string_value(json_object_get(j->row, "verifier_enc")),
                     err, sizeof(err))
               : NULL;
    tok_entry *e = verifier ? entry_get(h, inst, conn, 1) : NULL;
    req_job *q = e ? calloc(1, sizeof(*q)) : NULL;
    if (!q) {
        http_respond_error(r, dep ? 400 : 404, "%s",
                           !dep        ? "the instance is no longer deployed"
                           : !verifier ? err
                                       : "out of memory");
        free(verifier);
        auth_job_free(j);
        return;
    }
    if (e->busy) {
        http_respond_error(r, 409,
                           "connection '%s' is busy with a token "
                           "request; try again",
                           conn);
        free(verifier);
        free(q);
        auth_job_free(j);
        return;
    }
    q->fields = json_deep_copy(fields);
    q->code = strdup(http_req_query(r, "code"));
    q->verifier = verifier;
    q->redirect_uri =
        strdup(json_string_value(json_object_get(j->row, "redirect_uri")));
    q->act = OAUTH_FETCH;
    q->http = r;
    json_decref(e->fields);
    e->fields = json_deep_copy(fields);
    e->loaded = 1; /* what the code brings replaces what is stored */
    auth_job_free(j);
    start_request(e, q);
}

void host_oauth_callback(void *ud, http_req *r) {
    host *h = ud;
    const char *state_q = http_req_query(r, "state");
    const char *code = http_req_query(r, "code");
    const char *error = http_req_query(r, "error");
    if (error) {
        const char *desc = http_req_query(r, "error_description");
        http_respond_error(r, 400,
                           "the provider refused the authorization: %s%s%s",
                           error, desc ? ": " : "", desc ? desc : "");
        return;
    }
    if (!state_q || strlen(state_q) != 32 || !code || !*code) {
        http_respond_error(r, 400, "the callback needs code and state");
        return;
    }
    auth_job *j = calloc(1, sizeof(*j));
    if (!j) {
        http_respond_error(r, 500, "out of memory");
        return;
    }
    j->h = h;
    j->req = r;
    snprintf(j->state, sizeof(j->state), "%s", state_q);
    storeq_push(h->q, state_take_run, state_take_done, j);
}

/* ---- the connections' status ---- */

typedef struct conns_job {
    host *h;
    http_req *req;
    char *instance;
    json_t *names; /* [name] of the instance's oauth2 connections */
    json_t *rows;  /* name -> stored row */
} conns_job;

static void conns_run(store *st, void *arg) {
    conns_job *j = arg;
    size_t i;
    json_t *n;
    json_array_foreach(j->names, i, n) {
        json_t *row = NULL;
        if (st->vt->token_get &&
            st->vt->token_get(st, j->instance, json_string_value(n), &row) == 0)
            json_object_set_new(j->rows, json_string_value(n), row);
    }
}

static json_t *status_of(const json_t *t) {
    const char *st = json_string_value(json_object_get(t, "status"));
    json_int_t exp = json_integer_value(json_object_get(t, "expires_us"));
    json_t *o = json_pack("{s:s}", "status", !t ? "no_token" : st ? st : "ok");
    if (exp)
        json_object_set_new(o, "expires_at", store_time_json(exp));
    const char *err = json_string_value(json_object_get(t, "error"));
    if (err)
        json_object_set_new(o, "error", json_string(err));
    return o;
}

static void conns_done(void *arg, int commit_rc) {
    conns_job *j = arg;
    host *h = j->h;
    (void)commit_rc;
    if (!http_req_gone(j->req)) {
        deployment *dep = deploy_table_get(h->deps, j->instance);
        json_t *out = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(dep ? dep->in->connections : NULL, k, v) {
            const char *type = json_string_value(json_object_get(v, "type"));
            const ferry_connection_type *ct =
                type ? abi_find_connection_type(h->reg, type) : NULL;
            json_t *o = json_pack("{s:s, s:s?, s:s?}", "name", k, "type", type,
                                  "auth", ct ? ct->auth : NULL);
            if (ct && ct->auth && !strcmp(ct->auth, "oauth2")) {
                tok_entry *e = entry_get(h, j->instance, k, 0);
                const json_t *t =
                    e && e->loaded ? e->token : json_object_get(j->rows, k);
                json_t *st = status_of(t);
                json_object_update(o, st);
                json_decref(st);
            }
            json_array_append_new(out, o);
        }
        http_respond_json(j->req, 200, out);
    }
    free(j->instance);
    json_decref(j->names);
    json_decref(j->rows);
    free(j);
}

void host_connections_get(void *ud, http_req *r) {
    host *h = ud;
    const char *inst = http_req_param(r, "instance");
    deployment *dep = inst ? deploy_table_get(h->deps, inst) : NULL;
    if (!dep) {
        http_respond_error(r, 404, "no instance '%s'", inst ? inst : "");
        return;
    }
    conns_job *j = calloc(1, sizeof(*j));
    if (!j) {
        http_respond_error(r, 500, "out of memory");
        return;
    }
    j->h = h;
    j->req = r;
    j->instance = strdup(inst);
    j->names = json_array();
    j->rows = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(dep->in->connections, k, v)
        json_array_append_new(j->names, json_string(k));
    storeq_push(h->q, conns_run, conns_done, j);
}
