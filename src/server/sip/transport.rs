//! The SIP thread's sockets: one UDP socket and one TCP listener on the
//! `--sip-listen` address, the TCP connections (accepted, or opened to send
//! a request), stream framing with [`find_message_end`], CRLF keepalive
//! pongs (RFC 5626 §4.4.1), and [`Dest`]: where a message goes back to.
//! Everything is non-blocking, driven by the thread's own `mio::Poll`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Interest, Poll, Token, Waker};
use slab::Slab;

use super::{find_message_end, Limits};

/// The UDP socket's token.
pub const UDP: Token = Token(0);
/// The TCP listener's token.
pub const LISTENER: Token = Token(1);
/// The waker the engine rings when it queued work for the SIP thread.
pub const WAKER: Token = Token(2);
/// TCP connection keys are offset by this in their tokens.
const FIRST_CONN: usize = 3;

/// Where a message goes: a UDP address, or a TCP connection (by key) with
/// its peer address (to reconnect when it closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// A datagram to this address.
    Udp(SocketAddr),
    /// The TCP connection `key` to `peer`.
    Tcp(usize, SocketAddr),
}

impl Dest {
    /// The peer's address.
    pub fn addr(&self) -> SocketAddr {
        match *self {
            Dest::Udp(a) | Dest::Tcp(_, a) => a,
        }
    }

    /// True for UDP (unreliable: retransmissions and timer J apply).
    pub fn is_udp(&self) -> bool {
        matches!(self, Dest::Udp(_))
    }

    /// The Via transport name.
    pub fn via_name(&self) -> &'static str {
        if self.is_udp() {
            "UDP"
        } else {
            "TCP"
        }
    }
}

/// One TCP connection.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    input: Vec<u8>,
    output: Vec<u8>,
}

/// What reading a TCP connection gave.
pub struct TcpRead {
    /// Whole messages framed from the stream.
    pub messages: Vec<Vec<u8>>,
    /// Framing failed (the bytes so far, for a 400) or the peer closed.
    pub broken: Option<Vec<u8>>,
}

/// The sockets.
pub struct Sockets {
    /// The thread's poll.
    pub poll: Poll,
    udp: UdpSocket,
    listener: TcpListener,
    conns: Slab<Conn>,
    by_peer: HashMap<SocketAddr, usize>,
    limits: Limits,
    max_tcp: usize,
    /// The address both sockets are bound to.
    pub local: SocketAddr,
}

impl Sockets {
    /// Binds UDP and TCP on `addr` (port 0: one free port for both).
    pub fn bind(addr: SocketAddr, max_tcp: usize) -> io::Result<(Sockets, Arc<Waker>)> {
        let (udp, listener) = bind_pair(addr)?;
        let local = udp.local_addr()?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut sockets = Sockets {
            poll,
            udp: UdpSocket::from_std(udp),
            listener: TcpListener::from_std(listener),
            conns: Slab::new(),
            by_peer: HashMap::new(),
            limits: Limits::default(),
            max_tcp,
            local,
        };
        let registry = sockets.poll.registry();
        registry.register(&mut sockets.udp, UDP, Interest::READABLE)?;
        registry.register(&mut sockets.listener, LISTENER, Interest::READABLE)?;
        Ok((sockets, waker))
    }

