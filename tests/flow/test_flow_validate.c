/*
 * Validation of integration and instance files: one fixture per error the
 * flow format defines (docs/flows.md), each checked for the diag's file,
 * its exact JSON path and a part of its message, for the number of diags
 * (every error is reported, nothing is reported twice) and for the load
 * returning NULL.
 */
#include "ft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A valid integration around the given steps. Config "n" is declared. */
#define FLOW(steps)                                                            \
    "{'name':'t','config':{'n':{'type':'integer','default':1}},"               \
    "'flows':[{'name':'f','steps':[" steps "]}]}"
#define GOOD_FLOWS                                                             \
    "'flows':[{'name':'f','steps':["                                           \
    "{'name':'a','action':'core.set','input':{'value':1}}]}]"

typedef struct vcase {
    const char *name;
    const char *text; /* single-quoted JSON (ft_q) */
    const char *path; /* the diag's exact path */
    const char *msg;  /* a part of its message */
    int count;        /* how many diags in all */
} vcase;

/* Every diag names file; one is at c->path with c->msg in its message;
 * there are c->count in all. Prints them all if not. */
static void check_diags(const flow_diags *d, const char *file, const vcase *c) {
    int found = 0, other_file = 0;
    for (size_t i = 0; i < d->n; i++) {
        const flow_diag *g = &d->items[i];
        other_file |= strcmp(g->file, file) != 0;
        if (!strcmp(g->path, c->path) && strstr(g->message, c->msg))
            found = 1;
    }
    if (found && !other_file && d->n == (size_t)c->count)
        return;
    flow_diags_print(d, stderr);
    if (other_file)
        fail_msg("a diag names another file than %s", file);
    if (!found)
        fail_msg("no diag at '%s' containing '%s'", c->path, c->msg);
    fail_msg("%zu diags, expected %d", d->n, c->count);
}

/* ---- integrations ---- */

