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

/// One visitor in the registry.
#[derive(Debug)]
pub struct Visitor {
    /// Its site.
    pub site: Arc<str>,
    /// Its hub client (the mailbox its events go to).
    pub client: Box<str>,
    /// `{"url","title","referrer","cookies","skills"}` as JSON text.
    pub page: Box<str>,
    /// When this visit started (Unix ms).
    pub started: i64,
    /// This visit's number (0 while being looked up).
    pub visit: u32,
    /// Pages seen in this visit.
    pub pages: u32,
    /// When it last made a request (service ms).
    pub seen: u64,
    /// Since when no connection follows its mailbox (service ms; 0: one does).
    pub gone: u64,
    /// Its rate limit.
    pub bucket: Bucket,
    /// Earlier visits, latest first: (started, pages).
    pub earlier: Option<Box<[(i64, i64)]>>,
}

impl Visitor {
    /// The page as JSON.
    pub fn page(&self) -> Value {
        serde_json::from_str(&self.page).unwrap_or(Value::Null)
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        self.page()["url"].as_str().unwrap_or("").to_string()
    }

    /// The page's skills.
    pub fn skills(&self) -> Vec<String> {
        self.page()["skills"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How the console shows it.
    pub fn json(&self, id: u128, site: &Site) -> Value {
        let page = self.page();
        let (state, rep, position) = state_of(id, site);
        let earlier: Vec<Value> = self
            .earlier
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
