//! The SIP relay end to end with real peers: `sipp` (Debian `sip-tester`)
//! sends MESSAGEs over UDP and TCP to an altsock user whose test client holds
//! the `/jchat` pipe and answers each `sip` event by `POST /sip/reply`; the
//! failure answers (480 offline, 408 no reply, 404, 400) and retransmissions
//! after the final response; OPTIONS and REGISTER; and the reverse
//! direction, `POST /sip/send` to a sipp UAS with `sipresp` on the pipe.

mod presence_support;
mod util;

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use presence_support::*;
use serde_json::json;
use util::{TestServer, WAIT};

use altsock::server::sip::SipConfig;
use altsock::server::{Job, ServerConfig, ServerRouter};
use altsock::Engine;

/// A server with SIP on a free loopback port (UDP and TCP); `reply_timeout`
/// is the time users have to answer.
fn sip_server(reply_timeout: Duration) -> (TestServer<Job>, SocketAddr) {
    let config = ServerConfig {
        db_path: util::temp_dir("sip-db").join("altsock.db"),
        node_id: "test-node".into(),
        sip: SipConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            domain: Some("altsock.test".into()),
            t1: Duration::from_millis(50),
            t2: Duration::from_millis(400),
            reply_timeout,
            ..SipConfig::default()
        },
        ..ServerConfig::default()
    };
    let router = ServerRouter::new(config).expect("router builds");
    let sip = router.sip.local_addr().expect("SIP is on");
    let builder = Engine::builder()
        .poll_interval(Duration::from_millis(20))
        .keepalive_interval(Duration::from_millis(500));
    let server = util::spawn(builder, router);
    server.handle.send(ServerRouter::start_job());
    (server, sip)
}

/// A UDP socket on a free loopback port whose reads give up after `WAIT`.
fn udp_client() -> UdpSocket {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(WAIT)).unwrap();
    udp
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sip")
        .join(name)
}

/// The `sipp` command for `scenario` against `sip`, run in `dir`.
fn sipp(dir: &Path, sip: SocketAddr, name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("sipp");
    cmd.current_dir(dir)
        .arg(sip.to_string())
        .arg("-sf")
        .arg(scenario(name))
        .args([
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-timeout",
            "60s",
            "-timeout_error",
        ])
        .args(["-trace_err", "-trace_screen"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Runs sipp to the end; panics (with its error log) when it fails.
fn run_sipp(dir: &Path, sip: SocketAddr, name: &str, args: &[&str]) -> Output {
    let out = sipp(dir, sip, name, args)
        .output()
        .expect("sipp runs (Debian package sip-tester; scripts/test installs it)");
    if !out.status.success() {
        panic!(
            "sipp {name} {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            logs(dir, "_errors.log")
        );
    }
    out
}

/// The contents of the files in `dir` whose names end with `suffix`.
fn logs(dir: &Path, suffix: &str) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().ends_with(suffix) {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    text
}

/// The response times sipp traced (`-trace_rtt`), sorted, in ms.
fn response_times(dir: &Path) -> Vec<f64> {
    let mut times: Vec<f64> = logs(dir, "_rtt.csv")
        .lines()
        .filter_map(|l| l.split(';').nth(1)?.trim().parse().ok())
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times
}

/// The `q` quantile of sorted `times`.
fn quantile(times: &[f64], q: f64) -> f64 {
    let at = ((times.len() as f64) * q).ceil() as usize;
    times.get(at.saturating_sub(1)).copied().unwrap_or(f64::NAN)
}

/// Answers `count` `sip` events on `pipe` with `200` by `/sip/reply`;
/// returns the pipe and the events.
fn answer_all(
    addr: SocketAddr,
    sid: String,
    mut pipe: Pipe,
    count: usize,
) -> std::thread::JoinHandle<(Pipe, Vec<Ev>)> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while seen.len() < count {
            let ev = pipe.next_of("sip");
            let tx = ev.data["tx"].as_str().expect("tx").to_string();
            let fields = json!({ "tx": tx, "status": 200, "reason": "OK" });
            let r = act(addr, "/sip/reply", "alice", &sid, fields);
            assert_eq!(r.status, 200, "{}", r.text());
            seen.push(ev);
        }
        (pipe, seen)
    })
}

