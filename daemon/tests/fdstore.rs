//! The service manager's fd store, with the test playing systemd: it owns
//! the NOTIFY_SOCKET, keeps the fds that arrive with `FDSTORE=1` (by their
//! `FDNAME=`), and starts the next daemon with them as `LISTEN_FDS` at fd
//! 3.., `LISTEN_FDNAMES` and `LISTEN_PID` (the child's own pid, set by a
//! `sh` that execs the daemon). A client opening a new connection per
//! request runs through the restart: none may fail, and the listening
//! socket (its inode) is the same before and after. A reload that removes
//! or rebinds a listener takes its socket out of the store.

mod common;
use common::*;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::{BufRead, BufReader, IoSliceMut, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One notification, with the fds that came along (SCM_RIGHTS).
struct Msg {
    text: String,
    fds: Vec<OwnedFd>,
}

impl Msg {
    fn has(&self, line: &str) -> bool {
        self.text.lines().any(|l| l == line)
    }

    fn fdname(&self) -> Option<&str> {
        self.text.lines().find_map(|l| l.strip_prefix("FDNAME="))
    }
}

/// The test's service manager: a notify socket and the fd store.
struct Manager {
    sock: UnixDatagram,
    path: PathBuf,
    store: Vec<(String, OwnedFd)>,
}

impl Manager {
    fn new(dir: &Path) -> Manager {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        Manager {
            sock,
            path,
            store: Vec::new(),
        }
    }

    fn recv(&self) -> Option<Msg> {
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 8]);
        let msg = recvmsg::<()>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .ok()?;
        let mut fds = Vec::new();
        for c in msg.cmsgs().expect("control messages fit") {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: SCM_RIGHTS just gave this process these fds.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        let n = msg.bytes;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        Some(Msg { text, fds })
    }

    /// Every message up to and including the first with `line`; FDSTORE=1
    /// ones go into the store (one fd and a name each), FDSTOREREMOVE=1
    /// ones empty it of that name, as systemd does.
    fn until(&mut self, line: &str) -> Vec<Msg> {
        let start = Instant::now();
        let mut seen = Vec::new();
        while start.elapsed() < DEADLINE {
            let Some(mut m) = self.recv() else { continue };
            if m.has("FDSTORE=1") {
                assert_eq!(m.fds.len(), 1, "one fd per FDSTORE=1: {}", m.text);
                let name = m.fdname().expect("FDSTORE=1 carries FDNAME=").to_string();
                let fd = m.fds.remove(0);
                self.store.push((name, fd));
            }
            if m.has("FDSTOREREMOVE=1") {
                let name = m.fdname().expect("FDSTOREREMOVE=1 carries FDNAME=");
                self.store.retain(|(n, _)| n != name);
            }
            let done = m.has(line);
            seen.push(m);
            if done {
                return seen;
            }
        }
        let texts: Vec<&str> = seen.iter().map(|m| m.text.as_str()).collect();
        panic!("no notify message with {line} within the deadline; saw {texts:?}");
    }

    fn stored(&self, name: &str) -> &OwnedFd {
        self.store
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, fd)| fd)
            .unwrap_or_else(|| panic!("{name} is not in the store"))
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.store.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        names
    }
}

fn inode(fd: &OwnedFd) -> u64 {
    nix::sys::stat::fstat(fd).expect("fstat").st_ino
}

