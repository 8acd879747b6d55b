//! Binary upgrade (SIGUSR2): the binary now at the daemon's path takes
//! over the same listening sockets while the old daemon keeps serving;
//! under continuous load nothing is refused or reset, the socket's inode
//! is unchanged, the old generation is gone afterwards, and a new binary
//! that exits at once or never gets ready leaves the old daemon serving.

mod common;
use common::notify::NotifySocket;
use common::observe::{ctl, metrics_addr, scrape};
use common::upgrading::*;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn sigusr2_hands_the_same_sockets_to_the_new_binary_under_load() {
    let (mut d, bin) = start_copy(TestDir::new("upgrade"), "");
    let old = d.pid();
    let old_workers = child_pids(old);
    let port = d.inet("echo").port();
    let inode = listen_inode(port).expect("listening socket inode");
    let unix_path = d.addr("probe");

    let load = Load::start(port);
    std::thread::sleep(Duration::from_millis(300));
    install_binary(&bin, &real_binary());
    d.signal(libc::SIGUSR2);
    let new = handed_over_to(&d);
    let _reap = Reap(new);
    let status = d.wait_exit(DEADLINE).expect("the old daemon exits");
    std::thread::sleep(Duration::from_millis(300));
    let (ok, failures) = load.finish();
    let log = d.log();

    assert!(status.success(), "old daemon: {status}\n{log}");
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the upgrade: {:?}\n{log}",
        failures.len(),
        ok as usize + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok > 0, "the load ran");
    eprintln!("upgrade under load: {ok} requests, 0 failed");
    assert_eq!(
        listen_inode(port).as_deref(),
        Some(inode.as_str()),
        "the same socket, never re-bound"
    );
    assert!(!is_dead(new), "the new daemon runs:\n{log}");
    assert!(
        old_workers.iter().all(|&w| is_dead(w)),
        "no worker of the old generation is left"
    );
    assert_eq!(stream_cmd(&unix_path, "PING"), "PONG", "unix socket kept");
    let new_workers = child_pids(new);
    assert_eq!(new_workers.len(), 2, "the new daemon's workers");
    // SAFETY: stopping the daemon the test started (through the upgrade).
    unsafe { libc::kill(new, libc::SIGTERM) };
    assert!(
        wait_for(DEADLINE, || is_dead(new).then_some(())).is_some(),
        "the new daemon stops on SIGTERM"
    );
    assert!(
        !Path::new(&unix_path).exists(),
        "the new daemon owns and removes the socket file"
    );
}

#[test]
fn under_a_service_manager_the_new_daemon_becomes_the_main_pid() {
    let dir = TestDir::new("upgrade-notify");
    let notify = NotifySocket::new(&dir);
    let sock = notify.path.clone();
    let (mut d, _bin) = start_copy_env(dir, "", &[("NOTIFY_SOCKET", &sock)]);
    notify.until("READY=1");
    d.signal(libc::SIGUSR2);
    let new = handed_over_to(&d);
    let _reap = Reap(new);
    let (msg, _) = notify.until("MAINPID=");
    assert!(msg.contains(&format!("MAINPID={new}")), "{msg}");
    let status = d.wait_exit(DEADLINE).expect("the old daemon exits");
    assert!(status.success());
    let after = notify.collect(Duration::from_millis(300));
    assert!(
        !after.iter().any(|(_, m)| m.contains("STOPPING=1")),
        "the old daemon does not say the service stops: {after:?}"
    );
}

#[test]
fn an_upgrade_to_a_binary_that_exits_at_once_keeps_the_old_daemon() {
    let (d, bin) = start_copy(TestDir::new("upgrade-exits"), "");
    let workers = child_pids(d.pid());
    install_binary(
        &bin,
        b"#!/bin/sh\necho 'this binary is broken' >&2\nexit 3\n",
    );
    d.signal(libc::SIGUSR2);
    assert!(d.wait_log("upgrade failed", DEADLINE), "{}", d.log());
    let log = d.log();
    assert!(
        log.contains("exit status 3"),
        "the reason is logged:\n{log}"
    );
    assert!(
        log.contains("keeps serving (generation 1)"),
        "says the old daemon serves:\n{log}"
    );
    assert!(echo_once(d.inet("echo").port()).is_ok());
    assert_eq!(child_pids(d.pid()), workers, "no stray process");
}

