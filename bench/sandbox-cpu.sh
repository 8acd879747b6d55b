#!/usr/bin/env bash
# bench/sandbox-cpu.sh: what [listener.sandbox] mode = "enforce" costs per
# request in CPU time, the echo plugin in fork and thread mode with and
# without the sandbox, a new connection per request. CPU time (user +
# system of the worker and its reaped request children, from
# /proc/PID/stat) depends less on other load on the machine than req/s
# does; the seccomp filter and Landlock's checks run in the worker's and
# children's system time, so they are counted. The reporter process is
# counted only when it exits (after the run): the echo plugin makes no
# call it would be told of.
#
# Promises: loopback only; every run is bounded; every process started here
# is killed by its pid on exit and the temp folder removed.
#
# usage: bench/sandbox-cpu.sh [-d SECONDS] [-r ROUNDS] [-c CLIENTS]
#   defaults: 3 s per run, 3 rounds, 8 clients, 64-byte echo
#   SOCKHOST_BENCH_PORT: first of the loopback ports used (default 27400)
set -euo pipefail

DUR=3 ROUNDS=3 CONC=8
BASE=${SOCKHOST_BENCH_PORT:-27400}
while [ $# -gt 0 ]; do
    case $1 in
    -d) DUR=$2; shift 2 ;;
    -r) ROUNDS=$2; shift 2 ;;
    -c) CONC=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "sandbox-cpu.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cargo build --release --workspace --quiet
OUT=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")/release
WORK=$(mktemp -d /tmp/sockhost-sbcpu.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

{
    printf '[daemon]\nplugin_dir = "%s"\ncontrol_socket = ""\n' "$OUT"
    for spec in fork:off:1 fork:sb:2 thread:off:3 thread:sb:4; do
        IFS=: read -r mixin box n <<<"$spec"
        printf '[[listener]]\nname = "%s-%s"\nfamily = "inet"\ntype = "stream"\n' "$mixin" "$box"
        printf 'address = "127.0.0.1:%s"\nmixin = "%s"\nhandler = "libsockhost_echo.so"\n' "$((BASE + n))" "$mixin"
        if [ "$box" = sb ]; then
            printf '[listener.sandbox]\nmode = "enforce"\nnetwork = "none"\n'
        fi
    done
} >"$WORK/sockhost.toml"
SOCKHOST_LOG=warn "$OUT/sockhostd" -c "$WORK/sockhost.toml" --log stderr 2>"$WORK/sockhostd.log" &
PIDS+=($!)
sleep 2

# pid_of COMM: the process named COMM (sockhostd names workers shd:LISTENER).
pid_of() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = "$1" ] && { basename "$p"; return; }
    done
}
# cpu ticks of PID and its reaped children
ticks_of() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }

measure() { # label pid port
    local c0 c1 out
    c0=$(ticks_of "$2")
    out=$("$OUT/sockhost-bench" load -t "tcp:127.0.0.1:$3" -m conn -c "$CONC" -s 64 -d "$DUR" --tsv 2>/dev/null)
    sleep 0.5 # let the last children be reaped
    c1=$(ticks_of "$2")
    python3 - "$1" "$(cut -f1 <<<"$out")" "$DUR" "$c0" "$c1" "$(getconf CLK_TCK)" "$WORK/cpu.tsv" <<'PY'
import sys
label, rps, dur, c0, c1, hz, tsv = sys.argv[1:]
n = max(float(rps) * float(dur), 1)
cpu = (float(c1) - float(c0)) / float(hz) / n * 1e6
print(f"| {label} | {float(rps):,.0f} | {cpu:,.1f} |")
with open(tsv, "a") as f:
    f.write(f"{label}\t{cpu}\n")
PY
}

echo "\`bench/sandbox-cpu.sh -d $DUR -r $ROUNDS -c $CONC\` on $(nproc) cores, $(date -u +%Y-%m-%d), load average before $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| listener | req/s | worker CPU µs per request |"
echo "| --- | ---: | ---: |"
for r in $(seq "$ROUNDS"); do
    # Alternate the order so neither side always runs first.
    if [ $((r % 2)) -eq 1 ]; then order="off sb"; else order="sb off"; fi
    for mixin in fork thread; do
        for box in $order; do
            n=$([ "$mixin" = fork ] && echo 1 || echo 3)
            [ "$box" = sb ] && n=$((n + 1))
            measure "echo $mixin, sandbox $([ "$box" = sb ] && echo enforce || echo off)" \
                "$(pid_of "shd:$mixin-$box")" "$((BASE + n))"
        done
    done
done
python3 - "$WORK/cpu.tsv" <<'PY'
import statistics
import sys
rows = {}
for line in open(sys.argv[1]):
    label, us = line.rstrip("\n").split("\t")
    rows.setdefault(label, []).append(float(us))
med = {k: statistics.median(v) for k, v in rows.items()}
print()
for m in ("fork", "thread"):
    off, sb = med[f"echo {m}, sandbox off"], med[f"echo {m}, sandbox enforce"]
    print(f"{m}: median CPU µs per request {off:.1f} off, {sb:.1f} enforce: {sb / off:.3f}x.")
PY
echo "load average after $(cut -d' ' -f1-3 /proc/loadavg)"
