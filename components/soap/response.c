/*
 * Responses: the envelope's version from its namespace (not from the HTTP
 * status or content type, which servers get wrong), a Fault in either
 * shape, and the Body as JSON typed by the operation's output: integers
 * and numbers as JSON numbers, booleans as booleans, elements that may
 * repeat (maxOccurs > 1) always as arrays (empty when absent), xsi:nil as
 * null, attributes under "@name", simple content beside attributes under
 * "#text". What the schema does not declare is converted generically
 * (text as strings, repeated names as arrays). Children are matched by
 * local name: servers are often loose about the namespaces of what they
 * send, and a reader should not fail on that.
 */
#include "soap_core.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sc_fault_clear(sc_fault_info *f) {
    free(f->code);
    free(f->subcode);
    free(f->reason);
    free(f->actor);
    json_decref(f->detail);
    memset(f, 0, sizeof(*f));
}

void sc_response_clear(sc_response *r) {
    json_decref(r->result);
    json_decref(r->header);
    sc_fault_clear(&r->fault);
    memset(r, 0, sizeof(*r));
}

/* ---- scalars ---- */

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The text trimmed of XML whitespace, into buf (or NULL if too long). */
static const char *trimmed(const char *s, char *buf, size_t n) {
    while (is_space(*s))
        s++;
    size_t len = strlen(s);
    while (len && is_space(s[len - 1]))
        len--;
    if (len >= n)
        return NULL;
    memcpy(buf, s, len);
    buf[len] = 0;
    return buf;
}

static json_t *scalar(const char *text, enum sc_kind k) {
    char buf[128];
    const char *t;
    switch (k) {
    case SC_INTEGER: {
        if (!(t = trimmed(text, buf, sizeof(buf))) || !*t)
            break;
        errno = 0;
        char *end;
        long long x = strtoll(t, &end, 10);
        if (!*end && !errno)
            return json_integer(x);
        break;
    }
    case SC_NUMBER: {
        if (!(t = trimmed(text, buf, sizeof(buf))) || !*t ||
            strpbrk(t, "xXnNiI"))
            break;
        errno = 0;
        char *end;
        if (!strpbrk(t, ".eE")) {
            long long x = strtoll(t, &end, 10);
            if (!*end && !errno)
                return json_integer(x);
        }
        errno = 0;
        double d = strtod(t, &end);
        if (!*end && isfinite(d))
            return json_real(d);
        break;
    }
    case SC_BOOLEAN:
        if (!(t = trimmed(text, buf, sizeof(buf))))
            break;
        if (!strcmp(t, "true") || !strcmp(t, "1"))
            return json_true();
        if (!strcmp(t, "false") || !strcmp(t, "0"))
            return json_false();
        break;
    default:
        break;
    }
    /* As sent (INF, NaN, or not what was declared). libxml2 hands out
     * UTF-8 only. */
    return json_string_nocheck(text);
}

static json_t *text_value(xmlNodePtr n, enum sc_kind k) {
    /* The common case, one text child, read in place. */
    if (!n->children)
        return scalar("", k);
    if (n->children->type == XML_TEXT_NODE && !n->children->next &&
        n->children->content)
        return scalar((const char *)n->children->content, k);
    xmlChar *c = xmlNodeGetContent(n);
    json_t *v = scalar(c ? (const char *)c : "", k);
    xmlFree(c);
    return v ? v : json_string("");
}

static int is_nil(const xmlNode *n) {
    for (xmlAttrPtr a = n->properties; a; a = a->next)
        if (a->ns && a->ns->href &&
            !strcmp((const char *)a->ns->href, SC_NS_XSI) &&
            !strcmp((const char *)a->name, "nil")) {
            const char *v =
                a->children ? (const char *)a->children->content : "";
            return !strcmp(v, "true") || !strcmp(v, "1");
        }
    return 0;
}

static int has_elements(xmlNodePtr n) {
    return sc_first_elem(n) != NULL;
}

static int has_plain_attrs(xmlNodePtr n) {
    for (xmlAttrPtr a = n->properties; a; a = a->next)
        if (!a->ns || strcmp((const char *)a->ns->href, SC_NS_XSI))
            return 1;
    return 0;
}

/* Adds v under key: in an array when always_array, or from the second
 * time a key comes. Converted values are never arrays themselves, so an
 * array under a key is always one made here. */
