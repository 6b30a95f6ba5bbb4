//! Accounts and sessions: `POST /register`, `POST /login`, `POST /logout`,
//! guest sessions for unregistered requestors, and the throttle on failed
//! logins. Hashing and database writes run off the engine thread; the
//! request is deferred and completed by a [`Job`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use super::directory::{check_name, UserRec, CONTACTS};
use super::table::Mailbox;
use super::web::{self, error, json, Caller, Params};
use super::workers::{hash_password, verify_password};
use super::{busy, finish, store, Presence, QUEUE_CAP};
use crate::server::sessions::{Session, SESSION_COOKIE};
use crate::server::{Job, ServerRouter, Shared};
use crate::{ConnId, Cx, Reply, Request, Response};

/// Failed logins per user name within [`WINDOW`] before `429`.
const USER_LIMIT: u32 = 5;
/// Failed logins per client address within [`WINDOW`] before `429`.
const IP_LIMIT: u32 = 20;
/// The throttle's window.
const WINDOW: Duration = Duration::from_secs(60);
/// Most sessions one user keeps; the oldest go first.
const MAX_SESSIONS: usize = 32;
/// Most guest sessions kept; the oldest go first.
const MAX_GUESTS: usize = 10_000;
/// A valid argon2id hash of nothing anyone types, verified against when the
/// user does not exist so both failures cost the same.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0ZiTS1LO2ZdgTm5/2tIqNElXNPmI6D6hCYlzzgLhQXI";

/// Counts of recent failed logins, by user name and by client address.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: HashMap<String, (u32, Instant)>,
}

impl Throttle {
    fn keys(user: &str, ip: Option<IpAddr>) -> [(String, u32); 2] {
        let ip = ip.map_or_else(|| "-".to_string(), |ip| ip.to_string());
        [
            (format!("u:{user}"), USER_LIMIT),
            (format!("ip:{ip}"), IP_LIMIT),
        ]
    }

    /// True while `user` or `ip` has failed too often.
    pub fn blocked(&mut self, user: &str, ip: Option<IpAddr>, now: Instant) -> bool {
        self.failures
            .retain(|_, (_, first)| now.duration_since(*first) < WINDOW);
        Self::keys(user, ip)
            .iter()
            .any(|(k, limit)| self.failures.get(k).is_some_and(|(n, _)| n >= limit))
    }

    /// Counts one failure.
    pub fn fail(&mut self, user: &str, ip: Option<IpAddr>, now: Instant) {
        for (k, _) in Self::keys(user, ip) {
            self.failures.entry(k).or_insert((0, now)).0 += 1;
        }
    }

    /// Forgets the failures of `user` after a success.
    pub fn clear(&mut self, user: &str) {
        self.failures.remove(&format!("u:{user}"));
    }
}

/// Checks email and phone; returns them normalized.
fn check_aliases(p: &Params) -> Result<(Option<String>, Option<String>), &'static str> {
    let email = p.nonempty("email");
    if let Some(e) = &email {
        let ok = e.len() <= 254
            && e.split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && b.contains('.'))
            && !e.contains(|c: char| c.is_whitespace() || "/?#%<>\"'".contains(c));
        if !ok {
            return Err("email is not valid");
        }
    }
    let phone = p.nonempty("phone").map(|ph| {
        let plus = if ph.starts_with('+') { "+" } else { "" };
        let digits: String = ph.chars().filter(char::is_ascii_digit).collect();
        format!("{plus}{digits}")
    });
    if let Some(ph) = &phone {
        let n = ph.trim_start_matches('+').len();
        if !(5..=20).contains(&n) {
            return Err("phone must have 5 to 20 digits");
        }
    }
    Ok((email, phone))
}

