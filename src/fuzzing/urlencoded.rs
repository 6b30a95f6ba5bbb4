//! Query string and form decoding properties.
//!
//! - Round trip: pairs the fuzzer chooses, percent-encoded as a browser
//!   encodes a form, decode to the same pairs; a path segment encoded by the
//!   presence server decodes to itself.
//! - Any bytes: decoding never panics; text with no `%` or `+` decodes to
//!   itself; and the path-segment decoder agrees with the form decoder
//!   (given `+` as `%2B`, the one character their rules treat differently).

use super::{raw_or_round_trip, Choices};
use crate::http::{decode_component, decode_path_segment, encode_path_segment, form_pairs};

/// The property: the first byte picks round trip (even) or raw bytes (odd).
pub fn check(data: &[u8]) {
    raw_or_round_trip(data, |choices| raw(choices.rest()), round_trip);
}

/// Pairs separated by `0xff`, name and value by `0xfe`, encoded and decoded.
fn round_trip(choices: &mut Choices<'_>) {
    let mut pairs = Vec::new();
    while !choices.is_empty() {
        let mut pair = Choices::new(choices.until(0xff));
        let name = String::from_utf8_lossy(pair.until(0xfe)).into_owned();
        let value = String::from_utf8_lossy(pair.rest()).into_owned();
        pairs.push((name, value));
    }
    let encoded = pairs
        .iter()
        .map(|(n, v)| format!("{}={}", form_encode(n), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        form_pairs(encoded.as_bytes()),
        pairs,
        "form round trip of {encoded:?}"
    );
    for (name, value) in &pairs {
        for text in [name, value] {
            assert_eq!(&decode_path_segment(&encode_path_segment(text)), text);
        }
    }
}

/// Decoding arbitrary bytes.
fn raw(input: &[u8]) {
    let pairs = form_pairs(input);
    assert!(pairs.len() <= input.split(|&b| b == b'&').count());
    if !input.iter().any(|&b| b == b'%' || b == b'+') {
        assert_eq!(decode_component(input), String::from_utf8_lossy(input));
    }
    {
        // In a path segment `+` is itself; in a form it is written `%2B`.
        let text = String::from_utf8_lossy(input);
        assert_eq!(
            decode_path_segment(&text),
            decode_component(text.replace('+', "%2B").as_bytes()),
            "the two percent-decoders disagree on {text:?}"
        );
    }
}

/// `application/x-www-form-urlencoded` as the WHATWG URL standard writes it.
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b' ' => out.push('+'),
            b'*' | b'-' | b'.' | b'_' => out.push(char::from(b)),
            b if b.is_ascii_alphanumeric() => out.push(char::from(b)),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
