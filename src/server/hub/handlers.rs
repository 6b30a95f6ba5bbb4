//! The hub's HTTP surface: routes each claimed request, checks the publisher
//! token, names, sizes, mailbox keys and who may follow private channels,
//! picks the framing and the resume point, then hands over to the topic
//! table. Every refusal is a plain-text answer with its status (`400`;
//! `401` without the publisher token or the mailbox key; `403` for a bad
//! subscription token or a private channel not the asker's; `405`; `413`; `429` when a stranger's
//! connection or address made too many topics; `503` at the topic cap).

use std::time::{SystemTime, UNIX_EPOCH};

use super::access::{self, Access, Asker, Groups};
use super::buffer::Body;
use super::cors;
use super::grants;
use super::makers::{Full, Maker};
use super::notify::parse_notify;
use super::secret::{same_secret, Claims};
use super::topics::{Start, TopicKey};
use super::Hub;
use crate::server::{Job, ServerState};
use crate::{Cx, Framing, Hold, Reply, Request, Response};

/// The browser library.
const ALTSOCK_JS: &str = include_str!("altsock.js");

/// A refusal: the response that ends the request.
pub type Refusal = Response;

/// Answers one request the hub claimed; `groups` says who belongs to which
/// group (for `private-group-` channels).
pub fn handle(
    hub: &mut Hub,
    req: Request,
    shared: &mut ServerState,
    groups: &dyn Groups,
    cx: &mut Cx<'_, Job>,
) -> Reply {
    let origin = cors::allowed_origin(&hub.cfg, &req);
    if req.method == "OPTIONS" {
        return Reply::Respond(cors::preflight(origin.as_deref()));
    }
    let reply = route(hub, req, shared, groups, cx);
    match origin {
        Some(origin) => cors::decorate(reply, &origin),
        None => reply,
    }
}

/// Answers one request by method and path.
fn route(
    hub: &mut Hub,
    req: Request,
    shared: &mut ServerState,
    groups: &dyn Groups,
    cx: &mut Cx<'_, Job>,
) -> Reply {
    let path = req.path().to_string();
    let result = match (req.method.as_str(), path.as_str()) {
        ("GET" | "HEAD", "/altsock.js") => Ok(script()),
        ("GET", "/hub/stats") => stats(hub, &req, shared),
        ("POST", "/hub/client") => grants::issue_client(hub, &req, shared),
        ("POST", "/hub/auth") => grants::issue_token(hub, &req, shared, groups, unix_now()),
        ("POST", "/notify") => post_notify(hub, &req, shared, cx),
        ("GET", "/poll") => poll(hub, &req, shared, groups, cx),
        ("GET", p) if p.starts_with("/sub/") => subscribe(hub, &req, shared, groups, cx),
        ("POST", p) if p.starts_with("/pub/") => publish(hub, req, shared, cx),
        _ => Err(Response::text(405, "method not allowed\n")),
    };
    result.unwrap_or_else(Reply::Respond)
}

fn script() -> Reply {
    Reply::Respond(
        Response::new(200)
            .header("Content-Type", "application/javascript; charset=utf-8")
            .header("Cache-Control", "no-cache")
            .body(ALTSOCK_JS),
    )
}

