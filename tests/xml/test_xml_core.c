/*
 * The xml component's core (components/xml/xj_*.c), without the ferry API:
 * the XML-JSON mapping and its options, namespaces, XPath results, the
 * streaming select against the tree (same output for the same select),
 * the native predicates against libxml2's XPath, JSON to XML and back, and
 * the safety of the parser: XXE, billion laughs, malformed input.
 */
#include "xj.h"
#include "xj_pred.h"

#include <libxml/parser.h>
#include <libxml/xpathInternals.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- helpers ---- */

/* JSON written with ' for " (as the flow tests do). */
static json_t *sq_json(const char *sq) {
    char *text = strdup(sq);
    json_error_t je;
    json_t *v;
    assert_non_null(text);
    for (char *p = text; *p; p++)
        if (*p == '\'')
            *p = '"';
    v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v)
        fail_msg("bad test JSON (%s): %s", je.text, text);
    free(text);
    return v;
}

#define assert_json(got, want) assert_json_at((got), (want), __FILE__, __LINE__)
static void assert_json_at(const json_t *got, const char *want_sq,
                           const char *file, int line) {
    json_t *want = sq_json(want_sq);
    if (!got || !json_equal(got, want)) {
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
        print_error("got  %s\nwant %s\n", g ? g : "(nothing)", w);
        free(g);
        free(w);
        json_decref(want);
        _fail(file, line);
    }
    json_decref(want);
}

static const xj_ns test_ns[] = {
    {"s", "urn:example:sensors"},
    {"soap", "http://schemas.xmlsoap.org/soap/envelope/"},
    {"x", "urn:x"},
};

static xj_opts opts(void) {
    xj_opts o;
    xj_opts_init(&o);
    return o;
}

static xj_opts opts_ns(void) {
    xj_opts o = opts();
    o.ns = test_ns;
    o.nns = sizeof(test_ns) / sizeof(test_ns[0]);
    return o;
}

/* The whole document through the tree. */
static json_t *convert(const char *xml, const xj_opts *o, xj_err *e) {
    xmlDocPtr doc = xj_parse_memory(xml, strlen(xml), "xml", e);
    json_t *v;
    if (!doc)
        return NULL;
    v = xj_node_to_json((xmlNodePtr)doc, o, e);
    xmlFreeDoc(doc);
    return v;
}

static json_t *convert_ok(const char *xml, const xj_opts *o) {
    xj_err e = {0};
    json_t *v = convert(xml, o, &e);
    if (!v)
        fail_msg("conversion failed: %s", e.msg);
    return v;
}

static void check(const char *xml, const xj_opts *o, const char *want) {
    json_t *v = convert_ok(xml, o);
    assert_json(v, want);
    json_decref(v);
}

/* select through libxml2's XPath on the whole tree. */
static json_t *tree_select(const char *xml, const char *sel, const xj_opts *o,
                           xj_err *e) {
    xmlDocPtr doc = xj_parse_memory(xml, strlen(xml), "xml", e);
    xmlXPathObjectPtr res;
    json_t *v = NULL;
    if (!doc)
        return NULL;
    xmlXPathOrderDocElems(doc);
    res = xj_xpath_eval(doc, sel, o, "select", e);
    if (res) {
        assert_int_equal(res->type, XPATH_NODESET);
        v = xj_xpath_to_json(res, o, 0, e);
    }
    xmlXPathFreeObject(res);
    xmlFreeDoc(doc);
    return v;
}

static int append(void *ud, json_t *value, xj_err *e) {
    (void)e;
    return json_array_append_new(ud, value) ? -1 : 0;
}

/* A source read in chunks of `chunk` bytes, to cross chunk boundaries. */
typedef struct chunked {
    const char *data;
    size_t len, off, chunk;
    int reopened;
} chunked;

static int chunk_read(void *ud, char *buf, int len) {
    chunked *c = ud;
    size_t n = c->len - c->off;
    if (n > c->chunk)
        n = c->chunk;
    if (n > (size_t)len)
        n = (size_t)len;
    memcpy(buf, c->data + c->off, n);
    c->off += n;
    return (int)n;
}

static int chunk_reopen(void *ud) {
    chunked *c = ud;
    c->off = 0;
    c->reopened++;
    return 0;
}

/* select streamed; NULL with e set on failure, and fails the test if sel
 * is outside the streaming subset. chunk 0 streams from memory. */
static json_t *stream_select(const char *xml, const char *sel, const xj_opts *o,
                             size_t chunk, xj_err *e) {
    xj_path *p = NULL;
    json_t *out;
    chunked c = {xml, strlen(xml), 0, chunk, 0};
    xj_source src = {.what = "xml"};
    if (xj_path_compile(sel, o, &p, e))
        return NULL;
    if (!p)
        fail_msg("not streamable: %s", sel);
    if (chunk) {
        src.read = chunk_read;
        src.reopen = chunk_reopen;
        src.ud = &c;
    } else {
        src.data = xml;
        src.len = strlen(xml);
    }
    out = json_array();
    if (xj_stream_select(&src, p, o, append, out, NULL, e)) {
        json_decref(out);
        out = NULL;
    }
    xj_path_free(p);
    return out;
}

static int streamable(const char *sel, const xj_opts *o) {
    xj_path *p = NULL;
    xj_err e = {0};
    if (xj_path_compile(sel, o, &p, &e))
        fail_msg("%s: %s", sel, e.msg);
    xj_path_free(p);
    return p != NULL;
}

/* Both ways give the same array (and want, when given). */
static void check_select(const char *xml, const char *sel, const xj_opts *o,
                         const char *want) {
    xj_err e1 = {0}, e2 = {0}, e3 = {0};
    json_t *t = tree_select(xml, sel, o, &e1);
    json_t *s = stream_select(xml, sel, o, 0, &e2);
    json_t *c = stream_select(xml, sel, o, 7, &e3);
    if (!t)
        fail_msg("tree: %s: %s", sel, e1.msg);
    if (!s)
        fail_msg("stream: %s: %s", sel, e2.msg);
    if (!c)
        fail_msg("stream in chunks: %s: %s", sel, e3.msg);
    if (!json_equal(t, s) || !json_equal(t, c)) {
        char *a = json_dumps(t, JSON_COMPACT), *b = json_dumps(s, JSON_COMPACT);
        print_error("select %s\ntree   %s\nstream %s\n", sel, a, b);
        free(a);
        free(b);
        fail();
    }
    if (want)
        assert_json(t, want);
    json_decref(t);
    json_decref(s);
    json_decref(c);
}

