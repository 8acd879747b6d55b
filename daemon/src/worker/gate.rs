//! The built-in `verify_request`, run in the worker's loop before any fork
//! or thread: `allow`/`deny`, then (unix stream) `allow_uids`/`allow_gids`,
//! then the per-source limits (`rate_limit_per_source`,
//! `max_connections_per_source`); and what happens to a refused request.
//!
//! Owns the order of the checks, the source a request counts against
//! (its IP address; a unix stream peer's uid; a unix datagram peer's path),
//! the refusal log and `refuse_message`. Promises: a refused request costs
//! no thread, no process and no plugin call; denied sources leave no state;
//! a refused connection gets `refuse_message` in one non-blocking write
//! (best effort: a full buffer loses it, the loop never waits) and then is
//! closed by the caller; datagrams are never answered, so a spoofed source
//! cannot turn a refusal into a reflection. Refusals are logged at most
//! once per second per listener: the first with its client and reason,
//! the rest as counts per reason, so a flood cannot flood the log.

use crate::config::{ListenerConfig, Mixin};
use crate::os::ratelimit::RateLimit;
use crate::os::stats::Meter;
use crate::worker::access::{canonical_ip, peer_credentials, AccessControl, Rule};
use crate::worker::limits::{Exceeded, Source, SourceLimits, SourceSlot};
use socket2::{SockAddr, Socket};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// At most one refusal warning per listener per this long.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// Why a request was refused (the config key that refused it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The source is in `deny`.
    Deny,
    /// `allow` is set and the source is not in it.
    Allow,
    Credentials,
    Rate,
    Connections,
    Plugin,
    /// `proxy_protocol`: no valid PROXY header in time, or one from a peer
    /// not in `proxy_trusted` (counted as `reason="proxy_header"`).
    ProxyHeader,
}

// Refusals are counted per reason in a fixed array shared with the master.
const _: () = assert!(Reason::ALL.len() <= crate::os::stats::MAX_REASONS);

impl Reason {
    /// Every reason, in index order (the metrics list them in this order).
    pub const ALL: [Reason; 7] = [
        Reason::Deny,
        Reason::Allow,
        Reason::Credentials,
        Reason::Rate,
        Reason::Connections,
        Reason::Plugin,
        Reason::ProxyHeader,
    ];

    /// The short name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Deny => "deny",
            Reason::Allow => "allow",
            Reason::Credentials => "allow_uids/allow_gids",
            Reason::Rate => "rate_limit_per_source",
            Reason::Connections => "max_connections_per_source",
            Reason::Plugin => "the plugin's verify_request",
            Reason::ProxyHeader => "proxy_protocol",
        }
    }

    /// The `reason` label of `sockhost_requests_refused_total`.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Deny => "deny",
            Reason::Allow => "allow",
            Reason::Credentials => "peer",
            Reason::Rate => "rate_limit",
            Reason::Connections => "max_per_source",
            Reason::Plugin => "verify_request",
            Reason::ProxyHeader => "proxy_header",
        }
    }

    /// The reason's place in [`Reason::ALL`] and in the shared counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A refusal: the reason and the details worth logging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub detail: String,
}

impl Refusal {
    fn new(reason: Reason, detail: impl Into<String>) -> Refusal {
        Refusal {
            reason,
            detail: detail.into(),
        }
    }

    /// The plugin's own `verify_request` said no.
    pub fn plugin() -> Refusal {
        Refusal::new(Reason::Plugin, "")
    }

    /// No valid PROXY header (the detail says what was wrong).
    pub fn proxy_header(detail: impl Into<String>) -> Refusal {
        Refusal::new(Reason::ProxyHeader, detail)
    }
}

/// One listener's built-in checks and refusal handling.
pub struct Gate {
    listener: String,
    access: AccessControl,
    limits: SourceLimits,
    refuse_message: Option<Vec<u8>>,
    log: RefusalLog,
    /// A unix listener whose clients are named by a PROXY header: the
    /// socket's own peer (the balancer) still passes allow_uids/allow_gids.
    proxied_unix: bool,
    meter: Meter,
}

impl Gate {
    pub fn new(l: &ListenerConfig) -> Gate {
        let in_flight = match l.mixin {
            Mixin::Sync => 1,
            Mixin::Thread => l.max_threads,
            Mixin::Fork => l.max_children,
        };
        Gate {
            listener: l.name.clone(),
            access: AccessControl::new(l),
            limits: with_shared_table(
                l,
                SourceLimits::new(
                    l.max_connections_per_source,
                    l.rate_limit_per_source,
                    in_flight,
                ),
            ),
            refuse_message: l
                .refuse_message
                .as_ref()
                .filter(|m| !m.is_empty())
                .map(|m| m.as_bytes().to_vec()),
            log: RefusalLog::default(),
            proxied_unix: l.proxy_protocol && l.family == crate::config::Family::Unix,
            meter: Meter::none(),
        }
    }

