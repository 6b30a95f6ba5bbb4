//! The server's client JSON inputs: the hub's `POST /notify`, `POST
//! /hub/client` and `POST /hub/auth` bodies and subscription tokens, and the
//! presence server's JSON request parameters (`Params`).
//!
//! - `/notify`: parsing never panics; an accepted body is a JSON object
//!   whose client and app it keeps, and whose data it keeps as one line of
//!   JSON equal to what was posted; the envelope a poller receives for it (as
//!   a JSON line and as SSE data) is valid JSON carrying the same app and
//!   data, on one line, so no body can smuggle fields or lines into it.
//! - `/hub/client`, `/hub/auth`: parsing never panics; an accepted `ttl` is
//!   at least 1.
//! - Tokens: claims the fuzzer writes, once signed, verify to themselves
//!   before they expire and not after; the fuzzer's bytes as a token never
//!   verify (nobody forges a signature).
//! - `Params`: every non-null member of a JSON object body is found under its
//!   name, strings as they are and other values as JSON text.

use std::time::Instant;

use serde_json::Value;

use crate::server::hub::{
    parse_auth_request, parse_claims, parse_client_request, parse_notify, parse_token_header, wire,
    Body, Entry, HubSecret, TopicKey,
};
use crate::server::presence::params::Params;
use crate::{ConnId, Framing, Request};

/// The property: any bytes, as every JSON input.
pub fn check(data: &[u8]) {
    check_notify(data);
    check_grants(data);
    check_token(data);
    check_params(data);
}

/// A `/notify` body, parsed and delivered.
fn check_notify(body: &[u8]) {
    let Ok(n) = parse_notify(body) else {
        return;
    };
    assert!(is_json(body), "accepted a body that is not JSON");
    assert!(!n.data.get().contains(['\n', '\r']), "data on two lines");
    let key = TopicKey::Mailbox(n.client.clone());
    let entry = Entry {
        id: 1,
        at: Instant::now(),
        body: Body::Notification {
            app: n.app.clone(),
            data: n.data.clone(),
        },
    };
    let envelopes = [(Framing::Sse, false), (Framing::LongPoll, true)].map(|(framing, mux)| {
        let msg = wire::message(wire::Shape::of(&key, framing, mux), &key, &entry);
        let text = String::from_utf8_lossy(&msg.data).into_owned();
        assert!(
            !text.trim_end_matches('\n').contains(['\n', '\r']) && is_json(&msg.data),
            "an envelope that is not one line of JSON: {text:?}"
        );
        text
    });
    // Numbers past f64 are valid JSON (a browser reads them as Infinity) but
    // not a serde_json `Value`: the fields are compared when they are one.
    let Ok(Value::Object(sent)) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let data: Value = serde_json::from_str(n.data.get()).expect("data is JSON");
    assert_eq!(&data, sent.get("data").unwrap_or(&Value::Null));
    let client = match &sent["client"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    assert_eq!(n.client, client);
    assert_eq!(sent["app"], Value::from(n.app.as_str()));
    let expected = serde_json::json!({ "id": 1, "app": n.app, "data": data });
    for text in envelopes {
        let got: Value = serde_json::from_str(&text).expect("checked above");
        assert_eq!(got, expected, "the envelope differs from the notification");
    }
}

/// Valid JSON text: UTF-8, and the grammar of RFC 8259 (numbers of any size).
fn is_json(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes)
        .is_ok_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok())
}

/// `/hub/client` and `/hub/auth` bodies.
fn check_grants(body: &[u8]) {
    let is_json = is_json(body);
    if parse_client_request(body).is_ok() {
        let empty = body.iter().all(u8::is_ascii_whitespace);
        assert!(
            is_json || empty,
            "accepted a /hub/client body that is not JSON"
        );
    }
    if let Ok(auth) = parse_auth_request(body) {
        assert!(is_json, "accepted a /hub/auth body that is not JSON");
        assert_ne!(auth.ttl, Some(0), "a token that expires as it is made");
    }
}

/// Tokens: the bytes as claims, signed and verified; and as a token.
fn check_token(data: &[u8]) {
    let secret = HubSecret::from_text(&"fuzz-secret-".repeat(6)).expect("a long secret");
    let _ = parse_token_header(data);
    if let Ok(claims) = parse_claims(data) {
        let token = secret.sign_token(&claims);
        if let Some(before) = claims.exp.checked_sub(1) {
            assert_eq!(secret.verify_token(&token, before), Ok(claims.clone()));
        }
        assert!(secret.verify_token(&token, claims.exp).is_err(), "expired");
    }
    let forged = String::from_utf8_lossy(data);
    assert!(
        secret.verify_token(&forged, 0).is_err(),
        "a token nobody signed verified: {forged:?}"
    );
}

/// A JSON body as request parameters.
fn check_params(body: &[u8]) {
    let req = Request {
        conn: ConnId { key: 0, gen: 0 },
        seq: 0,
        method: "POST".into(),
        target: "/p".into(),
        minor_version: 1,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_vec(),
        peer: None,
    };
    let params = Params::of(&req);
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    for (name, value) in &map {
        let expected = match value {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(params.get(name), Some(expected.as_str()), "param {name:?}");
    }
}
