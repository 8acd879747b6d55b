#!/usr/bin/env bash
# bench/compare.sh: sockhostd side by side with its peers on this machine.
#
# Starts every server at once on loopback (sockhostd in sync, thread and
# fork mode and with workers = 2; bare Rust loops of each model; CPython's
# socketserver and http.server; socat, xinetd and tcpserver; nginx; HAProxy
# in front of sockhostd with and without the PROXY protocol and in front of
# the bare loop, for the proxy group; and, for the python group, sockhostd
# running the Python echo handler class of bench/peers/pyecho.py through
# libsockhost_python.so next to CPython's own TCPServer, ThreadingTCPServer
# and ForkingTCPServer serving it; and, for the sandbox group, the echo
# plugin in fork and thread mode under [listener.sandbox] mode = "enforce"
# next to the same listeners without a sandbox), then
# runs the load generator against each in turn (each sockhostd row next to
# its reference), all servers in one round, REPS rounds, and prints one
# markdown table of medians with ratios (bench/compare_report.py). Odd rounds run the rows top to
# bottom, even rounds bottom to top, so every pair runs A B then B A and
# neither side always goes first (or always follows the same neighbour). Then (unless --no-footprint)
# memory, start-up and reload.
#
# Promises: loopback addresses and unix sockets under a temp folder only;
# every load run is bounded (warm-up + DURATION seconds); every process it
# starts runs in its own process group and is killed by that group's id on
# exit, and the temp folder is removed. Installs missing peers from Debian
# when run as root (else rows without their server are left out).
#
# usage: bench/compare.sh [-d SECONDS] [-r REPS] [-c CLIENTS] [-s BYTES]
#                         [--only GROUPS] [--no-footprint] [--no-install]
#   defaults: 2 s per run (plus 0.5 s warm-up), 6 rounds, 8 clients, 64 B
#   GROUPS: comma-separated of conn,workers,persist,dgram,unix,http,proxy,python,exec,sandbox
#   SOCKHOST_BENCH_PORT: first of the loopback ports used (default 27100)
set -euo pipefail

DUR=2 REPS=6 CONC=8 SIZE=64 ONLY="conn,workers,persist,dgram,unix,http,proxy,python,exec,sandbox"
FOOTPRINT=1 INSTALL=1
BASE=${SOCKHOST_BENCH_PORT:-27100}
BODY='Hello, world!\n'
COMMAND="bench/compare.sh${*:+ $*}"
while [ $# -gt 0 ]; do
    case "$1" in
    -d) DUR=$2; shift 2 ;;
    -r) REPS=$2; shift 2 ;;
    -c) CONC=$2; shift 2 ;;
    -s) SIZE=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --no-footprint) FOOTPRINT=0; shift ;;
    --no-install) INSTALL=0; shift ;;
    -h | --help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. bench/common.sh # pid_of