/* ---- the mapping ---- */

static void test_elements_and_text(void **state) {
    (void)state;
    xj_opts o = opts();
    check("<a><b>1</b><c>two words</c><d/><e></e><f>  padded  </f></a>", &o,
          "{'a': {'b': '1', 'c': 'two words', 'd': '', 'e': '', "
          "'f': '  padded  '}}");
    check("<r>just text</r>", &o, "{'r': 'just text'}");
    check("<r/>", &o, "{'r': ''}");
    /* Comments and processing instructions are left out; CDATA is text. */
    check("<r><!-- c --><?pi x?><a><![CDATA[<x> & y]]></a></r>", &o,
          "{'r': {'a': '<x> & y'}}");
    check("<r>a<![CDATA[b]]>c</r>", &o, "{'r': 'abc'}");
    /* Character and predefined entity references are decoded. */
    check("<r>&lt;&amp;&#65;&#x42;&quot;</r>", &o, "{'r': '<&AB\\''}");
}

static void test_attributes(void **state) {
    (void)state;
    xj_opts o = opts();
    check("<r id='7' kind=\"x\"><v unit='C'>21.5</v><e a='1'/></r>", &o,
          "{'r': {'@id': '7', '@kind': 'x', 'v': {'@unit': 'C', "
          "'#text': '21.5'}, 'e': {'@a': '1'}}}");
    /* Text beside attributes is kept as it is, white space too. */
    check("<r a='1'> x </r>", &o, "{'r': {'@a': '1', '#text': ' x '}}");
    o.attr_prefix = "_";
    o.text_key = "value";
    check("<r a='1'>t</r>", &o, "{'r': {'_a': '1', 'value': 't'}}");
    /* With no prefix, an attribute and an element of the same name share
     * a key, as repeated elements do. */
    o.attr_prefix = "";
    check("<r a='1'><a>2</a></r>", &o, "{'r': {'a': ['1', '2']}}");
}

static void test_repeated_elements(void **state) {
    (void)state;
    xj_opts o = opts();
    const char *arrays[] = {"item", "r"};
    check("<r><item>1</item><other/><item>2</item><item>3</item></r>", &o,
          "{'r': {'item': ['1', '2', '3'], 'other': ''}}");
    check("<r><item>1</item></r>", &o, "{'r': {'item': '1'}}");
    o.arrays = arrays;
    o.narrays = 2;
    check("<r><item>1</item></r>", &o, "{'r': [{'item': ['1']}]}");
    check("<r><item a='x'/><item>2</item></r>", &o,
          "{'r': [{'item': [{'@a': 'x'}, '2']}]}");
}

static void test_mixed_content(void **state) {
    (void)state;
    xj_opts o = opts();
    check("<p>Hello <b>world</b>!</p>", &o,
          "{'p': {'#text': 'Hello !', 'b': 'world'}}");
    /* Indentation between elements is not text. */
    check("<r>\n  <a>1</a>\n  <b>2</b>\n</r>", &o,
          "{'r': {'a': '1', 'b': '2'}}");
    check("<r x='1'>\n  <a>1</a>\n</r>", &o, "{'r': {'@x': '1', 'a': '1'}}");
    check("<r>\n  lead\n  <a>1</a>\n</r>", &o,
          "{'r': {'#text': 'lead', 'a': '1'}}");
}

static void test_coercion(void **state) {
    (void)state;
    xj_opts o = opts();
    const char *xml =
        "<r n='3'><i>42</i><f>21.5</f><neg>-0.5</neg><e>1e3</e><z>007</z>"
        "<big>123456789012345678901234</big><plus>+1</plus><dot>.5</dot>"
        "<sp> 1</sp><t>true</t><fa>false</fa><T>True</T><w>12a</w></r>";
    check(xml, &o,
          "{'r': {'@n': '3', 'i': '42', 'f': '21.5', 'neg': '-0.5', "
          "'e': '1e3', 'z': '007', 'big': '123456789012345678901234', "
          "'plus': '+1', 'dot': '.5', 'sp': ' 1', 't': 'true', "
          "'fa': 'false', 'T': 'True', 'w': '12a'}}");
    o.coerce_numbers = 1;
    check(xml, &o,
          "{'r': {'@n': 3, 'i': 42, 'f': 21.5, 'neg': -0.5, 'e': 1000.0, "
          "'z': '007', 'big': '123456789012345678901234', 'plus': '+1', "
          "'dot': '.5', 'sp': ' 1', 't': 'true', 'fa': 'false', "
          "'T': 'True', 'w': '12a'}}");
    o.coerce_booleans = 1;
    o.coerce_numbers = 0;
    check("<r><t>true</t><f>false</f><n>1</n></r>", &o,
          "{'r': {'t': true, 'f': false, 'n': '1'}}");
}

static const char *ns_doc =
    "<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/' "
    "xmlns:other='urn:x'>"
    "<soap:Body><R xmlns='urn:example:sensors' xml:lang='en' "
    "other:id='1' plain='p'>"
    "<Reading><T>1</T></Reading><u:Reading xmlns:u='urn:unbound'>"
    "<u:T>2</u:T></u:Reading>"
    "</R></soap:Body></soap:Envelope>";

