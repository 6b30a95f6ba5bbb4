//! Parse-ahead behind deferred answers, over real sockets: pipelined requests
//! are dispatched while earlier ones are deferred, and their answers are
//! written strictly in request order however they complete (reversed through
//! the `Handle`, mixed with immediate answers, a `Connection: close` in the
//! middle, a parse error, a hold); the depth bound stops dispatching; a
//! client that leaves mid-pipeline drops what is owed.

mod util;

use std::time::Duration;

use altsock::{CloseReason, ConnId, Cx, Engine, Hold, Reply, Request, RequestId, Response, Router};
use util::{spawn, Client, Log, TestServer};

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    /// A request was dispatched: its id and target.
    Request(RequestId, String),
    Closed(ConnId, CloseReason),
}

/// `/d?...` defers letting later requests through (its effect counts as
/// done); `/strict?...` defers holding them back; `/sse` holds a stream;
/// `/big` answers 64 KiB now; anything else answers its target now.
struct Deferrer {
    log: Log<Ev>,
}

impl Router for Deferrer {
    type Msg = ();

    fn request(&mut self, req: Request, _cx: &mut Cx<'_, ()>) -> Reply {
        self.log.push(Ev::Request(req.id(), req.target.clone()));
        match req.path() {
            "/d" => Reply::DeferPipelined,
            "/strict" => Reply::Defer,
            "/sse" => Reply::Hold(Hold::sse()),
            "/big" => Reply::Respond(Response::text(200, "b".repeat(64 * 1024))),
            _ => Reply::Respond(Response::text(200, format!("now {}", req.target))),
        }
    }

    fn closed(&mut self, conn: ConnId, reason: CloseReason, _cx: &mut Cx<'_, ()>) {
        self.log.push(Ev::Closed(conn, reason));
    }
}

fn start(builder: altsock::Builder) -> (TestServer<()>, Log<Ev>) {
    let log = Log::default();
    let server = spawn(builder, Deferrer { log: log.clone() });
    (server, log)
}

fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n")
}

/// The ids of the first `n` dispatched requests, in dispatch order.
fn dispatched(log: &Log<Ev>, n: usize) -> Vec<(RequestId, String)> {
    log.wait_for(&format!("{n} requests"), |_| {
        let all = requests(log);
        (all.len() >= n).then(|| all[..n].to_vec())
    })
}

fn requests(log: &Log<Ev>) -> Vec<(RequestId, String)> {
    log.all()
        .into_iter()
        .filter_map(|e| match e {
            Ev::Request(id, target) => Some((id, target)),
            Ev::Closed(..) => None,
        })
        .collect()
}

/// Waits until the engine has carried out everything queued before this call
/// (it runs commands in order, on its one thread).
fn barrier(server: &TestServer<()>) {
    let none: Vec<ConnId> = Vec::new();
    assert_eq!(server.handle.broadcast(none, Default::default()).wait(), 0);
}

/// Waits for `n` requests to be dispatched, lets the engine finish its pass
/// (`barrier`) and checks that no further one was; `why` says what that would
/// mean.
fn dispatched_and_no_more(
    server: &TestServer<()>,
    log: &Log<Ev>,
    n: usize,
    why: &str,
) -> Vec<(RequestId, String)> {
    let ids = dispatched(log, n);
    barrier(server);
    assert_eq!(requests(log).len(), n, "{why}");
    ids
}

fn answer(server: &TestServer<()>, id: RequestId, text: String) {
    assert_eq!(
        server.handle.respond(id, Response::text(200, text)).wait(),
        Ok(())
    );
}

