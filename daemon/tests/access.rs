//! Access control against the real daemon, over real sockets: `allow` /
//! `deny` by source address (clients bind 127.0.0.2, 127.0.0.3, ... before
//! connecting), `allow_uids` / `allow_gids` by SO_PEERCRED for unix stream
//! peers (clients re-run this binary as other users), `refuse_message`,
//! refusals costing no fork; and the plugin trust rules: a plugin file or
//! folder others could change is refused at start (unless
//! `strict_plugin_permissions = false`), and workers run with
//! PR_SET_NO_NEW_PRIVS.

mod common;
use common::life::probe_listener;
use common::sec::*;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Protects: `deny` wins over `allow`, a non-empty `allow` admits only its
/// networks, a refused connection gets `refuse_message` and is closed, a
/// refused datagram gets no answer at all; each refusal is logged with
/// the client and the rule that refused it.
#[test]
fn allow_and_deny_choose_sources_by_address_for_streams_and_datagrams() {
    let rules = "allow = [\"127.0.0.0/29\", \"::1\"]\ndeny = [\"127.0.0.3\"]\nrefuse_message = \"denied\\n\"";
    let cfg = probe_listener("acl-tcp", "inet", "stream", "127.0.0.1:0", "thread", rules)
        + &probe_listener("acl-udp", "inet", "dgram", "127.0.0.1:0", "sync", rules)
        + &probe_listener(
            "acl-v6",
            "inet6",
            "stream",
            "[::1]:0",
            "sync",
            "deny = [\"::1/128\"]",
        );
    let d = Daemon::start(&cfg);
    let tcp = d.inet("acl-tcp");
    assert_eq!(ping_from("127.0.0.1", tcp), Outcome::Served);
    assert_eq!(ping_from("127.0.0.2", tcp), Outcome::Served);
    assert_eq!(
        ping_from("127.0.0.3", tcp),
        Outcome::Refused("denied\n".into()),
        "deny wins"
    );
    assert_eq!(
        ping_from("127.0.0.9", tcp),
        Outcome::Refused("denied\n".into()),
        "outside allow"
    );
    let mut refused = tcp_from("127.0.0.3", tcp).expect("connect");
    let said = read_until_eof(&mut refused, DEADLINE).expect("the server closes it");
    assert_eq!(said, b"denied\n", "refuse_message, then EOF");

    let udp = d.inet("acl-udp");
    let served = udp_from("127.0.0.2");
    served.send_to(b"PING", udp).expect("send");
    let mut buf = [0u8; 64];
    let n = served
        .recv(&mut buf)
        .expect("a reply for an allowed source");
    assert_eq!(&buf[..n], b"PONG\n");
    for src in ["127.0.0.3", "127.0.0.9"] {
        let c = udp_from(src);
        c.set_read_timeout(Some(Duration::from_millis(400)))
            .expect("timeout");
        c.send_to(b"PING", udp).expect("send");
        assert!(
            c.recv(&mut buf).is_err(),
            "{src}: no reply, not even refuse_message"
        );
    }

    let v6 = Stream::connect(&d.addr("acl-v6")).expect("connect ::1");
    assert!(
        matches!(ping_on(&mut { v6 }), Outcome::Refused(_)),
        "::1 denied"
    );

    // Each worker logs its first refusal in full and counts the rest
    // (at most one warning a second), reported once due.
    let logged = |needle: &str| d.wait_log(needle, DEADLINE);
    assert!(logged("connection from 127.0.0.3:"), "{}", d.log());
    assert!(logged("refused by deny"), "{}", d.log());
    assert!(logged("datagram from 127.0.0.3:"), "{}", d.log());
    assert!(
        logged("more refused since the last report ("),
        "{}",
        d.log()
    );
}

/// Protects: `verify_request` runs in the worker before any fork: a
/// thousand denied connections to a fork listener start no child, and the
/// listener serves allowed clients at once afterwards.
#[test]
fn refused_connections_cost_no_fork() {
    let cfg = probe_listener(
        "acl-fork",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        "deny = [\"127.0.0.4\"]",
    );
    let d = Daemon::start(&cfg);
    let addr = d.inet("acl-fork");
    let children = |d: &Daemon| d.log().matches("request child exited").count();
    assert_eq!(ping_from("127.0.0.1", addr), Outcome::Served);
    assert!(wait_for(DEADLINE, || (children(&d) == 1).then_some(())).is_some());
    for _ in 0..1000 {
        let mut s = tcp_from("127.0.0.4", addr).expect("connect");
        assert!(read_until_eof(&mut s, DEADLINE).is_some(), "closed at once");
    }
    assert_eq!(ping_from("127.0.0.1", addr), Outcome::Served);
    assert!(wait_for(DEADLINE, || (children(&d) == 2).then_some(())).is_some());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        children(&d),
        2,
        "only the two allowed requests forked:\n{}",
        d.log()
    );
}

