/*
 * Redaction of known secret values (secret.h).
 */
#include "secret.h"

#include <stdlib.h>
#include <string.h>

int secret_set_add(secret_set *s, const char *value) {
    if (!value || strlen(value) < SECRET_MIN_REDACT)
        return 0;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->values[i], value))
            return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        char **v = realloc(s->values, cap * sizeof(*v));
        if (!v)
            return -1;
        s->values = v;
        s->cap = cap;
    }
    char *copy = strdup(value);
    if (!copy)
        return -1;
    /* Longest first, so a secret containing another is replaced whole. */
    size_t len = strlen(copy), i = s->n;
    while (i > 0 && strlen(s->values[i - 1]) < len) {
        s->values[i] = s->values[i - 1];
        i--;
    }
    s->values[i] = copy;
    s->n++;
    return 0;
}

void secret_set_clear(secret_set *s) {
    for (size_t i = 0; i < s->n; i++) {
        memset(s->values[i], 0, strlen(s->values[i]));
        free(s->values[i]);
    }
    free(s->values);
    memset(s, 0, sizeof(*s));
}

int secret_set_found(const secret_set *s, const char *text) {
    for (size_t i = 0; text && i < s->n; i++)
        if (strstr(text, s->values[i]))
            return 1;
    return 0;
}

char *secret_redact(const secret_set *s, const char *text, int *oom) {
    *oom = 0;
    if (!secret_set_found(s, text))
        return NULL;
    char *cur = strdup(text);
    size_t ml = strlen(SECRET_REDACTED);
    for (size_t i = 0; cur && i < s->n; i++) {
        const char *v = s->values[i];
        size_t vl = strlen(v), count = 0;
        for (const char *p = strstr(cur, v); p; p = strstr(p + vl, v))
            count++;
        if (!count)
            continue;
        size_t len = strlen(cur);
        char *next = malloc(len - count * vl + count * ml + 1);
        if (!next) {
            free(cur);
            cur = NULL;
            break;
        }
        char *o = next;
        const char *p = cur, *q;
        while ((q = strstr(p, v))) {
            memcpy(o, p, (size_t)(q - p));
            o += q - p;
            memcpy(o, SECRET_REDACTED, ml);
            o += ml;
            p = q + vl;
        }
        strcpy(o, p);
        free(cur);
        cur = next;
    }
    if (!cur)
        *oom = 1;
    return cur;
}