#[test]
fn answers_completed_in_reverse_are_written_in_request_order() {
    let (server, log) = start(Engine::builder());
    let mut client = server.connect();
    let n = 20;
    let burst: String = (0..n).map(|i| get(&format!("/d?n={i}"))).collect();
    client.send(burst.as_bytes());
    let ids = dispatched(&log, n);
    // Completed from another thread, last first.
    let handle = server.handle.clone();
    let completer = std::thread::spawn(move || {
        for (id, target) in ids.iter().rev() {
            let text = format!("done {target}");
            assert_eq!(
                handle.respond(*id, Response::text(200, text)).wait(),
                Ok(())
            );
        }
    });
    for i in 0..n {
        assert_eq!(client.read_response().text(), format!("done /d?n={i}"));
    }
    completer.join().expect("completer");
    // Each was answered once: a second answer to any of them is refused.
    let first = requests(&log)[0].0;
    assert_eq!(
        server.handle.respond(first, Response::new(200)).wait(),
        Err(altsock::Gone)
    );
    // And the connection is back to plain keep-alive.
    client.send(get("/x").as_bytes());
    assert_eq!(client.read_response().text(), "now /x");
}

#[test]
fn immediate_answers_wait_their_turn_behind_deferred_ones() {
    let (server, log) = start(Engine::builder());
    let mut client = server.connect();
    let burst = [get("/d?0"), get("/now?1"), get("/d?2"), get("/now?3")].concat();
    client.send(burst.as_bytes());
    let ids = dispatched(&log, 4);
    barrier(&server);
    assert!(client.read_for(Duration::from_millis(50)).is_empty());
    answer(&server, ids[2].0, "late 2".into());
    // Still nothing: request 0 is owed.
    assert!(client.read_for(Duration::from_millis(50)).is_empty());
    answer(&server, ids[0].0, "late 0".into());
    assert_eq!(client.read_response().text(), "late 0");
    assert_eq!(client.read_response().text(), "now /now?1");
    assert_eq!(client.read_response().text(), "late 2");
    assert_eq!(client.read_response().text(), "now /now?3");
}

#[test]
fn a_plain_deferral_holds_back_the_requests_behind_it_until_answered() {
    let (server, log) = start(Engine::builder());
    let mut client = server.connect();
    client.send(
        [get("/d?0"), get("/strict?1"), get("/now?2")]
            .concat()
            .as_bytes(),
    );
    let ids = dispatched_and_no_more(&server, &log, 2, "dispatched past a plain deferral");
    // Answered (though not yet written: request 0 is owed), request 1 no
    // longer holds back request 2.
    answer(&server, ids[1].0, "one".into());
    let all = dispatched(&log, 3);
    assert_eq!(all[2].1, "/now?2");
    assert!(client.read_for(Duration::from_millis(50)).is_empty());
    answer(&server, ids[0].0, "zero".into());
    assert_eq!(client.read_response().text(), "zero");
    assert_eq!(client.read_response().text(), "one");
    assert_eq!(client.read_response().text(), "now /now?2");
}

#[test]
fn answering_by_connection_takes_the_oldest_owed_request() {
    let (server, log) = start(Engine::builder());
    let mut client = server.connect();
    client.send([get("/d?0"), get("/d?1")].concat().as_bytes());
    let ids = dispatched(&log, 2);
    let conn = ids[0].0.conn;
    assert_eq!(
        server
            .handle
            .respond(ids[1].0, Response::text(200, "one"))
            .wait(),
        Ok(())
    );
    // The oldest owed is request 0.
    assert_eq!(
        server
            .handle
            .respond(conn, Response::text(200, "zero"))
            .wait(),
        Ok(())
    );
    assert_eq!(client.read_response().text(), "zero");
    assert_eq!(client.read_response().text(), "one");
    assert_eq!(
        server.handle.respond(conn, Response::new(200)).wait(),
        Err(altsock::Gone)
    );
}

