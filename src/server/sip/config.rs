//! The settings of the SIP relay ([`SipConfig`]): where it listens, the
//! domain it registers phones for, the RFC 3261 timer base and how long a
//! user has to answer a request delivered down their pipe.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings of the SIP relay (`--sip-*` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipConfig {
    /// UDP and TCP address (`--sip-listen`); `None` turns SIP off.
    pub listen: Option<SocketAddr>,
    /// The domain of users' addresses of record (`--sip-domain`); REGISTER
    /// is accepted only when it is set. Without it, addresses of record use
    /// the listening address.
    pub domain: Option<String>,
    /// Timer T1, the round-trip estimate (RFC 3261 default 500 ms). Timer E
    /// starts at T1, timers F and J are 64*T1.
    pub t1: Duration,
    /// Timer T2, the longest retransmission interval (default 4 s).
    pub t2: Duration,
    /// How long a user has to answer a delivered request by `/sip/reply`
    /// before altsock answers `408` itself (default 10 s, well under F).
    pub reply_timeout: Duration,
    /// Longest registration a phone may ask for (default 1 h).
    pub max_expires: Duration,
    /// Most open SIP TCP connections; more are refused at accept.
    pub max_tcp: usize,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: None,
            domain: None,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            reply_timeout: Duration::from_secs(10),
            max_expires: Duration::from_secs(3600),
            max_tcp: 1024,
        }
    }
}
