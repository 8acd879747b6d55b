#!/usr/bin/env bash
# bench/exec-cpu.sh: what running /bin/cat per connection costs the machine,
# sockhostd's exec plugin (fork and thread mixins) next to tcpserver, xinetd
# and systemd-socket-activate --inetd -a, and the spawn floor (`sockhost-bench
# spawn`: the same program started and reaped, nothing served). Measured so
# that other load on the machine matters less than for req/s: CPU time (user
# + system) of the serving process and of every child it reaped (worker,
# request children and programs; /proc/PID/stat), per request, over a
# closed-loop run of `sockhost-bench load -m conn` without warm-up. The floor's
# CPU is its own process's and its reaped programs' (getrusage of children).
#
# EXEC_ALT=PATH/TO/libsockhost_exec.so adds a second sockhostd fork row served
# by that build of the plugin (to judge a plugin change side by side).
#
# Promises: loopback only; every run is bounded; every process started here
# is killed by its pid on exit and the temp folder removed.
#
# usage: bench/exec-cpu.sh [-d SECONDS] [-r ROUNDS] [-c CLIENTS]
#   defaults: 2 s per run, 3 rounds, 8 clients, 64-byte request
#   SOCKHOST_BENCH_PORT: first of the loopback ports used (default 27500)
set -euo pipefail

DUR=2 ROUNDS=3 CONC=8
BASE=${SOCKHOST_BENCH_PORT:-27500}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
bench_args "$@"
cd "$ROOT"
cargo build --release -p sockhostd -p sockhost-exec -p sockhost-bench --quiet
bench_setup exec-cpu

{
    printf '[daemon]\nplugin_dir = "%s"\n' "$OUT"
    row() { # name mixin port plugin
        printf '[[listener]]\nname = "%s"\nfamily = "inet"\ntype = "stream"\n' "$1"
        printf 'address = "127.0.0.1:%s"\nmixin = "%s"\nhandler = "%s"\n' "$3" "$2" "$4"
        [ "$2" = fork ] && printf 'max_children = 1000\n'
        printf '[listener.config]\ncommand = ["/bin/cat"]\n'
    }
    row xc-fork fork "$((BASE + 1))" "$OUT/libsockhost_exec.so"
    row xc-thread thread "$((BASE + 2))" "$OUT/libsockhost_exec.so"
    if [ -n "${EXEC_ALT:-}" ]; then
        row xc-alt fork "$((BASE + 3))" "$(realpath "$EXEC_ALT")"
    fi
} >"$WORK/sockhost.toml"
SOCKHOST_LOG=warn "$OUT/sockhostd" -c "$WORK/sockhost.toml" --log stderr 2>"$WORK/sockhostd.log" &
PIDS+=($!)
declare -A SERVER=()
if command -v tcpserver >/dev/null; then
    tcpserver -q -H -R -l 0 -b 128 -c 1000 127.0.0.1 "$((BASE + 11))" cat &
    PIDS+=($!) SERVER[tcpserver]=$!
fi
if command -v xinetd >/dev/null; then
    xinetd_cat_config "$((BASE + 12))" >"$WORK/xinetd.conf"
    xinetd -dontfork -f "$WORK/xinetd.conf" -pidfile "$WORK/xinetd.pid" -filelog "$WORK/xinetd.log" &
    PIDS+=($!) SERVER[xinetd]=$!
fi
if command -v systemd-socket-activate >/dev/null; then
    systemd-socket-activate -l "127.0.0.1:$((BASE + 13))" --inetd -a /bin/cat 2>"$WORK/ssa.log" &
    PIDS+=($!) SERVER[ssa]=$!
fi
for _ in $(seq 100); do grep -q " ready: " "$WORK/sockhostd.log" && break; sleep 0.05; done
sleep 1

DAEMON=${PIDS[0]}
# No warm-up: the first connections' programs count too; 0.3 s for the last
# programs to end and be reaped.
BENCH_WARMUP=0 BENCH_SETTLE=0.3
BENCH_ROW='| {label} | {rps:,.0f} | {cpu:,.0f} |'
measure() { bench_measure "$1" "$2" "tcp:127.0.0.1:$3"; } # label pid port

floor() {
    local out
    out=$(python3 - "$BENCH" "$CONC" "$DUR" <<'EOF'
import resource, subprocess, sys
bench, conc, dur = sys.argv[1:]
p = subprocess.run([bench, "spawn", "-p", "/bin/cat", "-c", conc, "-d", dur, "-w", "0", "--tsv"],
                   capture_output=True, text=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(p.stdout.split("\t")[0], r.ru_utime + r.ru_stime)
EOF
)
    bench_record "spawn floor: /bin/cat started and reaped, nothing served" ${out}
}

echo "\`bench/exec-cpu.sh -d $DUR -r $ROUNDS -c $CONC\` on $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M') UTC, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| server | req/s | CPU µs per request |"
echo "| --- | ---: | ---: |"
for r in $(seq "$ROUNDS"); do
    rows=(fork thread alt tcpserver xinetd ssa floor)
    [ $((r % 2)) = 0 ] && rows=(floor ssa xinetd tcpserver alt thread fork)
    for row in "${rows[@]}"; do
        case $row in
        fork) measure "sockhostd exec, fork" "$(pid_of "$DAEMON" shd:xc-fork)" "$((BASE + 1))" ;;
        thread) measure "sockhostd exec, thread" "$(pid_of "$DAEMON" shd:xc-thread)" "$((BASE + 2))" ;;
        alt) if [ -n "${EXEC_ALT:-}" ]; then measure "sockhostd exec, fork (EXEC_ALT)" "$(pid_of "$DAEMON" shd:xc-alt)" "$((BASE + 3))"; fi ;;
        tcpserver) measure "tcpserver cat" "${SERVER[tcpserver]:-}" "$((BASE + 11))" ;;
        xinetd) measure "xinetd cat" "${SERVER[xinetd]:-}" "$((BASE + 12))" ;;
        ssa) measure "systemd-socket-activate --inetd -a cat" "${SERVER[ssa]:-}" "$((BASE + 13))" ;;
        floor) floor ;;
        esac
    done
done
python3 - "$WORK/cpu.tsv" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, rps, us, _, _ = line.rstrip("\n").split("\t")
    rows.setdefault(label, []).append((float(rps), float(us)))
floor = statistics.median(u for _, u in rows[next(k for k in rows if k.startswith("spawn floor"))])
print()
print(f"Medians over {max(len(v) for v in rows.values())} rounds:")
print()
print("| server | req/s | CPU µs per request | CPU / floor's |")
print("| --- | ---: | ---: | ---: |")
for label, v in rows.items():
    rps = statistics.median(r for r, _ in v)
    us = statistics.median(u for _, u in v)
    print(f"| {label} | {rps:,.0f} | {us:,.0f} | {us / floor:.2f}× |")
EOF
