//! Why the daemon could not start: every variant maps to exit status 1 in
//! `main.rs`, and its message names the file, line and key, the plugin, or
//! the address that failed.

use crate::config::ConfigError;
use crate::os::transport::BindError;

/// Why the daemon could not start (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("{0}")]
    Worker(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
