//! The SIP thread: its loop over the UDP socket, the TCP connections and the
//! engine's queue ([`ToSip`]), its timers, and the RFC 3261 non-INVITE
//! server transaction: a new request is answered at once (OPTIONS to the
//! server, REGISTER, errors) or offered to the engine, which pushes it down
//! the user's pipe; retransmissions are absorbed (the last response is sent
//! again for them); the final response is kept for timer J (64*T1 over UDP).
//! The engine loop is never blocked: requests go to it as [`Job`]s through
//! the Handle, answers come back over a channel and the thread's waker.
//! Outgoing MESSAGEs (`/sip/send`, client transactions) are in `client.rs`,
//! REGISTER in `register.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Events;
use serde_json::json;

use super::client::{ClientTx, Outgoing};
use super::config::SipConfig;
use super::counters::SipCounters;
use super::registrar::Registrar;
use super::transport::{Dest, Sockets, LISTENER, UDP, WAKER};
use super::via::{random_token, reason_phrase, response_dest, stamp_received, transaction_key};
use super::{parse_message, Limits, Message, ResponseBuilder, Transport, MESSAGE_UDP_LIMIT};
use crate::server::presence::answers::{error, json};
use crate::server::{Job, ServerRouter};
use crate::{ConnId, Handle, Response};

/// Methods delivered to an online user's pipe.
pub const DELIVERED: [&str; 4] = ["MESSAGE", "OPTIONS", "INFO", "NOTIFY"];

/// Most server transactions alive at once; past it new requests get a
/// stateless `503` with `Retry-After` (a flood of distinct requests cannot
/// grow the table without bound; each lives up to 64*T1).
pub const MAX_TRANSACTIONS: usize = 100_000;

/// The `Allow` header of altsock's answers.
pub const ALLOW: &str = "MESSAGE, OPTIONS, INFO, NOTIFY, REGISTER, CANCEL, ACK";

/// Work the engine hands the SIP thread.
pub enum ToSip {
    /// The engine's decision on an offered request.
    Verdict {
        /// The transaction id.
        tx: String,
        /// Delivered (wait for the user's reply), or answer now.
        refused: Option<(u16, &'static str)>,
    },
    /// `POST /sip/reply`: answer transaction `tx`; the HTTP answer goes to `conn`.
    Reply {
        /// The transaction id.
        tx: String,
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
        /// An optional body with its Content-Type.
        body: Option<(String, Vec<u8>)>,
        /// The deferred `/sip/reply` request.
        conn: ConnId,
    },
    /// `POST /sip/send`.
    Send(Outgoing),
    /// Stop the thread.
    Stop,
}

/// A request offered to the engine for delivery to a user's pipe.
pub struct Offer {
    /// The transaction id (opaque, random).
    pub tx: String,
    /// The Request-URI user.
    pub user: String,
    /// The `sip` event's JSON.
    pub event: serde_json::Value,
}

/// One server transaction.
struct ServerTx {
    id: String,
    request: Message,
    dest: Dest,
    to_tag: String,
    /// The last response sent (resent for retransmissions).
    last: Option<Vec<u8>>,
    finished: bool,
}

/// A timer of the SIP thread (stale ones are ignored when they ring).
#[derive(Debug, Clone)]
pub enum Timer {
    /// The user did not reply in time: answer `408`.
    ReplyDue(String),
    /// Timer J (or its TCP zero): forget a completed server transaction.
    ServerDone(String),
    /// Timer E: retransmit a client request over UDP.
    Retransmit(String),
    /// Timer F: give a client transaction up.
    GiveUp(String),
    /// Timer K: forget a completed client transaction.
    ClientDone(String),
    /// Forget lapsed registrations.
    Prune,
}

/// The SIP thread's state.
pub struct Relay {
    pub(super) cfg: SipConfig,
    pub(super) sockets: Sockets,
    rx: Receiver<ToSip>,
    pub(super) handle: Handle<Job>,
    server: HashMap<String, ServerTx>,
    server_ids: HashMap<String, String>,
    pub(super) client: HashMap<String, ClientTx>,
    timers: BTreeMap<(Instant, u64), Timer>,
    timer_seq: u64,
    pub(super) registrar: Registrar,
    pub(super) stats: Arc<SipCounters>,
    limits: Limits,
}

impl Relay {
    /// The thread's state over bound sockets.
    pub fn new(
        cfg: SipConfig,
        sockets: Sockets,
        rx: Receiver<ToSip>,
        handle: Handle<Job>,
        stats: Arc<SipCounters>,
    ) -> Self {
        Relay {
            cfg,
            sockets,
            rx,
            handle,
            server: HashMap::new(),
            server_ids: HashMap::new(),
            client: HashMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            registrar: Registrar::default(),
            stats,
            limits: Limits::default(),
        }
    }

