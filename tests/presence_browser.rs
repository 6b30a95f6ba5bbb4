//! The presence server end to end in headless Chromium: two users in two
//! browsers log in through the home page; when B logs in, A's page shows B
//! online without a reload; they chat both ways through chat boxes (text
//! stays text, any user name is just a name); when B's tab closes, A's page
//! shows B offline. Each step waits for what the page shows, with generous
//! limits; the times measured are printed (benchmark figures, not asserts).

mod presence_support;
mod util;

use std::time::{Duration, Instant};

use presence_support::*;
use serde_json::json;
use util::browser::Browser;

/// The most a page may take to show what it was told (generous: a loaded
/// two-core machine runs several Chromiums at once).
const SHOWN: Duration = Duration::from_secs(15);

/// The browser tests of this file run one at a time, so that the timed steps
/// do not compete with other Chromiums of the same file for two cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes the turn of one browser test (a failed test's turn is still good).
fn my_turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Logs `name` in through the home page's form and waits for `/home` with
/// its pipe connected.
fn log_in(browser: &Browser, addr: std::net::SocketAddr, name: &str) {
    open_home(browser, addr);
    submit_login(browser, name);
    wait_connected(browser);
}

/// Opens the home page at `/`.
fn open_home(browser: &Browser, addr: std::net::SocketAddr) {
    browser
        .navigate(&format!("http://{addr}/"))
        .expect("navigate");
}

/// Fills in and submits the login form.
fn submit_login(browser: &Browser, name: &str) {
    browser
        .execute(
            "const f = document.getElementById('login');
             f.username.value = arguments[0]; f.password.value = 'correct horse';
             f.requestSubmit();",
            json!([name]),
        )
        .expect("submit login");
}

/// Adds `name` to the address book through the page's form.
fn add_contact(browser: &Browser, name: &str) {
    browser
        .execute(
            "const f = document.getElementById('add-contact');
             f.name.value = arguments[0]; f.requestSubmit();",
            json!([name]),
        )
        .expect("add contact");
}

/// Waits for `/home` with its pipe connected.
fn wait_connected(browser: &Browser) {
    browser
        .wait_until(
            "home page connected",
            "const p = document.getElementById('pipe'); return p && p.textContent === 'connected';",
            Duration::from_secs(10),
        )
        .expect("home");
}

/// The presence shown in the current page for `user`.
const STATUS: &str =
    "const tr = document.querySelector('#members tr[data-user=\"' + arguments[0] + '\"]');
     return tr ? tr.querySelector('.status').textContent : null;";

