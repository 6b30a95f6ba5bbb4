//! `altsock-storm`: the presence storm benchmark. N members of one group
//! (seeded with `altsock seed-bench`) log in, then open their `/jchat` pipes
//! (SSE) one by one at a steady rate, as at 9 a.m. in a company; then one
//! more member comes online. It reports:
//!
//! 1. **storm**: how long after the last pipe opened the server kept working
//!    (its CPU time stops growing) and the members kept receiving (the last
//!    byte), the bytes each member received for the whole storm (split into
//!    `resync` snapshots and change events), and the server's CPU time;
//! 2. **one more**: for the member who comes online after the storm, the time
//!    from its pipe request to each member's receiving its arrival (p50, p99,
//!    max), the median of `--one-more-rounds` arrivals (it leaves in between)
//!    as the hub's yardstick is the median of its rounds;
//! 3. **views**: each member's view of who is online, built only from what
//!    its pipe carried (`resync` pages, `updates` batches, or the old single
//!    `update` events), against the server's (everyone), with duplicated
//!    presence (an online state delivered again without a change between).
//!
//! A group's batched pipe names members by roster index: the tool reads the
//! group's roster once from `GET /members` before the storm (what a page
//! learns for the rows it shows; not counted in the storm's bytes).
//! `--shuffle` opens the pipes in a fixed random order rather than by name,
//! so the indices in one batch are scattered, not runs.
//!
//! One thread and one edge-triggered `mio::Poll`; loopback only. A
//! benchmark, not a test.

#[path = "../common.rs"]
mod common;

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream as StdStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use altsock::parse_duration;
use base64::Engine as _;
use clap::Parser;
use common::{connect_from, cpu_ticks, cpu_ticks_self, find, read_response, source_addr};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::Deserialize;
use serde_json::Value;

/// Linux exposes `/proc` CPU times in USER_HZ, fixed at 100 per second.
const TICKS_PER_SEC: u64 = 100;

/// The presence storm: N members come online one by one, then one more.
#[derive(Parser, Debug)]
#[command(name = "altsock-storm", version)]
struct Args {
    /// The server (`altsock serve`), an address in 127.0.0.0/8.
    #[arg(long, default_value = "127.0.0.1:8080")]
    target: SocketAddr,
    /// Members in the storm; the accounts PREFIX1..PREFIXN, plus PREFIX(N+1)
    /// for the one who comes online after it (`altsock seed-bench -n N+1`).
    #[arg(long, short = 'n', default_value_t = 1000)]
    members: usize,
    /// The prefix of the account names.
    #[arg(long, default_value = "m")]
    prefix: String,
    /// The accounts' password.
    #[arg(long, default_value = "bench-password")]
    password: String,
    /// Pipes opened per second during the storm.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// The group the members share (`altsock seed-bench --group`).
    #[arg(long, default_value = "bench")]
    group: String,
    /// Open the pipes in a shuffled order (a fixed seed), not by name: the
    /// roster indices arriving in one batch are then scattered, not runs.
    #[arg(long)]
    shuffle: bool,
    /// Extra query parameters for `/jchat` (e.g. `&v=2`).
    #[arg(long, default_value = "")]
    query: String,
    /// The first source address; the others follow it.
    #[arg(long, default_value = "127.2.0.1")]
    source_base: Ipv4Addr,
    /// How many source addresses the pipes are spread across.
    #[arg(long, default_value_t = 64)]
    source_addrs: u32,
    /// The server's process id, for its CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Quiet (no byte to any member) that ends a phase.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    quiet: Duration,
    /// Give up waiting for a phase to settle after this long.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    timeout: Duration,
    /// How many times the one more comes online (leaving in between); the
    /// figures are the median of the rounds', as the hub's are of its 5.
    #[arg(long, default_value_t = 5)]
    one_more_rounds: usize,
    /// A name for this run in the output.
    #[arg(long, default_value = "storm")]
    label: String,
    /// Also write the results as `key=value` lines to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// An `update` event (the old single form).
#[derive(Deserialize)]
struct Single<'a> {
    #[serde(borrow)]
    user: &'a str,
    online: bool,
}

