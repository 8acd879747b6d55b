//! The matrix: {inet, inet6, unix} × {stream, dgram} × {sync, thread, fork}
//! with the probe plugin, one daemon serving all 18 listeners. Each cell
//! proves the dispatch model a user picks: fork gives a new process per
//! request (a child of the worker), thread a request thread (kept for the
//! next requests) in one process, sync serves inline in the worker; none runs in the master.
//! The same matrix with the echo plugin proves every socket kind echoes.

mod common;
use common::*;
use std::collections::HashSet;
use std::io::{Read, Write};

const FAMILIES: [(&str, &str); 3] = [("inet", "127.0.0.1:0"), ("inet6", "[::1]:0"), ("unix", "")];
const TYPES: [&str; 2] = ["stream", "dgram"];
const MIXINS: [&str; 3] = ["sync", "thread", "fork"];

/// Every cell of the matrix as a listener named `FAMILY-TYPE-MIXIN`.
fn matrix_config(stem: &str, dir: &TestDir) -> String {
    let handler = plugin(stem);
    let mut cfg = String::new();
    for (family, inet_addr) in FAMILIES {
        for ty in TYPES {
            for mixin in MIXINS {
                let name = format!("{family}-{ty}-{mixin}");
                let addr = if family == "unix" {
                    dir.join(&format!("{name}.sock")).display().to_string()
                } else {
                    inet_addr.to_string()
                };
                cfg.push_str(&listener(&name, family, ty, &addr, mixin, &handler, ""));
            }
        }
    }
    cfg
}

fn start_matrix(stem: &str) -> Daemon {
    let dir = TestDir::new("matrix");
    let cfg = matrix_config(stem, &dir);
    let path = dir.write("sockhost.toml", &cfg);
    Daemon::try_start_in(dir, path, &[])
        .unwrap_or_else(|f| panic!("start failed: {}\n{}", f.log, f.status))
}

/// (pid, ppid, tid) for `n` requests to one listener, each a new request.
fn identities(d: &Daemon, name: &str, ty: &str, n: usize) -> Vec<(i32, i32, i32)> {
    (0..n)
        .map(|_| {
            // Streams: three questions in one connection (one request).
            // Datagrams: each question is its own request.
            if ty == "stream" {
                let mut p = Probe::connect(&d.addr(name));
                let pid = p.cmd("PID").parse().expect("pid");
                let ppid = p.cmd("PPID").parse().expect("ppid");
                let tid = p.cmd("TID").parse().expect("tid");
                (pid, ppid, tid)
            } else {
                let c = Dgram::connect(&d.addr(name), &d.dir.path);
                let pid = c.cmd("PID").parse().expect("pid");
                let ppid = c.cmd("PPID").parse().expect("ppid");
                let tid = c.cmd("TID").parse().expect("tid");
                (pid, ppid, tid)
            }
        })
        .collect()
}

#[test]
fn every_family_type_and_mixin_dispatches_as_configured() {
    let d = start_matrix("sockhost_probe");
    let master = d.pid();
    let workers: HashSet<i32> = child_pids(master).into_iter().collect();
    assert_eq!(workers.len(), 18, "one worker per listener");
    for (family, _) in FAMILIES {
        for ty in TYPES {
            for mixin in MIXINS {
                let name = format!("{family}-{ty}-{mixin}");
                let ids = identities(&d, &name, ty, 3);
                for &(pid, ppid, _) in &ids {
                    assert_ne!(pid, master, "{name}: a request ran in the master");
                    if ty == "stream" {
                        match mixin {
                            "fork" => assert!(
                                workers.contains(&ppid),
                                "{name}: a fork child's parent is a worker"
                            ),
                            _ => assert!(
                                workers.contains(&pid),
                                "{name}: handled in the worker itself"
                            ),
                        }
                    }
                }
                if ty == "stream" {
                    let pids: HashSet<i32> = ids.iter().map(|i| i.0).collect();
                    match mixin {
                        "fork" => {
                            assert_eq!(pids.len(), 3, "{name}: a new process per request: {ids:?}")
                        }
                        "thread" => {
                            assert_eq!(pids.len(), 1, "{name}: one process: {ids:?}");
                            assert!(
                                ids.iter().all(|i| i.2 != i.0),
                                "{name}: not the main thread: {ids:?}"
                            );
                            // Request threads are kept for the next
                            // requests (ThreadingMixIn without a thread's
                            // start and end each time): one after the other,
                            // three requests may share one. That requests
                            // which overlap get threads of their own is
                            // threading.rs's to check.
                        }
                        _ => {
                            assert_eq!(pids.len(), 1, "{name}: one process: {ids:?}");
                            assert!(
                                ids.iter().all(|i| i.2 == i.0),
                                "{name}: inline on the main thread: {ids:?}"
                            );
                        }
                    }
                } else {
                    // Each datagram is a request: PID, PPID and TID came from
                    // three separate requests, so check per mixin.
                    match mixin {
                        "fork" => assert!(
                            workers.contains(&ids[0].1),
                            "{name}: a child of the worker: {ids:?}"
                        ),
                        "thread" => assert!(
                            workers.contains(&ids[0].0),
                            "{name}: in the worker: {ids:?}"
                        ),
                        _ => {
                            assert!(
                                workers.contains(&ids[0].0),
                                "{name}: in the worker: {ids:?}"
                            );
                            assert_eq!(
                                ids[0].0, ids[0].2,
                                "{name}: inline on the main thread: {ids:?}"
                            );
                        }
                    }
                }
            }
        }
    }
    let (status, log) = d.stop();
    assert!(status.success(), "clean stop exits 0: {status}\n{log}");
}

