//! One timer thread that wakes the engine thread at a deadline with a
//! [`Job`]: the live-assist service announces queue changes at most once
//! per [`QUEUE_WINDOW`] per site (a burst of a thousand visitors asking
//! at once sends each console a few queue lists, not a thousand), and the
//! last change of a burst still goes out at the window's end.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::server::{Job, ServerRouter};
use crate::{Cx, Handle};

/// The least time between two queue announcements of one site.
pub const QUEUE_WINDOW: Duration = Duration::from_millis(50);

/// The sending side of the timer thread.
#[derive(Debug)]
pub struct Alarm {
    tx: Sender<Instant>,
}

impl Alarm {
    /// Starts the thread; it runs `due` on the engine thread at each
    /// deadline it is given (earlier ones first, several at once merged),
    /// and ends when the alarm or the engine goes.
    pub fn start(
        handle: Handle<Job>,
        due: fn(&mut ServerRouter, &mut Cx<'_, Job>),
    ) -> std::io::Result<Alarm> {
        let (tx, rx) = mpsc::channel::<Instant>();
        std::thread::Builder::new()
            .name("assist-alarm".into())
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

    /// Rings at `at`.
    pub fn set(&self, at: Instant) {
        let _ = self.tx.send(at);
    }
}
