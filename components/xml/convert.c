/*
 * xml.to_json and xml.from_json.
 */
#include "xml_actions.h"

#include <libxml/xpathInternals.h>
#include <stdlib.h>
#include <string.h>

/* ---- xml.to_json ---- */

typedef struct collect {
    json_t *out;
} collect;

static int collect_emit(void *ud, json_t *value, xj_err *e) {
    collect *c = ud;
    if (json_array_append_new(c->out, value))
        return xj_fail(e, XJ_ENOMEM, "out of memory");
    return 0;
}

static const char *const result_types[] = {
    "nothing", "a node set", "a boolean", "a number", "a string",
};

/* The output: nodes alone, or with counts {"nodes", "selected",
 * "candidates"} (candidates -1: not known, written null). */
static int put_nodes(ferry_ctx *ctx, json_t *nodes, int counts,
                     long long candidates) {
    if (!counts)
        return xml_api->set_output(ctx, nodes);
    json_t *out = json_pack(
        "{s:o, s:I, s:o}", "nodes", nodes, "selected",
        (json_int_t)json_array_size(nodes), "candidates",
        candidates < 0 ? json_null() : json_integer((json_int_t)candidates));
    if (!out)
        return xml_api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
    return xml_api->set_output(ctx, out);
}

/* The whole document as a tree: select through libxml2's XPath, or the
 * whole root. */
static int to_json_tree(ferry_ctx *ctx, const json_t *input, const char *sel,
                        const xj_opts *o, int counts, size_t *count) {
    xj_err e = {0};
    int rc;
    xmlDocPtr doc = xml_doc_parse(ctx, input, "xml", &rc);
    json_t *out;

    if (!doc)
        return rc;
    if (!sel) {
        out = xj_node_to_json((xmlNodePtr)doc, o, &e);
        *count = 1;
    } else {
        xmlXPathOrderDocElems(doc);
        xmlXPathObjectPtr res = xj_xpath_eval(doc, sel, o, "select", &e);
        out = NULL;
        if (res && res->type != XPATH_NODESET) {
            xj_fail(&e, XJ_EINVAL, "select must pick nodes; it gives %s: %s",
                    res->type <= XPATH_STRING ? result_types[res->type]
                                              : "another type",
                    sel);
        } else if (res) {
            *count = res->nodesetval ? (size_t)res->nodesetval->nodeNr : 0;
            out = xj_xpath_to_json(res, o, 0, &e);
        }
        xmlXPathFreeObject(res);
    }
    xmlFreeDoc(doc);
    if (!out)
        return xml_fail(ctx, &e);
    return sel ? put_nodes(ctx, out, counts, -1)
               : xml_api->set_output(ctx, out);
}

