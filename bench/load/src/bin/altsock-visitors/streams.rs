//! The non-blocking connections of the visitor benchmark, on one
//! edge-triggered `mio::Poll`: the visitors' held hub connections
//! (`GET /poll`, searched for a round's marker), the representatives'
//! console streams (`GET /assist/stream`, SSE, whose `offer` events are
//! kept), and one-shot requests (`POST /assist/ask`) written all at once
//! and read to their answer.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde_json::Value;

use crate::common::{connect_from, find};

/// The largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A visitor's hub connection: held, searched for markers.
    Visitor,
    /// A representative's console stream: held, `offer` events kept.
    Console,
    /// One request, written when told, read to its answer.
    Once,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    /// Connected; a `Once` request waits here until [`Streams::fire`].
    Ready,
    Sent,
    Held,
    Done,
    Dead,
}

struct Conn {
    stream: TcpStream,
    kind: Kind,
    state: State,
    request: Vec<u8>,
    head: Vec<u8>,
    /// Visitor: the tail kept for a marker split across reads. Console:
    /// the unfinished SSE line. Once: the answer so far.
    pending: Vec<u8>,
    seen_round: u32,
}

/// A one-shot request's answer.
pub struct Reply {
    /// Which connection (as returned by [`Streams::open`]).
    pub index: usize,
    /// Its status code.
    pub status: u16,
    /// Its body as JSON.
    pub body: Value,
    /// From [`Streams::fire`] to the last byte of the answer.
    pub after: Duration,
}

/// All the benchmark's non-blocking connections.
pub struct Streams {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    buf: Vec<u8>,
    target: SocketAddr,
    marker: Vec<u8>,
    round: u32,
    round_start: Instant,
    /// Marker latencies of the current round.
    pub latencies: Vec<Duration>,
    /// Connections held (visitors and consoles).
    pub held: usize,
    /// Connections that failed or were closed by the server.
    pub failed: usize,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// `offer` events read on console streams: (event id, visitor, rep).
    pub offers: Vec<(u64, String, String)>,
    /// Console events read, of any type.
    pub console_events: u64,
    /// One-shot answers.
    pub replies: Vec<Reply>,
    fired: Instant,
}

impl Streams {
    /// An empty set of connections to `target`.
    pub fn new(target: SocketAddr) -> io::Result<Streams> {
        Ok(Streams {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            conns: Vec::new(),
            buf: vec![0; 256 * 1024],
            target,
            marker: Vec::new(),
            round: 0,
            round_start: Instant::now(),
            latencies: Vec::new(),
            held: 0,
            failed: 0,
            first_error: None,
            offers: Vec::new(),
            console_events: 0,
            replies: Vec::new(),
            fired: Instant::now(),
        })
    }

    /// Starts a connection from `source` that will send `request`; returns its index.
    pub fn open(&mut self, kind: Kind, source: Ipv4Addr, request: String) -> io::Result<usize> {
        let index = self.conns.len();
        let mut stream = connect_from(source, self.target)?;
        self.poll.registry().register(
            &mut stream,
            Token(index),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.conns.push(Conn {
            stream,
            kind,
            state: State::Connecting,
            request: request.into_bytes(),
            head: Vec::new(),
            pending: Vec::new(),
            seen_round: 0,
        });
        Ok(index)
    }

    /// Connections still connecting or waiting for their answer head.
    pub fn in_flight(&self) -> usize {
        self.conns
            .iter()
            .filter(|c| matches!(c.state, State::Connecting | State::Sent))
            .count()
    }

    /// Connections that are connected and wait for [`Streams::fire`].
    pub fn ready(&self) -> usize {
        self.conns
            .iter()
            .filter(|c| c.state == State::Ready)
            .count()
    }

    /// Held visitor connections.
    pub fn visitors_held(&self) -> usize {
        self.conns
            .iter()
            .filter(|c| c.kind == Kind::Visitor && c.state == State::Held)
            .count()
    }

    /// Writes the request of every ready one-shot connection, back to back.
    pub fn fire(&mut self) -> Instant {
        self.fired = Instant::now();
        for i in 0..self.conns.len() {
            if self.conns[i].state == State::Ready {
                self.send(i);
            }
        }
        self.fired
    }

    /// Runs the loop for `span`.
    pub fn drain(&mut self, span: Duration) -> io::Result<()> {
        let end = Instant::now() + span;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            self.turn(left)?;
        }
        Ok(())
    }

    /// Runs the loop until `done(self)` or `limit` passes; true when done.
    pub fn run_until(
        &mut self,
        limit: Duration,
        done: impl Fn(&Streams) -> bool,
    ) -> io::Result<bool> {
        let end = Instant::now() + limit;
        while !done(self) {
            let Some(left) = end.checked_duration_since(Instant::now()) else {
                return Ok(false);
            };
            self.turn(left.min(Duration::from_millis(50)))?;
        }
        Ok(true)
    }

    /// Starts a round: every visitor connection looks for `marker` from now.
    pub fn start_round(&mut self, round: u32, marker: &str) -> Instant {
        self.marker = marker.as_bytes().to_vec();
        self.round = round;
        self.latencies.clear();
        for c in &mut self.conns {
            if c.kind == Kind::Visitor {
                c.pending.clear();
            }
        }
        self.round_start = Instant::now();
        self.round_start
    }

