//! Programs run by the exec plugin under `[listener.sandbox]`: the program
//! inherits the worker's box. The hostile fixture's probes
//! (plugins/fixtures/hostile-c/hostile.c) are built here as a program
//! reading commands on fd 0 and answering on it, run as each request's
//! command: under `enforce` with `exec = true` it reads its own paths and
//! writes its `read_write` folder, but another listener's file, a write
//! elsewhere, a TCP/UDP socket, exec of a binary other than its command
//! (/bin/sh), a user namespace, a signal or ptrace to a sibling worker all
//! fail with their errno, and the log names the listener, the program's pid
//! and the blocked call; with the sandbox off the same succeed; under `log`
//! they succeed and are reported. A shell script runs its interpreter and the
//! tools `read_only` lists, nothing else. `exec = false` with the exec plugin is
//! refused by `--check`, naming the key. `git daemon --inetd` serves `git
//! clone` under enforce with only its repositories readable.
//! Needs Landlock ABI 6: SKIPPED otherwise.

mod common;
use common::exec::*;
use common::life::*;
use common::sec::landlock_or_skip;
use common::*;
use std::collections::BTreeMap;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The hostile fixture's command loop as a program on fd 0.
const PROGRAM_MAIN: &str = r#"
#include "hostile.c"
int main(void) {
    sockhost_request req;
    memset(&req, 0, sizeof req);
    req.fd = 0;
    return hostile_handle(NULL, &req);
}
"#;

/// Compile the probe program into `dir`.
fn build_program(dir: &Path) -> PathBuf {
    let root = workspace();
    let main = dir.join("probe-main.c");
    std::fs::write(&main, PROGRAM_MAIN).expect("write probe-main.c");
    let out = dir.join("probe");
    let st = Command::new("cc")
        .args(["-O2", "-Wall", "-Wno-unused-function", "-I"])
        .arg(root.join("handler-sdk/include"))
        .arg("-I")
        .arg(root.join("plugins/fixtures/hostile-c"))
        .arg(&main)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run cc");
    assert!(st.success(), "cc builds the probe program: {st}");
    out
}

struct Scene {
    d: Daemon,
    root: PathBuf,
    tcp: TcpListener,
    udp: UdpSocket,
}

/// A daemon with an exec listener `prog-MIXIN` per mixin running the probe
/// program under `mode`, and a probe listener `sib` beside them.
fn scene(mode: &str, mixins: &[&str]) -> Scene {
    let dir = TestDir::new("sandbox-exec");
    let root = dir.path.clone();
    dir.write("other/secret.txt", "secret\n");
    dir.write("mine/a.txt", "mine\n");
    std::fs::create_dir_all(dir.join("rw")).expect("mkdir rw");
    let program = build_program(&dir.path);
    let mut cfg = "[daemon]\ncontrol_socket = \"\"\n".to_owned();
    for m in mixins {
        let extra = format!(
            "[listener.sandbox]\nmode = \"{mode}\"\nread_only = [\"mine\"]\nread_write = [\"rw\"]\nnetwork = \"none\"\nexec = true\n"
        );
        cfg += &exec_listener(
            &format!("prog-{m}"),
            "inet",
            "stream",
            "127.0.0.1:0",
            m,
            &format!("[\"{}\"]", program.display()),
            &extra,
            "",
        );
    }
    cfg += &tcp_probe("sib", "sync", "");
    let d = start_in(dir, &cfg)
        .unwrap_or_else(|f| panic!("daemon failed to start ({}):\n{}", f.status, f.log));
    Scene {
        d,
        root,
        tcp: TcpListener::bind("127.0.0.1:0").expect("bind tcp"),
        udp: UdpSocket::bind("127.0.0.1:0").expect("bind udp"),
    }
}

/// Every probe's reply by name from one connection to `name` (one program),
/// and that program's pid.
fn probe_all(s: &Scene, name: &str) -> (BTreeMap<&'static str, String>, String) {
    let sib = Probe::connect(&s.d.addr("sib")).cmd("PID");
    let tcp = s.tcp.local_addr().expect("addr").port();
    let udp = s.udp.local_addr().expect("addr").port();
    let r = |p: &str| s.root.join(p).display().to_string();
    let escape = format!("/tmp/sockhost-exec-escape-{}-{name}", std::process::id());
    let cmds: Vec<(&'static str, String)> = vec![
        ("read_other", format!("READ {}", r("other/secret.txt"))),
        ("read_mine", format!("READ {}", r("mine/a.txt"))),
        ("write_rw", format!("WRITE {}", r("rw/out.txt"))),
        ("write_config_folder", format!("WRITE {}", r("escape.txt"))),
        ("write_tmp", format!("WRITE {escape}")),
        ("tcp", format!("TCP 127.0.0.1 {tcp}")),
        ("udp", format!("UDP 127.0.0.1 {udp}")),
        ("exec", "EXEC".into()),
        ("userns", "USERNS".into()),
        ("kill", format!("KILL {sib}")),
        ("ptrace", format!("PTRACE {sib}")),
    ];
    let mut p = Probe::connect(&s.d.addr(name));
    let pid = p.cmd("PID");
    let out = cmds.into_iter().map(|(k, c)| (k, p.cmd(&c))).collect();
    let _ = std::fs::remove_file(&escape);
    (out, pid)
}

