//! The presence server against hostile clients (issue 7, findings 1 to 6):
//! the password throttle under concurrency and per address, group passwords,
//! the password cap and the bounded hashing queue, memory across logins,
//! session expiry and session ids kept out of pages, and guests.

mod presence_support;
mod util;

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use presence_support::*;
use serde_json::json;
use util::Client;

/// A JSON POST from `source` (any 127.0.0.0/8 address).
fn post_from(source: &str, addr: SocketAddr, path: &str, body: &serde_json::Value) -> util::Resp {
    let mut client = Client::connect_from(source, addr);
    client.send(json_post(addr, path, body).as_bytes());
    client.read_response()
}

/// Sends every request at once (each on its own connection, released
/// together) and returns the answers in order.
fn all_at_once(addr: SocketAddr, bodies: Vec<(String, serde_json::Value)>) -> Vec<util::Resp> {
    let barrier = Arc::new(Barrier::new(bodies.len()));
    let threads: Vec<_> = bodies
        .into_iter()
        .map(|(path, body)| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let raw = json_post(addr, &path, &body);
                barrier.wait();
                client.send(raw.as_bytes());
                // Answers may wait behind many hashes on a loaded machine.
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    if util::find(&client.buf, b"\r\n\r\n").is_some() {
                        return client.read_response();
                    }
                    assert!(Instant::now() < deadline, "no answer");
                    assert_ne!(client.fill(), Some(0), "closed without an answer");
                }
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect()
}

fn statuses(answers: &[util::Resp]) -> Vec<u16> {
    let mut s: Vec<u16> = answers.iter().map(|r| r.status).collect();
    s.sort_unstable();
    s
}

// ---- 1. attempts count before hashing -----------------------------------

#[test]
fn parallel_wrong_logins_cannot_outrun_the_throttle() {
    let server = server();
    let a = server.addr;
    register(a, "alice");
    let guesses = (0..60)
        .map(|i| {
            let body = json!({"username": "alice", "password": format!("guess {i}")});
            ("/login".to_string(), body)
        })
        .collect();
    let answers = all_at_once(a, guesses);
    let s = statuses(&answers);
    let wrong = s.iter().filter(|&&c| c == 401).count();
    let throttled = s.iter().filter(|&&c| c == 429).count();
    assert_eq!((wrong, throttled), (5, 55), "{s:?}");
    assert!(answers
        .iter()
        .filter(|r| r.status == 429)
        .all(|r| r.header("retry-after").is_some()));
}

// ---- 2. per user and address; group passwords; the unlocked set ---------

#[test]
fn guesses_from_one_address_do_not_lock_the_owner_out_elsewhere() {
    let server = server();
    let a = server.addr;
    register(a, "alice");
    let guess = json!({"username": "alice", "password": "guess guess"});
    for _ in 0..5 {
        assert_eq!(post_from("127.0.0.1", a, "/login", &guess).status, 401);
    }
    assert_eq!(post_from("127.0.0.1", a, "/login", &guess).status, 429);
    let right = json!({"username": "alice", "password": "correct horse"});
    let owner = post_from("127.0.0.2", a, "/login", &right);
    assert_eq!(owner.status, 200, "{}", owner.text());
    // The guesser's address stays throttled for alice.
    assert_eq!(post_from("127.0.0.1", a, "/login", &right).status, 429);
}

#[test]
fn group_passwords_are_throttled_too() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let made = group_with_password(a, "alice", &alice, "club", "sesame");
    assert_eq!(made.status, 201, "{}", made.text());
    for _ in 0..5 {
        assert_eq!(get(a, "/call/club?password=wrong").status, 403);
    }
    let r = get(a, "/call/club?password=wrong");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    // Joining with the password shares the group's count at this address.
    let bob = user(a, "bob");
    let join = act(
        a,
        "/groups/club/join",
        "bob",
        &bob,
        json!({"password": "sesame"}),
    );
    assert_eq!(join.status, 429, "{}", join.text());
    // Another address is not locked out.
    let mut c = Client::connect_from("127.0.0.3", a);
    c.send(format!("GET /call/club?password=sesame HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes());
    assert_eq!(c.read_response().status, 200);
}

#[test]
fn groups_unlocked_by_a_session_are_forgotten_when_it_ends() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    group_with_password(a, "alice", &alice, "club", "sesame");
    let bob = user(a, "bob");
    let page = get_with_cookie(a, "/call/club?password=sesame", &bob);
    assert_eq!(page.status, 200);
    assert_eq!(metric(a, "altsock_presence_unlocked_groups"), 1);
    assert_eq!(act(a, "/logout", "bob", &bob, json!({})).status, 200);
    assert_eq!(metric(a, "altsock_presence_unlocked_groups"), 0);
}

// ---- 3. the password cap and the hashing queue -------------------------

