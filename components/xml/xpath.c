/*
 * xml.xpath: an XPath 1.0 expression on a whole document.
 */
#include "xml_actions.h"

#include <libxml/xpathInternals.h>
#include <string.h>

int xml_xpath_run(ferry_ctx *ctx, const json_t *input) {
    const char *expr = json_string_value(json_object_get(input, "expression"));
    const char *as = json_string_value(json_object_get(input, "as"));
    xml_messages msgs;
    xml_opts opts;
    xj_err e = {0};
    xmlDocPtr doc;
    xmlXPathObjectPtr res;
    json_t *out = NULL;
    int rc;

    if (!as)
        as = "json";
    if (strcmp(as, "json") && strcmp(as, "string"))
        return xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "option as must be \"json\" or \"string\", "
                                  "not \"%s\"",
                                  as);
    if (!expr)
        return xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "expression must be a string");
    if ((rc = xml_opts_read(ctx, input, &opts))) {
        xml_opts_free(&opts);
        return rc;
    }
    xml_messages_begin(&msgs, ctx, 0);
    doc = xml_doc_parse(ctx, input, "xml", &rc);
    if (doc) {
        xmlXPathOrderDocElems(doc);
        res = xj_xpath_eval(doc, expr, &opts.o, "expression", &e);
        if (res)
            out = xj_xpath_to_json(res, &opts.o, !strcmp(as, "string"), &e);
        xmlXPathFreeObject(res);
        xmlFreeDoc(doc);
        rc = out ? xml_api->set_output(ctx, out) : xml_fail(ctx, &e);
    }
    xml_messages_end(&msgs);
    xml_opts_free(&opts);
    return rc;
}
