//! sockhost-probe: a diagnostic plugin that answers questions about the
//! process, thread and listener serving it, so tests and operators can see
//! what the daemon really does.
//!
//! Protocol. Stream: one command per `\n`-ended line (a trailing `\r` is
//! stripped too; a last line without `\n` before the client closes counts),
//! until the client closes; each reply is flushed before the next line is
//! read, so a client may wait for it. Datagram: each datagram is one command
//! (trailing newline optional) and its reply is one datagram. Every reply is
//! one line ending in `\n`. Commands are case-sensitive:
//!
//! | command      | reply |
//! | ------------ | ----- |
//! | `PING`       | `PONG` |
//! | `PID`        | the id of the process running the handler |
//! | `PPID`       | that process's parent's id |
//! | `TID`        | the kernel thread id (gettid) running the handler |
//! | `CLIENT`     | the client address as the daemon gave it (may be empty) |
//! | `LISTENER`   | the listener's name |
//! | `CONFIG KEY` | KEY of `[listener.config]`: strings bare, other values as TOML; `ERR no such key` |
//! | `ECHO TEXT`  | `TEXT` |
//! | `SLEEP MS`   | `SLEPT MS` after sleeping MS milliseconds; `ERR bad number` |
//! | `HOOKS`      | the request hooks run so far, e.g. `setup,handle` |
//! | `VERSION`    | this crate's version |
//! | `PANIC`      | no reply: `handle` panics (the SDK turns it into an error) |
//! | `ABORT`      | no reply: the process aborts |
//! | `COUNTERS`   | `timeouts=N service_actions=N errors=N` (see below) |
//! | `TLV TYPE`   | the PROXY v2 TLV of type TYPE (decimal): printable ASCII as is, other bytes as `0x` and hex; `ERR no such tlv`, `ERR bad number` |
//! | other        | `ERR unknown command` (also for invalid UTF-8) |
//!
//! Beyond the contract's table, probe implements every optional hook so
//! tests can prove the daemon runs them:
//! - `verify_request` refuses a datagram whose bytes start with `DENY` (it is
//!   dropped unanswered); streams are always accepted.
//! - `handle_timeout`, `service_actions` and `handle_error` each bump an
//!   atomic counter of the instance, reported by `COUNTERS`. In fork mode the
//!   counters live in the worker and a request child sees a snapshot; its
//!   own `handle_error` is lost with it.
//!
//! Limits: a line longer than 64 KiB (without its line end) is answered
//! `ERR line too long` and the connection is closed; input is never buffered
//! beyond that. A client that resets the connection ends the request
//! quietly. `[listener.config]` is free-form: probe only reads it for
//! `CONFIG`.

