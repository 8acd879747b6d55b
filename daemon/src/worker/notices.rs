//! The serve loop's rate-limited notices: when the mixin's cap holds new
//! requests back, and oversized datagrams dropped. Promises: a notice is
//! written when its state changes, at most once per its interval, with a
//! count of what was held back; nothing is written while all is well.

use crate::os::ratelimit::RateLimit;
use crate::worker::dispatch::Dispatch;
use std::time::{Duration, Instant};

/// Says when the mixin's cap (`max_children`, `max_threads`) holds new
/// requests back, as Apache does for MaxRequestWorkers: one warning when it
/// is first hit, then at most one a minute, with how often it was hit in
/// between. Writes nothing while below the cap.
pub(super) struct CapLog {
    at_cap: bool,
    limit: RateLimit,
}

impl Default for CapLog {
    fn default() -> CapLog {
        CapLog {
            at_cap: false,
            limit: RateLimit::new(Duration::from_secs(60)),
        }
    }
}

impl CapLog {
    /// `room`: whether the mixin can take a request now. The worker's log
    /// span names the listener.
    pub(super) fn update(&mut self, dispatch: &dyn Dispatch, room: bool) {
        // Written only when it changes: in a fork worker each write to a
        // page the children share costs a copy-on-write fault.
        if room {
            if self.at_cap {
                self.at_cap = false;
            }
            return;
        }
        if self.at_cap {
            return;
        }
        self.at_cap = true;
        let ever = self.limit.ever();
        let Some(held) = self.limit.allow(Instant::now()) else {
            return;
        };
        let (key, max) = dispatch.cap();
        let since = if ever {
            format!(" ({} times since the last warning)", held + 1)
        } else {
            String::new()
        };
        tracing::warn!(
            "{key} ({max}) reached: new requests wait in the backlog until one ends{since}; raise {key} if this persists"
        );
    }
}

/// Counts dropped oversized datagrams; warns at most once every 10 s.
pub(super) struct OversizeLog {
    dropped: u64,
    limit: RateLimit,
}

impl Default for OversizeLog {
    fn default() -> OversizeLog {
        OversizeLog {
            dropped: 0,
            limit: RateLimit::new(Duration::from_secs(10)),
        }
    }
}

impl OversizeLog {
    pub(super) fn record(&mut self, client: &str, size: usize, max: usize) {
        self.dropped += 1;
        let Some(held) = self.limit.allow(Instant::now()) else {
            return;
        };
        tracing::warn!(
            client,
            "dropped a {size}-byte datagram (max_packet_size = {max}); {} dropped since the last warning, {} in all",
            held + 1,
            self.dropped
        );
    }
}
