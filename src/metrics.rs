//! Engine counters. The engine thread bumps relaxed atomics; any thread reads a
//! [`MetricsSnapshot`] through the [`crate::Handle`] or the router's `Cx`, and
//! `to_prometheus` renders it in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The peer closed its side (FIN).
    PeerClosed,
    /// The socket failed: reset by the peer, or given up by `TCP_USER_TIMEOUT`.
    PeerReset,
    /// A write failed.
    WriteFailed,
    /// Pending output passed the per-connection cap.
    SlowConsumer,
    /// The request head or body did not arrive within the header timeout.
    HeaderTimeout,
    /// A kept-alive connection sent no new request within the idle timeout.
    IdleTimeout,
    /// The request was malformed or over a limit; it was answered with a 4xx/5xx.
    BadRequest,
    /// The exchange ended and the connection was not kept alive.
    Done,
    /// The router or a handle closed it.
    Closed,
    /// The engine is shutting down.
    Shutdown,
    /// A WebSocket peer left the keepalive ping unanswered until the next one was due.
    SilentPeer,
    /// The TLS handshake or a record failed (a malformed ClientHello, a bad
    /// record): the peer was sent an alert.
    TlsError,
}

impl CloseReason {
    /// Every reason, in a stable order.
    pub const ALL: [CloseReason; 12] = [
        CloseReason::PeerClosed,
        CloseReason::PeerReset,
        CloseReason::WriteFailed,
        CloseReason::SlowConsumer,
        CloseReason::HeaderTimeout,
        CloseReason::IdleTimeout,
        CloseReason::BadRequest,
        CloseReason::Done,
        CloseReason::Closed,
        CloseReason::Shutdown,
        CloseReason::SilentPeer,
        CloseReason::TlsError,
    ];

    /// A short label, e.g. `slow_consumer`.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::PeerReset => "peer_reset",
            CloseReason::WriteFailed => "write_failed",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::BadRequest => "bad_request",
            CloseReason::Done => "done",
            CloseReason::Closed => "closed",
            CloseReason::Shutdown => "shutdown",
            CloseReason::SilentPeer => "silent_peer",
            CloseReason::TlsError => "tls_error",
        }
    }

    fn index(self) -> usize {
        CloseReason::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or(0)
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// The live counters, shared between the engine thread and readers.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub open: AtomicU64,
    pub held: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub requests: AtomicU64,
    pub closed: [AtomicU64; CloseReason::ALL.len()],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub keepalives: AtomicU64,
    pub last_tick_micros: AtomicU64,
    pub ticks: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Relaxed);
    }

    pub fn count_close(&self, reason: CloseReason) {
        Metrics::add(&self.closed[reason.index()], 1);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            open: self.open.load(Relaxed),
            held: self.held.load(Relaxed),
            accepted: self.accepted.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            requests: self.requests.load(Relaxed),
            closed: CloseReason::ALL.map(|r| (r, self.closed[r.index()].load(Relaxed))),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            keepalives: self.keepalives.load(Relaxed),
            last_tick_micros: self.last_tick_micros.load(Relaxed),
            ticks: self.ticks.load(Relaxed),
        }
    }
}

/// A copy of the engine's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Connections open now.
    pub open: u64,
    /// Connections held open (streams and pending long-polls) now.
    pub held: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections refused with `503` at the connection limit.
    pub rejected: u64,
    /// Requests handed to the router.
    pub requests: u64,
    /// Connections closed since start, by reason.
    pub closed: [(CloseReason, u64); CloseReason::ALL.len()],
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Keepalive writes made.
    pub keepalives: u64,
    /// How long the last tick took, in microseconds.
    pub last_tick_micros: u64,
    /// Ticks run since start.
    pub ticks: u64,
}

impl MetricsSnapshot {
    /// How many connections closed for `reason`.
    pub fn closed_by(&self, reason: CloseReason) -> u64 {
        self.closed
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// Renders the counters in the Prometheus text exposition format.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let mut one = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP altsock_{name} {help}\n# TYPE altsock_{name} {kind}\naltsock_{name} {value}");
        };
        one(
            "open_connections",
            "gauge",
            "Connections open now.",
            self.open,
        );
        one(
            "held_connections",
            "gauge",
            "Connections held open now.",
            self.held,
        );
        one(
            "accepted_total",
            "counter",
            "Connections accepted.",
            self.accepted,
        );
        one(
            "rejected_total",
            "counter",
            "Connections refused at the limit.",
            self.rejected,
        );
        one(
            "requests_total",
            "counter",
            "Requests handed to the router.",
            self.requests,
        );
        one(
            "bytes_in_total",
            "counter",
            "Bytes read from sockets.",
            self.bytes_in,
        );
        one(
            "bytes_out_total",
            "counter",
            "Bytes written to sockets.",
            self.bytes_out,
        );
        one(
            "keepalive_writes_total",
            "counter",
            "Keepalive writes.",
            self.keepalives,
        );
        one("ticks_total", "counter", "Ticks run.", self.ticks);
        one(
            "last_tick_microseconds",
            "gauge",
            "Duration of the last tick in microseconds.",
            self.last_tick_micros,
        );
        let _ = writeln!(out, "# HELP altsock_closed_total Connections closed, by reason.\n# TYPE altsock_closed_total counter");
        for (reason, n) in &self.closed {
            let _ = writeln!(
                out,
                "altsock_closed_total{{reason=\"{}\"}} {n}",
                reason.label()
            );
        }
        out
    }
}
