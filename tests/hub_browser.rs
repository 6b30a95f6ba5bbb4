//! `/altsock.js` in a real headless Chromium: the browser gets its hub client
//! id and mailbox key from the server (both tabs share them), two tabs of one
//! page share one connection per stream (the server sees one subscriber),
//! both receive channel messages, each application handler receives only its
//! own app's notifications, the second tab takes over when the leader
//! closes, the library falls back to long-poll where SSE and WebSocket fail, and a
//! refused key makes it get a new client.

mod util;

use std::time::Duration;

use altsock::server::hub::TopicKey;
use altsock::server::Job;
use altsock::Engine;
use serde_json::{json, Value};
use util::browser::Browser;
use util::{request, spawn_server, TestServer, WAIT};

const TOKEN: &str = "browser";

type Server = TestServer<altsock::server::Job>;

fn server() -> Server {
    let builder = Engine::builder().poll_interval(Duration::from_millis(20));
    spawn_server(builder, |c| {
        c.publish_token = Some(TOKEN.into());
        c.hub.longpoll_timeout = Duration::from_millis(500);
    })
}

fn post(s: &Server, path: &str, body: &str) {
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = request(s.addr, &raw);
    assert_eq!(r.status, 202, "{}", r.text());
}

fn stats(s: &Server, query: &str) -> Value {
    let raw = format!(
        "GET /hub/stats?{query} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    );
    serde_json::from_slice(&request(s.addr, &raw).body).expect("stats JSON")
}

/// Loads the library into the current tab and connects (options merged
/// over `{retryDelay: 20}`), recording what the `news` channel and the `mail`
/// and `chat` apps receive. `prelude` runs first (to break `EventSource`,
/// say). Returns the hub client id the page got (`hub.ready`).
fn load_page(browser: &Browser, s: &Server, prelude: &str, options: &str) -> String {
    browser
        .navigate(&format!("http://{}/altsock.js", s.addr))
        .expect("navigate");
    let script = format!(
        "var done = arguments[0]; {prelude}
         fetch('/altsock.js').then(r => r.text()).then(code => {{
           (0, eval)(code);
           window.got = {{news: [], mail: [], chat: []}};
           window.hub = Altsock.connect(Object.assign({{retryDelay: 20}}, {options}));
           hub.subscribe('news', d => got.news.push(d));
           hub.app('mail', d => got.mail.push(d));
           hub.app('chat', d => got.chat.push(d));
           return hub.ready;
         }}).then(id => done({{client: id}})).catch(e => done(String(e)));"
    );
    let loaded = browser.execute_async(&script, json!([])).expect("load");
    let client = loaded["client"].as_str();
    client
        .unwrap_or_else(|| panic!("no client id: {loaded}"))
        .to_string()
}

/// A client id and its mailbox key, minted by the application server.
fn mint(s: &Server, client: &str) -> String {
    let body = format!(r#"{{"client":"{client}"}}"#);
    let raw = format!(
        "POST /hub/client HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = request(s.addr, &raw);
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).expect("JSON");
    v["key"].as_str().expect("key").to_string()
}

fn received(browser: &Browser, what: &str, n: usize) -> Value {
    let script = format!("return got.{what}.length >= {n} && got.{what}");
    browser.wait_until(what, &script, WAIT).expect("received")
}

#[test]
fn two_tabs_share_one_connection_and_both_receive() {
    let _turn = util::browser::turn();
    let s = server();
    let browser = Browser::start().expect("chromium");
    let b1 = load_page(&browser, &s, "", "{}");
    assert_eq!(b1.len(), 32, "a server-issued id: {b1}");
    let first = browser.current_window().expect("window");
    browser
        .wait_until("leader", "return hub.isLeader()", WAIT)
        .expect("first tab leads");
    let second = browser.new_tab().expect("tab");
    browser.switch_to(&second).expect("switch");
    assert_eq!(
        load_page(&browser, &s, "", "{}"),
        b1,
        "tabs share the client"
    );
    util::wait_for("the stream", || stats(&s, "")["subscribers"] == 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stats(&s, "channel=news")["topic"]["subscribers"], 1);
    assert_eq!(
        stats(&s, &format!("client={b1}"))["topic"]["subscribers"],
        1
    );
    assert_eq!(
        stats(&s, "")["subscribers"],
        1,
        "one connection for two tabs"
    );
    let metrics = request(s.addr, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").text();
    assert!(
        metrics.contains("altsock_held_connections 1\n"),
        "one held connection in the engine: {metrics}"
    );
    let leads = browser
        .execute("return hub.isLeader()", json!([]))
        .expect("leader?");
    assert_eq!(leads, json!(false));

    post(&s, "/pub/news", "hello");
    let mail = json!({"client": b1, "app": "mail", "data": {"unread": 2}});
    post(&s, "/notify", &mail.to_string());
    let chat = json!({"client": b1, "app": "chat", "data": "hi"});
    post(&s, "/notify", &chat.to_string());
    for tab in [&second, &first] {
        browser.switch_to(tab).expect("switch");
        assert_eq!(received(&browser, "news", 1), json!(["hello"]));
        assert_eq!(received(&browser, "mail", 1), json!([{"unread": 2}]));
        assert_eq!(received(&browser, "chat", 1), json!(["hi"]));
    }

    browser.switch_to(&first).expect("switch");
    browser.close_window().expect("close the leader");
    browser.switch_to(&second).expect("switch");
    browser
        .wait_until("takeover", "return hub.isLeader()", WAIT)
        .expect("second tab leads");
    post(&s, "/pub/news", "again");
    assert_eq!(received(&browser, "news", 2), json!(["hello", "again"]));
    util::wait_for("one stream again", || {
        stats(&s, "channel=news")["topic"]["subscribers"] == 1
    });
}

#[test]
fn falls_back_to_longpoll_where_sse_and_websocket_fail() {
    let _turn = util::browser::turn();
    let s = server();
    let browser = Browser::start().expect("chromium");
    let broken = "window.EventSource = function () {
        var es = this; es.close = function () {}; es.addEventListener = function () {};
        setTimeout(function () { es.onerror && es.onerror(); }, 0);
      };
      window.WebSocket = function () {
        var ws = this; ws.close = function () {}; window.wsTries = (window.wsTries || 0) + 1;
        setTimeout(function () { ws.onclose && ws.onclose({code: 1006}); }, 0);
      };";
    let key = mint(&s, "b1");
    let options = format!("{{share: false, client: 'b1', key: '{key}'}}");
    assert_eq!(load_page(&browser, &s, broken, &options), "b1");
    util::wait_for("long-poll", || {
        stats(&s, "channel=news")["topic"]["subscribers"] == 1
    });
    post(&s, "/pub/news", "one");
    post(&s, "/pub/news", "two");
    post(&s, "/notify", r#"{"client":"b1","app":"mail","data":1}"#);
    assert_eq!(received(&browser, "news", 2), json!(["one", "two"]));
    assert_eq!(received(&browser, "mail", 1), json!([1]));
    assert_eq!(received(&browser, "chat", 0), json!([]));
    let tries = browser
        .execute("return window.wsTries", json!([]))
        .expect("tries");
    assert_eq!(tries, 2, "WebSocket was tried twice before long-poll");
}

#[test]
fn tabs_share_by_heartbeats_without_web_locks() {
    let _turn = util::browser::turn();
    let s = server();
    let browser = Browser::start().expect("chromium");
    let no_locks = "Object.defineProperty(navigator, 'locks', {value: undefined});";
    load_page(&browser, &s, no_locks, "{}");
    let first = browser.current_window().expect("window");
    browser
        .wait_until("leader", "return hub.isLeader()", WAIT)
        .expect("first tab leads after hearing no heartbeat");
    let second = browser.new_tab().expect("tab");
    browser.switch_to(&second).expect("switch");
    load_page(&browser, &s, no_locks, "{}");
    std::thread::sleep(Duration::from_millis(4500));
    let leads = browser
        .execute("return hub.isLeader()", json!([]))
        .expect("leader?");
    assert_eq!(
        leads,
        json!(false),
        "the second tab hears the leader's heartbeat"
    );
    assert_eq!(stats(&s, "")["subscribers"], 1);
    post(&s, "/pub/news", "beat");
    for tab in [&second, &first] {
        browser.switch_to(tab).expect("switch");
        assert_eq!(received(&browser, "news", 1), json!(["beat"]));
    }
}

#[test]
fn reconnects_and_resumes_from_the_last_id() {
    let _turn = util::browser::turn();
    let s = server();
    let browser = Browser::start().expect("chromium");
    load_page(&browser, &s, "", "{retryDelay: 400}");
    browser
        .execute(
            "window.states = []; hub.on('state', w => states.push(w)); return 1",
            json!([]),
        )
        .expect("record states");
    util::wait_for("stream", || {
        stats(&s, "channel=news")["topic"]["subscribers"] == 1
    });
    post(&s, "/pub/news", "a");
    assert_eq!(received(&browser, "news", 1), json!(["a"]));
    // The server drops the stream; two messages are published meanwhile.
    s.handle.send(Job::new(|router, cx| {
        for conn in router.hub.topics().conns(&TopicKey::Channel("news".into())) {
            cx.close(conn);
        }
    }));
    util::wait_for("dropped", || {
        stats(&s, "channel=news")["topic"]["subscribers"] == 0
    });
    post(&s, "/pub/news", "b");
    post(&s, "/pub/news", "c");
    assert_eq!(received(&browser, "news", 3), json!(["a", "b", "c"]));
    let states = browser.execute("return states", json!([])).expect("states");
    assert!(
        states
            .as_array()
            .is_some_and(|s| s.contains(&json!("retry"))),
        "{states}"
    );
    post(&s, "/pub/news", "d");
    assert_eq!(received(&browser, "news", 4), json!(["a", "b", "c", "d"]));
}

#[test]
fn a_refused_key_gets_a_new_client() {
    let _turn = util::browser::turn();
    let s = server();
    let browser = Browser::start().expect("chromium");
    let stale = "localStorage.setItem('altsock.hubclient:' + location.origin,
        JSON.stringify({client: 'stale', key: 'AAAAAAAAAAAAAAAAAAAAAA'}));";
    assert_eq!(load_page(&browser, &s, stale, "{}"), "stale");
    let fresh = browser
        .wait_until(
            "a new client",
            "return hub.clientId() !== 'stale' && hub.clientId()",
            WAIT,
        )
        .expect("renewed");
    let fresh = fresh.as_str().expect("an id").to_string();
    util::wait_for("the stream", || {
        stats(&s, &format!("client={fresh}"))["topic"]["subscribers"] == 1
    });
    let note = json!({"client": fresh, "app": "mail", "data": "back"});
    post(&s, "/notify", &note.to_string());
    assert_eq!(received(&browser, "mail", 1), json!(["back"]));
    let stored = browser
        .execute(
            "return JSON.parse(localStorage.getItem('altsock.hubclient:' + location.origin)).client",
            json!([]),
        )
        .expect("stored");
    assert_eq!(
        stored,
        json!(fresh),
        "the new client is kept for the next page"
    );
}

#[test]
fn a_private_channel_is_followed_with_a_token() {
    let _turn = util::browser::turn();
    let s = server();
    let body = r#"{"channel":"private-news"}"#;
    let raw = format!(
        "POST /hub/auth HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let minted: Value = serde_json::from_slice(&request(s.addr, &raw).body).expect("JSON");
    let token = minted["token"].as_str().expect("a token");
    let browser = Browser::start().expect("chromium");
    load_page(&browser, &s, "", "{}");
    let follow = format!(
        "window.got.secret = []; hub.subscribe('private-news', d => got.secret.push(d), {{token: '{token}'}}); return 1"
    );
    browser.execute(&follow, json!([])).expect("subscribe");
    util::wait_for("the private channel", || {
        stats(&s, "channel=private-news")["topic"]["subscribers"] == 1
    });
    post(&s, "/pub/private-news", "for token holders");
    assert_eq!(
        received(&browser, "secret", 1),
        json!(["for token holders"])
    );
}
