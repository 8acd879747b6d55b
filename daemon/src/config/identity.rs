//! A listener's identity and box keys: `user`, `group`, `nice`, `umask`,
//! `[listener.limits]`, and the unix socket file keys `socket_mode`,
//! `socket_user`, `socket_group` (older names `mode`, `owner`, and `group`
//! on a unix listener).
//!
//! Owns the meaning of those keys. Promises: accounts exist (the error says
//! user or group and which name), `nice` is in -20..=19, `umask` is octal
//! up to "0777", sizes take K/M/G in powers of 1024, every limit is in
//! range, and a key and its older name are never both set. A unix path
//! listener that sets `group` with the older `owner`/`mode` and no
//! `socket_group` is an old config: its `group` keeps setting the socket
//! file's group (so the clients that could connect still can) and also
//! becomes the worker's group, with a warning saying so. Never looks up
//! anything but the accounts named.

use toml::Spanned;

use super::error::ConfigError;
use super::model::{Address, Limits, ListenerConfig};
use super::raw::{Int, OctalText, RawLimits, RawListener, Size};
use super::source::Source;
use super::values::{self as v, Account};

/// The largest `open_files`: the kernel's default `fs.nr_open`.
const MAX_OPEN_FILES: i64 = 1 << 20;
/// The largest `processes`: the kernel's `pid_max` ceiling.
const MAX_PROCESSES: i64 = 4_194_304;

/// Fill the identity, limits and socket file settings of `c`; returns the
/// warnings for an old-style config.
pub fn build(
    src: &Source,
    raw: &RawListener,
    c: &mut ListenerConfig,
) -> Result<Vec<String>, ConfigError> {
    c.user = v::opt_account(src, &raw.user, "listener.user", Account::User)?;
    c.group = v::opt_account(src, &raw.group, "listener.group", Account::Group)?;
    if let Some(n) = &raw.nice {
        c.nice = Some(v::int_in(src, n, "listener.nice", -20, 19)? as i32);
    }
    if let Some(mask) = &raw.umask {
        c.umask = Some(umask(src, mask)?);
    }
    if let Some(limits) = &raw.limits {
        c.limits = self::limits(src, limits.get_ref())?;
    }
    socket_file(src, raw, c)
}

/// `umask`: an octal string up to "0777".
fn umask(src: &Source, v: &Spanned<OctalText>) -> Result<u32, ConfigError> {
    let text = v.get_ref().0.as_str();
    let digits_ok =
        !text.is_empty() && text.len() <= 4 && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(text, 8) {
        Ok(mask) if digits_ok && mask <= 0o777 => Ok(mask),
        _ => Err(src.value_error(
            v,
            "listener.umask",
            format!("\"{text}\" is not allowed: expected an octal mask from \"0000\" to \"0777\", such as \"0027\""),
        )),
    }
}

fn limits(src: &Source, raw: &RawLimits) -> Result<Limits, ConfigError> {
    let count = |v: &Option<Spanned<Int>>, key: &str, hi: i64| {
        v.as_ref()
            .map(|n| v::int_in(src, n, key, 1, hi).map(|n| n as u64))
            .transpose()
    };
    Ok(Limits {
        memory: raw.memory.as_ref().map(|m| memory(src, m)).transpose()?,
        open_files: count(
            &raw.open_files,
            "listener.limits.open_files",
            MAX_OPEN_FILES,
        )?,
        processes: count(&raw.processes, "listener.limits.processes", MAX_PROCESSES)?,
        cpu_seconds: count(
            &raw.cpu_seconds,
            "listener.limits.cpu_seconds",
            i64::from(u32::MAX),
        )?,
    })
}

/// `memory`: bytes, or a number with a K, M or G suffix (powers of 1024);
/// at least 1M, since less cannot even map the daemon.
fn memory(src: &Source, v: &Spanned<Size>) -> Result<u64, ConfigError> {
    let key = "listener.limits.memory";
    let bytes = match v.get_ref() {
        Size::Bytes(n) => u64::try_from(*n).ok(),
        Size::Text(text) => parse_size(text),
    };
    let shown = match v.get_ref() {
        Size::Bytes(n) => n.to_string(),
        Size::Text(t) => format!("\"{t}\""),
    };
    match bytes {
        Some(n) if n >= 1 << 20 => Ok(n),
        Some(_) => Err(src.value_error(
            v,
            key,
            format!("{shown} is too small: at least \"1M\""),
        )),
        None => Err(src.value_error(
            v,
            key,
            format!("{shown} is not a size: expected a whole number with an optional K, M or G suffix (powers of 1024), such as \"512M\""),
        )),
    }
}

/// "512M" → 536870912; None for anything else, or on overflow.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The socket file keys, old names included.
fn socket_file(
    src: &Source,
    raw: &RawListener,
    c: &mut ListenerConfig,
) -> Result<Vec<String>, ConfigError> {
    let mode = one_of(src, &raw.socket_mode, &raw.mode, ("socket_mode", "mode"))?;
    c.socket_mode = mode.map(|m| v::mode(src, m.0, m.1)).transpose()?;
    let user = one_of(src, &raw.socket_user, &raw.owner, ("socket_user", "owner"))?;
    c.socket_user = match user {
        Some((u, key)) => Some(v::account(src, u, key, Account::User)?),
        None => None,
    };
    c.socket_group = v::opt_account(
        src,
        &raw.socket_group,
        "listener.socket_group",
        Account::Group,
    )?;
    let old_style = raw.mode.is_some() || raw.owner.is_some();
    let unix_file = matches!(c.address, Address::Unix(_));
    match (
        &raw.group,
        unix_file && old_style && raw.socket_group.is_none(),
    ) {
        (Some(group), true) => {
            c.socket_group = c.group.clone();
            let at = src.key_location(&group.span());
            Ok(vec![format!(
                "{at}: key `listener.group`: `group` now names the group the worker runs as; with the older `owner`/`mode` it also still sets the socket file's group as before: write `socket_group = \"{}\"` for the socket file (and drop `group` unless the worker should run as that group)",
                group.get_ref()
            )])
        }
        _ => Ok(Vec::new()),
    }
}

/// The value of `new` or of its older name `old`, with the key to name in
/// errors; both set is an error.
fn one_of<'r, T>(
    src: &Source,
    new: &'r Option<Spanned<T>>,
    old: &'r Option<Spanned<T>>,
    (new_key, old_key): (&str, &str),
) -> Result<Option<(&'r Spanned<T>, &'static str)>, ConfigError> {
    let key = |k: &str| -> &'static str {
        match k {
            "socket_mode" => "listener.socket_mode",
            "mode" => "listener.mode",
            "socket_user" => "listener.socket_user",
            _ => "listener.owner",
        }
    };
    match (new, old) {
        (Some(_), Some(o)) => Err(src.key_error(
            &o.span(),
            key(old_key),
            format!("`{old_key}` is the older name of `{new_key}`: set only `{new_key}`"),
        )),
        (Some(n), None) => Ok(Some((n, key(new_key)))),
        (None, Some(o)) => Ok(Some((o, key(old_key)))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_use_powers_of_1024() {
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("4096"), Some(4096));
        for bad in [
            "",
            "M",
            "1.5G",
            "-1M",
            "12T",
            "1 M x",
            "99999999999999999999G",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
