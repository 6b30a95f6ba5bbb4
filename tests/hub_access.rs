//! The hub against hostile clients (issue 7, findings 7 to 10), over real
//! sockets with the whole `altsock serve` router: the example stream is not
//! mounted; private channels follow ownership (the user's own, a group's
//! members) or a signed subscription token, and a guest of `/call/NAME`
//! reads none; a mailbox is read only with its client's key; strangers
//! cannot fill the topic table, and publishers are never refused an
//! existing channel.
//!
//! Everything here is configured through settings that existed before the
//! fixes, so each test also runs (and fails) against the code before them.

mod presence_support;
mod util;

use std::net::SocketAddr;
use std::time::Duration;

use altsock::Engine;
use presence_support::{act, register, user};
use serde_json::{json, Value};
use util::{request, spawn_server, Client, Resp, TestServer};

const TOKEN: &str = "T0ken";

type Server = TestServer<altsock::server::Job>;

fn server(configure: impl FnOnce(&mut altsock::server::ServerConfig)) -> Server {
    let builder = Engine::builder().poll_interval(Duration::from_millis(10));
    spawn_server(builder, |c| {
        c.publish_token = Some(TOKEN.into());
        c.hub.longpoll_timeout = Duration::from_millis(50);
        configure(c);
    })
}

/// `METHOD target` with extra header lines and a body, on a new connection.
fn send(addr: SocketAddr, method: &str, target: &str, headers: &str, body: &str) -> Resp {
    let raw = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request(addr, &raw)
}

fn bearer() -> String {
    format!("Authorization: Bearer {TOKEN}\r\n")
}

fn cookie(sid: &str) -> String {
    format!("Cookie: altsock_session={sid}\r\n")
}

fn json_of(r: &Resp) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

/// The status of `GET target` with extra header lines; a held stream is
/// closed after its head.
fn status(addr: SocketAddr, target: &str, headers: &str) -> u16 {
    let mut c = Client::connect(addr);
    c.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").as_bytes());
    let head = c.read_through("\r\n\r\n");
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status")
}

