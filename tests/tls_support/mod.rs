//! Helpers of the TLS tests: a test-only ECDSA P-256 certificate made at test
//! time (rcgen), the rustls server configuration of an engine's TLS listener,
//! and a blocking rustls client that speaks raw HTTP over one connection and
//! tells how the server ended it (with `close_notify` or without).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use altsock::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use altsock::rustls::{self, ClientConfig, ClientConnection, RootCertStore, ServerConfig};

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// A self-signed certificate for `localhost` and `127.0.0.1`, with its key.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl TestCert {
    /// A fresh ECDSA P-256 certificate named `name` (its common name).
    pub fn new(name: &str) -> TestCert {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
                .expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("self-signed certificate");
        TestCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// The server configuration of a TLS listener presenting this certificate.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(self.key_der.clone().into());
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], key)
            .expect("server config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Writes `cert.pem` and `key.pem` into `dir`; returns their paths.
    pub fn write_to(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, &self.cert_pem).expect("write cert");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (cert, key)
    }

    /// A client configuration that trusts only this certificate.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.cert_der.clone())
            .expect("trust the test cert");
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// How the server ended a TLS connection, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsEnd {
    /// `close_notify`, then the end of the stream.
    CloseNotify,
    /// The TCP stream ended without `close_notify`.
    Truncated,
    /// An error (a reset, or a TLS alert).
    Error,
}

/// A rustls client over one TCP connection; reads give up after 50 ms.
pub struct TlsClient {
    pub tls: ClientConnection,
    pub sock: TcpStream,
    /// Plaintext read but not yet consumed.
    pub buf: Vec<u8>,
    /// How the connection ended, once it did.
    pub end: Option<TlsEnd>,
}

impl TlsClient {
    /// Connects to `addr` and completes the handshake.
    pub fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> TlsClient {
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let name = ServerName::try_from("localhost").expect("name");
        let tls = ClientConnection::new(config, name).expect("client");
        let mut client = TlsClient {
            tls,
            sock,
            buf: Vec::new(),
            end: None,
        };
        let deadline = Instant::now() + WAIT;
        while client.tls.is_handshaking() {
            assert!(Instant::now() < deadline, "handshake timed out");
            match client.tls.complete_io(&mut client.sock) {
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) => panic!("handshake failed: {e}"),
            }
        }
        client
    }

    /// Sends plaintext.
    pub fn send(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = self.tls.writer().write(bytes).expect("send");
            bytes = &bytes[n..];
            while self.tls.wants_write() {
                self.tls.write_tls(&mut self.sock).expect("write records");
            }
        }
    }

    /// One read; `Some(0)` once the connection ended, `None` when nothing came in 50 ms.
    pub fn fill(&mut self) -> Option<usize> {
        if self.end.is_some() {
            return Some(0);
        }
        let before = self.buf.len();
        match self.tls.read_tls(&mut self.sock) {
            Ok(0) => {}
            Ok(_) => {
                if self.tls.process_new_packets().is_err() {
                    let _ = self.tls.write_tls(&mut self.sock);
                    self.end = Some(TlsEnd::Error);
                    return Some(0);
                }
            }
            Err(e) if is_timeout(&e) => return None,
            Err(_) => {
                self.end = Some(TlsEnd::Error);
                return Some(0);
            }
        }
        let mut chunk = [0u8; 16384];
        loop {
            match self.tls.reader().read(&mut chunk) {
                Ok(0) => {
                    self.end = Some(TlsEnd::CloseNotify);
                    break;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.end = Some(TlsEnd::Truncated);
                    break;
                }
            }
        }
        if self.buf.len() > before {
            Some(self.buf.len() - before)
        } else if self.end.is_some() {
            Some(0)
        } else {
            None
        }
    }

    /// Waits until `needle` arrived; returns everything through it.
    pub fn read_through(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(i) = find(&self.buf, needle.as_bytes()) {
                let taken: Vec<u8> = self.buf.drain(..i + needle.len()).collect();
                return String::from_utf8_lossy(&taken).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            if self.fill() == Some(0) && self.end.is_some() {
                assert!(
                    find(&self.buf, needle.as_bytes()).is_some(),
                    "connection ended ({:?}) before {needle:?}; have {:?}",
                    self.end,
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    /// Reads one response with a `Content-Length`; returns status, head and body.
    pub fn read_response(&mut self) -> (u16, String, String) {
        let head = self.read_through("\r\n\r\n");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let deadline = Instant::now() + WAIT;
        while self.buf.len() < len {
            assert!(Instant::now() < deadline, "timed out reading the body");
            if self.fill() == Some(0) && self.end.is_some() {
                break;
            }
        }
        let body: Vec<u8> = self.buf.drain(..len.min(self.buf.len())).collect();
        (status, head, String::from_utf8_lossy(&body).into_owned())
    }

    /// Reads until the connection ends; returns what was left and how it ended.
    pub fn read_to_end(&mut self) -> (String, TlsEnd) {
        let deadline = Instant::now() + WAIT;
        while self.end.is_none() {
            assert!(
                Instant::now() < deadline,
                "the server did not end the connection; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.fill();
        }
        let rest = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
        (rest, self.end.expect("ended"))
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
