//! Live assist end to end in headless Chromium (issue 8): a real `altsock
//! serve` process, a customer browser whose windows show shop pages served
//! by this test from *other* origins (127.0.0.2, .3 and .4, each on its own
//! port, listed with `--assist-origin`) that embed the widget with one
//! `<script>` tag, and a representative's browser logged in to
//! `/assist/console`. Each step drives the pages the way a person would
//! (clicks and forms, in the widget's shadow root and in the console) and
//! waits for what the other side shows, with generous limits:
//!
//! - the visitor appears on the console with its cookies of interest and
//!   current page (and follows an in-page page change);
//! - asking to talk routes to the representative, who accepts;
//! - chat both ways, markup staying text on both sides;
//! - canned texts: create, edit, pick, delete;
//! - push content (the widget's card), pull (the console shows the page);
//! - push URL: the widget asks for consent once per session, then follows;
//!   a foreign origin is refused and the visitor stays;
//! - requeue when the console closes; queue positions with no representative;
//! - presenter mode: one card and one line to three customer windows;
//! - the host page's CSS does not reach the widget; `data-open="interaction"`
//!   opens no channel before the visitor interacts; a page under a strict CSP
//!   works; the demo page at `/assist/demo` embeds the widget; a proactive
//!   invitation opens the widget and, accepted, starts the chat.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Child;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};
use util::browser::Browser;

/// The most a page may take to show what it was told (generous: a loaded
/// two-core machine runs two Chromiums and the server at once).
const SHOWN: Duration = Duration::from_secs(20);

/// The password of every test account.
const PASSWORD: &str = "correct horse";

/// The shadow root of the widget, in a customer window's script.
const ROOT: &str = "const host = document.getElementById('altsock-assist');
                    const root = host && host.shadowRoot;";

/// The shop pages of the customer's windows, one listener per origin.
struct Shop {
    origins: Vec<String>,
    /// The altsock server the pages embed the widget from, set once it runs
    /// (it needs the shop's origins first); no page is asked for before.
    server: Arc<OnceLock<SocketAddr>>,
}

impl Shop {
    /// Listens on 127.0.0.2, .3 and .4 (port 0 each) and answers every GET
    /// with a page that sets the cookies `plan` and `cart` and embeds the
    /// widget of `site`.
    fn start(site: &str) -> Shop {
        let server = Arc::new(OnceLock::<SocketAddr>::new());
        let mut origins = Vec::new();
        for ip in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
            let listener = TcpListener::bind((ip, 0)).expect("bind a shop origin");
            let addr = listener.local_addr().expect("shop address");
            origins.push(format!("http://{addr}"));
            let (server, site) = (server.clone(), site.to_string());
            std::thread::spawn(move || {
                for stream in listener.incoming().map_while(Result::ok) {
                    let (server, site) = (server.clone(), site.clone());
                    std::thread::spawn(move || {
                        if let Some(server) = server.get() {
                            serve_page(stream, server, &site);
                        }
                    });
                }
            });
        }
        Shop { origins, server }
    }

    /// Tells the pages where the altsock server is.
    fn embed_from(&self, server: SocketAddr) {
        self.server.set(server).expect("the server is set once");
    }
}

