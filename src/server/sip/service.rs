//! The engine side of the SIP relay: [`SipService`] binds the SIP sockets at
//! start-up, starts the SIP thread once the engine's Handle exists, decides
//! on requests the thread offers (an online user gets the `sip` event on
//! their pipe; offline `480`, unknown `404`), and serves `POST /sip/reply`
//! and `POST /sip/send` (authenticated and origin-checked like `/chat`),
//! deferring them until the SIP thread answers through the Handle.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::Waker;

use super::client::Outgoing;
use super::config::SipConfig;
use super::counters::SipCounters;
use super::relay::{Offer, Relay, ToSip};
use super::transport::Sockets;
use crate::server::presence::answers::error;
use crate::server::presence::caller::{self, Caller};
use crate::server::presence::origin;
use crate::server::presence::params::Params;
use crate::server::presence::push::{Pushed, UserStatus};
use crate::server::presence::Presence;
use crate::server::{Job, ServerState};
use crate::{Cx, Reply, Request};

/// Longest body `/sip/reply` and `/sip/send` take (RFC 3428 leaves larger
/// content to MSRP; over TCP altsock sends up to this).
pub const MAX_SIP_BODY: usize = 16 * 1024;

/// The SIP relay as the engine sees it.
pub struct SipService {
    cfg: SipConfig,
    /// Sockets and queue, until the thread starts.
    idle: Option<(Sockets, Receiver<ToSip>)>,
    tx: Option<Sender<ToSip>>,
    waker: Option<Arc<Waker>>,
    thread: Option<JoinHandle<()>>,
    local: Option<SocketAddr>,
    /// Transactions delivered to a user: who may answer, until when.
    pending: HashMap<String, (String, Instant)>,
    counters: Arc<SipCounters>,
}

impl SipService {
    /// Binds the SIP sockets when `--sip-listen` is set (errors surface at
    /// start-up); the thread starts with [`SipService::start`].
    pub fn open(cfg: &SipConfig) -> std::io::Result<Self> {
        let mut service = SipService {
            cfg: cfg.clone(),
            idle: None,
            tx: None,
            waker: None,
            thread: None,
            local: None,
            pending: HashMap::new(),
            counters: Arc::default(),
        };
        if let Some(addr) = cfg.listen {
            let (sockets, waker) = Sockets::bind(addr, cfg.max_tcp)?;
            let (tx, rx) = channel();
            service.local = Some(sockets.local);
            service.idle = Some((sockets, rx));
            service.tx = Some(tx);
            service.waker = Some(waker);
        }
        Ok(service)
    }

    /// The address the SIP sockets are bound to (UDP and TCP).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Starts the SIP thread (once) with the engine's handle.
    pub fn start(&mut self, cx: &Cx<'_, Job>) {
        let Some((sockets, rx)) = self.idle.take() else {
            return;
        };
        let counters = Arc::clone(&self.counters);
        let relay = Relay::new(self.cfg.clone(), sockets, rx, cx.handle(), counters);
        match std::thread::Builder::new()
            .name("altsock-sip".into())
            .spawn(move || relay.run())
        {
            Ok(thread) => self.thread = Some(thread),
            Err(e) => log::error!("sip: cannot start the SIP thread: {e}"),
        }
    }

    /// True for the paths this service answers.
    pub fn claims(req: &Request) -> bool {
        req.path().starts_with("/sip/")
    }

    fn to_thread(&self, msg: ToSip) -> bool {
        let (Some(tx), Some(waker)) = (&self.tx, &self.waker) else {
            return false;
        };
        tx.send(msg).is_ok() && waker.wake().is_ok()
    }

    /// The SIP thread offers a request for `offer.user`.
    pub fn offer(&mut self, offer: Offer, presence: &mut Presence, cx: &mut Cx<'_, Job>) {
        let refused = match presence.user_status(&offer.user) {
            UserStatus::Unknown => Some((404, "Not Found")),
            UserStatus::Offline => Some((480, "Temporarily Unavailable")),
            UserStatus::Online => match presence.push_event(cx, &offer.user, "sip", offer.event) {
                Pushed::Online => None,
                _ => Some((480, "Temporarily Unavailable")),
            },
        };
        if refused.is_none() {
            SipCounters::bump(&self.counters.delivered);
            let until = cx.now() + self.cfg.reply_timeout + Duration::from_secs(1);
            self.pending.insert(offer.tx.clone(), (offer.user, until));
        }
        self.to_thread(ToSip::Verdict {
            tx: offer.tx,
            refused,
        });
    }

