#!/usr/bin/env bash
# The csv component as a user runs it: `ferry components describe csv`,
# and `ferry run` of flows that parse text given with --input, generate CSV
# and parse it back from a blob, and fail on a malformed record. Everything
# happens in a temporary directory whose components directory holds only
# csv.so.
#
# usage: ferry_run.sh PATH/TO/ferry PATH/TO/csv.so
set -euo pipefail

ferry=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
csv_so=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
[[ -x $ferry ]] || { echo "FAIL - $1 is not executable" >&2; exit 1; }
[[ -f $csv_so ]] || { echo "FAIL - no component at '$2'" >&2; exit 1; }
command -v python3 >/dev/null || { echo "FAIL - python3 is needed" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/comps"
ln -s "$csv_so" "$tmp/comps/csv.so"
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
# Checks stdout with a python expression over the parsed JSON, `v`.
json_check() {
    python3 -c 'import json,sys; v = json.load(sys.stdin); sys.exit(0 if eval(sys.argv[1]) else 1)' \
        "$1" <out || fail "stdout is not JSON with $1"
}

# ---- the description loads and shows both actions ----
run components describe csv --components-dir comps --json
[[ $rc -eq 0 ]] || fail "components describe: exit $rc"
json_check '[a["id"] for a in v["actions"]] == ["csv.parse", "csv.generate"]'
json_check '{i["name"]: i.get("default") for i in v["actions"][0]["inputs"]}["on_error"] == "fail"'
echo "ok - ferry components describe csv"

# ---- csv.parse of text from --input ----
cat >parse.json <<'JSON'
{"name": "csv-parse", "version": "1.0.0",
 "flows": [{"name": "main", "trigger": {"type": "manual"},
   "steps": [{"name": "parse", "action": "csv.parse",
              "input": {"text": "{{ trigger.body.csv }}", "infer_types": true}}]}]}
JSON
run run parse.json --components-dir comps --db runs.db --quiet \
    --input '{"csv": "city,temp_c\r\n\"Zurich, CH\",21.5\r\nOslo,-3\r\n"}'
[[ $rc -eq 0 ]] || fail "run parse.json: exit $rc"
json_check 'v["rows"] == [{"city": "Zurich, CH", "temp_c": 21.5}, {"city": "Oslo", "temp_c": -3}]'
json_check 'v["count"] == 2 and v["errors"] == []'
echo "ok - ferry run: csv.parse of text"

# ---- a malformed record fails the run, naming line and column ----
run run parse.json --components-dir comps --db runs.db \
    --input '{"csv": "a,b\n1,2\n3,\"4\"5\n"}'
[[ $rc -eq 1 ]] || fail "run parse.json (malformed): exit $rc, expected 1"
grep -qF 'FERRY_EPARSE: line 3, column 6: '"'"'5'"'"' after a closing quote' err ||
    fail "stderr does not name the line and column"
echo "ok - ferry run: a malformed record fails with its line and column"

# ---- csv.generate to a blob, csv.parse of the blob ----
cat >roundtrip.json <<'JSON'
{"name": "csv-roundtrip", "version": "1.0.0",
 "flows": [{"name": "main", "trigger": {"type": "manual"},
   "steps": [
     {"name": "gen", "action": "csv.generate",
      "input": {"rows": "{{ trigger.body }}", "output": "blob"}},
     {"name": "parse", "action": "csv.parse",
      "input": {"blob": "{{ steps.gen.output.blob }}"}},
     {"name": "result", "jq": "{size: .gen.blob.size, rows: .parse.rows}",
      "input": {"gen": "{{ steps.gen.output }}", "parse": "{{ steps.parse.output }}"}}]}]}
JSON
run run roundtrip.json --components-dir comps --db runs.db --quiet \
    --input '[{"id": "1", "note": "multi\nline, \"quoted\""}, {"id": "2", "note": "=SUM(A1)"}]'
[[ $rc -eq 0 ]] || fail "run roundtrip.json: exit $rc"
json_check 'v["rows"] == [{"id": "1", "note": "multi\nline, \"quoted\""}, {"id": "2", "note": "'"'"'=SUM(A1)"}]'
json_check 'v["size"] == len("id,note\r\n1,\"multi\nline, \"\"quoted\"\"\"\r\n2,'"'"'=SUM(A1)\r\n")'
echo "ok - ferry run: csv.generate to a blob, parsed back"
