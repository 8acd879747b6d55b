//! The exec plugin across the daemon's life: a missing or non-executable
//! program fails `--check` and rolls a reload back naming the path (the
//! old generation keeps serving); a reload that changes the command under
//! load fails no request; a thousand connections in fork mode leave no
//! zombie and no program behind.

mod common;
use common::exec::*;
use common::observe::{ctl, observed, of};
use common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Protects: `sockhostd --check` fails (exit 1) naming a missing program
/// and a program that is not executable; passes a bare name on PATH.
#[test]
fn check_names_a_missing_or_non_executable_program() {
    let dir = scripts_dir("exec-check");
    let plain = dir.write("not-exec.sh", "#!/bin/sh\necho\n");
    for (command, needle) in [
        (
            "[\"/nonexistent/bin/prog\", \"-x\"]",
            "/nonexistent/bin/prog".to_string(),
        ),
        (
            &format!("[\"{}\"]", plain.display()),
            format!("{}: not executable", plain.display()),
        ),
        (
            "[\"no-such-program-on-path\"]",
            "no-such-program-on-path: not found on PATH".into(),
        ),
    ] {
        let cfg = dir.write(
            "c.toml",
            &exec_listener(
                "x",
                "inet",
                "stream",
                "127.0.0.1:0",
                "fork",
                command,
                "",
                "",
            ),
        );
        let (code, _, err) = run_cli(&["--check", "-c", &cfg.display().to_string()]);
        assert_eq!(code, 1, "{command}: {err}");
        assert!(err.contains(&needle), "{command}: want {needle:?} in {err}");
    }
    let cfg = dir.write(
        "c.toml",
        &exec_listener(
            "x",
            "inet",
            "stream",
            "127.0.0.1:0",
            "fork",
            "[\"cat\"]",
            "",
            "",
        ),
    );
    let (code, _, err) = run_cli(&["--check", "-c", &cfg.display().to_string()]);
    assert_eq!(code, 0, "{err}");
}

