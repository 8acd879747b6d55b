#!/usr/bin/env bash
# bench/faults.sh: page faults per request in fork mode, sockhostd's fork
# worker against the bare fork loop, split by process (the worker or the
# loop itself, and its request children) and by the mapping written or run.
#
# After a fork each page that either process writes costs a fault and a
# copy, and each code page a fresh child runs costs a fault: this is the
# measure the fork-mode work in docs/performance.md ("Where the time went") uses.
#
# Promises: loopback only; each run is bounded (DURATION seconds of load
# under `perf record`); every process it starts is killed on exit and its
# temp folder removed. Needs root (or perf_event_paranoid <= 1) and perf
# (Debian: linux-perf, installed when missing and run as root).
#
# usage: bench/faults.sh [-c CLIENTS] [-d SECONDS]   (defaults: 4 clients, 2 s)
set -euo pipefail

CONC=4 DUR=2
while [ $# -gt 0 ]; do
    case "$1" in
    -c) CONC=$2; shift 2 ;;
    -d) DUR=$2; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "faults.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if ! command -v perf >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >&2
    else
        echo "faults.sh: perf is required (Debian: linux-perf)" >&2
        exit 1
    fi
fi
cargo build --release -p sockhostd -p sockhost-bench -p sockhost-echo --quiet
. bench/common.sh
bench_setup faults

PORT=${SOCKHOST_BENCH_PORT:-27300}
echo_listener "$PORT" fork >"$WORK/fork.toml"
SOCKHOST_LOG=warn "$OUT/sockhostd" -c "$WORK/fork.toml" --log stderr 2>"$WORK/sockhostd.log" &
PIDS+=($!)
"$BENCH" bare -l "tcp:127.0.0.1:$((PORT + 1))" -m fork >"$WORK/bare.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do
    grep -q " ready: " "$WORK/sockhostd.log" && grep -q ready "$WORK/bare.log" && break
    sleep 0.05
done
WORKER=$(pgrep -P "${PIDS[0]}" | head -1)
[ -n "$WORKER" ] || { echo "faults.sh: sockhostd did not start:" >&2; cat "$WORK/sockhostd.log" >&2; exit 1; }

# measure NAME PID PORT: faults of PID and its children under load.
measure() {
    cp "/proc/$2/maps" "$WORK/$1.maps"
    perf record -q -e page-faults -c 1 -d -p "$2" -o "$WORK/$1.data" -- sleep "$((DUR + 1))" 2>/dev/null &
    local rec=$!
    sleep 0.1
    "$BENCH" load -t "tcp:127.0.0.1:$3" -m conn -c "$CONC" -d "$DUR" -w 0 >"$WORK/$1.load" 2>&1
    wait "$rec"
    perf script -i "$WORK/$1.data" -F pid,addr,ip 2>/dev/null >"$WORK/$1.txt"
}
measure sockhostd "$WORKER" "$PORT"
measure bare "${PIDS[1]}" "$((PORT + 1))"

python3 - "$WORK" "$WORKER" "${PIDS[1]}" <<'EOF'
import collections, sys

work, pids = sys.argv[1], {"sockhostd": int(sys.argv[2]), "bare": int(sys.argv[3])}

def regions(name):
    out = []
    for line in open(f"{work}/{name}.maps"):
        f = line.split()
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        label = f[5].rsplit("/", 1)[-1] if len(f) > 5 else "anonymous"
        kind = "code" if "x" in f[1] else "data"
        out.append((lo, hi, f"{label} {kind}"))
    return out

print("| server | process | faults/request | where (faults/request) | requests |")
print("| --- | --- | ---: | --- | ---: |")
for name, parent in pids.items():
    maps = regions(name)
    where = lambda a: next((l for lo, hi, l in maps if lo <= a < hi), "other")
    by = {"parent": collections.Counter(), "child": collections.Counter()}
    children = set()
    for line in open(f"{work}/{name}.txt"):
        f = line.split()
        if len(f) < 2:
            continue
        pid, addr = int(f[0]), int(f[1], 16)
        who = "parent" if pid == parent else "child"
        if who == "child":
            children.add(pid)
        by[who][where(addr)] += 1
    n = max(len(children), 1)
    for who, label in (("parent", "the forking process"), ("child", "each request child")):
        total = sum(by[who].values()) / n
        top = ", ".join(f"{k} {v / n:.1f}" for k, v in by[who].most_common(6))
        print(f"| {name} | {label} | {total:.1f} | {top} | {len(children)} |")
EOF
