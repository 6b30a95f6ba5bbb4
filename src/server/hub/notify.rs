//! Addressed notifications (seed 003): what an application server posts to
//! `POST /notify`, `{"client": ID, "app": NAME, "data": ...}`, checked and
//! taken apart. The notification goes into the client's mailbox topic; the
//! browser's one communication client (`GET /poll`) reads every app's
//! notifications and its library hands each to the app's own handler.

use serde_json::Value;

/// One notification for one application client in one browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The communication client (one per browser) it is for.
    pub client: String,
    /// The application whose client in that browser receives it.
    pub app: String,
    /// The payload, as JSON text.
    pub data: String,
}

/// Parses a `/notify` body. `client` may be a string or a number; `data`
/// may be any JSON value and defaults to `null`.
pub fn parse(body: &[u8]) -> Result<Notification, String> {
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
    let data = fields.remove("data").unwrap_or(Value::Null).to_string();
    Ok(Notification { client, app, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let n = parse(br#"{"client": 7, "app": "mail", "data": {"n": 1}}"#);
        assert_eq!(
            n,
            Ok(Notification {
                client: "7".into(),
                app: "mail".into(),
                data: r#"{"n":1}"#.into()
            })
        );
        assert!(parse(br#"{"app": "mail"}"#).is_err());
        assert!(parse(br#"{"client": "a"}"#).is_err());
        assert!(parse(b"[1]").is_err());
        assert!(parse(b"{").is_err());
    }

    #[test]
    fn numbers_in_data_reach_the_browser_unchanged() {
        // Found by the hub_json fuzz target: without correctly rounded
        // float parsing this arrived one step off (…00000002e55).
        let sent = "22222200000000000000000000000000000000000000000129653148";
        let body = format!(r#"{{"client":1,"app":"a","data":[{sent}, 0.1, 1e-7]}}"#);
        let n = parse(body.as_bytes()).expect("a valid notification");
        let got: Vec<f64> = serde_json::from_str(&n.data).expect("data is JSON");
        let want: f64 = sent.parse().expect("std parses correctly rounded");
        assert_eq!(got, vec![want, 0.1, 1e-7]);
    }
}
