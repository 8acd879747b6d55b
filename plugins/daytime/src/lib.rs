//! sockhost-daytime: the Daytime Protocol (RFC 867) as a sockhost plugin.
//!
//! Every request is answered with the current local time as one
//! human-readable line ending in "\r\n", e.g.
//! `Monday, November 23, 2026 04:47:39-UTC`. Stream: the line is written and
//! `handle` returns, so the daemon closes the connection; whatever the
//! client sent is ignored. Datagram: the line is the reply to any datagram,
//! whatever it holds.
//!
//! `[listener.config]` key `format` (optional, a string): a `strftime(3)`
//! format for the line, without the line end; default
//! `"%A, %B %d, %Y %H:%M:%S-%Z"`. It is checked in `create`: a value that is
//! not a string, holds a NUL byte, or yields an empty or overlong line is
//! refused with a message naming the key. Time zone and names follow the
//! daemon's `TZ` and `LC_TIME`; the daemon never calls setlocale, so names
//! are English. No other key is read. Nothing here allocates per request.

use sockhost_sdk::{export_handler, Handler, Kind, Listener, Request, Result};
use std::ffi::CString;
use std::io::Write;

/// The line of RFC 867's example, in local time.
const DEFAULT_FORMAT: &str = "%A, %B %d, %Y %H:%M:%S-%Z";

/// Longest line this plugin sends, "\r\n" included.
const MAX_LINE: usize = 512;

/// The daytime handler: the format it renders, checked in `create`.
pub struct Daytime {
    format: CString,
}

impl Handler for Daytime {
    fn create(listener: &Listener) -> Result<Self> {
        let format = match listener.config.get("format") {
            None => DEFAULT_FORMAT,
            Some(toml::Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(format!(
                    "[listener.config] key `format`: expected a string, found {}",
                    other.type_str()
                )
                .into())
            }
        };
        let format = CString::new(format).map_err(|_| {
            "[listener.config] key `format`: must not contain a NUL byte".to_string()
        })?;
        let daytime = Daytime { format };
        let mut buf = [0u8; MAX_LINE];
        if daytime.render(&mut buf).is_none() {
            return Err(format!(
                "[listener.config] key `format`: {:?} yields an empty line or one \
                 longer than {} bytes",
                daytime.format,
                MAX_LINE - 3
            )
            .into());
        }
        Ok(daytime)
    }

    fn handle(&self, req: &mut Request) -> Result<()> {
        let mut buf = [0u8; MAX_LINE];
        let line = self
            .render(&mut buf)
            .ok_or("the clock could not be read or formatted")?;
        match req.kind() {
            Kind::Stream => req.socket().write_all(line)?,
            Kind::Datagram => {
                req.reply(line)?;
            }
        }
        Ok(())
    }
}

impl Daytime {
    /// The current local time, formatted and ended with "\r\n", in `buf`;
    /// `None` when the clock or the format fails or the line does not fit.
    fn render<'b>(&self, buf: &'b mut [u8; MAX_LINE]) -> Option<&'b [u8]> {
        // SAFETY: `time` with a null pointer only returns the clock.
        let now = unsafe { libc::time(std::ptr::null_mut()) };
        if now == -1 {
            return None;
        }
        // SAFETY: `tm` is plain integers (and a pointer glibc fills in), for
        // which all zeroes is a valid value.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the call; localtime_r is the
        // thread-safe variant and keeps no pointer to either.
        if unsafe { libc::localtime_r(&now, &mut tm) }.is_null() {
            return None;
        }
        // Room for "\r\n" and strftime's NUL.
        let room = MAX_LINE - 2;
        // SAFETY: `buf` is writable for `room` bytes, the format is a
        // NUL-terminated string and `tm` was filled by localtime_r.
        let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), room, self.format.as_ptr(), &tm) };
        // 0 means the line did not fit (or is empty, which is no answer).
        if n == 0 {
            return None;
        }
        buf.get_mut(n..n + 2)?.copy_from_slice(b"\r\n");
        buf.get(..n + 2)
    }
}

export_handler!(Daytime);

#[cfg(test)]
mod tests {
    use super::*;
    use sockhost_sdk::Mixin;

    fn listener(config: &str) -> Listener {
        Listener {
            name: "daytime".into(),
            address: "127.0.0.1:0".into(),
            family: libc::AF_INET,
            kind: Kind::Stream,
            mixin: Mixin::Sync,
            config: toml::from_str(config).expect("test config parses"),
            config_dir: "/".into(),
            listen_fd: None,
            log_fd: None,
            max_packet_size: 0,
        }
    }

    fn line(config: &str) -> String {
        let d = Daytime::create(&listener(config)).expect("create");
        let mut buf = [0u8; MAX_LINE];
        let bytes = d.render(&mut buf).expect("render");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[test]
    fn default_line_is_rfc867_style_and_ends_in_crlf() {
        let l = line("");
        let body = l.strip_suffix("\r\n").expect("ends in CRLF");
        // "Monday, November 23, 2026 04:47:39-UTC": weekday, month, year.
        let (weekday, rest) = body.split_once(", ").expect("weekday");
        assert!(weekday.ends_with("day"), "{l:?}");
        assert!(rest.contains(':') && rest.contains('-'), "{l:?}");
        assert!(!body.contains('\n') && !body.contains('\r'), "{l:?}");
    }

    #[test]
    fn custom_format_is_used() {
        let l = line("format = \"%Y\"");
        assert_eq!(l.len(), 6, "{l:?}");
        assert!(l[..4].bytes().all(|b| b.is_ascii_digit()), "{l:?}");
    }

    #[test]
    fn bad_format_is_refused_naming_the_key() {
        for bad in ["format = 3", "format = \"\"", "format = \"a\\u0000b\""] {
            let err = match Daytime::create(&listener(bad)) {
                Ok(_) => panic!("{bad} was accepted"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains("`format`"), "{bad}: {err}");
        }
        let long = format!("format = \"{}\"", "x".repeat(MAX_LINE));
        assert!(Daytime::create(&listener(&long)).is_err());
    }
}
