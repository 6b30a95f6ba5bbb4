//! The HTML pages: the home page at `/` (register, log in), `/home` (the
//! active group with live presence and chat boxes), `/call/NAME` (the
//! communications page of a user or group, for anyone), the static URLs
//! `/NAME` (`301` to `/call/NAME`) and the `404` page, plus the script and
//! style they load. Every user-supplied string is HTML-escaped here; the
//! script renders live data with `textContent` only. Pages know their viewer
//! by the session cookie alone and never carry the session id.

use serde_json::{json, Value};

use super::accounts::{login_required, throttled};
use super::answers::error;
use super::caller::{page_viewer, Caller};
use super::directory::{Named, CONTACTS};
use super::groups::PAGE_SIZE;
use super::hashing::Argon;
use super::html::{esc, script_json};
use super::params::Params;
use super::throttle::Subject;
use super::{finish, Presence};
use crate::http::encode_path_segment as encode_segment;
use crate::server::sessions::set_session_cookie;
use crate::server::{Job, ServerRouter, ServerState};
use crate::{Cx, Reply, Request, Response};

const SCRIPT: &str = include_str!("assets/presence.js");
const STYLE: &str = include_str!("assets/altsock.css");
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// `GET /static/FILE`: the pages' script and style.
pub fn asset(file: &str) -> Reply {
    let (kind, body) = match file {
        "presence.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "altsock.css" => ("text/css; charset=utf-8", STYLE),
        _ => return Reply::Respond(error(404, "not found")),
    };
    Reply::Respond(
        Response::new(200)
            .header("Content-Type", kind)
            .header("Cache-Control", "no-cache")
            .body(body),
    )
}

/// A complete page: `body` is already escaped HTML; `boot` goes to the script.
fn page(status: u16, title: &str, body: &str, boot: &Value) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><link rel=\"stylesheet\" href=\"/static/altsock.css\"></head>\n<body>\n{body}\n\
<div id=\"chats\"></div>\n<script type=\"application/json\" id=\"altsock-boot\">{boot}</script>\n\
<script src=\"/altsock.js\"></script>\n<script src=\"/static/presence.js\"></script>\n</body></html>\n",
        title = esc(title),
        boot = script_json(boot),
    );
    Response::html(status, html)
        .header("Content-Security-Policy", CSP)
        .header("Cache-Control", "no-store")
        .header("X-Content-Type-Options", "nosniff")
}

/// The `404` page for an unknown static URL.
fn not_found(name: &str) -> Response {
    let body = format!(
        "<main><h1>Not found</h1><p>No user or group is called <b>{}</b>.</p><p><a href=\"/\">Home</a></p></main>",
        esc(name)
    );
    page(404, "Not found", &body, &json!({ "page": "notfound" }))
}

/// One row of a member list: name, presence, chat, message and call links.
fn member_row(m: &Value) -> String {
    let name = m["name"].as_str().unwrap_or_default();
    let online = m["online"].as_bool().unwrap_or(false);
    let call = m["phone"]
        .as_str()
        .map(|ph| format!("<a class=\"call\" href=\"tel:{0}\">call {0}</a>", esc(ph)))
        .unwrap_or_default();
    format!(
        "<tr data-user=\"{n}\" class=\"{state}\"><td class=\"name\"><a href=\"/call/{u}\">{n}</a></td>\
<td class=\"status\">{state}</td><td><button class=\"chat\" data-user=\"{n}\"{dis}>Chat</button></td>\
<td><button class=\"leave\" data-user=\"{n}\">Leave a message</button></td><td>{call}</td></tr>",
        n = esc(name),
        u = esc(&encode_segment(name)),
        state = if online { "online" } else { "offline" },
        dis = if online { "" } else { " disabled" },
    )
}

/// A member table.
fn member_table(members: &[Value]) -> String {
    let rows: String = members.iter().map(member_row).collect();
    format!("<table id=\"members\"><tbody>{rows}</tbody></table>")
}

/// The counts, search box and pager over one page of a member list (a
/// [`Presence::member_page`] answer), then the table of that page.
fn roster(list: &Value) -> String {
    let num = |k: &str| list[k].as_u64().unwrap_or(0);
    let members = list["members"].as_array().cloned().unwrap_or_default();
    format!(
        "<div id=\"roster\"><p class=\"counts\"><span id=\"online-count\">{online}</span> online of \
<span id=\"member-count\">{total}</span> members</p>\
<p class=\"pager\"><input id=\"search\" type=\"search\" placeholder=\"search members\" autocomplete=\"off\"> \
<button id=\"prev\" disabled>Previous</button> <span id=\"page-info\">page {page} of {pages}</span> \
<button id=\"next\"{next}>Next</button></p></div>{table}",
        online = num("online"),
        total = num("total"),
        page = num("page"),
        pages = num("pages"),
        next = if num("page") < num("pages") { "" } else { " disabled" },
        table = member_table(&members),
    )
}

