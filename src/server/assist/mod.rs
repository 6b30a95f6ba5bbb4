//! Live assist (issue 8, seeds 000 and 001): a widget on any page of an
//! allowed origin, the representatives' console, routing, chat, canned
//! texts, push and pull of URLs and content, presenter mode and the
//! activity log. The API is `docs/assist.md`.
//!
//! A site is a presence group; its members are its representatives. A
//! visitor's channel is the hub's one connection per browser: the service
//! delivers visitor events into the visitor's hub mailbox (app `assist`),
//! so a visitor costs only its registry entry here. Each console holds one
//! stream of its site's events.
//!
//! This file owns the service's state, its settings and the way in from
//! [`ServerRouter`]; `routing` who gets which visitor (pure); `site` one
//! site's state and console events; `visitors` the visitor registry;
//! `widget` the visitor endpoints; `console` the representatives'
//! endpoints; `commands` what representatives do to visitors; `log` the
//! activity log; `store` the SQL; `input` parameters and checks; `pages`
//! the page and script assets.

mod alarm;
mod commands;
mod console;
pub mod input;
mod log;
mod pages;
pub mod routing;
mod site;
pub mod store;
mod visitors;
mod widget;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::hub::HubSecret;
use super::presence::db::Db;
use super::{Job, ServerRouter};
use crate::{ConnId, Cx, Reply, Request};
use site::Site;
use visitors::Visitor;

/// Settings of the live-assist service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssistConfig {
    /// Page origins allowed to embed the widget (`*`: any).
    pub origins: Vec<String>,
    /// Open chats a representative may have and still be offered more.
    pub chat_cap: usize,
    /// An offered chat not accepted within this passes on.
    pub answer_timeout: Duration,
    /// A representative whose last console stream closed stays present
    /// this long.
    pub rep_grace: Duration,
    /// A visitor without a hub connection and silent this long has left.
    pub visitor_linger: Duration,
    /// Most visitors per site at once.
    pub max_visitors: usize,
    /// Most visitors waiting per site.
    pub max_queue: usize,
    /// Longest chat line in bytes.
    pub max_chat: usize,
    /// Most canned texts per site.
    pub max_canned: usize,
    /// Visitor requests per second per visitor (bursts of three seconds').
    pub visitor_rate: u32,
    /// New visitors per second from one client address (IPv6: one /64),
    /// bursts of three seconds'.
    pub arrivals_per_addr: u32,
    /// How long a console long-poll waits before answering `204`.
    pub longpoll_timeout: Duration,
}

impl Default for AssistConfig {
    fn default() -> Self {
        AssistConfig {
            origins: Vec::new(),
            chat_cap: 4,
            answer_timeout: Duration::from_secs(30),
            rep_grace: Duration::from_secs(10),
            visitor_linger: Duration::from_secs(60),
            max_visitors: 50_000,
            max_queue: 200,
            max_chat: 2000,
            max_canned: 200,
            visitor_rate: 10,
            arrivals_per_addr: 20,
            longpoll_timeout: Duration::from_secs(30),
        }
    }
}

/// Counters shared with the database thread.
#[derive(Debug, Default)]
pub struct Stats {
    /// Log rows written.
    pub logged: AtomicU64,
    /// Log rows lost (queue full or write failed).
    pub log_dropped: AtomicU64,
    /// Pushed URLs refused (foreign origin).
    pub push_refused: AtomicU64,
    /// Events delivered to visitors' mailboxes.
    pub delivered: AtomicU64,
}

/// A console stream: who holds it, on which site.
#[derive(Debug, Clone)]
struct Console {
    site: Arc<str>,
    rep: String,
}

/// The live-assist service.
pub struct Assist {
    cfg: AssistConfig,
    db: Db,
    secret: HubSecret,
    epoch: Instant,
    sites: HashMap<Arc<str>, Site>,
    settings: store::Settings,
    visitors: HashMap<u128, Visitor>,
    consoles: HashMap<ConnId, Console>,
    /// New visitors' rate per client address.
    arrivals: HashMap<std::net::IpAddr, input::Bucket>,
    /// Events for visitors, delivered into their hub mailboxes after each turn.
    outbox: Vec<(Box<str>, Value)>,
    stats: Arc<Stats>,
    /// Ids of chat lines, pushes and pulls.
    next_id: u64,
    /// Unix ms at `epoch`.
    epoch_wall: i64,
    /// Wakes the engine thread for queue announcements (started on first use).
    alarm: Option<alarm::Alarm>,
    next_sweep: u64,
}