static void test_namespaces(void **state) {
    (void)state;
    xj_opts o = opts();
    /* By default, local names: namespaces are dropped (and the two
     * Readings, in different namespaces, share a key). */
    check(ns_doc, &o,
          "{'Envelope': {'Body': {'R': {'@lang': 'en', '@id': '1', "
          "'@plain': 'p', 'Reading': [{'T': '1'}, {'T': '2'}]}}}}");
    /* Prefixed: the binding's prefix, whatever the document's was. */
    o = opts_ns();
    o.prefixed_names = 1;
    check(ns_doc, &o,
          "{'soap:Envelope': {'soap:Body': {'s:R': {'@xml:lang': 'en', "
          "'@x:id': '1', '@plain': 'p', 's:Reading': {'s:T': '1'}, "
          "'{urn:unbound}Reading': {'{urn:unbound}T': '2'}}}}}");
    /* A binding with no prefix writes that namespace's names bare, for
     * elements. */
    xj_ns dflt[] = {{"", "urn:example:sensors"},
                    {"env", "http://schemas.xmlsoap.org/soap/envelope/"}};
    o.ns = dflt;
    o.nns = 2;
    check(ns_doc, &o,
          "{'env:Envelope': {'env:Body': {'R': {'@xml:lang': 'en', "
          "'@{urn:x}id': '1', '@plain': 'p', 'Reading': {'T': '1'}, "
          "'{urn:unbound}Reading': {'{urn:unbound}T': '2'}}}}}");
}

static void test_namespace_select(void **state) {
    (void)state;
    xj_opts o = opts_ns();
    /* Matching is by URI: the document's own prefixes do not matter. */
    check_select(ns_doc, "/soap:Envelope/soap:Body/s:R/s:Reading", &o,
                 "[{'T': '1'}]");
    check_select(ns_doc, "//s:Reading", &o, "[{'T': '1'}]");
    check_select(ns_doc, "//s:*", &o, NULL);
    check_select(ns_doc, "//*", &o, NULL);
    /* Unprefixed names are in no namespace (XPath 1.0). */
    check_select(ns_doc, "//Reading", &o, "[]");
    check_select(ns_doc, "//s:R[@x:id = '1']", &o, NULL);
    check_select(ns_doc, "//s:R[@xml:lang = 'en']", &o, NULL);
    /* An unbound prefix is an error either way. */
    xj_err e = {0};
    json_t *v = stream_select(ns_doc, "//q:Reading", &o, 0, &e);
    assert_null(v);
    assert_int_equal(e.code, XJ_EXPATH);
    assert_non_null(strstr(e.msg, "'q'"));
    memset(&e, 0, sizeof(e));
    assert_null(tree_select(ns_doc, "//q:Reading", &o, &e));
    assert_int_equal(e.code, XJ_EXPATH);
}

/* ---- streaming select ---- */

static const char *readings =
    "<?xml version='1.0'?>\n<!-- exported -->\n"
    "<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'>"
    "<soap:Body><GetReadingsResponse xmlns='urn:example:sensors'>\n"
    "  <Reading id='1'><SensorId>s-01</SensorId>"
    "<Time>2026-11-27T00:00:00Z</Time><Celsius>21.5</Celsius></Reading>\n"
    "  <Reading id='2'><SensorId>s-02</SensorId>"
    "<Time>2026-11-27T00:07:00Z</Time><Celsius>19</Celsius></Reading>\n"
    "  <Reading id='3'><SensorId>s-01</SensorId>"
    "<Time>2026-11-27T00:15:00Z</Time><Celsius>-2.25</Celsius>"
    "<Note>mixed <b>bold</b> text</Note></Reading>\n"
    "  <Reading id='4' flag=''><SensorId>s-03</SensorId>"
    "<Time>2026-11-27T00:30:00Z</Time><Celsius>n/a</Celsius></Reading>\n"
    "  <Group><Reading id='5'><SensorId>s-04</SensorId>"
    "<Time>2026-11-27T00:45:00Z</Time><Celsius>30</Celsius></Reading>"
    "<Reading id='6'><Reading id='7'><Celsius>1</Celsius></Reading>"
    "</Reading></Group>\n"
    "</GetReadingsResponse></soap:Body></soap:Envelope>\n";

