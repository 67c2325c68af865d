/*
 * The engine: for_each, branch, jq, the core actions, run-time input
 * checks, the host table as a component sees it (blobs, state, config,
 * connection, info), cancellation, output lifetimes, and what is recorded
 * in a real SQLite store.
 *
 * Besides "tc" (a .so), the tests register "probe", a component compiled
 * into this executable, for what only the test can observe: the cancel
 * flag, how many times a step ran, and the reference count of an output.
 */
#include "ft.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

/* ---- probe ---- */

static const ferry_api *api;
static volatile int cancel_flag;
static json_t *kept; /* the last output of probe.make, one ref is ours */
static int marks;

static int probe_cancel(ferry_ctx *ctx, const json_t *input) {
    (void)input;
    cancel_flag = 1;
    return api->set_output(ctx, json_integer(api->cancelled(ctx)));
}

static int probe_mark(ferry_ctx *ctx, const json_t *input) {
    (void)input;
    return api->set_output(ctx, json_integer(++marks));
}

static int probe_make(ferry_ctx *ctx, const json_t *input) {
    (void)input;
    json_decref(kept);
    kept = json_pack("{s:i}", "v", 1);
    return api->set_output(ctx, json_incref(kept));
}

/* Outputs how many references to kept exist besides ours. */
static int probe_refs(ferry_ctx *ctx, const json_t *input) {
    (void)input;
    return api->set_output(
        ctx, json_integer(kept ? (json_int_t)kept->refcount - 1 : -1));
}

static const ferry_action probe_actions[] = {
    {"probe.cancel", "Cancel", NULL, NULL, "cancelled()", probe_cancel, 0},
    {"probe.mark", "Mark", NULL, NULL, "runs so far", probe_mark, 0},
    {"probe.make", "Make", NULL, NULL, "an object", probe_make, 0},
    {"probe.refs", "Refs", NULL, NULL, "other refs", probe_refs, 0},
    {0}};

static const ferry_component probe_desc = {
    FERRY_COMPONENT_HEADER,
    .name = "probe",
    .version = "1.0.0",
    .actions = probe_actions,
};

static int setup(void **state) {
    ft *t = ft_new();
    char *reason = NULL;
    if (abi_registry_add_builtin(&t->reg, &probe_desc, &reason))
        fail_msg("probe: %s", reason ? reason : "?");
    api = flow_host_api();
    cancel_flag = 0;
    marks = 0;
    t->opts.cancel = &cancel_flag;
    *state = t;
    return 0;
}

static int teardown(void **state) {
    ft_free(*state);
    json_decref(kept);
    kept = NULL;
    return 0;
}

#define FLOW(steps) "{'name':'t','flows':[{'name':'f','steps':[" steps "]}]}"

/* Fails unless the execution ended with status, code, at step, with msg
 * in its message. */
#define assert_failed(t, status_, code, step, msg)                             \
    do {                                                                       \
        assert_string_equal((t)->res.status, status_);                         \
        assert_string_equal(ferry_err_name((t)->res.error_code),               \
                            ferry_err_name(code));                             \
        assert_string_equal((t)->res.error_step, step);                        \
        ft_assert_contains((t)->res.error_message, msg);                       \
        assert_null((t)->res.output);                                          \
    } while (0)

/* ---- for_each ---- */

static void test_for_each(void **state) {
    ft *t = *state;
    ft_load(t,
            FLOW("{'name':'rows','for_each':'{{ trigger.rows }}','as':'row',"
                 "'steps':[{'name':'cells','for_each':'{{ row.cells }}',"
                 "'steps':[{'name':'first','action':'core.set',"
                 "'input':{'value':'ignored'}},"
                 "{'name':'c','action':'core.set',"
                 "'input':{'value':{'cell':'{{ item }}','i':'{{ index }}',"
                 "'row':'{{ row.name }}'}}}]}]}"),
            NULL);
    ft_run(t, NULL,
           "{'rows':[{'name':'a','cells':[1,2]},{'name':'b','cells':[3]},"
           "{'name':'c','cells':[]}]}");
    ft_assert_output(t, "[[{'cell':1,'i':0,'row':'a'},"
                        "{'cell':2,'i':1,'row':'a'}],"
                        "[{'cell':3,'i':0,'row':'b'}],[]]");
    ft_run(t, NULL, "{'rows':[]}");
    ft_assert_output(t, "[]");

    /* Not an array when it runs: the step fails naming the type. */
    ft_run(t, NULL, "{'rows':'a,b'}");
    assert_failed(t, "failed", FERRY_EINVAL, "rows",
                  "for_each needs an array, got string");
    ft_run(t, NULL, "{'rows':[{'name':'x','cells':{'a':1}}]}");
    assert_failed(t, "failed", FERRY_EINVAL, "rows[0].cells",
                  "for_each needs an array, got object");
    ft_run(t, NULL, NULL);
    assert_failed(t, "failed", FERRY_EINVAL, "rows",
                  "for_each needs an array, got null");

    /* A literal array, and the loop's output read by a later step. */
    ft_load(t,
            FLOW("{'name':'l','for_each':[3,4],"
                 "'steps':[{'name':'sq','action':'core.set',"
                 "'input':{'value':'{{ item }}{{ index }}'}}]},"
                 "{'name':'out','action':'core.set',"
                 "'input':{'value':{'l':'{{ steps.l.output }}'}}}"),
            NULL);
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "{'l':['30','41']}");
}