static const vcase integration_cases[] = {
    {"invalid_json", "{\n  'name': 't',\n  'flows': [,]\n}", "line 3 column 13",
     "invalid JSON: ", 1},
    {"not_an_object", "[1, 2]", "$", "expected a JSON object, got array", 1},
    {"unknown_top_level_field", "{'name':'t','bogus':1," GOOD_FLOWS "}",
     "bogus", "unknown field 'bogus' in an integration", 1},
    {"missing_name", "{" GOOD_FLOWS "}", "name", "missing integration name", 1},
    {"bad_name", "{'name':'a b'," GOOD_FLOWS "}", "name",
     "integration names hold letters", 1},
    {"missing_flows", "{'name':'t'}", "flows",
     "missing: expected a non-empty array of flows", 1},
    {"empty_flows", "{'name':'t','flows':[]}", "flows",
     "expected a non-empty array of flows", 1},
    {"duplicate_flow_name",
     "{'name':'t','flows':[{'name':'f','steps':[{'name':'a',"
     "'action':'core.set','input':{'value':1}}]},"
     "{'name':'f','steps':[{'name':'a','action':'core.set',"
     "'input':{'value':1}}]}]}",
     "flows[1].name", "duplicate flow name 'f'", 1},
    {"unknown_trigger_type",
     "{'name':'t','flows':[{'name':'f','trigger':{'type':'cron'},"
     "'steps':[{'name':'a','action':'core.set','input':{'value':1}}]}]}",
     "flows[0].trigger.type", "expected one of manual, schedule, webhook, poll",
     1},
    {"unknown_poll_source",
     "{'name':'t','flows':[{'name':'f','trigger':{'type':'poll',"
     "'source':'tc.nope'},"
     "'steps':[{'name':'a','action':'core.set','input':{'value':1}}]}]}",
     "flows[0].trigger.source", "unknown poll source 'tc.nope'", 1},
    {"unknown_poll_option",
     "{'name':'t','flows':[{'name':'f','trigger':{'type':'poll',"
     "'source':'tc.feed','options':{'path':'p','colour':1}},"
     "'steps':[{'name':'a','action':'core.set','input':{'value':1}}]}]}",
     "flows[0].trigger.options.colour",
     "trigger 'tc.feed' has no option "
     "'colour'",
     1},
    {"poll_option_type",
     "{'name':'t','flows':[{'name':'f','trigger':{'type':'poll',"
     "'source':'tc.feed','options':{'path':'p','limit':'many'}},"
     "'steps':[{'name':'a','action':'core.set','input':{'value':1}}]}]}",
     "flows[0].trigger.options.limit", "expected an integer, got string", 1},
    {"poll_option_missing",
     "{'name':'t','flows':[{'name':'f','trigger':{'type':'poll',"
     "'source':'tc.feed','options':{'limit':3}},"
     "'steps':[{'name':'a','action':'core.set','input':{'value':1}}]}]}",
     "flows[0].trigger.options",
     "missing option 'path' (string) of trigger "
     "'tc.feed'",
     1},
    {"poll_undeclared_connection",
     "{'name':'t','flows':[{'name':'f','trigger':{'type':'poll',"
     "'source':'tc.feed','connection':'src','options':{'path':'p'}},"
     "'steps':[{'name':'a','action':'core.set','input':{'value':1}}]}]}",
     "flows[0].trigger.connection", "no connection 'src' is declared", 1},
    {"retry_not_object",
     "{'name':'t','flows':[{'name':'f','steps':[{'name':'a',"
     "'action':'core.set','input':{'value':1},'retry':3}]}]}",
     "flows[0].steps[0].retry", "expected {\"max_attempts\"", 1},
    {"retry_attempts",
     "{'name':'t','flows':[{'name':'f','steps':[{'name':'a',"
     "'action':'core.set','input':{'value':1},'retry':{'max_attempts':0}}]}]}",
     "flows[0].steps[0].retry.max_attempts",
     "expected a whole number from 1 to 100", 1},
    {"retry_backoff",
     "{'name':'t','flows':[{'name':'f','steps':[{'name':'a',"
     "'action':'core.set','input':{'value':1},'retry':{'backoff':'linear'}}]}]"
     "}",
     "flows[0].steps[0].retry.backoff", "expected \"exponential\" or \"fixed\"",
     1},
    {"retry_on_name",
     "{'name':'t','flows':[{'name':'f','steps':[{'name':'a',"
     "'action':'core.set','input':{'value':1},"
     "'retry':{'on':['retryable','NOPE']}}]}]}",
     "flows[0].steps[0].retry.on[1]",
     "expected \"retryable\" or an error "
     "name",
     1},
    {"retry_max_below_initial",
     "{'name':'t','flows':[{'name':'f','steps':[{'name':'a',"
     "'action':'core.set','input':{'value':1},"
     "'retry':{'initial':'10s','max':'1s'}}]}]}",
     "flows[0].steps[0].retry.max", "max must not be shorter than initial", 1},
    {"on_error_value",
     "{'name':'t','flows':[{'name':'f','steps':[{'name':'a',"
     "'action':'core.set','input':{'value':1},'on_error':'ignore'}]}]}",
     "flows[0].steps[0].on_error",
     "expected \"fail\", \"continue\" or \"dead_letter\"", 1},
    {"flow_retry_unknown_key",
     "{'name':'t','flows':[{'name':'f','retry':{'tries':2},'steps':[{'name':"
     "'a','action':'core.set','input':{'value':1}}]}]}",
     "flows[0].retry.tries", "unknown field 'tries' in a retry policy", 1},
    {"unknown_flow_field",
     "{'name':'t','flows':[{'name':'f','when':1,'steps':[{'name':'a',"
     "'action':'core.set','input':{'value':1}}]}]}",
     "flows[0].when", "unknown field 'when' in a flow", 1},
    {"missing_steps", "{'name':'t','flows':[{'name':'f'}]}", "flows[0].steps",
     "missing: expected a non-empty array of steps", 1},
    {"step_without_name", FLOW("{'action':'core.set','input':{'value':1}}"),
     "flows[0].steps[0].name", "missing step name", 1},
    {"bad_step_name",
     FLOW("{'name':'1st','action':'core.set','input':{'value':1}}"),
     "flows[0].steps[0].name", "step names start with a letter", 1},
    {"duplicate_step_name",
     FLOW("{'name':'a','action':'core.set','input':{'value':1}},"
          "{'name':'a','action':'core.set','input':{'value':2}}"),
     "flows[0].steps[1].name", "duplicate step name 'a'", 1},
    {"duplicate_step_name_nested",
     FLOW("{'name':'a','action':'core.set','input':{'value':1}},"
          "{'name':'loop','for_each':[1],"
          "'steps':[{'name':'a','action':'core.set','input':{'value':2}}]}"),
     "flows[0].steps[1].steps[0].name", "duplicate step name 'a'", 1},
    /* Duplicates in two loops of different lengths, the first one read
     * after it: reported, and nothing planned from the clash. */
    {"duplicate_step_name_in_another_loop",
     FLOW("{'name':'l1','for_each':[1],"
          "'steps':[{'name':'t','action':'core.set','input':{'value':1}},"
          "{'name':'u','action':'core.set',"
          "'input':{'value':'{{ steps.t.output }}'}}]},"
          "{'name':'l2','for_each':[1],"
          "'steps':[{'name':'t','action':'core.set','input':{'value':2}}]}"),
     "flows[0].steps[1].steps[0].name", "duplicate step name 't'", 1},
    {"step_with_two_kinds",
     FLOW("{'name':'a','action':'core.set','jq':'.','input':{'value':1}}"),
     "flows[0].steps[0]", "a step has exactly one of", 1},
    {"step_with_no_kind", FLOW("{'name':'a','input':{'value':1}}"),
     "flows[0].steps[0]", "missing \"action\", \"jq\", \"for_each\"", 1},
    {"unknown_step_field",
     FLOW("{'name':'a','action':'core.set','input':{'value':1},'tries':3}"),
     "flows[0].steps[0].tries", "unknown field 'tries' in an action step", 1},
    {"unknown_component", FLOW("{'name':'a','action':'nope.run'}"),
     "flows[0].steps[0].action",
     "unknown action 'nope.run': no component 'nope' is loaded", 1},
    {"unknown_action", FLOW("{'name':'a','action':'core.nope'}"),
     "flows[0].steps[0].action",
     "unknown action 'core.nope': component 'core' has no such action", 1},
    {"not_an_action_id", FLOW("{'name':'a','action':'set'}"),
     "flows[0].steps[0].action", "'set' is not an action id", 1},
    {"undeclared_input",
     FLOW("{'name':'a','action':'core.set','input':{'value':1,'bogus':2}}"),
     "flows[0].steps[0].input.bogus",
     "action 'core.set' has no input 'bogus' (inputs: value)", 1},
    {"missing_required_input",
     FLOW("{'name':'a','action':'core.log','input':{'level':'info'}}"),
     "flows[0].steps[0].input",
     "missing required input 'message' (string) of action 'core.log'", 1},
    {"input_not_an_object",
     FLOW("{'name':'a','action':'core.set','input':[1]}"),
     "flows[0].steps[0].input", "expected an object of the action's inputs", 1},
    {"wrong_literal_type",
     FLOW("{'name':'a','action':'core.log','input':{'message':5}}"),
     "flows[0].steps[0].input.message",
     "input 'message' of action 'core.log' must be a string, got integer", 1},
    {"wrong_literal_type_integer",
     FLOW("{'name':'a','action':'tc.echo','input':{'n':'five'}}"),
     "flows[0].steps[0].input.n",
     "input 'n' of action 'tc.echo' must be an integer, got string", 1},
    {"text_into_non_string_input",
     FLOW("{'name':'a','action':'tc.echo','input':{'n':'#{{ config.n }}'}}"),
     "flows[0].steps[0].input.n",
     "must be an integer, but text with references always makes a string", 1},
    {"reference_to_later_step",
     FLOW("{'name':'a','action':'core.set',"
          "'input':{'value':'{{ steps.b.output }}'}},"
          "{'name':'b','action':'core.set','input':{'value':1}}"),
     "flows[0].steps[0].input.value", "step 'b' does not come before this step",
     1},
    {"reference_to_unknown_step",
     FLOW("{'name':'a','action':'core.set',"
          "'input':{'value':'{{ steps.zz.output }}'}}"),
     "flows[0].steps[0].input.value", "no step named 'zz' in this flow", 1},
    {"self_reference",
     FLOW("{'name':'a','action':'core.set',"
          "'input':{'value':'{{ steps.a.output }}'}}"),
     "flows[0].steps[0].input.value",
     "cycle: step 'a' refers to its own output", 1},
    {"loop_refers_to_itself",
     FLOW("{'name':'loop','for_each':'{{ steps.loop.output }}',"
          "'steps':[{'name':'x','action':'core.set','input':{'value':1}}]}"),
     "flows[0].steps[0].for_each", "cycle: step 'loop' refers to its own", 1},
    {"inner_step_refers_to_enclosing_loop",
     FLOW("{'name':'loop','for_each':[1],"
          "'steps':[{'name':'x','action':'core.set',"
          "'input':{'value':'{{ steps.loop.output }}'}}]}"),
     "flows[0].steps[0].steps[0].input.value",
     "cycle: step 'loop' refers to its own", 1},
    {"reference_into_for_each_from_outside",
     FLOW("{'name':'loop','for_each':[1],"
          "'steps':[{'name':'inner','action':'core.set',"
          "'input':{'value':1}}]},"
          "{'name':'after','action':'core.set',"
          "'input':{'value':'{{ steps.inner.output }}'}}"),
     "flows[0].steps[1].input.value",
     "step 'inner' does not come before this step", 1},
    {"reference_into_branch_from_outside",
     FLOW("{'name':'br','branch':[{'when':true,'steps':[{'name':'inner',"
          "'action':'core.set','input':{'value':1}}]}]},"
          "{'name':'after','action':'core.set',"
          "'input':{'value':'{{ steps.inner.output }}'}}"),
     "flows[0].steps[1].input.value",
     "step 'inner' does not come before this step", 1},
    {"item_outside_for_each",
     FLOW("{'name':'a','action':'core.set','input':{'value':'{{ item }}'}}"),
     "flows[0].steps[0].input.value",
     "'{{ item }}' is only defined inside for_each", 1},
    {"index_outside_for_each",
     FLOW(
         "{'name':'a','action':'core.set','input':{'value':'at {{ index }}'}}"),
     "flows[0].steps[0].input.value",
     "'{{ index }}' is only defined inside for_each", 1},
    {"as_name_outside_its_loop",
     FLOW("{'name':'loop','for_each':[1],"
          "'as':'row','steps':[{'name':'x','action':'core.set',"
          "'input':{'value':'{{ row }}'}}]},"
          "{'name':'after','action':'core.set','input':{'value':'{{ row }}'}}"),
     "flows[0].steps[1].input.value", "unknown reference root 'row'", 1},
    {"unknown_reference_root",
     FLOW("{'name':'a','action':'core.set','input':{'value':'{{ foo.bar }}'}}"),
     "flows[0].steps[0].input.value", "unknown reference root 'foo'", 1},
    {"bad_reference_double_dot",
     FLOW(
         "{'name':'a','action':'core.set','input':{'value':'{{ steps..x }}'}}"),
     "flows[0].steps[0].input.value",
     "bad reference '{{ steps..x }}': expected a name after '.'", 1},
    {"bad_reference_no_output",
     FLOW("{'name':'x','action':'core.set','input':{'value':1}},"
          "{'name':'a','action':'core.set','input':{'value':'{{ steps.x }}'}}"),
     "flows[0].steps[1].input.value",
     "bad reference '{{ steps.x }}': expected steps.NAME.output", 1},
    {"bad_reference_index",
     FLOW("{'name':'a','action':'core.set',"
          "'input':{'value':'{{ trigger[0 }}'}}"),
     "flows[0].steps[0].input.value",
     "expected a number or a quoted key inside []", 1},
    {"bad_reference_quoted_key",
     FLOW("{'name':'a','action':'core.set',"
          "'input':{'value':'{{ trigger[\\'a }}'}}"),
     "flows[0].steps[0].input.value", "unterminated [\"key\"]", 1},
    {"empty_reference",
     FLOW("{'name':'a','action':'core.set','input':{'value':'{{ }}'}}"),
     "flows[0].steps[0].input.value", "empty reference", 1},
    {"unterminated_reference",
     FLOW("{'name':'a','action':'core.set',"
          "'input':{'value':'x {{ trigger.body'}}"),
     "flows[0].steps[0].input.value", "unterminated '{{' (no matching '}}')",
     1},
    {"reference_nested_in_input",
     FLOW("{'name':'a','action':'core.set','input':{'value':{'list':[1,"
          "{'deep':'{{ nope }}'}]}}}"),
     "flows[0].steps[0].input.value.list[1].deep",
     "unknown reference root 'nope'", 1},
    {"undeclared_config_variable",
     FLOW("{'name':'a','action':'core.set',"
          "'input':{'value':'{{ config.nope }}'}}"),
     "flows[0].steps[0].input.value",
     "reference to undeclared config variable 'nope'", 1},
    {"config_variable_without_config_block",
     "{'name':'t','flows':[{'name':'f','steps':[{'name':'a',"
     "'action':'core.set','input':{'value':'{{ config.nope }}'}}]}]}",
     "flows[0].steps[0].input.value",
     "reference to undeclared config variable 'nope'", 1},
    {"undeclared_connection_reference",
     FLOW("{'name':'a','action':'core.set',"
          "'input':{'value':'{{ connections.nope }}'}}"),
     "flows[0].steps[0].input.value",
     "reference to undeclared connection 'nope'", 1},
    {"undeclared_step_connection",
     FLOW("{'name':'a','action':'tc.connection','connection':'nope'}"),
     "flows[0].steps[0].connection", "no connection 'nope' is declared", 1},
    {"jq_does_not_compile", FLOW("{'name':'a','jq':'.[','input':1}"),
     "flows[0].steps[0].jq", "jq program does not compile: ", 1},
    {"jq_not_a_string", FLOW("{'name':'a','jq':5}"), "flows[0].steps[0].jq",
     "expected a jq program string", 1},
    {"jq_collect_not_boolean", FLOW("{'name':'a','jq':'.','collect':'yes'}"),
     "flows[0].steps[0].collect", "expected true or false", 1},
    {"for_each_over_object",
     FLOW("{'name':'loop','for_each':{'a':1},"
          "'steps':[{'name':'x','action':'core.set','input':{'value':1}}]}"),
     "flows[0].steps[0].for_each",
     "for_each must be an array or a reference to one, got object", 1},
    {"for_each_over_text",
     FLOW("{'name':'loop','for_each':'a,b','steps':[{'name':'x',"
          "'action':'core.set','input':{'value':1}}]}"),
     "flows[0].steps[0].for_each",
     "for_each must be an array or a reference to one, got string", 1},
    {"for_each_without_steps", FLOW("{'name':'loop','for_each':[1]}"),
     "flows[0].steps[0].steps", "missing: expected a non-empty array of steps",
     1},
    {"as_reserved_name",
     FLOW("{'name':'loop','for_each':[1],"
          "'as':'steps','steps':[{'name':'x','action':'core.set',"
          "'input':{'value':1}}]}"),
     "flows[0].steps[0].as", "expected a name for the item", 1},
    {"as_not_a_name",
     FLOW("{'name':'loop','for_each':[1],"
          "'as':'1x','steps':[{'name':'x','action':'core.set',"
          "'input':{'value':1}}]}"),
     "flows[0].steps[0].as", "expected a name for the item", 1},
    {"branch_without_cases", FLOW("{'name':'b','branch':[]}"),
     "flows[0].steps[0].branch", "expected an array of cases", 1},
    {"branch_case_without_when",
     FLOW("{'name':'b','branch':[{'steps':[{'name':'x','action':'core.set',"
          "'input':{'value':1}}]}]}"),
     "flows[0].steps[0].branch[0].when", "missing \"when\"", 1},
    {"branch_case_without_steps", FLOW("{'name':'b','branch':[{'when':true}]}"),
     "flows[0].steps[0].branch[0].steps",
     "missing: expected a non-empty array of steps", 1},
    {"branch_empty_else",
     FLOW("{'name':'b','branch':[{'when':true,'steps':[{'name':'x',"
          "'action':'core.set','input':{'value':1}}]}],'else':[]}"),
     "flows[0].steps[0].else", "expected a non-empty array of steps", 1},
    {"branch_when_bad_reference",
     FLOW("{'name':'b','branch':[{'when':'{{ item }}','steps':[{'name':'x',"
          "'action':'core.set','input':{'value':1}}]}]}"),
     "flows[0].steps[0].branch[0].when",
     "'{{ item }}' is only defined inside for_each", 1},
    {"config_bad_type",
     "{'name':'t','config':{'x':{'type':'float'}}," GOOD_FLOWS "}",
     "config.x.type", "expected one of string, integer, number, boolean", 1},
    {"config_default_wrong_type",
     "{'name':'t','config':{'x':{'type':'integer','default':'one'}}," GOOD_FLOWS
     "}",
     "config.x.default", "default must be integer, got string", 1},
    {"config_not_an_object", "{'name':'t','config':[1]," GOOD_FLOWS "}",
     "config", "expected an object of config variables by name", 1},
    {"connection_unknown_type",
     "{'name':'t','connections':{'c':{'type':'nope.key'}}," GOOD_FLOWS "}",
     "connections.c.type",
     "unknown connection type 'nope.key' (no loaded component declares it)", 1},
    {"connection_without_type",
     "{'name':'t','connections':{'c':{'description':'x'}}," GOOD_FLOWS "}",
     "connections.c.type", "expected a connection type id", 1},
    {"five_independent_errors",
     "{'name':'t','bogus':1,'config':{'x':{'type':'float'}},"
     "'flows':[{'name':'f','steps':[{'name':'a','action':'core.set',"
     "'input':{'value':'{{ nope }}'}},"
     "{'name':'b','action':'core.set',"
     "'input':{'value':'{{ steps.zz.output }}'}},"
     "{'name':'c','action':'core.nope'}]}]}",
     "flows[0].steps[1].input.value", "no step named 'zz'", 5},
};

