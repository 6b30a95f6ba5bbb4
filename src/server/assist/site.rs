//! One site's state: its routing, its console event stream (ids, a replay
//! buffer, the held SSE and long-poll connections), which representatives
//! hold consoles, its canned texts, push allowlist and skills, and what its
//! visitors have beyond the registry (current chat, card, invitation).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde_json::{json, Value};

use super::input::visitor_text;
use super::routing::Routing;
use super::store::{Canned, Settings};
use super::AssistConfig;
use crate::{ConnId, Cx, Framing, Hold, Message};

/// Console events each site keeps for resuming streams.
pub const REPLAY: usize = 1000;
/// Chat lines kept per open chat (shown to whoever takes it over).
pub const TRANSCRIPT: usize = 50;

/// One site.
#[derive(Debug)]
pub struct Site {
    /// The site (group) name.
    pub name: Arc<str>,
    /// Who gets which visitor.
    pub routing: Routing<u128>,
    seq: u64,
    events: VecDeque<(u64, Arc<str>)>,
    sse: HashSet<ConnId>,
    /// SSE consoles held back (their socket had too much unread): the last
    /// event id each was sent. See [`Site::catch_up`].
    behind: HashMap<ConnId, u64>,
    polls: HashSet<ConnId>,
    /// Held console streams per representative.
    rep_streams: HashMap<String, usize>,
    /// Representatives whose last stream closed, and when they count as gone.
    pub leaving: HashMap<String, u64>,
    /// Canned texts in id order.
    pub canned: Vec<Canned>,
    /// Origins a pushed URL may have besides the visitor page's own.
    pub allow: Vec<String>,
    /// Representatives' skills.
    pub skills: HashMap<String, Vec<String>>,
    /// Visitors of this site in the registry.
    pub visitors: usize,
    /// The open chats' recent lines.
    pub transcripts: HashMap<u128, VecDeque<Value>>,
    /// What each visitor's display space shows.
    pub cards: HashMap<u128, Value>,
    /// Invitations not yet answered: the inviting representative.
    pub invites: HashMap<u128, String>,
    /// The queue position each waiting visitor was last told.
    pub told: HashMap<u128, usize>,
    /// Returning visitors' earlier visits, latest first: (started, pages).
    pub earlier: HashMap<u128, Box<[(i64, i64)]>>,
    /// The queue changed since it was last announced.
    pub queue_dirty: bool,
    /// No queue announcement before this (service ms).
    pub queue_quiet_until: u64,
    /// The queue as last announced to the consoles (what a `queue` change
    /// is computed against).
    pub announced: Vec<u128>,
}

impl Site {
    /// A site with its stored settings (taken out of `settings`).
    pub fn new(name: Arc<str>, cfg: &AssistConfig, settings: &mut Settings) -> Site {
        Site {
            routing: Routing::new(
                cfg.chat_cap.max(1),
                cfg.answer_timeout.as_millis() as u64,
                cfg.max_queue,
            ),
            seq: 0,
            events: VecDeque::new(),
            sse: HashSet::new(),
            behind: HashMap::new(),
            polls: HashSet::new(),
            rep_streams: HashMap::new(),
            leaving: HashMap::new(),
            canned: settings.canned.remove(&*name).unwrap_or_default(),
            allow: settings.allow.remove(&*name).unwrap_or_default(),
            skills: settings.skills.remove(&*name).unwrap_or_default(),
            visitors: 0,
            transcripts: HashMap::new(),
            cards: HashMap::new(),
            invites: HashMap::new(),
            told: HashMap::new(),
            earlier: HashMap::new(),
            queue_dirty: false,
            queue_quiet_until: 0,
            announced: Vec::new(),
            name,
        }
    }

    /// The last event id.
    pub fn last_id(&self) -> u64 {
        self.seq
    }