/// The socket inodes a process holds, from /proc/PID/fd (socket:[INODE]).
fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|t| {
            let t = t.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The daemon, started the way the service manager starts it: `fds` at
/// 3.., named, with LISTEN_PID the daemon's own pid.
fn start(config: &Path, notify: &Path, fds: &[(String, &OwnedFd)]) -> Daemon {
    // Copies above the target range, so no dup2 below overwrites a source.
    let high: Vec<OwnedFd> = fds
        .iter()
        .map(|(_, fd)| {
            // SAFETY: F_DUPFD_CLOEXEC on an fd this test owns returns a new
            // fd (or -1, checked).
            let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 64) };
            assert!(n >= 0, "dup: {}", std::io::Error::last_os_error());
            // SAFETY: n was just created and is owned by nobody else.
            unsafe { OwnedFd::from_raw_fd(n) }
        })
        .collect();
    let raw: Vec<RawFd> = high.iter().map(|f| f.as_raw_fd()).collect();
    let names: Vec<&str> = fds.iter().map(|(n, _)| n.as_str()).collect();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\""])
        .arg(sockhostd())
        .arg("-c")
        .arg(config)
        .args(["--log", "stderr"])
        .env("NOTIFY_SOCKET", notify)
        .env_remove("LISTEN_PID");
    if !fds.is_empty() {
        cmd.env("LISTEN_FDS", fds.len().to_string())
            .env("LISTEN_FDNAMES", names.join(":"));
    }
    // SAFETY: between fork and exec the hook only calls dup2 (async-signal
    // safe) on fds the parent keeps open until spawn returns; dup2 clears
    // close-on-exec on the target, so fds 3.. survive the exec.
    unsafe {
        cmd.pre_exec(move || {
            for (i, &fd) in raw.iter().enumerate() {
                if libc::dup2(fd, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let d = Daemon::try_start_cmd(TestDir::new("fdstore-run"), config.to_path_buf(), cmd)
        .unwrap_or_else(|f| panic!("{}\n{}", f.status, f.log));
    drop(high);
    d
}

/// A client opening a new TCP connection per `PING`, until told to stop
/// (or 60 s, or 200,000 requests). Counts answers; keeps every failure.
struct Client {
    ok: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    /// The longest request (one that waited in the kernel's queue while
    /// no daemon ran).
    slowest: Arc<Mutex<Duration>>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Client {
    fn start(addr: String) -> Client {
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let slowest = Arc::new(Mutex::new(Duration::ZERO));
        let (o, f, s, w) = (ok.clone(), failures.clone(), stop.clone(), slowest.clone());
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut n = 0;
            while !s.load(Ordering::Relaxed)
                && start.elapsed() < Duration::from_secs(60)
                && n < 200_000
            {
                n += 1;
                let t0 = Instant::now();
                let result = ping(&addr);
                let took = t0.elapsed();
                if let Ok(mut max) = w.lock() {
                    *max = (*max).max(took);
                }
                match result {
                    Ok(()) => o.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        f.lock().expect("lock").push(e);
                        0
                    }
                };
            }
        });
        Client {
            ok,
            failures,
            slowest,
            stop,
            thread,
        }
    }

    fn served(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Wait until `more` requests beyond now were answered.
    fn wait_more(&self, more: usize) {
        let want = self.served() + more;
        assert!(
            wait_for(DEADLINE, || (self.served() >= want).then_some(())).is_some(),
            "the client got no answers: {:?}",
            self.failures.lock().expect("lock")
        );
    }

    fn finish(self) -> (usize, Vec<String>, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("client thread");
        let failures = self.failures.lock().expect("lock").clone();
        let slowest = *self.slowest.lock().expect("lock");
        (self.ok.load(Ordering::Relaxed), failures, slowest)
    }
}

fn ping(addr: &str) -> Result<(), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(DEADLINE))
        .map_err(|e| e.to_string())?;
    s.write_all(b"PING\n").map_err(|e| format!("write: {e}"))?;
    let mut line = String::new();
    BufReader::new(&s)
        .read_line(&mut line)
        .map_err(|e| format!("read: {e}"))?;
    if line == "PONG\n" {
        Ok(())
    } else {
        Err(format!("answer {line:?}"))
    }
}

fn probe(name: &str, family: &str, address: &str) -> String {
    let so = plugin("sockhost_probe");
    listener(name, family, "stream", address, "thread", &so, "")
}

// A restart with the stored sockets refuses no connection and serves on the very same socket.
#[test]
fn restart_takes_the_stored_sockets_back_and_refuses_no_connection() {
    let dir = TestDir::new("fdstore");
    let usock = dir.join("u.sock");
    let mut cfg = probe("probe", "inet", "127.0.0.1:0");
    cfg.push_str(&probe("usock", "unix", &usock.display().to_string()));
    let config = dir.write("sockhost.toml", &cfg);
    let mut manager = Manager::new(&dir.path);

    let first = start(&config, &manager.path, &[]);
    manager.until("READY=1");
    assert_eq!(manager.names(), ["probe", "usock"], "both sockets stored");
    let ino = inode(manager.stored("probe"));
    assert!(
        socket_inodes(first.pid()).contains(&ino),
        "the stored fd is the daemon's listening socket"
    );
    let addr = first.addr("probe");
    let client = Client::start(addr.clone());
    client.wait_more(20);

    let (status, log) = first.stop();
    assert!(status.success(), "{log}");
    assert!(usock.exists(), "a stored unix socket keeps its file: {log}");
    let served_by_first = client.served();
    // No daemon at all for a while: the kernel queues the connections.
    std::thread::sleep(Duration::from_millis(300));

    // A stored socket whose listener left the config: closed, removed.
    let stray = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let stray = OwnedFd::from(stray);
    let mut fds: Vec<(String, &OwnedFd)> = manager
        .store
        .iter()
        .map(|(n, fd)| (n.clone(), fd))
        .collect();
    fds.push(("gone".to_string(), &stray));
    let second = start(&config, &manager.path, &fds);
    let seen = manager.until("READY=1");
    client.wait_more(200);
    let (served, failures, slowest) = client.finish();

    let log = second.log();
    for name in ["probe", "usock"] {
        let tag = format!("listener={name}");
        assert!(
            log.lines()
                .any(|l| l.contains("using the inherited socket") && l.contains(&tag)),
            "{name} takes its stored socket back: {log}"
        );
    }
    assert_eq!(second.addr("probe"), addr, "same address");
    assert!(
        socket_inodes(second.pid()).contains(&ino),
        "the new daemon serves on the very socket the old one bound (inode {ino})"
    );
    assert!(
        seen.iter()
            .any(|m| m.has("FDSTOREREMOVE=1") && m.fdname() == Some("gone")),
        "the stray stored socket leaves the store"
    );
    assert!(
        !seen.iter().any(|m| m.has("FDSTORE=1")),
        "inherited sockets are in the store already"
    );
    assert!(log.contains("matches no listener: name `gone`"), "{log}");
    let mut p = Probe::connect(&usock.display().to_string());
    assert_eq!(p.cmd("LISTENER"), "usock");
    assert!(
        failures.is_empty(),
        "{} failed of {}: {failures:?}",
        failures.len(),
        served + failures.len()
    );
    assert!(served > served_by_first, "served after the restart too");
    assert!(
        slowest >= Duration::from_millis(300),
        "a request waited in the queue through the gap: {slowest:?}"
    );
    eprintln!(
        "{served} requests across the restart, 0 failed; {served_by_first} before it; \
         the slowest (queued while no daemon ran) took {slowest:?}"
    );
    drop(p);
    let (status, log) = second.stop();
    assert!(status.success(), "{log}");
}

// A reload takes a removed listener's socket out of the store and replaces a rebound one's.
#[test]
fn reload_removes_and_replaces_stored_sockets() {
    let dir = TestDir::new("fdstore-reload");
    let mut cfg = probe("keep", "inet", "127.0.0.1:0");
    cfg.push_str(&probe("gone", "inet", "127.0.0.1:0"));
    cfg.push_str(&probe("moved", "inet", "127.0.0.1:0"));
    let config = dir.write("sockhost.toml", &cfg);
    let mut manager = Manager::new(&dir.path);
    let d = start(&config, &manager.path, &[]);
    manager.until("READY=1");
    assert_eq!(manager.names(), ["gone", "keep", "moved"]);

    let port = life::hold_port().1;
    let mut cfg = probe("keep", "inet", "127.0.0.1:0");
    cfg.push_str(&probe("moved", "inet", &format!("127.0.0.1:{port}")));
    std::fs::write(&config, cfg).expect("rewrite the config");
    d.signal(libc::SIGHUP);
    manager.until("RELOADING=1");
    let seen = manager.until("READY=1");
    assert!(d.wait_log("reload done", DEADLINE), "{}", d.log());
    let at = |what: &str, name: &str| {
        seen.iter()
            .position(|m| m.has(what) && m.fdname() == Some(name))
            .unwrap_or_else(|| panic!("no {what} for {name}"))
    };
    at("FDSTOREREMOVE=1", "gone");
    assert!(
        at("FDSTOREREMOVE=1", "moved") < at("FDSTORE=1", "moved"),
        "the old socket is removed before the new one is stored"
    );
    assert_eq!(manager.names(), ["keep", "moved"]);
    let moved = socket2::SockRef::from(manager.stored("moved"));
    let local = moved.local_addr().expect("local address");
    assert_eq!(local.as_socket().map(|a| a.port()), Some(port));
    assert!(
        !seen.iter().any(|m| m.fdname() == Some("keep")),
        "a kept listener's socket stays as it is"
    );
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

// A stored unix socket whose file was deleted, and a stored socket of the wrong type, are replaced.
#[test]
fn unusable_stored_sockets_are_closed_removed_and_bound_anew() {
    let dir = TestDir::new("fdstore-unusable");
    let usock = dir.join("u.sock");
    let mut cfg = probe("usock", "unix", &usock.display().to_string());
    cfg.push_str(&probe("probe", "inet", "127.0.0.1:0"));
    let config = dir.write("sockhost.toml", &cfg);
    let mut manager = Manager::new(&dir.path);
    let first = start(&config, &manager.path, &[]);
    manager.until("READY=1");
    let (status, log) = first.stop();
    assert!(status.success(), "{log}");
    std::fs::remove_file(&usock).expect("the stored socket's file is there");
    let old = inode(manager.stored("usock"));
    let dgram = OwnedFd::from(std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"));
    let fds = vec![
        ("usock".to_string(), manager.stored("usock")),
        ("probe".to_string(), &dgram),
    ];
    let second = start(&config, &manager.path, &fds);
    let seen = manager.until("READY=1");
    let at = |what: &str, name: &str| {
        seen.iter()
            .position(|m| m.has(what) && m.fdname() == Some(name))
            .unwrap_or_else(|| panic!("no {what} for {name}"))
    };
    for name in ["usock", "probe"] {
        assert!(
            at("FDSTOREREMOVE=1", name) < at("FDSTORE=1", name),
            "{name}: the unusable socket leaves the store, the new one enters it"
        );
    }
    let log = second.log();
    assert!(log.contains("is gone; binding anew"), "{log}");
    assert!(log.contains("it is not a stream socket"), "{log}");
    assert_ne!(inode(manager.stored("usock")), old, "a new socket");
    assert_eq!(
        Probe::connect(&usock.display().to_string()).cmd("LISTENER"),
        "usock"
    );
    assert_eq!(Probe::connect(&second.addr("probe")).cmd("PING"), "PONG");
    let (status, log) = second.stop();
    assert!(status.success(), "{log}");
}
