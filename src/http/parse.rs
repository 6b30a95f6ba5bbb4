//! Pure HTTP/1.x request parsing over byte slices.
//!
//! This file owns the decision of what a request is: where its head ends, how
//! long its body is, and which malformed inputs get which status. It touches no
//! socket. A [`RequestParser`] is fed the bytes not yet consumed and gets back
//! a complete request, "need more bytes", or an error that names the status to
//! answer with; once the head is complete it consumes body bytes as they come
//! and keeps its place (the length left, or the [`ChunkedDecoder`]'s state), so
//! a slow body costs each byte once. [`parse_request`] is the same over one
//! buffer. Every split point of a request must give the same result as the
//! whole request, which `tests/parse.rs` checks.

pub use super::chunked::{ChunkedDecoder, Decoded};
pub use super::error::ParseError;

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
    /// Bytes of input this request occupied, head and body, over all the
    /// calls that parsed it; pipelined requests follow them.
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

/// What a [`RequestParser::advance`] call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advanced {
    /// Bytes of the input used. The caller drops them and passes only what
    /// follows next time; on `Complete`, what follows is the next request.
    pub consumed: usize,
    /// Where the request stands.
    pub progress: Progress,
}

/// A request whose head is complete and whose body is still arriving.
#[derive(Debug)]
struct BodyInProgress {
    head: Head,
    wants_continue: bool,
    /// The body so far, de-chunked; grows with what arrives, not with what
    /// `Content-Length` claims.
    body: Vec<u8>,
    delimiter: Delimiter,
    /// Bytes of input the request has used so far, head included.
    used: usize,
}

/// How the rest of a body in progress is found.
#[derive(Debug)]
enum Delimiter {
    /// This many bytes are still to come.
    Length(usize),
    /// The chunked decoder, where it stopped.
    Chunked(ChunkedDecoder),
}

/// Parses the requests of one connection, one after another, keeping its
/// place between calls: how much of an incomplete head it has already looked
/// at, or where it is inside a body. Idle, it costs two words.
#[derive(Debug, Default)]
pub struct RequestParser {
    body: Option<Box<BodyInProgress>>,
    /// Bytes of an incomplete head already looked at by earlier calls.
    head_seen: usize,
}

impl RequestParser {
    /// A parser waiting for a request head.
    pub fn new() -> Self {
        RequestParser::default()
    }

    /// True when no request is under way: no head has been consumed whose body
    /// is still missing.
    pub fn is_idle(&self) -> bool {
        self.body.is_none()
    }

    /// Parses what `buf` holds: the bytes after those consumed by earlier calls.
    ///
    /// Until the head is complete nothing is consumed: each call looks only at
    /// the bytes added since the last one (for line endings and the blank line
    /// that ends the head), and the head is parsed whole when it has arrived,
    /// on the first look (so garbage is refused at once), or once it is over
    /// `max_head`. From then on every body byte is consumed as it arrives.
    /// After an error the parser must not be used again.
    pub fn advance(&mut self, buf: &[u8], limits: &Limits) -> Result<Advanced, ParseError> {
        let mut consumed = 0;
        let mut state = match self.body.take() {
            Some(state) => state,
            None => match self.look_for_head(buf, limits)? {
                HeadStep::Partial => {
                    return Ok(Advanced {
                        consumed: 0,
                        progress: Progress::Partial {
                            head_done: false,
                            wants_continue: false,
                        },
                    })
                }
                HeadStep::Done(state, head_len) => {
                    consumed = head_len;
                    state
                }
            },
        };
        let rest = &buf[consumed..];
        let (used, done) = match &mut state.delimiter {
            Delimiter::Length(left) => {
                let take = (*left).min(rest.len());
                state.body.extend_from_slice(&rest[..take]);
                *left -= take;
                (take, *left == 0)
            }
            Delimiter::Chunked(decoder) => {
                let step = decoder.decode(rest, &mut state.body)?;
                (step.consumed, step.done)
            }
        };
        consumed += used;
        state.used += consumed;
        let progress = if done {
            let BodyInProgress {
                head, body, used, ..
            } = *state;
            Progress::Complete(Parsed {
                head,
                body,
                consumed: used,
            })
        } else {
            let wants_continue = state.wants_continue;
            self.body = Some(state);
            Progress::Partial {
                head_done: true,
                wants_continue,
            }
        };
        Ok(Advanced { consumed, progress })
    }
}

