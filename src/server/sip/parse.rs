//! Parsing SIP messages from bytes: [`find_message_end`] frames one message
//! in a stream buffer, [`parse_message`] turns the bytes of one message into
//! a [`Message`]. Strict where RFC 4475 §3.1.2 says a parser must refuse
//! (spacing of the request line, versions, Content-Length, scalar ranges,
//! CSeq method, quoting, `<uri>` spacing, Date in GMT). Both are pure
//! functions over `&[u8]` with [`Limits`]; neither panics on any input.

use super::message::{
    full_name, is_token, is_token_char, parse_digits, CSeq, Header, Message, NameAddr, StartLine,
    Via,
};
use super::uri::Uri;
use super::{Limits, SipError, Transport};

/// The end of the first message in a stream buffer (TCP, TLS): `Ok(None)`
/// while the head or body is still incomplete, `Ok(Some(n))` when
/// `buf[..n]` holds one whole message (leading CRLF keepalives included).
/// Content-Length is required on a stream.
pub fn find_message_end(buf: &[u8], limits: &Limits) -> Result<Option<usize>, SipError> {
    let start = leading_crlfs(buf);
    let Some(head_len) = find_head_end(&buf[start..]) else {
        if buf.len() - start > limits.max_message_size {
            return Err(SipError::TooLarge {
                limit: limits.max_message_size,
            });
        }
        return Ok(None);
    };
    let head = &buf[start..start + head_len];
    let body_len = content_length(head)?.ok_or(SipError::ContentLength("required on a stream"))?;
    let total = head_len
        .checked_add(body_len)
        .filter(|&n| n <= limits.max_message_size)
        .ok_or(SipError::TooLarge {
            limit: limits.max_message_size,
        })?;
    Ok((buf.len() - start >= total).then_some(start + total))
}

/// Parses one message. For a [`Transport::Datagram`] the bytes are the whole
/// datagram (bytes past Content-Length are ignored, a missing Content-Length
/// means the rest is the body); for a [`Transport::Stream`] they are what
/// [`find_message_end`] framed.
pub fn parse_message(
    bytes: &[u8],
    transport: Transport,
    limits: &Limits,
) -> Result<Message, SipError> {
    let start = leading_crlfs(bytes);
    let bytes = &bytes[start..];
    let too_large = SipError::TooLarge {
        limit: limits.max_message_size,
    };
    let head_len = match find_head_end(bytes) {
        Some(n) => n,
        None if bytes.len() > limits.max_message_size => return Err(too_large),
        None => return Err(SipError::StartLine("no blank line after the headers")),
    };
    let head = &bytes[..head_len];
    let after_head = &bytes[head_len..];
    let body = match (content_length(head)?, transport) {
        (Some(n), _) if n > after_head.len() => {
            return Err(SipError::ContentLength("larger than the bytes that follow"))
        }
        (Some(n), _) => &after_head[..n],
        (None, Transport::Datagram) => after_head,
        (None, Transport::Stream) => return Err(SipError::ContentLength("required on a stream")),
    };
    if head_len + body.len() > limits.max_message_size {
        return Err(too_large);
    }
    let text = std::str::from_utf8(&head[..head_len - 4])
        .map_err(|_| SipError::StartLine("the head is not UTF-8"))?;
    let (start_line, header_text) = text.split_once("\r\n").unwrap_or((text, ""));
    let start = parse_start_line(start_line)?;
    let headers = split_headers(header_text, limits)?;
    build_message(start, headers, body.to_vec())
}

/// How many CRLFs precede the start line (RFC 3261 §7.5 says ignore them).
fn leading_crlfs(buf: &[u8]) -> usize {
    let mut i = 0;
    while buf[i..].starts_with(b"\r\n") {
        i += 2;
    }
    i
}

/// The length of the head including its blank line, once it is complete.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The Content-Length of a complete head, read before the rest is parsed
/// (so a stream can be framed); `None` when there is none.
fn content_length(head: &[u8]) -> Result<Option<usize>, SipError> {
    let mut found: Option<usize> = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = std::str::from_utf8(&line[..colon]).unwrap_or("").trim_end();
        if !(name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l")) {
            continue;
        }
        let value = std::str::from_utf8(&line[colon + 1..]).unwrap_or("").trim();
        let n = parse_digits(value, u32::MAX.into())
            .ok_or(SipError::ContentLength("not a number of bytes"))? as usize;
        if found.is_some_and(|prev| prev != n) {
            return Err(SipError::ContentLength("two different values"));
        }
        found = Some(n);
    }
    Ok(found)
}

