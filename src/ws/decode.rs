//! The resumable decoder of the frames a client sends (RFC 6455 5): it takes
//! bytes as they arrive, in any pieces, uses all of them unless it stops at
//! the end of a message or at a violation, and keeps between calls only
//! what a partial frame or fragmented message needs. It enforces every rule
//! a server must (masking, RSV bits, opcodes, control-frame limits,
//! fragmentation order, the message-size cap, close codes, UTF-8 of text
//! and close reasons, checked incrementally) and names the close code each
//! violation calls for. It never writes: answering pings and closes is the
//! caller's.

use super::close::CloseCode;
use super::utf8::Utf8Check;
use super::Opcode;

/// The most payload a control frame may carry.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A control frame's payload (at most 125 bytes), held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Control {
    len: u8,
    bytes: [u8; MAX_CONTROL_PAYLOAD],
}

impl Control {
    /// An empty payload.
    pub const EMPTY: Control = Control {
        len: 0,
        bytes: [0; MAX_CONTROL_PAYLOAD],
    };

    /// `payload` as a control payload, or `None` when it is over 125 bytes.
    pub fn new(payload: &[u8]) -> Option<Control> {
        let mut control = Control::EMPTY;
        control.push(payload).then_some(control)
    }

    /// The payload.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Appends `more`; false (and unchanged) when it would pass 125 bytes.
    fn push(&mut self, more: &[u8]) -> bool {
        let start = usize::from(self.len);
        let Some(end) = start
            .checked_add(more.len())
            .filter(|&e| e <= MAX_CONTROL_PAYLOAD)
        else {
            return false;
        };
        self.bytes[start..end].copy_from_slice(more);
        self.len = end as u8;
        true
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Control({:?})", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// A close frame the client sent, already checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    /// The status code, or `None` for an empty close frame.
    pub code: Option<CloseCode>,
    payload: Control,
}

impl Close {
    /// The reason (valid UTF-8, possibly empty).
    pub fn reason(&self) -> &str {
        let bytes = self.payload.as_bytes();
        std::str::from_utf8(bytes.get(2..).unwrap_or(&[])).unwrap_or("")
    }

    /// The code to answer with: the client's, or 1000 when it sent none.
    pub fn reply_code(&self) -> CloseCode {
        self.code.unwrap_or(CloseCode::NORMAL)
    }
}

/// A rule of RFC 6455 a client broke. The connection must be failed: send a
/// close frame with [`Violation::close_code`], then close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// An RSV bit was set and no extension was negotiated.
    ReservedBits,
    /// Opcode 3-7 or 11-15.
    ReservedOpcode,
    /// A client frame without a mask.
    Unmasked,
    /// A control frame with more than 125 bytes of payload.
    ControlTooLong,
    /// A control frame without FIN.
    FragmentedControl,
    /// A continuation frame with no fragmented message open.
    ContinuationWithoutStart,
    /// A text or binary frame while a fragmented message is open.
    DataInsideFragmented,
    /// A 64-bit length with its most significant bit set.
    LengthTooLarge,
    /// A close frame with exactly one byte of payload.
    CloseLengthOne,
    /// A close code a peer may not send.
    InvalidCloseCode,
    /// A message over the decoder's size cap.
    MessageTooBig,
    /// A text message or close reason that is not UTF-8.
    InvalidUtf8,
}

impl Violation {
    /// The close code to send: 1009 for size, 1007 for UTF-8, else 1002.
    pub fn close_code(self) -> CloseCode {
        match self {
            Violation::MessageTooBig => CloseCode::MESSAGE_TOO_BIG,
            Violation::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// What a call to [`Decoder::decode`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Every byte given was used and no message is complete yet.
    NeedMore,
    /// A whole text message.
    Text(String),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// A ping: answer with a pong carrying the same payload.
    Ping(Control),
    /// A pong (an answer to a keepalive ping, or unsolicited).
    Pong(Control),
    /// A close frame: answer with a close frame, then close. The decoder
    /// ignores whatever follows it.
    Close(Close),
    /// The client broke a rule; the decoder refuses all further input.
    Fail(Violation),
}

/// One call's result: bytes used from the input and what they gave. On
/// anything but [`Decoded::NeedMore`] the caller calls again with the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input used (copied into the decoder's state or decoded).
    pub used: usize,
    /// The outcome.
    pub decoded: Decoded,
}

/// The kind of data message open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    Text,
    Binary,
}

