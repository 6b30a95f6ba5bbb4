//! The held `/jchat` pipe: bad sessions, line and SSE framing, online and
//! offline propagation to exactly the users whose active group holds the
//! user (at once, on close and on logout), replaced connections, and the
//! dynamic session fields of the UserTable.

mod presence_support;
mod util;

use std::time::{Duration, Instant};

use presence_support::*;
use serde_json::json;

#[test]
fn bad_sessions_get_403() {
    let server = server();
    let a = server.addr;
    let sid = user(a, "alice");
    assert_eq!(get(a, "/jchat?me=alice&id=0123456789abcdef").status, 403);
    assert_eq!(get(a, &format!("/jchat?me=bob&id={sid}")).status, 403);
    assert_eq!(get(a, "/jchat?me=alice").status, 403);
    assert_eq!(get(a, "/jchat").status, 403);
}

#[test]
fn watchers_hear_online_and_offline_at_once_and_nobody_else_does() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    let carol = user(a, "carol");
    assert_eq!(
        act(a, "/contacts", "alice", &alice, json!({"name": "bob"})).status,
        201
    );
    let mut alice_pipe = Pipe::open(a, "alice", &alice, false);
    let mut carol_pipe = Pipe::open(a, "carol", &carol, false);
    let started = Instant::now();
    let bob_pipe = Pipe::open(a, "bob", &bob, false);
    let ev = alice_pipe.next();
    assert_eq!(ev.kind, "update");
    assert_eq!(ev.data["user"], "bob");
    assert_eq!(ev.data["online"], true);
    assert_eq!(ev.data["node"], "test-node");
    assert!(ev.data.get("sid").is_none() && ev.data.get("ip").is_none());
    drop(bob_pipe);
    let ev = alice_pipe.next();
    assert_eq!(
        (ev.data["user"].as_str(), ev.data["online"].as_bool()),
        (Some("bob"), Some(false))
    );
    // Both updates came as events (each `next` waits at most util::WAIT);
    // how fast is a benchmark's figure, not this test's.
    eprintln!("online and offline seen in {:?}", started.elapsed());
    // Carol has nobody in her address book: she heard nothing.
    carol_pipe.quiet(Duration::from_millis(100));
}

#[test]
fn sse_pipe_carries_event_names_and_ids() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    act(a, "/contacts", "alice", &alice, json!({"name": "bob"}));
    let mut pipe = Pipe::open(a, "alice", &alice, true);
    let _bob = Pipe::open(a, "bob", &bob, false);
    let raw = pipe.client.read_through("\n\n");
    assert!(raw.contains("event: update\n"), "{raw}");
    assert!(raw.contains("id: 1\n"), "{raw}");
    assert!(raw.contains("\"user\":\"bob\""), "{raw}");
}

#[test]
fn a_second_pipe_replaces_the_first() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    act(a, "/contacts", "alice", &alice, json!({"name": "bob"}));
    let mut alice_pipe = Pipe::open(a, "alice", &alice, false);
    let mut first = Pipe::open(a, "bob", &bob, false);
    assert_eq!(alice_pipe.next().data["online"], true);
    let _second = Pipe::open(a, "bob", &bob, false);
    assert_eq!(first.next().kind, "replaced");
    first.client.read_to_close();
    // Bob never went offline: Alice hears only the new session's fields.
    let ev = alice_pipe.next();
    assert_eq!(ev.data["online"], true, "{ev:?}");
    alice_pipe.quiet(Duration::from_millis(100));
}

#[test]
fn logout_closes_the_pipe_and_watchers_hear_offline() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    act(a, "/contacts", "alice", &alice, json!({"name": "bob"}));
    let mut alice_pipe = Pipe::open(a, "alice", &alice, false);
    let mut bob_pipe = Pipe::open(a, "bob", &bob, false);
    assert_eq!(alice_pipe.next().data["online"], true);
    assert_eq!(act(a, "/logout", "bob", &bob, json!({})).status, 200);
    assert_eq!(alice_pipe.next().data["online"], false);
    bob_pipe.client.read_to_close();
}

