//! Small helpers over parsed messages for the relay: `received`/`rport` on
//! the top Via (RFC 3261 §18.2.1, RFC 3581), where a response goes
//! (§18.2.2), the server transaction key (§17.2.3), comma lists of header
//! values, and random tokens for tags, branches and transaction ids.

use std::net::SocketAddr;

use super::message::Param;
use super::transport::Dest;
use super::{Message, Via};

/// Adds `received` (when the sent-by host is not the source address) and
/// fills an empty `rport` on the top Via, in the parsed Via and in the raw
/// header the responses copy.
pub fn stamp_received(msg: &mut Message, source: SocketAddr) {
    let Some(top) = msg.vias.first().cloned() else {
        return;
    };
    let ip = source.ip().to_string();
    let mut via = top.clone();
    let wants_rport = via
        .params
        .iter()
        .any(|p| p.name.eq_ignore_ascii_case("rport"));
    if wants_rport || via.host.trim_matches(['[', ']']) != ip {
        set_param(&mut via.params, "received", Some(ip));
    }
    if wants_rport {
        set_param(&mut via.params, "rport", Some(source.port().to_string()));
    }
    if via.params == top.params {
        return;
    }
    let sent_by = match via.port {
        Some(port) => format!("{}:{port}", via.host),
        None => via.host.clone(),
    };
    let params: String = via.params.iter().map(|p| format!(";{p}")).collect();
    via.raw = format!("SIP/2.0/{} {sent_by}{params}", via.transport);
    if let Some(header) = msg
        .headers
        .iter_mut()
        .find(|h| h.name.eq_ignore_ascii_case("Via"))
    {
        let value = header.value.trim_start();
        let rest = match value.strip_prefix(top.raw.as_str()) {
            Some(rest) => rest.to_string(),
            None => value
                .find(',')
                .map_or(String::new(), |i| value[i..].to_string()),
        };
        header.value = format!("{}{rest}", via.raw);
    }
    msg.vias[0] = via;
}

/// Sets (or adds) a parameter.
fn set_param(params: &mut Vec<Param>, name: &str, value: Option<String>) {
    match params
        .iter_mut()
        .find(|p| p.name.eq_ignore_ascii_case(name))
    {
        Some(p) => p.value = value,
        None => params.push(Param {
            name: name.to_string(),
            value,
        }),
    }
}

/// The value of a Via parameter.
pub fn via_param<'a>(via: &'a Via, name: &str) -> Option<&'a str> {
    via.params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .and_then(|p| p.value.as_deref())
}

/// Where responses to a request from `source` go: back on the TCP
/// connection; over UDP to the source port when `rport` was asked, else to
/// the `received` address at the sent-by port (5060 by default).
pub fn response_dest(msg: &Message, source: Dest) -> Dest {
    let Dest::Udp(from) = source else {
        return source;
    };
    let Some(top) = msg.vias.first() else {
        return source;
    };
    if via_param(top, "rport").is_some() {
        return source;
    }
    Dest::Udp(SocketAddr::new(from.ip(), top.port.unwrap_or(5060)))
}

/// The server transaction a request belongs to: the RFC 3261 branch with
/// the sent-by and method, or for an RFC 2543 branch the fields that
/// identify it (§17.2.3). ACK matches the INVITE.
pub fn transaction_key(msg: &Message) -> String {
    let method = match msg.method() {
        Some("ACK") | None => "INVITE",
        Some(m) => m,
    };
    let Some(top) = msg.vias.first() else {
        return format!("none|{}|{}", msg.call_id, msg.cseq.number);
    };
    let sent_by = format!("{}:{}", top.host, top.port.unwrap_or(0));
    match top.branch() {
        Some(b) if b.starts_with("z9hG4bK") => format!("{b}|{sent_by}|{method}"),
        _ => format!(
            "2543|{}|{}|{method}|{}|{sent_by}|{}",
            msg.call_id,
            msg.cseq.number,
            msg.from.tag().unwrap_or(""),
            msg.request_uri().map(|u| u.to_string()).unwrap_or_default()
        ),
    }
}

/// Splits a header value at the commas that separate list elements (not
/// those inside quotes or `<...>`).
pub fn split_list(value: &str) -> Vec<&str> {
    let (mut out, _) = super::parse::split_outside_quotes(value);
    out.retain(|s| !s.is_empty());
    out
}

/// `bytes` random bytes from the OS as hex (tags, branches, ids).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        log::error!("sip: no randomness from the OS");
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The usual reason phrase of a status (RFC 3261 §21).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        603 => "Decline",
        _ => match status / 100 {
            1 => "Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::sip::{parse_message, Limits, Transport};

    fn message(via: &str) -> Message {
        let text = format!(
            "MESSAGE sip:bob@x SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP p2;branch=z9hG4bKb\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@x>\r\nCall-ID: c\r\n\
             CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
        );
        parse_message(text.as_bytes(), Transport::Datagram, &Limits::default()).unwrap()
    }

    #[test]
    fn received_and_rport_are_stamped_on_the_top_via_only() {
        let mut m = message("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKa;rport, SIP/2.0/TCP p1");
        stamp_received(&mut m, "192.0.2.4:40000".parse().unwrap());
        let vias: Vec<&str> = m.headers_named("Via").collect();
        assert_eq!(
            vias[0],
            "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKa;rport=40000;received=192.0.2.4, SIP/2.0/TCP p1"
        );
        assert_eq!(vias[1], "SIP/2.0/UDP p2;branch=z9hG4bKb");
        let src = Dest::Udp("192.0.2.4:40000".parse().unwrap());
        assert_eq!(response_dest(&m, src), src);
    }

    #[test]
    fn without_rport_the_response_goes_to_the_sent_by_port() {
        let mut m = message("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKa");
        stamp_received(&mut m, "192.0.2.4:40000".parse().unwrap());
        assert!(
            m.vias[0].raw.ends_with(";received=192.0.2.4"),
            "{}",
            m.vias[0].raw
        );
        let src = Dest::Udp("192.0.2.4:40000".parse().unwrap());
        assert_eq!(
            response_dest(&m, src),
            Dest::Udp("192.0.2.4:5070".parse().unwrap())
        );
        let mut same = message("SIP/2.0/UDP 192.0.2.4:5070;branch=z9hG4bKa");
        stamp_received(&mut same, "192.0.2.4:5070".parse().unwrap());
        assert_eq!(
            same.vias[0].raw,
            "SIP/2.0/UDP 192.0.2.4:5070;branch=z9hG4bKa"
        );
    }

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_list("\"a, b\" <sip:x@y;p=1,2>;expires=3, <sip:z@w>"),
            vec!["\"a, b\" <sip:x@y;p=1,2>;expires=3", "<sip:z@w>"]
        );
        assert_eq!(split_list("*"), vec!["*"]);
    }
}
