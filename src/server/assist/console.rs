//! The representatives' side: who may (a session of a member of the site's
//! group, and for `POST` an `Origin` naming this server), the console page,
//! the console's one held stream (SSE or long-poll, resumable by id, a
//! snapshot first), canned texts, and the commands of
//! `POST /assist/console/COMMAND`.

use std::sync::Arc;

use rusqlite::Connection;
use serde_json::{json, Value};

use super::commands::{Push, Side};
use super::input::{self, answer, check_card, check_url, fail, parse_visitor, visitor_text, Input};
use super::store::{self, Canned};
use super::{pages, Assist, Console};
use crate::server::hub::Groups;
use crate::server::presence::{caller, origin};
use crate::server::{Job, ServerRouter};
use crate::{Cx, Framing, Reply, Request, Response};

/// The user of the request's session cookie (the console is a browser's;
/// an `id` field here names a canned text, not a session): `401` without
/// one, `403` for a guest. The session's idle clock restarts.
pub fn session_user(
    router: &mut ServerRouter,
    req: &Request,
    _input: &Input,
) -> Result<String, Response> {
    let sessions = &mut router.shared.sessions;
    match caller::page_viewer(req, sessions) {
        Some(c) if !c.guest => {
            sessions.touch(&c.sid);
            Ok(c.user)
        }
        Some(_) => Err(fail(403, "guests are not representatives")),
        None => Err(fail(401, "log in first")),
    }
}

/// `404` for no such site, `403` for a user who is not its member.
pub fn check_member(router: &ServerRouter, site: &str, user: &str) -> Result<(), Response> {
    if !router.presence.has_group(site) {
        return Err(fail(404, "no such site"));
    }
    if !router.presence.is_member(site, user) {
        return Err(fail(403, "not a representative of this site"));
    }
    Ok(())
}

/// The session user and the site, checked.
fn representative(
    router: &mut ServerRouter,
    req: &Request,
    input: &Input,
) -> Result<(String, String), Response> {
    let me = session_user(router, req, input)?;
    let site = input.required("site")?;
    check_member(router, &site, &me)?;
    Ok((me, site))
}

/// `GET /assist/console?site=S`: the page for members; others are sent to
/// log in (`303`) or refused (`403`).
pub fn page(router: &mut ServerRouter, req: &Request) -> Reply {
    let input = Input::of(req).unwrap_or_default();
    match representative(router, req, &input) {
        Ok(_) => pages::console(),
        Err(r) if r.status == 401 => Reply::Respond(
            Response::new(303)
                .header("Location", "/")
                .header("Cache-Control", "no-store"),
        ),
        Err(r) => Reply::Respond(r),
    }
}

/// `GET /assist/stream?site=S`: the console's held stream.
pub fn stream(router: &mut ServerRouter, req: &Request, cx: &mut Cx<'_, Job>) -> Reply {
    open_stream(router, req, cx).unwrap_or_else(Reply::Respond)
}

