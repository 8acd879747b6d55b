//! The command line as users script it: `--help`/`--version`, exit status 2
//! for a bad command line, `--check` (0 on a good config without binding
//! anything, 1 naming the plugin path or FILE:LINE:COLUMN and key on a bad
//! one), a missing config file, and `--daemonize --pid-file` (returns once
//! the daemon serves, the pid file names the daemon, SIGTERM removes it; a
//! daemon that cannot start makes the command exit 1 with the reason).

mod common;
use common::life::*;
use common::*;
use std::path::Path;
use std::time::Duration;

/// `sockhostd --check -c PATH`: (exit status, stdout, stderr).
fn check(config: &Path) -> (i32, String, String) {
    run_cli(&[
        "--check",
        "-c",
        &config.display().to_string(),
        "--log",
        "stderr",
    ])
}

/// One config file in a fresh folder.
fn config_file(tag: &str, text: &str) -> (TestDir, std::path::PathBuf) {
    let dir = TestDir::new(tag);
    let path = dir.write("sockhost.toml", text);
    (dir, path)
}

// `--help` and `--version` exit 0 and print the program's name.
#[test]
fn help_and_version_exit_0_and_name_the_program() {
    for flag in ["--help", "--version"] {
        let (code, out, err) = run_cli(&[flag]);
        assert_eq!(code, 0, "{flag} exits 0: {err}");
        assert!(out.contains("sockhostd"), "{flag} names sockhostd: {out:?}");
    }
    let (_, help, _) = run_cli(&["--help"]);
    for flag in [
        "--config",
        "--check",
        "--daemonize",
        "--pid-file",
        "--log",
        "--log-file",
    ] {
        assert!(help.contains(flag), "--help lists {flag}:\n{help}");
    }
    assert!(
        help.contains("syslog"),
        "--help lists --log syslog:\n{help}"
    );
}

