//! Presence propagation: a user's change is noted against every target whose
//! watchers must hear of it (the [`Coalescer`]), and what is due goes out per
//! target: one `updates` event, encoded once and shared by every watcher
//! that asked for batches (`/jchat?v=2`), or the old single `update` events
//! (the patent's `msg update` lines) for the others. A watcher's view is
//! rebuilt with `resync` pages of the target's online set when its pipe opens
//! (batched pipes), when it fell behind its bounded queue, or when a tab
//! sharing the pipe asks (`POST /resync`). A group's batches name members by
//! roster index ([`super::roster`]) and its `resync` is the online bits. A small alarm
//! thread wakes the engine thread when a held-back batch is due.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::answers::{error, json};
use super::caller::Caller;
use super::coalesce::Change;
use super::ids;
use super::pipe::send;
use super::roster::{gaps, Roster};
use super::table::{Event, EventQueue, Target};
use super::Presence;
use crate::server::alarm::Alarm;
use crate::server::{Job, ServerRouter};
use crate::{Cx, Reply};

/// Most names in one `resync` page.
pub const RESYNC_PAGE: usize = 1000;

impl Presence {
    /// Notes `user`'s presence now (online with their row, or offline) for
    /// every target whose watchers hear of them. Send it with
    /// [`Presence::flush_due`].
    pub(super) fn note_change(&mut self, user: &str, was_online: bool) {
        let stamp = self.coalescer.next_stamp();
        let change = match self.table.get(user) {
            Some(row) => Change {
                online: true,
                node: row.node.clone(),
                since: row.since,
                guest: row.guest,
                stamp,
                first: stamp,
                was_online,
            },
            None => Change {
                online: false,
                node: self.node.clone(),
                since: 0,
                guest: false,
                stamp,
                first: stamp,
                was_online,
            },
        };
        if let Some(groups) = self.dir.groups_of.get(user) {
            for g in groups {
                self.rosters.set_online(g, user, change.online);
            }
        }
        let now = Instant::now();
        for target in self.table.targets_of(&self.dir, user) {
            self.coalescer.note(&target, user, change.clone(), now);
        }
    }

    /// Sends every batch that is due, and arms the alarm for the next.
    pub(super) fn flush_due(&mut self, cx: &mut Cx<'_, Job>) {
        for (target, batch) in self.coalescer.take_due(Instant::now()) {
            let started = Instant::now();
            let watchers = self.send_batch(cx, &target, &batch.changes);
            let done = Instant::now();
            log::debug!(
                "presence: {} changes to {watchers} watchers of {target:?} in {:?}",
                batch.changes.len(),
                done - started
            );
            self.coalescer.sent(&target, done, done - started);
        }
        self.arm_alarm(cx);
    }

    /// The alarm rang: a held-back batch is due.
    pub(super) fn on_alarm(&mut self, cx: &mut Cx<'_, Job>) {
        self.alarm_at = None;
        self.flush_due(cx);
    }

    fn arm_alarm(&mut self, cx: &mut Cx<'_, Job>) {
        let Some(due) = self.coalescer.next_due() else {
            return;
        };
        if self.alarm_at.is_some_and(|at| at <= due) {
            return;
        }
        if self.alarm.is_none() {
            let on_alarm = |r: &mut ServerRouter, cx: &mut Cx<'_, Job>| r.presence.on_alarm(cx);
            match Alarm::start("altsock-presence-alarm", cx.handle(), on_alarm) {
                Ok(alarm) => self.alarm = Some(alarm),
                Err(e) => {
                    log::error!("presence: no alarm thread ({e}); sending batches at once");
                    return self.flush_now(cx);
                }
            }
        }
        if let Some(alarm) = &self.alarm {
            if alarm.set(due) {
                self.alarm_at = Some(due);
            }
        }
    }

    /// Sends everything pending, due or not (no alarm thread).
    fn flush_now(&mut self, cx: &mut Cx<'_, Job>) {
        let far = Instant::now() + std::time::Duration::from_secs(3600);
        for (target, batch) in self.coalescer.take_due(far) {
            let _ = self.send_batch(cx, &target, &batch.changes);
        }
    }

