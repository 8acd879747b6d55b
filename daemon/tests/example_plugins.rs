//! The example plugins serve as the contract says: the C plugin, built
//! with the contract's one `cc` command, echoes over TCP and UDP; daytime
//! writes one CRLF line, closes, and honours `format`.

mod common;
use common::life::*;
use common::*;
use std::io::Write;

// The C plugin, built with the contract's one `cc` command, echoes over TCP (thread) and UDP (sync).
#[test]
fn c_plugin_echoes_over_tcp_and_udp() {
    let build = TestDir::new("lc-cc");
    let so = build_c_echo(&build.path);
    let cfg = listener("c-tcp", "inet", "stream", "127.0.0.1:0", "thread", &so, "")
        + &listener("c-udp", "inet", "dgram", "127.0.0.1:0", "sync", &so, "");
    let d = Daemon::start(&cfg);
    let payload = noise(7, 100_000);
    let mut s = Stream::connect(&d.addr("c-tcp")).expect("connect");
    s.write_all(&payload).expect("send");
    s.shutdown_write();
    assert!(s.read_all().expect("echo") == payload, "TCP echo intact");
    let c = Dgram::connect(&d.addr("c-udp"), &d.dir.path);
    for msg in [&b"hello"[..], &[0u8, 1, 0, 255][..], &payload[..1200]] {
        c.send(msg).expect("send");
        assert_eq!(c.recv().expect("UDP echo"), msg);
    }
}

// Daytime writes one `\r\n`-ended line and closes; `format = "%Y"` gives the current year.
#[test]
fn daytime_answers_one_line_and_closes_and_honours_format() {
    let so = plugin("sockhost_daytime");
    let cfg = listener("day", "inet", "stream", "127.0.0.1:0", "thread", &so, "")
        + &listener(
            "year",
            "inet",
            "stream",
            "127.0.0.1:0",
            "sync",
            &so,
            "[listener.config]\nformat = \"%Y\"\n",
        );
    let d = Daemon::start(&cfg);
    let line = Stream::connect(&d.addr("day"))
        .and_then(|mut s| s.read_all())
        .expect("daytime");
    let text = String::from_utf8(line).expect("text");
    assert!(
        text.ends_with("\r\n") && text.len() > 2,
        "one CRLF line: {text:?}"
    );
    assert_eq!(text.matches('\n').count(), 1, "exactly one line: {text:?}");
    let year = Stream::connect(&d.addr("year"))
        .and_then(|mut s| s.read_all())
        .expect("year");
    let year = String::from_utf8(year).expect("text");
    let shown: i64 = year
        .strip_suffix("\r\n")
        .and_then(|y| y.parse().ok())
        .unwrap_or(-1);
    assert!(
        plausible_years().contains(&shown),
        "the current year: {year:?}"
    );
}
