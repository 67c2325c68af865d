/*
 * The confinement of remote paths to a connection's root
 * (components/sftp/sftppath.c): normalising, resolving a step's path
 * against the root, joining names from a listing, and the helpers the
 * component builds on them.
 */
#include "sftppath.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static char out[SFTP_PATH_MAX];

static int norm(const char *p) {
    return sftp_path_normalize(p, strlen(p), out, sizeof(out));
}

static int res(const char *root, const char *p) {
    return sftp_path_resolve(root, p, strlen(p), out, sizeof(out));
}

static int child(const char *dir, const char *name) {
    return sftp_path_child(dir, name, strlen(name), out, sizeof(out));
}

static void normalize(void **state) {
    (void)state;
    assert_int_equal(norm("/"), SFTP_PATH_OK);
    assert_string_equal(out, "/");
    assert_int_equal(norm("///"), SFTP_PATH_OK);
    assert_string_equal(out, "/");
    assert_int_equal(norm("//a//b/./c/"), SFTP_PATH_OK);
    assert_string_equal(out, "/a/b/c");
    assert_int_equal(norm("/./."), SFTP_PATH_OK);
    assert_string_equal(out, "/");
    /* Names that only look like dots. */
    assert_int_equal(norm("/a/..b/b../.../.x"), SFTP_PATH_OK);
    assert_string_equal(out, "/a/..b/b../.../.x");
    assert_int_equal(norm("a/b"), SFTP_PATH_RELATIVE);
    assert_int_equal(norm(""), SFTP_PATH_EMPTY);
    assert_int_equal(norm("/a/../b"), SFTP_PATH_DOTDOT);
    assert_int_equal(norm("/.."), SFTP_PATH_DOTDOT);
    assert_int_equal(norm("/a/.."), SFTP_PATH_DOTDOT);
    assert_int_equal(sftp_path_normalize("/a\0b", 4, out, sizeof(out)),
                     SFTP_PATH_NUL);
    /* The result and its NUL must fit. */
    assert_int_equal(sftp_path_normalize("/abc", 4, out, 4), SFTP_PATH_TOOLONG);
    assert_int_equal(sftp_path_normalize("/abc", 4, out, 5), SFTP_PATH_OK);
    assert_string_equal(out, "/abc");
    assert_int_equal(sftp_path_normalize("/", 1, out, 1), SFTP_PATH_TOOLONG);
    assert_int_equal(sftp_path_normalize("/", 1, out, 2), SFTP_PATH_OK);
}

static void resolve_relative(void **state) {
    (void)state;
    const char *root = "/home/u";
    assert_int_equal(res(root, "x"), SFTP_PATH_OK);
    assert_string_equal(out, "/home/u/x");
    assert_int_equal(res(root, "."), SFTP_PATH_OK);
    assert_string_equal(out, "/home/u");
    assert_int_equal(res(root, "./in/./sub//"), SFTP_PATH_OK);
    assert_string_equal(out, "/home/u/in/sub");
    assert_int_equal(res(root, "in/.done/a.csv"), SFTP_PATH_OK);
    assert_string_equal(out, "/home/u/in/.done/a.csv");
    /* ".." is refused wherever it is, even where it would stay inside. */
    assert_int_equal(res(root, ".."), SFTP_PATH_DOTDOT);
    assert_int_equal(res(root, "../x"), SFTP_PATH_DOTDOT);
    assert_int_equal(res(root, "a/../../x"), SFTP_PATH_DOTDOT);
    assert_int_equal(res(root, "a/b/.."), SFTP_PATH_DOTDOT);
    assert_int_equal(res(root, "a/../b"), SFTP_PATH_DOTDOT);
    assert_int_equal(res(root, ""), SFTP_PATH_EMPTY);
    assert_int_equal(
        sftp_path_resolve(root, "a\0/../../etc", 12, out, sizeof(out)),
        SFTP_PATH_NUL);
    assert_int_equal(res("home/u", "x"), SFTP_PATH_RELATIVE);
}

static void resolve_absolute(void **state) {
    (void)state;
    const char *root = "/home/u";
    assert_int_equal(res(root, "/home/u"), SFTP_PATH_OK);
    assert_string_equal(out, "/home/u");
    assert_int_equal(res(root, "/home/u/"), SFTP_PATH_OK);
    assert_string_equal(out, "/home/u");
    assert_int_equal(res(root, "//home//u//x/"), SFTP_PATH_OK);
    assert_string_equal(out, "/home/u/x");
    assert_int_equal(res(root, "/home/u/./x"), SFTP_PATH_OK);
    assert_string_equal(out, "/home/u/x");
    assert_int_equal(res(root, "/etc/passwd"), SFTP_PATH_OUTSIDE);
    assert_int_equal(res(root, "/home"), SFTP_PATH_OUTSIDE);
    assert_int_equal(res(root, "/"), SFTP_PATH_OUTSIDE);
    /* A sibling whose name starts with the root's is not inside it. */
    assert_int_equal(res(root, "/home/u2/x"), SFTP_PATH_OUTSIDE);
    assert_int_equal(res(root, "/home/ux"), SFTP_PATH_OUTSIDE);
    assert_int_equal(res(root, "/home/u/../u/x"), SFTP_PATH_DOTDOT);
    assert_int_equal(res(root, "/home/u/x/../../../etc"), SFTP_PATH_DOTDOT);
}