/// The frame whose payload is arriving.
#[derive(Debug, Clone, Copy)]
struct Frame {
    fin: bool,
    opcode: Opcode,
    mask: [u8; 4],
    /// Payload bytes still to come.
    remaining: u64,
    /// Payload bytes so far, modulo 4: where the mask is.
    mask_phase: u8,
}

/// Where the decoder is.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Reading a frame head (`head_len` bytes of it so far).
    Head,
    /// Reading a frame's payload.
    Payload(Frame),
    /// A close frame arrived: the rest is ignored.
    Closed,
    /// A rule was broken.
    Failed(Violation),
}

/// The longest frame head: 2 bytes, a 64-bit length, the mask.
const MAX_HEAD: usize = 14;

/// A resumable decoder of client frames. Between frames it holds no heap.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    phase: Phase,
    head: [u8; MAX_HEAD],
    head_len: u8,
    /// The open data message, if any, and its UTF-8 check when text.
    open: Option<DataKind>,
    utf8: Utf8Check,
    /// The open message's payload so far (no heap when none is partial).
    message: Vec<u8>,
    /// A control frame's payload while it arrives in pieces.
    control: Option<Box<Control>>,
}

impl Decoder {
    /// A decoder refusing messages over `max_message` bytes (1009).
    pub fn new(max_message: usize) -> Self {
        Decoder {
            max_message,
            phase: Phase::Head,
            head: [0; MAX_HEAD],
            head_len: 0,
            open: None,
            utf8: Utf8Check::new(),
            message: Vec::new(),
            control: None,
        }
    }

    /// True when the decoder is between frames with no message open: it
    /// holds no heap and a keepalive or close may be judged idle.
    pub fn is_between_messages(&self) -> bool {
        matches!(self.phase, Phase::Head) && self.head_len == 0 && self.open.is_none()
    }

    /// Heap bytes the decoder holds now.
    pub fn heap_bytes(&self) -> usize {
        self.message.capacity() + self.control.as_ref().map_or(0, |_| size_of::<Control>())
    }

    /// Decodes from `input`, which starts after the bytes used by earlier
    /// calls. Returns at the first complete message, control frame or
    /// violation, or when the input is used up ([`Decoded::NeedMore`]).
    pub fn decode(&mut self, input: &[u8]) -> Step {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            let decoded = match self.phase {
                Phase::Failed(violation) => Some(Decoded::Fail(violation)),
                Phase::Closed => {
                    used = input.len();
                    Some(Decoded::NeedMore)
                }
                Phase::Head => {
                    used += self.read_head(rest);
                    match self.phase {
                        Phase::Head => Some(Decoded::NeedMore),
                        Phase::Failed(v) => Some(Decoded::Fail(v)),
                        _ => None,
                    }
                }
                Phase::Payload(frame) => {
                    let take =
                        usize::try_from(frame.remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    used += take;
                    self.read_payload(frame, &rest[..take], take == rest.len())
                }
            };
            if let Some(decoded) = decoded {
                return Step { used, decoded };
            }
        }
    }

