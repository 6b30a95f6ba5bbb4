//! Small HTTP helpers of the presence server: request parameters from the
//! query, a form or a JSON body; the `Origin` check; who a request speaks
//! for; HTML escaping; JSON answers. Pure functions, no presence state.

use serde_json::Value;

use crate::server::sessions::session_cookie;
use crate::server::Shared;
use crate::{Request, Response};

/// The parameters of a request: query string first, then the body (a JSON
/// object when the body is JSON, a form otherwise).
pub struct Params {
    query: Vec<(String, String)>,
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Collects the parameters of `req`.
    pub fn of(req: &Request) -> Params {
        let mut pairs = Vec::new();
        let is_json = req
            .header("content-type")
            .is_some_and(|t| t.trim_start().starts_with("application/json"));
        if is_json {
            if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&req.body) {
                for (k, v) in map {
                    let text = match v {
                        Value::String(s) => s,
                        Value::Null => continue,
                        other => other.to_string(),
                    };
                    pairs.push((k, text));
                }
            }
        } else {
            pairs.extend(req.form());
        }
        // The query string decoded through a throwaway request, so the
        // engine's decoder stays private.
        let probe = Request {
            conn: req.conn,
            method: String::new(),
            target: String::new(),
            minor_version: 1,
            headers: Vec::new(),
            body: req.query().as_bytes().to_vec(),
            peer: None,
        };
        Params {
            query: probe.form(),
            pairs,
        }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .chain(self.pairs.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first non-empty value of `name`, trimmed.
    pub fn nonempty(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }
}

/// The caller of a request, as its session says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The session id.
    pub sid: String,
    /// The user (or guest) name.
    pub user: String,
    /// True for a guest session.
    pub guest: bool,
}

/// Who `req` speaks for: `me` and `id` (or `sessionId`) parameters when both
/// are given (they must match a session), else the session cookie.
pub fn caller(req: &Request, params: &Params, shared: &Shared) -> Option<Caller> {
    // `sessionId` is the seed's name for `id` on `POST /chat`.
    let id = params.get("id").or_else(|| params.get("sessionId"));
    let found = match (params.get("me"), id) {
        (Some(me), Some(id)) => shared
            .sessions
            .get(id)
            .filter(|s| s.user == me)
            .map(|s| (id.to_string(), s)),
        (None, Some(_)) | (Some(_), None) => None,
        (None, None) => {
            session_cookie(req).and_then(|id| shared.sessions.get(&id).map(|s| (id.clone(), s)))
        }
    };
    found.map(|(sid, s)| Caller {
        sid,
        user: s.user.clone(),
        guest: s.guest,
    })
}

/// The caller by session cookie alone (for pages).
pub fn cookie_caller(req: &Request, shared: &Shared) -> Option<Caller> {
    let sid = session_cookie(req)?;
    let s = shared.sessions.get(&sid)?;
    Some(Caller {
        user: s.user.clone(),
        guest: s.guest,
        sid,
    })
}

/// True when the request changes state: anything but `GET` and `HEAD`.
pub fn is_state_changing(req: &Request) -> bool {
    !matches!(req.method.as_str(), "GET" | "HEAD")
}

/// The `Origin` check: a request that carries `Origin` must name the host it
/// was sent to (`Host`); a request without `Origin` passes (not a browser's
/// cross-site request).
pub fn origin_ok(req: &Request) -> bool {
    let Some(origin) = req.header("origin") else {
        return true;
    };
    let Some(host) = req.header("host") else {
        return false;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !authority.is_empty() && authority.eq_ignore_ascii_case(host.trim())
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A JSON value made safe to sit inside a `<script type="application/json">`.
pub fn script_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// A JSON answer.
pub fn json(status: u16, value: Value) -> Response {
    Response::json(status, value.to_string())
}

/// A JSON error answer: `{"error": why}`.
pub fn error(status: u16, why: &str) -> Response {
    json(status, serde_json::json!({ "error": why }))
}

/// Percent-encodes a path segment.
pub fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// 128 random bits from the OS as 32 hex digits.
pub fn random_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Decodes `%XX` escapes in a path segment (`+` stays `+`).
pub fn decode_segment(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Two hex digits exactly: `from_str_radix` alone also takes a sign.
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_html_special() {
        assert_eq!(
            esc("<a href='x'>\"&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
        );
        let v = serde_json::json!({ "x": "</script><b>" });
        assert!(!script_json(&v).contains('<'));
    }

    #[test]
    fn segments_round_trip() {
        for s in ["alice", "a+b@example.com", "+15550100", "x y/z%"] {
            assert_eq!(decode_segment(&encode_segment(s)), s);
        }
        assert_eq!(decode_segment("%3Cx%3E%zz"), "<x>%zz");
    }

    #[test]
    fn an_escape_is_two_hex_digits_not_a_signed_number() {
        // Found by the urlencoded fuzz target: `%+e` decoded to U+000E.
        assert_eq!(decode_segment("%+e%+1%-1"), "%+e%+1%-1");
    }
}
