//! Test harness: start the real `sockhostd` binary on a temp-dir config and
//! talk to it over real sockets.
//!
//! Promises: every daemon is started with a deadline and killed (with its
//! workers) when the handle drops, so no test leaves a process behind;
//! listeners may bind port 0, the harness learns the real addresses from
//! the daemon's `ready:` log line; temp folders are removed on drop.
//! Plugins come from the cargo target folder: run `cargo build --workspace`
//! before `cargo test` (the README's test command does both).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The deadline for anything a test waits on.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The sockhostd binary cargo built for these tests.
pub fn sockhostd() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sockhostd"))
}

/// The folder holding the workspace's build outputs (target/debug).
pub fn target_dir() -> PathBuf {
    sockhostd()
        .parent()
        .map(Path::to_path_buf)
        .expect("binary has a parent folder")
}

/// A plugin built by the workspace: `plugin("sockhost_echo")`.
pub fn plugin(stem: &str) -> PathBuf {
    let p = target_dir().join(format!("lib{stem}.so"));
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        p.display()
    );
    p
}

/// A temp folder removed on drop.
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("sockhost-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TestDir { path }
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write file");
        p
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One `[[listener]]` table. `extra` is appended verbatim (more keys, or a
/// `[listener.config]` table).
pub fn listener(
    name: &str,
    family: &str,
    ty: &str,
    address: &str,
    mixin: &str,
    handler: &Path,
    extra: &str,
) -> String {
    format!(
        "[[listener]]\nname = \"{name}\"\nfamily = \"{family}\"\ntype = \"{ty}\"\naddress = \"{address}\"\n\
         mixin = \"{mixin}\"\nhandler = \"{}\"\n{extra}\n",
        handler.display()
    )
}

/// A running daemon. Dropping it kills the daemon and its workers.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: TestDir,
    pub config: PathBuf,
    log: Arc<Mutex<String>>,
    pub addrs: HashMap<String, String>,
}

/// How a daemon that failed to start ended.
#[derive(Debug)]
pub struct Failed {
    pub status: ExitStatus,
    pub log: String,
}

impl Daemon {
    /// Start on `config` (written to a fresh temp dir); panic if it does not
    /// become ready.
    pub fn start(config: &str) -> Daemon {
        Daemon::try_start(config)
            .unwrap_or_else(|f| panic!("daemon failed to start ({}):\n{}", f.status, f.log))
    }

    pub fn try_start(config: &str) -> Result<Daemon, Failed> {
        let dir = TestDir::new("d");
        let path = dir.write("sockhost.toml", config);
        Daemon::try_start_in(dir, path, &[])
    }

    /// Start on an existing config file inside `dir`, with extra args.
    pub fn try_start_in(dir: TestDir, config: PathBuf, args: &[&str]) -> Result<Daemon, Failed> {
        let mut cmd = Command::new(sockhostd());
        cmd.arg("-c")
            .arg(&config)
            .args(args)
            .arg("--log")
            .arg("stderr");
        Daemon::try_start_cmd(dir, config, cmd)
    }

    /// Start from a prepared command (a wrapper such as
    /// systemd-socket-activate, extra environment); stdio and the log
    /// filter are set here.
    pub fn try_start_cmd(
        dir: TestDir,
        config: PathBuf,
        mut cmd: Command,
    ) -> Result<Daemon, Failed> {
        let mut child = cmd
            .env(
                "SOCKHOST_LOG",
                std::env::var("SOCKHOST_TEST_LOG").unwrap_or_else(|_| "debug".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sockhostd");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                }
                line.clear();
            }
        });
        let mut d = Daemon {
            child: Some(child),
            dir,
            config,
            log,
            addrs: HashMap::new(),
        };
        let start = Instant::now();
        loop {
            if let Some(line) = d.log().lines().find(|l| l.contains(" ready: ")) {
                d.addrs = parse_ready(line);
                return Ok(d);
            }
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                std::thread::sleep(Duration::from_millis(50)); // let the log drain
                d.child = None;
                return Err(Failed {
                    status,
                    log: d.log(),
                });
            }
            assert!(
                start.elapsed() < DEADLINE,
                "daemon not ready within {DEADLINE:?}:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .map(|c| c.id() as i32)
            .expect("daemon running")
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Wait until the log contains `needle` (true) or the deadline passes.
    pub fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The address listener `name` is bound to, as the daemon logged it.
    pub fn addr(&self, name: &str) -> String {
        self.addrs
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no listener {name} in {:?}", self.addrs))
    }

    pub fn inet(&self, name: &str) -> SocketAddr {
        self.addr(name).parse().expect("inet address")
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// SIGTERM, then wait for exit (SIGKILL at the deadline).
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.signal(libc::SIGTERM);
        let status = self
            .wait_exit(DEADLINE)
            .expect("daemon did not stop within the deadline");
        std::thread::sleep(Duration::from_millis(50));
        (status, self.log())
    }

    /// Wait for the daemon to exit on its own.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id() as i32;
            for w in child_pids(pid) {
                // SAFETY: killing the worker groups our daemon started.
                unsafe { libc::kill(-w, libc::SIGKILL) };
                // SAFETY: as above.
                unsafe { libc::kill(w, libc::SIGKILL) };
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Direct children of `pid` (from /proc).
pub fn child_pids(pid: i32) -> Vec<i32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// `name=addr (mixin)` pairs from the `ready:` line.
fn parse_ready(line: &str) -> HashMap<String, String> {
    let list = line.split(" ready: ").nth(1).unwrap_or("");
    let list = list.split(" listeners=").next().unwrap_or(list);
    list.split(", ")
        .filter_map(|part| {
            let (name, rest) = part.split_once('=')?;
            let addr = rest.rsplit_once(" (").map_or(rest, |(a, _)| a);
            Some((name.trim().to_string(), addr.trim().to_string()))
        })
        .collect()
}

// ---- clients -----------------------------------------------------------------

/// A connected stream to any listener kind.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Connect to a daemon-logged address: `1.2.3.4:P`, `[::1]:P`, a path or `@name`.
    pub fn connect(addr: &str) -> std::io::Result<Stream> {
        let s = if let Some(name) = addr.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            let sa = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            Stream::Unix(UnixStream::connect_addr(&sa)?)
        } else if addr.starts_with('/') {
            Stream::Unix(UnixStream::connect(addr)?)
        } else {
            let sa: SocketAddr = addr.parse().map_err(std::io::Error::other)?;
            Stream::Tcp(TcpStream::connect_timeout(&sa, DEADLINE)?)
        };
        s.set_timeout(Some(DEADLINE));
        Ok(s)
    }

    pub fn set_timeout(&self, t: Option<Duration>) {
        match self {
            Stream::Tcp(s) => {
                let _ = s.set_read_timeout(t);
                let _ = s.set_write_timeout(t);
            }
            Stream::Unix(s) => {
                let _ = s.set_read_timeout(t);
                let _ = s.set_write_timeout(t);
            }
        }
    }

    pub fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }

    /// Read until EOF.
    pub fn read_all(&mut self) -> std::io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.read_to_end(&mut v)?;
        Ok(v)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A probe conversation over one stream connection.
pub struct Probe {
    reader: BufReader<Stream>,
}

impl Probe {
    pub fn connect(addr: &str) -> Probe {
        Probe {
            reader: BufReader::new(
                Stream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}")),
            ),
        }
    }

    /// Send one command line, return the reply line without its `\n`.
    pub fn cmd(&mut self, command: &str) -> String {
        self.try_cmd(command)
            .unwrap_or_else(|e| panic!("probe {command}: {e}"))
    }

    pub fn try_cmd(&mut self, command: &str) -> std::io::Result<String> {
        self.reader
            .get_mut()
            .write_all(format!("{command}\n").as_bytes())?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(line.trim_end_matches('\n').to_string())
    }

    pub fn stream(&mut self) -> &mut Stream {
        self.reader.get_mut()
    }
}

/// A datagram client for any listener kind; unix clients bind a path in
/// `dir` so the server can reply.
pub enum Dgram {
    Udp(UdpSocket, SocketAddr),
    Unix(UnixDatagram),
}

impl Dgram {
    pub fn connect(addr: &str, dir: &Path) -> Dgram {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = if addr.starts_with('/') || addr.starts_with('@') {
            let me = dir.join(format!("client-{}.sock", N.fetch_add(1, Ordering::SeqCst)));
            let _ = std::fs::remove_file(&me);
            let s = UnixDatagram::bind(&me).expect("bind unix client");
            if let Some(name) = addr.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt;
                let sa = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                    .expect("abstract");
                s.connect_addr(&sa).expect("connect abstract");
            } else {
                s.connect(addr).expect("connect unix dgram");
            }
            Dgram::Unix(s)
        } else {
            let sa: SocketAddr = addr.parse().expect("inet address");
            let local = if sa.is_ipv6() {
                "[::1]:0"
            } else {
                "127.0.0.1:0"
            };
            let s = UdpSocket::bind(local).expect("bind udp client");
            Dgram::Udp(s, sa)
        };
        d.set_timeout(Some(DEADLINE));
        d
    }

    pub fn set_timeout(&self, t: Option<Duration>) {
        let _ = match self {
            Dgram::Udp(s, _) => s.set_read_timeout(t),
            Dgram::Unix(s) => s.set_read_timeout(t),
        };
    }

    pub fn send(&self, data: &[u8]) -> std::io::Result<usize> {
        match self {
            Dgram::Udp(s, to) => s.send_to(data, to),
            Dgram::Unix(s) => s.send(data),
        }
    }

    pub fn recv(&self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        let n = match self {
            Dgram::Udp(s, _) => s.recv(&mut buf)?,
            Dgram::Unix(s) => s.recv(&mut buf)?,
        };
        buf.truncate(n);
        Ok(buf)
    }

    /// A probe command as one datagram; the reply without its `\n`.
    pub fn cmd(&self, command: &str) -> String {
        self.send(command.as_bytes()).expect("send datagram");
        let reply = self
            .recv()
            .unwrap_or_else(|e| panic!("no reply to {command}: {e}"));
        String::from_utf8_lossy(&reply)
            .trim_end_matches('\n')
            .to_string()
    }
}

