//! Two-way text with wireless devices (seed `002`, claims 47-50, Fig. 20),
//! end to end over real sockets against a fake Kannel gateway started by
//! the test: the SMS carries the URL, the device's held page gets the
//! texts in order, its replies reach the requester's pipe, the token dies
//! when used; a refusing, failing or stalled gateway gives
//! `wireless-unavailable` and blocks nothing else.

mod presence_support;
mod util;
mod wireless_support;

use std::time::{Duration, Instant};

use presence_support::*;
use serde_json::json;
use util::Resp;
use wireless_support::*;

const PHONE: &str = "+15550101234";

/// `me` texts `to` by `POST /wireless/text`.
fn text(addr: std::net::SocketAddr, me: &str, sid: &str, to: &str, msg: &str) -> Resp {
    act(
        addr,
        "/wireless/text",
        me,
        sid,
        json!({ "to": to, "msg": msg }),
    )
}

/// The device posts a reply by its page's form (same origin).
fn device_reply(addr: std::net::SocketAddr, key: &str, body: &str, extra: &str) -> Resp {
    let headers = format!(
        "Content-Type: application/x-www-form-urlencoded\r\nOrigin: http://{addr}\r\n{extra}"
    );
    call(addr, "POST", &format!("/w/{key}/reply"), &headers, body)
}

#[test]
fn claim_47_sms_link_held_page_texts_in_order_replies_and_dead_token() {
    let gateway = FakeGateway::start();
    let server = server_with_wireless(wireless_config(&gateway, Duration::from_secs(2)));
    let a = server.addr;
    let alice = user(a, "alice");
    let mut pipe = Pipe::open(a, "alice", &alice, false);

    let first = text(a, "alice", &alice, "+1 555 010-1234", "text 1");
    assert_eq!(first.status, 202, "{}", first.text());
    assert_eq!(body(&first)["to"], PHONE, "the number is normalized");
    let sms = gateway.next();
    assert_eq!(
        (sms.method.as_str(), sms.path.as_str()),
        ("GET", "/cgi-bin/sendsms")
    );
    assert_eq!(sms.field("to"), Some(PHONE));
    assert_eq!(sms.field("username"), Some("altsock"));
    assert_eq!(sms.field("password"), Some("s3cret"));
    assert_eq!(sms.field("from"), Some("+15550000000"));
    let sms_text = sms.field("text").expect("a text").to_string();
    assert!(sms_text.contains(&format!("http://{a}/w/")), "{sms_text}");
    let link = link_path(&sms_text);
    let token = link.trim_start_matches("/w/");
    assert_eq!(token.len(), 32, "128 random bits as hex: {token}");
    assert_eq!(pipe.next_of("wireless-sent").data["to"], PHONE);

    // Texts before the device connects are queued, not lost.
    for i in 2..=5 {
        let r = text(a, "alice", &alice, PHONE, &format!("text {i}"));
        assert_eq!(
            (r.status, body(&r)["delivered"].clone()),
            (202, json!(false))
        );
        assert_eq!(body(&r)["queued"], i);
    }
    let mut device = Device::open(a, &link);
    assert_eq!(pipe.next_of("wireless-connected").data["to"], PHONE);
    device.wait_for("text 5");
    // The rest while the device's GET is held.
    for i in 6..=10 {
        let r = text(a, "alice", &alice, PHONE, &format!("text {i} <b>&</b>"));
        assert_eq!(body(&r)["delivered"], true, "{}", r.text());
    }
    device.wait_for("text 10");
    let texts = texts_of(&device.page);
    let ids: Vec<u64> = texts.iter().map(|t| t.0).collect();
    assert_eq!(ids, (1..=10).collect::<Vec<u64>>(), "{}", device.page);
    assert_eq!(
        texts[9].1, "text 10 &lt;b&gt;&amp;&lt;/b&gt;",
        "text, never HTML"
    );
    assert!(!device.page.contains("<b>&</b>"));

    // The token is dead after use; the key works only under its paths.
    assert_eq!(get(a, &link).status, 404);
    let key = device.key();
    assert_eq!(key.len(), 32);
    assert_ne!(key, token);
    assert_eq!(get(a, &format!("/w/{key}")).status, 404);
    // Only the browser that used it gets back in (its cookie holds the key).
    let cookie = device.cookie();
    assert!(cookie.ends_with(&format!("={key}")), "{cookie}");
    assert!(
        device.head.contains("Path=/w/; HttpOnly"),
        "{}",
        device.head
    );
    let again = call(a, "GET", &link, &format!("Cookie: {cookie}\r\n"), "");
    assert_eq!(again.status, 303);
    assert_eq!(
        again.header("location"),
        Some(format!("/w/{key}/stream").as_str())
    );
    let name = cookie.split('=').next().unwrap();
    let forged = format!("Cookie: {name}={}\r\n", "0".repeat(32));
    assert_eq!(call(a, "GET", &link, &forged, "").status, 404);

    // Replies by the form (no script): 303 back to the page, and the
    // requester's pipe gets them; the device's own page shows them.
    let r = device_reply(a, &key, "msg=hi+alice&view=stream", "");
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some(format!("/w/{key}/stream").as_str())
    );
    let ev = pipe.next_of("wireless-reply");
    assert_eq!(
        (ev.data["from"].as_str(), ev.data["msg"].as_str()),
        (Some(PHONE), Some("hi alice"))
    );
    assert_eq!(ev.data["via"], "web");
    device.wait_for("hi alice");
    // By the page's script: 202.
    let r = device_reply(a, &key, "msg=second", "X-Altsock-Fetch: 1\r\n");
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(pipe.next_of("wireless-reply").data["msg"], "second");
    // A cross-origin form post is refused.
    let evil = call(
        a,
        "POST",
        &format!("/w/{key}/reply"),
        "Content-Type: application/x-www-form-urlencoded\r\nOrigin: http://evil.example\r\n",
        "msg=forged",
    );
    assert_eq!(evil.status, 403);
}

