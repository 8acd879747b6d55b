//! Request details (`set_detail`, ABI 1.2) carried from a forked request
//! child to the worker that reaps it, for the access log line.
//!
//! Why: the fork worker writes a child's access log line when it reaps it,
//! and the child's memory is gone by then. Each running child owns one
//! slot of a `MAP_SHARED` table made before any child is forked; the child
//! writes its detail there before `_exit`, the worker reads it when it
//! reaps the child and gives the slot back. Promises: a slot is owned by
//! at most one running child; a child that set no detail leaves its slot
//! empty (the worker clears it before the fork); a detail is cut at
//! [`DETAIL_MAX`] bytes on a character boundary. The slot also carries
//! the child's `exec_request` flag: the child became a program, so its
//! exit status is the program's; and its `refused` flag: the plugin's own
//! verify_request, run in the child, refused the client (`refuse_request`),
//! so the worker counts a refusal, not a request.

use super::unshared::UnsharedVec;
use crate::os::shm::{SharedSlice, ShmSafe};
use crate::plugin::DETAIL_MAX;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// One child's detail: its length, then its bytes.
#[repr(C)]
pub struct Slot {
    /// The child became a program (`exec_request`).
    exec: AtomicU8,
    /// The plugin refused the client inside the child (`refuse_request`).
    refused: AtomicU8,
    len: AtomicU32,
    bytes: [AtomicU8; DETAIL_MAX],
}

// SAFETY: only integer atomics: zero is a valid value (an empty detail),
// no pointers, and every access is an atomic load or store.
unsafe impl ShmSafe for Slot {}

/// The table of slots, and (in memory no child shares) the free ones.
pub struct Details {
    slots: SharedSlice<Slot>,
    free: UnsharedVec<u32>,
}

impl Details {
    /// Room for `cap` children at once.
    pub fn new(cap: usize) -> io::Result<Details> {
        let slots = SharedSlice::new(cap.max(1))?;
        let mut free = UnsharedVec::with_capacity(cap.max(1))?;
        for i in (0..cap.max(1)).rev() {
            let _ = free.push(u32::try_from(i).unwrap_or(u32::MAX));
        }
        Ok(Details { slots, free })
    }

    /// A cleared slot for the next child; None when every slot is owned
    /// (not reachable below `max_children`).
    pub fn take(&mut self) -> Option<u32> {
        let i = self.free.pop()?;
        if let Some(s) = self.slots.get(i as usize) {
            s.len.store(0, Ordering::Relaxed);
            s.exec.store(0, Ordering::Relaxed);
            s.refused.store(0, Ordering::Relaxed);
        }
        Some(i)
    }

    /// The child's side: the flag `exec_request` sets in slot `i`.
    pub fn exec_flag(&self, i: u32) -> Option<&AtomicU8> {
        self.slots.get(i as usize).map(|s| &s.exec)
    }

    /// The child's side: the plugin refused its client (`refuse_request`).
    pub fn refused(&self, i: u32) {
        if let Some(s) = self.slots.get(i as usize) {
            s.refused.store(1, Ordering::Release);
        }
    }

    /// The worker's side, before `release`: whether the child refused its
    /// client.
    pub fn was_refused(&self, i: u32) -> bool {
        self.slots
            .get(i as usize)
            .is_some_and(|s| s.refused.load(Ordering::Acquire) != 0)
    }

    /// The child's side: write `text` into slot `i`.
    pub fn write(&self, i: u32, text: &str) {
        let Some(s) = self.slots.get(i as usize) else {
            return;
        };
        let mut n = text.len().min(DETAIL_MAX);
        while !text.is_char_boundary(n) {
            n -= 1;
        }
        for (cell, b) in s.bytes.iter().zip(&text.as_bytes()[..n]) {
            cell.store(*b, Ordering::Relaxed);
        }
        s.len.store(n as u32, Ordering::Release);
    }

    /// The worker's side, once the child is reaped: whether it became a
    /// program, and what it wrote (None when nothing); the slot is free
    /// again.
    pub fn release(&mut self, i: u32) -> (bool, Option<String>) {
        let Some(s) = self.slots.get(i as usize) else {
            return (false, None);
        };
        let exec = s.exec.load(Ordering::Acquire) != 0;
        let n = (s.len.load(Ordering::Acquire) as usize).min(DETAIL_MAX);
        let _ = self.free.push(i);
        if n == 0 {
            return (exec, None);
        }
        let bytes: Vec<u8> = s.bytes[..n]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        (exec, Some(String::from_utf8_lossy(&bytes).into_owned()))
    }
}
