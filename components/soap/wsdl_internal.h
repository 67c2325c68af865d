/*
 * Shared by wsdl.c (documents, imports, bindings) and schema.c (XML Schema
 * components into sc_type and sc_elem): the loader's state while a WSDL
 * and its imports are parsed. Nothing here outlives sc_wsdl_load.
 */
#ifndef FERRY_SOAP_WSDL_INTERNAL_H
#define FERRY_SOAP_WSDL_INTERNAL_H

#include "soap_core.h"

/* A string-keyed table in the arena; keys are "{namespace}local". */
typedef struct sc_map_ent {
    const char *key;
    void *val;
    struct sc_map_ent *next;
} sc_map_ent;

typedef struct sc_map {
    sc_map_ent **slots;
    size_t nslots, n;
} sc_map;

/* One xsd:schema element and what its components inherit from it. */
typedef struct sc_schema {
    const char *tns; /* NULL: no namespace */
    int elem_qualified, attr_qualified;
    int chameleon; /* included without a namespace: unprefixed QNames in it
                      name the includer's components */
} sc_schema;

/* A named top-level component, built on first use. */
typedef struct sc_decl {
    xmlNodePtr node;
    const sc_schema *schema;
    const char *tns; /* WSDL components: the document's targetNamespace */
    void *built;
    int building;
} sc_decl;

typedef struct sc_loader {
    sc_wsdl *w;
    sc_arena *a;
    sc_err *e;
    const sc_source *src;
    xmlDocPtr docs[SC_MAX_DOCUMENTS];
    size_t ndocs;
    sc_map seen;    /* location -> its document, loaded */
    sc_map schemas; /* "location|namespace": a schema registered */
    /* schema components */
    sc_map elements, types, groups, attr_groups, attributes;
    /* WSDL components */
    sc_map messages, port_types, bindings;
    sc_decl *services;
    size_t nservices, cap_services;
    sc_map builtins; /* built-in types by local name */
    json_t *warnings;
    /* Elements made from a ref while the global element may still be
     * building: their type is copied once everything is built. */
    sc_elem **fixups;
    size_t nfixups, cap_fixups;
    /* Named types referred to by elements, built after the type that
     * refers to them rather than inside it: a long chain of types each
     * holding the next costs no stack. */
    sc_type **queue;
    size_t nqueue, cap_queue;
    int depth; /* of type building, against runaway recursion */
} sc_loader;

int sc_map_put(sc_arena *a, sc_map *m, const char *key, void *val);
void *sc_map_get(const sc_map *m, const char *key);
/* "{ns}local" in the arena. */
const char *sc_qkey(sc_arena *a, const char *ns, const char *local);

/* Resolves a QName attribute value of node: sets *ns (borrowed from the
 * tree, or NULL) and *local. Returns 0, or -1 if the prefix is not
 * declared. */
int sc_qname(const xmlNode *node, const char *value, const char **ns,
             const char **local);

/* Registers the components of one xsd:schema (and loads what it imports
 * or includes). chameleon: the namespace an included schema without one
 * takes. base: where its document came from. */
int sc_schema_register(sc_loader *L, xmlNodePtr schema, const char *chameleon,
                       const char *base, int remote, int depth);

/* Model builders (schema.c); NULL with L->e set on failure. A type
 * asked for with now zero may be returned unbuilt (queued): sc_ensure
 * builds one when its content is needed during loading, sc_drain builds
 * all that are queued. */
sc_type *sc_get_type(sc_loader *L, const char *ns, const char *local,
                     const char *written, int now);
int sc_ensure(sc_loader *L, sc_type *t);
int sc_drain(sc_loader *L);
sc_elem *sc_get_element(sc_loader *L, const char *ns, const char *local);
sc_type *sc_builtin(sc_loader *L, const char *local);

/* Loads another document for an import: location as written, resolved
 * against base; returns the parsed document (kept by L, loaded once per
 * location: *already says it was loaded before) or NULL with L->e set,
 * with *out_loc its absolute location. */
xmlDocPtr sc_load_import(sc_loader *L, const char *location, const char *base,
                         int remote, int depth, const char **out_loc,
                         int *out_remote, int *already);

int sc_fixup_later(sc_loader *L, sc_elem *e);

void sc_warn(sc_loader *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