#[test]
fn an_upgrade_to_a_binary_that_never_gets_ready_is_killed() {
    let (d, bin) = start_copy(TestDir::new("upgrade-hangs"), "start_timeout = 1");
    let workers = child_pids(d.pid());
    install_binary(&bin, b"#!/bin/sh\nexec sleep 600\n");
    let t0 = Instant::now();
    d.signal(libc::SIGUSR2);
    assert!(d.wait_log("upgrade failed", DEADLINE), "{}", d.log());
    let log = d.log();
    assert!(log.contains("not ready within"), "{log}");
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert!(echo_once(d.inet("echo").port()).is_ok());
    let left = wait_for(Duration::from_secs(5), || {
        (child_pids(d.pid()) == workers).then_some(())
    });
    assert!(left.is_some(), "the hung binary is killed and reaped");
}

#[test]
fn an_upgrade_of_a_classic_daemon_moves_the_pid_file() {
    let dir = TestDir::new("upgrade-daemonize");
    let bin = dir.join("sockhostd");
    install_binary(&bin, &real_binary());
    let cfg = listener(
        "echo",
        "inet",
        "stream",
        "127.0.0.1:0",
        "thread",
        &plugin("sockhost_echo"),
        "",
    );
    let path = dir.write("sockhost.toml", &cfg);
    let pid_file = dir.join("sockhostd.pid");
    let log = dir.join("sockhostd.log");
    let out = Command::new(&bin)
        .arg("-c")
        .arg(&path)
        .arg("--daemonize")
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("--log-file")
        .arg(&log)
        .output()
        .expect("run --daemonize");
    assert!(out.status.success(), "{out:?}");
    let read_pid =
        || -> Option<i32> { std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok() };
    let old = read_pid().expect("pid file");
    let _old = Reap(old);
    install_binary(&bin, &real_binary());
    // SAFETY: signalling the daemon this test started.
    unsafe { libc::kill(old, libc::SIGUSR2) };
    let new = wait_for(DEADLINE, || read_pid().filter(|&p| p != old));
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let new = new.unwrap_or_else(|| panic!("the pid file names the new daemon:\n{}", text()));
    let _new = Reap(new);
    assert!(
        wait_for(DEADLINE, || is_dead(old).then_some(())).is_some(),
        "the old daemon exits:\n{}",
        text()
    );
    assert_eq!(
        read_pid(),
        Some(new),
        "the old daemon left the pid file alone"
    );
    // SAFETY: stopping the new daemon.
    unsafe { libc::kill(new, libc::SIGTERM) };
    assert!(wait_for(DEADLINE, || is_dead(new).then_some(())).is_some());
    assert!(
        wait_for(Duration::from_secs(5), || (!pid_file.exists())
            .then_some(()))
        .is_some(),
        "the new daemon removes its pid file on exit"
    );
}

#[test]
fn sockhostctl_upgrade_waits_for_the_new_daemon_which_keeps_the_control_socket_and_metrics() {
    let (mut d, bin) = start_copy(TestDir::new("upgrade-ctl"), "");
    let metrics = metrics_addr(&d);
    assert!(scrape(&d).contains("sockhost_requests_total"));
    install_binary(&bin, &real_binary());
    let (code, out, err) = ctl(&d, &["upgrade"]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}\n{}", d.log());
    let new = handed_over_to(&d);
    let _reap = Reap(new);
    assert!(
        out.contains(&format!("upgraded: pid {new}")),
        "the answer names the new daemon: {out}"
    );
    assert!(d.wait_exit(DEADLINE).is_some_and(|s| s.success()));
    let (code, status, err) = ctl(&d, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        status.contains(&format!("\"pid\":{new}")) || status.contains(&format!("\"pid\": {new}")),
        "the control socket now reaches the new daemon: {status}"
    );
    assert_eq!(metrics_addr(&d), metrics, "one metrics line so far");
    let body = common::observe::http(
        metrics,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(
        body.starts_with("HTTP/1.1 200 OK"),
        "the new daemon answers on the same metrics socket: {body}"
    );
    assert!(
        d.dir.join("ctl.sock").exists(),
        "the control socket file stays"
    );
}

#[test]
fn sockhostctl_upgrade_to_a_broken_binary_exits_1_with_the_reason() {
    let (d, bin) = start_copy(TestDir::new("upgrade-ctl-bad"), "");
    install_binary(&bin, b"#!/bin/sh\nexit 3\n");
    let (code, out, err) = ctl(&d, &["upgrade"]);
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains("exit status 3") && err.contains("keeps serving"),
        "{err}"
    );
    let (code, status, _) = ctl(&d, &["status"]);
    assert_eq!(code, 0);
    assert!(status.contains(&d.pid().to_string()), "{status}");
    assert!(echo_once(d.inet("echo").port()).is_ok());
}

