//! Request parsing: a typical held-connection request, a POST with a body, and
//! a chunked upload, through `altsock::http::parse::parse_request`.

use altsock::http::parse::{parse_request, Limits};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

const JCHAT: &[u8] = b"GET /jchat?me=ann&id=8f14e45fceea167a5a36dedd4bea2543 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\nAccept: text/event-stream\r\nAccept-Language: en-US,en;q=0.9\r\nCookie: altsock_session=8f14e45fceea167a5a36dedd4bea2543\r\nConnection: keep-alive\r\n\r\n";
const POST: &[u8] = b"POST /chat HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nOrigin: http://example.com\r\nContent-Length: 44\r\n\r\nme=ann&id=8f14e45fceea167a&to=bob&msg=hello";
const CHUNKED: &[u8] = b"POST /pub/news HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

fn bench_parse(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("parse_request");
    for (name, input) in [
        ("jchat_get", JCHAT),
        ("form_post", POST),
        ("chunked_post", CHUNKED),
    ] {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_request(black_box(input), &limits))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
