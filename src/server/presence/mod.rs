//! The presence server of the patent (`002`), with the chat invitation of
//! `004`: accounts and sessions, the held `/jchat` pipe, the UserTable and
//! GroupTable with their propagation, groups and address books, type chat
//! with stored messages, static URLs and the communications pages.
//!
//! # Layout
//!
//! - [`web`]: parameters, the `Origin` check, callers, escaping.
//! - [`db`]: SQLite schema, migrations, start-up load, the database thread
//!   with its bounded group-commit queue.
//! - [`store`]: the SQL, run on the database thread.
//! - [`directory`]: accounts, groups and address books in memory.
//! - [`table`]: the UserTable, GroupTable, watch index and event queues.
//! - [`workers`]: the password-hashing threads.
//! - `accounts`, `pipe`, `groups`, `chat`, `invites`, `pages`: the endpoints.
//!
//! Everything here runs on the engine thread and never blocks: hashing and
//! SQLite run on worker threads and come back as [`Job`]s. An answer that
//! promises storage waits for the commit of the transaction holding it.

mod accounts;
mod chat;
pub mod db;
pub mod directory;
mod groups;
mod invites;
mod pages;
mod pipe;
pub mod store;
pub mod table;
pub mod web;
pub mod workers;

use std::collections::{HashMap, HashSet};

use super::{Job, Service, Shared};
use crate::{CloseReason, ConnId, Cx, Handle, Reply, Request, Response};
use accounts::Throttle;
use db::{Busy, Db, StoreConfig};
use directory::Directory;
use table::{Mailbox, UserTable};
use web::{error, Caller, Params};
use workers::Hasher;

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
    boxes: HashMap<String, Mailbox>,
    /// Each user's session ids, oldest first.
    user_sessions: HashMap<String, Vec<String>>,
    /// Names being registered right now.
    pending_names: HashSet<String>,
    invites: HashMap<String, Vec<Invite>>,
    throttle: Throttle,
    hasher: Hasher,
    node: String,
    last_message: i64,
    guests: std::collections::VecDeque<String>,
    /// (session id, group): protected group pages opened with the password.
    unlocked: HashSet<(String, String)>,
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
        Ok(Presence {
            db,
            dir,
            table: UserTable::default(),
            boxes: HashMap::new(),
            user_sessions: HashMap::new(),
            pending_names: HashSet::new(),
            invites: HashMap::new(),
            throttle: Throttle::default(),
            hasher: Hasher::start(2)?,
            node: config.node_id.clone(),
            last_message: loaded.last_message,
            guests: Default::default(),
            unlocked: HashSet::new(),
            limits: config.store.clone(),
            stored_for: loaded.for_recipient,
            stored_by: loaded.by_sender,
            delivering: HashMap::new(),
            refused: [0; 2],
            stored_delivered: (0, 0),
        })
    }

    /// True when `user` is online.
    pub fn is_online(&self, user: &str) -> bool {
        self.table.is_online(user)
    }

    /// Routes one request.
    fn route(&mut self, req: Request, shared: &mut Shared, cx: &mut Cx<'_, Job>) -> Reply {
        self.dispatch(req, shared, cx)
            .unwrap_or_else(|refusal| refusal)
    }

    /// Routes one request; `Err` is a refusal (no or the wrong kind of
    /// session), resolved once here rather than in every handler.
    fn dispatch(
        &mut self,
        req: Request,
        shared: &mut Shared,
        cx: &mut Cx<'_, Job>,
    ) -> Result<Reply, Reply> {
        let path = req.path().to_string();
        let method = req.method.clone();
        let p = Params::of(&req);
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        Ok(match (method.as_str(), segs.as_slice()) {
            ("GET" | "HEAD", [""]) => self.index_page(&req, shared),
            ("GET" | "HEAD", ["home"]) => self.home_page(&req, shared),
            ("GET" | "HEAD", ["static", file]) => pages::asset(file),
            ("POST", ["register"]) => self.register(&req, &p, cx),
            ("POST", ["login"]) => self.login(&req, &p, cx),
            ("POST", ["logout"]) => self.logout(caller(&req, &p, shared)?, shared, cx),
            ("GET", ["jchat"]) => self.jchat(&req, &p, shared, cx),
            ("GET" | "POST", ["initchat"]) => self.initchat(&req, &p, shared, cx),
            ("POST", ["chat"]) => self.chat(caller(&req, &p, shared)?, &req, &p, cx),
            ("GET", ["messages"]) => self.list_messages(caller(&req, &p, shared)?, &req, cx),
            ("POST", ["messages"]) => self.leave_message(caller(&req, &p, shared)?, &req, &p, cx),
            ("GET", ["groups"]) => self.list_groups(member(&req, &p, shared)?),
            ("POST", ["groups"]) => self.create_group(member(&req, &p, shared)?, &req, &p, cx),
            ("POST", ["groups", name, action]) => {
                let name = web::decode_segment(name);
                let me = member(&req, &p, shared)?;
                self.group_action(me, &req, &p, cx, &name, action)
            }
            ("POST", ["contacts"]) => self.add_contact(member(&req, &p, shared)?, &req, &p, cx),
            ("DELETE", ["contacts", name]) => {
                let name = web::decode_segment(name);
                self.remove_contact(member(&req, &p, shared)?, &req, cx, &name)
            }
            ("POST", ["active"]) => self.set_active(member(&req, &p, shared)?, &req, &p, cx),
            ("GET" | "HEAD" | "POST", ["call", name]) => {
                let name = web::decode_segment(name);
                self.call_page(&req, &p, shared, cx, &name)
            }
            ("GET" | "HEAD", [name]) => self.static_url(&web::decode_segment(name)),
            _ => Reply::Respond(error(404, "not found")),
        })
    }
}

