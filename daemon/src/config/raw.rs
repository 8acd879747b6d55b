//! The serde mirror of the TOML files, one field per key.
//!
//! Owns the shape of the files: which tables and keys exist and the TOML type
//! of each. Promises: unknown keys are rejected (serde lists the allowed
//! ones), every value keeps its span for later errors, and a type mismatch is
//! reported in TOML's words. Never checks ranges, paths or combinations: that
//! is the validated model's job.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;
use toml::Spanned;

type Opt<T> = Option<Spanned<T>>;

/// The main config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawMain {
    pub daemon: Opt<RawDaemon>,
    #[serde(default)]
    pub listener: Vec<Spanned<RawListener>>,
}

/// A drop-in file: `daemon` is only accepted here to report it clearly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawDropIn {
    pub daemon: Opt<IgnoredAny>,
    #[serde(default)]
    pub listener: Vec<Spanned<RawListener>>,
}

/// `[daemon]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawDaemon {
    pub plugin_dir: Opt<String>,
    pub include: Opt<Vec<Spanned<String>>>,
    pub shutdown_timeout: Opt<Number>,
    pub start_timeout: Opt<Number>,
    pub user: Opt<String>,
    pub group: Opt<String>,
    pub strict_plugin_permissions: Opt<bool>,
    pub control_socket: Opt<String>,
    pub metrics: Opt<String>,
}

/// One `[[listener]]`. Required keys are optional here so that a missing
/// one is reported at the listener's own table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawListener {
    pub name: Opt<String>,
    pub family: Opt<String>,
    #[serde(rename = "type")]
    pub socktype: Opt<String>,
    pub address: Opt<String>,
    pub mixin: Opt<String>,
    pub handler: Opt<String>,
    pub request_queue_size: Opt<Int>,
    pub allow_reuse_address: Opt<bool>,
    pub allow_reuse_port: Opt<bool>,
    pub timeout: Opt<Number>,
    pub max_packet_size: Opt<Int>,
    pub max_children: Opt<Int>,
    pub max_threads: Opt<Int>,
    pub daemon_threads: Opt<bool>,
    pub block_on_close: Opt<bool>,
    pub connection_timeout: Opt<Number>,
    pub disable_nagle_algorithm: Opt<bool>,
    pub workers: Opt<Int>,
    pub cpu_affinity: Opt<String>,
    pub allow: Opt<Vec<Spanned<String>>>,
    pub deny: Opt<Vec<Spanned<String>>>,
    pub allow_uids: Opt<Vec<Spanned<Int>>>,
    pub allow_gids: Opt<Vec<Spanned<Int>>>,
    pub max_connections_per_source: Opt<Int>,
    pub rate_limit_per_source: Opt<Number>,
    pub refuse_message: Opt<String>,
    pub proxy_protocol: Opt<bool>,
    pub proxy_trusted: Opt<Vec<Spanned<String>>>,
    pub proxy_header_timeout: Opt<Number>,
    pub access_log: Opt<bool>,
    pub socket_mode: Opt<OctalText>,
    pub socket_user: Opt<String>,
    pub socket_group: Opt<String>,
    /// Older name of `socket_mode`.
    pub mode: Opt<OctalText>,
    /// Older name of `socket_user`.
    pub owner: Opt<String>,
    /// The worker's group (a unix listener's socket file group until
    /// `socket_group` existed: see `identity`).
    pub group: Opt<String>,
    pub user: Opt<String>,
    pub nice: Opt<Int>,
    pub umask: Opt<OctalText>,
    pub limits: Opt<RawLimits>,
    pub config: Opt<toml::Table>,
    pub sandbox: Opt<RawSandbox>,
}

/// `[listener.sandbox]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawSandbox {
    pub mode: Opt<String>,
    pub read_only: Opt<Vec<Spanned<String>>>,
    pub read_write: Opt<Vec<Spanned<String>>>,
    pub network: Opt<String>,
    pub exec: Opt<bool>,
}

/// `[listener.limits]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawLimits {
    pub memory: Opt<Size>,
    pub open_files: Opt<Int>,
    pub processes: Opt<Int>,
    pub cpu_seconds: Opt<Int>,
}

/// A size: an integer of bytes or a string such as "512M".
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Size {
    Bytes(i64),
    Text(String),
}

/// A TOML integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Int(pub i64);

/// A TOML integer or float, as f64.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Number(pub f64);

/// A string meant to hold octal digits, such as "0660".
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OctalText(pub String);

struct IntVisitor;

impl Visitor<'_> for IntVisitor {
    type Value = Int;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Int, E> {
        Ok(Int(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Int, E> {
        i64::try_from(v)
            .map(Int)
            .map_err(|_| E::custom(format!("integer {v} is too large")))
    }
    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Int, E> {
        i64::try_from(v)
            .map(Int)
            .map_err(|_| E::custom(format!("integer {v} is out of the 64-bit range")))
    }
    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Int, E> {
        i64::try_from(v)
            .map(Int)
            .map_err(|_| E::custom(format!("integer {v} is out of the 64-bit range")))
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_i64(IntVisitor)
    }
}

struct NumberVisitor;

impl Visitor<'_> for NumberVisitor {
    type Value = Number;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number (integer or float)")
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Number, E> {
        Ok(Number(v as f64))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Number, E> {
        Ok(Number(v as f64))
    }
    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Number, E> {
        Ok(Number(v as f64))
    }
    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Number, E> {
        Ok(Number(v as f64))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Number, E> {
        Ok(Number(v))
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_f64(NumberVisitor)
    }
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = Size;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size such as \"512M\" (K, M, G: powers of 1024) or an integer of bytes")
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Size, E> {
        Ok(Size::Bytes(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Size, E> {
        i64::try_from(v)
            .map(Size::Bytes)
            .map_err(|_| E::custom(format!("integer {v} is too large")))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Size, E> {
        Ok(Size::Text(v.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SizeVisitor)
    }
}

struct OctalVisitor;

impl Visitor<'_> for OctalVisitor {
    type Value = OctalText;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an octal string such as \"0660\"")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OctalText, E> {
        Ok(OctalText(v.to_owned()))
    }
}

impl<'de> Deserialize<'de> for OctalText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(OctalVisitor)
    }
}
