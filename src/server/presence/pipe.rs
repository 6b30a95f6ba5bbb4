//! The held `/jchat` pipe and presence propagation: holding it makes a user
//! online (a UserTable row), a second one replaces the first, its close (or a
//! failed write, a silent peer, logout) makes the user offline, and every
//! change reaches at once the online users whose active group contains the
//! user (`update`). The long-poll transport answers from the user's event queue.

use std::time::Duration;

use serde_json::{json, Value};

use super::caller::Caller;
use super::directory::Named;
use super::ids::unix_now;
use super::params::Params;
use super::table::{Catchup, Event, Mode, Online, Target};
use super::Presence;
use crate::server::Job;
use crate::{CloseReason, ConnId, Cx, Framing, Hold, Reply, Request, Response};

/// The long-poll wait when the client names none.
const POLL_TIMEOUT: Duration = Duration::from_secs(25);

impl Presence {
    /// Queues an event for `user` and sends it down their pipe if one is open.
    pub(super) fn emit(
        &mut self,
        cx: &mut Cx<'_, Job>,
        user: &str,
        kind: &'static str,
        payload: Value,
    ) {
        let Some(queue) = self.queues.get_mut(user) else {
            return;
        };
        let event = queue.push(kind, payload);
        if let Some(row) = self.table.get(user) {
            send(cx, row, &event);
        }
    }

    /// Removes `user` from the UserTable and tells their watchers.
    pub(super) fn go_offline(&mut self, cx: &mut Cx<'_, Job>, user: &str, why: &str) {
        let groups = self.dir.groups_of(user);
        if self.table.remove(user, &groups).is_some() {
            log::debug!("presence: {user} offline ({why})");
            self.note_change(user, true);
            self.flush_due(cx);
            self.db.log(user, "offline", why.to_string());
        }
    }

    /// What the user's page shows: the user or group named by `watch` (the
    /// `/call` page; a protected group only for members or once unlocked),
    /// else their active group (a guest: nothing but themself).
    fn target_of(&self, caller: &Caller, watch: Option<&str>) -> Target {
        let watched = match watch.and_then(|w| self.dir.resolve(w)) {
            Some(Named::User(u)) => Some(Target::User(u)),
            Some(Named::Group(g)) if self.may_watch_group(caller, &g) => Some(Target::Group(g)),
            _ => None,
        };
        match watched {
            Some(target) => target,
            None if caller.guest => Target::User(caller.user.clone()),
            None => Target::of_active(&caller.user, &self.dir.active_of(&caller.user)),
        }
    }

    /// True when `caller` may see who is online in `group`.
    pub(super) fn may_watch_group(&self, caller: &Caller, group: &str) -> bool {
        let Some(rec) = self.dir.groups.get(group) else {
            return false;
        };
        rec.hash.is_none()
            || rec.members.contains(&caller.user)
            || self
                .unlocked
                .get(&caller.sid)
                .is_some_and(|groups| groups.contains(group))
    }

    /// Makes `caller` online on `conn`, replacing another pipe of theirs,
    /// and notes the change for their watchers (sent by the caller's
    /// [`Presence::flush_due`]).
    fn go_online(&mut self, cx: &mut Cx<'_, Job>, caller: &Caller, req: &Request, mode: Mode) {
        let user = caller.user.as_str();
        if self.continue_poll(caller, req, mode) {
            return;
        }
        let groups = self.dir.groups_of(user);
        let target = self.target_of(caller, Params::of(req).get("watch"));
        let row = Online {
            conn: req.conn,
            mode,
            ip: req.peer.map(|a| a.ip().to_string()).unwrap_or_default(),
            port: req.peer.map_or(0, |a| a.port()),
            node: self.node.clone(),
            sid: caller.sid.clone(),
            groups: groups.clone(),
            target,
            since: unix_now(),
            guest: caller.guest,
            batched: batched(req),
        };
        let old = self.table.insert(user, row, &groups);
        let was_online = old.is_some();
        match old {
            Some(old) if old.conn != req.conn => {
                let last = self.queues.get(user).map_or(0, |m| m.last());
                let json = json!({ "seq": last, "by": "a newer connection" }).to_string();
                let note = Event::own(last, "replaced", json);
                send(cx, &old, &note);
                cx.close(old.conn);
                log::debug!(
                    "{}: presence: {user}'s pipe replaced by {}",
                    old.conn,
                    req.conn
                );
            }
            Some(_) => {}
            None => {
                self.deliver_stored(cx, user);
                self.db.log(user, "online", self.node.clone());
            }
        }
        self.note_change(user, was_online);
    }

