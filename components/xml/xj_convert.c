/*
 * XML to JSON: the mapping of docs/xml.md, from a libxml2 node (of a whole
 * tree, or of a subtree xmlTextReaderExpand built) to a jansson value, and
 * the options it takes.
 */
#include "xj.h"

#include <errno.h>
#include <libxml/xpathInternals.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- options ---- */

void xj_opts_init(xj_opts *o) {
    memset(o, 0, sizeof(*o));
    o->attr_prefix = "@";
    o->text_key = "#text";
}

static int opt_bool(const json_t *input, const char *name, int *out,
                    xj_err *e) {
    const json_t *v = json_object_get(input, name);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return xj_fail(e, XJ_EINVAL, "option %s must be true or false", name);
    *out = json_is_true(v);
    return 0;
}

static int opt_string(const json_t *input, const char *name, const char **out,
                      xj_err *e) {
    const json_t *v = json_object_get(input, name);
    if (!v)
        return 0;
    if (!json_is_string(v) ||
        strlen(json_string_value(v)) != json_string_length(v))
        return xj_fail(e, XJ_EINVAL, "option %s must be a string", name);
    *out = json_string_value(v);
    return 0;
}

/* A namespace prefix: an NCName, or "" for the default namespace. */
static int valid_prefix(const char *p) {
    return !*p || xmlValidateNCName((const xmlChar *)p, 0) == 0;
}

int xj_opts_from_json(const json_t *input, xj_opts *o, xj_ns **ns,
                      const char ***arrays, xj_err *e) {
    const char *names = NULL;
    const json_t *v;

    *ns = NULL;
    *arrays = NULL;
    if (opt_string(input, "attr_prefix", &o->attr_prefix, e) ||
        opt_string(input, "text_key", &o->text_key, e) ||
        opt_bool(input, "coerce_numbers", &o->coerce_numbers, e) ||
        opt_bool(input, "coerce_booleans", &o->coerce_booleans, e) ||
        opt_string(input, "names", &names, e))
        return -1;
    if (!*o->text_key)
        return xj_fail(e, XJ_EINVAL, "option text_key must not be empty");
    if (*o->attr_prefix && !strcmp(o->attr_prefix, o->text_key))
        return xj_fail(e, XJ_EINVAL,
                       "options attr_prefix and text_key must differ");
    if (names) {
        if (!strcmp(names, "local"))
            o->prefixed_names = 0;
        else if (!strcmp(names, "prefixed"))
            o->prefixed_names = 1;
        else
            return xj_fail(e, XJ_EINVAL,
                           "option names must be \"local\" or \"prefixed\", "
                           "not \"%s\"",
                           names);
    }

    v = json_object_get(input, "namespaces");
    if (v && !json_is_null(v)) {
        const char *prefix;
        json_t *uri;
        size_t i = 0;
        if (!json_is_object(v))
            return xj_fail(e, XJ_EINVAL,
                           "option namespaces must be an object of prefix "
                           "to namespace URI");
        *ns = calloc(json_object_size(v) + 1, sizeof(**ns));
        if (!*ns)
            return xj_fail(e, XJ_ENOMEM, "out of memory");
        json_object_foreach((json_t *)v, prefix, uri) {
            if (!valid_prefix(prefix))
                return xj_fail(e, XJ_EINVAL,
                               "option namespaces: '%s' is not a valid "
                               "prefix (an XML name without ':')",
                               prefix);
            if (!json_is_string(uri) || !*json_string_value(uri) ||
                strlen(json_string_value(uri)) != json_string_length(uri))
                return xj_fail(e, XJ_EINVAL,
                               "option namespaces: the URI of '%s' must be a "
                               "non-empty string",
                               prefix);
            if (!strcmp(prefix, "xml") &&
                strcmp(json_string_value(uri), (const char *)XML_XML_NAMESPACE))
                return xj_fail(e, XJ_EINVAL,
                               "option namespaces: the prefix 'xml' is bound "
                               "to %s and cannot be rebound",
                               (const char *)XML_XML_NAMESPACE);
            if (!strcmp(prefix, "xmlns"))
                return xj_fail(e, XJ_EINVAL,
                               "option namespaces: the prefix 'xmlns' cannot "
                               "be bound");
            (*ns)[i].prefix = prefix;
            (*ns)[i].uri = json_string_value(uri);
            i++;
        }
        o->ns = *ns;
        o->nns = i;
    }

    v = json_object_get(input, "arrays");
    if (v && !json_is_null(v)) {
        size_t i;
        json_t *name;
        if (!json_is_array(v))
            return xj_fail(e, XJ_EINVAL,
                           "option arrays must be an array of element names");
        *arrays = calloc(json_array_size(v) + 1, sizeof(**arrays));
        if (!*arrays)
            return xj_fail(e, XJ_ENOMEM, "out of memory");
        json_array_foreach(v, i, name) {
            if (!json_is_string(name))
                return xj_fail(e, XJ_EINVAL,
                               "option arrays: item %zu is not a string", i);
            (*arrays)[i] = json_string_value(name);
        }
        o->arrays = *arrays;
        o->narrays = json_array_size(v);
    }
    return 0;
}

