/*
 * core/secret: parsing and loading master keys, encrypting and decrypting
 * (another key, altered text, another label), and redaction.
 */
#include "secret/secret.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define HEX_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
/* The same 32 bytes in base64. */
#define B64_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static void test_keys(void **state) {
    (void)state;
    secret_key a, b;
    char err[256];
    assert_int_equal(secret_key_parse(HEX_A "\n", &a, err, sizeof(err)), 0);
    assert_int_equal(secret_key_parse("  " B64_A, &b, err, sizeof(err)), 0);
    assert_memory_equal(a.key, b.key, SECRET_KEY_LEN);
    assert_string_equal(a.id, b.id);
    assert_int_equal(strlen(a.id), 16);
    assert_int_equal(secret_key_parse("abc", &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "64 hex digits"));

    char hex[65];
    assert_int_equal(secret_key_generate(hex), 0);
    assert_int_equal(strlen(hex), 64);
    assert_int_equal(secret_key_parse(hex, &b, err, sizeof(err)), 0);
    assert_string_not_equal(a.id, b.id);

    /* Loading: the variable wins; none at all is 0; a file open to
     * others is refused. */
    assert_int_equal(secret_key_load(NULL, NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(secret_key_load("", NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(secret_key_load("zz", NULL, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "FERRY_MASTER_KEY: "));
    char path[] = "/tmp/ferry-key-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, HEX_A "\n", 65), 65);
    close(fd);
    chmod(path, 0600);
    assert_int_equal(secret_key_load(NULL, path, &a, err, sizeof(err)), 1);
    assert_int_equal(
        secret_key_load(HEX_A, "/nonexistent", &b, err, sizeof(err)), 1);
    assert_string_equal(a.id, b.id);
    chmod(path, 0644);
    assert_int_equal(secret_key_load(NULL, path, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "readable by others"));
    unlink(path);
    assert_int_equal(secret_key_load(NULL, path, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file"));
}

static void test_encrypt(void **state) {
    (void)state;
    secret_key a, b;
    char err[256];
    char hex[65];
    assert_int_equal(secret_key_parse(HEX_A, &a, err, sizeof(err)), 0);
    assert_int_equal(secret_key_generate(hex), 0);
    assert_int_equal(secret_key_parse(hex, &b, err, sizeof(err)), 0);

    const char *pt = "refresh-token-4c1e\xc3\xa9";
    char *e1 = secret_encrypt(&a, "oauth_tokens.refresh", pt, strlen(pt));
    char *e2 = secret_encrypt(&a, "oauth_tokens.refresh", pt, strlen(pt));
    assert_non_null(e1);
    assert_true(secret_is_encrypted(e1));
    assert_false(secret_is_encrypted(pt));
    assert_null(strstr(e1, "refresh-token"));
    assert_string_not_equal(e1, e2); /* a fresh nonce each time */
    char id[17];
    assert_int_equal(secret_key_id_of(e1, id), 0);
    assert_string_equal(id, a.id);

    char *out = NULL;
    size_t len = 0;
    assert_int_equal(secret_decrypt(&a, "oauth_tokens.refresh", e1, &out, &len,
                                    err, sizeof(err)),
                     0);
    assert_string_equal(out, pt);
    assert_int_equal(len, strlen(pt));
    free(out);

    /* Another key: named, not taken for tampering. */
    assert_int_equal(secret_decrypt(&b, "oauth_tokens.refresh", e1, &out, NULL,
                                    err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, a.id));
    assert_non_null(strstr(err, b.id));
    /* Another label. */
    assert_int_equal(secret_decrypt(&a, "oauth_tokens.access", e1, &out, NULL,
                                    err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "altered"));
    /* One character changed. */
    size_t l = strlen(e1);
    e1[l - 3] = e1[l - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(secret_decrypt(&a, "oauth_tokens.refresh", e1, &out, NULL,
                                    err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "altered"));
    assert_int_equal(
        secret_decrypt(&a, "", "plain", &out, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "not an encrypted value");
    free(e1);
    free(e2);

    /* Empty values round-trip too. */
    char *e3 = secret_encrypt(&a, "", "", 0);
    assert_int_equal(secret_decrypt(&a, "", e3, &out, &len, err, sizeof(err)),
                     0);
    assert_string_equal(out, "");
    free(out);
    free(e3);
}

static void test_redact(void **state) {
    (void)state;
    secret_set s = {0};
    assert_int_equal(secret_set_add(&s, "s3cr3t"), 0);
    assert_int_equal(secret_set_add(&s, "s3cr3t-longer"), 0);
    assert_int_equal(secret_set_add(&s, "abcde"), 0); /* too short: ignored */
    assert_int_equal(secret_set_add(&s, "s3cr3t"), 0);
    assert_int_equal(s.n, 2);
    int oom;
    char *r = secret_redact(&s, "a s3cr3t-longer and s3cr3t, abcde", &oom);
    assert_string_equal(r, "a [redacted] and [redacted], abcde");
    free(r);
    assert_null(secret_redact(&s, "nothing here", &oom));
    assert_int_equal(oom, 0);
    assert_true(secret_set_found(&s, "xs3cr3tx"));
    assert_false(secret_set_found(&s, "s3cr"));
    secret_set_clear(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_encrypt),
        cmocka_unit_test(test_redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
