/* Fuzzes the webhook area: webhook_verify under every scheme, and
 * webhook_parse_body, with requests from anyone. The input is a request in
 * a readable form:
 *
 *   METHOD QUERY\n          (QUERY raw, may be empty)
 *   name: value\n ...       (headers; x-now: UNIX sets the clock)
 *   \n
 *   body...
 *
 * Each input goes to one verifier per scheme (fixed configurations; the
 * seed corpus holds requests signed for them, so mutations start from
 * accepted requests), to webhook_parse_body under its own Content-Type and
 * a few fixed ones, and, when the body is a JSON object, to
 * webhook_verifier_new as a configuration. A result must be consistent
 * with its return code, and reasons must be static text, never a pointer
 * into the request. */
#include "fuzz.h"
#include "webhook/webhook.h"

#include <ferry/ferry.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HEADERS 32

static const char *const configs[] = {
    "{\"scheme\": \"github\", \"secret\": \"fuzz-secret\"}",
    "{\"scheme\": \"slack\", \"secret\": \"fuzz-secret\"}",
    "{\"scheme\": \"shopify\", \"secret\": \"fuzz-secret\"}",
    "{\"scheme\": \"stripe\", \"secret\": [\"whsec_old\", \"fuzz-secret\"]}",
    "{\"scheme\": \"standard-webhooks\", \"secret\": "
    "\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\", \"tolerance\": \"10m\"}",
    "{\"scheme\": \"dropbox\", \"secret\": \"fuzz-secret\"}",
    "{\"scheme\": \"hmac\", \"header\": \"x-signature\", \"algorithm\": "
    "\"sha1\", \"encoding\": \"base64\", \"prefix\": \"sha1=\", \"secret\": "
    "\"fuzz-secret\"}",
    "{\"scheme\": \"api_key\", \"header\": \"x-api-key\", \"prefix\": "
    "\"Key \", \"secret\": \"fuzz-secret\"}",
    "{\"scheme\": \"api_key\", \"query\": \"key\", \"secret\": "
    "\"fuzz-secret\"}",
    "{\"scheme\": \"basic\", \"user\": \"fuzz\", \"password\": "
    "\"fuzz-secret\"}",
};
#define NCONFIGS (sizeof(configs) / sizeof(configs[0]))

static webhook_verifier *verifiers[NCONFIGS];

typedef struct headers {
    char *names[MAX_HEADERS], *values[MAX_HEADERS];
    size_t n;
} headers;

static const char *lookup(void *ud, const char *lname) {
    headers *h = ud;
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->names[i], lname) == 0)
            return h->values[i];
    return NULL;
}

