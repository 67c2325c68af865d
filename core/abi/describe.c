/*
 * A component's description as JSON, for `ferry components describe --json`
 * and anything else that shows components to people or programs.
 *
 * Absent strings are JSON null rather than missing keys, so a consumer can
 * read every field without checking; an input's "default" is the parsed
 * default and is left out when there is none (null is a possible default).
 */
#include "abi.h"

static json_t *str_or_null(const char *s) {
    return s != NULL ? json_string(s) : json_null();
}

static json_t *inputs_json(const ferry_input *in) {
    json_t *arr = json_array();
    if (in == NULL)
        return arr;
    for (; in->name != NULL; in++) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(in->name));
        json_object_set_new(o, "type", str_or_null(in->type));
        json_object_set_new(o, "required", json_boolean(in->required));
        if (in->default_json != NULL) {
            json_t *d = json_loads(in->default_json, JSON_DECODE_ANY, NULL);
            if (d != NULL)
                json_object_set_new(o, "default", d);
        }
        json_object_set_new(o, "description", str_or_null(in->description));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *actions_json(const ferry_action *a) {
    json_t *arr = json_array();
    for (; a != NULL && a->id != NULL; a++) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(a->id));
        json_object_set_new(o, "label", str_or_null(a->label));
        json_object_set_new(o, "description", str_or_null(a->description));
        json_object_set_new(o, "output", str_or_null(a->output));
        json_object_set_new(
            o, "idempotent",
            json_boolean((a->flags & FERRY_ACTION_IDEMPOTENT) != 0));
        json_object_set_new(o, "inputs", inputs_json(a->inputs));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *triggers_json(const ferry_trigger *t) {
    json_t *arr = json_array();
    for (; t != NULL && t->id != NULL; t++) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(t->id));
        json_object_set_new(o, "label", str_or_null(t->label));
        json_object_set_new(o, "description", str_or_null(t->description));
        json_object_set_new(o, "inputs", inputs_json(t->inputs));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *connections_json(const ferry_connection_type *c) {
    json_t *arr = json_array();
    for (; c != NULL && c->id != NULL; c++) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(c->id));
        json_object_set_new(o, "label", str_or_null(c->label));
        json_object_set_new(o, "description", str_or_null(c->description));
        json_object_set_new(o, "auth", str_or_null(c->auth));
        json_object_set_new(o, "fields", inputs_json(c->fields));
        json_array_append_new(arr, o);
    }
    return arr;
}

json_t *abi_describe_json(const abi_component *c) {
    const ferry_component *d = c->desc;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(d->name));
    json_object_set_new(o, "version", str_or_null(d->version));
    json_object_set_new(o, "description", str_or_null(d->description));
    json_object_set_new(o, "path", str_or_null(c->path));
    json_object_set_new(o, "actions", actions_json(d->actions));
    json_object_set_new(o, "triggers", triggers_json(d->triggers));
    json_object_set_new(o, "connections", connections_json(d->connections));
    return o;
}
