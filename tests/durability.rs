//! Durability (issue 14): what `altsock serve` acknowledged as stored
//! survives `kill -9`. A real `altsock serve` process on a real SQLite file
//! is sent pipelined writes, killed the moment the last acknowledgement is
//! read, restarted on the same file, and every acknowledged write must be
//! there: stored chats delivered exactly once, accounts, groups, memberships,
//! address books and active groups. A full database queue answers `503` and
//! stores nothing it did not acknowledge.

mod presence_support;
mod util;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use presence_support::{body, Pipe};
use util::{start_serve_process, temp_dir, wait_for, Client, Resp};

/// A running `altsock serve`; killed with SIGKILL on drop.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Serve {
    /// Starts `altsock serve` on a free port with the database `db`.
    fn start(db: &Path, extra: &[&str]) -> Serve {
        let args: Vec<&str> = ["--poll-interval", "20ms"]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        let (child, addr) = start_serve_process(db, &args);
        Serve { child, addr }
    }

    /// `kill -9`, and waits for the process to be gone.
    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw request with a form body.
fn form(method: &str, path: &str, body: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn post_form(addr: SocketAddr, path: &str, body: &str) -> Resp {
    let mut c = Client::connect(addr);
    c.send(form("POST", path, body).as_bytes());
    c.read_response()
}

fn register(addr: SocketAddr, name: &str) -> Resp {
    post_form(
        addr,
        "/register",
        &format!("username={name}&password=correct+horse"),
    )
}

fn login(addr: SocketAddr, name: &str) -> String {
    let r = post_form(
        addr,
        "/login",
        &format!("username={name}&password=correct+horse"),
    );
    assert_eq!(r.status, 200, "login {name}: {}", r.text());
    body(&r)["session"].as_str().expect("session").to_string()
}

/// Writes all `requests` on one connection at once (a writer thread), then
/// reads as many answers, in order.
fn pipeline(addr: SocketAddr, requests: Vec<String>) -> Vec<Resp> {
    let mut client = Client::connect(addr);
    let mut writer = client.stream.try_clone().expect("clone");
    let n = requests.len();
    let all: String = requests.concat();
    let w = std::thread::spawn(move || {
        use std::io::Write;
        writer.write_all(all.as_bytes()).expect("write all");
    });
    let answers = (0..n).map(|_| client.read_response()).collect();
    w.join().expect("writer");
    answers
}

#[test]
fn acknowledged_stored_chats_survive_kill_9_and_arrive_exactly_once() {
    let db = temp_dir("durable-chat").join("altsock.db");
    let server = Serve::start(&db, &[]);
    let a = server.addr;
    assert_eq!(register(a, "alice").status, 201);
    assert_eq!(register(a, "bob").status, 201);
    let sid = login(a, "alice");
    let chats = (0..2000)
        .map(|i| {
            form(
                "POST",
                "/chat",
                &format!("me=alice&id={sid}&to=bob&msg=m{i}"),
            )
        })
        .collect();
    let answers = pipeline(a, chats);
    // Killed the moment the last answer was read.
    server.kill9();
    let mut acked = BTreeMap::new();
    for (i, r) in answers.iter().enumerate() {
        assert_eq!(r.status, 202, "chat {i}: {}", r.text());
        let b = body(r);
        assert_eq!(b["stored"], true, "chat {i}: {b}");
        acked.insert(b["id"].as_i64().expect("id"), format!("m{i}"));
    }
    assert_eq!(acked.len(), 2000, "distinct ids");

    let server = Serve::start(&db, &[]);
    let bob = login(server.addr, "bob");
    let mut pipe = Pipe::open(server.addr, "bob", &bob, false);
    let mut seen = BTreeMap::new();
    while seen.len() < acked.len() {
        let ev = pipe.next_of("message");
        let id = ev.data["id"].as_i64().expect("id");
        let text = ev.data["msg"].as_str().expect("msg").to_string();
        assert!(
            seen.insert(id, text).is_none(),
            "message {id} arrived twice"
        );
    }
    assert_eq!(seen, acked, "every acknowledged message, as sent");
    // Nothing more (no second copy) follows.
    pipe.quiet(Duration::from_millis(300));
}

#[test]
fn acknowledged_registrations_survive_kill_9() {
    let db = temp_dir("durable-register").join("altsock.db");
    let server = Serve::start(&db, &[]);
    let a = server.addr;
    // Four connections of ten pipelined registrations each (argon2 makes
    // each one cost tens of milliseconds).
    let senders: Vec<_> = (0..4)
        .map(|c| {
            std::thread::spawn(move || {
                let regs = (0..10)
                    .map(|i| {
                        let body = format!("username=user{c}x{i}&password=correct+horse");
                        form("POST", "/register", &body)
                    })
                    .collect();
                pipeline(a, regs)
            })
        })
        .collect();
    let answers: Vec<Resp> = senders
        .into_iter()
        .flat_map(|t| t.join().expect("sender"))
        .collect();
    server.kill9();
    assert!(answers.iter().all(|r| r.status == 201), "all registered");

    let server = Serve::start(&db, &[]);
    for c in 0..4 {
        for i in 0..10 {
            let name = format!("user{c}x{i}");
            let again = register(server.addr, &name);
            assert_eq!(again.status, 409, "{name} was kept: {}", again.text());
        }
    }
    // And an account works: its password hash was stored too.
    login(server.addr, "user3x9");
}

#[test]
fn acknowledged_group_and_contact_changes_survive_kill_9() {
    let db = temp_dir("durable-groups").join("altsock.db");
    let server = Serve::start(&db, &[]);
    let a = server.addr;
    for name in ["alice", "bob", "carol"] {
        assert_eq!(register(a, name).status, 201);
    }
    let sid = login(a, "alice");
    let auth = format!("me=alice&id={sid}");
    let mut writes: Vec<String> = (0..50)
        .map(|i| form("POST", "/groups", &format!("{auth}&name=team{i}")))
        .collect();
    writes.push(form("POST", "/contacts", &format!("{auth}&name=bob")));
    writes.push(form("POST", "/contacts", &format!("{auth}&name=carol")));
    writes.push(form("POST", "/groups/team0/leave", &auth));
    // Many quick changes at the end: each must be committed before its answer.
    for i in 0..300 {
        let group = format!("team{}", 1 + i % 49);
        writes.push(form("POST", "/active", &format!("{auth}&group={group}")));
    }
    writes.push(form("DELETE", "/contacts/carol", &auth));
    let answers = pipeline(a, writes);
    server.kill9();
    for r in &answers {
        assert!(
            r.status == 200 || r.status == 201,
            "{}: {}",
            r.status,
            r.text()
        );
    }

    let server = Serve::start(&db, &[]);
    let sid = login(server.addr, "alice");
    let mut c = Client::connect(server.addr);
    c.send(format!("GET /groups?me=alice&id={sid} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    let groups = body(&c.read_response());
    // The last switch: 1 + 299 % 49.
    assert_eq!(groups["active"], "team6", "{groups}");
    let mine: Vec<&str> = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    let expected: Vec<String> = (1..50).map(|i| format!("team{i}")).collect();
    let mut sorted: Vec<&str> = mine.clone();
    sorted.sort_unstable();
    let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(sorted, want, "every group joined, team0 left");
    let contacts: Vec<&str> = groups["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(contacts, ["bob"], "{groups}");
}

/// The value of one metric line on `/metrics`.
fn metric(addr: SocketAddr, name: &str) -> f64 {
    let mut c = Client::connect(addr);
    c.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    let text = c.read_response().text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[test]
fn a_full_queue_answers_503_and_stores_nothing_it_did_not_acknowledge() {
    let db = temp_dir("durable-full").join("altsock.db");
    let server = Serve::start(&db, &["--db-queue", "4"]);
    let a = server.addr;
    assert_eq!(register(a, "alice").status, 201);
    assert_eq!(register(a, "bob").status, 201);
    let sid = login(a, "alice");
    let chat = |i: usize| {
        form(
            "POST",
            "/chat",
            &format!("me=alice&id={sid}&to=bob&msg=q{i}"),
        )
    };

    // The activity lines of the two registrations and the login are
    // written first, so the blocked transaction is the chat's.
    wait_for("the activity log written", || {
        metric(a, "altsock_activity_logged_total") == 3.0
    });
    // Another connection holds SQLite's write lock: the database thread
    // blocks on its first write, and the queue behind it fills.
    let locker = rusqlite::Connection::open(&db).expect("open the database");
    locker.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let mut first = Client::connect(a);
    first.send(chat(0).as_bytes());
    wait_for("the database thread to take the first write", || {
        metric(a, "altsock_db_writing") == 1.0
    });
    let mut queued: Vec<Client> = (1..=4)
        .map(|i| {
            let mut c = Client::connect(a);
            c.send(chat(i).as_bytes());
            c
        })
        .collect();
    wait_for("four writes queued", || {
        metric(a, "altsock_db_queue_depth") == 4.0
    });
    for i in 5..15 {
        let mut c = Client::connect(a);
        c.send(chat(i).as_bytes());
        let r = c.read_response();
        assert_eq!(r.status, 503, "chat {i}: {}", r.text());
        assert!(r.header("retry-after").is_some(), "Retry-After");
    }
    locker.execute_batch("ROLLBACK").expect("unlock");
    queued.insert(0, first);
    for (i, c) in queued.iter_mut().enumerate() {
        let r = c.read_response();
        assert_eq!(r.status, 202, "chat {i}: {}", r.text());
        assert_eq!(body(&r)["stored"], true);
    }
    assert_eq!(metric(a, "altsock_db_writes_refused_total"), 10.0);

    // On disk: exactly the five acknowledged messages.
    let stored: Vec<String> = {
        let mut stmt = locker
            .prepare("SELECT body FROM messages ORDER BY id")
            .expect("select");
        let rows = stmt.query_map([], |r| r.get(0)).expect("rows");
        rows.collect::<Result<_, _>>().expect("bodies")
    };
    assert_eq!(stored, ["q0", "q1", "q2", "q3", "q4"]);
}