/* ---- conversion ---- */

/* Conversion state: the options, scratch buffers for names and text. */
typedef struct cv {
    const xj_opts *o;
    xj_err *e;
    char *name; /* scratch for built names */
    size_t name_cap;
    char *text; /* scratch for concatenated text */
    size_t text_cap;
} cv;

#define CV_MAX_DEPTH 1024

static int reserve(cv *c, char **buf, size_t *cap, size_t need) {
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    char *b = realloc(*buf, n);
    if (!b)
        return xj_fail(c->e, XJ_ENOMEM, "out of memory");
    *buf = b;
    *cap = n;
    return 0;
}

/* Builds a + b + d + f into the name scratch buffer. */
static const char *name4(cv *c, const char *a, const char *b, const char *d,
                         const char *f) {
    const char *parts[4] = {a, b, d, f};
    size_t len[4], n = 0;
    for (int i = 0; i < 4; i++)
        n += len[i] = strlen(parts[i]);
    if (reserve(c, &c->name, &c->name_cap, n + 1))
        return NULL;
    n = 0;
    for (int i = 0; i < 4; i++) {
        memcpy(c->name + n, parts[i], len[i]);
        n += len[i];
    }
    c->name[n] = 0;
    return c->name;
}

/* The name of an element or attribute under the options, after the
 * attribute prefix for attributes. NULL on out of memory. */
static const char *node_name(cv *c, const xmlNode *node, int attr) {
    const char *local = (const char *)node->name;
    const char *pre = attr ? c->o->attr_prefix : "";
    const char *uri;

    if (!c->o->prefixed_names || !node->ns || !node->ns->href)
        return *pre ? name4(c, pre, "", "", local) : local;
    uri = (const char *)node->ns->href;
    for (size_t i = 0; i < c->o->nns; i++) {
        const char *prefix = c->o->ns[i].prefix;
        if (strcmp(c->o->ns[i].uri, uri))
            continue;
        /* An unprefixed binding is the default namespace, which never
         * applies to attributes. */
        if (!*prefix && attr)
            continue;
        return name4(c, pre, prefix, *prefix ? ":" : "", local);
    }
    if (!strcmp(uri, (const char *)XML_XML_NAMESPACE))
        return name4(c, pre, "xml:", "", local);
    if (!name4(c, "{", uri, "}", local))
        return NULL;
    if (*pre) {
        size_t lp = strlen(pre), ln = strlen(c->name);
        if (reserve(c, &c->name, &c->name_cap, lp + ln + 1))
            return NULL;
        memmove(c->name + lp, c->name, ln + 1);
        memcpy(c->name, pre, lp);
    }
    return c->name;
}

/* JSON's number grammar, exactly: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
 * Returns 1 for an integer, 2 for a number with a fraction or exponent, 0
 * for anything else. */
static int number_kind(const char *s, size_t n) {
    size_t i = 0;
    int kind = 1;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return 0;
        kind = 2;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return 0;
        kind = 2;
    }
    return i == n ? kind : 0;
}

/* A text value of n bytes at s (not necessarily NUL terminated), coerced
 * as the options say. */
static json_t *text_json(cv *c, const char *s, size_t n) {
    json_t *v;
    if (c->o->coerce_booleans) {
        if (n == 4 && !memcmp(s, "true", 4))
            return json_true();
        if (n == 5 && !memcmp(s, "false", 5))
            return json_false();
    }
    if (c->o->coerce_numbers && n && n < 400) {
        int kind = number_kind(s, n);
        char tmp[400];
        memcpy(tmp, s, n);
        tmp[n] = 0;
        if (kind == 1) {
            errno = 0;
            long long i = strtoll(tmp, NULL, 10);
            /* An integer beyond 64 bits stays text rather than losing
             * digits. */
            if (!errno)
                return json_integer((json_int_t)i);
        } else if (kind == 2) {
            double d = strtod(tmp, NULL);
            if (isfinite(d))
                return json_real(d);
        }
    }
    /* libxml2 hands out valid UTF-8 without NUL bytes. */
    v = json_stringn_nocheck(s, n);
    if (!v)
        xj_fail(c->e, XJ_ENOMEM, "out of memory");
    return v;
}

