//! `[listener.sandbox]` against the real daemon, with a hostile C plugin
//! (plugins/fixtures/hostile-c) that tries each escape: read another
//! listener's file (also from its constructor, inside dlopen), write
//! outside its paths, TCP/UDP/MPTCP out, exec /bin/sh, create a user
//! namespace, signal and ptrace a sibling worker. Under `enforce` each
//! fails with its errno, the listener keeps serving, the sibling and the
//! master are untouched and the log names what was blocked; with the
//! sandbox off the same probes succeed (the tests are not vacuous); under
//! `log` they succeed and are reported. The echo plugin serves under
//! `enforce` in fork and thread mode.
//! Needs Landlock ABI 6 or newer: SKIPPED otherwise (fails when
//! SOCKHOST_REQUIRE_LANDLOCK is set).

mod common;
use common::hostile::*;
use common::life::*;
use common::sec::landlock_or_skip;
use common::*;
use std::io::Write;
use std::process::Command;

// Protects: under enforce every escape fails with its errno, the plugin's
// constructor cannot read a secret during dlopen, and the log names the
// listener, the pid and each blocked call.
#[test]
fn enforce_blocks_every_escape_with_an_errno_and_logs_it() {
    if !landlock_or_skip() {
        return;
    }
    let mixins = ["sync", "fork"];
    let s = Hostile::start(Runs::Plugin, "enforce", &mixins);
    let mut names = Vec::new();
    for m in mixins {
        let name = s.name(m);
        let (got, _) = s.probe_all(&name);
        s.assert_enforced(&name, &got);
        s.assert_log_names_calls(BLOCKED, &name);
        let start = [
            &format!("listener={name}"),
            "worker box: user=",
            "no_new_privs=true sandbox=enforce landlock=[ABI ",
        ];
        assert!(has_line(&s.d.log(), &start), "start line:\n{}", s.d.log());
        names.push(name);
    }
    s.assert_nothing_beside_the_config();
    s.assert_still_serving(&names.iter().map(String::as_str).collect::<Vec<_>>());
}

// Protects: the probes are real: with the sandbox off every one succeeds.
#[test]
fn with_the_sandbox_off_the_same_escapes_succeed() {
    let s = Hostile::start(Runs::Plugin, "off", &["sync"]);
    let (got, _) = s.probe_all("hostile-sync");
    assert_all_succeed(&got, "with the sandbox off");
    assert_eq!(got["read_mine"], "OK read 5");
    assert!(has_line(
        &s.d.log(),
        &[
            "listener=hostile-sync",
            "worker box: user=",
            "no_new_privs=true sandbox=off"
        ]
    ));
    s.assert_still_serving(&["hostile-sync"]);
}

// Protects: log mode blocks nothing and reports every call enforce would block.
#[test]
fn log_mode_lets_every_escape_through_and_reports_it() {
    if !landlock_or_skip() {
        return;
    }
    let s = Hostile::start(Runs::Plugin, "log", &["fork"]);
    let (got, _) = s.probe_all("hostile-fork");
    assert_all_succeed(&got, "under log mode");
    s.assert_log_names_calls(WOULD_BLOCK, "hostile-fork");
    let start = [
        "worker box: user=",
        "sandbox=log landlock=[files not restricted",
        "seccomp=[",
    ];
    assert!(has_line(&s.d.log(), &start), "start line:\n{}", s.d.log());
    s.assert_still_serving(&["hostile-fork"]);
}

// Protects: an ordinary plugin needs nothing more than the runtime grants:
// echo serves under enforce with network = "none" in fork and thread mode.
#[test]
fn echo_serves_under_enforce_in_fork_and_thread_mode() {
    if !landlock_or_skip() {
        return;
    }
    let echo = plugin("sockhost_echo");
    let sandbox = "[listener.sandbox]\nmode = \"enforce\"\nnetwork = \"none\"\n";
    let mut cfg = String::new();
    for m in ["fork", "thread"] {
        cfg += &listener(
            &format!("echo-{m}"),
            "inet",
            "stream",
            "127.0.0.1:0",
            m,
            &echo,
            sandbox,
        );
    }
    let d = Daemon::start(&cfg);
    for m in ["fork", "thread"] {
        let name = format!("echo-{m}");
        for i in 0..3 {
            let mut s = Stream::connect(&d.addr(&name)).expect("connect");
            let text = format!("hello {i} from {name}\n");
            s.write_all(text.as_bytes()).expect("send");
            s.shutdown_write();
            let back = s.read_all().expect("echo");
            assert_eq!(String::from_utf8_lossy(&back), text, "{name} echoes");
        }
        let start = [
            &format!("listener={name}"),
            "worker box: user=",
            "no_new_privs=true sandbox=enforce landlock=[ABI ",
        ];
        assert!(has_line(&d.log(), &start), "start line:\n{}", d.log());
    }
    assert!(
        !d.log().contains("sandbox blocked"),
        "nothing blocked:\n{}",
        d.log()
    );
}

