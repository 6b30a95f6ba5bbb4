//! The device's side of a conversation. `GET /w/TOKEN` uses the token (it
//! answers `404` from then on) and gives the device a key of its own, 128
//! random bits, carried in the page's URLs; then:
//!
//! - `GET /w/TOKEN` and `GET /w/KEY/stream`: the streamed page, held;
//! - `GET /w/KEY/page[?after=N]`: the refresh page, long-polled;
//! - `POST /w/KEY/reply` (`msg`): a reply, sent to the user as
//!   `wireless-reply`; `303` back to the page (or `202` for the script).
//!
//! One device connection is held per conversation; a newer one replaces it.

use serde_json::json;

use super::link::{Author, Held, Link};
use super::page;
use super::{html_message, ids, text_field, UserEvents, Wireless};
use crate::server::presence::answers::json;
use crate::server::presence::params::Params;
use crate::server::Job;
use crate::{ConnId, Cx, Framing, Hold, Reply, Request, Response};

impl Wireless {
    /// Routes a request under `/w/`.
    pub(super) fn device_request(
        &mut self,
        req: &Request,
        pipe: &mut dyn UserEvents,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        let path = req.path().to_string();
        let segs: Vec<&str> = path.trim_start_matches("/w/").split('/').collect();
        let found = match segs.as_slice() {
            [token] => self.use_token(token, req.method.as_str(), pipe, cx),
            [key, _] => self.by_key.get(*key).copied(),
            _ => None,
        };
        let Some(id) = found else {
            return Reply::Respond(page::notice(404, "This link is not valid any more."));
        };
        match (req.method.as_str(), segs.as_slice()) {
            ("GET", [_] | [_, "stream"]) => self.open_stream(id, req.conn, cx),
            ("GET", [_, "page"]) => self.open_page(id, req, cx),
            ("POST", [_, "reply"]) => Reply::Respond(self.reply(id, req, pipe, cx)),
            _ => Reply::Respond(page::notice(405, "Not here.")),
        }
    }

    /// Uses a token: it dies, and the device gets the conversation's key.
    /// `None` for an unknown, used or expired token (or a method but GET,
    /// which leaves the token alone).
    fn use_token(
        &mut self,
        token: &str,
        method: &str,
        pipe: &mut dyn UserEvents,
        cx: &mut Cx<'_, Job>,
    ) -> Option<u64> {
        let id = *self.by_token.get(token)?;
        let link = self.links.get_mut(&id)?;
        if method != "GET" || cx.now() >= link.token_expires {
            return None;
        }
        let key = ids::session_id().ok()?;
        self.by_token.remove(token);
        self.by_key.insert(key.clone(), id);
        link.token = None;
        link.key = Some(key);
        link.sms = super::link::Sms::Sent;
        log::debug!("wireless: link {id} opened by {}", link.phone);
        let (user, event) = (link.requester.clone(), json!({ "to": link.phone }));
        pipe.push_event(cx, &user, "wireless-connected", event);
        Some(id)
    }

