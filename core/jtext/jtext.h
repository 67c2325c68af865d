/*
 * JSON text on the hot paths: the same bytes and values as jansson's
 * json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) and json_loadb, in a fraction
 * of the time.
 *
 * jansson goes through its text a character at a time (a stream reader and
 * a callback per escaped character); a webhook's trigger payload of 800
 * bytes took 15 us to dump and its 200-byte body 7 us to parse, a quarter
 * of the host's loop thread per request. These functions scan runs of plain
 * bytes at once and build the values with jansson's own constructors.
 *
 * They handle what is common and hand the rest to jansson: a dump of a
 * string that is not valid UTF-8, of a nesting deeper than JTEXT_MAX_DEPTH
 * (or a cycle), and a parse of anything jansson would refuse (so its error
 * message is jansson's), of a number that is not a plain integer of up to
 * 18 digits or a decimal strtod reads exactly as jansson does, or of a
 * nesting deeper than JTEXT_MAX_DEPTH, are all done by jansson. Output and
 * values are therefore jansson's in every case; tests/jtext and the fuzz
 * target fuzz_jtext compare the two on every input.
 *
 * Pure: no global state, callable from any thread (as jansson is).
 */
#ifndef FERRY_JTEXT_H
#define FERRY_JTEXT_H

#include <jansson.h>
#include <stddef.h>

#define JTEXT_MAX_DEPTH 256

/* json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY): a malloc'd,
 * NUL-terminated text the caller frees, its length in *len when len is not
 * NULL; NULL when v is NULL, cannot be encoded, or memory ran out. */
char *jtext_dump(const json_t *v, size_t *len);

/* json_loadb(buf, n, flags, err): a new reference, or NULL with err filled
 * in by jansson. flags other than 0 and JSON_DECODE_ANY go to jansson. */
json_t *jtext_load(const char *buf, size_t n, size_t flags, json_error_t *err);

/* The length (1 to 4) of the well-formed UTF-8 sequence at s, of the n
 * bytes there, or 0: RFC 3629's rules, which jansson applies (no overlong
 * forms, no surrogates, nothing past U+10FFFF). */
size_t jtext_utf8_len(const unsigned char *s, size_t n);

#endif
