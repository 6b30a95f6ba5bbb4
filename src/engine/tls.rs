//! TLS on the engine's listeners made with `Builder::listen_tls`: the side
//! table of TLS sessions (keyed by the connection's slab key, so `Conn` stays
//! 64 bytes), and the glue between rustls's unbuffered API and the engine's
//! read and write paths.
//!
//! An idle TLS connection keeps only its rustls session state: ciphertext is
//! read into the engine's shared buffer and decrypted there, plaintext goes to
//! the same request parser as plain HTTP, and written plaintext is encrypted
//! into a shared scratch buffer before it takes the plain write path (so a
//! socket that will not take it all keeps ciphertext in the usual pending
//! buffer, under the usual cap). Only a partial TLS record left between two
//! reads costs the connection a buffer of its own, and only until the rest
//! arrives.

use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use log::{debug, info, warn};
use mio::net::TcpListener;
use mio::{Interest, Poll, Token};
use rustls::server::{ServerConfig, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};

use super::config::Config;
use super::conn::Phase;
use super::core::Core;
use super::handle::Command;
use super::{bind_listener, Engine, Received};
use crate::metrics::CloseReason;
use crate::router::{Cx, Router};
use crate::{ConnId, Handle};

/// A TLS listener's address and the rustls configuration of its handshakes.
#[derive(Debug, Clone)]
pub struct TlsListen {
    /// The address to listen on for TLS.
    pub addr: SocketAddr,
    /// Certificates, keys and protocol settings for new connections.
    pub config: Arc<ServerConfig>,
}

impl TlsListen {
    /// A TLS listener on `addr` (the first address it resolves to).
    pub fn new(addr: impl ToSocketAddrs, config: Arc<ServerConfig>) -> io::Result<Self> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        Ok(TlsListen { addr, config })
    }
}

/// One connection's TLS state: the rustls session and, only while a record
/// is cut between two reads, its first bytes.
pub(crate) struct Session {
    conn: UnbufferedServerConnection,
    partial: Vec<u8>,
}

/// The side table: a session for each TLS connection, `None` for plain ones.
#[derive(Default)]
pub(crate) struct Sessions {
    slots: Vec<Option<Box<Session>>>,
}

impl Sessions {
    /// Starts the server side of a handshake on connection `key`.
    pub fn start(&mut self, key: usize, config: Arc<ServerConfig>) -> Result<(), rustls::Error> {
        let conn = UnbufferedServerConnection::new(config)?;
        if self.slots.len() <= key {
            self.slots.resize_with(key + 1, || None);
        }
        self.slots[key] = Some(Box::new(Session {
            conn,
            partial: Vec::new(),
        }));
        Ok(())
    }

    /// Whether connection `key` speaks TLS.
    pub fn is_tls(&self, key: usize) -> bool {
        self.slots.get(key).is_some_and(|s| s.is_some())
    }

    /// Whether connection `key` is TLS and its handshake not yet done.
    pub fn handshaking(&self, key: usize) -> bool {
        self.slots
            .get(key)
            .and_then(|s| s.as_ref())
            .is_some_and(|s| s.conn.is_handshaking())
    }

    /// Takes the session out while the engine works on it.
    pub fn take(&mut self, key: usize) -> Option<Box<Session>> {
        self.slots.get_mut(key).and_then(|s| s.take())
    }

    /// Puts a session back after `take`.
    pub fn put(&mut self, key: usize, session: Box<Session>) {
        if self.slots.len() <= key {
            self.slots.resize_with(key + 1, || None);
        }
        self.slots[key] = Some(session);
    }

    /// Forgets connection `key`'s session (it closed).
    pub fn remove(&mut self, key: usize) {
        if let Some(slot) = self.slots.get_mut(key) {
            *slot = None;
        }
    }
}

/// What decrypting a read brought.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Decrypted {
    /// The peer sent `close_notify`: no more data will come.
    pub peer_closed: bool,
}

