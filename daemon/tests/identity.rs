//! Per-listener identity against the real daemon: `user`/`group` for every
//! mixin (the worker and a fork request child), no supplementary groups,
//! two listeners as two users, the capabilities the master keeps for that
//! (and says so), a reload adding a listener with a new user (works when
//! the master kept what it needs, refused with the reason when it did
//! not), and the unix socket file keys with their older names.
//!
//! Every test here changes accounts, so needs root: without it each says
//! SKIPPED and passes.

mod common;
use common::sec::{cap_mask, status_field};
use common::*;
use std::os::unix::fs::MetadataExt;

const NOBODY: &str = "65534 65534 65534 65534";
const GAMES_UID: &str = "5 5 5 5";
const GAMES_GID: &str = "60 60 60 60";
const NET_BIND_SERVICE: u64 = 1 << 10;
const KILL: u64 = 1 << 5;
const SETGID: u64 = 1 << 6;
const SETUID: u64 = 1 << 7;

fn root_or_skip() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIPPED: needs root to run listeners as other users");
    }
    root
}

fn probe(name: &str, mixin: &str, extra: &str) -> String {
    listener(
        name,
        "inet",
        "stream",
        "127.0.0.1:0",
        mixin,
        &plugin("sockhost_probe"),
        extra,
    )
}

/// A /proc/PID/status field with single spaces.
fn field(pid: i32, key: &str) -> String {
    let v = status_field(pid, key).unwrap_or_default();
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// "Groups:" holds nothing, or only the primary group `gid`.
#[track_caller]
fn no_supplementary_groups(pid: i32, gid: &str, what: &str) {
    let groups = field(pid, "Groups");
    assert!(
        groups.is_empty() || groups == gid,
        "{what}: supplementary groups {groups:?}"
    );
}

/// The pid serving a connection to `listener`, and that connection: in
/// fork mode the request child lives as long as it stays open.
fn held_pid(d: &Daemon, listener: &str) -> (Probe, i32) {
    let mut c = Probe::connect(&d.addr(listener));
    let pid = c.cmd("PID").parse().expect("pid");
    (c, pid)
}

fn rewrite(d: &Daemon, text: &str) {
    let tmp = d.config.with_extension("new");
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, &d.config).expect("rename config");
}

