//! Coalescing of presence changes per displayed target (a group, an address
//! book, a user's page): every change is noted against the targets whose
//! watchers must hear it, last state wins per user, and a target's changes go
//! out together as one batch. The first change after a quiet window goes out
//! at once (so a lone arrival is not delayed); changes that follow within the
//! window after the previous batch wait for the end of it and leave as one.
//! A batch that took long to write (a big group on a busy server) spaces the
//! next one further: at least [`SPACING`] times its cost, so that while
//! changes keep coming fan-out takes no more than about a quarter of the
//! engine thread, and the changes that arrive while a batch is written are
//! absorbed by the next. A change that finds the target quiet for the window
//! since its last batch was written still goes out at once. Pure: the
//! caller passes the time in and sends what is due.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::table::Target;

/// The least gap after a batch, as a multiple of the time it took to write.
pub const SPACING: u32 = 3;
/// The most a batch's cost may space the next, in windows: a slow write on a
/// machine busy with other work does not hold presence back for seconds.
pub const MAX_SPACING_WINDOWS: u32 = 10;

/// One user's latest presence, as watchers hear it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Online (true) or offline.
    pub online: bool,
    /// The host box identifier of their session.
    pub node: String,
    /// Unix time they came online (0 when offline).
    pub since: i64,
    /// A guest (unregistered requestor).
    pub guest: bool,
    /// The change's number: changes are numbered from 1 in the order they
    /// happened, across all targets.
    pub stamp: u64,
    /// The stamp of the user's first change in this batch (set by
    /// [`Coalescer::note`]).
    pub first: u64,
    /// Whether the user was online before that first change: a batch whose
    /// last state equals it changed nothing for a watcher who knew the state
    /// before (went online and offline again within the window).
    pub was_online: bool,
}

impl Change {
    /// True when this last state differs from the state before the batch.
    pub fn changed(&self) -> bool {
        self.online != self.was_online
    }
}

/// The changes of one target that are due: each user once, with their last
/// state, in name order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `(user, last change)`, sorted by user.
    pub changes: Vec<(String, Change)>,
}

impl Batch {
    /// The stamp of the batch's first change.
    pub fn first_stamp(&self) -> u64 {
        self.changes.iter().map(|(_, c)| c.first).min().unwrap_or(0)
    }
}

#[derive(Debug)]
struct Pending {
    due: Instant,
    changes: BTreeMap<String, Change>,
}

/// The pending changes of every target, and when each may go out.
#[derive(Debug)]
pub struct Coalescer {
    window: Duration,
    pending: HashMap<Target, Pending>,
    /// Recently flushed targets: when their last batch was written, and the
    /// earliest their next may go out unless they stay quiet for the window.
    recent: HashMap<Target, (Instant, Instant)>,
    stamp: u64,
}

impl Coalescer {
    /// A coalescer with `window` between a target's batches (zero: every
    /// change goes out at once, on its own).
    pub fn new(window: Duration) -> Self {
        Coalescer {
            window,
            pending: HashMap::new(),
            recent: HashMap::new(),
            stamp: 0,
        }
    }

    /// The stamp of the latest change noted (0 before any).
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    /// Numbers the next change.
    pub fn next_stamp(&mut self) -> u64 {
        self.stamp += 1;
        self.stamp
    }

    /// Notes `user`'s `change` for the watchers of `target`; a pending change
    /// of the same user is replaced (last state wins), keeping when their
    /// first change in the batch was and what their state was before it.
    pub fn note(&mut self, target: &Target, user: &str, mut change: Change, now: Instant) {
        change.first = change.stamp;
        if let Some(p) = self.pending.get_mut(target) {
            if let Some(earlier) = p.changes.get(user) {
                change.first = earlier.first;
                change.was_online = earlier.was_online;
            }
            p.changes.insert(user.to_string(), change);
            return;
        }
        let due = match self.recent.get(target) {
            Some(&(done, _)) if now >= done + self.window => now,
            Some(&(_, not_before)) => not_before.max(now),
            None => now,
        };
        let mut changes = BTreeMap::new();
        changes.insert(user.to_string(), change);
        self.pending
            .insert(target.clone(), Pending { due, changes });
    }

    /// Takes the batches due at `now`, marking their targets as sent then
    /// (see [`Coalescer::sent`] for the time the writes took).
    pub fn take_due(&mut self, now: Instant) -> Vec<(Target, Batch)> {
        let window = self.window;
        self.recent
            .retain(|_, &mut (done, at)| now < at || now < done + window);
        let due: Vec<Target> = self
            .pending
            .iter()
            .filter(|(_, p)| p.due <= now)
            .map(|(t, _)| t.clone())
            .collect();
        let mut out = Vec::with_capacity(due.len());
        for target in due {
            if let Some(p) = self.pending.remove(&target) {
                if !window.is_zero() {
                    self.recent.insert(target.clone(), (now, now + window));
                }
                let changes = p.changes.into_iter().collect();
                out.push((target, Batch { changes }));
            }
        }
        out
    }

    /// Marks `target`'s last batch as written by `now`, which took `cost`:
    /// the next goes out a window after that, or [`SPACING`] times the cost
    /// if longer (at most [`MAX_SPACING_WINDOWS`] windows).
    pub fn sent(&mut self, target: &Target, now: Instant, cost: Duration) {
        if !self.window.is_zero() {
            let most = self.window * MAX_SPACING_WINDOWS;
            let gap = (cost * SPACING).clamp(self.window, most);
            self.recent.insert(target.clone(), (now, now + gap));
        }
    }

