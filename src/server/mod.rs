//! What `altsock serve` runs above the engine: one [`ServerRouter`] that owns
//! the services (the notification hub and the presence server, asked in that
//! order) and hands each request to the first service that claims it; every
//! service may then amend the answer ([`Service::amend`]). `/metrics` it
//! answers itself, with the engine's counters and the services' own. (The
//! single-stream `/sub` + `/pub` of `examples/pubsub.rs` is an embedding
//! example, not part of the server: it had no publisher token, and the hub's
//! channels do its job with one.)
//!
//! Services run on the engine thread; slow work (hashing, SQLite) runs on
//! worker threads and comes back as a [`Job`] through the engine's handle.

mod alarm;
pub mod assist;
pub mod hub;
pub mod presence;
pub mod sessions;
pub mod sip;
pub mod tls;
pub mod wireless;

use std::path::PathBuf;

use crate::ws::{CloseCode, Upgrade};
use crate::{CloseReason, ConnId, Cx, Hold, Reply, Request, Response, Router, WsMessage};
pub use assist::{Assist, AssistConfig};
pub use hub::{Hub, HubConfig};
pub use presence::{Presence, PresenceConfig};
pub use sessions::{Session, SessionLimits, Sessions};
pub use wireless::{Wireless, WirelessConfig};

/// Settings of the server beyond the engine's.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The SQLite database file.
    pub db_path: PathBuf,
    /// This session manager's node id (the patent's host box identifier).
    pub node_id: String,
    /// The bearer token publishers must present; `None` refuses all publishing.
    pub publish_token: Option<String>,
    /// The notification hub's limits.
    pub hub: HubConfig,
    /// The presence server's settings (hashing, guests, session lifetimes).
    pub presence: PresenceConfig,
    /// The database's durability, queue bound and stored-message limits.
    pub store: presence::db::StoreConfig,
    /// The SMS gateway and the limits of conversations with wireless devices.
    pub wireless: WirelessConfig,
    /// The live-assist service's settings.
    pub assist: AssistConfig,
    /// The SIP relay (`--sip-*`); off without a listen address.
    pub sip: sip::SipConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            db_path: PathBuf::from("altsock.db"),
            node_id: "local".into(),
            publish_token: None,
            hub: HubConfig::default(),
            presence: PresenceConfig::default(),
            store: presence::db::StoreConfig::default(),
            wireless: WirelessConfig::default(),
            assist: AssistConfig::default(),
            sip: sip::SipConfig::default(),
        }
    }
}

/// Work sent back to the engine thread from a worker: a closure that runs
/// with the router and the engine context.
pub struct Job(Box<JobFn>);

