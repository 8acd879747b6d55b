//! `cpu_affinity`: which CPUs a listener's workers run on, read back from
//! each real worker's `/proc/PID/status` (`Cpus_allowed_list`). A Python
//! thread-mode worker (its plugin asks for one CPU: its request threads
//! take turns on the GIL) is kept on one CPU by default, its workers on
//! different ones when the daemon may use two, and so is each of several
//! sync workers; `"all"` spreads them; a plugin that does not ask (echo),
//! fork mode and a lone sync worker are left where the daemon is; `"one"` keeps any listener's worker on one CPU. The bad
//! value is in tests/corpus/bad-configs.

mod common;

use common::procfs::{child_pids, comm, is_dead};
use common::py::*;
use common::{listener, plugin, Daemon};

/// The CPUs a process may run on, as the kernel lists them ("0-1", "0,2").
fn cpus_of(pid: &str) -> Vec<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or("")
        .trim()
        .to_string();
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
                cpus.extend(a..=b);
            }
            None => cpus.extend(part.parse::<usize>().ok()),
        }
    }
    cpus
}

/// The live workers of listener `name`, with the CPUs each may use.
fn workers(d: &Daemon, name: &str) -> Vec<Vec<usize>> {
    let mut want = format!("shd:{name}");
    want.truncate(15);
    child_pids(d.pid())
        .into_iter()
        .filter(|&w| !is_dead(w) && comm(w, w) == want)
        .map(|w| cpus_of(&w.to_string()))
        .collect()
}

const APP: &str = r#"
import socketserver


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(self.request.recv(100))
"#;

fn start() -> Daemon {
    let echo = plugin("sockhost_echo");
    let cfg = [
        py_listener(
            "pythread",
            "inet",
            "stream",
            "thread",
            "app:Echo",
            "workers = 2",
            "",
        ),
        py_listener(
            "pyall",
            "inet",
            "stream",
            "thread",
            "app:Echo",
            "cpu_affinity = \"all\"",
            "",
        ),
        py_listener("pyfork", "inet", "stream", "fork", "app:Echo", "", ""),
        py_listener(
            "pysync2",
            "inet",
            "stream",
            "sync",
            "app:Echo",
            "workers = 2",
            "",
        ),
        py_listener("pysync", "inet", "stream", "sync", "app:Echo", "", ""),
        listener(
            "echothread",
            "inet",
            "stream",
            "127.0.0.1:0",
            "thread",
            &echo,
            "",
        ),
        listener(
            "echoone",
            "inet",
            "stream",
            "127.0.0.1:0",
            "sync",
            &echo,
            "cpu_affinity = \"one\"",
        ),
    ]
    .concat();
    start_with("cpuaffinity", &[("app.py", APP)], &cfg)
}

/// Protects: the default places the two workers of a Python thread-mode
/// listener, and of a sync one with `workers = 2`, on one CPU each
/// (different ones when the daemon may use two or more) and says so in the
/// log; they still serve; `cpu_affinity = "all"`, a fork-mode Python
/// worker, a lone sync one and an echo thread worker keep the daemon's
/// CPUs; `"one"` keeps even an echo worker on one.
#[test]
fn python_thread_workers_are_kept_on_one_cpu_each_and_the_rest_where_the_daemon_is() {
    let daemon_cpus = cpus_of("self");
    assert!(!daemon_cpus.is_empty(), "this process's CPUs");
    let d = start();
    for name in ["pythread", "pysync2"] {
        let py = workers(&d, name);
        assert_eq!(py.len(), 2, "{name}: two workers: {py:?}\n{}", d.log());
        for w in &py {
            assert_eq!(w.len(), 1, "{name}: one CPU per worker: {py:?}");
            assert!(daemon_cpus.contains(&w[0]), "{py:?} within {daemon_cpus:?}");
        }
        if daemon_cpus.len() >= 2 {
            assert_ne!(py[0], py[1], "{name}: spread over the CPUs: {py:?}");
        }
        let kept = d
            .log()
            .lines()
            .filter(|l| {
                l.contains("worker kept on CPU") && l.contains(&format!("listener={name} "))
            })
            .count();
        assert_eq!(kept, 2, "{name}: {}", d.log());
        assert_eq!(stream_exchange(&d.addr(name), b"hello"), b"hello");
    }
    for name in ["pyall", "pyfork", "pysync", "echothread"] {
        let w = workers(&d, name);
        assert_eq!(
            w,
            vec![daemon_cpus.clone()],
            "{name} keeps the daemon's CPUs"
        );
    }
    let one = workers(&d, "echoone");
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0].len(), 1, "cpu_affinity = \"one\": {one:?}");
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

/// Protects: workers of different listeners kept on one CPU take
/// different CPUs while the daemon has CPUs to spare, whatever listeners
/// stand between them in the config (a listener left where the daemon is
/// takes no CPU from them).
#[test]
fn two_python_thread_listeners_take_different_cpus() {
    let daemon_cpus = cpus_of("self");
    if daemon_cpus.len() < 2 {
        eprintln!("SKIPPED: this process may use one CPU only");
        return;
    }
    let echo = plugin("sockhost_echo");
    let cfg = [
        py_listener("pya", "inet", "stream", "thread", "app:Echo", "", ""),
        listener("echo", "inet", "stream", "127.0.0.1:0", "sync", &echo, ""),
        py_listener("pyb", "inet", "stream", "thread", "app:Echo", "", ""),
    ]
    .concat();
    let d = start_with("cpuaffinity2", &[("app.py", APP)], &cfg);
    let (a, b) = (workers(&d, "pya"), workers(&d, "pyb"));
    assert_eq!((a.len(), b.len()), (1, 1), "{a:?} {b:?}");
    assert_eq!(
        (a[0].len(), b[0].len()),
        (1, 1),
        "one CPU each: {a:?} {b:?}"
    );
    assert_ne!(a[0], b[0], "different CPUs: {a:?} {b:?}\n{}", d.log());
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}
