//! The visitor endpoints the widget calls (`POST /assist/open`, `page`,
//! `ask`, `chat`, `typing`, `end`, `invite`, `consent`, `pulled`,
//! `close`): the page's `Origin` must be an `--assist-origin` (or this
//! server), every request but the first `open` carries the visitor's id and
//! secret, each visitor has a rate limit; cross-origin answers carry
//! `Access-Control-Allow-Origin`. Also the sweep that lets go of visitors
//! whose hub connection has been gone for `--assist-visitor-linger`.

use std::net::{IpAddr, Ipv6Addr};

use serde_json::{json, Map, Value};

use super::commands::Side;
use super::input::{
    self, answer, check_url, cut, fail, parse_visitor, visitor_text, Bucket, Input,
};
use super::visitors::{secret_of, secret_ok, state_of, Visitor};
use super::{store, wall_ms, Assist};
use crate::server::{Job, ServerRouter};
use crate::{Cx, Reply, Request, Response};

/// Answers a visitor request, with the CORS headers for its origin.
pub fn handle(router: &mut ServerRouter, req: &Request, cx: &mut Cx<'_, Job>) -> Reply {
    let Some(origin) = allowed_origin(&router.assist, req) else {
        log::debug!(
            "{}: assist: origin {:?} refused",
            req.conn,
            req.header("origin")
        );
        return Reply::Respond(fail(403, "origin not allowed"));
    };
    if req.method == "OPTIONS" {
        let r = Response::new(204)
            .header("Access-Control-Allow-Methods", "POST, OPTIONS")
            .header("Access-Control-Allow-Headers", "Content-Type")
            .header("Access-Control-Max-Age", "600");
        return Reply::Respond(cors(r, &origin));
    }
    let reply = if req.method != "POST" {
        Reply::Respond(fail(405, "use POST").header("Allow", "POST, OPTIONS"))
    } else {
        route(router, req, &origin, cx).unwrap_or_else(Reply::Respond)
    };
    match reply {
        Reply::Respond(r) => Reply::Respond(cors(r, &origin)),
        other => other,
    }
}

/// The request's `Origin` when it may use the widget endpoints: listed with
/// `--assist-origin` (or `*`), or this server's own.
fn allowed_origin(assist: &Assist, req: &Request) -> Option<String> {
    let origin = req.header("origin")?.trim();
    let listed = assist
        .cfg
        .origins
        .iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin));
    (listed || crate::server::presence::origin::origin_ok(req)).then(|| origin.to_string())
}

/// Adds the CORS headers for `origin`.
fn cors(r: Response, origin: &str) -> Response {
    r.header("Access-Control-Allow-Origin", origin)
        .header("Vary", "Origin")
}

