/*
 * References and templating, observed through real runs (no store): what
 * a core.set step outputs for a value holding {{ references }}.
 */
#include "ft.h"

#include <stdlib.h>
#include <string.h>

static int setup(void **state) {
    *state = ft_new();
    return 0;
}

static int teardown(void **state) {
    ft_free(*state);
    return 0;
}

/* A one-flow integration whose only step sets value. */
#define SET_FLOW(value)                                                        \
    "{'name':'t','config':{'a':{'type':'integer','default':1},"                \
    "'b':{'type':'string','default':'d'},'c':{'type':'array'},"                \
    "'o':{'type':'object','default':{'k':[1,2]}}},"                            \
    "'connections':{'target':{'type':'tc.key'}},"                              \
    "'flows':[{'name':'f','steps':[{'name':'s','action':'core.set',"           \
    "'input':{'value':" value "}}]}]}"

#define TRIGGER                                                                \
    "{'arr':[1,'x',[2]],'obj':{'k':{'z':null}},'num':1.5,'int':-3,"            \
    "'t':true,'f':false,'nul':null,'s':'str'}"

static void test_whole_value_keeps_type(void **state) {
    ft *t = *state;
    ft_load(t,
            SET_FLOW("{'arr':'{{ trigger.arr }}','obj':'{{ trigger.obj }}',"
                     "'num':'{{ trigger.num }}','int':'{{ trigger.int }}',"
                     "'t':'{{ trigger.t }}','f':'{{ trigger.f }}',"
                     "'nul':'{{ trigger.nul }}','s':'{{ trigger.s }}',"
                     "'tight':'{{trigger.int}}','wide':'{{   trigger.t   }}',"
                     "'list':['{{ trigger.int }}','lit',7,{'in':'{{ "
                     "trigger.arr[2] }}'}]}"),
            NULL);
    ft_run(t, NULL, TRIGGER);
    ft_assert_output(t, "{'arr':[1,'x',[2]],'obj':{'k':{'z':null}},'num':1.5,"
                        "'int':-3,'t':true,'f':false,'nul':null,'s':'str',"
                        "'tight':-3,'wide':true,"
                        "'list':[-3,'lit',7,{'in':[2]}]}");
    /* The whole trigger, too. */
    ft_load(t, SET_FLOW("'{{ trigger }}'"), NULL);
    ft_run(t, NULL, TRIGGER);
    ft_assert_output(t, TRIGGER);
}

static void test_interpolation(void **state) {
    ft *t = *state;
    ft_load(t,
            SET_FLOW("{'s':'s={{ trigger.s }}!','n':'n={{ trigger.num }} "
                     "i={{ trigger.int }}','o':'o={{ trigger.obj }}',"
                     "'a':'a={{ trigger.arr }}',"
                     "'b':'{{ trigger.t }}/{{ trigger.f }}',"
                     "'z':'z=[{{ trigger.nul }}]','two':'{{ trigger.s }}{{ "
                     "trigger.s }}','lead':' {{ trigger.int }}',"
                     "'trail':'{{ trigger.int }} '}"),
            NULL);
    ft_run(t, NULL, TRIGGER);
    ft_assert_output(t, "{'s':'s=str!','n':'n=1.5 i=-3',"
                        "'o':'o={\\'k\\':{\\'z\\':null}}',"
                        "'a':'a=[1,\\'x\\',[2]]','b':'true/false','z':'z=[]',"
                        "'two':'strstr','lead':' -3','trail':'-3 '}");
}

static void test_missing_paths(void **state) {
    ft *t = *state;
    ft_load(t,
            SET_FLOW("{'a':'{{ trigger.nope }}','b':'{{ trigger.obj.k.z.y }}',"
                     "'c':'{{ trigger.arr[9] }}','d':'{{ trigger.s.x }}',"
                     "'e':'{{ trigger.arr.x }}','f':'{{ trigger.obj[0] }}',"
                     "'g':'x{{ trigger.nope }}y{{ trigger.arr[5] }}z',"
                     "'h':'{{ trigger.num[0] }}'}"),
            NULL);
    ft_run(t, NULL, TRIGGER);
    ft_assert_output(t, "{'a':null,'b':null,'c':null,'d':null,'e':null,"
                        "'f':null,'g':'xyz','h':null}");
    /* No trigger at all: trigger is null and so is every path into it. */
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "{'a':null,'b':null,'c':null,'d':null,'e':null,"
                        "'f':null,'g':'xyz','h':null}");
}

static void test_indices(void **state) {
    ft *t = *state;
    ft_load(t,
            SET_FLOW("['{{ trigger.arr[0] }}','{{ trigger.arr[-1] }}',"
                     "'{{ trigger.arr[-3] }}','{{ trigger.arr[-4] }}',"
                     "'{{ trigger.arr[3] }}','{{ trigger.arr[2][0] }}',"
                     "'{{ trigger.arr[-1][-1] }}','{{ trigger.arr[1] }}']"),
            NULL);
    ft_run(t, NULL, TRIGGER);
    ft_assert_output(t, "[1,[2],1,null,null,2,2,'x']");
}

