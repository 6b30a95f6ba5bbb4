//! The message buffer of one topic (a channel or a hub client's mailbox): the
//! latest messages, bounded by count and age, each with an id that increases
//! by one within the topic. It answers "what came after id N", including the
//! range that was lost when N is older than what the buffer still holds. Pure
//! data over a passed-in `now`; it knows nothing of connections or framings.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

/// One buffered message.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The id, increasing by one within the topic from 1.
    pub id: u64,
    /// When it was published.
    pub at: Instant,
    /// What was published.
    pub body: Body,
}

/// What a message carries.
#[derive(Debug, Clone)]
pub enum Body {
    /// A channel message: the published bytes.
    Channel(Vec<u8>),
    /// A notification in a mailbox: the application it is for, and its data
    /// as JSON checked when it was posted.
    Notification {
        /// The application whose handler in the browser receives it.
        app: String,
        /// The payload.
        data: Box<RawValue>,
    },
}

/// Ids `from..=to` left the buffer before the subscriber read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The first lost id.
    pub from: u64,
    /// The last lost id.
    pub to: u64,
}

/// The latest messages of a topic.
#[derive(Debug, Default)]
pub struct Buffer {
    entries: VecDeque<Entry>,
    last_id: u64,
    dropped_through: u64,
}

impl Buffer {
    /// An empty buffer whose first message gets id `id + 1`, for a topic made
    /// anew after topics were evicted: ids `1..=id` count as lost, so a
    /// subscriber resuming from the topic's earlier life hears of its loss.
    pub fn starting_after(id: u64) -> Self {
        Buffer {
            entries: VecDeque::new(),
            last_id: id,
            dropped_through: id,
        }
    }

    /// The id of the newest message ever published here (0: none yet).
    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// True when no message is buffered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends a message, drops the oldest beyond `max_len`, and returns it.
    pub fn push(&mut self, now: Instant, body: Body, max_len: usize) -> &Entry {
        self.last_id += 1;
        self.entries.push_back(Entry {
            id: self.last_id,
            at: now,
            body,
        });
        while self.entries.len() > max_len.max(1) {
            self.drop_oldest();
        }
        let newest = self.entries.len() - 1;
        &self.entries[newest]
    }

    /// Drops messages older than `max_age`.
    pub fn expire(&mut self, now: Instant, max_age: Duration) {
        while self
            .entries
            .front()
            .is_some_and(|e| now.saturating_duration_since(e.at) > max_age)
        {
            self.drop_oldest();
        }
    }

    fn drop_oldest(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.dropped_through = e.id;
        }
        if self.entries.is_empty() {
            self.entries = VecDeque::new();
        }
    }

    /// What a subscriber that has read through `since` missed: the lost range,
    /// if any, and the buffered messages after `since`, oldest first. A
    /// `since` beyond the newest id comes from an earlier life of the topic
    /// (the server restarted or the topic was dropped while empty), so the
    /// whole buffer is replayed.
    pub fn after(&self, since: u64) -> (Option<Gap>, impl Iterator<Item = &Entry>) {
        let since = if since > self.last_id { 0 } else { since };
        let gap = (since < self.dropped_through).then_some(Gap {
            from: since + 1,
            to: self.dropped_through,
        });
        let start = self.entries.partition_point(|e| e.id <= since);
        (gap, self.entries.range(start..))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(buf: &Buffer, since: u64) -> (Option<Gap>, Vec<u64>) {
        let (gap, entries) = buf.after(since);
        (gap, entries.map(|e| e.id).collect())
    }

    #[test]
    fn replays_after_since_and_names_the_gap() {
        let now = Instant::now();
        let mut buf = Buffer::default();
        for i in 0..5u8 {
            buf.push(now, Body::Channel(vec![i]), 3);
        }
        assert_eq!(ids(&buf, 4), (None, vec![5]));
        assert_eq!(ids(&buf, 2), (None, vec![3, 4, 5]));
        assert_eq!(ids(&buf, 0), (Some(Gap { from: 1, to: 2 }), vec![3, 4, 5]));
        assert_eq!(ids(&buf, 9), (Some(Gap { from: 1, to: 2 }), vec![3, 4, 5]));
    }

    #[test]
    fn a_buffer_made_after_eviction_reports_the_earlier_ids_as_lost() {
        let now = Instant::now();
        let mut buf = Buffer::starting_after(7);
        assert_eq!(buf.push(now, Body::Channel(vec![]), 10).id, 8);
        assert_eq!(ids(&buf, 3), (Some(Gap { from: 4, to: 7 }), vec![8]));
        assert_eq!(ids(&buf, 7), (None, vec![8]));
    }

    #[test]
    fn expires_by_age() {
        let start = Instant::now();
        let mut buf = Buffer::default();
        buf.push(start, Body::Channel(vec![]), 10);
        buf.push(start + Duration::from_secs(5), Body::Channel(vec![]), 10);
        buf.expire(start + Duration::from_secs(8), Duration::from_secs(4));
        assert_eq!(ids(&buf, 0), (Some(Gap { from: 1, to: 1 }), vec![2]));
        assert_eq!(buf.last_id(), 2);
    }
}
