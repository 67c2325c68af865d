#!/usr/bin/env bash
# The soap component as a user runs it, without a SOAP service: `ferry
# components describe soap`, and `ferry run` of soap.describe on the
# shipped WSDL files (rpc/literal, and document/literal wrapped over four
# files), and of soap.call refusing bad arguments before it connects.
#
# usage: ferry_run.sh PATH/TO/ferry PATH/TO/soap.so TESTS_SOAP_DIR FIXTURE_DIR
set -euo pipefail

ferry=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
soap_so=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
tests_dir=$(cd "$3" && pwd)
fixture_dir=$(cd "$4" && pwd)
[[ -x $ferry ]] || { echo "FAIL - $1 is not executable" >&2; exit 1; }
[[ -f $soap_so ]] || { echo "FAIL - no component at '$2'" >&2; exit 1; }
command -v python3 >/dev/null || { echo "FAIL - python3 is needed" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/comps"
ln -s "$soap_so" "$tmp/comps/soap.so"
cd "$tmp"
unset FERRY_COMPONENTS_DIR FERRY_DB

fail() {
    echo "FAIL - $*" >&2
    for f in out err; do
        if [[ -f $f ]]; then
            echo "--- $f" >&2
            cat "$f" >&2
        fi
    done
    exit 1
}
run() {
    set +e
    "$ferry" "$@" >out 2>err
    rc=$?
    set -e
}
json_check() {
    python3 -c 'import json,sys; v = json.load(sys.stdin); sys.exit(0 if eval(sys.argv[1]) else 1)' \
        "$1" <out || fail "stdout is not JSON with $1"
}

# ---- the description ----
run components describe soap --components-dir comps --json
[[ $rc -eq 0 ]] || fail "components describe: exit $rc"
json_check '[a["id"] for a in v["actions"]] == ["soap.describe", "soap.call", "soap.request"]'
json_check '[(c["id"], c["auth"]) for c in v["connections"]] == [("soap.basic", "basic"), ("soap.bearer", "bearer"), ("soap.api_key", "api_key"), ("soap.oauth2", "oauth2"), ("soap.wss", "custom")]'
echo "ok - ferry components describe soap"

# ---- soap.describe of an rpc/literal WSDL file ----
cat >describe.json <<'JSON'
{"name": "soap-describe", "version": "1.0.0",
 "flows": [{"name": "main", "trigger": {"type": "manual"},
   "steps": [{"name": "d", "action": "soap.describe",
              "input": {"wsdl": "{{ trigger.body.wsdl }}"}}]}]}
JSON
run run describe.json --components-dir comps --db runs.db --quiet \
    --input "{\"wsdl\": \"$fixture_dir/library.wsdl\"}"
[[ $rc -eq 0 ]] || fail "run describe.json (library): exit $rc"
json_check 'v["services"][0]["ports"][0]["style"] == "rpc"'
json_check '[f["name"] for f in v["services"][0]["ports"][0]["operations"][0]["input"]["fields"]] == ["isbn", "copies"]'
echo "ok - ferry run: soap.describe of an rpc/literal WSDL"

# ---- soap.describe of a WSDL spread over four files ----
run run describe.json --components-dir comps --db runs.db --quiet \
    --input "{\"wsdl\": \"file://$tests_dir/wsdl/orders/orders.wsdl\"}"
[[ $rc -eq 0 ]] || fail "run describe.json (orders): exit $rc"
json_check 'len(v["documents"]) == 4 and v["target_namespace"] == "urn:example:orders"'
json_check '[o["name"] for o in v["services"][0]["ports"][0]["operations"]] == ["PlaceOrder", "GetCategory"]'
echo "ok - ferry run: soap.describe follows wsdl:import, xsd:import and xsd:include"

# ---- soap.call refuses a missing argument before connecting ----
cat >call.json <<JSON
{"name": "soap-call", "version": "1.0.0",
 "flows": [{"name": "main", "trigger": {"type": "manual"},
   "steps": [{"name": "c", "action": "soap.call",
              "input": {"wsdl": "$fixture_dir/stations.wsdl", "operation": "Add",
                        "endpoint": "http://127.0.0.1:9/soap11",
                        "arguments": "{{ trigger.body }}"}}]}]}
JSON
run run call.json --components-dir comps --db runs.db --input '{"a": 1}'
[[ $rc -eq 1 ]] || fail "run call.json (missing b): exit $rc, expected 1"
grep -qF 'FERRY_EINVAL: Add: arguments.b: required, expected xsd:int (an integer)' err ||
    fail "stderr does not name the missing argument"
echo "ok - ferry run: a missing argument is refused before anything is sent"

# ---- and a connection refused is a retryable transport error ----
run run call.json --components-dir comps --db runs.db --input '{"a": 1, "b": 2}'
[[ $rc -eq 1 ]] || fail "run call.json (no server): exit $rc, expected 1"
grep -qF 'FERRY_EUNAVAIL' err || fail "stderr does not say the service is unavailable"
echo "ok - ferry run: no service at the endpoint"
