//! Chunked body decoder properties, on [`ChunkedDecoder`] directly, fed the
//! way the request parser feeds it: after every read, the bytes it has not
//! consumed yet, until the body is done.
//!
//! - Round trip: a body the fuzzer chooses, cut into chunks of sizes it
//!   chooses, with chunk extensions, hex case, leading zeros and trailers it
//!   chooses, decodes to the same body and uses exactly its encoding, at once
//!   and in pieces; its exact size and encoded length pass as limits, one
//!   byte less of either gets `413`.
//! - Any bytes, with limits the fuzzer chooses: fed in pieces equals fed at
//!   once (the same body and bytes used, or the same error), and the body and
//!   the bytes used stay within the limits.

use super::{cut_points, cut_rest, cut_seeds, raw_or_round_trip, Choices};
use crate::http::parse::{ChunkedDecoder, ParseError};

/// What feeding a decoder gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fed {
    /// The decoder stopped without an error: the body so far, the bytes it
    /// used, and whether the body is complete.
    Decoded {
        /// The body decoded.
        body: Vec<u8>,
        /// Encoded bytes used.
        used: usize,
        /// The last chunk and the trailers were read.
        done: bool,
    },
    /// The decoder refused the input.
    Refused(ParseError),
}

/// The property: the first byte picks round trip (even) or raw bytes (odd).
pub fn check(data: &[u8]) {
    raw_or_round_trip(data, raw, round_trip);
}

/// Arbitrary bytes as a chunked body, fed whole and in pieces.
fn raw(choices: &mut Choices<'_>) {
    let max_body = usize::from(choices.u16());
    let max_encoded = usize::from(choices.u16());
    let (input, cuts) = cut_rest(choices);
    let whole = feed(input, &[], max_body, max_encoded);
    let pieces = feed(input, &cuts, max_body, max_encoded);
    assert_eq!(
        whole,
        pieces,
        "cutting at {cuts:?} changed the outcome of {:?}",
        String::from_utf8_lossy(input)
    );
}

/// An encoding of a chosen body decodes to that body, within exact limits.
fn round_trip(choices: &mut Choices<'_>) {
    let plan_len = usize::from(choices.byte());
    let mut plan = Choices::new(choices.take(plan_len));
    let seeds = cut_seeds(choices);
    let body = choices.rest();
    let encoded = encode(body, &mut plan);
    let cuts = cut_points(&seeds, encoded.len());
    let expected = Fed::Decoded {
        body: body.to_vec(),
        used: encoded.len(),
        done: true,
    };
    for cuts in [&[][..], &cuts] {
        let fed = feed(&encoded, cuts, body.len(), encoded.len());
        assert_eq!(fed, expected, "{:?}", String::from_utf8_lossy(&encoded));
    }
    let too_large = Fed::Refused(ParseError::BodyTooLarge);
    if let Some(short) = body.len().checked_sub(1) {
        let fed = feed(&encoded, &cuts, short, encoded.len());
        assert_eq!(fed, too_large, "a body one byte over max_body");
    }
    let fed = feed(&encoded, &cuts, body.len(), encoded.len() - 1);
    assert_eq!(fed, too_large, "an encoding one byte over its limit");
}

/// Feeds `input` in reads ending at each of `cuts` (sorted) and then at its
/// end: each call gets what earlier calls left unconsumed plus the new read.
pub fn feed(input: &[u8], cuts: &[usize], max_body: usize, max_encoded: usize) -> Fed {
    let mut decoder = ChunkedDecoder::new(max_body, max_encoded);
    let (mut body, mut pending, mut used, mut start) = (Vec::new(), Vec::new(), 0, 0);
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        pending.extend_from_slice(&input[start..cut]);
        start = cut;
        if pending.is_empty() {
            continue;
        }
        let step = match decoder.decode(&pending, &mut body) {
            Ok(step) => step,
            Err(e) => return Fed::Refused(e),
        };
        assert!(
            step.consumed == pending.len() || step.done,
            "input left unconsumed before the body ended"
        );
        assert!(step.consumed <= pending.len(), "consumed more than given");
        pending.drain(..step.consumed);
        used += step.consumed;
        assert_eq!(decoder.encoded_len(), used);
        assert!(body.len() <= max_body, "body over max_body");
        assert!(used <= max_encoded, "encoding over max_encoded");
        if step.done {
            break;
        }
    }
    Fed::Decoded {
        body,
        used,
        done: decoder.is_done(),
    }
}

/// `body` as a chunked encoding, framed as `plan` says.
pub fn encode(body: &[u8], plan: &mut Choices<'_>) -> Vec<u8> {
    let mut out = Vec::new();
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
