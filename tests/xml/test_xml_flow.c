/*
 * The xml component in flows run by the real engine (flow_execute), with
 * tests/flow's fixture (ft.c): each action, blobs handed from step to
 * step, a jq step after a select, and step errors as a flow records them.
 */
#include "ft.h"

#include <stdlib.h>
#include <string.h>

#define NS                                                                     \
    "'namespaces': {'s': 'urn:example:sensors', "                              \
    "'soap': 'http://schemas.xmlsoap.org/soap/envelope/'}"

/* The readings go in as JSON (the trigger; ft_run hands it to the flow as
 * it is) and come out of xml.from_json as a blob, so that every later step
 * reads a blob. */
static const char *integration =
    "{'name': 'xmlflow', 'version': '1', 'flows': [{'name': 'f', "
    "'trigger': {'type': 'manual'}, 'steps': ["
    " {'name': 'build', 'action': 'xml.from_json', 'input': {"
    "   'value': {'soap:Envelope': {'soap:Body': {'s:GetReadingsResponse': "
    "     {'s:Reading': '{{ trigger.readings }}'}}}}, " NS ", "
    "   'output': 'blob', 'pretty': true}},"
    " {'name': 'quarter', 'action': 'xml.to_json', 'input': {"
    "   'xml': '{{ steps.build.output }}', " NS ", 'coerce_numbers': true, "
    "   'select': '/soap:Envelope/soap:Body/s:GetReadingsResponse/"
    "s:Reading[substring(s:Time, 15, 2) mod 15 = 0]'}},"
    " {'name': 'fahrenheit', 'jq': 'map({sensor: .SensorId, time: .Time, "
    "f: (.Celsius * 18 + 320 | round / 10)})', "
    "   'input': '{{ steps.quarter.output }}'},"
    " {'name': 'count', 'action': 'xml.xpath', 'input': {"
    "   'xml': '{{ steps.build.output }}', " NS ", "
    "   'expression': 'count(//s:Reading)'}},"
    " {'name': 'report', 'action': 'xml.xslt', 'input': {"
    "   'xml': '{{ steps.build.output }}', 'output': 'blob', "
    "   'params': {'sensor': 's-01'}, 'stylesheet': "
    "   '<xsl:stylesheet version=\\'1.0\\' "
    "xmlns:xsl=\\'http://www.w3.org/1999/XSL/Transform\\' "
    "xmlns:s=\\'urn:example:sensors\\'><xsl:param name=\\'sensor\\'/>"
    "<xsl:template match=\\'/\\'><report sensor=\\'{$sensor}\\'>"
    "<xsl:for-each select=\\'//s:Reading[s:SensorId = $sensor]\\'>"
    "<t><xsl:value-of select=\\'s:Time\\'/></t></xsl:for-each></report>"
    "</xsl:template></xsl:stylesheet>'}},"
    " {'name': 'back', 'action': 'xml.to_json', 'input': {"
    "   'xml': '{{ steps.report.output }}', 'arrays': ['t']}},"
    " {'name': 'result', 'action': 'core.set', 'input': {'value': {"
    "   'readings': '{{ steps.fahrenheit.output }}', "
    "   'count': '{{ steps.count.output }}', "
    "   'report': '{{ steps.back.output }}'}}}"
    "]}]}";

static const char *trigger =
    "{'readings': ["
    " {'s:SensorId': 's-01', 's:Time': '2026-11-27T00:00:00Z', "
    "  's:Celsius': 21.5},"
    " {'s:SensorId': 's-02', 's:Time': '2026-11-27T00:00:00Z', "
    "  's:Celsius': 19},"
    " {'s:SensorId': 's-01', 's:Time': '2026-11-27T00:01:00Z', "
    "  's:Celsius': 21.6},"
    " {'s:SensorId': 's-01', 's:Time': '2026-11-27T00:15:00Z', "
    "  's:Celsius': -2.5}"
    "]}";

static void test_actions_in_a_flow(void **state) {
    (void)state;
    ft *t = ft_new();
    ft_load(t, integration, NULL);
    ft_run(t, NULL, trigger);
    ft_assert_output(
        t, "{'readings': ["
           "  {'sensor': 's-01', 'time': '2026-11-27T00:00:00Z', 'f': 70.7},"
           "  {'sensor': 's-02', 'time': '2026-11-27T00:00:00Z', 'f': 66.2},"
           "  {'sensor': 's-01', 'time': '2026-11-27T00:15:00Z', 'f': 27.5}],"
           " 'count': 4,"
           " 'report': {'report': {'@sensor': 's-01', 't': ["
           "   '2026-11-27T00:00:00Z', '2026-11-27T00:01:00Z', "
           "   '2026-11-27T00:15:00Z']}}}");
    /* The select streamed the blob. */
    int streamed = 0;
    for (size_t i = 0; i < json_array_size(t->logs); i++) {
        const json_t *l = json_array_get(t->logs, i);
        const char *msg = json_string_value(json_object_get(l, "message"));
        if (strstr(msg, "selected 3 nodes, streaming (4 elements on the "
                        "path)"))
            streamed = 1;
    }
    assert_true(streamed);
    ft_free(t);
}

static void test_step_errors(void **state) {
    (void)state;
    ft *t = ft_new();
    ft_load(t,
            "{'name': 'bad', 'version': '1', 'flows': [{'name': 'f', "
            "'trigger': {'type': 'manual'}, 'steps': ["
            " {'name': 'parse', 'action': 'xml.to_json', "
            "  'input': {'xml': '{{ trigger }}'}}]}]}",
            NULL);
    assert_string_equal(ft_run(t, NULL, "'<r>\\n  <a></b>\\n</r>'"), "failed");
    assert_string_equal(t->res.error_step, "parse");
    assert_int_equal(t->res.error_code, FERRY_EPARSE);
    ft_assert_contains(t->res.error_message,
                       "xml: line 2, column 10: Opening and ending tag "
                       "mismatch: a line 2 and b");

    assert_string_equal(
        ft_run(t, NULL,
               "'<!DOCTYPE r [<!ENTITY x SYSTEM \\u0022file:///etc/passwd"
               "\\u0022>]><r>&x;</r>'"),
        "failed");
    assert_int_equal(t->res.error_code, FERRY_EUNSUPPORTED);
    ft_assert_contains(t->res.error_message, "external entity 'x'");
    ft_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actions_in_a_flow),
        cmocka_unit_test(test_step_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
