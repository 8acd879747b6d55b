//! Scenarios several suites share: concurrent sleepers against a capped
//! mixin, memory soaks, fd-leak checks, polling with a deadline, and a
//! deterministic random generator.

use super::*;
use std::time::{Duration, Instant};

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
