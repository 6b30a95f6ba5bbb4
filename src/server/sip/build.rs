//! Building SIP messages as bytes: [`ResponseBuilder`] answers a parsed
//! request (Vias in order, From, To with a tag, Call-ID, CSeq, RFC 3261
//! §8.2.6.2), and [`MessageRequest`] writes an out-of-dialog `MESSAGE`
//! (RFC 3428). Tags, branches and Call-IDs come from the caller, so the
//! output is deterministic; Content-Length is always written.

use std::fmt::Write as _;

use super::message::{is_token, Message};
use super::uri::SipUri;
use super::{SipError, Transport};

/// RFC 3428 §5: a `MESSAGE` sent where congestion control is not assured
/// (UDP) must stay under 1300 bytes; [`MessageRequest::build`] refuses larger.
pub const MESSAGE_UDP_LIMIT: usize = 1300;

/// A response to a parsed request.
#[derive(Debug, Clone)]
pub struct ResponseBuilder<'a> {
    request: &'a Message,
    status: u16,
    reason: String,
    to_tag: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
}

impl<'a> ResponseBuilder<'a> {
    /// A response with this status and reason to `request`.
    pub fn new(request: &'a Message, status: u16, reason: &str) -> Self {
        ResponseBuilder {
            request,
            status,
            reason: reason.to_string(),
            to_tag: None,
            headers: Vec::new(),
            body: None,
        }
    }

    /// The tag added to To when the request's To has none (a UAS must add
    /// one to every response but 100). Ignored when the request has a tag.
    pub fn to_tag(mut self, tag: &str) -> Self {
        self.to_tag = Some(tag.to_string());
        self
    }

    /// An extra header (Contact, Allow, ...), written after the copied ones.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// A body with its Content-Type.
    pub fn body(mut self, content_type: &str, body: &[u8]) -> Self {
        self.body = Some((content_type.to_string(), body.to_vec()));
        self
    }

    /// The response bytes.
    pub fn build(&self) -> Result<Vec<u8>, SipError> {
        if !(100..=699).contains(&self.status) {
            return Err(SipError::Build("status outside 100-699"));
        }
        if self.request.method().is_none() {
            return Err(SipError::Build("a response answers a request"));
        }
        check_line_text(&self.reason)?;
        let request = self.request;
        let mut head = format!("SIP/2.0 {} {}\r\n", self.status, self.reason);
        for via in request.headers_named("Via") {
            push_header(&mut head, "Via", via);
        }
        push_header(&mut head, "From", &request.from.raw);
        let to = match (&self.to_tag, request.to.tag()) {
            (Some(tag), None) if self.status > 100 => {
                if !is_token(tag) {
                    return Err(SipError::Build("the To tag is not a token"));
                }
                format!("{};tag={tag}", request.to.raw)
            }
            _ => request.to.raw.clone(),
        };
        push_header(&mut head, "To", &to);
        push_header(&mut head, "Call-ID", &request.call_id);
        let cseq = format!("{} {}", request.cseq.number, request.cseq.method);
        push_header(&mut head, "CSeq", &cseq);
        finish(head, &self.headers, self.body.as_ref())
    }
}

/// An out-of-dialog `MESSAGE` request (RFC 3428) from an address of record.
#[derive(Debug, Clone)]
pub struct MessageRequest {
    /// The sender's address of record (the From URI).
    pub from: SipUri,
    /// The sender's display name, if any.
    pub from_display_name: Option<String>,
    /// The From tag (a token the caller draws at random).
    pub from_tag: String,
    /// The recipient: the Request-URI and the To URI.
    pub to: SipUri,
    /// The Call-ID (unique per request; the caller draws it).
    pub call_id: String,
    /// The CSeq number.
    pub cseq: u32,
    /// How the request is sent; Datagram enforces [`MESSAGE_UDP_LIMIT`].
    pub transport: Transport,
    /// The transport name written in Via (`UDP`, `TCP`, `TLS`, `WS`).
    pub via_transport: String,
    /// The Via sent-by: where responses come back (`host` or `host:port`).
    pub via_sent_by: String,
    /// The branch after the `z9hG4bK` magic cookie (a random token).
    pub branch: String,
    /// The body's Content-Type (`text/plain;charset=UTF-8`, ...).
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

impl MessageRequest {
    /// The request bytes.
    pub fn build(&self) -> Result<Vec<u8>, SipError> {
        for token in [&self.from_tag, &self.branch, &self.via_transport] {
            if !is_token(token) {
                return Err(SipError::Build("tag, branch and transport must be tokens"));
            }
        }
        if self.call_id.is_empty()
            || self
                .call_id
                .contains(|c: char| c.is_whitespace() || c.is_control())
        {
            return Err(SipError::Build("bad Call-ID"));
        }
        if self.cseq > 0x7fff_ffff {
            return Err(SipError::Build("CSeq must be below 2^31"));
        }
        if self.to.headers.is_some() {
            return Err(SipError::Build("headers are not allowed in a Request-URI"));
        }
        check_line_text(&self.via_sent_by)?;
        check_line_text(&self.content_type)?;
        let mut head = format!("MESSAGE {} SIP/2.0\r\n", self.to);
        let via = format!(
            "SIP/2.0/{} {};branch=z9hG4bK{}",
            self.via_transport, self.via_sent_by, self.branch
        );
        push_header(&mut head, "Via", &via);
        push_header(&mut head, "Max-Forwards", "70");
        let from = match &self.from_display_name {
            Some(name) => format!("{} <{}>;tag={}", quote(name)?, self.from, self.from_tag),
            None => format!("<{}>;tag={}", self.from, self.from_tag),
        };
        push_header(&mut head, "From", &from);
        push_header(&mut head, "To", &format!("<{}>", self.to));
        push_header(&mut head, "Call-ID", &self.call_id);
        push_header(&mut head, "CSeq", &format!("{} MESSAGE", self.cseq));
        let bytes = finish(
            head,
            &[],
            Some(&(self.content_type.clone(), self.body.clone())),
        )?;
        if self.transport == Transport::Datagram && bytes.len() > MESSAGE_UDP_LIMIT {
            return Err(SipError::TooLarge {
                limit: MESSAGE_UDP_LIMIT,
            });
        }
        Ok(bytes)
    }
}

/// Appends `Name: value\r\n`.
fn push_header(head: &mut String, name: &str, value: &str) {
    let _ = write!(head, "{name}: {value}\r\n");
}

/// Extra headers, Content-Type and Content-Length, the blank line and body.
fn finish(
    mut head: String,
    extra: &[(String, String)],
    body: Option<&(String, Vec<u8>)>,
) -> Result<Vec<u8>, SipError> {
    for (name, value) in extra {
        if !is_token(name) {
            return Err(SipError::Build("header name is not a token"));
        }
        check_line_text(value)?;
        push_header(&mut head, name, value);
    }
    let body = match body {
        Some((content_type, body)) => {
            check_line_text(content_type)?;
            push_header(&mut head, "Content-Type", content_type);
            body.as_slice()
        }
        None => &[],
    };
    push_header(&mut head, "Content-Length", &body.len().to_string());
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    Ok(bytes)
}

/// Text that goes on one header line: no CR, LF or other control bytes.
fn check_line_text(text: &str) -> Result<(), SipError> {
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(SipError::Build("control character in a header value"));
    }
    Ok(())
}

/// A display name as a quoted string.
fn quote(name: &str) -> Result<String, SipError> {
    check_line_text(name)?;
    let mut out = String::from("\"");
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}
