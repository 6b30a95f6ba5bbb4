//! Helpers for the presence tests: requests with JSON bodies, accounts and
//! sessions, and a reader of the `/jchat` pipe (chunked `msg TYPE JSON`
//! lines, SSE events, or long-poll answers).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Client, Resp, TestServer};
use altsock::server::Job;
use altsock::Engine;

/// A server with millisecond ticks and keepalives.
pub fn server() -> TestServer<Job> {
    server_at(None)
}

/// A server with millisecond ticks whose settings `configure` changes.
pub fn server_with(configure: impl FnOnce(&mut altsock::server::ServerConfig)) -> TestServer<Job> {
    let builder = Engine::builder()
        .poll_interval(Duration::from_millis(20))
        .keepalive_interval(Duration::from_millis(500));
    crate::util::spawn_server(builder, configure)
}

/// A server on a given database file (or a fresh one).
pub fn server_at(db: Option<std::path::PathBuf>) -> TestServer<Job> {
    let builder = Engine::builder()
        .poll_interval(Duration::from_millis(20))
        .keepalive_interval(Duration::from_millis(500));
    crate::util::spawn_server(builder, move |config| {
        if let Some(db) = db {
            config.db_path = db;
        }
    })
}

/// The bytes of `method path` with extra header lines and a body.
pub fn request_text(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sends `method path` with extra header lines and a body; reads the answer.
pub fn call(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> Resp {
    crate::util::request(addr, &request_text(addr, method, path, headers, body))
}

/// The bytes of a JSON POST.
pub fn json_post(addr: SocketAddr, path: &str, body: &Value) -> String {
    request_text(
        addr,
        "POST",
        path,
        "Content-Type: application/json\r\n",
        &body.to_string(),
    )
}

/// A JSON POST.
pub fn post(addr: SocketAddr, path: &str, body: &Value) -> Resp {
    crate::util::request(addr, &json_post(addr, path, body))
}

/// A value of `/metrics`; panics when it is missing.
pub fn metric(addr: SocketAddr, name: &str) -> u64 {
    let text = get(addr, "/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// A GET.
pub fn get(addr: SocketAddr, path: &str) -> Resp {
    call(addr, "GET", path, "", "")
}

/// A GET carrying a session cookie.
pub fn get_with_cookie(addr: SocketAddr, path: &str, sid: &str) -> Resp {
    call(
        addr,
        "GET",
        path,
        &format!("Cookie: altsock_session={sid}\r\n"),
        "",
    )
}

/// The body as JSON.
pub fn body(resp: &Resp) -> Value {
    serde_json::from_slice(&resp.body).unwrap_or(Value::Null)
}

/// The session id a response's `Set-Cookie` gives.
pub fn session_of(resp: &Resp) -> String {
    let cookie = resp.header("set-cookie").expect("a Set-Cookie header");
    let value = cookie
        .strip_prefix("altsock_session=")
        .expect("the session cookie");
    value.split(';').next().unwrap_or_default().to_string()
}

/// Registers `name` with a good password.
pub fn register(addr: SocketAddr, name: &str) {
    let r = post(
        addr,
        "/register",
        &serde_json::json!({ "username": name, "password": "correct horse" }),
    );
    assert_eq!(r.status, 201, "register {name}: {}", r.text());
}

/// Logs `name` in; returns the `200` answer (session id and cookie).
pub fn login_response(addr: SocketAddr, name: &str) -> Resp {
    let r = post(
        addr,
        "/login",
        &serde_json::json!({ "username": name, "password": "correct horse" }),
    );
    assert_eq!(r.status, 200, "login {name}: {}", r.text());
    r
}

/// Logs `name` in; returns the session id.
pub fn login(addr: SocketAddr, name: &str) -> String {
    let r = login_response(addr, name);
    body(&r)["session"].as_str().expect("session").to_string()
}

/// Registers and logs in.
pub fn user(addr: SocketAddr, name: &str) -> String {
    register(addr, name);
    login(addr, name)
}

/// A POST authenticated by `me` and `id` in the JSON body.
pub fn act(addr: SocketAddr, path: &str, me: &str, sid: &str, mut fields: Value) -> Resp {
    fields["me"] = Value::from(me);
    fields["id"] = Value::from(sid);
    post(addr, path, &fields)
}

/// `from` (session `sid`) sends chat text `msg` to `to` by `POST /chat`.
pub fn send_chat(addr: SocketAddr, from: &str, sid: &str, to: &str, msg: &str) -> Resp {
    act(
        addr,
        "/chat",
        from,
        sid,
        serde_json::json!({ "to": to, "msg": msg }),
    )
}

/// `owner` (session `sid`) creates group `name` with `password`.
pub fn group_with_password(
    addr: SocketAddr,
    owner: &str,
    sid: &str,
    name: &str,
    password: &str,
) -> Resp {
    let fields = serde_json::json!({ "name": name, "password": password });
    act(addr, "/groups", owner, sid, fields)
}

/// One event read from a pipe.
#[derive(Debug, Clone)]
pub struct Ev {
    pub kind: String,
    pub data: Value,
}

/// A held `/jchat` connection.
pub struct Pipe {
    pub client: Client,
    pub sse: bool,
}

impl Pipe {
    /// Opens `/jchat` for `me` (chunked lines, or SSE).
    pub fn open(addr: SocketAddr, me: &str, sid: &str, sse: bool) -> Pipe {
        Pipe::open_query(addr, &format!("me={me}&id={sid}"), sse)
    }

    /// Opens `/jchat?QUERY`; waits for the `200` head and the `hello`.
    pub fn open_query(addr: SocketAddr, query: &str, sse: bool) -> Pipe {
        let mut client = Client::connect(addr);
        let accept = if sse {
            "Accept: text/event-stream\r\n"
        } else {
            ""
        };
        client.send(format!("GET /jchat?{query} HTTP/1.1\r\nHost: t\r\n{accept}\r\n").as_bytes());
        let head = client.read_through("\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let mut pipe = Pipe { client, sse };
        let hello = pipe.next();
        assert_eq!(hello.kind, "hello", "{hello:?}");
        pipe
    }

    /// The next event (keepalives skipped); panics after the wait, counted
    /// from the call: keepalives do not restart it.
    pub fn next(&mut self) -> Ev {
        let deadline = Instant::now() + crate::util::WAIT;
        loop {
            assert!(
                Instant::now() < deadline,
                "no event within {:?} (only keepalives)",
                crate::util::WAIT
            );
            let text = if self.sse {
                self.client.read_through("\n\n")
            } else {
                let size_line = self.client.read_through("\r\n");
                let size = usize::from_str_radix(size_line.trim(), 16).expect("chunk size");
                assert!(size > 0, "stream ended");
                self.client.read_until("chunk", |b| b.len() >= size + 2);
                let chunk: Vec<u8> = self.client.buf.drain(..size + 2).collect();
                String::from_utf8_lossy(&chunk[..size]).into_owned()
            };
            if let Some(ev) = parse_event(&text, self.sse) {
                return ev;
            }
        }
    }

    /// The next event of kind `kind`, skipping others.
    pub fn next_of(&mut self, kind: &str) -> Ev {
        loop {
            let ev = self.next();
            if ev.kind == kind {
                return ev;
            }
        }
    }

    /// Asserts that no event (but keepalives) arrives within `wait`.
    pub fn quiet(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            self.client.fill();
        }
        let text = String::from_utf8_lossy(&self.client.buf).into_owned();
        assert!(
            !text.contains("msg ") && !text.contains("event:"),
            "unexpected: {text:?}"
        );
    }
}

/// Parses one `msg TYPE JSON` line or one SSE event; `None` for keepalives.
pub fn parse_event(text: &str, sse: bool) -> Option<Ev> {
    if sse {
        let mut kind = None;
        let mut data = String::new();
        for line in text.lines() {
            if let Some(k) = line.strip_prefix("event: ") {
                kind = Some(k.to_string());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push_str(d);
            }
        }
        return kind.map(|kind| Ev {
            kind,
            data: serde_json::from_str(&data).unwrap_or(Value::Null),
        });
    }
    let line = text.trim();
    let rest = line.strip_prefix("msg ")?;
    let (kind, json) = rest.split_once(' ')?;
    Some(Ev {
        kind: kind.to_string(),
        data: serde_json::from_str(json).unwrap_or(Value::Null),
    })
}

/// All `msg TYPE JSON` lines of a long-poll answer.
pub fn poll_events(resp: &Resp) -> Vec<Ev> {
    resp.text()
        .lines()
        .filter_map(|l| parse_event(l, false))
        .collect()
}
