//! sockhost-http-hello: a small HTTP/1.1 responder that answers every
//! `GET` (and `HEAD`) with one configured body.
//!
//! Behaviour: persistent connections by default in HTTP/1.1, closed after
//! the answer when the client says `Connection: close`, and in HTTP/1.0
//! unless it says `Connection: keep-alive` (echoed back then). Pipelined
//! requests are answered in order. Every answer has `Content-Length` and
//! `Date`. A head longer than `max_header_bytes` gets 431, a malformed one
//! 400 (also HTTP/1.1 without exactly one Host), another HTTP version 505,
//! a request body sent with Transfer-Encoding 501, any method other than
//! GET/HEAD 405; each of those closes the connection after the answer.
//! The connection's idle timeout is the listener's `connection_timeout`.
//!
//! `[listener.config]`: `body` (default `Hello, world!\n`), `content_type`
//! (default `text/plain; charset=utf-8`), `max_header_bytes` (default 8192,
//! 256 to 1048576). Any other key is refused at `create`, so a typo is
//! reported at start, not ignored. Stream listeners only.
//!
//! Closing is graceful: after its last answer the plugin shuts down its
//! sending side and reads (and discards) what the client still sends, for
//! at most 1 s and 1 MiB, so the client receives the answer rather than a
//! reset caused by unread input.

mod conn;
mod parse;
mod response;
#[cfg(test)]
mod tests;

use conn::End;
use response::Answer;
use sockhost_sdk::{export_handler, Handler, Kind, Listener, Request, Result};
use std::time::{Duration, Instant};

/// The responder: the configured answer, built once.
pub struct HttpHello {
    answer: Answer,
    max_head: usize,
}

/// Every `[listener.config]` key; others are refused (and this list named).
const KEYS: [&str; 3] = ["body", "content_type", "max_header_bytes"];
const DEFAULT_BODY: &str = "Hello, world!\n";
const DEFAULT_TYPE: &str = "text/plain; charset=utf-8";
const DEFAULT_MAX_HEAD: i64 = 8192;
const MAX_HEAD_RANGE: (i64, i64) = (256, 1 << 20);

/// How long, and how much, a graceful close waits for the client.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1 << 20;

impl HttpHello {
    fn from_config(config: &toml::Table) -> Result<HttpHello> {
        let text = |key: &str, default: &str| -> Result<String> {
            match config.get(key) {
                None => Ok(default.to_string()),
                Some(toml::Value::String(s)) => Ok(s.clone()),
                Some(other) => {
                    Err(format!("`{key}` must be a string, not {}", other.type_str()).into())
                }
            }
        };
        if let Some(key) = config.keys().find(|k| !KEYS.contains(&k.as_str())) {
            let known: Vec<String> = KEYS.iter().map(|k| format!("`{k}`")).collect();
            return Err(format!("unknown key `{key}` (expected {})", known.join(", ")).into());
        }
        let content_type = text("content_type", DEFAULT_TYPE)?;
        if content_type.chars().any(|c| c.is_control()) {
            return Err("`content_type` must not hold control characters".into());
        }
        let max_head = match config.get("max_header_bytes") {
            None => DEFAULT_MAX_HEAD,
            Some(toml::Value::Integer(n)) if (MAX_HEAD_RANGE.0..=MAX_HEAD_RANGE.1).contains(n) => {
                *n
            }
            Some(other) => {
                return Err(format!(
                    "`max_header_bytes` must be an integer from {} to {}, not {other}",
                    MAX_HEAD_RANGE.0, MAX_HEAD_RANGE.1
                )
                .into())
            }
        };
        Ok(HttpHello {
            answer: Answer::new(&text("body", DEFAULT_BODY)?, &content_type),
            max_head: max_head as usize,
        })
    }
}

impl Handler for HttpHello {
    fn create(listener: &Listener) -> Result<Self> {
        if listener.kind != Kind::Stream {
            return Err("http-hello serves stream listeners only (type = \"stream\")".into());
        }
        HttpHello::from_config(&listener.config)
    }

    fn handle(&self, req: &mut Request) -> Result<()> {
        let mut socket = req.socket();
        if conn::serve(&mut socket, &self.answer, self.max_head)? == End::Close {
            linger(req.fd());
        }
        Ok(())
    }
}

/// Shut down our sending side, then read and drop what the client still
/// sends until it closes, `LINGER_TIME` passes or `LINGER_BYTES` arrived.
fn linger(fd: i32) {
    // SAFETY: shutdown on the request's socket, which stays open (the daemon
    // closes it after the request); no memory is involved.
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
    let deadline = Instant::now() + LINGER_TIME;
    let mut buf = [0u8; 4096];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd; the timeout is bounded by LINGER_TIME.
        if unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) } <= 0 {
            return;
        }
        // SAFETY: reading into a live stack buffer of its own length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n <= 0 {
            return;
        }
        drained += n as usize;
    }
}

export_handler!(HttpHello);
