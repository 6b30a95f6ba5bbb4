//! Presence in big groups: a few hundred members of one group come online
//! (and some go again) and every member's view, built only from its pipe
//! (`resync` pages and `updates` batches of `/jchat?v=2`), ends equal to the
//! server's, with no presence delivered twice; a watcher that fell behind
//! its bounded queue gets a `resync`, not a `gap`; `GET /members` pages a
//! group online first with search; missing fields get `400` naming them.

mod presence_support;
mod util;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use altsock::server::presence::seed::seed_bench;
use presence_support::*;
use serde_json::{json, Value};
use util::TestServer;

const PASSWORD: &str = "bench-password";

/// A server on a database seeded with `n` members `m1..mN` of group `big`,
/// with the presence window `window`.
fn seeded(n: usize, window: Duration) -> TestServer<altsock::server::Job> {
    let db = util::temp_dir("scale").join("p.db");
    let names: Vec<String> = (1..=n).map(|i| format!("m{i}")).collect();
    assert_eq!(seed_bench(&db, "big", &names, PASSWORD).unwrap(), n);
    let builder = altsock::Engine::builder()
        .poll_interval(Duration::from_millis(20))
        .keepalive_interval(Duration::from_secs(30));
    util::spawn_server(builder, move |config| {
        config.db_path = db;
        config.presence.window = window;
    })
}

fn log_in(addr: SocketAddr, name: &str) -> String {
    let r = post(
        addr,
        "/login",
        &json!({ "username": name, "password": PASSWORD }),
    );
    assert_eq!(r.status, 200, "login {name}: {}", r.text());
    body(&r)["session"].as_str().unwrap().to_string()
}

/// The names of group `big` by roster index, as `GET /members` numbers
/// them (`i`), with the roster's epoch.
fn roster_names(addr: SocketAddr, me: &str, sid: &str) -> (Vec<String>, String) {
    let list = body(&get(
        addr,
        &format!("/members?group=big&per=1000&me={me}&id={sid}"),
    ));
    let mut names = Vec::new();
    for m in list["members"].as_array().unwrap() {
        let i = m["i"].as_u64().expect("a group member has a roster index") as usize;
        if names.len() <= i {
            names.resize(i + 1, String::new());
        }
        names[i] = m["name"].as_str().unwrap().to_string();
    }
    (names, list["roster"].as_str().unwrap().to_string())
}

/// The roster indices of a list given as gaps.
fn from_gaps(v: &Value) -> Vec<usize> {
    let mut at = 0;
    v.as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            at += g.as_u64().unwrap() as usize;
            at
        })
        .collect()
}

/// The roster indices whose bit is set in a `resync` page (from `from`).
fn from_bits(page: &Value) -> Vec<usize> {
    use base64::Engine as _;
    let text = page["bits"].as_str().expect("a group resync carries bits");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    let from = page["from"].as_u64().unwrap() as usize;
    (0..bytes.len() * 8)
        .filter(|k| bytes[k / 8] >> (k % 8) & 1 == 1)
        .map(|k| from + k)
        .collect()
}

/// One member's pipe and the online set it has been told.
struct Watcher {
    name: String,
    /// Group `big`'s names by roster index, and the roster's epoch.
    roster: (Vec<String>, String),
    pipe: Pipe,
    view: BTreeSet<String>,
    count: u64,
    duplicates: Vec<String>,
}

impl Watcher {
    /// Applies the next event; panics on a `gap` (a batched pipe resyncs).
    fn apply_next(&mut self) {
        let ev = self.pipe.next();
        let (names, epoch) = &self.roster;
        if let Some(e) = ev.data.get("roster") {
            assert_eq!(e, epoch.as_str(), "{}: the roster's epoch", self.name);
        }
        let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| format!("#{i}?"));
        match ev.kind.as_str() {
            "resync" => {
                if ev.data["page"] == 1 {
                    self.view.clear();
                }
                self.view.extend(from_bits(&ev.data).into_iter().map(name));
                self.count = ev.data["count"].as_u64().unwrap();
            }
            "updates" => {
                for user in from_gaps(&ev.data["on"]).into_iter().map(name) {
                    if !self.view.insert(user.clone()) {
                        self.duplicates.push(format!("{user} online"));
                    }
                }
                for user in from_gaps(&ev.data["off"]).into_iter().map(name) {
                    if !self.view.remove(&user) {
                        self.duplicates.push(format!("{user} offline"));
                    }
                }
                self.count = ev.data["count"].as_u64().unwrap();
            }
            "gap" | "update" => panic!("{}: a batched pipe got {ev:?}", self.name),
            _ => {}
        }
    }
}

