//! `sockhostctl` against the real daemon: `status` (text and JSON),
//! `reload` waiting for its outcome (exit 0, or 1 with the file:line:col
//! of a config error), concurrent reloads, exit 3 for an unreachable
//! daemon and 2 for a bad command line; counters that never decrease
//! across reloads, rollbacks, crashes and a SIGKILLed worker; the control
//! socket file's mode, default and collisions.

mod common;
use common::life::probe_listener;
use common::observe::*;
use common::*;

/// Protects: `status` names the master's pid, the version, the
/// generation, the last reload, and per listener its address, kind,
/// mixin, worker pids and counts; `--json` says the same as one object.
#[test]
fn status_shows_the_master_and_every_listener_in_text_and_json() {
    let cfg = probe_listener(
        "tcp",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        "workers = 2",
    ) + &probe_listener("udp", "inet", "dgram", "127.0.0.1:0", "sync", "");
    let d = Daemon::start(&observed(&cfg));
    (0..3).for_each(|_| assert_eq!(stream_cmd(&d.addr("tcp"), "PING"), "PONG"));
    scrape_until(&d, "three ended", |t| {
        let at = [("listener", "tcp")];
        sample(t, "sockhost_request_duration_seconds_count", &at) == Some(3.0)
            && sample(t, "sockhost_requests_active", &at) == Some(0.0)
    });
    let (code, out, err) = ctl(&d, &["status"]);
    assert_eq!(code, 0, "{err}");
    let head = format!(
        "sockhostd {}: pid {}, generation 1, up since ",
        env!("CARGO_PKG_VERSION"),
        d.pid()
    );
    assert!(out.starts_with(&head), "{out}");
    assert!(out.contains("last reload: none"), "{out}");
    let workers = common::life::workers_of(d.pid());
    let tcp_line = out
        .lines()
        .find(|l| l.starts_with("listener tcp: "))
        .expect("tcp line");
    let want = format!(
        "listener tcp: inet stream {}, mixin fork, workers 2 (pids ",
        d.addr("tcp")
    );
    assert!(tcp_line.starts_with(&want), "{tcp_line}");
    assert!(
        tcp_line.ends_with("active 0, requests 3, failed 0"),
        "{tcp_line}"
    );
    for pid in tcp_line
        .split("pids ")
        .nth(1)
        .unwrap_or("")
        .split(')')
        .next()
        .unwrap_or("")
        .split(", ")
    {
        let pid: i32 = pid.parse().expect("a pid");
        assert!(workers.contains(&pid), "{pid} is a worker of {}", d.pid());
    }
    assert!(
        out.contains(&format!(
            "listener udp: inet dgram {}, mixin sync, workers 1",
            d.addr("udp")
        )),
        "{out}"
    );
    let (code, json, _) = ctl(&d, &["status", "--json"]);
    assert_eq!(code, 0);
    for part in [
        format!("{{\"pid\":{},", d.pid()),
        "\"generation\":1,".to_string(),
        "\"last_reload\":null".to_string(),
        "\"name\":\"tcp\"".to_string(),
        "\"mixin\":\"fork\",\"workers\":2,\"pids\":[".to_string(),
        "\"active\":0,\"requests\":3,\"failed\":0}".to_string(),
        "\"type\":\"dgram\"".to_string(),
    ] {
        assert!(json.contains(&part), "{part} in {json}");
    }
    valid_json(&json);
}

/// Check `text` with python3's json module when python3 is there.
fn valid_json(text: &str) {
    use std::io::Write;
    let Ok(mut child) = std::process::Command::new("python3")
        .args(["-c", "import json,sys; json.load(sys.stdin)"])
        .stdin(std::process::Stdio::piped())
        .spawn()
    else {
        return;
    };
    let _ = child.stdin.take().map(|mut s| s.write_all(text.as_bytes()));
    assert!(child.wait().expect("python3").success(), "not JSON: {text}");
}