    /// Sends one target's changes to its watchers: one shared `updates`
    /// event to batched pipes, single `update` events to the others. A
    /// watcher never hears a change its last `resync` already held; a
    /// batched one never hears of a user whose state is, net, what it was
    /// before the batch (online and offline again within the window). A
    /// group's `updates` name its members by roster index.
    /// Returns how many watchers it reached.
    fn send_batch(
        &mut self,
        cx: &mut Cx<'_, Job>,
        target: &Target,
        changes: &[(String, Change)],
    ) -> usize {
        if self.table.watchers(target).next().is_none() {
            return 0;
        }
        let count = self.online_count(target);
        let first = changes.iter().map(|(_, c)| c.first).min().unwrap_or(0);
        let indices = self.roster_indices(target, changes);
        let (node, epoch) = (self.node.clone(), self.rosters.epoch().to_string());
        let encode = |picked: Vec<usize>| match &indices {
            Some(ix) => updates_indexed(
                picked.iter().map(|&k| (ix[k], &changes[k].1)),
                count,
                &node,
                &epoch,
            ),
            None => updates_json(picked.iter().map(|&k| &changes[k]), count, &node),
        };
        let mut shared: Option<Arc<str>> = None;
        let mut reached = 0;
        // The watchers are borrowed from the table while their queues (a
        // field of their own) change: no copy of 10,000 names per batch.
        for w in self.table.watchers(target) {
            let (Some(row), Some(queue)) = (self.table.get(w), self.queues.get_mut(w)) else {
                continue;
            };
            reached += 1;
            let synced = queue.synced;
            if !row.batched {
                for (user, change) in changes {
                    if user != w && change.stamp > synced {
                        let event = queue.push("update", single_update(user, change));
                        send(cx, row, &event);
                    }
                }
                continue;
            }
            let payload = if synced < first {
                let net: Vec<usize> = (0..changes.len())
                    .filter(|&k| changes[k].1.changed())
                    .collect();
                if net.is_empty() {
                    continue;
                }
                shared.get_or_insert_with(|| encode(net)).clone()
            } else {
                // Synced during the window: what its resync did not hold.
                let fresh: Vec<usize> = (0..changes.len())
                    .filter(|&k| {
                        let c = &changes[k].1;
                        c.stamp > synced && (c.first <= synced || c.changed())
                    })
                    .collect();
                if fresh.is_empty() {
                    continue;
                }
                encode(fresh)
            };
            let event = queue.push_shared("updates", &payload);
            send(cx, row, &event);
        }
        reached
    }

    /// The roster index of each changed user, for a group target.
    fn roster_indices(
        &mut self,
        target: &Target,
        changes: &[(String, Change)],
    ) -> Option<Vec<u32>> {
        let Target::Group(g) = target else {
            return None;
        };
        let roster = self.roster_of(g);
        Some(changes.iter().map(|(u, _)| roster.index(u)).collect())
    }

    /// `group`'s roster, numbered now if this is its first use.
    pub(super) fn roster_of(&mut self, group: &str) -> &mut Roster {
        let members = self.dir.groups.get(group).map(|r| &r.members);
        let table = &self.table;
        self.rosters
            .get_or_build(group, members.into_iter().flatten(), |u| table.is_online(u))
    }

    /// `user`'s roster index in `group`, if numbered.
    pub(super) fn roster_index(&self, group: &str, user: &str) -> Option<u32> {
        self.rosters.get(group).and_then(|r| r.find(user))
    }

    /// How many users of `target` are online.
    pub(super) fn online_count(&self, target: &Target) -> usize {
        match target {
            Target::Group(g) => self.table.online_in(g).map_or(0, |s| s.len()),
            Target::Book(owner) => self
                .dir
                .contacts
                .get(owner)
                .map_or(0, |c| c.iter().filter(|u| self.table.is_online(u)).count()),
            Target::User(u) => usize::from(self.table.is_online(u)),
        }
    }