static void put(json_t *obj, const char *key, json_t *v, int always_array) {
    json_t *old = json_object_get(obj, key);
    if (!old) {
        if (always_array) {
            json_t *a = json_array();
            json_array_append_new(a, v);
            v = a;
        }
        json_object_set_new_nocheck(obj, key, v);
    } else if (json_is_array(old)) {
        json_array_append_new(old, v);
    } else {
        json_t *a = json_array();
        json_array_append(a, old);
        json_array_append_new(a, v);
        json_object_set_new_nocheck(obj, key, a);
    }
}

static void put_attrs(json_t *obj, xmlNodePtr n, const sc_type *t) {
    for (xmlAttrPtr a = n->properties; a; a = a->next) {
        if (a->ns && a->ns->href &&
            !strcmp((const char *)a->ns->href, SC_NS_XSI))
            continue;
        char key[256];
        snprintf(key, sizeof(key), "@%s", (const char *)a->name);
        enum sc_kind k = SC_STRING;
        for (size_t i = 0; t && i < t->nattrs; i++)
            if (!strcmp(t->attrs[i].name, (const char *)a->name) &&
                t->attrs[i].type && t->attrs[i].type->simple)
                k = t->attrs[i].type->kind;
        xmlChar *v = xmlNodeGetContent((xmlNodePtr)a);
        json_object_set_new(obj, key, scalar(v ? (const char *)v : "", k));
        xmlFree(v);
    }
}

/* ---- elements ---- */

static json_t *generic(xmlNodePtr n, int depth) {
    if (is_nil(n))
        return json_null();
    if (!has_elements(n) && !has_plain_attrs(n))
        return text_value(n, SC_STRING);
    if (depth > SC_MAX_DEPTH)
        return text_value(n, SC_STRING);
    json_t *o = json_object();
    put_attrs(o, n, NULL);
    int text = 0;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE) {
            put(o, (const char *)c->name, generic(c, depth + 1), 0);
        } else if (c->type == XML_TEXT_NODE && c->content) {
            for (const xmlChar *p = c->content; *p && !text; p++)
                text = !is_space((char)*p);
        }
    }
    if (text) {
        /* mixed content: the text pieces joined */
        sc_buf b = {0};
        for (xmlNodePtr c = n->children; c; c = c->next)
            if (c->type == XML_TEXT_NODE && c->content)
                sc_buf_puts(&b, (const char *)c->content);
        json_object_set_new(o, "#text", json_string(b.p ? b.p : ""));
        sc_buf_free(&b);
    }
    return o;
}

static const sc_elem *find_elem(const sc_type *t, const xmlChar *name) {
    for (size_t i = 0; i < t->nelems; i++)
        if (!strcmp(t->elems[i]->name, (const char *)name))
            return t->elems[i];
    return NULL;
}

static json_t *complex(xmlNodePtr n, const sc_type *t, int depth);

json_t *sc_convert(xmlNodePtr n, const sc_type *t, int depth) {
    if (is_nil(n))
        return json_null();
    if (!t || depth > SC_MAX_DEPTH)
        return generic(n, depth);
    if (t->simple)
        return t->kind == SC_ANY ? generic(n, depth) : text_value(n, t->kind);
    return complex(n, t, depth);
}

static json_t *complex(xmlNodePtr n, const sc_type *t, int depth) {
    if (t->text && !t->nattrs && !t->nelems && !has_plain_attrs(n))
        return text_value(n, t->text->simple ? t->text->kind : SC_STRING);
    json_t *o = json_object();
    put_attrs(o, n, t);
    if (t->text) {
        xmlChar *c = xmlNodeGetContent(n);
        json_object_set_new(o, "#text",
                            scalar(c ? (const char *)c : "", t->text->simple
                                                                 ? t->text->kind
                                                                 : SC_STRING));
        xmlFree(c);
    }
    for (xmlNodePtr c = sc_first_elem(n); c; c = sc_next_elem(c)) {
        const sc_elem *e = find_elem(t, c->name);
        if (e)
            put(o, e->name, sc_convert(c, e->type, depth + 1), e->max != 1);
        else
            put(o, (const char *)c->name, generic(c, depth + 1), 0);
    }
    for (size_t i = 0; i < t->nelems; i++) {
        const sc_elem *e = t->elems[i];
        if (e->max != 1 && !json_object_get(o, e->name))
            json_object_set_new(o, e->name, json_array());
    }
    return o;
}

