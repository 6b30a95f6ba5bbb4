//! The engine over TLS (a `listen_tls` listener beside the plain one, in one
//! engine), with a test certificate made at test time: every framing with its
//! messages and keepalives (each keepalive one small record), long-poll,
//! keep-alive requests, limits, the header timeout (also for a client that
//! stalls in the handshake), a malformed ClientHello (alert, close, metric),
//! backpressure (slow consumer), graceful shutdown with `close_notify`, and
//! `curl --cacert` and `openssl s_client` as real clients.

mod tls_support;
mod util;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use altsock::{
    Builder, CloseReason, ConnId, Cx, Engine, Framing, Handle, Hold, Message, Reply, Request,
    Response, Router,
};
use tls_support::{TestCert, TlsClient, TlsEnd};
use util::{wait_for, Client, Log};

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Request(ConnId, String, bool),
    Closed(ConnId, CloseReason),
}

/// Holds `/sse`, `/chunked`, `/raw`, `/multipart`, `/longpoll`; answers the rest.
struct Holder {
    log: Log<Ev>,
}

impl Router for Holder {
    type Msg = ();

    fn request(&mut self, req: Request, cx: &mut Cx<'_, ()>) -> Reply {
        let tls = cx.is_tls(req.conn);
        self.log
            .push(Ev::Request(req.conn, req.target.clone(), tls));
        let hold = match req.path() {
            "/sse" => Hold::sse(),
            "/chunked" => Hold::new(Framing::Chunked),
            "/raw" => Hold::new(Framing::Raw),
            "/multipart" => Hold::new(Framing::Multipart),
            "/longpoll" => Hold::new(Framing::LongPoll).with_timeout(Duration::from_millis(200)),
            "/ws" => match altsock::ws::check_upgrade(&req, &[]) {
                altsock::ws::Upgrade::Accept(accepted) => Hold::websocket(accepted),
                altsock::ws::Upgrade::Refuse(refusal) => return Reply::Respond(refusal),
                _ => return Reply::Respond(Response::text(426, "upgrade\n")),
            },
            "/big" => return Reply::Respond(Response::text(200, "x".repeat(100_000))),
            _ => {
                let body = format!("hello over {}", if tls { "tls" } else { "plain" });
                return Reply::Respond(Response::text(200, body));
            }
        };
        Reply::Hold(hold)
    }

    fn closed(&mut self, conn: ConnId, reason: CloseReason, _cx: &mut Cx<'_, ()>) {
        self.log.push(Ev::Closed(conn, reason));
    }

    fn ws_message(&mut self, conn: ConnId, msg: altsock::WsMessage, cx: &mut Cx<'_, ()>) {
        let _ = cx.ws_send(conn, &msg);
    }
}

struct Server {
    plain: SocketAddr,
    tls: SocketAddr,
    handle: Handle<()>,
    log: Log<Ev>,
    cert: TestCert,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    fn start(configure: impl FnOnce(Builder) -> Builder) -> Server {
        let cert = TestCert::new("altsock test");
        let log = Log::default();
        let builder = Engine::builder()
            .listen("127.0.0.1:0")
            .listen_tls("127.0.0.1:0", cert.server_config())
            .poll_interval(Duration::from_millis(10))
            .keepalive_interval(Duration::from_millis(100));
        let engine = configure(builder)
            .build(Holder { log: log.clone() })
            .expect("engine builds");
        let (plain, tls) = (engine.local_addr(), engine.tls_local_addr().expect("tls"));
        let handle = engine.handle();
        let thread = Some(std::thread::spawn(move || engine.run()));
        Server {
            plain,
            tls,
            handle,
            log,
            cert,
            thread,
        }
    }

    fn connect(&self) -> TlsClient {
        TlsClient::connect(self.tls, self.cert.client_config())
    }

    /// The connection of the request for `target`, once it arrived.
    fn conn_of(&self, target: &str) -> ConnId {
        self.log.wait_for(target, |e| match e {
            Ev::Request(id, t, _) if t == target => Some(*id),
            _ => None,
        })
    }

    fn closed_reason(&self, conn: ConnId) -> CloseReason {
        self.log.wait_for("close", |e| match e {
            Ev::Closed(id, reason) if *id == conn => Some(*reason),
            _ => None,
        })
    }

