/*
 * abi: loading components and keeping the registry of what was loaded.
 *
 * Owns: dlopen/dlsym of component .so files, checking their ABI and jansson
 * versions and their description, the list of loaded and refused
 * components, and looking up actions by id. It does not run actions (flow
 * does) and does not implement the ferry_api table (flow/ctx.c does); it
 * only hands the table to each entry function.
 */
#ifndef FERRY_CORE_ABI_H
#define FERRY_CORE_ABI_H

#include <ferry/ferry.h>
#include <stddef.h>

typedef struct abi_component {
    char *path;                  /* owned; NULL for built-in components */
    void *handle;                /* dlopen handle; NULL for built-ins */
    const ferry_component *desc; /* borrowed from the .so (or static) */
} abi_component;

typedef struct abi_refusal {
    char *path;   /* owned */
    char *reason; /* owned, one line, no trailing newline */
} abi_refusal;

typedef struct abi_registry {
    abi_component *components; /* owned array, in load order */
    size_t ncomponents;
    abi_refusal *refused; /* owned array */
    size_t nrefused;
} abi_registry;

/* Zeroes r. */
void abi_registry_init(abi_registry *r);
/* dlcloses every component and frees everything r owns. */
void abi_registry_free(abi_registry *r);

/* Adds a component compiled into the host (e.g. "core"). desc: borrowed,
 * static. Returns FERRY_OK, or FERRY_EINVAL with *reason (malloc'd) set. */
int abi_registry_add_builtin(abi_registry *r, const ferry_component *desc,
                             char **reason);

/* Loads one .so. On refusal returns a negative code and records a refusal
 * (path + one-line reason) in r->refused; the reason names both versions
 * where versions differ. api: borrowed, must outlive r. */
int abi_load_file(abi_registry *r, const char *path, const ferry_api *api);

/* Loads every regular file ending in ".so" in dir, in name order; refusals
 * are recorded and loading goes on. Returns the number loaded, or a
 * negative code if dir cannot be read (then *err is malloc'd). */
int abi_load_dir(abi_registry *r, const char *dir, const ferry_api *api,
                 char **err);

/* Checks a description. Returns FERRY_OK, or FERRY_EINVAL with a one-line
 * reason written into buf ("action 'x.y': unknown input type 'strng'"). */
int abi_validate_description(const ferry_component *desc, char *buf,
                             size_t buflen);

/* Finds an action by id ("csv.parse"). owner: optional out. Returns a
 * borrowed pointer or NULL. */
const ferry_action *abi_find_action(const abi_registry *r, const char *id,
                                    const abi_component **owner);
/* Finds a component by name. Returns borrowed or NULL. */
const abi_component *abi_find_component(const abi_registry *r,
                                        const char *name);
/* Finds a connection type of a component by id. Returns borrowed or NULL. */
const ferry_connection_type *abi_find_connection_type(const abi_registry *r,
                                                      const char *id);
/* Finds a component's trigger by id ("sftp.new_files"). owner: optional
 * out. Returns borrowed or NULL. */
const ferry_trigger *abi_find_trigger(const abi_registry *r, const char *id,
                                      const abi_component **owner);

/* Nonzero if type is one of the input type names ferry_input allows. */
int abi_type_known(const char *type);
/* Nonzero if value v is acceptable for an input of the given type. "blob"
 * accepts a blob reference object; "number" accepts integers too. */
int abi_type_matches(const char *type, const json_t *v);
/* Short name of a JSON value's type for messages ("string", "array"). */
const char *abi_json_type_name(const json_t *v);

/* The description as JSON (for `components describe --json` and the API).
 * Returns a new ref. */
json_t *abi_describe_json(const abi_component *c);

#include <stdio.h>

/* Writes each refusal in r to f as one line "ferry: refused FILE: reason",
 * for the commands that load components. */
void abi_print_refusals(const abi_registry *r, FILE *f);

#endif