/// Run `sockhostd` with `args` to completion (for --check, --help, ...).
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(sockhostd())
        .args(args)
        .env("SOCKHOST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("run sockhostd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Thread ids of a process, from /proc.
pub fn thread_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Open fds of a process, from /proc.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Children of `pid` in state Z (zombies).
pub fn zombie_children(pid: i32) -> Vec<i32> {
    child_pids(pid)
        .into_iter()
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
                .unwrap_or(false)
        })
        .collect()
}

impl Probe {
    /// A probe conversation over an already connected stream.
    pub fn from_stream(s: Stream) -> Probe {
        Probe {
            reader: BufReader::new(s),
        }
    }
}

// ---- dispatch, hook and crash helpers ---------------------------------------

/// Stop aborting test plugins from writing core files (soft limit only);
/// daemons started afterwards inherit it.
pub fn no_core_dumps() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a live local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_CORE, &mut lim);
        lim.rlim_cur = 0;
        libc::setrlimit(libc::RLIMIT_CORE, &lim);
    }
}

/// The state letter of a process (`R`, `S`, `Z`, ...), None once it is gone.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Whether `pid` has exited (gone from /proc, or a zombie nobody reaped yet).
pub fn is_dead(pid: i32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// The kernel name (`comm`) of thread `tid` of process `pid`.
pub fn comm(pid: i32, tid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

/// The live worker of daemon `master` serving listener `name`, found by its
/// process name `shd:NAME` (cut to 15 bytes, like the kernel does).
pub fn worker_of(master: i32, name: &str) -> Option<i32> {
    let mut want = format!("shd:{name}");
    want.truncate(15);
    child_pids(master)
        .into_iter()
        .find(|&w| !is_dead(w) && comm(w, w) == want)
}

/// The worker process serving listener `name` (panics with the log if none).
pub fn worker(d: &Daemon, name: &str) -> i32 {
    worker_of(d.pid(), name).unwrap_or_else(|| panic!("no worker for {name}:\n{}", d.log()))
}

/// A small deterministic generator (xorshift64), so failures reproduce.
/// The seed must not be zero.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// `len` pseudo-random bytes, NULs included.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() >> 24) as u8).collect()
    }
}

