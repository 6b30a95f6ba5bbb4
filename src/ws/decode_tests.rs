//! Tests of the frame decoder: RFC 6455 5.7's examples, every rule with its
//! close code, every split point of a stream, and where heap is held.

use super::*;
use crate::ws::encode::encode_masked_frame;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame.
fn frame(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_masked_frame(&mut out, fin, opcode, MASK, payload);
    out
}

/// Frames joined into one stream.
fn stream(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

/// What a decoder reports for `reads` fed in turn, NeedMore left out; stops
/// at a failure. Asserts the decoder uses every byte unless it failed.
fn outcomes(max_message: usize, reads: &[&[u8]]) -> Vec<Decoded> {
    let mut decoder = Decoder::new(max_message);
    let mut found = Vec::new();
    for read in reads {
        let mut rest = *read;
        loop {
            let step = decoder.decode(rest);
            assert!(step.used <= rest.len());
            rest = &rest[step.used..];
            match step.decoded {
                Decoded::NeedMore => {
                    assert!(rest.is_empty(), "NeedMore with {} bytes left", rest.len());
                    break;
                }
                Decoded::Fail(v) => {
                    found.push(Decoded::Fail(v));
                    return found;
                }
                other => found.push(other),
            }
        }
    }
    found
}

fn at_once(bytes: &[u8]) -> Vec<Decoded> {
    outcomes(1 << 20, &[bytes])
}

fn byte_by_byte(bytes: &[u8]) -> Vec<Decoded> {
    let reads: Vec<&[u8]> = bytes.chunks(1).collect();
    outcomes(1 << 20, &reads)
}

fn text(s: &str) -> Decoded {
    Decoded::Text(s.into())
}

fn fail(violation: Violation) -> Vec<Decoded> {
    vec![Decoded::Fail(violation)]
}

fn control(bytes: &[u8]) -> Control {
    Control::new(bytes).expect("short")
}

#[test]
fn rfc_6455_5_7_masked_hello() {
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(at_once(&wire), [text("Hello")]);
}

#[test]
fn rfc_6455_5_7_unmasked_hello_is_refused_1002() {
    let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(at_once(&wire), fail(Violation::Unmasked));
    assert_eq!(Violation::Unmasked.close_code(), CloseCode::PROTOCOL_ERROR);
}

#[test]
fn rfc_6455_5_7_fragmented_hello() {
    let wire = stream(&[
        frame(false, Opcode::Text, b"Hel"),
        frame(true, Opcode::Continuation, b"lo"),
    ]);
    assert_eq!(wire[0], 0x01);
    assert_eq!(wire[9], 0x80);
    assert_eq!(at_once(&wire), [text("Hello")]);
}

#[test]
fn rfc_6455_5_7_ping_and_pong() {
    assert_eq!(
        at_once(&frame(true, Opcode::Ping, b"Hello")),
        [Decoded::Ping(control(b"Hello"))]
    );
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(at_once(&pong), [Decoded::Pong(control(b"Hello"))]);
    assert_eq!(
        at_once(&frame(true, Opcode::Pong, b"")),
        [Decoded::Pong(Control::EMPTY)]
    );
}

#[test]
fn rfc_6455_5_7_lengths_256_and_64_kib() {
    for len in [256, 65536] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let wire = frame(true, Opcode::Binary, &payload);
        let head = if len == 256 {
            &[0x82, 0xFE, 0x01, 0x00][..]
        } else {
            &[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]
        };
        assert_eq!(&wire[..head.len()], head);
        assert_eq!(at_once(&wire), [Decoded::Binary(payload)]);
    }
}

#[test]
fn empty_messages_decode() {
    assert_eq!(at_once(&frame(true, Opcode::Text, b"")), [text("")]);
    assert_eq!(
        at_once(&frame(true, Opcode::Binary, b"")),
        [Decoded::Binary(Vec::new())]
    );
    let wire = stream(&[
        frame(false, Opcode::Text, b""),
        frame(true, Opcode::Continuation, b""),
    ]);
    assert_eq!(at_once(&wire), [text("")]);
}

/// A stream with fragments, an interleaved ping, lengths on both sides of
/// 125 and 65535, multi-byte characters cut between fragments, and a close.
fn mixed_stream() -> (Vec<u8>, Vec<Decoded>) {
    let big: Vec<u8> = (0..70_000).map(|i| (i % 253) as u8).collect();
    let euro = "€".as_bytes();
    let wire = stream(&[
        frame(false, Opcode::Text, &[b'a', euro[0]]),
        frame(true, Opcode::Ping, b"ka"),
        frame(false, Opcode::Continuation, &euro[1..2]),
        frame(true, Opcode::Continuation, &[euro[2], b'z']),
        frame(true, Opcode::Binary, &[7; 300]),
        frame(true, Opcode::Binary, &big),
        frame(true, Opcode::Pong, &[9; 125]),
        frame(true, Opcode::Close, &[0x03, 0xE8, b'o', b'k']),
    ]);
    let close = match at_once(&frame(true, Opcode::Close, &[0x03, 0xE8, b'o', b'k']))[..] {
        [Decoded::Close(close)] => close,
        ref other => panic!("{other:?}"),
    };
    let expected = vec![
        Decoded::Ping(control(b"ka")),
        text("a€z"),
        Decoded::Binary(vec![7; 300]),
        Decoded::Binary(big),
        Decoded::Pong(control(&[9; 125])),
        Decoded::Close(close),
    ];
    (wire, expected)
}

