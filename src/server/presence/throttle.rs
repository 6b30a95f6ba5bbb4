//! The limit on password guesses, for account logins and group passwords
//! alike. An attempt is counted when it is admitted, before any hashing, so
//! parallel guesses cannot outrun the count; a success gives its attempt
//! back.
//!
//! Three counters, each over a fixed [`WINDOW`] from its first attempt:
//! - one account (or group) from one client address: [`PAIR_LIMIT`] — the
//!   guesser is stopped, while the owner at another address is not;
//! - one client address over all accounts: [`ADDRESS_LIMIT`];
//! - one account from all addresses together: [`SUBJECT_LIMIT`], a ceiling
//!   against guessing spread over many addresses (reaching it takes at
//!   least `SUBJECT_LIMIT / PAIR_LIMIT` addresses).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Attempts on one account (or group) from one address per window.
pub const PAIR_LIMIT: u32 = 5;
/// Attempts from one address per window, over all accounts and groups.
pub const ADDRESS_LIMIT: u32 = 20;
/// Attempts on one account (or group) per window, over all addresses.
pub const SUBJECT_LIMIT: u32 = 100;
/// The throttle's window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// What a password protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// An account, by user name.
    Account(&'a str),
    /// A group, by name.
    Group(&'a str),
}

impl Subject<'_> {
    fn key(&self) -> String {
        match self {
            Subject::Account(name) => format!("u:{name}"),
            Subject::Group(name) => format!("g:{name}"),
        }
    }
}

/// Counts of recent attempts.
#[derive(Debug, Default)]
pub struct Throttle {
    counts: HashMap<String, (u32, Instant)>,
}

impl Throttle {
    fn keys(subject: Subject<'_>, ip: Option<IpAddr>) -> [(String, u32); 3] {
        let ip = ip.map_or_else(|| "-".to_string(), |ip| ip.to_string());
        let subject = subject.key();
        [
            (format!("{subject}@{ip}"), PAIR_LIMIT),
            (format!("ip:{ip}"), ADDRESS_LIMIT),
            (subject, SUBJECT_LIMIT),
        ]
    }

    /// Admits one attempt on `subject` from `ip` and counts it, or refuses
    /// with how long until the fullest counter's window ends.
    pub fn attempt(
        &mut self,
        subject: Subject<'_>,
        ip: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), Duration> {
        let keys = Self::keys(subject, ip);
        let mut wait = None;
        for (key, limit) in &keys {
            let Some((n, first)) = self.counts.get(key) else {
                continue;
            };
            let elapsed = now.saturating_duration_since(*first);
            if elapsed >= WINDOW {
                self.counts.remove(key);
            } else if n >= limit {
                wait = wait.max(Some(WINDOW - elapsed));
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (key, _) in keys {
            self.counts.entry(key).or_insert((0, now)).0 += 1;
        }
        Ok(())
    }

    /// Gives back an attempt that succeeded (or never ran).
    pub fn refund(&mut self, subject: Subject<'_>, ip: Option<IpAddr>) {
        for (key, _) in Self::keys(subject, ip) {
            if let Some((n, _)) = self.counts.get_mut(&key) {
                *n = n.saturating_sub(1);
            }
        }
    }

    /// Forgets counters whose window has ended.
    pub fn prune(&mut self, now: Instant) {
        self.counts
            .retain(|_, (_, first)| now.saturating_duration_since(*first) < WINDOW);
    }

    /// Counters held.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True when no counters are held.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_pair_per_address_and_per_subject() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let alice = Subject::Account("alice");
        for _ in 0..PAIR_LIMIT {
            assert!(t.attempt(alice, Some(a), now).is_ok());
        }
        assert!(t.attempt(alice, Some(a), now).is_err(), "the guesser waits");
        assert!(t.attempt(alice, Some(b), now).is_ok(), "the owner does not");
        let team = Subject::Group("team");
        assert!(t.attempt(team, Some(a), now).is_ok(), "groups count apart");
        let later = now + WINDOW;
        assert!(t.attempt(alice, Some(a), later).is_ok(), "the window ends");
        t.prune(later + WINDOW);
        assert!(t.is_empty());
    }
}
