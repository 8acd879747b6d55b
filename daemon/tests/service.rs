//! sockhostd as a service: the systemd notify protocol (READY, RELOADING
//! with MONOTONIC_USEC, STOPPING, STATUS, WATCHDOG), socket activation with
//! the real `systemd-socket-activate`, structured logs in a real journal read
//! back with `journalctl`, and the privilege drop to `[daemon] user`.
//!
//! The systemd tools come from Debian's `systemd` package. Without them a
//! test says so and passes, unless SOCKHOST_REQUIRE_SYSTEMD=1 (CI sets it),
//! where their absence is a failure.

mod common;
use common::journal::{journal_entries, Journal};
use common::notify::NotifySocket;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn have(path: &str) -> bool {
    tool_or_skip(path, "systemd", "SOCKHOST_REQUIRE_SYSTEMD")
}

fn probe_config(name: &str, address: &str) -> String {
    listener(
        name,
        "inet",
        "stream",
        address,
        "thread",
        &plugin("sockhost_probe"),
        "",
    )
}

fn start_notified(dir: TestDir, cfg: &str, extra_env: &[(&str, &str)]) -> (Daemon, NotifySocket) {
    let notify = NotifySocket::new(&dir);
    let path = dir.write("sockhost.toml", cfg);
    let mut cmd = Command::new(sockhostd());
    cmd.arg("-c")
        .arg(&path)
        .args(["--log", "stderr"])
        .env("NOTIFY_SOCKET", &notify.path);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let d =
        Daemon::try_start_cmd(dir, path, cmd).unwrap_or_else(|f| panic!("{}\n{}", f.status, f.log));
    (d, notify)
}

