//! threading in fork-mode request children. The worker lets threading's
//! after-fork hook skip its rebuild when it forks from its only thread
//! with no other live thread known to threading (plugins/python fork.rs);
//! these tests hold what a handler sees to what CPython's own fork gives
//! it either way, and check which way each fork went: the skipped rebuild
//! keeps the lock object threading had in the worker, the full one makes
//! a new one.

mod common;

use common::py::*;
use common::Daemon;

/// Both apps' handler. At import (in the worker) it keeps threading's
/// `_active_limbo_lock`, so a request child can tell whether threading's
/// after-fork rebuild ran (it replaces that lock). The reply: one
/// `key=value` per fact a handler relies on.
const QUIET: &str = r#"
import os, random, socketserver, threading

WORKER_LOCK = threading._active_limbo_lock


def facts():
    main = threading.main_thread()
    # Before any thread starts here: a new thread can reuse a stale entry's ident.
    only_main = threading.enumerate() == [main]
    seen = []
    t = threading.Thread(target=lambda: seen.append(threading.current_thread().name))
    t.start()
    t.join(5)
    return {
        "rebuilt": threading._active_limbo_lock is not WORKER_LOCK,
        "current_is_main": threading.current_thread() is main,
        "only_main": only_main and threading.enumerate() == [main],
        "thread_ran": seen == [t.name] and not t.is_alive(),
        "count_after": threading.active_count(),
        "random": random.getrandbits(64),
    }


class Threads(socketserver.BaseRequestHandler):
    def handle(self):
        what = self.request.recv(100).strip()
        out = facts()
        if what == b"nested":
            # A fork the handler makes itself: threading's hook in full.
            mine = threading._active_limbo_lock
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                f = facts()
                ok = (threading._active_limbo_lock is not mine and f["current_is_main"]
                      and f["only_main"] and f["thread_ran"])
                os.write(w, b"1" if ok else b"0")
                os._exit(0)
            os.close(w)
            out["grandchild_ok"] = os.read(r, 1) == b"1"
            os.waitpid(pid, 0)
        if what == b"dangling":
            import app_dangling
            out["dangling_stopped"] = app_dangling.ENDED._is_stopped
        self.request.sendall(" ".join(f"{k}={v}" for k, v in out.items()).encode())
"#;

/// A worker that ran a thread at import and kept its Thread object without
/// joining it: threading still lists it (`_dangling`, not yet seen to end),
/// so every child must get the full rebuild, which marks it stopped.
const DANGLING: &str = r#"
import os, threading, time
from app import Threads  # noqa: F401

ENDED = threading.Thread(target=lambda: None)
ENDED.start()
# Until the thread's OS thread is gone (a worker forks only when it is
# single-threaded); never joined, so threading has not seen it end.
deadline = time.monotonic() + 10
while len(os.listdir("/proc/self/task")) > 1 and time.monotonic() < deadline:
    time.sleep(0.01)
"#;

/// A worker whose Python runs outside any server hook between forks: an
/// `after_in_parent` at-fork hook that, after the first fork, leaves
/// threading a `_DummyThread` of a raw thread that has ended. CPython's
/// child drops it from the thread table; so must every later child here.
const LATE: &str = r#"
import _thread, os, threading, time
from app import Threads  # noqa: F401

calls = [0]


def after_parent():
    calls[0] += 1
    if calls[0] == 1:
        _thread.start_new_thread(threading.current_thread, ())
        deadline = time.monotonic() + 10
        while len(os.listdir("/proc/self/task")) > 1 and time.monotonic() < deadline:
            time.sleep(0.01)


os.register_at_fork(after_in_parent=after_parent)
"#;

fn facts(addr: &str, what: &str) -> std::collections::HashMap<String, String> {
    let reply = String::from_utf8_lossy(&stream_exchange(addr, what.as_bytes())).into_owned();
    reply
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn start() -> Daemon {
    let cfg = format!(
        "{}{}{}",
        py_listener("quiet", "inet", "stream", "fork", "app:Threads", "", ""),
        py_listener(
            "dangling",
            "inet",
            "stream",
            "fork",
            "app_dangling:Threads",
            "",
            ""
        ),
        py_listener("late", "inet", "stream", "fork", "app_late:Threads", "", "")
    );
    start_with(
        "pyforkthreads",
        &[
            ("app.py", QUIET),
            ("app_dangling.py", DANGLING),
            ("app_late.py", LATE),
        ],
        &cfg,
    )
}

fn assert_like_cpython(f: &std::collections::HashMap<String, String>) {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("missing");
    assert_eq!(get("current_is_main"), "True", "{f:?}");
    assert_eq!(get("only_main"), "True", "{f:?}");
    assert_eq!(get("thread_ran"), "True", "{f:?}");
    assert_eq!(get("count_after"), "1", "{f:?}");
}

/// Protects: a child of the single-threaded worker skips threading's
/// rebuild (the lock threading had in the worker is still its lock), and
/// the handler sees what CPython's fork gives it: its thread is the main
/// thread, the only one; threads it starts run and are joined; `random`
/// is still reseeded in every child (another after-fork hook).
#[test]
fn children_of_a_quiet_worker_skip_the_rebuild_and_see_cpythons_threading() {
    let d = start();
    let addr = d.addr("quiet");
    let mut draws = std::collections::HashSet::new();
    for _ in 0..5 {
        let f = facts(&addr, "plain");
        assert_eq!(f.get("rebuilt").map(String::as_str), Some("False"), "{f:?}");
        assert_like_cpython(&f);
        draws.insert(f.get("random").cloned().unwrap_or_default());
    }
    assert_eq!(
        draws.len(),
        5,
        "random is reseeded in each child: {draws:?}"
    );
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

/// Protects: an `os.fork()` the handler makes in its request child runs
/// threading's hook in full (the verdict is the worker's fork's only), and
/// the grandchild's threading works.
#[test]
fn a_fork_inside_the_handler_gets_the_full_rebuild() {
    let d = start();
    let f = facts(&d.addr("quiet"), "nested");
    assert_eq!(
        f.get("grandchild_ok").map(String::as_str),
        Some("True"),
        "{f:?}"
    );
    assert_like_cpython(&f);
    d.stop();
}

/// Protects: a worker whose threading still lists another thread (ended,
/// never joined) forks with the full rebuild, which marks that thread
/// stopped in the child, as CPython's fork does.
#[test]
fn a_worker_with_a_thread_threading_has_not_seen_end_forks_in_full() {
    let d = start();
    let f = facts(&d.addr("dangling"), "dangling");
    assert_eq!(f.get("rebuilt").map(String::as_str), Some("True"), "{f:?}");
    assert_eq!(
        f.get("dangling_stopped").map(String::as_str),
        Some("True"),
        "{f:?}"
    );
    assert_like_cpython(&f);
    d.stop();
}

/// Protects: the verdict is taken at each fork, not cached from the last
/// server hook: Python that ran in the worker since (another module's
/// at-fork hook) and left threading another thread gets the full rebuild.
#[test]
fn python_run_by_another_at_fork_hook_is_seen_by_the_next_fork() {
    let d = start();
    let addr = d.addr("late");
    for _ in 0..3 {
        assert_like_cpython(&facts(&addr, "plain"));
    }
    d.stop();
}
