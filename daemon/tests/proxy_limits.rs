//! Per-source limits that hold for a listener as a whole with
//! `workers = 4`, behind a PROXY header (every TCP peer is the same
//! balancer, so only the shared table can count the clients), and slots
//! given back when a worker dies holding them.

mod common;
use common::proxy::*;
use common::*;
use std::time::{Duration, Instant};

fn four_workers(extra: &str) -> String {
    listener(
        "p",
        "inet",
        "stream",
        "127.0.0.1:0",
        "thread",
        &plugin("sockhost_probe"),
        &format!("workers = 4\nproxy_protocol = true\n{extra}"),
    )
}

/// Open connections from one client, each served `PID` (its worker's
/// pid) and kept open, until one is refused or `max` are open.
fn hold_until_refused(addr: &str, client: &str, max: usize) -> Vec<(Probe, i32)> {
    let header = v1(sa(client), sa("10.0.0.1:80"));
    let mut held = Vec::new();
    while held.len() < max {
        let mut p = probe_after(addr, &header);
        match p.try_cmd("PID") {
            Ok(pid) => held.push((p, pid.parse().expect("pid"))),
            Err(_) => break,
        }
    }
    held
}

/// Protects: max_connections_per_source = 3 with 4 workers admits exactly
/// 3 connections of one client, whichever workers take them; another
/// client still gets its own 3.
#[test]
fn connection_limits_are_exact_across_four_workers() {
    let d = Daemon::start(&four_workers("max_connections_per_source = 3"));
    let addr = d.addr("p");
    for round in 0..3 {
        let held = hold_until_refused(&addr, "192.0.2.1:1", 12);
        assert_eq!(held.len(), 3, "round {round}: exactly 3 of one client");
        let other = hold_until_refused(&addr, "192.0.2.2:1", 12);
        assert_eq!(other.len(), 3, "round {round}: another client");
        drop((held, other));
        // Slots come back when the requests end (threads notice EOF).
        assert!(
            life::wait_until(DEADLINE, || {
                one_segment(&addr, &v1(sa("192.0.2.1:9"), sa("10.0.0.1:80")), "PING").is_some()
            }),
            "slots came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Protects: rate_limit_per_source = 5 with 4 workers admits a burst of 5
/// (plus what refills meanwhile), not 20.
#[test]
fn the_rate_limit_is_shared_by_the_workers() {
    let d = Daemon::start(&four_workers("rate_limit_per_source = 5"));
    let addr = d.addr("p");
    let header = v1(sa("198.51.100.4:1"), sa("10.0.0.1:80"));
    let start = Instant::now();
    let served = (0..20)
        .filter(|_| one_segment(&addr, &header, "PING").as_deref() == Some("PONG"))
        .count();
    let refilled = (start.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert!(served >= 5, "the burst: {served}");
    assert!(served <= 5 + refilled, "{served} > 5 + {refilled}");
}

/// Protects: a worker SIGKILLed while holding slots: they are given back
/// (by another worker within about a second, or its replacement), and the
/// limit is exact again afterwards.
#[test]
fn slots_of_a_killed_worker_are_given_back() {
    let d = Daemon::start(&four_workers("max_connections_per_source = 3"));
    let addr = d.addr("p");
    let held = hold_until_refused(&addr, "192.0.2.9:1", 12);
    assert_eq!(held.len(), 3);
    let victim = held[0].1;
    // The victim's connections stay open until it is dead, so it dies
    // holding their slots (closing them first would let it give them back).
    let (on_victim, kept): (Vec<_>, Vec<_>) = held.into_iter().partition(|(_, pid)| *pid == victim);
    // SAFETY: signalling a worker of the daemon this test started.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    assert!(life::wait_until(DEADLINE, || life::exited(victim)));
    drop(on_victim);
    let mut again = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while kept.len() + again.len() < 3 && Instant::now() < deadline {
        again.extend(hold_until_refused(
            &addr,
            "192.0.2.9:1",
            3 - kept.len() - again.len(),
        ));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        kept.len() + again.len(),
        3,
        "the killed worker's slots came back"
    );
    let more = hold_until_refused(&addr, "192.0.2.9:1", 3);
    assert!(
        more.is_empty(),
        "and the limit is exact again: {}",
        more.len()
    );
    assert!(d.wait_log("gave back", DEADLINE), "{}", d.log());
}
