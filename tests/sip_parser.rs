//! The SIP parser and builders (`altsock::server::sip`) against the RFC 4475
//! torture messages in `tests/sip/rfc4475/` (`valid/` must parse, `invalid/`
//! must be refused for the reason the RFC gives), stream framing at every
//! split point, limits, and round trips through the response and MESSAGE
//! builders.

use std::path::{Path, PathBuf};

use altsock::server::sip::{
    find_message_end, parse_message, Limits, Message, MessageRequest, ResponseBuilder, SipError,
    SipUri, StartLine, Transport, Uri, MESSAGE_UDP_LIMIT,
};

fn corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sip/rfc4475")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("torture directory")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("torture file"))
        })
        .collect()
}

fn torture(kind: &str, name: &str) -> Vec<u8> {
    corpus(kind)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {kind}/{name}.sip"))
        .1
}

fn udp(bytes: &[u8]) -> Result<Message, SipError> {
    parse_message(bytes, Transport::Datagram, &Limits::default())
}

fn parsed(name: &str) -> Message {
    udp(&torture("valid", name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_valid_torture_message_parses() {
    let all = corpus("valid");
    assert!(all.len() >= 20, "only {} valid messages", all.len());
    for (name, bytes) in all {
        if let Err(e) = udp(&bytes) {
            panic!("{name} refused: {e}");
        }
    }
}

/// Each invalid message and the refusal RFC 4475 §3.1.2 (or §3.3) expects.
fn expected_refusal(name: &str, err: &SipError) -> bool {
    let header = |want: &str| matches!(err, SipError::Header { name, .. } if name == want);
    match name {
        "badinv01" => header("Via"),
        "clerr" | "ncl" | "mcl01" => matches!(err, SipError::ContentLength(_)),
        "scalar02" | "scalarlg" => header("CSeq"),
        "quotbal" | "badaspec" => header("To"),
        "baddn" => header("From"),
        "baddate" => header("Date"),
        "regbadct" => header("Contact"),
        "ltgtruri" | "lwsruri" | "lwsstart" | "trws" | "escruri" | "bigcode" => {
            matches!(err, SipError::StartLine(_))
        }
        "badvers" => *err == SipError::Version,
        "mismatch01" | "mismatch02" => *err == SipError::CSeqMismatch,
        "insuf" => matches!(err, SipError::Missing(_)),
        "multi01" => matches!(err, SipError::Duplicate(_)),
        other => panic!("no expectation for {other}"),
    }
}

#[test]
fn every_invalid_torture_message_is_refused_for_its_reason() {
    let all = corpus("invalid");
    assert!(all.len() >= 20, "only {} invalid messages", all.len());
    for (name, bytes) in all {
        match udp(&bytes) {
            Ok(msg) => panic!("{name} accepted: {msg:?}"),
            Err(e) => assert!(
                expected_refusal(&name, &e),
                "{name} refused for the wrong reason: {e:?}"
            ),
        }
    }
    assert_eq!(
        udp(&torture("invalid", "badvers")).unwrap_err().status(),
        505
    );
}

#[test]
fn wsinv_folding_compact_forms_and_via_order() {
    let msg = parsed("wsinv");
    assert_eq!(msg.method(), Some("INVITE"));
    assert_eq!(msg.max_forwards, Some(68));
    assert_eq!(msg.cseq.number, 9);
    assert_eq!(msg.cseq.method, "INVITE");
    assert_eq!(msg.to.tag(), Some("1918181833n"));
    assert_eq!(msg.from.tag(), Some("98asjd8"));
    assert_eq!(msg.from.display_name.as_deref(), Some("J Rosenberg \\\""));
    let hosts: Vec<&str> = msg.vias.iter().map(|v| v.host.as_str()).collect();
    assert_eq!(
        hosts,
        ["192.0.2.2", "spindle.example.com", "192.168.255.111"]
    );
    assert_eq!(msg.vias[1].transport, "TCP");
    assert_eq!(msg.vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(msg.vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(
        msg.header("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(msg.header("Subject"), Some(""));
    assert_eq!(msg.content_type(), Some("application/sdp"));
    assert_eq!(msg.body.len(), 150);
    let uri = msg.request_uri().and_then(Uri::as_sip).expect("sip uri");
    assert_eq!(uri.user.as_deref(), Some("vivekg"));
    assert_eq!(uri.param("unknownparam"), Some(None));
}

#[test]
fn intmeth_escapes_and_unusual_tokens() {
    let msg = parsed("intmeth");
    assert_eq!(
        msg.method(),
        Some("!interesting-Method0123456789_*+`.%indeed'~")
    );
    assert_eq!(
        msg.to.display_name.as_deref(),
        Some("BEL:\x07 NUL:\0 DEL:\x7f")
    );
    assert_eq!(msg.from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(msg.max_forwards, Some(255));
    let uri = msg.request_uri().and_then(Uri::as_sip).unwrap();
    assert_eq!(
        uri.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        uri.password.as_deref(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
}

#[test]
fn escaped_users_decode() {
    let esc01 = parsed("esc01");
    let uri = esc01.request_uri().and_then(Uri::as_sip).unwrap();
    assert_eq!(uri.user_decoded().as_deref(), Some("sips:user@example.com"));
    assert_eq!(uri.host, "example.net");
    let to = esc01.to.uri.as_sip().unwrap();
    assert_eq!(to.user_decoded().as_deref(), Some("user"));
    let escnull = parsed("escnull");
    let to = escnull.to.uri.as_sip().unwrap();
    assert_eq!(to.user_decoded().as_deref(), Some("null-\0-null"));
    let semi = parsed("semiuri");
    let uri = semi.request_uri().and_then(Uri::as_sip).unwrap();
    assert_eq!(
        uri.user_decoded().as_deref(),
        Some("user;par=u@example.net")
    );
    assert_eq!(uri.host, "example.com");
    assert_eq!(parsed("esc02").method(), Some("RE%47IST%45R"));
}

#[test]
fn other_valid_details() {
    let lws = parsed("lwsdisp");
    assert_eq!(lws.from.display_name.as_deref(), Some("caller"));
    let long = parsed("longreq");
    assert_eq!(long.vias.len(), 34);
    assert_eq!(long.vias[0].host, "sip33.example.com");
    assert_eq!(long.vias[33].host, "host.example.com");
    let dbl = parsed("dblreq");
    assert_eq!(dbl.method(), Some("REGISTER"));
    assert!(dbl.body.is_empty());
    let transports: Vec<String> = parsed("transports")
        .vias
        .into_iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    let unreason = parsed("unreason");
    assert_eq!(
        unreason.start,
        StartLine::Response {
            status: 200,
            reason: "= 2**3 * 5**2 но сто девяносто девять - простое".into()
        }
    );
    let noreason = parsed("noreason");
    assert_eq!(noreason.status(), Some(100));
    let mpart = parsed("mpart01");
    assert!(mpart.body.ends_with(b"--7a9cbec02ceef655--\r\n"));
    assert!(
        matches!(parsed("novelsc").request_uri(), Some(Uri::Other(u)) if u == "soap.beep://192.0.2.103:3002")
    );
    assert_eq!(parsed("inv2543").max_forwards, None);
}

/// `bytes` fed to the stream framer cut at `cut`: the framer waits
/// (`Ok(None)`) on the first part and frames the whole on the rest.
fn frame_split(bytes: &[u8], cut: usize) {
    let limits = Limits::default();
    let total = bytes.len();
    let first = find_message_end(&bytes[..cut], &limits).expect("framing the first part");
    if cut < total {
        assert_eq!(first, None, "framed early at cut {cut}");
    }
    assert_eq!(
        find_message_end(bytes, &limits),
        Ok(Some(total)),
        "cut {cut}"
    );
}

#[test]
fn stream_framing_waits_at_every_split_point() {
    for (name, bytes) in corpus("valid") {
        if name == "dblreq" || name == "inv2543" {
            continue; // Datagram-only: extra bytes, or no Content-Length.
        }
        for cut in 0..=bytes.len() {
            frame_split(&bytes, cut);
        }
        parse_message(&bytes, Transport::Stream, &Limits::default())
            .unwrap_or_else(|e| panic!("{name} on a stream: {e}"));
    }
}

#[test]
fn two_messages_in_one_stream_frame_one_at_a_time() {
    let first = torture("valid", "esc01");
    let second = torture("valid", "lwsdisp");
    let mut stream = b"\r\n\r\n".to_vec(); // keepalive CRLFs first (RFC 5626)
    stream.extend_from_slice(&first);
    stream.extend_from_slice(&second);
    let limits = Limits::default();
    for cut in 0..=stream.len() {
        let mut buf = stream[..cut].to_vec();
        let mut seen = Vec::new();
        while let Some(end) = find_message_end(&buf, &limits).unwrap() {
            seen.push(
                parse_message(&buf[..end], Transport::Stream, &limits)
                    .unwrap()
                    .call_id,
            );
            buf.drain(..end);
        }
        buf.extend_from_slice(&stream[cut..]);
        while let Some(end) = find_message_end(&buf, &limits).unwrap() {
            seen.push(
                parse_message(&buf[..end], Transport::Stream, &limits)
                    .unwrap()
                    .call_id,
            );
            buf.drain(..end);
        }
        assert!(buf.is_empty(), "cut {cut}: {} bytes left", buf.len());
        assert_eq!(
            seen,
            [
                "esc01.239409asdfakjkn23onasd0-3234",
                "lwsdisp.1234abcd@funky.example.com"
            ],
            "cut {cut}"
        );
    }
}

#[test]
fn stream_framing_refuses_missing_or_bad_length_and_size() {
    let limits = Limits::default();
    let no_length = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n";
    assert!(matches!(
        find_message_end(no_length, &limits),
        Err(SipError::ContentLength(_))
    ));
    assert!(matches!(
        parse_message(no_length, Transport::Stream, &limits),
        Err(SipError::ContentLength(_))
    ));
    let huge = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999\r\n\r\n";
    assert_eq!(
        find_message_end(huge, &limits),
        Err(SipError::TooLarge { limit: 65_535 })
    );
    let endless = vec![b'a'; limits.max_message_size + 1];
    assert_eq!(
        find_message_end(&endless, &limits),
        Err(SipError::TooLarge { limit: 65_535 })
    );
    assert_eq!(find_message_end(&endless[..100], &limits), Ok(None));
}

#[test]
fn header_count_and_size_limits() {
    let request = torture("valid", "lwsdisp");
    let tight = Limits {
        max_message_size: 65_535,
        max_headers: 6,
    };
    assert_eq!(
        parse_message(&request, Transport::Datagram, &tight),
        Err(SipError::TooManyHeaders { limit: 6 })
    );
    let exact = Limits {
        max_headers: 7,
        ..tight
    };
    assert!(parse_message(&request, Transport::Datagram, &exact).is_ok());
    let small = Limits {
        max_message_size: request.len() - 1,
        max_headers: 100,
    };
    assert_eq!(
        parse_message(&request, Transport::Datagram, &small),
        Err(SipError::TooLarge {
            limit: request.len() - 1
        })
    );
    assert_eq!(SipError::TooLarge { limit: 1 }.status(), 513);
}

#[test]
fn bare_lf_and_folded_start_are_refused() {
    let lf = b"OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h\n\n";
    assert!(udp(lf).is_err());
    let message = String::from_utf8(torture("valid", "lwsdisp")).unwrap();
    let injected = message.replace("Max-Forwards: 70\r\n", "Max-Forwards: 70\rX: y\r\n");
    assert!(udp(injected.as_bytes()).is_err());
    let fold_first = message.replacen("\r\n", "\r\n x\r\n", 1);
    assert!(udp(fold_first.as_bytes()).is_err());
}

#[test]
fn response_round_trip_keeps_vias_and_adds_a_to_tag() {
    let request = parsed("wsinv");
    let bytes = ResponseBuilder::new(&request, 200, "OK")
        .to_tag("abc123")
        .body("text/plain", b"hi")
        .build()
        .unwrap();
    let response = udp(&bytes).unwrap();
    assert_eq!(response.status(), Some(200));
    assert_eq!(response.vias, request.vias);
    assert_eq!(response.call_id, request.call_id);
    assert_eq!(response.cseq, request.cseq);
    assert_eq!(response.from, request.from);
    // wsinv's To already has a tag: it is kept, not replaced.
    assert_eq!(response.to.tag(), Some("1918181833n"));
    assert_eq!(response.body, b"hi");
    assert_eq!(response.content_type(), Some("text/plain"));
    assert_eq!(response.header("Content-Length"), Some("2"));

    let untagged = parsed("lwsdisp");
    let bytes = ResponseBuilder::new(&untagged, 480, "Temporarily Unavailable")
        .to_tag("t1")
        .build()
        .unwrap();
    let response = parse_message(&bytes, Transport::Stream, &Limits::default()).unwrap();
    assert_eq!(response.to.tag(), Some("t1"));
    assert_eq!(response.to.uri, untagged.to.uri);
    assert_eq!(response.header("Content-Length"), Some("0"));
    assert_eq!(
        find_message_end(&bytes, &Limits::default()),
        Ok(Some(bytes.len()))
    );
    // A 100 Trying carries no new To tag.
    let trying = ResponseBuilder::new(&untagged, 100, "Trying")
        .to_tag("t1")
        .build()
        .unwrap();
    assert_eq!(udp(&trying).unwrap().to.tag(), None);
}

#[test]
fn every_valid_request_answers_and_parses_back() {
    for (name, bytes) in corpus("valid") {
        let request = udp(&bytes).unwrap();
        if request.method().is_none() {
            continue;
        }
        let built = ResponseBuilder::new(&request, 404, "Not Found")
            .to_tag("x9")
            .build()
            .unwrap();
        let response =
            udp(&built).unwrap_or_else(|e| panic!("{name}: response does not parse: {e}"));
        assert_eq!(response.vias, request.vias, "{name}");
        assert_eq!(response.cseq, request.cseq, "{name}");
        assert_eq!(response.call_id, request.call_id, "{name}");
        assert_eq!(response.from, request.from, "{name}");
        assert!(response.to.tag().is_some(), "{name}");
    }
}

#[test]
fn response_builder_refuses_bad_input() {
    let request = parsed("lwsdisp");
    assert!(ResponseBuilder::new(&request, 99, "x").build().is_err());
    assert!(ResponseBuilder::new(&request, 700, "x").build().is_err());
    assert!(ResponseBuilder::new(&request, 200, "OK\r\nX: y")
        .build()
        .is_err());
    assert!(ResponseBuilder::new(&request, 200, "OK")
        .to_tag("a b")
        .build()
        .is_err());
    assert!(ResponseBuilder::new(&request, 200, "OK")
        .header("X", "a\r\nY: b")
        .build()
        .is_err());
    let response = parsed("noreason");
    assert!(ResponseBuilder::new(&response, 200, "OK").build().is_err());
}

fn message_request(body: &[u8], transport: Transport) -> MessageRequest {
    MessageRequest {
        from: SipUri::parse("sip:alice@altsock.example").unwrap(),
        from_display_name: Some("Alice \"A\"".into()),
        from_tag: "f00".into(),
        to: SipUri::parse("sip:bob@192.0.2.4:5070;transport=udp").unwrap(),
        call_id: "c1@altsock.example".into(),
        cseq: 1,
        transport,
        via_transport: "UDP".into(),
        via_sent_by: "192.0.2.1:5060".into(),
        branch: "b1".into(),
        content_type: "text/plain;charset=UTF-8".into(),
        body: body.to_vec(),
    }
}

#[test]
fn message_request_round_trip() {
    let bytes = message_request("héllo".as_bytes(), Transport::Datagram)
        .build()
        .unwrap();
    let msg = udp(&bytes).unwrap();
    assert_eq!(msg.method(), Some("MESSAGE"));
    let uri = msg.request_uri().and_then(Uri::as_sip).unwrap();
    assert_eq!(uri.user.as_deref(), Some("bob"));
    assert_eq!(uri.port, Some(5070));
    assert_eq!(uri.param("transport"), Some(Some("udp")));
    assert_eq!(msg.from.display_name.as_deref(), Some("Alice \"A\""));
    assert_eq!(msg.from.tag(), Some("f00"));
    assert_eq!(msg.to.tag(), None);
    assert_eq!(msg.cseq.method, "MESSAGE");
    assert_eq!(msg.vias.len(), 1);
    assert_eq!(msg.vias[0].branch(), Some("z9hG4bKb1"));
    assert_eq!(msg.max_forwards, Some(70));
    assert_eq!(msg.content_type(), Some("text/plain;charset=UTF-8"));
    assert_eq!(msg.body, "héllo".as_bytes());
    assert_eq!(
        find_message_end(&bytes, &Limits::default()),
        Ok(Some(bytes.len()))
    );
}

#[test]
fn message_request_keeps_under_1300_bytes_on_udp() {
    let fits = message_request(&[b'x'; 900], Transport::Datagram)
        .build()
        .unwrap();
    assert!(fits.len() <= MESSAGE_UDP_LIMIT);
    let too_big = message_request(&[b'x'; 1300], Transport::Datagram).build();
    assert_eq!(
        too_big,
        Err(SipError::TooLarge {
            limit: MESSAGE_UDP_LIMIT
        })
    );
    let on_tcp = message_request(&[b'x'; 1300], Transport::Stream)
        .build()
        .unwrap();
    assert!(on_tcp.len() > MESSAGE_UDP_LIMIT);
    let mut bad = message_request(b"x", Transport::Stream);
    bad.content_type = "text/plain\r\nX: y".into();
    assert!(bad.build().is_err());
}

#[test]
fn a_tag_without_a_token_value_is_refused() {
    let message = String::from_utf8(torture("valid", "lwsdisp")).unwrap();
    for bad in [";tag\r\n", ";tag=\"q\"\r\n", ";tag=\r\n"] {
        let text = message.replace(";tag=323\r\n", bad);
        assert!(
            matches!(udp(text.as_bytes()), Err(SipError::Header { ref name, .. }) if name == "From"),
            "{bad:?}"
        );
    }
}
