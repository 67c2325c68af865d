/*
 * jqv: jq programs over jansson values, on Debian's libjq 1.6.
 *
 * What this file relies on or works around in libjq 1.6, each checked
 * against the library as shipped:
 *  - without JQ_LIBRARY_PATH set, `import`/`include` abort the process on an
 *    assertion, so every state gets an empty library path;
 *  - jq_init leaves the input, debug and out-of-memory callbacks
 *    uninitialised, so `input` or `debug` call through garbage; every state
 *    gets all three (no more inputs, as the jq CLI says at the end of its
 *    input: `[inputs]` is [] and `input` fails with "break"; debug messages
 *    are dropped; out of memory aborts, as libjq does anyway);
 *  - after `halt_error` every later reset (jq_start, jq_teardown) frees the
 *    halt message again; see forget_halt;
 *  - the error callback owns the jv it is given;
 *  - jv_invalid_has_msg and jv_invalid_get_msg consume their argument;
 *  - `error(null)` is indistinguishable from the end of the results.
 *
 * A program is not for concurrent use: one jq_state runs one program at a
 * time. Running it again is fine; jq_start resets the state.
 */
#include "flow/jqv.h"

#include <ctype.h>
#include <jq.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper values than jansson's own parser accepts could not be stored and
 * read back, and both libraries recurse on them. */
#define JQV_MAX_DEPTH 2048

/* 2^53: every integer up to here is exact in a double. */
#define JQV_EXACT_INT 9007199254740992.0

typedef struct {
    char *s;
    size_t len, cap;
} jqv_buf;

struct jqv_program {
    jq_state *jq;
    jqv_buf msgs; /* error callback messages, joined with "; " */
};

static int buf_add(jqv_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns)
            return -1;
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

static void set_err(char **err, const char *fmt, ...) {
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    *err = s;
}

/* Appends one of jq's messages as a single line. jq's compile errors quote
 * the offending program line after a newline, and blame the shell; there is
 * no shell here. */
static void buf_add_message(jqv_buf *b, const char *s, size_t n) {
    static const char shell[] = " (Unix shell quoting issues?)";
    if (b->len > 0 && buf_add(b, "; ", 2) < 0)
        return;
    size_t start = b->len;
    for (size_t i = 0; i < n; i++) {
        if (n - i >= sizeof shell - 1 &&
            memcmp(s + i, shell, sizeof shell - 1) == 0) {
            i += sizeof shell - 2;
            continue;
        }
        char c = s[i] == '\n' || s[i] == '\r' ? ' ' : s[i];
        if (buf_add(b, &c, 1) < 0)
            return;
    }
    while (b->len > start &&
           (b->s[b->len - 1] == ' ' || b->s[b->len - 1] == '\t'))
        b->s[--b->len] = '\0';
}

/* jq 1.6 hands over ownership of msg. It is usually an already formatted
 * string, but may be an invalid carrying a message, or any value. */
static void on_jq_error(void *data, jv msg) {
    jqv_buf *b = data;
    jv text;
    if (jv_get_kind(msg) == JV_KIND_STRING) {
        text = jv_copy(msg);
    } else if (jv_get_kind(msg) == JV_KIND_INVALID) {
        jv m = jv_invalid_get_msg(jv_copy(msg));
        if (jv_get_kind(m) == JV_KIND_STRING)
            text = jv_string_fmt("jq: error: %s", jv_string_value(m));
        else if (jv_get_kind(m) == JV_KIND_NULL)
            text = jv_string("jq: error: out of memory");
        else {
            jv d = jv_dump_string(jv_copy(m), 0);
            text = jv_string_fmt("jq: error (not a string): %s",
                                 jv_string_value(d));
            jv_free(d);
        }
        jv_free(m);
    } else {
        jv d = jv_dump_string(jv_copy(msg), 0);
        text =
            jv_string_fmt("jq: error (not a string): %s", jv_string_value(d));
        jv_free(d);
    }
    jv_free(msg);
    if (jv_get_kind(text) == JV_KIND_STRING)
        buf_add_message(b, jv_string_value(text),
                        (size_t)jv_string_length_bytes(jv_copy(text)));
    jv_free(text);
}

static void drop_debug(void *data, jv msg) {
    (void)data;
    jv_free(msg);
}

