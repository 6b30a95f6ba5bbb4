//! Who gets which visitor, for one site: a pure state machine with time
//! passed in (milliseconds on any monotonic clock). It owns the
//! representatives' availability (present, away, open chats under the cap),
//! the queue with its positions, the offers waiting for an answer, and the
//! open chats. Every change returns the [`Effect`]s the service turns into
//! events; nothing here knows of HTTP, the hub or the database.
//!
//! Rules: the available representative with the fewest open chats (offers
//! count) gets a visitor, ties to the one idle longest; with skills, only
//! representatives having them all, unless none such is present at all;
//! nobody available: the queue. An offer unanswered by its deadline passes
//! on, never back to one who let it lapse; a representative who leaves has
//! their chats put back at the head of the queue.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// What a change did, for the service to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<V> {
    /// `visitor` is offered to `rep` until `expires`.
    Offered {
        /// The visitor.
        visitor: V,
        /// The representative.
        rep: String,
        /// The deadline.
        expires: u64,
    },
    /// `rep` let the offer of `visitor` lapse (or declined it).
    Lapsed {
        /// The visitor.
        visitor: V,
        /// The representative.
        rep: String,
    },
    /// `visitor` now chats with `rep`.
    Accepted {
        /// The visitor.
        visitor: V,
        /// The representative.
        rep: String,
    },
    /// `visitor`'s chat (or offer) with `rep` went back to the queue's head
    /// because `rep` left.
    Requeued {
        /// The visitor.
        visitor: V,
        /// The representative who left.
        rep: String,
    },
    /// The queue changed: every waiting visitor's position (1 = next).
    Queue(Vec<V>),
    /// `rep`'s load or availability changed.
    Rep(String),
}

/// Why a change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue is full.
    QueueFull,
    /// The visitor is not offered to, or chatting with, this representative.
    NotYours,
    /// The representative named is not present (or is away).
    NotPresent,
}

/// One representative of the site.
#[derive(Debug, Clone, Default)]
pub struct Rep {
    /// Holds a console.
    pub present: bool,
    /// Set to away.
    pub away: bool,
    /// Open chats plus offers waiting for them.
    pub load: usize,
    /// Since when no chat was accepted or ended (for the tie-break).
    pub idle_since: u64,
    /// Their skills on this site.
    pub skills: Vec<String>,
}

/// A visitor's wish to talk.
#[derive(Debug, Clone)]
struct Want {
    skills: Vec<String>,
    /// Representatives who let this visitor's offer lapse.
    lapsed: Vec<String>,
    /// When the visitor first asked.
    asked: u64,
}

/// Where a visitor who asked is.
#[derive(Debug, Clone)]
enum Stage {
    Queued,
    Offered { rep: String, expires: u64 },
    Chatting { rep: String },
}

/// A visitor's routing state, as the service shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// In the queue at this position (1 = next).
    Queued(usize),
    /// Offered to this representative.
    Offered(String),
    /// Chatting with this representative.
    Chatting(String),
}

/// The routing state of one site.
#[derive(Debug)]
pub struct Routing<V> {
    reps: HashMap<String, Rep>,
    queue: VecDeque<V>,
    wants: HashMap<V, (Want, Stage)>,
    /// Open chats a representative may have and still be available.
    pub cap: usize,
    /// How long an offer waits for its answer (ms).
    pub answer_ms: u64,
    /// Most visitors in the queue.
    pub max_queue: usize,
}

impl<V: Copy + Eq + Hash> Routing<V> {
    /// Empty routing with a chat cap, an answer time and a queue bound.
    pub fn new(cap: usize, answer_ms: u64, max_queue: usize) -> Self {
        Routing {
            reps: HashMap::new(),
            queue: VecDeque::new(),
            wants: HashMap::new(),
            cap,
            answer_ms,
            max_queue,
        }
    }

    /// The representatives by name.
    pub fn reps(&self) -> &HashMap<String, Rep> {
        &self.reps
    }

    /// True when `rep` may be offered a visitor now.
    pub fn available(&self, rep: &str) -> bool {
        self.reps.get(rep).is_some_and(|r| self.is_available(r))
    }

    fn is_available(&self, r: &Rep) -> bool {
        r.present && !r.away && r.load < self.cap
    }

