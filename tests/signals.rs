//! Graceful shutdown of the `altsock serve` process on SIGTERM and SIGINT:
//! it stops accepting, ends every held stream, and exits 0 within a few
//! seconds. The server listens on port 0 and names its address in its log.

mod util;

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use util::{start_serve_process, temp_dir, Client, End};

/// Starts `altsock serve` on a free port; returns the child and its address.
fn serve() -> (Child, SocketAddr) {
    let dir = temp_dir("signals");
    let options = ["--poll-interval", "10ms", "--keepalive", "50ms"];
    start_serve_process(&dir.join("altsock.db"), &options)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

fn exits_cleanly_on(name: &str) {
    let (mut child, addr) = serve();
    let mut sub = Client::connect(addr);
    sub.send(b"GET /sub/signals HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = sub.read_through("\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    // Held and alive: keepalives arrive.
    sub.read_through(":\n");
    let started = Instant::now();
    signal(&child, name);
    let (_, end) = sub.read_to_end();
    assert_eq!(end, End::Fin, "the stream ends with a FIN");
    drop(sub);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("still running 5 s after SIG{name}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "exit status {status:?} after SIG{name}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting"
    );
}

#[test]
fn sigterm_ends_streams_and_exits_0() {
    exits_cleanly_on("TERM");
}

#[test]
fn sigint_ends_streams_and_exits_0() {
    exits_cleanly_on("INT");
}