impl RequestParser {
    /// Looks at the bytes of an incomplete head added since the last call and
    /// parses the head when it can be complete or must be refused.
    fn look_for_head(&mut self, buf: &[u8], limits: &Limits) -> Result<HeadStep, ParseError> {
        let seen = self.head_seen.min(buf.len());
        // The blank line may straddle the bytes already seen and the new ones.
        let from = seen.saturating_sub(3);
        let end = buf[from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| from + at + 4);
        let ended = end.is_some();
        // Line endings of the head only: the body may hold any bytes. A bad
        // one is refused at once, by the whole-head parse, which names the
        // earliest fault (a bad version before it wins, as in one buffer).
        let bad_ending = line_ending_fault(&buf[..end.unwrap_or(buf.len())], seen).is_some();
        if seen == 0 || ended || bad_ending || buf.len() > limits.max_head {
            if let step @ HeadStep::Done(..) = parse_head(buf, limits)? {
                self.head_seen = 0;
                return Ok(step);
            }
        }
        self.head_seen = buf.len();
        Ok(HeadStep::Partial)
    }
}

/// Parses the request at the start of `buf` (one call of a fresh [`RequestParser`]).
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Progress, ParseError> {
    RequestParser::new()
        .advance(buf, limits)
        .map(|advanced| advanced.progress)
}

/// The outcome of looking for a complete head.
enum HeadStep {
    Partial,
    /// The head, ready for its body, and its length in bytes.
    Done(Box<BodyInProgress>, usize),
}

/// Parses the head at the start of `buf` and decides how its body is delimited.
fn parse_head(buf: &[u8], limits: &Limits) -> Result<HeadStep, ParseError> {
    #[cfg(test)]
    tests::HEAD_PARSES.with(|n| n.set(n.get() + 1));
    let mut slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
    let slots = &mut slots[..limits.max_headers.clamp(1, HEADER_SLOTS)];
    let mut req = httparse::Request::new(slots);
    let Some(head_len) = find_head(&mut req, buf, limits)? else {
        return Ok(HeadStep::Partial);
    };
    let head = copy_head(&req)?;
    let delimiter = match body_kind(&head, limits)? {
        BodyKind::Length(n) => Delimiter::Length(n),
        BodyKind::Chunked => Delimiter::Chunked(ChunkedDecoder::new(
            limits.max_body,
            chunked_encoding_cap(limits),
        )),
    };
    // RFC 9110 section 10.1.1: never a 100 (Continue) to an HTTP/1.0 client.
    let wants_continue =
        head.minor_version >= 1 && header_has_token(&head.headers, "expect", "100-continue");
    let state = BodyInProgress {
        head,
        wants_continue,
        body: Vec::new(),
        delimiter,
        used: 0,
    };
    Ok(HeadStep::Done(Box::new(state), head_len))
}

