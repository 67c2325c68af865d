/*
 * The http component: one action, http.request, over the host's HTTP
 * helper (api->http_request), and the connection types that helper knows
 * how to apply. See README.md for every option and decision.
 */
#include "http_internal.h"

const ferry_api *http_api;

static const ferry_input request_inputs[] = {
    {"method", "string", 0, "\"GET\"",
     "HTTP method (GET, POST, PUT, PATCH, DELETE, HEAD, ...); upper-cased"},
    {"url", "string", 1, NULL, "http:// or https:// URL"},
    {"query", "object", 0, NULL,
     "query parameters {name: value}; an array value repeats the name, "
     "null leaves it out; appended to the URL's own query, percent-encoded"},
    {"headers", "object", 0, NULL,
     "request headers {name: value}; an array value sends several lines, "
     "null removes a header the client would add"},
    {"json", "any", 0, NULL, "body: this value as application/json"},
    {"form", "object", 0, NULL,
     "body: these fields as application/x-www-form-urlencoded"},
    {"multipart", "array", 0, NULL,
     "body: multipart/form-data parts [{name, value | blob, filename, "
     "content_type}]"},
    {"text", "string", 0, NULL, "body: this text as text/plain"},
    {"xml", "string", 0, NULL, "body: this text as application/xml"},
    {"blob", "blob", 0, NULL,
     "body: this blob, streamed, with its content type"},
    {"timeout", "any", 0, "\"60s\"",
     "limit for the whole exchange, redirects included (\"30s\", \"2m\", "
     "or milliseconds; 0 for none)"},
    {"connect_timeout", "any", 0, "\"10s\"",
     "limit for connecting (TCP and TLS)"},
    {"follow_redirects", "boolean", 0, "true",
     "follow 301, 302, 303, 307 and 308"},
    {"max_redirects", "integer", 0, "10", "redirects followed at most"},
    {"verify_tls", "boolean", 0, "true",
     "check the server's certificate and name"},
    {"ca_file", "string", 0, NULL,
     "PEM file of the CAs to trust instead of the system's"},
    {"as", "string", 0, "\"auto\"",
     "how to read the response body: auto (by its Content-Type), json, "
     "text or blob"},
    {"max_inline", "any", 0, "\"1MiB\"",
     "a response body larger than this goes to a blob (\"64KiB\", or "
     "bytes)"},
    {"fail_on_status", "boolean", 0, "true",
     "fail the step on a 4xx or 5xx status; false returns it as output"},
    {"max_retry_after", "any", 0, "\"60s\"",
     "on 429 and 503, wait for a Retry-After up to this long and try again"},
    {"retry_after_attempts", "integer", 0, "3",
     "how many times to wait for a Retry-After and try again"},
    {0}};

static const ferry_action actions[] = {
    {.id = "http.request",
     .label = "HTTP request",
     .description =
         "Sends one HTTP request, applying the step's connection, and "
         "returns the response. 4xx and 5xx fail the step unless "
         "fail_on_status is false; 408, 429 and 5xx failures are retryable.",
     .inputs = request_inputs,
     .output = "{status, headers: {lower-case name: string}, body: JSON, "
               "string, blob reference or null, size, url, redirects, "
               "timings, retry_after_ms?}",
     .run = http_request_run,
     .flags = 0},
    {0}};

static const ferry_input basic_fields[] = {
    {"username", "string", 1, NULL, "user name"},
    {"password", "string", 1, NULL, "password (secret)"},
    {0}};

static const ferry_input api_key_fields[] = {
    {"key", "string", 1, NULL, "the API key (secret)"},
    {"header", "string", 0, "\"X-API-Key\"",
     "header that carries the key (when query is not set)"},
    {"query", "string", 0, NULL,
     "query parameter that carries the key instead of a header"},
    {"prefix", "string", 0, NULL,
     "text before the key in the header (\"Token \")"},
    {0}};

static const ferry_input bearer_fields[] = {
    {"token", "string", 1, NULL, "the bearer token (secret)"}, {0}};

static const ferry_input oauth2_fields[] = {
    {"token_url", "string", 1, NULL, "the token endpoint"},
    {"client_id", "string", 1, NULL, "the client's id"},
    {"client_secret", "string", 0, NULL, "the client's secret (secret)"},
    {"client_auth", "string", 0, "\"basic\"",
     "how the client authenticates at the token endpoint: basic (HTTP "
     "Basic, the default RFC 6749 requires servers to support) or body "
     "(client_id and client_secret as form fields)"},
    {"scopes", "any", 0, NULL,
     "scopes to ask for: a space-separated string or an array of strings"},
    {"grant", "string", 0, "\"client_credentials\"",
     "client_credentials, authorization_code or refresh_token"},
    {"authorize_url", "string", 0, NULL,
     "the authorization endpoint (authorization_code)"},
    {"refresh_token", "string", 0, NULL,
     "a refresh token (refresh_token grant, or after authorization_code) "
     "(secret)"},
    {"audience", "string", 0, NULL,
     "the audience parameter some providers require"},
    {0}};

static const ferry_connection_type connections[] = {
    {.id = "http.basic",
     .label = "HTTP Basic",
     .description = "User name and password sent as Authorization: Basic.",
     .auth = "basic",
     .fields = basic_fields},
    {.id = "http.api_key",
     .label = "API key",
     .description = "A key sent in a header (X-API-Key unless header says "
                    "otherwise) or, with query, as a query parameter.",
     .auth = "api_key",
     .fields = api_key_fields},
    {.id = "http.bearer",
     .label = "Bearer token",
     .description = "A fixed token sent as Authorization: Bearer.",
     .auth = "bearer",
     .fields = bearer_fields},
    {.id = "http.oauth2",
     .label = "OAuth 2.0",
     .description = "An access token from the host's token service, sent "
                    "as Authorization: Bearer and refreshed once on a 401.",
     .auth = "oauth2",
     .fields = oauth2_fields},
    {0}};

static const ferry_component desc = {
    FERRY_COMPONENT_HEADER,
    .name = "http",
    .version = "1.0.0",
    .description = "HTTP requests to any REST or plain HTTP API.",
    .actions = actions,
    .connections = connections,
};

FERRY_EXPORT const ferry_component *
ferry_component_entry(const ferry_api *host) {
    http_api = host;
    return &desc;
}
