//! One `[[listener]]` table: raw serde struct to [`ListenerConfig`].
//!
//! Owns the per-listener rules: required keys, the name's form, the
//! enumerations, the address for its family (a unix path already on disk
//! must be a socket), ranges and defaults, and the handler file (the
//! identity, limits and socket file keys are `identity`'s). Promises:
//! the result is complete and every path in it is absolute; each error
//! names the key and where it is written. Never checks one listener against
//! another (see `unique`).

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::address::parse_address;
use super::applies;
use super::error::{ConfigError, Location};
use super::identity;
use super::model::{Address, CpuAffinity, Family, ListenerConfig, Mixin, SockType};
use super::raw::RawListener;
use super::source::Source;
use super::values as v;

/// A validated listener plus the locations needed for cross-listener checks.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub config: ListenerConfig,
    pub name_at: Location,
    pub address_at: Location,
    /// Warnings about this listener (see `identity`).
    pub warnings: Vec<String>,
}

/// The required keys of one listener, present and spanned.
struct Required<'a> {
    name: &'a Spanned<String>,
    family: &'a Spanned<String>,
    socktype: &'a Spanned<String>,
    address: &'a Spanned<String>,
    mixin: &'a Spanned<String>,
    handler: &'a Spanned<String>,
}

const MAX_NAME: usize = 64;

/// `proxy_header_timeout` when absent: the 3 s the PROXY protocol's
/// specification suggests for receiving the whole header.
pub const DEFAULT_PROXY_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Validate one listener table defined in `src`.
pub fn build(
    src: &Source,
    table: &Spanned<RawListener>,
    plugin_dir: &Path,
) -> Result<Parsed, ConfigError> {
    let raw = table.get_ref();
    let req = required(src, table)?;
    check_name(src, req.name)?;
    let kind = (
        choose::<Family>(src, req.family)?,
        choose::<SockType>(src, req.socktype)?,
        choose::<Mixin>(src, req.mixin)?,
    );
    let address = parse_address(kind.0, req.address.get_ref(), &src.folder)
        .and_then(|address| not_a_socket_file(&address).map(|()| address))
        .map_err(|msg| src.value_error(req.address, "listener.address", msg))?;
    applies::check(src, raw, kind, &address)?;
    let mut config = defaults(src, table, &req, kind, address);
    settings(src, raw, &mut config)?;
    access(src, raw, &mut config)?;
    let warnings = identity::build(src, raw, &mut config)?;
    config.handler = handler(src, req.handler, plugin_dir)?;
    plugin_config(src, raw, &mut config)?;
    if let Some(table) = &raw.sandbox {
        config.sandbox = super::sandbox::build(src, table.get_ref())?;
        super::sandbox::exec_plugin_needs_exec(src, table, &config.handler, &config.sandbox)?;
    }
    Ok(Parsed {
        config,
        name_at: src.location(&req.name.span()),
        address_at: src.location(&req.address.span()),
        warnings,
    })
}

fn required<'a>(
    src: &Source,
    table: &'a Spanned<RawListener>,
) -> Result<Required<'a>, ConfigError> {
    let raw = table.get_ref();
    let need = |v: &'a Option<Spanned<String>>, key: &str| {
        v.as_ref().ok_or_else(|| {
            let msg = format!("missing required key `{key}` in this [[listener]] table");
            ConfigError::at(
                &src.location(&table.span()),
                Some(&format!("listener.{key}")),
                msg,
            )
        })
    };
    Ok(Required {
        name: need(&raw.name, "name")?,
        family: need(&raw.family, "family")?,
        socktype: need(&raw.socktype, "type")?,
        address: need(&raw.address, "address")?,
        mixin: need(&raw.mixin, "mixin")?,
        handler: need(&raw.handler, "handler")?,
    })
}

fn check_name(src: &Source, name: &Spanned<String>) -> Result<(), ConfigError> {
    let text = name.get_ref();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !text.is_empty() && text.chars().count() <= MAX_NAME && text.chars().all(allowed) {
        return Ok(());
    }
    let msg = format!(
        "invalid listener name \"{text}\": expected 1 to {MAX_NAME} characters of A-Z, a-z, 0-9, '.', '_', '-'"
    );
    Err(src.value_error(name, "listener.name", msg))
}

