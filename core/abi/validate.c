/*
 * Checking a component's description before the host uses it, and the input
 * type names the description may use.
 *
 * The description is static data of a .so the host has not vetted, so the
 * checks here are the only thing between a typo in a component and a
 * confusing failure at run time. Each message names the offending id or
 * name so the component author can find it without a debugger.
 */
#include "abi.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const input_types[] = {"string",  "integer", "number",
                                          "boolean", "object",  "array",
                                          "blob",    "any",     NULL};

static const char *const auth_kinds[] = {"basic",  "api_key", "bearer",
                                         "oauth2", "custom",  NULL};

static int in_list(const char *const *list, const char *s) {
    if (s == NULL)
        return 0;
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

int abi_type_known(const char *type) {
    return in_list(input_types, type);
}

int abi_type_matches(const char *type, const json_t *v) {
    if (type == NULL || v == NULL)
        return 0;
    if (strcmp(type, "any") == 0)
        return 1;
    if (strcmp(type, "string") == 0)
        return json_is_string(v);
    if (strcmp(type, "integer") == 0)
        return json_is_integer(v);
    if (strcmp(type, "number") == 0)
        return json_is_number(v);
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(type, "object") == 0)
        return json_is_object(v);
    if (strcmp(type, "array") == 0)
        return json_is_array(v);
    if (strcmp(type, "blob") == 0)
        return json_is_object(v) && json_is_string(json_object_get(v, "$blob"));
    return 0;
}

const char *abi_json_type_name(const json_t *v) {
    if (v == NULL)
        return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* Writes a message into buf and returns FERRY_EINVAL, so a check can be
 * `return fail(buf, len, ...)`. */
static int fail(char *buf, size_t buflen, const char *fmt, ...)
    FERRY_PRINTF(3, 4);
static int fail(char *buf, size_t buflen, const char *fmt, ...) {
    if (buf != NULL && buflen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, buflen, fmt, ap);
        va_end(ap);
    }
    return FERRY_EINVAL;
}

/* A name part: [a-z][a-z0-9_]*. Returns the length matched (0 if none). */
static size_t name_part(const char *s) {
    size_t n = 0;
    if (s[0] < 'a' || s[0] > 'z')
        return 0;
    while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') ||
           s[n] == '_')
        n++;
    return n;
}

static int valid_component_name(const char *name) {
    size_t n = name_part(name);
    return n > 0 && name[n] == '\0';
}

/* "<component>.<verb>[.<more>]", every part [a-z][a-z0-9_]*. */
static int valid_member_id(const char *id, const char *component) {
    size_t clen = strlen(component);
    if (strncmp(id, component, clen) != 0 || id[clen] != '.')
        return 0;
    const char *p = id + clen;
    while (*p == '.') {
        size_t n = name_part(p + 1);
        if (n == 0)
            return 0;
        p += 1 + n;
    }
    return *p == '\0';
}

static int input_is_end(const ferry_input *in) {
    return in->name == NULL && in->type == NULL && in->required == 0 &&
           in->default_json == NULL && in->description == NULL;
}

/*
 * Checks one inputs (or fields) array. what/id say whose it is ("action",
 * "good.echo"), noun what an element is called ("input", "field").
 */
static int check_inputs(const ferry_input *inputs, const char *what,
                        const char *id, const char *noun, char *buf,
                        size_t buflen) {
    if (inputs == NULL)
        return FERRY_OK;
    for (size_t i = 0; !input_is_end(&inputs[i]); i++) {
        const ferry_input *in = &inputs[i];
        if (in->name == NULL || in->name[0] == '\0')
            return fail(buf, buflen, "%s '%s': %s #%zu has no name", what, id,
                        noun, i + 1);
        if (in->type == NULL)
            return fail(buf, buflen, "%s '%s': %s '%s' has no type", what, id,
                        noun, in->name);
        if (!abi_type_known(in->type))
            return fail(buf, buflen,
                        "%s '%s': unknown %s type '%s' for %s '%s' (allowed: "
                        "string integer number boolean object array blob any)",
                        what, id, noun, in->type, noun, in->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(inputs[j].name, in->name) == 0)
                return fail(buf, buflen, "%s '%s': duplicate %s '%s'", what, id,
                            noun, in->name);
        if (in->default_json != NULL) {
            json_error_t jerr;
            json_t *d = json_loads(in->default_json, JSON_DECODE_ANY, &jerr);
            if (d == NULL)
                return fail(buf, buflen,
                            "%s '%s': default of %s '%s' is not valid JSON "
                            "(%s): %s",
                            what, id, noun, in->name, in->default_json,
                            jerr.text);
            int rc = FERRY_OK;
            if (!abi_type_matches(in->type, d))
                rc = fail(buf, buflen,
                          "%s '%s': default of %s '%s' is %s %s, expected %s",
                          what, id, noun, in->name, abi_json_type_name(d),
                          in->default_json, in->type);
            json_decref(d);
            if (rc != FERRY_OK)
                return rc;
        }
    }
    return FERRY_OK;
}

