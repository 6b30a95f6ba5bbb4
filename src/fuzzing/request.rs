//! Request parser property: a byte stream fed as the engine feeds it (parse
//! after every read, take each complete request off the front, stop at the
//! first error) gives the same requests and the same ending whether it
//! arrives in one read or cut at the fuzzer's points. Also: every request is
//! self-delimiting (its own bytes alone parse the same) and within the
//! limits, and "need more bytes" never lets the buffer grow past them.

use super::{cut_points, cut_seeds, Choices};
use crate::http::parse::{parse_request, Limits, Parsed, Progress};

/// How a fed stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Every byte was taken by complete requests.
    Idle,
    /// Bytes are left over and the parser wants more (its last answer).
    Waiting(Progress),
    /// The parser refused the stream with this status; the engine answers
    /// and closes. Only the status must not depend on the cuts: which of two
    /// faults the parser names first may depend on how much it has seen.
    Refused(u16),
}

/// The requests a stream yielded, in order, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The complete requests, in order.
    pub requests: Vec<Parsed>,
    /// How the stream ended.
    pub end: End,
}

/// The property: `data` is limits, cut points and then the stream.
pub fn check(data: &[u8]) {
    let mut choices = Choices::new(data);
    let limits = limits(&mut choices);
    let seeds = cut_seeds(&mut choices);
    let stream = choices.rest();
    check_stream(stream, &cut_points(&seeds, stream.len()), &limits);
}

/// Feeds `stream` whole and cut at `cuts` and asserts the outcomes agree.
pub fn check_stream(stream: &[u8], cuts: &[usize], limits: &Limits) -> Outcome {
    let whole = feed(stream, &[], limits);
    let pieces = feed(stream, cuts, limits);
    assert_eq!(
        whole,
        pieces,
        "cutting at {cuts:?} changed the outcome of {:?}",
        String::from_utf8_lossy(stream)
    );
    whole
}

/// Limits for one run: the defaults, or small ones chosen by the fuzzer so
/// that every limit can be reached by a short input.
pub fn limits(choices: &mut Choices<'_>) -> Limits {
    if !choices.flag() {
        return Limits::default();
    }
    Limits {
        max_head: 16 + 2 * usize::from(choices.byte()),
        max_headers: 1 + usize::from(choices.byte() % 16),
        max_body: usize::from(choices.byte()),
    }
}

/// Feeds `stream` in reads ending at each of `cuts` (sorted) and then at its
/// end, parsing after every read as the engine does.
pub fn feed(stream: &[u8], cuts: &[usize], limits: &Limits) -> Outcome {
    let mut buf = Vec::new();
    let mut requests = Vec::new();
    let mut end = End::Idle;
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        buf.extend_from_slice(&stream[start..cut]);
        start = cut;
        while !buf.is_empty() {
            match parse_request(&buf, limits) {
                Err(e) => {
                    return Outcome {
                        requests,
                        end: End::Refused(e.status()),
                    }
                }
                Ok(Progress::Complete(parsed)) => {
                    check_complete(&buf, &parsed, limits);
                    buf.drain(..parsed.consumed);
                    requests.push(parsed);
                }
                Ok(partial) => {
                    check_waiting(&buf, limits);
                    end = End::Waiting(partial);
                    break;
                }
            }
        }
        if buf.is_empty() {
            end = End::Idle;
        }
    }
    Outcome { requests, end }
}

/// A complete request used some of the buffer, is within the limits, and
/// parses the same from its own bytes alone.
fn check_complete(buf: &[u8], parsed: &Parsed, limits: &Limits) {
    assert!(parsed.consumed > 0 && parsed.consumed <= buf.len());
    assert!(parsed.body.len() <= limits.max_body, "body over max_body");
    assert!(
        parsed.head.headers.len() <= limits.max_headers.max(1),
        "more headers than max_headers"
    );
    let alone = parse_request(&buf[..parsed.consumed], limits);
    assert_eq!(
        alone,
        Ok(Progress::Complete(parsed.clone())),
        "a request parsed differently without the bytes after it"
    );
}

/// "Need more bytes" keeps the buffered input within what the limits allow:
/// a head of `max_head`, and a body of `max_body` in at most twice its size
/// of chunk framing plus a head's worth of trailers.
fn check_waiting(buf: &[u8], limits: &Limits) {
    let bound = limits
        .max_head
        .saturating_mul(2)
        .saturating_add(limits.max_body.saturating_mul(2));
    assert!(
        buf.len() <= bound,
        "{} bytes buffered waiting for more, over the limits' {bound}",
        buf.len()
    );
}
