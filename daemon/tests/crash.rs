//! Crash isolation against the real daemon: an `ABORT` in a fork child
//! costs only that child; in sync or thread mode it costs the worker, which
//! the master logs by signal and respawns while clients wait in the
//! listening socket's queue; a crash loop backs off; other listeners never
//! notice; and a master killed with SIGKILL takes its workers with it.

mod common;
use common::*;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

fn probe_listener(name: &str, ty: &str, mixin: &str) -> String {
    let probe = plugin("sockhost_probe");
    listener(name, "inet", ty, "127.0.0.1:0", mixin, &probe, "")
}

/// Send a command that kills the process serving `p`, and wait until the
/// connection shows it died (EOF or reset: only its exit closes the fd).
fn send_and_wait_for_death(mut p: Probe, command: &str) {
    std::io::Write::write_all(p.stream(), format!("{command}\n").as_bytes()).expect("send");
    let mut rest = Vec::new();
    let _ = p.stream().read_to_end(&mut rest);
    assert!(rest.is_empty(), "{command} gets no reply, got {rest:?}");
}

/// Protects: `ABORT` in fork mode kills only that request's child: the same
/// worker serves the next request at once, and a warning names SIGABRT.
#[test]
fn fork_abort_kills_only_the_child_and_the_same_worker_serves_the_next_request() {
    no_core_dumps();
    let d = Daemon::start(&probe_listener("forked", "stream", "fork"));
    let w = worker(&d, "forked");
    let mut p = Probe::connect(&d.addr("forked"));
    assert_eq!(p.cmd("PPID"), w.to_string(), "a child of the worker");
    let child = p.cmd("PID");
    send_and_wait_for_death(p, "ABORT");
    let mut next = Probe::connect(&d.addr("forked"));
    assert_eq!(
        next.cmd("PPID"),
        w.to_string(),
        "the same worker forks the next child"
    );
    assert_ne!(next.cmd("PID"), child);
    let warned = wait_for(DEADLINE, || {
        d.log()
            .lines()
            .find(|l| l.contains("WARN") && l.contains(&format!("pid={child}")))
            .map(str::to_string)
    })
    .unwrap_or_else(|| panic!("no warning for child {child}:\n{}", d.log()));
    assert!(warned.contains("SIGABRT"), "the signal is named: {warned}");
    assert_eq!(worker(&d, "forked"), w, "the worker never restarted");
    assert!(!d.log().contains("died"), "no worker died:\n{}", d.log());
}

/// Protects: `ABORT` in sync or thread mode kills the worker; the master
/// logs its death with the signal's name and respawns it; a client that
/// connects while it is down is queued and served by the new worker; the
/// other listeners' workers are untouched and keep serving.
#[test]
fn sync_or_thread_abort_kills_the_worker_which_is_respawned_while_clients_queue() {
    no_core_dumps();
    let cfg = probe_listener("sync", "stream", "sync")
        + &probe_listener("thread", "stream", "thread")
        + &probe_listener("bystander", "stream", "fork")
        + &probe_listener("bystander-dg", "dgram", "thread");
    let d = Daemon::start(&cfg);
    let others = [worker(&d, "bystander"), worker(&d, "bystander-dg")];
    let dg = Dgram::connect(&d.addr("bystander-dg"), &d.dir.path);
    for name in ["sync", "thread"] {
        let old = worker(&d, name);
        let mut p = Probe::connect(&d.addr(name));
        assert_eq!(
            p.cmd("PID"),
            old.to_string(),
            "{name}: served in the worker"
        );
        send_and_wait_for_death(p, "ABORT");
        // The worker is dead; the master respawns it only after a back-off.
        let mut queued = Probe::connect(&d.addr(name));
        let new: i32 = queued.cmd("PID").parse().expect("pid");
        assert_eq!(queued.cmd("PING"), "PONG", "{name}: queued client served");
        assert_ne!(new, old, "{name}: a new worker");
        assert!(is_dead(old), "{name}: the old worker is gone");
        let died = format!("worker {old} died (killed by SIGABRT");
        assert!(
            wait_for(DEADLINE, || d.log().contains(&died).then_some(())).is_some(),
            "{name}: `{died}` missing:\n{}",
            d.log()
        );
        assert_eq!(worker(&d, name), new, "{name}: the master adopted it");
        // The other listeners never noticed.
        assert_eq!(
            stream_cmd(&d.addr("bystander"), "PPID"),
            others[0].to_string()
        );
        assert_eq!(dg.cmd("PID"), others[1].to_string());
    }
    assert_eq!(
        [worker(&d, "bystander"), worker(&d, "bystander-dg")],
        others,
        "other workers unchanged"
    );
    let (status, log) = d.stop();
    assert!(status.success(), "{status}\n{log}");
}

