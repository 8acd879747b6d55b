//! Test harness: start the real `sockhostd` binary on a temp-dir config and
//! talk to it over real sockets.
//!
//! Promises: every daemon is started with a deadline and killed (with its
//! workers) when the handle drops, so no test leaves a process behind;
//! listeners may bind port 0, the harness learns the real addresses from
//! the daemon's `ready:` log line; temp folders are removed on drop.
//! Plugins come from the cargo target folder: run `cargo build --workspace`
//! before `cargo test` (the README's test command does both).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The deadline for anything a test waits on.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The sockhostd binary cargo built for these tests.
pub fn sockhostd() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sockhostd"))
}

/// The folder holding the workspace's build outputs (target/debug).
pub fn target_dir() -> PathBuf {
    sockhostd()
        .parent()
        .map(Path::to_path_buf)
        .expect("binary has a parent folder")
}

/// The workspace's root folder.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The cargo profile the tests were built with (target/PROFILE).
pub fn profile() -> String {
    target_dir()
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "debug".into())
}

/// Whether `tool` (a name on PATH, or an absolute path) is there. When it
/// is not, the calling test prints SKIPPED naming `package` and returns;
/// with the environment variable `required_by` set (CI sets them all, see
/// .ci/run) a missing tool is a failure instead.
pub fn tool_or_skip(tool: &str, package: &str, required_by: &str) -> bool {
    let found = if tool.starts_with('/') {
        Path::new(tool).exists()
    } else {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !found {
        assert!(
            std::env::var_os(required_by).is_none(),
            "{tool} is required ({required_by} is set): apt-get install {package}"
        );
        eprintln!("SKIPPED: {tool} is not installed (apt-get install {package})");
    }
    found
}

/// A plugin built by the workspace: `plugin("sockhost_echo")`.
pub fn plugin(stem: &str) -> PathBuf {
    let p = target_dir().join(format!("lib{stem}.so"));
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        p.display()
    );
    p
}

/// A temp folder removed on drop.
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("sockhost-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TestDir { path }
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write file");
        p
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One `[[listener]]` table. `extra` is appended verbatim (more keys, or a
/// `[listener.config]` table).
pub fn listener(
    name: &str,
    family: &str,
    ty: &str,
    address: &str,
    mixin: &str,
    handler: &Path,
    extra: &str,
) -> String {
    format!(
        "[[listener]]\nname = \"{name}\"\nfamily = \"{family}\"\ntype = \"{ty}\"\naddress = \"{address}\"\n\
         mixin = \"{mixin}\"\nhandler = \"{}\"\n{extra}\n",
        handler.display()
    )
}

pub mod clients;
pub mod daemon;
pub mod deb;
pub mod exec;
pub mod hostile;
pub mod journal;
pub mod life;
pub mod notify;
pub mod observe;
pub mod procfs;
pub mod proxy;
pub mod py;
pub mod scenarios;
pub mod sec;
pub mod upgrading;

pub use clients::*;
pub use daemon::*;
pub use procfs::*;
pub use scenarios::*;
