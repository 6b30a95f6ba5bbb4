//! What a router answers and what the engine answers back: [`Reply`] (respond
//! now, defer, or hold), the [`Hold`] that describes a held stream, and
//! [`Gone`], the error of every call on a connection that no longer takes it.
//! A leaf: plain data over `framing` and `http`, so the engine core and the
//! router seam both use it without importing each other.

use std::time::Duration;

use crate::framing::{Framing, Message};
use crate::Response;

/// How the router answers a request.
#[derive(Debug)]
pub enum Reply {
    /// Answer now.
    Respond(Response),
    /// Hold the connection open as a stream.
    Hold(Hold),
    /// Answer later with [`crate::Cx::respond`], [`crate::Cx::hold`] or the
    /// same on a [`crate::Handle`], naming the request by
    /// [`crate::Request::id`]. The request's effect is not yet visible, so
    /// requests pipelined behind it wait, unparsed, until it is answered
    /// (RFC 9112 §9.3.2: unsafe requests are processed in order).
    Defer,
    /// Answer later, as [`Reply::Defer`], but the router has already applied
    /// the request's effect to its own state and only the answer waits (e.g.
    /// for the commit of a write the router already counts). Requests
    /// pipelined behind it are parsed and dispatched meanwhile, up to the
    /// engine's `pipeline_depth`; their answers are written after this one,
    /// strictly in request order.
    DeferPipelined,
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

    /// Accepts a WebSocket upgrade judged by [`crate::ws::check_upgrade`]:
    /// the engine answers `101 Switching Protocols` with the accept key (and
    /// the chosen subprotocol), then the connection is held in the WebSocket
    /// phase. Pushes and broadcasts reach it as one frame per message; what
    /// the client sends reaches [`crate::Router::ws_message`]. Extra headers
    /// go into the `101`; initial messages follow it as frames.
    #[cfg(feature = "websocket")]
    pub fn websocket(accepted: crate::ws::Accepted) -> Self {
        let mut hold =
            Hold::new(Framing::WebSocket).with_header("Sec-WebSocket-Accept", accepted.accept);
        if let Some(protocol) = accepted.protocol {
            hold = hold.with_header("Sec-WebSocket-Protocol", protocol);
        }
        hold
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
