//! The server's TLS certificate: a PEM certificate chain and private key made
//! into a rustls configuration (ring provider, TLS 1.2 and 1.3), at start and
//! again on every `SIGHUP`. Files are read and parsed on the signal thread,
//! never the engine's; the engine only swaps in the finished configuration
//! through its `Handle`, for connections accepted from then on.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::Handle;

/// Where the certificate chain and its key are read from.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

impl CertFiles {
    /// Reads both files and builds a server configuration that offers
    /// `http/1.1` by ALPN.
    pub fn load(&self) -> io::Result<Arc<ServerConfig>> {
        let certs = read_certs(&self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| invalid(&self.key, &e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| invalid(&self.cert, &format!("certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Loads the files again and hands the result to the engine. A broken
    /// file leaves the running configuration in place.
    pub fn reload<M: Send + 'static>(&self, handle: &Handle<M>) -> io::Result<()> {
        let config = self.load()?;
        if handle.set_tls_config(config) {
            Ok(())
        } else {
            Err(io::Error::other("the engine has stopped"))
        }
    }
}

fn read_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(path, &e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, &e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid(path, "no certificate in the file"));
    }
    Ok(certs)
}

fn invalid(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {why}", path.display()),
    )
}
