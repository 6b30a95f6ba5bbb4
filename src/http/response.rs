//! Responses a router answers with, and their serialization to HTTP/1.1 bytes.
//! The engine adds `Content-Length` and `Connection`; routers add the rest.

use std::io::Write;

/// A complete HTTP response: status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. `200`.
    pub status: u16,
    /// Headers other than `Content-Length` and `Connection`, which the engine writes.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body.into().into_bytes())
    }

    /// An `application/json` response; `body` must already be JSON.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .header("Content-Type", "application/json")
            .body(body.into().into_bytes())
    }

    /// A `text/html; charset=utf-8` response.
    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .header("Content-Type", "text/html; charset=utf-8")
            .body(body.into().into_bytes())
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Appends the response to `out`; `close` adds `Connection: close`.
    /// A `HEAD` answer (`head_only`) keeps the length but leaves out the body.
    pub fn write_to(&self, out: &mut Vec<u8>, close: bool, head_only: bool) {
        self.write_head_and_body(out, close, false, head_only);
    }

    /// Like [`Response::write_to`]; `keep_alive` (when not closing) adds
    /// `Connection: keep-alive`, which HTTP/1.0 clients need to stay connected.
    pub(crate) fn write_head_and_body(
        &self,
        out: &mut Vec<u8>,
        close: bool,
        keep_alive: bool,
        head_only: bool,
    ) {
        write_status_line(out, self.status);
        for (name, value) in &self.headers {
            write_header(out, name, value);
        }
        if has_body(self.status) {
            let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if keep_alive {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if has_body(self.status) && !head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

/// Writes `HTTP/1.1 CODE REASON\r\n`.
pub(crate) fn write_status_line(out: &mut Vec<u8>, status: u16) {
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", status, reason_phrase(status));
}

/// Writes one header line, dropping CR and LF from name and value so a router
/// can never split the response.
pub(crate) fn write_header(out: &mut Vec<u8>, name: &str, value: &str) {
    let clean = |s: &str, out: &mut Vec<u8>| {
        out.extend(s.bytes().filter(|&b| b != b'\r' && b != b'\n'));
    };
    clean(name, out);
    out.extend_from_slice(b": ");
    clean(value, out);
    out.extend_from_slice(b"\r\n");
}

/// Statuses that never carry a body.
fn has_body(status: u16) -> bool {
    !(status == 204 || status == 304 || (100..200).contains(&status))
}

/// The standard reason phrase for `status`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}
