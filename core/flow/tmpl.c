/*
 * Templates: a JSON value in which strings may hold {{ references }}.
 * Compiled once when a definition is loaded, so that running a step only
 * walks a small tree: constant parts are shared, references are already
 * resolved to a root and a list of path segments.
 */
#include "tmpl_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

enum tmpl_kind { T_CONST, T_REF, T_INTERP, T_OBJECT, T_ARRAY };

typedef struct ref_seg {
    char *key; /* NULL: an array index */
    long index;
} ref_seg;

typedef struct ref {
    enum ref_root root;
    int arg; /* step id, or loop depth for item/index */
    ref_seg *segs;
    int nsegs;
} ref;

typedef struct interp_part {
    char *text; /* literal text, or NULL for a reference */
    size_t len;
    ref *r;
} interp_part;

struct tmpl {
    enum tmpl_kind kind;
    json_t *value; /* T_CONST */
    ref *r;        /* T_REF */
    interp_part *parts;
    size_t nparts;
    char **keys; /* T_OBJECT */
    tmpl **children;
    size_t nchildren;
};

static void ref_free(ref *r) {
    if (!r)
        return;
    for (int i = 0; i < r->nsegs; i++)
        free(r->segs[i].key);
    free(r->segs);
    free(r);
}

void tmpl_free(tmpl *t) {
    if (!t)
        return;
    json_decref(t->value);
    ref_free(t->r);
    for (size_t i = 0; i < t->nparts; i++) {
        free(t->parts[i].text);
        ref_free(t->parts[i].r);
    }
    free(t->parts);
    for (size_t i = 0; i < t->nchildren; i++) {
        if (t->keys)
            free(t->keys[i]);
        tmpl_free(t->children[i]);
    }
    free(t->keys);
    free(t->children);
    free(t);
}

int tmpl_is_const(const tmpl *t) {
    return t->kind == T_CONST;
}

const json_t *tmpl_const_value(const tmpl *t) {
    return t->kind == T_CONST ? t->value : NULL;
}

int tmpl_is_whole_ref(const tmpl *t) {
    return t->kind == T_REF;
}

/* ---- parsing a reference ---- */

static int ident_start(int c) {
    return isalpha(c) || c == '_';
}
static int ident_char(int c) {
    return isalnum(c) || c == '_' || c == '-';
}

static int push_seg(ref *r, char *key, long index) {
    ref_seg *s = realloc(r->segs, sizeof(*s) * (size_t)(r->nsegs + 1));
    if (!s) {
        free(key);
        return -1;
    }
    r->segs = s;
    r->segs[r->nsegs].key = key;
    r->segs[r->nsegs].index = index;
    r->nsegs++;
    return 0;
}

/* Parses "a.b[0]['c d']" into segments. Returns NULL with why set. */
static ref *parse_path(const char *p, size_t len, char *why, size_t whylen) {
    ref *r = calloc(1, sizeof(*r));
    const char *end = p + len;
    int first = 1;
    if (!r) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    while (p < end) {
        if (*p == '[') {
            p++;
            if (p < end && (*p == '"' || *p == '\'')) {
                char q = *p++;
                const char *s = p;
                while (p < end && *p != q)
                    p++;
                if (p >= end || p + 1 >= end || p[1] != ']') {
                    snprintf(why, whylen, "unterminated [\"key\"]");
                    goto fail;
                }
                if (push_seg(r, strndup(s, (size_t)(p - s)), 0))
                    goto oom;
                p += 2;
            } else {
                char *num_end;
                long v = strtol(p, &num_end, 10);
                if (num_end == p || num_end >= end || *num_end != ']') {
                    snprintf(why, whylen,
                             "expected a number or a quoted key inside []");
                    goto fail;
                }
                if (push_seg(r, NULL, v))
                    goto oom;
                p = num_end + 1;
            }
        } else {
            if (!first) {
                if (*p != '.') {
                    snprintf(why, whylen, "unexpected '%c'", *p);
                    goto fail;
                }
                p++;
            }
            const char *s = p;
            if (p >= end || !ident_start((unsigned char)*p)) {
                snprintf(why, whylen, "expected a name after '.'");
                goto fail;
            }
            while (p < end && ident_char((unsigned char)*p))
                p++;
            if (push_seg(r, strndup(s, (size_t)(p - s)), 0))
                goto oom;
        }
        first = 0;
    }
    if (r->nsegs == 0 || !r->segs[0].key) {
        snprintf(why, whylen, "empty reference");
        goto fail;
    }
    return r;
oom:
    snprintf(why, whylen, "out of memory");
fail:
    ref_free(r);
    return NULL;
}

