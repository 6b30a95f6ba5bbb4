//! The durability benchmark of `altsock serve` (issue 14): how fast stored
//! chats are acknowledged, and how long one acknowledgement takes while many
//! connections sit idle. Plain blocking sockets, no dependencies.
//!
//! Start a server on a fresh database, then run (see `bench/durability.sh`):
//!
//! ```text
//! store_bench --addr 127.0.0.1:8080 throughput [--messages 20000] [--conns 1]
//! store_bench --addr 127.0.0.1:8080 latency [--idle 10000] [--samples 2000]
//! ```
//!
//! `throughput` registers a sender and an offline recipient, then pipelines
//! `--messages` `POST /chat` over `--conns` connections (a writer and a reader
//! thread each) and reports acknowledged stored chats per second, first byte
//! written to last answer read. `latency` holds `--idle` SSE subscribers of
//! the hub channel `/sub/idle`, then sends one stored chat at a time and
//! reports the percentiles of the time to its `202`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

struct Opts {
    addr: SocketAddr,
    mode: String,
    messages: usize,
    conns: usize,
    idle: usize,
    samples: usize,
    tag: String,
}

fn opts() -> Opts {
    let mut o = Opts {
        addr: "127.0.0.1:8080".parse().expect("address"),
        mode: "throughput".into(),
        messages: 20_000,
        conns: 1,
        idle: 10_000,
        samples: 2_000,
        tag: format!("{}", std::process::id()),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().expect("a value after the flag");
        match a.as_str() {
            "--addr" => o.addr = value().parse().expect("--addr HOST:PORT"),
            "--messages" => o.messages = value().parse().expect("--messages N"),
            "--conns" => o.conns = value().parse().expect("--conns N"),
            "--idle" => o.idle = value().parse().expect("--idle N"),
            "--samples" => o.samples = value().parse().expect("--samples N"),
            "--tag" => o.tag = value(),
            "throughput" | "latency" => o.mode = a,
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

/// Reads one HTTP/1.1 answer; returns the status and the body.
fn read_response(r: &mut BufReader<TcpStream>) -> (u16, String) {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut length = 0;
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("length");
            }
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn request(method: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn call(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let stream = TcpStream::connect(addr).expect("connect");
    (&stream)
        .write_all(&request(method, path, body))
        .expect("write");
    read_response(&mut BufReader::new(stream))
}

/// Registers `name` (ignoring "taken") and logs in; returns the session id.
fn session(addr: SocketAddr, name: &str) -> String {
    let form = format!("username={name}&password=benchmark-password");
    let (status, body) = call(addr, "POST", "/register", &form);
    assert!(status == 201 || status == 409, "register: {status} {body}");
    let (status, body) = call(addr, "POST", "/login", &form);
    assert_eq!(status, 200, "login: {body}");
    let start = body.find("\"session\":\"").expect("session") + 11;
    body[start..start + body[start..].find('"').expect("quote")].to_string()
}

fn chat_body(me: &str, sid: &str, to: &str, i: usize) -> String {
    format!("me={me}&id={sid}&to={to}&msg=stored+message+number+{i}")
}

/// Pipelines `n` chats on one connection; returns how many were stored.
fn pipeline(addr: SocketAddr, me: &str, sid: &str, to: &str, from: usize, n: usize) -> usize {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut writer = stream.try_clone().expect("clone");
    let body = |i| request("POST", "/chat", &chat_body(me, sid, to, i));
    let all: Vec<u8> = (from..from + n).flat_map(body).collect();
    let w = std::thread::spawn(move || writer.write_all(&all).expect("write"));
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut stored = 0;
    for _ in 0..n {
        let (status, body) = read_response(&mut reader);
        if status == 202 && body.contains("\"stored\":true") {
            stored += 1;
        } else {
            eprintln!("answer {status}: {body}");
        }
    }
    w.join().expect("writer");
    stored
}

fn throughput(o: &Opts) {
    let me = format!("bs{}", o.tag);
    let to = format!("br{}", o.tag);
    let sid = session(o.addr, &me);
    session(o.addr, &to);
    let per = o.messages / o.conns;
    let started = Instant::now();
    let threads: Vec<_> = (0..o.conns)
        .map(|c| {
            let (me, sid, to, addr) = (me.clone(), sid.clone(), to.clone(), o.addr);
            std::thread::spawn(move || pipeline(addr, &me, &sid, &to, c * per, per))
        })
        .collect();
    let stored: usize = threads.into_iter().map(|t| t.join().expect("sender")).sum();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "throughput: {stored} of {} stored chats acknowledged over {} connection(s) in {secs:.3} s: {:.0} per second",
        per * o.conns,
        o.conns,
        stored as f64 / secs
    );
}

/// Opens `n` held SSE subscribers of `/sub/idle`.
fn idle_subscribers(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        s.write_all(b"GET /sub/idle HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
            .expect("subscribe");
        held.push(s);
    }
    for (i, s) in held.iter_mut().enumerate() {
        let mut head = [0u8; 12];
        s.read_exact(&mut head).expect("head");
        assert!(head.starts_with(b"HTTP/1.1 200"), "subscriber {i} refused");
    }
    held
}

fn latency(o: &Opts) {
    let me = format!("ls{}", o.tag);
    let to = format!("lr{}", o.tag);
    let sid = session(o.addr, &me);
    session(o.addr, &to);
    let held = idle_subscribers(o.addr, o.idle);
    let stream = TcpStream::connect(o.addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut times = Vec::with_capacity(o.samples);
    for i in 0..o.samples {
        let req = request("POST", "/chat", &chat_body(&me, &sid, &to, i));
        let t = Instant::now();
        writer.write_all(&req).expect("write");
        let (status, body) = read_response(&mut reader);
        times.push(t.elapsed());
        assert_eq!(status, 202, "{body}");
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "latency: {} single stored chats with {} idle connections held: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        times.len(),
        held.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0))
    );
}

fn main() {
    let o = opts();
    match o.mode.as_str() {
        "latency" => latency(&o),
        _ => throughput(&o),
    }
}
