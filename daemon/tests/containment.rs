//! A handler that panics, or a client that sends garbage, never takes its
//! worker down: in every mixin the same worker serves the next request.

mod common;
use common::life::*;
use common::*;
use std::io::Write;

// A PANIC closes only that connection, is logged with listener and client, and the SAME worker serves on.
#[test]
fn panic_is_contained_in_every_mixin() {
    let mut cfg = String::new();
    for m in MIXINS {
        cfg += &tcp_probe(&format!("panic-{m}"), m, "");
    }
    let d = Daemon::start(&cfg);
    let workers = workers_of(d.pid());
    for m in MIXINS {
        let name = format!("panic-{m}");
        let who = if m == "fork" { "PPID" } else { "PID" };
        let mut p = Probe::connect(&d.addr(&name));
        let before = p.cmd(who);
        let client = p.cmd("CLIENT");
        let err = p
            .try_cmd("PANIC")
            .expect_err("no reply to PANIC: the connection closes");
        assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ),
            "{name}: closed, not timed out: {err}"
        );
        let needles = ["asked for PANIC", name.as_str(), client.as_str()];
        assert!(
            wait_until(DEADLINE, || has_line(&d.log(), &needles)),
            "{name}: the panic is logged with listener and client {client}:\n{}",
            d.log()
        );
        let after = Probe::connect(&d.addr(&name)).cmd(who);
        assert_eq!(
            before, after,
            "{name}: the same worker ({who}) serves the next connection"
        );
        assert!(
            workers.contains(&after.parse().expect("pid")),
            "{name}: a worker of this daemon"
        );
    }
    assert_eq!(workers_of(d.pid()), workers, "no worker was replaced");
}

// Random bytes with NULs and a 1 MiB line never kill a worker, on any mixin, stream or datagram.
#[test]
fn garbage_never_kills_a_worker() {
    let mut cfg = String::new();
    for m in MIXINS {
        for ty in ["stream", "dgram"] {
            cfg += &probe_listener(&format!("junk-{ty}-{m}"), "inet", ty, "127.0.0.1:0", m, "");
        }
    }
    let d = Daemon::start(&cfg);
    let workers = workers_of(d.pid());
    for (i, m) in MIXINS.iter().enumerate() {
        let name = format!("junk-stream-{m}");
        let junk = noise(i as u64 + 11, 64 * 1024);
        // One command per `\n`, plus a last line without one.
        let newlines = junk.iter().filter(|&&b| b == b'\n').count();
        let commands = newlines + usize::from(junk.last() != Some(&b'\n'));
        let mut s = Stream::connect(&d.addr(&name)).expect("connect");
        s.write_all(&junk).expect("send noise");
        s.shutdown_write();
        let replies = read_until_closed(&mut s, DEADLINE).expect("closes after EOF");
        let replies = String::from_utf8_lossy(&replies);
        assert!(
            replies.lines().all(|l| l == "ERR unknown command"),
            "{name}: {replies:?}"
        );
        assert_eq!(
            replies.lines().count(),
            commands,
            "{name}: one reply per line"
        );

        let long: Vec<u8> = noise(i as u64 + 99, 1 << 20)
            .into_iter()
            .filter(|&b| b != b'\n')
            .collect();
        let mut s = Stream::connect(&d.addr(&name)).expect("connect");
        let _ = s.write_all(&long); // the probe may hang up mid-way
        read_until_closed(&mut s, DEADLINE).expect("a 1 MiB line is cut off");
        assert_eq!(
            Probe::connect(&d.addr(&name)).cmd("PING"),
            "PONG",
            "{name} still serves"
        );

        let name = format!("junk-dgram-{m}");
        let c = Dgram::connect(&d.addr(&name), &d.dir.path);
        for k in 0..20 {
            let mut junk = noise(k * 31 + i as u64, 1 + (k as usize * 67) % 1400);
            junk[0] = 0; // never a real command
            c.send(&junk).expect("send noise");
            assert_eq!(c.recv().expect("reply"), b"ERR unknown command\n", "{name}");
        }
        assert_eq!(c.cmd("PING"), "PONG", "{name} still serves");
    }
    assert_eq!(workers_of(d.pid()), workers, "every worker survived");
}