static void test_stream_equals_tree(void **state) {
    (void)state;
    static const char *const sels[] = {
        "/soap:Envelope/soap:Body/s:GetReadingsResponse/s:Reading",
        "/soap:Envelope/soap:Body/s:GetReadingsResponse",
        "/soap:Envelope",
        "/soap:Envelope/soap:Body/*/s:Reading",
        "/soap:Envelope/soap:Body/s:GetReadingsResponse/*",
        "//s:Reading",
        "//s:Reading/s:Celsius",
        "//s:Group//s:Reading",
        "/soap:Envelope//s:Reading//s:Reading",
        "//s:Reading[s:SensorId = 's-01']",
        "//s:Reading[s:SensorId != 's-01']",
        "//s:Reading[@id = '3' or @id = 5]",
        "//s:Reading[@id > 2 and @id <= 6]",
        "//s:Reading[@flag]",
        "//s:Reading[not(@flag)]",
        "//s:Reading[s:Celsius > 20]",
        "//s:Reading[s:Celsius < 0]",
        "//s:Reading[s:Celsius = 'n/a']",
        "//s:Reading[substring(s:Time, 15, 2) mod 15 = 0]",
        "//s:Reading[substring(s:Time, 15, 2) = '00' or "
        "substring(s:Time, 15, 2) = '15']",
        "//s:Reading[starts-with(s:SensorId, 's-0') and "
        "contains(s:Time, 'T00:')]",
        "//s:Reading[string-length(s:SensorId) = 4]",
        "//s:Reading[normalize-space(s:Note) = 'mixed bold text']",
        "//s:Reading[s:Note/s:b = 'bold']",
        "//s:Reading[s:Note/text() = 'mixed ']",
        "//s:Reading[s:Celsius * 1.8 + 32 > 70]",
        "//s:Reading[-s:Celsius > 0]",
        "//s:Reading[s:Celsius div 2 = 9.5]",
        "//s:Reading[2]",
        "//s:Reading[1]",
        "//s:Reading[position() > 1][1]",
        "//s:Reading[@id][2]",
        "//s:Reading[position() = 2 or s:SensorId = 's-03']",
        "//s:Reading[count(s:*) = 3]",
        "//s:Reading[count(.//s:Celsius) = 1]",
        "//s:Reading[s:Reading]",
        "//s:Reading[.//s:b]",
        "//s:Reading[string(@id) = '2']",
        "//s:Reading[number(@id) = 2]",
        "//s:Reading[concat(s:SensorId, '@', @id) = 's-01@3']",
        "//s:Reading[substring-before(s:Time, 'T') = '2026-11-27']",
        "//s:Reading[substring-after(s:SensorId, '-') = '02']",
        "//s:Reading[boolean(s:Note)]",
        "//s:Reading[true()]",
        "//s:Reading[false()]",
        "//s:Reading[s:Celsius]",
        "//s:Reading[self::s:Reading]",
        "//s:Reading[translate(s:SensorId, 's', 'S') = 'S-01']",
        "//s:Reading[s:SensorId = 's-01'][position() = 2]",
        "//s:Reading[s:Celsius = 21.5]",
        "//s:Reading[@id = true()]",
        "//s:Reading[s:Missing = '']",
        "//s:Reading[s:Missing != '']",
        "//s:Reading[s:Celsius != 19]",
        "//s:Reading[(s:Celsius > 0) = false()]",
        "//s:Reading[substring(s:Time, 0.5, 3.4) = '20']",
        "//s:Reading[substring(s:Time, -1) = s:Time]",
        "//s:Reading[substring(s:Time, 1 div 0) = '']",
        "//s:Reading[@id mod 2]",
        "//s:Reading[s:Celsius][@id != 4]",
    };
    xj_opts o = opts_ns();
    for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++) {
        assert_true(streamable(sels[i], &o));
        check_select(readings, sels[i], &o, NULL);
    }
    o.coerce_numbers = 1;
    o.prefixed_names = 1;
    for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++)
        check_select(readings, sels[i], &o, NULL);

    o = opts_ns();
    check_select(readings, "//s:Reading[substring(s:Time, 15, 2) mod 15 = 0]",
                 &o,
                 "[{'@id': '1', 'SensorId': 's-01', "
                 "'Time': '2026-11-27T00:00:00Z', 'Celsius': '21.5'}, "
                 "{'@id': '3', 'SensorId': 's-01', "
                 "'Time': '2026-11-27T00:15:00Z', 'Celsius': '-2.25', "
                 "'Note': {'#text': 'mixed  text', 'b': 'bold'}}, "
                 "{'@id': '4', '@flag': '', 'SensorId': 's-03', "
                 "'Time': '2026-11-27T00:30:00Z', 'Celsius': 'n/a'}, "
                 "{'@id': '5', 'SensorId': 's-04', "
                 "'Time': '2026-11-27T00:45:00Z', 'Celsius': '30'}]");
    /* Many node values built from several text nodes each (scratch
     * memory of the native evaluator). */
    char many[4096];
    size_t n = (size_t)snprintf(many, sizeof(many), "<r><a id='1'>");
    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "<m>x<!--c-->%d</m>",
                              i);
    snprintf(many + n, sizeof(many) - n, "</a><a id='2'><m>x59</m></a></r>");
    check_select(many, "//a[m = 'x59']", &o, NULL);
    check_select(many, "//a[m = 'x58' and concat(m, m) = 'x0x0']", &o, NULL);
    /* Nested matches come out outer first, as in the tree. */
    check_select(readings, "//s:Group//s:Reading", &o,
                 "[{'@id': '5', 'SensorId': 's-04', "
                 "'Time': '2026-11-27T00:45:00Z', 'Celsius': '30'}, "
                 "{'@id': '6', 'Reading': {'@id': '7', 'Celsius': '1'}}, "
                 "{'@id': '7', 'Celsius': '1'}]");
    check_select(readings, "//s:Reading[s:Reading]", &o,
                 "[{'@id': '6', 'Reading': {'@id': '7', 'Celsius': '1'}}]");
}

static void test_stream_outside_subset(void **state) {
    (void)state;
    static const char *const sels[] = {
        "//s:Reading/@id",
        "//s:Reading/text()",
        "s:Reading",
        "//s:Reading | //s:Group",
        "//s:Reading[last()]",
        "//s:Reading[position() = last()]",
        "//s:Reading[../s:Group]",
        "//s:Reading[following-sibling::s:Reading]",
        "//s:Reading[/soap:Envelope]",
        "//s:Reading[count(//s:Reading) > 1]",
        "//s:Group[1]/s:Reading",
        "//s:Reading[$v]",
        "//s:Reading[id('x')]",
        "count(//s:Reading)",
        "/descendant::s:Reading",
        "//s:Reading[parent::s:Group]",
    };
    xj_opts o = opts_ns();
    for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++)
        if (streamable(sels[i], &o))
            fail_msg("streamable: %s", sels[i]);
    /* Inside a nested predicate, last() counts nodes of the subtree. */
    assert_true(streamable("//s:Reading[s:Reading[last()]]", &o));
    check_select(readings, "//s:Reading[s:Reading[last()]]", &o, NULL);
    /* A syntax error is one either way. */
    xj_err e = {0};
    xj_path *p = NULL;
    assert_int_equal(xj_path_compile("//s:Reading[", &o, &p, &e), -1);
    assert_int_equal(e.code, XJ_EXPATH);
    assert_non_null(strstr(e.msg, "select"));
}

