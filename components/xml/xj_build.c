/*
 * JSON to XML: the inverse of the mapping in xj_convert.c (docs/xml.md),
 * building a libxml2 tree, and its serialisation.
 */
#include "xj.h"

#include <libxml/xmlsave.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bd {
    const xj_opts *o;
    xj_err *e;
    xmlDocPtr doc;
    int generated;  /* prefixes made up for {uri} names: ns1, ns2, ... */
    char path[512]; /* where in the value, for messages */
    size_t plen;
} bd;

/* ---- the path in messages ---- */

static size_t path_push(bd *b, const char *fmt, const char *key, size_t i) {
    size_t at = b->plen;
    int n;
    if (key)
        n = snprintf(b->path + at, sizeof(b->path) - at, fmt, key);
    else
        n = snprintf(b->path + at, sizeof(b->path) - at, fmt, i);
    if (n > 0) {
        b->plen += (size_t)n;
        if (b->plen >= sizeof(b->path))
            b->plen = sizeof(b->path) - 1;
    }
    return at;
}

static void path_pop(bd *b, size_t at) {
    b->plen = at;
    b->path[at] = 0;
}

static int fail_at(bd *b, const char *what) {
    return xj_fail(b->e, XJ_EINVAL, "value%s: %s", b->path, what);
}

/* ---- values ---- */

/* Whether s (n bytes of UTF-8) holds only characters XML 1.0 allows. */
static int valid_chars(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p, cp;
        int len;
        if (c < 0x80) {
            cp = c;
            len = 1;
        } else if ((c & 0xe0) == 0xc0) {
            cp = c & 0x1f;
            len = 2;
        } else if ((c & 0xf0) == 0xe0) {
            cp = c & 0x0f;
            len = 3;
        } else if ((c & 0xf8) == 0xf0) {
            cp = c & 0x07;
            len = 4;
        } else {
            return 0;
        }
        if (end - p < len)
            return 0;
        for (int i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (!(cp == 0x9 || cp == 0xa || cp == 0xd ||
              (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) ||
              (cp >= 0x10000 && cp <= 0x10ffff)))
            return 0;
        p += len;
    }
    return 1;
}

/* The text of a scalar into buf (numbers) or borrowed from v (strings).
 * Returns 1 with *s and *n set, 0 for null, -1 with an error. */
static int scalar_text(bd *b, const json_t *v, char *buf, size_t size,
                       const char **s, size_t *n) {
    switch (json_typeof(v)) {
    case JSON_STRING:
        *s = json_string_value(v);
        *n = json_string_length(v);
        if (!valid_chars(*s, *n))
            return fail_at(b, "the string holds a character XML 1.0 does not "
                              "allow (a control character or NUL)");
        return 1;
    case JSON_INTEGER:
        *n = (size_t)snprintf(buf, size, "%" JSON_INTEGER_FORMAT,
                              json_integer_value(v));
        *s = buf;
        return 1;
    case JSON_REAL: {
        /* The shortest text that reads back as the same double. */
        double d = json_real_value(v);
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, d);
            if (strtod(buf, NULL) == d)
                break;
        }
        *s = buf;
        *n = strlen(buf);
        return 1;
    }
    case JSON_TRUE:
        *s = "true";
        *n = 4;
        return 1;
    case JSON_FALSE:
        *s = "false";
        *n = 5;
        return 1;
    case JSON_NULL:
        return 0;
    default:
        return fail_at(b, "expected a string, number, boolean or null");
    }
}

/* ---- names ---- */

static int ncname(const char *s, size_t n) {
    char buf[256];
    char *tmp = n < sizeof(buf) ? buf : malloc(n + 1);
    int ok;
    if (!tmp)
        return 0;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    ok = n > 0 && xmlValidateNCName((const xmlChar *)tmp, 0) == 0;
    if (tmp != buf)
        free(tmp);
    return ok;
}

static const char *bound_uri(const xj_opts *o, const char *prefix, size_t n) {
    for (size_t i = 0; i < o->nns; i++)
        if (strlen(o->ns[i].prefix) == n && !memcmp(o->ns[i].prefix, prefix, n))
            return o->ns[i].uri;
    return NULL;
}

/* A prefixed namespace for uri in scope at node, declared on node when
 * there is none (attributes cannot use the default namespace; elements
 * can, with want_default). */