#[test]
fn the_active_group_decides_who_hears() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    let carol = user(a, "carol");
    act(a, "/contacts", "alice", &alice, json!({"name": "bob"}));
    assert_eq!(
        act(a, "/groups", "alice", &alice, json!({"name": "team"})).status,
        201
    );
    assert_eq!(
        act(a, "/groups/team/join", "carol", &carol, json!({})).status,
        200
    );
    assert_eq!(
        act(a, "/active", "alice", &alice, json!({"group": "team"})).status,
        200
    );
    let mut alice_pipe = Pipe::open(a, "alice", &alice, false);
    // Bob is only in the address book, which Alice is not showing.
    let _bob = Pipe::open(a, "bob", &bob, false);
    let _carol = Pipe::open(a, "carol", &carol, false);
    let ev = alice_pipe.next();
    assert_eq!(ev.data["user"], "carol", "{ev:?}");
    alice_pipe.quiet(Duration::from_millis(100));
    // Not a group of hers: refused.
    assert_eq!(
        act(a, "/active", "bob", &bob, json!({"group": "team"})).status,
        404
    );
}

#[test]
fn groups_list_online_members_and_refresh_on_join_and_leave() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    act(a, "/groups", "alice", &alice, json!({"name": "team"}));
    act(a, "/active", "alice", &alice, json!({"group": "team"}));
    let mut alice_pipe = Pipe::open(a, "alice", &alice, false);
    let _bob_pipe = Pipe::open(a, "bob", &bob, false);
    act(a, "/groups/team/join", "bob", &bob, json!({}));
    let ev = alice_pipe.next();
    assert_eq!(ev.kind, "refresh");
    assert_eq!(
        (ev.data["group"].as_str(), ev.data["user"].as_str()),
        (Some("team"), Some("bob"))
    );
    let list = body(&get(a, &format!("/groups?me=alice&id={alice}")));
    assert_eq!(list["active"], "team");
    assert_eq!(list["groups"][0]["name"], "team");
    assert_eq!(list["groups"][0]["online"], json!(["alice", "bob"]));
    act(a, "/groups/team/leave", "bob", &bob, json!({}));
    let ev = alice_pipe.next();
    assert_eq!(
        (ev.kind.as_str(), ev.data["joined"].as_bool()),
        ("refresh", Some(false))
    );
    let list = body(&get(a, &format!("/groups?me=alice&id={alice}")));
    assert_eq!(list["groups"][0]["online"], json!(["alice"]));
}

#[test]
fn group_passwords_are_checked_on_join() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    let made = group_with_password(a, "alice", &alice, "club", "sesame");
    assert_eq!(made.status, 201);
    assert_eq!(
        act(a, "/groups", "bob", &bob, json!({"name": "club"})).status,
        409
    );
    assert_eq!(
        act(a, "/groups", "bob", &bob, json!({"name": "alice"})).status,
        409
    );
    let wrong = act(
        a,
        "/groups/club/join",
        "bob",
        &bob,
        json!({"password": "nope"}),
    );
    assert_eq!(wrong.status, 403);
    let none = act(a, "/groups/club/join", "bob", &bob, json!({}));
    assert_eq!(none.status, 403);
    let right = act(
        a,
        "/groups/club/join",
        "bob",
        &bob,
        json!({"password": "sesame"}),
    );
    assert_eq!(right.status, 200);
    assert_eq!(
        act(a, "/groups/nosuch/join", "bob", &bob, json!({})).status,
        404
    );
}

