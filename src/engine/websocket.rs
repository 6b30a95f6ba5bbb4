//! The WebSocket phase of a held connection (RFC 6455 over the engine): the
//! `101` that opens it, frames read with the resumable [`Decoder`] and handed
//! to [`Router::ws_message`], pongs for pings, the keepalive ping whose
//! missing pong marks a silent peer, and the close handshake in both
//! directions. Pushes and broadcasts need nothing here: `Framing::WebSocket`
//! encodes each message as one frame.
//!
//! # Memory
//!
//! A WebSocket connection is an ordinary held `Conn` (64 bytes). Its extra
//! state lives in [`WsTable`], keyed by the connection's slab key: a decoder
//! only while a frame or fragmented message is partial (dropped the moment
//! the decoder is between messages again), and one bit for "a keepalive ping
//! awaits its pong". An idle WebSocket therefore costs what an idle SSE
//! stream costs, plus one bit.

use std::collections::HashMap;

use log::debug;

use super::conn::Phase;
use super::core::Core;
use super::Engine;
use crate::framing::Framing;
use crate::http::response::{write_header, write_status_line};
use crate::metrics::{CloseReason, Metrics};
use crate::reply::{Gone, Hold};
use crate::router::{Cx, Router};
use crate::ws::{
    encode_close, encode_frame, encode_pong, CloseCode, Decoded, Decoder, Opcode, Violation,
    WsMessage,
};
use crate::ConnId;

/// Capacity of an empty table of partial decoders kept at most.
const SHRINK_ABOVE: usize = 1024;

/// The WebSocket side table: per-connection state kept outside `Conn`.
#[derive(Debug, Default)]
pub(crate) struct WsTable {
    /// Decoders in the middle of a frame or fragmented message, by slab key.
    partial: HashMap<usize, Box<Decoder>>,
    /// One bit per slab key: a keepalive ping was sent and no byte came back.
    awaiting_pong: Vec<u64>,
}

impl WsTable {
    /// The decoder of `key`: its partial one, or a fresh one (no heap).
    fn take_decoder(&mut self, key: usize, max_message: usize) -> Decoder {
        let Some(decoder) = self.partial.remove(&key) else {
            return Decoder::new(max_message);
        };
        if self.partial.is_empty() && self.partial.capacity() > SHRINK_ABOVE {
            // A burst of partial messages left a large empty table behind.
            self.partial.shrink_to_fit();
        }
        *decoder
    }

    /// Keeps `decoder` for `key` only if it is in the middle of something.
    fn keep_decoder(&mut self, key: usize, decoder: Decoder) {
        if !decoder.is_between_messages() {
            self.partial.insert(key, Box::new(decoder));
        }
    }

    fn set_awaiting_pong(&mut self, key: usize, awaiting: bool) {
        let (word, bit) = (key / 64, 1u64 << (key % 64));
        if word >= self.awaiting_pong.len() {
            if !awaiting {
                return;
            }
            self.awaiting_pong.resize(word + 1, 0);
        }
        if awaiting {
            self.awaiting_pong[word] |= bit;
        } else {
            self.awaiting_pong[word] &= !bit;
        }
    }

    fn is_awaiting_pong(&self, key: usize) -> bool {
        self.awaiting_pong
            .get(key / 64)
            .is_some_and(|word| word & (1u64 << (key % 64)) != 0)
    }

    /// Drops everything kept for `key` (it closed or stopped being a WebSocket).
    pub fn forget(&mut self, key: usize) {
        self.partial.remove(&key);
        self.set_awaiting_pong(key, false);
    }
}

/// The close code that ends a stream for `reason`: 1001 when the server
/// goes away, 1000 otherwise.
fn close_code_for(reason: CloseReason) -> CloseCode {
    match reason {
        CloseReason::Shutdown => CloseCode::GOING_AWAY,
        _ => CloseCode::NORMAL,
    }
}

/// The reason text of the close frame that fails a connection.
fn violation_reason(violation: Violation) -> &'static str {
    match violation {
        Violation::ReservedBits => "reserved bits set",
        Violation::ReservedOpcode => "reserved opcode",
        Violation::Unmasked => "client frames must be masked",
        Violation::ControlTooLong => "control frame over 125 bytes",
        Violation::FragmentedControl => "fragmented control frame",
        Violation::ContinuationWithoutStart => "continuation without a message",
        Violation::DataInsideFragmented => "new message inside a fragmented one",
        Violation::LengthTooLarge => "frame length too large",
        Violation::CloseLengthOne => "close frame of one byte",
        Violation::InvalidCloseCode => "invalid close code",
        Violation::MessageTooBig => "message too big",
        Violation::InvalidUtf8 => "invalid UTF-8",
    }
}

