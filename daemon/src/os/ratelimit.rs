//! The one rate limit for repeated log lines: write the first, then at most
//! one per interval, saying how many were held back in between.
//!
//! A worker under a flood (refused connections, oversized datagrams, a mixin
//! at its cap) must not turn each event into a log line: the log would cost
//! more than the events. Callers count an event with [`RateLimit::allow`]
//! and write their line only when it returns how many were held back.
//! Nothing here writes a log line or allocates.

use std::time::{Duration, Instant};

/// At most one line per `every`.
#[derive(Debug)]
pub struct RateLimit {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl RateLimit {
    pub const fn new(every: Duration) -> RateLimit {
        RateLimit {
            every,
            last: None,
            held: 0,
        }
    }

    /// Whether a line may be written at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|t| now.saturating_duration_since(t) >= self.every)
    }

    /// How long until the next line may be written (zero when due).
    pub fn due_in(&self, now: Instant) -> Duration {
        let since = self
            .last
            .map_or(self.every, |t| now.saturating_duration_since(t));
        self.every.saturating_sub(since)
    }

    /// Whether a line was ever written.
    pub fn ever(&self) -> bool {
        self.last.is_some()
    }

    /// An event at `now`: `Some(held back since the last line)` when its
    /// line may be written (the caller writes it), else `None` (counted).
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if !self.due(now) {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }

    /// A line was written at `now` outside [`allow`](Self::allow) (a
    /// summary of events the caller counted itself).
    pub fn wrote(&mut self, now: Instant) {
        self.last = Some(now);
        self.held = 0;
    }

    /// When the last line was written.
    #[cfg(test)]
    pub fn last(&self) -> Option<Instant> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_event_is_written_then_one_per_interval_with_the_count_held_back() {
        let mut r = RateLimit::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(!r.ever());
        assert_eq!(r.allow(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(r.allow(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(
            r.due_in(t0 + Duration::from_secs(4)),
            Duration::from_secs(6)
        );
        assert_eq!(r.allow(t0 + Duration::from_secs(10)), Some(5));
        assert_eq!(r.allow(t0 + Duration::from_secs(11)), None);
        assert!(r.ever());
    }
}
