//! The `sockhostd` command line: parse flags, set up logging, run the
//! master (or `--check`), and map the outcome to the exit status: 0 clean
//! stop or check passed, 1 bad config, plugin or bind failure, 2 bad
//! command line (clap's own status for usage errors).

use clap::Parser;
use sockhostd::os::logging::{self, LogTarget};
use std::path::PathBuf;
use std::process::ExitCode;

/// Python's socketserver as a daemon: listeners from a TOML file, request
/// handlers from plugins.
#[derive(Debug, Parser)]
#[command(name = "sockhostd", version, about, long_about = None)]
struct Cli {
    /// The configuration file.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "PATH",
        default_value = "/etc/sockhost/sockhost.toml"
    )]
    config: PathBuf,
    /// Validate the config and load every plugin (calling create), then exit.
    #[arg(long)]
    check: bool,
    /// Detach as a classic double-forked daemon (needs --pid-file).
    #[arg(long, requires = "pid_file", conflicts_with = "check")]
    daemonize: bool,
    /// Where --daemonize writes the daemon's pid.
    #[arg(long, value_name = "PATH", requires = "daemonize")]
    pid_file: Option<PathBuf>,
    /// Log destination: the journal when stderr is the journal (auto), stderr, journald, or syslog (/dev/log, facility daemon).
    #[arg(long, value_enum, default_value_t = LogTarget::Auto)]
    log: LogTarget,
    /// Append log lines to this file instead (reopened on SIGUSR1, for logrotate).
    #[arg(long, value_name = "PATH", conflicts_with = "log")]
    log_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let sink = match logging::init(cli.log, cli.log_file.as_deref()) {
        Ok(sink) => sink,
        Err(e) => {
            eprintln!("sockhostd: {e}");
            return ExitCode::from(1);
        }
    };
    let result = if cli.check {
        run_check(&cli)
    } else if let Some(report) = sockhostd::os::daemonize::upgrade_report() {
        let pid_file = cli.pid_file.as_deref().filter(|_| cli.daemonize);
        sockhostd::os::daemonize::run_upgraded(&cli.config, pid_file, report)
            .map_err(anyhow::Error::from)
    } else if cli.daemonize {
        let pid_file = cli.pid_file.clone().unwrap_or_default();
        sockhostd::os::daemonize::run(&cli.config, &pid_file).map_err(anyhow::Error::from)
    } else {
        sockhostd::master::run(&cli.config).map_err(anyhow::Error::from)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once in the log; once more on stderr when the log is
            // elsewhere and stderr is a terminal or file the operator reads.
            tracing::error!("{e:#}");
            if sink != logging::Sink::Stderr && !logging::stderr_is_journal() {
                eprintln!("sockhostd: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}

fn run_check(cli: &Cli) -> anyhow::Result<()> {
    let config = sockhostd::master::check::check(&cli.config)?;
    println!(
        "{}: OK ({} listeners, every plugin loaded and created)",
        config.file.display(),
        config.listeners.len()
    );
    Ok(())
}