/// A subscription token from `POST /hub/auth` with the publisher token.
fn token_for(s: &Server, claims: Value) -> String {
    let r = send(s.addr, "POST", "/hub/auth", &bearer(), &claims.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    json_of(&r)["token"].as_str().expect("token").to_string()
}

/// `client=ID&key=KEY` for a hub client, issued as to a browser (no token).
fn new_client(s: &Server) -> (String, String) {
    let r = send(s.addr, "POST", "/hub/client", "", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json_of(&r);
    let id = v["client"].as_str().expect("client").to_string();
    let key = v["key"].as_str().expect("key").to_string();
    (id.clone(), format!("client={id}&key={key}"))
}

#[test]
fn the_example_stream_is_not_mounted() {
    let s = server(|_| {});
    let forged = send(s.addr, "POST", "/pub", "", "forged");
    assert_eq!(forged.status, 404, "{}", forged.text());
    assert_eq!(status(s.addr, "/sub", ""), 404);
}

#[test]
fn a_guest_of_a_call_page_reads_no_private_channel() {
    let s = server(|_| {});
    register(s.addr, "alice");
    let page = send(s.addr, "GET", "/call/alice", "", "");
    assert_eq!(page.status, 200);
    let set = page.header("set-cookie").expect("a guest session");
    let sid = set
        .trim_start_matches("altsock_session=")
        .split(';')
        .next()
        .expect("sid");
    let guest = cookie(sid);
    assert_eq!(status(s.addr, "/sub/private-x", &guest), 403);
    let own = format!("/sub/private-user-{}", "alice");
    assert_eq!(status(s.addr, &own, &guest), 403);
    let (_, c) = new_client(&s);
    let poll = format!("/poll?{c}&channels=private-x");
    assert_eq!(status(s.addr, &poll, &guest), 403);
    let minted = send(
        s.addr,
        "POST",
        "/hub/auth",
        &guest,
        r#"{"channel":"private-x"}"#,
    );
    assert_eq!(minted.status, 403, "{}", minted.text());
}

#[test]
fn owners_and_group_members_follow_their_private_channels() {
    let s = server(|_| {});
    let ann = user(s.addr, "ann");
    let bob = user(s.addr, "bob");
    let made = act(s.addr, "/groups", "ann", &ann, json!({ "name": "team" }));
    assert_eq!(made.status, 201, "{}", made.text());
    let (a, b) = (cookie(&ann), cookie(&bob));
    assert_eq!(status(s.addr, "/sub/private-user-ann", &a), 200);
    assert_eq!(status(s.addr, "/sub/private-user-bob", &a), 403);
    assert_eq!(status(s.addr, "/sub/private-group-team", &a), 200);
    assert_eq!(status(s.addr, "/sub/private-group-team", &b), 403);
    assert_eq!(status(s.addr, "/sub/private-other", &a), 403);
    let joined = act(s.addr, "/groups/team/join", "bob", &bob, json!({}));
    assert_eq!(joined.status, 200, "{}", joined.text());
    assert_eq!(status(s.addr, "/sub/private-group-team", &b), 200);
    let by_params = "/sub/private-user-bob?me=bob&id=".to_string() + &bob;
    assert_eq!(status(s.addr, &by_params, ""), 200);

    // A session signs tokens for its own channels only (for another origin's page).
    let mint = |who: &str, channel: &str| {
        let body = json!({ "channel": channel }).to_string();
        send(s.addr, "POST", "/hub/auth", who, &body)
    };
    let own = mint(&a, "private-user-ann");
    assert_eq!(own.status, 200, "{}", own.text());
    let t = json_of(&own)["token"].as_str().unwrap_or("").to_string();
    let with_token = format!("/sub/private-user-ann?token={t}");
    assert_eq!(status(s.addr, &with_token, &a), 200);
    assert_eq!(status(s.addr, &with_token, &b), 403, "bound to ann");
    assert_eq!(mint(&a, "private-user-bob").status, 403);
    assert_eq!(mint(&b, "private-group-team").status, 200);
    assert_eq!(mint("", "private-user-ann").status, 401);
}

#[test]
fn a_subscription_token_grants_its_channel_and_nothing_else() {
    let s = server(|_| {});
    assert_eq!(status(s.addr, "/sub/private-x", ""), 403);
    let open = token_for(&s, json!({ "channel": "private-x" }));
    let mut sub = Client::connect(s.addr);
    let target = format!("/sub/private-x?token={open}");
    sub.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    assert!(sub.read_through("\r\n\r\n").starts_with("HTTP/1.1 200"));
    assert_eq!(
        sub.read_through("\n\n"),
        "id: 0\nevent: position\ndata: \n\n"
    );
    let r = send(s.addr, "POST", "/pub/private-x", &bearer(), "secret");
    assert_eq!(json_of(&r)["subscribers"], 1, "{}", r.text());
    assert_eq!(sub.read_through("\n\n"), "id: 1\ndata: secret\n\n");

    assert_eq!(
        status(s.addr, &format!("/sub/private-y?token={open}"), ""),
        403
    );
    let mut forged = open.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    assert_eq!(
        status(s.addr, &format!("/sub/private-x?token={forged}"), ""),
        403
    );
    let for_ann = token_for(&s, json!({ "channel": "private-x", "sub": "ann" }));
    let target = format!("/sub/private-x?token={for_ann}");
    assert_eq!(status(s.addr, &target, ""), 403, "needs ann's session");

    let (id, c) = new_client(&s);
    let for_client = token_for(&s, json!({ "channel": "private-x", "client": id }));
    let poll = format!("/poll?{c}&channels=private-x&token={for_client}");
    assert_eq!(status(s.addr, &poll, ""), 200, "follows it (its position)");
    let (_, other) = new_client(&s);
    let poll = format!("/poll?{other}&channels=private-x&token={for_client}");
    assert_eq!(status(s.addr, &poll, ""), 403, "another client");
    let denied = send(
        s.addr,
        "POST",
        "/hub/auth",
        "",
        r#"{"channel":"private-x"}"#,
    );
    assert_eq!(denied.status, 401, "no publisher token, no session");
}

#[test]
fn a_stream_held_by_a_token_ends_when_the_token_expires() {
    let s = server(|_| {});
    let short = token_for(&s, json!({ "channel": "private-x", "ttl": 1 }));
    let mut sub = Client::connect(s.addr);
    let target = format!("/sub/private-x?token={short}");
    sub.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    assert!(sub.read_through("\r\n\r\n").starts_with("HTTP/1.1 200"));
    let (_, end) = sub.read_to_end();
    assert_eq!(end, util::End::Fin, "closed cleanly at the token's expiry");
    assert_eq!(
        status(s.addr, &target, ""),
        403,
        "the expired token no longer opens it"
    );
}

#[test]
fn a_mailbox_is_read_only_with_its_key() {
    let s = server(|_| {});
    let note = r#"{"client":"victim-1","app":"bank","data":"S"}"#;
    let r = send(s.addr, "POST", "/notify", &bearer(), note);
    assert_eq!(r.status, 202, "{}", r.text());
    let by_id = send(s.addr, "GET", "/poll?client=victim-1", "", "");
    assert_eq!(by_id.status, 401, "read by id alone: {}", by_id.text());
    assert!(!by_id.text().contains("\"S\""));
    let (_, mine) = new_client(&s);
    let my_key = mine.split("key=").nth(1).expect("key");
    let stolen = format!("/poll?client=victim-1&key={my_key}");
    assert_eq!(send(s.addr, "GET", &stolen, "", "").status, 401);
    let naming = send(
        s.addr,
        "POST",
        "/hub/client",
        "",
        r#"{"client":"victim-1"}"#,
    );
    assert_eq!(naming.status, 401, "only a publisher names the client");

    // The application server mints the victim's key; the browser reads.
    let minted = send(
        s.addr,
        "POST",
        "/hub/client",
        &bearer(),
        r#"{"client":"victim-1"}"#,
    );
    let key = json_of(&minted)["key"].as_str().unwrap_or("").to_string();
    assert!(key.len() >= 22, "at least 128 bits: {key}");
    let read = send(
        s.addr,
        "GET",
        &format!("/poll?client=victim-1&key={key}"),
        "",
        "",
    );
    assert_eq!(read.status, 200);
    assert_eq!(read.text(), "{\"id\":1,\"app\":\"bank\",\"data\":\"S\"}\n");

    // A browser's own client: a fresh 128-bit id, readable with its key.
    let (id, c) = new_client(&s);
    assert_eq!(id.len(), 32, "{id}");
    let note = json!({ "client": id, "app": "mail", "data": 1 }).to_string();
    assert_eq!(
        send(s.addr, "POST", "/notify", &bearer(), &note).status,
        202
    );
    let read = send(s.addr, "GET", &format!("/poll?{c}"), "", "");
    assert_eq!(read.text(), "{\"id\":1,\"app\":\"mail\",\"data\":1}\n");
}

/// Holds `/poll?CLIENT&channels=...` on SSE for `n` new channels named
/// `prefix-i`; returns the connection and the status.
fn hold_channels(s: &Server, client: &str, prefix: &str, n: usize) -> (Client, u16) {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let target = format!("/poll?{client}&channels={}", names.join(","));
    let mut c = Client::connect(s.addr);
    let raw = format!("GET {target} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n");
    c.send(raw.as_bytes());
    let head = c.read_through("\r\n\r\n");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    (c, status.expect("a status"))
}

#[test]
fn strangers_cannot_fill_the_topic_table() {
    let s = server(|_| {});
    let (_, c) = new_client(&s);
    let (_, status) = hold_channels(&s, &c, "wide", 40);
    assert_eq!(status, 429, "one connection makes at most 32 topics");

    // One address: 31 connections of 32 topics (a mailbox and 31 channels)
    // hold 992; the next 32 would pass the 1,000 an address may make.
    let mut held = Vec::new();
    for i in 0..31 {
        let (_, c) = new_client(&s);
        let (conn, status) = hold_channels(&s, &c, &format!("a{i}"), 31);
        assert_eq!(status, 200, "connection {i}");
        held.push(conn);
    }
    let (_, c) = new_client(&s);
    let (_, status) = hold_channels(&s, &c, "last", 31);
    assert_eq!(status, 429, "the address made too many");
    let r = send(s.addr, "POST", "/pub/a0-0", &bearer(), "x");
    assert_eq!(r.status, 202, "a publisher is not refused: {}", r.text());
}

#[test]
fn publishers_are_never_refused_an_existing_channel() {
    let s = server(|c| c.hub.max_topics = 3);
    let mut strangers = Vec::new();
    for name in ["s1", "s2", "s3"] {
        let mut c = Client::connect(s.addr);
        c.send(format!("GET /sub/{name} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        assert!(c.read_through("\r\n\r\n").starts_with("HTTP/1.1 200"));
        strangers.push(c);
    }
    assert_eq!(
        status(s.addr, "/sub/s4", ""),
        503,
        "strangers stop at the cap"
    );
    let r = send(s.addr, "POST", "/pub/s1", &bearer(), "x");
    assert_eq!(r.status, 202, "an existing channel: {}", r.text());
    let r = send(s.addr, "POST", "/pub/news", &bearer(), "x");
    assert_eq!(
        r.status,
        202,
        "a new one, past the strangers' cap: {}",
        r.text()
    );
    let note = r#"{"client":"c9","app":"a","data":1}"#;
    assert_eq!(send(s.addr, "POST", "/notify", &bearer(), note).status, 202);
}
