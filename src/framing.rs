//! How messages look on a held connection. Each [`Framing`] decides the
//! response head that opens the stream, how one [`Message`] is encoded, the
//! smallest valid keepalive, and how the stream ends. Pure functions over
//! byte vectors: the engine writes what these return and nothing else.

use std::io::Write;

use crate::http::response::{write_header, write_status_line};

/// The multipart boundary used by the functions that take none
/// ([`write_stream_head`], [`encode_message`], [`Framing::default_content_type`]).
/// The engine never sends it as it is: each of its multipart streams gets
/// `altsock-part-` followed by 16 hex digits of a hash of the stream's
/// connection id keyed with a per-engine random key, passed to the `_with_boundary`
/// functions, so a message cannot carry another stream's delimiter and forge its parts.
pub const MULTIPART_BOUNDARY: &str = "altsock-part";

/// The `Content-Type` of a `multipart/x-mixed-replace` stream with `boundary`.
pub fn multipart_content_type(boundary: &str) -> String {
    format!("multipart/x-mixed-replace; boundary={boundary}")
}

/// How a held response frames the messages pushed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// A chunked `200` stream; each message is one chunk of its data.
    Chunked,
    /// `text/event-stream` with `id:`, `event:` and `data:` lines.
    Sse,
    /// `multipart/x-mixed-replace`: each message replaces the previous part.
    Multipart,
    /// A close-delimited body: the data bytes as they are.
    Raw,
    /// Nothing is sent until the first message, which completes the response.
    LongPoll,
    /// An upgraded WebSocket (RFC 6455): each message is one unmasked frame,
    /// text when its data is UTF-8, binary otherwise; the keepalive is a
    /// 2-byte ping. Opened with [`crate::Hold::websocket`], never by `?transport=`.
    WebSocket,
}

impl Framing {
    /// The name used in metrics and `?transport=`.
    pub fn name(self) -> &'static str {
        match self {
            Framing::Chunked => "chunked",
            Framing::Sse => "sse",
            Framing::Multipart => "multipart",
            Framing::Raw => "raw",
            Framing::LongPoll => "longpoll",
            Framing::WebSocket => "websocket",
        }
    }

    /// Parses a `?transport=` value.
    pub fn from_name(name: &str) -> Option<Framing> {
        [
            Framing::Chunked,
            Framing::Sse,
            Framing::Multipart,
            Framing::Raw,
            Framing::LongPoll,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }

    /// The default `Content-Type` of the stream.
    pub fn default_content_type(self) -> String {
        match self {
            Framing::Sse => "text/event-stream".into(),
            Framing::Multipart => multipart_content_type(MULTIPART_BOUNDARY),
            _ => "text/plain; charset=utf-8".into(),
        }
    }

    /// The smallest valid keepalive in this framing, already in transfer form;
    /// empty for long-poll, which cannot send anything before its answer.
    pub fn keepalive(self, chunked_transfer: bool) -> &'static [u8] {
        match self {
            Framing::Sse if chunked_transfer => b"2\r\n:\n\r\n",
            Framing::Sse => b":\n",
            Framing::Chunked if chunked_transfer => b"1\r\n\n\r\n",
            Framing::Chunked | Framing::Raw => b"\n",
            // Transport padding after a delimiter line (RFC 2046 section 5.1.1).
            Framing::Multipart => b" ",
            Framing::LongPoll => b"",
            Framing::WebSocket => &crate::ws::KEEPALIVE_PING,
        }
    }
}

/// One message pushed to a held connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// An id (SSE `id:`; a header on long-poll answers).
    pub id: Option<String>,
    /// An event name (SSE `event:`; a header on long-poll answers).
    pub event: Option<String>,
    /// The payload.
    pub data: Vec<u8>,
}

impl Message {
    /// A message carrying `data` and nothing else.
    pub fn data(data: impl Into<Vec<u8>>) -> Self {
        Message {
            data: data.into(),
            ..Message::default()
        }
    }

    /// Sets the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the event name.
    pub fn with_event(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }
}

/// Writes the head that opens a held stream (not used for long-poll).
pub fn write_stream_head(
    out: &mut Vec<u8>,
    framing: Framing,
    content_type: &str,
    extra: &[(String, String)],
    chunked_transfer: bool,
) {
    let boundary = MULTIPART_BOUNDARY;
    write_stream_head_with_boundary(
        out,
        framing,
        content_type,
        extra,
        chunked_transfer,
        boundary,
    );
}

/// [`write_stream_head`] for a multipart stream delimited by `boundary`
/// (which `content_type` must name); the boundary is unused by other framings.
pub fn write_stream_head_with_boundary(
    out: &mut Vec<u8>,
    framing: Framing,
    content_type: &str,
    extra: &[(String, String)],
    chunked_transfer: bool,
    boundary: &str,
) {
    write_status_line(out, 200);
    write_header(out, "Content-Type", content_type);
    out.extend_from_slice(b"Cache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\n");
    for (name, value) in extra {
        write_header(out, name, value);
    }
    if chunked_transfer {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
    } else {
        out.extend_from_slice(b"Connection: close\r\n\r\n");
    }
    if framing == Framing::Multipart {
        let start = format!("--{boundary}");
        append_payload(out, start.as_bytes(), chunked_transfer);
    }
}

