//! One timer thread that wakes the engine thread at a deadline with a
//! [`Job`]. Services that batch work behind a short window (presence
//! propagation, live-assist queue announcements) give it deadlines; it runs
//! their `due` function on the engine thread at the earliest one (several
//! pending at once merged into one wake-up) and ends when the alarm or the
//! engine goes.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Instant;

use crate::server::{Job, ServerRouter};
use crate::{Cx, Handle};

/// The sending side of the timer thread.
#[derive(Debug)]
pub(crate) struct Alarm {
    tx: Sender<Instant>,
}

impl Alarm {
    /// Starts the thread `name`; it runs `due` on the engine thread at each
    /// deadline it is given (earlier ones first, several at once merged),
    /// and ends when the alarm or the engine goes.
    pub(crate) fn start(
        name: &str,
        handle: Handle<Job>,
        due: fn(&mut ServerRouter, &mut Cx<'_, Job>),
    ) -> std::io::Result<Alarm> {
        let (tx, rx) = mpsc::channel::<Instant>();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut next: Option<Instant> = None;
                loop {
                    let got = match next {
                        Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    match got {
                        Ok(at) => next = Some(next.map_or(at, |n| n.min(at))),
                        Err(RecvTimeoutError::Timeout) => {
                            next = None;
                            if !handle.send(Job::new(due)) {
                                return;
                            }
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })?;
        Ok(Alarm { tx })
    }

    /// Rings at `at`; `false` if the thread has ended.
    pub(crate) fn set(&self, at: Instant) -> bool {
        self.tx.send(at).is_ok()
    }
}
