//! The hub's table of topics: named channels and per-client mailboxes (the
//! seed's hash table keyed by client id), each a [`Buffer`] plus the held
//! connections subscribed to it. Owns subscription, replay on resume, and
//! fan-out; `wire` owns how messages look. Knows nothing of HTTP requests,
//! tokens or sessions (the handlers check those first).
//!
//! A connection follows one topic (`/sub/NAME`, `/poll?client=`), or several
//! at once (`/poll?client=..&channels=..`, the browser's one connection):
//! then every message travels as a JSON envelope naming its channel or app.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::buffer::Buffer;
use super::wire::{self, Form};
use super::HubConfig;
use crate::{ConnId, Cx, Framing, Hold, Message};

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
    pub fn field(&self) -> String {
        match self {
            TopicKey::Channel(name) => format!("\"channel\":{}", wire::json_string(name)),
            TopicKey::Client(id) => format!("\"client\":{}", wire::json_string(id)),
        }
    }
}

/// One topic: its buffer and its subscribers, by the form they take.
#[derive(Debug, Default)]
struct Topic {
    buf: Buffer,
    sse: HashSet<ConnId>,
    lines: HashSet<ConnId>,
    envelopes: HashSet<ConnId>,
    /// Since when the topic has had no message and no subscriber (as seen
    /// by the tick).
    idle_since: Option<Instant>,
}

impl Topic {
    fn subscribers(&self) -> usize {
        self.sse.len() + self.lines.len() + self.envelopes.len()
    }

    /// No buffered message and no subscriber: nothing to lose by dropping it.
    fn is_idle(&self) -> bool {
        self.subscribers() == 0 && self.buf.is_empty()
    }

    fn set(&mut self, form: Form) -> &mut HashSet<ConnId> {
        match form {
            Form::Sse => &mut self.sse,
            Form::Lines => &mut self.lines,
            Form::Envelope => &mut self.envelopes,
        }
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
    muxed: HashMap<ConnId, Vec<Arc<TopicKey>>>,
    published: u64,
    /// The highest id any evicted topic had reached; topics made later start
    /// after it, so ids never go back and a late resume learns of its loss.
    high_water: u64,
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
        let mut reached = 0;
        for form in [Form::Sse, Form::Lines, Form::Envelope] {
            let set = match form {
                Form::Sse => &topic.sse,
                Form::Lines => &topic.lines,
                Form::Envelope => &topic.envelopes,
            };
            if !set.is_empty() {
                reached += cx.broadcast(set, &wire::message(form, &key, entry));
            }
        }
        (entry.id, reached)
    }

    /// Subscribes `conn` to `key` in `framing` from `start`, and returns the
    /// hold that opens its stream with what it missed. A long-poll that
    /// already has messages answers at once and is not kept; one that waits
    /// carries `X-Altsock-Last`, where it starts.
    pub fn subscribe(
        &mut self,
        conn: ConnId,
        key: TopicKey,
        framing: Framing,
        start: Start,
        cfg: &HubConfig,
        now: Instant,
    ) -> Hold {
        let last = self.last_id(&key).to_string();
        let hold = self.subscribe_all(conn, vec![(key, start)], framing, false, cfg, now);
        match framing {
            Framing::LongPoll => hold.with_header("X-Altsock-Last", last),
            _ => hold,
        }
    }

    /// Subscribes `conn` to several topics at once (`mux`: every message in
    /// its JSON envelope), each from its own start.
    pub fn subscribe_all(
        &mut self,
        conn: ConnId,
        wants: Vec<(TopicKey, Start)>,
        framing: Framing,
        mux: bool,
        cfg: &HubConfig,
        now: Instant,
    ) -> Hold {
        self.unsubscribe(conn);
        let mut initial = Vec::new();
        let mut keys = Vec::with_capacity(wants.len());
        for (key, start) in wants {
            let form = Form::of(&key, framing, mux);
            let (key, topic) = self.topic(key);
            topic.buf.expire(now, cfg.buffer_age);
            replay(
                &key,
                &topic.buf,
                start,
                form,
                mux || form == Form::Sse,
                &mut initial,
            );
            keys.push((key, form));
        }
        let mut hold = wire::hold_for(framing, cfg);
        let answered = framing == Framing::LongPoll && !initial.is_empty();
        hold.initial = initial;
        if !answered {
            self.register(conn, keys, mux);
        }
        hold
    }

    fn register(&mut self, conn: ConnId, keys: Vec<(Arc<TopicKey>, Form)>, mux: bool) {
        for (key, form) in &keys {
            if let Some(topic) = self.map.get_mut(key) {
                topic.set(*form).insert(conn);
            }
        }
        let mut keys = keys.into_iter().map(|(k, _)| k);
        if mux {
            self.muxed.insert(conn, keys.collect());
        } else if let Some(key) = keys.next() {
            self.subs.insert(conn, key);
        }
    }

    /// The topic of `key`, made if new, with its shared key.
    fn topic(&mut self, key: TopicKey) -> (Arc<TopicKey>, &mut Topic) {
        let key = match self.map.get_key_value(&key) {
            Some((shared, _)) => shared.clone(),
            None => Arc::new(key),
        };
        let high_water = self.high_water;
        let topic = self.map.entry(key.clone()).or_insert_with(|| Topic {
            buf: Buffer::starting_after(high_water),
            ..Topic::default()
        });
        (key, topic)
    }

