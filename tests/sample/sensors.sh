#!/usr/bin/env bash
# The samples as a component developer and an integration builder use them:
#   1. install the SDK (and ferry) from this build into a temporary prefix,
#      then move the prefix, so nothing can depend on where it was built;
#   2. build samples/components/units out of tree with find_package(FerrySDK),
#      and once more as a single cc command with pkg-config's flags;
#   3. run samples/sensors with the installed ferry and check its result
#      against values computed here from readings.json, then check what
#      `ferry executions list` and `ferry components describe` report.
#
# usage: sensors.sh SOURCE_DIR BUILD_DIR
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)

checks=0
ok() {
    checks=$((checks + 1))
    echo "ok - $*"
}
fail() {
    echo "FAIL - $*" >&2
    exit 1
}
# Runs a command with its output kept in a log that is shown on failure.
quiet() {
    local log=$tmp/last.log
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        fail "command failed: $*"
    fi
}

for tool in cmake pkg-config cc nm jq awk; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (see scripts/quickstart)"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. Install, then relocate.
quiet cmake --install "$build" --prefix "$tmp/staging"
mv "$tmp/staging" "$tmp/sdk"
prefix=$tmp/sdk
for f in include/ferry/ferry.h lib/pkgconfig/ferry-sdk.pc \
    lib/cmake/FerrySDK/FerrySDKConfig.cmake \
    lib/cmake/FerrySDK/FerrySDKConfigVersion.cmake \
    lib/cmake/FerrySDK/FerryComponent.cmake bin/ferry; do
    [[ -f $prefix/$f ]] || fail "install did not create $f"
done
ferry=$prefix/bin/ferry
ok "SDK and ferry installed into a prefix that was then moved"

# Exactly one dynamic symbol: the entry function.
check_exports() {
    local exported
    exported=$(nm -D --defined-only "$1" | awk '$2 ~ /^[TDBRVW]$/ {print $3}')
    [[ $exported == ferry_component_entry ]] ||
        fail "$1 exports: $(echo "$exported" | tr '\n' ' ')"
}

# 2a. Out of tree with the CMake package.
components=$tmp/components
quiet cmake -S "$src/samples/components/units" -B "$tmp/units-build" \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DFERRY_COMPONENT_OUTPUT_DIRECTORY="$components"
found=$(sed -n 's/^FerrySDK_DIR:PATH=//p' "$tmp/units-build/CMakeCache.txt")
[[ $found == "$prefix/lib/cmake/FerrySDK" ]] ||
    fail "find_package(FerrySDK) used '$found', not the installed SDK"
quiet cmake --build "$tmp/units-build" -j2
[[ -f $components/units.so ]] || fail "units.so is not in $components"
check_exports "$components/units.so"
ok "units built out of tree with find_package(FerrySDK)"

# 2b. One cc command with pkg-config.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cflags=$(pkg-config --cflags ferry-sdk) || fail "pkg-config --cflags ferry-sdk"
cflags=${cflags%"${cflags##*[![:space:]]}"}
[[ -f $(pkg-config --variable=includedir ferry-sdk)/ferry/ferry.h ]] ||
    fail "pkg-config's includedir has no ferry/ferry.h"
[[ -n $(pkg-config --variable=componentdir ferry-sdk) ]] ||
    fail "ferry-sdk.pc has no componentdir"
mkdir "$tmp/pc"
# shellcheck disable=SC2046,SC2086 # the flags are meant to split into words
quiet cc $(pkg-config --variable=component_cflags ferry-sdk) $cflags \
    -Wall -Wextra -Werror -o "$tmp/pc/units.so" \
    "$src/samples/components/units/units.c" \
    $(pkg-config --variable=component_ldflags ferry-sdk) \
    $(pkg-config --libs ferry-sdk) -lm
check_exports "$tmp/pc/units.so"
ok "units built with one cc command and pkg-config ferry-sdk ($cflags)"

