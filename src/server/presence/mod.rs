//! The presence server of the patent (`002`), with the chat invitation of
//! `004`: accounts and sessions, the held `/jchat` pipe, the UserTable and
//! GroupTable with their propagation, groups and address books, type chat
//! with stored messages, static URLs and the communications pages.
//!
//! # Layout
//!
//! - [`params`], [`origin`], [`caller`], [`html`], [`answers`], [`ids`]:
//!   request parameters, the `Origin` check, who a request speaks for,
//!   escaping, JSON answers, random ids and the clock.
//! - [`db`]: SQLite schema, migrations, start-up load, the database thread
//!   with its bounded group-commit queue.
//! - [`store`]: the SQL, run on the database thread.
//! - [`directory`]: accounts, groups and address books in memory.
//! - [`table`]: the UserTable, GroupTable, watch index and event queues.
//! - [`hashing`]: the password-hashing threads and their bounded queue.
//! - [`throttle`]: the limit on password guesses.
//! - [`coalesce`]: presence changes batched per target, last state wins.
//! - [`roster`]: each group's members by index, with their online bits.
//! - `propagate`: batches out to watchers (`updates`, `update`, `resync`).
//! - [`seed`]: the benchmark's seeding path (`altsock seed-bench`).
//! - [`push`]: the general door to push a named event to a user's pipe.
//! - `accounts`, `pipe`, `groups`, `chat`, `invites`, `pages`: the endpoints.
//!
//! Everything here runs on the engine thread and never blocks: hashing and
//! SQLite run on worker threads and come back as [`Job`]s. An answer that
//! promises storage waits for the commit of the transaction holding it.

mod accounts;
pub mod answers;
pub mod caller;
mod chat;
pub mod coalesce;
pub mod db;
pub mod directory;
mod groups;
mod guests;
pub mod hashing;
pub mod html;
pub mod ids;
mod invites;
pub mod origin;
mod pages;
pub mod params;
mod pipe;
mod propagate;
pub mod push;
pub mod roster;
pub mod seed;
pub mod store;
pub mod table;
pub mod throttle;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::sessions::SessionLimits;
use super::{Job, Seen, ServerState, Service};
use crate::http::decode_path_segment;
use crate::{CloseReason, ConnId, Cx, Handle, Reply, Request, RequestId, Response};
use answers::error;
use caller::Caller;
use coalesce::Coalescer;
use db::{Busy, Db, StoreConfig};
use directory::Directory;
use guests::Guests;
use hashing::HashQueue;
use params::Params;
use table::{EventQueue, UserTable};
use throttle::Throttle;

/// Settings of the presence server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceConfig {
    /// Password-hashing threads (each keeps one 19 MiB argon2 block).
    pub hash_threads: usize,
    /// Password checks that may wait for a hashing thread; more get `503`.
    pub hash_queue: usize,
    /// Most guest sessions at once; the oldest guest is ended past it.
    pub max_guests: usize,
    /// How long sessions live.
    pub sessions: SessionLimits,
    /// The least time between two batches of presence changes to one group
    /// (the changes in between are coalesced, last state wins; zero: every
    /// change at once).
    pub window: Duration,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            hash_threads: 1,
            hash_queue: 64,
            max_guests: 10_000,
            sessions: SessionLimits::default(),
            window: Duration::from_millis(50),
        }
    }
}

/// Most events a user's queue holds before the oldest drop (and a `gap`).
pub const QUEUE_CAP: usize = 256;

/// Longest chat message in bytes.
pub const MAX_CHAT: usize = 4096;

/// A pending chat invitation (seed `004`).
#[derive(Debug, Clone)]
pub struct Invite {
    /// Who invites.
    pub from: String,
    /// Their message, possibly empty.
    pub msg: String,
}

/// The presence service: all state of presence, groups and chat.
pub struct Presence {
    db: Db,
    dir: Directory,
    table: UserTable,
    /// Each logged-in user's event queue.
    queues: HashMap<String, EventQueue>,
    /// Presence changes waiting to go out, per target.
    coalescer: Coalescer,
    /// Each group's members by roster index, for the batched pipe.
    rosters: roster::Rosters,
    alarm: Option<crate::server::alarm::Alarm>,
    /// When the alarm is set to ring.
    alarm_at: Option<Instant>,
    /// Each user's session ids, oldest first.
    user_sessions: HashMap<String, Vec<String>>,
    /// Names being registered right now.
    pending_names: HashSet<String>,
    invites: HashMap<String, Vec<Invite>>,
    throttle: Throttle,
    hashing: HashQueue,
    node: String,
    last_message: i64,
    /// Guest sessions, oldest first.
    guests: Guests,
    max_guests: usize,
    /// Protected groups each session opened with the group's password.
    unlocked: HashMap<String, HashSet<String>>,
    /// When expired sessions are next swept out.
    next_sweep: Instant,
    /// The limits on stored messages.
    limits: StoreConfig,
    /// Undelivered stored messages by recipient, and by sender.
    stored_for: HashMap<String, usize>,
    stored_by: HashMap<String, usize>,
    /// Users whose stored messages are being delivered, page by page: `None`
    /// while a page is being read, `Some(last id)` while a long-polling user
    /// has not yet fetched the last page.
    delivering: HashMap<String, Option<i64>>,
    /// Stored messages refused: recipient full, sender full.
    refused: [u64; 2],
    /// Stored messages delivered at login, and the pages they came in.
    stored_delivered: (u64, u64),
}

