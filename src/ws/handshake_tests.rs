//! Tests of the opening handshake: RFC 6455's example key, the 101 head,
//! and each refusal.

use super::*;
use crate::ConnId;

/// A valid upgrade request (RFC 6455 1.3's key), with `extra` headers.
fn request(extra: &[(&str, &str)]) -> Request {
    let mut headers: Vec<(String, String)> = [
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    for (name, value) in extra {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if !value.is_empty() {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    Request {
        conn: ConnId { key: 1, gen: 0 },
        seq: 0,
        method: "GET".into(),
        target: "/chat".into(),
        minor_version: 1,
        headers,
        body: Vec::new(),
        peer: None,
    }
}

fn accepted(req: &Request, protocols: &[&str]) -> Accepted {
    match check_upgrade(req, protocols) {
        Upgrade::Accept(accepted) => accepted,
        other => panic!("expected an accept, got {other:?}"),
    }
}

/// The refusal's status; asserts it carries `Sec-WebSocket-Version: 13`.
fn refused_status(req: &Request) -> u16 {
    match check_upgrade(req, &[]) {
        Upgrade::Refuse(response) => {
            let version = response
                .headers
                .iter()
                .find(|(n, _)| n == "Sec-WebSocket-Version");
            assert_eq!(version.map(|(_, v)| v.as_str()), Some("13"));
            response.status
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn rfc_6455_1_3_accept_key() {
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn a_valid_upgrade_gets_the_101_head() {
    let mut out = Vec::new();
    accepted(&request(&[]), &[]).write_head(&mut out);
    assert_eq!(
        String::from_utf8(out).expect("ascii"),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    );
}

#[test]
fn header_tokens_match_case_insensitively_and_within_lists() {
    let req = request(&[
        ("upgrade", "WebSocket"),
        ("connection", "keep-alive, Upgrade"),
    ]);
    assert_eq!(accepted(&req, &[]).accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn a_request_without_upgrade_websocket_is_plain_http() {
    assert_eq!(
        check_upgrade(&request(&[("Upgrade", "")]), &[]),
        Upgrade::NotWebSocket
    );
    let h2c = request(&[("Upgrade", "h2c")]);
    assert_eq!(check_upgrade(&h2c, &[]), Upgrade::NotWebSocket);
}

#[test]
fn the_server_picks_its_preferred_offered_subprotocol() {
    let req = request(&[("Sec-WebSocket-Protocol", "chat, sip")]);
    assert_eq!(
        accepted(&req, &["sip", "chat"]).protocol.as_deref(),
        Some("sip")
    );
    assert_eq!(accepted(&req, &["chat"]).protocol.as_deref(), Some("chat"));
    assert_eq!(accepted(&req, &["mqtt"]).protocol, None);
    let mut out = Vec::new();
    accepted(&req, &["sip"]).write_head(&mut out);
    let head = String::from_utf8(out).expect("ascii");
    assert!(
        head.contains("\r\nSec-WebSocket-Protocol: sip\r\n"),
        "{head}"
    );
}

#[test]
fn subprotocols_offered_in_several_headers_count() {
    let mut req = request(&[("Sec-WebSocket-Protocol", "chat")]);
    req.headers
        .push(("Sec-WebSocket-Protocol".into(), "sip".into()));
    assert_eq!(accepted(&req, &["sip"]).protocol.as_deref(), Some("sip"));
}

#[test]
fn not_get_is_refused_400() {
    let mut req = request(&[]);
    req.method = "POST".into();
    assert_eq!(refused_status(&req), 400);
}

#[test]
fn http_1_0_is_refused_400() {
    let mut req = request(&[]);
    req.minor_version = 0;
    assert_eq!(refused_status(&req), 400);
}

#[test]
fn connection_without_upgrade_is_refused_400() {
    assert_eq!(
        refused_status(&request(&[("Connection", "keep-alive")])),
        400
    );
    assert_eq!(refused_status(&request(&[("Connection", "")])), 400);
    assert_eq!(refused_status(&request(&[("Connection", "upgraded")])), 400);
}

#[test]
fn another_version_is_refused_426() {
    for version in ["8", "", "13, 8", "14"] {
        let req = request(&[("Sec-WebSocket-Version", version)]);
        assert_eq!(refused_status(&req), 426, "{version:?}");
        let Upgrade::Refuse(response) = check_upgrade(&req, &[]) else {
            unreachable!()
        };
        assert!(response
            .headers
            .iter()
            .any(|(n, v)| n == "Upgrade" && v == "websocket"));
    }
}

#[test]
fn a_bad_key_is_refused_400() {
    for key in [
        "",
        "dGhlIHNhbXBsZSBub25jZQ",       // no padding
        "dGhlIHNhbXBsZSBub25jZSE=",     // 17 bytes
        "dGhlIHNhbXBsZSBub25j",         // 15 bytes
        "dGhlIHNhbXBsZSBub25jZQ=!",     // not base64
        "  dGhlIHNhbXBsZSBub25jZQ== x", // junk after
    ] {
        assert_eq!(
            refused_status(&request(&[("Sec-WebSocket-Key", key)])),
            400,
            "{key:?}"
        );
    }
}

#[test]
fn two_keys_are_refused_400() {
    let mut req = request(&[]);
    req.headers.push((
        "Sec-WebSocket-Key".into(),
        "AAAAAAAAAAAAAAAAAAAAAA==".into(),
    ));
    assert_eq!(refused_status(&req), 400);
}

#[test]
fn another_16_byte_key_is_accepted() {
    let req = request(&[("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")]);
    let expected = accept_key("AAAAAAAAAAAAAAAAAAAAAA==");
    assert_eq!(accepted(&req, &[]).accept, expected);
    assert_eq!(expected.len(), 28);
}
