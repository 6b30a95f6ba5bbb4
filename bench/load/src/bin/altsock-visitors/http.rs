//! A blocking HTTP/1.1 client on one kept-alive connection, for the setup
//! requests of the visitor benchmark (hub clients, `/assist/open`, logins):
//! one request at a time, answers read by `Content-Length`, reconnecting
//! once when the server has closed the connection.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// One kept-alive connection from a chosen loopback source address.
pub struct Http {
    target: SocketAddr,
    source: Ipv4Addr,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
}

/// A complete answer.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text, cut short, for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).into_owned()
    }
}

impl Http {
    /// A client of `target` whose connections come from `source`.
    pub fn new(target: SocketAddr, source: Ipv4Addr) -> Http {
        Http {
            target,
            source,
            conn: None,
            buf: Vec::new(),
        }
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_tcp_nodelay(true)?;
        socket.bind(&SockAddr::from(SocketAddr::new(self.source.into(), 0)))?;
        socket.connect(&SockAddr::from(self.target))?;
        Ok(TcpStream::from(socket))
    }

    /// Sends `method path` with extra header lines (each ending in CRLF) and
    /// a body; returns the answer.
    pub fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &str,
    ) -> io::Result<Answer> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            self.target,
            body.len()
        );
        match self.exchange(request.as_bytes()) {
            Ok(answer) => Ok(answer),
            Err(_) => {
                // The server closed the kept-alive connection: once more on a new one.
                self.conn = None;
                self.buf.clear();
                self.exchange(request.as_bytes())
            }
        }
    }

    /// A JSON POST.
    pub fn post_json(
        &mut self,
        path: &str,
        headers: &str,
        body: &serde_json::Value,
    ) -> io::Result<Answer> {
        let headers = format!("{headers}Content-Type: application/json\r\n");
        self.call("POST", path, &headers, &body.to_string())
    }

    fn exchange(&mut self, request: &[u8]) -> io::Result<Answer> {
        if self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        let conn = self.conn.as_mut().expect("connected");
        conn.write_all(request)?;
        let (status, body) =
            crate::common::read_response(conn, &mut self.buf, "connection closed mid-answer")?;
        Ok(Answer { status, body })
    }
}
