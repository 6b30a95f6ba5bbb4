//! Chromium over TLS: a page loaded over `https://` from the engine's TLS
//! listener opens an `EventSource` on the same origin, receives messages
//! pushed through the `Handle`, and its `fetch` comes back over a kept-alive
//! TLS connection. The certificate is the test-only one made at test time,
//! so the browser runs with `--ignore-certificate-errors`.

mod tls_support;
mod util;

use std::time::Duration;

use altsock::{ConnId, Cx, Engine, Hold, Message, Reply, Request, Response, Router};
use serde_json::json;
use tls_support::TestCert;
use util::browser::Browser;
use util::Log;

const PAGE: &str = r#"<!doctype html><title>tls</title><script>
window.got = [];
const es = new EventSource('/events');
es.onmessage = e => window.got.push(e.data);
window.secure = window.isSecureContext && location.protocol === 'https:';
</script>"#;

/// Serves the page, holds `/events` as SSE, answers `/hello`.
struct Page {
    streams: Log<ConnId>,
}

impl Router for Page {
    type Msg = ();
    fn request(&mut self, req: Request, cx: &mut Cx<'_, ()>) -> Reply {
        match req.path() {
            "/" => Reply::Respond(Response::html(200, PAGE)),
            "/events" => {
                self.streams.push(req.conn);
                Reply::Hold(Hold::sse())
            }
            _ => Reply::Respond(Response::text(200, format!("tls={}", cx.is_tls(req.conn)))),
        }
    }
}

#[test]
fn chromium_loads_a_page_and_streams_events_over_tls() {
    if !util::browser::available() {
        panic!("{}", util::browser::missing_binaries().unwrap_or_default());
    }
    let _turn = util::browser::turn();
    let cert = TestCert::new("altsock browser test");
    let streams = Log::default();
    let engine = Engine::builder()
        .listen("127.0.0.1:0")
        .listen_tls("127.0.0.1:0", cert.server_config())
        .poll_interval(Duration::from_millis(20))
        .keepalive_interval(Duration::from_millis(500))
        .build(Page {
            streams: streams.clone(),
        })
        .expect("engine");
    let tls = engine.tls_local_addr().expect("tls listener");
    let handle = engine.handle();
    let thread = std::thread::spawn(move || engine.run());

    let browser = Browser::start_with_args(&["--ignore-certificate-errors"]).expect("chromium");
    browser
        .navigate(&format!("https://localhost:{}/", tls.port()))
        .expect("navigate");
    let secure = browser
        .execute("return window.secure", json!([]))
        .expect("secure?");
    assert_eq!(secure, json!(true), "an https page in a secure context");
    let conn = streams.wait_for("the EventSource", |c| Some(*c));
    for text in ["one", "two"] {
        assert_eq!(handle.push(conn, Message::data(text)).wait(), Ok(()));
    }
    browser
        .wait_until(
            "two events",
            "return window.got.join(',') === 'one,two'",
            Duration::from_secs(10),
        )
        .expect("events over TLS");
    let answer = browser
        .execute_async(
            "fetch('/hello').then(r => r.text()).then(arguments[0])",
            json!([]),
        )
        .expect("fetch");
    assert_eq!(answer, json!("tls=true"));
    drop(browser);
    handle.shutdown();
    thread.join().expect("engine thread").expect("run");
}
