//! Two-way text with wireless devices (seed `002`, claims 47-50, Fig. 20):
//! a user texts a phone number (`POST /wireless/text`); altsock sends the
//! device an SMS through a gateway carrying a single-use URL `/w/TOKEN`;
//! the device opens it and the connection is held; the user's texts are
//! pushed down it in order and the device's replies (its page's form, or an
//! SMS back through `/sms/inbound`) reach the user's `/jchat` pipe. If the
//! SMS cannot be sent, the user hears `wireless-unavailable`.
//!
//! # Layout
//!
//! - [`gateway`]: the SMS client on worker threads (Kannel or Twilio).
//! - [`link`]: one conversation, its token, key, texts and held connection.
//! - `device.rs`: the device's endpoints (`/w/TOKEN`, `/w/KEY/...`).
//! - `inbound.rs`: `/sms/inbound` and the Twilio signature.
//! - [`page`]: the device's HTML.
//!
//! Everything here runs on the engine thread and never blocks: SMS go out
//! from the gateway's threads and their outcome comes back as a [`Job`].
//! Events reach users through [`UserEvents`] (the presence server's pipe).

mod device;
pub mod gateway;
pub mod inbound;
pub mod link;
pub mod page;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;

use super::presence::answers::{error, json};
use super::presence::params::Params;
use super::presence::{caller, ids, origin, MAX_CHAT};
use super::{Job, ServerState, UserEvents};
use crate::{ConnId, Cx, Message, Reply, Request, Response};
use gateway::{Gateway, GatewayConfig, Refused, Sms};
use link::{Author, Held, Link};

/// Most live conversations at once; more get `503`.
pub const MAX_LINKS: usize = 10_000;

/// Most live conversations one user may have; more get `429`.
pub const MAX_LINKS_PER_USER: usize = 20;

/// Settings of the wireless service.
#[derive(Debug, Clone)]
pub struct WirelessConfig {
    /// The SMS gateway; `None` answers `POST /wireless/text` with `503`.
    pub gateway: Option<GatewayConfig>,
    /// The base of the URLs sent by SMS (`https://chat.example.com`); `None`
    /// takes `http://` and the `Host` of the user's request.
    pub public_url: Option<String>,
    /// Twilio's auth token: `/sms/inbound` then needs a valid
    /// `X-Twilio-Signature` (`403` otherwise).
    pub twilio_auth_token: Option<String>,
    /// A shared secret `/sms/inbound` then needs as its `key` query
    /// parameter (`403` otherwise): for gateways that sign nothing (Kannel's
    /// `get-url`, which can carry it in the URL).
    pub inbound_key: Option<String>,
    /// How long an unopened link's token lives.
    pub token_ttl: Duration,
    /// How long a conversation lives with no device connected.
    pub idle: Duration,
    /// How long the refresh page's long-poll waits before answering anyway.
    pub poll_wait: Duration,
    /// Most texts queued for a device that has not received them (`429` past it).
    pub queue: usize,
}

