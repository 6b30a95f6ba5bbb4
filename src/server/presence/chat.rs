//! Type chat and stored messages: `POST /chat` relayed as a `chat` event or
//! stored for an offline recipient, `POST /messages` (leave a message),
//! `GET /messages`, the limits on what is stored, and the delivery of stored
//! messages at login, a page at a time. A `stored` answer is sent only once
//! the transaction holding the message committed; the SQL is in `store.rs`.

use serde_json::json;

use super::answers::{error, json};
use super::caller::Caller;
use super::ids::unix_now;
use super::params::Params;
use super::store::{self, Stored};
use super::table::Mode;
use super::{busy, finish, Presence, MAX_CHAT};
use crate::server::Job;
use crate::{Cx, Reply, Request, RequestId, Response};

/// Stored messages delivered per engine job at login.
pub const PAGE: usize = 100;

/// Most messages `GET /messages` lists.
const LISTED: usize = 100;

impl Presence {
    /// True when `name` can receive chat: a registered user or an online guest.
    pub(super) fn reachable(&self, name: &str) -> bool {
        self.dir.users.contains_key(name) || self.table.is_online(name)
    }

    /// `POST /chat`: relayed as a `chat` event (`202` with its id), stored
    /// for an offline user (`202` once committed), `413` over 4 KiB.
    pub(super) fn chat(
        &mut self,
        me: Caller,
        req: &Request,
        p: &Params,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        let (to, msg) = match self.chat_fields(p, &me) {
            Ok(pair) => pair,
            Err(response) => return Reply::Respond(response),
        };
        if self.table.is_online(&to) {
            self.last_message += 1;
            let (id, ts) = (self.last_message, unix_now());
            self.db.log(&me.user, "chat", to.clone());
            let event = json!({ "id": id, "from": me.user, "to": to, "msg": msg, "ts": ts });
            self.emit(cx, &to, "chat", event);
            return Reply::Respond(json(202, json!({ "id": id, "delivered": true })));
        }
        if !self.dir.users.contains_key(&to) {
            return Reply::Respond(error(404, "recipient is offline"));
        }
        let reply = self.store_message(cx, req.id(), &me.user, to.clone(), msg, false);
        self.log_taken(&reply, &me.user, "chat", to);
        reply
    }

    /// Logs a chat or message the store took (after its write, so a batch
    /// never holds the line without the message); refused ones are not.
    fn log_taken(&self, reply: &Reply, from: &str, kind: &'static str, to: String) {
        if matches!(reply, Reply::Defer | Reply::DeferPipelined) {
            self.db.log(from, kind, to);
        }
    }

    /// The recipient and text of a chat or message, or the error answer.
    fn chat_fields(&self, p: &Params, me: &Caller) -> Result<(String, String), Response> {
        let to = p.required("to")?;
        let Some(msg) = p.get("msg").map(str::to_string) else {
            return Err(error(400, "missing field: msg"));
        };
        if msg.len() > MAX_CHAT {
            return Err(error(413, "message over 4 KiB"));
        }
        if msg.trim().is_empty() {
            return Err(error(400, "empty message"));
        }
        if !self.reachable(&to) || to == me.user {
            return Err(error(404, "no such user"));
        }
        Ok((to, msg))
    }

    /// `POST /messages` (`to`, `msg`): leaves a message for a registered user;
    /// once stored it is answered, and sent as a `message` event if they are
    /// online.
    pub(super) fn leave_message(
        &mut self,
        me: Caller,
        req: &Request,
        p: &Params,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        let (to, msg) = match self.chat_fields(p, &me) {
            Ok(pair) => pair,
            Err(response) => return Reply::Respond(response),
        };
        if !self.dir.users.contains_key(&to) {
            return Reply::Respond(error(404, "no such user"));
        }
        let online = self.table.is_online(&to);
        let reply = self.store_message(cx, req.id(), &me.user, to.clone(), msg, online);
        self.log_taken(&reply, &me.user, "message", to);
        reply
    }

    /// The refusal when storing one more message from `from` for `to` would
    /// pass a limit: `507` for the recipient's, `429` for the sender's.
    fn over_limit(&mut self, from: &str, to: &str) -> Option<Response> {
        let held =
            |m: &std::collections::HashMap<String, usize>, k: &str| m.get(k).copied().unwrap_or(0);
        if held(&self.stored_for, to) >= self.limits.max_per_recipient {
            self.refused[0] += 1;
            let body = json!({
                "error": "the recipient has too many undelivered messages",
                "limit": "max-stored-per-recipient",
                "max": self.limits.max_per_recipient,
            });
            return Some(json(507, body));
        }
        if held(&self.stored_by, from) >= self.limits.max_per_sender {
            self.refused[1] += 1;
            let body = json!({
                "error": "you have too many undelivered messages",
                "limit": "max-stored-per-sender",
                "max": self.limits.max_per_sender,
            });
            return Some(json(429, body).header("Retry-After", "60"));
        }
        None
    }

