//! Stored messages for offline users (issue 7, finding 14): they are capped
//! per recipient (`507`) and per sender (`429`), with JSON naming the limit,
//! and delivered at login a page at a time, each exactly once.

mod presence_support;
mod util;

use std::net::SocketAddr;
use std::time::Duration;

use altsock::server::Job;
use altsock::Engine;
use presence_support::*;
use serde_json::json;
use util::{Client, TestServer};

/// A presence server with the given stored-message limits.
fn server_with(per_recipient: usize, per_sender: usize) -> TestServer<Job> {
    let builder = Engine::builder()
        .poll_interval(Duration::from_millis(20))
        .keepalive_interval(Duration::from_millis(500));
    util::spawn_server(builder, move |config| {
        config.store.max_per_recipient = per_recipient;
        config.store.max_per_sender = per_sender;
    })
}

fn chat(a: SocketAddr, me: &str, sid: &str, to: &str, msg: &str) -> util::Resp {
    act(a, "/chat", me, sid, json!({ "to": to, "msg": msg }))
}

/// The value of one metric on `/metrics`.
fn metric(a: SocketAddr, line: &str) -> u64 {
    let mut c = Client::connect(a);
    c.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    let text = c.read_response().text();
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {line} in /metrics"))
}

#[test]
fn stored_messages_are_capped_per_recipient_and_per_sender() {
    let server = server_with(3, 5);
    let a = server.addr;
    let alice = user(a, "alice");
    for name in ["bob", "carol", "dave"] {
        register(a, name);
    }
    for i in 0..3 {
        let r = chat(a, "alice", &alice, "bob", &format!("b{i}"));
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(body(&r)["stored"], true);
    }
    let full = chat(a, "alice", &alice, "bob", "one too many");
    assert_eq!(full.status, 507, "{}", full.text());
    assert_eq!(body(&full)["limit"], "max-stored-per-recipient");
    assert_eq!(body(&full)["max"], 3);
    for i in 0..2 {
        assert_eq!(
            chat(a, "alice", &alice, "carol", &format!("c{i}")).status,
            202
        );
    }
    let sender_full = chat(a, "alice", &alice, "dave", "sixth");
    assert_eq!(sender_full.status, 429, "{}", sender_full.text());
    assert_eq!(body(&sender_full)["limit"], "max-stored-per-sender");
    assert!(sender_full.header("retry-after").is_some());
    assert_eq!(
        metric(a, "altsock_stored_refused_total{limit=\"recipient\"}"),
        1
    );
    assert_eq!(
        metric(a, "altsock_stored_refused_total{limit=\"sender\"}"),
        1
    );

    // Bob reads his three: room again, for him and for alice.
    let bob = login(a, "bob");
    let mut pipe = Pipe::open(a, "bob", &bob, false);
    let got: Vec<String> = (0..3)
        .map(|_| {
            pipe.next_of("message").data["msg"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(got, ["b0", "b1", "b2"]);
    let r = chat(a, "alice", &alice, "dave", "room again");
    assert_eq!(r.status, 202, "{}", r.text());
}

#[test]
fn stored_messages_arrive_in_pages_in_order_exactly_once() {
    let server = server_with(10_000, 10_000);
    let a = server.addr;
    let alice = user(a, "alice");
    register(a, "bob");
    let mut client = Client::connect(a);
    for i in 0..250 {
        let body = json!({ "me": "alice", "id": alice, "to": "bob", "msg": format!("n{i}") });
        let text = body.to_string();
        client.send(
            format!(
                "POST /chat HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            )
            .as_bytes(),
        );
        let r = client.read_response();
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let bob = login(a, "bob");
    let mut pipe = Pipe::open(a, "bob", &bob, false);
    for i in 0..250 {
        let ev = pipe.next_of("message");
        assert_eq!(ev.data["msg"], format!("n{i}"), "in order, once");
    }
    pipe.quiet(Duration::from_millis(200));
    assert_eq!(metric(a, "altsock_stored_delivered_total"), 250);
    assert_eq!(metric(a, "altsock_stored_pages_total"), 3, "pages of 100");
    // A later pipe gets none of them again.
    drop(pipe);
    let mut again = Pipe::open(a, "bob", &bob, false);
    again.quiet(Duration::from_millis(200));
    assert_eq!(metric(a, "altsock_stored_delivered_total"), 250);
}

#[test]
fn a_long_polling_user_gets_every_stored_message_without_a_gap() {
    let server = server_with(10_000, 10_000);
    let a = server.addr;
    let alice = user(a, "alice");
    register(a, "bob");
    let mut client = Client::connect(a);
    // More than the user's 256-event queue holds.
    for i in 0..400 {
        let text =
            json!({ "me": "alice", "id": alice, "to": "bob", "msg": format!("p{i}") }).to_string();
        client.send(
            format!(
                "POST /chat HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            )
            .as_bytes(),
        );
        assert_eq!(client.read_response().status, 202);
    }
    let bob = login(a, "bob");
    let poll = |since: Option<&str>| {
        let since = since.map(|s| format!("&since={s}")).unwrap_or_default();
        get(
            a,
            &format!("/jchat?me=bob&id={bob}&mode=poll&timeout=2000{since}"),
        )
    };
    let mut since = poll(None).header("x-altsock-id").unwrap().to_string();
    // One page is sent; the next waits until bob has fetched it (checked
    // over a window, as `Pipe::quiet` checks that nothing arrives).
    util::wait_for("the first page", || {
        metric(a, "altsock_stored_delivered_total") >= 100
    });
    let window = std::time::Instant::now() + Duration::from_millis(300);
    while std::time::Instant::now() < window {
        assert_eq!(metric(a, "altsock_stored_delivered_total"), 100, "paced");
    }
    let mut got = Vec::new();
    while got.len() < 400 {
        let r = poll(Some(&since));
        assert_eq!(r.status, 200, "a poll answers with events: {}", r.text());
        for ev in poll_events(&r) {
            assert_ne!(ev.kind, "gap", "no stored message dropped: {:?}", ev.data);
            if ev.kind == "message" {
                got.push(ev.data["msg"].as_str().unwrap().to_string());
            }
        }
        since = r.header("x-altsock-id").unwrap().to_string();
    }
    let want: Vec<String> = (0..400).map(|i| format!("p{i}")).collect();
    assert_eq!(got, want);
}