/// Protects: `user = "nobody"` puts the worker of every mixin, and a fork
/// request child, under nobody's uid and primary group with no
/// supplementary group, while the master stays root; the worker logs
/// its box once at start.
#[test]
fn every_mixin_runs_as_the_listener_user_without_supplementary_groups() {
    if !root_or_skip() {
        return;
    }
    let mut cfg = String::new();
    for mixin in ["sync", "thread", "fork"] {
        cfg.push_str(&probe(mixin, mixin, "user = \"nobody\""));
    }
    let d = Daemon::start(&cfg);
    assert_eq!(field(d.pid(), "Uid"), "0 0 0 0", "the master stays root");
    for mixin in ["sync", "thread", "fork"] {
        let worker = worker(&d, mixin);
        let (_held, handler) = held_pid(&d, mixin);
        let mut pids = vec![("worker", worker)];
        if mixin == "fork" {
            assert_ne!(handler, worker, "a request child serves");
            pids.push(("request child", handler));
        } else {
            assert_eq!(handler, worker);
        }
        for (what, pid) in pids {
            let what = format!("{mixin} {what}");
            assert_eq!(field(pid, "Uid"), NOBODY, "{what}");
            assert_eq!(field(pid, "Gid"), NOBODY, "{what}");
            no_supplementary_groups(pid, "65534", &what);
            assert_eq!(cap_mask(pid, "CapPrm"), 0, "{what}: no capability");
        }
    }
    let log = d.log();
    assert_eq!(
        common::sec::count_lines(&log, "worker box: user=nobody(65534) group=nogroup(65534)"),
        3,
        "{log}"
    );
    assert!(
        log.contains("keeps every capability"),
        "the root master says so:\n{log}"
    );
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

/// Protects: with `[daemon] user`, a master whose listeners run as two
/// other accounts keeps CAP_SETUID, CAP_SETGID and CAP_KILL besides
/// CAP_NET_BIND_SERVICE, no more, and logs that; a listener without
/// `user` runs as the daemon's account; a listener with `user` alone runs
/// as that user's primary group; a reload adds a listener with a third
/// account; the master still stops every worker.
#[test]
fn two_listeners_run_as_two_users_and_a_reload_adds_a_third() {
    if !root_or_skip() {
        return;
    }
    let head = "[daemon]\nuser = \"nobody\"\ngroup = \"nogroup\"\nshutdown_timeout = 2\n";
    let first = format!(
        "{head}{}{}",
        probe("plain", "thread", ""),
        probe("games", "fork", "user = \"games\"")
    );
    let d = Daemon::start(&first);
    let want = NET_BIND_SERVICE | SETUID | SETGID | KILL;
    assert_eq!(cap_mask(d.pid(), "CapPrm"), want, "master: {:#x}", want);
    assert_eq!(cap_mask(d.pid(), "CapEff"), want);
    assert_eq!(cap_mask(d.pid(), "CapAmb"), 0);
    assert!(
        d.log().contains(
            "keeps CAP_NET_BIND_SERVICE, CAP_SETUID, CAP_SETGID, CAP_KILL: for binding ports below 1024 on reload, starting workers as other users (listener \"games\")"
        ),
        "{}",
        d.log()
    );
    assert_eq!(field(d.pid(), "Uid"), NOBODY);
    let (_plain, plain) = held_pid(&d, "plain");
    assert_eq!(field(plain, "Uid"), NOBODY, "no user: the daemon's");
    let games_worker = worker(&d, "games");
    let (games_conn, games_child) = held_pid(&d, "games");
    for pid in [games_worker, games_child] {
        assert_eq!(field(pid, "Uid"), GAMES_UID);
        assert_eq!(field(pid, "Gid"), GAMES_GID, "games' primary group");
        no_supplementary_groups(pid, "60", "games");
        assert_eq!(cap_mask(pid, "CapPrm"), 0);
    }
    drop(games_conn);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let man_addr = format!("127.0.0.1:{port}");
    let man_listener = listener(
        "man",
        "inet",
        "stream",
        &man_addr,
        "sync",
        &plugin("sockhost_probe"),
        "user = \"man\"",
    );
    let second = format!("{first}{man_listener}");
    rewrite(&d, &second);
    d.signal(libc::SIGHUP);
    assert!(
        d.wait_log("reload done", DEADLINE),
        "a reload adds a listener with a new user:\n{}",
        d.log()
    );
    let mut man_conn = Probe::connect(&man_addr);
    let man: i32 = man_conn.cmd("PID").parse().expect("pid");
    assert_eq!(field(man, "Uid"), "6 6 6 6", "man's uid");
    assert_eq!(field(man, "Gid"), "12 12 12 12", "man's primary group");
    drop(man_conn);
    let (status, log) = d.stop();
    assert!(status.success(), "the master stops every worker:\n{log}");
}

/// Protects: a master that needed no other account at start dropped
/// CAP_SETUID and CAP_SETGID and cannot regain them: a reload adding a
/// listener with a new user is refused with the listener and the reason,
/// and the old generation keeps serving.
#[test]
fn a_reload_needing_capabilities_the_master_dropped_is_refused() {
    if !root_or_skip() {
        return;
    }
    let head = "[daemon]\nuser = \"nobody\"\ngroup = \"nogroup\"\n";
    let first = format!("{head}{}", probe("plain", "thread", ""));
    let d = Daemon::start(&first);
    assert_eq!(cap_mask(d.pid(), "CapPrm"), NET_BIND_SERVICE);
    assert!(
        d.log()
            .contains("keeps CAP_NET_BIND_SERVICE: for binding ports below 1024"),
        "{}",
        d.log()
    );
    rewrite(
        &d,
        &format!("{first}{}", probe("games", "sync", "user = \"games\"")),
    );
    d.signal(libc::SIGHUP);
    assert!(d.wait_log("reload failed", DEADLINE), "{}", d.log());
    let log = d.log();
    assert!(
        log.contains("listener \"games\" runs as user games(5) group games(60)")
            && log.contains("lacks CAP_SETUID, CAP_KILL")
            && log.contains("takes a restart"),
        "{log}"
    );
    assert_eq!(
        Probe::connect(&d.addr("plain")).cmd("PING"),
        "PONG",
        "the old generation keeps serving"
    );
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

/// Protects: `socket_mode`, `socket_user` and `socket_group` set the unix
/// socket file's permissions and owners; the older `mode` and `owner`
/// still work, and an old config's `group` still reaches the socket file
/// while the worker now runs as that group, with a warning saying so.
#[test]
fn unix_socket_file_keys_and_the_older_names() {
    if !root_or_skip() {
        return;
    }
    let dir = TestDir::new("ident-unix");
    let new = dir.join("new.sock").display().to_string();
    let old = dir.join("old.sock").display().to_string();
    let p = plugin("sockhost_probe");
    let cfg = format!(
        "{}{}",
        listener(
            "new",
            "unix",
            "stream",
            &new,
            "sync",
            &p,
            "socket_mode = \"0640\"\nsocket_user = \"nobody\"\nsocket_group = \"games\"\nuser = \"nobody\""
        ),
        listener(
            "old",
            "unix",
            "stream",
            &old,
            "sync",
            &p,
            "mode = \"0660\"\nowner = \"nobody\"\ngroup = \"games\""
        ),
    );
    let d = Daemon::start(&cfg);
    let meta = |path: &str| std::fs::metadata(path).expect("socket file");
    let m = meta(&new);
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid()),
        (0o640, 65534, 60),
        "socket_* keys"
    );
    let m = meta(&old);
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid()),
        (0o660, 65534, 60),
        "the older keys"
    );
    let mut new_conn = Probe::connect(&new);
    let new_pid: i32 = new_conn.cmd("PID").parse().expect("pid");
    assert_eq!(field(new_pid, "Uid"), NOBODY);
    assert_eq!(
        field(new_pid, "Gid"),
        NOBODY,
        "socket_group is not the worker's"
    );
    drop(new_conn);
    let mut old_conn = Probe::connect(&old);
    let old_pid: i32 = old_conn.cmd("PID").parse().expect("pid");
    assert_eq!(field(old_pid, "Gid"), GAMES_GID, "`group` is the worker's");
    drop(old_conn);
    let log = d.log();
    assert_eq!(
        common::sec::count_lines(&log, "`group` now names the group the worker runs as"),
        1,
        "{log}"
    );
    assert!(log.contains("socket_group = \"games\""), "{log}");
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