/* The fixture, with the table row (cmocka's initial state) in t->data;
 * freed by teardown even when a check fails. */
static int setup(void **state) {
    ft *t = ft_new();
    t->data = *state;
    *state = t;
    return 0;
}

static int teardown(void **state) {
    ft_free(*state);
    return 0;
}

static void run_integration_case(void **state) {
    ft *t = *state;
    const vcase *c = t->data;
    const char *file = ft_write(t, "integration.json", c->text);
    t->ig = flow_integration_load(file, &t->reg, &t->d);
    assert_null(t->ig);
    check_diags(&t->d, file, c);
}

/* ---- instances, against one integration ---- */

#define INTEGRATION                                                            \
    "{'name':'t','config':{'n':{'type':'integer','default':1},"                \
    "'site':{'type':'string','required':true}},"                               \
    "'connections':{'target':{'type':'tc.key'}}," GOOD_FLOWS "}"

static const vcase instance_cases[] = {
    {"wrong_integration_name",
     "{'integration':'other','name':'i','config':{'site':'x'}}", "integration",
     "instance is for integration 'other', not 't'", 1},
    {"missing_integration_name", "{'name':'i','config':{'site':'x'}}",
     "integration", "missing: the name of the integration", 1},
    {"bad_instance_name",
     "{'integration':'t','name':'a/b','config':{'site':'x'}}", "name",
     "instance names hold letters", 1},
    {"unknown_instance_field",
     "{'integration':'t','name':'i','config':{'site':'x'},'secrets':{}}",
     "secrets", "unknown field 'secrets' in an instance", 1},
    {"invalid_json", "{'integration':'t',\n'name':}", "line 2 column 8",
     "invalid JSON: ", 1},
    {"unknown_config_variable",
     "{'integration':'t','name':'i','config':{'site':'x','nope':1}}",
     "config.nope", "integration 't' declares no config variable 'nope'", 1},
    {"wrong_config_type",
     "{'integration':'t','name':'i','config':{'site':'x','n':'one'}}",
     "config.n", "'n' must be integer, got string", 1},
    {"missing_required_config", "{'integration':'t','name':'i'}", "config",
     "missing required config variable 'site'", 1},
    {"unknown_connection",
     "{'integration':'t','name':'i','config':{'site':'x'},"
     "'connections':{'nope':{'fields':{'key':'k'}}}}",
     "connections.nope", "integration 't' declares no connection 'nope'", 1},
    {"connection_missing_required_field",
     "{'integration':'t','name':'i','config':{'site':'x'},"
     "'connections':{'target':{'fields':{'region':'us'}}}}",
     "connections.target.fields",
     "missing required field 'key' (string) of connection type 'tc.key'", 1},
    {"connection_unknown_field",
     "{'integration':'t','name':'i','config':{'site':'x'},"
     "'connections':{'target':{'fields':{'key':'k','user':'u'}}}}",
     "connections.target.fields.user",
     "connection type 'tc.key' has no field 'user'", 1},
    {"connection_field_wrong_type",
     "{'integration':'t','name':'i','config':{'site':'x'},"
     "'connections':{'target':{'fields':{'key':5}}}}",
     "connections.target.fields.key", "field 'key' must be string, got integer",
     1},
    {"connection_without_fields",
     "{'integration':'t','name':'i','config':{'site':'x'},"
     "'connections':{'target':{'key':'k'}}}",
     "connections.target", "expected {\"fields\": {...}}", 1},
    {"five_independent_errors",
     "{'integration':'other','name':'i','config':{'n':true,'zz':1},"
     "'connections':{'target':{'fields':{}}}}",
     "config.zz", "declares no config variable 'zz'", 5},
};

