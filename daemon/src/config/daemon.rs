//! The `[daemon]` table: raw serde struct to [`DaemonConfig`].
//!
//! Owns the daemon-wide keys and their defaults. Promises: `plugin_dir` comes
//! back absolute (relative to the main file's folder, which is also the
//! default) and is not a file; the user and group exist; `control_socket`
//! is absolute (relative to that folder) and fits a unix socket address;
//! `metrics` is a numeric socket address. Never expands
//! includes (see `include`).

use std::net::SocketAddr;
use std::time::Duration;

use toml::Spanned;

use super::address::UNIX_PATH_MAX;
use super::error::ConfigError;
use super::model::DaemonConfig;
use super::model::{ControlSocket, DEFAULT_CONTROL_SOCKET};
use super::raw::RawDaemon;
use super::source::Source;
use super::values::{self as v, Account};

/// The default `shutdown_timeout`.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// The default `start_timeout`.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Validate `[daemon]` of the main file `src` (absent: all defaults).
pub fn build(src: &Source, raw: Option<&Spanned<RawDaemon>>) -> Result<DaemonConfig, ConfigError> {
    let Some(raw) = raw.map(Spanned::get_ref) else {
        return Ok(defaults(src));
    };
    let mut daemon = defaults(src);
    if let Some(dir) = &raw.plugin_dir {
        if dir.get_ref().is_empty() {
            return Err(src.value_error(dir, "daemon.plugin_dir", "plugin_dir is empty"));
        }
        daemon.plugin_dir = src.folder.join(dir.get_ref());
        if daemon.plugin_dir.exists() && !daemon.plugin_dir.is_dir() {
            let msg = format!("{} is not a folder", daemon.plugin_dir.display());
            return Err(src.value_error(dir, "daemon.plugin_dir", msg));
        }
    }
    if let Some(include) = &raw.include {
        daemon.include = include
            .get_ref()
            .iter()
            .map(|p| p.get_ref().clone())
            .collect();
    }
    if let Some(t) = &raw.shutdown_timeout {
        daemon.shutdown_timeout = v::seconds(src, t, "daemon.shutdown_timeout", true)?;
    }
    if let Some(t) = &raw.start_timeout {
        daemon.start_timeout = v::seconds(src, t, "daemon.start_timeout", false)?;
    }
    daemon.user = v::opt_account(src, &raw.user, "daemon.user", Account::User)?;
    daemon.group = v::opt_account(src, &raw.group, "daemon.group", Account::Group)?;
    daemon.strict_plugin_permissions = v::flag(&raw.strict_plugin_permissions, true);
    if let Some(path) = &raw.control_socket {
        daemon.control_socket = control_socket(src, path)?;
    }
    if let Some(addr) = &raw.metrics {
        daemon.metrics = Some(metrics(src, addr)?);
    }
    Ok(daemon)
}

/// `control_socket`: "" is off; a path is relative to the config's folder.
fn control_socket(src: &Source, text: &Spanned<String>) -> Result<ControlSocket, ConfigError> {
    let key = "daemon.control_socket";
    if text.get_ref().is_empty() {
        return Ok(ControlSocket::Off);
    }
    let path = src.folder.join(text.get_ref());
    let len = path.as_os_str().len();
    if len > UNIX_PATH_MAX {
        let msg = format!(
            "{} is {len} bytes, longer than the limit of {UNIX_PATH_MAX} bytes for a unix socket path",
            path.display()
        );
        return Err(src.value_error(text, key, msg));
    }
    if path.is_dir() {
        let msg = format!("{} is a folder: expected a socket path", path.display());
        return Err(src.value_error(text, key, msg));
    }
    Ok(ControlSocket::At(path))
}

/// `metrics`: "HOST:PORT" with a numeric IPv4 or bracketed IPv6 address.
fn metrics(src: &Source, text: &Spanned<String>) -> Result<SocketAddr, ConfigError> {
    text.get_ref().parse::<SocketAddr>().map_err(|_| {
        let msg = format!(
            "\"{}\" is not an address: expected \"HOST:PORT\" with a numeric address, such as \"127.0.0.1:9464\" or \"[::1]:9464\"",
            text.get_ref()
        );
        src.value_error(text, "daemon.metrics", msg)
    })
}

fn defaults(src: &Source) -> DaemonConfig {
    DaemonConfig {
        plugin_dir: src.folder.clone(),
        include: Vec::new(),
        shutdown_timeout: SHUTDOWN_TIMEOUT,
        start_timeout: START_TIMEOUT,
        user: None,
        group: None,
        strict_plugin_permissions: true,
        control_socket: ControlSocket::Default(DEFAULT_CONTROL_SOCKET.into()),
        metrics: None,
    }
}
