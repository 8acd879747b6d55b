//! A reload is reported done only once the old generation has stopped
//! accepting: after `sockhostctl reload` exits 0 (and after the `reload
//! done` log line, and READY=1), every new connection is served by the new
//! generation, never by a retired worker that was still inside its accept
//! batch. Under background load, where a retired worker is most likely to
//! be busy taking connections when it is told to drain.

mod common;
use common::life::{self as life, start_in, tcp_probe};
use common::observe::{ctl, observed};
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Reloads per run: each one is a chance for a stale reply.
const ROUNDS: u32 = 50;
/// Connections opened right after each reload, per listener.
const PROBES: usize = 6;
/// Background clients keeping the workers busy in their accept batches.
const LOADERS: usize = 8;

/// Probe listeners `t` (thread) and `f` (fork), two workers each, whose
/// `CONFIG v` reply names the generation's config.
fn config(v: u32) -> String {
    let conf = format!("workers = 2\n[listener.config]\nv = {v}\n");
    observed(&format!(
        "{}{}",
        tcp_probe("t", "thread", &conf),
        tcp_probe("f", "fork", &conf)
    ))
}

/// One short conversation: connect, `PING`, read the reply, close.
/// Errors are counted, not fatal: the load only has to be there.
fn ping(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(DEADLINE));
    if s.write_all(b"PING\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok() && line == "PONG\n"
}

#[test]
fn after_reload_returns_every_new_connection_gets_the_new_generation() {
    let dir = TestDir::new("reload-ack");
    let d = start_in(dir, &config(1)).unwrap_or_else(|f| panic!("start: {}", f.log));
    let addrs = [d.addr("t"), d.addr("f")];
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let loaders: Vec<_> = (0..LOADERS)
        .map(|i| {
            let (stop, served) = (Arc::clone(&stop), Arc::clone(&served));
            let addr = addrs[i % 2].clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if ping(&addr) {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let mut stale: Vec<String> = Vec::new();
    for v in 2..=ROUNDS + 1 {
        let tmp = d.dir.join("sockhost.toml.new");
        std::fs::write(&tmp, config(v)).expect("write config");
        std::fs::rename(&tmp, &d.config).expect("rename config");
        let (code, out, err) = ctl(&d, &["reload"]);
        assert_eq!(code, 0, "reload to v = {v}: {out}{err}\n{}", d.log());
        // Connect everything first (the kernel queues them at once), then
        // ask each which generation took it.
        let mut probes: Vec<(&str, Probe)> = Vec::new();
        for _ in 0..PROBES {
            for (name, addr) in ["t", "f"].iter().zip(&addrs) {
                probes.push((name, Probe::connect(addr)));
            }
        }
        for (name, mut p) in probes {
            let got = p.cmd("CONFIG v");
            if got != v.to_string() {
                stale.push(format!(
                    "after reload {} (v = {v}): listener {name} answered v = {got}",
                    v - 1
                ));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.join().expect("load thread");
    }
    assert!(
        served.load(Ordering::Relaxed) > 0,
        "the background load reached the daemon"
    );
    assert!(
        stale.is_empty(),
        "{} of {} connections opened after `sockhostctl reload` exited 0 were served by a retired generation:\n{}",
        stale.len(),
        ROUNDS as usize * PROBES * 2,
        stale.join("\n")
    );
}

/// A config with one probe listener `s` of `mixin` whose `CONFIG v` is
/// `v`, a control socket, and `shutdown_timeout` seconds.
fn one(mixin: &str, v: u32, shutdown_timeout: f64) -> String {
    format!(
        "[daemon]\ncontrol_socket = \"ctl.sock\"\nshutdown_timeout = {shutdown_timeout:?}\n\n{}",
        tcp_probe("s", mixin, &format!("[listener.config]\nv = {v}\n"))
    )
}

fn reload_to(d: &Daemon, config: &str) {
    std::fs::write(&d.config, config).expect("rewrite config");
    let (code, out, err) = ctl(d, &["reload"]);
    assert_eq!(code, 0, "{out}{err}\n{}", d.log());
}

// A sync worker inside a 30 s request takes no connection until the
// request ends: its signal handler acknowledges the stop at once, so the
// reload is reported done without waiting for the request (or for the
// acknowledgement deadline).
#[test]
fn a_worker_busy_in_a_long_request_acknowledges_at_once() {
    let d = start_in(TestDir::new("reload-ack-busy"), &one("sync", 1, 10.0))
        .unwrap_or_else(|f| panic!("start: {}", f.log));
    let mut busy = Probe::connect(&d.addr("s"));
    let pid: i32 = busy.cmd("PID").parse().expect("pid");
    let tid: i32 = busy.cmd("TID").parse().expect("tid");
    busy.stream()
        .write_all(b"SLEEP 30000\n")
        .expect("send SLEEP");
    assert!(
        life::wait_until(DEADLINE, || life::in_nanosleep(pid, tid).unwrap_or(true)),
        "the request sleeps"
    );
    reload_to(&d, &one("sync", 2, 10.0));
    assert_eq!(
        life::in_nanosleep(pid, tid),
        Some(true),
        "the reload was reported while the old worker's request still ran"
    );
    assert!(d.wait_log("reload done", DEADLINE), "{}", d.log());
    assert!(
        !d.log().contains("did not acknowledge"),
        "the busy worker acknowledged:\n{}",
        d.log()
    );
    assert_eq!(Probe::connect(&d.addr("s")).cmd("CONFIG v"), "2");
}

// A retired worker that cannot answer (stopped with SIGSTOP) delays the
// reload only until the acknowledgement deadline; the log names it.
#[test]
fn a_retired_worker_that_never_answers_is_named_at_the_deadline() {
    let d = start_in(TestDir::new("reload-ack-stuck"), &one("thread", 1, 1.0))
        .unwrap_or_else(|f| panic!("start: {}", f.log));
    let old = worker(&d, "s");
    // SAFETY: pausing a worker of the daemon this test started.
    unsafe { libc::kill(old, libc::SIGSTOP) };
    reload_to(&d, &one("thread", 2, 1.0));
    // The log is read as the daemon writes it: wait for the reload's line.
    assert!(d.wait_log("reload done", DEADLINE), "{}", d.log());
    let log = d.log();
    assert!(
        log.lines()
            .any(|l| l.contains("did not acknowledge")
                && l.contains(&format!("{old} (listener `s`)"))),
        "the log names worker {old}:\n{log}"
    );
    // SAFETY: resuming it, so it drains and exits.
    unsafe { libc::kill(old, libc::SIGCONT) };
    assert_eq!(Probe::connect(&d.addr("s")).cmd("CONFIG v"), "2");
    assert!(
        life::wait_until(DEADLINE, || life::exited(old)),
        "the old worker drains once it runs again"
    );
}
