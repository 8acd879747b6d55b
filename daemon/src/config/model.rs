//! The validated configuration the daemon runs from.
//!
//! Owns the public types: [`Config`], [`DaemonConfig`], [`ListenerConfig`]
//! and the enumerations. Promises: a value of these types has passed every
//! check in this module's siblings (ranges, combinations, paths are
//! absolute, handlers exist); defaults are filled in. Never touches the disk
//! or sockets itself.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use super::error::Location;

/// The whole configuration: the main file plus its drop-ins.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The main config file (absolute).
    pub file: PathBuf,
    pub daemon: DaemonConfig,
    /// Listeners in file order: the main file first, then each drop-in.
    pub listeners: Vec<ListenerConfig>,
    /// Things that work but deserve a change, each starting with
    /// `file:line:column: key `KEY``; logged by whoever loads the config.
    pub warnings: Vec<String>,
}

/// `[listener.limits]`: setrlimit values (soft and hard alike) for the
/// worker and each request child or program. None: inherited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// RLIMIT_AS, bytes.
    pub memory: Option<u64>,
    /// RLIMIT_NOFILE.
    pub open_files: Option<u64>,
    /// RLIMIT_NPROC (every process of the user counts).
    pub processes: Option<u64>,
    /// RLIMIT_CPU, seconds of CPU per process.
    pub cpu_seconds: Option<u64>,
}

impl Limits {
    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// `[daemon]`, with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    /// Absolute; defaults to the main config file's folder.
    pub plugin_dir: PathBuf,
    /// The include patterns as written.
    pub include: Vec<String>,
    /// Default 10 s.
    pub shutdown_timeout: Duration,
    /// How long a new worker has to load its plugin and report ready
    /// (at start, on reload, on respawn). Default 30 s.
    pub start_timeout: Duration,
    pub user: Option<String>,
    pub group: Option<String>,
    /// Default true.
    pub strict_plugin_permissions: bool,
    /// Where `sockhostctl` reaches the master.
    pub control_socket: ControlSocket,
    /// Where Prometheus scrapes `GET /metrics` (absent: nowhere).
    pub metrics: Option<SocketAddr>,
}

/// `[daemon] control_socket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlSocket {
    /// `control_socket = ""`.
    Off,
    /// Not set: [`DEFAULT_CONTROL_SOCKET`], skipped with a warning when its
    /// folder is missing or not writable.
    Default(PathBuf),
    /// Set: an absolute path; failing to create it fails the start.
    At(PathBuf),
}

/// The control socket's path when `[daemon] control_socket` is not set.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/sockhost/control.sock";

impl ControlSocket {
    /// The path, unless turned off.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            ControlSocket::Off => None,
            ControlSocket::Default(p) | ControlSocket::At(p) => Some(p),
        }
    }
}

/// Address family of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Inet,
    Inet6,
    Unix,
}

/// Socket type of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockType {
    Stream,
    Dgram,
}

/// Dispatch mode of a listener (socketserver's mix-in classes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mixin {
    Sync,
    Thread,
    Fork,
}

/// Where a listener binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Inet(SocketAddr),
    /// An absolute filesystem path.
    Unix(PathBuf),
    /// A Linux abstract socket name, without the leading `@`.
    Abstract(String),
}

impl Family {
    /// Every value, in the order error messages list them.
    pub const ALL: [Family; 3] = [Family::Inet, Family::Inet6, Family::Unix];
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Inet6 => "inet6",
            Family::Unix => "unix",
        }
    }
    /// The `AF_*` constant the socket calls and the plugin ABI use.
    pub fn raw(self) -> i32 {
        match self {
            Family::Inet => libc::AF_INET,
            Family::Inet6 => libc::AF_INET6,
            Family::Unix => libc::AF_UNIX,
        }
    }
}

impl SockType {
    /// Every value, in the order error messages list them.
    pub const ALL: [SockType; 2] = [SockType::Stream, SockType::Dgram];
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            SockType::Stream => "stream",
            SockType::Dgram => "dgram",
        }
    }
    /// The `SOCK_*` constant the socket calls and the plugin ABI use.
    pub fn raw(self) -> i32 {
        match self {
            SockType::Stream => libc::SOCK_STREAM,
            SockType::Dgram => libc::SOCK_DGRAM,
        }
    }
}

impl Mixin {
    /// Every value, in the order error messages list them.
    pub const ALL: [Mixin; 3] = [Mixin::Sync, Mixin::Thread, Mixin::Fork];
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Mixin::Sync => "sync",
            Mixin::Thread => "thread",
            Mixin::Fork => "fork",
        }
    }
}

/// `cpu_affinity`: which CPUs a listener's workers run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CpuAffinity {
    /// `one` when the plugin asks for it in thread mode (its request
    /// threads take turns on one lock, as Python's on the GIL), else `all`.
    #[default]
    Auto,
    /// Each worker kept on one CPU of those the daemon may use, the
    /// listener's workers spread over them.
    One,
    /// Wherever the kernel places them, as the daemon itself.
    All,
}

