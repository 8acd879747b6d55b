//! What the serve loop does when `accept`/`recvfrom` fails for a reason
//! that is not the client's: out of descriptors (EMFILE, ENFILE), buffers
//! or memory. The loop stops polling the listening socket for a while
//! (doubling up to a cap) instead of spinning on a socket that stays
//! readable, logs once per episode, and says when it recovered.

use std::io;
use std::time::{Duration, Instant};

const FIRST: Duration = Duration::from_millis(10);
const CAP: Duration = Duration::from_secs(1);

/// Accept back-off state for one listener.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    until: Option<Instant>,
    delay: Duration,
    failures: u64,
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
        self.failures += 1;
        self.delay = if self.delay.is_zero() {
            FIRST
        } else {
            (self.delay * 2).min(CAP)
        };
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
}
