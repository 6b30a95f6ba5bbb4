//! `altsock-load`: the load tool of the benchmarks. It holds N subscriber
//! connections to a push server (altsock's `pubsub` example, or nginx with
//! nchan), spread across many `127.x.y.z` source addresses, and measures four
//! things in four phases, each bounded in time:
//!
//! 1. **connect**: opens the N subscribers, at most `--in-flight` at a time,
//!    sends `GET <sub-path>` on each and waits for each `200` response head
//!    (`101` with `--websocket`, whose keepalive pings it answers);
//!    reports connections per second until all N are held;
//! 2. **memory**: the server's `VmRSS` (from `/proc/PID/status`) before the
//!    first connection and with N held; reports the delta per held connection;
//! 3. **fan-out**: publishes one message per round carrying a unique marker and
//!    times, for every subscriber, the span from just before the publish
//!    request was written to the read that delivered the marker;
//! 4. **idle**: lets the N connections sit idle and reports the server's CPU
//!    time (`utime + stime` from `/proc/PID/stat`) and the keepalive bytes each
//!    connection received.
//!
//! One thread and one edge-triggered `mio::Poll`; one socket per connection, so
//! one process holds at most about 19,000 connections under the 20,000-file
//! limit. It only ever connects to `127.0.0.0/8`. It is a benchmark, not a test.
//!
//! With `--tls-ca PEM` the subscribers speak TLS (see `tls.rs`); the connect
//! phase then also reports the server's CPU per handshake, and the publisher
//! may go to a plain listener of the same server (`--pub-target`).

mod common;
mod tls;

use std::fs;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream as StdStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use altsock::parse_duration;
use clap::Parser;
use common::{connect_from, cpu_ticks, cpu_ticks_self, find, source_addr};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// The token of the publisher connection; subscribers use their index.
const PUBLISHER: Token = Token(usize::MAX - 1);
/// The largest response head accepted from a subscriber's server.
const MAX_HEAD: usize = 16 * 1024;
/// Linux exposes `/proc` CPU times in USER_HZ, fixed at 100 per second.
const TICKS_PER_SEC: u64 = 100;
/// File descriptors this process keeps for itself (poll, stdio, publisher...).
const FD_RESERVE: usize = 64;

/// Holds N subscriber connections to a push server and measures connect rate,
/// server memory per connection, fan-out latency and idle CPU.
#[derive(Parser, Debug)]
#[command(name = "altsock-load", version)]
struct Args {
    /// The server, an address in 127.0.0.0/8.
    #[arg(long, default_value = "127.0.0.1:9000")]
    target: SocketAddr,
    /// Where the publisher connects (plain HTTP); the target if not given.
    #[arg(long)]
    pub_target: Option<SocketAddr>,
    /// Subscribers speak TLS to the target, trusting this PEM certificate
    /// (the server is named `localhost`).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// The path subscribers GET.
    #[arg(long, default_value = "/sub")]
    sub_path: String,
    /// The path messages are published to.
    #[arg(long, default_value = "/pub")]
    pub_path: String,
    /// The method of the publish request.
    #[arg(long, default_value = "POST")]
    pub_method: String,
    /// An extra header line for the publish request, e.g. `Authorization:
    /// Bearer TOKEN` for `altsock serve`'s hub (`/pub/CHANNEL`); repeatable.
    #[arg(long)]
    pub_header: Vec<String>,
    /// Send `Accept: text/event-stream` with each subscribe request.
    #[arg(long)]
    accept_sse: bool,
    /// Subscribe with a WebSocket upgrade (expects `101`; answers each
    /// keepalive ping with a masked pong, so the server keeps the peer).
    #[arg(long)]
    websocket: bool,
    /// Every second subscriber (odd index) upgrades to a WebSocket, the
    /// others take SSE: both in the same rounds, reported apart (`fanout_sse_*`,
    /// `fanout_ws_*`), so machine noise hits both alike.
    #[arg(long)]
    websocket_mix: bool,
    /// Subscriber connections to hold.
    #[arg(long, short = 'n', default_value_t = 1000)]
    connections: usize,
    /// The first source address; the others follow it (127.1.0.1, 127.1.0.2...).
    #[arg(long, default_value = "127.1.0.1")]
    source_base: Ipv4Addr,
    /// How many source addresses the connections are spread across.
    #[arg(long, default_value_t = 64)]
    source_addrs: u32,
    /// Connections being opened at once, at most (keeps the listen backlog sane).
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// The server's process id, for RSS and CPU (the nginx worker for nchan).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Publish rounds.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// How long the connections sit idle in the last phase.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    idle: Duration,
    /// Give up connecting after this long.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// Give up on a publish round after this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    round_timeout: Duration,
    /// Pause with all N held before RSS is read and between rounds.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    settle: Duration,
    /// A name for this run in the output.
    #[arg(long, default_value = "server")]
    label: String,
    /// Also write the results as `key=value` lines to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Where one subscriber is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `connect` in progress.
    Connecting,
    /// Request written, waiting for the response head.
    Sent,
    /// Response head received; the stream is held.
    Held,
    /// Failed or closed.
    Dead,
}