impl Session {
    /// Decrypts the records in `incoming` (this session's partial record
    /// first, then what was just read), appending plaintext to `plain` and
    /// whatever the session must send (handshake messages, tickets, alerts)
    /// to `out`. A cut record stays with the session for the next read.
    /// On an error, `out` ends with the alert that tells the peer why.
    pub fn decrypt(
        &mut self,
        incoming: &mut Vec<u8>,
        plain: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<Decrypted, rustls::Error> {
        let mut result = Decrypted::default();
        loop {
            let UnbufferedStatus { discard, state } = self.conn.process_tls_records(incoming);
            let state = match state {
                Ok(state) => state,
                Err(e) => {
                    incoming.drain(..discard);
                    self.queued_output(out);
                    return Err(e);
                }
            };
            let done = match state {
                ConnectionState::ReadTraffic(mut records) => {
                    while let Some(record) = records.next_record() {
                        plain.extend_from_slice(record?.payload);
                    }
                    false
                }
                ConnectionState::EncodeTlsData(mut data) => {
                    append_with(out, |buf| encoded(data.encode(buf)))
                        .map_err(rustls::Error::General)?;
                    false
                }
                ConnectionState::TransmitTlsData(data) => {
                    data.done();
                    false
                }
                ConnectionState::PeerClosed => {
                    result.peer_closed = true;
                    false
                }
                _ => true,
            };
            incoming.drain(..discard);
            if done {
                break;
            }
        }
        self.keep_partial(incoming);
        Ok(result)
    }

    /// Keeps the bytes of a cut record, in a buffer of just their size.
    fn keep_partial(&mut self, incoming: &mut Vec<u8>) {
        self.partial = if incoming.is_empty() {
            Vec::new()
        } else {
            incoming.as_slice().to_vec()
        };
    }

    /// Moves the session's partial record to the front of `incoming`.
    pub fn take_partial(&mut self, incoming: &mut Vec<u8>) {
        incoming.extend_from_slice(&self.partial);
        self.partial = Vec::new();
    }

    /// Encodes what the session has queued to send (after an error: the alert).
    fn queued_output(&mut self, out: &mut Vec<u8>) {
        loop {
            let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut []);
            match state {
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    if append_with(out, |buf| encoded(data.encode(buf))).is_err() {
                        return;
                    }
                }
                Ok(ConnectionState::TransmitTlsData(data)) => data.done(),
                _ => return,
            }
        }
    }

    /// Encrypts `plain` as application data records appended to `out`.
    pub fn encrypt(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        self.with_write_traffic(out, |traffic, out| {
            append_with(out, |buf| encrypted(traffic.encrypt(plain, buf)))
        })
    }

    /// Appends the `close_notify` alert to `out`, if the handshake is done.
    pub fn close_notify(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        self.with_write_traffic(out, |traffic, out| {
            append_with(out, |buf| encrypted(traffic.queue_close_notify(buf)))
        })
    }

    fn with_write_traffic(
        &mut self,
        out: &mut Vec<u8>,
        write: impl FnOnce(
            &mut rustls::unbuffered::WriteTraffic<'_, rustls::server::ServerConnectionData>,
            &mut Vec<u8>,
        ) -> Result<(), String>,
    ) -> Result<(), String> {
        loop {
            let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut []);
            match state.map_err(|e| e.to_string())? {
                ConnectionState::EncodeTlsData(mut data) => {
                    append_with(out, |buf| encoded(data.encode(buf)))?;
                }
                ConnectionState::TransmitTlsData(data) => data.done(),
                ConnectionState::WriteTraffic(mut traffic) => return write(&mut traffic, out),
                other => return Err(format!("TLS session cannot send now ({other:?})")),
            }
        }
    }
}

/// Room asked for beyond the plaintext: record headers, tags and padding of
/// up to four records; more is asked for when rustls says so.
const RECORD_SLACK: usize = 4 * 64;

