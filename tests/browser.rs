//! The browser helper itself: a headless Chromium starts, loads a page from a
//! real `altsock serve`, runs sync and async scripts, opens and switches tabs.

mod util;

use serde_json::json;
use util::browser::Browser;
use util::{spawn_server, WAIT};

#[test]
fn chromium_runs_scripts_in_two_tabs() {
    let server = spawn_server(altsock::Engine::builder(), |_| {});
    let browser = Browser::start().expect("chromium starts");
    let url = format!("http://{}/metrics", server.addr);
    browser.navigate(&url).expect("navigate");
    let text = browser
        .execute("return document.body.innerText", json!([]))
        .expect("sync script");
    assert!(text.as_str().unwrap_or("").contains("altsock_"), "{text}");
    let sum = browser
        .execute_async(
            "setTimeout(() => arguments[1](arguments[0] + 1), 10)",
            json!([41]),
        )
        .expect("async script");
    assert_eq!(sum, json!(42));
    let first = browser.current_window().expect("window");
    let tab = browser.new_tab().expect("new tab");
    browser.switch_to(&tab).expect("switch");
    browser.navigate(&url).expect("navigate tab");
    browser
        .execute("window.mark = 7; return 1", json!([]))
        .expect("mark");
    browser.switch_to(&first).expect("switch back");
    let mark = browser
        .execute("return window.mark || 0", json!([]))
        .expect("read");
    assert_eq!(mark, json!(0));
    assert_eq!(browser.windows().expect("handles").len(), 2);
    browser
        .wait_until("true", "return document.readyState === 'complete'", WAIT)
        .expect("ready");
}
