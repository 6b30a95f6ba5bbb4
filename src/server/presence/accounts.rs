//! Accounts and sessions: `POST /register`, `POST /login`, `POST /logout`,
//! guest sessions for unregistered requestors, and the end of sessions
//! (logout, expiry, eviction). Hashing and database writes run off the
//! engine thread; the request is deferred and completed by a [`Job`].

use std::net::IpAddr;

use serde_json::json;

use super::answers::{error, json};
use super::caller::Caller;
use super::directory::{check_name, UserRec, CONTACTS};
use super::hashing::{Argon, HashWork};
use super::ids;
use super::params::{Params, MAX_PASSWORD};
use super::table::EventQueue;
use super::throttle::Subject;
use super::{busy, finish, store, Presence, QUEUE_CAP};
use crate::server::sessions::{clear_session_cookie, set_session_cookie, Session};
use crate::server::{Job, ServerRouter, ServerState};
use crate::{ConnId, Cx, Reply, Request, RequestId, Response};

/// Most sessions one user keeps; the oldest go first.
const MAX_SESSIONS: usize = 32;
/// A valid argon2id hash of nothing anyone types, verified against when the
/// user does not exist so both failures cost the same.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0ZiTS1LO2ZdgTm5/2tIqNElXNPmI6D6hCYlzzgLhQXI";

/// An account to hash and store.
struct NewAccount {
    /// The user name, then its email and phone aliases.
    names: Vec<String>,
    password: String,
    email: Option<String>,
    phone: Option<String>,
}

impl NewAccount {
    /// The hashing thread's part: hash, then insert on the database thread,
    /// then finish the request on the engine thread.
    fn work(self, handle: crate::Handle<Job>, db: super::db::Db, id: RequestId) -> HashWork {
        Box::new(move |argon: &mut Argon| {
            let NewAccount {
                names,
                password,
                email,
                phone,
            } = self;
            let rec = argon.hash(&password).map(|hash| UserRec {
                hash,
                email,
                phone,
                active: CONTACTS.into(),
            });
            let Ok(rec) = rec else {
                let refusal = error(500, "could not store the account");
                handle.send(Job::new(move |r, cx| {
                    r.presence.registered(cx, id, names, Err(refusal))
                }));
                return;
            };
            // The answer waits for the commit of the insert (issue 14).
            let (row, user, reply, kept) =
                (rec.clone(), names[0].clone(), handle.clone(), names.clone());
            let queued = db.write(
                move |c| store::insert_user(c, &user, &row, ids::unix_now()),
                move |stored| {
                    let rec = stored.map(|()| rec).map_err(|e| {
                        log::warn!("presence: register: {e}");
                        error(500, "could not store the account")
                    });
                    reply.send(Job::new(move |r, cx| {
                        r.presence.registered(cx, id, kept, rec)
                    }));
                },
            );
            if queued.is_err() {
                handle.send(Job::new(move |r, cx| {
                    r.presence.registered(cx, id, names, Err(busy()))
                }));
            }
        })
    }
}

/// `429` with `Retry-After` for a throttled password guess.
pub fn throttled(wait: std::time::Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    error(429, "too many password attempts; try again later")
        .header("Retry-After", secs.to_string())
}

