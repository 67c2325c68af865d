#!/usr/bin/env bash
# Runs the ferry binary like a user would and checks exit statuses, stdout
# and stderr. Everything happens in a temporary directory, with --db in it
# and a components directory holding one component, "tc" (the flow tests'
# fixture, which declares the connection type tc.key).
#
# usage: cli.sh PATH/TO/ferry PATH/TO/tc.so
set -euo pipefail

ferry=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[[ -x $ferry ]] || { echo "FAIL - $1 is not executable" >&2; exit 1; }
[[ -f ${2:-} ]] || { echo "FAIL - no component at '${2:-}'" >&2; exit 1; }
command -v python3 >/dev/null || { echo "FAIL - python3 is needed" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/comps"
cp "$2" "$tmp/comps/tc.so"
cd "$tmp"
export FERRY_COMPONENTS_DIR=$tmp/comps
unset FERRY_DB
db=$tmp/runs.db

checks=0
ok() {
    checks=$((checks + 1))
    echo "ok - $*"
}
fail() {
    echo "FAIL - $*" >&2
    if [[ -f out ]]; then
        echo "--- stdout" >&2
        cat out >&2
    fi
    if [[ -f err ]]; then
        echo "--- stderr" >&2
        cat err >&2
    fi
    exit 1
}
# Runs ferry with stdout in ./out, stderr in ./err; sets $rc.
run() {
    set +e
    "$ferry" "$@" >out 2>err
    rc=$?
    set -e
}
expect_rc() {
    [[ $rc -eq $1 ]] || fail "ferry $2: exit $rc, expected $1"
}
# grep -F for a fixed string in a file.
has() {
    grep -qF -- "$2" "$1" || fail "$1 does not contain: $2"
}
# Checks stdout with a python expression over the parsed JSON, `v`.
json_check() {
    python3 -c 'import json,sys; v = json.load(sys.stdin); sys.exit(0 if eval(sys.argv[1]) else 1)' \
        "$1" <out || fail "stdout is not JSON with $1"
}

# ---- help ----
for cmd in "--help" "-h" "help" "run --help" "validate --help" \
    "components --help" "components list --help" \
    "components describe --help" "executions --help" \
    "executions list --help" "executions show --help" "version"; do
    # shellcheck disable=SC2086
    run $cmd
    expect_rc 0 "$cmd"
    [[ -s out ]] || fail "ferry $cmd printed nothing on stdout"
done
ok "every command's --help exits 0"
has out "ferry"
run
expect_rc 2 "(no command)"
has err "usage: ferry COMMAND"
run frobnicate
expect_rc 2 frobnicate
has err "unknown command 'frobnicate'"
ok "no command and an unknown one exit 2"

# ---- definitions ----
cat >good.json <<'JSON'
{
  "name": "calc",
  "config": {"factor": {"type": "integer", "default": 21}},
  "flows": [{
    "name": "double",
    "steps": [
      {"name": "mul", "jq": ".n * .f",
       "input": {"n": "{{ trigger.body.n }}", "f": "{{ config.factor }}"}},
      {"name": "say", "action": "core.log",
       "input": {"message": "got {{ steps.mul.output }}"}},
      {"name": "out", "action": "core.set",
       "input": {"value": {"answer": "{{ steps.mul.output }}",
                           "items": ["{{ trigger.body.n }}", "x"]}}}
    ]
  }]
}
JSON
cat >bad.json <<'JSON'
{
  "name": "broken",
  "flows": [{
    "name": "f",
    "steps": [
      {"name": "a", "action": "nope.run"},
      {"name": "b", "action": "core.set", "input": {"value": "{{ steps.zz.output }}"}}
    ]
  }]
}
JSON
cat >fails.json <<'JSON'
{
  "name": "fails",
  "flows": [{
    "name": "f",
    "steps": [
      {"name": "first", "action": "core.set", "input": {"value": 1}},
      {"name": "boom", "action": "core.fail",
       "input": {"message": "it broke", "code": "REMOTE"}},
      {"name": "never", "action": "core.set", "input": {"value": 2}}
    ]
  }]
}
JSON
cat >two.json <<'JSON'
{"name": "two", "flows": [
  {"name": "a", "steps": [{"name": "s", "action": "core.set", "input": {"value": "a"}}]},
  {"name": "b", "steps": [{"name": "s", "action": "core.set", "input": {"value": "b"}}]}]}
JSON
cat >conn.json <<'JSON'
{"name": "conn", "connections": {"target": {"type": "tc.key"}},
 "flows": [{"name": "f", "steps": [
   {"name": "c", "action": "tc.connection", "connection": "target"},
   {"name": "out", "action": "core.set", "input": {"value": {
     "fields": "{{ steps.c.output.fields }}", "ref": "{{ connections.target }}"}}}]}]}
JSON
cat >conn-instance.json <<'JSON'
{"integration": "conn", "name": "acme", "connections": {"target": {"fields": {"key": "k1"}}}}
JSON
cat >conn-bad-instance.json <<'JSON'
{"integration": "conn", "name": "acme", "connections": {"target": {"fields": {"region": "us"}}}}
JSON
cat >instance.json <<'JSON'
{"integration": "calc", "name": "acme", "config": {"factor": 10}}
JSON
cat >bad-instance.json <<'JSON'
{"integration": "calc", "name": "acme", "config": {"factor": "ten"}}
JSON

# ---- run ----
run run missing.json --db "$db"
expect_rc 2 "run missing.json"
has err "missing.json"
[[ ! -e $db ]] || fail "run of a missing file created the database"
ok "run: a missing file exits 2"

run run "$tmp/bad.json" --db "$db"
expect_rc 2 "run bad.json"
has err "$tmp/bad.json: flows[0].steps[0].action: unknown action 'nope.run'"
has err "$tmp/bad.json: flows[0].steps[1].input.value: no step named 'zz'"
[[ $(wc -l <err) -eq 2 ]] || fail "run bad.json: expected 2 lines on stderr"
[[ ! -s out ]] || fail "run bad.json printed on stdout"
[[ ! -e $db ]] || fail "run of an invalid definition created the database"
ok "run: an invalid definition exits 2 with FILE: PATH: message lines"

run run fails.json --db "$db"
expect_rc 1 "run fails.json"
has err "failed at step boom: FERRY_EREMOTE: it broke"
[[ ! -s out ]] || fail "run fails.json printed on stdout"
ok "run: a failing flow exits 1 naming the step"

run run good.json --db "$db" --input '{"n": 2}'
expect_rc 0 "run good.json"
json_check 'v == {"answer": 42, "items": [2, "x"]}'
has err "got 42"
has err "succeeded"
ok "run: a flow's output is JSON on stdout"

echo '{"n": 5}' >input.json
run run good.json --db "$db" --input @input.json --instance instance.json --quiet
expect_rc 0 "run --input @file --instance"
json_check 'v["answer"] == 50'
[[ ! -s err ]] || fail "run --quiet wrote on stderr"
ok "run: --input @FILE, --instance and --quiet"

run run good.json --db "$db" --input '{"n": '
expect_rc 2 "run --input (invalid JSON)"
has err "--input: invalid JSON"
run run good.json --db "$db" --instance bad-instance.json
expect_rc 2 "run --instance bad-instance.json"
has err "bad-instance.json: config.factor: 'factor' must be integer, got string"
run run two.json --db "$db"
expect_rc 2 "run two.json"
has err "has 2 flows; choose one with --flow"
run run two.json --db "$db" --flow c
expect_rc 2 "run two.json --flow c"
has err "has no flow 'c'"
run run two.json --db "$db" --flow b
expect_rc 0 "run two.json --flow b"
json_check 'v == "b"'
run run good.json extra.json
expect_rc 2 "run with two files"
run run good.json --max-recorded-bytes 3
expect_rc 2 "run --max-recorded-bytes 3"
ok "run: bad input, bad instance, --flow"

run run conn.json --db "$db" --instance conn-instance.json
expect_rc 0 "run conn.json --instance conn-instance.json"
json_check 'v == {"fields": {"key": "k1", "region": "eu"}, "ref": {"name": "target", "type": "tc.key"}}'
run run conn.json --db "$db"
expect_rc 1 "run conn.json (no credentials)"
has err "failed at step c: FERRY_ECONFIG: connection 'target' has no credentials in instance 'default'"
ok "run: a component's action with a connection from the instance"

# ---- known secrets are kept out of what ferry run prints and records ----
cat >secret.json <<'JSON'
{"name": "sec", "config": {"api_secret": {"type": "string", "secret": true},
                           "region": {"type": "string"}},
 "flows": [{"name": "f", "steps": [
   {"name": "say", "action": "core.log",
    "input": {"message": "calling {{ config.region }} with {{ config.api_secret }}"}},
   {"name": "out", "action": "core.set",
    "input": {"value": {"s": "{{ config.api_secret }}", "r": "{{ config.region }}"}}},
   {"name": "boom", "action": "core.fail",
    "input": {"message": "refused {{ config.api_secret }}", "code": "REMOTE"}}]}]}
JSON
cat >secret-instance.json <<'JSON'
{"integration": "sec", "name": "acme",
 "config": {"api_secret": "s3cr3t-value-1234", "region": "eu-central"}}
JSON
sdb=$tmp/secret.db
run run secret.json --db "$sdb" --instance secret-instance.json
expect_rc 1 "run secret.json"
has err "calling eu-central with [redacted]"
has err "refused [redacted]"
! grep -qF "s3cr3t-value-1234" out err || fail "the secret config value was printed"
sid=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT id FROM executions").fetchone()[0])' "$sdb")
run executions show --db "$sdb" "$sid"
expect_rc 0 "executions show"
has out "[redacted]"
has out "eu-central"
! grep -qF "s3cr3t-value-1234" out || fail "the secret config value was recorded"
python3 -c 'import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA wal_checkpoint(TRUNCATE)")' "$sdb"
! grep -qaF "s3cr3t-value-1234" "$sdb" || fail "the secret config value is in the database file"
ok "run: a secret config value is [redacted] in what is printed and recorded"

# ---- validate ----
run validate good.json bad.json
expect_rc 2 "validate good.json bad.json"
has err "bad.json: flows[0].steps[0].action: unknown action 'nope.run'"
has err "bad.json: flows[0].steps[1].input.value: no step named 'zz'"
if grep -q '^good.json' err out; then
    fail "validate reported something about good.json"
fi
[[ $(wc -l <err) -eq 2 ]] || fail "validate: expected only bad.json's 2 errors"
ok "validate: only the invalid file's errors, exit 2"

printf '%s\n' '{"name": "nl", "bad\nkey": 1, "flows": [{"name": "f",' \
    '"steps": [{"name": "s", "action": "core.set", "input": {"value": 1}}]}]}' >nl.json
run validate nl.json
expect_rc 2 "validate nl.json"
has err 'nl.json: bad\nkey: unknown field'
[[ $(wc -l <err) -eq 1 ]] || fail "validate nl.json: a key's newline split the line"
ok "validate: a key holding a newline stays on one line"

run validate good.json instance.json
expect_rc 0 "validate good.json instance.json"
has out "good.json: valid"
has out "instance.json: valid"
run validate good.json bad-instance.json
expect_rc 2 "validate good.json bad-instance.json"
has err "bad-instance.json: config.factor:"
run validate conn.json conn-bad-instance.json
expect_rc 2 "validate conn.json conn-bad-instance.json"
has err "conn-bad-instance.json: connections.target.fields: missing required field 'key' (string) of connection type 'tc.key'"
run validate instance.json
expect_rc 2 "validate instance.json (alone)"
has err "integration 'calc' is not among the files given"
run validate
expect_rc 2 "validate (no file)"
ok "validate: instances against their integration"

# ---- executions ----
run executions list --db "$db" --json
expect_rc 0 "executions list --json"
json_check 'len(v) == 6'
json_check '[e["flow"] for e in v] == ["f", "f", "b", "double", "double", "f"]'
json_check '[e["integration"] for e in v] == ["conn", "conn", "two", "calc", "calc", "fails"]'
json_check '[e["instance"] for e in v] == ["default", "acme", "default", "acme", "default", "default"]'
json_check '[e["status"] for e in v] == ["failed", "succeeded", "succeeded", "succeeded", "succeeded", "failed"]'
failed_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])' <out)
ok "executions list --json shows the runs"

