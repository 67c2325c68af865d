/*
 * A native evaluator for the predicates streaming meets most: comparisons
 * of a child's, an attribute's or the node's own text with literals,
 * joined with and/or, and the XPath 1.0 string functions. Evaluating
 * them through libxml2's XPath costs microseconds per node (a parser
 * context, node sets and strings allocated for every call); here it is a
 * walk over the node's children with no allocation in the common case.
 *
 * The semantics are XPath 1.0's as libxml2 2.9 implements them (xpath.c):
 * comparisons of a node set with a value are true when some node's string
 * value compares true, numbers are read with xmlXPathStringEvalNumber,
 * substring() rounds as xmlXPathSubstringFunction does, a number as the
 * whole predicate is a position. Whatever falls outside this subset
 * (other axes and functions, unions, a number converted to a string)
 * compiles to NULL and is run by libxml2 instead.
 */
#include "xj_pred.h"

#include <libxml/xpathInternals.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { T_NODES, T_STR, T_NUM, T_BOOL };

enum {
    N_OR,
    N_AND,
    N_CMP,
    N_STR,
    N_NUM,
    N_PATH,
    N_FN,
    N_ARITH, /* + - * div mod, and unary minus (one argument) */
};

enum { A_ADD, A_SUB, A_MUL, A_DIV, A_MOD };

enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

enum {
    F_STRING,
    F_CONCAT,
    F_STARTS_WITH,
    F_CONTAINS,
    F_SUBSTRING,
    F_SUBSTRING_BEFORE,
    F_SUBSTRING_AFTER,
    F_STRING_LENGTH,
    F_NORMALIZE_SPACE,
    F_NOT,
    F_TRUE,
    F_FALSE,
    F_BOOLEAN,
    F_NUMBER,
    F_POSITION,
    F_COUNT,
};

#define MAX_ARGS 8
#define MAX_PATH 8

typedef struct pstep {
    int kind;    /* 0 element, 1 attribute, 2 text(), 3 self (.) */
    char *local; /* NULL: any (* or prefix:*) */
    char *uri;   /* NULL: no namespace, unless any_ns */
    int any_ns;  /* * */
} pstep;

typedef struct pn {
    int kind, type, op, fn;
    struct pn *arg[MAX_ARGS];
    int nargs;
    char *str; /* N_STR */
    size_t len;
    double num; /* N_NUM */
    pstep steps[MAX_PATH];
    int nsteps;
} pn;

struct xj_pred {
    pn *root;
};

static void pn_free(pn *n) {
    if (!n)
        return;
    for (int i = 0; i < n->nargs; i++)
        pn_free(n->arg[i]);
    for (int i = 0; i < n->nsteps; i++) {
        free(n->steps[i].local);
        free(n->steps[i].uri);
    }
    free(n->str);
    free(n);
}

void xj_pred_free(xj_pred *p) {
    if (p) {
        pn_free(p->root);
        free(p);
    }
}

/* ---- parsing ---- */

typedef struct ps {
    const char *s, *end;
    const xj_opts *o;
    int unsupported; /* outside the subset: compile to NULL */
    int nomem;
} ps;