    /// Makes `conn` the device's connection, closing an older one.
    fn take_device(&mut self, id: u64, conn: ConnId, held: Held, cx: &mut Cx<'_, Job>) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        if let Some((old, _)) = link.device.replace((conn, held)) {
            if old != conn {
                self.by_conn.remove(&old);
                cx.close(old);
            }
        }
        link.last_active = cx.now();
        self.by_conn.insert(conn, id);
    }

    /// The streamed page: everything so far, then one paragraph per text.
    fn open_stream(&mut self, id: u64, conn: ConnId, cx: &mut Cx<'_, Job>) -> Reply {
        self.take_device(id, conn, Held::Stream, cx);
        let Some(link) = self.links.get_mut(&id) else {
            return Reply::Respond(page::notice(404, "This link is not valid any more."));
        };
        let key = link.key.clone().unwrap_or_default();
        let head = page::stream_head(link, &key);
        link.seen = link.last_id;
        link.trim();
        Reply::Hold(
            Hold::new(Framing::Chunked)
                .with_content_type("text/html; charset=utf-8")
                .with_header("Cache-Control", "no-store")
                .with_header("X-Accel-Buffering", "no")
                .with_initial(html_message(head)),
        )
    }

    /// The refresh page: at once when there is a text after `after` (or no
    /// `after`), else held until there is one or the wait is over.
    fn open_page(&mut self, id: u64, req: &Request, cx: &mut Cx<'_, Job>) -> Reply {
        let after = Params::of(req)
            .get("after")
            .and_then(|a| a.trim().parse::<u64>().ok());
        let wait = self.config.poll_wait;
        let Some(link) = self.links.get_mut(&id) else {
            return Reply::Respond(page::notice(404, "This link is not valid any more."));
        };
        let key = link.key.clone().unwrap_or_default();
        match after {
            Some(after) if after >= link.last_id => {
                let until = cx.now() + wait;
                self.take_device(id, req.conn, Held::Page { after, until }, cx);
                Reply::Hold(
                    Hold::new(Framing::LongPoll)
                        .with_content_type("text/html; charset=utf-8")
                        .with_header("Cache-Control", "no-store")
                        .with_timeout(wait * 2),
                )
            }
            _ => {
                link.last_active = cx.now();
                let html = page::refresh_page(link, &key);
                link.seen = link.last_id;
                link.trim();
                Reply::Respond(Response::html(200, html).header("Cache-Control", "no-store"))
            }
        }
    }

    /// `POST /w/KEY/reply`: the device's reply goes to the user's pipe.
    fn reply(
        &mut self,
        id: u64,
        req: &Request,
        pipe: &mut dyn UserEvents,
        cx: &mut Cx<'_, Job>,
    ) -> Response {
        let p = Params::of(req);
        let by_script = req.header("x-altsock-fetch").is_some();
        let msg = match text_field(&p) {
            Ok(msg) => msg,
            Err(refusal) if by_script => return refusal,
            Err(_) => return page::notice(400, "Type a message first."),
        };
        let Some(link) = self.links.get_mut(&id) else {
            return page::notice(404, "This link is not valid any more.");
        };
        let next = link.last_id + 1;
        let event = json!({ "from": link.phone, "msg": msg, "via": "web", "id": next });
        let user = link.requester.clone();
        if !pipe.push_event(cx, &user, "wireless-reply", event) {
            let why = format!("{user} has signed out; your reply was not delivered.");
            return page::notice(410, &why);
        }
        link.add(Author::Device, msg);
        link.last_active = cx.now();
        let key = link.key.clone().unwrap_or_default();
        let back = if p.get("view") == Some("page") {
            "page"
        } else {
            "stream"
        };
        self.counters.replies += 1;
        self.deliver(id, cx);
        if by_script {
            return json(202, json!({ "id": next, "delivered": true }));
        }
        Response::new(303)
            .header("Location", format!("/w/{key}/{back}"))
            .header("Cache-Control", "no-store")
    }
}

/// Pushes the texts the device has not seen down its streamed page;
/// `true` when the connection is gone.
pub(super) fn push_stream(link: &mut Link, conn: ConnId, cx: &mut Cx<'_, Job>) -> bool {
    let unseen: Vec<_> = link
        .texts
        .iter()
        .filter(|t| t.id > link.seen)
        .cloned()
        .collect();
    for text in unseen {
        let html = page::text_html(&text, &link.requester);
        if cx.push(conn, &html_message(html)).is_err() {
            return true;
        }
        link.seen = text.id;
    }
    false
}

/// Answers a waiting refresh page with the whole page.
pub(super) fn answer_page(link: &mut Link, conn: ConnId, cx: &mut Cx<'_, Job>) {
    let key = link.key.clone().unwrap_or_default();
    let html = page::refresh_page(link, &key);
    if cx.push(conn, &html_message(html)).is_ok() {
        link.seen = link.last_id;
    }
}