/// One subscriber connection.
struct Sub {
    stream: TcpStream,
    state: State,
    /// The response head so far; empty once held.
    head: Vec<u8>,
    /// The last bytes of this round's stream, for a marker split across reads.
    carry: Vec<u8>,
    /// Bytes received since the counter was last reset.
    bytes: u64,
    /// The round whose marker this subscriber has already delivered.
    seen_round: usize,
    /// The TLS session, in TLS mode.
    tls: Option<Box<rustls::ClientConnection>>,
    /// Subscribed with a WebSocket upgrade.
    ws: bool,
}

/// Counts of the connect phase.
#[derive(Default)]
struct Tally {
    in_flight: usize,
    held: usize,
    failed: usize,
    /// Held connections that closed later.
    dropped: usize,
    first_error: Option<String>,
}

/// One publish round's outcome.
struct Round {
    received: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// With `--websocket-mix`: p50 and p99 of the SSE, then the WebSocket subscribers.
    by_kind: [Duration; 4],
    status: u16,
    reply: String,
    server_cpu_ms: u64,
    client_cpu_ms: u64,
}

/// The load run: the poll, the subscribers and the counts.
struct Load {
    args: Args,
    poll: Poll,
    events: Events,
    subs: Vec<Sub>,
    tally: Tally,
    request: Vec<u8>,
    /// The subscribe request of `--websocket-mix`'s WebSocket subscribers.
    ws_request: Vec<u8>,
    buf: Vec<u8>,
    /// The marker of the current round, empty outside rounds.
    marker: Vec<u8>,
    round: usize,
    round_start: Instant,
    latencies: Vec<Duration>,
    tls_config: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Whether each of `latencies` is a WebSocket subscriber's.
    latency_ws: Vec<bool>,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("altsock-load: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> io::Result<()> {
    check_args(&args)?;
    let mut out = Report::new(&args.label);
    let mut load = Load::new(args)?;
    let pid = load.args.server_pid;
    let rss_before = pid.map(rss_kb).transpose()?;
    load.connect_all(&mut out)?;
    std::thread::sleep(load.args.settle);
    load.drain(Duration::from_millis(100))?;
    if let (Some(pid), Some(before)) = (pid, rss_before) {
        let held_kb = rss_kb(pid)?;
        let per_conn = (held_kb as f64 - before as f64) * 1024.0 / load.tally.held.max(1) as f64;
        out.add("rss_before_kb", before);
        out.add("rss_held_kb", held_kb);
        out.add("rss_per_conn_bytes", format!("{per_conn:.0}"));
    }
    load.fan_out(&mut out)?;
    load.idle(&mut out)?;
    out.add("dropped", load.tally.dropped);
    out.finish(load.args.out.as_ref())
}

fn check_args(args: &Args) -> io::Result<()> {
    let loopback = |ip: IpAddr| matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 127);
    if !loopback(args.target.ip()) || args.source_base.octets()[0] != 127 {
        return Err(io::Error::other(
            "target and sources must be in 127.0.0.0/8",
        ));
    }
    let last = u32::from(args.source_base) as u64 + args.source_addrs.max(1) as u64 - 1;
    if last > u32::from(Ipv4Addr::new(127, 255, 255, 254)) as u64 {
        return Err(io::Error::other(
            "source addresses run past 127.255.255.254",
        ));
    }
    let limit = fd_limit()?;
    if args.connections + FD_RESERVE > limit {
        return Err(io::Error::other(format!(
            "{} connections need more than the {limit} open files this process may hold; \
             run several processes",
            args.connections
        )));
    }
    Ok(())
}

