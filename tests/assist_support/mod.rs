//! Helpers for the live-assist socket tests: a server with assist settings,
//! representatives with sessions in a site group, visitors with real hub
//! clients whose mailbox is held over SSE (`GET /poll`), and a reader of
//! the console's SSE stream.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::presence_support::{act, body, call, user};
use crate::util::{Client, Resp, TestServer};
use altsock::server::{Job, ServerConfig};
use altsock::Engine;

/// The page origin the tests' widget runs on.
pub const SHOP: &str = "http://shop.test";

/// A server with millisecond ticks, `SHOP` as an assist origin, and
/// whatever `configure` changes.
pub fn server(configure: impl FnOnce(&mut ServerConfig)) -> TestServer<Job> {
    let builder = Engine::builder()
        .poll_interval(Duration::from_millis(20))
        .keepalive_interval(Duration::from_millis(500));
    crate::util::spawn_server(builder, |config| {
        config.assist.origins = vec![SHOP.into()];
        configure(config);
    })
}

/// Registers `name`, logs in, and makes (or joins) the site group.
pub fn rep(addr: SocketAddr, name: &str, site: &str, creates: bool) -> String {
    let sid = user(addr, name);
    let r = if creates {
        act(addr, "/groups", name, &sid, json!({ "name": site }))
    } else {
        act(addr, &format!("/groups/{site}/join"), name, &sid, json!({}))
    };
    assert!(
        r.status == 201 || r.status == 200,
        "group: {} {}",
        r.status,
        r.text()
    );
    sid
}

/// A POST from the page origin `origin` (`None`: no `Origin` header).
pub fn visitor_post(addr: SocketAddr, path: &str, origin: Option<&str>, body: &Value) -> Resp {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    call(
        addr,
        "POST",
        path,
        &format!("Content-Type: text/plain\r\n{origin}"),
        &body.to_string(),
    )
}

/// A console command with the session cookie and this server's origin.
pub fn command(addr: SocketAddr, sid: &str, path: &str, body: &Value) -> Resp {
    call(
        addr,
        "POST",
        path,
        &format!("Content-Type: application/json\r\nCookie: altsock_session={sid}\r\nOrigin: http://{addr}\r\n"),
        &body.to_string(),
    )
}

/// Reads SSE events (`data:` JSON) from a held stream.
pub struct Stream {
    pub client: Client,
}

impl Stream {
    /// Opens a GET as an SSE stream; waits for the `200` head.
    pub fn open(addr: SocketAddr, path: &str, headers: &str) -> Stream {
        Stream::open_on(Client::connect(addr), addr, path, headers)
    }

    /// [`Stream::open`] on a connection made by the caller (e.g. with a
    /// small receive buffer).
    pub fn open_on(mut client: Client, addr: SocketAddr, path: &str, headers: &str) -> Stream {
        client.send(
            format!(
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{headers}\r\n"
            )
            .as_bytes(),
        );
        let head = client.read_through("\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        Stream { client }
    }

    /// The next event's data and id (keepalives skipped).
    pub fn next_with_id(&mut self) -> (Value, Option<u64>) {
        loop {
            let text = self.client.read_through("\n\n");
            let mut data = String::new();
            let mut id = None;
            for line in text.lines() {
                // Chunked transfer: size lines are skipped.
                if let Some(d) = line
                    .strip_prefix("data: ")
                    .or_else(|| line.strip_prefix("data:"))
                {
                    data.push_str(d);
                } else if let Some(i) = line
                    .strip_prefix("id: ")
                    .or_else(|| line.strip_prefix("id:"))
                {
                    id = i.trim().parse().ok();
                }
            }
            if !data.is_empty() {
                return (serde_json::from_str(&data).expect("JSON data"), id);
            }
        }
    }

    /// The next event's data.
    pub fn next(&mut self) -> Value {
        self.next_with_id().0
    }

    /// The next event whose `type` is `kind` (the console), skipping others.
    pub fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let ev = self.next();
            if ev["type"] == kind {
                return ev;
            }
        }
    }

    /// The next event matching `pick`.
    pub fn next_where(&mut self, mut pick: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let ev = self.next();
            if pick(&ev) {
                return ev;
            }
        }
    }
}

/// A representative's console stream of `site`.
pub fn console(addr: SocketAddr, sid: &str, site: &str) -> Stream {
    Stream::open(
        addr,
        &format!("/assist/stream?site={site}"),
        &format!("Cookie: altsock_session={sid}\r\n"),
    )
}

/// A visitor: its hub client, its held mailbox, its id and secret.
pub struct Visitor {
    pub addr: SocketAddr,
    pub client: String,
    pub key: String,
    pub mailbox: Stream,
    pub id: String,
    pub secret: String,
    pub opened: Value,
}

impl Visitor {
    /// A new browser on `url` of `site`: gets a hub client, holds its
    /// mailbox, and opens the widget with cookies of interest.
    pub fn arrive(addr: SocketAddr, site: &str, url: &str) -> Visitor {
        let r = call(
            addr,
            "POST",
            "/hub/client",
            &format!("Origin: {SHOP}\r\n"),
            "",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let creds = body(&r);
        let client = creds["client"].as_str().unwrap().to_string();
        let key = creds["key"].as_str().unwrap().to_string();
        let mailbox = Stream::open(
            addr,
            &format!("/poll?client={client}&key={key}"),
            &format!("Origin: {SHOP}\r\n"),
        );
        let open = json!({
            "site": site, "client": client, "key": key, "url": url, "title": "Cart <b>3</b>",
            "referrer": "https://search.example/?q=shoes", "cookies": {"plan": "pro", "cart": "3"},
        });
        let r = visitor_post(addr, "/assist/open", Some(SHOP), &open);
        assert_eq!(r.status, 200, "open: {}", r.text());
        assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
        let opened = body(&r);
        Visitor {
            addr,
            client,
            key,
            mailbox,
            id: opened["visitor"].as_str().unwrap().to_string(),
            secret: opened["secret"].as_str().unwrap().to_string(),
            opened,
        }
    }

    /// A visitor request with its id and secret and `fields`.
    pub fn post(&self, path: &str, mut fields: Value) -> Resp {
        fields["visitor"] = json!(self.id);
        fields["secret"] = json!(self.secret);
        visitor_post(self.addr, path, Some(SHOP), &fields)
    }

    /// The next assist event in its mailbox whose `type` is `kind`.
    pub fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let msg = self.mailbox.next();
            if msg["app"] == "assist" && msg["data"]["type"] == kind {
                return msg["data"].clone();
            }
        }
    }
}