/* A predicate's native result is libxml2's, node by node. */
static void test_native_predicates(void **state) {
    (void)state;
    static const struct {
        const char *pred;
        int native;
    } preds[] = {
        {"s:Celsius > 20", 1},
        {"s:Celsius >= '19'", 1},
        {"'19' <= s:Celsius", 1},
        {"20 < s:Celsius", 1},
        {"s:Celsius = s:Celsius + 0", 1},
        {"s:Celsius != 'n/a'", 1},
        {"@id = 2", 1},
        {"@id != 2", 1},
        {"@flag = ''", 1},
        {"@flag = false()", 1},
        {"s:Missing = false()", 1},
        {"s:Missing != 1", 1},
        {"not(s:Missing)", 1},
        {"s:Note", 1},
        {"string(s:Note) = 'mixed bold text'", 1},
        {"normalize-space(string()) != ''", 1},
        {"string-length() > 40", 1},
        {"string-length(s:Time) = 20", 1},
        {"substring(s:Time, 12, 5) = '00:15'", 1},
        {"substring(s:Time, 1.5, 2.6) = '026'", 1},
        {"substring(s:Time, 0, 3) = '20'", 1},
        {"substring(s:Time, 12) = '00:07:00Z'", 1},
        {"contains(s:Time, ':45')", 1},
        {"starts-with(@id, '')", 1},
        {"concat(@id, @id) = '33'", 1},
        {"number(s:Celsius) = number(s:Celsius)", 1},
        {"s:Celsius * 2 > 40 or s:Celsius div 0 > 1", 1},
        {"-(-s:Celsius) = s:Celsius", 1},
        {"@id mod 2 = 1", 1},
        {"@id - 1", 1},
        {"position() mod 2", 1},
        {"3", 1},
        {"count(s:*) > 3", 1},
        {"true() and not(false())", 1},
        {"(s:Celsius > 0 or @id = 4) and @id != 1", 1},
        {"s:Celsius = 21.5 = true()", 0},
        {"translate(s:SensorId, '0', 'o') = 's-o1'", 0},
        {"s:SensorId = s:Time", 0},
        {"string-length(s:Note/s:b) = 4", 1},
        {"s:Note/text() = ' text'", 1},
        {"boolean(@flag)", 1},
        {"boolean('')", 1},
        {"'' = s:Missing", 1},
        {"s:Celsius > -3", 1},
        {"s:Celsius < 1e3", 0},
        {"@* = '3'", 1},
        {"count(*) = 0", 1},
        {"s:*[2] = s:Time", 0},
    };
    xj_opts o = opts_ns();
    xj_err e = {0};
    xmlDocPtr doc = xj_parse_memory(readings, strlen(readings), "xml", &e);
    xmlXPathContextPtr x;
    xmlXPathObjectPtr all;
    assert_non_null(doc);
    x = xj_xpath_context(doc, &o, &e);
    all = xj_xpath_eval(doc, "//s:Reading", &o, "t", &e);
    assert_non_null(all);
    for (size_t i = 0; i < sizeof(preds) / sizeof(preds[0]); i++) {
        int nomem = 0;
        xj_pred *p =
            xj_pred_compile(preds[i].pred, strlen(preds[i].pred), &o, &nomem);
        xmlXPathCompExprPtr comp =
            xmlXPathCtxtCompile(x, (const xmlChar *)preds[i].pred);
        assert_false(nomem);
        assert_non_null(comp);
        if (!p != !preds[i].native)
            fail_msg("[%s] is %snative", preds[i].pred, p ? "" : "not ");
        if (!p) {
            xmlXPathFreeCompExpr(comp);
            continue; /* left to libxml2: nothing to compare */
        }
        for (int k = 0; k < all->nodesetval->nodeNr; k++) {
            xmlNodePtr node = all->nodesetval->nodeTab[k];
            for (int pos = 1; pos <= 3; pos++) {
                x->node = node;
                x->proximityPosition = pos;
                x->contextSize = -1;
                xmlXPathObjectPtr r = xmlXPathCompiledEval(comp, x);
                assert_non_null(r);
                x->proximityPosition = pos;
                int want = xmlXPathEvalPredicate(x, r);
                xmlXPathFreeObject(r);
                int got = xj_pred_eval(p, node, pos);
                if (got != want)
                    fail_msg("[%s] on Reading %d at %d: native %d, libxml2 "
                             "%d",
                             preds[i].pred, k + 1, pos, got, want);
            }
        }
        xj_pred_free(p);
        xmlXPathFreeCompExpr(comp);
    }
    xmlXPathFreeObject(all);
    xmlXPathFreeContext(x);
    xmlFreeDoc(doc);
}

static void test_stream_errors(void **state) {
    (void)state;
    xj_opts o = opts_ns();
    xj_err e = {0};
    /* Malformed after some matches: the error, with its place. */
    json_t *v =
        stream_select("<r><a>1</a>\n<a>2</a>\n<a>3</b></r>", "/r/a", &o, 0, &e);
    assert_null(v);
    assert_int_equal(e.code, XJ_EPARSE);
    assert_non_null(strstr(e.msg, "line 3"));
    assert_non_null(strstr(e.msg, "mismatch"));
    /* The same error from the tree. */
    memset(&e, 0, sizeof(e));
    assert_null(
        tree_select("<r><a>1</a>\n<a>2</a>\n<a>3</b></r>", "/r/a", &o, &e));
    assert_int_equal(e.code, XJ_EPARSE);
    assert_non_null(strstr(e.msg, "line 3"));
    memset(&e, 0, sizeof(e));
    assert_null(stream_select("", "/r/a", &o, 0, &e));
    assert_int_equal(e.code, XJ_EPARSE);
    memset(&e, 0, sizeof(e));
    assert_null(stream_select("   ", "/r/a", &o, 5, &e));
    assert_int_equal(e.code, XJ_EPARSE);
}

/* ---- XPath results ---- */

static json_t *xpath(const char *xml, const char *expr, int as_string) {
    xj_opts o = opts_ns();
    xj_err e = {0};
    xmlDocPtr doc = xj_parse_memory(xml, strlen(xml), "xml", &e);
    xmlXPathObjectPtr res;
    json_t *v;
    assert_non_null(doc);
    res = xj_xpath_eval(doc, expr, &o, "expression", &e);
    if (!res)
        fail_msg("%s", e.msg);
    v = xj_xpath_to_json(res, &o, as_string, &e);
    xmlXPathFreeObject(res);
    xmlFreeDoc(doc);
    return v;
}

