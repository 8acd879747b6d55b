//! Listener keys do what the config page says: `[listener.config]`
//! values reach the plugin as configured, `max_packet_size` drops (and
//! logs) larger datagrams, `connection_timeout` closes idle connections.

mod common;
use common::life::*;
use common::*;
use std::time::{Duration, Instant};

// `[listener.config]` strings, integers and tables reach the plugin as configured.
#[test]
fn listener_config_values_reach_the_plugin() {
    let extra = "[listener.config]\ngreeting = \"hello there\"\nport = 8080\n\
                 limits = { depth = 3, mode = \"strict\" }\n";
    let cfg = tcp_probe("configured", "thread", extra);
    let d = Daemon::start(&cfg);
    let mut p = Probe::connect(&d.addr("configured"));
    assert_eq!(p.cmd("CONFIG greeting"), "hello there");
    assert_eq!(p.cmd("CONFIG port"), "8080");
    let table: toml::Table = format!("v = {}", p.cmd("CONFIG limits"))
        .parse()
        .expect("TOML");
    let want: toml::Table = "v = { depth = 3, mode = \"strict\" }"
        .parse()
        .expect("TOML");
    assert_eq!(table, want, "the table arrives whole");
    assert_eq!(p.cmd("CONFIG absent"), "ERR no such key");
}

// A datagram larger than max_packet_size gets no reply and a warning naming the listener; smaller ones are answered.
#[test]
fn oversized_datagram_is_dropped_with_a_warning() {
    let cfg = probe_listener(
        "small-dgram",
        "inet",
        "dgram",
        "127.0.0.1:0",
        "sync",
        "max_packet_size = 64\n",
    );
    let d = Daemon::start(&cfg);
    let c = Dgram::connect(&d.addr("small-dgram"), &d.dir.path);
    let fits = format!("ECHO {}", "f".repeat(59)); // exactly 64 bytes
    assert_eq!(
        c.cmd(&fits),
        "f".repeat(59),
        "a datagram of max_packet_size is answered"
    );
    let big = format!("ECHO {}", "x".repeat(195)); // 200 bytes
    c.send(big.as_bytes()).expect("send");
    // Sync serves datagrams in order: a reply to `big` would come first.
    assert_eq!(c.cmd("PING"), "PONG", "the oversized datagram got no reply");
    assert!(
        wait_until(DEADLINE, || has_line(&d.log(), &["WARN", "small-dgram"])),
        "a warning names the listener:\n{}",
        d.log()
    );
}

// `connection_timeout = 0.5` closes an idle stream connection after about half a second.
#[test]
fn idle_connection_is_closed_after_connection_timeout() {
    let cfg = tcp_probe("idle", "thread", "connection_timeout = 0.5\n");
    let d = Daemon::start(&cfg);
    let mut p = Probe::connect(&d.addr("idle"));
    assert_eq!(p.cmd("PING"), "PONG");
    let start = Instant::now();
    read_until_closed(p.stream(), Duration::from_secs(5)).expect("the idle connection is closed");
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "not before the timeout: {:?}",
        start.elapsed()
    );
}
