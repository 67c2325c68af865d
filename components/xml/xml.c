/*
 * xml: converts XML to JSON and back, queries it with XPath and transforms
 * it with XSLT, on libxml2 and libxslt. Untrusted documents are parsed
 * safely (no entities, no DTD loading, no network; see xj_parse.c), and a
 * large document with a `select` is streamed (xj_stream.c). docs/xml.md
 * describes every action and option.
 *
 * Actions:
 *   xml.to_json    a document, or the nodes a select picks, as JSON
 *   xml.from_json  JSON as an XML document, a string or a blob
 *   xml.xpath      an XPath expression's result
 *   xml.xslt       an XSLT 1.0 transformation's output
 */
#include "xml_actions.h"

#include <dlfcn.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxslt/xslt.h>
#include <libxslt/xsltutils.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const ferry_api *xml_api;

/* ---- errors ---- */

int xml_fail(ferry_ctx *ctx, const xj_err *e) {
    int code;
    int retry = 0;
    switch (e->code) {
    case XJ_EPARSE:
        code = FERRY_EPARSE;
        break;
    case XJ_EUNSAFE:
        code = FERRY_EUNSUPPORTED;
        break;
    case XJ_EINVAL:
    case XJ_EXPATH:
        code = FERRY_EINVAL;
        break;
    case XJ_ENOMEM:
        code = FERRY_ENOMEM;
        retry = 1;
        break;
    case XJ_EIO:
        code = FERRY_EIO;
        retry = 1;
        break;
    case XJ_ECANCELLED:
        code = FERRY_ECANCELLED;
        break;
    case XJ_ETOOBIG:
        code = FERRY_ETOOBIG;
        break;
    default:
        code = FERRY_EINTERNAL;
        break;
    }
    return xml_api->set_error(ctx, code, retry, "%s",
                              e->msg[0] ? e->msg : "failed");
}

/* ---- messages ---- */

static xml_messages *active;
static char line[512];
static size_t line_len;

/* libxml2 and libxslt say where ("runtime error: file ... element
 * value-of", "compilation error: ...") on one line and what on another:
 * the summary is the first line that says what, with the first that says
 * where in brackets. */
static int says_where(const char *l) {
    return !strncmp(l, "runtime error", 13) ||
           !strncmp(l, "compilation error", 17) || !strcmp(l, "error") ||
           !strcmp(l, "warning");
}

static void flush_line(void) {
    xml_messages *m = active;
    while (line_len &&
           (line[line_len - 1] == ' ' || line[line_len - 1] == '\n'))
        line_len--;
    line[line_len] = 0;
    line_len = 0;
    if (!m || !line[0])
        return;
    if (m->log && m->n < 100)
        xml_api->log(m->ctx, FERRY_LOG_WARN, NULL, "%s", line);
    m->n++;
    if (says_where(line)) {
        if (!m->where[0] && strchr(line, ' '))
            snprintf(m->where, sizeof(m->where), "%.*s",
                     (int)sizeof(m->where) - 1, line);
    } else if (!m->what[0]) {
        snprintf(m->what, sizeof(m->what), "%.*s", (int)sizeof(m->what) - 1,
                 line);
    }
    if (m->what[0] && m->where[0])
        snprintf(m->first, sizeof(m->first), "%s (%s)", m->what, m->where);
    else
        snprintf(m->first, sizeof(m->first), "%s",
                 m->what[0] ? m->what : m->where);
}

