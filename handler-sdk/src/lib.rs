//! sockhost-sdk: write sockhost request handlers in safe Rust.
//!
//! A plugin implements [`Handler`] (Python's `BaseRequestHandler`: `setup`,
//! `handle`, `finish`, plus the optional server hooks `verify_request`,
//! `handle_timeout`, `service_actions`, `handle_error`) and exports it with
//! [`export_handler!`]. The SDK owns the ABI side: it fills the plugin table,
//! keeps the per-request state, turns every error and every panic into a
//! failure of that one request (never an abort of the worker), flushes
//! `wfile` at `finish`, and routes logs into the daemon.
//!
//! ```ignore
//! use sockhost_sdk::{export_handler, Handler, Listener, Request, Result};
//! use std::io::{BufRead, Write};
//! struct Upper;
//! impl Handler for Upper {
//!     fn create(_l: &Listener) -> Result<Self> { Ok(Upper) }
//!     fn handle(&self, req: &mut Request) -> Result<()> {
//!         let mut line = String::new();
//!         while req.rfile().read_line(&mut line)? > 0 {
//!             req.wfile().write_all(line.to_uppercase().as_bytes())?;
//!             line.clear();
//!         }
//!         Ok(())
//!     }
//! }
//! export_handler!(Upper);
//! ```
//!
//! The raw ABI lives in [`sys`], mirrored from `include/sockhost.h`.

pub mod sys;

mod entry;
mod log;
mod request;

pub use log::{depends_on, log, log_enabled, take_listener, Level};
pub use request::{Kind, ProxyTlvs, RFile, Request, Socket, WFile};

/// The error type handlers return; any error converts into it with `?`.
pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;
/// `Result` with the SDK's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Dispatch mode of the listener (the socketserver mixin).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mixin {
    /// One request at a time, inline in the worker.
    Sync,
    /// A thread per request: hooks run concurrently on one instance.
    Thread,
    /// A process per request: request hooks run in a forked child.
    Fork,
}

/// The listener an instance serves, as handed to [`Handler::create`].
#[derive(Clone, Debug)]
pub struct Listener {
    /// The listener's `name` from the config.
    pub name: String,
    /// The configured address, as written.
    pub address: String,
    /// `libc::AF_INET`, `AF_INET6` or `AF_UNIX`.
    pub family: i32,
    /// The socket type.
    pub kind: Kind,
    /// The dispatch mode.
    pub mixin: Mixin,
    /// `[listener.config]`, as-is (empty when absent).
    pub config: toml::Table,
    /// The folder of the config file that declares the listener: the base
    /// for relative paths in `config` (empty from a host older than 1.1).
    pub config_dir: std::path::PathBuf,
    /// The listening socket, borrowed (never close it); `None` under
    /// `sockhostd --check` or from a host older than 1.1.
    pub listen_fd: Option<std::os::fd::RawFd>,
    /// The write end of the worker's log relay (ABI 1.2): each line written
    /// to it becomes a log record with the listener and the writer's pid.
    /// Borrowed (never close it); `None` under `--check` or from an older host.
    pub log_fd: Option<std::os::fd::RawFd>,
    /// The listener's `max_packet_size` (0 from a host older than 1.2).
    pub max_packet_size: usize,
}

/// Who is asking, as [`Handler::verify_request`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct Client<'a> {
    /// The client address as text (see [`Request::client`]).
    pub address: &'a str,
    /// Stream or datagram.
    pub kind: Kind,
    /// Datagram payload; empty for streams.
    pub data: &'a [u8],
    /// The client address as the raw `struct sockaddr` bytes.
    pub addr: &'a [u8],
    /// The socket's address family (`libc::AF_*`).
    pub family: i32,
}

/// A request handler: one instance per listener, shared by every request.
///
/// In thread mode the hooks of different requests run concurrently on the
/// same instance, hence `Sync`. In fork mode request hooks run in a child
/// process, so changes they make to `self` do not outlive the request.
pub trait Handler: Send + Sync + Sized + 'static {
    /// Build the instance for `listener`. An error stops the listener from
    /// starting (or rolls a reload back) and is logged with its message.
    fn create(listener: &Listener) -> Result<Self>;
    /// Prepare for one request. An error skips `handle` and `finish`.
    fn setup(&self, _req: &mut Request) -> Result<()> {
        Ok(())
    }
    /// Serve one request.
    fn handle(&self, req: &mut Request) -> Result<()>;
    /// Clean up after one request; runs whenever `setup` succeeded. The SDK
    /// flushes `wfile` after it.
    fn finish(&self, _req: &mut Request) -> Result<()> {
        Ok(())
    }
    /// Veto a client before dispatch; runs in the worker's main loop.
    fn verify_request(&self, _client: &Client) -> bool {
        true
    }
    /// Runs after the listener's `timeout` passed without a request.
    fn handle_timeout(&self) {}
    /// Runs on every turn of the serve loop.
    fn service_actions(&self) {}
    /// Runs when a request hook failed; the daemon has already logged
    /// `message`. The connection is still open.
    fn handle_error(&self, _req: &mut Request, _message: &str) {}

    /// `sockhost.h`'s `SOCKHOST_PLUGIN_*` bits for the plugin table's
    /// `flags` (e.g. `sys::SOCKHOST_PLUGIN_POLL_SERVICE_ACTIONS`).
    const FLAGS: u32 = 0;

    /// Set to `true` to have the three fork hooks below called (ABI 1.1);
    /// when `false` (the default) the SDK leaves them out of the table, so
    /// a fork costs no extra call.
    const FORK_HOOKS: bool = false;
    /// Fork mode: runs on the worker's only thread just before it forks a
    /// request child. Every call is followed by exactly one of the two
    /// below.
    fn before_fork(&self) {}
    /// Fork mode: runs in the worker right after the fork (or after a
    /// failed fork).
    fn after_fork_parent(&self) {}
    /// Fork mode: runs first thing in the request child, before `setup`.
    fn after_fork_child(&self) {}
}

/// Exports a [`Handler`] as a sockhost plugin: defines the version record
/// and the entry function. Use it once per plugin crate (`crate-type =
/// ["cdylib"]`). The plugin's name and version default to the crate's.
#[macro_export]
macro_rules! export_handler {
    ($ty:ty) => {
        $crate::export_handler!(
            $ty,
            name = env!("CARGO_PKG_NAME"),
            version = env!("CARGO_PKG_VERSION")
        );
    };
    ($ty:ty, name = $name:expr, version = $version:expr) => {
        /// The ABI version record the host checks before running any code.
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static sockhost_abi: $crate::sys::sockhost_abi_record =
            $crate::sys::sockhost_abi_record::CURRENT;

        /// The plugin's entry function.
        ///
        /// # Safety
        /// Called by the host only, with the pointers the ABI promises.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn sockhost_plugin_init(
            host: *const $crate::sys::sockhost_host,
            plugin: *mut $crate::sys::sockhost_plugin,
        ) -> i32 {
            // SAFETY: forwarded unchanged; the host guarantees both pointers.
            unsafe {
                $crate::__private::init::<$ty>(
                    host,
                    plugin,
                    concat!($name, "\0").as_ptr().cast(),
                    concat!($version, "\0").as_ptr().cast(),
                )
            }
        }
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::entry::init;
}
