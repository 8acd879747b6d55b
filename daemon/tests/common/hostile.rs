//! The hostile scene the sandbox suites (sandbox.rs, sandbox_exec.rs)
//! share: the escape probes of plugins/fixtures/hostile-c (one command per
//! line, one reply line each) tried from inside a `[listener.sandbox]`,
//! either by the fixture loaded as the listener's plugin or by the fixture
//! built as a program the exec plugin runs on each connection.
//!
//! Promises: [`Hostile::start`] starts the real daemon with one boxed
//! listener per mixin (`hostile-MIXIN` for the plugin, `prog-MIXIN` for the
//! program) and a probe listener `sib` beside them, in a folder holding
//! `other/secret.txt` (never granted), `mine/a.txt` (`read_only`) and `rw/`
//! (`read_write`); [`ESCAPES`] is the probe table with the reply each probe
//! must get under `enforce`, per host; [`Hostile::assert_still_serving`]
//! checks that the listeners, `sib` and the master still serve and that no
//! worker was replaced since the start.

#![allow(dead_code)]

use super::exec::tcp_exec;
use super::life::{exited, has_line, tcp_probe, wait_until, workers_of};
use super::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What runs the probes inside the box.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Runs {
    /// The fixture as the listener's plugin (`exec = false`).
    Plugin,
    /// The fixture as a program run by the exec plugin (`exec = true`).
    Program,
}

/// Every escape the fixture tries, in the order one connection tries
/// them: its key, its command, and the reply it must get under `enforce`
/// from the plugin and from the program ("": not tried: the constructor
/// runs inside dlopen, which a program does not have, and the program
/// suite has never tried MPTCP or io_uring). In a command `{root}` is the
/// scene's folder, `{escape}` a file under /tmp, `{tcp}` and `{udp}` ports
/// of sockets the test holds, `{sib}` the sibling worker's pid. The program
/// may exec (`exec = true`) but Landlock lets it run only its own command:
/// /bin/sh gets EACCES; the plugin may not (`exec = false`): seccomp EPERM.
#[rustfmt::skip]
pub const ESCAPES: [(&str, &str, &str, &str); 14] = [
    ("ctor", "CTOR", "ERR open EACCES", ""),
    ("read_other", "READ {root}/other/secret.txt", "ERR open EACCES", "ERR open EACCES"),
    ("read_mine", "READ {root}/mine/a.txt", "OK read 5", "OK read 5"),
    ("write_rw", "WRITE {root}/rw/out.txt", "OK wrote 8", "OK wrote 8"),
    ("write_config_folder", "WRITE {root}/escape.txt", "ERR open EACCES", "ERR open EACCES"),
    ("write_tmp", "WRITE {escape}", "ERR open EACCES", "ERR open EACCES"),
    ("tcp", "TCP 127.0.0.1 {tcp}", "ERR socket EAFNOSUPPORT", "ERR socket EAFNOSUPPORT"),
    ("udp", "UDP 127.0.0.1 {udp}", "ERR socket EAFNOSUPPORT", "ERR socket EAFNOSUPPORT"),
    ("mptcp", "MPTCP 127.0.0.1 {tcp}", "ERR socket EAFNOSUPPORT", ""),
    ("exec", "EXEC", "ERR execve EPERM", "ERR execve EACCES"),
    ("userns", "USERNS", "ERR unshare EPERM", "ERR unshare EPERM"),
    ("kill", "KILL {sib}", "ERR kill EPERM", "ERR kill EPERM"),
    ("ptrace", "PTRACE {sib}", "ERR ptrace EPERM", "ERR ptrace EPERM"),
    ("uring", "URING", "ERR io_uring_setup EPERM", ""),
];

/// The escapes the box's seccomp part stops (or, in `log` mode, reports):
/// the key and the call a log line names, for the plugin and for the
/// program ("": no line; the program's exec is Landlock's, which logs
/// nothing).
#[rustfmt::skip]
pub const LOGGED: [(&str, &str, &str); 7] = [
    ("tcp", "socket(AF_INET, SOCK_STREAM)", "socket(AF_INET, SOCK_STREAM)"),
    ("udp", "socket(AF_INET, SOCK_DGRAM)", "socket(AF_INET, SOCK_DGRAM)"),
    ("mptcp", "socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP)", ""),
    ("exec", "execve(/bin/sh)", ""),
    ("userns", "unshare(CLONE_NEWUSER)", "unshare(CLONE_NEWUSER)"),
    ("ptrace", "ptrace(", "ptrace("),
    ("uring", "io_uring_setup", ""),
];

