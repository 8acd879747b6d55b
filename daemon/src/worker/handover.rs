//! inetd's "looping" check for a `take_listener` (`wait`) listener: a
//! program that exits at once without taking the request waiting on the
//! socket would be started again and again at full speed, since the
//! socket stays readable.
//!
//! Promises: [`RAPID`] hand-overs in a row, each within [`TOO_SOON`] of the
//! previous one, count as looping: the serve loop then pauses the socket
//! with its accept back-off (logged once per episode, pauses growing)
//! instead of spinning; a hand-over after a [`CALM`] gap ends the episode. A program that serves what it was
//! given never trips it (it runs at least as long as one exchange).

use std::time::{Duration, Instant};

/// A hand-over this soon after the previous one is suspicious.
pub const TOO_SOON: Duration = Duration::from_millis(250);
/// Suspicious hand-overs in a row that make a loop.
pub const RAPID: u32 = 5;

/// A gap this long between hand-overs ends a looping episode.
pub const CALM: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Handovers {
    last: Option<Instant>,
    rapid: u32,
    /// The last gap between hand-overs was at least [`CALM`].
    calm: bool,
}

impl Handovers {
    /// A hand-over is due at `now`: true when it should wait instead
    /// (the program is looping).
    pub fn looping(&mut self, now: Instant) -> bool {
        let gap = self.last.map(|t| now.duration_since(t));
        let soon = gap.is_some_and(|g| g < TOO_SOON);
        self.calm = gap.is_none_or(|g| g >= CALM);
        self.rapid = if soon { self.rapid + 1 } else { 0 };
        self.last = Some(now);
        self.rapid >= RAPID
    }

    /// The last hand-over came after a calm gap: a looping episode (if
    /// one was logged) is over.
    pub fn calm(&self) -> bool {
        self.calm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_run_of_rapid_hand_overs_is_a_loop() {
        let mut h = Handovers::default();
        let t0 = Instant::now();
        assert!(!h.looping(t0));
        for i in 1..RAPID {
            assert!(!h.looping(t0 + Duration::from_millis(u64::from(i) * 10)));
        }
        assert!(h.looping(t0 + Duration::from_millis(u64::from(RAPID) * 10)));
        assert!(!h.calm());
        assert!(
            !h.looping(t0 + Duration::from_secs(5)),
            "a slow one ends it"
        );
        assert!(h.calm());
    }
}