static char *copy(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void setup(void) {
    if (verifiers[0])
        return;
    for (size_t i = 0; i < NCONFIGS; i++) {
        json_t *c = json_loads(configs[i], 0, NULL);
        char err[200];
        verifiers[i] = webhook_verifier_new(c, err, sizeof(err));
        json_decref(c);
        if (!verifiers[i])
            abort();
    }
}

/* A reason must not point into anything the request gave. */
static int inside(const char *p, const void *base, size_t n) {
    const char *b = base;
    return p >= b && p <= b + n;
}

static void check(const webhook_verifier *v, const webhook_request *r,
                  const headers *h, const uint8_t *data, size_t size) {
    webhook_result res;
    int rc = webhook_verify(v, r, &res);
    if (fuzz_verbose())
        fprintf(stderr, "%s: %s\n", webhook_verifier_scheme(v),
                res.reason ? res.reason : "(none)");
    if (!res.reason || inside(res.reason, data, size))
        abort();
    for (size_t i = 0; i < h->n; i++)
        if (inside(res.reason, h->names[i], strlen(h->names[i])) ||
            inside(res.reason, h->values[i], strlen(h->values[i])))
            abort();
    if (rc == FERRY_EAUTH) {
        if (res.failure == WEBHOOK_ACCEPTED || res.respond.status ||
            res.respond.body || res.secret_index != -1)
            abort();
    } else if (rc == 0) {
        if (res.failure != WEBHOOK_ACCEPTED)
            abort();
        if (res.respond.status &&
            (res.respond.status != 200 || !res.respond.body ||
             !res.respond.content_type ||
             res.respond.nheaders > WEBHOOK_RESPOND_MAX_HEADERS))
            abort();
        if (!res.respond.status && res.respond.body)
            abort();
    } else if (rc != FERRY_ENOMEM) {
        abort();
    }
    webhook_result_clear(&res);
}

/* Whether ctype's media type (before any ';', white space around it
 * ignored, any case) is want: "text/json; charset=form-data" is JSON. */
static int media_is(const char *ctype, const char *want) {
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    size_t n = strcspn(ctype, ";");
    while (n && (ctype[n - 1] == ' ' || ctype[n - 1] == '\t'))
        n--;
    return n == strlen(want) && !strncasecmp(ctype, want, n);
}

static void parse(const char *ctype, const uint8_t *body, size_t len,
                  int must_parse) {
    char err[256];
    json_t *j = webhook_parse_body(ctype, body, len, err, sizeof(err));
    if (strchr(err, '\n'))
        abort();
    if (!j) {
        if (must_parse && !err[0])
            abort();
        return;
    }
    if (err[0])
        abort();
    if (media_is(ctype, "multipart/form-data")) {
        size_t i;
        json_t *part;
        if (!json_is_array(j) || json_array_size(j) > WEBHOOK_MAX_PARTS)
            abort();
        json_array_foreach(j, i, part) {
            if (!json_is_string(json_object_get(part, "body")))
                abort();
        }
    } else if (media_is(ctype, "application/x-www-form-urlencoded") &&
               !json_is_object(j)) {
        abort();
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    headers h = {0};
    const uint8_t *end = data + size, *p = data;
    const uint8_t *nl = memchr(p, '\n', size);
    const uint8_t *line_end = nl ? nl : end;
    const uint8_t *sp = memchr(p, ' ', (size_t)(line_end - p));
    char *method = copy(p, (size_t)((sp ? sp : line_end) - p));
    char *query = sp ? copy(sp + 1, (size_t)(line_end - sp - 1)) : NULL;
    p = nl ? nl + 1 : end;
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        line_end = nl ? nl : end;
        if (line_end == p) {
            p++;
            break;
        }
        const uint8_t *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon && h.n < MAX_HEADERS) {
            h.names[h.n] = copy(p, (size_t)(colon - p));
            for (char *c = h.names[h.n]; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
            const uint8_t *val = colon + 1;
            h.values[h.n++] = copy(val, (size_t)(line_end - val));
        }
        p = nl ? nl + 1 : end;
    }
    /* The body gets its own allocation, so ASan sees reads past it. */
    size_t body_len = (size_t)(end - p);
    uint8_t *body = malloc(body_len ? body_len : 1);
    if (!body)
        abort();
    memcpy(body, p, body_len);

    const char *now = lookup(&h, "x-now");
    webhook_request r = {
        .method = method,
        .path = "/webhooks/fuzz/flow",
        .query = query,
        .body = body,
        .body_len = body_len,
        .header = lookup,
        .ud = &h,
        .now_s = now ? strtoll(now, NULL, 10) : 1700000000,
    };
    for (size_t i = 0; i < NCONFIGS; i++)
        check(verifiers[i], &r, &h, data, size);

    const char *ct = lookup(&h, "content-type");
    if (ct)
        parse(ct, body, body_len, 0);
    parse("application/json", body, body_len, 1);
    parse("application/x-www-form-urlencoded", body, body_len, 1);
    parse("multipart/form-data; boundary=XyZ", body, body_len, 1);
    parse("multipart/form-data; boundary=\"----a b\"", body, body_len, 1);
    parse("text/xml", body, body_len, 0);

    /* The body as a verifier configuration. */
    json_t *conf = json_loadb((const char *)body, body_len, 0, NULL);
    if (json_is_object(conf)) {
        char err[256];
        webhook_verifier *v = webhook_verifier_new(conf, err, sizeof(err));
        if (v) {
            check(v, &r, &h, data, size);
            webhook_verifier_free(v);
        } else if (!err[0] || strchr(err, '\n')) {
            abort();
        }
    }
    json_decref(conf);

    free(body);
    for (size_t i = 0; i < h.n; i++) {
        free(h.names[i]);
        free(h.values[i]);
    }
    free(method);
    free(query);
    return 0;
}

void fuzz_target_cleanup(void) {
    for (size_t i = 0; i < NCONFIGS; i++) {
        webhook_verifier_free(verifiers[i]);
        verifiers[i] = NULL;
    }
}