static int is_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static int entity_ref_error(cv *c, const xmlNode *n) {
    return xj_fail(c->e, XJ_EUNSAFE,
                   "line %d: the entity reference &%s; is not expanded "
                   "(entities are never loaded or substituted)",
                   (int)xmlGetLineNo((xmlNodePtr)n), (const char *)n->name);
}

/* Concatenates the text and CDATA children of node into c->text; sets
 * *len. Errors on an entity reference. */
static int gather_text(cv *c, const xmlNode *first, size_t *len) {
    size_t n = 0;
    for (const xmlNode *k = first; k; k = k->next) {
        if (k->type == XML_ENTITY_REF_NODE)
            return entity_ref_error(c, k);
        if (k->type != XML_TEXT_NODE && k->type != XML_CDATA_SECTION_NODE)
            continue;
        if (!k->content)
            continue;
        size_t l = strlen((const char *)k->content);
        if (reserve(c, &c->text, &c->text_cap, n + l + 1))
            return -1;
        memcpy(c->text + n, k->content, l);
        n += l;
    }
    if (reserve(c, &c->text, &c->text_cap, n + 1))
        return -1;
    c->text[n] = 0;
    *len = n;
    return 0;
}

/* The text of a node list as a JSON value; the single-text-node case
 * (nearly every element) without a copy. */
static json_t *list_text_json(cv *c, const xmlNode *first) {
    size_t n;
    if (!first)
        return text_json(c, "", 0);
    if (!first->next &&
        (first->type == XML_TEXT_NODE ||
         first->type == XML_CDATA_SECTION_NODE) &&
        first->content)
        return text_json(c, (const char *)first->content,
                         strlen((const char *)first->content));
    if (gather_text(c, first, &n))
        return NULL;
    return text_json(c, c->text, n);
}

static int forced_array(cv *c, const char *name) {
    for (size_t i = 0; i < c->o->narrays; i++)
        if (!strcmp(c->o->arrays[i], name))
            return 1;
    return 0;
}

/* Adds value (stolen, also on failure) under key: a repeated key becomes
 * an array, in document order. Converted values are never arrays, so an
 * array member is always one this function made. */
static int add_member(cv *c, json_t *obj, const char *key, json_t *value,
                      int force) {
    json_t *have = json_object_get(obj, key);
    json_t *a;
    if (!have && !force) {
        if (json_object_set_new_nocheck(obj, key, value))
            return xj_fail(c->e, XJ_ENOMEM, "out of memory");
        return 0;
    }
    if (have && json_is_array(have)) {
        if (json_array_append_new(have, value))
            return xj_fail(c->e, XJ_ENOMEM, "out of memory");
        return 0;
    }
    a = json_array();
    if (!a) {
        json_decref(value);
        return xj_fail(c->e, XJ_ENOMEM, "out of memory");
    }
    if (have && json_array_append(a, have)) {
        json_decref(value);
        json_decref(a);
        return xj_fail(c->e, XJ_ENOMEM, "out of memory");
    }
    if (json_array_append_new(a, value)) {
        json_decref(a);
        return xj_fail(c->e, XJ_ENOMEM, "out of memory");
    }
    if (json_object_set_new_nocheck(obj, key, a))
        return xj_fail(c->e, XJ_ENOMEM, "out of memory");
    return 0;
}

static json_t *element_json(cv *c, const xmlNode *el, int depth);

static int add_attributes(cv *c, json_t *obj, const xmlNode *el) {
    for (const xmlAttr *a = el->properties; a; a = a->next) {
        const char *key = node_name(c, (const xmlNode *)a, 1);
        json_t *v;
        if (!key)
            return -1;
        v = list_text_json(c, a->children);
        if (!v)
            return -1;
        if (add_member(c, obj, key, v, 0))
            return -1;
    }
    return 0;
}