/// A unix path that exists must be a socket (a stale one is replaced at
/// bind); anything else there (a folder, a file) would fail the bind.
fn not_a_socket_file(address: &Address) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let Address::Unix(path) = address else {
        return Ok(());
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => Ok(()),
        Ok(meta) => {
            let what = if meta.is_dir() {
                "a folder"
            } else {
                "not a socket"
            };
            Err(format!(
                "{} exists and is {what}: a unix listener needs a free path or a socket file",
                path.display()
            ))
        }
        Err(_) => Ok(()),
    }
}

/// An enumeration spelled as a string in the config file.
trait Choice: Copy + 'static {
    const KEY: &'static str;
    const ALL: &'static [Self];
    fn spelling(self) -> &'static str;
}

impl Choice for Family {
    const KEY: &'static str = "listener.family";
    const ALL: &'static [Self] = &Family::ALL;
    fn spelling(self) -> &'static str {
        self.as_str()
    }
}

impl Choice for SockType {
    const KEY: &'static str = "listener.type";
    const ALL: &'static [Self] = &SockType::ALL;
    fn spelling(self) -> &'static str {
        self.as_str()
    }
}

impl Choice for CpuAffinity {
    const KEY: &'static str = "listener.cpu_affinity";
    const ALL: &'static [Self] = &CpuAffinity::ALL;
    fn spelling(self) -> &'static str {
        self.as_str()
    }
}

impl Choice for Mixin {
    const KEY: &'static str = "listener.mixin";
    const ALL: &'static [Self] = &Mixin::ALL;
    fn spelling(self) -> &'static str {
        self.as_str()
    }
}

/// The value `v` names, or an error listing the allowed values.
fn choose<T: Choice>(src: &Source, v: &Spanned<String>) -> Result<T, ConfigError> {
    if let Some(found) = T::ALL.iter().find(|t| t.spelling() == v.get_ref()) {
        return Ok(*found);
    }
    let allowed: Vec<String> = T::ALL
        .iter()
        .map(|t| format!("\"{}\"", t.spelling()))
        .collect();
    let msg = format!(
        "unknown value \"{}\", expected one of {}",
        v.get_ref(),
        allowed.join(", ")
    );
    Err(src.value_error(v, T::KEY, msg))
}

fn defaults(
    src: &Source,
    table: &Spanned<RawListener>,
    req: &Required<'_>,
    kind: (Family, SockType, Mixin),
    address: Address,
) -> ListenerConfig {
    ListenerConfig {
        name: req.name.get_ref().clone(),
        defined_at: src.location(&table.span()),
        family: kind.0,
        socktype: kind.1,
        address,
        address_text: req.address.get_ref().clone(),
        mixin: kind.2,
        handler: PathBuf::new(),
        handler_at: src.location(&req.handler.span()),
        request_queue_size: 128,
        allow_reuse_address: true,
        allow_reuse_port: false,
        timeout: None,
        max_packet_size: 8192,
        max_children: 40,
        max_threads: 1024,
        daemon_threads: false,
        block_on_close: true,
        connection_timeout: None,
        disable_nagle_algorithm: false,
        workers: 1,
        cpu_affinity: CpuAffinity::Auto,
        allow: Vec::new(),
        deny: Vec::new(),
        allow_uids: Vec::new(),
        allow_gids: Vec::new(),
        max_connections_per_source: None,
        rate_limit_per_source: None,
        refuse_message: None,
        proxy_protocol: false,
        proxy_trusted: Vec::new(),
        proxy_header_timeout: DEFAULT_PROXY_HEADER_TIMEOUT,
        access_log: false,
        socket_mode: None,
        socket_user: None,
        socket_group: None,
        user: None,
        group: None,
        nice: None,
        umask: None,
        limits: Default::default(),
        config: toml::Table::new(),
        config_toml: String::new(),
        sandbox: super::sandbox::Sandbox::default(),
    }
}