#[test]
fn passwords_over_1_kib_get_400_before_any_hashing() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let long = "x".repeat(1025);
    let just = "x".repeat(1024);
    let r = post(a, "/login", &json!({"username": "alice", "password": long}));
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(a, "/login", &json!({"username": "alice", "password": just}));
    assert_eq!(r.status, 401, "1024 bytes is still a password");
    let r = post(
        a,
        "/register",
        &json!({"username": "bob", "password": long}),
    );
    assert_eq!(r.status, 400);
    let r = group_with_password(a, "alice", &alice, "club", &long);
    assert_eq!(r.status, 400, "{}", r.text());
    group_with_password(a, "alice", &alice, "club2", "sesame");
    let r = get(a, &format!("/call/club2?password={long}"));
    assert_eq!(r.status, 400);
    let r = act(
        a,
        "/groups/club2/join",
        "alice",
        &alice,
        json!({"password": long}),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn a_full_hashing_queue_answers_503_with_retry_after() {
    let server = server_with(|c| {
        c.presence.hash_threads = 1;
        c.presence.hash_queue = 2;
    });
    let a = server.addr;
    let logins = (0..16)
        .map(|i| {
            let body = json!({"username": format!("user{i}"), "password": "whatever it is"});
            ("/login".to_string(), body)
        })
        .collect();
    let answers = all_at_once(a, logins);
    let s = statuses(&answers);
    let busy: Vec<&util::Resp> = answers.iter().filter(|r| r.status == 503).collect();
    let checked = s.iter().filter(|&&c| c == 401).count();
    assert!(!busy.is_empty(), "{s:?}");
    assert!(
        checked >= 3,
        "one hashing and two waiting always fit: {s:?}"
    );
    assert_eq!(busy.len() + checked, 16, "{s:?}");
    assert!(busy.iter().all(|r| r.header("retry-after").is_some()));
}

#[test]
fn queued_work_of_a_closed_connection_is_dropped() {
    let server = server_with(|c| c.presence.hash_threads = 1);
    let a = server.addr;
    // Three registrations: one hashing, two waiting.
    let mut ahead: Vec<Client> = (0..3)
        .map(|i| {
            let mut c = Client::connect(a);
            let body = json!({"username": format!("early{i}"), "password": "correct horse"});
            c.send(json_post(a, "/register", &body).as_bytes());
            c
        })
        .collect();
    util::wait_for("two registrations waiting", || {
        metric(a, "altsock_presence_hash_waiting") == 2
    });
    // A fourth waits behind them, and its client leaves.
    let mut ghost = Client::connect(a);
    let body = json!({"username": "ghost", "password": "correct horse"});
    ghost.send(json_post(a, "/register", &body).as_bytes());
    util::wait_for("three registrations waiting", || {
        metric(a, "altsock_presence_hash_waiting") == 3
    });
    drop(ghost);
    util::wait_for("the ghost's work dropped", || {
        metric(a, "altsock_presence_hash_dropped_total") == 1
    });
    for c in &mut ahead {
        assert_eq!(c.read_response().status, 201);
    }
    // Never hashed, never stored, and its name is free again.
    let again = post(
        a,
        "/register",
        &json!({"username": "ghost", "password": "correct horse"}),
    );
    assert_eq!(again.status, 201, "{}", again.text());
}

// ---- 4. memory -----------------------------------------------------------

/// The resident set of process `pid` in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// Kills the child on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_real_server_stays_under_48_mb_across_logins() {
    let dir = util::temp_dir("rss");
    let (child, a) = util::start_serve_process(&dir.join("rss.db"), &[]);
    let child = Child(child);
    for i in 0..25 {
        let name = format!("user{i}");
        register(a, &name);
        login(a, &name);
    }
    let bytes = rss(child.0.id());
    assert!(
        bytes <= 48 << 20,
        "RSS {} MB after 25 registrations and logins",
        bytes >> 20
    );
}

// ---- 5. sessions ---------------------------------------------------------

#[test]
fn unused_sessions_expire_and_use_keeps_them() {
    let server = server_with(|c| {
        c.presence.sessions.idle = Duration::from_millis(700);
        c.presence.sessions.absolute = Duration::from_secs(3600);
    });
    let a = server.addr;
    let sid = user(a, "alice");
    let groups = || get(a, &format!("/groups?me=alice&id={sid}")).status;
    let mut last_ok = Instant::now();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(250));
        let sent = Instant::now();
        let status = groups();
        if sent.duration_since(last_ok) < Duration::from_millis(600) {
            assert_eq!(status, 200, "used within the idle limit");
        }
        if status == 200 {
            last_ok = Instant::now();
        }
    }
    // Watched without using it (a use would restart its idle clock).
    util::wait_for("the idle session to end", || {
        metric(a, "altsock_presence_sessions") == 0
    });
    assert!(
        last_ok.elapsed() >= Duration::from_millis(700),
        "ended only after the idle limit"
    );
    assert_eq!(groups(), 403);
}