/// Waits until the page shows `user` as `state`; returns how long it took.
fn wait_status(browser: &Browser, user: &str, state: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let shown = browser.execute(STATUS, json!([user])).expect("status");
        if shown == state {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{user} not shown {state} after {limit:?}; shows {shown}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Types `text` into the chat box with `other` and sends it.
fn say(browser: &Browser, other: &str, text: &str) {
    browser
        .execute(
            "const box = document.querySelector('.chatwin[data-with=\"' + arguments[0] + '\"]');
             const f = box.querySelector('form.reply'); f.msg.value = arguments[1]; f.requestSubmit();",
            json!([other, text]),
        )
        .expect("send chat");
}

/// Waits until the chat box with `other` shows a line with exactly `text`.
fn wait_line(browser: &Browser, other: &str, text: &str) {
    browser
        .wait_until(
            "chat line",
            &format!(
                "const box = document.querySelector('.chatwin[data-with=\"{other}\"]');
                 if (!box) return false;
                 const spans = [...box.querySelectorAll('.log .text')];
                 return spans.some(s => s.textContent === {t}) && !box.querySelector('.log i');",
                t = json!(text)
            ),
            SHOWN,
        )
        .expect("chat line shown");
}

#[test]
fn two_users_see_each_other_and_chat_in_chromium() {
    let _turn = my_turn();
    let server = server();
    let a = server.addr;
    register(a, "alice");
    register(a, "bob");
    let alice_browser = Browser::start().expect("chromium");
    let mut bob_browser = Browser::start().expect("chromium");
    log_in(&alice_browser, a, "alice");
    // Alice adds Bob through her page; the row appears without a reload.
    add_contact(&alice_browser, "bob");
    wait_status(&alice_browser, "bob", "offline", SHOWN);
    alice_browser
        .execute("window.notReloaded = true;", json!([]))
        .unwrap();

    // From the moment Bob submits the login form (his password checked,
    // /home loaded, its pipe opened) to Alice's row turning online.
    open_home(&bob_browser, a);
    submit_login(&bob_browser, "bob");
    let shown = wait_status(&alice_browser, "bob", "online", SHOWN);
    eprintln!("alice saw bob online {shown:?} after he submitted the login form");
    wait_connected(&bob_browser);

    // Chat both ways; markup in the text stays text.
    alice_browser
        .execute(
            "document.querySelector('button.chat[data-user=\"bob\"]').click();",
            json!([]),
        )
        .unwrap();
    bob_browser
        .wait_until(
            "initChat opens Bob's box",
            "return !!document.querySelector('.chatwin[data-with=\"alice\"]');",
            SHOWN,
        )
        .expect("box");
    let hello = "hi <i>bob</i> & co";
    say(&alice_browser, "bob", hello);
    wait_line(&bob_browser, "alice", hello);
    say(&bob_browser, "alice", "hello alice");
    wait_line(&alice_browser, "bob", "hello alice");

    // Bob's tab closes: Alice sees him offline.
    let bob_home = bob_browser.current_window().unwrap();
    let spare = bob_browser.new_tab().unwrap();
    bob_browser.switch_to(&bob_home).unwrap();
    bob_browser.close_window().unwrap();
    let gone = wait_status(&alice_browser, "bob", "offline", SHOWN);
    eprintln!("alice saw bob offline {gone:?} after his tab closed");
    let same_page = alice_browser
        .execute("return window.notReloaded === true;", json!([]))
        .unwrap();
    assert_eq!(same_page, true, "updates came without a reload");
    bob_browser.switch_to(&spare).unwrap();
    bob_browser.quit();
}

#[test]
fn an_invitation_window_appears_on_the_next_page_and_replies_work() {
    let _turn = my_turn();
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    register(a, "bob");
    let mut alice_pipe = Pipe::open(a, "alice", &alice, false);
    let browser = Browser::start().expect("chromium");
    log_in(&browser, a, "bob");
    // Bob browses elsewhere; Alice invites him.
    browser
        .navigate(&format!("http://{a}/some/other/page"))
        .expect("navigate");
    let r = get(
        a,
        &format!("/initchat?me=alice&to=bob&id={alice}&msg=coffee%3F%20%3Cb%3Enow%3C%2Fb%3E"),
    );
    assert_eq!(r.status, 200);
    browser
        .navigate(&format!("http://{a}/nobody-here"))
        .expect("navigate");
    let shown = browser
        .execute(
            "const w = document.querySelector('.chatwin.invite');
             return w && [w.querySelector('header').textContent, w.querySelector('.invite-from').textContent,
                          w.querySelector('.invite-msg').textContent, !!w.querySelector('.invite-msg b')];",
            json!([]),
        )
        .expect("invitation");
    assert_eq!(
        shown,
        json!(["Chat invitation", "alice", "coffee? <b>now</b>", false])
    );
    say(&browser, "alice", "on my way");
    let ev = alice_pipe.next_of("chat");
    assert_eq!(
        (ev.data["from"].as_str(), ev.data["msg"].as_str()),
        (Some("bob"), Some("on my way"))
    );
    // The window opened Bob's pipe: Alice's answer shows up in it.
    send_chat(a, "alice", &alice, "bob", "see you");
    wait_line(&browser, "alice", "see you");
}

#[test]
fn the_home_page_manages_groups_and_follows_refresh() {
    let _turn = my_turn();
    let server = server();
    let a = server.addr;
    register(a, "alice");
    let bob = user(a, "bob");
    let browser = Browser::start().expect("chromium");
    log_in(&browser, a, "alice");
    let submit = |form: &str, name: &str| {
        browser
            .execute(
                "const f = document.getElementById(arguments[0]); f.name.value = arguments[1]; f.requestSubmit();",
                json!([form, name]),
            )
            .expect("submit");
    };
    submit("create-group", "team");
    browser
        .wait_until(
            "the new group in the selector",
            "return [...document.querySelectorAll('#active option')].some(o => o.value === 'team')
                && document.getElementById('pipe').textContent === 'connected';",
            Duration::from_secs(10),
        )
        .expect("group created");
    browser
        .execute(
            "const s = document.getElementById('active'); s.value = 'team'; s.dispatchEvent(new Event('change'));",
            json!([]),
        )
        .unwrap();
    wait_status(&browser, "alice", "online", SHOWN);
    browser
        .execute("window.notReloaded = true;", json!([]))
        .unwrap();
    // Bob joins: a refresh adds his row; his pipe makes it online.
    assert_eq!(
        act(a, "/groups/team/join", "bob", &bob, json!({})).status,
        200
    );
    wait_status(&browser, "bob", "offline", SHOWN);
    let _bob_pipe = Pipe::open(a, "bob", &bob, false);
    wait_status(&browser, "bob", "online", SHOWN);
    assert_eq!(
        act(a, "/groups/team/leave", "bob", &bob, json!({})).status,
        200
    );
    browser
        .wait_until(
            "bob's row removed",
            "return !document.querySelector('#members tr[data-user=\"bob\"]');",
            SHOWN,
        )
        .expect("row removed");
    let same = browser
        .execute("return window.notReloaded === true;", json!([]))
        .unwrap();
    assert_eq!(same, true);
    submit("leave-group", "team");
    browser
        .wait_until(
            "back to the address book",
            "return document.getElementById('active').value === 'contacts'
                && ![...document.querySelectorAll('#active option')].some(o => o.value === 'team');",
            Duration::from_secs(10),
        )
        .expect("left");
}

#[test]
fn two_tabs_of_one_user_share_one_pipe_and_the_other_takes_over() {
    let _turn = my_turn();
    let server = server();
    let a = server.addr;
    register(a, "alice");
    let bob = user(a, "bob");
    let mut browser = Browser::start().expect("chromium");
    log_in(&browser, a, "alice");
    add_contact(&browser, "bob");
    wait_status(&browser, "bob", "offline", SHOWN);
    let first = browser.current_window().unwrap();
    let second = browser.new_tab().unwrap();
    browser.switch_to(&second).unwrap();
    browser.navigate(&format!("http://{a}/home")).unwrap();
    browser
        .wait_until(
            "the second tab follows the first tab's pipe",
            "return !!window.presencePipe && !window.presencePipe.isLeader();",
            SHOWN,
        )
        .expect("follower");
    assert_eq!(
        metric(a, "altsock_held_connections"),
        1,
        "one /jchat for two tabs"
    );

    let bob_pipe = Pipe::open(a, "bob", &bob, false);
    for tab in [&first, &second] {
        browser.switch_to(tab).unwrap();
        wait_status(&browser, "bob", "online", SHOWN);
    }
    browser.switch_to(&first).unwrap();
    browser.close_window().unwrap();
    browser.switch_to(&second).unwrap();
    browser
        .wait_until(
            "the second tab takes the pipe over",
            "return window.presencePipe.isLeader() && document.getElementById('pipe').textContent === 'connected';",
            SHOWN,
        )
        .expect("leader");
    drop(bob_pipe);
    wait_status(&browser, "bob", "offline", SHOWN);
    assert_eq!(metric(a, "altsock_held_connections"), 1);
    browser.quit();
}

#[test]
fn a_follower_tab_gets_the_view_and_live_changes_of_a_group() {
    let _turn = my_turn();
    let db = util::temp_dir("follower").join("p.db");
    let names: Vec<String> = (1..=20).map(|i| format!("m{i}")).collect();
    altsock::server::presence::seed::seed_bench(&db, "big", &names, "correct horse").unwrap();
    let server = server_at(Some(db));
    let a = server.addr;
    let sid = login(a, "m2");
    let _m2 = Pipe::open_query(a, &format!("me=m2&id={sid}"), false);
    let mut browser = Browser::start().expect("chromium");
    log_in(&browser, a, "m1");
    let view = "const v = window.presenceView && window.presenceView();
                return v && v.synced && v.online === 2 && !!v.epoch;";
    browser
        .wait_until("the leader tab's view", view, SHOWN)
        .expect("leader view");
    let first = browser.current_window().unwrap();
    let second = browser.new_tab().unwrap();
    browser.switch_to(&second).unwrap();
    browser.navigate(&format!("http://{a}/home")).unwrap();
    browser
        .wait_until(
            "the second tab follows the first tab's pipe",
            "return !!window.presencePipe && !window.presencePipe.isLeader();",
            SHOWN,
        )
        .expect("follower");
    // The pipe opened before this tab: it asks for the view and gets it.
    browser
        .wait_until("the follower tab's view", view, SHOWN)
        .expect("follower view");
    assert_eq!(
        metric(a, "altsock_held_connections"),
        2,
        "m1's one pipe and m2's"
    );
    // Live changes by roster index reach both tabs' rows.
    let sid = login(a, "m3");
    let m3 = Pipe::open_query(a, &format!("me=m3&id={sid}"), false);
    for tab in [&second, &first] {
        browser.switch_to(tab).unwrap();
        wait_status(&browser, "m3", "online", SHOWN);
        wait_roster(&browser, "3 online", "r.online === '3'");
    }
    drop(m3);
    browser.switch_to(&second).unwrap();
    wait_status(&browser, "m3", "offline", SHOWN);
    browser.quit();
}

/// What the roster of the current page shows: counts, page info, and the
/// names and states of the rows.
const ROSTER: &str = "return {
       online: document.getElementById('online-count').textContent,
       total: document.getElementById('member-count').textContent,
       info: document.getElementById('page-info').textContent,
       rows: [...document.querySelectorAll('#members tr')].map(tr =>
         [tr.dataset.user, tr.querySelector('.status').textContent]),
     };";

/// Waits until the roster satisfies `check` (a JS expression over `r`).
fn wait_roster(browser: &Browser, what: &str, check: &str) -> serde_json::Value {
    let script = format!("const r = (function () {{ {ROSTER} }})(); return ({check}) ? r : null;");
    if let Err(e) = browser.wait_until(what, &script, Duration::from_secs(10)) {
        let shown = browser.execute(ROSTER, json!([]));
        panic!("{e}; the page shows {shown:?}");
    }
    browser.execute(ROSTER, json!([])).expect("roster")
}

#[test]
fn the_page_of_a_ten_thousand_member_group_counts_searches_and_pages() {
    let _turn = my_turn();
    let db = util::temp_dir("big-page").join("p.db");
    let names: Vec<String> = (1..=10_000).map(|i| format!("m{i}")).collect();
    altsock::server::presence::seed::seed_bench(&db, "big", &names, "correct horse").unwrap();
    let server = server_at(Some(db));
    let a = server.addr;
    // 150 members online before the page opens.
    let pipes: Vec<Pipe> = (2..=151)
        .map(|i| {
            let name = format!("m{i}");
            let sid = login(a, &name);
            Pipe::open_query(a, &format!("me={name}&id={sid}"), false)
        })
        .collect();
    let mut browser = Browser::start().expect("chromium");
    log_in(&browser, a, "m1");
    let first = wait_roster(
        &browser,
        "the first page with the counts",
        "r.online === '151' && r.total === '10000' && r.rows.length === 100",
    );
    assert_eq!(first["info"], "page 1 of 100");
    let rows = first["rows"].as_array().unwrap();
    assert!(
        rows.iter().all(|r| r[1] == "online"),
        "online members first: {rows:?}"
    );
    // Page 2: the other 51 online members, then the offline ones by name.
    browser
        .execute("document.getElementById('next').click();", json!([]))
        .unwrap();
    let second = wait_roster(&browser, "page 2", "r.info === 'page 2 of 100'");
    let rows = second["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 100);
    let online = rows.iter().filter(|r| r[1] == "online").count();
    assert_eq!(online, 51, "{rows:?}");
    assert_eq!(rows[51][1], "offline");
    // Search narrows the list to one offline member ...
    browser
        .execute(
            "const s = document.getElementById('search'); s.value = 'm9999';
             s.dispatchEvent(new Event('input'));",
            json!([]),
        )
        .unwrap();
    let found = wait_roster(&browser, "the search result", "r.rows.length === 1");
    assert_eq!(found["rows"], json!([["m9999", "offline"]]));
    assert_eq!(found["info"], "page 1 of 1 (1 matching)");
    browser
        .execute("window.notReloaded = true;", json!([]))
        .unwrap();
    // ... whose row turns online live when they come online, with the count.
    let sid = login(a, "m9999");
    let late = Pipe::open_query(a, &format!("me=m9999&id={sid}"), false);
    wait_status(&browser, "m9999", "online", Duration::from_secs(5));
    wait_roster(&browser, "152 online", "r.online === '152'");
    drop(late);
    wait_status(&browser, "m9999", "offline", Duration::from_secs(5));
    drop(pipes);
    wait_roster(&browser, "only m1 online", "r.online === '1'");
    let same = browser
        .execute("return window.notReloaded === true;", json!([]))
        .unwrap();
    assert_eq!(same, true, "live updates, no reload");
    browser.quit();
}

#[test]
fn chat_boxes_work_for_users_named_like_object_properties() {
    let _turn = my_turn();
    let server = server();
    let a = server.addr;
    register(a, "alice");
    // Names a plain object already has as properties; `__proto__` cannot
    // be a user name (names start with a letter or digit).
    let names = ["constructor", "hasOwnProperty", "toString"];
    let sids: Vec<String> = names.iter().map(|n| user(a, n)).collect();
    let mut pipes: Vec<Pipe> = names
        .iter()
        .zip(&sids)
        .map(|(n, sid)| Pipe::open(a, n, sid, false))
        .collect();
    let browser = Browser::start().expect("chromium");
    log_in(&browser, a, "alice");
    for ((name, sid), pipe) in names.iter().zip(&sids).zip(&mut pipes) {
        let text = format!("hello from {name}");
        let r = send_chat(a, name, sid, "alice", &text);
        assert_eq!(r.status, 202, "{}", r.text());
        wait_line(&browser, name, &text);
        say(&browser, name, "hello back");
        assert_eq!(pipe.next_of("chat").data["msg"], "hello back");
    }
    let boxes = browser
        .execute(
            "return document.querySelectorAll('.chatwin').length;",
            json!([]),
        )
        .expect("boxes");
    assert_eq!(boxes, 3, "one box per user");
}