/// `400` for a password over the length cap.
pub fn password_too_long() -> Response {
    error(400, &format!("password over {MAX_PASSWORD} bytes"))
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
    /// `POST /register`: `201`, `409` for a taken name, `400` with the reason,
    /// `503` while the hashing queue is full.
    pub(super) fn register(&mut self, req: &Request, p: &Params, cx: &mut Cx<'_, Job>) -> Reply {
        let name = p.nonempty("username").unwrap_or_default();
        if let Err(why) = check_name(&name) {
            return Reply::Respond(error(400, why));
        }
        let Ok(password) = p.password() else {
            return Reply::Respond(password_too_long());
        };
        if password.chars().count() < 8 {
            return Reply::Respond(error(400, "password must be 8 to 1024 characters"));
        }
        let (email, phone) = match check_aliases(p) {
            Ok(aliases) => aliases,
            Err(why) => return Reply::Respond(error(400, why)),
        };
        let names: Vec<String> = std::iter::once(name.clone())
            .chain(email.iter().cloned())
            .chain(phone.iter().cloned())
            .collect();
        if self.dir.taken(&name) || self.pending_names.contains(&name) {
            return Reply::Respond(error(409, "name taken"));
        }
        if names[1..]
            .iter()
            .any(|a| self.dir.taken(a) || self.pending_names.contains(a))
        {
            return Reply::Respond(error(409, "email or phone already registered"));
        }
        let reserved = names.clone();
        let account = NewAccount {
            names,
            password,
            email,
            phone,
        };
        let id = req.id();
        let work = account.work(cx.handle(), self.db.clone(), id);
        self.pending_names.extend(reserved.iter().cloned());
        self.hash_reserving(cx, id.conn, work, reserved)
    }

    /// The end of a registration: the account is stored (or not). `names`
    /// are the user name and its aliases, reserved until now.
    fn registered(
        &mut self,
        cx: &mut Cx<'_, Job>,
        id: RequestId,
        names: Vec<String>,
        rec: Result<UserRec, Response>,
    ) {
        for n in &names {
            self.pending_names.remove(n);
        }
        let rec = match rec {
            Ok(rec) => rec,
            Err(refusal) => return finish(cx, id, refusal),
        };
        let name = names[0].clone();
        self.dir.add_user(name.clone(), rec);
        self.db.log(&name, "register", String::new());
        finish(cx, id, json(201, json!({ "user": name })));
    }

    /// `POST /login`: `200` with the session, `401` for any wrong pair, `429`
    /// while throttled, `400` for an overlong password, `503` while the
    /// hashing queue is full. The attempt counts before the hash runs.
    pub(super) fn login(&mut self, req: &Request, p: &Params, cx: &mut Cx<'_, Job>) -> Reply {
        let name = p.nonempty("username").unwrap_or_default();
        let Ok(password) = p.password() else {
            return Reply::Respond(password_too_long());
        };
        let ip = req.peer.map(|a| a.ip());
        if let Err(wait) = self.throttle.attempt(Subject::Account(&name), ip, cx.now()) {
            return Reply::Respond(throttled(wait));
        }
        let known = self.dir.users.get(&name).map(|u| u.hash.clone());
        let (handle, id) = (cx.handle(), req.id());
        let user = name.clone();
        let work = Box::new(move |argon: &mut Argon| {
            let ok = match &known {
                Some(hash) => argon.verify(&password, hash),
                None => {
                    let _ = argon.verify(&password, DUMMY_HASH);
                    false
                }
            };
            handle.send(Job::new(move |r, cx| {
                let ServerRouter {
                    presence, shared, ..
                } = r;
                presence.logged_in(cx, shared, id, user, ip, ok)
            }));
        });
        self.hash_refunding(cx, id.conn, work, |n| Subject::Account(n), name, ip)
    }

    /// The end of a login: a session, or `401` (the attempt stays counted).
    fn logged_in(
        &mut self,
        cx: &mut Cx<'_, Job>,
        shared: &mut ServerState,
        id: RequestId,
        name: String,
        ip: Option<IpAddr>,
        ok: bool,
    ) {
        if !ok {
            return finish(cx, id, error(401, "wrong user name or password"));
        }
        self.throttle.refund(Subject::Account(&name), ip);
        let Ok(sid) = ids::session_id() else {
            return finish(cx, id, error(500, "no randomness"));
        };
        self.start_session(shared, cx, &sid, &name, false);
        self.db.log(
            &name,
            "login",
            ip.map(|i| i.to_string()).unwrap_or_default(),
        );
        let body = json(200, json!({ "user": name, "session": sid }));
        let secure = cx.is_tls(id.conn);
        let cookie = set_session_cookie(&sid, shared.sessions.limits().absolute, secure);
        finish(cx, id, body.header("Set-Cookie", cookie));
    }

    /// Records a session and makes sure its user has an event queue; a user
    /// over [`MAX_SESSIONS`] loses their oldest.
    fn start_session(
        &mut self,
        shared: &mut ServerState,
        cx: &mut Cx<'_, Job>,
        sid: &str,
        user: &str,
        guest: bool,
    ) {
        let session = Session {
            user: user.to_string(),
            guest,
        };
        shared.sessions.insert(sid.to_string(), session);
        let sids = self.user_sessions.entry(user.to_string()).or_default();
        sids.push(sid.to_string());
        if sids.len() > MAX_SESSIONS {
            let oldest = sids[0].clone();
            self.end_session(shared, cx, &oldest, "too many sessions");
        }
        self.queues
            .entry(user.to_string())
            .or_insert_with(|| EventQueue::new(QUEUE_CAP));
    }

    /// Ends a session wherever it ends (logout, expiry, eviction): a pipe
    /// held on it is closed and its watchers hear the user went offline;
    /// the groups it unlocked are forgotten; with the user's last session go
    /// their event queue and, for a guest, the invitations waiting for them.
    pub(super) fn end_session(
        &mut self,
        shared: &mut ServerState,
        cx: &mut Cx<'_, Job>,
        sid: &str,
        why: &str,
    ) {
        let Some(session) = shared.sessions.remove(sid) else {
            return;
        };
        let user = session.user;
        self.unlocked.remove(sid);
        self.guests.remove(sid);
        let pipe = self
            .table
            .get(&user)
            .filter(|row| row.sid == sid)
            .map(|row| row.conn);
        if let Some(conn) = pipe {
            self.go_offline(cx, &user, why);
            cx.close(conn);
        }
        let last = self.user_sessions.get_mut(&user).map_or(true, |sids| {
            sids.retain(|s| s != sid);
            sids.is_empty()
        });
        if last {
            self.user_sessions.remove(&user);
            self.queues.remove(&user);
            if session.guest {
                self.invites.remove(&user);
            }
        }
    }

    /// `POST /logout`: ends the session; the user goes offline and their held
    /// connection is closed.
    pub(super) fn logout(
        &mut self,
        conn: ConnId,
        caller: Caller,
        shared: &mut ServerState,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        self.end_session(shared, cx, &caller.sid, "logout");
        self.db.log(&caller.user, "logout", String::new());
        Reply::Respond(
            json(200, json!({ "ok": true }))
                .header("Set-Cookie", clear_session_cookie(cx.is_tls(conn))),
        )
    }

    /// A guest session for an unregistered requestor, under a fresh random
    /// name. Past the guest limit the oldest guest without a pipe is ended,
    /// or, when every guest is online, the oldest guest (so a flood of
    /// page loads cannot push out guests who are online while others exist).
    pub(super) fn new_guest(
        &mut self,
        shared: &mut ServerState,
        cx: &mut Cx<'_, Job>,
    ) -> Option<Caller> {
        let sid = ids::session_id().ok()?;
        let user = loop {
            let name = ids::guest_name().ok()?;
            if !self.user_sessions.contains_key(&name) && !self.table.is_online(&name) {
                break name;
            }
        };
        while self.guests.len() >= self.max_guests {
            let offline = |sid: &str| {
                let user = shared.sessions.get_even_expired(sid).map(|s| &s.user);
                !user.is_some_and(|u| self.table.get(u).is_some_and(|r| r.sid == sid))
            };
            let Some(oldest) = self.guests.oldest_preferring(offline).cloned() else {
                break;
            };
            // Ending the session removes it from `guests`; make sure of it.
            self.guests.remove(&oldest);
            self.end_session(shared, cx, &oldest, "guest evicted");
        }
        self.start_session(shared, cx, &sid, &user, true);
        self.guests.push(sid.clone());
        Some(Caller {
            sid,
            user,
            guest: true,
        })
    }
}

/// A `Response` for callers that must log in first.
pub fn login_required() -> Response {
    Response::new(303).header("Location", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_really_hashed_against() {
        // An unknown user costs a full argon2 run, like a known one: the
        // dummy must parse and hash, merely never match.
        let mut argon = Argon::default();
        assert_eq!(argon.try_verify("anything", DUMMY_HASH), Some(false));
    }
}