/* ---- branch ---- */

static void test_branch_truthiness(void **state) {
    ft *t = *state;
    ft_load(t,
            FLOW("{'name':'b','branch':[{'when':'{{ trigger.v }}',"
                 "'steps':[{'name':'yes','action':'core.set',"
                 "'input':{'value':'yes'}}]}],"
                 "'else':[{'name':'no','action':'core.set',"
                 "'input':{'value':'no'}}]}"),
            NULL);
    static const char *const falsy[] = {"{'v':false}", "{'v':null}", "{'v':0}",
                                        "{'v':0.0}",   "{'v':''}",   "{'v':[]}",
                                        "{'v':{}}",    "{}"};
    static const char *const truthy[] = {
        "{'v':true}",   "{'v':1}",         "{'v':-1}",      "{'v':0.5}",
        "{'v':'0'}",    "{'v':' '}",       "{'v':'false'}", "{'v':[0]}",
        "{'v':[null]}", "{'v':{'a':null}}"};
    for (size_t i = 0; i < sizeof(falsy) / sizeof(falsy[0]); i++) {
        ft_run(t, NULL, falsy[i]);
        print_message("falsy %s\n", falsy[i]);
        ft_assert_output(t, "'no'");
    }
    for (size_t i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++) {
        ft_run(t, NULL, truthy[i]);
        print_message("truthy %s\n", truthy[i]);
        ft_assert_output(t, "'yes'");
    }
}

static void test_branch_cases(void **state) {
    ft *t = *state;
    /* The first truthy case is taken, the others are not run. */
    ft_load(t,
            FLOW("{'name':'x','action':'core.set','input':{'value':7}},"
                 "{'name':'b','branch':[{'when':false,'steps':[{'name':'a',"
                 "'action':'core.set','input':{'value':'a'}}]},"
                 "{'when':'{{ trigger.one }}','steps':[{'name':'b1',"
                 "'action':'core.set','input':{'value':'b'}},"
                 "{'name':'b2','action':'core.set',"
                 "'input':{'value':'b{{ steps.x.output }}'}}]},"
                 "{'when':true,'steps':[{'name':'c','action':'core.set',"
                 "'input':{'value':'c'}}]}]},"
                 "{'name':'after','action':'core.set',"
                 "'input':{'value':'{{ steps.b.output }}'}}"),
            NULL);
    ft_run(t, NULL, "{'one':1}");
    ft_assert_output(t, "'b7'");
    ft_run(t, NULL, "{'one':0}");
    ft_assert_output(t, "'c'");

    /* No case taken and no else: the branch outputs null. */
    ft_load(t,
            FLOW("{'name':'b','branch':[{'when':'{{ trigger.go }}',"
                 "'steps':[{'name':'a','action':'core.set',"
                 "'input':{'value':'a'}}]}]},"
                 "{'name':'out','action':'core.set',"
                 "'input':{'value':{'b':'{{ steps.b.output }}'}}}"),
            NULL);
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "{'b':null}");
    ft_run(t, NULL, "{'go':'yes'}");
    ft_assert_output(t, "{'b':'a'}");

    /* When computed by a jq step, as docs/flows.md suggests. */
    ft_load(t,
            FLOW("{'name':'big','jq':'.count > 10','input':'{{ trigger }}'},"
                 "{'name':'b','branch':[{'when':'{{ steps.big.output }}',"
                 "'steps':[{'name':'a','action':'core.set',"
                 "'input':{'value':'big'}}]}],"
                 "'else':[{'name':'e','action':'core.set',"
                 "'input':{'value':'small'}}]}"),
            NULL);
    ft_run(t, NULL, "{'count':11}");
    ft_assert_output(t, "'big'");
    ft_run(t, NULL, "{'count':10}");
    ft_assert_output(t, "'small'");
}

/* ---- jq ---- */

