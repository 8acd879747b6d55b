//! How a Python listener's worker ends: as the user's script would under
//! CPython. After SIGTERM, or when a reload retires it, a worker runs
//! `server.server_close()`, then finalizes the interpreter: `atexit`
//! functions run, unterminated output and files the handler left open are
//! flushed; in fork mode only in the worker, never in a request child
//! (`os._exit` semantics). Non-daemon threads the handler started are
//! joined, but not past `shutdown_timeout`; daemon threads delay nothing.

mod common;

use common::py::*;
use common::*;
use std::time::{Duration, Instant};

const APP: &str = r#"
import atexit, os, socketserver, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.getpid()
# Written by each request, never flushed or closed by the handler.
OUT = open(os.path.join(HERE, "buffered"), "w")


def note(text):
    with open(os.path.join(HERE, "events"), "a") as f:
        f.write(text + "\n")


@atexit.register
def boom():
    # Runs last (atexit is last in, first out): its error goes to the log.
    raise ValueError("atexit-boom %d" % os.getpid())


@atexit.register
def at_exit():
    note("atexit %d" % os.getpid())
    # No newline: only the interpreter's last flush sends it to the log.
    sys.stdout.write("atexit-tail %d" % os.getpid())


class Server(socketserver.TCPServer):
    def server_close(self):
        note("server_close %d" % os.getpid())
        super().server_close()


def spin():
    while True:
        print("spinning")
        sum(range(1000))
        time.sleep(0.005)


def forever():
    while True:
        time.sleep(0.05)


def late():
    time.sleep(1.0)
    note("late done %d" % os.getpid())


class Exit(socketserver.StreamRequestHandler):
    def handle(self):
        cmd = self.rfile.readline().strip()
        if cmd == b"daemon":
            threading.Thread(target=spin, name="spinner", daemon=True).start()
        elif cmd == b"threads":
            threading.Thread(target=late, name="late").start()
            threading.Thread(target=forever, name="forever").start()
        OUT.write("request %d\n" % os.getpid())
        self.wfile.write(b"%d %d\n" % (WORKER, os.getpid()))
"#;

/// A daemon serving `app:Exit` (with `app:Server`) in `mixin`.
fn start(tag: &str, mixin: &str, shutdown_timeout: f64) -> Daemon {
    let cfg = format!("[daemon]\nshutdown_timeout = {shutdown_timeout:?}\n\n")
        + &py_listener(
            "exit",
            "inet",
            "stream",
            mixin,
            "app:Exit",
            "",
            "server = \"app:Server\"",
        );
    start_with(tag, &[("app.py", APP)], &cfg)
}

/// One request: (the worker's pid, the pid that ran `handle`).
fn request(d: &Daemon, line: &str) -> (u32, u32) {
    let reply = stream_exchange(&d.addr("exit"), format!("{line}\n").as_bytes());
    let text = String::from_utf8_lossy(&reply).into_owned();
    let pids: Vec<u32> = text
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    match pids[..] {
        [worker, handler] => (worker, handler),
        _ => panic!("unexpected reply {text:?}\n{}", d.log()),
    }
}

fn lines_of(d: &Daemon, file: &str) -> Vec<String> {
    std::fs::read_to_string(d.dir.join(file))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// SIGTERM and wait for the daemon to exit (its files stay until `d`
/// drops); returns how long the stop took.
fn stop_and_wait(d: &mut Daemon) -> Duration {
    let started = Instant::now();
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(DEADLINE).expect("daemon stopped");
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(50)); // let the log drain
    assert!(status.success(), "{status}\n{}", d.log());
    took
}

/// The worker's own exit was clean (not the SIGALRM backstop, no crash).
fn assert_worker_exited_cleanly(d: &Daemon, worker: u32) {
    let log = d.log();
    assert!(
        log.contains(&format!(
            "worker {worker} finished draining (exit status 0)"
        )),
        "{log}"
    );
}

