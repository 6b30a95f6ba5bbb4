//! `altsock-echo`: WebSocket echo throughput. Opens `--connections`
//! WebSockets to an echo server (altsock's `ws_echo` example), keeps
//! `--window` masked text messages of `--size` bytes in flight on each, and
//! counts the echoes for `--duration`. Reports messages echoed per second and,
//! with `--server-pid`, the server's CPU time over the run (so "per core" is
//! the rate divided by the share of one core the server used). One thread,
//! one `mio::Poll`; loopback only. A benchmark, not a test.
//!
//! Every echo is one unmasked frame of exactly `2 + size` bytes (size < 126,
//! and the server's keepalive is assumed longer than the run), so echoes are
//! counted by bytes.

#[path = "../common.rs"]
#[allow(dead_code)]
mod common;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use altsock::parse_duration;
use altsock::ws::{encode_masked_frame, Opcode};
use clap::Parser;
use common::{cpu_ticks, cpu_ticks_self, find};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Linux exposes `/proc` CPU times in USER_HZ, fixed at 100 per second.
const TICKS_PER_SEC: u64 = 100;

/// WebSocket echo throughput against an echo server.
#[derive(Parser, Debug)]
#[command(name = "altsock-echo", version)]
struct Args {
    /// The echo server (loopback).
    #[arg(long, default_value = "127.0.0.1:9001")]
    target: SocketAddr,
    /// WebSocket connections.
    #[arg(long, short = 'n', default_value_t = 64)]
    connections: usize,
    /// Messages in flight per connection.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Payload bytes per message (at most 125).
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// How long to measure (after a one-second warm-up).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// The server's process id, for its CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// One echo connection.
struct Conn {
    stream: TcpStream,
    /// Bytes of the 101 head still to see (`true` until it ended).
    in_head: bool,
    head: Vec<u8>,
    /// Echo bytes received that do not yet make a whole frame.
    partial: usize,
    /// Messages owed to the socket (written when it takes them).
    owed: usize,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("altsock-echo: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> io::Result<()> {
    if args.size > 125 || !args.target.ip().is_loopback() {
        return Err(io::Error::other(
            "size must be <= 125 and the target loopback",
        ));
    }
    let mut frame = Vec::new();
    encode_masked_frame(
        &mut frame,
        true,
        Opcode::Text,
        [1, 2, 3, 4],
        &vec![b'e'; args.size],
    );
    let echo_len = 2 + args.size;
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let mut stream = TcpStream::connect(args.target)?;
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        conns.push(Conn {
            stream,
            in_head: true,
            head: Vec::new(),
            partial: 0,
            owed: 0,
        });
    }
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        args.target
    );
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent_request = vec![false; args.connections];
    let warm_up = Instant::now() + Duration::from_secs(1);
    let mut measuring: Option<(Instant, u64, Option<u64>, u64)> = None;
    let mut echoed: u64 = 0;
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for event in events.iter() {
            let i = event.token().0;
            let conn = &mut conns[i];
            if event.is_writable() && !sent_request[i] {
                conn.stream.write_all(request.as_bytes())?;
                sent_request[i] = true;
            }
            if event.is_readable() {
                echoed += read_echoes(conn, &mut buf, echo_len, args.window)?;
            }
            write_owed(conn, &frame)?;
        }
        let now = Instant::now();
        match measuring {
            None if now >= warm_up => {
                let server = args.server_pid.map(cpu_ticks).transpose()?;
                measuring = Some((now, echoed, server, cpu_ticks_self()?));
            }
            Some((start, from, server_from, self_from)) if now >= start + args.duration => {
                let secs = (now - start).as_secs_f64();
                let count = echoed - from;
                println!("echo: connections = {}", args.connections);
                println!("echo: window = {}, size = {} B", args.window, args.size);
                println!("echo: messages = {count} in {secs:.2} s");
                println!("echo: messages_per_sec = {:.0}", count as f64 / secs);
                let client_ms = (cpu_ticks_self()? - self_from) * 1000 / TICKS_PER_SEC;
                println!("echo: client_cpu_ms = {client_ms}");
                if let (Some(pid), Some(from)) = (args.server_pid, server_from) {
                    let server_ms = (cpu_ticks(pid)? - from) * 1000 / TICKS_PER_SEC;
                    let share = server_ms as f64 / (secs * 1000.0);
                    println!(
                        "echo: server_cpu_ms = {server_ms} ({:.0}% of one core)",
                        share * 100.0
                    );
                    let per_core = count as f64 / secs / share.max(0.01);
                    println!("echo: messages_per_server_cpu_sec = {per_core:.0}");
                }
                return Ok(());
            }
            _ => {}
        }
    }
}

/// Reads what arrived; returns the whole echoes in it. After the `101`, each
/// connection is given its window of messages; each echo owes one more.
fn read_echoes(conn: &mut Conn, buf: &mut [u8], echo_len: usize, window: usize) -> io::Result<u64> {
    let mut echoes = 0;
    loop {
        let n = match conn.stream.read(buf) {
            Ok(0) => return Err(io::Error::other("the server closed a connection")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(echoes),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut data = &buf[..n];
        if conn.in_head {
            conn.head.extend_from_slice(data);
            let Some(end) = find(&conn.head, b"\r\n\r\n") else {
                continue;
            };
            if !conn.head.starts_with(b"HTTP/1.1 101") {
                return Err(io::Error::other("the upgrade was refused"));
            }
            let rest = conn.head.len() - (end + 4);
            data = &buf[n - rest..n];
            conn.in_head = false;
            conn.head = Vec::new();
            conn.owed += window;
        }
        conn.partial += data.len();
        let whole = conn.partial / echo_len;
        conn.partial %= echo_len;
        conn.owed += whole;
        echoes += whole as u64;
    }
}

/// Writes the messages owed, as many as the socket takes whole.
fn write_owed(conn: &mut Conn, frame: &[u8]) -> io::Result<()> {
    if conn.in_head || conn.owed == 0 {
        return Ok(());
    }
    let batch = frame.repeat(conn.owed);
    let mut written = 0;
    while written < batch.len() {
        match conn.stream.write(&batch[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    // A frame cut in two must still be finished: write the rest blocking-free
    // on the next turn by owing only the frames not started.
    let started = written.div_ceil(frame.len());
    let cut = written % frame.len();
    if cut != 0 {
        let rest = &frame[cut..];
        let mut done = 0;
        while done < rest.len() {
            match conn.stream.write(&rest[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
    conn.owed -= started;
    Ok(())
}
