#!/usr/bin/env bash
# bench/python-cpu.sh: what one request costs the machine, sockhostd's Python
# plugin next to CPython's own servers, measured so that other load on the
# machine matters less than for req/s: CPU time (user + system, of the
# serving process and its reaped children, from /proc/PID/stat) and page
# faults per request, over a closed-loop run of `sockhost-bench load`.
# Each round ends with the fork floor (bench/peers/forkfloor.py): the CPU
# one os.fork() + os._exit(0) of the same interpreter costs; the last lines
# give the medians and the ceiling that floor puts on any server that forks
# the interpreter per request.
#
# Serves bench/peers/pyecho.py's StreamEcho with sockhostd (sync, thread,
# fork) and with CPython's TCPServer, ThreadingTCPServer, ForkingTCPServer.
# Thread mode twice more, like for like: sockhostd's thread worker with
# cpu_affinity = "all" (by default it is kept on one CPU), and
# ThreadingTCPServer kept on one CPU with `taskset -c 0`.
#
# Promises: loopback only; every run is bounded; every process started here
# is killed by its pid on exit and the temp folder removed.
#
# usage: bench/python-cpu.sh [-d SECONDS] [-r ROUNDS] [-c CLIENTS]
#   defaults: 3 s per run, 2 rounds, 8 clients, 64-byte echo
#   SOCKHOST_BENCH_PORT: first of the loopback ports used (default 27300)
set -euo pipefail

DUR=3 ROUNDS=2 CONC=8
BASE=${SOCKHOST_BENCH_PORT:-27300}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
bench_args "$@"
cd "$ROOT"
cargo build --release --workspace --quiet
bench_setup pycpu

{
    printf '[daemon]\nplugin_dir = "%s"\n' "$OUT"
    for spec in sync:sync:1:auto thread:thread:2:auto fork:fork:3:auto tall:thread:4:all; do
        IFS=: read -r name mixin n affinity <<<"$spec"
        printf '[[listener]]\nname = "pc-%s"\nfamily = "inet"\ntype = "stream"\n' "$name"
        printf 'address = "127.0.0.1:%s"\nmixin = "%s"\nhandler = "libsockhost_python.so"\n' "$((BASE + n))" "$mixin"
        printf 'cpu_affinity = "%s"\n' "$affinity"
        printf '[listener.config]\nhandler = "pyecho:StreamEcho"\npath = ["%s/bench/peers"]\n' "$ROOT"
    done
} >"$WORK/sockhost.toml"
SOCKHOST_LOG=warn "$OUT/sockhostd" -c "$WORK/sockhost.toml" --log stderr 2>"$WORK/sockhostd.log" &
PIDS+=($!)
for spec in tcp:11 threading:12 forking:13; do
    IFS=: read -r kind n <<<"$spec"
    python3 bench/peers/pyecho.py "$kind" "$((BASE + n))" >"$WORK/py-$kind.log" 2>&1 &
    PIDS+=($!)
done
taskset -c 0 python3 bench/peers/pyecho.py threading "$((BASE + 14))" >"$WORK/py-threading-one.log" 2>&1 &
PIDS+=($!)
sleep 2

DAEMON=${PIDS[0]}
BENCH_ROW='| {label} | {rps:,.0f} | {cpu:,.0f} | {faults:.0f} | {child_faults:.0f} |'
measure() { bench_measure "$1" "$2" "tcp:127.0.0.1:$3"; } # label pid port

# floor: what forking this interpreter costs with nothing served
# (bench/peers/forkfloor.py), a row of its own.
floor() {
    local us
    us=$(python3 bench/peers/forkfloor.py 1000)
    echo "| floor: os.fork() + os._exit(0) of the same interpreter, nothing served | | $us | | |"
    printf 'floor\t0\t%s\t0\t0\n' "$us" >>"$WORK/cpu.tsv"
}

echo "\`bench/python-cpu.sh -d $DUR -r $ROUNDS -c $CONC\` on $(nproc) cores, $(date -u +%Y-%m-%d), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| server | req/s | CPU µs per request | faults per request (server) | faults per request (children) |"
echo "| --- | ---: | ---: | ---: | ---: |"
for _ in $(seq "$ROUNDS"); do
    measure "sockhostd, Python handler, sync" "$(pid_of "$DAEMON" shd:pc-sync)" "$((BASE + 1))"
    measure "Python TCPServer" "${PIDS[1]}" "$((BASE + 11))"
    measure "sockhostd, Python handler, thread" "$(pid_of "$DAEMON" shd:pc-thread)" "$((BASE + 2))"
    measure "Python ThreadingTCPServer" "${PIDS[2]}" "$((BASE + 12))"
    measure "sockhostd, Python handler, thread, cpu_affinity = all" "$(pid_of "$DAEMON" shd:pc-tall)" "$((BASE + 4))"
    measure "Python ThreadingTCPServer on one CPU (taskset -c 0)" "${PIDS[4]}" "$((BASE + 14))"
    measure "sockhostd, Python handler, fork" "$(pid_of "$DAEMON" shd:pc-fork)" "$((BASE + 3))"
    measure "Python ForkingTCPServer" "${PIDS[3]}" "$((BASE + 13))"
    floor
done
python3 - "$WORK/cpu.tsv" <<'EOF'
import statistics
import sys
rows, faults = {}, {}
for line in open(sys.argv[1]):
    label, _, us, _, kids = line.rstrip("\n").split("\t")
    rows.setdefault(label, []).append(float(us))
    faults.setdefault(label, []).append(float(kids))
med = {k: statistics.median(v) for k, v in rows.items()}
kid = {k: statistics.median(v) for k, v in faults.items()}
forking = med["Python ForkingTCPServer"]
ours = med["sockhostd, Python handler, fork"]
threading = med["Python ThreadingTCPServer"]
ours_t = med["sockhostd, Python handler, thread"]
floor = med["floor"]


def verdict(ok):
    return "met" if ok else "MISSED"


print()
print(f"Medians, CPU µs per request: ForkingTCPServer {forking:,.0f}, sockhostd fork {ours:,.0f}, "
      f"fork floor {floor:,.0f}; ThreadingTCPServer {threading:,.0f}, sockhostd thread {ours_t:,.0f}.")
print(f"ForkingTCPServer / sockhostd fork: {forking / ours:.2f}x (target >= 1.05: {verdict(forking / ours >= 1.05)}).")
fk, fo = kid["Python ForkingTCPServer"], kid["sockhostd, Python handler, fork"]
print(f"Faults per request child: sockhostd {fo:.0f}, ForkingTCPServer {fk:.0f} (target: no more: {verdict(fo <= fk)}).")
print(f"sockhostd thread / ThreadingTCPServer: {ours_t / threading:.2f}x (target <= 0.6: {verdict(ours_t / threading <= 0.6)}).")
both_one = med["sockhostd, Python handler, thread"] / med["Python ThreadingTCPServer on one CPU (taskset -c 0)"]
both_all = med["sockhostd, Python handler, thread, cpu_affinity = all"] / threading
print(f"Like for like, sockhostd thread / ThreadingTCPServer: {both_one:.2f}x both on one CPU, {both_all:.2f}x both on every CPU.")
print(f"Ceiling for any server that forks this interpreter per request (ForkingTCPServer / floor): {forking / floor:.2f}x.")
EOF
