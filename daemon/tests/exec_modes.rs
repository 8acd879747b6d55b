//! The exec plugin's request modes against real programs: stderr to the
//! log (with the listener and the program's pid, at info, `<N>` prefixes
//! honoured, junk escaped), to the connection, or nowhere; exit status
//! and signals in the access log and as failed requests; datagram
//! programs (stdin the datagram, stdout the reply); `max_children` and
//! `max_threads` bounding programs; `max_runtime` killing.

mod common;
use common::exec::*;
use common::observe::{observed, of, scrape};
use common::*;
use std::time::Duration;

/// Protects: `stderr = "log"` (the default) turns each line into a log
/// record with the listener and the program's pid, at info, at error with
/// a `<3>` prefix, control bytes escaped, the last unterminated line
/// kept; the client sees none of it.
#[test]
fn stderr_lines_become_log_records_with_listener_and_pid() {
    let dir = scripts_dir("exec-log");
    let s = script(
        &dir.path,
        "talk.sh",
        "echo $$; echo 'plain words here' >&2; echo '<3>it broke' >&2; \
         printf 'esc \\033[31mred\\n' >&2; printf 'no newline at end' >&2",
    );
    for mixin in ["fork", "thread"] {
        let d = Daemon::start(&tcp_exec("talker", mixin, &s, "", ""));
        let out = converse(&d.addr("talker"), b"");
        let pid = out.trim().to_string();
        assert!(
            pid.parse::<u32>().is_ok(),
            "{mixin}: the program's pid, got {out:?}"
        );
        assert!(
            !out.contains("plain"),
            "{mixin}: stderr must not reach the client"
        );
        let tag = format!("syslog_pid={pid}");
        assert!(
            d.wait_log("no newline at end", DEADLINE),
            "{mixin}: {}",
            d.log()
        );
        let log = d.log();
        let one = |needle: &str| -> String {
            let found = lines_with(&log, &[needle, &tag, "listener=talker"]);
            assert_eq!(
                found.len(),
                1,
                "{mixin}: one record for {needle:?} in\n{log}"
            );
            found[0].clone()
        };
        assert!(one("plain words here").contains(" INFO "), "{log}");
        let broke = one("it broke");
        assert!(
            broke.contains(" ERROR ") && !broke.contains("<3>"),
            "{broke}"
        );
        assert!(one("esc \\x1b[31mred").contains(" INFO "));
        one("no newline at end");
    }
}

/// Protects: `stderr = "connection"` gives the client the program's
/// stderr (inetd's way); `stderr = "null"` sends it nowhere.
#[test]
fn stderr_to_the_connection_or_nowhere() {
    let dir = scripts_dir("exec-stderr");
    let s = script(&dir.path, "err.sh", "echo out; echo 'err text xyzzy' >&2");
    let d = Daemon::start(&format!(
        "{}{}",
        tcp_exec("conn", "fork", &s, "", "stderr = \"connection\""),
        tcp_exec("null", "thread", &s, "", "stderr = \"null\""),
    ));
    let seen = converse(&d.addr("conn"), b"");
    assert!(
        seen.contains("out\n") && seen.contains("err text xyzzy"),
        "{seen:?}"
    );
    assert_eq!(converse(&d.addr("null"), b""), "out\n");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!d.log().contains("err text xyzzy"), "{}", d.log());
}

