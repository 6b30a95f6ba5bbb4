//! Type chat: `/initchat` (both sides get `initChat`, and the invitee's next
//! HTML page is modified to hold an invitation window, seed `004`), `POST
//! /chat` relayed as a `chat` event or stored for an offline recipient,
//! `GET /messages` and `POST /messages` (leave a message).

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use super::answers::{error, json};
use super::caller::Caller;
use super::html::{esc, script_json};
use super::ids::unix_now;
use super::params::Params;
use super::{finish, forbidden, Invite, Presence, MAX_CHAT};
use crate::server::Job;
use crate::{Cx, Reply, Request, Response};

/// Pending invitations kept per invitee.
const MAX_INVITES: usize = 8;

impl Presence {
    /// True when `name` can receive chat: a registered user or an online guest.
    fn reachable(&self, name: &str) -> bool {
        self.dir.users.contains_key(name) || self.table.is_online(name)
    }

    /// `/initchat?me=..&to=..&id=..`: both sides get `initChat`; the
    /// invitation waits for the invitee's next HTML page.
    pub(super) fn initchat(
        &mut self,
        req: &Request,
        p: &Params,
        me: Caller,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        // A GET must name its session: a cookie alone would let any site
        // send invitations through a link (a Lax cookie goes with it).
        let explicit = req.method != "GET" || p.get("id").is_some();
        if !explicit {
            return forbidden();
        }
        let to = p.nonempty("to").unwrap_or_default();
        if !self.reachable(&to) || to == me.user {
            return Reply::Respond(error(404, "no such user"));
        }
        let msg: String = p.get("msg").unwrap_or("").chars().take(500).collect();
        let invite = json!({ "from": me.user, "to": to, "msg": msg });
        let mut theirs = invite.clone();
        theirs["with"] = json!(me.user);
        let mut mine = invite;
        mine["with"] = json!(to);
        self.emit(cx, &to, "initChat", theirs);
        self.emit(cx, &me.user, "initChat", mine);
        let pending = self.invites.entry(to.clone()).or_default();
        pending.retain(|i| i.from != me.user);
        pending.push(Invite {
            from: me.user.clone(),
            msg,
        });
        if pending.len() > MAX_INVITES {
            pending.remove(0);
        }
        self.db.log(&me.user, "invite", to.clone());
        let online = self.table.is_online(&to);
        Reply::Respond(json(200, json!({ "to": to, "online": online })))
    }

    /// `POST /chat`: relayed as a `chat` event (`202` with its id), stored
    /// for an offline user, `413` over 4 KiB.
    pub(super) fn chat(&mut self, me: Caller, p: &Params, cx: &mut Cx<'_, Job>) -> Reply {
        let (to, msg) = match self.chat_fields(p, &me) {
            Ok(pair) => pair,
            Err(response) => return Reply::Respond(response),
        };
        self.last_message += 1;
        let id = self.last_message;
        let ts = unix_now();
        self.db.log(&me.user, "chat", to.clone());
        if self.table.is_online(&to) {
            let event = json!({ "id": id, "from": me.user, "to": to, "msg": msg, "ts": ts });
            self.emit(cx, &to, "chat", event);
            return Reply::Respond(json(202, json!({ "id": id, "delivered": true })));
        }
        if !self.dir.users.contains_key(&to) {
            return Reply::Respond(error(404, "recipient is offline"));
        }
        self.store(id, &me.user, &to, &msg, ts, false);
        Reply::Respond(json(202, json!({ "id": id, "stored": true })))
    }

