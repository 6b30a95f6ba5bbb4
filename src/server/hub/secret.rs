//! The hub's secrets and every comparison of one: the server secret
//! (`--hub-secret`, or random at start), the mailbox keys derived from it,
//! subscription tokens signed with it (JWT, HS256 only, the format
//! Centrifugo's subscription tokens use), and the constant-time comparison
//! of the publisher token. Pure functions over bytes and a passed-in clock;
//! no state beyond the secret, no I/O except the OS random source.
//!
//! - A mailbox key is `HMAC-SHA256(secret, "altsock mailbox key\0" CLIENT)`,
//!   base64url: whoever holds it may read client `CLIENT`'s mailbox. Nothing
//!   is stored per client, so keys survive a restart when the secret does.
//! - A subscription token is `HEADER.PAYLOAD.SIGNATURE` (base64url), the
//!   header `{"alg":"HS256"}`, the signature `HMAC-SHA256(secret,
//!   "HEADER.PAYLOAD")`, the payload [`Claims`]. A JWT input never contains
//!   a NUL byte, so it can never be mistaken for a mailbox-key input.
//! - Secrets are compared as SHA-256 digests (fixed 32 bytes) with
//!   [`subtle`], so neither the length nor the first difference shows in the
//!   time taken.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Fewest bytes a configured `--hub-secret` may have: a shorter one could be
/// found from a key or token an attacker holds by trying every value.
pub const MIN_SECRET_LEN: usize = 32;

/// What a mailbox key is derived from, before the client id.
const MAILBOX_KEY_LABEL: &[u8] = b"altsock mailbox key\0";

/// The server secret. Its `Debug` shows no byte of it.
#[derive(Clone)]
pub struct HubSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for HubSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HubSecret(..)")
    }
}

impl PartialEq for HubSecret {
    fn eq(&self, other: &Self) -> bool {
        same_secret(&self.key, &other.key)
    }
}

impl Eq for HubSecret {}

impl HubSecret {
    /// 32 random bytes from the OS.
    pub fn random() -> std::io::Result<Self> {
        Ok(HubSecret {
            key: random_bytes::<32>()?.to_vec(),
        })
    }

    /// A configured secret; at least [`MIN_SECRET_LEN`] bytes.
    pub fn from_text(text: &str) -> Result<Self, String> {
        if text.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the hub secret must have at least {MIN_SECRET_LEN} bytes"
            ));
        }
        Ok(HubSecret {
            key: text.as_bytes().to_vec(),
        })
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length; this cannot fail.
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length")
    }

    /// The mailbox key of `client`, base64url.
    pub fn mailbox_key(&self, client: &str) -> String {
        B64.encode(self.mailbox_mac(client).finalize().into_bytes())
    }

    fn mailbox_mac(&self, client: &str) -> HmacSha256 {
        let mut mac = self.mac();
        mac.update(MAILBOX_KEY_LABEL);
        mac.update(client.as_bytes());
        mac
    }

    /// True when `given` is `client`'s mailbox key (compared in constant time).
    pub fn mailbox_key_matches(&self, client: &str, given: &str) -> bool {
        match B64.decode(given) {
            Ok(bytes) => self.mailbox_mac(client).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }

    /// A secret derived from this one for `msg` under `label` (the
    /// live-assist service's visitor secrets), base64url:
    /// `HMAC-SHA256(secret, label + "\0" + msg)`.
    pub fn derive(&self, label: &str, msg: &str) -> String {
        B64.encode(self.derived_mac(label, msg).finalize().into_bytes())
    }

    /// True when `given` is [`HubSecret::derive`]`(label, msg)` (compared in
    /// constant time).
    pub fn derived_matches(&self, label: &str, msg: &str, given: &str) -> bool {
        match B64.decode(given) {
            Ok(bytes) => self.derived_mac(label, msg).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }

    fn derived_mac(&self, label: &str, msg: &str) -> HmacSha256 {
        let mut mac = self.mac();
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(msg.as_bytes());
        mac
    }

    /// Signs `claims` as a subscription token.
    pub fn sign_token(&self, claims: &Claims) -> String {
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signed = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let signature = B64.encode(mac.finalize().into_bytes());
        format!("{signed}.{signature}")
    }

    /// The claims of a subscription token whose signature is this secret's
    /// and which has not expired at `now` (Unix seconds).
    pub fn verify_token(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signed = &token[..header.len() + 1 + payload.len()];
        let header = B64.decode(header).map_err(|_| TokenError::Malformed)?;
        parse_token_header(&header)?;
        let signature = B64.decode(signature).map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let payload = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let claims = parse_claims(&payload)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// What a subscription token grants: `channel` until `exp`, to anyone
/// holding it, or only to the session of user `sub`, or only on the
/// connection of hub client `client` (any combination).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The channel it grants.
    pub channel: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// The user whose session must present it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The hub client (proven by its mailbox key) that must present it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// Why a subscription token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts, or not JSON.
    Malformed,
    /// An algorithm other than HS256 (`none` included).
    BadAlgorithm,
    /// Not signed with this server's secret.
    BadSignature,
    /// The payload lacks `channel` or `exp`, or has them of the wrong type.
    BadClaims(String),
    /// Past its `exp`.
    Expired,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Malformed => f.write_str("malformed token"),
            TokenError::BadAlgorithm => f.write_str("token algorithm must be HS256"),
            TokenError::BadSignature => f.write_str("token signature does not match"),
            TokenError::BadClaims(e) => write!(f, "bad token claims: {e}"),
            TokenError::Expired => f.write_str("token expired"),
        }
    }
}