/// Six concurrent `SLEEP 300` probe clients against a listener that runs at
/// most two requests at once (`max_children`/`max_threads` = 2): every
/// client is answered, and the k-th reply (1-based) comes no sooner than
/// ceil(k/2) × 300 ms. `sample` is polled while they run; returns the
/// largest value it gave (children or threads of the worker).
pub fn six_sleepers_two_at_a_time(addr: &str, mut sample: impl FnMut() -> usize) -> usize {
    let start = Instant::now();
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let addr = addr.to_string();
            std::thread::spawn(move || (stream_cmd(&addr, "SLEEP 300"), start.elapsed()))
        })
        .collect();
    let mut most = 0;
    while clients.iter().any(|c| !c.is_finished()) {
        most = most.max(sample());
        assert!(start.elapsed() < DEADLINE, "clients not answered in time");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut times: Vec<Duration> = clients
        .into_iter()
        .map(|c| {
            let (reply, at) = c.join().expect("client thread");
            assert_eq!(reply, "SLEPT 300", "every waiting client is answered");
            at
        })
        .collect();
    times.sort();
    // Two at a time: the k-th reply (1-based) cannot come before ceil(k/2) × 300 ms.
    for (i, at) in times.iter().enumerate() {
        let floor = Duration::from_millis(300 * (i as u64 / 2 + 1));
        assert!(
            *at >= floor,
            "reply {} after {at:?} < {floor:?}: {times:?}",
            i + 1
        );
    }
    most
}