run executions list --db "$db"
expect_rc 0 "executions list"
has out "$failed_id"
run executions list --db "$db" --status failed --json
expect_rc 0 "executions list --status failed"
json_check 'len(v) == 2 and v[1]["error_code"] == "FERRY_EREMOTE"'
run executions show "$failed_id" --db "$db" --json
expect_rc 0 "executions show --json"
json_check 'v["error_step"] == "boom" and [s["path"] for s in v["steps"]] == ["first", "boom"]'
run executions show ex_nope --db "$db"
[[ $rc -ne 0 ]] || fail "executions show of an unknown id exits 0"
run executions list --db "$tmp/none.db"
[[ $rc -ne 0 ]] || fail "executions list of a missing database exits 0"
[[ ! -e $tmp/none.db ]] || fail "executions list created a database"
ok "executions list and show"

# ---- components ----
run components list
expect_rc 0 "components list"
has out "core"
has out "built-in"
has out "$tmp/comps/tc.so"
run components list --json
expect_rc 0 "components list --json"
json_check '[c["name"] for c in v["components"]] == ["core", "tc"] and v["refused"] == []'
run components describe core
expect_rc 0 "components describe core"
has out "core.fail"
run components describe tc
expect_rc 0 "components describe tc"
has out "tc.key"
run components describe nope
[[ $rc -ne 0 ]] || fail "components describe nope exits 0"
ok "components list and describe"

# ---- schedules are checked when a definition is validated ----
cat >"$tmp/sched.json" <<'JSON'
{"name": "s", "flows": [{"name": "tick",
  "trigger": {"type": "schedule", "cron": "0 7 * * mon-fry", "timezone": "America/Chicago"},
  "steps": [{"name": "a", "action": "core.set", "input": {"value": 1}}]}]}
JSON
run validate "$tmp/sched.json"
expect_rc 2 "validate with a bad cron"
has err "flows[0].trigger.cron"
has err "fry"
sed -i 's/mon-fry/mon-fri/; s|America/Chicago|Mars/Olympus_Mons|' "$tmp/sched.json"
run validate "$tmp/sched.json"
expect_rc 2 "validate with an unknown zone"
has err "flows[0].trigger.timezone"
sed -i 's|Mars/Olympus_Mons|America/Chicago|' "$tmp/sched.json"
run validate "$tmp/sched.json"
expect_rc 0 "validate a good schedule"
ok "schedule triggers are validated"

echo "# $checks checks passed"
