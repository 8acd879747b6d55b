//! Exponential back-off, the one policy every retry here uses: the first
//! delay, doubling on each further attempt, never above a cap.
//!
//! Its users: the master's crash respawn (100 ms up to 30 s) and
//! [`AcceptBackoff`], what the serve loop does when `accept`/`recvfrom`
//! fails for a reason that is not the client's: out of descriptors
//! (EMFILE, ENFILE), buffers or memory. The loop stops polling the
//! listening socket for a while instead of spinning on a socket that stays
//! readable, logs once per episode, and says when it recovered.

use std::io;
use std::time::{Duration, Instant};

/// Delays of `first`, `2 × first`, `4 × first`, ... up to `cap`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (1 is the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.first.saturating_mul(1 << doublings).min(self.cap)
    }
}

/// The serve loop's accept back-off.
const ACCEPT: Backoff = Backoff {
    first: Duration::from_millis(10),
    cap: Duration::from_secs(1),
};
const CAP: Duration = ACCEPT.cap;

/// Accept back-off state for one listener.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    until: Option<Instant>,
    delay: Duration,
    failures: u32,
}

impl AcceptBackoff {
    /// Whether the listening socket may be polled now.
    pub fn ready(&self) -> bool {
        self.until.is_none_or(|t| Instant::now() >= t)
    }

    /// How long until it may be polled again (for the poll timeout).
    pub fn remaining(&self) -> Option<Duration> {
        self.until
            .map(|t| t.saturating_duration_since(Instant::now()))
    }

    /// Record a failed accept: back off, and log when an episode starts.
    pub fn failed(&mut self, listener: &str, err: &io::Error) {
        self.failures = self.failures.saturating_add(1);
        self.delay = ACCEPT.delay(self.failures);
        if self.failures == 1 {
            tracing::error!(
                listener,
                "cannot accept: {err}; pausing accepts (retrying with back-off up to {CAP:?})"
            );
        }
        self.until = Some(Instant::now() + self.delay);
    }

    /// Record a successful accept: end an episode, saying so.
    pub fn succeeded(&mut self, listener: &str) {
        // Nothing is written unless an episode ends: in a fork worker every
        // write to a page children share is a copy-on-write fault.
        if self.failures > 0 {
            tracing::info!(
                listener,
                "accepting again after {} failed attempts",
                self.failures
            );
            *self = AcceptBackoff::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_pause_accepts_with_growing_delay_and_success_resets() {
        let mut b = AcceptBackoff::default();
        assert!(b.ready());
        let err = io::Error::from_raw_os_error(libc::EMFILE);
        b.failed("t", &err);
        assert!(!b.ready(), "a failure pauses accepts");
        let first = b.delay;
        b.failed("t", &err);
        assert!(b.delay > first, "the delay grows");
        for _ in 0..20 {
            b.failed("t", &err);
        }
        assert_eq!(b.delay, CAP, "the delay is capped");
        b.succeeded("t");
        assert!(b.ready() && b.remaining().is_none());
    }

    #[test]
    fn delays_double_from_the_first_up_to_the_cap() {
        let b = Backoff {
            first: Duration::from_millis(100),
            cap: Duration::from_secs(30),
        };
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(4), Duration::from_millis(800));
        assert_eq!(b.delay(9), Duration::from_millis(25_600));
        assert_eq!(b.delay(10), Duration::from_secs(30));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }
}
