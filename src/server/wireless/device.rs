//! The device's side of a conversation. `GET /w/TOKEN` uses the token (it
//! answers `404` from then on, but to the browser that used it) and gives
//! the device a key of its own, 128 random bits, carried in the page's URLs
//! and in a cookie; then:
//!
//! - `GET /w/TOKEN` (first time) and `GET /w/KEY/stream`: the streamed page, held;
//! - `GET /w/KEY/page[?after=N]`: the refresh page, long-polled;
//! - `POST /w/KEY/reply` (`msg`): a reply, sent to the user as
//!   `wireless-reply`; `303` back to the page (or `202` for the script).
//!
//! One device connection is held per conversation; a newer one replaces it.

use serde_json::json;
use subtle::ConstantTimeEq;

use super::link::{Author, Held, Link};
use super::page;
use super::{html_message, ids, text_field, UserEvents, Wireless};
use crate::server::presence::answers::json;
use crate::server::presence::params::Params;
use crate::server::sessions::read_cookie;
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
        let id = match segs.as_slice() {
            [token] => return self.open_token(token, req, pipe, cx),
            [key, _] => self.by_key.get(*key).copied(),
            _ => None,
        };
        let Some(id) = id else {
            return Reply::Respond(gone());
        };
        match (req.method.as_str(), segs.as_slice()) {
            ("GET", [_, "stream"]) => self.open_stream(id, req.conn, cx),
            ("GET", [_, "page"]) => self.open_page(id, req, cx),
            ("POST", [_, "reply"]) => Reply::Respond(self.reply(id, req, pipe, cx)),
            _ => Reply::Respond(page::notice(405, "Not here.")),
        }
    }

    /// `GET /w/TOKEN`. The first GET uses the token: the device gets the
    /// conversation's key (in the page, and in a cookie for this path) and
    /// the streamed page. After that the token answers `404`, except to the
    /// browser that used it (its cookie holds the key), which is sent on to
    /// its page: tapping the SMS's link again works on the device, nowhere
    /// else.
    fn open_token(
        &mut self,
        token: &str,
        req: &Request,
        pipe: &mut dyn UserEvents,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        let Some(&id) = self.by_token.get(token) else {
            return Reply::Respond(gone());
        };
        let Some(link) = self.links.get_mut(&id) else {
            return Reply::Respond(gone());
        };
        if req.method != "GET" {
            return Reply::Respond(page::notice(405, "Not here."));
        }
        if let Some(key) = &link.key {
            let cookie = read_cookie(req, &cookie_name(id)).unwrap_or_default();
            if bool::from(cookie.as_bytes().ct_eq(key.as_bytes())) {
                return Reply::Respond(
                    Response::new(303)
                        .header("Location", format!("/w/{key}/stream"))
                        .header("Cache-Control", "no-store"),
                );
            }
            return Reply::Respond(gone());
        }
        if cx.now() >= link.token_expires {
            return Reply::Respond(gone());
        }
        let Ok(key) = ids::session_id() else {
            return Reply::Respond(page::notice(500, "Try again."));
        };
        self.by_key.insert(key.clone(), id);
        link.key = Some(key.clone());
        link.sms = super::link::Sms::Sent;
        log::debug!("{}: wireless: link {id} opened by {}", req.conn, link.phone);
        let (user, event) = (link.requester.clone(), json!({ "to": link.phone }));
        pipe.notify_user(cx, &user, "wireless-connected", event);
        let cookie = format!(
            "{}={key}; Path=/w/; HttpOnly; SameSite=Lax; Max-Age={}",
            cookie_name(id),
            self.config.idle.as_secs().max(60)
        );
        match self.open_stream(id, req.conn, cx) {
            Reply::Hold(hold) => Reply::Hold(hold.with_header("Set-Cookie", cookie)),
            other => other,
        }
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
            return Reply::Respond(gone());
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
            return Reply::Respond(gone());
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
            return gone();
        };
        let next = link.last_id + 1;
        let event = json!({ "from": link.phone, "msg": msg, "via": "web", "id": next });
        let user = link.requester.clone();
        if !pipe.notify_user(cx, &user, "wireless-reply", event) {
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

/// The answer for a token or key that is unknown, used, expired or ended.
fn gone() -> Response {
    page::notice(404, "This link is not valid any more.")
}

/// The cookie that remembers, on the device, the key of conversation `id`.
fn cookie_name(id: u64) -> String {
    format!("altsock_w{id}")
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