static void test_jq(void **state) {
    ft *t = *state;
    ft_load(t,
            "{'name':'t','flows':["
            "{'name':'one','steps':["
            " {'name':'j','jq':'.a + 1','input':{'a':'{{ trigger.n }}'}}]},"
            "{'name':'noinput','steps':[{'name':'j','jq':'. == null'}]},"
            "{'name':'collect','steps':["
            " {'name':'j','jq':'.[] | . * 2','input':'{{ trigger }}',"
            "  'collect':true}]},"
            "{'name':'none','steps':[{'name':'j','jq':'empty','input':1}]},"
            "{'name':'many','steps':[{'name':'j','jq':'.[]','input':[1,2]}]},"
            "{'name':'error','steps':[{'name':'j','jq':'.a','input':5}]},"
            "{'name':'raise','steps':["
            " {'name':'j','jq':'error(\\'boom\\')'}]}]}",
            NULL);
    ft_run(t, "one", "{'n':41}");
    ft_assert_output(t, "42");
    ft_run(t, "noinput", NULL);
    ft_assert_output(t, "true");
    ft_run(t, "collect", "[1,2,3]");
    ft_assert_output(t, "[2,4,6]");
    ft_run(t, "collect", "[]");
    ft_assert_output(t, "[]");
    ft_run(t, "none", NULL);
    assert_failed(t, "failed", FERRY_EINVAL, "j",
                  "jq program produced no result");
    ft_run(t, "many", NULL);
    assert_failed(t, "failed", FERRY_EINVAL, "j",
                  "jq program produced more than one result");
    ft_run(t, "error", NULL);
    assert_failed(t, "failed", FERRY_EINVAL, "j", "Cannot index number");
    ft_run(t, "raise", NULL);
    assert_failed(t, "failed", FERRY_EINVAL, "j", "boom");
}

/* ---- core actions ---- */

static void test_core_fail(void **state) {
    ft *t = *state;
    ft_load(t,
            "{'name':'t','flows':["
            "{'name':'plain','steps':["
            " {'name':'a','action':'core.set','input':{'value':1}},"
            " {'name':'boom','action':'core.fail','input':{'message':'no'}},"
            " {'name':'never','action':'core.set','input':{'value':2}}]},"
            "{'name':'loop','steps':["
            " {'name':'loop','for_each':[0,1,2,3],'steps':["
            "  {'name':'m','action':'probe.mark'},"
            "  {'name':'two','jq':'. == 2','input':'{{ item }}'},"
            "  {'name':'br','branch':[{'when':'{{ steps.two.output }}',"
            "   'steps':[{'name':'boom','action':'core.fail','input':"
            "    {'message':'bad item {{ item }}','code':'REMOTE',"
            "     'retryable':true}}]}]}]}]},"
            "{'name':'direct','steps':["
            " {'name':'loop','for_each':[0],'steps':["
            "  {'name':'boom','action':'core.fail',"
            "   'input':{'message':'m','code':'FERRY_ETIMEOUT'}}]}]},"
            "{'name':'badcode','steps':["
            " {'name':'boom','action':'core.fail',"
            "  'input':{'message':'m','code':'NOPE'}}]},"
            "{'name':'nested','steps':["
            " {'name':'o','for_each':[[1,2]],'steps':["
            "  {'name':'i','for_each':'{{ item }}','steps':["
            "   {'name':'br','branch':[{'when':true,'steps':["
            "    {'name':'boom','action':'core.fail',"
            "     'input':{'message':'bad {{ item }}'}}]}]}]}]}]}]}",
            NULL);
    ft_run(t, "plain", NULL);
    assert_failed(t, "failed", FERRY_EFAILED, "boom", "no");
    assert_string_equal(t->res.error_message, "no");

    ft_run(t, "loop", NULL);
    assert_failed(t, "failed", FERRY_EREMOTE, "loop[2].br.boom", "bad item 2");
    assert_int_equal(marks, 3); /* iteration 3 never ran */
    assert_string_equal(t->res.error_message,
                        "iteration 2: loop[2].br.boom: bad item 2");

    ft_run(t, "direct", NULL);
    assert_failed(t, "failed", FERRY_ETIMEOUT, "loop[0].boom", "m");

    /* However deep, the message names the step and its message once. */
    ft_run(t, "nested", NULL);
    assert_failed(t, "failed", FERRY_EFAILED, "o[0].i[0].br.boom", "bad 1");
    assert_string_equal(t->res.error_message,
                        "iteration 0: o[0].i[0].br.boom: bad 1");

    ft_run(t, "badcode", NULL);
    assert_failed(t, "failed", FERRY_EINVAL, "boom",
                  "unknown error code 'NOPE'");
}

static void test_core_log(void **state) {
    ft *t = *state;
    ft_load(t,
            FLOW("{'name':'lg','action':'core.log','input':"
                 " {'message':'hello {{ trigger.who }}','level':'warn',"
                 "  'fields':{'k':1}}},"
                 "{'name':'l','for_each':[1],'steps':["
                 " {'name':'in','action':'core.log',"
                 "  'input':{'message':'inner'}}]},"
                 "{'name':'after','action':'core.set','input':{'value':"
                 " ['{{ steps.lg.output }}','{{ steps.l.output }}']}}"),
            NULL);
    ft_run(t, NULL, "{'who':'you'}");
    ft_assert_output(t, "[null,[null]]");
    ft_assert_json(t->logs, "[{'path':'lg','level':30,'message':'hello you'},"
                            "{'path':'l[0].in','level':20,'message':'inner'}]");

    ft_load(t,
            FLOW("{'name':'lg','action':'core.log','input':{'message':'x',"
                 "'level':'loud'}}"),
            NULL);
    ft_run(t, NULL, NULL);
    assert_failed(t, "failed", FERRY_EINVAL, "lg", "unknown level 'loud'");
}

