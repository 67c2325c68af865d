/*
 * What the xml component's action files share: the host's table, reading
 * the document input (a string or a blob), the mapping options, turning
 * core errors into step errors, and keeping libxml2's and libxslt's
 * messages off stderr. Nothing here is exported (hidden visibility).
 */
#ifndef FERRY_XML_ACTIONS_H
#define FERRY_XML_ACTIONS_H

#include <ferry/ferry.h>

#include "xj.h"

/* The host's table; set once by the entry function, borrowed. */
extern const ferry_api *xml_api;

int xml_to_json_run(ferry_ctx *ctx, const json_t *input);
int xml_from_json_run(ferry_ctx *ctx, const json_t *input);
int xml_xpath_run(ferry_ctx *ctx, const json_t *input);
int xml_xslt_run(ferry_ctx *ctx, const json_t *input);

/* Reports e as the step's error (its code mapped to a FERRY_E* code) and
 * returns that code. */
int xml_fail(ferry_ctx *ctx, const xj_err *e);

/* The mapping options of the step's input; xml_opts_free releases what
 * xml_opts_read allocated (also after a failure). */
typedef struct xml_opts {
    xj_opts o;
    xj_ns *ns;
    const char **arrays;
} xml_opts;
int xml_opts_read(ferry_ctx *ctx, const json_t *input, xml_opts *o);
void xml_opts_free(xml_opts *o);

/* A document input: a string, or a blob mapped whole (tree) or read in
 * chunks (streamed). */
typedef struct xml_doc {
    ferry_ctx *ctx;
    const char *name; /* the input's name, for messages */
    const json_t *ref;
    ferry_blob_reader *reader;
    int read_error; /* the FERRY_E* code of a failed blob_read */
    xj_source src;
} xml_doc;

/* Opens the input `name` of input. With stream, a blob is read through
 * src.read; otherwise it is mapped and src.data points at it. Returns
 * FERRY_OK or the step's error. Close with xml_doc_close. */
int xml_doc_open(ferry_ctx *ctx, const json_t *input, const char *name,
                 int stream, xml_doc *d);
void xml_doc_close(xml_doc *d);

/* Parses the document input into a tree; NULL after setting the step's
 * error (the code is in *rc). */
xmlDocPtr xml_doc_parse(ferry_ctx *ctx, const json_t *input, const char *name,
                        int *rc);

/* While an action runs, libxml2's and libxslt's generic messages (those
 * not tied to a parse, which has its own handler) are collected here
 * instead of printed. */
typedef struct xml_messages {
    char first[640]; /* the summary: what went wrong (where) */
    char what[320], where[256];
    int n;
    ferry_ctx *ctx;
    int log; /* log each line as a warning (xsl:message) */
} xml_messages;
void xml_messages_begin(xml_messages *m, ferry_ctx *ctx, int log);
void xml_messages_end(xml_messages *m);

#endif
