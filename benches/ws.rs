//! WebSocket codec: decoding a small masked client frame and encoding a small
//! server frame, through `altsock::ws`.

use altsock::ws::{encode_masked_frame, encode_text, Decoded, Decoder, Opcode};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

/// A small text message: a 92-byte chat event.
const MESSAGE: &str = "{\"type\":\"chat\",\"from\":\"alice\",\"text\":\"hello there, are you coming to the meeting at three?\"}";

fn bench_decode(c: &mut Criterion) {
    let mut wire = Vec::new();
    encode_masked_frame(
        &mut wire,
        true,
        Opcode::Text,
        [0x37, 0xfa, 0x21, 0x3d],
        MESSAGE.as_bytes(),
    );
    let mut group = c.benchmark_group("ws_decode");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("masked_text_92", |b| {
        let mut decoder = Decoder::new(1 << 20);
        b.iter(|| {
            let step = decoder.decode(black_box(&wire));
            match step.decoded {
                Decoded::Text(text) => text.len(),
                other => panic!("{other:?}"),
            }
        })
    });
    group.finish();
    // The answer to the 2-byte keepalive ping: an empty masked pong.
    let pong = [0x8A, 0x80, 1, 2, 3, 4];
    c.bench_function("ws_decode/masked_empty_pong", |b| {
        let mut decoder = Decoder::new(1 << 20);
        b.iter(|| matches!(decoder.decode(black_box(&pong)).decoded, Decoded::Pong(_)))
    });
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_encode");
    group.bench_function("text_92", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            encode_text(&mut out, black_box(MESSAGE));
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);