/// An `updates` batch or a `resync` page: names (an address book), or a
/// group's roster indices (`on`/`off` as gaps, `bits` from `from`).
#[derive(Deserialize)]
struct Lists<'a> {
    #[serde(borrow, default)]
    online: Vec<&'a str>,
    #[serde(borrow, default)]
    offline: Vec<&'a str>,
    #[serde(default)]
    on: Vec<u32>,
    #[serde(default)]
    off: Vec<u32>,
    #[serde(borrow)]
    bits: Option<&'a str>,
    #[serde(default)]
    from: usize,
    page: Option<u64>,
}

/// A fixed-seed Fisher-Yates shuffle (xorshift64): the same order each run.
fn shuffle(order: &mut [usize]) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for k in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(k, (x % (k as u64 + 1)) as usize);
    }
}

/// Ascending indices from their gaps (the first as is).
fn from_gaps(gaps: &[u32]) -> impl Iterator<Item = usize> + '_ {
    gaps.iter().scan(0usize, |at, &g| {
        *at += g as usize;
        Some(*at)
    })
}

/// One member's pipe and what it has seen.
struct Member {
    index: usize,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    sent: bool,
    head_done: bool,
    buf: Vec<u8>,
    /// Online members as this pipe told it, one bit per member index.
    view: Vec<u64>,
    bytes: u64,
    resync_bytes: u64,
    events: u64,
    dups: u64,
    /// When this member heard that the one more member came online.
    heard_one_more: Option<Instant>,
    closed: bool,
}

impl Member {
    fn set(&mut self, i: usize, online: bool) -> bool {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        let was = self.view[w] & b != 0;
        if online {
            self.view[w] |= b;
        } else {
            self.view[w] &= !b;
        }
        was
    }

    fn has(&self, i: usize) -> bool {
        self.view[i / 64] & (1 << (i % 64)) != 0
    }
}