impl Presence {
    /// Opens the database (creating and migrating it) and loads the
    /// directory. Blocking: runs before the engine loop.
    pub fn open(config: &super::ServerConfig) -> std::io::Result<Self> {
        let (db, dir, loaded) = db::open(&config.db_path, &config.store)?;
        log::info!(
            "presence: {} users, {} groups in {}",
            dir.users.len(),
            dir.groups.len(),
            config.db_path.display()
        );
        let p = &config.presence;
        Ok(Presence {
            db,
            dir,
            table: UserTable::default(),
            queues: HashMap::new(),
            coalescer: Coalescer::new(p.window),
            rosters: roster::Rosters::new(ids::session_id()?[..8].to_string()),
            alarm: None,
            alarm_at: None,
            user_sessions: HashMap::new(),
            pending_names: HashSet::new(),
            invites: HashMap::new(),
            throttle: Throttle::default(),
            hashing: HashQueue::start(p.hash_threads, p.hash_queue)?,
            node: config.node_id.clone(),
            last_message: loaded.last_message,
            guests: Guests::default(),
            max_guests: p.max_guests.max(1),
            unlocked: HashMap::new(),
            next_sweep: Instant::now(),
            limits: config.store.clone(),
            stored_for: loaded.for_recipient,
            stored_by: loaded.by_sender,
            delivering: HashMap::new(),
            refused: [0; 2],
            stored_delivered: (0, 0),
        })
    }

    /// The database thread (the live-assist service writes through it too).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// True when a group named `name` exists (a live-assist site).
    pub fn has_group(&self, name: &str) -> bool {
        self.dir.groups.contains_key(name)
    }

    /// True when `user` is online.
    pub fn is_online(&self, user: &str) -> bool {
        self.table.is_online(user)
    }

    /// Routes one request; a refusal (no session, or the wrong kind) is
    /// decided once in [`Presence::dispatch`] rather than in every handler.
    fn route(&mut self, req: Request, shared: &mut ServerState, cx: &mut Cx<'_, Job>) -> Reply {
        self.dispatch(req, shared, cx)
            .unwrap_or_else(|refusal| refusal)
    }

    /// Routes one request; `Err` is a refusal.
    fn dispatch(
        &mut self,
        req: Request,
        shared: &mut ServerState,
        cx: &mut Cx<'_, Job>,
    ) -> Result<Reply, Reply> {
        let path = req.path().to_string();
        let method = req.method.clone();
        let p = Params::of(&req);
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let seg = |s: &str| decode_path_segment(s);
        Ok(match (method.as_str(), segs.as_slice()) {
            ("GET" | "HEAD", [""]) => self.index_page(&req, shared),
            ("GET" | "HEAD", ["home"]) => self.home_page(&req, shared),
            ("GET" | "HEAD", ["static", file]) => pages::asset(file),
            ("POST", ["register"]) => self.register(&req, &p, cx),
            ("POST", ["login"]) => self.login(&req, &p, cx),
            ("POST", ["logout"]) => {
                let me = caller(&req, &p, shared)?;
                self.logout(req.conn, me, shared, cx)
            }
            ("GET", ["jchat"]) => {
                let me = caller(&req, &p, shared)?;
                self.jchat(&req, &p, me, cx)
            }
            ("GET" | "POST", ["initchat"]) => {
                let me = caller(&req, &p, shared)?;
                self.initchat(&req, &p, me, cx)
            }
            ("POST", ["chat"]) => self.chat(caller(&req, &p, shared)?, &req, &p, cx),
            ("GET", ["messages"]) => self.list_messages(caller(&req, &p, shared)?, &req, cx),
            ("POST", ["messages"]) => self.leave_message(caller(&req, &p, shared)?, &req, &p, cx),
            ("GET", ["groups"]) => self.list_groups(member(&req, &p, shared)?),
            ("GET", ["members"]) => self.list_members(caller(&req, &p, shared)?, &p),
            ("POST", ["groups"]) => self.create_group(member(&req, &p, shared)?, &req, &p, cx),
            ("POST", ["groups", name, action]) => {
                let me = member(&req, &p, shared)?;
                self.group_action(me, &req, &p, cx, &seg(name), action)
            }
            ("POST", ["contacts"]) => self.add_contact(member(&req, &p, shared)?, &req, &p, cx),
            ("DELETE", ["contacts", name]) => {
                self.remove_contact(member(&req, &p, shared)?, &req, cx, &seg(name))
            }
            ("POST", ["resync"]) => self.resync_request(caller(&req, &p, shared)?, cx),
            ("POST", ["active"]) => self.set_active(member(&req, &p, shared)?, &req, &p, cx),
            ("GET" | "HEAD" | "POST", ["call", name]) => {
                self.call_page(&req, &p, shared, cx, &seg(name))
            }
            ("GET" | "HEAD", [name]) => self.static_url(&seg(name)),
            _ => Reply::Respond(error(404, "not found")),
        })
    }