/// Poll `f` every 10 ms until it returns Some, or `within` passes.
pub fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A memory soak against an echo listener with `mixin`: four clients make
/// SOCKHOST_SOAK_REQUESTS (default 100,000) new-connection requests; the
/// worker's RSS, fd count and `what` (`count` of the worker: its threads,
/// its children) are printed every 10% and must end where they began
/// (RSS within 2 MiB). Run from `--ignored` tests with `--nocapture`.
pub fn echo_memory_soak(mixin: &str, what: &str, count: fn(i32) -> usize) {
    use sec::rss_kib;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    let total: u64 = std::env::var("SOCKHOST_SOAK_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let d = Daemon::start(&listener(
        "echo",
        "inet",
        "stream",
        "127.0.0.1:0",
        mixin,
        &plugin("sockhost_echo"),
        "",
    ));
    let pid = worker(&d, "echo");
    let addr = d.addr("echo");
    let done = std::sync::Arc::new(AtomicU64::new(0));
    let one = |addr: &str, data: &[u8]| {
        let mut s = Stream::connect(addr).expect("connect");
        std::io::Write::write_all(&mut s, data).expect("send");
        s.shutdown_write();
        assert_eq!(s.read_all().expect("echo"), data);
    };
    (0..2_000).for_each(|_| one(&addr, b"x"));
    std::thread::sleep(Duration::from_millis(300));
    let (rss0, n0, fds0) = (rss_kib(pid), count(pid), fd_count(pid));
    println!("{mixin}-mode echo worker {pid}: after 2,000 warm-up requests RSS {rss0} KiB, {n0} {what}, {fds0} fds");
    let start = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (addr, done) = (addr.clone(), done.clone());
            std::thread::spawn(move || {
                while done.fetch_add(1, Relaxed) < total {
                    one(&addr, b"ping");
                }
            })
        })
        .collect();
    let mut peak = rss0;
    let mut next = total / 10;
    while done.load(Relaxed) < total {
        let n = done.load(Relaxed);
        if n >= next {
            let rss = rss_kib(pid);
            peak = peak.max(rss);
            println!(
                "{n:>7} requests: RSS {rss} KiB, {} {what}, {} fds",
                count(pid),
                fd_count(pid)
            );
            next += total / 10;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    clients.into_iter().for_each(|c| c.join().expect("client"));
    std::thread::sleep(Duration::from_millis(300));
    let (rss1, n1, fds1) = (rss_kib(pid), count(pid), fd_count(pid));
    let secs = start.elapsed().as_secs_f64();
    println!(
        "done: {total} requests in {secs:.1} s ({:.0}/s); RSS {rss0} -> {rss1} KiB (peak {peak}), {what} {n0} -> {n1}, fds {fds0} -> {fds1}",
        total as f64 / secs
    );
    assert_eq!(fds1, fds0, "no descriptor leaked");
    assert_eq!(n1, n0, "no request {what} left behind");
    assert!(
        rss1 <= rss0 + 2048,
        "RSS grew by more than 2 MiB: {rss0} -> {rss1} KiB"
    );
}

/// No descriptor leaks in `name`'s worker: 1,000 PING requests to a probe
/// listener (a connection each for `stream`, else datagrams from one
/// client), then the worker's fd count must settle back where it was.
pub fn fds_settle_after_1000_pings(d: &Daemon, name: &str, stream: bool) {
    let w = worker(d, name);
    let before = fd_count(w);
    let addr = d.addr(name);
    if stream {
        (0..1000).for_each(|_| assert_eq!(stream_cmd(&addr, "PING"), "PONG"));
    } else {
        let c = Dgram::connect(&addr, &d.dir.path);
        (0..1000).for_each(|_| assert_eq!(c.cmd("PING"), "PONG"));
    }
    let settled = wait_for(Duration::from_secs(3), || {
        (fd_count(w) == before).then_some(())
    });
    assert!(
        settled.is_some(),
        "{name}: worker {w} had {before} fds, now {}",
        fd_count(w)
    );
}

/// One stream request to a probe listener: connect, one command, close.
pub fn stream_cmd(addr: &str, command: &str) -> String {
    Probe::connect(addr).cmd(command)
}

// ---- CLI and lifecycle helpers (cli.rs, lifecycle.rs) ------------------------

/// Helpers for the CLI and lifecycle suites, in a module of their own so
/// their names never clash with other suites' helpers.
pub mod life {
    use super::{child_pids, listener, plugin, sockhostd, Stream, DEADLINE};
    use std::collections::BTreeSet;
    use std::io::{ErrorKind, Read};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    /// One `[[listener]]` table serving the workspace's probe plugin.
    pub fn probe_listener(
        name: &str,
        family: &str,
        ty: &str,
        address: &str,
        mixin: &str,
        extra: &str,
    ) -> String {
        let probe = plugin("sockhost_probe");
        listener(name, family, ty, address, mixin, &probe, extra)
    }

    /// The daemon's worker processes: the master's direct children.
    pub fn workers_of(master: i32) -> BTreeSet<i32> {
        child_pids(master).into_iter().collect()
    }

    /// [`super::wait_for`] for a condition: true once `cond` holds, false
    /// if `within` passes first.
    pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
        super::wait_for(within, || cond().then_some(())).is_some()
    }

    /// Whether `pid` has exited: gone from /proc, or a zombie not yet reaped.
    pub fn exited(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
        }
    }

    /// Read until the peer closes the connection (EOF or a reset) and return
    /// what was read; Err if it is still open when `within` has passed.
    pub fn read_until_closed(s: &mut Stream, within: Duration) -> Result<Vec<u8>, String> {
        let start = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let left = within.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(format!(
                    "still open after {within:?} ({} bytes read)",
                    got.len()
                ));
            }
            s.set_timeout(Some(left));
            match s.read(&mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    return Ok(got)
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
    }

    /// A loopback TCP port the test holds bound (and listening) while the
    /// returned listener lives.
    pub fn hold_port() -> (std::net::TcpListener, u16) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a test port");
        let port = l.local_addr().expect("local addr").port();
        (l, port)
    }

    /// `len` deterministic pseudo-random bytes, NULs included.
    pub fn noise(seed: u64, len: usize) -> Vec<u8> {
        super::Rng(seed | 1).bytes(len)
    }

    /// Whether one line of `log` contains every needle.
    pub fn has_line(log: &str, needles: &[&str]) -> bool {
        log.lines().any(|l| needles.iter().all(|n| l.contains(n)))
    }

    /// Build plugins/c-echo/echo.c with the contract's command, into `dir`.
    pub fn build_c_echo(dir: &Path) -> PathBuf {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = dir.join("libc_echo.so");
        let st = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-I"])
            .arg(root.join("handler-sdk/include"))
            .arg(root.join("plugins/c-echo/echo.c"))
            .arg("-o")
            .arg(&out)
            .status()
            .expect("run cc");
        assert!(st.success(), "cc builds echo.c: {st}");
        out
    }

    /// Years (UTC, a day either side for the daemon's time zone) it may be now.
    pub fn plausible_years() -> Vec<i64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        [-86_400, 0, 86_400]
            .iter()
            .map(|d| civil_year((now + d).div_euclid(86_400)))
            .collect()
    }

    /// The proleptic Gregorian year of day `days` since 1970-01-01.
    pub fn civil_year(days: i64) -> i64 {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        yoe + era * 400 + i64::from(mp >= 10)
    }

    /// Whether thread `tid` of `pid` sleeps in nanosleep (its kernel wait
    /// channel); None when the kernel does not show wait channels.
    pub fn in_nanosleep(pid: i32, tid: i32) -> Option<bool> {
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/wchan")).ok()?;
        match wchan.trim() {
            "" | "0" => None,
            w => Some(w.contains("nanosleep")),
        }
    }

    /// Run `sockhostd ARGS` to completion within [`DEADLINE`], stdout and
    /// stderr going to files in `dir` (a daemonizing child keeps inherited
    /// pipes open, so pipes could block the test). Ok((status, stderr)), or
    /// Err(stderr so far) when it was still running at the deadline (it is
    /// then killed).
    pub fn run_to_files(args: &[&str], dir: &Path) -> Result<(i32, String), String> {
        let out = dir.join("cli.stdout");
        let err = dir.join("cli.stderr");
        let mut child = Command::new(sockhostd())
            .args(args)
            .env("SOCKHOST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn sockhostd");
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait().expect("wait for sockhostd") {
                let text = std::fs::read_to_string(&err).unwrap_or_default();
                return Ok((st.code().unwrap_or(-1), text));
            }
            if start.elapsed() >= DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                return Err(std::fs::read_to_string(&err).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

// ---- access, limits and hostile-client helpers (access.rs, limits.rs, hostile.rs)

pub mod py;
pub mod sec;