/// The server's online members of `big`, as `GET /members` pages them.
fn server_online(addr: SocketAddr, me: &str, sid: &str) -> BTreeSet<String> {
    let list = body(&get(
        addr,
        &format!("/members?group=big&per=1000&me={me}&id={sid}"),
    ));
    list["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["online"] == true)
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_member_of_a_few_hundred_ends_with_the_servers_view() {
    const N: usize = 300;
    const LEAVING: usize = 40;
    let server = seeded(N + 1, Duration::from_millis(20));
    let a = server.addr;
    let sessions: Vec<String> = (1..=N).map(|i| log_in(a, &format!("m{i}"))).collect();
    let roster = roster_names(a, "m1", &sessions[0]);
    assert_eq!(roster.0.len(), N + 1, "every member numbered");
    // Half the pipes SSE, half `msg TYPE JSON` lines; all batched.
    let mut watchers: Vec<Watcher> = sessions
        .iter()
        .enumerate()
        .map(|(i, sid)| {
            let name = format!("m{}", i + 1);
            let pipe = Pipe::open_query(a, &format!("me={name}&id={sid}&v=2"), i % 2 == 0);
            Watcher {
                name,
                roster: roster.clone(),
                pipe,
                view: BTreeSet::new(),
                count: 0,
                duplicates: Vec::new(),
            }
        })
        .collect();
    // The last forty go away again.
    for w in watchers.drain(N - LEAVING..) {
        drop(w.pipe);
    }
    let expected: BTreeSet<String> = (1..=N - LEAVING).map(|i| format!("m{i}")).collect();
    let server_view = {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let view = server_online(a, "m1", &sessions[0]);
            if view == expected || std::time::Instant::now() > deadline {
                break view;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(server_view, expected, "the server's online set");
    // A last member comes online after all that: once a watcher hears of
    // them, everything before has reached it (one pipe is one ordered stream).
    let last_sid = log_in(a, "m301");
    let last = Pipe::open_query(a, &format!("me=m301&id={last_sid}&v=2"), true);
    let mut expected = expected;
    expected.insert("m301".to_string());
    for w in &mut watchers {
        while !w.view.contains("m301") {
            w.apply_next();
        }
        assert_eq!(w.view, expected, "{}'s view", w.name);
        assert_eq!(w.count, expected.len() as u64, "{}'s count", w.name);
        assert!(
            w.duplicates.is_empty(),
            "{} was told twice: {:?}",
            w.name,
            w.duplicates
        );
    }
    let mut last = Watcher {
        name: "m301".into(),
        roster,
        pipe: last,
        view: BTreeSet::new(),
        count: 0,
        duplicates: Vec::new(),
    };
    while last.view.len() < expected.len() {
        last.apply_next();
    }
    assert_eq!(last.view, expected, "the last member's resync");
}

#[test]
fn a_batched_watcher_that_fell_behind_gets_a_resync_not_a_gap() {
    // Window zero: every arrival is its own event, so 300 arrivals overflow
    // the 256-event queue of a poller who is away.
    let server = seeded(301, Duration::ZERO);
    let a = server.addr;
    let me = log_in(a, "m1");
    let first = call(
        a,
        "GET",
        &format!("/jchat?mode=poll&v=2&timeout=60000&me=m1&id={me}"),
        "",
        "",
    );
    let events = poll_events(&first);
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["hello", "resync"], "{}", first.text());
    let seen = first.header("x-altsock-id").unwrap().to_string();
    let mut pipes = Vec::new();
    for i in 2..=301 {
        let name = format!("m{i}");
        let sid = log_in(a, &name);
        pipes.push(Pipe::open_query(a, &format!("me={name}&id={sid}"), false));
    }
    let again = call(
        a,
        "GET",
        &format!("/jchat?mode=poll&v=2&since={seen}&me=m1&id={me}"),
        "",
        "",
    );
    assert_eq!(again.status, 200);
    let events = poll_events(&again);
    assert!(
        events.iter().all(|e| e.kind == "resync"),
        "{:?}",
        events.iter().map(|e| &e.kind).collect::<Vec<_>>()
    );
    let (names, _) = roster_names(a, "m1", &me);
    let online: BTreeSet<&str> = events
        .iter()
        .flat_map(|e| from_bits(&e.data))
        .map(|i| names[i].as_str())
        .collect();
    let everyone: BTreeSet<String> = (1..=301).map(|i| format!("m{i}")).collect();
    assert_eq!(
        online,
        everyone.iter().map(String::as_str).collect(),
        "the whole online set"
    );
    assert_eq!(events[0].data["count"], 301);
    // Resuming after the resync picks up from there: nothing lost since.
    let resumed = again.header("x-altsock-id").unwrap();
    pipes.truncate(299);
    let next = call(
        a,
        "GET",
        &format!("/jchat?mode=poll&v=2&since={resumed}&timeout=5000&me=m1&id={me}"),
        "",
        "",
    );
    let events = poll_events(&next);
    assert_eq!(events[0].kind, "updates", "{}", next.text());
    let off: Vec<&str> = from_gaps(&events[0].data["off"])
        .into_iter()
        .map(|i| names[i].as_str())
        .collect();
    assert_eq!(off, ["m301"]);
}

#[test]
fn members_come_in_pages_online_first_with_search() {
    let server = seeded(250, Duration::from_millis(20));
    let a = server.addr;
    let me = log_in(a, "m1");
    let _pipes: Vec<Pipe> = ["m200", "m7", "m150"]
        .iter()
        .map(|name| {
            let sid = log_in(a, name);
            Pipe::open_query(a, &format!("me={name}&id={sid}"), false)
        })
        .collect();
    let page = |q: &str| -> Value { body(&get(a, &format!("/members?me=m1&id={me}&{q}"))) };
    let first = page("group=big");
    assert_eq!(
        (
            &first["total"],
            &first["online"],
            &first["pages"],
            &first["per"]
        ),
        (&json!(250), &json!(3), &json!(3), &json!(100))
    );
    let names: Vec<&str> = first["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 100);
    assert_eq!(&names[..4], ["m150", "m200", "m7", "m1"], "online first");
    let last = page("group=big&page=3");
    assert_eq!(last["members"].as_array().unwrap().len(), 50);
    let found = page("group=big&q=M20");
    assert_eq!(found["matched"], 11, "m20 and m200-m209: {found}");
    assert_eq!(found["members"][0]["name"], "m200");
    assert_eq!(found["members"][0]["online"], true);
    // Refusals name what is wrong.
    let bad = get(a, &format!("/members?me=m1&id={me}"));
    assert_eq!(
        (bad.status, body(&bad)["error"].as_str()),
        (400, Some("missing field: group"))
    );
    assert_eq!(
        get(a, &format!("/members?group=big&page=x&me=m1&id={me}")).status,
        400
    );
    assert_eq!(
        get(a, &format!("/members?group=nosuch&me=m1&id={me}")).status,
        404
    );
    assert_eq!(get(a, "/members?group=big").status, 403);
}

#[test]
fn missing_fields_get_400_naming_them() {
    let server = server();
    let a = server.addr;
    let sid = user(a, "alice");
    for (path, field) in [
        ("/active", "group"),
        ("/contacts", "name"),
        ("/groups", "name"),
    ] {
        let r = act(a, path, "alice", &sid, json!({}));
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert_eq!(
            body(&r)["error"],
            format!("missing field: {field}"),
            "{path}"
        );
    }
    // Nothing changed: the address book is still the active group.
    let list = body(&get(a, &format!("/groups?me=alice&id={sid}")));
    assert_eq!(list["active"], "contacts");
}

#[test]
fn a_join_in_a_big_group_sends_the_member_not_the_list() {
    let server = seeded(500, Duration::from_millis(20));
    let a = server.addr;
    let me = log_in(a, "m1");
    let mut pipe = Pipe::open_query(a, &format!("me=m1&id={me}&v=2"), false);
    let newcomer = user(a, "newbie");
    assert_eq!(
        act(a, "/groups/big/join", "newbie", &newcomer, json!({})).status,
        200
    );
    let ev = pipe.next_of("refresh");
    assert_eq!(ev.data["user"], "newbie");
    assert_eq!(ev.data["joined"], true);
    assert_eq!(ev.data["total"], 501);
    assert!(ev.data.get("members").is_none());
    let raw = ev.data.to_string();
    assert!(raw.len() < 200, "{raw}");
    // The newcomer is numbered after the 500 and is heard of by that number.
    assert_eq!(ev.data["i"], 500);
    let (names, _) = roster_names(a, "m1", &me);
    assert_eq!(names[500], "newbie");
    let _theirs = Pipe::open_query(a, &format!("me=newbie&id={newcomer}&v=2"), false);
    let ev = pipe.next_of("updates");
    assert_eq!(from_gaps(&ev.data["on"]), [500], "{}", ev.data);
    assert_eq!(ev.data["count"], 2);
}

#[test]
fn post_resync_sends_the_view_down_the_pipe_for_every_tab() {
    let server = seeded(20, Duration::from_millis(20));
    let a = server.addr;
    let me = log_in(a, "m1");
    // Without a batched pipe there is nothing to resync.
    let r = act(a, "/resync", "m1", &me, json!({}));
    assert_eq!(r.status, 409, "{}", r.text());
    let mut pipe = Pipe::open_query(a, &format!("me=m1&id={me}&v=2"), true);
    let opening = pipe.next_of("resync");
    assert!(
        opening.data.get("seq").is_none(),
        "the opening one is not queued"
    );
    let others: Vec<Pipe> = (2..=5)
        .map(|i| {
            let sid = log_in(a, &format!("m{i}"));
            Pipe::open_query(a, &format!("me=m{i}&id={sid}&v=2"), false)
        })
        .collect();
    let r = act(a, "/resync", "m1", &me, json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(body(&r)["resync"], 1);
    // In order after the updates that went before it, with a seq of its own
    // (a tab sharing the pipe takes it), the whole view.
    let ev = pipe.next_of("resync");
    assert!(
        ev.data["seq"].as_u64().is_some_and(|seq| seq > 0),
        "{}",
        ev.data
    );
    assert_eq!(ev.data["count"], 5);
    let (names, _) = roster_names(a, "m1", &me);
    let online: BTreeSet<&str> = from_bits(&ev.data)
        .into_iter()
        .map(|i| names[i].as_str())
        .collect();
    assert_eq!(online, ["m1", "m2", "m3", "m4", "m5"].into_iter().collect());
    drop(others);
}
