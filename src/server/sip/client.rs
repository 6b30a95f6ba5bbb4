//! Outgoing MESSAGEs for `POST /sip/send` on the SIP thread, with the RFC
//! 3261 non-INVITE client transaction: the target is a SIP URI or the name
//! of a user whose phone registered; UDP unless the URI asks for TCP or the
//! request passes RFC 3428's 1300 bytes; timer E retransmits over UDP (T1
//! doubling to T2), timer F (64*T1) gives up with a local `408`; the final
//! response goes to the user's pipe as the event `sipresp`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::json;

use super::counters::SipCounters;
use super::relay::{http_answer, Relay, Timer};
use super::transport::Dest;
use super::via::random_token;
use super::{Message, MessageRequest, SipUri, Transport, MESSAGE_UDP_LIMIT};
use crate::server::presence::answers::{error, json};
use crate::server::{Job, ServerRouter};
use crate::ConnId;

/// A `/sip/send` request handed to the SIP thread.
pub struct Outgoing {
    /// The sending altsock user.
    pub user: String,
    /// A SIP URI, or a user name with a registered phone.
    pub to: String,
    /// The body's Content-Type.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
    /// The deferred HTTP request.
    pub conn: ConnId,
}

/// One client transaction.
pub struct ClientTx {
    id: String,
    user: String,
    to: String,
    call_id: String,
    bytes: Vec<u8>,
    dest: Dest,
    interval: Duration,
    done: bool,
}

impl Relay {
    /// Sends a MESSAGE for `out` and answers its HTTP request (`202` with
    /// the transaction id, or why not).
    pub(super) fn send_message(&mut self, out: Outgoing) {
        let conn = out.conn;
        let answer = match self.start_client(out) {
            Ok((tx, call_id, to)) => json(202, json!({ "tx": tx, "call_id": call_id, "to": to })),
            Err((status, why)) => error(status, &why),
        };
        http_answer(&self.handle, conn, answer);
    }

    fn start_client(&mut self, out: Outgoing) -> Result<(String, String, String), (u16, String)> {
        let (uri, flow) = self.resolve(&out.to)?;
        let dest = match flow {
            Some(flow) => flow,
            None => {
                let addr = lookup(&uri).ok_or((404, format!("cannot resolve {}", uri.host)))?;
                let tcp = uri
                    .param("transport")
                    .flatten()
                    .is_some_and(|t| t.eq_ignore_ascii_case("tcp"));
                if tcp {
                    Dest::Tcp(usize::MAX, addr)
                } else {
                    Dest::Udp(addr)
                }
            }
        };
        let (request, bytes, dest) = self.build_message(&out, &uri, dest)?;
        let dest = self
            .sockets
            .send(dest, &bytes)
            .map_err(|e| (502, format!("cannot send to {}: {e}", dest.addr())))?;
        let branch = format!("z9hG4bK{}", request.branch);
        let tx = ClientTx {
            id: random_token(16),
            user: out.user,
            to: uri.to_string(),
            call_id: request.call_id,
            bytes,
            dest,
            interval: self.cfg.t1,
            done: false,
        };
        let answer = (tx.id.clone(), tx.call_id.clone(), tx.to.clone());
        if dest.is_udp() {
            self.arm(self.cfg.t1, Timer::Retransmit(branch.clone()));
        }
        self.arm(self.cfg.t1 * 64, Timer::GiveUp(branch.clone()));
        self.client.insert(branch, tx);
        SipCounters::bump(&self.stats.sent);
        Ok(answer)
    }

    /// The MESSAGE for `out` to `uri` and where it goes: over TCP instead of
    /// UDP when it passes 1300 bytes (RFC 3428 §5).
    fn build_message(
        &self,
        out: &Outgoing,
        uri: &SipUri,
        mut dest: Dest,
    ) -> Result<(MessageRequest, Vec<u8>, Dest), (u16, String)> {
        let local = self.sockets.local_ip_towards(dest.addr());
        let domain = self
            .cfg
            .domain
            .clone()
            .unwrap_or_else(|| local.ip().to_string());
        let from = SipUri::parse(&format!("sip:{}@{domain}", escape_user(&out.user)))
            .ok_or((400, "the user name makes no SIP URI".to_string()))?;
        let mut request = MessageRequest {
            from,
            from_display_name: None,
            from_tag: random_token(8),
            to: uri.clone(),
            call_id: format!("{}@{}", random_token(12), local.ip()),
            cseq: 1,
            transport: if dest.is_udp() {
                Transport::Datagram
            } else {
                Transport::Stream
            },
            via_transport: dest.via_name().to_string(),
            via_sent_by: local.to_string(),
            branch: random_token(12),
            content_type: out.content_type.clone(),
            body: out.body.clone(),
        };
        let bytes = match request.build() {
            Ok(bytes) => bytes,
            Err(super::SipError::TooLarge { .. }) if dest.is_udp() => {
                dest = Dest::Tcp(usize::MAX, dest.addr());
                request.transport = Transport::Stream;
                request.via_transport = "TCP".into();
                request.build().map_err(|e| (400, e.to_string()))?
            }
            Err(e) => return Err((400, e.to_string())),
        };
        debug_assert!(!dest.is_udp() || bytes.len() <= MESSAGE_UDP_LIMIT);
        Ok((request, bytes, dest))
    }