fn open_stream(
    router: &mut ServerRouter,
    req: &Request,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Response> {
    let input = Input::of(req)?;
    let (me, site) = representative(router, req, &input)?;
    let transport = input.text("transport").or_else(|| input.text("framing"));
    let sse = match transport.as_deref() {
        Some("sse") => true,
        Some("longpoll") => false,
        Some(other) => return Err(fail(400, format!("unknown transport: {other}"))),
        None => req
            .header("accept")
            .is_some_and(|a| a.contains("text/event-stream")),
    };
    let framing = if sse { Framing::Sse } else { Framing::LongPoll };
    let since = req
        .header("last-event-id")
        .map(str::to_string)
        .or_else(|| input.text("since"))
        .and_then(|s| s.trim().parse::<u64>().ok());
    let assist = &mut router.assist;
    let now = assist.mono(cx.now());
    // Resume when the buffer still holds everything after `since`; else
    // start with a snapshot of how things stand before this stream counts.
    let before = assist.site(&site).last_id();
    let resume = since.filter(|id| assist.site(&site).replay(*id).is_some());
    let mut first = Vec::new();
    if resume.is_none() {
        let mut snap = snapshot(assist, &site, &me);
        snap["id"] = json!(before);
        first.push((before, Arc::from(snap.to_string())));
    }
    let s = assist.site(&site);
    if s.stream_opened(&me) {
        let skills = s.skills.get(&me).cloned().unwrap_or_default();
        let effects = s.routing.rep_present(&me, skills, now);
        assist.apply(&site, effects, cx);
    }
    let s = assist.site(&site);
    first.extend(s.replay(resume.unwrap_or(before)).unwrap_or_default());
    let key: Arc<str> = s.name.clone();
    assist.consoles.insert(
        req.conn,
        Console {
            site: key,
            rep: me.clone(),
        },
    );
    let timeout = assist.cfg.longpoll_timeout;
    let hold = assist
        .site(&site)
        .hold_stream(req.conn, framing, first, timeout);
    Ok(Reply::Hold(hold))
}

/// Everything a console shows, at once.
fn snapshot(assist: &mut Assist, site: &str, me: &str) -> Value {
    let wall = assist.epoch_wall;
    let s = assist.site(site);
    let queue: Vec<String> = s.routing.queue().iter().map(|v| visitor_text(*v)).collect();
    let mut reps: Vec<&String> = s.routing.reps().keys().collect();
    reps.sort();
    let reps: Vec<Value> = reps.iter().map(|r| s.rep_json(r, wall)).collect();
    let canned = s.canned_json();
    let allow = s.allow.clone();
    let s = &assist.sites[site];
    let visitors: Vec<Value> = assist
        .visitors
        .iter()
        .filter(|(_, v)| &*v.site == site)
        .map(|(id, v)| v.json(*id, s))
        .collect();
    json!({"type": "snapshot", "me": me, "site": site, "reps": reps, "visitors": visitors,
           "queue": queue, "canned": canned, "allow": allow})
}

/// `GET /assist/canned?site=S`.
pub fn list_canned(router: &mut ServerRouter, req: &Request) -> Reply {
    let mut run = || -> Result<Response, Response> {
        let input = Input::of(req)?;
        let (_, site) = representative(router, req, &input)?;
        Ok(answer(
            200,
            json!({"canned": router.assist.site(&site).canned_json()}),
        ))
    };
    Reply::Respond(run().unwrap_or_else(|r| r))
}

/// `POST /assist/console/COMMAND` and `POST /assist/canned/ACTION`.
pub fn command(router: &mut ServerRouter, req: &Request, cx: &mut Cx<'_, Job>) -> Reply {
    run_command(router, req, cx).unwrap_or_else(Reply::Respond)
}

fn run_command(
    router: &mut ServerRouter,
    req: &Request,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Response> {
    if req.method != "POST" {
        return Err(fail(405, "use POST").header("Allow", "POST"));
    }
    if !origin::origin_ok(req) {
        return Err(fail(403, "cross-origin request refused"));
    }
    let input = Input::of(req)?;
    let (me, site) = representative(router, req, &input)?;
    let path = req.path().to_string();
    let assist = &mut router.assist;
    assist.site(&site);
    let now = assist.mono(cx.now());
    let ok = |v: Value| Ok(Reply::Respond(answer(200, v)));
    match path.as_str() {
        "/assist/canned/create" | "/assist/canned/update" | "/assist/canned/delete" => {
            canned(assist, &path, &site, &input, req, cx)
        }
        "/assist/console/away" => {
            let away = input.flag("away", true);
            let effects = assist.site(&site).routing.set_away(&me, away, now);
            assist.apply(&site, effects, cx);
            ok(json!({"away": away}))
        }
        "/assist/console/skills" => {
            let skills = input::skills(input.list("skills"));
            assist.site(&site).skills.insert(me.clone(), skills.clone());
            let effects = assist
                .site(&site)
                .routing
                .set_skills(&me, skills.clone(), now);
            assist.apply(&site, effects, cx);
            let (s, m, list) = (site.clone(), me.clone(), skills.clone());
            commit(
                assist,
                req,
                cx,
                move |c| store::set_skills(c, &s, &m, &list),
                json!({"skills": skills}),
            )
        }
        "/assist/console/allow" => {
            let mut origins = Vec::new();
            for o in input.list("allow") {
                origins.push(
                    input::origin_of(&o)
                        .ok_or_else(|| fail(400, format!("not an http(s) origin: {o}")))?,
                );
            }
            if origins.len() > 32 {
                return Err(fail(413, "at most 32 origins"));
            }
            assist.site(&site).allow = origins.clone();
            assist.emit(&site, json!({"type": "allow", "allow": origins}), cx);
            let (s, list) = (site.clone(), origins.clone());
            commit(
                assist,
                req,
                cx,
                move |c| store::set_allow(c, &s, &list),
                json!({"allow": origins}),
            )
        }
        "/assist/console/present" => present(assist, &site, &me, &input, cx),
        "/assist/console/push_url" | "/assist/console/card" => {
            let targets = targets(assist, &site, &input)?;
            let push = if path.ends_with("card") {
                Push::Card(check_card(input.value("card").unwrap_or(&Value::Null))?)
            } else {
                let url = input.required("url")?;
                check_url("url", &url)?;
                Push::Url(url)
            };
            let (sent, refused) = assist.push(&site, &me, &targets, &push, cx);
            if targets.len() == 1 && !refused.is_empty() {
                return Err(fail(
                    403,
                    "the URL is neither the page's origin nor on the site's allowlist",
                ));
            }
            ok(json!({"sent": sent, "refused": refused}))
        }
        _ => visitor_command(assist, &path, &site, &me, &input, now, cx),
    }
}

/// The commands about one visitor.
fn visitor_command(
    assist: &mut Assist,
    path: &str,
    site: &str,
    me: &str,
    input: &Input,
    now: u64,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Response> {
    let visitor = one_visitor(assist, site, input)?;
    let ok = |v: Value| Ok(Reply::Respond(answer(200, v)));
    let refused = |e: super::routing::Refused| match e {
        super::routing::Refused::NotPresent => fail(409, "that representative is not present"),
        super::routing::Refused::QueueFull => {
            fail(503, "the queue is full").header("Retry-After", "5")
        }
        super::routing::Refused::NotYours => fail(409, "not offered to you, or not your chat"),
    };
    match path {
        "/assist/console/accept" => {
            let effects = assist
                .site(site)
                .routing
                .accept(visitor, me, now)
                .map_err(refused)?;
            assist.apply(site, effects, cx);
            ok(json!({"state": "chatting"}))
        }
        "/assist/console/decline" => {
            let effects = assist
                .site(site)
                .routing
                .decline(visitor, me, now)
                .map_err(refused)?;
            assist.apply(site, effects, cx);
            ok(json!({"ok": true}))
        }
        "/assist/console/end" => {
            match assist.site(site).routing.status(visitor) {
                Some(super::routing::Status::Chatting(rep)) if rep == me => {}
                _ => return Err(fail(409, "not your chat")),
            }
            let effects = assist.site(site).routing.end(visitor, now);
            assist.site(site).transcripts.remove(&visitor);
            assist.apply(site, effects, cx);
            assist.tell_visitor(visitor, json!({"type": "ended", "by": "rep"}));
            assist.visitor_changed(site, visitor, cx);
            assist.log(site, Some(visitor), me, "ended", json!({"by": "rep"}));
            ok(json!({"state": "browsing"}))
        }
        "/assist/console/transfer" => {
            let to = input.required("to")?;
            let effects = assist
                .site(site)
                .routing
                .transfer(visitor, me, &to, now)
                .map_err(refused)?;
            assist.log(site, Some(visitor), me, "transferred", json!({"to": to}));
            assist.apply(site, effects, cx);
            ok(json!({"to": to}))
        }
        "/assist/console/chat" => {
            let text = input.raw_text("text")?;
            let line = assist.chat(site, visitor, Side::Rep, me, &text, cx)?;
            ok(line)
        }
        "/assist/console/typing" => {
            let typing = input.flag("typing", true);
            assist.tell_visitor(
                visitor,
                json!({"type": "typing", "name": me, "typing": typing}),
            );
            let ev = json!({"type": "typing", "visitor": visitor_text(visitor), "from": "rep", "name": me, "typing": typing});
            assist.emit(site, ev, cx);
            ok(json!({"ok": true}))
        }
        "/assist/console/invite" => {
            if assist.site(site).routing.status(visitor).is_some() {
                return Err(fail(409, "the visitor already asked to talk"));
            }
            let text = input.text("text").unwrap_or_default();
            if text.len() > assist.cfg.max_chat {
                return Err(fail(413, "invitation text too long"));
            }
            assist.site(site).invites.insert(visitor, me.to_string());
            assist.tell_visitor(visitor, json!({"type": "invite", "rep": me, "text": text}));
            let ev = json!({"type": "invite", "visitor": visitor_text(visitor), "rep": me, "text": text});
            assist.emit(site, ev, cx);
            assist.visitor_changed(site, visitor, cx);
            assist.log(site, Some(visitor), me, "invite", json!({"text": text}));
            ok(json!({"state": "invited"}))
        }
        "/assist/console/pull" => {
            assist.next_id += 1;
            let id = assist.next_id;
            assist.tell_visitor(visitor, json!({"type": "pull", "id": id}));
            let ev = json!({"type": "pull", "visitor": visitor_text(visitor), "id": id, "rep": me});
            assist.emit(site, ev, cx);
            assist.log(site, Some(visitor), me, "pull", json!({"pull": id}));
            ok(json!({"id": id}))
        }
        _ => Err(fail(404, "no such command")),
    }
}

/// Presenter mode: one URL, card or line to all of a site's visitors or a set.
fn present(
    assist: &mut Assist,
    site: &str,
    me: &str,
    input: &Input,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Response> {
    let targets = targets(assist, site, input)?;
    let push = if let Some(url) = input.text("url") {
        check_url("url", &url)?;
        Push::Url(url)
    } else if let Some(card) = input.value("card") {
        Push::Card(check_card(card)?)
    } else if input.value("text").is_some() {
        let text = input.raw_text("text")?;
        if text.len() > assist.cfg.max_chat {
            return Err(fail(
                413,
                format!("chat line over {} bytes", assist.cfg.max_chat),
            ));
        }
        Push::Text(text)
    } else {
        return Err(fail(400, "missing field: url, card or text"));
    };
    let (sent, refused) = assist.push(site, me, &targets, &push, cx);
    Ok(Reply::Respond(answer(
        200,
        json!({"sent": sent, "refused": refused}),
    )))
}

/// The one visitor a command names, of this site.
fn one_visitor(assist: &Assist, site: &str, input: &Input) -> Result<u128, Response> {
    let text = input.required("visitor")?;
    let id = parse_visitor(&text).ok_or_else(|| fail(400, "bad visitor id"))?;
    match assist.visitors.get(&id) {
        Some(v) if &*v.site == site => Ok(id),
        _ => Err(fail(404, "no such visitor on this site")),
    }
}

/// The visitors a push names: `all`, a `visitors` list, or one `visitor`.
fn targets(assist: &Assist, site: &str, input: &Input) -> Result<Vec<u128>, Response> {
    if input.flag("all", false) {
        return Ok(assist
            .visitors
            .iter()
            .filter(|(_, v)| &*v.site == site)
            .map(|(id, _)| *id)
            .collect());
    }
    let list = input.list("visitors");
    if list.is_empty() {
        return Ok(vec![one_visitor(assist, site, input)?]);
    }
    let mut out = Vec::new();
    for text in list {
        let id =
            parse_visitor(&text).ok_or_else(|| fail(400, format!("bad visitor id: {text}")))?;
        if assist.visitors.get(&id).is_some_and(|v| &*v.site == site) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Canned texts: create, update, delete; each answered once committed.
fn canned(
    assist: &mut Assist,
    path: &str,
    site: &str,
    input: &Input,
    req: &Request,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Response> {
    let max_chat = assist.cfg.max_chat;
    let fields = || -> Result<(String, String), Response> {
        let title = input.required("title")?;
        let text = input.raw_text("text")?;
        if title.len() > input::MAX_CARD_TITLE || text.len() > max_chat {
            return Err(fail(413, "canned title or text too long"));
        }
        Ok((title, text))
    };
    let id_of = || -> Result<i64, Response> {
        // `canned` names the text too: a browser cannot send `id`, which
        // the session lookup takes for a session id (then `401`).
        let id: i64 = input
            .text("canned")
            .map_or_else(|| input.required("id"), Ok)?
            .parse()
            .map_err(|_| fail(400, "bad id"))?;
        if !assist.sites[site].canned.iter().any(|c| c.id == id) {
            return Err(fail(404, "no such canned text"));
        }
        Ok(id)
    };
    let s = site.to_string();
    match path {
        "/assist/canned/create" => {
            if assist.site(site).canned.len() >= assist.cfg.max_canned {
                return Err(fail(
                    409,
                    format!("at most {} canned texts per site", assist.cfg.max_canned),
                ));
            }
            let (title, text) = fields()?;
            let (conn, handle) = (req.conn, cx.handle());
            let queued = assist.db.write(
                move |c| store::insert_canned(c, &s, &title, &text).map(|id| (id, s, title, text)),
                move |r| {
                    handle.send(Job::new(move |router, cx| {
                        let response = match r {
                            Ok((id, site, title, text)) => {
                                router
                                    .assist
                                    .site(&site)
                                    .canned
                                    .push(Canned { id, title, text });
                                canned_changed(&mut router.assist, &site, cx);
                                answer(201, json!({"id": id}))
                            }
                            Err(e) => fail(500, format!("not stored: {e}")),
                        };
                        let _ = cx.respond(conn, response);
                    }));
                },
            );
            queued.map(|_| Reply::Defer).map_err(|_| busy())
        }
        "/assist/canned/update" => {
            let id = id_of()?;
            let (title, text) = fields()?;
            if let Some(c) = assist.site(site).canned.iter_mut().find(|c| c.id == id) {
                (c.title, c.text) = (title.clone(), text.clone());
            }
            canned_changed(assist, site, cx);
            commit(
                assist,
                req,
                cx,
                move |c| store::update_canned(c, &s, id, &title, &text),
                json!({"id": id}),
            )
        }
        _ => {
            let id = id_of()?;
            assist.site(site).canned.retain(|c| c.id != id);
            canned_changed(assist, site, cx);
            commit(
                assist,
                req,
                cx,
                move |c| store::delete_canned(c, &s, id),
                json!({"id": id}),
            )
        }
    }
}

fn canned_changed(assist: &mut Assist, site: &str, cx: &mut Cx<'_, Job>) {
    let list = assist.site(site).canned_json();
    assist.emit(site, json!({"type": "canned", "canned": list}), cx);
}

fn busy() -> Response {
    fail(503, "database busy").header("Retry-After", "1")
}

/// Writes through the database thread and answers `200 ok` once committed.
fn commit(
    assist: &Assist,
    req: &Request,
    cx: &mut Cx<'_, Job>,
    apply: impl FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    ok: Value,
) -> Result<Reply, Response> {
    let (conn, handle) = (req.conn, cx.handle());
    let queued = assist.db.write(apply, move |r| {
        handle.send(Job::new(move |_router, cx| {
            let response = match r {
                Ok(()) => answer(200, ok),
                Err(e) => fail(500, format!("not stored: {e}")),
            };
            let _ = cx.respond(conn, response);
        }));
    });
    queued.map(|_| Reply::Defer).map_err(|_| busy())
}