static void drop_first_segs(ref *r, int n) {
    for (int i = 0; i < n; i++)
        free(r->segs[i].key);
    memmove(r->segs, r->segs + n, sizeof(*r->segs) * (size_t)(r->nsegs - n));
    r->nsegs -= n;
}

/* Resolves the root of a parsed reference against what the env can see. */
static ref *compile_ref(const char *text, size_t len, tmpl_env *env,
                        const char *path) {
    char why[256];
    while (len && isspace((unsigned char)*text))
        text++, len--;
    while (len && isspace((unsigned char)text[len - 1]))
        len--;
    ref *r = parse_path(text, len, why, sizeof(why));
    if (!r) {
        flow_diags_add(env->d, env->file, path,
                       "bad reference '{{ %.*s }}': %s", (int)len, text, why);
        return NULL;
    }
    const char *root = r->segs[0].key;
    if (!strcmp(root, "trigger")) {
        r->root = REF_TRIGGER;
        drop_first_segs(r, 1);
    } else if (!strcmp(root, "config")) {
        r->root = REF_CONFIG;
        drop_first_segs(r, 1);
        if (r->nsegs > 0 && r->segs[0].key && env->config_decl &&
            !json_object_get(env->config_decl, r->segs[0].key)) {
            flow_diags_add(env->d, env->file, path,
                           "reference to undeclared config variable '%s'",
                           r->segs[0].key);
            goto fail;
        }
    } else if (!strcmp(root, "connections")) {
        r->root = REF_CONNECTIONS;
        drop_first_segs(r, 1);
        if (r->nsegs > 0 && r->segs[0].key && env->conn_decl &&
            !json_object_get(env->conn_decl, r->segs[0].key)) {
            flow_diags_add(env->d, env->file, path,
                           "reference to undeclared connection '%s'",
                           r->segs[0].key);
            goto fail;
        }
    } else if (!strcmp(root, "steps")) {
        if (r->nsegs < 3 || !r->segs[1].key || !r->segs[2].key ||
            strcmp(r->segs[2].key, "output")) {
            flow_diags_add(env->d, env->file, path,
                           "bad reference '{{ %.*s }}': expected "
                           "steps.NAME.output",
                           (int)len, text);
            goto fail;
        }
        int id = env->lookup_step(env->ud, r->segs[1].key, why, sizeof(why));
        if (id < 0) {
            flow_diags_add(env->d, env->file, path, "%s", why);
            goto fail;
        }
        r->root = REF_STEP;
        r->arg = id;
        drop_first_segs(r, 3);
        if (env->on_step_ref)
            env->on_step_ref(env->ud, id);
    } else {
        int depth = -1, is_index = 0;
        for (int i = env->nloops - 1; i >= 0 && depth < 0; i--) {
            if (!strcmp(root, "item") ||
                (env->aliases[i] && !strcmp(root, env->aliases[i]))) {
                depth = i;
            } else if (!strcmp(root, "index")) {
                depth = i;
                is_index = 1;
            }
        }
        if (depth < 0) {
            if (!strcmp(root, "item") || !strcmp(root, "index"))
                flow_diags_add(env->d, env->file, path,
                               "'{{ %s }}' is only defined inside for_each",
                               root);
            else
                flow_diags_add(env->d, env->file, path,
                               "unknown reference root '%s' (expected trigger, "
                               "config, steps, connections, item or index)",
                               root);
            goto fail;
        }
        r->root = is_index ? REF_LOOP_INDEX : REF_LOOP_ITEM;
        r->arg = depth;
        drop_first_segs(r, 1);
    }
    return r;
fail:
    ref_free(r);
    return NULL;
}

/* ---- compiling a value ---- */

static tmpl *new_const(const json_t *v) {
    tmpl *t = calloc(1, sizeof(*t));
    if (t) {
        t->kind = T_CONST;
        t->value = json_incref((json_t *)v);
    }
    return t;
}