/* ---- faults ---- */

static xmlNodePtr child_local(xmlNodePtr n, const char *local) {
    for (xmlNodePtr c = sc_first_elem(n); c; c = sc_next_elem(c))
        if (!strcmp((const char *)c->name, local))
            return c;
    return NULL;
}

static char *content(xmlNodePtr n) {
    if (!n)
        return NULL;
    xmlChar *c = xmlNodeGetContent(n);
    char *s = strdup(c ? (const char *)c : "");
    xmlFree(c);
    if (!s)
        return NULL;
    /* trim */
    char *p = s;
    while (is_space(*p))
        p++;
    size_t len = strlen(p);
    while (len && is_space(p[len - 1]))
        len--;
    memmove(s, p, len);
    s[len] = 0;
    return s;
}

static int auth_code(const char *local) {
    static const char *const codes[] = {
        "FailedAuthentication",     "InvalidSecurity",
        "InvalidSecurityToken",     "FailedCheck",
        "SecurityTokenUnavailable", "AuthenticationFailure",
        "MessageExpired",           NULL};
    for (int i = 0; codes[i]; i++)
        if (!strcmp(local, codes[i]))
            return 1;
    return 0;
}

/* What a code's QName means: "client", "server", "auth" or "other". */
static const char *classify(xmlNodePtr at, const char *code) {
    const char *colon = strrchr(code, ':');
    const char *local = colon ? colon + 1 : code;
    const char *ns = NULL;
    if (colon) {
        char prefix[64];
        size_t n = (size_t)(colon - code);
        if (n < sizeof(prefix)) {
            memcpy(prefix, code, n);
            prefix[n] = 0;
            xmlNsPtr x = xmlSearchNs(at->doc, at, (const xmlChar *)prefix);
            ns = x ? (const char *)x->href : NULL;
        }
    }
    if ((ns && !strcmp(ns, SC_NS_WSSE)) || auth_code(local))
        return "auth";
    size_t dot = strcspn(local, ".");
    if ((dot == 6 && !strncmp(local, "Client", 6)) ||
        (dot == 6 && !strncmp(local, "Sender", 6)))
        return "client";
    if ((dot == 6 && !strncmp(local, "Server", 6)) ||
        (dot == 8 && !strncmp(local, "Receiver", 8)))
        return "server";
    return "other";
}

static json_t *detail_json(xmlNodePtr d, const sc_op *op) {
    if (!d)
        return NULL;
    if (!has_elements(d)) {
        char *t = content(d);
        json_t *v = t && *t ? json_string(t) : NULL;
        free(t);
        return v;
    }
    json_t *o = json_object();
    for (xmlNodePtr c = sc_first_elem(d); c; c = sc_next_elem(c)) {
        const sc_type *t = NULL;
        for (size_t i = 0; op && i < op->nfaults; i++) {
            const sc_elem *e = op->faults[i].elem;
            if (e && !strcmp(e->name, (const char *)c->name)) {
                t = e->type;
                break;
            }
        }
        put(o, (const char *)c->name, sc_convert(c, t, 1), 0);
    }
    return o;
}