static xmlNsPtr ns_for_uri(bd *b, xmlNodePtr node, const char *uri,
                           int want_default) {
    xmlNsPtr ns = xmlSearchNsByHref(b->doc, node, (const xmlChar *)uri);
    char prefix[32];
    if (ns && (ns->prefix || want_default))
        return ns;
    for (;;) {
        snprintf(prefix, sizeof(prefix), "ns%d", ++b->generated);
        if (!bound_uri(b->o, prefix, strlen(prefix)) &&
            !xmlSearchNs(b->doc, node, (const xmlChar *)prefix))
            break;
    }
    ns = xmlNewNs(node, (const xmlChar *)uri, (const xmlChar *)prefix);
    if (!ns)
        xj_fail(b->e, XJ_ENOMEM, "out of memory");
    return ns;
}

/* Splits a key into a local name and a namespace in scope at node
 * (declaring one for a {uri} name if needed). Returns 0 with *local (a
 * malloc'd copy) and *ns set, or -1. */
static int resolve_name(bd *b, xmlNodePtr node, const char *key, int attr,
                        char **local, xmlNsPtr *ns) {
    const char *colon, *l = key;
    size_t ln;
    *ns = NULL;
    *local = NULL;

    if (key[0] == '{') {
        const char *close = strchr(key, '}');
        if (!close || close == key + 1 || !ncname(close + 1, strlen(close + 1)))
            return fail_at(b, "a {uri}name needs a URI and an XML name");
        char *uri = strndup(key + 1, (size_t)(close - key - 1));
        if (!uri)
            return xj_fail(b->e, XJ_ENOMEM, "out of memory");
        if (!strcmp(uri, (const char *)XML_XML_NAMESPACE))
            *ns = xmlSearchNs(b->doc, node, (const xmlChar *)"xml");
        else
            *ns = ns_for_uri(b, node, uri, !attr);
        free(uri);
        if (!*ns)
            return -1;
        l = close + 1;
    } else if ((colon = strchr(key, ':'))) {
        size_t pn = (size_t)(colon - key);
        if (!ncname(key, pn) || !ncname(colon + 1, strlen(colon + 1)))
            return fail_at(b, "not an XML name (prefix:name)");
        char prefix[256];
        if (pn >= sizeof(prefix))
            return fail_at(b, "the prefix is too long");
        memcpy(prefix, key, pn);
        prefix[pn] = 0;
        /* In scope: the bindings (declared on the root) and @xmlns:p
         * declarations of this element and its ancestors. */
        *ns = xmlSearchNs(b->doc, node, (const xmlChar *)prefix);
        if (!*ns)
            return xj_fail(b->e, XJ_EINVAL,
                           "value%s: the prefix '%s' is not bound: add it to "
                           "the namespaces option",
                           b->path, prefix);
        l = colon + 1;
    } else {
        if (!ncname(key, strlen(key)))
            return fail_at(b, "the key is not an XML name");
        /* Unprefixed element names are in the default namespace in
         * scope, if any (a "" binding, or an @xmlns); attributes never
         * are. */
        if (!attr)
            *ns = xmlSearchNs(b->doc, node, NULL);
    }
    ln = strlen(l);
    *local = strndup(l, ln);
    if (!*local)
        return xj_fail(b->e, XJ_ENOMEM, "out of memory");
    return 0;
}

/* ---- elements ---- */

static int fill(bd *b, xmlNodePtr node, const json_t *v, int depth);

static int add_text(bd *b, xmlNodePtr node, const json_t *v) {
    char buf[64];
    const char *s = NULL;
    size_t n = 0;
    int rc = scalar_text(b, v, buf, sizeof(buf), &s, &n);
    if (rc <= 0)
        return rc;
    if (!n)
        return 0;
    xmlNodePtr t = xmlNewDocTextLen(b->doc, (const xmlChar *)s, (int)n);
    if (!t || !xmlAddChild(node, t)) {
        xmlFreeNode(t);
        return xj_fail(b->e, XJ_ENOMEM, "out of memory");
    }
    return 0;
}

