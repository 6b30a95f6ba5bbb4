//! `altsock serve --listen-tls ADDR --tls-cert PEM --tls-key PEM` as a real
//! process: HTTPS beside HTTP; `SIGHUP` swaps in a new certificate for new
//! connections while an open TLS stream keeps going; a broken certificate file
//! on `SIGHUP` leaves the running one; session cookies are `Secure` over TLS
//! only; `SIGTERM` still ends TLS streams with `close_notify`.

mod tls_support;
mod util;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use tls_support::{TestCert, TlsClient, TlsEnd};

struct Serve {
    child: Child,
    plain: SocketAddr,
    tls: SocketAddr,
    log: Receiver<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, cert: &Path, key: &Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_altsock"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--listen-tls",
            "127.0.0.1:0",
        ])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .arg("--db")
        .arg(dir.join("altsock.db"))
        .args(["--poll-interval", "10ms", "--keepalive", "50ms"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start altsock serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut plain = None;
    let mut tls = None;
    while plain.is_none() || tls.is_none() {
        let line = log
            .recv_timeout(Duration::from_secs(20))
            .expect("the server logs its addresses");
        if let Some(a) = line.split("listening for TLS on ").nth(1) {
            tls = Some(a.trim().parse().expect("address"));
        } else if let Some(a) = line.split("listening on ").nth(1) {
            plain = Some(a.trim().parse().expect("address"));
        }
    }
    Serve {
        child,
        plain: plain.expect("plain"),
        tls: tls.expect("tls"),
        log,
    }
}

impl Serve {
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for a log line containing `needle`.
    fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needle:?}"),
            }
        }
    }
}

/// The common name of the certificate a fresh TLS connection is shown.
fn presented_name(addr: SocketAddr, trusted: &[&TestCert]) -> String {
    let mut roots = altsock::rustls::RootCertStore::empty();
    for cert in trusted {
        roots.add(cert.cert_der.clone()).expect("trust");
    }
    let config = altsock::rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        altsock::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let client = TlsClient::connect(addr, std::sync::Arc::new(config));
    let leaf = client.tls.peer_certificates().expect("a certificate")[0].clone();
    common_name(&leaf)
}

/// Finds which test certificate `leaf` is by its DER bytes.
fn common_name(leaf: &[u8]) -> String {
    let text = String::from_utf8_lossy(leaf);
    ["first", "second"]
        .iter()
        .find(|n| text.contains(&format!("cert {n}")))
        .map(|n| n.to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn files(dir: &Path, cert: &TestCert) -> (PathBuf, PathBuf) {
    cert.write_to(dir)
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_connections() {
    let dir = util::temp_dir("tls-reload");
    let first = TestCert::new("cert first");
    let second = TestCert::new("cert second");
    let (cert, key) = files(&dir, &first);
    let server = serve(&dir, &cert, &key);
    assert_eq!(presented_name(server.tls, &[&first]), "first");
    let mut held = TlsClient::connect(server.tls, first.client_config());
    held.send(b"GET /sub/reload HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = held.read_through("\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    held.read_through(":\n");

    // A broken file: the running certificate stays.
    std::fs::write(&cert, "not a certificate").expect("write");
    server.signal("HUP");
    server.wait_log("certificate not reloaded");
    assert_eq!(presented_name(server.tls, &[&first, &second]), "first");

    files(&dir, &second);
    server.signal("HUP");
    // The engine's own line: the swap is done (the signal thread's may come first or after).
    server.wait_log("TLS configuration replaced");
    assert_eq!(presented_name(server.tls, &[&first, &second]), "second");
    // The stream opened under the first certificate is still alive.
    held.read_through(":\n");
    held.read_through(":\n");
    assert_eq!(held.end, None);

    server.signal("TERM");
    let (_, end) = held.read_to_end();
    assert_eq!(end, TlsEnd::CloseNotify, "SIGTERM ends TLS streams cleanly");
}

#[test]
fn session_cookies_are_secure_over_tls_only() {
    let dir = util::temp_dir("tls-cookie");
    let cert = TestCert::new("cert first");
    let (cert_path, key_path) = files(&dir, &cert);
    let server = serve(&dir, &cert_path, &key_path);
    let body = r#"{"username":"alice","password":"correct horse"}"#;
    let post = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let registered = util::request(server.plain, &post("/register"));
    assert_eq!(registered.status, 201, "{}", registered.text());

    let plain = util::request(server.plain, &post("/login"));
    let cookie = plain.header("set-cookie").expect("cookie").to_string();
    assert!(!cookie.contains("Secure"), "{cookie}");

    let mut tls = TlsClient::connect(server.tls, cert.client_config());
    tls.send(post("/login").as_bytes());
    let (status, head, _) = tls.read_response();
    assert_eq!(status, 200, "{head}");
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("cookie");
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    // A guest's page cookie over TLS too.
    tls.send(b"GET /call/alice HTTP/1.1\r\nHost: t\r\n\r\n");
    let (status, head, _) = tls.read_response();
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("HttpOnly; SameSite=Lax; Max-Age="), "{head}");
    assert!(head.contains("; Secure\r\n"), "{head}");
}
