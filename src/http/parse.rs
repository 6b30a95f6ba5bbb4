//! Pure HTTP/1.x request parsing over byte slices.
//!
//! This file owns the decision of what a request is: where its head ends, how
//! long its body is, and which malformed inputs get which status. It touches no
//! socket and keeps no state between calls: the engine hands it the bytes it has
//! so far and gets back a complete request, "need more bytes", or an error that
//! names the status to answer with. Every split point of a request must give the
//! same result as the whole request, which `tests/parse.rs` checks.

use std::fmt;

/// Size limits applied while parsing one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line plus headers) in bytes; beyond it, `431`.
    pub max_head: usize,
    /// Most header lines in one request (at most [`HEADER_SLOTS`]); beyond it, `431`.
    pub max_headers: usize,
    /// Largest request body in bytes; beyond it, `413`.
    pub max_body: usize,
}

/// Hard upper bound on `Limits::max_headers`: the parser's header slots live on the stack.
pub const HEADER_SLOTS: usize = 256;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 16 * 1024,
            max_headers: 64,
            max_body: 1024 * 1024,
        }
    }
}

/// Why a request could not be parsed; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The head is larger than `Limits::max_head` (`431`).
    HeadTooLarge,
    /// More header lines than `Limits::max_headers` (`431`).
    TooManyHeaders,
    /// The request line or a header is malformed (`400`); the text says which rule broke.
    Malformed(&'static str),
    /// A `Transfer-Encoding` other than `chunked` (`501`).
    UnsupportedTransferEncoding,
    /// The body is larger than `Limits::max_body` (`413`).
    BodyTooLarge,
    /// An HTTP version other than 1.0 or 1.1 (`505`).
    UnsupportedVersion,
}

impl ParseError {
    /// The HTTP status that answers this error.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::HeadTooLarge | ParseError::TooManyHeaders => 431,
            ParseError::Malformed(_) => 400,
            ParseError::UnsupportedTransferEncoding => 501,
            ParseError::BodyTooLarge => 413,
            ParseError::UnsupportedVersion => 505,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::HeadTooLarge => f.write_str("request head too large"),
            ParseError::TooManyHeaders => f.write_str("too many header lines"),
            ParseError::Malformed(why) => write!(f, "malformed request: {why}"),
            ParseError::UnsupportedTransferEncoding => {
                f.write_str("only chunked transfer-encoding is supported")
            }
            ParseError::BodyTooLarge => f.write_str("request body too large"),
            ParseError::UnsupportedVersion => f.write_str("HTTP version not supported"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The head of a parsed request, copied out of the input buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target as sent, e.g. `/jchat?me=ann`.
    pub target: String,
    /// The minor version: `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub minor_version: u8,
    /// Header names and values in the order received (values decoded lossily as UTF-8).
    pub headers: Vec<(String, String)>,
    /// Whether the connection stays open after the answer.
    pub keep_alive: bool,
}

/// One complete request and how many input bytes it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The request head.
    pub head: Head,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Bytes of input this request occupied; pipelined requests follow them.
    pub consumed: usize,
}

/// The outcome of parsing what has arrived so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A whole request is here.
    Complete(Parsed),
    /// More bytes are needed. `head_done` is true once the head is complete, and
    /// `wants_continue` when that head asked for `100 Continue`.
    Partial {
        /// The head is complete; only body bytes are missing.
        head_done: bool,
        /// The head carried `Expect: 100-continue`.
        wants_continue: bool,
    },
}

/// How the body of a request is delimited.
enum BodyKind {
    Length(usize),
    Chunked,
}

/// Parses the request at the start of `buf`.
///
/// Each fault is found at a byte position, and the parser looks no further
/// than the first one (nor past the limits), so the answer depends only on
/// the bytes, never on how they were split into reads.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Progress, ParseError> {
    let mut slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
    let slots = &mut slots[..limits.max_headers.clamp(1, HEADER_SLOTS)];
    let mut req = httparse::Request::new(slots);
    let Some(head_len) = parse_head(&mut req, buf, limits)? else {
        return Ok(Progress::Partial {
            head_done: false,
            wants_continue: false,
        });
    };
    let head = copy_head(&req)?;
    let kind = body_kind(&head.headers, limits)?;
    // RFC 9110 section 10.1.1: never a 100 (Continue) to an HTTP/1.0 client.
    let wants_continue =
        head.minor_version >= 1 && header_has_token(&head.headers, "expect", "100-continue");
    let rest = &buf[head_len..];
    let body = match kind {
        BodyKind::Length(n) if rest.len() >= n => Some((rest[..n].to_vec(), n)),
        BodyKind::Length(_) => None,
        BodyKind::Chunked => {
            // Chunk extensions, whitespace and trailers are not counted as
            // body but would otherwise buffer without end: the encoding may
            // use at most `cap` bytes, wherever the reads end.
            let cap = chunked_encoding_cap(limits);
            match decode_chunked(&rest[..rest.len().min(cap)], limits.max_body)? {
                None if rest.len() > cap => return Err(ParseError::BodyTooLarge),
                body => body,
            }
        }
    };
    Ok(match body {
        Some((body, used)) => Progress::Complete(Parsed {
            head,
            body,
            consumed: head_len + used,
        }),
        None => Progress::Partial {
            head_done: true,
            wants_continue,
        },
    })
}

