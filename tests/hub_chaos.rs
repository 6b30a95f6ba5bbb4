//! The hub's promise under churn: many subscribers (SSE and chunked) hang up
//! and reconnect at random, resuming by `Last-Event-ID` or `?since=`, while
//! a publisher sends 10,000 messages. With a buffer that holds them all,
//! every subscriber ends with every message exactly once, in order; with a
//! small buffer, every id is either received once, in order, or named by a
//! gap event, never lost silently.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use altsock::Engine;
use util::{spawn_server, Client};

const TOKEN: &str = "chaos";
const MESSAGES: u64 = 10_000;
const SUBSCRIBERS: usize = 16;

/// What a subscriber saw: a message (id, data) or a lost range.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Msg(u64, String),
    Gap(u64, u64),
}

/// A tiny xorshift generator, so runs differ without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

fn seed(i: usize) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(7);
    (nanos | 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64 + 1)
}

/// Takes the complete SSE events out of `buf`.
fn parse_sse(buf: &mut Vec<u8>) -> Vec<Item> {
    let mut items = Vec::new();
    while let Some(end) = util::find(buf, b"\n\n") {
        let event: Vec<u8> = buf.drain(..end + 2).collect();
        let text = String::from_utf8_lossy(&event);
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::to_string)
        };
        let Some(id) = field("id: ").and_then(|v| v.parse::<u64>().ok()) else {
            continue; // a keepalive comment
        };
        let data = field("data: ").unwrap_or_default();
        if field("event: ").as_deref() == Some("gap") {
            let v: serde_json::Value = serde_json::from_str(&data).expect("gap JSON");
            let from = v["from"].as_u64().expect("from");
            items.push(Item::Gap(from, id));
        } else {
            items.push(Item::Msg(id, data));
        }
    }
    items
}

/// Takes the complete JSON lines out of a chunked stream in `buf`.
fn parse_lines(buf: &mut Vec<u8>) -> Vec<Item> {
    let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
        return Vec::new();
    };
    let done: Vec<u8> = buf.drain(..end + 1).collect();
    let text = String::from_utf8_lossy(&done);
    let mut items = Vec::new();
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        if !line.starts_with('{') {
            continue; // a chunk size or its CRLF
        }
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        let id = v["id"].as_u64().expect("id");
        if v["event"] == "gap" {
            items.push(Item::Gap(v["from"].as_u64().expect("from"), id));
        } else {
            items.push(Item::Msg(id, v["data"].as_str().unwrap_or("").into()));
        }
    }
    items
}

/// One subscriber's life: connect, read a random number of messages, hang
/// up, maybe wait, resume; until it has seen the last id.
struct Subscriber {
    addr: SocketAddr,
    sse: bool,
    rng: Rng,
    items: Vec<Item>,
    last: u64,
}