/* ---- inputs checked when the step runs ---- */

static void test_runtime_input_types(void **state) {
    ft *t = *state;
    ft_load(t,
            "{'name':'t','flows':["
            "{'name':'type','steps':[{'name':'e','action':'tc.echo',"
            " 'input':{'n':'{{ trigger.v }}'}}]},"
            "{'name':'blob','steps':[{'name':'e','action':'tc.echo',"
            " 'input':{'blob':'{{ trigger.v }}'}}]},"
            "{'name':'opt','steps':[{'name':'e','action':'tc.echo',"
            " 'input':{'text':'x','n':'{{ trigger.nope }}',"
            "  'obj':'{{ trigger.nope }}','num':'{{ trigger.v }}',"
            "  'dflt':'{{ trigger.nope }}'}}]},"
            "{'name':'req','steps':[{'name':'lg','action':'core.log',"
            " 'input':{'message':'{{ trigger.nope }}'}}]},"
            "{'name':'setnull','steps':[{'name':'s','action':'core.set',"
            " 'input':{'value':null}}]},"
            "{'name':'setref','steps':[{'name':'s','action':'core.set',"
            " 'input':{'value':'{{ trigger.nope }}'}}]}]}",
            NULL);
    ft_run(t, "type", "{'v':'seven'}");
    assert_failed(
        t, "failed", FERRY_EINVAL, "e",
        "input 'n' of action 'tc.echo' must be an integer, got string");
    ft_run(t, "type", "{'v':7}");
    ft_assert_output(t, "{'n':7,'dflt':'d'}");
    ft_run(t, "blob", "{'v':{'id':1}}");
    assert_failed(
        t, "failed", FERRY_EINVAL, "e",
        "input 'blob' of action 'tc.echo' must be a blob, got object");

    /* A null optional input is absent for the action (or its default). */
    ft_run(t, "opt", "{'v':2}");
    ft_assert_output(t, "{'text':'x','num':2,'dflt':'d'}");
    ft_run(t, "req", NULL);
    assert_failed(t, "failed", FERRY_EINVAL, "lg",
                  "input 'message' of action 'core.log' is required but its"
                  " reference resolved to null");

    /* core.set's value is "any": null is a value like another. */
    ft_run(t, "setnull", NULL);
    ft_assert_output(t, "null");
    ft_run(t, "setref", NULL);
    ft_assert_output(t, "null");
}

static void test_action_return_codes(void **state) {
    ft *t = *state;
    ft_load(t,
            "{'name':'t','flows':["
            "{'name':'bare','steps':[{'name':'r','action':'tc.ret',"
            " 'input':{'code':-5}}]},"
            "{'name':'msg','steps':[{'name':'r','action':'tc.ret',"
            " 'input':{'code':-17,'message':'it said no'}}]},"
            "{'name':'positive','steps':[{'name':'r','action':'tc.ret',"
            " 'input':{'code':3}}]},"
            "{'name':'ok','steps':[{'name':'r','action':'tc.ret',"
            " 'input':{'code':0}}]}]}",
            NULL);
    ft_run(t, "bare", NULL);
    assert_failed(t, "failed", FERRY_ETIMEOUT, "r", "timed out");
    ft_run(t, "msg", NULL);
    assert_failed(t, "failed", FERRY_EREMOTE, "r", "it said no");
    ft_run(t, "positive", NULL);
    assert_failed(t, "failed", FERRY_EINTERNAL, "r",
                  "action 'tc.ret' returned 3, not a FERRY_E* code");
    ft_run(t, "ok", NULL);
    ft_assert_output(t, "null");
}

