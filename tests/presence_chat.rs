//! Type chat: `/initchat` opens chat boxes on both sides, `POST /chat` is
//! relayed both ways (`202` with an id), `413` over 4 KiB, messages for an
//! offline user are stored, listed and delivered at their next login, and
//! chats and invitations land in the activity log.

mod presence_support;
mod util;

use presence_support::*;
use serde_json::json;

#[test]
fn initchat_opens_boxes_on_both_sides() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    let mut alice_pipe = Pipe::open(a, "alice", &alice, false);
    let mut bob_pipe = Pipe::open(a, "bob", &bob, true);
    let r = get(a, &format!("/initchat?me=alice&to=bob&id={alice}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(body(&r)["online"], true);
    let theirs = bob_pipe.next_of("initChat");
    assert_eq!(
        (theirs.data["from"].as_str(), theirs.data["with"].as_str()),
        (Some("alice"), Some("alice"))
    );
    let mine = alice_pipe.next_of("initChat");
    assert_eq!(mine.data["with"], "bob");
    assert_eq!(
        get(a, &format!("/initchat?me=alice&to=nobody&id={alice}")).status,
        404
    );
    assert_eq!(get(a, "/initchat?me=alice&to=bob&id=bad").status, 403);
    // A link carrying only the cookie is not enough for a GET.
    assert_eq!(get_with_cookie(a, "/initchat?to=bob", &alice).status, 403);
}

#[test]
fn chat_is_relayed_both_ways() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    let mut alice_pipe = Pipe::open(a, "alice", &alice, false);
    let mut bob_pipe = Pipe::open(a, "bob", &bob, false);
    let text = "hello <b>bob</b> & \"friends\"\nsecond line";
    let sent = send_chat(a, "alice", &alice, "bob", text);
    assert_eq!(sent.status, 202, "{}", sent.text());
    let id = body(&sent)["id"].as_i64().unwrap();
    let ev = bob_pipe.next_of("chat");
    assert_eq!(ev.data["msg"], text, "text arrives exactly as sent");
    assert_eq!(ev.data["from"], "alice");
    assert_eq!(ev.data["id"], id);
    let reply = send_chat(a, "bob", &bob, "alice", "hi alice");
    assert_eq!(reply.status, 202);
    assert!(body(&reply)["id"].as_i64().unwrap() > id);
    assert_eq!(alice_pipe.next_of("chat").data["msg"], "hi alice");
    // A form body, as the patent posts it.
    let form = call(
        a,
        "POST",
        "/chat",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &format!("me=bob&id={bob}&to=alice&msg=by+form"),
    );
    assert_eq!(form.status, 202);
    assert_eq!(alice_pipe.next_of("chat").data["msg"], "by form");
    // The seed's field name for the session id.
    let seed = call(
        a,
        "POST",
        "/chat",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &format!("me=bob&sessionId={bob}&to=alice&msg=seed+form"),
    );
    assert_eq!(seed.status, 202);
    assert_eq!(alice_pipe.next_of("chat").data["msg"], "seed form");
}

#[test]
fn chat_limits_and_sessions() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    register(a, "bob");
    let big = "x".repeat(4097);
    let r = send_chat(a, "alice", &alice, "bob", &big);
    assert_eq!(r.status, 413);
    let exact = "y".repeat(4096);
    assert_eq!(send_chat(a, "alice", &alice, "bob", &exact).status, 202);
    assert_eq!(send_chat(a, "alice", &alice, "nobody", "x").status, 404);
    assert_eq!(send_chat(a, "alice", "bad", "bob", "x").status, 403);
}

#[test]
fn offline_messages_are_stored_listed_and_delivered_at_next_login() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    register(a, "bob");
    let sent = send_chat(a, "alice", &alice, "bob", "call me");
    assert_eq!(sent.status, 202);
    assert_eq!(body(&sent)["stored"], true);
    let left = act(
        a,
        "/messages",
        "alice",
        &alice,
        json!({"to": "bob", "msg": "second"}),
    );
    assert_eq!(left.status, 202);
    let bob = login(a, "bob");
    let list = body(&get(a, &format!("/messages?me=bob&id={bob}")));
    let msgs: Vec<&str> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["msg"].as_str().unwrap())
        .collect();
    assert_eq!(msgs, ["second", "call me"]);
    let mut pipe = Pipe::open(a, "bob", &bob, false);
    let first = pipe.next_of("message");
    assert_eq!(
        (first.data["from"].as_str(), first.data["msg"].as_str()),
        (Some("alice"), Some("call me"))
    );
    assert_eq!(pipe.next_of("message").data["msg"], "second");
    drop(pipe);
    // Delivered once: the next login does not deliver them again.
    act(a, "/contacts", "alice", &alice, json!({"name": "bob"}));
    util::wait_for("bob offline", || {
        body(&get(a, &format!("/groups?me=alice&id={alice}")))["contacts"][0]["online"] == false
    });
    let mut again = Pipe::open(a, "bob", &bob, false);
    again.quiet(std::time::Duration::from_millis(200));
    assert_eq!(get(a, "/messages").status, 403);
}

#[test]
fn leaving_a_message_for_an_online_user_delivers_it_now() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    let mut pipe = Pipe::open(a, "bob", &bob, false);
    let r = act(
        a,
        "/messages",
        "alice",
        &alice,
        json!({"to": "bob", "msg": "note"}),
    );
    assert_eq!(r.status, 202);
    assert_eq!(pipe.next_of("message").data["msg"], "note");
}

#[test]
fn chats_and_invitations_are_logged() {
    let db = util::temp_dir("chatlog").join("p.db");
    {
        let server = server_at(Some(db.clone()));
        let a = server.addr;
        let alice = user(a, "alice");
        register(a, "bob");
        get(a, &format!("/initchat?me=alice&to=bob&id={alice}"));
        send_chat(a, "alice", &alice, "bob", "x");
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT kind, detail FROM activity WHERE user = 'alice' AND kind IN ('invite', 'chat') ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            ("invite".to_string(), "bob".to_string()),
            ("chat".into(), "bob".into())
        ]
    );
}

#[test]
fn chat_endpoints_name_a_missing_field() {
    let server = server();
    let a = server.addr;
    let sid = user(a, "alice");
    register(a, "bob");
    for (path, fields, missing) in [
        ("/chat", json!({ "msg": "hi" }), "to"),
        ("/chat", json!({ "to": "bob" }), "msg"),
        ("/messages", json!({ "msg": "hi" }), "to"),
        ("/messages", json!({ "to": "bob" }), "msg"),
        ("/initchat", json!({}), "to"),
    ] {
        let r = act(a, path, "alice", &sid, fields);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert_eq!(
            body(&r)["error"],
            format!("missing field: {missing}"),
            "{path}"
        );
    }
    // Nothing was stored for bob by the refused requests.
    let bob = login(a, "bob");
    let listed = body(&get(a, &format!("/messages?me=bob&id={bob}")));
    assert_eq!(
        listed["messages"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
}
