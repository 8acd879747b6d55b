//! `proxy_protocol` against the real daemon with hand-built headers: v1
//! (TCP4, TCP6, UNKNOWN) and v2 (TCP4, TCP6, LOCAL, TLVs) name the client
//! the plugin sees; a header sent a byte at a time or together with the
//! payload; no header, garbage, a stalled half header (others are still
//! served, sync mode included), untrusted peers; and allow/deny and the
//! per-source limits judging the header's address.

mod common;
use common::proxy::*;
use common::sec::*;
use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

fn proxied(name: &str, mixin: &str, extra: &str) -> String {
    listener(
        name,
        "inet",
        "stream",
        "127.0.0.1:0",
        mixin,
        &plugin("sockhost_probe"),
        &format!("proxy_protocol = true\n{extra}"),
    )
}

/// Protects: every header form names the client as the plugin sees it
/// (LOCAL and UNKNOWN: the real peer), and v2 TLVs reach the plugin.
#[test]
fn headers_name_the_client_and_carry_tlvs() {
    let d = Daemon::start(&proxied("p", "thread", ""));
    let addr = d.addr("p");
    let dst = sa("10.0.0.1:443");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (v1(sa("192.0.2.7:12345"), dst), "192.0.2.7:12345"),
        (
            v1(sa("[2001:db8::7]:4000"), sa("[2001:db8::1]:443")),
            "[2001:db8::7]:4000",
        ),
        (
            v2(1, Some((sa("198.51.100.9:999"), dst)), &[]),
            "198.51.100.9:999",
        ),
        (
            v2(1, Some((sa("[2001:db8::9]:5"), sa("[::1]:80"))), &[]),
            "[2001:db8::9]:5",
        ),
    ];
    for (header, client) in &cases {
        let mut p = probe_after(&addr, header);
        assert_eq!(p.cmd("CLIENT"), *client);
        assert_eq!(p.cmd("PING"), "PONG", "still talking after the header");
    }
    for header in [b"PROXY UNKNOWN\r\n".to_vec(), v2(0, None, &[])] {
        let mut p = probe_after(&addr, &header);
        assert!(p.cmd("CLIENT").starts_with("127.0.0.1:"), "the real peer");
    }
    let tlvs = [
        tlv(0x01, b"h2"),
        tlv(0x02, b"example.com"),
        tlv(0x05, &[0, 1, 0xfe]),
        tlv(0x20, &[0x01, 0, 0, 0, 0, 0x21, 0, 3, b'T', b'L', b'S']),
        tlv(0xE5, b"raw"),
    ]
    .concat();
    let mut p = probe_after(&addr, &v2(1, Some((sa("192.0.2.8:1"), dst)), &tlvs));
    assert_eq!(p.cmd("TLV 1"), "h2");
    assert_eq!(p.cmd("TLV 2"), "example.com");
    assert_eq!(p.cmd("TLV 5"), "0x0001fe");
    assert_eq!(p.cmd("TLV 229"), "raw");
    assert_eq!(p.cmd("TLV 32"), "0x0100000000210003544c53", "SSL, raw");
    assert_eq!(p.cmd("TLV 4"), "ERR no such tlv");
    let mut local = probe_after(&addr, &v2(0, Some((sa("192.0.2.9:1"), dst)), &tlv(1, b"x")));
    assert!(
        local.cmd("CLIENT").starts_with("127.0.0.1:"),
        "LOCAL: real peer"
    );
    assert_eq!(local.cmd("TLV 1"), "x");
}

/// Protects: exactly the header's bytes are taken, whether it arrives a
/// byte at a time or in one segment with the payload.
#[test]
fn a_header_in_pieces_or_with_the_payload_takes_exactly_its_bytes() {
    let d = Daemon::start(&proxied("p", "sync", ""));
    let addr = d.addr("p");
    let dst = sa("10.0.0.1:80");
    for header in [
        v1(sa("192.0.2.1:7"), dst),
        v2(1, Some((sa("192.0.2.2:8"), dst)), &tlv(1, b"h2")),
    ] {
        assert_eq!(
            one_segment(&addr, &header, "CLIENT")
                .as_deref()
                .map(|c| c.split(':').next()),
            Some(Some(if header[0] == b'P' {
                "192.0.2.1"
            } else {
                "192.0.2.2"
            }))
        );
        let mut s = Stream::connect(&addr).expect("connect");
        for b in &header {
            s.write_all(&[*b]).expect("a byte");
            std::thread::sleep(Duration::from_millis(2));
        }
        s.write_all(b"ECHO after\n").expect("payload");
        assert_eq!(reply_line(&mut s).as_deref(), Some("after"));
    }
}

