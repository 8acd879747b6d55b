//! The Debian maintainer scripts' branches for a running system, which the
//! scratch-root install in `deb.rs` (DPKG_ROOT set) never takes: starting
//! the service on first install, and on upgrade `sockhostctl upgrade` with
//! `deb-systemd-invoke restart` as the fallback; and sockhost-python's
//! postinst, which on upgrade runs `sockhostctl reload`.
//!
//! Each case runs a script from packaging/debian with PATH holding only
//! stubs that record their calls (so nothing on this machine is touched,
//! and a command the stubs lack fails the case), in a private mount
//! namespace whose /run has a /run/systemd/system, so systemd looks like
//! the running init. Where no such namespace may be made, the cases run
//! without one on a machine running systemd, and are SKIPPED otherwise.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// What `sh -c` runs around a script: a fresh /run, systemd's marker in it,
/// then the script with PATH set to the stubs only.
const SANDBOX: &str = "mount -t tmpfs none /run && mkdir -p /run/systemd/system && \
                       stubs=$1 && shift && PATH=$stubs exec /bin/sh \"$@\"";

/// How to make systemd look like the running init: in a namespace of our
/// own, as this machine already is, or not at all.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Systemd {
    Namespace,
    Host,
    Unavailable,
}

fn systemd() -> Systemd {
    static HOW: OnceLock<Systemd> = OnceLock::new();
    *HOW.get_or_init(|| {
        let ns = Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
            .arg("mount -t tmpfs none /run")
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success());
        // The stubs must stay visible under the fresh /run.
        if ns && !std::env::temp_dir().starts_with("/run") {
            Systemd::Namespace
        } else if Path::new("/run/systemd/system").is_dir() {
            Systemd::Host
        } else {
            eprintln!("SKIPPED: no mount namespace allowed, and systemd is not running here");
            Systemd::Unavailable
        }
    })
}

/// One run of a maintainer script against stubs.
struct Case {
    dir: TestDir,
    stubs: PathBuf,
    dpkg_root: Option<String>,
}

struct Ran {
    calls: Vec<String>,
    stderr: String,
    out: Output,
}

impl Ran {
    fn called(&self, line: &str) -> bool {
        self.calls.iter().any(|c| c == line)
    }

    fn called_any(&self, tool: &str) -> bool {
        self.calls.iter().any(|c| c.split(' ').next() == Some(tool))
    }
}

impl Case {
    /// Stubs that exit 0, except those given another status; policy-rc.d
    /// is present only when listed.
    fn new(exits: &[(&str, i32)], without: &[&str]) -> Case {
        let dir = TestDir::new("debscript");
        let stubs = dir.join("stubs");
        std::fs::create_dir_all(&stubs).expect("mkdir");
        let calls = dir.join("calls");
        let names = [
            "systemctl",
            "deb-systemd-helper",
            "deb-systemd-invoke",
            "systemd-sysusers",
            "sockhostctl",
            "adduser",
            "getent",
            "policy-rc.d",
        ];
        for name in names {
            let listed = exits.iter().find(|(n, _)| *n == name);
            if without.contains(&name) || (name == "policy-rc.d" && listed.is_none()) {
                continue;
            }
            let code = listed.map_or(0, |(_, c)| *c);
            let body = format!(
                "#!/bin/sh\necho \"{name} $*\" >>'{}'\n{}exit {code}\n",
                calls.display(),
                if code == 0 {
                    String::new()
                } else {
                    format!("echo '{name} stub failed with {code}' >&2\n")
                }
            );
            let stub = stubs.join(name);
            std::fs::write(&stub, body).expect("write stub");
            let out = Command::new("/bin/chmod")
                .arg("0755")
                .arg(&stub)
                .output()
                .expect("chmod");
            assert!(out.status.success());
        }
        Case {
            dir,
            stubs,
            dpkg_root: None,
        }
    }

    fn dpkg_root(mut self, root: &str) -> Case {
        self.dpkg_root = Some(root.to_owned());
        self
    }

