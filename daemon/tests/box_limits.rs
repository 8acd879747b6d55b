//! `nice`, `umask` and `[listener.limits]` against the real daemon: the
//! values are visible in /proc for the worker and a fork request child
//! (soft = hard, so nothing inside can raise them), and they bite: a
//! fork past `processes` fails with EAGAIN, an allocation past `memory`
//! with ENOMEM, while the same calls succeed under roomier limits (so the
//! tests are not vacuous). The fixture plugin sockhost-fixture-limits
//! makes the calls from inside the plugin.
//!
//! `processes` counts every process of the user, so these listeners run
//! as `games`, an account nothing else here uses. Needs root: without it
//! each test says SKIPPED and passes.

mod common;
use common::sec::status_field;
use common::*;

fn root_or_skip() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIPPED: needs root to run listeners as other users");
    }
    root
}

/// (soft, hard) of the /proc/PID/limits line starting with `what`.
fn limit(pid: i32, what: &str) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = text
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_else(|| panic!("no {what} in {text}"));
    let mut nums = line[what.len()..].split_whitespace();
    let soft = nums.next().unwrap_or_default().to_string();
    let hard = nums.next().unwrap_or_default().to_string();
    (soft, hard)
}

/// The nice value: field 19 of /proc/PID/stat.
fn nice(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    // After the command, state is field 3: field N is at index N - 3.
    rest.split_whitespace()
        .nth(19 - 3)
        .and_then(|n| n.parse().ok())
        .expect("nice field")
}

/// Protects: a fork listener's worker and its request child run with the
/// listener's limits as both soft and hard limit, its nice value and its
/// umask; the worker's start line says so.
#[test]
fn limits_nice_and_umask_reach_the_worker_and_a_request_child() {
    if !root_or_skip() {
        return;
    }
    let cfg = listener(
        "boxed",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        &plugin("sockhost_probe"),
        "user = \"nobody\"\nnice = 5\numask = \"0027\"\n[listener.limits]\nmemory = \"4G\"\nopen_files = 256\ncpu_seconds = 3600",
    );
    let d = Daemon::start(&cfg);
    let worker = worker(&d, "boxed");
    // The request child lives as long as its connection.
    let mut conn = Probe::connect(&d.addr("boxed"));
    let child: i32 = conn.cmd("PID").parse().expect("pid");
    assert_ne!(worker, child);
    for (what, pid) in [("worker", worker), ("request child", child)] {
        let both = |v: &str| (v.to_string(), v.to_string());
        assert_eq!(
            limit(pid, "Max address space"),
            both("4294967296"),
            "{what}"
        );
        assert_eq!(limit(pid, "Max open files"), both("256"), "{what}");
        assert_eq!(limit(pid, "Max cpu time"), both("3600"), "{what}");
        assert_eq!(nice(pid), 5, "{what}");
        assert_eq!(
            status_field(pid, "Umask").as_deref(),
            Some("0027"),
            "{what}"
        );
    }
    drop(conn);
    assert_eq!(nice(d.pid()), 0, "the master keeps its own priority");
    let log = d.log();
    assert!(
        log.contains(
            "worker box: user=nobody(65534) group=nogroup(65534) groups=[] limits=[memory=4G,open_files=256,cpu_seconds=3600] nice=5 umask=0027"
        ),
        "{log}"
    );
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

/// Protects: `processes` and `memory` bite inside the plugin: a fork
/// past `processes` fails with EAGAIN and an allocation past `memory`
/// with ENOMEM; the listener keeps serving; with room to spare the same
/// calls work.
#[test]
fn processes_and_memory_limits_bite() {
    if !root_or_skip() {
        return;
    }
    let fixture = plugin("sockhost_fixture_limits");
    let l = |name: &str, limits: &str| {
        listener(
            name,
            "inet",
            "stream",
            "127.0.0.1:0",
            "sync",
            &fixture,
            &format!("user = \"games\"\n[listener.limits]\n{limits}"),
        )
    };
    let cfg = format!(
        "{}{}",
        l("tight", "processes = 1\nmemory = \"256M\""),
        l("roomy", "processes = 64")
    );
    let d = Daemon::start(&cfg);
    let tight = worker(&d, "tight");
    assert_eq!(limit(tight, "Max processes").0, "1");
    let mut c = Probe::connect(&d.addr("tight"));
    assert_eq!(c.cmd("FORK"), "EAGAIN", "a fork past `processes`");
    assert_eq!(c.cmd("ALLOC 1024"), "ENOMEM", "1 GiB past `memory`");
    assert_eq!(c.cmd("ALLOC 8"), "OK", "within `memory`");
    let mut r = Probe::connect(&d.addr("roomy"));
    assert_eq!(r.cmd("FORK"), "OK", "room to spare: the fork works");
    assert_eq!(r.cmd("ALLOC 1024"), "OK", "no memory limit: 1 GiB is fine");
    assert_eq!(c.cmd("FORK"), "EAGAIN", "the tight listener still serves");
    drop((c, r));
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

/// Protects: a negative `nice` under `[daemon] user` works: the master
/// keeps CAP_SYS_NICE for it (and says why), the worker gets the value.
#[test]
fn a_negative_nice_is_kept_for_by_the_master() {
    if !root_or_skip() {
        return;
    }
    let cfg = format!(
        "[daemon]\nuser = \"nobody\"\ngroup = \"nogroup\"\n{}",
        listener(
            "eager",
            "inet",
            "stream",
            "127.0.0.1:0",
            "sync",
            &plugin("sockhost_probe"),
            "nice = -5",
        )
    );
    let d = Daemon::start(&cfg);
    let sys_nice = 1u64 << 23;
    assert_eq!(
        common::sec::cap_mask(d.pid(), "CapPrm"),
        (1 << 10) | sys_nice,
        "CAP_NET_BIND_SERVICE and CAP_SYS_NICE"
    );
    assert!(
        d.log().contains("a negative nice (listener \"eager\")"),
        "{}",
        d.log()
    );
    assert_eq!(nice(worker(&d, "eager")), -5);
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}
