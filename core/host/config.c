/*
 * host_config_load: defaults, then the JSON config file, then FERRY_*
 * variables (flags are the caller's). The first error wins and is reported
 * as "FILE: PATH: message" (or "VARIABLE: message"), PATH being the JSON
 * path of the offending value, so that it can be found without guessing.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsers ---- */

int host_parse_listen(const char *s, char **host, int *port) {
    char addr[INET6_ADDRSTRLEN + 1];
    const char *colon;
    int family;
    if (!s)
        return -1;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        if ((size_t)(close - s - 1) >= sizeof(addr))
            return -1;
        memcpy(addr, s + 1, (size_t)(close - s - 1));
        addr[close - s - 1] = '\0';
        colon = close + 1;
        family = AF_INET6;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(addr))
            return -1;
        memcpy(addr, s, (size_t)(colon - s));
        addr[colon - s] = '\0';
        family = AF_INET;
    }
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(family, addr, buf) != 1)
        return -1;
    uint64_t p = 0;
    const char *end = colon + 1;
    for (; *end >= '0' && *end <= '9' && p <= 65535; end++)
        p = p * 10 + (uint64_t)(*end - '0');
    if (end == colon + 1)
        return -1;
    if (p > 65535)
        return -2; /* also when more digits follow */
    if (*end)
        return -1;
    char *h = strdup(addr);
    if (!h)
        return -1;
    *host = h;
    *port = (int)p;
    return 0;
}

/* ---- loading ---- */

typedef struct loader {
    host_config *c;
    const char *file; /* as the user gave it */
    char *base;       /* the file's directory with a trailing '/', or "" */
    char **err;
} loader;

static int fail(loader *l, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(loader *l, const char *path, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (l->err) {
        char *e = NULL;
        int n = l->file ? asprintf(&e, "%s: %s: %s", l->file, path, msg)
                        : asprintf(&e, "%s: %s", path, msg);
        if (n < 0)
            e = NULL;
        /* A key may hold a newline: the message stays on one line. */
        *l->err = e ? flow_one_line(e) : NULL;
        free(e);
    }
    return -1;
}

/* Replaces *slot with a copy of v (relative to the config file's directory
 * when rel is set and v is relative). */
static int set_str(loader *l, char **slot, const char *v, int rel) {
    char *copy = NULL;
    if (rel && v[0] != '/' && l->base[0]) {
        if (asprintf(&copy, "%s%s", l->base, v) < 0)
            copy = NULL;
    } else {
        copy = strdup(v);
    }
    if (!copy)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

static int get_path(loader *l, const json_t *obj, const char *key,
                    const char *path, char **slot) {
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v) || !json_string_length(v))
        return fail(l, path, "expected a non-empty path string");
    return set_str(l, slot, json_string_value(v), 1);
}

/* Unknown members of obj are errors; path is obj's own path ("" for the
 * top level). */
static int check_keys(loader *l, const json_t *obj, const char *path,
                      const char *const *known, const char *known_text) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++)
            ok = !strcmp(k, known[i]);
        if (!ok) {
            char p[256];
            snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", k);
            return fail(l, p, "unknown field (known: %s)", known_text);
        }
    }
    return 0;
}

static int get_duration(loader *l, const json_t *obj, const char *key,
                        const char *path, uint64_t *out, int *given) {
    const json_t *v = json_object_get(obj, key);
    *given = v != NULL;
    if (!v)
        return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && !flow_parse_duration_ms(json_string_value(v), out))
        return 0;
    return fail(l, path, HOST_DURATION_EXPECTED);
}