    /// Forgets `conn` (closed, or its long-poll was answered).
    pub fn unsubscribe(&mut self, conn: ConnId) {
        let keys = match self.subs.remove(&conn) {
            Some(key) => vec![key],
            None => self.muxed.remove(&conn).unwrap_or_default(),
        };
        for key in keys {
            let Some(topic) = self.map.get_mut(&key) else {
                continue;
            };
            for form in [Form::Sse, Form::Lines, Form::Envelope] {
                topic.set(form).remove(&conn);
            }
            if topic.subscribers() == 0 && topic.buf.last_id() == 0 {
                // Never had a message and nothing was evicted before it: no
                // id to remember.
                self.map.remove(&key);
            }
        }
    }

    /// Drops expired messages, then evicts every topic that has had no
    /// message and no subscriber for `buffer_age`, so the table does not grow
    /// with every name ever used. Whoever resumes such a topic was away
    /// longer than any message is kept; ids stay increasing across eviction
    /// (see `high_water`), so they hear of it as a `gap`, the way a changed
    /// epoch tells a Centrifugo client its position is unrecoverable. One
    /// pass over the table: called once per tick.
    pub fn expire(&mut self, now: Instant, cfg: &HubConfig) {
        let mut high_water = self.high_water;
        self.map.retain(|_, topic| {
            topic.buf.expire(now, cfg.buffer_age);
            if !topic.is_idle() {
                topic.idle_since = None;
                return true;
            }
            let since = *topic.idle_since.get_or_insert(now);
            let keep = now.saturating_duration_since(since) < cfg.buffer_age;
            if !keep {
                high_water = high_water.max(topic.buf.last_id());
            }
            keep
        });
        self.high_water = high_water;
    }

    /// True when `keys` can be followed or published to without the table
    /// passing `max_topics` topics.
    pub fn has_room<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k TopicKey>,
        max_topics: usize,
    ) -> bool {
        let new = keys
            .into_iter()
            .filter(|k| !self.map.contains_key(*k))
            .count();
        new == 0 || self.map.len() + new <= max_topics
    }

    /// How many connections follow `key`.
    pub fn subscribers(&self, key: &TopicKey) -> usize {
        self.map.get(key).map_or(0, Topic::subscribers)
    }

    /// The connections that follow `key`.
    pub fn conns(&self, key: &TopicKey) -> Vec<ConnId> {
        self.map.get(key).map_or_else(Vec::new, |t| {
            t.sse
                .iter()
                .chain(&t.lines)
                .chain(&t.envelopes)
                .copied()
                .collect()
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
            subscribers: self.subs.len() + self.muxed.len(),
            published: self.published,
        }
    }
}

/// Appends what a subscriber starting at `start` needs first: the lost
/// range, the missed messages, and (`tell_position`) where a subscriber of
/// new messages only starts.
fn replay(
    key: &TopicKey,
    buf: &Buffer,
    start: Start,
    form: Form,
    tell_position: bool,
    out: &mut Vec<Message>,
) {
    let (gap, entries) = match start {
        Start::After(since) => buf.after(since),
        Start::New => buf.after(buf.last_id()),
        Start::Buffered => (None, buf.after(0).1),
    };
    out.extend(gap.map(|g| wire::gap(form, key, g)));
    out.extend(entries.map(|e| wire::message(form, key, e)));
    if start == Start::New && tell_position {
        out.push(wire::position(form, key, buf.last_id()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg() -> HubConfig {
        HubConfig {
            buffer_age: Duration::from_secs(10),
            ..HubConfig::default()
        }
    }

    fn conn(key: u32) -> ConnId {
        ConnId { key, gen: 0 }
    }

    #[test]
    fn an_idle_topic_is_evicted_after_buffer_age_and_ids_resume_above_it() {
        let t0 = Instant::now();
        let mut topics = Topics::default();
        let key = TopicKey::Channel("c".into());
        for _ in 0..3 {
            topics.topic(key.clone()).1.buf.push(t0, None, vec![], 10);
        }
        topics.expire(t0 + Duration::from_secs(11), &cfg()); // messages expire
        assert_eq!(topics.counts().channels, 1, "idle, but not for long yet");
        topics.expire(t0 + Duration::from_secs(20), &cfg());
        assert_eq!(topics.counts().channels, 1);
        topics.expire(t0 + Duration::from_secs(22), &cfg());
        assert_eq!(topics.counts().channels, 0);
        assert_eq!(topics.topic(key).1.buf.push(t0, None, vec![], 10).id, 4);
    }

    #[test]
    fn a_subscribed_topic_is_never_evicted() {
        let t0 = Instant::now();
        let mut topics = Topics::default();
        let key = TopicKey::Channel("c".into());
        topics.subscribe(conn(1), key.clone(), Framing::Sse, Start::New, &cfg(), t0);
        topics.expire(t0 + Duration::from_secs(100), &cfg());
        topics.expire(t0 + Duration::from_secs(200), &cfg());
        assert_eq!(topics.subscribers(&key), 1);
        topics.unsubscribe(conn(1));
        assert_eq!(
            topics.counts().channels,
            0,
            "never published: dropped at once"
        );
    }

    #[test]
    fn room_counts_only_new_topics() {
        let mut topics = Topics::default();
        let a = TopicKey::Channel("a".into());
        let b = TopicKey::Channel("b".into());
        topics.topic(a.clone());
        assert!(topics.has_room([&a], 1));
        assert!(!topics.has_room([&b], 1));
        assert!(topics.has_room([&a, &b], 2));
        assert!(!topics.has_room([&a, &b, &TopicKey::Client("z".into())], 2));
    }
}
