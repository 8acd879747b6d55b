//! The closed-loop load generator: `concurrency` client threads, each
//! sending one request and waiting for its full answer before the next.
//!
//! Modes: `conn` (connect, send N bytes, read the N-byte echo, close),
//! `persist` (one connection per client, ping-pong N bytes), `dgram` (one
//! datagram out, one back). A warm-up period runs first and is not counted.
//! Promises: every request is bounded by the client's socket timeouts; an
//! echo that differs from what was sent counts as an error; the run ends by
//! itself after warm-up + duration; latency is measured per request with a
//! monotonic clock and reported as exact percentiles of all samples.

use crate::target::{Conn, Dgram, Target};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What kind of request each client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A new connection per request.
    Conn,
    /// One connection per client, request after request.
    Persist,
    /// A datagram per request.
    Dgram,
}

/// One run's settings.
#[derive(Clone, Debug)]
pub struct Plan {
    pub target: Target,
    pub mode: Mode,
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub size: usize,
}

/// One run's outcome.
#[derive(Debug, Default)]
pub struct Report {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    /// Latencies of counted requests, in nanoseconds, sorted.
    pub latencies: Vec<u64>,
    pub first_error: Option<String>,
}

impl Report {
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The `q`-quantile latency in microseconds (0 when nothing was counted).
    pub fn percentile_us(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((self.latencies.len() as f64) * q).ceil() as usize;
        let i = rank.clamp(1, self.latencies.len()) - 1;
        self.latencies[i] as f64 / 1000.0
    }
}

/// Per-thread tally, merged at the end.
#[derive(Default)]
struct Tally {
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, counted: bool, e: io::Error) {
        if counted {
            self.errors += 1;
        }
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
        // A refused or reset server must not turn the client into a spin loop.
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Run `plan` and gather the results of every client.
pub fn run(plan: &Plan) -> Report {
    let start = Instant::now();
    let counted_from = start + plan.warmup;
    let end = counted_from + plan.duration;
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..plan.concurrency)
        .map(|i| {
            let plan = plan.clone();
            let stop = Arc::clone(&stop);
            let source = source_address(&plan.target, i);
            std::thread::spawn(move || client(&plan, source, counted_from, end, &stop))
        })
        .collect();
    let mut report = Report {
        seconds: plan.duration.as_secs_f64(),
        ..Report::default()
    };
    for h in handles {
        let Ok(t) = h.join() else {
            report.errors += 1;
            continue;
        };
        report.latencies.extend(t.latencies);
        report.errors += t.errors;
        report.first_error = report.first_error.or(t.first_error);
    }
    stop.store(true, Ordering::Relaxed);
    report.requests = report.latencies.len() as u64;
    report.latencies.sort_unstable();
    report
}

/// Client `i`'s own source address (127.0.0.2, .3, ...) for a TCP target
/// on 127.0.0.0/8: with one source address, a new-connection-per-request
/// run at more than ~14,000 connections/s runs out of client ports, whose
/// TIME_WAIT the kernel reuses only after a second.
fn source_address(t: &Target, i: usize) -> Option<Ipv4Addr> {
    match t {
        Target::Tcp(SocketAddr::V4(sa)) if sa.ip().is_loopback() => {
            Some(Ipv4Addr::new(127, 0, 0, 2 + (i % 250) as u8))
        }
        _ => None,
    }
}

/// One client thread's loop.
fn client(
    plan: &Plan,
    source: Option<Ipv4Addr>,
    counted_from: Instant,
    end: Instant,
    stop: &AtomicBool,
) -> Tally {
    let mut tally = Tally {
        latencies: Vec::with_capacity(1 << 16),
        ..Tally::default()
    };
    let payload: Vec<u8> = (0..plan.size).map(|i| b'a' + (i % 26) as u8).collect();
    let mut answer = vec![0u8; plan.size.max(1)];
    let mut session = Session::None;
    loop {
        let t0 = Instant::now();
        if t0 >= end || stop.load(Ordering::Relaxed) {
            return tally;
        }
        let counted = t0 >= counted_from;
        let outcome = match plan.mode {
            Mode::Conn => conn_request(&plan.target, source, &payload, &mut answer),
            Mode::Persist => {
                persist_request(&mut session, &plan.target, source, &payload, &mut answer)
            }
            Mode::Dgram => dgram_request(&mut session, &plan.target, &payload, &mut answer),
        };
        match outcome {
            Ok(()) if counted => tally.latencies.push(t0.elapsed().as_nanos() as u64),
            Ok(()) => {}
            Err(e) => {
                session = Session::None;
                tally.error(counted, e);
            }
        }
    }
}

/// The connection or datagram socket a client keeps between requests.
enum Session {
    None,
    Stream(Conn),
    Dgram(Dgram),
}

/// Send `payload`, then read exactly as many bytes back and compare.
fn ping_pong(conn: &mut Conn, payload: &[u8], answer: &mut [u8]) -> io::Result<()> {
    conn.write_all(payload)?;
    let answer = &mut answer[..payload.len()];
    conn.read_exact(answer)?;
    if answer != payload {
        return Err(io::Error::other("the echo differs from what was sent"));
    }
    Ok(())
}

fn conn_request(
    t: &Target,
    source: Option<Ipv4Addr>,
    payload: &[u8],
    answer: &mut [u8],
) -> io::Result<()> {
    let mut conn = Conn::connect(t, source)?;
    ping_pong(&mut conn, payload, answer)
    // Dropping the connection closes it: the server sees EOF and ends.
}

fn persist_request(
    session: &mut Session,
    t: &Target,
    source: Option<Ipv4Addr>,
    payload: &[u8],
    answer: &mut [u8],
) -> io::Result<()> {
    if !matches!(session, Session::Stream(_)) {
        *session = Session::Stream(Conn::connect(t, source)?);
    }
    match session {
        Session::Stream(conn) => ping_pong(conn, payload, answer),
        _ => Err(io::Error::other("no connection")),
    }
}

fn dgram_request(
    session: &mut Session,
    t: &Target,
    payload: &[u8],
    answer: &mut [u8],
) -> io::Result<()> {
    if !matches!(session, Session::Dgram(_)) {
        *session = Session::Dgram(Dgram::connect(t)?);
    }
    let Session::Dgram(sock) = session else {
        return Err(io::Error::other("no socket"));
    };
    sock.send(payload)?;
    let n = sock.recv(answer)?;
    if answer[..n] != *payload {
        return Err(io::Error::other("the echo differs from what was sent"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_exact_ranks() {
        let r = Report {
            latencies: (1..=100).map(|i| i * 1000).collect(),
            requests: 100,
            seconds: 2.0,
            ..Report::default()
        };
        assert_eq!(r.percentile_us(0.5), 50.0);
        assert_eq!(r.percentile_us(0.99), 99.0);
        assert_eq!(r.rate(), 50.0);
        assert_eq!(Report::default().percentile_us(0.5), 0.0);
    }
}