const INDEX_FORMS: &str = "<section><h2>Register</h2><form id=\"register\">\
<input name=\"username\" placeholder=\"user name\" required>\
<input name=\"password\" type=\"password\" placeholder=\"password (8+)\" required>\
<input name=\"email\" placeholder=\"email (optional)\"><input name=\"phone\" placeholder=\"phone (optional)\">\
<button>Register</button></form></section>\
<section><h2>Log in</h2><form id=\"login\"><input name=\"username\" placeholder=\"user name\" required>\
<input name=\"password\" type=\"password\" placeholder=\"password\" required>\
<button>Log in</button></form></section><p id=\"status\" role=\"status\"></p>";

impl Presence {
    /// `GET /`: register and log in.
    pub(super) fn index_page(&mut self, req: &Request, shared: &ServerState) -> Reply {
        let who = match page_viewer(req, &shared.sessions).filter(|c| !c.guest) {
            Some(c) => format!(
                "<p>Logged in as <b>{}</b>: <a href=\"/home\">your page</a></p>",
                esc(&c.user)
            ),
            None => String::new(),
        };
        let body = format!("<main><h1>altsock</h1><p>Presence and chat over plain HTTP.</p>{who}{INDEX_FORMS}</main>");
        Reply::Respond(page(200, "altsock", &body, &json!({ "page": "index" })))
    }

    /// `GET /home`: my active group with live presence.
    pub(super) fn home_page(&mut self, req: &Request, shared: &ServerState) -> Reply {
        let Some(me) = page_viewer(req, &shared.sessions).filter(|c| !c.guest) else {
            return Reply::Respond(login_required());
        };
        let active = self.dir.active_of(&me.user);
        let options: String = std::iter::once(CONTACTS.to_string())
            .chain(self.dir.groups_of(&me.user))
            .map(|g| {
                let sel = if g == active { " selected" } else { "" };
                format!("<option value=\"{0}\"{sel}>{0}</option>", esc(&g))
            })
            .collect();
        let list = self.member_page(&me.user, &active, 1, PAGE_SIZE, None);
        let body = format!(
            "<main><header><h1>Hello, <span id=\"me\">{me}</span></h1>\
<p>Your static URL: <a href=\"/{u}\">/{me}</a> <button id=\"logout\">Log out</button></p></header>\
<p>Showing <select id=\"active\">{options}</select> <span id=\"pipe\">connecting</span></p>\
{table}{forms}<section><h2>Messages</h2><button id=\"load-messages\">Show stored messages</button>\
<ul id=\"messages\"></ul></section></main>",
            me = esc(&me.user),
            u = esc(&encode_segment(&me.user)),
            table = roster(&list),
            forms = HOME_FORMS,
        );
        let boot = json!({
            "page": "home", "me": me.user, "active": active,
            "per": PAGE_SIZE, "pages": list["pages"],
        });
        Reply::Respond(page(200, "altsock: home", &body, &boot))
    }

    /// `GET /NAME`: `301` to `/call/NAME` (names, emails and phones), else `404`.
    pub(super) fn static_url(&self, name: &str) -> Reply {
        let target = match self.dir.resolve(name) {
            Some(Named::User(n) | Named::Group(n)) => n,
            None => return Reply::Respond(not_found(name)),
        };
        let location = format!("/call/{}", encode_segment(&target));
        Reply::Respond(
            Response::html(301, format!("<a href=\"{0}\">{0}</a>\n", esc(&location)))
                .header("Location", location),
        )
    }

    /// `/call/NAME`: the communications page of a user or group, for anyone;
    /// a requestor without a session gets a guest session.
    pub(super) fn call_page(
        &mut self,
        req: &Request,
        p: &Params,
        shared: &mut ServerState,
        cx: &mut Cx<'_, Job>,
        name: &str,
    ) -> Reply {
        let Some(named) = self.dir.resolve(name) else {
            return Reply::Respond(not_found(name));
        };
        let (viewer, fresh) = match page_viewer(req, &shared.sessions) {
            Some(c) => (c, false),
            None => match self.new_guest(shared, cx) {
                Some(c) => (c, true),
                None => return Reply::Respond(error(500, "no randomness")),
            },
        };
        let max_age = shared.sessions.limits().absolute;
        let secure = cx.is_tls(req.conn);
        let cookie = fresh.then(|| set_session_cookie(&viewer.sid, max_age, secure));
        let group_hash = match &named {
            Named::Group(g) => self.dir.groups.get(g).and_then(|r| r.hash.clone()),
            Named::User(_) => None,
        };
        let unlocked = self
            .unlocked
            .get(&viewer.sid)
            .is_some_and(|groups| groups.contains(name));
        let reply = match (group_hash.filter(|_| !unlocked), p.get("password")) {
            (None, _) => Reply::Respond(self.call_body(&named, &viewer)),
            (Some(_), None) => Reply::Respond(password_page(name)),
            (Some(hash), Some(password)) => {
                let check = PasswordCheck {
                    password: password.to_string(),
                    hash,
                    cookie: cookie.clone(),
                };
                self.check_group_password(req, cx, named, viewer, check)
            }
        };
        match reply {
            Reply::Respond(r) => Reply::Respond(with_cookie(r, &cookie)),
            other => other,
        }
    }

