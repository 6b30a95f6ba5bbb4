//! SIP message properties (`crate::server::sip`).
//!
//! The first byte picks the transport (odd: stream); then up to 16 cut
//! choices ([`cut_seeds`]); the rest is the message.
//!
//! - Nothing panics, whatever the bytes.
//! - Stream framing: when `find_message_end` frames `n` bytes, every shorter
//!   prefix (at the fuzzer's cuts) waits (`Ok(None)`), and the framed bytes
//!   parse on a stream exactly as they parse alone.
//! - A parsed message's URIs print back to themselves: `SipUri::parse` of a
//!   printed URI gives the same URI.
//! - Every parsed request can be answered: the response builder succeeds,
//!   and its bytes parse back (as a datagram and on a stream) with the same
//!   Vias, From, Call-ID and CSeq, and a To tag.

use super::{cut_points, cut_seeds, Choices};
use crate::server::sip::{
    find_message_end, parse_message, Limits, Message, ResponseBuilder, SipUri, Transport, Uri,
};

/// The property.
pub fn check(data: &[u8]) {
    let mut choices = Choices::new(data);
    let stream = choices.flag();
    let seeds = cut_seeds(&mut choices);
    let bytes = choices.rest();
    let limits = Limits {
        max_message_size: 8 * 1024,
        max_headers: 64,
    };
    if stream {
        check_framing(bytes, &seeds, &limits);
    }
    let transport = if stream {
        Transport::Stream
    } else {
        Transport::Datagram
    };
    if let Ok(message) = parse_message(bytes, transport, &limits) {
        check_uris(&message);
        check_response(&message, &limits);
    }
}

/// Prefixes wait; the framed message parses the same alone.
fn check_framing(bytes: &[u8], seeds: &[u16], limits: &Limits) {
    let Ok(Some(end)) = find_message_end(bytes, limits) else {
        return;
    };
    assert!(end <= bytes.len(), "framed {end} of {} bytes", bytes.len());
    for cut in cut_points(seeds, end) {
        if cut < end {
            assert_eq!(
                find_message_end(&bytes[..cut], limits),
                Ok(None),
                "a prefix of {cut} of a {end}-byte message did not wait"
            );
        }
    }
    let alone = parse_message(&bytes[..end], Transport::Stream, limits);
    let in_stream = parse_message(bytes, Transport::Stream, limits);
    assert_eq!(
        alone, in_stream,
        "trailing bytes changed the framed message"
    );
}

/// URIs print back to themselves.
fn check_uris(message: &Message) {
    let mut uris = vec![&message.from.uri, &message.to.uri];
    uris.extend(message.request_uri());
    for uri in uris {
        if let Uri::Sip(sip) = uri {
            let printed = sip.to_string();
            assert_eq!(SipUri::parse(&printed).as_ref(), Some(sip), "{printed}");
        }
    }
}

/// A request's response builds and parses back.
fn check_response(request: &Message, limits: &Limits) {
    if request.method().is_none() {
        return;
    }
    let bytes = ResponseBuilder::new(request, 486, "Busy Here")
        .to_tag("fz1")
        .body("text/plain", b"busy")
        .build()
        .expect("a response to a parsed request builds");
    let big_enough = Limits {
        max_message_size: bytes.len(),
        ..*limits
    };
    for transport in [Transport::Datagram, Transport::Stream] {
        let response = parse_message(&bytes, transport, &big_enough).unwrap_or_else(|e| {
            panic!(
                "built response refused ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert_eq!(response.status(), Some(486));
        assert_eq!(response.vias, request.vias);
        assert_eq!(response.from, request.from);
        assert_eq!(response.call_id, request.call_id);
        assert_eq!(response.cseq, request.cseq);
        assert_eq!(response.to.uri, request.to.uri);
        assert!(response.to.tag().is_some());
        assert_eq!(response.body, b"busy");
    }
    assert_eq!(find_message_end(&bytes, &big_enough), Ok(Some(bytes.len())));
}
