//! The hub's table of topics: named channels and per-client mailboxes (the
//! seed's hash table keyed by client id), each a [`Buffer`] plus the held
//! connections subscribed to it. Owns fan-out and how a buffered message
//! looks on the wire in each framing; knows nothing of HTTP requests,
//! tokens or sessions (the handlers check those first).
//!
//! On SSE a channel message is its body as `data:` with `id:`; everywhere
//! else, and for mailboxes on SSE too, a message is one JSON line:
//! `{"id":N,"channel":NAME,"data":TEXT}` or `{"id":N,"app":APP,"data":JSON}`.
//! Lost ranges arrive as an SSE `event: gap` or the line
//! `{"event":"gap","id":TO,"from":FROM,"to":TO,...}`. A subscriber that
//! starts with new messages only learns where it starts from, to resume
//! from there: on SSE an `event: position` with the current `id:` (which
//! `EventSource` does not hand to `onmessage`), on long-poll the
//! `X-Altsock-Last` header, also on the `204`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::buffer::{Buffer, Entry, Gap};
use super::HubConfig;
use crate::{ConnId, Cx, Framing, Hold, Message};

/// The content type of JSON-lines streams and long-poll answers.
pub const NDJSON: &str = "application/x-ndjson";

/// What a subscriber follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicKey {
    /// A named channel (`/sub/NAME`, `/pub/NAME`).
    Channel(String),
    /// A client's mailbox of addressed notifications (`/poll`, `/notify`).
    Client(String),
}

impl TopicKey {
    /// The JSON field naming this topic inside an envelope.
    fn field(&self) -> String {
        match self {
            TopicKey::Channel(name) => format!("\"channel\":{}", json_string(name)),
            TopicKey::Client(id) => format!("\"client\":{}", json_string(id)),
        }
    }
}

/// One topic: its buffer and its subscribers, split by how they are fed.
#[derive(Debug, Default)]
struct Topic {
    buf: Buffer,
    sse: HashSet<ConnId>,
    lines: HashSet<ConnId>,
}

impl Topic {
    fn subscribers(&self) -> usize {
        self.sse.len() + self.lines.len()
    }
}

/// Where a new subscriber starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After this id: replay what came later, with a gap if it is gone.
    After(u64),
    /// Only messages published from now on.
    New,
    /// Everything still buffered, without a gap.
    Buffered,
}

/// Every topic, and which topic each subscribed connection follows (the
/// key is shared, so a subscriber costs its two table entries, not a copy
/// of the name).
#[derive(Debug, Default)]
pub struct Topics {
    map: HashMap<Arc<TopicKey>, Topic>,
    subs: HashMap<ConnId, Arc<TopicKey>>,
    published: u64,
}

/// Counts for `/hub/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Channels in the table.
    pub channels: usize,
    /// Mailboxes in the table.
    pub clients: usize,
    /// Subscribed connections.
    pub subscribers: usize,
    /// Messages published since start.
    pub published: u64,
}

