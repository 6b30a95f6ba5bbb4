//! Accounts and sessions of the presence server: register, log in (argon2id,
//! 128-bit session ids, the cookie), log out, the throttle on failures, the
//! `Origin` check, persistence across restarts and the activity log.

mod presence_support;
mod util;

use presence_support::*;
use serde_json::json;

#[test]
fn register_answers_201_409_and_400_with_reasons() {
    let server = server();
    let a = server.addr;
    register(a, "alice");
    let taken = post(
        a,
        "/register",
        &json!({"username": "alice", "password": "another one"}),
    );
    assert_eq!(taken.status, 409, "{}", taken.text());
    let bad = post(
        a,
        "/register",
        &json!({"username": "no spaces", "password": "long enough"}),
    );
    assert_eq!(bad.status, 400);
    assert!(
        body(&bad)["error"].as_str().unwrap().contains("name"),
        "{}",
        bad.text()
    );
    let short = post(
        a,
        "/register",
        &json!({"username": "bob", "password": "short"}),
    );
    assert_eq!(short.status, 400);
    assert!(body(&short)["error"].as_str().unwrap().contains("password"));
    let reserved = post(
        a,
        "/register",
        &json!({"username": "home", "password": "long enough"}),
    );
    assert_eq!(reserved.status, 409);
    let guestlike = post(
        a,
        "/register",
        &json!({"username": "guest-1234abcd", "password": "long enough"}),
    );
    assert_eq!(guestlike.status, 409);
    // A form body works as well as JSON.
    let form = call(
        a,
        "POST",
        "/register",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "username=carol&password=correct+horse&email=carol%40example.com&phone=%2B1+555+0100",
    );
    assert_eq!(form.status, 201, "{}", form.text());
    let alias = post(
        a,
        "/register",
        &json!({"username": "dave", "password": "long enough", "email": "carol@example.com"}),
    );
    assert_eq!(alias.status, 409);
}

#[test]
fn login_gives_a_random_session_and_a_safe_cookie() {
    let server = server();
    let a = server.addr;
    register(a, "alice");
    let r = login_response(a, "alice");
    let b = body(&r);
    assert_eq!(b["user"], "alice");
    let sid = b["session"].as_str().unwrap();
    assert_eq!(sid.len(), 32);
    assert!(sid.bytes().all(|c| c.is_ascii_hexdigit()));
    let cookie = r.header("set-cookie").expect("cookie");
    assert!(
        cookie.starts_with(&format!("altsock_session={sid}")),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let again = login(a, "alice");
    assert_ne!(again, sid, "each login gets a fresh session id");
}

#[test]
fn wrong_name_and_wrong_password_get_the_same_401() {
    let server = server();
    let a = server.addr;
    register(a, "alice");
    let wrong_pw = post(
        a,
        "/login",
        &json!({"username": "alice", "password": "wrong password"}),
    );
    let no_user = post(
        a,
        "/login",
        &json!({"username": "nobody", "password": "wrong password"}),
    );
    assert_eq!(wrong_pw.status, 401);
    assert_eq!(no_user.status, 401);
    assert_eq!(wrong_pw.body, no_user.body);
}

#[test]
fn repeated_failures_are_throttled_with_429() {
    let server = server();
    let a = server.addr;
    register(a, "alice");
    for _ in 0..5 {
        let r = post(
            a,
            "/login",
            &json!({"username": "alice", "password": "guess guess"}),
        );
        assert_eq!(r.status, 401);
    }
    let r = post(
        a,
        "/login",
        &json!({"username": "alice", "password": "guess guess"}),
    );
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    // Even the right password waits out the throttle.
    let r = post(
        a,
        "/login",
        &json!({"username": "alice", "password": "correct horse"}),
    );
    assert_eq!(r.status, 429);
}

#[test]
fn logout_ends_the_session() {
    let server = server();
    let a = server.addr;
    let sid = user(a, "alice");
    let out = act(a, "/logout", "alice", &sid, json!({}));
    assert_eq!(out.status, 200, "{}", out.text());
    let pipe = get(a, &format!("/jchat?me=alice&id={sid}"));
    assert_eq!(pipe.status, 403);
    let again = act(a, "/logout", "alice", &sid, json!({}));
    assert_eq!(again.status, 403);
}

#[test]
fn cross_origin_state_changes_are_refused() {
    let server = server();
    let a = server.addr;
    let evil = call(
        a,
        "POST",
        "/register",
        "Origin: http://evil.example\r\nContent-Type: application/json\r\n",
        r#"{"username":"alice","password":"correct horse"}"#,
    );
    assert_eq!(evil.status, 403);
    let same = call(
        a,
        "POST",
        "/register",
        &format!("Origin: http://{a}\r\nContent-Type: application/json\r\n"),
        r#"{"username":"alice","password":"correct horse"}"#,
    );
    assert_eq!(same.status, 201, "{}", same.text());
    let sid = login(a, "alice");
    let chat = call(
        a,
        "GET",
        &format!("/initchat?me=alice&id={sid}&to=alice"),
        "Origin: null\r\n",
        "",
    );
    assert_eq!(chat.status, 403);
}

#[test]
fn accounts_survive_a_restart_and_activity_is_logged() {
    let db = util::temp_dir("restart").join("p.db");
    {
        let server = server_at(Some(db.clone()));
        let sid = user(server.addr, "alice");
        act(server.addr, "/logout", "alice", &sid, json!({}));
    }
    let server = server_at(Some(db.clone()));
    login(server.addr, "alice");
    drop(server);
    let conn = rusqlite::Connection::open(&db).expect("open db");
    let kinds: Vec<String> = conn
        .prepare("SELECT kind FROM activity WHERE user = 'alice' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kinds, ["register", "login", "logout", "login"], "{kinds:?}");
}