fn still_serves(s: &Scene, name: &str) {
    let mut p = Probe::connect(&s.d.addr(name));
    assert_eq!(p.cmd("PING"), "PONG", "{name} still serves");
    assert_eq!(
        stream_cmd(&s.d.addr("sib"), "PING"),
        "PONG",
        "sib untouched"
    );
    assert!(!exited(s.d.pid()), "the master is running");
}

// Protects: a program run by the exec plugin is in its listener's box:
// every escape fails with its errno (exec of another binary too, though
// `exec = true` lets its own command run), and the log names the listener,
// the program's pid and each blocked call.
#[test]
fn enforce_boxes_the_program_and_logs_what_it_blocked() {
    if !landlock_or_skip() {
        return;
    }
    let mixins = ["fork", "thread"];
    let s = scene("enforce", &mixins);
    for m in mixins {
        let name = format!("prog-{m}");
        let (got, pid) = probe_all(&s, &name);
        assert!(
            pid.parse::<i32>().is_ok(),
            "{name}: the program answers: {pid}"
        );
        let want = [
            ("read_other", "ERR open EACCES"),
            ("read_mine", "OK read 5"),
            ("write_rw", "OK wrote 8"),
            ("write_config_folder", "ERR open EACCES"),
            ("write_tmp", "ERR open EACCES"),
            ("tcp", "ERR socket EAFNOSUPPORT"),
            ("udp", "ERR socket EAFNOSUPPORT"),
            ("exec", "ERR execve EACCES"),
            ("userns", "ERR unshare EPERM"),
            ("kill", "ERR kill EPERM"),
            ("ptrace", "ERR ptrace EPERM"),
        ];
        for (k, v) in want {
            assert_eq!(got[k], v, "{name}: {k}\n{}", s.d.log());
        }
        for what in [
            "socket(AF_INET, SOCK_STREAM)",
            "socket(AF_INET, SOCK_DGRAM)",
            "unshare(CLONE_NEWUSER)",
            "ptrace(",
        ] {
            let needles = ["sandbox blocked", what, &format!("in listener {name} pid ")];
            assert!(
                wait_until(DEADLINE, || has_line(&s.d.log(), &needles)),
                "{name}: the log names {what}:\n{}",
                s.d.log()
            );
        }
        // The socket calls are the program's own (the unshare and ptrace
        // ones are made by a child it forks or by itself, any pid is fine).
        let own = [
            "sandbox blocked socket(AF_INET, SOCK_STREAM)",
            &format!("in listener {name} pid {pid}:"),
        ];
        assert!(
            has_line(&s.d.log(), &own),
            "{name}: the line names the program's pid {pid}:\n{}",
            s.d.log()
        );
        still_serves(&s, &name);
        let start: Vec<String> =
            s.d.log()
                .lines()
                .filter(|l| l.contains(&format!("listener={name}")) && l.contains("worker box:"))
                .map(str::to_owned)
                .collect();
        assert_eq!(start.len(), 1, "{name}: one start line:\n{}", s.d.log());
        for part in [
            "worker box: user=",
            " group=",
            " limits=",
            " umask=",
            "no_new_privs=true sandbox=enforce landlock=[ABI ",
            "TCP bind/connect denied]",
            " seccomp=[blocks new sockets other than unix (EAFNOSUPPORT)",
        ] {
            assert!(start[0].contains(part), "{name}: {part} in {}", start[0]);
        }
        assert!(
            !s.d.log().contains("sandbox enforce:"),
            "no second start line:\n{}",
            s.d.log()
        );
    }
    assert!(
        !s.root.join("escape.txt").exists(),
        "nothing written beside the config"
    );
}

// Protects: the probes are real: with the sandbox off every one succeeds,
// exec of /bin/sh included.
#[test]
fn with_the_sandbox_off_the_program_escapes() {
    let s = scene("off", &["fork"]);
    let (got, _) = probe_all(&s, "prog-fork");
    for (k, v) in &got {
        assert!(
            v.starts_with("OK"),
            "{k} succeeds with the sandbox off: {v}"
        );
    }
    assert_eq!(got["exec"], "OK ran, status 0");
    still_serves(&s, "prog-fork");
}

