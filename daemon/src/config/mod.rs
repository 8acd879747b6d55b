//! The sockhostd configuration: TOML files to a validated [`Config`].
//!
//! Owns reading the main file and its `[daemon] include` drop-ins, and every
//! rule a config must pass before the daemon acts on it. Promises: a
//! returned `Config` is complete (defaults filled, paths absolute, handlers
//! exist, names and addresses unique); any problem is one [`ConfigError`]
//! naming file, line, column and key. Never binds sockets, loads plugins or
//! changes anything on disk; the plugin permission check ([`check_plugin_permissions`])
//! is offered for the daemon to call, not run here.
//!
//! Two steps, as ripgrep does it: `raw` mirrors the TOML with serde, then
//! `daemon`, `listener`, `address`, `values`, `applies` and `unique` build
//! the model.

mod address;
mod applies;
mod daemon;
mod error;
mod identity;
mod include;
mod listener;
mod model;
mod perms;
mod raw;
mod sandbox;
mod source;
mod unique;
mod values;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use address::UNIX_PATH_MAX;
pub use error::ConfigError;
pub use model::*;
pub use perms::check_plugin_permissions;
pub use sandbox::{Network, Sandbox, SandboxMode};

use listener::Parsed;
use raw::{RawDropIn, RawMain};
use source::Source;

/// Read the main file and every `include` drop-in; validate everything.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = absolute(path)?;
    let text = read(&file)?;
    parse_main(&text, &file)
}

/// Parse one main config from text. `file` names it in errors; relative
/// paths resolve against `file`'s parent folder. Includes ARE read from disk.
pub fn parse_main(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let file = absolute(file)?;
    let (src, raw): (Source, RawMain) = Source::parse(text, &file)?;
    let daemon = daemon::build(&src, raw.daemon.as_ref())?;
    let mut listeners = listeners(&src, &raw.listener, &daemon.plugin_dir)?;
    let patterns = raw
        .daemon
        .as_ref()
        .and_then(|d| d.get_ref().include.as_ref());
    for dropin in include::expand(&src, patterns.map_or(&[][..], |p| p.get_ref()))? {
        listeners.extend(parse_dropin(&dropin, &daemon.plugin_dir)?);
    }
    unique::check(&listeners)?;
    let warnings = listeners
        .iter()
        .flat_map(|p| p.warnings.iter().cloned())
        .collect();
    let listeners = listeners.into_iter().map(|p| p.config).collect();
    Ok(Config {
        file,
        daemon,
        listeners,
        warnings,
    })
}

/// Read and validate one drop-in file: `[[listener]]` tables only.
fn parse_dropin(file: &Path, plugin_dir: &Path) -> Result<Vec<Parsed>, ConfigError> {
    let text = read(file)?;
    let (src, raw): (Source, RawDropIn) = Source::parse(&text, file)?;
    if let Some(table) = &raw.daemon {
        let msg = "a [daemon] table is only allowed in the main config file, not in a drop-in";
        return Err(src.key_error(&table.span(), "daemon", msg));
    }
    listeners(&src, &raw.listener, plugin_dir)
}

fn listeners(
    src: &Source,
    tables: &[toml::Spanned<raw::RawListener>],
    plugin_dir: &Path,
) -> Result<Vec<Parsed>, ConfigError> {
    tables
        .iter()
        .map(|table| listener::build(src, table, plugin_dir))
        .collect()
}

fn read(file: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(file)
        .map_err(|e| ConfigError::in_file(file, format!("cannot read config file: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        // Point at the first bad byte: everything before it is valid text.
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let text = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
        let at = error::Location::from_offset(file, text, valid);
        let byte = bytes.get(valid).copied().unwrap_or_default();
        ConfigError::at(
            &at,
            None,
            format!("invalid UTF-8 (byte {byte:#04x}): a config file must be UTF-8 text"),
        )
    })
}

fn absolute(file: &Path) -> Result<PathBuf, ConfigError> {
    std::path::absolute(file)
        .map_err(|e| ConfigError::in_file(file, format!("cannot make the path absolute: {e}")))
}
