//! Checks for single values: ranges, durations, modes, CIDRs, ids, accounts.
//!
//! Owns the rules that need one value and its span. Promises: each failure is
//! a [`ConfigError`] at the value, naming the key and stating what is allowed
//! (the range, the form). Never looks at other keys.

use std::time::Duration;

use ipnet::IpNet;
use toml::Spanned;

use super::error::ConfigError;
use super::raw::{Int, Number, OctalText};
use super::source::Source;

/// An integer in `lo..=hi`.
pub fn int_in(
    src: &Source,
    v: &Spanned<Int>,
    key: &str,
    lo: i64,
    hi: i64,
) -> Result<i64, ConfigError> {
    let n = v.get_ref().0;
    if (lo..=hi).contains(&n) {
        return Ok(n);
    }
    Err(src.value_error(v, key, format!("{n} is out of range: allowed {lo}..={hi}")))
}

/// An optional integer in `lo..=hi`, or `default` when absent.
pub fn opt_int_in(
    src: &Source,
    v: &Option<Spanned<Int>>,
    key: &str,
    (lo, hi): (i64, i64),
    default: i64,
) -> Result<i64, ConfigError> {
    v.as_ref()
        .map_or(Ok(default), |v| int_in(src, v, key, lo, hi))
}

/// A finite number of seconds, greater than 0 (or also 0 when `zero_ok`).
pub fn seconds(
    src: &Source,
    v: &Spanned<Number>,
    key: &str,
    zero_ok: bool,
) -> Result<Duration, ConfigError> {
    let secs = v.get_ref().0;
    let bound = if zero_ok {
        "0 or more"
    } else {
        "greater than 0"
    };
    let fits = secs.is_finite() && (secs > 0.0 || (zero_ok && secs == 0.0));
    let duration = fits
        .then(|| Duration::try_from_secs_f64(secs).ok())
        .flatten();
    duration.ok_or_else(|| {
        src.value_error(
            v,
            key,
            format!("{secs} is not allowed: expected a finite number of seconds, {bound}"),
        )
    })
}

/// Optional seconds, greater than 0.
pub fn opt_seconds(
    src: &Source,
    v: &Option<Spanned<Number>>,
    key: &str,
) -> Result<Option<Duration>, ConfigError> {
    v.as_ref().map(|v| seconds(src, v, key, false)).transpose()
}

/// A finite number greater than 0.
pub fn positive(src: &Source, v: &Spanned<Number>, key: &str) -> Result<f64, ConfigError> {
    let n = v.get_ref().0;
    if n.is_finite() && n > 0.0 {
        return Ok(n);
    }
    Err(src.value_error(
        v,
        key,
        format!("{n} is not allowed: expected a finite number greater than 0"),
    ))
}

/// File permission bits written in octal, such as "0660", at most 0o7777.
pub fn mode(src: &Source, v: &Spanned<OctalText>, key: &str) -> Result<u32, ConfigError> {
    let text = v.get_ref().0.as_str();
    let digits_ok =
        !text.is_empty() && text.len() <= 6 && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(text, 8) {
        Ok(mode) if digits_ok && mode <= 0o7777 => Ok(mode),
        _ => Err(src.value_error(v, key, format!("\"{text}\" is not allowed: expected octal permissions from \"0000\" to \"7777\", such as \"0660\""))),
    }
}

/// CIDR networks; a bare address means a single host (/32 or /128).
pub fn nets(
    src: &Source,
    list: &Spanned<Vec<Spanned<String>>>,
    key: &str,
) -> Result<Vec<IpNet>, ConfigError> {
    list.get_ref()
        .iter()
        .map(|entry| net(src, entry, key))
        .collect()
}

fn net(src: &Source, entry: &Spanned<String>, key: &str) -> Result<IpNet, ConfigError> {
    let text = entry.get_ref().trim();
    let parsed = match text.parse::<IpNet>() {
        Ok(net) => Ok(net.trunc()),
        Err(_) => text.parse::<std::net::IpAddr>().map(IpNet::from),
    };
    parsed.map_err(|_| {
        let msg = format!("\"{text}\" is not an IP network: expected CIDR such as \"10.0.0.0/8\", \"::1/128\" or a bare address");
        src.value_error(entry, key, msg)
    })
}

/// User or group ids (0..=4294967294; 4294967295 means "no id").
pub fn ids(
    src: &Source,
    list: &Spanned<Vec<Spanned<Int>>>,
    key: &str,
) -> Result<Vec<u32>, ConfigError> {
    let max = i64::from(u32::MAX - 1);
    list.get_ref()
        .iter()
        .map(|id| int_in(src, id, key, 0, max).map(|n| n as u32))
        .collect()
}

/// Which kind of account a name refers to.
#[derive(Clone, Copy, Debug)]
pub enum Account {
    User,
    Group,
}

/// A user or group that exists on this system (a name or a numeric id).
pub fn account(
    src: &Source,
    v: &Spanned<String>,
    key: &str,
    kind: Account,
) -> Result<String, ConfigError> {
    let name = v.get_ref().as_str();
    let what = match kind {
        Account::User => "user",
        Account::Group => "group",
    };
    if name.is_empty() {
        return Err(src.value_error(v, key, format!("{what} name is empty")));
    }
    if name.bytes().all(|b| b.is_ascii_digit()) && name.parse::<u32>().is_ok() {
        return Ok(name.to_owned());
    }
    let found = match kind {
        Account::User => nix::unistd::User::from_name(name).map(|u| u.is_some()),
        Account::Group => nix::unistd::Group::from_name(name).map(|g| g.is_some()),
    };
    match found {
        Ok(true) => Ok(name.to_owned()),
        Ok(false) => Err(src.value_error(v, key, format!("no such {what}: \"{name}\""))),
        Err(e) => Err(src.value_error(v, key, format!("cannot look up {what} \"{name}\": {e}"))),
    }
}

/// An optional account, checked when present.
pub fn opt_account(
    src: &Source,
    v: &Option<Spanned<String>>,
    key: &str,
    kind: Account,
) -> Result<Option<String>, ConfigError> {
    v.as_ref().map(|v| account(src, v, key, kind)).transpose()
}

/// An optional boolean, or `default`.
pub fn flag(v: &Option<Spanned<bool>>, default: bool) -> bool {
    v.as_ref().map_or(default, |v| *v.get_ref())
}
