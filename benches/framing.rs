//! Event framing: encoding one 100-byte message in each framing, and the
//! keepalive lookup, through `altsock::framing`.

use altsock::framing::{encode_message, Framing, Message};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn bench_framing(c: &mut Criterion) {
    let msg = Message::data(vec![b'x'; 100])
        .with_id("12345")
        .with_event("update");
    let mut group = c.benchmark_group("encode_message");
    for framing in [
        Framing::Sse,
        Framing::Chunked,
        Framing::Multipart,
        Framing::Raw,
    ] {
        let chunked = framing == Framing::Chunked;
        group.bench_function(framing.name(), |b| {
            let mut out = Vec::with_capacity(512);
            b.iter(|| {
                out.clear();
                encode_message(&mut out, framing, black_box(&msg), "text/plain", chunked);
                out.len()
            })
        });
    }
    group.finish();
    c.bench_function("keepalive_bytes", |b| {
        b.iter(|| black_box(Framing::Sse).keepalive(false).len())
    });
}

criterion_group!(benches, bench_framing);
criterion_main!(benches);