/// `Method SP Request-URI SP SIP/2.0` or `SIP/2.0 SP Status SP Reason`,
/// single spaces only.
fn parse_start_line(line: &str) -> Result<StartLine, SipError> {
    if let Some(rest) = strip_version_prefix(line) {
        return parse_status_line(rest);
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SipError::StartLine(
            "not three fields separated by single spaces",
        ));
    };
    if !is_token(method) {
        return Err(SipError::StartLine("method is not a token"));
    }
    check_version(version)?;
    let uri = Uri::parse(uri).ok_or(SipError::StartLine("bad Request-URI"))?;
    if uri.as_sip().is_some_and(|u| u.headers.is_some()) {
        return Err(SipError::StartLine(
            "headers are not allowed in a Request-URI",
        ));
    }
    Ok(StartLine::Request {
        method: method.to_string(),
        uri,
    })
}

/// The rest of a status line after `SIP/x.y `, when the line starts with a
/// version (case-insensitive `SIP/`).
fn strip_version_prefix(line: &str) -> Option<&str> {
    let prefix = line.get(..4)?;
    if !prefix.eq_ignore_ascii_case("SIP/") {
        return None;
    }
    Some(line)
}

/// `SIP/2.0 SP 3DIGIT [SP Reason-Phrase]`.
fn parse_status_line(line: &str) -> Result<StartLine, SipError> {
    let (version, rest) = line
        .split_once(' ')
        .ok_or(SipError::StartLine("no status code"))?;
    check_version(version)?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SipError::StartLine("status code is not three digits"));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| SipError::StartLine("bad status code"))?;
    if !(100..=699).contains(&status) {
        return Err(SipError::StartLine("status code outside 100-699"));
    }
    if reason.chars().any(|c| c.is_control() && c != '\t') {
        return Err(SipError::StartLine(
            "control character in the reason phrase",
        ));
    }
    Ok(StartLine::Response {
        status,
        reason: reason.to_string(),
    })
}

/// `SIP/2.0` (the letters in any case); other well-formed versions are
/// [`SipError::Version`].
fn check_version(version: &str) -> Result<(), SipError> {
    let Some(number) = version
        .get(4..)
        .filter(|_| version[..4].eq_ignore_ascii_case("SIP/"))
    else {
        return Err(SipError::StartLine("no SIP version"));
    };
    let well_formed = number.split_once('.').is_some_and(|(major, minor)| {
        parse_digits(major, 999).is_some() && parse_digits(minor, 999).is_some()
    });
    match (well_formed, number) {
        (true, "2.0") => Ok(()),
        (true, _) => Err(SipError::Version),
        (false, _) => Err(SipError::StartLine("malformed SIP version")),
    }
}