impl Default for WirelessConfig {
    fn default() -> Self {
        WirelessConfig {
            gateway: None,
            public_url: None,
            twilio_auth_token: None,
            inbound_key: None,
            token_ttl: Duration::from_secs(3600),
            idle: Duration::from_secs(1800),
            poll_wait: Duration::from_secs(25),
            queue: 100,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    sms_sent: u64,
    sms_failed: u64,
    texts: u64,
    replies: u64,
    inbound_routed: u64,
    inbound_refused: u64,
}

/// The wireless service: all conversations with devices.
pub struct Wireless {
    config: WirelessConfig,
    gateway: Option<Gateway>,
    links: HashMap<u64, Link>,
    next_link: u64,
    /// Links by (requester, phone), by token, by key, by held connection.
    by_pair: HashMap<(String, String), u64>,
    by_token: HashMap<String, u64>,
    by_key: HashMap<String, u64>,
    by_conn: HashMap<ConnId, u64>,
    /// The latest link to each number: where an SMS from it goes.
    by_phone: HashMap<String, u64>,
    /// Live links per requester.
    per_user: HashMap<String, usize>,
    counters: Counters,
}

impl Wireless {
    /// Starts the gateway's threads (if one is configured).
    pub fn new(config: WirelessConfig) -> std::io::Result<Self> {
        let gateway = match &config.gateway {
            Some(g) => Some(Gateway::start(g.clone())?),
            None => None,
        };
        Ok(Wireless {
            config,
            gateway,
            links: HashMap::new(),
            next_link: 0,
            by_pair: HashMap::new(),
            by_token: HashMap::new(),
            by_key: HashMap::new(),
            by_conn: HashMap::new(),
            by_phone: HashMap::new(),
            per_user: HashMap::new(),
            counters: Counters::default(),
        })
    }

    /// True when `req` is this service's.
    pub fn claims(&self, req: &Request) -> bool {
        let path = req.path();
        path == "/wireless/text" || path == "/sms/inbound" || path.starts_with("/w/")
    }

    /// Answers a request it claimed; events for users go through `pipe`.
    pub fn handle_with_pipe(
        &mut self,
        req: Request,
        shared: &mut ServerState,
        pipe: &mut dyn UserEvents,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        let path = req.path().to_string();
        if path == "/sms/inbound" {
            return Reply::Respond(self.inbound(&req, pipe, cx));
        }
        if origin::is_state_changing(&req) && !origin::origin_ok(&req) {
            log::debug!("{}: wireless: cross-origin {path} refused", req.conn);
            return Reply::Respond(error(403, "cross-origin request refused"));
        }
        if path == "/wireless/text" {
            return Reply::Respond(match req.method.as_str() {
                "POST" => self.text(&req, shared, cx),
                _ => error(405, "use POST").header("Allow", "POST"),
            });
        }
        self.device_request(&req, pipe, cx)
    }

    /// `POST /wireless/text` (`to`, `msg`): queues a text for the device and,
    /// for a new conversation, sends it the link by SMS.
    fn text(&mut self, req: &Request, shared: &mut ServerState, cx: &mut Cx<'_, Job>) -> Response {
        let p = Params::of(req);
        let me = match caller::authenticate(req, &p, &mut shared.sessions) {
            Some(me) if !me.guest => me,
            Some(_) => return error(403, "guests cannot text phones"),
            None => return error(403, "no valid session"),
        };
        let to = match p.required("to") {
            Ok(to) => to,
            Err(missing) => return missing,
        };
        let Some(phone) = link::normalize_phone(&to) else {
            return error(400, "not a phone number (E.164, e.g. +15550100000)");
        };
        let msg = match text_field(&p) {
            Ok(msg) => msg,
            Err(refusal) => return refusal,
        };
        let existing = self.by_pair.get(&(me.user.clone(), phone.clone())).copied();
        match existing {
            Some(id) => self.queue_text(id, msg, cx),
            None => self.open_link(req, &me.user, &phone, msg, cx),
        }
    }

    /// Adds a text to a live conversation and sends it if the device is there.
    fn queue_text(&mut self, id: u64, msg: String, cx: &mut Cx<'_, Job>) -> Response {
        let cap = self.config.queue;
        let Some(link) = self.links.get_mut(&id) else {
            return error(500, "conversation lost");
        };
        let queued = link.undelivered();
        if queued >= cap {
            let body = json!({
                "error": "the device's queue is full; wait until it reads its texts",
                "queued": queued,
                "max": cap,
            });
            return json(429, body).header("Retry-After", "5");
        }
        let text = link.add(Author::Requester, msg);
        self.counters.texts += 1;
        self.deliver(id, cx);
        let link = &self.links[&id];
        let delivered = link.seen >= text.id;
        let body = json!({ "id": text.id, "to": link.phone, "delivered": delivered,
                           "queued": link.undelivered() });
        json(202, body)
    }

    /// Starts a conversation: the link, its first text, and the SMS.
    fn open_link(
        &mut self,
        req: &Request,
        user: &str,
        phone: &str,
        msg: String,
        cx: &mut Cx<'_, Job>,
    ) -> Response {
        let Some(gateway) = &self.gateway else {
            return error(503, "no SMS gateway is configured");
        };
        if self.links.len() >= MAX_LINKS {
            return error(503, "too many conversations with devices").header("Retry-After", "60");
        }
        if self.per_user.get(user).copied().unwrap_or(0) >= MAX_LINKS_PER_USER {
            return error(429, "too many conversations with devices at once");
        }
        let Ok(token) = ids::session_id() else {
            return error(500, "no randomness");
        };
        let url = format!("{}/w/{token}", self.base_url(req));
        let id = self.next_link;
        let sms = Sms {
            to: phone.to_string(),
            text: format!("{user} sent you a message. Read and reply: {url}"),
        };
        let outcome: gateway::Outcome = Box::new(move |result| {
            Job::new(move |router, cx| {
                let presence = &mut router.presence;
                router.wireless.sms_outcome(id, result, presence, cx);
            })
        });
        if gateway.submit(sms, cx.handle(), outcome).is_err() {
            return error(503, "too many SMS waiting for the gateway").header("Retry-After", "5");
        }
        self.next_link += 1;
        let now = cx.now();
        let mut link = Link::new(user, phone, token.clone(), now + self.config.token_ttl, now);
        let text = link.add(Author::Requester, msg);
        self.counters.texts += 1;
        self.by_pair.insert((user.into(), phone.into()), id);
        self.by_token.insert(token, id);
        self.by_phone.insert(phone.into(), id);
        *self.per_user.entry(user.into()).or_default() += 1;
        self.links.insert(id, link);
        log::debug!("{}: wireless: {user} texts {phone} (link {id})", req.conn);
        json(
            202,
            json!({ "id": text.id, "to": phone, "delivered": false, "queued": 1, "sms": "sending" }),
        )
    }

    /// The base of the URLs sent by SMS.
    fn base_url(&self, req: &Request) -> String {
        match &self.config.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", req.header("host").unwrap_or("localhost")),
        }
    }

    /// The gateway's answer for link `id`'s SMS: `wireless-sent`, or the
    /// conversation ends with `wireless-unavailable` (Fig. 20).
    fn sms_outcome(
        &mut self,
        id: u64,
        result: Result<(), Refused>,
        pipe: &mut dyn UserEvents,
        cx: &mut Cx<'_, Job>,
    ) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        match result {
            Ok(()) => {
                self.counters.sms_sent += 1;
                link.sms = link::Sms::Sent;
                let event = json!({ "to": link.phone, "queued": link.undelivered() });
                let user = link.requester.clone();
                pipe.notify_user(cx, &user, "wireless-sent", event);
            }
            Err(Refused(why)) => {
                self.counters.sms_failed += 1;
                if link.key.is_some() {
                    return; // The device opened the link anyway.
                }
                self.end_link(id, "wireless-unavailable", &why, pipe, cx);
            }
        }
    }