/// 200 MESSAGEs over `transport` (`u1` or `t1`), each answered by the test
/// client through `/sip/reply`.
fn two_hundred_messages(transport: &str) {
    let (server, sip) = sip_server(Duration::from_secs(10));
    let addr = server.addr;
    let sid = user(addr, "alice");
    let pipe = Pipe::open(addr, "alice", &sid, false);
    let answering = answer_all(addr, sid, pipe, 200);
    let dir = util::temp_dir(&format!("sipp-{transport}"));
    let args = [
        "-s",
        "alice",
        "-m",
        "200",
        "-r",
        "100",
        "-l",
        "20",
        "-t",
        transport,
        "-p",
        "0",
        "-trace_rtt",
        "-rtt_freq",
        "1",
    ];
    run_sipp(&dir, sip, "message_200.xml", &args);
    let (mut pipe, events) = answering.join().expect("the answering client");
    assert_eq!(events.len(), 200);
    let calls: HashSet<&str> = events
        .iter()
        .map(|e| e.data["call_id"].as_str().unwrap())
        .collect();
    let txs: HashSet<&str> = events
        .iter()
        .map(|e| e.data["tx"].as_str().unwrap())
        .collect();
    assert_eq!((calls.len(), txs.len()), (200, 200), "no duplicates");
    let first = &events[0].data;
    assert_eq!(first["method"], "MESSAGE");
    assert_eq!(first["to"], format!("sip:alice@{sip}"));
    assert!(first["from"]
        .as_str()
        .unwrap()
        .starts_with("sip:sipp@127.0.0.1"));
    assert_eq!(first["content_type"], "text/plain;charset=UTF-8");
    assert!(
        first["body"].as_str().unwrap().starts_with("hello "),
        "{first}"
    );
    assert!(first["raw"]
        .as_str()
        .unwrap()
        .starts_with("MESSAGE sip:alice@"));
    pipe.quiet(Duration::from_millis(300));
    let times = response_times(&dir);
    assert_eq!(times.len(), 200, "sipp traced every response time");
    eprintln!(
        "sip {transport}: 200/200 MESSAGEs answered through the pipe; response time \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (sipp -trace_rtt, {})",
        quantile(&times, 0.5),
        quantile(&times, 0.99),
        quantile(&times, 1.0),
        dir.display()
    );
}

#[test]
fn two_hundred_messages_over_udp_reach_the_pipe_once_each() {
    two_hundred_messages("u1");
}

#[test]
fn two_hundred_messages_over_tcp_reach_the_pipe_once_each() {
    two_hundred_messages("t1");
}

#[test]
fn an_offline_user_gets_480_and_retransmissions_the_same_answer() {
    let (server, sip) = sip_server(Duration::from_secs(10));
    register(server.addr, "bob");
    let dir = util::temp_dir("sipp-480");
    for transport in ["u1", "t1"] {
        run_sipp(
            &dir,
            sip,
            "message_480.xml",
            &["-s", "bob", "-m", "1", "-t", transport, "-p", "0"],
        );
        let args = ["-s", "bob", "-m", "3", "-t", transport, "-p", "0"];
        run_sipp(&dir, sip, "message_retransmit.xml", &args);
    }
    // Byte for byte: the retransmission gets the very response (same To tag).
    let udp = udp_client();
    let request = raw_message(&udp, "bob", "z9hG4bKsame", "hi");
    let first = exchange(&udp, sip, &request);
    assert!(first.starts_with("SIP/2.0 480 "), "{first}");
    assert!(first.contains(";received=127.0.0.1"), "{first}");
    assert_eq!(exchange(&udp, sip, &request), first);
}

