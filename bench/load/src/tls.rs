//! The load tool's TLS mode (`--tls-ca`): subscribers speak TLS through a
//! rustls client (ring provider) that trusts only the given certificate and
//! names the server `localhost`. Driven by the same edge-triggered poll as
//! plain subscribers: `pump` moves records between the socket and the
//! session, and the caller reads plaintext from `reader()`.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// A client configuration that trusts the PEM certificates in `ca`.
pub fn client_config(ca: &Path) -> io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(io::Error::other)? {
        roots
            .add(cert.map_err(io::Error::other)?)
            .map_err(io::Error::other)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every connection a full handshake (ECDHE and the certificate's
    // signature), so the connect phase measures the expensive case.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// A new session with `request` queued to go out once the handshake is done.
pub fn start(config: &Arc<ClientConfig>, request: &[u8]) -> io::Result<Box<ClientConnection>> {
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let mut conn = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
    conn.writer().write_all(request)?;
    Ok(Box::new(conn))
}

/// Reads every record the socket has, processes them and writes whatever the
/// session wants sent. Returns true once the server closed the TCP stream.
pub fn pump(conn: &mut ClientConnection, stream: &mut TcpStream) -> io::Result<bool> {
    let mut eof = false;
    loop {
        match conn.read_tls(stream) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(_) => {
                conn.process_new_packets().map_err(io::Error::other)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    flush(conn, stream)?;
    Ok(eof)
}

/// Writes queued records until the socket would block.
pub fn flush(conn: &mut ClientConnection, stream: &mut TcpStream) -> io::Result<()> {
    while conn.wants_write() {
        match conn.write_tls(stream) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
