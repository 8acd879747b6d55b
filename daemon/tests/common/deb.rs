//! The Debian package tests' tools (deb.rs, deb_python.rs): `make deb*`
//! from the binaries the tests run, reading a package (`dpkg-deb`), lintian
//! with the settings both packages are held to, and a scratch root for
//! `dpkg --root` whose maintainer scripts reach nothing of the running
//! system.

use super::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Whether `tool` is installed (else SKIPPED, or a failure under
/// SOCKHOST_REQUIRE_DEB=1).
pub fn tool(tool: &str, package: &str) -> bool {
    tool_or_skip(tool, package, "SOCKHOST_REQUIRE_DEB")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

pub fn arch() -> String {
    stdout(Command::new("dpkg").arg("--print-architecture"))
        .trim()
        .to_owned()
}

/// `make GOAL` (`deb-sockhost`, `deb-python` or `deb`, both) from the
/// test binaries into `debdir`, compressed with `compress` (dpkg-deb -Z);
/// returns each package GOAL builds, by name.
pub fn make_debs(goal: &str, debdir: &Path, version: &str, compress: &str) -> Vec<PathBuf> {
    let said = stdout(
        Command::new("make")
            .current_dir(workspace())
            .args(["--no-print-directory", goal, "NOBUILD=1"])
            .arg(format!("PROFILE={}", profile()))
            .arg(format!("OUT={}", target_dir().display()))
            .arg(format!("DEBDIR={}", debdir.display()))
            .arg(format!("VERSION={version}"))
            .arg(format!("DEB_COMPRESS={compress}")),
    );
    let packages: &[&str] = match goal {
        "deb-sockhost" => &["sockhost"],
        "deb-python" => &["sockhost-python"],
        _ => &["sockhost", "sockhost-python"],
    };
    packages
        .iter()
        .map(|p| {
            let deb = debdir.join(format!("{p}_{version}-1_{}.deb", arch()));
            assert!(
                deb.is_file(),
                "no {} after make {goal}:\n{said}",
                deb.display()
            );
            deb
        })
        .collect()
}

/// The sockhost package alone (`make deb-sockhost`).
pub fn make_deb(debdir: &Path, version: &str, compress: &str) -> PathBuf {
    make_debs("deb-sockhost", debdir, version, compress).remove(0)
}

/// `dpkg-deb -f DEB FIELD`.
pub fn field(deb: &Path, name: &str) -> String {
    stdout(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))
        .trim()
        .to_owned()
}

/// lintian as both packages are held to it: no error (`--fail-on error`,
/// every tag shown); returns what it said.
pub fn lintian_finds_no_error(deb: &Path) -> String {
    let out = Command::new("lintian")
        .args(["--fail-on", "error", "--no-tag-display-limit"])
        .arg(deb)
        .stdin(Stdio::null())
        .output()
        .expect("run lintian");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("lintian {}:\n{said}", deb.display());
    assert!(
        out.status.success() && !said.lines().any(|l| l.starts_with("E: ")),
        "lintian found errors:\n{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    said
}

/// `dpkg-deb -c`: each path (without the leading `.`) with its mode
/// string and owner.
pub fn contents(deb: &Path) -> BTreeMap<String, (String, String)> {
    stdout(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f[5].trim_start_matches('.').trim_end_matches('/');
            (path.to_owned(), (f[0].to_owned(), f[1].to_owned()))
        })
        .collect()
}

pub fn gunzip(path: &Path) -> String {
    stdout(Command::new("gzip").arg("-dc").arg(path))
}

/// A scratch root for `dpkg --root`, and stubs for every tool that would
/// reach the running system, each recording its calls: with DPKG_ROOT set
/// the maintainer scripts must call none of them.
pub struct Scratch {
    pub root: PathBuf,
    stubs: PathBuf,
    calls: PathBuf,
}

impl Scratch {
    pub fn new(dir: &TestDir) -> Scratch {
        let root = dir.join("root");
        let admin = root.join("var/lib/dpkg");
        for sub in ["info", "updates", "triggers"] {
            std::fs::create_dir_all(admin.join(sub)).expect("mkdir admindir");
        }
        for file in ["status", "available"] {
            std::fs::write(admin.join(file), "").expect("admindir file");
        }
        let stubs = dir.join("stubs");
        std::fs::create_dir_all(&stubs).expect("mkdir stubs");
        let calls = dir.join("calls");
        for name in [
            "systemctl",
            "deb-systemd-invoke",
            "sockhostctl",
            "adduser",
            "policy-rc.d",
            "invoke-rc.d",
        ] {
            let stub = stubs.join(name);
            std::fs::write(
                &stub,
                format!(
                    "#!/bin/sh\necho \"{name} $*\" >>'{}'\nexit 1\n",
                    calls.display()
                ),
            )
            .expect("write stub");
            run(Command::new("chmod").arg("0755").arg(&stub));
        }
        Scratch { root, stubs, calls }
    }

    /// dpkg on the scratch root; the scripts run on this machine, chrootless.
    pub fn dpkg(&self, args: &[&str]) -> String {
        let path = format!(
            "{}:{}",
            self.stubs.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = run(Command::new("dpkg")
            .arg(format!("--root={}", self.root.display()))
            .args(["--force-script-chrootless", "--force-depends"])
            .args(args)
            .env("PATH", path));
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let calls = std::fs::read_to_string(&self.calls).unwrap_or_default();
        assert!(
            calls.is_empty(),
            "with DPKG_ROOT set the scripts reached the running system:\n{calls}"
        );
        said
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    pub fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    /// `Status Version` of the sockhost package, as dpkg-query reports it.
    pub fn status(&self) -> String {
        self.status_of("sockhost")
    }

    /// `Status Version` of `package`.
    pub fn status_of(&self, package: &str) -> String {
        stdout(
            Command::new("dpkg-query")
                .arg(format!(
                    "--admindir={}",
                    self.path("/var/lib/dpkg").display()
                ))
                .args(["-W", "-f", "${Status} ${Version}", package]),
        )
    }
}

/// Whether a passwd- or group-style file has an entry for `name`.
pub fn has_entry(text: &str, name: &str) -> bool {
    text.lines().any(|l| l.split(':').next() == Some(name))
}