/// Parses the head into `req`: its length once complete, `None` while more
/// bytes are needed. Only the first `max_head` bytes are looked at, and only
/// those before the first bad line ending, so the earliest fault decides.
fn parse_head<'b>(
    req: &mut httparse::Request<'_, 'b>,
    buf: &'b [u8],
    limits: &Limits,
) -> Result<Option<usize>, ParseError> {
    let view = &buf[..buf.len().min(limits.max_head)];
    let fault = line_ending_fault(view);
    let scan = fault.map_or(view, |(at, _)| &view[..at]);
    match req.parse(scan) {
        Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
        Ok(httparse::Status::Partial) => match fault {
            Some((_, e)) => Err(e),
            None if buf.len() > limits.max_head => Err(ParseError::HeadTooLarge),
            None => Ok(None),
        },
        Err(httparse::Error::TooManyHeaders) => Err(ParseError::TooManyHeaders),
        Err(httparse::Error::Version) => Err(ParseError::UnsupportedVersion),
        Err(_) => Err(ParseError::Malformed("bad request line or header")),
    }
}

/// The first bare LF line ending or obs-fold continuation line in `head`:
/// the position of its offending byte and the error it gets.
fn line_ending_fault(head: &[u8]) -> Option<(usize, ParseError)> {
    for (i, &b) in head.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        if i == 0 || head[i - 1] != b'\r' {
            return Some((i, ParseError::Malformed("bare LF line ending")));
        }
        if matches!(head.get(i + 1), Some(b' ') | Some(b'\t')) {
            return Some((i + 1, ParseError::Malformed("obsolete line folding")));
        }
    }
    None
}

/// Copies the parsed head out of the borrowed input.
fn copy_head(req: &httparse::Request<'_, '_>) -> Result<Head, ParseError> {
    let method = req.method.unwrap_or_default().to_string();
    let target = req.path.unwrap_or_default().to_string();
    let minor_version = req.version.unwrap_or(1);
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let hosts = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
        .count();
    if minor_version == 1 && hosts == 0 {
        return Err(ParseError::Malformed("HTTP/1.1 request without Host"));
    }
    if hosts > 1 {
        // RFC 9112 section 3.2: more than one Host line is a 400.
        return Err(ParseError::Malformed("more than one Host"));
    }
    let keep_alive = if minor_version == 1 {
        !header_has_token(&headers, "connection", "close")
    } else {
        header_has_token(&headers, "connection", "keep-alive")
    };
    Ok(Head {
        method,
        target,
        minor_version,
        headers,
        keep_alive,
    })
}

/// True when a comma-separated header `name` contains `token` (ASCII case-insensitive).
pub fn header_has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Decides how the body is delimited, enforcing the framing rules of RFC 9112 §6.
fn body_kind(headers: &[(String, String)], limits: &Limits) -> Result<BodyKind, ParseError> {
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(value)?;
            if length.is_some_and(|seen| seen != n) {
                return Err(ParseError::Malformed("conflicting Content-Length values"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.trim().eq_ignore_ascii_case("chunked") || chunked {
                return Err(ParseError::UnsupportedTransferEncoding);
            }
            chunked = true;
        }
    }
    match (length, chunked) {
        (Some(_), true) => Err(ParseError::Malformed(
            "Content-Length together with Transfer-Encoding",
        )),
        (_, true) => Ok(BodyKind::Chunked),
        (Some(n), false) if n > limits.max_body => Err(ParseError::BodyTooLarge),
        (n, false) => Ok(BodyKind::Length(n.unwrap_or(0))),
    }
}

/// Parses a Content-Length value: one or more ASCII digits, nothing else.
fn parse_length(value: &str) -> Result<usize, ParseError> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Malformed("non-numeric Content-Length"));
    }
    value
        .parse()
        .map_err(|_| ParseError::Malformed("Content-Length out of range"))
}

/// The most bytes an incomplete chunked body may occupy in the input: the body
/// itself twice over (for chunk framing) plus a head's worth of trailers.
fn chunked_encoding_cap(limits: &Limits) -> usize {
    limits
        .max_body
        .saturating_mul(2)
        .saturating_add(limits.max_head)
}

/// Decodes a chunked body; `Ok(None)` means more bytes are needed.
fn decode_chunked(
    mut rest: &[u8],
    max_body: usize,
) -> Result<Option<(Vec<u8>, usize)>, ParseError> {
    let start_len = rest.len();
    let mut body = Vec::new();
    loop {
        let (skip, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(ParseError::Malformed("bad chunk size")),
        };
        let size = usize::try_from(size).map_err(|_| ParseError::BodyTooLarge)?;
        if body.len().saturating_add(size) > max_body {
            return Err(ParseError::BodyTooLarge);
        }
        rest = &rest[skip..];
        if size == 0 {
            return match skip_trailers(rest)? {
                Some(used) => Ok(Some((body, start_len - rest.len() + used))),
                None => Ok(None),
            };
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err(ParseError::Malformed("chunk not followed by CRLF"));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Skips the trailer section after the last chunk; returns the bytes it used.
fn skip_trailers(rest: &[u8]) -> Result<Option<usize>, ParseError> {
    let mut pos = 0;
    loop {
        let Some(end) = rest[pos..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        if end == 0 {
            return Ok(Some(pos + 2));
        }
        if rest[pos..pos + end].contains(&b'\n') {
            return Err(ParseError::Malformed("bare LF in trailer"));
        }
        pos += end + 2;
    }
}
