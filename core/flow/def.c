/*
 * Loading and validating integration and instance files. A definition is
 * checked whole before anything runs: every error is collected with the
 * file and the JSON path it concerns, and a definition with any error is
 * not returned at all, so nothing half-loads.
 */
#include "flow.h"
#include "jqv.h"
#include "tmpl_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* snprintf for JSON paths and messages: a path past the buffer is cut,
 * which only shortens a message. */
static void pathf(char *buf, size_t n, const char *fmt, ...) FERRY_PRINTF(3, 4);
static void pathf(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

/* ---- diagnostics ---- */

void flow_diags_add(flow_diags *d, const char *file, const char *path,
                    const char *fmt, ...) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        flow_diag *it = realloc(d->items, cap * sizeof(*it));
        if (!it)
            return;
        d->items = it;
        d->cap = cap;
    }
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    flow_diag *g = &d->items[d->n++];
    g->file = strdup(file ? file : "-");
    g->path = strdup(path && *path ? path : "$");
    g->message = msg ? msg : strdup("out of memory");
}

char *flow_one_line(const char *s) {
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += (unsigned char)*p < 0x20 || *p == 0x7f ? 6 : 1;
    char *out = malloc(n), *o = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            o += sprintf(o, "\\n");
        else if (c == '\t')
            o += sprintf(o, "\\t");
        else if (c < 0x20 || c == 0x7f)
            o += sprintf(o, "\\u%04x", c);
        else
            *o++ = (char)c;
    }
    *o = 0;
    return out;
}

static void put_one_line(const char *s, FILE *f) {
    char *line = flow_one_line(s);
    fputs(line ? line : "?", f);
    free(line);
}

void flow_diags_print(const flow_diags *d, FILE *f) {
    for (size_t i = 0; i < d->n; i++) {
        put_one_line(d->items[i].file, f);
        fputs(": ", f);
        put_one_line(d->items[i].path, f);
        fputs(": ", f);
        put_one_line(d->items[i].message, f);
        fputc('\n', f);
    }
}

void flow_diags_free(flow_diags *d) {
    for (size_t i = 0; i < d->n; i++) {
        free(d->items[i].file);
        free(d->items[i].path);
        free(d->items[i].message);
    }
    free(d->items);
    memset(d, 0, sizeof(*d));
}

/* ---- small checks ---- */

static const char *const value_types[] = {
    "string", "integer", "number", "boolean", "object", "array", "any", NULL};

static int value_type_known(const char *t) {
    for (int i = 0; value_types[i]; i++)
        if (!strcmp(t, value_types[i]))
            return 1;
    return 0;
}

