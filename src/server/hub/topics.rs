//! The hub's table of topics: named channels and mailboxes (a mailbox is
//! one hub client's queue of addressed notifications, the seed's hash table
//! keyed by client id), each a [`Buffer`] plus the held connections
//! subscribed to it. Owns subscription, replay on resume, and fan-out, and
//! who made which topic (`makers`, for the caps on strangers); `wire` owns
//! how messages look. Knows nothing of HTTP requests, tokens or sessions
//! (the handlers check those first).
//!
//! A connection follows one topic (`/sub/NAME`, `/poll?client=`), or several
//! at once (`/poll?client=..&channels=..`, the browser's one connection):
//! then every message travels as a JSON envelope naming its channel or app.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::buffer::{Body, Buffer};
use super::makers::{Full, Maker, Makers};
use super::wire::{self, Shape};
use super::HubConfig;
use crate::{ConnId, Cx, Framing, Hold, Message};

/// What a subscriber follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicKey {
    /// A named channel (`/sub/NAME`, `/pub/NAME`).
    Channel(String),
    /// The mailbox of the hub client with this id (`/poll`, `/notify`).
    Mailbox(String),
}

/// One topic: its buffer and its subscribers, by the shape they are sent.
#[derive(Debug, Default)]
struct Topic {
    buf: Buffer,
    sse_body: HashSet<ConnId>,
    json_lines: HashSet<ConnId>,
    sse_json: HashSet<ConnId>,
    /// The stranger who made it, while it counts against them.
    made_by: Option<Maker>,
    /// Since when the topic has had no message and no subscriber (as seen
    /// by the tick).
    idle_since: Option<Instant>,
}

impl Topic {
    fn subscribers(&self) -> usize {
        self.sse_body.len() + self.json_lines.len() + self.sse_json.len()
    }

    /// No buffered message and no subscriber: nothing to lose by dropping it.
    fn is_idle(&self) -> bool {
        self.subscribers() == 0 && self.buf.is_empty()
    }

