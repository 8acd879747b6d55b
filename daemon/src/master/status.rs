//! What `sockhostctl status` shows: the master's state as one value
//! ([`Status`]) and its two renderings, lines for people and JSON for
//! scripts.
//!
//! Promises: the JSON is one object, valid (strings escaped here, numbers
//! plain), with the same facts as the text; times are UTC, RFC 3339 with
//! seconds, plus the Unix time. Never reads anything itself: the master
//! fills the value.

use std::fmt::Write as _;
use std::time::SystemTime;

/// The outcome of one reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadRecord {
    pub at: SystemTime,
    pub ok: bool,
    /// The summary line (ok) or why it rolled back.
    pub message: String,
}

/// One listener's part of the status.
#[derive(Clone, Debug, Default)]
pub struct ListenerStatus {
    pub name: String,
    pub address: String,
    pub family: &'static str,
    pub socktype: &'static str,
    pub mixin: &'static str,
    pub pids: Vec<i32>,
    pub active: u64,
    pub requests: u64,
    pub failed: u64,
}

/// The whole status.
#[derive(Clone, Debug)]
pub struct Status {
    pub pid: u32,
    pub version: &'static str,
    pub generation: u64,
    pub started: SystemTime,
    pub last_reload: Option<ReloadRecord>,
    pub listeners: Vec<ListenerStatus>,
}

/// Seconds since the Unix epoch.
fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `t` as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = unix(t);
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Year, month, day of `days` since 1970-01-01 (proleptic Gregorian):
/// count in 400-year eras from 0000-03-01, so leap days end each year.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Status {
    /// Lines for a person.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "sockhostd {}: pid {}, generation {}, up since {}",
            self.version,
            self.pid,
            self.generation,
            rfc3339(self.started)
        );
        match &self.last_reload {
            None => o.push_str("last reload: none\n"),
            Some(r) => {
                let result = if r.ok { "ok" } else { "failed" };
                let _ = writeln!(o, "last reload: {} {result}: {}", rfc3339(r.at), r.message);
            }
        }
        for l in &self.listeners {
            let pids: Vec<String> = l.pids.iter().map(i32::to_string).collect();
            let _ = writeln!(
                o,
                "listener {}: {} {} {}, mixin {}, workers {} (pids {}), active {}, requests {}, failed {}",
                l.name,
                l.family,
                l.socktype,
                l.address,
                l.mixin,
                l.pids.len(),
                if pids.is_empty() { "none".to_string() } else { pids.join(", ") },
                l.active,
                l.requests,
                l.failed
            );
        }
        o
    }

    /// One JSON object.
    pub fn json(&self) -> String {
        let mut o = String::new();
        let _ = write!(
            o,
            "{{\"pid\":{},\"version\":{},\"generation\":{},\"started\":{},\"started_unix\":{},\"last_reload\":",
            self.pid,
            json_str(self.version),
            self.generation,
            json_str(&rfc3339(self.started)),
            unix(self.started)
        );
        match &self.last_reload {
            None => o.push_str("null"),
            Some(r) => {
                let error = if r.ok {
                    "null".to_string()
                } else {
                    json_str(&r.message)
                };
                let _ = write!(
                    o,
                    "{{\"time\":{},\"unix_time\":{},\"result\":{},\"message\":{},\"error\":{error}}}",
                    json_str(&rfc3339(r.at)),
                    unix(r.at),
                    json_str(if r.ok { "ok" } else { "failed" }),
                    json_str(&r.message)
                );
            }
        }
        o.push_str(",\"listeners\":[");
        for (i, l) in self.listeners.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let pids: Vec<String> = l.pids.iter().map(i32::to_string).collect();
            let _ = write!(
                o,
                "{{\"name\":{},\"address\":{},\"family\":{},\"type\":{},\"mixin\":{},\"workers\":{},\"pids\":[{}],\"active\":{},\"requests\":{},\"failed\":{}}}",
                json_str(&l.name),
                json_str(&l.address),
                json_str(l.family),
                json_str(l.socktype),
                json_str(l.mixin),
                l.pids.len(),
                pids.join(","),
                l.active,
                l.requests,
                l.failed
            );
        }
        o.push_str("]}\n");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_utc_rfc3339() {
        let at = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn json_escapes_strings_and_shows_a_failed_reload_as_its_error() {
        assert_eq!(json_str("a\"\\\n\u{1}"), "\"a\\\"\\\\\\n\\u0001\"");
        let s = Status {
            pid: 7,
            version: "1.0",
            generation: 2,
            started: SystemTime::UNIX_EPOCH,
            last_reload: Some(ReloadRecord {
                at: SystemTime::UNIX_EPOCH,
                ok: false,
                message: "/x.toml:3:9: bad".into(),
            }),
            listeners: vec![ListenerStatus {
                name: "echo".into(),
                pids: vec![8, 9],
                ..ListenerStatus::default()
            }],
        };
        let j = s.json();
        assert!(j.contains("\"result\":\"failed\""), "{j}");
        assert!(j.contains("\"error\":\"/x.toml:3:9: bad\""), "{j}");
        assert!(j.contains("\"pids\":[8,9]"), "{j}");
        let t = s.text();
        assert!(
            t.contains("last reload: 1970-01-01T00:00:00Z failed: /x.toml:3:9: bad"),
            "{t}"
        );
        assert!(t.contains("workers 2 (pids 8, 9)"), "{t}");
    }
}
