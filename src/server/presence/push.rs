//! The general door for other parts of the server (SIP, wireless, cluster
//! propagation) to reach a user: [`Presence::push_event`] queues a named
//! event for a logged-in user and sends it down their `/jchat` pipe when one
//! is held (a long-poll takes it from the queue), and
//! [`Presence::user_status`] says whether a name is an online, offline or
//! unknown user. Runs on the engine thread like the rest of presence.

use serde_json::Value;

use super::Presence;
use crate::server::Job;
use crate::Cx;

/// What [`Presence::push_event`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The user is online: the event was queued and sent down their pipe
    /// (or is waiting in the queue for their next long-poll).
    Online,
    /// The user is logged in but holds no pipe: queued for their next one.
    Queued,
    /// The user has no session: nothing was queued.
    NotLoggedIn,
}

/// Whether a name is a user, and online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// Holds a pipe (or polls) right now.
    Online,
    /// A registered user (or a guest with a session) without a pipe.
    Offline,
    /// No such user.
    Unknown,
}

impl Presence {
    /// Queues the event `kind` with `payload` for `user` and sends it down
    /// their pipe if one is open; the event carries the queue's `seq` like
    /// every other, so reconnects with `since` replay it.
    pub fn push_event(
        &mut self,
        cx: &mut Cx<'_, Job>,
        user: &str,
        kind: &'static str,
        payload: Value,
    ) -> Pushed {
        if !self.queues.contains_key(user) {
            return Pushed::NotLoggedIn;
        }
        let online = self.table.is_online(user);
        self.emit(cx, user, kind, payload);
        if online {
            Pushed::Online
        } else {
            Pushed::Queued
        }
    }

    /// Whether `name` is an online user, an offline one, or no user.
    pub fn user_status(&self, name: &str) -> UserStatus {
        if self.table.is_online(name) {
            UserStatus::Online
        } else if self.dir.users.contains_key(name) {
            UserStatus::Offline
        } else {
            UserStatus::Unknown
        }
    }
}
