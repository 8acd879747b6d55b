//! Response bytes: the configured answer and the error answers.
//!
//! Owns the byte layout of every response. Promises: every response carries
//! `Date` (IMF-fixdate, RFC 9110 §5.6.7) and `Content-Length`; an error
//! response always says `Connection: close`; `HEAD` gets the same head as
//! `GET` without the body; the static parts are built once at `create`, so
//! a request costs the date (cached per thread, per second) and two copies.

use crate::parse::{Head, Method, Status, METHOD_NOT_ALLOWED};
use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

const SERVER: &str = "sockhost-http-hello";

/// The precomputed answer to a good GET/HEAD.
#[derive(Debug)]
pub struct Answer {
    /// Everything after the Date line up to (not including) the
    /// connection header.
    fields: Vec<u8>,
    body: Vec<u8>,
}

impl Answer {
    pub fn new(body: &str, content_type: &str) -> Answer {
        let fields = format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        );
        Answer {
            fields: fields.into_bytes(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// Append the answer to `head` (GET/HEAD only) to `out`.
    pub fn write(&self, head: &Head, out: &mut Vec<u8>) {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        common_fields(out);
        out.extend_from_slice(&self.fields);
        out.extend_from_slice(connection_field(head));
        out.extend_from_slice(b"\r\n");
        if head.method != Method::Head {
            out.extend_from_slice(&self.body);
        }
    }
}

fn connection_field(head: &Head) -> &'static [u8] {
    match (head.keep_alive, head.explicit_keep_alive) {
        (false, _) => b"Connection: close\r\n",
        (true, true) => b"Connection: keep-alive\r\n",
        (true, false) => b"",
    }
}

/// Append an error answer (which always closes the connection) to `out`.
pub fn write_error(status: Status, out: &mut Vec<u8>) {
    let Status(code, reason) = status;
    out.extend_from_slice(format!("HTTP/1.1 {code} {reason}\r\n").as_bytes());
    common_fields(out);
    if status == METHOD_NOT_ALLOWED {
        out.extend_from_slice(b"Allow: GET, HEAD\r\n");
    }
    let body = format!("{code} {reason}\n");
    out.extend_from_slice(
        format!(
            "Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}

/// `Server` and `Date`.
fn common_fields(out: &mut Vec<u8>) {
    out.extend_from_slice(b"Server: ");
    out.extend_from_slice(SERVER.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != now || cache.1.is_empty() {
            *cache = (now, imf_fixdate(now));
        }
        out.extend_from_slice(cache.1.as_bytes());
    });
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    /// The last second formatted on this thread, and its text.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for seconds since the epoch.
pub fn imf_fixdate(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01, by the
/// usual era arithmetic on a March-based year (valid for any u64 input
/// that fits a year in u64).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, the start of a 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..365, March-based
    let mp = (5 * doy + 2) / 153; // month, March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
