/*
 * secret: values encrypted at rest, and known secret values kept out of
 * what leaves a worker.
 *
 * Encrypted text is "fy1:" KEYID ":" BASE64URL(nonce[12] ciphertext tag[16])
 * with AES-256-GCM, where KEYID is the key's fingerprint (the first 8 bytes
 * of SHA-256 over "ferry master key" and the key, in hex): a value
 * encrypted under another key is recognised as such, not as tampering. The
 * additional authenticated data is a caller's label (a table and column,
 * say), so a value copied into another place does not decrypt there.
 *
 * Owns: the master key (FERRY_MASTER_KEY or a key file), encryption, and
 * redaction. Must not touch: the store, the network, logging.
 */
#ifndef FERRY_CORE_SECRET_H
#define FERRY_CORE_SECRET_H

#include <stddef.h>

#define SECRET_KEY_LEN 32
#define SECRET_PREFIX "fy1:"

typedef struct secret_key {
    unsigned char key[SECRET_KEY_LEN];
    char id[17]; /* the fingerprint, 16 hex digits */
} secret_key;

/* Parses a key written as 64 hex digits or as base64 of 32 bytes
 * (surrounding white space ignored). Returns 0, or -1 with the reason. */
int secret_key_parse(const char *text, secret_key *k, char *err, size_t n);

/* The master key from env_value (FERRY_MASTER_KEY's value; NULL or "": not
 * set) or else the file (NULL: none; the file must not be readable by
 * group or others). Returns 1 with *k, 0 when neither is given, or -1 with
 * the reason (naming the variable or the file). */
int secret_key_load(const char *env_value, const char *file, secret_key *k,
                    char *err, size_t n);

/* A new random key, written as 64 hex digits into hex (65 bytes). */
int secret_key_generate(char hex[65]);

/* Encrypts len bytes of pt with aad (NUL-terminated, may be ""). Returns
 * malloc'd text, or NULL (out of memory or a library failure). */
char *secret_encrypt(const secret_key *k, const char *aad, const void *pt,
                     size_t len);

/* Whether text has the form of an encrypted value. */
int secret_is_encrypted(const char *text);

/* The key id an encrypted value names, into id (17 bytes). Returns 0, or
 * -1 if text is not an encrypted value. */
int secret_key_id_of(const char *text, char id[17]);

/* Decrypts text under k with aad. Returns 0 with *out malloc'd and
 * NUL-terminated (*len bytes before the NUL; len may be NULL), or -1 with
 * the reason: not an encrypted value, made under another key (both ids
 * named), or altered. */
int secret_decrypt(const secret_key *k, const char *aad, const char *text,
                   char **out, size_t *len, char *err, size_t n);

/* A short fingerprint of a value (the first 8 bytes of its SHA-256, in
 * hex), to say which value is meant without sending it. */
void secret_fingerprint(const char *value, char out[17]);

/* ---- redaction (redact.c) ---- */

/* The marker a secret is replaced with. */
#define SECRET_REDACTED "[redacted]"
/* Shorter values are not redacted: they would hide ordinary text. */
#define SECRET_MIN_REDACT 6

typedef struct secret_set {
    char **values; /* owned, longest first */
    size_t n, cap;
} secret_set;

/* Adds a copy of value (ignored when shorter than SECRET_MIN_REDACT or
 * already there). Returns 0 or -1 (out of memory). */
int secret_set_add(secret_set *s, const char *value);
void secret_set_clear(secret_set *s);
/* Whether s occurs anywhere in text. */
int secret_set_found(const secret_set *s, const char *text);
/* text with every occurrence of a value of s replaced by SECRET_REDACTED:
 * malloc'd, or NULL when nothing had to be replaced (or out of memory,
 * with *oom set). */
char *secret_redact(const secret_set *s, const char *text, int *oom);

#endif
