//! Chunked body decoder properties. The decoder is reached through the
//! request parser with a fixed chunked head, the way the engine reaches it.
//!
//! - Round trip: a body the fuzzer chooses, cut into chunks of sizes it
//!   chooses, with chunk extensions, hex case, leading zeros and trailers it
//!   chooses, decodes to the same body and uses every byte; a `max_body` one
//!   byte short refuses it with `413`.
//! - Any bytes after the head: feeding them in pieces equals feeding them at
//!   once, and the limits hold (see [`super::request`]).

use super::request::{check_stream, limits};
use super::{cut_points, cut_seeds, Choices};
use crate::http::parse::{parse_request, Limits, ParseError, Progress};

/// The head every chunked input follows.
pub const HEAD: &[u8] = b"POST /c HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\n\r\n";

/// The property: the first byte picks round trip (even) or raw bytes (odd).
pub fn check(data: &[u8]) {
    let mut choices = Choices::new(data);
    if choices.flag() {
        raw(&mut choices);
    } else {
        round_trip(&mut choices);
    }
}

/// Arbitrary bytes as a chunked body, fed whole and in pieces.
fn raw(choices: &mut Choices<'_>) {
    let limits = limits(choices);
    let seeds = cut_seeds(choices);
    let mut stream = HEAD.to_vec();
    stream.extend_from_slice(choices.rest());
    let cuts = cut_points(&seeds, stream.len());
    check_stream(&stream, &cuts, &limits);
}

/// An encoding of a chosen body decodes to that body.
fn round_trip(choices: &mut Choices<'_>) {
    let plan_len = usize::from(choices.byte());
    let mut plan = Choices::new(choices.take(plan_len));
    let body = choices.rest();
    let encoded = encode(body, &mut plan);
    let limits = Limits::default();
    assert!(body.len() <= limits.max_body);
    let parsed = match parse_request(&encoded, &limits) {
        Ok(Progress::Complete(parsed)) => parsed,
        other => panic!(
            "a valid chunked body gave {other:?}: {:?}",
            String::from_utf8_lossy(&encoded)
        ),
    };
    assert_eq!(parsed.body, body, "the body changed in a round trip");
    assert_eq!(parsed.consumed, encoded.len(), "bytes left after the body");
    if let Some(short) = body.len().checked_sub(1) {
        let tight = Limits {
            max_body: short,
            ..limits
        };
        assert_eq!(
            parse_request(&encoded, &tight),
            Err(ParseError::BodyTooLarge),
            "a body one byte over max_body was not refused"
        );
    }
}

/// `body` as a request with a chunked body, framed as `plan` says.
pub fn encode(body: &[u8], plan: &mut Choices<'_>) -> Vec<u8> {
    let mut out = HEAD.to_vec();
    let mut rest = body;
    while !rest.is_empty() {
        let size = (1 + usize::from(plan.byte())).min(rest.len());
        chunk_line(&mut out, size, plan);
        out.extend_from_slice(&rest[..size]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[size..];
    }
    chunk_line(&mut out, 0, plan);
    for _ in 0..plan.byte() % 3 {
        out.extend_from_slice(b"X-Trailer-");
        out.extend_from_slice(token(plan).as_bytes());
        out.extend_from_slice(b": v\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A chunk-size line: hex size (either case, maybe zero-padded), maybe
/// extensions, CRLF.
fn chunk_line(out: &mut Vec<u8>, size: usize, plan: &mut Choices<'_>) {
    let style = plan.byte();
    for _ in 0..style % 3 {
        out.push(b'0');
    }
    let hex = if style & 4 == 0 {
        format!("{size:x}")
    } else {
        format!("{size:X}")
    };
    out.extend_from_slice(hex.as_bytes());
    if style & 8 != 0 {
        out.extend_from_slice(b";");
        out.extend_from_slice(token(plan).as_bytes());
        if style & 16 != 0 {
            out.extend_from_slice(b"=");
            out.extend_from_slice(token(plan).as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// A short non-empty token (RFC 9110 tchar letters and digits).
fn token(plan: &mut Choices<'_>) -> String {
    const ALPHABET: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~";
    let len = 1 + usize::from(plan.byte() % 8);
    (0..len)
        .map(|_| char::from(ALPHABET[usize::from(plan.byte()) % ALPHABET.len()]))
        .collect()
}
