/*
 * Shared by the webhook area's files; not part of its face. Every decoder
 * takes any bytes (lengths given, no NUL needed) and fails cleanly.
 */
#ifndef FERRY_CORE_WEBHOOK_INTERNAL_H
#define FERRY_CORE_WEBHOOK_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

/* Hex digits (either case) to bytes. Returns 0 with *n bytes in out, or -1
 * if s is not an even number of hex digits or does not fit in cap. */
int webhook_hex_decode(const char *s, size_t len, unsigned char *out,
                       size_t cap, size_t *n);
/* Standard base64 (RFC 4648 section 4): padding may be left out, but when
 * present it must be right; no whitespace. Returns 0 with *n bytes in out,
 * or -1 if s is not base64 or does not fit in cap. */
int webhook_b64_decode(const char *s, size_t len, unsigned char *out,
                       size_t cap, size_t *n);
/* Standard base64 with padding; malloc'd, NUL-terminated; NULL if out of
 * memory. */
char *webhook_b64_encode(const void *data, size_t len);
/* Decodes %XX (and '+' as a space when plus_is_space), keeping a '%' that
 * starts no valid escape as it is (as browsers do). malloc'd and
 * NUL-terminated, *outlen without the NUL; NULL if out of memory. */
char *webhook_pct_decode(const char *s, size_t len, int plus_is_space,
                         size_t *outlen);
/* The first value of parameter name in a raw query string, decoded.
 * Returns 1 with *out malloc'd (and *outlen), 0 if absent, -1 if out of
 * memory. */
int webhook_query_get(const char *query, const char *name, char **out,
                      size_t *outlen);
/* Nonzero if s is well-formed UTF-8 (no overlongs, surrogates or code
 * points past U+10FFFF). */
int webhook_utf8_valid(const unsigned char *s, size_t len);
/* A JSON string of s, with each ill-formed UTF-8 sequence replaced by
 * U+FFFD. New reference; NULL if out of memory. */
json_t *webhook_json_text(const char *s, size_t len);
/* ASCII case-insensitive comparison of s[0..len) with the NUL-terminated
 * lit. */
int webhook_ieq(const char *s, size_t len, const char *lit);

#endif
