//! REGISTER on the SIP thread (RFC 3261 §10.3): only with `--sip-domain`,
//! for addresses of record in that domain; Contacts added, refreshed or
//! removed (`expires=0`, `Contact: *` with `Expires: 0`); the `200` lists
//! every live binding with its remaining expiry. Registration is not
//! authenticated (see docs/sip.md): bindings only serve `/sip/send` by name.

use std::time::Instant;

use super::registrar::{asked_expiry, seconds_left, Binding, Refusal};
use super::relay::{Relay, ALLOW};
use super::transport::Dest;
use super::via::split_list;
use super::{Message, NameAddr};

impl Relay {
    /// Answers a REGISTER (transaction `key`) that came from `source`.
    pub(super) fn register(&mut self, key: &str, source: Dest) {
        let answer = match self.request_of(key) {
            Some(msg) => self.apply_register(msg.clone(), source),
            None => return,
        };
        let (status, reason, contacts) = match answer {
            Ok(contacts) => (200, "OK", contacts),
            Err((status, reason)) => (status, reason, Vec::new()),
        };
        let mut headers: Vec<(&str, &str)> =
            contacts.iter().map(|c| ("Contact", c.as_str())).collect();
        if status == 405 {
            headers.push(("Allow", ALLOW));
        }
        let _ = self.respond_with(key, status, reason, None, &headers);
        self.count_bindings();
    }

    /// Updates the registrations gauge.
    pub(super) fn count_bindings(&self) {
        let live = self.registrar.len() as u64;
        self.stats
            .bindings
            .store(live, std::sync::atomic::Ordering::Relaxed);
    }

    /// Updates the bindings; the Contact values of the `200`, or the refusal.
    fn apply_register(
        &mut self,
        msg: Message,
        source: Dest,
    ) -> Result<Vec<String>, (u16, &'static str)> {
        let Some(domain) = self.cfg.domain.clone() else {
            return Err((405, "Method Not Allowed"));
        };
        let aor = msg.to.uri.as_sip().ok_or((416, "Unsupported URI Scheme"))?;
        if !aor.host.eq_ignore_ascii_case(&domain) {
            return Err((403, "Domain Not Served"));
        }
        let user = aor.user_decoded().ok_or((400, "No User In To"))?;
        let now = Instant::now();
        let header_expires = msg.header("Expires");
        let contacts: Vec<String> = msg
            .headers_named("Contact")
            .flat_map(split_list)
            .map(str::to_string)
            .collect();
        if contacts.iter().any(|c| c == "*") {
            if contacts.len() != 1 || header_expires.map(str::trim) != Some("0") {
                return Err((400, "Bad Wildcard Contact"));
            }
            self.registrar.clear(&user);
            return Ok(Vec::new());
        }
        for text in &contacts {
            let contact = NameAddr::parse("Contact", text).map_err(|_| (400, "Bad Contact"))?;
            let param = contact
                .params
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case("expires"))
                .and_then(|p| p.value.as_deref());
            let expiry = asked_expiry(param, header_expires, self.cfg.max_expires)
                .ok_or((400, "Bad Expires"))?;
            let binding = Binding {
                contact: contact.uri.to_string(),
                flow: source,
                expires: now + expiry,
                call_id: msg.call_id.clone(),
                cseq: msg.cseq.number,
            };
            match self.registrar.update(&user, binding, now) {
                Ok(()) => {}
                Err(Refusal::OutOfOrder) => return Err((500, "Out Of Order CSeq")),
                Err(Refusal::TooManyContacts) => return Err((503, "Too Many Contacts")),
                Err(Refusal::Full) => return Err((503, "Registrar Full")),
            }
        }
        let listed = self
            .registrar
            .lookup(&user, now)
            .iter()
            .map(|b| format!("<{}>;expires={}", b.contact, seconds_left(b.expires, now)))
            .collect();
        Ok(listed)
    }
}
