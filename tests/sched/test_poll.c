/*
 * Poll triggers (core/sched/poll.c): the trigger's keys and the file
 * options with their errors, config references, globs, the directory scan,
 * and which files a look may take (read lock, min_age, sort_by).
 */
#include "sched/poll.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

static json_t *js(const char *text) {
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        fail_msg("bad test JSON: %s: %s", text, e.text);
    return v;
}

/* The message poll_check_trigger gives, or "" when it accepts. */
static const char *check(const char *trigger) {
    static char msg[512];
    json_t *t = js(trigger);
    msg[0] = 0;
    if (poll_check_trigger(t, msg, sizeof(msg)) == 0)
        msg[0] = 0;
    json_decref(t);
    return msg;
}

static void test_trigger_errors(void **state) {
    (void)state;
    static const struct {
        const char *trigger, *want;
    } cases[] = {
        {"{'type':'poll'}", "source: a poll trigger names its source"},
        {"{'type':'poll','source':'file.poll'}",
         "options.directory: file.poll needs the directory"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d'},"
         "'batch_size':0}",
         "batch_size: expected a whole number from 1"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d'},"
         "'every':'soon'}",
         "every: "},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d'},"
         "'misfire':'run_once'}",
         "misfire: unknown key of a poll trigger"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d',"
         "'colour':'red'}}",
         "options.colour: unknown option"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d',"
         "'include':3}}",
         "options.include: expected a glob"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d',"
         "'exclude':['*.tmp','']}}",
         "options.exclude[1]: expected a non-empty glob"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d',"
         "'min_age':'ages'}}",
         "options.min_age: expected a duration"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d',"
         "'read_lock':'rename'}}",
         "options.read_lock: expected \"changed\""},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d',"
         "'max_per_poll':-1}}",
         "options.max_per_poll: expected a whole number"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d',"
         "'sort_by':'colour'}}",
         "options.sort_by: expected \"name\", \"mtime\" or \"size\""},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d',"
         "'delete':true,'keep':true}}",
         "options.delete: delete and keep exclude each other"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d',"
         "'delete':true,'move_to':'done'}}",
         "options.move_to: delete and move_to exclude each other"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d',"
         "'keep':true,'move_failed_to':'bad'}}",
         "options.keep: keep leaves files where they are"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d',"
         "'move_to':'../out'}}",
         "options.move_to: '../out' must be a directory inside"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d',"
         "'move_to':'/srv/done'}}",
         "options.move_to: '/srv/done' must be a directory inside"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d',"
         "'move_to':'x','move_failed_to':'x'}}",
         "options.move_failed_to: must differ from move_to"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d'},"
         "'timezone':'Mars/Base'}",
         "timezone: unknown time zone 'Mars/Base'"},
        {"{'type':'poll','source':'file.poll','options':{'directory':'d'},"
         "'files':{}}",
         "files: file.poll takes its file options in \"options\""},
        {"{'type':'poll','source':'sftp.new_files','files':{'directory':'x'}}",
         "files.directory: the source's own options say where to look"},
        {"{'type':'poll','source':'sftp.new_files','files':{'move_to':'../x'}}",
         "files.move_to: '../x' must be a directory inside"},
        {"{'type':'poll','source':'sftp.new_files','files':[1]}",
         "files: expected an object of file options"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *q = strdup(cases[i].trigger);
        for (char *p = q; *p; p++)
            if (*p == '\'')
                *p = '"';
        const char *got = check(q);
        if (!strstr(got, cases[i].want))
            fail_msg("%s\n  got:  %s\n  want: %s", q, got, cases[i].want);
        free(q);
    }
    assert_string_equal(check("{\"type\":\"poll\",\"source\":\"sftp.new_"
                              "files\",\"options\":{\"host\":\"x\"}}"),
                        "");
}