    fn set_mut(&mut self, shape: Shape) -> &mut HashSet<ConnId> {
        match shape {
            Shape::SseBody => &mut self.sse_body,
            Shape::JsonLines => &mut self.json_lines,
            Shape::SseJson => &mut self.sse_json,
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
    makers: Makers,
}

/// Counts for `/hub/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Channels in the table.
    pub channels: usize,
    /// Mailboxes in the table.
    pub mailboxes: usize,
    /// Subscribed connections.
    pub subscribers: usize,
    /// Messages published since start.
    pub published: u64,
}

impl Topics {
    /// Buffers a message in `key` and pushes it to its subscribers; returns
    /// its id and how many subscribers took it.
    /// Buffers a message in `key` and pushes it to its subscribers; returns
    /// its id and how many subscribers took it. A topic a stranger made is
    /// the application's from now on.
    pub fn publish<M: Send + 'static>(
        &mut self,
        key: TopicKey,
        body: Body,
        cfg: &HubConfig,
        cx: &mut Cx<'_, M>,
    ) -> (u64, usize) {
        let now = cx.now();
        self.published += 1;
        let (key, topic) = topic_of(&mut self.map, &mut self.makers, self.high_water, key, None);
        if let Some(maker) = topic.made_by.take() {
            self.makers.remove(&maker);
        }
        topic.buf.expire(now, cfg.buffer_age);
        let entry = topic.buf.push(now, body, cfg.buffer_len);
        let mut reached = 0;
        let sets = [
            (Shape::SseBody, &topic.sse_body),
            (Shape::JsonLines, &topic.json_lines),
            (Shape::SseJson, &topic.sse_json),
        ];
        for (shape, set) in sets {
            if !set.is_empty() {
                reached += cx.broadcast(set, &wire::message(shape, &key, entry));
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
        maker: Maker,
        key: TopicKey,
        framing: Framing,
        start: Start,
        cfg: &HubConfig,
        now: Instant,
    ) -> Hold {
        let last = self.last_id(&key).to_string();
        let hold = self.subscribe_all(maker, vec![(key, start)], framing, false, cfg, now);
        match framing {
            Framing::LongPoll => hold.with_header("X-Altsock-Last", last),
            _ => hold,
        }
    }

    /// Subscribes `maker.conn` to several topics at once (`mux`: every
    /// message in its JSON envelope), each from its own start; the topics it
    /// makes count against `maker` (a subscriber is never a publisher).
    pub fn subscribe_all(
        &mut self,
        maker: Maker,
        wants: Vec<(TopicKey, Start)>,
        framing: Framing,
        mux: bool,
        cfg: &HubConfig,
        now: Instant,
    ) -> Hold {
        let conn = maker.conn;
        self.unsubscribe(conn);
        let mut initial = Vec::new();
        let mut keys = Vec::with_capacity(wants.len());
        for (key, start) in wants {
            let shape = Shape::of(&key, framing, mux);
            let (key, topic) = topic_of(
                &mut self.map,
                &mut self.makers,
                self.high_water,
                key,
                Some(maker),
            );
            topic.buf.expire(now, cfg.buffer_age);
            replay(
                &key,
                &topic.buf,
                start,
                shape,
                mux || shape == Shape::SseBody,
                &mut initial,
            );
            keys.push((key, shape));
        }
        let mut hold = wire::hold_for(framing, cfg);
        let answered = framing == Framing::LongPoll && !initial.is_empty();
        hold.initial = initial;
        if !answered {
            self.register(conn, keys, mux);
        }
        hold
    }

    fn register(&mut self, conn: ConnId, keys: Vec<(Arc<TopicKey>, Shape)>, mux: bool) {
        for (key, shape) in &keys {
            if let Some(topic) = self.map.get_mut(key) {
                topic.set_mut(*shape).insert(conn);
            }
        }
        let mut keys = keys.into_iter().map(|(k, _)| k);
        if mux {
            self.muxed.insert(conn, keys.collect());
        } else if let Some(key) = keys.next() {
            self.subs.insert(conn, key);
        }
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
            for shape in Shape::ALL {
                topic.set_mut(shape).remove(&conn);
            }
            if topic.subscribers() == 0 && topic.buf.last_id() == 0 {
                // Never had a message and nothing was evicted before it: no
                // id to remember.
                if let Some(maker) = topic.made_by {
                    self.makers.remove(&maker);
                }
                self.map.remove(&key);
            }
        }
    }

    /// `conn` closed: forgets its subscription and its count of topics made.
    pub fn closed(&mut self, conn: ConnId) {
        self.unsubscribe(conn);
        self.makers.closed(conn);
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
        let makers = &mut self.makers;
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
                if let Some(maker) = topic.made_by {
                    makers.remove(&maker);
                }
            }
            keep
        });
        self.high_water = high_water;
    }

    /// May `maker` (`None`: a publisher) follow or publish to `keys`? Only
    /// the topics it would make count: following or publishing to an
    /// existing topic is never refused (see `makers` for the caps).
    pub fn room<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k TopicKey>,
        maker: Option<&Maker>,
        cfg: &HubConfig,
    ) -> Result<(), Full> {
        let new = keys
            .into_iter()
            .filter(|k| !self.map.contains_key(*k))
            .count();
        self.makers.room(maker, new, self.map.len(), cfg)
    }

    /// How many topics `conn` made that still count against it.
    pub fn made_by_conn(&self, conn: ConnId) -> usize {
        self.makers.of_conn(conn)
    }

    /// True when `conn` follows one topic or several.
    pub fn is_subscribed(&self, conn: ConnId) -> bool {
        self.subs.contains_key(&conn) || self.muxed.contains_key(&conn)
    }

    /// How many connections follow `key`.
    pub fn subscribers(&self, key: &TopicKey) -> usize {
        self.map.get(key).map_or(0, Topic::subscribers)
    }

    /// The connections that follow `key`.
    pub fn conns(&self, key: &TopicKey) -> Vec<ConnId> {
        self.map.get(key).map_or_else(Vec::new, |t| {
            t.sse_body
                .iter()
                .chain(&t.json_lines)
                .chain(&t.sse_json)
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
            mailboxes: self.map.len() - channels,
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
    shape: Shape,
    tell_position: bool,
    out: &mut Vec<Message>,
) {
    let (gap, entries) = match start {
        Start::After(since) => buf.after(since),
        Start::New => buf.after(buf.last_id()),
        Start::Buffered => (None, buf.after(0).1),
    };
    out.extend(gap.map(|g| wire::gap(shape, key, g)));
    out.extend(entries.map(|e| wire::message(shape, key, e)));
    if start == Start::New && tell_position {
        out.push(wire::position(shape, key, buf.last_id()));
    }
}

/// The topic of `key` in `map`, made if new (counting against `maker`, a
/// stranger), with its shared key. A free function over the table's parts,
/// so the caller may still change the makers' counts while holding the topic.
fn topic_of<'m>(
    map: &'m mut HashMap<Arc<TopicKey>, Topic>,
    makers: &mut Makers,
    high_water: u64,
    key: TopicKey,
    maker: Option<Maker>,
) -> (Arc<TopicKey>, &'m mut Topic) {
    let key = match map.get_key_value(&key) {
        Some((shared, _)) => shared.clone(),
        None => Arc::new(key),
    };
    let topic = map.entry(key.clone()).or_insert_with(|| {
        if let Some(maker) = &maker {
            makers.add(maker);
        }
        Topic {
            buf: Buffer::starting_after(high_water),
            made_by: maker,
            ..Topic::default()
        }
    });
    (key, topic)
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

    impl Topics {
        /// Publishes an empty message to `key` without a connection; its id.
        fn publish_at(&mut self, key: TopicKey, now: Instant) -> u64 {
            let (_, topic) = topic_of(&mut self.map, &mut self.makers, self.high_water, key, None);
            if let Some(maker) = topic.made_by.take() {
                self.makers.remove(&maker);
            }
            topic.buf.push(now, Body::Channel(vec![]), 10).id
        }
    }

    #[test]
    fn an_idle_topic_is_evicted_after_buffer_age_and_ids_resume_above_it() {
        let t0 = Instant::now();
        let mut topics = Topics::default();
        let key = TopicKey::Channel("c".into());
        for _ in 0..3 {
            topics.publish_at(key.clone(), t0);
        }
        topics.expire(t0 + Duration::from_secs(11), &cfg()); // messages expire
        assert_eq!(topics.counts().channels, 1, "idle, but not for long yet");
        topics.expire(t0 + Duration::from_secs(20), &cfg());
        assert_eq!(topics.counts().channels, 1);
        topics.expire(t0 + Duration::from_secs(22), &cfg());
        assert_eq!(topics.counts().channels, 0);
        assert_eq!(topics.publish_at(key, t0), 4);
    }

    #[test]
    fn a_subscribed_topic_is_never_evicted() {
        let t0 = Instant::now();
        let mut topics = Topics::default();
        let key = TopicKey::Channel("c".into());
        let maker = Maker::new(conn(1), None);
        topics.subscribe(maker, key.clone(), Framing::Sse, Start::New, &cfg(), t0);
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
        let z = TopicKey::Mailbox("z".into());
        topics.publish_at(a.clone(), Instant::now());
        let stranger = Maker::new(conn(1), None);
        let cap = |max_topics| HubConfig {
            max_topics,
            ..HubConfig::default()
        };
        assert_eq!(topics.room([&a], Some(&stranger), &cap(1)), Ok(()));
        assert_eq!(
            topics.room([&b], Some(&stranger), &cap(1)),
            Err(Full::Table(1))
        );
        assert_eq!(topics.room([&a, &b], Some(&stranger), &cap(2)), Ok(()));
        let three = [&a, &b, &z];
        assert_eq!(
            topics.room(three, Some(&stranger), &cap(2)),
            Err(Full::Table(2))
        );
        assert_eq!(
            topics.room(three, None, &cap(2)),
            Ok(()),
            "publishers: twice"
        );
    }

    #[test]
    fn a_strangers_topic_counts_until_it_goes_or_is_published_to() {
        let t0 = Instant::now();
        let mut topics = Topics::default();
        let maker = Maker::new(conn(1), None);
        let wants = vec![
            (TopicKey::Channel("a".into()), Start::New),
            (TopicKey::Channel("b".into()), Start::New),
        ];
        topics.subscribe_all(maker, wants, Framing::Sse, true, &cfg(), t0);
        assert_eq!(topics.made_by_conn(conn(1)), 2);
        topics.publish_at(TopicKey::Channel("a".into()), t0);
        assert_eq!(topics.made_by_conn(conn(1)), 1, "a is the publisher's now");
        topics.unsubscribe(conn(1));
        assert_eq!(topics.made_by_conn(conn(1)), 0, "b went away");
        assert_eq!(topics.counts().channels, 1);
    }
}
