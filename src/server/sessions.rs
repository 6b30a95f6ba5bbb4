//! The session table: which session id belongs to which user, when each
//! session started and was last used, and the one rule that finds the
//! session a request presents. Shared by every service of the server (the
//! presence server creates and ends sessions; the hub checks them for private
//! channels). Lives on the engine thread, no locks.
//!
//! # Expiry
//!
//! A session ends after [`SessionLimits::idle`] without use (default 7 days)
//! or [`SessionLimits::absolute`] after it began (default 30 days), whichever
//! comes first. An expired session is refused at once; the owner of the
//! table (the presence server) sweeps expired ones out and ends them.
//!
//! # Which session a request presents
//!
//! 1. An `id` parameter (alias `sessionId`, the seed's name on `POST /chat`)
//!    names the session outright, for non-browser clients (the patent's API).
//!    It must come with `me` naming the session's user. When `id` is given,
//!    the cookie is not consulted: a wrong or expired `id` is refused.
//! 2. Otherwise the session cookie ([`SESSION_COOKIE`]). A `me` given
//!    alongside must name the cookie's user.
//!
//! Pages ask for the cookie alone (no parameters), so browsers never need the
//! session id in a URL or in page HTML.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::Request;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "altsock_session";

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after login, used or not.
    pub absolute: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle: Duration::from_secs(7 * 24 * 3600),
            absolute: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// One logged-in (or guest) session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user name.
    pub user: String,
    /// A guest session of an unregistered requestor.
    pub guest: bool,
}

/// A session with its clock.
#[derive(Debug, Clone)]
struct Entry {
    session: Session,
    /// When the session began.
    started: Instant,
    /// When a request last used it.
    last_used: Instant,
}

/// Why a session is (or is about to be) over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Unused for the idle limit.
    Idle,
    /// Older than the absolute limit.
    Absolute,
}

/// Session ids to sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: HashMap<String, Entry>,
    limits: SessionLimits,
}

impl Sessions {
    /// An empty table with these limits.
    pub fn new(limits: SessionLimits) -> Self {
        Sessions {
            by_id: HashMap::new(),
            limits,
        }
    }

    /// The limits sessions live by.
    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// Records a session beginning now.
    pub fn insert(&mut self, id: String, session: Session) {
        let now = Instant::now();
        let entry = Entry {
            session,
            started: now,
            last_used: now,
        };
        self.by_id.insert(id, entry);
    }

    /// Ends a session.
    pub fn remove(&mut self, id: &str) -> Option<Session> {
        self.by_id.remove(id).map(|e| e.session)
    }

    /// How many sessions exist (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether a session begun at `started` and last used at `last_used`
    /// is over at `now`, and why.
    pub fn expiry(&self, started: Instant, last_used: Instant, now: Instant) -> Option<Expiry> {
        if now.saturating_duration_since(started) >= self.limits.absolute {
            Some(Expiry::Absolute)
        } else if now.saturating_duration_since(last_used) >= self.limits.idle {
            Some(Expiry::Idle)
        } else {
            None
        }
    }

    /// The live (unexpired) session with this id.
    pub fn get(&self, id: &str) -> Option<&Session> {
        self.live(id).map(|(_, s)| s)
    }

    /// The session with this id, expired or not.
    pub fn get_even_expired(&self, id: &str) -> Option<&Session> {
        self.by_id.get(id).map(|e| &e.session)
    }

    /// The live session with this id, and the id as stored.
    fn live(&self, id: &str) -> Option<(&str, &Session)> {
        let (id, e) = self.by_id.get_key_value(id)?;
        let expired = self.expiry(e.started, e.last_used, Instant::now());
        expired.is_none().then_some((id.as_str(), &e.session))
    }

    /// Marks a session used now (the idle clock restarts).
    pub fn touch(&mut self, id: &str) {
        if let Some(e) = self.by_id.get_mut(id) {
            e.last_used = Instant::now();
        }
    }

    /// The ids of the sessions over at `now`, with why.
    pub fn expired(&self, now: Instant) -> Vec<(String, Expiry)> {
        self.by_id
            .iter()
            .filter_map(|(id, e)| {
                let why = self.expiry(e.started, e.last_used, now)?;
                Some((id.clone(), why))
            })
            .collect()
    }

