#!/usr/bin/env bash
# Where the time of `ferry serve` goes, for the "What dominates" part of
# docs/bench.md: starts a host as serve_bench.py does (127.0.0.1, port 0, a
# temporary directory, the benchmark integration deployed and warmed up),
# drives it with serve_load at a fixed rate, and looks at it with perf or
# strace while the load runs. Not part of `bench/run`; needs perf and strace.
#
# usage: bench/serve/profile.sh [--build-dir DIR] [--rate R] [--seconds S]
#                               [--variant V] [--keep] WHAT
#   WHAT: cpu       perf record -a -g: CPU samples by process (host, its
#                   store thread, the zygote, the workers) and the top
#                   symbols of each
#         faults    perf stat and perf record of minor page faults in the
#                   zygote and its workers (perf follows the forks), by call
#                   chain
#         pages     minor page faults of the zygote and of its workers, per
#                   execution, by the region of the zygote's map they fall
#                   in ([heap], [stack], a library's code or data...)
#         host      perf record --call-graph dwarf of the host process
#         syscalls  strace -c -f of the host, per execution
#         fsync     strace -T of the host's fdatasync calls (WAL checkpoints)
#   --rate (300) per second, --seconds (4); --variant as serve_bench.py's
#   (ferry, or mxfast0, lean, bindnow joined with +).
# Output goes to stdout; perf and strace files stay in the temporary
# directory only with --keep.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build-bench
rate=300
secs=4
variant=ferry
keep=0
what=
while [[ $# -gt 0 ]]; do
    case $1 in
    --build-dir) build=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --seconds) secs=$2; shift 2 ;;
    --variant) variant=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    cpu | faults | pages | host | syscalls | fsync) what=$1; shift ;;
    *) echo "profile.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -n $what ]] || { echo "profile.sh: say what: cpu faults pages host syscalls fsync" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-profile-XXXXXX")
host_pid=
cleanup() {
    if [[ -n $host_pid ]] && kill -0 "$host_pid" 2>/dev/null; then
        kill "$host_pid" 2>/dev/null || true
        wait "$host_pid" 2>/dev/null || true
    fi
    if [[ $keep == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT INT TERM

exe=$build/ferry
export -n SERVE_BENCH_ZYGOTE LD_BIND_NOW 2>/dev/null || true
zyg=()
IFS=+ read -r -a changes <<<"$variant"
for c in "${changes[@]}"; do
    case $c in
    ferry) ;;
    mxfast0 | lean) zyg+=("$c"); exe=$build/bench/serve_ferry_exp ;;
    bindnow) export LD_BIND_NOW=1 ;;
    *) echo "profile.sh: unknown variant part $c" >&2; exit 2 ;;
    esac
