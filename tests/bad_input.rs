//! Every bad input of the engine issue, over real sockets: the exact answer,
//! then a clean close (a FIN, not a reset), and the router never sees the
//! request. Also the header timeout (slowloris) and the connection limit.

mod util;

use std::time::{Duration, Instant};

use altsock::http::parse::Limits;
use altsock::{CloseReason, Cx, Engine, Reply, Request, Response, Router};
use util::{spawn, Client, TestServer};

/// Answers every request with `ok`.
struct Ok200;

impl Router for Ok200 {
    type Msg = ();
    fn request(&mut self, req: Request, _cx: &mut Cx<'_, ()>) -> Reply {
        Reply::Respond(Response::text(200, format!("ok {}", req.target)))
    }
}

fn start() -> TestServer<()> {
    spawn(Engine::builder(), Ok200)
}

/// The exact bytes the engine answers a rejected request with.
fn rejection(status: u16, reason: &str, why: &str) -> String {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{why}\n",
        why.len() + 1
    )
}

/// Sends `raw` on a new connection; returns everything until the clean close.
fn answer_to(server: &TestServer<()>, raw: &[u8]) -> String {
    let mut client = server.connect();
    client.send(raw);
    client.read_to_clean_close()
}

fn assert_status(server: &TestServer<()>, raw: &[u8], status: u16) {
    let text = answer_to(server, raw);
    assert!(
        text.starts_with(&format!("HTTP/1.1 {status} ")),
        "{:?} got {text:?}",
        String::from_utf8_lossy(raw)
    );
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
}

#[test]
fn head_over_the_limit_gets_431() {
    let server = start();
    let raw = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    assert_eq!(
        answer_to(&server, raw.as_bytes()),
        rejection(
            431,
            "Request Header Fields Too Large",
            "request head too large"
        )
    );
    // Never finished: the limit is enforced without waiting for the end.
    let endless = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}",
        "a".repeat(20 * 1024)
    );
    assert_eq!(
        answer_to(&server, endless.as_bytes()),
        rejection(
            431,
            "Request Header Fields Too Large",
            "request head too large"
        )
    );
    let metrics = server.handle.metrics();
    assert_eq!(metrics.requests, 0);
    util::wait_for("closes counted", || {
        server.handle.metrics().closed_by(CloseReason::BadRequest) == 2
    });
}

#[test]
fn configured_head_limit() {
    let server = spawn(
        Engine::builder().limits(Limits {
            max_head: 100,
            ..Limits::default()
        }),
        Ok200,
    );
    let fits = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "p".repeat(40));
    let resp = util::request(server.addr, &fits);
    assert_eq!(resp.status, 200);
    let over = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "p".repeat(100));
    assert_status(&server, over.as_bytes(), 431);
}

#[test]
fn more_than_64_headers_gets_431() {
    let server = start();
    let with_headers = |n: usize| {
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
        for i in 1..n {
            raw.push_str(&format!("X-H{i}: v\r\n"));
        }
        raw + "\r\n"
    };
    let resp = util::request(server.addr, &with_headers(64));
    assert_eq!(resp.status, 200);
    assert_eq!(
        answer_to(&server, with_headers(65).as_bytes()),
        rejection(
            431,
            "Request Header Fields Too Large",
            "too many header lines"
        )
    );
}

#[test]
fn malformed_input_gets_400() {
    let server = start();
    let cases: &[(&str, &str)] = &[
        ("GET\r\n\r\n", "bad request line or header"),
        ("GET / HTTP/1.1 x\r\nHost: t\r\n\r\n", "bad request line or header"),
        ("GET / HTTP/1.1\r\nHost t\r\n\r\n", "bad request line or header"),
        ("GET / HTTP/1.1\nHost: t\n\n", "bare LF line ending"),
        ("GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n", "bare LF line ending"),
        (
            "GET / HTTP/1.1\r\nHost: t\r\nX: one\r\n two\r\n\r\n",
            "obsolete line folding",
        ),
        (
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "Content-Length together with Transfer-Encoding",
        ),
        (
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            "conflicting Content-Length values",
        ),
        (
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: three\r\n\r\nabc",
            "non-numeric Content-Length",
        ),
        (
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -3\r\n\r\nabc",
            "non-numeric Content-Length",
        ),
        ("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 request without Host"),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "more than one Host",
        ),
        (
            "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
            "bad chunk size",
        ),
    ];
    for (raw, why) in cases {
        assert_eq!(
            answer_to(&server, raw.as_bytes()),
            rejection(400, "Bad Request", &format!("malformed request: {why}")),
            "{raw:?}"
        );
    }
    assert_eq!(server.handle.metrics().requests, 0);
}