static int is_ident(const char *s) {
    if (!s || !*s ||
        !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int is_name(const char *s) {
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
            return 0;
    return 1;
}

/* Reports members of obj not in allowed (NULL-terminated). */
static void check_keys(flow_diags *d, const char *file, const char *path,
                       const json_t *obj, const char *const *allowed,
                       const char *what) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        int ok = 0;
        for (int i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(k, allowed[i]);
        if (!ok) {
            char p[1024];
            pathf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", k);
            flow_diags_add(d, file, p, "unknown field '%s' in %s", k, what);
        }
    }
}

json_t *flow_load_json(const char *file, flow_diags *d) {
    json_error_t e;
    json_t *doc = json_load_file(file, JSON_REJECT_DUPLICATES, &e);
    if (!doc) {
        char p[64];
        if (e.line > 0)
            pathf(p, sizeof(p), "line %d column %d", e.line, e.column);
        else
            pathf(p, sizeof(p), "$");
        flow_diags_add(d, file, p, "invalid JSON: %s", e.text);
        return NULL;
    }
    if (!json_is_object(doc)) {
        flow_diags_add(d, file, "$", "expected a JSON object, got %s",
                       abi_json_type_name(doc));
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* ---- compiling steps ---- */

typedef struct pos {
    const flow_step_list *list;
    size_t index;
} pos;

enum { VIS_UNSEEN, VIS_VISIBLE, VIS_RUNNING };

typedef struct step_info {
    const char *name;
    const flow_step_list *list;
    size_t index;
    int last_use; /* index within list of the last reader, or -1 */
    int state;
} step_info;

typedef struct compiler {
    const char *file;
    flow_diags *d;
    const abi_registry *reg;
    const flow_integration *ig;
    /* What config.NAME and connections.NAME are checked against: the
     * integration's declarations, an empty object when it has none, NULL
     * (no check) when the block is malformed and already reported. */
    const json_t *config_decl;
    const json_t *conn_decl;
    step_info *steps; /* by id */
    int nsteps;
    pos chain[64]; /* where we are, outermost first */
    int depth;
    const char *aliases[64];
    int nloops;
} compiler;

static int lookup_step_cb(void *ud, const char *name, char *why, size_t n) {
    compiler *c = ud;
    for (int i = 0; i < c->nsteps; i++) {
        if (strcmp(c->steps[i].name, name))
            continue;
        if (c->steps[i].state == VIS_VISIBLE)
            return i;
        if (c->steps[i].state == VIS_RUNNING)
            pathf(why, n,
                  "cycle: step '%s' refers to its own output (it is not "
                  "finished when this runs)",
                  name);
        else
            pathf(why, n,
                  "step '%s' does not come before this step; a step can "
                  "only use the output of earlier steps in its flow",
                  name);
        return -1;
    }
    pathf(why, n, "no step named '%s' in this flow", name);
    return -1;
}

static void on_step_ref_cb(void *ud, int id) {
    compiler *c = ud;
    step_info *s = &c->steps[id];
    for (int i = c->depth - 1; i >= 0; i--) {
        if (c->chain[i].list == s->list) {
            if ((int)c->chain[i].index > s->last_use)
                s->last_use = (int)c->chain[i].index;
            return;
        }
    }
}

static tmpl *compile_value(compiler *c, const json_t *v, const char *path) {
    tmpl_env env = {
        .file = c->file,
        .d = c->d,
        .config_decl = c->config_decl,
        .conn_decl = c->conn_decl,
        .lookup_step = lookup_step_cb,
        .on_step_ref = on_step_ref_cb,
        .ud = c,
        .aliases = c->aliases,
        .nloops = c->nloops,
    };
    return tmpl_compile(v, &env, path);
}

static void compile_list(compiler *c, const json_t *arr, flow_step_list *out,
                         const char *path);

/* The list of an action's inputs as "a, b, c" for messages. */
static void input_names(const ferry_action *a, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    for (const ferry_input *in = a->inputs; in && in->name && used < n; in++) {
        pathf(buf + used, n - used, "%s%s", used ? ", " : "", in->name);
        used += strlen(buf + used);
    }
    if (!buf[0])
        pathf(buf, n, "none");
}

/* "retry": {"max_attempts", "backoff", "initial", "max", "jitter", "on"}. */
static void check_retry(flow_diags *d, const char *file, const char *path,
                        const json_t *v, flow_retry *r) {
    static const char *const keys[] = {
        "max_attempts", "backoff", "initial", "max", "jitter", "on", NULL};
    char p[1100];
    memset(r, 0, sizeof(*r));
    if (!v)
        return;
    if (!json_is_object(v)) {
        flow_diags_add(d, file, path,
                       "expected {\"max_attempts\", \"backoff\", "
                       "\"initial\", \"max\", \"jitter\", \"on\"}");
        return;
    }
    check_keys(d, file, path, v, keys, "a retry policy");
    r->max_attempts = 3;
    r->exponential = 1;
    r->initial_ms = 1000;
    r->max_ms = 5 * 60 * 1000;
    r->jitter = 1;
    r->on_retryable = 1;
    const json_t *m = json_object_get(v, "max_attempts");
    if (m) {
        pathf(p, sizeof(p), "%s.max_attempts", path);
        if (!json_is_integer(m) || json_integer_value(m) < 1 ||
            json_integer_value(m) > 100)
            flow_diags_add(d, file, p,
                           "expected a whole number from 1 to 100 (the "
                           "first attempt counts)");
        else
            r->max_attempts = (int)json_integer_value(m);
    }
    const json_t *b = json_object_get(v, "backoff");
    if (b) {
        const char *bs = json_string_value(b);
        pathf(p, sizeof(p), "%s.backoff", path);
        if (!bs || (strcmp(bs, "exponential") && strcmp(bs, "fixed")))
            flow_diags_add(d, file, p,
                           "expected \"exponential\" or "
                           "\"fixed\"");
        else
            r->exponential = !strcmp(bs, "exponential");
    }
    const char *durs[] = {"initial", "max"};
    uint64_t *slots[] = {&r->initial_ms, &r->max_ms};
    for (int i = 0; i < 2; i++) {
        const json_t *t = json_object_get(v, durs[i]);
        uint64_t ms;
        if (!t)
            continue;
        pathf(p, sizeof(p), "%s.%s", path, durs[i]);
        if (!json_is_string(t) ||
            flow_parse_duration_ms(json_string_value(t), &ms))
            flow_diags_add(d, file, p,
                           "expected a duration such as \"1s\" or \"5m\"");
        else
            *slots[i] = ms;
    }
    if (r->max_ms < r->initial_ms) {
        pathf(p, sizeof(p), "%s.max", path);
        flow_diags_add(d, file, p, "max must not be shorter than initial");
    }
    const json_t *j = json_object_get(v, "jitter");
    if (j) {
        pathf(p, sizeof(p), "%s.jitter", path);
        if (!json_is_boolean(j))
            flow_diags_add(d, file, p, "expected true or false");
        else
            r->jitter = json_is_true(j);
    }
    const json_t *on = json_object_get(v, "on");
    if (on) {
        pathf(p, sizeof(p), "%s.on", path);
        if (!json_is_array(on) || !json_array_size(on)) {
            flow_diags_add(d, file, p,
                           "expected an array of \"retryable\" and error "
                           "names such as \"UNAVAIL\"");
            return;
        }
        r->on_retryable = 0;
        size_t i;
        json_t *e;
        json_array_foreach(on, i, e) {
            const char *name = json_string_value(e);
            int code = 0;
            if (name && !strcmp(name, "retryable")) {
                r->on_retryable = 1;
                continue;
            }
            if (name && (name[0] == 'E' || name[0] == 'e'))
                name++;
            for (int c = -1; name && c >= -64 && !code; c--) {
                const char *en = ferry_err_name(c);
                if (en && !strncmp(en, "FERRY_E", 7) &&
                    strcmp(en, "FERRY_EUNKNOWN") && !strcasecmp(en + 7, name))
                    code = c;
            }
            if (!code) {
                char pe[1200];
                pathf(pe, sizeof(pe), "%s[%zu]", p, i);
                flow_diags_add(d, file, pe,
                               "expected \"retryable\" or an error name "
                               "(UNAVAIL, TIMEOUT, RATELIMIT, REMOTE, IO, "
                               "...)");
            } else if (r->ncodes <
                       (int)(sizeof(r->codes) / sizeof(r->codes[0]))) {
                r->codes[r->ncodes++] = code;
            }
        }
    }
}

static void check_on_error(flow_diags *d, const char *file, const char *path,
                           const json_t *v, enum flow_on_error *out) {
    *out = FLOW_ON_ERROR_FAIL;
    if (!v)
        return;
    const char *s = json_string_value(v);
    if (s && !strcmp(s, "fail"))
        *out = FLOW_ON_ERROR_FAIL;
    else if (s && !strcmp(s, "continue"))
        *out = FLOW_ON_ERROR_CONTINUE;
    else if (s && !strcmp(s, "dead_letter"))
        *out = FLOW_ON_ERROR_DEAD_LETTER;
    else
        flow_diags_add(d, file, path,
                       "expected \"fail\", \"continue\" or "
                       "\"dead_letter\"");
}

static void compile_action(compiler *c, flow_step *st, const json_t *js,
                           const char *path) {
    static const char *const keys[] = {"name",       "action",      "input",
                                       "connection", "description", "retry",
                                       "on_error",   NULL};
    char p[1024];
    check_keys(c->d, c->file, path, js, keys, "an action step");
    pathf(p, sizeof(p), "%s.retry", path);
    check_retry(c->d, c->file, p, json_object_get(js, "retry"), &st->retry);
    pathf(p, sizeof(p), "%s.on_error", path);
    check_on_error(c->d, c->file, p, json_object_get(js, "on_error"),
                   &st->on_error);
    json_t *jaction = json_object_get(js, "action");
    pathf(p, sizeof(p), "%s.action", path);
    if (!json_is_string(jaction)) {
        flow_diags_add(c->d, c->file, p, "expected an action id string");
        return;
    }
    const char *id = json_string_value(jaction);
    st->action_id = strdup(id);
    st->action = abi_find_action(c->reg, id, &st->component);
    if (!st->action) {
        const char *dot = strchr(id, '.');
        char comp[128];
        pathf(comp, sizeof(comp), "%.*s", dot ? (int)(dot - id) : 0, id);
        const abi_component *owner = abi_find_component(c->reg, comp);
        if (!dot)
            flow_diags_add(c->d, c->file, p,
                           "'%s' is not an action id (expected "
                           "component.action)",
                           id);
        else if (!owner)
            flow_diags_add(c->d, c->file, p,
                           "unknown action '%s': no component '%s' is loaded "
                           "(see `ferry components list`)",
                           id, comp);
        else
            flow_diags_add(c->d, c->file, p,
                           "unknown action '%s': component '%s' has no such "
                           "action (see `ferry components describe %s`)",
                           id, comp, comp);
        return;
    }

    json_t *jconn = json_object_get(js, "connection");
    if (jconn) {
        pathf(p, sizeof(p), "%s.connection", path);
        if (!json_is_string(jconn))
            flow_diags_add(c->d, c->file, p, "expected a connection name");
        else if (!c->ig->conn_decl ||
                 !json_object_get(c->ig->conn_decl, json_string_value(jconn)))
            flow_diags_add(c->d, c->file, p,
                           "no connection '%s' is declared in the "
                           "integration's \"connections\"",
                           json_string_value(jconn));
        else
            st->connection = strdup(json_string_value(jconn));
    }

    json_t *jinput = json_object_get(js, "input");
    pathf(p, sizeof(p), "%s.input", path);
    if (jinput && !json_is_object(jinput)) {
        flow_diags_add(c->d, c->file, p,
                       "expected an object of the action's inputs, got %s",
                       abi_json_type_name(jinput));
        return;
    }
    const ferry_action *a = st->action;
    if (jinput) {
        const char *k;
        json_t *v;
        json_object_foreach(jinput, k, v) {
            const ferry_input *in = a->inputs;
            while (in && in->name && strcmp(in->name, k))
                in++;
            if (!in || !in->name) {
                char names[512];
                input_names(a, names, sizeof(names));
                char pk[1024];
                pathf(pk, sizeof(pk), "%s.%s", p, k);
                flow_diags_add(c->d, c->file, pk,
                               "action '%s' has no input '%s' (inputs: %s)",
                               a->id, k, names);
            }
        }
    }
    st->input = tmpl_object_new();
    for (const ferry_input *in = a->inputs; in && in->name; in++) {
        json_t *v = jinput ? json_object_get(jinput, in->name) : NULL;
        char pk[1024];
        pathf(pk, sizeof(pk), "%s.%s", p, in->name);
        if (!v) {
            if (in->default_json) {
                json_t *dv =
                    json_loads(in->default_json, JSON_DECODE_ANY, NULL);
                if (dv)
                    tmpl_object_set(st->input, in->name, tmpl_from_value(dv));
                json_decref(dv);
            } else if (in->required) {
                flow_diags_add(c->d, c->file, p,
                               "missing required input '%s' (%s) of action "
                               "'%s'",
                               in->name, in->type, a->id);
            }
            continue;
        }
        tmpl *t = compile_value(c, v, pk);
        if (!t) {
            continue;
        }
        const json_t *cv = tmpl_const_value(t);
        if (cv && !abi_type_matches(in->type, cv) &&
            !(json_is_null(cv) && !in->required)) {
            flow_diags_add(c->d, c->file, pk,
                           "input '%s' of action '%s' must be %s %s, got %s",
                           in->name, a->id,
                           strchr("aeiou", in->type[0]) ? "an" : "a", in->type,
                           abi_json_type_name(cv));
        } else if (!cv && !tmpl_is_whole_ref(t) && json_is_string(v) &&
                   strcmp(in->type, "string") && strcmp(in->type, "any")) {
            flow_diags_add(c->d, c->file, pk,
                           "input '%s' of action '%s' must be %s %s, but text "
                           "with references always makes a string (use a "
                           "whole-value reference \"{{ ... }}\")",
                           in->name, a->id,
                           strchr("aeiou", in->type[0]) ? "an" : "a", in->type);
        }
        tmpl_object_set(st->input, in->name, t);
    }
}

static void compile_jq(compiler *c, flow_step *st, const json_t *js,
                       const char *path) {
    static const char *const keys[] = {"name",    "jq",          "input",
                                       "collect", "description", NULL};
    char p[1024];
    check_keys(c->d, c->file, path, js, keys, "a jq step");
    json_t *prog = json_object_get(js, "jq");
    pathf(p, sizeof(p), "%s.jq", path);
    if (!json_is_string(prog)) {
        flow_diags_add(c->d, c->file, p, "expected a jq program string");
    } else {
        char *err = NULL;
        st->jq = jqv_compile(json_string_value(prog), &err);
        if (!st->jq)
            flow_diags_add(c->d, c->file, p, "jq program does not compile: %s",
                           err ? err : "unknown error");
        free(err);
    }
    json_t *collect = json_object_get(js, "collect");
    if (collect && !json_is_boolean(collect)) {
        pathf(p, sizeof(p), "%s.collect", path);
        flow_diags_add(c->d, c->file, p, "expected true or false");
    }
    st->collect = json_is_true(collect);
    json_t *input = json_object_get(js, "input");
    pathf(p, sizeof(p), "%s.input", path);
    json_t *null = json_null();
    st->input = compile_value(c, input ? input : null, p);
    json_decref(null);
}

static int reserved_root(const char *s) {
    static const char *const r[] = {"trigger", "config", "steps", "connections",
                                    "item",    "index",  NULL};
    for (int i = 0; r[i]; i++)
        if (!strcmp(s, r[i]))
            return 1;
    return 0;
}

static void compile_for_each(compiler *c, flow_step *st, const json_t *js,
                             const char *path) {
    static const char *const keys[] = {"name",  "for_each",    "as",
                                       "steps", "description", NULL};
    char p[1024];
    check_keys(c->d, c->file, path, js, keys, "a for_each step");
    json_t *over = json_object_get(js, "for_each");
    pathf(p, sizeof(p), "%s.for_each", path);
    st->over = compile_value(c, over, p);
    if (st->over && tmpl_const_value(st->over) &&
        !json_is_array(tmpl_const_value(st->over)))
        flow_diags_add(c->d, c->file, p,
                       "for_each must be an array or a reference to one, "
                       "got %s",
                       abi_json_type_name(tmpl_const_value(st->over)));
    json_t *as = json_object_get(js, "as");
    if (as) {
        pathf(p, sizeof(p), "%s.as", path);
        if (!json_is_string(as) || !is_ident(json_string_value(as)) ||
            reserved_root(json_string_value(as)))
            flow_diags_add(c->d, c->file, p,
                           "expected a name for the item (letters, digits, "
                           "_ and -; not a reserved root like 'steps')");
        else
            st->as = strdup(json_string_value(as));
    }
    if (c->nloops >= 64) {
        flow_diags_add(c->d, c->file, path, "for_each nested too deeply");
        return;
    }
    c->aliases[c->nloops++] = st->as;
    pathf(p, sizeof(p), "%s.steps", path);
    compile_list(c, json_object_get(js, "steps"), &st->body, p);
    c->nloops--;
}

static void compile_branch(compiler *c, flow_step *st, const json_t *js,
                           const char *path) {
    static const char *const keys[] = {"name", "branch", "else", "description",
                                       NULL};
    static const char *const case_keys[] = {"when", "steps", "description",
                                            NULL};
    char p[1024];
    check_keys(c->d, c->file, path, js, keys, "a branch step");
    json_t *cases = json_object_get(js, "branch");
    pathf(p, sizeof(p), "%s.branch", path);
    if (!json_is_array(cases) || json_array_size(cases) == 0) {
        flow_diags_add(c->d, c->file, p,
                       "expected an array of cases {\"when\", \"steps\"}");
        return;
    }
    st->cases = calloc(json_array_size(cases), sizeof(*st->cases));
    if (!st->cases)
        return;
    st->ncases = json_array_size(cases);
    for (size_t i = 0; i < st->ncases; i++) {
        json_t *cs = json_array_get(cases, i);
        char cp[1024];
        pathf(cp, sizeof(cp), "%s.branch[%zu]", path, i);
        if (!json_is_object(cs)) {
            flow_diags_add(c->d, c->file, cp,
                           "expected a case {\"when\", \"steps\"}");
            continue;
        }
        check_keys(c->d, c->file, cp, cs, case_keys, "a branch case");
        json_t *when = json_object_get(cs, "when");
        pathf(p, sizeof(p), "%s.when", cp);
        if (!when)
            flow_diags_add(c->d, c->file, p, "missing \"when\"");
        else
            st->cases[i].when = compile_value(c, when, p);
        pathf(p, sizeof(p), "%s.steps", cp);
        compile_list(c, json_object_get(cs, "steps"), &st->cases[i].steps, p);
    }
    json_t *otherwise = json_object_get(js, "else");
    if (otherwise) {
        pathf(p, sizeof(p), "%s.else", path);
        compile_list(c, otherwise, &st->otherwise, p);
    }
}

/* First pass: give every step of a flow an id, check names. */
static void number_steps(compiler *c, const json_t *arr, const char *path) {
    if (!json_is_array(arr))
        return;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *js = json_array_get(arr, i);
        if (!json_is_object(js))
            continue;
        char p[1024];
        pathf(p, sizeof(p), "%s[%zu]", path, i);
        const char *name = json_string_value(json_object_get(js, "name"));
        if (name && is_ident(name)) {
            for (int k = 0; k < c->nsteps; k++) {
                if (!strcmp(c->steps[k].name, name)) {
                    char pn[1100];
                    pathf(pn, sizeof(pn), "%s.name", p);
                    flow_diags_add(c->d, c->file, pn,
                                   "duplicate step name '%s' (step names are "
                                   "unique within a flow)",
                                   name);
                    break;
                }
            }
            step_info *s =
                realloc(c->steps, sizeof(*s) * (size_t)(c->nsteps + 1));
            if (!s)
                return;
            c->steps = s;
            c->steps[c->nsteps++] = (step_info){name, NULL, 0, -1, VIS_UNSEEN};
        }
        char sub[1100];
        pathf(sub, sizeof(sub), "%s.steps", p);
        number_steps(c, json_object_get(js, "steps"), sub);
        json_t *cases = json_object_get(js, "branch");
        for (size_t k = 0; json_is_array(cases) && k < json_array_size(cases);
             k++) {
            pathf(sub, sizeof(sub), "%s.branch[%zu].steps", p, k);
            number_steps(c, json_object_get(json_array_get(cases, k), "steps"),
                         sub);
        }
        pathf(sub, sizeof(sub), "%s.else", p);
        number_steps(c, json_object_get(js, "else"), sub);
    }
}

static int find_step_id(compiler *c, const char *name) {
    for (int i = 0; i < c->nsteps; i++)
        if (!strcmp(c->steps[i].name, name))
            return i;
    return -1;
}

static void compile_list(compiler *c, const json_t *arr, flow_step_list *out,
                         const char *path) {
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        flow_diags_add(c->d, c->file, path,
                       arr ? "expected a non-empty array of steps"
                           : "missing: expected a non-empty array of steps");
        return;
    }
    size_t n = json_array_size(arr);
    out->steps = calloc(n, sizeof(*out->steps));
    out->release = calloc(n, sizeof(*out->release));
    if (!out->steps || !out->release)
        return;
    out->n = n;
    if (c->depth >= 64) {
        flow_diags_add(c->d, c->file, path, "steps nested too deeply");
        return;
    }
    c->depth++;
    for (size_t i = 0; i < n; i++) {
        flow_step *st = &out->steps[i];
        json_t *js = json_array_get(arr, i);
        char p[1024];
        pathf(p, sizeof(p), "%s[%zu]", path, i);
        st->id = -1;
        c->chain[c->depth - 1] = (pos){out, i};
        if (!json_is_object(js)) {
            flow_diags_add(c->d, c->file, p, "expected a step object, got %s",
                           abi_json_type_name(js));
            continue;
        }
        json_t *jname = json_object_get(js, "name");
        char pn[1100];
        pathf(pn, sizeof(pn), "%s.name", p);
        if (!jname) {
            flow_diags_add(c->d, c->file, pn, "missing step name");
        } else if (!json_is_string(jname) ||
                   !is_ident(json_string_value(jname))) {
            flow_diags_add(c->d, c->file, pn,
                           "step names start with a letter or '_' and hold "
                           "letters, digits, '_' and '-'");
        } else {
            st->name = strdup(json_string_value(jname));
            st->id = find_step_id(c, st->name);
        }
        if (st->id >= 0) {
            c->steps[st->id].list = out;
            c->steps[st->id].index = i;
            c->steps[st->id].state = VIS_RUNNING;
        }

        int kinds =
            !!json_object_get(js, "action") + !!json_object_get(js, "jq") +
            !!json_object_get(js, "for_each") + !!json_object_get(js, "branch");
        if (kinds != 1) {
            flow_diags_add(c->d, c->file, p,
                           kinds ? "a step has exactly one of \"action\", "
                                   "\"jq\", \"for_each\" or \"branch\""
                                 : "missing \"action\", \"jq\", \"for_each\" "
                                   "or \"branch\"");
        } else if (json_object_get(js, "action")) {
            st->kind = FLOW_STEP_ACTION;
            compile_action(c, st, js, p);
        } else if (json_object_get(js, "jq")) {
            st->kind = FLOW_STEP_JQ;
            compile_jq(c, st, js, p);
        } else if (json_object_get(js, "for_each")) {
            st->kind = FLOW_STEP_FOR_EACH;
            compile_for_each(c, st, js, p);
        } else {
            st->kind = FLOW_STEP_BRANCH;
            compile_branch(c, st, js, p);
        }
        c->chain[c->depth - 1] = (pos){out, i};
        if (st->id >= 0)
            c->steps[st->id].state = VIS_VISIBLE;
    }
    c->depth--;
    /* Leaving the list: its steps are out of sight of what follows. */
    for (size_t i = 0; i < n; i++)
        if (out->steps[i].id >= 0)
            c->steps[out->steps[i].id].state = VIS_UNSEEN;
}

/* After compiling: which outputs can be dropped after which step. */
static void plan_releases(compiler *c) {
    for (int id = 0; id < c->nsteps; id++) {
        step_info *s = &c->steps[id];
        flow_step_list *l = (flow_step_list *)s->list;
        if (!l || !l->release)
            continue;
        int after = s->last_use;
        if (after < 0) {
            if (s->index + 1 == l->n)
                continue; /* the list's result: kept */
            after = (int)s->index;
        }
        int *r = l->release[after];
        int n = 0;
        while (r && r[n] >= 0)
            n++;
        int *nr = realloc(r, sizeof(int) * (size_t)(n + 2));
        if (!nr)
            continue;
        nr[n] = id;
        nr[n + 1] = -1;
        l->release[after] = nr;
    }
}

/* ---- freeing ---- */

static void free_list(flow_step_list *l);

static void free_step(flow_step *st) {
    free(st->name);
    free(st->action_id);
    free(st->connection);
    tmpl_free(st->input);
    if (st->jq)
        jqv_free(st->jq);
    tmpl_free(st->over);
    free(st->as);
    free_list(&st->body);
    for (size_t i = 0; i < st->ncases; i++) {
        tmpl_free(st->cases[i].when);
        free_list(&st->cases[i].steps);
    }
    free(st->cases);
    free_list(&st->otherwise);
}

static void free_list(flow_step_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free_step(&l->steps[i]);
        if (l->release)
            free(l->release[i]);
    }
    free(l->steps);
    free(l->release);
}