    /// The waiting visitors, first in line first.
    pub fn queue(&self) -> Vec<V> {
        self.queue.iter().copied().collect()
    }

    /// Where `visitor` is, if it asked.
    pub fn status(&self, visitor: V) -> Option<Status> {
        Some(match &self.wants.get(&visitor)?.1 {
            Stage::Queued => Status::Queued(self.position(visitor).unwrap_or(0)),
            Stage::Offered { rep, .. } => Status::Offered(rep.clone()),
            Stage::Chatting { rep } => Status::Chatting(rep.clone()),
        })
    }

    /// `visitor`'s place in the queue (1 = next).
    pub fn position(&self, visitor: V) -> Option<usize> {
        self.queue.iter().position(|v| *v == visitor).map(|i| i + 1)
    }

    /// Visitors offered to or chatting with `rep`.
    pub fn visitors_of(&self, rep: &str) -> Vec<V> {
        self.wants
            .iter()
            .filter(|(_, (_, stage))| stage_rep(stage) == Some(rep))
            .map(|(v, _)| *v)
            .collect()
    }

    /// `rep` holds a console now, with these skills.
    pub fn rep_present(&mut self, rep: &str, skills: Vec<String>, now: u64) -> Vec<Effect<V>> {
        let r = self.reps.entry(rep.to_string()).or_insert_with(|| Rep {
            idle_since: now,
            ..Rep::default()
        });
        r.skills = skills;
        if !r.present {
            r.present = true;
            r.idle_since = now;
        }
        let mut out = vec![Effect::Rep(rep.to_string())];
        self.pump(now, &mut out);
        out
    }

    /// `rep`'s skills changed.
    pub fn set_skills(&mut self, rep: &str, skills: Vec<String>, now: u64) -> Vec<Effect<V>> {
        let mut out = Vec::new();
        if let Some(r) = self.reps.get_mut(rep) {
            r.skills = skills;
            out.push(Effect::Rep(rep.to_string()));
            self.pump(now, &mut out);
        }
        out
    }

    /// `rep` set (or cleared) away.
    pub fn set_away(&mut self, rep: &str, away: bool, now: u64) -> Vec<Effect<V>> {
        let mut out = Vec::new();
        if let Some(r) = self.reps.get_mut(rep) {
            r.away = away;
            out.push(Effect::Rep(rep.to_string()));
            self.pump(now, &mut out);
        }
        out
    }

    /// `rep` left (console closed, or died): their chats and offers go back
    /// to the head of the queue, in the order they were first asked.
    pub fn rep_left(&mut self, rep: &str, now: u64) -> Vec<Effect<V>> {
        let Some(r) = self.reps.get_mut(rep) else {
            return Vec::new();
        };
        r.present = false;
        r.load = 0;
        let mut theirs: Vec<(u64, V)> = self
            .wants
            .iter()
            .filter(|(_, (_, stage))| stage_rep(stage) == Some(rep))
            .map(|(v, (want, _))| (want.asked, *v))
            .collect();
        theirs.sort_by_key(|(asked, _)| *asked);
        let mut out = vec![Effect::Rep(rep.to_string())];
        for (_, v) in theirs.iter().rev() {
            if let Some((_, stage)) = self.wants.get_mut(v) {
                *stage = Stage::Queued;
            }
            self.queue.push_front(*v);
        }
        for (_, v) in theirs {
            out.push(Effect::Requeued {
                visitor: v,
                rep: rep.to_string(),
            });
        }
        self.pump(now, &mut out);
        self.queue_changed(&mut out);
        out
    }

    /// `visitor` asks to talk. Already asking: nothing changes.
    pub fn ask(
        &mut self,
        visitor: V,
        skills: Vec<String>,
        now: u64,
    ) -> Result<Vec<Effect<V>>, Refused> {
        if self.wants.contains_key(&visitor) {
            return Ok(Vec::new());
        }
        let want = Want {
            skills,
            lapsed: Vec::new(),
            asked: now,
        };
        let mut out = Vec::new();
        if let Some(rep) = self.pick(&want) {
            self.offer(visitor, want, rep, now, &mut out);
            return Ok(out);
        }
        if self.queue.len() >= self.max_queue {
            return Err(Refused::QueueFull);
        }
        self.wants.insert(visitor, (want, Stage::Queued));
        self.queue.push_back(visitor);
        self.queue_changed(&mut out);
        Ok(out)
    }