    /// Ends a conversation: its token and key die, its device connection
    /// closes, and the requester hears `kind` with `reason` and how many of
    /// their texts the device never received.
    fn end_link(
        &mut self,
        id: u64,
        kind: &'static str,
        reason: &str,
        pipe: &mut dyn UserEvents,
        cx: &mut Cx<'_, Job>,
    ) {
        let Some(link) = self.links.remove(&id) else {
            return;
        };
        self.by_pair
            .remove(&(link.requester.clone(), link.phone.clone()));
        if let Some(token) = &link.token {
            self.by_token.remove(token);
        }
        if let Some(key) = &link.key {
            self.by_key.remove(key);
        }
        if self.by_phone.get(&link.phone) == Some(&id) {
            // SMS from the number now go to the latest other conversation with it.
            let next = self
                .links
                .iter()
                .filter(|(_, l)| l.phone == link.phone)
                .map(|(&other, _)| other)
                .max();
            match next {
                Some(other) => self.by_phone.insert(link.phone.clone(), other),
                None => self.by_phone.remove(&link.phone),
            };
        }
        if let Some(n) = self.per_user.get_mut(&link.requester) {
            *n -= 1;
            if *n == 0 {
                self.per_user.remove(&link.requester);
            }
        }
        if let Some((conn, _)) = link.device {
            self.by_conn.remove(&conn);
            cx.close(conn);
        }
        log::debug!("wireless: link {id} to {} ended: {reason}", link.phone);
        let event =
            json!({ "to": link.phone, "reason": reason, "undelivered": link.undelivered() });
        pipe.notify_user(cx, &link.requester, kind, event);
    }