/* A whole number from lo to hi. */
static int get_whole(loader *l, const json_t *obj, const char *key,
                     const char *path, json_int_t lo, json_int_t hi,
                     json_int_t *out, int *given) {
    const json_t *v = json_object_get(obj, key);
    *given = v != NULL;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo ||
        json_integer_value(v) > hi)
        return fail(l, path, "expected a whole number from %lld to %lld",
                    (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

static int get_size(loader *l, const json_t *obj, const char *key,
                    const char *path, uint64_t *out, int *given) {
    const json_t *v = json_object_get(obj, key);
    *given = v != NULL;
    if (!v)
        return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && !flow_parse_size(json_string_value(v), out))
        return 0;
    return fail(l, path, HOST_SIZE_EXPECTED);
}

static int set_listen(loader *l, const char *path, const char *s) {
    char *host = NULL;
    int port = 0;
    int rc = host_parse_listen(s, &host, &port);
    if (rc == -2)
        return fail(l, path, "the port in \"%s\" is outside 0..65535", s);
    if (rc)
        return fail(l, path, HOST_LISTEN_EXPECTED);
    free(l->c->listen_host);
    l->c->listen_host = host;
    l->c->port = port;
    return 0;
}

static int set_log_format(loader *l, const char *path, const char *s) {
    if (s && !strcmp(s, "text"))
        l->c->log_json = 0;
    else if (s && !strcmp(s, "json"))
        l->c->log_json = 1;
    else
        return fail(l, path, "expected \"text\" or \"json\"");
    return 0;
}

static int add_token(host_config *c, const char *tok) {
    for (size_t i = 0; i < c->ntokens; i++)
        if (!strcmp(c->api_tokens[i], tok))
            return 0;
    char **t = realloc(c->api_tokens, (c->ntokens + 1) * sizeof(*t));
    if (!t)
        return -1;
    c->api_tokens = t;
    if (!(t[c->ntokens] = strdup(tok)))
        return -1;
    c->ntokens++;
    return 0;
}

static int load_limits(loader *l, const json_t *lim) {
    static const char *const keys[] = {
        "concurrency", "timeout",         "cpu", "memory", "max_recorded",
        "output",      "queue_in_memory", NULL};
    host_config *c = l->c;
    uint64_t v;
    int given;
    if (!json_is_object(lim))
        return fail(l, "limits",
                    "expected an object with concurrency, timeout, cpu, "
                    "memory, output, max_recorded, queue_in_memory");
    if (check_keys(l, lim, "limits", keys,
                   "concurrency, timeout, cpu, memory, output, max_recorded, "
                   "queue_in_memory"))
        return -1;
    json_int_t whole = 0;
    if (get_whole(l, lim, "concurrency", "limits.concurrency", 1, 100000,
                  &whole, &given))
        return -1;
    if (given)
        c->max_concurrency = (int)whole;
    if (get_whole(l, lim, "queue_in_memory", "limits.queue_in_memory", 2,
                  10000000, &whole, &given))
        return -1;
    if (given)
        c->queue_in_memory = (size_t)whole;
    if (get_duration(l, lim, "timeout", "limits.timeout", &v, &given))
        return -1;
    if (given && v == 0)
        return fail(l, "limits.timeout",
                    "must be greater than zero: every execution has a "
                    "deadline");
    if (given)
        c->timeout_ms = v;
    if (get_duration(l, lim, "cpu", "limits.cpu", &v, &given))
        return -1;
    if (given && v % 1000)
        return fail(l, "limits.cpu",
                    "CPU time is limited in whole seconds: expected a "
                    "duration like \"60s\" or \"2m\" (0 for no limit)");
    if (given)
        c->cpu_seconds = v / 1000;
    if (get_size(l, lim, "memory", "limits.memory", &v, &given))
        return -1;
    if (given)
        c->memory_bytes = v;
    if (get_size(l, lim, "max_recorded", "limits.max_recorded", &v, &given))
        return -1;
    if (given && (v < 16 || (uint64_t)(size_t)v != v))
        return fail(l, "limits.max_recorded", "must be at least 16 bytes");
    if (given)
        c->max_recorded = (size_t)v;
    if (get_size(l, lim, "output", "limits.output", &v, &given))
        return -1;
    if (given)
        c->max_output = v;
    return 0;
}

static int load_file(loader *l) {
    static const char *const keys[] = {
        "listen",      "tls",        "components_dir",  "database",
        "deployments", "api_tokens", "limits",          "shutdown_grace",
        "log_format",  "public_url", "master_key_file", "retention",
        NULL};
    static const char known_text[] =
        "listen, tls, components_dir, database, deployments, api_tokens, "
        "limits, shutdown_grace, log_format, public_url, master_key_file, "
        "retention";
    host_config *c = l->c;
    json_error_t e;
    FILE *f = fopen(l->file, "r");
    if (!f) {
        if (l->err && asprintf(l->err, "%s: cannot read: %s", l->file,
                               strerror(errno)) < 0)
            *l->err = NULL;
        return -1;
    }
    json_t *doc = json_loadf(f, JSON_REJECT_DUPLICATES, &e);
    fclose(f);
    if (!doc) {
        char p[64];
        snprintf(p, sizeof(p), "line %d column %d", e.line, e.column);
        return fail(l, p, "invalid JSON: %s", e.text);
    }
    int rc = -1;
    const json_t *v;
    uint64_t ms;
    int given;
    if (!json_is_object(doc)) {
        fail(l, "$", "expected a JSON object");
        goto out;
    }
    if (check_keys(l, doc, "", keys, known_text))
        goto out;
    if ((v = json_object_get(doc, "listen"))) {
        if (!json_is_string(v)) {
            fail(l, "listen", HOST_LISTEN_EXPECTED);
            goto out;
        }
        if (set_listen(l, "listen", json_string_value(v)))
            goto out;
    }
    if ((v = json_object_get(doc, "tls"))) {
        static const char *const tls_keys[] = {"cert", "key", NULL};
        if (!json_is_object(v)) {
            fail(l, "tls",
                 "expected an object {\"cert\": PATH, \"key\": PATH}");
            goto out;
        }
        if (check_keys(l, v, "tls", tls_keys, "cert, key") ||
            get_path(l, v, "cert", "tls.cert", &c->tls_cert) ||
            get_path(l, v, "key", "tls.key", &c->tls_key))
            goto out;
        if (!c->tls_cert != !c->tls_key) {
            fail(l, c->tls_cert ? "tls.key" : "tls.cert",
                 "missing: TLS needs both cert and key");
            goto out;
        }
    }
    if (get_path(l, doc, "components_dir", "components_dir",
                 &c->components_dir) ||
        get_path(l, doc, "database", "database", &c->db) ||
        get_path(l, doc, "deployments", "deployments", &c->deployments_dir) ||
        get_path(l, doc, "master_key_file", "master_key_file",
                 &c->master_key_file))
        goto out;
    if ((v = json_object_get(doc, "retention"))) {
        static const char *const rkeys[] = {"executions", "max_executions",
                                            "dead_letters", NULL};
        const json_t *mx;
        if (!json_is_object(v)) {
            fail(l, "retention",
                 "expected an object {\"executions\": \"30d\", "
                 "\"max_executions\": N, \"dead_letters\": \"90d\"}");
            goto out;
        }
        if (check_keys(l, v, "retention", rkeys,
                       "executions, max_executions, dead_letters") ||
            get_duration(l, v, "executions", "retention.executions", &ms,
                         &given))
            goto out;
        if (given)
            c->retention_ms = ms;
        if (get_duration(l, v, "dead_letters", "retention.dead_letters", &ms,
                         &given))
            goto out;
        if (given)
            c->dl_retention_ms = ms;
        if ((mx = json_object_get(v, "max_executions"))) {
            if (!json_is_integer(mx) || json_integer_value(mx) < 0) {
                fail(l, "retention.max_executions",
                     "expected a whole number, 0 for no limit");
                goto out;
            }
            c->retention_count = (uint64_t)json_integer_value(mx);
        }
    }
    if ((v = json_object_get(doc, "public_url"))) {
        const char *u = json_string_value(v);
        if (!u || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8))) {
            fail(l, "public_url",
                 "expected the URL the host is reached at, such as "
                 "\"https://ferry.example.com\"");
            goto out;
        }
        if (set_str(l, &c->public_url, u, 0))
            goto out;
    }
    if ((v = json_object_get(doc, "api_tokens"))) {
        size_t i;
        const json_t *t;
        if (!json_is_array(v)) {
            fail(l, "api_tokens", "expected an array of token strings");
            goto out;
        }
        json_array_foreach(v, i, t) {
            if (!json_is_string(t) || !json_string_length(t)) {
                char p[64];
                snprintf(p, sizeof(p), "api_tokens[%zu]", i);
                fail(l, p, "expected a non-empty token string");
                goto out;
            }
            if (add_token(c, json_string_value(t)))
                goto out;
        }
    }
    if ((v = json_object_get(doc, "limits")) && load_limits(l, v))
        goto out;
    if (get_duration(l, doc, "shutdown_grace", "shutdown_grace", &ms, &given))
        goto out;
    if (given)
        c->shutdown_grace_ms = ms;
    if ((v = json_object_get(doc, "log_format")) &&
        set_log_format(l, "log_format", json_string_value(v)))
        goto out;
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Variables are not relative to anything but the working directory. */
static int load_env(loader *l) {
    host_config *c = l->c;
    const char *v;
    l->file = NULL; /* errors name the variable alone */
    l->base[0] = '\0';
    if ((v = env("FERRY_LISTEN")) && set_listen(l, "FERRY_LISTEN", v))
        return -1;
    if ((v = env("FERRY_DB")) && set_str(l, &c->db, v, 0))
        return -1;
    if ((v = env("FERRY_COMPONENTS_DIR")) &&
        set_str(l, &c->components_dir, v, 0))
        return -1;
    if ((v = env("FERRY_DEPLOYMENTS")) && set_str(l, &c->deployments_dir, v, 0))
        return -1;
    if ((v = env("FERRY_MASTER_KEY_FILE")) &&
        set_str(l, &c->master_key_file, v, 0))
        return -1;
    if ((v = env("FERRY_PUBLIC_URL")) && set_str(l, &c->public_url, v, 0))
        return -1;
    if ((v = env("FERRY_API_TOKEN")) && add_token(c, v))
        return -1;
    if ((v = env("FERRY_LOG_FORMAT")) &&
        set_log_format(l, "FERRY_LOG_FORMAT", v))
        return -1;
    return 0;
}