    /// Runs until the engine side says stop (or goes away).
    pub fn run(mut self) {
        log::info!("sip: listening on udp and tcp {}", self.sockets.local);
        self.arm(Duration::from_secs(30), Timer::Prune);
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.next_timeout();
            if let Err(e) = self.sockets.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("sip: poll: {e}");
                    return;
                }
            }
            for event in events.iter() {
                match event.token() {
                    UDP => self.read_udp(),
                    LISTENER => self.sockets.accept(),
                    WAKER => {}
                    token => self.on_tcp(token, event.is_readable(), event.is_writable()),
                }
            }
            if !self.drain_engine() {
                break;
            }
            self.run_timers();
        }
        log::info!("sip: stopped");
    }

    /// How long the poll may sleep: until the next timer.
    fn next_timeout(&self) -> Duration {
        self.timers
            .keys()
            .next()
            .map_or(Duration::from_secs(1), |(at, _)| {
                at.saturating_duration_since(Instant::now())
            })
    }

    /// Sets a timer `after` from now.
    pub(super) fn arm(&mut self, after: Duration, timer: Timer) {
        self.timer_seq += 1;
        self.timers
            .insert((Instant::now() + after, self.timer_seq), timer);
    }

    fn run_timers(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            match timer {
                Timer::ReplyDue(key) => {
                    if self.respond(&key, 408, "Request Timeout", None).is_ok() {
                        SipCounters::bump(&self.stats.reply_timeouts);
                    }
                }
                Timer::ServerDone(key) => self.forget(&key),
                Timer::Prune => {
                    self.registrar.prune(now);
                    self.count_bindings();
                    self.arm(Duration::from_secs(30), Timer::Prune);
                }
                other => self.client_timer(other),
            }
        }
    }

    /// Carries out what the engine queued; false when told to stop.
    fn drain_engine(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(ToSip::Verdict { tx, refused }) => self.verdict(&tx, refused),
                Ok(ToSip::Reply {
                    tx,
                    status,
                    reason,
                    body,
                    conn,
                }) => self.user_reply(&tx, status, &reason, body, conn),
                Ok(ToSip::Send(out)) => self.send_message(out),
                Ok(ToSip::Stop) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn read_udp(&mut self) {
        for (bytes, from) in self.sockets.read_udp() {
            self.on_bytes(&bytes, Dest::Udp(from), Transport::Datagram);
        }
    }

    fn on_tcp(&mut self, token: mio::Token, readable: bool, writable: bool) {
        let Some(key) = Sockets::conn_key(token) else {
            return;
        };
        if writable && !self.sockets.flush_tcp(key) {
            self.sockets.close(key);
            return;
        }
        if !readable {
            return;
        }
        let Some(peer) = self.sockets.peer(key) else {
            return;
        };
        let read = self.sockets.read_tcp(key);
        for message in read.messages {
            self.on_bytes(&message, Dest::Tcp(key, peer), Transport::Stream);
        }
        if let Some(rest) = read.broken {
            if !rest.is_empty() {
                self.on_bytes(&rest, Dest::Tcp(key, peer), Transport::Stream);
            }
            self.sockets.close(key);
        }
    }

    /// One message from `source`.
    fn on_bytes(&mut self, bytes: &[u8], source: Dest, transport: Transport) {
        if bytes.iter().all(|&b| b == b'\r' || b == b'\n') {
            return; // a keepalive
        }
        let mut msg = match parse_message(bytes, transport, &self.limits) {
            Ok(msg) => msg,
            Err(e) => {
                SipCounters::bump(&self.stats.malformed);
                log::debug!("sip: malformed message from {}: {e}", source.addr());
                if let Some(answer) = answer_malformed(bytes, e.status(), &e.to_string()) {
                    let _ = self.sockets.send(source, &answer);
                }
                return;
            }
        };
        if msg.method().is_none() {
            self.on_response(msg, bytes);
            return;
        }
        stamp_received(&mut msg, source.addr());
        self.on_request(msg, bytes, source);
    }

    /// A request: a retransmission of a known transaction, or a new one.
    fn on_request(&mut self, msg: Message, raw: &[u8], source: Dest) {
        if msg.method() == Some("ACK") {
            return; // ACKs of the non-2xx finals altsock sent end there.
        }
        let key = transaction_key(&msg);
        if let Some(tx) = self.server.get(&key) {
            SipCounters::bump(&self.stats.absorbed);
            if let Some(last) = tx.last.clone() {
                let _ = self.sockets.send(tx.dest, &last);
            }
            return;
        }
        if self.server.len() >= MAX_TRANSACTIONS {
            let busy = ResponseBuilder::new(&msg, 503, "Service Unavailable")
                .to_tag(&random_token(8))
                .header("Retry-After", "5")
                .build();
            if let Ok(bytes) = busy {
                let _ = self.sockets.send(response_dest(&msg, source), &bytes);
            }
            return;
        }
        SipCounters::bump(&self.stats.requests);
        let tx = ServerTx {
            id: random_token(16),
            dest: response_dest(&msg, source),
            request: msg,
            to_tag: random_token(8),
            last: None,
            finished: false,
        };
        self.server_ids.insert(tx.id.clone(), key.clone());
        self.server.insert(key.clone(), tx);
        self.dispatch(&key, raw, source);
    }

    /// Decides what a new request gets.
    fn dispatch(&mut self, key: &str, raw: &[u8], source: Dest) {
        let Some(tx) = self.server.get(key) else {
            return;
        };
        let msg = &tx.request;
        let method = msg.method().unwrap_or("").to_string();
        let user = msg
            .request_uri()
            .and_then(|u| u.as_sip())
            .and_then(|u| u.user_decoded());
        let answer: Option<(u16, &'static str)> =
            if msg.request_uri().and_then(|u| u.as_sip()).is_none() {
                Some((416, "Unsupported URI Scheme"))
            } else if method == "CANCEL" {
                Some(self.cancel_answer(key))
            } else if msg.max_forwards == Some(0) && !(method == "OPTIONS" && user.is_none()) {
                Some((483, "Too Many Hops"))
            } else if method == "REGISTER" {
                self.register(key, source);
                return;
            } else if method == "MESSAGE" && source.is_udp() && raw.len() > MESSAGE_UDP_LIMIT {
                Some((513, "Message Too Large"))
            } else if method == "OPTIONS" && user.is_none() {
                let _ = self.respond_with(
                    key,
                    200,
                    "OK",
                    None,
                    &[
                        ("Allow", ALLOW),
                        ("Accept", "text/plain, application/json, */*"),
                    ],
                );
                return;
            } else if !DELIVERED.contains(&method.as_str()) {
                let _ =
                    self.respond_with(key, 405, "Method Not Allowed", None, &[("Allow", ALLOW)]);
                return;
            } else if user.is_none() {
                Some((404, "Not Found"))
            } else {
                None
            };
        match (answer, user) {
            (Some((status, reason)), _) => {
                let _ = self.respond(key, status, reason, None);
            }
            (None, Some(user)) => self.offer(key, user, raw, source),
            (None, None) => {}
        }
    }

    /// CANCEL of a non-INVITE request has no effect (RFC 3261 §9.2): `200`
    /// when the transaction exists, else `481`.
    fn cancel_answer(&self, key: &str) -> (u16, &'static str) {
        let cancelled = key.replacen("|CANCEL", "|", 1);
        let found = self
            .server
            .keys()
            .any(|k| k != key && k.starts_with(cancelled.trim_end_matches('|')));
        if found {
            (200, "OK")
        } else {
            (481, "Call/Transaction Does Not Exist")
        }
    }

    /// Hands a request to the engine for the user's pipe; the reply timer
    /// starts now.
    fn offer(&mut self, key: &str, user: String, raw: &[u8], source: Dest) {
        let Some(tx) = self.server.get(key) else {
            return;
        };
        let event = sip_event(&tx.id, &tx.request, raw, source);
        let offer = Offer {
            tx: tx.id.clone(),
            user,
            event,
        };
        let timeout = self.cfg.reply_timeout;
        self.arm(timeout, Timer::ReplyDue(key.to_string()));
        let sent = self
            .handle
            .send(Job::new(move |router: &mut ServerRouter, cx| {
                router.sip.offer(offer, &mut router.presence, cx);
            }));
        if !sent {
            let _ = self.respond(key, 503, "Service Unavailable", None);
        }
    }

    fn verdict(&mut self, tx: &str, refused: Option<(u16, &'static str)>) {
        let (Some((status, reason)), Some(key)) = (refused, self.server_ids.get(tx).cloned())
        else {
            return;
        };
        let _ = self.respond(&key, status, reason, None);
    }

    /// `/sip/reply`: answers the transaction and the HTTP request.
    fn user_reply(
        &mut self,
        tx: &str,
        status: u16,
        reason: &str,
        body: Option<(String, Vec<u8>)>,
        conn: ConnId,
    ) {
        let answer = match self.server_ids.get(tx).cloned() {
            None => error(
                404,
                "no such transaction (answered and forgotten, or never)",
            ),
            Some(key) => match self.respond(&key, status, reason, body.as_ref()) {
                Ok(()) => {
                    if status >= 200 {
                        SipCounters::bump(&self.stats.user_finals);
                    }
                    json(200, json!({ "tx": tx, "sent": status }))
                }
                Err(why) => error(409, why),
            },
        };
        let _ = self.handle.respond(conn, answer);
    }

    /// Sends a response in transaction `key`.
    pub(super) fn respond(
        &mut self,
        key: &str,
        status: u16,
        reason: &str,
        body: Option<&(String, Vec<u8>)>,
    ) -> Result<(), &'static str> {
        self.respond_with(key, status, reason, body, &[])
    }

    /// Sends a response with extra headers; a final one completes the
    /// transaction (kept 64*T1 over UDP to absorb retransmissions).
    pub(super) fn respond_with(
        &mut self,
        key: &str,
        status: u16,
        reason: &str,
        body: Option<&(String, Vec<u8>)>,
        headers: &[(&str, &str)],
    ) -> Result<(), &'static str> {
        let Some(tx) = self.server.get_mut(key) else {
            return Err("no such transaction");
        };
        if tx.finished {
            return Err("the transaction was already answered (or timed out with 408)");
        }
        let reason = if reason.trim().is_empty() {
            reason_phrase(status)
        } else {
            reason
        };
        let mut builder = ResponseBuilder::new(&tx.request, status, reason)
            .to_tag(&tx.to_tag)
            .header("Server", "altsock");
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        if let Some((content_type, bytes)) = body {
            builder = builder.body(content_type, bytes);
        }
        let bytes = builder.build().map_err(|_| "cannot build that response")?;
        if let Err(e) = self.sockets.send(tx.dest, &bytes) {
            log::debug!("sip: response to {}: {e}", tx.dest.addr());
        }
        tx.last = Some(bytes);
        if status >= 200 {
            tx.finished = true;
            let linger = if tx.dest.is_udp() {
                self.cfg.t1 * 64
            } else {
                Duration::ZERO
            };
            self.arm(linger, Timer::ServerDone(key.to_string()));
        }
        Ok(())
    }

    fn forget(&mut self, key: &str) {
        if let Some(tx) = self.server.remove(key) {
            self.server_ids.remove(&tx.id);
        }
    }

    /// The parsed request of transaction `key`.
    pub(super) fn request_of(&self, key: &str) -> Option<&Message> {
        self.server.get(key).map(|tx| &tx.request)
    }
}

