//! WebSocket frame decoder properties, on [`Decoder`] directly, fed the way
//! the engine will feed it: each read's bytes, again after every outcome
//! with what the decoder did not use, until it needs more.
//!
//! - Any bytes, with a message cap the fuzzer chooses: fed in pieces equals
//!   fed at once (the same outcomes, the same violation); `NeedMore` means
//!   every byte was used; no message passes the cap; the heap held stays
//!   within twice the cap plus a control payload, and is zero whenever the
//!   decoder is between messages.
//! - Round trip: messages the fuzzer chooses (text that may not be UTF-8,
//!   binary, pings and pongs, fragmented as it chooses with pings between
//!   fragments, masked with masks it chooses, maybe a close) decode to what
//!   a reference model expects, at once and in pieces. A text message that
//!   is not UTF-8 fails with `InvalidUtf8` at the fragment holding its first
//!   impossible byte, no later and never before that byte arrives; a message
//!   over the cap fails with `MessageTooBig`.

use super::{cut_points, cut_rest, cut_seeds, raw_or_round_trip, Choices};
use crate::ws::decode::MAX_CONTROL_PAYLOAD;
use crate::ws::{encode_masked_frame, CloseCode, Control, Decoded, Decoder, Opcode, Violation};

/// What feeding a decoder gave: its outcomes in order (`NeedMore` left out)
/// and, when it failed, the bytes of the stream used by then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fed {
    /// The outcomes, ending with the violation if there was one.
    pub outcomes: Vec<Decoded>,
    /// Stream bytes used when the decoder failed.
    pub used_at_fail: Option<usize>,
}

/// The property: the first byte picks round trip (even) or raw bytes (odd).
pub fn check(data: &[u8]) {
    raw_or_round_trip(data, raw, round_trip);
}

/// Arbitrary bytes as client frames, fed whole and in pieces.
fn raw(choices: &mut Choices<'_>) {
    let max_message = usize::from(choices.u16());
    let (input, cuts) = cut_rest(choices);
    let whole = feed(input, &[], max_message);
    let pieces = feed(input, &cuts, max_message);
    assert_eq!(
        whole.outcomes, pieces.outcomes,
        "cutting at {cuts:?} changed the outcomes"
    );
}

/// Feeds `input` in reads ending at each of `cuts` (sorted) and then at its
/// end, checking the decoder's promises after every step.
pub fn feed(input: &[u8], cuts: &[usize], max_message: usize) -> Fed {
    let mut decoder = Decoder::new(max_message);
    let mut outcomes = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let mut read = &input[start..cut];
        start = cut;
        loop {
            let step = decoder.decode(read);
            assert!(step.used <= read.len(), "used more than given");
            read = &read[step.used..];
            let heap_bound = 2 * max_message + 8 + size_of::<Control>();
            assert!(
                decoder.heap_bytes() <= heap_bound,
                "heap {} over {heap_bound}",
                decoder.heap_bytes()
            );
            if decoder.is_between_messages() {
                assert_eq!(decoder.heap_bytes(), 0, "heap held between messages");
            }
            match step.decoded {
                Decoded::NeedMore => {
                    assert!(read.is_empty(), "NeedMore with bytes left");
                    break;
                }
                Decoded::Fail(violation) => {
                    outcomes.push(Decoded::Fail(violation));
                    let used_at_fail = Some(cut - read.len());
                    return Fed {
                        outcomes,
                        used_at_fail,
                    };
                }
                Decoded::Text(ref text) => assert!(text.len() <= max_message, "text over the cap"),
                Decoded::Binary(ref data) => {
                    assert!(data.len() <= max_message, "binary over the cap")
                }
                _ => {}
            }
            outcomes.push(step.decoded);
        }
    }
    Fed {
        outcomes,
        used_at_fail: None,
    }
}

/// A stream built from the fuzzer's choices and what it must decode to.
struct Script {
    wire: Vec<u8>,
    expected: Vec<Decoded>,
    /// For an expected failure: the earliest and the latest stream offset
    /// at which the decoder may have stopped.
    fail_window: Option<(usize, usize)>,
}

/// Chosen messages decode to what the model expects, at once and in pieces.
fn round_trip(choices: &mut Choices<'_>) {
    let max_message = usize::from(choices.u16() % 2048);
    let seeds = cut_seeds(choices);
    let script = script(choices, max_message);
    let cuts = cut_points(&seeds, script.wire.len());
    for cuts in [&[][..], &cuts] {
        let fed = feed(&script.wire, cuts, max_message);
        assert_eq!(fed.outcomes, script.expected, "cut at {cuts:?}");
        if let (Some(used), Some((earliest, latest))) = (fed.used_at_fail, script.fail_window) {
            assert!(
                used >= earliest && used <= latest,
                "failed at {used}, not in {earliest}..={latest}"
            );
            if cuts.is_empty() {
                assert_eq!(used, latest, "fed at once, the failing frame is used whole");
            }
        }
    }
}

/// Up to 12 messages from the choices, stopping at the first expected failure.
fn script(choices: &mut Choices<'_>, max_message: usize) -> Script {
    let mut script = Script {
        wire: Vec::new(),
        expected: Vec::new(),
        fail_window: None,
    };
    for _ in 0..12 {
        if choices.is_empty() || script.fail_window.is_some() {
            break;
        }
        match choices.byte() % 5 {
            0 => data_message(&mut script, choices, Opcode::Text, max_message),
            1 => data_message(&mut script, choices, Opcode::Binary, max_message),
            2 => {
                let ping = control_frame(&mut script.wire, choices, Opcode::Ping);
                script.expected.push(ping);
            }
            3 => {
                let pong = control_frame(&mut script.wire, choices, Opcode::Pong);
                script.expected.push(pong);
            }
            _ => {
                close_frame(&mut script, choices);
                break;
            }
        }
    }
    script
}

