//! A silent peer (no FIN, no RST: unplugged) is closed within 35 s with the
//! engine's DEFAULT settings: kernel TCP keepalive (a probe after 20 s of
//! silence, the next 5 s later) and a 10 s `TCP_USER_TIMEOUT`. Two held
//! streams are unplugged together: one stays idle (the kernel's probes find
//! it dead, about 25 s), and one is written to 22 s in, just before that,
//! which turns probing off and leaves the user timeout on the write to decide
//! (about 32 s; the worst case is 35 s). Both times are measured and printed.
//!
//! Loopback always answers, so the test "unplugs" it: it re-runs itself in a
//! private network namespace (`unshare -n`, which needs `CAP_SYS_ADMIN`) and,
//! once the streams are open, routes 127.0.0.1 into a blackhole there (see
//! `util::netns::unplug`). The namespace dies with the process, so nothing
//! outside it is touched. Where `unshare -n` is not permitted the test says so and passes,
//! unless `ALTSOCK_REQUIRE_NETNS=1` is set (`scripts/test` sets it as root).
//! It takes about 35 s, waiting on the kernel's real timers.

mod util;

use std::time::{Duration, Instant};

use altsock::{CloseReason, ConnId, Cx, Engine, Hold, Message, Reply, Request, Router};
use util::{netns, spawn, Log};

const INNER: &str = "ALTSOCK_SILENT_PEER_INNER";
const TEST: &str = "silent_peer_is_closed_within_35s_by_default";

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
fn silent_peer_is_closed_within_35s_by_default() {
    if std::env::var_os(INNER).is_some() {
        return inside_private_namespace();
    }
    netns::rerun_in_private_namespace(
        INNER,
        TEST,
        "silent peer test skipped: unshare -n is not permitted (needs CAP_SYS_ADMIN)",
        "silent peer closed",
    );
}

/// Detection must happen within this long after the network dies.
const BOUND: Duration = Duration::from_secs(35);
/// When the written-to stream gets its push after unplugging: shortly before
/// the idle stream's second probe would find it dead.
const PUSH_AT: Duration = Duration::from_secs(22);

fn inside_private_namespace() {
    netns::loopback_up();
    let log = Log::default();
    // The defaults, as `altsock serve` runs with no flags.
    let server = spawn(Engine::builder(), Sse { log: log.clone() });
    let mut idle = server.connect();
    let mut written = server.connect();
    for client in [&mut idle, &mut written] {
        client.send(b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n");
        client.read_through("\r\n\r\n");
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
    // In the order sent: each client read its answer before the next asked.
    let conns = requests();
    assert_eq!(conns.len(), 2);
    netns::unplug();
    let unplugged = Instant::now();
    let closed_after = |conn: ConnId| {
        log.all().iter().find_map(|e| match e {
            Ev::Closed(c, r) if *c == conn => Some(*r),
            _ => None,
        })
    };
    let mut pushed = false;
    let mut took = [None, None];
    while took.iter().any(Option::is_none) {
        let now = unplugged.elapsed();
        assert!(
            now < BOUND + Duration::from_secs(20),
            "still open after {now:?}: {took:?}"
        );
        if !pushed && now >= PUSH_AT {
            let receipt = server
                .handle
                .push(conns[1], Message::data("after the network died"));
            assert!(
                receipt.wait().is_ok(),
                "the written-to stream closed before {PUSH_AT:?}"
            );
            pushed = true;
        }
        for (i, conn) in conns.iter().enumerate() {
            if took[i].is_none() {
                took[i] = closed_after(*conn).map(|reason| (reason, unplugged.elapsed()));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let [(idle_reason, idle_took), (written_reason, written_took)] = took.map(Option::unwrap);
    eprintln!(
        "silent peer closed {idle_took:?} after unplugging (idle stream; kernel keepalive probes)"
    );
    eprintln!(
        "silent peer closed {written_took:?} after unplugging (stream written to {PUSH_AT:?} in; user timeout)"
    );
    assert_eq!(idle_reason, CloseReason::PeerReset);
    assert_eq!(written_reason, CloseReason::PeerReset);
    // Not before the first probe (20 s of silence) was sent and went
    // unanswered; and within the bound.
    assert!(
        idle_took >= Duration::from_secs(19),
        "idle closed after only {idle_took:?}"
    );
    assert!(idle_took <= BOUND, "idle closed after {idle_took:?}");
    // Not before the push had gone unacknowledged for the user timeout.
    assert!(
        written_took >= PUSH_AT + Duration::from_secs(9),
        "{written_took:?}"
    );
    assert!(
        written_took <= BOUND,
        "written-to closed after {written_took:?}"
    );
    assert_eq!(server.handle.metrics().closed_by(CloseReason::PeerReset), 2);
    drop((idle, written));
}
