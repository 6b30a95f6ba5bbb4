//! Request parser property: a byte stream fed as the engine feeds it (one
//! [`RequestParser`] per connection, advanced after every read over the bytes
//! not yet consumed, each complete request taken, stop at the first error)
//! gives the same requests and the same ending whether it arrives in one
//! read or cut at the fuzzer's points (a refusal the parser defers until a
//! trickling head ends is the same refusal then; see [`check_stream`]). Also: every request is
//! self-delimiting (its own bytes alone parse the same in one call), within
//! the limits, and while waiting for more the parser never leaves more than
//! a head's worth of bytes unconsumed.

use super::{cut_rest, Choices};
use crate::http::parse::{parse_request, Limits, Parsed, Progress, RequestParser};

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
    let (stream, cuts) = cut_rest(&mut choices);
    check_stream(stream, &cuts, &limits);
}

/// Feeds `stream` whole and cut at `cuts` and asserts the outcomes agree.
///
/// One difference is by design: the parser looks at an incomplete head
/// whole only on its first read, at a bad line ending, once it has ended, or
/// past `max_head` (so a head trickling in costs each byte once), and a
/// fault that arrives in a later read is refused then. So when one read is
/// refused but the pieces still wait for the rest of the head, both must
/// give the same refusal once the head ends (`CRLF CRLF` arrives).
pub fn check_stream(stream: &[u8], cuts: &[usize], limits: &Limits) -> Outcome {
    let whole = feed(stream, &[], limits);
    let pieces = feed(stream, cuts, limits);
    if deferred_refusal(&whole, &pieces) {
        let mut closed = stream.to_vec();
        closed.extend_from_slice(b"\r\n\r\n");
        let mut closing_cuts = cuts.to_vec();
        closing_cuts.push(stream.len());
        assert_eq!(
            feed(&closed, &[], limits),
            feed(&closed, &closing_cuts, limits),
            "cutting at {cuts:?} changed the outcome of {:?} once the head ended",
            String::from_utf8_lossy(&closed)
        );
        return whole;
    }
    assert_eq!(
        whole,
        pieces,
        "cutting at {cuts:?} changed the outcome of {:?}",
        String::from_utf8_lossy(stream)
    );
    whole
}

/// One read was refused where the pieces still wait for the rest of a head.
fn deferred_refusal(whole: &Outcome, pieces: &Outcome) -> bool {
    let waiting_for_head = Progress::Partial {
        head_done: false,
        wants_continue: false,
    };
    whole.requests == pieces.requests
        && matches!(whole.end, End::Refused(_))
        && pieces.end == End::Waiting(waiting_for_head)
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
/// end, advancing the parser after every read as the engine does.
pub fn feed(stream: &[u8], cuts: &[usize], limits: &Limits) -> Outcome {
    let mut parser = RequestParser::new();
    let mut buf = Vec::new();
    let mut requests = Vec::new();
    let mut end = End::Idle;
    // Where in the stream the unconsumed bytes, and the current request, start.
    let (mut taken, mut request_start) = (0, 0);
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        buf.extend_from_slice(&stream[start..cut]);
        start = cut;
        while !buf.is_empty() {
            let advanced = match parser.advance(&buf, limits) {
                Ok(advanced) => advanced,
                Err(e) => {
                    return Outcome {
                        requests,
                        end: End::Refused(e.status()),
                    }
                }
            };
            assert!(advanced.consumed <= buf.len(), "consumed more than given");
            buf.drain(..advanced.consumed);
            taken += advanced.consumed;
            match advanced.progress {
                Progress::Complete(parsed) => {
                    check_complete(&stream[request_start..taken], &parsed, limits);
                    request_start = taken;
                    requests.push(parsed);
                }
                partial => {
                    check_waiting(&buf, limits);
                    end = End::Waiting(partial);
                    break;
                }
            }
        }
        if buf.is_empty() && parser.is_idle() {
            end = End::Idle;
        }
    }
    Outcome { requests, end }
}

/// A complete request used all its own bytes, is within the limits, and
/// parses the same from those bytes alone in one call.
fn check_complete(own: &[u8], parsed: &Parsed, limits: &Limits) {
    assert_eq!(
        parsed.consumed,
        own.len(),
        "consumed differs from bytes taken"
    );
    assert!(parsed.body.len() <= limits.max_body, "body over max_body");
    assert!(
        parsed.head.headers.len() <= limits.max_headers.max(1),
        "more headers than max_headers"
    );
    assert_eq!(
        parse_request(own, limits),
        Ok(Progress::Complete(parsed.clone())),
        "a request parsed differently from its own bytes in one call"
    );
}

/// Waiting for more never leaves more than a head's worth of bytes
/// unconsumed: body bytes are consumed (and limited) as they arrive.
fn check_waiting(buf: &[u8], limits: &Limits) {
    assert!(
        buf.len() <= limits.max_head,
        "{} bytes left unconsumed waiting for more, over max_head {}",
        buf.len(),
        limits.max_head
    );
}
