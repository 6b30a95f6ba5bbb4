//! The device's streamed page in real headless Chromium: the page opened
//! from the SMS's link shows the queued texts, then each new text as it is
//! sent while the response is still loading (the held connection); the
//! page's script sends a reply by `fetch`, which reaches the requester's
//! pipe and comes back down the same still-open page.

mod presence_support;
mod util;
mod wireless_support;

use std::time::Duration;

use presence_support::*;
use serde_json::json;
use util::browser::{self, Browser};
use wireless_support::*;

const PHONE: &str = "+15550101234";

/// The texts the framed device page shows, as `who: text` lines.
const SHOWN: &str = "var d = document.getElementById('dev').contentDocument; \
    return d ? Array.from(d.querySelectorAll('#t p')).map(function (p) { \
    return p.textContent; }) : [];";

#[test]
fn streamed_device_page_shows_texts_live_and_replies_by_script() {
    let _turn = browser::turn();
    let browser = Browser::start().expect("headless chromium (scripts/test installs it)");
    let gateway = FakeGateway::start();
    let server = server_with_wireless(wireless_config(&gateway, Duration::from_secs(2)));
    let a = server.addr;
    let alice = user(a, "alice");
    let mut pipe = Pipe::open(a, "alice", &alice, false);
    for i in 1..=3 {
        let r = act(
            a,
            "/wireless/text",
            "alice",
            &alice,
            json!({ "to": PHONE, "msg": format!("queued {i}") }),
        );
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let link = link_path(gateway.next().field("text").unwrap());

    // The device page in a frame of a page that has finished loading, so
    // the driver never waits for the held response to end.
    browser.navigate(&format!("http://{a}/")).expect("navigate");
    browser
        .execute(
            "var f = document.createElement('iframe'); f.id = 'dev'; f.src = arguments[0]; \
             document.body.appendChild(f);",
            json!([format!("http://{a}{link}")]),
        )
        .expect("frame the device page");
    let wait = util::WAIT;
    browser
        .wait_until(
            "the queued texts",
            "var d = document.getElementById('dev').contentDocument; \
             return !!d && d.querySelectorAll('#t p').length === 3;",
            wait,
        )
        .expect("three queued texts shown");
    pipe.next_of("wireless-connected");
    for i in 4..=5 {
        let r = act(
            a,
            "/wireless/text",
            "alice",
            &alice,
            json!({ "to": PHONE, "msg": format!("live {i}") }),
        );
        assert_eq!(body(&r)["delivered"], true);
    }
    browser
        .wait_until(
            "the live texts",
            "var d = document.getElementById('dev').contentDocument; \
             return d.querySelectorAll('#t p').length === 5;",
            wait,
        )
        .expect("live texts shown while the page is still loading");
    let shown = browser.execute(SHOWN, json!([])).expect("texts");
    assert_eq!(
        shown,
        json!([
            "alice: queued 1",
            "alice: queued 2",
            "alice: queued 3",
            "alice: live 4",
            "alice: live 5"
        ])
    );
    let loading = browser
        .execute(
            "return document.getElementById('dev').contentDocument.readyState",
            json!([]),
        )
        .expect("state");
    assert_eq!(loading, "loading", "the response is held, not ended");

    // The page's script sends the reply by fetch: the page stays.
    browser
        .execute(
            "var d = document.getElementById('dev').contentDocument; \
             var f = d.getElementById('f'); f.elements.msg.value = 'hi <alice>'; f.requestSubmit();",
            json!([]),
        )
        .expect("submit");
    let ev = pipe.next_of("wireless-reply");
    assert_eq!(
        (ev.data["msg"].as_str(), ev.data["via"].as_str()),
        (Some("hi <alice>"), Some("web"))
    );
    browser
        .wait_until(
            "the reply on the page",
            "var d = document.getElementById('dev').contentDocument; \
             return d.querySelectorAll('#t p').length === 6 && d.getElementById('f').elements.msg.value === '';",
            wait,
        )
        .expect("the reply comes back down the open page");
    let shown = browser.execute(SHOWN, json!([])).expect("texts");
    assert_eq!(shown[5], "me: hi <alice>", "shown as text, never HTML");
    let r = act(
        a,
        "/wireless/text",
        "alice",
        &alice,
        json!({ "to": PHONE, "msg": "after the reply" }),
    );
    assert_eq!(
        body(&r)["delivered"],
        true,
        "the same held page still takes texts"
    );
    browser
        .wait_until(
            "a text after the reply",
            "var d = document.getElementById('dev').contentDocument; \
             return d.querySelectorAll('#t p').length === 7;",
            wait,
        )
        .expect("a text after the reply");
}