/// Protects: a reload to a missing program rolls back, says which path,
/// and the old generation keeps serving the old program.
#[test]
fn a_reload_to_a_missing_program_rolls_back() {
    let dir = scripts_dir("exec-rollback");
    let v1 = script(&dir.path, "v1.sh", "echo v1");
    let good = observed(&exec_listener(
        "x",
        "inet",
        "stream",
        "127.0.0.1:0",
        "thread",
        &format!("[\"{}\"]", v1.display()),
        "",
        "",
    ));
    let d = Daemon::start(&good);
    let addr = d.addr("x");
    assert_eq!(converse(&addr, b""), "v1\n");
    std::fs::write(
        &d.config,
        observed(&exec_listener(
            "x",
            "inet",
            "stream",
            "127.0.0.1:0",
            "thread",
            "[\"/nonexistent/v2\"]",
            "",
            "",
        )),
    )
    .expect("rewrite config");
    let (code, out, err) = ctl(&d, &["reload"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("/nonexistent/v2"),
        "{out}{err}"
    );
    assert_eq!(converse(&addr, b""), "v1\n", "the old generation serves on");
}

/// Protects: changing the command and reloading while clients connect
/// without pause fails no request: each gets the old or the new
/// program's whole answer, and the new one takes over.
#[test]
fn a_reload_that_changes_the_command_under_load_fails_nothing() {
    let dir = scripts_dir("exec-swap");
    let v1 = script(&dir.path, "v1.sh", "cat >/dev/null; echo v1");
    let v2 = script(&dir.path, "v2.sh", "cat >/dev/null; echo v2");
    for mixin in ["fork", "thread"] {
        // The same address text: the reload keeps the socket it has.
        let cfg = |p: &std::path::Path| {
            observed(&exec_listener(
                "x",
                "inet",
                "stream",
                "127.0.0.1:0",
                mixin,
                &format!("[\"{}\"]", p.display()),
                "",
                "",
            ))
        };
        let d = Daemon::start(&cfg(&v1));
        let addr = d.addr("x");
        let stop = Arc::new(AtomicBool::new(false));
        let seen_v2 = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..3)
            .map(|_| {
                let (a, stop, seen_v2) = (addr.clone(), Arc::clone(&stop), Arc::clone(&seen_v2));
                std::thread::spawn(move || {
                    let mut served = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let answer = converse(&a, b"request\n");
                        assert!(answer == "v1\n" || answer == "v2\n", "got {answer:?}");
                        if answer == "v2\n" {
                            seen_v2.fetch_add(1, Ordering::SeqCst);
                        }
                        served += 1;
                    }
                    served
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::write(&d.config, cfg(&v2)).expect("rewrite config");
        let (code, out, err) = ctl(&d, &["reload"]);
        assert_eq!(code, 0, "{mixin}: {out}{err}");
        assert!(
            common::life::wait_until(DEADLINE, || seen_v2.load(Ordering::SeqCst) >= 10),
            "{mixin}: the new command never answered"
        );
        stop.store(true, Ordering::SeqCst);
        let served: usize = clients.into_iter().map(|c| c.join().expect("client")).sum();
        assert!(served > 10, "{mixin}: {served}");
        assert_eq!(
            of(&d, "sockhost_requests_failed_total", "x"),
            0.0,
            "{mixin}"
        );
    }
}

/// Protects: 1,000 connections in fork mode (four clients at once) are
/// all answered and leave no zombie, no program and no request child.
#[test]
fn a_thousand_fork_mode_connections_leave_no_zombie() {
    let d = Daemon::start(&observed(&exec_listener(
        "x",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        "[\"/bin/echo\", \"hi\"]",
        "",
        "",
    )));
    let addr = d.addr("x");
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let a = addr.clone();
            std::thread::spawn(move || {
                for _ in 0..250 {
                    assert_eq!(converse(&a, b""), "hi\n");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    let worker = worker(&d, "x");
    assert!(
        common::life::wait_until(DEADLINE, || child_pids(worker).is_empty()),
        "request children left: {:?}",
        child_pids(worker)
    );
    let zombies: Vec<i32> = descendants(d.pid())
        .into_iter()
        .filter(|&p| proc_state(p) == Some('Z'))
        .collect();
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    assert_eq!(of(&d, "sockhost_requests_total", "x"), 1000.0);
    assert_eq!(of(&d, "sockhost_requests_failed_total", "x"), 0.0);
}

/// Protects: a stop waits for running programs as for any request in
/// flight (up to `shutdown_timeout`), then ends them: none outlives the
/// daemon, in fork or thread mode.
#[test]
fn a_stop_waits_for_programs_then_ends_them() {
    let dir = scripts_dir("exec-stop");
    let s = script(&dir.path, "long.sh", "echo up; exec sleep 60");
    for mixin in ["fork", "thread"] {
        let d = Daemon::start(&format!(
            "[daemon]\nshutdown_timeout = 1.0\ncontrol_socket = \"\"\n{}",
            exec_listener(
                "x",
                "inet",
                "stream",
                "127.0.0.1:0",
                mixin,
                &format!("[\"{}\"]", s.display()),
                "",
                ""
            ),
        ));
        let mut c = Stream::connect(&d.addr("x")).expect("connect");
        let mut buf = [0u8; 3];
        std::io::Read::read_exact(&mut c, &mut buf).expect("the program started");
        let sleeping = || -> Vec<i32> {
            descendants(d.pid())
                .into_iter()
                .filter(|&p| comm(p, p) == "sleep")
                .collect()
        };
        let programs = wait_for(DEADLINE, || Some(sleeping()).filter(|v| !v.is_empty()))
            .unwrap_or_else(|| {
                let all: Vec<(i32, String)> = descendants(d.pid())
                    .into_iter()
                    .map(|p| (p, comm(p, p)))
                    .collect();
                panic!("{mixin}: no program among {all:?}")
            });
        assert_eq!(programs.len(), 1, "{mixin}: one program running");
        let (status, log) = d.stop();
        assert!(status.success(), "{mixin}: {log}");
        assert!(
            common::life::wait_until(DEADLINE, || programs.iter().all(|&p| is_dead(p))),
            "{mixin}: the program outlived the daemon:\n{log}"
        );
    }
}
