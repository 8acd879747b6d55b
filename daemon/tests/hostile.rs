//! Hostile clients and exhaustion against the real daemon: garbage, a
//! 1 MiB line, resets, empty and oversized datagrams at every family ×
//! type × mixin (nothing crashes, no worker leaks a descriptor);
//! `connection_timeout` closing idle and stalled connections; slow clients
//! (slowloris) held to the per-source and thread caps while others are
//! served; running out of descriptors (low RLIMIT_NOFILE): back off, log
//! once, no busy loop, recover; and the master raising its soft
//! descriptor limit to the hard one.

mod common;
use common::sec::*;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn address(family: &str, name: &str) -> String {
    match family {
        "inet" => "127.0.0.1:0".into(),
        "inet6" => "[::1]:0".into(),
        _ => format!("@sockhost-hostile-{}-{name}", std::process::id()),
    }
}

/// Garbage at one stream listener; then it must still answer PING.
fn abuse_stream(addr: &str, rng: &mut Rng) {
    // Random bytes (some newlines among them), then a clean close.
    let mut s = Stream::connect(addr).expect("connect");
    let _ = s.write_all(&rng.bytes(64 * 1024));
    s.shutdown_write();
    let _ = s.read_all();
    // A 1 MiB line: refused by the plugin's own limit, connection closed.
    let mut s = Stream::connect(addr).expect("connect");
    let line = vec![b'A'; 1 << 20];
    let writer = match &s {
        Stream::Tcp(t) => Stream::Tcp(t.try_clone().expect("clone")),
        Stream::Unix(u) => Stream::Unix(u.try_clone().expect("clone")),
    };
    let sent = std::thread::spawn(move || {
        let mut w = writer;
        let _ = w.write_all(&line);
    });
    let reply = read_until_eof(&mut s, DEADLINE).expect("closed after the long line");
    assert!(reply.starts_with(b"ERR line too long"), "{addr}: {reply:?}");
    drop(s);
    sent.join().expect("writer");
    // Connect and vanish; connect, half a command, vanish.
    drop(Stream::connect(addr).expect("connect"));
    let mut s = Stream::connect(addr).expect("connect");
    let _ = s.write_all(b"PI");
    drop(s);
    // A reset in the middle of a command (TCP only: linger 0).
    if let Stream::Tcp(t) = Stream::connect(addr).expect("connect") {
        let _ = (&t).write_all(b"ECHO half");
        let sock = socket2::SockRef::from(&t);
        let _ = sock.set_linger(Some(Duration::ZERO));
    }
    assert_eq!(stream_cmd(addr, "PING"), "PONG", "{addr} still serves");
}

/// Garbage at one datagram listener; then it must still answer PING.
fn abuse_dgram(d: &Daemon, addr: &str, rng: &mut Rng) {
    let c = Dgram::connect(addr, &d.dir.path);
    c.send(b"").expect("empty datagram");
    assert_eq!(
        c.recv().expect("a reply to an empty datagram"),
        b"ERR unknown command\n"
    );
    c.set_timeout(Some(Duration::from_millis(300)));
    let too_big = if addr.starts_with('@') {
        100_000
    } else {
        65_507
    };
    for size in [8193, too_big] {
        c.send(&vec![b'x'; size]).expect("oversized datagram");
        assert!(
            c.recv().is_err(),
            "{addr}: a {size}-byte datagram is dropped"
        );
    }
    for i in 0..50 {
        let len = (rng.next() % 8192) as usize;
        let mut data = rng.bytes(len);
        if data.starts_with(b"DENY") || data.starts_with(b"SLEEP") {
            data[0] = b'#';
        }
        c.send(&data)
            .unwrap_or_else(|e| panic!("{addr}: datagram {i}: {e}"));
        let _ = c.recv();
    }
    // Replies to the random datagrams may still be on their way: skip
    // them until the answer to this one arrives.
    c.set_timeout(Some(DEADLINE));
    c.send(b"ECHO still serving").expect("send");
    let answered = (0..100).any(|_| c.recv().is_ok_and(|r| r == b"still serving\n"));
    assert!(answered, "{addr} still serves");
}