static void test_xpath_results(void **state) {
    (void)state;
    static const struct {
        const char *expr;
        int as_string;
        const char *want;
    } cases[] = {
        {"count(//s:Reading)", 0, "7"},
        {"sum(//s:Reading[@id < 3]/s:Celsius)", 0, "40.5"},
        {"1 div 0", 0, "null"},
        {"0 div 0", 0, "null"},
        {"//s:Reading[1]/s:Celsius > 20", 0, "true"},
        {"string(//s:Reading[@id = 2]/s:SensorId)", 0, "'s-02'"},
        {"//s:Reading[@id = 2]/@id", 0, "['2']"},
        {"//s:Reading[@id < 3]/s:SensorId/text()", 0, "['s-01', 's-02']"},
        {"//s:Reading[@id = 7]", 0, "[{'@id': '7', 'Celsius': '1'}]"},
        {"//s:Reading[@id = 7]", 1, "['1']"},
        {"//s:Reading[@id = 3]/s:Note", 1, "['mixed bold text']"},
        {"//comment()", 0, "[' exported ']"},
        {"//s:Nothing", 0, "[]"},
        {"/", 1, "null"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = xpath(readings, cases[i].expr, cases[i].as_string);
        if (!strcmp(cases[i].want, "null")) {
            if (!strcmp(cases[i].expr, "/")) {
                /* The document node: its string value, in an array. */
                assert_true(json_is_array(v));
                assert_int_equal(json_array_size(v), 1);
            } else {
                assert_true(json_is_null(v));
            }
        } else {
            assert_json(v, cases[i].want);
        }
        json_decref(v);
    }
    json_t *v = xpath("<r><a>1</a></r>", "/", 0);
    assert_json(v, "[{'r': {'a': '1'}}]");
    json_decref(v);
}

/* ---- JSON to XML ---- */

static char *to_xml(const char *value_sq, const char *root, const xj_opts *o,
                    int pretty, int decl, xj_err *e) {
    json_t *v = sq_json(value_sq);
    xmlDocPtr doc = xj_json_to_doc(v, root, o, e);
    char *text = NULL;
    size_t len;
    json_decref(v);
    if (doc)
        text = xj_doc_to_text(doc, pretty, decl, &len, e);
    xmlFreeDoc(doc);
    return text;
}

static void check_xml(const char *value_sq, const char *root, const xj_opts *o,
                      const char *want) {
    xj_err e = {0};
    char *text = to_xml(value_sq, root, o, 0, 0, &e);
    if (!text)
        fail_msg("%s", e.msg);
    size_t n = strlen(text);
    if (n && text[n - 1] == '\n')
        text[n - 1] = 0;
    assert_string_equal(text, want);
    free(text);
}

static void test_from_json(void **state) {
    (void)state;
    xj_opts o = opts();
    check_xml("{'r': {'@id': 7, 'a': 'x', 'b': [1, 2.5, true], 'c': null, "
              "'d': {'@k': 'v', '#text': 'hi'}, 'e': {}}}",
              NULL, &o,
              "<r id=\"7\"><a>x</a><b>1</b><b>2.5</b><b>true</b><c/>"
              "<d k=\"v\">hi</d><e/></r>");
    /* With root, value is its content, and may be a scalar. */
    check_xml("'<&>\\u0022'", "t", &o, "<t>&lt;&amp;&gt;\"</t>");
    check_xml("{'#text': 'a', 'b': 'c', '@x': '\\u0022<'}", "m", &o,
              "<m x=\"&quot;&lt;\">a<b>c</b></m>");
    check_xml("{'a': 0.1, 'b': 1e300, 'c': -3}", "n", &o,
              "<n><a>0.1</a><b>1e+300</b><c>-3</c></n>");
    /* A null attribute is left out. */
    check_xml("{'@a': null, '@b': ''}", "n", &o, "<n b=\"\"/>");

    /* Namespaces: bindings declared on the root, prefix:name, a default
     * namespace, {uri}name, @xmlns. */
    xj_ns ns[] = {{"soap", "http://schemas.xmlsoap.org/soap/envelope/"},
                  {"", "urn:d"}};
    o.ns = ns;
    o.nns = 2;
    check_xml("{'soap:Envelope': {'soap:Body': {'R': {'@soap:a': 1, "
              "'{urn:other}x': 2, '@{urn:other}y': 3, '@plain': 4}}}}",
              NULL, &o,
              "<soap:Envelope "
              "xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
              "xmlns=\"urn:d\"><soap:Body><R xmlns:ns2=\"urn:other\" "
              "soap:a=\"1\" ns2:y=\"3\" plain=\"4\"><ns1:x "
              "xmlns:ns1=\"urn:other\">2</ns1:x></R></soap:Body>"
              "</soap:Envelope>");
    o = opts();
    check_xml("{'@xmlns:q': 'urn:q', 'q:a': 1}", "r", &o,
              "<r xmlns:q=\"urn:q\"><q:a>1</q:a></r>");
    check_xml("{'@xml:lang': 'en'}", "r", &o, "<r xml:lang=\"en\"/>");

    /* Pretty and the declaration. */
    xj_err e = {0};
    char *text =
        to_xml("{'r': {'a': '1', 'b': {'c': '2'}}}", NULL, &o, 1, 1, &e);
    assert_non_null(text);
    assert_string_equal(text, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                              "<r>\n  <a>1</a>\n  <b>\n    <c>2</c>\n  </b>\n"
                              "</r>\n");
    free(text);
}

static void expect_build_error(const char *value_sq, const char *root,
                               const char *what) {
    xj_opts o = opts();
    xj_err e = {0};
    char *text = to_xml(value_sq, root, &o, 0, 0, &e);
    if (text)
        fail_msg("built: %s", text);
    if (!strstr(e.msg, what))
        fail_msg("'%s' does not say '%s'", e.msg, what);
}

static void test_from_json_errors(void **state) {
    (void)state;
    expect_build_error("{'a': 1, 'b': 2}", NULL, "one member");
    expect_build_error("[1]", NULL, "one member");
    expect_build_error("{'r': [1, 2]}", NULL, "one root element");
    expect_build_error("{'r': {'a b': 1}}", NULL, "value.r.a b: the key is");
    expect_build_error("{'r': {'x': [[1]]}}", NULL, "value.r.x[0]");
    expect_build_error("{'r': {'@a': {'b': 1}}}", NULL,
                       "value.r.@a: an attribute takes");
    expect_build_error("{'r': {'q:a': 1}}", NULL,
                       "the prefix 'q' is not bound");
    expect_build_error("{'r': 'a\\u0001b'}", NULL, "XML 1.0 does not allow");
    expect_build_error("{'r': 'a\\u0000b'}", NULL, "XML 1.0 does not allow");
    expect_build_error("{'x': 1}", "1bad", "option root");
    expect_build_error("[1, 2]", "r", "an array needs a member name");
    expect_build_error("{'r': {'#text': [1]}}", NULL, "text takes");

    /* Nesting deeper than the parser would read back. */
    json_t *v = json_string("x");
    for (int i = 0; i < XJ_MAX_DEPTH + 5; i++)
        v = json_pack("{s:o}", "a", v);
    xj_opts o = opts();
    xj_err e = {0};
    xmlDocPtr doc = xj_json_to_doc(v, NULL, &o, &e);
    assert_null(doc);
    assert_int_equal(e.code, XJ_ETOOBIG);
    json_decref(v);
}

static void test_round_trip(void **state) {
    (void)state;
    static const char *const docs[] = {
        "{'r': {'@id': '7', 'a': 'x', 'b': ['1', '2'], 'c': '', "
        "'d': {'@k': 'v', '#text': 'hi'}, 'e': {'f': {'g': 'deep'}}}}",
        "{'soap:Envelope': {'soap:Body': {'s:R': {'@x:id': '1', "
        "'s:Reading': [{'s:T': '1'}, {'s:T': '2'}]}}}}",
        "{'t': ' spaced  text '}",
        "{'u': 'caf\\u00e9 \\u20ac \\ud83d\\ude00 <&>'}",
    };
    xj_opts o = opts_ns();
    o.prefixed_names = 1;
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        xj_err e = {0};
        char *text = to_xml(docs[i], NULL, &o, i % 2, 1, &e);
        if (!text)
            fail_msg("%s", e.msg);
        json_t *back = convert(text, &o, &e);
        if (!back)
            fail_msg("%s: %s", text, e.msg);
        assert_json(back, docs[i]);
        json_decref(back);
        free(text);
    }
    /* And XML -> JSON -> XML -> JSON. */
    xj_err e = {0};
    json_t *v = convert_ok(readings, &o);
    xmlDocPtr doc = xj_json_to_doc(v, NULL, &o, &e);
    size_t len;
    char *text = xj_doc_to_text(doc, 0, 1, &len, &e);
    json_t *again = convert_ok(text, &o);
    assert_true(json_equal(v, again));
    json_decref(v);
    json_decref(again);
    xmlFreeDoc(doc);
    free(text);
}