impl Core {
    /// Opens the WebSocket phase on `key`: writes the `101` with the hold's
    /// headers and its initial messages as frames. Bytes the client sent
    /// right behind its upgrade request are decoded on the next resume.
    pub(crate) fn start_websocket(&mut self, key: usize, hold: Hold) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.phase = Phase::Held(Framing::WebSocket);
        conn.keep_alive = false;
        conn.chunked = false;
        let has_input = conn.input.as_ref().is_some_and(|b| b.unconsumed_len() > 0);
        Metrics::add(&self.metrics.held, 1);
        let mut out = Vec::with_capacity(160);
        write_status_line(&mut out, 101);
        write_header(&mut out, "Upgrade", "websocket");
        write_header(&mut out, "Connection", "Upgrade");
        for (name, value) in &hold.headers {
            write_header(&mut out, name, value);
        }
        out.extend_from_slice(b"\r\n");
        for msg in &hold.initial {
            crate::framing::encode_websocket_message(&mut out, msg);
        }
        if self.write(key, &out) {
            self.set_deadline(key, self.now + Self::ms(self.cfg.keepalive_interval));
            if has_input {
                self.resume_queue.push(self.id_of(key));
            }
        }
    }

    /// The keepalive timer of a WebSocket: a peer that left the last ping
    /// unanswered is closed as silent; otherwise a 2-byte ping goes out
    /// (unless output is already on its way) and awaits its pong.
    pub(crate) fn ws_keepalive(&mut self, key: usize) {
        if self.ws.is_awaiting_pong(key) {
            debug!("{}: no pong since the last ping", self.id_of(key));
            return self.close(key, CloseReason::SilentPeer);
        }
        let next = self.now + Self::ms(self.cfg.keepalive_interval);
        if self.conns[key].output.is_some() {
            return self.set_deadline(key, next);
        }
        if self.write(key, &crate::ws::KEEPALIVE_PING) {
            Metrics::add(&self.metrics.keepalives, 1);
            self.ws.set_awaiting_pong(key, true);
            self.set_deadline(key, next);
        }
    }

    /// Starts the closing handshake on WebSocket `key`: a close frame with
    /// `code` and `reason`, then the connection closes once it is flushed
    /// (the client's answering close frame is read and discarded).
    pub(crate) fn ws_send_close(
        &mut self,
        key: usize,
        code: CloseCode,
        reason: &str,
        why: CloseReason,
    ) {
        let mut out = Vec::with_capacity(4 + reason.len());
        encode_close(&mut out, code, reason);
        self.ws.forget(key);
        if self.write(key, &out) {
            self.close_after_flush(key, why);
        }
    }

    /// Ends a held WebSocket for `reason` (graceful close and shutdown).
    pub(crate) fn ws_close_for(&mut self, key: usize, reason: CloseReason) {
        self.ws_send_close(key, close_code_for(reason), "", reason);
    }

    /// [`Cx::ws_close`]: closes `conn` with `code` if it is a WebSocket. A
    /// code that may not appear on the wire (1005, 1006, 1015, reserved
    /// ranges) is sent as 1011 instead.
    pub(crate) fn ws_close(&mut self, conn: ConnId, code: CloseCode, reason: &str) {
        let Some(key) = self.key_of(conn) else { return };
        let code = if CloseCode::is_valid_on_wire(code.0) {
            code
        } else {
            debug!(
                "{conn}: close code {} may not be sent; 1011 instead",
                code.0
            );
            CloseCode::INTERNAL_ERROR
        };
        if self.conns[key].phase == Phase::Held(Framing::WebSocket) {
            self.ws_send_close(key, code, reason, CloseReason::Closed);
        } else {
            self.close_gracefully(conn, CloseReason::Closed);
        }
    }

    /// [`Cx::ws_send`]: one text or binary frame, as given, to WebSocket `conn`.
    pub(crate) fn ws_send(&mut self, conn: ConnId, msg: &WsMessage) -> Result<(), Gone> {
        let key = self.key_of(conn).ok_or(Gone)?;
        if self.conns[key].phase != Phase::Held(Framing::WebSocket) {
            return Err(Gone);
        }
        let opcode = match msg {
            WsMessage::Text(_) => Opcode::Text,
            WsMessage::Binary(_) => Opcode::Binary,
        };
        let payload = msg.as_bytes();
        let mut out = Vec::with_capacity(10 + payload.len());
        encode_frame(&mut out, opcode, payload);
        if self.write(key, &out) {
            Ok(())
        } else {
            Err(Gone)
        }
    }

    /// True while `conn` is the same connection, still in the WebSocket phase.
    fn is_websocket(&self, conn: ConnId, key: usize) -> bool {
        self.key_of(conn) == Some(key) && self.conns[key].phase == Phase::Held(Framing::WebSocket)
    }
}