#[test]
fn a_mixed_stream_decodes_at_once_and_byte_by_byte() {
    let (wire, expected) = mixed_stream();
    assert_eq!(at_once(&wire), expected);
    assert_eq!(byte_by_byte(&wire), expected);
}

#[test]
fn every_split_point_gives_the_same_outcomes() {
    let (wire, expected) = mixed_stream();
    // Every two-way split of the stream without its 70,000-byte frame, and
    // of a stream of small frames every three-way split.
    let small: Vec<u8> = {
        let mut s = stream(&[
            frame(false, Opcode::Text, "κό".as_bytes()),
            frame(true, Opcode::Ping, b"p"),
            frame(true, Opcode::Continuation, "σμε".as_bytes()),
        ]);
        s.extend(frame(true, Opcode::Binary, &[1; 130]));
        s
    };
    let small_expected = vec![
        Decoded::Ping(control(b"p")),
        text("κόσμε"),
        Decoded::Binary(vec![1; 130]),
    ];
    for cut in 0..=small.len() {
        for cut2 in cut..=small.len() {
            let reads = [&small[..cut], &small[cut..cut2], &small[cut2..]];
            assert_eq!(
                outcomes(1 << 20, &reads),
                small_expected,
                "cuts {cut} {cut2}"
            );
        }
    }
    for cut in (0..=wire.len()).step_by(97).chain(0..400) {
        let reads = [&wire[..cut], &wire[cut..]];
        assert_eq!(outcomes(1 << 20, &reads), expected, "cut {cut}");
    }
}

#[test]
fn rsv_bits_are_refused_1002() {
    for rsv in [0x40, 0x20, 0x10] {
        let mut wire = frame(true, Opcode::Text, b"x");
        wire[0] |= rsv;
        assert_eq!(at_once(&wire), fail(Violation::ReservedBits));
    }
}

#[test]
fn reserved_opcodes_are_refused_1002() {
    for opcode in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let mut wire = frame(true, Opcode::Binary, b"x");
        wire[0] = 0x80 | opcode;
        assert_eq!(at_once(&wire), fail(Violation::ReservedOpcode), "{opcode}");
    }
}

#[test]
fn a_violation_is_seen_on_the_second_byte() {
    // An unmasked frame claiming 2^62 bytes fails without waiting for them.
    let wire = [0x82, 0x7F];
    assert_eq!(at_once(&wire), fail(Violation::Unmasked));
    let mut decoder = Decoder::new(10);
    assert_eq!(decoder.decode(&[0x82]).decoded, Decoded::NeedMore);
    assert_eq!(
        decoder.decode(&[0x7F]).decoded,
        Decoded::Fail(Violation::Unmasked)
    );
}

#[test]
fn control_frames_over_125_bytes_are_refused_1002() {
    for opcode in [Opcode::Ping, Opcode::Pong, Opcode::Close] {
        assert_eq!(
            at_once(&frame(true, opcode, &[0x03; 126])),
            fail(Violation::ControlTooLong)
        );
    }
    assert_eq!(
        at_once(&frame(true, Opcode::Ping, &[0; 125])),
        [Decoded::Ping(control(&[0; 125]))]
    );
}

#[test]
fn fragmented_control_frames_are_refused_1002() {
    for opcode in [Opcode::Ping, Opcode::Pong, Opcode::Close] {
        assert_eq!(
            at_once(&frame(false, opcode, b"")),
            fail(Violation::FragmentedControl)
        );
    }
}

#[test]
fn continuation_without_start_is_refused_1002() {
    let wire = frame(true, Opcode::Continuation, b"x");
    assert_eq!(at_once(&wire), fail(Violation::ContinuationWithoutStart));
    // Also after a message has ended.
    let wire = stream(&[
        frame(true, Opcode::Text, b"a"),
        frame(true, Opcode::Continuation, b"b"),
    ]);
    assert_eq!(
        at_once(&wire),
        [
            text("a"),
            Decoded::Fail(Violation::ContinuationWithoutStart)
        ]
    );
}