/// Protects: an unknown user or group, an out-of-range nice, a bad umask
/// or size fail `--check` with file:line:column and the key.
#[test]
fn bad_identity_keys_fail_check_with_file_line_and_column() {
    let dir = TestDir::new("ident-bad");
    for (extra, key, says) in [
        (
            "user = \"no-such-user-x\"",
            "listener.user",
            "no such user: \"no-such-user-x\"",
        ),
        (
            "group = \"no-such-group-x\"",
            "listener.group",
            "no such group",
        ),
        ("nice = -21", "listener.nice", "allowed -20..=19"),
        ("umask = \"0999\"", "listener.umask", "octal mask"),
        (
            "[listener.limits]\nmemory = \"lots\"",
            "listener.limits.memory",
            "not a size",
        ),
    ] {
        let path = dir.write("bad.toml", &probe("p", "sync", extra));
        let (code, _, err) = run_cli(&["--check", "-c", &path.display().to_string()]);
        assert_eq!(code, 1, "{extra}: {err}");
        let line = if extra.starts_with('[') { 9 } else { 8 };
        let at = format!("{}:{line}:", path.display());
        assert!(
            err.contains(&at) && err.contains(&format!("key `{key}`")) && err.contains(says),
            "{extra}: want {at} `{key}` {says}:\n{err}"
        );
    }
}