flow_integration *flow_integration_ref(flow_integration *ig) {
    if (ig)
        ig->refs++;
    return ig;
}

void flow_integration_free(flow_integration *ig) {
    if (!ig || --ig->refs > 0)
        return;
    for (size_t i = 0; i < ig->nflows; i++) {
        free(ig->flows[i].name);
        json_decref(ig->flows[i].trigger);
        free_list(&ig->flows[i].steps);
    }
    free(ig->flows);
    free(ig->file);
    free(ig->name);
    free(ig->version);
    json_decref(ig->doc);
    free(ig);
}

/* ---- the integration ---- */

static void check_config_decl(flow_diags *d, const char *file,
                              const json_t *cfg) {
    static const char *const keys[] = {
        "type", "default", "required", "description", "label", "secret", NULL};
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)cfg, name, v) {
        char p[1024];
        pathf(p, sizeof(p), "config.%s", name);
        if (!is_ident(name))
            flow_diags_add(d, file, p,
                           "config names hold letters, digits, '_' and '-'");
        if (!json_is_object(v)) {
            flow_diags_add(d, file, p,
                           "expected {\"type\", \"default\", \"required\"}");
            continue;
        }
        check_keys(d, file, p, v, keys, "a config variable");
        json_t *type = json_object_get(v, "type");
        char pt[1100];
        pathf(pt, sizeof(pt), "%s.type", p);
        if (!json_is_string(type) ||
            !value_type_known(json_string_value(type))) {
            flow_diags_add(d, file, pt,
                           "expected one of string, integer, number, boolean, "
                           "object, array, any");
            continue;
        }
        json_t *req = json_object_get(v, "required");
        if (req && !json_is_boolean(req)) {
            pathf(pt, sizeof(pt), "%s.required", p);
            flow_diags_add(d, file, pt, "expected true or false");
        }
        json_t *sec = json_object_get(v, "secret");
        if (sec && !json_is_boolean(sec)) {
            pathf(pt, sizeof(pt), "%s.secret", p);
            flow_diags_add(d, file, pt, "expected true or false");
        }
        json_t *def = json_object_get(v, "default");
        if (def && !abi_type_matches(json_string_value(type), def)) {
            pathf(pt, sizeof(pt), "%s.default", p);
            flow_diags_add(d, file, pt, "default must be %s, got %s",
                           json_string_value(type), abi_json_type_name(def));
        }
    }
}

