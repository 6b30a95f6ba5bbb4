//! The pure request parser: whole requests, every split point of several
//! requests (a prefix is always "need more", and the whole gives the same
//! request), pipelined input, and every malformed input with its status.

use altsock::http::parse::{parse_request, Limits, ParseError, Parsed, Progress, RequestParser};

fn limits() -> Limits {
    Limits::default()
}

fn complete(buf: &[u8]) -> Parsed {
    match parse_request(buf, &limits()) {
        Ok(Progress::Complete(parsed)) => parsed,
        other => panic!(
            "expected a complete request for {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

fn error(buf: &[u8]) -> ParseError {
    error_with(buf, &limits())
}

fn error_with(buf: &[u8], limits: &Limits) -> ParseError {
    match parse_request(buf, limits) {
        Err(e) => e,
        other => panic!(
            "expected an error for {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

/// Requests whose every prefix must be incomplete and whose whole must parse.
const REQUESTS: &[&str] = &[
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /jchat?me=ann&room=1 HTTP/1.1\r\nHost: example.com\r\nAccept: text/event-stream\r\nX-Empty:\r\nCookie: a=b; c=d\r\n\r\n",
    "POST /pub HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nhello\r\nworld",
    "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nTrailer: x\r\n\r\n",
    "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "GET /old HTTP/1.0\r\n\r\n",
    "HEAD /h HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
];

#[test]
fn every_split_point_is_partial_then_complete() {
    for raw in REQUESTS {
        let raw = raw.as_bytes();
        let whole = complete(raw);
        assert_eq!(whole.consumed, raw.len());
        for split in 0..raw.len() {
            match parse_request(&raw[..split], &limits()) {
                Ok(Progress::Partial { .. }) => {}
                other => panic!(
                    "prefix of {} bytes of {:?} gave {other:?}",
                    split,
                    String::from_utf8_lossy(raw)
                ),
            }
            // The prefix followed by the rest, in a new buffer, is the same request.
            let mut joined = raw[..split].to_vec();
            joined.extend_from_slice(&raw[split..]);
            assert_eq!(complete(&joined), whole);
        }
    }
}

#[test]
fn head_done_is_reported_only_once_the_head_is_complete() {
    let raw =
        b"POST /p HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody";
    let head_len = raw.len() - 4;
    for split in 0..raw.len() {
        let progress = parse_request(&raw[..split], &limits()).expect("valid prefix");
        let expected = Progress::Partial {
            head_done: split >= head_len,
            wants_continue: split >= head_len,
        };
        assert_eq!(progress, expected, "split at {split}");
    }
}

#[test]
fn pipelined_requests_parse_one_after_another_at_every_split() {
    let all: String = REQUESTS.concat();
    let raw = all.as_bytes();
    let mut offset = 0;
    for expected in REQUESTS {
        let parsed = complete(&raw[offset..]);
        assert_eq!(parsed.consumed, expected.len());
        assert_eq!(parsed, complete(expected.as_bytes()));
        offset += parsed.consumed;
    }
    assert_eq!(offset, raw.len());
    // Feeding the stream as it arrives, cut anywhere, yields the same requests in order.
    for split in 0..raw.len() {
        let mut buf = raw[..split].to_vec();
        let mut got = Vec::new();
        let mut fed_rest = false;
        loop {
            match parse_request(&buf, &limits()).expect("valid stream") {
                Progress::Complete(parsed) => {
                    buf.drain(..parsed.consumed);
                    got.push(parsed);
                }
                Progress::Partial { .. } if !fed_rest => {
                    buf.extend_from_slice(&raw[split..]);
                    fed_rest = true;
                }
                Progress::Partial { .. } => break,
            }
        }
        assert!(buf.is_empty(), "split {split}: left {buf:?}");
        assert_eq!(got.len(), REQUESTS.len(), "split {split}");
        for (parsed, expected) in got.iter().zip(REQUESTS) {
            assert_eq!(parsed.head, complete(expected.as_bytes()).head);
        }
    }
}

#[test]
fn fields_are_copied_out() {
    let parsed = complete(REQUESTS[1].as_bytes());
    assert_eq!(parsed.head.method, "GET");
    assert_eq!(parsed.head.target, "/jchat?me=ann&room=1");
    assert_eq!(parsed.head.minor_version, 1);
    assert!(parsed.head.keep_alive);
    assert_eq!(
        parsed.head.headers,
        vec![
            ("Host".to_string(), "example.com".to_string()),
            ("Accept".to_string(), "text/event-stream".to_string()),
            ("X-Empty".to_string(), String::new()),
            ("Cookie".to_string(), "a=b; c=d".to_string()),
        ]
    );
    assert!(parsed.body.is_empty());
}

#[test]
fn bodies_by_length_and_chunked() {
    assert_eq!(complete(REQUESTS[2].as_bytes()).body, b"hello\r\nworld");
    assert_eq!(complete(REQUESTS[3].as_bytes()).body, b"hello world!");
    assert_eq!(complete(REQUESTS[4].as_bytes()).body, b"abc");
    // Two equal Content-Length headers are one length.
    let twice =
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nokNEXT";
    let parsed = complete(twice);
    assert_eq!(parsed.body, b"ok");
    assert_eq!(parsed.consumed, twice.len() - 4);
}

#[test]
fn keep_alive_rules() {
    let ka = |raw: &str| complete(raw.as_bytes()).head.keep_alive;
    assert!(ka("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!ka(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, Close\r\n\r\n"
    ));
    assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
    assert!(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
}

#[test]
fn head_limits_give_431() {
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    assert_eq!(error(big.as_bytes()), ParseError::HeadTooLarge);
    // Incomplete but already over the limit: no need to wait for the rest.
    assert_eq!(
        error(&big.as_bytes()[..16 * 1024 + 10]),
        ParseError::HeadTooLarge
    );
    assert_eq!(ParseError::HeadTooLarge.status(), 431);
    let small = Limits {
        max_head: 64,
        ..Limits::default()
    };
    let head = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "p".repeat(60));
    assert_eq!(
        error_with(head.as_bytes(), &small),
        ParseError::HeadTooLarge
    );

    let headers = |n: usize| {
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 1..n {
            raw.push_str(&format!("X-{i}: v\r\n"));
        }
        raw.push_str("\r\n");
        raw
    };
    assert_eq!(complete(headers(64).as_bytes()).head.headers.len(), 64);
    assert_eq!(error(headers(65).as_bytes()), ParseError::TooManyHeaders);
    assert_eq!(ParseError::TooManyHeaders.status(), 431);
}

#[test]
fn malformed_input_gives_400() {
    let cases: &[&str] = &[
        "GET\r\n\r\n",
        "GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
        "G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost a\r\n\r\n",
        "GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
        "GET / HTTP/1.1\r\n: a\r\n\r\n",
        // bare LF, in the request line, in a header, at the end
        "GET / HTTP/1.1\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\n",
        // obs-fold
        "GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n\ttwo\r\n\r\n",
        // framing conflicts
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
        // broken chunked bodies
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY",
        // HTTP/1.1 needs Host
        "GET / HTTP/1.1\r\n\r\n",
        // bare CR, control characters in a value, space before the colon
        "GET / HTTP/1.1\rHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",
    ];
    for raw in cases {
        match parse_request(raw.as_bytes(), &limits()) {
            Err(e @ ParseError::Malformed(_)) => assert_eq!(e.status(), 400),
            other => panic!("{raw:?} gave {other:?}, expected 400"),
        }
    }
}

#[test]
fn bare_lf_is_rejected_before_the_head_is_complete() {
    let raw = b"GET / HTTP/1.1\nHost: a\n";
    assert!(matches!(
        parse_request(raw, &limits()),
        Err(ParseError::Malformed(_))
    ));
}

#[test]
fn other_transfer_codings_give_501() {
    for te in [
        "gzip",
        "gzip, chunked",
        "chunked, gzip",
        "identity",
        "x-custom",
    ] {
        let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n");
        let e = error(raw.as_bytes());
        assert_eq!(e, ParseError::UnsupportedTransferEncoding, "{te}");
        assert_eq!(e.status(), 501);
    }
}

#[test]
fn bodies_over_the_limit_give_413() {
    let small = Limits {
        max_body: 10,
        ..Limits::default()
    };
    let by_length = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n";
    assert_eq!(error_with(by_length, &small), ParseError::BodyTooLarge);
    let at_limit = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789";
    assert!(matches!(
        parse_request(at_limit, &small),
        Ok(Progress::Complete(_))
    ));
    let chunked =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n";
    assert_eq!(error_with(chunked, &small), ParseError::BodyTooLarge);
    let huge_chunk =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n";
    assert_eq!(error_with(huge_chunk, &small), ParseError::BodyTooLarge);
    assert_eq!(ParseError::BodyTooLarge.status(), 413);
    // The default limit is 1 MiB.
    let over = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        1024 * 1024 + 1
    );
    assert_eq!(error(over.as_bytes()), ParseError::BodyTooLarge);
}

#[test]
fn other_versions_give_505() {
    let e = error(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n");
    assert_eq!(e, ParseError::UnsupportedVersion);
    assert_eq!(e.status(), 505);
}

#[test]
fn errors_display_their_rule() {
    assert_eq!(
        ParseError::Malformed("bare LF line ending").to_string(),
        "malformed request: bare LF line ending"
    );
    assert_eq!(
        ParseError::HeadTooLarge.to_string(),
        "request head too large"
    );
}

#[test]
fn chunk_framing_cannot_buffer_without_end() {
    let small = Limits {
        max_body: 100,
        max_head: 100,
        ..Limits::default()
    };
    let head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for tail in [&b"1;ext="[..], b"1", b"0\r\nX-T: "] {
        let mut raw = head.to_vec();
        raw.extend_from_slice(tail);
        let filler = if tail == b"1" { b' ' } else { b'a' };
        raw.resize(raw.len() + 250, filler);
        assert!(
            matches!(parse_request(&raw, &small), Ok(Progress::Partial { .. })),
            "within the cap it is only incomplete"
        );
        raw.resize(raw.len() + 100, filler);
        assert_eq!(error_with(&raw, &small), ParseError::BodyTooLarge);
    }
}

#[test]
fn no_100_continue_for_http10() {
    let raw = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(
        parse_request(raw, &limits()),
        Ok(Progress::Partial {
            head_done: true,
            wants_continue: false
        })
    );
}

/// Feeds `raw` to one `RequestParser` the way the engine does: one byte per
/// read, appended to a buffer from which consumed bytes are dropped. Returns
/// the request and how many bytes the parser was shown in all (its work).
fn feed_byte_by_byte(raw: &[u8]) -> (Parsed, usize) {
    let mut parser = RequestParser::new();
    let mut buf = Vec::new();
    let mut shown = 0;
    for (i, &byte) in raw.iter().enumerate() {
        buf.push(byte);
        shown += buf.len();
        let step = parser.advance(&buf, &limits()).expect("valid request");
        buf.drain(..step.consumed);
        if let Progress::Complete(parsed) = step.progress {
            assert_eq!(i + 1, raw.len(), "complete early");
            assert!(buf.is_empty() && parser.is_idle());
            return (parsed, shown);
        }
    }
    panic!("never complete: {:?}", String::from_utf8_lossy(raw));
}

/// Issue 7, finding 11: a chunked body must not be parsed again from its
/// start on every read. Once the head is in, every read shows the parser only
/// the bytes it has not consumed yet, so a slow upload costs each byte once.
#[test]
fn slow_chunked_body_is_parsed_once() {
    let head = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut raw = head.to_string();
    for _ in 0..2000 {
        raw.push_str("1\r\nx\r\n");
    }
    raw.push_str("0\r\n\r\n");
    let (parsed, shown) = feed_byte_by_byte(raw.as_bytes());
    assert_eq!(parsed.body, vec![b'x'; 2000]);
    assert_eq!(parsed.consumed, raw.len());
    // The incomplete head stays in the buffer, shown again on each read (the
    // parser looks only at what is new; it is bounded by max_head); the body's
    // 12,005 bytes are each shown once.
    let head_work: usize = (1..=head.len()).sum();
    let body_len = raw.len() - head.len();
    assert_eq!(shown, head_work + body_len);
}

/// The same for a body delimited by Content-Length.
#[test]
fn slow_length_body_is_parsed_once() {
    let head = "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n";
    let raw = format!("{head}{}", "y".repeat(5000));
    let (parsed, shown) = feed_byte_by_byte(raw.as_bytes());
    assert_eq!(parsed.body.len(), 5000);
    assert_eq!(shown, (1..=head.len()).sum::<usize>() + 5000);
}

/// Every request, split once anywhere and fed to one parser in two reads
/// (consumed bytes dropped in between), is the same as parsed whole.
#[test]
fn parser_resumes_at_every_split_point() {
    for raw in REQUESTS {
        let raw = raw.as_bytes();
        let whole = complete(raw);
        for split in 0..raw.len() {
            let mut parser = RequestParser::new();
            let first = parser.advance(&raw[..split], &limits()).expect("prefix");
            assert!(matches!(first.progress, Progress::Partial { .. }));
            let step = parser
                .advance(&raw[first.consumed..], &limits())
                .expect("rest");
            let Progress::Complete(parsed) = step.progress else {
                panic!("split {split}: incomplete");
            };
            assert_eq!(first.consumed + step.consumed, raw.len());
            assert_eq!(
                (parsed.head, parsed.body),
                (whole.head.clone(), whole.body.clone())
            );
        }
    }
}

/// Issue 7, finding 12: framing that a proxy in front may read differently.
#[test]
fn leniencies_a_proxy_may_read_differently_give_400() {
    let chunked = "POST /pub/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (raw, why) in [
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
    ] {
        assert_eq!(error(raw.as_bytes()), ParseError::Malformed(why), "{raw:?}");
        assert_eq!(error(raw.as_bytes()).status(), 400);
    }
}
/// Found by the `request_split` and `chunked` fuzz targets: the status of a
/// refusal depended on where the reads ended (the parser looked past the
/// first fault, or past the limits, only when the bytes came at once).
#[test]
fn a_refusal_has_the_same_status_wherever_the_reads_end() {
    use altsock::fuzzing::request::{check_stream, End};
    let small = Limits {
        max_head: 64,
        max_headers: 4,
        max_body: 8,
    };
    let chunked = "POST /c HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\n\r\n";
    let ext = "a".repeat(100);
    let cases: Vec<(String, Limits, u16)> = vec![
        // A request line over max_head with a bad version in it: 431, not 505.
        (format!("{} T HTTP/a\r\n\r\n", "V".repeat(80)), small, 431),
        // A bare LF before a bad version: 400, not 505.
        ("\n!1!! !!!! !!!!\r\n\r\n".into(), limits(), 400),
        // A bad version before a bare LF: 505, not 400, also when the head
        // trickles in and its line endings are checked as they arrive.
        ("GET / HTTP/9.9\r\nA: b\nC: d\r\n\r\n".into(), limits(), 505),
        // Chunk framing over its cap (2 x max_body + max_head) in a body
        // that completes: 413, not accepted.
        (format!("{chunked}1;{ext}\r\nx\r\n0\r\n\r\n"), small, 413),
        // ... and before a malformed chunk: 413, not 400.
        (format!("{chunked}1;{ext}\r\nxyz\r\n0\r\n\r\n"), small, 413),
    ];
    for (stream, limits, status) in cases {
        let stream = stream.as_bytes();
        for split in 0..=stream.len() {
            let outcome = check_stream(stream, &[split], &limits);
            assert_eq!(outcome.end, End::Refused(status), "{stream:?}");
        }
    }
}