/// Protects: nothing a client sends crashes a worker or leaks one of its
/// descriptors, at every family × type × mixin: random bytes, a 1 MiB
/// line, resets, half commands, empty and oversized datagrams.
#[test]
fn garbage_at_every_listener_kind_crashes_nothing_and_leaks_nothing() {
    let probe = plugin("sockhost_probe");
    let mut cfg = String::new();
    let mut names = Vec::new();
    for family in ["inet", "inet6", "unix"] {
        for ty in ["stream", "dgram"] {
            for mixin in ["sync", "thread", "fork"] {
                let name = format!("g-{family}-{ty}-{mixin}");
                let extra = if ty == "stream" {
                    "connection_timeout = 5.0"
                } else {
                    ""
                };
                cfg += &listener(
                    &name,
                    family,
                    ty,
                    &address(family, &name),
                    mixin,
                    &probe,
                    extra,
                );
                names.push((name, ty));
            }
        }
    }
    let d = Daemon::start(&cfg);
    let mut before = Vec::new();
    for (name, ty) in &names {
        let addr = d.addr(name);
        if *ty == "stream" {
            assert_eq!(stream_cmd(&addr, "PING"), "PONG");
        } else {
            assert_eq!(Dgram::connect(&addr, &d.dir.path).cmd("PING"), "PONG");
        }
        let w = worker_of(d.pid(), name).expect("worker");
        let settled = wait_for(DEADLINE, || child_pids(w).is_empty().then_some(()));
        assert!(settled.is_some(), "{name}: children reaped");
        before.push((w, fd_count_at_rest(w)));
    }
    let mut rng = Rng(0x0bad_c0de_dead_beef);
    for (name, ty) in &names {
        let addr = d.addr(name);
        if *ty == "stream" {
            abuse_stream(&addr, &mut rng);
        } else {
            abuse_dgram(&d, &addr, &mut rng);
        }
    }
    for ((name, _), (w, fds)) in names.iter().zip(&before) {
        assert_eq!(
            worker_of(d.pid(), name),
            Some(*w),
            "{name}: the worker was never replaced"
        );
        let flat = wait_for(DEADLINE, || (fd_count(*w) <= *fds).then_some(()));
        assert!(flat.is_some(), "{name}: {} fds, {fds} before", fd_count(*w));
    }
    let log = d.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("killed by"), "{log}");
    assert!(log.contains("dropped a 8193-byte datagram"), "{log}");
}

/// Protects: `connection_timeout` closes a connection whose client sends
/// nothing, and one whose client stops reading, so in sync mode the next
/// client waits at most about that long.
#[test]
fn connection_timeout_closes_idle_and_stalled_connections() {
    let cfg = listener(
        "idle",
        "inet",
        "stream",
        "127.0.0.1:0",
        "sync",
        &plugin("sockhost_probe"),
        "connection_timeout = 0.5",
    ) + &listener(
        "stall",
        "inet",
        "stream",
        "127.0.0.1:0",
        "sync",
        &plugin("sockhost_echo"),
        "connection_timeout = 0.5",
    );
    let d = Daemon::start(&cfg);

    let idle_addr = d.inet("idle");
    let mut idle = TcpStream::connect(idle_addr).expect("connect");
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    assert_eq!(ping_from("127.0.0.1", idle_addr), Outcome::Served);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "the idle client held the sync listener: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "but only until connection_timeout: {waited:?}"
    );
    assert!(
        read_until_eof(&mut idle, DEADLINE).is_some(),
        "the idle client was closed"
    );

    // A client that sends without reading: the server's write stalls.
    let stall_addr = d.inet("stall");
    let hog = {
        use socket2::{Domain, SockAddr, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        s.set_recv_buffer_size(4096).expect("small receive buffer");
        s.connect(&SockAddr::from(stall_addr)).expect("connect");
        TcpStream::from(s)
    };
    hog.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let pusher = std::thread::spawn(move || {
        let chunk = vec![b'z'; 64 * 1024];
        let mut sent = 0usize;
        while sent < 64 << 20 {
            match (&hog).write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => return sent,
            }
        }
        sent
    });
    let timed_out = wait_for(DEADLINE, || {
        d.log()
            .lines()
            .any(|l| l.contains("listener=stall") && l.contains("handle: "))
            .then_some(())
    });
    assert!(
        timed_out.is_some(),
        "the stalled write timed out:\n{}",
        d.log()
    );
    let start = Instant::now();
    let mut next = Stream::connect(&d.addr("stall")).expect("connect");
    next.write_all(b"hello\n").expect("write");
    let mut buf = [0u8; 6];
    next.read_exact(&mut buf).expect("echo");
    assert_eq!(&buf, b"hello\n");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let sent = pusher.join().expect("pusher");
    assert!(
        sent < 64 << 20,
        "the stalled client was cut off after {sent} bytes"
    );
}