/* End of input, the way the jq CLI reports it: `inputs` stops, `input`
 * fails. */
static jv no_more_input(jq_state *jq, void *data) {
    (void)jq;
    (void)data;
    return jv_invalid();
}

/* The first word of a program, after blanks and comments. Module
 * directives ("module", "import", "include") can only come first. */
static int starts_with_directive(const char *s) {
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            s++;
        if (*s != '#')
            break;
        while (*s && *s != '\n')
            s++;
    }
    static const char *const words[] = {"module", "import", "include", NULL};
    for (int i = 0; words[i]; i++) {
        size_t n = strlen(words[i]);
        if (!strncmp(s, words[i], n) &&
            !(isalnum((unsigned char)s[n]) || s[n] == '_'))
            return 1;
    }
    return 0;
}

jqv_program *jqv_compile(const char *program, char **err) {
    if (err)
        *err = NULL;
    if (!program) {
        set_err(err, "jq: no program");
        return NULL;
    }
    /* Modules would read files of the host ({search: "/any/dir"} overrides
     * the empty library path): a flow's program gets none. */
    if (starts_with_directive(program)) {
        set_err(err, "jq: modules (module, import, include) are not "
                     "available in flows");
        return NULL;
    }
    jqv_program *p = calloc(1, sizeof *p);
    if (!p) {
        set_err(err, "jq: out of memory");
        return NULL;
    }
    p->jq = jq_init();
    if (!p->jq) {
        free(p);
        set_err(err, "jq: out of memory");
        return NULL;
    }
    jq_set_error_cb(p->jq, on_jq_error, &p->msgs);
    jq_set_input_cb(p->jq, no_more_input, NULL);
    jq_set_debug_cb(p->jq, drop_debug, NULL);
    jq_set_nomem_handler(p->jq, NULL, NULL);
    jq_set_attr(p->jq, jv_string("JQ_LIBRARY_PATH"), jv_array());

    if (!jq_compile(p->jq, program)) {
        if (p->msgs.len > 0) {
            if (err) {
                *err = p->msgs.s;
                p->msgs.s = NULL;
            }
        } else {
            set_err(err, "jq: the program does not compile");
        }
        jqv_free(p);
        return NULL;
    }
    p->msgs.len = 0;
    return p;
}

/* Formats a runtime error carried by an invalid jv (consumed). */
static void set_runtime_err(char **err, jv invalid) {
    jv msg = jv_invalid_get_msg(invalid);
    if (jv_get_kind(msg) == JV_KIND_STRING) {
        set_err(err, "jq: error: %s", jv_string_value(msg));
    } else {
        jv d = jv_dump_string(jv_copy(msg), 0);
        set_err(err, "jq: error (not a string): %s", jv_string_value(d));
        jv_free(d);
    }
    jv_free(msg);
}

/* After `halt` or `halt_error`: 0 if the program stopped cleanly (halt, or
 * halt_error with exit code 0), -1 with *err otherwise. */
static int halt_status(jq_state *jq, char **err) {
    jv code = jq_get_exit_code(jq);
    jv msg = jq_get_error_message(jq);
    int rc = 0;
    if (jv_get_kind(code) == JV_KIND_NUMBER && jv_number_value(code) != 0) {
        rc = -1;
        jv text;
        if (jv_get_kind(msg) == JV_KIND_STRING)
            text = jv_copy(msg);
        else if (jv_is_valid(msg))
            text = jv_dump_string(jv_copy(msg), 0);
        else
            text = jv_string("");
        /* halt_error's strings are written verbatim by the CLI, usually
         * with their own newline. */
        const char *t = jv_string_value(text);
        size_t n = strlen(t);
        while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == ' '))
            n--;
        set_err(err, "jq: halt_error (exit code %g): %.*s",
                jv_number_value(code), (int)n, t);
        jv_free(text);
    }
    jv_free(code);
    jv_free(msg);
    return rc;
}

/* libjq 1.6's jq_reset frees the halt exit code and message without
 * clearing them, so each later reset would free them again. Reset once
 * (which also lets go of the run's input), then overwrite both with
 * jv_invalid(), which jq_reset may free any number of times. */
