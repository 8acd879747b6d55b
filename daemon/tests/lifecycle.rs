//! Lifecycle: what a user sees from start to stop of the real `sockhostd`.
//! Startup is all-or-nothing (a bad plugin, a missing handler or a taken
//! address exits 1 naming the listener and the cause); SIGTERM lets
//! requests in flight finish and a second one stops at once; unix socket
//! files are cleaned up, stale ones replaced, live ones never stolen; the C
//! plugin and the daytime plugin serve; a panicking or fed-garbage handler
//! never takes its worker down; `[listener.config]`, `max_packet_size` and
//! `connection_timeout` do what the config page says.

mod common;
use common::life::*;
use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

const MIXINS: [&str; 3] = ["sync", "thread", "fork"];

/// Start a daemon on `config` written into `dir` (for tests that must know
/// the folder before the daemon starts).
fn start_in(dir: TestDir, config: &str) -> Result<Daemon, Failed> {
    let path = dir.write("sockhost.toml", config);
    Daemon::try_start_in(dir, path, &[])
}

/// The outcome of a start that must fail.
fn refused(config: &str) -> Failed {
    match Daemon::try_start(config) {
        Ok(d) => panic!("the daemon started but should have refused:\n{}", d.log()),
        Err(f) => f,
    }
}

/// A probe listener on loopback TCP, any free port.
fn tcp_probe(name: &str, mixin: &str, extra: &str) -> String {
    probe_listener(name, "inet", "stream", "127.0.0.1:0", mixin, extra)
}

/// A probe listener on a unix path (or `@name`).
fn unix_probe(name: &str, ty: &str, path: &str, mixin: &str) -> String {
    probe_listener(name, "unix", ty, path, mixin, "")
}

// Startup refuses every broken plugin with exit 1, naming the listener, the plugin path and why.
#[test]
fn startup_refuses_each_broken_fixture_plugin_naming_listener_and_path() {
    let host = format!(
        "{}.{}",
        sockhost_sdk::sys::SOCKHOST_ABI_MAJOR,
        sockhost_sdk::sys::SOCKHOST_ABI_MINOR
    );
    let cases = [
        ("sockhost_fixture_abi_major", vec!["2.0", host.as_str()]),
        ("sockhost_fixture_no_entry", vec!["sockhost_plugin_init"]),
        ("sockhost_fixture_create_fails", vec!["cannot serve fx-bad"]),
        ("sockhost_fixture_hooks", vec!["record"]), // create: `record` is required
    ];
    for (stem, why) in cases {
        let so = plugin(stem);
        let cfg = listener("fx-bad", "inet", "stream", "127.0.0.1:0", "thread", &so, "");
        let f = refused(&cfg);
        assert_eq!(f.status.code(), Some(1), "{stem}: exit 1\n{}", f.log);
        let path = so.display().to_string();
        let mut needles = vec!["fx-bad", path.as_str()];
        needles.extend(why.iter().copied());
        assert!(
            has_line(&f.log, &needles),
            "{stem}: one line names {needles:?}:\n{}",
            f.log
        );
    }
}

// A plugin that starts threads at load is refused at startup under mixin = "fork" (forking would be unsafe).
#[test]
fn startup_refuses_fork_mixin_for_a_multithreaded_plugin() {
    let so = plugin("sockhost_fixture_thread_at_load");
    let cfg = listener(
        "fx-threads",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        &so,
        "",
    );
    let f = refused(&cfg);
    assert_eq!(f.status.code(), Some(1), "exit 1\n{}", f.log);
    assert!(
        has_line(&f.log, &["fx-threads", "fork"]),
        "names the listener and the refused mixin:\n{}",
        f.log
    );
    let thread = listener(
        "fx-threads",
        "inet",
        "stream",
        "127.0.0.1:0",
        "thread",
        &so,
        "",
    );
    let d = Daemon::start(&thread);
    let mut s = Stream::connect(&d.addr("fx-threads")).expect("connect");
    assert_eq!(
        s.read_all().expect("reply"),
        b"OK\n",
        "serves under mixin = thread"
    );
}