// Protects: `sockhostctl security` lists what a boxed listener may reach
// (its own paths and its runtime's, never the config folder) and scores an
// unboxed one as fully exposed; an unknown listener is an error.
#[test]
fn security_lists_each_listeners_reach_and_scores_its_exposure() {
    let dir = TestDir::new("security");
    dir.write("mine/a.txt", "mine\n");
    let echo = plugin("sockhost_echo");
    let boxed =
        "[listener.sandbox]\nmode = \"enforce\"\nread_only = [\"mine\"]\nnetwork = \"none\"\n";
    let mut cfg = listener(
        "boxed",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        &echo,
        boxed,
    );
    cfg += &listener("open", "inet", "stream", "127.0.0.1:0", "fork", &echo, "");
    let config = dir.write("sockhost.toml", &cfg);
    let run = |args: &[&str]| {
        let out = Command::new(common::observe::sockhostctl())
            .arg("security")
            .arg("-c")
            .arg(&config)
            .args(args)
            .output()
            .expect("run sockhostctl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), text, err)
    };
    let (code, text, err) = run(&[]);
    assert_eq!(code, Some(0), "{err}");
    let mine = dir.join("mine").display().to_string();
    let folder = dir.path.display().to_string();
    assert!(has_line(&text, &["read ", &mine, "(read_only)"]), "{text}");
    assert!(
        has_line(
            &text,
            &["read+exec", &echo.display().to_string(), "(plugin)"]
        ),
        "{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.trim_end().ends_with(&format!("{folder}  (read_only)"))),
        "the config folder itself is not granted:\n{text}"
    );
    assert!(has_line(&text, &["boxed", "2.5 MEDIUM"]), "{text}");
    assert!(has_line(&text, &["open", "10.0 UNSAFE"]), "{text}");
    let (code, text, _) = run(&["open"]);
    assert_eq!(code, Some(0));
    assert!(
        !text.contains("listener boxed"),
        "only the listener asked for:\n{text}"
    );
    let (code, _, err) = run(&["nope"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no listener named nope"), "{err}");
}

// Protects: a flood of blocked calls does not become a flood of log lines:
// one line a second for the same call, and a later line says how many were
// held back.
#[test]
fn blocked_call_lines_are_rate_limited_and_count_what_was_held_back() {
    if !landlock_or_skip() {
        return;
    }
    let s = Hostile::start(Runs::Plugin, "enforce", &["sync"]);
    let addr = s.d.addr("hostile-sync");
    let mut p = Probe::connect(&addr);
    assert_eq!(p.cmd("SOCKETS 500"), "EAFNOSUPPORT opened 0");
    let what = "sandbox blocked socket(AF_INET, SOCK_STREAM) in listener hostile-sync";
    let count = |log: &str| log.lines().filter(|l| l.contains(what)).count();
    assert!(
        wait_until(DEADLINE, || count(&s.d.log()) >= 1),
        "{}",
        s.d.log()
    );
    // 500 calls are 500 notifications; at one line a second, far fewer lines.
    assert!(count(&s.d.log()) < 50, "rate-limited:\n{}", s.d.log());
    // The master logs them, from the worker's log relay (so they follow a
    // log file reopened on SIGUSR1), at warning level with the writer's pid.
    let relayed = |l: &&str| l.contains(what) && l.contains("WARN") && l.contains("syslog_pid=");
    assert!(
        s.d.log().lines().any(|l| relayed(&l)),
        "through the relay:\n{}",
        s.d.log()
    );
    let held = |log: &str| {
        log.lines()
            .any(|l| l.contains(what) && l.contains("more held back"))
    };
    assert!(
        wait_until(DEADLINE, || {
            p.cmd("SOCKETS 1");
            std::thread::sleep(std::time::Duration::from_millis(200));
            held(&s.d.log())
        }),
        "a later line counts the held-back calls:\n{}",
        s.d.log()
    );
    assert_eq!(p.cmd("PING"), "PONG");
}

// Protects: the limits hold inside the sandbox too: a fork past `processes`
// fails with EAGAIN (the reporter counts as one of the user's processes),
// an allocation past `memory` with ENOMEM, and the listener serves on;
// the same box without limits forks fine (the sandbox does not block fork).
#[test]
fn limits_bite_inside_the_sandbox_and_the_listener_serves_on() {
    if !landlock_or_skip() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: switching a listener's user needs root");
        return;
    }
    let dir = TestDir::new("sandbox-limits");
    let hostile = build_hostile_plugin(&dir.path);
    let sandbox = "[listener.sandbox]\nmode = \"enforce\"\nnetwork = \"none\"";
    let mut cfg = listener(
        "tight",
        "inet",
        "stream",
        "127.0.0.1:0",
        "sync",
        &hostile,
        &format!(
            "user = \"games\"\n[listener.limits]\nprocesses = 2\nmemory = \"256M\"\n{sandbox}"
        ),
    );
    cfg += &listener(
        "roomy",
        "inet",
        "stream",
        "127.0.0.1:0",
        "sync",
        &hostile,
        sandbox,
    );
    let d = start_in(dir, &cfg).unwrap_or_else(|f| panic!("start ({}):\n{}", f.status, f.log));
    let mut t = Probe::connect(&d.addr("tight"));
    assert_eq!(t.cmd("FORK 1"), "ERR fork EAGAIN after 0", "{}", d.log());
    assert_eq!(t.cmd("ALLOC 1024"), "ERR malloc ENOMEM");
    assert_eq!(t.cmd("ALLOC 8"), "OK allocated 8");
    assert_eq!(t.cmd("PING"), "PONG", "the tight listener serves on");
    let mut r = Probe::connect(&d.addr("roomy"));
    assert_eq!(
        r.cmd("FORK 1"),
        "OK forked 1",
        "the sandbox itself lets fork through"
    );
    assert!(
        has_line(
            &d.log(),
            &[
                "listener=tight",
                "worker box: user=games(",
                "limits=[memory=256M,processes=2]",
                "sandbox=enforce landlock=[ABI "
            ]
        ),
        "{}",
        d.log()
    );
}