#[test]
fn the_depth_bound_stops_dispatching_until_answers_are_written() {
    let (server, log) = start(Engine::builder().pipeline_depth(4));
    let mut client = server.connect();
    let n = 10;
    let burst: String = (0..n).map(|i| get(&format!("/d?n={i}"))).collect();
    client.send(burst.as_bytes());
    dispatched_and_no_more(&server, &log, 4, "dispatched past the bound");
    for i in 0..n {
        let (id, target) = dispatched(&log, i + 1)[i].clone();
        assert_eq!(target, format!("/d?n={i}"));
        // Never more than four owed at once.
        assert!(
            requests(&log).len() <= i + 4,
            "{} dispatched",
            requests(&log).len()
        );
        answer(&server, id, format!("done {i}"));
        assert_eq!(client.read_response().text(), format!("done {i}"));
    }
}

/// Many large answers ready behind a deferred one are written as a slow
/// reader takes them, not all at once into a pending buffer past its cap
/// (which would close the connection as a slow consumer).
#[test]
fn ready_answers_are_paced_to_a_slow_reader() {
    let (server, log) = start(Engine::builder().max_pending_output(256 * 1024));
    let mut client = Client::connect_small_rcvbuf(server.addr, 4096);
    // 6.4 MiB of answers: more than the kernel's socket buffers hold.
    let n = 100;
    let burst: String = std::iter::once(get("/d?0"))
        .chain((1..=n).map(|i| get(&format!("/big?{i}"))))
        .collect();
    client.send(burst.as_bytes());
    let ids = dispatched(&log, n + 1);
    answer(&server, ids[0].0, "zero".into());
    assert_eq!(client.read_response().text(), "zero");
    for _ in 1..=n {
        let big = client.read_response();
        assert_eq!(big.status, 200);
        assert_eq!(big.body.len(), 64 * 1024);
    }
    client.send(get("/x").as_bytes());
    assert_eq!(client.read_response().text(), "now /x");
    assert!(!log.all().iter().any(|e| matches!(e, Ev::Closed(..))));
}

#[test]
fn connection_close_in_the_pipeline_ends_it() {
    let (server, log) = start(Engine::builder());
    let mut client = server.connect();
    let closing = "GET /now?1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    client.send(
        [get("/d?0"), closing.into(), get("/d?2")]
            .concat()
            .as_bytes(),
    );
    let ids = dispatched_and_no_more(&server, &log, 2, "a request after close was dispatched");
    answer(&server, ids[0].0, "zero".into());
    assert_eq!(client.read_response().text(), "zero");
    let last = client.read_response();
    assert_eq!(last.text(), "now /now?1");
    assert_eq!(last.header("connection"), Some("close"));
    assert_eq!(client.read_to_clean_close(), "");
}

#[test]
fn a_client_leaving_mid_pipeline_drops_what_is_owed() {
    let (server, log) = start(Engine::builder());
    let mut client = server.connect();
    client.send(
        [get("/d?0"), get("/now?1"), get("/d?2")]
            .concat()
            .as_bytes(),
    );
    let ids = dispatched(&log, 3);
    let conn = ids[0].0.conn;
    drop(client);
    let reason = log.wait_for("closed", |e| match e {
        Ev::Closed(c, r) if *c == conn => Some(*r),
        _ => None,
    });
    assert_eq!(reason, CloseReason::PeerClosed);
    for (id, _) in [&ids[0], &ids[2]] {
        assert_eq!(
            server.handle.respond(*id, Response::new(200)).wait(),
            Err(altsock::Gone)
        );
    }
    assert_eq!(server.handle.metrics().open, 0);
}

#[test]
fn a_parse_error_behind_deferred_answers_is_answered_in_its_turn() {
    let (server, log) = start(Engine::builder());
    let mut client = server.connect();
    client.send([get("/d?0"), "BAD\r\n\r\n".into()].concat().as_bytes());
    let ids = dispatched(&log, 1);
    barrier(&server);
    assert!(client.read_for(Duration::from_millis(50)).is_empty());
    answer(&server, ids[0].0, "zero".into());
    assert_eq!(client.read_response().text(), "zero");
    assert_eq!(client.read_response().status, 400);
    let conn = ids[0].0.conn;
    let reason = log.wait_for("closed", |e| match e {
        Ev::Closed(c, r) if *c == conn => Some(*r),
        _ => None,
    });
    assert_eq!(reason, CloseReason::BadRequest);
}