    /// When the next pending batch is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.due).min()
    }

    /// How many targets have changes waiting.
    pub fn pending_targets(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(c: &mut Coalescer, online: bool) -> Change {
        Change {
            online,
            node: "n".into(),
            since: 0,
            guest: false,
            stamp: c.next_stamp(),
            first: 0,
            was_online: !online,
        }
    }

    fn names(batch: &Batch) -> Vec<(&str, bool)> {
        batch
            .changes
            .iter()
            .map(|(u, c)| (u.as_str(), c.online))
            .collect()
    }

    #[test]
    fn a_lone_change_goes_out_at_once_and_the_next_ones_wait_for_the_window() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let team = Target::Group("team".into());
        let mut c = Coalescer::new(ms(50));
        let ch = change(&mut c, true);
        c.note(&team, "alice", ch, t0);
        let due = c.take_due(t0);
        assert_eq!(due.len(), 1);
        assert_eq!(names(&due[0].1), [("alice", true)]);
        // Within the window after that batch: held back, then one batch.
        for (i, user) in ["bob", "carol", "dave"].iter().enumerate() {
            let ch = change(&mut c, true);
            c.note(&team, user, ch, t0 + ms(10 * i as u64 + 1));
        }
        assert!(c.take_due(t0 + ms(49)).is_empty());
        assert_eq!(c.next_due(), Some(t0 + ms(50)));
        let due = c.take_due(t0 + ms(50));
        assert_eq!(
            names(&due[0].1),
            [("bob", true), ("carol", true), ("dave", true)]
        );
        assert_eq!(c.next_due(), None);
        // Quiet for longer than the window: the next change is immediate again.
        let ch = change(&mut c, false);
        c.note(&team, "bob", ch, t0 + ms(200));
        assert_eq!(c.take_due(t0 + ms(200)).len(), 1);
    }

    #[test]
    fn last_state_wins_and_each_user_appears_once() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let team = Target::Group("team".into());
        let mut c = Coalescer::new(ms(30));
        let ch = change(&mut c, true);
        c.note(&team, "zed", ch, t0);
        c.take_due(t0);
        // Alice comes online and goes offline again; Bob the other way round.
        for (user, online) in [
            ("alice", true),
            ("bob", false),
            ("alice", false),
            ("bob", true),
        ] {
            let ch = change(&mut c, online);
            c.note(&team, user, ch, t0 + ms(5));
        }
        let due = c.take_due(t0 + ms(30));
        let batch = &due[0].1;
        assert_eq!(names(batch), [("alice", false), ("bob", true)]);
        let (alice, bob) = (&batch.changes[0].1, &batch.changes[1].1);
        assert_eq!((alice.stamp, alice.first), (4, 2), "alice's last change");
        assert_eq!(batch.first_stamp(), 2);
        // Net, both are where they were before the window.
        assert!(!alice.changed() && !alice.was_online);
        assert!(!bob.changed() && bob.was_online);
    }

    #[test]
    fn a_costly_batch_spaces_the_next_one_further() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let big = Target::Group("big".into());
        let mut c = Coalescer::new(ms(50));
        let ch = change(&mut c, true);
        c.note(&big, "a", ch, t0);
        assert_eq!(c.take_due(t0).len(), 1);
        // Writing that batch took 40 ms: the next waits 3 x 40 ms after it.
        c.sent(&big, t0 + ms(40), ms(40));
        let ch = change(&mut c, true);
        c.note(&big, "b", ch, t0 + ms(41));
        assert_eq!(c.next_due(), Some(t0 + ms(160)));
        assert!(c.take_due(t0 + ms(159)).is_empty());
        assert_eq!(c.take_due(t0 + ms(160)).len(), 1);
        // That one took 100 ms; a change 40 ms after it is held for 300 ms ...
        c.sent(&big, t0 + ms(260), ms(100));
        let ch = change(&mut c, true);
        c.note(&big, "c", ch, t0 + ms(300));
        assert_eq!(c.next_due(), Some(t0 + ms(560)));
        assert_eq!(c.take_due(t0 + ms(560)).len(), 1);
        // ... but one that finds the group quiet for the window goes at once.
        c.sent(&big, t0 + ms(600), ms(100));
        let ch = change(&mut c, false);
        c.note(&big, "c", ch, t0 + ms(650));
        assert_eq!(c.take_due(t0 + ms(650)).len(), 1);
        // A write slowed down by a busy machine spaces by ten windows at most.
        c.sent(&big, t0 + ms(2000), ms(1000));
        let ch = change(&mut c, true);
        c.note(&big, "c", ch, t0 + ms(2001));
        assert_eq!(c.next_due(), Some(t0 + ms(2500)));
    }

    #[test]
    fn targets_are_batched_apart_and_a_zero_window_never_waits() {
        let t0 = Instant::now();
        let (a, b) = (Target::Group("a".into()), Target::Book("owner".into()));
        let mut c = Coalescer::new(Duration::ZERO);
        for i in 0..3 {
            let ch = change(&mut c, true);
            c.note(&a, &format!("u{i}"), ch.clone(), t0);
            c.note(&b, &format!("u{i}"), ch, t0);
            let due = c.take_due(t0);
            assert_eq!(due.len(), 2, "both targets, at once");
            assert!(due.iter().all(|(_, batch)| batch.changes.len() == 1));
        }
        assert_eq!(c.pending_targets(), 0);
    }
}
