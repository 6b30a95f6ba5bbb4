//! A silent peer (no FIN, no RST: unplugged) is closed within the keepalive
//! interval plus the `TCP_USER_TIMEOUT` the engine sets.
//!
//! Loopback always answers, so the test "unplugs" it: it re-runs itself in a
//! private network namespace (`unshare -n`, which needs `CAP_SYS_ADMIN`) and,
//! once the stream is open, gives that namespace's `lo` a `pfifo limit 0`
//! root qdisc that drops every packet. The namespace dies with the process,
//! so nothing outside it is touched. Where `unshare -n` is not permitted the
//! test says so and passes, unless `ALTSOCK_REQUIRE_NETNS=1` is set.

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use altsock::{CloseReason, ConnId, Cx, Engine, Hold, Reply, Request, Router};
use util::{spawn, Log};

const INNER: &str = "ALTSOCK_SILENT_PEER_INNER";
const TEST: &str = "silent_peer_is_closed_within_keepalive_plus_user_timeout";

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Request(ConnId),
    Closed(ConnId, CloseReason),
}

struct Sse {
    log: Log<Ev>,
}

impl Router for Sse {
    type Msg = ();
    fn request(&mut self, req: Request, _cx: &mut Cx<'_, ()>) -> Reply {
        self.log.push(Ev::Request(req.conn));
        Reply::Hold(Hold::sse())
    }
    fn closed(&mut self, conn: ConnId, reason: CloseReason, _cx: &mut Cx<'_, ()>) {
        self.log.push(Ev::Closed(conn, reason));
    }
}

fn run(cmd: &str, args: &[&str]) {
    let status = Command::new(cmd).args(args).status().expect(cmd);
    assert!(status.success(), "{cmd} {args:?} failed");
}

#[test]
fn silent_peer_is_closed_within_keepalive_plus_user_timeout() {
    if std::env::var_os(INNER).is_some() {
        return inside_private_namespace();
    }
    let permitted = Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !permitted {
        assert!(
            std::env::var_os("ALTSOCK_REQUIRE_NETNS").is_none(),
            "unshare -n is not permitted here"
        );
        eprintln!("silent peer test skipped: unshare -n is not permitted (needs CAP_SYS_ADMIN)");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("unshare")
        .arg("-n")
        .arg(exe)
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .output()
        .expect("run in a namespace");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "inner run failed:\n{text}");
    assert!(text.contains("1 passed"), "inner test did not run:\n{text}");
    for line in text.lines().filter(|l| l.starts_with("silent peer closed")) {
        eprintln!("{line}");
    }
}

fn inside_private_namespace() {
    run("ip", &["link", "set", "lo", "up"]);
    let keepalive = Duration::from_millis(100);
    let user_timeout = Duration::from_millis(500);
    let log = Log::default();
    let server = spawn(
        Engine::builder()
            .poll_interval(Duration::from_millis(10))
            .keepalive_interval(keepalive)
            .tcp_user_timeout(Some(user_timeout)),
        Sse { log: log.clone() },
    );
    let mut client = server.connect();
    client.send(b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n");
    client.read_through("\r\n\r\n");
    assert_eq!(
        client.read_exact_n(2),
        b":\n",
        "a keepalive arrives while plugged in"
    );
    let conn = log.wait_for("request", |e| match e {
        Ev::Request(c) => Some(*c),
        _ => None,
    });
    // Unplug: from now on every packet on lo is dropped, in both directions.
    run(
        "tc",
        &["qdisc", "add", "dev", "lo", "root", "pfifo", "limit", "0"],
    );
    let unplugged = Instant::now();
    let reason = log.wait_for("closed", |e| match e {
        Ev::Closed(c, r) if *c == conn => Some(*r),
        _ => None,
    });
    let took = unplugged.elapsed();
    run("tc", &["qdisc", "del", "dev", "lo", "root"]);
    assert_eq!(reason, CloseReason::PeerReset);
    // Not before the kernel gave up on the unacknowledged keepalive, and within
    // the keepalive interval plus the user timeout (plus retransmit granularity).
    assert!(took >= user_timeout, "closed after only {took:?}");
    assert!(
        took < keepalive + user_timeout + Duration::from_millis(1500),
        "closed after {took:?}"
    );
    assert_eq!(server.handle.metrics().closed_by(CloseReason::PeerReset), 1);
    eprintln!("silent peer closed {took:?} after unplugging");
}
