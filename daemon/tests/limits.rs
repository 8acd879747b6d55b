//! Per-source limits against the real daemon, over real sockets from
//! distinct loopback sources (127.0.0.2, 127.0.0.3, ...):
//! `rate_limit_per_source` (token bucket, burst R; the excess is refused
//! with `refuse_message`, other sources and the listener are unaffected),
//! `max_connections_per_source` (open connections per source, per uid on
//! unix; the slot comes back when the request ends: thread end, sync
//! finish, or fork child reaped), refusal logging that a flood cannot
//! flood, and a spray from thousands of sources.

mod common;
use common::sec::*;
use common::*;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn probe_listener(name: &str, family: &str, address: &str, mixin: &str, extra: &str) -> String {
    listener(
        name,
        family,
        "stream",
        address,
        mixin,
        &plugin("sockhost_probe"),
        extra,
    )
}

/// A connection from `src` that was served `PING` and stays open.
fn hold(src: &str, to: SocketAddr) -> TcpStream {
    let mut s = tcp_from(src, to).expect("connect");
    assert_eq!(ping_on(&mut s), Outcome::Served, "{src} is served");
    s
}

/// Protects: a source gets a burst of R connections, then R per second;
/// the excess is refused with `refuse_message` and closed; other sources
/// keep their own buckets; a flood never disables the listener; the
/// refusals are logged at most about once a second, the rest as counts.
#[test]
fn the_rate_limit_refuses_the_excess_of_one_source_and_only_that() {
    let extra = "rate_limit_per_source = 5\nrefuse_message = \"busy\\r\\n\"";
    let d = Daemon::start(&probe_listener(
        "rate",
        "inet",
        "127.0.0.1:0",
        "thread",
        extra,
    ));
    let addr = d.inet("rate");
    let start = Instant::now();
    let outcomes: Vec<Outcome> = (0..10).map(|_| ping_from("127.0.0.2", addr)).collect();
    let refilled = (start.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    let served = outcomes.iter().filter(|o| **o == Outcome::Served).count();
    assert!(served >= 5, "the burst is served: {outcomes:?}");
    assert!(
        served <= 5 + refilled,
        "then about 5 a second: {outcomes:?}"
    );
    assert!(
        outcomes.contains(&Outcome::Refused("busy\r\n".into())),
        "the excess gets refuse_message: {outcomes:?}"
    );
    assert_eq!(
        ping_from("127.0.0.3", addr),
        Outcome::Served,
        "another source"
    );

    // A flood from one source: refused fast, nobody else notices.
    let flood_start = Instant::now();
    for _ in 0..300 {
        if let Ok(mut s) = tcp_from("127.0.0.2", addr) {
            let _ = read_until_eof(&mut s, DEADLINE);
        }
    }
    let flood = flood_start.elapsed();
    let t = Instant::now();
    assert_eq!(
        ping_from("127.0.0.4", addr),
        Outcome::Served,
        "listener still serves"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "and at once: {:?}",
        t.elapsed()
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        ping_from("127.0.0.2", addr),
        Outcome::Served,
        "the bucket refilled"
    );

    // Logged: about one warning per second, then the counts.
    assert!(d.wait_log(
        "more refused since the last report (rate_limit_per_source: ",
        DEADLINE
    ));
    let log = d.log();
    let warnings = count_lines(&log, "refused");
    let allowed = 3 + (start.elapsed().as_secs() as usize) * 2;
    assert!(
        warnings <= allowed,
        "{warnings} refusal lines for ~305 refusals in {flood:?}:\n{log}"
    );
    assert!(log.contains("connection from 127.0.0.2:"), "{log}");
    assert!(log.contains("refused by rate_limit_per_source"), "{log}");
}

/// Protects, for thread and fork mode: at `max_connections_per_source`
/// open connections a source's next one is refused with `refuse_message`
/// while other sources are served; closing one gives its slot back (in
/// fork mode only once the child is reaped: the worker closing its copy
/// of the connection right after the fork frees nothing).
#[test]
fn open_connections_are_capped_per_source_and_slots_come_back() {
    for mixin in ["thread", "fork"] {
        let extra = "max_connections_per_source = 2\nrefuse_message = \"too many\\n\"";
        let name = format!("cap-{mixin}");
        let d = Daemon::start(&probe_listener(&name, "inet", "127.0.0.1:0", mixin, extra));
        let addr = d.inet(&name);
        let first = hold("127.0.0.2", addr);
        let _second = hold("127.0.0.2", addr);
        for _ in 0..3 {
            assert_eq!(
                ping_from("127.0.0.2", addr),
                Outcome::Refused("too many\n".into()),
                "{mixin}: a third connection from the same source"
            );
        }
        let _other = hold("127.0.0.3", addr);
        drop(first);
        let back = wait_for(DEADLINE, || {
            (ping_from("127.0.0.2", addr) == Outcome::Served).then_some(())
        });
        assert!(back.is_some(), "{mixin}: the slot came back:\n{}", d.log());
        assert!(d
            .log()
            .contains("refused by max_connections_per_source (2 already open)"));
    }
}

/// Protects: in sync mode the slot is given back after `finish_request`,
/// so one source can make any number of connections one after another.
#[test]
fn sequential_connections_from_one_source_are_all_served_in_sync_mode() {
    let extra = "max_connections_per_source = 1";
    let d = Daemon::start(&probe_listener(
        "cap-sync",
        "inet",
        "127.0.0.1:0",
        "sync",
        extra,
    ));
    let addr = d.inet("cap-sync");
    for i in 0..50 {
        assert_eq!(
            ping_from("127.0.0.2", addr),
            Outcome::Served,
            "connection {i}"
        );
    }
    assert!(!d.log().contains("refused"), "{}", d.log());
}

/// Protects: on a unix stream listener the per-source count is per peer
/// uid: root's second connection is refused while another user is served.
#[test]
fn unix_stream_connections_are_counted_per_uid() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: switching the client's uid needs root");
        return;
    }
    let name = format!("sockhost-limits-{}", std::process::id());
    let extra = "max_connections_per_source = 1\nrefuse_message = \"one each\\n\"";
    let d = Daemon::start(&probe_listener(
        "per-uid",
        "unix",
        &format!("@{name}"),
        "thread",
        extra,
    ));
    let mut mine = Probe::connect(&d.addr("per-uid"));
    assert_eq!(mine.cmd("PING"), "PONG");
    let mut again = Stream::connect(&d.addr("per-uid")).expect("connect");
    assert_eq!(ping_on(&mut again), Outcome::Refused("one each\n".into()));
    assert_eq!(ping_as(&name, 4242, 4242, &[]), "PONG", "another uid");
    assert!(d.wait_log(
        "refused by max_connections_per_source (uid 0: 1 already open)",
        DEADLINE
    ));
}

