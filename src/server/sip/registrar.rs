//! The registrar (RFC 3261 §10): bindings of an address of record to the
//! Contacts its phones registered, each with an expiry and the flow it came
//! over (so a phone behind NAT is reached where its REGISTER came from).
//! Held in memory on the SIP thread: a restart forgets them, and phones
//! re-register within their expiry (documented in docs/sip.md).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::transport::Dest;

/// One registered Contact.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The Contact URI as the phone sent it.
    pub contact: String,
    /// Where the REGISTER came from (the flow to reach the phone on).
    pub flow: Dest,
    /// When the binding lapses.
    pub expires: Instant,
    /// The Call-ID and CSeq of the REGISTER that last refreshed it.
    pub call_id: String,
    /// The CSeq number of that REGISTER.
    pub cseq: u32,
}

/// Most Contacts one address of record may have registered at once.
pub const MAX_CONTACTS_PER_USER: usize = 16;

/// Most addresses of record with live bindings (REGISTER is not
/// authenticated, so a stranger must not be able to grow this without end).
pub const MAX_USERS: usize = 100_000;

/// Bindings by user name (the user part of the address of record).
#[derive(Debug, Default)]
pub struct Registrar {
    users: HashMap<String, Vec<Binding>>,
}

/// Why a REGISTER was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An older CSeq for the same Call-ID (RFC 3261 §10.3 step 7).
    OutOfOrder,
    /// The user already has [`MAX_CONTACTS_PER_USER`] other Contacts.
    TooManyContacts,
    /// [`MAX_USERS`] addresses of record are registered already.
    Full,
}

impl Registrar {
    /// Adds, refreshes (`expires > 0`) or removes (`expires == 0`) the
    /// binding of `contact` for `user`.
    pub fn update(&mut self, user: &str, binding: Binding, now: Instant) -> Result<(), Refusal> {
        if !self.users.contains_key(user) && self.users.len() >= MAX_USERS {
            self.prune(now);
            if self.users.len() >= MAX_USERS {
                return Err(Refusal::Full);
            }
        }
        let list = self.users.entry(user.to_string()).or_default();
        list.retain(|b| b.expires > now);
        if let Some(i) = list.iter().position(|b| b.contact == binding.contact) {
            let old = &list[i];
            if old.call_id == binding.call_id && binding.cseq <= old.cseq {
                return Err(Refusal::OutOfOrder);
            }
            list.remove(i);
        }
        if binding.expires > now {
            if list.len() >= MAX_CONTACTS_PER_USER {
                return Err(Refusal::TooManyContacts);
            }
            list.push(binding);
        }
        if list.is_empty() {
            self.users.remove(user);
        }
        Ok(())
    }

    /// Removes every binding of `user` (`Contact: *` with `Expires: 0`).
    pub fn clear(&mut self, user: &str) {
        self.users.remove(user);
    }

    /// The live bindings of `user`, newest last.
    pub fn lookup(&self, user: &str, now: Instant) -> Vec<&Binding> {
        self.users
            .get(user)
            .map(|list| list.iter().filter(|b| b.expires > now).collect())
            .unwrap_or_default()
    }

    /// Forgets lapsed bindings.
    pub fn prune(&mut self, now: Instant) {
        self.users.retain(|_, list| {
            list.retain(|b| b.expires > now);
            !list.is_empty()
        });
    }

    /// Live bindings in all.
    pub fn len(&self) -> usize {
        self.users.values().map(Vec::len).sum()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// The seconds left until `expires`, rounded up.
pub fn seconds_left(expires: Instant, now: Instant) -> u64 {
    let left = expires.saturating_duration_since(now);
    left.as_secs() + u64::from(left.subsec_nanos() > 0)
}

/// The expiry a REGISTER asks for: the Contact's `expires` parameter, else
/// the Expires header, else 3600 s; capped at `max`.
pub fn asked_expiry(param: Option<&str>, header: Option<&str>, max: Duration) -> Option<Duration> {
    let text = param.or(header).unwrap_or("3600").trim();
    let secs: u64 = text.parse().ok()?;
    Some(Duration::from_secs(secs).min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, cseq: u32, expires: Instant) -> Binding {
        Binding {
            contact: contact.into(),
            flow: Dest::Udp("127.0.0.1:5062".parse().unwrap()),
            expires,
            call_id: "c1".into(),
            cseq,
        }
    }

    #[test]
    fn bindings_are_added_refreshed_removed_and_lapse() {
        let now = Instant::now();
        let mut r = Registrar::default();
        let later = now + Duration::from_secs(60);
        r.update("bob", binding("sip:bob@10.0.0.2", 1, later), now)
            .unwrap();
        assert_eq!(r.lookup("bob", now).len(), 1);
        assert_eq!(
            r.update("bob", binding("sip:bob@10.0.0.2", 1, later), now),
            Err(Refusal::OutOfOrder)
        );
        r.update("bob", binding("sip:bob@10.0.0.2", 2, later), now)
            .unwrap();
        assert_eq!(r.len(), 1);
        assert!(r.lookup("bob", later).is_empty(), "lapsed at its expiry");
        r.update("bob", binding("sip:bob@10.0.0.2", 3, now), now)
            .unwrap();
        assert!(r.is_empty(), "expires=0 removes");
    }

    #[test]
    fn contacts_per_user_are_bounded() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut registrar = Registrar::default();
        for i in 0..MAX_CONTACTS_PER_USER {
            let contact = format!("sip:phone{i}@192.0.2.1");
            assert_eq!(
                registrar.update("bob", binding(&contact, 1, later), now),
                Ok(())
            );
        }
        let one_more = binding("sip:extra@192.0.2.1", 1, later);
        assert_eq!(
            registrar.update("bob", one_more, now),
            Err(Refusal::TooManyContacts)
        );
        assert_eq!(registrar.lookup("bob", now).len(), MAX_CONTACTS_PER_USER);
        let refresh = binding("sip:phone0@192.0.2.1", 2, later);
        assert_eq!(
            registrar.update("bob", refresh, now),
            Ok(()),
            "a refresh still fits"
        );
    }

    #[test]
    fn expiry_is_asked_and_capped() {
        let max = Duration::from_secs(600);
        assert_eq!(
            asked_expiry(Some("30"), Some("90"), max),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            asked_expiry(None, Some("90"), max),
            Some(Duration::from_secs(90))
        );
        assert_eq!(asked_expiry(None, None, max), Some(max));
        assert_eq!(asked_expiry(Some("x"), None, max), None);
    }
}