    /// Copies head bytes from `input` until the head is whole (then moves
    /// to the payload) or the input ends; checks the first two bytes as soon
    /// as they are there. Returns the bytes used.
    fn read_head(&mut self, input: &[u8]) -> usize {
        let mut used = 0;
        loop {
            let len = usize::from(self.head_len);
            let need = if len < 2 { 2 } else { head_len(self.head[1]) };
            let take = (need - len).min(input.len() - used);
            self.head[len..len + take].copy_from_slice(&input[used..used + take]);
            self.head_len += take as u8;
            used += take;
            if usize::from(self.head_len) < need {
                return used;
            }
            if need == 2 {
                if let Err(violation) = self.check_start(self.head[0], self.head[1]) {
                    self.fail(violation);
                    return used;
                }
                continue;
            }
            self.head_len = 0;
            match self.start_payload(need) {
                Ok(frame) => self.phase = Phase::Payload(frame),
                Err(violation) => {
                    self.fail(violation);
                }
            }
            return used;
        }
    }

    /// The rules the first two bytes of a head decide.
    fn check_start(&self, b0: u8, b1: u8) -> Result<(), Violation> {
        if b0 & 0x70 != 0 {
            return Err(Violation::ReservedBits);
        }
        let opcode = Opcode::from_bits(b0).ok_or(Violation::ReservedOpcode)?;
        if b1 & 0x80 == 0 {
            return Err(Violation::Unmasked);
        }
        let fin = b0 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        match opcode {
            _ if opcode.is_control() && !fin => Err(Violation::FragmentedControl),
            _ if opcode.is_control() && usize::from(len7) > MAX_CONTROL_PAYLOAD => {
                Err(Violation::ControlTooLong)
            }
            Opcode::Close if len7 == 1 => Err(Violation::CloseLengthOne),
            Opcode::Continuation if self.open.is_none() => Err(Violation::ContinuationWithoutStart),
            Opcode::Text | Opcode::Binary if self.open.is_some() => {
                Err(Violation::DataInsideFragmented)
            }
            _ => Ok(()),
        }
    }

    /// The frame a whole head of `len` bytes describes, after the length
    /// rules; opens a data message on its first frame.
    fn start_payload(&mut self, len: usize) -> Result<Frame, Violation> {
        let head = &self.head[..len];
        let length = match head[1] & 0x7F {
            126 => u64::from(u16::from_be_bytes([head[2], head[3]])),
            127 => u64::from_be_bytes(head[2..10].try_into().unwrap_or([0xFF; 8])),
            short => u64::from(short),
        };
        if length >> 63 != 0 {
            return Err(Violation::LengthTooLarge);
        }
        let opcode = Opcode::from_bits(head[0]).ok_or(Violation::ReservedOpcode)?;
        if !opcode.is_control() {
            let total = (self.message.len() as u64).saturating_add(length);
            if total > self.max_message as u64 {
                return Err(Violation::MessageTooBig);
            }
            match opcode {
                Opcode::Text => self.open = Some(DataKind::Text),
                Opcode::Binary => self.open = Some(DataKind::Binary),
                _ => {}
            }
        }
        let mask = head[len - 4..].try_into().unwrap_or([0; 4]);
        Ok(Frame {
            fin: head[0] & 0x80 != 0,
            opcode,
            mask,
            remaining: length,
            mask_phase: 0,
        })
    }

    /// Takes `chunk` (payload bytes of `frame`, masked). `at_end`: the input
    /// ends with it. Returns the outcome when there is one to report.
    fn read_payload(&mut self, mut frame: Frame, chunk: &[u8], at_end: bool) -> Option<Decoded> {
        frame.remaining -= chunk.len() as u64;
        let done = frame.remaining == 0;
        let outcome = if frame.opcode.is_control() {
            self.control_payload(&frame, chunk, done)
        } else {
            self.data_payload(&frame, chunk, done)
        };
        frame.mask_phase = ((usize::from(frame.mask_phase) + chunk.len()) % 4) as u8;
        self.phase = match outcome {
            Some(Decoded::Fail(violation)) => Phase::Failed(violation),
            Some(Decoded::Close(_)) => Phase::Closed,
            _ if done => Phase::Head,
            _ => Phase::Payload(frame),
        };
        match outcome {
            None if !done || at_end => Some(Decoded::NeedMore),
            outcome => outcome,
        }
    }