    /// Appends the SIP counters to `/metrics` (nothing when SIP is off).
    pub fn metrics(&self, out: &mut String) {
        if self.local.is_some() {
            self.counters.write(out);
        }
    }

    /// Starts the thread if it has not started, forgets delivered
    /// transactions past their reply time, and answers `480` for those whose
    /// user went offline before answering (no point waiting for the 408).
    pub fn tick(&mut self, presence: &Presence, cx: &mut Cx<'_, Job>) {
        self.start(cx);
        let now = cx.now();
        let mut gone = Vec::new();
        self.pending.retain(|tx, (user, until)| {
            let online = presence.user_status(user) == UserStatus::Online;
            if !online && *until > now {
                gone.push(tx.clone());
            }
            online && *until > now
        });
        for tx in gone {
            let refused = Some((480, "Temporarily Unavailable"));
            self.to_thread(ToSip::Verdict { tx, refused });
        }
    }

    /// `POST /sip/reply` and `POST /sip/send`.
    pub fn handle(
        &mut self,
        req: Request,
        shared: &mut ServerState,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        if req.method != "POST" {
            return Reply::Respond(error(405, "use POST").header("Allow", "POST"));
        }
        if !origin::origin_ok(&req) {
            return Reply::Respond(error(403, "cross-origin request refused"));
        }
        let p = Params::of(&req);
        let Some(me) = caller::authenticate(&req, &p, &mut shared.sessions) else {
            return Reply::Respond(error(403, "no valid session"));
        };
        if self.tx.is_none() {
            return Reply::Respond(error(404, "SIP is off (start altsock with --sip-listen)"));
        }
        self.start(cx);
        let answer = match req.path() {
            "/sip/reply" => self.reply(&req, &p, &me),
            "/sip/send" => self.send(&req, &p, &me),
            _ => Err(error(404, "not found")),
        };
        match answer.map(|msg| self.to_thread(msg)) {
            Ok(true) => Reply::Defer,
            Ok(false) => Reply::Respond(error(503, "the SIP thread is not running")),
            Err(response) => Reply::Respond(response),
        }
    }

    fn reply(&mut self, req: &Request, p: &Params, me: &Caller) -> Result<ToSip, crate::Response> {
        let tx = p.required("tx")?;
        let status: u16 = p
            .required("status")?
            .parse()
            .ok()
            .filter(|s| (100..=699).contains(s))
            .ok_or_else(|| error(400, "status must be 100-699"))?;
        match self.pending.get(&tx) {
            Some((user, _)) if *user == me.user => {}
            _ => return Err(error(404, "no such transaction for you")),
        }
        if status >= 200 {
            self.pending.remove(&tx);
        }
        Ok(ToSip::Reply {
            tx,
            status,
            reason: p.get("reason").unwrap_or("").to_string(),
            body: body_of(p)?,
            conn: req.conn,
        })
    }

    fn send(&self, req: &Request, p: &Params, me: &Caller) -> Result<ToSip, crate::Response> {
        if me.guest {
            return Err(error(403, "guests have no SIP address"));
        }
        let to = p.required("to")?;
        let (content_type, body) =
            body_of(p)?.unwrap_or_else(|| ("text/plain;charset=UTF-8".into(), Vec::new()));
        if body.is_empty() {
            return Err(error(400, "missing field: body"));
        }
        Ok(ToSip::Send(Outgoing {
            user: me.user.clone(),
            to,
            content_type,
            body,
            conn: req.conn,
        }))
    }
}

/// The optional `body` with its `content_type` (text/plain by default).
fn body_of(p: &Params) -> Result<Option<(String, Vec<u8>)>, crate::Response> {
    let Some(body) = p.get("body") else {
        return Ok(None);
    };
    if body.len() > MAX_SIP_BODY {
        return Err(error(413, "body over 16 KiB"));
    }
    let content_type = p
        .nonempty("content_type")
        .unwrap_or_else(|| "text/plain;charset=UTF-8".into());
    if content_type.chars().any(char::is_control) || !content_type.contains('/') {
        return Err(error(400, "bad content_type"));
    }
    Ok(Some((content_type, body.as_bytes().to_vec())))
}

impl Drop for SipService {
    /// Stops the SIP thread and waits for it.
    fn drop(&mut self) {
        self.to_thread(ToSip::Stop);
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
