//! The notification hub: channel pub/sub (`POST /pub/CHANNEL`, `GET
//! /sub/CHANNEL` on every framing, resumable by `Last-Event-ID` or
//! `?since=`), addressed notifications of seed 003 (`POST /notify` into a
//! hub client's mailbox, `GET /poll` as the browser's one communication
//! client), and the browser library at `GET /altsock.js`.
//!
//! Words: a *hub client* is one browser's communication client, named by a
//! client id; its *mailbox* is the topic holding the notifications addressed
//! to it (a channel is the other kind of topic). Only the holder of the
//! client's *mailbox key* reads the mailbox. (The presence server's per-user
//! event queue is another thing.)
//!
//! This file owns the service and its settings; `buffer` the bounded
//! message buffers, `topics` the channel and mailbox table with
//! subscription, replay and fan-out, `makers` the caps on topics strangers
//! make, `wire` how messages look in each framing, `notify` the addressed
//! notifications, `access` who may follow private channels, `secret` the
//! server secret with the mailbox keys and subscription tokens made from it,
//! `grants` the endpoints that hand those out, `handlers` the HTTP surface,
//! `cors` cross-origin access, `altsock.js` the browser library.

mod access;
mod buffer;
mod cors;
mod grants;
mod handlers;
mod makers;
mod notify;
mod secret;
mod topics;
pub(crate) mod wire;

use std::collections::HashMap;
use std::time::Duration;

use super::{Job, ServerState, Service};
use crate::{CloseReason, ConnId, Cx, Reply, Request};
pub use access::{Access, Asker, Groups, NoGroups};
pub use buffer::{Body, Buffer, Entry, Gap};
pub use grants::{parse_auth_request, parse_client_request, AuthRequest, ClientRequest};
pub use makers::{Full, Maker};
pub use notify::{parse_notify, Notification};
pub use secret::{parse_claims, parse_token_header, same_secret, Claims, HubSecret, TokenError};
pub use topics::{Counts, Start, TopicKey, Topics};

/// The hub's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Most messages a channel or mailbox buffers (default 100).
    pub buffer_len: usize,
    /// Oldest a buffered message may get (default 10 minutes).
    pub buffer_age: Duration,
    /// Largest message body in bytes (default 64 KiB); more gets `413`.
    pub max_message: usize,
    /// Longest channel name, client id or app name in bytes (default 255).
    pub max_name: usize,
    /// How long a long-poll waits before answering `204` (default 30 s).
    pub longpoll_timeout: Duration,
    /// Channels whose name starts with this are private (default
    /// `private-`; empty: no private channels): only their owner's session,
    /// a member's, or a subscription token may follow them.
    pub private_prefix: String,
    /// Most channels and mailboxes at once (default 100,000): a stranger's
    /// request that would make one more gets `503`; publishers may make up
    /// to twice as many. Idle ones are evicted every tick.
    pub max_topics: usize,
    /// Most topics one connection of a stranger may have made at once
    /// (default 32); more gets `429`.
    pub max_topics_per_conn: usize,
    /// Most topics one client address (IPv6: one /64) of strangers may have
    /// made at once (default 1,000); more gets `429`.
    pub max_topics_per_addr: usize,
    /// The server secret that signs mailbox keys and subscription tokens;
    /// `None`: a random one at start, so keys and tokens do not survive a
    /// restart.
    pub secret: Option<HubSecret>,
    /// Page origins allowed to use the hub across origins (`*`: any); none
    /// by default.
    pub allow_origins: Vec<String>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            buffer_len: 100,
            buffer_age: Duration::from_secs(600),
            max_message: 64 * 1024,
            max_name: 255,
            longpoll_timeout: Duration::from_secs(30),
            private_prefix: "private-".into(),
            max_topics: 100_000,
            max_topics_per_conn: 32,
            max_topics_per_addr: 1_000,
            secret: None,
            allow_origins: Vec::new(),
        }
    }
}

/// The hub service: its settings, its secret and its topics.
#[derive(Debug)]
pub struct Hub {
    cfg: HubConfig,
    secret: HubSecret,
    topics: Topics,
    /// Held streams that follow a private channel by a token, and when the
    /// earliest such token expires (Unix seconds): the tick closes them then.
    token_holds: HashMap<ConnId, u64>,
}

