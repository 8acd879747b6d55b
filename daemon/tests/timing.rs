//! The master never waits on a worker: a plugin whose `create` takes long
//! (the slow-create fixture) at start, on reload or on respawn does not
//! hold up signals or the watchdog; `start_timeout` bounds every start;
//! SIGHUPs during a pending reload coalesce into one more; SIGTERM during
//! one abandons it and stops.

mod common;
use common::notify::NotifySocket;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A sync listener on the slow-create fixture: `create` sleeps `sleep_ms`
/// plus the milliseconds written in `sleep_file` (when it exists).
fn slow(sleep_ms: u64, sleep_file: &Path, tag: u32) -> String {
    listener(
        "slow",
        "inet",
        "stream",
        "127.0.0.1:0",
        "sync",
        &plugin("sockhost_fixture_slow_create"),
        &format!(
            "[listener.config]\nsleep_ms = {sleep_ms}\nsleep_file = \"{}\"\ntag = {tag}\n",
            sleep_file.display()
        ),
    )
}

fn daemon_table(start_timeout: f64) -> String {
    format!("[daemon]\nstart_timeout = {start_timeout}\nshutdown_timeout = 2\n\n")
}

/// The slow listener echoes: one round trip.
fn echoes(addr: &str) -> bool {
    let Ok(mut s) = Stream::connect(addr) else {
        return false;
    };
    s.set_timeout(Some(Duration::from_secs(5)));
    use std::io::Write;
    if s.write_all(b"still here").is_err() {
        return false;
    }
    s.shutdown_write();
    s.read_all().is_ok_and(|b| b == b"still here")
}

/// Start sockhostd without waiting for it to be ready; stderr to a file.
fn spawn_raw(dir: &TestDir, config: &str, env: &[(&str, &str)]) -> (Child, std::path::PathBuf) {
    let path = dir.write("sockhost.toml", config);
    let log = dir.join("stderr.log");
    let mut cmd = Command::new(sockhostd());
    cmd.arg("-c")
        .arg(&path)
        .args(["--log", "stderr"])
        .env("SOCKHOST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.spawn().expect("spawn sockhostd"), log)
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    wait_for(within, || child.try_wait().ok().flatten())
}

/// A notify socket with a 300 ms watchdog (pings every 150 ms), and the
/// command that starts sockhostd on `cfg` with both.
fn watched(dir: &TestDir, cfg: &str) -> (NotifySocket, Command, std::path::PathBuf) {
    let notify = NotifySocket::new(dir);
    let path = dir.write("sockhost.toml", cfg);
    let mut cmd = Command::new(sockhostd());
    cmd.arg("-c")
        .arg(&path)
        .args(["--log", "stderr"])
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "300000");
    (notify, cmd, path)
}

/// Rewrite the config (a new `tag` changes the listener) and SIGHUP.
fn reload_with(d: &Daemon, config: &str) {
    std::fs::write(&d.config, config).expect("write config");
    d.signal(libc::SIGHUP);
}

#[test]
fn a_worker_not_ready_by_start_timeout_fails_the_start_naming_its_listener() {
    let dir = TestDir::new("slowstart");
    let cfg = daemon_table(1.0) + &slow(20_000, &dir.join("none"), 0);
    let t0 = Instant::now();
    let failed = match Daemon::try_start(&cfg) {
        Ok(_) => panic!("a 20 s create must not pass a 1 s start_timeout"),
        Err(f) => f,
    };
    let took = t0.elapsed();
    assert_eq!(failed.status.code(), Some(1), "{}", failed.log);
    assert!(
        failed.log.contains("listener `slow`") && failed.log.contains("start_timeout"),
        "the error names the listener and the timeout:\n{}",
        failed.log
    );
    assert!(took < Duration::from_secs(10), "gave up after {took:?}");
}

#[test]
fn sigterm_while_the_first_workers_load_stops_at_once() {
    let dir = TestDir::new("termstart");
    let (mut child, log) = spawn_raw(&dir, &slow(30_000, &dir.join("none"), 0), &[]);
    let master = child.id() as i32;
    let workers = wait_for(DEADLINE, || {
        let c = child_pids(master);
        (!c.is_empty()).then_some(c)
    })
    .expect("a worker is forked");
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(master, libc::SIGTERM) };
    let status = wait_exit(&mut child, DEADLINE).expect("the daemon exits");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "SIGTERM answered after {:?} while create sleeps 30 s:\n{text}",
        t0.elapsed()
    );
    assert!(status.success(), "{status}:\n{text}");
    assert!(
        workers.iter().all(|&w| is_dead(w)),
        "the loading worker is gone"
    );
}

