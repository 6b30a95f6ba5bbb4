//! The frames a server sends (RFC 6455 5.2): unmasked, unfragmented, FIN
//! set. Each function appends one whole frame to an output buffer, so a
//! message broadcast to many WebSocket connections is encoded once and its
//! bytes shared. [`encode_masked_frame`] writes client frames, for tests and
//! the load tool.

use super::close::CloseCode;
use super::decode::{Control, MAX_CONTROL_PAYLOAD};
use super::Opcode;

/// The keepalive: a ping with no payload, two bytes on the wire. The client
/// answers with a pong; none within the liveness timeout means a silent peer.
pub const KEEPALIVE_PING: [u8; 2] = [0x80 | 0x9, 0x00];

/// The head of an unmasked frame with FIN set: its bytes and their count
/// (2, 4 or 10).
pub fn frame_head(opcode: Opcode, payload_len: usize) -> ([u8; 10], usize) {
    frame_head_with(true, opcode, payload_len, false)
}

/// The head of a frame: FIN, opcode, mask bit and length (not the mask).
fn frame_head_with(fin: bool, opcode: Opcode, len: usize, masked: bool) -> ([u8; 10], usize) {
    let mut head = [0; 10];
    head[0] = if fin { 0x80 } else { 0 } | opcode.bits();
    let mask_bit = if masked { 0x80 } else { 0 };
    let used = if len <= 125 {
        head[1] = mask_bit | len as u8;
        2
    } else if let Ok(len16) = u16::try_from(len) {
        head[1] = mask_bit | 126;
        head[2..4].copy_from_slice(&len16.to_be_bytes());
        4
    } else {
        head[1] = mask_bit | 127;
        head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (head, used)
}

/// Appends one unmasked frame with FIN set.
pub fn encode_frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    let (head, len) = frame_head(opcode, payload.len());
    out.reserve(len + payload.len());
    out.extend_from_slice(&head[..len]);
    out.extend_from_slice(payload);
}

/// Appends a text message.
pub fn encode_text(out: &mut Vec<u8>, text: &str) {
    encode_frame(out, Opcode::Text, text.as_bytes());
}

/// Appends a binary message.
pub fn encode_binary(out: &mut Vec<u8>, data: &[u8]) {
    encode_frame(out, Opcode::Binary, data);
}

/// Appends a ping carrying `payload`.
pub fn encode_ping(out: &mut Vec<u8>, payload: &Control) {
    encode_frame(out, Opcode::Ping, payload.as_bytes());
}

/// Appends a pong carrying `payload` (a ping's, to answer it).
pub fn encode_pong(out: &mut Vec<u8>, payload: &Control) {
    encode_frame(out, Opcode::Pong, payload.as_bytes());
}

/// Appends a close frame with `code` and `reason`; a reason over the 123
/// bytes a close frame has room for is cut at the last character boundary
/// that fits.
pub fn encode_close(out: &mut Vec<u8>, code: CloseCode, reason: &str) {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = [0; MAX_CONTROL_PAYLOAD];
    payload[..2].copy_from_slice(&code.0.to_be_bytes());
    payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
    encode_frame(out, Opcode::Close, &payload[..2 + end]);
}

/// Appends a close frame with no code (the answer to a client's empty close).
pub fn encode_close_empty(out: &mut Vec<u8>) {
    encode_frame(out, Opcode::Close, &[]);
}

/// Appends a masked frame, as a client sends it: for tests, fuzzing and
/// the load tool. Any opcode and length; `fin` as given.
pub fn encode_masked_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: Opcode,
    mask: [u8; 4],
    payload: &[u8],
) {
    let (head, len) = frame_head_with(fin, opcode, payload.len(), true);
    out.extend_from_slice(&head[..len]);
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_5_7_unmasked_hello() {
        let mut out = Vec::new();
        encode_text(&mut out, "Hello");
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn rfc_6455_5_7_masked_hello() {
        let mut out = Vec::new();
        encode_masked_frame(
            &mut out,
            true,
            Opcode::Text,
            [0x37, 0xfa, 0x21, 0x3d],
            b"Hello",
        );
        let expected = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn rfc_6455_5_7_unmasked_ping_and_masked_pong() {
        let mut out = Vec::new();
        encode_ping(&mut out, &Control::new(b"Hello").expect("short"));
        assert_eq!(out, [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        encode_masked_frame(
            &mut out,
            true,
            Opcode::Pong,
            [0x37, 0xfa, 0x21, 0x3d],
            b"Hello",
        );
        let expected = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn rfc_6455_5_7_lengths_256_and_64_kib() {
        let mut out = Vec::new();
        encode_binary(&mut out, &[0; 256]);
        assert_eq!(out[..4], [0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(out.len(), 4 + 256);
        out.clear();
        encode_binary(&mut out, &vec![0; 65536]);
        assert_eq!(out[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        assert_eq!(out.len(), 10 + 65536);
    }

    #[test]
    fn length_boundaries_use_the_shortest_form() {
        for (len, head) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            assert_eq!(frame_head(Opcode::Binary, len).1, head, "{len}");
        }
    }

    #[test]
    fn keepalive_is_an_empty_ping() {
        let mut out = Vec::new();
        encode_ping(&mut out, &Control::EMPTY);
        assert_eq!(out, KEEPALIVE_PING);
    }

    #[test]
    fn close_carries_code_and_reason() {
        let mut out = Vec::new();
        encode_close(&mut out, CloseCode::GOING_AWAY, "bye");
        assert_eq!(out, [0x88, 0x05, 0x03, 0xE9, b'b', b'y', b'e']);
        out.clear();
        encode_close_empty(&mut out);
        assert_eq!(out, [0x88, 0x00]);
    }

    #[test]
    fn a_long_close_reason_is_cut_on_a_character_boundary() {
        let reason = "é".repeat(100); // 200 bytes
        let mut out = Vec::new();
        encode_close(&mut out, CloseCode::NORMAL, &reason);
        assert_eq!(out[1], 2 + 122, "61 two-byte characters fit in 123");
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }

    #[test]
    fn control_payloads_stop_at_125_bytes() {
        assert!(Control::new(&[0; 125]).is_some());
        assert!(Control::new(&[0; 126]).is_none());
    }
}