static void ws(ps *p) {
    while (p->s < p->end &&
           (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static int is_name_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c >= 0x80;
}

static int is_name_char(unsigned char c) {
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* Reads an NCName at the cursor; returns its length (0: none). */
static size_t ncname(ps *p) {
    const char *s = p->s;
    if (s >= p->end || !is_name_start((unsigned char)*s))
        return 0;
    while (s < p->end && is_name_char((unsigned char)*s))
        s++;
    return (size_t)(s - p->s);
}

static int peek(ps *p, const char *tok) {
    size_t n = strlen(tok);
    ws(p);
    return (size_t)(p->end - p->s) >= n && !memcmp(p->s, tok, n);
}

/* Whether the word at the cursor is w, as a whole name. */
static int peek_word(ps *p, const char *w) {
    size_t n = strlen(w);
    ws(p);
    return (size_t)(p->end - p->s) >= n && !memcmp(p->s, w, n) &&
           (p->s + n == p->end || !is_name_char((unsigned char)p->s[n]));
}

static pn *node(ps *p, int kind, int type) {
    pn *n = calloc(1, sizeof(*n));
    if (!n) {
        p->nomem = 1;
        return NULL;
    }
    n->kind = kind;
    n->type = type;
    return n;
}

static pn *unsupported(ps *p, pn *n) {
    p->unsupported = 1;
    pn_free(n);
    return NULL;
}

static pn *parse_or(ps *p);

static const char *bound(const xj_opts *o, const char *prefix, size_t n) {
    if (n == 3 && !memcmp(prefix, "xml", 3))
        return (const char *)XML_XML_NAMESPACE;
    for (size_t i = 0; i < o->nns; i++)
        if (*o->ns[i].prefix && strlen(o->ns[i].prefix) == n &&
            !memcmp(o->ns[i].prefix, prefix, n))
            return o->ns[i].uri;
    return NULL;
}

/* A name test into st: name, prefix:name, * or prefix:*. 0 if the text is
 * not one (or its prefix is not bound: libxml2 then reports that). */
static int parse_qname(ps *p, pstep *st) {
    size_t n, l;
    const char *uri = NULL;
    ws(p);
    if (p->s < p->end && *p->s == '*') {
        p->s++;
        st->any_ns = 1;
        return 1;
    }
    n = ncname(p);
    if (!n)
        return 0;
    if (p->s + n < p->end && p->s[n] == ':') {
        uri = bound(p->o, p->s, n);
        if (!uri)
            return 0;
        if (!(st->uri = strdup(uri))) {
            p->nomem = 1;
            return 0;
        }
        p->s += n + 1;
        if (p->s < p->end && *p->s == '*') {
            p->s++;
            return 1;
        }
        l = ncname(p);
        if (!l)
            return 0;
        n = l;
    }
    st->local = strndup(p->s, n);
    if (!st->local) {
        p->nomem = 1;
        return 0;
    }
    p->s += n;
    return 1;
}

/* A relative path: ".", or name steps, ending in an optional @name or
 * text(). */
static pn *parse_path(ps *p) {
    pn *n = node(p, N_PATH, T_NODES);
    if (!n)
        return NULL;
    ws(p);
    if (p->s < p->end && *p->s == '.') {
        if (p->s + 1 < p->end && (p->s[1] == '.' || p->s[1] == '/'))
            return unsupported(p, n);
        p->s++;
        n->steps[n->nsteps++].kind = 3;
        return n;
    }
    for (;;) {
        pstep *st;
        if (n->nsteps == MAX_PATH)
            return unsupported(p, n);
        st = &n->steps[n->nsteps++];
        ws(p);
        if (p->s < p->end && *p->s == '@') {
            p->s++;
            ws(p);
            st->kind = 1;
            if (!parse_qname(p, st))
                return unsupported(p, n);
            break;
        }
        if (peek_word(p, "text")) {
            const char *save = p->s;
            p->s += 4;
            if (peek(p, "(")) {
                p->s++;
                if (!peek(p, ")"))
                    return unsupported(p, n);
                p->s++;
                st->kind = 2;
                break;
            }
            p->s = save;
        }
        st->kind = 0;
        if (!parse_qname(p, st))
            return unsupported(p, n);
        ws(p);
        if (p->s < p->end && *p->s == '(')
            return unsupported(p, n); /* a function or node type test */
        if (!(p->s < p->end && *p->s == '/') ||
            (p->s + 1 < p->end && p->s[1] == '/'))
            break;
        p->s++;
    }
    return n;
}

static const struct {
    const char *name;
    int fn, type, min, max;
} functions[] = {
    {"string", F_STRING, T_STR, 0, 1},
    {"concat", F_CONCAT, T_STR, 2, MAX_ARGS},
    {"starts-with", F_STARTS_WITH, T_BOOL, 2, 2},
    {"contains", F_CONTAINS, T_BOOL, 2, 2},
    {"substring", F_SUBSTRING, T_STR, 2, 3},
    {"substring-before", F_SUBSTRING_BEFORE, T_STR, 2, 2},
    {"substring-after", F_SUBSTRING_AFTER, T_STR, 2, 2},
    {"string-length", F_STRING_LENGTH, T_NUM, 0, 1},
    {"normalize-space", F_NORMALIZE_SPACE, T_STR, 0, 1},
    {"not", F_NOT, T_BOOL, 1, 1},
    {"true", F_TRUE, T_BOOL, 0, 0},
    {"false", F_FALSE, T_BOOL, 0, 0},
    {"boolean", F_BOOLEAN, T_BOOL, 1, 1},
    {"number", F_NUMBER, T_NUM, 0, 1},
    {"position", F_POSITION, T_NUM, 0, 0},
    {"count", F_COUNT, T_NUM, 1, 1},
};

/* Whether an argument of function fn at index i has a type the subset
 * converts as XPath does. Numbers never become strings here (XPath's
 * number formatting is not reproduced). */
static int arg_ok(int fn, int i, int type) {
    switch (fn) {
    case F_SUBSTRING:
        return i == 0 ? type != T_NUM : 1;
    case F_NOT:
    case F_BOOLEAN:
    case F_NUMBER:
        return 1;
    case F_COUNT:
        return type == T_NODES;
    default:
        return type != T_NUM;
    }
}

static pn *parse_function(ps *p, size_t namelen) {
    size_t f;
    pn *n;
    for (f = 0; f < sizeof(functions) / sizeof(functions[0]); f++)
        if (strlen(functions[f].name) == namelen &&
            !memcmp(functions[f].name, p->s, namelen))
            break;
    if (f == sizeof(functions) / sizeof(functions[0])) {
        p->unsupported = 1;
        return NULL;
    }
    n = node(p, N_FN, functions[f].type);
    if (!n)
        return NULL;
    n->fn = functions[f].fn;
    p->s += namelen;
    ws(p);
    p->s++; /* ( */
    if (!peek(p, ")")) {
        for (;;) {
            pn *a;
            if (n->nargs == MAX_ARGS)
                return unsupported(p, n);
            a = parse_or(p);
            if (!a) {
                pn_free(n);
                return NULL;
            }
            n->arg[n->nargs++] = a;
            if (!arg_ok(n->fn, n->nargs - 1, a->type))
                return unsupported(p, n);
            if (peek(p, ",")) {
                p->s++;
                continue;
            }
            break;
        }
    }
    if (!peek(p, ")") || n->nargs < functions[f].min ||
        n->nargs > functions[f].max)
        return unsupported(p, n);
    p->s++;
    return n;
}

static pn *parse_primary(ps *p) {
    ws(p);
    if (p->s >= p->end)
        return unsupported(p, NULL);
    char c = *p->s;
    if (c == '\'' || c == '"') {
        const char *q = memchr(p->s + 1, c, (size_t)(p->end - p->s - 1));
        pn *n;
        if (!q)
            return unsupported(p, NULL);
        n = node(p, N_STR, T_STR);
        if (!n)
            return NULL;
        n->len = (size_t)(q - p->s - 1);
        n->str = strndup(p->s + 1, n->len);
        if (!n->str) {
            p->nomem = 1;
            pn_free(n);
            return NULL;
        }
        p->s = q + 1;
        return n;
    }
    if ((c >= '0' && c <= '9') ||
        (c == '.' && p->s + 1 < p->end && p->s[1] >= '0' && p->s[1] <= '9')) {
        const char *s = p->s;
        char buf[64];
        pn *n;
        while (s < p->end && ((*s >= '0' && *s <= '9') || *s == '.'))
            s++;
        if ((size_t)(s - p->s) >= sizeof(buf))
            return unsupported(p, NULL);
        memcpy(buf, p->s, (size_t)(s - p->s));
        buf[s - p->s] = 0;
        n = node(p, N_NUM, T_NUM);
        if (!n)
            return NULL;
        n->num = xmlXPathStringEvalNumber((const xmlChar *)buf);
        p->s = s;
        return n;
    }
    if (c == '(') {
        pn *n;
        p->s++;
        n = parse_or(p);
        if (!n)
            return NULL;
        if (!peek(p, ")"))
            return unsupported(p, n);
        p->s++;
        return n;
    }
    size_t len = ncname(p);
    if (len) {
        const char *after = p->s + len;
        while (after < p->end && (*after == ' ' || *after == '\t' ||
                                  *after == '\n' || *after == '\r'))
            after++;
        if (after < p->end && *after == '(' &&
            !(len == 4 && !memcmp(p->s, "text", 4)))
            return parse_function(p, len);
    }
    return parse_path(p);
}

static pn *parse_unary(ps *p);

/* Whether the cursor is at an operator name (div, mod), which after an
 * operand is never a name test. */
static int arith_op(ps *p, int additive, int *op) {
    ws(p);
    if (p->s >= p->end)
        return 0;
    if (additive) {
        if (*p->s == '+' || *p->s == '-') {
            *op = *p->s == '+' ? A_ADD : A_SUB;
            p->s++;
            return 1;
        }
        return 0;
    }
    if (*p->s == '*') {
        *op = A_MUL;
        p->s++;
        return 1;
    }
    if (peek_word(p, "div") || peek_word(p, "mod")) {
        *op = *p->s == 'd' ? A_DIV : A_MOD;
        p->s += 3;
        return 1;
    }
    return 0;
}

static pn *parse_arith(ps *p, int additive) {
    pn *a = additive ? parse_arith(p, 0) : parse_unary(p);
    int op;
    while (a && arith_op(p, additive, &op)) {
        pn *n = node(p, N_ARITH, T_NUM);
        if (!n) {
            pn_free(a);
            return NULL;
        }
        n->op = op;
        n->arg[n->nargs++] = a;
        n->arg[1] = additive ? parse_arith(p, 0) : parse_unary(p);
        if (!n->arg[1]) {
            pn_free(n);
            return NULL;
        }
        n->nargs++;
        a = n;
    }
    return a;
}

static pn *parse_unary(ps *p) {
    pn *n, *a;
    ws(p);
    if (p->s >= p->end || *p->s != '-')
        return parse_primary(p);
    p->s++;
    a = parse_unary(p);
    if (!a)
        return NULL;
    n = node(p, N_ARITH, T_NUM);
    if (!n) {
        pn_free(a);
        return NULL;
    }
    n->op = A_SUB;
    n->arg[n->nargs++] = a;
    return n;
}

static pn *parse_rel(ps *p) {
    static const struct {
        const char *tok;
        int op;
    } ops[] = {{"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
               {"=", OP_EQ},  {"<", OP_LT},  {">", OP_GT}};
    pn *a = parse_arith(p, 1), *n;
    size_t i;
    if (!a)
        return NULL;
    ws(p);
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (peek(p, ops[i].tok))
            break;
    if (i == sizeof(ops) / sizeof(ops[0]))
        return a;
    p->s += strlen(ops[i].tok);
    n = node(p, N_CMP, T_BOOL);
    if (!n) {
        pn_free(a);
        return NULL;
    }
    n->op = ops[i].op;
    n->arg[n->nargs++] = a;
    n->arg[1] = parse_arith(p, 1);
    if (!n->arg[1]) {
        pn_free(n);
        return NULL;
    }
    n->nargs++;
    /* Two node sets compare pairwise: left to libxml2. */
    if (n->arg[0]->type == T_NODES && n->arg[1]->type == T_NODES)
        return unsupported(p, n);
    /* a = b = c chains: left to libxml2. */
    ws(p);
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (peek(p, ops[i].tok))
            return unsupported(p, n);
    return n;
}

static pn *parse_chain(ps *p, int kind, const char *word) {
    pn *a = kind == N_OR ? parse_chain(p, N_AND, "and") : parse_rel(p), *n;
    if (!a)
        return NULL;
    if (!peek_word(p, word))
        return a;
    n = node(p, kind, T_BOOL);
    if (!n) {
        pn_free(a);
        return NULL;
    }
    n->arg[n->nargs++] = a;
    while (peek_word(p, word)) {
        pn *b;
        p->s += strlen(word);
        if (n->nargs == MAX_ARGS)
            return unsupported(p, n);
        b = kind == N_OR ? parse_chain(p, N_AND, "and") : parse_rel(p);
        if (!b) {
            pn_free(n);
            return NULL;
        }
        n->arg[n->nargs++] = b;
    }
    return n;
}

static pn *parse_or(ps *p) {
    return parse_chain(p, N_OR, "or");
}

xj_pred *xj_pred_compile(const char *s, size_t len, const xj_opts *o,
                         int *nomem) {
    ps p = {.s = s, .end = s + len, .o = o};
    pn *root = parse_or(&p);
    xj_pred *pred;
    *nomem = 0;
    ws(&p);
    if (!root || p.unsupported || p.nomem || p.s != p.end) {
        *nomem = p.nomem;
        pn_free(root);
        return NULL;
    }
    pred = malloc(sizeof(*pred));
    if (!pred) {
        *nomem = 1;
        pn_free(root);
        return NULL;
    }
    pred->root = root;
    return pred;
}

/* ---- evaluation ---- */

/* A string: bytes at s, n of them; not NUL terminated. */
typedef struct str {
    const char *s;
    size_t n;
} str;

/* Scratch memory of one evaluation (the text of elements with several
 * text nodes, concat() and normalize-space() results), freed at its end. */
typedef struct block {
    struct block *next;
    char data[];
} block;

typedef struct arena {
    block *head;
    int failed;
} arena;

static char *arena_alloc(arena *a, size_t n) {
    block *b = malloc(sizeof(*b) + (n ? n : 1));
    if (!b) {
        a->failed = 1;
        return NULL;
    }
    b->next = a->head;
    a->head = b;
    return b->data;
}

static void arena_free(arena *a) {
    while (a->head) {
        block *b = a->head;
        a->head = b->next;
        free(b);
    }
}

typedef struct ev {
    const xmlNode *ctx;
    int position;
    arena mem;
} ev;

/* A node set, in document order (child steps from distinct parents never
 * repeat a node). */
typedef struct nodes {
    const xmlNode *small[16];
    const xmlNode **v;
    size_t n, cap;
} nodes;

static void nodes_init(nodes *ns) {
    ns->v = ns->small;
    ns->n = 0;
    ns->cap = sizeof(ns->small) / sizeof(ns->small[0]);
}

static void nodes_free(nodes *ns) {
    if (ns->v != ns->small)
        free(ns->v);
}

static int nodes_add(nodes *ns, const xmlNode *n) {
    if (ns->n == ns->cap) {
        size_t cap = ns->cap * 2;
        const xmlNode **v = malloc(cap * sizeof(*v));
        if (!v)
            return -1;
        memcpy(v, ns->v, ns->n * sizeof(*v));
        if (ns->v != ns->small)
            free(ns->v);
        ns->v = v;
        ns->cap = cap;
    }
    ns->v[ns->n++] = n;
    return 0;
}

/* Moves src's nodes into dst (which owns nothing); src is left empty. */
static void nodes_move(nodes *dst, nodes *src) {
    if (src->v == src->small) {
        memcpy(dst->small, src->small, src->n * sizeof(*src->v));
        dst->v = dst->small;
    } else {
        dst->v = src->v;
    }
    dst->n = src->n;
    dst->cap = src->cap;
    nodes_init(src);
}

static int step_matches(const pstep *st, const xmlNode *n) {
    const xmlChar *uri = n->ns ? n->ns->href : NULL;
    if (st->local && strcmp(st->local, (const char *)n->name))
        return 0;
    if (st->any_ns)
        return 1;
    if (!st->uri)
        return uri == NULL;
    return uri && !strcmp((const char *)uri, st->uri);
}

/* Evaluates a path from the context node into out. -1 on no memory. */
static int eval_path(const pn *p, const xmlNode *ctx, nodes *out) {
    nodes cur, next;
    nodes_init(&cur);
    if (nodes_add(&cur, ctx))
        return -1;
    for (int i = 0; i < p->nsteps; i++) {
        const pstep *st = &p->steps[i];
        nodes_init(&next);
        for (size_t k = 0; k < cur.n; k++) {
            const xmlNode *n = cur.v[k];
            if (st->kind == 3) {
                if (nodes_add(&next, n))
                    goto fail;
                continue;
            }
            if (st->kind == 1) {
                if (n->type != XML_ELEMENT_NODE)
                    continue;
                for (const xmlAttr *a = n->properties; a; a = a->next)
                    if (step_matches(st, (const xmlNode *)a) &&
                        nodes_add(&next, (const xmlNode *)a))
                        goto fail;
                continue;
            }
            for (const xmlNode *c = n->children; c; c = c->next) {
                int ok = st->kind == 2 ? (c->type == XML_TEXT_NODE ||
                                          c->type == XML_CDATA_SECTION_NODE)
                                       : (c->type == XML_ELEMENT_NODE &&
                                          step_matches(st, c));
                if (ok && nodes_add(&next, c))
                    goto fail;
            }
        }
        nodes_free(&cur);
        nodes_move(&cur, &next);
    }
    nodes_free(out);
    nodes_move(out, &cur);
    return 0;
fail:
    nodes_free(&cur);
    nodes_free(&next);
    return -1;
}

/* The string value of a node (xmlNodeGetContent): its text, or for an
 * element the text of all its descendants. */
static str node_string(ev *e, const xmlNode *n) {
    str r = {"", 0};
    const xmlNode *c, *only;
    size_t total = 0;
    char *buf;

    switch (n->type) {
    case XML_TEXT_NODE:
    case XML_CDATA_SECTION_NODE:
    case XML_COMMENT_NODE:
    case XML_PI_NODE:
        if (n->content) {
            r.s = (const char *)n->content;
            r.n = strlen(r.s);
        }
        return r;
    case XML_ATTRIBUTE_NODE:
    case XML_ELEMENT_NODE:
        break;
    default:
        return r;
    }
    only = n->children;
    if (only && !only->next &&
        (only->type == XML_TEXT_NODE || only->type == XML_CDATA_SECTION_NODE) &&
        only->content) {
        r.s = (const char *)only->content;
        r.n = strlen(r.s);
        return r;
    }
    /* Two passes over the descendants: size, then copy. */
    for (int pass = 0; pass < 2; pass++) {
        size_t at = 0;
        buf = NULL;
        if (pass == 1) {
            buf = arena_alloc(&e->mem, total + 1);
            if (!buf)
                return r;
        }
        c = n->children;
        while (c && c != n) {
            if ((c->type == XML_TEXT_NODE ||
                 c->type == XML_CDATA_SECTION_NODE) &&
                c->content) {
                size_t l = strlen((const char *)c->content);
                if (pass)
                    memcpy(buf + at, c->content, l);
                at += l;
            }
            if (c->type == XML_ELEMENT_NODE && c->children) {
                c = c->children;
                continue;
            }
            while (c != n && !c->next)
                c = c->parent;
            if (c != n)
                c = c->next;
        }
        total = at;
        if (pass) {
            r.s = buf;
            r.n = total;
        }
    }
    return r;
}

static double str_number(ev *e, str s) {
    char small[64], *buf = small;
    if (s.n >= sizeof(small)) {
        buf = arena_alloc(&e->mem, s.n + 1);
        if (!buf)
            return NAN;
    }
    memcpy(buf, s.s, s.n);
    buf[s.n] = 0;
    return xmlXPathStringEvalNumber((const xmlChar *)buf);
}

static int str_eq(str a, str b) {
    return a.n == b.n && !memcmp(a.s, b.s, a.n);
}

/* The UTF-8 characters of s: libxml2 counts them as xmlUTF8Strlen does. */
static size_t utf8_len(str s) {
    size_t n = 0;
    for (size_t i = 0; i < s.n; i++)
        if (((unsigned char)s.s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

/* The byte offset of character k of s (s.n if past the end). */
static size_t utf8_offset(str s, size_t k) {
    size_t i = 0;
    while (i < s.n && k) {
        i++;
        while (i < s.n && ((unsigned char)s.s[i] & 0xc0) == 0x80)
            i++;
        k--;
    }
    return i;
}

static const char *find(str hay, str needle) {
    if (!needle.n)
        return hay.s;
    if (needle.n > hay.n)
        return NULL;
    for (size_t i = 0; i + needle.n <= hay.n; i++)
        if (!memcmp(hay.s + i, needle.s, needle.n))
            return hay.s + i;
    return NULL;
}

static int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Values: one of the four types, by the node's static type. */
typedef struct val {
    nodes ns;
    str s;
    double num;
    int b;
} val;

static int eval(ev *e, const pn *n, val *out);

static int eval_str(ev *e, const pn *n, str *out) {
    val v;
    int rc;
    nodes_init(&v.ns);
    rc = eval(e, n, &v);
    if (!rc) {
        switch (n->type) {
        case T_NODES:
            *out = v.ns.n ? node_string(e, v.ns.v[0]) : (str){"", 0};
            break;
        case T_STR:
            *out = v.s;
            break;
        case T_BOOL:
            *out = v.b ? (str){"true", 4} : (str){"false", 5};
            break;
        default:
            rc = -1; /* excluded at compile time */
        }
    }
    nodes_free(&v.ns);
    return rc;
}

static int eval_num(ev *e, const pn *n, double *out) {
    val v;
    int rc;
    nodes_init(&v.ns);
    rc = eval(e, n, &v);
    if (!rc) {
        switch (n->type) {
        case T_NODES:
            *out = v.ns.n ? str_number(e, node_string(e, v.ns.v[0])) : NAN;
            break;
        case T_STR:
            *out = str_number(e, v.s);
            break;
        case T_BOOL:
            *out = v.b ? 1 : 0;
            break;
        default:
            *out = v.num;
        }
    }
    nodes_free(&v.ns);
    return rc;
}

static int eval_bool(ev *e, const pn *n, int *out) {
    val v;
    int rc;
    nodes_init(&v.ns);
    rc = eval(e, n, &v);
    if (!rc) {
        switch (n->type) {
        case T_NODES:
            *out = v.ns.n > 0;
            break;
        case T_STR:
            *out = v.s.n > 0;
            break;
        case T_BOOL:
            *out = v.b;
            break;
        default:
            *out = v.num != 0 && !isnan(v.num);
        }
    }
    nodes_free(&v.ns);
    return rc;
}

static int num_cmp(int op, double a, double b) {
    switch (op) {
    case OP_EQ:
        return a == b;
    case OP_NE:
        return a != b;
    case OP_LT:
        return a < b;
    case OP_LE:
        return a <= b;
    case OP_GT:
        return a > b;
    default:
        return a >= b;
    }
}

/* op with its operands swapped: a < b is b > a. */
static int flip(int op) {
    switch (op) {
    case OP_LT:
        return OP_GT;
    case OP_LE:
        return OP_GE;
    case OP_GT:
        return OP_LT;
    case OP_GE:
        return OP_LE;
    default:
        return op;
    }
}

static int eval_cmp(ev *e, const pn *n, int *out) {
    const pn *a = n->arg[0], *b = n->arg[1];
    int op = n->op;
    if (b->type == T_NODES) {
        const pn *t = a;
        a = b;
        b = t;
        op = flip(op);
    }
    if (a->type == T_NODES) {
        val v;
        nodes_init(&v.ns);
        if (eval(e, a, &v))
            return -1;
        *out = 0;
        if (b->type == T_BOOL) {
            int bb;
            if (eval_bool(e, b, &bb)) {
                nodes_free(&v.ns);
                return -1;
            }
            *out = num_cmp(op, v.ns.n > 0, bb);
        } else if (b->type == T_NUM || (op != OP_EQ && op != OP_NE)) {
            double x;
            if (eval_num(e, b, &x)) {
                nodes_free(&v.ns);
                return -1;
            }
            for (size_t i = 0; i < v.ns.n && !*out; i++)
                *out = num_cmp(op, str_number(e, node_string(e, v.ns.v[i])), x);
        } else {
            str x;
            if (eval_str(e, b, &x)) {
                nodes_free(&v.ns);
                return -1;
            }
            for (size_t i = 0; i < v.ns.n && !*out; i++) {
                int eq = str_eq(node_string(e, v.ns.v[i]), x);
                *out = op == OP_EQ ? eq : !eq;
            }
        }
        nodes_free(&v.ns);
        return 0;
    }
    if (op == OP_EQ || op == OP_NE) {
        int eq;
        if (a->type == T_BOOL || b->type == T_BOOL) {
            int x, y;
            if (eval_bool(e, a, &x) || eval_bool(e, b, &y))
                return -1;
            eq = x == y;
        } else if (a->type == T_NUM || b->type == T_NUM) {
            double x, y;
            if (eval_num(e, a, &x) || eval_num(e, b, &y))
                return -1;
            eq = x == y;
            if (op == OP_NE) {
                *out = x != y;
                return 0;
            }
        } else {
            str x, y;
            if (eval_str(e, a, &x) || eval_str(e, b, &y))
                return -1;
            eq = str_eq(x, y);
        }
        *out = op == OP_EQ ? eq : !eq;
        return 0;
    }
    double x, y;
    if (eval_num(e, a, &x) || eval_num(e, b, &y))
        return -1;
    *out = num_cmp(op, x, y);
    return 0;
}

static int eval_fn(ev *e, const pn *n, val *out) {
    str s, t;
    switch (n->fn) {
    case F_STRING:
        if (!n->nargs) {
            out->s = node_string(e, e->ctx);
            return 0;
        }
        return eval_str(e, n->arg[0], &out->s);
    case F_CONCAT: {
        str parts[MAX_ARGS];
        size_t total = 0;
        char *buf;
        for (int i = 0; i < n->nargs; i++) {
            if (eval_str(e, n->arg[i], &parts[i]))
                return -1;
            total += parts[i].n;
        }
        buf = arena_alloc(&e->mem, total + 1);
        if (!buf)
            return -1;
        total = 0;
        for (int i = 0; i < n->nargs; i++) {
            memcpy(buf + total, parts[i].s, parts[i].n);
            total += parts[i].n;
        }
        out->s = (str){buf, total};
        return 0;
    }
    case F_STARTS_WITH:
        if (eval_str(e, n->arg[0], &s) || eval_str(e, n->arg[1], &t))
            return -1;
        out->b = t.n <= s.n && !memcmp(s.s, t.s, t.n);
        return 0;
    case F_CONTAINS:
        if (eval_str(e, n->arg[0], &s) || eval_str(e, n->arg[1], &t))
            return -1;
        out->b = find(s, t) != NULL;
        return 0;
    case F_SUBSTRING_BEFORE:
    case F_SUBSTRING_AFTER: {
        const char *at;
        if (eval_str(e, n->arg[0], &s) || eval_str(e, n->arg[1], &t))
            return -1;
        at = find(s, t);
        if (!at)
            out->s = (str){"", 0};
        else if (n->fn == F_SUBSTRING_BEFORE)
            out->s = (str){s.s, (size_t)(at - s.s)};
        else
            out->s = (str){at + t.n, s.n - (size_t)(at - s.s) - t.n};
        return 0;
    }
    case F_SUBSTRING: {
        /* As xmlXPathSubstringFunction (libxml2 2.9). */
        double in, le = 0;
        int i = 1, j = INT_MAX;
        if (eval_str(e, n->arg[0], &s) || eval_num(e, n->arg[1], &in) ||
            (n->nargs == 3 && eval_num(e, n->arg[2], &le)))
            return -1;
        if (!(in < INT_MAX)) {
            i = INT_MAX;
        } else if (in >= 1.0) {
            i = (int)in;
            if (in - floor(in) >= 0.5)
                i += 1;
        }
        if (n->nargs == 3) {
            double rin = floor(in), rle = floor(le), end;
            if (in - rin >= 0.5)
                rin += 1.0;
            if (le - rle >= 0.5)
                rle += 1.0;
            end = rin + rle;
            if (!(end >= 1.0))
                j = 1;
            else if (end < INT_MAX)
                j = (int)end;
        }
        if (i < j) {
            size_t from = utf8_offset(s, (size_t)(i - 1));
            str rest = {s.s + from, s.n - from};
            size_t to = utf8_offset(rest, (size_t)(j - i));
            out->s = (str){rest.s, to};
        } else {
            out->s = (str){"", 0};
        }
        return 0;
    }
    case F_STRING_LENGTH:
        if (!n->nargs)
            s = node_string(e, e->ctx);
        else if (eval_str(e, n->arg[0], &s))
            return -1;
        out->num = (double)utf8_len(s);
        return 0;
    case F_NORMALIZE_SPACE: {
        char *buf;
        size_t k = 0;
        int space = 0;
        if (!n->nargs)
            s = node_string(e, e->ctx);
        else if (eval_str(e, n->arg[0], &s))
            return -1;
        buf = arena_alloc(&e->mem, s.n + 1);
        if (!buf)
            return -1;
        for (size_t i = 0; i < s.n; i++) {
            if (is_blank(s.s[i])) {
                space = k > 0;
                continue;
            }
            if (space)
                buf[k++] = ' ';
            space = 0;
            buf[k++] = s.s[i];
        }
        out->s = (str){buf, k};
        return 0;
    }
    case F_NOT:
        if (eval_bool(e, n->arg[0], &out->b))
            return -1;
        out->b = !out->b;
        return 0;
    case F_BOOLEAN:
        return eval_bool(e, n->arg[0], &out->b);
    case F_TRUE:
    case F_FALSE:
        out->b = n->fn == F_TRUE;
        return 0;
    case F_NUMBER:
        if (!n->nargs) {
            out->num = str_number(e, node_string(e, e->ctx));
            return 0;
        }
        return eval_num(e, n->arg[0], &out->num);
    case F_POSITION:
        out->num = e->position;
        return 0;
    case F_COUNT: {
        val v;
        nodes_init(&v.ns);
        if (eval(e, n->arg[0], &v))
            return -1;
        out->num = (double)v.ns.n;
        nodes_free(&v.ns);
        return 0;
    }
    default:
        return -1;
    }
}

/* As xmlXPathAddValues and the others: IEEE arithmetic, fmod for mod. */
static int eval_arith(ev *e, const pn *n, double *out) {
    double a, b;
    if (eval_num(e, n->arg[0], &a))
        return -1;
    if (n->nargs == 1) {
        *out = -a;
        return 0;
    }
    if (eval_num(e, n->arg[1], &b))
        return -1;
    switch (n->op) {
    case A_ADD:
        *out = a + b;
        break;
    case A_SUB:
        *out = a - b;
        break;
    case A_MUL:
        *out = a * b;
        break;
    case A_DIV:
        *out = a / b;
        break;
    default:
        *out = fmod(a, b);
    }
    return 0;
}

static int eval(ev *e, const pn *n, val *out) {
    switch (n->kind) {
    case N_ARITH:
        return eval_arith(e, n, &out->num);
    case N_OR:
    case N_AND:
        for (int i = 0; i < n->nargs; i++) {
            int b;
            if (eval_bool(e, n->arg[i], &b))
                return -1;
            if (b == (n->kind == N_OR)) {
                out->b = b;
                return 0;
            }
        }
        out->b = n->kind == N_AND;
        return 0;
    case N_CMP:
        return eval_cmp(e, n, &out->b);
    case N_STR:
        out->s = (str){n->str, n->len};
        return 0;
    case N_NUM:
        out->num = n->num;
        return 0;
    case N_PATH:
        return eval_path(n, e->ctx, &out->ns);
    default:
        return eval_fn(e, n, out);
    }
}

int xj_pred_eval(const xj_pred *p, const xmlNode *node, int position) {
    ev e = {.ctx = node, .position = position};
    int rc, pass = 0;
    if (p->root->type == T_NUM) {
        double d;
        rc = eval_num(&e, p->root, &d);
        pass = d == position;
    } else {
        rc = eval_bool(&e, p->root, &pass);
    }
    if (e.mem.failed)
        rc = -1;
    arena_free(&e.mem);
    return rc ? -1 : pass;
}