struct Storm {
    args: Args,
    /// Member index (1..=N+1) by roster index, from `GET /members`.
    roster: Vec<usize>,
    /// The order the pipes open in (member positions from 0).
    order: Vec<usize>,
    poll: Poll,
    members: Vec<Member>,
    last_byte: Instant,
    one_more: usize,
    one_more_start: Option<Instant>,
    bad_events: u64,
    gaps: u64,
    first_error: Option<String>,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("altsock-storm: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> io::Result<()> {
    if args.target.ip().to_string().split('.').next() != Some("127") {
        return Err(io::Error::other("the target must be in 127.0.0.0/8"));
    }
    let mut out = Vec::<(String, String)>::new();
    let label = args.label.clone();
    let mut add = |k: &str, v: String| {
        println!("{label}: {k} = {v}");
        out.push((k.to_string(), v));
    };
    let n = args.members;
    let started = Instant::now();
    let sessions = login_all(&args)?;
    add("members", n.to_string());
    add(
        "login_secs",
        format!("{:.1}", started.elapsed().as_secs_f64()),
    );
    let roster = fetch_roster(&args, &sessions[0])?;
    let mut storm = Storm::new(args, sessions, roster)?;
    let pid = storm.args.server_pid;
    let cpu0 = pid.map(cpu_ticks).transpose()?;
    let client0 = cpu_ticks_self()?;
    let storm_start = Instant::now();
    let last_open = storm.open_at_rate()?;
    let open_secs = (last_open - storm_start).as_secs_f64();
    let (busy_until, delivered_until) = storm.settle(pid)?;
    let cpu1 = pid.map(cpu_ticks).transpose()?;
    let client1 = cpu_ticks_self()?;
    let held = storm.members[..n]
        .iter()
        .filter(|m| m.head_done && !m.closed)
        .count();
    add("held", held.to_string());
    add("open_secs", format!("{open_secs:.2}"));
    if let Some(t) = busy_until {
        let s = t.saturating_duration_since(last_open).as_secs_f64();
        add("settle_server_secs", format!("{s:.2}"));
    }
    let s = delivered_until
        .saturating_duration_since(last_open)
        .as_secs_f64();
    add("settle_delivered_secs", format!("{s:.2}"));
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        add(
            "storm_server_cpu_ms",
            ((b - a) * 1000 / TICKS_PER_SEC).to_string(),
        );
    }
    add(
        "storm_client_cpu_ms",
        ((client1 - client0) * 1000 / TICKS_PER_SEC).to_string(),
    );
    let stormers = &storm.members[..n];
    let total: u64 = stormers.iter().map(|m| m.bytes).sum();
    let resync: u64 = stormers.iter().map(|m| m.resync_bytes).sum();
    add(
        "storm_bytes_per_member",
        (total / n.max(1) as u64).to_string(),
    );
    add(
        "storm_resync_bytes_per_member",
        (resync / n.max(1) as u64).to_string(),
    );
    add(
        "storm_bytes_max_member",
        stormers
            .iter()
            .map(|m| m.bytes)
            .max()
            .unwrap_or(0)
            .to_string(),
    );
    let events: u64 = stormers.iter().map(|m| m.events).sum();
    add(
        "storm_events_per_member",
        format!("{:.1}", events as f64 / n.max(1) as f64),
    );
    for (k, v) in storm.one_more()? {
        add(&k, v);
    }
    for (k, v) in storm.check_views() {
        add(&k, v);
    }
    if let Some(e) = &storm.first_error {
        println!("{}: note: first error: {e}", storm.args.label);
    }
    if let Some(path) = &storm.args.out {
        let text: String = out.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        fs::write(path, format!("label={}\n{text}", storm.args.label))?;
    }
    Ok(())
}

/// Logs every member (and the one more) in over one kept-alive connection;
/// returns their session ids, index 0 for member 1.
fn login_all(args: &Args) -> io::Result<Vec<String>> {
    let mut conn = StdStream::connect(args.target)?;
    conn.set_nodelay(true)?;
    let mut sessions = Vec::with_capacity(args.members + 1);
    let mut buf = Vec::new();
    for i in 1..=args.members + 1 {
        let body = serde_json::json!({
            "username": format!("{}{i}", args.prefix),
            "password": args.password,
        })
        .to_string();
        let req = format!(
            "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            args.target,
            body.len()
        );
        conn.write_all(req.as_bytes())?;
        let (status, body) = read_response(&mut conn, &mut buf, "login connection closed")?;
        if status != 200 {
            return Err(io::Error::other(format!(
                "login {}{i}: {status} {}; seed with `altsock seed-bench -n {}`",
                args.prefix,
                String::from_utf8_lossy(&body),
                args.members + 1
            )));
        }
        let v: Value = serde_json::from_slice(&body).map_err(io::Error::other)?;
        let sid = v["session"].as_str().unwrap_or_default().to_string();
        sessions.push(sid);
    }
    Ok(sessions)
}