/* ---- safety ---- */

static char marker_path[256];
static const char *marker = "MARKER-7c1e4f0a-not-to-be-read";

static int make_marker(void **state) {
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(marker_path, sizeof(marker_path), "%s/ferry-xml-xxe-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(marker_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, marker, strlen(marker)),
                     (ssize_t)strlen(marker));
    close(fd);
    return 0;
}

static int remove_marker(void **state) {
    (void)state;
    unlink(marker_path);
    return 0;
}

/* Parses doc as a tree and streamed; both must fail with code, neither
 * output nor message may hold the marker. */
static void expect_refused(const char *doc, int code, const char *what) {
    xj_opts o = opts();
    xj_err e = {0};
    json_t *v = convert(doc, &o, &e);
    if (v) {
        char *s = json_dumps(v, JSON_COMPACT);
        fail_msg("tree parsed it: %s", s);
    }
    assert_int_equal(e.code, code);
    assert_null(strstr(e.msg, marker));
    if (!strstr(e.msg, what))
        fail_msg("'%s' does not say '%s'", e.msg, what);

    for (size_t chunk = 0; chunk <= 3; chunk += 3) {
        memset(&e, 0, sizeof(e));
        v = stream_select(doc, "//*", &o, chunk, &e);
        if (v) {
            char *s = json_dumps(v, JSON_COMPACT);
            fail_msg("stream parsed it: %s", s);
        }
        assert_int_equal(e.code, code);
        assert_null(strstr(e.msg, marker));
        if (!strstr(e.msg, what))
            fail_msg("'%s' does not say '%s'", e.msg, what);
    }
}

static void test_xxe(void **state) {
    (void)state;
    char doc[1024];
    snprintf(doc, sizeof(doc),
             "<?xml version='1.0'?>\n<!DOCTYPE r [\n"
             "<!ENTITY x SYSTEM 'file://%s'>\n]>\n<r>&x;</r>",
             marker_path);
    expect_refused(doc, XJ_EUNSAFE, "external entity 'x'");
    snprintf(doc, sizeof(doc),
             "<!DOCTYPE r [<!ENTITY %% p SYSTEM 'file://%s'> %%p;]><r/>",
             marker_path);
    expect_refused(doc, XJ_EUNSAFE, "parameter entity 'p'");
    snprintf(doc, sizeof(doc),
             "<!DOCTYPE r [<!ENTITY x SYSTEM 'http://127.0.0.1:9/x'>]>"
             "<r>&x;</r>");
    expect_refused(doc, XJ_EUNSAFE, "entity");
    /* An external DTD is never loaded: the document parses, its entity
     * stays unexpanded, and using it is an error. */
    snprintf(doc, sizeof(doc), "<!DOCTYPE r SYSTEM 'file://%s'><r>ok</r>",
             marker_path);
    xj_opts o = opts();
    check(doc, &o, "{'r': 'ok'}");
    snprintf(doc, sizeof(doc), "<!DOCTYPE r SYSTEM 'file://%s'><r>&e;</r>",
             marker_path);
    xj_err e = {0};
    assert_null(convert(doc, &o, &e));
    assert_int_equal(e.code, XJ_EUNSAFE);
    assert_non_null(strstr(e.msg, "&e;"));
    /* A DOCTYPE without entities is fine. */
    check("<!DOCTYPE r [<!ELEMENT r (#PCDATA)>]><r>x</r>", &o, "{'r': 'x'}");
}

