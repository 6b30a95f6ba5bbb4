//! The visitor registry's entry, kept small (a visitor is mostly idle and
//! there may be tens of thousands): the id is a `u128` key, the secret is
//! recomputed from the hub's server secret rather than stored, and the page
//! (URL, title, referrer, cookies of interest, skills) is one compact JSON
//! string. Also how a visitor looks on the console.

use std::sync::Arc;

use serde_json::{json, Value};

use super::input::{visitor_text, Bucket};
use super::routing::Status;
use super::site::Site;
use crate::server::hub::HubSecret;

/// The label visitor secrets are derived under.
const SECRET_LABEL: &str = "altsock assist visitor";

/// A visitor's secret.
pub fn secret_of(secret: &HubSecret, visitor: u128) -> String {
    secret.derive(SECRET_LABEL, &visitor_text(visitor))
}

/// True when `given` is the visitor's secret.
pub fn secret_ok(secret: &HubSecret, visitor: u128, given: &str) -> bool {
    secret.derived_matches(SECRET_LABEL, &visitor_text(visitor), given)
}

/// The separator of the fields of [`Visitor::text`] (cut out of the
/// values when they are stored).
const SEP: char = '\u{1f}';

/// One visitor in the registry: 64 bytes plus one string.
#[derive(Debug)]
pub struct Visitor {
    /// Its site.
    pub site: Arc<str>,
    /// Hub client, URL, title, referrer, cookies of interest (JSON) and
    /// skills (comma-separated), joined by [`SEP`]: one allocation.
    text: Box<str>,
    /// When this visit started (Unix ms).
    pub started: i64,
    /// This visit's number (0 while being looked up).
    pub visit: u32,
    /// Pages seen in this visit.
    pub pages: u32,
    /// When it last made a request (service ms, wrapping).
    seen: u32,
    /// Since when no connection follows its mailbox (service ms, wrapping;
    /// 0: one does).
    gone: u32,
    /// Its rate limit.
    pub bucket: Bucket,
}

impl Visitor {
    /// A visitor of `site` on `page` (`{"url","title","referrer","cookies","skills"}`).
    pub fn new(
        site: Arc<str>,
        client: &str,
        page: &Value,
        started: i64,
        now: u64,
        rate: u32,
    ) -> Visitor {
        Visitor {
            site,
            text: join(client, page),
            started,
            visit: 0,
            pages: 1,
            seen: now as u32,
            gone: 0,
            bucket: Bucket::full(rate, now),
        }
    }

    fn field(&self, n: usize) -> &str {
        self.text.split(SEP).nth(n).unwrap_or("")
    }

    /// Its hub client.
    pub fn client(&self) -> &str {
        self.field(0)
    }

    /// The page's URL.
    pub fn url(&self) -> &str {
        self.field(1)
    }

    /// Moves it to `page`, through hub client `client`.
    pub fn set_page(&mut self, client: &str, page: &Value) {
        self.text = join(client, page);
    }

    /// The page as JSON.
    pub fn page(&self) -> Value {
        let cookies: Value = serde_json::from_str(self.field(4)).unwrap_or(json!({}));
        json!({
            "url": self.field(1), "title": self.field(2), "referrer": self.field(3),
            "cookies": cookies, "skills": self.skills(),
        })
    }

    /// The page's skills.
    pub fn skills(&self) -> Vec<String> {
        self.field(5)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// It made a request at `now`.
    pub fn touch(&mut self, now: u64) {
        self.seen = now as u32;
    }

    /// True when it has left by `now`: no connection has followed its
    /// mailbox (`followed` is whether one does now), and it has sent
    /// nothing, for `linger` ms.
    pub fn has_left(&mut self, followed: bool, now: u64, linger: u64) -> bool {
        let now = now as u32;
        if followed {
            self.gone = 0;
            return false;
        }
        if self.gone == 0 {
            self.gone = now.max(1);
        }
        let linger = linger.min(u32::MAX as u64 / 2) as u32;
        now.wrapping_sub(self.gone) >= linger && now.wrapping_sub(self.seen) >= linger
    }

    /// How the console shows it.
    pub fn json(&self, id: u128, site: &Site) -> Value {
        let page = self.page();
        let (state, rep, position) = state_of(id, site);
        let earlier: Vec<Value> = site
            .earlier
            .get(&id)
            .iter()
            .flat_map(|e| e.iter())
            .map(|(started, pages)| json!({ "started": started, "pages": pages }))
            .collect();
        json!({
            "id": visitor_text(id),
            "url": page["url"], "title": page["title"], "referrer": page["referrer"],
            "cookies": page["cookies"], "skills": page["skills"],
            "state": state, "rep": rep, "position": position,
            "since": self.started, "pages": self.pages, "visit": self.visit,
            "earlier": earlier,
            "card": site.cards.get(&id).cloned().unwrap_or(Value::Null),
            "transcript": site.transcripts.get(&id).map(|t| t.iter().cloned().collect::<Vec<_>>()),
        })
    }
}

/// The fields of a visitor's text, each cleared of [`SEP`].
fn join(client: &str, page: &Value) -> Box<str> {
    let text = |v: &Value| v.as_str().unwrap_or("").replace(SEP, " ");
    let skills: Vec<String> = page["skills"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    let cookies = match &page["cookies"] {
        Value::Object(m) if !m.is_empty() => page["cookies"].to_string(),
        _ => String::new(),
    };
    let fields = [
        client.replace(SEP, " "),
        text(&page["url"]),
        text(&page["title"]),
        text(&page["referrer"]),
        cookies,
        skills.join(","),
    ];
    fields.join(&SEP.to_string()).into_boxed_str()
}

/// A visitor's state, representative and queue position.
pub fn state_of(id: u128, site: &Site) -> (&'static str, Option<String>, Option<usize>) {
    match site.routing.status(id) {
        Some(Status::Queued(p)) => ("waiting", None, Some(p)),
        Some(Status::Offered(rep)) => ("waiting", Some(rep), Some(0)),
        Some(Status::Chatting(rep)) => ("chatting", Some(rep), None),
        None if site.invites.contains_key(&id) => ("invited", site.invites.get(&id).cloned(), None),
        None => ("browsing", None, None),
    }
}

/// The `state` event a visitor is sent.
pub fn state_event(id: u128, site: &Site) -> Value {
    let (state, rep, position) = state_of(id, site);
    // The visitor learns who it talks to once the chat is accepted.
    let rep = if state == "waiting" { None } else { rep };
    json!({ "type": "state", "state": state, "rep": rep, "position": position })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_small_and_keeps_its_page() {
        assert_eq!(std::mem::size_of::<Visitor>(), 64);
        let page = json!({"url": "http://a.example/x", "title": "T\u{1f}itle", "referrer": "",
                          "cookies": {"plan": "pro\u{1f}"}, "skills": ["fr", "billing"]});
        let mut v = Visitor::new(Arc::from("s"), "c1", &page, 0, 5, 1);
        assert_eq!((v.client(), v.url()), ("c1", "http://a.example/x"));
        let back = v.page();
        assert_eq!(back["title"], "T itle");
        assert_eq!(back["cookies"]["plan"], "pro\u{1f}", "JSON escapes it");
        assert_eq!(v.skills(), vec!["fr", "billing"]);
        assert!(!v.has_left(true, 100, 50));
        assert!(!v.has_left(false, 100, 50), "gone from now");
        assert!(!v.has_left(false, 149, 50));
        assert!(v.has_left(false, 150, 50));
        v.touch(200);
        assert!(!v.has_left(false, 240, 50), "it spoke lately");
    }
}