/// The member index (from the account name) of each roster index of the
/// group, read once from `GET /members` as member 1: what a page would
/// learn for the rows it shows, here for all (not counted as storm bytes).
fn fetch_roster(args: &Args, sid: &str) -> io::Result<Vec<usize>> {
    let mut conn = StdStream::connect(args.target)?;
    let mut buf = Vec::new();
    let mut roster = Vec::new();
    let (mut page, mut pages) = (1, 1);
    while page <= pages {
        let req = format!(
            "GET /members?group={}&per=1000&page={page}&me={}1&id={sid} HTTP/1.1\r\nHost: {}\r\n\r\n",
            args.group, args.prefix, args.target
        );
        conn.write_all(req.as_bytes())?;
        let (status, body) = read_response(&mut conn, &mut buf, "login connection closed")?;
        let v: Value = serde_json::from_slice(&body).map_err(io::Error::other)?;
        if status != 200 {
            return Err(io::Error::other(format!("GET /members: {status} {v}")));
        }
        pages = v["pages"].as_u64().unwrap_or(1) as usize;
        for m in v["members"].as_array().into_iter().flatten() {
            let (Some(i), Some(name)) = (m["i"].as_u64(), m["name"].as_str()) else {
                continue;
            };
            let Some(idx) = name.strip_prefix(&args.prefix).and_then(|n| n.parse().ok()) else {
                continue;
            };
            if roster.len() <= i as usize {
                roster.resize(i as usize + 1, 0);
            }
            roster[i as usize] = idx;
        }
        page += 1;
    }
    Ok(roster)
}

impl Storm {
    fn new(args: Args, sessions: Vec<String>, roster: Vec<usize>) -> io::Result<Self> {
        let words = (args.members + 2).div_ceil(64);
        let members = sessions
            .iter()
            .enumerate()
            .map(|(i, sid)| {
                let name = format!("{}{}", args.prefix, i + 1);
                let request = format!(
                    "GET /jchat?me={name}&id={sid}{} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
                    args.query, args.target
                );
                Member {
                    index: i + 1,
                    stream: None,
                    request: request.into_bytes(),
                    sent: false,
                    head_done: false,
                    buf: Vec::new(),
                    view: vec![0; words],
                    bytes: 0,
                    resync_bytes: 0,
                    events: 0,
                    dups: 0,
                    heard_one_more: None,
                    closed: false,
                }
            })
            .collect();
        let mut order: Vec<usize> = (0..args.members).collect();
        if args.shuffle {
            shuffle(&mut order);
        }
        Ok(Storm {
            one_more: args.members + 1,
            roster,
            order,
            args,
            poll: Poll::new()?,
            members,
            last_byte: Instant::now(),
            one_more_start: None,
            bad_events: 0,
            gaps: 0,
            first_error: None,
        })
    }

    /// Opens the N storm pipes at the steady rate; returns when the last opened.
    fn open_at_rate(&mut self) -> io::Result<Instant> {
        let start = Instant::now();
        let step = Duration::from_secs_f64(1.0 / self.args.rate.max(0.001));
        for i in 0..self.args.members {
            let due = start + step * i as u32;
            loop {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                self.turn(due - now)?;
            }
            self.open(self.order[i])?;
        }
        Ok(Instant::now())
    }

    fn open(&mut self, i: usize) -> io::Result<()> {
        let source = source_addr(self.args.source_base, self.args.source_addrs, i);
        let mut stream = connect_from(source, self.args.target)?;
        self.poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.members[i].stream = Some(stream);
        Ok(())
    }

    /// One poll and its events.
    fn turn(&mut self, timeout: Duration) -> io::Result<()> {
        let mut events = Events::with_capacity(4096);
        self.poll.poll(&mut events, Some(timeout))?;
        for e in events.iter() {
            let i = e.token().0;
            if e.is_writable() && !self.members[i].sent {
                self.send_request(i);
            }
            if e.is_readable() || e.is_read_closed() {
                self.read(i);
            }
        }
        Ok(())
    }

    fn send_request(&mut self, i: usize) {
        let m = &mut self.members[i];
        let Some(stream) = m.stream.as_mut() else {
            return;
        };
        if stream.peer_addr().is_err() {
            return;
        }
        match stream.write(&m.request) {
            Ok(n) if n == m.request.len() => m.sent = true,
            other => {
                m.closed = true;
                self.first_error
                    .get_or_insert(format!("request of member {}: {other:?}", m.index));
            }
        }
    }

