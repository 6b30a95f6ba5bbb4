//! The engine's door for other threads. A [`Handle`] queues a command and wakes
//! the loop through a `mio::Waker`; the loop carries commands out between event
//! batches. Pushes report whether they reached their connection through a
//! [`Receipt`] the caller may wait on or drop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use mio::Waker;

use crate::framing::Message;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::reply::{Gone, Hold};
use crate::{AnswerTo, ConnId, Response};

/// Work queued for the engine thread.
pub(crate) enum Command<M> {
    Push(ConnId, Message, SyncSender<Result<(), Gone>>),
    Broadcast(Vec<ConnId>, Message, SyncSender<usize>),
    Respond(AnswerTo, Response, SyncSender<Result<(), Gone>>),
    Hold(AnswerTo, Hold, SyncSender<Result<(), Gone>>),
    Close(ConnId),
    Send(M),
    Shutdown,
    /// A new TLS configuration for connections accepted from now on.
    #[cfg(feature = "tls")]
    TlsConfig(std::sync::Arc<rustls::ServerConfig>),
}

pub(crate) struct Shared<M> {
    pub queue: Mutex<Vec<Command<M>>>,
    pub waker: Waker,
    pub metrics: Arc<Metrics>,
    pub stopped: AtomicBool,
}

/// A `Send + Clone` handle to a running engine.
pub struct Handle<M> {
    pub(crate) shared: Arc<Shared<M>>,
}

impl<M> Clone for Handle<M> {
    fn clone(&self) -> Self {
        Handle {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The outcome of a command, available once the engine has carried it out.
#[derive(Debug)]
pub struct Receipt<T> {
    rx: Option<Receiver<T>>,
    fallback: T,
}

impl<T: Clone> Receipt<T> {
    /// Blocks until the engine carried the command out; if the engine stopped
    /// first, returns what a stopped engine means (`Err(Gone)`, or `0`).
    pub fn wait(self) -> T {
        match self.rx {
            Some(rx) => rx.recv().unwrap_or(self.fallback),
            None => self.fallback,
        }
    }
}

impl<M: Send + 'static> Handle<M> {
    /// Pushes `msg` to a held connection.
    pub fn push(&self, conn: ConnId, msg: Message) -> Receipt<Result<(), Gone>> {
        self.command_with_receipt(Err(Gone), |tx| Command::Push(conn, msg, tx))
    }

    /// Pushes `msg` to each held connection in `conns`; the receipt counts how many took it.
    pub fn broadcast(&self, conns: Vec<ConnId>, msg: Message) -> Receipt<usize> {
        self.command_with_receipt(0, |tx| Command::Broadcast(conns, msg, tx))
    }

    /// Answers a deferred request: `to` is its [`crate::RequestId`] (from
    /// [`crate::Request::id`]), or a [`ConnId`] for the connection's oldest
    /// unanswered one. Answers are written in request order.
    pub fn respond(
        &self,
        to: impl Into<AnswerTo>,
        response: Response,
    ) -> Receipt<Result<(), Gone>> {
        let to = to.into();
        self.command_with_receipt(Err(Gone), |tx| Command::Respond(to, response, tx))
    }

    /// Turns a deferred request (named as for [`Handle::respond`]) into a
    /// held stream, in its turn. A stream takes the connection: answers owed
    /// to requests pipelined behind it are dropped (`Gone`).
    pub fn hold(&self, to: impl Into<AnswerTo>, hold: Hold) -> Receipt<Result<(), Gone>> {
        let to = to.into();
        self.command_with_receipt(Err(Gone), |tx| Command::Hold(to, hold, tx))
    }

    /// Closes a connection.
    pub fn close(&self, conn: ConnId) {
        self.command(Command::Close(conn));
    }

    /// Delivers `msg` to [`crate::Router::message`] on the engine thread.
    /// Returns `false` if the engine has stopped.
    pub fn send(&self, msg: M) -> bool {
        self.command(Command::Send(msg))
    }

    /// Asks the engine to stop: it stops accepting, ends every connection and
    /// returns from `run` within the shutdown grace.
    pub fn shutdown(&self) {
        self.command(Command::Shutdown);
    }

    /// True once the engine's loop has returned.
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    /// The engine's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    pub(crate) fn command(&self, command: Command<M>) -> bool {
        let first = {
            let mut queue = match self.shared.queue.lock() {
                Ok(queue) => queue,
                Err(poisoned) => poisoned.into_inner(),
            };
            // Checked under the lock the engine sets it under: a command is
            // either drained by the engine or refused here, never stranded
            // (a stranded push would leave its receipt waiting forever).
            if self.is_stopped() {
                return false;
            }
            queue.push(command);
            queue.len() == 1
        };
        if first {
            if let Err(e) = self.shared.waker.wake() {
                log::warn!("engine waker failed: {e}");
            }
        }
        true
    }

    fn command_with_receipt<T>(
        &self,
        fallback: T,
        make: impl FnOnce(SyncSender<T>) -> Command<M>,
    ) -> Receipt<T> {
        let (tx, rx) = sync_channel(1);
        let rx = self.command(make(tx)).then_some(rx);
        Receipt { rx, fallback }
    }
}