/* ---- the host table ---- */

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_blobs(void **state) {
    ft *t = *state;
    ft_load(t,
            "{'name':'t','flows':["
            "{'name':'f','steps':["
            " {'name':'w','action':'tc.blob_write','input':"
            "  {'text':'hello blob world','parts':3,'content_type':'text/x'}},"
            " {'name':'f','action':'tc.blob_from',"
            "  'input':{'text':'{{ trigger.s }}'}},"
            " {'name':'rw','action':'tc.blob_read',"
            "  'input':{'blob':'{{ steps.w.output }}','chunk':4}},"
            " {'name':'rf','action':'tc.blob_read',"
            "  'input':{'blob':'{{ steps.f.output }}'}},"
            " {'name':'out','action':'core.set','input':{'value':"
            "  {'w':'{{ steps.w.output }}','f':'{{ steps.f.output }}',"
            "   'rw':'{{ steps.rw.output }}','rf':'{{ steps.rf.output }}'}}}]},"
            "{'name':'read','steps':[{'name':'r','action':'tc.blob_read',"
            " 'input':{'blob':'{{ trigger }}'}}]}]}",
            NULL);
    int files_before = count_entries(t->dir);
    ft_run(t, "f", "{'s':'abc'}");
    assert_string_equal(t->res.status, "succeeded");
    json_t *out = t->res.output;
    ft_assert_json(json_object_get(out, "rw"),
                   "{'streamed':'hello blob world','reads':4,"
                   "'mapped':'hello blob world','size':16}");
    ft_assert_json(json_object_get(out, "rf"),
                   "{'streamed':'abc','reads':1,'mapped':'abc','size':3}");
    json_t *w = json_object_get(out, "w");
    assert_int_equal(json_integer_value(json_object_get(w, "size")), 16);
    assert_string_equal(json_string_value(json_object_get(w, "content_type")),
                        "text/x");
    const char *id = json_string_value(json_object_get(w, "$blob"));
    assert_non_null(id);
    /* A blob belongs to its execution. */
    assert_memory_equal(id, t->res.id, strlen(t->res.id));
    json_t *f = json_object_get(out, "f");
    assert_string_equal(json_string_value(json_object_get(f, "content_type")),
                        "text/plain");
    assert_string_not_equal(id, json_string_value(json_object_get(f, "$blob")));

    /* Another execution cannot open it. */
    char *ref = json_dumps(w, JSON_COMPACT);
    for (char *p = ref; *p; p++)
        if (*p == '"')
            *p = '\'';
    ft_run(t, "read", ref);
    free(ref);
    assert_failed(t, "failed", FERRY_ENOTFOUND, "r", "no such blob");

    /* An empty blob. */
    ft_run(t, "f", "{'s':''}");
    ft_assert_json(json_object_get(t->res.output, "rf"),
                   "{'streamed':'','reads':0,'mapped':'','size':0}");
    /* Blobs are gone once the execution is over. */
    assert_int_equal(count_entries(t->dir), files_before);
}

static void test_state(void **state) {
    ft *t = *state;
    const char *flow =
        FLOW("{'name':'a','action':'tc.count'},"
             "{'name':'b','action':'tc.count'},"
             "{'name':'other','action':'tc.count','input':{'key':'m'}},"
             "{'name':'out','action':'core.set',"
             "'input':{'value':['{{ steps.a.output }}','{{ steps.b.output }}',"
             "'{{ steps.other.output }}']}}");
    /* Without a store, state lasts for one execution. */
    ft_load(t, flow, NULL);
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "[1,2,1]");
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "[1,2,1]");

    /* With one, it persists across executions, per instance. */
    ft_open_store(t, "state.db");
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "[1,2,1]");
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "[3,4,2]");
    ft_load(t, flow, "{'integration':'t','name':'other'}");
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "[1,2,1]");
    ft_load(t, flow, NULL);
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "[5,6,3]");

    /* And across store handles: it is durable. */
    store_close(t->st);
    t->st = NULL;
    ft_open_store(t, "state.db");
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "[7,8,4]");
}

static void test_config_connection_info(void **state) {
    ft *t = *state;
    const char *integration =
        "{'name':'t','config':{'a':{'type':'integer','default':1},"
        " 's':{'type':'string'}},"
        "'connections':{'target':{'type':'tc.key'}},"
        "'flows':[{'name':'f','steps':["
        " {'name':'ca','action':'tc.config','input':{'name':'a'}},"
        " {'name':'cs','action':'tc.config','input':{'name':'s'}},"
        " {'name':'cn','action':'tc.config','input':{'name':'nope'}},"
        " {'name':'conn','action':'tc.connection','connection':'target'},"
        " {'name':'noconn','action':'tc.connection'},"
        " {'name':'loop','for_each':[0,1],'steps':["
        "  {'name':'inf','action':'tc.info'}]},"
        " {'name':'out','action':'core.set','input':{'value':"
        "  {'ca':'{{ steps.ca.output }}','cs':'{{ steps.cs.output }}',"
        "   'cn':'{{ steps.cn.output }}','conn':'{{ steps.conn.output }}',"
        "   'noconn':'{{ steps.noconn.output }}',"
        "   'info':'{{ steps.loop.output[1] }}'}}}]}]}";
    ft_load(t, integration,
            "{'integration':'t','name':'acme','config':{'a':5},"
            "'connections':{'target':{'fields':{'key':'SECRET'}}}}");
    ft_run(t, NULL, NULL);
    assert_string_equal(t->res.status, "succeeded");
    json_t *out = t->res.output;
    ft_assert_json(json_object_get(out, "ca"), "5");
    ft_assert_json(json_object_get(out, "cs"), "null");
    ft_assert_json(json_object_get(out, "cn"), "'<unset>'");
    /* The action, unlike a reference, sees the credentials. */
    ft_assert_json(json_object_get(out, "conn"),
                   "{'name':'target','type':'tc.key','fields':{'key':'SECRET',"
                   "'region':'eu'}}");
    ft_assert_json(json_object_get(out, "noconn"), "null");
    json_t *info = json_object_get(out, "info");
    assert_string_equal(json_string_value(json_object_get(info, "execution")),
                        t->res.id);
    json_object_del(info, "execution");
    ft_assert_json(info, "{'instance':'acme','integration':'t','flow':'f',"
                         "'step':'loop[1].inf','bogus':null}");

    /* A step whose connection the instance gives no credentials. */
    ft_load(t, integration, NULL);
    ft_run(t, NULL, NULL);
    assert_failed(
        t, "failed", FERRY_ECONFIG, "conn",
        "connection 'target' has no credentials in instance 'default'");
}