static void forget_halt(jqv_program *p) {
    jq_start(p->jq, jv_null(), 0);
    jq_halt(p->jq, jv_invalid(), jv_invalid());
}

/* Lets go of what the last run still references (its input, pending
 * backtrack points) instead of holding it until the next run. */
static void release_state(jqv_program *p) {
    jq_start(p->jq, jv_null(), 0);
}

static json_t *to_json(jv v, int depth);

int jqv_run(jqv_program *p, const json_t *input, int collect, json_t **out,
            char **err) {
    *out = NULL;
    if (err)
        *err = NULL;

    jv in = jqv_from_json(input);
    if (!jv_is_valid(in)) {
        jv msg = jv_invalid_get_msg(in);
        set_err(err, "jq program input %s",
                jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg)
                                                   : "cannot be converted");
        jv_free(msg);
        return -1;
    }
    p->msgs.len = 0;
    jq_start(p->jq, in, 0);

    json_t *acc = collect ? json_array() : NULL;
    json_t *one = NULL;
    int rc = 0, halted = 0;
    if (collect && !acc) {
        set_err(err, "jq: out of memory");
        rc = -1;
    }
    while (rc == 0) {
        jv r = jq_next(p->jq);
        if (!jv_is_valid(r)) {
            if (jv_invalid_has_msg(jv_copy(r))) {
                set_runtime_err(err, r);
                rc = -1;
            } else {
                jv_free(r);
                if (jq_halted(p->jq)) {
                    rc = halt_status(p->jq, err);
                    forget_halt(p);
                    halted = 1;
                }
            }
            break;
        }
        if (!collect && one) {
            /* Counting further could run forever (`repeat`), so stop. */
            jv_free(r);
            set_err(err, "jq program produced more than one result; set "
                         "collect to gather them into an array");
            rc = -1;
            break;
        }
        json_t *j = to_json(r, 0);
        if (!j) {
            set_err(err,
                    "jq program produced a value that cannot be converted "
                    "(nested deeper than %d levels, or out of memory)",
                    JQV_MAX_DEPTH);
            rc = -1;
            break;
        }
        if (collect) {
            if (json_array_append_new(acc, j) < 0) {
                set_err(err, "jq: out of memory");
                rc = -1;
            }
        } else {
            one = j;
        }
    }
    if (rc == 0 && !collect && !one) {
        set_err(err, "jq program produced no result");
        rc = -1;
    }
    if (rc < 0) {
        if (!halted)
            release_state(p);
        json_decref(acc);
        json_decref(one);
        return -1;
    }
    *out = collect ? acc : one;
    return 0;
}

void jqv_free(jqv_program *p) {
    if (!p)
        return;
    jq_teardown(&p->jq);
    free(p->msgs.s);
    free(p);
}

/* Object keys as jq strings, made once per conversion: an array of records
 * repeats the same few keys tens of thousands of times, and a jq string
 * caches its hash, so sharing one saves an allocation and a hash per key.
 * Direct-mapped on the length and the first and last bytes; a miss (or a
 * clash) makes a new string, so any key is still converted exactly. */
#define KEY_SLOTS 128

typedef struct key_memo {
    struct {
        const char *s; /* the jansson key it was made from (compared) */
        size_t len;
        jv str;
    } slot[KEY_SLOTS];
} key_memo;

static jv key_string(key_memo *m, const char *k, size_t len) {
    unsigned char first = len ? (unsigned char)k[0] : 0;
    unsigned char last = len ? (unsigned char)k[len - 1] : 0;
    size_t i = (len * 31u + first * 7u + last) & (KEY_SLOTS - 1);
    if (m->slot[i].s && m->slot[i].len == len &&
        memcmp(m->slot[i].s, k, len) == 0)
        return jv_copy(m->slot[i].str);
    jv str = jv_string_sized(k, (int)len);
    if (m->slot[i].s)
        jv_free(m->slot[i].str);
    m->slot[i].s = k;
    m->slot[i].len = len;
    m->slot[i].str = jv_copy(str);
    return str;
}