static void run_instance_case(void **state) {
    ft *t = *state;
    const vcase *c = t->data;
    const char *igfile = ft_write(t, "integration.json", INTEGRATION);
    t->ig = flow_integration_load(igfile, &t->reg, &t->d);
    assert_non_null(t->ig);
    assert_int_equal(t->d.n, 0);
    const char *file = ft_write(t, "instance.json", c->text);
    t->in = flow_instance_load(file, t->ig, &t->reg, &t->d);
    assert_null(t->in);
    check_diags(&t->d, file, c);
}

/* Without an instance file, a required variable without a default is
 * reported against the integration file, with a hint. */
static void test_missing_required_config_without_instance(void **state) {
    ft *t = *state;
    const char *igfile = ft_write(t, "integration.json", INTEGRATION);
    t->ig = flow_integration_load(igfile, &t->reg, &t->d);
    assert_non_null(t->ig);
    t->in = flow_instance_load(NULL, t->ig, &t->reg, &t->d);
    assert_null(t->in);
    assert_int_equal(t->d.n, 1);
    assert_string_equal(t->d.items[0].file, igfile);
    assert_string_equal(t->d.items[0].path, "config");
    ft_assert_contains(t->d.items[0].message,
                       "config variable 'site' is required and has no"
                       " default: give it in an instance file (--instance)");
}