static int add_part(tmpl *t, char *text, size_t len, ref *r) {
    interp_part *p = realloc(t->parts, sizeof(*p) * (t->nparts + 1));
    if (!p)
        return -1;
    t->parts = p;
    t->parts[t->nparts++] = (interp_part){text, len, r};
    return 0;
}

static tmpl *compile_string(const json_t *v, tmpl_env *env, const char *path,
                            int *failed) {
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (!memmem(s, len, "{{", 2))
        return new_const(v);

    tmpl *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->kind = T_INTERP;
    char *lit = malloc(len + 1);
    size_t litlen = 0;
    size_t i = 0;
    if (!lit)
        goto oom;
    while (i < len) {
        if (i + 3 < len && !memcmp(s + i, "{{{{", 4)) {
            lit[litlen++] = '{';
            lit[litlen++] = '{';
            i += 4;
            continue;
        }
        if (i + 1 < len && s[i] == '{' && s[i + 1] == '{') {
            const char *close = memmem(s + i + 2, len - i - 2, "}}", 2);
            if (!close) {
                flow_diags_add(env->d, env->file, path,
                               "unterminated '{{' (no matching '}}')");
                *failed = 1;
                free(lit);
                tmpl_free(t);
                return NULL;
            }
            if (litlen) {
                if (add_part(t, strndup(lit, litlen), litlen, NULL))
                    goto oom;
                litlen = 0;
            }
            ref *r = compile_ref(s + i + 2, (size_t)(close - (s + i + 2)), env,
                                 path);
            if (!r) {
                *failed = 1;
            } else if (add_part(t, NULL, 0, r)) {
                ref_free(r);
                goto oom;
            }
            i = (size_t)(close - s) + 2;
            continue;
        }
        lit[litlen++] = s[i++];
    }
    if (litlen && add_part(t, strndup(lit, litlen), litlen, NULL))
        goto oom;
    free(lit);
    if (*failed) {
        tmpl_free(t);
        return NULL;
    }
    if (t->nparts == 1 && t->parts[0].r) {
        /* A whole-value reference keeps the referenced JSON type. */
        t->kind = T_REF;
        t->r = t->parts[0].r;
        t->parts[0].r = NULL;
        free(t->parts);
        t->parts = NULL;
        t->nparts = 0;
    } else if (t->nparts == 1 || t->nparts == 0) {
        /* Only escapes: a constant string. */
        json_t *c = t->nparts ? json_stringn(t->parts[0].text, t->parts[0].len)
                              : json_string("");
        tmpl_free(t);
        t = calloc(1, sizeof(*t));
        if (!t) {
            json_decref(c);
            return NULL;
        }
        t->kind = T_CONST;
        t->value = c;
    }
    return t;
oom:
    free(lit);
    tmpl_free(t);
    return NULL;
}

tmpl *tmpl_compile(const json_t *v, tmpl_env *env, const char *path) {
    int failed = 0;
    tmpl *t = NULL;
    char child[1024];

    switch (json_typeof(v)) {
    case JSON_STRING:
        return compile_string(v, env, path, &failed);
    case JSON_OBJECT:
    case JSON_ARRAY: {
        int is_obj = json_is_object(v);
        size_t n = is_obj ? json_object_size(v) : json_array_size(v);
        t = calloc(1, sizeof(*t));
        if (!t)
            return NULL;
        t->kind = is_obj ? T_OBJECT : T_ARRAY;
        t->children = calloc(n ? n : 1, sizeof(*t->children));
        if (is_obj)
            t->keys = calloc(n ? n : 1, sizeof(*t->keys));
        if (!t->children || (is_obj && !t->keys)) {
            tmpl_free(t);
            return NULL;
        }
        int all_const = 1;
        if (is_obj) {
            const char *k;
            json_t *cv;
            json_object_foreach((json_t *)v, k, cv) {
                snprintf(child, sizeof(child), "%s.%s", path, k);
                tmpl *c = tmpl_compile(cv, env, child);
                if (!c) {
                    failed = 1;
                    continue;
                }
                t->keys[t->nchildren] = strdup(k);
                t->children[t->nchildren++] = c;
                all_const &= c->kind == T_CONST;
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                snprintf(child, sizeof(child), "%s[%zu]", path, i);
                tmpl *c = tmpl_compile(json_array_get(v, i), env, child);
                if (!c) {
                    failed = 1;
                    continue;
                }
                t->children[t->nchildren++] = c;
                all_const &= c->kind == T_CONST;
            }
        }
        if (failed) {
            tmpl_free(t);
            return NULL;
        }
        if (all_const) {
            tmpl_free(t);
            return new_const(v);
        }
        return t;
    }
    default:
        return new_const(v);
    }
}