static jv from_json(const json_t *v, int depth, key_memo *keys) {
    if (depth > JQV_MAX_DEPTH)
        return jv_invalid_with_msg(
            jv_string_fmt("is nested deeper than %d levels", JQV_MAX_DEPTH));
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        jv o = jv_object();
        void *it = json_object_iter((json_t *)v);
        while (it) {
            jv val = from_json(json_object_iter_value(it), depth + 1, keys);
            if (!jv_is_valid(val)) {
                jv_free(o);
                return val;
            }
            jv key = key_string(keys, json_object_iter_key(it),
                                json_object_iter_key_len(it));
            o = jv_object_set(o, key, val);
            it = json_object_iter_next((json_t *)v, it);
        }
        return o;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        jv a = jv_array_sized((int)n);
        for (size_t i = 0; i < n; i++) {
            jv e = from_json(json_array_get(v, i), depth + 1, keys);
            if (!jv_is_valid(e)) {
                jv_free(a);
                return e;
            }
            a = jv_array_append(a, e);
        }
        return a;
    }
    case JSON_STRING:
        return jv_string_sized(json_string_value(v),
                               (int)json_string_length(v));
    case JSON_INTEGER:
        /* jq 1.6 numbers are doubles: beyond 2^53 integers round. */
        return jv_number((double)json_integer_value(v));
    case JSON_REAL:
        return jv_number(json_real_value(v));
    case JSON_TRUE:
        return jv_true();
    case JSON_FALSE:
        return jv_false();
    case JSON_NULL:
        return jv_null();
    }
    return jv_invalid_with_msg(jv_string("is not a JSON value"));
}

/* A missing input (NULL) is taken as JSON null. */
jv jqv_from_json(const json_t *v) {
    if (!v)
        return jv_null();
    key_memo *keys = calloc(1, sizeof *keys);
    if (!keys)
        return jv_invalid_with_msg(jv_string("cannot be converted (out of "
                                             "memory)"));
    jv r = from_json(v, 0, keys);
    for (size_t i = 0; i < KEY_SLOTS; i++)
        if (keys->slot[i].s)
            jv_free(keys->slot[i].str);
    free(keys);
    return r;
}

static json_t *to_json(jv v, int depth) {
    json_t *r = NULL;
    if (depth > JQV_MAX_DEPTH) {
        jv_free(v);
        return NULL;
    }
    switch (jv_get_kind(v)) {
    case JV_KIND_INVALID:
        break;
    case JV_KIND_NULL:
        r = json_null();
        break;
    case JV_KIND_TRUE:
        r = json_true();
        break;
    case JV_KIND_FALSE:
        r = json_false();
        break;
    case JV_KIND_NUMBER: {
        double d = jv_number_value(v);
        /* JSON has no NaN or infinity, and jansson refuses them; they
         * become null (the jq CLI prints NaN as null too, but infinities
         * as +-DBL_MAX). */
        if (isnan(d) || isinf(d))
            r = json_null();
        else if (d >= -JQV_EXACT_INT && d <= JQV_EXACT_INT &&
                 d == (double)(json_int_t)d)
            r = json_integer((json_int_t)d);
        else
            r = json_real(d);
        break;
    }
    case JV_KIND_STRING:
        /* jq keeps strings valid UTF-8 (it substitutes U+FFFD). */
        r = json_stringn(jv_string_value(v),
                         (size_t)jv_string_length_bytes(jv_copy(v)));
        break;
    case JV_KIND_ARRAY: {
        int n = jv_array_length(jv_copy(v));
        r = json_array();
        for (int i = 0; r && i < n; i++) {
            json_t *e = to_json(jv_array_get(jv_copy(v), i), depth + 1);
            if (!e || json_array_append_new(r, e) < 0) {
                json_decref(r);
                r = NULL;
            }
        }
        break;
    }
    case JV_KIND_OBJECT:
        r = json_object();
        for (int it = jv_object_iter(v); r && jv_object_iter_valid(v, it);
             it = jv_object_iter_next(v, it)) {
            jv key = jv_object_iter_key(v, it);
            json_t *e = to_json(jv_object_iter_value(v, it), depth + 1);
            if (!e ||
                json_object_setn_new(
                    r, jv_string_value(key),
                    (size_t)jv_string_length_bytes(jv_copy(key)), e) < 0) {
                json_decref(r);
                r = NULL;
            }
            jv_free(key);
        }
        break;
    }
    jv_free(v);
    return r;
}

json_t *jqv_to_json(jv v) {
    return to_json(v, 0);
}