/* ---- cancellation ---- */

static void test_cancel(void **state) {
    ft *t = *state;
    ft_load(t,
            "{'name':'t','flows':["
            "{'name':'top','steps':["
            " {'name':'m','action':'probe.mark'},"
            " {'name':'c','action':'probe.cancel'},"
            " {'name':'after','action':'probe.mark'}]},"
            "{'name':'loop','steps':["
            " {'name':'loop','for_each':[1,2,3],'steps':["
            "  {'name':'m','action':'probe.mark'},"
            "  {'name':'c','action':'probe.cancel'}]},"
            " {'name':'after','action':'probe.mark'}]}]}",
            NULL);
    ft_open_store(t, "cancel.db");
    ft_run(t, "top", NULL);
    assert_failed(t, "cancelled", FERRY_ECANCELLED, "after", "cancelled");
    assert_int_equal(marks, 1);

    json_t *x = NULL;
    assert_int_equal(t->st->vt->exec_get(t->st, t->res.id, &x), 0);
    assert_string_equal(json_string_value(json_object_get(x, "status")),
                        "cancelled");
    json_t *steps = json_object_get(x, "steps");
    assert_int_equal(json_array_size(steps), 3);
    /* probe.cancel saw api->cancelled() turn true. */
    ft_assert_json(json_object_get(json_array_get(steps, 1), "output"), "1");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(steps, 2), "status")),
        "cancelled");
    json_decref(x);

    cancel_flag = 0;
    marks = 0;
    ft_run(t, "loop", NULL);
    assert_failed(t, "cancelled", FERRY_ECANCELLED, "loop",
                  "cancelled at iteration 1");
    assert_int_equal(marks, 1);
}

/* ---- output lifetimes ---- */

static void test_output_lifetimes(void **state) {
    ft *t = *state;
    /* Never read: released as soon as the step has run. */
    ft_load(t,
            FLOW("{'name':'mk','action':'probe.make'},"
                 "{'name':'r','action':'probe.refs'},"
                 "{'name':'out','action':'core.set',"
                 " 'input':{'value':'{{ steps.r.output }}'}}"),
            NULL);
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "0");
    assert_int_equal(kept->refcount, 1);

    /* Read by a later step: kept until that step has run. */
    ft_load(t,
            FLOW("{'name':'mk','action':'probe.make'},"
                 "{'name':'r1','action':'probe.refs'},"
                 "{'name':'use','action':'core.set',"
                 " 'input':{'value':{'v':'{{ steps.mk.output.v }}'}}},"
                 "{'name':'r2','action':'probe.refs'},"
                 "{'name':'out','action':'core.set','input':{'value':"
                 " ['{{ steps.r1.output }}','{{ steps.r2.output }}']}}"),
            NULL);
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "[1,0]");
    assert_int_equal(kept->refcount, 1);

    /* Read inside a loop: kept until the loop is over. */
    ft_load(t,
            FLOW("{'name':'mk','action':'probe.make'},"
                 "{'name':'l','for_each':[1,2],'steps':["
                 " {'name':'use','action':'core.set',"
                 "  'input':{'value':'{{ steps.mk.output.v }}'}},"
                 " {'name':'r1','action':'probe.refs'}]},"
                 "{'name':'r2','action':'probe.refs'},"
                 "{'name':'out','action':'core.set','input':{'value':"
                 " ['{{ steps.l.output }}','{{ steps.r2.output }}']}}"),
            NULL);
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "[[1,1],0]");
    assert_int_equal(kept->refcount, 1);

    /* Made inside a loop and never read. */
    ft_load(t,
            FLOW("{'name':'l','for_each':[1,2],'steps':["
                 " {'name':'mk','action':'probe.make'},"
                 " {'name':'r','action':'probe.refs'}]}"),
            NULL);
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "[0,0]");
    assert_int_equal(kept->refcount, 1);
}