/// What a log line says of a call the box stopped under `enforce`.
pub const BLOCKED: &str = "sandbox blocked";
/// What a log line says of a call `log` mode let through.
pub const WOULD_BLOCK: &str = "sandbox (log mode) would block";

/// A running daemon with hostile listeners and the sibling `sib`.
pub struct Hostile {
    pub d: Daemon,
    /// The scene's folder (the config's folder).
    pub root: PathBuf,
    runs: Runs,
    workers: BTreeSet<i32>,
    tcp: TcpListener,
    udp: UdpSocket,
}

impl Hostile {
    /// Start a daemon with one listener per mixin in `mixins` where `runs`
    /// tries the escapes under sandbox `mode`, and `sib` beside them.
    pub fn start(runs: Runs, mode: &str, mixins: &[&str]) -> Hostile {
        let dir = TestDir::new(match runs {
            Runs::Plugin => "sandbox",
            Runs::Program => "sandbox-exec",
        });
        let root = dir.path.clone();
        dir.write("other/secret.txt", "secret\n");
        dir.write("mine/a.txt", "mine\n");
        std::fs::create_dir_all(dir.join("rw")).expect("mkdir rw");
        let exec = runs == Runs::Program;
        let sandbox = format!(
            "[listener.sandbox]\nmode = \"{mode}\"\nread_only = [\"mine\"]\nread_write = [\"rw\"]\nnetwork = \"none\"\nexec = {exec}\n"
        );
        let mut cfg = "[daemon]\ncontrol_socket = \"\"\n".to_owned();
        let built = match runs {
            Runs::Plugin => build_hostile_plugin(&root),
            Runs::Program => build_hostile_program(&root),
        };
        for m in mixins {
            let name = Self::name_for(runs, m);
            cfg += &match runs {
                Runs::Plugin => {
                    listener(&name, "inet", "stream", "127.0.0.1:0", m, &built, &sandbox)
                }
                Runs::Program => tcp_exec(&name, m, &built, &sandbox, ""),
            };
        }
        cfg += &tcp_probe("sib", "sync", "");
        let config = dir.write("sockhost.toml", &cfg);
        let mut cmd = Command::new(sockhostd());
        // Read by the plugin's constructor (the exec plugin clears a
        // program's environment).
        cmd.arg("-c")
            .arg(&config)
            .args(["--log", "stderr"])
            .env("SOCKHOST_HOSTILE_SECRET", root.join("other/secret.txt"));
        let d = Daemon::try_start_cmd(dir, config, cmd)
            .unwrap_or_else(|f| panic!("daemon failed to start ({}):\n{}", f.status, f.log));
        let workers = workers_of(d.pid());
        Hostile {
            d,
            root,
            runs,
            workers,
            tcp: TcpListener::bind("127.0.0.1:0").expect("bind tcp"),
            udp: UdpSocket::bind("127.0.0.1:0").expect("bind udp"),
        }
    }

    fn name_for(runs: Runs, mixin: &str) -> String {
        match runs {
            Runs::Plugin => format!("hostile-{mixin}"),
            Runs::Program => format!("prog-{mixin}"),
        }
    }

    /// The hostile listener for `mixin`.
    pub fn name(&self, mixin: &str) -> String {
        Self::name_for(self.runs, mixin)
    }

    /// The probes this scene's host tries: key, command, reply under
    /// `enforce`.
    pub fn escapes(&self) -> Vec<(&'static str, &'static str, &'static str)> {
        ESCAPES
            .iter()
            .map(|&(key, command, plugin, program)| (key, command, self.pick(plugin, program)))
            .filter(|e| !e.2.is_empty())
            .collect()
    }

