//! The server's own steps under the Python plugin, where a daemon cannot
//! simply mirror serve_forever: `server.shutdown()` and a handler's
//! `SystemExit` (the worker stops as serve_forever would return; the
//! daemon starts a fresh one, so shutdown never blocks and nothing is
//! refused), `service_actions` every poll_interval while idle,
//! `verify_request` given the real socket, datagrams longer than
//! `max_packet_size` cut as socketserver cuts them, a program's own
//! quiet `handle_error` leaving no ERROR line, and fresh `threading.local`
//! data for every request on reused request threads.

mod common;

use common::life::wait_until;
use common::py::*;
use common::*;

const APP: &str = r#"
import os, socket, socketserver, threading

HERE = os.path.dirname(os.path.abspath(__file__))


def note(name, text):
    with open(os.path.join(HERE, name), "a") as f:
        f.write(text + "\n")


class Stopper(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().strip()
        if line == b"STOP":
            self.server.shutdown()
            self.wfile.write(b"shutdown returned\n")
        elif line == b"EXIT":
            raise SystemExit(3)
        else:
            self.wfile.write(b"pid %d\n" % os.getpid())


class Ticker(socketserver.TCPServer):
    def service_actions(self):
        note("ticks", str(os.getpid()))


class Peeker(socketserver.TCPServer):
    def verify_request(self, request, client_address):
        first = request.recv(5, socket.MSG_PEEK)
        return first != b"DENY " and request.getpeername() == client_address


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"served " + self.rfile.readline())


class Small(socketserver.UDPServer):
    max_packet_size = 100


class Length(socketserver.DatagramRequestHandler):
    def handle(self):
        data = self.rfile.read()
        self.wfile.write(b"%d %s" % (len(data), data[-3:]))


class Quiet(socketserver.TCPServer):
    def handle_error(self, request, client_address):
        request.sendall(b"sorry\n")


local = threading.local()


class Fresh(socketserver.BaseRequestHandler):
    def handle(self):
        seen = getattr(local, "mark", None)
        local.mark = "stale"
        me = threading.current_thread()
        self.request.sendall(b"%r %r %d\n" % (seen, me.daemon, threading.get_native_id()))


class Fails(socketserver.BaseRequestHandler):
    def handle(self):
        raise RuntimeError("quietly-handled")
"#;

fn line(addr: &str, text: &str) -> String {
    String::from_utf8_lossy(&stream_exchange(addr, format!("{text}\n").as_bytes())).into_owned()
}

/// Protects: `self.server.shutdown()` from a handler returns (it never
/// blocks, in every mixin, where CPython's sync server would deadlock)
/// and stops the worker as serve_forever returning would: server_close,
/// then exit; the daemon starts a fresh worker on the same socket, which
/// serves the next client.
#[test]
fn shutdown_from_a_handler_stops_the_worker_and_a_new_one_serves() {
    for mixin in ["sync", "thread", "fork"] {
        let cfg = py_listener("stop", "inet", "stream", mixin, "app:Stopper", "", "");
        let d = start_with("pystop", &[("app.py", APP)], &cfg);
        let first = worker(&d, "stop");
        assert_eq!(
            line(&d.addr("stop"), "STOP"),
            "shutdown returned\n",
            "{mixin}"
        );
        assert!(
            wait_until(DEADLINE, || common::life::exited(first)),
            "{mixin}: the worker did not stop\n{}",
            d.log()
        );
        assert!(d
            .log()
            .contains("server.shutdown(): this worker stops serving"));
        let next = wait_for(DEADLINE, || worker_of(d.pid(), "stop")).expect("a new worker");
        assert_ne!(next, first, "{mixin}");
        assert!(line(&d.addr("stop"), "PING").starts_with("pid "), "{mixin}");
    }
}

/// Protects: `SystemExit` from a handler ends a sync server's serve loop
/// (the worker stops, a fresh one serves), ends only the request in
/// thread mode (as a request thread ends quietly) and only the child in
/// fork mode, as each CPython server does.
#[test]
fn system_exit_from_a_handler_as_each_cpython_server() {
    for mixin in ["sync", "thread", "fork"] {
        let cfg = py_listener("exit", "inet", "stream", mixin, "app:Stopper", "", "");
        let d = start_with("pyexit", &[("app.py", APP)], &cfg);
        let first = worker(&d, "exit");
        assert_eq!(line(&d.addr("exit"), "EXIT"), "", "{mixin}");
        if mixin == "sync" {
            assert!(
                wait_until(DEADLINE, || common::life::exited(first)),
                "{}",
                d.log()
            );
            assert!(d.log().contains("SystemExit(3) from a handler"));
        }
        assert!(line(&d.addr("exit"), "PING").starts_with("pid "), "{mixin}");
        if mixin != "sync" {
            assert_eq!(worker(&d, "exit"), first, "{mixin}: the worker stopped");
        }
        if mixin == "thread" {
            assert!(!d.log().contains(" ERROR "), "{mixin}:\n{}", d.log());
        }
    }
}

