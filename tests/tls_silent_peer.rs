//! A silent peer (unplugged: no FIN, no RST, no `close_notify`) on a TLS
//! connection is closed by the same kernel machinery as on a plain one:
//! keepalive probes for an idle held stream, `TCP_USER_TIMEOUT` for one that
//! is written to. Short timings (1 s probes, 2 s user timeout) keep it fast;
//! `tests/silent_peer.rs` checks the defaults on plain HTTP.
//!
//! Like that test it re-runs itself in a private network namespace
//! (`unshare -n`) and routes 127.0.0.1 into a blackhole there; where that is
//! not permitted it says so and passes, unless `ALTSOCK_REQUIRE_NETNS=1`.

mod tls_support;
mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use altsock::{CloseReason, ConnId, Cx, Engine, Hold, Message, Reply, Request, Router};
use tls_support::{TestCert, TlsClient};
use util::Log;

const INNER: &str = "ALTSOCK_TLS_SILENT_PEER_INNER";
const TEST: &str = "a_silent_tls_peer_is_closed_by_probes_and_the_user_timeout";

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
fn a_silent_tls_peer_is_closed_by_probes_and_the_user_timeout() {
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
        eprintln!("TLS silent peer test skipped: unshare -n is not permitted");
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
    for line in text.lines().filter(|l| l.starts_with("TLS silent peer:")) {
        eprintln!("{line}");
    }
}

fn inside_private_namespace() {
    run("ip", &["link", "set", "lo", "up"]);
    let cert = TestCert::new("silent");
    let log = Log::default();
    let engine = Engine::builder()
        .listen("127.0.0.1:0")
        .listen_tls("127.0.0.1:0", cert.server_config())
        .poll_interval(Duration::from_millis(20))
        .keepalive_interval(Duration::from_secs(60))
        .tcp_keepalive_idle(Some(Duration::from_secs(1)))
        .tcp_keepalive_interval(Duration::from_secs(1))
        .tcp_user_timeout(Some(Duration::from_secs(2)))
        .build(Sse { log: log.clone() })
        .expect("engine");
    let addr = engine.tls_local_addr().expect("tls");
    let handle = engine.handle();
    let thread = std::thread::spawn(move || engine.run());
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut client = TlsClient::connect(addr, cert.client_config());
        client.send(b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n");
        client.read_through("\r\n\r\n");
        clients.push(client);
    }
    let requests = || -> Vec<ConnId> {
        log.all()
            .iter()
            .filter_map(|e| match e {
                Ev::Request(c) => Some(*c),
                _ => None,
            })
            .collect()
    };
    util::wait_for("both requests", || requests().len() == 2);
    let conns = requests();
    unplug();
    let unplugged = Instant::now();
    // Written to at once: the user timeout decides (2 s unacknowledged).
    assert_eq!(
        handle.push(conns[1], Message::data("into the void")).wait(),
        Ok(())
    );
    let closed = |conn: ConnId| {
        log.all().iter().find_map(|e| match e {
            Ev::Closed(c, r) if *c == conn => Some(*r),
            _ => None,
        })
    };
    let mut took = [None, None];
    while took.iter().any(Option::is_none) {
        assert!(
            unplugged.elapsed() < Duration::from_secs(30),
            "still open: {took:?}"
        );
        for (i, conn) in conns.iter().enumerate() {
            if took[i].is_none() {
                took[i] = closed(*conn).map(|r| (r, unplugged.elapsed()));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let [(idle_reason, idle_took), (written_reason, written_took)] = took.map(Option::unwrap);
    eprintln!(
        "TLS silent peer: idle closed after {idle_took:?}, written-to after {written_took:?}"
    );
    assert_eq!(idle_reason, CloseReason::PeerReset);
    assert_eq!(written_reason, CloseReason::PeerReset);
    assert!(idle_took >= Duration::from_secs(1), "{idle_took:?}");
    assert!(
        written_took >= Duration::from_millis(1900),
        "{written_took:?}"
    );
    handle.shutdown();
    drop(clients);
    thread.join().expect("engine").expect("run");
}

/// Makes every packet to 127.0.0.1 vanish (see `tests/silent_peer.rs`).
fn unplug() {
    run(
        "ip",
        &["route", "add", "blackhole", "127.0.0.1/32", "table", "100"],
    );
    run("ip", &["rule", "add", "prio", "10", "lookup", "local"]);
    run("ip", &["rule", "del", "prio", "0"]);
    run(
        "ip",
        &[
            "rule",
            "add",
            "prio",
            "5",
            "to",
            "127.0.0.1",
            "lookup",
            "100",
        ],
    );
}
