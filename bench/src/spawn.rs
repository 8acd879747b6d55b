//! The spawn floor: how fast this machine starts and reaps a program with
//! nothing served, the ceiling on any server that runs a program per
//! connection (inetd, xinetd, tcpserver, sockhostd's exec plugin).
//!
//! `concurrency` threads each start `program` (stdin, stdout and stderr
//! /dev/null, so it ends at once) with `std::process::Command` (posix_spawn)
//! and wait for it, again and again, for warm-up + duration; the counted
//! runs give the same report as `load`. Promises: every program started is
//! waited for; the run is bounded in time.

use crate::load::Report;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn run(program: &Path, concurrency: usize, warmup: Duration, duration: Duration) -> Report {
    let start = Instant::now();
    let (from, until) = (start + warmup, start + warmup + duration);
    let threads: Vec<_> = (0..concurrency)
        .map(|_| {
            let program = program.to_path_buf();
            std::thread::spawn(move || {
                let (mut lat, mut errors, mut first) = (Vec::new(), 0u64, None);
                loop {
                    let t0 = Instant::now();
                    if t0 >= until {
                        break;
                    }
                    let status = Command::new(&program)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                    let counted = t0 >= from;
                    match status {
                        Ok(s) if s.success() => {
                            if counted {
                                lat.push(t0.elapsed().as_nanos() as u64);
                            }
                        }
                        Ok(s) => {
                            errors += u64::from(counted);
                            first.get_or_insert_with(|| format!("{program:?}: {s}"));
                        }
                        Err(e) => {
                            errors += u64::from(counted);
                            first.get_or_insert_with(|| format!("{program:?}: {e}"));
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                }
                (lat, errors, first)
            })
        })
        .collect();
    let mut report = Report::default();
    for t in threads {
        if let Ok((lat, errors, first)) = t.join() {
            report.requests += lat.len() as u64;
            report.latencies.extend(lat);
            report.errors += errors;
            if report.first_error.is_none() {
                report.first_error = first;
            }
        }
    }
    report.latencies.sort_unstable();
    report.seconds = duration.as_secs_f64();
    report
}