#[test]
fn a_session_ends_at_its_absolute_limit_even_with_a_held_pipe() {
    let server = server_with(|c| {
        c.presence.sessions.absolute = Duration::from_millis(800);
    });
    let a = server.addr;
    let started = Instant::now();
    register(a, "alice");
    let r = login_response(a, "alice");
    let sid = body(&r)["session"].as_str().unwrap().to_string();
    let cookie = r.header("set-cookie").unwrap().to_string();
    assert!(cookie.contains("Max-Age=1"), "{cookie}");
    let mut pipe = Pipe::open(a, "alice", &sid, false);
    let rest = pipe.client.read_to_close();
    assert!(started.elapsed() >= Duration::from_millis(800), "{rest}");
    assert_eq!(get(a, &format!("/jchat?me=alice&id={sid}")).status, 403);
    assert_eq!(metric(a, "altsock_presence_sessions"), 0);
}

#[test]
fn the_default_cookie_lasts_as_long_as_the_session() {
    let server = server();
    let a = server.addr;
    register(a, "alice");
    let r = login_response(a, "alice");
    let cookie = r.header("set-cookie").unwrap();
    assert!(cookie.contains("Max-Age=2592000"), "30 days: {cookie}");
}

#[test]
fn pages_carry_no_session_id_and_work_by_the_cookie_alone() {
    let server = server();
    let a = server.addr;
    let sid = user(a, "alice");
    let bob = user(a, "bob");
    for path in ["/", "/home", "/call/alice", "/call/bob"] {
        let page = get_with_cookie(a, path, &sid);
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.text().contains(&sid), "{path} shows the session id");
    }
    // Bob invites alice: her next page carries the invitation, not her id.
    let r = act(a, "/initchat", "bob", &bob, json!({"to": "alice"}));
    assert_eq!(r.status, 200);
    let page = get_with_cookie(a, "/home", &sid).text();
    assert!(page.contains("chatwin invite"));
    assert!(!page.contains(&sid), "the invitation shows the session id");
    // The cookie alone is enough for the API the pages use.
    assert_eq!(get_with_cookie(a, "/groups", &sid).status, 200);
    let mut c = Client::connect(a);
    c.send(
        format!("GET /jchat HTTP/1.1\r\nHost: t\r\nCookie: altsock_session={sid}\r\n\r\n")
            .as_bytes(),
    );
    assert!(c.read_through("\r\n\r\n").starts_with("HTTP/1.1 200"));
}

// ---- 6. guests -----------------------------------------------------------

/// A guest from `/call/alice`: (name, session id).
fn guest(a: SocketAddr) -> (String, String) {
    let page = get(a, "/call/alice");
    assert_eq!(page.status, 200);
    let html = page.text();
    let at = html.find("\"me\":\"").expect("boot") + 6;
    let name = html[at..].split('"').next().unwrap().to_string();
    (name, session_of(&page))
}

#[test]
fn a_guest_evicted_while_online_is_ended() {
    let server = server_with(|c| c.presence.max_guests = 1);
    let a = server.addr;
    let alice = user(a, "alice");
    let (first, first_sid) = guest(a);
    let mut pipe = Pipe::open(a, &first, &first_sid, false);
    // Alice invites the guest; the invitation waits for the guest's page.
    let r = act(a, "/initchat", "alice", &alice, json!({"to": first}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(pipe.next_of("initChat").data["with"], "alice");
    assert_eq!(metric(a, "altsock_presence_invitations"), 1);
    // A second guest takes the only place: the first is ended.
    let (second, _) = guest(a);
    assert_ne!(first, second);
    pipe.client.read_to_close();
    let r = get(a, &format!("/jchat?me={first}&id={first_sid}"));
    assert_eq!(r.status, 403);
    assert_eq!(metric(a, "altsock_presence_guests"), 1);
    assert_eq!(
        metric(a, "altsock_presence_invitations"),
        0,
        "invitations to a departed guest are pruned"
    );
    // The ended guest cannot be reached any more.
    let r = send_chat(a, "alice", &alice, &first, "hi");
    assert_eq!(r.status, 404);
}

#[test]
fn a_guest_name_does_not_derive_from_its_session_id() {
    let server = server();
    let a = server.addr;
    user(a, "alice");
    for _ in 0..4 {
        let (name, sid) = guest(a);
        let bits = name.strip_prefix("guest-").expect("guest name");
        assert!(bits.len() >= 8, "{name}");
        assert!(!sid.contains(bits), "{name} is part of {sid}");
    }
}

#[test]
fn guests_without_a_pipe_are_evicted_before_online_ones() {
    let server = server_with(|c| c.presence.max_guests = 2);
    let a = server.addr;
    let alice = user(a, "alice");
    let (online, online_sid) = guest(a);
    let mut pipe = Pipe::open(a, &online, &online_sid, false);
    let (idle, idle_sid) = guest(a);
    // A third guest: the idle one goes, the online one stays.
    guest(a);
    let messages = |me: &str, sid: &str| get(a, &format!("/messages?me={me}&id={sid}")).status;
    assert_eq!(
        messages(&online, &online_sid),
        200,
        "the online guest stays"
    );
    assert_eq!(messages(&idle, &idle_sid), 403, "the idle guest went");
    assert_eq!(metric(a, "altsock_presence_guests"), 2);
    // The online guest's held pipe still carries events.
    let r = send_chat(a, "alice", &alice, &online, "still here?");
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(pipe.next_of("chat").data["msg"], "still here?");
}
