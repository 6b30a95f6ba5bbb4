//! The session table: which session id belongs to which user. Shared by every
//! service of the server (the presence server creates and ends sessions; the
//! hub checks them for private channels). Lives on the engine thread, no locks.

use std::collections::HashMap;

use crate::Request;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "altsock_session";

/// One logged-in (or guest) session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user name.
    pub user: String,
    /// A guest session of an unregistered requestor.
    pub guest: bool,
}

/// Session ids to sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: HashMap<String, Session>,
}

impl Sessions {
    /// Records a session.
    pub fn insert(&mut self, id: String, session: Session) {
        self.by_id.insert(id, session);
    }

    /// Ends a session.
    pub fn remove(&mut self, id: &str) -> Option<Session> {
        self.by_id.remove(id)
    }

    /// The session with this id.
    pub fn get(&self, id: &str) -> Option<&Session> {
        self.by_id.get(id)
    }

    /// The session a request presents: the session cookie, or the `id`
    /// parameter (query or form) together with a matching `me`.
    pub fn of_request(&self, req: &Request) -> Option<(&str, &Session)> {
        if let Some(id) = session_cookie(req) {
            if let Some((id, s)) = self.by_id.get_key_value(id.as_str()) {
                return Some((id.as_str(), s));
            }
        }
        let id = req.param("id")?;
        let me = req.param("me")?;
        self.by_id
            .get_key_value(id.as_str())
            .filter(|(_, s)| s.user == me)
            .map(|(id, s)| (id.as_str(), s))
    }
}

/// The value of the session cookie, if the request carries one.
pub fn session_cookie(req: &Request) -> Option<String> {
    req.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}
