/*
 * oauth: the client side of OAuth 2.0 (RFC 6749) with PKCE (RFC 7636).
 *
 * A connection of auth type "oauth2" carries these fields (instance
 * values): token_url, client_id, client_secret, scopes (a string of
 * space-separated scopes, or an array), audience, grant
 * ("client_credentials", "authorization_code" or "refresh_token"),
 * authorize_url (authorization_code), refresh_token (a first refresh token,
 * for the refresh_token grant), client_auth ("basic", the default, or
 * "body": where the client id and secret go).
 *
 * A token is kept as a JSON object {"access_token", "refresh_token",
 * "token_type", "scope", "expires_us", "obtained_us", "status" ("ok" or
 * "reauth"), "error"}; oauth_plan says what to do with one, oauth_request
 * asks the token endpoint, oauth_apply makes the new token from the answer.
 * Owns: the HTTP of token requests and the refresh policy. Must not touch:
 * the store, the loop, logging.
 */
#ifndef FERRY_CORE_OAUTH_H
#define FERRY_CORE_OAUTH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A token is refreshed once this share of its lifetime has passed... */
#define OAUTH_REFRESH_AT 0.8
/* ...of its lifetime less this much, for clocks that differ and for
 * expiry times kept in whole seconds (a JWT's exp: a token said to live 2
 * s may be refused 1 s after it was issued). */
#define OAUTH_SKEW_US 1000000
/* expires_in when the server gives none (RFC 6749 5.1 leaves it open). */
#define OAUTH_DEFAULT_LIFETIME_S 3600
/* How long an authorization-code flow may take, state to callback. */
#define OAUTH_STATE_TTL_S 600

typedef struct oauth_result {
    long http_status;    /* 0: no answer */
    char *access_token;  /* malloc'd or NULL */
    char *refresh_token; /* a new one (rotation), or NULL */
    char *token_type;
    char *scope;
    int64_t expires_in_s; /* -1: not given */
    char *error;          /* the OAuth error code ("invalid_grant"), or NULL */
    char *message;        /* what went wrong, for people; never a secret */
    int retryable;        /* no answer, 5xx, 429 */
} oauth_result;

void oauth_result_clear(oauth_result *r);

/* POSTs a token request to fields' token_url with the pairs given
 * (NULL-terminated: name, value, name, value, ..., NULL), authenticating
 * the client as fields say. timeout_ms: the whole request. Fills r.
 * Returns 0 when an access token came back, else -1 (r says why). */
int oauth_request(const json_t *fields, const char *const *pairs,
                  long timeout_ms, oauth_result *r);

enum oauth_action {
    OAUTH_USE,      /* the cached access token is good */
    OAUTH_REFRESH,  /* grant_type=refresh_token with *refresh_token */
    OAUTH_FETCH,    /* grant_type=client_credentials */
    OAUTH_REAUTH,   /* a refresh failed for good: needs re-authorisation */
    OAUTH_AUTHORIZE /* authorization_code and no token yet */
};

/* What to do for a connection (fields: the instance's) with its cached
 * token (NULL: none), at now_us; force: the resource refused the token
 * (401). *refresh_token: borrowed from token or fields, for OAUTH_REFRESH. */
enum oauth_action oauth_plan(const json_t *fields, const json_t *token,
                             int64_t now_us, int force,
                             const char **refresh_token);

/* The new token after an answer r to a request made at now_us; prev: the
 * token before (for a refresh token the server did not rotate). Returns a
 * new ref: status "ok", or "reauth" for invalid_grant; NULL for a failure
 * that changes nothing (no answer, 5xx, ...). */
json_t *oauth_apply(const json_t *prev, const oauth_result *r, int64_t now_us);

/* PKCE (RFC 7636): a verifier of 32 random bytes (43 characters) and its
 * S256 challenge. Return 0 or -1. */
int oauth_pkce_verifier(char out[44]);
int oauth_pkce_challenge(const char *verifier, char out[44]);
/* 16 random bytes as 32 hex digits: an authorization request's state. */
int oauth_random_state(char out[33]);

/* The authorization URL: fields' authorize_url with response_type=code,
 * client_id, redirect_uri, scope, state, code_challenge and
 * code_challenge_method=S256 (and audience when set). malloc'd or NULL. */
char *oauth_authorize_url(const json_t *fields, const char *redirect_uri,
                          const char *state, const char *challenge);

/* Whether fields describe a usable connection; -1 with the reason. */
int oauth_check_fields(const json_t *fields, char *err, size_t n);

#endif