/// Issue 7, finding 12: leniencies a proxy in front may read differently.
/// Each gets `400` and a clean close, and the router never sees a request.
#[test]
fn framing_a_proxy_may_read_differently_gets_400() {
    let server = start();
    let chunked = "POST /pub/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    let cases: &[(String, &str)] = &[
        (
            format!("{chunked}2;a\nb\r\nhi\r\n0\r\n\r\n"),
            "bare LF in chunk extension",
        ),
        (
            format!("{chunked}\r\n2\r\nhi\r\n0\r\n\r\n"),
            "empty chunk size line",
        ),
        (format!("{chunked}2\r\nhi\r\n\r\n"), "empty chunk size line"),
        (
            "POST /pub/x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n".into(),
            "Transfer-Encoding in an HTTP/1.0 request",
        ),
        (
            "POST /pub/x HTTP/1.0\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nhi".into(),
            "Transfer-Encoding in an HTTP/1.0 request",
        ),
    ];
    for (raw, why) in cases {
        assert_eq!(
            answer_to(&server, raw.as_bytes()),
            rejection(400, "Bad Request", &format!("malformed request: {why}")),
            "{raw:?}"
        );
    }
    assert_eq!(server.handle.metrics().requests, 0);
    // Counted when the server closes, after the client's FIN.
    util::wait_for("every rejection counted", || {
        server.handle.metrics().closed_by(CloseReason::BadRequest) == cases.len() as u64
    });
}

/// A chunked upload that trickles in (many one-byte chunks, each in its own
/// write) arrives whole and in order, and a pipelined request behind it is
/// answered after it.
#[test]
fn slow_chunked_upload_arrives_whole() {
    let server = spawn(Engine::builder(), Echo);
    let mut client = server.connect();
    client.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut expected = Vec::new();
    for i in 0..400u32 {
        let byte = b'a' + (i % 26) as u8;
        expected.push(byte);
        client.send(&[b'1', b'\r', b'\n', byte, b'\r', b'\n']);
        if i % 100 == 0 {
            client.send(b"3;name=\"v\"\r\n");
            client.send(b"xyz\r\n");
            expected.extend_from_slice(b"xyz");
        }
    }
    client
        .send(b"0\r\nTrailer: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let text = client.read_to_clean_close();
    let body = String::from_utf8(expected).unwrap();
    let first = format!("Content-Length: {}\r\n\r\n{body}", body.len());
    assert!(text.contains(&first), "{text}");
    assert!(text.ends_with("\r\n\r\n/next"), "{text}");
}

/// Answers with the request body, or the target when there is none.
struct Echo;

impl Router for Echo {
    type Msg = ();
    fn request(&mut self, req: Request, _cx: &mut Cx<'_, ()>) -> Reply {
        if req.body.is_empty() {
            return Reply::Respond(Response::text(200, req.target));
        }
        Reply::Respond(Response::new(200).body(req.body))
    }
}

#[test]
fn other_transfer_encoding_gets_501() {
    let server = start();
    for te in ["gzip", "gzip, chunked", "deflate"] {
        let raw = format!("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(
            answer_to(&server, raw.as_bytes()),
            rejection(
                501,
                "Not Implemented",
                "only chunked transfer-encoding is supported"
            ),
            "{te}"
        );
    }
}

#[test]
fn body_over_the_limit_gets_413() {
    let server = start();
    // The default limit is 1 MiB; the answer comes from the head alone.
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        1024 * 1024 + 1
    );
    assert_eq!(
        answer_to(&server, raw.as_bytes()),
        rejection(413, "Content Too Large", "request body too large")
    );
    // A configured limit, reached by a chunked body.
    let small = spawn(
        Engine::builder().limits(Limits {
            max_body: 100,
            ..Limits::default()
        }),
        Ok200,
    );
    let mut chunked =
        String::from("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..3 {
        chunked.push_str(&format!("28\r\n{}\r\n", "x".repeat(40)));
    }
    assert_status(&small, chunked.as_bytes(), 413);
    // At the limit is fine.
    let at = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{}",
        "y".repeat(100)
    );
    assert_eq!(util::request(small.addr, &at).status, 200);
}

#[test]
fn unsupported_version_gets_505() {
    let server = start();
    assert_status(&server, b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505);
}

