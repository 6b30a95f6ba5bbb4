//! Engine settings and the builder that sets them. Every interval is a
//! `Duration`, so tests can run the patent's 4 s / 60 s cycle in milliseconds.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::Engine;
use crate::http::parse::Limits;
use crate::Router;

/// Everything the engine can be told.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The tick: how often timers (keepalives, timeouts) are checked. Patent: 4 s.
    pub poll_interval: Duration,
    /// How long a held connection may stay silent before a keepalive. Patent: 60 s.
    pub keepalive_interval: Duration,
    /// How long a client has to send a whole request (head and body); then `408`.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// `TCP_USER_TIMEOUT`: how long written data may stay unacknowledged before
    /// the kernel gives up on the peer. `None` leaves the system default.
    pub tcp_user_timeout: Option<Duration>,
    /// Open connections at most; past it new ones get `503`.
    pub max_connections: usize,
    /// Request size limits.
    pub limits: Limits,
    /// Pending output per connection at most; past it, "slow consumer".
    pub max_pending_output: usize,
    /// How long shutdown waits for connections to finish.
    pub shutdown_grace: Duration,
    /// The listen backlog.
    pub backlog: i32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            poll_interval: Duration::from_secs(4),
            keepalive_interval: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tcp_user_timeout: Some(Duration::from_secs(30)),
            max_connections: 19_000,
            limits: Limits::default(),
            max_pending_output: 1024 * 1024,
            shutdown_grace: Duration::from_secs(3),
            backlog: 4096,
        }
    }
}

/// Builds an [`Engine`]; start with [`Engine::builder`].
#[derive(Debug, Clone, Default)]
pub struct Builder {
    config: Config,
    listen_error: Option<String>,
}

impl Builder {
    /// The address to listen on, e.g. `"127.0.0.1:8080"` or `"127.0.0.1:0"`.
    pub fn listen(mut self, addr: impl ToSocketAddrs) -> Self {
        match addr.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(addr)) => self.config.listen = addr,
            Ok(None) => self.listen_error = Some("no address".into()),
            Err(e) => self.listen_error = Some(e.to_string()),
        }
        self
    }

    /// The tick interval (default 4 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }

    /// The keepalive interval (default 60 s).
    pub fn keepalive_interval(mut self, interval: Duration) -> Self {
        self.config.keepalive_interval = interval;
        self
    }

    /// The header timeout (default 10 s).
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.config.header_timeout = timeout;
        self
    }

    /// The idle timeout of kept-alive connections (default 60 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// `TCP_USER_TIMEOUT` on accepted sockets (default 30 s; `None`: system default).
    pub fn tcp_user_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.tcp_user_timeout = timeout;
        self
    }

    /// The connection limit (default 19,000).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.config.max_connections = max;
        self
    }

    /// Request size limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// The cap on pending output per connection (default 1 MiB).
    pub fn max_pending_output(mut self, bytes: usize) -> Self {
        self.config.max_pending_output = bytes;
        self
    }

    /// How long shutdown waits (default 3 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Binds the listener and builds the engine around `router`.
    pub fn build<R: Router>(self, router: R) -> io::Result<Engine<R>> {
        if let Some(e) = self.listen_error {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, e));
        }
        if self.config.poll_interval.is_zero() || self.config.keepalive_interval.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "poll and keepalive intervals must be above zero",
            ));
        }
        Engine::new(self.config, router)
    }
}