    /// Count refusals (by reason) into `meter`.
    pub fn metered(mut self, meter: Meter) -> Gate {
        self.meter = meter;
        self
    }

    /// Check a request from `peer`; `conn` is the connection (stream).
    /// `Ok` holds the open-connection slot to keep until the request ends.
    pub fn check(
        &mut self,
        peer: &SockAddr,
        conn: Option<&Socket>,
    ) -> Result<Option<SourceSlot>, Refusal> {
        match self.access.refusal(peer) {
            Some(Rule::Deny) => return Err(Refusal::new(Reason::Deny, "")),
            Some(Rule::Allow) => return Err(Refusal::new(Reason::Allow, "")),
            None => {}
        }
        if let (true, Some(_), Some(sock)) = (self.proxied_unix, peer.as_socket(), conn) {
            self.check_balancer(sock)?;
        }
        let source = match (peer.as_socket(), conn) {
            (Some(sa), _) => Source::Ip(canonical_ip(sa.ip())),
            (None, Some(sock)) => {
                if !self.access.checks_credentials() && !self.limits.active() {
                    return Ok(None);
                }
                let cred = peer_credentials(sock).map_err(|e| {
                    Refusal::new(
                        Reason::Credentials,
                        format!("cannot read the peer's credentials: {e}"),
                    )
                })?;
                if !self.access.allowed_peer(&cred, sock) {
                    let detail = format!("uid {} gid {} pid {}", cred.uid, cred.gid, cred.pid);
                    return Err(Refusal::new(Reason::Credentials, detail));
                }
                Source::Uid(cred.uid)
            }
            (None, None) => Source::Path(unix_path(peer)),
        };
        let uid = match source {
            Source::Uid(uid) => Some(uid),
            _ => None,
        };
        self.limits
            .admit(source, Instant::now())
            .map_err(|exceeded| {
                let who = uid.map(|u| format!("uid {u}: ")).unwrap_or_default();
                match exceeded {
                    Exceeded::Rate => Refusal::new(
                        Reason::Rate,
                        format!(
                            "{who}over {} new per second",
                            self.limits.rate_per_sec().unwrap_or(0.0)
                        ),
                    ),
                    Exceeded::Connections(max) => {
                        Refusal::new(Reason::Connections, format!("{who}{max} already open"))
                    }
                    Exceeded::TableFull => Refusal::new(
                        Reason::Connections,
                        format!("{who}the table of sources is full of open connections"),
                    ),
                }
            })
    }

    /// allow_uids/allow_gids for the unix peer that sent a PROXY header.
    fn check_balancer(&self, sock: &Socket) -> Result<(), Refusal> {
        if !self.access.checks_credentials() {
            return Ok(());
        }
        let cred = peer_credentials(sock).map_err(|e| {
            Refusal::new(
                Reason::Credentials,
                format!("cannot read the peer's credentials: {e}"),
            )
        })?;
        if self.access.allowed_peer(&cred, sock) {
            return Ok(());
        }
        let detail = format!("uid {} gid {} pid {}", cred.uid, cred.gid, cred.pid);
        Err(Refusal::new(Reason::Credentials, detail))
    }