    /// The Request-URI and, for a registered phone, the flow to reach it on.
    fn resolve(&self, to: &str) -> Result<(SipUri, Option<Dest>), (u16, String)> {
        let to = to.trim();
        let lower = to.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            let uri = SipUri::parse(to).ok_or((400, "bad SIP URI in 'to'".to_string()))?;
            if uri.secure {
                return Err((400, "sips: needs TLS, which the SIP relay has not".into()));
            }
            let ours = self
                .cfg
                .domain
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(&uri.host));
            if !ours {
                return Ok((uri, None));
            }
            let user = uri.user_decoded().unwrap_or_default();
            return self.registered(&user);
        }
        if to.is_empty() || to.contains(['@', ':', ';', ' ']) {
            return Err((400, "'to' is a SIP URI or a user name".into()));
        }
        self.registered(to)
    }

    /// The newest live binding of `user`.
    fn registered(&self, user: &str) -> Result<(SipUri, Option<Dest>), (u16, String)> {
        let now = Instant::now();
        let binding = self
            .registrar
            .lookup(user, now)
            .last()
            .map(|b| (b.contact.clone(), b.flow))
            .ok_or((404, format!("no SIP phone registered for {user}")))?;
        let uri = SipUri::parse(&binding.0).ok_or((502, "bad registered contact".to_string()))?;
        Ok((uri, Some(binding.1)))
    }

    /// A response: the client transaction it answers, by branch.
    pub(super) fn on_response(&mut self, msg: Message, raw: &[u8]) {
        let Some(branch) = msg.vias.first().and_then(|v| v.branch()) else {
            return;
        };
        let Some(tx) = self.client.get_mut(branch) else {
            log::debug!("sip: response to no transaction of ours");
            return;
        };
        let status = msg.status().unwrap_or(0);
        if tx.done || msg.cseq.method != "MESSAGE" {
            return; // a retransmitted final: already reported.
        }
        if status < 200 {
            tx.interval = self.cfg.t2;
            return;
        }
        tx.done = true;
        let reason = match &msg.start {
            super::StartLine::Response { reason, .. } => reason.clone(),
            _ => String::new(),
        };
        let event = json!({
            "tx": tx.id, "status": status, "reason": reason, "to": tx.to,
            "call_id": tx.call_id, "local": false,
            "body": String::from_utf8_lossy(&msg.body),
            "raw": String::from_utf8_lossy(raw),
        });
        let user = tx.user.clone();
        let linger = if tx.dest.is_udp() {
            self.cfg.t1 * 10
        } else {
            Duration::ZERO
        };
        let branch = branch.to_string();
        self.arm(linger, Timer::ClientDone(branch));
        self.push_sipresp(user, event);
    }

    /// Timers E, F and K.
    pub(super) fn client_timer(&mut self, timer: Timer) {
        match timer {
            Timer::Retransmit(branch) => {
                let Some(tx) = self.client.get_mut(&branch).filter(|t| !t.done) else {
                    return;
                };
                let (dest, bytes) = (tx.dest, tx.bytes.clone());
                tx.interval = (tx.interval * 2).min(self.cfg.t2);
                let next = tx.interval;
                let _ = self.sockets.send(dest, &bytes);
                self.arm(next, Timer::Retransmit(branch));
            }
            Timer::GiveUp(branch) => {
                let Some(tx) = self.client.get_mut(&branch).filter(|t| !t.done) else {
                    return;
                };
                tx.done = true;
                let event = json!({
                    "tx": tx.id, "status": 408, "reason": "Request Timeout", "to": tx.to,
                    "call_id": tx.call_id, "local": true,
                });
                let user = tx.user.clone();
                self.client.remove(&branch);
                SipCounters::bump(&self.stats.send_timeouts);
                self.push_sipresp(user, event);
            }
            Timer::ClientDone(branch) => {
                self.client.remove(&branch);
            }
            _ => {}
        }
    }

    /// Pushes `sipresp` to `user`'s pipe (queued if they are offline).
    fn push_sipresp(&self, user: String, event: serde_json::Value) {
        self.handle
            .send(Job::new(move |router: &mut ServerRouter, cx| {
                router.presence.push_event(cx, &user, "sipresp", event);
            }));
    }
}

/// The address of a SIP URI: its host and port (5060 by default). Names are
/// resolved by the system resolver on the SIP thread (no SRV/NAPTR).
fn lookup(uri: &SipUri) -> Option<SocketAddr> {
    let host = uri.host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port.unwrap_or(5060);
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    (host, port).to_socket_addrs().ok()?.next()
}

/// A user name in the user part of a SIP URI (unreserved and `-_.!~*'()`
/// kept, the rest `%HH`).
fn escape_user(user: &str) -> String {
    let mut out = String::new();
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