/// Protects: a spray of new connections from thousands of source
/// addresses (each its own bucket and count) is served, the listener keeps
/// working for everyone, and the worker's memory stays flat (the table of
/// sources is bounded; unit tests drive it past its capacity).
#[test]
fn a_spray_from_thousands_of_sources_leaves_the_worker_flat_and_serving() {
    let extra = "rate_limit_per_source = 2\nmax_connections_per_source = 4";
    let d = Daemon::start(&probe_listener(
        "spray",
        "inet",
        "127.0.0.1:0",
        "sync",
        extra,
    ));
    let addr = d.inet("spray");
    let w = worker_of(d.pid(), "spray").expect("worker");
    assert_eq!(ping_from("127.0.0.2", addr), Outcome::Served);
    let (rss_before, fds_before) = (rss_kib(w), fd_count_at_rest(w));
    let mut served = 0;
    for n in 0..3000u32 {
        let src = format!("127.10.{}.{}", n / 250, n % 250 + 1);
        if let Ok(mut s) = tcp_from(&src, addr) {
            let _ = std::io::Write::write_all(&mut s, b"PING\n");
            if read_until_eof_after_shutdown(&mut s).starts_with(b"PONG") {
                served += 1;
            }
        }
    }
    assert!(served >= 2900, "served {served} of 3000 fresh sources");
    assert_eq!(ping_from("127.0.0.3", addr), Outcome::Served);
    let grew = rss_kib(w).saturating_sub(rss_before);
    assert!(grew < 16 * 1024, "worker RSS grew by {grew} KiB");
    let flat = wait_for(DEADLINE, || (fd_count(w) <= fds_before).then_some(()));
    assert!(flat.is_some(), "{} fds, {fds_before} before", fd_count(w));
    assert_eq!(
        worker_of(d.pid(), "spray"),
        Some(w),
        "the worker never died"
    );
}

/// Close our side for writing (the probe sees EOF after the command) and
/// read the reply up to the server's close.
fn read_until_eof_after_shutdown(s: &mut TcpStream) -> Vec<u8> {
    let _ = s.shutdown(std::net::Shutdown::Write);
    read_until_eof(s, DEADLINE).unwrap_or_default()
}
