//! The in-memory presence tables of the patent: the UserTable (the dynamic
//! session information of each online user), the GroupTable (the online
//! members of each group), the index of who watches what (each online user's
//! active group), and each logged-in user's bounded event queue. No I/O: the
//! caller pushes what these decide.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::directory::{Directory, CONTACTS};
use crate::{ConnId, Framing, Message};

/// What an online user's page displays, and so whose presence it hears of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// The address book of this user.
    Book(String),
    /// A named group.
    Group(String),
    /// One user (a requestor on that user's communications page).
    User(String),
}

impl Target {
    /// The target of `user` whose active group is `active`.
    pub fn of_active(user: &str, active: &str) -> Target {
        if active == CONTACTS {
            Target::Book(user.to_string())
        } else {
            Target::Group(active.to_string())
        }
    }
}

/// How an online user's held pipe is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A held stream: `msg TYPE JSON` lines (chunked) or SSE.
    Stream(Framing),
    /// Long-poll: `pending` while a poll waits; `idle_since` when the last ended.
    Poll {
        /// A poll is waiting on `conn`.
        pending: bool,
        /// When the last poll ended.
        idle_since: Instant,
        /// How long a silent client stays online between polls.
        grace: Duration,
    },
}

/// One UserTable row: the dynamic session information of an online user.
#[derive(Debug, Clone)]
pub struct Online {
    /// The held connection (or the waiting poll).
    pub conn: ConnId,
    /// Its framing.
    pub mode: Mode,
    /// The user's IP address.
    pub ip: String,
    /// The client's TCP port.
    pub port: u16,
    /// The host box identifier: this session manager's node id.
    pub node: String,
    /// The session id.
    pub sid: String,
    /// The groups the user belongs to (the patent's Group Info).
    pub groups: Vec<String>,
    /// What the user's page shows (the patent's Active Group).
    pub target: Target,
    /// Unix time the user came online.
    pub since: i64,
    /// A guest (unregistered requestor).
    pub guest: bool,
    /// The pipe takes batched `updates` and `resync` (`/jchat?v=2`) rather
    /// than single `update` events.
    pub batched: bool,
}

impl Online {
    /// The fields of this row that watchers may see (never the session id or
    /// the IP address).
    pub fn public(&self, user: &str) -> Value {
        json!({
            "user": user,
            "name": user,
            "online": true,
            "node": self.node,
            "since": self.since,
            "guest": self.guest,
        })
    }
}

/// The UserTable, the GroupTable and the watch index.
#[derive(Debug, Default)]
pub struct UserTable {
    rows: HashMap<String, Online>,
    by_conn: HashMap<ConnId, String>,
    /// The GroupTable: online members of each group with any online.
    group_online: HashMap<String, BTreeSet<String>>,
    watching: HashMap<Target, BTreeSet<String>>,
}

impl UserTable {
    /// The row of `user`, if online.
    pub fn get(&self, user: &str) -> Option<&Online> {
        self.rows.get(user)
    }

    /// The row of `user`, mutable.
    pub fn get_mut(&mut self, user: &str) -> Option<&mut Online> {
        self.rows.get_mut(user)
    }

    /// True when `user` is online.
    pub fn is_online(&self, user: &str) -> bool {
        self.rows.contains_key(user)
    }

    /// `user`'s name as the table holds it, if online.
    pub fn online_name(&self, user: &str) -> Option<&String> {
        self.rows.get_key_value(user).map(|(name, _)| name)
    }

    /// The user whose pipe is `conn`.
    pub fn user_of(&self, conn: ConnId) -> Option<&String> {
        self.by_conn.get(&conn)
    }

    /// All online users.
    pub fn users(&self) -> impl Iterator<Item = (&String, &Online)> {
        self.rows.iter()
    }

    /// The online members of `group`.
    pub fn online_in(&self, group: &str) -> Option<&BTreeSet<String>> {
        self.group_online.get(group)
    }

    /// Records `user` as online with `row` (replacing any row), adding them to
    /// the GroupTable for `groups`. Returns the replaced row.
    pub fn insert(&mut self, user: &str, row: Online, groups: &[String]) -> Option<Online> {
        let old = self.remove(user, groups);
        self.by_conn.insert(row.conn, user.to_string());
        self.watch(user, &row.target);
        for g in groups {
            self.group_online
                .entry(g.clone())
                .or_default()
                .insert(user.to_string());
        }
        self.rows.insert(user.to_string(), row);
        old
    }

    /// Points `user`'s row at a new connection (a new poll).
    pub fn set_conn(&mut self, user: &str, conn: ConnId) {
        if let Some(row) = self.rows.get_mut(user) {
            self.by_conn.remove(&row.conn);
            row.conn = conn;
            self.by_conn.insert(conn, user.to_string());
        }
    }

    /// Forgets a connection that is no longer `user`'s pipe.
    pub fn forget_conn(&mut self, conn: ConnId) {
        self.by_conn.remove(&conn);
    }