int xml_to_json_run(ferry_ctx *ctx, const json_t *input) {
    const char *sel = json_string_value(json_object_get(input, "select"));
    const char *mode = json_string_value(json_object_get(input, "mode"));
    xml_messages msgs;
    xml_opts opts;
    xj_path *path = NULL;
    xj_err e = {0};
    size_t count = 0;
    int rc;

    if (!mode)
        mode = "auto";
    if (strcmp(mode, "auto") && strcmp(mode, "stream") && strcmp(mode, "tree"))
        return xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "option mode must be \"auto\", \"stream\" or "
                                  "\"tree\", not \"%s\"",
                                  mode);
    if (!sel && !strcmp(mode, "stream"))
        return xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "option mode \"stream\" needs select");
    const json_t *cj = json_object_get(input, "counts");
    if (cj && !json_is_null(cj) && !json_is_boolean(cj))
        return xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "option counts must be a boolean");
    int counts = json_is_true(cj);
    if (counts && !sel)
        return xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "option counts needs select");
    if ((rc = xml_opts_read(ctx, input, &opts))) {
        xml_opts_free(&opts);
        return rc;
    }
    xml_messages_begin(&msgs, ctx, 0);

    if (sel && strcmp(mode, "tree")) {
        if (xj_path_compile(sel, &opts.o, &path, &e)) {
            rc = xml_fail(ctx, &e);
            goto done;
        }
        if (!path && !strcmp(mode, "stream")) {
            rc = xml_api->set_error(
                ctx, FERRY_EINVAL, 0,
                "select is outside the streaming subset (an absolute path of "
                "names, predicates on the last step only; see docs/xml.md): "
                "%s",
                sel);
            goto done;
        }
    }

    if (path) {
        xml_doc d;
        collect c = {json_array()};
        xj_stream_stats stats = {0};
        if (!c.out) {
            rc = xml_api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
            goto done;
        }
        if ((rc = xml_doc_open(ctx, input, "xml", 1, &d))) {
            json_decref(c.out);
            goto done;
        }
        int failed = xj_stream_select(&d.src, path, &opts.o, collect_emit, &c,
                                      &stats, &e);
        int read_error = d.read_error;
        xml_doc_close(&d);
        if (failed) {
            json_decref(c.out);
            if (read_error)
                rc = xml_api->set_error(ctx, read_error, 1,
                                        "xml: reading the blob: %s",
                                        ferry_strerror(read_error));
            else
                rc = xml_fail(ctx, &e);
            goto done;
        }
        xml_api->log(ctx, FERRY_LOG_INFO,
                     json_pack("{s:s, s:I, s:I}", "mode", "stream", "nodes",
                               (json_int_t)stats.matched, "candidates",
                               (json_int_t)stats.candidates),
                     "selected %zu nodes, streaming (%zu elements on the "
                     "path)",
                     stats.matched, stats.candidates);
        rc = put_nodes(ctx, c.out, counts, (long long)stats.candidates);
        goto done;
    }

    rc = to_json_tree(ctx, input, sel, &opts.o, counts, &count);
    if (!rc && sel)
        xml_api->log(
            ctx, FERRY_LOG_INFO,
            json_pack("{s:s, s:I}", "mode", "tree", "nodes", (json_int_t)count),
            "selected %zu nodes from the whole tree", count);

done:
    xml_messages_end(&msgs);
    xj_path_free(path);
    xml_opts_free(&opts);
    return rc;
}

/* ---- xml.from_json ---- */

int xml_from_json_run(ferry_ctx *ctx, const json_t *input) {
    const json_t *value = json_object_get(input, "value");
    const char *root = json_string_value(json_object_get(input, "root"));
    const char *output = json_string_value(json_object_get(input, "output"));
    int pretty = json_is_true(json_object_get(input, "pretty"));
    const json_t *decl = json_object_get(input, "declaration");
    xml_messages msgs;
    xml_opts opts;
    xj_err e = {0};
    xmlDocPtr doc;
    char *text;
    size_t len;
    int rc;

    if (!output)
        output = "string";
    if (strcmp(output, "string") && strcmp(output, "blob"))
        return xml_api->set_error(ctx, FERRY_EINVAL, 0,
                                  "option output must be \"string\" or "
                                  "\"blob\", not \"%s\"",
                                  output);
    if ((rc = xml_opts_read(ctx, input, &opts))) {
        xml_opts_free(&opts);
        return rc;
    }
    xml_messages_begin(&msgs, ctx, 0);
    doc = xj_json_to_doc(value, root, &opts.o, &e);
    text = doc ? xj_doc_to_text(doc, pretty, !json_is_false(decl), &len, &e)
               : NULL;
    xmlFreeDoc(doc);
    xml_messages_end(&msgs);
    xml_opts_free(&opts);
    if (!text)
        return xml_fail(ctx, &e);
    if (!strcmp(output, "blob")) {
        json_t *ref = xml_api->blob_from(ctx, text, len, "application/xml");
        free(text);
        if (!ref)
            return xml_api->set_error(ctx, FERRY_EIO, 1,
                                      "cannot write the output blob");
        return xml_api->set_output(ctx, ref);
    }
    json_t *out = json_stringn(text, len);
    free(text);
    if (!out)
        return xml_api->set_error(ctx, FERRY_ENOMEM, 1, "out of memory");
    return xml_api->set_output(ctx, out);
}