    /// Sends the device what it has not seen, if it is connected.
    fn deliver(&mut self, id: u64, cx: &mut Cx<'_, Job>) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        let Some((conn, held)) = link.device else {
            return;
        };
        let gone = match held {
            Held::Stream => device::push_stream(link, conn, cx),
            Held::Page { after, .. } if link.last_id > after => {
                device::answer_page(link, conn, cx);
                true
            }
            Held::Page { .. } => false,
        };
        if gone {
            link.device = None;
            self.by_conn.remove(&conn);
        }
        link.trim();
    }

    /// Once per tick: unopened tokens expire (`wireless-unavailable`), idle
    /// conversations end (`wireless-ended`), waiting refresh pages answer.
    pub fn tick(&mut self, pipe: &mut dyn UserEvents, cx: &mut Cx<'_, Job>) {
        let now = cx.now();
        let mut unopened = Vec::new();
        let mut idle = Vec::new();
        for (&id, link) in &mut self.links {
            match link.device {
                _ if link.key.is_none() && now >= link.token_expires => unopened.push(id),
                None if link.key.is_some() && now >= link.last_active + self.config.idle => {
                    idle.push(id)
                }
                Some((conn, Held::Page { until, .. })) if now >= until => {
                    device::answer_page(link, conn, cx);
                    link.device = None;
                    self.by_conn.remove(&conn);
                }
                _ => {}
            }
        }
        for id in unopened {
            let why = "the device did not open the link in time";
            self.end_link(id, "wireless-unavailable", why, pipe, cx);
        }
        for id in idle {
            self.end_link(id, "wireless-ended", "the device left", pipe, cx);
        }
    }

    /// A connection closed: if it was a device's, the device is away.
    pub fn closed(&mut self, conn: ConnId, cx: &mut Cx<'_, Job>) {
        self.released(conn, cx);
    }

    /// A long-poll ended (answered or timed out): the device is away.
    pub fn released(&mut self, conn: ConnId, cx: &mut Cx<'_, Job>) {
        let Some(id) = self.by_conn.remove(&conn) else {
            return;
        };
        if let Some(link) = self.links.get_mut(&id) {
            if link.device.is_some_and(|(c, _)| c == conn) {
                link.device = None;
                link.last_active = cx.now();
            }
        }
    }

    /// Appends the service's gauges and counters (Prometheus text).
    pub fn metrics(&self, out: &mut String) {
        let held = self.links.values().filter(|l| l.device.is_some()).count();
        let c = &self.counters;
        let lines = [
            ("altsock_wireless_links", "gauge", self.links.len() as u64),
            ("altsock_wireless_devices_connected", "gauge", held as u64),
            ("altsock_wireless_sms_sent_total", "counter", c.sms_sent),
            ("altsock_wireless_sms_failed_total", "counter", c.sms_failed),
            ("altsock_wireless_texts_total", "counter", c.texts),
            ("altsock_wireless_replies_total", "counter", c.replies),
            (
                "altsock_wireless_inbound_routed_total",
                "counter",
                c.inbound_routed,
            ),
            (
                "altsock_wireless_inbound_refused_total",
                "counter",
                c.inbound_refused,
            ),
        ];
        for (name, kind, value) in lines {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {value}");
        }
    }
}

/// The `msg` field: `400` when empty, `413` over 4 KiB.
fn text_field(p: &Params) -> Result<String, Response> {
    let msg = p.get("msg").unwrap_or("").to_string();
    if msg.trim().is_empty() {
        return Err(error(400, "missing field: msg"));
    }
    if msg.len() > MAX_CHAT {
        return Err(error(413, "message over 4 KiB"));
    }
    Ok(msg)
}

/// A message for a held connection.
fn html_message(html: String) -> Message {
    Message::data(html.into_bytes())
}
