//! A minimal WebSocket client for the tests: the upgrade request over a raw
//! [`Client`], masked frames written with the crate's own
//! `encode_masked_frame`, and the server's (unmasked) frames read back one
//! at a time with a deadline.

use super::{find, Client};
use altsock::ws::{encode_masked_frame, Opcode};
use std::net::SocketAddr;

/// The key of RFC 6455's example handshake, and the accept value it gives.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// `Sec-WebSocket-Accept` for [`KEY`].
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// One frame the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// The payload as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// The upgrade request for `path` with extra header lines (each ending in CRLF).
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Connects, upgrades on `path` and checks the `101`.
pub fn open(addr: SocketAddr, path: &str) -> Client {
    open_with(addr, path, "")
}

/// [`open`] with extra header lines.
pub fn open_with(addr: SocketAddr, path: &str, extra: &str) -> Client {
    let mut client = Client::connect(addr);
    client.send(upgrade_request(path, extra).as_bytes());
    let head = client.read_through("\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.contains(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n")),
        "{head}"
    );
    client
}

/// A masked client frame.
pub fn masked(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_masked_frame(&mut out, fin, opcode, [0x37, 0xfa, 0x21, 0x3d], payload);
    out
}

/// Sends one whole masked frame.
pub fn send(client: &mut Client, opcode: Opcode, payload: &[u8]) {
    client.send(&masked(true, opcode, payload));
}

/// A complete frame at the start of `buf`: the frame and its length on the wire.
fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    assert_eq!(b1 & 0x80, 0, "server frames are never masked");
    let (len, head) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(head..head + len)?.to_vec();
    let frame = Frame {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        payload,
    };
    Some((frame, head + len))
}

/// Reads the next frame the server sends (panics after the test deadline).
pub fn next_frame(client: &mut Client) -> Frame {
    let mut found = None;
    client.read_until("a WebSocket frame", |b| {
        found = parse(b);
        found.is_some()
    });
    let (frame, used) = found.expect("a frame");
    client.buf.drain(..used);
    frame
}

/// Reads frames until one that is not a ping (keepalives are skipped).
pub fn next_non_ping(client: &mut Client) -> Frame {
    loop {
        let frame = next_frame(client);
        if frame.opcode != 0x9 {
            return frame;
        }
    }
}

/// Expects a close frame with `code`, then the server's FIN.
pub fn expect_close(client: &mut Client, code: u16) -> Frame {
    let frame = next_non_ping(client);
    assert_eq!(frame.opcode, 0x8, "expected a close frame, got {frame:?}");
    assert_eq!(
        frame.close_code(),
        Some(code),
        "{frame:?} ({})",
        frame.text()
    );
    let rest = client.read_to_close();
    assert!(
        find(rest.as_bytes(), b"\x88").is_none(),
        "a second close: {rest:?}"
    );
    frame
}
