//! A keepalive burst: when more held connections come due in one tick than
//! the engine fires between two polls, none is skipped: the rest are fired in
//! the following slices, and every stream still takes a broadcast afterwards.
//!
//! Client and server share this process, so it needs two descriptors per
//! connection: the test raises its soft `RLIMIT_NOFILE` (with `prlimit`) when
//! that is too low, and skips, saying why, when the hard limit is.

mod util;

use std::process::Command;
use std::time::Duration;

use altsock::{ConnId, Cx, Engine, Hold, Message, Reply, Request, Response, Router};
use util::{spawn, wait_for, Client};

/// Holds `/sse`; `POST /pub` broadcasts its body to every held stream.
#[derive(Default)]
struct Streams {
    held: Vec<ConnId>,
}

impl Router for Streams {
    type Msg = ();

    fn request(&mut self, req: Request, cx: &mut Cx<'_, ()>) -> Reply {
        if req.method == "POST" {
            let reached = cx.broadcast(&self.held, &Message::data(req.body));
            return Reply::Respond(Response::text(202, reached.to_string()));
        }
        self.held.push(req.conn);
        Reply::Hold(Hold::sse())
    }
}

const N: usize = 2500; // more than two slices of 1024
/// A client and a server socket per connection, and room for the rest.
const DESCRIPTORS: u64 = 2 * N as u64 + 256;

/// This process's soft and hard `RLIMIT_NOFILE`.
fn nofile_limits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("nofile line");
    let value = |i: usize| {
        let field = line.split_whitespace().nth(i).expect("limit");
        field.parse().unwrap_or(u64::MAX) // "unlimited"
    };
    (value(3), value(4))
}

/// Makes sure `DESCRIPTORS` descriptors can be open; false if the hard limit forbids it.
fn enough_descriptors() -> bool {
    let (soft, hard) = nofile_limits();
    if soft >= DESCRIPTORS {
        return true;
    }
    if hard < DESCRIPTORS {
        return false;
    }
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={DESCRIPTORS}:"))
        .status()
        .expect("run prlimit (util-linux)");
    assert!(status.success(), "prlimit failed");
    let (soft, _) = nofile_limits();
    assert!(soft >= DESCRIPTORS, "soft limit still {soft}");
    true
}

#[test]
fn every_connection_of_a_burst_larger_than_a_slice_gets_its_keepalive() {
    if !enough_descriptors() {
        let (soft, hard) = nofile_limits();
        eprintln!(
            "keepalive_burst skipped: it needs {DESCRIPTORS} open files, and RLIMIT_NOFILE \
             is {soft} soft, {hard} hard (raise the hard limit, e.g. ulimit -Hn)"
        );
        return;
    }
    let builder = Engine::builder()
        .poll_interval(Duration::from_millis(20))
        .keepalive_interval(Duration::from_millis(300));
    let server = spawn(builder, Streams::default());
    let mut clients: Vec<Client> = (0..N)
        .map(|_| {
            let mut c = server.connect();
            c.send(b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n");
            c
        })
        .collect();
    for c in &mut clients {
        c.read_through("\r\n\r\n");
    }
    wait_for("every connection's first keepalive", || {
        server.handle.metrics().keepalives >= N as u64
    });
    for c in &mut clients {
        assert_eq!(c.read_through(":\n"), ":\n");
    }
    let reply = util::request(
        server.addr,
        "POST /pub HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert_eq!(reply.text(), N.to_string());
    for c in &mut clients {
        let got = c.read_through("data: hi\n\n");
        assert!(got.ends_with("data: hi\n\n"), "{got:?}");
    }
}
