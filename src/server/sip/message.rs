//! The parsed SIP [`Message`] and the values of the headers the relay reads:
//! [`Via`], [`NameAddr`] (To, From, Contact), [`CSeq`], and generic
//! `;name=value` [`Param`]s. Also the compact header names (RFC 3261 §7.3.3
//! and later RFCs). Parsing of single values lives here; the order of lines
//! and the framing live in `parse.rs`.

use std::fmt;

use super::uri::{parse_hostport, Uri};
use super::SipError;

/// A parsed SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The request line or status line.
    pub start: StartLine,
    /// Every header line in order, folding undone, names in full form.
    pub headers: Vec<Header>,
    /// The body: exactly Content-Length bytes.
    pub body: Vec<u8>,
    /// The Via values in order (several lines and comma lists flattened).
    pub vias: Vec<Via>,
    /// The From header.
    pub from: NameAddr,
    /// The To header.
    pub to: NameAddr,
    /// The Call-ID.
    pub call_id: String,
    /// The CSeq.
    pub cseq: CSeq,
    /// Max-Forwards, 0 to 255. RFC 3261 requires it in requests, but an
    /// RFC 2543 request without it (RFC 4475 `inv2543`) is still accepted;
    /// a proxy would add 70.
    pub max_forwards: Option<u8>,
}

impl Message {
    /// The method of a request, or `None` for a response.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&Uri> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// The first value of a header (full or compact name, any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    /// Every line of a header, in order (full or compact name, any case).
    pub fn headers_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let full = full_name(name).to_ascii_lowercase();
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(&full))
            .map(|h| h.value.as_str())
    }

    /// The Content-Type, when there is one.
    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD Request-URI SIP/2.0`.
    Request {
        /// The method, case kept (methods are case-sensitive).
        method: String,
        /// The Request-URI.
        uri: Uri,
    },
    /// `SIP/2.0 STATUS Reason`.
    Response {
        /// The status code, 100 to 699.
        status: u16,
        /// The reason phrase (UTF-8, may be empty).
        reason: String,
    },
}

/// One header line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The full name (`Via` for `v`, canonical case for known headers,
    /// otherwise as received).
    pub name: String,
    /// The value with folding replaced by one space and outer whitespace
    /// trimmed.
    pub value: String,
}

/// A `;name[=value]` parameter of a URI or header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name as received.
    pub name: String,
    /// The value as received (quotes kept), if any.
    pub value: Option<String>,
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={value}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One Via value: `SIP/2.0/UDP host:port;branch=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The transport (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`, ...), as received.
    pub transport: String,
    /// The sent-by host.
    pub host: String,
    /// The sent-by port.
    pub port: Option<u16>,
    /// The parameters in order.
    pub params: Vec<Param>,
    /// The value as received (one element of a comma list).
    pub raw: String,
}

impl Via {
    /// The branch parameter (the transaction id when it starts `z9hG4bK`).
    pub fn branch(&self) -> Option<&str> {
        find_param(&self.params, "branch")
    }

    /// Parses one Via value.
    pub fn parse(text: &str) -> Result<Via, SipError> {
        let bad = |reason| SipError::header("Via", reason);
        let (protocol, rest) = split_sent_protocol(text).ok_or(bad("bad sent-protocol"))?;
        let mut parts = protocol.split('/').map(str::trim);
        let (name, version, transport) = (parts.next(), parts.next(), parts.next());
        if !name.is_some_and(|n| n.eq_ignore_ascii_case("SIP")) || version != Some("2.0") {
            return Err(SipError::Version);
        }
        let transport = transport
            .filter(|t| is_token(t))
            .ok_or(bad("bad transport"))?;
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest[..i].trim(), &rest[i..]),
            None => (rest.trim(), ""),
        };
        let sent_by: String = sent_by
            .split(':')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(":");
        let (host, port) = parse_hostport(&sent_by).ok_or(bad("bad sent-by"))?;
        Ok(Via {
            transport: transport.to_string(),
            host,
            port,
            params: parse_params(params).ok_or(bad("bad parameter"))?,
            raw: text.to_string(),
        })
    }
}

/// `SIP / 2.0 / UDP` (LWS allowed around the slashes) and what follows it.
fn split_sent_protocol(text: &str) -> Option<(&str, &str)> {
    let mut slashes = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        match bytes[i] {
            b'/' => slashes += 1,
            b' ' | b'\t' if slashes == 2 => {
                // Whitespace after the transport token ends the protocol.
                let before = text[..i].trim_end();
                if !before.ends_with('/') {
                    return Some((&text[..i], text[i..].trim_start()));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// To, From or Contact: `"Name" <uri>;params` or `uri;params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, quotes and escapes removed.
    pub display_name: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// The header parameters (`tag`, `expires`, ...), in order.
    pub params: Vec<Param>,
    /// The value as received.
    pub raw: String,
}

impl NameAddr {
    /// The tag parameter.
    pub fn tag(&self) -> Option<&str> {
        find_param(&self.params, "tag")
    }