#[test]
fn bad_request_after_a_good_one_is_answered_in_order() {
    let server = start();
    let mut client = server.connect();
    client.send(b"GET /good HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost t\r\n\r\n");
    let good = client.read_response();
    assert_eq!(good.text(), "ok /good");
    let rest = client.read_to_clean_close();
    assert!(rest.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{rest}");
}

#[test]
fn garbage_and_binary_input_get_400() {
    let server = start();
    assert_status(
        &server,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        400,
    );
    assert_status(&server, b"\0\0\0\0\r\n\r\n", 400);
    // Empty lines before a request line are allowed (RFC 9112 section 2.2),
    // but not without end: they count against the head limit.
    let newlines = "\r\n".repeat(9 * 1024);
    assert_status(&server, newlines.as_bytes(), 431);
}

fn slow_server() -> TestServer<()> {
    spawn(
        Engine::builder()
            .poll_interval(Duration::from_millis(20))
            .header_timeout(Duration::from_millis(300)),
        Ok200,
    )
}

fn timeout_answer() -> String {
    "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\nConnection: close\r\n\r\nrequest timeout\n".into()
}

#[test]
fn slowloris_gets_408_then_close() {
    let server = slow_server();
    let mut client = server.connect();
    let started = Instant::now();
    let raw = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    // One byte per read attempt (at most one per 50 ms): the head would take
    // seconds to finish and never does; the 408 comes while bytes still trickle.
    let mut sent = 0;
    while client.buf.is_empty() {
        assert!(sent < raw.len(), "no 408 while the head was still arriving");
        let _ = std::io::Write::write_all(&mut client.stream, &raw[sent..sent + 1]);
        sent += 1;
        client.fill();
    }
    let text = client.read_to_clean_close();
    let took = started.elapsed();
    assert_eq!(text, timeout_answer());
    // Not before the header timeout (300 ms), though bytes kept coming.
    assert!(took >= Duration::from_millis(290), "{took:?}");
    drop(client);
    util::wait_for("counted", || {
        server
            .handle
            .metrics()
            .closed_by(CloseReason::HeaderTimeout)
            == 1
    });
    assert_eq!(server.handle.metrics().requests, 0);
}

#[test]
fn slow_body_gets_408() {
    let server = slow_server();
    let mut client = server.connect();
    client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(client.read_to_clean_close(), timeout_answer());
}

#[test]
fn silent_new_connection_gets_408() {
    let server = slow_server();
    let mut client = server.connect();
    assert_eq!(client.read_to_clean_close(), timeout_answer());
}

#[test]
fn slow_second_request_on_a_kept_alive_connection_gets_408() {
    let server = spawn(
        Engine::builder()
            .poll_interval(Duration::from_millis(20))
            .header_timeout(Duration::from_millis(300))
            .idle_timeout(Duration::from_secs(30)),
        Ok200,
    );
    let mut client = server.connect();
    client.send(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.read_response().text(), "ok /1");
    client.send(b"GET /2 HTTP/1.1\r\nHo");
    let started = Instant::now();
    assert_eq!(client.read_to_clean_close(), timeout_answer());
    assert!(started.elapsed() < Duration::from_secs(2));
}

const REFUSED: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\nContent-Length: 21\r\nConnection: close\r\n\r\nconnection limit hit\n";

#[test]
fn connection_limit_gets_503_and_others_keep_working() {
    let server = spawn(Engine::builder().max_connections(2), Ok200);
    let mut a = server.connect();
    let mut b = server.connect();
    for (c, name) in [(&mut a, "a"), (&mut b, "b")] {
        c.send(format!("GET /{name} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        assert_eq!(c.read_response().text(), format!("ok /{name}"));
    }
    let mut refused = server.connect();
    assert_eq!(refused.read_to_clean_close(), REFUSED);
    // A client that sends its request at once also reads the whole 503.
    let mut eager = server.connect();
    eager.send(b"GET /eager HTTP/1.1\r\nHost: t\r\n\r\n");
    let (bytes, _) = eager.read_to_end();
    assert_eq!(String::from_utf8_lossy(&bytes), REFUSED);
    let metrics = server.handle.metrics();
    assert_eq!(metrics.rejected, 2);
    assert_eq!(metrics.accepted, 2);
    // The admitted connections are served as before.
    for (c, name) in [(&mut a, "a2"), (&mut b, "b2")] {
        c.send(format!("GET /{name} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        assert_eq!(c.read_response().text(), format!("ok /{name}"));
    }
    // Once one leaves, a new connection is admitted.
    drop(a);
    util::wait_for("a closed", || server.handle.metrics().open == 1);
    let mut c = Client::connect(server.addr);
    c.send(b"GET /c HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response().text(), "ok /c");
}

/// Sends `head` and then `filler` bytes for as long as the server reads them
/// (at most 8 MiB); returns the answer. Without a cap on what a request may
/// buffer, the server would keep reading until the header timeout.
fn answer_to_endless(server: &TestServer<()>, head: &[u8], filler: u8) -> String {
    let mut client = server.connect();
    client.send(head);
    let stream = client.stream.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let mut stream = stream;
        let block = vec![filler; 64 * 1024];
        for _ in 0..128 {
            if std::io::Write::write_all(&mut stream, &block).is_err() {
                return;
            }
        }
    });
    let (bytes, _) = client.read_to_end();
    let _ = writer.join();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn endless_chunk_extension_is_rejected() {
    let server = start();
    let started = Instant::now();
    let text = answer_to_endless(
        &server,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=",
        b'a',
    );
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    // By the cap, not by the 10 s header timeout.
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[test]
fn endless_chunk_size_whitespace_is_rejected() {
    let server = start();
    let text = answer_to_endless(
        &server,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1",
        b' ',
    );
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
}

#[test]
fn endless_trailers_are_rejected() {
    let server = start();
    let text = answer_to_endless(
        &server,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ",
        b'b',
    );
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
}
