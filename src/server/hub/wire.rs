//! How hub messages look on the wire, per subscriber [`Shape`]. Pure
//! functions from buffered entries to engine [`Message`]s; no state. Every
//! JSON object is written by `serde_json` from [`Envelope`].
//!
//! - [`Shape::SseBody`], one channel on SSE: the body as `data:` with `id:`;
//!   a lost range as `event: gap`; where a new subscriber starts as `event:
//!   position` with `id:` and no data (`EventSource` does not hand it to
//!   `onmessage`, but remembers the id for its reconnect).
//! - [`Shape::JsonLines`], every other framing: one JSON object per line
//!   (on a WebSocket, one text frame per object, its newline included),
//!   `{"id":N,"channel":NAME,"data":TEXT}` or `{"id":N,"app":APP,"data":JSON}`;
//!   `{"event":"gap","id":TO,"from":FROM,"to":TO,...}`;
//!   `{"event":"position","id":N,...}`.
//! - [`Shape::SseJson`], mailboxes and multiplexed streams on SSE: the same
//!   JSON objects as `data:`, with `id:`.
//!
//! A topic is named in gaps and positions as `"channel":NAME` or, for a
//! mailbox, `"client":ID`.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::RawValue;

use super::buffer::{Body, Entry, Gap};
use super::topics::TopicKey;
use super::HubConfig;
use crate::{Framing, Hold, Message};

/// The content type of JSON-lines streams and long-poll answers.
pub const NDJSON: &str = "application/x-ndjson";

/// The shape of what one subscriber is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A channel's bodies as SSE events.
    SseBody,
    /// JSON objects, one per line.
    JsonLines,
    /// JSON objects as SSE events.
    SseJson,
}

impl Shape {
    /// Every shape, in the order fan-out visits them.
    pub const ALL: [Shape; 3] = [Shape::SseBody, Shape::JsonLines, Shape::SseJson];

    /// The shape for `key` in `framing`; `mux` for a stream of several topics.
    pub fn of(key: &TopicKey, framing: Framing, mux: bool) -> Shape {
        match (framing, key) {
            (Framing::Sse, TopicKey::Channel(_)) if !mux => Shape::SseBody,
            (Framing::Sse, _) => Shape::SseJson,
            _ => Shape::JsonLines,
        }
    }
}

/// One JSON object of the hub: a message, a gap or a position. Absent
/// fields are left out; the field order is the one documented above.
#[derive(Serialize, Default)]
struct Envelope<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Data<'a>>,
}

/// A message's data: channel bytes as a JSON string (invalid UTF-8
/// replaced), or a notification's JSON as it is.
#[derive(Serialize)]
#[serde(untagged)]
enum Data<'a> {
    Text(Cow<'a, str>),
    Json(&'a RawValue),
}

impl<'a> Envelope<'a> {
    /// An envelope naming `key`: `channel` for a channel, `client` for a
    /// mailbox.
    fn naming(key: &'a TopicKey) -> Self {
        match key {
            TopicKey::Channel(name) => Envelope {
                channel: Some(name),
                ..Envelope::default()
            },
            TopicKey::Mailbox(client) => Envelope {
                client: Some(client),
                ..Envelope::default()
            },
        }
    }

    /// The JSON text, with a newline for [`Shape::JsonLines`].
    fn encode(&self, shape: Shape) -> Vec<u8> {
        // Serializing strings, numbers and checked JSON into memory cannot fail.
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        if shape == Shape::JsonLines {
            out.push(b'\n');
        }
        out
    }
}

/// A buffered message.
pub fn message(shape: Shape, key: &TopicKey, e: &Entry) -> Message {
    let data = match (shape, &e.body) {
        (Shape::SseBody, Body::Channel(bytes)) => bytes.clone(),
        _ => envelope(key, e).encode(shape),
    };
    Message::data(data).with_id(e.id.to_string())
}

/// The JSON object of a message: id, channel or app, data.
fn envelope<'a>(key: &'a TopicKey, e: &'a Entry) -> Envelope<'a> {
    match &e.body {
        Body::Channel(bytes) => Envelope {
            id: Some(e.id),
            data: Some(Data::Text(String::from_utf8_lossy(bytes))),
            ..Envelope::naming(key)
        },
        Body::Notification { app, data } => Envelope {
            id: Some(e.id),
            app: Some(app),
            data: Some(Data::Json(data)),
            ..Envelope::default()
        },
    }
}

/// The notice that ids `gap.from..=gap.to` are lost. It carries id `gap.to`
/// so that a reconnect after it does not report the same loss again.
pub fn gap(shape: Shape, key: &TopicKey, gap: Gap) -> Message {
    let body = Envelope {
        from: Some(gap.from),
        to: Some(gap.to),
        ..Envelope::naming(key)
    };
    let msg = match shape {
        Shape::SseBody => Message::data(body.encode(shape)).with_event("gap"),
        _ => {
            let notice = Envelope {
                event: Some("gap"),
                id: Some(gap.to),
                ..body
            };
            Message::data(notice.encode(shape))
        }
    };
    msg.with_id(gap.to.to_string())
}

/// Where a subscriber of new messages only starts: after `last_id`.
pub fn position(shape: Shape, key: &TopicKey, last_id: u64) -> Message {
    let msg = match shape {
        Shape::SseBody => Message::data("").with_event("position"),
        _ => {
            let notice = Envelope {
                event: Some("position"),
                id: Some(last_id),
                ..Envelope::naming(key)
            };
            Message::data(notice.encode(shape))
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
        // The 101's accept key is added by the handler that checked the upgrade.
        Framing::WebSocket => Hold::new(framing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn text(m: &Message) -> String {
        String::from_utf8_lossy(&m.data).into_owned()
    }

    #[test]
    fn names_with_quotes_and_bodies_with_newlines_stay_valid_json() {
        let key = TopicKey::Channel("a\"b".into());
        let e = Entry {
            id: 3,
            at: Instant::now(),
            body: Body::Channel(b"x\n\"y\"".to_vec()),
        };
        let line = text(&message(Shape::JsonLines, &key, &e));
        assert_eq!(
            line,
            "{\"id\":3,\"channel\":\"a\\\"b\",\"data\":\"x\\n\\\"y\\\"\"}\n"
        );
        let mailbox = TopicKey::Mailbox("c1".into());
        let g = text(&gap(Shape::SseJson, &mailbox, Gap { from: 1, to: 2 }));
        assert_eq!(g, r#"{"event":"gap","id":2,"from":1,"to":2,"client":"c1"}"#);
    }
}
