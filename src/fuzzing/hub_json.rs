//! The server's client JSON inputs: `POST /notify` bodies (the hub) and
//! JSON request parameters (the presence server's `Params`).
//!
//! - `/notify`: parsing never panics; an accepted body names the client and
//!   app it was given, its `data` is valid JSON equal to the body's; and the
//!   envelope a poller receives for it (in every form) is valid JSON that
//!   carries the same app and data, so no body can smuggle fields into it.
//! - `Params`: every non-null member of a JSON object body is found under its
//!   name, strings as they are and other values as JSON text.

use std::time::Instant;

use serde_json::Value;

use crate::server::hub::{notify, wire, Entry, TopicKey};
use crate::server::presence::web::Params;
use crate::{ConnId, Framing, Request};

/// The property: any bytes, as a `/notify` body and as a JSON parameter body.
pub fn check(data: &[u8]) {
    check_notify(data);
    check_params(data);
}

/// A `/notify` body, parsed and delivered.
fn check_notify(body: &[u8]) {
    let Ok(n) = notify::parse(body) else {
        return;
    };
    let Ok(Value::Object(sent)) = serde_json::from_slice::<Value>(body) else {
        panic!("accepted a body that is not a JSON object");
    };
    let data: Value = serde_json::from_str(&n.data).expect("data is JSON");
    assert_eq!(&data, sent.get("data").unwrap_or(&Value::Null));
    let client = match &sent["client"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    assert_eq!(n.client, client);
    assert_eq!(sent["app"], Value::from(n.app.as_str()));
    let key = TopicKey::Client(n.client.clone());
    let entry = Entry {
        id: 1,
        at: Instant::now(),
        app: Some(n.app.clone()),
        data: n.data.clone().into_bytes(),
    };
    for (framing, mux) in [(Framing::Sse, false), (Framing::LongPoll, true)] {
        let form = wire::Form::of(&key, framing, mux);
        let msg = wire::message(form, &key, &entry);
        let got: Value = serde_json::from_slice(&msg.data).unwrap_or_else(|e| {
            panic!(
                "envelope is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&msg.data)
            )
        });
        let expected = serde_json::json!({ "id": 1, "app": n.app, "data": data });
        assert_eq!(got, expected, "the envelope differs from the notification");
    }
}

/// A JSON body as request parameters.
fn check_params(body: &[u8]) {
    let req = Request {
        conn: ConnId { key: 0, gen: 0 },
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