impl Assist {
    /// Makes the tables and loads the sites' settings through the database
    /// thread. Blocking: runs before the engine loop.
    pub fn open(cfg: AssistConfig, db: Db, secret: HubSecret) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        db.write_unbounded(store::load, move |r| {
            let _ = tx.send(r);
        });
        let settings = rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::other)?;
        Ok(Assist {
            cfg,
            db,
            secret,
            epoch: Instant::now(),
            sites: HashMap::new(),
            settings,
            visitors: HashMap::new(),
            consoles: HashMap::new(),
            arrivals: HashMap::new(),
            outbox: Vec::new(),
            stats: Arc::default(),
            next_id: 0,
            epoch_wall: wall_ms(),
            alarm: None,
            next_sweep: 0,
        })
    }

    /// The settings.
    pub fn config(&self) -> &AssistConfig {
        &self.cfg
    }

    /// Visitors in the registry.
    pub fn visitor_count(&self) -> usize {
        self.visitors.len()
    }

    /// True for the paths this service answers.
    pub fn claims(&self, req: &Request) -> bool {
        let path = req.path();
        path == "/assist.js" || path.starts_with("/assist/")
    }

    /// Milliseconds on the service's monotonic clock.
    fn mono(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// The site named `name`, made from its stored settings on first use.
    fn site(&mut self, name: &str) -> &mut Site {
        if !self.sites.contains_key(name) {
            let key: Arc<str> = Arc::from(name);
            let site = Site::new(key.clone(), &self.cfg, &mut self.settings);
            self.sites.insert(key.clone(), site);
        }
        self.sites.get_mut(name).expect("just made")
    }

    /// Queues an event for a visitor's mailbox.
    fn tell_visitor(&mut self, visitor: u128, event: Value) {
        if let Some(v) = self.visitors.get(&visitor) {
            self.outbox.push((v.client().into(), event));
        }
    }

    /// A console stream closed.
    fn console_closed(&mut self, conn: ConnId, now: Instant) {
        let Some(console) = self.consoles.remove(&conn) else {
            return;
        };
        let grace = self.cfg.rep_grace;
        let deadline = self.mono(now) + grace.as_millis() as u64;
        if let Some(site) = self.sites.get_mut(&console.site) {
            site.stream_gone(conn, &console.rep, deadline);
        }
    }

    /// The `/metrics` lines.
    pub fn metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let waiting: usize = self.sites.values().map(|s| s.routing.queue().len()).sum();
        let lines = [
            (
                "altsock_assist_visitors",
                "gauge",
                "Visitors in the registry.",
                self.visitors.len() as u64,
            ),
            (
                "altsock_assist_consoles",
                "gauge",
                "Held console streams.",
                self.consoles.len() as u64,
            ),
            (
                "altsock_assist_waiting",
                "gauge",
                "Visitors waiting in queues.",
                waiting as u64,
            ),
            (
                "altsock_assist_log_total",
                "counter",
                "Activity-log rows written.",
                self.stats.logged.load(Relaxed),
            ),
            (
                "altsock_assist_log_dropped_total",
                "counter",
                "Activity-log rows lost.",
                self.stats.log_dropped.load(Relaxed),
            ),
            (
                "altsock_assist_push_refused_total",
                "counter",
                "Pushed URLs refused.",
                self.stats.push_refused.load(Relaxed),
            ),
            (
                "altsock_assist_delivered_total",
                "counter",
                "Events delivered to visitors.",
                self.stats.delivered.load(Relaxed),
            ),
        ];
        for (name, kind, help, value) in lines {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
}

/// Answers a request [`Assist::claims`] took, then delivers the visitor
/// events it made.
pub fn handle(router: &mut ServerRouter, req: Request, cx: &mut Cx<'_, Job>) -> Reply {
    let path = req.path().to_string();
    let reply = match path.as_str() {
        "/assist.js" | "/assist/console.js" | "/assist/console.css" | "/assist/demo" => {
            pages::asset(&path)
        }
        "/assist/console" => console::page(router, &req),
        "/assist/stream" => console::stream(router, &req, cx),
        "/assist/log" => log::query(router, &req, cx),
        "/assist/canned" => console::list_canned(router, &req),
        p if p.starts_with("/assist/console/") || p.starts_with("/assist/canned/") => {
            console::command(router, &req, cx)
        }
        _ => widget::handle(router, &req, cx),
    };
    flush(router, cx);
    reply
}

/// Delivers the queued visitor events into the visitors' hub mailboxes.
pub fn flush(router: &mut ServerRouter, cx: &mut Cx<'_, Job>) {
    let ServerRouter { assist, hub, .. } = router;
    if assist.outbox.is_empty() {
        return;
    }
    let mut delivered = 0;
    for (client, event) in assist.outbox.drain(..) {
        let Ok(data) = serde_json::value::to_raw_value(&event) else {
            continue;
        };
        hub.deliver(client.into(), "assist".into(), data, cx);
        delivered += 1;
    }
    assist.stats.delivered.fetch_add(delivered, Relaxed);
}

/// A console stream ended.
pub fn closed(router: &mut ServerRouter, conn: ConnId, cx: &mut Cx<'_, Job>) {
    router.assist.console_closed(conn, cx.now());
}

/// Once per poll interval: passes on lapsed offers, requeues the chats of
/// representatives who left, and lets go of visitors who left.
pub fn tick(router: &mut ServerRouter, cx: &mut Cx<'_, Job>) {
    let now = router.assist.mono(cx.now());
    let names: Vec<Arc<str>> = router.assist.sites.keys().cloned().collect();
    for name in names {
        commands::site_tick(&mut router.assist, &name, now, cx);
    }
    if now >= router.assist.next_sweep {
        let linger = router.assist.cfg.visitor_linger.as_millis() as u64;
        router.assist.next_sweep = now + (linger / 4).clamp(1, 1000);
        widget::sweep(router, now, cx);
    }
    flush(router, cx);
}

/// Unix milliseconds.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