/// Checks a decoded token header: a JSON object with `"alg": "HS256"`.
pub fn parse_token_header(header: &[u8]) -> Result<(), TokenError> {
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let header: Header = serde_json::from_slice(header).map_err(|_| TokenError::Malformed)?;
    if header.alg != "HS256" {
        return Err(TokenError::BadAlgorithm);
    }
    Ok(())
}

/// Parses a decoded token payload.
pub fn parse_claims(payload: &[u8]) -> Result<Claims, TokenError> {
    serde_json::from_slice(payload).map_err(|e| TokenError::BadClaims(e.to_string()))
}

/// True when two secrets are equal. Both are hashed to SHA-256 first and the
/// digests compared in constant time, so the time taken tells nothing of the
/// secret's length or of where the two differ.
pub fn same_secret(expected: &[u8], given: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(expected), Sha256::digest(given));
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// `N` random bytes from the OS.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes)
}

/// A new client id: 128 random bits from the OS, as 32 hex digits.
pub fn new_client_id() -> std::io::Result<String> {
    let bytes = random_bytes::<16>()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> HubSecret {
        HubSecret::from_text(&"k".repeat(32)).expect("long enough")
    }

    fn claims(exp: u64) -> Claims {
        Claims {
            channel: "private-x".into(),
            exp,
            sub: Some("ann".into()),
            client: None,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let s = secret();
        let token = s.sign_token(&claims(100));
        assert_eq!(s.verify_token(&token, 99), Ok(claims(100)));
        assert_eq!(s.verify_token(&token, 100), Err(TokenError::Expired));
        let other = HubSecret::from_text(&"j".repeat(32)).expect("long enough");
        assert_eq!(other.verify_token(&token, 1), Err(TokenError::BadSignature));
    }

    #[test]
    fn a_changed_payload_or_algorithm_is_refused() {
        let s = secret();
        let token = s.sign_token(&claims(100));
        let parts: Vec<&str> = token.split('.').collect();
        let forged = B64.encode(br#"{"channel":"private-y","exp":100}"#);
        let swapped = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert_eq!(s.verify_token(&swapped, 1), Err(TokenError::BadSignature));
        let none = B64.encode(br#"{"alg":"none"}"#);
        let unsigned = format!("{none}.{}.", parts[1]);
        assert_eq!(s.verify_token(&unsigned, 1), Err(TokenError::BadAlgorithm));
        assert_eq!(s.verify_token("a.b", 1), Err(TokenError::Malformed));
        assert_eq!(s.verify_token("", 1), Err(TokenError::Malformed));
    }

    #[test]
    fn mailbox_keys_belong_to_one_client() {
        let s = secret();
        let key = s.mailbox_key("c1");
        assert_eq!(B64.decode(&key).map(|k| k.len()), Ok(32), "256 bits");
        assert!(s.mailbox_key_matches("c1", &key));
        assert!(!s.mailbox_key_matches("c2", &key));
        assert!(!s.mailbox_key_matches("c1", &key[..20]));
        assert!(!s.mailbox_key_matches("c1", "not base64!"));
        assert!(HubSecret::from_text("short").is_err());
    }

    #[test]
    fn secrets_compare_by_digest() {
        assert!(same_secret(b"T", b"T"));
        assert!(!same_secret(b"T", b"TT"));
        assert!(!same_secret(b"T", b""));
        assert_eq!(new_client_id().map(|id| id.len()).ok(), Some(32));
    }
}
