//! `sockhostctl`: ask a running sockhostd over its control socket.
//!
//! Sends one command line, prints the answer, and exits with the status
//! the daemon chose: 0 done (`reload`: every new worker serves; `upgrade`:
//! the new binary serves), 1 failed (`reload`: rolled back; `upgrade`: the
//! old daemon keeps serving; the text says why), 2 a bad command line, 3 the
//! daemon cannot be reached (the message names the socket). Needs nothing
//! but the socket: no config file, no signals, no pid. The exceptions,
//! `import` and `security`, read files instead and never contact the daemon
//! (`security`: exit 0 printed, 1 the config or listener is bad).

use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Control a running sockhostd.
#[derive(Debug, Parser)]
#[command(name = "sockhostctl", version, about, long_about = None)]
struct Cli {
    /// The daemon's control socket ([daemon] control_socket).
    #[arg(
        short = 's',
        long = "socket",
        value_name = "SOCKET",
        default_value = "/run/sockhost/control.sock"
    )]
    socket: PathBuf,
    /// Give up waiting for the answer after this many seconds.
    #[arg(
        short = 't',
        long = "timeout",
        value_name = "SECONDS",
        default_value_t = 120.0
    )]
    timeout: f64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Master pid, version, generation, last reload, and each listener's
    /// address, workers and request counts.
    Status {
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Reload the configuration and wait for the outcome: exit 0 once every
    /// new worker serves, 1 when the reload rolled back.
    Reload,
    /// Replace the running daemon with the binary now at its path, on the
    /// same sockets, and wait: exit 0 once the new daemon serves (the old
    /// one drains), 1 when it failed (the old one keeps serving).
    Upgrade,
    /// Print xinetd, inetd or systemd socket services as sockhost listeners
    /// (a drop-in); name on stderr whatever cannot be carried over. Exit 0:
    /// all carried over; 3: something named on stderr is missing; 1: an
    /// input cannot be read or parsed. Needs no daemon.
    Import {
        /// The input format.
        #[arg(value_enum)]
        format: ImportFormat,
        /// xinetd: service files or folders; inetd: inetd.conf files;
        /// systemd: .socket units (their services are found next to them).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// What each listener's worker may do (user, files, network, exec,
    /// system calls, signals) and an exposure score from 0 (boxed in) to
    /// 10, worked out from a config file.
    Security {
        /// The config file to read.
        #[arg(
            short = 'c',
            long = "config",
            value_name = "PATH",
            default_value = "/etc/sockhost/sockhost.toml"
        )]
        config: PathBuf,
        /// Only this listener.
        listener: Option<String>,
    },
}

/// `security`: computed here from the config, not asked of the daemon.
fn security(config: &std::path::Path, listener: Option<&str>) -> ExitCode {
    let cfg = match sockhostd::config::load(config) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("sockhostctl: {e}");
            return ExitCode::from(1);
        }
    };
    match sockhostd::os::sandbox::exposure::report(&cfg, listener) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("sockhostctl: {why}");
            ExitCode::from(1)
        }
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ImportFormat {
    Xinetd,
    Inetd,
    Systemd,
}

/// `sockhostctl import`: the config on stdout, the notes on stderr.
fn import(format: ImportFormat, paths: &[PathBuf]) -> ExitCode {
    use sockhostd::import::{import, Format};
    let format = match format {
        ImportFormat::Xinetd => Format::Xinetd,
        ImportFormat::Inetd => Format::Inetd,
        ImportFormat::Systemd => Format::Systemd,
    };
    match import(format, paths) {
        Err(e) => {
            eprintln!("sockhostctl: {e}");
            ExitCode::from(1)
        }
        Ok(out) => {
            print!("{}", out.config);
            for n in &out.notes {
                eprintln!("{n}");
            }
            ExitCode::from(if out.lossy() { 3 } else { 0 })
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let line = match cli.command {
        Command::Import { format, paths } => return import(format, &paths),
        Command::Status { json: false } => "status\n",
        Command::Status { json: true } => "status json\n",
        Command::Reload => "reload\n",
        Command::Upgrade => "upgrade\n",
        Command::Security { config, listener } => return security(&config, listener.as_deref()),
    };
    let timeout = Duration::try_from_secs_f64(cli.timeout)
        .ok()
        .filter(|t| !t.is_zero());
    let Some(timeout) = timeout else {
        eprintln!("sockhostctl: --timeout must be a number of seconds greater than 0");
        return ExitCode::from(2);
    };
    let shown = cli.socket.display();
    let mut sock = match UnixStream::connect(&cli.socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sockhostctl: cannot reach sockhostd at {shown}: {e}");
            return ExitCode::from(3);
        }
    };
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    if let Err(e) = sock.write_all(line.as_bytes()) {
        eprintln!("sockhostctl: cannot reach sockhostd at {shown}: {e}");
        return ExitCode::from(3);
    }
    let mut answer = Vec::new();
    if let Err(e) = sock.read_to_end(&mut answer) {
        eprintln!("sockhostctl: no answer from sockhostd at {shown}: {e}");
        return ExitCode::from(1);
    }
    let answer = String::from_utf8_lossy(&answer);
    let Some((code, text)) = answer.split_once('\n') else {
        eprintln!("sockhostctl: sockhostd at {shown} closed the connection without an answer");
        return ExitCode::from(1);
    };
    let code: u8 = code.trim().parse().unwrap_or(1);
    if code == 0 {
        print!("{text}");
    } else {
        eprint!("{text}");
    }
    ExitCode::from(code)
}