#[test]
fn no_reply_in_time_gets_408_and_a_late_reply_is_refused() {
    let (server, sip) = sip_server(Duration::from_millis(300));
    let addr = server.addr;
    let sid = user(addr, "carol");
    let mut pipe = Pipe::open(addr, "carol", &sid, false);
    let dir = util::temp_dir("sipp-408");
    run_sipp(
        &dir,
        sip,
        "message_408.xml",
        &["-s", "carol", "-m", "1", "-t", "u1", "-p", "0"],
    );
    let ev = pipe.next_of("sip");
    let fields = json!({ "tx": ev.data["tx"], "status": 200 });
    let late = act(addr, "/sip/reply", "carol", &sid, fields);
    assert!(
        matches!(late.status, 404 | 409),
        "{} {}",
        late.status,
        late.text()
    );
}

/// A MESSAGE to `user` from `udp`'s address with branch `branch`.
fn raw_message(udp: &UdpSocket, user: &str, branch: &str, body: &str) -> String {
    let me = udp.local_addr().unwrap();
    format!(
        "MESSAGE sip:{user}@altsock.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:t@{me}>;tag=t1\r\nTo: <sip:{user}@altsock.test>\r\n\
         Call-ID: {branch}@t\r\nCSeq: 7 MESSAGE\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sends `request` and reads one datagram back.
fn exchange(udp: &UdpSocket, sip: SocketAddr, request: &str) -> String {
    udp.send_to(request.as_bytes(), sip).unwrap();
    let mut buf = [0u8; 65_536];
    let (n, _) = udp.recv_from(&mut buf).expect("a response");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn unknown_users_get_404_malformed_requests_400_and_big_udp_messages_513() {
    let (_server, sip) = sip_server(Duration::from_secs(10));
    let udp = udp_client();
    let unknown = exchange(&udp, sip, &raw_message(&udp, "nobody", "z9hG4bKu1", "x"));
    assert!(
        unknown.starts_with("SIP/2.0 404 Not Found\r\n"),
        "{unknown}"
    );
    assert!(
        unknown.contains("To: <sip:nobody@altsock.test>;tag="),
        "{unknown}"
    );
    let bad =
        raw_message(&udp, "nobody", "z9hG4bKu2", "x").replace("CSeq: 7 MESSAGE", "CSeq: 7 INFO");
    let answer = exchange(&udp, sip, &bad);
    assert!(
        answer.starts_with("SIP/2.0 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Call-ID: z9hG4bKu2@t\r\n"), "{answer}");
    let big = raw_message(&udp, "nobody", "z9hG4bKu3", &"x".repeat(1300));
    let answer = exchange(&udp, sip, &big);
    assert!(answer.starts_with("SIP/2.0 513 "), "{answer}");
    let invite = raw_message(&udp, "nobody", "z9hG4bKu4", "")
        .replace("MESSAGE sip:", "INVITE sip:")
        .replace("7 MESSAGE", "7 INVITE");
    let answer = exchange(&udp, sip, &invite);
    assert!(answer.starts_with("SIP/2.0 405 "), "{answer}");
    assert!(answer.contains("\r\nAllow: MESSAGE"), "{answer}");
}

#[test]
fn options_to_the_server_get_200_at_once() {
    let (_server, sip) = sip_server(Duration::from_secs(10));
    let dir = util::temp_dir("sipp-options");
    run_sipp(
        &dir,
        sip,
        "options.xml",
        &["-m", "5", "-t", "u1", "-p", "0"],
    );
    run_sipp(
        &dir,
        sip,
        "options.xml",
        &["-m", "5", "-t", "t1", "-p", "0"],
    );
}

/// A free loopback UDP port for a sipp UAS (bound and released).
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a sipp UAS on `port` that answers one MESSAGE with 200; returns
/// once it has bound the port.
fn uas(dir: &Path, sip: SocketAddr, port: u16, transport: &str) -> Child {
    let text = port.to_string();
    let args = ["-m", "1", "-t", transport, "-p", text.as_str()];
    let child = sipp(dir, sip, "uas_message.xml", &args)
        .spawn()
        .expect("sipp runs");
    let at: SocketAddr = ([127, 0, 0, 1], port).into();
    util::wait_for("the sipp UAS to bind its port", || {
        if transport == "t1" {
            std::net::TcpListener::bind(at).is_err()
        } else {
            UdpSocket::bind(at).is_err()
        }
    });
    child
}

/// Waits for a sipp to exit 0.
fn finished(dir: &Path, mut child: Child) {
    let status = child.wait().expect("sipp exits");
    assert!(
        status.success(),
        "sipp UAS: {status}\n{}",
        logs(dir, "_errors.log")
    );
}

#[test]
fn send_reaches_a_sipp_uas_and_the_final_comes_back_as_sipresp() {
    let (server, sip) = sip_server(Duration::from_secs(10));
    let addr = server.addr;
    let sid = user(addr, "dave");
    let mut pipe = Pipe::open(addr, "dave", &sid, false);
    let dir = util::temp_dir("sipp-uas");
    for transport in ["udp", "tcp"] {
        let port = free_port();
        let child = uas(
            &dir,
            sip,
            port,
            if transport == "udp" { "u1" } else { "t1" },
        );
        let to = format!("sip:phone@127.0.0.1:{port};transport={transport}");
        let fields = json!({ "to": to, "body": "hello phone", "content_type": "text/plain" });
        let sent = act(addr, "/sip/send", "dave", &sid, fields);
        assert_eq!(sent.status, 202, "{}", sent.text());
        let tx = body(&sent)["tx"].as_str().expect("tx").to_string();
        let resp = pipe.next_of("sipresp");
        assert_eq!(resp.data["tx"], tx.as_str());
        assert_eq!(resp.data["status"], 200, "{:?}", resp.data);
        assert_eq!(resp.data["local"], false);
        finished(&dir, child);
    }
}

#[test]
fn a_registered_phone_is_reached_by_user_name() {
    let (server, sip) = sip_server(Duration::from_secs(10));
    let addr = server.addr;
    let sid = user(addr, "erin");
    let mut pipe = Pipe::open(addr, "erin", &sid, false);
    let dir = util::temp_dir("sipp-register");
    let port = free_port();
    let p = port.to_string();
    run_sipp(
        &dir,
        sip,
        "register.xml",
        &["-s", "desk", "-m", "1", "-t", "u1", "-p", &p],
    );
    let child = uas(&dir, sip, port, "u1");
    let sent = act(
        addr,
        "/sip/send",
        "erin",
        &sid,
        json!({ "to": "desk", "body": "ring" }),
    );
    assert_eq!(sent.status, 202, "{}", sent.text());
    assert_eq!(body(&sent)["to"], format!("sip:desk@127.0.0.1:{port}"));
    let resp = pipe.next_of("sipresp");
    assert_eq!(resp.data["status"], 200, "{:?}", resp.data);
    finished(&dir, child);
    let none = act(
        addr,
        "/sip/send",
        "erin",
        &sid,
        json!({ "to": "nobody", "body": "x" }),
    );
    assert_eq!(none.status, 404, "{}", none.text());
}

#[test]
fn sip_endpoints_check_the_session_the_origin_and_the_owner() {
    let (server, sip) = sip_server(Duration::from_secs(10));
    let addr = server.addr;
    let frank = user(addr, "frank");
    let grace = user(addr, "grace");
    let mut pipe = Pipe::open(addr, "frank", &frank, false);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        raw_message(&udp, "frank", "z9hG4bKo1", "hi").as_bytes(),
        sip,
    )
    .unwrap();
    let ev = pipe.next_of("sip");
    let tx = ev.data["tx"].clone();
    let no_session = post(addr, "/sip/reply", &json!({ "tx": tx, "status": 200 }));
    assert_eq!(no_session.status, 403);
    let not_owner = act(
        addr,
        "/sip/reply",
        "grace",
        &grace,
        json!({ "tx": tx, "status": 200 }),
    );
    assert_eq!(not_owner.status, 404);
    let cross = call(
        addr,
        "POST",
        &format!(
            "/sip/reply?me=frank&id={frank}&tx={}&status=200",
            tx.as_str().unwrap()
        ),
        "Origin: http://evil.example\r\n",
        "",
    );
    assert_eq!(cross.status, 403);
    let bad = act(
        addr,
        "/sip/reply",
        "frank",
        &frank,
        json!({ "tx": tx, "status": 99 }),
    );
    assert_eq!(bad.status, 400);
    let fields = json!({ "tx": tx, "status": 202, "reason": "Got it", "body": "ok" });
    let ok = act(addr, "/sip/reply", "frank", &frank, fields);
    assert_eq!(ok.status, 200, "{}", ok.text());
    udp.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("SIP/2.0 202 Got it\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
}

#[test]
fn retransmissions_while_the_user_decides_are_absorbed_then_get_the_final() {
    let (server, sip) = sip_server(Duration::from_secs(10));
    let addr = server.addr;
    let sid = user(addr, "hank");
    let mut pipe = Pipe::open(addr, "hank", &sid, false);
    let udp = udp_client();
    let request = raw_message(&udp, "hank", "z9hG4bKslow", "are you there?");
    udp.send_to(request.as_bytes(), sip).unwrap();
    let ev = pipe.next_of("sip");
    for _ in 0..3 {
        udp.send_to(request.as_bytes(), sip).unwrap();
    }
    // Still one event: the retransmissions went to the same transaction.
    pipe.quiet(Duration::from_millis(300));
    let fields = json!({ "tx": ev.data["tx"], "status": 200 });
    assert_eq!(act(addr, "/sip/reply", "hank", &sid, fields).status, 200);
    let mut buf = [0u8; 4096];
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(first.starts_with("SIP/2.0 200 OK\r\n"), "{first}");
    assert_eq!(exchange(&udp, sip, &request), first, "the final, resent");
    pipe.quiet(Duration::from_millis(100));
    assert_eq!(metric(addr, "altsock_sip_requests_total"), 1);
    assert_eq!(
        metric(addr, "altsock_sip_retransmissions_absorbed_total"),
        4
    );
    assert_eq!(metric(addr, "altsock_sip_delivered_total"), 1);
    assert_eq!(metric(addr, "altsock_sip_user_replies_total"), 1);
}

#[test]
fn tcp_keepalives_get_a_pong_and_unframeable_bytes_a_400_and_a_close() {
    use std::io::{Read, Write};
    let (_server, sip) = sip_server(Duration::from_secs(10));
    let mut tcp = std::net::TcpStream::connect(sip).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.write_all(b"\r\n\r\n").unwrap();
    let mut pong = [0u8; 2];
    tcp.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"\r\n");
    let me = tcp.local_addr().unwrap();
    let bad = format!(
        "MESSAGE sip:x@altsock.test SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKt\r\n\
         From: <sip:t@{me}>;tag=1\r\nTo: <sip:x@altsock.test>\r\nCall-ID: t@t\r\n\
         CSeq: 1 MESSAGE\r\nContent-Length: nine\r\n\r\n"
    );
    tcp.write_all(bad.as_bytes()).unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer)
        .expect("answered, then closed");
    assert!(
        answer.starts_with("SIP/2.0 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Warning: 399 altsock"), "{answer}");
}

#[test]
fn send_retransmits_over_udp_and_gives_up_with_a_local_408() {
    let (server, sip) = sip_server(Duration::from_secs(10));
    let addr = server.addr;
    let sid = user(addr, "ivy");
    let mut pipe = Pipe::open(addr, "ivy", &sid, false);
    // A phone that drops the first copy and answers the retransmission.
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    phone.set_read_timeout(Some(WAIT)).unwrap();
    let to = format!("sip:ivyphone@{}", phone.local_addr().unwrap());
    let sent = act(
        addr,
        "/sip/send",
        "ivy",
        &sid,
        json!({ "to": to, "body": "hi" }),
    );
    assert_eq!(sent.status, 202, "{}", sent.text());
    let mut buf = [0u8; 4096];
    let (n, _) = phone.recv_from(&mut buf).unwrap();
    let first = buf[..n].to_vec();
    let (n, from) = phone.recv_from(&mut buf).unwrap();
    assert_eq!(buf[..n], first[..], "timer E resends the same request");
    assert_eq!(from, sip, "from the SIP port");
    let text = String::from_utf8_lossy(&first).into_owned();
    assert!(
        text.starts_with(&format!("MESSAGE {to} SIP/2.0\r\n")),
        "{text}"
    );
    assert!(text.contains("From: <sip:ivy@altsock.test>;tag="), "{text}");
    let request = altsock::server::sip::parse_message(
        &first,
        altsock::server::sip::Transport::Datagram,
        &Default::default(),
    )
    .expect("a valid MESSAGE");
    let answer = altsock::server::sip::ResponseBuilder::new(&request, 202, "Accepted")
        .to_tag("p1")
        .build()
        .unwrap();
    phone.send_to(&answer, sip).unwrap();
    let resp = pipe.next_of("sipresp");
    assert_eq!(
        (resp.data["status"].as_u64(), resp.data["reason"].as_str()),
        (Some(202), Some("Accepted"))
    );
    // Nobody there: timer F (64*T1 = 3.2 s here) ends it with a local 408.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = format!("sip:nobody@{}", silent.local_addr().unwrap());
    let sent = act(
        addr,
        "/sip/send",
        "ivy",
        &sid,
        json!({ "to": to, "body": "hi" }),
    );
    assert_eq!(sent.status, 202, "{}", sent.text());
    let resp = pipe.next_of("sipresp");
    assert_eq!(resp.data["status"], 408, "{:?}", resp.data);
    assert_eq!(resp.data["local"], true);
    assert_eq!(resp.data["tx"], body(&sent)["tx"]);
}

#[test]
fn send_over_1300_bytes_goes_over_tcp() {
    use std::io::Read;
    let (server, _sip) = sip_server(Duration::from_secs(10));
    let addr = server.addr;
    let sid = user(addr, "jack");
    let phone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let to = format!("sip:big@{}", phone.local_addr().unwrap());
    let text = "y".repeat(2000);
    let sent = act(
        addr,
        "/sip/send",
        "jack",
        &sid,
        json!({ "to": to, "body": text }),
    );
    assert_eq!(sent.status, 202, "{}", sent.text());
    let (mut stream, _) = phone.accept().unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(text.as_bytes()) {
        let n = stream.read(&mut buf).expect("the MESSAGE over TCP");
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got);
    assert!(head.contains("\r\nVia: SIP/2.0/TCP "), "{head}");
    assert!(head.contains("\r\nContent-Length: 2000\r\n"), "{head}");
}

#[test]
fn a_user_who_goes_offline_before_answering_gives_480_at_once() {
    let (server, sip) = sip_server(Duration::from_secs(10));
    let addr = server.addr;
    let sid = user(addr, "kim");
    let mut pipe = Pipe::open(addr, "kim", &sid, false);
    let udp = udp_client();
    let request = raw_message(&udp, "kim", "z9hG4bKgone", "still there?");
    udp.send_to(request.as_bytes(), sip).unwrap();
    pipe.next_of("sip");
    drop(pipe);
    // Well before the 10 s reply timeout.
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    let (n, _) = udp.recv_from(&mut buf).expect("an answer");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("SIP/2.0 480 "), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