impl Load {
    fn new(args: Args) -> io::Result<Self> {
        let accept = if args.accept_sse {
            "Accept: text/event-stream\r\n"
        } else {
            ""
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n{accept}\r\n",
            args.sub_path, args.target
        );
        let tls_config = args.tls_ca.as_deref().map(tls::client_config).transpose()?;
        let ws_request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n{WS_UPGRADE}\r\n",
            args.sub_path, args.target
        );
        Ok(Load {
            tls_config,
            ws_request: ws_request.into_bytes(),
            latency_ws: Vec::new(),
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            subs: Vec::with_capacity(args.connections),
            tally: Tally::default(),
            request: request.into_bytes(),
            buf: vec![0; 64 * 1024],
            marker: Vec::new(),
            round: 0,
            round_start: Instant::now(),
            latencies: Vec::new(),
            args,
        })
    }

    /// Phase 1: opens all N subscribers and waits until each is held or failed.
    fn connect_all(&mut self, out: &mut Report) -> io::Result<()> {
        let n = self.args.connections;
        let start = Instant::now();
        let client_before = cpu_ticks_self()?;
        let server_before = self.args.server_pid.map(cpu_ticks).transpose()?;
        let deadline = start + self.args.connect_timeout;
        while self.tally.held + self.tally.failed < n {
            while self.tally.in_flight < self.args.in_flight && self.subs.len() < n {
                self.open()?;
            }
            if Instant::now() >= deadline {
                break;
            }
            self.turn(Duration::from_millis(50))?;
        }
        let secs = start.elapsed().as_secs_f64();
        let t = &self.tally;
        out.add("connections", n);
        out.add("held", t.held);
        out.add("failed", t.failed + (n - t.held - t.failed));
        out.add("connect_secs", format!("{secs:.3}"));
        out.add("connect_rate", format!("{:.0}", t.held as f64 / secs));
        let client_ms = (cpu_ticks_self()? - client_before) * 1000 / TICKS_PER_SEC;
        out.add("connect_client_cpu_ms", client_ms);
        if let Some(before) = server_before {
            let server_ms =
                (cpu_ticks(self.args.server_pid.unwrap_or(0))? - before) * 1000 / TICKS_PER_SEC;
            out.add("connect_server_cpu_ms", server_ms);
            let per_cpu_sec = t.held as f64 * 1000.0 / server_ms.max(1) as f64;
            out.add("connects_per_server_cpu_sec", format!("{per_cpu_sec:.0}"));
        }
        if let Some(e) = &t.first_error {
            out.note(format!("first connect error: {e}"));
        }
        Ok(())
    }

    /// Opens one subscriber socket from the next source address.
    fn open(&mut self) -> io::Result<()> {
        let index = self.subs.len();
        let source = source_addr(self.args.source_base, self.args.source_addrs, index);
        let mut stream = connect_from(source, self.args.target)?;
        self.poll.registry().register(
            &mut stream,
            Token(index),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.subs.push(Sub {
            stream,
            state: State::Connecting,
            head: Vec::new(),
            carry: Vec::new(),
            bytes: 0,
            seen_round: 0,
            tls: None,
            ws: self.args.websocket || (self.args.websocket_mix && index % 2 == 1),
        });
        self.tally.in_flight += 1;
        Ok(())
    }

    /// One poll and the handling of its events; returns whether the publisher
    /// connection became readable.
    fn turn(&mut self, timeout: Duration) -> io::Result<bool> {
        self.poll.poll(&mut self.events, Some(timeout))?;
        let tokens: Vec<(Token, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                (
                    e.token(),
                    e.is_readable() || e.is_read_closed(),
                    e.is_writable(),
                )
            })
            .collect();
        let mut publisher = false;
        for (token, readable, writable) in tokens {
            if token == PUBLISHER {
                publisher = true;
                continue;
            }
            if writable && self.subs[token.0].state == State::Connecting {
                self.on_connected(token.0);
            } else if writable {
                let sub = &mut self.subs[token.0];
                if let Some(conn) = sub.tls.as_mut() {
                    if let Err(e) = tls::flush(conn, &mut sub.stream) {
                        self.fail(token.0, format!("tls write: {e}"));
                    }
                }
            }
            if readable {
                self.on_readable(token.0);
            }
        }
        Ok(publisher)
    }

    fn on_connected(&mut self, i: usize) {
        let sub = &mut self.subs[i];
        let request = if sub.ws {
            &self.ws_request
        } else {
            &self.request
        };
        let status = match sub.stream.take_error() {
            Ok(None) => sub.stream.peer_addr().map(|_| ()),
            Ok(Some(e)) | Err(e) => Err(e),
        };
        if let (Ok(()), Some(config)) = (&status, &self.tls_config) {
            let started = tls::start(config, request)
                .and_then(|mut conn| tls::flush(&mut conn, &mut sub.stream).map(|_| conn));
            match started {
                Ok(conn) => {
                    sub.tls = Some(conn);
                    sub.state = State::Sent;
                }
                Err(e) => self.fail(i, format!("tls: {e}")),
            }
            return;
        }
        match status {
            Ok(()) => match sub.stream.write(request) {
                Ok(n) if n == request.len() => sub.state = State::Sent,
                Ok(_) => self.fail(i, "short write of the request".into()),
                Err(e) => self.fail(i, format!("write: {e}")),
            },
            // Not connected yet (spurious wakeup): wait for the next event.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
            Err(e) => self.fail(i, format!("connect: {e}")),
        }
    }

    fn fail(&mut self, i: usize, why: String) {
        let sub = &mut self.subs[i];
        match sub.state {
            State::Held => self.tally.dropped += 1,
            State::Dead => return,
            _ => {
                self.tally.failed += 1;
                self.tally.in_flight -= 1;
            }
        }
        sub.state = State::Dead;
        let _ = self.poll.registry().deregister(&mut sub.stream);
        let _ = sub.stream.shutdown(std::net::Shutdown::Both);
        self.tally.first_error.get_or_insert(why);
    }

    /// Reads a subscriber until `WouldBlock`.
    fn on_readable(&mut self, i: usize) {
        if self.subs[i].tls.is_some() {
            return self.on_tls_readable(i);
        }
        loop {
            let state = self.subs[i].state;
            if !matches!(state, State::Sent | State::Held) {
                return;
            }
            match self.subs[i].stream.read(&mut self.buf) {
                Ok(0) => return self.fail(i, "closed by the server".into()),
                Ok(n) => self.on_bytes_read(i, state, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(i, format!("read: {e}")),
            }
        }
    }

    /// `n` bytes of subscriber `i` just read into `buf`: its answer's head
    /// while `Sent`, its stream once `Held`.
    fn on_bytes_read(&mut self, i: usize, state: State, n: usize) {
        let now = Instant::now();
        if state == State::Sent {
            self.on_head_bytes(i, n, now);
        } else {
            self.on_stream_bytes(i, 0, n, now);
        }
    }

    /// Reads a TLS subscriber's records, then its plaintext, until `WouldBlock`.
    fn on_tls_readable(&mut self, i: usize) {
        let sub = &mut self.subs[i];
        let Some(conn) = sub.tls.as_mut() else { return };
        let eof = match tls::pump(conn, &mut sub.stream) {
            Ok(eof) => eof,
            Err(e) => return self.fail(i, format!("tls: {e}")),
        };
        loop {
            let state = self.subs[i].state;
            if !matches!(state, State::Sent | State::Held) {
                return;
            }
            let Some(conn) = self.subs[i].tls.as_mut() else {
                return;
            };
            match conn.reader().read(&mut self.buf) {
                Ok(0) => return self.fail(i, "closed by the server (close_notify)".into()),
                Ok(n) => self.on_bytes_read(i, state, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return self.fail(i, format!("tls read: {e}")),
            }
        }
        if eof {
            self.fail(i, "closed by the server".into());
        }
    }

    /// Response head bytes of subscriber `i` in `buf[..n]`.
    fn on_head_bytes(&mut self, i: usize, n: usize, now: Instant) {
        let sub = &mut self.subs[i];
        let old = sub.head.len();
        sub.head.extend_from_slice(&self.buf[..n]);
        let Some(end) = find(&sub.head, b"\r\n\r\n") else {
            if sub.head.len() > MAX_HEAD {
                self.fail(i, "response head too large".into());
            }
            return;
        };
        let status = status_code(&sub.head);
        let expected = if sub.ws { 101 } else { 200 };
        if status != Some(expected) {
            let line = String::from_utf8_lossy(&sub.head[..sub.head.len().min(80)]).into_owned();
            return self.fail(i, format!("response: {line:?}"));
        }
        sub.head = Vec::new();
        sub.state = State::Held;
        self.tally.in_flight -= 1;
        self.tally.held += 1;
        let body_from = end + 4 - old;
        if body_from < n {
            self.on_stream_bytes(i, body_from, n, now);
        }
    }

    /// Stream bytes of held subscriber `i` in `buf[from..to]`: counted, and
    /// searched for the current round's marker.
    fn on_stream_bytes(&mut self, i: usize, from: usize, to: usize, now: Instant) {
        let sub = &mut self.subs[i];
        sub.bytes += (to - from) as u64;
        if sub.ws {
            answer_pings(&mut sub.stream, &self.buf[from..to]);
        }
        if self.marker.is_empty() || sub.seen_round == self.round {
            return;
        }
        let data = &self.buf[from..to];
        let found = if sub.carry.is_empty() {
            find(data, &self.marker).is_some()
        } else {
            sub.carry.extend_from_slice(data);
            find(&sub.carry, &self.marker).is_some()
        };
        if found {
            sub.seen_round = self.round;
            sub.carry = Vec::new();
            self.latencies.push(now - self.round_start);
            self.latency_ws.push(sub.ws);
        } else {
            let keep = self.marker.len() - 1;
            let joined = if sub.carry.is_empty() {
                data
            } else {
                &sub.carry[..]
            };
            let tail = joined[joined.len().saturating_sub(keep)..].to_vec();
            sub.carry = tail;
        }
    }

    /// Reads whatever arrives for `span` and drops it (counting the bytes).
    fn drain(&mut self, span: Duration) -> io::Result<()> {
        let end = Instant::now() + span;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            self.turn(left)?;
        }
        Ok(())
    }

    /// Phase 3: the publish rounds.
    fn fan_out(&mut self, out: &mut Report) -> io::Result<()> {
        if self.tally.held == 0 {
            out.note("no subscriber held: no publish rounds".into());
            return Ok(());
        }
        let mut rounds = Vec::new();
        for r in 1..=self.args.rounds {
            let round = self.publish_round(r)?;
            println!(
                "{}: round {r}: {}/{} received, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, \
                 publish {} {:?}, server cpu {} ms, client cpu {} ms",
                self.args.label,
                round.received,
                self.tally.held,
                ms(round.p50),
                ms(round.p99),
                ms(round.max),
                round.status,
                round.reply,
                round.server_cpu_ms,
                round.client_cpu_ms
            );
            if self.args.websocket_mix {
                let [a, b, c, d] = round.by_kind.map(ms);
                println!("{}: round {r}: SSE p50 {a:.2} p99 {b:.2} ms; WebSocket p50 {c:.2} p99 {d:.2} ms", self.args.label);
            }
            rounds.push(round);
            self.drain(self.args.settle)?;
        }
        if rounds.is_empty() {
            return Ok(());
        }
        let median = |f: &dyn Fn(&Round) -> f64| {
            let mut v: Vec<f64> = rounds.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        out.add("rounds", rounds.len());
        out.add("fanout_p50_ms", format!("{:.2}", median(&|r| ms(r.p50))));
        out.add("fanout_p99_ms", format!("{:.2}", median(&|r| ms(r.p99))));
        out.add("fanout_max_ms", format!("{:.2}", median(&|r| ms(r.max))));
        if self.args.websocket_mix {
            for (i, key) in [
                "fanout_sse_p50_ms",
                "fanout_sse_p99_ms",
                "fanout_ws_p50_ms",
                "fanout_ws_p99_ms",
            ]
            .iter()
            .enumerate()
            {
                out.add(key, format!("{:.2}", median(&|r| ms(r.by_kind[i]))));
            }
        }
        let worst = rounds.iter().map(|r| ms(r.max)).fold(0.0, f64::max);
        out.add("fanout_worst_max_ms", format!("{worst:.2}"));
        let least = rounds.iter().map(|r| r.received).min().unwrap_or(0);
        out.add("fanout_received_min", least);
        out.add("publish_status", rounds[0].status);
        let cpu = median(&|r| r.server_cpu_ms as f64);
        out.add("fanout_server_cpu_ms", format!("{cpu:.0}"));
        let client = median(&|r| r.client_cpu_ms as f64);
        out.add("fanout_client_cpu_ms", format!("{client:.0}"));
        Ok(())
    }

    /// Publishes one message and waits until every held subscriber has it.
    fn publish_round(&mut self, r: usize) -> io::Result<Round> {
        let sent_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        self.marker =
            format!("altsock-load-{:05}-{:020}", r, sent_ns % 10u128.pow(20)).into_bytes();
        self.round = r;
        self.latencies.clear();
        self.latency_ws.clear();
        for sub in &mut self.subs {
            sub.carry = Vec::new();
        }
        let body = format!(
            "{} sent_unix_ns={sent_ns}",
            String::from_utf8_lossy(&self.marker)
        );
        let extra: String = self
            .args
            .pub_header
            .iter()
            .map(|h| format!("{h}\r\n"))
            .collect();
        let request = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\n{extra}\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.args.pub_method,
            self.args.pub_path,
            self.args.target,
            body.len()
        );
        let mut publisher = StdStream::connect(self.args.pub_target.unwrap_or(self.args.target))?;
        publisher.set_nodelay(true)?;
        let cpu_before = self.args.server_pid.map(cpu_ticks).transpose()?;
        let client_before = cpu_ticks_self()?;
        self.round_start = Instant::now();
        publisher.write_all(request.as_bytes())?;
        publisher.set_nonblocking(true)?;
        let mut publisher = TcpStream::from_std(publisher);
        self.poll
            .registry()
            .register(&mut publisher, PUBLISHER, Interest::READABLE)?;
        let reply = self.await_round(&mut publisher)?;
        let cpu_after = self.args.server_pid.map(cpu_ticks).transpose()?;
        let client_cpu_ms = (cpu_ticks_self()? - client_before) * 1000 / TICKS_PER_SEC;
        self.poll.registry().deregister(&mut publisher)?;
        self.marker.clear();
        let mut lat = std::mem::take(&mut self.latencies);
        let kinds = std::mem::take(&mut self.latency_ws);
        let of_kind = |ws: bool| -> Vec<Duration> {
            let mut v: Vec<Duration> = lat
                .iter()
                .zip(&kinds)
                .filter(|(_, &k)| k == ws)
                .map(|(d, _)| *d)
                .collect();
            v.sort();
            v
        };
        let (sse, ws) = (of_kind(false), of_kind(true));
        let by_kind = [
            percentile(&sse, 0.5),
            percentile(&sse, 0.99),
            percentile(&ws, 0.5),
            percentile(&ws, 0.99),
        ];
        lat.sort();
        let pick = |q: f64| percentile(&lat, q);
        let cpu_ms = match (cpu_before, cpu_after) {
            (Some(a), Some(b)) => (b - a) * 1000 / TICKS_PER_SEC,
            _ => 0,
        };
        Ok(Round {
            received: lat.len(),
            p50: pick(0.50),
            p99: pick(0.99),
            by_kind,
            max: lat.last().copied().unwrap_or_default(),
            status: status_code(&reply).unwrap_or(0),
            reply: first_body_line(&reply),
            server_cpu_ms: cpu_ms,
            client_cpu_ms,
        })
    }

    /// Runs the loop until all held subscribers have the marker and the
    /// publisher's reply is complete, or the round times out. Returns the reply.
    fn await_round(&mut self, publisher: &mut TcpStream) -> io::Result<Vec<u8>> {
        let deadline = self.round_start + self.args.round_timeout;
        let mut reply = Vec::new();
        let mut reply_done = false;
        loop {
            let alive = self.tally.held - self.tally.dropped;
            if reply_done && self.latencies.len() >= alive {
                return Ok(reply);
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Ok(reply);
            };
            if self.turn(left.min(Duration::from_millis(100)))? && !reply_done {
                reply_done = read_reply(publisher, &mut self.buf, &mut reply);
            }
        }
    }

    /// Phase 4: the connections sit idle; server CPU and keepalive bytes.
    fn idle(&mut self, out: &mut Report) -> io::Result<()> {
        if self.args.idle.is_zero() {
            return Ok(());
        }
        for sub in &mut self.subs {
            sub.bytes = 0;
        }
        let pid = self.args.server_pid;
        let before = pid.map(cpu_ticks).transpose()?;
        let start = Instant::now();
        self.drain(self.args.idle)?;
        let wall = start.elapsed();
        let after = pid.map(cpu_ticks).transpose()?;
        let held: Vec<u64> = self
            .subs
            .iter()
            .filter(|s| s.state == State::Held)
            .map(|s| s.bytes)
            .collect();
        let total: u64 = held.iter().sum();
        out.add("idle_secs", format!("{:.1}", wall.as_secs_f64()));
        out.add("idle_alive", held.len());
        if let (Some(a), Some(b)) = (before, after) {
            let cpu_ms = (b - a) * 1000 / TICKS_PER_SEC;
            out.add("idle_cpu_ms", cpu_ms);
            let pct = cpu_ms as f64 / wall.as_millis().max(1) as f64 * 100.0;
            out.add("idle_cpu_pct", format!("{pct:.2}"));
        }
        let avg = total as f64 / held.len().max(1) as f64;
        out.add("keepalive_bytes_per_conn", format!("{avg:.1}"));
        out.add(
            "keepalive_bytes_min",
            held.iter().min().copied().unwrap_or(0),
        );
        out.add(
            "keepalive_bytes_max",
            held.iter().max().copied().unwrap_or(0),
        );
        Ok(())
    }
}