static void test_defaults_and_config(void **state) {
    (void)state;
    json_t *t = js("{\"type\":\"poll\",\"source\":\"file.poll\",\"options\":"
                   "{\"directory\":\"{{ config.inbox }}\"}}");
    json_t *config = js("{\"inbox\":\"/srv/in\"}");
    poll_spec s;
    char msg[256] = "";
    assert_int_equal(poll_spec_from_trigger(&s, t, config, msg, sizeof(msg)),
                     0);
    assert_string_equal(s.file.directory, "/srv/in");
    assert_int_equal(s.batch_size, 1);
    assert_int_equal(s.file.read_lock, 1);
    assert_int_equal(s.file.read_lock_interval_ms, 1000);
    assert_string_equal(s.file.move_to, ".done");
    assert_string_equal(s.file.move_failed_to, ".error");
    assert_int_equal(s.file.sort_by, POLL_SORT_NAME);
    /* No every and no cron: every 10 s for a local directory. */
    assert_int_equal(s.sched.every_s, 10);
    poll_spec_clear(&s);
    json_decref(config);

    config = js("{}");
    assert_int_equal(poll_spec_from_trigger(&s, t, config, msg, sizeof(msg)),
                     -1);
    assert_string_equal(msg, "options.directory: config 'inbox' is not set");
    poll_spec_clear(&s);
    json_decref(config);
    json_decref(t);

    t = js("{\"type\":\"poll\",\"source\":\"file.poll\",\"options\":"
           "{\"directory\":\"d\",\"delete\":true,\"sort_by\":\"-mtime\"}}");
    assert_int_equal(poll_spec_from_trigger(&s, t, NULL, msg, sizeof(msg)), 0);
    assert_null(s.file.move_to);
    assert_string_equal(s.file.move_failed_to, ".error");
    assert_int_equal(s.file.sort_by, POLL_SORT_MTIME);
    assert_int_equal(s.file.sort_desc, 1);
    poll_spec_clear(&s);
    json_decref(t);

    t = js("{\"type\":\"poll\",\"source\":\"x.y\",\"every\":\"5m\"}");
    assert_int_equal(poll_spec_from_trigger(&s, t, NULL, msg, sizeof(msg)), 0);
    assert_int_equal(s.sched.every_s, 300);
    assert_null(s.file.directory);
    poll_spec_clear(&s);
    json_decref(t);
}

static void test_globs(void **state) {
    (void)state;
    assert_true(poll_glob_match("*.xml", "a.xml"));
    assert_true(poll_glob_match("*.xml", "sub/dir/a.xml"));
    assert_false(poll_glob_match("*.xml", "a.xml.tmp"));
    assert_true(poll_glob_match("sub/*.xml", "sub/a.xml"));
    assert_false(poll_glob_match("sub/*.xml", "sub/deeper/a.xml"));
    assert_false(poll_glob_match("sub/*.xml", "a.xml"));
    assert_true(poll_glob_match("report-[0-9]*.csv", "report-2027.csv"));
    assert_false(poll_glob_match("report-[0-9]*.csv", "report-x.csv"));
}

static char *tmpdir(void) {
    char tmpl[] = "/tmp/ferry-poll-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void touch(const char *dir, const char *rel, const char *text,
                  long mtime_s) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    *slash = 0;
    mkdir(path, 0777);
    *slash = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    if (mtime_s) {
        struct timeval tv[2] = {{mtime_s, 0}, {mtime_s, 0}};
        utimes(path, tv);
    }
}