    fn read(&mut self, i: usize) {
        let mut chunk = [0u8; 65536];
        loop {
            let Some(stream) = self.members[i].stream.as_mut() else {
                return;
            };
            match stream.read(&mut chunk) {
                Ok(0) => {
                    let _ = self.poll.registry().deregister(stream);
                    let m = &mut self.members[i];
                    m.closed = true;
                    self.first_error
                        .get_or_insert(format!("member {} closed by the server", m.index));
                    return;
                }
                Ok(n) => {
                    let now = Instant::now();
                    self.last_byte = now;
                    let m = &mut self.members[i];
                    m.bytes += n as u64;
                    m.buf.extend_from_slice(&chunk[..n]);
                    self.parse(i, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.members[i].closed = true;
                    self.first_error.get_or_insert(format!("read: {e}"));
                    return;
                }
            }
        }
    }

    /// Parses the complete SSE events in member `i`'s buffer.
    fn parse(&mut self, i: usize, now: Instant) {
        let mut buf = std::mem::take(&mut self.members[i].buf);
        let mut pos = 0;
        if !self.members[i].head_done {
            let Some(end) = find(&buf, b"\r\n\r\n") else {
                self.members[i].buf = buf;
                return;
            };
            if !buf.starts_with(b"HTTP/1.1 200") {
                self.members[i].closed = true;
                let line = String::from_utf8_lossy(&buf[..end.min(80)]).into_owned();
                self.first_error
                    .get_or_insert(format!("pipe answer: {line}"));
                return;
            }
            self.members[i].head_done = true;
            pos = end + 4;
        }
        while let Some(end) = find(&buf[pos..], b"\n\n") {
            let event = &buf[pos..pos + end];
            self.on_event(i, event, now);
            pos += end + 2;
        }
        buf.drain(..pos);
        self.members[i].buf = buf;
    }

    fn on_event(&mut self, i: usize, raw: &[u8], now: Instant) {
        let text = String::from_utf8_lossy(raw);
        let mut kind = "";
        let mut data: Option<&str> = None;
        for line in text.lines() {
            if let Some(k) = line.strip_prefix("event: ") {
                kind = k;
            } else if let Some(d) = line.strip_prefix("data: ") {
                // The server writes each event's JSON on one line.
                data = Some(d);
            }
        }
        if kind.is_empty() {
            return; // a keepalive comment
        }
        self.members[i].events += 1;
        let data = data.unwrap_or("");
        // Names are borrowed from the event (no allocation per name): the
        // client must not be what limits a 10,000-member storm.
        match kind {
            "update" => match serde_json::from_str::<Single>(data) {
                Ok(ev) => self.apply(i, ev.user, ev.online, now),
                Err(_) => self.bad_events += 1,
            },
            "updates" | "resync" => {
                let Ok(ev) = serde_json::from_str::<Lists>(data) else {
                    self.bad_events += 1;
                    return;
                };
                if kind == "resync" {
                    self.members[i].resync_bytes += raw.len() as u64 + 2;
                    if ev.page == Some(1) {
                        self.members[i].view.fill(0);
                    }
                    for u in ev.online {
                        let Some(idx) = self.index_of(u) else {
                            continue;
                        };
                        self.members[i].set(idx, true);
                        self.heard(i, idx, now);
                    }
                    if let Some(bits) = ev.bits {
                        self.resync_bits(i, ev.from, bits, now);
                    }
                    return;
                }
                for u in ev.online {
                    self.apply(i, u, true, now);
                }
                for u in ev.offline {
                    self.apply(i, u, false, now);
                }
                for (list, online) in [(&ev.on, true), (&ev.off, false)] {
                    for r in from_gaps(list) {
                        let idx = self.roster.get(r).copied().unwrap_or(0);
                        self.apply_index(i, idx, online, now);
                    }
                }
            }
            "gap" => self.gaps += 1,
            _ => {}
        }
    }

    fn index_of(&self, user: &str) -> Option<usize> {
        let idx: usize = user.strip_prefix(&self.args.prefix)?.parse().ok()?;
        (idx <= self.one_more).then_some(idx)
    }

    fn apply(&mut self, i: usize, user: &str, online: bool, now: Instant) {
        let Some(idx) = self.index_of(user) else {
            self.bad_events += 1;
            return;
        };
        self.apply_index(i, idx, online, now);
    }

    /// Member `i`'s view from a `resync` page's online bits (base64).
    fn resync_bits(&mut self, i: usize, from: usize, bits: &str, now: Instant) {
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(bits) else {
            self.bad_events += 1;
            return;
        };
        for k in 0..bytes.len() * 8 {
            if bytes[k / 8] >> (k % 8) & 1 == 1 {
                match self.roster.get(from + k).copied().filter(|&idx| idx > 0) {
                    Some(idx) => {
                        self.members[i].set(idx, true);
                        self.heard(i, idx, now);
                    }
                    None => self.bad_events += 1,
                }
            }
        }
    }

    fn apply_index(&mut self, i: usize, idx: usize, online: bool, now: Instant) {
        if idx == 0 || idx > self.one_more {
            self.bad_events += 1;
            return;
        }
        let was = self.members[i].set(idx, online);
        if was == online {
            self.members[i].dups += 1;
        }
        if online {
            self.heard(i, idx, now);
        }
    }

    fn heard(&mut self, i: usize, idx: usize, now: Instant) {
        if idx == self.one_more && self.one_more_start.is_some() {
            self.members[i].heard_one_more.get_or_insert(now);
        }
    }

    /// Runs until nothing reaches any member for `quiet`; returns when the
    /// server's CPU time last grew and when the last byte arrived.
    fn settle(&mut self, pid: Option<u32>) -> io::Result<(Option<Instant>, Instant)> {
        let start = Instant::now();
        let mut busy_until = pid.map(|_| start);
        let mut last_ticks = pid.map(cpu_ticks).transpose()?;
        let mut last_sample = start;
        loop {
            self.turn(Duration::from_millis(20))?;
            let now = Instant::now();
            if let (Some(pid), Some(prev)) = (pid, last_ticks) {
                if now - last_sample >= Duration::from_millis(50) {
                    let t = cpu_ticks(pid)?;
                    if t > prev {
                        busy_until = Some(now);
                    }
                    last_ticks = Some(t);
                    last_sample = now;
                }
            }
            let quiet_since = self.last_byte.max(busy_until.unwrap_or(start));
            if now - quiet_since >= self.args.quiet || now - start >= self.args.timeout {
                return Ok((busy_until, self.last_byte));
            }
        }
    }

    /// Phase 2: one more member comes online; how long until each member
    /// knew. Done `--one-more-rounds` times (the one more leaves between
    /// rounds and every member hears it), and like the hub's yardstick the
    /// figures are the median of the rounds' (the first round's p99 too).
    fn one_more(&mut self) -> io::Result<Vec<(String, String)>> {
        let rounds = self.args.one_more_rounds.max(1);
        // p50, p99, max and the server's CPU (ms) of each round.
        let mut figures: Vec<[f64; 5]> = Vec::with_capacity(rounds);
        let pid = self.args.server_pid;
        for r in 0..rounds {
            if r > 0 {
                self.one_more_leaves()?;
            }
            let before = pid.map(cpu_ticks).transpose()?;
            let [received, p50, p99, max] = self.one_more_round()?;
            let cpu_ms = match (pid, before) {
                (Some(pid), Some(before)) => (cpu_ticks(pid)? - before) * 1000 / TICKS_PER_SEC,
                _ => 0,
            };
            figures.push([received, p50, p99, max, cpu_ms as f64]);
        }
        // Let the rest (its own resync, late batches) arrive before the views are compared.
        self.settle(None)?;
        let median = |k: usize| {
            let mut v: Vec<f64> = figures.iter().map(|f| f[k]).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        Ok(vec![
            ("one_more_rounds".into(), rounds.to_string()),
            ("one_more_received".into(), format!("{}", median(0))),
            ("one_more_p50_ms".into(), format!("{:.2}", median(1))),
            ("one_more_p99_ms".into(), format!("{:.2}", median(2))),
            ("one_more_max_ms".into(), format!("{:.2}", median(3))),
            (
                "one_more_first_p99_ms".into(),
                format!("{:.2}", figures[0][2]),
            ),
            // The server's CPU from an arrival's request until all heard it
            // (its pipe, hello and resync too), the median of the rounds' as
            // the hub's `fanout_server_cpu_ms` is.
            ("one_more_server_cpu_ms".into(), format!("{:.0}", median(4))),
        ])
    }

    /// One arrival of the one more: how many heard it, p50, p99, max (ms).
    fn one_more_round(&mut self) -> io::Result<[f64; 4]> {
        let n = self.args.members;
        let i = self.one_more - 1;
        for m in &mut self.members[..n] {
            m.heard_one_more = None;
        }
        let start = Instant::now();
        self.one_more_start = Some(start);
        self.open(i)?;
        let deadline = start + self.args.timeout;
        while Instant::now() < deadline {
            self.turn(Duration::from_millis(20))?;
            let heard = self.members[..n]
                .iter()
                .filter(|m| m.heard_one_more.is_some())
                .count();
            let alive = self.members[..n].iter().filter(|m| !m.closed).count();
            if heard >= alive {
                break;
            }
        }
        let mut lat: Vec<Duration> = self.members[..n]
            .iter()
            .filter_map(|m| m.heard_one_more.map(|t| t - start))
            .collect();
        lat.sort();
        let pick = |q: f64| {
            if lat.is_empty() {
                return 0.0;
            }
            let k = ((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1;
            lat[k].as_secs_f64() * 1000.0
        };
        Ok([lat.len() as f64, pick(0.5), pick(0.99), pick(1.0)])
    }

    /// The one more closes its pipe; returns once every member heard it
    /// went offline (or the timeout passed) and a quiet `--quiet` followed.
    fn one_more_leaves(&mut self) -> io::Result<()> {
        let n = self.args.members;
        let (i, idx) = (self.one_more - 1, self.one_more);
        self.one_more_start = None;
        if let Some(mut stream) = self.members[i].stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        let m = &mut self.members[i];
        (m.sent, m.head_done, m.closed) = (false, false, false);
        m.buf.clear();
        let deadline = Instant::now() + self.args.timeout;
        while Instant::now() < deadline {
            self.turn(Duration::from_millis(20))?;
            if self.members[..n].iter().all(|m| m.closed || !m.has(idx)) {
                break;
            }
        }
        // Quiet for longer than the coalescer may space a group's batches
        // (ten windows), so the next arrival is a lone one, as the first.
        self.settle(None)?;
        Ok(())
    }

    /// Phase 3: every member's view against the server's (all N+1 online).
    fn check_views(&self) -> Vec<(String, String)> {
        let everyone = self.one_more;
        let (mut exact, mut missing, mut extra, mut dups) = (0, 0u64, 0u64, 0u64);
        for m in &self.members {
            let mut miss = 0;
            for idx in 1..=everyone {
                if idx != m.index && !m.has(idx) {
                    miss += 1;
                }
            }
            let ext = (0..m.view.len() * 64)
                .filter(|&idx| (idx == 0 || idx > everyone) && m.has(idx))
                .count() as u64;
            missing += miss;
            extra += ext;
            dups += m.dups;
            if miss == 0 && ext == 0 {
                exact += 1;
            }
        }
        vec![
            (
                "views_exact".into(),
                format!("{exact}/{}", self.members.len()),
            ),
            ("views_missing_total".into(), missing.to_string()),
            ("views_extra_total".into(), extra.to_string()),
            ("duplicated_total".into(), dups.to_string()),
            ("gap_events".into(), self.gaps.to_string()),
            ("bad_events".into(), self.bad_events.to_string()),
        ]
    }
}