/// Protects: slow clients (slowloris: connect, then send nothing or a
/// byte now and then) from one source hold at most
/// `max_connections_per_source` request threads; the rest are refused at
/// once, other clients are served without delay throughout, and idle
/// connections are closed after `connection_timeout`.
#[test]
fn slow_clients_are_held_to_the_caps_and_others_are_served() {
    let extra = "max_threads = 8\nmax_connections_per_source = 2\nconnection_timeout = 1.0\n\
                 refuse_message = \"busy\\n\"";
    let d = Daemon::start(&listener(
        "slow",
        "inet",
        "stream",
        "127.0.0.1:0",
        "thread",
        &plugin("sockhost_probe"),
        extra,
    ));
    let addr = d.inet("slow");
    let mut slow: Vec<TcpStream> = (0..30)
        .map(|_| tcp_from("127.0.0.2", addr).expect("connect"))
        .collect();
    let mut admitted = Vec::new();
    for (i, s) in slow.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut b = [0u8; 16];
        match s.read(&mut b) {
            Ok(n) if &b[..n] == b"busy\n" => {}
            _ => admitted.push(i),
        }
    }
    assert_eq!(
        admitted.len(),
        2,
        "all but max_connections_per_source = 2 refused"
    );
    let mut slow: Vec<TcpStream> = admitted
        .iter()
        .rev()
        .map(|&i| slow.swap_remove(i))
        .collect();
    // The two admitted trickle a byte every 300 ms: their reads never
    // time out, so only the per-source cap bounds them.
    let start = Instant::now();
    let mut latencies = Vec::new();
    while start.elapsed() < Duration::from_millis(2500) {
        for s in slow.iter_mut() {
            let _ = s.write_all(b"P");
        }
        for src in ["127.0.0.3", "127.0.0.4", "127.0.0.5"] {
            let t = Instant::now();
            assert_eq!(
                ping_from(src, addr),
                Outcome::Served,
                "{src} at {:?}",
                start.elapsed()
            );
            latencies.push(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let worst = latencies.iter().max().copied().unwrap_or_default();
    // Without the cap they would wait for ever (the trickle never times
    // out); with it, only for their own turn (generous for a loaded CI).
    assert!(
        worst < Duration::from_secs(2),
        "others waited up to {worst:?}"
    );
    // Once they stop trickling, connection_timeout closes them.
    for s in slow.iter_mut() {
        s.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let t = Instant::now();
        assert!(
            read_until_eof(s, DEADLINE).is_some(),
            "closed by the server"
        );
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }
}

/// Protects: out of descriptors (EMFILE), the worker stops polling the
/// listening socket and retries with back-off (no busy loop), logs the
/// episode once, and when descriptors free up it accepts again (saying
/// so) and serves the clients that waited in the backlog.
#[test]
fn out_of_descriptors_backs_off_logs_once_and_recovers() {
    let probe = plugin("sockhost_probe");
    let cfg = listener(
        "nofd",
        "inet",
        "stream",
        "127.0.0.1:0",
        "thread",
        &probe,
        "",
    );
    let d = start_with_nofile(&cfg, 32, 32)
        .unwrap_or_else(|f| panic!("start ({}):\n{}", f.status, f.log));
    let addr: SocketAddr = d.inet("nofd");
    let w = worker_of(d.pid(), "nofd").expect("worker");
    assert_eq!(nofile_limits(w), Some((32, 32)));
    let mut held = Vec::new();
    while !d.log().contains("cannot accept") {
        assert!(
            held.len() < 40,
            "no EMFILE after {} connections:\n{}",
            held.len(),
            d.log()
        );
        let mut s = tcp_from("127.0.0.1", addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let _ = s.write_all(b"PING\n");
        let mut b = [0u8; 5];
        let _ = s.read(&mut b);
        held.push(s);
    }
    // Clients that arrive now wait in the backlog.
    let mut waiting: Vec<TcpStream> = (0..3)
        .map(|_| tcp_from("127.0.0.1", addr).expect("backlog connect"))
        .collect();
    let cpu_before = cpu_ticks(w);
    std::thread::sleep(Duration::from_millis(1500));
    let ticks = cpu_ticks(w) - cpu_before;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    assert!(
        ticks * 10 < hz * 3,
        "the worker used {ticks} ticks (hz {hz}) in 1.5 s"
    );
    assert_eq!(
        count_lines(&d.log(), "cannot accept"),
        1,
        "one line per episode:\n{}",
        d.log()
    );
    drop(held);
    for (i, s) in waiting.iter_mut().enumerate() {
        s.set_read_timeout(Some(DEADLINE)).expect("timeout");
        assert_eq!(ping_on(s), Outcome::Served, "waiting client {i}");
    }
    assert!(d.wait_log("accepting again after", DEADLINE), "{}", d.log());
    assert_eq!(ping_from("127.0.0.1", addr), Outcome::Served);
    assert_eq!(count_lines(&d.log(), "cannot accept"), 1);
}

/// Protects: the master raises its soft RLIMIT_NOFILE to the hard limit
/// at start, and its workers inherit the raised limit.
#[test]
fn the_master_raises_its_soft_descriptor_limit_to_the_hard_one() {
    let cfg = listener(
        "lim",
        "inet",
        "stream",
        "127.0.0.1:0",
        "sync",
        &plugin("sockhost_probe"),
        "",
    );
    let d = start_with_nofile(&cfg, 256, 4096)
        .unwrap_or_else(|f| panic!("start ({}):\n{}", f.status, f.log));
    assert_eq!(nofile_limits(d.pid()), Some((4096, 4096)), "master");
    let w = worker_of(d.pid(), "lim").expect("worker");
    assert_eq!(nofile_limits(w), Some((4096, 4096)), "worker");
}
