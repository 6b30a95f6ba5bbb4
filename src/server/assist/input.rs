//! What live-assist requests carry, checked: the parameters (query string,
//! then a JSON object body or an urlencoded one), visitor ids, `http(s)`
//! URLs and their origins, pushed cards, the per-visitor rate limit, and the
//! JSON answers and errors. Pure functions; no state beyond the bucket.

use serde_json::{json, Map, Value};

use crate::http::form_pairs;
use crate::{Request, Response};

/// Largest request body a visitor or console request may send.
pub const MAX_BODY: usize = 16 * 1024;
/// Longest URL (page, referrer, pushed) in bytes.
pub const MAX_URL: usize = 2048;
/// Longest page title in bytes.
pub const MAX_TITLE: usize = 512;
/// Most cookies of interest.
pub const MAX_COOKIES: usize = 16;
/// Longest cookie value kept, in bytes.
pub const MAX_COOKIE_VALUE: usize = 256;
/// Most skills on a page or a representative.
pub const MAX_SKILLS: usize = 16;
/// Longest card title and canned-text title in bytes.
pub const MAX_CARD_TITLE: usize = 200;
/// Longest card text in bytes.
pub const MAX_CARD_TEXT: usize = 2000;

/// A JSON answer with `Cache-Control: no-store`.
pub fn answer(status: u16, value: Value) -> Response {
    Response::json(status, value.to_string()).header("Cache-Control", "no-store")
}

/// A JSON error answer, `{"error": why}`.
pub fn fail(status: u16, why: impl AsRef<str>) -> Response {
    answer(status, json!({ "error": why.as_ref() }))
}

/// The parameters of a request, as one JSON object (form and query values
/// are strings).
#[derive(Debug, Default)]
pub struct Input(Map<String, Value>);

impl Input {
    /// The query parameters, then the body's members; a body that is not
    /// a JSON object is read as a form. `413` past [`MAX_BODY`]; `400` for
    /// a body that starts like JSON but is not an object.
    pub fn of(req: &Request) -> Result<Input, Response> {
        if req.body.len() > MAX_BODY {
            return Err(fail(413, "request body too large"));
        }
        let mut map = Map::new();
        for (k, v) in form_pairs(req.query().as_bytes()) {
            map.entry(k).or_insert(Value::String(v));
        }
        let first = req.body.iter().find(|b| !b.is_ascii_whitespace());
        match first {
            Some(b'{') | Some(b'[') => match serde_json::from_slice::<Value>(&req.body) {
                Ok(Value::Object(body)) => map.extend(body),
                _ => return Err(fail(400, "bad JSON: expected an object")),
            },
            Some(_) => {
                for (k, v) in form_pairs(&req.body) {
                    map.entry(k).or_insert(Value::String(v));
                }
            }
            None => {}
        }
        Ok(Input(map))
    }

    /// A raw member.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A string member, trimmed; numbers are given as text.
    pub fn text(&self, name: &str) -> Option<String> {
        match self.value(name)? {
            Value::String(s) => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
        .filter(|s| !s.is_empty())
    }

    /// A string member, or `400 missing field: NAME`.
    pub fn required(&self, name: &str) -> Result<String, Response> {
        self.text(name)
            .ok_or_else(|| fail(400, format!("missing field: {name}")))
    }

    /// A string member kept as sent (chat text keeps its spaces), or `400`.
    pub fn raw_text(&self, name: &str) -> Result<String, Response> {
        match self.value(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            _ => Err(fail(400, format!("missing field: {name}"))),
        }
    }

    /// A boolean member (`true`/`false`, `1`/`0`, `on`); absent: `default`.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        match self.value(name) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_i64() != Some(0),
            Some(Value::String(s)) => matches!(s.as_str(), "true" | "1" | "on" | "yes"),
            _ => default,
        }
    }

    /// A list member: a JSON array of strings, or comma-separated text.
    pub fn list(&self, name: &str) -> Vec<String> {
        let items: Vec<String> = match self.value(name) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
            _ => Vec::new(),
        };
        items
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Parses a visitor id: 32 hex digits.
pub fn parse_visitor(text: &str) -> Option<u128> {
    (text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(text, 16).ok())
        .flatten()
}

/// A visitor id as text.
pub fn visitor_text(id: u128) -> String {
    format!("{id:032x}")
}

/// Skills as sent: lowercased, at most [`MAX_SKILLS`] of 64 bytes each.
pub fn skills(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = list
        .into_iter()
        .filter(|s| s.len() <= 64 && !s.contains([',', '\u{1f}']))
        .map(|s| s.to_lowercase())
        .collect();
    out.sort();
    out.dedup();
    out.truncate(MAX_SKILLS);
    out
}

/// An `http(s)` URL of at most [`MAX_URL`] bytes: `413` when too long,
/// `400` otherwise.
pub fn check_url(what: &str, url: &str) -> Result<(), Response> {
    if url.len() > MAX_URL {
        return Err(fail(413, format!("{what} too long")));
    }
    if origin_of(url).is_none() {
        return Err(fail(400, format!("{what} must be an http(s) URL")));
    }
    Ok(())
}