static void check_conn_decl(flow_diags *d, const char *file,
                            const json_t *conns, const abi_registry *reg) {
    static const char *const keys[] = {"type", "description", "label",
                                       "required", NULL};
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)conns, name, v) {
        char p[1024];
        pathf(p, sizeof(p), "connections.%s", name);
        if (!is_ident(name))
            flow_diags_add(d, file, p,
                           "connection names hold letters, digits, '_' and "
                           "'-'");
        if (!json_is_object(v)) {
            flow_diags_add(d, file, p, "expected {\"type\", \"description\"}");
            continue;
        }
        check_keys(d, file, p, v, keys, "a connection");
        const char *type = json_string_value(json_object_get(v, "type"));
        char pt[1100];
        pathf(pt, sizeof(pt), "%s.type", p);
        if (!type)
            flow_diags_add(d, file, pt,
                           "expected a connection type id (component.type)");
        else if (!abi_find_connection_type(reg, type))
            flow_diags_add(d, file, pt,
                           "unknown connection type '%s' (no loaded component "
                           "declares it)",
                           type);
    }
}

/* "limits": {"timeout": "30s", "cpu": "10s", "memory": "256MiB"} */
static void check_limits(flow_diags *d, const char *file, const char *fpath,
                         const json_t *lim, flow_def *f) {
    static const char *const keys[] = {"timeout", "cpu", "memory", "output",
                                       NULL};
    char p[300];
    if (!lim)
        return;
    pathf(p, sizeof(p), "%s.limits", fpath);
    if (!json_is_object(lim)) {
        flow_diags_add(d, file, p,
                       "expected {\"timeout\", \"cpu\", \"memory\"}");
        return;
    }
    check_keys(d, file, p, lim, keys, "limits");
    json_t *v;
    uint64_t n;
    if ((v = json_object_get(lim, "timeout"))) {
        pathf(p, sizeof(p), "%s.limits.timeout", fpath);
        if (!json_is_string(v) ||
            flow_parse_duration_ms(json_string_value(v), &n) || n == 0)
            flow_diags_add(d, file, p,
                           "expected a duration like \"30s\" or \"15m\"");
        else
            f->timeout_ms = n;
    }
    if ((v = json_object_get(lim, "cpu"))) {
        pathf(p, sizeof(p), "%s.limits.cpu", fpath);
        if (!json_is_string(v) ||
            flow_parse_duration_ms(json_string_value(v), &n) || n < 1000 ||
            n % 1000)
            flow_diags_add(d, file, p,
                           "expected whole CPU seconds like \"10s\" or "
                           "\"2m\"");
        else
            f->cpu_seconds = n / 1000;
    }
    if ((v = json_object_get(lim, "memory"))) {
        pathf(p, sizeof(p), "%s.limits.memory", fpath);
        if (!json_is_string(v) || flow_parse_size(json_string_value(v), &n) ||
            n < 1024 * 1024)
            flow_diags_add(d, file, p,
                           "expected a size of at least 1MiB like "
                           "\"256MiB\"");
        else
            f->memory_bytes = n;
    }
    if ((v = json_object_get(lim, "output"))) {
        pathf(p, sizeof(p), "%s.limits.output", fpath);
        if (!json_is_string(v) || flow_parse_size(json_string_value(v), &n) ||
            n == 0)
            flow_diags_add(d, file, p, "expected a size like \"16MiB\"");
        else
            f->output_bytes = n;
    }
}

