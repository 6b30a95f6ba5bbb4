//! The SIP relay's counters, shared between the SIP thread (which counts)
//! and the engine (which writes them into `/metrics`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the SIP relay.
#[derive(Debug, Default)]
pub struct SipCounters {
    /// Requests that began a server transaction.
    pub requests: AtomicU64,
    /// Retransmitted requests absorbed by their transaction.
    pub absorbed: AtomicU64,
    /// Requests pushed down a user's pipe.
    pub delivered: AtomicU64,
    /// Final responses altsock sent, by who decided: the user, or altsock.
    pub user_finals: AtomicU64,
    /// `408`s for requests nobody answered in time.
    pub reply_timeouts: AtomicU64,
    /// Messages that did not parse.
    pub malformed: AtomicU64,
    /// MESSAGEs sent for `/sip/send`.
    pub sent: AtomicU64,
    /// Of those, given up by timer F.
    pub send_timeouts: AtomicU64,
    /// Live registrations (a gauge, updated by the SIP thread).
    pub bindings: AtomicU64,
}

impl SipCounters {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters in the Prometheus text format.
    pub fn write(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let lines = [
            ("altsock_sip_requests_total", "counter", get(&self.requests)),
            (
                "altsock_sip_retransmissions_absorbed_total",
                "counter",
                get(&self.absorbed),
            ),
            (
                "altsock_sip_delivered_total",
                "counter",
                get(&self.delivered),
            ),
            (
                "altsock_sip_user_replies_total",
                "counter",
                get(&self.user_finals),
            ),
            (
                "altsock_sip_reply_timeouts_total",
                "counter",
                get(&self.reply_timeouts),
            ),
            (
                "altsock_sip_malformed_total",
                "counter",
                get(&self.malformed),
            ),
            ("altsock_sip_sent_total", "counter", get(&self.sent)),
            (
                "altsock_sip_send_timeouts_total",
                "counter",
                get(&self.send_timeouts),
            ),
            ("altsock_sip_registrations", "gauge", get(&self.bindings)),
        ];
        for (name, kind, value) in lines {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {value}");
        }
    }
}
