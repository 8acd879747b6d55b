//! `[listener.sandbox]`: raw serde table to the validated [`Sandbox`].
//!
//! Owns the sandbox keys' rules: `mode` and `network` are one of a fixed
//! set (the error lists them), `read_only`/`read_write` entries are paths
//! relative to the config file's folder that must exist now (a typo would
//! otherwise only show up as a denial at run time), `exec` is a flag.
//! Promises: every path in the result is absolute; each error names the key
//! and where it is written. Never decides what the plugin's runtime needs:
//! that is worked out in the worker (`os::sandbox`).

use std::path::PathBuf;

use toml::Spanned;

use super::error::ConfigError;
use super::raw::RawSandbox;
use super::source::Source;

/// `mode`: how the sandbox applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SandboxMode {
    /// No sandbox at all (the default).
    #[default]
    Off,
    /// Block nothing, log what would be blocked.
    Log,
    /// Block and log.
    Enforce,
}

/// `network`: which new sockets the worker may open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// Any family.
    #[default]
    Any,
    /// Unix sockets only.
    None,
}

/// `[listener.sandbox]`, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sandbox {
    pub mode: SandboxMode,
    /// Absolute, existing paths readable besides the runtime's own.
    pub read_only: Vec<PathBuf>,
    /// Absolute, existing paths readable and writable.
    pub read_write: Vec<PathBuf>,
    pub network: Network,
    /// May the worker execute programs.
    pub exec: bool,
}

impl SandboxMode {
    pub const ALL: [SandboxMode; 3] = [SandboxMode::Enforce, SandboxMode::Log, SandboxMode::Off];
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::Off => "off",
            SandboxMode::Log => "log",
            SandboxMode::Enforce => "enforce",
        }
    }
}

impl Network {
    pub const ALL: [Network; 2] = [Network::None, Network::Any];
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Any => "any",
            Network::None => "none",
        }
    }
}

/// Validate `[listener.sandbox]` written in `src`.
pub(crate) fn build(src: &Source, raw: &RawSandbox) -> Result<Sandbox, ConfigError> {
    let mut out = Sandbox::default();
    if let Some(v) = &raw.mode {
        out.mode = choose(src, v, "listener.sandbox.mode", &SandboxMode::ALL, |m| {
            m.as_str()
        })?;
    }
    if let Some(v) = &raw.network {
        out.network = choose(src, v, "listener.sandbox.network", &Network::ALL, |n| {
            n.as_str()
        })?;
    }
    out.exec = raw.exec.as_ref().is_some_and(|v| *v.get_ref());
    if let Some(list) = &raw.read_only {
        out.read_only = paths(src, list.get_ref(), "listener.sandbox.read_only")?;
    }
    if let Some(list) = &raw.read_write {
        out.read_write = paths(src, list.get_ref(), "listener.sandbox.read_write")?;
    }
    Ok(out)
}

/// The exec plugin's whole job is to run a program: under `enforce` with
/// `exec = false` every request would fail at `execve`, so it is refused
/// here, naming the key (or the table when `exec` is left out).
pub(crate) fn exec_plugin_needs_exec(
    src: &Source,
    table: &Spanned<RawSandbox>,
    handler: &std::path::Path,
    sandbox: &Sandbox,
) -> Result<(), ConfigError> {
    let is_exec = handler.file_name().and_then(|n| n.to_str()) == Some("libsockhost_exec.so");
    if !is_exec || sandbox.mode != SandboxMode::Enforce || sandbox.exec {
        return Ok(());
    }
    let msg = "the exec plugin runs a program for each request: under mode = \"enforce\" \
               set exec = true (its command, and a script's interpreter, are then allowed)";
    Err(match &table.get_ref().exec {
        Some(v) => src.value_error(v, "listener.sandbox.exec", msg),
        None => src.value_error(table, "listener.sandbox.exec", msg),
    })
}

fn choose<T: Copy>(
    src: &Source,
    v: &Spanned<String>,
    key: &str,
    all: &[T],
    spell: impl Fn(T) -> &'static str,
) -> Result<T, ConfigError> {
    if let Some(found) = all.iter().find(|t| spell(**t) == v.get_ref()) {
        return Ok(*found);
    }
    let allowed: Vec<String> = all.iter().map(|t| format!("\"{}\"", spell(*t))).collect();
    let msg = format!(
        "unknown value \"{}\", expected one of {}",
        v.get_ref(),
        allowed.join(", ")
    );
    Err(src.value_error(v, key, msg))
}

/// Each entry resolved against the config file's folder; it must exist.
fn paths(src: &Source, list: &[Spanned<String>], key: &str) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let text = item.get_ref();
        if text.is_empty() {
            return Err(src.value_error(item, key, "the path is empty"));
        }
        let path = src.folder.join(text);
        if let Err(e) = std::fs::metadata(&path) {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist".to_owned()
            } else {
                format!("cannot be reached: {e}")
            };
            return Err(src.value_error(item, key, format!("{} {why}", path.display())));
        }
        out.push(path);
    }
    Ok(out)
}