/* "concurrency": {"mode": "throttled", "max": 2} */
static void check_concurrency(flow_diags *d, const char *file,
                              const char *fpath, const json_t *c, flow_def *f) {
    static const char *const keys[] = {"mode", "max", NULL};
    static const char *const modes[] = {"parallel", "throttled", "sequential",
                                        "singleton", NULL};
    char p[300];
    f->concurrency = FLOW_PARALLEL;
    if (!c)
        return;
    pathf(p, sizeof(p), "%s.concurrency", fpath);
    if (!json_is_object(c)) {
        flow_diags_add(d, file, p, "expected {\"mode\", \"max\"}");
        return;
    }
    check_keys(d, file, p, c, keys, "concurrency");
    const char *mode = json_string_value(json_object_get(c, "mode"));
    int m = -1;
    for (int i = 0; mode && modes[i]; i++)
        if (!strcmp(mode, modes[i]))
            m = i;
    pathf(p, sizeof(p), "%s.concurrency.mode", fpath);
    if (m < 0) {
        flow_diags_add(d, file, p,
                       "expected parallel, throttled, sequential or "
                       "singleton");
        return;
    }
    f->concurrency = (enum flow_concurrency)m;
    json_t *max = json_object_get(c, "max");
    pathf(p, sizeof(p), "%s.concurrency.max", fpath);
    if (m == FLOW_THROTTLED) {
        if (!json_is_integer(max) || json_integer_value(max) < 1 ||
            json_integer_value(max) > 100000)
            flow_diags_add(d, file, p,
                           "throttled needs \"max\": how many may run at "
                           "once (1 or more)");
        else
            f->max_concurrent = (int)json_integer_value(max);
    } else if (max) {
        flow_diags_add(d, file, p, "\"max\" is only for mode throttled");
    }
}

/* Checks that a document given in memory is an object, as load_json does
 * for a file. Returns a new ref or NULL. */
static json_t *doc_object(const json_t *doc, const char *file, flow_diags *d) {
    if (!json_is_object(doc)) {
        flow_diags_add(d, file, "$", "expected a JSON object, got %s",
                       doc ? abi_json_type_name(doc) : "nothing");
        return NULL;
    }
    return json_incref((json_t *)doc);
}