    /// Sends an event to every console of the site and keeps it for replay.
    pub fn emit<M: Send + 'static>(&mut self, mut event: Value, cx: &mut Cx<'_, M>) {
        self.catch_up(cx);
        self.seq += 1;
        event["id"] = json!(self.seq);
        let text: Arc<str> = Arc::from(event.to_string());
        if self.events.len() >= REPLAY {
            self.events.pop_front();
        }
        self.events.push_back((self.seq, text.clone()));
        if !self.sse.is_empty() {
            self.hold_back_laggards(text.len(), cx);
            let msg = Message::data(text.as_bytes()).with_id(self.seq.to_string());
            cx.broadcast(&self.sse, &msg);
        }
        if !self.polls.is_empty() {
            let msg = Message::data(format!("{text}\n")).with_id(self.seq.to_string());
            cx.broadcast(&self.polls, &msg);
            // Each long-poll answered; the engine releases them.
            self.polls.clear();
        }
    }

    /// SSE consoles whose unread output would pass half the engine's
    /// slow-consumer limit with `len` more bytes stop getting events (they
    /// would be closed otherwise); [`Site::catch_up`] resumes them.
    fn hold_back_laggards<M: Send + 'static>(&mut self, len: usize, cx: &mut Cx<'_, M>) {
        let room = cx.max_backlog() / 2;
        let last = self.seq - 1;
        let behind = &mut self.behind;
        self.sse.retain(|conn| match cx.backlog(*conn) {
            Some(b) if b + len + 64 > room => {
                behind.insert(*conn, last);
                false
            }
            _ => true,
        });
    }

    /// Once per tick: a held-back console whose socket took its backlog
    /// gets the events it missed from the replay buffer when they fit in a
    /// quarter of the slow-consumer limit, else one `resync` event (the
    /// console starts over from a snapshot); then it follows again.
    pub fn catch_up<M: Send + 'static>(&mut self, cx: &mut Cx<'_, M>) {
        if self.behind.is_empty() {
            return;
        }
        let budget = cx.max_backlog() / 4;
        let drained: Vec<(ConnId, u64)> = self.behind.iter().map(|(c, l)| (*c, *l)).collect();
        for (conn, last) in drained {
            match cx.backlog(conn) {
                None => {
                    self.behind.remove(&conn);
                    continue;
                }
                Some(b) if b > 0 => continue,
                Some(_) => {}
            }
            self.behind.remove(&conn);
            let missed = self
                .replay(last)
                .filter(|evs| evs.iter().map(|(_, t)| t.len() + 32).sum::<usize>() <= budget);
            let sent = match missed {
                Some(evs) => evs.iter().all(|(id, text)| {
                    let msg = Message::data(text.as_bytes()).with_id(id.to_string());
                    cx.push(conn, &msg).is_ok()
                }),
                // No id: a reconnect still resumes from what it last had.
                None => {
                    let ev = json!({"type": "resync", "last": self.seq}).to_string();
                    cx.push(conn, &Message::data(ev)).is_ok()
                }
            };
            if sent {
                self.sse.insert(conn);
            }
        }
    }

    /// The events after `since`, if the buffer still holds all of them.
    pub fn replay(&self, since: u64) -> Option<Vec<(u64, Arc<str>)>> {
        if since > self.seq {
            return None;
        }
        let first = self.events.front().map_or(self.seq + 1, |(id, _)| *id);
        if since + 1 < first {
            return None;
        }
        Some(
            self.events
                .iter()
                .filter(|(id, _)| *id > since)
                .cloned()
                .collect(),
        )
    }

    /// Makes the hold of a new console stream with its first events
    /// (`(id, json)` pairs).
    pub fn hold_stream(
        &mut self,
        conn: ConnId,
        framing: Framing,
        first: Vec<(u64, Arc<str>)>,
        timeout: std::time::Duration,
    ) -> Hold {
        let mut hold = match framing {
            Framing::Sse => Hold::sse(),
            _ => Hold::new(Framing::LongPoll)
                .with_content_type("application/x-ndjson")
                .with_timeout(timeout),
        }
        .with_header("Cache-Control", "no-store");
        for (id, text) in first {
            let data = if framing == Framing::Sse {
                text.as_bytes().to_vec()
            } else {
                format!("{text}\n").into_bytes()
            };
            hold = hold.with_initial(Message::data(data).with_id(id.to_string()));
        }
        if framing == Framing::Sse {
            self.sse.insert(conn);
        } else if hold.initial.is_empty() {
            self.polls.insert(conn);
        }
        hold
    }

    /// `rep` holds one more stream; true when they were not present before.
    pub fn stream_opened(&mut self, rep: &str) -> bool {
        self.leaving.remove(rep);
        let n = self.rep_streams.entry(rep.to_string()).or_insert(0);
        *n += 1;
        !self.routing.reps().get(rep).is_some_and(|r| r.present)
    }

    /// A stream of `rep` ended; with none left they leave at `deadline`.
    pub fn stream_gone(&mut self, conn: ConnId, rep: &str, deadline: u64) {
        self.sse.remove(&conn);
        self.behind.remove(&conn);
        self.polls.remove(&conn);
        if let Some(n) = self.rep_streams.get_mut(rep) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.rep_streams.remove(rep);
                self.leaving.insert(rep.to_string(), deadline);
            }
        }
    }

    /// Representatives whose grace ran out by `now`.
    pub fn gone_by(&mut self, now: u64) -> Vec<String> {
        let gone: Vec<String> = self
            .leaving
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(rep, _)| rep.clone())
            .collect();
        for rep in &gone {
            self.leaving.remove(rep);
        }
        gone
    }

    /// A representative as the console sees them.
    pub fn rep_json(&self, name: &str, epoch_wall: i64) -> Value {
        let r = self.routing.reps().get(name).cloned().unwrap_or_default();
        json!({
            "name": name,
            "present": r.present,
            "away": r.away,
            "available": self.routing.available(name),
            "chats": r.load,
            "skills": self.skills.get(name).cloned().unwrap_or_default(),
            "idle_since": epoch_wall + r.idle_since as i64,
        })
    }

    /// Adds a line to a visitor's chat transcript.
    pub fn remember(&mut self, visitor: u128, line: Value) {
        let lines = self.transcripts.entry(visitor).or_default();
        if lines.len() >= TRANSCRIPT {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The console event for the queue moving from `announced` to `queue`:
    /// the ids that left, the ids that joined with their new index, and the
    /// length, so its bytes follow the change, not the queue. Whole
    /// (`queue`) only when kept entries changed order or the change is
    /// no smaller.
    pub fn queue_event(&mut self, queue: Vec<u128>) -> Value {
        let old: HashSet<u128> = self.announced.iter().copied().collect();
        let new: HashSet<u128> = queue.iter().copied().collect();
        let kept_old = self.announced.iter().filter(|v| new.contains(v));
        let kept_new = queue.iter().filter(|v| old.contains(v));
        let removed: Vec<String> = (self.announced.iter())
            .filter(|v| !new.contains(v))
            .map(|v| visitor_text(*v))
            .collect();
        let added: Vec<Value> = (queue.iter().enumerate())
            .filter(|(_, v)| !old.contains(v))
            .map(|(i, v)| json!([i, visitor_text(*v)]))
            .collect();
        let length = queue.len();
        let ev = if kept_old.eq(kept_new) && removed.len() + added.len() < length.max(1) {
            json!({"type": "queue", "removed": removed, "added": added, "length": length})
        } else {
            let ids: Vec<String> = queue.iter().map(|v| visitor_text(*v)).collect();
            json!({"type": "queue", "queue": ids, "length": length})
        };
        self.announced = queue;
        ev
    }

    /// The canned texts as JSON.
    pub fn canned_json(&self) -> Value {
        Value::Array(self.canned.iter().map(Canned::json).collect())
    }
}