    /// A request was refused: count it by reason, log it (rate-limited)
    /// and, for a connection, write `refuse_message` without waiting. The
    /// caller closes it. Every refusal comes through here.
    pub fn refuse(&mut self, client: &str, conn: Option<&Socket>, why: &Refusal) {
        self.meter.refused(why.reason.index());
        let what = if conn.is_some() {
            "connection"
        } else {
            "datagram"
        };
        self.log
            .record(&self.listener, what, client, why, Instant::now());
        if let (Some(sock), Some(msg)) = (conn, &self.refuse_message) {
            let _ = sock.send_with_flags(msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
        }
    }

    /// Log the counts of refusals not yet reported, when due.
    pub fn service_actions(&mut self) {
        self.log.flush(&self.listener, Instant::now());
    }

    /// How long until unreported refusals are due to be logged.
    pub fn log_due_in(&self) -> Option<Duration> {
        self.log.due_in(Instant::now())
    }
}

/// With `workers = K` > 1: count in the listener's table shared by its
/// workers (made by the master). Without a column in it (cannot happen
/// while columns cover two generations), count per worker and say so.
fn with_shared_table(l: &ListenerConfig, limits: SourceLimits) -> SourceLimits {
    let Some(table) = crate::worker::shared_limits::for_worker(l) else {
        return limits;
    };
    match table.claim() {
        Some(column) => limits.shared(table, column),
        None => {
            tracing::error!(
                "no free column in the shared per-source table: this worker counts its own sources only"
            );
            limits
        }
    }
}

/// A unix datagram peer's path or abstract name (empty when unnamed).
fn unix_path(peer: &SockAddr) -> Box<[u8]> {
    use std::os::unix::ffi::OsStrExt;
    if let Some(p) = peer.as_pathname() {
        return p.as_os_str().as_bytes().into();
    }
    peer.as_abstract_namespace().unwrap_or_default().into()
}

/// Refusals reported at most once per [`LOG_EVERY`]: the first one in full,
/// the others as counts per reason.
#[derive(Debug)]
struct RefusalLog {
    limit: RateLimit,
    pending: [u64; Reason::ALL.len()],
}

impl Default for RefusalLog {
    fn default() -> RefusalLog {
        RefusalLog {
            limit: RateLimit::new(LOG_EVERY),
            pending: [0; Reason::ALL.len()],
        }
    }
}

impl RefusalLog {
    fn due(&self, now: Instant) -> bool {
        self.limit.due(now)
    }

    fn record(&mut self, listener: &str, what: &str, client: &str, why: &Refusal, now: Instant) {
        if !self.due(now) {
            self.pending[why.reason.index()] += 1;
            return;
        }
        let client = if client.is_empty() {
            "an unnamed unix peer"
        } else {
            client
        };
        let detail = if why.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.detail)
        };
        let earlier = match self.take_summary() {
            Some(counts) => format!("; {counts}"),
            None => String::new(),
        };
        tracing::warn!(
            listener,
            client,
            reason = why.reason.as_str(),
            "{what} from {client} refused by {}{detail}{earlier}",
            why.reason.as_str()
        );
        self.limit.wrote(now);
    }

    fn flush(&mut self, listener: &str, now: Instant) {
        if !self.due(now) {
            return;
        }
        if let Some(counts) = self.take_summary() {
            tracing::warn!(listener, "{counts}");
            self.limit.wrote(now);
        }
    }

    fn due_in(&self, now: Instant) -> Option<Duration> {
        if self.pending.iter().all(|&n| n == 0) {
            return None;
        }
        Some(self.limit.due_in(now))
    }

    /// "N more refused since the last report (reason: n, ...)", if any.
    fn take_summary(&mut self) -> Option<String> {
        let total: u64 = self.pending.iter().sum();
        if total == 0 {
            return None;
        }
        let mut out = format!("{total} more refused since the last report (");
        let parts: Vec<String> = Reason::ALL
            .iter()
            .filter(|r| self.pending[r.index()] > 0)
            .map(|r| format!("{}: {}", r.as_str(), self.pending[r.index()]))
            .collect();
        let _ = write!(out, "{})", parts.join(", "));
        self.pending = [0; Reason::ALL.len()];
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_reports_one_refusal_per_second_and_counts_the_rest() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        let rate = Refusal::new(Reason::Rate, "over 5 new per second");
        log.record("l", "connection", "127.0.0.2:1", &rate, t0);
        assert_eq!(log.limit.last(), Some(t0));
        for i in 0..1000 {
            let why = if i % 2 == 0 {
                &rate
            } else {
                &Refusal::plugin()
            };
            log.record("l", "connection", "127.0.0.2:1", why, t0);
        }
        assert_eq!(log.limit.last(), Some(t0), "no warning inside the second");
        assert_eq!(log.due_in(t0), Some(LOG_EVERY));
        log.flush("l", t0 + Duration::from_millis(500));
        assert_eq!(log.pending.iter().sum::<u64>(), 1000, "not due yet");
        assert_eq!(
            log.take_summary().as_deref(),
            Some("1000 more refused since the last report (rate_limit_per_source: 500, the plugin's verify_request: 500)")
        );
        assert_eq!(log.due_in(t0), None, "nothing pending");
    }

    #[test]
    fn pending_counts_are_flushed_once_due() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        let why = Refusal::new(Reason::Deny, "");
        log.record("l", "datagram", "", &why, t0);
        log.record("l", "datagram", "", &why, t0);
        let t1 = t0 + LOG_EVERY;
        assert_eq!(log.due_in(t1), Some(Duration::ZERO));
        log.flush("l", t1);
        assert_eq!(log.limit.last(), Some(t1));
        assert_eq!(log.due_in(t1), None);
    }
}
