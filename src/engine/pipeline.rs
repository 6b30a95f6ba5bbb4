//! Parse-ahead behind deferred answers: the side table of answers a
//! connection still owes, in request order.
//!
//! When a request is deferred, the connection gets an entry here holding one
//! slot per request dispatched since, oldest first. While the entry accepts
//! more, the loop keeps parsing and dispatching the connection's pipelined
//! requests; each gets a slot with the flags its answer needs (keep-alive,
//! `HEAD`, HTTP/1.0). An answer, whether the router gives it at once or later
//! through `Cx`/`Handle`, lands in its slot; slots are written strictly from
//! the front, so an answer that completes early waits for those before it.
//!
//! The entry lives only while answers are owed, so `Conn` stays 64 bytes and
//! an idle or held connection pays nothing. This file owns the table and the
//! rules of the order; writing and holding are `core.rs`'s.

use std::collections::VecDeque;

use log::debug;

use super::conn::Phase;
use super::core::Core;
use crate::framing::Framing;
use crate::reply::{Gone, Reply};
use crate::{AnswerTo, RequestId};

/// What a slot's request will be answered with.
#[derive(Debug)]
enum Answer {
    /// The router has not answered yet; `lets_through`: it has applied the
    /// request's effect (`Reply::DeferPipelined`), so later requests may run.
    Owed { lets_through: bool },
    /// The router's answer, written when the slot reaches the front.
    Ready(Reply),
    /// The request could not be parsed: this status, then close.
    Reject(u16, String),
}

/// One request whose answer is owed or waits its turn.
#[derive(Debug)]
struct Slot {
    seq: u64,
    keep_alive: bool,
    head_only: bool,
    http10: bool,
    answer: Answer,
}

/// The answers one connection owes, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Pipeline {
    slots: VecDeque<Slot>,
}

impl Pipeline {
    /// Whether the request after the last slot may be dispatched now: not
    /// while the last one's effect may still be under way (plain `Defer`),
    /// and never after a `Connection: close`, a parse error or a hold (a
    /// stream takes the connection; a long-poll's followers are parsed once
    /// it is released).
    fn accepts_more(&self) -> bool {
        self.slots.back().map_or(true, |last| {
            last.keep_alive
                && matches!(
                    last.answer,
                    Answer::Owed { lets_through: true } | Answer::Ready(Reply::Respond(_))
                )
        })
    }

    /// Whether input after the last slot is meaningless (the connection
    /// closes after it), so it is read and dropped rather than kept.
    fn discards_input(&self) -> bool {
        self.slots
            .back()
            .is_some_and(|last| !last.keep_alive || matches!(last.answer, Answer::Reject(..)))
    }
}

impl Core {
    /// A fresh request sequence number.
    pub fn next_request_seq(&mut self) -> u64 {
        self.request_seq += 1;
        self.request_seq
    }