#[test]
fn a_new_data_frame_inside_a_fragmented_message_is_refused_1002() {
    for opcode in [Opcode::Text, Opcode::Binary] {
        let wire = stream(&[
            frame(false, Opcode::Binary, b"a"),
            frame(true, opcode, b"b"),
        ]);
        assert_eq!(at_once(&wire), fail(Violation::DataInsideFragmented));
    }
}

#[test]
fn a_64_bit_length_with_the_top_bit_set_is_refused_1002() {
    let mut wire = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
    wire.extend_from_slice(&MASK);
    assert_eq!(at_once(&wire), fail(Violation::LengthTooLarge));
}

#[test]
fn the_message_size_cap_is_exact_and_answered_1009() {
    let payload = [b'x'; 100];
    assert_eq!(
        outcomes(100, &[&frame(true, Opcode::Text, &payload)]),
        [text(&"x".repeat(100))]
    );
    let over = frame(true, Opcode::Text, &[b'x'; 101]);
    assert_eq!(outcomes(100, &[&over]), fail(Violation::MessageTooBig));
    assert_eq!(
        Violation::MessageTooBig.close_code(),
        CloseCode::MESSAGE_TOO_BIG
    );
    // Counted across fragments, refused at the head of the fragment that passes it.
    let wire = stream(&[
        frame(false, Opcode::Binary, &[0; 60]),
        frame(true, Opcode::Continuation, &[0; 41]),
    ]);
    let mut decoder = Decoder::new(100);
    let first = decoder.decode(&wire[..66]);
    assert_eq!((first.used, first.decoded), (66, Decoded::NeedMore));
    let second = decoder.decode(&wire[66..66 + 6]);
    assert_eq!(second.decoded, Decoded::Fail(Violation::MessageTooBig));
    assert_eq!(decoder.heap_bytes(), 0, "the partial message is dropped");
}

#[test]
fn a_claimed_length_is_not_allocated_ahead_of_its_bytes() {
    let mut wire = Vec::new();
    encode_masked_frame(&mut wire, true, Opcode::Binary, MASK, &vec![0; 1 << 20]);
    let mut decoder = Decoder::new(1 << 20);
    assert_eq!(decoder.decode(&wire[..14 + 10]).decoded, Decoded::NeedMore);
    assert!(
        decoder.heap_bytes() < 1024,
        "{} bytes held for 10 arrived",
        decoder.heap_bytes()
    );
}

#[test]
fn close_frames_decode_with_code_and_reason() {
    let [Decoded::Close(close)] = at_once(&frame(true, Opcode::Close, b"\x03\xe8bye"))[..] else {
        panic!("not a close")
    };
    assert_eq!(
        (close.code, close.reason(), close.reply_code()),
        (Some(CloseCode::NORMAL), "bye", CloseCode::NORMAL)
    );
    let [Decoded::Close(empty)] = at_once(&frame(true, Opcode::Close, b""))[..] else {
        panic!("not a close")
    };
    assert_eq!(
        (empty.code, empty.reason(), empty.reply_code()),
        (None, "", CloseCode::NORMAL)
    );
    let [Decoded::Close(app)] = at_once(&frame(true, Opcode::Close, &4000u16.to_be_bytes()))[..]
    else {
        panic!("not a close")
    };
    assert_eq!(app.reply_code(), CloseCode(4000));
}

#[test]
fn a_close_frame_of_one_byte_is_refused_1002() {
    assert_eq!(
        at_once(&frame(true, Opcode::Close, &[0x03])),
        fail(Violation::CloseLengthOne)
    );
}

#[test]
fn invalid_close_codes_are_refused_1002() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let wire = frame(true, Opcode::Close, &code.to_be_bytes());
        assert_eq!(at_once(&wire), fail(Violation::InvalidCloseCode), "{code}");
        assert_eq!(
            Violation::InvalidCloseCode.close_code(),
            CloseCode::PROTOCOL_ERROR
        );
    }
}

#[test]
fn a_close_reason_that_is_not_utf8_is_refused_1007() {
    // Autobahn 7.5.1: "κόσμε" then a surrogate.
    let mut payload = vec![0x03, 0xE8];
    payload.extend_from_slice(&[
        0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80,
    ]);
    assert_eq!(
        at_once(&frame(true, Opcode::Close, &payload)),
        fail(Violation::InvalidUtf8)
    );
    assert_eq!(
        Violation::InvalidUtf8.close_code(),
        CloseCode::INVALID_PAYLOAD
    );
}

#[test]
fn input_after_a_close_is_used_and_ignored() {
    let wire = stream(&[
        frame(true, Opcode::Close, b""),
        frame(true, Opcode::Text, b"late"),
        vec![0xFF; 9],
    ]);
    let mut decoder = Decoder::new(100);
    let step = decoder.decode(&wire);
    assert!(matches!(step.decoded, Decoded::Close(_)));
    assert_eq!(step.used, 6);
    let rest = decoder.decode(&wire[6..]);
    assert_eq!(
        (rest.used, rest.decoded),
        (wire.len() - 6, Decoded::NeedMore)
    );
}