/// The `q` quantile of sorted `lat` (zero when empty).
fn percentile(lat: &[Duration], q: f64) -> Duration {
    if lat.is_empty() {
        return Duration::ZERO;
    }
    lat[((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1]
}

/// The upgrade headers of `--websocket` (RFC 6455's sample key).
const WS_UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// Answers every keepalive ping in `data` with an empty masked pong. Each
/// ping starts with the byte `0x89`, which no ASCII message (the markers)
/// contains, so counting that byte counts pings, even split across reads.
fn answer_pings(stream: &mut TcpStream, data: &[u8]) {
    const PONG: [u8; 6] = [0x8A, 0x80, 0, 0, 0, 0];
    for _ in data.iter().filter(|&&b| b == 0x89) {
        let _ = stream.write(&PONG);
    }
}

/// Reads the publisher's reply; returns whether it is complete (closed, or a
/// whole head plus `Content-Length` body).
fn read_reply(stream: &mut TcpStream, buf: &mut [u8], reply: &mut Vec<u8>) -> bool {
    loop {
        match stream.read(buf) {
            Ok(0) => return true,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
    let Some(end) = find(reply, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&reply[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    length.is_some_and(|len| reply.len() >= end + 4 + len)
}

/// The status code of an HTTP response head.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let code = std::str::from_utf8(line).ok()?.split_whitespace().nth(1)?;
    code.parse().ok()
}

/// The first line of a reply's body, for the report.
fn first_body_line(reply: &[u8]) -> String {
    let body = find(reply, b"\r\n\r\n").map_or(&[][..], |end| &reply[end + 4..]);
    let text = String::from_utf8_lossy(body);
    text.lines().next().unwrap_or("").chars().take(60).collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `VmRSS` of a process in KiB.
fn rss_kb(pid: u32) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no VmRSS for pid {pid}")))
}

/// This process's soft limit on open files.
fn fd_limit() -> io::Result<usize> {
    let limits = fs::read_to_string("/proc/self/limits")?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or("");
    let soft = line.split_whitespace().nth(3).unwrap_or("unlimited");
    Ok(soft.parse().unwrap_or(usize::MAX))
}

/// The results: printed as a block and optionally written as `key=value` lines.
struct Report {
    label: String,
    lines: Vec<(String, String)>,
    notes: Vec<String>,
}

impl Report {
    fn new(label: &str) -> Self {
        Report {
            label: label.to_string(),
            lines: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn add(&mut self, key: &str, value: impl ToString) {
        let value = value.to_string();
        println!("{}: {key} = {value}", self.label);
        self.lines.push((key.to_string(), value));
    }

    fn note(&mut self, text: String) {
        println!("{}: note: {text}", self.label);
        self.notes.push(text);
    }

    fn finish(&self, path: Option<&PathBuf>) -> io::Result<()> {
        let Some(path) = path else {
            return Ok(());
        };
        let mut text = format!("label={}\n", self.label);
        for (key, value) in &self.lines {
            text.push_str(&format!("{key}={value}\n"));
        }
        for note in &self.notes {
            text.push_str(&format!("# {note}\n"));
        }
        fs::write(path, text)
    }
}