static json_t *element_json(cv *c, const xmlNode *el, int depth) {
    int has_elements = 0;
    json_t *obj;

    if (depth > CV_MAX_DEPTH) {
        xj_fail(c->e, XJ_ETOOBIG, "elements nested deeper than %d",
                CV_MAX_DEPTH);
        return NULL;
    }
    for (const xmlNode *k = el->children; k; k = k->next) {
        if (k->type == XML_ELEMENT_NODE) {
            has_elements = 1;
            break;
        }
    }
    if (!has_elements && !el->properties)
        return list_text_json(c, el->children);

    obj = json_object();
    if (!obj) {
        xj_fail(c->e, XJ_ENOMEM, "out of memory");
        return NULL;
    }
    if (add_attributes(c, obj, el))
        goto fail;

    /* Text: kept as it is beside attributes only; trimmed, and left out
     * when only white space, beside child elements (mixed content and
     * indentation). */
    size_t n;
    if (gather_text(c, el->children, &n))
        goto fail;
    const char *t = c->text;
    if (has_elements) {
        while (n && is_space(*t))
            t++, n--;
        while (n && is_space(t[n - 1]))
            n--;
    }
    if (n) {
        json_t *v = text_json(c, t, n);
        if (!v || add_member(c, obj, c->o->text_key, v, 0))
            goto fail;
    }

    for (const xmlNode *k = el->children; k; k = k->next) {
        if (k->type != XML_ELEMENT_NODE)
            continue;
        json_t *v = element_json(c, k, depth + 1);
        if (!v)
            goto fail;
        const char *key = node_name(c, k, 0);
        if (!key) {
            json_decref(v);
            goto fail;
        }
        if (add_member(c, obj, key, v, forced_array(c, key)))
            goto fail;
    }
    return obj;

fail:
    json_decref(obj);
    return NULL;
}

static json_t *node_json(cv *c, xmlNodePtr node) {
    switch (node->type) {
    case XML_ELEMENT_NODE:
        return element_json(c, node, 0);
    case XML_ATTRIBUTE_NODE:
        return list_text_json(c, node->children);
    case XML_TEXT_NODE:
    case XML_CDATA_SECTION_NODE:
        return text_json(c, node->content ? (const char *)node->content : "",
                         node->content ? strlen((const char *)node->content)
                                       : 0);
    case XML_COMMENT_NODE:
    case XML_PI_NODE: {
        const char *s = node->content ? (const char *)node->content : "";
        json_t *v = json_string(s);
        if (!v)
            xj_fail(c->e, XJ_ENOMEM, "out of memory");
        return v;
    }
    case XML_NAMESPACE_DECL: {
        /* XPath hands namespace nodes out as xmlNs. */
        const xmlNs *ns = (const xmlNs *)node;
        json_t *v = json_string(ns->href ? (const char *)ns->href : "");
        if (!v)
            xj_fail(c->e, XJ_ENOMEM, "out of memory");
        return v;
    }
    case XML_ENTITY_REF_NODE:
        entity_ref_error(c, node);
        return NULL;
    case XML_DOCUMENT_NODE:
    case XML_HTML_DOCUMENT_NODE: {
        xmlNodePtr root = xmlDocGetRootElement((xmlDocPtr)node);
        json_t *obj = json_object(), *v;
        const char *key;
        if (!obj) {
            xj_fail(c->e, XJ_ENOMEM, "out of memory");
            return NULL;
        }
        if (!root)
            return obj;
        v = element_json(c, root, 0);
        key = v ? node_name(c, root, 0) : NULL;
        if (!key) {
            json_decref(v);
            json_decref(obj);
            return NULL;
        }
        if (add_member(c, obj, key, v, forced_array(c, key))) {
            json_decref(obj);
            return NULL;
        }
        return obj;
    }
    default:
        return json_null();
    }
}

json_t *xj_node_to_json(xmlNodePtr node, const xj_opts *o, xj_err *e) {
    cv c = {.o = o, .e = e};
    json_t *v = node_json(&c, node);
    free(c.name);
    free(c.text);
    return v;
}

/* ---- XPath ---- */

/* libxml2's own messages for its XPath error codes (xpath.c), in the
 * order of enum xmlXPathError. */
static const char *const xpath_messages[] = {
    "Ok",
    "Number encoding",
    "Unfinished literal",
    "Start of literal",
    "Expected $ for variable reference",
    "Undefined variable",
    "Invalid predicate",
    "Invalid expression",
    "Missing closing curly brace",
    "Unregistered function",
    "Invalid operand",
    "Invalid type",
    "Invalid number of arguments",
    "Invalid context size",
    "Invalid context position",
    "Memory allocation error",
    "Syntax error",
    "Resource error",
    "Sub resource error",
    "Undefined namespace prefix",
    "Encoding error",
    "Char out of XML range",
    "Invalid or incomplete context",
    "Stack usage error",
    "Forbidden variable",
    "Operation limit exceeded",
    "Recursion limit exceeded",
};