    /// The online users of `target`, sorted.
    pub(super) fn online_of<'a>(&'a self, target: &Target) -> Vec<&'a String> {
        match target {
            Target::Group(g) => self.table.online_in(g).into_iter().flatten().collect(),
            Target::Book(owner) => self.dir.contacts.get(owner).map_or_else(Vec::new, |c| {
                c.iter().filter(|u| self.table.is_online(u)).collect()
            }),
            Target::User(u) => self.table.online_name(u).into_iter().collect(),
        }
    }

    /// The `resync` pages of what `user`'s page shows: the online set of
    /// their target, [`RESYNC_PAGE`] names a page. They are not queued: each
    /// goes with the queue's last `seq` as its id (SSE `id:`, the poll's
    /// `X-Altsock-Id`) but no `seq` of its own in the JSON, so a client that
    /// drops events by `seq` takes them all. Marks the user's view as synced
    /// to the latest change.
    pub(super) fn resync(&mut self, user: &str) -> Vec<Event> {
        let Some(target) = self.table.get(user).map(|r| r.target.clone()) else {
            return Vec::new();
        };
        let Some(seq) = self.queues.get(user).map(EventQueue::last) else {
            return Vec::new();
        };
        let events = match &target {
            Target::Group(g) => {
                let count = self.online_count(&target);
                let epoch = self.rosters.epoch().to_string();
                resync_bits(seq, g, &epoch, count, self.roster_of(g))
            }
            _ => resync_pages(seq, &target, &self.online_of(&target)),
        };
        let stamp = self.coalescer.stamp();
        if let Some(queue) = self.queues.get_mut(user) {
            queue.synced = stamp;
        }
        events
    }
}

impl Presence {
    /// After what `user`'s page shows changed: a batched pipe gets `resync`
    /// pages of the new view, queued like any event (a poll takes them too).
    /// Returns how many pages went.
    pub(super) fn resync_pipe(&mut self, cx: &mut Cx<'_, Job>, user: &str) -> usize {
        if !self.table.get(user).is_some_and(|r| r.batched) {
            return 0;
        }
        let pages = self.resync(user);
        let count = pages.len();
        for page in pages {
            let Some(queue) = self.queues.get_mut(user) else {
                return 0;
            };
            let payload: Value = serde_json::from_str(&page.json()).unwrap_or(Value::Null);
            let event = queue.push("resync", payload);
            if let Some(row) = self.table.get(user) {
                send(cx, row, &event);
            }
        }
        count
    }
}

impl Presence {
    /// `POST /resync`: sends a `resync` of the caller's view down their
    /// batched pipe, in order with its other events, so that every tab
    /// sharing the pipe (a follower tab that missed the one the pipe opened
    /// with) rebuilds its view. `409` without a batched pipe.
    pub(super) fn resync_request(&mut self, me: Caller, cx: &mut Cx<'_, Job>) -> Reply {
        if !self.table.get(&me.user).is_some_and(|r| r.batched) {
            return Reply::Respond(error(409, "no batched pipe (/jchat?v=2) is open"));
        }
        self.flush_due(cx);
        let pages = self.resync_pipe(cx, &me.user);
        Reply::Respond(json(200, serde_json::json!({ "resync": pages })))
    }
}

/// The pages of a group's `resync`: the online bits of its roster,
/// [`super::roster::BITS_PAGE`] indices a page (`from` the first), with the roster's
/// `epoch`, its `size` and the online `count`.
fn resync_bits(seq: u64, group: &str, epoch: &str, count: usize, roster: &Roster) -> Vec<Event> {
    let bit_pages = roster.bit_pages();
    let pages = bit_pages.len();
    let (group, epoch) = (Value::from(group), Value::from(epoch));
    bit_pages
        .into_iter()
        .enumerate()
        .map(|(p, (from, bits))| {
            let json = format!(
                "{{\"group\":{group},\"roster\":{epoch},\"page\":{},\"pages\":{pages},\"count\":{count},\"size\":{},\"from\":{from},\"bits\":\"{bits}\"}}",
                p + 1,
                roster.len(),
            );
            Event::own(seq, "resync", json)
        })
        .collect()
}