    /// The next poll of a user already online by polling (on any
    /// connection) only moves their row to it: not a replacement, no update.
    fn continue_poll(&mut self, caller: &Caller, req: &Request, mode: Mode) -> bool {
        let Some(row) = self.table.get(&caller.user) else {
            return false;
        };
        let same = row.conn == req.conn
            || matches!(
                (row.mode, mode),
                (Mode::Poll { pending: false, .. }, Mode::Poll { .. })
            );
        if !same {
            return false;
        }
        self.table.set_conn(&caller.user, req.conn);
        if let Some(row) = self.table.get_mut(&caller.user) {
            row.mode = mode;
            row.batched = batched(req);
            row.sid = caller.sid.clone();
            row.ip = req.peer.map(|a| a.ip().to_string()).unwrap_or_default();
            row.port = req.peer.map_or(0, |a| a.port());
        }
        true
    }

    /// `GET /jchat`: the held pipe (lines by default, SSE when asked, one
    /// line per text frame on a WebSocket upgrade), or one long-poll (`mode=poll`).
    pub(super) fn jchat(
        &mut self,
        req: &Request,
        p: &Params,
        caller: Caller,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        let since = p
            .get("since")
            .or_else(|| req.header("last-event-id"))
            .and_then(|s| s.trim().parse::<u64>().ok());
        if p.get("mode") == Some("poll") {
            return self.poll(req, p, &caller, since, cx);
        }
        let upgrade = match crate::server::websocket_hold(req, false) {
            Ok(upgrade) => upgrade,
            Err(refusal) => return Reply::Respond(refusal),
        };
        let framing = if upgrade.is_some() {
            Framing::WebSocket
        } else if req.accepts("text/event-stream") {
            Framing::Sse
        } else {
            Framing::Chunked
        };
        let mut hold = upgrade.unwrap_or_else(|| Hold::new(framing));
        self.go_online(cx, &caller, req, Mode::Stream(framing));
        // What is due goes out first (queued for this pipe too), so that the
        // first events below account for it.
        self.flush_due(cx);
        let mut events = self.hello_or_catchup(&caller, None);
        if since.is_some() {
            events.extend(self.hello_or_catchup(&caller, since));
        } else if batched(req) {
            events.extend(self.resync(&caller.user));
        }
        for event in events {
            hold = hold.with_initial(event.message(framing));
        }
        Reply::Hold(hold)
    }

    /// The `hello` event (when `since` is not given), or the queued events
    /// after `since`. When the queue dropped some: a `gap` first, or for a
    /// batched pipe a `resync` of its view instead of the lost events.
    fn hello_or_catchup(&mut self, caller: &Caller, since: Option<u64>) -> Vec<Event> {
        let batched = self.table.get(&caller.user).is_some_and(|r| r.batched);
        let Some(queue) = self.queues.get(&caller.user) else {
            return Vec::new();
        };
        if let Some(since) = since {
            let found = queue.after(since);
            return match found.gap {
                Some(_) if batched => self.resync(&caller.user),
                _ => catchup(found),
            };
        }
        let last = queue.last();
        let mut hello =
            json!({ "user": caller.user, "node": self.node, "guest": caller.guest, "seq": last });
        if batched {
            hello["v"] = json!(2);
        }
        vec![Event::own(last, "hello", hello.to_string())]
    }

