//! Held connections over real sockets: every framing with its exact head,
//! messages, keepalive and end; keepalives at the configured interval; death
//! detection (FIN, reset, slow consumer); deferred replies and pushes from
//! other threads through the `Handle`, including pushes to gone connections
//! and to a slot reused by a newer connection; `Handle::send`; broadcast;
//! metrics and their Prometheus text; graceful shutdown.

mod util;

use std::time::{Duration, Instant};

use altsock::{
    Builder, CloseReason, ConnId, Cx, Engine, Framing, Gone, Hold, Message, Reply, Request,
    Response, Router,
};
use util::{spawn, wait_for, Client, End, Log, TestServer};

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Request(ConnId, String),
    Closed(ConnId, CloseReason),
    Released(ConnId),
    Message(String),
    Pushed(ConnId, Result<(), Gone>),
    Broadcast(usize),
    Tick,
    Inspected { open: bool, held: u64 },
}

/// What other threads send to the router.
enum Cmd {
    Note(String),
    Push(ConnId, Message),
    Broadcast(Vec<ConnId>, Message),
    Close(ConnId),
    /// Logs `Cx::is_open` and `Cx::metrics`, then sends a note through `Cx::handle`.
    Inspect(ConnId),
}

/// Holds `/chunked`, `/sse`, `/multipart`, `/raw`, `/longpoll?t=MS`; defers `/defer`.
struct Holder {
    log: Log<Ev>,
}

impl Router for Holder {
    type Msg = Cmd;

    fn request(&mut self, req: Request, _cx: &mut Cx<'_, Cmd>) -> Reply {
        self.log.push(Ev::Request(req.conn, req.target.clone()));
        let hold = match req.path() {
            "/chunked" => Hold::new(Framing::Chunked),
            "/sse" => Hold::sse(),
            "/multipart" => Hold::new(Framing::Multipart),
            "/jpeg" => Hold::new(Framing::Multipart).with_content_type("image/jpeg"),
            "/raw" => Hold::new(Framing::Raw),
            "/longpoll" | "/longpoll-cors" => {
                let mut hold = Hold::new(Framing::LongPoll);
                if req.path() == "/longpoll-cors" {
                    hold = hold.with_header("Access-Control-Allow-Origin", "*");
                }
                if let Some(ms) = req.query_param("t").and_then(|t| t.parse().ok()) {
                    hold = hold.with_timeout(Duration::from_millis(ms));
                }
                hold
            }
            "/longpoll-now" => Hold::new(Framing::LongPoll)
                .with_initial(Message::data("a").with_id("1"))
                .with_initial(Message::data("b").with_id("2")),
            "/sse-initial" => Hold::sse()
                .with_header("X-Room", "lobby")
                .with_initial(Message::data("welcome").with_event("hello")),
            "/defer" => return Reply::Defer,
            _ => return Reply::Respond(Response::text(200, "plain")),
        };
        Reply::Hold(hold)
    }

    fn closed(&mut self, conn: ConnId, reason: CloseReason, _cx: &mut Cx<'_, Cmd>) {
        self.log.push(Ev::Closed(conn, reason));
    }

    fn released(&mut self, conn: ConnId, _cx: &mut Cx<'_, Cmd>) {
        self.log.push(Ev::Released(conn));
    }

    fn tick(&mut self, _cx: &mut Cx<'_, Cmd>) {
        self.log.push(Ev::Tick);
    }

    fn message(&mut self, msg: Cmd, cx: &mut Cx<'_, Cmd>) {
        match msg {
            Cmd::Note(text) => self.log.push(Ev::Message(text)),
            Cmd::Push(conn, msg) => {
                let result = cx.push(conn, &msg);
                self.log.push(Ev::Pushed(conn, result));
            }
            Cmd::Broadcast(conns, msg) => {
                let n = cx.broadcast(&conns, &msg);
                self.log.push(Ev::Broadcast(n));
            }
            Cmd::Close(conn) => cx.close(conn),
            Cmd::Inspect(conn) => {
                let held = cx.metrics().held;
                self.log.push(Ev::Inspected {
                    open: cx.is_open(conn),
                    held,
                });
                assert!(cx.now() <= std::time::Instant::now());
                cx.handle().send(Cmd::Note("from the router".into()));
            }
        }
    }
}

/// Ticks every 5 ms; keepalives far away unless a test wants them.
fn builder() -> Builder {
    Engine::builder()
        .poll_interval(Duration::from_millis(5))
        .keepalive_interval(Duration::from_secs(60))
}

fn start(builder: Builder) -> (TestServer<Cmd>, Log<Ev>) {
    let log = Log::default();
    let server = spawn(builder, Holder { log: log.clone() });
    (server, log)
}

/// Opens `target` on a new connection; returns the client (head read) and its id.
fn open(server: &TestServer<Cmd>, log: &Log<Ev>, target: &str) -> (Client, ConnId, String) {
    open_with(server, log, target, "HTTP/1.1", "")
}

fn open_with(
    server: &TestServer<Cmd>,
    log: &Log<Ev>,
    target: &str,
    version: &str,
    extra: &str,
) -> (Client, ConnId, String) {
    let mut client = server.connect();
    let before = log.all().len();
    client.send(format!("GET {target} {version}\r\nHost: t\r\n{extra}\r\n").as_bytes());
    // The first request to `target` logged after this one was sent.
    let mut conn = None;
    wait_for(target, || {
        conn = log.all()[before..].iter().find_map(|e| match e {
            Ev::Request(c, t) if t == target => Some(*c),
            _ => None,
        });
        conn.is_some()
    });
    let conn = conn.expect("request logged");
    let head = if target.starts_with("/longpoll") || target == "/defer" {
        String::new()
    } else {
        client.read_through("\r\n\r\n")
    };
    (client, conn, head)
}