/// Protects: the exit status or signal and the run time are in the access
/// log line; a non-zero status or a signal counts as a failed request.
#[test]
fn exit_status_and_signals_reach_the_access_log_and_the_failure_count() {
    let dir = scripts_dir("exec-status");
    let ok = script(&dir.path, "ok.sh", "exit 0");
    let three = script(&dir.path, "three.sh", "exit 3");
    let killed = script(&dir.path, "killed.sh", "kill -9 $$");
    for mixin in ["fork", "thread"] {
        let listeners = [("ok", &ok), ("three", &three), ("killed", &killed)]
            .iter()
            .map(|(n, p)| tcp_exec(n, mixin, p, "access_log = true", ""))
            .collect::<String>();
        let d = Daemon::start(&observed(&listeners));
        for n in ["ok", "three", "killed"] {
            converse(&d.addr(n), b"");
        }
        let access = |n: &str| lines_with(&d.log(), &["request from", &format!("listener={n} ")]);
        let all_in = common::life::wait_until(DEADLINE, || {
            ["ok", "three", "killed"]
                .iter()
                .all(|n| !access(n).is_empty())
        });
        assert!(all_in, "{mixin}: three access log lines in\n{}", d.log());
        let ok_line = access("ok");
        assert!(
            ok_line.len() == 1
                && ok_line[0].contains("outcome=\"ok\"")
                && ok_line[0].contains("exit 0 in "),
            "{mixin}: {ok_line:?}"
        );
        let t = access("three");
        assert!(
            t.len() == 1 && t[0].contains("outcome=\"error\"") && t[0].contains("detail=\"pid "),
            "{mixin}: {t:?}"
        );
        let k = access("killed");
        assert!(
            k.len() == 1 && k[0].contains("outcome=\"error\"") && k[0].contains("SIGKILL"),
            "{mixin}: {k:?}"
        );
        let text = scrape(&d);
        assert_eq!(
            of(&d, "sockhost_requests_failed_total", "ok"),
            0.0,
            "{text}"
        );
        assert_eq!(
            of(&d, "sockhost_requests_failed_total", "three"),
            1.0,
            "{text}"
        );
        assert_eq!(
            of(&d, "sockhost_requests_failed_total", "killed"),
            1.0,
            "{text}"
        );
    }
}

/// Protects: a datagram program reads the datagram on stdin and its
/// stdout comes back as one datagram, with UDP variables; a program that
/// prints nothing sends nothing back.
#[test]
fn datagram_programs_answer_with_their_stdout() {
    let dir = scripts_dir("exec-dgram");
    let s = script(
        &dir.path,
        "udp.sh",
        "tr a-z A-Z; echo \"$PROTO $UDPREMOTEIP $UDPREMOTEPORT $REMOTE_ADDR $REMOTE_PORT $UDPLOCALIP $UDPLOCALPORT\"",
    );
    for mixin in ["fork", "thread", "sync"] {
        let d = Daemon::start(&exec_listener(
            "u",
            "inet",
            "dgram",
            "127.0.0.1:0",
            mixin,
            &argv(&s),
            "",
            "",
        ));
        let addr = d.inet("u");
        let c = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        c.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let port = c.local_addr().expect("local").port();
        c.send_to(b"hello datagram\n", addr).expect("send");
        let mut buf = [0u8; 2048];
        let (n, _) = c.recv_from(&mut buf).expect("a reply");
        let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
        let p = addr.port();
        assert_eq!(
            reply,
            format!("HELLO DATAGRAM\nUDP 127.0.0.1 {port} 127.0.0.1 {port} 127.0.0.1 {p}\n"),
            "{mixin}"
        );
    }
}

/// Protects: `max_children` (fork) and `max_threads` (thread) bound the
/// programs running at once; every client is still served.
#[test]
fn the_mixin_cap_bounds_running_programs() {
    let dir = scripts_dir("exec-cap");
    let journal = dir.join("journal");
    let s = script(
        &dir.path,
        "slow.sh",
        &format!(
            "echo start >> {j}; sleep 0.3; echo end >> {j}; echo done",
            j = journal.display()
        ),
    );
    for (mixin, key) in [("fork", "max_children"), ("thread", "max_threads")] {
        let _ = std::fs::remove_file(&journal);
        let d = Daemon::start(&tcp_exec("cap", mixin, &s, &format!("{key} = 2"), ""));
        let addr = d.addr("cap");
        let clients: Vec<_> = (0..6)
            .map(|_| {
                let a = addr.clone();
                std::thread::spawn(move || converse(&a, b""))
            })
            .collect();
        for c in clients {
            assert_eq!(
                c.join().expect("client"),
                "done\n",
                "{mixin}: every client served"
            );
        }
        let text = std::fs::read_to_string(&journal).expect("journal");
        let (mut running, mut most) = (0i32, 0i32);
        for line in text.lines() {
            running += if line == "start" { 1 } else { -1 };
            most = most.max(running);
        }
        assert_eq!(text.lines().filter(|l| *l == "start").count(), 6);
        assert!(
            most <= 2,
            "{mixin}: {most} programs ran at once with {key} = 2:\n{text}"
        );
    }
}

