//! Graceful stop: SIGTERM lets requests in flight finish on every mixin and
//! exits 0, a second one stops at once; the stop is bounded: a request that
//! never finishes cannot keep a stopping daemon alive past
//! `shutdown_timeout` plus a short grace, in any mixin, and a flood of
//! queued requests cannot delay the stop.

mod common;
use common::life::*;
use common::*;
use std::io::Write;
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

// SIGTERM lets a request in flight finish on every mixin, then the daemon exits 0.
#[test]
fn sigterm_lets_requests_in_flight_finish_on_every_mixin() {
    let mut cfg = String::new();
    for m in MIXINS {
        cfg += &tcp_probe(&format!("slow-{m}"), m, "");
    }
    let mut d = Daemon::start(&cfg);
    let mut clients: Vec<Probe> = MIXINS
        .iter()
        .map(|m| {
            let mut p = Probe::connect(&d.addr(&format!("slow-{m}")));
            let pid: i32 = p.cmd("PID").parse().expect("pid");
            let tid: i32 = p.cmd("TID").parse().expect("tid");
            p.stream().write_all(b"SLEEP 1500\n").expect("send SLEEP");
            assert!(
                wait_until(DEADLINE, || in_nanosleep(pid, tid).unwrap_or(true)),
                "{m}: the handler is sleeping"
            );
            p
        })
        .collect();
    d.signal(libc::SIGTERM); // mid-sleep on every mixin
    for (m, p) in MIXINS.iter().zip(clients.iter_mut()) {
        let mut line = String::new();
        let mut r = std::io::BufReader::new(p.stream());
        std::io::BufRead::read_line(&mut r, &mut line).expect("reply after SIGTERM");
        assert_eq!(line, "SLEPT 1500\n", "{m}: the request in flight finished");
    }
    drop(clients);
    let status = d
        .wait_exit(DEADLINE)
        .expect("the daemon stops once requests finish");
    assert_eq!(status.code(), Some(0), "graceful stop exits 0\n{}", d.log());
}

// A second SIGTERM stops the daemon at once, even with a 30 s request in flight.
#[test]
fn second_sigterm_stops_at_once() {
    let cfg = tcp_probe("stuck", "thread", "");
    let mut d = Daemon::start(&cfg);
    let workers = workers_of(d.pid());
    let mut p = Probe::connect(&d.addr("stuck"));
    let pid: i32 = p.cmd("PID").parse().expect("pid");
    let tid: i32 = p.cmd("TID").parse().expect("tid");
    p.stream().write_all(b"SLEEP 30000\n").expect("send SLEEP");
    let sleeping = || in_nanosleep(pid, tid).unwrap_or(true);
    assert!(wait_until(DEADLINE, sleeping), "the handler is sleeping");
    d.signal(libc::SIGTERM);
    assert!(
        d.wait_log("SIGTERM", DEADLINE),
        "first SIGTERM seen:\n{}",
        d.log()
    );
    let sent = Instant::now();
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some(),
        "stopped within 5 s of the second SIGTERM:\n{}",
        d.log()
    );
    assert!(sent.elapsed() < Duration::from_secs(5));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", d.log());
    let left: Vec<i32> = workers.into_iter().filter(|&w| !exited(w)).collect();
    assert!(left.is_empty(), "no worker left running: {left:?}");
    let rest = read_until_closed(p.stream(), DEADLINE).expect("connection closed");
    assert!(rest.is_empty(), "no reply to the cut request: {rest:?}");
}

/// Send `SLEEP 1500` from three clients to a thread-mode datagram
/// listener and wait until its worker runs the three request threads.
fn three_sleepers(d: &Daemon, name: &str) -> Vec<Dgram> {
    let pid: i32 = Dgram::connect(&d.addr(name), &d.dir.path)
        .cmd("PID")
        .parse()
        .expect("pid");
    let clients: Vec<Dgram> = (0..3)
        .map(|_| {
            let c = Dgram::connect(&d.addr(name), &d.dir.path);
            c.send(b"SLEEP 1500").expect("send SLEEP");
            c
        })
        .collect();
    // Threads sleeping in the handler (where the kernel shows wait
    // channels; elsewhere the count of threads is all there is).
    let sleeping = || {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        let tids: Vec<i32> = tasks
            .filter_map(|t| t.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        match tids
            .iter()
            .map(|&t| in_nanosleep(pid, t))
            .collect::<Option<Vec<bool>>>()
        {
            Some(s) => s.iter().filter(|&&b| b).count(),
            None => tids.len().saturating_sub(1),
        }
    };
    assert!(
        wait_until(DEADLINE, || sleeping() >= 3),
        "{name}: three request threads run"
    );
    clients
}

fn slept(name: &str, when: &str, clients: &[Dgram]) {
    for c in clients {
        let reply = c
            .recv()
            .unwrap_or_else(|e| panic!("{name}: no reply after {when}: {e}"));
        assert_eq!(reply, b"SLEPT 1500\n", "{name}: the reply after {when}");
    }
}

// A thread-mode datagram worker that drains (reload, stop) still sends the
// replies of the request threads running at that moment: its socket stays
// open until they are done.
#[test]
fn a_draining_thread_mode_datagram_worker_sends_its_last_replies() {
    let cfg = |v: u32| {
        let extra = format!("[listener.config]\nv = {v}\n");
        probe_listener("udp", "inet", "dgram", "127.0.0.1:0", "thread", &extra)
            + &probe_listener("unixd", "unix", "dgram", "unixd.sock", "thread", &extra)
    };
    let dir = TestDir::new("dgram-drain");
    let mut d = start_in(dir, &cfg(1)).unwrap_or_else(|f| panic!("start: {}", f.log));
    let names = ["udp", "unixd"];
    let waiting: Vec<Vec<Dgram>> = names.iter().map(|n| three_sleepers(&d, n)).collect();
    std::fs::write(&d.config, cfg(2)).expect("rewrite config");
    d.signal(libc::SIGHUP); // the old workers drain mid-sleep
    for (name, clients) in names.iter().zip(&waiting) {
        slept(name, "a reload", clients);
    }
    let waiting: Vec<Vec<Dgram>> = names.iter().map(|n| three_sleepers(&d, n)).collect();
    d.signal(libc::SIGTERM);
    for (name, clients) in names.iter().zip(&waiting) {
        slept(name, "SIGTERM", clients);
    }
    let status = d.wait_exit(DEADLINE).expect("the daemon stops");
    assert_eq!(status.code(), Some(0), "{}", d.log());
}
