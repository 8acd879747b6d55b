//! Python listeners under load: 1,000 fork-mode requests with an
//! `os.register_at_fork` hook that holds a lock across each fork (CPython's
//! fork protocol must run it and leave no lock held: no deadlock, no lost
//! request), and requests that overlap in thread and fork mode (each waits
//! until all N are inside `handle` at once, so a serialising daemon would
//! time out).

mod common;

use common::py::*;

const APP: &str = r#"
import logging, os, socketserver, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
lock = threading.Lock()
counts = {"before": 0, "parent": 0, "child": 0}


def before():
    counts["before"] += 1
    lock.acquire()


def parent():
    counts["parent"] += 1
    lock.release()


def child():
    counts["child"] += 1
    lock.release()


os.register_at_fork(before=before, after_in_parent=parent, after_in_child=child)


class Fork(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.recv(100)
        free = lock.acquire(timeout=5)
        if free:
            lock.release()
        logging.getLogger("fork").debug("request in %d", os.getpid())
        c = counts
        self.request.sendall(b"%d %d %d %s\n" % (c["before"], c["parent"], c["child"], str(free).encode()))


class Together(socketserver.StreamRequestHandler):
    """Waits until N requests are inside handle at the same time."""
    def handle(self):
        n = int(self.rfile.readline())
        mark = os.path.join(HERE, "in-%d-%d" % (os.getpid(), threading.get_ident()))
        open(mark, "w").close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if sum(f.startswith("in-") for f in os.listdir(HERE)) >= n:
                self.wfile.write(b"together\n")
                return
            time.sleep(0.01)
        self.wfile.write(b"alone\n")
"#;

/// Protects: 1,000 fork-mode requests (four clients at once) each run the
/// register_at_fork hooks (before and after_in_parent in the worker,
/// after_in_child in the child), find the hook's lock free in the child,
/// and are all answered.
#[test]
fn a_thousand_forks_with_a_register_at_fork_hook() {
    let cfg = py_listener("fork", "inet", "stream", "fork", "app:Fork", "", "");
    let d = start_with("pyfork", &[("app.py", APP)], &cfg);
    let addr = d.addr("fork");
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                for _ in 0..250 {
                    let reply =
                        String::from_utf8_lossy(&stream_exchange(&addr, b"go")).into_owned();
                    let f: Vec<&str> = reply.split_whitespace().collect();
                    let num = |i: usize| f.get(i).and_then(|n| n.parse::<u64>().ok());
                    assert_eq!(f.len(), 4, "{reply:?}");
                    assert_eq!(
                        f[3], "True",
                        "the hook's lock is free in the child: {reply:?}"
                    );
                    assert_eq!(num(2), Some(1), "after_in_child ran once: {reply:?}");
                    let (before, parent) = (num(0).unwrap_or(0), num(1).unwrap_or(0));
                    assert_eq!(before, parent + 1, "{reply:?}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client thread");
    }
    let last = String::from_utf8_lossy(&stream_exchange(&addr, b"go")).into_owned();
    assert_eq!(last, "1001 1000 1 True\n", "every fork ran the hooks");
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

fn together(mixin: &str, n: usize) {
    let cfg = py_listener("tog", "inet", "stream", mixin, "app:Together", "", "");
    let d = start_with(&format!("pytog-{mixin}"), &[("app.py", APP)], &cfg);
    let addr = d.addr("tog");
    let clients: Vec<_> = (0..n)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || stream_exchange(&addr, format!("{n}\n").as_bytes()))
        })
        .collect();
    for c in clients {
        let reply = c.join().expect("client thread");
        assert_eq!(String::from_utf8_lossy(&reply), "together\n", "{mixin}");
    }
    d.stop();
}

/// Protects: in thread mode N requests run in handle at the same time.
#[test]
fn requests_overlap_in_thread_mode() {
    together("thread", 6);
}

/// Protects: in fork mode N requests run in handle at the same time.
#[test]
fn requests_overlap_in_fork_mode() {
    together("fork", 6);
}
