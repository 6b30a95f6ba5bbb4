//! The hub's HTTP surface: routes each claimed request, checks the publisher
//! token, names, sizes and private-channel sessions, picks the framing and
//! the resume point, then hands over to the topic table. Every refusal is a
//! plain-text answer with its status (`400`, `401`, `403`, `405`, `413`,
//! `503` past the topic cap).

use super::cors;
use super::notify;
use super::topics::{Start, TopicKey};
use super::Hub;
use crate::server::{Job, ServerState};
use crate::{Cx, Framing, Reply, Request, Response};

/// The browser library.
const ALTSOCK_JS: &str = include_str!("altsock.js");

/// A refusal: the response that ends the request.
type Refusal = Response;

/// Answers one request the hub claimed.
pub fn handle(
    hub: &mut Hub,
    req: Request,
    shared: &mut ServerState,
    cx: &mut Cx<'_, Job>,
) -> Reply {
    let origin = cors::allowed_origin(&hub.cfg, &req);
    if req.method == "OPTIONS" {
        return Reply::Respond(cors::preflight(origin.as_deref()));
    }
    let reply = route(hub, req, shared, cx);
    match origin {
        Some(origin) => cors::decorate(reply, &origin),
        None => reply,
    }
}

/// Answers one request by method and path.
fn route(hub: &mut Hub, req: Request, shared: &mut ServerState, cx: &mut Cx<'_, Job>) -> Reply {
    let path = req.path().to_string();
    let result = match (req.method.as_str(), path.as_str()) {
        ("GET" | "HEAD", "/altsock.js") => Ok(script()),
        ("GET", "/hub/stats") => stats(hub, &req, shared),
        ("POST", "/notify") => post_notify(hub, &req, shared, cx),
        ("GET", "/poll") => poll(hub, &req, shared, cx),
        ("GET", p) if p.starts_with("/sub/") => subscribe(hub, &req, shared, cx),
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

/// `GET /sub/CHANNEL`: holds a stream of the channel from the resume point.
fn subscribe(
    hub: &mut Hub,
    req: &Request,
    shared: &ServerState,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Refusal> {
    let name = channel_name(hub, req, "/sub/")?;
    check_private(hub, req, shared, &name)?;
    let framing = framing_of(req, Framing::Sse)?;
    let start = start_of(req, Start::New)?;
    let key = TopicKey::Channel(name);
    check_room(hub, [&key])?;
    let hold = hub
        .topics
        .subscribe(req.conn, key, framing, start, &hub.cfg, cx.now());
    Ok(Reply::Hold(hold))
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
    check_room(hub, [&key])?;
    let (id, reached) = hub.topics.publish(key, None, req.body, &hub.cfg, cx);
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
    let n = notify::parse(&req.body).map_err(|e| Response::text(400, format!("{e}\n")))?;
    check_name(hub, "client", &n.client)?;
    check_name(hub, "app", &n.app)?;
    let key = TopicKey::Client(n.client);
    check_room(hub, [&key])?;
    let (id, reached) = hub
        .topics
        .publish(key, Some(n.app), n.data.into_bytes(), &hub.cfg, cx);
    Ok(accepted(id, reached))
}

/// `GET /poll?client=ID&since=N`: the client's notifications after `N`
/// (all buffered ones without `since`), or a hold until one arrives. With
/// `&channels=NAME[@SINCE],...` the same connection also follows those
/// channels (each from its `SINCE`, else from now), every message in its
/// JSON envelope: the browser's one connection.
fn poll(
    hub: &mut Hub,
    req: &Request,
    shared: &ServerState,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Refusal> {
    let client = req
        .query_param("client")
        .ok_or_else(|| Response::text(400, "missing client\n"))?;
    check_name(hub, "client", &client)?;
    let framing = framing_of(req, Framing::LongPoll)?;
    let start = start_of(req, Start::Buffered)?;
    let key = TopicKey::Client(client);
    let now = cx.now();
    let Some(list) = req.query_param("channels") else {
        check_room(hub, [&key])?;
        let hold = hub
            .topics
            .subscribe(req.conn, key, framing, start, &hub.cfg, now);
        return Ok(Reply::Hold(hold));
    };
    let mut wants = vec![(key, start)];
    wants.extend(channel_list(hub, req, shared, &list)?);
    check_room(hub, wants.iter().map(|(key, _)| key))?;
    let hold = hub
        .topics
        .subscribe_all(req.conn, wants, framing, true, &hub.cfg, now);
    Ok(Reply::Hold(hold))
}

/// Most channels one connection may follow.
const MAX_CHANNELS: usize = 64;

/// `NAME[@SINCE],...`, each name checked like a subscription's.
fn channel_list(
    hub: &Hub,
    req: &Request,
    shared: &ServerState,
    list: &str,
) -> Result<Vec<(TopicKey, Start)>, Refusal> {
    let items: Vec<&str> = list.split(',').filter(|i| !i.is_empty()).collect();
    if items.len() > MAX_CHANNELS {
        return Err(Response::text(
            400,
            format!("at most {MAX_CHANNELS} channels\n"),
        ));
    }
    let mut wants = Vec::with_capacity(items.len());
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
        check_private(hub, req, shared, name)?;
        wants.push((TopicKey::Channel(name.to_string()), start));
    }
    Ok(wants)
}

/// `GET /hub/stats[?channel=NAME|client=ID]` (publisher token): counts as JSON.
fn stats(hub: &Hub, req: &Request, shared: &ServerState) -> Result<Reply, Refusal> {
    authorize(req, shared)?;
    let c = hub.topics.counts();
    let mut body = serde_json::json!({
        "channels": c.channels,
        "clients": c.clients,
        "subscribers": c.subscribers,
        "published": c.published,
    });
    let key = match (req.query_param("channel"), req.query_param("client")) {
        (Some(name), _) => Some(TopicKey::Channel(name)),
        (None, Some(id)) => Some(TopicKey::Client(id)),
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

/// Refuses a private channel to a request without a session.
fn check_private(
    hub: &Hub,
    req: &Request,
    shared: &ServerState,
    name: &str,
) -> Result<(), Refusal> {
    let prefix = &hub.cfg.private_prefix;
    if !prefix.is_empty()
        && name.starts_with(prefix.as_str())
        && shared.sessions.of_request(req).is_none()
    {
        return Err(Response::text(403, "private channel: no session\n"));
    }
    Ok(())
}

fn accepted(id: u64, reached: usize) -> Reply {
    let body = format!("{{\"id\":{id},\"subscribers\":{reached}}}");
    Reply::Respond(Response::json(202, body))
}

/// Refuses unless the request carries `Authorization: Bearer TOKEN` with
/// the configured publisher token (none configured refuses everyone).
fn authorize(req: &Request, shared: &ServerState) -> Result<(), Refusal> {
    let given = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match (&shared.config.publish_token, given) {
        (Some(token), Some(given)) if same(token.as_bytes(), given.as_bytes()) => Ok(()),
        _ => {
            Err(Response::text(401, "publisher token required\n")
                .header("WWW-Authenticate", "Bearer"))
        }
    }
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses with `503` when following or publishing to `keys` would make the
/// table pass its topic cap; the sender is told, nothing is dropped silently.
fn check_room<'k>(hub: &Hub, keys: impl IntoIterator<Item = &'k TopicKey>) -> Result<(), Refusal> {
    if hub.topics.has_room(keys, hub.cfg.max_topics) {
        return Ok(());
    }
    let max = hub.cfg.max_topics;
    Err(Response::text(
        503,
        format!("too many channels and mailboxes (at most {max})\n"),
    )
    .header("Retry-After", "1"))
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
fn check_name(hub: &Hub, what: &str, name: &str) -> Result<(), Refusal> {
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