/// Protects: `reload` exits 0 with the summary line once the new
/// generation serves; a broken config makes it exit 1 naming
/// file:line:col, the old generation serving on; `status` and the
/// metrics show both outcomes.
#[test]
fn reload_reports_success_and_rollback_with_the_config_error() {
    let good = observed(&probe_listener(
        "p",
        "inet",
        "stream",
        "127.0.0.1:0",
        "thread",
        "",
    ));
    let d = Daemon::start(&good);
    let addr = d.addr("p");
    std::fs::write(&d.config, good.clone() + "[listener.config]\nx = 1\n").expect("edit");
    let (code, out, err) = ctl(&d, &["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("reload done in "), "{out}");
    assert!(
        out.contains("generation 2, added [], removed [], changed [p], kept []"),
        "{out}"
    );
    // The old worker may take a connection or two while it drains.
    let new_serves = wait_for(DEADLINE, || {
        (stream_cmd(&addr, "CONFIG x") == "1").then_some(())
    });
    assert!(new_serves.is_some(), "the new generation serves");
    std::fs::write(&d.config, good.clone() + "mixin = \"forking\"\n").expect("break");
    let (code, out, err) = ctl(&d, &["reload"]);
    assert_eq!(code, 1, "{out}{err}");
    let file = d.config.display().to_string();
    assert!(err.contains(&format!("{file}:")), "names the file: {err}");
    let at = err.split(&format!("{file}:")).nth(1).unwrap_or("");
    let mut nums = at.split(':').take(2).map(|n| n.parse::<u32>().is_ok());
    assert!(
        nums.next() == Some(true) && nums.next() == Some(true),
        "line:col in {err}"
    );
    assert!(
        err.contains("nothing changed (generation 2 keeps serving)"),
        "{err}"
    );
    let still = wait_for(DEADLINE, || {
        (stream_cmd(&addr, "CONFIG x") == "1").then_some(())
    });
    assert!(still.is_some(), "generation 2 still serves");
    let (_, status, _) = ctl(&d, &["status"]);
    assert!(
        status.contains(" failed: reload failed, nothing changed"),
        "{status}"
    );
    let (_, json, _) = ctl(&d, &["status", "--json"]);
    assert!(json.contains("\"result\":\"failed\""), "{json}");
    let text = scrape(&d);
    assert_eq!(
        sample(&text, "sockhost_reloads_total", &[("result", "ok")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "sockhost_reloads_total", &[("result", "failed")]),
        Some(1.0)
    );
    assert_eq!(sample(&text, "sockhost_generation", &[]), Some(2.0));
}

/// Protects: reloads asked for at once are all answered, each with the
/// outcome of a reload that started after it asked, one reload at a time.
#[test]
fn concurrent_reloads_each_get_an_outcome() {
    let d = Daemon::start(&observed(&probe_listener(
        "p",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        "",
    )));
    let socket = ctl_socket(&d).display().to_string();
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let s = socket.clone();
            std::thread::spawn(move || ctl_raw(&["-s", &s, "reload"]))
        })
        .collect();
    let mut generations = Vec::new();
    for c in clients {
        let (code, out, err) = c.join().expect("client");
        assert_eq!(code, 0, "{out}{err}");
        let g: u64 = out
            .split("generation ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a generation in {out}"));
        generations.push(g);
    }
    // Every reload ran alone and started a generation: 2, 3, ... with no gap.
    let last = generations.iter().copied().max().unwrap_or(0);
    let reloads = last - 1;
    assert!(
        (1..=6).contains(&reloads),
        "{reloads} reloads: {generations:?}"
    );
    let logged = |d: &Daemon| d.log().matches("reload done in").count() as u64;
    assert!(
        wait_for(DEADLINE, || (logged(&d) == reloads).then_some(())).is_some(),
        "{reloads} reloads logged:\n{}",
        d.log()
    );
    let (_, status, _) = ctl(&d, &["status"]);
    assert!(status.contains(&format!("generation {last}")), "{status}");
}

/// Protects: exit 3 with the socket's name when nothing answers; 2 for a
/// bad command line; the daemon answers an unknown command with 2.
#[test]
fn unreachable_daemon_and_bad_command_lines_have_their_exit_codes() {
    let dir = TestDir::new("ctl");
    let gone = dir.join("none.sock").display().to_string();
    let (code, _, err) = ctl_raw(&["-s", &gone, "status"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(&gone), "names the socket: {err}");
    assert_eq!(ctl_raw(&["frobnicate"]).0, 2);
    assert_eq!(ctl_raw(&["status", "--yaml"]).0, 2);
    assert_eq!(ctl_raw(&[]).0, 2);
    let d = Daemon::start(&observed(&probe_listener(
        "p",
        "inet",
        "stream",
        "127.0.0.1:0",
        "sync",
        "",
    )));
    let meta = std::fs::metadata(ctl_socket(&d)).expect("socket file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let mut s = std::os::unix::net::UnixStream::connect(ctl_socket(&d)).expect("connect");
    use std::io::{Read, Write};
    s.write_all(b"launch\n").expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("2\nunknown command"), "{answer}");
    drop(d);
}

/// Protects: with `[daemon] group` the control socket is 0660 and that
/// group's; without a usable default folder the daemon warns and runs;
/// `control_socket = ""` opens none; a socket file another daemon answers
/// on is never taken over.
#[test]
fn the_control_socket_file_modes_defaults_and_collisions() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let cfg = "[daemon]\ngroup = \"0\"\ncontrol_socket = \"ctl.sock\"\n".to_string()
            + &probe_listener("p", "inet", "stream", "127.0.0.1:0", "sync", "");
        let d = Daemon::start(&cfg);
        let meta = std::fs::metadata(ctl_socket(&d)).expect("socket file");
        assert_eq!((meta.permissions().mode() & 0o777, meta.gid()), (0o660, 0));
        assert_eq!(ctl(&d, &["status"]).0, 0);
    } else {
        eprintln!("skipped the group part: setting the daemon's group needs root");
    }
    let plain = probe_listener("p", "inet", "stream", "127.0.0.1:0", "sync", "");
    if !std::path::Path::new("/run/sockhost").exists() {
        let d = Daemon::start(&plain);
        assert!(
            d.wait_log("no control socket at /run/sockhost/control.sock", DEADLINE),
            "{}",
            d.log()
        );
        assert_eq!(
            stream_cmd(&d.addr("p"), "PING"),
            "PONG",
            "it runs without one"
        );
    }
    let off = Daemon::start(&("[daemon]\ncontrol_socket = \"\"\n".to_string() + &plain));
    assert!(!off.log().contains("control socket"), "{}", off.log());
    let first = Daemon::start(&observed(&plain));
    let taken = ctl_socket(&first).display().to_string();
    let cfg = format!("[daemon]\ncontrol_socket = \"{taken}\"\n{plain}");
    let second = Daemon::try_start(&cfg)
        .err()
        .expect("the second daemon must not start");
    assert!(
        second.log.contains("another daemon answers on it"),
        "{}",
        second.log
    );
    assert_eq!(ctl(&first, &["status"]).0, 0, "the first keeps its socket");
}

