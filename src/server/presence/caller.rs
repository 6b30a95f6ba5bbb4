//! Who a presence request speaks for. One resolver for every endpoint, with
//! the precedence documented in [`crate::server::sessions`] (an `id` with its
//! `me`, else the cookie); pages use the cookie alone.

use super::params::Params;
use crate::server::sessions::{read_session_cookie, Sessions};
use crate::Request;

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

/// The caller of an API request (parameters or cookie); the session's idle
/// clock restarts.
pub fn authenticate(req: &Request, params: &Params, sessions: &mut Sessions) -> Option<Caller> {
    let cookie = read_session_cookie(req);
    let caller = sessions
        .resolve(cookie.as_deref(), |name| {
            params.get(name).map(str::to_string)
        })
        .map(|(sid, s)| Caller {
            sid: sid.to_string(),
            user: s.user.clone(),
            guest: s.guest,
        })?;
    sessions.touch(&caller.sid);
    Some(caller)
}

/// The viewer of a page: the session cookie alone.
pub fn page_viewer(req: &Request, sessions: &Sessions) -> Option<Caller> {
    page_viewer_by_id(&read_session_cookie(req)?, sessions)
}

/// The viewer whose session cookie holds `cookie`.
pub fn page_viewer_by_id(cookie: &str, sessions: &Sessions) -> Option<Caller> {
    let (sid, s) = sessions.resolve(Some(cookie), |_| None)?;
    Some(Caller {
        sid: sid.to_string(),
        user: s.user.clone(),
        guest: s.guest,
    })
}