    fn run(&self, script: &str, args: &[&str]) -> Ran {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../packaging/debian")
            .join(script);
        let mut cmd = match systemd() {
            Systemd::Namespace => {
                let mut c = Command::new("unshare");
                c.args(["--user", "--map-root-user", "--mount", "sh", "-c", SANDBOX]);
                c.arg("sandbox").arg(&self.stubs).arg(&script);
                c
            }
            _ => {
                let mut c = Command::new("/bin/sh");
                c.arg(&script).env("PATH", &self.stubs);
                c
            }
        };
        cmd.args(args).env_remove("DPKG_ROOT").stdin(Stdio::null());
        if let Some(root) = &self.dpkg_root {
            cmd.env("DPKG_ROOT", root);
        }
        let out = cmd.output().expect("run the script");
        let calls = std::fs::read_to_string(self.dir.join("calls")).unwrap_or_default();
        Ran {
            calls: calls.lines().map(str::to_owned).collect(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            out,
        }
    }
}

/// Run `script args` with the stubs; None when SKIPPED.
fn ran(case: Case, script: &str, args: &[&str]) -> Option<Ran> {
    if systemd() == Systemd::Unavailable {
        return None;
    }
    let r = case.run(script, args);
    assert!(
        r.out.status.success(),
        "{script} {args:?} failed ({}):\n{}\ncalls: {:#?}",
        r.out.status,
        r.stderr,
        r.calls
    );
    Some(r)
}

#[test]
fn a_first_install_creates_the_user_enables_and_starts_the_service() {
    let Some(r) = ran(Case::new(&[], &[]), "postinst", &["configure"]) else {
        return;
    };
    let want = [
        "systemd-sysusers sockhost.conf",
        "deb-systemd-helper --quiet was-enabled sockhostd.service",
        "deb-systemd-helper enable sockhostd.service",
        "deb-systemd-helper update-state sockhostd.socket",
        "systemctl --system daemon-reload",
        "deb-systemd-invoke start sockhostd.service",
    ];
    assert_eq!(r.calls, want);
}

#[test]
fn without_systemd_sysusers_adduser_makes_a_missing_user() {
    let case = Case::new(&[("getent", 2)], &["systemd-sysusers"]);
    let Some(r) = ran(case, "postinst", &["configure"]) else {
        return;
    };
    assert!(r.called("getent passwd sockhost"), "{:?}", r.calls);
    assert!(
        r.called(
            "adduser --system --group --quiet --home /nonexistent --no-create-home \
             --shell /usr/sbin/nologin sockhost"
        ),
        "{:?}",
        r.calls
    );
}

#[test]
fn an_operator_disabled_service_stays_disabled_on_upgrade() {
    let case = Case::new(&[("deb-systemd-helper", 1)], &[]);
    let Some(r) = ran(case, "postinst", &["configure", "0.0.9-1"]) else {
        return;
    };
    assert!(r.called("deb-systemd-helper update-state sockhostd.service"));
    assert!(!r.called("deb-systemd-helper enable sockhostd.service"));
}

#[test]
fn an_upgrade_hands_the_sockets_to_the_new_binary_in_place() {
    let Some(r) = ran(Case::new(&[], &[]), "postinst", &["configure", "0.0.9-1"]) else {
        return;
    };
    assert!(
        r.called("systemctl --system daemon-reload"),
        "{:?}",
        r.calls
    );
    assert!(r.called("sockhostctl upgrade"), "{:?}", r.calls);
    assert!(
        !r.called_any("deb-systemd-invoke"),
        "no restart: {:?}",
        r.calls
    );
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn a_failed_in_place_upgrade_keeps_the_running_daemon_and_says_why() {
    let case = Case::new(&[("sockhostctl", 1)], &[]);
    let Some(r) = ran(case, "postinst", &["configure", "0.0.9-1"]) else {
        return;
    };
    assert!(r.called("sockhostctl upgrade"), "{:?}", r.calls);
    assert!(
        !r.called_any("deb-systemd-invoke"),
        "no restart stops the daemon that still serves: {:?}",
        r.calls
    );
    assert!(
        r.stderr.contains("the running one keeps serving")
            && r.stderr.contains("sockhostctl stub failed with 1"),
        "{}",
        r.stderr
    );
}

#[test]
fn with_no_daemon_to_reach_or_no_sockhostctl_an_upgrade_restarts_quietly() {
    for case in [
        Case::new(&[("sockhostctl", 3)], &[]),
        Case::new(&[], &["sockhostctl"]),
    ] {
        let Some(r) = ran(case, "postinst", &["configure", "0.0.9-1"]) else {
            return;
        };
        assert!(r.called("deb-systemd-invoke restart sockhostd.service"));
        assert!(r.stderr.is_empty(), "{}", r.stderr);
    }
}

#[test]
fn policy_rc_d_forbidding_restarts_also_forbids_the_in_place_upgrade() {
    let case = Case::new(&[("policy-rc.d", 101)], &[]);
    let Some(r) = ran(case, "postinst", &["configure", "0.0.9-1"]) else {
        return;
    };
    assert!(r.called("policy-rc.d sockhostd.service restart"));
    assert!(!r.called_any("sockhostctl"), "{:?}", r.calls);
    // deb-systemd-invoke asks policy-rc.d itself, and will not restart.
    assert!(r.called("deb-systemd-invoke restart sockhostd.service"));
}

#[test]
fn with_dpkg_root_set_nothing_touches_the_running_system() {
    let root = "/nonexistent/sockhost-root";
    let case = Case::new(&[], &[]).dpkg_root(root);
    let Some(r) = ran(case, "postinst", &["configure", "0.0.9-1"]) else {
        return;
    };
    assert!(r.called(&format!("systemd-sysusers --root={root} sockhost.conf")));
    for tool in [
        "systemctl",
        "deb-systemd-invoke",
        "sockhostctl",
        "policy-rc.d",
    ] {
        assert!(!r.called_any(tool), "{tool}: {:?}", r.calls);
    }
    let case = Case::new(&[], &[]).dpkg_root(root);
    let Some(r) = ran(case, "prerm", &["remove"]) else {
        return;
    };
    assert!(r.calls.is_empty(), "{:?}", r.calls);
}

#[test]
fn remove_stops_the_units_upgrade_leaves_them_running_purge_forgets_them() {
    let Some(r) = ran(Case::new(&[], &[]), "prerm", &["remove"]) else {
        return;
    };
    assert_eq!(
        r.calls,
        ["deb-systemd-invoke stop sockhostd.service sockhostd.socket"]
    );
    let Some(r) = ran(Case::new(&[], &[]), "prerm", &["upgrade", "0.2.0-1"]) else {
        return;
    };
    assert!(r.calls.is_empty(), "{:?}", r.calls);
    let Some(r) = ran(Case::new(&[], &[]), "postrm", &["remove"]) else {
        return;
    };
    assert_eq!(r.calls, ["systemctl --system daemon-reload"]);
    let Some(r) = ran(Case::new(&[], &[]), "postrm", &["purge"]) else {
        return;
    };
    assert_eq!(
        r.calls,
        ["deb-systemd-helper purge sockhostd.service sockhostd.socket"]
    );
}

const PY_POSTINST: &str = "sockhost-python.postinst";

#[test]
fn a_sockhost_python_upgrade_reloads_the_daemon_onto_the_new_plugin() {
    let Some(r) = ran(Case::new(&[], &[]), PY_POSTINST, &["configure", "0.0.9-1"]) else {
        return;
    };
    assert_eq!(r.calls, ["sockhostctl reload"]);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    // A first install: no listener can use the plugin yet.
    let Some(r) = ran(Case::new(&[], &[]), PY_POSTINST, &["configure"]) else {
        return;
    };
    assert!(r.calls.is_empty(), "{:?}", r.calls);
}

#[test]
fn a_sockhost_python_reload_that_rolls_back_says_why_and_the_package_still_configures() {
    let case = Case::new(&[("sockhostctl", 1)], &[]);
    let Some(r) = ran(case, PY_POSTINST, &["configure", "0.0.9-1"]) else {
        return;
    };
    assert!(
        r.stderr.contains("the daemon keeps serving as before")
            && r.stderr.contains("sockhostctl stub failed with 1"),
        "{}",
        r.stderr
    );
    // Exit 3, no daemon to reach, or no sockhostctl: nothing to say.
    for case in [
        Case::new(&[("sockhostctl", 3)], &[]),
        Case::new(&[], &["sockhostctl"]),
    ] {
        let Some(r) = ran(case, PY_POSTINST, &["configure", "0.0.9-1"]) else {
            return;
        };
        assert!(r.stderr.is_empty(), "{}", r.stderr);
    }
}

#[test]
fn a_sockhost_python_upgrade_reloads_nothing_under_dpkg_root_or_a_forbidding_policy_rc_d() {
    let case = Case::new(&[], &[]).dpkg_root("/nonexistent/sockhost-root");
    let Some(r) = ran(case, PY_POSTINST, &["configure", "0.0.9-1"]) else {
        return;
    };
    assert!(r.calls.is_empty(), "{:?}", r.calls);
    let case = Case::new(&[("policy-rc.d", 101)], &[]);
    let Some(r) = ran(case, PY_POSTINST, &["configure", "0.0.9-1"]) else {
        return;
    };
    assert_eq!(r.calls, ["policy-rc.d sockhostd.service reload"]);
}