    /// Stores a message (already `delivered` when the recipient is online)
    /// and answers `202` once it is committed.
    fn store_message(
        &mut self,
        cx: &mut Cx<'_, Job>,
        id: RequestId,
        from: &str,
        to: String,
        msg: String,
        delivered: bool,
    ) -> Reply {
        if !delivered {
            if let Some(refusal) = self.over_limit(from, &to) {
                return Reply::Respond(refusal);
            }
        }
        let stored = Stored {
            id: self.last_message + 1,
            from: from.to_string(),
            to: to.clone(),
            msg,
            ts: unix_now(),
        };
        let row = stored.clone();
        let handle = cx.handle();
        let queued = self.db.write(
            move |c| store::insert_message(c, &row, delivered),
            move |result| {
                handle.send(Job::new(move |r, cx| {
                    r.presence.message_stored(cx, id, stored, delivered, result)
                }));
            },
        );
        if queued.is_err() {
            return Reply::Respond(busy());
        }
        self.last_message += 1;
        if !delivered {
            self.count_stored(from, &to, 1);
        }
        Reply::DeferPipelined
    }

    /// Adds `n` (or with a negative `n`, removes) undelivered messages from
    /// `from` to `to` in the counts the limits check.
    fn count_stored(&mut self, from: &str, to: &str, n: isize) {
        for (map, key) in [(&mut self.stored_by, from), (&mut self.stored_for, to)] {
            let count = map.entry(key.to_string()).or_default();
            *count = count.saturating_add_signed(n);
            if *count == 0 {
                map.remove(key);
            }
        }
    }

    /// The end of a store: `202` once committed (and the event for an
    /// online recipient), `500` (and the count given back) if it failed.
    fn message_stored(
        &mut self,
        cx: &mut Cx<'_, Job>,
        id: RequestId,
        m: Stored,
        delivered: bool,
        result: Result<(), String>,
    ) {
        if let Err(e) = result {
            log::warn!("presence: storing message {} failed: {e}", m.id);
            if !delivered {
                self.count_stored(&m.from, &m.to, -1);
            }
            return finish(cx, id, error(500, "could not store the message"));
        }
        if delivered {
            self.emit(cx, &m.to, "message", m.event());
        }
        finish(cx, id, json(202, json!({ "id": m.id, "stored": true })));
    }

    /// `GET /messages`: the messages stored for me, newest first.
    pub(super) fn list_messages(
        &mut self,
        me: Caller,
        req: &Request,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        let (handle, id) = (cx.handle(), req.id());
        let queued = self.db.write(
            move |c| store::list_recent(c, &me.user, LISTED),
            move |listed| {
                let response = match listed {
                    Ok(rows) => json(200, json!({ "messages": rows })),
                    Err(e) => error(500, &e),
                };
                handle.send(Job::new(move |_, cx| finish(cx, id, response)));
            },
        );
        match queued {
            Ok(()) => Reply::Defer,
            Err(_) => Reply::Respond(busy()),
        }
    }

    /// Delivers, as `message` events, what was stored for `user` while
    /// away: a page of [`PAGE`] per engine job, each page marked delivered
    /// after it was sent, the next read only then. A long-polling user gets
    /// the next page when a poll of theirs waits (has fetched the last), so
    /// their 256-event queue never overflows; this is also that resumption.
    pub(super) fn deliver_stored(&mut self, cx: &mut Cx<'_, Job>, user: &str) {
        let after = match self.delivering.get(user) {
            Some(None) => return,
            Some(Some(last)) => *last,
            None if self.stored_for.contains_key(user) => 0,
            None => return,
        };
        self.delivering.insert(user.to_string(), None);
        self.next_stored_page(cx, user.to_string(), after);
    }

    /// Reads the page of `user`'s stored messages after id `after`.
    fn next_stored_page(&self, cx: &mut Cx<'_, Job>, user: String, after: i64) {
        let (handle, name) = (cx.handle(), user.clone());
        self.db.write_unbounded(
            move |c| store::undelivered_page(c, &name, after, PAGE),
            move |page| {
                handle.send(Job::new(move |r, cx| {
                    r.presence.stored_page(cx, user, page)
                }));
            },
        );
    }

    /// Sends one page while `user` is online, marks it delivered and asks
    /// for the next; what is left waits for their next login.
    fn stored_page(
        &mut self,
        cx: &mut Cx<'_, Job>,
        user: String,
        page: Result<Vec<Stored>, String>,
    ) {
        let rows = match page {
            Ok(rows) if !rows.is_empty() && self.table.is_online(&user) => rows,
            other => {
                if let Err(e) = other {
                    log::warn!("presence: stored messages of {user}: {e}");
                }
                self.delivering.remove(&user);
                return;
            }
        };
        self.stored_delivered.0 += rows.len() as u64;
        self.stored_delivered.1 += 1;
        for m in &rows {
            self.emit(cx, &user, "message", m.event());
            self.count_stored(&m.from, &user, -1);
        }
        let ids: Vec<i64> = rows.iter().map(|m| m.id).collect();
        let last = ids.last().copied().unwrap_or(0);
        let name = user.clone();
        self.db.write_unbounded(
            move |c| store::mark_delivered(c, &name, &ids),
            |marked| {
                if let Err(e) = marked {
                    log::warn!("presence: marking messages delivered: {e}");
                }
            },
        );
        let polling = self
            .table
            .get(&user)
            .is_some_and(|row| matches!(row.mode, Mode::Poll { .. }));
        if rows.len() < PAGE {
            self.delivering.remove(&user);
        } else if polling {
            self.delivering.insert(user, Some(last));
        } else {
            self.next_stored_page(cx, user, last);
        }
    }
}