static int action_is_end(const ferry_action *a) {
    return a->id == NULL && a->label == NULL && a->description == NULL &&
           a->inputs == NULL && a->output == NULL && a->run == NULL &&
           a->flags == 0;
}

static int trigger_is_end(const ferry_trigger *t) {
    return t->id == NULL && t->label == NULL && t->description == NULL &&
           t->inputs == NULL && t->poll == NULL && t->flags == 0;
}

static int connection_is_end(const ferry_connection_type *c) {
    return c->id == NULL && c->label == NULL && c->description == NULL &&
           c->auth == NULL && c->fields == NULL;
}

static int check_actions(const ferry_component *d, char *buf, size_t buflen) {
    const ferry_action *a = d->actions;
    if (a == NULL)
        return FERRY_OK;
    for (size_t i = 0; !action_is_end(&a[i]); i++) {
        const char *id = a[i].id;
        if (id == NULL || id[0] == '\0')
            return fail(buf, buflen, "action #%zu has no id", i + 1);
        if (!valid_member_id(id, d->name))
            return fail(buf, buflen,
                        "action id '%s' is not '%s.<verb>' in dotted lower "
                        "case",
                        id, d->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(a[j].id, id) == 0)
                return fail(buf, buflen, "duplicate action id '%s'", id);
        if (a[i].run == NULL)
            return fail(buf, buflen, "action '%s' has no run function", id);
        int rc = check_inputs(a[i].inputs, "action", id, "input", buf, buflen);
        if (rc != FERRY_OK)
            return rc;
    }
    return FERRY_OK;
}

static int check_triggers(const ferry_component *d, char *buf, size_t buflen) {
    const ferry_trigger *t = d->triggers;
    if (t == NULL)
        return FERRY_OK;
    for (size_t i = 0; !trigger_is_end(&t[i]); i++) {
        const char *id = t[i].id;
        if (id == NULL || id[0] == '\0')
            return fail(buf, buflen, "trigger #%zu has no id", i + 1);
        if (!valid_member_id(id, d->name))
            return fail(buf, buflen,
                        "trigger id '%s' is not '%s.<name>' in dotted lower "
                        "case",
                        id, d->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(t[j].id, id) == 0)
                return fail(buf, buflen, "duplicate trigger id '%s'", id);
        if (t[i].poll == NULL)
            return fail(buf, buflen, "trigger '%s' has no poll function", id);
        int rc = check_inputs(t[i].inputs, "trigger", id, "input", buf, buflen);
        if (rc != FERRY_OK)
            return rc;
    }
    return FERRY_OK;
}

static int check_connections(const ferry_component *d, char *buf,
                             size_t buflen) {
    const ferry_connection_type *c = d->connections;
    if (c == NULL)
        return FERRY_OK;
    for (size_t i = 0; !connection_is_end(&c[i]); i++) {
        const char *id = c[i].id;
        if (id == NULL || id[0] == '\0')
            return fail(buf, buflen, "connection type #%zu has no id", i + 1);
        if (!valid_member_id(id, d->name))
            return fail(buf, buflen,
                        "connection type id '%s' is not '%s.<name>' in dotted "
                        "lower case",
                        id, d->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c[j].id, id) == 0)
                return fail(buf, buflen, "duplicate connection type id '%s'",
                            id);
        if (c[i].auth == NULL)
            return fail(buf, buflen, "connection type '%s' has no auth", id);
        if (!in_list(auth_kinds, c[i].auth))
            return fail(buf, buflen,
                        "connection type '%s': unknown auth '%s' (allowed: "
                        "basic api_key bearer oauth2 custom)",
                        id, c[i].auth);
        int rc = check_inputs(c[i].fields, "connection type", id, "field", buf,
                              buflen);
        if (rc != FERRY_OK)
            return rc;
    }
    return FERRY_OK;
}

int abi_validate_description(const ferry_component *desc, char *buf,
                             size_t buflen) {
    if (buf != NULL && buflen > 0)
        buf[0] = '\0';
    if (desc == NULL)
        return fail(buf, buflen, "no description");
    if (desc->name == NULL || desc->name[0] == '\0')
        return fail(buf, buflen, "component has no name");
    if (!valid_component_name(desc->name))
        return fail(buf, buflen,
                    "component name '%s' is not lower case [a-z0-9_] "
                    "starting with a letter",
                    desc->name);
    if (desc->version == NULL || desc->version[0] == '\0')
        return fail(buf, buflen, "component '%s' has no version", desc->name);
    int rc = check_actions(desc, buf, buflen);
    if (rc == FERRY_OK)
        rc = check_triggers(desc, buf, buflen);
    if (rc == FERRY_OK)
        rc = check_connections(desc, buf, buflen);
    return rc;
}
