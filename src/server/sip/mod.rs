//! SIP (RFC 3261) for altsock: a small, strict parser over `&[u8]` and the
//! two builders the relay needs (pure code: no sockets, clocks or
//! randomness), and on top of them the SIP relay of issue 11 (seed `002`,
//! claims 45-46): SIP requests for an altsock user go down their `/jchat`
//! pipe and they answer by HTTP, with altsock as their SIP proxy.
//!
//! # Layout
//!
//! - `parse.rs`: framing ([`find_message_end`] for stream transports) and
//!   [`parse_message`], which checks the start line, every header it knows
//!   and the Content-Length framing, and refuses what RFC 4475 §3.1.2 says a
//!   parser must refuse.
//! - `message.rs`: the parsed [`Message`] and its header types ([`Via`],
//!   [`NameAddr`], [`CSeq`]), and the compact header names.
//! - `uri.rs`: [`SipUri`] (`sip:`/`sips:` with user, host, port, params) and
//!   [`Uri`] for other schemes.
//! - `build.rs`: [`ResponseBuilder`] and [`MessageRequest`].
//!
//! The relay (`--sip-listen`, docs/sip.md) sits on top:
//!
//! - `config.rs`: [`SipConfig`], the `--sip-*` flags; `counters.rs`: the
//!   `altsock_sip_*` counters of `/metrics`.
//! - `service.rs`: [`SipService`], the engine side: binds the sockets,
//!   starts the SIP thread, decides on offered requests (the `sip` event on
//!   the user's pipe, or `480`/`404`), serves `/sip/reply` and `/sip/send`.
//! - `relay.rs`: the SIP thread's loop, timers and the non-INVITE server
//!   transaction; `register.rs` and [`registrar`]: REGISTER and bindings;
//!   `client.rs`: outgoing MESSAGEs and their client transactions.
//! - `transport.rs`: the UDP socket, TCP listener and connections ([`Dest`]);
//!   `via.rs`: received/rport, response routing, transaction keys.
//!
//! No external SIP crate: the ones that exist are unmaintained, alpha, or pull
//! in an async runtime (issue 11).

mod build;
mod client;
mod config;
mod counters;
mod message;
mod parse;
mod register;
pub mod registrar;
mod relay;
mod service;
mod transport;
mod uri;
mod via;

pub use build::{MessageRequest, ResponseBuilder, MESSAGE_UDP_LIMIT};
pub use config::SipConfig;
pub use message::{compact_form_name, CSeq, Header, Message, NameAddr, Param, StartLine, Via};
pub use parse::{find_message_end, parse_message};
pub use relay::{Offer, ToSip, ALLOW, DELIVERED};
pub use service::{SipService, MAX_SIP_BODY};
pub use transport::Dest;
pub use uri::{SipUri, Uri};

use std::fmt;

/// How a message arrived, which decides its framing (RFC 3261 §18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: the datagram bounds the message. Content-Length may be absent
    /// (the body is the rest of the datagram); bytes past it are ignored.
    Datagram,
    /// TCP or TLS: Content-Length is required and bounds the body.
    Stream,
}

/// Bounds on what a peer may send; past them the message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message (start line, headers and body), in bytes.
    pub max_message_size: usize,
    /// Most header lines (a folded header counts once).
    pub max_headers: usize,
}

impl Default for Limits {
    /// 64 KiB (the largest UDP payload) and 100 header lines.
    fn default() -> Self {
        Limits {
            max_message_size: 65_535,
            max_headers: 100,
        }
    }
}

/// Why a message was refused. [`SipError::status`] gives the response a
/// server sends for it when the message was a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipError {
    /// The message (or its head plus declared body) exceeds the size limit.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// More header lines than the limit.
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// The request line or status line breaks the grammar.
    StartLine(&'static str),
    /// A SIP version other than `SIP/2.0`.
    Version,
    /// A header line or value breaks the grammar.
    Header {
        /// The header's name as received (or its full name).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header every message (or every request) must carry is absent.
    Missing(&'static str),
    /// A single-valued header appears more than once.
    Duplicate(&'static str),
    /// The CSeq method is not the request's method.
    CSeqMismatch,
    /// Content-Length is absent on a stream, malformed, or larger than the
    /// bytes that follow the head in a datagram.
    ContentLength(&'static str),
    /// What a builder was given cannot make a valid message.
    Build(&'static str),
}

impl SipError {
    /// The status a server answers a bad request with: 505 for the version,
    /// 513 for size, 400 for the rest.
    pub fn status(&self) -> u16 {
        match self {
            SipError::Version => 505,
            SipError::TooLarge { .. } => 513,
            _ => 400,
        }
    }

    pub(crate) fn header(name: &str, reason: &'static str) -> Self {
        SipError::Header {
            name: name.to_string(),
            reason,
        }
    }
}

impl fmt::Display for SipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SipError::TooLarge { limit } => write!(f, "message larger than {limit} bytes"),
            SipError::TooManyHeaders { limit } => write!(f, "more than {limit} header lines"),
            SipError::StartLine(why) => write!(f, "bad start line: {why}"),
            SipError::Version => write!(f, "SIP version not supported"),
            SipError::Header { name, reason } => write!(f, "bad {name} header: {reason}"),
            SipError::Missing(name) => write!(f, "missing {name} header"),
            SipError::Duplicate(name) => write!(f, "more than one {name} header"),
            SipError::CSeqMismatch => write!(f, "CSeq method does not match the request method"),
            SipError::ContentLength(why) => write!(f, "bad Content-Length: {why}"),
            SipError::Build(why) => write!(f, "cannot build message: {why}"),
        }
    }
}

impl std::error::Error for SipError {}
