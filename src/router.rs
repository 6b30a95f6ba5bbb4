//! The seam between the engine and the program that embeds it. A [`Router`]
//! gets each request and answers it now ([`Reply::Respond`]), later
//! ([`Reply::Defer`], completed through [`Cx`] or a [`crate::Handle`]), or
//! holds the connection open as a stream ([`Reply::Hold`]). The router runs on
//! the engine thread, so it owns its state without locks; it must never block.

use std::time::{Duration, Instant};

use crate::engine::core::Core;
use crate::framing::{Framing, Message};
use crate::metrics::{CloseReason, MetricsSnapshot};
use crate::{ConnId, Handle, Request, Response};

/// The program's side of the engine: application state and request handling.
pub trait Router {
    /// What other threads send to the router through [`Handle::send`].
    type Msg: Send + 'static;

    /// Answers one request.
    fn request(&mut self, req: Request, cx: &mut Cx<'_, Self::Msg>) -> Reply;

    /// A connection that sent at least one request has closed, for `reason`.
    fn closed(&mut self, conn: ConnId, reason: CloseReason, cx: &mut Cx<'_, Self::Msg>) {
        let _ = (conn, reason, cx);
    }

    /// A long-poll hold on `conn` completed (answered or timed out); the
    /// connection stays open for its next request but takes no more pushes.
    fn released(&mut self, conn: ConnId, cx: &mut Cx<'_, Self::Msg>) {
        let _ = (conn, cx);
    }

    /// Called once per poll interval, after the engine's own timers.
    fn tick(&mut self, cx: &mut Cx<'_, Self::Msg>) {
        let _ = cx;
    }

    /// A message from another thread, sent with [`Handle::send`].
    fn message(&mut self, msg: Self::Msg, cx: &mut Cx<'_, Self::Msg>) {
        let _ = (msg, cx);
    }
}

/// How the router answers a request.
#[derive(Debug)]
pub enum Reply {
    /// Answer now.
    Respond(Response),
    /// Hold the connection open as a stream.
    Hold(Hold),
    /// Answer later with [`Cx::respond`], [`Cx::hold`] or the same on a [`Handle`].
    /// Pipelined requests behind this one wait.
    Defer,
}

impl From<Response> for Reply {
    fn from(response: Response) -> Self {
        Reply::Respond(response)
    }
}

impl From<Hold> for Reply {
    fn from(hold: Hold) -> Self {
        Reply::Hold(hold)
    }
}

/// A held response: its framing, head and first messages.
#[derive(Debug, Clone)]
pub struct Hold {
    /// The framing of the stream.
    pub framing: Framing,
    /// The `Content-Type` of the stream (for multipart: of each part; for
    /// long-poll: of the answer); `None` takes the framing's default.
    pub content_type: Option<String>,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// Messages sent right after the head. A long-poll hold with initial
    /// messages answers at once with their data joined, carrying the last id.
    pub initial: Vec<Message>,
    /// Long-poll only: how long to wait before answering `204`; `None` waits one
    /// keepalive interval.
    pub timeout: Option<Duration>,
}

impl Hold {
    /// A hold with `framing` and default head.
    pub fn new(framing: Framing) -> Self {
        Hold {
            framing,
            content_type: None,
            headers: Vec::new(),
            initial: Vec::new(),
            timeout: None,
        }
    }

    /// An SSE stream.
    pub fn sse() -> Self {
        Hold::new(Framing::Sse)
    }

    /// Sets the content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Queues a message to send right after the head.
    pub fn with_initial(mut self, msg: Message) -> Self {
        self.initial.push(msg);
        self
    }

    /// Sets the long-poll timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// The connection is gone (closed, or no longer in a state that takes this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

impl std::fmt::Display for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection gone")
    }
}

impl std::error::Error for Gone {}

/// The router's access to the engine while it runs on the engine thread.
pub struct Cx<'a, M> {
    pub(crate) core: &'a mut Core,
    pub(crate) handle: &'a Handle<M>,
}

impl<M: Send + 'static> Cx<'_, M> {
    /// The engine's current time (read once per loop iteration).
    pub fn now(&self) -> Instant {
        self.core.now_instant()
    }

    /// Pushes `msg` to a held connection.
    pub fn push(&mut self, conn: ConnId, msg: &Message) -> Result<(), Gone> {
        self.core.push(conn, msg)
    }

    /// Pushes `msg` to every held connection in `conns`, encoding it once per
    /// framing; returns how many took it.
    pub fn broadcast<'c>(
        &mut self,
        conns: impl IntoIterator<Item = &'c ConnId>,
        msg: &Message,
    ) -> usize {
        self.core.broadcast(conns, msg)
    }

    /// Answers a deferred request.
    pub fn respond(&mut self, conn: ConnId, response: Response) -> Result<(), Gone> {
        self.core.complete(conn, Reply::Respond(response))
    }

    /// Turns a deferred request into a held stream.
    pub fn hold(&mut self, conn: ConnId, hold: Hold) -> Result<(), Gone> {
        self.core.complete(conn, Reply::Hold(hold))
    }

    /// Closes a connection (held streams end cleanly first).
    pub fn close(&mut self, conn: ConnId) {
        self.core.close_gracefully(conn, CloseReason::Closed);
    }

    /// True while `conn` is open.
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.core.is_open(conn)
    }

    /// A handle for other threads.
    pub fn handle(&self) -> Handle<M> {
        self.handle.clone()
    }

    /// The engine's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.core.metrics.snapshot()
    }
}
