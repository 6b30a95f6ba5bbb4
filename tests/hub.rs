//! The notification hub over real sockets: publishing and its refusals
//! (401, 413, bad names, private channels), subscribing on every framing,
//! resume by `Last-Event-ID` and `?since=`, gap events, long-poll batches
//! and timeouts, addressed notifications with `/notify` and `/poll`.

mod util;

use std::time::Duration;

use altsock::server::{ServerConfig, Session};
use altsock::Engine;
use util::{find, request, spawn_server, Client, Resp, TestServer};

pub const TOKEN: &str = "s3cret";

type Server = TestServer<altsock::server::Job>;

/// A server with the publisher token set, a 10 ms tick, and `configure` applied.
fn server(configure: impl FnOnce(&mut ServerConfig)) -> Server {
    let builder = Engine::builder().poll_interval(Duration::from_millis(10));
    spawn_server(builder, |c| {
        c.publish_token = Some(TOKEN.into());
        configure(c);
    })
}

/// `POST path` with `body` and the given bearer token on a new connection.
fn post(s: &Server, path: &str, token: Option<&str>, body: &str) -> Resp {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request(s.addr, &raw)
}

fn publish(s: &Server, channel: &str, body: &str) -> Resp {
    let r = post(s, &format!("/pub/{channel}"), Some(TOKEN), body);
    assert_eq!(r.status, 202, "{}", r.text());
    r
}