/// Numbers, durations and flags.
fn settings(src: &Source, raw: &RawListener, c: &mut ListenerConfig) -> Result<(), ConfigError> {
    c.request_queue_size = v::opt_int_in(
        src,
        &raw.request_queue_size,
        "listener.request_queue_size",
        (1, 65535),
        128,
    )? as i32;
    c.allow_reuse_address = v::flag(&raw.allow_reuse_address, true);
    c.allow_reuse_port = v::flag(&raw.allow_reuse_port, false);
    c.timeout = v::opt_seconds(src, &raw.timeout, "listener.timeout")?;
    c.max_packet_size = v::opt_int_in(
        src,
        &raw.max_packet_size,
        "listener.max_packet_size",
        (1, packet_limit(c.family)),
        8192,
    )? as usize;
    c.max_children = v::opt_int_in(
        src,
        &raw.max_children,
        "listener.max_children",
        (1, 65536),
        40,
    )? as usize;
    c.max_threads = v::opt_int_in(
        src,
        &raw.max_threads,
        "listener.max_threads",
        (1, 65536),
        1024,
    )? as usize;
    c.daemon_threads = v::flag(&raw.daemon_threads, false);
    c.block_on_close = v::flag(&raw.block_on_close, true);
    c.connection_timeout =
        v::opt_seconds(src, &raw.connection_timeout, "listener.connection_timeout")?;
    c.disable_nagle_algorithm = v::flag(&raw.disable_nagle_algorithm, false);
    c.workers = v::opt_int_in(src, &raw.workers, "listener.workers", (1, 256), 1)? as usize;
    if let Some(affinity) = &raw.cpu_affinity {
        c.cpu_affinity = choose::<CpuAffinity>(src, affinity)?;
    }
    Ok(())
}

/// The largest datagram: a UDP payload (65507) for inet families, 1 MiB for unix.
fn packet_limit(family: Family) -> i64 {
    match family {
        Family::Unix => 1_048_576,
        Family::Inet | Family::Inet6 => 65_507,
    }
}

/// Access control and per-source limits.
fn access(src: &Source, raw: &RawListener, c: &mut ListenerConfig) -> Result<(), ConfigError> {
    if let Some(list) = &raw.allow {
        c.allow = v::nets(src, list, "listener.allow")?;
    }
    if let Some(list) = &raw.deny {
        c.deny = v::nets(src, list, "listener.deny")?;
    }
    if let Some(list) = &raw.allow_uids {
        c.allow_uids = v::ids(src, list, "listener.allow_uids")?;
    }
    if let Some(list) = &raw.allow_gids {
        c.allow_gids = v::ids(src, list, "listener.allow_gids")?;
    }
    if let Some(n) = &raw.max_connections_per_source {
        c.max_connections_per_source = Some(v::int_in(
            src,
            n,
            "listener.max_connections_per_source",
            1,
            i64::from(u32::MAX),
        )? as usize);
    }
    if let Some(rate) = &raw.rate_limit_per_source {
        c.rate_limit_per_source = Some(v::positive(src, rate, "listener.rate_limit_per_source")?);
    }
    c.refuse_message = raw.refuse_message.as_ref().map(|m| m.get_ref().clone());
    c.access_log = v::flag(&raw.access_log, false);
    proxy(src, raw, c)
}

/// The PROXY protocol keys (where they apply is `applies`' business).
fn proxy(src: &Source, raw: &RawListener, c: &mut ListenerConfig) -> Result<(), ConfigError> {
    c.proxy_protocol = v::flag(&raw.proxy_protocol, false);
    if let Some(list) = &raw.proxy_trusted {
        c.proxy_trusted = v::nets(src, list, "listener.proxy_trusted")?;
    }
    if let Some(t) = v::opt_seconds(
        src,
        &raw.proxy_header_timeout,
        "listener.proxy_header_timeout",
    )? {
        c.proxy_header_timeout = t;
    }
    Ok(())
}

/// The handler's absolute path; it must be an existing regular file.
fn handler(
    src: &Source,
    text: &Spanned<String>,
    plugin_dir: &Path,
) -> Result<PathBuf, ConfigError> {
    let fail = |msg: String| src.value_error(text, "listener.handler", msg);
    if text.get_ref().is_empty() {
        return Err(fail("handler path is empty".to_owned()));
    }
    let path = plugin_dir.join(text.get_ref());
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(meta) if meta.is_dir() => {
            Err(fail(format!("handler is a directory: {}", path.display())))
        }
        Ok(_) => Err(fail(format!(
            "handler is not a regular file: {}",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(fail(format!("handler not found: {}", path.display())))
        }
        Err(e) => Err(fail(format!(
            "cannot access handler {}: {e}",
            path.display()
        ))),
    }
}

/// `[listener.config]`, kept as-is and as TOML text for the plugin.
fn plugin_config(
    src: &Source,
    raw: &RawListener,
    c: &mut ListenerConfig,
) -> Result<(), ConfigError> {
    let Some(table) = &raw.config else {
        return Ok(());
    };
    c.config = table.get_ref().clone();
    if !c.config.is_empty() {
        c.config_toml = toml::to_string(&c.config).map_err(|e| {
            src.value_error(
                table,
                "listener.config",
                format!("cannot be written back as TOML: {e}"),
            )
        })?;
    }
    Ok(())
}