/// Protects: on a unix stream listener a peer is admitted by its uid
/// (`allow_uids`) or by its primary or a supplementary group
/// (`allow_gids`), as the kernel recorded them at connect; anyone else gets
/// `refuse_message` and the close, and the log names uid and gid.
#[test]
fn unix_stream_peers_are_admitted_by_uid_or_group() {
    if !is_root() {
        eprintln!("skipped: switching the client's uid needs root");
        return;
    }
    let name = format!("sockhost-access-{}", std::process::id());
    let extra = "allow_uids = [0, 4242]\nallow_gids = [4444]\nrefuse_message = \"not you\\n\"";
    let d = Daemon::start(&probe_listener(
        "peers",
        "unix",
        "stream",
        &format!("@{name}"),
        "thread",
        extra,
    ));
    assert_eq!(
        stream_cmd(&d.addr("peers"), "PING"),
        "PONG",
        "root is in allow_uids"
    );
    assert_eq!(ping_as(&name, 4242, 4343, &[]), "PONG", "by uid");
    assert_eq!(
        ping_as(&name, 4343, 4343, &[]),
        "not you",
        "neither uid nor group"
    );
    assert_eq!(ping_as(&name, 4343, 4444, &[]), "PONG", "by primary group");
    assert_eq!(
        ping_as(&name, 4343, 4343, &[4444]),
        "PONG",
        "by supplementary group"
    );
    assert!(
        d.wait_log(
            "refused by allow_uids/allow_gids (uid 4343 gid 4343",
            DEADLINE
        ),
        "{}",
        d.log()
    );
}

/// A private copy of the probe plugin in its own folder, modes set.
fn plugin_copy(dir: &TestDir, folder_mode: u32, file_mode: u32) -> PathBuf {
    let folder = dir.join("plugins");
    std::fs::create_dir_all(&folder).expect("mkdir");
    let file = folder.join("libprobe-copy.so");
    std::fs::copy(plugin("sockhost_probe"), &file).expect("copy plugin");
    chmod(&dir.path, 0o755);
    chmod(&folder, folder_mode);
    chmod(&file, file_mode);
    file
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn start_with_plugin(file: &Path, daemon_table: &str) -> Result<Daemon, Failed> {
    let cfg = format!("[daemon]\n{daemon_table}\n")
        + &listener("p", "inet", "stream", "127.0.0.1:0", "sync", file, "");
    Daemon::try_start(&cfg)
}

/// Protects: a plugin file that is group- or world-writable, owned by
/// another user, or in a folder others may write to is refused: the
/// daemon exits 1 naming the file (or folder) and the reason;
/// `strict_plugin_permissions = false` loads it anyway.
#[test]
fn a_plugin_others_could_change_is_refused_at_start_with_the_reason() {
    let dir = TestDir::new("perms");
    let cases = [
        (0o755, 0o646, "is world-writable"),
        (0o755, 0o664, "is group-writable"),
        (0o775, 0o644, "is group-writable (and not sticky)"),
        (0o777, 0o644, "is world-writable (and not sticky)"),
    ];
    for (folder_mode, file_mode, why) in cases {
        let file = plugin_copy(&dir, folder_mode, file_mode);
        let failed = start_with_plugin(&file, "")
            .err()
            .unwrap_or_else(|| panic!("started with modes {folder_mode:o}/{file_mode:o}"));
        assert_eq!(failed.status.code(), Some(1), "{}", failed.log);
        let named = if why.contains("sticky") {
            format!("folder {} {why}", dir.join("plugins").display())
        } else {
            format!("{} {why}", file.display())
        };
        assert!(
            failed.log.contains(&named),
            "want {named:?} in:\n{}",
            failed.log
        );
        assert!(!failed.log.contains("panicked"), "{}", failed.log);
    }
    if is_root() {
        let file = plugin_copy(&dir, 0o755, 0o644);
        std::os::unix::fs::chown(&file, Some(4242), None).expect("chown");
        let failed = start_with_plugin(&file, "")
            .err()
            .expect("refused: another owner");
        assert_eq!(failed.status.code(), Some(1), "{}", failed.log);
        let named = format!("{} is owned by uid 4242", file.display());
        assert!(failed.log.contains(&named), "{}", failed.log);
        std::os::unix::fs::chown(&file, Some(0), None).expect("chown back");
    }
    let file = plugin_copy(&dir, 0o777, 0o666);
    let d = start_with_plugin(&file, "strict_plugin_permissions = false")
        .unwrap_or_else(|f| panic!("not strict: should load ({}):\n{}", f.status, f.log));
    assert_eq!(stream_cmd(&d.addr("p"), "PING"), "PONG");
}

/// Protects: every worker, and in fork mode every request child, runs with
/// PR_SET_NO_NEW_PRIVS, so nothing a plugin executes can gain privileges.
#[test]
fn workers_and_request_children_run_with_no_new_privs() {
    let cfg = probe_listener("nnp-sync", "inet", "stream", "127.0.0.1:0", "sync", "")
        + &probe_listener("nnp-thread", "inet", "stream", "127.0.0.1:0", "thread", "")
        + &probe_listener("nnp-fork", "inet", "stream", "127.0.0.1:0", "fork", "");
    let d = Daemon::start(&cfg);
    for name in ["nnp-sync", "nnp-thread", "nnp-fork"] {
        let mut p = Probe::connect(&d.addr(name));
        let pid: i32 = p.cmd("PID").parse().expect("pid");
        assert_eq!(
            status_field(pid, "NoNewPrivs").as_deref(),
            Some("1"),
            "{name} pid {pid}"
        );
        let w = worker_of(d.pid(), name).expect("worker");
        assert_eq!(
            status_field(w, "NoNewPrivs").as_deref(),
            Some("1"),
            "{name} worker"
        );
    }
}