/// The pages of a `resync` by name (an address book or a user's page): at
/// least one, even for nobody online.
fn resync_pages<S: AsRef<str>>(seq: u64, target: &Target, online: &[S]) -> Vec<Event> {
    let pages = online.len().div_ceil(RESYNC_PAGE).max(1);
    let (kind, name) = match target {
        Target::Group(g) => ("group", g.as_str()),
        Target::Book(_) => ("group", super::directory::CONTACTS),
        Target::User(u) => ("user", u.as_str()),
    };
    let name = Value::from(name).to_string();
    (0..pages)
        .map(|p| {
            let names = &online
                [(p * RESYNC_PAGE).min(online.len())..((p + 1) * RESYNC_PAGE).min(online.len())];
            // Written straight out: a 10,000-name view is built at every
            // arrival in a storm, so no Value per name.
            let json = format!(
                "{{\"{kind}\":{name},\"page\":{},\"pages\":{pages},\"count\":{},\"online\":{}}}",
                p + 1,
                online.len(),
                names_json(names),
            );
            Event::own(seq, "resync", json)
        })
        .collect()
}

/// A JSON array of names.
fn names_json<S: AsRef<str>>(names: &[S]) -> String {
    let refs: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    serde_json::to_string(&refs).unwrap_or_else(|_| "[]".into())
}

/// The old single `update` payload.
fn single_update(user: &str, change: &Change) -> Value {
    if change.online {
        json!({
            "user": user, "name": user, "online": true,
            "node": change.node, "since": change.since, "guest": change.guest,
        })
    } else {
        json!({ "user": user, "name": user, "online": false })
    }
}

/// The shared payload of a group's `updates` event (without `seq`): the
/// roster indices that came online (`on`) and went offline (`off`), each
/// list ascending and given as gaps ([`gaps`]); the roster's `epoch`, the
/// group's online `count` after them, the `node` and the Unix time `at` of
/// the batch; an entry whose node is another's goes in `nodes` (by index).
fn updates_indexed<'a>(
    changes: impl Iterator<Item = (u32, &'a Change)>,
    count: usize,
    node: &str,
    epoch: &str,
) -> Arc<str> {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    let mut nodes = Map::new();
    for (i, change) in changes {
        if !change.online {
            off.push(i);
            continue;
        }
        on.push(i);
        if change.node != node {
            nodes.insert(i.to_string(), Value::from(change.node.clone()));
        }
    }
    on.sort_unstable();
    off.sort_unstable();
    let mut out = format!(
        "{{\"count\":{count},\"node\":{},\"at\":{},\"roster\":{}",
        Value::from(node),
        ids::unix_now(),
        Value::from(epoch),
    );
    for (key, list) in [("on", on), ("off", off)] {
        if !list.is_empty() {
            let text = serde_json::to_string(&gaps(&list)).unwrap_or_else(|_| "[]".into());
            out.push_str(&format!(",\"{key}\":{text}"));
        }
    }
    if !nodes.is_empty() {
        out.push_str(&format!(",\"nodes\":{}", Value::Object(nodes)));
    }
    out.push('}');
    Arc::from(out)
}