static void test_quoted_keys(void **state) {
    ft *t = *state;
    /* \u0027 is a single quote once the JSON is parsed. */
    ft_load(t,
            SET_FLOW("['{{ trigger[\\'a b\\'][\\'c.d\\'] }}',"
                     "'{{ trigger[\\u0027a b\\u0027].e }}',"
                     "'{{ trigger[\\'x}y\\'] }}','{{ trigger.k-1 }}',"
                     "'{{ trigger.e[\\'\\'] }}','{{ trigger[\\'arr\\'][0] }}',"
                     "'<{{ trigger[\\'a b\\'][\\'c.d\\'] }}>']"),
            NULL);
    ft_run(t, NULL,
           "{'a b':{'c.d':5,'e':'E'},'x}y':6,'k-1':7,'e':{'':8},'arr':[9]}");
    ft_assert_output(t, "[5,'E',6,7,8,9,'<5>']");
}

static void test_escape(void **state) {
    ft *t = *state;
    ft_load(t,
            SET_FLOW("['{{{{ not a ref }}','a {{{{b}} {{ trigger.s }}','{{{{',"
                     "'}}','{{{{{{ trigger.s }}','only { one']"),
            NULL);
    ft_run(t, NULL, TRIGGER);
    ft_assert_output(t, "['{{ not a ref }}','a {{b}} str','{{','}}','{{str',"
                        "'only { one']");
}

static void test_config_defaults_and_instance_values(void **state) {
    ft *t = *state;
    const char *flow =
        SET_FLOW("{'a':'{{ config.a }}','b':'{{ config.b }}',"
                 "'c':'{{ config.c }}','o':'{{ config.o.k[1] }}',"
                 "'txt':'{{ config.a }}-{{ config.b }}-{{ config.c }}'}");
    /* The default instance: defaults, and null where there is none. */
    ft_load(t, flow, NULL);
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "{'a':1,'b':'d','c':null,'o':2,'txt':'1-d-'}");
    /* An instance's values win over the defaults it does not repeat. */
    ft_load(t, flow,
            "{'integration':'t','name':'i','config':{'a':2,'c':[3],"
            "'o':{'k':[]}}}");
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "{'a':2,'b':'d','c':[3],'o':null,'txt':'2-d-[3]'}");
    ft_load(t, SET_FLOW("'{{ config }}'"),
            "{'integration':'t','name':'i','config':{'b':'x'}}");
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "{'a':1,'b':'x','c':null,'o':{'k':[1,2]}}");
}

static void test_connections_have_no_secrets(void **state) {
    ft *t = *state;
    ft_load(t,
            SET_FLOW("{'c':'{{ connections.target }}',"
                     "'fields':'{{ connections.target.fields }}',"
                     "'type':'{{ connections.target.type }}',"
                     "'all':'{{ connections }}',"
                     "'txt':'<{{ connections.target }}>'}"),
            "{'integration':'t','name':'i','connections':{'target':"
            "{'fields':{'key':'SECRET','region':'us'}}}}");
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "{'c':{'name':'target','type':'tc.key'},"
                        "'fields':null,'type':'tc.key',"
                        "'all':{'target':{'name':'target','type':'tc.key'}},"
                        "'txt':'<{\\'name\\':\\'target\\',"
                        "\\'type\\':\\'tc.key\\'}>'}");
    char *out = json_dumps(t->res.output, JSON_COMPACT);
    assert_null(strstr(out, "SECRET"));
    free(out);
    /* Declared but given no credentials by the instance: nothing. */
    ft_load(t, SET_FLOW("['{{ connections.target }}','{{ connections }}']"),
            NULL);
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "[null,{}]");
}

static void test_step_outputs_and_loop_refs(void **state) {
    ft *t = *state;
    ft_load(t,
            "{'name':'t','flows':[{'name':'f','steps':["
            "{'name':'a','action':'core.set','input':{'value':{'x':[10,20]}}},"
            "{'name':'b','action':'core.set','input':{'value':"
            " ['{{ steps.a.output.x[1] }}','{{ steps.a.output }}',"
            "  'b={{ steps.a.output.x }}']}},"
            "{'name':'loop','for_each':'{{ steps.a.output.x }}','as':'v',"
            " 'steps':[{'name':'in','action':'core.set','input':{'value':"
            "  {'item':'{{ item }}','v':'{{ v }}','i':'{{ index }}',"
            "   'txt':'{{ index }}:{{ v }}','b':'{{ steps.b.output[0] }}'}}}]},"
            "{'name':'out','action':'core.set','input':{'value':"
            " {'b':'{{ steps.b.output }}','loop':'{{ steps.loop.output }}'}}}"
            "]}]}",
            NULL);
    ft_run(t, NULL, NULL);
    ft_assert_output(t, "{'b':[20,{'x':[10,20]},'b=[10,20]'],'loop':["
                        "{'item':10,'v':10,'i':0,'txt':'0:10','b':20},"
                        "{'item':20,'v':20,'i':1,'txt':'1:20','b':20}]}");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_whole_value_keeps_type, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_interpolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quoted_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_config_defaults_and_instance_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_have_no_secrets, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_step_outputs_and_loop_refs, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("flow_tmpl", tests, NULL, NULL);
}
