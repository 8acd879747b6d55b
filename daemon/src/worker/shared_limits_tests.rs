//! Unit tests of the shared per-source table: counts shared across a
//! fork, a dead process's slots given back, the shared rate, full sets.

use super::*;
use std::net::IpAddr;

fn ip(n: u32) -> Source {
    Source::Ip(IpAddr::from(n.to_be_bytes()))
}

fn fork_and_wait(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the test's child only touches the shared table and exits.
    match unsafe { libc::fork() } {
        0 => {
            let code = child();
            // SAFETY: ends the child without running the test harness.
            unsafe { libc::_exit(code) }
        }
        -1 => panic!("fork: {}", io::Error::last_os_error()),
        pid => {
            let mut status = 0;
            // SAFETY: waits for the child just forked.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            libc::WEXITSTATUS(status)
        }
    }
}

#[test]
fn processes_share_one_count_per_source() {
    let t = SharedTable::new(4).expect("map");
    let me = t.claim().expect("a column");
    let now = Instant::now();
    for _ in 0..2 {
        assert!(matches!(
            t.admit(me, &ip(1), None, Some(2), now),
            Ok(Some(_))
        ));
    }
    let refused = fork_and_wait(|| {
        let Some(c) = t.claim() else { return 9 };
        match t.admit(c, &ip(1), None, Some(2), Instant::now()) {
            Err(Exceeded::Connections(2)) => 0,
            _ => 1,
        }
    });
    assert_eq!(refused, 0, "the other process sees both slots");
    assert_eq!(t.open(&ip(1)), 2);
}

#[test]
fn a_dead_process_slots_are_given_back() {
    let t = SharedTable::new(4).expect("map");
    let code = fork_and_wait(|| {
        let Some(c) = t.claim() else { return 9 };
        for _ in 0..3 {
            if t.admit(c, &ip(7), None, Some(5), Instant::now()).is_err() {
                return 1;
            }
        }
        0 // exits holding three slots
    });
    assert_eq!(code, 0);
    assert_eq!(t.open(&ip(7)), 3);
    let me = t.claim().expect("claim reaps the dead column");
    assert_eq!(t.open(&ip(7)), 0);
    let slot = t
        .admit(me, &ip(7), None, Some(1), Instant::now())
        .expect("room")
        .expect("slot");
    t.release(me, slot, true);
    assert_eq!(t.open(&ip(7)), 0);
}

#[test]
fn the_rate_is_shared_too() {
    let t = SharedTable::new(2).expect("map");
    let me = t.claim().expect("column");
    let now = Instant::now();
    for _ in 0..3 {
        assert!(t.admit(me, &ip(2), Some((3.0, 3.0)), None, now).is_ok());
    }
    assert_eq!(
        t.admit(me, &ip(2), Some((3.0, 3.0)), None, now),
        Err(Exceeded::Rate)
    );
    let later = now + Duration::from_millis(400);
    assert!(t.admit(me, &ip(2), Some((3.0, 3.0)), None, later).is_ok());
}

#[test]
fn a_full_set_of_open_sources_refuses_a_new_one_in_that_set() {
    let t = SharedTable::new(2).expect("map");
    let me = t.claim().expect("column");
    let now = Instant::now();
    let mut n = 0u32;
    let mut full = false;
    while n < 200_000 && !full {
        full = t.admit(me, &ip(n), None, Some(1), now) == Err(Exceeded::TableFull);
        n += 1;
    }
    assert!(full, "a set fills once WAYS open sources hash into it");
    assert!(n as usize > WAYS);
}
