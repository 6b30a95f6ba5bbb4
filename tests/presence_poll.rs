//! The long-poll form of the pipe (`mode=poll&since=N`): queued events come
//! in order, none lost and none repeated, even while events arrive between
//! polls; an overflowing queue says so with a `gap`; a client that stops
//! polling goes offline.

mod presence_support;
mod util;

use std::time::{Duration, Instant};

use presence_support::*;
use serde_json::json;

fn poll(a: std::net::SocketAddr, me: &str, sid: &str, since: u64, timeout_ms: u64) -> util::Resp {
    get(
        a,
        &format!("/jchat?me={me}&id={sid}&mode=poll&since={since}&timeout={timeout_ms}"),
    )
}

#[test]
fn first_poll_says_hello_then_an_idle_poll_ends_with_204() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let hello = get(a, &format!("/jchat?me=alice&id={alice}&mode=poll"));
    assert_eq!(hello.status, 200);
    assert_eq!(hello.header("x-altsock-id"), Some("0"));
    let events = poll_events(&hello);
    assert_eq!(events[0].kind, "hello");
    let started = Instant::now();
    let idle = poll(a, "alice", &alice, 0, 100);
    assert_eq!(idle.status, 204);
    assert!(started.elapsed() >= Duration::from_millis(90));
    assert_eq!(get(a, "/jchat?me=alice&id=bad&mode=poll").status, 403);
}

#[test]
fn a_waiting_poll_is_answered_by_the_next_event() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    get(a, &format!("/jchat?me=alice&id={alice}&mode=poll"));
    let mut waiting = util::Client::connect(a);
    waiting.send(
        format!("GET /jchat?me=alice&id={alice}&mode=poll&since=0&timeout=5000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .as_bytes(),
    );
    // Wait until the poll is really held (not merely sent).
    util::wait_for("the poll to be held", || {
        let metrics = get(a, "/metrics").text();
        metrics.lines().any(|l| l == "altsock_held_connections 1")
    });
    let sent = act(a, "/chat", "bob", &bob, json!({"to": "alice", "msg": "hi"}));
    assert_eq!(sent.status, 202);
    let answer = waiting.read_response();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-altsock-id"), Some("1"));
    let events = poll_events(&answer);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind.as_str(), events[0].data["msg"].as_str()),
        ("chat", Some("hi"))
    );
}

#[test]
fn events_between_polls_arrive_in_order_none_lost_none_repeated() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    get(a, &format!("/jchat?me=alice&id={alice}&mode=poll"));
    const N: usize = 120;
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            let r = act(
                a,
                "/chat",
                "bob",
                &bob,
                json!({"to": "alice", "msg": format!("m{i}")}),
            );
            assert_eq!(r.status, 202, "{}", r.text());
            if i % 7 == 0 {
                std::thread::sleep(Duration::from_millis(3));
            }
        }
    });
    let (mut since, mut got, mut seqs) = (0u64, Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < N {
        assert!(Instant::now() < deadline, "only {} of {N}", got.len());
        let r = poll(a, "alice", &alice, since, 500);
        if r.status == 204 {
            continue;
        }
        for ev in poll_events(&r) {
            assert_ne!(ev.kind, "gap");
            seqs.push(ev.data["seq"].as_u64().unwrap());
            got.push(ev.data["msg"].as_str().unwrap().to_string());
        }
        since = r.header("x-altsock-id").unwrap().parse().unwrap();
    }
    sender.join().unwrap();
    let want: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
    assert_eq!(seqs, (1..=N as u64).collect::<Vec<_>>());
    assert_eq!(
        poll(a, "alice", &alice, since, 100).status,
        204,
        "nothing repeated"
    );
}

#[test]
fn an_overflowing_queue_reports_a_gap() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    get(a, &format!("/jchat?me=alice&id={alice}&mode=poll"));
    let total = altsock::server::presence::QUEUE_CAP as u64 + 20;
    for i in 0..total {
        act(
            a,
            "/chat",
            "bob",
            &bob,
            json!({"to": "alice", "msg": format!("m{i}")}),
        );
    }
    let r = poll(a, "alice", &alice, 0, 100);
    let events = poll_events(&r);
    assert_eq!(events[0].kind, "gap");
    assert_eq!(events[0].data["from"], 1);
    assert_eq!(events[0].data["to"], 20);
    assert_eq!(events[1].data["seq"], 21);
    assert_eq!(events.len() as u64, 1 + total - 20);
    assert_eq!(r.header("x-altsock-id"), Some(total.to_string().as_str()));
}

#[test]
fn a_client_that_stops_polling_goes_offline() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    act(a, "/contacts", "bob", &bob, json!({"name": "alice"}));
    let mut bob_pipe = Pipe::open(a, "bob", &bob, false);
    get(
        a,
        &format!("/jchat?me=alice&id={alice}&mode=poll&timeout=100"),
    );
    assert_eq!(bob_pipe.next().data["online"], true);
    // Alice never polls again: offline after the grace (twice her timeout).
    let ev = bob_pipe.next();
    assert_eq!(
        (ev.data["user"].as_str(), ev.data["online"].as_bool()),
        (Some("alice"), Some(false))
    );
}

#[test]
fn polling_on_fresh_connections_is_one_online_session() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    act(a, "/contacts", "bob", &bob, json!({"name": "alice"}));
    let mut bob_pipe = Pipe::open(a, "bob", &bob, false);
    let hello = get(a, &format!("/jchat?me=alice&id={alice}&mode=poll"));
    let mut since: u64 = hello.header("x-altsock-id").unwrap().parse().unwrap();
    for _ in 0..3 {
        let r = poll(a, "alice", &alice, since, 60);
        if let Some(id) = r.header("x-altsock-id") {
            since = id.parse().unwrap();
        }
    }
    let ev = bob_pipe.next();
    assert_eq!(
        (ev.data["user"].as_str(), ev.data["online"].as_bool()),
        (Some("alice"), Some(true))
    );
    bob_pipe.quiet(Duration::from_millis(100));
}