    /// Every datagram waiting, with its sender.
    pub fn read_udp(&mut self) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65_536];
        loop {
            match self.udp.recv_from(&mut buf) {
                Ok((n, from)) => out.push((buf[..n].to_vec(), from)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return out,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // ICMP errors surface here (ECONNREFUSED); keep reading.
                    log::debug!("sip: udp receive: {e}");
                    if out.len() > 1000 {
                        return out;
                    }
                }
            }
        }
    }

    /// Accepts every waiting TCP connection (up to the limit).
    pub fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) if self.conns.len() < self.max_tcp => {
                    if let Err(e) = self.add(stream, peer) {
                        log::warn!("sip: tcp register: {e}");
                    }
                }
                Ok((_, peer)) => log::warn!("sip: tcp connection from {peer} over the limit"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("sip: tcp accept: {e}");
                    return;
                }
            }
        }
    }

    fn add(&mut self, mut stream: TcpStream, peer: SocketAddr) -> io::Result<usize> {
        // Each response is one write: Nagle would hold back the next one.
        let _ = stream.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.poll.registry().register(
            &mut stream,
            Token(key + FIRST_CONN),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        entry.insert(Conn {
            stream,
            peer,
            input: Vec::new(),
            output: Vec::new(),
        });
        self.by_peer.insert(peer, key);
        Ok(key)
    }

    /// The connection key behind a token, if it is a connection's.
    pub fn conn_key(token: Token) -> Option<usize> {
        token.0.checked_sub(FIRST_CONN)
    }

    /// The peer of connection `key`.
    pub fn peer(&self, key: usize) -> Option<SocketAddr> {
        self.conns.get(key).map(|c| c.peer)
    }

    /// Reads what connection `key` has, framing whole messages; answers a
    /// CRLF CRLF keepalive with CRLF.
    pub fn read_tcp(&mut self, key: usize) -> TcpRead {
        let mut result = TcpRead {
            messages: Vec::new(),
            broken: None,
        };
        let Some(conn) = self.conns.get_mut(key) else {
            return result;
        };
        let mut buf = [0u8; 16_384];
        let mut closed = false;
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => conn.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let mut pong = false;
        loop {
            let crlfs = conn
                .input
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if crlfs >= 4 && conn.input[..4] == *b"\r\n\r\n" {
                pong = true;
            }
            conn.input.drain(..crlfs);
            match find_message_end(&conn.input, &self.limits) {
                Ok(Some(n)) => result.messages.push(conn.input.drain(..n).collect()),
                Ok(None) => break,
                Err(_) => {
                    result.broken = Some(std::mem::take(&mut conn.input));
                    break;
                }
            }
        }
        if pong {
            conn.output.extend_from_slice(b"\r\n");
            let _ = flush(conn);
        }
        if closed && result.broken.is_none() {
            result.broken = Some(Vec::new());
        }
        result
    }

    /// Writes what is queued for connection `key`; false when it failed.
    pub fn flush_tcp(&mut self, key: usize) -> bool {
        self.conns.get_mut(key).is_some_and(|c| flush(c).is_ok())
    }

    /// Closes connection `key`.
    pub fn close(&mut self, key: usize) {
        if self.conns.contains(key) {
            let mut conn = self.conns.remove(key);
            let _ = self.poll.registry().deregister(&mut conn.stream);
            if self.by_peer.get(&conn.peer) == Some(&key) {
                self.by_peer.remove(&conn.peer);
            }
        }
    }

    /// Sends `bytes` to `dest`. A TCP connection that closed is reopened to
    /// the same peer; the key actually used is returned.
    pub fn send(&mut self, dest: Dest, bytes: &[u8]) -> io::Result<Dest> {
        match dest {
            Dest::Udp(addr) => {
                // An ICMP error left by an earlier datagram (to another
                // peer) surfaces on the next send: it is not this one's.
                match self.udp.send_to(bytes, addr) {
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        self.udp.send_to(bytes, addr)?
                    }
                    other => other?,
                };
                Ok(dest)
            }
            Dest::Tcp(key, peer) => {
                let key = match self.conns.get(key) {
                    Some(c) if c.peer == peer => key,
                    _ => self.connect(peer)?,
                };
                let conn = self.conns.get_mut(key).ok_or(io::ErrorKind::NotConnected)?;
                conn.output.extend_from_slice(bytes);
                if let Err(e) = flush(conn) {
                    self.close(key);
                    return Err(e);
                }
                Ok(Dest::Tcp(key, peer))
            }
        }
    }

    /// A TCP connection to `peer`: an open one, or a new (non-blocking) one.
    pub fn connect(&mut self, peer: SocketAddr) -> io::Result<usize> {
        if let Some(&key) = self.by_peer.get(&peer) {
            return Ok(key);
        }
        if self.conns.len() >= self.max_tcp {
            return Err(io::Error::other("too many SIP TCP connections"));
        }
        let stream = TcpStream::connect(peer)?;
        self.add(stream, peer)
    }

    /// The local address the kernel would use towards `peer` (for Via and
    /// Contact when listening on an unspecified address).
    pub fn local_ip_towards(&self, peer: SocketAddr) -> SocketAddr {
        if !self.local.ip().is_unspecified() {
            return self.local;
        }
        let probe = std::net::UdpSocket::bind(SocketAddr::new(self.local.ip(), 0))
            .and_then(|s| s.connect(peer).and_then(|()| s.local_addr()));
        match probe {
            Ok(a) => SocketAddr::new(a.ip(), self.local.port()),
            Err(_) => self.local,
        }
    }
}

/// Writes what a connection has queued (a connect still in progress keeps
/// it queued until the socket is writable).
fn flush(conn: &mut Conn) -> io::Result<()> {
    while !conn.output.is_empty() {
        match conn.stream.write(&conn.output) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                conn.output.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// UDP and TCP bound to the same address; with port 0, a port free for both.
fn bind_pair(addr: SocketAddr) -> io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let udp = std::net::UdpSocket::bind(addr)?;
        let port = udp.local_addr()?.port();
        let tcp_addr = SocketAddr::new(addr.ip(), port);
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(tcp_addr),
            socket2::Type::STREAM,
            None,
        )?;
        socket.set_reuse_address(true)?;
        match socket
            .bind(&tcp_addr.into())
            .and_then(|()| socket.listen(1024))
        {
            Ok(()) => {
                udp.set_nonblocking(true)?;
                socket.set_nonblocking(true)?;
                return Ok((udp, socket.into()));
            }
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no port free for UDP and TCP")))
}
