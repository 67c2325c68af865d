/*
 * webhook: deciding whether an incoming webhook request is authentic, and
 * turning its body into JSON for the trigger payload.
 *
 * Owns: the signature schemes (generic HMAC, GitHub, Slack, Shopify,
 * Stripe, Standard Webhooks, Dropbox, API keys, HTTP Basic), their
 * configuration, replay windows, the two handshakes a sender expects an
 * answer to (Dropbox's GET challenge, Slack's url_verification), and the
 * parsing of JSON, form and multipart bodies. Must not do I/O, log, read
 * the clock or touch the store: the host gives it a view of the request
 * (with the current time) and acts on the answer.
 *
 * Threads: a verifier is immutable once made; any number of threads may
 * call webhook_verify on the same verifier at once.
 */
#ifndef FERRY_CORE_WEBHOOK_H
#define FERRY_CORE_WEBHOOK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A view of one request. Everything is borrowed for the call. */
typedef struct webhook_request {
    const char *method; /* "POST", "GET", ... */
    const char *path;   /* without the query string */
    const char *query;  /* raw, without '?'; NULL or "" when there is none */
    const void *body;   /* raw bytes exactly as received */
    size_t body_len;
    /* A header's value by lower-case name, NULL if absent. The returned
     * string is borrowed until the call returns. */
    const char *(*header)(void *ud, const char *lname);
    void *ud;
    int64_t now_s; /* the current time, Unix seconds */
} webhook_request;

typedef struct webhook_verifier webhook_verifier;

/* Why a request was refused, coarser than the reason string; for metrics
 * labels (see webhook_failure_name). */
typedef enum webhook_failure {
    WEBHOOK_ACCEPTED = 0,
    WEBHOOK_MISSING,   /* a required header or parameter is absent */
    WEBHOOK_MALFORMED, /* present but not in the scheme's format */
    WEBHOOK_MISMATCH,  /* well-formed, but no signature or key matched */
    WEBHOOK_REPLAY,    /* signature valid, timestamp outside the window */
} webhook_failure;

#define WEBHOOK_RESPOND_MAX_HEADERS 2

/* An answer the host must send as is, instead of starting a run. */
typedef struct webhook_respond {
    int status;               /* 0: nothing to answer; the request is a run */
    const char *content_type; /* static */
    struct {
        const char *name, *value; /* static */
    } headers[WEBHOOK_RESPOND_MAX_HEADERS];
    size_t nheaders;
    char *body; /* owned by the result: webhook_result_clear frees it */
    size_t body_len;
} webhook_respond;

typedef struct webhook_result {
    /* What happened, in a few words; static, safe to log: it never holds
     * a secret, a signature or anything taken from the request. */
    const char *reason;
    webhook_failure failure;
    /* Which configured secret matched (0 for the first); -1 when none did
     * or none was needed (the Dropbox challenge). A rotation is over when
     * no request matches the old secret any more. */
    int secret_index;
    webhook_respond respond;
} webhook_result;

/*
 * Makes a verifier from a flow trigger's "verify" object, with secrets
 * already resolved to their values. conf: borrowed; everything needed is
 * copied. Returns NULL with a one-line message in err naming the field
 * ("tolerance: expected a duration like \"5m\"") when the configuration
 * is invalid or memory runs out. The message never holds a secret.
 *
 *   {"scheme": "hmac", "header": "x-signature", "algorithm": "sha256",
 *    "encoding": "hex", "prefix": "sha256=", "secret": "..."}
 *   {"scheme": "github" | "shopify" | "dropbox", "secret": "..."}
 *   {"scheme": "slack" | "stripe" | "standard-webhooks", "secret": "...",
 *    "tolerance": "5m"}
 *   {"scheme": "api_key", "header": "x-api-key", "prefix": "Bearer ",
 *    "secret": "..."}  or  {"scheme": "api_key", "query": "key", ...}
 *   {"scheme": "basic", "user": "...", "password": "..."}
 *
 * "secret" is a string or an array of up to 8 strings: a request is
 * accepted if it matches any of them (rotation). docs/webhooks.md has
 * every field.
 */
webhook_verifier *webhook_verifier_new(const json_t *conf, char *err,
                                       size_t errlen);
void webhook_verifier_free(webhook_verifier *v);

/* The scheme's name as configured ("github"); static. */
const char *webhook_verifier_scheme(const webhook_verifier *v);
/* Where a request carries a credential in clear (api_key, basic), so the
 * host can leave it out of the trigger payload: a lower-case header name
 * or a query parameter name; NULL when there is none. Borrowed from v. */
const char *webhook_verifier_secret_header(const webhook_verifier *v);
const char *webhook_verifier_secret_query(const webhook_verifier *v);

/*
 * Verifies r. Fills in *res in every case (call webhook_result_clear
 * afterwards, whatever the return). Returns:
 *   0             accepted. If res->respond.status is nonzero, the request
 *                 is a handshake (Dropbox GET challenge, Slack
 *                 url_verification): answer with res->respond and start
 *                 no run.
 *   FERRY_EAUTH   refused: missing, malformed or wrong signature or key,
 *                 or a timestamp outside the replay window
 *                 (res->failure == WEBHOOK_REPLAY). Answer 401.
 *   FERRY_EINVAL  v, r or res is NULL.
 *   FERRY_ENOMEM  out of memory building a handshake answer.
 */
int webhook_verify(const webhook_verifier *v, const webhook_request *r,
                   webhook_result *res);
/* Frees what a result owns and zeroes it. */
void webhook_result_clear(webhook_result *res);
/* "accepted", "missing", "malformed", "mismatch", "replay"; static. */
const char *webhook_failure_name(webhook_failure f);

/*
 * The body as JSON for the trigger payload, by content type (borrowed,
 * NULL when the request had none; parameters such as charset are read):
 *   application/json, application/...+json  the JSON value
 *   application/x-www-form-urlencoded      {"key": "value", ...}; a key
 *                                          given more than once maps to an
 *                                          array of its values in order
 *   multipart/form-data; boundary=...      an array of parts, in order:
 *        {"name", "filename", "content_type", "body"} (name and filename
 *        null when absent); body is a string when the part is text (a text
 *        type, or no filename and no type) and valid UTF-8, else base64
 *        with "encoding": "base64" added
 *   XML (text/xml, application/xml, +xml) and anything else: NULL, with
 *        err set to "" (XML is parsed by the xml component, not here).
 * Returns a new reference, or NULL: err is "" when the type has no parsed
 * form, else a one-line reason the body is malformed (it names no data
 * from the body). Text that is not valid UTF-8 in form fields is repaired
 * with U+FFFD. Multipart bodies are bounded: at most
 * WEBHOOK_MAX_PARTS parts, each with at most WEBHOOK_MAX_PART_HEADERS
 * bytes of headers.
 */
#define WEBHOOK_MAX_PARTS 1000
#define WEBHOOK_MAX_PART_HEADERS 16384
#define WEBHOOK_MAX_FORM_FIELDS 10000
json_t *webhook_parse_body(const char *content_type, const void *body,
                           size_t len, char *err, size_t errlen);

/* Signs as a Standard Webhooks sender does: out gets "v1,BASE64(HMAC-
 * SHA256(key, id.ts.body))", key being the base64 after "whsec_" in
 * secret. Returns 0, or -1 (a bad secret or id, or out too small). */
int webhook_stdwh_sign(const char *secret, const char *id, long long ts,
                       const void *body, size_t len, char *out, size_t n);

#endif