#[test]
fn a_stream_behind_a_deferred_answer_starts_in_its_turn_and_ends_the_pipeline() {
    let (server, log) = start(Engine::builder());
    let mut client = server.connect();
    client.send(
        [get("/d?0"), get("/sse"), get("/now?2")]
            .concat()
            .as_bytes(),
    );
    let ids = dispatched_and_no_more(&server, &log, 2, "a request after a stream was dispatched");
    answer(&server, ids[0].0, "zero".into());
    assert_eq!(client.read_response().text(), "zero");
    let head = client.read_through("\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
}

#[test]
fn a_deferred_request_turned_into_a_stream_drops_the_answers_behind_it() {
    let (server, log) = start(Engine::builder());
    let mut client = server.connect();
    client.send([get("/d?0"), get("/d?1")].concat().as_bytes());
    let ids = dispatched(&log, 2);
    assert_eq!(server.handle.hold(ids[0].0, Hold::sse()).wait(), Ok(()));
    let head = client.read_through("\r\n\r\n");
    assert!(head.contains("text/event-stream"), "{head}");
    assert_eq!(
        server.handle.respond(ids[1].0, Response::new(200)).wait(),
        Err(altsock::Gone)
    );
}

#[test]
fn http10_keep_alive_answers_keep_their_own_flags_when_pipelined() {
    let (server, log) = start(Engine::builder());
    let mut client = server.connect();
    let keep = "GET /d?0 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let plain = "GET /now?1 HTTP/1.1\r\nHost: t\r\n\r\n";
    let last = "HEAD /now?2 HTTP/1.0\r\n\r\n";
    client.send([keep, plain, last].concat().as_bytes());
    let ids = dispatched(&log, 3);
    answer(&server, ids[0].0, "zero".into());
    let first = client.read_response();
    assert_eq!(first.text(), "zero");
    assert_eq!(first.header("connection"), Some("keep-alive"));
    let second = client.read_response();
    assert_eq!(second.text(), "now /now?1");
    assert_eq!(second.header("connection"), None);
    // HTTP/1.0 without keep-alive, a HEAD: the head only, then close.
    let (rest, _) = client.read_to_end();
    let rest = String::from_utf8_lossy(&rest).to_string();
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
    assert!(rest.contains("Connection: close"), "{rest}");
    assert!(rest.ends_with("\r\n\r\n"), "HEAD got a body: {rest}");
}

/// Not a timing test: many answers completed from a worker thread in bursts,
/// as a database thread's group commit does, all arrive in order.
#[test]
fn a_long_pipeline_completed_in_batches_arrives_whole_and_in_order() {
    let (server, log) = start(Engine::builder().pipeline_depth(16));
    let mut client: Client = server.connect();
    let n = 500;
    let burst: String = (0..n).map(|i| get(&format!("/d?n={i}"))).collect();
    let mut writer = client.stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        std::io::Write::write_all(&mut writer, burst.as_bytes()).expect("send");
    });
    let handle = server.handle.clone();
    let worker_log = log.clone();
    let worker = std::thread::spawn(move || {
        let mut answered = 0;
        while answered < n {
            let all = requests(&worker_log);
            if all.len() == answered {
                std::thread::yield_now();
                continue;
            }
            // Answer this batch newest first.
            for (id, target) in all[answered..].iter().rev() {
                let text = format!("done {target}");
                assert_eq!(
                    handle.respond(*id, Response::text(200, text)).wait(),
                    Ok(())
                );
            }
            answered = all.len();
        }
    });
    for i in 0..n {
        assert_eq!(client.read_response().text(), format!("done /d?n={i}"));
    }
    sender.join().expect("sender");
    worker.join().expect("worker");
}
