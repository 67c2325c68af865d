/*
 * tokens: OAuth tokens kept in the store, encrypted under the master key.
 *
 * The store's meta value "master_key_check" is a known text encrypted under
 * the key: a store that has it holds encrypted data, and is only opened
 * with that same key. A token's access and refresh tokens are encrypted
 * each with its own label ("oauth_tokens.access:INSTANCE/CONNECTION"), so
 * a value moved to another row does not decrypt.
 */
#ifndef FERRY_CORE_TOKENS_H
#define FERRY_CORE_TOKENS_H

#include "secret/secret.h"
#include "store/store.h"

#include <jansson.h>

/* Checks k (NULL: no key given) against st. Without a check value yet
 * and with a key, writes one. Returns 0, or -1 with the reason: encrypted
 * data and no key, or another key (both fingerprints named). */
int tokens_check_key(store *st, const secret_key *k, char *err, size_t n);

/* The token of (instance, connection), decrypted: *token a new ref, or
 * NULL if none is stored. Returns 0, or -1 with the reason. */
int tokens_load(store *st, const secret_key *k, const char *instance,
                const char *connection, json_t **token, char *err, size_t n);

/* Stores token (as oauth_apply makes it) encrypted, replacing the row:
 * a rotated refresh token replaces the old one in the same write. */
int tokens_save(store *st, const secret_key *k, const char *instance,
                const char *connection, const json_t *token, char *err,
                size_t n);

/* Re-encrypts every encrypted value of the store from old to neu (and
 * the check value), in the caller's transaction. *count: values
 * re-encrypted. Returns 0, or -1 with the reason (nothing is changed
 * then, once the caller rolls back). */
int tokens_rotate(store *st, const secret_key *old, const secret_key *neu,
                  int *count, char *err, size_t n);

/* A usable access token for a connection, the whole way synchronously:
 * the stored token (or *mem, the process's own when there is no key or
 * no store), the refresh policy, the token request, the new token saved.
 * force with refused: the resource refused that access token (401).
 * Returns 0 with *access malloc'd, or -1 with the reason in err and
 * *reauth set when only a person can fix it (re-authorise). */
int tokens_obtain(store *st, const secret_key *k, const char *instance,
                  const char *connection, const json_t *fields, int force,
                  const char *refused, json_t **mem, char **access, int *reauth,
                  char *err, size_t n);

#endif
