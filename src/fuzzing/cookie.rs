//! Session cookie parsing properties.
//!
//! - Round trip: the session id the server sets (`Set-Cookie`, kept by the
//!   browser as its first `name=value`), sent back in a `Cookie` header the
//!   fuzzer builds (other cookies before and after, with or without the
//!   space after `;`, maybe split over two `Cookie` lines), yields exactly
//!   that id.
//! - Any header lines: parsing never panics, and what it finds is the value
//!   of an `altsock_session=` pair in a `Cookie` line, with no `;` in it.

use super::{raw_or_round_trip, Choices};
use std::time::Duration;

use crate::server::sessions::{read_session_cookie, set_session_cookie, SESSION_COOKIE};
use crate::{ConnId, Request};

/// The property: the first byte picks round trip (even) or raw bytes (odd).
pub fn check(data: &[u8]) {
    raw_or_round_trip(data, raw, round_trip);
}

/// A request carrying these header lines and nothing else.
fn request(headers: Vec<(String, String)>) -> Request {
    Request {
        conn: ConnId { key: 0, gen: 0 },
        seq: 0,
        method: "GET".into(),
        target: "/".into(),
        minor_version: 1,
        headers,
        body: Vec::new(),
        peer: None,
    }
}

/// Header lines from the fuzzer (name `0xfe` value, lines split by `0xff`).
fn raw(choices: &mut Choices<'_>) {
    let mut headers = Vec::new();
    while !choices.is_empty() {
        let mut line = Choices::new(choices.until(0xff));
        let name = String::from_utf8_lossy(line.until(0xfe)).into_owned();
        let value = String::from_utf8_lossy(line.rest()).into_owned();
        headers.push((name, value));
    }
    let req = request(headers);
    if let Some(id) = read_session_cookie(&req) {
        assert!(!id.contains(';'), "a session id with ';' in it: {id:?}");
        let pair = format!("{SESSION_COOKIE}={id}");
        let found = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .any(|(_, v)| v.split(';').any(|kv| kv.trim() == pair.trim()));
        assert!(found, "{id:?} is not the value of a session cookie pair");
    }
}

/// A session id among other cookies.
fn round_trip(choices: &mut Choices<'_>) {
    let id = cookie_value(choices, true);
    let before = other_cookies(choices);
    let after = other_cookies(choices);
    let tight = choices.flag();
    let sep = if tight { ";" } else { "; " };
    let set = set_session_cookie(&id, Duration::from_secs(60), choices.flag());
    let (stored, _attributes) = set.split_once(';').unwrap_or((&set, ""));
    let mut ours = before.clone();
    ours.push(stored.to_string());
    ours.extend(after);
    let headers = if choices.flag() && !before.is_empty() {
        // The cookies before ours on a first `Cookie` line of their own.
        vec![
            ("cookie".to_string(), before.join(sep)),
            ("Cookie".to_string(), ours[before.len()..].join(sep)),
        ]
    } else {
        vec![("Cookie".to_string(), ours.join(sep))]
    };
    let req = request(headers);
    assert_eq!(
        read_session_cookie(&req),
        Some(id),
        "headers {:?}",
        req.headers
    );
}

/// Up to three cookies whose names are not the session cookie's.
fn other_cookies(choices: &mut Choices<'_>) -> Vec<String> {
    (0..choices.byte() % 4)
        .map(|_| {
            let mut name = cookie_value(choices, false);
            name.retain(|c| c != '=');
            if name.is_empty() || name == SESSION_COOKIE {
                name.push('x');
            }
            format!("{name}={}", cookie_value(choices, false))
        })
        .collect()
}

/// A cookie value: RFC 6265 cookie-octets, at least one when `nonempty`.
fn cookie_value(choices: &mut Choices<'_>, nonempty: bool) -> String {
    let len = usize::from(choices.byte() % 40) + usize::from(nonempty);
    (0..len)
        .map(|_| {
            let b = 0x21 + choices.byte() % (0x7f - 0x21);
            match b {
                b'"' | b',' | b';' | b'\\' => 'a',
                b => char::from(b),
            }
        })
        .collect()
}