    /// A slot for request `seq` just parsed on `key`, with the flags the
    /// parser left on the connection.
    fn push_slot(&mut self, key: usize, seq: u64, answer: Answer) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let slot = Slot {
            seq,
            keep_alive: conn.keep_alive,
            head_only: conn.head_only,
            http10: conn.http10,
            answer,
        };
        self.pipelines.entry(key).or_default().slots.push_back(slot);
    }

    /// The router deferred request `seq` on a connection that owed nothing:
    /// phase `Deferred`, no timer (the router or its worker owns the wait).
    pub fn defer_first(&mut self, key: usize, seq: u64, lets_through: bool) {
        self.push_slot(key, seq, Answer::Owed { lets_through });
        if let Some(conn) = self.conns.get_mut(key) {
            conn.phase = Phase::Deferred;
            conn.deadline = u64::MAX;
        }
    }

    /// A request parsed behind owed answers gets its slot before the router
    /// sees it, so the router may answer it (by id) even before returning.
    pub fn queue_pipelined(&mut self, key: usize, seq: u64) {
        let lets_through = false;
        self.push_slot(key, seq, Answer::Owed { lets_through });
    }

    /// The router's reply to pipelined request `seq`: a deferral leaves it
    /// owed; anything else waits in its slot for its turn.
    pub fn settle_pipelined(&mut self, key: usize, seq: u64, reply: Reply) {
        let id = RequestId {
            conn: self.id_of(key),
            seq,
        };
        let Some(slot) = self.slot_mut(key, AnswerTo::Request(id)) else {
            return;
        };
        slot.answer = match reply {
            Reply::Defer if matches!(slot.answer, Answer::Owed { .. }) => return,
            Reply::DeferPipelined if matches!(slot.answer, Answer::Owed { .. }) => {
                Answer::Owed { lets_through: true }
            }
            // Answered through `Cx` before the router returned.
            Reply::Defer | Reply::DeferPipelined => return,
            reply => Answer::Ready(reply),
        };
        self.answer_ready(key);
    }

    /// A request behind owed answers could not be parsed: its error is
    /// answered in turn, then the connection closes; later input is dropped.
    pub fn reject_pipelined(&mut self, key: usize, status: u16, why: &str) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.keep_alive = false;
            conn.head_only = false;
            conn.input = None;
        }
        let seq = self.next_request_seq();
        self.push_slot(key, seq, Answer::Reject(status, format!("{why}\n")));
    }

    /// Answers a deferred request (from `Cx` or a `Handle`); `Err(Gone)` if the
    /// connection closed or owes no such answer.
    pub fn complete(&mut self, to: AnswerTo, reply: Reply) -> Result<(), Gone> {
        let key = self.key_of(to.conn()).ok_or(Gone)?;
        let slot = self.slot_mut(key, to).ok_or(Gone)?;
        slot.answer = Answer::Ready(reply);
        self.answer_ready(key);
        // An answered request no longer holds back the ones behind it.
        let conn = self.conns.get(key);
        if conn.is_some_and(|c| c.phase == Phase::Deferred && c.input.is_some()) {
            self.resume_queue.push(to.conn());
        }
        Ok(())
    }

    /// The owed slot `to` names on `key`.
    fn slot_mut(&mut self, key: usize, to: AnswerTo) -> Option<&mut Slot> {
        let slots = &mut self.pipelines.get_mut(&key)?.slots;
        let owed = |slot: &&mut Slot| matches!(slot.answer, Answer::Owed { .. });
        match to {
            AnswerTo::Oldest(_) => slots.iter_mut().find(owed),
            AnswerTo::Request(id) => slots.iter_mut().filter(owed).find(|s| s.seq == id.seq),
        }
    }

    /// Writes the answers at the front that are ready, in order, until one is
    /// still owed, the connection is held or closing, none is left, or half
    /// of `max_pending_output` waits for the reader (the writable event that
    /// drains it calls this again), so a burst of ready answers to a slow
    /// reader is paced, not closed as a slow consumer.
    pub fn answer_ready(&mut self, key: usize) {
        let room = self.cfg.max_pending_output / 2;
        while self.conns.get(key).is_some_and(|c| {
            c.phase == Phase::Deferred && c.output.as_ref().map_or(true, |o| o.len() <= room)
        }) {
            let Some(pipeline) = self.pipelines.get_mut(&key) else {
                return;
            };
            if !pipeline
                .slots
                .front()
                .is_some_and(|s| !matches!(s.answer, Answer::Owed { .. }))
            {
                return;
            }
            let Some(slot) = pipeline.slots.pop_front() else {
                return;
            };
            if pipeline.slots.is_empty() {
                self.pipelines.remove(&key);
            }
            let conn = &mut self.conns[key];
            conn.keep_alive = slot.keep_alive;
            conn.head_only = slot.head_only;
            conn.http10 = slot.http10;
            match slot.answer {
                Answer::Ready(Reply::Respond(response)) => self.respond(key, &response),
                Answer::Ready(Reply::Hold(hold)) => self.start_hold(key, hold),
                Answer::Reject(status, why) => self.reject(key, status, why.trim_end()),
                Answer::Ready(Reply::Defer | Reply::DeferPipelined) | Answer::Owed { .. } => {}
            }
            self.after_answer(key);
        }
    }

    /// What an answer just written means for the answers behind it: a held
    /// stream or a closing connection can never write them.
    fn after_answer(&mut self, key: usize) {
        let Some(conn) = self.conns.get(key) else {
            self.pipelines.remove(&key);
            return;
        };
        let ends = match conn.phase {
            Phase::Held(Framing::LongPoll) | Phase::Deferred | Phase::Reading => false,
            Phase::Held(_) | Phase::Closing(_) => true,
        };
        if ends {
            self.drop_pipeline(key);
        }
    }

    /// Forgets the answers `key` still owes (the connection closed or turned
    /// into a stream); their late answers get `Gone`.
    pub fn drop_pipeline(&mut self, key: usize) {
        if let Some(pipeline) = self.pipelines.remove(&key) {
            if !pipeline.slots.is_empty() {
                debug!(
                    "{}: {} pipelined answers dropped",
                    self.id_of(key),
                    pipeline.slots.len()
                );
            }
        }
    }

    /// Whether answers are owed on `key` (it is `Deferred`, or a long-poll
    /// with requests behind it).
    pub fn owes_answers(&self, key: usize) -> bool {
        self.pipelines.contains_key(&key)
    }

    /// Whether the loop may parse and dispatch the next request on `key`
    /// while answers are owed: below the depth bound, not after a request
    /// that ends the pipeline, not shutting down, and not while a large
    /// answer is still being written (the reader is slow: stop asking).
    pub fn may_parse_ahead(&self, key: usize) -> bool {
        let (Some(conn), Some(pipeline)) = (self.conns.get(key), self.pipelines.get(&key)) else {
            return false;
        };
        conn.phase == Phase::Deferred
            && !self.shutting_down
            && pipeline.slots.len() < self.cfg.pipeline_depth
            && pipeline.accepts_more()
            && conn
                .output
                .as_ref()
                .map_or(true, |o| o.len() <= self.cfg.max_pending_output / 4)
    }

    /// Whether input arriving on `key` is dropped: the last request it owes
    /// an answer for closes the connection.
    pub fn discards_input(&self, key: usize) -> bool {
        self.pipelines
            .get(&key)
            .is_some_and(Pipeline::discards_input)
    }

    /// A rejection for a request that could not be parsed while answers are
    /// owed waits its turn; otherwise it is written now.
    pub fn reject_in_order(&mut self, key: usize, status: u16, why: &str) {
        if self
            .conns
            .get(key)
            .is_some_and(|c| c.phase == Phase::Deferred)
        {
            self.reject_pipelined(key, status, why);
        } else {
            self.reject(key, status, why);
        }
    }
}