/// The origin (`scheme://host[:port]`, lowercased) of an `http(s)` URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // Credentials in the URL are not part of the origin and hide the host.
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return None;
    }
    let default_port = if scheme == "http" { ":80" } else { ":443" };
    let host = authority
        .strip_suffix(default_port)
        .unwrap_or(authority)
        .to_ascii_lowercase();
    Some(format!("{scheme}://{host}"))
}

/// Text cut to at most `max` bytes on a character boundary.
pub fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Checks a pushed card: `null` clears; else an object whose `title` and
/// `text` are strings within their bounds and whose `image` and `link`
/// are `http(s)` URLs. Returns the card as it will be sent.
pub fn check_card(card: &Value) -> Result<Value, Response> {
    let Some(obj) = card.as_object() else {
        return if card.is_null() {
            Ok(Value::Null)
        } else {
            Err(fail(400, "card must be an object or null"))
        };
    };
    let text_of = |name: &str, max: usize| -> Result<String, Response> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) if s.len() <= max => Ok(s.clone()),
            Some(Value::String(_)) => Err(fail(413, format!("card {name} too long"))),
            Some(_) => Err(fail(400, format!("card {name} must be text"))),
        }
    };
    let title = text_of("title", MAX_CARD_TITLE)?;
    let text = text_of("text", MAX_CARD_TEXT)?;
    let image = text_of("image", MAX_URL)?;
    let link = text_of("link", MAX_URL)?;
    for (name, url) in [("card image", &image), ("card link", &link)] {
        if !url.is_empty() {
            check_url(name, url)?;
        }
    }
    if title.is_empty() && text.is_empty() && image.is_empty() && link.is_empty() {
        return Err(fail(400, "card is empty"));
    }
    Ok(json!({ "title": title, "text": text, "image": image, "link": link }))
}

/// A token bucket: `rate` per second, bursts of three seconds' worth. Its
/// clock is milliseconds in a wrapping `u32` (8 bytes per visitor).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bucket {
    tokens: f32,
    at_ms: u32,
}

impl Bucket {
    /// A full bucket at `now_ms`.
    pub fn full(rate: u32, now_ms: u64) -> Bucket {
        Bucket {
            tokens: (rate * 3) as f32,
            at_ms: now_ms as u32,
        }
    }

    /// Milliseconds since it was last used.
    pub fn idle_ms(&self, now_ms: u64) -> u64 {
        (now_ms as u32).wrapping_sub(self.at_ms) as u64
    }

    /// Takes a token: `Ok`, or `Err(ms)` to wait before one is there.
    pub fn take(&mut self, rate: u32, now_ms: u64) -> Result<(), u64> {
        let rate = rate.max(1) as f32;
        let now = now_ms as u32;
        let elapsed = now.wrapping_sub(self.at_ms) as f32 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate).min(rate * 3.0);
        self.at_ms = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / rate) * 1000.0).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_urls() {
        assert_eq!(
            origin_of("https://Shop.example/cart?x=1").as_deref(),
            Some("https://shop.example")
        );
        assert_eq!(
            origin_of("http://a.example:80/").as_deref(),
            Some("http://a.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("https://evil@shop.example/"), None);
        assert_eq!(origin_of("ftp://x/"), None);
        assert_eq!(origin_of("https:///x"), None);
    }

    #[test]
    fn visitor_ids_round_trip() {
        let id = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdefu128;
        assert_eq!(parse_visitor(&visitor_text(id)), Some(id));
        assert_eq!(parse_visitor("12"), None);
        assert_eq!(parse_visitor(&"g".repeat(32)), None);
        assert_eq!(parse_visitor(&"+1".repeat(16)), None);
    }

    #[test]
    fn cards_are_checked() {
        let ok = check_card(&json!({"title": "<b>Sale</b>", "link": "https://a.example/x"}));
        assert_eq!(ok.unwrap()["title"], "<b>Sale</b>");
        assert_eq!(check_card(&Value::Null).unwrap(), Value::Null);
        assert_eq!(check_card(&json!({})).unwrap_err().status, 400);
        assert_eq!(
            check_card(&json!({"title": "x", "image": "javascript:1"}))
                .unwrap_err()
                .status,
            400
        );
        let long = "x".repeat(MAX_CARD_TEXT + 1);
        assert_eq!(
            check_card(&json!({ "text": long })).unwrap_err().status,
            413
        );
    }

    #[test]
    fn the_bucket_refills() {
        let mut b = Bucket::full(2, 0);
        for _ in 0..6 {
            assert!(b.take(2, 0).is_ok());
        }
        assert_eq!(b.take(2, 0), Err(500));
        assert!(b.take(2, 500).is_ok());
        assert!(b.take(2, 500).is_err());
    }

    #[test]
    fn cut_keeps_characters_whole() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 10), "abc");
    }
}