/// A ping or pong with a chosen payload of up to 125 bytes, on the wire;
/// returns what it decodes to.
fn control_frame(wire: &mut Vec<u8>, choices: &mut Choices<'_>, opcode: Opcode) -> Decoded {
    let len = usize::from(choices.byte()) % (MAX_CONTROL_PAYLOAD + 1);
    let payload = choices.take(len);
    let mask = [
        choices.byte(),
        choices.byte(),
        choices.byte(),
        choices.byte(),
    ];
    encode_masked_frame(wire, true, opcode, mask, payload);
    let control = Control::new(payload).unwrap_or(Control::EMPTY);
    match opcode {
        Opcode::Ping => Decoded::Ping(control),
        _ => Decoded::Pong(control),
    }
}

/// A close with a valid code and a short ASCII reason.
fn close_frame(script: &mut Script, choices: &mut Choices<'_>) {
    let code = [1000, 1001, 1003, 1011, 3000, 4999][usize::from(choices.byte()) % 6];
    let reason_len = usize::from(choices.byte() % 20);
    let reason: Vec<u8> = choices
        .take(reason_len)
        .iter()
        .map(|b| b'a' + b % 26)
        .collect();
    let mut payload = u16::to_be_bytes(code).to_vec();
    payload.extend_from_slice(&reason);
    encode_masked_frame(
        &mut script.wire,
        true,
        Opcode::Close,
        [1, 2, 3, 4],
        &payload,
    );
    let mut reference = Decoder::new(0);
    let mut frame = Vec::new();
    encode_masked_frame(&mut frame, true, Opcode::Close, [9, 8, 7, 6], &payload);
    let decoded = reference.decode(&frame).decoded;
    match &decoded {
        Decoded::Close(close) => {
            assert_eq!(close.code, Some(CloseCode(code)));
            assert_eq!(close.reason().as_bytes(), &reason[..]);
        }
        other => panic!("a valid close decoded as {other:?}"),
    }
    script.expected.push(decoded);
}

/// One fragment of a data message as written: its span in the message and
/// on the wire, and the ping sent after it, if any.
struct Fragment {
    msg_start: usize,
    msg_end: usize,
    head_end: usize,
    wire_end: usize,
    ping_after: Option<Decoded>,
}

/// A text or binary message in chosen fragments, maybe with pings between
/// them; expects the message, or the failure the model predicts.
fn data_message(
    script: &mut Script,
    choices: &mut Choices<'_>,
    opcode: Opcode,
    max_message: usize,
) {
    let len = usize::from(choices.u16() % 1024);
    let payload = choices.take(len).to_vec();
    let count = 1 + usize::from(choices.byte() % 4);
    let mut fragments = Vec::new();
    let mut start = 0;
    for i in 0..count {
        let last = i + 1 == count;
        let size = if last {
            payload.len() - start
        } else {
            usize::from(choices.byte()).min(payload.len() - start)
        };
        let kind = if i == 0 { opcode } else { Opcode::Continuation };
        let mask = [
            choices.byte(),
            choices.byte(),
            choices.byte(),
            choices.byte(),
        ];
        encode_masked_frame(
            &mut script.wire,
            last,
            kind,
            mask,
            &payload[start..start + size],
        );
        let wire_end = script.wire.len();
        let ping_after = (!last && choices.flag())
            .then(|| control_frame(&mut script.wire, choices, Opcode::Ping));
        fragments.push(Fragment {
            msg_start: start,
            msg_end: start + size,
            head_end: wire_end - size,
            wire_end,
            ping_after,
        });
        start += size;
    }
    let impossible = (opcode == Opcode::Text)
        .then(|| first_impossible(&payload))
        .flatten();
    for fragment in &fragments {
        if fragment.msg_end > max_message {
            return fail(
                script,
                Violation::MessageTooBig,
                (fragment.head_end, fragment.head_end),
            );
        }
        if let Some(k) = impossible.filter(|&k| k < fragment.msg_end) {
            let earliest = fragment.head_end + (k - fragment.msg_start) + 1;
            return fail(
                script,
                Violation::InvalidUtf8,
                (earliest, fragment.wire_end),
            );
        }
        script.expected.extend(fragment.ping_after.clone());
    }
    let last_end = fragments.last().map_or(0, |f| f.wire_end);
    script.expected.push(match opcode {
        Opcode::Binary => Decoded::Binary(payload),
        _ => match String::from_utf8(payload) {
            Ok(text) => Decoded::Text(text),
            Err(_) => return fail(script, Violation::InvalidUtf8, (last_end, last_end)),
        },
    });
}

/// Expects `violation`, the decoder stopping within `window`.
fn fail(script: &mut Script, violation: Violation, window: (usize, usize)) {
    script.expected.push(Decoded::Fail(violation));
    script.fail_window = Some(window);
}

/// The index of the first byte at which `bytes` can no longer begin valid
/// UTF-8; `None` when every prefix can (it may still end inside a character).
fn first_impossible(bytes: &[u8]) -> Option<usize> {
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => return None,
        Err(e) => e.valid_up_to(),
    };
    (valid..bytes.len())
        .find(|&k| std::str::from_utf8(&bytes[valid..=k]).is_err_and(|e| e.error_len().is_some()))
}