# ---- peers -----------------------------------------------------------------
install_peers() {
    local need=()
    command -v socat >/dev/null || need+=(socat)
    command -v xinetd >/dev/null || need+=(xinetd)
    command -v tcpserver >/dev/null || need+=(ucspi-tcp)
    command -v wrk >/dev/null || need+=(wrk)
    command -v nginx >/dev/null || need+=(nginx-light)
    [[ ",$ONLY," != *",proxy,"* ]] || [ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null || need+=(haproxy)
    [ ${#need[@]} -eq 0 ] && return
    if [ "$INSTALL" = 1 ] && [ "$(id -u)" = 0 ]; then
        echo "installing ${need[*]} from Debian" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
    else
        echo "missing ${need[*]}: their rows are left out" >&2
    fi
}
install_peers
command -v python3 >/dev/null || { echo "compare.sh: python3 is required" >&2; exit 1; }
cargo build --release --workspace --quiet
# Where cargo put the release build (CARGO_TARGET_DIR is honoured).
OUT=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")/release
BENCH=$OUT/sockhost-bench
SOCKHOSTD=$OUT/sockhostd

WORK=$(mktemp -d /tmp/sockhost-compare.XXXXXX)
STARTED=()
cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${STARTED[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: run CMD in a process group of its own, output to a log.
start() {
    local name=$1; shift
    setsid "$@" >"$WORK/$name.log" 2>&1 </dev/null &
    STARTED+=($!)
}

# wait_for FILE TEXT: until FILE contains TEXT (10 s at most).
wait_for() {
    local i
    for i in $(seq 200); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "compare.sh: $1 never said '$2':" >&2
    cat "$1" >&2
    return 1
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() {
    local i
    for i in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "compare.sh: nothing listens on port $1" >&2
    return 1
}

port() { echo $((BASE + $1)); }

# ---- servers -----------------------------------------------------------------
listener() { # name type address mixin handler [extra]
    printf '[[listener]]\nname = "%s"\nfamily = "%s"\ntype = "%s"\naddress = "%s"\nmixin = "%s"\nhandler = "%s"\n%b\n' \
        "$1" "$2" "$3" "$4" "$5" "$6" "${7:-}"
}
{
    printf '[daemon]\nplugin_dir = "%s"\n\n' "$OUT"
    E=libsockhost_echo.so H=libsockhost_http_hello.so
    listener sync inet stream "127.0.0.1:$(port 1)" sync $E
    listener thread inet stream "127.0.0.1:$(port 2)" thread $E
    listener fork inet stream "127.0.0.1:$(port 3)" fork $E
    listener sync-w2 inet stream "127.0.0.1:$(port 4)" sync $E 'workers = 2'
    listener thread-w2 inet stream "127.0.0.1:$(port 5)" thread $E 'workers = 2'
    listener fork-w2 inet stream "127.0.0.1:$(port 6)" fork $E 'workers = 2'
    listener udp-sync inet dgram "127.0.0.1:$(port 7)" sync $E
    listener udp-thread inet dgram "127.0.0.1:$(port 8)" thread $E
    listener unix-sync unix stream "$WORK/sh-sync.sock" sync $E
    listener unix-thread unix stream "$WORK/sh-thread.sock" thread $E
    listener proxied inet stream "127.0.0.1:$(port 12)" thread $E \
        'proxy_protocol = true\nproxy_trusted = ["127.0.0.1"]'
    # The sandbox's cost: the same plugin and mixin, enforced (network =
    # "none": the strictest filter) and not.
    listener fork-sb inet stream "127.0.0.1:$(port 13)" fork $E \
        '[listener.sandbox]\nmode = "enforce"\nnetwork = "none"'
    listener thread-sb inet stream "127.0.0.1:$(port 14)" thread $E \
        '[listener.sandbox]\nmode = "enforce"\nnetwork = "none"'
    for spec in "http:thread:1:9" "http-w2:thread:2:10" "http-fork:fork:1:11"; do
        IFS=: read -r name mixin workers n <<<"$spec"
        listener "$name" inet stream "127.0.0.1:$(port "$n")" "$mixin" $H \
            "workers = $workers\n[listener.config]\nbody = \"Hello, world!\\\\n\""
    done
    # The exec group: /bin/cat per connection (inetd's nowait).
    listener exec-fork inet stream "127.0.0.1:$(port 60)" fork libsockhost_exec.so \
        'max_children = 1000\n[listener.config]\ncommand = ["/bin/cat"]'
    listener exec-thread inet stream "127.0.0.1:$(port 61)" thread libsockhost_exec.so \
        '[listener.config]\ncommand = ["/bin/cat"]'
    if [[ ",$ONLY," == *",python,"* ]]; then
        # The same class CPython's servers run below (pyecho.StreamEcho).
        for spec in "py-sync:sync:1:50" "py-thread:thread:1:51" "py-fork:fork:1:52" "py-sync-w2:sync:2:53"; do
            IFS=: read -r name mixin workers n <<<"$spec"
            listener "$name" inet stream "127.0.0.1:$(port "$n")" "$mixin" libsockhost_python.so \
                "workers = $workers\n[listener.config]\nhandler = \"pyecho:StreamEcho\"\npath = [\"$ROOT/bench/peers\"]"
        done
    fi
} >"$WORK/sockhost.toml"
start sockhostd env SOCKHOST_LOG=warn,sockhostd=info "$SOCKHOSTD" -c "$WORK/sockhost.toml" --log stderr
SOCKHOSTD_PID=$! # setsid and env exec it: its own pid
wait_for "$WORK/sockhostd.log" " ready: "

start bare-sync "$BENCH" bare -l "tcp:127.0.0.1:$(port 21)" -m sync
start bare-thread "$BENCH" bare -l "tcp:127.0.0.1:$(port 22)" -m thread
start bare-fork "$BENCH" bare -l "tcp:127.0.0.1:$(port 23)" -m fork
start bare-sync-w2 "$BENCH" bare -l "tcp:127.0.0.1:$(port 24)" -m sync -w 2
start bare-thread-w2 "$BENCH" bare -l "tcp:127.0.0.1:$(port 25)" -m thread -w 2
start bare-fork-w2 "$BENCH" bare -l "tcp:127.0.0.1:$(port 26)" -m fork -w 2
start bare-udp-sync "$BENCH" bare -l "udp:127.0.0.1:$(port 27)" -m sync
start bare-udp-thread "$BENCH" bare -l "udp:127.0.0.1:$(port 28)" -m thread
start bare-unix-sync "$BENCH" bare -l "unix:$WORK/bare-sync.sock" -m sync
start bare-unix-thread "$BENCH" bare -l "unix:$WORK/bare-thread.sock" -m thread
for n in bare-sync bare-thread bare-fork bare-sync-w2 bare-thread-w2 bare-fork-w2 bare-udp-sync bare-udp-thread bare-unix-sync bare-unix-thread; do
    wait_for "$WORK/$n.log" ready
done

PY=$ROOT/bench/peers
start py-tcp python3 "$PY/pyecho.py" tcp "$(port 31)"
start py-threading python3 "$PY/pyecho.py" threading "$(port 32)"
start py-forking python3 "$PY/pyecho.py" forking "$(port 33)"
start py-udp python3 "$PY/pyecho.py" udp "$(port 37)"
start py-http python3 "$PY/pyhttp.py" "$(port 39)" "$(printf "$BODY")"
for n in py-tcp py-threading py-forking py-udp py-http; do wait_for "$WORK/$n.log" ready; done

HAVE=" sockhostd bare python "
if command -v socat >/dev/null; then
    start socat socat "TCP-LISTEN:$(port 41),bind=127.0.0.1,reuseaddr,fork,backlog=128" PIPE
    wait_port "$(port 41)" && HAVE+="socat "
fi
if command -v tcpserver >/dev/null; then
    start tcpserver tcpserver -q -H -R -l 0 -b 128 -c 1000 127.0.0.1 "$(port 42)" cat
    wait_port "$(port 42)" && HAVE+="tcpserver "
fi
if command -v xinetd >/dev/null; then
    xinetd_cat_config "$(port 43)" >"$WORK/xinetd.conf"
    start xinetd xinetd -dontfork -f "$WORK/xinetd.conf" -pidfile "$WORK/xinetd.pid" -filelog "$WORK/xinetd-daemon.log"
    wait_port "$(port 43)" && HAVE+="xinetd "
fi
if command -v nginx >/dev/null && command -v wrk >/dev/null; then
    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    default_type "text/plain; charset=utf-8";
    server {
        listen 127.0.0.1:$(port 44);
        location / { return 200 "$BODY"; }
    }
}
EOF
    start nginx nginx -p "$WORK/nginx" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log"
    wait_port "$(port 44)" && HAVE+="nginx "
fi
if command -v systemd-socket-activate >/dev/null; then
    start ssa systemd-socket-activate -l "127.0.0.1:$(port 62)" --inetd -a /bin/cat
    wait_port "$(port 62)" && HAVE+="ssa "
fi
command -v wrk >/dev/null && HAVE+="wrk "
HAPROXY=$(command -v haproxy || ls /usr/sbin/haproxy 2>/dev/null || true)
if [ -n "$HAPROXY" ] && [[ ",$ONLY," == *",proxy,"* ]]; then
    # One frontend per row: send-proxy-v2 to the proxy_protocol listener,
    # plain TCP to the same daemon's thread listener and to the bare loop.
    cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 1000
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend pp
    bind 127.0.0.1:$(port 45)
    default_backend pp
backend pp
    server s 127.0.0.1:$(port 12) send-proxy-v2
frontend plain
    bind 127.0.0.1:$(port 46)
    default_backend plain
backend plain
    server s 127.0.0.1:$(port 2)
frontend bare
    bind 127.0.0.1:$(port 47)
    default_backend bare
backend bare
    server s 127.0.0.1:$(port 22)
EOF
    start haproxy "$HAPROXY" -db -f "$WORK/haproxy.cfg"
    wait_port "$(port 45)" && HAVE+="haproxy "
fi

# ---- rows: id|group|server|mode|target|reference id|python id|needs ------------
T="tcp:127.0.0.1"
cat >"$WORK/rows.txt" <<EOF
sh-sync|conn|sockhostd sync|conn|$T:$(port 1)|bare-sync|py-tcp|sockhostd
bare-sync|conn|bare Rust loop, sync|conn|$T:$(port 21)|||bare
py-tcp|conn|Python TCPServer|conn|$T:$(port 31)|bare-sync||python
sh-thread|conn|sockhostd thread|conn|$T:$(port 2)|bare-thread|py-threading|sockhostd
bare-thread|conn|bare Rust loop, thread|conn|$T:$(port 22)|||bare
py-threading|conn|Python ThreadingTCPServer|conn|$T:$(port 32)|bare-thread||python
sh-fork|conn|sockhostd fork|conn|$T:$(port 3)|bare-fork|py-forking|sockhostd
bare-fork|conn|bare Rust loop, fork|conn|$T:$(port 23)|||bare
py-forking|conn|Python ForkingTCPServer|conn|$T:$(port 33)|bare-fork||python
socat|conn|socat fork PIPE|conn|$T:$(port 41)|bare-fork||socat
tcpserver|conn|tcpserver cat|conn|$T:$(port 42)|bare-fork||tcpserver
xinetd|conn|xinetd cat|conn|$T:$(port 43)|bare-fork||xinetd
sh-sync-w2|workers|sockhostd sync, workers = 2|conn|$T:$(port 4)|sh-sync||sockhostd
bare-sync-w2|workers|bare Rust loop, sync, 2 processes|conn|$T:$(port 24)|bare-sync||bare
sh-thread-w2|workers|sockhostd thread, workers = 2|conn|$T:$(port 5)|sh-thread||sockhostd
bare-thread-w2|workers|bare Rust loop, thread, 2 processes|conn|$T:$(port 25)|bare-thread||bare
sh-fork-w2|workers|sockhostd fork, workers = 2|conn|$T:$(port 6)|sh-fork||sockhostd
bare-fork-w2|workers|bare Rust loop, fork, 2 processes|conn|$T:$(port 26)|bare-fork||bare
sh-thread-p|persist|sockhostd thread|persist|$T:$(port 2)|bare-thread-p|py-threading-p|sockhostd
bare-thread-p|persist|bare Rust loop, thread|persist|$T:$(port 22)|||bare
py-threading-p|persist|Python ThreadingTCPServer|persist|$T:$(port 32)|bare-thread-p||python
sh-fork-p|persist|sockhostd fork|persist|$T:$(port 3)|bare-fork-p|py-forking-p|sockhostd
bare-fork-p|persist|bare Rust loop, fork|persist|$T:$(port 23)|||bare
py-forking-p|persist|Python ForkingTCPServer|persist|$T:$(port 33)|bare-fork-p||python
socat-p|persist|socat fork PIPE|persist|$T:$(port 41)|bare-fork-p||socat
tcpserver-p|persist|tcpserver cat|persist|$T:$(port 42)|bare-fork-p||tcpserver
xinetd-p|persist|xinetd cat|persist|$T:$(port 43)|bare-fork-p||xinetd
sh-udp-sync|dgram|sockhostd sync|dgram|udp:127.0.0.1:$(port 7)|bare-udp-sync|py-udp|sockhostd
bare-udp-sync|dgram|bare Rust loop, sync|dgram|udp:127.0.0.1:$(port 27)|||bare
py-udp|dgram|Python UDPServer|dgram|udp:127.0.0.1:$(port 37)|bare-udp-sync||python
sh-udp-thread|dgram|sockhostd thread|dgram|udp:127.0.0.1:$(port 8)|bare-udp-thread||sockhostd
bare-udp-thread|dgram|bare Rust loop, thread|dgram|udp:127.0.0.1:$(port 28)|||bare
sh-unix-sync|unix|sockhostd sync, new connection per request|conn|unix:$WORK/sh-sync.sock|bare-unix-sync||sockhostd
bare-unix-sync|unix|bare Rust loop, sync, new connection per request|conn|unix:$WORK/bare-sync.sock|||bare
sh-unix-thread|unix|sockhostd thread, persistent|persist|unix:$WORK/sh-thread.sock|bare-unix-thread||sockhostd
bare-unix-thread|unix|bare Rust loop, thread, persistent|persist|unix:$WORK/bare-thread.sock|||bare
sh-py-sync|python|sockhostd, Python handler, sync|conn|$T:$(port 50)|py-tcp-py||sockhostd
py-tcp-py|python|Python TCPServer|conn|$T:$(port 31)|||python
sh-py-sync-w2|python|sockhostd, Python handler, sync, workers = 2|conn|$T:$(port 53)|py-tcp-py||sockhostd
sh-py-thread|python|sockhostd, Python handler, thread|conn|$T:$(port 51)|py-threading-py||sockhostd
py-threading-py|python|Python ThreadingTCPServer|conn|$T:$(port 32)|||python
sh-py-fork|python|sockhostd, Python handler, fork|conn|$T:$(port 52)|py-forking-py||sockhostd
py-forking-py|python|Python ForkingTCPServer|conn|$T:$(port 33)|||python
sh-http|http|sockhostd http-hello, thread|http|$(port 9)|nginx|py-http|wrk
nginx|http|nginx, 2 workers|http|$(port 44)|||nginx
sh-http-w2|http|sockhostd http-hello, thread, workers = 2|http|$(port 10)|nginx|py-http|wrk
sh-http-fork|http|sockhostd http-hello, fork|http|$(port 11)|nginx|py-http|wrk
py-http|http|Python ThreadingHTTPServer|http|$(port 39)|nginx||wrk
sh-fork-off|sandbox|sockhostd fork, no sandbox|conn|$T:$(port 3)|||sockhostd
sh-fork-sb|sandbox|sockhostd fork, sandbox enforce|conn|$T:$(port 13)|sh-fork-off||sockhostd
sh-thread-off|sandbox|sockhostd thread, no sandbox|conn|$T:$(port 2)|||sockhostd
sh-thread-sb|sandbox|sockhostd thread, sandbox enforce|conn|$T:$(port 14)|sh-thread-off||sockhostd
hap-pp|proxy|HAProxy send-proxy-v2 → sockhostd thread, proxy_protocol = true|conn|$T:$(port 45)|hap-plain|hap-bare|haproxy
hap-plain|proxy|HAProxy → sockhostd thread|conn|$T:$(port 46)|hap-bare||haproxy
hap-bare|proxy|HAProxy → bare Rust loop, thread|conn|$T:$(port 47)|||haproxy
exec-fork|exec|sockhostd exec /bin/cat, fork|conn|$T:$(port 60)|floor||sockhostd
exec-thread|exec|sockhostd exec /bin/cat, thread|conn|$T:$(port 61)|floor||sockhostd
tcpserver-x|exec|tcpserver cat|conn|$T:$(port 42)|floor||tcpserver
xinetd-x|exec|xinetd cat|conn|$T:$(port 43)|floor||xinetd
ssa-x|exec|systemd-socket-activate --inetd -a cat|conn|$T:$(port 62)|floor||ssa
floor|exec|spawn floor: /bin/cat started and reaped, nothing served|spawn|/bin/cat|||bare
EOF

# A row runs when its group is selected and its server is there.
selected() { [[ ",$ONLY," == *",$1,"* ]] && [[ "$HAVE" == *" $2 "* ]]; }

# ---- runs --------------------------------------------------------------------
mkdir -p "$WORK/res"
# (`if`, not `&&`: a last row left out must not fail the pipeline under -e)
total=$(while IFS='|' read -r _ g _ _ _ _ _ need; do if selected "$g" "$need"; then echo; fi; done <"$WORK/rows.txt" | wc -l)
echo "running $total servers x $REPS rounds x ${DUR}s ($CONC clients, $SIZE bytes)" >&2
for rep in $(seq "$REPS"); do
    while IFS='|' read -r id group name mode target _ _ need; do
        selected "$group" "$need" || continue
        out="$WORK/res/$id.$rep"
        if [ "$mode" = spawn ]; then
            "$BENCH" spawn -p "$target" -c "$CONC" -d "$DUR" --tsv >"$out" 2>/dev/null || true
        elif [ "$mode" = http ]; then
            wrk -t2 "-c$CONC" "-d${DUR}s" --latency "http://127.0.0.1:$target/" >"$out" 2>&1 || true
        else
            "$BENCH" load -t "$target" -m "$mode" -c "$CONC" -s "$SIZE" -d "$DUR" --tsv >"$out" 2>/dev/null || true
        fi
        printf '  round %s: %-48s %s\n' "$rep" "$name" "$(head -c 60 "$out" | head -1)" >&2
    done < <(if [ $((rep % 2)) = 1 ]; then cat "$WORK/rows.txt"; else tac "$WORK/rows.txt"; fi)
done

# ---- the table -----------------------------------------------------------------
echo
echo "\`$COMMAND\` on $(nproc) cores, $(uname -sr), $(date -u +%Y-%m-%d): $CONC clients, $SIZE-byte echo, ${DUR} s per run after a 0.5 s warm-up, $REPS rounds; req/s and latencies are medians over the rounds, a ratio is the median of per-round ratios (a server and its reference run back to back in every round, in turn first and second)"
echo
python3 "$ROOT/bench/compare_report.py" "$WORK" "$ONLY"

# rss_kb COMM: resident memory of the worker named COMM of the sockhostd
# started above (not another daemon's of the same name), in KiB.
rss_kb() {
    local pid
    pid=$(pid_of "$SOCKHOSTD_PID" "$1" 2>/dev/null) &&
        awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null && return 0
    echo "?"
}
if [[ ",$ONLY," == *",python,"* ]]; then
    echo
    echo "Worker memory with the Python interpreter loaded (VmRSS after the runs): sync worker $(rss_kb shd:py-sync) KiB, fork worker $(rss_kb shd:py-fork) KiB; an echo-plugin sync worker $(rss_kb shd:sync) KiB."
fi

if [ "$FOOTPRINT" = 1 ]; then
    echo
    echo "Memory (\`sockhost-bench memory --connections 10000\`, echo plugin):"
    echo
    "$BENCH" memory --sockhostd "$SOCKHOSTD" --plugin "$OUT/libsockhost_echo.so" --connections 10000
    echo
    echo "Start-up and reload (\`sockhost-bench startup --listeners 20 --rounds 5\`):"
    echo
    "$BENCH" startup --sockhostd "$SOCKHOSTD" --plugin "$OUT/libsockhost_echo.so" --listeners 20 --rounds 5
fi