static int add_attribute(bd *b, xmlNodePtr node, const char *name,
                         const json_t *v) {
    char buf[64], *local;
    const char *s = NULL;
    size_t n = 0;
    xmlNsPtr ns;
    int rc;

    if (json_is_object(v) || json_is_array(v))
        return fail_at(b, "an attribute takes a string, number, boolean or "
                          "null");
    /* "@xmlns" and "@xmlns:p" declare namespaces. */
    if (!strcmp(name, "xmlns") || !strncmp(name, "xmlns:", 6)) {
        const char *prefix = name[5] ? name + 6 : NULL;
        if (!json_is_string(v) || (prefix && !ncname(prefix, strlen(prefix))))
            return fail_at(b, "a namespace declaration takes a URI string");
        if (!valid_chars(json_string_value(v), json_string_length(v)))
            return fail_at(b, "the URI holds a character XML does not allow");
        if (!xmlNewNs(node, (const xmlChar *)json_string_value(v),
                      (const xmlChar *)prefix))
            return fail_at(b, "the namespace is declared twice");
        return 0;
    }
    rc = scalar_text(b, v, buf, sizeof(buf), &s, &n);
    if (rc <= 0)
        return rc;
    if (resolve_name(b, node, name, 1, &local, &ns))
        return -1;
    char *value = strndup(s, n);
    if (!value || !xmlSetNsProp(node, ns, (const xmlChar *)local,
                                (const xmlChar *)value)) {
        free(local);
        free(value);
        return xj_fail(b->e, XJ_ENOMEM, "out of memory");
    }
    free(local);
    free(value);
    return 0;
}

static int is_xmlns_key(bd *b, const char *key) {
    size_t lp = strlen(b->o->attr_prefix);
    if (!lp || strncmp(key, b->o->attr_prefix, lp))
        return 0;
    key += lp;
    return !strcmp(key, "xmlns") || !strncmp(key, "xmlns:", 6);
}

/* Declares the namespaces an element's content declares (@xmlns,
 * @xmlns:p), before its own name and its attributes are resolved. */
static int declare_namespaces(bd *b, xmlNodePtr el, const json_t *v) {
    const char *key;
    const json_t *member;
    if (!json_is_object(v))
        return 0;
    json_object_foreach((json_t *)v, key, member) {
        if (!is_xmlns_key(b, key))
            continue;
        size_t at = path_push(b, ".%s", key, 0);
        if (add_attribute(b, el, key + strlen(b->o->attr_prefix), member))
            return -1;
        path_pop(b, at);
    }
    return 0;
}

/* Adds a child element named key to parent, with content v. */
static int add_element(bd *b, xmlNodePtr parent, const char *key,
                       const json_t *v, int depth) {
    xmlNodePtr el;
    char *local;
    xmlNsPtr ns;

    if (depth >= XJ_MAX_DEPTH)
        return xj_fail(b->e, XJ_ETOOBIG,
                       "value%s: nested deeper than %d elements", b->path,
                       XJ_MAX_DEPTH);
    el = xmlNewDocNode(b->doc, NULL, (const xmlChar *)"x", NULL);
    if (!el || !xmlAddChild(parent, el)) {
        xmlFreeNode(el);
        return xj_fail(b->e, XJ_ENOMEM, "out of memory");
    }
    if (declare_namespaces(b, el, v) ||
        resolve_name(b, el, key, 0, &local, &ns))
        return -1;
    xmlNodeSetName(el, (const xmlChar *)local);
    free(local);
    xmlSetNs(el, ns);
    return fill(b, el, v, depth + 1);
}

static int add_member(bd *b, xmlNodePtr node, const char *key, const json_t *v,
                      int depth) {
    const char *pre = b->o->attr_prefix;
    size_t lp = strlen(pre);
    if (!strcmp(key, b->o->text_key)) {
        if (json_is_object(v) || json_is_array(v))
            return fail_at(b, "text takes a string, number, boolean or null");
        return add_text(b, node, v);
    }
    if (lp && !strncmp(key, pre, lp))
        return add_attribute(b, node, key + lp, v);
    if (json_is_array(v)) {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item) {
            size_t at = path_push(b, "[%zu]", NULL, i);
            if (json_is_array(item))
                return fail_at(b, "an array inside an array has no element "
                                  "name");
            if (add_element(b, node, key, item, depth))
                return -1;
            path_pop(b, at);
        }
        return 0;
    }
    return add_element(b, node, key, v, depth);
}

