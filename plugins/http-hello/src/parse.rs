//! HTTP/1.x request heads, parsed from bytes (RFC 9112), with no I/O.
//!
//! [`parse`] looks at the start of a buffer and says: a complete head (and
//! how many bytes it took), not complete yet, or which error status the
//! request earns. Promises: never reads past `max` bytes looking for the end
//! of a head (beyond that the answer is 431); never panics on any input;
//! anything ambiguous for framing (obsolete line folding, whitespace before
//! a colon, conflicting or malformed Content-Length, a Transfer-Encoding we
//! cannot decode, a missing Host in HTTP/1.1) is refused, so a pipelined
//! next request can never be misread as part of this one.

/// The request methods this responder tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other,
}

/// What a complete request head says about how to answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub method: Method,
    /// HTTP/1.0 (false) or HTTP/1.1 (true).
    pub http11: bool,
    /// Whether the connection stays open after the answer.
    pub keep_alive: bool,
    /// Whether the client asked for keep-alive explicitly (HTTP/1.0).
    pub explicit_keep_alive: bool,
    /// Body bytes that follow the head (to be skipped).
    pub content_length: u64,
}

/// An error status and its reason phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u16, pub &'static str);

pub const BAD_REQUEST: Status = Status(400, "Bad Request");
pub const METHOD_NOT_ALLOWED: Status = Status(405, "Method Not Allowed");
pub const TOO_LARGE: Status = Status(431, "Request Header Fields Too Large");
pub const NOT_IMPLEMENTED: Status = Status(501, "Not Implemented");
pub const BAD_VERSION: Status = Status(505, "HTTP Version Not Supported");

/// The outcome of looking at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// A complete head that took this many bytes.
    Request(Head, usize),
    /// The request is refused with this status; the connection must close.
    Error(Status),
}

/// Parse the head at the start of `buf`; a head longer than `max` bytes
/// (line ends included) is refused with 431.
pub fn parse(buf: &[u8], max: usize) -> Parsed {
    let window = &buf[..buf.len().min(max)];
    // RFC 9112 §2.2: ignore empty lines before the request line (they count
    // towards the limit, so a flood of them is refused like any big head).
    let mut skipped = 0;
    loop {
        match &window[skipped..] {
            [b'\r', b'\n', ..] => skipped += 2,
            [b'\n', ..] => skipped += 1,
            _ => break,
        }
    }
    let Some(len) = head_len(&window[skipped..]) else {
        return if buf.len() >= max {
            Parsed::Error(TOO_LARGE)
        } else {
            Parsed::Incomplete
        };
    };
    match head(&window[skipped..skipped + len]) {
        Ok(h) => Parsed::Request(h, skipped + len),
        Err(s) => Parsed::Error(s),
    }
}

/// Length of the head (through its empty line), if it is all there.
fn head_len(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|&b| b == b'\n') {
        let nl = from + i;
        // The line that ended at `nl` is empty when it holds nothing but `\r`.
        let line = &buf[from..nl];
        if line.is_empty() || line == b"\r" {
            return Some(nl + 1);
        }
        from = nl + 1;
    }
    None
}

/// The lines of a head, line ends removed; a `\r` inside a line is an error.
fn lines(head: &[u8]) -> impl Iterator<Item = Result<&[u8], Status>> {
    head.split(|&b| b == b'\n').map(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if l.contains(&b'\r') {
            Err(BAD_REQUEST)
        } else {
            Ok(l)
        }
    })
}

fn head(bytes: &[u8]) -> Result<Head, Status> {
    let mut it = lines(bytes);
    let request_line = it.next().ok_or(BAD_REQUEST)??;
    let (method, http11) = request_line_of(request_line)?;
    let mut h = Head {
        method,
        http11,
        keep_alive: http11,
        explicit_keep_alive: false,
        content_length: 0,
    };
    let (mut hosts, mut length, mut close) = (0, None, false);
    for line in it {
        let line = line?;
        if line.is_empty() {
            break;
        }
        let (name, value) = field(line)?;
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = content_length(value)?;
            if length.is_some_and(|m| m != n) {
                return Err(BAD_REQUEST);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(NOT_IMPLEMENTED);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    h.explicit_keep_alive = true;
                }
            }
        }
    }
    if http11 && hosts != 1 {
        return Err(BAD_REQUEST);
    }
    h.content_length = length.unwrap_or(0);
    h.keep_alive = !close && (http11 || h.explicit_keep_alive);
    h.explicit_keep_alive &= !http11 && h.keep_alive;
    Ok(h)
}

/// `METHOD SP TARGET SP HTTP/1.x`: the method and whether it is 1.1.
fn request_line_of(line: &[u8]) -> Result<(Method, bool), Status> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD_REQUEST);
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(BAD_REQUEST);
    }
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(BAD_REQUEST);
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(BAD_VERSION)
        }
        _ => return Err(BAD_REQUEST),
    };
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => Method::Other,
    };
    Ok((method, http11))
}

/// `NAME ":" OWS VALUE OWS`; no whitespace before the colon, no folding.
fn field(line: &[u8]) -> Result<(&[u8], &[u8]), Status> {
    let colon = line.iter().position(|&b| b == b':').ok_or(BAD_REQUEST)?;
    let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(BAD_REQUEST);
    }
    if value.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
        return Err(BAD_REQUEST);
    }
    Ok((name, value))
}

fn content_length(value: &[u8]) -> Result<u64, Status> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return Err(BAD_REQUEST);
    }
    Ok(value
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

fn trim(v: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !is_ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    &v[start..end]
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