    /// Removes `user` (going offline); returns the row.
    pub fn remove(&mut self, user: &str, groups: &[String]) -> Option<Online> {
        let row = self.rows.remove(user)?;
        self.by_conn.remove(&row.conn);
        self.unwatch(user, &row.target);
        for g in groups {
            if let Some(set) = self.group_online.get_mut(g) {
                set.remove(user);
                if set.is_empty() {
                    self.group_online.remove(g);
                }
            }
        }
        Some(row)
    }

    /// Changes what `user` watches.
    pub fn retarget(&mut self, user: &str, target: Target) {
        let Some(old) = self.rows.get(user).map(|r| r.target.clone()) else {
            return;
        };
        self.unwatch(user, &old);
        self.watch(user, &target);
        if let Some(row) = self.rows.get_mut(user) {
            row.target = target;
        }
    }

    /// Adds or drops `user` in the GroupTable row of `group`.
    pub fn group_member(&mut self, group: &str, user: &str, member: bool) {
        let Some(row) = self.rows.get_mut(user) else {
            return;
        };
        row.groups.retain(|g| g != group);
        if member {
            row.groups.push(group.to_string());
        }
        if member {
            self.group_online
                .entry(group.to_string())
                .or_default()
                .insert(user.to_string());
        } else if let Some(set) = self.group_online.get_mut(group) {
            set.remove(user);
        }
    }

    /// The online users watching `target`.
    pub fn watchers(&self, target: &Target) -> impl Iterator<Item = &String> {
        self.watching.get(target).into_iter().flatten()
    }

    /// The targets, watched by someone, whose watchers hear of `user`: the
    /// address books that list them, their groups, and their own page.
    pub fn targets_of(&self, dir: &Directory, user: &str) -> Vec<Target> {
        let mut targets = vec![Target::User(user.to_string())];
        if let Some(owners) = dir.contact_of.get(user) {
            targets.extend(owners.iter().map(|o| Target::Book(o.clone())));
        }
        if let Some(groups) = dir.groups_of.get(user) {
            targets.extend(groups.iter().map(|g| Target::Group(g.clone())));
        }
        targets.retain(|t| self.watching.contains_key(t));
        targets
    }

    /// The online users whose displayed group contains `user`: owners of
    /// address books that list them, members watching one of their groups,
    /// and requestors on their page. Never `user` themself.
    pub fn watchers_of(&self, dir: &Directory, user: &str) -> BTreeSet<String> {
        self.targets_of(dir, user)
            .iter()
            .flat_map(|t| self.watchers(t))
            .filter(|w| *w != user)
            .cloned()
            .collect()
    }

    fn watch(&mut self, user: &str, target: &Target) {
        self.watching
            .entry(target.clone())
            .or_default()
            .insert(user.to_string());
    }

    fn unwatch(&mut self, user: &str, target: &Target) {
        if let Some(set) = self.watching.get_mut(target) {
            set.remove(user);
            if set.is_empty() {
                self.watching.remove(target);
            }
        }
    }
}

/// The JSON of a queued event.
#[derive(Debug, Clone)]
pub enum Body {
    /// This user's own payload, `seq` included.
    Own(String),
    /// A payload encoded once for every watcher it goes to: a JSON object
    /// without `seq`, which each watcher's copy gets in front.
    Shared(Arc<str>),
}

/// One queued event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its sequence number in the user's queue.
    pub seq: u64,
    /// The event type (`update`, `updates`, `chat`, ...).
    pub kind: &'static str,
    /// The JSON payload, which carries `seq` too.
    pub body: Body,
}

impl Event {
    /// An event with its own payload (which must carry `seq` already).
    pub fn own(seq: u64, kind: &'static str, json: String) -> Event {
        Event {
            seq,
            kind,
            body: Body::Own(json),
        }
    }

    /// The JSON payload with `seq`.
    pub fn json(&self) -> String {
        match &self.body {
            Body::Own(json) => json.clone(),
            Body::Shared(rest) => with_seq(self.seq, rest),
        }
    }

    /// The `msg TYPE JSON` line of the patent.
    pub fn line(&self) -> String {
        format!("msg {} {}\n", self.kind, self.json())
    }

    /// The event as `framing` carries it.
    pub fn message(&self, framing: Framing) -> Message {
        match framing {
            Framing::Sse => Message::data(self.json())
                .with_id(self.seq.to_string())
                .with_event(self.kind),
            _ => Message::data(self.line()).with_id(self.seq.to_string()),
        }
    }
}

/// `{"seq":N,` in front of the members of a JSON object.
fn with_seq(seq: u64, object: &str) -> String {
    let members = object.strip_prefix('{').unwrap_or(object);
    let sep = if members.starts_with('}') { "" } else { "," };
    format!("{{\"seq\":{seq}{sep}{members}")
}