impl Topics {
    /// Buffers a message in `key` and pushes it to its subscribers; returns
    /// its id and how many subscribers took it.
    pub fn publish<M: Send + 'static>(
        &mut self,
        key: TopicKey,
        app: Option<String>,
        data: Vec<u8>,
        cfg: &HubConfig,
        cx: &mut Cx<'_, M>,
    ) -> (u64, usize) {
        let now = cx.now();
        self.published += 1;
        let (key, topic) = self.topic(key);
        topic.buf.expire(now, cfg.buffer_age);
        let entry = topic.buf.push(now, app, data, cfg.buffer_len);
        let id = entry.id;
        let sse = sse_message(&key, entry);
        let line = line_message(&key, entry);
        let mut reached = cx.broadcast(&topic.sse, &sse);
        reached += cx.broadcast(&topic.lines, &line);
        (id, reached)
    }

    /// Subscribes `conn` to `key` in `framing` from `start`, and returns the
    /// hold that opens its stream with what it missed. A long-poll that
    /// already has messages answers at once and is not kept.
    pub fn subscribe(
        &mut self,
        conn: ConnId,
        key: TopicKey,
        framing: Framing,
        start: Start,
        cfg: &HubConfig,
        now: Instant,
    ) -> Hold {
        self.unsubscribe(conn);
        let (key, topic) = self.topic(key);
        topic.buf.expire(now, cfg.buffer_age);
        let (gap, entries) = match start {
            Start::After(since) => topic.buf.after(since),
            Start::New => topic.buf.after(topic.buf.last_id()),
            Start::Buffered => (None, topic.buf.after(0).1),
        };
        let sse = framing == Framing::Sse;
        let encode = |e: &Entry| {
            if sse {
                sse_message(&key, e)
            } else {
                line_message(&key, e)
            }
        };
        let mut initial: Vec<Message> =
            gap.map(|g| gap_message(&key, g, sse)).into_iter().collect();
        initial.extend(entries.map(encode));
        let last_id = topic.buf.last_id().to_string();
        if sse && start == Start::New {
            initial.push(Message::data("").with_event("position").with_id(&*last_id));
        }
        let mut hold = hold_for(framing, cfg);
        let answered = framing == Framing::LongPoll && !initial.is_empty();
        if framing == Framing::LongPoll {
            hold = hold.with_header("X-Altsock-Last", last_id);
        }
        hold.initial = initial;
        if !answered {
            let set = if framing == Framing::Sse {
                &mut topic.sse
            } else {
                &mut topic.lines
            };
            set.insert(conn);
            self.subs.insert(conn, key);
        }
        hold
    }

    /// The topic of `key`, made if new, with its shared key.
    fn topic(&mut self, key: TopicKey) -> (Arc<TopicKey>, &mut Topic) {
        let key = match self.map.get_key_value(&key) {
            Some((shared, _)) => shared.clone(),
            None => Arc::new(key),
        };
        let topic = self.map.entry(key.clone()).or_default();
        (key, topic)
    }

    /// Forgets `conn` (closed, or its long-poll was answered).
    pub fn unsubscribe(&mut self, conn: ConnId) {
        let Some(key) = self.subs.remove(&conn) else {
            return;
        };
        if let Some(topic) = self.map.get_mut(&key) {
            topic.sse.remove(&conn);
            topic.lines.remove(&conn);
            if topic.subscribers() == 0 && topic.buf.last_id() == 0 {
                self.map.remove(&key);
            }
        }
    }

    /// Drops expired messages. A topic that ever had a message stays, so
    /// that its ids keep increasing and a late subscriber learns of its loss;
    /// an empty topic costs its key and a few words.
    pub fn expire(&mut self, now: Instant, cfg: &HubConfig) {
        for topic in self.map.values_mut() {
            topic.buf.expire(now, cfg.buffer_age);
        }
    }

    /// How many connections follow `key`.
    pub fn subscribers(&self, key: &TopicKey) -> usize {
        self.map.get(key).map_or(0, Topic::subscribers)
    }

    /// The connections that follow `key`.
    pub fn conns(&self, key: &TopicKey) -> Vec<ConnId> {
        self.map.get(key).map_or_else(Vec::new, |t| {
            t.sse.iter().chain(&t.lines).copied().collect()
        })
    }

    /// The newest id published to `key`.
    pub fn last_id(&self, key: &TopicKey) -> u64 {
        self.map.get(key).map_or(0, |t| t.buf.last_id())
    }

    /// Table-wide counts.
    pub fn counts(&self) -> Counts {
        let channels = self
            .map
            .keys()
            .filter(|k| matches!(***k, TopicKey::Channel(_)))
            .count();
        Counts {
            channels,
            clients: self.map.len() - channels,
            subscribers: self.subs.len(),
            published: self.published,
        }
    }
}

/// The hold for a subscriber in `framing`.
fn hold_for(framing: Framing, cfg: &HubConfig) -> Hold {
    match framing {
        Framing::Sse => Hold::sse(),
        Framing::LongPoll => Hold::new(framing)
            .with_content_type(NDJSON)
            .with_timeout(cfg.longpoll_timeout),
        Framing::Multipart => Hold::new(framing).with_content_type("application/json"),
        Framing::Chunked | Framing::Raw => Hold::new(framing).with_content_type(NDJSON),
    }
}

/// A message on SSE: a channel's body as data, a mailbox's JSON envelope;
/// with its id.
fn sse_message(key: &TopicKey, e: &Entry) -> Message {
    let data = match key {
        TopicKey::Channel(_) => e.data.clone(),
        TopicKey::Client(_) => envelope(key, e).into_bytes(),
    };
    Message::data(data).with_id(e.id.to_string())
}

/// A message as one JSON line, with its id (for long-poll's `X-Altsock-Id`).
fn line_message(key: &TopicKey, e: &Entry) -> Message {
    let mut data = envelope(key, e);
    data.push('\n');
    Message::data(data).with_id(e.id.to_string())
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

/// The notice that ids `gap.from..=gap.to` are lost. It carries id `gap.to`
/// so that a reconnect after it does not report the same loss again.
fn gap_message(key: &TopicKey, gap: Gap, sse: bool) -> Message {
    let body = format!("\"from\":{},\"to\":{},{}", gap.from, gap.to, key.field());
    let msg = if sse {
        Message::data(format!("{{{body}}}")).with_event("gap")
    } else {
        Message::data(format!("{{\"event\":\"gap\",\"id\":{},{body}}}\n", gap.to))
    };
    msg.with_id(gap.to.to_string())
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}