    /// `rep` takes `visitor` at once: the visitor accepted their invitation.
    pub fn join(&mut self, visitor: V, rep: &str, now: u64) -> Result<Vec<Effect<V>>, Refused> {
        if self.wants.contains_key(&visitor) {
            return Err(Refused::NotYours);
        }
        let Some(r) = self.reps.get_mut(rep).filter(|r| r.present && !r.away) else {
            return Err(Refused::NotPresent);
        };
        r.load += 1;
        r.idle_since = now;
        let want = Want {
            skills: Vec::new(),
            lapsed: Vec::new(),
            asked: now,
        };
        let stage = Stage::Chatting {
            rep: rep.to_string(),
        };
        self.wants.insert(visitor, (want, stage));
        Ok(vec![
            Effect::Accepted {
                visitor,
                rep: rep.to_string(),
            },
            Effect::Rep(rep.to_string()),
        ])
    }

    /// `rep` accepts the offer of `visitor`.
    pub fn accept(&mut self, visitor: V, rep: &str, now: u64) -> Result<Vec<Effect<V>>, Refused> {
        let Some((_, stage)) = self.wants.get_mut(&visitor) else {
            return Err(Refused::NotYours);
        };
        match stage {
            Stage::Offered { rep: r, .. } if r == rep => {}
            _ => return Err(Refused::NotYours),
        }
        *stage = Stage::Chatting {
            rep: rep.to_string(),
        };
        if let Some(r) = self.reps.get_mut(rep) {
            r.idle_since = now;
        }
        Ok(vec![
            Effect::Accepted {
                visitor,
                rep: rep.to_string(),
            },
            Effect::Rep(rep.to_string()),
        ])
    }

    /// `rep` declines the offer of `visitor`: it passes on at once.
    pub fn decline(&mut self, visitor: V, rep: &str, now: u64) -> Result<Vec<Effect<V>>, Refused> {
        match self.wants.get(&visitor) {
            Some((_, Stage::Offered { rep: r, .. })) if r == rep => {}
            _ => return Err(Refused::NotYours),
        }
        let mut out = Vec::new();
        self.lapse(visitor, now, &mut out);
        self.pump(now, &mut out);
        Ok(out)
    }

    /// The chat (or the wait) of `visitor` ends, by either side, or the
    /// visitor left.
    pub fn end(&mut self, visitor: V, now: u64) -> Vec<Effect<V>> {
        let mut out = Vec::new();
        let Some((_, stage)) = self.wants.remove(&visitor) else {
            return out;
        };
        match stage {
            Stage::Queued => {
                self.queue.retain(|v| *v != visitor);
                self.queue_changed(&mut out);
            }
            Stage::Offered { rep, .. } | Stage::Chatting { rep } => {
                self.unload(&rep, now, &mut out);
                self.pump(now, &mut out);
            }
        }
        out
    }

    /// `from` hands the chat with `visitor` to `to`: an offer to `to`.
    pub fn transfer(
        &mut self,
        visitor: V,
        from: &str,
        to: &str,
        now: u64,
    ) -> Result<Vec<Effect<V>>, Refused> {
        match self.wants.get(&visitor) {
            Some((_, Stage::Chatting { rep })) if rep == from => {}
            _ => return Err(Refused::NotYours),
        }
        if from == to || !self.reps.get(to).is_some_and(|r| r.present && !r.away) {
            return Err(Refused::NotPresent);
        }
        let mut out = Vec::new();
        let Some((mut want, _)) = self.wants.remove(&visitor) else {
            return Err(Refused::NotYours);
        };
        self.unload(from, now, &mut out);
        want.lapsed.retain(|r| r != to);
        self.offer(visitor, want, to.to_string(), now, &mut out);
        self.pump(now, &mut out);
        Ok(out)
    }