#[test]
fn refresh_page_long_polls_without_script() {
    let gateway = FakeGateway::start();
    let server = server_with_wireless(wireless_config(&gateway, Duration::from_secs(2)));
    let a = server.addr;
    let alice = user(a, "alice");
    assert_eq!(text(a, "alice", &alice, PHONE, "one").status, 202);
    let link = link_path(gateway.next().field("text").unwrap());
    let mut device = Device::open(a, &link);
    device.wait_for("one");
    let key = device.key();
    drop(device);
    // The refresh page: whole, with a meta refresh into the long-poll.
    let page = get(a, &format!("/w/{key}/page"));
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("one") && html.contains("</html>"), "{html}");
    let refresh = format!("content=\"1;url=/w/{key}/page?after=1\"");
    assert!(html.contains(&refresh), "{html}");
    // The long-poll is held until the next text, then answered whole.
    let mut held = util::Client::connect(a);
    held.send(format!("GET /w/{key}/page?after=1 HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes());
    let quiet = held.read_for(Duration::from_millis(100));
    assert!(
        quiet.is_empty(),
        "answered with no news: {:?}",
        String::from_utf8_lossy(&quiet)
    );
    assert_eq!(text(a, "alice", &alice, PHONE, "two").status, 202);
    let answer = held.read_response();
    assert_eq!(answer.status, 200);
    let html = answer.text();
    assert!(html.contains("two") && html.contains("after=2"), "{html}");
    // With no news, the wait ends with the page again (never a 204, which
    // would stop a browser's meta refresh).
    held.send(format!("GET /w/{key}/page?after=2 HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes());
    let answer = held.read_response();
    assert_eq!(answer.status, 200);
    assert!(answer.text().contains("after=2"));
    // A reply from the refresh page goes back to it.
    let r = device_reply(a, &key, "msg=from+page&view=page", "");
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some(format!("/w/{key}/page").as_str())
    );
}

#[test]
fn refusing_gateway_tells_the_requester_wireless_unavailable() {
    let gateway = FakeGateway::start();
    gateway.set(Mode::Fail);
    let server = server_with_wireless(wireless_config(&gateway, Duration::from_secs(2)));
    let a = server.addr;
    let alice = user(a, "alice");
    let mut pipe = Pipe::open(a, "alice", &alice, false);
    let r = text(a, "alice", &alice, PHONE, "are you there?");
    assert_eq!((r.status, body(&r)["sms"].clone()), (202, json!("sending")));
    let link = link_path(gateway.next().field("text").unwrap());
    let ev = pipe.next_of("wireless-unavailable");
    assert_eq!(ev.data["to"], PHONE);
    assert_eq!(
        ev.data["undelivered"], 1,
        "the requester learns what was not delivered"
    );
    let reason = ev.data["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("503"), "{reason}");
    assert_eq!(
        get(a, &link).status,
        404,
        "the link of a failed SMS is dead"
    );
    // Once the gateway is back, a new text starts a new conversation.
    gateway.set(Mode::Accept);
    assert_eq!(text(a, "alice", &alice, PHONE, "again").status, 202);
    let again = link_path(gateway.next().field("text").unwrap());
    assert_ne!(again, link);
    assert_eq!(pipe.next_of("wireless-sent").data["to"], PHONE);
    assert_eq!(metric(a, "altsock_wireless_sms_failed_total"), 1);
    assert_eq!(metric(a, "altsock_wireless_sms_sent_total"), 1);
}

#[test]
fn stalled_gateway_times_out_and_blocks_no_other_push() {
    let gateway = FakeGateway::start();
    gateway.set(Mode::Stall(Duration::from_secs(2)));
    let timeout = Duration::from_millis(500);
    let server = server_with_wireless(wireless_config(&gateway, timeout));
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    let carol = user(a, "carol");
    let mut alice_pipe = Pipe::open(a, "alice", &alice, false);
    let mut carol_pipe = Pipe::open(a, "carol", &carol, false);
    let started = Instant::now();
    assert_eq!(text(a, "alice", &alice, PHONE, "hello?").status, 202);
    gateway.next();
    // While the gateway stalls, chat flows: the engine never waits for it.
    for i in 0..20 {
        assert_eq!(
            send_chat(a, "bob", &bob, "carol", &format!("c{i}")).status,
            202
        );
        assert_eq!(carol_pipe.next_of("chat").data["msg"], format!("c{i}"));
    }
    assert_eq!(
        gateway.in_flight(),
        1,
        "all 20 arrived while the gateway was stalled"
    );
    let ev = alice_pipe.next_of("wireless-unavailable");
    let waited = started.elapsed();
    assert!(waited >= timeout, "not before the timeout: {waited:?}");
    assert!(
        waited < Duration::from_secs(2),
        "the timeout ({timeout:?}) cut the 2 s stall short: {waited:?}"
    );
    let reason = ev.data["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("unreachable") || reason.contains("imeout"),
        "{reason}"
    );
}

#[test]
fn unopened_links_expire_and_full_queues_answer_429() {
    let gateway = FakeGateway::start();
    let mut config = wireless_config(&gateway, Duration::from_secs(2));
    config.token_ttl = Duration::from_millis(300);
    config.queue = 3;
    let server = server_with_wireless(config);
    let a = server.addr;
    let alice = user(a, "alice");
    let mut pipe = Pipe::open(a, "alice", &alice, false);
    for i in 1..=3 {
        assert_eq!(
            text(a, "alice", &alice, PHONE, &format!("q{i}")).status,
            202
        );
    }
    let full = text(a, "alice", &alice, PHONE, "q4");
    assert_eq!(full.status, 429, "{}", full.text());
    assert_eq!(
        (body(&full)["queued"].clone(), body(&full)["max"].clone()),
        (json!(3), json!(3))
    );
    let link = link_path(gateway.next().field("text").unwrap());
    let ev = pipe.next_of("wireless-unavailable");
    assert_eq!(ev.data["undelivered"], 3);
    assert!(ev.data["reason"].as_str().unwrap().contains("in time"));
    assert_eq!(get(a, &link).status, 404, "an expired token is dead");
}

#[test]
fn texting_needs_a_member_session_a_number_and_the_same_origin() {
    let gateway = FakeGateway::start();
    let server = server_with_wireless(wireless_config(&gateway, Duration::from_secs(2)));
    let a = server.addr;
    let alice = user(a, "alice");
    assert_eq!(text(a, "alice", "not-a-session", PHONE, "x").status, 403);
    assert_eq!(text(a, "alice", &alice, "call me", "x").status, 400);
    assert_eq!(text(a, "alice", &alice, PHONE, "").status, 400);
    assert_eq!(
        text(a, "alice", &alice, PHONE, &"x".repeat(5000)).status,
        413
    );
    let cross = call(
        a,
        "POST",
        "/wireless/text",
        "Content-Type: application/x-www-form-urlencoded\r\nOrigin: http://evil.example\r\n",
        &format!("me=alice&id={alice}&to=%2B15550101234&msg=x"),
    );
    assert_eq!(cross.status, 403);
    assert_eq!(get(a, "/w/0123456789abcdef0123456789abcdef").status, 404);
    // None of those sent an SMS: the first the gateway gets is this one.
    assert_eq!(text(a, "alice", &alice, PHONE, "valid").status, 202);
    let sms = gateway.next();
    assert_eq!(sms.field("to"), Some(PHONE));
    assert!(sms
        .field("text")
        .unwrap()
        .contains("alice sent you a message"));
    assert!(gateway.try_next().is_none());
}

/// A form body from `pairs`, urlencoded.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace('%', "%25").replace('+', "%2B").replace(' ', "+")
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The shared secret the unsigned-gateway tests configure and send.
const INBOUND_KEY: &str = "k3y-for-tests";

/// Posts an unsigned inbound SMS form with the shared key in the query.
fn inbound_keyed(addr: std::net::SocketAddr, pairs: &[(&str, &str)]) -> Resp {
    let headers = "Content-Type: application/x-www-form-urlencoded\r\n";
    let target = format!("/sms/inbound?key={INBOUND_KEY}");
    call(addr, "POST", &target, headers, &form(pairs))
}

/// Posts an inbound SMS form with extra header lines.
fn inbound(addr: std::net::SocketAddr, pairs: &[(&str, &str)], headers: &str) -> Resp {
    let headers = format!("Content-Type: application/x-www-form-urlencoded\r\n{headers}");
    call(addr, "POST", "/sms/inbound", &headers, &form(pairs))
}

/// Alice signs in, opens her pipe and texts `PHONE` "hi" (accepted, `202`),
/// and the gateway receives it; returns her pipe.
#[track_caller]
fn alice_texts_hi(a: std::net::SocketAddr, gateway: &FakeGateway) -> Pipe {
    let alice = user(a, "alice");
    let pipe = Pipe::open(a, "alice", &alice, false);
    assert_eq!(text(a, "alice", &alice, PHONE, "hi").status, 202);
    gateway.next();
    pipe
}

#[test]
fn inbound_sms_needs_a_valid_twilio_signature_and_reaches_the_requester() {
    use altsock::server::wireless::inbound::twilio_signature;
    let gateway = FakeGateway::start();
    let mut config = wireless_config(&gateway, Duration::from_secs(2));
    config.twilio_auth_token = Some("twilio-token-123".into());
    let server = server_with_wireless(config);
    let a = server.addr;
    let mut pipe = alice_texts_hi(a, &gateway);
    pipe.next_of("wireless-sent");
    let fields = [
        ("From", PHONE),
        ("To", "+15550000000"),
        ("Body", "a reply by SMS"),
        ("MessageSid", "SM0123"),
    ];
    let owned: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let url = format!("http://{a}/sms/inbound");
    let good = twilio_signature("twilio-token-123", &url, &owned);
    assert_eq!(inbound(a, &fields, "").status, 403, "no signature");
    let wrong = twilio_signature("another-token", &url, &owned);
    let bad = inbound(a, &fields, &format!("X-Twilio-Signature: {wrong}\r\n"));
    assert_eq!(bad.status, 403, "a bad signature");
    let mut changed = fields;
    changed[2].1 = "a forged body";
    let forged = inbound(a, &changed, &format!("X-Twilio-Signature: {good}\r\n"));
    assert_eq!(forged.status, 403, "a signature of other fields");
    let ok = inbound(a, &fields, &format!("X-Twilio-Signature: {good}\r\n"));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(ok.header("content-type").unwrap().starts_with("text/xml"));
    assert!(ok.text().ends_with("<Response/>"), "{}", ok.text());
    let ev = pipe.next_of("wireless-reply");
    assert_eq!(ev.data["msg"], "a reply by SMS");
    assert_eq!(
        (ev.data["from"].as_str(), ev.data["via"].as_str()),
        (Some(PHONE), Some("sms"))
    );
    assert_eq!(ev.data["sid"], "SM0123");
    // Only the signed one got through.
    pipe.quiet(Duration::from_millis(100));
    // A number nobody texted is not routed (and the gateway is told).
    let stranger = [("From", "+15559999999"), ("Body", "who?")];
    let owned: Vec<(String, String)> = stranger
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = twilio_signature("twilio-token-123", &url, &owned);
    let r = inbound(a, &stranger, &format!("X-Twilio-Signature: {sig}\r\n"));
    assert_eq!(r.status, 404);
}

#[test]
fn thousand_inbound_messages_all_delivered_in_order() {
    let gateway = FakeGateway::start();
    let mut config = wireless_config(&gateway, Duration::from_secs(2));
    config.inbound_key = Some(INBOUND_KEY.into());
    let server = server_with_wireless(config);
    let a = server.addr;
    let mut pipe = alice_texts_hi(a, &gateway);
    // One keep-alive connection, as a gateway posts; Twilio's field names,
    // Vonage's by POST, and Vonage's (or Kannel's get-url) by GET, in turn.
    let mut conn = util::Client::connect(a);
    let digits = PHONE.trim_start_matches('+');
    for batch in 0..20 {
        for i in batch * 50..(batch + 1) * 50 {
            let msg = format!("m{i}");
            let raw = match i % 3 {
                0 => request_text(
                    a,
                    "POST",
                    &format!("/sms/inbound?key={INBOUND_KEY}"),
                    "Content-Type: application/x-www-form-urlencoded\r\n",
                    &form(&[("From", PHONE), ("To", "+15550000000"), ("Body", &msg)]),
                ),
                1 => request_text(
                    a,
                    "POST",
                    &format!("/sms/inbound?key={INBOUND_KEY}"),
                    "Content-Type: application/x-www-form-urlencoded\r\n",
                    &form(&[("msisdn", digits), ("to", "15550000000"), ("text", &msg)]),
                ),
                _ => request_text(
                    a,
                    "GET",
                    &format!(
                        "/sms/inbound?key={INBOUND_KEY}&msisdn={digits}&to=15550000000&text={msg}"
                    ),
                    "",
                    "",
                ),
            };
            conn.send(raw.as_bytes());
            let r = conn.read_response();
            assert_eq!(r.status, 200, "message {i}: {}", r.text());
        }
        for i in batch * 50..(batch + 1) * 50 {
            let ev = pipe.next_of("wireless-reply");
            assert_eq!(ev.data["msg"], format!("m{i}"), "in order");
            assert_eq!(ev.data["from"], PHONE);
        }
    }
    assert_eq!(metric(a, "altsock_wireless_inbound_routed_total"), 1000);
}

#[test]
fn twilio_dialect_posts_a_form_with_basic_auth() {
    use altsock::server::wireless::gateway::Dialect;
    let gateway = FakeGateway::start();
    let mut config = wireless_config(&gateway, Duration::from_secs(2));
    if let Some(g) = config.gateway.as_mut() {
        g.dialect = Dialect::Twilio;
        g.url = format!(
            "http://{}/2010-04-01/Accounts/AC123/Messages.json",
            gateway.addr
        );
        g.user = Some("AC123".into());
        g.password = Some("api-token".into());
    }
    let server = server_with_wireless(config);
    let a = server.addr;
    let alice = user(a, "alice");
    let mut pipe = Pipe::open(a, "alice", &alice, false);
    assert_eq!(text(a, "alice", &alice, PHONE, "hi").status, 202);
    let sms = gateway.next();
    assert_eq!(sms.method, "POST");
    assert_eq!(sms.path, "/2010-04-01/Accounts/AC123/Messages.json");
    assert_eq!(sms.field("To"), Some(PHONE));
    assert_eq!(sms.field("From"), Some("+15550000000"));
    assert!(sms
        .field("Body")
        .unwrap()
        .contains(&format!("http://{a}/w/")));
    // base64("AC123:api-token")
    assert_eq!(
        sms.authorization.as_deref(),
        Some("Basic QUMxMjM6YXBpLXRva2Vu")
    );
    assert_eq!(pipe.next_of("wireless-sent").data["to"], PHONE);
}

#[test]
fn inbound_sms_goes_to_the_latest_live_conversation_with_the_number() {
    let gateway = FakeGateway::start();
    let mut config = wireless_config(&gateway, Duration::from_secs(2));
    config.inbound_key = Some(INBOUND_KEY.into());
    let server = server_with_wireless(config);
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    let carol = user(a, "carol");
    let mut alice_pipe = Pipe::open(a, "alice", &alice, false);
    let mut bob_pipe = Pipe::open(a, "bob", &bob, false);
    let mut carol_pipe = Pipe::open(a, "carol", &carol, false);
    assert_eq!(text(a, "alice", &alice, PHONE, "from alice").status, 202);
    gateway.next();
    alice_pipe.next_of("wireless-sent");
    assert_eq!(text(a, "bob", &bob, PHONE, "from bob").status, 202);
    gateway.next();
    bob_pipe.next_of("wireless-sent");
    // The latest to text the number gets its SMS.
    let sms = [("From", PHONE), ("Body", "to bob")];
    assert_eq!(inbound_keyed(a, &sms).status, 200);
    assert_eq!(bob_pipe.next_of("wireless-reply").data["msg"], "to bob");
    // Carol's conversation with it fails at once: SMS go back to bob's.
    gateway.set(Mode::Fail);
    assert_eq!(text(a, "carol", &carol, PHONE, "from carol").status, 202);
    gateway.next();
    carol_pipe.next_of("wireless-unavailable");
    let sms = [("From", PHONE), ("Body", "still bob")];
    assert_eq!(inbound_keyed(a, &sms).status, 200);
    assert_eq!(bob_pipe.next_of("wireless-reply").data["msg"], "still bob");
    alice_pipe.quiet(Duration::from_millis(50));
}

#[test]
fn serve_flags_configure_the_gateway_and_the_waits() {
    let gateway = FakeGateway::start();
    let dir = util::temp_dir("wireless-serve");
    let url = gateway.sendsms_url();
    let (mut child, a) = util::start_serve_process(
        &dir.join("altsock.db"),
        &[
            "--poll-interval",
            "20ms",
            "--sms-gateway",
            &url,
            "--sms-dialect",
            "kannel",
            "--sms-user",
            "flag-user",
            "--sms-password",
            "flag-pass",
            "--sms-from",
            "ALTSOCK",
            "--sms-timeout",
            "2s",
            "--wireless-public-url",
            "https://chat.example.com/",
            "--wireless-token-ttl",
            "200ms",
            "--wireless-queue",
            "2",
        ],
    );
    let alice = user(a, "alice");
    let mut pipe = Pipe::open(a, "alice", &alice, false);
    assert_eq!(text(a, "alice", &alice, PHONE, "one").status, 202);
    let sms = gateway.next();
    assert_eq!(
        (
            sms.field("username"),
            sms.field("password"),
            sms.field("from")
        ),
        (Some("flag-user"), Some("flag-pass"), Some("ALTSOCK"))
    );
    assert!(sms
        .field("text")
        .unwrap()
        .contains("https://chat.example.com/w/"));
    assert_eq!(text(a, "alice", &alice, PHONE, "two").status, 202);
    assert_eq!(
        text(a, "alice", &alice, PHONE, "three").status,
        429,
        "--wireless-queue 2"
    );
    let ev = pipe.next_of("wireless-unavailable");
    assert_eq!(ev.data["undelivered"], 2, "--wireless-token-ttl 200ms");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn inbound_key_guards_unsigned_gateways() {
    let gateway = FakeGateway::start();
    let mut config = wireless_config(&gateway, Duration::from_secs(2));
    config.inbound_key = Some("k3y-for-kannel".into());
    let server = server_with_wireless(config);
    let a = server.addr;
    let mut pipe = alice_texts_hi(a, &gateway);
    pipe.next_of("wireless-sent");
    let digits = PHONE.trim_start_matches('+');
    let query = format!("msisdn={digits}&to=15550000000&text=by+kannel");
    assert_eq!(
        get(a, &format!("/sms/inbound?{query}")).status,
        403,
        "no key"
    );
    let wrong = get(a, &format!("/sms/inbound?{query}&key=k3y-for-kannes"));
    assert_eq!(wrong.status, 403, "a wrong key");
    let ok = get(a, &format!("/sms/inbound?{query}&key=k3y-for-kannel"));
    assert_eq!(ok.status, 200, "{}", ok.text());
    let ev = pipe.next_of("wireless-reply");
    assert_eq!(
        (ev.data["msg"].as_str(), ev.data["via"].as_str()),
        (Some("by kannel"), Some("sms"))
    );
    pipe.quiet(Duration::from_millis(50));
}

#[test]
fn http_1_0_device_gets_a_close_delimited_page() {
    let gateway = FakeGateway::start();
    let server = server_with_wireless(wireless_config(&gateway, Duration::from_secs(2)));
    let a = server.addr;
    let alice = user(a, "alice");
    assert_eq!(text(a, "alice", &alice, PHONE, "first").status, 202);
    let link = link_path(gateway.next().field("text").unwrap());
    // An old phone browser speaking HTTP/1.0: no chunked transfer.
    let mut device = util::Client::connect(a);
    device.send(format!("GET {link} HTTP/1.0\r\nHost: {a}\r\n\r\n").as_bytes());
    let head = device.read_through("\r\n\r\n");
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
    device.read_through("first</p>");
    assert_eq!(text(a, "alice", &alice, PHONE, "second").status, 202);
    let more = device.read_through("second</p>");
    assert!(more.contains("id=\"t2\""), "{more}");
}

#[test]
fn inbound_sms_is_refused_when_nothing_authenticates_it() {
    let gateway = FakeGateway::start();
    let server = server_with_wireless(wireless_config(&gateway, Duration::from_secs(2)));
    let a = server.addr;
    let mut pipe = alice_texts_hi(a, &gateway);
    pipe.next_of("wireless-sent");
    let digits = PHONE.trim_start_matches('+');
    let forged = get(
        a,
        &format!("/sms/inbound?msisdn={digits}&to=15550000000&text=forged"),
    );
    assert_eq!(forged.status, 403, "{}", forged.text());
    assert!(
        forged.text().contains("--sms-inbound-key"),
        "{}",
        forged.text()
    );
    let posted = inbound(a, &[("From", PHONE), ("Body", "forged")], "");
    assert_eq!(posted.status, 403, "{}", posted.text());
    pipe.quiet(Duration::from_millis(100));
}