// Protects: log mode lets the program do everything and reports the calls
// enforce would block, naming the program's pid.
#[test]
fn log_mode_lets_the_program_through_and_reports_it() {
    if !landlock_or_skip() {
        return;
    }
    let s = scene("log", &["fork"]);
    let (got, pid) = probe_all(&s, "prog-fork");
    for (k, v) in &got {
        assert!(v.starts_with("OK"), "{k} succeeds under log mode: {v}");
    }
    for what in [
        "socket(AF_INET, SOCK_STREAM)",
        "socket(AF_INET, SOCK_DGRAM)",
        "unshare(CLONE_NEWUSER)",
        "ptrace(",
    ] {
        let needles = [
            "sandbox (log mode) would block",
            what,
            "in listener prog-fork pid ",
        ];
        assert!(
            wait_until(DEADLINE, || has_line(&s.d.log(), &needles)),
            "the log names {what}:\n{}",
            s.d.log()
        );
    }
    let own = [
        "would block socket(AF_INET, SOCK_DGRAM)",
        &format!("in listener prog-fork pid {pid}"),
    ];
    assert!(
        has_line(&s.d.log(), &own),
        "program pid {pid}:\n{}",
        s.d.log()
    );
    still_serves(&s, "prog-fork");
}

// Protects: the exec plugin under enforce with `exec = false` (or `exec`
// left out) would fail every request at execve: --check refuses it and
// names file, line, column and the key.
#[test]
fn check_refuses_the_exec_plugin_without_exec_under_enforce() {
    for (tag, sandbox) in [
        (
            "false",
            "[listener.sandbox]\nmode = \"enforce\"\nexec = false\n",
        ),
        ("missing", "[listener.sandbox]\nmode = \"enforce\"\n"),
    ] {
        let dir = TestDir::new("sandbox-exec-check");
        let cfg = exec_listener(
            "prog",
            "inet",
            "stream",
            "127.0.0.1:0",
            "fork",
            "[\"/bin/cat\"]",
            sandbox,
            "",
        );
        let path = dir.write("sockhost.toml", &cfg);
        let file = path.display().to_string();
        // Where the error points: `exec = false` itself, else the table.
        let (needle, column) = match tag {
            "false" => ("exec = false", 8),
            _ => ("[listener.sandbox]", 1),
        };
        let line = 1 + cfg
            .lines()
            .position(|l| l == needle)
            .expect("the line in the config");
        let at = format!("{file}:{line}:{column}: key `listener.sandbox.exec`");
        let (code, out, err) = run_cli(&["--check", "-c", &file]);
        assert_ne!(code, 0, "{tag}: refused\n{out}{err}");
        let text = format!("{out}{err}");
        assert!(
            has_line(&text, &[&at, "set exec = true"]),
            "{tag}: names file, line, column and key ({at}):\n{text}"
        );
        let fixed = cfg.replace("mode = \"enforce\"\n", "mode = \"enforce\"\nexec = true\n");
        let fixed = fixed.replace("exec = true\nexec = false\n", "exec = true\n");
        dir.write("sockhost.toml", &fixed);
        let (code, out, err) = run_cli(&["--check", "-c", &file]);
        assert_eq!(code, 0, "{tag}: exec = true passes:\n{out}{err}");
        // The daemon itself refuses to start on it, with the same words.
        dir.write("sockhost.toml", &cfg);
        let mut cmd = Command::new(sockhostd());
        cmd.arg("-c").arg(&path).args(["--log", "stderr"]);
        match Daemon::try_start_cmd(dir, path, cmd) {
            Ok(d) => panic!("{tag}: the daemon started:\n{}", d.log()),
            Err(f) => assert!(
                has_line(&f.log, &[&at, "set exec = true"]),
                "{tag}: the start error names the key:\n{}",
                f.log
            ),
        }
    }
}

