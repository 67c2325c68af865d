/*
 * The native predicate evaluator of the streaming select (xj_pred.c):
 * part of the core, no ferry API.
 */
#ifndef FERRY_XML_XJ_PRED_H
#define FERRY_XML_XJ_PRED_H

#include "xj.h"

typedef struct xj_pred xj_pred;

/* Compiles the predicate text s (n bytes, without its brackets). Returns
 * NULL when it is outside the native subset (libxml2's XPath runs it
 * then), or on no memory with *nomem set. Prefixes resolve through o. */
xj_pred *xj_pred_compile(const char *s, size_t n, const xj_opts *o, int *nomem);
/* Whether node passes, at position (its place among the candidates of
 * its parent so far, from 1): 1 or 0, -1 on no memory. */
int xj_pred_eval(const xj_pred *p, const xmlNode *node, int position);
void xj_pred_free(xj_pred *p);

#endif