/// A user's bounded event queue, numbered from 1 (the events of their
/// `/jchat` pipe, for catch-up after a reconnect).
#[derive(Debug)]
pub struct EventQueue {
    last: u64,
    events: VecDeque<Event>,
    cap: usize,
    /// The presence-change stamp the user's view was last synced to (by a
    /// `resync`): changes up to it are already in that view.
    pub synced: u64,
}

/// What a client asking for events after `since` gets.
#[derive(Debug, Default)]
pub struct Catchup {
    /// `(from, to)`: events in this range were dropped by the bounded queue.
    pub gap: Option<(u64, u64)>,
    /// The events still queued after `since`.
    pub events: Vec<Event>,
}

impl EventQueue {
    /// An empty queue holding at most `cap` events.
    pub fn new(cap: usize) -> Self {
        EventQueue {
            last: 0,
            events: VecDeque::new(),
            cap: cap.max(1),
            synced: 0,
        }
    }

    /// The sequence number of the newest event.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Queues an event; the oldest drops out when full.
    pub fn push(&mut self, kind: &'static str, mut payload: Value) -> Event {
        self.last += 1;
        if let Value::Object(map) = &mut payload {
            map.insert("seq".into(), json!(self.last));
        }
        self.push_event(Event::own(self.last, kind, payload.to_string()))
    }

    /// Queues an event whose payload is shared with other users' queues.
    pub fn push_shared(&mut self, kind: &'static str, payload: &Arc<str>) -> Event {
        self.last += 1;
        self.push_event(Event {
            seq: self.last,
            kind,
            body: Body::Shared(Arc::clone(payload)),
        })
    }

    fn push_event(&mut self, event: Event) -> Event {
        if self.events.len() == self.cap {
            self.events.pop_front();
        }
        self.events.push_back(event.clone());
        event
    }

    /// The events after `since`, and the range lost if the queue overflowed.
    pub fn after(&self, since: u64) -> Catchup {
        let since = since.min(self.last);
        let first = self.events.front().map_or(self.last + 1, |e| e.seq);
        let gap = (since + 1 < first).then(|| (since + 1, first - 1));
        let events = self
            .events
            .iter()
            .filter(|e| e.seq > since)
            .cloned()
            .collect();
        Catchup { gap, events }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_numbers_events_and_reports_what_overflowed() {
        let mut queue = EventQueue::new(3);
        for i in 0..5 {
            queue.push("chat", json!({ "i": i }));
        }
        assert_eq!(queue.last(), 5);
        let found = queue.after(0);
        assert_eq!(found.gap, Some((1, 2)));
        let seqs: Vec<u64> = found.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert!(found.events[0].json().contains("\"seq\":3"));
        let found = queue.after(3);
        assert_eq!(found.gap, None);
        assert_eq!(found.events.len(), 2);
        assert!(queue.after(5).events.is_empty());
        assert!(
            queue.after(99).events.is_empty(),
            "a future since is clamped"
        );
        let shared: Arc<str> = Arc::from(r#"{"online":["a"]}"#);
        let event = queue.push_shared("updates", &shared);
        assert_eq!(event.json(), r#"{"seq":6,"online":["a"]}"#);
        assert_eq!(event.line(), "msg updates {\"seq\":6,\"online\":[\"a\"]}\n");
        let empty: Arc<str> = Arc::from("{}");
        assert_eq!(queue.push_shared("x", &empty).json(), r#"{"seq":7}"#);
    }

    #[test]
    fn watchers_are_those_whose_active_group_holds_the_user() {
        let mut dir = Directory::default();
        dir.groups.insert("team".into(), Default::default());
        dir.join("team", "bob");
        dir.join("team", "carol");
        dir.add_contact("alice", "bob");
        let mut table = UserTable::default();
        let row = |user: &str, target: Target| Online {
            conn: ConnId { key: 0, gen: 0 },
            mode: Mode::Stream(Framing::Chunked),
            ip: String::new(),
            port: 0,
            node: "n".into(),
            sid: user.into(),
            groups: Vec::new(),
            target,
            since: 0,
            guest: false,
            batched: false,
        };
        table.insert("alice", row("alice", Target::Book("alice".into())), &[]);
        table.insert("carol", row("carol", Target::Group("team".into())), &[]);
        table.insert("dave", row("dave", Target::Book("dave".into())), &[]);
        let watchers: Vec<String> = table.watchers_of(&dir, "bob").into_iter().collect();
        assert_eq!(watchers, ["alice", "carol"]);
        table.retarget("alice", Target::Group("other".into()));
        let watchers: Vec<String> = table.watchers_of(&dir, "bob").into_iter().collect();
        assert_eq!(watchers, ["carol"]);
        assert!(table.watchers_of(&dir, "carol").is_empty(), "never oneself");
        let targets = table.targets_of(&dir, "bob");
        assert_eq!(
            targets,
            [Target::Group("team".into())],
            "only targets someone watches"
        );
    }
}