impl Hub {
    /// A hub with these limits, signing with the configured secret or, when
    /// there is none, with 32 random bytes from the OS.
    pub fn new(cfg: HubConfig) -> std::io::Result<Self> {
        let secret = match &cfg.secret {
            Some(secret) => secret.clone(),
            None => {
                log::warn!(
                    "hub: no --hub-secret given, using a random one: mailbox keys and \
                     subscription tokens will not survive a restart"
                );
                HubSecret::random()?
            }
        };
        Ok(Hub {
            cfg,
            secret,
            topics: Topics::default(),
            token_holds: HashMap::new(),
        })
    }

    /// `conn` now holds a stream that may last until `until` (`None`: no
    /// token needed, as long as it stays).
    fn held_until(&mut self, conn: ConnId, until: Option<u64>) {
        match until {
            Some(exp) => self.token_holds.insert(conn, exp),
            None => self.token_holds.remove(&conn),
        };
    }

    /// Closes the streams whose tokens have expired by `now` (Unix seconds):
    /// the client reconnects, and needs a fresh token to follow again.
    fn close_expired(&mut self, now: u64, cx: &mut Cx<'_, Job>) {
        if self.token_holds.is_empty() {
            return;
        }
        let topics = &self.topics;
        let mut expired = Vec::new();
        self.token_holds.retain(|conn, exp| {
            let keep = *exp > now && topics.is_subscribed(*conn);
            if !keep && topics.is_subscribed(*conn) {
                expired.push(*conn);
            }
            keep
        });
        for conn in expired {
            log::debug!("{conn}: hub: subscription token expired, stream closed");
            cx.close(conn);
        }
    }

    /// The channels and mailboxes, for inspection.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The server secret (the live-assist service derives visitor secrets
    /// from it).
    pub fn secret(&self) -> &HubSecret {
        &self.secret
    }

    /// Delivers `data` into `client`'s mailbox for `app`, as `POST /notify`
    /// does (the live-assist service's events to its visitors); returns
    /// the message id and how many connections took it.
    pub fn deliver(
        &mut self,
        client: String,
        app: String,
        data: Box<serde_json::value::RawValue>,
        cx: &mut Cx<'_, Job>,
    ) -> (u64, usize) {
        let body = Body::Notification { app, data };
        self.topics
            .publish(TopicKey::Mailbox(client), body, &self.cfg, cx)
    }

    /// True while some connection follows `client`'s mailbox.
    pub fn mailbox_followed(&self, client: &str) -> bool {
        self.topics
            .subscribers(&TopicKey::Mailbox(client.to_string()))
            > 0
    }

    /// Answers a request [`Service::claims`] took, asking `groups` who
    /// belongs to which group (the server passes the presence server).
    pub fn handle_with_groups(
        &mut self,
        req: Request,
        shared: &mut ServerState,
        groups: &dyn Groups,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        handlers::handle(self, req, shared, groups, cx)
    }
}

impl Service for Hub {
    fn claims(&self, req: &Request) -> bool {
        let path = req.path();
        matches!(
            path,
            "/altsock.js" | "/notify" | "/poll" | "/hub/stats" | "/hub/client" | "/hub/auth"
        ) || path.starts_with("/sub/")
            || path.starts_with("/pub/")
    }

    /// Without the presence server no one is a member of any group.
    fn handle(&mut self, req: Request, shared: &mut ServerState, cx: &mut Cx<'_, Job>) -> Reply {
        handlers::handle(self, req, shared, &NoGroups, cx)
    }

    fn closed(&mut self, conn: ConnId, _reason: CloseReason, _cx: &mut Cx<'_, Job>) {
        self.topics.closed(conn);
        self.token_holds.remove(&conn);
    }

    fn released(&mut self, conn: ConnId, _cx: &mut Cx<'_, Job>) {
        self.topics.unsubscribe(conn);
        self.token_holds.remove(&conn);
    }

    fn tick(&mut self, cx: &mut Cx<'_, Job>) {
        self.topics.expire(cx.now(), &self.cfg);
        self.close_expired(handlers::unix_now(), cx);
    }
}
