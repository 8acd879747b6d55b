//! Real inetd-style programs behind the exec plugin, driven by their real
//! clients on loopback: `git daemon --inetd` with `git clone`, `rsync
//! --daemon` with `rsync rsync://`, and tftpd-hpa's `in.tftpd` as a
//! `wait = true` datagram service answering two `tftp` gets in a row.
//! The tools come from Debian's git, rsync, tftpd-hpa and tftp-hpa
//! packages; each test says SKIPPED without them, and fails instead with
//! SOCKHOST_REQUIRE_PROGRAMS set (CI, see .ci/run).

mod common;
use common::exec::*;
use common::*;
use std::process::Command;

const REQUIRE: &str = "SOCKHOST_REQUIRE_PROGRAMS";

/// Protects: `git daemon --inetd` serves a clone through the exec
/// plugin in fork and thread mode (fds 0/1 the connection, PATH found
/// for git-upload-pack), each clone an `ok` request in the access log.
#[test]
fn git_daemon_inetd_serves_git_clone() {
    if !tool_or_skip("git", "git", REQUIRE) {
        return;
    }
    let dir = scripts_dir("exec-git");
    let base = dir.join("srv");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    git(
        &dir.path,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            &format!("{}/repo.git", base.display()),
        ],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("hello.txt"), "hello from git\n").expect("write");
    git(&work, &["add", "hello.txt"]);
    git(
        &work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.org",
            "commit",
            "-q",
            "-m",
            "one",
        ],
    );
    git(
        &work,
        &[
            "push",
            "-q",
            &format!("{}/repo.git", base.display()),
            "main",
        ],
    );
    for mixin in ["fork", "thread"] {
        let command = format!(
            "[\"git\", \"daemon\", \"--inetd\", \"--export-all\", \"--base-path={}\"]",
            base.display()
        );
        let d = Daemon::start(&exec_listener(
            "git",
            "inet",
            "stream",
            "127.0.0.1:0",
            mixin,
            &command,
            "access_log = true",
            &format!("env = {{ HOME = \"{}\" }}", dir.path.display()),
        ));
        let out = dir.join(&format!("clone-{mixin}"));
        let url = format!("git://{}/repo.git", d.addr("git"));
        run(Command::new("git").env("HOME", &dir.path).args([
            "clone",
            "-q",
            &url,
            &out.display().to_string(),
        ]))
        .unwrap_or_else(|e| panic!("{mixin}: {e}\n{}", d.log()));
        let got = std::fs::read_to_string(out.join("hello.txt")).expect("cloned file");
        assert_eq!(got, "hello from git\n");
        assert!(
            common::life::wait_until(DEADLINE, || d.log().contains("outcome=\"ok\"")),
            "{mixin}: {}",
            d.log()
        );
        assert!(!d.log().contains("outcome=\"error\""), "{}", d.log());
    }
}

/// Protects: `rsync --daemon` (which finds its socket on stdin) serves
/// `rsync rsync://HOST:PORT/module/` through the exec plugin.
#[test]
fn rsync_daemon_serves_a_module() {
    if !tool_or_skip("rsync", "rsync", REQUIRE) {
        return;
    }
    let dir = scripts_dir("exec-rsync");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    std::fs::write(src.join("a.txt"), "alpha\n").expect("write");
    std::fs::write(src.join("sub/b.txt"), "beta\n").expect("write");
    let conf = dir.write(
        "rsyncd.conf",
        &format!(
            "use chroot = no\nlog file = {}/rsyncd.log\n[mod]\npath = {}\nread only = yes\nuid = root\ngid = root\n",
            dir.path.display(),
            src.display()
        ),
    );
    let command = format!("[\"rsync\", \"--daemon\", \"--config={}\"]", conf.display());
    let d = Daemon::start(&exec_listener(
        "rsync",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        &command,
        "access_log = true",
        "",
    ));
    let out = dir.join("out");
    let url = format!("rsync://{}/mod/", d.addr("rsync"));
    run(Command::new("rsync").args(["-a", &url, &format!("{}/", out.display())]))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.log()));
    assert_eq!(
        std::fs::read_to_string(out.join("a.txt")).expect("a"),
        "alpha\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("sub/b.txt")).expect("b"),
        "beta\n"
    );
}

/// Protects: `wait = true` on a datagram listener: in.tftpd gets the
/// listening socket, reads the first request itself and serves it; the
/// listener takes nothing meanwhile and hands the socket over again for
/// the next get, in every mixin.
#[test]
fn tftpd_with_wait_serves_two_gets_in_a_row() {
    if !tool_or_skip("/usr/sbin/in.tftpd", "tftpd-hpa", REQUIRE)
        || !tool_or_skip("tftp", "tftp-hpa", REQUIRE)
    {
        return;
    }
    let dir = scripts_dir("exec-tftp");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).expect("mkdir");
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("one.txt"), "first file\n").expect("write");
    std::fs::write(root.join("two.bin"), &big).expect("write");
    for mixin in ["fork", "thread", "sync"] {
        let command = format!(
            "[\"/usr/sbin/in.tftpd\", \"--secure\", \"--timeout\", \"1\", \"{}\"]",
            root.display()
        );
        let d = Daemon::start(&exec_listener(
            "tftp",
            "inet",
            "dgram",
            "127.0.0.1:0",
            mixin,
            &command,
            "access_log = true",
            "wait = true",
        ));
        let addr = d.inet("tftp");
        let got = dir.join(&format!("got-{mixin}"));
        std::fs::create_dir_all(&got).expect("mkdir");
        for (file, want) in [
            ("one.txt", b"first file\n".to_vec()),
            ("two.bin", big.clone()),
        ] {
            run(Command::new("tftp").current_dir(&got).args([
                "-m",
                "binary",
                &addr.ip().to_string(),
                &addr.port().to_string(),
                "-c",
                "get",
                file,
            ]))
            .unwrap_or_else(|e| panic!("{mixin}: {e}\n{}", d.log()));
            let have = std::fs::read(got.join(file)).expect("downloaded");
            assert!(
                have == want,
                "{mixin}: {file} differs ({} bytes)",
                have.len()
            );
        }
        assert!(
            common::life::wait_until(DEADLINE, || d.log().matches("outcome=\"ok\"").count() >= 1),
            "{mixin}: {}",
            d.log()
        );
    }
}