/* An output of over a megabyte is freed on a thread of its own once no
 * later step reads it, while the execution goes on: a value it shares
 * with a live output stays intact (ASan would see a use after free), and
 * nothing leaks. */
static void test_large_output_freed_aside(void **state) {
    ft *t = *state;
    ft_open_store(t, "large.db");
    ft_load(t,
            FLOW("{'name':'big','jq':'[range(0; 30000) | {i: ., s: \\\"a "
                 "reading of some length\\\", t: [., -.]}]'},"
                 "{'name':'pick','action':'core.set',"
                 " 'input':{'value':'{{ steps.big.output[29999] }}'}},"
                 "{'name':'n','jq':'length','input':'{{ steps.big.output }}'},"
                 "{'name':'more','jq':'[range(0; 20000)] | add'},"
                 "{'name':'out','action':'core.set','input':{'value':"
                 " ['{{ steps.pick.output }}','{{ steps.n.output }}',"
                 "  '{{ steps.more.output }}']}}"),
            NULL);
    for (int i = 0; i < 3; i++) {
        ft_run(t, NULL, NULL);
        ft_assert_output(t, "[{\"i\":29999,\"s\":\"a reading of some "
                            "length\",\"t\":[29999,-29999]},30000,"
                            "199990000]");
    }
}

/* ---- what is recorded ---- */

static json_t *step_at(json_t *x, const char *path) {
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(x, "steps"), i, s) {
        if (!strcmp(json_string_value(json_object_get(s, "path")), path))
            return s;
    }
    fail_msg("no step '%s' recorded", path);
    return NULL;
}