static flow_integration *integration_build(json_t *doc, const char *file,
                                           const abi_registry *reg,
                                           flow_diags *d);

flow_integration *flow_integration_load(const char *file,
                                        const abi_registry *reg,
                                        flow_diags *d) {
    json_t *doc = flow_load_json(file, d);
    return doc ? integration_build(doc, file, reg, d) : NULL;
}

/* "alerts": monitors the host evaluates (docs/alerts.md). ig: for the
 * flows and connections they name. */
static void check_alerts(flow_diags *d, const char *file, const json_t *a,
                         const flow_integration *ig) {
    static const char *const keys[] = {"name",        "when",   "flows",
                                       "over",        "repeat", "notify",
                                       "description", NULL};
    static const char *const whens[] = {
        "failed",   "dead_letter",       "retrying",
        "duration", "schedule_late",     "silence",
        "reauth",   "component_refused", NULL};
    char p[256], pp[300];
    if (!a)
        return;
    if (!json_is_array(a)) {
        flow_diags_add(d, file, "alerts",
                       "expected an array of alert monitors");
        return;
    }
    size_t i;
    json_t *m;
    json_array_foreach(a, i, m) {
        pathf(p, sizeof(p), "alerts[%zu]", i);
        if (!json_is_object(m)) {
            flow_diags_add(d, file, p, "expected an alert monitor object");
            continue;
        }
        check_keys(d, file, p, m, keys, "an alert monitor");
        const char *name = json_string_value(json_object_get(m, "name"));
        pathf(pp, sizeof(pp), "%s.name", p);
        if (!name || !is_name(name))
            flow_diags_add(d, file, pp,
                           "expected a name (letters, digits, "
                           "'.', '_', '-')");
        const char *when = json_string_value(json_object_get(m, "when"));
        int known = 0;
        for (int k = 0; when && whens[k]; k++)
            known |= !strcmp(when, whens[k]);
        pathf(pp, sizeof(pp), "%s.when", p);
        if (!known)
            flow_diags_add(d, file, pp,
                           "expected one of failed, dead_letter, retrying, "
                           "duration, schedule_late, silence, reauth, "
                           "component_refused");
        int needs_over = when && (!strcmp(when, "duration") ||
                                  !strcmp(when, "schedule_late") ||
                                  !strcmp(when, "silence"));
        const char *durs[] = {"over", "repeat"};
        for (int k = 0; k < 2; k++) {
            const json_t *v = json_object_get(m, durs[k]);
            uint64_t ms;
            pathf(pp, sizeof(pp), "%s.%s", p, durs[k]);
            if (v && (!json_is_string(v) ||
                      flow_parse_duration_ms(json_string_value(v), &ms)))
                flow_diags_add(d, file, pp,
                               "expected a duration such as \"30s\" or "
                               "\"15m\"");
            else if (!v && k == 0 && needs_over)
                flow_diags_add(d, file, pp, "'%s' needs \"over\" (a duration)",
                               when);
        }
        const json_t *flows = json_object_get(m, "flows");
        if (flows) {
            size_t k;
            json_t *fl;
            pathf(pp, sizeof(pp), "%s.flows", p);
            if (!json_is_array(flows))
                flow_diags_add(d, file, pp, "expected an array of flow names");
            json_array_foreach(flows, k, fl) {
                if (!json_is_string(fl) ||
                    (ig && !flow_find(ig, json_string_value(fl))))
                    flow_diags_add(d, file, pp,
                                   "no flow '%s' in the "
                                   "integration",
                                   json_is_string(fl) ? json_string_value(fl)
                                                      : "?");
            }
        }
        const json_t *notify = json_object_get(m, "notify");
        pathf(pp, sizeof(pp), "%s.notify", p);
        if (!json_is_array(notify) || !json_array_size(notify)) {
            flow_diags_add(d, file, pp,
                           "expected an array of actions: {\"slack\": {...}}, "
                           "{\"webhook\": {...}} or {\"flow\": NAME}");
            continue;
        }
        size_t k;
        json_t *n;
        json_array_foreach(notify, k, n) {
            char np[400];
            pathf(np, sizeof(np), "%s[%zu]", pp, k);
            const json_t *sl = json_object_get(n, "slack");
            const json_t *wh = json_object_get(n, "webhook");
            const json_t *fl = json_object_get(n, "flow");
            if (!json_is_object(n) || json_object_size(n) != 1 ||
                (!sl && !wh && !fl)) {
                flow_diags_add(d, file, np,
                               "expected one of {\"slack\": {\"connection\", "
                               "\"channel\"}}, {\"webhook\": {\"url\", "
                               "\"secret\"}} or {\"flow\": NAME}");
                continue;
            }
            if (sl) {
                const char *c =
                    json_string_value(json_object_get(sl, "connection"));
                if (!c || !json_string_value(json_object_get(sl, "channel")))
                    flow_diags_add(d, file, np,
                                   "slack needs \"connection\" and "
                                   "\"channel\"");
                else if (ig && !json_object_get(ig->conn_decl, c))
                    flow_diags_add(d, file, np,
                                   "no connection '%s' is declared in the "
                                   "integration's \"connections\"",
                                   c);
            }
            if (wh && !json_string_value(json_object_get(wh, "url")))
                flow_diags_add(d, file, np, "webhook needs \"url\"");
            if (fl && (!json_is_string(fl) ||
                       (ig && !flow_find(ig, json_string_value(fl)))))
                flow_diags_add(d, file, np, "no flow '%s' to run",
                               json_is_string(fl) ? json_string_value(fl)
                                                  : "?");
        }
    }
}

flow_integration *flow_integration_from_json(const json_t *doc,
                                             const char *label,
                                             const abi_registry *reg,
                                             flow_diags *d) {
    const char *file = label ? label : "integration";
    json_t *own = doc_object(doc, file, d);
    return own ? integration_build(own, file, reg, d) : NULL;
}

/* A poll trigger's source: "file.poll" (its options are checked with the
 * schedule, by sched/poll.c), or a loaded component's trigger, whose
 * options are checked against its declared inputs here. A config
 * reference ("{{ config.X }}") stands for a value of any type. */