impl CpuAffinity {
    /// Every value, in the order error messages list them.
    pub const ALL: [CpuAffinity; 3] = [CpuAffinity::Auto, CpuAffinity::One, CpuAffinity::All];
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            CpuAffinity::Auto => "auto",
            CpuAffinity::One => "one",
            CpuAffinity::All => "all",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for SockType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Mixin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Inet(addr) => write!(f, "{addr}"),
            Address::Unix(path) => write!(f, "{}", path.display()),
            Address::Abstract(name) => write!(f, "@{name}"),
        }
    }
}

/// One `[[listener]]`, validated, with defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerConfig {
    pub name: String,
    /// The listener's `[[listener]]` header (or inline table).
    pub defined_at: Location,
    pub family: Family,
    pub socktype: SockType,
    pub address: Address,
    /// The address as written in the file.
    pub address_text: String,
    pub mixin: Mixin,
    /// Absolute, resolved against `plugin_dir`; an existing regular file.
    pub handler: PathBuf,
    /// Where the `handler` value is written.
    pub handler_at: Location,
    pub request_queue_size: i32,
    pub allow_reuse_address: bool,
    pub allow_reuse_port: bool,
    pub timeout: Option<Duration>,
    pub max_packet_size: usize,
    pub max_children: usize,
    pub max_threads: usize,
    pub daemon_threads: bool,
    pub block_on_close: bool,
    pub connection_timeout: Option<Duration>,
    pub disable_nagle_algorithm: bool,
    pub workers: usize,
    /// `cpu_affinity` (resolved in the worker, which knows the plugin).
    pub cpu_affinity: CpuAffinity,
    pub allow: Vec<ipnet::IpNet>,
    pub deny: Vec<ipnet::IpNet>,
    pub allow_uids: Vec<u32>,
    pub allow_gids: Vec<u32>,
    pub max_connections_per_source: Option<usize>,
    pub rate_limit_per_source: Option<f64>,
    pub refuse_message: Option<String>,
    /// Every connection starts with a PROXY v1 or v2 header (stream only).
    pub proxy_protocol: bool,
    /// Peers allowed to send a PROXY header; empty: any peer.
    pub proxy_trusted: Vec<ipnet::IpNet>,
    /// How long a connection may take to send its whole PROXY header.
    pub proxy_header_timeout: Duration,
    /// One log line per finished request.
    pub access_log: bool,
    /// Unix path listeners: the socket file's permissions (`socket_mode`,
    /// older name `mode`).
    pub socket_mode: Option<u32>,
    /// The socket file's owner (`socket_user`, older name `owner`).
    pub socket_user: Option<String>,
    /// The socket file's group (`socket_group`; an old-style `group`
    /// on a unix listener sets it too, with a warning).
    pub socket_group: Option<String>,
    /// The account the worker, its request children and programs run as
    /// (absent: `[daemon] user`).
    pub user: Option<String>,
    /// Their group (absent: `user`'s primary group, else `[daemon] group`).
    pub group: Option<String>,
    /// Scheduling priority, -20..=19.
    pub nice: Option<i32>,
    /// File mode creation mask, at most 0o777.
    pub umask: Option<u32>,
    /// `[listener.limits]`.
    pub limits: Limits,
    /// `[listener.config]` as written (empty if absent).
    pub config: toml::Table,
    /// The same table as a TOML document ("" if empty).
    pub config_toml: String,
    /// `[listener.sandbox]` (default: off).
    pub sandbox: super::sandbox::Sandbox,
}

impl ListenerConfig {
    /// True when every setting is equal, so a reload may keep this
    /// listener's worker; only where things are written (`defined_at`,
    /// `handler_at`) is ignored. False means the worker must be restarted.
    pub fn same_settings(&self, other: &ListenerConfig) -> bool {
        let mut mine = self.clone();
        mine.defined_at = other.defined_at.clone();
        mine.handler_at = other.handler_at.clone();
        mine == *other
    }

    /// Whether `cpu_affinity` may keep this listener's workers on one CPU
    /// each: `one`, or `auto` for a thread-mode listener or a sync one
    /// with several workers (then only if the plugin asks, which only the
    /// worker knows); never `all`, never `auto` in fork mode.
    pub fn may_keep_on_one_cpu(&self) -> bool {
        match (self.cpu_affinity, self.mixin) {
            (CpuAffinity::One, _) => true,
            (CpuAffinity::Auto, Mixin::Thread) => true,
            (CpuAffinity::Auto, Mixin::Sync) => self.workers > 1,
            _ => false,
        }
    }

    /// True when the listening socket can be kept across a reload:
    /// same family, socket type and address.
    pub fn same_socket(&self, other: &ListenerConfig) -> bool {
        self.family == other.family
            && self.socktype == other.socktype
            && self.address == other.address
    }
}