    /// Passes on every offer whose deadline is `now` or earlier.
    pub fn tick(&mut self, now: u64) -> Vec<Effect<V>> {
        let mut due: Vec<(u64, V)> = self
            .wants
            .iter()
            .filter_map(|(v, (_, stage))| match stage {
                Stage::Offered { expires, .. } if *expires <= now => Some((*expires, *v)),
                _ => None,
            })
            .collect();
        due.sort_by_key(|(expires, _)| *expires);
        let mut out = Vec::new();
        for (_, v) in due {
            self.lapse(v, now, &mut out);
        }
        if !out.is_empty() {
            self.pump(now, &mut out);
        }
        out
    }

    /// The earliest offer deadline, if any offer waits.
    pub fn next_deadline(&self) -> Option<u64> {
        self.wants
            .values()
            .filter_map(|(_, stage)| match stage {
                Stage::Offered { expires, .. } => Some(*expires),
                _ => None,
            })
            .min()
    }

    /// The offer of `visitor` lapsed: its representative is remembered and
    /// freed; the visitor is offered to the next one, or goes back to the
    /// queue's head.
    fn lapse(&mut self, visitor: V, now: u64, out: &mut Vec<Effect<V>>) {
        let Some((mut want, Stage::Offered { rep, .. })) = self.wants.remove(&visitor) else {
            return;
        };
        self.unload(&rep, now, out);
        out.push(Effect::Lapsed {
            visitor,
            rep: rep.clone(),
        });
        want.lapsed.push(rep);
        match self.pick(&want) {
            Some(next) => self.offer(visitor, want, next, now, out),
            None => {
                self.wants.insert(visitor, (want, Stage::Queued));
                self.queue.push_front(visitor);
                self.queue_changed(out);
            }
        }
    }

    /// Offers queued visitors, first in line first, while anyone can take them.
    fn pump(&mut self, now: u64, out: &mut Vec<Effect<V>>) {
        let mut i = 0;
        let mut moved = false;
        while i < self.queue.len() && self.reps.values().any(|r| self.is_available(r)) {
            let v = self.queue[i];
            let pick = self.wants.get(&v).and_then(|(want, _)| self.pick(want));
            match pick {
                Some(rep) => {
                    self.queue.remove(i);
                    moved = true;
                    if let Some((want, _)) = self.wants.remove(&v) {
                        self.offer(v, want, rep, now, out);
                    }
                }
                None => i += 1,
            }
        }
        if moved {
            self.queue_changed(out);
        }
    }

    /// The representative for `want`: available, not lapsed for it, with
    /// its skills (unless no present representative has them), fewest
    /// open chats, then idle longest, then by name.
    fn pick(&self, want: &Want) -> Option<String> {
        let skilled = |r: &Rep| want.skills.iter().all(|s| r.skills.contains(s));
        let anyone_skilled = self
            .reps
            .values()
            .any(|r| r.present && !r.away && skilled(r));
        self.reps
            .iter()
            .filter(|(name, r)| self.is_available(r) && !want.lapsed.contains(name))
            .filter(|(_, r)| !anyone_skilled || skilled(r))
            .min_by(|(an, a), (bn, b)| {
                (a.load, a.idle_since, an.as_str()).cmp(&(b.load, b.idle_since, bn.as_str()))
            })
            .map(|(name, _)| name.clone())
    }

    fn offer(&mut self, visitor: V, want: Want, rep: String, now: u64, out: &mut Vec<Effect<V>>) {
        let expires = now + self.answer_ms;
        if let Some(r) = self.reps.get_mut(&rep) {
            r.load += 1;
        }
        out.push(Effect::Offered {
            visitor,
            rep: rep.clone(),
            expires,
        });
        out.push(Effect::Rep(rep.clone()));
        self.wants
            .insert(visitor, (want, Stage::Offered { rep, expires }));
    }

    fn unload(&mut self, rep: &str, now: u64, out: &mut Vec<Effect<V>>) {
        if let Some(r) = self.reps.get_mut(rep) {
            r.load = r.load.saturating_sub(1);
            r.idle_since = now;
            out.push(Effect::Rep(rep.to_string()));
        }
    }

    fn queue_changed(&self, out: &mut Vec<Effect<V>>) {
        out.retain(|e| !matches!(e, Effect::Queue(_)));
        out.push(Effect::Queue(self.queue()));
    }
}