impl Presence {
    /// `POST /register`: `201`, `409` for a taken name, `400` with the reason.
    pub(super) fn register(&mut self, req: &Request, p: &Params, cx: &mut Cx<'_, Job>) -> Reply {
        let name = p.nonempty("username").unwrap_or_default();
        if let Err(why) = check_name(&name) {
            return Reply::Respond(error(400, why));
        }
        let password = p.get("password").unwrap_or("").to_string();
        if password.chars().count() < 8 || password.len() > 1024 {
            return Reply::Respond(error(400, "password must be 8 to 1024 characters"));
        }
        let (email, phone) = match check_aliases(p) {
            Ok(aliases) => aliases,
            Err(why) => return Reply::Respond(error(400, why)),
        };
        if self.dir.taken(&name) || self.pending_names.contains(&name) {
            return Reply::Respond(error(409, "name taken"));
        }
        let alias_taken = [&email, &phone]
            .into_iter()
            .flatten()
            .any(|a| self.dir.taken(a) || self.pending_names.contains(a));
        if alias_taken {
            return Reply::Respond(error(409, "email or phone already registered"));
        }
        for n in std::iter::once(&name)
            .chain(email.iter())
            .chain(phone.iter())
        {
            self.pending_names.insert(n.clone());
        }
        let (handle, db, conn) = (cx.handle(), self.db.clone(), req.conn);
        let aliases: Vec<String> = email.iter().chain(phone.iter()).cloned().collect();
        self.hasher.run(move || {
            let rec = hash_password(&password).map(|hash| UserRec {
                hash,
                email,
                phone,
                active: CONTACTS.into(),
            });
            let (then_name, then_aliases) = (name.clone(), aliases.clone());
            let done =
                |rec| Job::new(move |r, cx| r.presence.registered(cx, conn, name, aliases, rec));
            let Ok(rec) = rec else {
                handle.send(done(Err(error(500, "could not store the account"))));
                return;
            };
            // The answer waits for the commit (issue 14).
            let (row, user, reply) = (rec.clone(), then_name.clone(), handle.clone());
            let queued = db.write(
                move |c| store::insert_user(c, &user, &row, web::unix_now()),
                move |stored| {
                    let rec = stored.map(|()| rec).map_err(|e| {
                        log::warn!("presence: register: {e}");
                        error(500, "could not store the account")
                    });
                    reply.send(Job::new(move |r, cx| {
                        r.presence
                            .registered(cx, conn, then_name, then_aliases, rec)
                    }));
                },
            );
            if queued.is_err() {
                handle.send(done(Err(busy())));
            }
        });
        Reply::Defer
    }

    /// The end of a registration: the account is stored, or the answer
    /// says why not.
    fn registered(
        &mut self,
        cx: &mut Cx<'_, Job>,
        conn: ConnId,
        name: String,
        aliases: Vec<String>,
        rec: Result<UserRec, Response>,
    ) {
        self.pending_names.remove(&name);
        for alias in &aliases {
            self.pending_names.remove(alias);
        }
        let rec = match rec {
            Ok(rec) => rec,
            Err(refusal) => return finish(cx, conn, refusal),
        };
        self.dir.add_user(name.clone(), rec);
        self.db.log(&name, "register", String::new());
        finish(cx, conn, json(201, json!({ "user": name })));
    }

    /// `POST /login`: `200` with the session, `401` for any wrong pair, `429`
    /// while throttled.
    pub(super) fn login(&mut self, req: &Request, p: &Params, cx: &mut Cx<'_, Job>) -> Reply {
        let name = p.nonempty("username").unwrap_or_default();
        let password = p.get("password").unwrap_or("").to_string();
        let ip = req.peer.map(|a| a.ip());
        if self.throttle.blocked(&name, ip, cx.now()) {
            let r = error(429, "too many failed logins; try again later");
            return Reply::Respond(r.header("Retry-After", WINDOW.as_secs().to_string()));
        }
        let known = self.dir.users.get(&name).map(|u| u.hash.clone());
        let (handle, conn) = (cx.handle(), req.conn);
        self.hasher.run(move || {
            let ok = match &known {
                Some(hash) => verify_password(&password, hash),
                None => {
                    let _ = verify_password(&password, DUMMY_HASH);
                    false
                }
            };
            handle.send(Job::new(move |r, cx| {
                let ServerRouter {
                    presence, shared, ..
                } = r;
                presence.logged_in(cx, shared, conn, name, ip, ok)
            }));
        });
        Reply::Defer
    }