/// Answers one request of a customer's browser with a shop page (or `404`
/// for the favicon).
fn serve_page(stream: TcpStream, server: &SocketAddr, site: &str) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = first.split(' ').nth(1).unwrap_or("/").to_string();
    let title = format!("Shop {}", path.trim_start_matches('/'));
    let (status, body, csp) = if path.starts_with("/favicon") {
        ("404 Not Found", String::new(), String::new())
    } else if path.starts_with("/strict") {
        // A page with a strict CSP: no inline script or style of its own;
        // scripts and connections only from the altsock server.
        let csp = format!(
            "Content-Security-Policy: default-src 'self'; script-src http://{server}; \
             connect-src http://{server}; style-src 'self'; img-src 'self'\r\n"
        );
        ("200 OK", strict_html(&title, server, site), csp)
    } else {
        let open = if path.starts_with("/lazy") {
            "interaction"
        } else {
            "load"
        };
        (
            "200 OK",
            shop_html(&title, server, site, open),
            String::new(),
        )
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n{csp}\
         Cache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

/// A shop page: its own cookies, a hostile style for buttons, and the one
/// widget tag a site owner adds.
fn shop_html(title: &str, server: &SocketAddr, site: &str, open: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
<style>button {{ display: none !important; }} * {{ color: red; }}</style></head><body>\
<h1>{title}</h1><script>document.cookie = 'plan=pro; path=/'; document.cookie = 'cart=3; path=/';\
document.cookie = 'secret_token=never-sent; path=/';</script>\
<script src=\"http://{server}/assist.js\" data-site=\"{site}\" data-cookies=\"plan,cart\" \
data-open=\"{open}\" async></script>\
</body></html>"
    )
}

/// A shop page under a strict CSP: only the widget's tag.
fn strict_html(title: &str, server: &SocketAddr, site: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>\
<h1>{title}</h1><script src=\"http://{server}/assist.js\" data-site=\"{site}\" async></script>\
</body></html>"
    )
}

/// A real `altsock serve` with the shop's origins allowed; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(origins: &[String]) -> Server {
    let dir = util::temp_dir("assist-browser");
    let mut args: Vec<&str> = vec![
        "--poll-interval",
        "50ms",
        "--assist-rep-grace",
        "300ms",
        "--assist-answer-timeout",
        "60s",
    ];
    for o in origins {
        args.extend(["--assist-origin", o.as_str()]);
    }
    let (child, addr) = util::start_serve_process(&dir.join("altsock.db"), &args);
    Server {
        child,
        addr,
        _dir: dir,
    }
}

/// A JSON request to the server; returns status and body.
fn call(addr: SocketAddr, path: &str, cookie: Option<&str>, body: &Value) -> (u16, Value) {
    let cookie = cookie
        .map(|sid| format!("Cookie: altsock_session={sid}\r\nOrigin: http://{addr}\r\n"))
        .unwrap_or_default();
    let text = body.to_string();
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{text}",
        text.len()
    );
    let resp = util::request(addr, &raw);
    let value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    (resp.status, value)
}

/// Registers `name`, logs in and makes `site` (a group) with `name` in it.
fn representative_with_site(addr: SocketAddr, name: &str, site: &str) {
    let account = json!({ "username": name, "password": PASSWORD });
    let (status, body) = call(addr, "/register", None, &account);
    assert_eq!(status, 201, "register: {body}");
    let (status, body) = call(addr, "/login", None, &account);
    assert_eq!(status, 200, "login: {body}");
    let sid = body["session"].as_str().expect("session").to_string();
    let group = json!({ "me": name, "id": sid, "name": site });
    let (status, body) = call(addr, "/groups", None, &group);
    assert!(
        status == 200 || status == 201,
        "create group: {status} {body}"
    );
}

/// Logs the representative in through the home page's form, then opens the
/// console of `site` and waits for its stream.
fn open_console(browser: &Browser, addr: SocketAddr, name: &str, site: &str) {
    browser.navigate(&format!("http://{addr}/")).expect("home");
    browser
        .execute(
            "const f = document.getElementById('login');
             f.username.value = arguments[0]; f.password.value = arguments[1];
             f.requestSubmit();",
            json!([name, PASSWORD]),
        )
        .expect("log in");
    browser
        .wait_until("logged in", "return location.pathname === '/home';", SHOWN)
        .expect("home page after login");
    reopen_console(browser, addr, site);
}