/* The fixtures above are single errors in otherwise valid files: the valid
 * files themselves load, with defaults filled in. */
static void test_valid_files_load(void **state) {
    ft *t = *state;
    ft_load(t, INTEGRATION,
            "{'integration':'t','name':'acme','config':{'site':'HQ'},"
            "'connections':{'target':{'fields':{'key':'k'}}}}");
    assert_string_equal(t->ig->name, "t");
    assert_int_equal(t->ig->nflows, 1);
    assert_string_equal(t->in->name, "acme");
    ft_assert_json(t->in->config, "{'n':1,'site':'HQ'}");
    ft_assert_json(t->in->connections,
                   "{'target':{'name':'target','type':'tc.key',"
                   "'fields':{'key':'k','region':'eu'}}}");
    assert_non_null(flow_find(t->ig, "f"));
    assert_non_null(flow_find(t->ig, NULL));
    assert_null(flow_find(t->ig, "g"));

    /* Every step kind, nested, with every reference root. */
    ft_load(t,
            "{'name':'t2','config':{'n':{'type':'integer','default':1}},"
            "'connections':{'c':{'type':'tc.key'}},"
            "'flows':[{'name':'f','trigger':{'type':'webhook'},"
            "'steps':[{'name':'a','action':'core.set',"
            "'input':{'value':'{{ trigger }}'}},"
            "{'name':'j','jq':'.','input':'{{ steps.a.output }}'},"
            "{'name':'l','for_each':'{{ steps.j.output }}','as':'x',"
            "'steps':[ {'name':'i','action':'core.set',"
            "'input':{'value':  ['{{ x }}','{{ item }}','{{ index }}',"
            "'{{ config.n }}',   '{{ connections.c }}',"
            "'{{ steps.a.output }}']}}]},"
            "{'name':'b','branch':[{'when':'{{ steps.l.output }}',"
            "'steps':[ {'name':'k','action':'core.log',"
            "'input':{'message':'{{ steps.l.output[0] }}'}}]}],"
            " 'else':[{'name':'e','action':'core.set','input':{'value':1}}]}]},"
            "{'name':'g','steps':[{'name':'a','action':'core.set',"
            "'input':{'value':1}}]}]}",
            NULL);
    assert_int_equal(t->ig->nflows, 2);
    assert_null(flow_find(t->ig, NULL));
    assert_int_equal(flow_find(t->ig, "f")->nsteps, 7);
}

