//! WebSocket held connections over real sockets: the upgrade through the
//! request parser (and its refusals), echo of text, binary and fragmented
//! messages through `Router::ws_message`, frames sent right behind the
//! upgrade, push and broadcast to a WebSocket exactly as to an SSE stream,
//! ping→pong, the close handshake both ways, every bad-input path of RFC 6455
//! with its close code (UTF-8 failing fast), the size cap, keepalive pings
//! with a missing pong counting as a silent peer (millisecond intervals), a
//! slow consumer, and close 1001 on graceful shutdown.

mod util;

use std::time::Duration;

use altsock::ws::{check_upgrade, CloseCode, Opcode, Upgrade};
use altsock::{
    Builder, CloseReason, ConnId, Cx, Engine, Hold, Message, Reply, Request, Response, Router,
    WsMessage,
};
use util::ws::{expect_close, masked, next_frame, next_non_ping, open, send, upgrade_request};
use util::{spawn, Client, Log, TestServer};

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Open(ConnId, String),
    Got(ConnId, WsMessage),
    Closed(ConnId, CloseReason),
}

/// Upgrades `/ws` (and `/ws?...`), holds SSE on `/sse`; echoes what a
/// WebSocket sends, except `policy`, which it closes with 1008.
#[derive(Clone, Default)]
struct WsRouter {
    log: Log<Ev>,
}

impl Router for WsRouter {
    type Msg = ();

    fn request(&mut self, req: Request, _cx: &mut Cx<'_, ()>) -> Reply {
        let path = req.path().to_string();
        let reply = match (path.as_str(), check_upgrade(&req, &["chat"])) {
            ("/sse", _) => Reply::Hold(Hold::sse()),
            ("/ws", Upgrade::Accept(accepted)) => {
                Reply::Hold(Hold::websocket(accepted).with_initial(Message::data("welcome")))
            }
            ("/ws", Upgrade::Refuse(refusal)) => return Reply::Respond(refusal),
            _ => return Reply::Respond(Response::text(404, "no\n")),
        };
        self.log.push(Ev::Open(req.conn, path));
        reply
    }

    fn ws_message(&mut self, conn: ConnId, msg: WsMessage, cx: &mut Cx<'_, ()>) {
        self.log.push(Ev::Got(conn, msg.clone()));
        if msg == WsMessage::Text("policy".into()) {
            cx.ws_close(conn, CloseCode::POLICY_VIOLATION, "not here");
        } else if msg == WsMessage::Text("no status".into()) {
            cx.ws_close(conn, CloseCode(1005), "");
        } else {
            cx.ws_send(conn, &msg).expect("the sender is open");
        }
    }

    fn closed(&mut self, conn: ConnId, reason: CloseReason, _cx: &mut Cx<'_, ()>) {
        self.log.push(Ev::Closed(conn, reason));
    }
}

fn start(builder: Builder) -> (TestServer<()>, Log<Ev>) {
    let router = WsRouter::default();
    let log = router.log.clone();
    (spawn(builder, router), log)
}

fn quick() -> Builder {
    Engine::builder().max_ws_message(4096)
}

/// Opens `/ws` and reads the welcome frame; returns the client and its id.
fn connect(server: &TestServer<()>, log: &Log<Ev>) -> (Client, ConnId) {
    let opened = |log: &Log<Ev>| -> Vec<ConnId> {
        let all = log.all().into_iter();
        all.filter_map(|e| match e {
            Ev::Open(id, _) => Some(id),
            _ => None,
        })
        .collect()
    };
    let before = opened(log).len();
    let mut client = open(server.addr, "/ws");
    let welcome = next_frame(&mut client);
    assert_eq!((welcome.opcode, welcome.text()), (0x1, "welcome".into()));
    util::wait_for("the open", || opened(log).len() > before);
    (client, opened(log)[before])
}

fn closed_reason(log: &Log<Ev>, conn: ConnId) -> CloseReason {
    log.wait_for("the close", |e| match e {
        Ev::Closed(c, reason) if *c == conn => Some(*reason),
        _ => None,
    })
}

#[test]
fn echoes_text_binary_and_fragmented_messages() {
    let (server, log) = start(quick());
    let (mut client, id) = connect(&server, &log);
    send(&mut client, Opcode::Text, "héllo".as_bytes());
    let frame = next_frame(&mut client);
    assert_eq!(
        (frame.fin, frame.opcode, frame.text()),
        (true, 0x1, "héllo".into())
    );
    // An empty binary message stays binary (not text because it is UTF-8).
    send(&mut client, Opcode::Binary, b"");
    assert_eq!(next_frame(&mut client).opcode, 0x2);
    send(&mut client, Opcode::Binary, &[0, 0xff, 7]);
    assert_eq!(next_frame(&mut client).payload, vec![0, 0xff, 7]);
    // Three fragments with a ping between them, written a byte at a time.
    let mut wire = masked(false, Opcode::Text, b"one ");
    wire.extend(masked(false, Opcode::Continuation, b"two "));
    wire.extend(masked(true, Opcode::Ping, b"mid"));
    wire.extend(masked(true, Opcode::Continuation, b"three"));
    for byte in wire {
        client.send(&[byte]);
    }
    let pong = next_frame(&mut client);
    assert_eq!((pong.opcode, pong.text()), (0xA, "mid".into()));
    assert_eq!(next_frame(&mut client).text(), "one two three");
    let got: Vec<_> = log
        .all()
        .into_iter()
        .filter(|e| matches!(e, Ev::Got(..)))
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[3], Ev::Got(id, WsMessage::Text("one two three".into())));
}

