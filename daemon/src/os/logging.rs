//! Where log lines go: stderr or the systemd journal, filtered by
//! `SOCKHOST_LOG` (RUST_LOG syntax, default `info`).
//!
//! `--log auto` picks the journal when stderr is connected to it
//! (`JOURNAL_STREAM` names stderr's device and inode), else stderr.
//! `--log journald` without a reachable journal is an error, never a silent
//! loss of logs.

use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The `--log` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogTarget {
    Auto,
    Stderr,
    Journald,
}

/// The filter from `SOCKHOST_LOG`; a bad value falls back to `info`, with
/// a warning on stderr.
fn filter() -> EnvFilter {
    match std::env::var("SOCKHOST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(&v).unwrap_or_else(|e| {
            eprintln!("sockhostd: ignoring SOCKHOST_LOG={v:?}: {e}; using `info`");
            EnvFilter::new("info")
        }),
        _ => EnvFilter::new("info"),
    }
}

/// Whether stderr is the journal's stream (systemd sets JOURNAL_STREAM).
pub fn stderr_is_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// Where log lines end up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    Stderr,
    Journal,
}

/// Install the global subscriber. Err when the journal was asked for and
/// cannot be reached.
pub fn init(target: LogTarget) -> Result<Sink, String> {
    let use_journal = match target {
        LogTarget::Journald => true,
        LogTarget::Stderr => false,
        LogTarget::Auto => stderr_is_journal(),
    };
    if use_journal {
        let layer = tracing_journald::layer()
            .map_err(|e| format!("cannot reach the systemd journal: {e}"))?
            .with_syslog_identifier("sockhostd".into())
            .with_field_prefix(None);
        tracing_subscriber::registry()
            .with(filter())
            .with(layer)
            .try_init()
            .map_err(|e| e.to_string())?;
        Ok(Sink::Journal)
    } else {
        let ansi = std::io::stderr().is_terminal();
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(ansi);
        tracing_subscriber::registry()
            .with(filter())
            .with(fmt)
            .try_init()
            .map_err(|e| e.to_string())?;
        Ok(Sink::Stderr)
    }
}