/// Protects: past `max_runtime` a program gets SIGTERM; one that ignores
/// it gets SIGKILL 5 s later; both are failed requests, named in the
/// access log, and reaped.
#[test]
fn max_runtime_terminates_then_kills() {
    let dir = scripts_dir("exec-runtime");
    let polite = script(&dir.path, "polite.sh", "echo up; exec sleep 30");
    let stubborn = script(
        &dir.path,
        "stubborn.sh",
        "trap '' TERM; echo up; sleep 30 & wait; sleep 30",
    );
    let listeners = format!(
        "{}{}",
        tcp_exec(
            "polite",
            "fork",
            &polite,
            "access_log = true",
            "max_runtime = 0.5"
        ),
        tcp_exec(
            "stubborn",
            "thread",
            &stubborn,
            "access_log = true",
            "max_runtime = 0.5"
        ),
    );
    let d = Daemon::start(&listeners);
    let (a, b) = (d.addr("polite"), d.addr("stubborn"));
    let t = std::thread::spawn(move || converse(&b, b""));
    assert_eq!(converse(&a, b""), "up\n");
    assert!(
        d.wait_log("killed by signal 15 (SIGTERM) (past max_runtime)", DEADLINE),
        "{}",
        d.log()
    );
    assert_eq!(t.join().expect("client"), "up\n");
    assert!(
        d.wait_log("killed by signal 9 (SIGKILL) (past max_runtime)", DEADLINE),
        "{}",
        d.log()
    );
    // The access log lines carry it (fork: the request child's detail
    // crosses to the worker through shared memory).
    let access = |n: &str, what: &str| {
        common::life::wait_until(DEADLINE, || {
            !lines_with(&d.log(), &["request from", &format!("listener={n} "), what]).is_empty()
        })
    };
    assert!(access("polite", "detail=\"pid "), "{}", d.log());
    assert!(
        access("polite", "SIGTERM) (past max_runtime)"),
        "{}",
        d.log()
    );
    assert!(
        access("stubborn", "SIGKILL) (past max_runtime)"),
        "{}",
        d.log()
    );
    for w in descendants(d.pid()) {
        assert_ne!(proc_state(w), Some('Z'), "zombie {w}");
    }
}

/// Protects: in fork mode the request child becomes the program (execve
/// in its place: the program's parent is the worker, and there is no
/// second process per request); with `max_runtime` it is spawned and
/// watched by the request child; in thread mode the worker spawns it.
#[test]
fn fork_mode_execs_in_place_unless_it_must_watch_the_clock() {
    let dir = scripts_dir("exec-inplace");
    let s = script(&dir.path, "ppid.sh", "echo $PPID");
    let d = Daemon::start(&format!(
        "{}{}{}",
        tcp_exec("direct", "fork", &s, "", ""),
        tcp_exec("watched", "fork", &s, "", "max_runtime = 30"),
        tcp_exec("threaded", "thread", &s, "", ""),
    ));
    let parent = |n: &str| {
        converse(&d.addr(n), b"")
            .trim()
            .parse::<i32>()
            .expect("a pid")
    };
    assert_eq!(
        parent("direct"),
        worker(&d, "direct"),
        "fork: the worker's own child"
    );
    assert_ne!(
        parent("watched"),
        worker(&d, "watched"),
        "max_runtime: a request child's"
    );
    assert_eq!(
        parent("threaded"),
        worker(&d, "threaded"),
        "thread: spawned by the worker"
    );
}

/// Protects: a `wait` program that ends without taking the datagram
/// waiting on the socket is not restarted in a tight loop: the listener
/// pauses (inetd's "looping" check) and says why.
#[test]
fn a_wait_program_that_takes_nothing_does_not_spin() {
    let dir = scripts_dir("exec-loop");
    let runs = dir.join("runs");
    let s = script(
        &dir.path,
        "lazy.sh",
        &format!("echo run >> {}", runs.display()),
    );
    let d = Daemon::start(&exec_listener(
        "lazy",
        "inet",
        "dgram",
        "127.0.0.1:0",
        "fork",
        &argv(&s),
        "",
        "wait = true",
    ));
    let c = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    c.send_to(b"never read", d.inet("lazy")).expect("send");
    assert!(
        d.wait_log("keeps ending without taking the request", DEADLINE),
        "{}",
        d.log()
    );
}