    /// One poll and its events.
    pub fn turn(&mut self, timeout: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let ready: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                (
                    e.token().0,
                    e.is_readable() || e.is_read_closed(),
                    e.is_writable(),
                )
            })
            .collect();
        for (i, readable, writable) in ready {
            if i >= self.conns.len() {
                continue;
            }
            if writable && self.conns[i].state == State::Connecting {
                self.on_connected(i);
            }
            if readable {
                self.on_readable(i);
            }
        }
        Ok(())
    }

    fn on_connected(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let status = match c.stream.take_error() {
            Ok(None) => c.stream.peer_addr().map(|_| ()),
            Ok(Some(e)) | Err(e) => Err(e),
        };
        match status {
            Ok(()) if c.kind == Kind::Once => c.state = State::Ready,
            Ok(()) => self.send(i),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
            Err(e) => self.fail(i, format!("connect: {e}")),
        }
    }

    fn send(&mut self, i: usize) {
        let c = &mut self.conns[i];
        match c.stream.write(&c.request) {
            Ok(n) if n == c.request.len() => {
                c.state = State::Sent;
                c.request = Vec::new();
            }
            Ok(_) => self.fail(i, "short write of a request".into()),
            Err(e) => self.fail(i, format!("write: {e}")),
        }
    }

    fn fail(&mut self, i: usize, why: String) {
        let c = &mut self.conns[i];
        if matches!(c.state, State::Dead | State::Done) {
            return;
        }
        c.state = State::Dead;
        self.failed += 1;
        let _ = self.poll.registry().deregister(&mut c.stream);
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
        self.first_error.get_or_insert(why);
    }

    fn on_readable(&mut self, i: usize) {
        loop {
            if !matches!(self.conns[i].state, State::Sent | State::Held) {
                return;
            }
            match self.conns[i].stream.read(&mut self.buf) {
                Ok(0) => {
                    return self.fail(i, format!("{:?} closed by the server", self.conns[i].kind))
                }
                Ok(n) => self.on_bytes(i, n, Instant::now()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(i, format!("read: {e}")),
            }
        }
    }

    fn on_bytes(&mut self, i: usize, n: usize, now: Instant) {
        if self.conns[i].state == State::Held {
            return self.on_body(i, 0, n, now);
        }
        let c = &mut self.conns[i];
        let old = c.head.len();
        c.head.extend_from_slice(&self.buf[..n]);
        let Some(end) = find(&c.head, b"\r\n\r\n") else {
            if c.head.len() > MAX_HEAD {
                self.fail(i, "response head too large".into());
            }
            return;
        };
        let from = end + 4 - old;
        if c.kind == Kind::Once {
            c.state = State::Held;
            return self.on_body(i, from.min(n), n, now);
        }
        let status = c
            .head
            .get(9..12)
            .map(|s| String::from_utf8_lossy(s).into_owned());
        if status.as_deref() != Some("200") {
            let line = String::from_utf8_lossy(&c.head[..c.head.len().min(200)]).into_owned();
            let kind = c.kind;
            return self.fail(i, format!("{kind:?} answer: {line:?}"));
        }
        c.state = State::Held;
        self.held += 1;
        if from < n {
            self.on_body(i, from, n, now);
        }
    }

    fn on_body(&mut self, i: usize, from: usize, to: usize, now: Instant) {
        match self.conns[i].kind {
            Kind::Visitor => self.visitor_bytes(i, from, to, now),
            Kind::Console => self.console_bytes(i, from, to),
            Kind::Once => self.once_bytes(i, from, to, now),
        }
    }

    /// Visitor stream bytes: searched for the round's marker (a marker cut
    /// between two reads is found in the kept tail).
    fn visitor_bytes(&mut self, i: usize, from: usize, to: usize, now: Instant) {
        let c = &mut self.conns[i];
        if self.marker.is_empty() || c.seen_round == self.round {
            return;
        }
        c.pending.extend_from_slice(&self.buf[from..to]);
        if find(&c.pending, &self.marker).is_some() {
            c.seen_round = self.round;
            c.pending = Vec::new();
            self.latencies.push(now - self.round_start);
            return;
        }
        let keep = self.marker.len().saturating_sub(1);
        let cut = c.pending.len().saturating_sub(keep);
        c.pending.drain(..cut);
    }

    /// Console stream bytes: SSE lines; `offer` events are kept.
    fn console_bytes(&mut self, i: usize, from: usize, to: usize) {
        let c = &mut self.conns[i];
        c.pending.extend_from_slice(&self.buf[from..to]);
        let Some(last) = c.pending.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let lines: Vec<u8> = c.pending.drain(..=last).collect();
        for line in lines.split(|&b| b == b'\n') {
            let Some(data) = line.strip_prefix(b"data: ") else {
                continue;
            };
            self.console_events += 1;
            if find(data, b"\"offer\"").is_none() {
                continue;
            }
            let Ok(v) = serde_json::from_slice::<Value>(data) else {
                continue;
            };
            if v["type"] == "offer" {
                let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                self.offers
                    .push((v["id"].as_u64().unwrap_or(0), text("visitor"), text("rep")));
            }
        }
    }

    /// A one-shot answer: complete once its `Content-Length` body is in.
    fn once_bytes(&mut self, i: usize, from: usize, to: usize, now: Instant) {
        let c = &mut self.conns[i];
        c.pending.extend_from_slice(&self.buf[from..to]);
        let head = String::from_utf8_lossy(&c.head).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if c.pending.len() < len {
            return;
        }
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = serde_json::from_slice(&c.pending[..len]).unwrap_or(Value::Null);
        c.state = State::Done;
        c.pending = Vec::new();
        let _ = self.poll.registry().deregister(&mut c.stream);
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
        self.replies.push(Reply {
            index: i,
            status,
            body,
            after: now - self.fired,
        });
    }
}
