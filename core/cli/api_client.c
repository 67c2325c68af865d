/* A small client of a running host's API, for the CLI (libcurl). */
#include "api_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct http_buf {
    char *p;
    size_t n;
} http_buf;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    http_buf *b = ud;
    size_t len = size * nmemb;
    char *p = realloc(b->p, b->n + len + 1);
    if (!p)
        return 0;
    memcpy(p + b->n, ptr, len);
    b->n += len;
    p[b->n] = '\0';
    b->p = p;
    return len;
}

int api_request(const char *host, const char *token, const char *path,
                const json_t *body, api_reply *r) {
    return api_request_method(host, token, NULL, path, body, r);
}

int api_request_method(const char *host, const char *token, const char *method,
                       const char *path, const json_t *body, api_reply *r) {
    memset(r, 0, sizeof(*r));
    size_t hl = strlen(host);
    while (hl && host[hl - 1] == '/')
        hl--;
    char *url = NULL, *auth = NULL, *payload = NULL;
    if (asprintf(&url, "%.*s%s", (int)hl, host, path) < 0 ||
        asprintf(&auth, "Authorization: Bearer %s", token) < 0) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        free(url);
        return -1;
    }
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = NULL;
    http_buf b = {0};
    int rc = -1;
    if (!h) {
        snprintf(r->err, sizeof(r->err), "cannot start libcurl");
        goto out;
    }
    hdr = curl_slist_append(hdr, auth);
    hdr = curl_slist_append(hdr, "Accept: application/json");
    if (body) {
        payload = json_dumps(body, JSON_COMPACT);
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        /* No "Expect: 100-continue" round trip for large documents. */
        hdr = curl_slist_append(hdr, "Expect:");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
    }
    if (method)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->err);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        if (!r->err[0])
            snprintf(r->err, sizeof(r->err), "%s", curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    r->text = b.p;
    b.p = NULL;
    if (r->text)
        r->body = json_loads(r->text, JSON_DECODE_ANY, NULL);
    rc = 0;
out:
    free(b.p);
    curl_slist_free_all(hdr);
    if (h)
        curl_easy_cleanup(h);
    free(payload);
    free(auth);
    free(url);
    return rc;
}

void api_reply_clear(api_reply *r) {
    json_decref(r->body);
    free(r->text);
    r->body = NULL;
    r->text = NULL;
}

const char *api_error_message(const api_reply *r) {
    const json_t *e = json_object_get(r->body, "error");
    const char *m = json_string_value(json_object_get(e, "message"));
    if (!m)
        m = json_string_value(e);
    if (!m)
        m = r->text && *r->text ? r->text : "(no message)";
    return m;
}

void api_report_failure(const char *cmd, const char *host, const api_reply *r) {
    if (r->status == 401 || r->status == 403)
        fprintf(stderr, "ferry %s: %s refused the API token (%ld): %s\n", cmd,
                host, r->status, api_error_message(r));
    else
        fprintf(stderr, "ferry %s: %s answered %ld: %s\n", cmd, host, r->status,
                api_error_message(r));
}

const char *api_token_or_env(const char *cmd, const char *flag) {
    const char *e = getenv("FERRY_API_TOKEN");
    const char *t = flag ? flag : e && *e ? e : NULL;
    if (!t)
        fprintf(stderr,
                "ferry %s: --host needs --api-token TOKEN (or "
                "FERRY_API_TOKEN), one of the host's api_tokens\n",
                cmd);
    return t;
}