#[test]
fn after_a_violation_every_call_fails_again_using_nothing() {
    let mut decoder = Decoder::new(100);
    assert_eq!(
        decoder.decode(&[0x83, 0x80]).decoded,
        Decoded::Fail(Violation::ReservedOpcode)
    );
    let again = decoder.decode(&frame(true, Opcode::Text, b"ok"));
    assert_eq!(
        (again.used, again.decoded),
        (0, Decoded::Fail(Violation::ReservedOpcode))
    );
}

#[test]
fn invalid_text_fails_at_the_fragment_where_it_becomes_impossible() {
    // Autobahn 6.4.1-style: three fragments, the middle one holds ED A0 80.
    let first = frame(false, Opcode::Text, "κόσμε".as_bytes());
    let second = frame(false, Opcode::Continuation, &[0xED, 0xA0, 0x80]);
    let third = frame(true, Opcode::Continuation, b"edited");
    let wire = stream(&[first.clone(), second.clone(), third]);
    let mut decoder = Decoder::new(1 << 20);
    let step = decoder.decode(&wire);
    assert_eq!(step.decoded, Decoded::Fail(Violation::InvalidUtf8));
    assert_eq!(
        step.used,
        first.len() + second.len(),
        "the third fragment is never read"
    );
}

#[test]
fn invalid_text_fails_inside_a_frame_before_its_end_arrives() {
    // A 1000-byte text frame whose 6th byte (F5) can start nothing: the
    // failure comes as soon as that byte arrives, not after 1000 bytes.
    let mut payload = b"hello".to_vec();
    payload.push(0xF5);
    payload.resize(1000, b'a');
    let wire = frame(true, Opcode::Text, &payload);
    let mut decoder = Decoder::new(1 << 20);
    let head = 2 + 2 + 4;
    assert_eq!(decoder.decode(&wire[..head + 5]).decoded, Decoded::NeedMore);
    assert_eq!(
        decoder.decode(&wire[head + 5..head + 6]).decoded,
        Decoded::Fail(Violation::InvalidUtf8)
    );
}

#[test]
fn a_text_message_ending_inside_a_character_is_refused_1007() {
    let wire = stream(&[
        frame(false, Opcode::Text, b"a"),
        frame(true, Opcode::Continuation, &[0xE2, 0x82]),
    ]);
    assert_eq!(at_once(&wire), fail(Violation::InvalidUtf8));
}

#[test]
fn binary_messages_are_not_checked_as_utf8() {
    let wire = frame(true, Opcode::Binary, &[0xFF, 0xED, 0xA0, 0x80]);
    assert_eq!(
        at_once(&wire),
        [Decoded::Binary(vec![0xFF, 0xED, 0xA0, 0x80])]
    );
}

#[test]
fn heap_is_held_only_while_a_frame_or_message_is_partial() {
    let mut decoder = Decoder::new(1 << 20);
    assert_eq!(decoder.heap_bytes(), 0);
    assert!(decoder.is_between_messages());
    let whole = frame(true, Opcode::Text, b"hello");
    decoder.decode(&whole[..8]);
    assert!(decoder.heap_bytes() > 0 && !decoder.is_between_messages());
    assert_eq!(decoder.decode(&whole[8..]).decoded, text("hello"));
    assert_eq!(decoder.heap_bytes(), 0);
    assert!(decoder.is_between_messages());
    // A ping that arrives whole allocates nothing; one that arrives in two
    // reads is boxed until its end.
    let ping = frame(true, Opcode::Ping, b"abcdef");
    assert_eq!(
        decoder.decode(&ping).decoded,
        Decoded::Ping(control(b"abcdef"))
    );
    assert_eq!(decoder.heap_bytes(), 0);
    decoder.decode(&ping[..8]);
    assert!(decoder.heap_bytes() > 0);
    assert_eq!(
        decoder.decode(&ping[8..]).decoded,
        Decoded::Ping(control(b"abcdef"))
    );
    assert_eq!(decoder.heap_bytes(), 0);
    // A fragmented message holds its fragments until its last one.
    let first = frame(false, Opcode::Binary, b"ab");
    decoder.decode(&first);
    assert!(decoder.heap_bytes() > 0 && !decoder.is_between_messages());
    let last = frame(true, Opcode::Continuation, b"cd");
    assert_eq!(
        decoder.decode(&last).decoded,
        Decoded::Binary(b"abcd".to_vec())
    );
    assert_eq!(decoder.heap_bytes(), 0);
}

#[test]
fn the_decoder_state_is_small() {
    // Held per WebSocket connection: keep it within 96 bytes.
    assert!(size_of::<Decoder>() <= 96, "{} bytes", size_of::<Decoder>());
}