/// Opens the console of `site` (already logged in) and waits until its
/// stream has delivered the snapshot.
fn reopen_console(browser: &Browser, addr: SocketAddr, site: &str) {
    browser
        .navigate(&format!("http://{addr}/assist/console?site={site}"))
        .expect("console");
    browser
        .wait_until(
            "console connected",
            "const p = document.getElementById('pipe'), me = document.getElementById('me');
             return p && p.textContent === 'connected' && me.textContent !== '\u{2026}';",
            SHOWN,
        )
        .expect("console stream");
}

/// Waits until `script` (sync, in the current window) is truthy.
fn wait(browser: &Browser, what: &str, script: &str, args: Value) -> Value {
    let deadline = std::time::Instant::now() + SHOWN;
    loop {
        let v = browser.execute(script, args.clone()).expect(what);
        let truthy =
            !matches!(v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
        if truthy {
            return v;
        }
        if std::time::Instant::now() > deadline {
            // The console's status line says why a command was refused.
            let status = browser
                .execute(
                    "const s = document.getElementById('status'), t = document.querySelector('#visitors tbody');
                     const w = document.getElementById('altsock-assist');
                     if (w) return JSON.stringify(w.dataset) + ' ' + w.shadowRoot.querySelector('.status').textContent
                       + ' | log: ' + w.shadowRoot.querySelector('.log').innerText;
                     return s && s.textContent + ' | visitors: ' + (t && t.innerText);",
                    json!([]),
                )
                .unwrap_or(Value::Null);
            panic!("timed out waiting for {what}; last {v}; page status {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the browser has a window besides `known`; returns it.
fn wait_for_window(browser: &Browser, known: &str) -> String {
    let deadline = std::time::Instant::now() + SHOWN;
    loop {
        let windows = browser.windows().expect("windows");
        if let Some(other) = windows.into_iter().find(|w| w != known) {
            return other;
        }
        assert!(std::time::Instant::now() < deadline, "no window opened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `script` in the widget's shadow root (`root` is bound).
fn widget(browser: &Browser, script: &str, args: Value) -> Value {
    browser
        .execute(&format!("{ROOT} {script}"), args)
        .expect("widget script")
}

/// Waits for `script` (with `root` bound to the widget's shadow root).
fn wait_widget(browser: &Browser, what: &str, script: &str, args: Value) -> Value {
    wait(
        browser,
        what,
        &format!("{ROOT} if (!root) return false; {script}"),
        args,
    )
}

/// A function `row(id)` in the console: the cells of a visitor's row (the
/// first row when `id` is null), or null.
const ROW: &str = "function row(id) {
    const rows = [...document.querySelectorAll('#visitors tbody tr')];
    const tr = id ? rows.find(r => r.dataset.visitor === id) : rows[0];
    if (!tr) return null;
    const cell = c => (tr.querySelector('.' + c) || {}).textContent || '';
    return { id: tr.dataset.visitor, state: cell('state'), title: cell('title'), url: cell('url'),
             cookies: cell('cookies'), referrer: cell('referrer'), pages: cell('pages'),
             since: cell('since'), accept: tr.querySelector('button.accept') };
  }";

/// Waits until `cond` (JS, with `r` the row of `visitor`) holds; returns the row.
fn wait_row(browser: &Browser, what: &str, visitor: Option<&str>, cond: &str) -> Value {
    wait(
        browser,
        what,
        &format!("{ROW} const r = row(arguments[0]); if (!r || !({cond})) return null; delete r.accept; return r;"),
        json!([visitor]),
    )
}

/// Types a chat line in the widget and sends it.
fn visitor_says(browser: &Browser, text: &str) {
    widget(
        browser,
        "const f = root.querySelector('form'); f.msg.value = arguments[0]; f.requestSubmit();",
        json!([text]),
    );
}

/// Waits until the widget's chat shows a line whose text is exactly `text`.
fn widget_shows_line(browser: &Browser, text: &str) {
    wait_widget(
        browser,
        "the line in the widget",
        "return [...root.querySelectorAll('.log .text')].some(s => s.textContent === arguments[0]);",
        json!([text]),
    );
}

/// Waits until the console's chat with `visitor` shows exactly `text`.
fn console_shows_line(browser: &Browser, visitor: &str, text: &str) {
    wait(
        browser,
        "the line in the console",
        "const box = [...document.querySelectorAll('#chats .chat')].find(b => b.dataset.visitor === arguments[0]);
         return box && [...box.querySelectorAll('.log .text')].some(s => s.textContent === arguments[1]);",
        json!([visitor, text]),
    );
}

/// Runs `script` with `box` bound to the console's chat with `visitor`.
fn in_chat(browser: &Browser, visitor: &str, script: &str, args: Value) -> Value {
    let mut all = vec![json!(visitor)];
    all.extend(args.as_array().cloned().unwrap_or_default());
    browser
        .execute(
            &format!(
                "const box = [...document.querySelectorAll('#chats .chat')].find(b => b.dataset.visitor === arguments[0]);
                 {script}"
            ),
            Value::Array(all),
        )
        .expect("console chat script")
}

/// Fills the mini form under the chat with `visitor` (opened by `button`).
fn chat_form(browser: &Browser, visitor: &str, button: &str, fields: Value) {
    in_chat(
        browser,
        visitor,
        "box.querySelector('button.' + arguments[1]).click();
         const f = box.querySelector('form.mini');
         for (const [k, v] of Object.entries(arguments[2])) f.elements[k].value = v;
         f.requestSubmit();",
        json!([button, fields]),
    );
}

/// Which window is the customer's first, second and third.
struct Customer {
    browser: Browser,
    windows: Vec<String>,
}

impl Customer {
    fn to(&self, i: usize) -> &Browser {
        self.browser.switch_to(&self.windows[i]).expect("switch");
        &self.browser
    }
}

#[test]
fn a_visitor_and_a_representative_in_chromium() {
    let _turn = util::browser::turn();
    let shop = Shop::start("support");
    let server = start_server(&shop.origins);
    let addr = server.addr;
    shop.embed_from(addr);
    representative_with_site(addr, "rita", "support");

    let rep = Browser::start().expect("chromium for the representative");
    open_console(&rep, addr, "rita", "support");

    // The customer's first window: a shop page on another origin.
    let shop_browser = Browser::start().expect("chromium for the customer");
    let first = shop_browser.current_window().expect("window");
    let customer = Customer {
        browser: shop_browser,
        windows: vec![first],
    };
    let page = format!("{}/cart", shop.origins[0]);
    customer.to(0).navigate(&page).expect("shop page");

    // 1. The visitor appears with its cookies of interest and page.
    let row = wait_row(
        &rep,
        "the visitor on the console",
        None,
        "r.cookies.includes('cart=3')",
    );
    let visitor = row["id"].as_str().expect("visitor id").to_string();
    assert_eq!(row["title"], "Shop cart");
    assert_eq!(row["url"], page);
    assert_eq!(row["state"], "browsing");
    let cookies = row["cookies"].as_str().unwrap_or_default();
    assert!(
        cookies.contains("plan=pro") && cookies.contains("cart=3"),
        "{cookies}"
    );
    assert!(
        !cookies.contains("secret_token"),
        "only cookies of interest: {cookies}"
    );
    // The id and secret live in a first-party cookie of the shop's origin.
    let cookie = customer
        .to(0)
        .execute("return document.cookie;", json!([]))
        .expect("cookie");
    assert!(
        cookie
            .as_str()
            .unwrap_or_default()
            .contains(&format!("altsock_assist={visitor}.")),
        "{cookie}"
    );
    // An in-page page change shows live.
    customer
        .to(0)
        .execute(
            "history.pushState({}, '', '/cart/checkout'); document.title = 'Checkout';",
            json!([]),
        )
        .expect("pushState");
    let moved = wait_row(
        &rep,
        "the page change",
        Some(&visitor),
        "r.url.endsWith('/cart/checkout')",
    );
    assert_eq!(moved["title"], "Checkout");

    // 2. Asking routes to the representative, who accepts.
    widget(
        customer.to(0),
        "root.querySelector('button.toggle').click(); root.querySelector('button.ask').click();",
        json!([]),
    );
    wait(
        &rep,
        "the offer",
        &format!("{ROW} const r = row(arguments[0]); if (r && r.accept) r.accept.click(); return !!(r && r.accept);"),
        json!([visitor]),
    );
    wait_widget(
        customer.to(0),
        "chatting on the widget",
        "return host.dataset.state === 'chatting' && root.querySelector('.status').textContent.includes('rita');",
        json!([]),
    );
    // The host page's hostile CSS (`button { display: none !important }`,
    // `* { color: red }`) does not reach into the widget's shadow root.
    let look = widget(
        customer.to(0),
        "const cs = getComputedStyle(root.querySelector('button.toggle'));
         return { display: cs.display, color: cs.color, background: cs.backgroundColor };",
        json!([]),
    );
    assert_ne!(look["display"], "none", "{look}");
    assert_eq!(look["color"], "rgb(255, 255, 255)", "{look}");
    assert_eq!(look["background"], "rgb(10, 88, 202)", "{look}");

    // 3. Chat both ways; markup stays text on both sides.
    let from_rep = "<b>Hello</b> & <script>alert(1)</script>welcome";
    in_chat(
        &rep,
        &visitor,
        "const f = box.querySelector('form.reply'); f.msg.value = arguments[1]; f.requestSubmit();",
        json!([from_rep]),
    );
    widget_shows_line(customer.to(0), from_rep);
    let tags = widget(
        customer.to(0),
        "return root.querySelectorAll('.log b, .log script').length;",
        json!([]),
    );
    assert_eq!(tags, 0, "the representative's markup stayed text");
    let from_visitor = "<img src=x onerror=\"window.pwned=1\"> is <i>this</i> free?";
    visitor_says(customer.to(0), from_visitor);
    console_shows_line(&rep, &visitor, from_visitor);
    let console_tags = in_chat(
        &rep,
        &visitor,
        "return box.querySelectorAll('.log img, .log i').length + (window.pwned ? 100 : 0);",
        json!([]),
    );
    assert_eq!(console_tags, 0, "the visitor's markup stayed text");

    // 4. Canned texts: create, edit, pick, delete.
    rep.execute(
        "const f = document.getElementById('canned-form');
         f.elements.title.value = 'Hours'; f.elements.text.value = 'We are open 9 to 5.'; f.requestSubmit();",
        json!([]),
    )
    .expect("create canned");
    wait(
        &rep,
        "the canned text listed",
        "return [...document.querySelectorAll('#canned-list li .text')].some(s => s.textContent.trim() === 'We are open 9 to 5.');",
        json!([]),
    );
    rep.execute(
        "const li = [...document.querySelectorAll('#canned-list li')].find(l => l.querySelector('.title').textContent === 'Hours');
         li.querySelector('button.edit').click();
         const f = document.getElementById('canned-form');
         f.elements.text.value = 'We are open <9 to 6>.'; f.requestSubmit();",
        json!([]),
    )
    .expect("edit canned");
    wait(
        &rep,
        "the edited canned text",
        "return [...document.querySelectorAll('#canned-list li .text')].some(s => s.textContent.trim() === 'We are open <9 to 6>.');",
        json!([]),
    );
    in_chat(
        &rep,
        &visitor,
        "const sel = box.querySelector('select.canned');
         const opt = [...sel.options].find(o => o.textContent === 'Hours');
         sel.value = opt.value; sel.dispatchEvent(new Event('change'));
         box.querySelector('form.reply').requestSubmit();",
        json!([]),
    );
    widget_shows_line(customer.to(0), "We are open <9 to 6>.");
    rep.execute(
        "const li = [...document.querySelectorAll('#canned-list li')].find(l => l.querySelector('.title').textContent === 'Hours');
         li.querySelector('button.delete').click();",
        json!([]),
    )
    .expect("delete canned");
    wait(
        &rep,
        "the canned text deleted",
        "return document.querySelectorAll('#canned-list li').length === 0;",
        json!([]),
    );

    // 5. Push content: the card shows, all as text.
    let card = json!({
        "title": "Spring <sale>",
        "text": "Half price on <b>everything</b>",
        "image": format!("{}/banner.png", shop.origins[0]),
        "link": format!("{}/sale", shop.origins[0]),
    });
    chat_form(&rep, &visitor, "push-card", card.clone());
    let shown = wait_widget(
        customer.to(0),
        "the card",
        "const c = root.querySelector('.card'); if (!c || c.hidden) return null;
         const h = c.querySelector('h3'); if (!h) return null;
         return { title: h.textContent, text: c.querySelector('p').textContent,
                  link: c.querySelector('a').href, image: c.querySelector('img').src,
                  tags: c.querySelectorAll('b, sale').length };",
        json!([]),
    );
    assert_eq!(shown["title"], card["title"]);
    assert_eq!(shown["text"], card["text"]);
    assert_eq!(shown["link"], card["link"]);
    assert_eq!(shown["image"], card["image"]);
    assert_eq!(shown["tags"], 0);

    // 6. Pull: the console learns the visitor's page and shows it.
    in_chat(
        &rep,
        &visitor,
        "box.querySelector('button.pull').click();",
        json!([]),
    );
    let here = customer
        .to(0)
        .execute("return location.href;", json!([]))
        .expect("href");
    let pulled = wait(
        &rep,
        "the pulled page",
        "const a = document.querySelector('#pulled a.pulled-url'); return a && a.href;",
        json!([]),
    );
    assert_eq!(pulled, here);
    // The console opened it in a tab of its own (a visitor of the shop too,
    // once loaded: closed again here).
    let console_window = rep.current_window().expect("console window");
    let opened = wait_for_window(&rep, &console_window);
    rep.switch_to(&opened).expect("pulled tab");
    let url = wait(
        &rep,
        "the pulled tab loaded",
        "return location.href.startsWith('http') && location.href;",
        json!([]),
    );
    assert_eq!(url, here);
    rep.close_window().expect("close the pulled tab");
    rep.switch_to(&console_window).expect("back to the console");

    // 7. Push URL: a foreign origin is refused (the visitor stays); a
    //    same-origin one asks for consent once, then the next goes at once.
    chat_form(
        &rep,
        &visitor,
        "push-url",
        json!({ "url": "http://foreign.example/phish" }),
    );
    wait(
        &rep,
        "the refusal",
        "return document.getElementById('status').textContent.includes('foreign.example');",
        json!([]),
    );
    let offer = format!("{}/offer", shop.origins[0]);
    chat_form(&rep, &visitor, "push-url", json!({ "url": offer }));
    let asked = wait_widget(
        customer.to(0),
        "the consent question",
        "const c = root.querySelector('.consent'); return !c.hidden && c.querySelector('.url').textContent;",
        json!([]),
    );
    assert_eq!(asked, json!(offer));
    let still = customer
        .to(0)
        .execute("return location.pathname;", json!([]))
        .expect("path");
    assert_eq!(still, "/cart/checkout", "nothing followed before consent");
    widget(
        customer.to(0),
        "root.querySelector('.consent button.yes').click();",
        json!([]),
    );
    wait(
        customer.to(0),
        "the pushed page",
        "return location.pathname === '/offer';",
        json!([]),
    );
    console_shows_line(&rep, &visitor, "The visitor agreed to the pushed page.");
    // The chat goes on on the new page; the next push goes without a question.
    wait_widget(
        customer.to(0),
        "chat restored",
        "return host.dataset.state === 'chatting';",
        json!([]),
    );
    widget_shows_line(customer.to(0), from_visitor);
    let next = format!("{}/second", shop.origins[0]);
    chat_form(&rep, &visitor, "push-url", json!({ "url": next }));
    wait(
        customer.to(0),
        "the second pushed page",
        "return location.pathname === '/second';",
        json!([]),
    );
    wait_row(
        &rep,
        "the console follows the visitor",
        Some(&visitor),
        "r.url.endsWith('/second')",
    );

    // 8. The console closes: the chat goes back to the queue, first in line.
    rep.navigate("about:blank").expect("console closed");
    wait_widget(
        customer.to(0),
        "requeued",
        "return host.dataset.state === 'waiting' && host.dataset.position === '1' &&
                root.querySelector('.status').textContent.includes('number 1');",
        json!([]),
    );

    // 9. With nobody available, a second visitor asking sees position 2.
    let second = customer.browser.new_window().expect("second window");
    let third = customer.browser.new_window().expect("third window");
    let mut customer = customer;
    customer.windows.push(second);
    customer.windows.push(third);
    customer
        .to(1)
        .navigate(&format!("{}/home", shop.origins[1]))
        .expect("second shop");
    wait_widget(
        customer.to(1),
        "the second widget",
        "return host.dataset.link === 'open';",
        json!([]),
    );
    widget(
        customer.to(1),
        "root.querySelector('button.toggle').click(); root.querySelector('button.ask').click();",
        json!([]),
    );
    wait_widget(
        customer.to(1),
        "queue position 2",
        "return host.dataset.state === 'waiting' && host.dataset.position === '2' &&
                root.querySelector('.status').textContent.includes('number 2');",
        json!([]),
    );
    customer
        .to(2)
        .navigate(&format!("{}/news", shop.origins[2]))
        .expect("third shop");
    wait_widget(
        customer.to(2),
        "the third widget",
        "return host.dataset.link === 'open';",
        json!([]),
    );

    // 10. The console is back: the head of the queue is offered to it; the
    //     presenter pushes one card and one line to every visitor.
    reopen_console(&rep, addr, "support");
    wait_row(
        &rep,
        "the visitors and the offer of the first in line",
        Some(&visitor),
        "r.accept && document.querySelectorAll('#visitors tbody tr').length >= 3",
    );
    rep.execute(
        "document.getElementById('to-all').checked = true;
         document.getElementById('present-card').click();
         const f = document.querySelector('#presenter form.mini');
         f.elements.title.value = 'Webinar at 3'; f.elements.text.value = 'Join us <live>';
         f.requestSubmit();",
        json!([]),
    )
    .expect("present a card");
    for i in 0..3 {
        wait_widget(
            customer.to(i),
            "the presented card",
            "const c = root.querySelector('.card'); return c && !c.hidden &&
                    c.querySelector('h3').textContent === 'Webinar at 3' &&
                    c.querySelector('p').textContent === 'Join us <live>';",
            json!([]),
        );
    }
    rep.execute(
        "document.getElementById('present-chat').click();
         const f = document.querySelector('#presenter form.mini');
         f.elements.text.value = 'We close in 10 minutes'; f.requestSubmit();",
        json!([]),
    )
    .expect("present a line");
    for i in 0..3 {
        widget_shows_line(customer.to(i), "We close in 10 minutes");
    }
}

#[test]
fn lazy_widget_strict_csp_page_demo_and_invitation() {
    let _turn = util::browser::turn();
    let shop = Shop::start("support");
    let server = start_server(&shop.origins);
    let addr = server.addr;
    shop.embed_from(addr);
    representative_with_site(addr, "rita", "support");
    let rep = Browser::start().expect("chromium for the representative");
    open_console(&rep, addr, "rita", "support");
    let customer = Browser::start().expect("chromium for the customer");
    let lazy_window = customer.current_window().expect("window");

    // data-open="interaction": the page loads, the widget shows, but no
    // channel opens (not even /altsock.js) until the visitor interacts.
    customer
        .navigate(&format!("{}/lazy", shop.origins[0]))
        .expect("lazy page");
    wait_widget(
        &customer,
        "the lazy widget drawn",
        "return !!root.querySelector('button.toggle');",
        json!([]),
    );

    // Meanwhile a page under a strict CSP (its own origin) opens at load;
    // the widget works and keeps its style there.
    let strict_window = customer.new_window().expect("strict window");
    customer.switch_to(&strict_window).expect("switch");
    let strict = format!("{}/strict", shop.origins[1]);
    customer.navigate(&strict).expect("strict page");
    wait_widget(
        &customer,
        "the strict page's widget open",
        "return host.dataset.link === 'open';",
        json!([]),
    );
    let look = widget(
        &customer,
        "return getComputedStyle(root.querySelector('button.toggle')).backgroundColor;",
        json!([]),
    );
    assert_eq!(
        look, "rgb(10, 88, 202)",
        "the constructed style sheet applies under the CSP"
    );
    wait_row(
        &rep,
        "the strict page's visitor",
        None,
        &format!("r.url === {}", json!(strict)),
    );
    customer
        .switch_to(&lazy_window)
        .expect("back to the lazy page");
    let lazy = customer
        .execute("return typeof window.Altsock;", json!([]))
        .expect("lazy state");
    assert_eq!(lazy, "undefined", "no channel before an interaction");
    let listed = rep
        .execute(
            &format!("{ROW} return [...document.querySelectorAll('#visitors tbody tr')].map(tr => tr.querySelector('.url').textContent);"),
            json!([]),
        )
        .expect("rows");
    assert!(
        !listed.to_string().contains("/lazy"),
        "the lazy visitor is not listed yet: {listed}"
    );
    customer
        .execute(
            "document.body.dispatchEvent(new PointerEvent('pointerdown', { bubbles: true }));",
            json!([]),
        )
        .expect("interact");
    let lazy_url = format!("{}/lazy", shop.origins[0]);
    wait(
        &rep,
        "the lazy visitor listed",
        "return [...document.querySelectorAll('#visitors tbody .url')].some(u => u.textContent === arguments[0]);",
        json!([lazy_url]),
    );

    // The demo page served by altsock itself (same origin) embeds the widget.
    customer
        .navigate(&format!("http://{addr}/assist/demo"))
        .expect("demo page");
    wait_widget(
        &customer,
        "the demo's widget open",
        "return host.dataset.link === 'open';",
        json!([]),
    );
    let demo_url = format!("http://{addr}/assist/demo");
    wait(
        &rep,
        "the demo visitor listed",
        "return [...document.querySelectorAll('#visitors tbody .url')].some(u => u.textContent === arguments[0]);",
        json!([demo_url]),
    );

    // A proactive invitation: the widget opens with it; accepted, the
    // visitor chats with the representative who invited.
    rep.execute(
        "document.getElementById('invite-text').value = 'Can I <help>?';
         const tr = [...document.querySelectorAll('#visitors tbody tr')]
           .find(r => r.querySelector('.url').textContent === arguments[0]);
         tr.querySelector('button.invite').click();",
        json!([demo_url]),
    )
    .expect("invite");
    wait_widget(
        &customer,
        "the invitation",
        "const i = root.querySelector('.invite');
         return !i.hidden && i.querySelector('.text').textContent === 'Can I <help>?' &&
                !root.querySelector('.panel').hidden;",
        json!([]),
    );
    widget(
        &customer,
        "root.querySelector('.invite button.accept').click();",
        json!([]),
    );
    wait_widget(
        &customer,
        "chatting after the invitation",
        "return host.dataset.state === 'chatting' && root.querySelector('.status').textContent.includes('rita');",
        json!([]),
    );
}