/// Header lines with folding undone: `(full name, value)`, in order.
fn split_headers(text: &str, limits: &Limits) -> Result<Vec<Header>, SipError> {
    let mut headers: Vec<Header> = Vec::new();
    if text.is_empty() {
        return Ok(headers);
    }
    for line in text.split("\r\n") {
        if line.contains(['\r', '\n']) {
            return Err(SipError::header("(line)", "bare CR or LF"));
        }
        if line.starts_with([' ', '\t']) {
            let last = headers
                .last_mut()
                .ok_or(SipError::header("(line)", "continuation before any header"))?;
            last.value.push(' ');
            last.value.push_str(line.trim());
            last.value.truncate(last.value.trim_end().len());
            continue;
        }
        if headers.len() == limits.max_headers {
            return Err(SipError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(SipError::header(line, "no colon"))?;
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return Err(SipError::header(name, "name is not a token"));
        }
        headers.push(Header {
            name: full_name(name).to_string(),
            value: value.trim().to_string(),
        });
    }
    for header in &headers {
        if has_bare_control(&header.value) {
            return Err(SipError::header(
                &header.name,
                "control character in the value",
            ));
        }
    }
    Ok(headers)
}

/// A control character (other than tab) not escaped by `\\` (a quoted-pair
/// may carry any byte but CR and LF).
fn has_bare_control(value: &str) -> bool {
    let mut escaped = false;
    for c in value.chars() {
        if c.is_control() && c != '\t' && !escaped {
            return true;
        }
        escaped = c == '\\' && !escaped;
    }
    false
}

/// Checks the headers every message needs and builds the [`Message`].
fn build_message(
    start: StartLine,
    headers: Vec<Header>,
    body: Vec<u8>,
) -> Result<Message, SipError> {
    let single = |name: &'static str| -> Result<Option<&str>, SipError> {
        let mut values = headers
            .iter()
            .filter(|h| h.name == name)
            .map(|h| h.value.as_str());
        let first = values.next();
        match values.next() {
            Some(_) => Err(SipError::Duplicate(name)),
            None => Ok(first),
        }
    };
    let required = |name: &'static str| single(name)?.ok_or(SipError::Missing(name));
    for name in ["Content-Type", "Content-Length", "Date", "Expires"] {
        single(name)?;
    }
    let from = NameAddr::parse("From", required("From")?)?;
    let to = NameAddr::parse("To", required("To")?)?;
    let call_id = required("Call-ID")?.to_string();
    if call_id.is_empty()
        || !call_id.chars().all(is_call_id_char)
        || call_id.matches('@').count() > 1
    {
        return Err(SipError::header("Call-ID", "not word[@word]"));
    }
    let cseq = CSeq::parse(required("CSeq")?)?;
    let max_forwards = match single("Max-Forwards")? {
        Some(text) => Some(
            parse_digits(text, 255).ok_or(SipError::header("Max-Forwards", "not 0 to 255"))? as u8,
        ),
        None => None,
    };
    if let StartLine::Request { method, .. } = &start {
        if *method != cseq.method {
            return Err(SipError::CSeqMismatch);
        }
    }
    let vias = parse_vias(&headers)?;
    check_other_headers(&headers)?;
    Ok(Message {
        start,
        headers,
        body,
        vias,
        from,
        to,
        call_id,
        cseq,
        max_forwards,
    })
}

/// RFC 3261 `word` characters (Call-ID).
fn is_call_id_char(c: char) -> bool {
    is_token_char(c) || "()<>:\\\"/[]?{}@".contains(c)
}

/// Every Via value in order; at least one is required.
fn parse_vias(headers: &[Header]) -> Result<Vec<Via>, SipError> {
    let mut vias = Vec::new();
    for header in headers.iter().filter(|h| h.name == "Via") {
        for value in split_commas(&header.value)
            .ok_or(SipError::header("Via", "empty or unbalanced value"))?
        {
            vias.push(Via::parse(value)?);
        }
    }
    if vias.is_empty() {
        return Err(SipError::Missing("Via"));
    }
    Ok(vias)
}

/// Contact values and the Date are checked too: they carry torture cases.
fn check_other_headers(headers: &[Header]) -> Result<(), SipError> {
    for header in headers {
        match header.name.as_str() {
            "Contact" if header.value != "*" => {
                let values = split_commas(&header.value)
                    .ok_or(SipError::header("Contact", "empty or unbalanced value"))?;
                for value in values {
                    NameAddr::parse("Contact", value)?;
                }
            }
            "Date" if !is_rfc1123_gmt(&header.value) => {
                return Err(SipError::header("Date", "not an RFC 1123 date in GMT"));
            }
            "Expires" if parse_digits(&header.value, u64::MAX).is_none() => {
                return Err(SipError::header("Expires", "not a number of seconds"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Splits a comma list outside quotes and `<>`; `None` when an element is
/// empty or a quote or bracket is left open.
pub(crate) fn split_commas(text: &str) -> Option<Vec<&str>> {
    let (parts, left_open) = split_outside_quotes(text);
    (!left_open && parts.iter().all(|p| !p.is_empty())).then_some(parts)
}

/// Splits `text` at the commas outside quotes and `<...>`, trimming each
/// part (empty parts kept); the flag says a quote or bracket was left open.
pub(crate) fn split_outside_quotes(text: &str) -> (Vec<&str>, bool) {
    let mut parts = Vec::new();
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    (parts, quoted || angle)
}

/// `Wkd, DD Mon YYYY HH:MM:SS GMT` (RFC 3261 §20.17: always GMT).
fn is_rfc1123_gmt(text: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let fields: Vec<&str> = text.split(' ').collect();
    let [day, date, month, year, time, zone] = fields[..] else {
        return false;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let time_ok = time.len() == 8
        && time.split(':').all(|part| digits(part, 2))
        && time.matches(':').count() == 2;
    day.strip_suffix(',').is_some_and(|d| DAYS.contains(&d))
        && digits(date, 2)
        && MONTHS.contains(&month)
        && digits(year, 4)
        && time_ok
        && zone == "GMT"
}
