//! Engine settings and the builder that sets them. Every interval is a
//! `Duration`, so tests can run the patent's 4 s / 60 s cycle in milliseconds
//! (except the kernel's TCP keepalive timings, which are whole seconds).
//!
//! The defaults notice a silently dead peer (unplugged: no FIN, no RST)
//! within 35 s at a cost of one keepalive probe per 20 s of silence, all of it
//! in the kernel. The probe goes out after 20 s without a packet from the
//! peer; unanswered, the next one 5 s later finds the connection silent for
//! longer than the 10 s user timeout and the kernel drops it (25 s). If the
//! engine writes to the dead peer in between, the kernel keeps probing off
//! and instead drops the connection once that write has gone unacknowledged
//! for the user timeout: at most 25 s + 10 s. The engine sees the error on
//! its next event and closes the connection as `peer_reset`.

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
    /// `TCP_USER_TIMEOUT`: how long written data (or, with kernel keepalive,
    /// a probe) may stay unacknowledged before the kernel gives up on the peer.
    /// `None` leaves the system default (about 15 minutes of retransmissions).
    pub tcp_user_timeout: Option<Duration>,
    /// `TCP_KEEPIDLE`: after this long without a packet from the peer the kernel
    /// sends a keepalive probe (whole seconds). `None` turns kernel keepalive off.
    pub tcp_keepalive_idle: Option<Duration>,
    /// `TCP_KEEPINTVL`: the time between unanswered keepalive probes (whole seconds).
    pub tcp_keepalive_interval: Duration,
    /// `TCP_KEEPCNT`: unanswered probes before the kernel drops the connection;
    /// only counts when `tcp_user_timeout` is `None` (the user timeout decides otherwise).
    pub tcp_keepalive_count: u32,
    /// Open connections at most; past it new ones get `503`.
    pub max_connections: usize,
    /// Request size limits.
    pub limits: Limits,
    /// Pending output per connection at most; past it, "slow consumer".
    pub max_pending_output: usize,
    /// Pipelined requests a connection may have dispatched and unanswered
    /// behind a deferred answer; past it, later ones wait unparsed.
    pub pipeline_depth: usize,
    /// The largest WebSocket message a client may send (all fragments
    /// together); past it the connection is closed with 1009.
    pub max_ws_message: usize,
    /// How long shutdown waits for connections to finish.
    pub shutdown_grace: Duration,
    /// The listen backlog.
    pub backlog: i32,
    /// A TLS listener served beside the plain one, if any.
    #[cfg(feature = "tls")]
    pub tls: Option<super::tls::TlsListen>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            poll_interval: Duration::from_secs(4),
            keepalive_interval: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tcp_user_timeout: Some(Duration::from_secs(10)),
            tcp_keepalive_idle: Some(Duration::from_secs(20)),
            tcp_keepalive_interval: Duration::from_secs(5),
            tcp_keepalive_count: 3,
            max_connections: 19_000,
            limits: Limits::default(),
            max_pending_output: 1024 * 1024,
            pipeline_depth: 128,
            max_ws_message: 64 * 1024,
            shutdown_grace: Duration::from_secs(3),
            backlog: 4096,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl Config {
    /// The kernel takes keepalive timings in whole seconds (1 to 32,767) and
    /// at most 127 probes; anything else would be silently cut or refused.
    fn check_tcp_keepalive(&self) -> Result<(), String> {
        let Some(idle) = self.tcp_keepalive_idle else {
            return Ok(());
        };
        let whole_seconds =
            |d: Duration| d.subsec_nanos() == 0 && (1..=32_767).contains(&d.as_secs());
        if !whole_seconds(idle) || !whole_seconds(self.tcp_keepalive_interval) {
            return Err(
                "TCP keepalive idle and interval must be whole seconds, 1s to 32767s".into(),
            );
        }
        if !(1..=127).contains(&self.tcp_keepalive_count) {
            return Err("TCP keepalive count must be 1 to 127".into());
        }
        Ok(())
    }

    /// The kernel keepalive settings for accepted sockets, if on.
    pub(crate) fn tcp_keepalive(&self) -> Option<socket2::TcpKeepalive> {
        self.tcp_keepalive_idle.map(|idle| {
            socket2::TcpKeepalive::new()
                .with_time(idle)
                .with_interval(self.tcp_keepalive_interval)
                .with_retries(self.tcp_keepalive_count)
        })
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

    /// Also listens on `addr` for TLS with `config` (certificates and
    /// protocol settings), beside the plain listener: one engine serves both.
    #[cfg(feature = "tls")]
    pub fn listen_tls(
        mut self,
        addr: impl ToSocketAddrs,
        config: std::sync::Arc<rustls::ServerConfig>,
    ) -> Self {
        match super::tls::TlsListen::new(addr, config) {
            Ok(tls) => self.config.tls = Some(tls),
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

    /// `TCP_USER_TIMEOUT` on accepted sockets (default 10 s; `None`: system default).
    pub fn tcp_user_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.tcp_user_timeout = timeout;
        self
    }

    /// `TCP_KEEPIDLE` on accepted sockets: silence before the kernel's first
    /// keepalive probe (default 20 s, whole seconds; `None`: no kernel keepalive).
    pub fn tcp_keepalive_idle(mut self, idle: Option<Duration>) -> Self {
        self.config.tcp_keepalive_idle = idle;
        self
    }

    /// `TCP_KEEPINTVL` on accepted sockets: time between unanswered probes
    /// (default 5 s, whole seconds).
    pub fn tcp_keepalive_interval(mut self, interval: Duration) -> Self {
        self.config.tcp_keepalive_interval = interval;
        self
    }

    /// `TCP_KEEPCNT` on accepted sockets: unanswered probes before the peer is
    /// dropped, when there is no user timeout (default 3).
    pub fn tcp_keepalive_count(mut self, count: u32) -> Self {
        self.config.tcp_keepalive_count = count;
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

    /// How many pipelined requests one connection may have dispatched with
    /// their answers still owed (default 128; at least 1). Later requests wait
    /// unparsed, and reading stops once they fill the input cap.
    pub fn pipeline_depth(mut self, depth: usize) -> Self {
        self.config.pipeline_depth = depth.max(1);
        self
    }

    /// Sets the largest WebSocket message a client may send (default 64 KiB).
    pub fn max_ws_message(mut self, bytes: usize) -> Self {
        self.config.max_ws_message = bytes;
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
        self.config
            .check_tcp_keepalive()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Engine::new(self.config, router)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_keepalive_timings_are_checked() {
        let ok = Config::default();
        assert_eq!(ok.check_tcp_keepalive(), Ok(()));
        let off = Config {
            tcp_keepalive_idle: None,
            tcp_keepalive_interval: Duration::ZERO,
            ..Config::default()
        };
        assert_eq!(off.check_tcp_keepalive(), Ok(()));
        for bad in [
            Config {
                tcp_keepalive_idle: Some(Duration::from_millis(1500)),
                ..Config::default()
            },
            Config {
                tcp_keepalive_interval: Duration::ZERO,
                ..Config::default()
            },
            Config {
                tcp_keepalive_count: 0,
                ..Config::default()
            },
            Config {
                tcp_keepalive_idle: Some(Duration::from_secs(40_000)),
                ..Config::default()
            },
        ] {
            assert!(bad.check_tcp_keepalive().is_err(), "{bad:?}");
        }
    }
}