/// The continuation inside a [`Job`].
pub type JobFn = dyn FnOnce(&mut ServerRouter, &mut Cx<'_, Job>) + Send;

impl Job {
    /// Wraps a continuation.
    pub fn new(f: impl FnOnce(&mut ServerRouter, &mut Cx<'_, Job>) + Send + 'static) -> Self {
        Job(Box::new(f))
    }
}

/// One part of the server: claims the requests it serves.
pub trait Service {
    /// True when `req` is this service's to answer.
    fn claims(&self, req: &Request) -> bool;

    /// Answers a request this service claimed.
    fn handle(&mut self, req: Request, shared: &mut ServerState, cx: &mut Cx<'_, Job>) -> Reply;

    /// May change any answer of the server before it goes out (whichever
    /// service gave it); `seen` is what the request carried.
    fn amend(&mut self, seen: &Seen, shared: &ServerState, reply: Reply) -> Reply {
        let _ = (seen, shared);
        reply
    }

    /// A connection that made requests has closed.
    fn closed(&mut self, conn: ConnId, reason: CloseReason, cx: &mut Cx<'_, Job>) {
        let _ = (conn, reason, cx);
    }

    /// A long-poll hold completed.
    fn released(&mut self, conn: ConnId, cx: &mut Cx<'_, Job>) {
        let _ = (conn, cx);
    }

    /// Once per poll interval.
    fn tick(&mut self, cx: &mut Cx<'_, Job>) {
        let _ = cx;
    }

    /// Once per poll interval, with the shared state: ends what expired.
    fn sweep(&mut self, shared: &mut ServerState, cx: &mut Cx<'_, Job>) {
        let _ = (shared, cx);
    }

    /// Appends this service's metrics (Prometheus text) to `out`.
    fn metrics(&self, shared: &ServerState, out: &mut String) {
        let _ = (shared, out);
    }
}

/// Sends a named event down a user's `/jchat` pipe: how services other than
/// presence (wireless) reach a user without holding the presence server
/// itself. The presence server implements it with
/// [`presence::Presence::push_event`]: the event is queued in the user's
/// event queue (so a reconnecting or polling pipe still gets it) and pushed
/// at once to an open pipe.
pub trait UserEvents {
    /// Queues `kind` with `payload` for `user`; `false` when the user has no
    /// session (nothing was queued: tell the sender).
    fn notify_user(
        &mut self,
        cx: &mut Cx<'_, Job>,
        user: &str,
        kind: &'static str,
        payload: serde_json::Value,
    ) -> bool;
}

/// What a request carried that services may want after it was answered
/// (the request itself has gone to the service that answered it).
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The session cookie's value.
    pub session_cookie: Option<String>,
}

/// State every service may read and change: settings and sessions. (Not
/// to be confused with the engine's private state behind its `Handle`.)
#[derive(Debug, Default)]
pub struct ServerState {
    /// The server's settings.
    pub config: ServerConfig,
    /// Who is logged in under which session id.
    pub sessions: Sessions,
}

/// The router of `altsock serve`.
pub struct ServerRouter {
    /// Settings and sessions.
    pub shared: ServerState,
    /// Channels, addressed notifications and `/altsock.js`.
    pub hub: Hub,
    /// Presence, groups, chat and pages; the catch-all for static URLs.
    pub presence: Presence,
    /// Two-way text with wireless devices (SMS links, `/w/`, `/sms/inbound`).
    pub wireless: Wireless,
    /// Live assist: the widget's visitors, the consoles, routing.
    pub assist: Assist,
    /// The SIP relay: `/sip/reply`, `/sip/send` and the SIP thread.
    pub sip: sip::SipService,
}

impl ServerRouter {
    /// Builds the router and its services.
    pub fn new(mut config: ServerConfig) -> std::io::Result<Self> {
        let presence = Presence::open(&config)?;
        // The widget's channel is the hub's: its page origins use the hub too.
        for origin in &config.assist.origins {
            if !config.hub.allow_origins.contains(origin) {
                config.hub.allow_origins.push(origin.clone());
            }
        }
        let hub = Hub::new(config.hub.clone())?;
        let wireless = Wireless::new(config.wireless.clone())?;
        let assist = Assist::open(
            config.assist.clone(),
            presence.db().clone(),
            hub.secret().clone(),
        )?;
        let sip = sip::SipService::open(&config.sip)?;
        Ok(ServerRouter {
            shared: ServerState {
                sessions: Sessions::new(config.presence.sessions),
                config,
            },
            hub,
            presence,
            wireless,
            assist,
            sip,
        })
    }

    /// A job that starts the server's own threads (the SIP thread) as soon
    /// as the engine runs; without it they start at the first tick.
    pub fn start_job() -> Job {
        Job::new(|router, cx| router.sip.start(cx))
    }

    /// The shared state and the services, in the order they are asked.
    fn parts(&mut self) -> (&mut ServerState, [&mut dyn Service; 2]) {
        (&mut self.shared, [&mut self.hub, &mut self.presence])
    }
}

impl Router for ServerRouter {
    type Msg = Job;

    fn request(&mut self, req: Request, cx: &mut Cx<'_, Job>) -> Reply {
        if req.method == "GET" && req.path() == "/metrics" {
            let mut text = cx.metrics().to_prometheus();
            let (shared, services) = self.parts();
            for service in services {
                service.metrics(shared, &mut text);
            }
            self.wireless.metrics(&mut text);
            self.assist.metrics(&mut text);
            self.sip.metrics(&mut text);
            return Reply::Respond(
                Response::new(200)
                    .header("Content-Type", "text/plain; version=0.0.4")
                    .body(text),
            );
        }
        let seen = Seen {
            session_cookie: sessions::read_session_cookie(&req),
        };
        let mut reply = if sip::SipService::claims(&req) {
            self.sip.handle(req, &mut self.shared, cx)
        } else if self.hub.claims(&req) {
            // The hub asks presence, through `hub::Groups` only, who is a
            // member of which group (for `private-group-` channels).
            self.hub
                .handle_with_groups(req, &mut self.shared, &self.presence, cx)
        } else if self.wireless.claims(&req) {
            // Wireless reaches users' pipes through `UserEvents` only.
            self.wireless
                .handle_with_pipe(req, &mut self.shared, &mut self.presence, cx)
        } else if self.assist.claims(&req) {
            assist::handle(self, req, cx)
        } else {
            let (shared, services) = self.parts();
            match services.into_iter().find(|s| s.claims(&req)) {
                Some(service) => service.handle(req, shared, cx),
                None => Reply::Respond(Response::text(404, "not found\n")),
            }
        };
        let (shared, services) = self.parts();
        for service in services {
            reply = service.amend(&seen, shared, reply);
        }
        reply
    }

    fn closed(&mut self, conn: ConnId, reason: CloseReason, cx: &mut Cx<'_, Job>) {
        for service in self.parts().1 {
            service.closed(conn, reason, cx);
        }
        self.wireless.closed(conn, cx);
        assist::closed(self, conn, cx);
    }

    fn released(&mut self, conn: ConnId, cx: &mut Cx<'_, Job>) {
        for service in self.parts().1 {
            service.released(conn, cx);
        }
        self.wireless.released(conn, cx);
        assist::closed(self, conn, cx);
    }

    fn tick(&mut self, cx: &mut Cx<'_, Job>) {
        self.sip.tick(&self.presence, cx);
        let (shared, services) = self.parts();
        for service in services {
            service.tick(cx);
            service.sweep(shared, cx);
        }
        self.wireless.tick(&mut self.presence, cx);
        assist::tick(self, cx);
    }

    fn message(&mut self, job: Job, cx: &mut Cx<'_, Job>) {
        (job.0)(self, cx);
    }

    /// The server's WebSockets (hub `/sub/CHANNEL`, presence `/jchat`) are
    /// push-only: a client that sends a message is closed with 1003 and a
    /// reason naming the HTTP request to use instead, not silently ignored.
    fn ws_message(&mut self, conn: ConnId, msg: WsMessage, cx: &mut Cx<'_, Job>) {
        log::debug!(
            "{conn}: WebSocket message of {} bytes refused",
            msg.as_bytes().len()
        );
        cx.ws_close(conn, CloseCode::UNSUPPORTED_DATA, PUSH_ONLY);
    }
}

/// The close reason a client sending on a push-only WebSocket gets.
pub const PUSH_ONLY: &str = "push only: publish with POST /pub/CHANNEL, chat with POST /chat";

/// The WebSocket verdict on a request for a held stream: `Ok(Some(hold))`
/// for a valid upgrade (a [`Hold::websocket`] carrying the accept key; the
/// service adds its initial messages), `Ok(None)` for plain HTTP, `Err` with
/// the `400`/`426` for an upgrade asked wrongly.
///
/// A browser sends cookies with a cross-site WebSocket upgrade and no CORS
/// rule stops the page reading the answer, so an upgrade whose `Origin`
/// names another host gets `403` unless `cross_origin_allowed` (the hub's
/// `--hub-allow-origin` list names it).
pub fn websocket_hold(req: &Request, cross_origin_allowed: bool) -> Result<Option<Hold>, Response> {
    match crate::ws::check_upgrade(req, &[]) {
        Upgrade::NotWebSocket => Ok(None),
        Upgrade::Accept(_) if !cross_origin_allowed && !presence::origin::origin_ok(req) => {
            Err(Response::text(403, "cross-origin WebSocket refused\n"))
        }
        Upgrade::Accept(accepted) => Ok(Some(Hold::websocket(accepted))),
        Upgrade::Refuse(refusal) => Err(refusal),
    }
}
