/*
 * The soap component's core without the ferry API (components/soap,
 * soap_core.h): the envelope builder and its argument checks, the typed
 * conversion of responses and faults, WS-Security, and WSDL loading with
 * its bounds, against tests/soap/wsdl/shapes.wsdl and documents made here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "soap_core.h"

/* ---- helpers ---- */

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static json_t *jq(const char *sq) {
    char *text = strdup(sq);
    for (char *p = text; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad test JSON (%s): %s", e.text, text);
    free(text);
    return v;
}

static void assert_json(const json_t *got, const char *want_sq) {
    json_t *want = jq(want_sq);
    if (!json_equal((json_t *)got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        fail_msg("got  %s\nwant %s", g ? g : "NULL", w);
    }
    json_decref(want);
}

static sc_wsdl *shapes;

static int load_shapes(void **state) {
    (void)state;
    size_t len;
    char *data = slurp(SOAP_TEST_DIR "/wsdl/shapes.wsdl", &len);
    sc_source src = {.data = data,
                     .len = len,
                     .location = SOAP_TEST_DIR "/wsdl/shapes.wsdl"};
    sc_err e = {0};
    shapes = sc_wsdl_load(&src, &e);
    free(data);
    if (!shapes)
        fail_msg("shapes.wsdl: %s", e.msg);
    return 0;
}

static int free_shapes(void **state) {
    (void)state;
    sc_wsdl_free(shapes);
    xmlCleanupParser();
    return 0;
}

static const sc_op *op(const char *name, int version) {
    sc_target t;
    sc_err e = {0};
    if (sc_find_op(shapes, name, "S", NULL, version, &t, &e))
        fail_msg("%s", e.msg);
    return t.op;
}

/* Builds the envelope for op with args (single-quoted JSON); returns the
 * Body's content (malloc'd) or NULL with e set. */
static char *body_of(const sc_op *o, const char *args, int version,
                     const char *header, sc_err *e, char **whole) {
    json_t *a = args ? jq(args) : NULL;
    sc_buf b = {0};
    sc_envelope_opts opts = {.version = version, .soap_header = header};
    int rc = sc_build_envelope(o, a, &opts, &b, e);
    json_decref(a);
    if (rc) {
        assert_int_equal(b.len, 0);
        sc_buf_free(&b);
        return NULL;
    }
    const char *s = strstr(b.p, "<soap:Body>");
    const char *end = strstr(b.p, "</soap:Body>");
    assert_non_null(s);
    assert_non_null(end);
    s += strlen("<soap:Body>");
    char *out = strndup(s, (size_t)(end - s));
    if (whole)
        *whole = strdup(b.p);
    sc_buf_free(&b);
    return out;
}

static void expect_body(const sc_op *o, const char *args, const char *want) {
    sc_err e = {0};
    char *got = body_of(o, args, 11, NULL, &e, NULL);
    if (!got)
        fail_msg("build failed: %s", e.msg);
    if (strcmp(got, want))
        fail_msg("got  %s\nwant %s", got, want);
    free(got);
}

static void expect_refused(const sc_op *o, const char *args, const char *msg) {
    sc_err e = {0};
    char *got = body_of(o, args, 11, NULL, &e, NULL);
    if (got)
        fail_msg("built, expected '%s': %s", msg, got);
    assert_int_equal(e.code, FERRY_EINVAL);
    if (strcmp(e.msg, msg))
        fail_msg("got  '%s'\nwant '%s'", e.msg, msg);
}

/* ---- envelopes ---- */

#define ITEM                                                                   \
    "{'@code': 'c1', 'name': 'a & <b>', 'price': {'#text': 1.5, "              \
    "'@currency': 'EUR'}}"

static void test_envelope_wrapped(void **state) {
    (void)state;
    const sc_op *put = op("Put", 0);
    char *whole = NULL;
    sc_err e = {0};
    char *b =
        body_of(put, "{'item': [" ITEM "], 'byId': 7}", 11, NULL, &e, &whole);
    assert_non_null(b);
    /* The whole envelope: declarations on the Envelope only, no Header. */
    assert_string_equal(
        whole, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
               "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/"
               "envelope/\" xmlns:n1=\"urn:t\"><soap:Body><n1:Put><n1:item "
               "code=\"c1\"><n1:name>a &amp; &lt;b&gt;</n1:name><n1:price "
               "currency=\"EUR\">1.5</n1:price></n1:item><n1:byId>7</n1:byId>"
               "</n1:Put></soap:Body></soap:Envelope>\n");
    free(b);
    free(whole);

    /* Schema order whatever the JSON order; unqualified locals without a
     * prefix; a ref into another namespace (whose locals are unqualified);
     * nil; anyType content; numbers written back exactly. */
    expect_body(put,
                "{'Thing': {'v': -3, 'k': 'key'}, 'flag': 'true', "
                "'extra': {'any': {'thing': [1, 'two']}}, 'byName': 'n', "
                "'item': [{'local': 'l', 'note': null, 'qty': 255, "
                "'price': {'@currency': 'EUR', '#text': 27.3}, '@code': 'x', "
                "'@ver': '2', 'name': 'n'}, "
                "{'@code': 'y', 'name': '', 'price': {'#text': '1e3', "
                "'@currency': 'U\\u0022SD'}}]}",
                "<n1:Put><n1:item code=\"x\" ver=\"2\"><n1:name>n</n1:name>"
                "<n1:qty>255</n1:qty><n1:price currency=\"EUR\">27.3</n1:price>"
                "<n1:note xsi:nil=\"true\"/><local>l</local></n1:item>"
                "<n1:item code=\"y\"><n1:name></n1:name><n1:price "
                "currency=\"U&quot;SD\">1e3</n1:price></n1:item>"
                "<n1:byName>n</n1:byName><n1:extra><any><thing>1</thing>"
                "<thing>two</thing></any></n1:extra><n1:flag>true</n1:flag>"
                "<n2:Thing><k>key</k><v>-3</v></n2:Thing></n1:Put>");
}

static void test_envelope_refusals(void **state) {
    (void)state;
    const sc_op *put = op("Put", 0);
    expect_refused(put, "{'byId': 1}",
                   "arguments.item: required, an array of at least 1 of Item "
                   "(an object)");
    expect_refused(put, "{'item': [" ITEM "]}",
                   "arguments: one of byId, byName is required (a choice)");
    expect_refused(put, "{'item': [" ITEM "], 'byId': 1, 'byName': 'x'}",
                   "arguments: 'byId' and 'byName' are alternatives (a choice "
                   "of byId, byName): give one");
    expect_refused(put, "{'item': [" ITEM "], 'byId': 1, 'zz': 1}",
                   "arguments.zz: not declared by the schema (the operation's "
                   "input has item, byId, byName, extra, flag, Thing)");
    expect_refused(put,
                   "{'item': [{'@code': 'c', 'name': 'n', 'price': 1, "
                   "'qty': 256}], 'byId': 1}",
                   "arguments.item[0].qty: 256 is out of range for "
                   "xsd:unsignedByte (0 to 255)");
    expect_refused(put,
                   "{'item': [{'@code': 'c', 'name': 'n', 'price': 1, "
                   "'qty': -1}], 'byId': 1}",
                   "arguments.item[0].qty: -1 is out of range for "
                   "xsd:unsignedByte (0 to 255)");
    expect_refused(put, "{'item': [{'name': 'n', 'price': 1}], 'byId': 1}",
                   "arguments.item[0].@code: required attribute, expected "
                   "xsd:string");
    expect_refused(put,
                   "{'item': [{'@code': 'c', 'name': 'n', 'price': 1, "
                   "'@ver': 'v2'}], 'byId': 1}",
                   "arguments.item[0].@ver: expected xsd:int (an integer), got "
                   "string \"v2\"");
    expect_refused(put,
                   "{'item': [{'@code': 'c', 'name': 'n', 'price': {'@x': 1}}],"
                   " 'byId': 1}",
                   "arguments.item[0].price.@x: not declared by the schema "
                   "(this element has @currency)");
    /* simple content given as its value alone: its required attribute
     * is missing */
    expect_refused(put,
                   "{'item': [{'@code': 'c', 'name': 'n', 'price': 27.3}], "
                   "'byId': 1}",
                   "arguments.item[0].price.@currency: required attribute, "
                   "expected xsd:string");
    expect_refused(put, "{'item': [{'@code': 'c', 'price': 1}], 'byId': 1}",
                   "arguments.item[0].name: required, expected xsd:string (a "
                   "string)");
    expect_refused(put,
                   "{'item': [{'@code': 'c', 'name': null, 'price': 1}], "
                   "'byId': 1}",
                   "arguments.item[0].name: required, expected xsd:string (a "
                   "string); null is not allowed, it is not nillable");
    expect_refused(put, "{'item': [" ITEM "], 'byId': 1.5}",
                   "arguments.byId: expected xsd:long (an integer), got number "
                   "1.5");
    expect_refused(put, "{'item': [" ITEM "], 'byId': true}",
                   "arguments.byId: expected xsd:long (an integer), got "
                   "boolean true");
    expect_refused(put, "{'item': [" ITEM "], 'byId': 1, 'flag': 1}",
                   "arguments.flag: expected xsd:boolean (a boolean), got "
                   "integer 1");
    expect_refused(put, "{'item': [" ITEM "], 'byId': 1, 'flag': [true]}",
                   "arguments.flag: expected xsd:boolean (a boolean), got an "
                   "array (maxOccurs is 1)");
    expect_refused(put, "{'item': [" ITEM "], 'byId': 1, 'Thing': 'x'}",
                   "arguments.Thing: expected anonymous (an object), got "
                   "string \"x\"");
    expect_refused(put, "{'item': [" ITEM "], 'byName': 'a\\u0001b'}",
                   "arguments.byName: contains U+0001, a character XML 1.0 "
                   "cannot carry");
    expect_refused(put,
                   "{'item': [" ITEM "], 'byName': 'x', "
                   "'extra': {'1bad': 1}}",
                   "arguments.extra.1bad: '1bad' cannot be an XML element "
                   "name");
    sc_err e = {0};
    json_t *a = jq("[1]");
    sc_buf b = {0};
    sc_envelope_opts o = {.version = 11};
    assert_int_equal(sc_build_envelope(put, a, &o, &b, &e), -1);
    assert_string_equal(e.msg, "arguments: expected an object");
    json_decref(a);
    sc_buf_free(&b);
}

static void test_envelope_styles(void **state) {
    (void)state;
    /* document/literal, two bare parts: both elements in the Body */
    expect_body(op("Bare", 0), "{'Word': 'w', 'Pair': {'x': 1}}",
                "<n1:Word>w</n1:Word><n1:Pair><n1:x>1</n1:x></n1:Pair>");
    /* rpc/literal: the wrapper in the body namespace, unqualified parts,
     * a part's complex content as its schema says (qualified) */
    expect_body(op("Rpc", 0),
                "{'n': 1, 's': 'x', 'item': {'@code': 'c', 'name': 'n', "
                "'price': {'#text': 2, '@currency': 'EUR'}}}",
                "<n1:Rpc><n>1</n><s>x</s><item code=\"c\"><n2:name>n</n2:name>"
                "<n2:price currency=\"EUR\">2</n2:price></item></n1:Rpc>");
    /* no arguments at all */
    expect_body(op("Ping", 0), NULL, "<n1:Ping></n1:Ping>");
    expect_refused(op("Ping", 0), "{'x': 1}",
                   "arguments.x: not declared by the schema (the operation's "
                   "input has no fields)");

    /* SOAP 1.2, a Header from soap_header */
    char *whole = NULL;
    sc_err e = {0};
    char *b =
        body_of(op("Ping", 12), "{}", 12,
                "<h:Session xmlns:h=\"urn:h\">42</h:Session>", &e, &whole);
    assert_non_null(b);
    assert_non_null(strstr(whole, "<soap:Envelope xmlns:soap=\"http://www.w3."
                                  "org/2003/05/soap-envelope\""));
    assert_non_null(strstr(whole, "<soap:Header><h:Session xmlns:h=\"urn:h\">"
                                  "42</h:Session></soap:Header><soap:Body>"));
    free(b);
    free(whole);
    assert_null(body_of(op("Ping", 12), "{}", 12, "<h:S>", &e, NULL));
    assert_int_equal(e.code, FERRY_EINVAL);
    assert_non_null(strstr(e.msg, "soap_header"));
}

/* ---- WS-Security ---- */

static void test_wss_digest(void **state) {
    (void)state;
    unsigned char nonce[64];
    long n = sc_base64_decode("81GQNZ9f/3NWKyCo9n0I9w==", nonce, sizeof(nonce));
    assert_int_equal(n, 16);
    char d[29];
    assert_int_equal(
        sc_wss_digest(nonce, (size_t)n, "2017-05-23T12:49:29.006Z", "dummy", d),
        0);
    assert_string_equal(d, "AF4XIjLoVGaGFW4UePrfpkMZwF8=");
    char enc[64];
    sc_base64_encode(nonce, (size_t)n, enc);
    assert_string_equal(enc, "81GQNZ9f/3NWKyCo9n0I9w==");
    assert_int_equal(sc_base64_decode("a!b", nonce, sizeof(nonce)), -1);
    sc_base64_encode((const unsigned char *)"ab", 2, enc);
    assert_string_equal(enc, "YWI=");

    sc_wss w = {.username = "bob<",
                .password = "dummy",
                .digest = 1,
                .must_understand = 1,
                .fixed_nonce = nonce,
                .fixed_nonce_len = 16,
                .fixed_created = "2017-05-23T12:49:29.006Z"};
    sc_buf b = {0};
    sc_err e = {0};
    assert_int_equal(sc_wss_header(&w, "soap", &b, &e), 0);
    assert_string_equal(
        b.p,
        "<wsse:Security xmlns:wsse=\"" SC_NS_WSSE "\" xmlns:wsu=\"" SC_NS_WSU
        "\" soap:mustUnderstand=\"1\"><wsse:UsernameToken "
        "wsu:Id=\"UsernameToken-1\"><wsse:Username>bob&lt;</wsse:Username>"
        "<wsse:Password Type=\"http://docs.oasis-open.org/wss/2004/01/"
        "oasis-200401-wss-username-token-profile-1.0#PasswordDigest\">"
        "AF4XIjLoVGaGFW4UePrfpkMZwF8=</wsse:Password><wsse:Nonce "
        "EncodingType=\"http://docs.oasis-open.org/wss/2004/01/"
        "oasis-200401-wss-soap-message-security-1.0#Base64Binary\">"
        "81GQNZ9f/3NWKyCo9n0I9w==</wsse:Nonce><wsu:Created>"
        "2017-05-23T12:49:29.006Z</wsu:Created></wsse:UsernameToken>"
        "</wsse:Security>");
    sc_buf_free(&b);

    /* PasswordText without nonce and created, without mustUnderstand */
    sc_wss t = {.username = "u", .password = "p&w"};
    assert_int_equal(sc_wss_header(&t, "soap", &b, &e), 0);
    assert_non_null(strstr(b.p, "#PasswordText\">p&amp;w</wsse:Password>"
                                "</wsse:UsernameToken>"));
    assert_null(strstr(b.p, "mustUnderstand"));
    sc_buf_free(&b);

    /* random nonce and the clock: different each time, well formed */
    sc_wss r = {.username = "u", .password = "p", .digest = 1};
    sc_buf b2 = {0};
    assert_int_equal(sc_wss_header(&r, "soap", &b, &e), 0);
    assert_int_equal(sc_wss_header(&r, "soap", &b2, &e), 0);
    assert_string_not_equal(b.p, b2.p);
    const char *c = strstr(b.p, "<wsu:Created>");
    assert_non_null(c);
    assert_int_equal(strcspn(c + 13, "<"), strlen("2017-05-23T12:49:29.006Z"));
    sc_buf_free(&b);
    sc_buf_free(&b2);

    /* in an envelope */
    sc_envelope_opts o = {.version = 12, .wss = &w};
    assert_int_equal(sc_build_envelope(op("Ping", 12), NULL, &o, &b, &e), 0);
    assert_non_null(strstr(b.p, "<soap:Header><wsse:Security "));
    assert_non_null(strstr(b.p, "</wsse:Security></soap:Header><soap:Body>"));
    sc_buf_free(&b);
}

/* ---- responses ---- */

static void read_ok(const sc_op *o, const char *xml, sc_response *r) {
    sc_err e = {0};
    if (sc_read_response(xml, strlen(xml), o, r, &e))
        fail_msg("read failed: %s", e.msg);
}

#define ENV11 "<e:Envelope xmlns:e=\"" SC_NS_SOAP11 "\">"
#define ENV12 "<e:Envelope xmlns:e=\"" SC_NS_SOAP12 "\">"

static void test_response_typed(void **state) {
    (void)state;
    sc_response r;
    read_ok(op("Put", 0),
            ENV11 "<e:Header><x:Trace xmlns:x=\"urn:x\">7</x:Trace></e:Header>"
                  "<e:Body><PutResponse xmlns=\"urn:t\" xmlns:xsi=\"" SC_NS_XSI
                  "\"><count> 2 </count><item code=\"a\" ver=\"3\"><name>x"
                  "</name><qty>5</qty><price currency=\"EUR\">1.50</price>"
                  "<note xsi:nil=\"true\"/></item><total currency=\"EUR\">"
                  "99999999999999999999</total><ok>1</ok><ratio>INF</ratio>"
                  "<unknown a=\"1\"><b>1</b><b>2</b></unknown>"
                  "</PutResponse></e:Body></e:Envelope>",
            &r);
    assert_int_equal(r.version, 11);
    assert_false(r.is_fault);
    assert_false(r.mismatch);
    assert_json(r.result,
                "{'count': 2, 'item': [{'@code': 'a', '@ver': 3, 'name': 'x', "
                "'qty': 5, 'price': {'@currency': 'EUR', '#text': 1.5}, "
                "'note': null}], 'total': {'@currency': 'EUR', '#text': "
                "1e20}, 'ok': true, 'ratio': 'INF', "
                "'unknown': {'@a': '1', 'b': ['1', '2']}}");
    assert_json(r.header, "{'Trace': '7'}");
    sc_response_clear(&r);

    /* repeated elements absent: empty arrays; a wrong wrapper noted */
    read_ok(op("Put", 0),
            ENV11 "<e:Body><m:Other xmlns:m=\"urn:t\"><m:count>0</m:count>"
                  "<m:ok>false</m:ok><m:ratio>0.25</m:ratio></m:Other>"
                  "</e:Body></e:Envelope>",
            &r);
    assert_true(r.mismatch);
    assert_string_equal(r.mismatch_name, "Other");
    assert_json(r.result, "{'count': 0, 'item': [], 'ok': false, "
                          "'ratio': 0.25}");
    assert_null(r.header);
    sc_response_clear(&r);

    /* bare parts, rpc parts (qualified or not: matched by local name) */
    read_ok(op("Bare", 0),
            ENV11 "<e:Body><Pair xmlns=\"urn:t\"><x>4</x></Pair></e:Body>"
                  "</e:Envelope>",
            &r);
    assert_json(r.result, "{'Pair': {'x': 4}}");
    sc_response_clear(&r);
    read_ok(op("Rpc", 0),
            ENV11 "<e:Body><r:RpcResponse xmlns:r=\"urn:t:rpc\"><sum>-1.25"
                  "</sum></r:RpcResponse></e:Body></e:Envelope>",
            &r);
    assert_json(r.result, "{'sum': -1.25}");
    sc_response_clear(&r);

    /* without an operation: generic, text as strings */
    read_ok(NULL,
            ENV12 "<e:Body><a><b>1</b><b>2</b><c/></a></e:Body></e:Envelope>",
            &r);
    assert_int_equal(r.version, 12);
    assert_json(r.result, "{'a': {'b': ['1', '2'], 'c': ''}}");
    sc_response_clear(&r);
}

static void test_response_faults(void **state) {
    (void)state;
    sc_response r;
    /* 1.1: unqualified children; the detail typed by the declared fault */
    read_ok(op("Put", 0),
            ENV11 "<e:Body><e:Fault><faultcode>e:Client.Validation</faultcode>"
                  "<faultstring> Bad item </faultstring><faultactor>urn:a"
                  "</faultactor><detail><t:Err xmlns:t=\"urn:t\"><t:code>7"
                  "</t:code><t:why>no</t:why></t:Err><Extra>x</Extra>"
                  "</detail></e:Fault></e:Body></e:Envelope>",
            &r);
    assert_true(r.is_fault);
    assert_int_equal(r.fault.version, 11);
    assert_string_equal(r.fault.code, "e:Client.Validation");
    assert_string_equal(r.fault.kind, "client");
    assert_string_equal(r.fault.reason, "Bad item");
    assert_string_equal(r.fault.actor, "urn:a");
    assert_null(r.fault.subcode);
    assert_json(r.fault.detail,
                "{'Err': {'code': 7, 'why': 'no'}, 'Extra': 'x'}");
    sc_response_clear(&r);

    /* 1.2: Code/Subcode chain, the English reason, Detail */
    read_ok(op("Put", 0),
            ENV12 "<e:Body><e:Fault><e:Code><e:Value>e:Receiver</e:Value>"
                  "<e:Subcode><e:Value>a:Busy</e:Value><e:Subcode><e:Value>"
                  "Later</e:Value></e:Subcode></e:Subcode></e:Code><e:Reason>"
                  "<e:Text xml:lang=\"de\">Besetzt</e:Text><e:Text "
                  "xml:lang=\"en-GB\">Busy</e:Text></e:Reason><e:Detail>"
                  "retry later</e:Detail></e:Fault></e:Body></e:Envelope>",
            &r);
    assert_int_equal(r.fault.version, 12);
    assert_string_equal(r.fault.code, "e:Receiver");
    assert_string_equal(r.fault.kind, "server");
    assert_string_equal(r.fault.subcode, "a:Busy/Later");
    assert_string_equal(r.fault.reason, "Busy");
    assert_json(r.fault.detail, "'retry later'");
    sc_response_clear(&r);

    /* a 1.2-shaped fault in a 1.1 envelope (seen from node-soap); an
     * undeclared prefix; WS-Security codes */
    read_ok(NULL,
            ENV11 "<e:Body><e:Fault><e:Code><e:Value>SOAP-ENV:Server</e:Value>"
                  "</e:Code><e:Reason><e:Text>TypeError</e:Text></e:Reason>"
                  "</e:Fault></e:Body></e:Envelope>",
            &r);
    assert_string_equal(r.fault.code, "SOAP-ENV:Server");
    assert_string_equal(r.fault.kind, "server");
    assert_string_equal(r.fault.reason, "TypeError");
    assert_null(r.fault.detail);
    sc_response_clear(&r);
    read_ok(NULL,
            ENV11 "<e:Body><e:Fault><faultcode xmlns:w=\"" SC_NS_WSSE
                  "\">w:Whatever</faultcode><faultstring/></e:Fault></e:Body>"
                  "</e:Envelope>",
            &r);
    assert_string_equal(r.fault.kind, "auth");
    assert_string_equal(r.fault.reason, "");
    sc_response_clear(&r);
    read_ok(NULL,
            ENV11 "<e:Body><e:Fault><faultcode>e:MustUnderstand</faultcode>"
                  "</e:Fault></e:Body></e:Envelope>",
            &r);
    assert_string_equal(r.fault.kind, "other");
    sc_response_clear(&r);
}

static void test_response_refused(void **state) {
    (void)state;
    static const struct {
        const char *xml;
        int code;
        const char *msg;
    } cases[] = {
        {"<html><body>Oops</body></html>", FERRY_EPROTO,
         "the response is not a SOAP envelope (its root element is <html>)"},
        {"<Envelope xmlns=\"urn:x\"/>", FERRY_EPROTO,
         "the response's Envelope is in namespace 'urn:x', neither SOAP "
         "1.1's nor 1.2's"},
        {ENV11 "</e:Envelope>", FERRY_EPROTO,
         "the response's envelope has no Body"},
        {ENV11 "<e:Body>", FERRY_EPARSE, "the response: line 1, column"},
        {"<!DOCTYPE e:Envelope [<!ENTITY x SYSTEM "
         "\"file:///etc/passwd\">]>" ENV11 "<e:Body>&x;</e:Body></e:Envelope>",
         FERRY_EUNSUPPORTED, "the response: the document has a DOCTYPE"},
        {"", FERRY_EPARSE, "the response: empty document"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        sc_response r;
        sc_err e = {0};
        assert_int_equal(
            sc_read_response(cases[i].xml, strlen(cases[i].xml), NULL, &r, &e),
            -1);
        assert_int_equal(e.code, cases[i].code);
        if (strncmp(e.msg, cases[i].msg, strlen(cases[i].msg)))
            fail_msg("case %zu: '%s'", i, e.msg);
    }
}

/* ---- WSDL loading ---- */

/* Documents served from a table, by their location. */
static const char *const *docs_table;
static int fetches;

static int table_fetch(void *ud, const char *location, char **data, size_t *len,
                       sc_err *e) {
    (void)ud;
    fetches++;
    for (size_t i = 0; docs_table[i]; i += 2)
        if (!strcmp(docs_table[i], location)) {
            *data = strdup(docs_table[i + 1]);
            *len = strlen(*data);
            return 0;
        }
    return sc_fail(e, FERRY_ENOTFOUND, "no document %s", location);
}

#define WSDL_HEAD                                                              \
    "<definitions xmlns=\"http://schemas.xmlsoap.org/wsdl/\" "                 \
    "xmlns:soap=\"http://schemas.xmlsoap.org/wsdl/soap/\" "                    \
    "xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:t=\"urn:i\" "         \
    "targetNamespace=\"urn:i\">"

#define SERVICE                                                                \
    "<message name=\"M\"><part name=\"p\" element=\"t:Op\"/></message>"        \
    "<portType name=\"PT\"><operation name=\"Op\"><input message=\"t:M\"/>"    \
    "</operation></portType><binding name=\"B\" type=\"t:PT\">"                \
    "<soap:binding/><operation name=\"Op\"><input><soap:body "                 \
    "use=\"literal\"/></input></operation></binding><service name=\"S\">"      \
    "<port name=\"P\" binding=\"t:B\"><soap:address "                          \
    "location=\"http://h/\"/></port></service>"

static sc_wsdl *load_text(const char *text, const char *location,
                          const char *const *table, sc_err *e) {
    docs_table = table;
    fetches = 0;
    sc_source src = {.data = text,
                     .len = strlen(text),
                     .location = location,
                     .fetch = table_fetch};
    return sc_wsdl_load(&src, e);
}

static void test_wsdl_imports(void **state) {
    (void)state;
    /* types from an imported schema, which includes another (and
     * includes itself back: loaded once) */
    static const char *const table[] = {
        "http://h/x/a.xsd",
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" "
        "targetNamespace=\"urn:i\" elementFormDefault=\"qualified\">"
        "<xs:include schemaLocation=\"../b.xsd\"/><xs:element name=\"Op\">"
        "<xs:complexType><xs:sequence><xs:element name=\"v\" type=\"V\" "
        "xmlns=\"urn:i\"/></xs:sequence></xs:complexType></xs:element>"
        "</xs:schema>",
        "http://h/b.xsd",
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">"
        "<xs:include schemaLocation=\"x/a.xsd\"/><xs:simpleType name=\"V\">"
        "<xs:restriction base=\"xs:short\"/></xs:simpleType></xs:schema>",
        NULL};
    sc_err e = {0};
    sc_wsdl *w = load_text(
        WSDL_HEAD "<types><xs:schema><xs:import namespace=\"urn:i\" "
                  "schemaLocation=\"x/a.xsd\"/></xs:schema></types>" SERVICE
                  "</definitions>",
        "http://h/main.wsdl", table, &e);
    if (!w)
        fail_msg("%s", e.msg);
    assert_int_equal(fetches, 2);
    assert_int_equal(w->ndocuments, 3);
    assert_string_equal(w->documents[2], "http://h/b.xsd");
    sc_target t;
    assert_int_equal(sc_find_op(w, "Op", NULL, NULL, 0, &t, &e), 0);
    json_t *f = sc_describe_fields(t.op->in.content);
    assert_json(f, "[{'name': 'v', 'namespace': 'urn:i', 'type': 'V', "
                   "'json': 'integer', 'min_occurs': 1, 'max_occurs': 1, "
                   "'array': false, 'minimum': -32768, 'maximum': 32767}]");
    json_decref(f);
    sc_wsdl_free(w);

    /* a document from the network may not import a file */
    memset(&e, 0, sizeof(e));
    assert_null(load_text(WSDL_HEAD "<import location=\"file:///etc/x\"/>"
                                    "</definitions>",
                          "http://h/main.wsdl", table, &e));
    assert_int_equal(e.code, FERRY_EPERM);
    assert_non_null(strstr(e.msg, "may only import http:// or https://"));
    assert_int_equal(fetches, 0);
    /* nor may text given inline */
    memset(&e, 0, sizeof(e));
    assert_null(load_text(WSDL_HEAD "<import location=\"/etc/x\"/>"
                                    "</definitions>",
                          NULL, table, &e));
    assert_int_equal(e.code, FERRY_EPERM);
    /* relative, inline, no base */
    memset(&e, 0, sizeof(e));
    assert_null(load_text(WSDL_HEAD "<import location=\"x.wsdl\"/>"
                                    "</definitions>",
                          NULL, table, &e));
    assert_int_equal(e.code, FERRY_EINVAL);
    assert_non_null(strstr(e.msg, "give base_url"));
}

static void test_wsdl_bounds(void **state) {
    (void)state;
    /* a chain of imports ten deep */
    static char bufs[12][512];
    static const char *table[26];
    for (int i = 0; i < 12; i++) {
        snprintf(bufs[i], sizeof(bufs[i]),
                 WSDL_HEAD "<import location=\"d%d.wsdl\"/></definitions>",
                 i + 1);
        char *loc = malloc(32);
        snprintf(loc, 32, "http://h/d%d.wsdl", i);
        table[i * 2] = loc;
        table[i * 2 + 1] = bufs[i];
    }
    table[24] = NULL;
    sc_err e = {0};
    assert_null(load_text(bufs[0], "http://h/d0.wsdl", table, &e));
    assert_int_equal(e.code, FERRY_ETOOBIG);
    assert_non_null(strstr(e.msg, "imported more than 8 levels deep"));
    for (int i = 0; i < 12; i++)
        free((char *)table[i * 2]);

    /* what is not a WSDL 1.1 */
    memset(&e, 0, sizeof(e));
    assert_null(load_text("<description xmlns=\"http://www.w3.org/ns/wsdl\"/>",
                          NULL, NULL, &e));
    assert_int_equal(e.code, FERRY_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "WSDL 2.0"));
    memset(&e, 0, sizeof(e));
    assert_null(load_text("<x/>", NULL, NULL, &e));
    assert_int_equal(e.code, FERRY_EPARSE);
    assert_non_null(strstr(e.msg, "its root element is <x>"));
    memset(&e, 0, sizeof(e));
    assert_null(load_text(WSDL_HEAD "</definitions>", NULL, NULL, &e));
    assert_int_equal(e.code, FERRY_EINVAL);
    assert_non_null(strstr(e.msg, "has no service with a SOAP 1.1 or 1.2"));
    /* an undefined type is worked around and reported */
    memset(&e, 0, sizeof(e));
    sc_wsdl *w = load_text(
        WSDL_HEAD "<types><xs:schema targetNamespace=\"urn:i\"><xs:element "
                  "name=\"Op\" type=\"t:Nope\"/></xs:schema></types>" SERVICE
                  "</definitions>",
        NULL, NULL, &e);
    assert_non_null(w);
    assert_json(w->warnings,
                "['type \\u0027t:Nope\\u0027 is not defined; taken as "
                "xsd:anyType']");
    sc_wsdl_free(w);
}

static void test_find_op(void **state) {
    (void)state;
    sc_target t;
    sc_err e = {0};
    /* Ping is in two services */
    assert_int_equal(sc_find_op(shapes, "Ping", NULL, NULL, 0, &t, &e), -1);
    assert_string_equal(e.msg,
                        "operation 'Ping' is offered by several services "
                        "('S', 'Other'): give service (and port)");
    memset(&e, 0, sizeof(e));
    assert_int_equal(sc_find_op(shapes, "Ping", "Other", NULL, 0, &t, &e), 0);
    assert_string_equal(t.port->name, "O12");
    /* two ports of one service: the first, unless told */
    assert_int_equal(sc_find_op(shapes, "Ping", "S", NULL, 0, &t, &e), 0);
    assert_string_equal(t.port->name, "P11");
    assert_int_equal(sc_find_op(shapes, "Ping", "S", NULL, 12, &t, &e), 0);
    assert_string_equal(t.port->name, "P12");
    assert_int_equal(t.port->version, 12);
    assert_int_equal(sc_find_op(shapes, "Ping", "S", "P12", 0, &t, &e), 0);
    assert_string_equal(t.op->action, "urn:t#Ping");
    assert_int_equal(sc_find_op(shapes, "Put", "S", NULL, 12, &t, &e), -1);
    assert_int_equal(e.code, FERRY_ENOTFOUND);
    assert_string_equal(e.msg, "no operation 'Put' in the WSDL (looked in "
                               "service 'S' SOAP 1.2 ports); operations: Ping");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_wrapped),
        cmocka_unit_test(test_envelope_refusals),
        cmocka_unit_test(test_envelope_styles),
        cmocka_unit_test(test_wss_digest),
        cmocka_unit_test(test_response_typed),
        cmocka_unit_test(test_response_faults),
        cmocka_unit_test(test_response_refused),
        cmocka_unit_test(test_wsdl_imports),
        cmocka_unit_test(test_wsdl_bounds),
        cmocka_unit_test(test_find_op),
    };
    return cmocka_run_group_tests(tests, load_shapes, free_shapes);
}
