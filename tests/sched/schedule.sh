#!/usr/bin/env bash
# `ferry schedule next` as a user runs it, on the fixture integration
# tests/sched/fixtures/buildings.json: exact lines on stdout, messages on
# stderr, exit statuses. Expected times were worked out with Python's
# zoneinfo (see tests/sched/vectors.py for the policy).
#
# usage: schedule.sh PATH/TO/ferry FIXTURES_DIR
set -euo pipefail

ferry=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[[ -x $ferry ]] || { echo "FAIL - $1 is not executable" >&2; exit 1; }
[[ -d ${2:-} ]] || { echo "FAIL - no fixtures at '${2:-}'" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$2"/*.json "$tmp"
mkdir "$tmp/comps"
cd "$tmp"
export FERRY_COMPONENTS_DIR=$tmp/comps
unset TZDIR

checks=0
ok() {
    checks=$((checks + 1))
    echo "ok - $*"
}
fail() {
    echo "FAIL - $*" >&2
    echo "--- stdout" >&2
    cat out >&2
    echo "--- stderr" >&2
    cat err >&2
    exit 1
}
run() {
    set +e
    "$ferry" "$@" >out 2>err
    rc=$?
    set -e
}
# expect RC STDOUT STDERR -- ARGS...: exact stdout and stderr.
expect() {
    local want_rc=$1 want_out=$2 want_err=$3
    shift 4
    run "$@"
    [[ $rc -eq $want_rc ]] || fail "ferry $*: exit $rc, expected $want_rc"
    [[ $(cat out) == "$want_out" ]] || fail "ferry $*: stdout differs; expected:
$want_out"
    [[ $(cat err) == "$want_err" ]] || fail "ferry $*: stderr differs; expected:
$want_err"
    ok "ferry $*"
}

# The issue's example: 7 AM in Chicago, across the spring change (CST to
# CDT on 2027-03-14).
expect 0 "2027-03-12T07:00:00-06:00 2027-03-12T13:00:00Z
2027-03-13T07:00:00-06:00 2027-03-13T13:00:00Z
2027-03-14T07:00:00-05:00 2027-03-14T12:00:00Z
2027-03-15T07:00:00-05:00 2027-03-15T12:00:00Z" "" -- \
    schedule next buildings.json --flow morning --from 2027-03-12T00:00:00Z \
    --count 4

# The same flow for the Berlin building: its instance's building_tz.
expect 0 "2027-03-27T07:00:00+01:00 2027-03-27T06:00:00Z
2027-03-28T07:00:00+02:00 2027-03-28T05:00:00Z" "" -- \
    schedule next buildings.json --flow morning --instance berlin.json \
    --from 2027-03-27T00:00:00Z --count 2

# 02:30 does not exist on 2027-03-14 in Chicago: once, at 03:00 CDT.
expect 0 "2027-03-13T02:30:00-06:00 2027-03-13T08:30:00Z
2027-03-14T03:00:00-05:00 2027-03-14T08:00:00Z
2027-03-15T02:30:00-05:00 2027-03-15T07:30:00Z" "" -- \
    schedule next buildings.json --flow night --from 2027-03-13T00:00:00-06:00 \
    --count 3

# An interval: multiples of 15 minutes since the epoch, shown in New York.
expect 0 "2027-03-14T03:15:00-04:00 2027-03-14T07:15:00Z
2027-03-14T03:30:00-04:00 2027-03-14T07:30:00Z" "" -- \
    schedule next buildings.json --flow quarter --from 2027-03-14T07:07:00Z -n 2

# Default count (5) and default start (now): five lines, increasing.
run schedule next buildings.json --flow morning
[[ $rc -eq 0 ]] || fail "schedule next without --from: exit $rc"
[[ $(wc -l <out) -eq 5 ]] || fail "schedule next: expected 5 lines"
grep -qvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T07:00:00-0[56]:00 [0-9]{4}-[0-9]{2}-[0-9]{2}T1[23]:00:00Z$' out &&
    fail "schedule next: a line is not LOCAL UTC"
cut -d' ' -f2 out | sort -c || fail "schedule next: times not in order"
ok "ferry schedule next (defaults)"

# Errors.
expect 2 "" "ferry schedule next: flow 'by-hand' is not scheduled: its trigger type is \"manual\", not \"schedule\"" -- \
    schedule next buildings.json --flow by-hand
expect 2 "" "bad-cron.json: flows[0].trigger.cron: day-of-week: '8' is out of range 0-7" -- \
    schedule next bad-cron.json
expect 2 "" "bad-tzconfig.json: flows[0].trigger.timezone_config: 'site_tz' is not a config variable of this integration" -- \
    schedule next bad-tzconfig.json
# Poll triggers are checked by validate as well.
expect 2 "" "bad-poll.json: flows[0].trigger.source: unknown poll source 'ftp.new_files' (\"file.poll\", or a trigger of a loaded component: see \`ferry components describe\`)" -- \
    validate bad-poll.json
expect 2 "" "bad-poll-option.json: flows[0].trigger.options.sort_by: expected \"name\", \"mtime\" or \"size\", with a leading '-' for descending" -- \
    validate bad-poll-option.json
expect 2 "" "mars.json: config.building_tz: unknown time zone 'Mars/Base'" -- \
    schedule next buildings.json --flow morning --instance mars.json
expect 2 "" "ferry schedule next: integration 'buildings' has 4 flows; choose one with --flow" -- \
    schedule next buildings.json
expect 2 "" "ferry schedule next: integration 'buildings' has no flow 'nope'" -- \
    schedule next buildings.json --flow nope
expect 2 "" "ferry schedule next: --from '2027-03-14T03:00:00' is not an ISO 8601 time with an offset (2027-03-14T00:00:00-05:00 or 2027-03-14T05:00:00Z)" -- \
    schedule next buildings.json --flow morning --from 2027-03-14T03:00:00
expect 2 "" "ferry schedule next: --count must be a number from 1 to 100000" -- \
    schedule next buildings.json --flow morning --count 0

run schedule next --help
[[ $rc -eq 0 ]] && grep -q 'timezone_config' out || fail "schedule next --help"
ok "ferry schedule next --help"
run schedule
[[ $rc -eq 2 ]] && grep -q 'usage: ferry schedule next' err || fail "ferry schedule"
ok "ferry schedule (no subcommand)"
run schedule later
[[ $rc -eq 2 ]] && grep -q "unknown subcommand 'later'" err || fail "ferry schedule later"
ok "ferry schedule later"
run --help
grep -q 'schedule next' out || fail "ferry --help does not list schedule"
ok "ferry --help lists schedule"

echo "$checks checks passed"