done
if [[ ${#zyg[@]} -gt 0 ]]; then
    SERVE_BENCH_ZYGOTE=$(IFS=,; echo "${zyg[*]}")
    export SERVE_BENCH_ZYGOTE
fi

token=profile-$$
mkdir -p "$tmp/components" "$tmp/dep"
echo '{"limits": {"concurrency": 8}}' >"$tmp/ferry.json"
"$exe" serve --listen 127.0.0.1:0 --port-file "$tmp/port" --db "$tmp/f.db" \
    --deployments "$tmp/dep" --api-token "$token" --config "$tmp/ferry.json" \
    --components-dir "$tmp/components" 2>"$tmp/host.log" &
host_pid=$!
for _ in $(seq 100); do
    [[ -s $tmp/port ]] && curl -fs "http://127.0.0.1:$(cat "$tmp/port")/readyz" >/dev/null && break
    sleep 0.05
done
port=$(cat "$tmp/port")
zygote_pid=$(cat /proc/"$host_pid"/task/*/children | tr -s ' ' '\n' | head -1)
python3 - "$port" "$token" "$root/bench/serve" <<'EOF'
import json, sys, urllib.request
port, token, d = sys.argv[1:]
doc = {"integration": json.load(open(d + "/bench-serve.integration.json")),
       "instance": json.load(open(d + "/bench-serve.instance.json"))}
req = urllib.request.Request("http://127.0.0.1:%s/api/v1/instances" % port,
                             data=json.dumps(doc).encode(), method="POST",
                             headers={"Authorization": "Bearer " + token})
urllib.request.urlopen(req).read()
EOF
load() {
    "$build/bench/serve_load" --port "$port" --token "$token" \
        --path /api/v1/instances/bench-1/flows/cheap/executions \
        --rate "$1" --duration "$2" --body '{"n":21}'
}
load 100 1 >/dev/null # the zygote compiles the integration on its first spawn
n=$((rate * secs))
echo "host $host_pid, zygote $zygote_pid; $n executions at $rate/s (variant $variant)"

# Runs "$@" (a profiler) alongside the load; the profiler stops 1 s after it.
profiled() {
    "$@" &
    local p=$!
    sleep 0.3
    load "$rate" "$secs"
    sleep 1
    kill -INT "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

case $what in
cpu)
    profiled perf record -q -a -g -o "$tmp/perf.data" 2>/dev/null
    perf report -i "$tmp/perf.data" --no-children --sort pid -g none --stdio 2>/dev/null |
        awk -v h="$host_pid" -v z="$zygote_pid" '
            /%/ && /:ferry/ { split($2, a, ":"); p = $1; sub("%", "", p)
                if (a[1] == h) host += p; else if (a[1] == z) zyg += p
                else if (a[1] > z) work += p; else thr += p }
            /%/ && !/:ferry/ { p = $1; sub("%", "", p); other += p }
            END { printf "share of all CPU samples: host %.1f%%, host threads %.1f%%, zygote %.1f%%, workers %.1f%%, everything else %.1f%%\n", host, thr, zyg, work, other }'
    for who in host zygote; do
        pid=$host_pid
        [[ $who == zygote ]] && pid=$zygote_pid
        echo "-- $who ($pid), top symbols, self"
        perf report -i "$tmp/perf.data" --no-children --pid "$pid" --sort sym -g none \
            --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15
    done
    # Workers are named like their zygote, and each has a pid of its own,
    # so a per-pid listing rounds every worker's share to nothing: take the
    # zygote's and its workers' samples together by symbol and subtract the
    # zygote's own.
    echo "-- workers (the zygote's children), top symbols, self"
    perf report -i "$tmp/perf.data" --no-children --pid "$zygote_pid" --sort sym -g none \
        --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' >"$tmp/zyg.txt" || true
    perf report -i "$tmp/perf.data" --no-children --comm ferry-zygote --sort sym -g none \
        --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' |
        awk 'NR == FNR { p = $1; sub("%", "", p); $1 = ""; z[$0] = p; next }
             { p = $1; sub("%", "", p); $1 = ""; printf "%6.2f%% %s\n", p - z[$0], $0 }' \
            "$tmp/zyg.txt" - | sort -rn | head -20
    ;;
faults)
    profiled perf stat -e minor-faults,task-clock -p "$zygote_pid" -o "$tmp/stat.txt"
    grep -E 'minor-faults|task-clock' "$tmp/stat.txt" |
        awk -v n="$n" '{ gsub(",", "", $1); printf "%s per execution (zygote + its workers): %.1f\n", $2, $1 / n }'
    profiled perf record -q -e minor-faults -c 1 --call-graph dwarf,8192 -p "$zygote_pid" \
        -o "$tmp/faults.data" 2>/dev/null
    echo "-- minor faults of the zygote and its workers, by function (inclusive)"
    perf report -i "$tmp/faults.data" --children --sort sym -g none --stdio 2>/dev/null |
        grep -v '^#' | grep -v '^$' | grep -v '0x0000\|0xffff' | head -30
    ;;
pages)
    cp /proc/"$zygote_pid"/maps "$tmp/maps.txt"
    profiled perf record -q -e minor-faults -c 1 -d -p "$zygote_pid" -o "$tmp/pages.data" 2>/dev/null
    cat >"$tmp/pages.py" <<'EOF'
import bisect, collections, sys
maps, zyg, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
regions = []
for line in open(maps):
    f = line.split()
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    name = f[5].rsplit("/", 1)[-1] if len(f) > 5 else "anonymous"
    kind = "code" if "x" in f[1] else "data" if "w" in f[1] else "read-only"
    regions.append((lo, hi, "%s %s" % (name, kind)))
regions.sort()
starts = [r[0] for r in regions]
count = {"zygote": collections.Counter(), "workers": collections.Counter()}
for line in sys.stdin:
    f = line.split()
    if len(f) < 2:
        continue
    who = "zygote" if int(f[0]) == zyg else "workers"
    a = int(f[1], 16)
    i = bisect.bisect_right(starts, a) - 1
    what = regions[i][2] if i >= 0 and a < regions[i][1] else "not in the zygote's map"
    count[who][what] += 1
for who in ("zygote", "workers"):
    c = count[who]
    print("-- %s: %.1f minor faults per execution" % (who, sum(c.values()) / n))
    for what, k in c.most_common(15):
        print("%8.2f  %s" % (k / n, what))
EOF
    perf script -i "$tmp/pages.data" -F pid,addr 2>/dev/null |
        python3 "$tmp/pages.py" "$tmp/maps.txt" "$zygote_pid" "$n"
    ;;
host)
    profiled perf record -q --call-graph dwarf,16384 -p "$host_pid" -o "$tmp/host.data" 2>/dev/null
    perf report -i "$tmp/host.data" --children --sort sym -g none --stdio --percent-limit 2 \
        2>/dev/null | grep -v '^#' | grep -v '^$' | grep -v '0x0000\|0xffff' | head -60
    ;;
syscalls)
    profiled strace -c -f -p "$host_pid" -o "$tmp/strace.txt"
    awk -v n="$n" 'NR <= 2 { print; next } /^-/ { print; next }
        { printf "%s   %.2f per execution\n", $0, $4 / n }' "$tmp/strace.txt"
    ;;
fsync)
    profiled strace -f -tt -T -e trace=fdatasync,fsync -p "$host_pid" -o "$tmp/strace.txt"
    grep -E 'fdatasync|fsync' "$tmp/strace.txt" | head -40
    ;;
esac
