//! What `altsock serve` runs above the engine: one [`ServerRouter`] that owns
//! the services (the single pub/sub stream, the notification hub, and the
//! presence server, asked in that order) and hands each request to the first
//! service that claims it; `/metrics` it answers itself. Services run on the engine thread; slow work (hashing,
//! SQLite) runs on worker threads and comes back as a [`Job`] through the
//! engine's handle.

pub mod hub;
pub mod presence;
mod pubsub;
pub mod sessions;

use std::path::PathBuf;

use crate::{CloseReason, ConnId, Cx, Reply, Request, Response, Router};
pub use hub::{Hub, HubConfig};
pub use presence::Presence;
pub use pubsub::PubSub;
pub use sessions::{Session, Sessions};

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
    /// The database's durability, queue bound and stored-message limits.
    pub store: presence::db::StoreConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            db_path: PathBuf::from("altsock.db"),
            node_id: "local".into(),
            publish_token: None,
            hub: HubConfig::default(),
            store: presence::db::StoreConfig::default(),
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
    fn handle(&mut self, req: Request, shared: &mut Shared, cx: &mut Cx<'_, Job>) -> Reply;

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
}

/// State every service may read and change: settings and sessions.
#[derive(Debug, Default)]
pub struct Shared {
    /// The server's settings.
    pub config: ServerConfig,
    /// Who is logged in under which session id.
    pub sessions: Sessions,
}

/// The router of `altsock serve`.
pub struct ServerRouter {
    /// Settings and sessions.
    pub shared: Shared,
    /// `GET /sub` and `POST /pub`: one SSE stream for everyone.
    pub pubsub: PubSub,
    /// Channels, addressed notifications and `/altsock.js`.
    pub hub: Hub,
    /// Presence, groups, chat and pages; the catch-all for static URLs.
    pub presence: Presence,
}

impl ServerRouter {
    /// Builds the router and its services.
    pub fn new(config: ServerConfig) -> std::io::Result<Self> {
        let presence = Presence::open(&config)?;
        let hub = Hub::new(config.hub.clone());
        Ok(ServerRouter {
            shared: Shared {
                config,
                sessions: Sessions::default(),
            },
            pubsub: PubSub::default(),
            hub,
            presence,
        })
    }

    /// The shared state and the services, in the order they are asked.
    fn parts(&mut self) -> (&mut Shared, [&mut dyn Service; 3]) {
        (
            &mut self.shared,
            [&mut self.pubsub, &mut self.hub, &mut self.presence],
        )
    }
}

impl Router for ServerRouter {
    type Msg = Job;

    fn request(&mut self, req: Request, cx: &mut Cx<'_, Job>) -> Reply {
        if req.method == "GET" && req.path() == "/metrics" {
            return Reply::Respond(
                Response::new(200)
                    .header("Content-Type", "text/plain; version=0.0.4")
                    .body(cx.metrics().to_prometheus() + &self.presence.metrics()),
            );
        }
        // Chat invitation by content modification: whoever serves the page.
        let invitee = self.presence.invitee(&req, &self.shared);
        let (shared, services) = self.parts();
        let reply = match services.into_iter().find(|s| s.claims(&req)) {
            Some(service) => service.handle(req, shared, cx),
            None => Reply::Respond(Response::text(404, "not found\n")),
        };
        match invitee {
            Some(viewer) => self.presence.modify_page(&viewer, reply),
            None => reply,
        }
    }

    fn closed(&mut self, conn: ConnId, reason: CloseReason, cx: &mut Cx<'_, Job>) {
        for service in self.parts().1 {
            service.closed(conn, reason, cx);
        }
    }

    fn released(&mut self, conn: ConnId, cx: &mut Cx<'_, Job>) {
        for service in self.parts().1 {
            service.released(conn, cx);
        }
    }

    fn tick(&mut self, cx: &mut Cx<'_, Job>) {
        for service in self.parts().1 {
            service.tick(cx);
        }
    }

    fn message(&mut self, job: Job, cx: &mut Cx<'_, Job>) {
        (job.0)(self, cx);
    }
}