static void rmtree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_scan(void **state) {
    (void)state;
    char *d = tmpdir();
    touch(d, "a.xml", "aa", 0);
    touch(d, "b.txt", "b", 0);
    touch(d, "ignore-c.xml", "c", 0);
    touch(d, ".hidden.xml", "h", 0);
    touch(d, "sub/d.xml", "dddd", 0);
    touch(d, ".done/old.xml", "o", 0);
    touch(d, "done/old2.xml", "o", 0);
    poll_file_opts o = {.directory = d};
    char *inc[] = {"*.xml"}, *exc[] = {"ignore-*"};
    o.include = inc;
    o.ninclude = 1;
    o.exclude = exc;
    o.nexclude = 1;
    o.move_to = "done";
    poll_look l;
    char err[256];
    assert_int_equal(poll_scan(&o, &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.files[0].rel, "a.xml");
    assert_int_equal(l.files[0].size, 2);
    poll_look_clear(&l);

    o.recursive = 1;
    assert_int_equal(poll_scan(&o, &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 2); /* not done/ (move_to), not .done/ (hidden) */
    assert_string_equal(l.files[0].rel, "a.xml");
    assert_string_equal(l.files[1].rel, "sub/d.xml");
    poll_look_clear(&l);

    o.directory = "/nonexistent/ferry-poll";
    assert_int_equal(poll_scan(&o, &l, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/ferry-poll: No such file"));
    rmtree(d);
    free(d);
}

static void test_ready(void **state) {
    (void)state;
    poll_file files[3] = {
        {.rel = "b", .size = 30, .mtime_ns = 5000000000LL},
        {.rel = "a", .size = 10, .mtime_ns = 9000000000LL},
        {.rel = "c", .size = 20, .mtime_ns = 1000000000LL},
    };
    poll_look prev = {0}, cur = {0};
    /* First look at t=10 s: nothing carried, all first seen now. */
    cur.files = files;
    cur.n = 3;
    poll_look_carry(&cur, &prev, 10000);
    poll_file_opts o = {.read_lock = 1, .read_lock_interval_ms = 1000};
    size_t *idx, n;
    int64_t recheck;
    assert_int_equal(poll_ready(&o, &cur, 10000, &idx, &n, &recheck), 0);
    assert_int_equal(n, 0);
    assert_int_equal(recheck, 11000);
    free(idx);

    /* A second look at 11 s: "b" grew, the others did not. */
    poll_file files2[3] = {files[0], files[1], files[2]};
    poll_file prevfiles[3] = {files[1], files[0], files[2]}; /* by rel */
    prev.files = prevfiles;
    prev.n = 3;
    files2[0].size = 31;
    poll_look cur2 = {.files = files2, .n = 3};
    /* cur must be sorted by rel for carry: a, b, c. */
    poll_file sorted[3] = {files2[1], files2[0], files2[2]};
    cur2.files = sorted;
    poll_look_carry(&cur2, &prev, 11000);
    assert_int_equal(cur2.files[0].stable_since_ms, 10000); /* a */
    assert_int_equal(cur2.files[1].stable_since_ms, 11000); /* b grew */
    assert_int_equal(cur2.files[2].stable_since_ms, 10000); /* c */
    assert_int_equal(poll_ready(&o, &cur2, 11000, &idx, &n, &recheck), 0);
    assert_int_equal(n, 2);
    assert_string_equal(cur2.files[idx[0]].rel, "a");
    assert_string_equal(cur2.files[idx[1]].rel, "c");
    assert_int_equal(recheck, 12000);
    free(idx);

    /* sort_by -size, and min_age: "a" (mtime 9 s) is 2 s old at 11 s. */
    o.sort_by = POLL_SORT_SIZE;
    o.sort_desc = 1;
    o.min_age_ms = 3000;
    assert_int_equal(poll_ready(&o, &cur2, 11000, &idx, &n, &recheck), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cur2.files[idx[0]].rel, "c");
    assert_int_equal(recheck, 12000); /* b's read lock before a's age */
    free(idx);
    o.read_lock = 0;
    assert_int_equal(poll_ready(&o, &cur2, 11500, &idx, &n, &recheck), 0);
    assert_int_equal(n, 2);
    assert_string_equal(cur2.files[idx[0]].rel, "b"); /* 31 bytes */
    assert_string_equal(cur2.files[idx[1]].rel, "c");
    assert_int_equal(recheck, 12000); /* a is old enough at 12 s */
    free(idx);

    o.sort_by = POLL_SORT_MTIME;
    o.sort_desc = 0;
    o.min_age_ms = 0;
    assert_int_equal(poll_ready(&o, &cur2, 12500, &idx, &n, &recheck), 0);
    assert_int_equal(n, 3);
    assert_string_equal(cur2.files[idx[0]].rel, "c");
    assert_string_equal(cur2.files[idx[1]].rel, "b");
    assert_string_equal(cur2.files[idx[2]].rel, "a");
    assert_int_equal(recheck, -1);
    free(idx);

    char *key = poll_file_key(&cur2.files[0]);
    assert_string_equal(key, "a|10|9000000000");
    free(key);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trigger_errors),
        cmocka_unit_test(test_defaults_and_config),
        cmocka_unit_test(test_globs),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_ready),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