static void resolve_root_slash(void **state) {
    (void)state;
    assert_int_equal(res("/", "x/y"), SFTP_PATH_OK);
    assert_string_equal(out, "/x/y");
    assert_int_equal(res("/", "."), SFTP_PATH_OK);
    assert_string_equal(out, "/");
    assert_int_equal(res("/", "/etc/passwd"), SFTP_PATH_OK);
    assert_string_equal(out, "/etc/passwd");
    assert_int_equal(res("/", "/../etc"), SFTP_PATH_DOTDOT);
    /* Tight buffers: "/x" needs 3 bytes. */
    assert_int_equal(sftp_path_resolve("/", "x", 1, out, 2), SFTP_PATH_TOOLONG);
    assert_int_equal(sftp_path_resolve("/", "x", 1, out, 3), SFTP_PATH_OK);
    assert_int_equal(sftp_path_resolve("/r", "x", 1, out, 4),
                     SFTP_PATH_TOOLONG);
    assert_int_equal(sftp_path_resolve("/r", "x", 1, out, 5), SFTP_PATH_OK);
    assert_string_equal(out, "/r/x");
}

static void resolve_long(void **state) {
    (void)state;
    char p[SFTP_PATH_MAX + 10];
    memset(p, 'a', sizeof(p));
    p[sizeof(p) - 1] = '\0';
    assert_int_equal(res("/r", p), SFTP_PATH_TOOLONG);
    /* Exactly filling the buffer: "/r/" + 4092 bytes + NUL. */
    p[SFTP_PATH_MAX - 4] = '\0';
    assert_int_equal(res("/r", p), SFTP_PATH_OK);
    assert_int_equal(strlen(out), SFTP_PATH_MAX - 1);
    p[SFTP_PATH_MAX - 4] = 'a';
    p[SFTP_PATH_MAX - 3] = '\0';
    assert_int_equal(res("/r", p), SFTP_PATH_TOOLONG);
}

static void child_names(void **state) {
    (void)state;
    assert_int_equal(child("/d", "a.csv"), SFTP_PATH_OK);
    assert_string_equal(out, "/d/a.csv");
    assert_int_equal(child("/", "a"), SFTP_PATH_OK);
    assert_string_equal(out, "/a");
    assert_int_equal(child("/d", ".hidden"), SFTP_PATH_OK);
    assert_int_equal(child("/d", "..."), SFTP_PATH_OK);
    assert_int_equal(child("/d", "a\\..\\b"), SFTP_PATH_OK);
    /* What a hostile server could list to escape. */
    assert_int_equal(child("/d", ""), SFTP_PATH_BADNAME);
    assert_int_equal(child("/d", "."), SFTP_PATH_BADNAME);
    assert_int_equal(child("/d", ".."), SFTP_PATH_BADNAME);
    assert_int_equal(child("/d", "../../etc/passwd"), SFTP_PATH_BADNAME);
    assert_int_equal(child("/d", "/etc/passwd"), SFTP_PATH_BADNAME);
    assert_int_equal(child("/d", "a/b"), SFTP_PATH_BADNAME);
    assert_int_equal(child("/d", "a/"), SFTP_PATH_BADNAME);
    assert_int_equal(sftp_path_child("/d", "a\0b", 3, out, sizeof(out)),
                     SFTP_PATH_NUL);
    assert_int_equal(sftp_path_child("/d", "ab", 2, out, 5), SFTP_PATH_TOOLONG);
    assert_int_equal(sftp_path_child("/d", "ab", 2, out, 6), SFTP_PATH_OK);
    assert_string_equal(out, "/d/ab");
}

static void helpers(void **state) {
    (void)state;
    assert_true(sftp_path_inside("/in", "/in"));
    assert_true(sftp_path_inside("/in", "/in/a"));
    assert_false(sftp_path_inside("/in", "/inbox"));
    assert_false(sftp_path_inside("/in", "/"));
    assert_true(sftp_path_inside("/", "/x"));
    assert_string_equal(sftp_path_relative("/in", "/in/a/b.csv"), "a/b.csv");
    assert_string_equal(sftp_path_relative("/in", "/in"), "");
    assert_string_equal(sftp_path_relative("/", "/a/b"), "a/b");
    assert_null(sftp_path_relative("/in", "/inbox/a"));
    assert_string_equal(sftp_path_name("/in/a.csv"), "a.csv");
    assert_string_equal(sftp_path_name("/"), "");
    assert_int_equal(sftp_path_parent("/a/b", out, sizeof(out)), 0);
    assert_string_equal(out, "/a");
    assert_int_equal(sftp_path_parent("/a", out, sizeof(out)), 0);
    assert_string_equal(out, "/");
    assert_int_equal(sftp_path_parent("/", out, sizeof(out)), 0);
    assert_string_equal(out, "/");
    assert_int_equal(sftp_path_parent("/a/b", out, 2), SFTP_PATH_TOOLONG);
    for (int e = 0; e >= -8; e--)
        assert_non_null(sftp_path_strerror(e));
    assert_string_equal(sftp_path_strerror(SFTP_PATH_DOTDOT),
                        "a '..' segment is not allowed");
}

static void globs(void **state) {
    (void)state;
    assert_true(sftp_path_glob("*.csv", "a.csv", "sub/a.csv"));
    assert_false(sftp_path_glob("*.csv", "a.xml", "a.xml"));
    assert_true(sftp_path_glob("sub/*.csv", "a.csv", "sub/a.csv"));
    assert_false(sftp_path_glob("sub/*.csv", "a.csv", "sub/x/a.csv"));
    assert_false(sftp_path_glob("*/a.csv", "a.csv", "a.csv"));
    assert_true(
        sftp_path_glob("report-[0-9]*", "report-7.txt", "report-7.txt"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalize),
        cmocka_unit_test(resolve_relative),
        cmocka_unit_test(resolve_absolute),
        cmocka_unit_test(resolve_root_slash),
        cmocka_unit_test(resolve_long),
        cmocka_unit_test(child_names),
        cmocka_unit_test(helpers),
        cmocka_unit_test(globs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