fn closed_reason(log: &Log<Ev>, conn: ConnId) -> CloseReason {
    log.wait_for("closed", |e| match e {
        Ev::Closed(c, r) if *c == conn => Some(*r),
        _ => None,
    })
}

fn head(content_type: &str, last: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\n{last}\r\n\r\n"
    )
}

/// The boundary a multipart stream's head names: `altsock-part-` and 16 hex digits.
fn boundary_in(head: &str) -> String {
    let start = head.find("boundary=").expect("a boundary") + "boundary=".len();
    let boundary = &head[start..start + head[start..].find("\r\n").expect("end")];
    let digits = boundary.strip_prefix("altsock-part-").expect("the prefix");
    assert!(
        digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_hexdigit()),
        "{boundary}"
    );
    boundary.to_string()
}

#[test]
fn chunked_stream() {
    let (server, log) = start(builder());
    let (mut client, conn, head_text) = open(&server, &log, "/chunked");
    assert_eq!(
        head_text,
        head("text/plain; charset=utf-8", "Transfer-Encoding: chunked")
    );
    assert_eq!(
        server.handle.push(conn, Message::data("hello")).wait(),
        Ok(())
    );
    assert_eq!(client.read_exact_n(10), b"5\r\nhello\r\n");
    server
        .handle
        .push(conn, Message::data(vec![b'x'; 300]))
        .wait()
        .expect("pushed");
    let mut expected = b"12c\r\n".to_vec();
    expected.extend_from_slice(&[b'x'; 300]);
    expected.extend_from_slice(b"\r\n");
    assert_eq!(client.read_exact_n(expected.len()), expected);
    server.handle.close(conn);
    assert_eq!(client.read_to_clean_close(), "0\r\n\r\n");
    drop(client);
    assert_eq!(closed_reason(&log, conn), CloseReason::Closed);
}

#[test]
fn chunked_stream_to_http10_is_close_delimited() {
    let (server, log) = start(builder().keepalive_interval(Duration::from_millis(50)));
    for extra in ["", "Connection: keep-alive\r\n"] {
        let (mut client, conn, head_text) = open_with(&server, &log, "/chunked", "HTTP/1.0", extra);
        assert_eq!(
            head_text,
            head("text/plain; charset=utf-8", "Connection: close")
        );
        server
            .handle
            .push(conn, Message::data("hi"))
            .wait()
            .expect("pushed");
        assert_eq!(client.read_exact_n(2), b"hi");
        assert_eq!(client.read_exact_n(1), b"\n", "raw keepalive");
        server.handle.close(conn);
        assert_eq!(client.read_to_clean_close(), "");
    }
}

#[test]
fn sse_stream() {
    let (server, log) = start(builder());
    let (mut client, conn, head_text) = open(&server, &log, "/sse");
    assert_eq!(head_text, head("text/event-stream", "Connection: close"));
    let msg = Message::data("line one\nline two\r\nthree")
        .with_id("7")
        .with_event("note");
    server.handle.push(conn, msg).wait().expect("pushed");
    assert_eq!(
        client.read_through("\n\n"),
        "id: 7\nevent: note\ndata: line one\ndata: line two\ndata: three\n\n"
    );
    // CR and LF in id and event cannot forge fields.
    let sneaky = Message::data("x")
        .with_id("1\ndata: forged")
        .with_event("e\r\n");
    server.handle.push(conn, sneaky).wait().expect("pushed");
    assert_eq!(
        client.read_through("\n\n"),
        "id: 1data: forged\nevent: e\ndata: x\n\n"
    );
    // A lone CR ends a line for an EventSource: it starts a new data line.
    let cr = Message::data("a\rid: 99\revent: evil\r\nb\n");
    server.handle.push(conn, cr).wait().expect("pushed");
    assert_eq!(
        client.read_through("\n\n"),
        "data: a\ndata: id: 99\ndata: event: evil\ndata: b\ndata: \n\n"
    );
    server.handle.close(conn);
    assert_eq!(client.read_to_clean_close(), "");
}

