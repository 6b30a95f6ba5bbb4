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

use std::time::{Duration, Instant};

use altsock::{CloseReason, ConnId, Cx, Engine, Hold, Message, Reply, Request, Router};
use tls_support::{TestCert, TlsClient};
use util::{netns, Log};

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

#[test]
fn a_silent_tls_peer_is_closed_by_probes_and_the_user_timeout() {
    if std::env::var_os(INNER).is_some() {
        return inside_private_namespace();
    }
    netns::rerun_in_private_namespace(
        INNER,
        TEST,
        "TLS silent peer test skipped: unshare -n is not permitted",
        "TLS silent peer:",
    );
}

fn inside_private_namespace() {
    netns::loopback_up();
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
    netns::unplug();
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