/// The `sip` event: `tx`, `method`, `from`, `to`, `call_id`,
/// `content_type`, `body` (text; `body_base64` when not UTF-8), `raw`.
fn sip_event(tx: &str, msg: &Message, raw: &[u8], source: Dest) -> serde_json::Value {
    use base64::Engine as _;
    let mut event = json!({
        "tx": tx,
        "method": msg.method(),
        "from": msg.from.uri.to_string(),
        "from_name": msg.from.display_name,
        "to": msg.to.uri.to_string(),
        "call_id": msg.call_id,
        "cseq": msg.cseq.number,
        "content_type": msg.content_type(),
        "transport": source.via_name(),
        "source": source.addr().to_string(),
        "raw": String::from_utf8_lossy(raw),
    });
    match std::str::from_utf8(&msg.body) {
        Ok(text) => event["body"] = json!(text),
        Err(_) => {
            event["body"] = json!(null);
            event["body_base64"] =
                json!(base64::engine::general_purpose::STANDARD.encode(&msg.body));
        }
    }
    event
}

/// A `400` (or `505`, `513`) to a request that did not parse, built from
/// its raw Via, From, To, Call-ID and CSeq lines (RFC 3261 §8.2); `None`
/// when it was not a request or too little of it is readable.
fn answer_malformed(bytes: &[u8], status: u16, why: &str) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n").skip_while(|l| l.is_empty());
    let first = lines.next()?;
    if first.starts_with("SIP/") || !first.ends_with("SIP/2.0") && status != 505 {
        return None;
    }
    let wanted = [
        ("Via", "v"),
        ("From", "f"),
        ("To", "t"),
        ("Call-ID", "i"),
        ("CSeq", ""),
    ];
    let mut head = format!("SIP/2.0 {status} {}\r\n", reason_phrase(status));
    let mut seen = [false; 5];
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if let Some(i) = wanted
            .iter()
            .position(|(full, short)| name.eq_ignore_ascii_case(full) || name == *short)
        {
            seen[i] = true;
            head.push_str(&format!("{}: {}\r\n", wanted[i].0, value.trim()));
        }
    }
    if !seen.iter().all(|&s| s) || why.contains(['\r', '\n']) {
        return None;
    }
    head.push_str(&format!(
        "Warning: 399 altsock \"{}\"\r\n",
        why.replace('"', "'")
    ));
    head.push_str("Content-Length: 0\r\n\r\n");
    Some(head.into_bytes())
}

/// An HTTP answer for the engine to send on a deferred request.
pub(super) fn http_answer(handle: &Handle<Job>, conn: ConnId, response: Response) {
    let _ = handle.respond(conn, response);
}