    /// Checks a protected group's password on a hashing thread (throttled
    /// like logins) and answers with the group page or `403` later.
    fn check_group_password(
        &mut self,
        req: &Request,
        cx: &mut Cx<'_, Job>,
        named: Named,
        viewer: Caller,
        check: PasswordCheck,
    ) -> Reply {
        if check.password.len() > super::params::MAX_PASSWORD {
            let body = "<main><h1>Bad request</h1><p>That password is too long.</p></main>";
            return Reply::Respond(page(400, "Bad request", body, &json!({ "page": "error" })));
        }
        let Named::Group(group) = named.clone() else {
            return Reply::Respond(self.call_body(&named, &viewer));
        };
        let ip = req.peer.map(|a| a.ip());
        if let Err(wait) = self.throttle.attempt(Subject::Group(&group), ip, cx.now()) {
            return Reply::Respond(throttled(wait));
        }
        let (handle, id, refund) = (cx.handle(), req.id(), group.clone());
        let work = Box::new(move |argon: &mut Argon| {
            let ok = argon.verify(&check.password, &check.hash);
            handle.send(Job::new(move |r: &mut ServerRouter, cx| {
                if ok {
                    r.presence.throttle.refund(Subject::Group(&group), ip);
                }
                let response = r.presence.unlocked_page(ok, &named, &viewer);
                finish(cx, id, with_cookie(response, &check.cookie));
            }));
        });
        self.hash_refunding(cx, id.conn, work, |n| Subject::Group(n), refund, ip)
    }

    /// The group page after a password check, or `403`.
    fn unlocked_page(&mut self, ok: bool, named: &Named, viewer: &Caller) -> Response {
        let Named::Group(g) = named else {
            return self.call_body(named, viewer);
        };
        if !ok {
            let body = format!(
                "<main><h1>Forbidden</h1><p>Wrong password for <b>{}</b>.</p></main>",
                esc(g)
            );
            return page(403, "Forbidden", &body, &json!({ "page": "forbidden" }));
        }
        self.unlocked
            .entry(viewer.sid.clone())
            .or_default()
            .insert(g.clone());
        self.call_body(named, viewer)
    }

    /// The communications page proper.
    fn call_body(&self, named: &Named, viewer: &Caller) -> Response {
        let (name, table, what, pages) = match named {
            Named::User(u) => (u, member_table(&[self.member_json(u)]), "user", 1),
            Named::Group(g) => {
                let list = self.member_page("", g, 1, PAGE_SIZE, None);
                let pages = list["pages"].as_u64().unwrap_or(1);
                (g, roster(&list), "group", pages)
            }
        };
        let body = format!(
            "<main><h1>{what} <span id=\"target\">{n}</span></h1>\
<p>You are <b>{viewer}</b>{guest}. <span id=\"pipe\">connecting</span></p>{table}</main>",
            n = esc(name),
            viewer = esc(&viewer.user),
            guest = if viewer.guest { " (guest)" } else { "" },
        );
        let group = matches!(named, Named::Group(_)).then_some(name);
        let boot = json!({
            "page": "call", "me": viewer.user, "watch": name,
            "group": group, "per": PAGE_SIZE, "pages": pages,
        });
        page(200, &format!("altsock: {name}"), &body, &boot)
    }
}

const HOME_FORMS: &str = "<section><h2>Address book and groups</h2>\
<form id=\"add-contact\"><input name=\"name\" placeholder=\"user name\" required><button>Add contact</button></form>\
<form id=\"create-group\"><input name=\"name\" placeholder=\"new group\" required>\
<input name=\"password\" type=\"password\" placeholder=\"password (optional)\"><button>Create group</button></form>\
<form id=\"join-group\"><input name=\"name\" placeholder=\"group\" required>\
<input name=\"password\" type=\"password\" placeholder=\"password (if any)\"><button>Join group</button></form>\
<form id=\"leave-group\"><input name=\"name\" placeholder=\"group\" required><button>Leave group</button></form>\
<form id=\"remove-contact\"><input name=\"name\" placeholder=\"user name\" required><button>Remove contact</button></form>\
<p id=\"status\" role=\"status\"></p></section>";

/// A group password to check, and the cookie a fresh guest gets.
struct PasswordCheck {
    password: String,
    hash: String,
    cookie: Option<String>,
}

/// `response` with the `Set-Cookie` of a fresh guest session, if any.
fn with_cookie(response: Response, cookie: &Option<String>) -> Response {
    match cookie {
        Some(c) => response.header("Set-Cookie", c.clone()),
        None => response,
    }
}

/// The page asking for a group's password.
fn password_page(name: &str) -> Response {
    let body = format!(
        "<main><h1>group {n}</h1><p>This group's page needs its password.</p>\
<form method=\"post\" action=\"/call/{u}\"><input name=\"password\" type=\"password\" required>\
<button>Open</button></form></main>",
        n = esc(name),
        u = esc(&encode_segment(name)),
    );
    page(200, "Password", &body, &json!({ "page": "password" }))
}