#[test]
fn fork_datagrams_each_run_in_a_new_process() {
    let d = start_matrix("sockhost_probe");
    for family in ["inet", "inet6", "unix"] {
        let name = format!("{family}-dgram-fork");
        let c = Dgram::connect(&d.addr(&name), &d.dir.path);
        let pids: HashSet<String> = (0..4).map(|_| c.cmd("PID")).collect();
        assert_eq!(
            pids.len(),
            4,
            "{name}: every datagram in its own child: {pids:?}"
        );
        let name = format!("{family}-dgram-thread");
        let c = Dgram::connect(&d.addr(&name), &d.dir.path);
        let worker = c.cmd("PID");
        let tids: HashSet<String> = (0..4).map(|_| c.cmd("TID")).collect();
        assert!(
            !tids.contains(&worker),
            "{name}: every datagram on a request thread, not the worker's main thread ({worker}): {tids:?}"
        );
    }
}

#[test]
fn sync_serves_one_request_at_a_time_and_thread_and_fork_do_not_wait() {
    let d = start_matrix("sockhost_probe");
    for mixin in MIXINS {
        let name = format!("inet-stream-{mixin}");
        let mut first = Probe::connect(&d.addr(&name));
        assert_eq!(first.cmd("PING"), "PONG");
        let mut second = Probe::connect(&d.addr(&name));
        second
            .stream()
            .set_timeout(Some(std::time::Duration::from_millis(400)));
        let answer = second.try_cmd("PING");
        if mixin == "sync" {
            assert!(
                answer.is_err(),
                "sync: the second client waits while the first is served"
            );
            drop(first);
            second.stream().set_timeout(Some(DEADLINE));
            let mut buf = [0u8; 5];
            second
                .stream()
                .read_exact(&mut buf)
                .expect("reply once the first client left");
            assert_eq!(&buf, b"PONG\n");
        } else {
            assert_eq!(
                answer.expect("concurrent reply"),
                "PONG",
                "{mixin}: served concurrently"
            );
        }
    }
}

#[test]
fn echo_works_on_every_socket_kind_and_mixin() {
    let d = start_matrix("sockhost_echo");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for (family, _) in FAMILIES {
        for mixin in MIXINS {
            let name = format!("{family}-stream-{mixin}");
            let mut s = Stream::connect(&d.addr(&name)).expect("connect");
            let mut w = match &s {
                Stream::Tcp(t) => Stream::Tcp(t.try_clone().expect("clone")),
                Stream::Unix(u) => Stream::Unix(u.try_clone().expect("clone")),
            };
            let data = payload.clone();
            let writer = std::thread::spawn(move || {
                w.write_all(&data).expect("send");
                w.shutdown_write();
            });
            let back = s.read_all().expect("read echo");
            writer.join().expect("writer");
            assert!(
                back == payload,
                "{name}: echoed {} of {} bytes, intact",
                back.len(),
                payload.len()
            );

            let name = format!("{family}-dgram-{mixin}");
            let c = Dgram::connect(&d.addr(&name), &d.dir.path);
            for msg in [&b"hello"[..], &[0u8, 255, 10, 13][..], &[7u8; 1400][..]] {
                c.send(msg).expect("send");
                assert_eq!(c.recv().expect("echo datagram"), msg, "{name}");
            }
        }
    }
}
