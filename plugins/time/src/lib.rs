//! sockhost-time: the Time Protocol (RFC 868) as a sockhost plugin.
//!
//! The answer is the time now as seconds since 1900-01-01 00:00 UTC, a
//! 32-bit unsigned number in network (big-endian) order: four bytes, no
//! line end. Stream: the four bytes are written as soon as the connection
//! is accepted and `handle` returns, so the daemon closes it; whatever the
//! client sent is ignored. Datagram: any datagram, empty or not, is
//! answered with one four-byte datagram. The count wraps modulo 2^32 (in
//! February 2036), as RFC 868's 32 bits do. It takes no
//! `[listener.config]` keys and ignores any it is given.

use sockhost_sdk::{export_handler, Handler, Kind, Listener, Request, Result};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds from 1900-01-01 to 1970-01-01 (70 years, 17 of them leap).
pub const EPOCH_1900_TO_1970: u64 = 2_208_988_800;

/// The time handler; it keeps no state.
pub struct Time;

impl Handler for Time {
    fn create(_listener: &Listener) -> Result<Self> {
        Ok(Time)
    }

    fn handle(&self, req: &mut Request) -> Result<()> {
        let since_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the clock is set before 1970")?;
        let answer = rfc868(since_unix.as_secs());
        match req.kind() {
            Kind::Stream => req.socket().write_all(&answer)?,
            Kind::Datagram => {
                req.reply(&answer)?;
            }
        }
        Ok(())
    }
}

/// RFC 868's four bytes for `unix_seconds` seconds since 1970.
fn rfc868(unix_seconds: u64) -> [u8; 4] {
    // Truncation is the protocol: 32 bits, counting on from 0 after 2036.
    let since_1900 = unix_seconds.wrapping_add(EPOCH_1900_TO_1970) as u32;
    since_1900.to_be_bytes()
}

export_handler!(Time);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc868_examples() {
        // RFC 868's own table: 1970-01-01 is 2,208,988,800.
        assert_eq!(rfc868(0), 2_208_988_800u32.to_be_bytes());
        // 1980-01-01 00:00 UTC = 315532800 Unix; RFC 868 gives 2,524,521,600.
        assert_eq!(rfc868(315_532_800), 2_524_521_600u32.to_be_bytes());
        // 2036-02-07 06:28:16 UTC is where the 32 bits wrap to 0.
        assert_eq!(rfc868(4_294_967_296 - EPOCH_1900_TO_1970), [0, 0, 0, 0]);
    }
}