static void check_poll_source(flow_diags *d, const char *file, const char *p,
                              const json_t *trig, const char *src,
                              const abi_registry *reg, const json_t *conns) {
    char pp[300];
    const json_t *conn = json_object_get(trig, "connection");
    if (conn) {
        pathf(pp, sizeof(pp), "%s.trigger.connection", p);
        if (!json_is_string(conn))
            flow_diags_add(d, file, pp, "expected a connection name");
        else if (!json_object_get(conns, json_string_value(conn)))
            flow_diags_add(d, file, pp,
                           "no connection '%s' is declared in the "
                           "integration's \"connections\"",
                           json_string_value(conn));
    }
    if (!src || !strcmp(src, "file.poll"))
        return;
    const ferry_trigger *t = abi_find_trigger(reg, src, NULL);
    if (!t) {
        pathf(pp, sizeof(pp), "%s.trigger.source", p);
        flow_diags_add(d, file, pp,
                       "unknown poll source '%s' (\"file.poll\", or a "
                       "trigger of a loaded component: see `ferry "
                       "components describe`)",
                       src);
        return;
    }
    if (json_object_get(trig, "files") && !(t->flags & FERRY_TRIGGER_FILES)) {
        pathf(pp, sizeof(pp), "%s.trigger.files", p);
        flow_diags_add(d, file, pp,
                       "trigger '%s' does not list files: it takes no file "
                       "options",
                       src);
    }
    const json_t *opts = json_object_get(trig, "options");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)opts, k, v) {
        const ferry_input *in = t->inputs;
        while (in && in->name && strcmp(in->name, k))
            in++;
        pathf(pp, sizeof(pp), "%s.trigger.options.%s", p, k);
        if (!in || !in->name || !strcmp(k, "cursor") || !strcmp(k, "dispose"))
            flow_diags_add(d, file, pp, "trigger '%s' has no option '%s'", src,
                           k);
        else if (!(json_is_string(v) &&
                   !strncmp(json_string_value(v), "{{", 2)) &&
                 !abi_type_matches(in->type, v))
            flow_diags_add(d, file, pp, "expected %s %s, got %s",
                           strchr("aeiou", in->type[0]) ? "an" : "a", in->type,
                           abi_json_type_name(v));
    }
    for (const ferry_input *in = t->inputs; in && in->name; in++) {
        if (in->required && !in->default_json &&
            !json_object_get(opts, in->name)) {
            pathf(pp, sizeof(pp), "%s.trigger.options", p);
            flow_diags_add(d, file, pp,
                           "missing option '%s' (%s) of trigger '%s'", in->name,
                           in->type, src);
        }
    }
}

/* doc: stolen. */
static flow_integration *integration_build(json_t *doc, const char *file,
                                           const abi_registry *reg,
                                           flow_diags *d) {
    static const char *const keys[] = {"name",   "version",     "description",
                                       "config", "connections", "flows",
                                       "label",  "alerts",      NULL};
    static const char *const flow_keys[] = {
        "name",        "trigger", "steps", "description", "label",
        "concurrency", "limits",  "retry", NULL};
    static const char *const triggers[] = {"manual", "schedule", "webhook",
                                           "poll", NULL};
    size_t before = d->n;
    json_t *none = NULL; /* declares nothing; see compiler */
    flow_integration *ig = calloc(1, sizeof(*ig));
    if (ig)
        ig->refs = 1;
    if (!ig) {
        json_decref(doc);
        return NULL;
    }
    ig->file = strdup(file);
    ig->doc = doc;
    check_keys(d, file, "", doc, keys, "an integration");

    json_t *name = json_object_get(doc, "name");
    if (!json_is_string(name) || !is_name(json_string_value(name)))
        flow_diags_add(d, file, "name",
                       name ? "integration names hold letters, digits, '.', "
                              "'_' and '-'"
                            : "missing integration name");
    else
        ig->name = strdup(json_string_value(name));
    json_t *version = json_object_get(doc, "version");
    if (version && !json_is_string(version))
        flow_diags_add(d, file, "version", "expected a version string");
    ig->version = strdup(
        version ? json_string_value(version) ? json_string_value(version) : ""
                : "");

    json_t *cfg = json_object_get(doc, "config");
    if (cfg && !json_is_object(cfg))
        flow_diags_add(d, file, "config",
                       "expected an object of config variables by name");
    else if (cfg)
        check_config_decl(d, file, cfg);
    ig->config_decl = json_is_object(cfg) ? cfg : NULL;
    json_t *conns = json_object_get(doc, "connections");
    if (conns && !json_is_object(conns))
        flow_diags_add(d, file, "connections",
                       "expected an object of connections by name");
    else if (conns)
        check_conn_decl(d, file, conns, reg);
    ig->conn_decl = json_is_object(conns) ? conns : NULL;

    json_t *flows = json_object_get(doc, "flows");
    if (!json_is_array(flows) || json_array_size(flows) == 0) {
        flow_diags_add(d, file, "flows",
                       flows ? "expected a non-empty array of flows"
                             : "missing: expected a non-empty array of flows");
        goto done;
    }
    ig->flows = calloc(json_array_size(flows), sizeof(*ig->flows));
    none = json_object();
    if (!ig->flows || !none)
        goto done;
    ig->nflows = json_array_size(flows);
    for (size_t i = 0; i < ig->nflows; i++) {
        json_t *jf = json_array_get(flows, i);
        flow_def *f = &ig->flows[i];
        char p[256];
        pathf(p, sizeof(p), "flows[%zu]", i);
        if (!json_is_object(jf)) {
            flow_diags_add(d, file, p, "expected a flow object");
            continue;
        }
        check_keys(d, file, p, jf, flow_keys, "a flow");
        const char *fname = json_string_value(json_object_get(jf, "name"));
        char pp[300];
        pathf(pp, sizeof(pp), "%s.name", p);
        if (!fname || !is_name(fname)) {
            flow_diags_add(d, file, pp,
                           fname ? "flow names hold letters, digits, '.', "
                                   "'_' and '-'"
                                 : "missing flow name");
        } else {
            for (size_t k = 0; k < i; k++)
                if (ig->flows[k].name && !strcmp(ig->flows[k].name, fname))
                    flow_diags_add(d, file, pp, "duplicate flow name '%s'",
                                   fname);
            f->name = strdup(fname);
        }
        json_t *trig = json_object_get(jf, "trigger");
        pathf(pp, sizeof(pp), "%s.trigger", p);
        if (trig && !json_is_object(trig)) {
            flow_diags_add(d, file, pp, "expected a trigger object");
        } else if (trig) {
            const char *tt = json_string_value(json_object_get(trig, "type"));
            int known = 0;
            for (int k = 0; tt && triggers[k]; k++)
                known |= !strcmp(tt, triggers[k]);
            if (!known) {
                pathf(pp, sizeof(pp), "%s.trigger.type", p);
                flow_diags_add(d, file, pp,
                               "expected one of manual, schedule, webhook, "
                               "poll");
            }
            const char *src =
                json_string_value(json_object_get(trig, "source"));
            if (tt && !strcmp(tt, "poll"))
                check_poll_source(d, file, p, trig, src, reg, conns);
        }
        f->trigger =
            trig ? json_deep_copy(trig) : json_pack("{s:s}", "type", "manual");
        check_limits(d, file, p, json_object_get(jf, "limits"), f);
        pathf(pp, sizeof(pp), "%s.retry", p);
        check_retry(d, file, pp, json_object_get(jf, "retry"), &f->retry);
        check_concurrency(d, file, p, json_object_get(jf, "concurrency"), f);

        compiler c = {.file = file,
                      .d = d,
                      .reg = reg,
                      .ig = ig,
                      .config_decl = cfg ? ig->config_decl : none,
                      .conn_decl = conns ? ig->conn_decl : none};
        pathf(pp, sizeof(pp), "%s.steps", p);
        number_steps(&c, json_object_get(jf, "steps"), pp);
        compile_list(&c, json_object_get(jf, "steps"), &f->steps, pp);
        /* A definition with errors is dropped, and its step table may be
         * inconsistent (duplicate names share an id): plan only a valid
         * one. */
        if (d->n == before)
            plan_releases(&c);
        f->nsteps = c.nsteps;
        free(c.steps);
    }
    if (d->n == before)
        check_alerts(d, file, json_object_get(doc, "alerts"), ig);
done:
    json_decref(none);
    if (d->n > before) {
        flow_integration_free(ig);
        return NULL;
    }
    return ig;
}