    /// Ends sessions past their idle or absolute limit (at most every
    /// quarter of the shorter limit, and at least every 30 s). A session
    /// whose pipe is held open is in use, so only the absolute limit ends it.
    fn sweep_sessions(&mut self, shared: &mut ServerState, cx: &mut Cx<'_, Job>) {
        let now = cx.now();
        if now < self.next_sweep {
            return;
        }
        let limits = shared.sessions.limits();
        let every = (limits.idle.min(limits.absolute) / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(30));
        self.next_sweep = now + every;
        for (sid, why) in shared.sessions.expired(Instant::now()) {
            let held = shared
                .sessions
                .get_even_expired(&sid)
                .is_some_and(|s| self.table.get(&s.user).is_some_and(|r| r.sid == sid));
            if held && why == super::sessions::Expiry::Idle {
                shared.sessions.touch(&sid);
                continue;
            }
            log::debug!("presence: session expired ({why:?})");
            self.end_session(shared, cx, &sid, "session expired");
        }
    }

    /// Appends the presence server's gauges and counters (Prometheus text).
    fn write_metrics(&self, shared: &ServerState, out: &mut String) {
        let invites: usize = self.invites.values().map(Vec::len).sum();
        let unlocked: usize = self.unlocked.values().map(HashSet::len).sum();
        let lines = [
            (
                "altsock_presence_sessions",
                "gauge",
                shared.sessions.len() as u64,
            ),
            ("altsock_presence_guests", "gauge", self.guests.len() as u64),
            (
                "altsock_presence_online",
                "gauge",
                self.table.users().count() as u64,
            ),
            ("altsock_presence_invitations", "gauge", invites as u64),
            ("altsock_presence_unlocked_groups", "gauge", unlocked as u64),
            (
                "altsock_presence_hash_waiting",
                "gauge",
                self.hashing.waiting() as u64,
            ),
            (
                "altsock_presence_hash_dropped_total",
                "counter",
                self.hashing.dropped(),
            ),
            (
                "altsock_presence_throttle_entries",
                "gauge",
                self.throttle.len() as u64,
            ),
        ];
        for (name, kind, value) in lines {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {value}");
        }
        self.store_metrics(out);
    }
}

/// The services' interface to users' pipes, over [`Presence::push_event`].
impl super::UserEvents for Presence {
    fn notify_user(
        &mut self,
        cx: &mut Cx<'_, Job>,
        user: &str,
        kind: &'static str,
        payload: serde_json::Value,
    ) -> bool {
        self.push_event(cx, user, kind, payload) != push::Pushed::NotLoggedIn
    }
}

/// Group membership for the hub's `private-group-` channels.
impl crate::server::hub::Groups for Presence {
    fn is_member(&self, group: &str, user: &str) -> bool {
        self.dir
            .groups
            .get(group)
            .is_some_and(|g| g.members.contains(user))
    }
}

impl Service for Presence {
    fn claims(&self, _req: &Request) -> bool {
        // The catch-all: static URLs are any top-level name.
        true
    }

    fn handle(&mut self, req: Request, shared: &mut ServerState, cx: &mut Cx<'_, Job>) -> Reply {
        let changes = origin::is_state_changing(&req) || req.path() == "/initchat";
        if changes && !origin::origin_ok(&req) {
            log::debug!(
                "{}: presence: cross-origin {} refused",
                req.conn,
                req.path()
            );
            return Reply::Respond(error(403, "cross-origin request refused"));
        }
        self.route(req, shared, cx)
    }

    fn amend(&mut self, seen: &Seen, shared: &ServerState, reply: Reply) -> Reply {
        // Chat invitation by content modification (seed `004`): any HTML
        // page the invitee loads, whoever served it.
        if self.invites.is_empty() {
            return reply;
        }
        let viewer = seen
            .session_cookie
            .as_deref()
            .and_then(|sid| caller::page_viewer_by_id(sid, &shared.sessions));
        match viewer {
            Some(viewer) if self.invites.contains_key(&viewer.user) => {
                self.modify_page(&viewer, reply)
            }
            _ => reply,
        }
    }