static void test_billion_laughs(void **state) {
    (void)state;
    char doc[4096];
    size_t n = 0;
    n += (size_t)snprintf(doc + n, sizeof(doc) - n,
                          "<?xml version='1.0'?>\n<!DOCTYPE lolz [\n"
                          "<!ENTITY lol 'lol'>\n");
    for (int i = 1; i <= 9; i++) {
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "<!ENTITY lol%d '", i);
        for (int k = 0; k < 10; k++)
            n += (size_t)snprintf(doc + n, sizeof(doc) - n, "&lol%.0d;", i - 1);
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "'>\n");
    }
    snprintf(doc + n, sizeof(doc) - n, "]>\n<lolz>&lol9;</lolz>\n");
    clock_t t0 = clock();
    expect_refused(doc, XJ_EUNSAFE, "entity 'lol'");
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
}

static void test_malformed(void **state) {
    (void)state;
    xj_opts o = opts();
    xj_err e = {0};
    assert_null(convert("<r>\n  <a>x</b>\n</r>", &o, &e));
    assert_int_equal(e.code, XJ_EPARSE);
    assert_string_equal(e.msg, "xml: line 2, column 11: Opening and ending "
                               "tag mismatch: a line 2 and b");
    memset(&e, 0, sizeof(e));
    assert_null(convert("", &o, &e));
    assert_int_equal(e.code, XJ_EPARSE);
    memset(&e, 0, sizeof(e));
    assert_null(convert("<r a='1' a='2'/>", &o, &e));
    assert_non_null(strstr(e.msg, "line 1"));
    memset(&e, 0, sizeof(e));
    assert_null(convert("<r>\x01</r>", &o, &e));
    assert_non_null(strstr(e.msg, "line 1"));
    memset(&e, 0, sizeof(e));
    assert_null(convert("<r/><r/>", &o, &e));
    assert_non_null(strstr(e.msg, "Extra content"));
    /* A NUL byte does not end the document early. */
    memset(&e, 0, sizeof(e));
    assert_null(xj_parse_memory("<r/>\0<x/>", 9, "xml", &e));
    assert_non_null(strstr(e.msg, "Extra content"));

    /* Deeper than libxml2's limit (no XML_PARSE_HUGE). */
    size_t depth = 300, n = 0;
    char *deep = malloc(depth * 7 + 1);
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(deep + n, "<a>");
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(deep + n, "</a>");
    memset(&e, 0, sizeof(e));
    assert_null(convert(deep, &o, &e));
    assert_int_equal(e.code, XJ_EPARSE);
    assert_non_null(strstr(e.msg, "depth"));
    memset(&e, 0, sizeof(e));
    assert_null(stream_select(deep, "//a[1]", &o, 0, &e));
    assert_non_null(strstr(e.msg, "depth"));
    free(deep);

    /* Undefined namespace prefixes are libxml2's namespace errors, which
     * it does not treat as fatal: both paths keep the name. */
    check("<r><p:a>1</p:a></r>", &o, "{'r': {'p:a': '1'}}");
    check_select("<r><p:a>1</p:a></r>", "/r/*", &o, "['1']");
}

static void test_options(void **state) {
    (void)state;
    static const struct {
        const char *input, *what;
    } bad[] = {
        {"{'names': 'full'}", "option names must be"},
        {"{'names': 1}", "option names must be a string"},
        {"{'namespaces': {'a b': 'u'}}", "'a b' is not a valid prefix"},
        {"{'namespaces': {'a': 1}}", "the URI of 'a'"},
        {"{'namespaces': {'a': ''}}", "the URI of 'a'"},
        {"{'namespaces': {'xml': 'urn:no'}}", "'xml' is bound"},
        {"{'namespaces': {'xmlns': 'urn:no'}}", "'xmlns' cannot"},
        {"{'namespaces': []}", "option namespaces must be an object"},
        {"{'arrays': [1]}", "option arrays: item 0"},
        {"{'arrays': 'a'}", "option arrays must be"},
        {"{'text_key': ''}", "option text_key must not be empty"},
        {"{'attr_prefix': '#', 'text_key': '#'}", "must differ"},
        {"{'coerce_numbers': 'yes'}", "option coerce_numbers"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *in = sq_json(bad[i].input);
        xj_opts o = opts();
        xj_ns *ns;
        const char **arrays;
        xj_err e = {0};
        assert_int_equal(xj_opts_from_json(in, &o, &ns, &arrays, &e), -1);
        if (!strstr(e.msg, bad[i].what))
            fail_msg("%s: '%s' does not say '%s'", bad[i].input, e.msg,
                     bad[i].what);
        assert_int_equal(e.code, XJ_EINVAL);
        free(ns);
        free(arrays);
        json_decref(in);
    }
    json_t *in = sq_json("{'namespaces': {'s': 'urn:s', '': 'urn:d'}, "
                         "'arrays': ['a'], 'names': 'prefixed', "
                         "'attr_prefix': '', 'coerce_booleans': true}");
    xj_opts o = opts();
    xj_ns *ns;
    const char **arrays;
    xj_err e = {0};
    assert_int_equal(xj_opts_from_json(in, &o, &ns, &arrays, &e), 0);
    assert_int_equal(o.nns, 2);
    assert_int_equal(o.narrays, 1);
    assert_true(o.prefixed_names);
    assert_true(o.coerce_booleans);
    assert_string_equal(o.attr_prefix, "");
    free(ns);
    free(arrays);
    json_decref(in);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elements_and_text),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_repeated_elements),
        cmocka_unit_test(test_mixed_content),
        cmocka_unit_test(test_coercion),
        cmocka_unit_test(test_namespaces),
        cmocka_unit_test(test_namespace_select),
        cmocka_unit_test(test_stream_equals_tree),
        cmocka_unit_test(test_stream_outside_subset),
        cmocka_unit_test(test_native_predicates),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_xpath_results),
        cmocka_unit_test(test_from_json),
        cmocka_unit_test(test_from_json_errors),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test_setup_teardown(test_xxe, make_marker, remove_marker),
        cmocka_unit_test(test_billion_laughs),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_options),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmlCleanupParser();
    return rc;
}
