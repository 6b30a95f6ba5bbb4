//! RFC 6455 WebSocket, as a pure codec: the upgrade check over an
//! already-parsed [`Request`](crate::http::Request) ([`handshake`]), a
//! resumable decoder for the frames a client sends ([`decode`]), an encoder
//! for the frames a server sends ([`encode`]), and the incremental UTF-8
//! check text messages need ([`utf8`]). Nothing here touches a socket, a
//! timer or the engine: the engine feeds bytes in and writes bytes out.
//!
//! # Memory
//!
//! A [`Decoder`] between frames owns no heap memory: its state is a few
//! dozen bytes inline. It holds heap only while a data frame or a fragmented
//! message is partial (the message so far) or while a control frame's payload
//! arrives in pieces (at most 125 bytes, boxed). Control frames that arrive
//! whole come back inline in a [`Control`], without allocating.
//!
//! # Outcomes, not errors
//!
//! [`Decoder::decode`] returns a [`Step`]: the bytes it used and a
//! [`Decoded`] outcome. A protocol violation is [`Decoded::Fail`] with the
//! [`Violation`], whose [`Violation::close_code`] is the code to send in the
//! close frame before closing the connection.
//!
//! ```
//! use altsock::ws::{encode_masked_frame, Decoded, Decoder, Opcode};
//!
//! let mut wire = Vec::new();
//! encode_masked_frame(&mut wire, true, Opcode::Text, [1, 2, 3, 4], b"Hello");
//! let mut decoder = Decoder::new(1 << 20);
//! let step = decoder.decode(&wire);
//! assert_eq!(step.used, wire.len());
//! assert_eq!(step.decoded, Decoded::Text("Hello".into()));
//! ```

mod close;
pub mod decode;
pub mod encode;
#[cfg(feature = "websocket")]
pub mod handshake;
pub mod utf8;

pub use close::CloseCode;
pub use decode::{Close, Control, Decoded, Decoder, Step, Violation};
pub use encode::{
    encode_binary, encode_close, encode_close_empty, encode_frame, encode_masked_frame,
    encode_ping, encode_pong, encode_text, frame_head, KEEPALIVE_PING,
};
#[cfg(feature = "websocket")]
pub use handshake::{accept_key, check_upgrade, Accepted, Upgrade};

/// A whole message a WebSocket client sent, as the engine hands it to
/// [`Router::ws_message`](crate::Router::ws_message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message (already checked to be UTF-8).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl WsMessage {
    /// The message's bytes, text or binary.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            WsMessage::Text(text) => text.as_bytes(),
            WsMessage::Binary(data) => data,
        }
    }
}

/// A frame's opcode (RFC 6455 5.2). The reserved opcodes 3-7 and 11-15 have
/// no variant: the decoder refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// `0x0`: the next fragment of a message.
    Continuation,
    /// `0x1`: a text message (UTF-8).
    Text,
    /// `0x2`: a binary message.
    Binary,
    /// `0x8`: close.
    Close,
    /// `0x9`: ping.
    Ping,
    /// `0xA`: pong.
    Pong,
}

impl Opcode {
    /// The opcode of the low four bits of a frame's first byte, or `None`
    /// for a reserved one.
    pub fn from_bits(bits: u8) -> Option<Opcode> {
        match bits & 0x0F {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// The four bits on the wire.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// True for close, ping and pong.
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}