#[test]
fn contacts_are_added_and_removed() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    let _bob_pipe = Pipe::open(a, "bob", &bob, false);
    let added = act(a, "/contacts", "alice", &alice, json!({"name": "bob"}));
    assert_eq!(body(&added)["online"], true);
    assert_eq!(
        act(a, "/contacts", "alice", &alice, json!({"name": "nobody"})).status,
        404
    );
    let list = body(&get(a, &format!("/groups?me=alice&id={alice}")));
    assert_eq!(list["contacts"][0]["name"], "bob");
    assert_eq!(list["contacts"][0]["online"], true);
    let removed = call(
        a,
        "DELETE",
        &format!("/contacts/bob?me=alice&id={alice}"),
        "",
        "",
    );
    assert_eq!(removed.status, 200);
    let list = body(&get(a, &format!("/groups?me=alice&id={alice}")));
    assert_eq!(list["contacts"], json!([]));
    // Without a session: 403.
    assert_eq!(post(a, "/contacts", &json!({"name": "bob"})).status, 403);
}

#[test]
fn membership_persists_across_restarts() {
    let db = util::temp_dir("groups").join("p.db");
    {
        let server = server_at(Some(db.clone()));
        let alice = user(server.addr, "alice");
        register(server.addr, "bob");
        act(
            server.addr,
            "/groups",
            "alice",
            &alice,
            json!({"name": "team", "password": "pw"}),
        );
        act(
            server.addr,
            "/contacts",
            "alice",
            &alice,
            json!({"name": "bob"}),
        );
        act(
            server.addr,
            "/active",
            "alice",
            &alice,
            json!({"group": "team"}),
        );
    }
    let server = server_at(Some(db));
    let alice = login(server.addr, "alice");
    let list = body(&get(server.addr, &format!("/groups?me=alice&id={alice}")));
    assert_eq!(list["active"], "team");
    assert_eq!(list["groups"][0]["protected"], true);
    assert_eq!(list["contacts"][0]["name"], "bob");
}

#[test]
fn a_reset_connection_makes_the_user_offline_at_once() {
    // Keepalives a minute apart: only the reset itself can make Bob offline
    // within the few seconds `Pipe::next` waits.
    let builder = altsock::Engine::builder()
        .poll_interval(Duration::from_millis(20))
        .keepalive_interval(Duration::from_secs(60));
    let server = util::spawn_server(builder, |_| {});
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    act(a, "/contacts", "alice", &alice, json!({"name": "bob"}));
    let mut alice_pipe = Pipe::open(a, "alice", &alice, true);
    let bob_pipe = Pipe::open(a, "bob", &bob, false);
    assert_eq!(alice_pipe.next().data["online"], true);
    let started = Instant::now();
    socket2::SockRef::from(&bob_pipe.client.stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(bob_pipe);
    assert_eq!(alice_pipe.next().data["online"], false);
    eprintln!("offline seen {:?} after the reset", started.elapsed());
}

#[test]
fn a_reader_that_stops_reading_is_closed_and_goes_offline() {
    let builder = altsock::Engine::builder()
        .poll_interval(Duration::from_millis(20))
        .max_pending_output(16 * 1024);
    let server = util::spawn_server(builder, |_| {});
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    let carol = user(a, "carol");
    act(a, "/contacts", "carol", &carol, json!({"name": "bob"}));
    let mut carol_pipe = Pipe::open(a, "carol", &carol, false);
    // Bob's pipe: a small receive window, and he never reads again.
    let bob_pipe = Pipe::open(a, "bob", &bob, false);
    socket2::SockRef::from(&bob_pipe.client.stream)
        .set_recv_buffer_size(4096)
        .unwrap();
    assert_eq!(carol_pipe.next().data["online"], true);
    let mut sender = util::Client::connect(a);
    let text = "z".repeat(4000);
    let mut stored = false;
    for _ in 0..5000 {
        let payload = json!({"me": "alice", "id": alice, "to": "bob", "msg": text}).to_string();
        let raw = format!(
            "POST /chat HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
            payload.len()
        );
        sender.send(raw.as_bytes());
        let r = sender.read_response();
        assert_eq!(r.status, 202);
        if body(&r)["stored"] == true {
            stored = true;
            break;
        }
    }
    assert!(stored, "bob was never closed as a slow consumer");
    let ev = carol_pipe.next();
    assert_eq!(
        (ev.data["user"].as_str(), ev.data["online"].as_bool()),
        (Some("bob"), Some(false))
    );
    drop(bob_pipe);
}