impl Service for Presence {
    fn claims(&self, _req: &Request) -> bool {
        // The catch-all: static URLs are any top-level name.
        true
    }

    fn handle(&mut self, req: Request, shared: &mut Shared, cx: &mut Cx<'_, Job>) -> Reply {
        let changes = web::is_state_changing(&req) || req.path() == "/initchat";
        if changes && !web::origin_ok(&req) {
            log::debug!(
                "{}: presence: cross-origin {} refused",
                req.conn,
                req.path()
            );
            return Reply::Respond(error(403, "cross-origin request refused"));
        }
        self.route(req, shared, cx)
    }

    fn closed(&mut self, conn: ConnId, reason: CloseReason, cx: &mut Cx<'_, Job>) {
        self.pipe_closed(conn, reason, cx);
    }

    fn released(&mut self, conn: ConnId, cx: &mut Cx<'_, Job>) {
        self.poll_released(conn, cx);
    }

    fn tick(&mut self, cx: &mut Cx<'_, Job>) {
        self.expire_polls(cx);
    }
}

/// A `403` for a request without a valid session.
/// The caller a request presents (session cookie, or `me` and `id`), or `403`.
fn caller(req: &Request, p: &Params, shared: &Shared) -> Result<Caller, Reply> {
    web::caller(req, p, shared).ok_or_else(forbidden)
}

/// A registered (non-guest) caller, or `403`.
fn member(req: &Request, p: &Params, shared: &Shared) -> Result<Caller, Reply> {
    match web::caller(req, p, shared) {
        Some(c) if !c.guest => Ok(c),
        Some(_) => Err(Reply::Respond(error(403, "guests have no groups"))),
        None => Err(forbidden()),
    }
}

fn forbidden() -> Reply {
    Reply::Respond(error(403, "no valid session"))
}

/// Completes a deferred request, logging a connection that went away.
fn finish(cx: &mut Cx<'_, Job>, conn: ConnId, response: Response) {
    if cx.respond(conn, response).is_err() {
        log::debug!("{conn}: presence: deferred answer found the connection gone");
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
    conn: ConnId,
    ok: Response,
) -> impl FnOnce(Result<(), String>) + Send + 'static {
    move |result| {
        let response = result.map(|()| ok).unwrap_or_else(|e| {
            log::warn!("{conn}: presence: write failed: {e}");
            error(500, "could not store the change")
        });
        handle.send(Job::new(move |_, cx| finish(cx, conn, response)));
    }
}

impl Presence {
    /// Queues `apply` and answers `ok` on `conn` once the transaction
    /// holding it committed. `Err` with the `503` when the queue is full:
    /// nothing was queued, and the caller must change nothing.
    fn write_then_answer(
        &self,
        cx: &Cx<'_, Job>,
        conn: ConnId,
        apply: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()> + Send + 'static,
        ok: Response,
    ) -> Result<(), Response> {
        self.db
            .write(apply, answer_when_committed(cx.handle(), conn, ok))
            .map_err(|Busy| busy())
    }

    /// The presence server's counters (database queue, activity log, stored
    /// messages) in the Prometheus text format, for `/metrics`.
    pub fn metrics(&self) -> String {
        let mut out = self.db.metrics();
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
        out
    }
}