/// `GET /sub/CHANNEL[?token=JWT]`: holds a stream of the channel from the
/// resume point; a WebSocket upgrade makes it a WebSocket of JSON objects.
fn subscribe(
    hub: &mut Hub,
    req: &Request,
    shared: &ServerState,
    groups: &dyn Groups,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Refusal> {
    let name = channel_name(hub, req, "/sub/")?;
    let grants = tokens_of(hub, req)?;
    let asker = asker_of(req, shared, None, &grants);
    let until = check_access(hub, &name, &asker, groups)?;
    let upgrade =
        crate::server::websocket_hold(req, cors::allowed_origin(&hub.cfg, req).is_some())?;
    let framing = match upgrade {
        Some(_) => Framing::WebSocket,
        None => framing_of(req, Framing::Sse)?,
    };
    let start = start_of(req, Start::New)?;
    let key = TopicKey::Channel(name);
    let maker = Maker::new(req.conn, req.peer);
    check_room(hub, [&key], Some(&maker))?;
    let hold = hub
        .topics
        .subscribe(maker, key, framing, start, &hub.cfg, cx.now());
    hub.held_until(req.conn, until);
    Ok(Reply::Hold(with_upgrade(hold, upgrade)))
}

/// A topic hold in `Framing::WebSocket` with the upgrade's `101` headers added.
fn with_upgrade(mut hold: Hold, upgrade: Option<Hold>) -> Hold {
    if let Some(websocket) = upgrade {
        hold.headers.extend(websocket.headers);
    }
    hold
}

/// `POST /pub/CHANNEL`: buffers and sends the body; `202` with id and reach.
fn publish(
    hub: &mut Hub,
    req: Request,
    shared: &ServerState,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Refusal> {
    authorize(&req, shared)?;
    let name = channel_name(hub, &req, "/pub/")?;
    check_size(hub, &req.body)?;
    let key = TopicKey::Channel(name);
    check_room(hub, [&key], None)?;
    let body = Body::Channel(req.body);
    let (id, reached) = hub.topics.publish(key, body, &hub.cfg, cx);
    Ok(accepted(id, reached))
}

/// `POST /notify`: stores a notification in its client's mailbox.
fn post_notify(
    hub: &mut Hub,
    req: &Request,
    shared: &ServerState,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Refusal> {
    authorize(req, shared)?;
    check_size(hub, &req.body)?;
    let n = parse_notify(&req.body).map_err(|e| Response::text(400, format!("{e}\n")))?;
    check_name(hub, "client", &n.client)?;
    check_name(hub, "app", &n.app)?;
    let key = TopicKey::Mailbox(n.client);
    check_room(hub, [&key], None)?;
    let body = Body::Notification {
        app: n.app,
        data: n.data,
    };
    let (id, reached) = hub.topics.publish(key, body, &hub.cfg, cx);
    Ok(accepted(id, reached))
}

/// `GET /poll?client=ID&key=KEY&since=N`: the client's notifications after
/// `N` (all buffered ones without `since`), or a hold until one arrives (a
/// WebSocket upgrade makes it a WebSocket of JSON envelopes). The
/// key is the client's mailbox key (`POST /hub/client`). With
/// `&channels=NAME[@SINCE],...` the same connection also follows those
/// channels (each from its `SINCE`, else from now; private ones with
/// `&token=JWT,...`), every message in its JSON envelope: the browser's one
/// connection.
fn poll(
    hub: &mut Hub,
    req: &Request,
    shared: &ServerState,
    groups: &dyn Groups,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Refusal> {
    let client = req
        .query_param("client")
        .ok_or_else(|| Response::text(400, "missing client\n"))?;
    check_name(hub, "client", &client)?;
    check_mailbox_key(hub, req, &client)?;
    let upgrade =
        crate::server::websocket_hold(req, cors::allowed_origin(&hub.cfg, req).is_some())?;
    let framing = match upgrade {
        Some(_) => Framing::WebSocket,
        None => framing_of(req, Framing::LongPoll)?,
    };
    let start = start_of(req, Start::Buffered)?;
    let maker = Maker::new(req.conn, req.peer);
    let now = cx.now();
    let Some(list) = req.query_param("channels") else {
        let key = TopicKey::Mailbox(client);
        check_room(hub, [&key], Some(&maker))?;
        let hold = hub
            .topics
            .subscribe(maker, key, framing, start, &hub.cfg, now);
        hub.held_until(req.conn, None);
        return Ok(Reply::Hold(with_upgrade(hold, upgrade)));
    };
    let grants = tokens_of(hub, req)?;
    let asker = asker_of(req, shared, Some(&client), &grants);
    let (mut wants, until) = channel_list(hub, &list, &asker, groups)?;
    wants.insert(0, (TopicKey::Mailbox(client), start));
    check_room(hub, wants.iter().map(|(key, _)| key), Some(&maker))?;
    let hold = hub
        .topics
        .subscribe_all(maker, wants, framing, true, &hub.cfg, now);
    hub.held_until(req.conn, until);
    Ok(Reply::Hold(with_upgrade(hold, upgrade)))
}

/// Most channels one connection may follow.
const MAX_CHANNELS: usize = 64;

/// The topics a connection asks for, each from its start.
type Wants = Vec<(TopicKey, Start)>;

/// `NAME[@SINCE],...`, each name checked like a subscription's; with the
/// earliest expiry of the tokens the list needs.
fn channel_list(
    hub: &Hub,
    list: &str,
    asker: &Asker<'_>,
    groups: &dyn Groups,
) -> Result<(Wants, Option<u64>), Refusal> {
    let items: Vec<&str> = list.split(',').filter(|i| !i.is_empty()).collect();
    if items.len() > MAX_CHANNELS {
        return Err(Response::text(
            400,
            format!("at most {MAX_CHANNELS} channels\n"),
        ));
    }
    let mut wants = Vec::with_capacity(items.len() + 1);
    let mut until: Option<u64> = None;
    for item in items {
        let (name, start) = match item.split_once('@') {
            Some((name, since)) => {
                let n = since
                    .parse()
                    .map_err(|_| Response::text(400, "bad since\n"))?;
                (name, Start::After(n))
            }
            None => (item, Start::New),
        };
        check_name(hub, "channel", name)?;
        if let Some(exp) = check_access(hub, name, asker, groups)? {
            until = Some(until.map_or(exp, |u| u.min(exp)));
        }
        wants.push((TopicKey::Channel(name.to_string()), start));
    }
    Ok((wants, until))
}

/// `GET /hub/stats[?channel=NAME|client=ID]` (publisher token): counts as JSON.
fn stats(hub: &Hub, req: &Request, shared: &ServerState) -> Result<Reply, Refusal> {
    authorize(req, shared)?;
    let c = hub.topics.counts();
    let mut body = serde_json::json!({
        "channels": c.channels,
        "mailboxes": c.mailboxes,
        "subscribers": c.subscribers,
        "published": c.published,
    });
    let key = match (req.query_param("channel"), req.query_param("client")) {
        (Some(name), _) => Some(TopicKey::Channel(name)),
        (None, Some(id)) => Some(TopicKey::Mailbox(id)),
        _ => None,
    };
    if let Some(key) = key {
        body["topic"] = serde_json::json!({
            "subscribers": hub.topics.subscribers(&key),
            "last_id": hub.topics.last_id(&key),
        });
    }
    Ok(Reply::Respond(Response::json(200, body.to_string())))
}

/// The valid subscription tokens in `?token=JWT[,JWT...]`; one that is not
/// (a bad signature, expired, malformed) refuses the request with `403`
/// and the reason, so a page learns why rather than waiting in vain.
fn tokens_of(hub: &Hub, req: &Request) -> Result<Vec<Claims>, Refusal> {
    let Some(list) = req.query_param("token") else {
        return Ok(Vec::new());
    };
    let now = unix_now();
    list.split(',')
        .filter(|t| !t.is_empty())
        .take(MAX_CHANNELS)
        .map(|token| {
            hub.secret
                .verify_token(token, now)
                .map_err(|e| Response::text(403, format!("subscription token refused: {e}\n")))
        })
        .collect()
}

/// Who the request shows itself to be: its session, its proven hub client,
/// its tokens.
fn asker_of<'a>(
    req: &Request,
    shared: &'a ServerState,
    client: Option<&'a str>,
    grants: &'a [Claims],
) -> Asker<'a> {
    let session = shared.sessions.of_request(req).map(|(_, s)| s);
    Asker {
        user: session.map(|s| s.user.as_str()),
        guest: session.is_some_and(|s| s.guest),
        client,
        grants,
    }
}

/// Refuses a private channel to whoever may not follow it (see `access`);
/// the expiry of the token that grants it, if a token was needed.
fn check_access(
    hub: &Hub,
    name: &str,
    asker: &Asker<'_>,
    groups: &dyn Groups,
) -> Result<Option<u64>, Refusal> {
    match access::access(&hub.cfg.private_prefix, name, asker, groups) {
        Access::Granted => Ok(None),
        Access::Until(exp) => Ok(Some(exp)),
        Access::Denied => Err(Response::text(
            403,
            "private channel: needs its owner's session, a member's, or a subscription token\n",
        )),
    }
}

/// Refuses a mailbox read without the client's key, or with a key that is
/// not the client's (made with another secret, or another client's): `401`
/// either way, so the browser library knows to get a new client.
fn check_mailbox_key(hub: &Hub, req: &Request, client: &str) -> Result<(), Refusal> {
    let why = match req.query_param("key") {
        None => "mailbox key required (POST /hub/client issues one)\n",
        Some(key) if !hub.secret.mailbox_key_matches(client, &key) => "wrong mailbox key\n",
        Some(_) => return Ok(()),
    };
    Err(Response::text(401, why).header("WWW-Authenticate", "AltsockKey"))
}

fn accepted(id: u64, reached: usize) -> Reply {
    let body = serde_json::json!({ "id": id, "subscribers": reached });
    Reply::Respond(Response::json(202, body.to_string()))
}

/// True when the request carries `Authorization: Bearer TOKEN` with the
/// configured publisher token (none configured: never).
pub fn authorized(req: &Request, shared: &ServerState) -> bool {
    let given = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match (&shared.config.publish_token, given) {
        (Some(token), Some(given)) => same_secret(token.as_bytes(), given.as_bytes()),
        _ => false,
    }
}

/// Refuses with `401` unless the request is [`authorized`].
fn authorize(req: &Request, shared: &ServerState) -> Result<(), Refusal> {
    if authorized(req, shared) {
        return Ok(());
    }
    Err(Response::text(401, "publisher token required\n").header("WWW-Authenticate", "Bearer"))
}

/// Refuses when following or publishing to `keys` would make more topics
/// than `maker` (`None`: a publisher) may: `429` for a stranger's connection
/// or address, `503` with `Retry-After` at the table's cap. The sender is
/// told; nothing is dropped silently.
fn check_room<'k>(
    hub: &Hub,
    keys: impl IntoIterator<Item = &'k TopicKey>,
    maker: Option<&Maker>,
) -> Result<(), Refusal> {
    let refusal = match hub.topics.room(keys, maker, &hub.cfg) {
        Ok(()) => return Ok(()),
        Err(Full::Table(max)) => Response::text(
            503,
            format!("too many channels and mailboxes (at most {max})\n"),
        ),
        Err(Full::Conn(max)) => Response::text(
            429,
            format!("this connection made {max} channels or mailboxes, the most it may\n"),
        ),
        Err(Full::Addr(max)) => Response::text(
            429,
            format!("this address made {max} channels or mailboxes, the most it may\n"),
        ),
    };
    Err(refusal.header("Retry-After", "1"))
}

fn check_size(hub: &Hub, body: &[u8]) -> Result<(), Refusal> {
    if body.len() > hub.cfg.max_message {
        let limit = hub.cfg.max_message;
        return Err(Response::text(413, format!("message over {limit} bytes\n")));
    }
    Ok(())
}

/// The channel name after `prefix` in the path, checked.
fn channel_name(hub: &Hub, req: &Request, prefix: &str) -> Result<String, Refusal> {
    let name = req.path().strip_prefix(prefix).unwrap_or("");
    check_name(hub, "channel", name)?;
    Ok(name.to_string())
}

/// Names are 1 to `max_name` bytes of `[A-Za-z0-9_.:-]`.
pub fn check_name(hub: &Hub, what: &str, name: &str) -> Result<(), Refusal> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-');
    if name.is_empty() || name.len() > hub.cfg.max_name || !name.bytes().all(allowed) {
        let max = hub.cfg.max_name;
        return Err(Response::text(
            400,
            format!("bad {what} name: 1 to {max} bytes of [A-Za-z0-9_.:-]\n"),
        ));
    }
    Ok(())
}

/// `?transport=` if given, else what `Accept` asks for, else `default`.
fn framing_of(req: &Request, default: Framing) -> Result<Framing, Refusal> {
    if let Some(name) = req.query_param("transport") {
        return Framing::from_name(&name).ok_or_else(|| Response::text(400, "unknown transport\n"));
    }
    Ok(if req.accepts("text/event-stream") {
        Framing::Sse
    } else if req.accepts("multipart/x-mixed-replace") {
        Framing::Multipart
    } else {
        default
    })
}

/// `?since=N`, else a numeric `Last-Event-ID`, else `default`.
fn start_of(req: &Request, default: Start) -> Result<Start, Refusal> {
    if let Some(since) = req.query_param("since") {
        let n = since
            .parse()
            .map_err(|_| Response::text(400, "bad since\n"))?;
        return Ok(Start::After(n));
    }
    let last = req
        .header("last-event-id")
        .and_then(|v| v.trim().parse().ok());
    Ok(last.map_or(default, Start::After))
}

/// Seconds since the Unix epoch (token expiry is wall-clock time).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
