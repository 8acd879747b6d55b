//! What sockhostd costs besides throughput: start-up and reload latency,
//! and memory (master, each kind of worker idle, and per idle connection in
//! thread mode).
//!
//! Owns starting a real `sockhostd` on a generated config in a temp folder
//! and reading its log and /proc. Promises: only loopback listeners (port 0);
//! every daemon it starts is stopped (SIGTERM, then SIGKILL at a deadline)
//! before the command returns, and the temp folder is removed; every wait
//! has a deadline.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// The deadline for any single wait on the daemon.
const DEADLINE: Duration = Duration::from_secs(30);

/// A temp folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> io::Result<TempDir> {
        let p = std::env::temp_dir().join(format!("sockhost-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running sockhostd whose log lines arrive on a channel.
struct Daemon {
    child: Child,
    lines: Receiver<String>,
}

impl Daemon {
    fn start(sockhostd: &Path, config: &Path) -> io::Result<Daemon> {
        let mut child = Command::new(sockhostd)
            .arg("-c")
            .arg(config)
            .args(["--log", "stderr"])
            .env("SOCKHOST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("no stderr pipe"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Daemon { child, lines })
    }

    /// Wait for a log line containing `needle`; Err on `failure` or timeout.
    fn wait_line(&self, needle: &str, failure: &str) -> io::Result<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .map_err(|_| io::Error::other(format!("no `{needle}` in the log in time")))?;
            if line.contains(needle) {
                return Ok(line);
            }
            if line.contains(failure) {
                return Err(io::Error::other(line));
            }
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling the child this struct started.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// SIGTERM, wait up to the deadline, then SIGKILL.
    fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listener(name: &str, ty: &str, mixin: &str, handler: &Path, extra: &str) -> String {
    format!(
        "[[listener]]\nname = \"{name}\"\nfamily = \"inet\"\ntype = \"{ty}\"\n\
         address = \"127.0.0.1:0\"\nmixin = \"{mixin}\"\nhandler = \"{}\"\n{extra}\n",
        handler.display()
    )
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Time exec → ready, and SIGHUP → new generation ready, with `listeners`
/// listeners, over `rounds` daemons (each reloaded `rounds` times).
pub fn startup(sockhostd: &Path, plugin: &Path, listeners: usize, rounds: usize) -> io::Result<()> {
    let dir = TempDir::new("startup")?;
    let config = dir.0.join("sockhost.toml");
    let write = |generation: usize| -> io::Result<()> {
        let mut text = String::new();
        for i in 0..listeners {
            let extra = format!("[listener.config]\ngeneration = {generation}\n");
            text.push_str(&listener(
                &format!("l{i}"),
                "stream",
                "thread",
                plugin,
                &extra,
            ));
        }
        std::fs::write(&config, text)
    };
    let (mut starts, mut reloads) = (Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        write(0)?;
        let t0 = Instant::now();
        let d = Daemon::start(sockhostd, &config)?;
        let ready = d.wait_line(" ready: ", "ERROR");
        starts.push(t0.elapsed().as_secs_f64() * 1000.0);
        if let Err(e) = ready {
            d.stop();
            return Err(e);
        }
        for generation in 1..=rounds.max(1) {
            write(round * 100 + generation)?;
            let t0 = Instant::now();
            d.signal(libc::SIGHUP);
            let done = d.wait_line("reload done", "reload failed");
            reloads.push(t0.elapsed().as_secs_f64() * 1000.0);
            if let Err(e) = done {
                d.stop();
                return Err(e);
            }
        }
        d.stop();
    }
    println!("| {listeners} listeners (thread, echo) | median | min | max | runs |");
    println!("| --- | --- | --- | --- | --- |");
    for (what, v) in [
        ("exec → ready", &mut starts),
        ("SIGHUP → new generation ready", &mut reloads),
    ] {
        let (min, max) = (
            v.iter().cloned().fold(f64::INFINITY, f64::min),
            v.iter().cloned().fold(0.0, f64::max),
        );
        let n = v.len();
        println!(
            "| {what} | {:.1} ms | {min:.1} ms | {max:.1} ms | {n} |",
            median(v)
        );
    }
    Ok(())
}

/// Resident and proportional set size of a process, in KiB.
#[derive(Clone, Copy, Debug, Default)]
struct Mem {
    rss: u64,
    pss: u64,
    vsz: u64,
    threads: u64,
}

fn mem_of(pid: i32) -> Mem {
    let field = |text: &str, key: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l[key.len()..].split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Mem {
        rss: field(&status, "VmRSS:"),
        pss: field(&rollup, "Pss:"),
        vsz: field(&status, "VmSize:"),
        threads: field(&status, "Threads:"),
    }
}

/// The workers of `master`, by listener name (from their `shd:NAME` comm).
fn workers_of(master: i32) -> HashMap<String, i32> {
    let kids = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap_or_default();
    kids.split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .filter_map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let name = comm.trim_end().strip_prefix("shd:")?.to_string();
            Some((name, pid))
        })
        .collect()
}

/// `name=addr (mixin)` pairs from the daemon's ready line.
fn addresses(ready: &str) -> HashMap<String, String> {
    let list = ready.split(" ready: ").nth(1).unwrap_or("");
    list.split(", ")
        .filter_map(|part| {
            let (name, rest) = part.split_once('=')?;
            let addr = rest.split_once(' ').map_or(rest, |(a, _)| a);
            Some((name.trim().to_string(), addr.trim().to_string()))
        })
        .collect()
}

/// Raise this process's open-file limit to its hard limit.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a live local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Memory of the master and of each kind of worker idle, then of the
/// thread worker holding `connections` idle connections.
pub fn memory(sockhostd: &Path, plugin: &Path, connections: usize) -> io::Result<()> {
    raise_nofile();
    let dir = TempDir::new("memory")?;
    let config = dir.0.join("sockhost.toml");
    let threads = format!(
        "max_threads = {}\nrequest_queue_size = 4096\n",
        connections + 16
    );
    let text = [
        listener("sync", "stream", "sync", plugin, ""),
        listener("thread", "stream", "thread", plugin, &threads),
        listener("fork", "stream", "fork", plugin, ""),
        listener("udp", "dgram", "sync", plugin, ""),
    ]
    .concat();
    std::fs::write(&config, text)?;
    let d = Daemon::start(sockhostd, &config)?;
    let outcome = measure(&d, connections);
    d.stop();
    outcome
}

fn measure(d: &Daemon, connections: usize) -> io::Result<()> {
    let ready = d.wait_line(" ready: ", "ERROR")?;
    std::thread::sleep(Duration::from_millis(300));
    let workers = workers_of(d.pid());
    let addrs = addresses(&ready);
    println!("| process | RSS | PSS | threads |");
    println!("| --- | --- | --- | --- |");
    let row =
        |what: &str, m: Mem| println!("| {what} | {} KiB | {} KiB | {} |", m.rss, m.pss, m.threads);
    row("master", mem_of(d.pid()));
    for (name, what) in [
        ("sync", "worker, sync (tcp)"),
        ("thread", "worker, thread (tcp)"),
        ("fork", "worker, fork (tcp)"),
        ("udp", "worker, sync (udp)"),
    ] {
        if let Some(&pid) = workers.get(name) {
            row(what, mem_of(pid));
        }
    }
    let (Some(&pid), Some(addr)) = (workers.get("thread"), addrs.get("thread")) else {
        return Err(io::Error::other("no thread worker found"));
    };
    let before = mem_of(pid);
    let t0 = Instant::now();
    let mut held = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut s = TcpStream::connect(addr.as_str())?;
        s.set_read_timeout(Some(DEADLINE))?;
        // One echoed byte proves the request thread is running.
        s.write_all(b"x")?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        held.push(s);
    }
    let opened = t0.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let after = mem_of(pid);
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / connections as f64;
    row(
        &format!("worker, thread, {connections} idle connections"),
        after,
    );
    println!();
    println!(
        "per idle connection (thread mode): RSS {:.1} KiB, PSS {:.1} KiB, virtual {:.0} KiB; \
         {connections} connections opened in {:.2} s",
        per(after.rss, before.rss),
        per(after.pss, before.pss),
        per(after.vsz, before.vsz),
        opened.as_secs_f64()
    );
    drop(held);
    Ok(())
}
