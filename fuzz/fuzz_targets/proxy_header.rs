//! Fuzz target: the PROXY header path of a `proxy_protocol` listener, over
//! a real socket pair: the attacker's bytes arrive in two pieces (the
//! first input byte picks the split) and the worker's `HeaderReader` takes
//! them as the serve loop does, with `scan`, `ppp`'s parsers and the TLV
//! walk behind it.
//!
//! Promises checked: nothing panics; a header that is read is exactly the
//! prefix `scan` measures, and every byte sent after it is still in the
//! socket for the plugin; a refused or unfinished header never takes a byte past
//! what `scan` allows; every TLV the parser accepted can be found again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use socket2::{Domain, Socket, Type};
use sockhostd::worker::proxy::{find_tlv, scan, HeaderReader, Scan, Step};
use std::io::{Read, Write};

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let Ok((ours, theirs)) = Socket::pair(Domain::UNIX, Type::STREAM, None) else {
        return;
    };
    let mut ours = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(ours));
    let cut = if bytes.is_empty() {
        0
    } else {
        usize::from(split) % (bytes.len() + 1)
    };
    let mut reader = HeaderReader::default();
    let mut step = Step::More;
    let mut sent = 0;
    for piece in [&bytes[..cut], &bytes[cut..]] {
        if !matches!(step, Step::More) || piece.is_empty() {
            continue;
        }
        if ours.write_all(piece).is_err() {
            return;
        }
        sent += piece.len();
        step = reader.read_from(&theirs);
    }
    ours.shutdown(std::net::Shutdown::Write).ok();
    let mut theirs = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(theirs));
    theirs.set_nonblocking(true).ok();
    let mut left = Vec::new();
    let _ = theirs.read_to_end(&mut left);
    match (step, scan(bytes)) {
        (Step::Done(p), Ok(Scan::Complete(n))) => {
            assert_eq!(left, &bytes[n..sent], "exactly the header was taken");
            let mut rest = &p.tlvs[..];
            while rest.len() >= 3 {
                let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
                assert!(find_tlv(&p.tlvs, rest[0]).is_some());
                rest = &rest[3 + len..];
            }
            assert!(rest.is_empty(), "the TLVs are well formed");
        }
        (Step::Done(_), other) => panic!("read a header that scan calls {other:?}"),
        (_, Ok(Scan::Complete(n))) => assert!(sent - left.len() <= n, "took past the header"),
        _ => {}
    }
});
