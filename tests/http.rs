//! HTTP/1.1 over real sockets: keep-alive, pipelining answered in order (also
//! behind a deferred answer), HTTP/1.0 closing by default, `Content-Length`
//! and chunked bodies, `Expect: 100-continue`, `HEAD`, a request split at
//! every byte position, and the idle timeout of kept-alive connections.

mod util;

use std::time::{Duration, Instant};

use altsock::{CloseReason, ConnId, Cx, Engine, Reply, Request, Response, Router};
use util::{spawn, Client, Log, TestServer};

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Request(ConnId, String),
    Closed(ConnId, CloseReason),
}

/// `/echo` answers with what it got; `/defer` defers; `/empty` answers `204`.
struct Echo {
    log: Log<Ev>,
}

impl Router for Echo {
    type Msg = ();

    fn request(&mut self, req: Request, _cx: &mut Cx<'_, ()>) -> Reply {
        self.log.push(Ev::Request(req.conn, req.target.clone()));
        match req.path() {
            "/echo" => Reply::Respond(Response::text(
                200,
                format!(
                    "{} {} conn={} body={}",
                    req.method,
                    req.target,
                    req.conn,
                    String::from_utf8_lossy(&req.body)
                ),
            )),
            "/defer" => Reply::Defer,
            "/empty" => Reply::Respond(Response::new(204)),
            _ => Reply::Respond(Response::text(404, "not found")),
        }
    }

    fn closed(&mut self, conn: ConnId, reason: CloseReason, _cx: &mut Cx<'_, ()>) {
        self.log.push(Ev::Closed(conn, reason));
    }
}

fn start(builder: altsock::Builder) -> (TestServer<()>, Log<Ev>) {
    let log = Log::default();
    let server = spawn(builder, Echo { log: log.clone() });
    (server, log)
}

fn echo_start() -> (TestServer<()>, Log<Ev>) {
    start(Engine::builder())
}

