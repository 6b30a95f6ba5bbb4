//! The opening handshake (RFC 6455 4.2), judged on a request the HTTP parser
//! already parsed: whether it asks for a WebSocket, whether it asks rightly,
//! and the answer, either the `101 Switching Protocols` head with its
//! `Sec-WebSocket-Accept` (and the chosen subprotocol) or a refusal (`400`,
//! or `426` for a version other than 13) carrying `Sec-WebSocket-Version: 13`.
//! SHA-1 and base64 come from the RustCrypto `sha1` and the `base64` crates.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::http::response::{write_header, write_status_line};
use crate::http::{Request, Response};

/// The GUID RFC 6455 appends to the client's key.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version spoken.
pub const VERSION: &str = "13";

/// The verdict on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// The request does not ask for a WebSocket (no `Upgrade: websocket`):
    /// serve it as plain HTTP.
    NotWebSocket,
    /// A valid upgrade: write [`Accepted::write_head`], then speak frames.
    Accept(Accepted),
    /// An upgrade asked wrongly: answer with this response and close.
    Refuse(Response),
}

/// An accepted upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The `Sec-WebSocket-Accept` value.
    pub accept: String,
    /// The subprotocol chosen from the server's list, if the client offered
    /// one of them.
    pub protocol: Option<String>,
}

impl Accepted {
    /// Appends the whole `101 Switching Protocols` head. It is written as
    /// is: no `Content-Length`, and `Connection: Upgrade`, not keep-alive.
    pub fn write_head(&self, out: &mut Vec<u8>) {
        write_status_line(out, 101);
        write_header(out, "Upgrade", "websocket");
        write_header(out, "Connection", "Upgrade");
        write_header(out, "Sec-WebSocket-Accept", &self.accept);
        if let Some(protocol) = &self.protocol {
            write_header(out, "Sec-WebSocket-Protocol", protocol);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Judges `req`. `protocols` are the subprotocols the server speaks, in its
/// order of preference; the first one the client offered is chosen. A client
/// offering only others still gets a WebSocket, with no subprotocol (RFC
/// 6455 4.2.2 leaves the choice to close to the client).
pub fn check_upgrade(req: &Request, protocols: &[&str]) -> Upgrade {
    if !req.header_has("upgrade", "websocket") {
        return Upgrade::NotWebSocket;
    }
    match accept(req, protocols) {
        Ok(accepted) => Upgrade::Accept(accepted),
        Err(response) => Upgrade::Refuse(response),
    }
}

/// The checks of RFC 6455 4.2.1, in order: the request line, `Connection`,
/// the version (426), the key.
fn accept(req: &Request, protocols: &[&str]) -> Result<Accepted, Response> {
    if req.method != "GET" {
        return Err(refusal(400, "a WebSocket upgrade must be a GET"));
    }
    if req.minor_version < 1 {
        return Err(refusal(400, "a WebSocket upgrade needs HTTP/1.1"));
    }
    if !req.header_has("connection", "upgrade") {
        return Err(refusal(
            400,
            "a WebSocket upgrade needs Connection: Upgrade",
        ));
    }
    if req.header("sec-websocket-version").map(str::trim) != Some(VERSION) {
        return Err(refusal(426, "only WebSocket version 13 is spoken"));
    }
    let key = single_header(req, "sec-websocket-key")
        .filter(|key| key_is_valid(key))
        .ok_or_else(|| refusal(400, "Sec-WebSocket-Key must be 16 bytes in base64"))?;
    Ok(Accepted {
        accept: accept_key(key),
        protocol: choose_protocol(req, protocols).map(str::to_owned),
    })
}

/// A refusal: text body, `Sec-WebSocket-Version: 13`, and for 426 the
/// `Upgrade` header RFC 9110 15.5.22 asks for.
fn refusal(status: u16, why: &str) -> Response {
    let response =
        Response::text(status, format!("{why}\n")).header("Sec-WebSocket-Version", VERSION);
    if status == 426 {
        response.header("Upgrade", "websocket")
    } else {
        response
    }
}

/// The value of header `name` when it appears exactly once, trimmed.
fn single_header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    let mut values = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name));
    let (_, value) = values.next()?;
    values.next().is_none().then_some(value.trim())
}

/// True when `key` is base64 of exactly 16 bytes.
fn key_is_valid(key: &str) -> bool {
    key.len() == 24 && STANDARD.decode(key).is_ok_and(|bytes| bytes.len() == 16)
}

/// The first of `protocols` the client listed in `Sec-WebSocket-Protocol`
/// (any number of headers, comma-separated; names compared exactly).
fn choose_protocol<'p>(req: &Request, protocols: &[&'p str]) -> Option<&'p str> {
    let offered = || {
        req.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
    };
    protocols
        .iter()
        .copied()
        .find(|wanted| offered().any(|o| o == *wanted))
}

/// `Sec-WebSocket-Accept` for `key`: base64 of SHA-1 of the key and the GUID.
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(ACCEPT_GUID.as_bytes());
    STANDARD.encode(sha1.finalize())
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