#[test]
fn watchdog_pings_and_the_old_generation_go_on_while_a_reload_waits() {
    let dir = TestDir::new("slowreload");
    let gate = dir.join("sleep-ms");
    let (notify, cmd, path) = watched(&dir, &(daemon_table(30.0) + &slow(0, &gate, 1)));
    let d = Daemon::try_start_cmd(dir, path, cmd).unwrap_or_else(|f| panic!("{}", f.log));
    notify.until("READY=1");
    let addr = d.addr("slow");

    std::fs::write(&gate, "2500").expect("make create slow");
    reload_with(&d, &(daemon_table(30.0) + &slow(0, &gate, 2)));
    notify.until("RELOADING=1");
    let during = notify.collect(Duration::from_millis(1500));
    assert!(echoes(&addr), "the old generation serves during the reload");
    let pings: Vec<Instant> = during
        .iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect();
    assert!(
        pings.len() >= 4,
        "watchdog pings every 150 ms while create sleeps; got {} in 1.5 s: {during:?}",
        pings.len()
    );
    let (done, _) = notify.until("READY=1");
    assert!(done.contains("STATUS=reloaded"), "{done}");
    assert!(d.wait_log("reload done", DEADLINE), "{}", d.log());
    assert!(echoes(&addr), "the new generation serves");
}

#[test]
fn a_reload_whose_worker_misses_start_timeout_rolls_back() {
    let dir = TestDir::new("reloadtimeout");
    let gate = dir.join("sleep-ms");
    let d = Daemon::start(&(daemon_table(1.0) + &slow(0, &gate, 1)));
    let old = worker(&d, "slow");
    std::fs::write(&gate, "20000").expect("make create slow");
    let t0 = Instant::now();
    reload_with(&d, &(daemon_table(1.0) + &slow(0, &gate, 2)));
    assert!(
        d.wait_log("reload failed, nothing changed", DEADLINE),
        "{}",
        d.log()
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    let log = d.log();
    assert!(
        log.contains("listener `slow`: did not report ready within start_timeout"),
        "{log}"
    );
    assert_eq!(worker(&d, "slow"), old, "the old worker keeps serving");
    assert!(echoes(&d.addr("slow")));
}

#[test]
fn sighups_during_a_pending_reload_coalesce_into_one_more() {
    let dir = TestDir::new("coalesce");
    let gate = dir.join("sleep-ms");
    let d = Daemon::start(&(daemon_table(30.0) + &slow(0, &gate, 1)));
    std::fs::write(&gate, "700").expect("make create slow");
    reload_with(&d, &(daemon_table(30.0) + &slow(0, &gate, 2)));
    assert!(d.wait_log("SIGHUP: reloading", DEADLINE));
    d.signal(libc::SIGHUP);
    d.signal(libc::SIGHUP);
    d.signal(libc::SIGHUP);
    let two = wait_for(DEADLINE, || {
        (d.log().matches("reload done").count() >= 2).then_some(())
    });
    assert!(two.is_some(), "the queued reload ran:\n{}", d.log());
    std::thread::sleep(Duration::from_millis(1500));
    let log = d.log();
    assert_eq!(
        log.matches("reload done").count(),
        2,
        "three SIGHUPs during one reload make one more, not three:\n{log}"
    );
    assert!(log.contains("another one follows it"), "{log}");
    assert!(echoes(&d.addr("slow")));
}

#[test]
fn sigterm_during_a_pending_reload_abandons_it_and_stops() {
    let dir = TestDir::new("termreload");
    let gate = dir.join("sleep-ms");
    let mut d = Daemon::start(&(daemon_table(30.0) + &slow(0, &gate, 1)));
    let master = d.pid();
    std::fs::write(&gate, "30000").expect("make create slow");
    reload_with(&d, &(daemon_table(30.0) + &slow(0, &gate, 2)));
    let pending = wait_for(DEADLINE, || {
        let c = child_pids(master);
        (c.len() >= 2).then_some(c)
    })
    .expect("the new worker is forked");
    let t0 = Instant::now();
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(DEADLINE).expect("the daemon stops");
    let took = t0.elapsed();
    let log = d.log();
    assert!(status.success(), "{status}:\n{log}");
    assert!(
        took < Duration::from_secs(6),
        "stopped {took:?} after SIGTERM (shutdown_timeout 2 s)"
    );
    assert!(log.contains("reload abandoned"), "{log}");
    assert!(pending.iter().all(|&p| is_dead(p)), "no worker left behind");
}

#[test]
fn a_slow_respawn_does_not_hold_up_the_watchdog_or_sigterm() {
    let dir = TestDir::new("slowrespawn");
    let gate = dir.join("sleep-ms");
    let (notify, cmd, path) = watched(&dir, &(daemon_table(30.0) + &slow(0, &gate, 1)));
    let mut d = Daemon::try_start_cmd(dir, path, cmd).unwrap_or_else(|f| panic!("{}", f.log));
    notify.until("READY=1");
    let old = worker(&d, "slow");
    std::fs::write(&gate, "30000").expect("make create slow");
    // SAFETY: killing the daemon's worker, our grandchild.
    unsafe { libc::kill(old, libc::SIGKILL) };
    assert!(d.wait_log("restarting in", DEADLINE), "{}", d.log());
    std::thread::sleep(Duration::from_millis(300));
    let during = notify.collect(Duration::from_millis(1200));
    let pings = during
        .iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .count();
    assert!(pings >= 3, "pings while the respawn loads: {during:?}");
    let t0 = Instant::now();
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(DEADLINE).expect("the daemon stops");
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "SIGTERM took {:?}",
        t0.elapsed()
    );
    assert!(status.success(), "{}", d.log());
}