// An unknown flag is a bad command line: exit 2, naming the flag.
#[test]
fn unknown_flag_exits_2() {
    let (code, _, err) = run_cli(&["--no-such-flag"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--no-such-flag"), "names the flag: {err}");
}

// `--daemonize` needs `--pid-file`: without it, exit 2 naming --pid-file.
#[test]
fn daemonize_without_pid_file_exits_2() {
    let (_dir, cfg) = config_file("cli-nopid", "");
    let (code, _, err) = run_cli(&["--daemonize", "-c", &cfg.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--pid-file"), "names --pid-file: {err}");
}

// `--check` on a good config (probe and echo) exits 0 and binds nothing: a port the test holds stays ours.
#[test]
fn check_passes_on_a_good_config_without_binding() {
    let (held, port) = hold_port();
    let dir = TestDir::new("cli-good");
    let sock = dir.join("echo.sock");
    let cfg = probe_listener(
        "probe",
        "inet",
        "stream",
        &format!("127.0.0.1:{port}"),
        "thread",
        "",
    ) + &listener(
        "echo",
        "unix",
        "stream",
        &sock.display().to_string(),
        "fork",
        &plugin("sockhost_echo"),
        "",
    );
    let path = dir.write("sockhost.toml", &cfg);
    let (code, out, err) = check(&path);
    assert_eq!(code, 0, "--check passes with the port taken: {out}{err}");
    assert!(!sock.exists(), "--check created no unix socket file");
    held.set_nonblocking(true).expect("nonblocking");
    let _c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to our port");
    assert!(
        wait_until(DEADLINE, || held.accept().is_ok()),
        "the port is still ours after --check"
    );
}

/// A config serving plugin `stem` on one listener named `name`.
fn fixture_config(tag: &str, stem: &str, name: &str) -> (TestDir, std::path::PathBuf, String) {
    let so = plugin(stem);
    let cfg = listener(name, "inet", "stream", "127.0.0.1:0", "thread", &so, "");
    let (dir, path) = config_file(tag, &cfg);
    (dir, path, so.display().to_string())
}

// `--check` refuses a plugin built for ABI 2.0 with exit 1, naming its path and both versions.
#[test]
fn check_refuses_abi_major_fixture() {
    let (_dir, cfg, so) = fixture_config("cli-abi", "sockhost_fixture_abi_major", "abi");
    let (code, out, err) = check(&cfg);
    assert_eq!(code, 1, "{out}{err}");
    let host = format!(
        "{}.{}",
        sockhost_sdk::sys::SOCKHOST_ABI_MAJOR,
        sockhost_sdk::sys::SOCKHOST_ABI_MINOR
    );
    assert!(
        has_line(&err, &[&so, "2.0", &host]),
        "path, found 2.0, needs {host}: {err}"
    );
}

// `--check` refuses a plugin without an entry function, naming `sockhost_plugin_init`.
#[test]
fn check_refuses_no_entry_fixture() {
    let (_dir, cfg, so) = fixture_config("cli-noentry", "sockhost_fixture_no_entry", "noentry");
    let (code, out, err) = check(&cfg);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        has_line(&err, &[&so, "sockhost_plugin_init"]),
        "names the symbol: {err}"
    );
}

// `--check` runs `create`: a plugin whose create fails exits 1 with the plugin's own message.
#[test]
fn check_refuses_create_fails_fixture() {
    let (_dir, cfg, so) = fixture_config("cli-create", "sockhost_fixture_create_fails", "doomed");
    let (code, out, err) = check(&cfg);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        has_line(&err, &[&so, "cannot serve doomed"]),
        "the plugin's reason: {err}"
    );
}

/// A probe listener whose line 6 is `LINE6` (the mixin line).
fn with_line6(line6: &str, more: &str) -> String {
    format!(
        "[[listener]]\nname = \"x\"\nfamily = \"inet\"\ntype = \"stream\"\naddress = \"127.0.0.1:0\"\n\
         {line6}\nhandler = \"{}\"\n{more}",
        plugin("sockhost_probe").display()
    )
}

// A TOML syntax error exits 1 naming FILE:LINE:COLUMN of the bad token.
#[test]
fn syntax_error_names_file_line_and_column() {
    let (_dir, cfg) = config_file("cli-syntax", &with_line6("mixin = thread", ""));
    let (code, out, err) = check(&cfg);
    assert_eq!(code, 1, "{out}{err}");
    let at = format!("{}:6:9", cfg.display());
    assert!(err.contains(&at), "points at {at}: {err}");
}

// An unknown key exits 1 naming FILE:LINE:COLUMN and the key.
#[test]
fn unknown_key_names_file_line_column_and_key() {
    let (_dir, cfg) = config_file(
        "cli-unknown",
        &with_line6("mixin = \"sync\"", "colour = \"blue\"\n"),
    );
    let (code, out, err) = check(&cfg);
    assert_eq!(code, 1, "{out}{err}");
    let at = format!("{}:8:1", cfg.display());
    assert!(has_line(&err, &[&at, "colour"]), "{at} and the key: {err}");
}

// A bad enum value exits 1 naming FILE:LINE:COLUMN, the key and the allowed values.
#[test]
fn bad_enum_value_names_key_and_allowed_values() {
    let (_dir, cfg) = config_file("cli-enum", &with_line6("mixin = \"threads\"", ""));
    let (code, out, err) = check(&cfg);
    assert_eq!(code, 1, "{out}{err}");
    let (at_value, at_key) = (
        format!("{}:6:9", cfg.display()),
        format!("{}:6:1", cfg.display()),
    );
    let at = if err.contains(&at_value) {
        at_value
    } else {
        at_key
    };
    assert!(
        has_line(&err, &[&at, "mixin", "threads", "sync", "thread", "fork"]),
        "{at}, key, value and allowed values: {err}"
    );
}

// A wrong type in a drop-in file names that file, line, column and key.
#[test]
fn error_in_an_included_file_names_that_file() {
    let dir = TestDir::new("cli-include");
    let main = dir.write("sockhost.toml", "[daemon]\ninclude = [\"conf.d/*.toml\"]\n");
    let drop_in = dir.write(
        "conf.d/bad.toml",
        &with_line6("mixin = \"sync\"", "workers = \"two\"\n"),
    );
    let (code, out, err) = check(&main);
    assert_eq!(code, 1, "{out}{err}");
    let at = format!("{}:8:", drop_in.display());
    assert!(has_line(&err, &[&at, "workers"]), "{at} and the key: {err}");
}

// A config file that does not exist exits 1 naming the path, for --check and for a plain start.
#[test]
fn missing_config_file_exits_1_naming_the_path() {
    let dir = TestDir::new("cli-missing");
    let gone = dir.join("nowhere/sockhost.toml").display().to_string();
    for args in [vec!["--check", "-c", &gone], vec!["-c", &gone]] {
        let (code, out, err) = run_cli(&args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains(&gone), "{args:?} names {gone}: {err}");
    }
}

/// Kills a daemonized sockhostd (read from its pid file) and its workers
/// if a test ends before stopping it.
struct PidFileGuard(std::path::PathBuf);

impl Drop for PidFileGuard {
    fn drop(&mut self) {
        let Some(pid) = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        else {
            return;
        };
        if exited(pid) {
            return;
        }
        for w in child_pids(pid) {
            // SAFETY: killing the worker groups of a daemon this test started.
            unsafe { libc::kill(-w, libc::SIGKILL) };
        }
        // SAFETY: killing the daemon this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

// `--daemonize --pid-file P` returns 0 once the daemon serves; P names it; SIGTERM stops it and removes P.
#[test]
fn daemonize_returns_when_serving_and_sigterm_removes_the_pid_file() {
    let dir = TestDir::new("cli-daemon");
    let sock = dir.join("probe.sock");
    let pid_file = dir.join("sockhostd.pid");
    let _guard = PidFileGuard(pid_file.clone());
    let cfg = dir.write(
        "sockhost.toml",
        &probe_listener(
            "bg",
            "unix",
            "stream",
            &sock.display().to_string(),
            "thread",
            "",
        ),
    );
    let (pf, cf) = (pid_file.display().to_string(), cfg.display().to_string());
    let args = [
        "--daemonize",
        "--pid-file",
        &pf,
        "-c",
        &cf,
        "--log",
        "stderr",
    ];
    let (code, err) = run_to_files(&args, &dir.path)
        .unwrap_or_else(|e| panic!("--daemonize did not return within {DEADLINE:?}:\n{e}"));
    assert_eq!(code, 0, "{err}");
    // No retry: the daemon serves as soon as the command returned.
    let mut p = Probe::connect(&sock.display().to_string());
    assert_eq!(p.cmd("PING"), "PONG");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file written")
        .trim()
        .parse()
        .expect("pid file holds a number");
    assert!(!exited(pid), "the pid file names a live process");
    let parent: i32 = p.cmd("PPID").parse().expect("ppid");
    assert_eq!(
        parent, pid,
        "the pid file names the master (the worker's parent)"
    );
    drop(p);
    // SAFETY: signalling the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(
        wait_until(DEADLINE, || !pid_file.exists() && exited(pid)),
        "SIGTERM stops the daemon and removes its pid file"
    );
    assert!(!sock.exists(), "its socket file is removed too");
}

// `--daemonize` with a plugin whose create fails exits 1 with the plugin's reason and leaves no pid file.
#[test]
fn daemonize_with_a_bad_plugin_exits_1_with_the_reason() {
    let dir = TestDir::new("cli-daemon-bad");
    let pid_file = dir.join("sockhostd.pid");
    let _guard = PidFileGuard(pid_file.clone());
    let so = plugin("sockhost_fixture_create_fails");
    let cfg = dir.write(
        "sockhost.toml",
        &listener("broken", "inet", "stream", "127.0.0.1:0", "sync", &so, ""),
    );
    let (pf, cf) = (pid_file.display().to_string(), cfg.display().to_string());
    let args = [
        "--daemonize",
        "--pid-file",
        &pf,
        "-c",
        &cf,
        "--log",
        "stderr",
    ];
    let (code, err) = run_to_files(&args, &dir.path)
        .unwrap_or_else(|e| panic!("--daemonize did not return within {DEADLINE:?}:\n{e}"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot serve broken"), "the reason: {err}");
    assert!(
        wait_until(Duration::from_secs(5), || !pid_file.exists()),
        "no pid file left behind"
    );
}