    /// The session a request presents, by the rule in the module docs:
    /// `param` reads a request parameter, `cookie` is the session cookie.
    pub fn resolve(
        &self,
        cookie: Option<&str>,
        param: impl Fn(&str) -> Option<String>,
    ) -> Option<(&str, &Session)> {
        let me = param("me");
        let (id, need_me) = match param("id").or_else(|| param("sessionId")) {
            Some(id) => (id, true),
            None => (cookie?.to_string(), false),
        };
        let (id, session) = self.live(&id)?;
        let me_ok = match &me {
            Some(me) => *me == session.user,
            None => !need_me,
        };
        me_ok.then_some((id, session))
    }

    /// The session a request presents: its query or urlencoded body
    /// parameters, else its cookie (see the module docs).
    pub fn of_request(&self, req: &Request) -> Option<(&str, &Session)> {
        let cookie = read_session_cookie(req);
        self.resolve(cookie.as_deref(), |name| req.param(name))
    }
}

/// The value of the session cookie a request carries.
pub fn read_session_cookie(req: &Request) -> Option<String> {
    read_cookie(req, SESSION_COOKIE)
}

/// The value of the cookie `name` that `req` carries (the first one).
pub fn read_cookie(req: &Request, name: &str) -> Option<String> {
    req.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The `Set-Cookie` value that gives a browser session `sid` for `max_age`
/// (the absolute session lifetime, so the browser forgets it no later than
/// the server). `HttpOnly` (scripts never see it) and `SameSite=Lax`;
/// `Secure` when the request came over TLS (`secure`), so the browser never
/// sends it over plain HTTP.
pub fn set_session_cookie(sid: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        max_age.as_secs().max(1),
        secure_attribute(secure)
    )
}

/// The `Set-Cookie` value that makes a browser forget its session (`Secure`
/// over TLS, like the cookie it replaces).
pub fn clear_session_cookie(secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        secure_attribute(secure)
    )
}

fn secure_attribute(secure: bool) -> &'static str {
    if secure {
        "; Secure"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(idle_ms: u64, absolute_ms: u64) -> Sessions {
        Sessions::new(SessionLimits {
            idle: Duration::from_millis(idle_ms),
            absolute: Duration::from_millis(absolute_ms),
        })
    }

    #[test]
    fn explicit_id_wins_and_must_name_its_user() {
        let mut t = table(60_000, 60_000);
        let session = |user: &str| Session {
            user: user.into(),
            guest: false,
        };
        t.insert("a1".into(), session("alice"));
        t.insert("b1".into(), session("bob"));
        let params = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let who = |r: Option<(&str, &Session)>| r.map(|(_, s)| s.user.clone());
        // Cookie alone.
        assert_eq!(
            who(t.resolve(Some("a1"), params(&[]))),
            Some("alice".into())
        );
        // `me` alongside the cookie must match it.
        assert_eq!(who(t.resolve(Some("a1"), params(&[("me", "bob")]))), None);
        // `id` wins over the cookie, and needs `me`.
        let both = params(&[("me", "bob"), ("id", "b1")]);
        assert_eq!(who(t.resolve(Some("a1"), both)), Some("bob".into()));
        assert_eq!(who(t.resolve(Some("a1"), params(&[("id", "b1")]))), None);
        // A wrong `id` does not fall back to the cookie.
        let wrong = params(&[("me", "alice"), ("id", "zz")]);
        assert_eq!(who(t.resolve(Some("a1"), wrong)), None);
        let seed = params(&[("me", "bob"), ("sessionId", "b1")]);
        assert_eq!(who(t.resolve(None, seed)), Some("bob".into()));
    }

    #[test]
    fn sessions_expire_idle_or_absolute() {
        let t = table(1_000, 5_000);
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        assert_eq!(t.expiry(t0, t0, ms(999)), None);
        assert_eq!(t.expiry(t0, t0, ms(1_000)), Some(Expiry::Idle));
        assert_eq!(t.expiry(t0, ms(4_900), ms(4_950)), None);
        assert_eq!(t.expiry(t0, ms(4_900), ms(5_000)), Some(Expiry::Absolute));
    }
}
