//! Graceful stop is bounded: a request that never finishes cannot keep a
//! stopping daemon alive past `shutdown_timeout` plus a short grace, in any
//! mixin, and a flood of queued requests cannot delay the stop.

mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn a_stuck_request_cannot_hold_a_stop_beyond_shutdown_timeout() {
    let probe = plugin("sockhost_probe");
    let mut cfg = String::from("[daemon]\nshutdown_timeout = 1.0\n");
    for mixin in ["sync", "thread", "fork"] {
        cfg.push_str(&listener(
            mixin,
            "inet",
            "stream",
            "127.0.0.1:0",
            mixin,
            &probe,
            "",
        ));
    }
    let d = Daemon::start(&cfg);
    let mut stuck = Vec::new();
    for mixin in ["sync", "thread", "fork"] {
        let mut p = Probe::connect(&d.addr(mixin));
        assert_eq!(p.cmd("PING"), "PONG");
        p.stream().write_all_line("SLEEP 120000");
        stuck.push(p);
    }
    std::thread::sleep(Duration::from_millis(200)); // the SLEEPs are running
    let t = Instant::now();
    let (status, log) = d.stop();
    let took = t.elapsed();
    assert!(
        status.success(),
        "exit 0 even when requests had to be cut: {status}\n{log}"
    );
    assert!(
        took < Duration::from_secs(10),
        "stopped in {took:?}, not after the 120 s requests:\n{log}"
    );
    // The sync worker, stuck inside the request, is ended by its own
    // backstop (SIGALRM at shutdown_timeout + 3 s), before the master's
    // last-resort SIGKILL at shutdown_timeout + 5 s.
    assert!(
        log.contains("killed by SIGALRM"),
        "the worker's own backstop ended the stuck request:\n{log}"
    );
    drop(stuck);
}

trait WriteLine {
    fn write_all_line(&mut self, line: &str);
}

impl WriteLine for Stream {
    fn write_all_line(&mut self, line: &str) {
        std::io::Write::write_all(self, format!("{line}\n").as_bytes()).expect("send");
    }
}