    /// Data payload: unmasked onto the message, checked as UTF-8 when text;
    /// the whole message when this was its last byte.
    fn data_payload(&mut self, frame: &Frame, chunk: &[u8], done: bool) -> Option<Decoded> {
        let start = self.message.len();
        self.message.extend_from_slice(chunk);
        unmask(&mut self.message[start..], frame.mask, frame.mask_phase);
        let text = self.open == Some(DataKind::Text);
        if text && !self.utf8.feed(&self.message[start..]) {
            return Some(self.fail(Violation::InvalidUtf8));
        }
        if !(done && frame.fin) {
            return None;
        }
        self.open = None;
        let message = std::mem::take(&mut self.message);
        if !text {
            return Some(Decoded::Binary(message));
        }
        let complete = std::mem::take(&mut self.utf8).is_complete();
        match String::from_utf8(message) {
            Ok(text) if complete => Some(Decoded::Text(text)),
            _ => Some(self.fail(Violation::InvalidUtf8)),
        }
    }

    /// Control payload: inline when it came whole, boxed while partial.
    fn control_payload(&mut self, frame: &Frame, chunk: &[u8], done: bool) -> Option<Decoded> {
        let mut unmasked = [0; MAX_CONTROL_PAYLOAD];
        let unmasked = &mut unmasked[..chunk.len()];
        unmasked.copy_from_slice(chunk);
        unmask(unmasked, frame.mask, frame.mask_phase);
        let mut payload = self.control.take().map_or(Control::EMPTY, |boxed| *boxed);
        payload.push(unmasked);
        if !done {
            self.control = Some(Box::new(payload));
            return None;
        }
        Some(match frame.opcode {
            Opcode::Ping => Decoded::Ping(payload),
            Opcode::Pong => Decoded::Pong(payload),
            _ => match close_frame(payload) {
                Ok(close) => Decoded::Close(close),
                Err(violation) => self.fail(violation),
            },
        })
    }

    /// Drops any partial state and refuses all further input.
    fn fail(&mut self, violation: Violation) -> Decoded {
        self.phase = Phase::Failed(violation);
        self.message = Vec::new();
        self.control = None;
        self.open = None;
        Decoded::Fail(violation)
    }
}

/// The length of a head whose second byte is `b1` (always masked here).
fn head_len(b1: u8) -> usize {
    match b1 & 0x7F {
        126 => 2 + 2 + 4,
        127 => 2 + 8 + 4,
        _ => 2 + 4,
    }
}

/// XORs `bytes` with `mask`, starting `phase` bytes into it.
fn unmask(bytes: &mut [u8], mask: [u8; 4], phase: u8) {
    let mut rotated = [0; 4];
    for (i, byte) in rotated.iter_mut().enumerate() {
        *byte = mask[(i + usize::from(phase)) % 4];
    }
    let mut chunks = bytes.chunks_exact_mut(4);
    for chunk in &mut chunks {
        for (byte, m) in chunk.iter_mut().zip(rotated) {
            *byte ^= m;
        }
    }
    for (byte, m) in chunks.into_remainder().iter_mut().zip(rotated) {
        *byte ^= m;
    }
}

/// A close payload checked: empty, or a valid code and a UTF-8 reason.
fn close_frame(payload: Control) -> Result<Close, Violation> {
    let bytes = payload.as_bytes();
    if bytes.is_empty() {
        return Ok(Close {
            code: None,
            payload,
        });
    }
    let code = match bytes {
        [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
        _ => return Err(Violation::CloseLengthOne),
    };
    if !CloseCode::is_valid_on_wire(code) {
        return Err(Violation::InvalidCloseCode);
    }
    if std::str::from_utf8(&bytes[2..]).is_err() {
        return Err(Violation::InvalidUtf8);
    }
    Ok(Close {
        code: Some(CloseCode(code)),
        payload,
    })
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