# 3. The sensor sample. The expected values come from readings.json (one
# record per line) by text, not through ferry: the first reading on the
# quarter hour, its Celsius value in tenths, and Fahrenheit rounded half
# away from zero to one decimal in integer arithmetic.
read -r expect_count first_ts first_c < <(awk '
    match($0, /"timestamp": "[^"]*"/) {
        ts = substr($0, RSTART + 14, RLENGTH - 15)
        if (ts !~ /:(00|15|30|45):00$/) next
        n++
        if (n == 1) {
            match($0, /"temp_c": -?[0-9]+\.[0-9][,}]/)
            c = substr($0, RSTART + 10, RLENGTH - 11)
            first_ts = ts; first_c = c
        }
    }
    END { print n, first_ts, first_c }' "$src/samples/sensors/readings.json")
[[ $expect_count == 96 ]] || fail "readings.json has $expect_count quarter-hour readings, not 96"
[[ $first_c =~ ^-?[0-9]+\.[0-9]$ ]] || fail "cannot read the first temp_c from readings.json"
expect_f=$(awk -v c="$first_c" 'BEGIN {
    neg = c ~ /^-/; sub(/^-/, "", c); split(c, p, ".")
    t = p[1] * 10 + p[2]; if (neg) t = -t
    h = 18 * t + 3200                      # Fahrenheit in hundredths
    r = h >= 0 ? int((h + 5) / 10) : -int((-h + 5) / 10)
    s = r < 0 ? "-" : ""; if (r < 0) r = -r
    printf "%s%d.%d\n", s, int(r / 10), r % 10 }')

out=$tmp/out.json
if ! (cd "$src" && "$ferry" run samples/sensors/integration.json \
    --instance samples/sensors/instance.json \
    --input @samples/sensors/readings.json \
    --components-dir "$components" --db "$tmp/ferry.db") >"$out" 2>"$tmp/run.err"; then
    cat "$tmp/run.err" >&2
    fail "ferry run exited non-zero"
fi
jq -e . "$out" >/dev/null 2>&1 || {
    head -c 2000 "$out" >&2
    fail "ferry run did not print JSON"
}
ok "ferry run samples/sensors/integration.json exited 0"

# ferry run prints the flow's output; accept it wrapped as {"output": ...}.
result=$tmp/result.json
jq 'if type == "object" and has("readings") then . else .output end' "$out" >"$result"
jq -e '.count == 96' "$result" >/dev/null ||
    fail "count is $(jq -c .count "$result"), expected 96"
jq -e '.readings | length == 96' "$result" >/dev/null ||
    fail "readings has $(jq '.readings | length' "$result") elements, expected 96"
jq -e '.site == "Headquarters"' "$result" >/dev/null ||
    fail "site is $(jq -c .site "$result"), expected the instance's \"Headquarters\""
jq -e 'all(.readings[]; (.timestamp | test(":(00|15|30|45):00$"))
                        and (.temp_f | type == "number"))' "$result" >/dev/null ||
    fail "readings are not all quarter-hour readings with a numeric temp_f"
ok "output has site Headquarters and 96 quarter-hour readings"

jq -e --arg ts "$first_ts" --argjson f "$expect_f" \
    '.readings[0].timestamp == $ts and .readings[0].temp_f == $f' "$result" >/dev/null ||
    fail "first reading is $(jq -c '.readings[0]' "$result"), expected $first_ts with temp_f $expect_f ($first_c C)"
ok "first reading $first_ts: $first_c C is $expect_f F"

list=$("$ferry" executions list --db "$tmp/ferry.db") ||
    fail "ferry executions list exited non-zero"
grep -q succeeded <<<"$list" || {
    echo "$list" >&2
    fail "ferry executions list does not show the execution as succeeded"
}
"$ferry" executions list --db "$tmp/ferry.db" --json | jq -e '
    length == 1 and .[0].status == "succeeded"
    and .[0].integration == "sensor-export" and .[0].instance == "hq"
    and .[0].flow == "export"' >/dev/null ||
    fail "ferry executions list --json does not show one succeeded execution of sensor-export/hq/export"
ok "ferry executions list shows the execution succeeded"

desc=$("$ferry" components describe units --components-dir "$components") ||
    fail "ferry components describe units exited non-zero"
for a in units.convert units.c_to_f; do
    grep -q "$a" <<<"$desc" || {
        echo "$desc" >&2
        fail "ferry components describe units does not list $a"
    }
done
ok "ferry components describe units lists units.convert and units.c_to_f"

echo "sample_sensors: all $checks checks passed"
