//! What the hub hands out: hub client ids with their mailbox keys (`POST
//! /hub/client`) and subscription tokens for private channels (`POST
//! /hub/auth`). Each JSON body is taken apart by one pure function
//! ([`parse_client_request`], [`parse_auth_request`]); the keys and tokens
//! themselves are made in `secret`.
//!
//! - `POST /hub/client` from anyone: a new client id (128 random bits) and
//!   its mailbox key, `{"client","key"}`. The browser keeps both and tells
//!   its application server only the id; the server addresses the browser
//!   by it (`POST /notify`), and only the key reads the mailbox (`GET
//!   /poll`). With the publisher token, `{"client": ID}` names the id (an
//!   application that addresses browsers by its own ids).
//! - `POST /hub/auth` with the publisher token: `{"channel", "sub"?,
//!   "client"?, "ttl"?}` signs a token for any channel (what an application
//!   server does that does not sign JWTs itself). With a session instead: a
//!   token for a private channel the session may follow by the ownership
//!   rules (its own `private-user-`, its groups' `private-group-`), bound to
//!   its user, e.g. for a page of another origin that cannot send the cookie.

use serde::Deserialize;
use serde_json::json;

use super::access::{self, Asker, Groups};
use super::handlers::{authorized, check_name, Refusal};
use super::secret::{new_client_id, Claims};
use super::Hub;
use crate::server::ServerState;
use crate::{Reply, Request, Response};

/// Lifetime of a token when the request names none (one hour).
pub const DEFAULT_TTL: u64 = 3600;

/// Longest lifetime a token may be given (30 days).
pub const MAX_TTL: u64 = 30 * 24 * 3600;

/// A `POST /hub/client` body: the client id a publisher names, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    /// The client id to issue the key of.
    pub client: Option<String>,
}

/// A `POST /hub/auth` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRequest {
    /// The channel to grant.
    pub channel: String,
    /// The user whose session must present the token.
    pub sub: Option<String>,
    /// The hub client whose connection must present the token.
    pub client: Option<String>,
    /// Lifetime in seconds (default [`DEFAULT_TTL`], at most [`MAX_TTL`]).
    pub ttl: Option<u64>,
}

/// Parses a `POST /hub/client` body; an empty body names no client.
pub fn parse_client_request(body: &[u8]) -> Result<ClientRequest, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ClientRequest::default());
    }
    serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))
}

/// Parses a `POST /hub/auth` body.
pub fn parse_auth_request(body: &[u8]) -> Result<AuthRequest, String> {
    let req: AuthRequest = serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))?;
    match req.ttl {
        Some(0) => Err("\"ttl\" must be at least 1".into()),
        Some(ttl) if ttl > MAX_TTL => Err(format!("\"ttl\" must be at most {MAX_TTL}")),
        _ => Ok(req),
    }
}

/// `POST /hub/client`: a client id and its mailbox key.
pub fn issue_client(hub: &Hub, req: &Request, shared: &ServerState) -> Result<Reply, Refusal> {
    let asked = parse_client_request(&req.body).map_err(bad_request)?;
    let client = match asked.client {
        Some(client) if authorized(req, shared) => {
            check_name(hub, "client", &client)?;
            client
        }
        Some(_) => return Err(publisher_only("naming the client")),
        None => new_client_id().map_err(|e| {
            log::error!("hub: no random bytes for a client id: {e}");
            Response::text(500, "no random source\n")
        })?,
    };
    let key = hub.secret.mailbox_key(&client);
    Ok(secret_answer(json!({ "client": client, "key": key })))
}

/// `POST /hub/auth`: a subscription token.
pub fn issue_token(
    hub: &Hub,
    req: &Request,
    shared: &ServerState,
    groups: &dyn Groups,
    now: u64,
) -> Result<Reply, Refusal> {
    let asked = parse_auth_request(&req.body).map_err(bad_request)?;
    check_name(hub, "channel", &asked.channel)?;
    let ttl = asked.ttl.unwrap_or(DEFAULT_TTL);
    let claims = if authorized(req, shared) {
        Claims {
            channel: asked.channel,
            exp: now + ttl,
            sub: asked.sub,
            client: asked.client,
        }
    } else {
        session_claims(hub, req, shared, groups, asked, now + ttl)?
    };
    let token = hub.secret.sign_token(&claims);
    Ok(secret_answer(json!({
        "token": token,
        "channel": claims.channel,
        "expires": claims.exp,
    })))
}

/// The claims a session may have signed for itself: a channel it may follow
/// by the ownership rules, bound to its user.
fn session_claims(
    hub: &Hub,
    req: &Request,
    shared: &ServerState,
    groups: &dyn Groups,
    asked: AuthRequest,
    exp: u64,
) -> Result<Claims, Refusal> {
    let Some((_, session)) = shared.sessions.of_request(req) else {
        return Err(publisher_only("a token without a session"));
    };
    if !same_origin_or_allowed(hub, req) {
        return Err(Response::text(403, "cross-origin request refused\n"));
    }
    if asked.sub.as_ref().is_some_and(|sub| *sub != session.user) {
        return Err(Response::text(
            403,
            "a session signs only for its own user\n",
        ));
    }
    let asker = Asker {
        user: Some(&session.user),
        guest: session.guest,
        ..Asker::default()
    };
    let prefix = &hub.cfg.private_prefix;
    let private = !prefix.is_empty() && asked.channel.starts_with(prefix.as_str());
    if !private || !access::may_follow(prefix, &asked.channel, &asker, groups) {
        return Err(Response::text(
            403,
            "not a private channel of this session\n",
        ));
    }
    Ok(Claims {
        channel: asked.channel,
        exp,
        sub: Some(session.user.clone()),
        client: asked.client,
    })
}

/// True when the request has no `Origin`, or one naming its own `Host`, or
/// one the hub allows (`--hub-allow-origin`).
fn same_origin_or_allowed(hub: &Hub, req: &Request) -> bool {
    let Some(origin) = req.header("origin") else {
        return true;
    };
    let host = origin.split_once("://").map(|(_, host)| host);
    (host.is_some() && host == req.header("host"))
        || super::cors::allowed_origin(&hub.cfg, req).is_some()
}

/// A `200` carrying a secret: never cached.
fn secret_answer(body: serde_json::Value) -> Reply {
    Reply::Respond(Response::json(200, body.to_string()).header("Cache-Control", "no-store"))
}

fn bad_request(e: String) -> Refusal {
    Response::text(400, format!("{e}\n"))
}

fn publisher_only(what: &str) -> Refusal {
    Response::text(401, format!("{what} needs the publisher token\n"))
        .header("WWW-Authenticate", "Bearer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        assert_eq!(parse_client_request(b""), Ok(ClientRequest::default()));
        let named = parse_client_request(br#"{"client":"b1"}"#).map(|r| r.client);
        assert_eq!(named, Ok(Some("b1".into())));
        assert!(parse_client_request(br#"{"clinet":"b1"}"#).is_err());
        let auth = parse_auth_request(br#"{"channel":"private-x","ttl":60}"#).expect("parses");
        assert_eq!((auth.channel.as_str(), auth.ttl), ("private-x", Some(60)));
        assert!(parse_auth_request(br#"{"channel":"x","ttl":0}"#).is_err());
        assert!(parse_auth_request(br#"{"channel":"x","ttl":99999999}"#).is_err());
        assert!(parse_auth_request(br#"{"ttl":5}"#).is_err());
        assert!(parse_auth_request(b"[").is_err());
    }
}