    /// The calls a log line names for the probes this scene's host tries.
    pub fn logged_calls(&self) -> Vec<&'static str> {
        let tried: Vec<&str> = self.escapes().into_iter().map(|e| e.0).collect();
        LOGGED
            .iter()
            .filter(|(key, _, _)| tried.contains(key))
            .map(|&(_, plugin, program)| self.pick(plugin, program))
            .filter(|call| !call.is_empty())
            .collect()
    }

    fn pick(&self, plugin: &'static str, program: &'static str) -> &'static str {
        match self.runs {
            Runs::Plugin => plugin,
            Runs::Program => program,
        }
    }

    /// Every probe's reply by key from one connection to `name`, and the
    /// pid that answered (the worker, its request child, or the program).
    pub fn probe_all(&self, name: &str) -> (BTreeMap<&'static str, String>, String) {
        let sib = Probe::connect(&self.d.addr("sib")).cmd("PID");
        let tcp = self.tcp.local_addr().expect("addr").port().to_string();
        let udp = self.udp.local_addr().expect("addr").port().to_string();
        let escape = format!("/tmp/sockhost-escape-{}-{name}", std::process::id());
        let root = self.root.display().to_string();
        let mut p = Probe::connect(&self.d.addr(name));
        let pid = p.cmd("PID");
        let out = self
            .escapes()
            .into_iter()
            .map(|(key, command, _)| {
                let command = command
                    .replace("{root}", &root)
                    .replace("{escape}", &escape)
                    .replace("{tcp}", &tcp)
                    .replace("{udp}", &udp)
                    .replace("{sib}", &sib);
                (key, p.cmd(&command))
            })
            .collect();
        let _ = std::fs::remove_file(&escape);
        (out, pid)
    }

    /// Each probe got its `enforce` reply in `got` (from `name`).
    pub fn assert_enforced(&self, name: &str, got: &BTreeMap<&'static str, String>) {
        for (key, _, want) in self.escapes() {
            assert_eq!(got[key], want, "{name}: {key}\n{}", self.d.log());
        }
    }

    /// Within the deadline the log names, for `name`, every call the box
    /// stops of the probes tried, after `verdict` ([`BLOCKED`] or
    /// [`WOULD_BLOCK`]).
    pub fn assert_log_names_calls(&self, verdict: &str, name: &str) {
        let calls = self.logged_calls();
        assert!(!calls.is_empty(), "the table names calls");
        for what in calls {
            let needles = [verdict, what, &format!("in listener {name} pid ")];
            assert!(
                wait_until(DEADLINE, || has_line(&self.d.log(), &needles)),
                "{name}: the log names {what}:\n{}",
                self.d.log()
            );
        }
    }

    /// Nothing was written beside the config.
    pub fn assert_nothing_beside_the_config(&self) {
        assert!(
            !self.root.join("escape.txt").exists(),
            "nothing written beside the config"
        );
    }

    /// The listeners `names`, the sibling and the master all still serve,
    /// and the master's workers are the ones it started with.
    pub fn assert_still_serving(&self, names: &[&str]) {
        for n in names {
            assert_eq!(
                stream_cmd(&self.d.addr(n), "PING"),
                "PONG",
                "{n} still serves"
            );
        }
        assert_eq!(
            stream_cmd(&self.d.addr("sib"), "PING"),
            "PONG",
            "sib untouched"
        );
        assert!(!exited(self.d.pid()), "the master is running");
        assert_eq!(
            workers_of(self.d.pid()),
            self.workers,
            "no worker was replaced"
        );
    }
}

/// Every reply in `got` is a success (`how`: "with the sandbox off", ...).
pub fn assert_all_succeed(got: &BTreeMap<&'static str, String>, how: &str) {
    assert!(!got.is_empty(), "probes were tried");
    for (k, v) in got {
        assert!(v.starts_with("OK"), "{k} succeeds {how}: {v}");
    }
}

/// Compile the hostile fixture as a plugin into `dir`.
pub fn build_hostile_plugin(dir: &Path) -> PathBuf {
    let out = dir.join("libhostile.so");
    let fixture = workspace().join("plugins/fixtures/hostile-c");
    cc(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-Wall"])
            .arg(fixture.join("hostile.c")),
        &out,
    );
    out
}

/// The fixture's command loop as a program on fd 0.
const PROGRAM_MAIN: &str = r#"
#include "hostile.c"
int main(void) {
    sockhost_request req;
    memset(&req, 0, sizeof req);
    req.fd = 0;
    return hostile_handle(NULL, &req);
}
"#;

/// Compile the hostile fixture as a program reading commands on fd 0 and
/// answering on it, into `dir`.
pub fn build_hostile_program(dir: &Path) -> PathBuf {
    let main = dir.join("probe-main.c");
    std::fs::write(&main, PROGRAM_MAIN).expect("write probe-main.c");
    let out = dir.join("probe");
    cc(
        Command::new("cc")
            .args(["-O2", "-Wall", "-Wno-unused-function", "-I"])
            .arg(workspace().join("plugins/fixtures/hostile-c"))
            .arg(&main),
        &out,
    );
    out
}

/// Run `cc` (sources and flags given) with the SDK's headers, output `out`.
fn cc(cmd: &mut Command, out: &Path) {
    let st = cmd
        .arg("-I")
        .arg(workspace().join("handler-sdk/include"))
        .arg("-o")
        .arg(out)
        .status()
        .expect("run cc");
    assert!(st.success(), "cc builds {}: {st}", out.display());
}