const flow_def *flow_find(const flow_integration *ig, const char *name) {
    if (!name)
        return ig->nflows == 1 ? &ig->flows[0] : NULL;
    for (size_t i = 0; i < ig->nflows; i++)
        if (!strcmp(ig->flows[i].name, name))
            return &ig->flows[i];
    return NULL;
}

/* ---- instances ---- */

void flow_instance_free(flow_instance *in) {
    if (!in)
        return;
    free(in->file);
    free(in->name);
    json_decref(in->config);
    json_decref(in->connections);
    free(in);
}

static void check_fields(flow_diags *d, const char *file, const char *path,
                         const ferry_connection_type *ct, json_t *fields) {
    const char *k;
    json_t *v;
    json_object_foreach(fields, k, v) {
        const ferry_input *f = ct->fields;
        while (f && f->name && strcmp(f->name, k))
            f++;
        char p[1024];
        pathf(p, sizeof(p), "%s.%s", path, k);
        if (!f || !f->name)
            flow_diags_add(d, file, p, "connection type '%s' has no field '%s'",
                           ct->id, k);
        else if (!abi_type_matches(f->type, v))
            flow_diags_add(d, file, p, "field '%s' must be %s, got %s", k,
                           f->type, abi_json_type_name(v));
    }
    for (const ferry_input *f = ct->fields; f && f->name; f++) {
        if (json_object_get(fields, f->name))
            continue;
        if (f->default_json) {
            json_t *dv = json_loads(f->default_json, JSON_DECODE_ANY, NULL);
            if (dv)
                json_object_set_new(fields, f->name, dv);
        } else if (f->required) {
            flow_diags_add(d, file, path,
                           "missing required field '%s' (%s) of connection "
                           "type '%s'",
                           f->name, f->type, ct->id);
        }
    }
}

static flow_instance *instance_build(json_t *doc, int given, const char *file,
                                     const flow_integration *ig,
                                     const abi_registry *reg, flow_diags *d);

flow_instance *flow_instance_load(const char *file, const flow_integration *ig,
                                  const abi_registry *reg, flow_diags *d) {
    json_t *doc = NULL;
    if (file && !(doc = flow_load_json(file, d)))
        return NULL;
    return instance_build(doc, file != NULL, file, ig, reg, d);
}

flow_instance *flow_instance_from_json(const json_t *doc, const char *label,
                                       const flow_integration *ig,
                                       const abi_registry *reg, flow_diags *d) {
    const char *file = label ? label : "instance";
    json_t *own = NULL;
    if (doc && !(own = doc_object(doc, file, d)))
        return NULL;
    return instance_build(own, doc != NULL, file, ig, reg, d);
}

/* doc: stolen, NULL for the default instance. */
static flow_instance *instance_build(json_t *doc, int given, const char *file,
                                     const flow_integration *ig,
                                     const abi_registry *reg, flow_diags *d) {
    static const char *const keys[] = {"integration", "name",        "config",
                                       "connections", "description", "alerts",
                                       NULL};
    size_t before = d->n;
    if (!given)
        file = NULL;
    const char *dfile = file ? file : ig->file;
    if (doc)
        check_alerts(d, dfile, json_object_get(doc, "alerts"), ig);
    flow_instance *in = calloc(1, sizeof(*in));
    if (!in)
        return NULL;
    in->config = json_object();
    in->connections = json_object();
    json_t *cfg = NULL, *conns = NULL;
    if (doc) {
        in->file = strdup(file);
        check_keys(d, file, "", doc, keys, "an instance");
        const char *iname =
            json_string_value(json_object_get(doc, "integration"));
        if (!iname)
            flow_diags_add(d, file, "integration",
                           "missing: the name of the integration this "
                           "instance deploys");
        else if (strcmp(iname, ig->name))
            flow_diags_add(d, file, "integration",
                           "instance is for integration '%s', not '%s' (%s)",
                           iname, ig->name, ig->file);
        const char *name = json_string_value(json_object_get(doc, "name"));
        if (!name || !is_name(name))
            flow_diags_add(d, file, "name",
                           name ? "instance names hold letters, digits, '.', "
                                  "'_' and '-'"
                                : "missing instance name");
        else
            in->name = strdup(name);
        cfg = json_object_get(doc, "config");
        if (cfg && !json_is_object(cfg)) {
            flow_diags_add(d, file, "config", "expected an object of values");
            cfg = NULL;
        }
        conns = json_object_get(doc, "connections");
        if (conns && !json_is_object(conns)) {
            flow_diags_add(d, file, "connections",
                           "expected an object of connections by name");
            conns = NULL;
        }
    } else {
        in->name = strdup("default");
    }

    const char *k;
    json_t *v;
    if (cfg) {
        json_object_foreach(cfg, k, v) {
            json_t *decl =
                ig->config_decl ? json_object_get(ig->config_decl, k) : NULL;
            char p[1024];
            pathf(p, sizeof(p), "config.%s", k);
            if (!decl) {
                flow_diags_add(d, dfile, p,
                               "integration '%s' declares no config variable "
                               "'%s'",
                               ig->name, k);
                continue;
            }
            const char *type = json_string_value(json_object_get(decl, "type"));
            if (!abi_type_matches(type, v))
                flow_diags_add(d, dfile, p, "'%s' must be %s, got %s", k, type,
                               abi_json_type_name(v));
            json_object_set(in->config, k, v);
        }
    }
    if (ig->config_decl) {
        json_object_foreach(ig->config_decl, k, v) {
            if (json_object_get(in->config, k))
                continue;
            json_t *def = json_object_get(v, "default");
            if (def)
                json_object_set(in->config, k, def);
            else if (json_is_true(json_object_get(v, "required")))
                flow_diags_add(d, dfile, "config",
                               file ? "missing required config variable '%s'"
                                    : "config variable '%s' is required and "
                                      "has no default: give it in an "
                                      "instance file (--instance)",
                               k);
            else
                json_object_set_new(in->config, k, json_null());
        }
    }
    if (conns) {
        json_object_foreach(conns, k, v) {
            json_t *decl =
                ig->conn_decl ? json_object_get(ig->conn_decl, k) : NULL;
            char p[1024];
            pathf(p, sizeof(p), "connections.%s", k);
            if (!decl) {
                flow_diags_add(d, dfile, p,
                               "integration '%s' declares no connection '%s'",
                               ig->name, k);
                continue;
            }
            json_t *fields = json_object_get(v, "fields");
            if (!json_is_object(v) || !json_is_object(fields)) {
                flow_diags_add(d, dfile, p,
                               "expected {\"fields\": {...}} with the "
                               "connection's credentials");
                continue;
            }
            const char *type = json_string_value(json_object_get(decl, "type"));
            const ferry_connection_type *ct =
                abi_find_connection_type(reg, type);
            json_t *copy = json_deep_copy(fields);
            pathf(p, sizeof(p), "connections.%s.fields", k);
            if (ct)
                check_fields(d, dfile, p, ct, copy);
            json_object_set_new(in->connections, k,
                                json_pack("{s:s, s:s, s:o}", "name", k, "type",
                                          type, "fields", copy));
        }
    }
    json_decref(doc);
    if (d->n > before) {
        flow_instance_free(in);
        return NULL;
    }
    return in;
}
