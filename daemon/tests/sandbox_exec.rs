//! Programs run by the exec plugin under `[listener.sandbox]`: the program
//! inherits the worker's box. The hostile fixture's probes
//! (plugins/fixtures/hostile-c/hostile.c) are built (common/hostile.rs) as
//! a program reading commands on fd 0 and answering on it, run as each request's
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
use common::hostile::*;
use common::life::*;
use common::sec::landlock_or_skip;
use common::*;
use std::path::Path;
use std::process::Command;

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
    let s = Hostile::start(Runs::Program, "enforce", &mixins);
    for m in mixins {
        let name = s.name(m);
        let (got, pid) = s.probe_all(&name);
        assert!(
            pid.parse::<i32>().is_ok(),
            "{name}: the program answers: {pid}"
        );
        s.assert_enforced(&name, &got);
        s.assert_log_names_calls(BLOCKED, &name);
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
        s.assert_still_serving(&[&name]);
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
    s.assert_nothing_beside_the_config();
}

// Protects: the probes are real: with the sandbox off every one succeeds,
// exec of /bin/sh included.
#[test]
fn with_the_sandbox_off_the_program_escapes() {
    let s = Hostile::start(Runs::Program, "off", &["fork"]);
    let (got, _) = s.probe_all("prog-fork");
    assert_all_succeed(&got, "with the sandbox off");
    assert_eq!(got["exec"], "OK ran, status 0");
    s.assert_still_serving(&["prog-fork"]);
}

// Protects: log mode lets the program do everything and reports the calls
// enforce would block, naming the program's pid.
#[test]
fn log_mode_lets_the_program_through_and_reports_it() {
    if !landlock_or_skip() {
        return;
    }
    let s = Hostile::start(Runs::Program, "log", &["fork"]);
    let (got, pid) = s.probe_all("prog-fork");
    assert_all_succeed(&got, "under log mode");
    s.assert_log_names_calls(WOULD_BLOCK, "prog-fork");
    let own = [
        "would block socket(AF_INET, SOCK_DGRAM)",
        &format!("in listener prog-fork pid {pid}"),
    ];
    assert!(
        has_line(&s.d.log(), &own),
        "program pid {pid}:\n{}",
        s.d.log()
    );
    s.assert_still_serving(&["prog-fork"]);
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
        let cfg = tcp_exec("prog", "fork", Path::new("/bin/cat"), sandbox, "");
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
        cfg += &tcp_exec(&format!("sh-{mode}"), "fork", &prog, &sandbox, "");
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
