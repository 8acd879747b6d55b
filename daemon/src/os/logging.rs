//! Where log lines go: stderr, the systemd journal, syslog ([`crate::os::syslog`])
//! or a file ([`crate::os::logfile`]), filtered by `SOCKHOST_LOG` (RUST_LOG
//! syntax, default `info`).
//!
//! `--log auto` picks the journal when stderr is connected to it
//! (`JOURNAL_STREAM` names stderr's device and inode), else stderr.
//! `--log journald` without a reachable journal, `--log syslog` without a
//! syslog socket and a `--log-file` that cannot be opened are errors, never
//! a silent loss of logs. Every target shows the same text: the message and
//! its fields, with the worker's span (`listener`, `generation`, `plugin`);
//! the journal gets them as fields.

use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The `--log` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogTarget {
    Auto,
    Stderr,
    Journald,
    Syslog,
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
    Syslog,
    File,
}

/// Install the global subscriber: `file` (from `--log-file`) wins over
/// `target`. Err when the chosen target cannot be reached or opened.
pub fn init(target: LogTarget, file: Option<&Path>) -> Result<Sink, String> {
    if let Some(path) = file {
        let log = crate::os::logfile::open(path)
            .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(log)
            .with_target(false)
            .with_ansi(false);
        install(fmt)?;
        return Ok(Sink::File);
    }
    let use_journal = match target {
        LogTarget::Journald => true,
        LogTarget::Stderr => false,
        LogTarget::Syslog => return init_syslog(),
        LogTarget::Auto => stderr_is_journal(),
    };
    if use_journal {
        let layer = tracing_journald::layer()
            .map_err(|e| format!("cannot reach the systemd journal: {e}"))?
            .with_syslog_identifier("sockhostd".into())
            .with_field_prefix(None);
        install(layer)?;
        Ok(Sink::Journal)
    } else {
        let ansi = std::io::stderr().is_terminal();
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(ansi);
        install(fmt)?;
        Ok(Sink::Stderr)
    }
}

fn init_syslog() -> Result<Sink, String> {
    let syslog = crate::os::syslog::open().map_err(|e| e.to_string())?;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(syslog)
        .with_target(false)
        .with_ansi(false)
        .without_time();
    install(fmt)?;
    Ok(Sink::Syslog)
}

fn install<L>(layer: L) -> Result<(), String>
where
    L: tracing_subscriber::Layer<
            tracing_subscriber::layer::Layered<EnvFilter, tracing_subscriber::Registry>,
        > + Send
        + Sync,
{
    tracing_subscriber::registry()
        .with(filter())
        .with(layer)
        .try_init()
        .map_err(|e| e.to_string())
}
