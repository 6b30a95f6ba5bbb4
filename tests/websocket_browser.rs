//! WebSocket from a real headless Chromium: `new WebSocket` to the hub's
//! `/sub/CHANNEL` receives what is published, and a message sent on it is
//! answered with close 1003 (push only); `new WebSocket` to the presence
//! `/jchat` pipe (the session cookie from a same-origin login) gets its
//! `hello` and a chat line; a cross-site upgrade of `/jchat` is refused;
//! `/altsock.js` falls back to a WebSocket where SSE fails.

mod presence_support;
mod util;

use std::time::Duration;

use altsock::Engine;
use serde_json::{json, Value};
use util::browser::Browser;
use util::{request, spawn_server, TestServer, WAIT};

const TOKEN: &str = "browser";

type Server = TestServer<altsock::server::Job>;

fn server() -> Server {
    let builder = Engine::builder()
        .poll_interval(Duration::from_millis(20))
        .keepalive_interval(Duration::from_millis(200));
    spawn_server(builder, |c| c.publish_token = Some(TOKEN.into()))
}

fn publish(s: &Server, channel: &str, body: &str) {
    let raw = format!(
        "POST /pub/{channel} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = request(s.addr, &raw);
    assert_eq!(r.status, 202, "{}", r.text());
}

/// Opens `new WebSocket(path)` on this page's host; frames go to
/// `window.frames`, the close event to `window.wsClosed`. Returns once open.
fn open_socket(browser: &Browser, path: &str) {
    let opened = browser
        .execute_async(
            "var done = arguments[1];
             window.frames_ = []; window.wsClosed = null;
             var ws = window.ws = new WebSocket('ws://' + location.host + arguments[0]);
             ws.onmessage = function (e) { frames_.push(e.data); };
             ws.onclose = function (e) { wsClosed = {code: e.code, reason: e.reason}; done(wsClosed); };
             ws.onopen = function () { done('open'); };",
            json!([path]),
        )
        .expect("open");
    assert_eq!(opened, "open", "{path}");
}

/// Waits until a received frame satisfies the JS predicate `test` (over `f`).
fn wait_frame(browser: &Browser, what: &str, test: &str) -> Value {
    let script = format!("return frames_.find(function (f) {{ return {test}; }}) || false;");
    browser.wait_until(what, &script, WAIT).expect(what)
}

fn wait_closed(browser: &Browser) -> Value {
    browser
        .wait_until("the close event", "return wsClosed || false;", WAIT)
        .expect("closed")
}

#[test]
fn hub_channel_over_websocket_in_chromium() {
    let _turn = util::browser::turn();
    let s = server();
    let browser = Browser::start().expect("chromium");
    browser
        .navigate(&format!("http://{}/altsock.js", s.addr))
        .expect("navigate");
    open_socket(&browser, "/sub/news");
    util::wait_for("the subscriber", || {
        let r = request(s.addr, &format!(
            "GET /hub/stats?channel=news HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        ));
        serde_json::from_slice::<Value>(&r.body).expect("stats")["topic"]["subscribers"] == 1
    });
    publish(&s, "news", "first <b>news</b>");
    publish(&s, "news", "second");
    let first = wait_frame(
        &browser,
        "the first message",
        "JSON.parse(f).data === 'first <b>news</b>'",
    );
    let parsed: Value = serde_json::from_str(first.as_str().expect("text")).expect("JSON");
    assert_eq!(parsed["channel"], "news");
    wait_frame(
        &browser,
        "the second message",
        "JSON.parse(f).data === 'second'",
    );
    // Keepalive pings (every 200 ms) are answered by Chromium: after three
    // pings (a missing pong closes at the next one) it is still open.
    let pinged = s.handle.metrics().keepalives;
    util::wait_for("three pings", || {
        s.handle.metrics().keepalives >= pinged + 3
    });
    assert_eq!(
        browser
            .execute("return wsClosed", json!([]))
            .expect("closed?"),
        Value::Null
    );
    // The channel takes no messages from subscribers: 1003, naming the way.
    browser
        .execute("ws.send('hello?')", json!([]))
        .expect("send");
    let closed = wait_closed(&browser);
    assert_eq!(closed["code"], 1003, "{closed}");
    assert!(
        closed["reason"]
            .as_str()
            .unwrap_or("")
            .contains("POST /pub/"),
        "{closed}"
    );
}

#[test]
fn jchat_pipe_over_websocket_in_chromium() {
    let _turn = util::browser::turn();
    let s = server();
    presence_support::register(s.addr, "alice");
    let bob = presence_support::user(s.addr, "bob");
    let browser = Browser::start().expect("chromium");
    browser
        .navigate(&format!("http://{}/altsock.js", s.addr))
        .expect("navigate");
    let status = browser
        .execute_async(
            "var done = arguments[0];
             fetch('/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
               body: JSON.stringify({username: 'alice', password: 'correct horse'})})
               .then(function (r) { done(r.status); }, function (e) { done(String(e)); });",
            json!([]),
        )
        .expect("login");
    assert_eq!(status, 200);
    open_socket(&browser, "/jchat");
    let hello = wait_frame(&browser, "hello", "f.indexOf('msg hello ') === 0");
    assert!(
        hello.as_str().unwrap_or("").contains("\"user\":\"alice\""),
        "{hello}"
    );
    let r = presence_support::send_chat(s.addr, "bob", &bob, "alice", "hi over ws");
    assert!(r.status < 300, "{} {}", r.status, r.text());
    wait_frame(&browser, "the chat line", "f.indexOf('hi over ws') >= 0");
    browser.execute("ws.close(1000)", json!([])).expect("close");
    assert_eq!(wait_closed(&browser)["code"], 1000);
}

/// A page of another origin must not open `/jchat` with the user's cookie.
#[test]
fn cross_site_websocket_upgrade_of_jchat_is_refused() {
    let s = server();
    let sid = presence_support::user(s.addr, "carol");
    let raw = util::ws::upgrade_request(
        "/jchat",
        &format!("Origin: http://evil.example\r\nCookie: altsock_session={sid}\r\n"),
    );
    assert_eq!(request(s.addr, &raw).status, 403);
    let same = util::ws::upgrade_request(
        "/jchat",
        &format!("Origin: http://t\r\nCookie: altsock_session={sid}\r\n"),
    );
    let mut client = util::Client::connect(s.addr);
    client.send(same.as_bytes());
    assert!(client.read_through("\r\n\r\n").starts_with("HTTP/1.1 101 "));
    let hello = util::ws::next_frame(&mut client);
    assert!(hello.text().starts_with("msg hello "), "{hello:?}");
}

#[test]
fn altsock_js_falls_back_to_websocket_where_sse_fails() {
    let _turn = util::browser::turn();
    let s = server();
    let browser = Browser::start().expect("chromium");
    browser
        .navigate(&format!("http://{}/altsock.js", s.addr))
        .expect("navigate");
    let loaded = browser
        .execute_async(
            "var done = arguments[0];
             window.EventSource = function () {
               var es = this; es.close = function () {}; es.addEventListener = function () {};
               setTimeout(function () { es.onerror && es.onerror(); }, 0);
             };
             var Real = WebSocket; window.wsOpened = 0;
             window.WebSocket = function (url) { wsOpened++; return new Real(url); };
             fetch('/altsock.js').then(r => r.text()).then(code => {
               (0, eval)(code);
               window.got = [];
               window.hub = Altsock.connect({retryDelay: 20, share: false});
               hub.subscribe('news', d => got.push(d));
               return hub.ready;
             }).then(id => done(id)).catch(e => done(String(e)));",
            json!([]),
        )
        .expect("load");
    assert!(loaded.as_str().is_some_and(|id| id.len() == 32), "{loaded}");
    browser
        .wait_until("a WebSocket", "return wsOpened >= 1", WAIT)
        .expect("WebSocket opened");
    util::wait_for("the subscriber", || {
        let r = request(s.addr, &format!(
            "GET /hub/stats?channel=news HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        ));
        serde_json::from_slice::<Value>(&r.body).expect("stats")["topic"]["subscribers"] == 1
    });
    publish(&s, "news", "via websocket");
    browser
        .wait_until("the message", "return got.length >= 1 && got", WAIT)
        .expect("received");
    assert_eq!(
        browser.execute("return got", json!([])).expect("got"),
        json!(["via websocket"])
    );
    assert_eq!(
        browser.execute("return wsOpened", json!([])).expect("n"),
        1,
        "no reconnects"
    );
}