    fn closes(&self, reason: CloseReason) -> u64 {
        let metrics = self.handle.metrics();
        metrics
            .closed
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

#[test]
fn one_engine_serves_plain_and_tls_with_keep_alive() {
    let server = Server::start(|b| b);
    let mut tls = server.connect();
    for _ in 0..3 {
        tls.send(&get("/"));
        let (status, _, body) = tls.read_response();
        assert_eq!((status, body.as_str()), (200, "hello over tls"));
    }
    let plain = util::request(server.plain, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(plain.text(), "hello over plain");
    // A large answer crosses many records and socket writes.
    tls.send(&get("/big"));
    let (status, _, body) = tls.read_response();
    assert_eq!((status, body.len()), (200, 100_000));
    assert!(body.bytes().all(|b| b == b'x'));
}

#[test]
fn every_framing_pushes_and_keeps_alive_over_tls() {
    let server = Server::start(|b| b);
    let cases: [(&str, &str, &str); 4] = [
        ("/sse", ":\n", "data: hi\n\n"),
        ("/chunked", "1\r\n\n\r\n", "hi"),
        ("/raw", "\n", "hi"),
        ("/multipart", " ", "hi"),
    ];
    for (path, keepalive, message) in cases {
        let mut client = server.connect();
        client.send(&get(path));
        let head = client.read_through("\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {head}");
        client.read_through(keepalive);
        let conn = server.conn_of(path);
        assert_eq!(server.handle.push(conn, Message::data("hi")).wait(), Ok(()));
        client.read_through(message);
        client.read_through(keepalive);
    }
}

/// A keepalive on a held TLS stream is one record of the smallest size: a
/// TLS 1.3 record of the 2-byte SSE comment (5 header + 2 + 1 type + 16 tag).
#[test]
fn a_keepalive_is_one_small_record() {
    let server = Server::start(|b| b);
    let mut client = server.connect();
    client.send(&get("/sse"));
    client.read_through("\r\n\r\n");
    // Past the head and any tickets: count the raw bytes of the next keepalives.
    client.read_through(":\n");
    let before = server.handle.metrics().bytes_out;
    let keepalives = server.handle.metrics().keepalives;
    client.read_through(":\n");
    client.read_through(":\n");
    wait_for("two keepalives counted", || {
        server.handle.metrics().keepalives >= keepalives + 2
    });
    let metrics = server.handle.metrics();
    let per_keepalive = (metrics.bytes_out - before) / (metrics.keepalives - keepalives);
    assert_eq!(per_keepalive, 24, "bytes on the wire per keepalive");
}

#[test]
fn long_poll_answers_and_times_out_over_tls() {
    let server = Server::start(|b| b);
    let mut client = server.connect();
    client.send(&get("/longpoll"));
    let conn = server.conn_of("/longpoll");
    assert_eq!(
        server.handle.push(conn, Message::data("news")).wait(),
        Ok(())
    );
    let (status, _, body) = client.read_response();
    assert_eq!((status, body.as_str()), (200, "news"));
    // Kept alive: the next long-poll times out with its empty answer.
    client.send(&get("/longpoll"));
    let (status, _, _) = client.read_response();
    assert!(status == 204 || status == 200, "timeout answer {status}");
}

#[test]
fn limits_hold_over_tls() {
    let server = Server::start(|b| b);
    let mut client = server.connect();
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    client.send(huge.as_bytes());
    let (status, _, _) = client.read_response();
    assert!((400..500).contains(&status), "status {status}");
    let (_, end) = client.read_to_end();
    assert_eq!(end, TlsEnd::CloseNotify, "a clean TLS close after the 4xx");
    let mut bad = server.connect();
    bad.send(b"NOT HTTP\r\n\r\n");
    let (status, _, _) = bad.read_response();
    assert_eq!(status, 400);
}

#[test]
fn header_timeout_closes_a_slow_request_and_a_stalled_handshake() {
    let server = Server::start(|b| b.header_timeout(Duration::from_millis(200)));
    // A client that opens TCP and stalls in the handshake is closed, unanswered.
    let mut stalled = Client::connect(server.tls);
    stalled.send(&[0x16, 0x03, 0x01]); // the first bytes of a record, no more
    let rest = stalled.read_to_close();
    assert!(rest.is_empty(), "nothing is sent to a stalled handshake");
    wait_for("header timeout counted", || {
        server.closes(CloseReason::HeaderTimeout) == 1
    });
    // After the handshake, a request never finished gets 408 like plain HTTP.
    let mut slow = server.connect();
    slow.send(b"GET / HTTP/1.1\r\n");
    let (status, _, _) = slow.read_response();
    assert_eq!(status, 408);
}

#[test]
fn a_malformed_client_hello_gets_an_alert_a_close_and_a_metric() {
    let server = Server::start(|b| b);
    let mut client = Client::connect(server.tls);
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let answer = client.read_to_close();
    let bytes = answer.as_bytes();
    assert_eq!(bytes.first(), Some(&0x15), "a TLS alert record: {bytes:?}");
    assert_eq!(bytes.len(), 7, "one plaintext alert record: {bytes:?}");
    wait_for("tls_error counted", || {
        server.closes(CloseReason::TlsError) == 1
    });
    let text = altsock::MetricsSnapshot::to_prometheus(&server.handle.metrics());
    assert!(text.contains("tls_error"), "{text}");
    // Garbage shaped like a handshake record gets an alert too.
    let mut client = Client::connect(server.tls);
    client.send(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0xff]);
    let answer = client.read_to_close();
    assert_eq!(answer.as_bytes().first(), Some(&0x15));
    wait_for("second tls_error", || {
        server.closes(CloseReason::TlsError) == 2
    });
}

#[test]
fn a_slow_consumer_over_tls_is_closed() {
    let server = Server::start(|b| b.max_pending_output(64 * 1024));
    let mut client = server.connect();
    client.send(&get("/sse"));
    client.read_through("\r\n\r\n");
    let conn = server.conn_of("/sse");
    // The client stops reading; pushes pile up beyond the kernel's buffers.
    let chunk = "y".repeat(16 * 1024);
    let started = Instant::now();
    while server
        .handle
        .push(conn, Message::data(chunk.clone()))
        .wait()
        .is_ok()
    {
        assert!(started.elapsed() < Duration::from_secs(20), "never closed");
    }
    assert_eq!(server.closed_reason(conn), CloseReason::SlowConsumer);
}

#[test]
fn shutdown_ends_tls_streams_with_close_notify() {
    let mut server = Server::start(|b| b);
    let mut held = server.connect();
    held.send(&get("/sse"));
    held.read_through("\r\n\r\n");
    let mut idle = server.connect();
    idle.send(&get("/"));
    idle.read_response();
    server.handle.shutdown();
    let (_, end) = held.read_to_end();
    assert_eq!(end, TlsEnd::CloseNotify, "the held stream");
    let (_, end) = idle.read_to_end();
    assert_eq!(end, TlsEnd::CloseNotify, "the idle keep-alive connection");
    if let Some(thread) = server.thread.take() {
        thread.join().expect("engine").expect("run");
    }
}

#[test]
fn the_peer_closing_with_close_notify_is_a_peer_close() {
    let server = Server::start(|b| b);
    let mut client = server.connect();
    client.send(&get("/sse"));
    client.read_through("\r\n\r\n");
    let conn = server.conn_of("/sse");
    client.tls.send_close_notify();
    client
        .tls
        .write_tls(&mut client.sock)
        .expect("send close_notify");
    assert_eq!(server.closed_reason(conn), CloseReason::PeerClosed);
}

// ---- real clients -----------------------------------------------------------

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        || Command::new(tool)
            .arg("version")
            .stdout(Stdio::null())
            .status()
            .is_ok()
}

#[test]
fn curl_with_cacert_gets_an_answer_and_a_stream() {
    assert!(have("curl"), "curl is missing (scripts/test installs it)");
    let server = Server::start(|b| b);
    let dir = util::temp_dir("tls-curl");
    let (cert, _) = server.cert.write_to(&dir);
    let url = format!("https://localhost:{}/", server.tls.port());
    let resolve = format!("localhost:{}:127.0.0.1", server.tls.port());
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert)
        .args(["--resolve", &resolve, &url])
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello over tls");
    // A held SSE stream: curl prints the pushed event, then ends at --max-time.
    let mut child = Command::new("curl")
        .args(["-sSN", "--cacert"])
        .arg(&cert)
        .args([
            "--resolve",
            &resolve,
            "--max-time",
            "5",
            &format!("{url}sse"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run curl");
    let conn = server.conn_of("/sse");
    assert_eq!(
        server.handle.push(conn, Message::data("pushed")).wait(),
        Ok(())
    );
    let mut stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    while tls_support::find(&seen, b"data: pushed\n\n").is_none() {
        let n = stdout.read(&mut chunk).expect("read curl");
        assert!(
            n > 0,
            "curl ended early: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&chunk[..n]);
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn openssl_s_client_verifies_and_talks_http() {
    assert!(
        have("openssl"),
        "openssl is missing (scripts/test installs it)"
    );
    let server = Server::start(|b| b);
    let dir = util::temp_dir("tls-openssl");
    let (cert, _) = server.cert.write_to(&dir);
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &server.tls.to_string()])
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(&cert)
        .args(["-ign_eof", "-quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("write");
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        if let Some(_status) = child.try_wait().expect("wait") {
            break child.wait_with_output().expect("output");
        }
        assert!(Instant::now() < deadline, "openssl s_client did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.starts_with("HTTP/1.1 200 OK\r\n"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.ends_with("hello over tls"), "{stdout}");
    assert!(!stderr.contains("verify error"), "{stderr}");
}

/// Records cut anywhere between reads (here: a few bytes per TCP segment, the
/// handshake included) are put back together: the engine keeps a cut record
/// with the session until the rest arrives. Two pipelined requests in one
/// record are answered in order.
#[test]
fn records_cut_into_pieces_and_pipelined_requests() {
    let server = Server::start(|b| b);
    let name = altsock::rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls =
        altsock::rustls::ClientConnection::new(server.cert.client_config(), name).expect("client");
    let mut sock = std::net::TcpStream::connect(server.tls).expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(5);
    let dribble = |tls: &mut altsock::rustls::ClientConnection, sock: &mut std::net::TcpStream| {
        let mut records = Vec::new();
        while tls.wants_write() {
            tls.write_tls(&mut records).expect("records");
        }
        for piece in records.chunks(7) {
            sock.write_all(piece).expect("piece");
        }
    };
    tls.writer()
        .write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("requests");
    let mut plain = Vec::new();
    while tls_support::find(&plain, b"hello over tls").map_or(true, |i| {
        tls_support::find(&plain[i + 1..], b"hello over tls").is_none()
    }) {
        assert!(Instant::now() < deadline, "no two answers: {plain:?}");
        dribble(&mut tls, &mut sock);
        match tls.read_tls(&mut sock) {
            Ok(0) => panic!("closed"),
            Ok(_) => {
                tls.process_new_packets().expect("records");
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("{e}"),
        }
        let mut chunk = [0u8; 4096];
        while let Ok(n) = tls.reader().read(&mut chunk) {
            if n == 0 {
                break;
            }
            plain.extend_from_slice(&chunk[..n]);
        }
    }
    let targets: Vec<String> = server
        .log
        .all()
        .into_iter()
        .filter_map(|e| match e {
            Ev::Request(_, t, true) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(targets, ["/a", "/b"], "answered in order, both over TLS");
}

/// WebSocket over TLS (`wss:`): the upgrade, a masked text frame in, its echo
/// out, and a push, all as records.
#[test]
fn websocket_over_tls_echoes_and_pushes() {
    // Pings every 5 s: this client never answers them.
    let server = Server::start(|b| b.keepalive_interval(Duration::from_secs(5)));
    let mut client = server.connect();
    client.send(
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    let head = client.read_through("\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    // A masked text frame "Hello" (RFC 6455 5.7); the echo comes unmasked.
    client.send(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    let echo = client.read_through("Hello");
    assert!(echo.ends_with("\u{5}Hello"), "{echo:?}");
    let conn = server.conn_of("/ws");
    assert_eq!(
        server.handle.push(conn, Message::data("news")).wait(),
        Ok(())
    );
    client.read_through("news");
}
