//! Request parsing: a typical held-connection request, a POST with a body, and
//! a chunked upload, through `altsock::http::parse::parse_request`; and a slow
//! chunked upload (one-byte chunks, one per read) fed the way the engine feeds
//! it, against re-parsing the whole buffer on every read (issue 7, finding 11).

use altsock::http::parse::{parse_request, Limits, Progress, RequestParser};
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

/// The reads of a slow chunked upload: the head, then `chunks` one-byte
/// chunks each in its own read, then the last chunk.
fn slow_upload_reads(chunks: usize) -> Vec<Vec<u8>> {
    let mut reads =
        vec![b"POST /register HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()];
    reads.extend((0..chunks).map(|_| b"1\r\nx\r\n".to_vec()));
    reads.push(b"0\r\n\r\n".to_vec());
    reads
}

/// What the engine does per read: append, advance the connection's parser,
/// drop what it consumed.
fn feed_resumed(reads: &[Vec<u8>], limits: &Limits) -> usize {
    let mut parser = RequestParser::new();
    let mut buf = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        let step = parser.advance(&buf, limits).expect("valid");
        buf.drain(..step.consumed);
        if let Progress::Complete(parsed) = step.progress {
            return parsed.body.len();
        }
    }
    unreachable!("incomplete upload")
}

/// What the engine did before: parse the whole buffer again on every read.
fn feed_reparsed(reads: &[Vec<u8>], limits: &Limits) -> usize {
    let mut buf = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        if let Progress::Complete(parsed) = parse_request(&buf, limits).expect("valid") {
            return parsed.body.len();
        }
    }
    unreachable!("incomplete upload")
}

fn bench_slow_upload(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("slow_chunked_upload");
    for chunks in [1_000, 10_000] {
        let reads = slow_upload_reads(chunks);
        let bytes: usize = reads.iter().map(Vec::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(format!("resumed/{chunks}"), |b| {
            b.iter(|| feed_resumed(black_box(&reads), &limits))
        });
        if chunks <= 1_000 {
            group.bench_function(format!("reparsed/{chunks}"), |b| {
                b.iter(|| feed_reparsed(black_box(&reads), &limits))
            });
        }
    }
    group.finish();
}

/// A head of about 4 KiB arriving a byte per read, fed the way the engine feeds it.
fn bench_slow_head(c: &mut Criterion) {
    let limits = Limits::default();
    let mut raw = b"GET /slow HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..60 {
        raw.extend_from_slice(format!("X-Header-{i}: {}\r\n", "v".repeat(50)).as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    let mut group = c.benchmark_group("slow_head");
    group.throughput(Throughput::Bytes(raw.len() as u64));
    group.bench_function("byte_per_read", |b| {
        b.iter(|| {
            let mut parser = RequestParser::new();
            for end in 1..=raw.len() {
                let step = parser
                    .advance(black_box(&raw[..end]), &limits)
                    .expect("valid");
                if let Progress::Complete(parsed) = step.progress {
                    return parsed.head.headers.len();
                }
            }
            unreachable!("incomplete head")
        })
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_slow_upload, bench_slow_head);
criterion_main!(benches);