// Protects: what `exec = true` lets a shell script run: its interpreter
// (from the `#!` line) and what `read_only` lists, never another binary
// (exit 126, EACCES); with the sandbox off the same script runs both.
#[test]
fn a_script_runs_its_interpreter_and_listed_tools_only() {
    if !landlock_or_skip() {
        return;
    }
    let dir = scripts_dir("sandbox-exec-script");
    dir.write("mine/a.txt", "mine\n");
    let mine = dir.join("mine/a.txt");
    let prog = script(
        &dir.path,
        "tools.sh",
        &format!(
            "/usr/bin/cat {}\nif /usr/bin/id -u >/dev/null 2>&1; then echo id ran; else echo id refused $?; fi",
            mine.display()
        ),
    );
    let mut cfg = String::new();
    for mode in ["enforce", "off"] {
        let sandbox = format!(
            "[listener.sandbox]\nmode = \"{mode}\"\nnetwork = \"none\"\nexec = true\nread_only = [\"{}\", \"/usr/bin/cat\"]\n",
            dir.join("mine").display()
        );
        cfg += &exec_listener(
            &format!("sh-{mode}"),
            "inet",
            "stream",
            "127.0.0.1:0",
            "fork",
            &format!("[\"{}\"]", prog.display()),
            &sandbox,
            "",
        );
    }
    let d = Daemon::start(&cfg);
    assert_eq!(
        converse(&d.addr("sh-enforce"), b""),
        "mine\nid refused 126\n",
        "{}",
        d.log()
    );
    assert_eq!(
        converse(&d.addr("sh-off"), b""),
        "mine\nid ran\n",
        "{}",
        d.log()
    );
}

// Protects: a real inetd program works in the box: `git daemon --inetd`
// with only its base path readable serves `git clone` under enforce with
// network = "none", in fork and thread mode.
#[test]
fn git_daemon_serves_git_clone_under_enforce() {
    if !landlock_or_skip() || !tool_or_skip("git", "git", "SOCKHOST_REQUIRE_PROGRAMS") {
        return;
    }
    let dir = scripts_dir("sandbox-exec-git");
    let base = dir.join("srv");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    let bare = format!("{}/repo.git", base.display());
    git(&dir.path, &["init", "-q", "--bare", "-b", "main", &bare]);
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("hello.txt"), "hello from git\n").expect("write");
    git(&work, &["add", "hello.txt"]);
    let who = ["-c", "user.name=t", "-c", "user.email=t@example.org"];
    git(&work, &[&who[..], &["commit", "-q", "-m", "one"]].concat());
    git(&work, &["push", "-q", &bare, "main"]);
    // git reads the system config; without it Debian's git warns that it
    // cannot access /etc/gitconfig and fails.
    let etc = if Path::new("/etc/gitconfig").exists() {
        ", \"/etc/gitconfig\""
    } else {
        ""
    };
    // The git on PATH (its helpers may sit in PREFIX/libexec/git-core) and
    // Debian's (helpers in /usr/lib/git-core) when that is another one.
    let mut gits = vec!["git"];
    if Path::new("/usr/bin/git").exists() {
        gits.push("/usr/bin/git");
    }
    let names = |i: usize, mixin: &str| format!("git{i}-{mixin}");
    let mut cfg = String::new();
    for (i, program) in gits.iter().enumerate() {
        for mixin in ["fork", "thread"] {
            let command = format!(
                "[\"{program}\", \"daemon\", \"--inetd\", \"--export-all\", \"--base-path={}\"]",
                base.display()
            );
            let sandbox = format!(
                "[listener.sandbox]\nmode = \"enforce\"\nnetwork = \"none\"\nexec = true\nread_only = [\"{}\"{etc}]\n",
                base.display(),
            );
            cfg += &exec_listener(
                &names(i, mixin),
                "inet",
                "stream",
                "127.0.0.1:0",
                mixin,
                &command,
                &format!("access_log = true\n{sandbox}"),
                &format!("env = {{ HOME = \"{}\" }}", base.display()),
            );
        }
    }
    let d = Daemon::start(&cfg);
    for (i, program) in gits.iter().enumerate() {
        for mixin in ["fork", "thread"] {
            let name = names(i, mixin);
            let out = dir.join(&format!("clone-{name}"));
            let url = format!("git://{}/repo.git", d.addr(&name));
            let mut clone = Command::new("git");
            clone
                .env("HOME", &dir.path)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .args(["clone", "-q", &url])
                .arg(&out);
            if let Err(e) = run(&mut clone) {
                panic!(
                    "{name} ({program}): git clone under enforce: {e}\n{}",
                    d.log()
                );
            }
            let got = std::fs::read_to_string(out.join("hello.txt")).expect("cloned file");
            assert_eq!(got, "hello from git\n", "{name}");
            let ok = [&format!("listener={name} "), "outcome=\"ok\""];
            assert!(
                wait_until(DEADLINE, || has_line(&d.log(), &ok)),
                "{name}: the clone is an ok request:\n{}",
                d.log()
            );
        }
    }
    assert!(
        !d.log().contains("sandbox blocked"),
        "git needed nothing blocked:\n{}",
        d.log()
    );
}