fn route(
    router: &mut ServerRouter,
    req: &Request,
    origin: &str,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Response> {
    let input = Input::of(req)?;
    let path = req.path();
    if path == "/assist/open" {
        return open(router, req, &input, origin, cx);
    }
    let assist = &mut router.assist;
    let now = assist.mono(cx.now());
    let id = visitor_of(assist, &input, now)?;
    let site = assist.visitors[&id].site.to_string();
    assist.site(&site);
    let ok = |v: Value| Ok(Reply::Respond(answer(200, v)));
    match path {
        "/assist/page" => {
            let url = input.required("url")?;
            check_url("url", &url)?;
            let title = cut(&input.text("title").unwrap_or_default(), input::MAX_TITLE);
            if let Some(v) = assist.visitors.get_mut(&id) {
                let mut page = v.page();
                page["url"] = json!(url);
                page["title"] = json!(title);
                let client = v.client().to_string();
                v.set_page(&client, &page);
                v.pages += 1;
            }
            assist.log(
                &site,
                Some(id),
                "",
                "page",
                json!({"url": url, "title": title}),
            );
            assist.visitor_listed(&site, id, cx);
            ok(json!({"ok": true}))
        }
        "/assist/ask" => ask(assist, &site, id, &input, now, cx),
        "/assist/chat" => {
            let text = input.raw_text("text")?;
            ok(assist.chat(&site, id, Side::Visitor, "", &text, cx)?)
        }
        "/assist/typing" => {
            let typing = input.flag("typing", true);
            let ev = json!({"type": "typing", "visitor": visitor_text(id), "from": "visitor", "name": "", "typing": typing});
            assist.emit(&site, ev, cx);
            ok(json!({"ok": true}))
        }
        "/assist/end" => {
            let effects = assist.site(&site).routing.end(id, now);
            assist.site(&site).transcripts.remove(&id);
            assist.site(&site).invites.remove(&id);
            assist.apply(&site, effects, cx);
            assist.tell_visitor(id, json!({"type": "ended", "by": "visitor"}));
            assist.visitor_changed(&site, id, cx);
            assist.log(&site, Some(id), "", "ended", json!({"by": "visitor"}));
            ok(json!({"state": "browsing"}))
        }
        "/assist/invite" => answer_invite(assist, &site, id, &input, now, cx),
        "/assist/consent" => {
            let given = input.flag("given", false);
            let push = input.text("push").unwrap_or_default();
            let ev = json!({"type": "consent", "visitor": visitor_text(id), "push": push, "given": given});
            assist.emit(&site, ev, cx);
            assist.log(
                &site,
                Some(id),
                "",
                "consent",
                json!({"push": push, "given": given}),
            );
            ok(json!({"ok": true}))
        }
        "/assist/pulled" => {
            let url = input.required("url")?;
            check_url("url", &url)?;
            let title = cut(&input.text("title").unwrap_or_default(), input::MAX_TITLE);
            let pull = input.text("pull").unwrap_or_default();
            let ev = json!({"type": "pulled", "visitor": visitor_text(id), "pull": pull, "url": url, "title": title});
            assist.emit(&site, ev, cx);
            assist.log(
                &site,
                Some(id),
                "",
                "pulled",
                json!({"pull": pull, "url": url, "title": title}),
            );
            ok(json!({"ok": true}))
        }
        "/assist/close" => ok(json!({"ok": true})),
        _ => Err(fail(404, "not found")),
    }
}

/// The visitor a request proves: its id and secret (`401`), known to the
/// registry (`404`: open first), within its rate (`429`).
fn visitor_of(assist: &mut Assist, input: &Input, now: u64) -> Result<u128, Response> {
    let (Some(text), Some(secret)) = (input.text("visitor"), input.text("secret")) else {
        return Err(fail(401, "visitor id and secret required"));
    };
    let id = parse_visitor(&text).ok_or_else(|| fail(401, "bad visitor id"))?;
    if !secret_ok(&assist.secret, id, &secret) {
        return Err(fail(401, "wrong visitor secret"));
    }
    let rate = assist.cfg.visitor_rate;
    let v = assist
        .visitors
        .get_mut(&id)
        .ok_or_else(|| fail(404, "unknown visitor: open first"))?;
    v.touch(now);
    v.bucket.take(rate, now).map_err(|wait| {
        let secs = wait.div_ceil(1000).max(1);
        fail(429, "too many requests").header("Retry-After", secs.to_string())
    })?;
    Ok(id)
}

/// `POST /assist/ask`.
fn ask(
    assist: &mut Assist,
    site: &str,
    id: u128,
    input: &Input,
    now: u64,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Response> {
    let mut skills = input::skills(input.list("skills"));
    if skills.is_empty() {
        skills = assist.visitors[&id].skills();
    }
    let first = match input.value("text") {
        Some(_) => Some(input.raw_text("text")?),
        None => None,
    };
    if first
        .as_ref()
        .is_some_and(|t| t.len() > assist.cfg.max_chat)
    {
        return Err(fail(
            413,
            format!("chat line over {} bytes", assist.cfg.max_chat),
        ));
    }
    let asked_before = assist.site(site).routing.status(id).is_some();
    let effects = assist
        .site(site)
        .routing
        .ask(id, skills.clone(), now)
        .map_err(|_| fail(503, "the queue is full").header("Retry-After", "10"))?;
    if !asked_before {
        assist.site(site).invites.remove(&id);
        assist.log(site, Some(id), "", "ask", json!({"skills": skills}));
        if assist.site(site).routing.position(id).is_some() {
            assist.log(site, Some(id), "", "queued", Value::Null);
        }
    }
    assist.apply(site, effects, cx);
    assist.visitor_changed(site, id, cx);
    if let Some(text) = first {
        assist.chat(site, id, Side::Visitor, "", &text, cx)?;
    }
    let (state, rep, position) = state_of(id, &assist.sites[site]);
    let rep = if state == "chatting" { rep } else { None };
    Ok(Reply::Respond(answer(
        200,
        json!({"state": state, "position": position, "rep": rep}),
    )))
}

/// `POST /assist/invite`: the visitor accepts or declines an invitation.
fn answer_invite(
    assist: &mut Assist,
    site: &str,
    id: u128,
    input: &Input,
    now: u64,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Response> {
    let Some(rep) = assist.site(site).invites.remove(&id) else {
        return Err(fail(409, "no invitation"));
    };
    let accept = input.flag("accept", false);
    assist.log(
        site,
        Some(id),
        &rep,
        "invite_answer",
        json!({"accept": accept}),
    );
    if accept {
        let effects = match assist.site(site).routing.join(id, &rep, now) {
            Ok(effects) => effects,
            Err(_) => {
                let skills = assist.visitors[&id].skills();
                assist
                    .site(site)
                    .routing
                    .ask(id, skills, now)
                    .map_err(|_| fail(503, "the queue is full").header("Retry-After", "10"))?
            }
        };
        assist.apply(site, effects, cx);
    }
    assist.visitor_changed(site, id, cx);
    let (state, rep, position) = state_of(id, &assist.sites[site]);
    let rep = if state == "chatting" { rep } else { None };
    Ok(Reply::Respond(answer(
        200,
        json!({"state": state, "rep": rep, "position": position}),
    )))
}

/// The page a visitor is on, checked and cut to its bounds.
fn page_of(input: &Input) -> Result<Value, Response> {
    let url = input.required("url")?;
    check_url("url", &url)?;
    let title = cut(&input.text("title").unwrap_or_default(), input::MAX_TITLE);
    let referrer = cut(&input.text("referrer").unwrap_or_default(), input::MAX_URL);
    let mut cookies = Map::new();
    if let Some(Value::Object(given)) = input.value("cookies") {
        for (name, value) in given.iter().take(input::MAX_COOKIES) {
            let value = match value {
                Value::String(s) => cut(s, input::MAX_COOKIE_VALUE),
                other => cut(&other.to_string(), input::MAX_COOKIE_VALUE),
            };
            cookies.insert(cut(name, 64), Value::String(value));
        }
    }
    let skills = input::skills(input.list("skills"));
    Ok(
        json!({"url": url, "title": title, "referrer": referrer, "cookies": cookies, "skills": skills}),
    )
}

/// `POST /assist/open`.
fn open(
    router: &mut ServerRouter,
    req: &Request,
    input: &Input,
    origin: &str,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Response> {
    let site = input.required("site")?;
    if !router.presence.has_group(&site) {
        return Err(fail(404, "no such site"));
    }
    let client = input.required("client")?;
    let key = input.required("key")?;
    if client.len() > 255 || !router.hub.secret().mailbox_key_matches(&client, &key) {
        return Err(fail(401, "hub client key does not match"));
    }
    let page = page_of(input)?;
    let assist = &mut router.assist;
    let id = match input.text("visitor") {
        Some(text) => {
            let id = parse_visitor(&text).ok_or_else(|| fail(401, "bad visitor id"))?;
            let secret = input.text("secret").unwrap_or_default();
            if !secret_ok(&assist.secret, id, &secret) {
                return Err(fail(401, "wrong visitor secret"));
            }
            id
        }
        None => new_visitor_id().map_err(|e| fail(500, format!("no randomness: {e}")))?,
    };
    let now = assist.mono(cx.now());
    if assist.visitors.get(&id).is_some_and(|v| *v.site != *site) {
        assist.remove_visitor(id, cx);
    }
    if let Some(v) = assist.visitors.get_mut(&id) {
        v.touch(now);
        let rate = assist.cfg.visitor_rate;
        v.bucket
            .take(rate, now)
            .map_err(|_| fail(429, "too many requests").header("Retry-After", "1"))?;
        v.set_page(&client, &page);
        v.pages += 1;
        assist.log(
            &site,
            Some(id),
            "",
            "page",
            json!({"url": page["url"], "title": page["title"]}),
        );
        assist.visitor_listed(&site, id, cx);
        return Ok(Reply::Respond(answer(200, opened(assist, id))));
    }
    arrive(assist, &site, id, client, page, now, req, origin, cx)
}

/// A visitor not in the registry arrives: it is listed at once, and the
/// answer waits for its visit to be looked up.
#[allow(clippy::too_many_arguments)]
fn arrive(
    assist: &mut Assist,
    site: &str,
    id: u128,
    client: String,
    page: Value,
    now: u64,
    req: &Request,
    origin: &str,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Response> {
    if let Some(peer) = req.peer {
        let rate = assist.cfg.arrivals_per_addr;
        let bucket = assist
            .arrivals
            .entry(address_key(peer.ip()))
            .or_insert_with(|| Bucket::full(rate, now));
        bucket.take(rate, now).map_err(|wait| {
            let secs = wait.div_ceil(1000).max(1);
            fail(429, "too many new visitors from this address")
                .header("Retry-After", secs.to_string())
        })?;
    }
    let max = assist.cfg.max_visitors;
    let s = assist.site(site);
    if s.visitors >= max {
        return Err(fail(503, "too many visitors on this site").header("Retry-After", "30"));
    }
    s.visitors += 1;
    let key = s.name.clone();
    let started = wall_ms();
    let rate = assist.cfg.visitor_rate;
    let visitor = Visitor::new(key, &client, &page, started, now, rate);
    assist.visitors.insert(id, visitor);
    assist.log(site, Some(id), "", "open", page.clone());
    assist.visitor_listed(site, id, cx);
    let (conn, handle, origin) = (req.conn, cx.handle(), origin.to_string());
    let (text, site_name) = (visitor_text(id), site.to_string());
    let queued = assist.db.write(
        move |c| store::begin_visit(c, &text, &site_name, started),
        move |info| {
            handle.send(Job::new(move |router, cx| {
                let assist = &mut router.assist;
                if let (Ok(info), Some(v)) = (info, assist.visitors.get_mut(&id)) {
                    v.visit = info.number as u32;
                    v.started = info.started;
                    v.pages += info.pages as u32;
                    let site = v.site.clone();
                    if !info.earlier.is_empty() {
                        let earlier = info.earlier.into_boxed_slice();
                        assist.site(&site).earlier.insert(id, earlier);
                    }
                    assist.visitor_listed(&site, id, cx);
                }
                let body = opened(assist, id);
                let _ = cx.respond(conn, cors(answer(200, body), &origin));
                super::flush(router, cx);
            }));
        },
    );
    match queued {
        Ok(()) => Ok(Reply::Defer),
        Err(_) => Ok(Reply::Respond(answer(200, opened(assist, id)))),
    }
}

/// The answer to `open`: the visitor's credentials and where it stands.
fn opened(assist: &Assist, id: u128) -> Value {
    let Some(v) = assist.visitors.get(&id) else {
        return json!({"error": "visitor left"});
    };
    let site = &assist.sites[&*v.site];
    let (state, rep, position) = state_of(id, site);
    let rep = if state == "waiting" { None } else { rep };
    json!({
        "visitor": visitor_text(id), "secret": secret_of(&assist.secret, id), "site": &*v.site,
        "visit": v.visit, "state": state, "position": position, "rep": rep,
        "card": site.cards.get(&id).cloned().unwrap_or(Value::Null),
        "transcript": site.transcripts.get(&id).map(|t| t.iter().cloned().collect::<Vec<_>>()),
    })
}

/// The address new visitors count under: IPv4, or an IPv6 /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// A new visitor id: 128 random bits from the OS.
fn new_visitor_id() -> Result<u128, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    Ok(u128::from_le_bytes(bytes))
}

/// Lets go of visitors whose hub connection has been gone, and who have
/// sent nothing, for `--assist-visitor-linger`.
pub fn sweep(router: &mut ServerRouter, now: u64, cx: &mut Cx<'_, Job>) {
    let ServerRouter { assist, hub, .. } = router;
    let linger = assist.cfg.visitor_linger.as_millis() as u64;
    let mut gone = Vec::new();
    for (id, v) in assist.visitors.iter_mut() {
        if v.has_left(hub.mailbox_followed(v.client()), now, linger) {
            gone.push(*id);
        }
    }
    // An address's bucket refills in three seconds; idle longer, it is full.
    assist.arrivals.retain(|_, b| b.idle_ms(now) < 3_000);
    for id in gone {
        assist.remove_visitor(id, cx);
    }
}