#[test]
fn frames_right_behind_the_upgrade_request_are_read() {
    let (server, _log) = start(quick());
    let mut client = Client::connect(server.addr);
    let mut wire = upgrade_request("/ws", "").into_bytes();
    wire.extend(masked(true, Opcode::Text, b"eager"));
    client.send(&wire);
    let head = client.read_through("\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(next_frame(&mut client).text(), "welcome");
    assert_eq!(next_frame(&mut client).text(), "eager");
}

#[test]
fn upgrades_asked_wrongly_are_refused_and_subprotocols_chosen() {
    let (server, _log) = start(quick());
    let wrong_version = upgrade_request("/ws", "").replace("Version: 13", "Version: 8");
    let resp = util::request(server.addr, &wrong_version);
    assert_eq!(resp.status, 426);
    assert_eq!(resp.header("sec-websocket-version"), Some("13"));
    let no_key = upgrade_request("/ws", "").replace("Sec-WebSocket-Key", "X-Key");
    assert_eq!(util::request(server.addr, &no_key).status, 400);
    let mut client = Client::connect(server.addr);
    client.send(upgrade_request("/ws", "Sec-WebSocket-Protocol: x, chat\r\n").as_bytes());
    let head = client.read_through("\r\n\r\n");
    assert!(head.contains("Sec-WebSocket-Protocol: chat\r\n"), "{head}");
}

#[test]
fn push_and_broadcast_reach_websockets_as_sse_streams() {
    let (server, log) = start(quick());
    let (mut ws, ws_id) = connect(&server, &log);
    let mut sse = Client::connect(server.addr);
    sse.send(b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n");
    sse.read_through("\r\n\r\n");
    let sse_id = log.wait_for("the SSE open", |e| match e {
        Ev::Open(id, p) if p == "/sse" => Some(*id),
        _ => None,
    });
    let reached = server
        .handle
        .broadcast(vec![ws_id, sse_id], Message::data("to all").with_id("7"))
        .wait();
    assert_eq!(reached, 2);
    assert_eq!(next_frame(&mut ws).text(), "to all");
    sse.read_through("id: 7\ndata: to all\n\n");
    server
        .handle
        .push(ws_id, Message::data(vec![0xfe, 0xff]))
        .wait()
        .expect("pushed");
    let binary = next_frame(&mut ws);
    assert_eq!((binary.opcode, binary.payload), (0x2, vec![0xfe, 0xff]));
}

#[test]
fn close_handshake_both_ways() {
    let (server, log) = start(quick());
    // The client closes: its code comes back, then the server's FIN.
    let (mut client, id) = connect(&server, &log);
    let mut close = 4000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    send(&mut client, Opcode::Close, &close);
    expect_close(&mut client, 4000);
    drop(client);
    assert_eq!(closed_reason(&log, id), CloseReason::PeerClosed);
    // An empty close is answered with 1000.
    let (mut client, _) = connect(&server, &log);
    send(&mut client, Opcode::Close, b"");
    expect_close(&mut client, 1000);
    // The router closes with a code of its choosing.
    let (mut client, id) = connect(&server, &log);
    send(&mut client, Opcode::Text, b"policy");
    let frame = expect_close(&mut client, 1008);
    assert_eq!(&frame.payload[2..], b"not here");
    drop(client);
    assert_eq!(closed_reason(&log, id), CloseReason::Closed);
    // A code no endpoint may send (1005) goes out as 1011.
    let (mut client, _) = connect(&server, &log);
    send(&mut client, Opcode::Text, b"no status");
    expect_close(&mut client, 1011);
}

/// Each bad input, the close code it must get, and that the router heard
/// nothing of it.
#[test]
fn bad_input_fails_the_connection_with_the_right_code() {
    let (server, log) = start(quick());
    let mut rsv = masked(true, Opcode::Text, b"x");
    rsv[0] |= 0x40;
    let mut reserved_opcode = masked(true, Opcode::Text, b"x");
    reserved_opcode[0] = 0x80 | 0x3;
    let mut reserved_control = masked(true, Opcode::Ping, b"");
    reserved_control[0] = 0x80 | 0xB;
    let mut unmasked = vec![0x81, 0x01, b'x'];
    unmasked.truncate(3);
    let close_of = |code: u16| masked(true, Opcode::Close, &code.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("rsv bits", rsv, 1002),
        ("reserved opcode 3", reserved_opcode, 1002),
        ("reserved opcode 11", reserved_control, 1002),
        ("unmasked frame", unmasked, 1002),
        (
            "ping of 126 bytes",
            masked(true, Opcode::Ping, &[b'p'; 126]),
            1002,
        ),
        ("fragmented ping", masked(false, Opcode::Ping, b"p"), 1002),
        ("close of one byte", masked(true, Opcode::Close, &[3]), 1002),
        ("close code 1005", close_of(1005), 1002),
        ("close code 999", close_of(999), 1002),
        ("close code 5000", close_of(5000), 1002),
        (
            "close reason not UTF-8",
            masked(true, Opcode::Close, &[3, 232, 0xff]),
            1007,
        ),
        (
            "continuation first",
            masked(true, Opcode::Continuation, b"x"),
            1002,
        ),
        (
            "text not UTF-8",
            masked(true, Opcode::Text, b"ok \xc3\x28"),
            1007,
        ),
        (
            "message over the cap",
            masked(true, Opcode::Binary, &[0; 5000]),
            1009,
        ),
    ];
    for (what, wire, code) in cases {
        let (mut client, id) = connect(&server, &log);
        client.send(&wire);
        let frame = next_non_ping(&mut client);
        assert_eq!(frame.close_code(), Some(code), "{what}: {frame:?}");
        client.read_to_close();
        drop(client); // our FIN ends the server's linger at once
        assert_eq!(closed_reason(&log, id), CloseReason::BadRequest, "{what}");
        let heard = log
            .all()
            .into_iter()
            .any(|e| matches!(e, Ev::Got(c, _) if c == id));
        assert!(!heard, "{what}: the router heard it");
    }
}

/// Invalid UTF-8 fails the message as soon as it arrives: the first
/// fragment of a text message that is never finished is enough.
#[test]
fn invalid_utf8_fails_fast_before_the_message_ends() {
    let (server, log) = start(quick());
    let (mut client, _) = connect(&server, &log);
    client.send(&masked(false, Opcode::Text, b"fine so far \xed\xa0\x80"));
    expect_close(&mut client, 1007);
    // A frame head promising more than the cap fails before its payload.
    let (mut client, _) = connect(&server, &log);
    let frame = masked(true, Opcode::Binary, &[0; 5000]);
    client.send(&frame[..14]);
    expect_close(&mut client, 1009);
}

/// Pings every 20 ms: a client answering each stays open; one that does
/// not is closed as a silent peer at the next ping's turn.
#[test]
fn keepalive_pings_and_a_missing_pong_means_a_silent_peer() {
    let builder = quick()
        .poll_interval(Duration::from_millis(5))
        .keepalive_interval(Duration::from_millis(20));
    let (server, log) = start(builder);
    let (mut lively, lively_id) = connect(&server, &log);
    let (mut silent, silent_id) = connect(&server, &log);
    let silent_closed = || {
        log.all()
            .iter()
            .any(|e| matches!(e, Ev::Closed(c, _) if *c == silent_id))
    };
    let mut pings = 0;
    while pings < 5 || !silent_closed() {
        let ping = next_frame(&mut lively);
        assert_eq!((ping.opcode, ping.payload.len()), (0x9, 0), "{ping:?}");
        send(&mut lively, Opcode::Pong, b"");
        pings += 1;
    }
    assert_eq!(closed_reason(&log, silent_id), CloseReason::SilentPeer);
    assert_eq!(next_frame(&mut silent).opcode, 0x9, "it was pinged first");
    let lively_closed = log
        .all()
        .contains(&Ev::Closed(lively_id, CloseReason::SilentPeer));
    assert!(!lively_closed, "the answering client was closed");
    assert!(server.handle.metrics().closed_by(CloseReason::SilentPeer) >= 1);
}

#[test]
fn a_slow_consumer_is_closed() {
    let (server, log) = start(quick().max_pending_output(64 * 1024));
    let mut client = Client::connect_small_rcvbuf(server.addr, 4096);
    client.send(upgrade_request("/ws", "").as_bytes());
    let id = log.wait_for("the open", |e| match e {
        Ev::Open(id, _) => Some(*id),
        _ => None,
    });
    let chunk = Message::data(vec![b'x'; 16 * 1024]);
    let mut pushes = 0;
    while server.handle.push(id, chunk.clone()).wait().is_ok() {
        pushes += 1;
        assert!(pushes < 10_000, "never closed");
    }
    assert_eq!(closed_reason(&log, id), CloseReason::SlowConsumer);
}

#[test]
fn graceful_shutdown_sends_going_away() {
    let (mut server, log) = start(quick());
    let (mut client, id) = connect(&server, &log);
    server.handle.shutdown();
    let frame = next_non_ping(&mut client);
    assert_eq!(frame.close_code(), Some(1001), "{frame:?}");
    // The client answers as a browser would; the server has already ended.
    send(&mut client, Opcode::Close, &1001u16.to_be_bytes());
    client.read_to_close();
    server.stop().expect("stops cleanly");
    assert_eq!(closed_reason(&log, id), CloseReason::Shutdown);
}