/// The exact bytes of an `/echo` answer with `body`.
fn echo_bytes(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn conn_of(log: &Log<Ev>, target: &str) -> ConnId {
    log.wait_for(target, |e| match e {
        Ev::Request(c, t) if t == target => Some(*c),
        _ => None,
    })
}

fn closed_reason(log: &Log<Ev>, conn: ConnId) -> CloseReason {
    log.wait_for("closed", |e| match e {
        Ev::Closed(c, r) if *c == conn => Some(*r),
        _ => None,
    })
}

#[test]
fn keep_alive_serves_requests_one_after_another_on_one_connection() {
    let (server, log) = echo_start();
    let mut client = server.connect();
    for i in 0..3 {
        client.send(format!("GET /echo?n={i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let conn = conn_of(&log, &format!("/echo?n={i}"));
        let expected = echo_bytes(&format!("GET /echo?n={i} conn={conn} body="));
        assert_eq!(client.read_exact_n(expected.len()), expected.as_bytes());
    }
    let conns: Vec<ConnId> = log
        .all()
        .iter()
        .filter_map(|e| match e {
            Ev::Request(c, _) => Some(*c),
            _ => None,
        })
        .collect();
    assert_eq!(conns.len(), 3);
    assert!(conns.iter().all(|c| *c == conns[0]), "{conns:?}");
    assert_eq!(server.handle.metrics().accepted, 1);
    assert_eq!(server.handle.metrics().requests, 3);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (server, _log) = echo_start();
    let mut client = server.connect();
    let mut burst = String::new();
    for i in 0..5 {
        burst.push_str(&format!(
            "POST /echo?n={i} HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nb{i}"
        ));
    }
    burst.push_str("GET /empty HTTP/1.1\r\nHost: t\r\n\r\n");
    burst.push_str("GET /echo?last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    client.send(burst.as_bytes());
    for i in 0..5 {
        let resp = client.read_response();
        assert_eq!(resp.status, 200);
        assert!(
            resp.text().starts_with(&format!("POST /echo?n={i} "))
                && resp.text().ends_with(&format!("body=b{i}")),
            "{i}: {}",
            resp.text()
        );
    }
    assert_eq!(
        client.read_through("\r\n\r\n"),
        "HTTP/1.1 204 No Content\r\n\r\n"
    );
    let last = client.read_response();
    assert!(
        last.text().starts_with("GET /echo?last "),
        "{}",
        last.text()
    );
    assert_eq!(last.header("connection"), Some("close"));
    assert_eq!(client.read_to_clean_close(), "");
}

#[test]
fn pipelined_requests_wait_behind_a_deferred_answer() {
    let (server, log) = echo_start();
    let mut client = server.connect();
    client.send(
        b"GET /defer HTTP/1.1\r\nHost: t\r\n\r\nGET /echo?second HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let conn = conn_of(&log, "/defer");
    // Nothing is answered, and the second request is not dispatched, meanwhile.
    assert!(client.read_for(Duration::from_millis(100)).is_empty());
    assert!(!log
        .all()
        .contains(&Ev::Request(conn, "/echo?second".into())));
    let handle = server.handle.clone();
    let answered =
        std::thread::spawn(move || handle.respond(conn, Response::text(200, "deferred")).wait())
            .join()
            .expect("thread");
    assert_eq!(answered, Ok(()));
    assert_eq!(client.read_response().text(), "deferred");
    let second = client.read_response();
    assert_eq!(second.text(), format!("GET /echo?second conn={conn} body="));
    // A deferred request is answered once.
    assert_eq!(
        server.handle.respond(conn, Response::new(200)).wait(),
        Err(altsock::Gone)
    );
}

#[test]
fn http10_closes_by_default() {
    let (server, log) = echo_start();
    let mut client = server.connect();
    client.send(b"GET /echo HTTP/1.0\r\n\r\n");
    let conn = conn_of(&log, "/echo");
    let body = format!("GET /echo conn={conn} body=");
    let expected = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(client.read_to_clean_close(), expected);
    // Our FIN ends the server's linger at once.
    drop(client);
    assert_eq!(closed_reason(&log, conn), CloseReason::Done);
}

#[test]
fn http10_keep_alive_keeps_the_connection() {
    let (server, log) = echo_start();
    let mut client = server.connect();
    for i in 0..2 {
        client.send(format!("GET /echo?{i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").as_bytes());
        let resp = client.read_response();
        assert_eq!(resp.status, 200);
        // HTTP/1.0 clients keep the connection only if the answer says so.
        assert_eq!(resp.header("connection"), Some("keep-alive"), "{resp:?}");
    }
    let a = conn_of(&log, "/echo?0");
    let b = conn_of(&log, "/echo?1");
    assert_eq!(a, b);
}

#[test]
fn connection_close_is_honoured() {
    let (server, log) = echo_start();
    let mut client = server.connect();
    client.send(b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let text = client.read_to_clean_close();
    assert!(text.contains("\r\nConnection: close\r\n\r\n"), "{text}");
    drop(client);
    let conn = conn_of(&log, "/echo");
    assert_eq!(closed_reason(&log, conn), CloseReason::Done);
}

#[test]
fn content_length_and_chunked_bodies() {
    let (server, _log) = echo_start();
    let mut client = server.connect();
    client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 13\r\n\r\nhello, world!");
    assert!(client
        .read_response()
        .text()
        .ends_with("body=hello, world!"));
    // A chunked body in pieces, with an extension and a trailer.
    let parts: [&[u8]; 5] = [
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"4;note=x\r\nabcd\r",
        b"\n3\r\nefg\r\n",
        b"0\r\nX-Trailer: 1\r\n",
        b"\r\n",
    ];
    for part in parts {
        client.send(part);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(client.read_response().text().ends_with("body=abcdefg"));
    // An empty chunked body.
    client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert!(client.read_response().text().ends_with("body="));
}

#[test]
fn expect_100_continue() {
    let (server, _log) = echo_start();
    let mut client = server.connect();
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    assert_eq!(
        client.read_exact_n(25),
        b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()
    );
    client.send(b"da");
    std::thread::sleep(Duration::from_millis(20));
    client.send(b"ta");
    let resp = client.read_response();
    assert_eq!(resp.status, 200);
    assert!(resp.text().ends_with("body=data"), "{}", resp.text());
    // With the body already sent, no interim answer.
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    );
    let resp = client.read_response();
    assert_eq!(resp.status, 200);
    assert!(resp.text().ends_with("body=ok"));
    // Over the limit: a final 413, never a 100.
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 99999999\r\n\r\n",
    );
    let text = client.read_to_clean_close();
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
}

#[test]
fn head_gets_the_length_but_no_body() {
    let (server, log) = echo_start();
    let mut client = server.connect();
    client.send(b"HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    let conn = conn_of(&log, "/echo");
    let body = format!("HEAD /echo conn={conn} body=");
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    assert_eq!(client.read_through("\r\n\r\n"), head);
    // The next answer follows at once: no body bytes were sent.
    client.send(b"GET /echo?after HTTP/1.1\r\nHost: t\r\n\r\n");
    let expected = echo_bytes(&format!("GET /echo?after conn={conn} body="));
    assert_eq!(client.read_exact_n(expected.len()), expected.as_bytes());
}

#[test]
fn status_204_has_no_length_and_keeps_the_connection() {
    let (server, _log) = echo_start();
    let mut client = server.connect();
    client.send(b"GET /empty HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        client.read_through("\r\n\r\n"),
        "HTTP/1.1 204 No Content\r\n\r\n"
    );
    client.send(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.read_response().status, 404);
}

#[test]
fn a_request_split_at_every_byte_position() {
    let (server, _log) = echo_start();
    let raw: &[u8] = b"POST /echo?split HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
    for split in 1..raw.len() {
        let mut client = server.connect();
        client.stream.set_nodelay(true).expect("nodelay");
        client.send(&raw[..split]);
        std::thread::sleep(Duration::from_millis(2));
        client.send(&raw[split..]);
        let resp = client.read_response();
        assert_eq!(resp.status, 200, "split at {split}");
        assert!(
            resp.text().starts_with("POST /echo?split ") && resp.text().ends_with("body=hello"),
            "split at {split}: {}",
            resp.text()
        );
    }
}

#[test]
fn a_request_sent_byte_by_byte() {
    let (server, _log) = echo_start();
    let raw: &[u8] = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let mut client = server.connect();
    client.stream.set_nodelay(true).expect("nodelay");
    for byte in raw {
        client.send(std::slice::from_ref(byte));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(client.read_response().text().ends_with("body=abc"));
}

#[test]
fn idle_kept_alive_connection_times_out() {
    let (server, log) = start(
        Engine::builder()
            .poll_interval(Duration::from_millis(10))
            .idle_timeout(Duration::from_millis(150)),
    );
    let mut client = server.connect();
    client.send(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    client.read_response();
    let answered = Instant::now();
    assert_eq!(client.read_to_clean_close(), "");
    let waited = answered.elapsed();
    // At the idle timeout, not at once; the upper bound only catches "never".
    assert!(
        waited >= Duration::from_millis(140) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let conn = conn_of(&log, "/echo");
    assert_eq!(closed_reason(&log, conn), CloseReason::IdleTimeout);
    assert_eq!(
        server.handle.metrics().closed_by(CloseReason::IdleTimeout),
        1
    );
}

#[test]
fn request_exposes_peer_query_and_headers() {
    struct Inspect;
    impl Router for Inspect {
        type Msg = ();
        fn request(&mut self, req: Request, _cx: &mut Cx<'_, ()>) -> Reply {
            let body = format!(
                "{:?} {:?} {:?} {} {}",
                req.query_param("me"),
                req.header("x-thing"),
                req.param("f"),
                req.accepts("text/event-stream"),
                req.peer.map(|p| p.ip().to_string()).unwrap_or_default()
            );
            Reply::Respond(Response::text(200, body))
        }
    }
    let server = spawn(Engine::builder(), Inspect);
    let resp = util::request(
        server.addr,
        "POST /x?me=a%20b HTTP/1.1\r\nHost: t\r\nX-Thing:  v \r\nAccept: text/html, text/event-stream;q=1\r\nContent-Length: 5\r\n\r\nf=1+2",
    );
    assert_eq!(
        resp.text(),
        "Some(\"a b\") Some(\"v\") Some(\"1 2\") true 127.0.0.1"
    );
}

#[test]
fn many_clients_at_once() {
    let (server, _log) = echo_start();
    let mut clients: Vec<Client> = (0..50).map(|_| server.connect()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(format!("GET /echo?{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let text = c.read_response().text();
        assert!(text.starts_with(&format!("GET /echo?{i} ")), "{text}");
    }
    util::wait_for("all open", || server.handle.metrics().open == 50);
}

#[test]
fn a_slow_download_is_not_idle() {
    struct Big;
    impl Router for Big {
        type Msg = ();
        fn request(&mut self, _req: Request, _cx: &mut Cx<'_, ()>) -> Reply {
            Reply::Respond(Response::new(200).body(vec![b'z'; 8 * 1024 * 1024]))
        }
    }
    let server = spawn(
        Engine::builder()
            .poll_interval(Duration::from_millis(10))
            .idle_timeout(Duration::from_millis(100))
            .max_pending_output(16 * 1024 * 1024),
        Big,
    );
    let mut client = Client::connect_small_rcvbuf(server.addr, 64 * 1024);
    client.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = client.read_through("\r\n\r\n");
    assert!(head.contains("Content-Length: 8388608"), "{head}");
    // Read slowly: well past the idle timeout before the answer is complete.
    let started = Instant::now();
    let mut got = client.buf.len();
    client.buf.clear();
    let mut chunk = vec![0u8; 64 * 1024];
    while got < 8 * 1024 * 1024 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "stalled at {got}"
        );
        match std::io::Read::read(&mut client.stream, &mut chunk) {
            Ok(0) => panic!("closed after {got} bytes, {:?}", started.elapsed()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e} after {got} bytes, {:?}", started.elapsed()),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(started.elapsed() > Duration::from_millis(200));
}

#[test]
fn defaults_are_the_issue_s() {
    let c = altsock::Config::default();
    assert_eq!(c.listen, "127.0.0.1:8080".parse().expect("addr"));
    assert_eq!(c.poll_interval, Duration::from_secs(4));
    assert_eq!(c.keepalive_interval, Duration::from_secs(60));
    assert_eq!(c.header_timeout, Duration::from_secs(10));
    assert_eq!(c.limits.max_head, 16 * 1024);
    assert_eq!(c.limits.max_headers, 64);
    assert_eq!(c.limits.max_body, 1024 * 1024);
    assert_eq!(c.max_pending_output, 1024 * 1024);
    assert!(c.tcp_user_timeout.is_some());
}

#[test]
fn zero_intervals_and_bad_addresses_are_refused() {
    let zero = Engine::builder()
        .listen("127.0.0.1:0")
        .poll_interval(Duration::ZERO)
        .build(Echo {
            log: Log::default(),
        });
    assert!(zero.is_err());
    let zero = Engine::builder()
        .listen("127.0.0.1:0")
        .keepalive_interval(Duration::ZERO)
        .build(Echo {
            log: Log::default(),
        });
    assert!(zero.is_err());
    let bad = Engine::builder().listen("not an address").build(Echo {
        log: Log::default(),
    });
    assert!(bad.is_err());
}

#[test]
fn durations_accept_ms_s_and_m() {
    use altsock::parse_duration;
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("4s"), Ok(Duration::from_secs(4)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert!(parse_duration("4 parsecs").is_err());
}

#[test]
fn a_thousand_pipelined_requests_in_one_write() {
    let (server, _log) = echo_start();
    let mut client = server.connect();
    let mut burst = String::new();
    for i in 0..1000 {
        burst.push_str(&format!("GET /echo?{i} HTTP/1.1\r\nHost: t\r\n\r\n"));
    }
    client.send(burst.as_bytes());
    for i in 0..1000 {
        let text = client.read_response().text();
        assert!(text.starts_with(&format!("GET /echo?{i} ")), "{i}: {text}");
    }
    assert_eq!(server.handle.metrics().requests, 1000);
}

#[test]
fn nothing_is_answered_after_connection_close() {
    let (server, log) = echo_start();
    let mut client = server.connect();
    client.send(
        b"GET /echo?1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /echo?2 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let text = client.read_to_clean_close();
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 1, "{text}");
    assert!(text.ends_with("body="), "{text}");
    let requests = log
        .all()
        .iter()
        .filter(|e| matches!(e, Ev::Request(..)))
        .count();
    assert_eq!(requests, 1);
}