fn get(s: &Server, target: &str) -> Resp {
    request(s.addr, &format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n"))
}

/// `client=ID&key=KEY` for hub client `id`, its key minted with the
/// publisher token (`POST /hub/client`).
fn client(s: &Server, id: &str) -> String {
    let r = post(
        s,
        "/hub/client",
        Some(TOKEN),
        &format!(r#"{{"client":"{id}"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    let key = v["key"].as_str().expect("a key");
    format!("client={id}&key={key}")
}

/// Opens `GET target` with extra header lines and reads the stream head.
fn open(s: &Server, target: &str, headers: &str) -> (Client, String) {
    let mut c = send_get(s, target, headers);
    let head = c.read_through("\r\n\r\n");
    (c, head)
}

/// Sends `GET target` and returns the connection without reading.
fn send_get(s: &Server, target: &str, headers: &str) -> Client {
    let mut c = s.connect();
    c.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").as_bytes());
    c
}

/// The ids of the JSON-line messages (`{"id":N,...`) in `text`, in order.
fn line_ids(text: &str) -> Vec<u64> {
    text.match_indices("{\"id\":")
        .filter_map(|(i, m)| {
            let rest = &text[i + m.len()..];
            let end = rest.find(|c: char| !c.is_ascii_digit())?;
            rest[..end].parse().ok()
        })
        .collect()
}

/// Waits until the stream on `c` carries `n` JSON-line messages.
fn read_lines(c: &mut Client, n: usize) -> Vec<u64> {
    c.read_until("messages", |b| {
        line_ids(&String::from_utf8_lossy(b)).len() >= n
    });
    line_ids(&String::from_utf8_lossy(&c.buf))
}

/// The subscriber count the hub reports for `channel`.
fn subscribers(s: &Server, channel: &str) -> u64 {
    let raw = format!("GET /hub/stats?channel={channel} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    let r = request(s.addr, &raw);
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("stats JSON");
    v["topic"]["subscribers"].as_u64().unwrap_or(0)
}

fn wait_subscribers(s: &Server, channel: &str, n: u64) {
    util::wait_for("subscribers", || subscribers(s, channel) == n);
}

#[test]
fn publishing_needs_the_token() {
    let s = server(|_| {});
    assert_eq!(post(&s, "/pub/news", None, "x").status, 401);
    assert_eq!(post(&s, "/pub/news", Some("wrong"), "x").status, 401);
    assert_eq!(post(&s, "/notify", None, "{}").status, 401);
    let ok = publish(&s, "news", "x");
    assert_eq!(ok.text(), "{\"id\":1,\"subscribers\":0}");
    let none = spawn_server(Engine::builder(), |_| {});
    let raw = format!("POST /pub/news HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1\r\n\r\nx");
    assert_eq!(
        request(none.addr, &raw).status,
        401,
        "no token configured refuses all"
    );
}

#[test]
fn oversized_messages_get_413() {
    let s = server(|c| c.hub.max_message = 100);
    let big = "x".repeat(101);
    assert_eq!(post(&s, "/pub/news", Some(TOKEN), &big).status, 413);
    assert_eq!(post(&s, "/pub/news", Some(TOKEN), &big[..100]).status, 202);
    let note = format!("{{\"client\":\"c\",\"app\":\"a\",\"data\":\"{big}\"}}");
    assert_eq!(post(&s, "/notify", Some(TOKEN), &note).status, 413);
    let d = server(|_| {});
    let over = "y".repeat(64 * 1024 + 1);
    assert_eq!(
        post(&d, "/pub/news", Some(TOKEN), &over).status,
        413,
        "64 KiB default"
    );
}

#[test]
fn bad_channel_names_get_400() {
    let s = server(|_| {});
    let long = "a".repeat(256);
    for name in ["", "a%20b", "a/b", "caf%C3%A9", "a*b", long.as_str()] {
        assert_eq!(
            post(&s, &format!("/pub/{name}"), Some(TOKEN), "x").status,
            400,
            "{name}"
        );
        assert_eq!(get(&s, &format!("/sub/{name}")).status, 400, "{name}");
    }
    publish(&s, &"a".repeat(255), "x");
    publish(&s, "Aa0_.:-z", "x");
    let short = server(|c| c.hub.max_name = 4);
    assert_eq!(post(&short, "/pub/abcde", Some(TOKEN), "x").status, 400);
    assert_eq!(get(&s, "/sub/news?transport=carrier-pigeon").status, 400);
}

#[test]
fn private_channels_need_a_session() {
    let s = server(|_| {});
    assert_eq!(get(&s, "/sub/private-room").status, 403);
    assert_eq!(get(&s, "/sub/private-room?me=ann&id=sid1").status, 403);
    let other = server(|c| c.hub.private_prefix = "secret-".into());
    assert_eq!(get(&other, "/sub/secret-x").status, 403);
    let (_c, head) = open(&other, "/sub/private-room", "");
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "another prefix leaves private- public"
    );
}

#[test]
fn a_users_own_private_channel_streams_to_their_session() {
    let builder = Engine::builder().poll_interval(Duration::from_millis(10));
    let mut config = ServerConfig {
        db_path: util::temp_dir("db").join("altsock.db"),
        publish_token: Some(TOKEN.into()),
        ..ServerConfig::default()
    };
    config.hub.buffer_len = 10;
    let mut router = altsock::server::ServerRouter::new(config).expect("router");
    let session = Session {
        user: "ann".into(),
        guest: false,
    };
    router.shared.sessions.insert("sid1".into(), session);
    let s = util::spawn(builder, router);
    let cookie = "Cookie: altsock_session=sid1\r\n";
    let (mut by_cookie, head) = open(&s, "/sub/private-user-ann", cookie);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (mut by_param, head) = open(&s, "/sub/private-user-ann?me=ann&id=sid1", "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (_, head) = open(&s, "/sub/private-user-ann?me=bob&id=sid1", "");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let raw = format!("POST /pub/private-user-ann HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(request(s.addr, &raw).status, 202);
    let position = "id: 0\nevent: position\ndata: \n\n";
    assert_eq!(by_cookie.read_through("\n\n"), position);
    assert_eq!(by_param.read_through("\n\n"), position);
    assert_eq!(by_cookie.read_through("\n\n"), "id: 1\ndata: hi\n\n");
    assert_eq!(by_param.read_through("\n\n"), "id: 1\ndata: hi\n\n");
}

#[test]
fn sse_carries_ids_and_resumes_with_last_event_id() {
    let s = server(|_| {});
    let (mut sub, head) = open(&s, "/sub/news", "Accept: text/event-stream\r\n");
    assert!(head.contains("text/event-stream"), "{head}");
    assert_eq!(
        sub.read_through("\n\n"),
        "id: 0\nevent: position\ndata: \n\n",
        "where a new subscriber starts, for EventSource's Last-Event-ID"
    );
    wait_subscribers(&s, "news", 1);
    for body in ["one", "two\nlines", "three"] {
        publish(&s, "news", body);
    }
    assert_eq!(sub.read_through("\n\n"), "id: 1\ndata: one\n\n");
    assert_eq!(
        sub.read_through("\n\n"),
        "id: 2\ndata: two\ndata: lines\n\n"
    );
    assert_eq!(sub.read_through("\n\n"), "id: 3\ndata: three\n\n");
    drop(sub);
    publish(&s, "news", "four");
    publish(&s, "news", "five");
    let (mut again, _) = open(
        &s,
        "/sub/news",
        "Accept: text/event-stream\r\nLast-Event-ID: 3\r\n",
    );
    assert_eq!(again.read_through("\n\n"), "id: 4\ndata: four\n\n");
    assert_eq!(again.read_through("\n\n"), "id: 5\ndata: five\n\n");
    publish(&s, "news", "six");
    assert_eq!(again.read_through("\n\n"), "id: 6\ndata: six\n\n");
    let (mut by_since, _) = open(&s, "/sub/news?since=5", "");
    assert_eq!(by_since.read_through("\n\n"), "id: 6\ndata: six\n\n");
}

#[test]
fn since_resumes_on_every_streaming_framing() {
    let s = server(|_| {});
    for i in 1..=3 {
        publish(&s, "feed", &format!("m{i}"));
    }
    let mut streams = Vec::new();
    for transport in ["chunked", "multipart", "raw"] {
        let (mut c, head) = open(&s, &format!("/sub/feed?transport={transport}&since=1"), "");
        assert!(head.starts_with("HTTP/1.1 200"), "{transport}: {head}");
        assert_eq!(read_lines(&mut c, 2), vec![2, 3], "{transport}");
        let text = String::from_utf8_lossy(&c.buf).into_owned();
        assert!(
            text.contains(r#"{"id":2,"channel":"feed","data":"m2"}"#),
            "{text}"
        );
        streams.push(c);
    }
    let (mut multi, head) = open(
        &s,
        "/sub/feed?since=2",
        "Accept: multipart/x-mixed-replace\r\n",
    );
    assert!(head.contains("multipart/x-mixed-replace"), "{head}");
    assert_eq!(read_lines(&mut multi, 1), vec![3]);
    wait_subscribers(&s, "feed", 4);
    publish(&s, "feed", "m4");
    assert_eq!(read_lines(&mut multi, 2), vec![3, 4]);
    for c in &mut streams {
        assert_eq!(read_lines(c, 3), vec![2, 3, 4]);
    }
}

#[test]
fn longpoll_returns_everything_after_since_at_once() {
    let s = server(|_| {});
    for i in 1..=4 {
        publish(&s, "lp", &format!("m{i}"));
    }
    let r = get(&s, "/sub/lp?transport=longpoll&since=1");
    assert_eq!(r.status, 200);
    assert_eq!(line_ids(&r.text()), vec![2, 3, 4]);
    assert_eq!(r.header("X-Altsock-Id"), Some("4"));
    assert_eq!(r.text().lines().count(), 3, "{}", r.text());
    let mut c = send_get(&s, "/sub/lp?transport=longpoll&since=4", "");
    wait_subscribers(&s, "lp", 1);
    publish(&s, "lp", "m5");
    let head_and_body = c.read_through("\"m5\"}\n");
    assert!(head_and_body.starts_with("HTTP/1.1 200"), "{head_and_body}");
    assert!(head_and_body.contains("X-Altsock-Id: 5"), "{head_and_body}");
    wait_subscribers(&s, "lp", 0);
}

#[test]
fn longpoll_times_out_with_204() {
    let s = server(|c| c.hub.longpoll_timeout = Duration::from_millis(100));
    let started = std::time::Instant::now();
    let r = get(&s, "/sub/quiet?transport=longpoll");
    assert_eq!(r.status, 204);
    assert!(
        started.elapsed() >= Duration::from_millis(90),
        "{:?}",
        started.elapsed()
    );
    let r = get(&s, &format!("/poll?{}", client(&s, "nobody")));
    assert_eq!(r.status, 204);
    assert_eq!(r.header("X-Altsock-Last"), Some("0"));
    let s = server(|c| c.hub.longpoll_timeout = Duration::from_millis(50));
    publish(&s, "quiet", "m1");
    publish(&s, "quiet", "m2");
    let r = get(&s, "/sub/quiet?transport=longpoll");
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("X-Altsock-Last"),
        Some("2"),
        "where to resume from"
    );
    let (mut sse, _) = open(&s, "/sub/quiet", "");
    assert_eq!(
        sse.read_through("\n\n"),
        "id: 2\nevent: position\ndata: \n\n"
    );
}

#[test]
fn a_lost_range_arrives_as_a_gap_event() {
    let s = server(|c| c.hub.buffer_len = 3);
    for i in 1..=6 {
        publish(&s, "g", &format!("m{i}"));
    }
    let (mut sse, _) = open(&s, "/sub/g", "Last-Event-ID: 1\r\n");
    assert_eq!(
        sse.read_through("\n\n"),
        "id: 3\nevent: gap\ndata: {\"from\":2,\"to\":3,\"channel\":\"g\"}\n\n"
    );
    assert_eq!(sse.read_through("\n\n"), "id: 4\ndata: m4\n\n");
    let r = get(&s, "/sub/g?transport=longpoll&since=0");
    let lines: Vec<&str> = r
        .body
        .split(|&b| b == b'\n')
        .map(|l| std::str::from_utf8(l).unwrap_or(""))
        .collect();
    assert_eq!(
        lines[0],
        r#"{"event":"gap","id":3,"from":1,"to":3,"channel":"g"}"#
    );
    assert_eq!(line_ids(&r.text()), vec![4, 5, 6]);
    let (mut chunked, _) = open(&s, "/sub/g?transport=chunked&since=2", "");
    chunked.read_until("gap", |b| find(b, b"\"from\":3,\"to\":3").is_some());
    let aged = server(|c| c.hub.buffer_age = Duration::from_millis(30));
    publish(&aged, "old", "m1");
    std::thread::sleep(Duration::from_millis(80));
    let r = get(&aged, "/sub/old?transport=longpoll&since=0");
    assert!(
        r.text()
            .starts_with(r#"{"event":"gap","id":1,"from":1,"to":1"#),
        "{}",
        r.text()
    );
}

#[test]
fn notify_and_poll_serve_several_apps_per_client() {
    let s = server(|_| {});
    let note = |client: &str, app: &str, data: &str| {
        let body = format!(r#"{{"client":"{client}","app":"{app}","data":{data}}}"#);
        let r = post(&s, "/notify", Some(TOKEN), &body);
        assert_eq!(r.status, 202, "{}", r.text());
    };
    note("browser1", "mail", r#"{"unread":3}"#);
    note("browser1", "calendar", r#""meeting at 3""#);
    note("browser2", "mail", r#"{"unread":1}"#);
    let (b1, b2) = (client(&s, "browser1"), client(&s, "browser2"));
    let r = get(&s, &format!("/poll?{b1}"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "{\"id\":1,\"app\":\"mail\",\"data\":{\"unread\":3}}\n{\"id\":2,\"app\":\"calendar\",\"data\":\"meeting at 3\"}\n"
    );
    let r = get(&s, &format!("/poll?{b2}&since=0"));
    assert_eq!(
        r.text(),
        "{\"id\":1,\"app\":\"mail\",\"data\":{\"unread\":1}}\n"
    );
    let mut held = send_get(&s, &format!("/poll?{b1}&since=2"), "");
    util::wait_for("poll held", || {
        let raw = format!("GET /hub/stats?client=browser1 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
        request(s.addr, &raw).text().contains("\"subscribers\":1")
    });
    note("browser1", "chat", r#"["hi"]"#);
    let text = held.read_through("]}\n");
    assert!(
        text.contains("{\"id\":3,\"app\":\"chat\",\"data\":[\"hi\"]}"),
        "{text}"
    );
    let (mut sse, _) = open(
        &s,
        &format!("/poll?{b1}&since=1"),
        "Accept: text/event-stream\r\n",
    );
    let event = sse.read_through("\n\n");
    assert_eq!(
        event,
        "id: 2\ndata: {\"id\":2,\"app\":\"calendar\",\"data\":\"meeting at 3\"}\n\n"
    );
    for bad in [
        r#"{"app":"mail"}"#,
        r#"{"client":"a b","app":"mail"}"#,
        "not json",
    ] {
        assert_eq!(post(&s, "/notify", Some(TOKEN), bad).status, 400, "{bad}");
    }
    assert_eq!(get(&s, "/poll").status, 400);
}

#[test]
fn serves_the_browser_library() {
    let s = server(|_| {});
    let r = get(&s, "/altsock.js");
    assert_eq!(r.status, 200);
    assert!(r
        .header("Content-Type")
        .unwrap_or("")
        .starts_with("application/javascript"));
    assert!(
        r.text().contains("BroadcastChannel"),
        "shares one connection across tabs"
    );
}

#[test]
fn poll_with_channels_carries_the_mailbox_and_channels_on_one_connection() {
    let s = server(|_| {});
    publish(&s, "news", "n1");
    let note = r#"{"client":"c1","app":"mail","data":{"unread":1}}"#;
    assert_eq!(post(&s, "/notify", Some(TOKEN), note).status, 202);
    let c1 = client(&s, "c1");
    let r = get(&s, &format!("/poll?{c1}&channels=news@0,sports"));
    assert_eq!(
        r.text(),
        concat!(
            "{\"id\":1,\"app\":\"mail\",\"data\":{\"unread\":1}}\n",
            "{\"id\":1,\"channel\":\"news\",\"data\":\"n1\"}\n",
            "{\"event\":\"position\",\"id\":0,\"channel\":\"sports\"}\n",
        )
    );
    let target = format!("/poll?{c1}&since=1&channels=news@1,sports@0");
    let mut held = send_get(&s, &target, "");
    util::wait_for("held", || subscribers(&s, "sports") == 1);
    assert_eq!(subscribers(&s, "news"), 1);
    publish(&s, "sports", "s1");
    let text = held.read_through("\"s1\"}\n");
    assert!(
        text.contains("{\"id\":1,\"channel\":\"sports\",\"data\":\"s1\"}"),
        "{text}"
    );
    util::wait_for("released", || subscribers(&s, "news") == 0);

    let target = format!("/poll?{c1}&since=1&channels=news@1,sports@1");
    let (mut sse, head) = open(&s, &target, "Accept: text/event-stream\r\n");
    assert!(head.contains("text/event-stream"), "{head}");
    util::wait_for("sse", || subscribers(&s, "sports") == 1);
    publish(&s, "news", "n2");
    let note = r#"{"client":"c1","app":"chat","data":"hi"}"#;
    assert_eq!(post(&s, "/notify", Some(TOKEN), note).status, 202);
    assert_eq!(
        sse.read_through("\n\n"),
        "id: 2\ndata: {\"id\":2,\"channel\":\"news\",\"data\":\"n2\"}\n\n"
    );
    assert_eq!(
        sse.read_through("\n\n"),
        "id: 2\ndata: {\"id\":2,\"app\":\"chat\",\"data\":\"hi\"}\n\n"
    );
    drop(sse);
    util::wait_for("closed", || {
        subscribers(&s, "sports") == 0 && subscribers(&s, "news") == 0
    });

    let many: Vec<String> = (0..65).map(|i| format!("c{i}")).collect();
    let too_many = format!("/poll?{c1}&channels={}", many.join(","));
    assert_eq!(get(&s, &too_many).status, 400);
    assert_eq!(get(&s, &format!("/poll?{c1}&channels=a%20b")).status, 400);
    assert_eq!(get(&s, &format!("/poll?{c1}&channels=news@x")).status, 400);
    let private = get(&s, &format!("/poll?{c1}&channels=private-x"));
    assert_eq!(private.status, 403);
}

/// The hub's count of channels in its table.
fn channel_count(s: &Server) -> u64 {
    let raw =
        format!("GET /hub/stats HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    let v: serde_json::Value =
        serde_json::from_slice(&request(s.addr, &raw).body).expect("stats JSON");
    v["channels"].as_u64().unwrap_or(u64::MAX)
}

#[test]
fn idle_channels_are_evicted_and_ids_keep_increasing_after() {
    let s = server(|c| {
        c.hub.buffer_age = Duration::from_millis(40);
        c.hub.longpoll_timeout = Duration::from_millis(50);
    });
    publish(&s, "e", "m1");
    publish(&s, "busy", "b1");
    let (mut held, _) = open(&s, "/sub/busy", "");
    assert_eq!(channel_count(&s), 2);
    util::wait_for("the idle channel's eviction", || channel_count(&s) == 1);
    assert_eq!(subscribers(&s, "busy"), 1, "a subscribed channel stays");
    let r = publish(&s, "e", "m2");
    assert!(
        r.text().contains("\"id\":2"),
        "ids go on, not back to 1: {}",
        r.text()
    );
    let r = get(&s, "/sub/e?transport=longpoll&since=0");
    assert!(
        r.text()
            .starts_with(r#"{"event":"gap","id":1,"from":1,"to":1"#),
        "the evicted range is reported lost: {}",
        r.text()
    );
    assert_eq!(line_ids(&r.text()), vec![2]);
    publish(&s, "busy", "b2");
    assert_eq!(
        held.read_through("\n\n"),
        "id: 1\nevent: position\ndata: \n\n"
    );
    assert_eq!(held.read_through("\n\n"), "id: 2\ndata: b2\n\n");
}

#[test]
fn a_table_at_its_cap_refuses_new_topics_with_503() {
    let s = server(|c| c.hub.max_topics = 2);
    publish(&s, "a", "1");
    publish(&s, "b", "1");
    let r = post(&s, "/pub/c", Some(TOKEN), "1");
    assert_eq!(
        r.status,
        202,
        "publishers may make twice the cap: {}",
        r.text()
    );
    let r = post(&s, "/pub/c2", Some(TOKEN), "1");
    assert_eq!(r.status, 202, "{}", r.text());
    let r = post(&s, "/pub/c3", Some(TOKEN), "1");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(get(&s, "/sub/d").status, 503);
    assert_eq!(get(&s, &format!("/poll?{}", client(&s, "z"))).status, 503);
    let r = post(
        &s,
        "/notify",
        Some(TOKEN),
        r#"{"client":"z","app":"x","data":1}"#,
    );
    assert_eq!(r.status, 503, "{}", r.text());
    publish(&s, "a", "2");
    assert_eq!(channel_count(&s), 4);
}

#[test]
fn allowed_origins_get_cors_headers_on_answers_streams_and_long_polls() {
    let s = server(|c| {
        c.hub.allow_origins = vec!["http://app.example".into()];
        c.hub.longpoll_timeout = Duration::from_millis(30);
    });
    let from = |origin: &str, method: &str, target: &str| {
        request(
            s.addr,
            &format!("{method} {target} HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\n\r\n"),
        )
    };
    let pre = from("http://app.example", "OPTIONS", "/pub/x");
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.header("Access-Control-Allow-Origin"),
        Some("http://app.example")
    );
    assert!(pre
        .header("Access-Control-Allow-Headers")
        .unwrap_or("")
        .contains("Authorization"));
    assert_eq!(from("http://evil.example", "OPTIONS", "/pub/x").status, 403);

    let published = from("http://app.example", "POST", "/pub/x");
    assert_eq!(published.status, 202);
    assert_eq!(
        published.header("Access-Control-Allow-Credentials"),
        Some("true")
    );
    let foreign = from("http://evil.example", "POST", "/pub/x");
    assert_eq!(foreign.header("Access-Control-Allow-Origin"), None);

    let timed_out = from(
        "http://app.example",
        "GET",
        "/sub/x?transport=longpoll&since=2", // both posts above published
    );
    assert_eq!(timed_out.status, 204);
    assert_eq!(
        timed_out.header("Access-Control-Allow-Origin"),
        Some("http://app.example")
    );
    assert!(timed_out
        .header("Access-Control-Expose-Headers")
        .unwrap_or("")
        .contains("X-Altsock-Last"));
    let (_, head) = open(&s, "/sub/x", "Origin: http://app.example\r\n");
    assert!(
        head.contains("Access-Control-Allow-Origin: http://app.example\r\n"),
        "{head}"
    );
}

#[test]
fn without_allowed_origins_there_are_no_cors_headers() {
    let s = server(|_| {});
    let r = request(
        s.addr,
        "OPTIONS /pub/x HTTP/1.1\r\nHost: t\r\nOrigin: http://app.example\r\n\r\n",
    );
    assert_eq!(r.status, 403);
    let (_, head) = open(&s, "/sub/x", "Origin: http://app.example\r\n");
    assert!(!head.contains("Access-Control"), "{head}");
}
