//! Where an idle TLS connection's bytes go: completes N handshakes in memory
//! between rustls clients and the server side the engine uses
//! (`UnbufferedServerConnection`, ring, ECDSA P-256 certificate made here),
//! sends one request and one answer each, then reports the server session's
//! inline size and the heap it still holds (counted by a global allocator,
//! server calls only). `cargo run --release --example tls_idle_bytes [N]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use altsock::rustls::pki_types::{PrivateKeyDer, ServerName};
use altsock::rustls::server::UnbufferedServerConnection;
use altsock::rustls::unbuffered::{ConnectionState, UnbufferedStatus};
use altsock::rustls::{self, ClientConfig, ClientConnection, RootCertStore, ServerConfig};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

/// Live counted allocations (address, size) of the first session, for the
/// breakdown; a fixed table, since the allocator cannot allocate.
static TRACKED: [(AtomicUsize, AtomicUsize); 256] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; 256];
static TRACKING: AtomicBool = AtomicBool::new(true);
/// Sizes whose allocations print a backtrace (`TRACE_SIZE=662,640`).
static TRACE: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        note(ptr, layout.size() as isize);
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(ptr, -(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        note(ptr, -(layout.size() as isize));
        let moved = System.realloc(ptr, layout, new);
        note(moved, new as isize);
        moved
    }
}

fn note(ptr: *mut u8, delta: isize) {
    let on = COUNTING.try_with(|on| on.get()).unwrap_or(false);
    if !on {
        return;
    }
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
    if !TRACKING.load(Ordering::Relaxed) {
        return;
    }
    let addr = ptr as usize;
    {
        if delta > 0
            && TRACE
                .iter()
                .any(|t| t.load(Ordering::Relaxed) == delta as usize)
        {
            COUNTING.with(|c| c.set(false));
            eprintln!(
                "--- alloc {delta}:\n{}",
                std::backtrace::Backtrace::force_capture()
            );
            COUNTING.with(|c| c.set(true));
        }
    }
    if delta > 0 {
        if let Some((a, s)) = TRACKED.iter().find(|(a, _)| a.load(Ordering::Relaxed) == 0) {
            a.store(addr, Ordering::Relaxed);
            s.store(delta as usize, Ordering::Relaxed);
        }
    } else if let Some((a, _)) = TRACKED
        .iter()
        .find(|(a, _)| a.load(Ordering::Relaxed) == addr)
    {
        a.store(0, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` with the server's allocations counted.
fn counted<T>(f: impl FnOnce() -> T) -> T {
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    out
}

fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let mut provider = rustls::crypto::ring::default_provider();
    if let Ok(suite) = std::env::var("SUITE") {
        // e.g. SUITE=CHACHA20 or SUITE=AES_128: only the suites whose name has it.
        provider
            .cipher_suites
            .retain(|s| format!("{:?}", s.suite()).contains(&suite));
    }
    let provider = Arc::new(provider);
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server config");
    if let Ok(tickets) = std::env::var("TICKETS") {
        server.send_tls13_tickets = tickets.parse().expect("TICKETS=number");
    }
    let mut roots = RootCertStore::empty();
    roots.add(cert.der().clone()).expect("root");
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.resumption = rustls::client::Resumption::disabled();
    (Arc::new(server), Arc::new(client))
}

/// Feeds `incoming` to the server; returns what it sends and the plaintext.
fn serve(server: &mut UnbufferedServerConnection, incoming: &mut Vec<u8>, reply: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut answered = reply.is_empty();
    loop {
        let UnbufferedStatus { discard, state } = server.process_tls_records(incoming);
        let mut done = false;
        match state.expect("server state") {
            ConnectionState::ReadTraffic(mut r) => while r.next_record().is_some() {},
            ConnectionState::EncodeTlsData(mut e) => {
                let mut buf = vec![0; 16 * 1024];
                let n = e.encode(&mut buf).expect("encode");
                out.extend_from_slice(&buf[..n]);
            }
            ConnectionState::TransmitTlsData(t) => t.done(),
            ConnectionState::WriteTraffic(mut w) if !answered => {
                let mut buf = vec![0; reply.len() + 256];
                let n = w.encrypt(reply, &mut buf).expect("encrypt");
                out.extend_from_slice(&buf[..n]);
                answered = true;
            }
            _ => done = true,
        }
        incoming.drain(..discard);
        if done {
            return out;
        }
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    if let Ok(sizes) = std::env::var("TRACE_SIZE") {
        for (slot, size) in TRACE.iter().zip(sizes.split(',')) {
            slot.store(size.parse().unwrap_or(0), Ordering::Relaxed);
        }
    }
    let (server_config, client_config) = configs();
    let mut servers = Vec::with_capacity(n);
    let before = LIVE.with(|l| l.get());
    for _ in 0..n {
        let name = ServerName::try_from("localhost").expect("name");
        let mut client = ClientConnection::new(client_config.clone(), name).expect("client");
        let mut server = counted(|| {
            Box::new(UnbufferedServerConnection::new(server_config.clone()).expect("server"))
        });
        client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .expect("request");
        let mut answered = false;
        for _ in 0..10 {
            let mut to_server = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut to_server).expect("client write");
            }
            let reply: &[u8] = if !client.is_handshaking() && !answered {
                answered = true;
                b"HTTP/1.1 200 OK\r\n\r\n"
            } else {
                b""
            };
            // Allocated and freed outside the count: only the server's own heap is counted.
            let mut from_server = Vec::with_capacity(64 * 1024);
            counted(|| {
                let out = serve(&mut server, &mut to_server, reply);
                from_server.extend_from_slice(&out);
            });
            let mut reader = &from_server[..];
            while !reader.is_empty() {
                client.read_tls(&mut reader).expect("client read");
                client.process_new_packets().expect("client process");
            }
            let mut sink = Vec::new();
            let _ = client.reader().read_to_end(&mut sink);
        }
        assert!(!client.is_handshaking() && answered, "handshake done");
        TRACKING.store(false, Ordering::Relaxed);
        servers.push(server);
    }
    let heap = (LIVE.with(|l| l.get()) - before) as f64 / n as f64;
    let inline = std::mem::size_of::<UnbufferedServerConnection>();
    println!(
        "suite {:?}, {} tickets per connection",
        servers[0].negotiated_cipher_suite().map(|s| s.suite()),
        server_config.send_tls13_tickets
    );
    println!("{n} idle server sessions after a handshake and one exchange (TLS 1.3, ECDSA P-256):");
    println!("  size_of::<UnbufferedServerConnection>() = {inline} bytes (boxed: counted in heap)");
    println!("  heap per session, box included          = {heap:.0} bytes");
    println!("  (the engine adds a 24-byte partial-record Vec in the box and an 8-byte slot)");
    let mut live: Vec<usize> = TRACKED
        .iter()
        .filter(|(a, _)| a.load(Ordering::Relaxed) != 0)
        .map(|(_, s)| s.load(Ordering::Relaxed))
        .collect();
    live.sort_unstable_by(|a, b| b.cmp(a));
    let total: usize = live.iter().sum();
    println!("  the first session's live heap blocks ({total} bytes, largest first): {live:?}");
    drop(servers);
}