/// The shared payload of an `updates` event by name (without `seq`): the names that
/// came online and went offline, the target's online `count` after them,
/// the `node` and the Unix time `at` of the batch; `guests` lists the guests
/// among `online`; an entry whose node is another's goes in `nodes`.
fn updates_json<'a>(
    changes: impl Iterator<Item = &'a (String, Change)>,
    count: usize,
    node: &str,
) -> Arc<str> {
    let (mut online, mut offline, mut guests) = (Vec::new(), Vec::new(), Vec::new());
    let mut nodes = Map::new();
    for (user, change) in changes {
        if !change.online {
            offline.push(user.as_str());
            continue;
        }
        online.push(user.as_str());
        if change.guest {
            guests.push(user.as_str());
        }
        if change.node != node {
            nodes.insert(user.clone(), Value::from(change.node.clone()));
        }
    }
    let mut out = format!(
        "{{\"count\":{count},\"node\":{},\"at\":{}",
        Value::from(node),
        ids::unix_now()
    );
    for (key, list) in [("online", online), ("offline", offline), ("guests", guests)] {
        if !list.is_empty() {
            out.push_str(&format!(",\"{key}\":{}", names_json(&list)));
        }
    }
    if !nodes.is_empty() {
        out.push_str(&format!(",\"nodes\":{}", Value::Object(nodes)));
    }
    out.push('}');
    Arc::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_pages_split_the_online_set_and_carry_the_count() {
        let online: Vec<String> = (0..2500).map(|i| format!("u{i}")).collect();
        let pages = resync_pages(9, &Target::Group("team".into()), &online);
        assert_eq!(pages.len(), 3);
        let third: Value = serde_json::from_str(&pages[2].json()).unwrap();
        assert_eq!(third["page"], 3);
        assert_eq!(pages[2].seq, 9);
        assert!(third.get("seq").is_none());
        assert_eq!(third["online"][0], "u2000");
        assert_eq!(third["pages"], 3);
        assert_eq!(third["count"], 2500);
        assert_eq!(third["group"], "team");
        assert_eq!(third["online"].as_array().unwrap().len(), 500);
        let none = resync_pages::<&str>(9, &Target::Group("team".into()), &[]);
        assert_eq!(none.len(), 1, "an empty group still resyncs");
    }

    #[test]
    fn an_updates_payload_lists_names_and_leaves_out_what_is_empty() {
        let change = |online, guest, stamp| Change {
            online,
            node: "n1".into(),
            since: 5,
            guest,
            stamp,
            first: stamp,
            was_online: !online,
        };
        let changes = [
            ("alice".to_string(), change(true, false, 1)),
            ("bob".to_string(), change(false, false, 2)),
            ("guest-x".to_string(), change(true, true, 3)),
        ];
        let json: Value = serde_json::from_str(&updates_json(changes.iter(), 7, "n1")).unwrap();
        assert_eq!(json["online"], json!(["alice", "guest-x"]));
        assert_eq!(json["offline"], json!(["bob"]));
        assert_eq!(json["guests"], json!(["guest-x"]));
        assert_eq!(json["count"], 7);
        assert!(json.get("nodes").is_none());
        let only_on = [("alice".to_string(), change(true, false, 1))];
        let json: Value = serde_json::from_str(&updates_json(only_on.iter(), 1, "n2")).unwrap();
        assert!(json.get("offline").is_none() && json.get("guests").is_none());
        assert_eq!(json["nodes"]["alice"], "n1");
    }

    #[test]
    fn a_group_updates_payload_carries_roster_indices_as_gaps() {
        let change = |online, node: &str| Change {
            online,
            node: node.into(),
            since: 5,
            guest: false,
            stamp: 1,
            first: 1,
            was_online: !online,
        };
        let (on, off, away) = (change(true, "n1"), change(false, "n1"), change(true, "n2"));
        let entries = [(9, &on), (3, &off), (4, &on), (5, &away), (12, &off)];
        let json: Value =
            serde_json::from_str(&updates_indexed(entries.into_iter(), 42, "n1", "ep")).unwrap();
        assert_eq!(json["on"], json!([4, 1, 4]), "4, 5 and 9");
        assert_eq!(json["off"], json!([3, 9]), "3 and 12");
        assert_eq!(json["nodes"], json!({ "5": "n2" }));
        assert_eq!(
            (&json["count"], &json["roster"]),
            (&json!(42), &json!("ep"))
        );
        assert!(json.get("online").is_none() && json.get("guests").is_none());
    }

    #[test]
    fn a_group_resync_is_its_online_bits_with_the_count_and_epoch() {
        let members: Vec<String> = (0..20).map(|i| format!("u{i:02}")).collect();
        let roster = Roster::new(&members, |u| u == "u01" || u == "u10");
        let pages = resync_bits(7, "team", "ep", 2, &roster);
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].seq, 7);
        let page: Value = serde_json::from_str(&pages[0].json()).unwrap();
        assert!(page.get("seq").is_none());
        assert_eq!(
            (
                &page["group"],
                &page["roster"],
                &page["count"],
                &page["size"],
                &page["from"]
            ),
            (
                &json!("team"),
                &json!("ep"),
                &json!(2),
                &json!(20),
                &json!(0)
            )
        );
        // Bits 1 and 10: bytes 0b10 and 0b100.
        assert_eq!(page["bits"], "AgQ=");
    }
}