/// Runs `fill` on spare room at the end of `out` until the room suffices.
fn append_with(
    out: &mut Vec<u8>,
    mut fill: impl FnMut(&mut [u8]) -> Result<usize, FillError>,
) -> Result<(), String> {
    let start = out.len();
    let mut room = RECORD_SLACK;
    loop {
        out.resize(start + room, 0);
        match fill(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(FillError::NeedRoom(size)) if size > room => room = size,
            Err(FillError::NeedRoom(size)) => {
                out.truncate(start);
                return Err(format!("rustls asked for {size} bytes and was given more"));
            }
            Err(FillError::Other(e)) => {
                out.truncate(start);
                return Err(e);
            }
        }
    }
}

/// Why rustls did not fill the room it was given.
enum FillError {
    NeedRoom(usize),
    Other(String),
}

fn encoded(r: Result<usize, EncodeError>) -> Result<usize, FillError> {
    r.map_err(|e| match e {
        EncodeError::InsufficientSize(s) => FillError::NeedRoom(s.required_size),
        other => FillError::Other(other.to_string()),
    })
}

fn encrypted(r: Result<usize, EncryptError>) -> Result<usize, FillError> {
    r.map_err(|e| match e {
        EncryptError::InsufficientSize(s) => FillError::NeedRoom(s.required_size),
        other => FillError::Other(other.to_string()),
    })
}

// ---- the engine's write path over TLS -------------------------------------

impl Core {
    /// Encrypts `bytes` for TLS connection `key` and writes the records.
    pub(crate) fn write_encrypted(&mut self, key: usize, bytes: &[u8]) -> bool {
        let Some(mut session) = self.tls.take(key) else {
            return self.write_raw(key, bytes);
        };
        let mut out = std::mem::take(&mut self.tls_out);
        out.clear();
        let sealed = session.encrypt(bytes, &mut out);
        self.tls.put(key, session);
        let open = match sealed {
            Ok(()) => self.write_raw(key, &out),
            Err(e) => {
                debug!("{}: cannot encrypt: {e}", self.id_of(key));
                self.close(key, CloseReason::TlsError);
                false
            }
        };
        self.tls_out = out;
        open
    }

    /// Queues `close_notify` on a TLS connection whose handshake is done,
    /// before its write side is shut. Returns false if the connection closed.
    pub(crate) fn send_close_notify(&mut self, key: usize) -> bool {
        if !self.tls.is_tls(key) || self.tls.handshaking(key) {
            return true;
        }
        let Some(mut session) = self.tls.take(key) else {
            return true;
        };
        let mut out = Vec::new();
        let sealed = session.close_notify(&mut out);
        self.tls.put(key, session);
        sealed.is_err() || self.write_raw(key, &out)
    }

    /// A last `close_notify` for a TLS connection closed at once (idle,
    /// shutting down): one non-blocking attempt, no pending buffer.
    pub(crate) fn last_close_notify(&mut self, key: usize) {
        let Some(mut session) = self.tls.take(key) else {
            return;
        };
        if session.conn.is_handshaking() {
            return;
        }
        let mut out = Vec::new();
        let clean = self
            .conns
            .get(key)
            .is_some_and(|c| c.output.is_none() && !matches!(c.phase, Phase::Closing(_)));
        if clean && session.close_notify(&mut out).is_ok() {
            if let Some(conn) = self.conns.get_mut(key) {
                let _ = conn.stream.write(&out);
            }
        }
    }
}

// ---- the router's and the handles' view -----------------------------------

impl<M: Send + 'static> Cx<'_, M> {
    /// Whether `conn` arrived on a TLS listener (e.g. to mark cookies `Secure`).
    pub fn is_tls(&self, conn: ConnId) -> bool {
        self.core
            .key_of(conn)
            .is_some_and(|key| self.core.tls.is_tls(key))
    }
}

impl<M: Send + 'static> Handle<M> {
    /// Replaces the TLS configuration (e.g. a reloaded certificate) for
    /// connections accepted from now on; open connections keep theirs.
    /// Returns `false` if the engine has stopped.
    pub fn set_tls_config(&self, config: Arc<ServerConfig>) -> bool {
        self.command(Command::TlsConfig(config))
    }
}

// ---- the engine's TLS listener and read path -------------------------------

