/*
 * xml.xslt: an XSLT 1.0 transformation with libxslt.
 *
 * The stylesheet and the document are parsed like every other document
 * (xj_parse_memory: no entities, no DTD loading, no network). Nothing else
 * is ever loaded: the document loader libxslt calls for xsl:import,
 * xsl:include and document() refuses every URI, and the security
 * preferences forbid reading and writing files, creating directories and
 * network access (xsl:document and the like), both while compiling the
 * stylesheet (the default preferences, set only for the call) and while
 * transforming (the transformation context's).
 */
#include "xml_actions.h"

#include <libxslt/documents.h>
#include <libxslt/security.h>
#include <libxslt/transform.h>
#include <libxslt/variables.h>
#include <libxslt/xslt.h>
#include <libxslt/xsltInternals.h>
#include <libxslt/xsltutils.h>
#include <stdio.h>
#include <string.h>

static xmlDocPtr refuse_load(const xmlChar *uri, xmlDictPtr dict, int options,
                             void *ctxt, xsltLoadType type) {
    (void)dict;
    (void)options;
    (void)ctxt;
    xsltGenericError(xsltGenericErrorContext,
                     "%s '%s' refused: stylesheets cannot load documents\n",
                     type == XSLT_LOAD_DOCUMENT ? "document()"
                                                : "xsl:import/xsl:include of",
                     uri ? (const char *)uri : "");
    return NULL;
}

static xsltSecurityPrefsPtr forbid_all(void) {
    xsltSecurityPrefsPtr sec = xsltNewSecurityPrefs();
    static const xsltSecurityOption all[] = {
        XSLT_SECPREF_READ_FILE,        XSLT_SECPREF_WRITE_FILE,
        XSLT_SECPREF_CREATE_DIRECTORY, XSLT_SECPREF_READ_NETWORK,
        XSLT_SECPREF_WRITE_NETWORK,
    };
    if (!sec)
        return NULL;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (xsltSetSecurityPrefs(sec, all[i], xsltSecurityForbid)) {
            xsltFreeSecurityPrefs(sec);
            return NULL;
        }
    }
    return sec;
}

/* Passes params to the transformation: strings as literals, numbers and
 * booleans as XPath expressions. */
static int set_params(ferry_ctx *ctx, xsltTransformContextPtr tc,
                      const json_t *params) {
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)params, name, v) {
        char buf[64];
        int rc;
        if (xmlValidateQName((const xmlChar *)name, 0))
            return xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                      "params: '%s' is not an XML name", name);
        switch (json_typeof(v)) {
        case JSON_STRING:
            if (strlen(json_string_value(v)) != json_string_length(v))
                return xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                          "params.%s holds a NUL character",
                                          name);
            rc = xsltQuoteOneUserParam(tc, (const xmlChar *)name,
                                       (const xmlChar *)json_string_value(v));
            break;
        case JSON_INTEGER:
            snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
            rc = xsltEvalOneUserParam(tc, (const xmlChar *)name,
                                      (const xmlChar *)buf);
            break;
        case JSON_REAL:
            snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
            rc = xsltEvalOneUserParam(tc, (const xmlChar *)name,
                                      (const xmlChar *)buf);
            break;
        case JSON_TRUE:
        case JSON_FALSE:
            rc = xsltEvalOneUserParam(
                tc, (const xmlChar *)name,
                (const xmlChar *)(json_is_true(v) ? "true()" : "false()"));
            break;
        default:
            return xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                      "params.%s must be a string, number or "
                                      "boolean",
                                      name);
        }
        if (rc)
            return xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                      "params.%s could not be set", name);
    }
    return FERRY_OK;
}

static const char *content_type(xsltStylesheetPtr style) {
    const char *method = (const char *)style->method;
    if (style->mediaType)
        return (const char *)style->mediaType;
    if (method && !strcmp(method, "text"))
        return "text/plain";
    if (method && !strcmp(method, "html"))
        return "text/html";
    return "application/xml";
}

int xml_xslt_run(ferry_ctx *ctx, const json_t *input) {
    const char *output = json_string_value(json_object_get(input, "output"));
    const json_t *params = json_object_get(input, "params");
    xml_messages msgs;
    xsltSecurityPrefsPtr sec = NULL;
    xsltStylesheetPtr style = NULL;
    xsltTransformContextPtr tc = NULL;
    xmlDocPtr sdoc = NULL, doc = NULL, res = NULL;
    xmlChar *text = NULL;
    int len = 0, rc;

    if (!output)
        output = "string";
    if (strcmp(output, "string") && strcmp(output, "blob"))
        return xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "option output must be \"string\" or "
                                  "\"blob\", not \"%s\"",
                                  output);
    xml_messages_begin(&msgs, ctx, 0);
    sdoc = xml_doc_parse(ctx, input, "stylesheet", &rc);
    if (!sdoc)
        goto done;
    doc = xml_doc_parse(ctx, input, "xml", &rc);
    if (!doc)
        goto done;
    sec = forbid_all();
    if (!sec) {
        rc = xml_api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
        goto done;
    }

    xsltSetLoaderFunc(refuse_load);
    xsltSetDefaultSecurityPrefs(sec);
    style = xsltParseStylesheetDoc(sdoc);
    xsltSetDefaultSecurityPrefs(NULL);
    if (!style) {
        rc = xml_api->set_error(ctx, FERRY_EINVAL, 0, "stylesheet: %s",
                                msgs.n ? msgs.first
                                       : "not a valid XSLT stylesheet");
        goto done;
    }
    sdoc = NULL; /* the stylesheet owns it now */

    /* Messages from here on are the transformation's: xsl:message lines
     * are logged, and the first explains a failure. */
    msgs.log = 1;
    tc = xsltNewTransformContext(style, doc);
    if (!tc || xsltSetCtxtSecurityPrefs(sec, tc)) {
        rc = xml_api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
        goto done;
    }
    if (params && (rc = set_params(ctx, tc, params)))
        goto done;
    res = xsltApplyStylesheetUser(style, doc, NULL, NULL, NULL, tc);
    if (!res || tc->state != XSLT_STATE_OK) {
        rc = xml_api->set_error(ctx, FERRY_EFAILED, 0,
                                "the transformation failed: %s",
                                msgs.n ? msgs.first : "no message");
        goto done;
    }
    if (xsltSaveResultToString(&text, &len, res, style)) {
        rc =
            xml_api->set_error(ctx, FERRY_ENOMEM, 1, "cannot write the output");
        goto done;
    }
    if (!strcmp(output, "blob")) {
        json_t *ref = xml_api->blob_from(ctx, text ? (const char *)text : "",
                                         (size_t)len, content_type(style));
        rc = ref ? xml_api->set_output(ctx, ref)
                 : xml_api->set_error(ctx, FERRY_EIO, 1,
                                      "cannot write the output blob");
    } else {
        json_t *out = json_stringn(text ? (const char *)text : "", (size_t)len);
        rc = out ? xml_api->set_output(ctx, out)
                 : xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                      "the output is not UTF-8 text: use "
                                      "output \"blob\"");
    }

done:
    xmlFree(text);
    xmlFreeDoc(res);
    if (tc)
        xsltFreeTransformContext(tc);
    if (style)
        xsltFreeStylesheet(style);
    xsltSetLoaderFunc(NULL);
    xsltFreeSecurityPrefs(sec);
    xmlFreeDoc(sdoc);
    xmlFreeDoc(doc);
    xml_messages_end(&msgs);
    return rc;
}
