#!/usr/bin/env bash
# bench/ab.sh: two sockhostd builds side by side against the bare loop, for
# judging one change: each round runs OLD, NEW and the bare loop back to
# back (the order rotating every round), and the median ratios to the bare
# loop are printed at the end.
#
# Promises: loopback only; ROUNDS x 3 bounded runs; every process it starts
# is killed on exit and its temp folder removed.
#
# usage: bench/ab.sh OLD_SOCKHOSTD NEW_SOCKHOSTD [-m MIXIN] [-l LOAD_MODE]
#                    [-r ROUNDS] [-c CLIENTS] [-d SECONDS]
#   defaults: fork, conn (new connection per request), 8 rounds, 8 clients, 2 s
#   e.g. git worktree add /tmp/old HEAD~1 &&
#        (cd /tmp/old && cargo build --release -p sockhostd) &&
#        bench/ab.sh /tmp/old/target/release/sockhostd target/release/sockhostd
set -euo pipefail

[ $# -ge 2 ] || { sed -n '2,15p' "$0"; exit 2; }
OLD=$(realpath "$1") NEW=$(realpath "$2")
shift 2
MIXIN=fork MODE=conn ROUNDS=8 CONC=8 DUR=2
while [ $# -gt 0 ]; do
    case "$1" in
    -m) MIXIN=$2; shift 2 ;;
    -l) MODE=$2; shift 2 ;;
    -r) ROUNDS=$2; shift 2 ;;
    -c) CONC=$2; shift 2 ;;
    -d) DUR=$2; shift 2 ;;
    *) echo "ab.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cargo build --release -p sockhost-bench -p sockhost-echo --quiet
. bench/common.sh
bench_setup ab

PORT=${SOCKHOST_BENCH_PORT:-27400}
start_daemon() { # name binary port
    echo_listener "$3" "$MIXIN" >"$WORK/$1.toml"
    SOCKHOST_LOG=warn "$2" -c "$WORK/$1.toml" --log stderr 2>"$WORK/$1.log" &
    PIDS+=($!)
}
start_daemon old "$OLD" "$PORT"
start_daemon new "$NEW" "$((PORT + 1))"
"$BENCH" bare -l "tcp:127.0.0.1:$((PORT + 2))" -m "$MIXIN" >"$WORK/bare.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do
    grep -q " ready: " "$WORK/old.log" && grep -q " ready: " "$WORK/new.log" &&
        grep -q ready "$WORK/bare.log" && break
    sleep 0.05
done

rate() {
    "$BENCH" load -t "tcp:127.0.0.1:$1" -m "$MODE" -c "$CONC" -d "$DUR" --tsv 2>/dev/null | cut -f1
}
: >"$WORK/rounds.tsv"
names=(old new bare) ports=("$PORT" "$((PORT + 1))" "$((PORT + 2))")
for r in $(seq "$ROUNDS"); do
    declare -A got=()
    for k in 0 1 2; do
        i=$(((k + r) % 3))
        got[${names[$i]}]=$(rate "${ports[$i]}")
    done
    printf '%s\t%s\t%s\n' "${got[old]}" "${got[new]}" "${got[bare]}" | tee -a "$WORK/rounds.tsv" |
        awk -v r="$r" '{printf "round %s: old %s, new %s, bare %s req/s\n", r, $1, $2, $3}'
done
python3 - "$WORK/rounds.tsv" "$MIXIN" "$MODE" <<'EOF'
import statistics, sys
rows = [[float(x) for x in l.split()] for l in open(sys.argv[1]) if l.strip()]
med = lambda xs: statistics.median(xs)
print(f"{sys.argv[2]}, {sys.argv[3]}: median over {len(rows)} rounds")
print(f"  old / bare {med([o / b for o, n, b in rows]):.3f}")
print(f"  new / bare {med([n / b for o, n, b in rows]):.3f}")
print(f"  new / old  {med([n / o for o, n, b in rows]):.3f}")
EOF
