//! The internal services inetd and xinetd build in, as plugins served by
//! the real daemon over loopback TCP and UDP: chargen (RFC 864), discard
//! (RFC 863) and time (RFC 868), byte for byte.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::UdpSocket;
use std::time::{SystemTime, UNIX_EPOCH};

/// Line `n` of RFC 864's pattern, written out from the RFC's description:
/// 72 of the 95 printable characters starting `n` places after the space.
fn chargen_line(n: usize) -> Vec<u8> {
    let ring: Vec<u8> = (b' '..=b'~').collect();
    assert_eq!(ring.len(), 95);
    let mut line: Vec<u8> = (0..72).map(|k| ring[(n + k) % 95]).collect();
    line.extend_from_slice(b"\r\n");
    line
}

/// The first `len` bytes of the chargen stream.
fn chargen_prefix(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = 0;
    while out.len() < len {
        out.extend(chargen_line(n));
        n += 1;
    }
    out.truncate(len);
    out
}

/// Two internal-service listeners, TCP and UDP, of one plugin.
fn pair(stem: &str, name: &str, mixin: &str) -> String {
    let so = plugin(stem);
    listener(
        &format!("{name}-tcp"),
        "inet",
        "stream",
        "127.0.0.1:0",
        mixin,
        &so,
        "",
    ) + &listener(
        &format!("{name}-udp"),
        "inet",
        "dgram",
        "127.0.0.1:0",
        "sync",
        &so,
        "access_log = true",
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The RFC 868 answer decoded to Unix seconds (this test runs before 2036).
fn rfc868_to_unix(bytes: &[u8]) -> u64 {
    let raw: [u8; 4] = bytes.try_into().expect("exactly four bytes");
    u64::from(u32::from_be_bytes(raw)) - 2_208_988_800
}

/// Protects: chargen stream writes RFC 864's rotating 72-column CRLF
/// lines from line 0, past a whole 95-line period, until the client
/// closes, and then ends the request (a sync listener serves the next
/// client); chargen dgram answers each datagram with 0 to 512 bytes of
/// the same pattern, of varying length.
#[test]
fn chargen_sends_the_rotating_lines_and_short_datagrams() {
    let d = Daemon::start(&pair("sockhost_chargen", "chargen", "sync"));
    let want = chargen_prefix(3 * 95 * 74 + 100);
    for round in 0..2 {
        let mut s = Stream::connect(&d.addr("chargen-tcp")).expect("connect");
        s.write_all(b"thrown away\r\n").expect("send");
        let mut got = vec![0u8; want.len()];
        s.read_exact(&mut got)
            .unwrap_or_else(|e| panic!("round {round}: chargen stream: {e}"));
        assert!(got == want, "round {round}: the pattern differs");
        assert_eq!(
            &got[..74],
            &b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n"[..]
        );
        drop(s);
    }
    let c = Dgram::connect(&d.addr("chargen-udp"), &d.dir.path);
    let mut lens = std::collections::BTreeSet::new();
    for _ in 0..40 {
        c.send(b"x").expect("send");
        let reply = c.recv().expect("chargen datagram");
        assert!(reply.len() <= 512, "{} bytes", reply.len());
        assert!(
            reply == chargen_prefix(reply.len()),
            "not the pattern: {reply:?}"
        );
        lens.insert(reply.len());
    }
    assert!(lens.len() > 1, "always {lens:?} bytes: not random");
}

/// Protects: discard stream reads everything until the client closes and
/// writes nothing back (the client sees end of file, no byte); discard
/// dgram sends no reply (the datagram is handled, per the access log, and
/// nothing is waiting on the client's socket).
#[test]
fn discard_reads_and_never_answers() {
    let d = Daemon::start(&pair("sockhost_discard", "discard", "thread"));
    let mut s = Stream::connect(&d.addr("discard-tcp")).expect("connect");
    s.write_all(&vec![b'z'; 1 << 20])
        .expect("the whole MiB is read");
    s.shutdown_write();
    assert_eq!(s.read_all().expect("closed"), b"", "discard wrote back");

    let c = Dgram::connect(&d.addr("discard-udp"), &d.dir.path);
    c.send(b"into the void").expect("send");
    let handled = || {
        d.log()
            .lines()
            .any(|l| l.contains("listener=discard-udp") && l.contains("request from 127.0.0.1:"))
    };
    assert!(
        common::life::wait_until(DEADLINE, handled),
        "the datagram was never handled:\n{}",
        d.log()
    );
    let Dgram::Udp(sock, _) = &c else {
        panic!("inet client")
    };
    sock.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 64];
    let pending = UdpSocket::recv(sock, &mut buf);
    assert!(
        matches!(&pending, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "discard answered a datagram: {pending:?}"
    );
}

/// Protects: time stream sends exactly four bytes, the seconds since 1900
/// in network order, and closes; time dgram answers any datagram (an
/// empty one too) with the same four bytes; both are the clock's time.
#[test]
fn time_sends_seconds_since_1900_big_endian() {
    let d = Daemon::start(&pair("sockhost_time", "time", "fork"));
    let before = unix_now();
    let got = Stream::connect(&d.addr("time-tcp"))
        .and_then(|mut s| s.read_all())
        .expect("time stream");
    let after = unix_now();
    assert_eq!(got.len(), 4, "{got:?}");
    let t = rfc868_to_unix(&got);
    assert!(before <= t && t <= after, "{before} <= {t} <= {after}");

    let c = Dgram::connect(&d.addr("time-udp"), &d.dir.path);
    for msg in [&b""[..], b"what time is it?"] {
        let before = unix_now();
        c.send(msg).expect("send");
        let got = c.recv().expect("time datagram");
        let after = unix_now();
        assert_eq!(got.len(), 4, "{got:?}");
        let t = rfc868_to_unix(&got);
        assert!(before <= t && t <= after, "{before} <= {t} <= {after}");
    }
}