static void on_generic(void *ud, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    (void)ud;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    for (const char *p = buf; *p; p++) {
        if (*p == '\n') {
            flush_line();
            continue;
        }
        if (line_len + 1 < sizeof(line))
            line[line_len++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    }
}

static void on_structured(void *ud, xmlErrorPtr err) {
    (void)ud;
    if (err && err->message && err->level >= XML_ERR_ERROR)
        on_generic(NULL, "%s\n", err->message);
}

/*
 * Once libxml2 and libxslt have been used, they hold process-wide state
 * (the parser's globals, libxslt's registered modules) that only
 * xmlCleanupParser and xsltCleanupGlobals free, and those would pull it
 * from under any other component of the process using the same
 * libraries. So the first action marks both libraries never to be
 * unloaded (RTLD_NODELETE on the loaded objects); this module itself can
 * still be unloaded and replaced.
 */
static void pin(void *symbol) {
    Dl_info info;
    if (dladdr(symbol, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

static void pin_libraries(void) {
    static int pinned;
    if (pinned)
        return;
    pinned = 1;
    pin((void *)xmlInitParser);
    pin((void *)xsltInit);
}

/* The handlers in place before an action, put back after it: another
 * component of the process may have set its own. */
static xmlGenericErrorFunc saved_generic, saved_xslt;
static void *saved_generic_ctx, *saved_xslt_ctx, *saved_structured_ctx;
static xmlStructuredErrorFunc saved_structured;

void xml_messages_begin(xml_messages *m, ferry_ctx *ctx, int log) {
    pin_libraries();
    memset(m, 0, sizeof(*m));
    m->ctx = ctx;
    m->log = log;
    active = m;
    line_len = 0;
    xmlInitParser();
    saved_generic = xmlGenericError;
    saved_generic_ctx = xmlGenericErrorContext;
    saved_structured = xmlStructuredError;
    saved_structured_ctx = xmlStructuredErrorContext;
    saved_xslt = xsltGenericError;
    saved_xslt_ctx = xsltGenericErrorContext;
    xmlSetGenericErrorFunc(NULL, on_generic);
    xmlSetStructuredErrorFunc(NULL, on_structured);
    xsltSetGenericErrorFunc(NULL, on_generic);
}

void xml_messages_end(xml_messages *m) {
    (void)m;
    flush_line();
    active = NULL;
    xmlSetGenericErrorFunc(saved_generic_ctx, saved_generic);
    xmlSetStructuredErrorFunc(saved_structured_ctx, saved_structured);
    xsltSetGenericErrorFunc(saved_xslt_ctx, saved_xslt);
}

/* ---- options ---- */

int xml_opts_read(ferry_ctx *ctx, const json_t *input, xml_opts *o) {
    xj_err e = {0};
    memset(o, 0, sizeof(*o));
    xj_opts_init(&o->o);
    if (xj_opts_from_json(input, &o->o, &o->ns, &o->arrays, &e))
        return xml_fail(ctx, &e);
    return FERRY_OK;
}

void xml_opts_free(xml_opts *o) {
    free(o->ns);
    free(o->arrays);
    o->ns = NULL;
    o->arrays = NULL;
}

/* ---- the document input ---- */

static int doc_read(void *ud, char *buf, int len) {
    xml_doc *d = ud;
    long n = xml_api->blob_read(d->reader, buf, (size_t)len);
    if (n < 0) {
        d->read_error = (int)n;
        return -1;
    }
    return (int)n;
}

static int doc_reopen(void *ud) {
    xml_doc *d = ud;
    xml_api->blob_close(d->reader);
    d->reader = xml_api->blob_open(d->ctx, d->ref);
    return d->reader ? 0 : -1;
}

static int doc_cancelled(void *ud) {
    xml_doc *d = ud;
    return xml_api->cancelled(d->ctx);
}

int xml_doc_open(ferry_ctx *ctx, const json_t *input, const char *name,
                 int stream, xml_doc *d) {
    const json_t *v = json_object_get(input, name);
    memset(d, 0, sizeof(*d));
    d->ctx = ctx;
    d->name = name;
    d->src.what = name;
    d->src.ud = d;
    d->src.cancelled = doc_cancelled;
    if (json_is_string(v)) {
        d->src.data = json_string_value(v);
        d->src.len = json_string_length(v);
        return FERRY_OK;
    }
    if (!json_is_string(json_object_get(v, "$blob")))
        return xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "%s must be a string or a blob reference",
                                  name);
    d->ref = v;
    if (stream) {
        d->reader = xml_api->blob_open(ctx, v);
        if (!d->reader)
            return xml_api->set_error(
                ctx, FERRY_ENOTFOUND, 0, "%s: no blob %s in this execution",
                name, json_string_value(json_object_get(v, "$blob")));
        d->src.read = doc_read;
        d->src.reopen = doc_reopen;
        return FERRY_OK;
    }
    const void *data;
    size_t len;
    int rc = xml_api->blob_data(ctx, v, &data, &len);
    if (rc)
        return xml_api->set_error(
            ctx, rc == FERRY_ENOTFOUND ? FERRY_ENOTFOUND : rc,
            rc == FERRY_ENOMEM || rc == FERRY_EIO, "%s: cannot map blob %s: %s",
            name, json_string_value(json_object_get(v, "$blob")),
            ferry_strerror(rc));
    /* An empty blob maps to no memory at all. */
    d->src.data = len ? data : "";
    d->src.len = len;
    return FERRY_OK;
}

void xml_doc_close(xml_doc *d) {
    if (d->reader)
        xml_api->blob_close(d->reader);
    d->reader = NULL;
}

xmlDocPtr xml_doc_parse(ferry_ctx *ctx, const json_t *input, const char *name,
                        int *rc) {
    xml_doc d;
    xj_err e = {0};
    xmlDocPtr doc;
    *rc = xml_doc_open(ctx, input, name, 0, &d);
    if (*rc)
        return NULL;
    doc = xj_parse_memory(d.src.data, d.src.len, name, &e);
    xml_doc_close(&d);
    if (!doc)
        *rc = xml_fail(ctx, &e);
    return doc;
}

/* ---- description ---- */

static const ferry_input to_json_inputs[] = {
    {"xml", "any", 1, NULL,
     "the document: a string, or a blob reference (streamed when select "
     "allows)"},
    {"select", "string", 0, NULL,
     "XPath selecting the nodes to convert; the output is then an array"},
    {"namespaces", "object", 0, "{}",
     "prefix to namespace URI, for XPath and for names in the output"},
    {"names", "string", 0, "\"local\"",
     "\"local\": local names; \"prefixed\": prefix:name with the prefix "
     "bound to the name's URI in namespaces ({uri}name when none is)"},
    {"attr_prefix", "string", 0, "\"@\"", "prefix of attribute keys"},
    {"text_key", "string", 0, "\"#text\"",
     "key of an element's text when it also has attributes or children"},
    {"coerce_numbers", "boolean", 0, "false",
     "write text in JSON number syntax as a number"},
    {"coerce_booleans", "boolean", 0, "false",
     "write the texts true and false as booleans"},
    {"arrays", "array", 0, "[]",
     "element names always written as arrays, even when they occur once"},
    {"mode", "string", 0, "\"auto\"",
     "\"auto\": stream when select is in the streaming subset; \"stream\": "
     "fail if it is not; \"tree\": always parse the whole document"},
    {"counts", "boolean", 0, "false",
     "with select: output {nodes, selected, candidates} instead of the "
     "array: how many nodes were selected and, when streamed, how many "
     "elements the path matched before its predicates (null from a tree)"},
    {0},
};

static const ferry_input from_json_inputs[] = {
    {"value", "any", 1, NULL, "the JSON to write as XML"},
    {"root", "string", 0, NULL,
     "the root element's name; without it value must be an object with one "
     "member, the root"},
    {"namespaces", "object", 0, "{}",
     "prefix to namespace URI, declared on the root; \"\" is the default "
     "namespace"},
    {"attr_prefix", "string", 0, "\"@\"", "prefix of attribute keys"},
    {"text_key", "string", 0, "\"#text\"", "key of an element's text"},
    {"pretty", "boolean", 0, "false", "indent the output"},
    {"declaration", "boolean", 0, "true",
     "start with <?xml version=\"1.0\" encoding=\"UTF-8\"?>"},
    {"output", "string", 0, "\"string\"",
     "\"string\", or \"blob\" for a blob reference (application/xml)"},
    {0},
};

static const ferry_input xpath_inputs[] = {
    {"xml", "any", 1, NULL, "the document: a string, or a blob reference"},
    {"expression", "string", 1, NULL, "the XPath 1.0 expression"},
    {"namespaces", "object", 0, "{}",
     "prefix to namespace URI, for XPath and for names in the output"},
    {"as", "string", 0, "\"json\"",
     "nodes as converted JSON (\"json\") or as their string values "
     "(\"string\")"},
    {"names", "string", 0, "\"local\"",
     "\"local\": local names; \"prefixed\": prefix:name with the prefix "
     "bound to the name's URI in namespaces ({uri}name when none is)"},
    {"attr_prefix", "string", 0, "\"@\"", "prefix of attribute keys"},
    {"text_key", "string", 0, "\"#text\"",
     "key of an element's text when it also has attributes or children"},
    {"coerce_numbers", "boolean", 0, "false",
     "write text in JSON number syntax as a number"},
    {"coerce_booleans", "boolean", 0, "false",
     "write the texts true and false as booleans"},
    {"arrays", "array", 0, "[]",
     "element names always written as arrays, even when they occur once"},
    {0},
};

static const ferry_input xslt_inputs[] = {
    {"xml", "any", 1, NULL, "the document: a string, or a blob reference"},
    {"stylesheet", "any", 1, NULL,
     "the XSLT 1.0 stylesheet: a string or a blob reference"},
    {"params", "object", 0, "{}",
     "top-level xsl:param values: strings, numbers or booleans"},
    {"output", "string", 0, "\"string\"",
     "\"string\", or \"blob\" for a blob reference"},
    {0},
};

static const ferry_action actions[] = {
    {
        .id = "xml.to_json",
        .label = "XML to JSON",
        .description =
            "Converts an XML document, or the nodes an XPath select picks, "
            "to JSON: elements become objects, repeated elements arrays, "
            "attributes keys with a prefix. With a select in the streaming "
            "subset the document is read in chunks and only the selected "
            "elements are built, one at a time.",
        .inputs = to_json_inputs,
        .output = "{\"root\": value} for the whole document, or an array of "
                  "the selected nodes' values ({nodes, selected, candidates} "
                  "with counts)",
        .run = xml_to_json_run,
        .flags = FERRY_ACTION_IDEMPOTENT,
    },
    {
        .id = "xml.from_json",
        .label = "JSON to XML",
        .description = "Writes JSON as an XML document, with the same "
                       "conventions xml.to_json reads it with.",
        .inputs = from_json_inputs,
        .output = "the document as a string, or a blob reference",
        .run = xml_from_json_run,
        .flags = FERRY_ACTION_IDEMPOTENT,
    },
    {
        .id = "xml.xpath",
        .label = "XPath query",
        .description = "Evaluates an XPath 1.0 expression on a document.",
        .inputs = xpath_inputs,
        .output = "an array for a node set; a number, boolean or string for "
                  "the other results",
        .run = xml_xpath_run,
        .flags = FERRY_ACTION_IDEMPOTENT,
    },
    {
        .id = "xml.xslt",
        .label = "XSLT transform",
        .description = "Transforms a document with an XSLT 1.0 stylesheet. The "
                       "stylesheet cannot read or write files or the network.",
        .inputs = xslt_inputs,
        .output = "the transformation's output as a string, or a blob "
                  "reference",
        .run = xml_xslt_run,
        .flags = FERRY_ACTION_IDEMPOTENT,
    },
    {0},
};

static const ferry_component desc = {
    FERRY_COMPONENT_HEADER,
    .flags = FERRY_COMPONENT_NO_HTTP, /* never calls api->http_request */
    .name = "xml",
    .version = "1.0.0",
    .description = "XML to JSON and back, XPath and XSLT (libxml2, libxslt)",
    .actions = actions,
};

FERRY_EXPORT const ferry_component *
ferry_component_entry(const ferry_api *host) {
    xml_api = host;
    return &desc;
}