/// Protects: no counter decreases across a reload (old workers retire),
/// a rollback, a crash (a worker dies mid-request) and a SIGKILLed
/// worker, and every request is counted exactly once through all of it.
#[test]
fn counters_never_decrease_across_reload_rollback_crash_and_sigkill() {
    no_core_dumps();
    let body = probe_listener("t", "inet", "stream", "127.0.0.1:0", "thread", "")
        + &probe_listener("f", "inet", "dgram", "127.0.0.1:0", "fork", "");
    let good = observed(&body);
    let d = Daemon::start(&good);
    let (t, f) = (d.addr("t"), d.addr("f"));
    let dg = Dgram::connect(&f, &d.dir.path);
    let mut sent = (0.0, 0.0);
    let mut last = (0.0, 0.0, 0.0);
    let mut round = |d: &Daemon, what: &str, sent: &mut (f64, f64)| {
        (0..5).for_each(|_| assert_eq!(stream_cmd(&t, "PING"), "PONG"));
        (0..5).for_each(|_| assert_eq!(dg.cmd("PING"), "PONG"));
        sent.0 += 5.0;
        sent.1 += 5.0;
        let want = *sent;
        let text = scrape_until(d, what, |x| {
            sample(x, "sockhost_requests_total", &[("listener", "t")]) == Some(want.0)
                && sample(x, "sockhost_requests_total", &[("listener", "f")]) == Some(want.1)
        });
        let now = (
            sample(
                &text,
                "sockhost_requests_failed_total",
                &[("listener", "t")],
            )
            .unwrap_or(-1.0),
            sample(
                &text,
                "sockhost_request_duration_seconds_count",
                &[("listener", "f")],
            )
            .unwrap_or(-1.0),
            sample(
                &text,
                "sockhost_worker_restarts_total",
                &[("listener", "t")],
            )
            .unwrap_or(-1.0),
        );
        assert!(
            now.0 >= last.0 && now.1 >= last.1 && now.2 >= last.2,
            "{what}: {last:?} -> {now:?}"
        );
        last = now;
    };
    round(&d, "at start", &mut sent);
    std::fs::write(&d.config, good.clone() + "[listener.config]\nv = 2\n").expect("edit");
    assert_eq!(ctl(&d, &["reload"]).0, 0);
    round(&d, "after a reload", &mut sent);
    std::fs::write(&d.config, "[[listener]\n").expect("break");
    assert_eq!(ctl(&d, &["reload"]).0, 1);
    round(&d, "after a rollback", &mut sent);
    let mut p = Probe::connect(&t);
    let _ = p.try_cmd("ABORT");
    sent.0 += 1.0;
    assert!(
        wait_for(DEADLINE, || (of(&d, "sockhost_worker_restarts_total", "t")
            == 1.0)
            .then_some(()))
        .is_some(),
        "restarted:\n{}",
        d.log()
    );
    round(&d, "after a crash", &mut sent);
    assert_eq!(
        of(&d, "sockhost_requests_failed_total", "t"),
        1.0,
        "the aborted request"
    );
    let w = worker(&d, "f");
    // SAFETY: killing a worker of the daemon this test started.
    unsafe { libc::kill(w, libc::SIGKILL) };
    assert!(
        wait_for(DEADLINE, || (of(&d, "sockhost_worker_restarts_total", "f")
            == 1.0)
            .then_some(()))
        .is_some(),
        "restarted:\n{}",
        d.log()
    );
    round(&d, "after SIGKILL", &mut sent);
}
