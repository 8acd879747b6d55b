# bench/common.sh: what bench/ab.sh and bench/faults.sh share; sourced, not
# run. Expects ROOT (the repository) to be set and the cwd to be ROOT.
#
# bench_setup TAG: sets OUT (the release build folder; CARGO_TARGET_DIR is
#   honoured), BENCH (the release sockhost-bench), WORK (a fresh
#   temp folder /tmp/sockhost-TAG.*) and PIDS (empty); on exit every pid
#   in PIDS gets SIGTERM, is waited for, and WORK is removed.
# echo_listener PORT MIXIN: a config with one TCP listener on 127.0.0.1:PORT
#   serving the release echo plugin with MIXIN, on stdout (after bench_setup).

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