    /// The end of a login: a session, or a counted failure.
    fn logged_in(
        &mut self,
        cx: &mut Cx<'_, Job>,
        shared: &mut Shared,
        conn: ConnId,
        name: String,
        ip: Option<IpAddr>,
        ok: bool,
    ) {
        if !ok {
            self.throttle.fail(&name, ip, cx.now());
            return finish(cx, conn, error(401, "wrong user name or password"));
        }
        self.throttle.clear(&name);
        let Ok(sid) = web::random_id() else {
            return finish(cx, conn, error(500, "no randomness"));
        };
        self.start_session(shared, &sid, &name, false);
        self.db.log(
            &name,
            "login",
            ip.map(|i| i.to_string()).unwrap_or_default(),
        );
        let body = json(200, json!({ "user": name, "session": sid }));
        finish(cx, conn, body.header("Set-Cookie", session_cookie(&sid)));
    }

    /// Records a session and makes sure its user has an event queue.
    fn start_session(&mut self, shared: &mut Shared, sid: &str, user: &str, guest: bool) {
        let session = Session {
            user: user.to_string(),
            guest,
        };
        shared.sessions.insert(sid.to_string(), session);
        let sids = self.user_sessions.entry(user.to_string()).or_default();
        sids.push(sid.to_string());
        if sids.len() > MAX_SESSIONS {
            // The oldest session of a user who never logs out goes first.
            let oldest = sids.remove(0);
            shared.sessions.remove(&oldest);
        }
        self.boxes
            .entry(user.to_string())
            .or_insert_with(|| Mailbox::new(QUEUE_CAP));
    }

    /// Ends a session; the user's queue goes with their last session.
    fn end_session(&mut self, shared: &mut Shared, sid: &str) {
        let Some(session) = shared.sessions.remove(sid) else {
            return;
        };
        let user = session.user;
        let last = self.user_sessions.get_mut(&user).map_or(true, |sids| {
            sids.retain(|s| s != sid);
            sids.is_empty()
        });
        if last {
            self.user_sessions.remove(&user);
            self.boxes.remove(&user);
        }
    }

    /// `POST /logout`: ends the session; the user goes offline and their held
    /// connection is closed.
    pub(super) fn logout(
        &mut self,
        caller: Caller,
        shared: &mut Shared,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        let pipe = self
            .table
            .get(&caller.user)
            .filter(|row| row.sid == caller.sid)
            .map(|row| row.conn);
        if let Some(conn) = pipe {
            self.go_offline(cx, &caller.user, "logout");
            cx.close(conn);
        }
        self.end_session(shared, &caller.sid);
        self.db.log(&caller.user, "logout", String::new());
        let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
        Reply::Respond(json(200, json!({ "ok": true })).header("Set-Cookie", clear))
    }

    /// A guest session for an unregistered requestor.
    pub(super) fn new_guest(&mut self, shared: &mut Shared) -> Option<Caller> {
        let sid = web::random_id().ok()?;
        let user = format!("guest-{}", &sid[..8]);
        self.start_session(shared, &sid, &user, true);
        self.guests.push_back(sid.clone());
        while self.guests.len() > MAX_GUESTS {
            if let Some(old) = self.guests.pop_front() {
                let online = shared
                    .sessions
                    .get(&old)
                    .is_some_and(|s| self.table.get(&s.user).is_some_and(|r| r.sid == old));
                if !online {
                    self.end_session(shared, &old);
                }
            }
        }
        Some(Caller {
            sid,
            user,
            guest: true,
        })
    }
}

/// The `Set-Cookie` value of a session.
pub fn session_cookie(sid: &str) -> String {
    format!("{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax")
}

/// A `Response` for callers that must log in first.
pub fn login_required() -> Response {
    Response::new(303).header("Location", "/")
}