    /// The recipient and text of a chat or message, or the error answer.
    fn chat_fields(&self, p: &Params, me: &Caller) -> Result<(String, String), Response> {
        let to = p.nonempty("to").unwrap_or_default();
        let msg = p.get("msg").unwrap_or("").to_string();
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

    /// Writes a stored message.
    fn store(&self, id: i64, from: &str, to: &str, msg: &str, ts: i64, delivered: bool) {
        let args = vec![
            id.into(),
            from.to_string().into(),
            to.to_string().into(),
            msg.to_string().into(),
            ts.into(),
            i64::from(delivered).into(),
        ];
        self.db.exec(
            "INSERT INTO messages (id, sender, recipient, body, ts, delivered) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            args,
        );
    }

    /// `POST /messages` (`to`, `msg`): leaves a message for a registered user,
    /// delivered now as a `message` event if they are online.
    pub(super) fn leave_message(&mut self, me: Caller, p: &Params, cx: &mut Cx<'_, Job>) -> Reply {
        let (to, msg) = match self.chat_fields(p, &me) {
            Ok(pair) => pair,
            Err(response) => return Reply::Respond(response),
        };
        if !self.dir.users.contains_key(&to) {
            return Reply::Respond(error(404, "no such user"));
        }
        self.last_message += 1;
        let (id, ts) = (self.last_message, unix_now());
        let online = self.table.is_online(&to);
        self.store(id, &me.user, &to, &msg, ts, online);
        if online {
            let event = json!({ "id": id, "from": me.user, "msg": msg, "ts": ts });
            self.emit(cx, &to, "message", event);
        }
        self.db.log(&me.user, "message", to);
        Reply::Respond(json(202, json!({ "id": id, "stored": true })))
    }

    /// `GET /messages`: the messages stored for me, newest first.
    pub(super) fn list_messages(
        &mut self,
        me: Caller,
        req: &Request,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        let (handle, conn) = (cx.handle(), req.conn);
        self.db.run(move |c| {
            let listed = list_stored(c, &me.user);
            handle.send(Job::new(move |_, cx| {
                let response = match listed {
                    Ok(rows) => json(200, json!({ "messages": rows })),
                    Err(e) => error(500, &e.to_string()),
                };
                finish(cx, conn, response);
            }));
        });
        Reply::Defer
    }

    /// Content modification (seed `004`): adds the invitation windows waiting
    /// for `viewer` to an HTML page, which then opens the viewer's pipe.
    pub fn modify_page(&mut self, viewer: &Caller, reply: Reply) -> Reply {
        let Reply::Respond(mut response) = reply else {
            return reply;
        };
        let html = response
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v.starts_with("text/html"));
        if !html {
            return Reply::Respond(response);
        }
        let Some(invites) = self.invites.remove(&viewer.user) else {
            return Reply::Respond(response);
        };
        let fragment = invitation_html(viewer, &invites);
        let body = String::from_utf8_lossy(&response.body).into_owned();
        let at = body.rfind("</body>").unwrap_or(body.len());
        response.body = format!("{}{}{}", &body[..at], fragment, &body[at..]).into_bytes();
        for invite in &invites {
            self.db
                .log(&viewer.user, "invitation shown", invite.from.clone());
        }
        Reply::Respond(response)
    }
}

/// The invitation windows: header, who invites and their message, a reply
/// field; the script opens the invitee's held connection.
fn invitation_html(viewer: &Caller, invites: &[Invite]) -> String {
    let mut out = String::new();
    for invite in invites {
        out.push_str(&format!(
            "<section class=\"chatwin invite\" data-with=\"{from}\">\
<header>Chat invitation</header>\
<p class=\"invite-text\"><b class=\"invite-from\">{from}</b> invites you to chat: \
<q class=\"invite-msg\">{msg}</q></p>\
<div class=\"log\"></div>\
<form class=\"reply\"><input name=\"msg\" maxlength=\"4096\" autocomplete=\"off\" placeholder=\"Reply to {from}\">\
<button>Send</button></form></section>\n",
            from = esc(&invite.from),
            msg = esc(&invite.msg),
        ));
    }
    let boot = json!({ "me": viewer.user });
    out.push_str(&format!(
        "<script type=\"application/json\" id=\"altsock-invite\">{}</script>\n\
<script src=\"/altsock.js\"></script>\n<script src=\"/static/presence.js\"></script>\n",
        script_json(&boot)
    ));
    out
}

/// The undelivered messages of `user`, marked delivered.
pub fn take_undelivered(c: &mut Connection, user: &str) -> Vec<Value> {
    let run = |c: &mut Connection| -> rusqlite::Result<Vec<Value>> {
        let tx = c.transaction()?;
        let rows = {
            let mut stmt = tx.prepare(
                "SELECT id, sender, body, ts FROM messages WHERE recipient = ?1 AND delivered = 0 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![user], |r| {
                Ok(json!({
                    "id": r.get::<_, i64>(0)?,
                    "from": r.get::<_, String>(1)?,
                    "msg": r.get::<_, String>(2)?,
                    "ts": r.get::<_, i64>(3)?,
                }))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        tx.execute(
            "UPDATE messages SET delivered = 1 WHERE recipient = ?1 AND delivered = 0",
            params![user],
        )?;
        tx.commit()?;
        Ok(rows)
    };
    run(c).unwrap_or_else(|e| {
        log::warn!("presence: stored messages of {user}: {e}");
        Vec::new()
    })
}

/// The last 100 messages stored for `user`, newest first.
fn list_stored(c: &Connection, user: &str) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = c.prepare(
        "SELECT id, sender, body, ts, delivered FROM messages WHERE recipient = ?1 ORDER BY id DESC LIMIT 100",
    )?;
    let rows = stmt.query_map(params![user], |r| {
        Ok(json!({
            "id": r.get::<_, i64>(0)?,
            "from": r.get::<_, String>(1)?,
            "msg": r.get::<_, String>(2)?,
            "ts": r.get::<_, i64>(3)?,
            "delivered": r.get::<_, i64>(4)? != 0,
        }))
    })?;
    rows.collect()
}
