//! The seam between the engine and the program that embeds it. A [`Router`]
//! gets each request and answers it now ([`Reply::Respond`]), later
//! ([`Reply::Defer`] or [`Reply::DeferPipelined`], completed through [`Cx`]
//! or a [`crate::Handle`] naming the request by [`Request::id`]), or holds
//! the connection open as a stream ([`Reply::Hold`]). The router runs on
//! the engine thread, so it owns its state without locks; it must never block.

use std::time::Instant;

use crate::engine::core::Core;
use crate::framing::Message;
use crate::metrics::{CloseReason, MetricsSnapshot};
pub use crate::reply::{Gone, Hold, Reply};
use crate::ws::{CloseCode, WsMessage};
use crate::{AnswerTo, ConnId, Handle, Request, Response};

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

    /// A WebSocket client (a connection held with [`Hold::websocket`]) sent
    /// a whole text or binary message. Pings, pongs and the close handshake
    /// are the engine's. The default ignores the message.
    fn ws_message(&mut self, conn: ConnId, msg: WsMessage, cx: &mut Cx<'_, Self::Msg>) {
        let _ = (conn, msg, cx);
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

    /// Answers a deferred request: `to` is its [`crate::RequestId`] (from
    /// [`Request::id`]), or a [`ConnId`] for the connection's oldest
    /// unanswered one. Answers are written in request order.
    pub fn respond(&mut self, to: impl Into<AnswerTo>, response: Response) -> Result<(), Gone> {
        self.core.complete(to.into(), Reply::Respond(response))
    }

    /// Turns a deferred request (named as for [`Cx::respond`]) into a held
    /// stream, in its turn; answers owed behind a stream are dropped.
    pub fn hold(&mut self, to: impl Into<AnswerTo>, hold: Hold) -> Result<(), Gone> {
        self.core.complete(to.into(), Reply::Hold(hold))
    }

    /// Closes a connection (held streams end cleanly first).
    pub fn close(&mut self, conn: ConnId) {
        self.core.close_gracefully(conn, CloseReason::Closed);
    }

    /// Sends one WebSocket message to `conn` as the frame type given (where
    /// [`Cx::push`] picks text or binary by whether the data is UTF-8).
    pub fn ws_send(&mut self, conn: ConnId, msg: &WsMessage) -> Result<(), Gone> {
        self.core.ws_send(conn, msg)
    }

    /// Closes a WebSocket connection with `code` and `reason` in its close
    /// frame (e.g. 1008 for a message against policy; a code no endpoint
    /// may send, such as 1005, goes out as 1011); other connections close
    /// as with [`Cx::close`].
    pub fn ws_close(&mut self, conn: ConnId, code: CloseCode, reason: &str) {
        self.core.ws_close(conn, code, reason);
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