/* Fills element node with the content v. */
static int fill(bd *b, xmlNodePtr node, const json_t *v, int depth) {
    const char *key;
    const json_t *member;
    if (json_is_array(v))
        return fail_at(b, "an array needs a member name: write "
                          "{\"item\": [...]} for <item> elements");
    if (!json_is_object(v))
        return add_text(b, node, v);
    json_object_foreach((json_t *)v, key, member) {
        size_t at;
        if (is_xmlns_key(b, key))
            continue; /* declared already */
        at = path_push(b, ".%s", key, 0);
        if (add_member(b, node, key, member, depth))
            return -1;
        path_pop(b, at);
    }
    return 0;
}

static int qname(const char *s) {
    const char *colon = strchr(s, ':');
    if (!colon)
        return ncname(s, strlen(s));
    return ncname(s, (size_t)(colon - s)) &&
           ncname(colon + 1, strlen(colon + 1));
}

xmlDocPtr xj_json_to_doc(const json_t *value, const char *root,
                         const xj_opts *o, xj_err *e) {
    bd b = {.o = o, .e = e};
    const json_t *content = value;
    xmlNodePtr el;
    char *local;
    xmlNsPtr ns;

    if (root) {
        if (root[0] != '{' && !qname(root)) {
            xj_fail(e, XJ_EINVAL, "option root: '%s' is not an XML name", root);
            return NULL;
        }
    } else {
        if (!json_is_object(value) || json_object_size(value) != 1) {
            xj_fail(e, XJ_EINVAL,
                    "value must be an object with one member, the root "
                    "element (or give the root option)");
            return NULL;
        }
        void *it = json_object_iter((json_t *)value);
        root = json_object_iter_key(it);
        content = json_object_iter_value(it);
        if (!root)
            return NULL;
        path_push(&b, ".%s", root, 0);
        if (json_is_array(content)) {
            fail_at(&b, "a document has one root element, not an array");
            return NULL;
        }
    }

    b.doc = xmlNewDoc((const xmlChar *)"1.0");
    el = b.doc ? xmlNewDocNode(b.doc, NULL, (const xmlChar *)"x", NULL) : NULL;
    if (!el) {
        xmlFreeDoc(b.doc);
        xj_fail(e, XJ_ENOMEM, "out of memory");
        return NULL;
    }
    xmlDocSetRootElement(b.doc, el);
    /* Every binding is declared on the root. */
    for (size_t i = 0; i < o->nns; i++) {
        if (!strcmp(o->ns[i].prefix, "xml"))
            continue;
        if (!xmlNewNs(el, (const xmlChar *)o->ns[i].uri,
                      *o->ns[i].prefix ? (const xmlChar *)o->ns[i].prefix
                                       : NULL)) {
            xj_fail(e, XJ_ENOMEM, "out of memory");
            goto fail;
        }
    }
    if (declare_namespaces(&b, el, content) ||
        resolve_name(&b, el, root, 0, &local, &ns))
        goto fail;
    xmlNodeSetName(el, (const xmlChar *)local);
    free(local);
    xmlSetNs(el, ns);
    if (fill(&b, el, content, 1))
        goto fail;
    return b.doc;

fail:
    xmlFreeDoc(b.doc);
    return NULL;
}

char *xj_doc_to_text(xmlDocPtr doc, int pretty, int declaration, size_t *len,
                     xj_err *e) {
    xmlBufferPtr buf = xmlBufferCreate();
    xmlSaveCtxtPtr save;
    char *out;
    int opts =
        (pretty ? XML_SAVE_FORMAT : 0) | (declaration ? 0 : XML_SAVE_NO_DECL);

    if (!buf) {
        xj_fail(e, XJ_ENOMEM, "out of memory");
        return NULL;
    }
    save = xmlSaveToBuffer(buf, "UTF-8", opts);
    if (!save || xmlSaveDoc(save, doc) < 0) {
        if (save)
            xmlSaveClose(save);
        xmlBufferFree(buf);
        xj_fail(e, XJ_ENOMEM, "out of memory");
        return NULL;
    }
    xmlSaveClose(save);
    *len = (size_t)xmlBufferLength(buf);
    out = malloc(*len + 1);
    if (!out) {
        xmlBufferFree(buf);
        xj_fail(e, XJ_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(out, xmlBufferContent(buf), *len);
    out[*len] = 0;
    xmlBufferFree(buf);
    return out;
}
