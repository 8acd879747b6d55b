//! Listener addresses: text in the config file to [`Address`].
//!
//! Owns the address forms: inet `A.B.C.D:PORT` (or `localhost:PORT`), inet6
//! `[ADDR]:PORT`, unix a path or `@name`. Promises: unix paths come back
//! absolute (relative ones joined to the defining file's folder) and short
//! enough for `sun_path`; a form that does not match the family is refused
//! with the form that was expected. Never resolves host names or touches the
//! filesystem.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::model::{Address, Family};

/// Longest unix socket path or abstract name: `sun_path` holds 108 bytes,
/// one of which is the path's NUL (or the abstract name's leading NUL).
pub const UNIX_PATH_MAX: usize = 107;

const INET_FORM: &str = "\"A.B.C.D:PORT\" (or \"localhost:PORT\")";
const INET6_FORM: &str = "\"[ADDR]:PORT\", e.g. \"[::1]:7000\"";
const UNIX_FORM: &str = "a socket file path or \"@name\" for an abstract socket";

/// Parse `text` as an address of `family`; `folder` anchors relative unix paths.
pub fn parse_address(family: Family, text: &str, folder: &Path) -> Result<Address, String> {
    match family {
        Family::Inet => parse_inet(text).map(Address::Inet),
        Family::Inet6 => parse_inet6(text).map(Address::Inet),
        Family::Unix => parse_unix(text, folder),
    }
}

fn parse_inet(text: &str) -> Result<SocketAddr, String> {
    let wrong_form = || format!("family \"inet\" expects {INET_FORM}, got \"{text}\"");
    if text.starts_with('[') {
        return Err(format!("{}; for IPv6 use family = \"inet6\"", wrong_form()));
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(wrong_form)?;
    let ip = match host {
        "localhost" => Ipv4Addr::LOCALHOST,
        _ if host.parse::<Ipv6Addr>().is_ok() => {
            return Err(format!("{}; for IPv6 use family = \"inet6\"", wrong_form()));
        }
        _ => host.parse::<Ipv4Addr>().map_err(|_| bad_host(host))?,
    };
    Ok(SocketAddr::new(IpAddr::V4(ip), parse_port(port)?))
}

fn bad_host(host: &str) -> String {
    if host.is_empty() {
        return format!("missing host: expected {INET_FORM} (0.0.0.0 for every interface)");
    }
    format!(
        "\"{host}\" is not an IPv4 address; host names other than \"localhost\" are not resolved"
    )
}

fn parse_inet6(text: &str) -> Result<SocketAddr, String> {
    let wrong_form = || format!("family \"inet6\" expects {INET6_FORM}, got \"{text}\"");
    let rest = text.strip_prefix('[').ok_or_else(wrong_form)?;
    let (host, port) = rest.split_once("]:").ok_or_else(wrong_form)?;
    let ip: Ipv6Addr = host
        .parse()
        .map_err(|_| format!("\"{host}\" is not an IPv6 address (expected {INET6_FORM})"))?;
    Ok(SocketAddr::new(IpAddr::V6(ip), parse_port(port)?))
}

fn parse_port(port: &str) -> Result<u16, String> {
    let out_of_range = || format!("port \"{port}\" is not a number in 0..=65535");
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(out_of_range());
    }
    port.parse().map_err(|_| out_of_range())
}

fn parse_unix(text: &str, folder: &Path) -> Result<Address, String> {
    if text.parse::<SocketAddr>().is_ok() {
        return Err(format!(
            "family \"unix\" expects {UNIX_FORM}, got the inet address \"{text}\""
        ));
    }
    if text.contains('\0') {
        return Err("a unix socket address cannot contain a NUL byte".to_owned());
    }
    if let Some(name) = text.strip_prefix('@') {
        return parse_abstract(name);
    }
    if text.is_empty() {
        return Err(format!(
            "empty address: family \"unix\" expects {UNIX_FORM}"
        ));
    }
    let path = folder.join(text);
    let len = path.as_os_str().as_bytes().len();
    if len > UNIX_PATH_MAX {
        return Err(format!(
            "unix socket path {} is {len} bytes, longer than the limit of {UNIX_PATH_MAX} bytes",
            path.display()
        ));
    }
    Ok(Address::Unix(path))
}

fn parse_abstract(name: &str) -> Result<Address, String> {
    if name.is_empty() {
        return Err("abstract socket name after \"@\" is empty".to_owned());
    }
    if name.len() > UNIX_PATH_MAX - 1 {
        return Err(format!(
            "abstract socket name is {} bytes, longer than the limit of {} bytes",
            name.len(),
            UNIX_PATH_MAX - 1
        ));
    }
    Ok(Address::Abstract(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn ok(family: Family, text: &str) -> Address {
        match parse_address(family, text, Path::new("/etc/sockhost")) {
            Ok(addr) => addr,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    fn err(family: Family, text: &str) -> String {
        match parse_address(family, text, Path::new("/etc/sockhost")) {
            Ok(addr) => panic!("{text} parsed as {addr:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn inet_forms() {
        assert_eq!(
            ok(Family::Inet, "127.0.0.1:7000").to_string(),
            "127.0.0.1:7000"
        );
        assert_eq!(ok(Family::Inet, "localhost:0").to_string(), "127.0.0.1:0");
        assert!(err(Family::Inet, "example.com:80").contains("not resolved"));
        assert!(err(Family::Inet, "[::1]:80").contains("inet6"));
        assert!(err(Family::Inet, "::1:80").contains("inet6"));
        assert!(err(Family::Inet, "1.2.3.4:65536").contains("0..=65535"));
        assert!(err(Family::Inet, "1.2.3.4").contains("A.B.C.D:PORT"));
        assert!(err(Family::Inet, ":80").contains("missing host"));
    }

    #[test]
    fn inet6_forms() {
        assert_eq!(ok(Family::Inet6, "[::1]:7000").to_string(), "[::1]:7000");
        assert!(err(Family::Inet6, "127.0.0.1:80").contains("[ADDR]:PORT"));
        assert!(err(Family::Inet6, "[::1]").contains("[ADDR]:PORT"));
        assert!(err(Family::Inet6, "[zz::1]:80").contains("not an IPv6 address"));
        assert!(err(Family::Inet6, "[::1]:-1").contains("0..=65535"));
    }

    #[test]
    fn unix_forms() {
        assert_eq!(
            ok(Family::Unix, "run/s.sock"),
            Address::Unix(PathBuf::from("/etc/sockhost/run/s.sock"))
        );
        assert_eq!(
            ok(Family::Unix, "/run/s.sock"),
            Address::Unix(PathBuf::from("/run/s.sock"))
        );
        assert_eq!(
            ok(Family::Unix, "@sockhost"),
            Address::Abstract("sockhost".into())
        );
        assert!(err(Family::Unix, "127.0.0.1:80").contains("inet address"));
        assert!(err(Family::Unix, "@").contains("empty"));
        let long = format!("/{}", "x".repeat(UNIX_PATH_MAX));
        assert!(err(Family::Unix, &long).contains("limit of 107 bytes"));
        let longest = format!("/{}", "x".repeat(UNIX_PATH_MAX - 1));
        assert_eq!(
            ok(Family::Unix, &longest),
            Address::Unix(PathBuf::from(longest))
        );
    }
}
