//! Addressed notifications (seed 003): what an application server posts to
//! `POST /notify`, `{"client": ID, "app": NAME, "data": ...}`, checked and
//! taken apart by one pure function, [`parse_notify`]. The notification goes
//! into the client's mailbox; the browser's one communication client (`GET
//! /poll`, with the client's mailbox key) reads every app's notifications and
//! its library hands each to the app's own handler.

use serde_json::value::{to_raw_value, RawValue};
use serde_json::Value;

/// One notification for one application client in one browser.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The communication client (one per browser) it is for.
    pub client: String,
    /// The application whose client in that browser receives it.
    pub app: String,
    /// The payload, checked JSON.
    pub data: Box<RawValue>,
}

/// Parses a `/notify` body. `client` may be a string or a number; `data`
/// may be any JSON value and defaults to `null`.
pub fn parse_notify(body: &[u8]) -> Result<Notification, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))?;
    let Value::Object(mut fields) = value else {
        return Err("expected a JSON object".into());
    };
    let client = match fields.remove("client") {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("\"client\" must be a string or a number".into()),
    };
    let app = match fields.remove("app") {
        Some(Value::String(s)) => s,
        _ => return Err("\"app\" must be a string".into()),
    };
    let data = fields.remove("data").unwrap_or(Value::Null);
    let data = to_raw_value(&data).map_err(|e| format!("bad data: {e}"))?;
    Ok(Notification { client, app, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let n = parse_notify(br#"{"client": 7, "app": "mail", "data": {"n": 1}}"#).expect("parses");
        assert_eq!((n.client.as_str(), n.app.as_str()), ("7", "mail"));
        assert_eq!(n.data.get(), r#"{"n":1}"#);
        let bare = parse_notify(br#"{"client": "c", "app": "a"}"#).expect("parses");
        assert_eq!(bare.data.get(), "null");
        assert!(parse_notify(br#"{"app": "mail"}"#).is_err());
        assert!(parse_notify(br#"{"client": "a"}"#).is_err());
        assert!(parse_notify(b"[1]").is_err());
        assert!(parse_notify(b"{").is_err());
    }
}
