/*
 * The built-in "core" component: core.log, core.set, core.fail,
 * core.respond. It is
 * described with the same structs as any .so so that validation, `ferry
 * components describe core` and the engine treat it like the others.
 */
#include "flow.h"

#include <string.h>

static const ferry_api *api;

static int level_of(const char *s) {
    if (!s || !strcmp(s, "info"))
        return FERRY_LOG_INFO;
    if (!strcmp(s, "debug"))
        return FERRY_LOG_DEBUG;
    if (!strcmp(s, "warn") || !strcmp(s, "warning"))
        return FERRY_LOG_WARN;
    if (!strcmp(s, "error"))
        return FERRY_LOG_ERROR;
    return -1;
}

static int core_log(ferry_ctx *ctx, const json_t *input) {
    const char *level = json_string_value(json_object_get(input, "level"));
    int lv = level_of(level);
    if (lv < 0)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "unknown level '%s' (expected debug, info, "
                              "warn or error)",
                              level);
    json_t *fields = json_object_get(input, "fields");
    api->log(ctx, (ferry_log_level)lv, fields ? json_incref(fields) : NULL,
             "%s", json_string_value(json_object_get(input, "message")));
    return FERRY_OK;
}

static int core_set(ferry_ctx *ctx, const json_t *input) {
    json_t *v = json_object_get(input, "value");
    return api->set_output(ctx, v ? json_incref(v) : json_null());
}

static int error_by_name(const char *name) {
#define CORE_ERR_MATCH(n, value, msg)                                          \
    if (!strcmp(name, #n) || !strcmp(name, "FERRY_E" #n))                      \
        return value;
    FERRY_ERRNO_MAP(CORE_ERR_MATCH)
#undef CORE_ERR_MATCH
    return 0;
}

static int core_fail(ferry_ctx *ctx, const json_t *input) {
    const char *msg = json_string_value(json_object_get(input, "message"));
    const char *code = json_string_value(json_object_get(input, "code"));
    int err = error_by_name(code ? code : "FAILED");
    if (!err)
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "unknown error code '%s' (expected a name such "
                              "as FAILED, REMOTE or TIMEOUT)",
                              code);
    return api->set_error(
        ctx, err, json_is_true(json_object_get(input, "retryable")), "%s", msg);
}

/* {"$respond": {"status", "content_type", "body", "headers"}}: a sync
 * webhook whose
 * execution ends with this output is answered with it. */
static int core_respond(ferry_ctx *ctx, const json_t *input) {
    json_t *st = json_object_get(input, "status");
    json_int_t status = st ? json_integer_value(st) : 200;
    if (st && (!json_is_integer(st) || status < 200 || status > 599))
        return api->set_error(ctx, FERRY_EINVAL, 0,
                              "status: expected an integer from 200 to 599");
    const char *ct = json_string_value(json_object_get(input, "content_type"));
    json_t *r = json_pack("{s:I, s:s}", "status", status, "content_type",
                          ct && *ct ? ct : "application/json");
    if (!r)
        return api->set_error(ctx, FERRY_ENOMEM, 0, "out of memory");
    json_t *body = json_object_get(input, "body");
    if (body)
        json_object_set(r, "body", body);
    json_t *headers = json_object_get(input, "headers");
    const char *k;
    json_t *v;
    json_object_foreach(headers, k, v) {
        const char *t = json_string_value(v);
        int ok = t && *k;
        for (const char *p = k; ok && *p; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (*p >= '0' && *p <= '9') || strchr("!#$%&'*+-.^_`|~", *p);
        for (const char *p = t; ok && *p; p++)
            ok = (unsigned char)*p >= 0x20 || *p == '\t';
        if (!ok) {
            json_decref(r);
            return api->set_error(ctx, FERRY_EINVAL, 0,
                                  "headers.%s: a header needs a token name "
                                  "and a string value without line breaks",
                                  k);
        }
    }
    if (headers)
        json_object_set(r, "headers", headers);
    return api->set_output(ctx, json_pack("{s:o}", "$respond", r));
}

static const ferry_input log_inputs[] = {
    {"message", "string", 1, NULL, "the line to log"},
    {"level", "string", 0, "\"info\"", "debug, info, warn or error"},
    {"fields", "object", 0, NULL, "structured fields logged with the line"},
    {0}};

static const ferry_input set_inputs[] = {
    {"value", "any", 1, NULL, "the value to output"}, {0}};

static const ferry_input fail_inputs[] = {
    {"message", "string", 1, NULL, "why the flow fails"},
    {"code", "string", 0, "\"FAILED\"",
     "error name: FAILED, INVAL, REMOTE, TIMEOUT, ..."},
    {"retryable", "boolean", 0, "false", "whether trying again may succeed"},
    {0}};

static const ferry_input respond_inputs[] = {
    {"status", "integer", 0, "200", "the HTTP status, 200 to 599"},
    {"body", "any", 0, NULL,
     "the body: a string is sent as it is, anything else as JSON"},
    {"content_type", "string", 0, "\"application/json\"",
     "the Content-Type of the answer"},
    {"headers", "object", 0, NULL,
     "more response headers, name to string value (Content-Type, "
     "Content-Length and other headers the server manages are ignored)"},
    {0}};

static const ferry_action core_actions[] = {
    {"core.log", "Log", "Writes a log line to the execution's record.",
     log_inputs, "null", core_log, FERRY_ACTION_IDEMPOTENT},
    {"core.set", "Set", "Outputs a value built from references.", set_inputs,
     "the value", core_set, FERRY_ACTION_IDEMPOTENT},
    {"core.fail", "Fail", "Fails the step (and the flow) with a message.",
     fail_inputs, "never outputs", core_fail, FERRY_ACTION_IDEMPOTENT},
    {"core.respond", "Respond",
     "Sets the answer of a sync webhook when it is the last step.",
     respond_inputs, "{\"$respond\": {status, content_type, body}}",
     core_respond, FERRY_ACTION_IDEMPOTENT},
    {0}};

static const ferry_component core_desc = {
    FERRY_COMPONENT_HEADER,
    .flags = FERRY_COMPONENT_NO_HTTP,
    .name = "core",
    .version = "1.0.0",
    .description = "Built-in actions: log, set a value, fail, respond.",
    .actions = core_actions,
};

const ferry_component *flow_core_component(void) {
    api = flow_host_api();
    return &core_desc;
}

int flow_load_registry(abi_registry *r, const char *dir, char **err) {
    char *reason = NULL;
    abi_registry_init(r);
    if (abi_registry_add_builtin(r, flow_core_component(), &reason)) {
        *err = reason;
        return -1;
    }
    if (abi_load_dir(r, dir, flow_host_api(), err) < 0)
        return -1;
    return 0;
}
