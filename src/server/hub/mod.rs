//! The notification hub: channel pub/sub (`POST /pub/CHANNEL`, `GET
//! /sub/CHANNEL` on every framing, resumable by `Last-Event-ID` or
//! `?since=`), addressed notifications of seed 003 (`POST /notify` into a
//! client's mailbox, `GET /poll` as the browser's one communication client),
//! and the browser library at `GET /altsock.js`. This file owns the service
//! and its settings; `buffer` the bounded message buffers, `topics` the
//! channel and mailbox table with subscription, replay and fan-out, `wire`
//! how messages look in each framing, `notify` the addressed notifications,
//! `handlers` the HTTP surface, `cors` cross-origin access, `altsock.js` the
//! browser library.

mod buffer;
mod cors;
mod handlers;
mod notify;
mod topics;
mod wire;

use std::time::Duration;

use super::{Job, ServerState, Service};
use crate::{CloseReason, ConnId, Cx, Reply, Request};
pub use buffer::{Buffer, Entry, Gap};
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
    /// Channels whose name starts with this need a session (default
    /// `private-`; empty: no private channels).
    pub private_prefix: String,
    /// Most channels and mailboxes at once (default 100,000); a request that
    /// would make one more gets `503`. Idle ones are evicted every tick.
    pub max_topics: usize,
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
            allow_origins: Vec::new(),
        }
    }
}

/// The hub service: its settings and its topics.
#[derive(Debug, Default)]
pub struct Hub {
    cfg: HubConfig,
    topics: Topics,
}

impl Hub {
    /// A hub with these limits.
    pub fn new(cfg: HubConfig) -> Self {
        Hub {
            cfg,
            topics: Topics::default(),
        }
    }

    /// The channels and mailboxes, for inspection.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }
}

impl Service for Hub {
    fn claims(&self, req: &Request) -> bool {
        let path = req.path();
        matches!(path, "/altsock.js" | "/notify" | "/poll" | "/hub/stats")
            || path.starts_with("/sub/")
            || path.starts_with("/pub/")
    }

    fn handle(&mut self, req: Request, shared: &mut ServerState, cx: &mut Cx<'_, Job>) -> Reply {
        handlers::handle(self, req, shared, cx)
    }

    fn closed(&mut self, conn: ConnId, _reason: CloseReason, _cx: &mut Cx<'_, Job>) {
        self.topics.unsubscribe(conn);
    }

    fn released(&mut self, conn: ConnId, _cx: &mut Cx<'_, Job>) {
        self.topics.unsubscribe(conn);
    }

    fn tick(&mut self, cx: &mut Cx<'_, Job>) {
        self.topics.expire(cx.now(), &self.cfg);
    }
}
