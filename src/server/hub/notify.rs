//! Addressed notifications (seed 003): what an application server posts to
//! `POST /notify`, `{"client": ID, "app": NAME, "data": ...}`, checked and
//! taken apart by one pure function, [`parse_notify`]. The notification goes
//! into the client's mailbox; the browser's one communication client (`GET
//! /poll`, with the client's mailbox key) reads every app's notifications and
//! its library hands each to the app's own handler.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// One notification for one application client in one browser.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The communication client (one per browser) it is for.
    pub client: String,
    /// The application whose client in that browser receives it.
    pub app: String,
    /// The payload: checked JSON as posted, without the whitespace between
    /// tokens (so it stays on one line of a JSON-lines stream). Numbers are
    /// not re-encoded, so none is rounded on its way to the browser.
    pub data: Box<RawValue>,
}

/// The fields of a `/notify` body; others are ignored.
#[derive(Deserialize)]
struct Fields {
    client: Option<Value>,
    app: Option<Value>,
    data: Option<Box<RawValue>>,
}

/// Parses a `/notify` body. `client` may be a string or a number; `data`
/// may be any JSON value and defaults to `null`.
pub fn parse_notify(body: &[u8]) -> Result<Notification, String> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("expected a JSON object".into());
    }
    // JSON is UTF-8 (RFC 8259). Checked first: serde skips the fields it
    // ignores without looking inside their strings.
    let text = std::str::from_utf8(body).map_err(|_| "bad JSON: not UTF-8".to_string())?;
    let fields: Fields = serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?;
    let client = match fields.client {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("\"client\" must be a string or a number".into()),
    };
    let app = match fields.app {
        Some(Value::String(s)) => s,
        _ => return Err("\"app\" must be a string".into()),
    };
    let data = fields.data.as_deref().map_or("null", RawValue::get);
    let data = RawValue::from_string(compact(data)).map_err(|e| format!("bad data: {e}"))?;
    Ok(Notification { client, app, data })
}

/// Valid JSON without the whitespace between its tokens (whitespace inside
/// strings is kept; a raw newline cannot be inside one).
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let n = parse_notify(br#"{"client": 7, "app": "mail", "data": {"n": 1}}"#).expect("parses");
        assert_eq!((n.client.as_str(), n.app.as_str()), ("7", "mail"));
        assert_eq!(n.data.get(), r#"{"n":1}"#);
        let pretty = "{\"client\":\"c\",\"app\":\"a\",\"data\":{\n  \"s\": \"a \\\" b\\n\",\n  \"t\": [1, 2]\n}}";
        let n = parse_notify(pretty.as_bytes()).expect("parses");
        assert_eq!(n.data.get(), r#"{"s":"a \" b\n","t":[1,2]}"#, "one line");
        let bare = parse_notify(br#"{"client": "c", "app": "a"}"#).expect("parses");
        assert_eq!(bare.data.get(), "null");
        assert!(parse_notify(br#"{"app": "mail"}"#).is_err());
        assert!(parse_notify(br#"{"client": "a"}"#).is_err());
        assert!(parse_notify(b"[1]").is_err());
        assert!(parse_notify(b"{").is_err());
        assert!(parse_notify(br#"[7, "mail", 1]"#).is_err());
        assert!(parse_notify(br#"{"client": true, "app": "a"}"#).is_err());
        let null = parse_notify(br#"{"client": "c", "app": "a", "data": null}"#);
        assert_eq!(null.map(|n| n.data.get().to_string()), Ok("null".into()));
    }

    #[test]
    fn numbers_in_data_pass_through_unchanged() {
        let sent = "22222200000000000000000000000000000000000000000129653148";
        let body = format!(r#"{{"client":1,"app":"a","data":[{sent}, 0.1, 1e-7]}}"#);
        let n = parse_notify(body.as_bytes()).expect("parses");
        assert_eq!(n.data.get(), format!("[{sent},0.1,1e-7]"));
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused() {
        // Found by the hub_json fuzz target: an ignored field's string was
        // never checked, so bytes that are not JSON were accepted.
        let body = b"{\"client\":\"c\",\"app\":\"a\",\"x\":\"\xff\"}";
        assert!(parse_notify(body).is_err());
        assert!(parse_notify(br#"{"client":"c","app":"a","x":"\u00ff"}"#).is_ok());
    }
}
