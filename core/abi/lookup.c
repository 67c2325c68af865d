/*
 * Finding components, actions and connection types in a registry by name.
 *
 * Called for every step a flow runs and every input it validates, so these
 * allocate nothing: a linear scan, skipping whole components whose name is
 * not the id's prefix. Registries hold a few dozen components at most.
 */
#include "abi.h"

#include <string.h>

/* Nonzero if id is "<name>.<something>". */
static int id_in(const char *id, const char *name) {
    size_t n = strlen(name);
    return strncmp(id, name, n) == 0 && id[n] == '.';
}

const abi_component *abi_find_component(const abi_registry *r,
                                        const char *name) {
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < r->ncomponents; i++)
        if (strcmp(r->components[i].desc->name, name) == 0)
            return &r->components[i];
    return NULL;
}

const ferry_action *abi_find_action(const abi_registry *r, const char *id,
                                    const abi_component **owner) {
    if (owner != NULL)
        *owner = NULL;
    if (id == NULL)
        return NULL;
    for (size_t i = 0; i < r->ncomponents; i++) {
        const abi_component *c = &r->components[i];
        if (c->desc->actions == NULL || !id_in(id, c->desc->name))
            continue;
        /* Validated descriptions end with an element whose id is NULL. */
        for (const ferry_action *a = c->desc->actions; a->id != NULL; a++) {
            if (strcmp(a->id, id) == 0) {
                if (owner != NULL)
                    *owner = c;
                return a;
            }
        }
    }
    return NULL;
}

const ferry_connection_type *abi_find_connection_type(const abi_registry *r,
                                                      const char *id) {
    if (id == NULL)
        return NULL;
    for (size_t i = 0; i < r->ncomponents; i++) {
        const abi_component *c = &r->components[i];
        if (c->desc->connections == NULL || !id_in(id, c->desc->name))
            continue;
        for (const ferry_connection_type *t = c->desc->connections;
             t->id != NULL; t++)
            if (strcmp(t->id, id) == 0)
                return t;
    }
    return NULL;
}

const ferry_trigger *abi_find_trigger(const abi_registry *r, const char *id,
                                      const abi_component **owner) {
    if (id == NULL)
        return NULL;
    for (size_t i = 0; i < r->ncomponents; i++) {
        const abi_component *c = &r->components[i];
        if (c->desc->triggers == NULL || !id_in(id, c->desc->name))
            continue;
        for (const ferry_trigger *t = c->desc->triggers; t->id != NULL; t++)
            if (strcmp(t->id, id) == 0) {
                if (owner)
                    *owner = c;
                return t;
            }
    }
    return NULL;
}
