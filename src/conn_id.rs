//! The public names of a connection and of one request on it. A [`ConnId`] is
//! a slot in the engine's slab (the patent's socket table) plus a generation,
//! so an id kept after a close can never address the connection that later
//! reuses the slot. A [`RequestId`] adds the request's sequence number, so an
//! answer to one of several deferred, pipelined requests finds its own
//! request; [`AnswerTo`] is what the answering calls accept.

use std::fmt;

/// Identifies one connection for its whole life, and never another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    /// The slab key (the mio token of the socket).
    pub key: u32,
    /// How many connections held this slot before this one.
    pub gen: u32,
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}.{}", self.key, self.gen)
    }
}

/// Identifies one request: its connection and a sequence number that the
/// engine never hands out twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId {
    /// The connection the request arrived on.
    pub conn: ConnId,
    /// The engine-wide sequence number of the request.
    pub seq: u64,
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.conn, self.seq)
    }
}

/// Which deferred request an answer (`respond`, `hold`) is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnswerTo {
    /// The oldest unanswered deferred request on the connection. Right for a
    /// router that answers each connection's deferred requests in the order
    /// it deferred them; otherwise name the request.
    Oldest(ConnId),
    /// Exactly this request.
    Request(RequestId),
}

impl AnswerTo {
    /// The connection the answer goes to.
    pub fn conn(self) -> ConnId {
        match self {
            AnswerTo::Oldest(conn) => conn,
            AnswerTo::Request(id) => id.conn,
        }
    }
}

impl From<ConnId> for AnswerTo {
    fn from(conn: ConnId) -> Self {
        AnswerTo::Oldest(conn)
    }
}

impl From<RequestId> for AnswerTo {
    fn from(id: RequestId) -> Self {
        AnswerTo::Request(id)
    }
}

impl fmt::Display for AnswerTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerTo::Oldest(conn) => conn.fmt(f),
            AnswerTo::Request(id) => id.fmt(f),
        }
    }
}