#[test]
fn a_new_daemon_that_fails_to_start_leaves_the_old_ones_socket_files() {
    let (d, bin) = start_copy(TestDir::new("upgrade-fails-start"), "");
    let probe = d.addr("probe");
    install_binary(&bin, &real_binary());
    // The new daemon reads this config: its echo plugin's create fails.
    let text = std::fs::read_to_string(&d.config).expect("config");
    let broken = text.replace(
        &plugin("sockhost_echo").display().to_string(),
        &plugin("sockhost_fixture_create_fails")
            .display()
            .to_string(),
    );
    std::fs::write(&d.config, broken).expect("write config");
    let (code, _, err) = ctl(&d, &["upgrade"]);
    assert_eq!(code, 1, "{err}\n{}", d.log());
    assert!(
        err.contains("listener `echo`"),
        "the new daemon's reason: {err}"
    );
    assert!(Path::new(&probe).exists(), "the unix socket file stays");
    assert_eq!(stream_cmd(&probe, "PING"), "PONG", "and is served");
    assert_eq!(ctl(&d, &["status"]).0, 0, "the control socket stays");
    assert!(echo_once(d.inet("echo").port()).is_ok());
}

/// Protects: a master that dropped root keeps CAP_NET_BIND_SERVICE across
/// a binary upgrade (a process that is not root loses its capabilities at
/// execve unless they are ambient), so after the upgrade a reload can still
/// deploy a listener on a port below 1024; the new master holds that one
/// capability and hands nothing on at its own execs.
#[test]
fn after_an_upgrade_a_master_that_dropped_root_still_binds_a_port_below_1024() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root to drop privileges");
        return;
    }
    let low = common::sec::free_privileged_port();
    let dir = TestDir::new("upgrade-caps");
    // nobody runs the new binary from here and removes the socket file.
    std::os::unix::fs::chown(&dir.path, Some(65534), Some(65534)).expect("chown dir");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (mut d, _bin) = start_copy(dir, "user = \"nobody\"\ngroup = \"nogroup\"");
    d.signal(libc::SIGUSR2);
    let new = handed_over_to(&d);
    let _reap = Reap(new);
    let status = d.wait_exit(DEADLINE).expect("the old daemon exits");
    assert!(status.success(), "{}", d.log());
    let caps = |set: &str| common::sec::cap_mask(new, set);
    assert_eq!(
        caps("CapEff"),
        1 << 10,
        "the new master: that one, effective"
    );
    assert_eq!(caps("CapPrm"), 1 << 10, "nothing else");
    assert_eq!(caps("CapInh"), 0, "nothing inheritable");
    assert_eq!(caps("CapAmb"), 0, "nothing ambient");

    let cfg = std::fs::read_to_string(&d.config).expect("read config");
    let more = listener(
        "low",
        "inet",
        "stream",
        &format!("127.0.0.1:{low}"),
        "thread",
        &plugin("sockhost_echo"),
        "",
    );
    let tmp = d.config.with_extension("new");
    std::fs::write(&tmp, format!("{cfg}{more}")).expect("write config");
    std::fs::rename(&tmp, &d.config).expect("rename config");
    // SAFETY: signalling the daemon the test started (through the upgrade).
    unsafe { libc::kill(new, libc::SIGHUP) };
    let served = wait_for(DEADLINE, || echo_once(low).ok());
    assert!(
        served.is_some(),
        "the upgraded master binds port {low} on reload:\n{}",
        d.log()
    );
}