static void read_fault(xmlNodePtr f, const sc_op *op, sc_fault_info *fi) {
    /* Either shape, whatever the envelope says: servers mix them. */
    xmlNodePtr code = child_local(f, "faultcode");
    xmlNodePtr subs = NULL;
    if (!code) {
        xmlNodePtr c = child_local(f, "Code");
        code = c ? child_local(c, "Value") : NULL;
        subs = c ? child_local(c, "Subcode") : NULL;
    }
    fi->code = code ? content(code) : strdup("");
    fi->kind = classify(code ? code : f, fi->code ? fi->code : "");
    sc_buf sb = {0};
    for (int i = 0; subs && i < 8; i++) {
        xmlNodePtr v = child_local(subs, "Value");
        char *s = content(v);
        if (s && *s) {
            if (sb.len)
                sc_buf_puts(&sb, "/");
            sc_buf_puts(&sb, s);
            if (!strcmp(classify(v, s), "auth"))
                fi->kind = "auth";
        }
        free(s);
        subs = child_local(subs, "Subcode");
    }
    fi->subcode = sb.len ? strdup(sb.p) : NULL;
    sc_buf_free(&sb);
    xmlNodePtr reason = child_local(f, "faultstring");
    if (!reason) {
        xmlNodePtr r = child_local(f, "Reason");
        xmlNodePtr pick = NULL;
        for (xmlNodePtr t = r ? sc_first_elem(r) : NULL; t;
             t = sc_next_elem(t)) {
            if (strcmp((const char *)t->name, "Text"))
                continue;
            xmlChar *lang = xmlNodeGetLang(t);
            int en = lang && !strncmp((const char *)lang, "en", 2);
            xmlFree(lang);
            if (!pick || en)
                pick = t;
            if (en)
                break;
        }
        reason = pick ? pick : r;
    }
    fi->reason = reason ? content(reason) : strdup("");
    xmlNodePtr actor = child_local(f, "faultactor");
    if (!actor)
        actor = child_local(f, "Node");
    fi->actor = actor ? content(actor) : NULL;
    xmlNodePtr d = child_local(f, "detail");
    if (!d)
        d = child_local(f, "Detail");
    fi->detail = detail_json(d, op);
}

/* ---- the envelope ---- */

int sc_read_response(const char *data, size_t len, const sc_op *op,
                     sc_response *r, sc_err *e) {
    memset(r, 0, sizeof(*r));
    xmlDocPtr doc = sc_parse_xml(data, len, "the response", e);
    if (!doc)
        return -1;
    int rc = -1;
    xmlNodePtr env = xmlDocGetRootElement(doc);
    if (sc_is(env, SC_NS_SOAP11, "Envelope"))
        r->version = 11;
    else if (sc_is(env, SC_NS_SOAP12, "Envelope"))
        r->version = 12;
    else {
        if (env && !strcmp((const char *)env->name, "Envelope"))
            sc_fail(e, FERRY_EPROTO,
                    "the response's Envelope is in namespace '%s', neither "
                    "SOAP 1.1's nor 1.2's",
                    env->ns && env->ns->href ? (const char *)env->ns->href
                                             : "(none)");
        else
            sc_fail(e, FERRY_EPROTO,
                    "the response is not a SOAP envelope (its root element "
                    "is <%s>)",
                    env ? (const char *)env->name : "?");
        goto out;
    }
    const char *ens = r->version == 12 ? SC_NS_SOAP12 : SC_NS_SOAP11;
    xmlNodePtr header = NULL, body = NULL;
    for (xmlNodePtr c = sc_first_elem(env); c; c = sc_next_elem(c)) {
        if (sc_is(c, ens, "Header"))
            header = c;
        else if (sc_is(c, ens, "Body"))
            body = c;
    }
    if (!body) {
        sc_fail(e, FERRY_EPROTO, "the response's envelope has no Body");
        goto out;
    }
    if (header && has_elements(header))
        r->header = generic(header, 0);
    xmlNodePtr first = sc_first_elem(body);
    if (first && !strcmp((const char *)first->name, "Fault") && first->ns &&
        (!strcmp((const char *)first->ns->href, SC_NS_SOAP11) ||
         !strcmp((const char *)first->ns->href, SC_NS_SOAP12))) {
        r->is_fault = 1;
        r->fault.version = r->version;
        read_fault(first, op, &r->fault);
        rc = 0;
        goto out;
    }
    const sc_body *out = op ? &op->out : NULL;
    if (!out) {
        r->result = has_elements(body) ? generic(body, 0) : json_null();
    } else if (!out->present) {
        r->result = json_null(); /* one-way */
    } else if (out->wrapper) {
        if (!first) {
            r->mismatch = 1;
            snprintf(r->mismatch_name, sizeof(r->mismatch_name), "(empty)");
            r->result = json_null();
        } else {
            if (strcmp((const char *)first->name, out->wrapper->name)) {
                r->mismatch = 1;
                snprintf(r->mismatch_name, sizeof(r->mismatch_name), "%s",
                         (const char *)first->name);
            }
            r->result = sc_convert(first, out->content, 0);
        }
    } else {
        r->result = complex(body, out->content, 0);
    }
    rc = r->result ? 0 : sc_fail(e, FERRY_ENOMEM, "out of memory");
out:
    xmlFreeDoc(doc);
    return rc;
}