fn stage_rep(stage: &Stage) -> Option<&str> {
    match stage {
        Stage::Queued => None,
        Stage::Offered { rep, .. } | Stage::Chatting { rep } => Some(rep),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing() -> Routing<u32> {
        Routing::new(2, 1_000, 10)
    }

    fn offered_to(out: &[Effect<u32>], visitor: u32) -> Option<String> {
        out.iter().rev().find_map(|e| match e {
            Effect::Offered {
                visitor: v, rep, ..
            } if *v == visitor => Some(rep.clone()),
            _ => None,
        })
    }

    fn skills(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn least_busy_then_longest_idle() {
        let mut r = routing();
        r.rep_present("ann", vec![], 10);
        r.rep_present("bob", vec![], 5);
        // Both free: bob has been idle longer.
        let out = r.ask(1, vec![], 20).unwrap();
        assert_eq!(offered_to(&out, 1).as_deref(), Some("bob"));
        // bob has one (the offer counts): ann has fewer.
        let out = r.ask(2, vec![], 21).unwrap();
        assert_eq!(offered_to(&out, 2).as_deref(), Some("ann"));
        r.accept(1, "bob", 22).unwrap();
        r.accept(2, "ann", 23).unwrap();
        // Both at one chat: bob accepted earlier, so has been idle longer.
        let out = r.ask(3, vec![], 30).unwrap();
        assert_eq!(offered_to(&out, 3).as_deref(), Some("bob"));
        r.end(1, 40);
        r.end(3, 41);
        // bob now has none, ann one: bob, though he was busy more recently.
        let out = r.ask(4, vec![], 50).unwrap();
        assert_eq!(offered_to(&out, 4).as_deref(), Some("bob"));
        assert_eq!(r.accept(4, "ann", 51), Err(Refused::NotYours));
    }

    #[test]
    fn skills_route_to_those_who_have_them() {
        let mut r = routing();
        r.rep_present("ann", skills(&["billing"]), 0);
        r.rep_present("bob", skills(&["billing", "fr"]), 10);
        let out = r.ask(1, skills(&["fr"]), 20).unwrap();
        assert_eq!(offered_to(&out, 1).as_deref(), Some("bob"));
        let out = r.ask(2, skills(&["fr", "billing"]), 21).unwrap();
        assert_eq!(offered_to(&out, 2).as_deref(), Some("bob"), "ann lacks fr");
        // bob is at the cap: a French speaker waits for him rather than ann.
        let out = r.ask(3, skills(&["fr"]), 22).unwrap();
        assert_eq!(offered_to(&out, 3), None);
        assert_eq!(r.status(3), Some(Status::Queued(1)));
        // A skill nobody has goes to anyone.
        let out = r.ask(4, skills(&["de"]), 23).unwrap();
        assert_eq!(offered_to(&out, 4).as_deref(), Some("ann"));
        // bob frees a chat: the queued French speaker gets him.
        let out = r.end(1, 30);
        assert_eq!(offered_to(&out, 3).as_deref(), Some("bob"));
    }

    #[test]
    fn queue_positions_move_as_visitors_leave_and_are_served() {
        let mut r = routing();
        for v in 1..=4 {
            let out = r.ask(v, vec![], v as u64).unwrap();
            assert_eq!(out.last(), Some(&Effect::Queue((1..=v).collect())));
        }
        assert_eq!(r.status(3), Some(Status::Queued(3)));
        let out = r.end(2, 10);
        assert_eq!(out, vec![Effect::Queue(vec![1, 3, 4])]);
        assert_eq!(r.position(4), Some(3));
        // A representative with room for two takes the first two in line.
        let out = r.rep_present("ann", vec![], 20);
        assert_eq!(offered_to(&out, 1).as_deref(), Some("ann"));
        assert_eq!(offered_to(&out, 3).as_deref(), Some("ann"));
        assert_eq!(out.last(), Some(&Effect::Queue(vec![4])));
        assert_eq!(r.status(4), Some(Status::Queued(1)));
        // The bound.
        let mut small = Routing::new(1, 1_000, 2);
        small.ask(1, vec![], 0).unwrap();
        small.ask(2, vec![], 0).unwrap();
        assert_eq!(small.ask(3, vec![], 0), Err(Refused::QueueFull));
        assert!(small.ask(1, vec![], 0).unwrap().is_empty(), "asking twice");
    }

    #[test]
    fn a_leaving_representative_requeues_chats_first_in_line() {
        let mut r = routing();
        r.rep_present("ann", vec![], 0);
        r.ask(1, vec![], 1).unwrap();
        r.ask(2, vec![], 2).unwrap();
        r.accept(1, "ann", 3).unwrap();
        r.ask(3, vec![], 4).unwrap();
        assert_eq!(r.status(3), Some(Status::Queued(1)));
        let out = r.rep_left("ann", 10);
        let requeued: Vec<u32> = out
            .iter()
            .filter_map(|e| match e {
                Effect::Requeued { visitor, .. } => Some(*visitor),
                _ => None,
            })
            .collect();
        assert_eq!(requeued, vec![1, 2], "in the order they asked");
        assert_eq!(r.queue(), vec![1, 2, 3], "ahead of those already waiting");
        assert!(!r.available("ann"));
        // The next representative gets them first.
        let out = r.rep_present("bob", vec![], 20);
        assert_eq!(offered_to(&out, 1).as_deref(), Some("bob"));
        assert_eq!(offered_to(&out, 2).as_deref(), Some("bob"));
        assert_eq!(r.queue(), vec![3]);
    }

    #[test]
    fn no_answer_passes_on_and_never_back() {
        let mut r = routing();
        r.rep_present("ann", vec![], 0);
        r.rep_present("bob", vec![], 1);
        let out = r.ask(1, vec![], 10).unwrap();
        assert_eq!(offered_to(&out, 1).as_deref(), Some("ann"));
        assert_eq!(r.next_deadline(), Some(1_010));
        assert!(r.tick(1_009).is_empty(), "not yet due");
        let out = r.tick(1_010);
        assert!(out.contains(&Effect::Lapsed {
            visitor: 1,
            rep: "ann".into()
        }));
        assert_eq!(offered_to(&out, 1).as_deref(), Some("bob"));
        // bob lets it lapse too: nobody left who did not, so it waits first
        // in line, and ann is not offered it again even though she is free.
        let out = r.tick(2_010);
        assert_eq!(offered_to(&out, 1), None);
        assert_eq!(r.status(1), Some(Status::Queued(1)));
        // A new representative gets it.
        let out = r.rep_present("cat", vec![], 2_100);
        assert_eq!(offered_to(&out, 1).as_deref(), Some("cat"));
        // Declining passes on at once, too.
        let out = r.ask(2, vec![], 2_200).unwrap();
        let first = offered_to(&out, 2).unwrap();
        let out = r.decline(2, &first, 2_201).unwrap();
        let second = offered_to(&out, 2).unwrap();
        assert_ne!(first, second);
        assert_eq!(r.decline(2, &first, 2_202), Err(Refused::NotYours));
    }

    #[test]
    fn transfer_offers_the_chat_to_another() {
        let mut r = routing();
        r.rep_present("ann", vec![], 0);
        r.ask(1, vec![], 1).unwrap();
        r.accept(1, "ann", 2).unwrap();
        assert_eq!(r.transfer(1, "ann", "bob", 3), Err(Refused::NotPresent));
        r.rep_present("bob", vec![], 4);
        assert_eq!(r.transfer(1, "bob", "ann", 5), Err(Refused::NotYours));
        let out = r.transfer(1, "ann", "bob", 6).unwrap();
        assert_eq!(offered_to(&out, 1).as_deref(), Some("bob"));
        assert_eq!(r.reps()["ann"].load, 0, "ann is free of it");
        r.accept(1, "bob", 7).unwrap();
        assert_eq!(r.status(1), Some(Status::Chatting("bob".into())));
        assert_eq!(
            r.join(1, "ann", 7),
            Err(Refused::NotYours),
            "already chatting"
        );
        assert_eq!(r.join(9, "cat", 7), Err(Refused::NotPresent));
        r.join(9, "ann", 7).unwrap();
        assert_eq!(r.status(9), Some(Status::Chatting("ann".into())));
        r.end(9, 7);
        // A transfer that lapses goes on like any offer (back to ann here).
        r.ask(2, vec![], 8).unwrap();
        r.accept(2, "ann", 9).unwrap();
        r.transfer(2, "ann", "bob", 10).unwrap();
        let out = r.tick(1_010);
        assert_eq!(offered_to(&out, 2).as_deref(), Some("ann"));
    }
}
