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
/// place inside a body between calls. Idle, it costs one pointer.
#[derive(Debug, Default)]
pub struct RequestParser {
    body: Option<Box<BodyInProgress>>,
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
    /// Until the head is complete nothing is consumed (the head is parsed whole,
    /// at most `max_head` bytes); from then on every body byte is consumed as
    /// it arrives. After an error the parser must not be used again.
    pub fn advance(&mut self, buf: &[u8], limits: &Limits) -> Result<Advanced, ParseError> {
        let mut consumed = 0;
        let mut state = match self.body.take() {
            Some(state) => state,
            None => match parse_head(buf, limits)? {
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
    let mut slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
    let slots = &mut slots[..limits.max_headers.clamp(1, HEADER_SLOTS)];
    let mut req = httparse::Request::new(slots);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            check_line_endings(buf)?;
            if buf.len() > limits.max_head {
                return Err(ParseError::HeadTooLarge);
            }
            return Ok(HeadStep::Partial);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(ParseError::UnsupportedVersion),
        Err(_) => {
            check_line_endings(buf)?;
            return Err(ParseError::Malformed("bad request line or header"));
        }
    };
    if head_len > limits.max_head {
        return Err(ParseError::HeadTooLarge);
    }
    check_line_endings(&buf[..head_len])?;
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

/// Rejects bare LF line endings and obs-fold continuation lines.
fn check_line_endings(head: &[u8]) -> Result<(), ParseError> {
    for (i, &b) in head.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        if i == 0 || head[i - 1] != b'\r' {
            return Err(ParseError::Malformed("bare LF line ending"));
        }
        let next = head.get(i + 1).copied();
        if matches!(next, Some(b' ') | Some(b'\t')) {
            return Err(ParseError::Malformed("obsolete line folding"));
        }
    }
    Ok(())
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