use sockhost_sdk::{export_handler, Client, Handler, Kind, Listener, Request, Result};
use std::io::{BufRead, ErrorKind, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Longest command line accepted, its line end not counted.
const MAX_LINE: usize = 64 * 1024;

/// The probe instance: what `create` was told, and the hook counters.
pub struct Probe {
    listener: String,
    config: toml::Table,
    timeouts: AtomicU64,
    service_actions: AtomicU64,
    errors: AtomicU64,
}

/// The request hooks run so far for one request (per-request storage).
#[derive(Default)]
struct Hooks(Vec<&'static str>);

impl Handler for Probe {
    fn create(listener: &Listener) -> Result<Self> {
        Ok(Probe {
            listener: listener.name.clone(),
            config: listener.config.clone(),
            timeouts: AtomicU64::new(0),
            service_actions: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    fn setup(&self, req: &mut Request) -> Result<()> {
        req.user::<Hooks>().0.push("setup");
        Ok(())
    }

    fn handle(&self, req: &mut Request) -> Result<()> {
        req.user::<Hooks>().0.push("handle");
        let outcome = match req.kind() {
            Kind::Stream => self.serve_stream(req),
            Kind::Datagram => self.serve_datagram(req),
        };
        match outcome {
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                Ok(())
            }
            other => other.map_err(Into::into),
        }
    }

    fn verify_request(&self, client: &Client) -> bool {
        !client.data.starts_with(b"DENY")
    }

    fn handle_timeout(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
    }

    fn service_actions(&self) {
        self.service_actions.fetch_add(1, Ordering::Relaxed);
    }

    fn handle_error(&self, _req: &mut Request, _message: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

impl Probe {
    /// Answer lines until the client closes or sends one too long.
    fn serve_stream(&self, req: &mut Request) -> std::io::Result<()> {
        let mut line = Vec::new();
        loop {
            line.clear();
            // Read at most one line end past the limit: enough to tell a
            // line that fits from one that does not, and no more.
            let limit = (MAX_LINE + 2) as u64;
            if req.rfile().take(limit).read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            let command = strip_line_end(&line);
            if command.len() > MAX_LINE {
                let w = req.wfile();
                w.write_all(b"ERR line too long\n")?;
                return w.flush();
            }
            let reply = self.answer(req, command);
            let w = req.wfile();
            w.write_all(reply.as_bytes())?;
            w.write_all(b"\n")?;
            w.flush()?;
        }
    }

    /// Answer one datagram with one datagram.
    fn serve_datagram(&self, req: &mut Request) -> std::io::Result<()> {
        let data = req.data();
        let mut reply = self.answer(req, strip_line_end(data));
        reply.push('\n');
        req.reply(reply.as_bytes()).map(|_| ())
    }

    /// The reply to one command, without its line end.
    fn answer(&self, req: &mut Request, command: &[u8]) -> String {
        let Ok(command) = std::str::from_utf8(command) else {
            return "ERR unknown command".into();
        };
        let (word, arg) = match command.split_once(' ') {
            Some((word, arg)) => (word, Some(arg)),
            None => (command, None),
        };
        match (word, arg) {
            ("PING", None) => "PONG".into(),
            ("PID", None) => std::process::id().to_string(),
            // SAFETY: getppid has no preconditions and cannot fail.
            ("PPID", None) => unsafe { libc::getppid() }.to_string(),
            // SAFETY: gettid has no preconditions and cannot fail.
            ("TID", None) => unsafe { libc::gettid() }.to_string(),
            ("CLIENT", None) => req.client().to_string(),
            ("LISTENER", None) => self.listener.clone(),
            ("CONFIG", key) => self.config_value(key.unwrap_or("")),
            ("ECHO", text) => text.unwrap_or("").to_string(),
            ("SLEEP", ms) => match ms.and_then(|ms| ms.parse::<u64>().ok()) {
                Some(ms) => {
                    std::thread::sleep(Duration::from_millis(ms));
                    format!("SLEPT {ms}")
                }
                None => "ERR bad number".into(),
            },
            ("HOOKS", None) => req.user::<Hooks>().0.join(","),
            ("VERSION", None) => env!("CARGO_PKG_VERSION").into(),
            ("COUNTERS", None) => format!(
                "timeouts={} service_actions={} errors={}",
                self.timeouts.load(Ordering::Relaxed),
                self.service_actions.load(Ordering::Relaxed),
                self.errors.load(Ordering::Relaxed)
            ),
            ("TLV", kind) => match kind.and_then(|k| k.parse::<u8>().ok()) {
                Some(kind) => req
                    .proxy_tlv(kind)
                    .map_or("ERR no such tlv".into(), tlv_text),
                None => "ERR bad number".into(),
            },
            ("PANIC", None) => panic!("probe: the client asked for PANIC"),
            ("ABORT", None) => std::process::abort(),
            _ => "ERR unknown command".into(),
        }
    }

    /// `CONFIG KEY`: strings bare, other values as TOML on one line.
    fn config_value(&self, key: &str) -> String {
        match self.config.get(key) {
            Some(toml::Value::String(s)) => one_line(s),
            Some(other) => one_line(&other.to_string()),
            None => "ERR no such key".into(),
        }
    }
}

/// A TLV's value for the `TLV` reply: printable ASCII as is, else hex.
fn tlv_text(value: &[u8]) -> String {
    if !value.is_empty() && value.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return String::from_utf8_lossy(value).into_owned();
    }
    let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{hex}")
}

/// `line` without its trailing `\n` and then `\r`, if any.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Keep a reply on one line: a value holding line ends gets spaces instead.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

export_handler!(Probe);

#[cfg(test)]
mod tests;
