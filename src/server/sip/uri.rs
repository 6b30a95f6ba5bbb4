//! URIs in SIP messages: [`SipUri`] parses `sip:` and `sips:` URIs (RFC 3261
//! §19.1.1, §25.1) far enough to route by user and to build responses; any
//! other scheme is kept as an opaque [`Uri::Other`] after its scheme is
//! checked. Owns the URI character classes and `%HH` escapes; knows nothing
//! of headers.

use std::fmt;

use super::message::Param;

/// A Request-URI or the URI of a To, From or Contact header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// A `sip:` or `sips:` URI.
    Sip(SipUri),
    /// Any other absolute URI (`tel:`, ...), as received.
    Other(String),
}

impl Uri {
    /// Parses an absolute URI; `sip`/`sips` ones in full.
    pub fn parse(text: &str) -> Option<Uri> {
        let (scheme, rest) = text.split_once(':')?;
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse(text).map(Uri::Sip);
        }
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        let rest_ok = !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b > b' ' && b < 0x7f && !b"<>\"".contains(&b));
        (scheme_ok && rest_ok).then(|| Uri::Other(text.to_string()))
    }

    /// The SIP URI, when it is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(uri) => Some(uri),
            Uri::Other(_) => None,
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(uri) => uri.fmt(f),
            Uri::Other(text) => f.write_str(text),
        }
    }
}

/// A `sip:` or `sips:` URI. Text is kept as received (escapes included);
/// [`SipUri::user_decoded`] undoes the escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part, escapes kept (`None` when the URI has no `@`).
    pub user: Option<String>,
    /// The password after `user:`, escapes kept.
    pub password: Option<String>,
    /// The host: a name, an IPv4 address, or an IPv6 reference in brackets.
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp`, `;lr`), in order.
    pub params: Vec<Param>,
    /// The headers part after `?`, escapes kept (never allowed in a
    /// Request-URI).
    pub headers: Option<String>,
}

impl SipUri {
    /// Parses `sip:[user[:password]@]host[:port][;params][?headers]`.
    pub fn parse(text: &str) -> Option<SipUri> {
        let (scheme, rest) = text.split_once(':')?;
        let secure = if scheme.eq_ignore_ascii_case("sips") {
            true
        } else if scheme.eq_ignore_ascii_case("sip") {
            false
        } else {
            return None;
        };
        let (userinfo, rest) = match rest.split_once('@') {
            Some((userinfo, rest)) => (Some(userinfo), rest),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => parse_userinfo(info)?,
        };
        let (rest, headers) = match rest.split_once('?') {
            Some((rest, headers)) => (rest, Some(headers)),
            None => (rest, None),
        };
        if let Some(h) = headers {
            if h.is_empty() || !valid_chars(h, |b| is_unreserved(b) || b"[]/?:+$&=".contains(&b)) {
                return None;
            }
        }
        let mut pieces = rest.split(';');
        let (host, port) = parse_hostport(pieces.next()?)?;
        let params = pieces.map(parse_uri_param).collect::<Option<Vec<_>>>()?;
        Some(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers: headers.map(str::to_string),
        })
    }

    /// The user part with its `%HH` escapes undone; `None` without a user
    /// or when the result is not UTF-8.
    pub fn user_decoded(&self) -> Option<String> {
        String::from_utf8(unescape(self.user.as_deref()?)?).ok()
    }

    /// The value of a URI parameter (names compare case-insensitively);
    /// `Some(None)` for a parameter without a value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_deref())
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(password) = &self.password {
                write!(f, ":{password}")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for param in &self.params {
            write!(f, ";{param}")?;
        }
        if let Some(headers) = &self.headers {
            write!(f, "?{headers}")?;
        }
        Ok(())
    }
}

/// `user[:password]`, each in its character class.
fn parse_userinfo(info: &str) -> Option<(Option<String>, Option<String>)> {
    let (user, password) = match info.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (info, None),
    };
    let user_ok =
        !user.is_empty() && valid_chars(user, |b| is_unreserved(b) || b"&=+$,;?/".contains(&b));
    let password_ok = password.map_or(true, |p| {
        valid_chars(p, |b| is_unreserved(b) || b"&=+$,".contains(&b))
    });
    (user_ok && password_ok).then(|| (Some(user.to_string()), password.map(str::to_string)))
}

/// `host[:port]`: a hostname, IPv4 address or `[IPv6]`.
pub(crate) fn parse_hostport(text: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if text.starts_with('[') {
        let close = text.find(']')?;
        let host = &text[..=close];
        let inner = &host[1..close];
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        match &text[close + 1..] {
            "" => (host, None),
            rest => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if !host.starts_with('[') && !is_hostname(host) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse().ok()?)
        }
        Some(_) => return None,
    };
    Some((host.to_string(), port))
}

/// A hostname or IPv4 address: labels of letters, digits and `-`, joined by
/// dots, with an optional trailing dot.
fn is_hostname(host: &str) -> bool {
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    !trimmed.is_empty()
        && trimmed.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// One `name[=value]` URI parameter.
fn parse_uri_param(text: &str) -> Option<Param> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (text, None),
    };
    let paramchar = |b: u8| is_unreserved(b) || b"[]/:&+$".contains(&b);
    let ok = !name.is_empty()
        && valid_chars(name, paramchar)
        && value.map_or(true, |v| !v.is_empty() && valid_chars(v, paramchar));
    ok.then(|| Param {
        name: name.to_string(),
        value: value.map(str::to_string),
    })
}

/// RFC 3261 `unreserved`: letters, digits and `-_.!~*'()`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

/// Every byte is in `class` or starts a well-formed `%HH` escape.
fn valid_chars(text: &str, class: impl Fn(u8) -> bool) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else if class(bytes[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// `%HH` escapes undone; `None` on a broken escape.
fn unescape(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}