impl<R: Router> Engine<R> {
    /// Decodes `bytes` that arrived on WebSocket `key`: messages go to the
    /// router, pings get pongs, a close is answered, a violation fails the
    /// connection with its close code. Stops when the connection leaves the
    /// WebSocket phase.
    pub(super) fn ws_receive(&mut self, key: usize, mut bytes: &[u8]) {
        let id = self.core.id_of(key);
        self.core.ws.set_awaiting_pong(key, false);
        let max = self.core.cfg.max_ws_message;
        let mut decoder = self.core.ws.take_decoder(key, max);
        while !bytes.is_empty() {
            let step = decoder.decode(bytes);
            bytes = &bytes[step.used..];
            let message = match step.decoded {
                Decoded::NeedMore => break,
                Decoded::Text(text) => WsMessage::Text(text),
                Decoded::Binary(data) => WsMessage::Binary(data),
                Decoded::Ping(payload) => {
                    let mut out = Vec::with_capacity(2 + payload.as_bytes().len());
                    encode_pong(&mut out, &payload);
                    if !self.core.write(key, &out) {
                        return;
                    }
                    continue;
                }
                Decoded::Pong(_) => continue,
                Decoded::Close(close) => {
                    let reason = CloseReason::PeerClosed;
                    return self.core.ws_send_close(key, close.reply_code(), "", reason);
                }
                Decoded::Fail(violation) => {
                    debug!("{id}: WebSocket failed: {violation:?}");
                    let (code, text) = (violation.close_code(), violation_reason(violation));
                    return self
                        .core
                        .ws_send_close(key, code, text, CloseReason::BadRequest);
                }
            };
            let mut cx = Cx {
                core: &mut self.core,
                handle: &self.handle,
            };
            self.router.ws_message(id, message, &mut cx);
            if !self.core.is_websocket(id, key) {
                return;
            }
        }
        self.core.ws.keep_decoder(key, decoder);
    }

    /// Decodes what the client sent behind its upgrade request, which the
    /// request parser had buffered.
    pub(super) fn ws_take_input(&mut self, key: usize) {
        let Some(input) = self.core.conns.get_mut(key).and_then(|c| c.input.take()) else {
            return;
        };
        self.ws_receive(key, input.unconsumed());
    }
}

#[cfg(test)]
mod tests {
    use super::WsTable;
    use crate::ws::{encode_masked_frame, Decoded, Opcode};

    /// A decoder is kept only while it is in the middle of a message, so an
    /// idle WebSocket has no entry (and no heap) in the side table.
    #[test]
    fn decoders_are_kept_only_while_partial() {
        let mut table = WsTable::default();
        let mut wire = Vec::new();
        encode_masked_frame(&mut wire, true, Opcode::Text, [9, 8, 7, 6], b"whole");
        let (head, tail) = wire.split_at(4);
        let mut decoder = table.take_decoder(3, 1024);
        assert_eq!(decoder.decode(head).decoded, Decoded::NeedMore);
        table.keep_decoder(3, decoder);
        assert_eq!(table.partial.len(), 1, "a partial frame is kept");
        let mut decoder = table.take_decoder(3, 1024);
        assert_eq!(decoder.decode(tail).decoded, Decoded::Text("whole".into()));
        table.keep_decoder(3, decoder);
        assert!(table.partial.is_empty(), "between messages nothing is kept");
    }

    #[test]
    fn the_pong_bit_is_per_connection_and_forgotten_on_close() {
        let mut table = WsTable::default();
        table.set_awaiting_pong(130, true);
        table.set_awaiting_pong(2, true);
        assert!(table.is_awaiting_pong(130) && table.is_awaiting_pong(2));
        assert!(!table.is_awaiting_pong(131) && !table.is_awaiting_pong(5000));
        table.set_awaiting_pong(2, false);
        assert!(!table.is_awaiting_pong(2));
        table.forget(130);
        assert!(!table.is_awaiting_pong(130));
        assert_eq!(table.awaiting_pong.len(), 3, "one word per 64 connections");
    }
}
