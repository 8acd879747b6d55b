//! sockhost-bench: measure sockhost against its peers, on this machine only.
//!
//! - `load`: the closed-loop load generator (new connection per request,
//!   persistent ping-pong, or datagrams; TCP, UDP or unix sockets).
//! - `bare`: a bare echo server of one dispatch model (the practical limit).
//! - `startup`: exec → ready and SIGHUP → new generation ready for sockhostd.
//! - `memory`: RSS/PSS of the master, each kind of worker, and per idle
//!   connection in thread mode.
//! - `spawn`: the spawn floor, a program started and reaped with nothing
//!   served (the ceiling on every program-per-connection server).
//!
//! Promises: loopback addresses only; every run is bounded in time; the
//! exit status is 0 on success, 1 when the measurement failed, 2 on a bad
//! command line. `bench/compare.sh` drives this binary; benchmarks are
//! commands, never timed tests.

mod bare;
mod footprint;
mod load;
mod spawn;
mod target;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "sockhost-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run closed-loop clients against an echo server and print req/s,
    /// p50/p99 latency and errors.
    Load {
        /// tcp:HOST:PORT, unix:PATH, udp:HOST:PORT or unixgram:PATH (loopback only).
        #[arg(short, long)]
        target: String,
        /// conn: new connection per request; persist: ping-pong on one
        /// connection per client; dgram: a datagram per request.
        #[arg(short, long, value_enum, default_value = "conn")]
        mode: load::Mode,
        /// Client threads (each with one request outstanding).
        #[arg(short, long, default_value_t = 8)]
        concurrency: usize,
        /// Measured seconds (after the warm-up).
        #[arg(short, long, default_value_t = 3.0)]
        duration: f64,
        /// Uncounted seconds before measuring.
        #[arg(short, long, default_value_t = 0.5)]
        warmup: f64,
        /// Bytes per request.
        #[arg(short, long, default_value_t = 64)]
        size: usize,
        /// Print one tab-separated line: req/s, p50 µs, p99 µs, errors.
        #[arg(long)]
        tsv: bool,
    },
    /// Serve echo with a bare accept (or recvfrom) loop until killed.
    Bare {
        /// Address to bind, as for `load --target`.
        #[arg(short, long)]
        listen: String,
        #[arg(short, long, value_enum, default_value = "sync")]
        model: bare::Model,
        /// Processes sharing the socket.
        #[arg(short, long, default_value_t = 1)]
        workers: usize,
    },
    /// Time sockhostd from exec to ready and from SIGHUP to the new
    /// generation ready.
    Startup {
        #[arg(long, default_value = "target/release/sockhostd")]
        sockhostd: PathBuf,
        /// The handler every listener uses (absolute, or relative to here).
        #[arg(long, default_value = "target/release/libsockhost_echo.so")]
        plugin: PathBuf,
        #[arg(long, default_value_t = 20)]
        listeners: usize,
        /// Daemons started (each reloaded this many times).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Start and reap PROGRAM (stdio /dev/null) from closed-loop threads:
    /// the spawn floor, printed like `load`.
    Spawn {
        #[arg(short, long, default_value = "/bin/cat")]
        program: PathBuf,
        #[arg(short, long, default_value_t = 8)]
        concurrency: usize,
        #[arg(short, long, default_value_t = 3.0)]
        duration: f64,
        #[arg(short, long, default_value_t = 0.5)]
        warmup: f64,
        /// Print one tab-separated line: runs/s, p50 µs, p99 µs, errors.
        #[arg(long)]
        tsv: bool,
    },
    /// Memory of the master and workers idle, and per idle connection.
    Memory {
        #[arg(long, default_value = "target/release/sockhostd")]
        sockhostd: PathBuf,
        #[arg(long, default_value = "target/release/libsockhost_echo.so")]
        plugin: PathBuf,
        /// Idle connections held open against the thread-mode listener.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
    },
}

fn seconds(s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|e| format!("bad duration {s}: {e}"))
}

fn absolute(p: PathBuf) -> PathBuf {
    std::path::absolute(&p).unwrap_or(p)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome: Result<(), String> = match cli.command {
        Cmd::Load {
            target,
            mode,
            concurrency,
            duration,
            warmup,
            size,
            tsv,
        } => run_load(target, mode, concurrency, duration, warmup, size, tsv),
        Cmd::Bare {
            listen,
            model,
            workers,
        } => target::Target::parse(&listen)
            .and_then(|t| bare::serve(&t, model, workers).map_err(|e| e.to_string())),
        Cmd::Startup {
            sockhostd,
            plugin,
            listeners,
            rounds,
        } => footprint::startup(&absolute(sockhostd), &absolute(plugin), listeners, rounds)
            .map_err(|e| e.to_string()),
        Cmd::Memory {
            sockhostd,
            plugin,
            connections,
        } => footprint::memory(&absolute(sockhostd), &absolute(plugin), connections)
            .map_err(|e| e.to_string()),
        Cmd::Spawn {
            program,
            concurrency,
            duration,
            warmup,
            tsv,
        } => run_spawn(&program, concurrency, duration, warmup, tsv),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sockhost-bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_load(
    target: String,
    mode: load::Mode,
    concurrency: usize,
    duration: f64,
    warmup: f64,
    size: usize,
    tsv: bool,
) -> Result<(), String> {
    let target = target::Target::parse(&target)?;
    if (mode == load::Mode::Dgram) != target.is_dgram() {
        return Err("mode dgram goes with udp: or unixgram: targets, and only with them".into());
    }
    if concurrency == 0 || size == 0 && mode == load::Mode::Dgram {
        return Err("concurrency must be at least 1 (and size at least 1 for dgram)".into());
    }
    let plan = load::Plan {
        target,
        mode,
        concurrency,
        duration: seconds(duration)?,
        warmup: seconds(warmup)?,
        size,
    };
    let r = load::run(&plan);
    let (p50, p99) = (r.percentile_us(0.50), r.percentile_us(0.99));
    if tsv {
        println!("{:.0}\t{p50:.1}\t{p99:.1}\t{}", r.rate(), r.errors);
    } else {
        println!(
            "{:?} x{concurrency}, {size} B: {:.0} req/s, p50 {p50:.1} µs, p99 {p99:.1} µs, \
             {} requests, {} errors",
            mode,
            r.rate(),
            r.requests,
            r.errors
        );
    }
    if let Some(e) = r.first_error {
        eprintln!("first error: {e}");
    }
    Ok(())
}

fn run_spawn(
    program: &std::path::Path,
    concurrency: usize,
    duration: f64,
    warmup: f64,
    tsv: bool,
) -> Result<(), String> {
    if concurrency == 0 {
        return Err("concurrency must be at least 1".into());
    }
    let r = spawn::run(program, concurrency, seconds(warmup)?, seconds(duration)?);
    let (p50, p99) = (r.percentile_us(0.50), r.percentile_us(0.99));
    if tsv {
        println!("{:.0}\t{p50:.1}\t{p99:.1}\t{}", r.rate(), r.errors);
    } else {
        println!(
            "{} x{concurrency}: {:.0} runs/s, p50 {p50:.1} µs, p99 {p99:.1} µs, {} errors",
            program.display(),
            r.rate(),
            r.errors
        );
    }
    if let Some(e) = r.first_error {
        eprintln!("first error: {e}");
    }
    Ok(())
}
