/*
 * Pure helpers of the dropbox component: no ferry API, no I/O. The unit
 * tests (tests/dropbox) compile this file on its own.
 *
 * - dbx_header_json: JSON text made safe for the Dropbox-API-Arg header.
 * - dbx_content_hash: Dropbox's content_hash of a buffer.
 * - sizes, durations and timestamps as inputs and the API write them.
 * - paths: where a listed entry lies below the folder that was listed.
 */
#ifndef FERRY_DROPBOX_DBXUTIL_H
#define FERRY_DROPBOX_DBXUTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes per block of the content_hash algorithm (4 MiB). */
#define DBX_HASH_BLOCK 4194304u

/*
 * json: UTF-8 JSON text (borrowed). Returns the same text with byte 0x7F
 * and every non-ASCII character written as a \uXXXX escape (a surrogate
 * pair above U+FFFF), as the Dropbox-API-Arg and Dropbox-API-Result
 * headers require, in memory from malloc; or NULL when json is not valid
 * UTF-8 or memory runs out.
 */
char *dbx_header_json(const char *json);

/*
 * Dropbox's content_hash of len bytes at data (borrowed): SHA-256 of the
 * concatenated SHA-256 digests of each 4 MiB block, as 64 lower-case hex
 * digits and a NUL in hex. Returns 0, or -1 if the digest fails.
 */
int dbx_content_hash(const void *data, size_t len, char hex[65]);

/* A size: a whole number of bytes, or a string "512", "64KiB", "8MiB",
 * "1GiB" (also KB, MB, GB as powers of 1000). Returns 0 or -1. */
int dbx_parse_size(const json_t *v, uint64_t *out);

/* A duration: whole milliseconds, or "500ms", "30s", "2m", "1h".
 * Returns 0 or -1. */
int dbx_parse_duration(const json_t *v, uint64_t *ms);

/* "2015-05-12T15:50:38Z" as Unix seconds; -1 if it is not of that form. */
int64_t dbx_parse_time(const char *s);

/*
 * Normalises a folder input into out (n bytes): "" and "/" are the root
 * (""), a trailing '/' is dropped. Returns 0, or -1 when the path is not
 * the root and does not start with '/' (ids and namespaces are refused
 * where a path prefix is needed) or does not fit.
 */
int dbx_folder(const char *path, char *out, size_t n);

/*
 * The part of path (an entry's path_display) below folder (normalised by
 * dbx_folder): path without as many leading components as folder has.
 * Returns a pointer into path, or NULL when path has no such part.
 */
const char *dbx_relative(const char *folder, const char *path);

/* Nonzero if any '/'-separated component of relative starts with '.'. */
int dbx_hidden(const char *relative);

#endif /* FERRY_DROPBOX_DBXUTIL_H */
