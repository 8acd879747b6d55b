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
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
bench_args "$@"
cd "$ROOT"
cargo build --release --workspace --quiet
bench_setup sbcpu

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

DAEMON=${PIDS[0]}
BENCH_ROW='| {label} | {rps:,.0f} | {cpu:,.1f} |'

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
            bench_measure "echo $mixin, sandbox $([ "$box" = sb ] && echo enforce || echo off)" \
                "$(pid_of "$DAEMON" "shd:$mixin-$box")" "tcp:127.0.0.1:$((BASE + n))"
        done
    done
done
python3 - "$WORK/cpu.tsv" <<'PY'
import statistics
import sys
rows = {}
for line in open(sys.argv[1]):
    label, _, us, _, _ = line.rstrip("\n").split("\t")
    rows.setdefault(label, []).append(float(us))
med = {k: statistics.median(v) for k, v in rows.items()}
print()
for m in ("fork", "thread"):
    off, sb = med[f"echo {m}, sandbox off"], med[f"echo {m}, sandbox enforce"]
    print(f"{m}: median CPU µs per request {off:.1f} off, {sb:.1f} enforce: {sb / off:.3f}x.")
PY
echo "load average after $(cut -d' ' -f1-3 /proc/loadavg)"