/// Protects: on SIGTERM a worker of every mixin runs `server_close`, then
/// its `atexit` functions, once, in the worker itself (fork: none in the
/// request children, whose pids are not in the file); output left
/// without a newline reaches the log, and a file the handler never
/// flushed is flushed (sync, thread: the writes happened in the worker);
/// an atexit function's exception is logged and the worker still exits 0.
#[test]
fn atexit_runs_when_a_worker_stops_in_every_mixin() {
    for mixin in ["sync", "thread", "fork"] {
        let mut d = start("pyexit", mixin, 10.0);
        let served: Vec<(u32, u32)> = (0..3).map(|_| request(&d, "x")).collect();
        let worker = served[0].0;
        for &(w, handler) in &served {
            assert_eq!(w, worker, "{mixin}");
            assert_eq!(handler == worker, mixin != "fork", "{mixin}: {served:?}");
        }
        assert!(
            lines_of(&d, "events").is_empty(),
            "{mixin}: nothing ran yet"
        );

        stop_and_wait(&mut d);
        assert_eq!(
            lines_of(&d, "events"),
            [format!("server_close {worker}"), format!("atexit {worker}")],
            "{mixin}: request children {served:?}\n{}",
            d.log()
        );
        let log = d.log();
        assert!(
            log.contains(&format!("atexit-tail {worker}"))
                && log.contains(&format!("ValueError: atexit-boom {worker}")),
            "{mixin}: {log}"
        );
        if mixin != "fork" {
            assert_eq!(
                lines_of(&d, "buffered"),
                vec![format!("request {worker}"); 3],
                "{mixin}"
            );
        }
        assert_worker_exited_cleanly(&d, worker);
    }
}

/// Protects: a worker that a reload retires (its module was edited) ends
/// the same way, in every mixin, while the new generation serves on.
#[test]
fn atexit_runs_when_a_reload_retires_the_worker() {
    for mixin in ["sync", "thread", "fork"] {
        let d = start("pyexitre", mixin, 10.0);
        let (old, _) = request(&d, "x");
        d.dir.write("app.py", &format!("{APP}\n# edited\n"));
        let outcome = reload_outcome(&d);
        assert!(outcome.contains("changed [exit]"), "{mixin}: {outcome}");
        let retired = wait_for(DEADLINE, || {
            let events = lines_of(&d, "events");
            events.contains(&format!("atexit {old}")).then_some(events)
        });
        assert_eq!(
            retired,
            Some(vec![format!("server_close {old}"), format!("atexit {old}")]),
            "{mixin}\n{}",
            d.log()
        );
        assert!(
            d.wait_log(&format!("atexit-tail {old}"), DEADLINE),
            "{mixin}"
        );
        let (new, _) = request(&d, "x");
        assert_ne!(new, old, "{mixin}: a new worker serves");
        d.stop();
    }
}

/// Protects: a daemon thread a handler left running (printing, computing)
/// does not hold the stop up: the worker finalizes and exits at once
/// (well within `shutdown_timeout`), with its atexit function run.
#[test]
fn a_daemon_thread_left_running_does_not_delay_the_stop() {
    for mixin in ["sync", "thread"] {
        let mut d = start("pyexitdt", mixin, 5.0);
        let (worker, _) = request(&d, "daemon");
        assert!(d.wait_log("spinning", DEADLINE), "{mixin}");
        let took = stop_and_wait(&mut d);
        assert!(
            took < Duration::from_secs(3),
            "{mixin}: the stop took {took:?}\n{}",
            d.log()
        );
        assert_eq!(
            lines_of(&d, "events"),
            [format!("server_close {worker}"), format!("atexit {worker}")],
            "{mixin}"
        );
        assert_worker_exited_cleanly(&d, worker);
    }
}

/// Protects: non-daemon threads are joined before the atexit functions run,
/// as at the end of a script, but only for what is left of
/// `shutdown_timeout`: one that ends in time is waited for, one that never
/// ends is named in a warning and left behind, and the worker still runs
/// its atexit functions and exits 0 (not killed by the SIGALRM backstop).
#[test]
fn non_daemon_threads_are_joined_up_to_shutdown_timeout() {
    for mixin in ["sync", "thread"] {
        let mut d = start("pyexitnd", mixin, 2.0);
        let (worker, _) = request(&d, "threads");
        let took = stop_and_wait(&mut d);
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_secs(3),
            "{mixin}: the stop took {took:?}\n{}",
            d.log()
        );
        assert_eq!(
            lines_of(&d, "events"),
            [
                format!("server_close {worker}"),
                format!("late done {worker}"),
                format!("atexit {worker}")
            ],
            "{mixin}\n{}",
            d.log()
        );
        let log = d.log();
        assert!(
            log.contains("1 non-daemon threads still running at exit") && log.contains("'forever'"),
            "{mixin}: {log}"
        );
        assert_worker_exited_cleanly(&d, worker);
    }
}