    fn closed(&mut self, conn: ConnId, reason: CloseReason, cx: &mut Cx<'_, Job>) {
        self.drop_hashing_of(conn);
        self.pipe_closed(conn, reason, cx);
    }

    fn released(&mut self, conn: ConnId, cx: &mut Cx<'_, Job>) {
        self.poll_released(conn, cx);
    }

    fn metrics(&self, shared: &ServerState, out: &mut String) {
        self.write_metrics(shared, out);
    }

    fn tick(&mut self, cx: &mut Cx<'_, Job>) {
        self.expire_polls(cx);
        self.throttle.prune(cx.now());
    }

    fn sweep(&mut self, shared: &mut ServerState, cx: &mut Cx<'_, Job>) {
        self.sweep_sessions(shared, cx);
    }
}

/// The caller a request presents (see [`caller`]), or `403`.
fn caller(req: &Request, p: &Params, shared: &mut ServerState) -> Result<Caller, Reply> {
    caller::authenticate(req, p, &mut shared.sessions).ok_or_else(forbidden)
}

/// A registered (non-guest) caller, or `403`.
fn member(req: &Request, p: &Params, shared: &mut ServerState) -> Result<Caller, Reply> {
    match caller::authenticate(req, p, &mut shared.sessions) {
        Some(c) if !c.guest => Ok(c),
        Some(_) => Err(Reply::Respond(error(403, "guests have no groups"))),
        None => Err(forbidden()),
    }
}

/// `403` for a request without a valid session.
fn forbidden() -> Reply {
    Reply::Respond(error(403, "no valid session"))
}

/// Completes deferred request `req` (named by id: pipelined requests on one
/// connection may complete out of order), logging a connection that went away.
fn finish(cx: &mut Cx<'_, Job>, req: RequestId, response: Response) {
    if cx.respond(req, response).is_err() {
        log::debug!("{req}: presence: deferred answer found the connection gone");
    }
}

impl Drop for Presence {
    /// Waits (briefly) for the database thread to commit the writes queued
    /// before the server stopped.
    fn drop(&mut self) {
        if !self.db.flush(std::time::Duration::from_secs(5)) {
            log::warn!("presence: database writes did not finish in time");
        }
    }
}

/// A `503` for a write the database queue has no room for.
fn busy() -> Response {
    error(503, "the database is busy; try again shortly").header("Retry-After", "1")
}

/// The continuation of a write whose answer waits for its commit: `ok`
/// once committed, `500` if it failed; sent to the engine as a [`Job`].
fn answer_when_committed(
    handle: Handle<Job>,
    req: RequestId,
    ok: Response,
) -> impl FnOnce(Result<(), String>) + Send + 'static {
    move |result| {
        let response = result.map(|()| ok).unwrap_or_else(|e| {
            log::warn!("{req}: presence: write failed: {e}");
            error(500, "could not store the change")
        });
        handle.send(Job::new(move |_, cx| finish(cx, req, response)));
    }
}

impl Presence {
    /// Queues `apply` and answers `ok` to `req` once the transaction
    /// holding it committed. `Err` with the `503` when the queue is full:
    /// nothing was queued, and the caller must change nothing.
    fn write_then_answer(
        &self,
        cx: &Cx<'_, Job>,
        req: RequestId,
        apply: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()> + Send + 'static,
        ok: Response,
    ) -> Result<(), Response> {
        self.db
            .write(apply, answer_when_committed(cx.handle(), req, ok))
            .map_err(|Busy| busy())
    }

    /// The counters of the database queue, the activity log and stored
    /// messages in the Prometheus text format, for `/metrics`.
    fn store_metrics(&self, out: &mut String) {
        out.push_str(&self.db.metrics());
        let stored: usize = self.stored_for.values().sum();
        out.push_str(&format!(
            "# HELP altsock_stored_messages Undelivered stored messages.\n\
             # TYPE altsock_stored_messages gauge\naltsock_stored_messages {stored}\n\
             # HELP altsock_stored_refused_total Stored messages refused at a limit.\n\
             # TYPE altsock_stored_refused_total counter\n\
             altsock_stored_refused_total{{limit=\"recipient\"}} {}\n\
             altsock_stored_refused_total{{limit=\"sender\"}} {}\n\
             # HELP altsock_stored_delivered_total Stored messages delivered at login.\n\
             # TYPE altsock_stored_delivered_total counter\naltsock_stored_delivered_total {}\n\
             # HELP altsock_stored_pages_total Pages (engine jobs) they were delivered in.\n\
             # TYPE altsock_stored_pages_total counter\naltsock_stored_pages_total {}\n",
            self.refused[0], self.refused[1], self.stored_delivered.0, self.stored_delivered.1
        ));
    }
}