/// Parses the head into `req`: its length once complete, `None` while more
/// bytes are needed. Only the first `max_head` bytes are looked at, and only
/// those before the first bad line ending, so the earliest fault decides and
/// the answer is the same however the bytes were split into reads.
fn find_head<'b>(
    req: &mut httparse::Request<'_, 'b>,
    buf: &'b [u8],
    limits: &Limits,
) -> Result<Option<usize>, ParseError> {
    let view = &buf[..buf.len().min(limits.max_head)];
    // Faults past the blank line and the byte after it (which shows a fold)
    // cannot change the answer; not scanning them keeps a buffer of many
    // pipelined requests from costing up to `max_head` per request.
    let decisive = view
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(view.len(), |at| (at + 5).min(view.len()));
    let fault = line_ending_fault(&view[..decisive], 0);
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

/// The first bare LF line ending or obs-fold continuation line in `head`
/// among the line feeds at or after `from` and the one just before it (whose
/// next byte may have arrived only now): the position of its offending byte
/// and the error it gets.
fn line_ending_fault(head: &[u8], from: usize) -> Option<(usize, ParseError)> {
    for (i, &b) in head.iter().enumerate().skip(from.saturating_sub(1)) {
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
fn body_kind(head: &Head, limits: &Limits) -> Result<BodyKind, ParseError> {
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(value)?;
            if length.is_some_and(|seen| seen != n) {
                return Err(ParseError::Malformed("conflicting Content-Length values"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if head.minor_version == 0 {
                // RFC 9112 section 6.1: an HTTP/1.0 message with a transfer
                // coding was likely forwarded by something that did not decode it.
                return Err(ParseError::Malformed(
                    "Transfer-Encoding in an HTTP/1.0 request",
                ));
            }
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

/// The most bytes a chunked body may occupy in the input: the body itself
/// twice over (for chunk framing) plus a head's worth of extensions and trailers.
fn chunked_encoding_cap(limits: &Limits) -> usize {
    limits
        .max_body
        .saturating_mul(2)
        .saturating_add(limits.max_head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// How often this thread ran the whole-head parse.
        pub(super) static HEAD_PARSES: Cell<usize> = const { Cell::new(0) };
    }

    /// A head that trickles in a byte per read is parsed whole twice (on
    /// the first look and once it has ended), not once per read; and it is
    /// the same request as parsed from one buffer.
    #[test]
    fn slow_head_is_parsed_whole_only_when_it_can_be_complete() {
        let mut raw = b"GET /slow HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..60 {
            let value = "v".repeat(60);
            raw.extend_from_slice(format!("X-Header-{i}: {value}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let limits = Limits::default();
        let whole = parse_request(&raw, &limits).unwrap();
        HEAD_PARSES.with(|n| n.set(0));
        let mut parser = RequestParser::new();
        let mut got = None;
        for end in 1..=raw.len() {
            let step = parser.advance(&raw[..end], &limits).unwrap();
            if let Progress::Complete(_) = step.progress {
                assert_eq!(end, raw.len());
                got = Some(step.progress);
            }
        }
        assert_eq!(got, Some(whole));
        assert_eq!(HEAD_PARSES.with(Cell::get), 2);
    }

    /// Errors in a head that trickles in a byte per read: a bare LF and
    /// obs-fold as soon as their bytes arrive, a malformed line once the head
    /// has ended (or it is over `max_head`), the same errors as from one buffer.
    #[test]
    fn errors_in_a_slow_head() {
        let limits = Limits::default();
        for (raw, error, found_at) in [
            (
                &b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n"[..],
                "bare LF line ending",
                24,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\n z\r\n\r\n",
                "obsolete line folding",
                26,
            ),
            (
                b"GET / HTTP/1.1\r\nHost a\r\nX: y\r\n\r\n",
                "bad request line or header",
                32,
            ),
        ] {
            assert_eq!(
                parse_request(raw, &limits),
                Err(ParseError::Malformed(error))
            );
            let mut parser = RequestParser::new();
            let failed = (1..=raw.len())
                .find_map(|end| parser.advance(&raw[..end], &limits).err().map(|e| (e, end)));
            assert_eq!(failed, Some((ParseError::Malformed(error), found_at)));
        }
        // Garbage is refused on the first look.
        let mut parser = RequestParser::new();
        assert!(parser.advance(b"\x16\x03\x01", &limits).is_err());
    }
}