// A handler path that does not exist stops startup with exit 1, naming the path.
#[test]
fn startup_refuses_a_missing_handler_naming_its_path() {
    let dir = TestDir::new("lc-missing");
    let gone = dir.join("libnot_there.so");
    let cfg = listener(
        "nohandler",
        "inet",
        "stream",
        "127.0.0.1:0",
        "sync",
        &gone,
        "",
    );
    let f = refused(&cfg);
    assert_eq!(f.status.code(), Some(1), "exit 1\n{}", f.log);
    let gone = gone.display().to_string();
    assert!(
        has_line(&f.log, &[&gone, "handler"]),
        "names the handler path:\n{}",
        f.log
    );
}

// An address another process holds makes startup exit 1, naming the listener and the address.
#[test]
fn bind_failure_exits_1_naming_listener_and_address() {
    let (_held, port) = hold_port();
    let addr = format!("127.0.0.1:{port}");
    let ok = tcp_probe("free-one", "thread", "");
    let busy = probe_listener("taken-port", "inet", "stream", &addr, "thread", "");
    let f = refused(&format!("{ok}{busy}"));
    assert_eq!(f.status.code(), Some(1), "exit 1\n{}", f.log);
    assert!(
        has_line(&f.log, &["taken-port", &addr]),
        "names listener and address:\n{}",
        f.log
    );
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

// Unix socket files (relative to the config folder or absolute) exist while serving and are removed on exit.
#[test]
fn unix_socket_files_are_removed_on_exit() {
    let dir = TestDir::new("lc-unix");
    let dgram = dir.join("abs-dgram.sock");
    let cfg = unix_probe("u-stream", "stream", "rel-stream.sock", "thread")
        + &unix_probe("u-dgram", "dgram", &dgram.display().to_string(), "sync");
    let stream = dir.join("rel-stream.sock");
    let d = start_in(dir, &cfg).unwrap_or_else(|f| panic!("start: {}\n{}", f.status, f.log));
    assert_eq!(
        Probe::connect(&stream.display().to_string()).cmd("PING"),
        "PONG"
    );
    assert_eq!(
        Dgram::connect(&d.addr("u-dgram"), &d.dir.path).cmd("PING"),
        "PONG"
    );
    assert!(
        stream.exists() && dgram.exists(),
        "socket files exist while serving"
    );
    let (status, log) = d.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!stream.exists(), "{} removed on exit", stream.display());
    assert!(!dgram.exists(), "{} removed on exit", dgram.display());
}

// A socket file left by a dead process is replaced at start, and the daemon serves on it.
#[test]
fn stale_unix_socket_file_is_replaced_at_start() {
    let dir = TestDir::new("lc-stale");
    let path = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind the stale socket"));
    assert!(path.exists(), "the dead listener left its file");
    let cfg = unix_probe("stale", "stream", &path.display().to_string(), "sync");
    let _d = start_in(dir, &cfg).unwrap_or_else(|f| panic!("start: {}\n{}", f.status, f.log));
    let mut p = Probe::connect(&path.display().to_string());
    assert_eq!(
        p.cmd("LISTENER"),
        "stale",
        "the daemon serves on the replaced path"
    );
}

// A unix socket a live process listens on is never stolen: start fails with exit 1 naming the path.
#[test]
fn live_unix_socket_is_not_stolen() {
    // The socket lives in a folder of its own: a failed start removes the daemon's.
    let owner = TestDir::new("lc-live-owner");
    let path = owner.join("live.sock");
    let live = std::os::unix::net::UnixListener::bind(&path).expect("bind the live socket");
    let cfg = unix_probe("thief", "stream", &path.display().to_string(), "sync");
    let f = refused(&cfg);
    assert_eq!(f.status.code(), Some(1), "exit 1\n{}", f.log);
    let shown = path.display().to_string();
    assert!(
        has_line(&f.log, &["thief", &shown]),
        "names listener and path:\n{}",
        f.log
    );
    let _client = std::os::unix::net::UnixStream::connect(&path).expect("our socket still answers");
    live.set_nonblocking(false).expect("blocking");
    assert!(
        live.accept().is_ok(),
        "the connection reached the original owner"
    );
}

// An abstract `@name` unix address serves (no file involved).
#[test]
fn abstract_unix_address_serves() {
    let name = format!("@sockhost-lc-{}", std::process::id());
    let cfg = unix_probe("abstract", "stream", &name, "thread");
    let d = Daemon::start(&cfg);
    assert_eq!(d.addr("abstract"), name, "logged as the abstract name");
    let mut p = Probe::connect(&name);
    assert_eq!(p.cmd("LISTENER"), "abstract");
    assert_eq!(p.cmd("CLIENT"), "", "an unnamed unix peer");
}

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