tmpl *tmpl_object_new(void) {
    tmpl *t = calloc(1, sizeof(*t));
    if (t)
        t->kind = T_OBJECT;
    return t;
}

int tmpl_object_set(tmpl *t, const char *key, tmpl *child) {
    if (t->kind != T_OBJECT)
        return -1;
    char **keys = realloc(t->keys, sizeof(*keys) * (t->nchildren + 1));
    if (!keys)
        return -1;
    t->keys = keys;
    tmpl **ch = realloc(t->children, sizeof(*ch) * (t->nchildren + 1));
    if (!ch)
        return -1;
    t->children = ch;
    t->keys[t->nchildren] = strdup(key);
    t->children[t->nchildren++] = child;
    return 0;
}

tmpl *tmpl_from_value(const json_t *v) {
    return new_const(v);
}

/* ---- evaluation ---- */

/* Returns a borrowed value or NULL when the path leads nowhere. */
static json_t *ref_lookup(const ref *r, const flow_scope *s) {
    json_t *v = NULL;
    switch (r->root) {
    case REF_TRIGGER:
        v = s->trigger;
        break;
    case REF_CONFIG:
        v = s->config;
        break;
    case REF_CONNECTIONS:
        v = s->connections;
        break;
    case REF_STEP:
        v = s->outputs ? s->outputs[r->arg] : NULL;
        break;
    case REF_LOOP_ITEM:
        v = r->arg < s->nloops ? s->loops[r->arg].item : NULL;
        break;
    case REF_LOOP_INDEX:
        v = r->arg < s->nloops ? s->loops[r->arg].index : NULL;
        break;
    }
    for (int i = 0; v && i < r->nsegs; i++) {
        const ref_seg *g = &r->segs[i];
        if (g->key) {
            v = json_is_object(v) ? json_object_get(v, g->key) : NULL;
        } else if (json_is_array(v)) {
            long n = (long)json_array_size(v);
            long ix = g->index < 0 ? n + g->index : g->index;
            v = ix >= 0 && ix < n ? json_array_get(v, (size_t)ix) : NULL;
        } else {
            v = NULL;
        }
    }
    return v;
}

typedef struct strbuf {
    char *p;
    size_t len, cap;
} strbuf;

static int sb_add(strbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static int sb_dump_cb(const char *buf, size_t size, void *data) {
    return sb_add(data, buf, size);
}

json_t *tmpl_eval(const tmpl *t, const flow_scope *s) {
    switch (t->kind) {
    case T_CONST:
        return json_incref(t->value);
    case T_REF: {
        json_t *v = ref_lookup(t->r, s);
        return v ? json_incref(v) : json_null();
    }
    case T_INTERP: {
        strbuf b = {0};
        for (size_t i = 0; i < t->nparts; i++) {
            const interp_part *p = &t->parts[i];
            if (p->text) {
                if (sb_add(&b, p->text, p->len))
                    goto oom;
                continue;
            }
            json_t *v = ref_lookup(p->r, s);
            if (!v || json_is_null(v))
                continue;
            if (json_is_string(v)) {
                if (sb_add(&b, json_string_value(v), json_string_length(v)))
                    goto oom;
            } else if (json_dump_callback(v, sb_dump_cb, &b, FLOW_JSON_TEXT)) {
                goto oom;
            }
        }
        json_t *out = json_stringn(b.p ? b.p : "", b.len);
        free(b.p);
        return out;
    oom:
        free(b.p);
        return NULL;
    }
    case T_OBJECT: {
        json_t *o = json_object();
        for (size_t i = 0; o && i < t->nchildren; i++) {
            json_t *c = tmpl_eval(t->children[i], s);
            if (!c || json_object_set_new(o, t->keys[i], c)) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    case T_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; a && i < t->nchildren; i++) {
            json_t *c = tmpl_eval(t->children[i], s);
            if (!c || json_array_append_new(a, c)) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    }
    return NULL;
}