#[test]
fn notify_protocol_sends_ready_reloading_and_stopping_in_order() {
    let dir = TestDir::new("notify");
    let cfg = probe_config("probe", "127.0.0.1:0");
    let (d, notify) = start_notified(dir, &cfg, &[]);
    let (ready, before) = notify.until("READY=1");
    assert!(
        before.iter().all(|m| m.starts_with("FDSTORE=1\n")),
        "nothing before READY but the listening sockets for the fd store: {before:?}"
    );
    assert!(ready.contains("STATUS=serving 1 listeners"), "{ready}");

    d.signal(libc::SIGHUP);
    let (reloading, _) = notify.until("RELOADING=1");
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .expect("MONOTONIC_USEC in the same message");
    assert!(usec.parse::<u64>().is_ok_and(|u| u > 0), "{reloading}");
    let (done, _) = notify.until("READY=1");
    assert!(done.contains("STATUS=reloaded"), "{done}");

    std::fs::write(&d.config, "[[listener]\n").expect("break the config");
    d.signal(libc::SIGHUP);
    notify.until("RELOADING=1");
    let (rolled_back, _) = notify.until("READY=1");
    assert!(
        rolled_back.contains("STATUS=reload failed"),
        "a rollback says so: {rolled_back}"
    );

    d.signal(libc::SIGTERM);
    notify.until("STOPPING=1");
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn watchdog_is_pinged_at_half_its_interval() {
    let dir = TestDir::new("watchdog");
    let cfg = probe_config("probe", "127.0.0.1:0");
    let (_d, notify) = start_notified(dir, &cfg, &[("WATCHDOG_USEC", "400000")]);
    notify.until("READY=1");
    let start = Instant::now();
    for _ in 0..4 {
        notify.until("WATCHDOG=1");
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "4 pings at ~200 ms each took {took:?}"
    );
    assert!(
        took > Duration::from_millis(450),
        "pings are paced, not spammed: {took:?}"
    );
}

fn free_port() -> u16 {
    life::hold_port().1
}

#[test]
fn socket_activation_uses_inherited_sockets_by_name_and_address() {
    if !have("systemd-socket-activate") {
        return;
    }
    let (p_named, p_addr, p_stray) = (free_port(), free_port(), free_port());
    let dir = TestDir::new("activate");
    let mut cfg = probe_config("probe", &format!("127.0.0.1:{}", free_port()));
    cfg.push_str(&probe_config("byaddr", &format!("127.0.0.1:{p_addr}")));
    cfg.push_str(&probe_config("own", "127.0.0.1:0"));
    let path = dir.write("sockhost.toml", &cfg);
    let mut cmd = Command::new("systemd-socket-activate");
    for p in [p_named, p_addr, p_stray] {
        cmd.arg("-l").arg(format!("127.0.0.1:{p}"));
    }
    cmd.arg("--fdname=probe:other:stray")
        .arg(sockhostd())
        .arg("-c")
        .arg(&path)
        .args(["--log", "stderr"]);
    // systemd-socket-activate starts the daemon on the first connection.
    let first = std::thread::spawn(move || {
        let start = Instant::now();
        loop {
            if let Ok(s) = Stream::connect(&format!("127.0.0.1:{p_named}")) {
                return Probe::from_stream(s).cmd("LISTENER");
            }
            assert!(start.elapsed() < DEADLINE, "socket-activate never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let d =
        Daemon::try_start_cmd(dir, path, cmd).unwrap_or_else(|f| panic!("{}\n{}", f.status, f.log));
    assert_eq!(
        first.join().expect("client"),
        "probe",
        "the queued first client is served"
    );
    let log = d.log();
    assert!(
        log.contains(&format!(
            "using the inherited socket 127.0.0.1:{p_named} listener=probe"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "using the inherited socket 127.0.0.1:{p_addr} listener=byaddr"
        )),
        "{log}"
    );
    assert!(log.contains("matches no listener: name `stray`"), "{log}");
    assert_eq!(
        Probe::connect(&format!("127.0.0.1:{p_addr}")).cmd("LISTENER"),
        "byaddr"
    );
    assert!(
        Stream::connect(&format!("127.0.0.1:{p_stray}")).is_err(),
        "the stray socket was closed"
    );
    assert_eq!(
        Probe::connect(&d.addr("own")).cmd("PING"),
        "PONG",
        "a listener with no inherited socket binds"
    );
    d.signal(libc::SIGHUP);
    assert!(d.wait_log("reload done", DEADLINE), "{}", d.log());
    assert_eq!(
        Probe::connect(&format!("127.0.0.1:{p_named}")).cmd("PING"),
        "PONG",
        "inherited sockets survive reloads"
    );
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn log_journald_writes_structured_fields_read_back_by_journalctl() {
    if !have("/lib/systemd/systemd-journald") || !have("journalctl") {
        return;
    }
    let _journal = Journal::ensure();
    let name = format!("jt{}", std::process::id());
    let port = free_port();
    let dir = TestDir::new("journal");
    let path = dir.write(
        "sockhost.toml",
        &probe_config(&name, &format!("127.0.0.1:{port}")),
    );
    let mut child = Command::new(sockhostd())
        .arg("-c")
        .arg(&path)
        .args(["--log", "journald"])
        .env("SOCKHOST_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let mut probe = loop {
        if let Ok(s) = Stream::connect(&format!("127.0.0.1:{port}")) {
            break Probe::from_stream(s);
        }
        assert!(start.elapsed() < DEADLINE, "daemon never listened");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        probe.try_cmd("PANIC").is_err(),
        "PANIC closes the connection"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert!(status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(
        stderr.is_empty(),
        "with --log journald nothing goes to stderr: {stderr}"
    );
    let start = Instant::now();
    let mut entries = Vec::new();
    while start.elapsed() < DEADLINE {
        entries = journal_entries(&format!("LISTENER={name}"));
        if entries.iter().any(|e| e.contains("panicked")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let panic = entries
        .iter()
        .find(|e| e.contains("panicked"))
        .unwrap_or_else(|| panic!("no panic entry: {entries:?}"));
    for field in [
        "\"CLIENT\":\"127.0.0.1:",
        "\"GENERATION\":\"1\"",
        "\"PLUGIN\":\"sockhost-probe\"",
        "\"SYSLOG_IDENTIFIER\":\"sockhostd\"",
        "\"PRIORITY\":\"3\"",
    ] {
        assert!(
            panic.contains(field),
            "the error entry carries {field}: {panic}"
        );
    }
}

#[test]
fn log_journald_without_a_journal_is_a_clear_error() {
    if !have("unshare") {
        return;
    }
    let dir = TestDir::new("nojournal");
    let path = dir.write("sockhost.toml", &probe_config("p", "127.0.0.1:0"));
    // A private mount namespace where /run/systemd/journal is empty.
    let script = format!(
        "mkdir -p /run/systemd/journal && mount -t tmpfs none /run/systemd/journal && exec {} -c {} --log journald",
        sockhostd().display(),
        path.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .expect("unshare");
    if String::from_utf8_lossy(&out.stderr).contains("unshare failed") {
        eprintln!("SKIPPED: no permission for a mount namespace");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the systemd journal"), "{err}");
}

/// A /proc/PID/status value with its fields separated by single spaces.
fn proc_status_field(pid: i32, field: &str) -> String {
    let value = common::sec::status_field(pid, field.trim_end_matches(':')).unwrap_or_default();
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Protects: a master that dropped root keeps CAP_NET_BIND_SERVICE and
/// nothing else, so a SIGHUP can deploy a listener on a port below 1024;
/// its workers, which run plugin code, hold no capability at all.
#[test]
fn after_dropping_root_a_reload_still_binds_a_port_below_1024() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root to drop privileges");
        return;
    }
    let low = common::sec::free_privileged_port();
    let head = "[daemon]\nuser = \"nobody\"\ngroup = \"nogroup\"\n";
    let first = format!("{head}{}", probe_config("probe", "127.0.0.1:0"));
    let d = Daemon::start(&first);
    let caps = common::sec::cap_mask;
    let bind_service = 1u64 << 10;
    assert_eq!(
        caps(d.pid(), "CapEff"),
        bind_service,
        "master: that one, effective"
    );
    assert_eq!(
        caps(d.pid(), "CapPrm"),
        bind_service,
        "master: nothing else kept"
    );
    let worker = common::worker(&d, "probe");
    assert_eq!(caps(worker, "CapPrm"), 0, "a worker keeps no capability");
    assert_eq!(caps(worker, "CapEff"), 0);

    let second = format!(
        "{first}{}",
        probe_config("low", &format!("127.0.0.1:{low}"))
    );
    let tmp = d.dir.join("sockhost.toml.new");
    std::fs::write(&tmp, second).expect("write config");
    std::fs::rename(&tmp, &d.config).expect("rename config");
    d.signal(libc::SIGHUP);
    assert!(
        d.wait_log("reload done", Duration::from_secs(10)),
        "the reload binds port {low}:\n{}",
        d.log()
    );
    let pid: i32 = Probe::connect(&format!("127.0.0.1:{low}"))
        .cmd("PID")
        .parse()
        .expect("pid");
    assert_eq!(proc_status_field(pid, "Uid:"), "65534 65534 65534 65534");
    assert_eq!(caps(pid, "CapPrm"), 0, "the new worker has none either");
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn daemon_user_and_group_drop_master_and_workers_after_binding() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root to drop privileges");
        return;
    }
    let dir = TestDir::new("drop");
    // The folder for the socket belongs to the user, as systemd's
    // RuntimeDirectory= would make it, so the dropped master can remove it.
    std::os::unix::fs::chown(&dir.path, Some(65534), Some(65534)).expect("chown dir");
    let sock = dir.join("p.sock").display().to_string();
    let mut cfg = String::from("[daemon]\nuser = \"nobody\"\ngroup = \"nogroup\"\n");
    cfg.push_str(&probe_config("probe", "127.0.0.1:0"));
    cfg.push_str(&listener(
        "unix",
        "unix",
        "stream",
        &sock,
        "fork",
        &plugin("sockhost_probe"),
        "",
    ));
    let d = Daemon::start(&cfg);
    let worker: i32 = Probe::connect(&d.addr("probe"))
        .cmd("PID")
        .parse()
        .expect("pid");
    let child: i32 = Probe::connect(&sock).cmd("PID").parse().expect("pid");
    for (what, pid) in [("master", d.pid()), ("worker", worker)] {
        assert_eq!(
            proc_status_field(pid, "Uid:"),
            "65534 65534 65534 65534",
            "{what} runs as nobody"
        );
        assert_eq!(
            proc_status_field(pid, "Gid:"),
            "65534 65534 65534 65534",
            "{what} runs as nogroup"
        );
        assert_eq!(
            proc_status_field(pid, "Groups:"),
            "65534",
            "{what}: no supplementary groups"
        );
    }
    assert_ne!(child, worker);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&sock).expect("socket file").uid(),
        65534,
        "the socket file belongs to the user"
    );
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
    assert!(
        !Path::new(&sock).exists(),
        "the unprivileged master still removes its socket file"
    );
}