    /// Parses a To, From or Contact value (`name` for errors).
    pub fn parse(name: &str, text: &str) -> Result<NameAddr, SipError> {
        let bad = |reason| SipError::header(name, reason);
        let text = text.trim();
        let (display_name, uri_text, after) = if text.starts_with('"') {
            let (display, rest) =
                parse_quoted(text).ok_or(bad("unterminated quoted display name"))?;
            let rest = rest.trim_start();
            let (uri, after) = angle_uri(rest).ok_or(bad("a quoted display name without <uri>"))?;
            (Some(display), uri, after)
        } else if let Some(open) = text.find('<') {
            let display = text[..open].trim();
            if !display
                .split([' ', '\t'])
                .filter(|w| !w.is_empty())
                .all(is_token)
            {
                return Err(bad("display name is not tokens or a quoted string"));
            }
            let (uri, after) = angle_uri(&text[open..]).ok_or(bad("unbalanced <uri>"))?;
            (
                Some(display.to_string()).filter(|d| !d.is_empty()),
                uri,
                after,
            )
        } else {
            let end = text.find(';').unwrap_or(text.len());
            let uri = text[..end].trim_end();
            if uri.contains(['?', ',']) {
                return Err(bad("a URI with ? or , must be in <>"));
            }
            (None, uri, &text[end..])
        };
        if uri_text.bytes().any(|b| b == b' ' || b == b'\t') {
            return Err(bad("whitespace inside the URI"));
        }
        let uri = Uri::parse(uri_text).ok_or(bad("bad URI"))?;
        let params = parse_params(after).ok_or(bad("bad parameter"))?;
        let bad_tag = |p: &Param| {
            p.name.eq_ignore_ascii_case("tag") && !p.value.as_deref().is_some_and(is_token)
        };
        if params.iter().any(bad_tag) {
            return Err(bad("tag is not tag=token"));
        }
        Ok(NameAddr {
            display_name,
            uri,
            params,
            raw: text.to_string(),
        })
    }
}

/// `<uri>` at the start of `text`: the URI and what follows `>`.
fn angle_uri(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix('<')?;
    let close = inner.find('>')?;
    Some((&inner[..close], &inner[close + 1..]))
}

/// A quoted string at the start of `text`: its content unescaped, and the
/// rest after the closing quote.
pub(crate) fn parse_quoted(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.strip_prefix('"')?.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &text[i + 2..])),
            '\\' => {
                let (_, escaped) = chars.next()?;
                if escaped == '\r' || escaped == '\n' || !escaped.is_ascii() {
                    return None;
                }
                out.push(escaped);
            }
            c => out.push(c),
        }
    }
    None
}

/// The value of a parameter by name (case-insensitive).
fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .and_then(|p| p.value.as_deref())
}

/// `*( SEMI name [EQUAL value] )` with optional whitespace around the
/// separators; `None` on an empty or malformed parameter.
pub(crate) fn parse_params(text: &str) -> Option<Vec<Param>> {
    let mut params = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        rest = rest.strip_prefix(';')?.trim_start();
        let name_end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() {
            return None;
        }
        rest = rest[name_end..].trim_start();
        let mut value = None;
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (v, tail) = if after.starts_with('"') {
                let (_, tail) = parse_quoted(after)?;
                (&after[..after.len() - tail.len()], tail)
            } else {
                let end = after
                    .find(|c: char| !is_token_char(c) && !"[]:".contains(c))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            if v.is_empty() {
                return None;
            }
            value = Some(v.to_string());
            rest = tail.trim_start();
        }
        params.push(Param {
            name: name.to_string(),
            value,
        });
    }
    Some(params)
}

/// The CSeq: a sequence number below 2^31 and a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number.
    pub number: u32,
    /// The method.
    pub method: String,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(text: &str) -> Result<CSeq, SipError> {
        let bad = |reason| SipError::header("CSeq", reason);
        let (number, method) = text.split_once([' ', '\t']).ok_or(bad("no method"))?;
        let method = method.trim();
        if !is_token(method) {
            return Err(bad("bad method"));
        }
        let number = parse_digits(number, 0x7fff_ffff).ok_or(bad("number is not below 2^31"))?;
        Ok(CSeq {
            number: number as u32,
            method: method.to_string(),
        })
    }
}

/// `1*DIGIT` no larger than `max`.
pub(crate) fn parse_digits(text: &str, max: u64) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok().filter(|&n| n <= max)
}

/// RFC 3261 `token` characters.
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// A non-empty RFC 3261 token.
pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.chars().all(is_token_char)
}

/// Compact forms: RFC 3261 §7.3.3 and the RFCs that added more.
const COMPACT: &[(char, &str)] = &[
    ('a', "Accept-Contact"),
    ('b', "Referred-By"),
    ('c', "Content-Type"),
    ('d', "Request-Disposition"),
    ('e', "Content-Encoding"),
    ('f', "From"),
    ('i', "Call-ID"),
    ('j', "Reject-Contact"),
    ('k', "Supported"),
    ('l', "Content-Length"),
    ('m', "Contact"),
    ('n', "Identity-Info"),
    ('o', "Event"),
    ('r', "Refer-To"),
    ('s', "Subject"),
    ('t', "To"),
    ('u', "Allow-Events"),
    ('v', "Via"),
    ('x', "Session-Expires"),
    ('y', "Identity"),
];

/// Headers written in canonical case whatever case they arrive in.
const CANONICAL: &[&str] = &[
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
    "Content-Encoding",
    "Date",
    "Expires",
    "Route",
    "Record-Route",
    "Supported",
    "Subject",
    "Event",
];

/// The full name of a compact header name (`v` → `Via`), `None` for others.
pub fn compact_form_name(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return None;
    };
    let c = c.to_ascii_lowercase();
    COMPACT
        .iter()
        .find(|(short, _)| *short == c)
        .map(|(_, full)| *full)
}

/// The name a header is stored under: compact forms expanded, known names
/// in canonical case, others as given.
pub(crate) fn full_name(name: &str) -> &str {
    if let Some(full) = compact_form_name(name) {
        return full;
    }
    CANONICAL
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or(name)
}