/// Protects: no header, garbage, a truncated or malformed one: closed
/// without reaching the plugin, logged as refused by proxy_protocol.
#[test]
fn missing_or_broken_headers_are_closed_before_the_plugin() {
    let d = Daemon::start(&proxied("p", "thread", "proxy_header_timeout = 0.5"));
    let addr = d.addr("p");
    let dst = sa("10.0.0.1:80");
    let mut bad_v2 = v2(1, Some((sa("192.0.2.1:1"), dst)), &[]);
    bad_v2[12] = 0x31; // version 3
    let mut short_addrs = v2(1, None, &[0; 4]);
    short_addrs[13] = 0x11; // claims IPv4 in 4 bytes
    for header in [
        b"PING\n".to_vec(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        b"PROXY TCP4 999.0.0.1 10.0.0.1 1 2\r\nPING\n".to_vec(),
        format!("PROXY TCP4 {}\r\n", "1".repeat(120)).into_bytes(),
        bad_v2,
        short_addrs,
    ] {
        let mut s = Stream::connect(&addr).expect("connect");
        let _ = s.write_all(&header);
        let _ = s.write_all(b"PING\n");
        assert_eq!(reply_line(&mut s), None, "closed unanswered: {header:?}");
    }
    // A connection that says nothing at all is closed at the timeout.
    let mut silent = Stream::connect(&addr).expect("connect");
    let start = Instant::now();
    assert_eq!(reply_line(&mut silent), None);
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
    assert!(
        d.wait_log("refused by proxy_protocol", DEADLINE),
        "{}",
        d.log()
    );
}

/// Protects: a client that sends half a header and waits holds up nobody,
/// in sync mode too; it is closed after proxy_header_timeout.
#[test]
fn a_stalled_half_header_does_not_hold_up_others_in_sync_mode() {
    let d = Daemon::start(&proxied("p", "sync", "proxy_header_timeout = 5"));
    let addr = d.addr("p");
    let header = v2(1, Some((sa("192.0.2.1:1"), sa("10.0.0.1:2"))), &[]);
    let mut stalled: Vec<Stream> = (0..5)
        .map(|n| {
            let mut s = Stream::connect(&addr).expect("connect");
            s.write_all(&header[..3 + n * 4]).expect("half a header");
            s
        })
        .collect();
    let mut v1_half = Stream::connect(&addr).expect("connect");
    v1_half
        .write_all(b"PROXY TCP4 192.0.2.")
        .expect("half a line");
    let start = Instant::now();
    for _ in 0..20 {
        let reply = one_segment(&addr, &v1(sa("192.0.2.5:5"), sa("10.0.0.1:2")), "PING");
        assert_eq!(reply.as_deref(), Some("PONG"));
    }
    // All served before the stalled ones' 5 s run out: nobody waited on them.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "served while others stall: {:?}",
        start.elapsed()
    );
    stalled.push(v1_half);
    for s in &mut stalled {
        assert_eq!(reply_line(s), None, "closed at the timeout");
    }
    assert!(start.elapsed() >= Duration::from_millis(4900));
}

/// Protects: with proxy_trusted, only those peers may send a header; the
/// others are refused (reason proxy_header) without being read.
#[test]
fn only_trusted_peers_may_send_a_header() {
    let d = Daemon::start(&proxied(
        "p",
        "thread",
        "proxy_trusted = [\"127.0.0.2/32\"]",
    ));
    let addr = d.inet("p");
    let header = v1(sa("192.0.2.1:1"), sa("10.0.0.1:2"));
    let mut trusted = tcp_from("127.0.0.2", addr).expect("connect");
    trusted.write_all(&header).expect("header");
    assert_eq!(ping_on(&mut trusted), Outcome::Served);
    let mut other = tcp_from("127.0.0.3", addr).expect("connect");
    other.write_all(&header).expect("header");
    assert_ne!(ping_on(&mut other), Outcome::Served);
    assert!(d.wait_log("not in proxy_trusted", DEADLINE), "{}", d.log());
}

/// Protects: deny/allow and max_connections_per_source judge the address
/// in the header, not the balancer's.
#[test]
fn access_control_and_limits_use_the_header_address() {
    let extra = "deny = [\"192.0.2.0/24\"]\nmax_connections_per_source = 2";
    let d = Daemon::start(&proxied("p", "thread", extra));
    let addr = d.addr("p");
    let dst = sa("10.0.0.1:2");
    let denied = one_segment(&addr, &v1(sa("192.0.2.1:1"), dst), "PING");
    assert_eq!(denied, None, "denied by the header's address");
    let a = sa("198.51.100.1:1");
    let mut held: Vec<_> = (0..2).map(|_| probe_after(&addr, &v1(a, dst))).collect();
    for p in &mut held {
        assert_eq!(p.cmd("PING"), "PONG");
    }
    assert_eq!(
        one_segment(&addr, &v1(a, dst), "PING"),
        None,
        "a third from the same client"
    );
    let other = one_segment(
        &addr,
        &v2(1, Some((sa("198.51.100.2:1"), dst)), &[]),
        "PING",
    );
    assert_eq!(
        other.as_deref(),
        Some("PONG"),
        "another client behind the same balancer"
    );
    drop(held);
    assert!(
        life::wait_until(DEADLINE, || one_segment(&addr, &v1(a, dst), "PING")
            .as_deref()
            == Some("PONG")),
        "slots come back"
    );
}

/// Protects: a unix stream listener takes headers too, with allow on the
/// header's address.
#[test]
fn a_unix_listener_takes_headers() {
    let dir = TestDir::new("pu");
    let path = dir.join("p.sock");
    let config = listener(
        "u",
        "unix",
        "stream",
        &path.display().to_string(),
        "fork",
        &plugin("sockhost_probe"),
        "proxy_protocol = true\nallow = [\"192.0.2.0/24\"]",
    );
    let d = Daemon::start(&config);
    let addr = d.addr("u");
    let dst = sa("10.0.0.1:2");
    let mut p = probe_after(&addr, &v1(sa("192.0.2.3:33"), dst));
    assert_eq!(p.cmd("CLIENT"), "192.0.2.3:33");
    assert_eq!(
        one_segment(&addr, &v1(sa("198.51.100.3:3"), dst), "PING"),
        None
    );
}
