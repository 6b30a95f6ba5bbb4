//! The request a router receives: the parsed head and body plus the connection
//! it came on. Accessors decode the query string and form bodies on demand.

use std::net::SocketAddr;

use super::parse::header_has_token;
use super::urlencoded::form_pairs;
use crate::{ConnId, RequestId};

/// One HTTP request, owned, handed to [`crate::Router::request`].
#[derive(Debug, Clone)]
pub struct Request {
    /// The connection the request arrived on.
    pub conn: ConnId,
    /// The request's engine-wide sequence number; with `conn` it names the
    /// request ([`Request::id`]) for answering it when deferred.
    pub seq: u64,
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target as sent, path and query.
    pub target: String,
    /// `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub minor_version: u8,
    /// Header names and values in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The peer's address, when the socket still knows it.
    pub peer: Option<SocketAddr>,
}

impl Request {
    /// The id that answers this request once deferred
    /// (`Cx::respond(req.id(), ..)` or the same on a `Handle`).
    pub fn id(&self) -> RequestId {
        RequestId {
            conn: self.conn,
            seq: self.seq,
        }
    }

    /// The path part of the target, without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The raw query string, without the `?`.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_pairs(self.query().as_bytes())
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True when comma-separated header `name` lists `token`.
    pub fn header_has(&self, name: &str, token: &str) -> bool {
        header_has_token(&self.headers, name, token)
    }

    /// True when the `Accept` header names `mime` (e.g. `text/event-stream`).
    pub fn accepts(&self, mime: &str) -> bool {
        self.header("accept").is_some_and(|accept| {
            accept
                .split(',')
                .any(|part| part.split(';').next().unwrap_or("").trim() == mime)
        })
    }

    /// The body decoded as `application/x-www-form-urlencoded` pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        form_pairs(&self.body)
    }

    /// The first value of `name` in the query string or, failing that, the form body.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query_param(name).or_else(|| {
            self.form()
                .into_iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v)
        })
    }
}
