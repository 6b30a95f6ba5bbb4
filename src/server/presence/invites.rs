//! Chat invitations (seed `004`): `/initchat` gives both sides `initChat`
//! and keeps the invitation until the invitee's next HTML page, which is
//! modified to hold an invitation window (content modification).

use serde_json::json;

use super::answers::{error, json};
use super::caller::Caller;
use super::html::{esc, script_json};
use super::params::Params;
use super::{forbidden, Invite, Presence};
use crate::server::Job;
use crate::{Cx, Reply, Request};

/// Pending invitations kept per invitee.
const MAX_INVITES: usize = 8;

impl Presence {
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
        let to = match p.required("to") {
            Ok(to) => to,
            Err(refusal) => return Reply::Respond(refusal),
        };
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