/// Protects: a binary upgrade keeps what the master kept for listeners
/// running as other accounts (carried across the exec as ambient
/// capabilities, settled back to permitted only): the new master starts
/// the workers as their users and hands no capability on at its execs.
#[test]
fn an_upgrade_keeps_the_capabilities_for_other_accounts() {
    if !root_or_skip() {
        return;
    }
    let head = "[daemon]\nuser = \"nobody\"\ngroup = \"nogroup\"\nshutdown_timeout = 2\ncontrol_socket = \"\"\n";
    let cfg = format!("{head}{}", probe("games", "thread", "user = \"games\""));
    let mut d = Daemon::start(&cfg);
    d.signal(libc::SIGUSR2);
    assert!(d.wait_log("handed over to pid ", DEADLINE), "{}", d.log());
    let log = d.log();
    let new: i32 = log
        .split("handed over to pid ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|p| p.trim().parse().ok())
        .expect("the new master's pid");
    let status = d.wait_exit(DEADLINE).expect("the old master exits");
    assert!(status.success(), "{}", d.log());
    let want = NET_BIND_SERVICE | SETUID | SETGID | KILL;
    let caps = |set: &str| cap_mask(new, set);
    let held = (
        caps("CapPrm"),
        caps("CapEff"),
        caps("CapInh"),
        caps("CapAmb"),
    );
    let w = common::procfs::worker_of(new, "games");
    let worker_uid = w.map(|w| field(w, "Uid"));
    // SAFETY: stopping the daemon the test started (through the upgrade).
    unsafe { libc::kill(new, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + DEADLINE;
    while !common::procfs::is_dead(new) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(held, (want, want, 0, 0), "the new master's capabilities");
    assert_eq!(worker_uid.as_deref(), Some(GAMES_UID), "{}", d.log());
    assert!(common::procfs::is_dead(new), "the new master stops");
}

/// Protects: a worker that changed its account still dies with its
/// master (changing credentials clears PR_SET_PDEATHSIG, so the worker
/// asks for it again after the change).
#[test]
fn workers_of_other_accounts_die_with_a_killed_master() {
    if !root_or_skip() {
        return;
    }
    let cfg = format!(
        "{}{}",
        probe("nob", "thread", "user = \"nobody\""),
        probe("gam", "fork", "user = \"games\"")
    );
    let mut d = Daemon::start(&cfg);
    let workers = [worker(&d, "nob"), worker(&d, "gam")];
    d.signal(libc::SIGKILL);
    d.wait_exit(DEADLINE).expect("the master is dead");
    let gone = wait_for(DEADLINE, || {
        workers.iter().all(|&w| is_dead(w)).then_some(())
    });
    assert!(gone.is_some(), "workers outlived the master: {workers:?}");
}

/// Protects: a Python handler runs as the listener's user too (its
/// interpreter starts after the change of account), in thread and fork
/// mode, and still imports its module from the config's folder.
#[test]
fn a_python_handler_runs_as_the_listener_user() {
    if !root_or_skip() {
        return;
    }
    use common::py::{py_listener, start_with, stream_exchange};
    let module = r#"import os, socketserver
class Who(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(f"{os.getuid()} {os.getgid()} {os.getgroups()}\n".encode())
"#;
    let cfg = format!(
        "{}{}",
        py_listener(
            "pyt",
            "inet",
            "stream",
            "thread",
            "who:Who",
            "user = \"nobody\"",
            ""
        ),
        py_listener(
            "pyf",
            "inet",
            "stream",
            "fork",
            "who:Who",
            "user = \"games\"",
            ""
        )
    );
    let d = start_with("ident-py", &[("who.py", module)], &cfg);
    let ask =
        |name: &str| String::from_utf8_lossy(&stream_exchange(&d.addr(name), b"")).into_owned();
    let thread = ask("pyt");
    assert!(
        thread == "65534 65534 []\n" || thread == "65534 65534 [65534]\n",
        "{thread:?}"
    );
    let fork = ask("pyf");
    assert!(fork == "5 60 []\n" || fork == "5 60 [60]\n", "{fork:?}");
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}