/// Protects: a worker that keeps crashing right after start is restarted
/// with a growing delay, and the log says it is in a crash loop.
#[test]
fn a_crash_loop_backs_off_and_says_so() {
    no_core_dumps();
    let d = Daemon::start(&probe_listener("looping", "stream", "sync"));
    let mut died_at = Instant::now();
    for _ in 0..3 {
        // Queued until the (re)started worker takes it, then fatal.
        send_and_wait_for_death(Probe::connect(&d.addr("looping")), "ABORT");
        died_at = Instant::now();
    }
    let mut p = Probe::connect(&d.addr("looping"));
    assert_eq!(p.cmd("PING"), "PONG", "served once the back-off ends");
    let waited = died_at.elapsed();
    let log = d.log();
    for want in [
        "restarting in 100ms",
        "restarting in 200ms",
        "3 crashes in a row, restarting in 400ms",
    ] {
        assert!(log.contains(want), "`{want}` missing:\n{log}");
    }
    assert!(log.contains("crash-loop back-off"), "{log}");
    // The third restart waited its 400 ms (less what the client lost in
    // noticing the death: generous slack).
    assert!(
        waited >= Duration::from_millis(250),
        "restarted after only {waited:?}"
    );
}

/// Protects: a panicking handler (PANIC) is contained in every mixin: the
/// client just sees the connection close and the same worker serves on.
#[test]
fn a_panicking_handler_never_costs_the_worker() {
    let cfg = probe_listener("ps", "stream", "sync")
        + &probe_listener("pt", "stream", "thread")
        + &probe_listener("pf", "stream", "fork");
    let d = Daemon::start(&cfg);
    for (name, ask) in [("ps", "PID"), ("pt", "PID"), ("pf", "PPID")] {
        let w = worker(&d, name);
        let mut p = Probe::connect(&d.addr(name));
        assert_eq!(p.cmd(ask), w.to_string(), "{name}");
        send_and_wait_for_death(p, "PANIC");
        assert_eq!(
            stream_cmd(&d.addr(name), ask),
            w.to_string(),
            "{name}: same worker"
        );
    }
    assert!(!d.log().contains("died"), "no worker died:\n{}", d.log());
}

/// Protects: SIGKILL to the master leaves no worker behind (they die with
/// it) and the ports can be bound again.
#[test]
fn killing_the_master_with_sigkill_leaves_no_worker_behind() {
    let dir = TestDir::new("crash-kill");
    let sock = dir.join("u.sock");
    let probe = plugin("sockhost_probe");
    let cfg = probe_listener("ks", "stream", "sync")
        + &probe_listener("kt", "stream", "thread")
        + &probe_listener("kf", "stream", "fork")
        + &probe_listener("kd", "dgram", "thread")
        + &listener(
            "ku",
            "unix",
            "stream",
            &sock.display().to_string(),
            "fork",
            &probe,
            "",
        );
    let mut d = Daemon::start(&cfg);
    let names = ["ks", "kt", "kf", "kd", "ku"];
    let workers: Vec<i32> = names.iter().map(|n| worker(&d, n)).collect();
    for n in ["ks", "kt", "kf"] {
        assert_eq!(stream_cmd(&d.addr(n), "PING"), "PONG");
    }
    d.signal(libc::SIGKILL);
    d.wait_exit(DEADLINE).expect("the master is dead");
    let gone = wait_for(DEADLINE, || {
        workers.iter().all(|&w| is_dead(w)).then_some(())
    });
    let alive: Vec<i32> = workers.iter().copied().filter(|&w| !is_dead(w)).collect();
    assert!(gone.is_some(), "workers outlived the master: {alive:?}");
    for n in ["ks", "kt", "kf"] {
        let addr: SocketAddr = d.inet(n);
        TcpListener::bind(addr).unwrap_or_else(|e| panic!("{n}: rebind {addr}: {e}"));
    }
    let addr = d.inet("kd");
    UdpSocket::bind(addr).unwrap_or_else(|e| panic!("kd: rebind {addr}: {e}"));
}