    /// One long-poll: answers at once with the events after `since`, or
    /// waits for the next one (`204` after the timeout).
    fn poll(
        &mut self,
        req: &Request,
        p: &Params,
        caller: &Caller,
        since: Option<u64>,
        cx: &mut Cx<'_, Job>,
    ) -> Reply {
        let timeout = p
            .get("timeout")
            .and_then(|t| t.parse::<u64>().ok())
            .map_or(POLL_TIMEOUT, Duration::from_millis)
            .clamp(Duration::from_millis(50), Duration::from_secs(120));
        let was_online = self.table.is_online(&caller.user);
        let mode = Mode::Poll {
            pending: true,
            idle_since: cx.now(),
            grace: (timeout * 2).max(Duration::from_millis(200)),
        };
        self.go_online(cx, caller, req, mode);
        self.flush_due(cx);
        let mut events = self.hello_or_catchup(caller, since);
        if since.is_none() && batched(req) && !was_online {
            events.extend(self.resync(&caller.user));
        }
        let ready = since.is_none() || !events.is_empty();
        if let (true, Some(row)) = (ready, self.table.get_mut(&caller.user)) {
            row.mode = Mode::Poll {
                pending: false,
                idle_since: cx.now(),
                grace: (timeout * 2).max(Duration::from_millis(200)),
            };
        }
        if !ready {
            // Caught up: the next page of stored messages, if one waits.
            self.deliver_stored(cx, &caller.user);
            let hold = Hold::new(Framing::LongPoll).with_timeout(timeout);
            return Reply::Hold(
                hold.with_header("X-Altsock-Since", since.unwrap_or(0).to_string()),
            );
        }
        let last = events.last().map_or(0, |e| e.seq);
        let body: String = events.iter().map(Event::line).collect();
        Reply::Respond(
            Response::new(200)
                .header("Content-Type", "text/plain; charset=utf-8")
                .header("Cache-Control", "no-cache, no-transform")
                .header("X-Altsock-Id", last.to_string())
                .body(body),
        )
    }

    /// A connection closed: a streaming user goes offline; a poll just ends.
    pub(super) fn pipe_closed(&mut self, conn: ConnId, reason: CloseReason, cx: &mut Cx<'_, Job>) {
        let Some(user) = self.table.user_of(conn).cloned() else {
            return;
        };
        let now = cx.now();
        let Some(row) = self.table.get_mut(&user) else {
            return;
        };
        match &mut row.mode {
            Mode::Stream(_) => self.go_offline(cx, &user, &reason.to_string()),
            Mode::Poll {
                pending,
                idle_since,
                ..
            } => {
                *pending = false;
                *idle_since = now;
                self.table.forget_conn(conn);
            }
        }
    }

    /// A long-poll answered or timed out: the user stays online for a grace.
    pub(super) fn poll_released(&mut self, conn: ConnId, cx: &mut Cx<'_, Job>) {
        let now = cx.now();
        let Some(user) = self.table.user_of(conn).cloned() else {
            return;
        };
        if let Some(row) = self.table.get_mut(&user) {
            if let Mode::Poll {
                pending,
                idle_since,
                ..
            } = &mut row.mode
            {
                *pending = false;
                *idle_since = now;
            }
        }
    }

    /// Long-poll users who stopped polling go offline.
    pub(super) fn expire_polls(&mut self, cx: &mut Cx<'_, Job>) {
        let now = cx.now();
        let gone: Vec<String> = self
            .table
            .users()
            .filter(|(_, row)| match row.mode {
                Mode::Poll {
                    pending: false,
                    idle_since,
                    grace,
                } => now.duration_since(idle_since) > grace,
                _ => false,
            })
            .map(|(u, _)| u.clone())
            .collect();
        for user in gone {
            self.go_offline(cx, &user, "poll timeout");
        }
    }
}

/// Sends one event down `row`'s pipe (a waiting poll takes it as its answer).
pub(super) fn send(cx: &mut Cx<'_, Job>, row: &Online, event: &Event) {
    let framing = match row.mode {
        Mode::Stream(framing) => framing,
        Mode::Poll { pending: true, .. } => Framing::LongPoll,
        Mode::Poll { .. } => return,
    };
    if cx.push(row.conn, &event.message(framing)).is_err() {
        log::debug!("{}: presence: push found the pipe gone", row.conn);
    }
}

/// The events after `since`, a `gap` first if the queue dropped some.
fn catchup(found: Catchup) -> Vec<Event> {
    let mut out = Vec::with_capacity(found.events.len() + 1);
    if let Some((from, to)) = found.gap {
        let json = json!({ "from": from, "to": to, "seq": to }).to_string();
        out.push(Event::own(to, "gap", json));
    }
    out.extend(found.events);
    out
}

/// True when the pipe asks for batched `updates` and `resync` (`v=2`).
fn batched(req: &Request) -> bool {
    Params::of(req).get("v").is_some_and(|v| v.trim() == "2")
}