impl Subscriber {
    fn run(mut self, published: &AtomicU64, lag: Option<u64>) -> Vec<Item> {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut sessions = 0;
        while self.last < MESSAGES {
            sessions += 1;
            assert!(
                Instant::now() < deadline,
                "subscriber stuck at {}",
                self.last
            );
            self.session();
            match lag {
                // Fall far enough behind that the buffer loses what we missed.
                Some(behind) if self.rng.next(3) == 0 && self.last < MESSAGES => {
                    let want = (self.last + behind).min(MESSAGES);
                    while published.load(Ordering::SeqCst) < want {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                _ => std::thread::sleep(Duration::from_millis(self.rng.next(3))),
            }
        }
        assert!(sessions > 3, "only {sessions} connections: no churn");
        self.items
    }

    /// One connection: resume from `last`, read up to a random budget.
    fn session(&mut self) {
        let Ok(mut stream) = TcpStream::connect(self.addr) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
        let (target, header) = self.request_target();
        let req = format!("GET {target} HTTP/1.1\r\nHost: t\r\n{header}\r\n");
        if stream.write_all(req.as_bytes()).is_err() {
            return;
        }
        let budget = 1 + self.rng.next(700);
        let mut got = 0;
        let mut buf = Vec::new();
        let mut head = false;
        let mut chunk = [0u8; 16384];
        while got < budget && self.last < MESSAGES {
            match stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(_) => return,
            }
            if !head {
                let Some(end) = util::find(&buf, b"\r\n\r\n") else {
                    continue;
                };
                assert!(
                    buf.starts_with(b"HTTP/1.1 200"),
                    "{}",
                    String::from_utf8_lossy(&buf)
                );
                buf.drain(..end + 4);
                head = true;
            }
            let items = if self.sse {
                parse_sse(&mut buf)
            } else {
                parse_lines(&mut buf)
            };
            for item in items {
                self.take(item);
                got += 1;
            }
        }
    }

    fn request_target(&mut self) -> (String, String) {
        let transport = if self.sse { "sse" } else { "chunked" };
        if self.sse && self.last > 0 && self.rng.next(2) == 0 {
            let header = format!("Last-Event-ID: {}\r\n", self.last);
            return ("/sub/chaos".into(), header);
        }
        let target = format!("/sub/chaos?transport={transport}&since={}", self.last);
        (target, String::new())
    }

    fn take(&mut self, item: Item) {
        self.last = match item {
            Item::Msg(id, _) | Item::Gap(_, id) => id,
        };
        self.items.push(item);
    }
}

/// Publishes `MESSAGES` bodies `m1`.. on one keep-alive connection.
fn publisher(addr: SocketAddr, published: &AtomicU64) {
    let mut c = Client::connect(addr);
    for i in 1..=MESSAGES {
        let body = format!("m{i}");
        let req = format!(
            "POST /pub/chaos HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        c.send(req.as_bytes());
        let r = c.read_response();
        assert_eq!(r.status, 202, "{}", r.text());
        published.store(i, Ordering::SeqCst);
    }
}

/// Runs the churn with `buffer` messages kept per channel; returns what
/// each subscriber saw.
fn churn(buffer: usize, lag: Option<u64>) -> Vec<Vec<Item>> {
    let builder = Engine::builder().poll_interval(Duration::from_millis(50));
    let server = spawn_server(builder, |c| {
        c.publish_token = Some(TOKEN.into());
        c.hub.buffer_len = buffer;
    });
    let published = Arc::new(AtomicU64::new(0));
    let subs: Vec<_> = (0..SUBSCRIBERS)
        .map(|i| {
            let sub = Subscriber {
                addr: server.addr,
                sse: i % 2 == 0,
                rng: Rng(seed(i)),
                items: Vec::new(),
                last: 0,
            };
            let published = published.clone();
            let lag = lag.filter(|_| i < 4);
            std::thread::spawn(move || sub.run(&published, lag))
        })
        .collect();
    publisher(server.addr, &published);
    subs.into_iter()
        .map(|t| t.join().expect("subscriber thread"))
        .collect()
}

/// Every id from 1 to `MESSAGES` once, in order, each message with its data.
fn check_covers_all(items: &[Item]) {
    let mut next = 1;
    for item in items {
        match item {
            Item::Msg(id, data) => {
                assert_eq!(*id, next, "out of order or repeated");
                assert_eq!(data, &format!("m{id}"));
                next += 1;
            }
            Item::Gap(from, to) => {
                assert_eq!(*from, next, "gap does not start where we were");
                assert!(to >= from, "empty gap");
                next = to + 1;
            }
        }
    }
    assert_eq!(next, MESSAGES + 1);
}

#[test]
fn churning_subscribers_get_every_message_once_in_order() {
    for items in churn(MESSAGES as usize, None) {
        assert!(
            !items.iter().any(|i| matches!(i, Item::Gap(..))),
            "no gap with a full buffer"
        );
        check_covers_all(&items);
    }
}

#[test]
fn subscribers_past_the_buffer_get_gap_events() {
    let all = churn(64, Some(500));
    for items in &all {
        check_covers_all(items);
    }
    let gaps = all
        .iter()
        .flatten()
        .filter(|i| matches!(i, Item::Gap(..)))
        .count();
    assert!(gaps > 0, "lagging subscribers saw no gap");
}