/// Appends `msg` as it travels in `framing` (a stream already opened).
pub fn encode_message(
    out: &mut Vec<u8>,
    framing: Framing,
    msg: &Message,
    content_type: &str,
    chunked_transfer: bool,
) {
    let boundary = MULTIPART_BOUNDARY;
    encode_message_with_boundary(out, framing, msg, content_type, chunked_transfer, boundary);
}

/// [`encode_message`] for a multipart stream delimited by `boundary`.
pub fn encode_message_with_boundary(
    out: &mut Vec<u8>,
    framing: Framing,
    msg: &Message,
    content_type: &str,
    chunked_transfer: bool,
    boundary: &str,
) {
    if framing == Framing::WebSocket {
        return encode_websocket_message(out, msg);
    }
    let mut payload = Vec::with_capacity(msg.data.len() + 64);
    match framing {
        Framing::Sse => encode_sse(&mut payload, msg),
        Framing::Multipart => {
            let _ = write!(payload, "\r\nContent-Type: {content_type}\r\n\r\n");
            payload.extend_from_slice(&msg.data);
            let _ = write!(payload, "\r\n--{boundary}");
        }
        Framing::Chunked | Framing::Raw | Framing::LongPoll | Framing::WebSocket => {
            payload.extend_from_slice(&msg.data)
        }
    }
    append_payload(out, &payload, chunked_transfer);
}

/// Appends `msg` as one WebSocket frame: text when its data is UTF-8 (what
/// browsers hand to `onmessage` as a string), binary otherwise. The id and
/// event name have no place in a frame; a router that needs them puts them
/// in the data.
pub fn encode_websocket_message(out: &mut Vec<u8>, msg: &Message) {
    let opcode = if std::str::from_utf8(&msg.data).is_ok() {
        crate::ws::Opcode::Text
    } else {
        crate::ws::Opcode::Binary
    };
    crate::ws::encode_frame(out, opcode, &msg.data);
}

/// Appends `payload`, as one chunk when the transfer is chunked.
fn append_payload(out: &mut Vec<u8>, payload: &[u8], chunked_transfer: bool) {
    if payload.is_empty() {
        return;
    }
    if chunked_transfer {
        let _ = write!(out, "{:x}\r\n", payload.len());
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(payload);
    }
}

/// Encodes one SSE event: `id:`, `event:`, one `data:` line per line of data.
/// CR and LF inside id and event are dropped so they cannot forge fields.
pub fn encode_sse(out: &mut Vec<u8>, msg: &Message) {
    let field = |out: &mut Vec<u8>, name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        out.extend(value.bytes().filter(|&b| b != b'\r' && b != b'\n'));
        out.push(b'\n');
    };
    if let Some(id) = &msg.id {
        field(out, "id: ", id);
    }
    if let Some(event) = &msg.event {
        field(out, "event: ", event);
    }
    // CRLF, LF and a lone CR all end a line for an EventSource, so each
    // starts a new `data:` line; otherwise a CR could forge `id:` or `event:`.
    let text = String::from_utf8_lossy(&msg.data);
    let mut rest: &str = &text;
    loop {
        let end = rest.find(['\r', '\n']);
        let line = &rest[..end.unwrap_or(rest.len())];
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        match end {
            Some(i) if rest[i..].starts_with("\r\n") => rest = &rest[i + 2..],
            Some(i) => rest = &rest[i + 1..],
            None => break,
        }
    }
    out.push(b'\n');
}

/// The bytes that end a stream cleanly: the last chunk for chunked transfer,
/// the closing delimiter for multipart, nothing otherwise.
pub fn stream_end(framing: Framing, chunked_transfer: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if framing == Framing::Multipart {
        append_payload(&mut out, b"--\r\n", chunked_transfer);
    }
    if chunked_transfer {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    out
}

/// The complete answer that a long-poll hold sends for its first message.
pub fn longpoll_answer(
    msg: &Message,
    content_type: &str,
    extra: &[(String, String)],
) -> crate::Response {
    let mut response = crate::Response::new(200)
        .header("Content-Type", content_type)
        .header("Cache-Control", "no-cache, no-transform")
        .header("X-Accel-Buffering", "no")
        .body(msg.data.clone());
    response.headers.extend(extra.iter().cloned());
    if let Some(id) = &msg.id {
        response.headers.push(("X-Altsock-Id".into(), id.clone()));
    }
    if let Some(event) = &msg.event {
        response
            .headers
            .push(("X-Altsock-Event".into(), event.clone()));
    }
    response
}

/// The `204` that answers a long-poll hold whose timeout passed with no message.
/// It carries the hold's headers (CORS headers must be on every answer) and the
/// no-cache headers, since a `204` is otherwise cacheable by default.
pub fn longpoll_timeout(extra: &[(String, String)]) -> crate::Response {
    let mut response = crate::Response::new(204)
        .header("Cache-Control", "no-cache, no-transform")
        .header("X-Accel-Buffering", "no");
    response.headers.extend(extra.iter().cloned());
    response
}
