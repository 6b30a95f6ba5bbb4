//! How hub messages look on the wire, per subscriber [`Form`]. Pure
//! functions from buffered entries to engine [`Message`]s; no state.
//!
//! - [`Form::Sse`], one channel on SSE: the body as `data:` with `id:`; a
//!   lost range as `event: gap`; where a new subscriber starts as `event:
//!   position` with `id:` and no data (`EventSource` does not hand it to
//!   `onmessage`, but remembers the id for its reconnect).
//! - [`Form::Lines`], every other framing: one JSON object per line,
//!   `{"id":N,"channel":NAME,"data":TEXT}` or `{"id":N,"app":APP,"data":JSON}`;
//!   `{"event":"gap","id":TO,"from":FROM,"to":TO,...}`;
//!   `{"event":"position","id":N,...}`.
//! - [`Form::Envelope`], mailboxes and multiplexed streams on SSE: the same
//!   JSON objects as `data:`, with `id:`.

use super::buffer::{Entry, Gap};
use super::topics::TopicKey;
use super::HubConfig;
use crate::{Framing, Hold, Message};

/// The content type of JSON-lines streams and long-poll answers.
pub const NDJSON: &str = "application/x-ndjson";

/// How one subscriber is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A channel's bodies as SSE events.
    Sse,
    /// JSON objects, one per line.
    Lines,
    /// JSON objects as SSE events.
    Envelope,
}

impl Form {
    /// The form for `key` in `framing`; `mux` for a stream of several topics.
    pub fn of(key: &TopicKey, framing: Framing, mux: bool) -> Form {
        match (framing, key) {
            (Framing::Sse, TopicKey::Channel(_)) if !mux => Form::Sse,
            (Framing::Sse, _) => Form::Envelope,
            _ => Form::Lines,
        }
    }
}

/// A buffered message.
pub fn message(form: Form, key: &TopicKey, e: &Entry) -> Message {
    let data = match form {
        Form::Sse => e.data.clone(),
        Form::Envelope => envelope(key, e).into_bytes(),
        Form::Lines => line(envelope(key, e)),
    };
    Message::data(data).with_id(e.id.to_string())
}

/// The notice that ids `gap.from..=gap.to` are lost. It carries id `gap.to`
/// so that a reconnect after it does not report the same loss again.
pub fn gap(form: Form, key: &TopicKey, gap: Gap) -> Message {
    let body = format!("\"from\":{},\"to\":{},{}", gap.from, gap.to, key.field());
    let msg = match form {
        Form::Sse => Message::data(format!("{{{body}}}")).with_event("gap"),
        _ => {
            let obj = format!("{{\"event\":\"gap\",\"id\":{},{body}}}", gap.to);
            Message::data(maybe_line(form, obj))
        }
    };
    msg.with_id(gap.to.to_string())
}

/// Where a subscriber of new messages only starts: after `last_id`.
pub fn position(form: Form, key: &TopicKey, last_id: u64) -> Message {
    let msg = match form {
        Form::Sse => Message::data("").with_event("position"),
        _ => {
            let obj = format!(
                "{{\"event\":\"position\",\"id\":{last_id},{}}}",
                key.field()
            );
            Message::data(maybe_line(form, obj))
        }
    };
    msg.with_id(last_id.to_string())
}

/// The hold for a subscriber in `framing`.
pub fn hold_for(framing: Framing, cfg: &HubConfig) -> Hold {
    match framing {
        Framing::Sse => Hold::sse(),
        Framing::LongPoll => Hold::new(framing)
            .with_content_type(NDJSON)
            .with_timeout(cfg.longpoll_timeout),
        Framing::Multipart => Hold::new(framing).with_content_type("application/json"),
        Framing::Chunked | Framing::Raw => Hold::new(framing).with_content_type(NDJSON),
    }
}

/// The JSON object of a message: id, channel or app, data.
fn envelope(key: &TopicKey, e: &Entry) -> String {
    match &e.app {
        Some(app) => format!(
            "{{\"id\":{},\"app\":{},\"data\":{}}}",
            e.id,
            json_string(app),
            String::from_utf8_lossy(&e.data)
        ),
        None => format!(
            "{{\"id\":{},{},\"data\":{}}}",
            e.id,
            key.field(),
            json_string(&String::from_utf8_lossy(&e.data))
        ),
    }
}

fn line(mut obj: String) -> Vec<u8> {
    obj.push('\n');
    obj.into_bytes()
}

fn maybe_line(form: Form, obj: String) -> Vec<u8> {
    match form {
        Form::Lines => line(obj),
        _ => obj.into_bytes(),
    }
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}