/// Protects: the server's `service_actions` runs while no request comes
/// at all (socketserver's serve_forever runs it every poll_interval).
#[test]
fn service_actions_runs_while_idle() {
    let cfg = py_listener(
        "tick",
        "inet",
        "stream",
        "sync",
        "app:Echo",
        "",
        "server = \"app:Ticker\"",
    );
    let d = start_with("pytick", &[("app.py", APP)], &cfg);
    let ticks = || {
        std::fs::read_to_string(d.dir.join("ticks"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert!(wait_until(DEADLINE, || ticks() >= 3), "{}", d.log());
}

/// Protects: on a stream listener `verify_request` gets the connection
/// itself (it can peek at it and ask for its peer), and refuses as
/// CPython's does.
#[test]
fn verify_request_gets_the_socket() {
    let cfg = py_listener(
        "peek",
        "inet",
        "stream",
        "thread",
        "app:Echo",
        "",
        "server = \"app:Peeker\"",
    );
    let d = start_with("pypeek", &[("app.py", APP)], &cfg);
    let reference = Reference::start_servers(
        &d.dir.path,
        &[("peek", "inet", "stream", "app:Echo", "app:Peeker")],
    );
    for text in ["HELLO there", "DENY me"] {
        let ours = line(&d.addr("peek"), text);
        assert_eq!(
            ours,
            line(&reference.addr("peek"), text),
            "{text}\n{}",
            d.log()
        );
    }
    assert_eq!(line(&d.addr("peek"), "HELLO"), "served HELLO\n");
    assert_eq!(line(&d.addr("peek"), "DENY x"), "");
    assert!(!d.log().contains("verify_request:"), "{}", d.log());
}

/// Protects: a datagram longer than `max_packet_size` reaches the handler
/// cut to that size, as socketserver's recvfrom(max_packet_size) cuts it,
/// instead of being dropped.
#[test]
fn oversized_datagrams_are_truncated_like_socketserver() {
    let cfg = py_listener(
        "small",
        "inet",
        "dgram",
        "sync",
        "app:Length",
        "max_packet_size = 100",
        "server = \"app:Small\"",
    );
    let d = start_with("pydgram", &[("app.py", APP)], &cfg);
    let reference = Reference::start_servers(
        &d.dir.path,
        &[("small", "inet", "dgram", "app:Length", "app:Small")],
    );
    let big: Vec<u8> = (0..300u32).map(|i| b'a' + (i % 26) as u8).collect();
    let ours = dgram_exchange(&d.addr("small"), &d.dir.path, &big);
    assert_eq!(ours, b"100 tuv", "{}", d.log());
    assert_eq!(
        ours,
        dgram_exchange(&reference.addr("small"), &d.dir.path, &big)
    );
    assert_eq!(
        dgram_exchange(&d.addr("small"), &d.dir.path, b"short"),
        b"5 ort"
    );
}

/// Protects: when the program's own `handle_error` deals with an error
/// (here: a reply, no traceback), the daemon adds no ERROR line of its own.
#[test]
fn a_quiet_handle_error_leaves_no_error_line() {
    for mixin in ["sync", "thread", "fork"] {
        let cfg = py_listener(
            "quiet",
            "inet",
            "stream",
            mixin,
            "app:Fails",
            "",
            "server = \"app:Quiet\"",
        );
        let d = start_with("pyquiet", &[("app.py", APP)], &cfg);
        assert_eq!(line(&d.addr("quiet"), "x"), "sorry\n", "{mixin}");
        assert_eq!(line(&d.addr("quiet"), "y"), "sorry\n", "{mixin}");
        let (_, log) = d.stop();
        assert!(!log.contains("quietly-handled"), "{mixin}:\n{log}");
        assert!(!log.contains(" ERROR "), "{mixin}:\n{log}");
    }
}

/// Protects: thread mode keeps ThreadingMixIn's per-request thread
/// semantics while request threads are reused: `threading.local` is fresh
/// for every request and the request's thread is non-daemon (the
/// default `daemon_threads = False`), one request after another.
#[test]
fn thread_locals_are_fresh_for_every_request() {
    let cfg = py_listener("fresh", "inet", "stream", "thread", "app:Fresh", "", "");
    let d = start_with("pyfresh", &[("app.py", APP)], &cfg);
    for _ in 0..8 {
        let reply = line(&d.addr("fresh"), "x");
        assert!(reply.starts_with("None False "), "{reply}\n{}", d.log());
    }
}
