//! The server side of a Python listener: attributes a custom server's
//! `__init__` sets, its `verify_request`, `service_actions`,
//! `handle_timeout` and `handle_error` called where socketserver calls
//! them, tracebacks in the daemon's log, StreamRequestHandler's class
//! attributes, and handlers that start
//! threads of their own.

mod common;

use common::py::*;
use common::*;
use std::time::Duration;

const APP: &str = r#"
import logging, os, socket, socketserver, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))


def note(name, text):
    with open(os.path.join(HERE, name), "a") as f:
        f.write(text + "\n")


class Server(socketserver.TCPServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.greeting = b"hello from __init__"

    def verify_request(self, request, client_address):
        return not os.path.exists(os.path.join(HERE, "deny"))

    def service_actions(self):
        note("service_actions", str(os.getpid()))

    def handle_timeout(self):
        note("handle_timeout", str(os.getpid()))

    def handle_error(self, request, client_address):
        kind = sys.exc_info()[0].__name__
        request.sendall(b"handle_error saw " + kind.encode() + b"\n")
        super().handle_error(request, client_address)


class Attrs(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().strip()
        if line == b"BOOM":
            raise ValueError("boom-" + str(os.getpid()))
        s = self.server
        self.wfile.write(b" ".join([s.greeting, type(s).__name__.encode(),
                                    str(s.server_address == s.socket.getsockname()).encode(),
                                    str(os.getpid()).encode()]) + b"\n")


class Tuned(socketserver.StreamRequestHandler):
    timeout = 0.3
    disable_nagle_algorithm = True
    wbufsize = -1          # buffered: finish() flushes it
    rbufsize = 0

    def handle(self):
        nodelay = self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        self.wfile.write(b"nodelay=%d timeout=%r\n" % (nodelay != 0, self.connection.gettimeout()))
        self.rfile.readline()   # the client sends nothing: socket.timeout


class Ext(socketserver.StreamRequestHandler):
    def handle(self):
        import _json, _ssl, hashlib, json, select, ssl
        reply = [json.dumps({"a": 1}), hasattr(select, "poll"), ssl.OPENSSL_VERSION.split()[0],
                 hashlib.sha256(b"x").hexdigest()[:8], _json.__name__, _ssl.__name__]
        self.wfile.write(repr(reply).encode() + b"\n")


ticks = [0]        # ticker turns while no request was in handle
active = [0]


def tick():
    while True:
        if active[0] == 0:
            ticks[0] += 1
        time.sleep(0.01)


class Threads(socketserver.StreamRequestHandler):
    def handle(self):
        active[0] += 1
        try:
            if not any(t.name == "ticker" for t in threading.enumerate()):
                threading.Thread(target=tick, name="ticker", daemon=True).start()
            out = []
            t = threading.Thread(target=lambda: out.append(b"from a thread"))
            t.start()
            t.join()
            self.wfile.write(out[0] + b" ticks=%d\n" % ticks[0])
        finally:
            active[0] -= 1
"#;

fn stream_line(addr: &str, line: &str) -> String {
    String::from_utf8_lossy(&stream_exchange(addr, format!("{line}\n").as_bytes())).into_owned()
}

fn lines_of(d: &Daemon, file: &str) -> Vec<String> {
    std::fs::read_to_string(d.dir.join(file))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Protects: the configured server class is built with its own
/// `__init__` (its attributes kept), given the listening socket, and its
/// `server_address` is the socket's; `handle_error` runs with the
/// exception being handled and the connection still open, the default
/// traceback reaches the log, and the worker keeps serving (every mixin).
#[test]
fn custom_server_attributes_and_handle_error() {
    for mixin in ["sync", "thread", "fork"] {
        let cfg = py_listener(
            "attrs",
            "inet",
            "stream",
            mixin,
            "app:Attrs",
            "",
            "server = \"app:Server\"",
        );
        let d = start_with("pysrv", &[("app.py", APP)], &cfg);
        let worker = worker(&d, "attrs");
        let reply = stream_line(&d.addr("attrs"), "HI");
        assert!(
            reply.starts_with("hello from __init__ Server True "),
            "{mixin}: {reply:?}"
        );
        let reply = stream_line(&d.addr("attrs"), "BOOM");
        assert_eq!(reply, "handle_error saw ValueError\n", "{mixin}");
        assert!(d.wait_log("ValueError: boom-", DEADLINE), "{}", d.log());
        let log = d.log();
        for needle in [
            "Exception occurred during processing of request from ('127.0.0.1', ",
            "Traceback (most recent call last):",
            "raise ValueError(\"boom-\" + str(os.getpid()))",
        ] {
            assert!(log.contains(needle), "{mixin}: no {needle:?} in\n{log}");
        }
        let again = stream_line(&d.addr("attrs"), "HI");
        assert!(
            again.starts_with("hello from __init__"),
            "{mixin}: {again:?}"
        );
        assert_eq!(worker_of(d.pid(), "attrs"), Some(worker), "same worker");
        d.stop();
    }
}

/// Protects: `verify_request` refusing closes the connection unanswered;
/// `service_actions` and `handle_timeout` (with `timeout`) run in the
/// worker process itself.
#[test]
fn verify_request_service_actions_and_handle_timeout() {
    let cfg = py_listener(
        "hooks",
        "inet",
        "stream",
        "fork",
        "app:Attrs",
        "timeout = 0.2",
        "server = \"app:Server\"",
    );
    let d = start_with("pyhooks", &[("app.py", APP)], &cfg);
    let worker = worker(&d, "hooks").to_string();
    assert!(stream_line(&d.addr("hooks"), "HI").starts_with("hello"));
    d.dir.write("deny", "");
    assert_eq!(stream_line(&d.addr("hooks"), "HI"), "", "refused");
    std::fs::remove_file(d.dir.join("deny")).expect("rm deny");
    assert!(stream_line(&d.addr("hooks"), "HI").starts_with("hello"));
    let timeouts = wait_for(DEADLINE, || {
        let l = lines_of(&d, "handle_timeout");
        (l.len() >= 2).then_some(l)
    })
    .unwrap_or_else(|| panic!("handle_timeout did not run:\n{}", d.log()));
    assert!(timeouts.iter().all(|p| *p == worker), "{timeouts:?}");
    let turns = lines_of(&d, "service_actions");
    assert!(turns.len() >= 3, "{turns:?}");
    assert!(turns.iter().all(|p| *p == worker), "{turns:?}");
    d.stop();
}

/// Protects: extension modules (`_socket`, `select`, `_json`, `_ssl`,
/// `_hashlib`) import inside the daemon, which loads the plugin RTLD_LOCAL.
#[test]
fn extension_modules_import() {
    let cfg = py_listener("ext", "inet", "stream", "fork", "app:Ext", "", "");
    let d = start_with("pyext", &[("app.py", APP)], &cfg);
    assert_eq!(
        stream_line(&d.addr("ext"), "x"),
        "['{\"a\": 1}', True, 'OpenSSL', '2d711642', '_json', '_ssl']\n",
        "{}",
        d.log()
    );
    d.stop();
}

/// Protects: StreamRequestHandler's `timeout`, `disable_nagle_algorithm`,
/// `wbufsize` and `rbufsize` act on the real connection: the buffered
/// reply is flushed by finish even though handle timed out.
#[test]
fn stream_handler_class_attributes_apply() {
    let cfg = py_listener("tuned", "inet", "stream", "sync", "app:Tuned", "", "");
    let d = start_with("pytuned", &[("app.py", APP)], &cfg);
    let mut s = Stream::connect(&d.addr("tuned")).expect("connect");
    let reply = s.read_all().expect("read");
    assert_eq!(String::from_utf8_lossy(&reply), "nodelay=1 timeout=0.3\n");
    assert!(d.wait_log("TimeoutError", DEADLINE), "{}", d.log());
    d.stop();
}

/// Protects: a handler that starts threads works in sync and thread mode,
/// and a thread it leaves running keeps running while no request is in
/// `handle` (the worker does not hold the GIL while it waits).
#[test]
fn handler_threads_work_in_sync_and_thread_mode() {
    for mixin in ["sync", "thread"] {
        let cfg = py_listener("thr", "inet", "stream", mixin, "app:Threads", "", "");
        let d = start_with("pythr", &[("app.py", APP)], &cfg);
        let first = stream_line(&d.addr("thr"), "x");
        assert!(
            first.starts_with("from a thread ticks="),
            "{mixin}: {first:?}"
        );
        let idle_ticks = wait_for(DEADLINE, || {
            std::thread::sleep(Duration::from_millis(100));
            let reply = stream_line(&d.addr("thr"), "x");
            let n: u64 = reply.trim().rsplit('=').next()?.parse().ok()?;
            (n >= 3).then_some(n)
        });
        assert!(
            idle_ticks.is_some(),
            "{mixin}: the handler's thread did not run between requests\n{}",
            d.log()
        );
        d.stop();
    }
}