/// The TLS listener, the configuration new connections get, and the buffers
/// every TLS connection shares for decryption.
pub(crate) struct TlsListener {
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    config: Arc<ServerConfig>,
    /// Ciphertext being decrypted: a partial record, then what was just read.
    incoming: Vec<u8>,
    /// Plaintext decrypted from it.
    plain: Vec<u8>,
}

impl TlsListener {
    /// Binds the TLS listener of `cfg`, if it has one.
    pub fn bind(cfg: &Config, poll: &Poll, token: Token) -> io::Result<Option<Self>> {
        let Some(tls) = &cfg.tls else {
            return Ok(None);
        };
        let mut listener = bind_listener(tls.addr, cfg.backlog)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, token, Interest::READABLE)?;
        Ok(Some(TlsListener {
            listener: Some(listener),
            local_addr,
            config: Arc::clone(&tls.config),
            incoming: Vec::new(),
            plain: Vec::new(),
        }))
    }

    pub fn listener(&self) -> Option<&TcpListener> {
        self.listener.as_ref()
    }

    /// Stops accepting (shutdown); open TLS connections go on.
    pub fn stop_listening(&mut self, poll: &Poll) {
        if let Some(mut listener) = self.listener.take() {
            let _ = poll.registry().deregister(&mut listener);
        }
    }
}

impl<R: Router> Engine<R> {
    /// The address the TLS listener is bound to, if there is one.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|t| t.local_addr)
    }

    /// Starts the handshake of a connection accepted on the TLS listener.
    pub(super) fn start_tls(&mut self, key: usize) {
        let Some(tls) = self.tls.as_ref() else { return };
        if let Err(e) = self.core.tls.start(key, Arc::clone(&tls.config)) {
            warn!("TLS session: {e}");
            self.core.close(key, CloseReason::TlsError);
        }
    }

    /// New connections get `config`; open ones keep the one they started with.
    pub(super) fn set_tls_config(&mut self, config: Arc<ServerConfig>) {
        match self.tls.as_mut() {
            Some(tls) => {
                tls.config = config;
                info!("TLS configuration replaced");
            }
            None => warn!("a TLS configuration arrived, but there is no TLS listener"),
        }
    }

    /// Decrypts records just read from TLS connection `key`, writes what the
    /// session must send, and keeps the plaintext as plain input is kept.
    pub(super) fn tls_received(&mut self, key: usize, bytes: &[u8], cap: usize) -> Received {
        let closing = self
            .core
            .conns
            .get(key)
            .map_or(true, |c| matches!(c.phase, Phase::Closing(_)));
        let (Some(tls), false) = (self.tls.as_mut(), closing) else {
            return Received::Kept;
        };
        let Some(mut session) = self.core.tls.take(key) else {
            return Received::Closed;
        };
        let mut incoming = std::mem::take(&mut tls.incoming);
        let mut plain = std::mem::take(&mut tls.plain);
        let mut out = std::mem::take(&mut self.core.tls_out);
        incoming.clear();
        plain.clear();
        out.clear();
        session.take_partial(&mut incoming);
        incoming.extend_from_slice(bytes);
        let result = session.decrypt(&mut incoming, &mut plain, &mut out);
        self.core.tls.put(key, session);
        let mut step = match out.is_empty() || self.core.write_raw(key, &out) {
            true => Received::Kept,
            false => Received::Closed,
        };
        match (result, &step) {
            (Err(e), Received::Kept) => {
                debug!("{}: TLS: {e}", self.core.id_of(key));
                self.core.close_after_flush(key, CloseReason::TlsError);
            }
            (Ok(decrypted), Received::Kept) => {
                step = self.keep_input(key, &plain, cap);
                if decrypted.peer_closed && matches!(step, Received::Kept) {
                    step = Received::PeerFinished;
                }
            }
            _ => {}
        }
        self.core.tls_out = out;
        if let Some(tls) = self.tls.as_mut() {
            tls.incoming = incoming;
            tls.plain = plain;
        }
        step
    }
}
