# bench/common.sh: what the bench/ scripts share; sourced, not run. Expects
# ROOT (the repository) to be set and the cwd to be ROOT.
#
# bench_args "$@": the CPU scripts' options, -d SECONDS (DUR), -r ROUNDS,
#   -c CLIENTS (CONC; the script sets the defaults first) and -h (the
#   script's header comment, up to its `set -euo pipefail`).
# xinetd_cat_config PORT: an xinetd.conf running /bin/cat per connection
#   on 127.0.0.1:PORT (nowait, no limits, logging to WORK), on stdout.
# bench_setup TAG: sets OUT (the release build folder; CARGO_TARGET_DIR is
#   honoured), BENCH (the release sockhost-bench), WORK (a fresh
#   temp folder /tmp/sockhost-TAG.*) and PIDS (empty); on exit every pid
#   in PIDS gets SIGTERM, is waited for, and WORK is removed.
# echo_listener PORT MIXIN: a config with one TCP listener on 127.0.0.1:PORT
#   serving the release echo plugin with MIXIN, on stdout (after bench_setup).
# pid_of DAEMON COMM: the pid of the child of sockhostd DAEMON (a pid) named
#   COMM (sockhostd names its workers shd:LISTENER, cut to 15 bytes). Only
#   DAEMON's own children count: another sockhostd on the machine may run a
#   worker of the same name, and a fork worker's request children and
#   sandbox reporter carry its name too. Nothing (and a line on stderr, exit
#   status 1) when there is none.
# bench_measure LABEL PID TARGET: CPU time (user + system of PID and its
#   reaped children, from /proc/PID/stat) and minor page faults (PID's own,
#   and its reaped children's) over one closed-loop `sockhost-bench load -m
#   conn` run against TARGET (e.g. tcp:127.0.0.1:PORT; CONC clients, 64-byte
#   requests, DUR seconds), then bench_record of them. Does nothing when PID
#   is empty or gone (a server that is not installed). BENCH_WARMUP
#   (seconds, default 0.5; 0 for none) is a load run of its own before the
#   counters are read, so its CPU is not counted; BENCH_SETTLE (default
#   0.5) the seconds waited after the run for the last children to end and
#   be reaped before PID's counters are read again.
# bench_record LABEL RPS CPU_SECONDS [FAULTS CHILD_FAULTS]: divides the run's
#   totals by its requests (RPS x DUR), appends "LABEL RPS CPU_US FAULTS
#   CHILD_FAULTS" (per request, tab-separated) to WORK/cpu.tsv and prints
#   the table row BENCH_ROW: a Python format string over label, rps, cpu
#   (µs per request), faults and child_faults (per request).

bench_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
        -d) DUR=$2; shift 2 ;;
        -r) ROUNDS=$2; shift 2 ;;
        -c) CONC=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo pipefail$/{/^set -euo pipefail$/!p}' "$0"; exit 0 ;;
        *) echo "$(basename "$0"): unknown argument $1" >&2; exit 2 ;;
        esac
    done
}

xinetd_cat_config() {
    cat <<EOF
service sockhost-bench-cat
{
    type = UNLISTED
    port = $1
    bind = 127.0.0.1
    socket_type = stream
    protocol = tcp
    wait = no
    user = $(id -un)
    server = /bin/cat
    instances = UNLIMITED
    per_source = UNLIMITED
    cps = 1000000 1
    flags = REUSE
    log_type = FILE $WORK/xinetd-service.log
    log_on_success =
    log_on_failure =
}
EOF
}

bench_setup() {
    OUT=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")/release
    BENCH=$OUT/sockhost-bench
    WORK=$(mktemp -d "/tmp/sockhost-$1.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}

echo_listener() {
    printf '[[listener]]\nname = "echo"\nfamily = "inet"\ntype = "stream"\naddress = "127.0.0.1:%s"\nmixin = "%s"\nhandler = "%s"\n' \
        "$1" "$2" "$OUT/libsockhost_echo.so"
}

# Hand-rolled over /proc rather than `pgrep -P DAEMON -x COMM`: the names
# are compared as strings (pgrep takes a regex), and procps is not needed.
pid_of() {
    local p stat ppid
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = "$2" ] || continue
        stat=$(cat "$p/stat" 2>/dev/null) || continue
        # The fields after the comm (which may hold spaces or ")"): state, ppid, ...
        read -r _ ppid _ <<<"${stat##*) }"
        if [ "$ppid" = "$1" ]; then
            echo "${p#/proc/}"
            return 0
        fi
    done
    echo "pid_of: sockhostd $1 has no child named $2" >&2
    return 1
}

# stat_of PID: "CPU_TICKS MINOR_FAULTS CHILDREN_MINOR_FAULTS" of PID, the
# ticks being utime + stime + cutime + cstime (/proc/PID/stat fields 14-17,
# the faults fields 10 and 11).
stat_of() {
    local stat f
    stat=$(cat "/proc/$1/stat") || return 1
    read -r -a f <<<"${stat##*) }" # f[0] is field 3
    echo "$((f[11] + f[12] + f[13] + f[14])) ${f[7]} ${f[8]}"
}

# bench_measure LABEL PID TARGET: one closed-loop run against TARGET, and
# PID's CPU time and page faults per request over it. The warm-up
# (BENCH_WARMUP seconds, default 0.5; 0 for none) is a load run of its own
# before the counters are read, so the CPU it costs is not divided by the
# measured run's requests.
bench_measure() {
    local c0 f0 k0 c1 f1 k1 rps warm=${BENCH_WARMUP:-0.5}
    [ -n "$2" ] && [ -d "/proc/$2" ] || return 0
    if [ "$warm" != 0 ]; then
        "$BENCH" load -t "$3" -m conn -c "$CONC" -s 64 -d "$warm" -w 0 --tsv >/dev/null 2>&1 || true
    fi
    read -r c0 f0 k0 < <(stat_of "$2")
    rps=$("$BENCH" load -t "$3" -m conn -c "$CONC" -s 64 -d "$DUR" -w 0 --tsv 2>/dev/null | cut -f1)
    sleep "${BENCH_SETTLE:-0.5}"
    read -r c1 f1 k1 < <(stat_of "$2")
    bench_record "$1" "$rps" "$(awk -v t="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.6f", t / hz }')" \
        "$((f1 - f0))" "$((k1 - k0))"
}

bench_record() {
    python3 - "$1" "$2" "$3" "${4:-0}" "${5:-0}" "$DUR" "$WORK/cpu.tsv" "$BENCH_ROW" <<'EOF'
import sys
label, rps, cpu, faults, kids, dur, tsv, row = sys.argv[1:]
n = max(float(rps) * float(dur), 1)
v = dict(label=label, rps=float(rps), cpu=float(cpu) / n * 1e6, faults=int(faults) / n, child_faults=int(kids) / n)
print(row.format(**v))
with open(tsv, "a") as f:
    f.write("\t".join(str(v[k]) for k in ("label", "rps", "cpu", "faults", "child_faults")) + "\n")
EOF
}
