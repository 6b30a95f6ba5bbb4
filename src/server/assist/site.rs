//! One site's state: its routing, its console event stream (ids, a replay
//! buffer, the held SSE and long-poll connections), which representatives
//! hold consoles, its canned texts, push allowlist and skills, and what its
//! visitors have beyond the registry (current chat, card, invitation).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde_json::{json, Value};

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
            name,
        }
    }

    /// The last event id.
    pub fn last_id(&self) -> u64 {
        self.seq
    }

    /// Sends an event to every console of the site and keeps it for replay.
    pub fn emit<M: Send + 'static>(&mut self, mut event: Value, cx: &mut Cx<'_, M>) {
        self.seq += 1;
        event["id"] = json!(self.seq);
        let text: Arc<str> = Arc::from(event.to_string());
        if self.events.len() >= REPLAY {
            self.events.pop_front();
        }
        self.events.push_back((self.seq, text.clone()));
        if !self.sse.is_empty() {
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

    /// The canned texts as JSON.
    pub fn canned_json(&self) -> Value {
        Value::Array(self.canned.iter().map(Canned::json).collect())
    }
}