/* Diags print as FILE: PATH: message, one per line. */
static void test_diags_print(void **state) {
    (void)state;
    flow_diags d = {0};
    flow_diags_add(&d, "a.json", "flows[0].name", "missing %s", "x");
    flow_diags_add(&d, NULL, NULL, "whole file");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    flow_diags_print(&d, f);
    fclose(f);
    assert_string_equal(buf, "a.json: flows[0].name: missing x\n"
                             "-: $: whole file\n");
    free(buf);
    flow_diags_free(&d);
    assert_int_equal(d.n, 0);

    /* A key can hold a newline: each diag stays on its line. */
    flow_diags_add(&d, "a.json", "config.a\nb", "bad 'a\nb\t\x01'");
    f = open_memstream(&buf, &len);
    assert_non_null(f);
    flow_diags_print(&d, f);
    fclose(f);
    assert_string_equal(buf, "a.json: config.a\\nb: bad 'a\\nb\\t\\u0001'\n");
    free(buf);
    flow_diags_free(&d);
}

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

int main(void) {
    size_t ni = NCASES(integration_cases), nn = NCASES(instance_cases);
    struct CMUnitTest *tests = calloc(ni + nn + 3, sizeof(*tests));
    char **names = calloc(ni + nn, sizeof(*names));
    size_t n = 0;
    for (size_t i = 0; i < ni; i++, n++) {
        if (asprintf(&names[n], "integration_%s", integration_cases[i].name) <
            0)
            return 1;
        tests[n] = (struct CMUnitTest){names[n], run_integration_case, setup,
                                       teardown, (void *)&integration_cases[i]};
    }
    for (size_t i = 0; i < nn; i++, n++) {
        if (asprintf(&names[n], "instance_%s", instance_cases[i].name) < 0)
            return 1;
        tests[n] = (struct CMUnitTest){names[n], run_instance_case, setup,
                                       teardown, (void *)&instance_cases[i]};
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(
        test_missing_required_config_without_instance, setup, teardown);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(
        test_valid_files_load, setup, teardown);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_diags_print);
    int rc = _cmocka_run_group_tests("flow_validate", tests, n, NULL, NULL);
    for (size_t i = 0; i < ni + nn; i++)
        free(names[i]);
    free(names);
    free(tests);
    return rc;
}