const char *xj_xpath_message(const xmlError *err, char *buf, size_t size) {
    const char *msg = err ? err->message : NULL;
    int code = err ? err->code - XML_XPATH_EXPRESSION_OK : -1;
    size_t n;
    if (!msg || !*msg) {
        if (code >= 0 &&
            code < (int)(sizeof(xpath_messages) / sizeof(xpath_messages[0])))
            msg = xpath_messages[code];
        else
            msg = "XPath error";
    }
    if (err && err->str1 && err->int1 >= 0)
        snprintf(buf, size, "%s (at character %d)", msg, err->int1 + 1);
    else
        snprintf(buf, size, "%s", msg);
    n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    return buf;
}

static void on_xpath_error(void *ud, xmlErrorPtr err) {
    xj_err *e = ud;
    char msg[400];
    if (!err || err->level < XML_ERR_ERROR)
        return;
    /* The caller adds the expression's name; keep the first error. */
    xj_fail(e, XJ_EXPATH, "%s", xj_xpath_message(err, msg, sizeof(msg)));
}

xmlXPathContextPtr xj_xpath_context(xmlDocPtr doc, const xj_opts *o,
                                    xj_err *e) {
    xmlXPathContextPtr x = xmlXPathNewContext(doc);
    if (!x) {
        xj_fail(e, XJ_ENOMEM, "out of memory");
        return NULL;
    }
    x->error = on_xpath_error;
    x->userData = e;
    for (size_t i = 0; i < o->nns; i++) {
        if (!*o->ns[i].prefix || !strcmp(o->ns[i].prefix, "xml"))
            continue;
        if (xmlXPathRegisterNs(x, (const xmlChar *)o->ns[i].prefix,
                               (const xmlChar *)o->ns[i].uri)) {
            xmlXPathFreeContext(x);
            xj_fail(e, XJ_ENOMEM, "out of memory");
            return NULL;
        }
    }
    return x;
}

xmlXPathObjectPtr xj_xpath_eval(xmlDocPtr doc, const char *expr,
                                const xj_opts *o, const char *what, xj_err *e) {
    xj_err xe = {0};
    xmlXPathContextPtr x = xj_xpath_context(doc, o, &xe);
    xmlXPathObjectPtr res = NULL;
    if (x) {
        res = xmlXPathEvalExpression((const xmlChar *)expr, x);
        xmlXPathFreeContext(x);
    }
    if (!res || xe.code) {
        xmlXPathFreeObject(res);
        if (xe.code == XJ_ENOMEM)
            xj_fail(e, XJ_ENOMEM, "out of memory");
        else
            xj_fail(e, XJ_EXPATH, "%s: %s: %s", what,
                    xe.code ? xe.msg : "invalid XPath expression", expr);
        return NULL;
    }
    return res;
}

json_t *xj_xpath_to_json(xmlXPathObjectPtr res, const xj_opts *o, int as_string,
                         xj_err *e) {
    switch (res->type) {
    case XPATH_NODESET: {
        json_t *a = json_array();
        cv c = {.o = o, .e = e};
        int n = res->nodesetval ? res->nodesetval->nodeNr : 0;
        if (!a) {
            xj_fail(e, XJ_ENOMEM, "out of memory");
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            xmlNodePtr node = res->nodesetval->nodeTab[i];
            json_t *v;
            if (as_string) {
                xmlChar *s = xmlXPathCastNodeToString(node);
                v = s ? json_string((const char *)s) : NULL;
                xmlFree(s);
                if (!v)
                    xj_fail(e, XJ_ENOMEM, "out of memory");
            } else {
                v = node_json(&c, node);
            }
            if (!v || json_array_append_new(a, v)) {
                if (v)
                    xj_fail(e, XJ_ENOMEM, "out of memory");
                json_decref(a);
                a = NULL;
                break;
            }
        }
        free(c.name);
        free(c.text);
        return a;
    }
    case XPATH_BOOLEAN:
        return json_boolean(res->boolval);
    case XPATH_NUMBER: {
        double d = res->floatval;
        if (!isfinite(d))
            return json_null();
        if (d == floor(d) && fabs(d) <= 9007199254740992.0)
            return json_integer((json_int_t)d);
        return json_real(d);
    }
    case XPATH_STRING: {
        json_t *v =
            json_string(res->stringval ? (const char *)res->stringval : "");
        if (!v)
            xj_fail(e, XJ_ENOMEM, "out of memory");
        return v;
    }
    default:
        xj_fail(e, XJ_EXPATH, "the XPath result has an unsupported type");
        return NULL;
    }
}
