//! ABI 1.1 against the real daemon: a 1.1 plugin's fork hooks run around
//! each request fork (before_fork and after_fork_parent in the worker,
//! after_fork_child in the child before setup), and a plugin built against
//! the 1.0 tables (no fork hooks, minor 0) still loads and serves in fork
//! mode.

mod common;

use common::*;
use std::io::Write;
use std::path::Path;

/// The hooks fixture's record as (hook, pid) pairs.
fn record(path: &Path) -> Vec<(String, i32)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (hook, pid) = l.split_once(' ')?;
            Some((hook.to_string(), pid.parse().ok()?))
        })
        .collect()
}

/// Protects: in fork mode a 1.1 plugin gets before_fork then
/// after_fork_parent in the worker, and after_fork_child in the child
/// before its setup, once per request.
#[test]
fn fork_hooks_run_around_each_request_fork() {
    let dir = TestDir::new("abi11");
    let rec = dir.join("record");
    let extra = format!("[listener.config]\nrecord = \"{}\"\n", rec.display());
    let fixture = plugin("sockhost_fixture_hooks");
    let cfg = listener(
        "h",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        &fixture,
        &extra,
    );
    let d = Daemon::start(&cfg);
    let worker = worker(&d, "h");
    for _ in 0..2 {
        let mut s = Stream::connect(&d.addr("h")).expect("connect");
        s.write_all(b"HELLO\n").expect("send");
        assert_eq!(s.read_all().expect("reply"), b"OK\n");
    }
    let done = wait_for(DEADLINE, || {
        let r = record(&rec);
        (r.iter().filter(|(h, _)| h == "finish").count() == 2).then_some(r)
    });
    let r = done.unwrap_or_else(|| panic!("two requests not recorded: {:?}", record(&rec)));
    let of = |hook: &str| -> Vec<i32> {
        r.iter()
            .filter(|(h, _)| h == hook)
            .map(|(_, p)| *p)
            .collect()
    };
    assert_eq!(of("before_fork"), vec![worker, worker], "{r:?}");
    assert_eq!(of("after_fork_parent"), vec![worker, worker], "{r:?}");
    let children = of("after_fork_child");
    assert_eq!(
        children,
        of("setup"),
        "the child runs after_fork_child: {r:?}"
    );
    assert!(children.iter().all(|&c| c != worker), "{r:?}");
    for child in children {
        let mine: Vec<&str> = r
            .iter()
            .filter(|(_, p)| *p == child)
            .map(|(h, _)| h.as_str())
            .collect();
        assert_eq!(
            mine,
            ["after_fork_child", "setup", "handle", "finish"],
            "{r:?}"
        );
    }
    let first = |hook: &str| r.iter().position(|(h, _)| h == hook);
    assert!(
        first("before_fork") < first("after_fork_parent"),
        "before_fork comes first: {r:?}"
    );
    d.stop();
}

/// Protects: a plugin built against ABI 1.0 (its record says minor 0, its
/// table has no fork hooks) loads under a 1.1 daemon and serves in fork
/// mode, each request in its own child of the worker.
#[test]
fn a_plugin_built_for_abi_1_0_serves_in_fork_mode() {
    let old = plugin("sockhost_fixture_abi_1_0");
    let cfg = listener("old", "inet", "stream", "127.0.0.1:0", "fork", &old, "");
    let d = Daemon::start(&cfg);
    let worker = worker(&d, "old");
    let mut pids = Vec::new();
    for _ in 0..3 {
        let line = stream_cmd(&d.addr("old"), "");
        let rest = line
            .strip_prefix("abi 1.0 pid=")
            .unwrap_or_else(|| panic!("unexpected reply {line:?}"));
        let (pid, ppid) = rest.split_once(" ppid=").expect("pid and ppid");
        let (pid, ppid): (i32, i32) = (pid.parse().expect("pid"), ppid.parse().expect("ppid"));
        assert_eq!(ppid, worker, "forked by the worker");
        assert_ne!(pid, worker, "served in a child");
        pids.push(pid);
    }
    pids.dedup();
    assert_eq!(pids.len(), 3, "a child per request");
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}
