//! `UnsharedVec`: a fixed-capacity vector in memory that forked children
//! never get (`MADV_DONTFORK`), for the fork worker's own bookkeeping.
//!
//! Why: a fork marks every page the worker shares with the new child
//! copy-on-write, so each page the worker writes while children run costs
//! a page fault and a 4 KiB copy. Recording and reaping children (and
//! keeping spare request buffers) in ordinary heap memory did that on
//! every request. A mapping marked `MADV_DONTFORK` is simply absent from
//! the child, so the worker writes it at full speed.
//!
//! Promises: capacity is fixed at creation and the memory never moves;
//! `push` on a full vector hands the value back; every element is dropped
//! once (when removed, or with the vector). Contract for users: a forked
//! child must not touch the vector or its elements' inline fields (they
//! are not mapped there); it may use heap memory the elements point to.

use std::io;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;

pub struct UnsharedVec<T> {
    /// The mapping: the length (a `usize`) at offset 0, elements from
    /// `first`. The length lives in the mapping too, so a push or removal
    /// writes no page a child shares.
    map: NonNull<u8>,
    map_len: usize,
    first: usize,
    cap: usize,
    _owns: PhantomData<T>,
}

impl<T> UnsharedVec<T> {
    /// Room for `cap` elements (at least one).
    pub fn with_capacity(cap: usize) -> io::Result<UnsharedVec<T>> {
        let cap = cap.max(1);
        let first = size_of::<usize>().next_multiple_of(align_of::<T>().max(1));
        let bytes = size_of::<T>()
            .checked_mul(cap)
            .and_then(|b| b.checked_add(first))
            .ok_or_else(|| io::Error::other("table size overflows"))?;
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let map_len = bytes.next_multiple_of(page);
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // affected. It is zero-filled, so the length starts at 0.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: advising on the mapping just made, whole pages.
        if unsafe { libc::madvise(ptr, map_len, libc::MADV_DONTFORK) } != 0 {
            let err = io::Error::last_os_error();
            // SAFETY: unmapping what we mapped; nothing points into it.
            unsafe { libc::munmap(ptr, map_len) };
            return Err(err);
        }
        let map =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(UnsharedVec {
            map,
            map_len,
            first,
            cap,
            _owns: PhantomData,
        })
    }

    fn len_ptr(&self) -> *mut usize {
        self.map.as_ptr().cast::<usize>()
    }

    fn base(&self) -> *mut T {
        // SAFETY: `first` is inside the mapping (computed in with_capacity)
        // and aligned for T.
        unsafe { self.map.as_ptr().add(self.first).cast::<T>() }
    }

    pub fn len(&self) -> usize {
        // SAFETY: the length slot is mapped, aligned and initialised.
        unsafe { *self.len_ptr() }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append `value`, or hand it back when the vector is full.
    pub fn push(&mut self, value: T) -> Result<(), T> {
        let len = self.len();
        if len == self.cap {
            return Err(value);
        }
        // SAFETY: len < cap, so slot `len` is inside the mapping and not
        // initialised; it becomes part of the vector as the length grows.
        unsafe {
            self.base().add(len).write(value);
            *self.len_ptr() = len + 1;
        }
        Ok(())
    }

    /// Remove and return the last element.
    pub fn pop(&mut self) -> Option<T> {
        let len = self.len().checked_sub(1)?;
        // SAFETY: slot `len` was initialised; shrinking the length first
        // leaves it outside the vector, read out exactly once.
        unsafe {
            *self.len_ptr() = len;
            Some(self.base().add(len).read())
        }
    }

    /// Remove element `i`, moving the last one into its place.
    pub fn swap_remove(&mut self, i: usize) -> Option<T> {
        let len = self.len();
        if i >= len {
            return None;
        }
        // SAFETY: i and len-1 are initialised slots; the removed value is
        // read out once, the last one moved into its place (or it is the
        // last), and the length shrinks by one.
        unsafe {
            let out = self.base().add(i).read();
            if i != len - 1 {
                self.base().add(i).write(self.base().add(len - 1).read());
            }
            *self.len_ptr() = len - 1;
            Some(out)
        }
    }

    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the first len slots are initialised and stay put.
        unsafe { std::slice::from_raw_parts(self.base(), self.len()) }
    }
}

impl<T> Drop for UnsharedVec<T> {
    fn drop(&mut self) {
        while self.pop().is_some() {}
        // SAFETY: unmapping our own mapping; no element is left in it.
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.map_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::UnsharedVec;
    use std::rc::Rc;

    #[test]
    fn push_pop_swap_remove_and_drop_each_element_once() {
        let counted = Rc::new(());
        let mut v = UnsharedVec::with_capacity(3).expect("mmap");
        for _ in 0..3 {
            assert!(v.push(Rc::clone(&counted)).is_ok());
        }
        assert!(v.push(Rc::clone(&counted)).is_err(), "full: handed back");
        assert_eq!(Rc::strong_count(&counted), 4, "3 kept + ours");
        assert!(v.swap_remove(0).is_some());
        assert!(v.swap_remove(5).is_none());
        assert_eq!(v.len(), 2);
        assert!(v.pop().is_some());
        assert_eq!(Rc::strong_count(&counted), 2);
        drop(v);
        assert_eq!(Rc::strong_count(&counted), 1, "the rest dropped with it");
    }

    #[test]
    fn swap_remove_moves_the_last_into_the_gap() {
        let mut v = UnsharedVec::with_capacity(4).expect("mmap");
        for n in [10, 20, 30, 40] {
            assert!(v.push(n).is_ok());
        }
        assert_eq!(v.swap_remove(1), Some(20));
        assert_eq!(v.as_slice(), &[10, 40, 30]);
    }

    #[test]
    fn a_forked_child_does_not_have_the_memory() {
        let mut v = UnsharedVec::with_capacity(1).expect("mmap");
        assert!(v.push(7u64).is_ok());
        let addr = v.as_slice().as_ptr() as usize;
        // SAFETY: the child (of a multi-threaded test process) calls only
        // mincore(2) and _exit(2), which take no locks.
        let child = unsafe { libc::fork() };
        if child == 0 {
            // In the child: the page must be absent from our mappings.
            let mapped = mapped_in_self(addr);
            // SAFETY: ending the child at once.
            unsafe { libc::_exit(if mapped { 1 } else { 0 }) }
        }
        let mut status = 0;
        // SAFETY: waiting for our own child into a live int.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child has no such mapping (status {status:#x})"
        );
        assert_eq!(v.as_slice(), &[7], "the parent keeps it");
    }

    /// Whether `addr` is inside a mapping of this process, asked with
    /// mincore(2), which fails with ENOMEM for unmapped addresses and
    /// needs no allocation.
    fn mapped_in_self(addr: usize) -> bool {
        let page = addr & !4095;
        let mut vec = 0u8;
        // SAFETY: mincore only reads the page tables for one page and
        // writes one byte into `vec`.
        unsafe { libc::mincore(page as *mut libc::c_void, 1, &mut vec) == 0 }
    }
}
