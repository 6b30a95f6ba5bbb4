//! `/sms/inbound`: an SMS from a phone, posted by the gateway. Twilio's
//! fields (`From`, `To`, `Body`, `MessageSid`) or Vonage's (`msisdn`, `to`,
//! `text`, `messageId`), as a form POST or (Kannel's `get-url`, Vonage) a
//! GET query. The sender's number finds the user who last texted it, whose
//! pipe gets `wireless-reply` (`via: "sms"`); the answer is an empty TwiML
//! `<Response/>`. With a Twilio auth token configured, the request must
//! carry a valid `X-Twilio-Signature` (else `403`): base64 of HMAC-SHA1,
//! keyed by the token, over the full URL and then each POST parameter's
//! name and value, sorted by name. With an inbound key configured, the
//! request must also carry it as the `key` query parameter (else `403`).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::link::normalize_phone;
use super::{UserEvents, Wireless};
use crate::http::form_pairs;
use crate::server::Job;
use crate::{Cx, Request, Response};

/// An empty TwiML answer with `status`.
fn twiml(status: u16) -> Response {
    Response::new(status)
        .header("Content-Type", "text/xml; charset=utf-8")
        .body("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>")
}

/// A refusal: a plain-text reason (gateways log it).
fn refuse(status: u16, why: &str) -> Response {
    Response::text(status, format!("{why}\n"))
}

impl Wireless {
    /// Answers `/sms/inbound`.
    pub(super) fn inbound(
        &mut self,
        req: &Request,
        pipe: &mut dyn UserEvents,
        cx: &mut Cx<'_, Job>,
    ) -> Response {
        let params = match req.method.as_str() {
            "POST" => req.form(),
            "GET" => form_pairs(req.query().as_bytes()),
            _ => return refuse(405, "use POST").header("Allow", "POST, GET"),
        };
        if self.config.inbound_key.is_none() && self.config.twilio_auth_token.is_none() {
            // Fail closed: an unsigned SMS would let anyone speak for a number.
            self.counters.inbound_refused += 1;
            return refuse(
                403,
                "inbound SMS is off: the server needs --sms-inbound-key or --twilio-auth-token",
            );
        }
        if let Some(key) = &self.config.inbound_key {
            let given = form_pairs(req.query().as_bytes())
                .into_iter()
                .find(|(k, _)| k == "key")
                .map(|(_, v)| v)
                .unwrap_or_default();
            if !bool::from(given.as_bytes().ct_eq(key.as_bytes())) {
                self.counters.inbound_refused += 1;
                log::debug!("{}: wireless: inbound SMS without the key", req.conn);
                return refuse(403, "missing or wrong key");
            }
        }
        if let Some(token) = &self.config.twilio_auth_token {
            let url = format!("{}{}", self.base_url(req), req.target);
            let signature = req.header("x-twilio-signature").unwrap_or("");
            let signed = if req.method == "POST" {
                &params[..]
            } else {
                &[]
            };
            if !twilio_signature_ok(token, &url, signed, signature) {
                self.counters.inbound_refused += 1;
                log::debug!("{}: wireless: inbound SMS with a bad signature", req.conn);
                return refuse(403, "bad X-Twilio-Signature");
            }
        }
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
        };
        let (Some(from), Some(body)) = (field(&["From", "msisdn"]), field(&["Body", "text"]))
        else {
            return refuse(400, "missing From/msisdn or Body/text");
        };
        let Some(phone) = normalize_phone(&from) else {
            return refuse(400, "From is not a phone number");
        };
        let sid = field(&["MessageSid", "messageId"]);
        let Some(link) = self.by_phone.get(&phone).and_then(|id| self.links.get(id)) else {
            self.counters.inbound_refused += 1;
            log::info!("wireless: SMS from {phone} matches no conversation");
            return refuse(404, "no conversation with this number");
        };
        let user = link.requester.clone();
        let event = json!({ "from": phone, "msg": body, "via": "sms", "sid": sid });
        if !pipe.notify_user(cx, &user, "wireless-reply", event) {
            self.counters.inbound_refused += 1;
            return refuse(410, "the user who texted this number has signed out");
        }
        self.counters.inbound_routed += 1;
        twiml(200)
    }
}

/// True when `signature` is Twilio's signature of `url` and `params` with `token`.
pub fn twilio_signature_ok(
    token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()) else {
        return false;
    };
    mac.update(&signing_input(url, params));
    mac.verify_slice(&expected).is_ok()
}

/// Computes Twilio's signature (for tests and tools that post as Twilio).
pub fn twilio_signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&signing_input(url, params));
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The signed bytes: the URL, then each name and value, sorted.
fn signing_input(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut out = url.as_bytes().to_vec();
    for (name, value) in sorted {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Twilio's security documentation (also the test
    /// vector of its helper libraries' request validators).
    #[test]
    fn twilio_documented_example_verifies() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let token = "12345";
        let sig = twilio_signature(token, url, &params);
        assert_eq!(sig, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(twilio_signature_ok(token, url, &params, &sig));
        assert!(!twilio_signature_ok("54321", url, &params, &sig));
        assert!(!twilio_signature_ok(token, url, &params[1..], &sig));
    }
}