#[test]
fn sse_with_initial_messages_and_extra_headers() {
    let (server, log) = start(builder());
    let (mut client, _conn, head_text) = open(&server, &log, "/sse-initial");
    assert_eq!(
        head_text,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\nX-Room: lobby\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(
        client.read_through("\n\n"),
        "event: hello\ndata: welcome\n\n"
    );
}

#[test]
fn multipart_stream() {
    let (server, log) = start(builder());
    let (mut client, conn, head_text) = open(&server, &log, "/multipart");
    let b = boundary_in(&head_text);
    assert_eq!(
        head_text,
        head(
            &format!("multipart/x-mixed-replace; boundary={b}"),
            "Connection: close"
        )
    );
    let start = format!("--{b}");
    assert_eq!(client.read_exact_n(start.len()), start.as_bytes());
    server
        .handle
        .push(conn, Message::data("one"))
        .wait()
        .expect("pushed");
    let part = format!("\r\nContent-Type: text/plain; charset=utf-8\r\n\r\none\r\n--{b}");
    assert_eq!(client.read_exact_n(part.len()), part.as_bytes());
    server.handle.close(conn);
    assert_eq!(client.read_to_clean_close(), "--\r\n");
}

#[test]
fn multipart_parts_carry_the_given_content_type() {
    let (server, log) = start(builder());
    let (mut client, conn, head_text) = open(&server, &log, "/jpeg");
    let b = boundary_in(&head_text);
    assert!(head_text.contains(&format!(
        "\r\nContent-Type: multipart/x-mixed-replace; boundary={b}\r\n"
    )));
    client.read_exact_n(b.len() + 2);
    server
        .handle
        .push(conn, Message::data(vec![0xff, 0xd8]))
        .wait()
        .expect("pushed");
    let mut part = b"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8".to_vec();
    part.extend_from_slice(format!("\r\n--{b}").as_bytes());
    assert_eq!(client.read_exact_n(part.len()), part);
    // Broadcast encodes per part type too.
    assert_eq!(
        server
            .handle
            .broadcast(vec![conn], Message::data("z"))
            .wait(),
        1
    );
    let part = format!("\r\nContent-Type: image/jpeg\r\n\r\nz\r\n--{b}");
    assert_eq!(client.read_exact_n(part.len()), part.as_bytes());
}

#[test]
fn raw_stream() {
    let (server, log) = start(builder());
    let (mut client, conn, head_text) = open(&server, &log, "/raw");
    assert_eq!(
        head_text,
        head("text/plain; charset=utf-8", "Connection: close")
    );
    server
        .handle
        .push(conn, Message::data("<b>1999</b>").with_id("ignored"))
        .wait()
        .expect("pushed");
    assert_eq!(client.read_exact_n(11), b"<b>1999</b>");
    server.handle.close(conn);
    assert_eq!(client.read_to_clean_close(), "");
}

#[test]
fn longpoll_first_message_completes_the_response() {
    let (server, log) = start(builder());
    let (mut client, conn, _) = open(&server, &log, "/longpoll");
    // Nothing is sent before the message.
    assert!(client.read_for(Duration::from_millis(50)).is_empty());
    assert_eq!(server.handle.metrics().held, 1);
    server
        .handle
        .push(
            conn,
            Message::data("news").with_id("42").with_event("update"),
        )
        .wait()
        .expect("pushed");
    let resp = client.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "news");
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(resp.header("cache-control"), Some("no-cache, no-transform"));
    assert_eq!(resp.header("x-accel-buffering"), Some("no"));
    assert_eq!(resp.header("x-altsock-id"), Some("42"));
    assert_eq!(resp.header("x-altsock-event"), Some("update"));
    assert_eq!(resp.header("connection"), None);
    log.wait_for("released", |e| (*e == Ev::Released(conn)).then_some(()));
    assert_eq!(server.handle.metrics().held, 0);
    // Released: no more pushes, but the connection serves the next request.
    assert_eq!(
        server.handle.push(conn, Message::data("late")).wait(),
        Err(Gone)
    );
    client.send(b"GET /plain HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.read_response().text(), "plain");
}

const NO_CONTENT: &str = "HTTP/1.1 204 No Content\r\nCache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\n\r\n";

#[test]
fn longpoll_times_out_with_204() {
    let (server, log) = start(builder());
    let (mut client, conn, _) = open(&server, &log, "/longpoll?t=100");
    let started = Instant::now();
    let answer = client.read_through("\r\n\r\n");
    let waited = started.elapsed();
    assert_eq!(answer, NO_CONTENT);
    // At its timeout, not at once; the upper bound only catches "never".
    assert!(
        waited >= Duration::from_millis(80) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    log.wait_for("released", |e| (*e == Ev::Released(conn)).then_some(()));
    // The client polls again on the same connection.
    client.send(b"GET /longpoll?t=50 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.read_through("\r\n\r\n"), NO_CONTENT);
}

#[test]
fn longpoll_answers_carry_the_hold_headers() {
    let (server, log) = start(builder());
    let (mut client, conn, _) = open(&server, &log, "/longpoll-cors?t=50");
    assert_eq!(
        client.read_through("\r\n\r\n"),
        "HTTP/1.1 204 No Content\r\nCache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\nAccess-Control-Allow-Origin: *\r\n\r\n"
    );
    log.wait_for("released", |e| (*e == Ev::Released(conn)).then_some(()));
    client.send(b"GET /longpoll-cors?t=5000 HTTP/1.1\r\nHost: t\r\n\r\n");
    log.wait_for("second poll", |e| {
        matches!(e, Ev::Request(c, t) if *c == conn && t == "/longpoll-cors?t=5000").then_some(())
    });
    server
        .handle
        .push(conn, Message::data("m"))
        .wait()
        .expect("pushed");
    let resp = client.read_response();
    assert_eq!(resp.text(), "m");
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn longpoll_with_initial_messages_answers_at_once() {
    let (server, log) = start(builder());
    let (mut client, conn, _) = open(&server, &log, "/longpoll-now");
    let resp = client.read_response();
    assert_eq!(resp.text(), "ab");
    assert_eq!(resp.header("x-altsock-id"), Some("2"));
    log.wait_for("released", |e| (*e == Ev::Released(conn)).then_some(()));
}

#[test]
fn pipelined_request_behind_a_longpoll_waits_for_its_answer() {
    let (server, log) = start(builder());
    let mut client = server.connect();
    client.send(b"GET /longpoll HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    let conn = log.wait_for("longpoll", |e| match e {
        Ev::Request(c, t) if t == "/longpoll" => Some(*c),
        _ => None,
    });
    assert!(client.read_for(Duration::from_millis(50)).is_empty());
    server
        .handle
        .push(conn, Message::data("first"))
        .wait()
        .expect("pushed");
    assert_eq!(client.read_response().text(), "first");
    assert_eq!(client.read_response().text(), "plain");
}

#[test]
fn keepalives_arrive_at_the_configured_interval() {
    let interval = Duration::from_millis(200);
    let (server, log) = start(builder().keepalive_interval(interval));
    // The hold starts after this, so keepalive i cannot come before (i + 1) intervals.
    let sent = Instant::now();
    let (mut client, _conn, _) = open(&server, &log, "/sse");
    let mut arrivals = Vec::new();
    for _ in 0..4 {
        assert_eq!(client.read_exact_n(2), b":\n");
        arrivals.push(sent.elapsed());
    }
    for (i, at) in arrivals.iter().enumerate() {
        assert!(*at >= interval * (i as u32 + 1), "early: {arrivals:?}");
    }
    // And not an interval late each time: every keepalive at twice the
    // interval would put the fourth at 8 intervals. The slack (three
    // intervals, 600 ms) is for a loaded machine, not for the engine.
    assert!(arrivals[3] < interval * 7, "late: {arrivals:?}");
    // The counter moves just after the write the client already saw.
    wait_for("counted", || server.handle.metrics().keepalives >= 4);
}

#[test]
fn a_push_postpones_the_next_keepalive() {
    let (server, log) = start(builder().keepalive_interval(Duration::from_millis(200)));
    let (mut client, conn, _) = open(&server, &log, "/raw");
    // Aim the push at mid-interval. Where it really lands does not matter:
    // without the postponement the next keepalive would come less than an
    // interval after the push wherever it landed (keepalives that came
    // before it are skipped below).
    std::thread::sleep(Duration::from_millis(100));
    server
        .handle
        .push(conn, Message::data("m"))
        .wait()
        .expect("pushed");
    let pushed = Instant::now();
    loop {
        match client.read_exact_n(1).as_slice() {
            b"m" => break,
            b"\n" => continue, // a keepalive before the push
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(client.read_exact_n(1), b"\n");
    let waited = pushed.elapsed();
    assert!(waited >= Duration::from_millis(180), "{waited:?}");
}

#[test]
fn keepalive_bytes_per_framing() {
    let (server, log) = start(builder().keepalive_interval(Duration::from_millis(50)));
    let cases: [(&str, &[u8]); 4] = [
        ("/chunked", b"1\r\n\n\r\n"),
        ("/sse", b":\n"),
        ("/raw", b"\n"),
        ("/multipart", b" "),
    ];
    for (target, keepalive) in cases {
        let (mut client, _conn, head_text) = open(&server, &log, target);
        if target == "/multipart" {
            // Padding after the opening delimiter.
            client.read_exact_n(boundary_in(&head_text).len() + 2);
        }
        assert_eq!(client.read_exact_n(keepalive.len()), keepalive, "{target}");
        // And exactly that again, nothing else.
        assert_eq!(client.read_exact_n(keepalive.len()), keepalive, "{target}");
    }
    // A pending long-poll sends nothing; it is answered at its timeout.
    let (mut client, _conn, _) = open(&server, &log, "/longpoll?t=300");
    assert!(client.read_for(Duration::from_millis(150)).is_empty());
    wait_for("keepalives counted", || {
        server.handle.metrics().keepalives >= 8
    });
}

#[test]
fn a_client_close_reaches_closed_at_once() {
    // Long intervals: only the FIN itself can wake the engine in time.
    let (server, log) = start(
        Engine::builder()
            .poll_interval(Duration::from_secs(60))
            .keepalive_interval(Duration::from_secs(60)),
    );
    let (client, conn, _) = open(&server, &log, "/sse");
    assert_eq!(server.handle.metrics().held, 1);
    let dropped = Instant::now();
    drop(client);
    assert_eq!(closed_reason(&log, conn), CloseReason::PeerClosed);
    // Far sooner than the first tick (60 s): the FIN woke the engine.
    assert!(
        dropped.elapsed() < Duration::from_secs(10),
        "{:?}",
        dropped.elapsed()
    );
    let metrics = server.handle.metrics();
    assert_eq!((metrics.open, metrics.held), (0, 0));
    assert_eq!(metrics.closed_by(CloseReason::PeerClosed), 1);
}

#[test]
fn a_client_reset_reaches_closed_at_once() {
    let (server, log) = start(
        Engine::builder()
            .poll_interval(Duration::from_secs(60))
            .keepalive_interval(Duration::from_secs(60)),
    );
    let (client, conn, _) = open(&server, &log, "/chunked");
    socket2::SockRef::from(&client.stream)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    let dropped = Instant::now();
    drop(client);
    assert_eq!(closed_reason(&log, conn), CloseReason::PeerReset);
    // Far sooner than the first tick (60 s): the RST woke the engine.
    assert!(dropped.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_closed_pending_longpoll_reaches_closed() {
    let (server, log) = start(builder());
    let (client, conn, _) = open(&server, &log, "/longpoll");
    drop(client);
    assert_eq!(closed_reason(&log, conn), CloseReason::PeerClosed);
    assert_eq!(server.handle.metrics().held, 0);
}

#[test]
fn a_slow_consumer_is_closed() {
    let cap = 64 * 1024;
    let (server, log) = start(builder().max_pending_output(cap));
    let mut client = Client::connect_small_rcvbuf(server.addr, 4096);
    client.send(b"GET /raw HTTP/1.1\r\nHost: t\r\n\r\n");
    let conn = log.wait_for("request", |e| match e {
        Ev::Request(c, _) => Some(*c),
        _ => None,
    });
    // The client reads nothing; push until the engine gives up on it.
    let chunk = vec![b'x'; 16 * 1024];
    let mut pushed = 0usize;
    let push = |msg: Message| server.handle.push(conn, msg).wait();
    while push(Message::data(chunk.clone())).is_ok() {
        pushed += chunk.len();
        assert!(
            pushed < 64 * 1024 * 1024,
            "never closed after {pushed} bytes"
        );
    }
    assert_eq!(closed_reason(&log, conn), CloseReason::SlowConsumer);
    let metrics = server.handle.metrics();
    assert_eq!(metrics.closed_by(CloseReason::SlowConsumer), 1);
    assert_eq!((metrics.open, metrics.held), (0, 0));
    // What the engine kept for it never passed the cap: socket buffers plus the cap.
    assert!(metrics.bytes_out as usize + cap >= pushed);
    let (_, end) = client.read_to_end();
    let _ = end; // a reset or a FIN, depending on what was in flight
}

#[test]
fn a_deferred_reply_completed_from_another_thread() {
    let (server, log) = start(builder());
    let (mut a, conn_a, _) = open(&server, &log, "/defer");
    let (mut b, conn_b, _) = open(&server, &log, "/defer");
    assert!(a.read_for(Duration::from_millis(30)).is_empty());
    let handle = server.handle.clone();
    let results = std::thread::spawn(move || {
        let respond = handle.respond(conn_a, Response::text(201, "made")).wait();
        let hold = handle.hold(conn_b, Hold::sse()).wait();
        let push = handle.push(conn_b, Message::data("from a thread")).wait();
        let again = handle.respond(conn_a, Response::new(200)).wait();
        (respond, hold, push, again)
    })
    .join()
    .expect("thread");
    assert_eq!(results, (Ok(()), Ok(()), Ok(()), Err(Gone)));
    let resp = a.read_response();
    assert_eq!((resp.status, resp.text().as_str()), (201, "made"));
    assert_eq!(
        b.read_through("\r\n\r\n"),
        head("text/event-stream", "Connection: close")
    );
    assert_eq!(b.read_through("\n\n"), "data: from a thread\n\n");
    // A deferred request whose client left is gone.
    let (c, conn_c, _) = open(&server, &log, "/defer");
    drop(c);
    closed_reason(&log, conn_c);
    assert_eq!(
        server.handle.respond(conn_c, Response::new(200)).wait(),
        Err(Gone)
    );
}

#[test]
fn a_push_to_a_gone_connection_is_gone_even_when_its_slot_is_reused() {
    let (server, log) = start(builder());
    let (a, conn_a, _) = open(&server, &log, "/sse");
    drop(a);
    closed_reason(&log, conn_a);
    assert_eq!(
        server.handle.push(conn_a, Message::data("to a")).wait(),
        Err(Gone)
    );
    let (mut b, conn_b, _) = open(&server, &log, "/sse");
    assert_eq!(conn_b.key, conn_a.key, "the slab slot is reused");
    assert_ne!(conn_b.gen, conn_a.gen);
    assert_eq!(
        server.handle.push(conn_a, Message::data("to a")).wait(),
        Err(Gone)
    );
    assert_eq!(
        server
            .handle
            .broadcast(vec![conn_a], Message::data("to a"))
            .wait(),
        0
    );
    server.handle.send(Cmd::Push(conn_a, Message::data("to a")));
    log.wait_for("router push", |e| {
        (*e == Ev::Pushed(conn_a, Err(Gone))).then_some(())
    });
    server.handle.close(conn_a);
    server
        .handle
        .push(conn_b, Message::data("to b"))
        .wait()
        .expect("pushed");
    assert_eq!(b.read_through("\n\n"), "data: to b\n\n");
    assert!(b.read_for(Duration::from_millis(30)).is_empty());
    // A connection that is not held takes no pushes either.
    let mut plain = server.connect();
    plain.send(b"GET /plain HTTP/1.1\r\nHost: t\r\n\r\n");
    plain.read_response();
    let conn_plain = log.wait_for("plain", |e| match e {
        Ev::Request(c, t) if t == "/plain" => Some(*c),
        _ => None,
    });
    assert_eq!(
        server.handle.push(conn_plain, Message::data("no")).wait(),
        Err(Gone)
    );
}

#[test]
fn handle_send_reaches_the_router() {
    let (server, log) = start(builder());
    let handle = server.handle.clone();
    std::thread::spawn(move || handle.send(Cmd::Note("hello router".into())))
        .join()
        .expect("thread");
    log.wait_for("message", |e| {
        (*e == Ev::Message("hello router".into())).then_some(())
    });
    // The router pushes and closes from `message`.
    let (mut client, conn, _) = open(&server, &log, "/chunked");
    assert!(server
        .handle
        .send(Cmd::Push(conn, Message::data("via router"))));
    assert_eq!(client.read_exact_n(15), b"a\r\nvia router\r\n");
    server.handle.send(Cmd::Close(conn));
    assert_eq!(client.read_to_clean_close(), "0\r\n\r\n");
}

#[test]
fn broadcast_counts_the_connections_that_took_it() {
    let (server, log) = start(builder());
    let (mut sse, c_sse, _) = open(&server, &log, "/sse");
    let (mut chunked, c_chunked, _) = open(&server, &log, "/chunked");
    let (mut raw, c_raw, _) = open(&server, &log, "/raw");
    let (mut multi, c_multi, multi_head) = open(&server, &log, "/multipart");
    let b = boundary_in(&multi_head);
    multi.read_exact_n(b.len() + 2);
    let (mut poll, c_poll, _) = open(&server, &log, "/longpoll");
    let (_deferred, c_deferred, _) = open(&server, &log, "/defer");
    let (gone, c_gone, _) = open(&server, &log, "/sse");
    drop(gone);
    closed_reason(&log, c_gone);
    let all = vec![c_sse, c_chunked, c_raw, c_multi, c_poll, c_deferred, c_gone];
    let msg = Message::data("news").with_id("9");
    assert_eq!(server.handle.broadcast(all.clone(), msg.clone()).wait(), 5);
    assert_eq!(sse.read_through("\n\n"), "id: 9\ndata: news\n\n");
    assert_eq!(chunked.read_exact_n(9), b"4\r\nnews\r\n");
    assert_eq!(raw.read_exact_n(4), b"news");
    let part = format!("\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nnews\r\n--{b}");
    assert_eq!(multi.read_exact_n(part.len()), part.as_bytes());
    assert_eq!(poll.read_response().text(), "news");
    // Through the router's Cx: the long-poll is released now.
    server
        .handle
        .send(Cmd::Broadcast(all, Message::data("again")));
    log.wait_for("broadcast", |e| match e {
        Ev::Broadcast(n) => Some(*n),
        _ => None,
    });
    assert!(log.all().contains(&Ev::Broadcast(4)), "{:?}", log.all());
    assert_eq!(raw.read_exact_n(5), b"again");
}

#[test]
fn metrics_count_and_render() {
    let (server, log) = start(builder().keepalive_interval(Duration::from_millis(30)));
    let (mut sse, _c1, _) = open(&server, &log, "/sse");
    let (mut raw, _c2, _) = open(&server, &log, "/raw");
    let (gone, c3, _) = open(&server, &log, "/chunked");
    let m = server.handle.metrics();
    assert_eq!((m.accepted, m.open, m.held, m.requests), (3, 3, 3, 3));
    drop(gone);
    closed_reason(&log, c3);
    for _ in 0..2 {
        assert_eq!(sse.read_exact_n(2), b":\n");
        assert_eq!(raw.read_exact_n(1), b"\n");
    }
    wait_for("ticks", || {
        log.all().iter().filter(|e| **e == Ev::Tick).count() >= 3
    });
    wait_for("keepalives counted", || {
        server.handle.metrics().keepalives >= 4
    });
    let m = server.handle.metrics();
    assert_eq!((m.accepted, m.open, m.held), (3, 2, 2));
    assert_eq!(m.closed_by(CloseReason::PeerClosed), 1);
    assert_eq!(m.closed_by(CloseReason::SlowConsumer), 0);
    assert!(m.keepalives >= 4, "{m:?}");
    assert!(m.ticks >= 3);
    assert!(m.bytes_in > 0 && m.bytes_out > m.bytes_in);
    let text = m.to_prometheus();
    for line in [
        "# TYPE altsock_open_connections gauge\naltsock_open_connections 2\n",
        "# TYPE altsock_held_connections gauge\naltsock_held_connections 2\n",
        "# TYPE altsock_accepted_total counter\naltsock_accepted_total 3\n",
        "altsock_requests_total 3\n",
        &format!("altsock_keepalive_writes_total {}\n", m.keepalives),
        &format!("altsock_bytes_out_total {}\n", m.bytes_out),
        &format!("altsock_last_tick_microseconds {}\n", m.last_tick_micros),
        "# TYPE altsock_closed_total counter\n",
        "altsock_closed_total{reason=\"peer_closed\"} 1\n",
        "altsock_closed_total{reason=\"slow_consumer\"} 0\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    for reason in CloseReason::ALL {
        assert!(text.contains(&format!("{{reason=\"{}\"}}", reason.label())));
    }
    // Every sample line is `name value` or `name{labels} value`.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = l.rsplit_once(' ').expect("sample");
        assert!(name.starts_with("altsock_"), "{l}");
        value.parse::<u64>().expect("integer value");
    }
}

#[test]
fn graceful_shutdown_ends_every_stream() {
    // Long: `run` must return because every connection ended, not because
    // the grace ran out.
    let grace = Duration::from_secs(20);
    let (mut server, log) = start(builder().shutdown_grace(grace));
    let (mut chunked, c1, _) = open(&server, &log, "/chunked");
    let (mut sse, c2, _) = open(&server, &log, "/sse");
    let (mut multi, c3, multi_head) = open(&server, &log, "/multipart");
    multi.read_exact_n(boundary_in(&multi_head).len() + 2);
    let (mut poll, c4, _) = open(&server, &log, "/longpoll");
    let mut idle = server.connect();
    idle.send(b"GET /plain HTTP/1.1\r\nHost: t\r\n\r\n");
    idle.read_response();
    let started = Instant::now();
    server.handle.shutdown();
    assert_eq!(chunked.read_to_clean_close(), "0\r\n\r\n");
    assert_eq!(sse.read_to_clean_close(), "");
    assert_eq!(multi.read_to_clean_close(), "--\r\n");
    assert_eq!(poll.read_to_end().1, End::Fin);
    assert_eq!(idle.read_to_clean_close(), "");
    drop((chunked, sse, multi, poll, idle));
    assert!(server.stop().is_ok());
    let took = started.elapsed();
    assert!(took < grace, "run returned after {took:?}");
    for conn in [c1, c2, c3, c4] {
        assert_eq!(closed_reason(&log, conn), CloseReason::Shutdown);
    }
    // After the engine stopped, handles report it.
    assert!(server.handle.is_stopped());
    assert_eq!(server.handle.push(c1, Message::data("x")).wait(), Err(Gone));
    assert!(!server.handle.send(Cmd::Note("late".into())));
    assert!(std::net::TcpStream::connect(server.addr).is_err());
}

#[test]
fn shutdown_returns_within_the_grace_when_a_client_never_leaves() {
    let grace = Duration::from_millis(300);
    let (mut server, log) = start(builder().shutdown_grace(grace));
    // A deferred request that nobody answers, and a stream whose client never reads.
    let (_deferred, c1, _) = open(&server, &log, "/defer");
    let (_held, c2, _) = open(&server, &log, "/sse");
    let started = Instant::now();
    assert!(server.stop().is_ok());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < grace + Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(closed_reason(&log, c1), CloseReason::Shutdown);
    assert_eq!(closed_reason(&log, c2), CloseReason::Shutdown);
}

#[test]
fn router_ticks_every_poll_interval() {
    let (server, log) = start(
        Engine::builder()
            .poll_interval(Duration::from_millis(20))
            .keepalive_interval(Duration::from_secs(60)),
    );
    let started = Instant::now();
    wait_for("5 ticks", || {
        log.all().iter().filter(|e| **e == Ev::Tick).count() >= 5
    });
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(80), "{took:?}");
    assert!(server.handle.metrics().ticks >= 5);
}

#[test]
fn input_piling_up_behind_a_longpoll_is_capped() {
    let (server, log) = start(builder());
    let (client, conn, _) = open(&server, &log, "/longpoll");
    let mut stream = client.stream.try_clone().expect("clone");
    // Far more than one request's worth (head and body limits) of pipelined bytes.
    let writer = std::thread::spawn(move || {
        let block = vec![b'a'; 64 * 1024];
        for _ in 0..128 {
            if std::io::Write::write_all(&mut stream, &block).is_err() {
                return;
            }
        }
    });
    assert_eq!(closed_reason(&log, conn), CloseReason::BadRequest);
    let _ = writer.join();
    assert!(server.handle.metrics().bytes_in < 4 * 1024 * 1024);
}

/// Input piling up behind a deferred answer is bounded: reading pauses at
/// one request's worth (the kernel and TCP push back on the client) instead of
/// buffering the flood; once the answer is written the waiting bytes are
/// parsed, and garbage is refused with a 4xx and a close.
#[test]
fn input_piling_up_behind_a_deferred_answer_pauses_reading() {
    let (server, log) = start(builder());
    let (mut client, conn, _) = open(&server, &log, "/defer");
    let mut stream = client.stream.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let block = vec![b'a'; 64 * 1024];
        for _ in 0..128 {
            if std::io::Write::write_all(&mut stream, &block).is_err() {
                return;
            }
        }
    });
    let limits = altsock::http::parse::Limits::default();
    let cap = (limits.max_head + limits.max_body) as u64;
    wait_for("a request's worth of input", || {
        server.handle.metrics().bytes_in > cap
    });
    // Paused: at most one more read past the cap.
    let read = server.handle.metrics().bytes_in;
    assert!(
        read < cap + 64 * 1024,
        "read {read} bytes behind a deferred answer"
    );
    assert_eq!(
        server
            .handle
            .respond(conn, Response::text(200, "late"))
            .wait(),
        Ok(())
    );
    assert_eq!(client.read_response().text(), "late");
    let refused = client.read_response();
    assert!((400..500).contains(&refused.status), "{}", refused.status);
    assert_eq!(closed_reason(&log, conn), CloseReason::BadRequest);
    let _ = writer.join();
}

#[test]
fn head_on_a_stream_gets_the_head_only() {
    let (server, log) = start(builder().keepalive_interval(Duration::from_millis(20)));
    for (target, content_type, last) in [
        (
            "/chunked",
            "text/plain; charset=utf-8",
            "Transfer-Encoding: chunked",
        ),
        ("/sse", "text/event-stream", "Connection: close"),
        (
            "/multipart",
            "multipart/x-mixed-replace",
            "Connection: close",
        ),
        ("/sse-initial", "text/event-stream", "Connection: close"),
    ] {
        let mut client = server.connect();
        client.send(format!("HEAD {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let text = client.read_to_clean_close();
        if target == "/sse-initial" {
            assert_eq!(
                text,
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\nX-Room: lobby\r\nConnection: close\r\n\r\n"
            );
        } else if target == "/multipart" {
            let b = boundary_in(&text);
            let content_type = format!("{content_type}; boundary={b}");
            assert_eq!(text, head(&content_type, last), "{target}");
        } else {
            assert_eq!(text, head(content_type, last), "{target}");
        }
    }
    wait_for("closed", || {
        server.handle.metrics().closed_by(CloseReason::Done) == 4
    });
    assert_eq!(server.handle.metrics().held, 0);
    assert!(log
        .all()
        .iter()
        .all(|e| !matches!(e, Ev::Closed(_, r) if *r != CloseReason::Done)));
}

#[test]
fn receipts_resolve_across_shutdown() {
    for _ in 0..20 {
        let (mut server, _log) = start(builder());
        let handle = server.handle.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let pusher = std::thread::spawn(move || {
            let ghost = ConnId { key: 0, gen: 0 };
            let mut answers = 0;
            loop {
                let stopped = handle.is_stopped();
                assert_eq!(handle.push(ghost, Message::data("x")).wait(), Err(Gone));
                answers += 1;
                if stopped {
                    break;
                }
            }
            let _ = done_tx.send(answers);
        });
        std::thread::sleep(Duration::from_millis(2));
        assert!(server.stop().is_ok());
        let answers = done_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a receipt never resolved");
        assert!(answers > 0);
        pusher.join().expect("pusher");
    }
}

#[test]
fn handles_are_send_and_clone() {
    fn send_clone<T: Send + Sync + Clone + 'static>() {}
    send_clone::<altsock::Handle<Cmd>>();
    send_clone::<ConnId>();
    send_clone::<Message>();
}

#[test]
fn fan_out_to_many_subscribers() {
    let (server, log) = start(builder());
    let mut subs: Vec<Client> = (0..200).map(|_| server.connect()).collect();
    for client in &mut subs {
        client.send(b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    for client in &mut subs {
        client.read_through("\r\n\r\n");
    }
    assert_eq!(server.handle.metrics().held, 200);
    let conns: Vec<ConnId> = log
        .all()
        .iter()
        .filter_map(|e| match e {
            Ev::Request(c, _) => Some(*c),
            _ => None,
        })
        .collect();
    assert_eq!(conns.len(), 200);
    let msg = Message::data("to all").with_id("1");
    assert_eq!(server.handle.broadcast(conns, msg).wait(), 200);
    for client in &mut subs {
        assert_eq!(client.read_through("\n\n"), "id: 1\ndata: to all\n\n");
    }
}

#[test]
fn keepalives_run_on_holds_made_later() {
    let (server, log) = start(builder().keepalive_interval(Duration::from_millis(40)));
    // A deferred request turned into a stream from another thread.
    let (mut deferred, conn, _) = open(&server, &log, "/defer");
    server.handle.hold(conn, Hold::sse()).wait().expect("held");
    deferred.read_through("\r\n\r\n");
    assert_eq!(deferred.read_exact_n(2), b":\n");
    assert_eq!(deferred.read_exact_n(2), b":\n");
    // A stream opened on a connection whose long-poll was answered before.
    let (mut client, conn, _) = open(&server, &log, "/longpoll");
    server
        .handle
        .push(conn, Message::data("one"))
        .wait()
        .expect("pushed");
    assert_eq!(client.read_response().text(), "one");
    client.send(b"GET /raw HTTP/1.1\r\nHost: t\r\n\r\n");
    client.read_through("\r\n\r\n");
    assert_eq!(client.read_exact_n(1), b"\n");
    assert_eq!(client.read_exact_n(1), b"\n");
    // A deferred request turned into a long-poll times out with 204.
    let (mut lp, conn, _) = open(&server, &log, "/defer");
    server
        .handle
        .hold(
            conn,
            Hold::new(Framing::LongPoll).with_timeout(Duration::from_millis(60)),
        )
        .wait()
        .expect("held");
    assert_eq!(lp.read_through("\r\n\r\n"), NO_CONTENT);
    log.wait_for("released", |e| (*e == Ev::Released(conn)).then_some(()));
}

#[test]
fn a_deferred_answer_during_shutdown_is_still_delivered() {
    let grace = Duration::from_secs(3);
    let (mut server, log) = start(builder().shutdown_grace(grace));
    let (mut client, conn, _) = open(&server, &log, "/defer");
    let started = Instant::now();
    server.handle.shutdown();
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        server
            .handle
            .respond(conn, Response::text(200, "late but here"))
            .wait(),
        Ok(())
    );
    let text = client.read_to_clean_close();
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    assert!(text.ends_with("late but here"), "{text}");
    drop(client);
    assert!(server.stop().is_ok());
    assert!(started.elapsed() < grace, "{:?}", started.elapsed());
}

#[test]
fn closed_is_only_for_connections_the_router_saw() {
    let (server, log) = start(builder());
    let silent = server.connect();
    let mut bad = server.connect();
    bad.send(b"GET / HTTP/1.1\r\nHost t\r\n\r\n");
    assert!(bad.read_to_clean_close().starts_with("HTTP/1.1 400 "));
    drop((silent, bad));
    let (seen, conn, _) = open(&server, &log, "/sse");
    drop(seen);
    assert_eq!(closed_reason(&log, conn), CloseReason::PeerClosed);
    wait_for("all closed", || server.handle.metrics().open == 0);
    let closes = log
        .all()
        .iter()
        .filter(|e| matches!(e, Ev::Closed(..)))
        .count();
    assert_eq!(closes, 1, "{:?}", log.all());
    let m = server.handle.metrics();
    assert_eq!(m.accepted, 3);
    assert_eq!(m.closed_by(CloseReason::BadRequest), 1);
    assert_eq!(m.closed_by(CloseReason::PeerClosed), 2);
}

#[test]
fn the_router_sees_the_engine_through_cx() {
    let (server, log) = start(builder());
    let (client, conn, _) = open(&server, &log, "/sse");
    server.handle.send(Cmd::Inspect(conn));
    log.wait_for("inspected", |e| {
        (*e == Ev::Inspected {
            open: true,
            held: 1,
        })
        .then_some(())
    });
    log.wait_for("note", |e| {
        (*e == Ev::Message("from the router".into())).then_some(())
    });
    drop(client);
    closed_reason(&log, conn);
    server.handle.send(Cmd::Inspect(conn));
    log.wait_for("inspected after close", |e| {
        (*e == Ev::Inspected {
            open: false,
            held: 0,
        })
        .then_some(())
    });
}

#[test]
fn handle_close_in_every_phase() {
    let (server, log) = start(builder());
    // Deferred: closed without an answer.
    let (mut deferred, c1, _) = open(&server, &log, "/defer");
    server.handle.close(c1);
    assert_eq!(deferred.read_to_clean_close(), "");
    // Pending long-poll: closed without an answer.
    let (mut poll, c2, _) = open(&server, &log, "/longpoll");
    server.handle.close(c2);
    assert_eq!(poll.read_to_end().0, b"");
    // Idle between requests.
    let mut idle = server.connect();
    idle.send(b"GET /plain HTTP/1.1\r\nHost: t\r\n\r\n");
    idle.read_response();
    let c3 = log.wait_for("plain", |e| match e {
        Ev::Request(c, t) if t == "/plain" => Some(*c),
        _ => None,
    });
    server.handle.close(c3);
    assert_eq!(idle.read_to_clean_close(), "");
    drop((deferred, poll, idle));
    for conn in [c1, c2, c3] {
        assert_eq!(closed_reason(&log, conn), CloseReason::Closed);
    }
    // Answers for a held stream are refused: it is not deferred.
    let (_sse, c4, _) = open(&server, &log, "/sse");
    assert_eq!(
        server.handle.respond(c4, Response::new(200)).wait(),
        Err(Gone)
    );
    assert_eq!(server.handle.hold(c4, Hold::sse()).wait(), Err(Gone));
}

#[test]
fn every_multipart_stream_has_its_own_secret_boundary() {
    let (server, log) = start(builder());
    let (a, conn_a, head_a) = open(&server, &log, "/multipart");
    let (_b, _conn_b, head_b) = open(&server, &log, "/multipart");
    let (boundary_a, boundary_b) = (boundary_in(&head_a), boundary_in(&head_b));
    assert_ne!(boundary_a, boundary_b);
    // The next stream in the same slot gets another one too.
    drop(a);
    closed_reason(&log, conn_a);
    let (_c, conn_c, head_c) = open(&server, &log, "/multipart");
    assert_eq!(conn_c.key, conn_a.key);
    assert_ne!(boundary_in(&head_c), boundary_a);
    // And another engine gives the same slot another boundary: the key is secret.
    let (other, other_log) = start(builder());
    let (_d, conn_d, head_d) = open(&other, &other_log, "/multipart");
    assert_eq!((conn_d.key, conn_d.gen), (0, 0));
    let first = log.wait_for("first", |e| match e {
        Ev::Request(c, _) => Some(*c),
        _ => None,
    });
    assert_eq!((first.key, first.gen), (0, 0));
    assert_ne!(boundary_in(&head_d), boundary_a);
}