static void test_recorded(void **state) {
    ft *t = *state;
    ft_open_store(t, "rec.db");
    t->opts.max_recorded = 56;
    ft_load(t,
            "{'name':'t','flows':["
            "{'name':'ok','steps':["
            " {'name':'first','action':'tc.echo','input':"
            "  {'text':'hi {{ trigger.who }}','n':'{{ trigger.n }}'}},"
            " {'name':'loop','for_each':[1,2],'steps':["
            "  {'name':'inner','action':'core.log','input':"
            "   {'message':'at {{ index }}','fields':{'i':'{{ item }}'}}},"
            "  {'name':'sq','jq':'. * .','input':'{{ item }}'}]},"
            " {'name':'big','action':'core.set',"
            "  'input':{'value':'{{ trigger.big }}'}}]},"
            "{'name':'bad','steps':["
            " {'name':'a','action':'core.set','input':{'value':1}},"
            " {'name':'loop','for_each':[7],'steps':["
            "  {'name':'boom','action':'core.fail','input':"
            "   {'message':'bad {{ item }}','code':'TIMEOUT',"
            "    'retryable':true}}]}]}]}",
            NULL);
    char big[61];
    memset(big, 'x', 60);
    big[60] = 0;
    char trig[200];
    snprintf(trig, sizeof(trig), "{'who':'you','n':3,'big':'%s'}", big);
    ft_run(t, "ok", trig);
    assert_string_equal(t->res.status, "succeeded");
    /* The values passed between steps are never truncated. */
    assert_string_equal(json_string_value(t->res.output), big);

    json_t *x = NULL;
    assert_int_equal(t->st->vt->exec_get(t->st, t->res.id, &x), 0);
    assert_string_equal(json_string_value(json_object_get(x, "status")),
                        "succeeded");
    assert_string_equal(json_string_value(json_object_get(x, "integration")),
                        "t");
    assert_string_equal(json_string_value(json_object_get(x, "instance")),
                        "default");
    assert_string_equal(json_string_value(json_object_get(x, "flow")), "ok");
    assert_int_equal(json_integer_value(json_object_get(x, "output_size")), 62);
    assert_true(json_is_true(json_object_get(x, "output_truncated")));

    /* Every step, nested ones with their path, in the order they began. */
    json_t *steps = json_object_get(x, "steps");
    static const char *const paths[] = {
        "first",      "loop", "loop[0].inner", "loop[0].sq", "loop[1].inner",
        "loop[1].sq", "big"};
    assert_int_equal(json_array_size(steps), 7);
    for (size_t i = 0; i < 7; i++) {
        json_t *s = json_array_get(steps, i);
        assert_string_equal(json_string_value(json_object_get(s, "path")),
                            paths[i]);
        assert_int_equal(json_integer_value(json_object_get(s, "seq")),
                         (json_int_t)i + 1);
        assert_string_equal(json_string_value(json_object_get(s, "status")),
                            "succeeded");
    }
    json_t *s = step_at(x, "first");
    assert_string_equal(json_string_value(json_object_get(s, "kind")),
                        "action");
    assert_string_equal(json_string_value(json_object_get(s, "action")),
                        "tc.echo");
    ft_assert_json(json_object_get(s, "input"),
                   "{'text':'hi you','n':3,'dflt':'d'}");
    ft_assert_json(json_object_get(s, "output"),
                   "{'text':'hi you','n':3,'dflt':'d'}");
    s = step_at(x, "loop");
    assert_string_equal(json_string_value(json_object_get(s, "kind")),
                        "for_each");
    assert_true(json_is_null(json_object_get(s, "action")));
    ft_assert_json(json_object_get(s, "input"), "[1,2]");
    ft_assert_json(json_object_get(s, "output"), "[1,4]");
    s = step_at(x, "loop[1].sq");
    assert_string_equal(json_string_value(json_object_get(s, "name")), "sq");
    assert_string_equal(json_string_value(json_object_get(s, "kind")), "jq");
    ft_assert_json(json_object_get(s, "input"), "2");
    ft_assert_json(json_object_get(s, "output"), "4");
    /* Past max_recorded: a prefix, with the full size beside it. */
    s = step_at(x, "big");
    assert_true(json_is_true(json_object_get(s, "output_truncated")));
    assert_int_equal(json_integer_value(json_object_get(s, "output_size")), 62);
    assert_true(json_is_true(json_object_get(s, "input_truncated")));
    assert_int_equal(json_integer_value(json_object_get(s, "input_size")),
                     strlen("{'value':''}") + 60);
    const char *prefix = json_string_value(json_object_get(s, "output"));
    assert_non_null(prefix);
    assert_int_equal(strlen(prefix), 56);
    assert_memory_equal(prefix, "\"xxxxx", 6);

    /* Logs, with the path of the step that wrote them. */
    json_t *logs = json_object_get(x, "logs");
    assert_int_equal(json_array_size(logs), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *l = json_array_get(logs, i);
        char want[64];
        snprintf(want, sizeof(want), "loop[%zu].inner", i);
        assert_string_equal(json_string_value(json_object_get(l, "step_path")),
                            want);
        snprintf(want, sizeof(want), "at %zu", i);
        assert_string_equal(json_string_value(json_object_get(l, "message")),
                            want);
        assert_string_equal(json_string_value(json_object_get(l, "level")),
                            "info");
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(l, "fields"), "i")),
                         (json_int_t)i + 1);
    }
    json_decref(x);

    /* A failure: the execution names the innermost failing step. */
    ft_run(t, "bad", NULL);
    assert_failed(t, "failed", FERRY_ETIMEOUT, "loop[0].boom", "bad 7");
    assert_int_equal(t->st->vt->exec_get(t->st, t->res.id, &x), 0);
    assert_string_equal(json_string_value(json_object_get(x, "status")),
                        "failed");
    assert_string_equal(json_string_value(json_object_get(x, "error_code")),
                        "FERRY_ETIMEOUT");
    assert_string_equal(json_string_value(json_object_get(x, "error_step")),
                        "loop[0].boom");
    ft_assert_contains(json_string_value(json_object_get(x, "error_message")),
                       "bad 7");
    assert_true(json_is_null(json_object_get(x, "output")));
    assert_int_equal(json_array_size(json_object_get(x, "steps")), 3);
    s = step_at(x, "a");
    assert_string_equal(json_string_value(json_object_get(s, "status")),
                        "succeeded");
    s = step_at(x, "loop[0].boom");
    assert_string_equal(json_string_value(json_object_get(s, "status")),
                        "failed");
    assert_string_equal(json_string_value(json_object_get(s, "error_code")),
                        "FERRY_ETIMEOUT");
    assert_string_equal(json_string_value(json_object_get(s, "error_message")),
                        "bad 7");
    assert_true(json_is_true(json_object_get(s, "retryable")));
    ft_assert_json(json_object_get(s, "input"),
                   "{'message':'bad 7','code':'TIMEOUT','retryable':true}");
    assert_true(json_is_null(json_object_get(s, "output")));
    s = step_at(x, "loop");
    assert_string_equal(json_string_value(json_object_get(s, "status")),
                        "failed");
    assert_string_equal(json_string_value(json_object_get(s, "error_code")),
                        "FERRY_ETIMEOUT");
    assert_string_equal(json_string_value(json_object_get(s, "error_message")),
                        "iteration 0: loop[0].boom: bad 7");
    json_decref(x);

    /* Both executions are listed, newest first. */
    store_filter all = {0};
    assert_int_equal(t->st->vt->exec_list(t->st, &all, &x), 0);
    assert_int_equal(json_array_size(x), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(x, 0), "id")),
        t->res.id);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(x, 0), "flow")),
        "bad");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(x, 1), "flow")), "ok");
    json_decref(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_for_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_branch_truthiness, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_branch_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_input_types, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_action_return_codes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_connection_info, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_lifetimes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_output_freed_aside, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recorded, setup, teardown),
    };
    return cmocka_run_group_tests_name("flow_engine", tests, NULL, NULL);
}