static int set_defaults(host_config *c) {
    memset(c, 0, sizeof(*c));
    c->port = 8080;
    c->max_concurrency = 16;
    c->queue_in_memory = 10000;
    c->timeout_ms = 15 * 60 * 1000;
    c->max_recorded = 65536;
    c->max_output = 64ull * 1024 * 1024;
    c->shutdown_grace_ms = 30 * 1000;
    c->retention_ms = 30ull * 24 * 60 * 60 * 1000;
    c->dl_retention_ms = 90ull * 24 * 60 * 60 * 1000;
    c->listen_host = strdup("127.0.0.1");
    c->components_dir = strdup("build/components");
    c->db = strdup("ferry.db");
    c->deployments_dir = strdup("deployments");
    return c->listen_host && c->components_dir && c->db && c->deployments_dir
               ? 0
               : -1;
}

int host_config_load(host_config *c, const char *file, char **err) {
    loader l = {.c = c, .file = file, .err = err};
    int rc = -1;
    if (err)
        *err = NULL;
    if (set_defaults(c))
        goto out;
    l.base = strdup(file ? file : "");
    if (!l.base)
        goto out;
    char *slash = strrchr(l.base, '/');
    if (slash)
        slash[1] = '\0';
    else
        l.base[0] = '\0';
    if (file && load_file(&l))
        goto out;
    if (load_env(&l))
        goto out;
    rc = 0;
out:
    free(l.base);
    if (rc) {
        if (err && !*err)
            *err = strdup("out of memory loading the configuration");
        host_config_free(c);
    }
    return rc;
}

void host_config_free(host_config *c) {
    if (!c)
        return;
    free(c->listen_host);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->components_dir);
    free(c->db);
    free(c->deployments_dir);
    for (size_t i = 0; i < c->ntokens; i++)
        free(c->api_tokens[i]);
    free(c->api_tokens);
    free(c->port_file);
    free(c->public_url);
    free(c->master_key_file);
    memset(c, 0, sizeof(*c));
}
